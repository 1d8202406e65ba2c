/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  When an order, or a number order, is fetched again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_SCHEDULE_H
#define TELNYX_SCHEDULE_H

#include "datatype/timestamp.h"

#include "api.h"

extern void schedule_init(void);
extern TimestampTz schedule_order(const TelnyxOrder *order);
extern TimestampTz schedule_number_order(const TelnyxNumberOrder *no);
extern TimestampTz schedule_next(bool open, const OptTimestamp *created_at);

#endif							/* TELNYX_SCHEDULE_H */
