/*-------------------------------------------------------------------------
 *
 * store.h
 *	  Reads and writes of the extension's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_STORE_H
#define TELNYX_STORE_H

#include "api.h"

extern void store_order(const TelnyxOrder *order);
extern char *store_schema_name(void);

#endif							/* TELNYX_STORE_H */
