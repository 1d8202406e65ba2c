--
-- The queued path, driven by CALL telnyx_process_queue() (the background
-- worker runs the same code; the TAP tests cover it).
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
DELETE FROM telnyx_order_requests;
-- request ids from 1, whichever suites ran before
ALTER TABLE telnyx_order_requests ALTER COLUMN id RESTART;
SET telnyx.reconcile_delay = 0;
\set VERBOSITY default
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]'

-- the same validation as the synchronous call; nothing is queued
SELECT telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 0}]');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_enqueue_inexplicit_order('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "area": "x"}');
SELECT count(*) AS queued FROM telnyx_order_requests;

-- a rolled-back enqueue leaves nothing to send
BEGIN;
SELECT telnyx_enqueue_inexplicit_order(:'groups') IS NOT NULL AS enqueued;
ROLLBACK;
SELECT count(*) AS queued FROM telnyx_order_requests;
CALL telnyx_process_queue();
\! standinctl requests

-- a request: the exact body to send, with a customer_reference derived
-- from its key when none is given
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r1 \gset
SELECT id = :r1 AS same_id, state, attempts, order_id, last_error,
       body ->> 'customer_reference' = 'telnyx_orders:' || request_key AS derived_reference,
       body -> 'ordering_groups' AS ordering_groups,
       next_attempt_at <= now() AS due
  FROM telnyx_order_requests;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'mine', connection_id => 'conn-9') AS r2 \gset
SELECT body - 'ordering_groups' AS order_fields FROM telnyx_order_requests WHERE id = :r2;

-- sent after commit, once, with the request's key as Idempotency-Key
CALL telnyx_process_queue();
SELECT id, state, attempts, order_id IS NOT NULL AS has_order, last_error
  FROM telnyx_order_requests ORDER BY id;
SELECT count(*) AS recorded_orders FROM telnyx_order_requests r
  JOIN telnyx_inexplicit_orders o ON o.id = r.order_id;
\! standinctl ledger | python3 -c 'import json,sys; print(sorted((json.loads(l)["customer_reference"].split(":")[0], len(json.loads(l)["headers"]["idempotency_key"])) for l in sys.stdin))'
SELECT count(*) AS keys_match FROM telnyx_order_requests r
  JOIN telnyx_inexplicit_orders o ON o.id = r.order_id
 WHERE r.body ->> 'customer_reference' = o.customer_reference;
CALL telnyx_process_queue();
\! standinctl count

-- max_requests bounds a pass
SELECT count(telnyx_enqueue_inexplicit_order(:'groups')) AS enqueued FROM generate_series(1, 3);
CALL telnyx_process_queue(2);
CALL telnyx_process_queue(0);
CALL telnyx_process_queue();
CALL telnyx_process_queue(-1);
SELECT state, count(*) FROM telnyx_order_requests GROUP BY state ORDER BY state COLLATE "C";

-- cancel: only while queued or retrying
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r3 \gset
SELECT telnyx_cancel_order_request(:r3) AS cancelled;
SELECT telnyx_cancel_order_request(:r3) AS cancelled_again;
SELECT telnyx_cancel_order_request(:r1) AS cancelled_sent;
SELECT telnyx_cancel_order_request(123456) AS cancelled_missing;
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :r3;

-- Telnyx rejects it for good: failed, with Telnyx's error kept
\! standinctl fault '{"match": "create", "status": 422, "code": "10015", "title": "Invalid parameter", "detail": "No such connection.", "pointer": "/connection_id"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', connection_id => 'nope') AS r4 \gset
CALL telnyx_process_queue();
SELECT state, attempts, order_id, last_error FROM telnyx_order_requests WHERE id = :r4;
-- and in words, beside it, also in the status views
SELECT last_error_message FROM telnyx_order_requests WHERE id = :r4;
SELECT last_error_message FROM telnyx_queue_status;
SELECT failed, last_error_message FROM telnyx_queue_summary;

-- rate limited: retrying when Telnyx says, then sent (every process of the
-- cluster waits as long: the retry below, made due at once, waits too)
\! standinctl fault '{"match": "create", "status": 429, "code": "10011", "title": "Too many requests", "headers": {"Retry-After": "3"}}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r5 \gset
CALL telnyx_process_queue();
SELECT state, attempts, last_error ->> 'status' AS status, last_error ->> 'code' AS code,
       next_attempt_at - updated_at BETWEEN interval '2 seconds' AND interval '4 seconds' AS waits_as_asked
  FROM telnyx_order_requests WHERE id = :r5;
CALL telnyx_process_queue();
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :r5;
CALL telnyx_process_queue();
SELECT state, attempts, last_error FROM telnyx_order_requests WHERE id = :r5;

-- could not reach Telnyx: retrying, nothing sent
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r6 \gset
\set closed_url `printf %s "$TELNYX_TEST_CLOSED_URL"`
\set key_file `printf %s "$TELNYX_TEST_KEY_FILE"`
SET telnyx.api_key_file = :'key_file';
SET telnyx.api_base_url = :'closed_url';
CALL telnyx_process_queue();
RESET telnyx.api_base_url;
RESET telnyx.api_key_file;
SELECT state, attempts, last_error ->> 'class' AS class FROM telnyx_order_requests WHERE id = :r6;
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :r6;
CALL telnyx_process_queue();
SELECT state, attempts FROM telnyx_order_requests WHERE id = :r6;

-- unknown outcomes are reconciled, never blindly resent:
-- the order was made, then the connection closed: found, and sent once
\! standinctl reset-requests
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r7 \gset
CALL telnyx_process_queue();
SELECT state, attempts, last_error FROM telnyx_order_requests WHERE id = :r7;
SELECT last_error_message FROM telnyx_order_requests WHERE id = :r7;
CALL telnyx_process_queue();
SELECT state, attempts, order_id IS NOT NULL AS has_order FROM telnyx_order_requests WHERE id = :r7;
\! standinctl requests create
-- an order lost in transit and then fetched by its id (as an operator does
-- who saw it in the portal) before its request is reconciled: the fetch
-- links it to nothing, so reconciliation finds it this request's order,
-- and nothing is bought again
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'lost-then-fetched') AS r7b \gset
CALL telnyx_process_queue();
\set lost_id `standinctl ledger | python3 -c "import json,sys; print([o['id'] for o in map(json.loads, sys.stdin) if o['customer_reference'] == 'lost-then-fetched'][0])"`
SELECT telnyx_get_inexplicit_order(:'lost_id') ->> 'customer_reference' AS fetched;
SELECT found_by_sync, request_key IS NULL AS unlinked FROM telnyx_inexplicit_orders WHERE id = :'lost_id';
CALL telnyx_process_queue();
SELECT r.state, r.attempts, r.order_id = :'lost_id' AS its_order, o.request_key = r.request_key AS linked
  FROM telnyx_order_requests r JOIN telnyx_inexplicit_orders o ON o.id = r.order_id
 WHERE r.id = :r7b;
\! standinctl ledger | grep -c '"customer_reference": "lost-then-fetched"'
-- a 500 before anything was made: not found, but absence is proven only
-- by three whole reads of the list, the last telnyx.absence_window after
-- the attempt (Telnyx may record an order late); then sent again, with
-- the same key.  Time is moved on by moving the request's dates back.
\! standinctl fault '{"match": "create", "status": 500, "code": "10007"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r8 \gset
CALL telnyx_process_queue();
SELECT state, attempts, last_error ->> 'status' AS status FROM telnyx_order_requests WHERE id = :r8;
CALL telnyx_process_queue();
SELECT state, lookups, last_error ->> 'reason' AS reason FROM telnyx_order_requests WHERE id = :r8;
-- looked up again at once, twice: three looks, but inside the window
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :r8;
CALL telnyx_process_queue();
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :r8;
CALL telnyx_process_queue();
SELECT state, lookups FROM telnyx_order_requests WHERE id = :r8;
\! standinctl count
-- the window has passed: the next look proves it absent, and it is sent
UPDATE telnyx_order_requests
   SET unknown_since = unknown_since - interval '10 minutes', next_attempt_at = now()
 WHERE id = :r8;
CALL telnyx_process_queue();
SELECT state, attempts, order_id IS NOT NULL AS has_order FROM telnyx_order_requests WHERE id = :r8;
-- a malformed answer after the order was made: found
\! standinctl fault '{"match": "create", "action": "malformed"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r9 \gset
CALL telnyx_process_queue();
CALL telnyx_process_queue();
SELECT state, attempts FROM telnyx_order_requests WHERE id = :r9;
-- every queued body carries a customer_reference, so an order made since
-- without one cannot be the request's: absence is still proven
\! standinctl fault '{"match": "create", "status": 500, "code": "10007"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS r10 \gset
CALL telnyx_process_queue();
SELECT telnyx_create_inexplicit_order(:'groups') ->> 'customer_reference' AS anonymous_order;
CALL telnyx_process_queue();
UPDATE telnyx_order_requests
   SET unknown_since = unknown_since - interval '10 minutes', next_attempt_at = now(), lookups = 2
 WHERE id = :r10;
CALL telnyx_process_queue();
SELECT state, attempts, last_error ->> 'reason' AS reason FROM telnyx_order_requests WHERE id = :r10;
CALL telnyx_process_queue();
SELECT state, attempts, order_id IS NOT NULL AS has_order FROM telnyx_order_requests WHERE id = :r10;

-- one order in the ledger per request that was sent
SELECT count(*) FILTER (WHERE state = 'sent') AS sent, count(DISTINCT order_id) AS distinct_orders
  FROM telnyx_order_requests;
\! standinctl count
\! standinctl keys

-- the trigger: a table of number requests
CREATE TABLE number_requests (
    id serial PRIMARY KEY,
    team text,
    country_iso text,
    phone_number_type text,
    count_requested integer,
    national_destination_code text,
    features text[],
    quickship boolean,
    customer_reference text,
    telnyx_request_id bigint
);
-- a BEFORE trigger alone orders nothing: it only reserves the id
CREATE TRIGGER link_request BEFORE INSERT ON number_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO number_requests (team, country_iso, count_requested) VALUES ('early', 'US', 1);
\echo :LAST_ERROR_SQLSTATE
-- the README's pair: BEFORE links the row, AFTER orders the row inserted
CREATE TRIGGER order_numbers AFTER INSERT ON number_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger('{"phone_number_type": "local", "connection_id": "conn-default"}');
INSERT INTO number_requests (team, country_iso, count_requested, national_destination_code, features, quickship, customer_reference)
VALUES ('sales', 'us', 3, '312', '{sms,voice}', false, 'team-sales'),
       ('support', 'CA', 1, NULL, NULL, NULL, NULL);
SELECT n.team, n.telnyx_request_id IS NOT NULL AS linked, r.state,
       r.body #- '{customer_reference}' AS body_without_reference,
       r.body ->> 'customer_reference' LIKE 'telnyx_orders:%' OR r.body ->> 'customer_reference' = 'team-sales' AS reference
  FROM number_requests n JOIN telnyx_order_requests r ON r.id = n.telnyx_request_id
 ORDER BY n.id;
-- a rolled-back insert orders nothing
SELECT count(*) AS requests_before FROM telnyx_order_requests \gset
BEGIN;
INSERT INTO number_requests (team, country_iso, count_requested) VALUES ('rollback', 'US', 5);
ROLLBACK;
SELECT count(*) - :requests_before AS new_requests FROM telnyx_order_requests;
-- a row not inserted orders nothing: ON CONFLICT DO NOTHING, re-run
INSERT INTO number_requests (id, team, country_iso, count_requested) VALUES (100, 'once', 'US', 1)
    ON CONFLICT (id) DO NOTHING;
INSERT INTO number_requests (id, team, country_iso, count_requested) VALUES (100, 'once', 'US', 1)
    ON CONFLICT (id) DO NOTHING;
SELECT count(*) - :requests_before AS new_requests FROM telnyx_order_requests;
-- ... nor one that a later BEFORE trigger skips
CREATE FUNCTION pg_temp.skip_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RETURN CASE WHEN NEW.team = 'skipped' THEN NULL ELSE NEW END;
END $$;
CREATE TRIGGER zz_skip BEFORE INSERT ON number_requests
    FOR EACH ROW EXECUTE FUNCTION pg_temp.skip_row();
INSERT INTO number_requests (team, country_iso, count_requested) VALUES ('skipped', 'US', 1);
DROP TRIGGER zz_skip ON number_requests;
SELECT count(*) - :requests_before AS new_requests FROM telnyx_order_requests;
-- an id the row claims but this transaction did not reserve is not used:
-- the row orders under a fresh id
ALTER TABLE number_requests DISABLE TRIGGER link_request;
INSERT INTO number_requests (team, country_iso, count_requested, telnyx_request_id)
VALUES ('claims', 'US', 1, 2000000000);
ALTER TABLE number_requests ENABLE TRIGGER link_request;
SELECT count(*) - :requests_before AS new_requests,
       count(*) FILTER (WHERE id = 2000000000) AS claimed_id_used
  FROM telnyx_order_requests;
-- a bad row fails the insert with the validation error
INSERT INTO number_requests (team, country_iso, count_requested) VALUES ('bad', 'MX', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO number_requests (team, country_iso, count_requested) VALUES ('bad', 'US', 20000);
SELECT count(*) AS bad_rows FROM number_requests WHERE team = 'bad';
CALL telnyx_process_queue();
SELECT n.team, r.state, o.count_requested
  FROM number_requests n JOIN telnyx_order_requests r ON r.id = n.telnyx_request_id
  JOIN telnyx_order_allocations o ON o.order_id = r.order_id
 ORDER BY n.id;

-- an AFTER trigger on a table with a jsonb "ordering_groups" column
CREATE TABLE bulk_requests (id serial, ordering_groups jsonb, billing_group_id text);
CREATE TRIGGER order_bulk AFTER INSERT ON bulk_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger('{"strategy": "never"}');
INSERT INTO bulk_requests (ordering_groups, billing_group_id)
VALUES ('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1},
          {"country_iso": "US", "phone_number_type": "toll_free", "count_requested": "2", "strategy": "always"}]', 'bg-7');
SELECT body - 'customer_reference' AS body FROM telnyx_order_requests ORDER BY id DESC LIMIT 1;
-- misuse
CREATE TRIGGER bad_args AFTER INSERT ON bulk_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger('{"colour": "red"}');
INSERT INTO bulk_requests (ordering_groups) VALUES ('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}');
DROP TRIGGER bad_args ON bulk_requests;
CREATE TRIGGER no_column BEFORE INSERT ON bulk_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO bulk_requests (ordering_groups) VALUES ('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}');
DROP TRIGGER no_column ON bulk_requests;
CREATE TRIGGER per_statement AFTER INSERT ON bulk_requests
    FOR EACH STATEMENT EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO bulk_requests (ordering_groups) VALUES ('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}');
DROP TRIGGER per_statement ON bulk_requests;
SELECT telnyx_order_trigger();
DROP TABLE number_requests, bulk_requests;

-- the sender claims ahead of its free slots; when it pauses (a refused
-- key), what it claimed and never sent goes back to the queue, as if never
-- claimed, and every request is ordered exactly once
DELETE FROM telnyx_order_requests;
\! standinctl reset
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'ahead-' || i))
  FROM generate_series(1, 40) i;
\! standinctl fault '{"match": "create", "status": 401, "code": "10009", "title": "Authentication failed"}'
-- (how many were sent before the pause depends on timing)
CALL telnyx_process_queue() \gset first_
SELECT bool_and(state = 'sent' AND attempts = 1 OR state = 'queued' AND attempts <= 1) AS sent_or_back_in_queue,
       count(*) FILTER (WHERE state = 'queued' AND attempts = 1) AS refused_once,
       bool_and(claimed_by_pid IS NULL) AS no_claim_left
  FROM telnyx_order_requests;
CALL telnyx_process_queue() \gset second_
SELECT :first_handled + :second_handled AS handled;
SELECT state, count(*) FROM telnyx_order_requests GROUP BY state;
\! standinctl count

-- what an operator opens first (no worker sends this database's queue here)
SELECT database = current_database() AS here, worker_pid IS NULL AS no_worker,
       waiting_because, sent > 0 AS some_sent, queued, replicated
  FROM telnyx_queue_status;
-- and in a few columns, the same counts
\x on
SELECT worker_pid, waiting_because, waiting, sending, unknown, failed,
       sent_last_hour > 0 AS sent_lately, oldest_wait >= interval '0' AS oldest_wait_known,
       last_error_message IS NOT NULL AS has_error
  FROM telnyx_queue_summary;
\x off
SELECT m.waiting = s.queued + s.retrying AND m.failed = s.failed AND m.unknown = s.unknown
       AND m.sent_last_hour = s.sent_last_hour
       AND m.last_error_message IS NOT DISTINCT FROM s.last_error_message AS summary_agrees
  FROM telnyx_queue_summary m, telnyx_queue_status s;
SELECT count(*) >= 0 AS listed FROM telnyx_worker_status();
-- finished requests purged by age: none is that old; bad ages refused
SELECT telnyx_purge_requests('1000 years') AS purged;
SELECT telnyx_purge_requests(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_purge_requests('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_purge_requests('0 seconds') > 0 AS purged_all_finished;
SELECT (SELECT count(*) FROM telnyx_order_requests WHERE state IN ('sent', 'failed', 'cancelled')) AS finished_left,
       (SELECT count(*) FROM telnyx_inexplicit_orders) > 0 AS orders_kept;
