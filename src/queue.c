/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  The queue of order requests in telnyx_order_requests.
 *
 * A request is a row written in the caller's transaction, so a transaction
 * that rolls back leaves nothing to send.  A sender (the background worker,
 * or telnyx_process_queue's worker) claims due rows in a short transaction:
 * FOR UPDATE SKIP LOCKED, state "sending", a lease, and the claimer's pid
 * and start time.  It commits, sends with no transaction open, and records
 * each outcome in another short transaction, where a success also records
 * the order's rows (store.c): the state and the order change together.
 *
 * Never twice: a request whose outcome is uncertain (timeout or reset after
 * sending, 5xx, an unreadable 2xx), or found "sending" when its claimer is
 * gone (a crash, a restart, kill -9) or its lease has run out, becomes
 * "unknown".  After telnyx.reconcile_delay it is looked up in the list of
 * orders by its customer_reference and groups (every request has a
 * customer_reference: one derived from its request_key when the caller gave
 * none).  Found: "sent" with that order.  Proven absent after reading the
 * whole list: "retrying", to be sent again with the same Idempotency-Key.
 * Absence is not proven while the list holds an order made since the
 * request (or of unknown date) that gives no customer_reference: such a
 * request stays "unknown" and is looked up again later.
 *
 * Every state change is announced by a trigger on the table (NOTIFY
 * telnyx_orders), not here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "http.h"
#include "queue.h"
#include "store.h"
#include "telnyx_orders.h"
#include "worker.h"

/* Reconcile an unknown outcome no sooner than this after it arose. */
int			telnyx_reconcile_delay_ms = 10000;

/* A sender's claim lasts this much longer than a request may take. */
#define QUEUE_LEASE_MARGIN_MS 60000

/* Pages of 250 orders read at most while reconciling. */
#define QUEUE_MAX_RECONCILE_PAGES 400

/*
 * Orders without a customer_reference created this long before a request,
 * or after it, might be its order.
 */
#define QUEUE_CLOCK_SKEW_MS (5 * 60 * 1000)

/* How long a sender's claim on unknown requests, to reconcile them, lasts. */
#define QUEUE_RECONCILE_LEASE_MS (10 * 60 * 1000)

/*---- Local variables ----*/

/* Did the current transaction enqueue?  (Read at commit to wake a sender.) */
static bool enqueued_in_transaction = false;
static bool xact_callback_registered = false;

/*---- Function declarations ----*/

static void queue_xact_callback(XactEvent event, void *arg);
static void queue_connect(void);
static void queue_exec(const char *template, int nargs, Oid *argtypes,
					   Datum *values, const char *nulls, int expected);
static char *queue_sql(const char *template);
static void queue_set_state(int64 id, const char *from, const char *to,
							const char *order_id, Jsonb *last_error,
							double delay_ms);
static List *queue_claim_rows(const char *template, int max, int lease_ms,
							  MemoryContext mcxt);
static List *queue_read_requests(MemoryContext mcxt);
static Jsonb *queue_reason(const char *reason);

/*
 * queue_enqueue
 *		Validate an order and queue it; return the request id.  Runs in the
 *		caller's transaction: nothing is sent unless it commits.
 */
int64
queue_enqueue(Jsonb *ordering_groups, OrderFields *fields)
{
	char	   *key;
	Jsonb	   *body;
	Oid			argtypes[2] = {UUIDOID, JSONBOID};
	Datum		values[2];
	int64		id;
	bool		isnull;

	key = DatumGetCString(DirectFunctionCall1(uuid_out,
											  DirectFunctionCall1(gen_random_uuid, (Datum) 0)));

	/* so that the order can always be found again, even if the answer is lost */
	if (fields->customer_reference == NULL)
		fields->customer_reference = psprintf("telnyx_orders:%s", key);

	body = validate_order_request(ordering_groups, fields);

	values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(key));
	values[1] = JsonbPGetDatum(body);

	queue_connect();
	queue_exec("INSERT INTO %s.telnyx_order_requests (request_key, body)"
			   " VALUES ($1, $2) RETURNING id",
			   2, argtypes, values, NULL, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	if (!xact_callback_registered)
	{
		RegisterXactCallback(queue_xact_callback, NULL);
		xact_callback_registered = true;
	}
	enqueued_in_transaction = true;
	return id;
}

/* At commit of a transaction that enqueued, wake this database's sender. */
static void
queue_xact_callback(XactEvent event, void *arg)
{
	if (!enqueued_in_transaction)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			worker_wake(MyDatabaseId);
			enqueued_in_transaction = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			enqueued_in_transaction = false;
			break;
		default:
			break;
	}
}

static void
queue_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * Run the statement template (its schema put in by queue_sql) with nargs
 * parameters; raise an error unless SPI answers expected.  SPI must be
 * connected.
 */
static void
queue_exec(const char *template, int nargs, Oid *argtypes, Datum *values,
		   const char *nulls, int expected)
		   {
		   int			rc = SPI_execute_with_args(queue_sql(template), nargs, argtypes,
		   values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "queue statement failed: %s", SPI_result_code_string(rc));
}

/* template with its "%s" replaced by the extension's quoted schema. */
static char *
queue_sql(const char *template)
{
	return psprintf(template, quote_identifier(store_schema_name()));
}

/*
 * queue_ready
 *		Does this database have the extension (at a version with the queue)?
 */
bool
queue_ready(void)
{
	Oid			extoid = get_extension_oid("telnyx_orders", true);

	if (!OidIsValid(extoid))
		return false;
	return OidIsValid(get_relname_relid("telnyx_order_requests",
										get_namespace_oid(store_schema_name(), false)));
}

/*
 * queue_claim
 *		Claim up to max due requests for sending: state "sending", a lease,
 *		and this process as claimer.  The list is allocated in mcxt, which
 *		must outlive the transaction.
 */
List *
queue_claim(int max, MemoryContext mcxt)
{
	return queue_claim_rows("WITH due AS ("
							"  SELECT id FROM %1$s.telnyx_order_requests"
							"   WHERE state IN ('queued', 'retrying') AND next_attempt_at <= now()"
							"   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
							" UPDATE %1$s.telnyx_order_requests r"
							"    SET state = 'sending', attempts = r.attempts + 1,"
							"        lease_until = now() + $2 * interval '1 millisecond',"
							"        claimed_by_pid = pg_backend_pid(), claimed_by_start = $3,"
							"        updated_at = now()"
							"   FROM due WHERE r.id = due.id"
							" RETURNING r.id, r.request_key::text, r.body, r.attempts, r.created_at",
							max, telnyx_timeout_ms + QUEUE_LEASE_MARGIN_MS, mcxt);
}

/*
 * Run a claiming statement: $1 the most rows, $2 the lease in milliseconds,
 * $3 this process's start time; it returns the claimed requests, which are
 * read into mcxt.
 */
static List *
queue_claim_rows(const char *template, int max, int lease_ms, MemoryContext mcxt)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[3];
	List	   *result;

	values[0] = Int32GetDatum(max);
	values[1] = Int32GetDatum(lease_ms);
	values[2] = TimestampTzGetDatum(MyStartTimestamp);

	queue_connect();
	queue_exec(template, 3, argtypes, values, NULL, SPI_OK_UPDATE_RETURNING);
	result = queue_read_requests(mcxt);
	SPI_finish();
	return result;
}

/* The rows of SPI_tuptable (id, request_key, body, attempts, created_at), in mcxt. */
static List *
queue_read_requests(MemoryContext mcxt)
{
	List	   *result = NIL;
	uint64		i;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(mcxt);
		QueueRequest *req = palloc0(sizeof(QueueRequest));
		bool		isnull;

		req->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		req->request_key = SPI_getvalue(tup, desc, 2);
		req->body = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull));
		req->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		req->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
		result = lappend(result, req);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/*
 * queue_record
 *		Record the outcome of sending req.  A success records the order too.
 *		*wait_ms is set to how long the sender should hold back (rate
 *		limits).
 */
QueueOutcome
queue_record(QueueRequest *req, TelnyxResult *result, double *wait_ms)
{
	Jsonb	   *error = NULL;
	double		delay;

	*wait_ms = 0;
	if (result->class != TELNYX_OK)
		error = api_error_json(result);

	switch (result->class)
	{
		case TELNYX_OK:
			{
				TelnyxOrder *order = api_parse_order(&result->data);

				store_order(order);
				queue_set_state(req->id, "sending", "sent", order->id, NULL, 0);
				return QUEUE_DONE;
			}

		case TELNYX_REJECTED:
		case TELNYX_NOT_FOUND:
			queue_set_state(req->id, "sending", "failed", NULL, error, 0);
			return QUEUE_DONE;

		case TELNYX_AUTH:
			/* a configuration problem: it stays queued, as if not claimed */
			queue_set_state(req->id, "sending", "queued", NULL, error, 0);
			return QUEUE_AUTH;

		case TELNYX_RATE_LIMITED:
			delay = http_retry_delay_ms(req->attempts - 1, result->wait_ms);
			queue_set_state(req->id, "sending", "retrying", NULL, error, delay);
			*wait_ms = delay;
			return QUEUE_RATE_LIMITED;

		case TELNYX_NOT_SENT:
			delay = http_retry_delay_ms(req->attempts - 1, -1);
			queue_set_state(req->id, "sending", "retrying", NULL, error, delay);
			return QUEUE_RETRY;

		default:
			/* anything else may have created the order */
			queue_set_state(req->id, "sending", "unknown", NULL, error,
							telnyx_reconcile_delay_ms);
			return QUEUE_UNKNOWN;
	}
}

/*
 * Move request id from state "from" to "to", due after delay_ms.  The claim
 * is released.  order_id and last_error are kept unless given.
 */
static void
queue_set_state(int64 id, const char *from, const char *to,
				const char *order_id, Jsonb *last_error, double delay_ms)
{
	Oid			argtypes[6] = {INT8OID, TEXTOID, TEXTOID, UUIDOID, JSONBOID, FLOAT8OID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(from);
	values[2] = CStringGetTextDatum(to);
	if (order_id != NULL)
		values[3] = DirectFunctionCall1(uuid_in, CStringGetDatum(order_id));
	else
		nulls[3] = 'n';
	if (last_error != NULL)
		values[4] = JsonbPGetDatum(last_error);
	else
		nulls[4] = 'n';
	values[5] = Float8GetDatum(delay_ms);

	queue_connect();
	queue_exec("UPDATE %s.telnyx_order_requests"
			   "   SET state = $3, order_id = coalesce($4, order_id),"
			   "       last_error = CASE WHEN $3 = 'sent' THEN NULL"
			   "                         ELSE coalesce($5, last_error) END,"
			   "       next_attempt_at = now() + $6 * interval '1 millisecond',"
			   "       lease_until = NULL, claimed_by_pid = NULL,"
			   "       claimed_by_start = NULL, updated_at = now()"
			   " WHERE id = $1 AND state = $2",
			   6, argtypes, values, nulls, SPI_OK_UPDATE);
	SPI_finish();
}

/*
 * queue_recover_stale
 *		Requests left "sending" by a sender that is gone (crash, restart,
 *		kill) or whose lease ran out have an unknown outcome.  Returns how
 *		many were found.
 */
int
queue_recover_stale(void)
{
	Oid			argtypes[2] = {FLOAT8OID, JSONBOID};
	Datum		values[2];
	int			n;

	values[0] = Float8GetDatum(telnyx_reconcile_delay_ms);
	values[1] = JsonbPGetDatum(queue_reason("The sender stopped before it could record the outcome."));

	queue_connect();
	queue_exec("UPDATE %s.telnyx_order_requests r"
			   "   SET state = 'unknown', last_error = $2,"
			   "       next_attempt_at = now() + $1 * interval '1 millisecond',"
			   "       lease_until = NULL, claimed_by_pid = NULL,"
			   "       claimed_by_start = NULL, updated_at = now()"
			   " WHERE state = 'sending'"
			   "   AND (lease_until < now()"
			   "        OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
			   "                        WHERE a.pid = r.claimed_by_pid"
			   "                          AND a.backend_start = r.claimed_by_start))",
			   2, argtypes, values, NULL, SPI_OK_UPDATE);
	n = (int) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * queue_release_own
 *		After an error in this sender: its own "sending" requests have an
 *		unknown outcome, and its claims on unknown ones are dropped.
 */
int
queue_release_own(void)
{
	Oid			argtypes[3] = {FLOAT8OID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			n;

	values[0] = Float8GetDatum(telnyx_reconcile_delay_ms);
	values[1] = JsonbPGetDatum(queue_reason("The sender failed before it could record the outcome."));
	values[2] = TimestampTzGetDatum(MyStartTimestamp);

	queue_connect();
	queue_exec("UPDATE %s.telnyx_order_requests r"
			   "   SET state = 'unknown',"
			   "       last_error = CASE WHEN state = 'sending' THEN $2 ELSE last_error END,"
			   "       next_attempt_at = now() + $1 * interval '1 millisecond',"
			   "       lease_until = NULL, claimed_by_pid = NULL,"
			   "       claimed_by_start = NULL, updated_at = now()"
			   " WHERE state IN ('sending', 'unknown')"
			   "   AND claimed_by_pid = pg_backend_pid() AND claimed_by_start = $3",
			   3, argtypes, values, NULL, SPI_OK_UPDATE);
	n = (int) SPI_processed;
	SPI_finish();
	return n;
}

/*
 * queue_claim_unknown
 *		Claim up to max unknown requests due for reconciliation (a lease, so
 *		that two senders do not reconcile the same request).
 */
List *
queue_claim_unknown(int max, MemoryContext mcxt)
{
	return queue_claim_rows("WITH due AS ("
							"  SELECT id FROM %1$s.telnyx_order_requests"
							"   WHERE state = 'unknown' AND next_attempt_at <= now()"
							"     AND (claimed_by_pid IS NULL OR lease_until < now())"
							"   ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
							" UPDATE %1$s.telnyx_order_requests r"
							"    SET lease_until = now() + $2 * interval '1 millisecond',"
							"        claimed_by_pid = pg_backend_pid(), claimed_by_start = $3"
							"   FROM due WHERE r.id = due.id"
							" RETURNING r.id, r.request_key::text, r.body, r.attempts, r.created_at",
							max, QUEUE_RECONCILE_LEASE_MS, mcxt);
}

/*
 * queue_find_orders
 *		Read the whole list of orders and attach to each request the orders
 *		that match it (same customer_reference and groups), in list order.
 *		Returns NULL when the list was read to the end, or the failed
 *		result.  Runs with no transaction open, in the current memory
 *		context.
 */
TelnyxResult *
queue_find_orders(List *requests)
{
	int			page;

	for (page = 1; page <= QUEUE_MAX_RECONCILE_PAGES; page++)
	{
		TelnyxResult *r = api_list_inexplicit_orders(page, TELNYX_MAX_PAGE_SIZE);
		JsonbContainer *data;
		int			total_pages;
		int			n;
		int			i;

		if (r->class != TELNYX_OK)
			return r;
		data = r->data.val.binary.data;
		n = JsonContainerSize(data);
		for (i = 0; i < n; i++)
		{
			TelnyxOrder *order = api_parse_order(getIthJsonbValueFromContainer(data, i));
			ListCell   *lc;

			if (order == NULL)
				continue;
			foreach(lc, requests)
			{
				QueueRequest *req = (QueueRequest *) lfirst(lc);

				if (api_order_matches(order, req->body))
					req->candidates = lappend(req->candidates, order);
				else if (order->customer_reference == NULL &&
						 (!order->created_at.present ||
						  order->created_at.value >=
						  req->created_at - QUEUE_CLOCK_SKEW_MS * INT64CONST(1000)))
				{
					/* an order made since, that does not say whose it is */
					req->uncertain = true;
				}
			}
		}
		total_pages = api_list_total_pages(r);
		if (n == 0 || (total_pages >= 0 ? page >= total_pages : n < TELNYX_MAX_PAGE_SIZE))
			return NULL;
		CHECK_FOR_INTERRUPTS();
	}
	return NULL;
}

/*
 * queue_resolve_unknown
 *		After queue_find_orders read the whole list: a request with a
 *		matching order not yet linked to another request is "sent" with it;
 *		one with none is proven absent and "retrying", to be sent again with
 *		its own key.  Returns how many were resolved.
 */
int
queue_resolve_unknown(List *requests)
{
	List	   *taken = NIL;
	ListCell   *lc;
	int			n = 0;

	foreach(lc, requests)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);
		TelnyxOrder *found = NULL;
		ListCell   *lc2;

		foreach(lc2, req->candidates)
		{
			TelnyxOrder *order = (TelnyxOrder *) lfirst(lc2);
			Oid			argtypes[1] = {UUIDOID};
			Datum		values[1];
			bool		linked;
			ListCell   *lc3;

			linked = false;
			foreach(lc3, taken)
				if (strcmp((char *) lfirst(lc3), order->id) == 0)
					linked = true;
			if (linked)
				continue;

			values[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(order->id));
			queue_connect();
			queue_exec("SELECT 1 FROM %s.telnyx_order_requests"
					   " WHERE order_id = $1",
					   1, argtypes, values, NULL, SPI_OK_SELECT);
			linked = SPI_processed > 0;
			SPI_finish();
			if (!linked)
			{
				found = order;
				break;
			}
		}

		if (found != NULL)
		{
			store_order(found);
			queue_set_state(req->id, "unknown", "sent", found->id, NULL, 0);
			taken = lappend(taken, found->id);
		}
		else if (req->uncertain)
		{
			/* absence is not proven: look again later, never resend */
			queue_set_state(req->id, "unknown", "unknown", NULL,
							queue_reason("Not found, but an order without a customer_reference was created since, so absence is not proven."),
							Max(telnyx_reconcile_delay_ms, 60000));
		}
		else
			queue_set_state(req->id, "unknown", "retrying", NULL,
							queue_reason("Reconciled: no such order exists at Telnyx, so it is sent again."),
							0);
		n++;
	}
	return n;
}

/*
 * queue_unknown_retry_later
 *		The list could not be read: reconcile these again later.
 */
void
queue_unknown_retry_later(List *requests, TelnyxResult *result)
{
	ListCell   *lc;

	foreach(lc, requests)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);

		queue_set_state(req->id, "unknown", "unknown", NULL, NULL,
						http_retry_delay_ms(req->attempts, result->wait_ms) +
						telnyx_reconcile_delay_ms);
	}
}

/*
 * queue_next_due_ms
 *		Milliseconds until the next request is due (0 if one is due now),
 *		or -1 if nothing waits.
 */
double
queue_next_due_ms(void)
{
	double		result = -1;
	bool		isnull;
	Datum		d;

	queue_connect();
	if (SPI_execute(queue_sql("SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - now()) * 1000)::float8"
							  "  FROM %s.telnyx_order_requests"
							  " WHERE state IN ('queued', 'retrying', 'unknown')"),
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read order requests");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		result = DatumGetFloat8(d);
	SPI_finish();
	return result;
}

/* {"reason": reason} */
static Jsonb *
queue_reason(const char *reason)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	v.type = jbvString;
	v.val.string.val = "reason";
	v.val.string.len = strlen("reason");
	pushJsonbValue(&st, WJB_KEY, &v);
	v.val.string.val = (char *) reason;
	v.val.string.len = strlen(reason);
	pushJsonbValue(&st, WJB_VALUE, &v);
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}
