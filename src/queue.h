/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The queue of order requests: enqueue, claim, state changes and the
 *	  outcome of reconciliation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_QUEUE_H
#define TELNYX_QUEUE_H

#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "api.h"
#include "validate.h"

/* A request claimed from the queue. */
typedef struct QueueRequest
{
	int64		id;
	char	   *request_key;	/* uuid text: the Idempotency-Key */
	Jsonb	   *body;			/* the body, as jsonb */
	char	   *request_body;	/* the exact bytes to send */
	int			attempts;		/* including this one */
	TimestampTz created_at;		/* when it was enqueued */
	TimestampTz first_sent_at;	/* when it was first claimed for sending */
	TimestampTz next_attempt_at;	/* when it was due */
	int64		claim_token;	/* the claim's fencing token: every outcome
								 * written names it */
	TimestampTz unknown_since;	/* when its outcome became unknown */
	int			lookups;		/* whole reads of the list that found no
								 * order of it since then */
	TimestampTz looked_at;		/* while reconciling: when the read of the
								 * list began */
	List	   *candidates;		/* while reconciling: Jsonb * of orders that
								 * may be this one's, in list order */
	bool		uncertain;		/* while reconciling: an order that might be
								 * this one cannot be told apart */
	Oid			requested_by;	/* the role that queued it */
	int64		held_batch;		/* not 0: the breaker marked it */
	Oid			released_by;	/* valid: released from a hold */
} QueueRequest;

/*
 * Where a sender's next claim starts in the claim index (next_attempt_at,
 * id): after the last row it claimed, so that a long drain does not walk
 * again over the rows it has claimed; at the start once that finds nothing.
 */
typedef struct QueueCursor
{
	TimestampTz at;
	int64		id;
} QueueCursor;

/* What a recorded outcome asks of the sender. */
typedef enum QueueOutcome
{
	QUEUE_DONE,					/* sent or failed for good */
	QUEUE_RETRY,				/* will be sent again later */
	QUEUE_RATE_LIMITED,			/* slow down: wait before sending anything */
	QUEUE_PAUSE,				/* a configuration fault (key refused, no
								 * such endpoint): stop until reload */
	QUEUE_UNKNOWN				/* to be reconciled */
} QueueOutcome;

/* Where the queue's database stands with respect to its home. */
typedef enum QueueHome
{
	QUEUE_HOME_HERE,			/* this cluster and database */
	QUEUE_HOME_ELSEWHERE		/* restored or cloned from elsewhere */
} QueueHome;

/* A sender's claim lasts this much longer than a request may take. */
#define QUEUE_LEASE_MARGIN_MS 60000

/* May an order be an unknown request's (queue_order_taken)? */
typedef enum QueueOrderTaken
{
	QUEUE_ORDER_FREE,			/* nothing recorded here says otherwise */
	QUEUE_ORDER_UNSURE,			/* it cannot be told */
	QUEUE_ORDER_TAKEN			/* another's, or known before the request */
} QueueOrderTaken;

/* The customer_reference of a request queued without one: prefix + key. */
#define QUEUE_REFERENCE_PREFIX "telnyx_orders:"

extern int	telnyx_request_retention_s;

extern void queue_init(void);

/* Called in the caller's transaction, as the caller. */
extern void queue_refuse_read_only(void);
extern char *queue_new_key(OrderFields *fields);
extern int64 queue_enqueue(Jsonb *body, const char *key, int64 reserved_id);
extern int64 queue_reserve_id(void);
extern bool queue_cancel(int64 id);
extern bool queue_resume(void);

/* Each of these runs in a transaction the caller opened. */
extern bool queue_ready(void);
extern QueueHome queue_home(void);
extern List *queue_claim(int max, int64 lease_ms, QueueCursor *after,
						 MemoryContext mcxt, int *claimed);
extern void queue_cursor_reset(QueueCursor *after);
extern QueueOutcome queue_record(QueueRequest *req, TelnyxResult *result,
								 double retry_delay_ms, double *wait_ms);
extern void queue_record_created(List *reqs, List *results);
extern void queue_record_unstored(QueueRequest *req, TelnyxResult *result,
								  const char *why);
extern int	queue_recover_stale(void);
extern int	queue_purge(TimestampTz cutoff, int max);
extern List *queue_orders_named(List *ids);
extern void queue_at_stake(int64 *orders, int64 *unfinished);
extern int	queue_release_own(void);
extern void queue_unclaim(QueueRequest **reqs, int n);
extern int	queue_extend_lease(int64 *ids, int64 *tokens, bool *held, int n,
							   int64 lease_ms);
extern List *queue_claim_unknown(int max, MemoryContext mcxt);
extern QueueOrderTaken queue_order_taken(const char *order_id,
										 const QueueRequest *req);
extern void queue_reconciled(QueueRequest *req, TelnyxOrder *found,
							 const char *to, const char *reason,
							 double delay_ms);
extern void queue_unknown_retry_later(QueueRequest *req, double retry_delay_ms);
extern double queue_next_due_ms(void);

/* The spend guard's (spend.c) writes of requests. */
extern int	queue_unhold_due(void);
extern int64 queue_release_held(ArrayType *ids, Oid requested_by,
								int64 held_batch, bool all, bool cancel);

/* The queue's index tables and the trigger that keeps them. */
extern void queue_index_changed(TriggerData *trigdata);
extern const char *queue_index_off(void);
extern bool queue_index_repair(void);

#endif							/* TELNYX_QUEUE_H */
