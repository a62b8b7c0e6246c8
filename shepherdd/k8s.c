/*
 * The Kubernetes REST client: credentials, the pool of CURL easy handles behind max_inflight
 * slots, one request with its deadline, retries of 429 and 5xx, and the mapping of transport
 * failures. Watches and the line splitter are in k8s-watch.c.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "breaker.h"
#include "buf.h"
#include "error.h"
#include "json.h"
#include "k8s-internal.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "log.h"
#include "util.h"

#define MAX_ATTEMPTS 10
#define CONNECT_TIMEOUT_MS 10000L
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 5000

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int dup_opt(const char *in, char **out)
{
	if (!in)
		return 0;
	*out = strdup(in);
	return *out ? 0 : -SHP_E_NOMEM;
}

struct shd_k8s *shd_k8s_free(struct shd_k8s *k)
{
	if (!k)
		return NULL;
	for (int i = 0; k->slots && i < k->max_inflight; i++)
		if (k->slots[i].h)
			curl_easy_cleanup(k->slots[i].h);
	free(k->slots);
	free_secret(k->auth_header);
	free_secret(k->key_pem);
	free(k->cert_pem);
	free(k->ca_pem);
	free(k->connect_to);
	free(k->server);
	free(k->name);
	if (k->sync_ready) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
	}
	free(k);
	return NULL;
}

/*
 * tls-server-name: curl verifies the certificate against the URL's host, so the URL names the
 * TLS name and CURLOPT_CONNECT_TO sends the connection to the real host.
 */
static int apply_tls_name(struct shd_k8s *k, const char *tls_name, struct shp_error *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *url = NULL;
	int rc = 0;

	if (!u)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, k->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_HOST, tls_name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		rc = shp_error_set(err, SHP_E_INVAL,
				   "cluster '%s': cannot use tls-server-name '%s'", k->name,
				   tls_name);
	} else if (asprintf(&k->connect_to, "%s:%s:%s:%s", tls_name, port, host, port) < 0) {
		k->connect_to = NULL;
		rc = shp_error_set(err, SHP_E_NOMEM, "out of memory");
	} else {
		free(k->server);
		k->server = strdup(url);
		if (!k->server)
			rc = shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	curl_free(host);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(u);
	return rc;
}

static int copy_config(struct shd_k8s *k, const struct shd_kubeconfig *kc, const char *name,
		       struct shp_error *err)
{
	size_t n;

	if (!kc->server || (strncmp(kc->server, "https://", 8) != 0 &&
			    !(kc->insecure && strncmp(kc->server, "http://", 7) == 0)))
		return shp_error_set(err, SHP_E_INVAL, "cluster '%s': the server must be https://",
				     name);
	if (kc->token && strpbrk(kc->token, "\r\n"))
		return shp_error_set(err, SHP_E_INVAL, "cluster '%s': the token has a line break",
				     name);
	if (dup_opt(name, &k->name) < 0 || dup_opt(kc->server, &k->server) < 0 ||
	    dup_opt(kc->ca_pem, &k->ca_pem) < 0 || dup_opt(kc->client_cert_pem, &k->cert_pem) < 0 ||
	    dup_opt(kc->client_key_pem, &k->key_pem) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (kc->token && asprintf(&k->auth_header, "Authorization: Bearer %s", kc->token) < 0) {
		k->auth_header = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	k->insecure = kc->insecure;
	if (kc->tls_server_name && *kc->tls_server_name &&
	    apply_tls_name(k, kc->tls_server_name, err) < 0)
		return -SHP_E_INVAL;
	n = strlen(k->server); /* curl's URL rebuild ends in '/' too */
	while (n > 8 && k->server[n - 1] == '/')
		k->server[--n] = '\0';
	return 0;
}

struct shd_k8s *shd_k8s_new(const struct shd_kubeconfig *kc, const char *name, int max_inflight,
			    struct shp_error *err)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = calloc(1, sizeof(*k));
	pthread_condattr_t attr;
	struct shp_error e = SHP_ERROR_INIT;

	if (!k) {
		(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	k->max_inflight = max_inflight > 0 ? max_inflight : 8;
	if (copy_config(k, kc, name ? name : "?", err) < 0)
		return NULL;
	k->slots = calloc((size_t)k->max_inflight, sizeof(*k->slots));
	if (!k->slots) {
		(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	for (int i = 0; i < k->max_inflight; i++) {
		k->slots[i].h = curl_easy_init();
		if (!k->slots[i].h) {
			(void)shp_error_set(err, SHP_E_NOMEM, "cannot create a curl handle");
			return NULL;
		}
	}
	/* Check once that this libcurl takes every option we use. */
	if (shd_k8s_setup_handle(k, k->slots[0].h, &e) < 0) {
		if (err)
			*err = e;
		return NULL;
	}
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&attr);
	(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &attr);
	pthread_condattr_destroy(&attr);
	k->sync_ready = true;
	k->rng = shp_now_monotonic_ns() | 1;
	return TAKE_PTR(k);
}

const char *shd_k8s_name(const struct shd_k8s *k)
{
	return k->name;
}

const char *shd_k8s_server(const struct shd_k8s *k)
{
	return k->server;
}

void shd_k8s_get_stats(struct shd_k8s *k, struct shd_k8s_stats *ret)
{
	pthread_mutex_lock(&k->mu);
	*ret = (struct shd_k8s_stats){
		.requests = k->requests, .retries = k->retries, .max_busy = k->max_busy};
	pthread_mutex_unlock(&k->mu);
}

/* ---- handles -------------------------------------------------------------------------------- */

static int blob(CURL *h, CURLoption opt, const char *pem)
{
	struct curl_blob b = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};

	return curl_easy_setopt(h, opt, &b) == CURLE_OK ? 0 : -1;
}

int shd_k8s_setup_handle(struct shd_k8s *k, CURL *h, struct shp_error *err)
{
	curl_easy_reset(h);
	(void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(h, CURLOPT_USERAGENT, "shepherd/" PACKAGE_VERSION);
	(void)curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075500
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
#endif
	if (k->ca_pem && blob(h, CURLOPT_CAINFO_BLOB, k->ca_pem) < 0)
		return shp_error_set(err, SHP_E_INVAL,
				     "cluster '%s': this libcurl cannot take an in-memory CA",
				     k->name);
	if (k->cert_pem && (blob(h, CURLOPT_SSLCERT_BLOB, k->cert_pem) < 0 ||
			    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK))
		return shp_error_set(err, SHP_E_INVAL,
				     "cluster '%s': this libcurl cannot take an in-memory client "
				     "certificate",
				     k->name);
	if (k->key_pem && (blob(h, CURLOPT_SSLKEY_BLOB, k->key_pem) < 0 ||
			   curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK))
		return shp_error_set(
			err, SHP_E_INVAL,
			"cluster '%s': this libcurl cannot take an in-memory client key", k->name);
	if (k->insecure) {
		(void)curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		(void)curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return 0;
}

/* The request's headers; the copy of the token in it is wiped by free_headers. */
struct curl_slist *shd_k8s_headers(struct shd_k8s *k, const char *content_type, bool text)
{
	struct curl_slist *l = NULL, *n;
	char ct[96];

	l = curl_slist_append(l, text ? "Accept: text/plain, application/json"
				      : "Accept: "
					"application/json");
	if (l && content_type) {
		(void)snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		n = curl_slist_append(l, ct);
		l = n ? n : (shd_k8s_free_headers(l), NULL);
	}
	if (l) {
		n = curl_slist_append(l, "Expect:");
		l = n ? n : (shd_k8s_free_headers(l), NULL);
	}
	if (l && k->auth_header) {
		n = curl_slist_append(l, k->auth_header);
		l = n ? n : (shd_k8s_free_headers(l), NULL);
	}
	return l;
}

void shd_k8s_free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Header lines of an answer: Retry-After kept, Warning logged (never an error). */
size_t shd_k8s_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct shd_k8s_xfer *x = ud;
	size_t len = size * n, v, end = len;

	/* curl's header data is not NUL-terminated: every read stays within len */
	while (end > 0 && (p[end - 1] == '\r' || p[end - 1] == '\n'))
		end--;
	if (end > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		for (v = 12; v < end && (p[v] == ' ' || p[v] == '\t'); v++)
			;
		(void)snprintf(x->retry_after, sizeof(x->retry_after), "%.*s",
			       (int)(end - v < 31 ? end - v : 31), p + v);
	} else if (end > 8 && strncasecmp(p, "warning:", 8) == 0) {
		log_debug("cluster '%s' warns:%.*s", x->k->name,
			  (int)(end - 8 < 300 ? end - 8 : 300), p + 8);
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct shd_k8s_xfer *x = ud;
	size_t len = size * n;

	if (shp_buf_addn(&x->body, p, len) < 0) {
		x->over = true;
		return 0;
	}
	return len;
}

/* ---- slots ---------------------------------------------------------------------------------- */

static int acquire(struct shd_k8s *k, uint64_t deadline_ns, struct shp_error *err)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u),
			      .tv_nsec = (long)(deadline_ns % 1000000000u)};
	int slot = -1;

	pthread_mutex_lock(&k->mu);
	while (k->busy == k->max_inflight) {
		if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) == ETIMEDOUT &&
		    k->busy == k->max_inflight)
			break;
	}
	for (int i = 0; k->busy < k->max_inflight && i < k->max_inflight; i++)
		if (!k->slots[i].busy) {
			k->slots[i].busy = true;
			slot = i;
			if (++k->busy > k->max_busy)
				k->max_busy = k->busy;
			break;
		}
	pthread_mutex_unlock(&k->mu);
	if (slot < 0)
		return shp_error_set(err, SHP_E_TIMEOUT,
				     "waiting for a free connection to cluster '%s'", k->name);
	return slot;
}

static void release_slot(struct shd_k8s *k, int slot)
{
	pthread_mutex_lock(&k->mu);
	k->slots[slot].busy = false;
	k->busy--;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

/* ---- one exchange --------------------------------------------------------------------------- */

int shd_k8s_transport_error(struct shd_k8s *k, CURLcode cc, const char *detail, long waited_ms,
			    struct shp_error *err)
{
	const char *why = detail && *detail ? detail : curl_easy_strerror(cc);

	if (cc == CURLE_OPERATION_TIMEDOUT)
		return shp_error_set(
			err, SHP_E_TIMEOUT,
			"no answer from cluster '%s' at '%s' before the deadline (%ld ms)", k->name,
			k->server, waited_ms);
	shp_error_set(err, SHP_E_UNAVAIL, "cluster '%s' at '%s' is unreachable: %s", k->name,
		      k->server, why);
	shp_error_api_code(err, "UNREACHABLE");
	return -SHP_E_UNAVAIL;
}

static long remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = shp_now_monotonic_ns();

	return deadline_ns > now ? (long)((deadline_ns - now) / 1000000u) : 0;
}

/* Set the method, URL, body and deadline of a request on h. */
int shd_k8s_prepare(struct shd_k8s *k, CURL *h, const char *method, const char *path,
		    const char *body, size_t body_len, long timeout_ms, struct shp_buf *url)
{
	if (shp_buf_add(url, k->server) < 0 || shp_buf_add(url, path) < 0)
		return -SHP_E_LIMIT;
	(void)curl_easy_setopt(h, CURLOPT_URL, url->buf);
	if (strcmp(method, "GET") == 0) {
		(void)curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		(void)curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body || strcmp(method, "DELETE") != 0) {
			(void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
			(void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					       (curl_off_t)(body ? body_len : 0));
		}
	}
	(void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	(void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			       timeout_ms > 0 && timeout_ms < CONNECT_TIMEOUT_MS
				       ? timeout_ms
				       : CONNECT_TIMEOUT_MS);
	return 0;
}

static int exchange(struct shd_k8s *k, CURL *h, const struct shd_k8s_req *req, const char *body,
		    struct shd_k8s_xfer *x, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf url = SHP_BUF_INIT(64 * 1024);
	struct curl_slist *hdrs = NULL, *connect_to = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long left = remaining_ms(req->deadline_ns);
	CURLcode cc;
	int rc;

	if (left <= 0)
		return shp_error_set(err, SHP_E_TIMEOUT,
				     "the deadline passed before the request to cluster '%s'",
				     k->name);
	rc = shd_k8s_setup_handle(k, h, err);
	if (rc < 0)
		return rc;
	(void)curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, req->fresh ? 1L : 0L);
	if (shd_k8s_prepare(k, h, req->method, req->path, body, body ? strlen(body) : 0, left,
			    &url) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "request path too long");
	hdrs = shd_k8s_headers(
		k, body ? (req->content_type ? req->content_type : "application/json") : NULL,
		req->text);
	if (k->connect_to)
		connect_to = curl_slist_append(NULL, k->connect_to);
	if (!hdrs || (k->connect_to && !connect_to)) {
		shd_k8s_free_headers(hdrs);
		curl_slist_free_all(connect_to);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	(void)curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	(void)curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, shd_k8s_on_header);
	(void)curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(h);
	(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
	/* the handle must not keep pointers into this frame */
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	shd_k8s_free_headers(hdrs);
	curl_slist_free_all(connect_to);
	if (cc == CURLE_WRITE_ERROR && x->over)
		return shp_error_set(err, SHP_E_LIMIT,
				     "the answer from cluster '%s' is larger than %u bytes",
				     k->name, SHD_K8S_BODY_MAX);
	if (cc != CURLE_OK)
		return shd_k8s_transport_error(k, cc, errbuf, left, err);
	return 0;
}

/* ---- the call ---------------------------------------------------------------------------------
 */

void shd_k8s_resp_release(struct shd_k8s_resp *r)
{
	json_decref(r->json);
	free(r->text);
	*r = (struct shd_k8s_resp){0};
}

/* The Status message of a failed answer, for callers that look at the cluster's words. */
static void failure_message(const struct shp_buf *body, char *out, size_t size)
{
	json_auto_t *st = json_loadb(body->buf, body->len, 0, NULL);
	const char *m = json_string_value(json_object_get(st, "message"));
	size_t n = 0;

	for (; m && *m && n + 1 < size; m++)
		if ((unsigned char)*m >= 0x20 && *m != 0x7f)
			out[n++] = *m;
	out[n] = '\0';
}

static int parse_ok(struct shd_k8s *k, const struct shd_k8s_req *req, struct shd_k8s_xfer *x,
		    struct shd_k8s_resp *ret, struct shp_error *err)
{
	struct shp_error e = SHP_ERROR_INIT;

	if (req->text) {
		ret->text = shp_buf_detach(&x->body, NULL);
		return ret->text ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (x->body.len == 0)
		return 0;
	ret->json = shp_json_parse(x->body.buf, x->body.len, SHD_K8S_JSON_DEPTH, &e);
	if (!ret->json)
		return shp_error_set(err, SHP_E_PROTO, "cluster '%s' answered %s %.200s with %s",
				     k->name, req->method, req->path, e.msg);
	return 0;
}

/* How long to wait before the next attempt: the server's word, else backoff with jitter. */
static long retry_delay_ms(struct shd_k8s *k, const struct shd_k8s_xfer *x,
			   const struct shd_k8s_failure *f, int attempt)
{
	uint64_t seed;

	if (x->retry_after[0])
		return (long)f->retry_after_s * 1000;
	pthread_mutex_lock(&k->mu);
	seed = k->rng;
	k->rng = k->rng * 6364136223846793005ull + 1442695040888963407ull; /* a fresh seed each */
	pthread_mutex_unlock(&k->mu);
	return (long)shd_backoff_ms(attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS, &seed);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void count(struct shd_k8s *k, int attempt)
{
	pthread_mutex_lock(&k->mu);
	k->requests++;
	if (attempt > 0)
		k->retries++;
	pthread_mutex_unlock(&k->mu);
}

int shd_k8s_call(struct shd_k8s *k, const struct shd_k8s_req *req, struct shd_k8s_resp *ret,
		 struct shp_error *err)
{
	_cleanup_free_ char *body = NULL;
	struct shp_error e = SHP_ERROR_INIT;

	*ret = (struct shd_k8s_resp){0};
	if (req->body) {
		body = json_dumps(req->body, JSON_COMPACT);
		if (!body)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	for (int attempt = 0, last_rc = 0;; attempt++) {
		struct shd_k8s_xfer x = {.k = k, .body = SHP_BUF_INIT(SHD_K8S_BODY_MAX)};
		int slot = acquire(k, req->deadline_ns, err), rc;
		long delay;

		if (slot >= 0) {
			count(k, attempt);
			rc = exchange(k, k->slots[slot].h, req, body, &x, err);
			release_slot(k, slot);
		} else
			rc = slot;
		if (rc == -SHP_E_TIMEOUT && last_rc < 0) {
			/* the deadline ended a retry: what the cluster kept answering says more */
			shp_buf_release(&x.body);
			if (err)
				*err = e;
			return last_rc;
		}
		if (slot < 0)
			return slot;
		ret->status = x.status;
		if (rc == 0 && x.status >= 200 && x.status < 300) {
			rc = parse_ok(k, req, &x, ret, err);
			shp_buf_release(&x.body);
			return rc;
		}
		if (rc < 0) {
			shp_buf_release(&x.body);
			return rc;
		}
		e = (struct shp_error)SHP_ERROR_INIT;
		rc = shd_k8s_error(x.status, x.body.buf, x.body.len,
				   x.retry_after[0] ? x.retry_after : NULL, &ret->failure, &e);
		failure_message(&x.body, ret->message, sizeof(ret->message));
		shp_buf_release(&x.body);
		delay = ret->failure.retryable ? retry_delay_ms(k, &x, &ret->failure, attempt) : -1;
		if (delay < 0 || attempt + 1 >= MAX_ATTEMPTS ||
		    remaining_ms(req->deadline_ns) <= delay + 50) {
			if (err)
				*err = e;
			return rc;
		}
		last_rc = rc;
		log_debug("cluster '%s': %s %.200s answered %ld, retrying in %ld ms", k->name,
			  req->method, req->path, x.status, delay);
		sleep_ms(delay);
	}
}

/* ---- paths ---------------------------------------------------------------------------------- */

static int escape(struct shp_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int rc;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			rc = shp_buf_addch(b, (char)c);
		else
			rc = shp_buf_addf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int shd_k8s_pathf(struct shp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc = 0;

	va_start(ap, fmt);
	for (const char *p = fmt; *p && rc == 0; p++) {
		if (*p != '%') {
			rc = shp_buf_addch(b, *p);
		} else if (p[1] == '%') {
			rc = shp_buf_addch(b, '%');
			p++;
		} else if (p[1] == 's') {
			const char *s = va_arg(ap, const char *);
			rc = escape(b, s ? s : "");
			p++;
		} else {
			rc = -SHP_E_INVAL;
		}
	}
	va_end(ap);
	return rc;
}

int shd_k8s_query(struct shp_buf *b, const char *key, const char *value)
{
	int rc;

	if (!value)
		return 0;
	rc = shp_buf_addch(b, strchr(b->buf, '?') ? '&' : '?');
	if (rc == 0)
		rc = escape(b, key);
	if (rc == 0)
		rc = shp_buf_addch(b, '=');
	return rc < 0 ? rc : escape(b, value);
}
