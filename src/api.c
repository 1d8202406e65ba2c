/*-------------------------------------------------------------------------
 *
 * api.c
 *	  What telnyx_orders knows of the Telnyx API: paths, request bodies,
 *	  the shape of answers, and what each answer means.
 *
 * Every answer is turned into one TelnyxResult class (see api.h).  The
 * classification is where "never order twice" is decided: for the create
 * POST, any answer that does not prove what happened (a timeout or reset
 * after sending, a 5xx, a 2xx we cannot read) is TELNYX_UNKNOWN, never
 * something to retry.
 *
 * Answers are parsed defensively, as the spec marks no field required: a
 * field that is missing or of the wrong type is treated as absent, never as
 * an error.  The exceptions are what would make the record wrong rather
 * than incomplete: an id, a count that is not an integer we can keep
 * exactly, a number order or phone number we could not key.  An answer
 * with one of those is malformed as a whole, and nothing of it is
 * recorded.  Nothing in an answer can make us raise an error other than the
 * ones in api_raise.  JSON is parsed with PostgreSQL's jsonb, behind a
 * check that the bytes are valid in the database encoding.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "api.h"
#include "apikey.h"
#include "compat.h"
#include "http.h"
#include "errcodes.h"

/*---- Function declarations ----*/

static TelnyxResult *api_call(const HttpRequest *req, bool data_is_array);
static TelnyxResult *api_classify(const HttpRequest *req, const HttpResponse *resp,
								  bool data_is_array);
static Jsonb *api_parse_json(const char *body, size_t len);
static void api_parse_errors(TelnyxResult *r);
static JsonbValue *get_field(JsonbContainer *obj, const char *key, JsonbValue *buf);
static char *get_string(JsonbContainer *obj, const char *key);
static JsonbContainer *get_container(JsonbContainer *obj, const char *key, bool array);
static bool get_container_value(JsonbContainer *obj, const char *key, bool array,
								JsonbValue *result);
static OptInt get_int(JsonbContainer *obj, const char *key);
static OptBool get_bool(JsonbContainer *obj, const char *key);
static OptTimestamp get_timestamp(JsonbContainer *obj, const char *key);
static char *get_uuid(JsonbContainer *obj, const char *key);
static char *get_id(JsonbContainer *obj, const char *key);
static List *get_string_array(JsonbContainer *obj, const char *key,
							  bool *present);
static TelnyxGroup *api_parse_group(JsonbContainer *g, int index,
									const char **why);
static TelnyxPhoneNumber *api_parse_phone_number(const JsonbValue *value);
static bool same_id(const char *a, const char *b);
static TelnyxResult *api_get_one(const char *prefix, const char *id,
								 bool number_order);
static bool parse_timestamptz(const char *s, TimestampTz *result);

/*---- Local types ----*/

/* One row of the result-class table. */
typedef struct ApiClassInfo
{
	const char *name;			/* in a queue's last_error */
	int			sqlerrcode;		/* raised by api_raise */
	const char *sentence;		/* what happened, first line of the DETAIL */
	const char *hint;			/* or NULL */
	bool		counts_attempts;	/* the DETAIL says how many were made */
	ApiDisposition create_disposition;	/* a queue's answer to a create */
} ApiClassInfo;

/*---- Local variables ----*/

/*
 * The one table of result classes: for each, its name, its SQLSTATE, the
 * sentence and hint of its error, and what a queue does with a create
 * that ended so.  Anything that may have created the order is unknown,
 * never retried blindly; a configuration fault (a refused key, no such
 * endpoint) pauses the queue; only what provably never reached Telnyx is
 * sent again as is.
 */
static const ApiClassInfo api_classes[] = {
	[TELNYX_OK] = {"ok", 0, NULL, NULL, false, API_CREATED},
	[TELNYX_REJECTED] = {"rejected", ERRCODE_TELNYX_REJECTED,
		gettext_noop("Telnyx rejected the request."), NULL, false, API_FAILED},
	[TELNYX_NOT_FOUND] = {"not_found", ERRCODE_TELNYX_NOT_FOUND,
		gettext_noop("Not found at Telnyx."), NULL, false, API_PAUSE},
	[TELNYX_AUTH] = {"auth", ERRCODE_TELNYX_AUTH,
		gettext_noop("Telnyx did not accept the API key."),
		NULL,					/* telnyx_api_key_refused_hint() */
	false, API_PAUSE},
	[TELNYX_RATE_LIMITED] = {"rate_limited", ERRCODE_TELNYX_RATE_LIMITED,
		gettext_noop("Rate limited by Telnyx."),
		gettext_noop("Try again later, or raise telnyx.max_retries."),
	true, API_RATE_LIMITED},
	[TELNYX_SERVER_ERROR] = {"server_error", ERRCODE_TELNYX_SERVER_ERROR,
		gettext_noop("Telnyx server error."), NULL, true, API_UNKNOWN},
	[TELNYX_NOT_SENT] = {"not_sent", ERRCODE_TELNYX_TRANSPORT,
		gettext_noop("Could not reach Telnyx."), NULL, false, API_SEND_AGAIN},
	[TELNYX_TRANSPORT] = {"transport", ERRCODE_TELNYX_TRANSPORT,
		gettext_noop("Could not reach Telnyx."), NULL, false, API_UNKNOWN},
	[TELNYX_UNKNOWN] = {"unknown", ERRCODE_TELNYX_UNKNOWN_OUTCOME,
		gettext_noop("The outcome is unknown: the order may exist at Telnyx."),
		gettext_noop("Run \"SELECT telnyx_sync_inexplicit_orders()\" and look for the order in telnyx_inexplicit_orders before ordering again."),
	false, API_UNKNOWN},
	[TELNYX_TOO_LARGE] = {"too_large", ERRCODE_TELNYX_TOO_LARGE,
		gettext_noop("The answer from Telnyx is too large."),
		gettext_noop("Raise telnyx.max_response_size."), false, API_UNKNOWN},
	[TELNYX_MALFORMED] = {"malformed", ERRCODE_TELNYX_MALFORMED,
		gettext_noop("The answer from Telnyx is malformed."), NULL, false, API_UNKNOWN},
	[TELNYX_LIST_UNENDED] = {"list_unended", ERRCODE_TELNYX_LIST_UNENDED,
		gettext_noop("The list of orders was not read to its end."),
		gettext_noop("Nothing was concluded from the pages read; try again later."),
	false, API_UNKNOWN},
};

StaticAssertDecl(lengthof(api_classes) == TELNYX_NUM_CLASSES,
				 "every result class has a row");

/*
 * api_create_inexplicit_order
 *		POST /inexplicit_number_orders with request (from
 *		validate_order_request).  Never retried once it may have reached
 *		Telnyx.
 */
TelnyxResult *
api_create_inexplicit_order(const char *request, const char *idempotency_key)
{
	HttpRequest req;
	HttpResponse resp;

	api_create_request(&req, request, idempotency_key);
	http_perform(&req, &resp);
	return api_create_result(&req, &resp);
}

/*
 * api_create_request
 *		Fill req with the create POST of request, the exact bytes of a body
 *		from validate_order_request (api_request_text).  Not idempotent:
 *		never resent once it may have reached Telnyx, except by
 *		reconciliation, with the same bytes and the same key.
 */
void
api_create_request(HttpRequest *req, const char *request, const char *idempotency_key)
{
	if (!api_idempotency_key_valid(idempotency_key))
		elog(ERROR, "invalid idempotency key");
	req->method = HTTP_POST;
	req->path = "/inexplicit_number_orders";
	req->body = request;
	req->idempotency_key = idempotency_key;
	req->idempotent = false;
}

/*
 * api_request_text
 *		The bytes to send for a request body: jsonb's canonical text.
 */
char *
api_request_text(Jsonb *request)
{
	return JsonbToCString(NULL, &request->root, VARSIZE(request));
}

/*
 * api_idempotency_key_valid
 *		Is key what Telnyx accepts as an Idempotency-Key: 1 to 255 of
 *		[A-Za-z0-9_:-]?
 */
bool
api_idempotency_key_valid(const char *key)
{
	size_t		len = key ? strlen(key) : 0;
	size_t		i;

	if (len < 1 || len > 255)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char) key[i]) && strchr("_:-", key[i]) == NULL)
			return false;
	return true;
}

/*
 * api_create_result
 *		Classify the answer to a create.  An order we cannot identify is an
 *		order we cannot record: its outcome is unknown.
 */
TelnyxResult *
api_create_result(const HttpRequest *req, const HttpResponse *resp)
{
	TelnyxResult *r = api_classify(req, resp, false);
	const char *why;

	if (r->class == TELNYX_OK &&
		(r->order = api_parse_order(&r->data, &why)) == NULL)
	{
		r->class = TELNYX_UNKNOWN;
		r->why = psprintf("Telnyx accepted the request, but its answer cannot be recorded: %s",
						  why);
	}
	return r;
}

/* GET /inexplicit_number_orders/{id}; id is percent-encoded. */
TelnyxResult *
api_get_inexplicit_order(const char *id)
{
	return api_get_one("/inexplicit_number_orders/", id, false);
}

/* GET /number_orders/{id}; id is percent-encoded. */
TelnyxResult *
api_get_number_order(const char *id)
{
	return api_get_one("/number_orders/", id, true);
}

/*
 * GET prefix + id.  The answer must be an order (or, with number_order, a
 * number order) that can be recorded, and the one asked for; it is kept
 * parsed in the result.
 */
static TelnyxResult *
api_get_one(const char *prefix, const char *id, bool number_order)
{
	HttpRequest req;
	TelnyxResult *r;
	const char *found = NULL;
	const char *why = NULL;

	req.method = HTTP_GET;
	req.path = psprintf("%s%s", prefix, api_path_escape(id));
	req.body = NULL;
	req.idempotency_key = NULL;
	req.idempotent = true;

	r = api_call(&req, false);
	if (r->class != TELNYX_OK)
		return r;
	if (number_order)
	{
		r->number_order = api_parse_number_order(&r->data, &why);
		found = r->number_order ? r->number_order->id : NULL;
	}
	else
	{
		r->order = api_parse_order(&r->data, &why);
		found = r->order ? r->order->id : NULL;
	}
	if (found == NULL)
	{
		r->class = TELNYX_MALFORMED;
		r->why = pstrdup(why);
	}
	else if (!same_id(found, id))
	{
		r->class = TELNYX_MALFORMED;
		r->why = psprintf("Telnyx's answer is for another %s than the one asked for.",
						  number_order ? "number order" : "order");
	}
	return r;
}

/* Are two ids the same (uuids in any case)? */
static bool
same_id(const char *a, const char *b)
{
	return strcmp(a, b) == 0 ||
		(api_is_uuid(a, strlen(a)) && pg_strcasecmp(a, b) == 0);
}

/* GET /inexplicit_number_orders?page_number=&page_size= */
TelnyxResult *
api_list_inexplicit_orders(int page_number, int page_size)
{
	HttpRequest req;

	req.method = HTTP_GET;
	req.path = psprintf("/inexplicit_number_orders?page_number=%d&page_size=%d",
						page_number, page_size);
	req.body = NULL;
	req.idempotency_key = NULL;
	req.idempotent = true;

	return api_call(&req, true);
}

/*
 * api_list_total_pages
 *		meta.total_pages of a list answer, or -1 when Telnyx did not say.
 */
int
api_list_total_pages(const TelnyxResult *result)
{
	JsonbContainer *meta;
	OptInt		total;

	if (result->body == NULL || !JB_ROOT_IS_OBJECT(result->body))
		return -1;
	meta = get_container(&result->body->root, "meta", false);
	if (meta == NULL)
		return -1;
	total = get_int(meta, "total_pages");
	return total.present ? total.value : -1;
}

/*
 * api_each_page
 *		Read the whole list of orders, page by page (api_walk_next), and
 *		call fn for each page.  Every page lives in a memory context of its
 *		own, reset before the next one is read, so memory stays bounded by
 *		one page (and a signature a page): what fn keeps, it copies
 *		elsewhere.
 *
 * Returns NULL only when the list was read to a proven end (an empty page,
 * or the last page Telnyx counts), else the result that stopped it,
 * allocated under the caller's memory context: a walk that stops without
 * a proven end is a failure, so that nobody concludes from it that an
 * order is absent.
 */
TelnyxResult *
api_each_page(ApiPageCallback fn, void *arg)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext pagecxt;
	ApiListWalk walk;

	pagecxt = AllocSetContextCreate(callercxt, "telnyx_orders list page",
									ALLOCSET_DEFAULT_SIZES);
	api_walk_begin(&walk, callercxt);
	while (walk.end == API_LIST_UNDER_WAY)
	{
		TelnyxResult *r;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(pagecxt);
		r = api_walk_next(&walk, fn, arg);
		MemoryContextSwitchTo(callercxt);
		if (r != NULL)
		{
			api_walk_finish(&walk);
			return r;			/* the page's context lives on with the
								 * caller's */
		}
		MemoryContextReset(pagecxt);
	}
	ereport(DEBUG1,
			(errmsg_internal("telnyx_orders read the list of orders: %s",
							 api_list_end_text(&walk))));
	api_walk_finish(&walk);
	MemoryContextDelete(pagecxt);
	return NULL;
}

/*
 * api_walk_begin
 *		Start a walk over the list of orders from page 1; its page
 *		signatures are kept in cxt until api_walk_finish.
 */
void
api_walk_begin(ApiListWalk *walk, MemoryContext cxt)
{
	memset(walk, 0, sizeof(*walk));
	walk->page = 1;
	walk->end = API_LIST_UNDER_WAY;
	walk->bound = API_LIST_PAGES_WITHOUT_META;
	walk->total_pages = -1;
	walk->cxt = cxt;
}

/* api_walk_finish: free what a walk keeps. */
void
api_walk_finish(ApiListWalk *walk)
{
	if (walk->signatures != NULL)
		pfree(walk->signatures);
	walk->signatures = NULL;
	walk->maxpages = 0;
}

/*
 * api_walk_next
 *		Read the walk's next page and call fn with its parsed orders
 *		(TelnyxOrder *) and the elements that could not be parsed
 *		(JsonbValue *), then decide whether the walk stops (walk->end):
 *
 *		- an empty page, or the last page as meta.total_pages counts them:
 *		  the list's end, proven;
 *		- a page with the same ids as a page read before (a server that
 *		  ignores page_number, or serves its last page again): the pages
 *		  would come round for ever;
 *		- more pages than what was read allows: twice the pages the first
 *		  meta announced, plus API_LIST_SLACK_PAGES for orders created
 *		  meanwhile, or API_LIST_PAGES_WITHOUT_META when no page said.
 *
 *		A short page proves nothing by itself (a server may serve fewer
 *		than asked for).  Returns NULL while the walk goes on or ends
 *		proven, else the result that failed: the page's, or a
 *		TELNYX_LIST_UNENDED one saying why the walk stopped.  Allocates in
 *		the current memory context, except the signatures (walk->cxt).
 */
TelnyxResult *
api_walk_next(ApiListWalk *walk, ApiPageCallback fn, void *arg)
{
	TelnyxResult *r;
	JsonbContainer *data;
	List	   *orders = NIL;
	List	   *unparsed = NIL;
	uint64		sum = 0;
	uint64		signature;
	int			total_pages;
	int			n;
	int			i;

	Assert(walk->end == API_LIST_UNDER_WAY);
	if (walk->page > Min(walk->bound, API_MAX_LIST_PAGES))
	{
		walk->end = API_LIST_BOUND_REACHED;
		r = palloc0(sizeof(TelnyxResult));
		r->class = TELNYX_LIST_UNENDED;
		r->wait_ms = -1;
		r->why = walk->counted ?
			psprintf("The list did not end after %d pages, more than its first page announced.",
					 walk->page - 1) :
			psprintf("The list did not end after %d pages, and no page said how many there are.",
					 walk->page - 1);
		return r;
	}
	r = api_list_inexplicit_orders(walk->page, TELNYX_MAX_PAGE_SIZE);
	if (r->class != TELNYX_OK)
	{
		walk->end = API_LIST_FAILED;
		return r;
	}

	data = r->data.val.binary.data;
	n = JsonContainerSize(data);
	for (i = 0; i < n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(data, i);
		TelnyxOrder *order = api_parse_order(elem, NULL);

		/* the same ids in any order make the same sum */
		if (order != NULL)
		{
			orders = lappend(orders, order);
			sum += hash_bytes_extended((const unsigned char *) order->id,
									   strlen(order->id), 0);
		}
		else
		{
			Jsonb	   *raw = JsonbValueToJsonb(elem);

			unparsed = lappend(unparsed, elem);
			sum += hash_bytes_extended((const unsigned char *) VARDATA(raw),
									   VARSIZE(raw) - VARHDRSZ, 1);
		}
	}
	total_pages = api_list_total_pages(r);
	if (total_pages >= 0)
		walk->total_pages = total_pages;
	fn(orders, unparsed, arg);

	if (total_pages >= 0 && !walk->counted)
	{
		walk->counted = true;
		walk->bound = (int) Min((int64) total_pages * 2 + API_LIST_SLACK_PAGES,
								(int64) API_MAX_LIST_PAGES);
	}
	if (n == 0)
	{
		walk->end = API_LIST_EMPTY_PAGE;
		return NULL;
	}

	/* before the count: a page served again proves no end, even the last */
	signature = hash_combine64(sum, (uint64) n);
	for (i = 0; i < walk->npages; i++)
	{
		if (walk->signatures[i] != signature)
			continue;
		walk->end = API_LIST_REPEATED;
		r = palloc0(sizeof(TelnyxResult));
		r->class = TELNYX_LIST_UNENDED;
		r->wait_ms = -1;
		r->why = psprintf("Page %d of the list holds the same orders as page %d.",
						  walk->page, i + 1);
		return r;
	}
	if (total_pages >= 0 && walk->page >= total_pages)
	{
		walk->end = API_LIST_LAST_PAGE;
		return NULL;
	}
	if (walk->npages == walk->maxpages)
	{
		walk->maxpages = Max(16, walk->maxpages * 2);
		walk->signatures = walk->signatures == NULL ?
			MemoryContextAlloc(walk->cxt, walk->maxpages * sizeof(uint64)) :
			repalloc(walk->signatures, walk->maxpages * sizeof(uint64));
	}
	walk->signatures[walk->npages++] = signature;
	walk->page++;
	return NULL;
}

/*
 * api_list_end_text
 *		How a walk over the list stopped, in words, for a log line.
 */
const char *
api_list_end_text(const ApiListWalk *walk)
{
	switch (walk->end)
	{
		case API_LIST_UNDER_WAY:
			return "under way";
		case API_LIST_EMPTY_PAGE:
			return psprintf("read to its end, an empty page (page %d)", walk->page);
		case API_LIST_LAST_PAGE:
			return psprintf("read to its end, the last page Telnyx counts (page %d)",
							walk->page);
		case API_LIST_FAILED:
			return psprintf("page %d could not be read", walk->page);
		case API_LIST_REPEATED:
			return psprintf("not read to its end, page %d repeats an earlier page",
							walk->page);
		case API_LIST_BOUND_REACHED:
			return psprintf("not read to its end, stopped after %d pages",
							walk->page - 1);
	}
	return "";
}

/* Send req, with the retries http.c allows, and classify the answer. */
static TelnyxResult *
api_call(const HttpRequest *req, bool data_is_array)
{
	HttpResponse resp;

	http_perform(req, &resp);
	return api_classify(req, &resp, data_is_array);
}

/*
 * Classify an answer.  A 2xx must be a JSON object whose "data" is an
 * object (or, with data_is_array, an array).
 */
static TelnyxResult *
api_classify(const HttpRequest *req, const HttpResponse *respp, bool data_is_array)
{
	HttpResponse resp = *respp;
	TelnyxResult *r = palloc0(sizeof(TelnyxResult));
	bool		unsafe = !req->idempotent;
	char	   *fault = http_fault_sentence(resp.fault);

	r->status = resp.status;
	r->attempts = resp.attempts;
	r->wait_ms = resp.wait_ms;

	switch (resp.outcome)
	{
		case HTTP_NOT_SENT:
			r->class = TELNYX_NOT_SENT;
			r->why = psprintf("%s%sThe request did not reach Telnyx: %s.",
							  fault ? fault : "", fault ? "\n" : "",
							  resp.transport_error);
			r->hint = http_fault_hint(resp.fault);
			return r;

		case HTTP_FAILED_AFTER_SEND:
			r->class = unsafe ? TELNYX_UNKNOWN : TELNYX_TRANSPORT;
			r->why = psprintf("%s%sThe connection failed after the request was sent: %s.",
							  fault ? fault : "", fault ? "\n" : "",
							  resp.transport_error);
			/* an unknown outcome's hint (look for the order) comes first */
			if (r->class == TELNYX_TRANSPORT)
				r->hint = http_fault_hint(resp.fault);
			return r;

		case HTTP_TOO_LARGE:
			r->class = TELNYX_TOO_LARGE;
			if (unsafe && !(resp.status >= 400 && resp.status < 500))
				r->class = TELNYX_UNKNOWN;
			r->why = psprintf("The answer (HTTP status %ld) is larger than telnyx.max_response_size (%d bytes).",
							  resp.status, telnyx_max_response_size);
			return r;

		case HTTP_COMPLETE:
			break;
	}

	r->body = api_parse_json(resp.body, resp.body_len);
	api_parse_errors(r);

	if (resp.status >= 200 && resp.status < 300)
	{
		if (r->body != NULL && JB_ROOT_IS_OBJECT(r->body) &&
			get_container_value(&r->body->root, "data", data_is_array, &r->data))
			r->class = TELNYX_OK;
		else
		{
			r->class = unsafe ? TELNYX_UNKNOWN : TELNYX_MALFORMED;
			r->why = psprintf("Telnyx answered with HTTP status %ld, but the body is not a JSON object with \"data\".",
							  resp.status);
		}
		return r;
	}

	switch (resp.status)
	{
		case 401:
		case 403:
			r->class = TELNYX_AUTH;
			break;
		case 404:
			r->class = TELNYX_NOT_FOUND;
			break;
		case 429:
			r->class = TELNYX_RATE_LIMITED;
			break;
		case 408:
		case 409:
			/* the request may still be processed, or have been */
			r->class = unsafe ? TELNYX_UNKNOWN : TELNYX_SERVER_ERROR;
			break;
		default:
			if (resp.status >= 500)
				r->class = unsafe ? TELNYX_UNKNOWN : TELNYX_SERVER_ERROR;
			else if (resp.status >= 400)
				r->class = TELNYX_REJECTED;
			else
				r->class = unsafe ? TELNYX_UNKNOWN : TELNYX_MALFORMED;
			break;
	}
	r->why = psprintf("Telnyx answered with HTTP status %ld.", resp.status);
	return r;
}

/*
 * Parse body as JSON; NULL if it is not valid JSON in the database
 * encoding.  jsonb_in can still refuse valid JSON (a number beyond
 * numeric's range, nesting beyond the stack limit); such data exceptions
 * are caught and count as "not JSON", any other error is passed on.
 */
static Jsonb *
api_parse_json(const char *body, size_t len)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	Jsonb	   *volatile result = NULL;

	if (len == 0 || len > (size_t) MaxAllocSize - 1 ||
		!pg_verifymbstr(body, (int) len, true))
		return NULL;

	PG_TRY();
	{
		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			edata->sqlerrcode != ERRCODE_STATEMENT_TOO_COMPLEX &&
			ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			PG_RE_THROW();
		FlushErrorState();
		FreeErrorData(edata);
		result = NULL;
	}
	PG_END_TRY();

	return result;
}

/*
 * Fill r's error fields from a Telnyx error body:
 * {"errors": [{"code", "title", "detail", "source": {"pointer",
 * "parameter"}}]}.  Every field may be missing.
 */
static void
api_parse_errors(TelnyxResult *r)
{
	JsonbContainer *errors;
	StringInfoData buf;
	int			n;
	int			i;

	if (r->body == NULL || !JB_ROOT_IS_OBJECT(r->body))
		return;
	errors = get_container(&r->body->root, "errors", true);
	if (errors == NULL)
		return;

	initStringInfo(&buf);
	n = JsonContainerSize(errors);
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(errors, i);
		JsonbContainer *obj;
		JsonbContainer *source;
		char	   *code;
		char	   *title;
		char	   *detail;
		char	   *pointer = NULL;
		char	   *parameter = NULL;

		if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			continue;
		obj = e->val.binary.data;
		code = get_string(obj, "code");
		title = get_string(obj, "title");
		detail = get_string(obj, "detail");
		source = get_container(obj, "source", false);
		if (source != NULL)
		{
			pointer = get_string(source, "pointer");
			parameter = get_string(source, "parameter");
		}

		if (r->error_code == NULL && r->error_title == NULL && r->error_detail == NULL)
		{
			r->error_code = code;
			r->error_title = title;
			r->error_detail = detail;
			r->error_pointer = pointer;
		}

		if (buf.len > 0)
			appendStringInfoChar(&buf, '\n');
		appendStringInfoString(&buf, "Telnyx error");
		if (code != NULL)
			appendStringInfo(&buf, " %s", code);
		if (title != NULL)
			appendStringInfo(&buf, " \"%s\"", title);
		if (detail != NULL)
			appendStringInfo(&buf, ": %s", detail);
		else
			appendStringInfoChar(&buf, '.');
		if (pointer != NULL)
			appendStringInfo(&buf, " (source: %s)", pointer);
		else if (parameter != NULL)
			appendStringInfo(&buf, " (parameter: %s)", parameter);
	}
	if (buf.len > 0)
		r->telnyx_errors = buf.data;
}

/*
 * api_raise
 *		Raise the error for a result that is not TELNYX_OK.  The primary
 *		message says which call failed (action; id for API_GET); the DETAIL
 *		says what happened (the class's sentence, our explanation, Telnyx's
 *		errors), the SQLSTATE and hint come from the class's row.
 */
void
api_raise(const TelnyxResult *r, ApiAction action, const char *id)
{
	const ApiClassInfo *c = &api_classes[r->class];
	StringInfoData detail;
	const char *hint;

	if (r->class == TELNYX_OK)
		return;
	if (r->hint != NULL)
		hint = r->hint;
	else if (r->class == TELNYX_AUTH)
		hint = telnyx_api_key_refused_hint();
	else
		hint = c->hint ? _(c->hint) : NULL;

	initStringInfo(&detail);
	appendStringInfoString(&detail, _(c->sentence));
	if (r->why != NULL)
		appendStringInfo(&detail, "\n%s", r->why);
	if (r->telnyx_errors != NULL)
		appendStringInfo(&detail, "\n%s", r->telnyx_errors);
	if (c->counts_attempts)
		appendStringInfo(&detail, _("\nGave up after %d attempts."), r->attempts);

	switch (action)
	{
		case API_CREATE:
			ereport(ERROR,
					(errcode(c->sqlerrcode),
					 errmsg("could not create inexplicit number order"),
					 errdetail_internal("%s", detail.data),
					 hint ? errhint("%s", hint) : 0));
			break;
		case API_GET:
			ereport(ERROR,
					(errcode(c->sqlerrcode),
					 errmsg("could not retrieve inexplicit number order \"%s\"", id),
					 errdetail_internal("%s", detail.data),
					 hint ? errhint("%s", hint) : 0));
			break;
		case API_LIST:
			ereport(ERROR,
					(errcode(c->sqlerrcode),
					 errmsg("could not list inexplicit number orders"),
					 errdetail_internal("%s", detail.data),
					 hint ? errhint("%s", hint) : 0));
			break;
		case API_GET_NUMBER_ORDER:
			ereport(ERROR,
					(errcode(c->sqlerrcode),
					 errmsg("could not retrieve number order \"%s\"", id),
					 errdetail_internal("%s", detail.data),
					 hint ? errhint("%s", hint) : 0));
			break;
	}
}

/*
 * api_create_disposition
 *		What a queue does with a create that ended in this class.
 */
ApiDisposition
api_create_disposition(TelnyxResultClass class)
{
	return api_classes[class].create_disposition;
}

/*
 * api_parse_order
 *		Read an InexplicitNumberOrderResponse object.  Returns NULL, with
 *		*why (when why is not NULL) saying why, when it cannot be recorded:
 *		no valid id, a count that is not an integer from 0 to PG_INT32_MAX,
 *		a number order without a valid id.  Any other field may be missing.
 */
TelnyxOrder *
api_parse_order(const JsonbValue *value, const char **why)
{
	TelnyxOrder *o;
	JsonbContainer *data;
	JsonbContainer *groups;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	if (value->type != jbvBinary || !JsonContainerIsObject(value->val.binary.data))
	{
		*why = "The order in Telnyx's answer is not an object.";
		return NULL;
	}
	data = value->val.binary.data;

	o = palloc0(sizeof(TelnyxOrder));
	o->id = get_id(data, "id");
	if (o->id == NULL)
	{
		*why = "The order in Telnyx's answer has no valid id.";
		return NULL;
	}
	o->connection_id = get_string(data, "connection_id");
	o->messaging_profile_id = get_string(data, "messaging_profile_id");
	o->customer_reference = get_string(data, "customer_reference");
	o->billing_group_id = get_string(data, "billing_group_id");
	o->created_at = get_timestamp(data, "created_at");
	o->updated_at = get_timestamp(data, "updated_at");
	o->data = JsonbValueToJsonb((JsonbValue *) value);

	groups = get_container(data, "ordering_groups", true);
	o->ngroups = -1;
	if (groups != NULL)
	{
		int			n = JsonContainerSize(groups);
		int			i;

		o->ngroups = n;
		for (i = 0; i < n; i++)
		{
			JsonbValue *g = getIthJsonbValueFromContainer(groups, i);
			TelnyxGroup *grp;

			/* keep the index of every group, readable or not */
			if (g->type != jbvBinary || !JsonContainerIsObject(g->val.binary.data))
				continue;
			grp = api_parse_group(g->val.binary.data, i + 1, why);
			if (grp == NULL)
				return NULL;
			o->groups = lappend(o->groups, grp);
		}
	}
	return o;
}

/* An ordering group of an answer (or, with why NULL, of a request). */
static TelnyxGroup *
api_parse_group(JsonbContainer *g, int index, const char **why)
{
	TelnyxGroup *grp = palloc0(sizeof(TelnyxGroup));
	JsonbContainer *orders;

	grp->group_index = index;
	grp->country_iso = get_string(g, "country_iso");
	grp->phone_number_type = get_string(g, "phone_number_type");
	grp->national_destination_code = get_string(g, "national_destination_code");
	grp->administrative_area = get_string(g, "administrative_area");
	grp->locality = get_string(g, "locality");
	grp->features = get_string_array(g, "features", &grp->has_features);
	grp->starts_with = get_string(g, "phone_number[starts_with]");
	grp->ends_with = get_string(g, "phone_number[ends_with]");
	grp->contains = get_string(g, "phone_number[contains]");
	grp->strategy = get_string(g, "strategy");
	grp->quickship = get_bool(g, "quickship");
	grp->exclude_held_numbers = get_bool(g, "exclude_held_numbers");
	grp->count_requested = get_int(g, "count_requested");
	grp->count_allocated = get_int(g, "count_allocated");
	grp->status = get_string(g, "status");
	grp->error_reason = get_string(g, "error_reason");
	grp->created_at = get_timestamp(g, "created_at");
	grp->updated_at = get_timestamp(g, "updated_at");

	if (why == NULL)
		return grp;

	/* a count we cannot keep exactly would make the shortfall wrong */
	if (grp->count_requested.bad || grp->count_allocated.bad)
	{
		*why = psprintf("The %s of ordering group %d in Telnyx's answer is not an integer from 0 to %d.",
						grp->count_requested.bad ? "count_requested" : "count_allocated",
						index, PG_INT32_MAX);
		return NULL;
	}

	orders = get_container(g, "orders", true);
	grp->has_orders = orders != NULL;
	if (orders != NULL)
	{
		int			n = JsonContainerSize(orders);
		int			i;

		for (i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(orders, i);
			TelnyxNumberOrderRef *ref;
			char	   *id = NULL;

			if (e->type == jbvBinary && JsonContainerIsObject(e->val.binary.data))
				id = get_id(e->val.binary.data, "number_order_id");
			if (id == NULL)
			{
				*why = psprintf("Ordering group %d in Telnyx's answer lists a number order without a valid number_order_id.",
								index);
				return NULL;
			}
			ref = palloc0(sizeof(TelnyxNumberOrderRef));
			ref->number_order_id = id;
			ref->sub_number_order_ids = get_string_array(e->val.binary.data,
														 "sub_number_order_ids",
														 &ref->has_sub_number_order_ids);
			grp->orders = lappend(grp->orders, ref);
		}
	}
	return grp;
}

/*
 * api_merge_request
 *		Fill in what an order's answer leaves out from the request that
 *		created it (a body built by validate_order_request): Telnyx does not
 *		echo every criterion (locality, features, ...), and what was asked
 *		for is part of the record.
 */
void
api_merge_request(TelnyxOrder *order, Jsonb *request)
{
	JsonbContainer *root;
	JsonbContainer *groups;
	ListCell   *lc;

	if (request == NULL || !JB_ROOT_IS_OBJECT(request))
		return;
	root = &request->root;
	if (order->connection_id == NULL)
		order->connection_id = get_string(root, "connection_id");
	if (order->messaging_profile_id == NULL)
		order->messaging_profile_id = get_string(root, "messaging_profile_id");
	if (order->customer_reference == NULL)
		order->customer_reference = get_string(root, "customer_reference");
	if (order->billing_group_id == NULL)
		order->billing_group_id = get_string(root, "billing_group_id");

	groups = get_container(root, "ordering_groups", true);
	if (groups == NULL)
		return;
	foreach(lc, order->groups)
	{
		TelnyxGroup *g = (TelnyxGroup *) lfirst(lc);
		JsonbValue *e;
		TelnyxGroup *want;
		JsonbContainer *number;

		if (g->group_index > (int) JsonContainerSize(groups))
			break;
		e = getIthJsonbValueFromContainer(groups, g->group_index - 1);
		if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
			continue;
		want = api_parse_group(e->val.binary.data, g->group_index, NULL);
		number = get_container(e->val.binary.data, "phone_number", false);

#define FILL(field) if (g->field == NULL) g->field = want->field
		FILL(country_iso);
		FILL(phone_number_type);
		FILL(national_destination_code);
		FILL(administrative_area);
		FILL(locality);
		FILL(strategy);
#undef FILL
		if (g->starts_with == NULL)
			g->starts_with = get_string(number, "starts_with");
		if (g->ends_with == NULL)
			g->ends_with = get_string(number, "ends_with");
		if (g->contains == NULL)
			g->contains = get_string(number, "contains");
		if (!g->has_features && want->has_features)
		{
			g->features = want->features;
			g->has_features = true;
		}
		if (!g->quickship.present)
			g->quickship = want->quickship;
		if (!g->exclude_held_numbers.present)
			g->exclude_held_numbers = want->exclude_held_numbers;
		if (!g->count_requested.present && !want->count_requested.bad)
			g->count_requested = want->count_requested;
	}
}

/*
 * api_parse_number_order
 *		Read a NumberOrderWithPhoneNumbers object.  Returns NULL, with *why
 *		saying why, when it cannot be recorded: no valid id, a
 *		phone_numbers_count that is not an integer from 0 to PG_INT32_MAX, a
 *		number without a phone_number.  Statuses are free text.
 */
TelnyxNumberOrder *
api_parse_number_order(const JsonbValue *value, const char **why)
{
	TelnyxNumberOrder *no;
	JsonbContainer *data;
	JsonbContainer *numbers;

	if (value->type != jbvBinary || !JsonContainerIsObject(value->val.binary.data))
	{
		*why = "The number order in Telnyx's answer is not an object.";
		return NULL;
	}
	data = value->val.binary.data;

	no = palloc0(sizeof(TelnyxNumberOrder));
	no->id = get_id(data, "id");
	if (no->id == NULL)
	{
		*why = "The number order in Telnyx's answer has no valid id.";
		return NULL;
	}
	no->status = get_string(data, "status");
	no->phone_numbers_count = get_int(data, "phone_numbers_count");
	if (no->phone_numbers_count.bad)
	{
		*why = psprintf("The phone_numbers_count of number order \"%s\" in Telnyx's answer is not an integer from 0 to %d.",
						no->id, PG_INT32_MAX);
		return NULL;
	}
	no->requirements_met = get_bool(data, "requirements_met");
	no->customer_reference = get_string(data, "customer_reference");
	/* the spec spells it so here, unlike the bulk order's refs */
	no->sub_number_order_ids = get_string_array(data, "sub_number_orders_ids",
												&no->has_sub_number_order_ids);
	no->created_at = get_timestamp(data, "created_at");
	no->updated_at = get_timestamp(data, "updated_at");
	no->data = JsonbValueToJsonb((JsonbValue *) value);

	numbers = get_container(data, "phone_numbers", true);
	no->has_phone_numbers = numbers != NULL;
	if (numbers != NULL)
	{
		int			n = JsonContainerSize(numbers);
		int			i;

		for (i = 0; i < n; i++)
		{
			TelnyxPhoneNumber *pn;

			pn = api_parse_phone_number(getIthJsonbValueFromContainer(numbers, i));
			if (pn == NULL)
			{
				*why = psprintf("Phone number %d of number order \"%s\" in Telnyx's answer has no valid phone_number (a string of 1 to %d bytes).",
								i + 1, no->id, TELNYX_MAX_ID_LEN);
				return NULL;
			}
			no->phone_numbers = lappend(no->phone_numbers, pn);
		}
	}
	return no;
}

/* A phone number of a number order; NULL without a phone_number string. */
static TelnyxPhoneNumber *
api_parse_phone_number(const JsonbValue *value)
{
	TelnyxPhoneNumber *pn;
	JsonbContainer *e;

	if (value->type != jbvBinary || !JsonContainerIsObject(value->val.binary.data))
		return NULL;
	e = value->val.binary.data;
	pn = palloc0(sizeof(TelnyxPhoneNumber));
	pn->phone_number = get_string(e, "phone_number");
	if (pn->phone_number == NULL || pn->phone_number[0] == '\0' ||
		strlen(pn->phone_number) > TELNYX_MAX_ID_LEN)
		return NULL;
	pn->id = get_id(e, "id");
	pn->status = get_string(e, "status");
	pn->phone_number_type = get_string(e, "phone_number_type");
	pn->requirements_met = get_bool(e, "requirements_met");
	pn->requirements_status = get_string(e, "requirements_status");
	pn->deadline = get_timestamp(e, "deadline");
	pn->country_code = get_string(e, "country_code");
	pn->data = JsonbValueToJsonb((JsonbValue *) value);
	return pn;
}

/*
 * api_order_matches
 *		Could order be the one created by request (a body built by
 *		validate_order_request)?  Same customer_reference (or none in
 *		both), and the same country, type and count in every ordering
 *		group, in order.
 */
bool
api_order_matches(const TelnyxOrder *order, Jsonb *request)
{
	JsonbContainer *root = &request->root;
	JsonbContainer *groups = get_container(root, "ordering_groups", true);
	char	   *ref = get_string(root, "customer_reference");
	ListCell   *lc;
	int			i = 0;

	if (groups == NULL ||
		(ref == NULL) != (order->customer_reference == NULL) ||
		(ref != NULL && strcmp(ref, order->customer_reference) != 0) ||
		JsonContainerSize(groups) != list_length(order->groups))
		return false;

	foreach(lc, order->groups)
	{
		TelnyxGroup *g = (TelnyxGroup *) lfirst(lc);
		JsonbValue *e = getIthJsonbValueFromContainer(groups, i++);
		JsonbContainer *want;
		OptInt		count;
		char	   *country;
		char	   *type;

		if (e->type != jbvBinary)
			return false;
		want = e->val.binary.data;
		count = get_int(want, "count_requested");
		country = get_string(want, "country_iso");
		type = get_string(want, "phone_number_type");
		if (!count.present || !g->count_requested.present ||
			count.value != g->count_requested.value ||
			country == NULL || g->country_iso == NULL ||
			pg_strcasecmp(country, g->country_iso) != 0 ||
			type == NULL || g->phone_number_type == NULL ||
			strcmp(type, g->phone_number_type) != 0)
			return false;
	}
	return true;
}

/*
 * api_error_json
 *		What went wrong, as jsonb for a queue's last_error: the class, the
 *		HTTP status, the first Telnyx error's code, title, detail and
 *		pointer, and our explanation.
 */
Jsonb *
api_error_json(const TelnyxResult *r)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	struct
	{
		const char *key;
		const char *value;
	}			fields[] = {
		{"class", api_classes[r->class].name},
		{"code", r->error_code},
		{"title", r->error_title},
		{"detail", r->error_detail},
		{"pointer", r->error_pointer},
		{"reason", r->why},
	};
	int			i;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < lengthof(fields); i++)
	{
		if (fields[i].value == NULL)
			continue;
		v.type = jbvString;
		v.val.string.val = (char *) fields[i].key;
		v.val.string.len = strlen(fields[i].key);
		pushJsonbValue(&st, WJB_KEY, &v);
		v.val.string.val = (char *) fields[i].value;
		v.val.string.len = strlen(fields[i].value);
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	if (r->status != 0)
	{
		v.type = jbvString;
		v.val.string.val = "status";
		v.val.string.len = strlen("status");
		pushJsonbValue(&st, WJB_KEY, &v);
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(r->status);
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/*---- Defensive accessors: wrong type or missing means absent ----*/

static JsonbValue *
get_field(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	if (obj == NULL || !JsonContainerIsObject(obj))
		return NULL;
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* A string field, palloc'd and NUL-free, or NULL. */
static char *
get_string(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_field(obj, key, &buf);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* An object (or, with array, an array) field, or NULL. */
static JsonbContainer *
get_container(JsonbContainer *obj, const char *key, bool array)
{
	JsonbValue	v;

	if (!get_container_value(obj, key, array, &v))
		return NULL;
	return v.val.binary.data;
}

/* Like get_container, but fill *result (a jbvBinary) and return found. */
static bool
get_container_value(JsonbContainer *obj, const char *key, bool array,
					JsonbValue *result)
{
	JsonbValue *v = get_field(obj, key, result);

	if (v == NULL || v->type != jbvBinary)
		return false;
	if (array ? !JsonContainerIsArray(v->val.binary.data)
		: !JsonContainerIsObject(v->val.binary.data))
		return false;
	if (v != result)
		*result = *v;
	return true;
}

/*
 * A non-negative integer field that fits int32 (a number or digit string);
 * anything else there but null is "bad".
 */
static OptInt
get_int(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_field(obj, key, &buf);
	OptInt		result = {false, false, 0};
	const char *s;
	int			len;
	int64		value = 0;
	int			i;

	if (v == NULL || v->type == jbvNull)
		return result;
	result.bad = true;
	if (v->type == jbvNumeric)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v->val.numeric)));
		len = strlen(s);
	}
	else if (v->type == jbvString)
	{
		s = v->val.string.val;
		len = v->val.string.len;
	}
	else
		return result;

	if (len == 0 || len > 10)
		return result;
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return result;
		value = value * 10 + (s[i] - '0');
	}
	if (value > PG_INT32_MAX)
		return result;
	result.bad = false;
	result.present = true;
	result.value = (int32) value;
	return result;
}

static OptBool
get_bool(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_field(obj, key, &buf);
	OptBool		result = {false, false};

	if (v != NULL && v->type == jbvBool)
	{
		result.present = true;
		result.value = v->val.boolean;
	}
	return result;
}

static OptTimestamp
get_timestamp(JsonbContainer *obj, const char *key)
{
	OptTimestamp result = {false, 0};
	char	   *s = get_string(obj, key);

	if (s != NULL && parse_timestamptz(s, &result.value))
		result.present = true;
	return result;
}

/* A uuid field as canonical lower-case text, or NULL if not a uuid. */
static char *
get_uuid(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_field(obj, key, &buf);

	if (v == NULL || v->type != jbvString ||
		!api_is_uuid(v->val.string.val, v->val.string.len))
		return NULL;
	return asc_tolower(v->val.string.val, v->val.string.len);
}

/*
 * An order id: a string of 1 to TELNYX_MAX_ID_LEN bytes without control
 * characters, kept as Telnyx spells it (a uuid in lower case, so that the
 * same order is always the same text); NULL otherwise.
 */
static char *
get_id(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = get_field(obj, key, &buf);
	int			i;

	if (v == NULL || v->type != jbvString ||
		v->val.string.len < 1 || v->val.string.len > TELNYX_MAX_ID_LEN)
		return NULL;
	for (i = 0; i < v->val.string.len; i++)
		if ((unsigned char) v->val.string.val[i] < ' ' ||
			v->val.string.val[i] == 0x7f)
			return NULL;
	if (api_is_uuid(v->val.string.val, v->val.string.len))
		return get_uuid(obj, key);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * api_path_escape
 *		s percent-encoded for one path segment: every byte but letters,
 *		digits, "-", "_" and "~".
 */
char *
api_path_escape(const char *s)
{
	StringInfoData buf;
	const unsigned char *p;

	initStringInfo(&buf);
	for (p = (const unsigned char *) s; *p; p++)
	{
		/* "." too, so that no id can be a dot-segment that curl squashes */
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '~')
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "%%%02X", *p);
	}
	return buf.data;
}

/*
 * An array of strings (other elements are skipped).  *present says whether
 * the field was an array at all.
 */
static List *
get_string_array(JsonbContainer *obj, const char *key, bool *present)
{
	JsonbContainer *arr = get_container(obj, key, true);
	List	   *result = NIL;
	int			n;
	int			i;

	*present = arr != NULL;
	if (arr == NULL)
		return NIL;
	n = JsonContainerSize(arr);
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(arr, i);

		if (e->type == jbvString)
			result = lappend(result, pnstrdup(e->val.string.val, e->val.string.len));
	}
	return result;
}

/*
 * api_is_uuid
 *		Is s (len bytes) a uuid in the canonical 8-4-4-4-12 hex form?
 */
bool
api_is_uuid(const char *s, int len)
{
	int			i;

	if (len != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

/*
 * Parse an ISO 8601 timestamp without raising errors: the datetime
 * decoding routines report problems by return code.
 */
static bool
parse_timestamptz(const char *s, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tt;
	fsec_t		fsec;
	const char *p;

	if (strlen(s) > MAXDATELEN || s[0] == '\0')
		return false;

	/*
	 * Digits and the punctuation of ISO 8601 only: no words, no zone names.
	 * A letter is the T between date and time (a digit follows it) or the
	 * Z at the end: any other letter would make the decoder read what
	 * follows as a time zone's name, and an unknown one is an error it
	 * raises ("t-05" after a date), not a code it returns.
	 */
	for (p = s; *p; p++)
	{
		if (isdigit((unsigned char) *p) || strchr("-:.+ ", *p) != NULL)
			continue;
		if ((*p == 'T' || *p == 't') && isdigit((unsigned char) p[1]))
			continue;
		if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
			continue;
		return false;
	}

	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	if (compat_decode_datetime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0)
		return false;
	if (dtype != DTK_DATE)
		return false;
	if (tm2timestamp(&tt, fsec, &tz, result) != 0)
		return false;
	return IS_VALID_TIMESTAMP(*result);
}

/*---- Webhook deliveries ----*/

/*
 * api_parse_event
 *		Parse a webhook delivery's body (text in the database encoding):
 *		returns it as jsonb and sets *data to its "data" object, or returns
 *		NULL with *why.
 */
Jsonb *
api_parse_event(const char *body, JsonbValue *data, const char **why)
{
	Jsonb	   *doc = api_parse_json(body, strlen(body));

	if (doc == NULL || !JB_ROOT_IS_OBJECT(doc))
	{
		*why = "The body is not a JSON object.";
		return NULL;
	}
	if (!get_container_value(&doc->root, "data", false, data))
	{
		*why = "The body has no \"data\" object.";
		return NULL;
	}
	return doc;
}

/* A string field of an event's "data" that is an id, or NULL. */
char *
api_event_field(JsonbContainer *data, const char *key)
{
	return get_id(data, key);
}

/* A timestamp field of an event's "data". */
OptTimestamp
api_event_time(JsonbContainer *data, const char *key)
{
	return get_timestamp(data, key);
}

/* The event's "payload" object, in *payload; false if it has none. */
bool
api_event_payload(JsonbContainer *data, JsonbValue *payload)
{
	return get_container_value(data, "payload", false, payload);
}
