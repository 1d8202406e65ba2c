/*-------------------------------------------------------------------------
 *
 * budget.h
 *	  The account's request budget, shared by every process of the cluster.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_BUDGET_H
#define TELNYX_BUDGET_H

extern void budget_init(void);
extern int	budget_take(int want, long *wait_ms);
extern void budget_back_off(double ms);

#endif							/* TELNYX_BUDGET_H */
