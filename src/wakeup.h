/*-------------------------------------------------------------------------
 *
 * wakeup.h
 *	  Waking a database's sender when a transaction that enqueued commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_WAKEUP_H
#define TELNYX_WAKEUP_H

/* Senders the launcher keeps at most (databases in telnyx.database). */
#define WAKEUP_MAX_SENDERS 16

extern void wakeup_init(void);
extern void wakeup_register_sender(void);
extern void wakeup_at_commit(void);
extern void wakeup_now(Oid dboid);

#endif							/* TELNYX_WAKEUP_H */
