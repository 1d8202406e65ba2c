--
-- Placing an order: the request sent, the answer returned, the rows kept.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
\set VERBOSITY default

-- every criterion, given in both spellings of the phone number filters
SELECT telnyx_create_inexplicit_order(
  '[{"country_iso": "us", "phone_number_type": "local", "count_requested": 3,
     "national_destination_code": "312", "administrative_area": "IL",
     "locality": "Chicago", "features": ["sms", "voice"],
     "phone_number": {"starts_with": "312"}, "phone_number[ends_with]": "7",
     "strategy": "always", "quickship": false, "exclude_held_numbers": true},
    {"country_iso": "CA", "phone_number_type": "toll_free", "count_requested": "2",
     "national_destination_code": null}]',
  connection_id => 'conn-1', messaging_profile_id => 'mp-1',
  customer_reference => 'create-1', billing_group_id => 'bg-1') AS created \gset

-- what went over the wire: count_requested as a string, filters nested,
-- country upper case, nulls left out; headers as the spec wants
\! standinctl last

-- what came back is Telnyx's "data"
SELECT (:'created'::jsonb) ->> 'customer_reference' AS customer_reference,
       jsonb_array_length((:'created'::jsonb) -> 'ordering_groups') AS groups,
       (:'created'::jsonb) #>> '{ordering_groups,0,count_requested}' AS count_requested,
       (:'created'::jsonb) #>> '{ordering_groups,0,phone_number[starts_with]}' AS starts_with,
       (:'created'::jsonb) #>> '{ordering_groups,0,status}' IN ('pending', 'processing') AS underway;
SELECT (:'created'::jsonb) ->> 'id' AS id \gset

-- recorded in the caller's transaction
SELECT id = :'id' AS same_id, connection_id, messaging_profile_id, customer_reference,
       billing_group_id, created_at IS NOT NULL AS has_created_at,
       data = :'created'::jsonb AS data_kept
  FROM telnyx_inexplicit_orders;
SELECT group_index, country_iso, phone_number_type, national_destination_code,
       administrative_area, locality, features, phone_number_starts_with,
       phone_number_ends_with, phone_number_contains, strategy, quickship,
       exclude_held_numbers, count_requested, count_allocated
  FROM telnyx_ordering_groups WHERE order_id = :'id' ORDER BY group_index;

-- Telnyx fills the order; fetching it again refreshes the same rows
\! standinctl settle
SELECT x ->> 'id' = :'id' AS same_id,
       x #>> '{ordering_groups,0,status}' AS status,
       x #>> '{ordering_groups,0,count_allocated}' AS count_allocated
  FROM telnyx_get_inexplicit_order(:'id') AS x;
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS fetched_again;
SELECT count(*) AS orders FROM telnyx_inexplicit_orders;
SELECT count(*) AS groups FROM telnyx_ordering_groups;
SELECT group_index, count(*) AS number_orders, sum(cardinality(sub_number_order_ids)) AS sub_orders
  FROM telnyx_number_orders WHERE order_id = :'id' GROUP BY group_index ORDER BY group_index;
SELECT customer_reference, group_index, country_iso, phone_number_type, count_requested,
       count_allocated, shortfall, status, error_reason, cardinality(number_order_ids) AS number_orders
  FROM telnyx_order_allocations WHERE order_id = :'id' ORDER BY group_index;

-- short stock: partial success, failure, and strategy "never"
SELECT telnyx_create_inexplicit_order(
  '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 5, "national_destination_code": "555"},
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": "999"},
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 5, "national_destination_code": "555", "strategy": "never"},
    {"country_iso": "US", "phone_number_type": "local", "count_requested": 250}]',
  customer_reference => 'create-2') ->> 'id' AS id2 \gset
SELECT customer_reference, group_index, count_requested, count_allocated, shortfall, status
  FROM telnyx_order_allocations WHERE order_id = :'id2' ORDER BY group_index;
\! standinctl settle
SELECT telnyx_get_inexplicit_order(:'id2') IS NOT NULL AS refreshed;
SELECT customer_reference, group_index, count_requested, count_allocated, shortfall, status,
       error_reason, cardinality(number_order_ids) AS number_orders
  FROM telnyx_order_allocations WHERE order_id = :'id2' ORDER BY group_index;

-- one group may be given as a bare object; no order-level fields at all
SELECT telnyx_create_inexplicit_order('{"country_iso": "CA", "phone_number_type": "mobile", "count_requested": "1"}') ->> 'customer_reference' AS no_reference;
\! standinctl last
\! standinctl count

-- each call carries its own idempotency key
\! standinctl keys
