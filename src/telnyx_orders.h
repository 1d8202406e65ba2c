/*-------------------------------------------------------------------------
 *
 * telnyx_orders.h
 *	  Settings and error codes shared by every part of telnyx_orders.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_ORDERS_H
#define TELNYX_ORDERS_H

#include "utils/elog.h"

#define TELNYX_DEFAULT_BASE_URL "https://api.telnyx.com/v2"

/* Settings (telnyx.*), defined in telnyx_orders.c */
extern char *telnyx_api_base_url;
extern char *telnyx_ca_file;
extern int	telnyx_timeout_ms;
extern int	telnyx_connect_timeout_ms;
extern int	telnyx_max_retries;
extern int	telnyx_max_response_size;

/*
 * The longest telnyx.timeout and telnyx.connect_timeout: a sender's lease
 * (the timeout and a minute) assumes no request outlasts it.
 */
#define TELNYX_MAX_TIMEOUT_MS (10 * 60 * 1000)

#include "apikey.h"

/*
 * SQLSTATEs of our own, class "TX".  The README lists them; a caller can
 * trap one with "WHEN SQLSTATE 'TX429'".  Invalid input uses the standard
 * invalid_parameter_value (22023).
 */
#define ERRCODE_TELNYX_NO_API_KEY		MAKE_SQLSTATE('T','X','0','0','1')
#define ERRCODE_TELNYX_URL_NOT_ALLOWED	MAKE_SQLSTATE('T','X','0','0','2')
#define ERRCODE_TELNYX_AUTH				MAKE_SQLSTATE('T','X','4','0','1')
#define ERRCODE_TELNYX_NOT_FOUND		MAKE_SQLSTATE('T','X','4','0','4')
#define ERRCODE_TELNYX_TOO_LARGE		MAKE_SQLSTATE('T','X','4','1','3')
#define ERRCODE_TELNYX_REJECTED			MAKE_SQLSTATE('T','X','4','2','2')
#define ERRCODE_TELNYX_RATE_LIMITED		MAKE_SQLSTATE('T','X','4','2','9')
#define ERRCODE_TELNYX_SERVER_ERROR		MAKE_SQLSTATE('T','X','5','0','0')
#define ERRCODE_TELNYX_MALFORMED		MAKE_SQLSTATE('T','X','5','0','2')
#define ERRCODE_TELNYX_TRANSPORT		MAKE_SQLSTATE('T','X','5','0','3')
#define ERRCODE_TELNYX_UNKNOWN_OUTCOME	MAKE_SQLSTATE('T','X','5','0','4')

/* Largest page the list endpoint serves. */
#define TELNYX_MAX_PAGE_SIZE 250

/*
 * Longest connection_id, messaging_profile_id, customer_reference or
 * billing_group_id accepted in an order, in bytes.
 */
#define TELNYX_MAX_FIELD_LEN 1024

/* Largest order Telnyx accepts, over all ordering groups. */
#define TELNYX_MAX_COUNT_REQUESTED 10000

#endif							/* TELNYX_ORDERS_H */
