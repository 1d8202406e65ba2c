/*-------------------------------------------------------------------------
 *
 * budget.c
 *	  The account's request budget: how many requests every process of the
 *	  cluster together may start, and the wait after a 429.
 *
 * Telnyx limits the account, not the database or the session: every
 * worker, call recorder and session of the cluster draws from one token
 * bucket in shared memory (telnyx.max_requests_per_second, in bursts of a
 * tenth of a second's worth), and after a 429 (or an answer saying the
 * window has no request left) nobody starts a request until the back-off
 * ends.  http.c asks before each request and reports each answer.
 *
 * Without shared_preload_libraries there is no shared memory: every
 * request is granted at once, and a back-off is the session's own retry
 * delay only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "budget.h"

/*---- Local types ----*/

typedef struct BudgetShared
{
	slock_t		mutex;
	double		tokens;			/* the bucket */
	TimestampTz filled_at;		/* when it was last filled (0: never) */
	TimestampTz backoff_until;	/* nobody starts a request before */
} BudgetShared;

/*---- GUC variables ----*/

static int	telnyx_max_requests_per_second = 0;

/*---- Local variables ----*/

static BudgetShared *budget_shared = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*---- Function declarations ----*/

#if PG_VERSION_NUM >= 150000
static void budget_shmem_request(void);
#endif
static void budget_shmem_startup(void);

/*
 * budget_init
 *		From _PG_init: the budget's setting, and, while shared_preload_libraries
 *		are loaded, its shared memory.
 */
void
budget_init(void)
{
	DefineCustomIntVariable("telnyx.max_requests_per_second",
							"Requests a second to Telnyx, for every process of the cluster together.",
							"Telnyx limits the account, not the database: every worker and session shares this budget.  0: no fixed budget; every process still waits together after a 429 or an answer with no request left in the window.",
							&telnyx_max_requests_per_second,
							0, 0, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = budget_shmem_request;
#else
	RequestAddinShmemSpace(MAXALIGN(sizeof(BudgetShared)));
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = budget_shmem_startup;
}

#if PG_VERSION_NUM >= 150000
static void
budget_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BudgetShared)));
}
#endif

static void
budget_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	budget_shared = ShmemInitStruct("telnyx_orders budget", sizeof(BudgetShared), &found);
	if (!found)
	{
		memset(budget_shared, 0, sizeof(BudgetShared));
		SpinLockInit(&budget_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * budget_take
 *		Take up to want requests from the account's budget:
 *		telnyx.max_requests_per_second (0: no limit), in bursts of up to a
 *		tenth of a second's worth (so that no second, however it is cut,
 *		sees much more than that), and nothing while a back-off lasts.
 *		Returns how many were granted; when fewer than want, *wait_ms says
 *		when to ask again.
 */
int
budget_take(int want, long *wait_ms)
{
	int			rate = telnyx_max_requests_per_second;
	TimestampTz now;
	int			granted;

	*wait_ms = 0;
	if (budget_shared == NULL || want <= 0)
		return Max(want, 0);
	now = GetCurrentTimestamp();
	SpinLockAcquire(&budget_shared->mutex);
	if (budget_shared->backoff_until > now)
	{
		*wait_ms = (long) ((budget_shared->backoff_until - now) / 1000) + 1;
		granted = 0;
	}
	else if (rate <= 0)
		granted = want;
	else
	{
		double		tokens = budget_shared->tokens;

		/* a burst is a tenth of a second's worth: any second stays within rate */
		double		burst = Max(1.0, rate / 10.0);

		if (budget_shared->filled_at == 0)
			tokens = burst;
		else
			tokens += (double) (now - budget_shared->filled_at) / 1000000.0 * rate;
		tokens = Min(tokens, burst);
		budget_shared->filled_at = now;
		granted = Min(want, (int) tokens);
		tokens -= granted;
		budget_shared->tokens = tokens;
		if (granted < want)
			*wait_ms = (long) ((1.0 - tokens) * 1000.0 / rate) + 1;
	}
	SpinLockRelease(&budget_shared->mutex);
	return granted;
}

/*
 * budget_back_off
 *		No process of the cluster starts a request for ms (after a 429, or
 *		an answer with no request left in the window).
 */
void
budget_back_off(double ms)
{
	TimestampTz now;

	if (budget_shared == NULL || ms <= 0)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&budget_shared->mutex);
	if (TimestampTzPlusMilliseconds(now, (int64) ms) > budget_shared->backoff_until)
		budget_shared->backoff_until = TimestampTzPlusMilliseconds(now, (int64) ms);
	SpinLockRelease(&budget_shared->mutex);
}
