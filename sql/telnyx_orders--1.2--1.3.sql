/* telnyx_orders 1.2 -> 1.3: every order followed to the numbers bought */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.3'" to load this file. \quit

DROP VIEW @extschema@.telnyx_order_allocations;

/*
 * A number order is linked to each ordering group that Telnyx lists it
 * under: keyed by (order_id, group_index, number_order_id), so that one
 * number order listed under two groups is kept under both.  Its ids are
 * strings, as the spec types them.  The columns from status on are what
 * GET /number_orders/{id} last said; the number order is fetched again
 * (next_fetch_at) while it or one of its numbers is pending.
 */
ALTER TABLE @extschema@.telnyx_number_orders
	DROP CONSTRAINT telnyx_number_orders_pkey;
DROP INDEX @extschema@.telnyx_number_orders_order_idx;
ALTER TABLE @extschema@.telnyx_number_orders
	ALTER COLUMN number_order_id TYPE text USING number_order_id::text,
	ALTER COLUMN sub_number_order_ids DROP DEFAULT,
	ALTER COLUMN sub_number_order_ids TYPE text[] USING sub_number_order_ids::text[],
	ALTER COLUMN sub_number_order_ids SET DEFAULT '{}',
	ADD COLUMN status text,
	ADD COLUMN phone_numbers_count integer,
	ADD COLUMN requirements_met boolean,
	ADD COLUMN customer_reference text,
	ADD COLUMN created_at timestamptz,
	ADD COLUMN updated_at timestamptz,
	ADD COLUMN data jsonb,
	ADD COLUMN fetched_at timestamptz,
	ADD COLUMN next_fetch_at timestamptz DEFAULT now(),
	ADD PRIMARY KEY (order_id, group_index, number_order_id);
UPDATE @extschema@.telnyx_number_orders SET next_fetch_at = pg_catalog.now();
CREATE INDEX telnyx_number_orders_number_order_idx
	ON @extschema@.telnyx_number_orders (number_order_id);
CREATE INDEX telnyx_number_orders_fetch_idx
	ON @extschema@.telnyx_number_orders (next_fetch_at)
	WHERE next_fetch_at IS NOT NULL;

/*
 * One row per phone number of a number order, under each group the number
 * order is linked to, as the number order's last answer listed it.
 * bought_at is when it was first seen with status "success".
 */
CREATE TABLE @extschema@.telnyx_phone_numbers (
	order_id			text NOT NULL,
	group_index			integer NOT NULL,
	number_order_id		text NOT NULL,
	phone_number		text NOT NULL,
	id					text,
	status				text,
	phone_number_type	text,
	requirements_met	boolean,
	requirements_status	text,
	deadline			timestamptz,
	country_code		text,
	data				jsonb NOT NULL,
	first_seen_at		timestamptz NOT NULL DEFAULT now(),
	bought_at			timestamptz,
	synced_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, group_index, number_order_id, phone_number),
	FOREIGN KEY (order_id, group_index, number_order_id)
		REFERENCES @extschema@.telnyx_number_orders (order_id, group_index, number_order_id)
		ON DELETE CASCADE
);
CREATE INDEX telnyx_phone_numbers_phone_number_idx
	ON @extschema@.telnyx_phone_numbers (phone_number);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_phone_numbers', '');

/*
 * What changed, as it changed: a group's status or count_allocated, and
 * numbers bought.  Each row is announced on the channel telnyx_orders with
 * the payload {"event": ..., "seq": ...}: a listener reads the row it
 * names (it holds nothing a role without SELECT here could not see).
 */
CREATE TABLE @extschema@.telnyx_order_events (
	seq					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at					timestamptz NOT NULL DEFAULT now(),
	event				text NOT NULL
		CHECK (event IN ('group_changed', 'numbers_bought')),
	order_id			text NOT NULL,
	group_index			integer NOT NULL,
	number_order_id		text,
	status				text,
	count_allocated		integer,
	numbers				integer
);
CREATE INDEX telnyx_order_events_order_idx
	ON @extschema@.telnyx_order_events (order_id, group_index);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_events_seq_seq', '');

CREATE FUNCTION @extschema@.telnyx_ordering_groups_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	seq		bigint;
BEGIN
	EXECUTE pg_catalog.format(
		'INSERT INTO %I.telnyx_order_events'
		' (event, order_id, group_index, status, count_allocated)'
		' VALUES (''group_changed'', $1, $2, $3, $4) RETURNING seq',
		TG_TABLE_SCHEMA)
		INTO seq
		USING NEW.order_id, NEW.group_index, NEW.status, NEW.count_allocated;
	PERFORM pg_catalog.pg_notify('telnyx_orders',
		pg_catalog.json_build_object('event', 'group_changed', 'seq', seq)::text);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_ordering_groups_changed() FROM PUBLIC;

CREATE TRIGGER telnyx_ordering_groups_changed
	AFTER UPDATE ON @extschema@.telnyx_ordering_groups
	FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status
		  OR OLD.count_allocated IS DISTINCT FROM NEW.count_allocated)
	EXECUTE FUNCTION @extschema@.telnyx_ordering_groups_changed();

/*
 * Numbers that became "success" in one statement: one event per number
 * order and group.
 */
CREATE FUNCTION @extschema@.telnyx_phone_numbers_bought()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ev		record;
	bought	text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		bought := 'SELECT n.* FROM new_rows n'
			' WHERE n.status OPERATOR(pg_catalog.=) ''success''';
	ELSE
		bought := 'SELECT n.* FROM new_rows n JOIN old_rows o'
			' ON o.order_id OPERATOR(pg_catalog.=) n.order_id'
			' AND o.group_index OPERATOR(pg_catalog.=) n.group_index'
			' AND o.number_order_id OPERATOR(pg_catalog.=) n.number_order_id'
			' AND o.phone_number OPERATOR(pg_catalog.=) n.phone_number'
			' WHERE n.status OPERATOR(pg_catalog.=) ''success'''
			' AND o.status IS DISTINCT FROM ''success''';
	END IF;
	FOR ev IN EXECUTE pg_catalog.format(
		'INSERT INTO %I.telnyx_order_events'
		' (event, order_id, group_index, number_order_id, numbers)'
		' SELECT ''numbers_bought'', b.order_id, b.group_index, b.number_order_id,'
		'        pg_catalog.count(*)'
		'   FROM (%s) b'
		'  GROUP BY b.order_id, b.group_index, b.number_order_id'
		' RETURNING seq',
		TG_TABLE_SCHEMA, bought)
	LOOP
		PERFORM pg_catalog.pg_notify('telnyx_orders',
			pg_catalog.json_build_object('event', 'numbers_bought', 'seq', ev.seq)::text);
	END LOOP;
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_phone_numbers_bought() FROM PUBLIC;

CREATE TRIGGER telnyx_phone_numbers_bought_insert
	AFTER INSERT ON @extschema@.telnyx_phone_numbers
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT
	EXECUTE FUNCTION @extschema@.telnyx_phone_numbers_bought();
CREATE TRIGGER telnyx_phone_numbers_bought_update
	AFTER UPDATE ON @extschema@.telnyx_phone_numbers
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT
	EXECUTE FUNCTION @extschema@.telnyx_phone_numbers_bought();

/*
 * Webhook deliveries applied, by event id: the same delivery twice has one
 * effect.
 */
CREATE TABLE @extschema@.telnyx_webhook_deliveries (
	event_id			text PRIMARY KEY,
	event_type			text,
	occurred_at			timestamptz,
	number_order_id		text,
	applied				boolean NOT NULL,
	received_at			timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_webhook_deliveries', '');

/*
 * What was requested, allocated and bought, one row per ordering group.
 * shortfall is NULL while the group is still pending or processing;
 * numbers_bought counts the group's numbers whose status is "success".
 */
CREATE VIEW @extschema@.telnyx_order_allocations AS
SELECT g.order_id,
	   o.customer_reference,
	   g.group_index,
	   g.country_iso,
	   g.phone_number_type,
	   g.count_requested,
	   g.count_allocated,
	   CASE WHEN g.status IS NULL OR g.status IN ('pending', 'processing') THEN NULL
			ELSE greatest(coalesce(g.count_requested, 0) - coalesce(g.count_allocated, 0), 0)
	   END AS shortfall,
	   (SELECT count(*)
		  FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = g.order_id
		   AND p.group_index = g.group_index
		   AND p.status = 'success') AS numbers_bought,
	   g.status,
	   g.error_reason,
	   coalesce((SELECT array_agg(n.number_order_id ORDER BY n.number_order_id)
				   FROM @extschema@.telnyx_number_orders n
				  WHERE n.order_id = g.order_id
					AND n.group_index = g.group_index),
				'{}'::text[]) AS number_order_ids,
	   o.created_at
  FROM @extschema@.telnyx_ordering_groups g
  JOIN @extschema@.telnyx_inexplicit_orders o ON o.id = g.order_id;

/* One row per phone number, with the order and group it was bought for. */
CREATE VIEW @extschema@.telnyx_purchased_numbers AS
SELECT p.phone_number,
	   p.status,
	   p.order_id,
	   p.group_index,
	   o.customer_reference,
	   g.country_iso,
	   coalesce(p.phone_number_type, g.phone_number_type) AS phone_number_type,
	   p.number_order_id,
	   p.id AS phone_number_id,
	   p.requirements_met,
	   p.requirements_status,
	   p.deadline,
	   p.bought_at,
	   p.first_seen_at
  FROM @extschema@.telnyx_phone_numbers p
  JOIN @extschema@.telnyx_ordering_groups g
	ON g.order_id = p.order_id AND g.group_index = p.group_index
  JOIN @extschema@.telnyx_inexplicit_orders o ON o.id = p.order_id;

/*
 * Orders still being filled: a group not ended yet, or a number order or
 * number still pending.  open_since is when the order was created.
 */
CREATE VIEW @extschema@.telnyx_open_orders AS
SELECT o.id AS order_id,
	   o.customer_reference,
	   coalesce(o.created_at, o.first_seen_at) AS open_since,
	   now() - coalesce(o.created_at, o.first_seen_at) AS open_for,
	   (SELECT count(*) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id
		   AND (g.status IS NULL OR g.status IN ('pending', 'processing'))) AS groups_open,
	   (SELECT sum(g.count_requested) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id) AS count_requested,
	   (SELECT sum(g.count_allocated) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id) AS count_allocated,
	   (SELECT count(*) FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = o.id AND p.status = 'success') AS numbers_bought,
	   (SELECT count(*) FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = o.id AND p.status = 'pending') AS numbers_pending,
	   o.synced_at AS last_refreshed_at,
	   least(o.next_refresh_at,
			 (SELECT min(n.next_fetch_at) FROM @extschema@.telnyx_number_orders n
			   WHERE n.order_id = o.id)) AS next_refresh_at
  FROM @extschema@.telnyx_inexplicit_orders o
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
					WHERE g.order_id = o.id)
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
				WHERE g.order_id = o.id
				  AND (g.status IS NULL OR g.status IN ('pending', 'processing')))
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_number_orders n
				WHERE n.order_id = o.id
				  AND (n.status IS NULL OR n.status = 'pending'))
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_phone_numbers p
				WHERE p.order_id = o.id AND p.status = 'pending');

/*
 * Apply a webhook delivery from Telnyx (number_order.complete): checks the
 * Ed25519 signature over "timestamp|body" with telnyx.webhook_public_key,
 * the timestamp, and applies the number order to the tables.
 */
CREATE FUNCTION @extschema@.telnyx_apply_webhook(
	body		text,
	signature	text,
	"timestamp"	text)
RETURNS jsonb
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_apply_webhook';
REVOKE ALL ON FUNCTION @extschema@.telnyx_apply_webhook(text, text, text) FROM PUBLIC;

/*
 * The queue's indexes hold only what a sender looks for: what may be
 * claimed (queued, retrying), and what is in hand (sending, unknown).  A
 * request leaves both when it ends, so the head of the claim index is not
 * a trail of requests sent long ago.
 */
DROP INDEX @extschema@.telnyx_order_requests_due_idx;
CREATE INDEX telnyx_order_requests_claim_idx
	ON @extschema@.telnyx_order_requests (next_attempt_at, id)
	WHERE state IN ('queued', 'retrying');
CREATE INDEX telnyx_order_requests_active_idx
	ON @extschema@.telnyx_order_requests (next_attempt_at, id)
	WHERE state IN ('sending', 'unknown');
