/*-------------------------------------------------------------------------
 *
 * reconcile.h
 *	  Finding the order of a request whose outcome is unknown.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_RECONCILE_H
#define TELNYX_RECONCILE_H

#include "nodes/pg_list.h"

#include "api.h"

extern TelnyxResult *reconcile_find(List *requests, MemoryContext keepcxt);

#endif							/* TELNYX_RECONCILE_H */
