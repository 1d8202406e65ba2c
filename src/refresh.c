/*-------------------------------------------------------------------------
 *
 * refresh.c
 *	  Following orders to the numbers bought.
 *
 * An order is recorded as Telnyx first describes it, its groups usually
 * "pending".  Until every group has ended, the order is due to be fetched
 * again (schedule.c says when; store.c records it in next_refresh_at);
 * every number order an answer lists is linked to its group and due at
 * once, then again while it or one of its numbers is pending
 * (next_fetch_at).  A refresh pass claims what is due (refresh_claim, in a
 * transaction), fetches it with no transaction needed (refresh_fetch),
 * and records each answer, or each failure (refresh_record, in a
 * transaction).  The background worker and telnyx_refresh_orders() run
 * these same three steps, each in its own transactions; a webhook delivery
 * reaches the same store_number_order.
 *
 * What cannot be fetched is due again after the requests' backoff
 * (http_retry_delay_ms, or the wait Telnyx asked for), for the first
 * REFRESH_QUICK_RETRIES failures in a row; after that it stays claimed
 * until its lease ends.  A failure costs a delay, never the record.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "http.h"
#include "refresh.h"
#include "store.h"

/*
 * Failures in a row retried with the requests' backoff; later ones wait
 * for the claim's lease, so that what Telnyx keeps refusing is not asked
 * for every few seconds.
 */
#define REFRESH_QUICK_RETRIES 5

/*---- Function declarations ----*/

static List *refresh_items(List *items, List *ids, bool number_order,
						   MemoryContext mcxt);
static bool refresh_store(RefreshItem *item);
static void refresh_failed(RefreshItem *item);
static void refresh_report(const RefreshItem *item, int elevel, bool by_worker);

/*
 * refresh_claim
 *		Up to max orders, then number orders, due for a fetch, claimed
 *		(RefreshItem *, in mcxt).  Runs in the caller's transaction.
 */
List *
refresh_claim(int max, MemoryContext mcxt)
{
	/* claimed for as long as a fetch may take */
	int64		lease_ms = http_longest_call_ms();
	List	   *items;

	items = refresh_items(NIL, store_claim_refresh(max, lease_ms, mcxt), false, mcxt);
	if (list_length(items) < max)
		items = refresh_items(items,
							  store_claim_number_orders(max - list_length(items),
														lease_ms, mcxt),
							  true, mcxt);
	return items;
}

/* items, and an item (in mcxt) for each of the ids claimed. */
static List *
refresh_items(List *items, List *ids, bool number_order, MemoryContext mcxt)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	ListCell   *lc;

	foreach(lc, ids)
	{
		RefreshItem *item = palloc0(sizeof(RefreshItem));

		item->number_order = number_order;
		item->id = (char *) lfirst(lc);
		items = lappend(items, item);
	}
	MemoryContextSwitchTo(old);
	return items;
}

/*
 * refresh_fetch
 *		Ask Telnyx for item, with no transaction needed; the answer goes in
 *		item->result, allocated in the current memory context.  If it could
 *		not be fetched, that is said at elevel (by_worker: in the
 *		background worker's words, for its log).
 */
void
refresh_fetch(RefreshItem *item, int elevel, bool by_worker)
{
	if (item->number_order)
		item->result = api_get_number_order(item->id);
	else
		item->result = api_get_inexplicit_order(item->id);
	if (item->result->class != TELNYX_OK)
		refresh_report(item, elevel, by_worker);
}

/*
 * refresh_record
 *		Record what refresh_fetch got for item, in the caller's
 *		transaction: its answer (true), or its failure (false).  Nothing is
 *		written while another transaction writes its rows: it stays
 *		claimed, and is fetched again when its claim ends.  The caller ends
 *		its subtransaction, if any, either way.
 */
bool
refresh_record(RefreshItem *item)
{
	if (item->result->class == TELNYX_OK)
		return refresh_store(item);
	refresh_failed(item);
	return false;
}

/*
 * Record a fetched item (its result is TELNYX_OK); false, recording
 * nothing, if another transaction is writing its rows.
 */
static bool
refresh_store(RefreshItem *item)
{
	Assert(item->result->class == TELNYX_OK);
	if (!store_lock(item->id, item->number_order))
		return false;
	if (item->number_order)
		(void) store_number_order(item->result->number_order, NULL);
	else
		store_order(item->result->order, false, NULL, NULL);
	return true;
}

/*
 * A fetch of item failed (its result is not TELNYX_OK): count it, and make
 * item due again after the requests' backoff, unless it failed too often
 * in a row.  Nothing is written while another transaction writes its rows.
 */
static void
refresh_failed(RefreshItem *item)
{
	int			failures;
	double		delay_ms;

	Assert(item->result->class != TELNYX_OK);
	if (!store_lock(item->id, item->number_order))
		return;
	failures = store_fetch_failed(item->id, item->number_order);
	if (failures < 1 || failures > REFRESH_QUICK_RETRIES)
		return;
	delay_ms = http_retry_delay_ms(failures - 1, item->result->wait_ms);
	store_fetch_again_at(item->id, item->number_order,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 (int64) delay_ms));
}

/*
 * Say at elevel that item could not be fetched, and why; by_worker: said
 * by the background worker, in its log.
 */
static void
refresh_report(const RefreshItem *item, int elevel, bool by_worker)
{
	const char *why = item->result->why ? item->result->why : "";

	if (by_worker && item->number_order)
		ereport(elevel,
				(errmsg("telnyx_orders worker could not refresh number order \"%s\"", item->id),
				 errdetail_internal("%s", why)));
	else if (by_worker)
		ereport(elevel,
				(errmsg("telnyx_orders worker could not refresh inexplicit number order \"%s\"", item->id),
				 errdetail_internal("%s", why)));
	else if (item->number_order)
		ereport(elevel,
				(errmsg("could not refresh number order \"%s\"", item->id),
				 errdetail_internal("%s", why)));
	else
		ereport(elevel,
				(errmsg("could not refresh inexplicit number order \"%s\"", item->id),
				 errdetail_internal("%s", why)));
}
