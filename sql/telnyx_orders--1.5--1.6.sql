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
