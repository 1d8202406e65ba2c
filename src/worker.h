/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background workers that send queued order requests.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_WORKER_H
#define TELNYX_WORKER_H

extern int	telnyx_sync_interval_s;
extern int	telnyx_worker_naptime_ms;
extern int	telnyx_worker_concurrency;

extern void worker_init(void);
extern int	worker_process_queue(int max_requests);

#endif							/* TELNYX_WORKER_H */
