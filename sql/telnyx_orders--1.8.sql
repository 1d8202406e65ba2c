/* telnyx_orders 1.8: order phone numbers from Telnyx with SQL */

\echo Use "CREATE EXTENSION telnyx_orders" to load this file. \quit

/*
 * Version 1.8 in one script: what telnyx_orders--1.0.sql and the upgrade
 * scripts up to 1.8 leave, object by object.  CREATE EXTENSION runs it and
 * the upgrade scripts after it; sql/schema.sql checks that the result is
 * the schema that 1.0 upgraded one version at a time has.
 *
 * A column an upgrade added stands last, where the upgrade put it, so that
 * SELECT * and a row's text give the same on both.  The upgrades' data
 * migrations, and their warnings about settings of earlier versions, have
 * nothing to do here.
 */

/*---- Orders, as Telnyx describes them ----*/

/*
 * One row per inexplicit number order, as Telnyx last described it.  The
 * C functions upsert these rows; "data" keeps the whole last answer so that
 * nothing Telnyx said is lost even where no column holds it.  Order ids are
 * strings, as the spec types them: an id we could not store would be an
 * order bought and forgotten.
 *
 * found_by_sync: first recorded by the worker's periodic sync.
 * next_refresh_at: when an order still being filled is fetched again (NULL
 * once every group has ended).
 * request_key: the Idempotency-Key of the queued request, or of the
 * synchronous call, whose answer the order was, or that reconciliation
 * matched it to; NULL for an order learned otherwise (a sync, a fetch by
 * id), which is free to be matched to the request that made it.
 */
CREATE TABLE @extschema@.telnyx_inexplicit_orders (
	id						text PRIMARY KEY,
	connection_id			text,
	messaging_profile_id	text,
	customer_reference		text,
	billing_group_id		text,
	created_at				timestamptz,
	updated_at				timestamptz,
	data					jsonb NOT NULL,
	first_seen_at			timestamptz NOT NULL DEFAULT now(),
	synced_at				timestamptz NOT NULL DEFAULT now(),
	found_by_sync			boolean NOT NULL DEFAULT false,
	next_refresh_at			timestamptz,
	request_key				uuid,
	fetch_failures		integer NOT NULL DEFAULT 0
);

/*
 * A hash index has no size limit on its key, so an order with a long
 * customer_reference (made elsewhere, found by a sync) can always be kept.
 */
CREATE INDEX telnyx_inexplicit_orders_customer_reference_idx
	ON @extschema@.telnyx_inexplicit_orders USING hash (customer_reference);
CREATE INDEX telnyx_inexplicit_orders_refresh_idx
	ON @extschema@.telnyx_inexplicit_orders (next_refresh_at)
	WHERE next_refresh_at IS NOT NULL;
CREATE INDEX telnyx_inexplicit_orders_request_key_idx
	ON @extschema@.telnyx_inexplicit_orders (request_key);

COMMENT ON TABLE @extschema@.telnyx_inexplicit_orders IS 'Inexplicit number orders placed at Telnyx, one row per order, as Telnyx last described it.';
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.fetch_failures IS 'Refreshes of the order that failed in a row since its last answer was recorded.';
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
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.request_key IS 'The Idempotency-Key of the request or call this order answers; NULL when it was learned otherwise and not matched to a request yet.';

/*
 * One row per ordering group of an order.  group_index counts from 1, in
 * the order Telnyx lists the groups (the order they were requested in).
 */
CREATE TABLE @extschema@.telnyx_ordering_groups (
	order_id					text NOT NULL
		REFERENCES @extschema@.telnyx_inexplicit_orders (id) ON DELETE CASCADE,
	group_index					integer NOT NULL CHECK (group_index >= 1),
	country_iso					text,
	phone_number_type			text,
	national_destination_code	text,
	administrative_area			text,
	locality					text,
	features					text[],
	phone_number_starts_with	text,
	phone_number_ends_with		text,
	phone_number_contains		text,
	strategy					text,
	quickship					boolean,
	exclude_held_numbers		boolean,
	count_requested				integer,
	count_allocated				integer,
	status						text,
	error_reason				text,
	created_at					timestamptz,
	updated_at					timestamptz,
	synced_at					timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, group_index)
);

COMMENT ON TABLE @extschema@.telnyx_ordering_groups IS 'The ordering groups of each order: the criteria asked for and what Telnyx allocated.';
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

/*
 * A number order is linked to each ordering group that Telnyx lists it
 * under: keyed by (order_id, group_index, number_order_id), so that one
 * number order listed under two groups is kept under both.  Its ids are
 * strings, as the spec types them.  The columns from status on are what
 * GET /number_orders/{id} last said; the number order is fetched again
 * (next_fetch_at) while it or one of its numbers is pending.
 */
CREATE TABLE @extschema@.telnyx_number_orders (
	number_order_id			text NOT NULL,
	order_id				text NOT NULL,
	group_index				integer NOT NULL,
	sub_number_order_ids	text[] NOT NULL DEFAULT '{}',
	synced_at				timestamptz NOT NULL DEFAULT now(),
	status					text,
	phone_numbers_count		integer,
	requirements_met		boolean,
	customer_reference		text,
	created_at				timestamptz,
	updated_at				timestamptz,
	data					jsonb,
	fetched_at				timestamptz,
	next_fetch_at			timestamptz DEFAULT now(),
	PRIMARY KEY (order_id, group_index, number_order_id),
	FOREIGN KEY (order_id, group_index)
		REFERENCES @extschema@.telnyx_ordering_groups (order_id, group_index)
		ON DELETE CASCADE,
	fetch_failures		integer NOT NULL DEFAULT 0
);

CREATE INDEX telnyx_number_orders_number_order_idx
	ON @extschema@.telnyx_number_orders (number_order_id);
CREATE INDEX telnyx_number_orders_fetch_idx
	ON @extschema@.telnyx_number_orders (next_fetch_at)
	WHERE next_fetch_at IS NOT NULL;

COMMENT ON TABLE @extschema@.telnyx_number_orders IS 'The number orders Telnyx created under each group, followed until they end.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.fetch_failures IS 'Fetches of the number order that failed in a row since its last answer was recorded.';
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

/*
 * One row per phone number of a number order, under each group the number
 * order is linked to, as the number order's last answer listed it.
 * bought_at is when it was first seen with status "success".
 */
CREATE TABLE @extschema@.telnyx_phone_numbers (
	order_id			text NOT NULL,
	group_index			integer NOT NULL,
	number_order_id		text NOT NULL,
	phone_number		text NOT NULL,
	id					text,
	status				text,
	phone_number_type	text,
	requirements_met	boolean,
	requirements_status	text,
	deadline			timestamptz,
	country_code		text,
	data				jsonb NOT NULL,
	first_seen_at		timestamptz NOT NULL DEFAULT now(),
	bought_at			timestamptz,
	synced_at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (order_id, group_index, number_order_id, phone_number),
	FOREIGN KEY (order_id, group_index, number_order_id)
		REFERENCES @extschema@.telnyx_number_orders (order_id, group_index, number_order_id)
		ON DELETE CASCADE
);
CREATE INDEX telnyx_phone_numbers_phone_number_idx
	ON @extschema@.telnyx_phone_numbers (phone_number);

COMMENT ON TABLE @extschema@.telnyx_phone_numbers IS 'The phone numbers of each number order: one row per number under each link.';
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

/*
 * What changed, as it changed: a group's status or count_allocated, and
 * numbers bought.  Each row is announced on the channel telnyx_orders with
 * the payload {"event": ..., "seq": ...}: a listener reads the row it
 * names (it holds nothing a role without SELECT here could not see).
 * Numbers bought are recorded and announced by the statement that writes
 * the numbers (store.c), not by a trigger: see the triggers below.
 */
CREATE TABLE @extschema@.telnyx_order_events (
	seq					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at					timestamptz NOT NULL DEFAULT now(),
	event				text NOT NULL
		CHECK (event IN ('group_changed', 'numbers_bought')),
	order_id			text NOT NULL,
	group_index			integer NOT NULL,
	number_order_id		text,
	status				text,
	count_allocated		integer,
	numbers				integer,
	customer_reference	text
);
CREATE INDEX telnyx_order_events_order_idx
	ON @extschema@.telnyx_order_events (order_id, group_index);

COMMENT ON TABLE @extschema@.telnyx_order_events IS 'Changes worth announcing (group status or count, numbers bought), each also sent by NOTIFY telnyx_orders with its seq.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.seq IS 'The event''s number: read events with seq greater than the last one seen.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.at IS 'When it was recorded.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.event IS 'group_changed or numbers_bought.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.order_id IS 'The inexplicit number order (telnyx_inexplicit_orders.id).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.group_index IS 'The ordering group, counting from 1 in the order''s list.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.number_order_id IS 'The number order''s id at Telnyx.';
COMMENT ON COLUMN @extschema@.telnyx_order_events.status IS 'The group''s new status (group_changed).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.count_allocated IS 'The group''s new count allocated (group_changed).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.numbers IS 'How many numbers were bought (numbers_bought).';
COMMENT ON COLUMN @extschema@.telnyx_order_events.customer_reference IS 'The customer_reference of the order, when the event was recorded.';

/*
 * Webhook deliveries applied, by event id: the same delivery twice has one
 * effect.
 */
CREATE TABLE @extschema@.telnyx_webhook_deliveries (
	event_id			text PRIMARY KEY,
	event_type			text,
	occurred_at			timestamptz,
	number_order_id		text,
	applied				boolean NOT NULL,
	received_at			timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE @extschema@.telnyx_webhook_deliveries IS 'Webhook deliveries received by telnyx_apply_webhook, by event id, so that a replay is applied once.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.event_id IS 'The delivery''s event id.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.event_type IS 'The event type (number_order.complete, ...).';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.occurred_at IS 'When Telnyx says it occurred.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.number_order_id IS 'The number order it is about.';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.applied IS 'Whether it was applied (false: remembered for a number order no order links to yet, or older than what was recorded).';
COMMENT ON COLUMN @extschema@.telnyx_webhook_deliveries.received_at IS 'When it arrived.';

/*---- The queue ----*/

/*
 * One row per order request waiting for, or done with, the background
 * worker.  The row is written in the caller's transaction; the worker sends
 * it after commit.  States:
 *   queued     waiting to be sent
 *   sending    claimed by a sender (claimed_by_*) until lease_until
 *   retrying   not sent yet (rate limited, or could not reach Telnyx);
 *              waits until next_attempt_at
 *   sent       the order exists; order_id is set and its rows are recorded
 *   failed     Telnyx rejected it for good; last_error says why
 *   unknown    the outcome is uncertain; being reconciled against the list
 *              of orders before anything is sent again
 *   cancelled  cancelled while queued or retrying
 *   replicated arrived by logical replication: another database's to send
 *   held       not sent: over a spend limit, or one of more requests queued
 *              by one transaction than telnyx.max_requests_per_transaction;
 *              it waits for telnyx_release_requests() or a cancel, or for
 *              the end of the limit's window when the limit says so
 *              (next_attempt_at; infinity when only a release frees it)
 *   dry_run    queued under telnyx.dry_run: validated and recorded, never
 *              sent
 *
 * held_reason says why it is (or was to be) held, held_batch names the
 * transaction whose requests the breaker held together, released_by the
 * administrator who released it (it is then sent whatever the limits say).
 *
 * Each request keeps who queued it, the exact bytes sent (a resend must be
 * the same request, byte for byte, under the same Idempotency-Key), and
 * when it was first sent (the start of the window in which its order can
 * have been created).
 *
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
CREATE TABLE @extschema@.telnyx_order_requests (
	id						bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_key				uuid NOT NULL UNIQUE,
	body					jsonb NOT NULL,
	state					text NOT NULL DEFAULT 'queued'
		CONSTRAINT telnyx_order_requests_state_check
		CHECK (state IN ('queued', 'sending', 'retrying', 'sent', 'failed',
						 'unknown', 'cancelled', 'replicated', 'held', 'dry_run')),
	attempts				integer NOT NULL DEFAULT 0,
	next_attempt_at			timestamptz NOT NULL DEFAULT now(),
	lease_until				timestamptz,
	claimed_by_pid			integer,
	claimed_by_start		timestamptz,
	last_error				jsonb,
	order_id				text,
	created_at				timestamptz NOT NULL DEFAULT now(),
	updated_at				timestamptz NOT NULL DEFAULT now(),
	requested_by			oid NOT NULL,
	request_body			text NOT NULL,
	first_sent_at			timestamptz,
	claim_token				bigint,
	unknown_since			timestamptz,
	lookups					integer NOT NULL DEFAULT 0,
	home_system_identifier	bigint,
	home_database_oid		oid,
	last_error_message	text GENERATED ALWAYS AS (
		COALESCE((last_error OPERATOR(pg_catalog.->>) 'title')
				 OPERATOR(pg_catalog.||) ': '
				 OPERATOR(pg_catalog.||) (last_error OPERATOR(pg_catalog.->>) 'detail'),
				 last_error OPERATOR(pg_catalog.->>) 'detail',
				 last_error OPERATOR(pg_catalog.->>) 'title',
				 last_error OPERATOR(pg_catalog.->>) 'reason')) STORED,
	held_reason				text,
	held_batch				bigint,
	released_by				oid
) WITH (fillfactor = 50);

/*
 * The record's indexes: what never changes.  created_at serves the purge
 * of finished requests, oldest first.  Half of each page is left free: a
 * claim changes every request of a page at once (they were queued
 * together), and each needs room there for its next version; the one
 * before is pruned by the time the outcome is written.
 */
CREATE INDEX telnyx_order_requests_created_idx
	ON @extschema@.telnyx_order_requests (created_at);

/*
 * A role sees only the requests it (or a role it is a member of) queued.
 * The extension's owner and the worker bypass the policy.
 */
ALTER TABLE @extschema@.telnyx_order_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY telnyx_order_requests_own ON @extschema@.telnyx_order_requests
	FOR SELECT
	USING (pg_catalog.pg_has_role(CURRENT_USER, requested_by, 'MEMBER'));

COMMENT ON TABLE @extschema@.telnyx_order_requests IS 'The queue: one row per order request, from enqueue to its one order or a recorded failure. A role sees only its own.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.last_error_message IS 'Its latest error in words: Telnyx''s title and detail, or why it was not sent.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.id IS 'The request''s id (what the enqueue returned).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.request_key IS 'Sent as the Idempotency-Key: the same request is the same order.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.body IS 'The order as requested (JSON).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.state IS 'queued, sending, retrying, sent, failed, unknown, cancelled, replicated (arrived by logical replication: not sent here), held (over a spend limit or the per-transaction breaker: waits for a release) or dry_run (queued under telnyx.dry_run: never sent).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.attempts IS 'Times it was sent.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.next_attempt_at IS 'When it is next due; for a held request, when its limit''s window ends (infinity: only a release frees it).';
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
COMMENT ON COLUMN @extschema@.telnyx_order_requests.claim_token IS 'The token of the claim that holds the request (sending, or unknown being reconciled); every outcome written names it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.unknown_since IS 'When the outcome became unknown: the last attempt could not create an order after this.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.lookups IS 'Whole reads of the list of orders that found no order of this request since unknown_since.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_system_identifier IS 'The system identifier of the cluster where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.home_database_oid IS 'The database where the request was queued: only a sender there sends it.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.held_reason IS 'Why it is held (or, under the dry run, would have been).';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.held_batch IS 'The transaction (its 64-bit id) that queued more requests than telnyx.max_requests_per_transaction: all of them are held together.';
COMMENT ON COLUMN @extschema@.telnyx_order_requests.released_by IS 'The role that released it from a hold: it is sent whatever the limits say.';

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

COMMENT ON TABLE @extschema@.telnyx_queue_home IS 'Where this queue lives (cluster and database); a restored or cloned database does not match and waits for telnyx_resume_queue().';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.only_row IS 'Always true: the table has one row.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.system_identifier IS 'The cluster''s system identifier.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.database_oid IS 'The database''s oid.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.database_name IS 'The database''s name.';
COMMENT ON COLUMN @extschema@.telnyx_queue_home.since IS 'When the queue was first used here.';

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

/*---- What pg_dump keeps ----*/

/* The rows are the record of what was bought and what was asked for. */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_inexplicit_orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_ordering_groups', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_number_orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_requests', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_requests_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_queue_home', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_phone_numbers', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_events_seq_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_webhook_deliveries', '');

/*---- Ordering and reading orders ----*/

/*
 * The functions run as their caller.  The C code does as the extension's
 * owner only its own statements on the extension's tables, with a pinned
 * search_path; whatever a user wrote (a cast, an output function) runs
 * with the user's rights.  Ordering spends money: nobody may call them
 * until granted.
 */
CREATE FUNCTION @extschema@.telnyx_create_inexplicit_order(
	ordering_groups			jsonb,
	connection_id			text DEFAULT NULL,
	messaging_profile_id	text DEFAULT NULL,
	customer_reference		text DEFAULT NULL,
	billing_group_id		text DEFAULT NULL)
RETURNS jsonb
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_create_inexplicit_order';
REVOKE ALL ON FUNCTION @extschema@.telnyx_create_inexplicit_order(jsonb, text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_create_inexplicit_order(jsonb, text, text, text, text) IS 'Order numbers now: validate the groups, POST the order, record it and its groups, return Telnyx''s answer.';

CREATE FUNCTION @extschema@.telnyx_get_inexplicit_order(id uuid)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_get_inexplicit_order';
REVOKE ALL ON FUNCTION @extschema@.telnyx_get_inexplicit_order(uuid) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_get_inexplicit_order(uuid) IS 'Fetch an order from Telnyx, record it, return the answer.';

/* An order whose id is not a uuid can be fetched too. */
CREATE FUNCTION @extschema@.telnyx_get_inexplicit_order(id text)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_get_inexplicit_order_text';
REVOKE ALL ON FUNCTION @extschema@.telnyx_get_inexplicit_order(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_get_inexplicit_order(text) IS 'Fetch an order whose id is not a uuid from Telnyx, record it, return the answer.';

CREATE FUNCTION @extschema@.telnyx_list_inexplicit_orders(
	page_number integer DEFAULT 1,
	page_size	integer DEFAULT 20)
RETURNS jsonb
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_list_inexplicit_orders';
REVOKE ALL ON FUNCTION @extschema@.telnyx_list_inexplicit_orders(integer, integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_list_inexplicit_orders(integer, integer) IS 'One page of the account''s orders, as Telnyx lists them.';

CREATE FUNCTION @extschema@.telnyx_sync_inexplicit_orders()
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_sync_inexplicit_orders';
REVOKE ALL ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() IS 'Read the whole list of the account''s orders and record this database''s own (those it already records, those its requests name, those its calls sent, whatever became of the call''s transaction; every order with telnyx.sync_scope = ''account''). Returns how many orders it recorded or updated, not how many it read.';

/* Fetch every order due for a refresh, once; returns how many were. */
CREATE FUNCTION @extschema@.telnyx_refresh_orders()
RETURNS integer
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_refresh_orders';
REVOKE ALL ON FUNCTION @extschema@.telnyx_refresh_orders() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_refresh_orders() IS 'Fetch every order and number order due for a refresh and record what Telnyx says now; returns how many.';

/*
 * Apply a webhook delivery from Telnyx (number_order.complete): checks the
 * Ed25519 signature over "timestamp|body" with telnyx.webhook_public_key,
 * the timestamp, and applies the number order to the tables.
 */
CREATE FUNCTION @extschema@.telnyx_apply_webhook(
	body		text,
	signature	text,
	"timestamp"	text)
RETURNS jsonb
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_apply_webhook';
REVOKE ALL ON FUNCTION @extschema@.telnyx_apply_webhook(text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_apply_webhook(text, text, text) IS 'Verify a signed webhook delivery (Ed25519) and apply it; returns what was done.';

/*---- Queueing orders ----*/

CREATE FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(
	ordering_groups			jsonb,
	connection_id			text DEFAULT NULL,
	messaging_profile_id	text DEFAULT NULL,
	customer_reference		text DEFAULT NULL,
	billing_group_id		text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_enqueue_inexplicit_order';
REVOKE ALL ON FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) IS 'Queue an order for the background worker (sent once this transaction commits); returns the request id.';

CREATE FUNCTION @extschema@.telnyx_order_trigger()
RETURNS trigger
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_order_trigger';
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_trigger() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_order_trigger() IS 'Trigger: AFTER INSERT queues one order per row inserted; BEFORE INSERT reserves the request id in telnyx_request_id.';

/*
 * One pass of the sender, in the caller's session, as the caller: a
 * procedure, which may commit between claiming, sending and recording.
 */
CREATE PROCEDURE @extschema@.telnyx_process_queue(
	max_requests	integer DEFAULT NULL,
	INOUT handled	integer DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_process_queue';
REVOKE ALL ON PROCEDURE @extschema@.telnyx_process_queue(integer, integer) FROM PUBLIC;
COMMENT ON PROCEDURE @extschema@.telnyx_process_queue(integer, integer) IS 'Send the due requests now, in this session, as the worker would; returns how many were handled.';

/* Cancels a request queued by the caller (or a role it is a member of). */
CREATE FUNCTION @extschema@.telnyx_cancel_order_request(id bigint)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_cancel_order_request';
REVOKE ALL ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) IS 'Cancel a queued, retrying or held request of the calling role; returns whether it was cancelled.';

/* After a restore or a clone: let this database's queue send again. */
CREATE FUNCTION @extschema@.telnyx_resume_queue()
RETURNS boolean
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_resume_queue';
REVOKE ALL ON FUNCTION @extschema@.telnyx_resume_queue() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_resume_queue() IS 'Let a restored or cloned database send its queue; returns whether it was paused.';

/*---- Operations (retention, status, restarts) ----*/

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
COMMENT ON FUNCTION @extschema@.telnyx_purge_requests(interval) IS 'Delete finished requests last changed more than older_than ago (never unknown or unfinished ones, never orders); returns how many.';

/* A clean restart of the background workers: one sender per database. */
CREATE FUNCTION @extschema@.telnyx_restart_workers()
RETURNS boolean
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_restart_workers';
REVOKE ALL ON FUNCTION @extschema@.telnyx_restart_workers() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_restart_workers() IS 'Ask the launcher to restart every background worker, one per database; false if no launcher runs.';

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
COMMENT ON FUNCTION @extschema@.telnyx_worker_status() IS 'The running background workers of every database: pid, why each waits, orders sent, 429s.';

/* Why no worker sends this database's queue; NULL when one does. */
CREATE FUNCTION @extschema@.telnyx_queue_unserved()
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_queue_unserved';
REVOKE ALL ON FUNCTION @extschema@.telnyx_queue_unserved() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_queue_unserved() IS 'Why no background worker sends this database''s queue; NULL when one does.';

/*---- Triggers ----*/

/*
 * Kept in the statement that changes telnyx_order_requests (an INSERT, an
 * UPDATE, a DELETE or a TRUNCATE), whatever session_replication_role says,
 * so that the two tables are never out of step with it.  The same trigger
 * announces a change of state (NOTIFY telnyx_orders, and
 * telnyx_orders_held when a request is held, without payload), once per
 * statement instead of once per row.  Notifications carry no payload: any
 * role can LISTEN, and a payload would show it requests it may not read.
 * An enqueue is not announced (it must work in a prepared transaction,
 * where NOTIFY cannot be used).
 */
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
 * A request that arrives by logical replication (a subscriber that
 * receives this table) is another database's to send: it arrives as
 * "replicated", which no sender here touches, and only its final states
 * (sent, failed, cancelled) are taken as they come.  telnyx_resume_queue()
 * makes such requests this database's, to be looked up before anything is
 * sent.  A replica trigger also fires in a session that sets
 * session_replication_role = replica, as some restore a dump: such a load
 * keeps its rows as they were.  Only the apply (or table sync) worker of a
 * subscription makes an arriving request "replicated" (holding no claim
 * here).
 */
CREATE FUNCTION @extschema@.telnyx_order_requests_replicated()
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
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_requests_replicated() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_order_requests_replicated() IS 'Replica trigger: a request that arrives by logical replication is another database''s to send (state replicated).';

CREATE TRIGGER telnyx_order_requests_replicated
	BEFORE INSERT OR UPDATE ON @extschema@.telnyx_order_requests
	FOR EACH ROW EXECUTE FUNCTION @extschema@.telnyx_order_requests_replicated();
ALTER TABLE @extschema@.telnyx_order_requests
	ENABLE REPLICA TRIGGER telnyx_order_requests_replicated;

/*
 * A restore loads the rows of the extension's tables into tables that
 * CREATE EXTENSION made with their triggers: every INSERT trigger of ours
 * would fire during the restore's COPY.  So no trigger of ours that
 * records or announces acts on an INSERT: numbers bought are recorded and
 * announced by the statement that writes the numbers (store.c), and the
 * triggers here fire on UPDATE only (a restore updates nothing) or, for
 * telnyx_order_requests arriving by logical replication, in the apply
 * worker only.  (telnyx_order_requests_changed() does act on the COPY: it
 * makes the queue's index tables again.)
 */
CREATE FUNCTION @extschema@.telnyx_ordering_groups_changed()
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
REVOKE ALL ON FUNCTION @extschema@.telnyx_ordering_groups_changed() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_ordering_groups_changed() IS 'Trigger: record and announce a group''s new status or count (telnyx_order_events).';

CREATE TRIGGER telnyx_ordering_groups_changed
	AFTER UPDATE ON @extschema@.telnyx_ordering_groups
	FOR EACH ROW
	WHEN (OLD.status IS DISTINCT FROM NEW.status
		  OR OLD.count_allocated IS DISTINCT FROM NEW.count_allocated)
	EXECUTE FUNCTION @extschema@.telnyx_ordering_groups_changed();

/*---- Views ----*/

/*
 * What was requested, allocated and bought, one row per ordering group.
 * shortfall is NULL while the group is still pending or processing;
 * numbers_bought counts the group's numbers whose status is "success".
 */
CREATE VIEW @extschema@.telnyx_order_allocations AS
SELECT g.order_id,
	   o.customer_reference,
	   g.group_index,
	   g.country_iso,
	   g.phone_number_type,
	   g.count_requested,
	   g.count_allocated,
	   CASE WHEN g.status IS NULL OR g.status IN ('pending', 'processing') THEN NULL
			ELSE greatest(coalesce(g.count_requested, 0) - coalesce(g.count_allocated, 0), 0)
	   END AS shortfall,
	   (SELECT count(*)
		  FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = g.order_id
		   AND p.group_index = g.group_index
		   AND p.status = 'success') AS numbers_bought,
	   g.status,
	   g.error_reason,
	   coalesce((SELECT array_agg(n.number_order_id ORDER BY n.number_order_id)
				   FROM @extschema@.telnyx_number_orders n
				  WHERE n.order_id = g.order_id
					AND n.group_index = g.group_index),
				'{}'::text[]) AS number_order_ids,
	   o.created_at
  FROM @extschema@.telnyx_ordering_groups g
  JOIN @extschema@.telnyx_inexplicit_orders o ON o.id = g.order_id;

COMMENT ON VIEW @extschema@.telnyx_order_allocations IS 'Per order and group: requested, allocated, shortfall, numbers bought, status.';
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

/* One row per phone number, with the order and group it was bought for. */
CREATE VIEW @extschema@.telnyx_purchased_numbers AS
SELECT p.phone_number,
	   p.status,
	   p.order_id,
	   p.group_index,
	   o.customer_reference,
	   g.country_iso,
	   coalesce(p.phone_number_type, g.phone_number_type) AS phone_number_type,
	   p.number_order_id,
	   p.id AS phone_number_id,
	   p.requirements_met,
	   p.requirements_status,
	   p.deadline,
	   p.bought_at,
	   p.first_seen_at
  FROM @extschema@.telnyx_phone_numbers p
  JOIN @extschema@.telnyx_ordering_groups g
	ON g.order_id = p.order_id AND g.group_index = p.group_index
  JOIN @extschema@.telnyx_inexplicit_orders o ON o.id = p.order_id;

COMMENT ON VIEW @extschema@.telnyx_purchased_numbers IS 'Every number bought or being bought, with its order, group and customer_reference.';
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

/*
 * Orders still being filled: a group not ended yet, or a number order or
 * number still pending.  open_since is when the order was created.
 */
CREATE VIEW @extschema@.telnyx_open_orders AS
SELECT o.id AS order_id,
	   o.customer_reference,
	   coalesce(o.created_at, o.first_seen_at) AS open_since,
	   now() - coalesce(o.created_at, o.first_seen_at) AS open_for,
	   (SELECT count(*) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id
		   AND (g.status IS NULL OR g.status IN ('pending', 'processing'))) AS groups_open,
	   (SELECT sum(g.count_requested) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id) AS count_requested,
	   (SELECT sum(g.count_allocated) FROM @extschema@.telnyx_ordering_groups g
		 WHERE g.order_id = o.id) AS count_allocated,
	   (SELECT count(*) FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = o.id AND p.status = 'success') AS numbers_bought,
	   (SELECT count(*) FROM @extschema@.telnyx_phone_numbers p
		 WHERE p.order_id = o.id AND p.status = 'pending') AS numbers_pending,
	   o.synced_at AS last_refreshed_at,
	   least(o.next_refresh_at,
			 (SELECT min(n.next_fetch_at) FROM @extschema@.telnyx_number_orders n
			   WHERE n.order_id = o.id)) AS next_refresh_at
  FROM @extschema@.telnyx_inexplicit_orders o
 WHERE NOT EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
					WHERE g.order_id = o.id)
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_ordering_groups g
				WHERE g.order_id = o.id
				  AND (g.status IS NULL OR g.status IN ('pending', 'processing')))
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_number_orders n
				WHERE n.order_id = o.id
				  AND (n.status IS NULL OR n.status = 'pending'))
	OR EXISTS (SELECT 1 FROM @extschema@.telnyx_phone_numbers p
				WHERE p.order_id = o.id AND p.status = 'pending');

COMMENT ON VIEW @extschema@.telnyx_open_orders IS 'Orders still being filled: since when, groups open, numbers pending, next refresh.';
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

/*
 * What an operator opens first: this database's queue by state, its
 * oldest wait, next retry and latest error, what was sent lately, and the
 * worker (its pid, whether it waits and why, 429s since it started).
 * Counts every role's requests: grant it to administrators only.  A view's
 * functions are called with the rights of the role that reads it: a reader
 * needs EXECUTE on the two it calls (the README's grant block gives both).
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
REVOKE ALL ON @extschema@.telnyx_queue_status FROM PUBLIC;

COMMENT ON VIEW @extschema@.telnyx_queue_status IS 'The queue of this database and its worker at a glance: requests by state, oldest wait, latest error, recent sends, why the worker waits. Counts every role''s requests. A reader needs SELECT on it and EXECUTE on telnyx_worker_status() and telnyx_queue_unserved(), which it calls.';
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
COMMENT ON COLUMN @extschema@.telnyx_queue_status.last_error_message IS 'The latest error of a request not sent, in words.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.held IS 'Requests held by a spend limit or the per-transaction breaker, waiting for a release.';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.dry_run IS 'Requests queued under telnyx.dry_run (never sent).';
COMMENT ON COLUMN @extschema@.telnyx_queue_status.held_because IS 'Why requests are held, with how many for each reason.';

/*---- Event triggers ----*/

/*
 * The drop guard guards the tables, not a command: the library refuses the
 * drop of a table that records orders or unfinished requests, whichever
 * command drops it (DROP EXTENSION of plpgsql or of anything we depend on,
 * DROP OWNED BY, DROP SCHEMA ... CASCADE), unless telnyx.allow_drop is on:
 * dropping deletes what was bought.  The event trigger fires for every
 * command, so that the library (and its guard) is loaded in the session
 * before anything is dropped; it is in C, so it outlives plpgsql.
 */
CREATE FUNCTION @extschema@.telnyx_guard_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_guard_drop';
REVOKE ALL ON FUNCTION @extschema@.telnyx_guard_drop() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_guard_drop() IS 'Event trigger: refuse DROP EXTENSION telnyx_orders while orders are recorded, and load the guard that refuses any drop of the tables of orders, unless telnyx.allow_drop is on.';

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

/* Created last: they fire for none of the statements above. */
CREATE EVENT TRIGGER telnyx_orders_guard_drop ON ddl_command_start
	EXECUTE FUNCTION @extschema@.telnyx_guard_drop();
CREATE EVENT TRIGGER telnyx_orders_guard_key_settings ON ddl_command_start
	WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE',
				 'ALTER PROCEDURE', 'ALTER ROUTINE')
	EXECUTE FUNCTION @extschema@.telnyx_guard_key_settings();

/*---- Readable forms ----*/

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
	   s.last_error_message,
	   s.held,
	   s.held_because
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
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.held IS 'Requests held by a spend limit or the per-transaction breaker.';
COMMENT ON COLUMN @extschema@.telnyx_queue_summary.held_because IS 'Why they are held, with how many for each reason.';

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

/*---- Synchronous calls, and the purge's indexes ----*/

/*
 * Each synchronous call, recorded in a transaction of its own before it
 * is sent: an order bought by a call whose transaction rolled back is
 * still this database's, and its sync finds it by the call.
 */
CREATE TABLE @extschema@.telnyx_order_calls (
	request_key			uuid PRIMARY KEY,
	customer_reference	text,
	body				jsonb NOT NULL,
	sent_at				timestamptz NOT NULL DEFAULT now(),
	spent_by			oid,
	refused_at			timestamptz
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
COMMENT ON COLUMN @extschema@.telnyx_order_calls.spent_by IS 'The role that called.';
COMMENT ON COLUMN @extschema@.telnyx_order_calls.refused_at IS 'When Telnyx refused it (no order was created): it no longer counts against a limit.';
COMMENT ON TABLE @extschema@.telnyx_order_calls IS 'Synchronous calls that sent an order, each recorded before it was sent, whatever became of its transaction: how a sync knows an order is this database''s.';

-- the purge of events and deliveries by telnyx.request_retention
CREATE INDEX telnyx_order_events_at_idx
	ON @extschema@.telnyx_order_events (at);
CREATE INDEX telnyx_webhook_deliveries_received_at_idx
	ON @extschema@.telnyx_webhook_deliveries (received_at);

/*---- The database served ----*/

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

/*---- The spend guard ----*/

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
