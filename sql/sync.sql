--
-- Listing and syncing: an order the database forgot is found again.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
\set VERBOSITY default

-- an order placed in a transaction that rolls back still exists at Telnyx
BEGIN;
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]',
                                      customer_reference => 'rolled-back') IS NOT NULL AS placed;
ROLLBACK;
SELECT count(*) AS recorded FROM telnyx_inexplicit_orders;
\! standinctl count

-- one page of the list, as Telnyx answers it; the list writes nothing
SELECT jsonb_array_length(x -> 'data') AS orders, x -> 'meta' AS meta,
       x #>> '{data,0,customer_reference}' AS customer_reference
  FROM telnyx_list_inexplicit_orders() AS x;
SELECT count(*) AS recorded FROM telnyx_inexplicit_orders;
-- the same page as rows a person reads: one per order
SELECT id IS NOT NULL AS has_id, status, customer_reference,
       created_at IS NOT NULL AS has_created_at, groups, count_requested, count_allocated
  FROM telnyx_inexplicit_orders_list();

-- the sync brings the record back
SELECT telnyx_sync_inexplicit_orders() AS synced;
SELECT customer_reference, count_requested, status
  FROM telnyx_order_allocations;

-- 300 orders: the sync walks both pages of 250
SELECT count(telnyx_create_inexplicit_order(format('{"country_iso": "US", "phone_number_type": "local", "count_requested": %s}', 1 + i % 3)::jsonb,
                                            customer_reference => 'bulk-' || i)) AS placed
  FROM generate_series(1, 299) AS i;
DELETE FROM telnyx_inexplicit_orders WHERE customer_reference LIKE 'bulk-%' AND random() < 0.5;
\! standinctl reset-requests
SELECT telnyx_sync_inexplicit_orders() AS synced;
\! standinctl requests list
SELECT count(*) AS orders, count(DISTINCT customer_reference) AS refs FROM telnyx_inexplicit_orders;
SELECT count(*) AS groups, sum(count_requested) AS requested FROM telnyx_ordering_groups;

-- syncing again updates, never duplicates
\! standinctl settle
SELECT telnyx_sync_inexplicit_orders() AS synced;
SELECT count(*) AS orders FROM telnyx_inexplicit_orders;
-- a page as rows is the page Telnyx answers, in its order; every order's
-- status and counts are its groups'
SELECT array_agg(l.id ORDER BY n) = (SELECT array_agg(x ->> 'id' ORDER BY n)
                                       FROM jsonb_array_elements(telnyx_list_inexplicit_orders(2, 250) -> 'data')
                                            WITH ORDINALITY AS d(x, n)) AS same_page,
       count(*) AS orders
  FROM telnyx_inexplicit_orders_list(2, 250) WITH ORDINALITY AS l(id, status, customer_reference, created_at, groups, count_requested, count_allocated, n);
SELECT l.status, count(*) AS orders,
       bool_and(l.count_requested = a.requested AND l.count_allocated = a.allocated
                AND l.customer_reference = a.customer_reference) AS counts_match
  FROM telnyx_inexplicit_orders_list(1, 250) l
  JOIN (SELECT order_id, min(customer_reference) AS customer_reference,
               sum(count_requested) AS requested, sum(count_allocated) AS allocated
          FROM telnyx_order_allocations GROUP BY order_id) a ON a.order_id = l.id
 GROUP BY l.status ORDER BY l.status COLLATE "C";
SELECT count(*) AS null_page FROM telnyx_inexplicit_orders_list(NULL);
SELECT telnyx_inexplicit_orders_list(0);
\echo :LAST_ERROR_SQLSTATE
SELECT status, count(*) AS groups, sum(count_allocated) AS allocated, sum(shortfall) AS shortfall
  FROM telnyx_order_allocations GROUP BY status ORDER BY status;
SELECT count(*) AS number_orders FROM telnyx_number_orders;

-- paging arguments are checked before anything is sent
SELECT jsonb_array_length(telnyx_list_inexplicit_orders(2, 250) -> 'data') AS second_page;
SELECT telnyx_list_inexplicit_orders(page_size => 3) -> 'meta' AS meta;
SELECT telnyx_list_inexplicit_orders(0);
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_list_inexplicit_orders(1, 0);
SELECT telnyx_list_inexplicit_orders(1, 251);
SELECT telnyx_list_inexplicit_orders(NULL) IS NULL AS null_in_null_out;

-- refresh: an order still being filled is fetched again until every group
-- has ended, then never again
DELETE FROM telnyx_inexplicit_orders;
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2},
                                        {"country_iso": "US", "phone_number_type": "local", "count_requested": 3, "national_destination_code": "555"}]',
                                      customer_reference => 'to-refresh') IS NOT NULL AS placed;
SELECT next_refresh_at > now() AS refresh_planned,
       next_refresh_at < now() + interval '1 minute' AS soon
  FROM telnyx_inexplicit_orders WHERE customer_reference = 'to-refresh';
SELECT telnyx_refresh_orders() AS refreshed_before_due;
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now();
SELECT telnyx_refresh_orders() AS refreshed_while_pending;
SELECT status FROM telnyx_order_allocations ORDER BY group_index;
SELECT next_refresh_at IS NOT NULL AS still_followed FROM telnyx_inexplicit_orders;
\! standinctl settle
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now();
SELECT telnyx_refresh_orders() AS refreshed_when_filled;
SELECT group_index, status, count_requested, count_allocated, shortfall, cardinality(number_order_ids) AS number_orders
  FROM telnyx_order_allocations ORDER BY group_index;
SELECT next_refresh_at IS NULL AS no_longer_followed FROM telnyx_inexplicit_orders;
\! standinctl reset-requests
SELECT telnyx_refresh_orders() AS refreshed_after_the_end;
\! standinctl requests get

-- every walk over the list ends, and says how: pages without "meta" that
-- come round again, a server that ignores page_number, pages of orders
-- never seen before that never stop; each call ends at once with TX508,
-- having concluded and recorded nothing
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
SELECT count(telnyx_create_inexplicit_order('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}',
                                            customer_reference => 'endless-' || i)) AS placed
  FROM generate_series(1, 2) AS i;
DELETE FROM telnyx_inexplicit_orders;
SET statement_timeout = '60s';
\! standinctl config '{"list_meta": false, "list_endless": "repeat"}'
\! standinctl reset-requests
SELECT telnyx_sync_inexplicit_orders() AS synced;
\echo :LAST_ERROR_SQLSTATE
\! standinctl requests list
\! standinctl config '{"list_meta": true, "list_ignore_page": true, "list_page_cap": 1}'
\! standinctl reset-requests
SELECT telnyx_sync_inexplicit_orders() AS synced;
\! standinctl requests list
\! standinctl config '{"list_meta": false, "list_endless": "new", "list_ignore_page": false}'
\! standinctl reset-requests
SELECT telnyx_sync_inexplicit_orders() AS synced;
\echo :LAST_ERROR_SQLSTATE
\! standinctl requests list
SELECT count(*) AS recorded FROM telnyx_inexplicit_orders;
-- without "meta", a list that does end with an empty page is read to it
\! standinctl config '{"list_endless": null, "list_page_cap": 0}'
\! standinctl reset-requests
SELECT telnyx_sync_inexplicit_orders() AS synced;
\! standinctl requests list
RESET statement_timeout;
\! standinctl config '{"list_meta": true, "list_page_cap": 0}'
