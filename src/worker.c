/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The worker: the background process that sends one database's queue;
 *	  and the same pass run by CALL telnyx_process_queue().  Either is a
 *	  sender (the word for whatever claims and sends requests).
 *
 * The launcher (launcher.c) keeps one worker running for each database it
 * serves.  A worker connects to its database and loops: when the extension is
 * there, it recovers requests left "sending" by a sender that is gone,
 * reconciles unknown outcomes, then claims due requests and sends up to
 * telnyx.worker_concurrency of them at once.  It holds no transaction
 * while HTTP is in flight (queue.c explains the transactions).  It sleeps
 * on its latch, which a committing transaction that enqueued sets (through
 * the slot in shared memory), and wakes when the next retry is due, or
 * after telnyx.worker_naptime at most.  In between it wakes each second
 * only to see whether its database is wanted, so an idle worker uses no
 * measurable CPU.
 *
 * A 429 holds back the whole worker until the wait Telnyx asked for is
 * over.  A refused key (401, 403), no key, or no order endpoint at the base
 * URL (404 on the create) leaves requests queued: the worker logs one
 * error and sends nothing more until the configuration is reloaded.  A
 * database restored or cloned from elsewhere sends nothing until
 * telnyx_resume_queue() (queue.c).  Each outcome is recorded in a
 * subtransaction of its own, with a short lock_timeout in every
 * transaction, so one outcome that cannot be recorded, or a lock a user
 * holds, never takes the others with it or stalls the queue.  An error in
 * a pass is logged, the worker's own claims are given up (their outcome is
 * unknown), and it goes on after a pause: it keeps, across passes, what a
 * restart would lose (a sync's place in a long list, the error it logged
 * once, its pause).  Every telnyx.sync_interval it
 * reads the list of orders, a page per pass, and records any order of
 * its database the tables lack (reconcile.c says which are its own).  It
 * exits when someone wants its database to itself (DROP DATABASE), so
 * that it never holds that up.
 *
 * A worker runs as the bootstrap superuser, but every statement it runs
 * goes through store.c and queue.c, as the extension's owner with a pinned
 * search_path: nothing a user created is ever resolved by them.
 *
 * CALL telnyx_process_queue() runs one pass of the same code in the
 * caller's session, as the caller: a procedure may commit between
 * claiming, sending and recording.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "api.h"
#include "http.h"
#include "queue.h"
#include "reconcile.h"
#include "refresh.h"
#include "store.h"
#include "apikey.h"
#include "errcodes.h"
#include "wakeup.h"
#include "spend.h"
#include "worker.h"

/*
 * The longest a worker's statement waits for a lock, and how long it waits
 * before it looks for a deadlock (sooner than a user's session does).
 */
#define WORKER_LOCK_TIMEOUT "1s"
#define WORKER_DEADLOCK_TIMEOUT "20ms"

/*
 * Answers are recorded together: at most this many in one transaction, and
 * at most this long after the first of them arrived.
 */
#define WORKER_RECORD_BATCH 256

/* The sender claims this many times its concurrency at once. */
#define WORKER_CLAIM_AHEAD 4
#define WORKER_RECORD_DELAY_MS 5

/* Finished requests deleted per transaction, and per purge. */
#define WORKER_PURGE_BATCH 1000
#define WORKER_PURGE_MAX 10000
#define WORKER_PURGE_INTERVAL_MS 60000

/* The leases of requests claimed ahead are extended this often. */
#define WORKER_LEASE_EXTEND_MS 10000

/* Unknown requests reconciled per pass. */
#define WORKER_RECONCILE_BATCH 100

/*---- Local types ----*/

/* A sender's own state, across passes. */
typedef struct SenderState
{
	const char *paused;			/* why it waits for a reload or a new key
								 * (no key, key refused, no such endpoint, a
								 * key in pg_db_role_setting); NULL if it
								 * does not */
	uint64		paused_key;		/* telnyx_api_key_serial() when it paused */
	bool		is_pass;		/* telnyx_process_queue's one pass */
	bool		elsewhere;		/* the database was restored or cloned: its
								 * queue waits for telnyx_resume_queue() */
	char		skew[128];		/* why the database's SQL version does not
								 * match the library's; "" if it does */
	char		key_problem[WAKEUP_REASON_LEN];	/* why no key may be sent
												 * (apikey.c), read each
												 * pass; "" if one may */
	TimestampTz not_before;		/* rate limited until then */
	TimestampTz next_sync;		/* when the periodic sync is due */
	ApiListWalk *sync_walk;		/* the sync's walk over the list, in
								 * TopMemoryContext; NULL when it is not
								 * under way */
	int			sync_found;		/* orders it recorded so far */
	bool		release_pending;	/* give up own claims after an error */
	bool		index_was_off;	/* a trigger that keeps the queue's index
								 * tables was seen off: rebuild them once
								 * it fires again */
	TimestampTz next_purge;		/* when finished requests are next purged */
} SenderState;

/* What one step run in a subtransaction works on. */
typedef struct RecordStep
{
	QueueRequest *req;
	TelnyxResult *result;
	TelnyxOrder *order;			/* an order found by the sync */
	const char *request_key;	/* the key of the call it answers, or NULL */
	RefreshItem *item;			/* a refreshed order or number order */
	double		wait_ms;
	QueueOutcome outcome;
	const char *why;			/* the error of a failed step */
	List	   *reqs;			/* created orders recorded at once: their */
	List	   *results;		/* requests and results */
	bool		recorded;		/* recorded with others */
} RecordStep;

typedef void (*WorkerStepFn) (RecordStep *step);

/* A step and its function, run in a subtransaction of its own. */
typedef struct WorkerTry
{
	WorkerStepFn fn;
	RecordStep *step;
} WorkerTry;

/* What a step records, for the message said when it fails. */
typedef enum WorkerStepKind
{
	STEP_CREATED_AT_ONCE,		/* the created orders of a claim, together */
	STEP_OUTCOME,				/* one request's outcome */
	STEP_RECONCILE,				/* an unknown request, looked up */
	STEP_REFRESHED,				/* an order fetched again */
	STEP_REFRESH_FAILED,		/* an order that could not be */
	STEP_FOUND					/* an order the sync found */
} WorkerStepKind;

/* A claim's requests, and the memory they live in until all are recorded. */
typedef struct ClaimBatch
{
	MemoryContext cxt;
	int			left;			/* requests not yet recorded */
} ClaimBatch;

/* A request in flight. */
typedef struct InFlight
{
	QueueRequest *req;
	HttpRequest http;
	ClaimBatch *batch;
} InFlight;

/*---- GUC variables ----*/

static int	telnyx_sync_interval_s = 300;
static int	telnyx_worker_naptime_ms = 10000;
static int	telnyx_worker_concurrency = 16;

/*---- Local variables ----*/

/* the worker's state; static, so that it survives a longjmp intact */
static SenderState worker_state;

/* Is worker_pass running inside CALL telnyx_process_queue()? */
static bool worker_in_procedure = false;
static bool worker_failed_last = false;

/*
 * The message of the error that ended the last pass, "" if it ended
 * well: the same error again is not logged again, and the sender then
 * rests its naptime rather than a second.
 */
static char worker_last_error[WAKEUP_REASON_LEN];
static bool worker_failed_again = false;

/* The database's name, for messages given outside a transaction. */
static char worker_dbname[NAMEDATALEN];

/* Why a sender under telnyx.dry_run sends nothing (set for its database). */
static const char worker_index_off[] = "a trigger that keeps the queue's index tables does not fire in every session: ALTER TABLE telnyx_order_requests ENABLE ALWAYS TRIGGER ..., or SELECT telnyx_resume_queue()";
static const char worker_index_wait[] = "the queue's index tables are rebuilt once no transaction writes order requests";
static const char worker_dry_run[] = "telnyx.dry_run is on for this database's worker: nothing is sent (RESET it, then SELECT telnyx_restart_workers())";

/*---- Function declarations ----*/

PGDLLEXPORT void telnyx_worker_main(Datum arg);

static int	worker_pass(SenderState *state, int max_requests);
static int	worker_stream(SenderState *state, int max);
static List *worker_claim(int want, QueueCursor *after, int *got);
static void worker_unclaim(List *ready);
static List *worker_extend_leases(List *ready);
static void worker_claims_of(List *ready, int64 **ids, int64 **tokens);
static int64 worker_lease_ms(void);
static void inflight_release(InFlight *f);
static void worker_record(SenderState *state, HttpDone *done, int n);
static int	worker_reconcile(SenderState *state);
static bool worker_key_ready(SenderState *state);
static bool worker_key_usable(SenderState *state);
static void worker_key_context(void *arg);
static MemoryContext worker_begin(void);
static void worker_commit(MemoryContext outer);
static bool worker_try(WorkerStepFn fn, RecordStep *step, WorkerStepKind kind);
static bool worker_try_at(WorkerStepFn fn, RecordStep *step, WorkerStepKind kind,
						  int elevel);
static int	worker_step_detail(const RecordStep *step, const char *message);
static void worker_try_step(void *arg);
static void step_record(RecordStep *step);
static void step_record_unstored(RecordStep *step);
static void step_record_created(RecordStep *step);
static void step_resolve(RecordStep *step);
static void step_retry_later(RecordStep *step);
static void step_store_found(RecordStep *step);
static void step_record_refreshed(RecordStep *step);
static int	worker_refresh(void);
static void worker_purge(SenderState *state);
static void worker_report(SenderState *state, int sent);
static void worker_sync(SenderState *state);
static void worker_sync_page(List *orders, List *unparsed, void *arg);
static bool worker_at_home(SenderState *state);
static bool worker_index_kept(SenderState *state);
static long worker_rest_ms(SenderState *state);
static int	worker_min_timeout(int a, int b);

/*
 * worker_init
 *		From _PG_init: the workers' settings.
 */
void
worker_init(void)
{
	DefineCustomIntVariable("telnyx.sync_interval",
							"Time between two reads of the list of orders by the background worker, to record any the tables lack.",
							"Each sync costs one request per 250 orders in the account; 0 turns it off.",
							&telnyx_sync_interval_s,
							300, 0, 7 * 24 * 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.worker_naptime",
							"Longest time the background worker sleeps between looks at the queue.",
							NULL,
							&telnyx_worker_naptime_ms,
							10000, 10, INT_MAX,
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

}

/*
 * telnyx_worker_main
 *		Send the queue of one database until told to stop.
 */
void
telnyx_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	sigjmp_buf	local_sigjmp_buf;
	MemoryContext passcxt;
	TimestampTz next_pass = 0;	/* a pass is due from then on */
	uint32		generation;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("telnyx_orders worker");
	store_pin_settings();
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));
	if (!wakeup_register_worker(generation))
		proc_exit(0);			/* a newer launcher started its own */

	passcxt = AllocSetContextCreate(TopMemoryContext, "telnyx_orders pass",
									ALLOCSET_DEFAULT_SIZES);

	/* an error in a pass: log it, give up our claims, pause, go on */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		ErrorData  *edata;

		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		worker_failed_again = edata->message != NULL &&
			strcmp(edata->message, worker_last_error) == 0;
		if (!worker_failed_again)
			EmitErrorReport();
		strlcpy(worker_last_error, edata->message ? edata->message : "",
				sizeof(worker_last_error));
		FreeErrorData(edata);
		AbortOutOfAnyTransaction();
		FlushErrorState();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(passcxt);
		worker_state.release_pending = true;
		worker_failed_last = true;
		RESUME_INTERRUPTS();
	}
	PG_exception_stack = &local_sigjmp_buf;

	for (;;)
	{
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a fixed key, perhaps: try again */
			worker_state.paused = NULL;
		}

		if (!wakeup_worker_current())
		{
			ereport(LOG,
					(errmsg("telnyx_orders worker stops: a new launcher has started its own worker")));
			proc_exit(0);
		}

		if (wakeup_database_wanted())
		{
			ereport(LOG,
					(errmsg("telnyx_orders worker stops: its database is wanted by another session")));
			proc_exit(0);
		}

		if (worker_failed_last)
		{
			/*
			 * a second's rest after an error, whatever is due; the naptime
			 * after the same error again
			 */
			worker_failed_last = false;
			next_pass = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													worker_failed_again
													? Max(telnyx_worker_naptime_ms, 1000)
													: 1000);
		}
		else if (GetCurrentTimestamp() >= next_pass)
		{
			int			done;

			MemoryContextSwitchTo(passcxt);
			done = worker_pass(&worker_state, -1);
			worker_last_error[0] = '\0';
			MemoryContextSwitchTo(TopMemoryContext);
			MemoryContextReset(passcxt);
			if (done > 0 || worker_state.sync_walk != NULL)
				continue;		/* there may be more */
			next_pass = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													worker_rest_ms(&worker_state));
		}

		/*
		 * Sleep until the next pass is due or a commit that enqueued sets
		 * the latch; wake each second only to see whether the database is
		 * wanted (DROP DATABASE), which costs one small transaction.
		 */
		pgstat_report_stat(true);
		pgstat_report_activity(STATE_IDLE, NULL);
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   Max(Min(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
															   next_pass), 1000), 1),
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (rc & WL_LATCH_SET)
			next_pass = 0;		/* woken: a commit, a reload, a resume */
	}
}

/*
 * How long a sender may rest after a pass that found nothing to do: until
 * telnyx.worker_naptime at most, the next request due, the end of a rate
 * limit, or the next periodic sync.  A paused sender, or one whose
 * database was restored elsewhere, rests its naptime (a reload or
 * telnyx_resume_queue() wakes it).
 */
static long
worker_rest_ms(SenderState *state)
{
	MemoryContext outer;
	TimestampTz now = GetCurrentTimestamp();
	long		rest = telnyx_worker_naptime_ms;
	double		due;
	double		refresh;

	if (state->paused || state->elsewhere || state->skew[0] != '\0')
		return rest;
	/* the key file is read again each second: fixed, it is used at once */
	if (state->key_problem[0] != '\0')
		return Min(rest, 1000);
	if (state->not_before > now)
		return TimestampDifferenceMilliseconds(now, state->not_before) + 1;

	outer = worker_begin();
	if (queue_ready())
	{
		due = queue_next_due_ms();
		refresh = store_next_refresh_ms();
	}
	else
		due = refresh = -1;
	worker_commit(outer);
	if (due >= 0 && due < rest)
		rest = (long) due + 1;
	if (refresh >= 0 && refresh < rest)
		rest = (long) refresh + 1;
	if (telnyx_sync_interval_s > 0)
		rest = Min(rest, TimestampDifferenceMilliseconds(now, state->next_sync) + 1);
	return rest;
}

/*
 * One pass: recover, reconcile, send.  max_requests < 0 means no limit.
 * Returns how many requests were handled, or -1 when the extension is not
 * in this database.
 */
static int
worker_pass(SenderState *state, int max_requests)
{
	MemoryContext outer;
	bool		ready;
	char	   *version;
	int			done = 0;

	outer = worker_begin();
	if (worker_dbname[0] == '\0')
	{
		char	   *name = get_database_name(MyDatabaseId);

		strlcpy(worker_dbname, name ? name : "?", sizeof(worker_dbname));
	}
	ready = queue_ready();
	version = ready ? store_require_version(true) : NULL;
	if (version != NULL && state->skew[0] == '\0')
		ereport(WARNING,
				(errmsg("telnyx_orders worker does not send for database \"%s\": its extension is at version %s, the library at %s",
						get_database_name(MyDatabaseId), version, TELNYX_ORDERS_VERSION),
				 errhint("Run \"ALTER EXTENSION telnyx_orders UPDATE\" in that database.")));
	if (version != NULL)
		snprintf(state->skew, sizeof(state->skew),
				 "the extension is at version %s, the library at %s: run ALTER EXTENSION telnyx_orders UPDATE",
				 version, TELNYX_ORDERS_VERSION);
	else
		state->skew[0] = '\0';
	worker_commit(outer);
	if (!ready)
		return -1;
	if (state->skew[0] != '\0')
	{
		worker_report(state, 0);
		return 0;
	}
	if (!worker_at_home(state))
		return 0;
	if (!worker_index_kept(state))
		return 0;

	/* under the dry run nothing is sent, not even a lookup */
	if (telnyx_dry_run)
	{
		if (state->is_pass)
			ereport(NOTICE,
					(errmsg("nothing was sent: telnyx.dry_run is on")));
		state->paused = worker_dry_run;
		worker_report(state, 0);
		return 0;
	}
	if (state->paused == worker_dry_run)
		state->paused = NULL;

	outer = worker_begin();
	if (state->release_pending)
		queue_release_own();
	state->release_pending = false;
	if (queue_recover_stale() > 0)
		ereport(LOG,
				(errmsg("telnyx_orders worker found order requests left \"sending\" by a sender that stopped; they will be reconciled")));
	/* held until a window's end that has come: checked again */
	(void) queue_unhold_due();
	worker_commit(outer);

	if (!state->is_pass)
		worker_purge(state);

	if (!worker_key_ready(state) || state->paused || max_requests == 0)
		return 0;

	if (!worker_key_usable(state))
		return 0;

	done += worker_reconcile(state);
	done += worker_stream(state, max_requests < 0 ? -1 : Max(max_requests - done, 0));

	if (!state->is_pass && !state->paused)
		done += worker_refresh();
	if (!state->is_pass && !state->paused && telnyx_sync_interval_s > 0)
		worker_sync(state);
	worker_report(state, 0);
	return done;
}

/* The reason a sender waits while a key sits in pg_db_role_setting. */
static const char key_in_settings[] = "a Telnyx API key is stored in pg_db_role_setting";

/*
 * May the sender send, as far as the key goes?  Not while a key sits in
 * pg_db_role_setting, where every role can read it: the sender waits,
 * says why once, and goes on once the key is removed.  A sender paused
 * for its key (none, or refused by Telnyx) tries again as soon as the key
 * read changes (rotated in the key file, by mv or in place), no reload
 * needed.  CALL telnyx_process_queue() hears the first as an error when
 * it sends.
 */
static bool
worker_key_ready(SenderState *state)
{
	MemoryContext outer;
	char	   *fix;

	if (state->is_pass)
		return true;
	outer = worker_begin();
	fix = telnyx_api_key_in_settings();
	if (fix != NULL && state->paused != key_in_settings)
		ereport(LOG,
				(errmsg("telnyx_orders worker: a Telnyx API key is stored in pg_db_role_setting"),
				 errdetail("Every role can read it there. Queued requests wait until it is removed."),
				 errhint("Remove it with %s. Then replace the key at Telnyx, since every role could read it, and put the new key in telnyx.api_key_file.",
						 fix)));
	worker_commit(outer);
	if (fix != NULL)
	{
		state->paused = key_in_settings;
		worker_report(state, 0);
		return false;
	}
	if (state->paused == key_in_settings)
		state->paused = NULL;
	if (state->paused != NULL)
	{
		ApiKeyProblem problem;

		(void) telnyx_api_key_get(&problem);
		if (telnyx_api_key_serial() != state->paused_key)
			state->paused = NULL;
	}
	return true;
}

/*
 * May a key be sent now?  Asked at each pass (the key file is read each
 * time): a problem (no key, a key file missing, unsafe or unreadable, a key
 * bound to another base URL) shows in telnyx_queue_status at once, is
 * logged once, with apikey.c's message and hint, the same a session gets,
 * and ends as soon as it is fixed, with no reload.  CALL
 * telnyx_process_queue() hears a problem as its error; with no key at all,
 * it handles nothing.
 */
static bool
worker_key_usable(SenderState *state)
{
	ApiKeyProblem problem;
	ErrorContextCallback context;

	if (telnyx_api_key_get(&problem) != NULL)
	{
		if (state->key_problem[0] != '\0')
			ereport(LOG,
					(errmsg("telnyx_orders worker sends the order queue of database \"%s\" again: the Telnyx API key can be used",
							worker_dbname)));
		state->key_problem[0] = '\0';
		return true;
	}
	if (state->is_pass && !problem.none)
		telnyx_api_key_report(&problem, ERROR);

	if (strcmp(state->key_problem, problem.reason) != 0)
	{
		context.callback = worker_key_context;
		context.arg = NULL;
		context.previous = error_context_stack;
		error_context_stack = &context;
		telnyx_api_key_report(&problem, LOG);
		error_context_stack = context.previous;
	}
	strlcpy(state->key_problem, problem.reason, sizeof(state->key_problem));
	worker_report(state, 0);
	return false;
}

/* Which queue waits for a key: the context of worker_key_usable's report. */
static void
worker_key_context(void *arg)
{
	errcontext("telnyx_orders worker of database \"%s\": queued requests wait",
			   worker_dbname);
}

/*
 * Once a minute, delete finished requests, order events and webhook
 * deliveries older than telnyx.request_retention (store_purge_history
 * says which are kept): a thousand per transaction, ten thousand at most
 * of each kind, so that a backlog is worked off without holding up
 * sending.
 */
static void
worker_purge(SenderState *state)
{
	MemoryContext outer;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz cutoff;
	int			total = 0;
	int			n;

	if (telnyx_request_retention_s <= 0 || now < state->next_purge)
		return;
	state->next_purge = TimestampTzPlusMilliseconds(now, WORKER_PURGE_INTERVAL_MS);
	cutoff = TimestampTzPlusMilliseconds(now, -(int64) telnyx_request_retention_s * 1000);
	pgstat_report_activity(STATE_RUNNING, "deleting finished order requests");
	do
	{
		outer = worker_begin();
		n = queue_purge(cutoff, WORKER_PURGE_BATCH);
		worker_commit(outer);
		total += n;
	} while (n == WORKER_PURGE_BATCH && total < WORKER_PURGE_MAX);
	if (total > 0)
		ereport(DEBUG1,
				(errmsg_internal("telnyx_orders worker deleted %d finished order requests", total)));

	/* events and webhook deliveries, by the same setting */
	pgstat_report_activity(STATE_RUNNING, "deleting old order events and webhook deliveries");
	total = 0;
	do
	{
		outer = worker_begin();
		n = store_purge_history(cutoff, WORKER_PURGE_BATCH);
		worker_commit(outer);
		total += n;
	} while (n >= WORKER_PURGE_BATCH && total < WORKER_PURGE_MAX);
	if (total > 0)
		ereport(DEBUG1,
				(errmsg_internal("telnyx_orders worker deleted %d order events and webhook deliveries", total)));
}

/*
 * Do the triggers that keep the queue's index tables fire in every
 * session?  While one does not, a request queued would be missing from
 * telnyx_live_requests: the sender sends nothing and says why (CALL
 * telnyx_process_queue() fails).  Once they fire again the worker rebuilds
 * the tables before it sends, as soon as no transaction writes requests.
 */
static bool
worker_index_kept(SenderState *state)
{
	MemoryContext outer;
	const char *off;
	bool		rebuilt = false;

	outer = worker_begin();
	off = queue_index_off();
	if (off == NULL && state->index_was_off)
		rebuilt = queue_index_repair();
	worker_commit(outer);
	if (off == NULL && (rebuilt || !state->index_was_off))
	{
		if (rebuilt)
			ereport(LOG,
					(errmsg("telnyx_orders worker rebuilt the queue's index tables of database \"%s\"",
							worker_dbname),
					 errdetail("A trigger that keeps them did not fire in every session for a while.")));
		state->index_was_off = false;
		if (state->paused == worker_index_off || state->paused == worker_index_wait)
			state->paused = NULL;
		return true;
	}
	if (off == NULL)
	{
		/* a transaction writes requests: the rebuild waits for the next pass */
		state->paused = worker_index_wait;
		worker_report(state, 0);
		return false;
	}
	if (state->is_pass)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the order queue of database \"%s\" is paused: trigger \"%s\" of telnyx_order_requests does not fire in every session",
						worker_dbname, off),
				 errdetail("It keeps the queue's index tables; it must be enabled ALWAYS."),
				 errhint("Run \"ALTER TABLE telnyx_order_requests ENABLE ALWAYS TRIGGER %s\", then \"SELECT telnyx_resume_queue()\".",
						 off)));
	if (!state->index_was_off)
		ereport(WARNING,
				(errmsg("telnyx_orders worker pauses the order queue of database \"%s\": trigger \"%s\" of telnyx_order_requests does not fire in every session",
						worker_dbname, off),
				 errdetail("It keeps the queue's index tables (it must be enabled ALWAYS); a request queued while it does not would not be sent."),
				 errhint("Run \"ALTER TABLE telnyx_order_requests ENABLE ALWAYS TRIGGER %s\", or \"SELECT telnyx_resume_queue()\", which sets it so and rebuilds the tables.",
						 off)));
	state->index_was_off = true;
	state->paused = worker_index_off;
	worker_report(state, 0);
	return false;
}

/*
 * Is this database the queue's home?  A restored or cloned database sends
 * nothing (a WARNING once for the worker, an error for
 * telnyx_process_queue) until telnyx_resume_queue() is run in it.
 */
static bool
worker_at_home(SenderState *state)
{
	MemoryContext outer;
	QueueHome	home;
	char	   *dbname;

	outer = worker_begin();
	home = queue_home();
	dbname = get_database_name(MyDatabaseId);
	worker_commit(outer);
	if (home != QUEUE_HOME_ELSEWHERE)
	{
		state->elsewhere = false;
		return true;
	}
	if (state->is_pass)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the order queue of database \"%s\" is paused", dbname),
				 errdetail("The queue was created in another cluster or database: this one was restored or cloned from it."),
				 errhint("Once sure that the original no longer sends, run \"SELECT telnyx_resume_queue()\" in this database.")));
	if (!state->elsewhere)
		ereport(WARNING,
				(errmsg("telnyx_orders worker pauses the order queue of database \"%s\"", dbname),
				 errdetail("The queue was created in another cluster or database: this one was restored or cloned from it."),
				 errhint("Once sure that the original no longer sends, run \"SELECT telnyx_resume_queue()\" in this database.")));
	state->elsewhere = true;
	worker_report(state, 0);
	return false;
}

/*
 * Send the queue as a stream: keep telnyx.worker_concurrency requests in
 * flight, claiming as slots free (not batch by batch, which would wait for
 * the slowest of each batch), and record each outcome as it arrives.  Ends
 * when nothing is in flight and nothing more can be claimed (the queue is
 * empty, max requests were claimed, or the sender paused or must wait).
 * Returns how many requests were claimed.
 */
static int
worker_stream(SenderState *state, int max)
{
	int			capacity = Min(telnyx_worker_concurrency, HTTP_MAX_CONCURRENCY);
	HttpDone   *pending = palloc(sizeof(HttpDone) * WORKER_RECORD_BATCH);
	MemoryContext recordcxt;
	volatile int claimed = 0;
	volatile bool more = true;
	List	   *ready = NIL;	/* claimed, waiting for a slot */
	QueueCursor cursor;			/* where the next claim starts */
	int			npending = 0;
	TimestampTz record_by = 0;
	TimestampTz extend_at = 0;	/* when the leases of ready are extended */

	if (max == 0)
		return 0;
	queue_cursor_reset(&cursor);
	recordcxt = AllocSetContextCreate(CurrentMemoryContext, "telnyx_orders record",
									  ALLOCSET_DEFAULT_SIZES);
	http_stream_begin(capacity);
	PG_TRY();
	{
		for (;;)
		{
			int			timeout = -1;	/* until an answer or the latch */
			long		rate_wait_ms;
			bool		may_send = state->paused == NULL &&
				state->not_before <= GetCurrentTimestamp() &&
				wakeup_worker_current();
			TimestampTz now;
			MemoryContext old;

			/* a new budget or concurrency applies at once, not after the stream */
			if (!state->is_pass && ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
				state->paused = NULL;	/* a fixed key, perhaps: try again */
			}

			/* a commit that enqueued sets the latch: look again */
			if (!more && !state->is_pass && MyLatch->is_set)
			{
				ResetLatch(MyLatch);
				more = true;
			}

			/*
			 * Claim ahead, a few slots' worth at once (one statement for
			 * many rows), when a slot is free and nothing claimed waits.
			 */
			if (more && may_send && ready == NIL && http_stream_free() > 0)
			{
				int			want = WORKER_CLAIM_AHEAD * capacity;
				int			n;

				if (max >= 0)
					want = Min(want, max - claimed);
				/* n: claimed, those the spend guard held included */
				ready = worker_claim(want, &cursor, &n);
				claimed += n;
				more = n == want && (max < 0 || claimed < max);
				extend_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														WORKER_LEASE_EXTEND_MS);
			}
			else if (ready != NIL && GetCurrentTimestamp() >= extend_at)
			{
				ready = worker_extend_leases(ready);
				extend_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														WORKER_LEASE_EXTEND_MS);
			}
			/* as many as free slots and the account's request budget allow */
			rate_wait_ms = 0;
			if (may_send && ready != NIL && http_stream_free() > 0)
			{
				int			budget = http_stream_budget(Min(list_length(ready),
															http_stream_free()),
													   &rate_wait_ms);

				while (budget-- > 0)
				{
					InFlight   *f = (InFlight *) linitial(ready);

					ready = list_delete_first(ready);
					http_stream_add(&f->http, f);
				}
				if (rate_wait_ms > 0)
					timeout = (int) Min(rate_wait_ms, INT_MAX);
			}
			/* claimed ahead and waiting: their leases are extended in time */
			if (ready != NIL)
				timeout = worker_min_timeout(timeout,
											 (int) Min(store_ms_until(extend_at) + 1,
													   INT_MAX));
			if (http_stream_busy() == 0 && npending == 0)
			{
				if (ready == NIL || rate_wait_ms <= 0)
					break;
				/* nothing in flight: wait for the budget, then go on */
				if (WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							  Max(timeout, 0), PG_WAIT_EXTENSION) & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					/* a commit that enqueued, a new launcher, a reload */
					if (!state->is_pass)
						more = true;
				}
				CHECK_FOR_INTERRUPTS();
				continue;
			}

			/* answers are recorded together, a few milliseconds later */
			if (npending > 0)
				timeout = worker_min_timeout(timeout,
											 (int) store_ms_until(record_by));
			old = MemoryContextSwitchTo(recordcxt);
			if (http_stream_busy() > 0)
			{
				bool		woken;
				int			got = http_stream_wait(timeout, pending + npending,
												   WORKER_RECORD_BATCH - npending,
												   &woken);

				/* a commit that enqueued, a new launcher, a reload */
				if (woken && !state->is_pass)
					more = true;

				if (npending == 0 && got > 0)
					record_by = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															WORKER_RECORD_DELAY_MS);
				npending += got;
			}
			now = GetCurrentTimestamp();
			if (npending > 0 &&
				(npending == WORKER_RECORD_BATCH || now >= record_by ||
				 http_stream_busy() == 0))
			{
				worker_record(state, pending, npending);
				npending = 0;
				MemoryContextSwitchTo(old);
				MemoryContextReset(recordcxt);
			}
			else
				MemoryContextSwitchTo(old);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		http_stream_end();
	}
	PG_END_TRY();

	/* claimed but never sent (the sender paused or must wait): give back */
	if (ready != NIL)
		worker_unclaim(ready);
	MemoryContextDelete(recordcxt);
	pfree(pending);
	return claimed - list_length(ready);
}

/* The shorter of two timeouts in milliseconds, -1 standing for none. */
static int
worker_min_timeout(int a, int b)
{
	if (a < 0)
		return Max(b, 0);
	if (b < 0)
		return a;
	return Max(Min(a, b), 0);
}

/*
 * The requests claimed ahead wait for a slot or for the account's budget:
 * their leases are extended, so that none runs out while this sender is
 * alive; one whose claim is no longer this sender's (taken over) is
 * dropped from ready, never sent.  Returns the requests still ready.
 */
static List *
worker_extend_leases(List *ready)
{
	MemoryContext outer;
	int			n = list_length(ready);
	int64	   *ids;
	int64	   *tokens;
	bool	   *held = palloc(sizeof(bool) * n);
	List	   *kept = NIL;
	ListCell   *lc;

	worker_claims_of(ready, &ids, &tokens);
	outer = worker_begin();
	(void) queue_extend_lease(ids, tokens, held, n, worker_lease_ms());
	worker_commit(outer);
	foreach(lc, ready)
	{
		if (held[foreach_current_index(lc)])
			kept = lappend(kept, lfirst(lc));
		else
		{
			ereport(LOG,
					(errmsg("telnyx_orders worker does not send order request %lld: its claim was taken over",
							(long long) ((InFlight *) lfirst(lc))->req->id)));
			inflight_release((InFlight *) lfirst(lc));
		}
	}
	list_free(ready);
	pfree(ids);
	pfree(tokens);
	pfree(held);
	return kept;
}

/*
 * The lease of a claim for sending: a request claimed ahead waits for a
 * slot (at most WORKER_CLAIM_AHEAD rounds of requests, each at most
 * telnyx.timeout) or for the budget (the lease is then extended while it
 * waits), and then its own request must end within it.  (A dead sender's
 * claims end at once, lease or not.)
 */
static int64
worker_lease_ms(void)
{
	return (int64) telnyx_timeout_ms * (WORKER_CLAIM_AHEAD + 1) + QUEUE_LEASE_MARGIN_MS;
}

/* A request is done with: its claim's memory goes with the last of them. */
static void
inflight_release(InFlight *f)
{
	ClaimBatch *batch = f->batch;

	if (--batch->left == 0)
		MemoryContextDelete(batch->cxt);
}

/* The ids of the requests in ready (InFlight *), and their claims' tokens. */
static void
worker_claims_of(List *ready, int64 **ids, int64 **tokens)
{
	ListCell   *lc;

	*ids = palloc(sizeof(int64) * list_length(ready));
	*tokens = palloc(sizeof(int64) * list_length(ready));
	foreach(lc, ready)
	{
		QueueRequest *req = ((InFlight *) lfirst(lc))->req;

		(*ids)[foreach_current_index(lc)] = req->id;
		(*tokens)[foreach_current_index(lc)] = req->claim_token;
	}
}

/* Give back requests claimed ahead that were never sent. */
static void
worker_unclaim(List *ready)
{
	MemoryContext outer;
	QueueRequest **reqs = palloc(sizeof(QueueRequest *) * list_length(ready));
	ListCell   *lc;

	foreach(lc, ready)
		reqs[foreach_current_index(lc)] = ((InFlight *) lfirst(lc))->req;
	outer = worker_begin();
	queue_unclaim(reqs, list_length(ready));
	worker_commit(outer);
	foreach(lc, ready)
		inflight_release((InFlight *) lfirst(lc));
}

/*
 * Claim up to want requests, ready to send (InFlight *); *got is set to
 * how many were claimed, those the spend guard held included.  A claim's
 * requests live in a memory context of their own, deleted when the last of
 * them has been recorded (or given back), so that a long stream holds only
 * what is in flight.
 */
static List *
worker_claim(int want, QueueCursor *after, int *got)
{
	MemoryContext outer;
	MemoryContext batchcxt;
	ClaimBatch *batch;
	List	   *reqs;
	List	   *ready = NIL;
	ListCell   *lc;

	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "telnyx_orders claim",
									 ALLOCSET_SMALL_SIZES);
	outer = worker_begin();
	reqs = queue_claim(want, worker_lease_ms(), after, batchcxt, got);
	worker_commit(outer);
	if (reqs == NIL)
	{
		MemoryContextDelete(batchcxt);
		return NIL;
	}

	batch = MemoryContextAllocZero(batchcxt, sizeof(ClaimBatch));
	batch->cxt = batchcxt;
	batch->left = list_length(reqs);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("sending order requests (%d in flight)",
									http_stream_busy() + batch->left));
	foreach(lc, reqs)
	{
		InFlight   *f = MemoryContextAllocZero(batchcxt, sizeof(InFlight));
		MemoryContext old = MemoryContextSwitchTo(batchcxt);

		f->req = (QueueRequest *) lfirst(lc);
		f->batch = batch;
		api_create_request(&f->http, f->req->request_body, f->req->request_key);
		MemoryContextSwitchTo(old);
		ready = lappend(ready, f);
	}
	return ready;
}

/*
 * Record the outcomes of n requests that ended, in one transaction, each
 * in a subtransaction of its own: one that cannot be recorded (a lock held
 * too long, a row the tables refuse) never takes the others with it.  A
 * created order is then recorded as sent without its rows; if even that
 * fails, the request stays ours, "sending", and becomes unknown at the
 * next pass.  A configuration fault pauses the sender; a rate limit makes
 * it wait before claiming more.
 */
static void
worker_record(SenderState *state, HttpDone *done, int n)
{
	MemoryContext outer;
	double		longest_wait = 0;
	TelnyxResultClass pause_class = TELNYX_OK;
	RecordStep *steps = palloc0(sizeof(RecordStep) * n);
	RecordStep	batch;
	int			sent = 0;
	int			i;

	memset(&batch, 0, sizeof(batch));
	for (i = 0; i < n; i++)
	{
		InFlight   *f = (InFlight *) done[i].tag;

		steps[i].req = f->req;
		steps[i].result = api_create_result(&f->http, &done[i].resp);
		if (steps[i].result->class == TELNYX_OK)
		{
			sent++;
			batch.reqs = lappend(batch.reqs, steps[i].req);
			batch.results = lappend(batch.results, steps[i].result);
		}
	}

	outer = worker_begin();

	/*
	 * The created orders at once; if that fails (one of them cannot be
	 * recorded), one by one below, where what fails is said.
	 */
	if (list_length(batch.reqs) > 1 &&
		worker_try_at(step_record_created, &batch, STEP_CREATED_AT_ONCE, DEBUG1))
	{
		for (i = 0; i < n; i++)
			if (steps[i].result->class == TELNYX_OK)
				steps[i].recorded = true;
	}

	for (i = 0; i < n; i++)
	{
		RecordStep *step = &steps[i];

		if (step->recorded)
			continue;
		if (!worker_try(step_record, step, STEP_OUTCOME) &&
			!worker_try(step_record_unstored, step, STEP_OUTCOME))
			state->release_pending = true;
		else if (step->outcome == QUEUE_PAUSE)
			pause_class = step->result->class;
		else if (step->outcome == QUEUE_RATE_LIMITED)
			longest_wait = Max(longest_wait, step->wait_ms);
	}
	worker_commit(outer);

	for (i = 0; i < n; i++)
		inflight_release((InFlight *) done[i].tag);

	if (pause_class == TELNYX_AUTH)
	{
		ereport(LOG,
				(errmsg("telnyx_orders worker: Telnyx did not accept the API key"),
				 errdetail("Queued requests wait until a key is accepted."),
				 errhint("%s", telnyx_api_key_refused_hint())));
		state->paused = "Telnyx did not accept the API key";
		state->paused_key = telnyx_api_key_serial();
	}
	else if (pause_class != TELNYX_OK)
	{
		ereport(LOG,
				(errmsg("telnyx_orders worker: Telnyx has no order endpoint at telnyx.api_base_url"),
				 errdetail("POST %s answered 404. Queued requests wait until the setting is fixed.", "/inexplicit_number_orders"),
				 errhint("Fix telnyx.api_base_url (it ends in \"/v2\") and reload the configuration.")));
		state->paused = "Telnyx has no order endpoint at telnyx.api_base_url";
		state->paused_key = telnyx_api_key_serial();
	}
	if (longest_wait > 0)
		state->not_before = Max(state->not_before,
								TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															(int64) longest_wait));
	worker_report(state, sent);
}

/* Publish the sender's status, with orders created to count. */
static void
worker_report(SenderState *state, int sent)
{
	const char *why = "";

	if (state->is_pass)
		return;
	if (state->skew[0] != '\0')
		why = state->skew;
	else if (state->elsewhere)
		why = "the database was restored or cloned: run telnyx_resume_queue() to send its queue here";
	else if (state->paused == key_in_settings)
		why = state->paused;
	else if (state->key_problem[0] != '\0')
		why = state->key_problem;
	else if (state->paused)
		why = state->paused;
	wakeup_report(why, state->not_before > GetCurrentTimestamp() ? state->not_before : 0,
				  sent);
}

/* Reconcile unknown outcomes due now; returns how many were looked up. */
static int
worker_reconcile(SenderState *state)
{
	MemoryContext outer;
	List	   *reqs;
	TelnyxResult *failure;
	ListCell   *lc;
	TimestampTz looked_at;

	outer = worker_begin();
	reqs = queue_claim_unknown(WORKER_RECONCILE_BATCH, outer);
	worker_commit(outer);
	if (reqs == NIL)
		return 0;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("reconciling %d order requests", list_length(reqs)));
	looked_at = GetCurrentTimestamp();
	foreach(lc, reqs)
		((QueueRequest *) lfirst(lc))->looked_at = looked_at;
	failure = reconcile_find(reqs, CurrentMemoryContext);
	if (failure != NULL)
		ereport(LOG,
				(errmsg_plural("telnyx_orders could not read the list of orders to reconcile %d order request",
							   "telnyx_orders could not read the list of orders to reconcile %d order requests",
							   list_length(reqs), list_length(reqs)),
				 errdetail_internal("%s", failure->why ? failure->why : "")));

	outer = worker_begin();
	foreach(lc, reqs)
	{
		RecordStep	step;

		memset(&step, 0, sizeof(step));
		step.req = (QueueRequest *) lfirst(lc);
		step.result = failure;
		if (failure == NULL &&
			worker_try(step_resolve, &step, STEP_RECONCILE))
			continue;
		if (!worker_try(step_retry_later, &step, STEP_RECONCILE))
			state->release_pending = true;
	}
	worker_commit(outer);
	return list_length(reqs);
}

/*
 * Refresh what is due (refresh.c): orders still being filled, number
 * orders new or still pending.  Fetch each again and record what Telnyx
 * says now; what cannot be fetched is due again after a backoff
 * (refresh.c).
 * Returns how many were claimed.
 */
static int
worker_refresh(void)
{
	MemoryContext outer;
	List	   *items;
	ListCell   *lc;

	outer = worker_begin();
	items = refresh_claim(REFRESH_BATCH, outer);
	worker_commit(outer);
	if (items == NIL)
		return 0;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("refreshing %d orders and number orders",
									list_length(items)));
	foreach(lc, items)
		refresh_fetch((RefreshItem *) lfirst(lc), LOG, true);

	outer = worker_begin();
	foreach(lc, items)
	{
		RecordStep	step;

		memset(&step, 0, sizeof(step));
		step.item = (RefreshItem *) lfirst(lc);
		(void) worker_try(step_record_refreshed, &step,
						  step.item->result->class == TELNYX_OK ?
						  STEP_REFRESHED : STEP_REFRESH_FAILED);
	}
	worker_commit(outer);
	return list_length(items);
}

/*
 * The periodic sync: read the whole list of orders and record every order
 * of this database the tables lack (by default, only those it placed;
 * see reconcile.c), marked found_by_sync, whatever became of the
 * transaction that created it.  One page per pass, so that sending never
 * waits for a long list: the sender loops at once while a sync is under
 * way.
 */
static void
worker_sync(SenderState *state)
{
	ApiListWalk *walk;
	TelnyxResult *failure;

	if (state->sync_walk == NULL)
	{
		if (GetCurrentTimestamp() < state->next_sync)
			return;
		state->next_sync = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   (int64) telnyx_sync_interval_s * 1000);
		state->sync_walk = MemoryContextAlloc(TopMemoryContext, sizeof(ApiListWalk));
		api_walk_begin(state->sync_walk, TopMemoryContext);
		state->sync_found = 0;
	}
	walk = state->sync_walk;

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("syncing page %d of the list of orders", walk->page));
	failure = api_walk_next(walk, worker_sync_page, &state->sync_found);
	if (failure == NULL && walk->end == API_LIST_UNDER_WAY)
		return;
	if (failure != NULL)
		ereport(LOG,
				(errmsg("telnyx_orders worker could not read the list of orders to sync it"),
				 errdetail_internal("%s", failure->why ? failure->why : "")));
	else if (state->sync_found > 0)
		ereport(LOG,
				(errmsg("telnyx_orders worker recorded %d orders the tables lacked",
						state->sync_found)));
	api_walk_finish(walk);
	pfree(walk);
	state->sync_walk = NULL;
}

/*
 * One page of the periodic sync: record the orders the tables lack that
 * are this database's (reconcile_own_orders).
 */
static void
worker_sync_page(List *orders, List *unparsed, void *arg)
{
	MemoryContext outer;
	int		   *found = (int *) arg;
	List	   *own;
	List	   *keys;
	ListCell   *lc;

	if (orders == NIL)
		return;
	outer = worker_begin();
	own = reconcile_own_orders(store_orders_missing(orders), &keys);
	foreach(lc, own)
	{
		RecordStep	step;

		memset(&step, 0, sizeof(step));
		step.order = (TelnyxOrder *) lfirst(lc);
		step.request_key = (const char *) list_nth(keys, foreach_current_index(lc));
		if (worker_try(step_store_found, &step, STEP_FOUND))
			(*found)++;
	}
	worker_commit(outer);
}

/*
 * Run fn(step) in a subtransaction.  On an error, log it with what, roll
 * the subtransaction back, set step->why and return false.
 */
static bool
worker_try(WorkerStepFn fn, RecordStep *step, WorkerStepKind kind)
{
	return worker_try_at(fn, step, kind, WARNING);
}

/* worker_try, logging a failure at elevel. */
static bool
worker_try_at(WorkerStepFn fn, RecordStep *step, WorkerStepKind kind, int elevel)
{
	WorkerTry	t;
	ErrorData  *edata;
	const char *m;

	t.fn = fn;
	t.step = step;
	edata = store_try(worker_try_step, &t);
	if (edata == NULL)
		return true;
	m = edata->message;
	switch (kind)
	{
		case STEP_CREATED_AT_ONCE:
			ereport(elevel,
					(errmsg("telnyx_orders could not record created orders at once"),
					 worker_step_detail(step, m)));
			break;
		case STEP_OUTCOME:
			ereport(elevel,
					(errmsg("telnyx_orders could not record the outcome of an order request"),
					 worker_step_detail(step, m)));
			break;
		case STEP_RECONCILE:
			ereport(elevel,
					(errmsg("telnyx_orders could not reconcile an order request"),
					 worker_step_detail(step, m)));
			break;
		case STEP_REFRESHED:
			ereport(elevel,
					(errmsg("telnyx_orders could not record a refreshed order"),
					 worker_step_detail(step, m)));
			break;
		case STEP_REFRESH_FAILED:
			ereport(elevel,
					(errmsg("telnyx_orders could not record a failed refresh"),
					 worker_step_detail(step, m)));
			break;
		case STEP_FOUND:
			ereport(elevel,
					(errmsg("telnyx_orders could not record an order found by the sync"),
					 worker_step_detail(step, m)));
			break;
	}
	step->why = pstrdup(edata->message);
	FreeErrorData(edata);
	return false;
}

/* The DETAIL of a step that failed with message (inside an ereport). */
static int
worker_step_detail(const RecordStep *step, const char *message)
{
	if (step->req != NULL)
		return errdetail("Order request %lld: %s", (long long) step->req->id, message);
	return errdetail("%s", message);
}

/* One step, as store_try runs it (arg: a WorkerTry). */
static void
worker_try_step(void *arg)
{
	WorkerTry  *t = (WorkerTry *) arg;

	t->fn(t->step);
}

static void
step_record(RecordStep *step)
{
	step->outcome = queue_record(step->req, step->result,
								 http_retry_delay_ms(step->req->attempts - 1,
													 step->result->wait_ms),
								 &step->wait_ms);
}

static void
step_record_created(RecordStep *step)
{
	queue_record_created(step->reqs, step->results);
}

static void
step_record_unstored(RecordStep *step)
{
	queue_record_unstored(step->req, step->result, step->why);
	step->outcome = QUEUE_DONE;
}

static void
step_resolve(RecordStep *step)
{
	reconcile_resolve(step->req);
}

static void
step_retry_later(RecordStep *step)
{
	queue_unknown_retry_later(step->req,
							  http_retry_delay_ms(step->req->attempts,
												  step->result ? step->result->wait_ms : -1));
}

static void
step_record_refreshed(RecordStep *step)
{
	(void) refresh_record(step->item);
}

static void
step_store_found(RecordStep *step)
{
	store_order(step->order, true, NULL, step->request_key);
}

/*
 * A short transaction (inside the procedure, the part of its transaction
 * up to the next commit).  Returns the memory context current before it,
 * for worker_commit to go back to: what is allocated there outlives it.
 */
static MemoryContext
worker_begin(void)
{
	MemoryContext outer = CurrentMemoryContext;

	/* inside the procedure, a transaction is always open */
	if (!worker_in_procedure)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		/*
		 * whatever default_transaction_isolation says: each statement sees
		 * what committed before it (the spend guard reads its counts after
		 * taking its lock)
		 */
		XactIsoLevel = XACT_READ_COMMITTED;
	}
	/*
	 * never wait long on a lock a user holds: skip, and come back later;
	 * and when a wait closes a cycle with a user's transaction, be the one
	 * the deadlock check finds first, so that the user's goes on
	 */
	(void) set_config_option("lock_timeout", WORKER_LOCK_TIMEOUT,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
	(void) set_config_option("deadlock_timeout", WORKER_DEADLOCK_TIMEOUT,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
	/* a claim committed is what sends: it must outlive a crash */
	store_durable_commit();
	PushActiveSnapshot(GetTransactionSnapshot());
	return outer;
}

static void
worker_commit(MemoryContext outer)
{
	PopActiveSnapshot();
	if (worker_in_procedure)
		SPI_commit();			/* and a new transaction starts */
	else
		CommitTransactionCommand();
	/* so that autovacuum and pg_stat_user_tables see the worker's writes */
	pgstat_report_stat(false);
	MemoryContextSwitchTo(outer);
}

/*
 * worker_process_queue
 *		For CALL telnyx_process_queue(): one pass of the sender's code in
 *		the caller's session, as the caller, with the caller's telnyx.*
 *		settings, committing between claiming, sending and recording (the
 *		procedure's SPI connection must be nonatomic).  Returns how many
 *		requests were handled.  Errors are the caller's, whole.
 */
int
worker_process_queue(int max_requests)
{
	SenderState state;
	MemoryContext passcxt;
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile int result = 0;

	memset(&state, 0, sizeof(state));
	state.is_pass = true;
	/* no request of this session can be in flight: its claims are stale */
	state.release_pending = true;

	passcxt = AllocSetContextCreate(TopMemoryContext, "telnyx_orders pass",
									ALLOCSET_DEFAULT_SIZES);
	worker_in_procedure = true;
	PG_TRY();
	{
		int			done;

		MemoryContextSwitchTo(passcxt);
		done = worker_pass(&state, max_requests);
		result = Max(done, 0);
	}
	PG_FINALLY();
	{
		worker_in_procedure = false;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(passcxt);
	}
	PG_END_TRY();
	return result;
}
