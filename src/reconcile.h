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
#include "queue.h"

extern void reconcile_init(void);
extern TelnyxResult *reconcile_find(List *requests, MemoryContext keepcxt);
extern List *reconcile_own_orders(List *orders, List **keys);
extern void reconcile_resolve(QueueRequest *req);

#endif							/* TELNYX_RECONCILE_H */
