/*-------------------------------------------------------------------------
 *
 * http.h
 *	  HTTP requests through libcurl, with retries of what is safe to retry.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TELNYX_HTTP_H
#define TELNYX_HTTP_H

typedef enum HttpMethod
{
	HTTP_GET,
	HTTP_POST
} HttpMethod;

typedef struct HttpRequest
{
	HttpMethod	method;
	const char *path;			/* appended to telnyx.api_base_url */
	const char *body;			/* POST body, or NULL */
	const char *idempotency_key;	/* Idempotency-Key header, or NULL */
	bool		idempotent;		/* safe to send again after it may have
								 * reached the server? */
} HttpRequest;

/* How a transfer ended. */
typedef enum HttpOutcome
{
	HTTP_COMPLETE,				/* a whole response arrived; status is set */
	HTTP_NOT_SENT,				/* failed before the request could reach the
								 * server (resolve, connect, TLS) */
	HTTP_FAILED_AFTER_SEND,		/* failed after the request may have reached
								 * the server (timeout, reset) */
	HTTP_TOO_LARGE				/* response exceeded telnyx.max_response_size */
} HttpOutcome;

/*
 * What kind of fault ended a transfer with no answer: each has its own
 * sentence and hint (http_fault_sentence, http_fault_hint).
 */
typedef enum HttpFault
{
	HTTP_FAULT_NONE,
	HTTP_FAULT_DNS,				/* the host name could not be resolved */
	HTTP_FAULT_REFUSED,			/* no connection could be made */
	HTTP_FAULT_TIMEOUT,			/* telnyx.connect_timeout or telnyx.timeout */
	HTTP_FAULT_TLS_UNTRUSTED,	/* the certificate's CA is not trusted */
	HTTP_FAULT_TLS_NAME,		/* the certificate names another host */
	HTTP_FAULT_CA_FILE,			/* telnyx.ca_file cannot be read */
	HTTP_FAULT_TLS,				/* another TLS failure */
	HTTP_FAULT_OTHER
} HttpFault;

typedef struct HttpResponse
{
	HttpOutcome outcome;
	long		status;			/* HTTP status, 0 if none arrived */
	char	   *body;			/* palloc'd, NUL-terminated; never NULL */
	size_t		body_len;
	double		wait_ms;		/* wait the server asked for, -1 if none */
	int			attempts;		/* requests sent, retries included */
	char	   *transport_error;	/* curl's description, or NULL */
	HttpFault	fault;			/* what kind of transport failure, if any */
} HttpResponse;

/* Settings (telnyx.*), defined by http_init */
extern int	telnyx_timeout_ms;
extern int	telnyx_max_response_size;

#define TELNYX_DEFAULT_BASE_URL "https://api.telnyx.com/v2"

/*
 * The longest telnyx.timeout and telnyx.connect_timeout: a sender's lease
 * (the timeout and a minute) assumes no request outlasts it.
 */
#define TELNYX_MAX_TIMEOUT_MS (10 * 60 * 1000)

extern void http_init(void);
/* Most requests sent at once by http_perform_many. */
#define HTTP_MAX_CONCURRENCY 64

/* A transfer that ended: the tag given to http_stream_add, and its response. */
typedef struct HttpDone
{
	void	   *tag;
	HttpResponse resp;
} HttpDone;

extern void http_perform(const HttpRequest *req, HttpResponse *resp);
extern void http_perform_many(const HttpRequest *reqs, HttpResponse *resps,
							  int n);
extern void http_stream_begin(int capacity);
extern int	http_stream_free(void);
extern int	http_stream_budget(int want, long *wait_ms);
extern int	http_stream_busy(void);
extern void http_stream_add(const HttpRequest *req, void *tag);
extern int	http_stream_wait(int timeout_ms, HttpDone *done, int max,
							 bool *woken);
extern void http_stream_end(void);
extern bool http_should_retry(const HttpRequest *req, const HttpResponse *resp);
/* Longest wait the server may ask for before we fall back to our backoff. */
#define HTTP_MAX_SERVER_WAIT_MS 60000.0

extern int64 http_longest_call_ms(void);
extern double http_retry_delay_ms(int retry, double wait_ms);
extern void http_check_base_url(const char *url, int elevel);
extern bool http_base_url_allowed(const char *url, const char **why);
extern char *http_fault_sentence(HttpFault fault);
extern const char *http_fault_hint(HttpFault fault);

#endif							/* TELNYX_HTTP_H */
