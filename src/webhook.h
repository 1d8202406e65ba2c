/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Signed webhook deliveries from Telnyx, into the same store.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_WEBHOOK_H
#define TELNYX_WEBHOOK_H

#include "utils/jsonb.h"

extern void webhook_init(void);
extern Jsonb *webhook_apply(const char *body, const char *signature,
							const char *timestamp);

#endif							/* TELNYX_WEBHOOK_H */
