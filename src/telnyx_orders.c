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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

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
#include "store.h"
#include "telnyx_orders.h"
#include "validate.h"

PG_MODULE_MAGIC;

/* Largest page the list endpoint serves; sync walks pages of this size. */
#define TELNYX_MAX_PAGE_SIZE 250

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

static void define_settings(void);
static bool check_api_key(char **newval, void **extra, GucSource source);
static bool check_api_base_url(char **newval, void **extra, GucSource source);
static bool key_is_valid(const char *key);
static const char *text_arg_or_null(FunctionCallInfo fcinfo, int argno);
static void redact_key_in_log(ErrorData *edata);
static char *redact(char *text, const char *secret);

/*
 * Module load: settings, then libcurl.
 */
void
_PG_init(void)
{
	define_settings();
	http_init();

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
