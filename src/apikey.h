/*-------------------------------------------------------------------------
 *
 * apikey.h
 *	  The Telnyx API key: where it may come from, where it may be sent, and
 *	  keeping it out of every message.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_APIKEY_H
#define TELNYX_APIKEY_H

#include "utils/guc.h"

/*
 * Why no key may be sent: the error the session raises and the background
 * worker logs, and a short reason with what to do, for
 * telnyx_queue_status.  Strings are palloc'd.
 */
typedef struct ApiKeyProblem
{
	int			sqlerrcode;		/* 0 when there is none */
	bool		none;			/* no key is configured at all */
	char	   *reason;
	char	   *message;
	char	   *detail;			/* or NULL */
	char	   *hint;
} ApiKeyProblem;

extern void apikey_init(void);
extern bool apikey_check_base_url(void **extra, GucSource source);
extern void apikey_assign_base_url(void *extra);
extern const char *telnyx_api_key_value(void);
extern const char *telnyx_api_key_get(ApiKeyProblem *problem);
extern void telnyx_api_key_report(const ApiKeyProblem *problem, int elevel);
extern const char *telnyx_api_key_refused_hint(void);
extern uint64 telnyx_api_key_serial(void);
extern char *telnyx_api_key_in_settings(void);

#endif							/* TELNYX_APIKEY_H */
