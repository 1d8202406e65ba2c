--
-- The connection: verified TLS, plain http only to loopback, one reused
-- connection per session, and requests that cancel and statement_timeout
-- interrupt.  Messages from curl name ports, so they are shown terse.
--
-- the extension, whether this suite runs alone or after the others
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS telnyx_orders;
RESET client_min_messages;
\! standinctl reset
DELETE FROM telnyx_inexplicit_orders;
\set https_url `printf %s "$TELNYX_TEST_HTTPS_URL"`
\set http_url `printf %s "$TELNYX_TEST_HTTP_URL"`
\set localhost_url `printf %s "$TELNYX_TEST_LOCALHOST_URL"`
\set closed_url `printf %s "$TELNYX_TEST_CLOSED_URL"`
\set other_ca `printf %s "$TELNYX_TEST_OTHER_CA"`
\set key_file `printf %s "$TELNYX_TEST_KEY_FILE"`
\set ca `printf %s "$TELNYX_TEST_CA"`
\set wrong_name_url `printf %s "$TELNYX_TEST_WRONG_NAME_URL"`
\set groups '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]'

-- verified TLS, with the CA that signed the stand-in's certificate
SELECT current_setting('telnyx.api_base_url') = :'https_url' AS over_https;
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'over-tls') ->> 'customer_reference' AS placed;
-- the certificate names localhost too (a base URL set in the session is
-- sent only a key file set in the session)
SET telnyx.api_key_file = :'key_file';
SET telnyx.api_base_url = :'localhost_url';
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' AS listed;

-- a certificate the configured CAs do not vouch for: nothing is sent
\set VERBOSITY terse
-- (each failure once: retries are errors.sql's)
SET telnyx.max_retries = 0;
\! standinctl reset-requests
SET telnyx.ca_file = :'other_ca';
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'untrusted');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_list_inexplicit_orders();
\echo :LAST_ERROR_SQLSTATE
-- nor does the system's bundle
SET telnyx.ca_file = '';
SELECT telnyx_get_inexplicit_order('8b4cbc62-4d87-4a3e-b0a4-8b4a33d33c7a');
\echo :LAST_ERROR_SQLSTATE
RESET telnyx.ca_file;
\! standinctl requests
\! standinctl count

-- nobody listening: could not reach Telnyx, and the create was not sent
SET telnyx.api_base_url = :'closed_url';
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'refused');
\echo :LAST_ERROR_SQLSTATE

-- each fault of the transport says what it was and what to do: the
-- SQLSTATE, the detail's second line (ours; curl's own text, which names
-- ports, follows it) and the hint, with the CA file's path left out
CREATE FUNCTION pg_temp.fault(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
	said text;
BEGIN
	EXECUTE call;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	said := SQLSTATE || ': ' || split_part(detail, E'\n', 2) || E'\nHINT: ' || hint;
	IF current_setting('telnyx.ca_file') <> '' THEN
		said := replace(said, current_setting('telnyx.ca_file'), '<ca_file>');
	END IF;
	RETURN said;
END
$$;
SELECT pg_temp.fault($$SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]', customer_reference => 'refused')$$) AS refused;
SET telnyx.api_base_url = 'https://telnyx-orders-test.invalid/v2';
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS no_such_host;
SET telnyx.api_base_url = :'https_url';
SET telnyx.ca_file = :'other_ca';
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS untrusted;
SET telnyx.ca_file = '';
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS untrusted_by_the_system;
RESET telnyx.ca_file;
SET telnyx.api_base_url = :'wrong_name_url';
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS name_mismatch;
-- a CA file that went away after it was set
SET telnyx.api_base_url = :'https_url';
SELECT :'ca' || '.gone' AS gone_ca \gset
\! cp "$TELNYX_TEST_CA" "$TELNYX_TEST_CA.gone"
SET telnyx.ca_file = :'gone_ca';
\! rm "$TELNYX_TEST_CA.gone"
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS ca_file_gone;
RESET telnyx.ca_file;
-- a timeout
\! standinctl fault '{"match": "list", "action": "delay", "seconds": 5}'
SET telnyx.timeout = '300ms';
SELECT pg_temp.fault('SELECT telnyx_list_inexplicit_orders()') AS timed_out;
RESET telnyx.timeout;
RESET telnyx.max_retries;
-- a CA file the server cannot read is refused when it is set, and the
-- value before is kept
SET telnyx.ca_file = '/nonexistent/telnyx-ca.crt';
SET telnyx.ca_file = '/';
SELECT current_setting('telnyx.ca_file') = :'ca' AS ca_file_kept;
SET telnyx.api_base_url = :'closed_url';
\set VERBOSITY default

-- plain http is allowed to a loopback address
SET telnyx.api_base_url = :'http_url';
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'over-http') ->> 'customer_reference' AS placed;
RESET telnyx.api_base_url;
RESET telnyx.api_key_file;
\! standinctl count

-- consecutive calls in a session share one connection
\c
\! standinctl reset-requests
SELECT telnyx_list_inexplicit_orders(1, 1) IS NOT NULL AS listed;
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'reuse') IS NOT NULL AS placed;
SELECT telnyx_list_inexplicit_orders(1, 1) IS NOT NULL AS listed;
SELECT telnyx_sync_inexplicit_orders() AS synced;
\! standinctl requests
\! standinctl connections

-- a reused connection that closes with no answer: curl would send the
-- create again on a new one, on its own; it is refused, and the outcome
-- is unknown (the stand-in saw the request once, on the reused connection,
-- and no new connection carried it)
\! standinctl reset-requests
SELECT telnyx_list_inexplicit_orders(1, 1) IS NOT NULL AS listed;
\! standinctl fault '{"match": "create", "action": "close_before"}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'reused-dead');
\echo :LAST_ERROR_SQLSTATE
\! standinctl requests create
\! standinctl connections
-- a list (idempotent) may go out again on a new connection
\! standinctl fault '{"match": "list", "action": "close_before"}'
SELECT telnyx_list_inexplicit_orders(1, 1) IS NOT NULL AS listed;
\! standinctl requests list

-- statement_timeout (and cancel) stop a request in flight
\! standinctl fault '{"match": "list", "action": "delay", "seconds": 30}'
SET statement_timeout = '500ms';
SELECT telnyx_list_inexplicit_orders();
\echo :LAST_ERROR_SQLSTATE
-- a create stopped in flight says that it may have been processed
\! standinctl fault '{"match": "create", "action": "delay", "seconds": 30}'
SELECT telnyx_create_inexplicit_order(:'groups', customer_reference => 'stopped');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- the session goes on, on a new connection
SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' AS listed;
