/* telnyx_orders--1.5--1.6.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.6'" to load this file. \quit

-- ---------------------------------------------------------------------
-- Messages: why the worker does not send, TLS, the database served
-- ---------------------------------------------------------------------

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

-- the purge of events and deliveries by telnyx.request_retention
CREATE INDEX telnyx_order_events_at_idx
	ON @extschema@.telnyx_order_events (at);
CREATE INDEX telnyx_webhook_deliveries_received_at_idx
	ON @extschema@.telnyx_webhook_deliveries (received_at);
