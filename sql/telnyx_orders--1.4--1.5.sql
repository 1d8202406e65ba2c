/* telnyx_orders 1.4 -> 1.5: every promise kept where two features meet */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.5'" to load this file. \quit

/*---- Claims, links and evidence (never twice, never forgotten) ----*/

/*---- Restores and drops (nothing lost, nothing fired) ----*/

/*---- Facts only move forward ----*/

/*---- The API key is never a SQL value ----*/

/*---- Grants and status ----*/

/*
 * A view's functions are called with the rights of the role that reads
 * it: a reader of telnyx_queue_status needs EXECUTE on the two it calls
 * (the README's grant block gives both).
 */
COMMENT ON VIEW @extschema@.telnyx_queue_status IS 'The queue of this database and its worker at a glance: requests by state, oldest wait, latest error, recent sends, why the worker waits. Counts every role''s requests. A reader needs SELECT on it and EXECUTE on telnyx_worker_status() and telnyx_queue_unserved(), which it calls.';
