/* telnyx_orders 1.4 -> 1.5: every promise kept where two features meet */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.5'" to load this file. \quit

/*---- Claims, links and evidence (never twice, never forgotten) ----*/

/*
 * A claim is a fencing token: each claim writes a new claim_token, and
 * every write of an outcome names the token it holds, so a sender whose
 * claim was taken over can never overwrite what the new holder decided.
 *
 * Absence needs evidence: unknown_since is when the last attempt ended
 * (the earliest moment after which it can no longer be answered), and
 * lookups counts the whole reads of the list that found no order of the
 * request since then.  A request is proven absent only after several such
 * reads spread over telnyx.absence_window.
 *
 * Each request records where it was queued (home_*): it is sent only by a
 * sender of that cluster and database, so a restore or a clone sends
 * nothing it brought, and an enqueue writes no row shared with other
 * enqueues (it never waits for another transaction).
 */
ALTER TABLE @extschema@.telnyx_order_requests
	ADD COLUMN claim_token bigint,
	ADD COLUMN unknown_since timestamptz,
	ADD COLUMN lookups integer NOT NULL DEFAULT 0,
	ADD COLUMN home_system_identifier bigint,
	ADD COLUMN home_database_oid oid;
UPDATE @extschema@.telnyx_order_requests r
   SET home_system_identifier = h.system_identifier,
	   home_database_oid = h.database_oid
  FROM @extschema@.telnyx_queue_home h;
UPDATE @extschema@.telnyx_order_requests r
   SET unknown_since = r.updated_at
 WHERE r.state OPERATOR(pg_catalog.=) 'unknown';

/*
 * Which request an order answers: the Idempotency-Key of the queued
 * request, or of the synchronous call, whose answer it was, or that
 * reconciliation matched it to.  NULL for an order learned otherwise (a
 * sync, a fetch by id): such an order is free to be matched to the request
 * that made it.  Orders recorded before 1.5 as an answer get the key of the
 * request that names them, or the nil uuid when the call is not known
 * (reconciliation then treats them as uncertain, never as taken or free).
 */
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ADD COLUMN request_key uuid;
UPDATE @extschema@.telnyx_inexplicit_orders o
   SET request_key = r.request_key
  FROM @extschema@.telnyx_order_requests r
 WHERE r.order_id OPERATOR(pg_catalog.=) o.id;
UPDATE @extschema@.telnyx_inexplicit_orders o
   SET request_key = '00000000-0000-0000-0000-000000000000'
 WHERE o.request_key IS NULL AND NOT o.found_by_sync;
CREATE INDEX telnyx_inexplicit_orders_request_key_idx
	ON @extschema@.telnyx_inexplicit_orders (request_key);

COMMENT ON COLUMN @extschema@.telnyx_order_requests.claim_token IS 'The token of the claim that holds the request (sending, or unknown being reconciled); every outcome written names it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.unknown_since IS 'When the outcome became unknown: the last attempt could not create an order after this.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.lookups IS 'Whole reads of the list of orders that found no order of this request since unknown_since.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_system_identifier IS 'The system identifier of the cluster where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_database_oid IS 'The database where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.request_key IS 'The Idempotency-Key of the request or call this order answers; NULL when it was learned otherwise and not matched to a request yet.';

/*---- Restores and drops (nothing lost, nothing fired) ----*/

/*
 * A restore loads the rows of the extension's tables into tables that
 * CREATE EXTENSION made with their triggers: every INSERT trigger of ours
 * fires during the restore's COPY.  So no trigger of ours acts on an
 * INSERT: numbers bought are recorded and announced by the statement that
 * writes the numbers (store.c), and the triggers that remain fire on
 * UPDATE only (a restore updates nothing) or, for telnyx_order_requests
 * arriving by logical replication, in the apply worker only.
 */
DROP TRIGGER telnyx_phone_numbers_bought_insert ON @extschema@.telnyx_phone_numbers;
DROP TRIGGER telnyx_phone_numbers_bought_update ON @extschema@.telnyx_phone_numbers;
DROP FUNCTION @extschema@.telnyx_phone_numbers_bought();

/*
 * A replica trigger also fires in a session that sets
 * session_replication_role = replica, as some restore a dump: such a load
 * keeps its rows as they were.  Only the apply (or table sync) worker of a
 * subscription makes an arriving request "replicated" (holding no claim
 * here).
 */
CREATE OR REPLACE FUNCTION @extschema@.telnyx_order_requests_replicated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a
					WHERE a.backend_type OPERATOR(pg_catalog.~~) 'logical replication%') THEN
		RETURN NEW;
	END IF;
	IF NEW.state OPERATOR(pg_catalog.<>) ALL ('{sent,failed,cancelled}'::pg_catalog.text[]) THEN
		NEW.state := 'replicated';
		NEW.claimed_by_pid := NULL;
		NEW.claimed_by_start := NULL;
		NEW.claim_token := NULL;
		NEW.lease_until := NULL;
	END IF;
	RETURN NEW;
END
$$;

/*
 * The drop guard guards the tables, not a command: the library refuses the
 * drop of a table that records orders or unfinished requests, whichever
 * command drops it (DROP EXTENSION of plpgsql or of anything we depend on,
 * DROP OWNED BY, DROP SCHEMA ... CASCADE), unless telnyx.allow_drop is on.
 * The event trigger now fires for every command, so that the library (and
 * its guard) is loaded in the session before anything is dropped; it is in
 * C, so it outlives plpgsql.
 */
DROP EVENT TRIGGER telnyx_orders_guard_drop;
CREATE EVENT TRIGGER telnyx_orders_guard_drop ON ddl_command_start
	EXECUTE FUNCTION @extschema@.telnyx_guard_drop();
COMMENT ON FUNCTION @extschema@.telnyx_guard_drop() IS 'Event trigger: refuse DROP EXTENSION telnyx_orders while orders are recorded, and load the guard that refuses any drop of the tables of orders, unless telnyx.allow_drop is on.';

/*---- Facts only move forward ----*/

COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.applied IS 'Whether it was applied (false: remembered for a number order no order links to yet, or older than what was recorded).';

/*---- The API key is never a SQL value ----*/

/*
 * A function's SET clause is kept in pg_proc, which every role can read.
 * Calling this C function before CREATE or ALTER FUNCTION loads the
 * library, so that PostgreSQL asks it whether telnyx.api_key may be set
 * there (never), even in a session that had not loaded it.
 */
CREATE FUNCTION @extschema@.telnyx_guard_key_settings()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_guard_key_settings';
REVOKE ALL ON FUNCTION @extschema@.telnyx_guard_key_settings() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_guard_key_settings() IS 'Event trigger: loads the library before CREATE/ALTER FUNCTION, so that no SET clause keeps a Telnyx API key.';
CREATE EVENT TRIGGER telnyx_orders_guard_key_settings ON ddl_command_start
	WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE',
				 'ALTER PROCEDURE', 'ALTER ROUTINE')
	EXECUTE FUNCTION @extschema@.telnyx_guard_key_settings();

/*
 * telnyx.api_key is no longer read: a key still given in a setting is
 * refused, and may have been readable.  Say where it is (never what it
 * is) and what to do.
 */
DO $key$
DECLARE
	r record;
	todo text := 'Remove it, replace the key at Telnyx (it may have been readable), and put the new key in a file that only the server''s operating system user can read, named by telnyx.api_key_file in postgresql.conf; or set TELNYX_API_KEY in the server''s environment.';
BEGIN
	FOR r IN SELECT f.sourcefile, f.sourceline
			   FROM pg_catalog.pg_file_settings f
			  WHERE pg_catalog.lower(f.name) OPERATOR(pg_catalog.=) 'telnyx.api_key'
				AND f.setting OPERATOR(pg_catalog.<>) ''
	LOOP
		RAISE WARNING 'a Telnyx API key is set in "%" line %, and is no longer used', r.sourcefile, r.sourceline
			USING HINT = todo;
	END LOOP;
	FOR r IN SELECT CASE WHEN s.setrole OPERATOR(pg_catalog.<>) 0 AND s.setdatabase OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER ROLE %I IN DATABASE %I', a.rolname, d.datname)
						 WHEN s.setrole OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER ROLE %I', a.rolname)
						 WHEN s.setdatabase OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER DATABASE %I', d.datname)
						 ELSE 'ALTER ROLE ALL' END AS fix
			   FROM pg_catalog.pg_db_role_setting s
			   LEFT JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) s.setrole
			   LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase
			  WHERE EXISTS (SELECT FROM pg_catalog.unnest(s.setconfig) c
							 WHERE c OPERATOR(pg_catalog.~*) '^telnyx\.api_key=.')
	LOOP
		RAISE WARNING 'a Telnyx API key is stored in pg_db_role_setting, where every role can read it'
			USING DETAIL = 'Nothing is sent to Telnyx while it is there.',
				  HINT = pg_catalog.format('Run "%s RESET telnyx.api_key". ', r.fix) OPERATOR(pg_catalog.||) todo;
	END LOOP;
	FOR r IN SELECT p.oid::pg_catalog.regprocedure AS fn
			   FROM pg_catalog.pg_proc p
			  WHERE EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
							 WHERE c OPERATOR(pg_catalog.~*) '^telnyx\.api_key=.')
	LOOP
		RAISE WARNING 'a Telnyx API key is stored in the SET clause of function %, where every role can read it', r.fn
			USING DETAIL = 'Calling the function fails: the key is refused.',
				  HINT = pg_catalog.format('Run "ALTER FUNCTION %s RESET telnyx.api_key". ', r.fn) OPERATOR(pg_catalog.||) todo;
	END LOOP;
END
$key$;

/*---- Grants and status ----*/

/*
 * A view's functions are called with the rights of the role that reads
 * it: a reader of telnyx_queue_status needs EXECUTE on the two it calls
 * (the README's grant block gives both).
 */
COMMENT ON VIEW @extschema@.telnyx_queue_status IS 'The queue of this database and its worker at a glance: requests by state, oldest wait, latest error, recent sends, why the worker waits. Counts every role''s requests. A reader needs SELECT on it and EXECUTE on telnyx_worker_status() and telnyx_queue_unserved(), which it calls.';
