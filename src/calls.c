/*-------------------------------------------------------------------------
 *
 * calls.c
 *	  Recording a synchronous call before it is sent, whatever becomes of
 *	  the caller's transaction.
 *
 * telnyx_create_inexplicit_order() buys at Telnyx before the caller's
 * transaction commits, and a transaction that rolls back takes the order's
 * rows with it.  The database's sync finds such an order again only if
 * something says it is this database's: the account's list carries
 * nothing of ours but what the caller chose (customer_reference), and
 * Telnyx does not echo the Idempotency-Key.  So before sending, the call
 * (its key and body) is written to telnyx_order_calls and committed by a
 * short-lived background worker, in a transaction of its own; the caller
 * waits for that commit, and sends nothing if it failed.  The sync then
 * matches the orders of the list with the calls (reconcile.c).
 *
 * The same transaction checks the call against the spend limits and counts
 * it (spend.c): a call over a limit is refused and sends nothing.  A call
 * that Telnyx refused gives its count back the same way, by a recorder of
 * its own (the caller's transaction is about to fail).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/uuid.h"

#include "calls.h"
#include "errcodes.h"
#include "spend.h"
#include "store.h"

/* How long a caller waits for a free worker slot before giving up. */
#define CALLS_SLOT_WAIT_MS 30000
#define CALLS_SLOT_POLL_MS 10

/* The recorder waits at most this long for a lock (one the caller holds?). */
#define CALLS_LOCK_TIMEOUT "5s"

/* What the caller hands the recorder, in a dynamic shared memory segment. */
typedef struct CallRecord
{
	Oid			dboid;
	Oid			role;			/* the caller */
	int64		numbers;		/* the numbers the call requests */
	bool		refused_by_telnyx;	/* record that Telnyx refused it, no more */
	bool		recorded;		/* set by the recorder after its commit */
	bool		over_limit;		/* set by the recorder: not recorded, over
								 * a spend limit (reason) */
	char		reason[SPEND_REASON_LEN];
	char		request_key[UUID_LEN * 2 + 5];
	char		body[FLEXIBLE_ARRAY_MEMBER];	/* the request, as JSON text */
} CallRecord;

PGDLLEXPORT void telnyx_call_recorder_main(Datum arg);

static CallRecord *calls_run_recorder(const char *request_key, const char *body,
									  int64 numbers, bool refused_by_telnyx,
									  dsm_segment **segp);

/*
 * calls_record
 *		Record the call of request_key (body: the request as sent, for
 *		numbers) in telnyx_order_calls, counted against the spend limits,
 *		committed whatever becomes of the current transaction.  An error,
 *		and nothing is sent, if it could not be or a limit refuses it.
 */
void
calls_record(const char *request_key, const char *body, int64 numbers)
{
	dsm_segment *seg;
	CallRecord *rec = calls_run_recorder(request_key, body, numbers, false, &seg);

	if (rec->over_limit)
	{
		char	   *reason = pstrdup(rec->reason);

		dsm_detach(seg);
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_SPEND_LIMIT),
				 errmsg("order refused by the spend guard: %s", reason),
				 errdetail("Nothing was sent."),
				 errhint("An administrator can raise the limit in telnyx_spend_limits; or queue the order (telnyx_enqueue_inexplicit_order), where it is held for release.")));
	}
	if (!rec->recorded)
	{
		dsm_detach(seg);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not record the order before sending it"),
				 errdetail("Nothing was sent: the call could not be written to telnyx_order_calls in a transaction of its own."),
				 errhint("The server log says why. A transaction that created the extension, or that locks its tables, must commit before it orders.")));
	}
	dsm_detach(seg);
}

/*
 * calls_refused
 *		Telnyx refused the call of request_key (no order was created): its
 *		count comes back, committed whatever becomes of this transaction.
 *		Only a WARNING if that cannot be done (the count stays: the limits
 *		err on the safe side).
 */
void
calls_refused(const char *request_key)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		dsm_segment *seg;
		CallRecord *rec = calls_run_recorder(request_key, "", 0, true, &seg);
		bool		done = rec->recorded;

		dsm_detach(seg);
		if (!done)
			ereport(WARNING,
					(errmsg("could not give back the spend count of a refused order")));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("could not give back the spend count of a refused order: %s",
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * Start a recorder for the call of request_key and wait until it ends;
 * returns what it wrote back, in its segment (*segp, to detach).  An error
 * if no worker slot came free.
 */
static CallRecord *
calls_run_recorder(const char *request_key, const char *body, int64 numbers,
				   bool refused_by_telnyx, dsm_segment **segp)
{
	Size		len = strlen(body);
	dsm_segment *seg;
	CallRecord *rec;
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	int			waited = 0;

	seg = dsm_create(offsetof(CallRecord, body) + len + 1, 0);
	rec = (CallRecord *) dsm_segment_address(seg);
	rec->dboid = MyDatabaseId;
	rec->role = GetUserId();
	rec->numbers = numbers;
	rec->refused_by_telnyx = refused_by_telnyx;
	rec->recorded = false;
	rec->over_limit = false;
	rec->reason[0] = '\0';
	strlcpy(rec->request_key, request_key, sizeof(rec->request_key));
	memcpy(rec->body, body, len + 1);

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(bgw.bgw_library_name, "telnyx_orders", BGW_MAXLEN);
	strlcpy(bgw.bgw_function_name, "telnyx_call_recorder_main", BGW_MAXLEN);
	strlcpy(bgw.bgw_name, "telnyx_orders call recorder", BGW_MAXLEN);
	strlcpy(bgw.bgw_type, "telnyx_orders call recorder", BGW_MAXLEN);
	bgw.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	bgw.bgw_notify_pid = MyProcPid;

	/* every slot may be taken for a moment: wait a little for one */
	while (!RegisterDynamicBackgroundWorker(&bgw, &handle))
	{
		if (waited >= CALLS_SLOT_WAIT_MS)
		{
			dsm_detach(seg);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not record the order before sending it"),
					 errdetail("Nothing was sent: no background worker slot was free to record the call."),
					 errhint("Raise max_worker_processes.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 CALLS_SLOT_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += CALLS_SLOT_POLL_MS;
	}

	status = WaitForBackgroundWorkerShutdown(handle);
	pg_read_barrier();
	if (status != BGWH_STOPPED)
	{
		rec->recorded = false;
		rec->over_limit = false;
	}
	*segp = seg;
	return rec;
}

/*
 * telnyx_call_recorder_main
 *		The recorder: insert one call and commit, as the extension's owner
 *		(store.c), then exit.  An error exits without setting recorded.
 */
void
telnyx_call_recorder_main(Datum arg)
{
	dsm_segment *seg;
	CallRecord *rec;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		proc_exit(1);			/* the caller is gone: nothing to record */
	rec = (CallRecord *) dsm_segment_address(seg);
	BackgroundWorkerInitializeConnectionByOid(rec->dboid, InvalidOid, 0);
	pgstat_report_appname("telnyx_orders call recorder");
	SetConfigOption("search_path", STORE_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", CALLS_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* the spend guard reads its counts after its lock: each statement anew */
	XactIsoLevel = XACT_READ_COMMITTED;
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording an order call");
	if (rec->refused_by_telnyx)
		store_call_refused(rec->request_key);
	else if (!spend_call_allowed(rec->role, rec->numbers, rec->reason))
		rec->over_limit = true;
	else
		store_record_call(rec->request_key, rec->body, rec->role);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	pg_write_barrier();
	rec->recorded = !rec->over_limit;
	dsm_detach(seg);
	proc_exit(0);
}
