/* telnyx_orders--1.5--1.6.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.6'" to load this file. \quit

-- ---------------------------------------------------------------------
-- Messages: why the worker does not send, TLS, the database served
-- ---------------------------------------------------------------------

/*
 * At CREATE EXTENSION and ALTER EXTENSION UPDATE: a NOTICE when no
 * background worker will send this database's queue (the library is not
 * in shared_preload_libraries, or the database not in telnyx.database).
 * Only a NOTICE, so that a restore goes through; the function is needed
 * only here.
 */
CREATE FUNCTION @extschema@.telnyx_notice_unserved()
RETURNS void
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_notice_unserved';
SELECT @extschema@.telnyx_notice_unserved();
DROP FUNCTION @extschema@.telnyx_notice_unserved();

-- ---------------------------------------------------------------------
-- Results a person can read; input Telnyx accepts
-- ---------------------------------------------------------------------

/*
 * An event names the order's customer_reference, so that a listener can
 * tell whose numbers it announces without a join.  Events recorded before
 * take it from their order, where the order is known.
 */
ALTER TABLE @extschema@.telnyx_order_events ADD COLUMN customer_reference text;
UPDATE @extschema@.telnyx_order_events e
   SET customer_reference = o.customer_reference
  FROM @extschema@.telnyx_inexplicit_orders o
 WHERE o.id OPERATOR(pg_catalog.=) e.order_id
   AND o.customer_reference IS NOT NULL;
COMMENT ON COLUMN @extschema@.telnyx_order_events.customer_reference IS 'The customer_reference of the order, when the event was recorded.';

/* A group's change is recorded on UPDATE only: a restore fires nothing. */
CREATE OR REPLACE FUNCTION @extschema@.telnyx_ordering_groups_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	seq		bigint;
BEGIN
	EXECUTE pg_catalog.format(
		'INSERT INTO %1$I.telnyx_order_events'
		' (event, order_id, group_index, status, count_allocated, customer_reference)'
		' SELECT ''group_changed'', $1, $2, $3, $4,'
		'  (SELECT o.customer_reference FROM %1$I.telnyx_inexplicit_orders o'
		'    WHERE o.id OPERATOR(pg_catalog.=) $1)'
		' RETURNING seq',
		TG_TABLE_SCHEMA)
		INTO seq
		USING NEW.order_id, NEW.group_index, NEW.status, NEW.count_allocated;
	PERFORM pg_catalog.pg_notify('telnyx_orders',
		pg_catalog.json_build_object('event', 'group_changed', 'seq', seq)::text);
	RETURN NULL;
END
$$;

/*
 * A request's latest error in words, beside the jsonb: Telnyx's title and
 * detail, or our reason.  Generated from last_error, so that every writer
 * of last_error (and a restore, or a subscriber) keeps it true; only
 * built-in immutable operators, so nobody needs a grant to write a row.
 */
ALTER TABLE @extschema@.telnyx_order_requests
	ADD COLUMN last_error_message text GENERATED ALWAYS AS (
		COALESCE((last_error OPERATOR(pg_catalog.->>) 'title')
				 OPERATOR(pg_catalog.||) ': '
				 OPERATOR(pg_catalog.||) (last_error OPERATOR(pg_catalog.->>) 'detail'),
				 last_error OPERATOR(pg_catalog.->>) 'detail',
				 last_error OPERATOR(pg_catalog.->>) 'title',
				 last_error OPERATOR(pg_catalog.->>) 'reason')) STORED;
COMMENT ON COLUMN @extschema@.telnyx_order_requests.last_error_message IS 'Its latest error in words: Telnyx''s title and detail, or why it was not sent.';

/* telnyx_queue_status gains the same words, as its last column. */
CREATE OR REPLACE VIEW @extschema@.telnyx_queue_status AS
SELECT pg_catalog.current_database() AS database,
	   w.pid AS worker_pid,
	   w.started_at AS worker_started_at,
	   COALESCE(w.paused, @extschema@.telnyx_queue_unserved()) AS waiting_because,
	   w.rate_limited_until,
	   r.queued, r.sending, r.retrying, r.unknown, r.sent, r.failed, r.cancelled,
	   r.replicated,
	   r.oldest_queued_at, r.next_retry_at,
	   e.last_error, e.last_error_at,
	   r.sent_last_minute, r.sent_last_hour,
	   w.orders_sent AS worker_orders_sent,
	   w.rate_limited AS worker_rate_limited,
	   w.last_rate_limited_at,
	   e.last_error_message
  FROM (SELECT pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'queued') AS queued,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sending') AS sending,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'retrying') AS retrying,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'unknown') AS unknown,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent') AS sent,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'failed') AS failed,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'cancelled') AS cancelled,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'replicated') AS replicated,
			   pg_catalog.min(q.created_at) FILTER (WHERE q.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying}')) AS oldest_queued_at,
			   pg_catalog.min(q.next_attempt_at) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'retrying') AS next_retry_at,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent'
				   AND q.updated_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 minute'::pg_catalog.interval)) AS sent_last_minute,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'sent'
				   AND q.updated_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)) AS sent_last_hour
		  FROM @extschema@.telnyx_order_requests q) r
  LEFT JOIN @extschema@.telnyx_worker_status() w
	ON w.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
  LEFT JOIN LATERAL (SELECT q.last_error, q.updated_at AS last_error_at,
							q.last_error_message
					   FROM @extschema@.telnyx_order_requests q
					  WHERE q.last_error IS NOT NULL
						AND q.state OPERATOR(pg_catalog.<>) 'sent'
					  ORDER BY q.updated_at DESC LIMIT 1) e ON true;
COMMENT ON COLUMN @extschema@.telnyx_queue_status.last_error_message IS 'The latest error of a request not sent, in words.';

/*
 * The queue as a person reads it: the few columns that say whether it
 * sends, what waits, and why not.  Reads telnyx_queue_status (every role's
 * requests): grant it as that view, to administrators only.
 */
CREATE VIEW @extschema@.telnyx_queue_summary AS
SELECT s.worker_pid,
	   s.waiting_because,
	   s.queued OPERATOR(pg_catalog.+) s.retrying AS waiting,
	   s.sending,
	   s.unknown,
	   s.failed,
	   s.sent_last_hour,
	   pg_catalog.date_trunc('second', pg_catalog.now() OPERATOR(pg_catalog.-) s.oldest_queued_at) AS oldest_wait,
	   s.last_error_message
  FROM @extschema@.telnyx_queue_status s;
REVOKE ALL ON @extschema@.telnyx_queue_summary FROM PUBLIC;
COMMENT ON VIEW @extschema@.telnyx_queue_summary IS 'The queue of this database in a few columns: its worker, why it waits, how many requests wait, are being sent, are uncertain or failed, sent in the last hour, the oldest wait and the latest error in words. Counts every role''s requests; a reader needs EXECUTE on telnyx_worker_status() and telnyx_queue_unserved(), as for telnyx_queue_status.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.worker_pid IS 'The worker sending this queue; NULL if none runs.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.waiting_because IS 'Why nothing is sent; NULL when it sends.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.waiting IS 'Requests queued or waiting for a retry.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.sending IS 'Requests being sent.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.unknown IS 'Requests whose outcome is being reconciled.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.failed IS 'Requests Telnyx rejected for good.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.sent_last_hour IS 'Requests sent in the last hour.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.oldest_wait IS 'How long the oldest waiting request has waited.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.last_error_message IS 'The latest error of a request not sent, in words.';

/*
 * One page of the account's orders as rows, one per order: the jsonb of
 * telnyx_list_inexplicit_orders, which it calls as its caller (so it needs
 * EXECUTE on both), read defensively: a field missing or of another type is
 * NULL.  The order's status is its groups': theirs when they agree,
 * "processing" while one is pending or processing, else "partial_success";
 * NULL without groups or with a group whose status cannot be read.
 */
CREATE FUNCTION @extschema@.telnyx_inexplicit_orders_list(
	page_number integer DEFAULT 1,
	page_size integer DEFAULT 20)
RETURNS TABLE (id text, status text, customer_reference text,
			   created_at timestamptz, groups integer,
			   count_requested bigint, count_allocated bigint)
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE WHEN pg_catalog.jsonb_typeof(o.value OPERATOR(pg_catalog.->) 'id') OPERATOR(pg_catalog.=) 'string'
			THEN o.value OPERATOR(pg_catalog.->>) 'id' END,
	   CASE WHEN g.n OPERATOR(pg_catalog.=) 0 OR g.unread OPERATOR(pg_catalog.>) 0 THEN NULL
			WHEN g.statuses OPERATOR(pg_catalog.=) 1 THEN g.status
			WHEN g.open THEN 'processing'
			ELSE 'partial_success' END,
	   CASE WHEN pg_catalog.jsonb_typeof(o.value OPERATOR(pg_catalog.->) 'customer_reference') OPERATOR(pg_catalog.=) 'string'
			THEN o.value OPERATOR(pg_catalog.->>) 'customer_reference' END,
	   CASE WHEN (o.value OPERATOR(pg_catalog.->>) 'created_at') OPERATOR(pg_catalog.~)
				 '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)?$'
			THEN (o.value OPERATOR(pg_catalog.->>) 'created_at')::pg_catalog.timestamptz END,
	   g.n::pg_catalog.int4,
	   g.count_requested,
	   g.count_allocated
  FROM (SELECT @extschema@.telnyx_list_inexplicit_orders(page_number, page_size) AS page) l,
	   pg_catalog.jsonb_array_elements(
		 CASE WHEN pg_catalog.jsonb_typeof(l.page OPERATOR(pg_catalog.->) 'data') OPERATOR(pg_catalog.=) 'array'
			  THEN l.page OPERATOR(pg_catalog.->) 'data'
			  ELSE '[]'::pg_catalog.jsonb END) WITH ORDINALITY AS o(value, at),
	   LATERAL (SELECT pg_catalog.count(*) AS n,
					   pg_catalog.count(DISTINCT x.status) AS statuses,
					   pg_catalog.min(x.status) AS status,
					   pg_catalog.count(*) FILTER (WHERE x.status IS NULL) AS unread,
					   pg_catalog.bool_or(x.status OPERATOR(pg_catalog.=) ANY ('{pending,processing}'::pg_catalog.text[])) AS open,
					   pg_catalog.sum(x.count_requested) AS count_requested,
					   pg_catalog.sum(x.count_allocated) AS count_allocated
				  FROM (SELECT CASE WHEN pg_catalog.jsonb_typeof(e OPERATOR(pg_catalog.->) 'status') OPERATOR(pg_catalog.=) 'string'
									THEN e OPERATOR(pg_catalog.->>) 'status' END AS status,
							   CASE WHEN (e OPERATOR(pg_catalog.->>) 'count_requested') OPERATOR(pg_catalog.~) '^\d{1,9}$'
									THEN (e OPERATOR(pg_catalog.->>) 'count_requested')::pg_catalog.int8 END AS count_requested,
							   CASE WHEN (e OPERATOR(pg_catalog.->>) 'count_allocated') OPERATOR(pg_catalog.~) '^\d{1,9}$'
									THEN (e OPERATOR(pg_catalog.->>) 'count_allocated')::pg_catalog.int8 END AS count_allocated
						  FROM pg_catalog.jsonb_array_elements(
								 CASE WHEN pg_catalog.jsonb_typeof(o.value OPERATOR(pg_catalog.->) 'ordering_groups') OPERATOR(pg_catalog.=) 'array'
									  THEN o.value OPERATOR(pg_catalog.->) 'ordering_groups'
									  ELSE '[]'::pg_catalog.jsonb END) AS e) x) g
 ORDER BY o.at
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_inexplicit_orders_list(integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_inexplicit_orders_list(integer, integer) IS 'One page of the account''s orders as rows (id, status, customer_reference, created_at, groups, count_requested, count_allocated), from telnyx_list_inexplicit_orders, which it calls as its caller. Writes nothing.';

-- ---------------------------------------------------------------------
-- Many databases, one account; progress; retention
-- ---------------------------------------------------------------------

/*
 * A fetch that failed is tried again with the requests' backoff, not when
 * its claim would have ended: the failures in a row, since the last
 * answer recorded.
 */
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ADD COLUMN fetch_failures integer NOT NULL DEFAULT 0;
ALTER TABLE @extschema@.telnyx_number_orders
	ADD COLUMN fetch_failures integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.fetch_failures IS 'Refreshes of the order that failed in a row since its last answer was recorded.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.fetch_failures IS 'Fetches of the number order that failed in a row since its last answer was recorded.';

/*
 * Each synchronous call, recorded in a transaction of its own before it
 * is sent: an order bought by a call whose transaction rolled back is
 * still this database's, and its sync finds it by the call.
 */
CREATE TABLE @extschema@.telnyx_order_calls (
	request_key			uuid PRIMARY KEY,
	customer_reference	text,
	body				jsonb NOT NULL,
	sent_at				timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX telnyx_order_calls_customer_reference_idx
	ON @extschema@.telnyx_order_calls (customer_reference);
CREATE INDEX telnyx_order_calls_sent_at_idx
	ON @extschema@.telnyx_order_calls (sent_at);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_calls', '');
COMMENT ON COLUMN @extschema@.telnyx_order_calls.request_key IS 'The Idempotency-Key of the call; telnyx_inexplicit_orders.request_key of its order.';
COMMENT ON COLUMN @extschema@.telnyx_order_calls.customer_reference IS 'The customer_reference the call sent, if any.';
COMMENT ON COLUMN @extschema@.telnyx_order_calls.body IS 'The request the call sent.';
COMMENT ON COLUMN @extschema@.telnyx_order_calls.sent_at IS 'When it was recorded, just before it was sent.';
COMMENT ON TABLE @extschema@.telnyx_order_calls IS 'Synchronous calls that sent an order, each recorded before it was sent, whatever became of its transaction: how a sync knows an order is this database''s.';

-- the purge of events and deliveries by telnyx.request_retention
CREATE INDEX telnyx_order_events_at_idx
	ON @extschema@.telnyx_order_events (at);
CREATE INDEX telnyx_webhook_deliveries_received_at_idx
	ON @extschema@.telnyx_webhook_deliveries (received_at);

COMMENT ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() IS 'Read the whole list of the account''s orders and record this database''s own (those it already records, those its requests name, those its calls sent, whatever became of the call''s transaction; every order with telnyx.sync_scope = ''account''). Returns how many orders it recorded or updated, not how many it read.';
