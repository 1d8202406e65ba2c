/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  The queue of order requests in telnyx_order_requests.
 *
 * A request is a row written in the caller's transaction, so a transaction
 * that rolls back leaves nothing to send.  It records who queued it
 * (requested_by): only that role, a member of it or a superuser may cancel
 * it or see it.  A sender (the background worker, or CALL
 * telnyx_process_queue() in a session) claims due rows in a short
 * transaction:
 * FOR UPDATE SKIP LOCKED, state "sending", a lease, and the claimer's pid
 * and start time.  It commits, sends with no transaction open, and records
 * each outcome in a subtransaction of its own, where a success also
 * records the order's rows (store.c): the state and the order change
 * together, and one outcome that cannot be recorded never takes the
 * others with it.
 *
 * Never twice: a request whose outcome is uncertain (timeout or reset after
 * sending, 5xx, an unreadable 2xx), or found claimed by a sender that is
 * gone (a crash, a restart, kill -9) or whose lease has run out, becomes
 * "unknown" (reconcile.c looks it up).  A request is always sent as the
 * same bytes (request_body) under the same Idempotency-Key, so that a
 * resend after "proven absent" is the same request to Telnyx.
 *
 * Every statement here runs as the extension's owner with search_path
 * pinned (store_enter), through store.c's kept plans (store_exec), names
 * the extension's schema and qualifies its operators; times and leases
 * are computed in C, in 64 bits.  Every state change made by a sender is
 * announced by a trigger on the table (NOTIFY telnyx_orders, without
 * payload), not here; a commit that enqueued wakes the sender through
 * wakeup.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "queue.h"
#include "spend.h"
#include "store.h"
#include "wakeup.h"

/* Reconcile an unknown outcome no sooner than this after it arose. */
static int	telnyx_reconcile_delay_ms = 10000;
int			telnyx_request_retention_s = 30 * 24 * 3600;

/* How long a sender's claim on unknown requests, to reconcile them, lasts. */
#define QUEUE_RECONCILE_LEASE_MS (10 * 60 * 1000)

/*
 * A claim takes only requests queued in this cluster and database, checked
 * row by row in the claiming statement itself: a request a restore or a
 * clone brought in is never sent here, whenever it arrives (see
 * queue_home).
 */
#define QUEUE_AT_HOME \
	"     AND home_system_identifier OPERATOR(pg_catalog.=) $4" \
	"     AND home_database_oid OPERATOR(pg_catalog.=) $5"

/* The columns a claim returns, as queue_read_requests reads them. */
#define QUEUE_REQUEST_COLUMNS \
	" RETURNING r.id, r.request_key::pg_catalog.text, r.body, r.request_body," \
	" r.attempts, r.created_at, r.first_sent_at, r.next_attempt_at," \
	" r.claim_token, r.unknown_since, r.lookups, r.requested_by," \
	" r.held_batch, r.released_by"

/* What every write that ends a request's claim sets, last in its SET list. */
#define QUEUE_CLAIM_ENDS \
	"       lease_until = NULL, claimed_by_pid = NULL," \
	"       claimed_by_start = NULL, claim_token = NULL," \
	"       updated_at = pg_catalog.now()"

/*
 * A claim's requests become "unknown" when it ends without their outcome:
 * one left "sending" with the reason $2, its window of absence starting
 * now; one already unknown as it was.  Part of a SET list (in an UPDATE of
 * telnyx_order_requests r); QUEUE_CLAIM_ENDS follows it.
 */
#define QUEUE_SENDING_TO_UNKNOWN \
	"       state = 'unknown'," \
	"       last_error = CASE WHEN r.state OPERATOR(pg_catalog.=) 'sending'" \
	"                         THEN $2 ELSE r.last_error END," \
	"       unknown_since = CASE WHEN r.state OPERATOR(pg_catalog.=) 'sending'" \
	"                            THEN pg_catalog.now() ELSE r.unknown_since END," \
	"       lookups = CASE WHEN r.state OPERATOR(pg_catalog.=) 'sending'" \
	"                      THEN 0 ELSE r.lookups END,"

/* The states a request ends in, as an SQL array literal. */
#define QUEUE_FINISHED_STATES "'{sent,failed,cancelled,dry_run}'"

/* The columns of a request the index tables follow, in this order. */
#define QUEUE_INDEX_COLUMNS 5

/* Rows written to an index table per statement, at most. */
#define QUEUE_INDEX_CHUNK 1000

/* A request's columns that the index tables follow. */
typedef struct QueueIndexRow
{
	int64		id;
	char		kind;			/* in telnyx_live_requests, or '\0' */
	TimestampTz due;
	text	   *state;
	text	   *order_id;		/* NULL if none */
} QueueIndexRow;

/* What one statement on telnyx_order_requests changes in the index tables. */
typedef struct QueueIndexChanges
{
	const char *schema;
	MemoryContext cxt;			/* the chunk's arrays; reset at each flush */
	int			nlive;
	Datum		live_ids[QUEUE_INDEX_CHUNK];
	Datum		live_kinds[QUEUE_INDEX_CHUNK];
	Datum		live_due[QUEUE_INDEX_CHUNK];
	int			ngone;
	Datum		gone_ids[QUEUE_INDEX_CHUNK];
	int			nlinks;
	Datum		link_orders[QUEUE_INDEX_CHUNK];
	Datum		link_ids[QUEUE_INDEX_CHUNK];
	int			nunlinks;
	Datum		unlink_orders[QUEUE_INDEX_CHUNK];
	Datum		unlink_ids[QUEUE_INDEX_CHUNK];
	bool		inserted;		/* the rows are new requests (an INSERT) */
	bool		state_changed;	/* a request changed state */
	bool		held;			/* and one became held */
} QueueIndexChanges;

/*---- Local variables ----*/


/*
 * Ids reserved by this transaction and not queued yet, in its
 * TopTransactionContext; forgotten when it ends (queue_xact).
 */
static List *reserved_ids = NIL;

/*
 * The identity sequence of telnyx_order_requests.id (request_seq_table),
 * looked up once: forgotten when the table's relcache entry is invalidated
 * (queue_forget_sequence).
 */
static Oid	request_seq_table = InvalidOid;
static Oid	request_seq = InvalidOid;

/*
 * How the extension's triggers of the queue fire (telnyx_resume_queue()
 * sets them so again).
 */
typedef struct QueueTriggerMode
{
	const char *table;
	const char *trigger;
	char		mode;			/* pg_trigger.tgenabled: always or replica */
} QueueTriggerMode;

/* (those that fire always keep the index tables) */
static const QueueTriggerMode queue_trigger_modes[] = {
	{"telnyx_order_requests", "telnyx_order_requests_inserted", TRIGGER_FIRES_ALWAYS},
	{"telnyx_order_requests", "telnyx_order_requests_updated", TRIGGER_FIRES_ALWAYS},
	{"telnyx_order_requests", "telnyx_order_requests_deleted", TRIGGER_FIRES_ALWAYS},
	{"telnyx_order_requests", "telnyx_order_requests_truncated", TRIGGER_FIRES_ALWAYS},
	{"telnyx_order_requests", "telnyx_order_requests_replicated", TRIGGER_FIRES_ON_REPLICA},
	{"telnyx_live_requests", "telnyx_live_requests_replicated", TRIGGER_FIRES_ON_REPLICA},
	{"telnyx_spend_hours", "telnyx_spend_hours_replicated", TRIGGER_FIRES_ON_REPLICA}
};

/* The index trigger's chunk, kept for the next statement. */
static QueueIndexChanges *queue_index_changes = NULL;

/*---- Function declarations ----*/

static void queue_xact(XactEvent event, void *arg);
static void queue_here(StoreArgs *args);
static bool take_reserved(int64 id);
static bool queue_set_state(QueueRequest *req, const char *from, const char *to,
							const char *order_id, Jsonb *last_error,
							double delay_ms);
static List *queue_claim_rows_kept(const char *template, int max, int64 lease_ms,
								   const QueueCursor *after, MemoryContext mcxt);

/* queue_claim_rows_kept with a statement written in the code (its plan is kept) */
#define queue_claim_rows(template, max, lease_ms, after, mcxt) \
	queue_claim_rows_kept("" template, (max), (lease_ms), (after), (mcxt))
static void queue_mark_batch(List *ids, int64 batch, const char *reason);
static void queue_hold(List *reqs, List *reasons, List *untils);
static List *queue_guard_claim(List *reqs);
static List *queue_read_requests(MemoryContext mcxt);
static Jsonb *queue_reason(const char *reason);
static Datum queue_after_ms(double ms);
static int64 queue_new_token(void);
static void queue_claims_args(int64 *ids, int64 *tokens, int n,
							  StoreArgs *args);
static void queue_read_held(const int64 *ids, int n, bool *held);
static void queue_link_late(QueueRequest *req, TelnyxOrder *order);
static void queue_forget_sequence(Datum arg, Oid relid);
static char queue_trigger_fires(Relation rel, const char *tgname);
static Oid	queue_table_oid(const char *relname);
static void queue_index_clear(const char *schema);
static bool queue_lock_requests(void);
static bool queue_same_text(text *a, text *b);
static bool queue_text_is(Datum d, const char *s);
static void queue_index_row(Datum *values, bool *isnull, QueueIndexRow *row);
static void queue_slot_row(TupleTableSlot *slot, const int *attnums,
						   QueueIndexRow *row);
static QueueIndexChanges *queue_index_start(void);
static void queue_index_rebuild(const char *schema);
static void queue_index_flush(QueueIndexChanges *changes);
static void queue_index_change(QueueIndexChanges *changes,
							   const QueueIndexRow *old,
							   const QueueIndexRow *new);
static TupleTableSlot *queue_index_reader(Tuplestorestate *ts, TupleDesc desc,
										  int *readptr);
static bool queue_index_next(Tuplestorestate *ts, int readptr,
							 TupleTableSlot *slot);

/*
 * queue_init
 *		From _PG_init: the queue's settings.
 */
void
queue_init(void)
{
	CacheRegisterRelcacheCallback(queue_forget_sequence, (Datum) 0);
	RegisterXactCallback(queue_xact, NULL);
	DefineCustomIntVariable("telnyx.reconcile_delay",
							"Time to wait before looking up an order whose outcome is unknown.",
							"An order Telnyx is still processing must show up in the list before the request is judged lost.",
							&telnyx_reconcile_delay_ms,
							10000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("telnyx.request_retention",
							"How long finished order requests, order events and webhook deliveries are kept before the worker deletes them.",
							"Sent, failed and cancelled requests older than this are deleted, never an unknown or unfinished one, never an order; so are events of orders no longer open, and webhook deliveries but the newest applied one of each number order.  0 keeps them for ever.",
							&telnyx_request_retention_s,
							30 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/*
 * queue_refuse_read_only
 *		Refuse to queue in a read-only transaction, or for a database whose
 *		SQL objects are of another version than this library.
 */
void
queue_refuse_read_only(void)
{
	store_require_version(false);
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot queue an order in a read-only transaction"),
				 errhint("Queue it on the primary server, in a read-write transaction.")));
}

/*
 * queue_new_key
 *		A new request's key (its Idempotency-Key); an order given no
 *		customer_reference is given one naming the key, so that it can
 *		always be found again, even if the answer is lost.
 */
char *
queue_new_key(OrderFields *fields)
{
	char	   *key = DatumGetCString(DirectFunctionCall1(uuid_out,
														  DirectFunctionCall1(gen_random_uuid, (Datum) 0)));

	if (fields->customer_reference == NULL)
		fields->customer_reference = psprintf("%s%s", QUEUE_REFERENCE_PREFIX, key);
	return key;
}

/*
 * queue_enqueue
 *		Queue the validated order body under key (queue_new_key); return the
 *		request id.  Runs in the caller's transaction, as the caller:
 *		nothing is sent unless it commits.  reserved_id, when not 0, is an
 *		id that queue_reserve_id gave this transaction (any other is
 *		ignored); each is used once.
 */
int64
queue_enqueue(Jsonb *body, const char *key, int64 reserved_id)
{
	StoreArgs	args = {0};
	SpendMark	mark;
	Oid			requested_by = GetUserId();
	StoreValue	inserted = {0};
	int64		id;

	if (reserved_id != 0 && !take_reserved(reserved_id))
		reserved_id = 0;
	queue_refuse_read_only();

	/* a dry run, or held by the breaker with the rest of this transaction's */
	spend_enqueue_mark(&mark);
	if (mark.mark_earlier)
		queue_mark_batch(mark.earlier_ids, mark.held_batch, mark.held_reason);

	store_arg(&args, UUIDOID, DirectFunctionCall1(uuid_in, CStringGetDatum(key)));
	store_arg(&args, JSONBOID, JsonbPGetDatum(body));
	store_arg_text(&args, api_request_text(body));
	store_arg(&args, OIDOID, ObjectIdGetDatum(requested_by));
	store_arg(&args, INT8OID, Int64GetDatum(reserved_id));
	/* where it was queued: only a sender here sends it (see queue_home) */
	store_arg(&args, OIDOID, ObjectIdGetDatum(MyDatabaseId));
	store_arg(&args, INT8OID, Int64GetDatum((int64) GetSystemIdentifier()));
	store_arg_text(&args, mark.dry_run ? "dry_run" : "queued");
	store_arg_or_null(&args, INT8OID, Int64GetDatum(mark.held_batch),
					  mark.held_batch == 0);
	store_arg_text(&args, mark.held_reason);

	/* one row of its own: an enqueue never waits for another transaction */
	if (reserved_id == 0)
		(void) store_run("INSERT INTO %1$s.telnyx_order_requests AS r"
						 " (request_key, body, request_body, requested_by,"
						 "  home_database_oid, home_system_identifier, state, held_batch,"
						 "  held_reason)"
						 " VALUES ($1, $2, $3, $4, $6, $7, $8, $9, $10) RETURNING r.id",
						 &args, SPI_OK_INSERT_RETURNING, store_row_value, &inserted);
	else
		(void) store_run("INSERT INTO %1$s.telnyx_order_requests AS r"
						 " (id, request_key, body, request_body, requested_by,"
						 "  home_database_oid, home_system_identifier, state, held_batch,"
						 "  held_reason)"
						 " OVERRIDING SYSTEM VALUE VALUES ($5, $1, $2, $3, $4, $6, $7, $8, $9, $10)"
						 " RETURNING r.id",
						 &args, SPI_OK_INSERT_RETURNING, store_row_value, &inserted);
	id = inserted.found ? DatumGetInt64(inserted.value) : 0;

	if (id != 0)
		spend_enqueued(id);
	if (id != 0 && !mark.dry_run)
		wakeup_at_commit();
	return id;
}

/* A relcache invalidation: forget the sequence if it was of relid's. */
static void
queue_forget_sequence(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == request_seq_table)
		request_seq_table = request_seq = InvalidOid;
}

/* The transaction has ended: forget the ids it reserved. */
static void
queue_xact(XactEvent event, void *arg)
{
	if (store_xact_ended(event))
		reserved_ids = NIL;		/* freed with its TopTransactionContext */
}

/* Was id reserved by this transaction?  It is then no longer. */
static bool
take_reserved(int64 id)
{
	ListCell   *lc;

	foreach(lc, reserved_ids)
	{
		if (*(int64 *) lfirst(lc) == id)
		{
			reserved_ids = foreach_delete_current(reserved_ids, lc);
			return true;
		}
	}
	return false;
}

/*
 * queue_reserve_id
 *		A new request id, for queue_enqueue to use later in this transaction.
 */
int64
queue_reserve_id(void)
{
	Oid			relid;
	int64		id;

	relid = queue_table_oid("telnyx_order_requests");
	if (relid != request_seq_table || !OidIsValid(request_seq))
	{
		request_seq = compat_identity_sequence(relid, 1);
		request_seq_table = relid;
	}
	/*
	 * the extension's own sequence, on its behalf: no privilege of the
	 * caller's is checked (and no statement runs, so nothing to switch to
	 * the owner for)
	 */
	id = nextval_internal(request_seq, false);

	{
		int64	   *copy = MemoryContextAlloc(TopTransactionContext, sizeof(int64));
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		*copy = id;
		reserved_ids = lappend(reserved_ids, copy);
		MemoryContextSwitchTo(old);
	}
	return id;
}

/*
 * queue_cancel
 *		Cancel request id if it is still queued or retrying and the calling
 *		role queued it (or is a member of the role that did, or a
 *		superuser).  Returns whether it was cancelled; another role's
 *		request is treated as absent.
 */
bool
queue_cancel(int64 id)
{
	StoreArgs	args = {0};
	bool		cancelled;

	store_arg(&args, INT8OID, Int64GetDatum(id));
	store_arg(&args, OIDOID, ObjectIdGetDatum(GetUserId()));

	cancelled = store_run("UPDATE %1$s.telnyx_order_requests r"
						  "   SET state = 'cancelled', updated_at = pg_catalog.now()"
						  " WHERE r.id OPERATOR(pg_catalog.=) $1"
						  "   AND r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying,held}')"
						  "   AND pg_catalog.pg_has_role($2, r.requested_by, 'MEMBER')",
						  &args, SPI_OK_UPDATE, NULL, NULL) > 0;
	return cancelled;
}

/*
 * queue_home
 *		Does the queue live in this cluster and database?  Each request
 *		records where it was queued; a database that was restored or cloned
 *		from another holds requests queued elsewhere that no sender has
 *		finished (or a home row, kept since 1.2, of another), and must not
 *		send until an administrator says so (queue_resume).  (Requests that
 *		arrive by logical replication are never sent here: they do not
 *		pause the queue.)
 */
QueueHome
queue_home(void)
{
	StoreArgs	args = {0};
	QueueHome	result;

	store_arg(&args, INT8OID, Int64GetDatum((int64) GetSystemIdentifier()));
	store_arg(&args, OIDOID, ObjectIdGetDatum(MyDatabaseId));
	result = store_run("SELECT 1 FROM %1$s.telnyx_queue_home h"
					   " WHERE (h.system_identifier, h.database_oid) IS DISTINCT FROM ($1, $2)"
					   /* through the requests a sender still acts on */
					   " UNION ALL"
					   " (SELECT 1 FROM %1$s.telnyx_live_requests e"
					   "    JOIN %1$s.telnyx_order_requests r"
					   "      ON r.id OPERATOR(pg_catalog.=) e.request_id"
					   "   WHERE e.kind OPERATOR(pg_catalog.=) ANY ('{q,u,a}'::pg_catalog.\"char\"[])"
					   "     AND r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying,sending,unknown}')"
					   "     AND (r.home_system_identifier, r.home_database_oid)"
					   "         IS DISTINCT FROM ($1, $2) LIMIT 1)",
					   &args, SPI_OK_SELECT, NULL, NULL) > 0 ? QUEUE_HOME_ELSEWHERE : QUEUE_HOME_HERE;
	return result;
}

/*
 * queue_resume
 *		Make this cluster and database the queue's home; returns whether it
 *		was elsewhere before.
 */
bool
queue_resume(void)
{
	StoreArgs	here = {0};
	StoreScope	scope;
	char	   *schema;
	bool		moved;
	int			i;

	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot resume the queue in a read-only transaction")));

	/*
	 * No request changes until this transaction ends: the index tables are
	 * rebuilt from what it reads, and a change committed meanwhile would
	 * be lost to them.
	 */
	if (!queue_lock_requests())
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not resume the queue: another transaction is writing order requests"),
				 errdetail("The queue's index tables are rebuilt from the requests, which must not change meanwhile."),
				 errhint("Run it again once that transaction has ended (pg_locks shows it; a prepared transaction waits for COMMIT PREPARED or ROLLBACK PREPARED).")));
	moved = queue_home() == QUEUE_HOME_ELSEWHERE;

	queue_here(&here);
	schema = store_begin(&scope);
	/* the unfinished requests brought here are this database's now */
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET home_system_identifier = $1, home_database_oid = $2,"
			   "       updated_at = pg_catalog.now()"
			   " WHERE r.state OPERATOR(pg_catalog.<>) ALL (" QUEUE_FINISHED_STATES ")"
			   "   AND (r.home_system_identifier, r.home_database_oid)"
			   "       IS DISTINCT FROM ($1, $2)",
			   &here, SPI_OK_UPDATE);
	store_exec(schema,
			   "INSERT INTO %1$s.telnyx_queue_home AS h"
			   " (system_identifier, database_oid, database_name)"
			   " VALUES ($1, $2, $3) ON CONFLICT (only_row) DO UPDATE"
			   " SET system_identifier = EXCLUDED.system_identifier,"
			   "     database_oid = EXCLUDED.database_oid,"
			   "     database_name = EXCLUDED.database_name,"
			   "     since = pg_catalog.now()",
			   &here, SPI_OK_INSERT);

	/*
	 * Requests that arrived by logical replication become this database's:
	 * each is looked up before anything is sent (another database may
	 * have sent it).
	 */
	{
		StoreArgs	args = {0};

		store_arg(&args, TIMESTAMPTZOID, queue_after_ms(0));
		store_arg(&args, JSONBOID, JsonbPGetDatum(queue_reason("It arrived by logical replication; resumed here, it is looked up before it is sent.")));
		store_exec(schema,
				   "UPDATE %1$s.telnyx_order_requests r"
				   "   SET state = 'unknown', next_attempt_at = $1, last_error = $2,"
				   "       first_sent_at = COALESCE(r.first_sent_at, r.created_at),"
				   "       unknown_since = pg_catalog.now(), lookups = 0,"
				   "       updated_at = pg_catalog.now()"
				   " WHERE r.state OPERATOR(pg_catalog.=) 'replicated'",
				   &args, SPI_OK_UPDATE);
		moved |= SPI_processed > 0;
	}
	queue_index_rebuild(schema);

	/*
	 * Its triggers as the extension made them: a data-only restore with
	 * --disable-triggers ends with ENABLE TRIGGER ALL, which makes every
	 * trigger fire on origin only.
	 */
	for (i = 0; i < lengthof(queue_trigger_modes); i++)
	{
		const QueueTriggerMode *m = &queue_trigger_modes[i];
		Relation	rel = table_open(queue_table_oid(m->table), AccessShareLock);
		bool		as_made = queue_trigger_fires(rel, m->trigger) == m->mode;

		table_close(rel, AccessShareLock);
		if (!as_made)
			store_exec_once(schema,
							psprintf("ALTER TABLE %%1$s.%s ENABLE %s TRIGGER %s",
									 m->table,
									 m->mode == TRIGGER_FIRES_ALWAYS ? "ALWAYS" : "REPLICA",
									 m->trigger),
							SPI_OK_UTILITY);
	}
	store_end(&scope);
	return moved;
}

/* This cluster and database, as a row of telnyx_queue_home. */
static void
queue_here(StoreArgs *args)
{
	store_arg(args, INT8OID, Int64GetDatum((int64) GetSystemIdentifier()));
	store_arg(args, OIDOID, ObjectIdGetDatum(MyDatabaseId));
	store_arg_text(args, get_database_name(MyDatabaseId));
}

/*
 * A new claim's fencing token: random, so that no two claims, of this
 * process or any other, before or after a restart, share one.
 */
static int64
queue_new_token(void)
{
	int64		token = 0;

	while (token == 0)
	{
		if (!pg_strong_random(&token, sizeof(token)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random claim token")));
	}
	return token;
}

/* A timestamptz datum ms milliseconds from now (64-bit arithmetic). */
static Datum
queue_after_ms(double ms)
{
	ms = Max(ms, 0.0);
	ms = Min(ms, (double) INT64CONST(1000000000000));
	return TimestampTzGetDatum(GetCurrentTimestamp() + (TimestampTz) (ms * 1000.0));
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
	return OidIsValid(get_relname_relid("telnyx_queue_home", store_namespace()));
}

/*
 * queue_claim
 *		Claim up to max due requests for sending: state "sending", a lease
 *		of lease_ms, and this process as claimer.  *claimed is set to how
 *		many were claimed, those the spend guard held included (the list
 *		returned holds the ones to send).  The list is allocated in mcxt, which
 *		must outlive the transaction.
 */
List *
queue_claim(int max, int64 lease_ms, QueueCursor *after, MemoryContext mcxt,
			int *claimed_out)
{
	List	   *reqs;
	ListCell   *lc;
	int			claimed;

	reqs = queue_claim_rows("WITH due AS ("
							"  SELECT q.id FROM %1$s.telnyx_live_requests e"
							"    JOIN %1$s.telnyx_order_requests q"
							"      ON q.id OPERATOR(pg_catalog.=) e.request_id"
							"   WHERE e.kind OPERATOR(pg_catalog.=) 'q'"
							"     AND e.due_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
							"     AND (e.due_at, e.request_id) OPERATOR(pg_catalog.>) ($6, $7)"
							"     AND q.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying}')"
							QUEUE_AT_HOME
							"   ORDER BY e.due_at, e.request_id LIMIT $1"
							"     FOR UPDATE OF q SKIP LOCKED)"
							" UPDATE %1$s.telnyx_order_requests r"
							"    SET state = 'sending',"
							"        attempts = r.attempts OPERATOR(pg_catalog.+) 1,"
							"        lease_until = $2, claimed_by_pid = pg_catalog.pg_backend_pid(),"
							"        claimed_by_start = $3, claim_token = $8,"
							"        first_sent_at = coalesce(r.first_sent_at, pg_catalog.now()),"
							"        updated_at = pg_catalog.now()"
							"   FROM due WHERE r.id OPERATOR(pg_catalog.=) due.id"
							QUEUE_REQUEST_COLUMNS,
							max, lease_ms, after, mcxt);
	claimed = list_length(reqs);
	*claimed_out = claimed;

	/* the next claim starts after the last row of this one */
	foreach(lc, reqs)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);

		if (req->next_attempt_at > after->at ||
			(req->next_attempt_at == after->at && req->id > after->id))
		{
			after->at = req->next_attempt_at;
			after->id = req->id;
		}
	}
	/* none left after it: the next claim looks from the start again */
	if (claimed < max)
		queue_cursor_reset(after);

	/* what the spend guard holds (or the dry run keeps) is not sent */
	if (reqs != NIL)
	{
		List	   *send = queue_guard_claim(reqs);
		MemoryContext old = MemoryContextSwitchTo(mcxt);

		reqs = list_copy(send);
		MemoryContextSwitchTo(old);
	}
	return reqs;
}

/*
 * In the transaction of a claim, before it commits: of the requests
 * claimed, hold those the breaker marked and those over a spend limit,
 * count the first sends of the others (spend.c), and return those to send.
 * A resend (a request sent before) is the same order: never held, counted
 * once.  A released request is sent whatever the limits say, and counted,
 * also against the others of the same claim.
 */
static List *
queue_guard_claim(List *reqs)
{
	SpendGuard *guard;
	bool		first_sends = false;
	List	   *send = NIL;
	List	   *held = NIL;
	List	   *held_reasons = NIL;
	List	   *held_until = NIL;
	ListCell   *lc;

	foreach(lc, reqs)
		if (((QueueRequest *) lfirst(lc))->attempts == 1)
			first_sends = true;
	guard = spend_guard_begin(first_sends);

	foreach(lc, reqs)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);
		char	   *reason;
		TimestampTz *until = palloc(sizeof(TimestampTz));

		if (req->attempts != 1)
		{
			send = lappend(send, req);
			continue;
		}
		if (req->held_batch != 0 && !OidIsValid(req->released_by))
		{
			*until = DT_NOEND;
			held = lappend(held, req);
			held_reasons = lappend(held_reasons, NULL);
			held_until = lappend(held_until, until);
			continue;
		}
		reason = palloc(SPEND_REASON_LEN);
		if (!spend_guard_take(guard, req->requested_by, spend_numbers(req->body),
							  req->first_sent_at, OidIsValid(req->released_by),
							  until, reason))
		{
			held = lappend(held, req);
			held_reasons = lappend(held_reasons, reason);
			held_until = lappend(held_until, until);
			continue;
		}
		send = lappend(send, req);
	}

	if (held != NIL)
		queue_hold(held, held_reasons, held_until);
	spend_guard_end(guard);
	return send;
}

/*
 * queue_cursor_reset
 *		A claim's cursor at the start of the queue.
 */
void
queue_cursor_reset(QueueCursor *after)
{
	after->at = DT_NOBEGIN;
	after->id = 0;
}

/*
 * Run a claiming statement (through queue_claim_rows: a literal, whose plan
 * is kept by its address): $1 the most rows, $2 the end of the lease, $3
 * this process's start time, $4 and $5 this cluster's system identifier
 * and this database (QUEUE_AT_HOME), $6 and $7 the cursor, $8 the claim's
 * fencing token (new for every claim); it returns the claimed requests,
 * which are read into mcxt.
 */
static List *
queue_claim_rows_kept(const char *template, int max, int64 lease_ms,
					  const QueueCursor *after, MemoryContext mcxt)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	List	   *result;

	store_arg(&args, INT4OID, Int32GetDatum(max));
	store_arg(&args, TIMESTAMPTZOID, queue_after_ms((double) lease_ms));
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(MyStartTimestamp));
	store_arg(&args, INT8OID, Int64GetDatum((int64) GetSystemIdentifier()));
	store_arg(&args, OIDOID, ObjectIdGetDatum(MyDatabaseId));
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(after ? after->at : DT_NOBEGIN));
	store_arg(&args, INT8OID, Int64GetDatum(after ? after->id : 0));
	store_arg(&args, INT8OID, Int64GetDatum(queue_new_token()));

	schema = store_begin(&scope);
	store_exec_kept(schema, template, &args, SPI_OK_UPDATE_RETURNING);
	result = queue_read_requests(mcxt);
	store_end(&scope);
	return result;
}

/* The rows of SPI_tuptable (QUEUE_REQUEST_COLUMNS), in mcxt. */
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
		Datum		d;

		req->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		req->request_key = SPI_getvalue(tup, desc, 2);
		req->body = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull));
		req->request_body = SPI_getvalue(tup, desc, 4);
		req->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		req->created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		req->first_sent_at = isnull ? req->created_at : DatumGetTimestampTz(d);
		req->next_attempt_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
		req->claim_token = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		d = SPI_getbinval(tup, desc, 10, &isnull);
		/* not known when its last attempt ended: from now on (recorded so) */
		req->unknown_since = isnull ? GetCurrentTimestamp() : DatumGetTimestampTz(d);
		req->lookups = DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
		req->requested_by = DatumGetObjectId(SPI_getbinval(tup, desc, 12, &isnull));
		d = SPI_getbinval(tup, desc, 13, &isnull);
		req->held_batch = isnull ? 0 : DatumGetInt64(d);
		d = SPI_getbinval(tup, desc, 14, &isnull);
		req->released_by = isnull ? InvalidOid : DatumGetObjectId(d);
		result = lappend(result, req);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/*
 * queue_record
 *		Record the outcome of sending req.  A success records the order too,
 *		linked to req, even when req's claim was taken over meanwhile
 *		(queue_link_late); any other outcome of a claim taken over is the
 *		new holder's to decide, and is dropped.  A request to send again is
 *		due after retry_delay_ms (the sender's backoff); *wait_ms is set to
 *		how long the sender should hold back (rate limits).
 */
QueueOutcome
queue_record(QueueRequest *req, TelnyxResult *result, double retry_delay_ms,
			 double *wait_ms)
{
	Jsonb	   *error = NULL;

	*wait_ms = 0;
	if (result->class != TELNYX_OK)
		error = api_error_json(result);

	switch (api_create_disposition(result->class))
	{
		case API_CREATED:
			{
				TelnyxOrder *order = result->order;

				store_order(order, false, req->body, req->request_key);
				if (!queue_set_state(req, "sending", "sent", order->id, NULL, 0))
					queue_link_late(req, order);
				return QUEUE_DONE;
			}

		case API_FAILED:
			/* refused: nothing was bought, the count comes back */
			if (queue_set_state(req, "sending", "failed", NULL, error, 0))
				spend_give_back(req->requested_by, req->first_sent_at,
								spend_numbers(req->body));
			return QUEUE_DONE;

		case API_PAUSE:
			/* it stays queued, as if not claimed */
			queue_set_state(req, "sending", "queued", NULL, error, 0);
			return QUEUE_PAUSE;

		case API_RATE_LIMITED:
			queue_set_state(req, "sending", "retrying", NULL, error, retry_delay_ms);
			*wait_ms = retry_delay_ms;
			return QUEUE_RATE_LIMITED;

		case API_SEND_AGAIN:
			queue_set_state(req, "sending", "retrying", NULL, error, retry_delay_ms);
			return QUEUE_RETRY;

		case API_UNKNOWN:
			break;
	}
	/* anything else may have created the order */
	queue_set_state(req, "sending", "unknown", NULL, error,
					telnyx_reconcile_delay_ms);
	return QUEUE_UNKNOWN;
}

/*
 * queue_record_created
 *		queue_record for many requests whose creates all succeeded (reqs and
 *		results in the same order): their orders in one statement, their
 *		state in another.  An error leaves nothing recorded: the caller
 *		records them one by one instead.
 */
void
queue_record_created(List *reqs, List *results)
{
	StoreArgs	args = {0};
	List	   *orders = NIL;
	List	   *bodies = NIL;
	List	   *keys = NIL;
	int64	   *ids = palloc(sizeof(int64) * list_length(reqs));
	int64	   *tokens = palloc(sizeof(int64) * list_length(reqs));
	List	   *order_ids = NIL;
	bool	   *held = palloc(sizeof(bool) * list_length(reqs));
	ListCell   *lc;
	ListCell   *lc2;
	StoreScope	scope;
	char	   *schema;
	int			n = 0;

	forboth(lc, reqs, lc2, results)
	{
		QueueRequest *req = (QueueRequest *) lfirst(lc);
		TelnyxResult *result = (TelnyxResult *) lfirst(lc2);
		TelnyxOrder *order = result->order;

		Assert(result->class == TELNYX_OK);
		orders = lappend(orders, order);
		bodies = lappend(bodies, req->body);
		keys = lappend(keys, req->request_key);
		ids[n] = req->id;
		tokens[n] = req->claim_token;
		order_ids = lappend(order_ids, order->id);
		n++;
	}
	store_orders(orders, bodies, keys, false, true);

	queue_claims_args(ids, tokens, n, &args);
	store_arg(&args, TEXTARRAYOID, store_text_array(order_ids));
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET state = 'sent', order_id = t.order_id, last_error = NULL,"
			   "       next_attempt_at = pg_catalog.now(),"
			   QUEUE_CLAIM_ENDS
			   "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
			   "                  pg_catalog.unnest($3)) AS t(id, token, order_id)"
			   " WHERE r.id OPERATOR(pg_catalog.=) t.id"
			   "   AND r.state OPERATOR(pg_catalog.=) 'sending'"
			   "   AND r.claim_token OPERATOR(pg_catalog.=) t.token"
			   " RETURNING r.id",
			   &args, SPI_OK_UPDATE_RETURNING);
	queue_read_held(ids, n, held);
	store_end(&scope);

	/* an answer whose claim was taken over is still its request's */
	forboth(lc, reqs, lc2, results)
	{
		if (!held[foreach_current_index(lc)])
			queue_link_late((QueueRequest *) lfirst(lc),
							((TelnyxResult *) lfirst(lc2))->order);
	}
}

/*
 * queue_link_late
 *		Telnyx created req's order, but req's claim was taken over before
 *		the answer was recorded (the order's rows are recorded, linked to
 *		req by its key).  The answer is the evidence the new holder lacked:
 *		a request not answered otherwise since (unknown, or waiting to be
 *		sent again) is sent, with this order, and whoever holds it now finds
 *		its claim gone.  A request sent again meanwhile keeps both orders
 *		linked to it, so that neither is forgotten.
 */
static void
queue_link_late(QueueRequest *req, TelnyxOrder *order)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	bool		linked;

	store_arg(&args, INT8OID, Int64GetDatum(req->id));
	store_arg_text(&args, order->id);
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET state = 'sent', order_id = $2, last_error = NULL,"
			   "       next_attempt_at = pg_catalog.now(),"
			   "       unknown_since = NULL, lookups = 0,"
			   QUEUE_CLAIM_ENDS
			   " WHERE r.id OPERATOR(pg_catalog.=) $1"
			   "   AND r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying,unknown,cancelled}')",
			   &args, SPI_OK_UPDATE);
	linked = SPI_processed > 0;
	if (!linked)
	{
		/* answered already: by this order (reconciled), or by another */
		store_exec(schema,
				   "SELECT 1 FROM %1$s.telnyx_order_requests r"
				   " WHERE r.id OPERATOR(pg_catalog.=) $1"
				   "   AND r.order_id IS NOT DISTINCT FROM $2",
				   &args, SPI_OK_SELECT);
		linked = SPI_processed > 0;
	}
	if (!linked)
		ereport(WARNING,
				(errmsg("order \"%s\" answers order request %lld, which was taken over and sent again",
						order->id, (long long) req->id),
				 errdetail("Both orders are recorded and linked to the request.")));
	store_end(&scope);
}

/*
 * queue_record_unstored
 *		queue_record failed (why says how).  A created order is still "sent"
 *		with its id, and its rows are left to the periodic sync; any other
 *		outcome becomes unknown, to be reconciled.
 */
void
queue_record_unstored(QueueRequest *req, TelnyxResult *result, const char *why)
{
	if (result->class == TELNYX_OK)
	{
		TelnyxOrder *order = result->order;

		if (!queue_set_state(req, "sending", "sent", order->id,
							 queue_reason(psprintf("The order was created, but its rows could not be recorded (%s); the periodic sync records them.",
												   why)),
							 0))
			queue_link_late(req, order);
	}
	else
		queue_set_state(req, "sending", "unknown", NULL,
						queue_reason(psprintf("The outcome could not be recorded (%s).", why)),
						telnyx_reconcile_delay_ms);
}

/*
 * Move req from state "from" to "to", due after delay_ms, if the claim it
 * was read with (req->claim_token) still holds it; returns whether it did.
 * The claim is released.  order_id and last_error are kept unless given.
 * A request that becomes unknown starts its window of absence now; one
 * that stays unknown keeps it and records req->lookups.
 */
static bool
queue_set_state(QueueRequest *req, const char *from, const char *to,
				const char *order_id, Jsonb *last_error, double delay_ms)
{
	StoreArgs	args = {0};
	bool		held;

	store_arg(&args, INT8OID, Int64GetDatum(req->id));
	store_arg_text(&args, from);
	store_arg_text(&args, to);
	store_arg_text(&args, order_id);
	store_arg_or_null(&args, JSONBOID, JsonbPGetDatum(last_error), last_error == NULL);
	store_arg(&args, TIMESTAMPTZOID, queue_after_ms(delay_ms));
	store_arg(&args, INT8OID, Int64GetDatum(req->claim_token));
	store_arg(&args, INT4OID, Int32GetDatum(req->lookups));

	held = store_run("UPDATE %1$s.telnyx_order_requests"
					 "   SET state = $3, order_id = coalesce($4, order_id),"
					 "       last_error = CASE WHEN $3 OPERATOR(pg_catalog.=) 'sent'"
					 "                         AND $5 IS NULL THEN NULL"
					 "                         ELSE coalesce($5, last_error) END,"
					 "       next_attempt_at = $6,"
					 "       unknown_since = CASE WHEN $3 OPERATOR(pg_catalog.<>) 'unknown' THEN NULL"
					 "                            WHEN $2 OPERATOR(pg_catalog.<>) 'unknown'"
					 "                            THEN pg_catalog.now()"
					 "                            ELSE coalesce(unknown_since, pg_catalog.now()) END,"
					 "       lookups = CASE WHEN $2 OPERATOR(pg_catalog.=) 'unknown'"
					 "                       AND $3 OPERATOR(pg_catalog.=) 'unknown' THEN $8 ELSE 0 END,"
					 QUEUE_CLAIM_ENDS
					 " WHERE id OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) $2"
					 "   AND claim_token OPERATOR(pg_catalog.=) $7",
					 &args, SPI_OK_UPDATE, NULL, NULL) > 0;
	return held;
}

/*
 * queue_purge
 *		Delete up to max finished requests (sent, failed or cancelled) last
 *		changed before cutoff, oldest first, skipping any row another
 *		transaction holds; returns how many.  Never an unknown or
 *		unfinished request, never an order (orders are not requests).
 */
int
queue_purge(TimestampTz cutoff, int max)
{
	StoreArgs	args = {0};
	int			n;

	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(cutoff));
	store_arg(&args, INT4OID, Int32GetDatum(max));
	n = (int) store_run("DELETE FROM %1$s.telnyx_order_requests r"
						" WHERE r.id OPERATOR(pg_catalog.=) ANY (ARRAY("
						"  SELECT q.id FROM %1$s.telnyx_order_requests q"
						"   WHERE q.created_at OPERATOR(pg_catalog.<) $1"
						"     AND q.state OPERATOR(pg_catalog.=) ANY (" QUEUE_FINISHED_STATES ")"
						"     AND q.updated_at OPERATOR(pg_catalog.<) $1"
						"   ORDER BY q.created_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
						&args, SPI_OK_DELETE, NULL, NULL);
	return n;
}

/*
 * queue_orders_named
 *		Of the order ids given (palloc'd strings), those a request of this
 *		database names as its order, in the caller's memory context.
 */
List *
queue_orders_named(List *ids)
{
	StoreArgs	args = {0};
	List	   *named = NIL;

	if (ids == NIL)
		return NIL;
	store_arg(&args, TEXTARRAYOID, store_text_array(ids));
	(void) store_run("SELECT DISTINCT l.order_id FROM %1$s.telnyx_requests_by_order l"
					 " WHERE l.order_id OPERATOR(pg_catalog.=) ANY ($1)",
					 &args, SPI_OK_SELECT, store_row_text, &named);
	return named;
}

/*
 * queue_at_stake
 *		What dropping the extension would lose: the orders recorded, and the
 *		requests not yet finished.
 */
void
queue_at_stake(int64 *orders, int64 *unfinished)
{
	StoreScope	scope;
	char	   *schema;
	bool		isnull;

	schema = store_begin(&scope);
	store_exec(schema,
			   "SELECT (SELECT pg_catalog.count(*) FROM %1$s.telnyx_inexplicit_orders),"
			   "       (SELECT pg_catalog.count(*) FROM %1$s.telnyx_order_requests r"
			   "         WHERE r.state OPERATOR(pg_catalog.<>) ALL (" QUEUE_FINISHED_STATES "))",
			   NULL, SPI_OK_SELECT);
	*orders = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	*unfinished = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 2, &isnull));
	store_end(&scope);
}

/*
 * queue_recover_stale
 *		Every claim of a sender that is gone (crash, restart, kill) or whose
 *		lease ran out ends at once: a request it left "sending" has an
 *		unknown outcome, and an unknown one it was reconciling is free to be
 *		reconciled again.  Returns how many were left "sending".
 */
int
queue_recover_stale(void)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	int			n = 0;
	uint64		i;

	store_arg(&args, TIMESTAMPTZOID, queue_after_ms(telnyx_reconcile_delay_ms));
	store_arg(&args, JSONBOID, JsonbPGetDatum(queue_reason("The sender stopped before it could record the outcome.")));

	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET next_attempt_at = CASE WHEN r.state OPERATOR(pg_catalog.=) 'sending'"
			   "                              THEN $1 ELSE r.next_attempt_at END,"
			   QUEUE_SENDING_TO_UNKNOWN
			   QUEUE_CLAIM_ENDS
			   "  FROM %1$s.telnyx_live_requests e"
			   " WHERE e.kind OPERATOR(pg_catalog.=) 'a'"
			   "   AND r.id OPERATOR(pg_catalog.=) e.request_id"
			   "   AND r.state OPERATOR(pg_catalog.=) ANY ('{sending,unknown}')"
			   "   AND r.claimed_by_pid IS NOT NULL"
			   "   AND (r.lease_until OPERATOR(pg_catalog.<) pg_catalog.now()"
			   "        OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
			   "                        WHERE a.pid OPERATOR(pg_catalog.=) r.claimed_by_pid"
			   "                          AND a.backend_start OPERATOR(pg_catalog.=) r.claimed_by_start))"
			   " RETURNING r.last_error OPERATOR(pg_catalog.=) $2",
			   &args, SPI_OK_UPDATE_RETURNING);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)))
			n++;
	}
	store_end(&scope);
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
	StoreArgs	args = {0};
	int			n;

	store_arg(&args, TIMESTAMPTZOID, queue_after_ms(telnyx_reconcile_delay_ms));
	store_arg(&args, JSONBOID, JsonbPGetDatum(queue_reason("The sender failed before it could record the outcome.")));
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(MyStartTimestamp));

	n = (int) store_run("UPDATE %1$s.telnyx_order_requests r"
						"   SET next_attempt_at = $1,"
						QUEUE_SENDING_TO_UNKNOWN
						QUEUE_CLAIM_ENDS
						"  FROM %1$s.telnyx_live_requests e"
						" WHERE e.kind OPERATOR(pg_catalog.=) 'a'"
						"   AND r.id OPERATOR(pg_catalog.=) e.request_id"
						"   AND r.state OPERATOR(pg_catalog.=) ANY ('{sending,unknown}')"
						"   AND r.claimed_by_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
						"   AND r.claimed_by_start OPERATOR(pg_catalog.=) $3",
						&args, SPI_OK_UPDATE, NULL, NULL);
	return n;
}

/* ids and tokens (n of each) as the next two parameters, int8 arrays */
static void
queue_claims_args(int64 *ids, int64 *tokens, int n, StoreArgs *args)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Datum	   *toks = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
	{
		elems[i] = Int64GetDatum(ids[i]);
		toks[i] = Int64GetDatum(tokens[i]);
	}
	store_arg(args, INT8ARRAYOID, store_int8_array(elems, n));
	store_arg(args, INT8ARRAYOID, store_int8_array(toks, n));
}

/*
 * Which of the n requests ids a statement that returns the ids of the rows
 * it changed (SPI_tuptable) changed: held[i] for ids[i].
 */
static void
queue_read_held(const int64 *ids, int n, bool *held)
{
	uint64		i;
	int			k;

	memset(held, 0, sizeof(bool) * n);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 1, &isnull));

		for (k = 0; k < n; k++)
			if (ids[k] == id)
				held[k] = true;
	}
}

/*
 * queue_unclaim
 *		Give back claimed requests that were never sent (reqs, n of them,
 *		with the tokens of their claims): queued again, as if not claimed.
 *		One claimed for its first send is not sent yet: its count comes back
 *		(spend.c), and it is counted when it is claimed again.
 */
void
queue_unclaim(QueueRequest **reqs, int n)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	int64	   *ids = palloc(sizeof(int64) * n);
	int64	   *tokens = palloc(sizeof(int64) * n);
	bool	   *given = palloc(sizeof(bool) * n);
	int			i;

	for (i = 0; i < n; i++)
	{
		ids[i] = reqs[i]->id;
		tokens[i] = reqs[i]->claim_token;
	}
	queue_claims_args(ids, tokens, n, &args);
	schema = store_begin(&scope);
	/* only claims that are still this process's: never one another took */
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET state = CASE WHEN r.attempts OPERATOR(pg_catalog.>) 1"
			   "                    THEN 'retrying' ELSE 'queued' END,"
			   "       attempts = r.attempts OPERATOR(pg_catalog.-) 1,"
			   "       first_sent_at = CASE WHEN r.attempts OPERATOR(pg_catalog.>) 1"
			   "                            THEN r.first_sent_at END,"
			   QUEUE_CLAIM_ENDS
			   "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS t(id, token)"
			   " WHERE r.id OPERATOR(pg_catalog.=) t.id"
			   "   AND r.state OPERATOR(pg_catalog.=) 'sending'"
			   "   AND r.claim_token OPERATOR(pg_catalog.=) t.token"
			   " RETURNING r.id",
			   &args, SPI_OK_UPDATE_RETURNING);
	queue_read_held(ids, n, given);
	store_end(&scope);

	for (i = 0; i < n; i++)
		if (given[i] && reqs[i]->attempts == 1)
			spend_give_back(reqs[i]->requested_by, reqs[i]->first_sent_at,
							spend_numbers(reqs[i]->body));
}

/*
 * queue_extend_lease
 *		Extend the leases of claimed requests not sent yet (ids, with the
 *		tokens of their claims, n of them) to lease_ms from now, so that no
 *		lease runs out while its holder is alive and waits (for a slot, or
 *		the account's request budget).  held[i] is set to whether request i
 *		is still this claim's: one that is not must not be sent.  Returns
 *		how many are.
 */
int
queue_extend_lease(int64 *ids, int64 *tokens, bool *held, int n, int64 lease_ms)
{
	StoreArgs	args = {0};
	StoreScope	scope;
	char	   *schema;
	int			k;

	queue_claims_args(ids, tokens, n, &args);
	store_arg(&args, TIMESTAMPTZOID, queue_after_ms((double) lease_ms));
	schema = store_begin(&scope);
	store_exec(schema,
			   "UPDATE %1$s.telnyx_order_requests r"
			   "   SET lease_until = $3"
			   "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS t(id, token)"
			   " WHERE r.id OPERATOR(pg_catalog.=) t.id"
			   "   AND r.state OPERATOR(pg_catalog.=) 'sending'"
			   "   AND r.claim_token OPERATOR(pg_catalog.=) t.token"
			   " RETURNING r.id",
			   &args, SPI_OK_UPDATE_RETURNING);
	queue_read_held(ids, n, held);
	k = (int) SPI_processed;
	store_end(&scope);
	return k;
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
							"  SELECT q.id FROM %1$s.telnyx_live_requests e"
							"    JOIN %1$s.telnyx_order_requests q"
							"      ON q.id OPERATOR(pg_catalog.=) e.request_id"
							"   WHERE e.kind OPERATOR(pg_catalog.=) 'u'"
							"     AND e.due_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
							"     AND q.state OPERATOR(pg_catalog.=) 'unknown'"
							"     AND q.claimed_by_pid IS NULL"
							QUEUE_AT_HOME
							"   ORDER BY e.request_id LIMIT $1 FOR UPDATE OF q SKIP LOCKED)"
							" UPDATE %1$s.telnyx_order_requests r"
							"    SET lease_until = $2, claimed_by_pid = pg_catalog.pg_backend_pid(),"
							"        claimed_by_start = $3, claim_token = $8"
							"   FROM due WHERE r.id OPERATOR(pg_catalog.=) due.id"
							QUEUE_REQUEST_COLUMNS,
							max, QUEUE_RECONCILE_LEASE_MS, NULL, mcxt);
}

/*
 * queue_order_taken
 *		May order_id be the order of unknown request req, by what is
 *		recorded here?  QUEUE_ORDER_TAKEN when it is linked to another
 *		request or call, or was known here before req was first sent;
 *		QUEUE_ORDER_UNSURE when it is recorded as the answer to a call
 *		whose key was not kept (before 1.5); else QUEUE_ORDER_FREE.
 */
QueueOrderTaken
queue_order_taken(const char *order_id, const QueueRequest *req)
{
	StoreArgs	args = {0};
	List	   *answers = NIL;

	store_arg_text(&args, order_id);
	store_arg(&args, INT8OID, Int64GetDatum(req->id));
	store_arg(&args, TIMESTAMPTZOID, TimestampTzGetDatum(req->first_sent_at));
	store_arg(&args, UUIDOID, DirectFunctionCall1(uuid_in, CStringGetDatum(req->request_key)));
	(void) store_run("SELECT 'taken' FROM %1$s.telnyx_requests_by_order l"
					 " WHERE l.order_id OPERATOR(pg_catalog.=) $1"
					 "   AND l.request_id OPERATOR(pg_catalog.<>) $2"
					 " UNION ALL "
					 "SELECT CASE WHEN o.first_seen_at OPERATOR(pg_catalog.<) $3"
					 "              OR o.request_key OPERATOR(pg_catalog.<>) ALL"
					 "                 (ARRAY[$4, '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid])"
					 "            THEN 'taken' ELSE 'unsure' END"
					 "  FROM %1$s.telnyx_inexplicit_orders o"
					 " WHERE o.id OPERATOR(pg_catalog.=) $1"
					 "   AND (o.first_seen_at OPERATOR(pg_catalog.<) $3"
					 "        OR o.request_key OPERATOR(pg_catalog.<>) $4)"
					 " ORDER BY 1 LIMIT 1",
					 &args, SPI_OK_SELECT, store_row_text, &answers);
	if (answers == NIL)
		return QUEUE_ORDER_FREE;
	return strcmp((const char *) linitial(answers), "unsure") == 0 ?
		QUEUE_ORDER_UNSURE : QUEUE_ORDER_TAKEN;
}

/*
 * queue_reconciled
 *		What reconciliation found for unknown request req: its order found
 *		(recorded, and req "sent" with it); else req becomes to ("unknown"
 *		again, looked up after at least delay_ms and telnyx.reconcile_delay;
 *		or "retrying", sent again at once as the same request), with
 *		reason.  req->lookups is recorded.
 */
void
queue_reconciled(QueueRequest *req, TelnyxOrder *found, const char *to,
				 const char *reason, double delay_ms)
{
	if (found != NULL)
	{
		store_order(found, false, req->body, req->request_key);
		queue_set_state(req, "unknown", "sent", found->id, NULL, 0);
	}
	else if (strcmp(to, "unknown") == 0)
		queue_set_state(req, "unknown", "unknown", NULL, queue_reason(reason),
						Max((double) telnyx_reconcile_delay_ms, delay_ms));
	else
		queue_set_state(req, "unknown", to, NULL, queue_reason(reason), 0);
}

/*
 * queue_unknown_retry_later
 *		The list could not be read, or the request could not be resolved:
 *		reconcile it again after retry_delay_ms (the sender's backoff) and
 *		telnyx.reconcile_delay.
 */
void
queue_unknown_retry_later(QueueRequest *req, double retry_delay_ms)
{
	queue_set_state(req, "unknown", "unknown", NULL, NULL,
					retry_delay_ms + telnyx_reconcile_delay_ms);
}

/*
 * queue_next_due_ms
 *		Milliseconds until the next request is due (0 if one is due now),
 *		or -1 if nothing waits.  A request another sender has claimed is
 *		not this one's to wait for.
 */
double
queue_next_due_ms(void)
{
	StoreValue	due = {0};

	/* the first that the request's own row says is due */
	(void) store_run("SELECT LEAST((SELECT e.due_at FROM %1$s.telnyx_live_requests e"
					 "                JOIN %1$s.telnyx_order_requests r"
					 "                  ON r.id OPERATOR(pg_catalog.=) e.request_id"
					 "               WHERE e.kind OPERATOR(pg_catalog.=) 'q'"
					 "                 AND r.state OPERATOR(pg_catalog.=) ANY ('{queued,retrying}')"
					 "               ORDER BY e.due_at LIMIT 1),"
					 "             (SELECT e.due_at FROM %1$s.telnyx_live_requests e"
					 "                JOIN %1$s.telnyx_order_requests r"
					 "                  ON r.id OPERATOR(pg_catalog.=) e.request_id"
					 "               WHERE e.kind OPERATOR(pg_catalog.=) 'u'"
					 "                 AND r.state OPERATOR(pg_catalog.=) 'unknown'"
					 "                 AND r.claimed_by_pid IS NULL"
					 "               ORDER BY e.due_at LIMIT 1))",
					 NULL, SPI_OK_SELECT, store_row_value, &due);
	return due.isnull ? -1 : store_ms_until(DatumGetTimestampTz(due.value));
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

/*---- The spend guard's writes (spend.c) ----*/

/*
 * queue_mark_batch
 *		Mark the requests ids (int64 *) that this transaction queued as
 *		held by the breaker, in batch, with reason.  The state is left as it
 *		is (no NOTIFY in the queuing transaction, which may be prepared):
 *		the claim holds them.
 */
static void
queue_mark_batch(List *ids, int64 batch, const char *reason)
{
	StoreArgs	args = {0};
	Datum	   *elems;
	ListCell   *lc;

	if (ids == NIL)
		return;
	elems = palloc(sizeof(Datum) * list_length(ids));
	foreach(lc, ids)
		elems[foreach_current_index(lc)] = Int64GetDatum(*(int64 *) lfirst(lc));
	store_arg(&args, INT8ARRAYOID, store_int8_array(elems, list_length(ids)));
	store_arg(&args, INT8OID, Int64GetDatum(batch));
	store_arg_text(&args, reason);
	(void) store_run("UPDATE %1$s.telnyx_order_requests r"
					 "   SET held_batch = $2, held_reason = $3"
					 " WHERE r.id OPERATOR(pg_catalog.=) ANY ($1)"
					 "   AND r.state OPERATOR(pg_catalog.=) ANY ('{queued,dry_run}')",
					 &args, SPI_OK_UPDATE, NULL, NULL);
}

/*
 * queue_hold
 *		Hold claimed requests (QueueRequest *, each claimed for its first
 *		send) instead of sending them: "held", with why (char *; NULL keeps
 *		the reason they were marked with) and until when (TimestampTz *;
 *		infinity: until a release), their claim undone.
 */
static void
queue_hold(List *reqs, List *reasons, List *untils)
{
	int			n = list_length(reqs);
	StoreArgs	args = {0};
	int64	   *ids = palloc(sizeof(int64) * n);
	int64	   *tokens = palloc(sizeof(int64) * n);
	Datum	   *why = palloc(sizeof(Datum) * n);
	bool	   *why_null = palloc(sizeof(bool) * n);
	Datum	   *until = palloc(sizeof(Datum) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		QueueRequest *req = (QueueRequest *) list_nth(reqs, i);
		char	   *reason = (char *) list_nth(reasons, i);

		ids[i] = req->id;
		tokens[i] = req->claim_token;
		why_null[i] = reason == NULL;
		why[i] = reason == NULL ? (Datum) 0 : CStringGetTextDatum(reason);
		until[i] = TimestampTzGetDatum(*(TimestampTz *) list_nth(untils, i));
	}
	queue_claims_args(ids, tokens, n, &args);
	store_arg(&args, TEXTARRAYOID,
			  PointerGetDatum(construct_md_array(why, why_null, 1, dims, lbs,
												 TEXTOID, -1, false, TYPALIGN_INT)));
	store_arg(&args, TIMESTAMPTZARRAYOID,
			  PointerGetDatum(construct_array(until, n, TIMESTAMPTZOID, sizeof(TimestampTz),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)));
	(void) store_run("UPDATE %1$s.telnyx_order_requests r"
					 "   SET state = 'held',"
					 "       attempts = r.attempts OPERATOR(pg_catalog.-) 1,"
					 "       first_sent_at = NULL,"
					 "       held_reason = COALESCE(t.reason, r.held_reason),"
					 "       next_attempt_at = t.until,"
					 QUEUE_CLAIM_ENDS
					 "  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
					 "                  pg_catalog.unnest($3), pg_catalog.unnest($4))"
					 "       AS t(id, token, reason, until)"
					 " WHERE r.id OPERATOR(pg_catalog.=) t.id"
					 "   AND r.state OPERATOR(pg_catalog.=) 'sending'"
					 "   AND r.claim_token OPERATOR(pg_catalog.=) t.token",
					 &args, SPI_OK_UPDATE, NULL, NULL);
}

/*
 * queue_unhold_due
 *		Held requests whose window has ended (next_attempt_at passed) are
 *		queued again, to be checked against the new window.  Returns how many.
 */
int
queue_unhold_due(void)
{
	int			n;

	n = (int) store_run("UPDATE %1$s.telnyx_order_requests r"
						"   SET state = CASE WHEN r.attempts OPERATOR(pg_catalog.>) 0"
						"                    THEN 'retrying' ELSE 'queued' END,"
						"       next_attempt_at = pg_catalog.now(), updated_at = pg_catalog.now()"
						"  FROM %1$s.telnyx_live_requests e"
						" WHERE e.kind OPERATOR(pg_catalog.=) 'h'"
						"   AND e.due_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
						"   AND r.id OPERATOR(pg_catalog.=) e.request_id"
						"   AND r.state OPERATOR(pg_catalog.=) 'held'"
						"   AND r.next_attempt_at OPERATOR(pg_catalog.<=) pg_catalog.now()",
						NULL, SPI_OK_UPDATE, NULL, NULL);
	return n;
}

/*
 * queue_release_held
 *		Release (or, with cancel, cancel) the held requests that match
 *		every filter given: ids (NULL: any), requested_by (InvalidOid: any),
 *		held_batch (0: any); all must be set when no filter is.  A released
 *		request is queued again and sent whatever the limits say.  Returns
 *		how many.
 */
/*
 * The held requests that match queue_release_held's filters: $1 their ids,
 * $2 the role that queued them, $3 their batch (each NULL: any).  The FROM
 * and WHERE of an UPDATE of telnyx_order_requests r.
 */
#define QUEUE_HELD_MATCHING \
	"  FROM %1$s.telnyx_live_requests e" \
	" WHERE e.kind OPERATOR(pg_catalog.=) 'h'" \
	"   AND r.id OPERATOR(pg_catalog.=) e.request_id" \
	"   AND r.state OPERATOR(pg_catalog.=) 'held'" \
	"   AND ($1 IS NULL OR r.id OPERATOR(pg_catalog.=) ANY ($1))" \
	"   AND ($2 IS NULL OR r.requested_by OPERATOR(pg_catalog.=) $2)" \
	"   AND ($3 IS NULL OR r.held_batch OPERATOR(pg_catalog.=) $3)"

int64
queue_release_held(ArrayType *ids, Oid requested_by, int64 held_batch,
				   bool all, bool cancel)
{
	StoreArgs	args = {0};
	int64		n;

	if (ids == NULL && !OidIsValid(requested_by) && held_batch == 0 && !all)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("say which held requests: ids, requested_by or held_batch, or all => true")));
	if (ids != NULL && ARR_NDIM(ids) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"ids\" must be a one-dimensional array")));
	store_require_version(false);
	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot release or cancel held requests in a read-only transaction")));

	store_arg_or_null(&args, INT8ARRAYOID, PointerGetDatum(ids), ids == NULL);
	store_arg_or_null(&args, OIDOID, ObjectIdGetDatum(requested_by),
					  !OidIsValid(requested_by));
	store_arg_or_null(&args, INT8OID, Int64GetDatum(held_batch), held_batch == 0);
	store_arg(&args, OIDOID, ObjectIdGetDatum(GetUserId()));

	if (cancel)
		n = (int64) store_run("UPDATE %1$s.telnyx_order_requests r"
							  "   SET state = 'cancelled', updated_at = pg_catalog.now()"
							  QUEUE_HELD_MATCHING,
							  &args, SPI_OK_UPDATE, NULL, NULL);
	else
		n = (int64) store_run("UPDATE %1$s.telnyx_order_requests r"
							  "   SET state = CASE WHEN r.attempts OPERATOR(pg_catalog.>) 0"
							  "                    THEN 'retrying' ELSE 'queued' END,"
							  "       released_by = $4,"
							  "       next_attempt_at = pg_catalog.now(), updated_at = pg_catalog.now()"
							  QUEUE_HELD_MATCHING,
							  &args, SPI_OK_UPDATE, NULL, NULL);
	if (n > 0 && !cancel)
		wakeup_at_commit();
	return n;
}

/*---- The queue's index (telnyx_live_requests, telnyx_requests_by_order) ----*/


/* Are the texts a and b (either NULL) the same? */
static bool
queue_same_text(text *a, text *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/* Does the text datum d say s? */
static bool
queue_text_is(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);
	size_t		len = strlen(s);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/*
 * What the index tables hold of the request in slot: its kind ('q' queued
 * or retrying, 'u' unknown and free to be reconciled, 'a' in a sender's
 * hands, 'h' held, '\0' none: finished, replicated, dry run), when it is
 * due, and the order it names.
 */
static void
queue_index_row(Datum *values, bool *isnull, QueueIndexRow *row)
{
	Datum		state = values[1];
	bool		claimed = !isnull[3];

	row->id = DatumGetInt64(values[0]);
	row->state = DatumGetTextPP(state);
	row->due = DatumGetTimestampTz(values[2]);
	row->order_id = isnull[4] ? NULL : DatumGetTextPP(values[4]);

	if (queue_text_is(state, "queued") || queue_text_is(state, "retrying"))
		row->kind = 'q';
	else if (queue_text_is(state, "unknown"))
		row->kind = claimed ? 'a' : 'u';
	else if (queue_text_is(state, "sending"))
		row->kind = 'a';
	else if (queue_text_is(state, "held"))
		row->kind = 'h';
	else
		row->kind = '\0';
}

/* queue_index_row of the request in slot (attnums: its columns). */
static void
queue_slot_row(TupleTableSlot *slot, const int *attnums, QueueIndexRow *row)
{
	Datum		values[QUEUE_INDEX_COLUMNS];
	bool		isnull[QUEUE_INDEX_COLUMNS];
	int			i;

	for (i = 0; i < QUEUE_INDEX_COLUMNS; i++)
		values[i] = slot_getattr(slot, attnums[i], &isnull[i]);
	queue_index_row(values, isnull, row);
}

/* An empty chunk, kept for the next statement. */
static QueueIndexChanges *
queue_index_start(void)
{
	QueueIndexChanges *changes = queue_index_changes;

	/* the trigger's own writes never fire it again: never two at once */
	if (changes == NULL)
	{
		changes = MemoryContextAlloc(TopMemoryContext, sizeof(QueueIndexChanges));
		changes->cxt = AllocSetContextCreate(TopMemoryContext,
											 "telnyx_orders queue index",
											 ALLOCSET_DEFAULT_SIZES);
		queue_index_changes = changes;
	}
	changes->nlive = changes->ngone = changes->nlinks = changes->nunlinks = 0;
	changes->inserted = changes->state_changed = changes->held = false;
	MemoryContextReset(changes->cxt);
	return changes;
}

/*
 * Rebuild the index tables from every request, in the transaction of
 * telnyx_resume_queue(): a restore that loaded telnyx_order_requests with
 * its triggers disabled, or a subscriber whose requests arrived row by row
 * (the apply fires no statement trigger), left them short.
 */
static void
queue_index_rebuild(const char *schema)
{
	QueueIndexChanges *changes = queue_index_start();
	Portal		portal;

	changes->schema = schema;
	queue_index_clear(schema);
	portal = SPI_cursor_open_with_args(NULL,
									   psprintf("SELECT r.id, r.state, r.next_attempt_at,"
												"       r.claimed_by_pid, r.order_id"
												"  FROM %s.telnyx_order_requests r",
												quote_identifier(schema)),
									   0, NULL, NULL, NULL, false, 0);
	for (;;)
	{
		/* the fetched rows: a chunk written meanwhile resets SPI_tuptable */
		SPITupleTable *fetched;
		uint64		nfetched;
		uint64		i;

		SPI_cursor_fetch(portal, true, QUEUE_INDEX_CHUNK);
		fetched = SPI_tuptable;
		nfetched = SPI_processed;
		if (nfetched == 0)
			break;
		for (i = 0; i < nfetched; i++)
		{
			Datum		values[QUEUE_INDEX_COLUMNS];
			bool		isnull[QUEUE_INDEX_COLUMNS];
			QueueIndexRow row;

			heap_deform_tuple(fetched->vals[i], fetched->tupdesc, values, isnull);
			queue_index_row(values, isnull, &row);
			queue_index_change(changes, NULL, &row);
		}
		SPI_freetuptable(fetched);
	}
	SPI_cursor_close(portal);
	queue_index_flush(changes);
}

/*
 * Empty both index tables (not by TRUNCATE: the statement that fires the
 * trigger may be truncating them too).
 */
static void
queue_index_clear(const char *schema)
{
	store_exec(schema, "DELETE FROM %1$s.telnyx_live_requests",
			   NULL, SPI_OK_DELETE);
	store_exec(schema, "DELETE FROM %1$s.telnyx_requests_by_order",
			   NULL, SPI_OK_DELETE);
}

/* Write what changes holds, and start an empty chunk. */
static void
queue_index_flush(QueueIndexChanges *changes)
{
	StoreArgs	gone = {0};
	StoreArgs	live = {0};
	StoreArgs	unlinks = {0};
	StoreArgs	links = {0};
	MemoryContext prev;

	/* every array first, in the chunk's context (SPI switches contexts) */
	prev = MemoryContextSwitchTo(changes->cxt);
	store_arg(&gone, INT8ARRAYOID, store_int8_array(changes->gone_ids, changes->ngone));
	store_arg(&live, INT8ARRAYOID, store_int8_array(changes->live_ids, changes->nlive));
	store_arg(&live, CHARARRAYOID,
			  PointerGetDatum(construct_array(changes->live_kinds, changes->nlive,
											  CHAROID, 1, true, TYPALIGN_CHAR)));
	store_arg(&live, TIMESTAMPTZARRAYOID,
			  PointerGetDatum(construct_array(changes->live_due, changes->nlive,
											  TIMESTAMPTZOID, sizeof(TimestampTz),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)));
	store_arg(&unlinks, TEXTARRAYOID,
			  PointerGetDatum(construct_array(changes->unlink_orders, changes->nunlinks,
											  TEXTOID, -1, false, TYPALIGN_INT)));
	store_arg(&unlinks, INT8ARRAYOID,
			  store_int8_array(changes->unlink_ids, changes->nunlinks));
	store_arg(&links, TEXTARRAYOID,
			  PointerGetDatum(construct_array(changes->link_orders, changes->nlinks,
											  TEXTOID, -1, false, TYPALIGN_INT)));
	store_arg(&links, INT8ARRAYOID, store_int8_array(changes->link_ids, changes->nlinks));
	MemoryContextSwitchTo(prev);

	if (changes->ngone > 0)
		store_exec(changes->schema,
				   "DELETE FROM %1$s.telnyx_live_requests e"
				   " WHERE e.request_id OPERATOR(pg_catalog.=) ANY ($1)",
				   &gone, SPI_OK_DELETE);
	/* a request just inserted has no live row yet: no conflict to look for */
	if (changes->nlive > 0 && changes->inserted)
		store_exec(changes->schema,
				   "INSERT INTO %1$s.telnyx_live_requests (request_id, kind, due_at)"
				   " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
				   "                          pg_catalog.unnest($3))",
				   &live, SPI_OK_INSERT);
	else if (changes->nlive > 0)
		store_exec(changes->schema,
				   "INSERT INTO %1$s.telnyx_live_requests AS e (request_id, kind, due_at)"
				   " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
				   "                          pg_catalog.unnest($3))"
				   " ON CONFLICT (request_id) DO UPDATE"
				   " SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at",
				   &live, SPI_OK_INSERT);
	if (changes->nunlinks > 0)
		store_exec(changes->schema,
				   "DELETE FROM %1$s.telnyx_requests_by_order l"
				   " USING ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))"
				   "       AS t(order_id, request_id)"
				   " WHERE l.order_id OPERATOR(pg_catalog.=) t.order_id"
				   "   AND l.request_id OPERATOR(pg_catalog.=) t.request_id",
				   &unlinks, SPI_OK_DELETE);
	if (changes->nlinks > 0)
		store_exec(changes->schema,
				   "INSERT INTO %1$s.telnyx_requests_by_order (order_id, request_id)"
				   " SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))",
				   &links, SPI_OK_INSERT);
	changes->nlive = changes->ngone = changes->nlinks = changes->nunlinks = 0;
	MemoryContextReset(changes->cxt);
}

/*
 * What a request's change from old to new (either NULL: inserted, deleted)
 * changes in the index tables.
 */
static void
queue_index_change(QueueIndexChanges *changes, const QueueIndexRow *old,
				   const QueueIndexRow *new)
{
	const QueueIndexRow *row = new ? new : old;
	bool		same_order;

	if (changes->nlive == QUEUE_INDEX_CHUNK || changes->ngone == QUEUE_INDEX_CHUNK ||
		changes->nlinks == QUEUE_INDEX_CHUNK || changes->nunlinks == QUEUE_INDEX_CHUNK)
		queue_index_flush(changes);

	if (new != NULL && new->kind != '\0')
	{
		if (old == NULL || old->kind != new->kind || old->due != new->due)
		{
			changes->live_ids[changes->nlive] = Int64GetDatum(new->id);
			changes->live_kinds[changes->nlive] = CharGetDatum(new->kind);
			changes->live_due[changes->nlive] = TimestampTzGetDatum(new->due);
			changes->nlive++;
		}
	}
	else if (old != NULL && old->kind != '\0')
		changes->gone_ids[changes->ngone++] = Int64GetDatum(old->id);

	if (old != NULL && new != NULL && !queue_same_text(old->state, new->state))
	{
		changes->state_changed = true;
		changes->held |= new->kind == 'h';
	}

	same_order = queue_same_text(old ? old->order_id : NULL,
								 new ? new->order_id : NULL);
	if (same_order)
		return;
	if (old != NULL && old->order_id != NULL)
	{
		MemoryContext prev = MemoryContextSwitchTo(changes->cxt);

		changes->unlink_orders[changes->nunlinks] =
			PointerGetDatum(DatumGetTextPCopy(PointerGetDatum(old->order_id)));
		changes->unlink_ids[changes->nunlinks++] = Int64GetDatum(row->id);
		MemoryContextSwitchTo(prev);
	}
	if (new != NULL && new->order_id != NULL)
	{
		MemoryContext prev = MemoryContextSwitchTo(changes->cxt);

		changes->link_orders[changes->nlinks] =
			PointerGetDatum(DatumGetTextPCopy(PointerGetDatum(new->order_id)));
		changes->link_ids[changes->nlinks++] = Int64GetDatum(row->id);
		MemoryContextSwitchTo(prev);
	}
}

/* A slot reading the transition table ts from its start. */
static TupleTableSlot *
queue_index_reader(Tuplestorestate *ts, TupleDesc desc, int *readptr)
{
	*readptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, *readptr);
	tuplestore_rescan(ts);
	return MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
}

/* The next row of ts (read through readptr) into slot; false at the end. */
static bool
queue_index_next(Tuplestorestate *ts, int readptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(ts, readptr);
	return tuplestore_gettupleslot(ts, true, false, slot);
}

/*
 * How trigger tgname of the open relation rel fires (pg_trigger.tgenabled),
 * or '\0' if rel has no such trigger.
 */
static char
queue_trigger_fires(Relation rel, const char *tgname)
{
	char		mode = '\0';
	int			k;

	for (k = 0; rel->trigdesc != NULL && k < rel->trigdesc->numtriggers; k++)
		if (strcmp(rel->trigdesc->triggers[k].tgname, tgname) == 0)
			mode = rel->trigdesc->triggers[k].tgenabled;
	return mode;
}

/* The oid of table relname of the extension's schema. */
static Oid
queue_table_oid(const char *relname)
{
	Oid			relid = get_relname_relid(relname, store_namespace());

	if (!OidIsValid(relid))
		elog(ERROR, "could not find table \"%s\"", relname);
	return relid;
}

/*
 * queue_index_off
 *		The name of a trigger that keeps the queue's index tables and does
 *		not fire in every session (disabled, missing, or enabled for
 *		origin or replica sessions only, as ENABLE TRIGGER ALL leaves it
 *		after a data-only restore); NULL when every one fires always.  A
 *		sender sends nothing meanwhile: a request queued by a session the
 *		trigger skips would be missing from telnyx_live_requests.
 */
const char *
queue_index_off(void)
{
	Relation	rel = table_open(queue_table_oid("telnyx_order_requests"), AccessShareLock);
	const char *off = NULL;
	int			i;

	for (i = 0; i < lengthof(queue_trigger_modes) && off == NULL; i++)
		if (queue_trigger_modes[i].mode == TRIGGER_FIRES_ALWAYS &&
			queue_trigger_fires(rel, queue_trigger_modes[i].trigger) != TRIGGER_FIRES_ALWAYS)
			off = queue_trigger_modes[i].trigger;
	table_close(rel, AccessShareLock);
	return off;
}

/*
 * queue_index_repair
 *		Rebuild the queue's index tables, once the triggers that keep them
 *		fire again after they were seen off; no request changes meanwhile.
 *		Returns false, having done nothing, when a transaction writing
 *		requests is open (the lock is not waited for: waiting would hold up
 *		every enqueue behind it).
 */
bool
queue_index_repair(void)
{
	StoreScope	scope;
	char	   *schema;

	if (!queue_lock_requests())
		return false;
	schema = store_begin(&scope);
	queue_index_rebuild(schema);
	store_end(&scope);
	return true;
}

/*
 * Take SHARE ROW EXCLUSIVE on telnyx_order_requests, until the end of the
 * transaction, if no other transaction writes requests; false if one does.
 */
static bool
queue_lock_requests(void)
{
	return ConditionalLockRelationOid(queue_table_oid("telnyx_order_requests"),
									  ShareRowExclusiveLock);
}

/*
 * queue_index_changed
 *		The statement trigger of telnyx_order_requests (trigdata): what the
 *		statement inserted, updated, deleted or truncated is carried into
 *		telnyx_live_requests (the requests a sender still acts on, by kind
 *		and due time) and telnyx_requests_by_order (the requests that name
 *		an order), in the same transaction, so that they never disagree
 *		with the table.  An update that changes neither (a lease extended,
 *		a mark) writes nothing.
 */
void
queue_index_changed(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Tuplestorestate *olds = trigdata->tg_oldtable;
	Tuplestorestate *news = trigdata->tg_newtable;
	static const char *const columns[QUEUE_INDEX_COLUMNS] = {"id", "state",
	"next_attempt_at", "claimed_by_pid", "order_id"};
	int			attnums[QUEUE_INDEX_COLUMNS];
	StoreScope	scope;
	QueueIndexChanges *changes;
	TupleTableSlot *oldslot = NULL;
	TupleTableSlot *newslot = NULL;
	int			oldptr = 0;
	int			newptr = 0;
	int			i;

	if (strcmp(RelationGetRelationName(rel), "telnyx_order_requests") != 0 ||
		RelationGetNamespace(rel) != store_namespace() ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("telnyx_order_requests_changed must be fired AFTER each statement on telnyx_order_requests")));

	changes = queue_index_start();
	changes->schema = store_begin(&scope);
	changes->inserted = TRIGGER_FIRED_BY_INSERT(trigdata->tg_event);
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		queue_index_clear(changes->schema);
		store_end(&scope);
		return;
	}
	if ((olds == NULL && news == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && (olds == NULL || news == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("telnyx_order_requests_changed needs the statement's transition tables")));

	for (i = 0; i < lengthof(columns); i++)
	{
		attnums[i] = SPI_fnumber(desc, columns[i]);
		if (attnums[i] <= 0)
			elog(ERROR, "telnyx_order_requests has no column \"%s\"", columns[i]);
	}
	if (olds != NULL)
		oldslot = queue_index_reader(olds, desc, &oldptr);
	if (news != NULL)
		newslot = queue_index_reader(news, desc, &newptr);

	for (;;)
	{
		QueueIndexRow old;
		QueueIndexRow new;
		bool		have_old = olds != NULL && queue_index_next(olds, oldptr, oldslot);
		bool		have_new = news != NULL && queue_index_next(news, newptr, newslot);

		if (!have_old && !have_new)
			break;
		/* an update's old and new rows come in pairs, in the same order */
		if (olds != NULL && news != NULL && have_old != have_new)
			elog(ERROR, "the transition tables of telnyx_order_requests differ in length");
		if (have_old)
			queue_slot_row(oldslot, attnums, &old);
		if (have_new)
			queue_slot_row(newslot, attnums, &new);
		if (have_old && have_new && old.id != new.id)
			elog(ERROR, "the transition tables of telnyx_order_requests are not in step");
		queue_index_change(changes, have_old ? &old : NULL, have_new ? &new : NULL);
	}
	queue_index_flush(changes);

	/*
	 * A change of state is announced, without a payload: any role can
	 * LISTEN, and a payload would show it requests it may not read.  (An
	 * enqueue is not announced: it must work in a prepared transaction,
	 * where NOTIFY cannot be used.)
	 */
	if (changes->state_changed && SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
	{
		Async_Notify("telnyx_orders", "");
		if (changes->held)
			Async_Notify("telnyx_orders_held", "");
	}

	if (oldslot != NULL)
		ExecDropSingleTupleTableSlot(oldslot);
	if (newslot != NULL)
		ExecDropSingleTupleTableSlot(newslot);
	store_end(&scope);
}
