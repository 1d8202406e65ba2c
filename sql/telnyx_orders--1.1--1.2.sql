/* telnyx_orders 1.1 -> 1.2: every request has an owner, every order is kept */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.2'" to load this file. \quit

/*
 * Order ids as Telnyx gives them.  The spec types an order's id as a
 * string, not a uuid: an id we could not store would be an order bought and
 * forgotten.
 */
DROP VIEW @extschema@.telnyx_order_allocations;
ALTER TABLE @extschema@.telnyx_number_orders
	DROP CONSTRAINT telnyx_number_orders_order_id_group_index_fkey;
ALTER TABLE @extschema@.telnyx_ordering_groups
	DROP CONSTRAINT telnyx_ordering_groups_order_id_fkey;
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ALTER COLUMN id TYPE text USING id::text;
ALTER TABLE @extschema@.telnyx_ordering_groups
	ALTER COLUMN order_id TYPE text USING order_id::text;
ALTER TABLE @extschema@.telnyx_number_orders
	ALTER COLUMN order_id TYPE text USING order_id::text;
ALTER TABLE @extschema@.telnyx_ordering_groups
	ADD FOREIGN KEY (order_id)
	REFERENCES @extschema@.telnyx_inexplicit_orders (id) ON DELETE CASCADE;
ALTER TABLE @extschema@.telnyx_number_orders
	ADD FOREIGN KEY (order_id, group_index)
	REFERENCES @extschema@.telnyx_ordering_groups (order_id, group_index)
	ON DELETE CASCADE;

/*
 * A hash index has no size limit on its key, so an order with a long
 * customer_reference (made elsewhere, found by a sync) can always be kept.
 */
DROP INDEX @extschema@.telnyx_inexplicit_orders_customer_reference_idx;
CREATE INDEX telnyx_inexplicit_orders_customer_reference_idx
	ON @extschema@.telnyx_inexplicit_orders USING hash (customer_reference);

/* Orders the tables lacked until the worker's periodic sync found them. */
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ADD COLUMN found_by_sync boolean NOT NULL DEFAULT false;

/*
 * When an order still being filled is fetched again (NULL once every group
 * has ended): the worker and telnyx_refresh_orders() follow it.
 */
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ADD COLUMN next_refresh_at timestamptz;
UPDATE @extschema@.telnyx_inexplicit_orders o
   SET next_refresh_at = pg_catalog.now()
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
					WHERE g.order_id OPERATOR(pg_catalog.=) o.id)
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
				WHERE g.order_id OPERATOR(pg_catalog.=) o.id
				  AND (g.status IS NULL
					   OR g.status OPERATOR(pg_catalog.=) ANY ('{pending,processing}')));
CREATE INDEX telnyx_inexplicit_orders_refresh_idx
	ON @extschema@.telnyx_inexplicit_orders (next_refresh_at)
	WHERE next_refresh_at IS NOT NULL;

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
 * Requests: who queued each one, the exact bytes sent (a resend must be
 * the same request, byte for byte, under the same Idempotency-Key), and
 * when it was first sent (the start of the window in which its order can
 * have been created).
 */
ALTER TABLE @extschema@.telnyx_order_requests
	ALTER COLUMN order_id TYPE text USING order_id::text,
	ADD COLUMN requested_by oid,
	ADD COLUMN request_body text,
	ADD COLUMN first_sent_at timestamptz;
/* jsonb's text form is canonical: the bytes 1.1 sent for these rows */
UPDATE @extschema@.telnyx_order_requests r
   SET request_body = r.body::text,
	   requested_by = (SELECT e.extowner FROM pg_catalog.pg_extension e
						WHERE e.extname = 'telnyx_orders'),
	   first_sent_at = CASE WHEN r.attempts > 0 THEN r.created_at END;
ALTER TABLE @extschema@.telnyx_order_requests
	ALTER COLUMN request_body SET NOT NULL,
	ALTER COLUMN requested_by SET NOT NULL;

/*
 * A role sees only the requests it (or a role it is a member of) queued.
 * The extension's owner and the worker bypass the policy.
 */
ALTER TABLE @extschema@.telnyx_order_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY telnyx_order_requests_own ON @extschema@.telnyx_order_requests
	FOR SELECT
	USING (pg_catalog.pg_has_role(CURRENT_USER, requested_by, 'MEMBER'));

/*
 * Notifications carry no payload: any role can LISTEN, and a payload
 * would show it requests it may not read.  Only state changes made by a
 * sender are announced; an enqueue is not (it must work in a prepared
 * transaction, where NOTIFY cannot be used).
 */
DROP TRIGGER telnyx_order_requests_notify_insert ON @extschema@.telnyx_order_requests;
CREATE OR REPLACE FUNCTION @extschema@.telnyx_order_requests_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_catalog.pg_notify('telnyx_orders', '');
	RETURN NULL;
END
$$;

/*
 * Where this queue lives: the cluster's system identifier and the
 * database.  A database restored or cloned elsewhere does not match, and
 * its queue waits until telnyx_resume_queue() is run there.  The row is
 * written by the first enqueue (not here: a restore brings the original's).
 */
CREATE TABLE @extschema@.telnyx_queue_home (
	only_row			boolean PRIMARY KEY DEFAULT true CHECK (only_row),
	system_identifier	bigint NOT NULL,
	database_oid		oid NOT NULL,
	database_name		name NOT NULL,
	since				timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_queue_home', '');
/* a queue that already has requests lives here */
INSERT INTO @extschema@.telnyx_queue_home (system_identifier, database_oid, database_name)
SELECT s.system_identifier, d.oid, d.datname
  FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d
 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
   AND EXISTS (SELECT 1 FROM @extschema@.telnyx_order_requests);

/*
 * The functions run as their caller.  The C code does as the extension's
 * owner only its own statements on the extension's tables, with a pinned
 * search_path; whatever a user wrote (a cast, an output function) runs
 * with the user's rights.
 */
ALTER FUNCTION @extschema@.telnyx_create_inexplicit_order(jsonb, text, text, text, text) SECURITY INVOKER;
ALTER FUNCTION @extschema@.telnyx_get_inexplicit_order(uuid) SECURITY INVOKER;
ALTER FUNCTION @extschema@.telnyx_list_inexplicit_orders(integer, integer) SECURITY INVOKER;
ALTER FUNCTION @extschema@.telnyx_sync_inexplicit_orders() SECURITY INVOKER;
ALTER FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) SECURITY INVOKER;
ALTER FUNCTION @extschema@.telnyx_order_trigger() SECURITY INVOKER;

/*
 * One pass of the sender, in the caller's session, as the caller: a
 * procedure, which may commit between claiming, sending and recording.
 */
DROP FUNCTION @extschema@.telnyx_process_queue(integer);
CREATE PROCEDURE @extschema@.telnyx_process_queue(
	max_requests	integer DEFAULT NULL,
	INOUT handled	integer DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_process_queue';
REVOKE ALL ON PROCEDURE @extschema@.telnyx_process_queue(integer, integer) FROM PUBLIC;

/* Fetch every order due for a refresh, once; returns how many were. */
CREATE FUNCTION @extschema@.telnyx_refresh_orders()
RETURNS integer
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_refresh_orders';
REVOKE ALL ON FUNCTION @extschema@.telnyx_refresh_orders() FROM PUBLIC;

/* An order whose id is not a uuid can be fetched too. */
CREATE FUNCTION @extschema@.telnyx_get_inexplicit_order(id text)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_get_inexplicit_order_text';
REVOKE ALL ON FUNCTION @extschema@.telnyx_get_inexplicit_order(text) FROM PUBLIC;

DROP FUNCTION @extschema@.telnyx_cancel_order_request(bigint);
/* Cancels a request queued by the caller (or a role it is a member of). */
CREATE FUNCTION @extschema@.telnyx_cancel_order_request(id bigint)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_cancel_order_request';
REVOKE ALL ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) FROM PUBLIC;

/* After a restore or a clone: let this database's queue send again. */
CREATE FUNCTION @extschema@.telnyx_resume_queue()
RETURNS boolean
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_resume_queue';
REVOKE ALL ON FUNCTION @extschema@.telnyx_resume_queue() FROM PUBLIC;
