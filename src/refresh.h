/*-------------------------------------------------------------------------
 *
 * refresh.h
 *	  Following orders to the numbers bought.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_REFRESH_H
#define TELNYX_REFRESH_H

#include "nodes/pg_list.h"

#include "api.h"

/* Orders, and number orders, fetched at most per batch. */
#define REFRESH_BATCH 16

/* One thing due to be fetched again, and what Telnyx said of it. */
typedef struct RefreshItem
{
	bool		number_order;	/* a number order, else an order */
	char	   *id;
	TelnyxResult *result;		/* after refresh_fetch */
} RefreshItem;

extern List *refresh_claim(int max, MemoryContext mcxt);
extern void refresh_fetch(RefreshItem *item, int elevel, bool by_worker);
extern bool refresh_record(RefreshItem *item);

#endif							/* TELNYX_REFRESH_H */
