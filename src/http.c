/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP requests to the Telnyx API through libcurl.
 *
 * A process keeps one curl multi handle and a few easy handles for its
 * whole life, so consecutive calls reuse connections (and TLS sessions).
 * The background worker sends many requests at once on the multi handle; a
 * SQL function sends one, the same way.  We wait on curl's
 * sockets a tenth of a second at a time and service interrupts in between,
 * so cancel and statement_timeout stop a request in flight, and no curl
 * callback ever raises an error or longjmps.  Callbacks only record what
 * happened (bytes received, headers, whether the request body was handed
 * to curl); the caller decides after curl returns.
 *
 * What may be retried is decided here, because it is a property of HTTP,
 * not of Telnyx: an idempotent request is sent again after any transport
 * failure, 408, 429 or 5xx; a request that is not idempotent only when it
 * provably never reached the server, or on 429.  The one trap is curl's own
 * habit of silently resending a request whose reused connection died before
 * an answer arrived: curl calls our pre-request callback before each
 * attempt, and for a non-idempotent request it refuses the second, so
 * curl reports an error instead of buying twice.  (The body is handed to
 * curl whole, so that a small request goes out in one packet.)
 *
 * The API key (apikey.c decides which may be sent to the base URL) is put
 * into one header list that lives only for the transfer; it never appears
 * in a message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/pmsignal.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 140000
#include "utils/wait_event.h"
#else
#include "pgstat.h"
#endif

#include "apikey.h"
#include "budget.h"
#include "compat.h"
#include "errcodes.h"
#include "http.h"
#include "wakeup.h"

/* The sockets curl may use at once: a connection or two per transfer. */
#define HTTP_MAX_SOCKETS (4 * HTTP_MAX_CONCURRENCY)

/*---- Local types ----*/

/* The state of one transfer, shared with curl's callbacks. */
typedef struct HttpTransfer
{
	const HttpRequest *req;

	/* request body */
	const char *body;
	size_t		body_len;
	int			attempts;		/* curl set out to send the request so often */

	/* response body, malloc'd so that callbacks never raise errors */
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		max;
	bool		too_large;
	bool		out_of_memory;

	/* waits asked for by the current response's headers, -1 if none */
	double		retry_after_ms;
	double		ratelimit_reset_ms;
	double		ratelimit_remaining;	/* x-ratelimit-remaining, -1 if none */

	char		errbuf[CURL_ERROR_SIZE];

	/* set up and outcome */
	char	   *url;			/* malloc'd */
	struct curl_slist *headers;
	void	   *tag;			/* the caller's, handed back when done */
	bool		added;			/* on the multi handle */
	CURLcode	code;
	bool		done;
} HttpTransfer;

/*
 * A socket of curl's, as its socket callback describes it: the events
 * curl waits for on it now (WL_SOCKET_*, 0 for none), and its place in the
 * wait set (-1 if not in it) with the events it has there.  A connection's
 * socket (opened and closed through our callbacks) stays known while curl
 * keeps the connection; any other (a resolver's) is forgotten when curl
 * stops waiting on it, since curl closes it without telling.
 */
typedef struct HttpSocket
{
	curl_socket_t fd;
	bool		connection;
	int			wanted;
	int			pos;
	int			registered;
} HttpSocket;

/*---- GUC variables ----*/

static char *telnyx_api_base_url = NULL;
static char *telnyx_ca_file = NULL;
int			telnyx_timeout_ms = 30000;
static int	telnyx_connect_timeout_ms = 10000;
static int	telnyx_max_retries = 2;
int			telnyx_max_response_size = 10 * 1024 * 1024;

/*---- Local variables ----*/

static CURLM *http_multi = NULL;
static CURL *http_easy[HTTP_MAX_CONCURRENCY];
static char *http_user_agent = NULL;

/* The stream: a transfer per slot (req NULL when free), on http_easy[slot]. */
static HttpTransfer http_slots[HTTP_MAX_CONCURRENCY];
static int	http_stream_capacity = 0;
static int	http_in_flight = 0;

/*
 * What the stream waits on: the process latch and curl's sockets, in one
 * wait set, made again only when a socket opens or closes (a connection
 * kept alive serves transfer after transfer); and curl's own timeout,
 * asked of it before each wait (its clock, not ours).
 */
static HttpSocket http_sockets[HTTP_MAX_SOCKETS];
static int	http_nsockets = 0;
static bool http_sockets_overflow = false;
static WaitEventSet *http_wait_set = NULL;
static bool http_wait_set_stale = true;

/*---- Function declarations ----*/

static bool check_api_base_url(char **newval, void **extra, GucSource source);
static void assign_api_base_url(const char *newval, void *extra);
static void http_ensure_handles(int n);
static void http_finish(CURL *easy, HttpTransfer *xfer, HttpResponse *resp);
static void http_release(int slot);
static struct curl_slist *http_build_headers(const HttpRequest *req);
static void http_configure(CURL *easy, HttpTransfer *xfer, const char *url,
						   struct curl_slist *headers);
static void http_sleep(double ms);
static void http_rate_wait(int n);
static size_t http_write_cb(char *data, size_t size, size_t nmemb, void *arg);
static int	http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
						   void *socketp);
static HttpSocket *http_socket_add(curl_socket_t fd, bool connection);
static void http_socket_forget(HttpSocket *sock);
static HttpSocket *http_socket_find(curl_socket_t fd);
static void http_wait_set_ready(void);
static void http_act(curl_socket_t fd, int events);
static int	http_prereq_cb(void *arg, char *conn_primary_ip,
						   char *conn_local_ip, int conn_primary_port,
						   int conn_local_port);
static size_t http_header_cb(char *data, size_t size, size_t nmemb, void *arg);
static curl_socket_t http_open_socket_cb(void *arg, curlsocktype purpose,
										 struct curl_sockaddr *addr);
static int	http_close_socket_cb(void *arg, curl_socket_t sock);
static bool http_header_value(const char *line, size_t len, const char *name,
							  char *value, size_t valuesize);
static bool http_is_loopback_host(const char *host);
static void http_error_context(void *arg);
static HttpFault http_fault_of(CURL *easy, CURLcode code, const char *errbuf);
static bool check_ca_file(char **newval, void **extra, GucSource source);

/*
 * http_init
 *		From _PG_init: the API key's settings (apikey.c), the HTTP client's
 *		own settings, and libcurl, once per process.
 */
void
http_init(void)
{
	curl_version_info_data *info;

	apikey_init();

	DefineCustomStringVariable("telnyx.api_base_url",
							   "Base URL of the Telnyx API.",
							   "The API key is sent here: https only, or http to a loopback address.  Set above the server's configuration, only a telnyx.api_key_file set at its level or above is sent.",
							   &telnyx_api_base_url,
							   TELNYX_DEFAULT_BASE_URL,
							   PGC_SUSET,
							   0,
							   check_api_base_url, assign_api_base_url, NULL);

	DefineCustomStringVariable("telnyx.ca_file",
							   "File of CA certificates trusted to verify the API's TLS certificate.",
							   "When empty, the system's CA bundle is used.",
							   &telnyx_ca_file,
							   "",
							   PGC_SUSET,
							   0,
							   check_ca_file, NULL, NULL);

	DefineCustomIntVariable("telnyx.timeout",
							"Longest time one API request may take.",
							NULL,
							&telnyx_timeout_ms,
							30000, 100, TELNYX_MAX_TIMEOUT_MS,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.connect_timeout",
							"Longest time to connect to the API.",
							NULL,
							&telnyx_connect_timeout_ms,
							10000, 100, TELNYX_MAX_TIMEOUT_MS,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.max_retries",
							"Retries of a request that failed in a way that is safe to retry.",
							NULL,
							&telnyx_max_retries,
							2, 0, 10,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("telnyx.max_response_size",
							"Largest API response accepted.",
							NULL,
							&telnyx_max_response_size,
							10 * 1024 * 1024, 1024, (int) MaxAllocSize - 1,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));

	info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_SSL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("libcurl was built without TLS support")));
}

static bool
check_api_base_url(char **newval, void **extra, GucSource source)
{
	const char *why;

	if (*newval == NULL || !http_base_url_allowed(*newval, &why))
	{
		GUC_check_errdetail("%s", *newval == NULL ? "A URL is required." : why);
		return false;
	}
	/* where it was set decides which key may be sent there (apikey.c) */
	return apikey_check_base_url(extra, source);
}

static void
assign_api_base_url(const char *newval, void *extra)
{
	apikey_assign_base_url(extra);
}

/*
 * http_base_url_allowed
 *		May the API key be sent to this base URL?  https anywhere, plain http
 *		only to a loopback address.  On refusal *why says why, as a sentence.
 */
bool
http_base_url_allowed(const char *url, const char **why)
{
	CURLU	   *u;
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *part = NULL;
	bool		ok = false;

	*why = NULL;
	u = curl_url();
	if (u == NULL)
	{
		*why = "Out of memory.";
		return false;
	}

	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		*why = "The value is not an absolute URL.";
	else if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
		*why = "The URL must not contain a user name or password.";
	else if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
			 curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
		*why = "The URL must not contain a query or a fragment.";
	else if (strcmp(scheme, "https") == 0)
		ok = true;
	else if (strcmp(scheme, "http") == 0)
	{
		if (http_is_loopback_host(host))
			ok = true;
		else
			*why = "Plain http is allowed only to a loopback address; use https.";
	}
	else
		*why = "Only https URLs are allowed (and http to a loopback address).";

	curl_free(part);
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return ok;
}

/* Is host (as curl spells it) a loopback address or "localhost"? */
static bool
http_is_loopback_host(const char *host)
{
	struct in_addr a4;

	if (pg_strcasecmp(host, "localhost") == 0)
		return true;
	if (strcmp(host, "[::1]") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return false;
}

/*
 * http_check_base_url
 *		Raise an error unless telnyx.api_base_url may receive the key.
 */
void
http_check_base_url(const char *url, int elevel)
{
	const char *why;

	if (!http_base_url_allowed(url, &why))
		ereport(elevel,
				(errcode(ERRCODE_TELNYX_URL_NOT_ALLOWED),
				 errmsg("telnyx.api_base_url is not allowed"),
				 errdetail_internal("%s", why)));
}

/*
 * http_perform
 *		Send req, retrying what is safe to retry (see the file header), and
 *		fill resp with the last attempt's result.  resp->body is palloc'd in
 *		the current memory context.
 *
 * Raises an error only for interrupts and for problems of our own setup;
 * everything the network or the server does is reported in resp.
 */
void
http_perform(const HttpRequest *req, HttpResponse *resp)
{
	int			retry;

	for (retry = 0;; retry++)
	{
		http_perform_many(req, resp, 1);
		resp->attempts = retry + 1;
		if (retry >= telnyx_max_retries || !http_should_retry(req, resp))
			break;
		http_sleep(http_retry_delay_ms(retry, resp->wait_ms));
		pfree(resp->body);
		if (resp->transport_error)
			pfree(resp->transport_error);
	}
}

/*
 * http_should_retry
 *		Is it safe and useful to send req again after resp?
 */
bool
http_should_retry(const HttpRequest *req, const HttpResponse *resp)
{
	switch (resp->outcome)
	{
		case HTTP_NOT_SENT:
			return true;
		case HTTP_FAILED_AFTER_SEND:
			return req->idempotent;
		case HTTP_TOO_LARGE:
			return false;
		case HTTP_COMPLETE:
			if (resp->status == 429)
				return true;
			if (resp->status == 408 || resp->status >= 500)
				return req->idempotent;
			return false;
	}
	return false;
}

/*
 * http_longest_call_ms
 *		The longest one call may last: every attempt, each to its timeout,
 *		and before each the longest wait a server may ask for.  A claim on
 *		what a call fetches lasts this long; an order created by a call is
 *		no later than its start plus this.
 */
int64
http_longest_call_ms(void)
{
	return ((int64) telnyx_timeout_ms + (int64) HTTP_MAX_SERVER_WAIT_MS) *
		(telnyx_max_retries + 1);
}

/*
 * http_retry_delay_ms
 *		How long to wait before retry number retry (counting from 0): what
 *		the server asked for (wait_ms, -1 if nothing) when that is at most a
 *		minute, otherwise the
 *		official SDKs' backoff, min(0.5 * 2^retry, 8) seconds less up to 25%
 *		jitter.
 */
double
http_retry_delay_ms(int retry, double wait_ms)
{
	double		delay;

	if (wait_ms >= 0 && wait_ms <= HTTP_MAX_SERVER_WAIT_MS)
		return wait_ms;

	delay = Min(500.0 * pow(2.0, Min(retry, 16)), 8000.0);
	return delay * (1.0 - 0.25 * compat_random_fraction());
}

/* Sleep for ms milliseconds, servicing interrupts. */
static void
http_sleep(double ms)
{
	TimestampTz end = GetCurrentTimestamp() + (TimestampTz) (ms * 1000.0);

	for (;;)
	{
		long		left;

		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Create this process's multi handle and first n easy handles on first use. */
static void
http_ensure_handles(int n)
{
	int			i;

	if (http_user_agent == NULL)
	{
		curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

		http_user_agent = MemoryContextStrdup(TopMemoryContext,
											  psprintf("telnyx_orders/%s PostgreSQL/%s libcurl/%s",
													   TELNYX_ORDERS_VERSION,
													   PG_MAJORVERSION, info->version));
	}
	if (http_multi == NULL)
	{
		http_multi = curl_multi_init();
		if (http_multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	}
	for (i = 0; i < n; i++)
	{
		if (http_easy[i] != NULL)
			continue;
		http_easy[i] = curl_easy_init();
		if (http_easy[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
	}
}

/*
 * Build the header list for req: authentication, content negotiation, user
 * agent and, for a POST, the idempotency key.  Raises an error, sending
 * nothing, when no API key is configured.
 */
static struct curl_slist *
http_build_headers(const HttpRequest *req)
{
	ApiKeyProblem problem;
	const char *key = telnyx_api_key_get(&problem);
	struct curl_slist *headers = NULL;
	struct curl_slist *next;
	char	   *auth;
	size_t		authlen;

	/* the worker reports the same problem in telnyx_queue_status */
	if (key == NULL)
		telnyx_api_key_report(&problem, ERROR);

	authlen = strlen("Authorization: Bearer ") + strlen(key) + 1;
	auth = malloc(authlen);
	if (auth == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	snprintf(auth, authlen, "Authorization: Bearer %s", key);

#define APPEND_HEADER(h) \
	do { \
		next = curl_slist_append(headers, (h)); \
		if (next == NULL) \
			goto oom; \
		headers = next; \
	} while (0)

	APPEND_HEADER(auth);
	APPEND_HEADER("Accept: application/json");
	/* never wait for "100 Continue": one round trip per request */
	APPEND_HEADER("Expect:");
	if (req->body != NULL)
		APPEND_HEADER("Content-Type: application/json");
	if (req->idempotency_key != NULL)
	{
		char		line[300];

		snprintf(line, sizeof(line), "Idempotency-Key: %s", req->idempotency_key);
		APPEND_HEADER(line);
	}
#undef APPEND_HEADER

	explicit_bzero(auth, authlen);
	free(auth);
	return headers;

oom:
	explicit_bzero(auth, authlen);
	free(auth);
	curl_slist_free_all(headers);
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory")));
	return NULL;				/* keep compiler quiet */
}

/* Set every option of easy for one transfer. */
static void
http_configure(CURL *easy, HttpTransfer *xfer, const char *url,
			   struct curl_slist *headers)
{
	const HttpRequest *req = xfer->req;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, http_user_agent);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, xfer->errbuf);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* the key goes to the configured host only, never through a proxy */
	curl_easy_setopt(easy, CURLOPT_PROXY, "");
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (telnyx_ca_file != NULL && telnyx_ca_file[0] != '\0')
		curl_easy_setopt(easy, CURLOPT_CAINFO, telnyx_ca_file);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) telnyx_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) telnyx_connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) xfer->max);

	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, xfer);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, xfer);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, http_open_socket_cb);
	curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, http_close_socket_cb);
	curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, http_prereq_cb);
	curl_easy_setopt(easy, CURLOPT_PREREQDATA, xfer);

	if (req->method == HTTP_POST)
	{
		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) xfer->body_len);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, xfer->body);
	}
	else
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
}

/*
 * http_perform_many
 *		Send reqs[0..n-1] at once on the multi handle, wait until every one
 *		has ended, and fill resps[i] for reqs[i].  No retries: the caller
 *		decides.  n may not exceed HTTP_MAX_CONCURRENCY.
 *
 * Raises an error only for interrupts (cancel, shutdown) and for problems
 * of our own setup; the transfers are then abandoned and their connections
 * closed.  An error raised while a non-idempotent request may have been
 * sent carries a context line saying so.
 */
void
http_perform_many(const HttpRequest *reqs, HttpResponse *resps, int n)
{
	HttpDone   *done = palloc(sizeof(HttpDone) * n);
	int			left = n;
	int			i;

	Assert(n >= 1 && n <= HTTP_MAX_CONCURRENCY);
	http_rate_wait(n);
	http_stream_begin(n);
	PG_TRY();
	{
		for (i = 0; i < n; i++)
			http_stream_add(&reqs[i], &resps[i]);
		while (left > 0)
		{
			int			got = http_stream_wait(-1, done, n, NULL);

			for (i = 0; i < got; i++)
				*(HttpResponse *) done[i].tag = done[i].resp;
			left -= got;
		}
	}
	PG_FINALLY();
	{
		http_stream_end();
	}
	PG_END_TRY();
	pfree(done);
}

/*
 * http_stream_begin
 *		Start a stream of at most capacity transfers in flight at once (at
 *		most HTTP_MAX_CONCURRENCY): http_stream_add starts one in a free
 *		slot, http_stream_wait hands back those that ended, http_stream_end
 *		abandons the rest.  One stream per process at a time; one left by an
 *		error is abandoned here.
 */
void
http_stream_begin(int capacity)
{
	Assert(capacity >= 1 && capacity <= HTTP_MAX_CONCURRENCY);
	http_stream_end();
	http_check_base_url(telnyx_api_base_url, ERROR);
	http_ensure_handles(capacity);
	http_stream_capacity = capacity;
}

/*
 * http_stream_budget
 *		How many of want requests may start now within the account's
 *		request budget (telnyx.max_requests_per_second, shared by every
 *		process of the cluster, and the back-off after a 429); when fewer,
 *		*wait_ms says when to ask again.
 */
int
http_stream_budget(int want, long *wait_ms)
{
	return budget_take(want, wait_ms);
}

/* Wait until n requests may start within the account's budget. */
static void
http_rate_wait(int n)
{
	while (n > 0)
	{
		long		wait_ms = 0;

		n -= budget_take(n, &wait_ms);
		if (n > 0)
			http_sleep((double) Max(wait_ms, 1));
	}
}

/* Slots of the stream free for another transfer. */
int
http_stream_free(void)
{
	return http_stream_capacity - http_in_flight;
}

/* Transfers of the stream in flight. */
int
http_stream_busy(void)
{
	return http_in_flight;
}

/*
 * http_stream_add
 *		Start req in a free slot; tag comes back with its response.  req and
 *		the strings it points to must live until it is handed back.  Raises
 *		an error, starting nothing, when no API key is configured.
 */
void
http_stream_add(const HttpRequest *req, void *tag)
{
	const char *base = telnyx_api_base_url;
	size_t		baselen = strlen(base);
	HttpTransfer *xfer = NULL;
	CURLMcode	mc;
	size_t		urllen;
	int			slot;

	for (slot = 0; slot < http_stream_capacity; slot++)
		if (http_slots[slot].req == NULL)
		{
			xfer = &http_slots[slot];
			break;
		}
	if (xfer == NULL)
		elog(ERROR, "no free slot in the HTTP stream");

	memset(xfer, 0, sizeof(HttpTransfer));
	xfer->body = req->body;
	xfer->body_len = req->body ? strlen(req->body) : 0;
	xfer->max = (size_t) telnyx_max_response_size;
	xfer->retry_after_ms = -1;
	xfer->ratelimit_reset_ms = -1;
	xfer->ratelimit_remaining = -1;
	xfer->headers = http_build_headers(req);

	while (baselen > 0 && base[baselen - 1] == '/')
		baselen--;
	urllen = baselen + strlen(req->path) + 1;
	xfer->url = malloc(urllen);
	if (xfer->url == NULL)
	{
		curl_slist_free_all(xfer->headers);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	snprintf(xfer->url, urllen, "%.*s%s", (int) baselen, base, req->path);

	/* from here on the slot is taken: http_stream_end frees it */
	xfer->req = req;
	xfer->tag = tag;
	http_in_flight++;
	http_configure(http_easy[slot], xfer, xfer->url, xfer->headers);
	mc = curl_multi_add_handle(http_multi, http_easy[slot]);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start HTTP request"),
				 errdetail_internal("%s", curl_multi_strerror(mc))));
	xfer->added = true;
}

/*
 * http_stream_wait
 *		Drive the transfers until at least one ends, timeout_ms pass (-1:
 *		no limit) or the process latch is set; hand back up to max ended
 *		ones in done[] (responses palloc'd in the current memory context)
 *		and free their slots.  Returns how many.  A new transfer is sent at
 *		the first call after its add.
 *
 * It waits the way PostgreSQL waits on a socket: on curl's sockets and the
 * latch at once, so an interrupt (cancel, shutdown) is served at once, and
 * a latch set by anything else (a commit that enqueued, for a sender)
 * returns, with *woken set (when not NULL), the latch reset.
 */
int
http_stream_wait(int timeout_ms, HttpDone *done, int max, bool *woken)
{
	TimestampTz end = timeout_ms < 0 ? DT_NOEND :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	ErrorContextCallback errcallback;
	bool		act_on_timer = true;	/* a transfer added starts at once */
	bool		latch_seen = false;
	int			got = 0;

	if (woken != NULL)
		*woken = false;
	errcallback.callback = http_error_context;
	errcallback.arg = NULL;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (;;)
	{
		WaitEvent	events[HTTP_MAX_SOCKETS + 2];
		CURLMsg    *msg;
		int			queued;
		int			slot;
		int			nevents;
		int			i;
		long		wait_ms;
		long		timer_ms = -1;
		TimestampTz now;
		bool		latch_set = false;

		CHECK_FOR_INTERRUPTS();
		if (act_on_timer)
			http_act(CURL_SOCKET_TIMEOUT, 0);
		act_on_timer = false;

		while ((msg = curl_multi_info_read(http_multi, &queued)) != NULL)
		{
			if (msg->msg != CURLMSG_DONE)
				continue;
			for (slot = 0; slot < http_stream_capacity; slot++)
				if (msg->easy_handle == http_easy[slot] && http_slots[slot].req != NULL)
				{
					http_slots[slot].code = msg->data.result;
					http_slots[slot].done = true;
				}
		}

		for (slot = 0; slot < http_stream_capacity && got < max; slot++)
		{
			HttpTransfer *xfer = &http_slots[slot];

			if (xfer->req == NULL || !xfer->done)
				continue;
			done[got].tag = xfer->tag;
			http_finish(http_easy[slot], xfer, &done[got].resp);
			http_release(slot);
			got++;
		}
		if (got > 0 || http_in_flight == 0)
			break;

		/* until the deadline, or curl's timer */
		now = GetCurrentTimestamp();
		if (now >= end)
			break;
		wait_ms = end == DT_NOEND ? -1 : TimestampDifferenceMilliseconds(now, end) + 1;
		(void) curl_multi_timeout(http_multi, &timer_ms);
		if (timer_ms == 0)
		{
			act_on_timer = true;	/* something of curl's is due now */
			continue;
		}
		if (timer_ms > 0 && (wait_ms < 0 || timer_ms < wait_ms))
			wait_ms = timer_ms;
		/* more sockets than places for them: look again soon */
		if (http_sockets_overflow && (wait_ms < 0 || wait_ms > 1))
			wait_ms = 1;

		http_wait_set_ready();
		nevents = WaitEventSetWait(http_wait_set, wait_ms, events,
								   lengthof(events), PG_WAIT_EXTENSION);
		for (i = 0; i < nevents; i++)
		{
			WaitEvent  *ev = &events[i];
			HttpSocket *sock;

			if (ev->events & WL_LATCH_SET)
			{
				latch_set = true;
				continue;
			}
			sock = http_socket_find(ev->fd);
			if (sock == NULL || sock->wanted == 0)
			{
				/* a kept connection curl is not using: out of the set */
				http_wait_set_stale = true;
				continue;
			}
			http_act(ev->fd,
					 ((ev->events & WL_SOCKET_READABLE) ? CURL_CSELECT_IN : 0) |
					 ((ev->events & WL_SOCKET_WRITEABLE) ? CURL_CSELECT_OUT : 0));
		}
		/* nothing happened: curl's timeout (or ours) has come */
		if (nevents == 0 || http_sockets_overflow)
			act_on_timer = true;
		if (latch_set)
		{
			ResetLatch(MyLatch);
			latch_seen = true;
			CHECK_FOR_INTERRUPTS();
			if (woken != NULL)
			{
				*woken = true;
				/* what the sockets said is read at the next call */
				break;
			}
		}
	}

	error_context_stack = errcallback.previous;
	/* a wake-up that was not ours to take is left for the caller's loop */
	if (latch_seen && woken == NULL)
		SetLatch(MyLatch);
	return got;
}

/*
 * Tell curl what happened on fd (CURL_SOCKET_TIMEOUT: its timer ran out);
 * a multi handle that fails ends every transfer.
 */
static void
http_act(curl_socket_t fd, int events)
{
	int			running = 0;
	CURLMcode	mc;
	int			slot;

	/* sockets untracked (more than there are places for): drive them all */
	if (http_sockets_overflow)
		mc = curl_multi_perform(http_multi, &running);
	else
		mc = curl_multi_socket_action(http_multi, fd, events, &running);

	for (slot = 0; slot < http_stream_capacity && mc != CURLM_OK; slot++)
		if (http_slots[slot].req != NULL && !http_slots[slot].done)
		{
			http_slots[slot].code = CURLE_RECV_ERROR;
			strlcpy(http_slots[slot].errbuf, curl_multi_strerror(mc),
					sizeof(http_slots[slot].errbuf));
			http_slots[slot].done = true;
		}
}

/*
 * Make the wait set hold the latch and the sockets curl waits on, with the
 * events it waits for: made again when a socket came or went, otherwise
 * changed in place.
 */
static void
http_wait_set_ready(void)
{
	int			i;

	for (i = 0; i < http_nsockets && !http_wait_set_stale; i++)
		if (http_sockets[i].wanted != 0 && http_sockets[i].pos < 0)
			http_wait_set_stale = true;

	if (http_wait_set_stale || http_wait_set == NULL)
	{
		if (http_wait_set != NULL)
			FreeWaitEventSet(http_wait_set);
		http_wait_set = NULL;
		http_wait_set = COMPAT_CREATE_WAIT_EVENT_SET(TopMemoryContext,
													 http_nsockets + 2);
		AddWaitEventToSet(http_wait_set, WL_LATCH_SET, PGINVALID_SOCKET,
						  MyLatch, NULL);
		AddWaitEventToSet(http_wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET,
						  NULL, NULL);
		for (i = 0; i < http_nsockets; i++)
		{
			HttpSocket *sock = &http_sockets[i];

			sock->pos = -1;
			sock->registered = 0;
			if (sock->wanted == 0)
				continue;
			sock->pos = AddWaitEventToSet(http_wait_set, sock->wanted, sock->fd,
										  NULL, NULL);
			sock->registered = sock->wanted;
		}
		http_wait_set_stale = false;
		return;
	}

	for (i = 0; i < http_nsockets; i++)
	{
		HttpSocket *sock = &http_sockets[i];

		if (sock->wanted != 0 && sock->registered != sock->wanted)
		{
			ModifyWaitEvent(http_wait_set, sock->pos, sock->wanted, NULL);
			sock->registered = sock->wanted;
		}
	}
}

/*
 * Know fd as a socket of curl's (a connection's, opened through our
 * callback, or not), waited on for nothing yet; NULL if there is no place
 * left (then, for the rest of the process, every transfer is driven at
 * each wait, a millisecond apart).
 */
static HttpSocket *
http_socket_add(curl_socket_t fd, bool connection)
{
	HttpSocket *sock = http_socket_find(fd);

	/* a number seen before belongs to a new socket: the set is made again */
	if (sock != NULL)
		http_socket_forget(sock);
	if (http_nsockets == HTTP_MAX_SOCKETS)
	{
		http_sockets_overflow = true;
		return NULL;
	}
	sock = &http_sockets[http_nsockets++];
	sock->fd = fd;
	sock->connection = connection;
	sock->wanted = 0;
	sock->pos = -1;
	sock->registered = 0;
	return sock;
}

/* Forget a socket: the wait set is made again before the next wait. */
static void
http_socket_forget(HttpSocket *sock)
{
	*sock = http_sockets[--http_nsockets];
	http_wait_set_stale = true;
}

static HttpSocket *
http_socket_find(curl_socket_t fd)
{
	int			i;

	for (i = 0; i < http_nsockets; i++)
		if (http_sockets[i].fd == fd)
			return &http_sockets[i];
	return NULL;
}

/*
 * curl's socket callback: the events it waits for on fd now.  A socket it
 * no longer waits on stays in the wait set (curl uses it again for the
 * next transfer on that connection) until it fires or closes.  Never
 * raises an error.
 */
static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
			   void *socketp)
{
	HttpSocket *sock = http_socket_find(fd);
	int			wanted = 0;

	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		wanted |= WL_SOCKET_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		wanted |= WL_SOCKET_WRITEABLE;
	if (sock == NULL)
		sock = http_socket_add(fd, false);
	if (sock == NULL)
		return 0;
	sock->wanted = wanted;
	if (wanted == 0 && !sock->connection)
		http_socket_forget(sock);
	return 0;
}

/*
 * http_stream_end
 *		Abandon every transfer still in flight (its connection is closed)
 *		and free its slot.
 */
void
http_stream_end(void)
{
	int			slot;

	for (slot = 0; slot < HTTP_MAX_CONCURRENCY; slot++)
		if (http_slots[slot].req != NULL)
			http_release(slot);
	http_stream_capacity = 0;
}

/* Take slot's transfer off the multi handle and free what it holds. */
static void
http_release(int slot)
{
	HttpTransfer *xfer = &http_slots[slot];

	if (xfer->added)
		curl_multi_remove_handle(http_multi, http_easy[slot]);
	curl_slist_free_all(xfer->headers);
	free(xfer->buf);
	free(xfer->url);
	memset(xfer, 0, sizeof(HttpTransfer));
	http_in_flight--;
}

/* Fill resp from a finished transfer. */
static void
http_finish(CURL *easy, HttpTransfer *xfer, HttpResponse *resp)
{
	const HttpRequest *req = xfer->req;
	CURLcode	code = xfer->code;

	memset(resp, 0, sizeof(*resp));
	resp->wait_ms = -1;
	resp->attempts = 1;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);

	if (xfer->out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while receiving a response of %zu bytes.", xfer->len)));

	if (xfer->too_large || code == CURLE_FILESIZE_EXCEEDED)
		resp->outcome = HTTP_TOO_LARGE;
	else if (code == CURLE_OK)
		resp->outcome = HTTP_COMPLETE;
	else
	{
		bool		sent;

		if (req->body != NULL)
			sent = xfer->attempts > 0;
		else
		{
			long		request_size = 0;

			curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
			sent = request_size > 0;
		}
		resp->outcome = sent ? HTTP_FAILED_AFTER_SEND : HTTP_NOT_SENT;
		resp->status = 0;
	}

	if (code == CURLE_ABORTED_BY_CALLBACK && xfer->attempts > 1)
	{
		/* curl wanted to resend on a new connection; we refused */
		resp->transport_error = pstrdup("the connection closed before an answer arrived");
	}
	else if (code != CURLE_OK)
		resp->transport_error = pstrdup(xfer->errbuf[0] ? xfer->errbuf
										: curl_easy_strerror(code));
	if (code != CURLE_OK)
		resp->fault = http_fault_of(easy, code, xfer->errbuf);

	if (resp->status == 429 && xfer->retry_after_ms < 0)
		resp->wait_ms = xfer->ratelimit_reset_ms;
	else
		resp->wait_ms = xfer->retry_after_ms;

	/*
	 * The limit is the account's: after a 429, or an answer saying the
	 * window has no request left, every process of the cluster waits (for
	 * as long as Telnyx says, when it says it within a minute).
	 */
	if (resp->status == 429)
	{
		budget_back_off(http_retry_delay_ms(0, resp->wait_ms));
		wakeup_note_rate_limited();
	}
	else if (xfer->ratelimit_remaining == 0 && xfer->ratelimit_reset_ms >= 0 &&
			 xfer->ratelimit_reset_ms <= HTTP_MAX_SERVER_WAIT_MS)
		budget_back_off(xfer->ratelimit_reset_ms);

	resp->body = palloc(xfer->len + 1);
	if (xfer->len > 0)
		memcpy(resp->body, xfer->buf, xfer->len);
	resp->body[xfer->len] = '\0';
	resp->body_len = xfer->len;
}

/*
 * What kind of fault curl's code (and, for a certificate curl refused, the
 * verification's result or curl's text) says ended a transfer.
 */
static HttpFault
http_fault_of(CURL *easy, CURLcode code, const char *errbuf)
{
	long		verify = 0;

	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
			return HTTP_FAULT_DNS;
		case CURLE_COULDNT_CONNECT:
			return HTTP_FAULT_REFUSED;
		case CURLE_OPERATION_TIMEDOUT:
			return HTTP_FAULT_TIMEOUT;
		case CURLE_SSL_CACERT_BADFILE:
			return HTTP_FAULT_CA_FILE;
		case CURLE_PEER_FAILED_VERIFICATION:
#if CURLE_SSL_CACERT != CURLE_PEER_FAILED_VERIFICATION
		case CURLE_SSL_CACERT:
#endif
			/*
			 * OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH or _IP_ADDRESS_MISMATCH;
			 * curl's own host check leaves another result and says "host
			 * name" ("no alternative certificate subject name matches
			 * target host name ...")
			 */
			(void) curl_easy_getinfo(easy, CURLINFO_SSL_VERIFYRESULT, &verify);
			if (verify == 62 || verify == 64 || strstr(errbuf, "host name") != NULL)
				return HTTP_FAULT_TLS_NAME;
			return HTTP_FAULT_TLS_UNTRUSTED;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
			return HTTP_FAULT_TLS;
		default:
			break;
	}
	return HTTP_FAULT_OTHER;
}

/*
 * http_fault_sentence
 *		What a transport fault was, as a sentence for an error's detail
 *		(palloc'd); NULL when curl's own text says all that is known.
 */
char *
http_fault_sentence(HttpFault fault)
{
	bool		own_ca = telnyx_ca_file != NULL && telnyx_ca_file[0] != '\0';

	switch (fault)
	{
		case HTTP_FAULT_NONE:
			return NULL;
		case HTTP_FAULT_DNS:
			return pstrdup(_("The host name of telnyx.api_base_url could not be resolved."));
		case HTTP_FAULT_REFUSED:
			return pstrdup(_("No connection could be made to the host of telnyx.api_base_url (refused or unreachable)."));
		case HTTP_FAULT_TIMEOUT:
			return pstrdup(_("The request timed out."));
		case HTTP_FAULT_TLS_UNTRUSTED:
			return own_ca
				? psprintf(_("The server's TLS certificate is not signed by a CA in telnyx.ca_file \"%s\"."),
						   telnyx_ca_file)
				: pstrdup(_("The server's TLS certificate is not signed by a CA of the system's CA bundle (telnyx.ca_file is not set)."));
		case HTTP_FAULT_TLS_NAME:
			return pstrdup(_("The server's TLS certificate does not name the host of telnyx.api_base_url."));
		case HTTP_FAULT_CA_FILE:
			return own_ca
				? psprintf(_("The CA file \"%s\" of telnyx.ca_file could not be read."), telnyx_ca_file)
				: pstrdup(_("The system's CA bundle could not be read."));
		case HTTP_FAULT_TLS:
			return pstrdup(_("The TLS handshake with the server failed."));
		case HTTP_FAULT_OTHER:
			break;
	}
	return NULL;
}

/*
 * http_fault_hint
 *		What to do about a transport fault, as a hint; NULL if nothing can
 *		be said.
 */
const char *
http_fault_hint(HttpFault fault)
{
	switch (fault)
	{
		case HTTP_FAULT_NONE:
		case HTTP_FAULT_OTHER:
			return NULL;
		case HTTP_FAULT_DNS:
			return _("Check the host name in telnyx.api_base_url and the server's DNS configuration.");
		case HTTP_FAULT_REFUSED:
			return _("Check the host and port in telnyx.api_base_url, and that the server may connect to it (firewall, proxy).");
		case HTTP_FAULT_TIMEOUT:
			return _("Try again later, or raise telnyx.connect_timeout or telnyx.timeout.");
		case HTTP_FAULT_TLS_UNTRUSTED:
			return _("Set telnyx.ca_file to a file holding the CA certificate that signed the server's certificate, or empty it to use the system's CA bundle.");
		case HTTP_FAULT_TLS_NAME:
			return _("Use the host name the certificate was issued for in telnyx.api_base_url.");
		case HTTP_FAULT_CA_FILE:
			return _("Set telnyx.ca_file to a file of PEM certificates the server's operating system user can read, or empty it to use the system's CA bundle.");
		case HTTP_FAULT_TLS:
			return _("Check that telnyx.api_base_url is an https URL of a TLS server.");
	}
	return NULL;
}

/*
 * telnyx.ca_file names a file the server can read, or is empty: a value
 * curl could not read is refused when it is set (a reload keeps the value
 * before and logs why), not at the next request.
 */
static bool
check_ca_file(char **newval, void **extra, GucSource source)
{
	int			fd;
	struct stat st;
	bool		regular;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	fd = open(*newval, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		GUC_check_errmsg("could not open the CA file \"%s\" of telnyx.ca_file: %m", *newval);
		GUC_check_errhint("Name a file of PEM certificates that the server's operating system user can read, or the empty string for the system's CA bundle.");
		return false;
	}
	regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	if (!regular)
	{
		GUC_check_errmsg("the CA file \"%s\" of telnyx.ca_file is not a regular file", *newval);
		GUC_check_errhint("Name a file of PEM certificates that the server's operating system user can read, or the empty string for the system's CA bundle.");
		return false;
	}
	return true;
}

/*
 * An error raised while a request is in flight (a cancel, a timeout) says
 * so when the request was not idempotent and may have been processed.
 */
static void
http_error_context(void *arg)
{
	int			slot;

	for (slot = 0; slot < HTTP_MAX_CONCURRENCY; slot++)
	{
		HttpTransfer *xfer = &http_slots[slot];

		if (xfer->req != NULL && !xfer->req->idempotent && xfer->attempts > 0 &&
			!xfer->done)
		{
			errcontext("while waiting for the answer to POST %s, which may have been processed",
					   xfer->req->path);
			break;
		}
	}
}

/*---- curl callbacks: they record, never raise ----*/

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpTransfer *xfer = (HttpTransfer *) arg;
	size_t		n = size * nmemb;

	if (n > xfer->max - xfer->len || xfer->len + n > xfer->max)
	{
		xfer->too_large = true;
		return 0;
	}
	if (xfer->len + n > xfer->cap)
	{
		size_t		newcap = Max(xfer->cap * 2, 8192);
		char	   *newbuf;

		while (newcap < xfer->len + n)
			newcap *= 2;
		newbuf = realloc(xfer->buf, newcap);
		if (newbuf == NULL)
		{
			xfer->out_of_memory = true;
			return 0;
		}
		xfer->buf = newbuf;
		xfer->cap = newcap;
	}
	memcpy(xfer->buf + xfer->len, data, n);
	xfer->len += n;
	return n;
}

/*
 * curl calls this once a connection is ready, before it sends the request:
 * again when it wants to send it once more, which it does on its own when
 * a reused connection dies before an answer.  Only an idempotent request
 * may go out twice.
 */
static int
http_prereq_cb(void *arg, char *conn_primary_ip, char *conn_local_ip,
			   int conn_primary_port, int conn_local_port)
{
	HttpTransfer *xfer = (HttpTransfer *) arg;

	xfer->attempts++;
	if (xfer->attempts > 1 && !xfer->req->idempotent)
		return CURL_PREREQFUNC_ABORT;
	return CURL_PREREQFUNC_OK;
}

static size_t
http_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpTransfer *xfer = (HttpTransfer *) arg;
	size_t		n = size * nmemb;
	char		value[128];

	/* a status line starts a new response: forget the previous one's */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		xfer->retry_after_ms = -1;
		xfer->ratelimit_reset_ms = -1;
		xfer->ratelimit_remaining = -1;
	}
	else if (http_header_value(data, n, "retry-after-ms", value, sizeof(value)))
	{
		char	   *end;
		double		ms = strtod(value, &end);

		if (end != value && *end == '\0' && ms >= 0 && isfinite(ms))
			xfer->retry_after_ms = ms;
	}
	else if (http_header_value(data, n, "retry-after", value, sizeof(value)))
	{
		char	   *end;
		double		s = strtod(value, &end);

		/* the -ms form wins when both are present */
		if (xfer->retry_after_ms < 0)
		{
			if (end != value && *end == '\0' && s >= 0 && isfinite(s))
				xfer->retry_after_ms = s * 1000.0;
			else
			{
				time_t		when = curl_getdate(value, NULL);

				if (when != -1)
					xfer->retry_after_ms = Max(0.0, difftime(when, time(NULL)) * 1000.0);
			}
		}
	}
	else if (http_header_value(data, n, "x-ratelimit-reset", value, sizeof(value)))
	{
		char	   *end;
		double		s = strtod(value, &end);

		if (end != value && *end == '\0' && s >= 0 && isfinite(s))
			xfer->ratelimit_reset_ms = s * 1000.0;
	}
	else if (http_header_value(data, n, "x-ratelimit-remaining", value, sizeof(value)))
	{
		char	   *end;
		double		left = strtod(value, &end);

		if (end != value && *end == '\0' && left >= 0 && isfinite(left))
			xfer->ratelimit_remaining = left;
	}
	return n;
}

/*
 * If the header line is "name: value" (name compared without case), copy
 * the trimmed value into value and return true.
 */
static bool
http_header_value(const char *line, size_t len, const char *name,
				  char *value, size_t valuesize)
{
	size_t		namelen = strlen(name);
	size_t		start;
	size_t		end;

	if (len <= namelen || line[namelen] != ':' ||
		pg_strncasecmp(line, name, namelen) != 0)
		return false;
	start = namelen + 1;
	end = len;
	while (start < end && (line[start] == ' ' || line[start] == '\t'))
		start++;
	while (end > start && (line[end - 1] == '\r' || line[end - 1] == '\n' ||
						   line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	if (end - start >= valuesize)
		return false;
	memcpy(value, line + start, end - start);
	value[end - start] = '\0';
	return true;
}

/* Sockets count against the backend's file descriptor budget. */
static curl_socket_t
http_open_socket_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	curl_socket_t sock;

	if (!AcquireExternalFD())
		return CURL_SOCKET_BAD;
	sock = socket(addr->family, addr->socktype, addr->protocol);
	if (sock == CURL_SOCKET_BAD)
		ReleaseExternalFD();
	else
		(void) http_socket_add(sock, true);
	return sock;
}

static int
http_close_socket_cb(void *arg, curl_socket_t sock)
{
	HttpSocket *known = http_socket_find(sock);
	int			rc;

	/* its number may come back for another socket */
	if (known != NULL)
		http_socket_forget(known);
	rc = close(sock);

	ReleaseExternalFD();
	return rc;
}
