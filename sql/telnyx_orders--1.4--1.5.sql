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

/* a request that arrives by logical replication holds no claim here */
CREATE OR REPLACE FUNCTION @extschema@.telnyx_order_requests_replicated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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

COMMENT ON COLUMN @extschema@.telnyx_order_requests.claim_token IS 'The token of the claim that holds the request (sending, or unknown being reconciled); every outcome written names it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.unknown_since IS 'When the outcome became unknown: the last attempt could not create an order after this.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.lookups IS 'Whole reads of the list of orders that found no order of this request since unknown_since.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_system_identifier IS 'The system identifier of the cluster where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_database_oid IS 'The database where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.request_key IS 'The Idempotency-Key of the request or call this order answers; NULL when it was learned otherwise and not matched to a request yet.';

/*---- Restores and drops (nothing lost, nothing fired) ----*/

/*---- Facts only move forward ----*/

/*---- The API key is never a SQL value ----*/

/*---- Grants and status ----*/
