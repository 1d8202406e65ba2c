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
 * reconcile_resolve then decides, in a transaction: the first candidate
 * not already taken is the order; no candidate and nothing uncertain,
 * found by RECONCILE_ABSENCE_LOOKUPS whole reads of the list over
 * telnyx.absence_window, proves the request absent.  A list not read to
 * its end proves nothing.
 *
 * The same rule tells a sync which orders of the account are this
 * database's (reconcile_own_orders): several databases, each with its
 * own requests, may order on one account, and by default each records
 * and follows only what it placed.  An order is its own when it records
 * it already, when one of its requests names it, or when it matches one
 * of its synchronous calls (telnyx_order_calls, written before the call
 * was sent, whatever became of its transaction) as an order matches a
 * request with a reference the caller gave: the same customer_reference
 * (or none in both), the same groups, created in the call's window.  The
 * user's customer_reference is never changed to tell.  Each call has at
 * most one order.  An order that answered another database's request or
 * call (wakeup.c remembers them) is never taken, neither by a sync nor by
 * reconcile_resolve.  telnyx.sync_scope = 'account' records every
 * order of the account instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "http.h"
#include "queue.h"
#include "reconcile.h"
#include "store.h"
#include "wakeup.h"

/*
 * Our clock and Telnyx's may differ by this much: an order created this
 * long before a request was first sent may still be its order.
 */
#define QUEUE_CLOCK_SKEW_MS (5 * 60 * 1000)

/*
 * An unknown request is proven absent only by this many whole reads of the
 * list that found nothing, the last begun telnyx.absence_window or more
 * after its last attempt ended.
 */
#define RECONCILE_ABSENCE_LOOKUPS 3

/* A request whose order cannot be told apart is looked up again after this. */
#define RECONCILE_UNCERTAIN_DELAY_MS 60000

/* telnyx.sync_scope */
typedef enum SyncScope
{
	SYNC_SCOPE_OWN,
	SYNC_SCOPE_ACCOUNT
} SyncScope;

static const struct config_enum_entry sync_scope_options[] = {
	{"own", SYNC_SCOPE_OWN, false},
	{"account", SYNC_SCOPE_ACCOUNT, false},
	{NULL, 0, false}
};

/*---- GUC variables ----*/

static int	telnyx_sync_scope = SYNC_SCOPE_OWN;

/*
 * An unknown request is proven absent only after the list was read, with
 * nothing of it, telnyx.absence_window or more after its last attempt
 * ended (and RECONCILE_ABSENCE_LOOKUPS times in all): Telnyx may record an
 * order some time after the connection that carried it was lost, and its
 * list may lag behind.  Five minutes by default, one at the least, whatever
 * telnyx.reconcile_delay says.
 */
static int	telnyx_absence_window_s = 300;

typedef struct ReconcileState
{
	List	   *requests;		/* QueueRequest * */
	MemoryContext keepcxt;		/* where candidates are copied */
} ReconcileState;

/*---- Function declarations ----*/

static void reconcile_page(List *orders, List *unparsed, void *arg);
static const char *request_reference(QueueRequest *req);
static const char *raw_reference(const JsonbValue *raw, bool *readable);
static bool call_matches(const StoreCall *call, const TelnyxOrder *order);

/*
 * reconcile_init
 *		From _PG_init: when absence is proven, and which orders of the
 *		account a sync records.
 */
void
reconcile_init(void)
{
	DefineCustomIntVariable("telnyx.absence_window",
							"Time after an order request's last attempt before it can be proven absent and sent again.",
							"Telnyx may record an order some time after the connection that carried it was lost: the list of orders is read three times over this window, finding nothing, before the request is sent again.",
							&telnyx_absence_window_s,
							300, 60, 7 * 24 * 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("telnyx.sync_scope",
							 "Which orders of the account a sync records: this database's own, or every one.",
							 "\"own\" records the orders this database placed (by a request or a call, whatever became of its transaction); \"account\" mirrors the whole account.",
							 &telnyx_sync_scope,
							 SYNC_SCOPE_OWN,
							 sync_scope_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * reconcile_own_orders
 *		Of orders (a page of the list, none of them recorded here), those
 *		this database places (see the top of this file); *keys gets, for
 *		each one returned, the key of the call it answers, or NULL.  Runs
 *		in the caller's transaction.
 */
List *
reconcile_own_orders(List *orders, List **keys)
{
	List	   *own = NIL;
	List	   *ids = NIL;
	List	   *named;
	List	   *refs = NIL;
	List	   *calls;
	bool		without_reference = false;
	ListCell   *lc;

	*keys = NIL;
	if (telnyx_sync_scope == SYNC_SCOPE_ACCOUNT)
	{
		foreach(lc, orders)
			*keys = lappend(*keys, NULL);
		return list_copy(orders);
	}
	if (orders == NIL)
		return NIL;

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);

		ids = lappend(ids, order->id);
		if (order->customer_reference == NULL)
			without_reference = true;
		else
			refs = lappend(refs, order->customer_reference);
	}
	named = queue_orders_named(ids);
	calls = store_open_calls(refs, without_reference);

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		const char *key = NULL;
		bool		mine = false;
		ListCell   *lc2;

		foreach(lc2, named)
			mine = mine || strcmp((const char *) lfirst(lc2), order->id) == 0;
		foreach(lc2, calls)
		{
			StoreCall  *call = (StoreCall *) lfirst(lc2);

			if (mine)
				break;
			if (!call->taken && call_matches(call, order) &&
				!wakeup_order_elsewhere(order->id))
			{
				call->taken = true;
				key = call->request_key;
				mine = true;
			}
		}
		if (mine)
		{
			own = lappend(own, order);
			*keys = lappend(*keys, (void *) key);
		}
	}
	return own;
}

/*
 * Could order be the one call sent?  The same reference and groups, and
 * created in the call's window: no earlier than it was sent, no later
 * than its attempts could have lasted, each less or more the difference
 * between the clocks.
 */
static bool
call_matches(const StoreCall *call, const TelnyxOrder *order)
{
	int64		lasted_ms = http_longest_call_ms();

	if (!order->created_at.present || !api_order_matches(order, call->body))
		return false;
	return order->created_at.value >= call->sent_at -
		(TimestampTz) QUEUE_CLOCK_SKEW_MS * 1000 &&
		order->created_at.value <= call->sent_at +
		(TimestampTz) (lasted_ms + QUEUE_CLOCK_SKEW_MS) * 1000;
}

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

/*
 * reconcile_resolve
 *		After reconcile_find read the whole list (req->looked_at is when the
 *		read began).  Which request an order answers is decided only by the
 *		link recorded with it (its request_key) and by the requests that
 *		name it: the first candidate linked to no other request or call,
 *		and not known here before this request was first sent, is its
 *		order: "sent" with it, and linked to it.  A candidate recorded as an
 *		answer to a call whose key was not kept (before 1.5) makes it
 *		uncertain.  None, and nothing uncertain: one more look that found
 *		nothing.  Absence is proven only by RECONCILE_ABSENCE_LOOKUPS such looks,
 *		the last begun telnyx.absence_window or more after the last attempt
 *		ended: then "retrying", to be sent again as the same bytes with the
 *		same key.  Until then, and while uncertain, it is looked up again.
 *		In the caller's transaction.
 */
void
reconcile_resolve(QueueRequest *req)
{
	TimestampTz proven_from;
	TimestampTz next;
	ListCell   *lc;

	foreach(lc, req->candidates)
	{
		Jsonb	   *data = (Jsonb *) lfirst(lc);
		JsonbValue	v;
		TelnyxOrder *order;

		v.type = jbvBinary;
		v.val.binary.data = &data->root;
		v.val.binary.len = VARSIZE(data) - VARHDRSZ;
		order = api_parse_order(&v, NULL);
		if (order == NULL)
			continue;
		/* the answer to another database's request or call */
		if (wakeup_order_elsewhere(order->id))
			continue;
		switch (queue_order_taken(order->id, req))
		{
			case QUEUE_ORDER_FREE:
				queue_reconciled(req, order, NULL, NULL, 0);
				return;
			case QUEUE_ORDER_UNSURE:
				req->uncertain = true;
				break;
			case QUEUE_ORDER_TAKEN:
				break;
		}
	}

	if (req->uncertain)
	{
		queue_reconciled(req, NULL, "unknown",
						 "Not found, but the list holds an order that cannot be told apart from this one's, so absence is not proven.",
						 RECONCILE_UNCERTAIN_DELAY_MS);
		return;
	}

	req->lookups++;
	proven_from = req->unknown_since + (TimestampTz) telnyx_absence_window_s * USECS_PER_SEC;
	if (req->lookups >= RECONCILE_ABSENCE_LOOKUPS && req->looked_at >= proven_from)
	{
		queue_reconciled(req, NULL, "retrying",
						 psprintf("Reconciled: the whole list of orders was read %d times over %d seconds after the last attempt, and holds no order of this request, so it is sent again, as the same request.",
								  req->lookups, telnyx_absence_window_s),
						 0);
		return;
	}

	/* the next look: spread evenly over the window, at its end last */
	next = req->unknown_since +
		(TimestampTz) telnyx_absence_window_s * USECS_PER_SEC *
		Min(req->lookups, RECONCILE_ABSENCE_LOOKUPS - 1) / (RECONCILE_ABSENCE_LOOKUPS - 1);
	queue_reconciled(req, NULL, "unknown",
					 psprintf("Not found in the list of orders (look %d); absence is proven only by %d looks over %d seconds after the last attempt.",
							  req->lookups, RECONCILE_ABSENCE_LOOKUPS, telnyx_absence_window_s),
					 store_ms_until(next) + 1);
}
