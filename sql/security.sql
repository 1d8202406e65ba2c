--
-- Privileges and the API key: ordering is not for PUBLIC, the key is for
-- superusers' eyes only, appears in no message, and goes nowhere else.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]'
CREATE ROLE regress_telnyx_nobody;
CREATE ROLE regress_telnyx_orderer;

-- nothing is executable or writable by a role without grants
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_telnyx_nobody', p.oid, 'EXECUTE') AS can_execute
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON d.refobjid = e.oid AND d.deptype = 'e'
 WHERE e.extname = 'telnyx_orders'
 ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT c.relname,
       has_table_privilege('regress_telnyx_nobody', c.oid, 'SELECT') AS can_read,
       has_table_privilege('regress_telnyx_nobody', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write
  FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
  JOIN pg_extension e ON d.refobjid = e.oid AND d.deptype = 'e'
 WHERE e.extname = 'telnyx_orders'
 ORDER BY c.relname::text COLLATE "C";
SELECT array_length(extconfig, 1) AS dumped_tables FROM pg_extension WHERE extname = 'telnyx_orders';

SET ROLE regress_telnyx_nobody;
SELECT telnyx_create_inexplicit_order(:'groups');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_sync_inexplicit_orders();
INSERT INTO telnyx_inexplicit_orders (id, data) VALUES ('8b4cbc62-4d87-4a3e-b0a4-8b4a33d33c7a', '{}');
RESET ROLE;
\! standinctl requests

-- the grants the README suggests for an ordering role
GRANT EXECUTE ON FUNCTION telnyx_create_inexplicit_order(jsonb, text, text, text, text),
                          telnyx_get_inexplicit_order(uuid)
   TO regress_telnyx_orderer;
GRANT SELECT ON telnyx_order_allocations TO regress_telnyx_orderer;
SET ROLE regress_telnyx_orderer;
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'by-orderer') ->> 'customer_reference' AS placed;
SELECT customer_reference, count_requested, status FROM telnyx_order_allocations;
-- it records orders through the functions, never writes the tables itself
DELETE FROM telnyx_inexplicit_orders;
SELECT telnyx_sync_inexplicit_orders();

-- it cannot read the key: no setting holds it, and it cannot see where
-- the key file is
SHOW telnyx.api_key;
-- (the wording of the refusal differs between versions, its SQLSTATE not)
DO $$
DECLARE
    v text;
BEGIN
    EXECUTE 'SHOW telnyx.api_key_file' INTO v;
    RAISE NOTICE 'telnyx.api_key_file shown: %', v;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'telnyx.api_key_file not shown: %', SQLSTATE;
END $$;
SELECT count(*) AS visible FROM pg_settings WHERE name LIKE 'telnyx.api_key%';
RESET ROLE;
-- as a member of pg_read_all_settings it sees the file's name, never what
-- the file holds
GRANT pg_read_all_settings TO regress_telnyx_orderer;
SET ROLE regress_telnyx_orderer;
SELECT current_setting('telnyx.api_key_file') <> '' AS sees_the_name;
SELECT pg_read_file(current_setting('telnyx.api_key_file'));
RESET ROLE;
REVOKE pg_read_all_settings FROM regress_telnyx_orderer;
SET ROLE regress_telnyx_orderer;
-- nor change it, nor where it is sent, nor which CAs are trusted
SET telnyx.api_key = 'KEYmine';
SET telnyx.api_key_file = '/tmp/my.key';
SET telnyx.api_base_url = 'https://collector.example.com/v2';
SET telnyx.ca_file = '/tmp/my-ca.pem';
-- but it may tune its own requests
SET telnyx.timeout = '5s';
SET telnyx.max_retries = 0;
RESET ROLE;

-- the key appears in no message, detail, hint or context, nor in a table
CREATE FUNCTION pg_temp.key_shown(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text; c text;
    secret text := btrim(pg_read_file(current_setting('telnyx.api_key_file')), E' \r\n');
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                            h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
    RETURN SQLSTATE || CASE WHEN strpos(concat_ws(' ', m, d, h, c), secret) > 0
                            THEN ': the key is shown' ELSE ': the key is not shown' END;
END $$;
SELECT length(btrim(pg_read_file(current_setting('telnyx.api_key_file')), E' \r\n')) > 10 AS key_is_set;
\! standinctl config '{"api_key": "KEYsomeoneelse"}'
SELECT pg_temp.key_shown($$SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]')$$);
SELECT pg_temp.key_shown($$SELECT telnyx_list_inexplicit_orders()$$);
\! standinctl config "{\"api_key\": \"$TELNYX_TEST_KEY\"}"
\! standinctl fault '{"match": "create", "status": 500}'
SELECT pg_temp.key_shown($$SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]')$$);
SELECT pg_temp.key_shown($$SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 0}]')$$);
SELECT count(*) AS rows_with_key
  FROM telnyx_inexplicit_orders
 WHERE strpos(data::text, btrim(pg_read_file(current_setting('telnyx.api_key_file')), E' \r\n')) > 0;

-- the key is never a setting's value: every way of giving telnyx.api_key
-- a value is refused with a hint to the key file, and the refusal never
-- shows the value (run at the top level: from PL/pgSQL's EXECUTE, the
-- CONTEXT would quote the caller's own statement)
SET telnyx.api_key = E'KEYrefused\r\nX-Injected: 1';
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SET telnyx.api_key = 'KEYkeptinasetting1';
SET LOCAL telnyx.api_key = 'KEYkeptinasetting2';
SET /* a comment */ telnyx.api_key /* before = */ = 'KEYkeptinasetting3';
SET telnyx."api_key" TO 'KEYkeptinasetting4';
SET U&"telnyx.api\005fkey" = 'KEYkeptinasetting5';
SELECT set_config('telnyx.api_key', 'KEYkeptinasetting6', false);
SELECT set_config(lower('TELNYX.') || 'API_KEY', 'KEYkeptinasetting7', true);
PREPARE keyed(text, text) AS SELECT set_config($1, $2, false);
EXECUTE keyed('telnyx.api_key', 'KEYkeptinasetting8');
DEALLOCATE keyed;
ALTER SYSTEM SET telnyx.api_key = 'KEYkeptinasetting9';
ALTER ROLE regress_telnyx_orderer SET telnyx.api_key = 'KEYkeptinacatalog1';
ALTER ROLE regress_telnyx_orderer IN DATABASE contrib_regression SET telnyx.api_key = 'KEYkeptinacatalog2';
ALTER ROLE ALL SET telnyx.api_key = 'KEYkeptinacatalog3';
ALTER DATABASE contrib_regression SET telnyx.api_key = 'KEYkeptinacatalog4';
CREATE FUNCTION pg_temp.keyed() RETURNS int LANGUAGE sql SET telnyx.api_key = 'KEYkeptinacatalog5' AS 'SELECT 1';
CREATE PROCEDURE pg_temp.keyed_proc() LANGUAGE sql SET telnyx.api_key = 'KEYkeptinacatalog6' AS 'SELECT 1';
CREATE FUNCTION pg_temp.unkeyed() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER FUNCTION pg_temp.unkeyed() SET telnyx.api_key = 'KEYkeptinacatalog7';
ALTER ROUTINE pg_temp.unkeyed() SET telnyx.api_key = 'KEYkeptinacatalog8';
\set VERBOSITY default
SHOW telnyx.api_key;
-- nothing kept it
SELECT count(*) AS settings_with_key FROM pg_db_role_setting
 WHERE array_to_string(setconfig, ',') LIKE '%KEYkept%';
SELECT count(*) AS functions_with_key FROM pg_proc
 WHERE array_to_string(proconfig, ',') LIKE '%KEYkept%';
SELECT count(*) AS file_settings_with_key FROM pg_file_settings
 WHERE lower(name) = 'telnyx.api_key';
-- an empty value is no key, and may be set
SET telnyx.api_key = '';
RESET telnyx.api_key;

-- the key is sent only where it was configured for: a base URL set in the
-- session gets no key but a key file set in the session too (nothing is
-- sent), whatever the URL
\set https_url `printf %s "$TELNYX_TEST_HTTPS_URL"`
\set key_file `printf %s "$TELNYX_TEST_KEY_FILE"`
\! standinctl reset-requests
SET telnyx.api_base_url = :'https_url';
\set VERBOSITY terse
SELECT telnyx_list_inexplicit_orders(1, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'elsewhere');
\set VERBOSITY default
\! standinctl requests
-- with its own key file, the session's base URL is sent that key
SET telnyx.api_key_file = :'key_file';
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' IS NOT NULL AS listed;
-- a key file set in the session goes to the server's base URL too
RESET telnyx.api_base_url;
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' IS NOT NULL AS listed;
RESET telnyx.api_key_file;

-- where the key may be sent: https anywhere, plain http only to loopback
SET telnyx.api_base_url = 'http://api.telnyx.com/v2';
SET telnyx.api_base_url = 'http://10.1.2.3/v2';
SET telnyx.api_base_url = 'ftp://127.0.0.1/v2';
SET telnyx.api_base_url = 'https://user:secret@api.telnyx.com/v2';
SET telnyx.api_base_url = 'https://api.telnyx.com/v2?debug=1';
SET telnyx.api_base_url = 'api.telnyx.com/v2';
SET telnyx.api_base_url = 'http://localhost:8080/v2';
SET telnyx.api_base_url = 'http://127.8.9.10:8080/v2';
SET telnyx.api_base_url = 'http://[::1]:8080/v2';
SET telnyx.api_base_url = 'https://api.telnyx.com/v2/';
RESET telnyx.api_base_url;
SELECT current_setting('telnyx.api_base_url') LIKE 'https://127.0.0.1:%/v2' AS back_to_the_stand_in;

-- dropping the extension would delete the record of what was bought: it
-- is refused (as is DROP SCHEMA ... CASCADE of its schema) until the
-- session says so
SELECT count(*) > 0 AS orders_recorded FROM telnyx_inexplicit_orders;
-- a role that may not drop it hears PostgreSQL's refusal, not what the
-- tables hold
SET ROLE regress_telnyx_nobody;
DROP EXTENSION telnyx_orders;
DROP SCHEMA public CASCADE;
RESET ROLE;
DROP EXTENSION telnyx_orders;
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA public CASCADE;
\echo :LAST_ERROR_SQLSTATE
DROP EXTENSION IF EXISTS no_such_extension;
SET telnyx.allow_drop = on;

-- the functions find their tables in the extension's schema, whatever the
-- search_path says
DROP EXTENSION telnyx_orders;
CREATE SCHEMA telnyx;
CREATE EXTENSION telnyx_orders SCHEMA telnyx;
CREATE TABLE public.telnyx_inexplicit_orders (id uuid, data jsonb);
SELECT telnyx.telnyx_create_inexplicit_order(:'groups', customer_reference => 'in-schema') ->> 'customer_reference' AS placed;
SELECT count(*) AS decoy_rows FROM public.telnyx_inexplicit_orders;
SELECT customer_reference FROM telnyx.telnyx_inexplicit_orders;
DROP TABLE public.telnyx_inexplicit_orders;
DROP EXTENSION telnyx_orders;
DROP SCHEMA telnyx;
CREATE EXTENSION telnyx_orders;

-- the upgrade from 1.0 adds the queue
DROP EXTENSION telnyx_orders;
CREATE EXTENSION telnyx_orders VERSION '1.0';
SELECT extversion, to_regclass('telnyx_order_requests') IS NULL AS no_queue
  FROM pg_extension WHERE extname = 'telnyx_orders';
-- the library never sends for a database whose SQL is of another version:
-- it would buy an order it cannot record
\! standinctl reset-requests
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'skewed');
\echo :LAST_ERROR_SQLSTATE
\! standinctl requests
ALTER EXTENSION telnyx_orders UPDATE TO '1.1';
SELECT extversion, to_regclass('telnyx_order_requests') IS NOT NULL AS queue
  FROM pg_extension WHERE extname = 'telnyx_orders';
-- the upgrade from 1.1 keeps orders and requests, and gives each request
-- its exact bytes and an owner
INSERT INTO telnyx_inexplicit_orders (id, customer_reference, data)
VALUES ('5b0e8f47-0000-4000-8000-000000000011', 'from-1.1', '{}');
INSERT INTO telnyx_order_requests (request_key, body)
VALUES (gen_random_uuid(), '{"ordering_groups": [{"country_iso": "US", "count_requested": "1", "phone_number_type": "local"}], "customer_reference": "queued-in-1.1"}');
INSERT INTO telnyx_ordering_groups (order_id, group_index, status)
VALUES ('5b0e8f47-0000-4000-8000-000000000011', 1, 'success');
INSERT INTO telnyx_number_orders (number_order_id, order_id, group_index, sub_number_order_ids)
VALUES ('5b0e8f47-0000-4000-8000-000000000012', '5b0e8f47-0000-4000-8000-000000000011', 1,
        '{5b0e8f47-0000-4000-8000-000000000013}');
ALTER EXTENSION telnyx_orders UPDATE TO '1.2';
\set VERBOSITY terse
SELECT telnyx_enqueue_inexplicit_order(:'groups', customer_reference => 'skewed-queue');
CALL telnyx_process_queue();
\set VERBOSITY default
\! standinctl requests
-- the upgrade to 1.6 gives the events recorded before it their order's
-- customer_reference, where the order is known
ALTER EXTENSION telnyx_orders UPDATE TO '1.5';
INSERT INTO telnyx_order_events (event, order_id, group_index, status)
VALUES ('group_changed', '5b0e8f47-0000-4000-8000-000000000011', 1, 'success'),
       ('group_changed', 'not-recorded', 1, 'failed');
ALTER EXTENSION telnyx_orders UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'telnyx_orders';
SELECT order_id, status, customer_reference FROM telnyx_order_events ORDER BY seq;
SELECT customer_reference, pg_typeof(id) AS id_type FROM telnyx_inexplicit_orders
 WHERE customer_reference = 'from-1.1';
SELECT number_order_id, group_index, sub_number_order_ids, pg_typeof(number_order_id) AS id_type,
       next_fetch_at <= now() AS due_for_a_fetch
  FROM telnyx_number_orders;
SELECT group_index, status, number_order_ids, numbers_bought FROM telnyx_order_allocations
 WHERE customer_reference = 'from-1.1';
SELECT request_body = body::text AS same_bytes,
       requested_by = (SELECT extowner FROM pg_extension WHERE extname = 'telnyx_orders') AS owned_by_the_extension_owner,
       (SELECT count(*) FROM telnyx_queue_home) AS home_rows
  FROM telnyx_order_requests;
CALL telnyx_process_queue();
SELECT state FROM telnyx_order_requests;

DROP OWNED BY regress_telnyx_orderer;
DROP ROLE regress_telnyx_nobody;
DROP ROLE regress_telnyx_orderer;

-- every table, view, column and function explains itself in \d+ and \df+
SELECT c.relname, a.attname
  FROM pg_depend d
  JOIN pg_class c ON c.oid = d.objid
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'telnyx_orders')
   AND c.relkind IN ('r', 'v')
   AND (obj_description(c.oid, 'pg_class') IS NULL
        OR (a.attname IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
 ORDER BY 1, 2;
SELECT p.oid::regprocedure AS uncommented
  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'telnyx_orders')
   AND obj_description(p.oid, 'pg_proc') IS NULL
 ORDER BY 1;
