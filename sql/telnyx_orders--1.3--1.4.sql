/* telnyx_orders 1.3 -> 1.4: operations (retention, status, restarts) */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.4'" to load this file. \quit

/*
 * Finished requests (sent, failed, cancelled) older than older_than are
 * deleted now; the worker does the same under telnyx.request_retention.
 * Never an unknown or unfinished request, never an order.
 */
CREATE FUNCTION @extschema@.telnyx_purge_requests(older_than interval)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_purge_requests';
REVOKE ALL ON FUNCTION @extschema@.telnyx_purge_requests(interval) FROM PUBLIC;

/* A clean restart of the background workers: one sender per database. */
CREATE FUNCTION @extschema@.telnyx_restart_workers()
RETURNS boolean
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_restart_workers';
REVOKE ALL ON FUNCTION @extschema@.telnyx_restart_workers() FROM PUBLIC;

/* The running senders, in every database. */
CREATE FUNCTION @extschema@.telnyx_worker_status(
	OUT database name,
	OUT pid integer,
	OUT started_at timestamptz,
	OUT paused text,
	OUT rate_limited_until timestamptz,
	OUT orders_sent bigint,
	OUT rate_limited bigint,
	OUT last_sent_at timestamptz,
	OUT last_rate_limited_at timestamptz)
RETURNS SETOF record
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_worker_status';
REVOKE ALL ON FUNCTION @extschema@.telnyx_worker_status() FROM PUBLIC;

/* Why no worker sends this database's queue; NULL when one does. */
CREATE FUNCTION @extschema@.telnyx_queue_unserved()
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_queue_unserved';
REVOKE ALL ON FUNCTION @extschema@.telnyx_queue_unserved() FROM PUBLIC;

/*
 * What an operator opens first: this database's queue by state, its
 * oldest wait, next retry and latest error, what was sent lately, and the
 * worker (its pid, whether it waits and why, 429s since it started).
 * Counts every role's requests: grant it to administrators only.
 */
CREATE VIEW @extschema@.telnyx_queue_status AS
SELECT pg_catalog.current_database() AS database,
	   w.pid AS worker_pid,
	   w.started_at AS worker_started_at,
	   COALESCE(w.paused, @extschema@.telnyx_queue_unserved()) AS waiting_because,
	   w.rate_limited_until,
	   r.queued, r.sending, r.retrying, r.unknown, r.sent, r.failed, r.cancelled,
	   r.oldest_queued_at, r.next_retry_at,
	   e.last_error, e.last_error_at,
	   r.sent_last_minute, r.sent_last_hour,
	   w.orders_sent AS worker_orders_sent,
	   w.rate_limited AS worker_rate_limited,
	   w.last_rate_limited_at
  FROM (SELECT pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'queued') AS queued,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sending') AS sending,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'retrying') AS retrying,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'unknown') AS unknown,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent') AS sent,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'cancelled') AS cancelled,
			   pg_catalog.min(q.created_at) FILTER (WHERE q.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying}')) AS oldest_queued_at,
			   pg_catalog.min(q.next_attempt_at) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'retrying') AS next_retry_at,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent'
				   AND q.updated_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval)) AS sent_last_minute,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent'
				   AND q.updated_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)) AS sent_last_hour
		  FROM @extschema@.telnyx_order_requests q) r
  LEFT JOIN @extschema@.telnyx_worker_status() w
	ON w.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
  LEFT JOIN LATERAL (SELECT q.last_error, q.updated_at AS last_error_at
					   FROM @extschema@.telnyx_order_requests q
					  WHERE q.last_error IS NOT NULL
						AND q.state OPERATOR(pg_catalog.<>) 'sent'
					  ORDER BY q.updated_at DESC LIMIT 1) e ON true;
REVOKE ALL ON @extschema@.telnyx_queue_status FROM PUBLIC;

/*
 * DROP EXTENSION telnyx_orders (or DROP SCHEMA ... CASCADE of its schema)
 * is refused while the tables record orders or unfinished requests, unless
 * the session sets telnyx.allow_drop: dropping deletes what was bought.
 */
CREATE FUNCTION @extschema@.telnyx_guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_guard_drop';
REVOKE ALL ON FUNCTION @extschema@.telnyx_guard_drop() FROM PUBLIC;
CREATE EVENT TRIGGER telnyx_orders_guard_drop ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
	EXECUTE FUNCTION @extschema@.telnyx_guard_drop();
