--
-- Following an order to the numbers bought: number orders, phone numbers,
-- the reports, the tables kept true to Telnyx's latest answer, and events.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
\! standinctl config '{"number_seconds": 3600}'
DELETE FROM telnyx_inexplicit_orders;
DELETE FROM telnyx_order_events;
SET client_min_messages = warning;

-- success (2 of 2), partial success (2 of 5: short stock), failure (no
-- stock), with criteria the answers do not echo (locality, features)
SELECT telnyx_create_inexplicit_order('[
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 2,
     "locality": "Chicago", "features": ["sms", "voice"]},
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 5,
     "national_destination_code": "555"},
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 1,
     "national_destination_code": "999"}]',
  customer_reference => 'follow-1') ->> 'id' AS id \gset
SELECT group_index, locality, features, status FROM telnyx_ordering_groups
 WHERE order_id = :'id' ORDER BY group_index;

-- Telnyx fills the groups; the numbers are still pending
\! standinctl settle orders
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now();
SELECT telnyx_refresh_orders() AS refreshed;
SELECT group_index, count_requested, count_allocated, shortfall, numbers_bought,
       status, error_reason, cardinality(number_order_ids) AS number_orders
  FROM telnyx_order_allocations WHERE order_id = :'id' ORDER BY group_index;
SELECT n.group_index, n.status, n.phone_numbers_count, n.requirements_met,
       n.customer_reference, cardinality(n.sub_number_order_ids) AS sub_orders,
       n.next_fetch_at > now() AS fetched_again_later
  FROM telnyx_number_orders n WHERE n.order_id = :'id' ORDER BY n.group_index;
SELECT group_index, status, count(*) AS numbers
  FROM telnyx_purchased_numbers WHERE order_id = :'id'
 GROUP BY group_index, status ORDER BY group_index;
SELECT customer_reference, groups_open, count_requested, count_allocated,
       numbers_bought, numbers_pending, open_since IS NOT NULL AS has_open_since
  FROM telnyx_open_orders;
-- the locality and features asked for are kept
SELECT group_index, locality, features FROM telnyx_ordering_groups
 WHERE order_id = :'id' AND group_index = 1;

-- the numbers are bought
\! standinctl settle
UPDATE telnyx_number_orders SET next_fetch_at = now();
SELECT telnyx_refresh_orders() AS refreshed;
SELECT group_index, count_requested, count_allocated, shortfall, numbers_bought, status
  FROM telnyx_order_allocations WHERE order_id = :'id' ORDER BY group_index;
SELECT phone_number ~ '^\+1[0-9]{10}$' AS e164, status, group_index, customer_reference,
       country_iso, phone_number_type, phone_number_id IS NOT NULL AS has_id,
       requirements_met, requirements_status, deadline > now() AS deadline_ahead,
       bought_at IS NOT NULL AS bought
  FROM telnyx_purchased_numbers WHERE order_id = :'id'
 ORDER BY group_index, phone_number;
SELECT count(*) AS open_orders FROM telnyx_open_orders;
SELECT next_fetch_at IS NULL AS no_longer_fetched FROM telnyx_number_orders WHERE order_id = :'id';

-- once everything has ended, nothing is fetched again
\! standinctl reset-requests
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() - interval '1 hour'
 WHERE next_refresh_at IS NOT NULL;
SELECT telnyx_refresh_orders() AS refreshed_after_the_end;
\! standinctl requests

-- what changed, as it changed: the events a listener is pointed to
SELECT event, group_index, status, count_allocated, numbers
  FROM telnyx_order_events WHERE order_id = :'id' ORDER BY seq;
-- each names the order's customer_reference, whichever path wrote it
-- (a group's change, numbers bought)
SELECT event, customer_reference, count(*) AS events
  FROM telnyx_order_events WHERE order_id = :'id'
 GROUP BY event, customer_reference ORDER BY event COLLATE "C";

-- the stale, shared and missing-field cases, each with an answer built
-- to show it (\gset a fault, then hand it to the stand-in)
SELECT min(number_order_id) AS shared FROM telnyx_number_orders
 WHERE order_id = :'id' AND group_index = 1 \gset

-- one number order listed under two groups is kept under both, with its
-- numbers; a field the answer leaves out (count_allocated, error_reason,
-- the third group) keeps its value
SELECT json_build_object('match', 'get', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'ordering_groups', json_build_array(
           json_build_object('status', 'success', 'orders',
             json_build_array(json_build_object('number_order_id', :'shared'))),
           json_build_object('status', 'partial_success', 'orders',
             json_build_array(json_build_object('number_order_id', :'shared'))),
           json_build_object('status', 'failed'))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE id = :'id';
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT group_index, count_allocated, numbers_bought, status, error_reason,
       number_order_ids = ARRAY[:'shared'] AS only_the_shared_one
  FROM telnyx_order_allocations WHERE order_id = :'id' ORDER BY group_index;

-- a later answer lists it under group 1 only: unlinked from group 2, and
-- its numbers with it (and a group no longer listed is gone)
SELECT json_build_object('match', 'get', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'ordering_groups', json_build_array(
           json_build_object('orders',
             json_build_array(json_build_object('number_order_id', :'shared'))),
           json_build_object('orders', json_build_array()))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE id = :'id';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT group_index, count_allocated, numbers_bought, status,
       cardinality(number_order_ids) AS number_orders
  FROM telnyx_order_allocations WHERE order_id = :'id' ORDER BY group_index;

-- an order answer that gives a number order's sub-order ids as an empty
-- list empties them; one that leaves the list out keeps what is stored
UPDATE telnyx_number_orders SET sub_number_order_ids = '{5b0e8f47-0000-4000-8000-0000000000aa}'
 WHERE number_order_id = :'shared';
SELECT json_build_object('match', 'get', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'ordering_groups', json_build_array(
           json_build_object('orders',
             json_build_array(json_build_object('number_order_id', :'shared',
                                                'sub_number_order_ids', json_build_array()))),
           json_build_object('orders', json_build_array()))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE id = :'id';
SELECT telnyx_refresh_orders() > 0 AS refreshed;
SELECT cardinality(sub_number_order_ids) AS sub_orders_after_empty_list
  FROM telnyx_number_orders WHERE number_order_id = :'shared';
UPDATE telnyx_number_orders SET sub_number_order_ids = '{5b0e8f47-0000-4000-8000-0000000000aa}'
 WHERE number_order_id = :'shared';
SELECT json_build_object('match', 'get', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'ordering_groups', json_build_array(
           json_build_object('orders',
             json_build_array(json_build_object('number_order_id', :'shared'))),
           json_build_object('orders', json_build_array()))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE id = :'id';
SELECT telnyx_refresh_orders() > 0 AS refreshed;
SELECT cardinality(sub_number_order_ids) AS sub_orders_after_no_list
  FROM telnyx_number_orders WHERE number_order_id = :'shared';

-- a number order answer without status and numbers keeps both; a status
-- outside the spec's enum is stored, not refused
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'phone_numbers_count', 2))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT status, phone_numbers_count, (SELECT count(*) FROM telnyx_phone_numbers p
                                      WHERE p.number_order_id = n.number_order_id) AS numbers
  FROM telnyx_number_orders n WHERE number_order_id = :'shared';
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'status', 'cancelled'))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT status, next_fetch_at IS NULL AS ended FROM telnyx_number_orders WHERE number_order_id = :'shared';

-- the order keeps the state built above: its own refresh (at half its
-- age) must not bring the stand-in's answer back in a slow run
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() + interval '1 hour' WHERE id = :'id';
-- answers that cannot be recorded change nothing, and are tried again:
-- a count outside integer, a number without a phone_number, another
-- number order than the one asked for
SET client_min_messages = notice;
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'status', 'success', 'phone_numbers_count', 3000000000))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'phone_numbers', json_build_array(json_build_object('status', 'success'))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '0c5d1b7e-0000-4000-8000-000000000000', 'status', 'success'))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SET client_min_messages = warning;
SELECT status, phone_numbers_count, next_fetch_at > now() AS tried_again_later
  FROM telnyx_number_orders WHERE number_order_id = :'shared';

-- the README's report queries, as it gives them, with one order still
-- being filled
SELECT telnyx_create_inexplicit_order('[{"country_iso": "CA", "phone_number_type": "toll_free", "count_requested": 3}]',
  customer_reference => 'follow-2') IS NOT NULL AS placed;
-- per customer_reference
SELECT customer_reference, sum(count_requested) AS requested,
       sum(count_allocated) AS allocated, sum(numbers_bought) AS bought
  FROM telnyx_order_allocations GROUP BY customer_reference ORDER BY customer_reference;
-- shortfall per country and type
SELECT country_iso, phone_number_type, sum(shortfall) AS shortfall
  FROM telnyx_order_allocations
 WHERE status IN ('success', 'partial_success', 'failed')
 GROUP BY country_iso, phone_number_type ORDER BY 1, 2;
-- orders still open, oldest first
SELECT order_id, customer_reference, open_for, groups_open, numbers_pending
  FROM telnyx_open_orders ORDER BY open_since
\gset open_
SELECT :'open_customer_reference' AS customer_reference, :'open_open_for'::interval > '0' AS open_for,
       :open_groups_open AS groups_open, :open_numbers_pending AS numbers_pending;
-- numbers bought today
SELECT phone_number, customer_reference, country_iso, phone_number_type
  FROM telnyx_purchased_numbers
 WHERE status = 'success' AND bought_at >= current_date;
-- a listener pointed to an event reads it
SELECT min(seq) AS seq FROM telnyx_order_events WHERE event = 'numbers_bought' AND group_index = 1 \gset
SELECT p.phone_number, p.status FROM telnyx_order_events e
  JOIN telnyx_purchased_numbers p USING (order_id, group_index, number_order_id)
 WHERE e.seq = :seq ORDER BY 1;

-- a number listed twice counts once, as its last listing says; a list of
-- numbers is the whole list
SELECT json_build_object('match', 'number_order', 'status', 200, 'body', json_build_object('data',
         json_build_object('id', '{path_id}', 'phone_numbers', json_build_array(
           json_build_object('phone_number', '+15550000001', 'status', 'pending'),
           json_build_object('phone_number', '+15550000002', 'status', 'success'),
           json_build_object('phone_number', '+15550000001', 'status', 'success'))))::text) AS fault \gset
\set out `standinctl fault :'fault'`
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = :'shared';
SELECT telnyx_refresh_orders() AS refreshed;
SELECT phone_number, status FROM telnyx_phone_numbers WHERE number_order_id = :'shared' ORDER BY 1;

--
-- Webhooks: number_order.complete, signed with Ed25519 by the stand-in
-- with a key pair the test run generated
--
\set webhook_key `printf %s "$TELNYX_TEST_WEBHOOK_PUBLIC_KEY"`
\! standinctl settle
SELECT number_order_id AS hooked FROM telnyx_number_orders
 WHERE order_id = :'id' AND group_index = 1 \gset
UPDATE telnyx_phone_numbers SET status = 'pending' WHERE number_order_id = :'hooked';
UPDATE telnyx_number_orders SET status = 'pending' WHERE number_order_id = :'hooked';
\set delivery `standinctl webhook :'hooked'`
SELECT :'delivery'::jsonb ->> 'body' AS body, :'delivery'::jsonb ->> 'signature' AS signature,
       :'delivery'::jsonb ->> 'timestamp' AS ts \gset

-- no key configured: refused, nothing written
SELECT telnyx_apply_webhook(:'body', :'signature', :'ts');
\echo :LAST_ERROR_SQLSTATE
-- only a superuser may say which key deliveries are checked with
CREATE ROLE regress_telnyx_hooker;
GRANT EXECUTE ON FUNCTION telnyx_apply_webhook(text, text, text) TO regress_telnyx_hooker;
SET ROLE regress_telnyx_hooker;
SET telnyx.webhook_public_key = :'webhook_key';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET telnyx.webhook_public_key = 'bm90IGEga2V5';
\echo :LAST_ERROR_SQLSTATE
SET telnyx.webhook_public_key = :'webhook_key';

-- a valid delivery is applied, by a role granted only EXECUTE
SET ROLE regress_telnyx_hooker;
SELECT telnyx_apply_webhook(:'body', :'signature', :'ts') - 'event_id' - 'number_order_id' AS applied;
RESET ROLE;
SELECT status, count(*) FROM telnyx_phone_numbers WHERE number_order_id = :'hooked' GROUP BY status;
SELECT status FROM telnyx_number_orders WHERE number_order_id = :'hooked';
SELECT event, numbers FROM telnyx_order_events ORDER BY seq DESC LIMIT 1;
-- the same delivery again changes nothing
SELECT count(*) AS events_before FROM telnyx_order_events \gset
SELECT telnyx_apply_webhook(:'body', :'signature', :'ts') ->> 'reason' AS replay;
SELECT count(*) = :events_before AS no_new_event FROM telnyx_order_events;
SELECT count(*) AS deliveries, bool_and(applied) AS applied FROM telnyx_webhook_deliveries;

-- refused, each with its own error, and nothing written
SELECT count(*) AS deliveries_before FROM telnyx_webhook_deliveries \gset
-- forged: the body changed on the way
SELECT telnyx_apply_webhook(replace(:'body', 'success', 'failure'), :'signature', :'ts');
\echo :LAST_ERROR_SQLSTATE
-- a signature that is not base64 of 64 bytes
SELECT telnyx_apply_webhook(:'body', 'c2hvcnQ=', :'ts');
\echo :LAST_ERROR_SQLSTATE
-- signed with another key than the one configured
SET telnyx.webhook_public_key = 'O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=';
\set delivery `standinctl webhook :'hooked'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp');
\echo :LAST_ERROR_SQLSTATE
SET telnyx.webhook_public_key = :'webhook_key';
-- expired: signed 10 minutes ago, and from 10 minutes ahead (terse: the
-- seconds counted may differ by one)
\set VERBOSITY terse
\set delivery `standinctl webhook :'hooked' -600`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') IS NULL;
\echo :LAST_ERROR_SQLSTATE
\set delivery `standinctl webhook :'hooked' 600`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') IS NULL;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- a timestamp other than the one signed
SELECT telnyx_apply_webhook(:'body', :'signature', 'yesterday');
\echo :LAST_ERROR_SQLSTATE
-- malformed bodies, validly signed
\set delivery `standinctl sign 'not json'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp');
\echo :LAST_ERROR_SQLSTATE
\set delivery `standinctl sign '{"data": {"event_type": "number_order.complete", "id": "e1"}}'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp');
\echo :LAST_ERROR_SQLSTATE
\set delivery `standinctl sign '{"data": {"event_type": "number_order.complete", "id": "e2", "payload": {"id": "x", "phone_numbers_count": -2}}}'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_apply_webhook(NULL, :'signature', :'ts');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) = :deliveries_before AS nothing_written FROM telnyx_webhook_deliveries;
-- a wider tolerance takes the one from 10 minutes ahead
SET telnyx.webhook_tolerance = '15min';
\set delivery `standinctl webhook :'hooked' 600`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') ->> 'applied' AS applied_when_tolerated;
RESET telnyx.webhook_tolerance;

-- other event types are ignored without error; a number order no order
-- links to is remembered, not applied (the refresh fetches it once linked)
\set delivery `standinctl webhook :'hooked' 0 number_order.deadline_approaching`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') - 'event_id' AS ignored;
DELETE FROM telnyx_number_orders WHERE number_order_id = :'hooked';
\set delivery `standinctl webhook :'hooked'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') - 'event_id' - 'number_order_id' AS unknown;
SELECT count(*) FROM telnyx_phone_numbers WHERE number_order_id = :'hooked';
-- on a standby, or in a read-only transaction: refused before writing
BEGIN READ ONLY;
\set delivery `standinctl webhook :'hooked'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp');
ROLLBACK;
DROP OWNED BY regress_telnyx_hooker;
DROP ROLE regress_telnyx_hooker;
RESET telnyx.webhook_public_key;

--
-- Facts only move forward: Telnyx retries deliveries, out of order, and an
-- answer fetched may be older than a delivery applied.  Whichever path
-- brings an older fact (webhook, refresh), what is recorded stays.
--
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]',
  customer_reference => 'forward-1') ->> 'id' AS fid \gset
\! standinctl settle orders
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE id = :'fid';
SELECT telnyx_refresh_orders() > 0 AS refreshed;
SELECT number_order_id AS fno FROM telnyx_number_orders WHERE order_id = :'fid' \gset
SELECT status, next_fetch_at IS NOT NULL AS followed FROM telnyx_number_orders WHERE number_order_id = :'fno';
\! standinctl settle
SET telnyx.webhook_public_key = :'webhook_key';
\set delivery `standinctl webhook :'fno'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') ->> 'applied' AS success_applied;
SELECT n.status, n.next_fetch_at IS NULL AS ended,
       (SELECT string_agg(DISTINCT p.status, ',') FROM telnyx_phone_numbers p
         WHERE p.number_order_id = n.number_order_id) AS numbers
  FROM telnyx_number_orders n WHERE number_order_id = :'fno';
SELECT updated_at AS success_updated_at FROM telnyx_number_orders WHERE number_order_id = :'fno' \gset
SELECT count(*) AS events_before FROM telnyx_order_events \gset
-- the same number order "pending", in a delivery dated an hour earlier
-- (its occurred_at), then in one whose record is an hour older (its
-- updated_at)
SELECT jsonb_set(jsonb_set(jsonb_set(jsonb_set(b,
         '{data,id}', to_jsonb((b #>> '{data,id}') || '-older')),
         '{data,occurred_at}', to_jsonb(to_char(((b #>> '{data,occurred_at}')::timestamptz - interval '1 hour')
                                                AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
         '{data,payload,status}', '"pending"'),
         '{data,payload,phone_numbers}',
         (SELECT jsonb_agg(p || '{"status": "pending"}') FROM jsonb_array_elements(b #> '{data,payload,phone_numbers}') p))::text AS older,
       jsonb_set(jsonb_set(jsonb_set(jsonb_set(b,
         '{data,id}', to_jsonb((b #>> '{data,id}') || '-older-record')),
         '{data,payload,updated_at}', to_jsonb(to_char((:'success_updated_at'::timestamptz - interval '1 hour')
                                                       AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
         '{data,payload,status}', '"pending"'),
         '{data,payload,phone_numbers}',
         (SELECT jsonb_agg(p || '{"status": "pending"}') FROM jsonb_array_elements(b #> '{data,payload,phone_numbers}') p))::text AS older_record
  FROM (SELECT (:'delivery'::jsonb ->> 'body')::jsonb AS b) d \gset
\set delivery `standinctl sign :'older'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') - 'event_id' - 'number_order_id' AS older_delivery;
\set delivery `standinctl sign :'older_record'`
SELECT telnyx_apply_webhook(:'delivery'::jsonb ->> 'body', :'delivery'::jsonb ->> 'signature',
                            :'delivery'::jsonb ->> 'timestamp') - 'event_id' - 'number_order_id' AS older_record;
SELECT n.status, n.next_fetch_at IS NULL AS ended, n.updated_at = :'success_updated_at' AS same_updated_at,
       (SELECT string_agg(DISTINCT p.status, ',') FROM telnyx_phone_numbers p
         WHERE p.number_order_id = n.number_order_id) AS numbers
  FROM telnyx_number_orders n WHERE number_order_id = :'fno';
SELECT event_id LIKE '%-older%' AS older, applied FROM telnyx_webhook_deliveries
 WHERE number_order_id = :'fno' ORDER BY 1;
RESET telnyx.webhook_public_key;
