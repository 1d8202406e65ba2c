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
 * A request that arrives by logical replication (a subscriber that
 * receives this table) is another database's to send: it arrives as
 * "replicated", which no sender here touches, and only its final states
 * (sent, failed, cancelled) are taken as they come.  telnyx_resume_queue()
 * makes such requests this database's, to be looked up before anything is
 * sent.  The trigger fires only for replication (session_replication_role
 * = replica, as the apply worker runs).
 */
ALTER TABLE @extschema@.telnyx_order_requests
	DROP CONSTRAINT telnyx_order_requests_state_check,
	ADD CONSTRAINT telnyx_order_requests_state_check
		CHECK (state IN ('queued', 'sending', 'retrying', 'sent', 'failed',
						 'unknown', 'cancelled', 'replicated'));
CREATE FUNCTION @extschema@.telnyx_order_requests_replicated()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.state OPERATOR(pg_catalog.<>) ALL ('{sent,failed,cancelled}'::pg_catalog.text[]) THEN
		NEW.state := 'replicated';
		NEW.claimed_by_pid := NULL;
		NEW.claimed_by_start := NULL;
		NEW.lease_until := NULL;
	END IF;
	RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_requests_replicated() FROM PUBLIC;
CREATE TRIGGER telnyx_order_requests_replicated
	BEFORE INSERT OR UPDATE ON @extschema@.telnyx_order_requests
	FOR EACH ROW EXECUTE FUNCTION @extschema@.telnyx_order_requests_replicated();
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE REPLICA TRIGGER telnyx_order_requests_replicated;

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
	   r.replicated,
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

/* Every table, view, column and function explains itself (\d+, \df+). */
COMMENT ON TABLE @extschema@.telnyx_inexplicit_orders IS 'Inexplicit number orders placed at Telnyx, one row per order, as Telnyx last described it.';
COMMENT ON TABLE @extschema@.telnyx_ordering_groups IS 'The ordering groups of each order: the criteria asked for and what Telnyx allocated.';
COMMENT ON TABLE @extschema@.telnyx_number_orders IS 'The number orders Telnyx created under each group, followed until they end.';
COMMENT ON TABLE @extschema@.telnyx_phone_numbers IS 'The phone numbers of each number order: one row per number under each link.';
COMMENT ON TABLE @extschema@.telnyx_order_events IS 'Changes worth announcing (group status or count, numbers bought), each also sent by NOTIFY telnyx_orders with its seq.';
COMMENT ON TABLE @extschema@.telnyx_order_requests IS 'The queue: one row per order request, from enqueue to its one order or a recorded failure. A role sees only its own.';
COMMENT ON TABLE @extschema@.telnyx_queue_home IS 'Where this queue lives (cluster and database); a restored or cloned database does not match and waits for telnyx_resume_queue().';
COMMENT ON TABLE @extschema@.telnyx_webhook_deliveries IS 'Webhook deliveries received by telnyx_apply_webhook, by event id, so that a replay is applied once.';
COMMENT ON VIEW @extschema@.telnyx_order_allocations IS 'Per order and group: requested, allocated, shortfall, numbers bought, status.';
COMMENT ON VIEW @extschema@.telnyx_purchased_numbers IS 'Every number bought or being bought, with its order, group and customer_reference.';
COMMENT ON VIEW @extschema@.telnyx_open_orders IS 'Orders still being filled: since when, groups open, numbers pending, next refresh.';
COMMENT ON VIEW @extschema@.telnyx_queue_status IS 'The queue of this database and its worker at a glance: requests by state, oldest wait, latest error, recent sends, why the worker waits. Counts every role''s requests.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.id IS 'The order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.connection_id IS 'The connection the numbers are assigned to.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.messaging_profile_id IS 'The messaging profile the numbers are assigned to.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.customer_reference IS 'The customer_reference given with the order.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.billing_group_id IS 'The billing group of the order.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.created_at IS 'When Telnyx created it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.updated_at IS 'When Telnyx last changed it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.data IS 'Telnyx''s whole answer, as last fetched.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.first_seen_at IS 'When this row was first recorded.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.synced_at IS 'When this row was last written from an answer.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.found_by_sync IS 'First recorded by the sync of the account''s list, not by the call that placed it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.next_refresh_at IS 'When it is next fetched; NULL once it has ended.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.number_order_id IS 'The number order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.sub_number_order_ids IS 'Its sub number orders, as Telnyx lists them.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.synced_at IS 'When this row was last written from an answer.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.status IS 'Status as Telnyx gives it.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.phone_numbers_count IS 'Numbers in it, as Telnyx counts them.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.requirements_met IS 'Whether the regulatory requirements are met.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.customer_reference IS 'The customer_reference given with the order.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.created_at IS 'When Telnyx created it.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.updated_at IS 'When Telnyx last changed it.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.data IS 'Telnyx''s whole answer, as last fetched.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.fetched_at IS 'When it was last fetched.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.next_fetch_at IS 'When it is next fetched; NULL once it and its numbers have ended.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.customer_reference IS 'The customer_reference given with the order.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.open_since IS 'When the order was created.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.open_for IS 'How long it has been open.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.groups_open IS 'Groups not yet ended.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.count_requested IS 'Numbers asked for.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.count_allocated IS 'Numbers Telnyx allocated.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.numbers_bought IS 'Numbers bought (status success).';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.numbers_pending IS 'Numbers still pending.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.last_refreshed_at IS 'When it was last fetched.';
COMMENT ON COLUMN @extschema@.telnyx_open_orders.next_refresh_at IS 'When it is next fetched; NULL once it has ended.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.customer_reference IS 'The customer_reference given with the order.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.country_iso IS 'Country asked for (ISO 3166-1 alpha-2).';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.phone_number_type IS 'Type of number asked for (local, toll_free, mobile, national, ...).';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.count_requested IS 'Numbers asked for.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.count_allocated IS 'Numbers Telnyx allocated.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.shortfall IS 'Numbers asked for but not allocated.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.numbers_bought IS 'Numbers bought (status success).';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.status IS 'The group''s status as Telnyx gives it.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.error_reason IS 'Why Telnyx could not allocate them all, when it says.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.number_order_ids IS 'The group''s number orders.';
COMMENT ON COLUMN @extschema@.telnyx_order_allocations.created_at IS 'When Telnyx created the order.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.seq IS 'The event''s number: read events with seq greater than the last one seen.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.at IS 'When it was recorded.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.event IS 'group_changed or numbers_bought.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.number_order_id IS 'The number order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.status IS 'The group''s new status (group_changed).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.count_allocated IS 'The group''s new count allocated (group_changed).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.numbers IS 'How many numbers were bought (numbers_bought).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.id IS 'The request''s id (what the enqueue returned).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.request_key IS 'Sent as the Idempotency-Key: the same request is the same order.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.body IS 'The order as requested (JSON).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.state IS 'queued, sending, retrying, sent, failed, unknown, cancelled, or replicated (arrived by logical replication: not sent here).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.attempts IS 'Times it was sent.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.next_attempt_at IS 'When it is next due.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.lease_until IS 'How long the sender that claimed it holds it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.claimed_by_pid IS 'The process that claimed it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.claimed_by_start IS 'That process''s start time.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.last_error IS 'Its latest error (JSON: class, status, Telnyx errors, words).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.order_id IS 'The order it created.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.created_at IS 'When it was queued.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.updated_at IS 'When its state last changed.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.requested_by IS 'The role that queued it; that role (and its members) alone see it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.request_body IS 'The exact bytes sent, so that a resend is the same request.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.first_sent_at IS 'When it was first sent.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.country_iso IS 'Country asked for (ISO 3166-1 alpha-2).';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.phone_number_type IS 'Type of number asked for (local, toll_free, mobile, national, ...).';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.national_destination_code IS 'Area code asked for.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.administrative_area IS 'State or province asked for.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.locality IS 'City asked for.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.features IS 'Features asked for (sms, voice, ...).';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.phone_number_starts_with IS 'Digits the number must start with.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.phone_number_ends_with IS 'Digits the number must end with.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.phone_number_contains IS 'Digits the number must contain.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.strategy IS 'always or never: whether Telnyx may fill the group partially.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.quickship IS 'Only numbers that ship at once.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.exclude_held_numbers IS 'Leave out numbers on hold.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.count_requested IS 'Numbers asked for.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.count_allocated IS 'Numbers Telnyx allocated.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.status IS 'The group''s status as Telnyx gives it (pending, processing, success, partial_success, failed).';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.error_reason IS 'Why Telnyx could not allocate them all, when it says.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.created_at IS 'When Telnyx created it.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.updated_at IS 'When Telnyx last changed it.';
COMMENT ON COLUMN @extschema@.telnyx_ordering_groups.synced_at IS 'When this row was last written from an answer.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.number_order_id IS 'The number order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.phone_number IS 'The number, in E.164.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.id IS 'The number''s id in the number order.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.status IS 'The number''s status (pending, success, failure, ...).';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.phone_number_type IS 'The number''s type.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.requirements_met IS 'Whether the regulatory requirements are met.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.requirements_status IS 'Where its regulatory requirements stand.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.deadline IS 'The deadline for its requirements.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.country_code IS 'Its country.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.data IS 'Telnyx''s whole answer, as last fetched.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.first_seen_at IS 'When this row was first recorded.';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.bought_at IS 'When it was first seen bought (status success).';
COMMENT ON COLUMN @extschema@.telnyx_phone_numbers.synced_at IS 'When this row was last written from an answer.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.phone_number IS 'The number, in E.164.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.status IS 'The number''s status.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.customer_reference IS 'The customer_reference given with the order.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.country_iso IS 'Country asked for (ISO 3166-1 alpha-2).';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.phone_number_type IS 'The number''s type.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.number_order_id IS 'The number order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.phone_number_id IS 'The number''s id in the number order.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.requirements_met IS 'Whether the regulatory requirements are met.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.requirements_status IS 'Where its regulatory requirements stand.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.deadline IS 'The deadline for its requirements.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.bought_at IS 'When it was first seen bought.';
COMMENT ON COLUMN @extschema@.telnyx_purchased_numbers.first_seen_at IS 'When this row was first recorded.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.only_row IS 'Always true: the table has one row.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.system_identifier IS 'The cluster''s system identifier.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.database_oid IS 'The database''s oid.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.database_name IS 'The database''s name.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.since IS 'When the queue was first used here.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.database IS 'This database.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.worker_pid IS 'The worker sending this queue; NULL if none runs.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.worker_started_at IS 'When the worker started.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.waiting_because IS 'Why nothing is sent (no key, key refused, no endpoint, a restored clone, no worker and why); NULL when it sends.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.rate_limited_until IS 'The end of a 429''s back-off, while it lasts.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.queued IS 'Requests queued.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.sending IS 'Requests being sent.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.retrying IS 'Requests waiting for a retry.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.unknown IS 'Requests whose outcome is being reconciled.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.sent IS 'Requests sent, each with its order.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.failed IS 'Requests that failed, each with its error.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.cancelled IS 'Requests cancelled.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.replicated IS 'Requests that arrived by logical replication: another database sends them.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.oldest_queued_at IS 'The oldest request still waiting.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.next_retry_at IS 'The next retry due.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.last_error IS 'The latest error of a request not sent.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.last_error_at IS 'When it was recorded.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.sent_last_minute IS 'Requests sent in the last minute.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.sent_last_hour IS 'Requests sent in the last hour.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.worker_orders_sent IS 'Orders the worker created since it started.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.worker_rate_limited IS '429 answers the worker got since it started.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.last_rate_limited_at IS 'The worker''s latest 429.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.event_id IS 'The delivery''s event id.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.event_type IS 'The event type (number_order.complete, ...).';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.occurred_at IS 'When Telnyx says it occurred.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.number_order_id IS 'The number order it is about.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.applied IS 'Whether it was applied (false: remembered for a number order no order links to yet).';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.received_at IS 'When it arrived.';
COMMENT ON FUNCTION @extschema@.telnyx_create_inexplicit_order(jsonb, text, text, text, text) IS 'Order numbers now: validate the groups, POST the order, record it and its groups, return Telnyx''s answer.';
COMMENT ON FUNCTION @extschema@.telnyx_get_inexplicit_order(uuid) IS 'Fetch an order from Telnyx, record it, return the answer.';
COMMENT ON FUNCTION @extschema@.telnyx_get_inexplicit_order(text) IS 'Fetch an order whose id is not a uuid from Telnyx, record it, return the answer.';
COMMENT ON FUNCTION @extschema@.telnyx_list_inexplicit_orders(integer, integer) IS 'One page of the account''s orders, as Telnyx lists them.';
COMMENT ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() IS 'Read the account''s whole list of orders and record every one the tables lack; returns how many.';
COMMENT ON FUNCTION @extschema@.telnyx_refresh_orders() IS 'Fetch every order and number order due for a refresh and record what Telnyx says now; returns how many.';
COMMENT ON FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) IS 'Queue an order for the background worker (sent once this transaction commits); returns the request id.';
COMMENT ON FUNCTION @extschema@.telnyx_order_trigger() IS 'Trigger: AFTER INSERT queues one order per row inserted; BEFORE INSERT reserves the request id in telnyx_request_id.';
COMMENT ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) IS 'Cancel a queued or retrying request of the calling role; returns whether it was cancelled.';
COMMENT ON FUNCTION @extschema@.telnyx_resume_queue() IS 'Let a restored or cloned database send its queue; returns whether it was paused.';
COMMENT ON PROCEDURE @extschema@.telnyx_process_queue(integer, integer) IS 'Send the due requests now, in this session, as the worker would; returns how many were handled.';
COMMENT ON FUNCTION @extschema@.telnyx_apply_webhook(text, text, text) IS 'Verify a signed webhook delivery (Ed25519) and apply it; returns what was done.';
COMMENT ON FUNCTION @extschema@.telnyx_purge_requests(interval) IS 'Delete finished requests last changed more than older_than ago (never unknown or unfinished ones, never orders); returns how many.';
COMMENT ON FUNCTION @extschema@.telnyx_restart_workers() IS 'Ask the launcher to restart every background worker, one per database; false if no launcher runs.';
COMMENT ON FUNCTION @extschema@.telnyx_worker_status() IS 'The running background workers of every database: pid, why each waits, orders sent, 429s.';
COMMENT ON FUNCTION @extschema@.telnyx_queue_unserved() IS 'Why no background worker sends this database''s queue; NULL when one does.';
COMMENT ON FUNCTION @extschema@.telnyx_guard_drop() IS 'Event trigger: refuse DROP EXTENSION telnyx_orders while orders are recorded, unless telnyx.allow_drop is on.';
COMMENT ON FUNCTION @extschema@.telnyx_order_requests_notify() IS 'Trigger: NOTIFY telnyx_orders (no payload) when a request changes state.';
COMMENT ON FUNCTION @extschema@.telnyx_ordering_groups_changed() IS 'Trigger: record and announce a group''s new status or count (telnyx_order_events).';
COMMENT ON FUNCTION @extschema@.telnyx_order_requests_replicated() IS 'Replica trigger: a request that arrives by logical replication is another database''s to send (state replicated).';
COMMENT ON FUNCTION @extschema@.telnyx_phone_numbers_bought() IS 'Trigger: record and announce numbers bought (telnyx_order_events).';
