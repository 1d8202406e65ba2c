--
-- Every answer of Telnyx's that is not a success, and every fault of the
-- connection, maps to its own SQLSTATE.  A create is never resent once it
-- may have reached Telnyx.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
\set VERBOSITY default
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'first') ->> 'id' AS id \gset

-- rejected by Telnyx (400, 422): Telnyx's code, title, detail and pointer
\! standinctl fault '{"match": "create", "status": 422, "code": "10015", "title": "Invalid parameter", "detail": "Locality is not served.", "pointer": "/ordering_groups/0/locality"}'
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "status": 400, "code": "10004", "title": "Missing required parameter", "detail": null}'
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
-- an error body with no fields at all, and one that is not JSON
\! standinctl fault '{"match": "get", "status": 400, "body": "{\"errors\": [{}]}"}'
SELECT telnyx_get_inexplicit_order(:'id');
\! standinctl fault '{"match": "get", "status": 422, "body": "<html>Unprocessable</html>"}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE

-- answers are read defensively: a field that is missing or of the wrong
-- type is absent, never an error, and keeps the value recorded before; an
-- answer without "ordering_groups" keeps the groups already recorded
SELECT count(*) AS groups_before FROM telnyx_ordering_groups WHERE order_id = :'id';
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"customer_reference\": \"first\", \"connection_id\": 7, \"created_at\": \"yesterday\", \"updated_at\": \"2026-13-45T99:00:00Z\", \"surprise\": {\"nested\": [1, 2]}}}"}'
SELECT telnyx_get_inexplicit_order(:'id') ->> 'surprise' AS kept_in_data;
SELECT connection_id, created_at IS NOT NULL AS created_at_kept,
       updated_at IS NOT NULL AS updated_at_kept, data ? 'surprise' AS data_updated
  FROM telnyx_inexplicit_orders WHERE id = :'id';
SELECT count(*) AS groups_after FROM telnyx_ordering_groups WHERE order_id = :'id';
-- a date whose tail would read as the name of a time zone no one knows
-- ("t-0:00..." after the date) is unreadable too: absent, not an error
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"created_at\": \"2026-12-06T-0:00:00.000Z\", \"updated_at\": \"2026-12-06 t-5\"}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
SELECT created_at IS NOT NULL AS created_at_kept, updated_at IS NOT NULL AS updated_at_kept
  FROM telnyx_inexplicit_orders WHERE id = :'id';
-- a count that is not an integer from 0 to 2^31-1 cannot be kept exactly:
-- the answer is malformed, nothing of it is recorded, the rows keep what
-- they had (the shortfall is never computed from a count that is wrong)
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"ordering_groups\": [{\"count_requested\": \"many\", \"status\": \"success\"}]}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"ordering_groups\": [{\"count_requested\": 1, \"count_allocated\": 99999999999, \"status\": \"success\"}]}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"ordering_groups\": [{\"count_requested\": 1, \"count_allocated\": -1, \"status\": \"success\"}]}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
-- a number order without an id could not be followed: malformed too
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"ordering_groups\": [{\"orders\": [5]}]}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
SELECT group_index, country_iso, count_requested, count_allocated, status
  FROM telnyx_ordering_groups WHERE order_id = :'id' ORDER BY group_index;
-- anything else odd is kept as far as it can be read: a status we do not
-- know, a group that is not an object, fields of the wrong type (absent),
-- number order ids that are not uuids
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"ordering_groups\": [{\"count_requested\": null, \"status\": \"on_the_moon\", \"features\": \"sms\", \"quickship\": \"yes\", \"orders\": [{\"number_order_id\": \"not-a-uuid\"}, {\"number_order_id\": \"5A4F6E1C-1C4B-4E7B-9C43-1D7E0E6E1A2B\", \"sub_number_order_ids\": [\"x\", 3]}]}, 17, {\"country_iso\": \"CA\", \"count_requested\": 7}]}}"}'
SELECT telnyx_get_inexplicit_order(:'id') IS NOT NULL AS stored;
SELECT group_index, country_iso, count_requested, count_allocated, status, features, quickship
  FROM telnyx_ordering_groups WHERE order_id = :'id' ORDER BY group_index;
SELECT number_order_id, group_index, sub_number_order_ids FROM telnyx_number_orders
 WHERE order_id = :'id' ORDER BY number_order_id;

-- hostile answers are malformed, never a crash: nesting beyond the stack,
-- a number beyond numeric's range, a NUL in a string, bytes that are not
-- UTF-8; and for a create, the outcome is unknown
\set VERBOSITY terse
\! standinctl fault '{"match": "get", "status": 200, "nesting": 200000}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"x\": 1e1000000}}"}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "get", "status": 200, "body": "{\"data\": {\"id\": \"{path_id}\", \"customer_reference\": \"a\\u0000b\"}}"}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "get", "status": 200, "latin1": true, "body": "{\"data\": {\"id\": \"{path_id}\", \"customer_reference\": \"\u00ff\"}}"}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "status": 200, "nesting": 200000}'
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- authentication: the key is refused, never shown
\! standinctl fault '{"match": "list", "status": 401, "code": "10009", "title": "Authentication failed", "detail": "Could not understand the provided credentials."}'
SELECT telnyx_list_inexplicit_orders();
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "status": 403, "code": "10010", "title": "Forbidden", "detail": "The key may not order numbers."}'
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE

-- the list as rows reads the answer defensively: a field missing or of
-- another type is NULL, never an error (a group whose status cannot be
-- read leaves the order's status unknown); an answer without a list of
-- orders is malformed, as for the jsonb form
\! standinctl fault '{"match": "list", "status": 200, "body": "{\"data\": [{\"id\": 5, \"customer_reference\": [], \"created_at\": \"2026-13-45T99:00:00Z\", \"ordering_groups\": [{\"status\": 7, \"count_requested\": \"many\", \"count_allocated\": 1}, {\"status\": \"failed\", \"count_requested\": 2}]}, \"x\", {\"id\": \"b\", \"created_at\": \"2026-01-02T03:04:05.123456Z\", \"ordering_groups\": {}}]}"}'
SELECT * FROM telnyx_inexplicit_orders_list() WHERE created_at IS NULL OR created_at = '2026-01-02T03:04:05.123456Z';
\! standinctl fault '{"match": "list", "status": 200, "body": "{\"data\": {\"id\": \"a\"}}"}'
SELECT count(*) AS orders FROM telnyx_inexplicit_orders_list();

-- not found
SELECT telnyx_get_inexplicit_order('8b4cbc62-4d87-4a3e-b0a4-8b4a33d33c7a');
\echo :LAST_ERROR_SQLSTATE

-- no key at all: nothing is sent (the suites' key file set aside, no
-- other key may be sent: the server's environment's goes only to the
-- server's base URL)
\! standinctl reset-requests
SET telnyx.api_key_file = '';
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_sync_inexplicit_orders();
RESET telnyx.api_key_file;
\! standinctl requests

-- rate limits: retried after the wait Telnyx asks for, then placed once
\! standinctl reset-requests
\! standinctl fault '{"match": "create", "status": 429, "code": "10011", "title": "Too many requests", "headers": {"Retry-After": "1"}}'
SELECT clock_timestamp() AS t0 \gset
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'after-429') ->> 'customer_reference' AS placed;
SELECT clock_timestamp() - :'t0' >= interval '1 second' AS waited_retry_after;
\! standinctl fault '{"match": "create", "status": 429, "code": "10011", "headers": {"retry-after-ms": "300", "Retry-After": "30"}}'
SELECT clock_timestamp() AS t0 \gset
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'after-429-ms') ->> 'customer_reference' AS placed;
SELECT clock_timestamp() - :'t0' BETWEEN interval '0.3 second' AND interval '20 seconds' AS waited_retry_after_ms;
\! standinctl fault '{"match": "list", "status": 429, "code": "10011", "headers": {"x-ratelimit-reset": "1"}}'
SELECT clock_timestamp() AS t0 \gset
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'page_size' AS listed;
SELECT clock_timestamp() - :'t0' >= interval '1 second' AS waited_ratelimit_reset;
-- an answer saying the window has no request left: the next request (of
-- any session or worker) waits for the window to reset
\! standinctl fault '{"match": "list", "status": 200, "body": "{\"data\": [], \"meta\": {\"page_number\": 1, \"page_size\": 1, \"total_pages\": 0, \"total_results\": 0}}", "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}}'
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' AS listed;
SELECT clock_timestamp() AS t0 \gset
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'page_size' AS listed;
SELECT clock_timestamp() - :'t0' >= interval '0.9 second' AS waited_for_the_window;
\! standinctl requests create
\! standinctl count
-- still limited after every retry: nothing was ordered
SET telnyx.max_retries = 1;
\! standinctl fault '{"match": "create", "status": 429, "code": "10011", "title": "Too many requests", "times": 2, "headers": {"retry-after-ms": "10"}}'
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
RESET telnyx.max_retries;
\! standinctl count

-- a server error on a read is retried; one that persists is an error
\! standinctl fault '{"match": "get", "status": 503, "code": "10007", "headers": {"retry-after-ms": "10"}}'
SELECT telnyx_get_inexplicit_order(:'id') ->> 'customer_reference' AS fetched;
\! standinctl fault '{"match": "get", "status": 500, "code": "10007", "times": 3, "headers": {"retry-after-ms": "10"}}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE

-- unknown outcomes of a create: never resent, and the hint says how to
-- find the order
\! standinctl reset-requests
\! standinctl fault '{"match": "create", "status": 500, "code": "10007", "title": "Unexpected error", "detail": "An unexpected error occurred."}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'lost-500');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "status": 502, "create": true, "code": "10007"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'made-then-502');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
\! standinctl fault '{"match": "create", "action": "close_before"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'closed-before');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "action": "close_after"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'closed-after');
\echo :LAST_ERROR_SQLSTATE
SET telnyx.timeout = '1s';
\! standinctl fault '{"match": "create", "action": "delay", "seconds": 3}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'timed-out');
\echo :LAST_ERROR_SQLSTATE
RESET telnyx.timeout;
\! standinctl fault '{"match": "create", "action": "truncated"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'truncated');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
\! standinctl fault '{"match": "create", "action": "malformed"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'malformed');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "status": 409, "code": "10015", "title": "Conflict"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'conflict');
\echo :LAST_ERROR_SQLSTATE
-- each was sent exactly once; the ones Telnyx made are in its ledger
\! standinctl requests create
\! standinctl ledger | python3 -c 'import json,sys; print(sorted(json.loads(l)["customer_reference"] or "" for l in sys.stdin))'
-- and the sync records them
SELECT telnyx_sync_inexplicit_orders() AS synced;
SELECT customer_reference FROM telnyx_inexplicit_orders ORDER BY customer_reference COLLATE "C";

-- reads that fail mid-way are retried, then reported
\! standinctl fault '{"match": "get", "action": "truncated"}'
SELECT telnyx_get_inexplicit_order(:'id') ->> 'customer_reference' AS fetched_after_retry;
\set VERBOSITY terse
\! standinctl fault '{"match": "get", "action": "truncated", "times": 3}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
\! standinctl fault '{"match": "get", "action": "malformed"}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "list", "status": 302, "headers": {"Location": "https://elsewhere.invalid/"}}'
SELECT telnyx_list_inexplicit_orders();
\echo :LAST_ERROR_SQLSTATE

-- answers larger than telnyx.max_response_size
SET telnyx.max_response_size = '64kB';
\! standinctl fault '{"match": "get", "action": "oversized", "bytes": 200000}'
SELECT telnyx_get_inexplicit_order(:'id');
\echo :LAST_ERROR_SQLSTATE
\! standinctl fault '{"match": "create", "action": "oversized", "bytes": 200000}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'oversized');
\echo :LAST_ERROR_SQLSTATE
RESET telnyx.max_response_size;
\! standinctl count
