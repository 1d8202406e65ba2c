/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waking a database's sender when a transaction that enqueued commits.
 *
 * Shared memory holds one slot per running sender: its database and its
 * latch.  A sender publishes its slot when it starts and clears it when it
 * exits.  A transaction that enqueued arms a commit hook
 * (wakeup_at_commit); at commit the hook sets the latch of its database's
 * sender, so the request goes out within milliseconds rather than at the
 * next naptime.  A transaction that aborts or is prepared wakes nobody; a
 * COMMIT PREPARED wakes its database's sender (it cannot know whether the
 * prepared transaction enqueued, and a needless look costs little).
 *
 * The slots are read and written under a spinlock; a latch is set only
 * after the spinlock is released, as WalSndWakeup does, since setting a
 * latch may make a system call.
 *
 * Without shared_preload_libraries there is no shared memory and no
 * sender: waking is then a no-op.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/utility.h"

#include "wakeup.h"

/*---- Local types ----*/

typedef struct WakeupSlot
{
	Oid			dboid;
	Latch	   *latch;
} WakeupSlot;

typedef struct WakeupShared
{
	slock_t		mutex;
	WakeupSlot	slots[WAKEUP_MAX_SENDERS];
} WakeupShared;

/*---- Local variables ----*/

static WakeupShared *wakeup_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility_hook = NULL;

/* Did the current transaction enqueue?  (Read at commit.) */
static bool armed = false;
static bool xact_callback_registered = false;

/*---- Function declarations ----*/

static void wakeup_shmem_request(void);
static void wakeup_shmem_startup(void);
static void wakeup_unregister_sender(int code, Datum arg);
static void wakeup_xact_callback(XactEvent event, void *arg);
static void wakeup_process_utility(PlannedStmt *pstmt, const char *queryString,
								   bool readOnlyTree,
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
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wakeup_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wakeup_shmem_startup;
	prev_process_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = wakeup_process_utility;
}

/* After COMMIT PREPARED, the prepared transaction's enqueues are visible. */
static void
wakeup_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		commit_prepared = IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED;

	if (prev_process_utility_hook)
		prev_process_utility_hook(pstmt, queryString, readOnlyTree, context,
								  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
	if (commit_prepared)
		wakeup_now(MyDatabaseId);
}

static void
wakeup_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(WakeupShared)));
}

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
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * wakeup_register_sender
 *		Publish this process's latch as its database's sender, until it
 *		exits.
 */
void
wakeup_register_sender(void)
{
	int			i;

	if (wakeup_shared == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->mutex);
	for (i = 0; i < WAKEUP_MAX_SENDERS; i++)
	{
		if (wakeup_shared->slots[i].latch == NULL)
		{
			wakeup_shared->slots[i].dboid = MyDatabaseId;
			wakeup_shared->slots[i].latch = MyLatch;
			break;
		}
	}
	SpinLockRelease(&wakeup_shared->mutex);
	on_shmem_exit(wakeup_unregister_sender, (Datum) 0);
}

static void
wakeup_unregister_sender(int code, Datum arg)
{
	int			i;

	SpinLockAcquire(&wakeup_shared->mutex);
	for (i = 0; i < WAKEUP_MAX_SENDERS; i++)
	{
		if (wakeup_shared->slots[i].latch == MyLatch)
		{
			wakeup_shared->slots[i].latch = NULL;
			wakeup_shared->slots[i].dboid = InvalidOid;
		}
	}
	SpinLockRelease(&wakeup_shared->mutex);
}

/*
 * wakeup_now
 *		Set the latch of database dboid's sender, if one runs.
 */
void
wakeup_now(Oid dboid)
{
	Latch	   *latches[WAKEUP_MAX_SENDERS];
	int			n = 0;
	int			i;

	if (wakeup_shared == NULL)
		return;
	SpinLockAcquire(&wakeup_shared->mutex);
	for (i = 0; i < WAKEUP_MAX_SENDERS; i++)
		if (wakeup_shared->slots[i].dboid == dboid && wakeup_shared->slots[i].latch)
			latches[n++] = wakeup_shared->slots[i].latch;
	SpinLockRelease(&wakeup_shared->mutex);

	/* after the spinlock: setting a latch may make a system call */
	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
}

/*
 * wakeup_at_commit
 *		Wake this database's sender when the current transaction commits.
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
