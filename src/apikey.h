/*-------------------------------------------------------------------------
 *
 * apikey.h
 *	  The Telnyx API key: where it may come from, and keeping it out of
 *	  every message.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_APIKEY_H
#define TELNYX_APIKEY_H

extern void apikey_init(void);
extern const char *telnyx_api_key_value(void);

#endif							/* TELNYX_APIKEY_H */
