--
-- Hostile roles and hostile answers: nobody becomes superuser, nobody
-- touches another role's requests, no order is bought and forgotten, none
-- is bought twice.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
SET telnyx.reconcile_delay = 0;
DELETE FROM telnyx_order_requests;
-- request ids from 1, whichever suites ran before
ALTER TABLE telnyx_order_requests ALTER COLUMN id RESTART;
DELETE FROM telnyx_inexplicit_orders;
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]'
CREATE ROLE regress_hostile_owner;
CREATE ROLE regress_hostile_a;
CREATE ROLE regress_hostile_b;
GRANT CREATE ON SCHEMA public TO regress_hostile_owner;
GRANT EXECUTE ON FUNCTION telnyx_order_trigger() TO regress_hostile_owner;
GRANT EXECUTE ON FUNCTION telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text),
                          telnyx_cancel_order_request(bigint)
   TO regress_hostile_a, regress_hostile_b;
GRANT SELECT ON telnyx_order_requests TO regress_hostile_a, regress_hostile_b;

-- a table owner's cast to json runs as that owner, not as the extension's
SET ROLE regress_hostile_owner;
CREATE TYPE public.hostile_team AS ENUM ('sales');
CREATE TABLE public.hostile_log (who text, outcome text);
CREATE FUNCTION public.hostile_team_json(public.hostile_team) RETURNS json
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE regress_hostile_owner SUPERUSER;
        INSERT INTO public.hostile_log VALUES (current_user, 'became superuser');
    EXCEPTION WHEN insufficient_privilege THEN
        INSERT INTO public.hostile_log VALUES (current_user, 'refused');
    END;
    RETURN to_json($1::text);
END $$;
CREATE CAST (public.hostile_team AS json) WITH FUNCTION public.hostile_team_json(public.hostile_team);
CREATE TABLE public.hostile_requests (team public.hostile_team, country_iso text,
                                      phone_number_type text, count_requested integer);
CREATE TRIGGER order_it AFTER INSERT ON public.hostile_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO public.hostile_requests VALUES ('sales', 'US', 'local', 1);
-- operators planted where an implicit cast would find them
CREATE FUNCTION public.hostile_op(a integer, b interval) RETURNS interval
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE regress_hostile_owner SUPERUSER;
        INSERT INTO public.hostile_log VALUES (current_user, 'operator became superuser');
    EXCEPTION WHEN insufficient_privilege THEN
        INSERT INTO public.hostile_log VALUES (current_user, 'operator refused');
    END;
    RETURN b * a::float8;
END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = public.hostile_op);
CREATE FUNCTION public.hostile_num(a numeric, b integer) RETURNS numeric
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE regress_hostile_owner SUPERUSER;
        INSERT INTO public.hostile_log VALUES (current_user, 'operator became superuser');
    EXCEPTION WHEN insufficient_privilege THEN
        INSERT INTO public.hostile_log VALUES (current_user, 'operator refused');
    END;
    RETURN a * b::numeric;
END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.hostile_num);
RESET ROLE;
SELECT who, outcome FROM public.hostile_log;
SELECT pg_get_userbyid(requested_by) AS requested_by, state FROM telnyx_order_requests;
-- the queue's own statements, run with more rights, never use them
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests;
SELECT count(*) AS operator_calls FROM public.hostile_log WHERE outcome LIKE 'operator%';
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_hostile_owner';
DROP TABLE public.hostile_requests;
DROP OPERATOR public.* (integer, interval);
DROP OPERATOR public.* (numeric, integer);

-- a role cancels and sees only its own requests
SET ROLE regress_hostile_a;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'of-a') AS a_request \gset
SELECT count(*) AS a_sees FROM telnyx_order_requests;
SET ROLE regress_hostile_b;
SELECT count(*) AS b_sees FROM telnyx_order_requests;
SELECT telnyx_cancel_order_request(:a_request) AS b_cancelled_it;
SET ROLE regress_hostile_a;
SELECT telnyx_cancel_order_request(:a_request) AS a_cancelled_it;
RESET ROLE;
-- notifications say nothing a listener could not read
-- (the requests' trigger, in C, announces with an empty payload, as
-- 002_worker.pl hears; no function of the extension in SQL or PL/pgSQL
-- announces a request)
SELECT count(*) AS notifying_request_functions
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'telnyx_orders'
 WHERE p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c') AND p.prosrc ~ 'pg_notify' AND p.prosrc ~ 'telnyx_order_requests';

-- a read-only transaction cannot order: nothing is sent
\! standinctl reset-requests
BEGIN READ ONLY;
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
SELECT telnyx_enqueue_inexplicit_order(:'groups');
ROLLBACK;
\! standinctl requests

-- a customer_reference too long to keep is refused before sending
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => repeat('r', 3000));
\echo :LAST_ERROR_SQLSTATE
\! standinctl requests
-- ... but an order with one, made elsewhere, is kept by a database that
-- mirrors the account
\! standinctl create "{\"ordering_groups\": [{\"country_iso\": \"US\", \"phone_number_type\": \"local\", \"count_requested\": \"1\"}], \"customer_reference\": \"$(printf 'x%.0s' $(seq 3000))\"}"
SET telnyx.sync_scope = 'account';
SELECT telnyx_sync_inexplicit_orders() > 0 AS synced;
SELECT length(customer_reference), found_by_sync FROM telnyx_inexplicit_orders
 WHERE length(customer_reference) > 2000;
RESET telnyx.sync_scope;

-- a timeout that would outlast a sender's lease cannot be set
-- (17 names the unit in the range, "100 ms .. 600000 ms": left out here)
DO $$
DECLARE
    v text;
BEGIN
    FOREACH v IN ARRAY ARRAY['telnyx.timeout=2147483647', 'telnyx.connect_timeout=1h'] LOOP
        BEGIN
            PERFORM set_config(split_part(v, '=', 1), split_part(v, '=', 2), false);
            RAISE NOTICE '% accepted', v;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE NOTICE '% refused (%): %', v, SQLSTATE,
                regexp_replace(SQLERRM, '\((\d+) ms \.\. (\d+) ms\)$', '(\1 .. \2)');
        END;
    END LOOP;
END $$;

-- one outcome that cannot be recorded does not take the others with it
CREATE FUNCTION public.hostile_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer_reference = 'poison' THEN
        RAISE EXCEPTION 'refused for the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hostile_refuse BEFORE INSERT ON telnyx_inexplicit_orders
    FOR EACH ROW EXECUTE FUNCTION public.hostile_refuse();
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'batch-1') AS b1,
       telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'poison') AS b2,
       telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'batch-3') AS b3 \gset
CALL telnyx_process_queue();
SELECT r.body ->> 'customer_reference' AS reference, r.state, r.order_id IS NOT NULL AS has_order,
       o.id IS NOT NULL AS recorded, r.last_error ->> 'reason' LIKE 'The order was created, but its rows could not be recorded%' AS said_so
  FROM telnyx_order_requests r LEFT JOIN telnyx_inexplicit_orders o ON o.id = r.order_id
 WHERE r.id IN (:b1, :b2, :b3) ORDER BY r.id;
DROP TRIGGER hostile_refuse ON telnyx_inexplicit_orders;
SELECT telnyx_sync_inexplicit_orders() > 0 AS synced;
SELECT count(*) AS poison_recorded FROM telnyx_inexplicit_orders WHERE customer_reference = 'poison';

-- order ids that are not uuids (the spec types them as strings) are kept
\! standinctl config '{"order_id_style": "text"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'text-id') ->> 'id' LIKE 'ord\_%' AS text_id;
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups') AS t1 \gset
CALL telnyx_process_queue();
CALL telnyx_process_queue();
SELECT state, order_id LIKE 'ord\_%' AS text_id FROM telnyx_order_requests WHERE id = :t1;
SELECT count(*) AS text_id_orders FROM telnyx_inexplicit_orders WHERE id LIKE 'ord\_%';
SELECT telnyx_get_inexplicit_order(order_id) ->> 'id' = order_id AS fetched_by_text_id
  FROM telnyx_order_requests WHERE id = :t1;
SELECT telnyx_get_inexplicit_order(E'ord\n1');
\! standinctl config '{"order_id_style": "uuid"}'

-- an older order with the same reference and groups, placed by the
-- synchronous function, is not taken for a lost request's order
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'same-ref') ->> 'customer_reference' AS earlier;
\! standinctl fault '{"match": "create", "status": 500, "code": "10007"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'same-ref') AS s1 \gset
CALL telnyx_process_queue();
-- (its absence window has passed, after two looks that found nothing)
UPDATE telnyx_order_requests
   SET unknown_since = unknown_since - interval '10 minutes', next_attempt_at = now(), lookups = 2
 WHERE id = :s1;
CALL telnyx_process_queue();
SELECT state, attempts, order_id <> (SELECT id FROM telnyx_inexplicit_orders
                                      WHERE customer_reference = 'same-ref' AND NOT found_by_sync
                                      ORDER BY first_seen_at LIMIT 1) AS its_own_order
  FROM telnyx_order_requests WHERE id = :s1;
\! standinctl ledger | grep -c '"customer_reference": "same-ref"'

-- a list that lags behind creation never causes a second order, with a
-- Telnyx that ignores the Idempotency-Key: not found, it is looked up
-- again (three looks over telnyx.absence_window), and found once listed
\! standinctl config '{"list_lag_seconds": 3600}'
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'lagging') AS l1 \gset
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :l1;
CALL telnyx_process_queue();
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :l1;
CALL telnyx_process_queue();
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :l1;
CALL telnyx_process_queue();
SELECT state, attempts, lookups, order_id IS NOT NULL AS has_order FROM telnyx_order_requests WHERE id = :l1;
\! standinctl config '{"list_lag_seconds": 0}'
UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = :l1;
CALL telnyx_process_queue();
SELECT state, attempts, order_id IS NOT NULL AS has_order FROM telnyx_order_requests WHERE id = :l1;
\! standinctl ledger | grep -c '"customer_reference": "lagging"'
\! standinctl replays

-- a list longer than 400 pages is read to its end before anything is
-- proven absent (Telnyx serving 2 orders a page, oldest first, and not
-- honouring the Idempotency-Key, so that a resend would buy twice)
\! standinctl config '{"list_page_cap": 2, "list_oldest_first": true, "idempotency": false}'
\! standinctl bulk 810 filler
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'far-down') AS f1 \gset
CALL telnyx_process_queue();
\! standinctl reset-requests
CALL telnyx_process_queue();
SELECT state, attempts FROM telnyx_order_requests WHERE id = :f1;
\! standinctl requests list | awk '{ print ($2 > 400) ? "more than 400 pages read" : "at most 400 pages read" }'
\! standinctl ledger | grep -c '"customer_reference": "far-down"'
\! standinctl config '{"list_page_cap": 0, "list_oldest_first": false, "idempotency": false}'

-- a claim of a sender that is gone is recovered at once, whatever its state
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'orphan') AS o1 \gset
CALL telnyx_process_queue();
UPDATE telnyx_order_requests
   SET state = 'unknown', claimed_by_pid = 2147483647, claimed_by_start = now(),
       lease_until = now() + interval '10 minutes', next_attempt_at = now()
 WHERE id = :o1;
CALL telnyx_process_queue();
SELECT state, claimed_by_pid IS NULL AS unclaimed FROM telnyx_order_requests WHERE id = :o1;
\! standinctl ledger | grep -c '"customer_reference": "orphan"'

-- the procedure commits as it goes: not inside a transaction block
BEGIN;
CALL telnyx_process_queue();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- a base URL without /v2 is a configuration fault: requests wait
\set https_url `printf %s "$TELNYX_TEST_HTTPS_URL"`
SELECT regexp_replace(:'https_url', '/v2$', '') AS no_v2 \gset
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'no-v2') AS u1 \gset
\set key_file `printf %s "$TELNYX_TEST_KEY_FILE"`
SET telnyx.api_key_file = :'key_file';
SET telnyx.api_base_url = :'no_v2';
CALL telnyx_process_queue();
RESET telnyx.api_base_url;
RESET telnyx.api_key_file;
SELECT state, last_error ->> 'status' AS status FROM telnyx_order_requests WHERE id = :u1;
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :u1;

-- two-phase commit: a prepared enqueue is sent only once committed
BEGIN;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'prepared-commit') AS p1 \gset
PREPARE TRANSACTION 'telnyx_p1';
BEGIN;
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'prepared-rollback') AS p2 \gset
PREPARE TRANSACTION 'telnyx_p2';
CALL telnyx_process_queue();
COMMIT PREPARED 'telnyx_p1';
ROLLBACK PREPARED 'telnyx_p2';
CALL telnyx_process_queue();
SELECT body ->> 'customer_reference' AS reference, state FROM telnyx_order_requests
 WHERE id IN (:p1, :p2) ORDER BY id;

-- a database restored or cloned from elsewhere does not send until told
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'restored') AS h1 \gset
UPDATE telnyx_order_requests SET home_system_identifier = home_system_identifier + 1
 WHERE id = :h1;
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :h1;
SELECT telnyx_resume_queue() AS resumed;
SELECT telnyx_resume_queue() AS resumed_again;
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests WHERE id = :h1;

-- every request that was sent, one order each
SELECT count(*) FILTER (WHERE state = 'sent') AS sent, count(DISTINCT order_id) AS distinct_orders
  FROM telnyx_order_requests;

DROP FUNCTION public.hostile_refuse();
DROP FUNCTION public.hostile_op(integer, interval);
DROP FUNCTION public.hostile_num(numeric, integer);
DROP CAST (public.hostile_team AS json);
DROP FUNCTION public.hostile_team_json(public.hostile_team);
DROP TYPE public.hostile_team;
DROP TABLE public.hostile_log;
DELETE FROM telnyx_order_requests;
DELETE FROM telnyx_inexplicit_orders;
REVOKE ALL ON SCHEMA public FROM regress_hostile_owner;
DROP OWNED BY regress_hostile_owner, regress_hostile_a, regress_hostile_b;
DROP ROLE regress_hostile_owner, regress_hostile_a, regress_hostile_b;

-- a schema the extension lives in, owned by a role that is neither a
-- superuser nor the extension's owner: that role could rename it and make
-- one of the old name with objects of its own where the extension's
-- statements, run as its owner, look; the extension refuses to act there,
-- the swap gains the role nothing, and the record is not dropped through
-- the schema's new name
CREATE DATABASE regress_telnyx_swap TEMPLATE template0;
\c regress_telnyx_swap
SET client_min_messages = warning;
CREATE ROLE regress_hostile_eve;
GRANT CREATE ON DATABASE regress_telnyx_swap TO regress_hostile_eve;
CREATE SCHEMA tel;
CREATE EXTENSION telnyx_orders SCHEMA tel;
SELECT tel.telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]') > 0 AS queued;
RESET client_min_messages;
ALTER SCHEMA tel OWNER TO regress_hostile_eve;
SELECT tel.telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]') > 0 AS queued;
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_hostile_eve;
BEGIN;
DROP SCHEMA IF EXISTS nothing_here;
ALTER SCHEMA tel RENAME TO tel2;
CREATE SCHEMA tel;
CREATE FUNCTION tel.pwn() RETURNS bigint LANGUAGE plpgsql
	AS $$BEGIN ALTER ROLE regress_hostile_eve SUPERUSER; RETURN 0; END$$;
CREATE VIEW tel.telnyx_inexplicit_orders AS SELECT n FROM (SELECT tel.pwn() AS n OFFSET 0) s WHERE n < 0;
CREATE VIEW tel.telnyx_order_requests AS SELECT 'sent'::text AS state;
SET client_min_messages = warning;
DROP SCHEMA tel CASCADE;
RESET client_min_messages;
COMMIT;
RESET ROLE;
SELECT rolsuper AS eve_is_superuser FROM pg_roles WHERE rolname = 'regress_hostile_eve';
SET ROLE regress_hostile_eve;
BEGIN;
DROP SCHEMA IF EXISTS nothing_here;
ALTER SCHEMA tel2 RENAME TO tel3;
\set VERBOSITY terse
DROP SCHEMA tel3 CASCADE;
\set VERBOSITY default
ROLLBACK;
RESET ROLE;
SELECT count(*) AS requests_kept FROM tel2.telnyx_order_requests;
\c contrib_regression
DROP DATABASE regress_telnyx_swap;
DROP ROLE regress_hostile_eve;
