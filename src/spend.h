/*-------------------------------------------------------------------------
 *
 * spend.h
 *	  The spend guard: limits, holds, the per-transaction breaker and the
 *	  dry run.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_SPEND_H
#define TELNYX_SPEND_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* The most bytes of a reason a request is held (or a call refused). */
#define SPEND_REASON_LEN 256

/* How an enqueue is to be written (spend_enqueue_mark). */
typedef struct SpendMark
{
	bool		dry_run;		/* write it as "dry_run": never sent */
	int64		held_batch;		/* not 0: the breaker holds it, with ... */
	char	   *held_reason;	/* ... this reason */
	bool		mark_earlier;	/* the breaker trips now: mark earlier_ids
								 * (int64 *, queued before by this
								 * transaction) with the same batch */
	List	   *earlier_ids;
} SpendMark;

/* The guard of a claim's first sends (spend_guard_begin). */
typedef struct SpendGuard SpendGuard;

extern bool telnyx_dry_run;

extern void spend_init(void);
extern int64 spend_numbers(Jsonb *body);
extern void spend_enqueue_mark(SpendMark *mark);
extern void spend_enqueued(int64 id);
extern SpendGuard *spend_guard_begin(bool first_sends);
extern bool spend_guard_take(SpendGuard *g, Oid role, int64 numbers,
							 TimestampTz at, bool released, TimestampTz *until,
							 char *reason);
extern void spend_guard_end(SpendGuard *g);
extern void spend_give_back(Oid role, TimestampTz at, int64 numbers);
extern bool spend_call_allowed(Oid role, int64 numbers, char *reason);

#endif							/* TELNYX_SPEND_H */
