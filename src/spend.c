/*-------------------------------------------------------------------------
 *
 * spend.c
 *	  The spend guard: limits, holds, the per-transaction breaker and the
 *	  dry run.
 *
 * Every order is correct by itself; a trigger on a table that a migration
 * or a COPY fills buys one per row.  So what may be sent is limited:
 *
 * - Limits (telnyx_spend_limits, and the ceilings telnyx.max_orders_per_day
 *   and telnyx.max_numbers_per_day) count what is sent, per UTC hour or
 *   day, for the database or one role, in telnyx_spend_hours.  An order
 *   counts when it is first sent: a queued request when it is first
 *   claimed, a synchronous call when it is recorded just before it is sent
 *   (calls.c).  Retries are the same order and count once; a request
 *   refused by Telnyx, or a claim given back unsent, gives its count back.
 *   The check and the count happen under one lock per database (of the
 *   limits table, taken only when a limit exists), in the transaction that
 *   claims or records, so that two senders never both take the last of a
 *   budget.
 * - A queued request over a limit is held, not failed: state "held", with
 *   why, until an administrator releases it (telnyx_release_requests) or
 *   the window ends, when the limit says so.  A synchronous call over a
 *   limit is refused (TX402) and sends nothing.
 * - The breaker: a transaction that queues more requests than
 *   telnyx.max_requests_per_transaction has all of them marked as one
 *   batch (held_batch), and the claim holds them, unless it set
 *   telnyx.allow_bulk.  The mark is written in the queuing transaction
 *   without changing the state (no NOTIFY there: it may be prepared); the
 *   first claim holds the batch and announces it.
 * - The dry run: under telnyx.dry_run an enqueue (or a synchronous call)
 *   is recorded as "dry_run" and never sent; a sender under it (the
 *   worker, or CALL telnyx_process_queue()) sends nothing at all and
 *   leaves the queue as it is (worker.c).
 *
 * This file knows roles, numbers and windows, not requests: the queue
 * (queue.c) asks it, request by request, whether a claim's first send may
 * go (spend_guard_begin/take/end) and holds what it refuses; it marks the
 * breaker's batch that spend_enqueue_mark names.  The call recorder
 * (calls.c) gives back the count of a call Telnyx refused.
 *
 * Nothing here costs a statement when no limit is set but the count of
 * what a claim sends (one upsert per claim).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/table.h"
#include "access/transam.h"
#include "catalog/namespace.h"
#include "access/xact.h"
#include "utils/resowner.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "spend.h"
#include "store.h"

/*---- GUC variables ----*/

bool		telnyx_dry_run = false;
static bool telnyx_allow_bulk = false;
static int	telnyx_max_requests_per_transaction = 100;
static int	telnyx_max_orders_per_day = 0;
static int	telnyx_max_numbers_per_day = 0;

/*---- Local types ----*/

/* One limit and what was counted against it in its current window. */
typedef struct SpendLimit
{
	int64		id;				/* 0: a ceiling setting */
	Oid			role;			/* InvalidOid: the whole database */
	bool		per_day;
	int64		max_orders;		/* -1: not limited */
	int64		max_numbers;	/* -1: not limited */
	bool		wait;			/* held until the window ends (else a release) */
	int64		used_orders;
	int64		used_numbers;
} SpendLimit;

/* The limits loaded for one claim or call. */
typedef struct SpendLimits
{
	int			n;
	SpendLimit *limits;
	TimestampTz hour_start;
	TimestampTz day_start;
} SpendLimits;

/* What a claim counts, per role. */
typedef struct SpendCharge
{
	TimestampTz hour;			/* the UTC hour it counts in */
	Oid			role;
	int64		orders;
	int64		numbers;
} SpendCharge;

/* A count to give back (spend_give_back). */
typedef struct SpendGiveBack
{
	Oid			role;
	TimestampTz at;
	int64		numbers;
} SpendGiveBack;

/* The guard of a claim's first sends (spend_guard_begin). */
struct SpendGuard
{
	SpendLimits sl;
	bool		limited;		/* a limit is set: sl holds them */
	SpendCharge *charges;		/* what to count */
	int			ncharges;
	int			size;
};

/*---- Local variables ----*/

/*
 * The breaker's count of requests queued by this transaction, the ids of
 * the first ones (in TopTransactionContext), and the batch they were
 * marked with once it tripped; forgotten when the transaction ends.
 */
static int64 bulk_count = 0;
static List *bulk_ids = NIL;
static int64 bulk_batch = 0;
static SubTransactionId bulk_mark_subid = InvalidSubTransactionId;

/*---- Function declarations ----*/

static void spend_window(TimestampTz now, TimestampTz *hour_start,
						 TimestampTz *day_start);
static bool spend_load(SpendLimits *sl, TimestampTz now);
static bool spend_limits_never_set(void);
static const SpendLimit *spend_over(SpendLimits *sl, Oid role, int64 numbers,
									TimestampTz *until, char *reason);
static void spend_charge(SpendCharge *charges, int n);
static void spend_add_charge(SpendCharge **charges, int *n, int *size,
							 TimestampTz at, Oid role, int64 numbers);
static void spend_count(SpendLimits *sl, Oid role, int64 numbers);
static void spend_give_back_now(void *arg);
static int	spend_charge_cmp(const void *a, const void *b);
static void spend_xact(XactEvent event, void *arg);
static void spend_subxact(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg);

/*
 * spend_init
 *		From _PG_init: the guard's settings.
 */
void
spend_init(void)
{
	DefineCustomBoolVariable("telnyx.dry_run",
							 "Validate, record and report orders without sending them.",
							 "Queued requests end in the state dry_run; a synchronous call returns what it would have sent.  Set it for a session, a role or a database (staging).",
							 &telnyx_dry_run,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("telnyx.allow_bulk",
							 "Let this transaction queue more than telnyx.max_requests_per_transaction requests without their being held.",
							 "Meant for SET LOCAL in a transaction that means to order in bulk; the spend limits still apply.",
							 &telnyx_allow_bulk,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("telnyx.max_requests_per_transaction",
							"Requests one transaction may queue before all of them are held as one batch (0: no limit).",
							"A bulk INSERT or COPY into a table with an ordering trigger trips it; telnyx_release_requests(held_batch => ...) releases the batch.",
							&telnyx_max_requests_per_transaction,
							100, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("telnyx.max_orders_per_day",
							"The most orders each database may send per UTC day, whatever telnyx_spend_limits says (0: no ceiling).",
							"Set in postgresql.conf; queued requests over it are held, synchronous calls refused.",
							&telnyx_max_orders_per_day,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("telnyx.max_numbers_per_day",
							"The most numbers each database may request per UTC day, whatever telnyx_spend_limits says (0: no ceiling).",
							"Set in postgresql.conf; queued requests over it are held, synchronous calls refused.",
							&telnyx_max_numbers_per_day,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	RegisterXactCallback(spend_xact, NULL);
	RegisterSubXactCallback(spend_subxact, NULL);
}

/*
 * spend_numbers
 *		The numbers an order requests: its groups' count_requested, summed
 *		(validated bodies hold them as strings of digits).
 */
int64
spend_numbers(Jsonb *body)
{
	JsonbValue	key;
	JsonbValue *groups;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int64		total = 0;
	int			depth = 0;
	bool		want = false;

	key.type = jbvString;
	key.val.string.val = "ordering_groups";
	key.val.string.len = strlen("ordering_groups");
	groups = findJsonbValueFromContainer(&body->root, JB_FOBJECT, &key);
	if (groups == NULL || groups->type != jbvBinary)
		return 0;

	it = JsonbIteratorInit(groups->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY)
			want = depth == 2 && v.val.string.len == strlen("count_requested") &&
				memcmp(v.val.string.val, "count_requested", v.val.string.len) == 0;
		else if (tok == WJB_VALUE && want)
		{
			if (v.type == jbvString)
			{
				char	   *s = pnstrdup(v.val.string.val, v.val.string.len);

				total += strtol(s, NULL, 10);
				pfree(s);
			}
			else if (v.type == jbvNumeric)
				total += DatumGetInt64(DirectFunctionCall1(numeric_int8,
														   NumericGetDatum(v.val.numeric)));
			want = false;
		}
	}
	return total;
}

/*---- The breaker ----*/

/*
 * spend_enqueue_mark
 *		How the request about to be queued is written: as a dry run, and
 *		whether the breaker holds it.  When this transaction's enqueue goes
 *		over telnyx.max_requests_per_transaction, the ones it queued before
 *		are to be marked with the same batch (mark_earlier, earlier_ids),
 *		now, in the same subtransaction.
 */
void
spend_enqueue_mark(SpendMark *mark)
{
	bulk_count++;

	mark->dry_run = telnyx_dry_run;
	mark->held_batch = 0;
	mark->held_reason = NULL;
	mark->mark_earlier = false;
	mark->earlier_ids = NIL;
	if (telnyx_allow_bulk || telnyx_max_requests_per_transaction == 0 ||
		bulk_count <= telnyx_max_requests_per_transaction)
		return;

	mark->held_reason =
		psprintf("more than %d requests queued by one transaction (telnyx.max_requests_per_transaction): held together; SET LOCAL telnyx.allow_bulk = on in a transaction that means it",
				 telnyx_max_requests_per_transaction);
	if (bulk_batch == 0)
	{
		/* (marked again, with the same id, if this subtransaction aborts) */
		bulk_batch = (int64) U64FromFullTransactionId(GetTopFullTransactionId());
		bulk_mark_subid = GetCurrentSubTransactionId();
		mark->mark_earlier = true;
		mark->earlier_ids = bulk_ids;
	}
	mark->held_batch = bulk_batch;
}

/* The transaction has ended: the breaker counts the next one afresh. */
static void
spend_xact(XactEvent event, void *arg)
{
	if (!store_xact_ended(event))
		return;
	bulk_count = 0;
	bulk_ids = NIL;				/* freed with its TopTransactionContext */
	bulk_batch = 0;
	bulk_mark_subid = InvalidSubTransactionId;
}

/*
 * The subtransaction that marked the batch ended.  Released, its mark is
 * its parent's: it stands or falls with it.  Aborted, its UPDATE is
 * undone, so the next enqueue of this transaction marks them again.
 */
static void
spend_subxact(SubXactEvent event, SubTransactionId mySubid,
			  SubTransactionId parentSubid, void *arg)
{
	if (bulk_batch == 0 || mySubid != bulk_mark_subid)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		bulk_mark_subid = parentSubid;
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		bulk_batch = 0;
		bulk_mark_subid = InvalidSubTransactionId;
	}
}

/*
 * spend_enqueued
 *		Request id was queued by this transaction (after spend_enqueue_mark):
 *		kept while the breaker may have to mark it (again).
 */
void
spend_enqueued(int64 id)
{
	if (bulk_count == 0 || telnyx_max_requests_per_transaction == 0)
		return;
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		int64	   *copy = palloc(sizeof(int64));

		*copy = id;
		bulk_ids = lappend(bulk_ids, copy);
		MemoryContextSwitchTo(old);
	}
}

/*---- Limits ----*/

/* The UTC hour and day that now is in. */
static void
spend_window(TimestampTz now, TimestampTz *hour_start, TimestampTz *day_start)
{
	TimestampTz h = now - now % USECS_PER_HOUR;
	TimestampTz d = now - now % USECS_PER_DAY;

	/* before 2000-01-01 the remainder is negative */
	if (now % USECS_PER_HOUR < 0)
		h -= USECS_PER_HOUR;
	if (now % USECS_PER_DAY < 0)
		d -= USECS_PER_DAY;
	*hour_start = h;
	*day_start = d;
}

/*
 * spend_load
 *		Load the limits and what was counted against each in its window.
 *		Returns false, having taken no lock, when there is none; else the
 *		guard's lock is held until the end of the transaction, so that the
 *		counts read stay true until what is decided is counted.
 */
static bool
spend_load(SpendLimits *sl, TimestampTz now)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	bool		ceiling = telnyx_max_orders_per_day > 0 || telnyx_max_numbers_per_day > 0;
	bool		any;
	uint64		i;
	MemoryContext callercxt = CurrentMemoryContext;

	spend_window(now, &sl->hour_start, &sl->day_start);
	sl->n = 0;
	sl->limits = NULL;
	/* the common case, checked without a statement: no limit was ever set */
	if (!ceiling && spend_limits_never_set())
		return false;

	schema = store_begin(&scope);
	if (!ceiling)
	{
		store_exec(schema,
				   "SELECT 1 FROM %1$s.telnyx_spend_limits LIMIT 1",
				   NULL, SPI_OK_SELECT);
		any = SPI_processed > 0;
		if (!any)
		{
			store_end(&scope);
			return false;
		}
	}

	/*
	 * The counts must be read after the lock is held: not through a
	 * snapshot taken before it.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("the spend limits can be checked only in a READ COMMITTED transaction"),
				 errdetail("Nothing was sent."),
				 errhint("Run it with default_transaction_isolation = 'read committed'.")));

	/*
	 * A lock only the extension (and an administrator granted UPDATE on the
	 * limits) can take: an advisory lock could be held by any role, and
	 * every order would wait for it.  It conflicts with itself and with an
	 * edit of the limits, not with a reader.
	 */
	store_exec(schema,
			   "LOCK TABLE %1$s.telnyx_spend_limits IN SHARE ROW EXCLUSIVE MODE",
			   NULL, SPI_OK_UTILITY);

	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(sl->hour_start));
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(sl->day_start));
	store_arg(&args, INT8OID, Int64GetDatum(telnyx_max_orders_per_day > 0 ? telnyx_max_orders_per_day : -1));
	store_arg(&args, INT8OID, Int64GetDatum(telnyx_max_numbers_per_day > 0 ? telnyx_max_numbers_per_day : -1));
	store_arg(&args, BOOLOID, BoolGetDatum(ceiling));
	store_exec(schema,
			   "SELECT l.id, COALESCE(l.role::pg_catalog.oid, 0::pg_catalog.oid),"
			   "       l.per OPERATOR(pg_catalog.=) 'day',"
			   "       COALESCE(l.max_orders, -1)::pg_catalog.int8,"
			   "       COALESCE(l.max_numbers, -1)::pg_catalog.int8,"
			   "       l.on_exceed OPERATOR(pg_catalog.=) 'wait',"
			   "       COALESCE(u.orders, 0)::pg_catalog.int8,"
			   "       COALESCE(u.numbers, 0)::pg_catalog.int8"
			   "  FROM %1$s.telnyx_spend_limits l"
			   " CROSS JOIN LATERAL ("
			   "   SELECT pg_catalog.sum(h.orders), pg_catalog.sum(h.numbers)"
			   "     FROM %1$s.telnyx_spend_hours h"
			   "    WHERE h.hour OPERATOR(pg_catalog.>=)"
			   "          CASE WHEN l.per OPERATOR(pg_catalog.=) 'day' THEN $2 ELSE $1 END"
			   "      AND (l.role IS NULL"
			   "           OR h.spent_by OPERATOR(pg_catalog.=) l.role::pg_catalog.oid)) u(orders, numbers)"
			   " UNION ALL"
			   " SELECT 0, 0::pg_catalog.oid, true, $3, $4, false,"
			   "        COALESCE(pg_catalog.sum(h.orders), 0)::pg_catalog.int8,"
			   "        COALESCE(pg_catalog.sum(h.numbers), 0)::pg_catalog.int8"
			   "   FROM %1$s.telnyx_spend_hours h"
			   "  WHERE $5 AND h.hour OPERATOR(pg_catalog.>=) $2"
			   " HAVING $5",
			   &args, SPI_OK_SELECT);

	sl->n = (int) SPI_processed;
	sl->limits = MemoryContextAllocZero(callercxt, sizeof(SpendLimit) * Max(sl->n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		SpendLimit *l = &sl->limits[i];
		bool		isnull;

		l->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		l->role = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		l->per_day = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		l->max_orders = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		l->max_numbers = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		l->wait = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		l->used_orders = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		l->used_numbers = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	}
	store_end(&scope);
	return true;
}

/*
 * Has telnyx_spend_limits never held a row?  An empty file (no block) says
 * so for nothing more than a look at its size; a table that held rows once
 * is read (spend_load).
 */
static bool
spend_limits_never_set(void)
{
	Oid			relid = get_relname_relid("telnyx_spend_limits", store_namespace());
	Relation	rel;
	BlockNumber nblocks;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, AccessShareLock);
	nblocks = RelationGetNumberOfBlocks(rel);
	table_close(rel, AccessShareLock);
	return nblocks == 0;
}

/*
 * spend_over
 *		Does an order of role for numbers exceed a limit?  If not, it is
 *		counted against every limit it falls under and NULL is returned.  If
 *		so, the limit (one that only a release lifts, if any is exceeded),
 *		with reason and *until: when the hold ends by itself (the latest
 *		window end of the limits exceeded; infinity if one of them waits for
 *		a release).
 */
static const SpendLimit *
spend_over(SpendLimits *sl, Oid role, int64 numbers, TimestampTz *until,
		   char *reason)
{
	const SpendLimit *worst = NULL;
	int			i;

	*until = DT_NOBEGIN;
	for (i = 0; i < sl->n; i++)
	{
		SpendLimit *l = &sl->limits[i];
		TimestampTz end;

		if (OidIsValid(l->role) && l->role != role)
			continue;
		if ((l->max_orders < 0 || l->used_orders + 1 <= l->max_orders) &&
			(l->max_numbers < 0 || l->used_numbers + numbers <= l->max_numbers))
			continue;
		end = !l->wait ? DT_NOEND
			: l->per_day ? sl->day_start + USECS_PER_DAY
			: sl->hour_start + USECS_PER_HOUR;
		if (worst == NULL || end > *until)
		{
			worst = l;
			*until = end;
		}
	}

	if (worst == NULL)
	{
		spend_count(sl, role, numbers);
		return NULL;
	}

	if (reason != NULL)
	{
		const char *what = worst->per_day ? "day" : "hour";
		const char *who = OidIsValid(worst->role)
			? psprintf("role \"%s\"", GetUserNameFromId(worst->role, true)
					   ? GetUserNameFromId(worst->role, true) : "?")
			: pstrdup("the database");
		const char *name = worst->id == 0
			? pstrdup("the ceiling (telnyx.max_orders_per_day, telnyx.max_numbers_per_day)")
			: psprintf("spend limit %lld", (long long) worst->id);

		if (worst->max_orders >= 0 && worst->used_orders + 1 > worst->max_orders)
			snprintf(reason, SPEND_REASON_LEN,
					 "%s reached: %lld orders per %s for %s, %lld sent this %s",
					 name, (long long) worst->max_orders, what, who,
					 (long long) worst->used_orders, what);
		else
			snprintf(reason, SPEND_REASON_LEN,
					 "%s reached: %lld numbers per %s for %s, %lld requested this %s, %lld more asked",
					 name, (long long) worst->max_numbers, what, who,
					 (long long) worst->used_numbers, what, (long long) numbers);
	}
	return worst;
}

/* Count an order of role for numbers against the limits it falls under. */
static void
spend_count(SpendLimits *sl, Oid role, int64 numbers)
{
	int			i;

	for (i = 0; i < sl->n; i++)
	{
		SpendLimit *l = &sl->limits[i];

		if (OidIsValid(l->role) && l->role != role)
			continue;
		l->used_orders += 1;
		l->used_numbers += numbers;
	}
}

/*
 * Add an order of role for numbers, first sent at at, to what is counted:
 * in the hour of at, where a give-back finds it (first_sent_at).
 */
static void
spend_add_charge(SpendCharge **charges, int *n, int *size, TimestampTz at,
				 Oid role, int64 numbers)
{
	TimestampTz hour;
	TimestampTz day;
	int			i;

	spend_window(at, &hour, &day);
	for (i = 0; i < *n; i++)
	{
		if ((*charges)[i].role == role && (*charges)[i].hour == hour)
		{
			(*charges)[i].orders++;
			(*charges)[i].numbers += numbers;
			return;
		}
	}
	if (*n == *size)
	{
		*size = Max(*size * 2, 4);
		*charges = *charges == NULL ? palloc(sizeof(SpendCharge) * *size)
			: repalloc(*charges, sizeof(SpendCharge) * *size);
	}
	(*charges)[*n].hour = hour;
	(*charges)[*n].role = role;
	(*charges)[*n].orders = 1;
	(*charges)[*n].numbers = numbers;
	(*n)++;
}

/* Charges in the order rows are locked in: by hour, then role. */
static int
spend_charge_cmp(const void *a, const void *b)
{
	const SpendCharge *x = (const SpendCharge *) a;
	const SpendCharge *y = (const SpendCharge *) b;

	if (x->hour != y->hour)
		return x->hour < y->hour ? -1 : 1;
	if (x->role != y->role)
		return x->role < y->role ? -1 : 1;
	return 0;
}

/*
 * Count what was decided to be sent.  The rows are upserted in one order
 * (by hour and role), so that two senders never wait for each other's.
 */
static void
spend_charge(SpendCharge *charges, int n)
{
	StoreArgs	args = {0};
	Datum	   *hours;
	Datum	   *roles;
	Datum	   *orders;
	Datum	   *numbers;
	StoreScope	scope;
	char	   *schema;
	int			i;

	if (n == 0)
		return;
	qsort(charges, n, sizeof(SpendCharge), spend_charge_cmp);
	hours = palloc(sizeof(Datum) * n);
	roles = palloc(sizeof(Datum) * n);
	orders = palloc(sizeof(Datum) * n);
	numbers = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		hours[i] = TimestampTzGetDatum(charges[i].hour);
		roles[i] = ObjectIdGetDatum(charges[i].role);
		orders[i] = Int64GetDatum(charges[i].orders);
		numbers[i] = Int64GetDatum(charges[i].numbers);
	}
	store_arg(&args, TIMESTAMPTZARRAYOID, PointerGetDatum(construct_array(hours, n, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)));
	store_arg(&args, OIDARRAYOID, PointerGetDatum(construct_array(roles, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT)));
	store_arg(&args, INT8ARRAYOID, store_int8_array(orders, n));
	store_arg(&args, INT8ARRAYOID, store_int8_array(numbers, n));

	schema = store_begin(&scope);
	store_exec(schema,
			   "INSERT INTO %1$s.telnyx_spend_hours AS h (hour, spent_by, orders, numbers)"
			   " SELECT t.hour, t.role, t.orders, t.numbers"
			   "   FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
			   "                   pg_catalog.unnest($3), pg_catalog.unnest($4))"
			   "        AS t(hour, role, orders, numbers)"
			   "  ORDER BY t.hour, t.role"
			   " ON CONFLICT (hour, spent_by) DO UPDATE"
			   "   SET orders = h.orders OPERATOR(pg_catalog.+) excluded.orders,"
			   "       numbers = h.numbers OPERATOR(pg_catalog.+) excluded.numbers",
			   &args, SPI_OK_INSERT);
	store_end(&scope);
}

/*
 * spend_give_back
 *		An order of role for numbers, counted when it was first sent at at,
 *		was not bought (Telnyx refused it, or it was given back unsent): it
 *		no longer counts.  Never an error: in a subtransaction of its own,
 *		so that a give-back that cannot be made (a row locked too long)
 *		changes nothing else; the count then stays, on the safe side.
 */
void
spend_give_back(Oid role, TimestampTz at, int64 numbers)
{
	SpendGiveBack gb;
	ErrorData  *edata;

	gb.role = role;
	gb.at = at;
	gb.numbers = numbers;
	edata = store_try(spend_give_back_now, &gb);
	if (edata != NULL)
	{
		ereport(WARNING,
				(errmsg("could not give back the spend count of an order not bought: %s",
						edata->message),
				 errdetail("It still counts against the spend limits of its hour.")));
		FreeErrorData(edata);
	}
}

/* The statement of a give-back (gb: a SpendGiveBack). */
static void
spend_give_back_now(void *arg)
{
	SpendGiveBack *gb = (SpendGiveBack *) arg;
	StoreArgs	args = {0};
	TimestampTz hour_start;
	TimestampTz day_start;
	StoreScope	scope;
	char	   *schema;

	spend_window(gb->at, &hour_start, &day_start);
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(hour_start));
	store_arg(&args, OIDOID, ObjectIdGetDatum(gb->role));
	store_arg(&args, INT8OID, Int64GetDatum(gb->numbers));
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_spend_hours h"
			   "   SET orders = GREATEST(h.orders OPERATOR(pg_catalog.-) 1, 0::pg_catalog.int8),"
			   "       numbers = GREATEST(h.numbers OPERATOR(pg_catalog.-) $3, 0::pg_catalog.int8)"
			   " WHERE h.hour OPERATOR(pg_catalog.=) $1"
			   "   AND h.spent_by OPERATOR(pg_catalog.=) $2",
			   &args, SPI_OK_UPDATE);
	store_end(&scope);
}

/*---- The claim and the call ----*/

/*
 * spend_guard_begin
 *		In the transaction of a claim (queue_claim), before it commits: the
 *		guard of its first sends (none if first_sends is false), with the
 *		limits and their counts read under the guard's lock, if any limit
 *		is set.
 */
SpendGuard *
spend_guard_begin(bool first_sends)
{
	SpendGuard *g = palloc0(sizeof(SpendGuard));

	if (first_sends)
		g->limited = spend_load(&g->sl, GetCurrentTransactionStartTimestamp());
	return g;
}

/*
 * spend_guard_take
 *		May the first send of an order of role for numbers (first sent at
 *		at; released: by an administrator, whatever the limits say) go?
 *		Counted if so, also against the rest of the claim; false, with when
 *		to look again (*until) and reason, if a limit holds it.
 */
bool
spend_guard_take(SpendGuard *g, Oid role, int64 numbers, TimestampTz at,
				 bool released, TimestampTz *until, char *reason)
{
	if (g->limited && released)
		spend_count(&g->sl, role, numbers);
	else if (g->limited && spend_over(&g->sl, role, numbers, until, reason) != NULL)
		return false;
	spend_add_charge(&g->charges, &g->ncharges, &g->size, at, role, numbers);
	return true;
}

/*
 * spend_guard_end
 *		Write what the guard counted, and free it.
 */
void
spend_guard_end(SpendGuard *g)
{
	spend_charge(g->charges, g->ncharges);
	pfree(g);
}

/*
 * spend_call_allowed
 *		In the transaction that records a synchronous call of role for
 *		numbers (calls.c), before it is sent: if it fits every limit, count
 *		it and return true; else return false with reason.
 */
bool
spend_call_allowed(Oid role, int64 numbers, char *reason)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	SpendLimits sl;
	TimestampTz until;
	SpendCharge *charges = NULL;
	int			ncharges = 0;
	int			size = 0;

	if (spend_load(&sl, now) && spend_over(&sl, role, numbers, &until, reason) != NULL)
		return false;
	spend_add_charge(&charges, &ncharges, &size, now, role, numbers);
	spend_charge(charges, ncharges);
	return true;
}
