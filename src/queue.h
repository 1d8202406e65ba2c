/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The queue of order requests: enqueue, claim, state changes and
 *	  reconciliation of unknown outcomes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_QUEUE_H
#define TELNYX_QUEUE_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "api.h"
#include "validate.h"

/* A request claimed from the queue. */
typedef struct QueueRequest
{
	int64		id;
	char	   *request_key;	/* uuid text: the Idempotency-Key */
	Jsonb	   *body;			/* the exact body to send */
	int			attempts;		/* including this one */
	TimestampTz created_at;		/* when it was enqueued */
	List	   *candidates;		/* while reconciling: TelnyxOrder * that
								 * match */
	bool		uncertain;		/* while reconciling: an order that might be
								 * this one cannot be told apart */
} QueueRequest;

/* What a recorded outcome asks of the sender. */
typedef enum QueueOutcome
{
	QUEUE_DONE,					/* sent or failed for good */
	QUEUE_RETRY,				/* will be sent again later */
	QUEUE_RATE_LIMITED,			/* slow down: wait before sending anything */
	QUEUE_AUTH,					/* the key is refused: stop until reload */
	QUEUE_UNKNOWN				/* to be reconciled */
} QueueOutcome;

extern int	telnyx_reconcile_delay_ms;

/* Called in the caller's transaction. */
extern int64 queue_enqueue(Jsonb *ordering_groups, OrderFields *fields);

/* Each of these runs in a transaction the caller opened. */
extern bool queue_ready(void);
extern List *queue_claim(int max, MemoryContext mcxt);
extern QueueOutcome queue_record(QueueRequest *req, TelnyxResult *result,
								 double *wait_ms);
extern int	queue_recover_stale(void);
extern int	queue_release_own(void);
extern List *queue_claim_unknown(int max, MemoryContext mcxt);
extern int	queue_resolve_unknown(List *requests);
extern void queue_unknown_retry_later(List *requests, TelnyxResult *result);
extern double queue_next_due_ms(void);

/* Runs outside any transaction: looks the requests up at Telnyx. */
extern TelnyxResult *queue_find_orders(List *requests);

#endif							/* TELNYX_QUEUE_H */
