/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background workers that send queued order requests.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_WORKER_H
#define TELNYX_WORKER_H

extern void worker_init(void);
extern int	worker_process_queue(int max_requests);

#endif							/* TELNYX_WORKER_H */
