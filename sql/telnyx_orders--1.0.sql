/* telnyx_orders 1.0: order phone numbers from Telnyx with SQL */

\echo Use "CREATE EXTENSION telnyx_orders" to load this file. \quit

/*
 * One row per inexplicit number order, as Telnyx last described it.  The
 * C functions upsert these rows; "data" keeps the whole last answer so that
 * nothing Telnyx said is lost even where no column holds it.
 */
CREATE TABLE @extschema@.telnyx_inexplicit_orders (
	id						uuid PRIMARY KEY,
	connection_id			text,
	messaging_profile_id	text,
	customer_reference		text,
	billing_group_id		text,
	created_at				timestamptz,
	updated_at				timestamptz,
	data					jsonb NOT NULL,
	first_seen_at			timestamptz NOT NULL DEFAULT now(),
	synced_at				timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX telnyx_inexplicit_orders_customer_reference_idx
	ON @extschema@.telnyx_inexplicit_orders (customer_reference);

/*
 * One row per ordering group of an order.  group_index counts from 1, in
 * the order Telnyx lists the groups (the order they were requested in).
 */
CREATE TABLE @extschema@.telnyx_ordering_groups (
	order_id					uuid NOT NULL
		REFERENCES @extschema@.telnyx_inexplicit_orders (id) ON DELETE CASCADE,
	group_index					integer NOT NULL CHECK (group_index >= 1),
	country_iso					text,
	phone_number_type			text,
	national_destination_code	text,
	administrative_area			text,
	locality					text,
	features					text[],
	phone_number_starts_with	text,
	phone_number_ends_with		text,
	phone_number_contains		text,
	strategy					text,
	quickship					boolean,
	exclude_held_numbers		boolean,
	count_requested				integer,
	count_allocated				integer,
	status						text,
	error_reason				text,
	created_at					timestamptz,
	updated_at					timestamptz,
	synced_at					timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, group_index)
);

/* One row per number order Telnyx created to fill an ordering group. */
CREATE TABLE @extschema@.telnyx_number_orders (
	number_order_id			uuid PRIMARY KEY,
	order_id				uuid NOT NULL,
	group_index				integer NOT NULL,
	sub_number_order_ids	uuid[] NOT NULL DEFAULT '{}',
	synced_at				timestamptz NOT NULL DEFAULT now(),
	FOREIGN KEY (order_id, group_index)
		REFERENCES @extschema@.telnyx_ordering_groups (order_id, group_index)
		ON DELETE CASCADE
);

CREATE INDEX telnyx_number_orders_order_idx
	ON @extschema@.telnyx_number_orders (order_id, group_index);

/* pg_dump keeps the rows: they are the record of what was bought. */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_inexplicit_orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_ordering_groups', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_number_orders', '');

/*
 * What was requested, allocated and bought, one row per ordering group.
 * shortfall is NULL while the group is still pending or processing.
 */
CREATE VIEW @extschema@.telnyx_order_allocations AS
SELECT g.order_id,
	   o.customer_reference,
	   g.group_index,
	   g.country_iso,
	   g.phone_number_type,
	   g.count_requested,
	   g.count_allocated,
	   CASE WHEN g.status IN ('pending', 'processing') THEN NULL
			ELSE greatest(coalesce(g.count_requested, 0) - coalesce(g.count_allocated, 0), 0)
	   END AS shortfall,
	   g.status,
	   g.error_reason,
	   coalesce((SELECT array_agg(n.number_order_id ORDER BY n.number_order_id)
				   FROM @extschema@.telnyx_number_orders n
				  WHERE n.order_id = g.order_id
					AND n.group_index = g.group_index),
				'{}'::uuid[]) AS number_order_ids
  FROM @extschema@.telnyx_ordering_groups g
  JOIN @extschema@.telnyx_inexplicit_orders o ON o.id = g.order_id;

/*
 * The functions run as the extension's owner so that a role granted EXECUTE
 * can record orders without being able to write the tables itself.  Their
 * search_path is pinned; the C code qualifies every name anyway.
 */
CREATE FUNCTION @extschema@.telnyx_create_inexplicit_order(
	ordering_groups			jsonb,
	connection_id			text DEFAULT NULL,
	messaging_profile_id	text DEFAULT NULL,
	customer_reference		text DEFAULT NULL,
	billing_group_id		text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_create_inexplicit_order';

CREATE FUNCTION @extschema@.telnyx_get_inexplicit_order(id uuid)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_get_inexplicit_order';

CREATE FUNCTION @extschema@.telnyx_list_inexplicit_orders(
	page_number integer DEFAULT 1,
	page_size	integer DEFAULT 20)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_list_inexplicit_orders';

CREATE FUNCTION @extschema@.telnyx_sync_inexplicit_orders()
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_sync_inexplicit_orders';

/* Ordering spends money: nobody may call these until granted. */
REVOKE ALL ON FUNCTION @extschema@.telnyx_create_inexplicit_order(jsonb, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_get_inexplicit_order(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_list_inexplicit_orders(integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() FROM PUBLIC;
