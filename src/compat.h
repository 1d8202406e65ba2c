/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  What differs between the PostgreSQL versions the extension builds
 *	  against (13 to 17), in one place.
 *
 * Tested with 15; built and run with 17 (see the README for what passes).
 * The rest follow the server's own headers: 15 added shmem_request_hook,
 * common/pg_prng.h and MarkGUCPrefixReserved (before it,
 * EmitWarningsOnPlaceholders); 14 gave ProcessUtility_hook its
 * readOnlyTree argument; 16 folded the ownership checks into
 * object_ownercheck; the version checks below say the rest.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_COMPAT_H
#define TELNYX_COMPAT_H

#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/datetime.h"
#include "utils/guc.h"

/* 14 added int64_to_numeric */
#if PG_VERSION_NUM < 140000
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#define int64_to_numeric(v) \
	DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(v)))
#endif

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#define compat_random_fraction() pg_prng_double(&pg_global_prng_state)
#else
#include <stdlib.h>
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#define compat_random_fraction() ((double) random() / ((double) MAX_RANDOM_VALUE + 1.0))
#endif

/* ownership checks: one function for every object from 16 on */
#if PG_VERSION_NUM >= 160000
#define compat_extension_ownercheck(oid, role) \
	object_ownercheck(ExtensionRelationId, (oid), (role))
#define compat_namespace_ownercheck(oid, role) \
	object_ownercheck(NamespaceRelationId, (oid), (role))
#else
#define compat_extension_ownercheck(oid, role) pg_extension_ownercheck((oid), (role))
#define compat_namespace_ownercheck(oid, role) pg_namespace_ownercheck((oid), (role))
#endif

/*
 * DecodeDateTime reports what made a date fail in a DateTimeErrorExtra from
 * 16 on; the caller only needs to know that it failed.
 */
static inline int
compat_decode_datetime(char **field, int *ftype, int nf, int *dtype,
					   struct pg_tm *tm, fsec_t *fsec, int *tzp)
{
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra = {0};

	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp, &extra);
#else
	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp);
#endif
}

/* 17 tells a background worker by its backend type */
#if PG_VERSION_NUM >= 170000
#define compat_am_background_worker() AmBackgroundWorkerProcess()
#else
#define compat_am_background_worker() IsBackgroundWorker
#endif

/*
 * The sequence of an identity column: 17 looks it up from the open
 * relation (to follow a partition to its parent).  The table stays locked
 * until the transaction ends, as the rows the caller inserts into it do.
 */
static inline Oid
compat_identity_sequence(Oid relid, AttrNumber attnum)
{
#if PG_VERSION_NUM >= 170000
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			seqid = getIdentitySequence(rel, attnum, false);

	table_close(rel, NoLock);
	return seqid;
#else
	return getIdentitySequence(relid, attnum, false);
#endif
}

/*
 * A setting's extra: the GUC code frees it with free() before 16 and with
 * guc_free() (its own memory context) from 16 on.
 */
#if PG_VERSION_NUM >= 160000
#define compat_guc_malloc(size) guc_malloc(LOG, (size))
#else
#define compat_guc_malloc(size) malloc(size)
#endif

/* ProcessUtility_hook has a readOnlyTree argument from 14 on */
#if PG_VERSION_NUM >= 140000
#define COMPAT_READONLYTREE_PARAM bool readOnlyTree,
#define COMPAT_READONLYTREE_ARG readOnlyTree,
#else
#define COMPAT_READONLYTREE_PARAM
#define COMPAT_READONLYTREE_ARG
#endif

/* 17 tracks a wait set with a resource owner, not a memory context. */
#if PG_VERSION_NUM >= 170000
#define COMPAT_CREATE_WAIT_EVENT_SET(cxt, n) CreateWaitEventSet(NULL, (n))
#else
#define COMPAT_CREATE_WAIT_EVENT_SET(cxt, n) CreateWaitEventSet((cxt), (n))
#endif

/* ReleaseCachedPlan takes the resource owner from 14 on (a flag before). */
#if PG_VERSION_NUM >= 140000
#define compat_release_cached_plan(cplan) ReleaseCachedPlan((cplan), CurrentResourceOwner)
#else
#define compat_release_cached_plan(cplan) ReleaseCachedPlan((cplan), true)
#endif

#endif							/* TELNYX_COMPAT_H */
