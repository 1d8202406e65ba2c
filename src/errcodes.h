/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  The SQLSTATEs of telnyx_orders.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_ERRCODES_H
#define TELNYX_ERRCODES_H

#include "utils/elog.h"

/*
 * SQLSTATEs of our own, class "TX".  docs/reference.md lists them; a caller can
 * trap one with "WHEN SQLSTATE 'TX429'".  Invalid input uses the standard
 * invalid_parameter_value (22023).
 */
#define ERRCODE_TELNYX_NO_API_KEY		MAKE_SQLSTATE('T','X','0','0','1')
#define ERRCODE_TELNYX_URL_NOT_ALLOWED	MAKE_SQLSTATE('T','X','0','0','2')
#define ERRCODE_TELNYX_AUTH				MAKE_SQLSTATE('T','X','4','0','1')
#define ERRCODE_TELNYX_SPEND_LIMIT		MAKE_SQLSTATE('T','X','4','0','2')
#define ERRCODE_TELNYX_NOT_FOUND		MAKE_SQLSTATE('T','X','4','0','4')
#define ERRCODE_TELNYX_TOO_LARGE		MAKE_SQLSTATE('T','X','4','1','3')
#define ERRCODE_TELNYX_REJECTED			MAKE_SQLSTATE('T','X','4','2','2')
#define ERRCODE_TELNYX_RATE_LIMITED		MAKE_SQLSTATE('T','X','4','2','9')
#define ERRCODE_TELNYX_SERVER_ERROR		MAKE_SQLSTATE('T','X','5','0','0')
#define ERRCODE_TELNYX_MALFORMED		MAKE_SQLSTATE('T','X','5','0','2')
#define ERRCODE_TELNYX_TRANSPORT		MAKE_SQLSTATE('T','X','5','0','3')
#define ERRCODE_TELNYX_UNKNOWN_OUTCOME	MAKE_SQLSTATE('T','X','5','0','4')
#define ERRCODE_TELNYX_LIST_UNENDED		MAKE_SQLSTATE('T','X','5','0','8')

/* Webhook deliveries (telnyx_apply_webhook) */
#define ERRCODE_TELNYX_WEBHOOK_NO_KEY		MAKE_SQLSTATE('T','X','6','0','0')
#define ERRCODE_TELNYX_WEBHOOK_SIGNATURE	MAKE_SQLSTATE('T','X','6','0','1')
#define ERRCODE_TELNYX_WEBHOOK_EXPIRED		MAKE_SQLSTATE('T','X','6','0','2')
#define ERRCODE_TELNYX_WEBHOOK_MALFORMED	MAKE_SQLSTATE('T','X','6','0','3')

#endif							/* TELNYX_ERRCODES_H */
