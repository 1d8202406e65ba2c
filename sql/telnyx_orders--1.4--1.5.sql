/* telnyx_orders 1.4 -> 1.5: every promise kept where two features meet */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.5'" to load this file. \quit

/*---- Claims, links and evidence (never twice, never forgotten) ----*/

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
 * subscription makes an arriving request "replicated".
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

/*---- Grants and status ----*/
