/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Every write to the extension's tables.
 *
 * An order as Telnyx describes it is upserted into three tables: the order,
 * its ordering groups (keyed by order and group_index) and the links to the
 * number orders that fill each group (keyed by order, group_index and
 * number_order_id).  A number order, fetched on its own, fills in its link
 * rows and its numbers (telnyx_phone_numbers).  Fetching the same thing
 * again updates its rows and never duplicates them.  The writes
 * run in the caller's transaction, through SPI with $n parameters; table
 * names are qualified with the extension's schema, never found through
 * search_path.  Plans are prepared once per backend and kept.
 *
 * This is also the one way every module runs its statements: each written
 * where its parameters are filled, the parameters added one by one with
 * their types (StoreArgs), run alone (store_run) or several in one scope
 * (store_begin, store_exec, store_end).  The widest statements, the
 * upserts of an answer, are written from lists of their columns.
 *
 * The SQL-callable functions run as their caller, so that whatever a user
 * wrote (a cast, an output function) runs with the user's rights.  The
 * extension's own statements on its own tables run inside store_enter and
 * store_leave: as the extension's owner, with search_path pinned to
 * pg_catalog and pg_temp, and every operator they use qualified, so that no
 * object a user can create is ever resolved by them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "jit/jit.h"
#include "optimizer/cost.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "schedule.h"
#include "store.h"
#include "wakeup.h"

/*---- Local types ----*/

/* A phone number and its place in its number order's answer. */
typedef struct PhoneNumberAt
{
	TelnyxPhoneNumber *pn;
	int			at;
} PhoneNumberAt;

/* The ids a claim returned, each once, in mcxt. */
typedef struct StoreClaimed
{
	List	   *ids;
	MemoryContext mcxt;
} StoreClaimed;

/* A list of strings given, or left out (present false). */
typedef struct OptStrings
{
	bool		present;
	List	   *strings;
} OptStrings;

/* One column of many rows, built for a statement that unnests arrays. */
typedef struct Column
{
	Oid			type;
	Datum	   *values;
	bool	   *nulls;
} Column;

/*
 * The wide upserts are written from lists of their columns, one line a
 * column: X(column, parameter, kind, on conflict, value).
 *
 * - column: the table's column, and the name it has in the statement.
 * - parameter: the $n of the array that holds it, one element a row.
 * - kind: what value is, and so the array's type and how a NULL is told:
 *   text (char *, NULL), uuid (text of one, cast in the statement), int4,
 *   opt_int, opt_bool, opt_ts (OptInt, OptBool, OptTimestamp: NULL when
 *   absent), ts (TimestampTz, NULL when 0), jsonb (Jsonb *), strings
 *   (OptStrings, stored as a text[]).
 * - on conflict: key (the row's key, never updated), keep (a value left
 *   out keeps the stored one), new (the answer's value, even NULL), first
 *   (the stored value, if there is one).
 * - value: the expression that fills one row, in store_orders' or
 *   store_numbers' loop.
 *
 * A column is added to a table by adding its line.
 */

/* Orders: $4..$13 (the statement's own $1..$3 are in store_orders). */
#define STORE_ORDER_COLUMNS(X) \
	X(id,                        4, text,     key,   order->id) \
	X(connection_id,             5, text,     keep,  order->connection_id) \
	X(messaging_profile_id,      6, text,     keep,  order->messaging_profile_id) \
	X(customer_reference,        7, text,     keep,  order->customer_reference) \
	X(billing_group_id,          8, text,     keep,  order->billing_group_id) \
	X(created_at,                9, opt_ts,   keep,  order->created_at) \
	X(updated_at,               10, opt_ts,   keep,  order->updated_at) \
	X(data,                     11, jsonb,    new,   order->data) \
	X(next_refresh_at,          12, ts,       new,   next) \
	X(request_key,              13, uuid,     first, key)

/* Their ordering groups: $14..$33. */
#define STORE_GROUP_COLUMNS(X) \
	X(order_id,                 14, text,     key,   order->id) \
	X(group_index,              15, int4,     key,   g->group_index) \
	X(country_iso,              16, text,     keep,  g->country_iso) \
	X(phone_number_type,        17, text,     keep,  g->phone_number_type) \
	X(national_destination_code, 18, text,    keep,  g->national_destination_code) \
	X(administrative_area,      19, text,     keep,  g->administrative_area) \
	X(locality,                 20, text,     keep,  g->locality) \
	X(features,                 21, strings,  keep,  opt_strings(g->has_features, g->features)) \
	X(phone_number_starts_with, 22, text,     keep,  g->starts_with) \
	X(phone_number_ends_with,   23, text,     keep,  g->ends_with) \
	X(phone_number_contains,    24, text,     keep,  g->contains) \
	X(strategy,                 25, text,     keep,  g->strategy) \
	X(quickship,                26, opt_bool, keep,  g->quickship) \
	X(exclude_held_numbers,     27, opt_bool, keep,  g->exclude_held_numbers) \
	X(count_requested,          28, opt_int,  keep,  g->count_requested) \
	X(count_allocated,          29, opt_int,  keep,  g->count_allocated) \
	X(status,                   30, text,     keep,  g->status) \
	X(error_reason,             31, text,     keep,  g->error_reason) \
	X(created_at,               32, opt_ts,   keep,  g->created_at) \
	X(updated_at,               33, opt_ts,   keep,  g->updated_at)

/* The numbers of a number order: $2..$10 ($1 is the number order's id). */
#define STORE_NUMBER_COLUMNS(X) \
	X(phone_number,              2, text,     key,   pn->phone_number) \
	X(id,                        3, text,     keep,  pn->id) \
	X(status,                    4, text,     keep,  pn->status) \
	X(phone_number_type,         5, text,     keep,  pn->phone_number_type) \
	X(requirements_met,          6, opt_bool, keep,  pn->requirements_met) \
	X(requirements_status,       7, text,     keep,  pn->requirements_status) \
	X(deadline,                  8, opt_ts,   keep,  pn->deadline) \
	X(country_code,              9, text,     keep,  pn->country_code) \
	X(data,                     10, jsonb,    new,   pn->data)

/*
 * The pieces of SQL a column list makes, each beginning with ", ": its
 * names, its parameters unnested, its values as the source "x" of the
 * rows gives them, and its updates of the target "t".
 */
#define STORE_SQL_NAME(col, n, kind, merge, value) ", " #col
#define STORE_SQL_UNNEST(col, n, kind, merge, value) ", pg_catalog.unnest($" #n ")"
#define STORE_SQL_VALUE(col, n, kind, merge, value) ", " STORE_VALUE_##kind(#col)
#define STORE_SQL_SET(col, n, kind, merge, value) STORE_SET_##merge(#col)

#define STORE_VALUE_text(c) "x." c
#define STORE_VALUE_uuid(c) "x." c "::pg_catalog.uuid"
#define STORE_VALUE_int4(c) "x." c
#define STORE_VALUE_opt_int(c) "x." c
#define STORE_VALUE_opt_bool(c) "x." c
#define STORE_VALUE_opt_ts(c) "x." c
#define STORE_VALUE_ts(c) "x." c
#define STORE_VALUE_jsonb(c) "x." c
#define STORE_VALUE_strings(c) \
	"CASE WHEN x." c " IS NOT NULL THEN" \
	" ARRAY(SELECT pg_catalog.jsonb_array_elements_text(x." c ")) END"

/*
 * The rows of a list's arrays, as "x".  ROWS FROM pads a shorter array
 * with NULLs: its first, always empty, is there so that every column
 * begins with a comma.
 */
#define STORE_SQL_ROWS(list) \
	" ROWS FROM (pg_catalog.unnest(NULL::pg_catalog.int4[])" \
	list(STORE_SQL_UNNEST) ") AS x(unused" list(STORE_SQL_NAME) ")"

#define STORE_SET_key(c) ""
#define STORE_SET_keep(c) ", " c " = COALESCE(EXCLUDED." c ", t." c ")"
#define STORE_SET_new(c) ", " c " = EXCLUDED." c
#define STORE_SET_first(c) ", " c " = COALESCE(t." c ", EXCLUDED." c ")"

/* The type of one element of a kind's array. */
#define STORE_ELEM_text TEXTOID
#define STORE_ELEM_uuid TEXTOID
#define STORE_ELEM_int4 INT4OID
#define STORE_ELEM_opt_int INT4OID
#define STORE_ELEM_opt_bool BOOLOID
#define STORE_ELEM_opt_ts TIMESTAMPTZOID
#define STORE_ELEM_ts TIMESTAMPTZOID
#define STORE_ELEM_jsonb JSONBOID
#define STORE_ELEM_strings JSONBOID

/* And of the array. */
#define STORE_ARRAY_text TEXTARRAYOID
#define STORE_ARRAY_uuid TEXTARRAYOID
#define STORE_ARRAY_int4 INT4ARRAYOID
#define STORE_ARRAY_opt_int INT4ARRAYOID
#define STORE_ARRAY_opt_bool BOOLARRAYOID
#define STORE_ARRAY_opt_ts TIMESTAMPTZARRAYOID
#define STORE_ARRAY_ts TIMESTAMPTZARRAYOID
#define STORE_ARRAY_jsonb JSONBARRAYOID
#define STORE_ARRAY_strings JSONBARRAYOID

/*
 * Filling the arrays, in a function with Column cols[STORE_MAX_ARGS + 1]
 * (by parameter), int rows (how many) and int row (the one being filled).
 */
#define STORE_COLUMN_INIT(col, n, kind, merge, value) \
	column_init(&cols[n], STORE_ELEM_##kind, rows);
#define STORE_COLUMN_FILL(col, n, kind, merge, value) \
	column_##kind(&cols[n], row, value);
#define STORE_COLUMN_ARG(col, n, kind, merge, value) \
	store_arg_at(&args, n, STORE_ARRAY_##kind, column_array(&cols[n], rows), \
				 false);

/*---- Local variables ----*/

/*
 * The planner's strategies that read a table whole, turned off for the
 * extension's statements (for the life of its own processes, around each
 * statement elsewhere).  Every statement is a lookup by key or a short
 * walk of an index, through a plan kept for the life of the process: a plan made while a table was small (a new queue,
 * a burst after a quiet hour) must not stay a scan of the whole table, or a
 * sort of the whole queue, once the table has grown and before its
 * statistics catch up.  Where no index answers, the planner still scans
 * (at a cost that would pass jit_above_cost: these statements are too
 * small for JIT, which is off too).
 */
static const char *const store_planner_settings[] = {
	"enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin",
	"jit"
};

/*
 * Plans kept for the statements run through store_exec, by the address of
 * their text, valid for the schema named kept_schema.
 */
typedef struct KeptPlan
{
	const char *sql;
	SPIPlanPtr	plan;
	int			nargs;
	Oid		   *types;			/* of its parameters */
} KeptPlan;

static KeptPlan kept_plans[STORE_MAX_KEPT_PLANS];
static int	nkept_plans = 0;
static char *kept_schema = NULL;

/*
 * How many kept plans of this process are running now: more than one when
 * a statement's trigger runs another (the queue's index).  Plans dropped
 * while one runs (the schema was renamed meanwhile) wait in retired_plans
 * until none does: the plan that runs must outlive its run.
 */
static int	kept_running = 0;
static List *retired_plans = NIL;

/*
 * The extension's schema, owner and version, read by store_extension and
 * forgotten when the transaction ends (store_xact), when any schema is
 * renamed, dropped or made, or changes owner (store_forget_schema: the
 * name is what the statements use), and when the requests table's
 * relcache entry is invalidated (store_forget_relation: an update script
 * that alters it has changed the version).  A name kept across a rename
 * would let a schema's owner put objects of its own where the extension's
 * statements, run as its owner, look.
 */
static bool extension_cached = false;
static char cached_schema[NAMEDATALEN];
static Oid	cached_owner = InvalidOid;
static char cached_version[NAMEDATALEN];
static Oid	cached_requests_rel = InvalidOid;
static Oid	cached_namespace = InvalidOid;
static bool cached_schema_trusted = false;

/*---- Function declarations ----*/

static void store_read_extension(void);
static void store_xact(XactEvent event, void *arg);
static void store_forget_schema(Datum arg, int cacheid, uint32 hashvalue);
static void store_forget_relation(Datum arg, Oid relid);
static void store_check_plan(SPIPlanPtr plan);
static void store_refuse_elsewhere(const char *schema);
static bool store_schema_trusted(Oid nsp, Oid extowner);
static void store_refuse_schema(const char *schema);
static List *store_claim_kept(const char *sql, int max, int64 lease_ms,
							  MemoryContext mcxt);

/* store_claim_kept with a statement written in the code (its plan is kept) */
#define store_claim(sql, max, lease_ms, mcxt) \
	store_claim_kept("" sql, (max), (lease_ms), (mcxt))
static void store_claimed_row(HeapTuple tuple, TupleDesc desc, void *arg);
static void store_call_row(HeapTuple tuple, TupleDesc desc, void *arg);
static void store_open_call_row(HeapTuple tuple, TupleDesc desc, void *arg);
static void store_numbers(const char *schema, const TelnyxNumberOrder *no);
static Datum array_datum(Datum *elems, bool *nulls, int n, Oid elemtype);
static void store_links(const char *schema, const char *order_id,
						const TelnyxGroup *g);
static void column_init(Column *c, Oid type, int n);
static void column_set(Column *c, int i, Datum value, bool isnull);
static void column_text(Column *c, int i, const char *s);
static void column_uuid(Column *c, int i, const char *s);
static void column_int4(Column *c, int i, int32 v);
static void column_opt_int(Column *c, int i, OptInt v);
static void column_opt_bool(Column *c, int i, OptBool v);
static void column_opt_ts(Column *c, int i, OptTimestamp v);
static void column_ts(Column *c, int i, TimestampTz v);
static void column_jsonb(Column *c, int i, Jsonb *v);
static void column_strings(Column *c, int i, OptStrings v);
static Datum column_array(Column *c, int n);
static OptStrings opt_strings(bool present, List *strings);
static Datum jsonb_string_array(List *strings);
static int	phone_number_at_cmp(const void *a, const void *b);

/*
 * store_order
 *		Upsert order, its groups and their links to number orders, in the
 *		current transaction, as the extension's owner.  found_by_sync marks
 *		an order first recorded by the periodic sync (kept as it is on an
 *		update).  request, when not NULL, is the body that created the
 *		order: what the answer does not echo is taken from it.
 */
void
store_order(TelnyxOrder *order, bool found_by_sync, Jsonb *request,
			const char *request_key)
{
	store_orders(list_make1(order), request ? list_make1(request) : NIL,
				 request_key ? list_make1((char *) request_key) : NIL,
				 found_by_sync, false);
}

/*
 * store_orders
 *		store_order for many orders at once (requests, when not NIL, holds
 *		each one's request body or NULL, in the same order): the orders, the
 *		groups, and the groups no longer listed, in one statement (with
 *		created, the answers to creates: no groups can be left over); the links
 *		to number orders, of the groups that list any, one statement each.
 *		The same order twice makes the statement fail, and nothing of it is
 *		recorded.
 *
 * The rows stay true to the latest answer without losing what it leaves
 * out: a field it does not give keeps its stored value; a group's list of
 * number orders, when given, is the whole list (a number order no longer
 * listed is unlinked, with its numbers); groups beyond the ones listed are
 * deleted.
 */
void
store_orders(List *orders, List *requests, List *request_keys,
			 bool found_by_sync, bool created)
{
	Column		cols[STORE_MAX_ARGS + 1];
	StoreArgs	args = {0};
	int			norders = list_length(orders);
	int			ngroups = 0;
	int			rows;
	int			row;
	int			g_row = 0;
	ListCell   *lc;
	StoreScope	scope;
	char	   *schema;

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		Jsonb	   *request = requests ? (Jsonb *) list_nth(requests, foreach_current_index(lc)) : NULL;

		if (request != NULL)
			api_merge_request(order, request);
		ngroups += list_length(order->groups);
	}

	rows = norders;
	column_init(&cols[3], INT4OID, rows);
	STORE_ORDER_COLUMNS(STORE_COLUMN_INIT);
	rows = ngroups;
	STORE_GROUP_COLUMNS(STORE_COLUMN_INIT);

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		TimestampTz next = schedule_order(order);
		const char *key = request_keys ? (const char *) list_nth(request_keys, foreach_current_index(lc)) : NULL;
		ListCell   *lc2;

		row = foreach_current_index(lc);
		STORE_ORDER_COLUMNS(STORE_COLUMN_FILL);
		column_int4(&cols[3], row, order->ngroups);
		/* an answer: the other databases of the cluster never take it */
		if (key != NULL)
			wakeup_note_order(order->id);

		foreach(lc2, order->groups)
		{
			TelnyxGroup *g = (TelnyxGroup *) lfirst(lc2);

			row = g_row++;
			STORE_GROUP_COLUMNS(STORE_COLUMN_FILL);
		}
	}

	store_arg(&args, BOOLOID, BoolGetDatum(found_by_sync));
	store_arg(&args, BOOLOID, BoolGetDatum(!created));
	rows = norders;
	store_arg(&args, INT4ARRAYOID, column_array(&cols[3], rows));
	STORE_ORDER_COLUMNS(STORE_COLUMN_ARG);
	rows = ngroups;
	STORE_GROUP_COLUMNS(STORE_COLUMN_ARG);

	/*
	 * The orders and their groups, with found_by_sync ($1; kept as it is
	 * on an update), and the groups no longer listed deleted ($2; not for
	 * orders just created) beyond each order's count of groups ($3, -1
	 * when the answer gives no list).  The groups' foreign key is checked
	 * at the end of the statement, when the orders are there; the groups
	 * deleted are beyond the ones listed, so never ones the statement
	 * upserts.  A link to a request (request_key), once made, is kept: an
	 * order answers one request.
	 */
	schema = store_begin(&scope);
	store_exec(schema,
			   "WITH o AS ("
			   " INSERT INTO %1$s.telnyx_inexplicit_orders AS t"
			   "  (found_by_sync, synced_at" STORE_ORDER_COLUMNS(STORE_SQL_NAME) ")"
			   " SELECT $1, pg_catalog.now()" STORE_ORDER_COLUMNS(STORE_SQL_VALUE)
			   "  FROM" STORE_SQL_ROWS(STORE_ORDER_COLUMNS)
			   " ON CONFLICT (id) DO UPDATE SET"
			   "  fetch_failures = 0, synced_at = pg_catalog.now()"
			   STORE_ORDER_COLUMNS(STORE_SQL_SET)
			   " RETURNING 1),"
			   " g AS ("
			   " INSERT INTO %1$s.telnyx_ordering_groups AS t"
			   "  (synced_at" STORE_GROUP_COLUMNS(STORE_SQL_NAME) ")"
			   " SELECT pg_catalog.now()" STORE_GROUP_COLUMNS(STORE_SQL_VALUE)
			   "  FROM" STORE_SQL_ROWS(STORE_GROUP_COLUMNS)
			   " ON CONFLICT (order_id, group_index) DO UPDATE SET"
			   "  synced_at = pg_catalog.now()" STORE_GROUP_COLUMNS(STORE_SQL_SET)
			   " RETURNING 1),"
			   " d AS ("
			   " DELETE FROM %1$s.telnyx_ordering_groups z"
			   "  USING ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($3))"
			   "   AS x(id, ngroups)"
			   "  WHERE $2 AND x.ngroups OPERATOR(pg_catalog.>=) 0"
			   "    AND z.order_id OPERATOR(pg_catalog.=) x.id"
			   "    AND z.group_index OPERATOR(pg_catalog.>) x.ngroups"
			   " RETURNING 1)"
			   " SELECT (SELECT pg_catalog.count(*) FROM o),"
			   "  (SELECT pg_catalog.count(*) FROM g),"
			   "  (SELECT pg_catalog.count(*) FROM d)",
			   &args, SPI_OK_SELECT);

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		ListCell   *lc2;

		foreach(lc2, order->groups)
		{
			TelnyxGroup *g = (TelnyxGroup *) lfirst(lc2);

			if (g->has_orders)
				store_links(schema, order->id, g);
		}
	}
	store_end(&scope);
}

/*
 * A group's links to number orders, as an answer that gives the list
 * says: what the list no longer has is unlinked, what is new is linked
 * (and fetched at once: next_fetch_at is now).
 */
static void
store_links(const char *schema, const char *order_id, const TelnyxGroup *g)
{
	StoreArgs	args = {0};
	List	   *ids = NIL;
	ListCell   *lc;

	foreach(lc, g->orders)
		ids = lappend(ids, ((TelnyxNumberOrderRef *) lfirst(lc))->number_order_id);
	store_arg_text(&args, order_id);
	store_arg(&args, INT4OID, Int32GetDatum(g->group_index));
	store_arg(&args, TEXTARRAYOID, store_text_array(ids));
	store_exec(schema,
			   "DELETE FROM %1$s.telnyx_number_orders n"
			   " WHERE n.order_id OPERATOR(pg_catalog.=) $1"
			   "   AND n.group_index OPERATOR(pg_catalog.=) $2"
			   "   AND n.number_order_id OPERATOR(pg_catalog.<>) ALL ($3)",
			   &args, SPI_OK_DELETE);

	foreach(lc, g->orders)
	{
		TelnyxNumberOrderRef *ref = (TelnyxNumberOrderRef *) lfirst(lc);
		StoreArgs	link = {0};

		store_arg_text(&link, ref->number_order_id);
		store_arg_text(&link, order_id);
		store_arg(&link, INT4OID, Int32GetDatum(g->group_index));
		/* an empty list given is empty; a list left out keeps what is stored */
		store_arg_or_null(&link, TEXTARRAYOID,
						  store_text_array(ref->sub_number_order_ids),
						  !ref->has_sub_number_order_ids);
		store_exec(schema,
				   "INSERT INTO %1$s.telnyx_number_orders AS n"
				   " (number_order_id, order_id, group_index, sub_number_order_ids,"
				   "  next_fetch_at, synced_at)"
				   " VALUES ($1, $2, $3, COALESCE($4, '{}'), pg_catalog.now(),"
				   "  pg_catalog.now())"
				   " ON CONFLICT (order_id, group_index, number_order_id) DO UPDATE SET"
				   " sub_number_order_ids = COALESCE($4, n.sub_number_order_ids),"
				   " synced_at = pg_catalog.now()",
				   &link, SPI_OK_INSERT);
	}
}

/*
 * store_claim_refresh
 *		Ids (palloc'd text, in mcxt) of up to max orders due for a refresh,
 *		claimed for lease_ms (as long as a fetch may take): a refresh that
 *		stores the order sets its next time; one that fails leaves it due
 *		when the claim ends.
 */
List *
store_claim_refresh(int max, int64 lease_ms, MemoryContext mcxt)
{
	return store_claim("WITH due AS ("
					   "  SELECT o.id FROM %1$s.telnyx_inexplicit_orders o"
					   "   WHERE o.next_refresh_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
					   "   ORDER BY o.next_refresh_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
					   " UPDATE %1$s.telnyx_inexplicit_orders o SET next_refresh_at = $2"
					   "   FROM due WHERE o.id OPERATOR(pg_catalog.=) due.id"
					   " RETURNING o.id",
					   max, lease_ms, mcxt);
}

/*
 * store_claim_number_orders
 *		The same for number orders due to be fetched: their ids, each once
 *		(a number order linked to two groups is claimed twice).
 */
List *
store_claim_number_orders(int max, int64 lease_ms, MemoryContext mcxt)
{
	return store_claim("WITH due AS ("
					   "  SELECT n.order_id, n.group_index, n.number_order_id"
					   "    FROM %1$s.telnyx_number_orders n"
					   "   WHERE n.next_fetch_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
					   "   ORDER BY n.next_fetch_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
					   " UPDATE %1$s.telnyx_number_orders n SET next_fetch_at = $2"
					   "   FROM due WHERE n.order_id OPERATOR(pg_catalog.=) due.order_id"
					   "    AND n.group_index OPERATOR(pg_catalog.=) due.group_index"
					   "    AND n.number_order_id OPERATOR(pg_catalog.=) due.number_order_id"
					   " RETURNING n.number_order_id",
					   max, lease_ms, mcxt);
}

/*
 * Run a claiming statement ($1 the most rows, $2 the end of the lease);
 * it returns the ids claimed, read into mcxt, each once.
 */
static List *
store_claim_kept(const char *sql, int max, int64 lease_ms, MemoryContext mcxt)
{
	StoreArgs	args = {0};
	StoreClaimed claimed = {NIL, mcxt};

	store_arg(&args, INT4OID, Int32GetDatum(max));
	store_arg(&args, TIMESTAMPTZOID,
			  TimestampTzGetDatum(GetCurrentTimestamp() + lease_ms * 1000));
	(void) store_run_kept(sql, &args, SPI_OK_UPDATE_RETURNING,
						  store_claimed_row, &claimed);
	return claimed.ids;
}

/* A claimed id, into claimed->ids (in its memory context), each once. */
static void
store_claimed_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	StoreClaimed *claimed = (StoreClaimed *) arg;
	MemoryContext old = MemoryContextSwitchTo(claimed->mcxt);
	char	   *id = SPI_getvalue(tuple, desc, 1);
	ListCell   *lc;

	foreach(lc, claimed->ids)
	{
		if (strcmp((const char *) lfirst(lc), id) == 0)
		{
			pfree(id);
			id = NULL;
			break;
		}
	}
	if (id != NULL)
		claimed->ids = lappend(claimed->ids, id);
	MemoryContextSwitchTo(old);
}

/*
 * store_number_order
 *		Record what Telnyx says of a number order: under every group it is
 *		linked to, its fields (one left out keeps its stored value) and its
 *		numbers (the list, when given, is the whole list).  occurred_at, for
 *		a webhook delivery, is when the delivery says it happened (NULL for
 *		an answer fetched now); the answer is as of its updated_at, or else
 *		occurred_at.  Facts only move forward: an answer older than what is
 *		recorded (an earlier updated_at, or a delivery older than one applied)
 *		writes nothing but when the number order is next fetched
 *		(STORE_FACT_OLDER).  STORE_FACT_UNLINKED, writing nothing, when no
 *		order links to it yet (it is fetched once one does).
 */
StoreFact
store_number_order(const TelnyxNumberOrder *no, const TimestampTz *occurred_at)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	TimestampTz next = schedule_number_order(no);
	StoreFact	fact;

	store_arg_text(&args, no->id);
	store_arg_text(&args, no->status);
	store_arg_or_null(&args, INT4OID, Int32GetDatum(no->phone_numbers_count.value),
					  !no->phone_numbers_count.present);
	store_arg_or_null(&args, BOOLOID, BoolGetDatum(no->requirements_met.value),
					  !no->requirements_met.present);
	store_arg_text(&args, no->customer_reference);
	store_arg_or_null(&args, TEXTARRAYOID, store_text_array(no->sub_number_order_ids),
					  !no->has_sub_number_order_ids);
	store_arg_or_null(&args, TIMESTAMPTZOID, TimestampTzGetDatum(no->created_at.value),
					  !no->created_at.present);
	/* as of */
	store_arg_or_null(&args, TIMESTAMPTZOID,
					  TimestampTzGetDatum(no->updated_at.present ? no->updated_at.value :
										  occurred_at ? *occurred_at : 0),
					  !no->updated_at.present && occurred_at == NULL);
	store_arg(&args, JSONBOID, JsonbPGetDatum(no->data));
	store_arg_or_null(&args, TIMESTAMPTZOID, TimestampTzGetDatum(next), next == 0);
	store_arg_or_null(&args, TIMESTAMPTZOID,
					  TimestampTzGetDatum(occurred_at ? *occurred_at : 0),
					  occurred_at == NULL);

	schema = store_begin(&scope);

	/*
	 * The number order as of $8, unless what is recorded is newer: a later
	 * updated_at, or ($11, a delivery's occurred_at) a later delivery
	 * applied.  The row lock the first writer takes orders two writers of
	 * the same number order; the second then compares with what the first
	 * wrote.
	 */
	store_exec(schema,
			   "UPDATE %1$s.telnyx_number_orders n SET"
			   " status = COALESCE($2, n.status),"
			   " phone_numbers_count = COALESCE($3, n.phone_numbers_count),"
			   " requirements_met = COALESCE($4, n.requirements_met),"
			   " customer_reference = COALESCE($5, n.customer_reference),"
			   " sub_number_order_ids = COALESCE($6, n.sub_number_order_ids),"
			   " created_at = COALESCE($7, n.created_at),"
			   " updated_at = COALESCE($8, n.updated_at),"
			   " data = $9,"
			   " next_fetch_at = $10,"
			   " fetch_failures = 0,"
			   " fetched_at = pg_catalog.now(),"
			   " synced_at = pg_catalog.now()"
			   " WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
			   "   AND (n.updated_at OPERATOR(pg_catalog.>) $8) IS NOT TRUE"
			   "   AND NOT EXISTS (SELECT 1 FROM %1$s.telnyx_webhook_deliveries d"
			   "        WHERE d.number_order_id OPERATOR(pg_catalog.=) $1 AND d.applied"
			   "          AND d.occurred_at OPERATOR(pg_catalog.>) $11)",
			   &args, SPI_OK_UPDATE);
	if (SPI_processed > 0)
	{
		fact = STORE_FACT_APPLIED;
		if (no->has_phone_numbers)
			store_numbers(schema, no);
	}
	else
	{
		StoreArgs	older = {0};

		/*
		 * An answer older than what is recorded changes nothing but when
		 * the number order is next fetched (if what is recorded is still
		 * open): a refresh claimed it until its lease would end.
		 */
		store_arg_text(&older, no->id);
		store_arg(&older, TIMESTAMPTZOID,
				  TimestampTzGetDatum(schedule_next(true, &no->created_at)));
		store_exec(schema,
				   "UPDATE %1$s.telnyx_number_orders n SET"
				   " next_fetch_at = CASE WHEN n.status IS NULL"
				   "   OR n.status OPERATOR(pg_catalog.=) 'pending'"
				   "   OR EXISTS (SELECT 1 FROM %1$s.telnyx_phone_numbers p"
				   "        WHERE p.order_id OPERATOR(pg_catalog.=) n.order_id"
				   "          AND p.group_index OPERATOR(pg_catalog.=) n.group_index"
				   "          AND p.number_order_id OPERATOR(pg_catalog.=) n.number_order_id"
				   "          AND p.status OPERATOR(pg_catalog.=) 'pending')"
				   "  THEN $2 END,"
				   " fetched_at = pg_catalog.now()"
				   " WHERE n.number_order_id OPERATOR(pg_catalog.=) $1",
				   &older, SPI_OK_UPDATE);
		fact = SPI_processed > 0 ? STORE_FACT_OLDER : STORE_FACT_UNLINKED;
	}
	store_end(&scope);
	return fact;
}

/*
 * store_lock
 *		Lock the rows of an order (number_order false) or of every link to a
 *		number order, in the current transaction, without waiting: false if
 *		another transaction holds one of them (or the order is gone); the
 *		links it did lock then stay locked until the transaction ends, and
 *		nothing is written.  A writer that claimed what it writes in an
 *		earlier transaction takes its locks so, and skips what a user is
 *		writing rather than wait for it (and perhaps deadlock with it).
 */
bool
store_lock(const char *id, bool number_order)
{
	StoreArgs	args = {0};
	StoreValue	all_locked = {0};

	store_arg_text(&args, id);
	if (!number_order)
		return store_run("SELECT 1 FROM %1$s.telnyx_inexplicit_orders o"
						 " WHERE o.id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED",
						 &args, SPI_OK_SELECT, NULL, NULL) > 0;
	(void) store_run("SELECT (SELECT pg_catalog.count(*) FROM %1$s.telnyx_number_orders n"
					 "         WHERE n.number_order_id OPERATOR(pg_catalog.=) $1)"
					 "       OPERATOR(pg_catalog.=)"
					 "       (SELECT pg_catalog.count(*) FROM"
					 "         (SELECT 1 FROM %1$s.telnyx_number_orders n"
					 "           WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
					 "           FOR UPDATE SKIP LOCKED) l)",
					 &args, SPI_OK_SELECT, store_row_value, &all_locked);
	return DatumGetBool(all_locked.value);
}

/*
 * store_fetch_failed
 *		A fetch of an order (number_order false) or of a number order
 *		failed: count one more failure in a row, and return how many there
 *		are (0 if it is no longer recorded).  The caller holds its rows
 *		(store_lock).
 */
int
store_fetch_failed(const char *id, bool number_order)
{
	StoreArgs	args = {0};
	StoreValue	failures = {0};

	store_arg_text(&args, id);
	if (number_order)
		(void) store_run("WITH u AS ("
						 " UPDATE %1$s.telnyx_number_orders n"
						 "  SET fetch_failures = n.fetch_failures OPERATOR(pg_catalog.+) 1"
						 "  WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
						 "  RETURNING n.fetch_failures)"
						 " SELECT pg_catalog.max(u.fetch_failures) FROM u",
						 &args, SPI_OK_SELECT, store_row_value, &failures);
	else
		(void) store_run("WITH u AS ("
						 " UPDATE %1$s.telnyx_inexplicit_orders o"
						 "  SET fetch_failures = o.fetch_failures OPERATOR(pg_catalog.+) 1"
						 "  WHERE o.id OPERATOR(pg_catalog.=) $1"
						 "  RETURNING o.fetch_failures)"
						 " SELECT pg_catalog.max(u.fetch_failures) FROM u",
						 &args, SPI_OK_SELECT, store_row_value, &failures);
	return failures.isnull ? 0 : DatumGetInt32(failures.value);
}

/*
 * store_fetch_again_at
 *		Make an order or number order still being followed due again at
 *		when, if that is sooner than it is now; never for what has ended
 *		meanwhile (NULL).
 */
void
store_fetch_again_at(const char *id, bool number_order, TimestampTz when)
{
	StoreArgs	args = {0};

	store_arg_text(&args, id);
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(when));
	if (number_order)
		(void) store_run("UPDATE %1$s.telnyx_number_orders n"
						 " SET next_fetch_at = LEAST(n.next_fetch_at, $2)"
						 " WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
						 "   AND n.next_fetch_at IS NOT NULL",
						 &args, SPI_OK_UPDATE, NULL, NULL);
	else
		(void) store_run("UPDATE %1$s.telnyx_inexplicit_orders o"
						 " SET next_refresh_at = LEAST(o.next_refresh_at, $2)"
						 " WHERE o.id OPERATOR(pg_catalog.=) $1"
						 "   AND o.next_refresh_at IS NOT NULL",
						 &args, SPI_OK_UPDATE, NULL, NULL);
}

/*
 * store_purge_history
 *		Delete up to max events and up to max webhook deliveries from before
 *		cutoff, oldest first, skipping rows another transaction holds;
 *		returns how many rows.  Kept: every event of an order still open
 *		(listed by telnyx_open_orders: a listener may still want it), and a
 *		number order's newest applied delivery (an older delivery Telnyx
 *		retries is known to be older by it).
 */
int
store_purge_history(TimestampTz cutoff, int max)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	int			n;

	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(cutoff));
	store_arg(&args, INT4OID, Int32GetDatum(max));
	schema = store_begin(&scope);
	store_exec(schema,
			   "DELETE FROM %1$s.telnyx_order_events e"
			   " WHERE e.seq OPERATOR(pg_catalog.=) ANY (ARRAY("
			   "  SELECT x.seq FROM %1$s.telnyx_order_events x"
			   "   WHERE x.at OPERATOR(pg_catalog.<) $1"
			   "     AND NOT EXISTS (SELECT 1 FROM %1$s.telnyx_open_orders v"
			   "          WHERE v.order_id OPERATOR(pg_catalog.=) x.order_id)"
			   "   ORDER BY x.seq LIMIT $2 FOR UPDATE SKIP LOCKED))",
			   &args, SPI_OK_DELETE);
	n = (int) SPI_processed;
	store_exec(schema,
			   "DELETE FROM %1$s.telnyx_webhook_deliveries d"
			   " WHERE d.event_id OPERATOR(pg_catalog.=) ANY (ARRAY("
			   "  SELECT x.event_id FROM %1$s.telnyx_webhook_deliveries x"
			   "   WHERE x.received_at OPERATOR(pg_catalog.<) $1"
			   "     AND (NOT x.applied OR x.occurred_at IS NULL"
			   "          OR EXISTS (SELECT 1 FROM %1$s.telnyx_webhook_deliveries y"
			   "               WHERE y.number_order_id OPERATOR(pg_catalog.=) x.number_order_id"
			   "                 AND y.applied"
			   "                 AND y.occurred_at OPERATOR(pg_catalog.>) x.occurred_at))"
			   "   ORDER BY x.received_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
			   &args, SPI_OK_DELETE);
	n += (int) SPI_processed;
	store_end(&scope);
	return n;
}

/*
 * store_webhook_delivery
 *		Remember a webhook delivery by its event id; false if it was seen
 *		before (and then nothing is written).
 */
bool
store_webhook_delivery(const char *event_id, const char *event_type,
					   const TimestampTz *occurred_at, const char *number_order_id)
{
	StoreArgs	args = {0};

	store_arg_text(&args, event_id);
	store_arg_text(&args, event_type);
	store_arg_or_null(&args, TIMESTAMPTZOID,
					  TimestampTzGetDatum(occurred_at ? *occurred_at : 0),
					  occurred_at == NULL);
	store_arg_text(&args, number_order_id);
	return store_run("INSERT INTO %1$s.telnyx_webhook_deliveries"
					 " (event_id, event_type, occurred_at, number_order_id, applied)"
					 " VALUES ($1, $2, $3, $4, true)"
					 " ON CONFLICT (event_id) DO NOTHING",
					 &args, SPI_OK_INSERT, NULL, NULL) > 0;
}

/*
 * A delivery that was not applied: its number order is not linked yet, or
 * what is recorded is newer.
 */
void
store_webhook_unapplied(const char *event_id)
{
	StoreArgs	args = {0};

	store_arg_text(&args, event_id);
	(void) store_run("UPDATE %1$s.telnyx_webhook_deliveries SET applied = false"
					 " WHERE event_id OPERATOR(pg_catalog.=) $1",
					 &args, SPI_OK_UPDATE, NULL, NULL);
}

/*
 * The numbers of a number order, as its answer lists them: numbers no
 * longer listed are deleted, the rest upserted in one statement (a number
 * listed twice counts once, as its last listing says).
 */
static void
store_numbers(const char *schema, const TelnyxNumberOrder *no)
{
	Column		cols[STORE_MAX_ARGS + 1];
	StoreArgs	gone = {0};
	StoreArgs	args = {0};
	List	   *numbers = NIL;
	ListCell   *lc;
	PhoneNumberAt *sorted;
	int			rows = list_length(no->phone_numbers);
	int			row = 0;
	int			k;

	foreach(lc, no->phone_numbers)
		numbers = lappend(numbers, ((TelnyxPhoneNumber *) lfirst(lc))->phone_number);
	store_arg_text(&gone, no->id);
	store_arg(&gone, TEXTARRAYOID, store_text_array(numbers));
	store_exec(schema,
			   "DELETE FROM %1$s.telnyx_phone_numbers p"
			   " WHERE p.number_order_id OPERATOR(pg_catalog.=) $1"
			   "   AND p.phone_number OPERATOR(pg_catalog.<>) ALL ($2)",
			   &gone, SPI_OK_DELETE);
	if (rows == 0)
		return;

	/* a number listed twice counts once, as its last listing says */
	sorted = palloc(sizeof(PhoneNumberAt) * rows);
	foreach(lc, no->phone_numbers)
	{
		sorted[foreach_current_index(lc)].pn = (TelnyxPhoneNumber *) lfirst(lc);
		sorted[foreach_current_index(lc)].at = foreach_current_index(lc);
	}
	qsort(sorted, rows, sizeof(PhoneNumberAt), phone_number_at_cmp);

	STORE_NUMBER_COLUMNS(STORE_COLUMN_INIT);
	for (k = 0; k < rows; k++)
	{
		TelnyxPhoneNumber *pn = sorted[k].pn;

		if (k + 1 < rows && strcmp(sorted[k + 1].pn->phone_number, pn->phone_number) == 0)
			continue;
		STORE_NUMBER_COLUMNS(STORE_COLUMN_FILL);
		row++;
	}
	rows = row;
	store_arg_text(&args, no->id);
	STORE_NUMBER_COLUMNS(STORE_COLUMN_ARG);

	/*
	 * Every number, under every group the number order is linked to; the
	 * numbers that became "success" in it are recorded, one event per
	 * number order and group, and announced.  This statement records
	 * them, not a trigger: a restore loads the rows without an event.
	 * "was" reads the rows as they were before the statement.
	 */
	store_exec(schema,
			   "WITH was AS ("
			   " SELECT w.order_id, w.group_index, w.phone_number, w.status"
			   "  FROM %1$s.telnyx_phone_numbers w"
			   "  WHERE w.number_order_id OPERATOR(pg_catalog.=) $1),"
			   " up AS ("
			   "INSERT INTO %1$s.telnyx_phone_numbers AS t"
			   " (order_id, group_index, number_order_id, bought_at"
			   STORE_NUMBER_COLUMNS(STORE_SQL_NAME) ")"
			   " SELECT n.order_id, n.group_index, n.number_order_id,"
			   "  CASE WHEN x.status OPERATOR(pg_catalog.=) 'success'"
			   "   THEN pg_catalog.now() END"
			   STORE_NUMBER_COLUMNS(STORE_SQL_VALUE)
			   " FROM %1$s.telnyx_number_orders n,"
			   STORE_SQL_ROWS(STORE_NUMBER_COLUMNS)
			   " WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
			   " ON CONFLICT (order_id, group_index, number_order_id, phone_number)"
			   " DO UPDATE SET"
			   " bought_at = COALESCE(t.bought_at, EXCLUDED.bought_at),"
			   " synced_at = pg_catalog.now()"
			   STORE_NUMBER_COLUMNS(STORE_SQL_SET)
			   " RETURNING t.order_id, t.group_index, t.number_order_id, t.phone_number,"
			   "  t.status),"
			   " ev AS ("
			   " INSERT INTO %1$s.telnyx_order_events"
			   "  (event, order_id, group_index, number_order_id, numbers,"
			   "   customer_reference)"
			   " SELECT 'numbers_bought', u.order_id, u.group_index, u.number_order_id,"
			   "  pg_catalog.count(*), o.customer_reference"
			   "  FROM up u LEFT JOIN was w"
			   "   ON w.order_id OPERATOR(pg_catalog.=) u.order_id"
			   "   AND w.group_index OPERATOR(pg_catalog.=) u.group_index"
			   "   AND w.phone_number OPERATOR(pg_catalog.=) u.phone_number"
			   "  LEFT JOIN %1$s.telnyx_inexplicit_orders o"
			   "   ON o.id OPERATOR(pg_catalog.=) u.order_id"
			   "  WHERE u.status OPERATOR(pg_catalog.=) 'success'"
			   "   AND w.status IS DISTINCT FROM 'success'"
			   "  GROUP BY u.order_id, u.group_index, u.number_order_id,"
			   "   o.customer_reference"
			   " RETURNING seq)"
			   " SELECT pg_catalog.pg_notify('telnyx_orders',"
			   "  pg_catalog.json_build_object('event', 'numbers_bought',"
			   "   'seq', ev.seq)::text)"
			   " FROM ev",
			   &args, SPI_OK_SELECT);
}

/*
 * store_next_refresh_ms
 *		Milliseconds until an order is due for a refresh (0 if one is due
 *		now), or -1 if none will be.
 */
double
store_next_refresh_ms(void)
{
	StoreValue	next = {0};

	(void) store_run("SELECT LEAST((SELECT pg_catalog.min(o.next_refresh_at)"
					 "                FROM %1$s.telnyx_inexplicit_orders o),"
					 "             (SELECT pg_catalog.min(n.next_fetch_at)"
					 "                FROM %1$s.telnyx_number_orders n))",
					 NULL, SPI_OK_SELECT, store_row_value, &next);
	return next.isnull ? -1 : store_ms_until(DatumGetTimestampTz(next.value));
}

/*
 * store_init
 *		From _PG_init: the store's callbacks.
 */
void
store_init(void)
{
	RegisterXactCallback(store_xact, NULL);
	CacheRegisterSyscacheCallback(NAMESPACEOID, store_forget_schema, (Datum) 0);
	CacheRegisterRelcacheCallback(store_forget_relation, (Datum) 0);
}

/* A schema changed (renamed, dropped, made): read the extension again. */
static void
store_forget_schema(Datum arg, int cacheid, uint32 hashvalue)
{
	extension_cached = false;
}

/* The requests table (or every relation) changed: read the extension again. */
static void
store_forget_relation(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cached_requests_rel)
		extension_cached = false;
}

/* The transaction has ended: the extension is read again in the next. */
static void
store_xact(XactEvent event, void *arg)
{
	if (store_xact_ended(event))
		extension_cached = false;
}

/*
 * store_xact_ended
 *		Does event end this process's part in the transaction (commit,
 *		abort, prepare)?  For the per-transaction caches' callbacks.
 */
bool
store_xact_ended(XactEvent event)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			return true;
		default:
			return false;
	}
}

/*
 * store_record_call
 *		Record a synchronous call (its key, and its body as JSON text)
 *		before it is sent, in the current transaction (calls.c commits it
 *		on its own).
 */
void
store_record_call(const char *request_key, const char *body, Oid role)
{
	StoreArgs	args = {0};

	store_arg_text(&args, request_key);
	store_arg_text(&args, body);
	store_arg(&args, OIDOID, ObjectIdGetDatum(role));
	(void) store_run("INSERT INTO %1$s.telnyx_order_calls"
					 " (request_key, customer_reference, body, spent_by)"
					 " SELECT $1::pg_catalog.uuid,"
					 "  b OPERATOR(pg_catalog.->>) 'customer_reference', b, $3"
					 "  FROM (SELECT $2::pg_catalog.jsonb) AS x(b)",
					 &args, SPI_OK_INSERT, NULL, NULL);
}

/*
 * store_call_refused
 *		Telnyx refused the call of request_key: marked so (once).  Returns
 *		whether it was marked now, with what the call counted against the
 *		spend limits, for its give-back: the role that spent, when it was
 *		sent, and its body (in the caller's memory context).
 */
bool
store_call_refused(const char *request_key, Oid *role, TimestampTz *at,
				   Jsonb **body)
{
	StoreArgs	args = {0};
	StoreCall	call = {0};

	store_arg_text(&args, request_key);
	if (store_run("UPDATE %1$s.telnyx_order_calls c SET refused_at = pg_catalog.now()"
				  " WHERE c.request_key OPERATOR(pg_catalog.=) $1::pg_catalog.uuid"
				  "   AND c.refused_at IS NULL"
				  " RETURNING c.request_key::pg_catalog.text, c.body, c.sent_at,"
				  "  COALESCE(c.spent_by, 0::pg_catalog.oid)",
				  &args, SPI_OK_UPDATE_RETURNING, store_call_row, &call) != 1)
		return false;
	*role = call.spent_by;
	*at = call.sent_at;
	*body = call.body;
	return true;
}

/* A call (its key, body, sent_at and spent_by) into *(StoreCall *) arg. */
static void
store_call_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	StoreCall  *call = (StoreCall *) arg;
	bool		isnull;

	call->request_key = SPI_getvalue(tuple, desc, 1);
	call->body = DatumGetJsonbPCopy(SPI_getbinval(tuple, desc, 2, &isnull));
	call->sent_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 3, &isnull));
	call->spent_by = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
}

/* A call, appended to *(List **) arg. */
static void
store_open_call_row(HeapTuple tuple, TupleDesc desc, void *arg)
{
	StoreCall  *call = palloc0(sizeof(StoreCall));

	store_call_row(tuple, desc, call);
	*(List **) arg = lappend(*(List **) arg, call);
}

/*
 * store_open_calls
 *		The calls (StoreCall *, in the caller's memory context, oldest
 *		first) with one of the customer_references given (a NULL among
 *		them: the calls without one) whose order is not recorded here.
 */
List *
store_open_calls(List *references, bool without_reference)
{
	StoreArgs	args = {0};
	List	   *calls = NIL;

	if (references == NIL && !without_reference)
		return NIL;
	store_arg(&args, TEXTARRAYOID, store_text_array(references));
	store_arg(&args, BOOLOID, BoolGetDatum(without_reference));
	(void) store_run(/* two branches, each through the index on customer_reference */
					 "SELECT c.request_key::pg_catalog.text, c.body, c.sent_at,"
					 "  COALESCE(c.spent_by, 0::pg_catalog.oid)"
					 "  FROM (SELECT * FROM %1$s.telnyx_order_calls"
					 "         WHERE customer_reference OPERATOR(pg_catalog.=) ANY ($1)"
					 "        UNION ALL"
					 "        SELECT * FROM %1$s.telnyx_order_calls"
					 "         WHERE $2 AND customer_reference IS NULL) AS c"
					 " WHERE NOT EXISTS (SELECT 1 FROM %1$s.telnyx_inexplicit_orders o"
					 "        WHERE o.request_key OPERATOR(pg_catalog.=) c.request_key)"
					 " ORDER BY c.sent_at",
					 &args, SPI_OK_SELECT, store_open_call_row, &calls);
	return calls;
}

/*
 * store_orders_missing
 *		Of the orders in the list, those the tables do not hold yet.
 */
List *
store_orders_missing(List *orders)
{
	StoreArgs	args = {0};
	List	   *ids = NIL;
	List	   *known = NIL;
	List	   *missing = NIL;
	ListCell   *lc;

	if (orders == NIL)
		return NIL;
	foreach(lc, orders)
		ids = lappend(ids, ((TelnyxOrder *) lfirst(lc))->id);
	store_arg(&args, TEXTARRAYOID, store_text_array(ids));
	(void) store_run("SELECT o.id FROM %1$s.telnyx_inexplicit_orders o"
					 " WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)",
					 &args, SPI_OK_SELECT, store_row_text, &known);
	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		ListCell   *k;
		bool		found = false;

		foreach(k, known)
			found = found || strcmp((const char *) lfirst(k), order->id) == 0;
		if (!found)
			missing = lappend(missing, order);
	}
	list_free_deep(known);
	return missing;
}

/*
 * store_row_text
 *		A StoreRowFn: the text of the first column, appended to
 *		*(List **) arg.
 */
void
store_row_text(HeapTuple tuple, TupleDesc desc, void *arg)
{
	*(List **) arg = lappend(*(List **) arg, SPI_getvalue(tuple, desc, 1));
}

/*
 * store_schema_name
 *		The schema the extension was created in (unquoted), palloc'd.
 *		Raises an error if the extension does not exist in this database.
 */
char *
store_schema_name(void)
{
	return store_extension(NULL, NULL);
}

/*
 * store_namespace
 *		The extension's schema, by its oid.  Raises an error if the
 *		extension does not exist in this database.
 */
Oid
store_namespace(void)
{
	store_read_extension();
	return cached_namespace;
}

/*
 * store_extension
 *		The extension's schema (unquoted, palloc'd) and, when owner is not
 *		NULL, its owner.  Raises an error if the extension does not exist in
 *		this database.
 */
char *
store_extension(Oid *owner, char **version)
{
	store_read_extension();
	if (owner != NULL)
		*owner = cached_owner;
	if (version != NULL)
		*version = pstrdup(cached_version);
	return pstrdup(cached_schema);
}

/*
 * Read the extension's row of pg_extension into the cache, unless it is
 * there (it is forgotten after a change that could move it: see
 * extension_cached).
 */
static void
store_read_extension(void)
{
	bool		isnull;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			nsp = InvalidOid;
	char	   *name;

	if (extension_cached)
		return;

	/* one read of pg_extension, by name */
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("telnyx_orders"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"%s\" does not exist", "telnyx_orders")));
	{
		Datum		v = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		nsp = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		cached_owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
		text_to_cstring_buffer(DatumGetTextPP(v), cached_version, sizeof(cached_version));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	name = OidIsValid(nsp) ? get_namespace_name(nsp) : NULL;
	if (name == NULL)
		elog(ERROR, "could not find the schema of extension \"telnyx_orders\"");
	strlcpy(cached_schema, name, sizeof(cached_schema));
	cached_namespace = nsp;
	cached_schema_trusted = store_schema_trusted(nsp, cached_owner);
	cached_requests_rel = get_relname_relid("telnyx_order_requests", nsp);
	extension_cached = true;
}

/*
 * store_require_version
 *		Refuse, before anything is sent or written, to work for a database
 *		whose SQL objects are of another version than this library: its
 *		tables may lack what the library records, and an order bought and
 *		then not recorded is an order forgotten.  Returns the database's
 *		version when want_version is true and it differs, instead of
 *		raising an error (for the worker, which waits).  Nothing is checked
 *		while CREATE or ALTER EXTENSION runs the scripts.
 */
char *
store_require_version(bool want_version)
{
	char	   *version;

	if (creating_extension)
		return NULL;
	(void) store_extension(NULL, &version);
	if (strcmp(version, TELNYX_ORDERS_VERSION) == 0)
		return NULL;
	if (want_version)
		return version;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"telnyx_orders\" is at version %s in database \"%s\", but its library is version %s",
					version, get_database_name(MyDatabaseId), TELNYX_ORDERS_VERSION),
			 errdetail("Nothing was sent."),
			 errhint("Run \"ALTER EXTENSION telnyx_orders UPDATE\" in this database.")));
	return NULL;				/* keep the compiler quiet */
}

/*
 * store_try
 *		Run fn(arg) in a subtransaction of its own.  On an error, roll it
 *		back and return the error (in the caller's memory context, for the
 *		caller to report and free); otherwise NULL.  The caller's memory
 *		context and resource owner are kept either way.
 */
ErrorData *
store_try(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * store_durable_commit
 *		Make the current transaction's commit durable whatever
 *		synchronous_commit says elsewhere (off, local: on), for a transaction
 *		after whose commit something is sent (a claim, a call's record): a
 *		crash or a failover must not take back what it wrote.
 */
void
store_durable_commit(void)
{
	if (synchronous_commit < SYNCHRONOUS_COMMIT_ON)
		(void) set_config_option("synchronous_commit", "on", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0,
								 false);
}

/*
 * store_pin_settings
 *		For a process of the extension's own (a sender, a recorder): pin
 *		search_path and the planner's settings of its statements for its
 *		whole life.
 */
void
store_pin_settings(void)
{
	int			i;

	SetConfigOption("search_path", STORE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	for (i = 0; i < lengthof(store_planner_settings); i++)
		SetConfigOption(store_planner_settings[i], "off", PGC_SUSET,
						PGC_S_OVERRIDE);
}

/*
 * store_enter
 *		Act as the extension's owner, with search_path pinned to pg_catalog
 *		and pg_temp and the planner's settings of store_planner_settings,
 *		until store_leave:
 *		for the extension's own statements on its own tables, and nothing
 *		else.  The user id is a security-
 *		restricted one, as in a maintenance command, and on an error the
 *		transaction's abort restores the caller's identity and settings.
 *		Returns the extension's schema (unquoted, palloc'd).
 */
char *
store_enter(StoreScope *scope)
{
	Oid			owner = InvalidOid;
	char	   *schema;
	bool		pin_path;
	int			i;

	/* a schema renamed by a transaction that has committed is seen now */
	AcceptInvalidationMessages();
	schema = store_extension(&owner, NULL);
	if (!cached_schema_trusted)
		store_refuse_schema(schema);

	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	/*
	 * the SQL functions and the workers have search_path pinned already,
	 * the workers the planner's settings too; a plan is kept whatever the
	 * context, so it is always made under the same settings
	 */
	scope->nestlevel = -1;
	pin_path = namespace_search_path == NULL ||
		strcmp(namespace_search_path, STORE_SEARCH_PATH) != 0;
	if (pin_path || enable_seqscan || enable_bitmapscan || enable_hashjoin ||
		enable_mergejoin || jit_enabled)
	{
		scope->nestlevel = NewGUCNestLevel();
		if (pin_path)
			(void) set_config_option("search_path", STORE_SEARCH_PATH,
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
									 true, 0, false);
		for (i = 0; i < lengthof(store_planner_settings); i++)
			(void) set_config_option(store_planner_settings[i], "off",
									 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
									 true, 0, false);
	}
	SetUserIdAndSecContext(owner, scope->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	return schema;
}

/* Back to the caller's identity and settings. */
void
store_leave(StoreScope *scope)
{
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
	if (scope->nestlevel >= 0)
		AtEOXact_GUC(true, scope->nestlevel);
}

/*
 * store_begin
 *		store_enter, and connect SPI, for statements run with store_exec.
 *		Returns the extension's schema.
 */
char *
store_begin(StoreScope *scope)
{
	char	   *schema = store_enter(scope);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return schema;
}

/* Undo store_begin. */
void
store_end(StoreScope *scope)
{
	SPI_finish();
	store_leave(scope);
}

/*
 * store_ms_until
 *		Milliseconds from now until when (0 if it has passed).
 */
double
store_ms_until(TimestampTz when)
{
	TimestampTz now = GetCurrentTimestamp();

	return when <= now ? 0 : (double) (when - now) / 1000.0;
}

/*
 * store_arg
 *		Add the next parameter of a statement: a value of type.
 */
void
store_arg(StoreArgs *args, Oid type, Datum value)
{
	store_arg_at(args, args->n + 1, type, value, false);
}

/* The next parameter, NULL when isnull. */
void
store_arg_or_null(StoreArgs *args, Oid type, Datum value, bool isnull)
{
	store_arg_at(args, args->n + 1, type, value, isnull);
}

/* The next parameter, a text: NULL when s is. */
void
store_arg_text(StoreArgs *args, const char *s)
{
	store_arg_at(args, args->n + 1, TEXTOID,
				 s != NULL ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

/*
 * store_arg_at
 *		Set parameter $n (for the statements whose column lists number
 *		theirs).  Each is set once.
 */
void
store_arg_at(StoreArgs *args, int n, Oid type, Datum value, bool isnull)
{
	if (n < 1 || n > STORE_MAX_ARGS || OidIsValid(args->types[n - 1]))
		elog(ERROR, "parameter $%d of a statement is out of range or set twice", n);
	args->types[n - 1] = type;
	args->values[n - 1] = isnull ? (Datum) 0 : value;
	args->nulls[n - 1] = isnull ? 'n' : ' ';
	args->n = Max(args->n, n);
}

/*
 * store_row_value
 *		A StoreRowFn: the first column of the first row (of a fixed-size
 *		type), into *(StoreValue *) arg, in the caller's memory context.
 */
void
store_row_value(HeapTuple tuple, TupleDesc desc, void *arg)
{
	StoreValue *v = (StoreValue *) arg;

	Form_pg_attribute att = TupleDescAttr(desc, 0);

	if (v->found)
		return;
	v->found = true;
	v->value = SPI_getbinval(tuple, desc, 1, &v->isnull);
	/* by reference where Datums are 32 bits wide (an int8, a timestamptz) */
	if (!v->isnull)
		v->value = datumCopy(v->value, att->attbyval, att->attlen);
}

/*
 * store_run_kept
 *		What store_run does (sql: a literal, or an entry of a static table:
 *		see store_exec_kept).
 */
uint64
store_run_kept(const char *sql, const StoreArgs *args, int expected,
			   StoreRowFn row, void *arg)
{
	MemoryContext callercxt = CurrentMemoryContext;
	StoreScope	scope;
	char	   *schema;
	uint64		processed;
	uint64		i;

	schema = store_begin(&scope);
	store_exec_kept(schema, sql, args, expected);
	processed = SPI_processed;
	if (row != NULL && SPI_tuptable != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(callercxt);

		for (i = 0; i < SPI_processed; i++)
			row(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, arg);
		MemoryContextSwitchTo(old);
	}
	store_end(&scope);
	return processed;
}

/*
 * store_exec_kept
 *		Run the statement sql (its "%1$s" standing for the extension's
 *		schema) with args (NULL: none), through a plan prepared on first use
 *		and kept; raise an error unless SPI answers expected.  SPI must be
 *		connected, inside store_enter, whose schema is schema.  The plan is
 *		found again by the address of sql, which must therefore be a string
 *		that lives as long as the process and always says the same: called
 *		through the store_exec or store_run macros (a literal), or with an
 *		entry of a static table.  The same sql must always have parameters
 *		of the same types: other types are an error, not a second plan.
 *		Plans name the schema as it was when they were prepared: if it was
 *		renamed (or the extension created again elsewhere), they are
 *		dropped, to be prepared again (and freed once none of them runs).
 */
void
store_exec_kept(const char *schema, const char *sql, const StoreArgs *args,
				int expected)
{
	static const StoreArgs none = {0};
	KeptPlan   *kept = NULL;
	int			rc;
	int			i;

	if (args == NULL)
		args = &none;
	for (i = 0; i < args->n; i++)
		if (!OidIsValid(args->types[i]))
			elog(ERROR, "parameter $%d of a statement was not set", i + 1);

	if (kept_schema == NULL || strcmp(kept_schema, schema) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (i = 0; i < nkept_plans; i++)
		{
			retired_plans = lappend(retired_plans, kept_plans[i].plan);
			pfree(kept_plans[i].types);
		}
		MemoryContextSwitchTo(old);
		nkept_plans = 0;
		if (kept_schema != NULL)
			pfree(kept_schema);
		kept_schema = MemoryContextStrdup(TopMemoryContext, schema);
	}

	for (i = 0; i < nkept_plans && kept == NULL; i++)
		if (kept_plans[i].sql == sql)
			kept = &kept_plans[i];

	if (kept == NULL)
	{
		SPIPlanPtr	plan;
		Oid		   *types;

		/* every statement is written in the code: more is a text made at run time */
		if (nkept_plans == STORE_MAX_KEPT_PLANS)
			elog(ERROR, "more than %d statements to keep plans of: one is made at run time",
				 STORE_MAX_KEPT_PLANS);
		plan = SPI_prepare(psprintf(sql, quote_identifier(schema)), args->n,
						   (Oid *) args->types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		/* all that can fail before the slot is taken */
		types = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * Max(args->n, 1));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		memcpy(types, args->types, sizeof(Oid) * args->n);
		kept = &kept_plans[nkept_plans++];
		kept->sql = sql;
		kept->plan = plan;
		kept->nargs = args->n;
		kept->types = types;
	}
	else if (kept->nargs != args->n ||
			 memcmp(kept->types, args->types, sizeof(Oid) * args->n) != 0)
		elog(ERROR, "a statement was run with parameters of other types than its kept plan");

	if (kept_running == 0 && retired_plans != NIL)
	{
		ListCell   *lc;

		foreach(lc, retired_plans)
			SPI_freeplan((SPIPlanPtr) lfirst(lc));
		list_free(retired_plans);
		retired_plans = NIL;
	}

	store_check_plan(kept->plan);
	kept_running++;
	PG_TRY();
	{
		rc = SPI_execute_plan(kept->plan, (Datum *) args->values, args->nulls,
							  false, 0);
	}
	PG_FINALLY();
	{
		kept_running--;
	}
	PG_END_TRY();
	if (rc != expected)
		elog(ERROR, "statement failed: %s", SPI_result_code_string(rc));
}

/*
 * store_exec_once
 *		Run sql (its "%1$s" standing for the extension's schema), with no
 *		parameters and no plan kept: for a statement made at run time, run
 *		rarely.  SPI must be connected, inside store_enter.
 */
void
store_exec_once(const char *schema, const char *sql, int expected)
{
	int			rc;

	if (get_namespace_oid(schema, true) != store_namespace())
		store_refuse_elsewhere(schema);
	rc = SPI_execute(psprintf(sql, quote_identifier(schema)), false, 0);

	if (rc != expected)
		elog(ERROR, "statement failed: %s", SPI_result_code_string(rc));
}

/*
 * store_check_plan
 *		Refuse to run plan unless every relation it names is the extension's
 *		own (or the catalog's).  A kept plan is analysed again, by the names
 *		in its text, whenever what it depends on changes: had the
 *		extension's schema been renamed and another made under its old name
 *		(by a transaction this one has not heard of yet), the names would
 *		now be that schema's objects, and its views and triggers would run
 *		as the extension's owner.  The plan checked is the one the
 *		execution uses: its relations are locked, so nothing it names is
 *		resolved again before it runs.
 */
static void
store_check_plan(SPIPlanPtr plan)
{
	CachedPlan *cplan = SPI_plan_get_cached_plan(plan);
	Oid			own = store_namespace();
	ListCell   *lc;

	if (cplan == NULL)
		elog(ERROR, "could not get the plan of a statement of the extension");
	foreach(lc, cplan->stmt_list)
	{
		PlannedStmt *ps = lfirst_node(PlannedStmt, lc);
		ListCell   *rl;

		foreach(rl, ps->rtable)
		{
			RangeTblEntry *rte = (RangeTblEntry *) lfirst(rl);
			Oid			nsp;

			/* relations, and views (kept as subqueries from 16 on) */
			if (!OidIsValid(rte->relid))
				continue;
			nsp = get_rel_namespace(rte->relid);
			if (nsp != own && nsp != PG_CATALOG_NAMESPACE)
				store_refuse_elsewhere(get_namespace_name(nsp));
		}
	}
	compat_release_cached_plan(cplan);
}

/*
 * store_schema_trusted
 *		Is schema nsp owned by the extension's owner, a superuser, or (the
 *		public schema from 15 on) the owner of a database that one of those
 *		owns?  Any other owner of it could rename it and make one of the old
 *		name, with objects of its own where the extension's statements, and
 *		the triggers of its tables, run as the extension's owner, look.
 */
static bool
store_schema_trusted(Oid nsp, Oid extowner)
{
	HeapTuple	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			nspowner;

	if (!HeapTupleIsValid(tuple))
		return false;
	nspowner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	ReleaseSysCache(tuple);
#if PG_VERSION_NUM >= 140000
	if (nspowner == ROLE_PG_DATABASE_OWNER)
	{
		tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
		if (!HeapTupleIsValid(tuple))
			return false;
		nspowner = ((Form_pg_database) GETSTRUCT(tuple))->datdba;
		ReleaseSysCache(tuple);
	}
#endif
	return nspowner == extowner || superuser_arg(nspowner);
}

/* The extension's schema is owned by a role it cannot trust: refuse. */
static void
store_refuse_schema(const char *schema)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("telnyx_orders refuses to act in schema \"%s\": its owner is neither a superuser nor the extension's owner",
					schema),
			 errdetail("The owner of a schema can rename it and make another of its name, whose objects the extension's statements would then use with the extension owner's rights."),
			 errhint("Make a superuser own the schema (ALTER SCHEMA %s OWNER TO ...), or install the extension in a schema of its own.",
					 quote_identifier(schema))));
}

/* A statement of the extension would reach into schema: refuse it. */
static void
store_refuse_elsewhere(const char *schema)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("telnyx_orders refuses a statement that names objects outside its schema"),
			 errdetail("Its statement names schema \"%s\", not the schema of the extension: a schema was renamed or made under the extension's name while this transaction ran.",
					   schema ? schema : "?"),
			 errhint("Run it again; if it fails again, check who renamed or created schemas in this database.")));
}

/*
 * store_int8_array
 *		A bigint[] Datum of n int8 Datums, for a statement's parameter.
 */
Datum
store_int8_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * store_text_array
 *		A text[] Datum of strings (char *), for a statement's parameter.
 */
Datum
store_text_array(List *strings)
{
	int			n = list_length(strings);
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, strings)
		elems[i++] = CStringGetTextDatum((const char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/* By phone number, then by place in the answer. */
static int
phone_number_at_cmp(const void *a, const void *b)
{
	const PhoneNumberAt *x = (const PhoneNumberAt *) a;
	const PhoneNumberAt *y = (const PhoneNumberAt *) b;
	int			r = strcmp(x->pn->phone_number, y->pn->phone_number);

	if (r != 0)
		return r;
	return (x->at > y->at) - (x->at < y->at);
}

/* A one-dimensional array of n elements of type elemtype, with NULLs. */
static Datum
array_datum(Datum *elems, bool *nulls, int n, Oid elemtype)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  elemtype, typlen, typbyval,
											  typalign));
}

static void
column_init(Column *c, Oid type, int n)
{
	c->type = type;
	c->values = palloc0(sizeof(Datum) * Max(n, 1));
	c->nulls = palloc0(sizeof(bool) * Max(n, 1));
}

static void
column_set(Column *c, int i, Datum value, bool isnull)
{
	c->values[i] = isnull ? (Datum) 0 : value;
	c->nulls[i] = isnull;
}

/* A text value, NULL when s is. */
static void
column_text(Column *c, int i, const char *s)
{
	column_set(c, i, s ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

/* The text of a uuid (the statement casts it), NULL when s is. */
static void
column_uuid(Column *c, int i, const char *s)
{
	column_text(c, i, s);
}

static void
column_int4(Column *c, int i, int32 v)
{
	column_set(c, i, Int32GetDatum(v), false);
}

static void
column_opt_int(Column *c, int i, OptInt v)
{
	column_set(c, i, Int32GetDatum(v.value), !v.present);
}

static void
column_opt_bool(Column *c, int i, OptBool v)
{
	column_set(c, i, BoolGetDatum(v.value), !v.present);
}

static void
column_opt_ts(Column *c, int i, OptTimestamp v)
{
	column_set(c, i, TimestampTzGetDatum(v.value), !v.present);
}

/* A time, NULL when 0. */
static void
column_ts(Column *c, int i, TimestampTz v)
{
	column_set(c, i, TimestampTzGetDatum(v), v == 0);
}

static void
column_jsonb(Column *c, int i, Jsonb *v)
{
	column_set(c, i, JsonbPGetDatum(v), v == NULL);
}

/* A list of strings, as a jsonb array (the statement makes it a text[]). */
static void
column_strings(Column *c, int i, OptStrings v)
{
	column_set(c, i, v.present ? jsonb_string_array(v.strings) : (Datum) 0,
			   !v.present);
}

static Datum
column_array(Column *c, int n)
{
	return array_datum(c->values, c->nulls, n, c->type);
}

static OptStrings
opt_strings(bool present, List *strings)
{
	OptStrings	v;

	v.present = present;
	v.strings = strings;
	return v;
}

/* A jsonb array of the strings. */
static Datum
jsonb_string_array(List *strings)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	ListCell   *lc;

	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, strings)
	{
		v.type = jbvString;
		v.val.string.val = (char *) lfirst(lc);
		v.val.string.len = strlen(v.val.string.val);
		pushJsonbValue(&st, WJB_ELEM, &v);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_ARRAY, NULL)));
}
