/*-------------------------------------------------------------------------
 *
 * telnyx_orders.c
 *	  Order phone numbers from Telnyx with SQL: settings and the
 *	  SQL-callable functions.
 *
 * The functions here are thin.  Each takes one path through the modules:
 * validate.c checks the input and builds the request, api.c sends it (via
 * http.c) and classifies the answer, store.c records the order in the
 * extension's tables, in the caller's transaction.  An order created at
 * Telnyx exists even if that transaction later rolls back; the worker's
 * periodic sync (or telnyx_sync_inexplicit_orders()) brings the record
 * back.  Nothing is sent from a read-only transaction, where nothing could
 * be recorded.
 *
 * Every function runs as its caller: what a user wrote (the casts and
 * output functions that turn a trigger's row into JSON) runs with the
 * user's rights, and only store.c and queue.c act as the extension, for
 * their own statements.
 *
 * The queued functions (enqueue, the trigger) only write a request row
 * through queue.c; worker.c sends it after commit, along the same path.
 * This file also loads the module: the key (apikey.c), settings, libcurl
 * and the workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "api.h"
#include "apikey.h"
#include "budget.h"
#include "calls.h"
#include "compat.h"
#include "http.h"
#include "launcher.h"
#include "queue.h"
#include "reconcile.h"
#include "spend.h"
#include "refresh.h"
#include "schedule.h"
#include "store.h"
#include "errcodes.h"
#include "guard.h"
#include "validate.h"
#include "wakeup.h"
#include "webhook.h"
#include "worker.h"

PG_MODULE_MAGIC;

/* Requests telnyx_purge_requests() deletes per statement. */
#define PURGE_BATCH 10000

/*---- Local types ----*/

/* A sync's walk over the list, and what it did so far. */
typedef struct SyncState
{
	ApiListWalk walk;
	int			pages;			/* pages read */
	int64		read;			/* orders read from the list */
	int64		recorded;		/* orders recorded or updated */
	uint64		query_id;		/* the statement's, to show again */
} SyncState;

/*---- GUC variables ----*/

/* telnyx.progress_messages: the level of a sync's message per page */
static const struct config_enum_entry progress_message_options[] = {
	{"off", 0, false},
	{"notice", NOTICE, false},
	{"info", INFO, false},
	{"log", LOG, false},
	{NULL, 0, false}
};

static int	telnyx_progress_messages = 0;

/*---- Function declarations ----*/

void		_PG_init(void);

PG_FUNCTION_INFO_V1(telnyx_create_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_get_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_get_inexplicit_order_text);
PG_FUNCTION_INFO_V1(telnyx_list_inexplicit_orders);
PG_FUNCTION_INFO_V1(telnyx_sync_inexplicit_orders);
PG_FUNCTION_INFO_V1(telnyx_enqueue_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_order_trigger);
PG_FUNCTION_INFO_V1(telnyx_process_queue);
PG_FUNCTION_INFO_V1(telnyx_cancel_order_request);
PG_FUNCTION_INFO_V1(telnyx_release_requests);
PG_FUNCTION_INFO_V1(telnyx_cancel_held_requests);
PG_FUNCTION_INFO_V1(telnyx_resume_queue);
PG_FUNCTION_INFO_V1(telnyx_order_requests_changed);
PG_FUNCTION_INFO_V1(telnyx_purge_requests);
PG_FUNCTION_INFO_V1(telnyx_restart_workers);
PG_FUNCTION_INFO_V1(telnyx_worker_status);
PG_FUNCTION_INFO_V1(telnyx_queue_unserved);
PG_FUNCTION_INFO_V1(telnyx_notice_unserved);
PG_FUNCTION_INFO_V1(telnyx_guard_drop);
PG_FUNCTION_INFO_V1(telnyx_refresh_orders);
PG_FUNCTION_INFO_V1(telnyx_apply_webhook);

static const char *text_arg_or_null(FunctionCallInfo fcinfo, int argno);
static Jsonb *row_to_jsonb(HeapTuple tuple, TupleDesc desc);
static bool has_after_insert_trigger(Relation rel, Oid fn);
static void refuse_read_only(void);
static int64 enqueue_order(Jsonb *groups, OrderFields *fields, int64 reserved);
static void warn_if_unserved(void);
static void notice_unserved_at_commit(XactEvent event, void *arg);

/* What telnyx_notice_unserved found, said as its transaction commits. */
static LauncherUnserved unserved_at_commit = LAUNCHER_SERVED;


static Datum get_order(const char *id);
static void sync_init(void);
static void sync_page(List *orders, List *unparsed, void *arg);
static void sync_progress(SyncState *st);

/*
 * Module load: each subsystem defines its own settings.  guard_init
 * installs the guard of the tables of orders (guard.c); http_init also
 * owns the API key (apikey.c) and libcurl; budget_init asks for the
 * request budget's shared memory and launcher_init registers the launcher
 * when loaded by shared_preload_libraries.
 */
void
_PG_init(void)
{
	guard_init();
	validate_init();
	http_init();
	budget_init();
	schedule_init();
	store_init();
	queue_init();
	spend_init();
	worker_init();
	launcher_init();
	calls_init();
	webhook_init();
	reconcile_init();
	sync_init();
	MarkGUCPrefixReserved("telnyx");
}

/* The settings of telnyx_sync_inexplicit_orders(). */
static void
sync_init(void)
{
	DefineCustomEnumVariable("telnyx.progress_messages",
							 "Level of the message telnyx_sync_inexplicit_orders() sends for each page of the list it reads.",
							 "off sends none; notice or info to the client; log to the server log.",
							 &telnyx_progress_messages,
							 0,
							 progress_message_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * An order made in a read-only transaction (or on a standby), or for a
 * database whose SQL objects are of another version than this library,
 * would be bought and then not recorded: refuse before sending anything.
 */
static void
refuse_read_only(void)
{
	store_require_version(false);
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot order or record Telnyx orders in a read-only transaction"),
				 errdetail("Nothing was sent: an order could not be recorded here."),
				 errhint(RecoveryInProgress()
						 ? "Connect to the primary server."
						 : "Use a read-write transaction on the primary server.")));
}

/*
 * Queue an order of the ordering groups and fields, validated here at the
 * front door as the synchronous call's are (after the transaction is
 * found writable, and under the request's own key, which names an order
 * given no customer_reference); reserved: an id the BEFORE trigger
 * reserved, or 0.  Returns the request id (queue_enqueue).
 */
static int64
enqueue_order(Jsonb *groups, OrderFields *fields, int64 reserved)
{
	char	   *key;

	queue_refuse_read_only();
	key = queue_new_key(fields);
	return queue_enqueue(validate_order_request(groups, fields), key, reserved);
}

static const char *
text_arg_or_null(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * telnyx_create_inexplicit_order(ordering_groups jsonb, connection_id text,
 *		messaging_profile_id text, customer_reference text,
 *		billing_group_id text) returns jsonb
 *
 * Validate, create the order at Telnyx, record it, return Telnyx's "data".
 */
Datum
telnyx_create_inexplicit_order(PG_FUNCTION_ARGS)
{
	Jsonb	   *groups = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	OrderFields fields;
	Jsonb	   *request;
	char	   *key;
	char	   *body;
	TelnyxResult *result;
	TelnyxOrder *order;

	fields.connection_id = text_arg_or_null(fcinfo, 1);
	fields.messaging_profile_id = text_arg_or_null(fcinfo, 2);
	fields.customer_reference = text_arg_or_null(fcinfo, 3);
	fields.billing_group_id = text_arg_or_null(fcinfo, 4);

	request = validate_order_request(groups, &fields);
	refuse_read_only();

	/* the dry run records the request as the queue would, and sends nothing */
	if (telnyx_dry_run)
	{
		int64		id = enqueue_order(groups, &fields, 0);

		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
											CStringGetDatum(psprintf("{\"dry_run\": true, \"request_id\": " INT64_FORMAT ", \"would_send\": %s}",
																	 id, api_request_text(request)))));
	}

	/* one key for every attempt of this call */
	key = DatumGetCString(DirectFunctionCall1(uuid_out,
											  DirectFunctionCall1(gen_random_uuid, (Datum) 0)));
	body = api_request_text(request);

	/*
	 * Known here as this database's, even if this transaction rolls back;
	 * counted against the spend limits (an error over one: nothing sent).
	 */
	calls_record(key, body, spend_numbers(request));

	result = api_create_inexplicit_order(body, key);
	if (result->class != TELNYX_OK)
	{
		ApiDisposition d = api_create_disposition(result->class);

		/* surely not created: it no longer counts against a limit */
		if (d != API_CREATED && d != API_UNKNOWN)
			calls_refused(key);
	}
	api_raise(result, API_CREATE, NULL);

	order = result->order;
	/* just created: it lists all its groups, none can be left over */
	store_orders(list_make1(order), list_make1(request), list_make1(key),
				 false, true);

	PG_RETURN_JSONB_P(order->data);
}

/*
 * telnyx_get_inexplicit_order(id uuid) returns jsonb
 * telnyx_get_inexplicit_order(id text) returns jsonb
 *
 * Fetch one order, refresh its rows, return Telnyx's "data".  Order ids are
 * strings in the spec; most are uuids.
 */
Datum
telnyx_get_inexplicit_order(PG_FUNCTION_ARGS)
{
	return get_order(DatumGetCString(DirectFunctionCall1(uuid_out,
														 PG_GETARG_DATUM(0))));
}

Datum
telnyx_get_inexplicit_order_text(PG_FUNCTION_ARGS)
{
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	size_t		len = strlen(id);
	size_t		i;

	if (len < 1 || len > TELNYX_MAX_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"id\" must be 1 to %d bytes long", TELNYX_MAX_ID_LEN)));
	for (i = 0; i < len; i++)
		if ((unsigned char) id[i] < ' ' || id[i] == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"id\" must not contain control characters")));
	return get_order(id);
}

static Datum
get_order(const char *id)
{
	TelnyxResult *result;
	TelnyxOrder *order;

	refuse_read_only();
	result = api_get_inexplicit_order(id);
	api_raise(result, API_GET, id);

	order = result->order;
	store_order(order, false, NULL, NULL);

	PG_RETURN_JSONB_P(order->data);
}

/*
 * telnyx_list_inexplicit_orders(page_number integer, page_size integer)
 *		returns jsonb
 *
 * One page of orders, as Telnyx answers it: {"data": [...], "meta": {...}}.
 * Writes nothing; telnyx_sync_inexplicit_orders() records.
 */
Datum
telnyx_list_inexplicit_orders(PG_FUNCTION_ARGS)
{
	int32		page_number = PG_GETARG_INT32(0);
	int32		page_size = PG_GETARG_INT32(1);
	TelnyxResult *result;

	store_require_version(false);
	if (page_number < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"page_number\" must be at least 1")));
	if (page_size < 1 || page_size > TELNYX_MAX_PAGE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"page_size\" must be between 1 and %d", TELNYX_MAX_PAGE_SIZE)));

	result = api_list_inexplicit_orders(page_number, page_size);
	api_raise(result, API_LIST, NULL);

	PG_RETURN_JSONB_P(result->body);
}

/*
 * telnyx_sync_inexplicit_orders() returns bigint
 *
 * Walk every page of the list and record this database's orders
 * (reconcile_own_orders; every order with telnyx.sync_scope = 'account'):
 * those recorded already are updated, those the tables lacked are marked
 * found_by_sync.  Returns how many orders were recorded or updated.
 *
 * A long list takes minutes, so the walk shows how far it got where a DBA
 * looks: pg_stat_activity.query of this session is the statement after a
 * comment saying so (the statement's own text is kept, and shown alone
 * again at the end), and telnyx.progress_messages sends a message per
 * page.  (pgstat_progress_* serves only the server's own commands, and
 * the process title is not in pg_stat_activity.)
 */
Datum
telnyx_sync_inexplicit_orders(PG_FUNCTION_ARGS)
{
	SyncState	st;
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext pagecxt;
	TelnyxResult *volatile failure = NULL;

	refuse_read_only();
	memset(&st, 0, sizeof(st));
#if PG_VERSION_NUM >= 140000
	st.query_id = pgstat_get_my_query_id();
#endif
	pagecxt = AllocSetContextCreate(callercxt, "telnyx_orders list page",
									ALLOCSET_DEFAULT_SIZES);
	api_walk_begin(&st.walk, callercxt);
	PG_TRY();
	{
		sync_progress(&st);
		while (st.walk.end == API_LIST_UNDER_WAY && failure == NULL)
		{
			CHECK_FOR_INTERRUPTS();
			MemoryContextSwitchTo(pagecxt);
			failure = api_walk_next(&st.walk, sync_page, &st);
			MemoryContextSwitchTo(callercxt);
			if (failure == NULL)
				MemoryContextReset(pagecxt);
		}
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(callercxt);
		/* the statement alone again */
		pgstat_report_activity(STATE_RUNNING, debug_query_string);
#if PG_VERSION_NUM >= 140000
		pgstat_report_query_id(st.query_id, true);
#endif
	}
	PG_END_TRY();
	api_walk_finish(&st.walk);
	if (failure != NULL)
		api_raise(failure, API_LIST, NULL);
	MemoryContextDelete(pagecxt);
	PG_RETURN_INT64(st.recorded);
}

/*
 * One page of telnyx_sync_inexplicit_orders: update the orders recorded
 * here, record this database's others, and say how far the walk got.
 */
static void
sync_page(List *orders, List *unparsed, void *arg)
{
	SyncState  *st = (SyncState *) arg;
	List	   *missing = store_orders_missing(orders);
	List	   *own;
	List	   *keys;
	ListCell   *lc;

	foreach(lc, orders)
	{
		if (list_member_ptr(missing, lfirst(lc)))
			continue;
		store_order((TelnyxOrder *) lfirst(lc), true, NULL, NULL);
		st->recorded++;
	}
	own = reconcile_own_orders(missing, &keys);
	foreach(lc, own)
	{
		store_order((TelnyxOrder *) lfirst(lc), true, NULL,
					(const char *) list_nth(keys, foreach_current_index(lc)));
		st->recorded++;
	}
	st->read += list_length(orders) + list_length(unparsed);
	st->pages++;
	sync_progress(st);
}

/*
 * Show how far a sync got: in pg_stat_activity.query, before the
 * statement's text, and as a message at telnyx.progress_messages.
 */
static void
sync_progress(SyncState *st)
{
	char	   *done;
	int			level = telnyx_progress_messages;

	if (st->pages == 0)
		done = pstrdup("reading page 1 of the list of orders");
	else if (st->walk.total_pages >= 0)
		done = psprintf("read page %d of %d of the list of orders: %lld orders read, %lld recorded",
						st->pages, st->walk.total_pages,
						(long long) st->read, (long long) st->recorded);
	else
		done = psprintf("read page %d of the list of orders: %lld orders read, %lld recorded",
						st->pages, (long long) st->read, (long long) st->recorded);

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("/* telnyx_orders: %s */ %s", done,
									debug_query_string ? debug_query_string : ""));
#if PG_VERSION_NUM >= 140000
	pgstat_report_query_id(st->query_id, true);
#endif
	pfree(done);

	if (level == 0 || st->pages == 0)
		return;
	if (st->walk.total_pages >= 0)
		ereport(level,
				(errmsg("read page %d of %d of the list of orders: %lld orders read, %lld recorded",
						st->pages, st->walk.total_pages,
						(long long) st->read, (long long) st->recorded)));
	else
		ereport(level,
				(errmsg("read page %d of the list of orders: %lld orders read, %lld recorded",
						st->pages, (long long) st->read, (long long) st->recorded)));
}

/*
 * telnyx_enqueue_inexplicit_order(ordering_groups jsonb, connection_id text,
 *		messaging_profile_id text, customer_reference text,
 *		billing_group_id text) returns bigint
 *
 * Validate and queue an order in the caller's transaction; the background
 * worker sends it after commit.  Returns the request id.
 */
Datum
telnyx_enqueue_inexplicit_order(PG_FUNCTION_ARGS)
{
	Jsonb	   *groups = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	OrderFields fields;

	fields.connection_id = text_arg_or_null(fcinfo, 1);
	fields.messaging_profile_id = text_arg_or_null(fcinfo, 2);
	fields.customer_reference = text_arg_or_null(fcinfo, 3);
	fields.billing_group_id = text_arg_or_null(fcinfo, 4);

	warn_if_unserved();
	PG_RETURN_INT64(enqueue_order(groups, &fields, 0));
}

/*
 * A request queued where no background worker sends would wait silently:
 * say so, once per session.  Looked at once per session: a worker found
 * running is not looked for again.
 */
static void
warn_if_unserved(void)
{
	static bool done = false;	/* warned, or found a worker: no more looks */
	const char *why;

	/* a database at another version is refused before anything is said */
	store_require_version(false);
	if (done)
		return;
	why = launcher_unserved_reason();
	done = true;
	if (why == NULL)
		return;
	ereport(WARNING,
			(errmsg("no background worker sends the order queue of this database yet"),
			 errdetail("Queued requests wait: %s.", why),
			 errhint("Add the database to telnyx.database (with telnyx_orders in shared_preload_libraries), or send the queue with \"CALL telnyx_process_queue()\"; \"SELECT * FROM telnyx_queue_status\" shows the worker.")));
}

/*
 * telnyx_order_trigger() returns trigger
 *
 * AFTER INSERT FOR EACH ROW: queue one order for each row really inserted
 * (see validate_row_request for how the row becomes an order).  A row that
 * is not inserted (ON CONFLICT DO NOTHING, a later BEFORE trigger that
 * skips it) fires no AFTER trigger, and orders nothing.
 *
 * BEFORE INSERT FOR EACH ROW, on a table with a bigint column
 * "telnyx_request_id" that also has the AFTER trigger: reserve the
 * request's id and store it in that column, so that the row points at its
 * request.  The AFTER trigger then queues the request under that id, once:
 * an id this transaction did not reserve is never used, and an id already
 * queued is not queued again.
 *
 * Runs as the user who inserts: the row is turned into jsonb (casts,
 * output functions) with that user's rights, and recorded as that user's
 * request.
 */
Datum
telnyx_order_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	Jsonb	   *row;
	Jsonb	   *defaults = NULL;
	Jsonb	   *groups;
	OrderFields fields;
	int64		reserved = 0;
	int			attnum;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("telnyx_order_trigger must be called as a trigger")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("telnyx_order_trigger must be fired FOR EACH ROW on INSERT")));
	if (trigdata->tg_trigger->tgnargs > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("telnyx_order_trigger takes at most one argument, a JSON object of defaults")));

	desc = trigdata->tg_relation->rd_att;
	tuple = trigdata->tg_trigtuple;
	attnum = SPI_fnumber(desc, "telnyx_request_id");
	if (attnum > 0 && TupleDescAttr(desc, attnum - 1)->atttypid != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"telnyx_request_id\" must be of type bigint")));

	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event))
	{
		Datum		value;
		bool		isnull = false;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("telnyx_order_trigger fired BEFORE INSERT needs a column \"telnyx_request_id\" of type bigint"),
					 errdetail("Before the insert, it only reserves the request's id for that column."),
					 errhint("Order with an AFTER INSERT trigger.")));
		if (!has_after_insert_trigger(trigdata->tg_relation, fcinfo->flinfo->fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("table \"%s\" has telnyx_order_trigger BEFORE INSERT but not AFTER INSERT",
							RelationGetRelationName(trigdata->tg_relation)),
					 errdetail("Orders are queued after the insert, so that only a row really inserted orders."),
					 errhint("Add \"CREATE TRIGGER ... AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger(...)\".",
							 RelationGetRelationName(trigdata->tg_relation))));
		value = Int64GetDatum(queue_reserve_id());
		return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &attnum,
														 &value, &isnull));
	}

	if (trigdata->tg_trigger->tgnargs == 1)
		defaults = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													  CStringGetDatum(trigdata->tg_trigger->tgargs[0])));
	if (attnum > 0)
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

		if (!isnull)
			reserved = DatumGetInt64(value);
	}

	row = row_to_jsonb(tuple, desc);
	groups = validate_row_request(row, defaults, &fields);
	warn_if_unserved();
	(void) enqueue_order(groups, &fields, reserved);
	return PointerGetDatum(NULL);
}

/* Does rel have an AFTER INSERT FOR EACH ROW trigger calling function fn? */
static bool
has_after_insert_trigger(Relation rel, Oid fn)
{
	TriggerDesc *td = rel->trigdesc;
	int			i;

	if (td == NULL)
		return false;
	for (i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgfoid == fn && t->tgenabled != TRIGGER_DISABLED &&
			TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_AFTER(t->tgtype) &&
			TRIGGER_FOR_INSERT(t->tgtype))
			return true;
	}
	return false;
}

/* The row tuple (of a table with descriptor desc) as jsonb, as to_jsonb makes it. */
static Jsonb *
row_to_jsonb(HeapTuple tuple, TupleDesc desc)
{
	/* one plan for every table: a record carries its own type */
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {RECORDOID};
	Datum		values[1];
	bool		isnull;
	Datum		result;

	values[0] = heap_copy_tuple_as_datum(tuple, desc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT pg_catalog.to_jsonb($1)", 1, argtypes);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the conversion of a row to jsonb");
		plan = p;
	}
	if (SPI_execute_plan(plan, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not convert the row to jsonb");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	return DatumGetJsonbP(result);
}

/*
 * CALL telnyx_process_queue(max_requests integer, INOUT handled integer)
 *
 * Send the due requests now, in this session, without waiting for the
 * background worker (or without one at all); "handled" says how many were
 * handled.  It commits as it goes, so it cannot run inside a transaction
 * block.
 */
Datum
telnyx_process_queue(PG_FUNCTION_ARGS)
{
	int			max_requests = -1;
	TupleDesc	tupdesc;
	Datum		handled;
	bool		isnull = false;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("telnyx_process_queue cannot run inside a transaction block"),
				 errdetail("It commits between claiming, sending and recording."),
				 errhint("Run \"CALL telnyx_process_queue()\" on its own.")));
	if (!PG_ARGISNULL(0))
	{
		max_requests = PG_GETARG_INT32(0);
		if (max_requests < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"max_requests\" must not be negative")));
	}
	refuse_read_only();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	handled = Int32GetDatum(worker_process_queue(max_requests));
	SPI_finish();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													   &handled, &isnull)));
}

/*
 * telnyx_cancel_order_request(id bigint) returns boolean
 *
 * Cancel a request that is still queued or retrying, if the calling role
 * queued it (or is a member of the role that did, or a superuser).
 */
Datum
telnyx_cancel_order_request(PG_FUNCTION_ARGS)
{
	store_require_version(false);
	PG_RETURN_BOOL(queue_cancel(PG_GETARG_INT64(0)));
}

/* The filters of telnyx_release_requests and telnyx_cancel_held_requests. */
static Datum
release_held(FunctionCallInfo fcinfo, bool cancel)
{
	ArrayType  *ids = PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0);
	Oid			role = PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1);
	int64		batch = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	bool		all = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);

	if (!PG_ARGISNULL(2) && batch == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"held_batch\" must not be 0")));
	PG_RETURN_INT64(queue_release_held(ids, role, batch, all, cancel));
}

/*
 * telnyx_release_requests(ids bigint[], requested_by regrole,
 *		held_batch bigint, all boolean) returns bigint
 *
 * Release held requests: they are sent whatever the limits say.  Only a
 * role granted EXECUTE (an administrator) may.
 */
Datum
telnyx_release_requests(PG_FUNCTION_ARGS)
{
	return release_held(fcinfo, false);
}

/*
 * telnyx_cancel_held_requests(ids bigint[], requested_by regrole,
 *		held_batch bigint, all boolean) returns bigint
 */
Datum
telnyx_cancel_held_requests(PG_FUNCTION_ARGS)
{
	return release_held(fcinfo, true);
}

/*
 * telnyx_order_requests_changed() returns trigger
 *
 * The statement triggers of telnyx_order_requests: they keep the queue's
 * index tables (queue.c).
 */
Datum
telnyx_order_requests_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("telnyx_order_requests_changed must be called as a trigger")));
	queue_index_changed((TriggerData *) fcinfo->context);
	return PointerGetDatum(NULL);
}

/*
 * telnyx_resume_queue() returns boolean
 *
 * Let a restored or cloned database's queue send; returns whether it was
 * paused.
 */
Datum
telnyx_resume_queue(PG_FUNCTION_ARGS)
{
	bool		moved;

	store_require_version(false);
	moved = queue_resume();

	if (moved)
		wakeup_now(MyDatabaseId);
	PG_RETURN_BOOL(moved);
}

/*
 * telnyx_purge_requests(older_than interval) returns bigint
 *
 * Delete the finished requests (sent, failed, cancelled) last changed more
 * than older_than ago, now, as the worker does under
 * telnyx.request_retention; returns how many.  Orders are never deleted.
 */
Datum
telnyx_purge_requests(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz cutoff;
	int64		total = 0;
	int			n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"older_than\" must not be null")));
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(now),
													 PG_GETARG_DATUM(0)));
	if (cutoff > now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"older_than\" must not be negative")));
	refuse_read_only();
	do
	{
		n = queue_purge(cutoff, PURGE_BATCH);
		total += n;
		CHECK_FOR_INTERRUPTS();
	} while (n == PURGE_BATCH);
	PG_RETURN_INT64(total);
}

/*
 * telnyx_restart_workers() returns boolean
 *
 * Ask the launcher to stop every worker and start them again at once (a
 * clean restart, with exactly one worker per database); false if no
 * launcher runs.
 */
Datum
telnyx_restart_workers(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(wakeup_request_restart());
}

/*
 * telnyx_worker_status() returns setof record
 *
 * One row per running worker, in every database: what telnyx_queue_status
 * shows of the worker.
 */
Datum
telnyx_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WakeupWorker workers[WAKEUP_MAX_WORKERS];
	TupleDesc	desc;
	Tuplestorestate *store;
	MemoryContext old;
	int			n;
	int			i;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTupleDescCopy(desc);
	store = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = desc;
	MemoryContextSwitchTo(old);

	n = wakeup_workers(workers, WAKEUP_MAX_WORKERS);
	for (i = 0; i < n; i++)
	{
		WakeupWorker *w = &workers[i];
		Datum		values[9];
		bool		nulls[9];
		char	   *dbname = get_database_name(w->dboid);

		memset(nulls, 0, sizeof(nulls));
		if (dbname != NULL)
		{
			Name		nd = (Name) palloc0(NAMEDATALEN);

			namestrcpy(nd, dbname);
			values[0] = NameGetDatum(nd);
		}
		else
			nulls[0] = true;
		values[1] = Int32GetDatum(w->pid);
		values[2] = TimestampTzGetDatum(w->started_at);
		values[3] = CStringGetTextDatum(w->paused);
		nulls[3] = w->paused[0] == '\0';
		values[4] = TimestampTzGetDatum(w->rate_limited_until);
		nulls[4] = w->rate_limited_until == 0;
		values[5] = Int64GetDatum(w->sent);
		values[6] = Int64GetDatum(w->rate_limited);
		values[7] = TimestampTzGetDatum(w->last_sent_at);
		nulls[7] = w->last_sent_at == 0;
		values[8] = TimestampTzGetDatum(w->last_rate_limited_at);
		nulls[8] = w->last_rate_limited_at == 0;
		tuplestore_putvalues(store, desc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * telnyx_queue_unserved() returns text
 *
 * NULL when a background worker sends this database's queue, else why
 * none does.
 */
Datum
telnyx_queue_unserved(PG_FUNCTION_ARGS)
{
	const char *why = launcher_unserved_reason();

	if (why == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}

/*
 * telnyx_notice_unserved() returns void
 *
 * Run by the extension's script at CREATE EXTENSION and ALTER EXTENSION
 * UPDATE: a NOTICE when no background worker will send this database's
 * queue as configured (the library is not preloaded, or the database is
 * not in telnyx.database), so that it is heard before the first enqueue.
 * PostgreSQL raises client_min_messages to WARNING while an extension's
 * script runs, so the NOTICE is given as the transaction commits; only a
 * NOTICE, so that a restore's CREATE EXTENSION goes through.
 */
Datum
telnyx_notice_unserved(PG_FUNCTION_ARGS)
{
	static bool registered = false;

	(void) launcher_unserved(&unserved_at_commit);
	if (unserved_at_commit == LAUNCHER_SERVED ||
		unserved_at_commit == LAUNCHER_NOT_RUNNING)
		PG_RETURN_VOID();
	if (!registered)
		RegisterXactCallback(notice_unserved_at_commit, NULL);
	registered = true;
	PG_RETURN_VOID();
}

/* The NOTICE telnyx_notice_unserved asked for, as its transaction commits. */
static void
notice_unserved_at_commit(XactEvent event, void *arg)
{
	LauncherUnserved kind = unserved_at_commit;
	char	   *dbname;

	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_ABORT)
		return;
	unserved_at_commit = LAUNCHER_SERVED;
	if (event != XACT_EVENT_PRE_COMMIT)
		return;
	if (kind == LAUNCHER_NOT_PRELOADED)
	{
		dbname = get_database_name(MyDatabaseId);
		ereport(NOTICE,
				(errmsg("no background worker will send the order queue of database \"%s\"",
						dbname ? dbname : "?"),
				 errdetail("telnyx_orders is not in shared_preload_libraries, so no background worker runs."),
				 errhint("Add telnyx_orders to shared_preload_libraries and the database to telnyx.database, and restart the server; or send the queue with \"CALL telnyx_process_queue()\".")));
	}
	else if (kind == LAUNCHER_NOT_LISTED)
	{
		dbname = get_database_name(MyDatabaseId);
		ereport(NOTICE,
				(errmsg("no background worker will send the order queue of database \"%s\"",
						dbname ? dbname : "?"),
				 errdetail("The database is not in telnyx.database."),
				 errhint("Add the database to telnyx.database in postgresql.conf and reload the configuration; or send the queue with \"CALL telnyx_process_queue()\".")));
	}
}

/*
 * telnyx_guard_drop() returns event_trigger
 *
 * ON ddl_command_start: refuse DROP EXTENSION telnyx_orders (or DROP
 * SCHEMA ... CASCADE of its schema) while its tables hold the record of
 * any order or of a request not yet finished, unless telnyx.allow_drop is
 * on in the session.  Dropping would delete what was bought, silently.
 * A role that may not drop them anyway is left to PostgreSQL's own refusal
 * (the event fires before the ownership check): what the tables hold is
 * told only to who may drop them.
 *
 * The trigger fires at the start of every command: being in C, it loads
 * the library, whose guard (guard.c) then refuses the drop of the tables
 * of orders by any other command too (DROP OWNED, DROP EXTENSION plpgsql
 * CASCADE, ...).
 */
Datum
telnyx_guard_drop(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DropStmt   *drop;
	const char *schema;
	bool		ours = false;
	ListCell   *lc;
	int64		orders;
	int64		unfinished;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "telnyx_guard_drop: not called by the event trigger manager");
	trigdata = (EventTriggerData *) fcinfo->context;
	if (telnyx_allow_drop || !IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();
	drop = (DropStmt *) trigdata->parsetree;
	if (drop->removeType != OBJECT_EXTENSION && drop->removeType != OBJECT_SCHEMA)
		PG_RETURN_VOID();

	schema = store_schema_name();
	foreach(lc, drop->objects)
	{
		const char *name = strVal(lfirst(lc));

		if (drop->removeType == OBJECT_EXTENSION)
			ours |= strcmp(name, "telnyx_orders") == 0 &&
				compat_extension_ownercheck(get_extension_oid(name, false), GetUserId());
		else
			ours |= drop->behavior == DROP_CASCADE && strcmp(name, schema) == 0 &&
				compat_namespace_ownercheck(get_namespace_oid(name, false), GetUserId());
	}
	if (!ours)
		PG_RETURN_VOID();

	queue_at_stake(&orders, &unfinished);
	if (orders == 0 && unfinished == 0)
		PG_RETURN_VOID();
	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("dropping telnyx_orders would delete the record of %lld orders and %lld requests not yet finished",
					(long long) orders, (long long) unfinished),
			 errdetail("The orders were bought and paid for; dropping the extension deletes its tables with them."),
			 errhint("Keep a copy first (pg_dump --table '%s.telnyx_*'), then run \"SET telnyx.allow_drop = on\" in this session and drop it again.",
					 schema)));
	PG_RETURN_VOID();
}

/*
 * telnyx_refresh_orders() returns integer
 *
 * One refresh pass in this session: fetch every order due for a refresh
 * (one still being filled), then every number order due (new, or still
 * pending), and record what Telnyx says now.  What cannot be fetched is
 * skipped with a WARNING, to be tried again after a backoff.  Returns how many
 * orders and number orders were refreshed.
 */
Datum
telnyx_refresh_orders(PG_FUNCTION_ARGS)
{
	int			refreshed = 0;
	List	   *items;

	refuse_read_only();
	while ((items = refresh_claim(REFRESH_BATCH, CurrentMemoryContext)) != NIL)
	{
		ListCell   *lc;

		foreach(lc, items)
		{
			RefreshItem *item = (RefreshItem *) lfirst(lc);

			refresh_fetch(item, WARNING, false);
			if (refresh_record(item))
				refreshed++;
		}
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_INT32(refreshed);
}

/*
 * telnyx_apply_webhook(body text, signature text, "timestamp" text)
 *		returns jsonb
 *
 * Verify and apply one webhook delivery from Telnyx (webhook.c), as an
 * application's endpoint received it.
 */
Datum
telnyx_apply_webhook(PG_FUNCTION_ARGS)
{
	const char *names[3] = {"body", "signature", "timestamp"};
	char	   *args[3];
	int			i;

	store_require_version(false);
	for (i = 0; i < 3; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("\"%s\" must not be null", names[i])));
		args[i] = text_to_cstring(PG_GETARG_TEXT_PP(i));
	}
	PG_RETURN_JSONB_P(webhook_apply(args[0], args[1], args[2]));
}
