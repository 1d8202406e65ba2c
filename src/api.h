/*-------------------------------------------------------------------------
 *
 * api.h
 *	  Telnyx paths, request bodies, response parsing and result classes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_API_H
#define TELNYX_API_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "http.h"

/* Largest page the list endpoint serves. */
#define TELNYX_MAX_PAGE_SIZE 250

/*
 * What an API call came to.  The synchronous functions turn a class into an
 * error with its own SQLSTATE (api_raise); a queue turns it into a state.
 */
typedef enum TelnyxResultClass
{
	TELNYX_OK,					/* 2xx with the expected body */
	TELNYX_REJECTED,			/* 400, 422 and other 4xx: permanent */
	TELNYX_NOT_FOUND,			/* 404 */
	TELNYX_AUTH,				/* 401, 403: a configuration problem */
	TELNYX_RATE_LIMITED,		/* 429, retries exhausted */
	TELNYX_SERVER_ERROR,		/* 5xx on a request that changes nothing */
	TELNYX_NOT_SENT,			/* never reached Telnyx: safe to send again */
	TELNYX_TRANSPORT,			/* connection failed mid-way on a safe request */
	TELNYX_UNKNOWN,				/* an order may or may not exist */
	TELNYX_TOO_LARGE,			/* response exceeded telnyx.max_response_size */
	TELNYX_MALFORMED,			/* response is not what the spec promises */
	TELNYX_LIST_UNENDED,		/* a list walk stopped with no proven end */
	TELNYX_NUM_CLASSES
} TelnyxResultClass;

/* What a queue does with a create that ended in a class (see api.c). */
typedef enum ApiDisposition
{
	API_CREATED,				/* record the order: sent */
	API_FAILED,					/* refused for good: failed */
	API_PAUSE,					/* a configuration fault: stay queued, pause */
	API_RATE_LIMITED,			/* retry after the wait, holding back all */
	API_SEND_AGAIN,				/* never reached Telnyx: retry */
	API_UNKNOWN					/* may exist: reconcile before anything */
} ApiDisposition;

/* Which call failed, for api_raise's primary message. */
typedef enum ApiAction
{
	API_CREATE,
	API_GET,
	API_LIST,
	API_GET_NUMBER_ORDER
} ApiAction;

typedef struct TelnyxResult
{
	TelnyxResultClass class;
	long		status;			/* HTTP status, 0 if none */
	int			attempts;		/* requests sent */
	double		wait_ms;		/* wait the server asked for, -1 if none */
	Jsonb	   *body;			/* the response as jsonb, NULL if not JSON */
	JsonbValue	data;			/* body's "data" (jbvBinary) when TELNYX_OK */
	struct TelnyxOrder *order;	/* when TELNYX_OK: the order a create or a
								 * get answered, parsed once */
	struct TelnyxNumberOrder *number_order;	/* the same for a number order */
	char	   *why;			/* a sentence on what went wrong, or NULL */
	const char *hint;			/* what to do, when the class's hint does
								 * not say it; or NULL */
	char	   *telnyx_errors;	/* Telnyx's "errors", as sentences, or NULL */
	char	   *error_code;		/* first error's code, or NULL */
	char	   *error_title;	/* first error's title, or NULL */
	char	   *error_detail;	/* first error's detail, or NULL */
	char	   *error_pointer;	/* first error's source.pointer, or NULL */
} TelnyxResult;

/* A number order Telnyx created to fill an ordering group. */
typedef struct TelnyxNumberOrderRef
{
	char	   *number_order_id;	/* an id (see get_id) */
	List	   *sub_number_order_ids;	/* of char * */
	bool		has_sub_number_order_ids;	/* the answer gives the list (an
											 * empty one is empty) */
} TelnyxNumberOrderRef;

/*
 * An optional value from a response: "present" is false when absent (or
 * null).  A count that is there but not an integer from 0 to PG_INT32_MAX
 * is "bad": the answer it is in cannot be recorded as it is.
 */
typedef struct OptInt
{
	bool		present;
	bool		bad;
	int32		value;
} OptInt;

typedef struct OptBool
{
	bool		present;
	bool		value;
} OptBool;

typedef struct OptTimestamp
{
	bool		present;
	TimestampTz value;
} OptTimestamp;

/* An ordering group as Telnyx describes it; strings NULL when absent. */
typedef struct TelnyxGroup
{
	int			group_index;	/* from 1 */
	char	   *country_iso;
	char	   *phone_number_type;
	char	   *national_destination_code;
	char	   *administrative_area;
	char	   *locality;
	List	   *features;		/* of char *; NIL with has_features false */
	bool		has_features;
	char	   *starts_with;
	char	   *ends_with;
	char	   *contains;
	char	   *strategy;
	OptBool		quickship;
	OptBool		exclude_held_numbers;
	OptInt		count_requested;
	OptInt		count_allocated;
	char	   *status;
	char	   *error_reason;
	OptTimestamp created_at;
	OptTimestamp updated_at;
	List	   *orders;			/* of TelnyxNumberOrderRef * */
	bool		has_orders;		/* "orders" was there: it is the whole list */
} TelnyxGroup;

/* An inexplicit number order as Telnyx describes it. */
typedef struct TelnyxOrder
{
	char	   *id;				/* as Telnyx gives it (a uuid in lower case);
								 * never NULL */
	char	   *connection_id;
	char	   *messaging_profile_id;
	char	   *customer_reference;
	char	   *billing_group_id;
	OptTimestamp created_at;
	OptTimestamp updated_at;
	List	   *groups;			/* of TelnyxGroup * */
	int			ngroups;		/* length of "ordering_groups", -1 if absent */
	Jsonb	   *data;			/* the whole object */
} TelnyxOrder;

/* A phone number of a number order. */
typedef struct TelnyxPhoneNumber
{
	char	   *phone_number;	/* E.164, as Telnyx gives it; never NULL */
	char	   *id;
	char	   *status;
	char	   *phone_number_type;
	OptBool		requirements_met;
	char	   *requirements_status;
	OptTimestamp deadline;
	char	   *country_code;
	Jsonb	   *data;			/* the whole element */
} TelnyxPhoneNumber;

/* A number order, with its numbers, as GET /number_orders/{id} gives it. */
typedef struct TelnyxNumberOrder
{
	char	   *id;				/* never NULL */
	char	   *status;
	OptInt		phone_numbers_count;
	OptBool		requirements_met;
	char	   *customer_reference;
	List	   *sub_number_order_ids;	/* of char * */
	bool		has_sub_number_order_ids;
	OptTimestamp created_at;
	OptTimestamp updated_at;
	List	   *phone_numbers;	/* of TelnyxPhoneNumber * */
	bool		has_phone_numbers;	/* "phone_numbers" was there */
	Jsonb	   *data;			/* the whole object */
} TelnyxNumberOrder;

/* Longest order id kept (the spec types it as a string). */
#define TELNYX_MAX_ID_LEN 255

extern TelnyxResult *api_create_inexplicit_order(const char *request,
												 const char *idempotency_key);
extern void api_create_request(HttpRequest *req, const char *request,
							   const char *idempotency_key);
extern char *api_request_text(Jsonb *request);
extern bool api_idempotency_key_valid(const char *key);
extern char *api_path_escape(const char *s);
extern TelnyxResult *api_create_result(const HttpRequest *req,
									   const HttpResponse *resp);
extern TelnyxResult *api_get_inexplicit_order(const char *id);
extern TelnyxResult *api_list_inexplicit_orders(int page_number, int page_size);
extern TelnyxResult *api_get_number_order(const char *id);

/*
 * Called for each page of the list: the orders parsed (TelnyxOrder *) and
 * the elements that could not be (JsonbValue *).
 */
typedef void (*ApiPageCallback) (List *orders, List *unparsed, void *arg);

/*
 * How a walk over the list of orders stopped.  Only an empty page and the
 * last page Telnyx counts prove the list's end; the others stop a walk
 * that would not end by itself, and prove nothing.
 */
typedef enum ApiListEnd
{
	API_LIST_UNDER_WAY,			/* not stopped yet */
	API_LIST_EMPTY_PAGE,		/* proven end: a page with no orders */
	API_LIST_LAST_PAGE,			/* proven end: meta.total_pages reached */
	API_LIST_FAILED,			/* a page could not be read */
	API_LIST_REPEATED,			/* a page repeats one read before */
	API_LIST_BOUND_REACHED		/* more pages than what was read allows */
} ApiListEnd;

/*
 * A walk over the list of orders, page by page (api_walk_next).  It keeps
 * one signature per page read (the multiset of its ids), in cxt, to see a
 * page that comes again.
 */
typedef struct ApiListWalk
{
	int			page;			/* the next page to read, from 1 */
	ApiListEnd	end;			/* API_LIST_UNDER_WAY until it stops */
	int			bound;			/* pages it may read: from the first meta,
								 * else API_LIST_PAGES_WITHOUT_META */
	bool		counted;		/* a page carried meta.total_pages */
	int			total_pages;	/* the latest meta.total_pages, -1 if none */
	uint64	   *signatures;		/* one per page read */
	int			npages;			/* pages read */
	int			maxpages;		/* signatures allocated */
	MemoryContext cxt;			/* where signatures live */
} ApiListWalk;

/* Pages read at most when no page says how many there are. */
#define API_LIST_PAGES_WITHOUT_META 100

/* Pages read beyond twice what the first meta announced (the list grows). */
#define API_LIST_SLACK_PAGES 10

/* Pages read at most, whatever meta says. */
#define API_MAX_LIST_PAGES 1000000

extern TelnyxResult *api_each_page(ApiPageCallback fn, void *arg);
extern void api_walk_begin(ApiListWalk *walk, MemoryContext cxt);
extern TelnyxResult *api_walk_next(ApiListWalk *walk, ApiPageCallback fn,
								   void *arg);
extern void api_walk_finish(ApiListWalk *walk);
extern const char *api_list_end_text(const ApiListWalk *walk);
extern TelnyxOrder *api_parse_order(const JsonbValue *data, const char **why);
extern void api_merge_request(TelnyxOrder *order, Jsonb *request);
extern TelnyxNumberOrder *api_parse_number_order(const JsonbValue *data,
												 const char **why);
extern int	api_list_total_pages(const TelnyxResult *result);
extern void api_raise(const TelnyxResult *result, ApiAction action,
					  const char *id);
extern ApiDisposition api_create_disposition(TelnyxResultClass class);
extern bool api_is_uuid(const char *s, int len);
extern Jsonb *api_parse_event(const char *body, JsonbValue *data,
							  const char **why);
extern char *api_event_field(JsonbContainer *data, const char *key);
extern OptTimestamp api_event_time(JsonbContainer *data, const char *key);
extern bool api_event_payload(JsonbContainer *data, JsonbValue *payload);
extern bool api_order_matches(const TelnyxOrder *order, Jsonb *request);
extern Jsonb *api_error_json(const TelnyxResult *result);

#endif							/* TELNYX_API_H */
