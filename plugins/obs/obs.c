/*
 * obs - dirty-data archiver to OBS or any S3-compatible object store: the
 * records of plugins/common/dirty_json.h, kept in one buffer per worker and
 * uploaded as objects PREFIX/JOB/WORKER/YYYYMMDDTHHMMSSZ-SEQ.jsonl (the time
 * of the object's first record, UTC; SEQ counts the objects of the process)
 * with libcurl, whose CURLOPT_AWS_SIGV4 signs every request (AWS Signature
 * Version 4; the payload's SHA-256 goes in x-amz-content-sha256).
 *
 * flush() uploads every non-empty buffer and returns once each object is
 * stored, and the core calls it before it confirms the LSN of the rows
 * written: a confirmed change whose row was refused is in the bucket. A
 * buffer that reaches rotate.size is uploaded at once.
 *
 * The core has no retry path for archivers, so uploads are tried again
 * here: no connection, a timeout, HTTP 5xx, 408 or 429 up to `retries`
 * more times, 1, 2, 4, 8, 16 s apart; anything else (403
 * InvalidAccessKeyId or SignatureDoesNotMatch, 404 NoSuchBucket, a
 * certificate the endpoint cannot prove) fails at once, naming endpoint,
 * bucket and the server's error code.
 *
 * Credentials (credentials.c): OBS_ACCESS_KEY_ID / OBS_SECRET_ACCESS_KEY,
 * else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment, else
 * the key file credentials_file; never the job file. Temporary credentials
 * bring a security token (OBS_SECURITY_TOKEN, AWS_SESSION_TOKEN, or the key
 * file's security_token), sent as X-Amz-Security-Token, a header libcurl
 * signs with the others. The secret and the token go to libcurl only, are
 * never printed, and are wiped at destroy(). What of the signature is
 * computed here (the payload's hash, the key's URI encoding, the scope) is
 * in sigv4.c; the server's error documents are read in s3error.c.
 */
#define _GNU_SOURCE /* asprintf */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <syncd/syncd.h>

#include "../common/dirty_json.h"
#include "credentials.h"
#include "s3error.h"
#include "sigv4.h"

#define OBS_VERSION "1.0"

typedef struct obs_opts {
	const char *endpoint;
	const char *bucket;
	const char *prefix;
	const char *region;
	const char *credentials_file;
	bool path_style;
	bool tls_verify;
	const char *ca_file;
	int64_t rotate_size; /* bytes */
	int64_t retries;
	int64_t timeout; /* ms */
} obs_opts;

static const syncd_option obs_options[] = {
    {.name = "endpoint",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "URL of the OBS or S3-compatible endpoint, e.g. "
             "https://obs.cn-north-4.myhuaweicloud.com or "
             "http://127.0.0.1:9000 (no scheme: https)",
     SYNCD_OPT_FIELD(obs_opts, endpoint)},
    {.name = "bucket",
     .type = SYNCD_OPT_STRING,
     .flags = SYNCD_OPT_REQUIRED,
     .help = "the bucket the objects go to (it must exist)",
     SYNCD_OPT_FIELD(obs_opts, bucket)},
    {.name = "prefix",
     .type = SYNCD_OPT_STRING,
     .default_value = "syncd/",
     .help = "start of every object key, before JOB/WORKER/; empty: none",
     SYNCD_OPT_FIELD(obs_opts, prefix)},
    {.name = "region",
     .type = SYNCD_OPT_STRING,
     .help = "signing region; default: REGION of an obs.REGION.* or "
             "s3.REGION.* endpoint host, else us-east-1",
     SYNCD_OPT_FIELD(obs_opts, region)},
    {.name = "credentials_file",
     .type = SYNCD_OPT_STRING,
     .help = "key file with access_key_id = ... and secret_access_key = "
             "... lines (mode 600), used when OBS_ACCESS_KEY_ID/"
             "OBS_SECRET_ACCESS_KEY and AWS_ACCESS_KEY_ID/"
             "AWS_SECRET_ACCESS_KEY are not set",
     SYNCD_OPT_FIELD(obs_opts, credentials_file)},
    {.name = "path_style",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help = "ENDPOINT/BUCKET/KEY URLs; false: virtual-hosted "
             "BUCKET.ENDPOINT-HOST/KEY",
     SYNCD_OPT_FIELD(obs_opts, path_style)},
    {.name = "tls.verify",
     .type = SYNCD_OPT_BOOL,
     .default_value = "true",
     .help = "check the endpoint's certificate and host name (https); "
             "false turns both checks off",
     SYNCD_OPT_FIELD(obs_opts, tls_verify)},
    {.name = "ca_file",
     .type = SYNCD_OPT_STRING,
     .help = "PEM file of the CAs to trust for the endpoint; default: the "
             "system's",
     SYNCD_OPT_FIELD(obs_opts, ca_file)},
    {.name = "rotate.size",
     .type = SYNCD_OPT_SIZE,
     .default_value = "8MB",
     .help = "upload a worker's buffer as one object when it reaches this "
             "size (every flush uploads what is buffered too)",
     .min = 1024,
     .max = 5LL << 30,
     .unit = "MB",
     SYNCD_OPT_FIELD(obs_opts, rotate_size)},
    {.name = "retries",
     .type = SYNCD_OPT_INT,
     .default_value = "5",
     .help = "tries after a failed upload (no connection, timeout, HTTP "
             "5xx/408/429), 1, 2, 4, 8, 16 s apart",
     .min = 0,
     .max = 100,
     SYNCD_OPT_FIELD(obs_opts, retries)},
    {.name = "timeout",
     .type = SYNCD_OPT_DURATION,
     .default_value = "60s",
     .help = "longest time one request may take",
     .min = 1000,
     .max = 3600000,
     .unit = "s",
     SYNCD_OPT_FIELD(obs_opts, timeout)},
    {.name = NULL}};

/* The records of one worker not yet uploaded. */
typedef struct obs_buf {
	char *data;
	size_t len, cap;
	size_t records;
	time_t first; /* when the first of them came */
} obs_buf;

typedef struct obs_arch {
	const syncd_host *host;
	char *endpoint; /* scheme://host[:port][/path], no final '/' */
	char *bucket;
	char *base;     /* URL of the bucket, no final '/' */
	char *list_url; /* lists at most one key (check) */
	char *prefix;   /* "" or ending in '/' */
	char *sigv4;    /* "aws:amz:REGION:s3" */
	obs_credentials cred;
	char *ca_file;
	bool verify;
	int64_t max_size;
	int64_t timeout_ms;
	int retries;
	bool curl_ready;
	CURL *curl;
	pthread_mutex_t lock; /* write() and flush() come from any worker */
	obs_buf *bufs;
	int nbufs;
	char error[1536]; /* why the last upload failed */
} obs_arch;

/* The outcome of one request. */
typedef struct obs_result {
	CURLcode cc;
	long status;
	char curl_error[CURL_ERROR_SIZE];
	char body[4096]; /* the start of the response (an S3 error document) */
	size_t body_len;
} obs_result;

/* SEQ of the object keys: unique within the process. */
static unsigned obs_seq;

static syncd_status
obs_oom(obs_arch *a)
{
	a->host->set_error(a->host, NULL, "out of memory");
	return SYNCD_FATAL;
}

/* ---- options ------------------------------------------------------------ */

/* The host part of an endpoint URL (after scheme://, before :port or /),
 * copied into buf. */
static void
obs_host(const char *endpoint, char *buf, size_t size)
{
	const char *h = strstr(endpoint, "://");
	size_t n;

	h = h ? h + 3 : endpoint;
	if (*h == '[') { /* [v6]:port */
		n = strcspn(h, "]/");
		n += h[n] == ']';
	} else {
		n = strcspn(h, ":/");
	}
	snprintf(buf, size, "%.*s", (int) n, h);
}

/* REGION of an obs.REGION.DOMAIN... or s3.REGION.DOMAIN... host (at least
 * four labels), else us-east-1. */
static char *
obs_default_region(const char *endpoint)
{
	char host[256];
	const char *dot1, *dot2;
	int labels = 1;

	obs_host(endpoint, host, sizeof host);
	for (const char *p = host; *p; p++)
		labels += *p == '.';
	dot1 = strchr(host, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (labels >= 4 && dot2 && dot2 > dot1 + 1 &&
	    (strncmp(host, "obs.", 4) == 0 || strncmp(host, "s3.", 3) == 0))
		return strndup(dot1 + 1, (size_t) (dot2 - dot1 - 1));
	return strdup("us-east-1");
}

static bool
obs_loopback(const char *endpoint)
{
	char host[256];

	obs_host(endpoint, host, sizeof host);
	return strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0;
}

static syncd_status
obs_endpoint(obs_arch *a)
{
	const obs_opts *o = a->host->options;
	const char *ep = o->endpoint;
	const char *bucket = o->bucket;
	const char *prefix = o->prefix;
	char *p;
	size_t n;

	if (strstr(ep, "://"))
		a->endpoint = strdup(ep);
	else if (asprintf(&a->endpoint, "https://%s", ep) < 0)
		a->endpoint = NULL;
	if (!a->endpoint)
		return obs_oom(a);
	n = strlen(a->endpoint);
	while (n > 0 && a->endpoint[n - 1] == '/')
		a->endpoint[--n] = '\0';
	if (strncmp(a->endpoint, "https://", 8) != 0 &&
	    strncmp(a->endpoint, "http://", 7) != 0) {
		a->host->set_error(
		    a->host, NULL,
		    "[archiver] endpoint = %s: not an http:// or "
		    "https:// URL",
		    ep);
		return SYNCD_FATAL;
	}
	if (strchr(a->endpoint, '?') || strchr(a->endpoint, '#') ||
	    !a->endpoint[strcspn(a->endpoint, ":") + 3]) {
		a->host->set_error(
		    a->host, NULL,
		    "[archiver] endpoint = %s: give scheme, host "
		    "and optionally port and path, e.g. "
		    "https://obs.cn-north-4.myhuaweicloud.com",
		    ep);
		return SYNCD_FATAL;
	}
	if (strlen(bucket) > 63 ||
	    bucket[strspn(bucket, "abcdefghijklmnopqrstuvwxyz"
	                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")]) {
		a->host->set_error(
		    a->host, NULL,
		    "[archiver] bucket = %s: not a bucket name "
		    "(letters, digits, '.', '-', '_'; at most 63)",
		    bucket);
		return SYNCD_FATAL;
	}
	a->bucket = strdup(bucket);
	if (o->path_style) {
		if (asprintf(&a->base, "%s/%s", a->endpoint, bucket) < 0)
			a->base = NULL;
	} else {
		int scheme =
		    (int) (strstr(a->endpoint, "://") + 3 - a->endpoint);
		if (asprintf(&a->base, "%.*s%s.%s", scheme, a->endpoint, bucket,
		             a->endpoint + scheme) < 0)
			a->base = NULL;
	}
	if (a->base &&
	    asprintf(&a->list_url, "%s%s?max-keys=1", a->base,
	             strchr(strstr(a->base, "://") + 3, '/') ? "" : "/") < 0)
		a->list_url = NULL;
	/* the prefix: no leading '/', one final '/' unless empty */
	while (prefix && *prefix == '/')
		prefix++;
	n = prefix ? strlen(prefix) : 0;
	while (n > 0 && prefix[n - 1] == '/')
		n--;
	if (asprintf(&p, "%.*s%s", (int) n, n ? prefix : "", n ? "/" : "") < 0)
		p = NULL;
	a->prefix = p;
	if (!a->bucket || !a->base || !a->list_url || !a->prefix)
		return obs_oom(a);
	{
		const char *r = o->region;
		char *region = r && *r ? strdup(r) : obs_default_region(ep);
		a->sigv4 = region ? sigv4_provider(region) : NULL;
		free(region);
	}
	return a->sigv4 ? SYNCD_OK : obs_oom(a);
}

/* ---- requests ----------------------------------------------------------- */

static size_t
obs_body(char *data, size_t size, size_t n, void *ctx)
{
	obs_result *r = ctx;
	size_t len = size * n, room = sizeof r->body - 1 - r->body_len;

	memcpy(r->body + r->body_len, data, len < room ? len : room);
	r->body_len += len < room ? len : room;
	r->body[r->body_len] = '\0';
	return len;
}

/* Frees a request's headers, wiping them first: one may hold the
 * security token. */
static void
obs_headers_free(struct curl_slist *h)
{
	for (struct curl_slist *l = h; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(h);
}

/* One request: PUT of body (len bytes) when body is not NULL, else GET.
 * Signed by libcurl (AWS SigV4). */
static void
obs_perform(obs_arch *a, const char *url, const char *body, size_t len,
            obs_result *r)
{
	char sha[SIGV4_HASH_SIZE + 32] = "x-amz-content-sha256: ";
	struct curl_slist *h = NULL, *h2;
	CURL *c = a->curl;

	memset(r, 0, sizeof *r);
	if (body) {
		if (!sigv4_payload_hash(body, len, sha + strlen(sha))) {
			r->cc = CURLE_OUT_OF_MEMORY;
			snprintf(r->curl_error, sizeof r->curl_error,
			         "could not hash the payload");
			return;
		}
	} else {
		strcat(sha, SIGV4_EMPTY_SHA256);
	}
	/* no "Expect:" to turn 100-continue off: libcurl 7.88 signs the
	 * empty header it does not send */
	h = curl_slist_append(NULL, sha);
	if (h && body) {
		h2 = curl_slist_append(h, "Content-Type: application/x-ndjson");
		if (!h2)
			curl_slist_free_all(h);
		h = h2;
	}
	/* temporary credentials: libcurl signs this header with the others */
	if (h && a->cred.token) {
		char *line;
		if (asprintf(&line, "X-Amz-Security-Token: %s", a->cred.token) <
		    0)
			line = NULL;
		h2 = line ? curl_slist_append(h, line) : NULL;
		if (line) {
			explicit_bzero(line, strlen(line));
			free(line);
		}
		if (!h2)
			obs_headers_free(h);
		h = h2;
	}
	if (!h) {
		r->cc = CURLE_OUT_OF_MEMORY;
		return;
	}

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS,
	                 (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "syncd-obs/" OBS_VERSION);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, a->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, a->cred.key_id);
	curl_easy_setopt(c, CURLOPT_PASSWORD, a->cred.secret);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_error);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, obs_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) a->timeout_ms);
	curl_easy_setopt(
	    c, CURLOPT_CONNECTTIMEOUT_MS,
	    (long) (a->timeout_ms < 10000 ? a->timeout_ms : 10000));
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, a->verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, a->verify ? 2L : 0L);
	if (a->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, a->ca_file);
	if (body) {
		/* the payload from memory, so that libcurl's signature and
		 * x-amz-content-sha256 cover the same bytes */
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t) len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	r->cc = curl_easy_perform(c);
	if (r->cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	/* nothing of the request is kept past it */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	obs_headers_free(h);
}

static bool
obs_ok(const obs_result *r)
{
	return r->cc == CURLE_OK && r->status >= 200 && r->status < 300;
}

/* Worth another try: the endpoint could not be reached or answered with
 * a server-side error. */
static bool
obs_transient(const obs_result *r)
{
	switch (r->cc) {
	case CURLE_OK:
		return r->status >= 500 || r->status == 408 || r->status == 429;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return false;
	default: return true;
	}
}

/* What went wrong, and the fix where one is known. */
static void
obs_describe(const obs_arch *a, const obs_result *r, char *out, size_t size)
{
	char code[128], msg[512];
	const char *hint = "";
	bool name_source = false;

	if (r->cc != CURLE_OK) {
		if (r->cc == CURLE_PEER_FAILED_VERIFICATION ||
		    r->cc == CURLE_SSL_ISSUER_ERROR ||
		    r->cc == CURLE_SSL_CACERT_BADFILE)
			hint = "; set [archiver] ca_file to the CA that signed "
			       "the endpoint's certificate (tls.verify = false "
			       "turns the check off)";
		snprintf(out, size, "%s%s",
		         *r->curl_error ? r->curl_error
		                        : curl_easy_strerror(r->cc),
		         hint);
		return;
	}
	s3_error_parse(r->body, r->body_len, code, sizeof code, msg,
	               sizeof msg);
	if (!*code)
		snprintf(code, sizeof code, "%s",
		         r->status == 404   ? "NoSuchBucket"
		         : r->status == 403 ? "AccessDenied"
		                            : "");
	if (strcmp(code, "InvalidAccessKeyId") == 0)
		hint = "; the endpoint does not know the access key ID: check "
		       "the credentials in ";
	else if (strcmp(code, "SignatureDoesNotMatch") == 0)
		hint = "; the secret access key does not match the access key "
		       "ID (or region is wrong): check the credentials in ";
	else if (strcmp(code, "InvalidToken") == 0 ||
	         strcmp(code, "ExpiredToken") == 0 ||
	         strcmp(code, "TokenRefreshRequired") == 0)
		hint = a->cred.token
		           ? "; the security token was refused or has expired: "
		             "renew the temporary credentials in "
		           : "; the endpoint wants temporary credentials: give "
		             "their security token with the key pair, in ";
	else if (strcmp(code, "NoSuchBucket") == 0)
		hint = "; create the bucket, or fix [archiver] bucket";
	else if (strcmp(code, "AccessDenied") == 0)
		hint = "; the credentials lack the right to write objects "
		       "into the bucket";
	else if (strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
	         strcmp(code, "PermanentRedirect") == 0 ||
	         strcmp(code, "IncorrectEndpoint") == 0 ||
	         (r->status >= 300 && r->status < 400))
		hint = "; set [archiver] endpoint and region to the bucket's "
		       "region (or try path_style = false)";
	else if (strcmp(code, "RequestTimeTooSkewed") == 0)
		hint = "; this machine's clock is off: synchronise it";
	/* the hints that end in "in " go on with where the credentials came
	 * from */
	name_source = *hint && hint[strlen(hint) - 1] == ' ';
	snprintf(out, size, "HTTP %ld%s%s%s%s%s%s", r->status, *code ? " " : "",
	         code, *msg ? ": " : "", msg, hint,
	         name_source ? a->cred.source : "");
}

/* ---- buffers and uploads ------------------------------------------------ */

static obs_buf *
obs_buffer(obs_arch *a, int worker)
{
	if (worker < 0)
		worker = 0;
	if (worker >= a->nbufs) {
		obs_buf *b =
		    realloc(a->bufs, (size_t) (worker + 1) * sizeof *b);
		if (!b)
			return NULL;
		memset(b + a->nbufs, 0,
		       (size_t) (worker + 1 - a->nbufs) * sizeof *b);
		a->bufs = b;
		a->nbufs = worker + 1;
	}
	return &a->bufs[worker];
}

/* Stores the records of worker w's buffer as one new object, trying again
 * after transient failures; the buffer is emptied when it is stored. */
static syncd_status
obs_upload(obs_arch *a, int w)
{
	obs_buf *b = &a->bufs[w];
	char stamp[32], *key = NULL, *ekey = NULL, *url = NULL;
	char what[1024];
	obs_result *r = malloc(sizeof *r);
	struct tm tm;
	syncd_status st = SYNCD_FATAL;

	gmtime_r(&b->first, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	if (!r ||
	    asprintf(&key, "%s%s/%d/%s-%u.jsonl", a->prefix, a->host->job->name,
	             w, stamp,
	             __atomic_add_fetch(&obs_seq, 1, __ATOMIC_RELAXED)) < 0)
		key = NULL;
	if (key)
		ekey = sigv4_encode_key(key);
	if (!ekey || asprintf(&url, "%s/%s", a->base, ekey) < 0) {
		obs_oom(a);
		goto done;
	}
	for (int attempt = 0;; attempt++) {
		obs_credentials_refresh(a->host, &a->cred);
		obs_perform(a, url, b->data, b->len, r);
		if (obs_ok(r))
			break;
		obs_describe(a, r, what, sizeof what);
		if (!obs_transient(r) || attempt >= a->retries) {
			snprintf(
			    a->error, sizeof a->error,
			    "could not upload %s (%zu dirty rows) to bucket "
			    "\"%s\" at %s%s: %s",
			    key, b->records, a->bucket, a->endpoint,
			    attempt > 0 ? " after retries" : "", what);
			a->host->set_error(a->host, NULL, "%s", a->error);
			goto done;
		}
		{
			int delay = attempt < 4 ? 1 << attempt : 16;
			SYNCD_LOG_WARNING(
			    a->host,
			    "could not upload %s to bucket \"%s\" at "
			    "%s: %s; retry %d of %d in %d s",
			    key, a->bucket, a->endpoint, what, attempt + 1,
			    a->retries, delay);
			a->host->metric_add(a->host, "upload_retries_total", 1);
			sleep((unsigned) delay);
		}
	}
	SYNCD_LOG_DEBUG(a->host, "uploaded %s: %zu dirty rows, %zu bytes", key,
	                b->records, b->len);
	a->host->metric_add(a->host, "objects_total", 1);
	a->host->metric_add(a->host, "bytes_total", (double) b->len);
	b->len = 0;
	b->records = 0;
	st = SYNCD_OK;
done:
	free(url);
	free(ekey);
	free(key);
	free(r);
	return st;
}

/* Uploads every buffer that holds records. Called with the lock held. */
static syncd_status
obs_flush_all(obs_arch *a)
{
	for (int w = 0; w < a->nbufs; w++)
		if (a->bufs[w].len > 0 && obs_upload(a, w) != SYNCD_OK)
			return SYNCD_FATAL;
	return SYNCD_OK;
}

/* ---- operations --------------------------------------------------------- */

static void obs_destroy(void *state);

/* On failure everything is released here: the core calls destroy() only
 * after a successful create(). */
static syncd_status
obs_create(const syncd_host *host, void **state)
{
	const obs_opts *o = host->options;
	obs_arch *a = calloc(1, sizeof *a);
	const char *ca;

	*state = NULL;
	if (!a)
		return SYNCD_FATAL;
	a->host = host;
	pthread_mutex_init(&a->lock, NULL);
	a->verify = o->tls_verify;
	a->max_size = o->rotate_size;
	a->timeout_ms = o->timeout;
	a->retries = (int) o->retries;
	if (obs_endpoint(a) != SYNCD_OK ||
	    obs_credentials_load(host, o->credentials_file, a->bucket,
	                         a->endpoint, &a->cred) != SYNCD_OK)
		goto fail;
	ca = o->ca_file;
	if (ca && *ca) {
		if (access(ca, R_OK) != 0) {
			host->set_error(host, NULL,
			                "cannot read [archiver] ca_file %s: %s",
			                ca, strerror(errno));
			goto fail;
		}
		a->ca_file = strdup(ca);
		if (!a->ca_file) {
			obs_oom(a);
			goto fail;
		}
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->set_error(host, NULL, "could not initialise libcurl");
		goto fail;
	}
	a->curl_ready = true;
	a->curl = curl_easy_init();
	if (!a->curl) {
		host->set_error(host, NULL, "could not initialise libcurl");
		goto fail;
	}
	if (!a->verify && strncmp(a->endpoint, "https://", 8) == 0)
		SYNCD_LOG_WARNING(
		    host,
		    "tls.verify = false: the certificate of %s is not "
		    "checked; anyone on the way can read and change the "
		    "dirty rows",
		    a->endpoint);
	if (strncmp(a->endpoint, "http://", 7) == 0 &&
	    !obs_loopback(a->endpoint))
		SYNCD_LOG_WARNING(
		    host,
		    "endpoint %s is plain http: the dirty rows travel "
		    "unencrypted (the requests are signed)",
		    a->endpoint);
	SYNCD_LOG_INFO(host,
	               "dirty rows go to bucket \"%s\" at %s as %s%s/WORKER/"
	               "*.jsonl; credentials from %s",
	               a->bucket, a->endpoint, a->prefix, host->job->name,
	               a->cred.source);
	*state = a;
	return SYNCD_OK;
fail:
	obs_destroy(a);
	return SYNCD_FATAL;
}

static syncd_status
obs_flush(void *state)
{
	obs_arch *a = state;
	syncd_status st;

	pthread_mutex_lock(&a->lock);
	st = obs_flush_all(a);
	pthread_mutex_unlock(&a->lock);
	return st;
}

static void
obs_destroy(void *state)
{
	obs_arch *a = state;

	if (!a)
		return;
	if (a->curl) {
		size_t left = 0;
		for (int w = 0; w < a->nbufs; w++)
			left += a->bufs[w].records;
		/* what is left is uploaded, unless uploads failed already:
		 * the job is failing, and those rows come again */
		if (left > 0 && (*a->error || obs_flush_all(a) != SYNCD_OK))
			SYNCD_LOG_ERROR(
			    a->host,
			    "%zu dirty rows not archived (their changes "
			    "were not confirmed: they come again after "
			    "a restart): %s",
			    left, a->error);
		curl_easy_cleanup(a->curl);
	}
	if (a->curl_ready)
		curl_global_cleanup();
	for (int w = 0; w < a->nbufs; w++)
		free(a->bufs[w].data);
	free(a->bufs);
	obs_credentials_free(&a->cred);
	free(a->ca_file);
	free(a->sigv4);
	free(a->prefix);
	free(a->list_url);
	free(a->base);
	free(a->bucket);
	free(a->endpoint);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* `syncd --check`: list at most one key of the bucket, which proves the
 * endpoint, the certificate, the credentials and the bucket. */
static syncd_status
obs_check(void *state)
{
	obs_arch *a = state;
	obs_result *r = malloc(sizeof *r);
	char what[1024];
	syncd_status st = SYNCD_FATAL;

	if (!r) {
		a->host->set_error(a->host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	pthread_mutex_lock(&a->lock);
	obs_credentials_refresh(a->host, &a->cred);
	obs_perform(a, a->list_url, NULL, 0, r);
	pthread_mutex_unlock(&a->lock);
	if (obs_ok(r)) {
		SYNCD_LOG_INFO(a->host,
		               "bucket \"%s\" at %s answers, with the "
		               "credentials from %s",
		               a->bucket, a->endpoint, a->cred.source);
		st = SYNCD_OK;
		goto done;
	}
	obs_describe(a, r, what, sizeof what);
	if (r->cc == CURLE_OK && r->status == 403 &&
	    strstr(what, "AccessDenied")) {
		/* a key that may write objects but not list them */
		SYNCD_LOG_WARNING(
		    a->host,
		    "bucket \"%s\" at %s: listing is denied (%s); "
		    "uploads need only the right to write objects and "
		    "are tried when dirty rows come",
		    a->bucket, a->endpoint, what);
		st = SYNCD_OK;
		goto done;
	}
	a->host->set_error(a->host, NULL, "bucket \"%s\" at %s: %s", a->bucket,
	                   a->endpoint, what);
done:
	free(r);
	return st;
}

static syncd_status
obs_write(void *state, const syncd_dirty_record *rec)
{
	obs_arch *a = state;
	size_t len;
	char *line = dirty_json_line(rec, &len);
	int w = rec->worker < 0 ? 0 : rec->worker;
	syncd_status st = SYNCD_OK;
	obs_buf *b;

	if (!line) {
		a->host->set_error(a->host, NULL, "out of memory");
		return SYNCD_FATAL;
	}
	pthread_mutex_lock(&a->lock);
	b = obs_buffer(a, w);
	if (b && b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *d;
		while (cap < b->len + len)
			cap *= 2;
		d = realloc(b->data, cap);
		if (d) {
			b->data = d;
			b->cap = cap;
		} else {
			b = NULL;
		}
	}
	if (!b) {
		a->host->set_error(a->host, NULL, "out of memory");
		st = SYNCD_FATAL;
	} else {
		if (b->len == 0)
			b->first = time(NULL);
		memcpy(b->data + b->len, line, len);
		b->len += len;
		b->records++;
		if ((int64_t) b->len >= a->max_size)
			st = obs_upload(a, w);
	}
	pthread_mutex_unlock(&a->lock);
	free(line);
	return st;
}

static const syncd_archiver_ops obs_ops = {
    .size = sizeof(syncd_archiver_ops),
    .create = obs_create,
    .destroy = obs_destroy,
    .check = obs_check,
    .write = obs_write,
    .flush = obs_flush,
};

SYNCD_PLUGIN(.kind = SYNCD_KIND_ARCHIVER, .name = "obs", .version = OBS_VERSION,
             .description = "dirty data as JSON-lines objects in OBS or any "
                            "S3-compatible store (libcurl, AWS SigV4)",
             .options = obs_options, .options_size = sizeof(obs_opts),
             .ops.archiver = &obs_ops);
