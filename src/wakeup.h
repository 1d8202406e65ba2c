/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *	  Waking a database's worker when a transaction that enqueued commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_WAKEUP_H
#define TELNYX_WAKEUP_H

#include "datatype/timestamp.h"

/* Workers the launcher keeps at most (databases in telnyx.database). */
#define WAKEUP_MAX_WORKERS 16

/* The longest reason a worker gives for waiting (with what to do). */
#define WAKEUP_REASON_LEN 256

/* What a worker shows of itself (telnyx_worker_status()). */
typedef struct WakeupWorker
{
	Oid			dboid;
	int			pid;
	TimestampTz started_at;
	char		paused[WAKEUP_REASON_LEN];	/* why it waits, or "" */
	TimestampTz rate_limited_until; /* 0 if not */
	int64		sent;			/* orders created since it started */
	int64		rate_limited;	/* 429 answers it got since it started */
	TimestampTz last_sent_at;
	TimestampTz last_rate_limited_at;
} WakeupWorker;

extern void wakeup_init(void);
extern uint32 wakeup_register_launcher(void);
extern bool wakeup_take_restart_request(void);
extern bool wakeup_request_restart(void);
extern bool wakeup_register_worker(uint32 generation);
extern bool wakeup_worker_current(void);
extern void wakeup_report(const char *paused, TimestampTz rate_limited_until,
						  int sent);
extern int	wakeup_workers(WakeupWorker *out, int max);
extern void wakeup_note_rate_limited(void);
extern void wakeup_at_commit(void);
extern void wakeup_now(Oid dboid);
extern void wakeup_note_order(const char *order_id);
extern bool wakeup_order_elsewhere(const char *order_id);
extern bool wakeup_database_wanted(void);

#endif							/* TELNYX_WAKEUP_H */
