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
 * Telnyx exists even if that transaction later rolls back;
 * telnyx_sync_inexplicit_orders() brings the record back.
 *
 * The queued functions (enqueue, the trigger) only write a request row
 * through queue.c; worker.c sends it after commit, along the same path.
 * This file also loads the module: settings, libcurl, the workers, and the
 * log hook that keeps the API key out of every message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

#include "api.h"
#include "http.h"
#include "queue.h"
#include "store.h"
#include "telnyx_orders.h"
#include "validate.h"
#include "worker.h"

PG_MODULE_MAGIC;

/*---- GUC variables ----*/

char	   *telnyx_api_key = NULL;
char	   *telnyx_api_base_url = NULL;
char	   *telnyx_ca_file = NULL;
int			telnyx_timeout_ms = 30000;
int			telnyx_connect_timeout_ms = 10000;
int			telnyx_max_retries = 2;
int			telnyx_max_response_size = 10 * 1024 * 1024;

/*---- Local variables ----*/

static emit_log_hook_type prev_emit_log_hook = NULL;

/*---- Function declarations ----*/

void		_PG_init(void);

PG_FUNCTION_INFO_V1(telnyx_create_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_get_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_list_inexplicit_orders);
PG_FUNCTION_INFO_V1(telnyx_sync_inexplicit_orders);
PG_FUNCTION_INFO_V1(telnyx_enqueue_inexplicit_order);
PG_FUNCTION_INFO_V1(telnyx_order_trigger);
PG_FUNCTION_INFO_V1(telnyx_process_queue);

static void define_settings(void);
static bool check_api_key(char **newval, void **extra, GucSource source);
static bool check_api_base_url(char **newval, void **extra, GucSource source);
static bool key_is_valid(const char *key);
static const char *text_arg_or_null(FunctionCallInfo fcinfo, int argno);
static void redact_key_in_log(ErrorData *edata);
static Jsonb *row_to_jsonb(HeapTuple tuple, TupleDesc desc);
static char *redact(char *text, const char *secret);

/*
 * Module load: settings, then libcurl.
 */
void
_PG_init(void)
{
	define_settings();
	http_init();
	if (process_shared_preload_libraries_in_progress)
		worker_init();

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_key_in_log;
}

/*
 * PostgreSQL itself may write the key into a message: a reload logs
 * "parameter \"telnyx.api_key\" changed to ...", and log_statement logs a
 * SET of it.  Every message that passes through a process that loaded us
 * has the key replaced before it is logged or sent.  (Loaded through
 * shared_preload_libraries, that includes the postmaster.)
 */
static void
redact_key_in_log(ErrorData *edata)
{
	const char *secrets[2];
	int			i;

	secrets[0] = telnyx_api_key;
	secrets[1] = getenv("TELNYX_API_KEY");
	for (i = 0; i < lengthof(secrets); i++)
	{
		const char *secret = secrets[i];

		/* a short value would redact innocent text, and cannot be a key */
		if (secret == NULL || strlen(secret) < 8)
			continue;
		edata->message = redact(edata->message, secret);
		edata->detail = redact(edata->detail, secret);
		edata->detail_log = redact(edata->detail_log, secret);
		edata->hint = redact(edata->hint, secret);
		edata->context = redact(edata->context, secret);
		edata->internalquery = redact(edata->internalquery, secret);
	}

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* text with every occurrence of secret replaced; text itself if none. */
static char *
redact(char *text, const char *secret)
{
	StringInfoData buf;
	size_t		len = strlen(secret);
	char	   *p;
	char	   *hit;

	if (text == NULL || (hit = strstr(text, secret)) == NULL)
		return text;

	initStringInfo(&buf);
	for (p = text; hit != NULL; p = hit + len, hit = strstr(p, secret))
	{
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, "********");
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

static void
define_settings(void)
{
	DefineCustomStringVariable("telnyx.api_key",
							   "Telnyx API key (V2) sent as a bearer token.",
							   "When empty, the server's TELNYX_API_KEY environment variable is used.",
							   &telnyx_api_key,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   check_api_key, NULL, NULL);

	DefineCustomStringVariable("telnyx.api_base_url",
							   "Base URL of the Telnyx API.",
							   "The API key is sent here: https only, or http to a loopback address.",
							   &telnyx_api_base_url,
							   TELNYX_DEFAULT_BASE_URL,
							   PGC_SUSET,
							   0,
							   check_api_base_url, NULL, NULL);

	DefineCustomStringVariable("telnyx.ca_file",
							   "File of CA certificates trusted to verify the API's TLS certificate.",
							   "When empty, the system's CA bundle is used.",
							   &telnyx_ca_file,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.timeout",
							"Longest time one API request may take.",
							NULL,
							&telnyx_timeout_ms,
							30000, 100, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.connect_timeout",
							"Longest time to connect to the API.",
							NULL,
							&telnyx_connect_timeout_ms,
							10000, 100, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.max_retries",
							"Retries of a request that failed in a way that is safe to retry.",
							NULL,
							&telnyx_max_retries,
							2, 0, 10,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.max_response_size",
							"Largest API response accepted.",
							NULL,
							&telnyx_max_response_size,
							10 * 1024 * 1024, 1024, (int) MaxAllocSize - 1,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.reconcile_delay",
							"Time to wait before looking up an order whose outcome is unknown.",
							"An order Telnyx is still processing must show up in the list before the request is judged lost.",
							&telnyx_reconcile_delay_ms,
							10000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("telnyx.database",
							   "Databases whose queue the background worker sends (comma-separated).",
							   NULL,
							   &telnyx_database,
							   "postgres",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.worker_naptime",
							"Longest time the background worker sleeps between looks at the queue.",
							NULL,
							&telnyx_worker_naptime_ms,
							1000, 10, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.worker_concurrency",
							"Order requests the background worker keeps in flight at once.",
							NULL,
							&telnyx_worker_concurrency,
							16, 1, HTTP_MAX_CONCURRENCY,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("telnyx");
}

/* The key goes into a header line: no control characters, no spaces. */
static bool
key_is_valid(const char *key)
{
	const unsigned char *p;

	for (p = (const unsigned char *) key; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static bool
check_api_key(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && !key_is_valid(*newval))
	{
		/* never echo the value */
		GUC_check_errmsg("invalid value for parameter \"telnyx.api_key\"");
		GUC_check_errdetail("An API key cannot contain spaces or control characters.");
		return false;
	}
	return true;
}

static bool
check_api_base_url(char **newval, void **extra, GucSource source)
{
	const char *why;

	if (*newval == NULL || !http_base_url_allowed(*newval, &why))
	{
		GUC_check_errdetail("%s", *newval == NULL ? "A URL is required." : why);
		return false;
	}
	return true;
}

/*
 * telnyx_api_key_value
 *		The key to send, or NULL when none is configured.
 */
const char *
telnyx_api_key_value(void)
{
	const char *key = telnyx_api_key;

	if (key == NULL || key[0] == '\0')
		key = getenv("TELNYX_API_KEY");
	if (key == NULL || key[0] == '\0')
		return NULL;
	if (!key_is_valid(key))
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("the Telnyx API key in TELNYX_API_KEY is not valid"),
				 errdetail("An API key cannot contain spaces or control characters.")));
	return key;
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
	TelnyxResult *result;
	TelnyxOrder *order;

	fields.connection_id = text_arg_or_null(fcinfo, 1);
	fields.messaging_profile_id = text_arg_or_null(fcinfo, 2);
	fields.customer_reference = text_arg_or_null(fcinfo, 3);
	fields.billing_group_id = text_arg_or_null(fcinfo, 4);

	request = validate_order_request(groups, &fields);

	/* one key for every attempt of this call */
	key = DatumGetCString(DirectFunctionCall1(uuid_out,
											  DirectFunctionCall1(gen_random_uuid, (Datum) 0)));

	result = api_create_inexplicit_order(request, key);
	api_raise(result, "could not create inexplicit number order");

	order = api_parse_order(&result->data);
	store_order(order);

	PG_RETURN_JSONB_P(order->data);
}

/*
 * telnyx_get_inexplicit_order(id uuid) returns jsonb
 *
 * Fetch one order, refresh its rows, return Telnyx's "data".
 */
Datum
telnyx_get_inexplicit_order(PG_FUNCTION_ARGS)
{
	char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out,
														 PG_GETARG_DATUM(0)));
	TelnyxResult *result;
	TelnyxOrder *order;

	result = api_get_inexplicit_order(id);
	api_raise(result, psprintf("could not retrieve inexplicit number order \"%s\"", id));

	order = api_parse_order(&result->data);
	store_order(order);

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

	if (page_number < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"page_number\" must be at least 1")));
	if (page_size < 1 || page_size > TELNYX_MAX_PAGE_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"page_size\" must be between 1 and %d", TELNYX_MAX_PAGE_SIZE)));

	result = api_list_inexplicit_orders(page_number, page_size);
	api_raise(result, "could not list inexplicit number orders");

	PG_RETURN_JSONB_P(result->body);
}

/*
 * telnyx_sync_inexplicit_orders() returns bigint
 *
 * Walk every page of the list and upsert every order; return how many
 * orders were recorded.
 */
Datum
telnyx_sync_inexplicit_orders(PG_FUNCTION_ARGS)
{
	MemoryContext pagecxt;
	MemoryContext oldcxt;
	int64		count = 0;
	int			page;

	pagecxt = AllocSetContextCreate(CurrentMemoryContext,
									"telnyx_orders sync page",
									ALLOCSET_DEFAULT_SIZES);

	for (page = 1;; page++)
	{
		TelnyxResult *result;
		JsonbContainer *data;
		int			n;
		int			total_pages;
		int			i;

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(pagecxt);

		result = api_list_inexplicit_orders(page, TELNYX_MAX_PAGE_SIZE);
		api_raise(result, psprintf("could not list page %d of inexplicit number orders", page));

		data = result->data.val.binary.data;
		n = JsonContainerSize(data);
		for (i = 0; i < n; i++)
		{
			JsonbValue *elem = getIthJsonbValueFromContainer(data, i);
			TelnyxOrder *order = api_parse_order(elem);

			if (order != NULL)
			{
				store_order(order);
				count++;
			}
		}
		total_pages = api_list_total_pages(result);

		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(pagecxt);

		/* the last page: as Telnyx counts, or a short (or empty) page */
		if (n == 0 || (total_pages >= 0 ? page >= total_pages
					   : n < TELNYX_MAX_PAGE_SIZE))
			break;
	}

	MemoryContextDelete(pagecxt);
	PG_RETURN_INT64(count);
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

	PG_RETURN_INT64(queue_enqueue(groups, &fields));
}

/*
 * telnyx_order_trigger() returns trigger
 *
 * FOR EACH ROW on INSERT: queue one order per row (see
 * validate_row_request for how the row becomes an order).  As a BEFORE
 * trigger on a table with a bigint column "telnyx_request_id", stores the
 * request id there.
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
	int64		id;
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

	if (trigdata->tg_trigger->tgnargs == 1)
		defaults = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													  CStringGetDatum(trigdata->tg_trigger->tgargs[0])));

	row = row_to_jsonb(tuple, desc);
	groups = validate_row_request(row, defaults, &fields);
	id = queue_enqueue(groups, &fields);

	/* a BEFORE trigger links the row to its request */
	attnum = SPI_fnumber(desc, "telnyx_request_id");
	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event) && attnum > 0)
	{
		Datum		value = Int64GetDatum(id);
		bool		isnull = false;

		if (TupleDescAttr(desc, attnum - 1)->atttypid != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"telnyx_request_id\" must be of type bigint")));
		tuple = heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &value, &isnull);
		return PointerGetDatum(tuple);
	}
	if (TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		return PointerGetDatum(tuple);
	return PointerGetDatum(NULL);
}

/* The row tuple (of a table with descriptor desc) as jsonb, as to_jsonb makes it. */
static Jsonb *
row_to_jsonb(HeapTuple tuple, TupleDesc desc)
{
	Oid			argtypes[1] = {desc->tdtypeid};
	Datum		values[1];
	bool		isnull;
	Datum		result;

	values[0] = heap_copy_tuple_as_datum(tuple, desc);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.to_jsonb($1)", 1, argtypes, values,
							  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not convert the row to jsonb");
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	return DatumGetJsonbP(result);
}

/*
 * telnyx_process_queue(max_requests integer) returns integer
 *
 * Send the due requests now, without waiting for the background worker
 * (or without one at all), and return how many were handled.
 */
Datum
telnyx_process_queue(PG_FUNCTION_ARGS)
{
	int			max_requests = -1;

	if (!PG_ARGISNULL(0))
	{
		max_requests = PG_GETARG_INT32(0);
		if (max_requests < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"max_requests\" must not be negative")));
	}
	PG_RETURN_INT32(worker_process_queue(max_requests));
}
