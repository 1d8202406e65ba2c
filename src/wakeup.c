/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  The workers' shared registry: waking a database's worker when a
 *	  transaction that enqueued commits, one worker per database, and
 *	  what each shows of itself.
 *
 * Shared memory holds one slot per running worker: its database, its
 * latch, the launcher generation that started it, and its status.  A worker
 * publishes its slot when it starts and clears it when it exits.  A worker
 * takes its database's slot only once no other worker holds it; a launcher
 * that starts (after the previous one was terminated) begins a new
 * generation, and a worker of an older one stops: so there is exactly one
 * worker per database, whatever happens to the launcher.
 *
 * A transaction that enqueued arms a commit hook (wakeup_at_commit); at
 * commit the hook sets the latch of its database's worker, so the request
 * goes out within milliseconds rather than at the next naptime.  A transaction that aborts or is prepared wakes nobody; a
 * COMMIT PREPARED wakes its database's worker (it cannot know whether the
 * prepared transaction enqueued, and a needless look costs little).
 *
 * The slots are read and written under a spinlock; a latch is set only
 * after the spinlock is released, as WalSndWakeup does, since setting a
 * latch may make a system call.
 *
 * The registry also remembers, for the last WAKEUP_ANSWERED orders that
 * answered a request or call of any database of the cluster, which
 * database placed it: reconciliation in another database never takes such
 * an order for its own (the account's list cannot tell who placed it).
 * It lasts until the server restarts.
 *
 * Without shared_preload_libraries there is no shared memory and no
 * worker: waking is then a no-op, and no order is remembered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#else
#include "pgstat.h"
#endif

#include "compat.h"
#include "wakeup.h"

/* Orders remembered with the database that placed them. */
#define WAKEUP_ANSWERED 4096

/*---- Local types ----*/

typedef struct WakeupSlot
{
	Latch	   *latch;			/* NULL: the slot is free */
	uint32		generation;		/* of the launcher that started it */
	WakeupWorker status;		/* its database, pid, ... */
} WakeupSlot;

typedef struct WakeupShared
{
	slock_t		mutex;
	uint32		generation;		/* of the running launcher */
	Latch	   *launcher_latch; /* NULL when no launcher runs */
	bool		restart_requested;
	WakeupSlot	slots[WAKEUP_MAX_WORKERS];
	/* orders that answered a request or call, by a hash of their id */
	slock_t		answered_mutex;
	int			answered_next;	/* the oldest, replaced next */
	uint64		answered_ids[WAKEUP_ANSWERED];	/* 0: free */
	Oid			answered_dbs[WAKEUP_ANSWERED];
} WakeupShared;

/*---- Local variables ----*/

static WakeupShared *wakeup_shared = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* This process's slot, when it is a worker. */
static WakeupSlot *my_slot = NULL;

/* Did the current transaction enqueue?  (Read at commit.) */
static bool armed = false;
static bool xact_callback_registered = false;

/*---- Function declarations ----*/

#if PG_VERSION_NUM >= 150000
static void wakeup_shmem_request(void);
#endif
static void wakeup_shmem_startup(void);
static void wakeup_unregister_worker(int code, Datum arg);
static void wakeup_unregister_launcher(int code, Datum arg);
static void wakeup_xact_callback(XactEvent event, void *arg);
static uint64 wakeup_order_hash(const char *order_id);
static void wakeup_process_utility(PlannedStmt *pstmt, const char *queryString,
								   COMPAT_READONLYTREE_PARAM
								   ProcessUtilityContext context,
								   ParamListInfo params,
								   QueryEnvironment *queryEnv,
								   DestReceiver *dest, QueryCompletion *qc);

/*
 * wakeup_init
 *		From _PG_init while shared_preload_libraries are loaded: ask for
 *		the slots' shared memory, and watch for COMMIT PREPARED.
 */
void
wakeup_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wakeup_shmem_request;
#else
	RequestAddinShmemSpace(MAXALIGN(sizeof(WakeupShared)));
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wakeup_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = wakeup_process_utility;
}

/* After COMMIT PREPARED, the prepared transaction's enqueues are visible. */
static void
wakeup_process_utility(PlannedStmt *pstmt, const char *queryString,
					   COMPAT_READONLYTREE_PARAM ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		commit_prepared = IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED;

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, COMPAT_READONLYTREE_ARG context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, COMPAT_READONLYTREE_ARG context,
								params, queryEnv, dest, qc);
	if (commit_prepared)
		wakeup_now(MyDatabaseId);
}

#if PG_VERSION_NUM >= 150000
static void
wakeup_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WakeupShared)));
}
#endif

static void
wakeup_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wakeup_shared = ShmemInitStruct("telnyx_orders", sizeof(WakeupShared), &found);
	if (!found)
	{
		memset(wakeup_shared, 0, sizeof(WakeupShared));
		SpinLockInit(&wakeup_shared->mutex);
		SpinLockInit(&wakeup_shared->answered_mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * wakeup_register_launcher
 *		Begin a new generation of workers, led by this process, until it
 *		exits; wake the workers of the previous one, so that they stop.
 *		Returns the generation.
 */
uint32
wakeup_register_launcher(void)
{
	Latch	   *latches[WAKEUP_MAX_WORKERS];
	uint32		generation;
	int			n = 0;
	int			i;

	SpinLockAcquire(&wakeup_shared->mutex);
	generation = ++wakeup_shared->generation;
	wakeup_shared->launcher_latch = MyLatch;
	wakeup_shared->restart_requested = false;
	for (i = 0; i < WAKEUP_MAX_WORKERS; i++)
		if (wakeup_shared->slots[i].latch != NULL)
			latches[n++] = wakeup_shared->slots[i].latch;
	SpinLockRelease(&wakeup_shared->mutex);
	on_shmem_exit(wakeup_unregister_launcher, (Datum) 0);

	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
	return generation;
}

static void
wakeup_unregister_launcher(int code, Datum arg)
{
	SpinLockAcquire(&wakeup_shared->mutex);
	if (wakeup_shared->launcher_latch == MyLatch)
		wakeup_shared->launcher_latch = NULL;
	SpinLockRelease(&wakeup_shared->mutex);
}

/*
 * wakeup_take_restart_request
 *		For the launcher: was a restart of the workers asked for since it
 *		last looked?
 */
bool
wakeup_take_restart_request(void)
{
	bool		requested;

	SpinLockAcquire(&wakeup_shared->mutex);
	requested = wakeup_shared->restart_requested;
	wakeup_shared->restart_requested = false;
	SpinLockRelease(&wakeup_shared->mutex);
	return requested;
}

/*
 * wakeup_request_restart
 *		Ask the launcher to stop its workers and start them again; false if
 *		no launcher runs (or the library is not preloaded).
 */
bool
wakeup_request_restart(void)
{
	Latch	   *latch;

	if (wakeup_shared == NULL)
		return false;
	SpinLockAcquire(&wakeup_shared->mutex);
	latch = wakeup_shared->launcher_latch;
	if (latch != NULL)
		wakeup_shared->restart_requested = true;
	SpinLockRelease(&wakeup_shared->mutex);
	if (latch == NULL)
		return false;
	SetLatch(latch);
	return true;
}

/*
 * wakeup_register_worker
 *		Publish this process's latch as its database's worker, until it
 *		exits.  While another worker holds the database (one of an older
 *		generation, finishing what it has in flight), wait for it to go.
 *		Returns false, holding nothing, if generation is no longer the
 *		launcher's (this worker must stop).
 */
bool
wakeup_register_worker(uint32 generation)
{
	for (;;)
	{
		WakeupSlot *free_slot = NULL;
		bool		held = false;
		bool		current;
		int			i;

		SpinLockAcquire(&wakeup_shared->mutex);
		current = wakeup_shared->generation == generation;
		for (i = 0; i < WAKEUP_MAX_WORKERS && current; i++)
		{
			WakeupSlot *slot = &wakeup_shared->slots[i];

			if (slot->latch == NULL)
			{
				if (free_slot == NULL)
					free_slot = slot;
			}
			else if (slot->status.dboid == MyDatabaseId)
				held = true;
		}
		if (current && !held && free_slot != NULL)
		{
			memset(free_slot, 0, sizeof(WakeupSlot));
			free_slot->latch = MyLatch;
			free_slot->generation = generation;
			free_slot->status.dboid = MyDatabaseId;
			free_slot->status.pid = MyProcPid;
			free_slot->status.started_at = GetCurrentTimestamp();
			my_slot = free_slot;
		}
		SpinLockRelease(&wakeup_shared->mutex);

		if (!current)
			return false;
		if (my_slot != NULL)
		{
			on_shmem_exit(wakeup_unregister_worker, (Datum) 0);
			return true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
wakeup_unregister_worker(int code, Datum arg)
{
	SpinLockAcquire(&wakeup_shared->mutex);
	if (my_slot != NULL && my_slot->latch == MyLatch)
	{
		my_slot->latch = NULL;
		my_slot->status.dboid = InvalidOid;
	}
	SpinLockRelease(&wakeup_shared->mutex);
	my_slot = NULL;
}

/*
 * wakeup_worker_current
 *		Is this worker of the running launcher's generation?  (A process
 *		that is not a registered worker always is.)
 */
bool
wakeup_worker_current(void)
{
	bool		current;

	if (my_slot == NULL)
		return true;
	SpinLockAcquire(&wakeup_shared->mutex);
	current = my_slot->generation == wakeup_shared->generation;
	SpinLockRelease(&wakeup_shared->mutex);
	return current;
}

/*
 * wakeup_report
 *		Publish this worker's status: why it waits ("" if it does not),
 *		until when it is rate limited (0 if not), and orders created to add
 *		to its count.  (Its 429s are counted as they arrive.)
 */
void
wakeup_report(const char *paused, TimestampTz rate_limited_until, int sent)
{
	TimestampTz now = sent > 0 ? GetCurrentTimestamp() : 0;

	if (my_slot == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->mutex);
	strlcpy(my_slot->status.paused, paused, sizeof(my_slot->status.paused));
	my_slot->status.rate_limited_until = rate_limited_until;
	my_slot->status.sent += sent;
	if (sent > 0)
		my_slot->status.last_sent_at = now;
	SpinLockRelease(&wakeup_shared->mutex);
}

/*
 * wakeup_workers
 *		Copy the status of up to max running workers into out; returns how
 *		many, or -1 without shared_preload_libraries (no worker can run).
 */
int
wakeup_workers(WakeupWorker *out, int max)
{
	int			n = 0;
	int			i;

	if (wakeup_shared == NULL)
		return -1;
	SpinLockAcquire(&wakeup_shared->mutex);
	for (i = 0; i < WAKEUP_MAX_WORKERS && n < max; i++)
		if (wakeup_shared->slots[i].latch != NULL)
			out[n++] = wakeup_shared->slots[i].status;
	SpinLockRelease(&wakeup_shared->mutex);
	return n;
}

/*
 * wakeup_note_rate_limited
 *		Count a 429 in this worker's status (a no-op elsewhere).
 */
void
wakeup_note_rate_limited(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (wakeup_shared == NULL || my_slot == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->mutex);
	my_slot->status.rate_limited++;
	my_slot->status.last_rate_limited_at = now;
	SpinLockRelease(&wakeup_shared->mutex);
}

/*
 * wakeup_now
 *		Set the latch of database dboid's worker, if one runs.
 */
void
wakeup_now(Oid dboid)
{
	Latch	   *latches[WAKEUP_MAX_WORKERS];
	int			n = 0;
	int			i;

	if (wakeup_shared == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->mutex);
	for (i = 0; i < WAKEUP_MAX_WORKERS; i++)
		if (wakeup_shared->slots[i].status.dboid == dboid && wakeup_shared->slots[i].latch)
			latches[n++] = wakeup_shared->slots[i].latch;
	SpinLockRelease(&wakeup_shared->mutex);

	/* after the spinlock: setting a latch may make a system call */
	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
}

/*
 * wakeup_at_commit
 *		Wake this database's worker when the current transaction commits.
 */
void
wakeup_at_commit(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wakeup_xact_callback, NULL);
		xact_callback_registered = true;
	}
	armed = true;
}

static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	if (!armed)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			armed = false;
			wakeup_now(MyDatabaseId);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			armed = false;
			break;
		default:
			break;
	}
}

/*
 * wakeup_note_order
 *		Remember that order_id answered a request or call of this database.
 */
void
wakeup_note_order(const char *order_id)
{
	uint64		h = wakeup_order_hash(order_id);
	int			i;

	if (wakeup_shared == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->answered_mutex);
	i = wakeup_shared->answered_next;
	wakeup_shared->answered_ids[i] = h;
	wakeup_shared->answered_dbs[i] = MyDatabaseId;
	wakeup_shared->answered_next = (i + 1) % WAKEUP_ANSWERED;
	SpinLockRelease(&wakeup_shared->answered_mutex);
}

/*
 * wakeup_order_elsewhere
 *		Did order_id answer a request or call of another database of this
 *		cluster (as far as the registry remembers)?
 */
bool
wakeup_order_elsewhere(const char *order_id)
{
	uint64		h = wakeup_order_hash(order_id);
	bool		elsewhere = false;
	int			i;

	if (wakeup_shared == NULL)
		return false;
	SpinLockAcquire(&wakeup_shared->answered_mutex);
	for (i = 0; i < WAKEUP_ANSWERED && !elsewhere; i++)
		elsewhere = wakeup_shared->answered_ids[i] == h &&
			wakeup_shared->answered_dbs[i] != MyDatabaseId;
	SpinLockRelease(&wakeup_shared->answered_mutex);
	return elsewhere;
}

/* A hash of an order id, never 0 (a free entry). */
static uint64
wakeup_order_hash(const char *order_id)
{
	uint64		h = hash_bytes_extended((const unsigned char *) order_id,
										strlen(order_id), 0);

	return h == 0 ? 1 : h;
}

/*
 * wakeup_database_wanted
 *		For a process of the extension connected to a database: does
 *		another session want it to itself (DROP DATABASE holds an exclusive lock on it
 *		while it waits for sessions to leave)?  It then leaves.
 */
bool
wakeup_database_wanted(void)
{
	LOCKTAG		tag;
	LockAcquireResult res;

	StartTransactionCommand();
	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	res = LockAcquire(&tag, AccessShareLock, false, true);
	if (res != LOCKACQUIRE_NOT_AVAIL)
		LockRelease(&tag, AccessShareLock, false);
	CommitTransactionCommand();
	return res == LOCKACQUIRE_NOT_AVAIL;
}
