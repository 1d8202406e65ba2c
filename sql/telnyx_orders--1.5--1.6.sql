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
