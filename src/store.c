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
#include "store.h"
#include "wakeup.h"

/*---- Local types ----*/

typedef enum StoreStatement
{
	STORE_UPSERT_ORDERS,
	STORE_UNLINK_NUMBER_ORDERS,
	STORE_LINK_NUMBER_ORDER,
	STORE_UPDATE_NUMBER_ORDER,
	STORE_OLDER_NUMBER_ORDER,
	STORE_DELETE_GONE_NUMBERS,
	STORE_UPSERT_NUMBERS,
	STORE_KNOWN_ORDERS,
	STORE_CLAIM_REFRESH,
	STORE_CLAIM_NUMBER_ORDERS,
	STORE_NEXT_REFRESH,
	STORE_LOCK_ORDER,
	STORE_LOCK_NUMBER_ORDER,
	STORE_ORDER_FETCH_FAILED,
	STORE_NUMBER_ORDER_FETCH_FAILED,
	STORE_ORDER_FETCH_AGAIN,
	STORE_NUMBER_ORDER_FETCH_AGAIN,
	STORE_NUM_STATEMENTS
} StoreStatement;

/* A phone number and its place in its number order's answer. */
typedef struct PhoneNumberAt
{
	TelnyxPhoneNumber *pn;
	int			at;
} PhoneNumberAt;

typedef struct StoreQuery
{
	const char *sql;			/* %1$s is the quoted schema */
	int			nargs;
	Oid			argtypes[33];
} StoreQuery;

/* The columns of orders and groups STORE_UPSERT_ORDERS takes. */
#define STORE_ORDER_COLUMNS 10
#define STORE_GROUP_COLUMNS 20

/* The columns of phone numbers STORE_UPSERT_NUMBERS takes. */
#define STORE_NUMBER_COLUMNS 9

/* One column of many rows, built for a statement that unnests arrays. */
typedef struct Column
{
	Oid			type;
	Datum	   *values;
	bool	   *nulls;
} Column;

/* The first refresh of an order comes this long after it is recorded. */
#define STORE_REFRESH_FIRST_MS 5000

/*---- GUC variables ----*/

static int	telnyx_refresh_interval_max_s = 600;

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

static const StoreQuery store_queries[STORE_NUM_STATEMENTS] = {
	/*
	 * Orders ($1..$10: id, the four strings, created_at, updated_at, data,
	 * next_refresh_at, how many groups were listed or -1), their groups
	 * ($11..$30, features as a jsonb array), found_by_sync ($31), whether to
	 * delete the groups no longer listed ($32; not for orders just created),
	 * the keys of the requests the orders answer ($33; a link once made is
	 * kept: an order answers one request).  The
	 * groups' foreign key is checked at the end of the statement, when the
	 * orders are there; the groups deleted are beyond the ones listed, so
	 * never ones the statement upserts.
	 */
	[STORE_UPSERT_ORDERS] = {
		"WITH o AS ("
		" INSERT INTO %1$s.telnyx_inexplicit_orders AS o"
		"  (id, connection_id, messaging_profile_id, customer_reference,"
		"   billing_group_id, created_at, updated_at, data, next_refresh_at,"
		"   found_by_sync, synced_at, request_key)"
		" SELECT x.id, x.connection_id, x.messaging_profile_id, x.customer_reference,"
		"   x.billing_group_id, x.created_at, x.updated_at, x.data, x.next_refresh_at,"
		"   $31, pg_catalog.now(), x.request_key::pg_catalog.uuid"
		"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($33))"
		"   AS x(id, connection_id, messaging_profile_id, customer_reference,"
		"        billing_group_id, created_at, updated_at, data, next_refresh_at, ngroups,"
		"        request_key)"
		" ON CONFLICT (id) DO UPDATE SET"
		" connection_id = COALESCE(EXCLUDED.connection_id, o.connection_id),"
		" messaging_profile_id = COALESCE(EXCLUDED.messaging_profile_id, o.messaging_profile_id),"
		" customer_reference = COALESCE(EXCLUDED.customer_reference, o.customer_reference),"
		" billing_group_id = COALESCE(EXCLUDED.billing_group_id, o.billing_group_id),"
		" created_at = COALESCE(EXCLUDED.created_at, o.created_at),"
		" updated_at = COALESCE(EXCLUDED.updated_at, o.updated_at),"
		" data = EXCLUDED.data,"
		" next_refresh_at = EXCLUDED.next_refresh_at,"
		" fetch_failures = 0,"
		" synced_at = pg_catalog.now(),"
		" request_key = COALESCE(o.request_key, EXCLUDED.request_key)"
		" RETURNING 1),"
		" g AS ("
		" INSERT INTO %1$s.telnyx_ordering_groups AS g"
		"  (order_id, group_index, country_iso, phone_number_type,"
		"   national_destination_code, administrative_area, locality, features,"
		"   phone_number_starts_with, phone_number_ends_with,"
		"   phone_number_contains, strategy, quickship, exclude_held_numbers,"
		"   count_requested, count_allocated, status, error_reason,"
		"   created_at, updated_at, synced_at)"
		" SELECT y.order_id, y.group_index, y.country_iso, y.phone_number_type,"
		"   y.national_destination_code, y.administrative_area, y.locality,"
		"   CASE WHEN y.features IS NOT NULL THEN"
		"    ARRAY(SELECT pg_catalog.jsonb_array_elements_text(y.features)) END,"
		"   y.starts_with, y.ends_with, y.contains, y.strategy, y.quickship,"
		"   y.exclude_held_numbers, y.count_requested, y.count_allocated, y.status,"
		"   y.error_reason, y.created_at, y.updated_at, pg_catalog.now()"
		"  FROM ROWS FROM (pg_catalog.unnest($11), pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14), pg_catalog.unnest($15), pg_catalog.unnest($16), pg_catalog.unnest($17), pg_catalog.unnest($18), pg_catalog.unnest($19), pg_catalog.unnest($20), pg_catalog.unnest($21), pg_catalog.unnest($22), pg_catalog.unnest($23), pg_catalog.unnest($24), pg_catalog.unnest($25), pg_catalog.unnest($26), pg_catalog.unnest($27), pg_catalog.unnest($28), pg_catalog.unnest($29), pg_catalog.unnest($30))"
		"   AS y(order_id, group_index, country_iso, phone_number_type,"
		"        national_destination_code, administrative_area, locality, features,"
		"        starts_with, ends_with, contains, strategy, quickship,"
		"        exclude_held_numbers, count_requested, count_allocated, status,"
		"        error_reason, created_at, updated_at)"
		" ON CONFLICT (order_id, group_index) DO UPDATE SET"
		" country_iso = COALESCE(EXCLUDED.country_iso, g.country_iso),"
		" phone_number_type = COALESCE(EXCLUDED.phone_number_type, g.phone_number_type),"
		" national_destination_code = COALESCE(EXCLUDED.national_destination_code, g.national_destination_code),"
		" administrative_area = COALESCE(EXCLUDED.administrative_area, g.administrative_area),"
		" locality = COALESCE(EXCLUDED.locality, g.locality),"
		" features = COALESCE(EXCLUDED.features, g.features),"
		" phone_number_starts_with = COALESCE(EXCLUDED.phone_number_starts_with, g.phone_number_starts_with),"
		" phone_number_ends_with = COALESCE(EXCLUDED.phone_number_ends_with, g.phone_number_ends_with),"
		" phone_number_contains = COALESCE(EXCLUDED.phone_number_contains, g.phone_number_contains),"
		" strategy = COALESCE(EXCLUDED.strategy, g.strategy),"
		" quickship = COALESCE(EXCLUDED.quickship, g.quickship),"
		" exclude_held_numbers = COALESCE(EXCLUDED.exclude_held_numbers, g.exclude_held_numbers),"
		" count_requested = COALESCE(EXCLUDED.count_requested, g.count_requested),"
		" count_allocated = COALESCE(EXCLUDED.count_allocated, g.count_allocated),"
		" status = COALESCE(EXCLUDED.status, g.status),"
		" error_reason = COALESCE(EXCLUDED.error_reason, g.error_reason),"
		" created_at = COALESCE(EXCLUDED.created_at, g.created_at),"
		" updated_at = COALESCE(EXCLUDED.updated_at, g.updated_at),"
		" synced_at = pg_catalog.now()"
		" RETURNING 1),"
		" d AS ("
		" DELETE FROM %1$s.telnyx_ordering_groups z"
		"  USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($10)) AS t(id, ngroups)"
		"  WHERE $32 AND t.ngroups OPERATOR(pg_catalog.>=) 0"
		"    AND z.order_id OPERATOR(pg_catalog.=) t.id"
		"    AND z.group_index OPERATOR(pg_catalog.>) t.ngroups"
		" RETURNING 1)"
		" SELECT (SELECT pg_catalog.count(*) FROM o), (SELECT pg_catalog.count(*) FROM g),"
		"  (SELECT pg_catalog.count(*) FROM d)",
		33,
		{TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, JSONBARRAYOID,
			TIMESTAMPTZARRAYOID, INT4ARRAYOID,
			TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID, BOOLARRAYOID, INT4ARRAYOID,
			INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		TIMESTAMPTZARRAYOID, BOOLOID, BOOLOID, TEXTARRAYOID}
	},
	[STORE_UNLINK_NUMBER_ORDERS] = {
		"DELETE FROM %1$s.telnyx_number_orders n"
		" WHERE n.order_id OPERATOR(pg_catalog.=) $1"
		"   AND n.group_index OPERATOR(pg_catalog.=) $2"
		"   AND n.number_order_id OPERATOR(pg_catalog.<>) ALL ($3)",
		3,
		{TEXTOID, INT4OID, TEXTARRAYOID}
	},
	/* a new link is fetched at once (next_fetch_at defaults to now) */
	[STORE_LINK_NUMBER_ORDER] = {
		"INSERT INTO %1$s.telnyx_number_orders AS n"
		" (number_order_id, order_id, group_index, sub_number_order_ids,"
		"  next_fetch_at, synced_at)"
		" VALUES ($1, $2, $3, COALESCE($4, '{}'), pg_catalog.now(),"
		"  pg_catalog.now())"
		" ON CONFLICT (order_id, group_index, number_order_id) DO UPDATE SET"
		" sub_number_order_ids = COALESCE($4, n.sub_number_order_ids),"
		" synced_at = pg_catalog.now()",
		4,
		{TEXTOID, TEXTOID, INT4OID, TEXTARRAYOID}
	},
	/*
	 * A number order as of $8 (its updated_at, or the delivery's occurred_at),
	 * unless what is recorded is newer: a later updated_at, or ($11, a
	 * delivery's occurred_at) a later delivery applied.  The row lock the
	 * first writer takes orders two writers of the same number order; the
	 * second then compares with what the first wrote.
	 */
	[STORE_UPDATE_NUMBER_ORDER] = {
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
		11,
		{TEXTOID, TEXTOID, INT4OID, BOOLOID, TEXTOID, TEXTARRAYOID,
			TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID}
	},
	/*
	 * An answer older than what is recorded changes nothing but when the
	 * number order is next fetched ($2, if what is recorded is still open):
	 * a refresh claimed it until its lease would end.
	 */
	[STORE_OLDER_NUMBER_ORDER] = {
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
		2,
		{TEXTOID, TIMESTAMPTZOID}
	},
	[STORE_DELETE_GONE_NUMBERS] = {
		"DELETE FROM %1$s.telnyx_phone_numbers p"
		" WHERE p.number_order_id OPERATOR(pg_catalog.=) $1"
		"   AND p.phone_number OPERATOR(pg_catalog.<>) ALL ($2)",
		2,
		{TEXTOID, TEXTARRAYOID}
	},
	/*
	 * Every number, under every group the number order is linked to; the
	 * numbers that became "success" in it are recorded, one event per number
	 * order and group, and announced.  This statement records them, not a
	 * trigger: a restore loads the rows without an event.  "was" reads the
	 * rows as they were before the statement.
	 */
	[STORE_UPSERT_NUMBERS] = {
		"WITH was AS ("
		" SELECT w.order_id, w.group_index, w.phone_number, w.status"
		"  FROM %1$s.telnyx_phone_numbers w"
		"  WHERE w.number_order_id OPERATOR(pg_catalog.=) $1),"
		" up AS ("
		"INSERT INTO %1$s.telnyx_phone_numbers AS p"
		" (order_id, group_index, number_order_id, phone_number, id, status,"
		"  phone_number_type, requirements_met, requirements_status, deadline,"
		"  country_code, data, bought_at)"
		" SELECT n.order_id, n.group_index, n.number_order_id, x.phone_number,"
		"  x.id, x.status, x.phone_number_type, x.requirements_met,"
		"  x.requirements_status, x.deadline, x.country_code, x.data,"
		"  CASE WHEN x.status OPERATOR(pg_catalog.=) 'success'"
		"   THEN pg_catalog.now() END"
		" FROM %1$s.telnyx_number_orders n,"
		"  ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3),"
		"   pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6),"
		"   pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9),"
		"   pg_catalog.unnest($10))"
		"  AS x(phone_number, id, status, phone_number_type, requirements_met,"
		"   requirements_status, deadline, country_code, data)"
		" WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
		" ON CONFLICT (order_id, group_index, number_order_id, phone_number)"
		" DO UPDATE SET"
		" id = COALESCE(EXCLUDED.id, p.id),"
		" status = COALESCE(EXCLUDED.status, p.status),"
		" phone_number_type = COALESCE(EXCLUDED.phone_number_type,"
		"  p.phone_number_type),"
		" requirements_met = COALESCE(EXCLUDED.requirements_met,"
		"  p.requirements_met),"
		" requirements_status = COALESCE(EXCLUDED.requirements_status,"
		"  p.requirements_status),"
		" deadline = COALESCE(EXCLUDED.deadline, p.deadline),"
		" country_code = COALESCE(EXCLUDED.country_code, p.country_code),"
		" data = EXCLUDED.data,"
		" bought_at = COALESCE(p.bought_at, EXCLUDED.bought_at),"
		" synced_at = pg_catalog.now()"
		" RETURNING p.order_id, p.group_index, p.number_order_id, p.phone_number,"
		"  p.status),"
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
		10,
		{TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
			BOOLARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID,
		JSONBARRAYOID}
	},
	[STORE_CLAIM_REFRESH] = {
		"WITH due AS ("
		"  SELECT o.id FROM %1$s.telnyx_inexplicit_orders o"
		"   WHERE o.next_refresh_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		"   ORDER BY o.next_refresh_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
		" UPDATE %1$s.telnyx_inexplicit_orders o SET next_refresh_at = $2"
		"   FROM due WHERE o.id OPERATOR(pg_catalog.=) due.id"
		" RETURNING o.id",
		2,
		{INT4OID, TIMESTAMPTZOID}
	},
	[STORE_CLAIM_NUMBER_ORDERS] = {
		"WITH due AS ("
		"  SELECT n.order_id, n.group_index, n.number_order_id"
		"    FROM %1$s.telnyx_number_orders n"
		"   WHERE n.next_fetch_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		"   ORDER BY n.next_fetch_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
		" UPDATE %1$s.telnyx_number_orders n SET next_fetch_at = $2"
		"   FROM due WHERE n.order_id OPERATOR(pg_catalog.=) due.order_id"
		"    AND n.group_index OPERATOR(pg_catalog.=) due.group_index"
		"    AND n.number_order_id OPERATOR(pg_catalog.=) due.number_order_id"
		" RETURNING n.number_order_id",
		2,
		{INT4OID, TIMESTAMPTZOID}
	},
	[STORE_NEXT_REFRESH] = {
		"SELECT LEAST((SELECT pg_catalog.min(o.next_refresh_at)"
		"                FROM %1$s.telnyx_inexplicit_orders o),"
		"             (SELECT pg_catalog.min(n.next_fetch_at)"
		"                FROM %1$s.telnyx_number_orders n))",
		0,
		{InvalidOid}
	},
	[STORE_KNOWN_ORDERS] = {
		"SELECT o.id FROM %1$s.telnyx_inexplicit_orders o"
		" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)",
		1,
		{TEXTARRAYOID}
	},
	[STORE_LOCK_ORDER] = {
		"SELECT 1 FROM %1$s.telnyx_inexplicit_orders o"
		" WHERE o.id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED",
		1,
		{TEXTOID}
	},
	[STORE_LOCK_NUMBER_ORDER] = {
		"SELECT (SELECT pg_catalog.count(*) FROM %1$s.telnyx_number_orders n"
		"         WHERE n.number_order_id OPERATOR(pg_catalog.=) $1)"
		"       OPERATOR(pg_catalog.=)"
		"       (SELECT pg_catalog.count(*) FROM"
		"         (SELECT 1 FROM %1$s.telnyx_number_orders n"
		"           WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
		"           FOR UPDATE SKIP LOCKED) l)",
		1,
		{TEXTOID}
	},
	/* a failed fetch: one more failure in a row (its rows are locked) */
	[STORE_ORDER_FETCH_FAILED] = {
		"UPDATE %1$s.telnyx_inexplicit_orders o"
		" SET fetch_failures = o.fetch_failures OPERATOR(pg_catalog.+) 1"
		" WHERE o.id OPERATOR(pg_catalog.=) $1"
		" RETURNING o.fetch_failures",
		1,
		{TEXTOID}
	},
	[STORE_NUMBER_ORDER_FETCH_FAILED] = {
		"UPDATE %1$s.telnyx_number_orders n"
		" SET fetch_failures = n.fetch_failures OPERATOR(pg_catalog.+) 1"
		" WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
		" RETURNING n.fetch_failures",
		1,
		{TEXTOID}
	},
	/*
	 * Due again at $2 rather than when its claim ends; never later, and
	 * never for what has ended meanwhile (NULL).
	 */
	[STORE_ORDER_FETCH_AGAIN] = {
		"UPDATE %1$s.telnyx_inexplicit_orders o"
		" SET next_refresh_at = LEAST(o.next_refresh_at, $2)"
		" WHERE o.id OPERATOR(pg_catalog.=) $1"
		"   AND o.next_refresh_at IS NOT NULL",
		2,
		{TEXTOID, TIMESTAMPTZOID}
	},
	[STORE_NUMBER_ORDER_FETCH_AGAIN] = {
		"UPDATE %1$s.telnyx_number_orders n"
		" SET next_fetch_at = LEAST(n.next_fetch_at, $2)"
		" WHERE n.number_order_id OPERATOR(pg_catalog.=) $1"
		"   AND n.next_fetch_at IS NOT NULL",
		2,
		{TEXTOID, TIMESTAMPTZOID}
	},
};

/*
 * Plans kept for the statements run through store_exec, by the address of
 * their text, valid for the schema named kept_schema.
 */
typedef struct KeptPlan
{
	const char *sql;
	SPIPlanPtr	plan;
} KeptPlan;

static KeptPlan kept_plans[STORE_MAX_KEPT_PLANS];
static int	nkept_plans = 0;
static char *kept_schema = NULL;

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
static TimestampTz store_next_refresh(const TelnyxOrder *order);
static TimestampTz store_next_fetch(const TelnyxNumberOrder *no);
static TimestampTz store_next_time(bool open, const OptTimestamp *created_at);
static List *store_claim(StoreStatement stmt, int max, int64 lease_ms,
						 MemoryContext mcxt);
static void store_numbers(const char *schema, const TelnyxNumberOrder *no);
static void store_execute(const char *schema, StoreStatement stmt,
						  Datum *values, const char *nulls, int expected);
static Datum text_datum(const char *s, char *null);
static Datum text_array_datum(List *strings);
static Datum array_datum(Datum *elems, bool *nulls, int n, Oid elemtype);
static void store_links(const char *schema, const char *order_id,
						const TelnyxGroup *g);
static void column_init(Column *c, Oid type, int n);
static void column_set(Column *c, int i, Datum value, bool isnull);
static void column_text(Column *c, int i, const char *s);
static Datum column_array(Column *c, int n);
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
	static const Oid order_types[STORE_ORDER_COLUMNS] = {
		TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID, JSONBOID, TIMESTAMPTZOID, INT4OID
	};
	static const Oid group_types[STORE_GROUP_COLUMNS] = {
		TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
		JSONBOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, BOOLOID,
		INT4OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID
	};
	Column		oc[STORE_ORDER_COLUMNS];
	Column		gc[STORE_GROUP_COLUMNS];
	Datum		values[STORE_ORDER_COLUMNS + STORE_GROUP_COLUMNS + 3];
	Column		keycol;
	int			norders = list_length(orders);
	int			ngroups = 0;
	int			c;
	int			i;
	int			j = 0;
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

	for (c = 0; c < STORE_ORDER_COLUMNS; c++)
		column_init(&oc[c], order_types[c], norders);
	for (c = 0; c < STORE_GROUP_COLUMNS; c++)
		column_init(&gc[c], group_types[c], ngroups);
	column_init(&keycol, TEXTOID, norders);

	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		TimestampTz next = store_next_refresh(order);
		ListCell   *lc2;

		i = foreach_current_index(lc);
		column_text(&oc[0], i, order->id);
		column_text(&oc[1], i, order->connection_id);
		column_text(&oc[2], i, order->messaging_profile_id);
		column_text(&oc[3], i, order->customer_reference);
		column_text(&oc[4], i, order->billing_group_id);
		column_set(&oc[5], i, TimestampTzGetDatum(order->created_at.value), !order->created_at.present);
		column_set(&oc[6], i, TimestampTzGetDatum(order->updated_at.value), !order->updated_at.present);
		column_set(&oc[7], i, JsonbPGetDatum(order->data), false);
		column_set(&oc[8], i, TimestampTzGetDatum(next), next == 0);
		column_set(&oc[9], i, Int32GetDatum(order->ngroups), false);
		column_text(&keycol, i, request_keys ? (const char *) list_nth(request_keys, i) : NULL);
		/* an answer: the other databases of the cluster never take it */
		if (request_keys && list_nth(request_keys, i) != NULL)
			wakeup_note_order(order->id);

		foreach(lc2, order->groups)
		{
			TelnyxGroup *g = (TelnyxGroup *) lfirst(lc2);

			column_text(&gc[0], j, order->id);
			column_set(&gc[1], j, Int32GetDatum(g->group_index), false);
			column_text(&gc[2], j, g->country_iso);
			column_text(&gc[3], j, g->phone_number_type);
			column_text(&gc[4], j, g->national_destination_code);
			column_text(&gc[5], j, g->administrative_area);
			column_text(&gc[6], j, g->locality);
			column_set(&gc[7], j, g->has_features ? jsonb_string_array(g->features) : (Datum) 0,
					   !g->has_features);
			column_text(&gc[8], j, g->starts_with);
			column_text(&gc[9], j, g->ends_with);
			column_text(&gc[10], j, g->contains);
			column_text(&gc[11], j, g->strategy);
			column_set(&gc[12], j, BoolGetDatum(g->quickship.value), !g->quickship.present);
			column_set(&gc[13], j, BoolGetDatum(g->exclude_held_numbers.value),
					   !g->exclude_held_numbers.present);
			column_set(&gc[14], j, Int32GetDatum(g->count_requested.value),
					   !g->count_requested.present);
			column_set(&gc[15], j, Int32GetDatum(g->count_allocated.value),
					   !g->count_allocated.present);
			column_text(&gc[16], j, g->status);
			column_text(&gc[17], j, g->error_reason);
			column_set(&gc[18], j, TimestampTzGetDatum(g->created_at.value), !g->created_at.present);
			column_set(&gc[19], j, TimestampTzGetDatum(g->updated_at.value), !g->updated_at.present);
			j++;
		}
	}

	for (c = 0; c < STORE_ORDER_COLUMNS; c++)
		values[c] = column_array(&oc[c], norders);
	for (c = 0; c < STORE_GROUP_COLUMNS; c++)
		values[STORE_ORDER_COLUMNS + c] = column_array(&gc[c], ngroups);
	values[STORE_ORDER_COLUMNS + STORE_GROUP_COLUMNS] = BoolGetDatum(found_by_sync);
	values[STORE_ORDER_COLUMNS + STORE_GROUP_COLUMNS + 1] = BoolGetDatum(!created);
	values[STORE_ORDER_COLUMNS + STORE_GROUP_COLUMNS + 2] = column_array(&keycol, norders);

	schema = store_begin(&scope);
	store_execute(schema, STORE_UPSERT_ORDERS, values, NULL, SPI_OK_SELECT);

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
 * says: what the list no longer has is unlinked, what is new is linked.
 */
static void
store_links(const char *schema, const char *order_id, const TelnyxGroup *g)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	List	   *ids = NIL;
	ListCell   *lc;

	foreach(lc, g->orders)
		ids = lappend(ids, ((TelnyxNumberOrderRef *) lfirst(lc))->number_order_id);
	values[0] = CStringGetTextDatum(order_id);
	values[1] = Int32GetDatum(g->group_index);
	values[2] = text_array_datum(ids);
	store_execute(schema, STORE_UNLINK_NUMBER_ORDERS, values, nulls, SPI_OK_DELETE);

	foreach(lc, g->orders)
	{
		TelnyxNumberOrderRef *ref = (TelnyxNumberOrderRef *) lfirst(lc);

		values[0] = CStringGetTextDatum(ref->number_order_id);
		values[1] = CStringGetTextDatum(order_id);
		values[2] = Int32GetDatum(g->group_index);
		values[3] = text_array_datum(ref->sub_number_order_ids);
		/* an empty list given is empty; a list left out keeps what is stored */
		nulls[3] = ref->has_sub_number_order_ids ? ' ' : 'n';
		store_execute(schema, STORE_LINK_NUMBER_ORDER, values, nulls, SPI_OK_INSERT);
	}
}

/*
 * When an order should next be fetched again: NULL (0) when every group
 * has ended (success, partial_success, failed, or a status we do not
 * know of), else soon after creation, then at half its age, at most
 * telnyx.refresh_interval_max from now.
 */
static TimestampTz
store_next_refresh(const TelnyxOrder *order)
{
	bool		open = order->ngroups <= 0;
	ListCell   *lc;

	foreach(lc, order->groups)
	{
		TelnyxGroup *g = (TelnyxGroup *) lfirst(lc);

		if (g->status == NULL || strcmp(g->status, "pending") == 0 ||
			strcmp(g->status, "processing") == 0)
			open = true;
	}
	return store_next_time(open, &order->created_at);
}

/*
 * When a number order should next be fetched again: while it, or one of
 * its numbers, is pending (or it gives no status at all), on the same
 * schedule as an order.
 */
static TimestampTz
store_next_fetch(const TelnyxNumberOrder *no)
{
	bool		open = no->status == NULL || strcmp(no->status, "pending") == 0;
	ListCell   *lc;

	foreach(lc, no->phone_numbers)
	{
		TelnyxPhoneNumber *pn = (TelnyxPhoneNumber *) lfirst(lc);

		if (pn->status != NULL && strcmp(pn->status, "pending") == 0)
			open = true;
	}
	return store_next_time(open, &no->created_at);
}

/*
 * The next fetch of something still open (0 if it is not): soon after its
 * creation, then at half its age, at most telnyx.refresh_interval_max from
 * now.
 */
static TimestampTz
store_next_time(bool open, const OptTimestamp *created_at)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz born = created_at->present ? Min(created_at->value, now) : now;
	int64		delay;

	if (!open)
		return 0;
	delay = (now - born) / 2;
	delay = Max(delay, (int64) STORE_REFRESH_FIRST_MS * 1000);
	delay = Min(delay, (int64) telnyx_refresh_interval_max_s * USECS_PER_SEC);
	return now + delay;
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
	return store_claim(STORE_CLAIM_REFRESH, max, lease_ms, mcxt);
}

/*
 * store_claim_number_orders
 *		The same for number orders due to be fetched: their ids, each once.
 */
List *
store_claim_number_orders(int max, int64 lease_ms, MemoryContext mcxt)
{
	return store_claim(STORE_CLAIM_NUMBER_ORDERS, max, lease_ms, mcxt);
}

static List *
store_claim(StoreStatement stmt, int max, int64 lease_ms, MemoryContext mcxt)
{
	Datum		values[2];
	List	   *ids = NIL;
	StoreScope	scope;
	char	   *schema;
	uint64		i;

	values[0] = Int32GetDatum(max);
	values[1] = TimestampTzGetDatum(GetCurrentTimestamp() + lease_ms * 1000);
	schema = store_begin(&scope);
	store_execute(schema, stmt, values, NULL, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(mcxt);

		ListCell   *lc;
		bool		again = false;

		/* a number order linked to two groups is claimed twice */
		foreach(lc, ids)
			again = again || strcmp((const char *) lfirst(lc), id) == 0;
		if (!again)
			ids = lappend(ids, pstrdup(id));
		MemoryContextSwitchTo(old);
	}
	store_end(&scope);
	return ids;
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
	Datum		values[11];
	char		nulls[11];
	StoreScope	scope;
	char	   *schema;
	TimestampTz next = store_next_fetch(no);
	StoreFact	fact;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(no->id);
	values[1] = text_datum(no->status, &nulls[1]);
	values[2] = Int32GetDatum(no->phone_numbers_count.value);
	nulls[2] = no->phone_numbers_count.present ? ' ' : 'n';
	values[3] = BoolGetDatum(no->requirements_met.value);
	nulls[3] = no->requirements_met.present ? ' ' : 'n';
	values[4] = text_datum(no->customer_reference, &nulls[4]);
	values[5] = text_array_datum(no->sub_number_order_ids);
	nulls[5] = no->has_sub_number_order_ids ? ' ' : 'n';
	values[6] = TimestampTzGetDatum(no->created_at.value);
	nulls[6] = no->created_at.present ? ' ' : 'n';
	if (no->updated_at.present)
		values[7] = TimestampTzGetDatum(no->updated_at.value);
	else if (occurred_at != NULL)
		values[7] = TimestampTzGetDatum(*occurred_at);
	else
		nulls[7] = 'n';
	values[8] = JsonbPGetDatum(no->data);
	values[9] = TimestampTzGetDatum(next);
	nulls[9] = next == 0 ? 'n' : ' ';
	values[10] = occurred_at ? TimestampTzGetDatum(*occurred_at) : (Datum) 0;
	nulls[10] = occurred_at ? ' ' : 'n';

	schema = store_begin(&scope);
	store_execute(schema, STORE_UPDATE_NUMBER_ORDER, values, nulls, SPI_OK_UPDATE);
	if (SPI_processed > 0)
	{
		fact = STORE_FACT_APPLIED;
		if (no->has_phone_numbers)
			store_numbers(schema, no);
	}
	else
	{
		values[1] = TimestampTzGetDatum(store_next_time(true, &no->created_at));
		store_execute(schema, STORE_OLDER_NUMBER_ORDER, values, NULL, SPI_OK_UPDATE);
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
	Datum		values[1];
	StoreScope	scope;
	char	   *schema;
	bool		locked;

	values[0] = CStringGetTextDatum(id);
	schema = store_begin(&scope);
	store_execute(schema, number_order ? STORE_LOCK_NUMBER_ORDER : STORE_LOCK_ORDER,
				  values, NULL, SPI_OK_SELECT);
	if (number_order)
	{
		bool		isnull;

		locked = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	}
	else
		locked = SPI_processed > 0;
	store_end(&scope);
	return locked;
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
	Datum		values[1];
	StoreScope	scope;
	char	   *schema;
	int			failures = 0;
	uint64		i;

	values[0] = CStringGetTextDatum(id);
	schema = store_begin(&scope);
	store_execute(schema, number_order ? STORE_NUMBER_ORDER_FETCH_FAILED : STORE_ORDER_FETCH_FAILED,
				  values, NULL, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									  1, &isnull);

		if (!isnull)
			failures = Max(failures, DatumGetInt32(d));
	}
	store_end(&scope);
	return failures;
}

/*
 * store_fetch_again_at
 *		Make an order or number order still being followed due again at
 *		when, if that is sooner than it is now.
 */
void
store_fetch_again_at(const char *id, bool number_order, TimestampTz when)
{
	Datum		values[2];
	StoreScope	scope;
	char	   *schema;

	values[0] = CStringGetTextDatum(id);
	values[1] = TimestampTzGetDatum(when);
	schema = store_begin(&scope);
	store_execute(schema, number_order ? STORE_NUMBER_ORDER_FETCH_AGAIN : STORE_ORDER_FETCH_AGAIN,
				  values, NULL, SPI_OK_UPDATE);
	store_end(&scope);
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
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	StoreScope	scope;
	char	   *schema;
	int			n;

	values[0] = TimestampTzGetDatum(cutoff);
	values[1] = Int32GetDatum(max);
	schema = store_begin(&scope);
	store_exec(schema,
			   "DELETE FROM %1$s.telnyx_order_events e"
			   " WHERE e.seq OPERATOR(pg_catalog.=) ANY (ARRAY("
			   "  SELECT x.seq FROM %1$s.telnyx_order_events x"
			   "   WHERE x.at OPERATOR(pg_catalog.<) $1"
			   "     AND NOT EXISTS (SELECT 1 FROM %1$s.telnyx_open_orders v"
			   "          WHERE v.order_id OPERATOR(pg_catalog.=) x.order_id)"
			   "   ORDER BY x.seq LIMIT $2 FOR UPDATE SKIP LOCKED))",
			   2, argtypes, values, NULL, SPI_OK_DELETE);
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
			   2, argtypes, values, NULL, SPI_OK_DELETE);
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
	Oid			argtypes[4] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	StoreScope	scope;
	char	   *schema;
	bool		fresh;

	values[0] = CStringGetTextDatum(event_id);
	values[1] = CStringGetTextDatum(event_type);
	values[2] = occurred_at ? TimestampTzGetDatum(*occurred_at) : (Datum) 0;
	nulls[2] = occurred_at ? ' ' : 'n';
	values[3] = CStringGetTextDatum(number_order_id);
	schema = store_begin(&scope);
	store_exec(schema,
			   "INSERT INTO %1$s.telnyx_webhook_deliveries"
			   " (event_id, event_type, occurred_at, number_order_id, applied)"
			   " VALUES ($1, $2, $3, $4, true)"
			   " ON CONFLICT (event_id) DO NOTHING",
			   4, argtypes, values, nulls, SPI_OK_INSERT);
	fresh = SPI_processed > 0;
	store_end(&scope);
	return fresh;
}

/*
 * A delivery that was not applied: its number order is not linked yet, or
 * what is recorded is newer.
 */
void
store_webhook_unapplied(const char *event_id)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	StoreScope	scope;
	char	   *schema;

	values[0] = CStringGetTextDatum(event_id);
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_webhook_deliveries SET applied = false"
			   " WHERE event_id OPERATOR(pg_catalog.=) $1",
			   1, argtypes, values, NULL, SPI_OK_UPDATE);
	store_end(&scope);
}

/*
 * The numbers of a number order, as its answer lists them: numbers no
 * longer listed are deleted, the rest upserted in one statement (a number
 * listed twice counts once, as its last listing says).
 */
static void
store_numbers(const char *schema, const TelnyxNumberOrder *no)
{
	static const Oid types[STORE_NUMBER_COLUMNS] = {
		TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TIMESTAMPTZOID,
		TEXTOID, JSONBOID
	};
	int			n = list_length(no->phone_numbers);
	Column		cols[STORE_NUMBER_COLUMNS];
	Datum		values[STORE_NUMBER_COLUMNS + 1];
	List	   *numbers = NIL;
	ListCell   *lc;
	PhoneNumberAt *sorted;
	int			c;
	int			k;
	int			i = 0;

	foreach(lc, no->phone_numbers)
		numbers = lappend(numbers, ((TelnyxPhoneNumber *) lfirst(lc))->phone_number);
	values[0] = CStringGetTextDatum(no->id);
	values[1] = text_array_datum(numbers);
	store_execute(schema, STORE_DELETE_GONE_NUMBERS, values, NULL, SPI_OK_DELETE);
	if (n == 0)
		return;

	/* a number listed twice counts once, as its last listing says */
	sorted = palloc(sizeof(PhoneNumberAt) * n);
	foreach(lc, no->phone_numbers)
	{
		sorted[foreach_current_index(lc)].pn = (TelnyxPhoneNumber *) lfirst(lc);
		sorted[foreach_current_index(lc)].at = foreach_current_index(lc);
	}
	qsort(sorted, n, sizeof(PhoneNumberAt), phone_number_at_cmp);

	for (c = 0; c < STORE_NUMBER_COLUMNS; c++)
		column_init(&cols[c], types[c], n);
	for (k = 0; k < n; k++)
	{
		TelnyxPhoneNumber *pn = sorted[k].pn;

		if (k + 1 < n && strcmp(sorted[k + 1].pn->phone_number, pn->phone_number) == 0)
			continue;
		column_text(&cols[0], i, pn->phone_number);
		column_text(&cols[1], i, pn->id);
		column_text(&cols[2], i, pn->status);
		column_text(&cols[3], i, pn->phone_number_type);
		column_set(&cols[4], i, BoolGetDatum(pn->requirements_met.value),
				   !pn->requirements_met.present);
		column_text(&cols[5], i, pn->requirements_status);
		column_set(&cols[6], i, TimestampTzGetDatum(pn->deadline.value), !pn->deadline.present);
		column_text(&cols[7], i, pn->country_code);
		column_set(&cols[8], i, JsonbPGetDatum(pn->data), false);
		i++;
	}
	for (c = 0; c < STORE_NUMBER_COLUMNS; c++)
		values[c + 1] = column_array(&cols[c], i);
	store_execute(schema, STORE_UPSERT_NUMBERS, values, NULL, SPI_OK_SELECT);
}

/*
 * store_next_refresh_ms
 *		Milliseconds until an order is due for a refresh (0 if one is due
 *		now), or -1 if none will be.
 */
double
store_next_refresh_ms(void)
{
	StoreScope	scope;
	char	   *schema;
	double		result = -1;
	bool		isnull;
	Datum		d;

	schema = store_begin(&scope);
	store_execute(schema, STORE_NEXT_REFRESH, NULL, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		result = store_ms_until(DatumGetTimestampTz(d));
	store_end(&scope);
	return result;
}

/*
 * store_init
 *		From _PG_init: the store's settings.
 */
void
store_init(void)
{
	DefineCustomIntVariable("telnyx.refresh_interval_max",
							"Longest time between two refreshes of an order still being filled.",
							"An order is fetched again soon after it is created, then at half its age, at most this often, until every group has ended.",
							&telnyx_refresh_interval_max_s,
							600, 1, 7 * 24 * 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
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
	Oid			argtypes[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		values[3];
	StoreScope	scope;
	char	   *schema;

	values[0] = CStringGetTextDatum(request_key);
	values[1] = CStringGetTextDatum(body);
	values[2] = ObjectIdGetDatum(role);
	schema = store_begin(&scope);
	store_exec(schema,
			   "INSERT INTO %1$s.telnyx_order_calls"
			   " (request_key, customer_reference, body, spent_by)"
			   " SELECT $1::pg_catalog.uuid,"
			   "  b OPERATOR(pg_catalog.->>) 'customer_reference', b, $3"
			   "  FROM (SELECT $2::pg_catalog.jsonb) AS x(b)",
			   3, argtypes, values, NULL, SPI_OK_INSERT);
	store_end(&scope);
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
	MemoryContext cxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	StoreScope	scope;
	char	   *schema;
	bool		found = false;

	values[0] = CStringGetTextDatum(request_key);
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_calls c SET refused_at = pg_catalog.now()"
			   " WHERE c.request_key OPERATOR(pg_catalog.=) $1::pg_catalog.uuid"
			   "   AND c.refused_at IS NULL"
			   " RETURNING COALESCE(c.spent_by, 0::pg_catalog.oid), c.sent_at, c.body",
			   1, argtypes, values, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old;

		found = true;
		*role = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		*at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		old = MemoryContextSwitchTo(cxt);
		*body = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull));
		MemoryContextSwitchTo(old);
	}
	store_end(&scope);
	return found;
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
	MemoryContext callercxt = CurrentMemoryContext;
	Oid			argtypes[2] = {TEXTARRAYOID, BOOLOID};
	Datum		values[2];
	List	   *calls = NIL;
	StoreScope	scope;
	char	   *schema;
	uint64		i;

	if (references == NIL && !without_reference)
		return NIL;
	values[0] = text_array_datum(references);
	values[1] = BoolGetDatum(without_reference);
	schema = store_begin(&scope);
	store_exec(schema,
			   /* two branches, each through the index on customer_reference */
			   "SELECT c.request_key::pg_catalog.text, c.body, c.sent_at"
			   "  FROM (SELECT * FROM %1$s.telnyx_order_calls"
			   "         WHERE customer_reference OPERATOR(pg_catalog.=) ANY ($1)"
			   "        UNION ALL"
			   "        SELECT * FROM %1$s.telnyx_order_calls"
			   "         WHERE $2 AND customer_reference IS NULL) AS c"
			   " WHERE NOT EXISTS (SELECT 1 FROM %1$s.telnyx_inexplicit_orders o"
			   "        WHERE o.request_key OPERATOR(pg_catalog.=) c.request_key)"
			   " ORDER BY c.sent_at",
			   2, argtypes, values, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(callercxt);
		StoreCall  *call = palloc0(sizeof(StoreCall));

		call->request_key = SPI_getvalue(tup, desc, 1);
		call->body = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 2, &isnull));
		call->sent_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		calls = lappend(calls, call);
		MemoryContextSwitchTo(old);
	}
	store_end(&scope);
	return calls;
}

/*
 * store_orders_missing
 *		Of the orders in the list, those the tables do not hold yet.
 */
List *
store_orders_missing(List *orders)
{
	MemoryContext callercxt = CurrentMemoryContext;
	List	   *missing = NIL;
	Datum	   *ids;
	Datum		values[1];
	ListCell   *lc;
	StoreScope	scope;
	char	   *schema;
	int			n = 0;
	uint64		i;

	if (orders == NIL)
		return NIL;
	ids = palloc(sizeof(Datum) * list_length(orders));
	foreach(lc, orders)
		ids[n++] = CStringGetTextDatum(((TelnyxOrder *) lfirst(lc))->id);
	values[0] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false,
												TYPALIGN_INT));

	schema = store_begin(&scope);
	store_execute(schema, STORE_KNOWN_ORDERS, values, NULL, SPI_OK_SELECT);
	foreach(lc, orders)
	{
		TelnyxOrder *order = (TelnyxOrder *) lfirst(lc);
		bool		known = false;

		for (i = 0; i < SPI_processed && !known; i++)
		{
			char	   *id = SPI_getvalue(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 1);

			known = strcmp(id, order->id) == 0;
		}
		if (!known)
		{
			/* the list outlives SPI_finish */
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			missing = lappend(missing, order);
			MemoryContextSwitchTo(old);
		}
	}
	store_end(&scope);
	return missing;
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

/* Run store_queries[stmt] through store_exec. */
static void
store_execute(const char *schema, StoreStatement stmt, Datum *values,
			  const char *nulls, int expected)
{
	const StoreQuery *q = &store_queries[stmt];

	/* a static table's entry: its address is the statement's for ever */
	store_exec_kept(schema, q->sql, q->nargs, (Oid *) q->argtypes, values, nulls,
					expected);
}

/*
 * store_exec_kept
 *		Run the statement sql (its "%1$s" standing for the extension's
 *		schema) with nargs parameters, through a plan prepared on first use
 *		and kept; raise an error unless SPI answers expected.  SPI must be
 *		connected, inside store_enter, whose schema is schema.  The plan is
 *		found again by the address of sql, which must therefore be a string
 *		that lives as long as the process and always says the same: called
 *		through the store_exec macro (a literal), or with an entry of a
 *		static table.  The same sql always has the same argtypes.  Plans
 *		name the schema as it was when they were prepared: if it was renamed
 *		(or the extension created again elsewhere), they are dropped, to be
 *		prepared again.
 */
void
store_exec_kept(const char *schema, const char *sql, int nargs, Oid *argtypes,
				Datum *values, const char *nulls, int expected)
{
	SPIPlanPtr	plan = NULL;
	int			rc;
	int			i;

	if (kept_schema == NULL || strcmp(kept_schema, schema) != 0)
	{
		for (i = 0; i < nkept_plans; i++)
			SPI_freeplan(kept_plans[i].plan);
		nkept_plans = 0;
		if (kept_schema != NULL)
			pfree(kept_schema);
		kept_schema = MemoryContextStrdup(TopMemoryContext, schema);
	}

	for (i = 0; i < nkept_plans && plan == NULL; i++)
		if (kept_plans[i].sql == sql)
			plan = kept_plans[i].plan;

	if (plan == NULL)
	{
		/* every statement is written in the code: more is a text made at run time */
		if (nkept_plans == STORE_MAX_KEPT_PLANS)
			elog(ERROR, "more than %d statements to keep plans of: one is made at run time",
				 STORE_MAX_KEPT_PLANS);
		plan = SPI_prepare(psprintf(sql, quote_identifier(schema)), nargs, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		kept_plans[nkept_plans].sql = sql;
		kept_plans[nkept_plans].plan = plan;
		nkept_plans++;
	}

	store_check_plan(plan);
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
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

/* A text Datum for s; sets *null when s is NULL. */
static Datum
text_datum(const char *s, char *null)
{
	if (s == NULL)
	{
		*null = 'n';
		return (Datum) 0;
	}
	return CStringGetTextDatum(s);
}

static Datum
text_array_datum(List *strings)
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

static Datum
column_array(Column *c, int n)
{
	return array_datum(c->values, c->nulls, n, c->type);
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
