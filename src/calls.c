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
 * recorder, a background worker connected to the caller's database, in a
 * transaction of its own; the caller waits for that commit, and sends
 * nothing if it failed.  The sync then matches the orders of the list with
 * the calls (reconcile.c).
 *
 * The same transaction checks the call against the spend limits and counts
 * it (spend.c): a call over a limit is refused and sends nothing.  A call
 * that Telnyx refused gives its count back the same way (the caller's
 * transaction is about to fail).
 *
 * With the library preloaded, a database's recorder stays: a caller puts
 * its call in a cell of shared memory, queues the cell on its database's
 * recorder (starting one if none runs) and waits on its latch; the
 * recorder records each cell in a transaction of its own and sets the
 * caller's latch.  A body too long for a cell goes in a dynamic shared
 * memory segment of the caller's, which begins with the call's key (so a
 * segment that went away and whose handle came back is never read as the
 * call's).  A recorder leaves when it has been idle for a while or its
 * database is wanted (DROP DATABASE); an error fails the call it was
 * recording, and a recorder that ends (a signal) fails those it holds, the
 * next call starting a new one.  A caller that stops waiting (cancelled, terminated) leaves its
 * cell to the recorder, which frees it.
 *
 * Without preloading there is no shared memory: each call starts a
 * recorder of its own, handed the call in a segment, which records it and
 * exits.  The recording itself is the same.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "calls.h"
#include "errcodes.h"
#include "launcher.h"
#include "spend.h"
#include "store.h"
#include "wakeup.h"

/* How long a caller waits for a recorder (or a cell) before giving up. */
#define CALLS_WAIT_MS 30000

/* The recorder waits at most this long for a lock (one the caller holds?). */
#define CALLS_LOCK_TIMEOUT "5s"

/* Calls being recorded at once, in the whole cluster. */
#define CALLS_CELLS 64

/* Recorders running at once (one per database). */
#define CALLS_RECORDERS 16

/* A body this long or longer goes in a segment of its own. */
#define CALLS_INLINE_BODY 4096

/* A recorder idle this long leaves (the next call starts one again). */
#define CALLS_IDLE_MS 30000

#define CALLS_KEY_LEN (UUID_LEN * 2 + 5)

/*---- Local types ----*/

/* What became of a call. */
typedef enum CallOutcome
{
	CALL_PENDING,
	CALL_RECORDED,				/* committed */
	CALL_OVER_LIMIT,			/* not recorded: over a spend limit (reason) */
	CALL_FAILED					/* not recorded: the server log says why */
} CallOutcome;

/* A call, as the caller hands it to a recorder. */
typedef struct CallRecord
{
	Oid			dboid;
	Oid			role;			/* the caller */
	int64		numbers;		/* the numbers the call requests */
	bool		refused_by_telnyx;	/* record that Telnyx refused it, no more */
	CallOutcome outcome;		/* set by the recorder */
	char		reason[SPEND_REASON_LEN];	/* why over a limit */
	char		request_key[CALLS_KEY_LEN];
	dsm_handle	body_segment;	/* the body's segment, or 0: body below */
	Size		body_len;
	char		body[FLEXIBLE_ARRAY_MEMBER];	/* the request, as JSON text */
} CallRecord;

/* A cell's state; it moves only forward, then back to free. */
typedef enum CellState
{
	CELL_FREE,
	CELL_TAKEN,					/* a caller's, not yet queued */
	CELL_QUEUED,				/* on its recorder's list */
	CELL_RECORDING,				/* taken by its recorder */
	CELL_DONE					/* outcome set; the caller frees it */
} CellState;

typedef struct CallCell
{
	CellState	state;
	bool		abandoned;		/* the caller stopped waiting: the recorder
								 * frees it */
	int			next;			/* the next queued cell, or -1 */
	Latch	   *caller;			/* set when the cell is done */
	CallRecord	rec;			/* its body: CALLS_INLINE_BODY bytes */
} CallCell;

#define CALLS_CELL_SIZE MAXALIGN(offsetof(CallCell, rec.body) + CALLS_INLINE_BODY)

typedef enum RecorderState
{
	RECORDER_FREE,
	RECORDER_STARTING,			/* registered, not yet connected */
	RECORDER_READY
} RecorderState;

typedef struct RecorderSlot
{
	RecorderState state;
	Oid			dboid;
	uint32		generation;		/* of this slot's use: bumped when taken */
	TimestampTz started_at;		/* when it was taken */
	Latch	   *latch;			/* READY: the recorder's */
	int			head;			/* queued cells, oldest first, or -1 */
	int			tail;
	int			current;		/* the cell being recorded, or -1 */
} RecorderSlot;

typedef struct CallsShared
{
	slock_t		mutex;
	RecorderSlot recorders[CALLS_RECORDERS];
	char		cells[FLEXIBLE_ARRAY_MEMBER];	/* CALLS_CELLS of
												 * CALLS_CELL_SIZE */
} CallsShared;

#define CALLS_SHARED_SIZE \
	MAXALIGN(offsetof(CallsShared, cells) + CALLS_CELLS * CALLS_CELL_SIZE)

/*---- Local variables ----*/

static CallsShared *calls_shared = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* The cell this backend waits on, left to the recorder if it exits. */
static int	my_cell = -1;
static bool exit_callback_set = false;

/* In a recorder: its slot and generation. */
static int	my_recorder = -1;
static uint32 my_generation = 0;

/*---- Function declarations ----*/

PGDLLEXPORT void telnyx_call_recorder_main(Datum arg);

#if PG_VERSION_NUM >= 150000
static void calls_shmem_request(void);
#endif
static void calls_shmem_startup(void);
static CallCell *cell_at(int i);
static CallOutcome calls_run(const char *request_key, const char *body,
							 int64 numbers, bool refused_by_telnyx,
							 char *reason);
static CallOutcome calls_run_shared(const char *request_key, const char *body,
									int64 numbers, bool refused_by_telnyx,
									char *reason);
static CallOutcome calls_run_alone(const char *request_key, const char *body,
								   int64 numbers, bool refused_by_telnyx,
								   char *reason);
static void calls_fill(CallRecord *rec, const char *request_key, int64 numbers,
					   bool refused_by_telnyx);
static int	calls_take_cell(void);
static bool calls_submit(int cell);
static void calls_abandon(int code, Datum arg);
static void calls_describe_recorder(BackgroundWorker *bgw, Datum main_arg);
static bool calls_start_recorder(int slot, uint32 generation,
								 BackgroundWorkerHandle **handle);
static void calls_wait(int ms);
static void recorder_loop(void);
static void recorder_exit(int code, Datum arg);
static void recorder_write(CallRecord *rec, const char *body);
static void recorder_write_cell(CallRecord *rec);

/*
 * calls_init
 *		From _PG_init while shared_preload_libraries are loaded: ask for
 *		the cells' and recorders' shared memory.
 */
void
calls_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = calls_shmem_request;
#else
	RequestAddinShmemSpace(CALLS_SHARED_SIZE);
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = calls_shmem_startup;
}

#if PG_VERSION_NUM >= 150000
static void
calls_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(CALLS_SHARED_SIZE);
}
#endif

static void
calls_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	calls_shared = ShmemInitStruct("telnyx_orders calls", CALLS_SHARED_SIZE, &found);
	if (!found)
	{
		int			i;

		memset(calls_shared, 0, CALLS_SHARED_SIZE);
		SpinLockInit(&calls_shared->mutex);
		for (i = 0; i < CALLS_RECORDERS; i++)
		{
			calls_shared->recorders[i].head = -1;
			calls_shared->recorders[i].tail = -1;
			calls_shared->recorders[i].current = -1;
		}
		for (i = 0; i < CALLS_CELLS; i++)
			cell_at(i)->next = -1;
	}
	LWLockRelease(AddinShmemInitLock);
}

static CallCell *
cell_at(int i)
{
	return (CallCell *) (calls_shared->cells + (Size) i * CALLS_CELL_SIZE);
}

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
	char		reason[SPEND_REASON_LEN];
	CallOutcome outcome = calls_run(request_key, body, numbers, false, reason);

	if (outcome == CALL_OVER_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_SPEND_LIMIT),
				 errmsg("order refused by the spend guard: %s", reason),
				 errdetail("Nothing was sent."),
				 errhint("An administrator can raise the limit in telnyx_spend_limits; or queue the order (telnyx_enqueue_inexplicit_order), where it is held for release.")));
	if (outcome != CALL_RECORDED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not record the order before sending it"),
				 errdetail("Nothing was sent: the call could not be written to telnyx_order_calls in a transaction of its own."),
				 errhint("The server log says why. A transaction that created the extension, or that locks its tables, must commit before it orders.")));
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
		char		reason[SPEND_REASON_LEN];

		if (calls_run(request_key, "", 0, true, reason) != CALL_RECORDED)
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
				(errmsg("could not give back the spend count of a refused order"),
				 errdetail_internal("%s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/* Hand the call to a recorder and wait for its outcome. */
static CallOutcome
calls_run(const char *request_key, const char *body, int64 numbers,
		  bool refused_by_telnyx, char *reason)
{
	reason[0] = '\0';
	if (calls_shared != NULL)
		return calls_run_shared(request_key, body, numbers, refused_by_telnyx,
								reason);
	return calls_run_alone(request_key, body, numbers, refused_by_telnyx,
						   reason);
}

static void
calls_fill(CallRecord *rec, const char *request_key, int64 numbers,
		   bool refused_by_telnyx)
{
	rec->dboid = MyDatabaseId;
	rec->role = GetUserId();
	rec->numbers = numbers;
	rec->refused_by_telnyx = refused_by_telnyx;
	rec->outcome = CALL_PENDING;
	rec->reason[0] = '\0';
	strlcpy(rec->request_key, request_key, sizeof(rec->request_key));
	rec->body_segment = 0;
	rec->body_len = 0;
}

/*
 * The call through the database's recorder: a cell, queued on it, waited
 * for.
 */
static CallOutcome
calls_run_shared(const char *request_key, const char *body, int64 numbers,
				 bool refused_by_telnyx, char *reason)
{
	Size		len = strlen(body);
	dsm_segment *seg = NULL;
	CallCell   *cell;
	CallOutcome outcome = CALL_FAILED;
	bool		queued;
	int			i;

	if (!exit_callback_set)
	{
		before_shmem_exit(calls_abandon, (Datum) 0);
		exit_callback_set = true;
	}

	/* a long body in a segment, after the key that proves it the call's */
	if (len >= CALLS_INLINE_BODY)
	{
		char	   *p;

		seg = dsm_create(CALLS_KEY_LEN + len + 1, 0);
		p = dsm_segment_address(seg);
		strlcpy(p, request_key, CALLS_KEY_LEN);
		memcpy(p + CALLS_KEY_LEN, body, len + 1);
	}

	i = calls_take_cell();
	cell = cell_at(i);
	calls_fill(&cell->rec, request_key, numbers, refused_by_telnyx);
	cell->rec.body_len = len;
	if (seg != NULL)
		cell->rec.body_segment = dsm_segment_handle(seg);
	else
		memcpy(cell->rec.body, body, len + 1);
	cell->caller = MyLatch;
	cell->abandoned = false;

	PG_TRY();
	{
		queued = calls_submit(i);
		for (; queued;)
		{
			bool		done;

			SpinLockAcquire(&calls_shared->mutex);
			done = cell->state == CELL_DONE;
			if (done)
			{
				outcome = cell->rec.outcome;
				strlcpy(reason, cell->rec.reason, SPEND_REASON_LEN);
				cell->state = CELL_FREE;
				my_cell = -1;
			}
			SpinLockRelease(&calls_shared->mutex);
			if (done)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		calls_abandon(0, (Datum) 0);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (seg != NULL)
		dsm_detach(seg);
	if (!queued)
	{
		/* every recorder is another database's: one of its own, this once */
		calls_abandon(0, (Datum) 0);
		return calls_run_alone(request_key, body, numbers, refused_by_telnyx,
							   reason);
	}
	return outcome;
}

/*
 * A free cell, now this backend's; waits for one (they are all taken only
 * by as many calls being recorded at once).
 */
static int
calls_take_cell(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   CALLS_WAIT_MS);

	for (;;)
	{
		int			found = -1;
		int			i;

		SpinLockAcquire(&calls_shared->mutex);
		for (i = 0; i < CALLS_CELLS; i++)
			if (cell_at(i)->state == CELL_FREE)
			{
				found = i;
				cell_at(i)->state = CELL_TAKEN;
				cell_at(i)->next = -1;
				my_cell = i;
				break;
			}
		SpinLockRelease(&calls_shared->mutex);
		if (found >= 0)
			return found;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not record the order before sending it"),
					 errdetail("Nothing was sent: %d calls were being recorded for 30 seconds.",
							   CALLS_CELLS)));
		calls_wait(10);
	}
}

/*
 * Queue cell i on the recorder of this database, starting one if none
 * runs; false, queueing nothing, if every recorder's place is taken by
 * other databases.
 */
static bool
calls_submit(int i)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   CALLS_WAIT_MS);
	BackgroundWorkerHandle *handle = NULL;
	int			started = -1;	/* the slot of the recorder this backend
								 * started, until it is ready */
	uint32		started_gen = 0;

	for (;;)
	{
		RecorderSlot *ready = NULL;
		bool		starting = false;
		bool		started_gone = false;
		int			take = -1;
		uint32		generation = 0;
		Latch	   *latch = NULL;
		int			s;

		SpinLockAcquire(&calls_shared->mutex);
		if (started >= 0 &&
			(calls_shared->recorders[started].generation != started_gen ||
			 calls_shared->recorders[started].state == RECORDER_FREE))
			started_gone = true;	/* it stopped before it was ready */
		for (s = 0; s < CALLS_RECORDERS && !started_gone; s++)
		{
			RecorderSlot *slot = &calls_shared->recorders[s];

			if (slot->state == RECORDER_FREE)
			{
				if (take < 0)
					take = s;
				continue;
			}
			if (slot->dboid != MyDatabaseId)
				continue;
			if (slot->state == RECORDER_READY)
				ready = slot;
			else if (s != started &&
					 TimestampDifferenceExceeds(slot->started_at,
												GetCurrentTimestamp(),
												CALLS_WAIT_MS))
			{
				/* started by a caller that left, and never came up */
				slot->state = RECORDER_FREE;
				if (take < 0)
					take = s;
			}
			else
				starting = true;
			break;
		}
		if (ready != NULL)
		{
			CallCell   *cell = cell_at(i);

			cell->next = -1;
			cell->state = CELL_QUEUED;
			if (ready->tail >= 0)
				cell_at(ready->tail)->next = i;
			else
				ready->head = i;
			ready->tail = i;
			latch = ready->latch;
		}
		else if (!starting && !started_gone && take >= 0)
		{
			RecorderSlot *slot = &calls_shared->recorders[take];

			slot->state = RECORDER_STARTING;
			slot->dboid = MyDatabaseId;
			generation = ++slot->generation;
			slot->started_at = GetCurrentTimestamp();
			slot->latch = NULL;
			slot->head = slot->tail = slot->current = -1;
		}
		SpinLockRelease(&calls_shared->mutex);

		if (latch != NULL)
		{
			SetLatch(latch);
			return true;
		}
		if (!starting && !started_gone && take < 0)
			return false;
		if (started_gone)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("could not record the order before sending it"),
					 errdetail("Nothing was sent: the recorder of the database stopped as it started."),
					 errhint("The server log says why.")));
		if (generation != 0)
		{
			/* ours to start */
			if (calls_start_recorder(take, generation, &handle))
			{
				started = take;
				started_gen = generation;
				continue;
			}
			SpinLockAcquire(&calls_shared->mutex);
			if (calls_shared->recorders[take].generation == generation)
				calls_shared->recorders[take].state = RECORDER_FREE;
			SpinLockRelease(&calls_shared->mutex);
		}
		else if (handle != NULL)
		{
			pid_t		pid;

			/* never started at all (no process could be forked) */
			if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED)
			{
				SpinLockAcquire(&calls_shared->mutex);
				if (calls_shared->recorders[started].generation == started_gen &&
					calls_shared->recorders[started].state == RECORDER_STARTING)
					calls_shared->recorders[started].state = RECORDER_FREE;
				SpinLockRelease(&calls_shared->mutex);
				pfree(handle);
				handle = NULL;
			}
		}
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not record the order before sending it"),
					 errdetail("Nothing was sent: no recorder could be started for 30 seconds."),
					 errhint("Raise max_worker_processes.")));
		calls_wait(generation != 0 ? 10 : 1);
	}
}

/* A recorder, told main_arg (its slot, or -1: one call of its own). */
static void
calls_describe_recorder(BackgroundWorker *bgw, Datum main_arg)
{
	launcher_describe(bgw, "telnyx_call_recorder_main",
					  "telnyx_orders call recorder",
					  BgWorkerStart_RecoveryFinished, BGW_NEVER_RESTART,
					  main_arg);
}

/* Register a recorder for the slot; false if no worker slot was free. */
static bool
calls_start_recorder(int slot, uint32 generation, BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;

	calls_describe_recorder(&bgw, Int32GetDatum(slot));
	memcpy(bgw.bgw_extra, &generation, sizeof(generation));
	return RegisterDynamicBackgroundWorker(&bgw, handle);
}

static void
calls_wait(int ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * The caller stops waiting (an error, or it exits): a cell done is freed,
 * one queued or being recorded is left to its recorder, and one never
 * queued is freed.
 */
static void
calls_abandon(int code, Datum arg)
{
	CallCell   *cell;

	if (my_cell < 0)
		return;
	cell = cell_at(my_cell);
	SpinLockAcquire(&calls_shared->mutex);
	if (cell->state == CELL_QUEUED || cell->state == CELL_RECORDING)
		cell->abandoned = true;
	else
		cell->state = CELL_FREE;
	SpinLockRelease(&calls_shared->mutex);
	my_cell = -1;
}

/*
 * The call through a recorder of its own, handed the call in a segment:
 * without shared memory (the library not preloaded).
 */
static CallOutcome
calls_run_alone(const char *request_key, const char *body, int64 numbers,
				bool refused_by_telnyx, char *reason)
{
	Size		len = strlen(body);
	dsm_segment *seg;
	CallRecord *rec;
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	dsm_handle	handle_of_seg;
	CallOutcome outcome;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   CALLS_WAIT_MS);

	seg = dsm_create(offsetof(CallRecord, body) + len + 1, 0);
	rec = (CallRecord *) dsm_segment_address(seg);
	calls_fill(rec, request_key, numbers, refused_by_telnyx);
	rec->body_len = len;
	memcpy(rec->body, body, len + 1);

	calls_describe_recorder(&bgw, Int32GetDatum(-1));
	handle_of_seg = dsm_segment_handle(seg);
	memcpy(bgw.bgw_extra, &handle_of_seg, sizeof(handle_of_seg));

	/* every slot may be taken for a moment: wait a little for one */
	while (!RegisterDynamicBackgroundWorker(&bgw, &handle))
	{
		if (GetCurrentTimestamp() >= deadline)
		{
			dsm_detach(seg);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not record the order before sending it"),
					 errdetail("Nothing was sent: no background worker slot was free to record the call."),
					 errhint("Raise max_worker_processes.")));
		}
		calls_wait(10);
	}

	if (WaitForBackgroundWorkerShutdown(handle) == BGWH_STOPPED)
	{
		pg_read_barrier();
		outcome = rec->outcome;
		strlcpy(reason, rec->reason, SPEND_REASON_LEN);
	}
	else
		outcome = CALL_FAILED;
	dsm_detach(seg);
	return outcome == CALL_PENDING ? CALL_FAILED : outcome;
}

/*
 * telnyx_call_recorder_main
 *		A recorder: with a slot (argument >= 0), the database's, recording
 *		the cells queued on it until idle; without (-1), the one call of the
 *		segment in bgw_extra, then exit.  Each call is inserted and
 *		committed as the extension's owner (store.c).  An error fails the
 *		call it was recording.
 */
void
telnyx_call_recorder_main(Datum arg)
{
	int			slot = DatumGetInt32(arg);
	Oid			dboid;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (slot < 0)
	{
		dsm_handle	h;
		dsm_segment *seg;
		CallRecord *rec;

		memcpy(&h, MyBgworkerEntry->bgw_extra, sizeof(h));
		seg = dsm_attach(h);
		if (seg == NULL)
			proc_exit(1);		/* the caller is gone: nothing to record */
		rec = (CallRecord *) dsm_segment_address(seg);
		BackgroundWorkerInitializeConnectionByOid(rec->dboid, InvalidOid, 0);
		pgstat_report_appname("telnyx_orders call recorder");
		store_pin_settings();
		SetConfigOption("lock_timeout", CALLS_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
		recorder_write(rec, rec->body);
		dsm_detach(seg);
		proc_exit(0);
	}

	/* from here on, whatever ends this process frees the slot */
	my_recorder = slot;
	memcpy(&my_generation, MyBgworkerEntry->bgw_extra, sizeof(my_generation));
	on_shmem_exit(recorder_exit, (Datum) 0);
	SpinLockAcquire(&calls_shared->mutex);
	if (calls_shared->recorders[slot].generation != my_generation ||
		calls_shared->recorders[slot].state != RECORDER_STARTING)
		dboid = InvalidOid;		/* given up on by its callers */
	else
		dboid = calls_shared->recorders[slot].dboid;
	SpinLockRelease(&calls_shared->mutex);
	if (!OidIsValid(dboid))
		proc_exit(0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("telnyx_orders call recorder");
	store_pin_settings();
	SetConfigOption("lock_timeout", CALLS_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);

	SpinLockAcquire(&calls_shared->mutex);
	if (calls_shared->recorders[slot].generation == my_generation)
	{
		calls_shared->recorders[slot].latch = MyLatch;
		calls_shared->recorders[slot].state = RECORDER_READY;
	}
	else
		dboid = InvalidOid;
	SpinLockRelease(&calls_shared->mutex);
	if (!OidIsValid(dboid))
		proc_exit(0);

	recorder_loop();
	proc_exit(0);
}

/*
 * Record the cells queued on this recorder, one transaction each, until
 * idle for CALLS_IDLE_MS or the database is wanted; leave the slot free.
 */
static void
recorder_loop(void)
{
	RecorderSlot *slot = &calls_shared->recorders[my_recorder];
	TimestampTz idle_since = GetCurrentTimestamp();

	for (;;)
	{
		int			i;
		bool		leave = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		SpinLockAcquire(&calls_shared->mutex);
		i = slot->head;
		if (i >= 0)
		{
			slot->head = cell_at(i)->next;
			if (slot->head < 0)
				slot->tail = -1;
			if (cell_at(i)->abandoned)
			{
				/* its caller gave up before it was taken: nothing to record */
				cell_at(i)->state = CELL_FREE;
				SpinLockRelease(&calls_shared->mutex);
				continue;
			}
			slot->current = i;
			cell_at(i)->state = CELL_RECORDING;
		}
		SpinLockRelease(&calls_shared->mutex);

		if (i >= 0)
		{
			CallCell   *cell = cell_at(i);
			Latch	   *caller = NULL;

			/* an error fails this call only */
			PG_TRY();
			{
				recorder_write_cell(&cell->rec);
			}
			PG_CATCH();
			{
				HOLD_INTERRUPTS();
				MemoryContextSwitchTo(TopMemoryContext);
				EmitErrorReport();
				AbortOutOfAnyTransaction();
				FlushErrorState();
				pgstat_report_activity(STATE_IDLE, NULL);
				cell->rec.outcome = CALL_FAILED;
				RESUME_INTERRUPTS();
			}
			PG_END_TRY();
			SpinLockAcquire(&calls_shared->mutex);
			slot->current = -1;
			if (cell->abandoned)
				cell->state = CELL_FREE;
			else
			{
				cell->state = CELL_DONE;
				caller = cell->caller;
			}
			SpinLockRelease(&calls_shared->mutex);
			if (caller != NULL)
				SetLatch(caller);
			idle_since = GetCurrentTimestamp();
			continue;
		}

		if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
									   CALLS_IDLE_MS) ||
			wakeup_database_wanted())
		{
			/* leave only with nothing queued: a caller queues on READY */
			SpinLockAcquire(&calls_shared->mutex);
			if (slot->head < 0)
			{
				slot->state = RECORDER_FREE;
				leave = true;
			}
			SpinLockRelease(&calls_shared->mutex);
			if (leave)
				return;
			continue;
		}

		pgstat_report_stat(true);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * A recorder ends (idle, an error, a signal): the calls it holds fail, and
 * its slot is free for the next call to start one.
 */
static void
recorder_exit(int code, Datum arg)
{
	RecorderSlot *slot = &calls_shared->recorders[my_recorder];
	Latch	   *callers[CALLS_CELLS];
	int			n = 0;
	int			c;

	SpinLockAcquire(&calls_shared->mutex);
	if (slot->generation == my_generation)
	{
		if (slot->current >= 0)
		{
			c = slot->current;
			cell_at(c)->next = slot->head;
			slot->head = c;
			slot->current = -1;
		}
		for (c = slot->head; c >= 0;)
		{
			CallCell   *cell = cell_at(c);
			int			next = cell->next;

			if (cell->abandoned)
				cell->state = CELL_FREE;
			else
			{
				cell->rec.outcome = CALL_FAILED;
				cell->state = CELL_DONE;
				callers[n++] = cell->caller;
			}
			cell->next = -1;
			c = next;
		}
		slot->head = slot->tail = -1;
		slot->state = RECORDER_FREE;
	}
	SpinLockRelease(&calls_shared->mutex);
	for (c = 0; c < n; c++)
		SetLatch(callers[c]);
}

/* A cell's call, its body inline or in the caller's segment. */
static void
recorder_write_cell(CallRecord *rec)
{
	dsm_segment *seg;
	const char *p;

	if (rec->body_segment == 0)
	{
		recorder_write(rec, rec->body);
		return;
	}
	seg = dsm_attach(rec->body_segment);
	if (seg == NULL)
	{
		rec->outcome = CALL_FAILED;	/* the caller went away */
		return;
	}
	/* attached outside a transaction: detached here, on an error too */
	PG_TRY();
	{
		p = dsm_segment_address(seg);
		if (dsm_segment_map_length(seg) < CALLS_KEY_LEN + rec->body_len + 1 ||
			strncmp(p, rec->request_key, CALLS_KEY_LEN) != 0)
			rec->outcome = CALL_FAILED; /* not the call's segment */
		else
			recorder_write(rec, p + CALLS_KEY_LEN);
	}
	PG_FINALLY();
	{
		dsm_detach(seg);
	}
	PG_END_TRY();
}

/*
 * Record one call (or that Telnyx refused it) in a transaction of its own,
 * and set its outcome.
 */
static void
recorder_write(CallRecord *rec, const char *body)
{
	bool		over_limit = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* the spend guard reads its counts after its lock: each statement anew */
	XactIsoLevel = XACT_READ_COMMITTED;
	/* the call is sent once this returns: its commit must be durable */
	store_durable_commit();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "recording an order call");
	if (rec->refused_by_telnyx)
	{
		Oid			role;
		TimestampTz at;
		Jsonb	   *sent;

		/* its count comes back, once */
		if (store_call_refused(rec->request_key, &role, &at, &sent))
			spend_give_back(role, at, spend_numbers(sent));
	}
	else if (!spend_call_allowed(rec->role, rec->numbers, rec->reason))
		over_limit = true;
	else
		store_record_call(rec->request_key, body, rec->role);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	pg_write_barrier();
	rec->outcome = over_limit ? CALL_OVER_LIMIT : CALL_RECORDED;
}
