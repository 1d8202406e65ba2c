/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  Signed webhook deliveries from Telnyx, into the same store.
 *
 * Telnyx sends number_order.complete to the account's webhook URL when a
 * number order ends.  An application's endpoint hands each delivery, as
 * received, to telnyx_apply_webhook(body, signature, timestamp):
 *
 * - The signature (header telnyx-signature-ed25519, base64 of 64 bytes) is
 *   Ed25519 over the bytes "<timestamp>|<body>", checked with OpenSSL
 *   against telnyx.webhook_public_key (base64 of 32 bytes), before
 *   anything of the body is read.
 * - The timestamp (header telnyx-timestamp, Unix seconds) may be at most
 *   telnyx.webhook_tolerance from now, so that a delivery captured once
 *   cannot be replayed later.
 * - number_order.complete is applied through store_number_order, the code
 *   a refresh uses; any other event type is ignored.  Each event id is
 *   applied once (telnyx_webhook_deliveries).  Telnyx retries deliveries,
 *   so they arrive out of order: one older than what is recorded (by its
 *   occurred_at and the number order's updated_at) is kept as received,
 *   not applied.
 *
 * Every refusal is an error with its own SQLSTATE, and writes nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "common/base64.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "api.h"
#include "errcodes.h"
#include "store.h"
#include "webhook.h"

/* The only event type applied. */
#define WEBHOOK_NUMBER_ORDER_COMPLETE "number_order.complete"

#define ED25519_KEY_LEN 32
#define ED25519_SIG_LEN 64

/*---- GUC variables ----*/

static char *telnyx_webhook_public_key = NULL;
static int	telnyx_webhook_tolerance_s = 300;

/*---- Function declarations ----*/

static bool webhook_key_check(char **newval, void **extra, GucSource source);
static int	decode_base64(const char *s, unsigned char *out, int outlen);
static void webhook_verify(const char *body, const char *signature,
						   const char *timestamp);
static void webhook_check_time(const char *timestamp);
static Jsonb *webhook_answer(bool applied, const char *reason,
							 const char *event_id, const char *event_type,
							 const char *number_order_id, int numbers);

/*
 * webhook_init
 *		From _PG_init: the webhook settings.  Both are for superusers only:
 *		whoever sets the key decides which deliveries are believed.
 */
void
webhook_init(void)
{
	DefineCustomStringVariable("telnyx.webhook_public_key",
							   "Telnyx's public key for webhook signatures (base64).",
							   "From the Telnyx portal (Keys & Credentials, Public Key); telnyx_apply_webhook checks every delivery against it.",
							   &telnyx_webhook_public_key,
							   "",
							   PGC_SUSET,
							   0,
							   webhook_key_check, NULL, NULL);
	DefineCustomIntVariable("telnyx.webhook_tolerance",
							"How far a webhook delivery's timestamp may be from now.",
							"A delivery signed longer ago (or further ahead) than this is refused, so that it cannot be replayed.",
							&telnyx_webhook_tolerance_s,
							300, 1, 24 * 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* An empty key, or base64 of exactly 32 bytes. */
static bool
webhook_key_check(char **newval, void **extra, GucSource source)
{
	unsigned char key[ED25519_KEY_LEN];

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (decode_base64(*newval, key, sizeof(key)) != ED25519_KEY_LEN)
	{
		GUC_check_errdetail("telnyx.webhook_public_key must be the base64 of a 32-byte Ed25519 public key.");
		return false;
	}
	return true;
}

/*
 * webhook_apply
 *		Check and apply one delivery; returns what was done, as jsonb:
 *		{"applied": bool, "reason": ..., "event_id": ..., "event_type": ...,
 *		"number_order_id": ..., "numbers": n}.
 */
Jsonb *
webhook_apply(const char *body, const char *signature, const char *timestamp)
{
	Jsonb	   *doc;
	JsonbValue	v;
	JsonbValue	payload;
	JsonbContainer *data;
	char	   *event_id;
	char	   *event_type;
	OptTimestamp occurred_at = {false, 0};
	TelnyxNumberOrder *no;
	const char *why;
	StoreFact	fact;

	webhook_verify(body, signature, timestamp);
	webhook_check_time(timestamp);

	doc = api_parse_event(body, &v, &why);
	if (doc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_MALFORMED),
				 errmsg("malformed webhook delivery"),
				 errdetail_internal("%s", why)));
	data = v.val.binary.data;
	event_id = api_event_field(data, "id");
	event_type = api_event_field(data, "event_type");
	if (event_id == NULL || event_type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_MALFORMED),
				 errmsg("malformed webhook delivery"),
				 errdetail("The delivery's \"data\" has no \"id\" or no \"event_type\".")));
	if (strcmp(event_type, WEBHOOK_NUMBER_ORDER_COMPLETE) != 0)
		return webhook_answer(false, "ignored", event_id, event_type, NULL, 0);

	if (!api_event_payload(data, &payload))
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_MALFORMED),
				 errmsg("malformed webhook delivery"),
				 errdetail("The delivery's \"data\" has no \"payload\" object.")));
	no = api_parse_number_order(&payload, &why);
	if (no == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_MALFORMED),
				 errmsg("malformed webhook delivery"),
				 errdetail_internal("%s", why)));
	occurred_at = api_event_time(data, "occurred_at");

	if (XactReadOnly)
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot apply a webhook delivery in a read-only transaction"),
				 errhint(RecoveryInProgress()
						 ? "Connect to the primary server."
						 : "Use a read-write transaction on the primary server.")));

	if (!store_webhook_delivery(event_id, event_type,
								occurred_at.present ? &occurred_at.value : NULL,
								no->id))
		return webhook_answer(false, "duplicate", event_id, event_type, no->id, 0);
	fact = store_number_order(no, occurred_at.present ? &occurred_at.value : NULL);
	if (fact != STORE_FACT_APPLIED)
		store_webhook_unapplied(event_id);
	return webhook_answer(fact == STORE_FACT_APPLIED,
						  fact == STORE_FACT_OLDER ? "older than recorded" :
						  fact == STORE_FACT_UNLINKED ? "unknown number order" : NULL,
						  event_id, event_type, no->id,
						  fact == STORE_FACT_APPLIED ? list_length(no->phone_numbers) : 0);
}

/*
 * Check the signature of "<timestamp>|<body>" (the body in UTF-8, as it was
 * sent) against telnyx.webhook_public_key.
 */
static void
webhook_verify(const char *body, const char *signature, const char *timestamp)
{
	unsigned char key[ED25519_KEY_LEN];
	unsigned char sig[ED25519_SIG_LEN];
	EVP_PKEY   *pkey;
	EVP_MD_CTX *ctx;
	StringInfoData msg;
	char	   *utf8;
	int			ok;

	if (telnyx_webhook_public_key == NULL || telnyx_webhook_public_key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_NO_KEY),
				 errmsg("telnyx.webhook_public_key is not set"),
				 errdetail("Nothing was applied: no delivery can be verified without Telnyx's public key."),
				 errhint("Set telnyx.webhook_public_key to the public key from the Telnyx portal (base64), as a superuser.")));
	if (decode_base64(telnyx_webhook_public_key, key, sizeof(key)) != ED25519_KEY_LEN)
		elog(ERROR, "telnyx.webhook_public_key is not a 32-byte key");
	if (decode_base64(signature, sig, sizeof(sig)) != ED25519_SIG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_SIGNATURE),
				 errmsg("invalid webhook signature"),
				 errdetail("The signature must be the base64 of 64 bytes (header telnyx-signature-ed25519).")));

	utf8 = pg_server_to_any(body, strlen(body), PG_UTF8);
	initStringInfo(&msg);
	appendStringInfo(&msg, "%s|%s", timestamp, utf8);

	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, sizeof(key));
	if (pkey == NULL)
		elog(ERROR, "could not load telnyx.webhook_public_key");
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
	{
		EVP_PKEY_free(pkey);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
		EVP_DigestVerify(ctx, sig, sizeof(sig), (unsigned char *) msg.data,
						 msg.len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_SIGNATURE),
				 errmsg("invalid webhook signature"),
				 errdetail("The signature does not match the timestamp and body with telnyx.webhook_public_key: the delivery was not sent by Telnyx, or was changed on the way."),
				 errhint("Pass the body exactly as received, and the telnyx-signature-ed25519 and telnyx-timestamp headers.")));
}

/* The timestamp: Unix seconds, at most telnyx.webhook_tolerance from now. */
static void
webhook_check_time(const char *timestamp)
{
	int64		seconds = 0;
	int64		now;
	const char *p;

	for (p = timestamp; *p; p++)
	{
		if (*p < '0' || *p > '9' || p - timestamp >= 15)
			ereport(ERROR,
					(errcode(ERRCODE_TELNYX_WEBHOOK_EXPIRED),
					 errmsg("invalid webhook timestamp"),
					 errdetail("The timestamp must be Unix seconds (header telnyx-timestamp).")));
		seconds = seconds * 10 + (*p - '0');
	}
	if (p == timestamp)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_EXPIRED),
				 errmsg("invalid webhook timestamp"),
				 errdetail("The timestamp must be Unix seconds (header telnyx-timestamp).")));
	now = (int64) time(NULL);
	if (seconds < now - telnyx_webhook_tolerance_s ||
		seconds > now + telnyx_webhook_tolerance_s)
		ereport(ERROR,
				(errcode(ERRCODE_TELNYX_WEBHOOK_EXPIRED),
				 errmsg("webhook delivery is outside the tolerance"),
				 seconds < now
				 ? errdetail("It was signed %lld seconds ago; telnyx.webhook_tolerance allows %d.",
							 (long long) (now - seconds), telnyx_webhook_tolerance_s)
				 : errdetail("It is dated %lld seconds ahead; telnyx.webhook_tolerance allows %d.",
							 (long long) (seconds - now), telnyx_webhook_tolerance_s)));
}

/*
 * Decode base64 s into out (outlen bytes at most); the number of bytes, or
 * -1 when s is not base64 or too long.
 */
static int
decode_base64(const char *s, unsigned char *out, int outlen)
{
	int			len = strlen(s);
	char	   *buf;
	int			n;

	if (len == 0 || pg_b64_dec_len(len) > outlen + 3)
		return -1;
	buf = palloc(pg_b64_dec_len(len));
	n = pg_b64_decode(s, len, buf, pg_b64_dec_len(len));
	if (n < 0 || n > outlen)
		return -1;
	memcpy(out, buf, n);
	pfree(buf);
	return n;
}

/* The answer of telnyx_apply_webhook. */
static Jsonb *
webhook_answer(bool applied, const char *reason, const char *event_id,
			   const char *event_type, const char *number_order_id,
			   int numbers)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"applied\": %s", applied ? "true" : "false");
	if (reason != NULL)
	{
		appendStringInfoString(&buf, ", \"reason\": ");
		escape_json(&buf, reason);
	}
	appendStringInfoString(&buf, ", \"event_id\": ");
	escape_json(&buf, event_id);
	appendStringInfoString(&buf, ", \"event_type\": ");
	escape_json(&buf, event_type);
	if (number_order_id != NULL)
	{
		appendStringInfoString(&buf, ", \"number_order_id\": ");
		escape_json(&buf, number_order_id);
		appendStringInfo(&buf, ", \"numbers\": %d", numbers);
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
