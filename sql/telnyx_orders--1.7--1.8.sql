/* telnyx_orders--1.7--1.8.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.8'" to load this file. \quit

-- ---------------------------------------------------------------------
-- The live queue apart from the record, so that a request's changes of
-- state stay on its page (HOT) and the queue costs the same at any size
-- ---------------------------------------------------------------------

/*
 * Until 1.7 the queue's indexes were partial indexes of
 * telnyx_order_requests on its state, and order_id was indexed there: every
 * change of state wrote every index of a table that grows by one row per
 * request.  From 1.8 the table's indexes hold only what never changes
 * (id, request_key, created_at), and what a sender looks for lives in two
 * small tables that telnyx_order_requests_changed() keeps, in the statement
 * that changes a request, whoever runs it:
 *
 *   telnyx_live_requests       one row per request a sender still acts on:
 *                              kind 'q' (queued or retrying: to be sent),
 *                              'u' (unknown, to be reconciled), 'a' (in a
 *                              sender's hands: sending, or unknown being
 *                              reconciled), 'h' (held); due_at is its
 *                              next_attempt_at
 *   telnyx_requests_by_order   which requests name an order (order_id)
 *
 * The request's row stays the truth: every statement that acts through
 * them checks the request's own state.  Neither is dumped: a restore's COPY
 * of telnyx_order_requests fills them again (the trigger acts on INSERT),
 * and telnyx_resume_queue() rebuilds them.
 */
CREATE TABLE @extschema@.telnyx_live_requests (
	request_id		bigint PRIMARY KEY,
	kind			"char" NOT NULL,	/* q, u, a or h: see the comment */
	due_at			timestamptz NOT NULL
);
CREATE INDEX telnyx_live_requests_due_idx
	ON @extschema@.telnyx_live_requests (kind, due_at, request_id);
COMMENT ON TABLE @extschema@.telnyx_live_requests IS 'The queue''s index: the requests a sender still acts on, kept by telnyx_order_requests_changed(). Not a record: telnyx_order_requests is.';
COMMENT ON COLUMN @extschema@.telnyx_live_requests.request_id IS 'The request (telnyx_order_requests.id).';
COMMENT ON COLUMN @extschema@.telnyx_live_requests.kind IS 'q: queued or retrying; u: unknown, to be reconciled; a: in a sender''s hands (sending, or unknown being reconciled); h: held.';
COMMENT ON COLUMN @extschema@.telnyx_live_requests.due_at IS 'The request''s next_attempt_at.';

/*
 * No key: a request that arrives by logical replication may bring its row
 * here as well as making one, and two equal rows answer the same.
 */
CREATE TABLE @extschema@.telnyx_requests_by_order (
	order_id		text NOT NULL,
	request_id		bigint NOT NULL
);
CREATE INDEX telnyx_requests_by_order_idx
	ON @extschema@.telnyx_requests_by_order (order_id, request_id);
ALTER TABLE @extschema@.telnyx_requests_by_order REPLICA IDENTITY FULL;
COMMENT ON TABLE @extschema@.telnyx_requests_by_order IS 'Which requests name an order as theirs (telnyx_order_requests.order_id), kept by telnyx_order_requests_changed().';
COMMENT ON COLUMN @extschema@.telnyx_requests_by_order.order_id IS 'The order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_requests_by_order.request_id IS 'A request whose order_id it is.';

/* no request changes until the triggers below keep them */
LOCK TABLE @extschema@.telnyx_order_requests IN ACCESS EXCLUSIVE MODE;
INSERT INTO @extschema@.telnyx_live_requests (request_id, kind, due_at)
SELECT r.id,
	   CASE WHEN r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying}') THEN 'q'
			WHEN r.state OPERATOR(pg_catalog.=) 'unknown' AND r.claimed_by_pid IS NULL THEN 'u'
			WHEN r.state OPERATOR(pg_catalog.=) 'held' THEN 'h'
			ELSE 'a' END,
	   r.next_attempt_at
  FROM @extschema@.telnyx_order_requests r
 WHERE r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying,sending,unknown,held}');
INSERT INTO @extschema@.telnyx_requests_by_order (order_id, request_id)
SELECT r.order_id, r.id
  FROM @extschema@.telnyx_order_requests r
 WHERE r.order_id IS NOT NULL;

/*
 * Kept in the statement that changes telnyx_order_requests (an INSERT, an
 * UPDATE, a DELETE or a TRUNCATE), whatever session_replication_role says,
 * so that the two tables are never out of step with it.  The same trigger
 * announces a change of state (NOTIFY telnyx_orders, and
 * telnyx_orders_held when a request is held, without payload), once per
 * statement instead of once per row.
 */
DROP TRIGGER telnyx_order_requests_notify_update ON @extschema@.telnyx_order_requests;
DROP FUNCTION @extschema@.telnyx_order_requests_notify();

CREATE FUNCTION @extschema@.telnyx_order_requests_changed()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_order_requests_changed';
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_requests_changed() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_order_requests_changed() IS 'Trigger: keeps telnyx_live_requests and telnyx_requests_by_order in step with telnyx_order_requests, and announces changes of state (NOTIFY telnyx_orders, no payload).';

CREATE TRIGGER telnyx_order_requests_inserted
	AFTER INSERT ON @extschema@.telnyx_order_requests
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.telnyx_order_requests_changed();
CREATE TRIGGER telnyx_order_requests_updated
	AFTER UPDATE ON @extschema@.telnyx_order_requests
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.telnyx_order_requests_changed();
CREATE TRIGGER telnyx_order_requests_deleted
	AFTER DELETE ON @extschema@.telnyx_order_requests
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.telnyx_order_requests_changed();
CREATE TRIGGER telnyx_order_requests_truncated
	AFTER TRUNCATE ON @extschema@.telnyx_order_requests
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.telnyx_order_requests_changed();
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE ALWAYS TRIGGER telnyx_order_requests_inserted;
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE ALWAYS TRIGGER telnyx_order_requests_updated;
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE ALWAYS TRIGGER telnyx_order_requests_deleted;
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE ALWAYS TRIGGER telnyx_order_requests_truncated;

/*
 * A subscriber that receives every table gets the publisher's rows of
 * telnyx_live_requests too, and their deletes: they name requests that
 * arrive "replicated" (another database's to send), so the apply worker
 * drops them, and leaves the subscriber's own rows alone.  (The trigger
 * above makes no row there for a request that arrives.)
 */
CREATE FUNCTION @extschema@.telnyx_live_requests_replicated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a
				WHERE a.backend_type OPERATOR(pg_catalog.~~) 'logical replication%') THEN
		RETURN NULL;
	END IF;
	IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
		RETURN OLD;
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_live_requests_replicated() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_live_requests_replicated() IS 'Replica trigger: the rows of telnyx_live_requests that arrive by logical replication are dropped.';
CREATE TRIGGER telnyx_live_requests_replicated
	BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.telnyx_live_requests
	FOR EACH ROW EXECUTE FUNCTION @extschema@.telnyx_live_requests_replicated();
ALTER TABLE @extschema@.telnyx_live_requests
	ENABLE REPLICA TRIGGER telnyx_live_requests_replicated;

/*
 * The record's indexes: what never changes.  created_at serves the purge
 * of finished requests, oldest first.  Half of each page is left free: a
 * claim changes every request of a page at once (they were queued
 * together), and each needs room there for its next version; the one
 * before is pruned by the time the outcome is written.
 */
DROP INDEX @extschema@.telnyx_order_requests_order_idx;
DROP INDEX @extschema@.telnyx_order_requests_claim_idx;
DROP INDEX @extschema@.telnyx_order_requests_active_idx;
DROP INDEX @extschema@.telnyx_order_requests_held_idx;
CREATE INDEX telnyx_order_requests_created_idx
	ON @extschema@.telnyx_order_requests (created_at);
ALTER TABLE @extschema@.telnyx_order_requests SET (fillfactor = 50);
