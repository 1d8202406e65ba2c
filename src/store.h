/*-------------------------------------------------------------------------
 *
 * store.h
 *	  Reads and writes of the extension's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_STORE_H
#define TELNYX_STORE_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "api.h"

/* The search_path of every statement run as the extension. */
#define STORE_SEARCH_PATH "pg_catalog, pg_temp"

/* The caller's identity and settings, while acting as the extension. */
typedef struct StoreScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;		/* of the pinned search_path; -1 if it was
								 * pinned already */
} StoreScope;

/* What store_number_order did with an answer. */
typedef enum StoreFact
{
	STORE_FACT_APPLIED,			/* recorded */
	STORE_FACT_OLDER,			/* older than what is recorded: kept that */
	STORE_FACT_UNLINKED			/* no order links to it yet */
} StoreFact;

/* A synchronous call whose order is not recorded here (store_open_calls). */
typedef struct StoreCall
{
	char	   *request_key;
	Jsonb	   *body;
	TimestampTz sent_at;
	Oid			spent_by;		/* the role that spent, or 0 */
	bool		taken;			/* matched with an order already */
} StoreCall;

extern void store_pin_settings(void);
extern void store_durable_commit(void);
extern bool store_xact_ended(XactEvent event);
extern ErrorData *store_try(void (*fn) (void *arg), void *arg);

extern void store_init(void);
extern void store_order(TelnyxOrder *order, bool found_by_sync,
						Jsonb *request, const char *request_key);
extern void store_orders(List *orders, List *requests, List *request_keys,
						 bool found_by_sync, bool created);
extern StoreFact store_number_order(const TelnyxNumberOrder *no,
									 const TimestampTz *occurred_at);
extern bool store_webhook_delivery(const char *event_id, const char *event_type,
								   const TimestampTz *occurred_at,
								   const char *number_order_id);
extern void store_webhook_unapplied(const char *event_id);
extern List *store_claim_refresh(int max, int64 lease_ms, MemoryContext mcxt);
extern List *store_claim_number_orders(int max, int64 lease_ms, MemoryContext mcxt);
extern double store_next_refresh_ms(void);
extern List *store_orders_missing(List *orders);
extern void store_record_call(const char *request_key, const char *body,
							  Oid role);
extern bool store_call_refused(const char *request_key, Oid *role,
							   TimestampTz *at, Jsonb **body);
extern List *store_open_calls(List *references, bool without_reference);
extern bool store_lock(const char *id, bool number_order);
extern int	store_purge_history(TimestampTz cutoff, int max);
extern int	store_fetch_failed(const char *id, bool number_order);
extern void store_fetch_again_at(const char *id, bool number_order,
								 TimestampTz when);
extern char *store_schema_name(void);
extern Oid	store_namespace(void);
extern char *store_extension(Oid *owner, char **version);
extern char *store_require_version(bool want_version);
extern char *store_enter(StoreScope *scope);
extern void store_leave(StoreScope *scope);
extern char *store_begin(StoreScope *scope);
extern void store_end(StoreScope *scope);
extern double store_ms_until(TimestampTz when);

/* Statements kept at most by store_exec (every module's together). */
#define STORE_MAX_KEPT_PLANS 96

/* The most parameters of one statement. */
#define STORE_MAX_ARGS 36

/*
 * A statement's parameters: $1, $2, ... in the order store_arg,
 * store_arg_or_null and store_arg_text add them (or $n, by store_arg_at).
 * Starts zeroed: StoreArgs args = {0}.
 */
typedef struct StoreArgs
{
	int			n;
	Oid			types[STORE_MAX_ARGS];
	Datum		values[STORE_MAX_ARGS];
	char		nulls[STORE_MAX_ARGS];
} StoreArgs;

/*
 * Called by store_run for each row the statement returned, in the
 * caller's memory context (what it allocates outlives the statement).
 */
typedef void (*StoreRowFn) (HeapTuple tuple, TupleDesc desc, void *arg);

/* The first column of the first row, for store_row_value. */
typedef struct StoreValue
{
	bool		found;			/* a row was returned */
	bool		isnull;
	Datum		value;			/* of a fixed-size type */
} StoreValue;

extern void store_arg(StoreArgs *args, Oid type, Datum value);
extern void store_arg_or_null(StoreArgs *args, Oid type, Datum value,
							  bool isnull);
extern void store_arg_text(StoreArgs *args, const char *s);
extern void store_arg_at(StoreArgs *args, int n, Oid type, Datum value,
						 bool isnull);
extern Datum store_text_array(List *strings);
extern Datum store_int8_array(Datum *elems, int n);
extern void store_row_value(HeapTuple tuple, TupleDesc desc, void *arg);
extern void store_row_text(HeapTuple tuple, TupleDesc desc, void *arg);

/*
 * store_exec(schema, sql, args, expected)
 *		Between store_begin and store_end: run sql with args through a plan
 *		kept for the life of the process, found again by the address of its
 *		text: sql must be a string literal (a text built at run time does
 *		not compile).  See store_exec_kept.
 */
#define store_exec(schema, sql, args, expected) \
	store_exec_kept((schema), "" sql, (args), (expected))

/*
 * store_run(sql, args, expected, row, arg)
 *		One statement on its own: store_begin, store_exec, row(tuple, desc,
 *		arg) for each row returned (row may be NULL), store_end.  Returns
 *		how many rows it processed.
 */
#define store_run(sql, args, expected, row, arg) \
	store_run_kept("" sql, (args), (expected), (row), (arg))

extern void store_exec_kept(const char *schema, const char *sql,
							const StoreArgs *args, int expected);
extern uint64 store_run_kept(const char *sql, const StoreArgs *args,
							 int expected, StoreRowFn row, void *arg);
extern void store_exec_once(const char *schema, const char *sql, int expected);

#endif							/* TELNYX_STORE_H */
