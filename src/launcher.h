/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher: one worker for each database to serve.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_LAUNCHER_H
#define TELNYX_LAUNCHER_H

#include "postmaster/bgworker.h"

/* Whether a background worker sends the current database's queue. */
typedef enum LauncherUnserved
{
	LAUNCHER_SERVED,
	LAUNCHER_NOT_PRELOADED,		/* not in shared_preload_libraries */
	LAUNCHER_NOT_LISTED,		/* not in telnyx.database */
	LAUNCHER_NOT_RUNNING		/* listed, but its worker is not running */
} LauncherUnserved;

extern void launcher_init(void);
extern const char *launcher_unserved_reason(void);
extern const char *launcher_unserved(LauncherUnserved *kind);
extern void launcher_describe(BackgroundWorker *bgw, const char *function,
							  const char *name, BgWorkerStartTime start,
							  int restart, Datum arg);

#endif							/* TELNYX_LAUNCHER_H */
