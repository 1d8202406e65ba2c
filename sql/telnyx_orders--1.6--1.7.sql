/* telnyx_orders--1.6--1.7.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.7'" to load this file. \quit

-- ---------------------------------------------------------------------
-- The spend guard: budgets, holds, the circuit breaker, the dry run
-- ---------------------------------------------------------------------

/*
 * Two more states of a request:
 *   held     not sent: over a spend limit, or one of more requests queued
 *            by one transaction than telnyx.max_requests_per_transaction;
 *            it waits for telnyx_release_requests() or a cancel, or for
 *            the end of the limit's window when the limit says so
 *            (next_attempt_at; infinity when only a release frees it)
 *   dry_run  queued under telnyx.dry_run: validated and recorded, never
 *            sent
 * held_reason says why it is (or was to be) held, held_batch names the
 * transaction whose requests the breaker held together, released_by the
 * administrator who released it (it is then sent whatever the limits say).
 */
ALTER TABLE @extschema@.telnyx_order_requests
	DROP CONSTRAINT telnyx_order_requests_state_check;
ALTER TABLE @extschema@.telnyx_order_requests
	ADD CONSTRAINT telnyx_order_requests_state_check
	CHECK (state IN ('queued', 'sending', 'retrying', 'sent', 'failed',
					 'unknown', 'cancelled', 'replicated', 'held', 'dry_run'));
ALTER TABLE @extschema@.telnyx_order_requests
	ADD COLUMN held_reason text,
	ADD COLUMN held_batch bigint,
	ADD COLUMN released_by oid;
CREATE INDEX telnyx_order_requests_held_idx
	ON @extschema@.telnyx_order_requests (next_attempt_at, id)
	WHERE state = 'held';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.state IS 'queued, sending, retrying, sent, failed, unknown, cancelled, replicated (arrived by logical replication: not sent here), held (over a spend limit or the per-transaction breaker: waits for a release) or dry_run (queued under telnyx.dry_run: never sent).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.next_attempt_at IS 'When it is next due; for a held request, when its limit''s window ends (infinity: only a release frees it).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.held_reason IS 'Why it is held (or, under the dry run, would have been).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.held_batch IS 'The transaction (its 64-bit id) that queued more requests than telnyx.max_requests_per_transaction: all of them are held together.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.released_by IS 'The role that released it from a hold: it is sent whatever the limits say.';

/* A synchronous call records who spent, and whether Telnyx refused it. */
ALTER TABLE @extschema@.telnyx_order_calls
	ADD COLUMN spent_by oid,
	ADD COLUMN refused_at timestamptz;
COMMENT ON COLUMN @extschema@.telnyx_order_calls.spent_by IS 'The role that called.';
COMMENT ON COLUMN @extschema@.telnyx_order_calls.refused_at IS 'When Telnyx refused it (no order was created): it no longer counts against a limit.';

/*
 * Limits on what may be sent, edited by administrators.  A row limits the
 * whole database (role NULL) or one role (the role that queued or called:
 * exactly that role, not its members), per hour or per day (UTC windows:
 * 10:00 to 11:00, midnight to midnight), in orders, in numbers requested,
 * or both.  What exceeds it is held: on_exceed 'hold' waits for a release,
 * 'wait' for the window's end (or a release).  A synchronous call over a
 * limit is refused (SQLSTATE TX402) and sends nothing.  No row, no limit.
 */
CREATE TABLE @extschema@.telnyx_spend_limits (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	role			regrole,
	per				text NOT NULL CHECK (per IN ('hour', 'day')),
	max_orders		integer CHECK (max_orders >= 0),
	max_numbers		integer CHECK (max_numbers >= 0),
	on_exceed		text NOT NULL DEFAULT 'hold'
		CHECK (on_exceed IN ('hold', 'wait')),
	note			text,
	CONSTRAINT telnyx_spend_limits_some_limit
		CHECK (max_orders IS NOT NULL OR max_numbers IS NOT NULL)
);
CREATE UNIQUE INDEX telnyx_spend_limits_scope_idx
	ON @extschema@.telnyx_spend_limits ((COALESCE(role, 0::pg_catalog.oid::pg_catalog.regrole)), per);
REVOKE ALL ON @extschema@.telnyx_spend_limits FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_spend_limits', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_spend_limits_id_seq', '');
COMMENT ON TABLE @extschema@.telnyx_spend_limits IS 'Spend limits an administrator sets: orders and numbers per hour or per day (UTC), for the database (role NULL) or one role. What exceeds one is held (queued) or refused (synchronous calls). No row, no limit.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.id IS 'The limit''s id.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.role IS 'The role limited (the role that queued or called, not its members); NULL limits the whole database.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.per IS 'The window: hour or day, in UTC.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.max_orders IS 'Orders that may be sent in a window; NULL: not limited.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.max_numbers IS 'Numbers that may be requested (count_requested summed) in a window; NULL: not limited.';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.on_exceed IS 'hold: a request over the limit waits for telnyx_release_requests(); wait: it is sent when the window rolls over (or released before).';
COMMENT ON COLUMN @extschema@.telnyx_spend_limits.note IS 'Why the limit is there, for the next administrator.';

/*
 * What was sent, per UTC hour and role: the count every limit is checked
 * against.  An order counts when it is first sent (queued requests) or
 * recorded just before it is sent (synchronous calls), once whatever its
 * retries; one that Telnyx refused, or a claim given back unsent, gives
 * its count back.  Written by the extension only.
 */
CREATE TABLE @extschema@.telnyx_spend_hours (
	hour			timestamptz NOT NULL,
	spent_by		oid NOT NULL,
	orders			bigint NOT NULL DEFAULT 0,
	numbers			bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (hour, spent_by)
);
REVOKE ALL ON @extschema@.telnyx_spend_hours FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_spend_hours', '');
COMMENT ON TABLE @extschema@.telnyx_spend_hours IS 'What was sent per UTC hour and role (orders, numbers requested): what the spend limits are checked against. Written by the extension.';
COMMENT ON COLUMN @extschema@.telnyx_spend_hours.hour IS 'The hour (UTC) the orders were sent in.';
COMMENT ON COLUMN @extschema@.telnyx_spend_hours.spent_by IS 'The role that queued or called.';
COMMENT ON COLUMN @extschema@.telnyx_spend_hours.orders IS 'Orders sent.';
COMMENT ON COLUMN @extschema@.telnyx_spend_hours.numbers IS 'Numbers requested by them.';

/*
 * The counts are this database's: a change that arrives by logical
 * replication (a publication FOR ALL TABLES) is dropped, so that another
 * database's totals never replace these, nor stop the subscription on a
 * duplicate key.  A restore with session_replication_role = replica keeps
 * its rows.
 */
CREATE FUNCTION @extschema@.telnyx_spend_hours_replicated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a
				WHERE a.backend_type OPERATOR(pg_catalog.~~) 'logical replication%') THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_spend_hours_replicated() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_spend_hours_replicated() IS 'Replica trigger: a change of the spend counts that arrives by logical replication is dropped (they are this database''s).';
CREATE TRIGGER telnyx_spend_hours_replicated
	BEFORE INSERT OR UPDATE ON @extschema@.telnyx_spend_hours
	FOR EACH ROW EXECUTE FUNCTION @extschema@.telnyx_spend_hours_replicated();
ALTER TABLE @extschema@.telnyx_spend_hours
	ENABLE REPLICA TRIGGER telnyx_spend_hours_replicated;

/* What was sent before this version counts from now on too. */
INSERT INTO @extschema@.telnyx_spend_hours (hour, spent_by, orders, numbers)
SELECT s.hour, s.spent_by, pg_catalog.count(*), pg_catalog.sum(s.numbers)
  FROM (SELECT pg_catalog.date_trunc('hour', r.first_sent_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
			   r.requested_by AS spent_by,
			   (SELECT pg_catalog.sum((g OPERATOR(pg_catalog.->>) 'count_requested')::integer)
				  FROM pg_catalog.jsonb_array_elements(r.body OPERATOR(pg_catalog.->) 'ordering_groups') g) AS numbers
		  FROM @extschema@.telnyx_order_requests r
		 WHERE r.first_sent_at IS NOT NULL AND r.attempts OPERATOR(pg_catalog.>) 0
		   AND r.state OPERATOR(pg_catalog.<>) ALL ('{failed,cancelled,replicated}')
		UNION ALL
		SELECT pg_catalog.date_trunc('hour', c.sent_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
			   0::pg_catalog.oid,
			   (SELECT pg_catalog.sum((g OPERATOR(pg_catalog.->>) 'count_requested')::integer)
				  FROM pg_catalog.jsonb_array_elements(c.body OPERATOR(pg_catalog.->) 'ordering_groups') g)
		  FROM @extschema@.telnyx_order_calls c) s
 GROUP BY s.hour, s.spent_by;

/* A held request is announced on a channel of its own, as every state change is. */
CREATE OR REPLACE FUNCTION @extschema@.telnyx_order_requests_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_catalog.pg_notify('telnyx_orders', '');
	IF NEW.state OPERATOR(pg_catalog.=) 'held' THEN
		PERFORM pg_catalog.pg_notify('telnyx_orders_held', '');
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@.telnyx_order_requests_notify() IS 'Trigger: NOTIFY telnyx_orders (no payload) when a request changes state, and telnyx_orders_held when it is held.';

/*
 * Releasing and cancelling held requests: an administrator's, granted
 * explicitly.  Which requests: those ids, or those a role queued, or one
 * transaction's batch, or every held one (all => true); several given
 * must all match.  A released request is sent whatever the limits say.
 */
CREATE FUNCTION @extschema@.telnyx_release_requests(
	ids bigint[] DEFAULT NULL,
	requested_by regrole DEFAULT NULL,
	held_batch bigint DEFAULT NULL,
	"all" boolean DEFAULT false)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_release_requests';
REVOKE ALL ON FUNCTION @extschema@.telnyx_release_requests(bigint[], regrole, bigint, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_release_requests(bigint[], regrole, bigint, boolean) IS 'Release held requests (by ids, by the role that queued them, by held_batch, or all => true) so that they are sent whatever the limits say; returns how many. For administrators: grant it explicitly.';

CREATE FUNCTION @extschema@.telnyx_cancel_held_requests(
	ids bigint[] DEFAULT NULL,
	requested_by regrole DEFAULT NULL,
	held_batch bigint DEFAULT NULL,
	"all" boolean DEFAULT false)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_cancel_held_requests';
REVOKE ALL ON FUNCTION @extschema@.telnyx_cancel_held_requests(bigint[], regrole, bigint, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_cancel_held_requests(bigint[], regrole, bigint, boolean) IS 'Cancel held requests (by ids, by the role that queued them, by held_batch, or all => true); returns how many. For administrators: grant it explicitly.';

COMMENT ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) IS 'Cancel a queued, retrying or held request of the calling role; returns whether it was cancelled.';

/* The queue's status counts held and dry-run requests and says why they wait. */
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
	   e.last_error_message,
	   r.held, r.dry_run,
	   h.held_because
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
				   AND q.updated_at OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.-) '1 hour'::pg_catalog.interval)) AS sent_last_hour,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'held') AS held,
			   pg_catalog.count(*) FILTER (WHERE q.state OPERATOR(pg_catalog.=) 'dry_run') AS dry_run
		  FROM @extschema@.telnyx_order_requests q) r
  LEFT JOIN @extschema@.telnyx_worker_status() w
	ON w.database OPERATOR(pg_catalog.=) pg_catalog.current_database()
  LEFT JOIN LATERAL (SELECT q.last_error, q.updated_at AS last_error_at,
							q.last_error_message
					   FROM @extschema@.telnyx_order_requests q
					  WHERE q.last_error IS NOT NULL
						AND q.state OPERATOR(pg_catalog.<>) 'sent'
					  ORDER BY q.updated_at DESC LIMIT 1) e ON true
  LEFT JOIN LATERAL (SELECT pg_catalog.string_agg(pg_catalog.format('%s: %s', x.n, x.held_reason),
												  '; ' ORDER BY x.n DESC) AS held_because
					   FROM (SELECT q.held_reason, pg_catalog.count(*) AS n
							   FROM @extschema@.telnyx_order_requests q
							  WHERE q.state OPERATOR(pg_catalog.=) 'held'
							  GROUP BY q.held_reason) x) h ON true;
COMMENT ON COLUMN @extschema@.telnyx_queue_status.held IS 'Requests held by a spend limit or the per-transaction breaker, waiting for a release.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.dry_run IS 'Requests queued under telnyx.dry_run (never sent).';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.held_because IS 'Why requests are held, with how many for each reason.';

CREATE OR REPLACE VIEW @extschema@.telnyx_queue_summary AS
SELECT s.worker_pid,
	   s.waiting_because,
	   s.queued OPERATOR(pg_catalog.+) s.retrying AS waiting,
	   s.sending,
	   s.unknown,
	   s.failed,
	   s.sent_last_hour,
	   pg_catalog.date_trunc('second', pg_catalog.now() OPERATOR(pg_catalog.-) s.oldest_queued_at) AS oldest_wait,
	   s.last_error_message,
	   s.held,
	   s.held_because
  FROM @extschema@.telnyx_queue_status s;
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.held IS 'Requests held by a spend limit or the per-transaction breaker.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.held_because IS 'Why they are held, with how many for each reason.';

/*
 * What was spent, per UTC day, role and customer_reference: orders sent,
 * numbers requested and numbers bought (allocated), and what the dry run
 * would have sent.  Every role's: grant it to administrators.
 */
CREATE VIEW @extschema@.telnyx_spend_report AS
SELECT (s.at AT TIME ZONE 'UTC')::date AS day,
	   pg_catalog.pg_get_userbyid(s.spent_by) AS role,
	   s.customer_reference,
	   pg_catalog.count(*) FILTER (WHERE NOT s.dry_run) AS orders,
	   COALESCE(pg_catalog.sum(s.numbers) FILTER (WHERE NOT s.dry_run), 0) AS numbers_requested,
	   COALESCE(pg_catalog.sum(s.bought) FILTER (WHERE NOT s.dry_run), 0) AS numbers_bought,
	   pg_catalog.count(*) FILTER (WHERE s.dry_run) AS dry_run_orders,
	   COALESCE(pg_catalog.sum(s.numbers) FILTER (WHERE s.dry_run), 0) AS dry_run_numbers
  FROM (SELECT COALESCE(r.first_sent_at, r.created_at) AS at,
			   r.requested_by AS spent_by,
			   r.body OPERATOR(pg_catalog.->>) 'customer_reference' AS customer_reference,
			   r.body, r.order_id,
			   r.state OPERATOR(pg_catalog.=) 'dry_run' AS dry_run
		  FROM @extschema@.telnyx_order_requests r
		 WHERE r.state OPERATOR(pg_catalog.=) 'dry_run'
			OR (r.attempts OPERATOR(pg_catalog.>) 0
				AND r.state OPERATOR(pg_catalog.<>) ALL ('{failed,cancelled,replicated}'))
		UNION ALL
		SELECT c.sent_at, c.spent_by, c.customer_reference, c.body, o.id, false
		  FROM @extschema@.telnyx_order_calls c
		  LEFT JOIN @extschema@.telnyx_inexplicit_orders o
			ON o.request_key OPERATOR(pg_catalog.=) c.request_key
		 WHERE c.refused_at IS NULL) s0
 CROSS JOIN LATERAL (
		SELECT s0.*,
			   (SELECT pg_catalog.sum((g OPERATOR(pg_catalog.->>) 'count_requested')::integer)
				  FROM pg_catalog.jsonb_array_elements(s0.body OPERATOR(pg_catalog.->) 'ordering_groups') g) AS numbers,
			   (SELECT pg_catalog.sum(og.count_allocated)
				  FROM @extschema@.telnyx_ordering_groups og
				 WHERE og.order_id OPERATOR(pg_catalog.=) s0.order_id) AS bought) s
 GROUP BY 1, 2, 3;
REVOKE ALL ON @extschema@.telnyx_spend_report FROM PUBLIC;
COMMENT ON VIEW @extschema@.telnyx_spend_report IS 'What was spent per UTC day, role and customer_reference: orders sent, numbers requested, numbers bought, and what the dry run would have sent. Every role''s: grant it to administrators.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.day IS 'The day (UTC) the orders were sent (queued, for the dry run).';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.role IS 'The role that queued or called.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.customer_reference IS 'The orders'' customer_reference.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.orders IS 'Orders sent (not those Telnyx refused).';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.numbers_requested IS 'Numbers they requested.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.numbers_bought IS 'Numbers Telnyx allocated to them, as last recorded.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.dry_run_orders IS 'Orders queued under telnyx.dry_run: what would have been sent.';
COMMENT ON COLUMN @extschema@.telnyx_spend_report.dry_run_numbers IS 'Numbers they would have requested.';

/* A dry-run request that arrives by logical replication stays what it is. */
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
	IF NEW.state OPERATOR(pg_catalog.<>) ALL ('{sent,failed,cancelled,dry_run}'::pg_catalog.text[]) THEN
		NEW.state := 'replicated';
		NEW.claimed_by_pid := NULL;
		NEW.claimed_by_start := NULL;
		NEW.claim_token := NULL;
		NEW.lease_until := NULL;
	END IF;
	RETURN NEW;
END
$$;
