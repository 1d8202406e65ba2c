/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  When an order, or a number order, is fetched again: the refresh
 *	  schedule.
 *
 * An order is followed until every one of its groups has ended; a number
 * order while it, or one of its numbers, is pending.  Whatever is still
 * open is fetched again soon after it was created, then at half its age,
 * at most telnyx.refresh_interval_max apart: a new order is looked at
 * often, an old one rarely.  store.c records the time this gives with
 * every answer it records; refresh.c claims what is due.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/timestamp.h"

#include "schedule.h"

/* The first refresh comes this long after an order is recorded. */
#define SCHEDULE_FIRST_MS 5000

/*---- GUC variables ----*/

static int	telnyx_refresh_interval_max_s = 600;

/*
 * schedule_init
 *		From _PG_init: the schedule's setting.
 */
void
schedule_init(void)
{
	DefineCustomIntVariable("telnyx.refresh_interval_max",
							"Longest time between two refreshes of an order still being filled.",
							"An order is fetched again soon after it is created, then at half its age, at most this often, until every group has ended.",
							&telnyx_refresh_interval_max_s,
							600, 1, 7 * 24 * 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * schedule_order
 *		When an order should next be fetched again: never (0) when every
 *		group has ended (success, partial_success, failed, or a status we
 *		do not know of), else as schedule_next says.
 */
TimestampTz
schedule_order(const TelnyxOrder *order)
{
	bool		open = order->ngroups <= 0;
	ListCell   *lc;

	foreach(lc, order->groups)
	{
		TelnyxGroup *g = (TelnyxGroup *) lfirst(lc);

		if (g->status == NULL || strcmp(g->status, "pending") == 0 ||
			strcmp(g->status, "processing") == 0)
			open = true;
	}
	return schedule_next(open, &order->created_at);
}

/*
 * schedule_number_order
 *		When a number order should next be fetched again: while it, or one
 *		of its numbers, is pending (or it gives no status at all), as
 *		schedule_next says; else never (0).
 */
TimestampTz
schedule_number_order(const TelnyxNumberOrder *no)
{
	bool		open = no->status == NULL || strcmp(no->status, "pending") == 0;
	ListCell   *lc;

	foreach(lc, no->phone_numbers)
	{
		TelnyxPhoneNumber *pn = (TelnyxPhoneNumber *) lfirst(lc);

		if (pn->status != NULL && strcmp(pn->status, "pending") == 0)
			open = true;
	}
	return schedule_next(open, &no->created_at);
}

/*
 * schedule_next
 *		The next fetch of something still open (0 if it is not): soon after
 *		its creation, then at half its age, at most
 *		telnyx.refresh_interval_max from now.
 */
TimestampTz
schedule_next(bool open, const OptTimestamp *created_at)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz born = created_at->present ? Min(created_at->value, now) : now;
	int64		delay;

	if (!open)
		return 0;
	delay = (now - born) / 2;
	delay = Max(delay, (int64) SCHEDULE_FIRST_MS * 1000);
	delay = Min(delay, (int64) telnyx_refresh_interval_max_s * USECS_PER_SEC);
	return now + delay;
}
