/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The record of orders is never dropped by a side door.
 *
 * The tables of orders (the orders, their groups, number orders and
 * numbers) and the queue's unfinished requests are what was bought and
 * what may still be bought: dropping them forgets money spent.  Many
 * commands drop them besides DROP EXTENSION telnyx_orders: DROP SCHEMA ...
 * CASCADE, DROP OWNED BY the extension's owner, DROP EXTENSION plpgsql
 * CASCADE (a member of ours depends on plpgsql, so the whole extension
 * goes), DROP TABLE after ALTER EXTENSION ... DROP TABLE.  So the guard
 * looks at what is dropped, not at the command: an object_access_hook
 * sees every object as it is deleted (OAT_DROP, before the deletion) and
 * refuses the drop of one of these tables while it holds such a row,
 * unless telnyx.allow_drop is on.  An empty install can always be dropped.
 *
 * The hook is installed when the library is loaded: at server start with
 * shared_preload_libraries (as the worker needs), or else by the
 * extension's event trigger, which is in C and fires at the start of every
 * command, before anything is dropped.
 *
 * The contents are read with a plain scan under the lock the drop already
 * holds (AccessExclusiveLock): no SQL runs in the middle of a deletion,
 * whose other objects (indexes, functions, plpgsql) may be gone already.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "guard.h"
#include "store.h"

/*---- GUC variables ----*/

bool		telnyx_allow_drop = false;

/*---- Local variables ----*/

static object_access_hook_type prev_object_access_hook = NULL;

/* The tables whose every row is the record of an order. */
static const char *const guarded_tables[] = {
	"telnyx_inexplicit_orders",
	"telnyx_ordering_groups",
	"telnyx_number_orders",
	"telnyx_phone_numbers",
};

/* The queue, whose rows in a state not finished are still to be sent. */
#define GUARD_QUEUE_TABLE "telnyx_order_requests"

/*---- Function declarations ----*/

static void guard_object_access(ObjectAccessType access, Oid classId,
								Oid objectId, int subId, void *arg);
static bool guard_holds_record(Relation rel, bool queue);

/*
 * guard_init
 *		From _PG_init: telnyx.allow_drop, and the hook that guards the
 *		tables.
 */
void
guard_init(void)
{
	DefineCustomBoolVariable("telnyx.allow_drop",
							 "Allow the tables that record orders to be dropped while they hold any.",
							 "Dropping the extension (or anything it depends on, with CASCADE) deletes its tables: the record of every order bought.",
							 &telnyx_allow_drop,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = guard_object_access;
}

/*
 * Before a relation is deleted: refuse if it is one of the extension's
 * tables of orders (by name, in the extension's schema, member or not) and
 * holds a row of the record.
 */
static void
guard_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access == OAT_DROP && classId == RelationRelationId && subId == 0 &&
		!telnyx_allow_drop && get_rel_relkind(objectId) == RELKIND_RELATION)
	{
		char	   *relname = get_rel_name(objectId);
		bool		queue;
		bool		ours = false;
		Oid			extoid;
		char	   *schema;
		Relation	rel;
		bool		holds;
		int			i;

		if (relname == NULL)
			return;
		queue = strcmp(relname, GUARD_QUEUE_TABLE) == 0;
		for (i = 0; i < lengthof(guarded_tables) && !queue && !ours; i++)
			ours = strcmp(relname, guarded_tables[i]) == 0;
		if (!ours && !queue)
			return;
		extoid = get_extension_oid("telnyx_orders", true);
		if (!OidIsValid(extoid))
			return;
		if (get_rel_namespace(objectId) != store_namespace())
			return;
		schema = get_namespace_name(get_rel_namespace(objectId));

		rel = table_open(objectId, AccessShareLock);
		holds = guard_holds_record(rel, queue);
		table_close(rel, AccessShareLock);
		if (holds)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop table %s.%s because it holds the record of %s",
							schema, relname,
							queue ? "requests not yet finished" : "orders bought"),
					 errdetail("Whatever command drops it (DROP EXTENSION, DROP SCHEMA ... CASCADE, DROP OWNED, a CASCADE from an object it depends on), the orders bought and paid for would be forgotten."),
					 errhint("Keep a copy first (pg_dump --table '%s.telnyx_*'), then run \"SET telnyx.allow_drop = on\" in this session and drop it again.",
							 schema)));
	}
}

/*
 * Does rel hold a row of the record: any row, or (queue) a request whose
 * state is not sent, failed, cancelled or dry_run?  Read with the latest snapshot:
 * the drop holds the table's AccessExclusiveLock, so no other writer is
 * still at work on it.
 */
static bool
guard_holds_record(Relation rel, bool queue)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	AttrNumber	state = InvalidAttrNumber;
	bool		holds = false;
	int			i;

	if (queue)
	{
		TupleDesc	desc = RelationGetDescr(rel);

		for (i = 0; i < desc->natts; i++)
			if (!TupleDescAttr(desc, i)->attisdropped &&
				strcmp(NameStr(TupleDescAttr(desc, i)->attname), "state") == 0)
				state = i + 1;
	}

	while (!holds && table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;
		char	   *s;

		if (state == InvalidAttrNumber)
		{
			holds = true;
			break;
		}
		d = slot_getattr(slot, state, &isnull);
		if (isnull)
			continue;
		s = TextDatumGetCString(d);
		holds = strcmp(s, "sent") != 0 && strcmp(s, "failed") != 0 &&
			strcmp(s, "cancelled") != 0 && strcmp(s, "dry_run") != 0;
		pfree(s);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	return holds;
}
