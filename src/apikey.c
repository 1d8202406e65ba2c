/*-------------------------------------------------------------------------
 *
 * apikey.c
 *	  The Telnyx API key: where it may come from, where it may be sent, and
 *	  keeping it out of every message.
 *
 * The key spends money, so it never travels as a setting's value, as
 * PostgreSQL itself never takes a private key, only ssl_key_file:
 *
 * - It comes from the file named by telnyx.api_key_file, which only the
 *   server's OS user may read (owned by it, no group or other permissions,
 *   as PostgreSQL asks of ssl_key_file), or from TELNYX_API_KEY in the
 *   server's environment.
 * - telnyx.api_key exists only to refuse every value but the empty string,
 *   wherever it is given (SET, set_config, ALTER SYSTEM, ALTER ROLE or
 *   DATABASE ... SET, a function's SET clause, a configuration file), with
 *   a hint to the file and without echoing the value.  A session that has
 *   not loaded the library cannot ask us: PostgreSQL then stores ALTER
 *   ROLE/DATABASE ... SET unchecked, in pg_db_role_setting, which every role
 *   can read.  So nothing is sent while a key sits there (checked before
 *   each request made in a transaction, and by the worker before each
 *   pass), and the error says how to remove it.  A function's SET clause is
 *   checked because an event trigger on CREATE/ALTER FUNCTION loads the
 *   library first (telnyx_guard_key_settings).
 * - The key file is read each time the key is needed: a key rotated by
 *   mv or rewritten in place takes effect at once in every process.
 * - A key configured for the server (the key file from postgresql.conf or
 *   the command line, or the environment) is sent only to the base URL of
 *   the server's configuration.  A telnyx.api_base_url set for a database,
 *   a role, by the client (PGOPTIONS) or in the session is sent only a key
 *   file set at the same level or above it; otherwise nothing is sent.
 *   Pointing the base URL elsewhere thus never sends someone else's key.
 *
 * Every problem with the key (none, a file that is missing, unsafe or
 * unreadable, a key bound to another base URL) is described once, by
 * key_problem: the session raises it, the background worker shows it in
 * telnyx_queue_status and logs it, with the same message and hint.
 *
 * A log hook keeps every value the key has had in this process, and any
 * value a statement assigns to telnyx.api_key, out of every message, and
 * hides the statement of a failing command that names it.  That is
 * defence in depth only: a statement logged before it fails (log_statement)
 * may spell the assignment in a way the hook does not recognise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_db_role_setting.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "apikey.h"
#include "compat.h"
#include "errcodes.h"

/* Values remembered for redaction. */
#define APIKEY_MAX_REMEMBERED 16

/* Shorter values would redact innocent text, and cannot be keys. */
#define APIKEY_MIN_REDACTED 8

/* The longest key file read. */
#define APIKEY_FILE_MAX 1024

/*---- GUC variables ----*/

static char *telnyx_api_key = NULL; /* always empty */
static char *telnyx_api_key_file = NULL;

/*---- Local variables ----*/

/* Where the current telnyx.api_key_file and telnyx.api_base_url came from. */
static GucSource key_file_source = PGC_S_DEFAULT;
static GucSource base_url_source = PGC_S_DEFAULT;

/* Every value remembered for redaction, malloc'd. */
static char *remembered[APIKEY_MAX_REMEMBERED];
static int	nremembered = 0;

/* The key as last read (malloc'd), and how often it changed. */
static char *current_key = NULL;
static uint64 key_serial = 0;

static emit_log_hook_type prev_emit_log_hook = NULL;

PG_FUNCTION_INFO_V1(telnyx_guard_key_settings);

/*---- Function declarations ----*/

static bool check_api_key(char **newval, void **extra, GucSource source);
static bool check_api_key_file(char **newval, void **extra, GucSource source);
static void assign_api_key_file(const char *newval, void *extra);
static bool keep_source(void **extra, GucSource source);
static const char *level_name(GucSource source);
static bool key_is_valid(const char *key);
static void remember(const char *value);
static void use_key(const char *key);
static bool key_from_file(const char *path, ApiKeyProblem *problem);
static bool key_problem(ApiKeyProblem *problem, int sqlerrcode,
						const char *reason, const char *message,
						const char *detail, const char *hint);
static void refuse_key_in_settings(void);
static bool setconfig_has_key(ArrayType *setconfig);
static void redact_key_in_log(ErrorData *edata);
static char *redact_secrets(char *text);
static char *redact(char *text, const char *secret);
static const char *find_assignment(const char *text);
static const char *find_name(const char *text);
static char *redact_assignment(char *text);

/*
 * apikey_init
 *		Define the key's settings and install the log hook.  From _PG_init.
 */
void
apikey_init(void)
{
	DefineCustomStringVariable("telnyx.api_key",
							   "Refused: the Telnyx API key is never a setting's value.",
							   "Put the key in the file named by telnyx.api_key_file, or in TELNYX_API_KEY in the server's environment.",
							   &telnyx_api_key,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL,
							   check_api_key, NULL, NULL);

	DefineCustomStringVariable("telnyx.api_key_file",
							   "File holding the Telnyx API key, readable only by the server's OS user.",
							   "Read each time the key is needed.  Set above the server's configuration (database, role, client, session), it is the only key sent to a telnyx.api_base_url set at its level or below.",
							   &telnyx_api_key_file,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   check_api_key_file, assign_api_key_file, NULL);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_key_in_log;
}

/*
 * telnyx.api_key: every value but the empty string is refused, wherever
 * it comes from.  The message never shows the value (PostgreSQL's own
 * "invalid value" message would).
 */
static bool
check_api_key(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	/* remembered even though refused: it must never be logged */
	remember(*newval);
	GUC_check_errmsg("the Telnyx API key cannot be given in a setting");
	GUC_check_errdetail("Settings can be read in catalogs, configuration files and logs; telnyx.api_key is never used.");
	GUC_check_errhint("Put the key in a file that only the server's operating system user can read and set telnyx.api_key_file to its path, or set TELNYX_API_KEY in the server's environment.");
	return false;
}

static bool
check_api_key_file(char **newval, void **extra, GucSource source)
{
	return keep_source(extra, source);
}

static void
assign_api_key_file(const char *newval, void *extra)
{
	key_file_source = extra ? *(GucSource *) extra : PGC_S_DEFAULT;
}

/*
 * apikey_check_base_url, apikey_assign_base_url
 *		telnyx.api_base_url's hooks (http.c defines it) keep where its value
 *		came from, for the rule of which key may be sent there.
 */
bool
apikey_check_base_url(void **extra, GucSource source)
{
	return keep_source(extra, source);
}

void
apikey_assign_base_url(void *extra)
{
	base_url_source = extra ? *(GucSource *) extra : PGC_S_DEFAULT;
}

/* The value's source as a setting's extra (the GUC code frees it). */
static bool
keep_source(void **extra, GucSource source)
{
	GucSource  *where = (GucSource *) compat_guc_malloc(sizeof(GucSource));

	if (where == NULL)
		return false;
	*where = source;
	*extra = where;
	return true;
}

/* Where a setting of this source was made, for messages. */
static const char *
level_name(GucSource source)
{
	switch (source)
	{
		case PGC_S_GLOBAL:
			return "for every role";
		case PGC_S_DATABASE:
			return "for the database";
		case PGC_S_USER:
			return "for the role";
		case PGC_S_DATABASE_USER:
			return "for the role in the database";
		case PGC_S_CLIENT:
			return "by the client";
		default:
			break;
	}
	return source <= PGC_S_ARGV ? "in the server's configuration" : "in the session";
}

/* The key goes into a header line: no control characters, no spaces. */
static bool
key_is_valid(const char *key)
{
	const unsigned char *p;

	for (p = (const unsigned char *) key; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* Keep value for redaction (the last APIKEY_MAX_REMEMBERED of them). */
static void
remember(const char *value)
{
	char	   *copy;
	int			i;

	if (strlen(value) < APIKEY_MIN_REDACTED)
		return;
	for (i = 0; i < nremembered; i++)
		if (strcmp(remembered[i], value) == 0)
			return;
	copy = strdup(value);
	if (copy == NULL)
		return;
	if (nremembered == APIKEY_MAX_REMEMBERED)
	{
		explicit_bzero(remembered[0], strlen(remembered[0]));
		free(remembered[0]);
		memmove(remembered, remembered + 1, sizeof(char *) * (APIKEY_MAX_REMEMBERED - 1));
		nremembered--;
	}
	remembered[nremembered++] = copy;
}

/*
 * telnyx_api_key_value
 *		The key to send to telnyx.api_base_url, or NULL when none is
 *		configured for it.  Raises an error, so that nothing is sent, when a key
 *		sits in pg_db_role_setting, when the only key configured may not be
 *		sent to this base URL, or when the key file is not safe or holds no
 *		valid key.  The result lives until the next call.
 */
const char *
telnyx_api_key_value(void)
{
	ApiKeyProblem problem;
	const char *key = telnyx_api_key_get(&problem);

	if (key == NULL && problem.sqlerrcode != 0 && !problem.none)
		telnyx_api_key_report(&problem, ERROR);
	return key;
}

/*
 * telnyx_api_key_get
 *		The key to send to telnyx.api_base_url; or NULL, with *problem
 *		saying why none may be sent (problem->none when none is configured
 *		at all).  Raises an error only for a key in pg_db_role_setting
 *		(checked only in a transaction) and out of memory.  The result lives
 *		until the next call.
 */
const char *
telnyx_api_key_get(ApiKeyProblem *problem)
{
	bool		server_url = base_url_source <= PGC_S_ARGV;
	const char *env;

	memset(problem, 0, sizeof(*problem));

	/* catalogs can be read only in a transaction; the worker checks apart */
	if (IsTransactionState())
		refuse_key_in_settings();

	if (telnyx_api_key_file != NULL && telnyx_api_key_file[0] != '\0')
	{
		if (!server_url && key_file_source < base_url_source)
		{
			(void) key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
							   "no Telnyx API key may be sent to telnyx.api_base_url as set there: set telnyx.api_key_file at the same level",
							   psprintf("no Telnyx API key may be sent to telnyx.api_base_url as set %s",
										level_name(base_url_source)),
							   psprintf("telnyx.api_key_file is set %s; its key is sent only to a base URL set at the same level or below it.",
										level_name(key_file_source)),
							   psprintf("Set telnyx.api_key_file %s too, or reset telnyx.api_base_url.",
										level_name(base_url_source)));
			return NULL;
		}
		if (!key_from_file(telnyx_api_key_file, problem))
			return NULL;
		return current_key;
	}

	/* the environment's key is the server's: for the server's URL only */
	env = getenv("TELNYX_API_KEY");
	if (env == NULL || env[0] == '\0' || !server_url)
	{
		(void) key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "no Telnyx API key is configured: set telnyx.api_key_file and reload",
						   "no Telnyx API key is configured", NULL,
						   "Put the key in a file that only the server's operating system user can read, set telnyx.api_key_file to its path in postgresql.conf and reload the configuration; or set TELNYX_API_KEY in the server's environment and restart the server. A telnyx.api_base_url set for a database, a role, by the client or in the session needs telnyx.api_key_file set there too.");
		problem->none = true;
		return NULL;
	}
	if (!key_is_valid(env))
	{
		(void) key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key in TELNYX_API_KEY is not valid: fix it and restart the server",
						   "the Telnyx API key in TELNYX_API_KEY is not valid",
						   "An API key cannot contain spaces or control characters.",
						   "Fix TELNYX_API_KEY in the server's environment and restart the server, or set telnyx.api_key_file and reload the configuration.");
		return NULL;
	}
	use_key(env);
	return current_key;
}

/*
 * telnyx_api_key_refused_hint
 *		What to do when Telnyx refuses the key, for where it came from: a
 *		new key in the file is read at once; the environment's needs a
 *		restart.
 */
const char *
telnyx_api_key_refused_hint(void)
{
	if (telnyx_api_key_file != NULL && telnyx_api_key_file[0] != '\0')
		return "Put a key Telnyx accepts in the file named by telnyx.api_key_file, and check its permissions at Telnyx: the file is read each time a key is needed, no reload is needed.";
	return "Set TELNYX_API_KEY in the server's environment to a key Telnyx accepts and restart the server, or put the key in telnyx.api_key_file and reload the configuration; check its permissions at Telnyx.";
}

/*
 * telnyx_api_key_report
 *		Report a problem found by telnyx_api_key_get at elevel.
 */
void
telnyx_api_key_report(const ApiKeyProblem *problem, int elevel)
{
	ereport(elevel,
			(errcode(problem->sqlerrcode),
			 errmsg_internal("%s", problem->message),
			 problem->detail ? errdetail_internal("%s", problem->detail) : 0,
			 problem->hint ? errhint("%s", problem->hint) : 0));
}

/*
 * Fill *problem (strings palloc'd in the current memory context); returns
 * false, for the caller to return.
 */
static bool
key_problem(ApiKeyProblem *problem, int sqlerrcode, const char *reason,
			const char *message, const char *detail, const char *hint)
{
	problem->sqlerrcode = sqlerrcode;
	problem->reason = pstrdup(reason);
	problem->message = pstrdup(message);
	problem->detail = detail ? pstrdup(detail) : NULL;
	problem->hint = hint ? pstrdup(hint) : NULL;
	return false;
}

/*
 * telnyx_api_key_serial
 *		A number that changes whenever the key telnyx_api_key_value read
 *		changes: a sender that Telnyx refused tries again once the key was
 *		rotated, without a reload.
 */
uint64
telnyx_api_key_serial(void)
{
	return key_serial;
}

/* Make key the current one, counting a change. */
static void
use_key(const char *key)
{
	char	   *copy;

	if (current_key != NULL && strcmp(current_key, key) == 0)
		return;
	copy = strdup(key);
	if (copy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	remember(copy);
	if (current_key != NULL)
	{
		explicit_bzero(current_key, strlen(current_key));
		free(current_key);
	}
	current_key = copy;
	key_serial++;
}

/*
 * Read the key in the file at path, each time: a file rotated by mv or
 * rewritten in place, however soon, is read as it is now.  The file must
 * be a regular file owned by the server's OS user, with no permissions for
 * group or others; what is checked is the file opened, not the name.
 * Returns false, with *problem filled, when no key can be used.
 */
static bool
key_from_file(const char *path, ApiKeyProblem *problem)
{
	struct stat st;
	char		buf[APIKEY_FILE_MAX + 1];
	ssize_t		got;
	size_t		len = 0;
	int			fd;
	static const char *reload = "The file is read each time a key is needed: once it is fixed, no reload is needed.";

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		int			save_errno = errno;

		return key_problem(problem,
						   save_errno == ENOENT ? ERRCODE_UNDEFINED_FILE : ERRCODE_TELNYX_NO_API_KEY,
						   save_errno == ENOENT
						   ? "the Telnyx API key file does not exist: create it, or fix telnyx.api_key_file and reload"
						   : "the Telnyx API key file cannot be opened: see the server log",
						   psprintf("could not open the Telnyx API key file \"%s\": %s",
									path, strerror(save_errno)),
						   NULL,
						   save_errno == ENOENT
						   ? "Create the file, owned by the server's operating system user with mode 600 (it is read each time a key is needed), or set telnyx.api_key_file to its path and reload the configuration."
						   : "Make the file readable by the server's operating system user, its owner, with mode 600. The file is read each time a key is needed: once it is fixed, no reload is needed.");
	}
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key file cannot be read: see the server log",
						   psprintf("could not stat the Telnyx API key file \"%s\": %s",
									path, strerror(save_errno)),
						   NULL, reload);
	}
	if (!S_ISREG(st.st_mode))
	{
		CloseTransientFile(fd);
		return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key file is not a regular file: fix telnyx.api_key_file and reload",
						   psprintf("the Telnyx API key file \"%s\" is not a regular file", path),
						   NULL,
						   "Set telnyx.api_key_file to a regular file holding the key and reload the configuration.");
	}
	if (st.st_uid != geteuid())
	{
		CloseTransientFile(fd);
		return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key file is not owned by the server's user: chown it",
						   psprintf("the Telnyx API key file \"%s\" is not owned by the server's operating system user", path),
						   "It must be owned by the server's operating system user and give no permissions to group or others.",
						   "Run \"chown\" on it to give it to the server's operating system user. The file is read each time a key is needed: once it is fixed, no reload is needed.");
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		CloseTransientFile(fd);
		return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key file may be read by others: run chmod 600 on it",
						   psprintf("the Telnyx API key file \"%s\" may be read by others", path),
						   "It must be owned by the server's operating system user and give no permissions to group or others.",
						   "Run \"chmod 600\" on it, as its owner. The file is read each time a key is needed: once it is fixed, no reload is needed.");
	}

	while (len < APIKEY_FILE_MAX &&
		   (got = read(fd, buf + len, APIKEY_FILE_MAX - len)) != 0)
	{
		if (got < 0)
		{
			int			save_errno = errno;

			if (errno == EINTR)
				continue;
			CloseTransientFile(fd);
			explicit_bzero(buf, sizeof(buf));
			return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
							   "the Telnyx API key file cannot be read: see the server log",
							   psprintf("could not read the Telnyx API key file \"%s\": %s",
										path, strerror(save_errno)),
							   NULL, reload);
		}
		len += got;
	}
	CloseTransientFile(fd);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
					   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (len == 0 || strlen(buf) != len || !key_is_valid(buf))
	{
		explicit_bzero(buf, sizeof(buf));
		return key_problem(problem, ERRCODE_TELNYX_NO_API_KEY,
						   "the Telnyx API key file does not hold a valid key: put the key in it",
						   psprintf("the Telnyx API key file \"%s\" does not hold a valid key", path),
						   "It must hold the key on one line, without spaces or control characters.",
						   reload);
	}
	PG_TRY();
	{
		use_key(buf);
	}
	PG_FINALLY();
	{
		explicit_bzero(buf, sizeof(buf));
	}
	PG_END_TRY();
	return true;
}

/*
 * telnyx_api_key_in_settings
 *		Where a key sits in pg_db_role_setting (put there by ALTER ROLE or
 *		DATABASE ... SET in a session that had not loaded the library), as
 *		the ALTER command that removes it; NULL if nowhere.  Needs a
 *		transaction.
 */
char *
telnyx_api_key_in_settings(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *fix = NULL;

	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (fix == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_db_role_setting s = (Form_pg_db_role_setting) GETSTRUCT(tup);
		bool		isnull;
		Datum		config;
		char	   *role;
		char	   *db;

		config = heap_getattr(tup, Anum_pg_db_role_setting_setconfig,
							  RelationGetDescr(rel), &isnull);
		if (isnull || !setconfig_has_key(DatumGetArrayTypeP(config)))
			continue;
		role = OidIsValid(s->setrole) ? GetUserNameFromId(s->setrole, true) : NULL;
		db = OidIsValid(s->setdatabase) ? get_database_name(s->setdatabase) : NULL;
		if (role != NULL && db != NULL)
			fix = psprintf("ALTER ROLE %s IN DATABASE %s RESET telnyx.api_key",
						   quote_identifier(role), quote_identifier(db));
		else if (role != NULL)
			fix = psprintf("ALTER ROLE %s RESET telnyx.api_key", quote_identifier(role));
		else if (db != NULL)
			fix = psprintf("ALTER DATABASE %s RESET telnyx.api_key", quote_identifier(db));
		else
			fix = pstrdup("ALTER ROLE ALL RESET telnyx.api_key");
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return fix;
}

/* Does an array of "name=value" settings give telnyx.api_key a value? */
static bool
setconfig_has_key(ArrayType *setconfig)
{
	Datum	   *items;
	bool	   *nulls;
	int			n;
	int			i;
	const char *name = "telnyx.api_key=";

	deconstruct_array(setconfig, TEXTOID, -1, false, TYPALIGN_INT,
					  &items, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		char	   *item;

		if (nulls[i])
			continue;
		item = TextDatumGetCString(items[i]);
		if (pg_strncasecmp(item, name, strlen(name)) == 0 && item[strlen(name)] != '\0')
			return true;
	}
	return false;
}

/* Nothing is sent while a key sits in pg_db_role_setting. */
static void
refuse_key_in_settings(void)
{
	char	   *fix = telnyx_api_key_in_settings();

	if (fix != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("a Telnyx API key is stored in pg_db_role_setting"),
				 errdetail("Every role can read it there. Nothing is sent to Telnyx until it is removed."),
				 errhint("Remove it with %s. Then replace the key at Telnyx, since every role could read it, and put the new key in telnyx.api_key_file.",
						 fix)));
}

/*
 * telnyx_guard_key_settings() returns event_trigger
 *
 * ON ddl_command_start of CREATE and ALTER FUNCTION, PROCEDURE, ROUTINE:
 * calling it loads the library, so that PostgreSQL asks telnyx.api_key's
 * check whether a SET clause may keep a value (in pg_proc, which every
 * role can read) even in a session that had not loaded it.  Nothing else
 * to do.
 */
Datum
telnyx_guard_key_settings(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		elog(ERROR, "telnyx_guard_key_settings: not called by the event trigger manager");
	PG_RETURN_VOID();
}

/*
 * Every message that passes through a process that loaded us has the key
 * replaced before it is logged or sent: its current and earlier values,
 * the environment's, values refused for telnyx.api_key, and whatever
 * follows an assignment to telnyx.api_key (a statement logged by
 * log_statement).  The statement of an error is hidden when it assigns
 * the key.
 */
static void
redact_key_in_log(ErrorData *edata)
{
	bool		assigns = (edata->message != NULL && find_assignment(edata->message) != NULL) ||
		(debug_query_string != NULL && find_assignment(debug_query_string) != NULL);

	/* the bind parameters of a statement that assigns the key */
	if (assigns && edata->detail != NULL &&
		pg_strncasecmp(edata->detail, "parameters:", strlen("parameters:")) == 0)
		edata->detail = pstrdup("parameters: ********");
	if (assigns && edata->detail_log != NULL &&
		pg_strncasecmp(edata->detail_log, "parameters:", strlen("parameters:")) == 0)
		edata->detail_log = pstrdup("parameters: ********");

	edata->message = redact_assignment(redact_secrets(edata->message));
	edata->detail = redact_assignment(redact_secrets(edata->detail));
	edata->detail_log = redact_assignment(redact_secrets(edata->detail_log));
	edata->hint = redact_assignment(redact_secrets(edata->hint));
	edata->context = redact_assignment(redact_secrets(edata->context));
	edata->internalquery = redact_assignment(redact_secrets(edata->internalquery));
	if (debug_query_string != NULL &&
		(find_assignment(debug_query_string) != NULL ||
		 redact_secrets((char *) debug_query_string) != debug_query_string))
		edata->hide_stmt = true;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* text with every known key value replaced. */
static char *
redact_secrets(char *text)
{
	int			i;

	if (text == NULL)
		return NULL;
	for (i = 0; i < nremembered; i++)
		text = redact(text, remembered[i]);
	if (current_key != NULL)
		text = redact(text, current_key);
	if (getenv("TELNYX_API_KEY") != NULL &&
		strlen(getenv("TELNYX_API_KEY")) >= APIKEY_MIN_REDACTED)
		text = redact(text, getenv("TELNYX_API_KEY"));
	return text;
}

/* text with every occurrence of secret replaced; text itself if none. */
static char *
redact(char *text, const char *secret)
{
	StringInfoData buf;
	size_t		len = strlen(secret);
	char	   *p;
	char	   *hit;

	if (text == NULL || (hit = strstr(text, secret)) == NULL)
		return text;

	initStringInfo(&buf);
	for (p = text; hit != NULL; p = hit + len, hit = strstr(p, secret))
	{
		appendBinaryStringInfo(&buf, p, hit - p);
		appendStringInfoString(&buf, "********");
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

/*
 * Where text assigns a value to a setting named "...api_key" (any case,
 * any quoting): the first byte after the name and its closing quotes when
 * what follows is "=", ",", "TO" or "changed to".  NULL if nowhere.
 */
static const char *
find_assignment(const char *text)
{
	const char *p;

	for (p = find_name(text); p != NULL; p = find_name(p + 1))
	{
		const char *q = p + strlen("api_key");

		/* telnyx.api_key_file names a file, not a secret */
		if (*q == '_' || isalnum((unsigned char) *q))
			continue;
		while (*q == '"' || *q == '\'')
			q++;
		while (isspace((unsigned char) *q))
			q++;
		if (*q == '=' || *q == ',' ||
			(pg_strncasecmp(q, "to", 2) == 0 && !isalnum((unsigned char) q[2])) ||
			pg_strncasecmp(q, "changed to", 10) == 0)
			return p + strlen("api_key");
	}
	return NULL;
}

/* The next "api_key", in any case, in text; NULL if none. */
static const char *
find_name(const char *text)
{
	const char *p;

	for (p = text; *p; p++)
		if (pg_strncasecmp(p, "api_key", strlen("api_key")) == 0)
			return p;
	return NULL;
}

/* text with everything after an assignment of the key replaced. */
static char *
redact_assignment(char *text)
{
	const char *at;

	if (text == NULL || (at = find_assignment(text)) == NULL)
		return text;
	return psprintf("%.*s ********", (int) (at - text), text);
}
