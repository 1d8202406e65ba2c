--
-- The spend guard: limits, holds, releases, the breaker, the dry run and
-- the report, driven by CALL telnyx_process_queue() (the worker runs the
-- same code).  The stand-in keeps no idempotency: its count is what was
-- bought.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
DELETE FROM telnyx_order_requests;
DELETE FROM telnyx_order_calls;
DELETE FROM telnyx_spend_hours;
DELETE FROM telnyx_spend_limits;
ALTER TABLE telnyx_spend_limits ALTER COLUMN id RESTART;
SET telnyx.reconcile_delay = 0;
\set VERBOSITY default
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]'

-- no limit: everything is sent, and counted per UTC hour and role (2 numbers each)
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'acme')) AS enqueued
  FROM generate_series(1, 3);
CALL telnyx_process_queue();
SELECT hour = date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS this_hour,
       spent_by = current_user::regrole AS mine, orders, numbers
  FROM telnyx_spend_hours;
\! standinctl count

-- limits an administrator sets: bad ones are refused
INSERT INTO telnyx_spend_limits (per, max_orders) VALUES ('week', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO telnyx_spend_limits (per) VALUES ('day');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO telnyx_spend_limits (per, max_numbers) VALUES ('day', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO telnyx_spend_limits (per, max_numbers, on_exceed) VALUES ('day', 1, 'later');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO telnyx_spend_limits (role, per, max_orders) VALUES ('no_such_role', 'day', 1);
\echo :LAST_ERROR_SQLSTATE

-- the database may request 10 numbers a day: 6 are used, two more orders
-- of 2 fit, the third is held (not failed, not sent)
INSERT INTO telnyx_spend_limits (per, max_numbers, note)
VALUES ('day', 10, 'test budget') RETURNING id AS day_limit \gset
INSERT INTO telnyx_spend_limits (per, max_orders) VALUES ('day', 100);
\echo :LAST_ERROR_SQLSTATE
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'acme')) AS enqueued
  FROM generate_series(1, 3);
CALL telnyx_process_queue();
SELECT state, attempts, first_sent_at IS NULL AS never_sent,
       next_attempt_at = 'infinity' AS until_released,
       replace(held_reason, :'day_limit', 'N') AS held_reason
  FROM telnyx_order_requests WHERE state <> 'sent';
SELECT state, count(*) FROM telnyx_order_requests GROUP BY state ORDER BY state COLLATE "C";
-- a held request stays held, pass after pass
CALL telnyx_process_queue();
\! standinctl count
SELECT orders, numbers FROM telnyx_spend_hours;
SELECT held, replace(held_because, :'day_limit', 'N') AS held_because FROM telnyx_queue_status;
SELECT held, waiting FROM telnyx_queue_summary;

-- a synchronous call over the limit is refused with its own SQLSTATE, and sends nothing
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
\! standinctl count
SELECT count(*) AS calls_recorded FROM telnyx_order_calls;

-- a release names what it releases
SELECT telnyx_release_requests();
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_release_requests(held_batch => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_release_requests(ids => '{{1}}');
\echo :LAST_ERROR_SQLSTATE
-- released: sent whatever the limit says, once; releasing again does nothing
SELECT telnyx_release_requests("all" => true) AS released;
SELECT telnyx_release_requests("all" => true) AS released;
SELECT state, released_by = current_user::regrole AS released_by_me
  FROM telnyx_order_requests WHERE released_by IS NOT NULL;
CALL telnyx_process_queue();
CALL telnyx_process_queue();
\! standinctl count
SELECT orders, numbers FROM telnyx_spend_hours;

-- refused by Telnyx: the count comes back, on either path
UPDATE telnyx_spend_limits SET max_numbers = 14 WHERE id = :day_limit;
\! standinctl fault '{"match": "create", "status": 422, "code": "10015", "title": "Invalid parameter", "detail": "No such connection.", "pointer": "/connection_id"}'
SELECT telnyx_create_inexplicit_order(:'groups', connection_id => 'nope');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS calls, count(refused_at) AS refused FROM telnyx_order_calls;
SELECT orders, numbers FROM telnyx_spend_hours;
\! standinctl fault '{"match": "create", "status": 422, "code": "10015", "title": "Invalid parameter", "detail": "No such connection.", "pointer": "/connection_id"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', connection_id => 'nope') AS refused \gset
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :refused;
SELECT orders, numbers FROM telnyx_spend_hours;
-- so two more numbers fit: a synchronous call takes them, the next is refused
SELECT telnyx_create_inexplicit_order(:'groups') ->> 'id' IS NOT NULL AS created;
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
SELECT orders, numbers FROM telnyx_spend_hours;
\! standinctl count

-- on_exceed = 'wait': held until the window (the UTC day) ends, then checked again
UPDATE telnyx_spend_limits SET on_exceed = 'wait' WHERE id = :day_limit;
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS waiting \gset
CALL telnyx_process_queue();
SELECT state, next_attempt_at = (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC' AS until_tomorrow
  FROM telnyx_order_requests WHERE id = :waiting;
-- (the day ends: what was counted is yesterday's)
UPDATE telnyx_order_requests SET next_attempt_at = now() - interval '1 second' WHERE id = :waiting;
UPDATE telnyx_spend_hours SET hour = hour - interval '1 day';
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :waiting;
\! standinctl count

-- released requests count against the others of the same claim
UPDATE telnyx_spend_limits SET max_numbers = NULL, max_orders = 0, on_exceed = 'hold' WHERE id = :day_limit;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'rel') AS rel1 \gset
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'rel') AS rel2 \gset
CALL telnyx_process_queue();
SELECT sum(orders) AS used_today FROM telnyx_spend_hours
 WHERE hour >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \gset
UPDATE telnyx_spend_limits SET max_orders = :used_today + 2 WHERE id = :day_limit;
SELECT telnyx_release_requests(ids => ARRAY[:rel1, :rel2]::bigint[]) AS released;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'rel') AS rel3 \gset
CALL telnyx_process_queue();
SELECT id = :rel3 AS newest, state FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'rel' ORDER BY id;
-- a limit is checked only where the counts are read after its lock
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'rr') AS rr \gset
SET default_transaction_isolation = 'repeatable read';
CALL telnyx_process_queue();
\echo :LAST_ERROR_SQLSTATE
RESET default_transaction_isolation;
SELECT state FROM telnyx_order_requests WHERE id = :rr;
SELECT telnyx_cancel_order_request(:rr) AS cancelled;
SELECT telnyx_cancel_held_requests(ids => ARRAY[:rel3]::bigint[]) AS cancelled;
DELETE FROM telnyx_spend_limits;

-- a limit per role: that role's, not another's
CREATE ROLE regress_telnyx_spender;
GRANT EXECUTE ON FUNCTION telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text),
                          telnyx_cancel_order_request(bigint)
   TO regress_telnyx_spender;
GRANT SELECT ON telnyx_order_requests TO regress_telnyx_spender;
INSERT INTO telnyx_spend_limits (role, per, max_orders)
VALUES ('regress_telnyx_spender', 'hour', 1) RETURNING id AS role_limit \gset
SET ROLE regress_telnyx_spender;
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS s1 \gset
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS s2 \gset
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS s3 \gset
RESET ROLE;
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS other \gset
CALL telnyx_process_queue();
SELECT id = :s1 AS first, state, replace(held_reason, :'role_limit', 'N') AS held_reason
  FROM telnyx_order_requests WHERE id IN (:s1, :s2, :s3) ORDER BY id;
SELECT state FROM telnyx_order_requests WHERE id = :other;
-- the role cannot raise its own limit, nor release its holds; it may cancel them
SET ROLE regress_telnyx_spender;
UPDATE telnyx_spend_limits SET max_orders = 100;
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_release_requests("all" => true);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM telnyx_spend_hours;
\echo :LAST_ERROR_SQLSTATE
-- nor take the lock every limit check takes, to stall the orders of others
BEGIN;
LOCK TABLE telnyx_spend_limits IN SHARE ROW EXCLUSIVE MODE;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT telnyx_cancel_order_request(:s3) AS cancelled_own_hold;
RESET ROLE;
-- an administrator releases by role, or cancels
SELECT telnyx_cancel_held_requests(ids => ARRAY[:s2]::bigint[], requested_by => current_user::regrole) AS cancelled;
SELECT telnyx_cancel_held_requests(ids => ARRAY[:s2]::bigint[], requested_by => 'regress_telnyx_spender') AS cancelled;
SELECT state FROM telnyx_order_requests WHERE id IN (:s1, :s2, :s3) ORDER BY id;
DELETE FROM telnyx_spend_limits;

-- the breaker: one transaction that queues more than
-- telnyx.max_requests_per_transaction has all of them held as one batch
SET telnyx.max_requests_per_transaction = 3;
SELECT count(*) AS before FROM telnyx_order_requests \gset
BEGIN;
SELECT count(telnyx_enqueue_inexplicit_order(:'groups')) AS enqueued FROM generate_series(1, 5);
COMMIT;
SELECT state, count(*), count(DISTINCT held_batch) AS batches, min(held_reason) AS held_reason
  FROM telnyx_order_requests WHERE id > (SELECT max(id) - 5 FROM telnyx_order_requests)
 GROUP BY state;
CALL telnyx_process_queue();
SELECT state, count(*) FROM telnyx_order_requests WHERE held_batch IS NOT NULL GROUP BY state;
\! standinctl count
-- a COPY into a table with the ordering trigger trips it too
CREATE TABLE regress_spend_lines (id serial PRIMARY KEY, country_iso text, count_requested integer);
CREATE TRIGGER regress_spend_order AFTER INSERT ON regress_spend_lines
	FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger('{"phone_number_type": "local"}');
COPY regress_spend_lines (country_iso, count_requested) FROM STDIN;
US	1
US	1
US	1
US	1
\.
CALL telnyx_process_queue();
SELECT count(*) AS held, count(DISTINCT held_batch) AS batches
  FROM telnyx_order_requests WHERE state = 'held';
\! standinctl count
-- released by batch: each sent once
SELECT telnyx_release_requests(held_batch => b) AS released
  FROM (SELECT DISTINCT held_batch AS b FROM telnyx_order_requests WHERE state = 'held') x
 ORDER BY b;
CALL telnyx_process_queue();
CALL telnyx_process_queue();
SELECT state, count(*) FROM telnyx_order_requests WHERE held_batch IS NOT NULL GROUP BY state;
\! standinctl count
-- a transaction that means it, and one within the limit, are not held
BEGIN;
SET LOCAL telnyx.allow_bulk = on;
SELECT count(telnyx_enqueue_inexplicit_order(:'groups')) AS enqueued FROM generate_series(1, 5);
COMMIT;
SELECT count(telnyx_enqueue_inexplicit_order(:'groups')) AS enqueued FROM generate_series(1, 3);
CALL telnyx_process_queue();
SELECT count(*) AS held FROM telnyx_order_requests WHERE state = 'held';
\! standinctl count
-- a savepoint rolled back after the breaker tripped: the batch is marked again
BEGIN;
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'sp')) AS enqueued FROM generate_series(1, 3);
SAVEPOINT s;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'sp') > 0 AS fourth;
ROLLBACK TO SAVEPOINT s;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'sp') > 0 AS fourth_again;
COMMIT;
SELECT count(*) AS marked, count(DISTINCT held_batch) AS batches
  FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'sp' AND held_batch IS NOT NULL;
CALL telnyx_process_queue();
SELECT telnyx_cancel_held_requests(held_batch => (SELECT DISTINCT held_batch FROM telnyx_order_requests
                                                   WHERE body ->> 'customer_reference' = 'sp')) AS cancelled;
-- a mark made in a savepoint released into one rolled back: marked again
BEGIN;
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'nested')) AS enqueued FROM generate_series(1, 3);
SAVEPOINT a;
SAVEPOINT b;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'nested') > 0 AS fourth;
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'nested') > 0 AS fourth_again;
COMMIT;
SELECT count(*) AS requests, count(held_batch) AS marked, count(DISTINCT held_batch) AS batches
  FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'nested';
CALL telnyx_process_queue();
SELECT telnyx_cancel_held_requests(held_batch => (SELECT DISTINCT held_batch FROM telnyx_order_requests
                                                   WHERE body ->> 'customer_reference' = 'nested')) AS cancelled;
\! standinctl count
-- only an administrator sets the breaker
SET ROLE regress_telnyx_spender;
SET telnyx.max_requests_per_transaction = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET telnyx.max_requests_per_transaction;

-- the dry run: validated, recorded, reported, never sent
SET telnyx.dry_run = on;
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'staging') - 'request_id' AS dry_call;
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "locale", "count_requested": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT count(telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'staging')) AS enqueued
  FROM generate_series(1, 2);
INSERT INTO regress_spend_lines (country_iso, count_requested) VALUES ('US', 5);
CALL telnyx_process_queue();
RESET telnyx.dry_run;
CALL telnyx_process_queue();
SELECT state, count(*) FROM telnyx_order_requests WHERE state = 'dry_run' GROUP BY state;
\! standinctl count
-- a sender under the dry run sends nothing at all, and leaves what was
-- queued for real as it is: sent once the dry run is off
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'real') AS real_one \gset
SET telnyx.dry_run = on;
CALL telnyx_process_queue();
SELECT state, attempts FROM telnyx_order_requests WHERE id = :real_one;
\! standinctl count
RESET telnyx.dry_run;
CALL telnyx_process_queue();
SELECT state, attempts FROM telnyx_order_requests WHERE id = :real_one;
\! standinctl count

-- the report: per UTC day, role and customer_reference
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, role = current_user AS mine, customer_reference,
       orders, numbers_requested, numbers_bought >= 0 AS bought_known,
       dry_run_orders, dry_run_numbers
  FROM telnyx_spend_report
 WHERE customer_reference IN ('acme', 'staging') OR customer_reference IS NULL
 ORDER BY 2, customer_reference COLLATE "C";
SELECT role = current_user AS mine, sum(orders) AS orders, sum(numbers_requested) AS numbers_requested,
       sum(dry_run_orders) AS dry_run_orders, sum(dry_run_numbers) AS dry_run_numbers
  FROM telnyx_spend_report GROUP BY role ORDER BY 1;
-- what was counted is what the stand-in sold
SELECT sum(orders) AS counted FROM telnyx_spend_hours;
\! standinctl count

DROP TABLE regress_spend_lines;
DELETE FROM telnyx_order_requests WHERE requested_by = 'regress_telnyx_spender'::regrole;
DELETE FROM telnyx_spend_hours;
REVOKE ALL ON telnyx_order_requests FROM regress_telnyx_spender;
REVOKE ALL ON FUNCTION telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text),
                       telnyx_cancel_order_request(bigint)
  FROM regress_telnyx_spender;
DROP ROLE regress_telnyx_spender;
