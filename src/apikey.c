/*-------------------------------------------------------------------------
 *
 * apikey.c
 *	  The Telnyx API key: where it may come from, and keeping it out of
 *	  every message.
 *
 * The key spends money, so it must be readable by superusers only, in
 * every way it can be set:
 *
 * - telnyx.api_key is a superuser-only setting.  Set in postgresql.conf
 *   (or by ALTER SYSTEM), it is safe only when the library is in
 *   shared_preload_libraries: otherwise a session that has not loaded the
 *   library holds it as a placeholder that any role can SHOW.  Such a key
 *   is refused, with a hint, when the library was not preloaded.
 * - ALTER DATABASE/ROLE ... SET and a function's SET clause store the value
 *   in catalogs every role can read (pg_db_role_setting, pg_proc): refused.
 * - telnyx.api_key_file names a file that only the server's OS user may
 *   read (owned by it, no group or other permissions), holding the key.
 * - TELNYX_API_KEY in the server's environment.
 *
 * A log hook keeps every value the key has had in this process, the key
 * file's and the environment's, and any value a statement assigns to
 * telnyx.api_key, out of every message, and hides the statement of a
 * failing command that names it.  Loaded through shared_preload_libraries,
 * that includes the postmaster, which logs a reload's changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "apikey.h"
#include "errcodes.h"

/* Values of telnyx.api_key remembered for redaction. */
#define APIKEY_MAX_REMEMBERED 16

/* Shorter values would redact innocent text, and cannot be keys. */
#define APIKEY_MIN_REDACTED 8

/*---- GUC variables ----*/

static char *telnyx_api_key = NULL;
static char *telnyx_api_key_file = NULL;

/*---- Local variables ----*/

/* Where the current telnyx.api_key came from. */
static GucSource api_key_source = PGC_S_DEFAULT;

/* Were we loaded by shared_preload_libraries (in this process's history)? */
static bool loaded_at_preload = false;

/* Every value telnyx.api_key has had here, malloc'd. */
static char *remembered[APIKEY_MAX_REMEMBERED];
static int	nremembered = 0;

/* The key file as last read: path, identity, content (malloc'd). */
static char *file_path = NULL;
static struct stat file_stat;
static char *file_key = NULL;

static emit_log_hook_type prev_emit_log_hook = NULL;

/*---- Function declarations ----*/

static bool check_api_key(char **newval, void **extra, GucSource source);
static void assign_api_key(const char *newval, void *extra);
static const char *show_api_key(void);
static bool key_is_valid(const char *key);
static void remember(const char *value);
static const char *key_from_file(void);
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
	loaded_at_preload = process_shared_preload_libraries_in_progress;

	DefineCustomStringVariable("telnyx.api_key",
							   "Telnyx API key (V2) sent as a bearer token.",
							   "Honoured from a configuration file only with telnyx_orders in shared_preload_libraries.",
							   &telnyx_api_key,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
							   check_api_key, assign_api_key, show_api_key);

	DefineCustomStringVariable("telnyx.api_key_file",
							   "File holding the Telnyx API key, readable only by the server's OS user.",
							   "Used when telnyx.api_key is empty.",
							   &telnyx_api_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_key_in_log;
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

static bool
check_api_key(char **newval, void **extra, GucSource source)
{
	GucSource  *where;

	if (*newval == NULL)
		return true;
	/* remembered even if refused: it must never be logged */
	remember(*newval);
	if (!key_is_valid(*newval))
	{
		/* never echo the value */
		GUC_check_errmsg("invalid value for parameter \"telnyx.api_key\"");
		GUC_check_errdetail("An API key cannot contain spaces or control characters.");
		return false;
	}
	if ((*newval)[0] != '\0' &&
		(source == PGC_S_TEST || source == PGC_S_DATABASE ||
		 source == PGC_S_USER || source == PGC_S_DATABASE_USER))
	{
		GUC_check_errmsg("parameter \"telnyx.api_key\" cannot be set for a database, a role or a function");
		GUC_check_errdetail("Such settings are kept in catalogs that every role can read.");
		GUC_check_errhint("Set telnyx.api_key in postgresql.conf, or use telnyx.api_key_file or TELNYX_API_KEY.");
		return false;
	}
	where = (GucSource *) malloc(sizeof(GucSource));
	if (where == NULL)
		return false;
	*where = source;
	*extra = where;
	return true;
}

static void
assign_api_key(const char *newval, void *extra)
{
	api_key_source = extra ? *(GucSource *) extra : PGC_S_DEFAULT;
}

/*
 * What SHOW and current_setting() show: the key to superusers only
 * (pg_read_all_settings may see superuser-only settings, not this).  The
 * setting is also left out of pg_settings, whose reset_val would show the
 * value from postgresql.conf as it is.
 */
static const char *
show_api_key(void)
{
	if (telnyx_api_key == NULL || telnyx_api_key[0] == '\0')
		return "";
	return superuser() ? telnyx_api_key : "********";
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
		free(remembered[0]);
		memmove(remembered, remembered + 1, sizeof(char *) * (APIKEY_MAX_REMEMBERED - 1));
		nremembered--;
	}
	remembered[nremembered++] = copy;
}

/*
 * telnyx_api_key_value
 *		The key to send, or NULL when none is configured.  Raises an error
 *		for a key set where it is not safe, or a key file that others can
 *		read.
 */
const char *
telnyx_api_key_value(void)
{
	const char *key = telnyx_api_key;

	if (key != NULL && key[0] != '\0')
	{
		if (api_key_source == PGC_S_FILE && !loaded_at_preload)
			ereport(ERROR,
					(errcode(ERRCODE_TELNYX_NO_API_KEY),
					 errmsg("telnyx.api_key is set in a configuration file, but telnyx_orders is not in shared_preload_libraries"),
					 errdetail("Without it, any role can read the setting in a session that has not loaded the library."),
					 errhint("Add telnyx_orders to shared_preload_libraries, or use telnyx.api_key_file or TELNYX_API_KEY instead.")));
		return key;
	}

	if (telnyx_api_key_file != NULL && telnyx_api_key_file[0] != '\0')
		return key_from_file();

	key = getenv("TELNYX_API_KEY");
	if (key == NULL || key[0] == '\0')
		return NULL;
	if (!key_is_valid(key))
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("the Telnyx API key in TELNYX_API_KEY is not valid"),
				 errdetail("An API key cannot contain spaces or control characters.")));
	return key;
}

/*
 * The key in telnyx.api_key_file: read again whenever the file changes.
 * The file must be a regular file owned by the server's OS user, with no
 * permissions for group or others.
 */
static const char *
key_from_file(void)
{
	const char *path = telnyx_api_key_file;
	struct stat st;
	FILE	   *f;
	char		buf[1024];
	size_t		len;

	if (stat(path, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the Telnyx API key file \"%s\": %m", path)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("the Telnyx API key file \"%s\" is not a regular file", path)));
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("the Telnyx API key file \"%s\" may be read by others", path),
				 errdetail("It must be owned by the server's operating system user and give no permissions to group or others."),
				 errhint("Run \"chmod 600\" on it, as its owner.")));

	if (file_key != NULL && file_path != NULL && strcmp(file_path, path) == 0 &&
		st.st_ino == file_stat.st_ino && st.st_dev == file_stat.st_dev &&
		st.st_size == file_stat.st_size && st.st_mtime == file_stat.st_mtime)
		return file_key;

	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the Telnyx API key file \"%s\": %m", path)));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	FreeFile(f);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
					   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (len == 0 || !key_is_valid(buf))
	{
		explicit_bzero(buf, sizeof(buf));
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_NO_API_KEY),
				 errmsg("the Telnyx API key file \"%s\" does not hold a valid key", path),
				 errdetail("It must hold the key on one line, without spaces or control characters.")));
	}

	if (file_key != NULL)
	{
		explicit_bzero(file_key, strlen(file_key));
		free(file_key);
	}
	free(file_path);
	file_key = strdup(buf);
	file_path = strdup(path);
	explicit_bzero(buf, sizeof(buf));
	if (file_key == NULL || file_path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	file_stat = st;
	remember(file_key);
	return file_key;
}

/*
 * Every message that passes through a process that loaded us has the key
 * replaced before it is logged or sent: its current and earlier values,
 * the environment's and the key file's, and whatever follows an
 * assignment to telnyx.api_key (a statement logged by log_statement, a
 * reload's "parameter ... changed to").  The statement of an error is
 * hidden when it assigns the key.
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
	if (telnyx_api_key != NULL && strlen(telnyx_api_key) >= APIKEY_MIN_REDACTED)
		text = redact(text, telnyx_api_key);
	if (file_key != NULL)
		text = redact(text, file_key);
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
