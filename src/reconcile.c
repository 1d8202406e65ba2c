/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *	  Finding the order of a request whose outcome is unknown.
 *
 * A request is "unknown" when it may have reached Telnyx without an answer
 * we can trust.  Before anything is sent again, the whole list of orders
 * is read (api_each_page: page by page, memory bounded by one page) and
 * every order is compared with each request:
 *
 * - Every queued body carries a customer_reference (one derived from the
 *   request's key when the caller gave none), so an order without one, or
 *   with another, is not this request's.
 * - With the same reference, an order is a candidate when it was created
 *   in the request's window: no earlier than the request was first sent,
 *   less QUEUE_CLOCK_SKEW_MS for the difference between our clock and
 *   Telnyx's.  With a reference the caller gave, the groups must match too
 *   (the same reference may be reused for other orders).
 * - An order that cannot be parsed (no usable id), or whose date cannot be
 *   read, might be this request's: it makes the request uncertain, never
 *   absent.
 *
 * queue_resolve_unknown then decides, in a transaction: the first
 * candidate not already taken is the order; no candidate and nothing
 * uncertain after the whole list was read proves the request absent.  A
 * list not read to its end proves nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "queue.h"
#include "reconcile.h"

/*
 * Our clock and Telnyx's may differ by this much: an order created this
 * long before a request was first sent may still be its order.
 */
#define QUEUE_CLOCK_SKEW_MS (5 * 60 * 1000)

typedef struct ReconcileState
{
	List	   *requests;		/* QueueRequest * */
	MemoryContext keepcxt;		/* where candidates are copied */
} ReconcileState;

/*---- Function declarations ----*/

static void reconcile_page(List *orders, List *unparsed, void *arg);
static const char *request_reference(QueueRequest *req);
static const char *raw_reference(const JsonbValue *raw, bool *readable);

/*
 * reconcile_find
 *		Read the whole list of orders and attach to each request the orders
 *		that may be its own (candidates, copied into keepcxt) or mark it
 *		uncertain.  Returns NULL when the list was read to the end, or the
 *		result that stopped it.  Runs with no transaction open.
 */
TelnyxResult *
reconcile_find(List *requests, MemoryContext keepcxt)
{
	ReconcileState state;

	state.requests = requests;
	state.keepcxt = keepcxt;
	return api_each_page(reconcile_page, &state);
}

/* Compare one page of the list with every request. */
static void
reconcile_page(List *orders, List *unparsed, void *arg)
{
	ReconcileState *state = (ReconcileState *) arg;
	ListCell   *lc;

	foreach(lc, state->requests)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);
		const char *ref = request_reference(req);
		bool		derived = strncmp(ref, QUEUE_REFERENCE_PREFIX,
									  strlen(QUEUE_REFERENCE_PREFIX)) == 0;
		TimestampTz window_start = req->first_sent_at -
			(TimestampTz) QUEUE_CLOCK_SKEW_MS * 1000;
		ListCell   *lc2;

		foreach(lc2, orders)
		{
			TelnyxOrder *order = (TelnyxOrder *) lfirst(lc2);
			MemoryContext old;

			if (order->customer_reference == NULL ||
				strcmp(order->customer_reference, ref) != 0)
				continue;
			if (!derived && !api_order_matches(order, req->body))
				continue;
			if (!order->created_at.present)
			{
				req->uncertain = true;
				continue;
			}
			if (order->created_at.value < window_start)
				continue;

			old = MemoryContextSwitchTo(state->keepcxt);
			req->candidates = lappend(req->candidates,
									  DatumGetJsonbPCopy(JsonbPGetDatum(order->data)));
			MemoryContextSwitchTo(old);
		}

		foreach(lc2, unparsed)
		{
			bool		readable;
			const char *other = raw_reference((const JsonbValue *) lfirst(lc2),
											  &readable);

			/* unless it says it belongs to someone else, it may be ours */
			if (!readable || (other != NULL && strcmp(other, ref) == 0))
				req->uncertain = true;
		}
	}
}

/* The customer_reference of a queued body (always present). */
static const char *
request_reference(QueueRequest *req)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(&req->body->root,
												 "customer_reference",
												 strlen("customer_reference"),
												 &buf);

	if (v == NULL || v->type != jbvString)
		return "";
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * The customer_reference of a list element that could not be parsed, or
 * NULL when it has none (then it is no queued request's order).  *readable
 * is false when that cannot be told: not an object, or a reference that is
 * not a string.
 */
static const char *
raw_reference(const JsonbValue *raw, bool *readable)
{
	JsonbValue	buf;
	JsonbValue *v;

	*readable = raw->type == jbvBinary && JsonContainerIsObject(raw->val.binary.data);
	if (!*readable)
		return NULL;
	v = getKeyJsonValueFromContainer(raw->val.binary.data, "customer_reference",
									 strlen("customer_reference"), &buf);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
	{
		*readable = false;
		return NULL;
	}
	return pnstrdup(v->val.string.val, v->val.string.len);
}
