/* telnyx_orders--1.5--1.6.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.6'" to load this file. \quit

-- ---------------------------------------------------------------------
-- Messages: why the worker does not send, TLS, the database served
-- ---------------------------------------------------------------------

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

-- ---------------------------------------------------------------------
-- Results a person can read; input Telnyx accepts
-- ---------------------------------------------------------------------

-- ---------------------------------------------------------------------
-- Many databases, one account; progress; retention
-- ---------------------------------------------------------------------

/*
 * A fetch that failed is tried again with the requests' backoff, not when
 * its claim would have ended: the failures in a row, since the last
 * answer recorded.
 */
ALTER TABLE @extschema@.telnyx_inexplicit_orders
	ADD COLUMN fetch_failures integer NOT NULL DEFAULT 0;
ALTER TABLE @extschema@.telnyx_number_orders
	ADD COLUMN fetch_failures integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN @extschema@.telnyx_inexplicit_orders.fetch_failures IS 'Refreshes of the order that failed in a row since its last answer was recorded.';
COMMENT ON COLUMN @extschema@.telnyx_number_orders.fetch_failures IS 'Fetches of the number order that failed in a row since its last answer was recorded.';

/*
 * Each synchronous call, recorded in a transaction of its own before it
 * is sent: an order bought by a call whose transaction rolled back is
 * still this database's, and its sync finds it by the call.
 */
CREATE TABLE @extschema@.telnyx_order_calls (
	request_key			uuid PRIMARY KEY,
	customer_reference	text,
	body				jsonb NOT NULL,
	sent_at				timestamptz NOT NULL DEFAULT now()
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
COMMENT ON TABLE @extschema@.telnyx_order_calls IS 'Synchronous calls that sent an order, each recorded before it was sent, whatever became of its transaction: how a sync knows an order is this database''s.';

-- the purge of events and deliveries by telnyx.request_retention
CREATE INDEX telnyx_order_events_at_idx
	ON @extschema@.telnyx_order_events (at);
CREATE INDEX telnyx_webhook_deliveries_received_at_idx
	ON @extschema@.telnyx_webhook_deliveries (received_at);

COMMENT ON FUNCTION @extschema@.telnyx_sync_inexplicit_orders() IS 'Read the whole list of the account''s orders and record this database''s own (those it already records, those its requests name, those its calls sent, whatever became of the call''s transaction; every order with telnyx.sync_scope = ''account''). Returns how many orders it recorded or updated, not how many it read.';
