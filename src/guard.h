/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  The guard against dropping the record of orders.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_GUARD_H
#define TELNYX_GUARD_H

extern bool telnyx_allow_drop;

extern void guard_init(void);

#endif							/* TELNYX_GUARD_H */
