/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one worker (worker.c) for each database to serve.
 *
 * With telnyx_orders in shared_preload_libraries, the launcher starts at
 * server start, once recovery has finished.  It is connected to no
 * database.  For each database named in telnyx.database that exists, it
 * keeps one worker running (a dynamic background worker, told to report
 * to the launcher), and starts it again, at most every five seconds, if it
 * stops; a database no longer listed loses its worker.  It reads the list
 * again on SIGHUP.  A launcher that starts after another was terminated
 * takes over: the workers of the one before stop (wakeup.c), and it starts
 * its own, so that a database never has two.  telnyx_restart_workers()
 * asks it to stop its workers and start them again at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "launcher.h"
#include "wakeup.h"

/* Workers the launcher keeps at most (databases in telnyx.database). */
#define LAUNCHER_MAX_DATABASES WAKEUP_MAX_WORKERS

/* The least time between two starts of a worker for the same database. */
#define LAUNCHER_RESTART_INTERVAL_MS 5000

/*---- GUC variables ----*/

static char *telnyx_database = NULL;

/*---- Function declarations ----*/

PGDLLEXPORT void telnyx_launcher_main(Datum arg);

static Oid	launcher_database_oid(const char *name);
static bool launcher_listed(List *names, const char *name);
static void launcher_stop_worker(BackgroundWorkerHandle **handle, bool wait);
static bool launcher_start_worker(Oid dboid, uint32 generation,
								  BackgroundWorkerHandle **handle);

/*
 * launcher_init
 *		From _PG_init: the databases to serve; while shared_preload_libraries
 *		are loaded, also the wake-up slots' shared memory and the launcher.
 */
void
launcher_init(void)
{
	BackgroundWorker bgw;

	DefineCustomStringVariable("telnyx.database",
							   "Databases whose queue the background worker sends (comma-separated).",
							   NULL,
							   &telnyx_database,
							   "postgres",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	wakeup_init();

	launcher_describe(&bgw, "telnyx_launcher_main", "telnyx_orders launcher",
					  BgWorkerStart_RecoveryFinished, 10, (Datum) 0);
	bgw.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&bgw);
}

/*
 * telnyx_launcher_main
 *		Keep one worker running for each database of telnyx.database.
 */
void
telnyx_launcher_main(Datum arg)
{
	struct
	{
		char		name[NAMEDATALEN];
		BackgroundWorkerHandle *handle;
		TimestampTz last_start;
	}			dbs[LAUNCHER_MAX_DATABASES];
	int			ndbs = 0;
	uint32		generation;

	memset(dbs, 0, sizeof(dbs));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("telnyx_orders launcher");
	/* workers of a launcher before this one stop; this one starts its own */
	generation = wakeup_register_launcher();

	for (;;)
	{
		char	   *list;
		List	   *names = NIL;
		ListCell   *lc;
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* telnyx_restart_workers(): stop every worker, start them at once */
		if (wakeup_take_restart_request())
		{
			ereport(LOG,
					(errmsg("telnyx_orders launcher restarts its workers, as asked")));
			for (i = 0; i < ndbs; i++)
			{
				launcher_stop_worker(&dbs[i].handle, true);
				dbs[i].last_start = 0;
			}
		}

		list = pstrdup(telnyx_database ? telnyx_database : "");
		if (!SplitIdentifierString(list, ',', &names))
		{
			ereport(LOG,
					(errmsg("telnyx_orders launcher: invalid list syntax in telnyx.database")));
			names = NIL;
		}

		foreach(lc, names)
		{
			const char *name = (const char *) lfirst(lc);
			Oid			dboid;
			int			slot = -1;
			pid_t		pid;

			for (i = 0; i < ndbs; i++)
				if (strcmp(dbs[i].name, name) == 0)
					slot = i;
			if (slot < 0)
			{
				if (ndbs == LAUNCHER_MAX_DATABASES)
					continue;
				slot = ndbs++;
				strlcpy(dbs[slot].name, name, NAMEDATALEN);
			}
			if (dbs[slot].handle != NULL &&
				GetBackgroundWorkerPid(dbs[slot].handle, &pid) != BGWH_STOPPED)
				continue;
			if (!TimestampDifferenceExceeds(dbs[slot].last_start, GetCurrentTimestamp(),
											LAUNCHER_RESTART_INTERVAL_MS))
				continue;

			dboid = launcher_database_oid(name);
			if (!OidIsValid(dboid))
				continue;

			dbs[slot].last_start = GetCurrentTimestamp();
			if (!launcher_start_worker(dboid, generation, &dbs[slot].handle))
				ereport(LOG,
						(errmsg("telnyx_orders launcher could not start a worker for database \"%s\"", name),
						 errhint("Raise max_worker_processes.")));
		}
		/* a database no longer listed loses its worker */
		for (i = 0; i < ndbs; i++)
			if (!launcher_listed(names, dbs[i].name))
				launcher_stop_worker(&dbs[i].handle, false);
		pfree(list);
		list_free(names);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_RESTART_INTERVAL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * launcher_unserved_reason
 *		NULL when a worker runs for the current database; otherwise why no
 *		background worker sends its queue.
 */
const char *
launcher_unserved_reason(void)
{
	return launcher_unserved(NULL);
}

/*
 * launcher_unserved
 *		As launcher_unserved_reason; *kind (when not NULL) says which case
 *		it is.
 */
const char *
launcher_unserved(LauncherUnserved *kind)
{
	WakeupWorker workers[WAKEUP_MAX_WORKERS];
	const char *dbname;
	char	   *list;
	List	   *names = NIL;
	int			n;
	int			i;
	LauncherUnserved dummy;

	if (kind == NULL)
		kind = &dummy;
	*kind = LAUNCHER_NOT_PRELOADED;
	n = wakeup_workers(workers, WAKEUP_MAX_WORKERS);
	if (n < 0)
		return "telnyx_orders is not in shared_preload_libraries, so no background worker runs: add it and restart the server";
	*kind = LAUNCHER_SERVED;
	for (i = 0; i < n; i++)
		if (workers[i].dboid == MyDatabaseId)
			return NULL;

	*kind = LAUNCHER_NOT_LISTED;
	dbname = get_database_name(MyDatabaseId);

	list = pstrdup(telnyx_database ? telnyx_database : "");
	if (!SplitIdentifierString(list, ',', &names) || dbname == NULL ||
		!launcher_listed(names, dbname))
		return psprintf("database \"%s\" is not in telnyx.database, so no background worker sends its queue: add it and reload",
						dbname ? dbname : "?");
	*kind = LAUNCHER_NOT_RUNNING;
	return psprintf("the background worker of database \"%s\" is not running (it may be starting; see the server log)",
					dbname ? dbname : "?");
}

/* Is name among names (of telnyx.database)? */
static bool
launcher_listed(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/* Stop the worker of *handle, if any (waiting until it is gone, if wait). */
static void
launcher_stop_worker(BackgroundWorkerHandle **handle, bool wait)
{
	if (*handle == NULL)
		return;
	TerminateBackgroundWorker(*handle);
	if (wait)
		(void) WaitForBackgroundWorkerShutdown(*handle);
	pfree(*handle);
	*handle = NULL;
}

/*
 * The oid of database name, or InvalidOid.  The launcher is connected to no
 * database, so it reads pg_database with a plain heap scan, as the
 * autovacuum launcher does (an index scan would need pg_class).
 */
static Oid
launcher_database_oid(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			result = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return result;
}

/*
 * Start a worker for dboid, of this launcher's generation; the launcher is
 * told when it stops.
 */
static bool
launcher_start_worker(Oid dboid, uint32 generation, BackgroundWorkerHandle **handle)
{
	BackgroundWorker bgw;

	launcher_describe(&bgw, "telnyx_worker_main", "telnyx_orders worker",
					BgWorkerStart_RecoveryFinished, BGW_NEVER_RESTART,
					ObjectIdGetDatum(dboid));
	memcpy(bgw.bgw_extra, &generation, sizeof(generation));
	return RegisterDynamicBackgroundWorker(&bgw, handle);
}

/*
 * launcher_describe
 *		Fill bgw for one of the extension's background workers (the
 *		launcher, a worker, a call recorder), connected to a database,
 *		reporting to this process.
 */
void
launcher_describe(BackgroundWorker *bgw, const char *function, const char *name,
				BgWorkerStartTime start, int restart, Datum arg)
{
	memset(bgw, 0, sizeof(*bgw));
	bgw->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw->bgw_start_time = start;
	bgw->bgw_restart_time = restart;
	strlcpy(bgw->bgw_library_name, "telnyx_orders", BGW_MAXLEN);
	strlcpy(bgw->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(bgw->bgw_name, name, BGW_MAXLEN);
	strlcpy(bgw->bgw_type, name, BGW_MAXLEN);
	bgw->bgw_main_arg = arg;
	bgw->bgw_notify_pid = MyProcPid;
}

