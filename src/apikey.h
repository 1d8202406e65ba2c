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

extern void apikey_init(void);
extern bool apikey_check_base_url(void **extra, GucSource source);
extern void apikey_assign_base_url(void *extra);
extern const char *telnyx_api_key_value(void);
extern uint64 telnyx_api_key_serial(void);
extern char *telnyx_api_key_in_settings(void);

#endif							/* TELNYX_APIKEY_H */
