/*
 * The client side of the wire: one libcurl easy handle per struct shp_httpc, reset before each
 * request (the connection survives the reset), a capped body sink, the few response headers the
 * CLI needs, and the mapping of transport failures and daemon error bodies onto shp_error.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "api.h"
#include "error.h"
#include "httpc.h"
#include "json.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define CONNECT_TIMEOUT_MS 10000L

SHP_DEFINE_CLEANUP(struct curl_slist *, curl_slist_free_all)

struct shp_httpc {
	CURL *curl;
	char *socket_path; /* set when talking over the Unix socket */
	char *base_url; /* "http://localhost" (socket) or the server URL without a trailing '/' */
	char *auth_header; /* "Authorization: Bearer ..."; wiped on free */
	char *cacert;
	char *cert;
	char *key;
	long timeout_ms;
	bool verbose;
	char errbuf[CURL_ERROR_SIZE];
};

/* What the callbacks of one transfer write into. */
struct transfer {
	struct shp_httpc_response *resp;
	bool over_cap;
};

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static int dup_opt(const char *in, char **out, struct shp_error *err)
{
	if (!in || !in[0])
		return 0;
	*out = strdup(in);
	if (!*out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

struct shp_httpc *shp_httpc_free(struct shp_httpc *c)
{
	if (!c)
		return NULL;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->socket_path);
	free(c->base_url);
	free_secret(c->auth_header);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c);
	return NULL;
}

static int set_base_url(struct shp_httpc *c, const struct shp_httpc_config *cfg,
			struct shp_error *err)
{
	size_t n;

	if (!cfg->server_url) {
		if (!cfg->socket_path || !cfg->socket_path[0])
			return shp_error_set(err, SHP_E_INVAL,
					     "no socket path or server URL given");
		if (dup_opt(cfg->socket_path, &c->socket_path, err) < 0)
			return -SHP_E_NOMEM;
		return dup_opt("http://localhost", &c->base_url, err);
	}
	/* Bearer tokens never travel in clear text: a server URL must be https. */
	if (strncasecmp(cfg->server_url, "https://", 8) != 0 || !cfg->server_url[8])
		return shp_error_set(err, SHP_E_INVAL, "server URL '%s' must start with https://",
				     cfg->server_url);
	if (strpbrk(cfg->server_url, " \t\r\n?#"))
		return shp_error_set(err, SHP_E_INVAL,
				     "server URL '%s' must be https://HOST[:PORT][/PREFIX]",
				     cfg->server_url);
	if (dup_opt(cfg->server_url, &c->base_url, err) < 0)
		return -SHP_E_NOMEM;
	n = strlen(c->base_url);
	while (n > 8 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	return 0;
}

struct shp_httpc *shp_httpc_new(const struct shp_httpc_config *cfg, struct shp_error *err)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = NULL;

	c = calloc(1, sizeof(*c));
	if (!c) {
		(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	if (set_base_url(c, cfg, err) < 0)
		return NULL;
	if (dup_opt(cfg->cacert, &c->cacert, err) < 0 || dup_opt(cfg->cert, &c->cert, err) < 0 ||
	    dup_opt(cfg->key, &c->key, err) < 0)
		return NULL;
	if (cfg->token && cfg->token[0]) {
		if (strpbrk(cfg->token, "\r\n")) {
			(void)shp_error_set(err, SHP_E_INVAL, "the token contains a line break");
			return NULL;
		}
		if (asprintf(&c->auth_header, "Authorization: Bearer %s", cfg->token) < 0) {
			c->auth_header = NULL;
			(void)shp_error_set(err, SHP_E_NOMEM, "out of memory");
			return NULL;
		}
	}
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	c->verbose = cfg->verbose;
	c->curl = curl_easy_init();
	if (!c->curl) {
		(void)shp_error_set(err, SHP_E_NOMEM, "cannot create an HTTP handle");
		return NULL;
	}
	return TAKE_PTR(c);
}

void shp_httpc_response_init(struct shp_httpc_response *r)
{
	*r = (struct shp_httpc_response){.status = 0, .retry_after = -1};
	shp_buf_init(&r->body, SHP_HTTPC_BODY_MAX);
}

void shp_httpc_response_release(struct shp_httpc_response *r)
{
	size_t max = r->body.max;

	shp_buf_release(&r->body);
	*r = (struct shp_httpc_response){.status = 0, .retry_after = -1};
	shp_buf_init(&r->body, max);
}

/* Forget what an earlier response (or an interim 1xx one) left, keeping the body's cap. */
static void response_reset(struct shp_httpc_response *r)
{
	shp_buf_reset(&r->body);
	r->status = 0;
	r->request_id[0] = '\0';
	r->retry_after = -1;
	r->content_type[0] = '\0';
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	int r;

	r = shp_buf_addn(&t->resp->body, data, n);
	if (r == -SHP_E_LIMIT)
		t->over_cap = true;
	return r < 0 ? 0 : n;
}

/* Copy a header value, keeping printable ASCII only (it may end up on a terminal). */
static void copy_header_value(const char *v, size_t n, char *out, size_t size)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 1 < size; i++)
		if (v[i] > 0x20 && v[i] < 0x7f)
			out[j++] = v[i];
		else if (v[i] == ' ' && j > 0)
			out[j++] = ' ';
	while (j > 0 && out[j - 1] == ' ')
		j--;
	out[j] = '\0';
}

/* Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3). */
static long parse_retry_after(const char *v)
{
	char *end;
	long secs;
	time_t when;

	if (v[0] >= '0' && v[0] <= '9') {
		errno = 0;
		secs = strtol(v, &end, 10);
		if (errno || *end)
			return -1;
		return secs;
	}
	when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	secs = (long)(when - time(NULL));
	return secs < 0 ? 0 : secs;
}

static bool header_is(const char *line, size_t n, const char *name, const char **ret_value,
		      size_t *ret_len)
{
	size_t k = strlen(name);
	const char *v;
	size_t len;

	if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
		return false;
	v = line + k + 1;
	len = n - k - 1;
	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	*ret_value = v;
	*ret_len = len;
	return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	struct shp_httpc_response *r = t->resp;
	size_t n = size * nmemb;
	const char *v;
	size_t len;
	char tmp[64];

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new status line: the headers of an interim response do not count. */
		response_reset(r);
		return n;
	}
	if (header_is(line, n, SHP_HDR_REQUEST_ID, &v, &len)) {
		copy_header_value(v, len, r->request_id, sizeof(r->request_id));
	} else if (header_is(line, n, SHP_HDR_RETRY_AFTER, &v, &len)) {
		copy_header_value(v, len, tmp, sizeof(tmp));
		r->retry_after = parse_retry_after(tmp);
	} else if (header_is(line, n, "Content-Type", &v, &len)) {
		copy_header_value(v, len, r->content_type, sizeof(r->content_type));
	}
	return n;
}

static bool path_is_valid(const char *path)
{
	if (path[0] != '/')
		return false;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static const char *peer_name(const struct shp_httpc *c)
{
	return c->socket_path ? c->socket_path : c->base_url;
}

static int map_curl_error(struct shp_httpc *c, CURLcode rc, const struct transfer *t,
			  struct shp_error *err)
{
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "cannot connect to shepherdd at '%s': %s", peer_name(c),
				     detail);
	case CURLE_OPERATION_TIMEDOUT:
		return shp_error_set(err, SHP_E_TIMEOUT,
				     "no answer from shepherdd at '%s' within %ld ms", peer_name(c),
				     c->timeout_ms);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "TLS with shepherdd at '%s' failed: %s", peer_name(c), detail);
	case CURLE_WRITE_ERROR:
		if (t->over_cap)
			return shp_error_set(err, SHP_E_LIMIT,
					     "the answer from shepherdd is larger than %zu bytes",
					     t->resp->body.max);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory reading the answer");
	case CURLE_OUT_OF_MEMORY: return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_BAD_CONTENT_ENCODING:
		return shp_error_set(err, SHP_E_PROTO, "talking to shepherdd at '%s': %s",
				     peer_name(c), detail);
	default:
		return shp_error_set(err, SHP_E_IO, "talking to shepherdd at '%s': %s",
				     peer_name(c), detail);
	}
}

/* The missing socket file is the usual case of a daemon that is not running: say so plainly. */
static int check_socket(const struct shp_httpc *c, struct shp_error *err)
{
	struct stat st;
	char ebuf[128];

	if (!c->socket_path)
		return 0;
	if (stat(c->socket_path, &st) < 0)
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "cannot connect to shepherdd at '%s': %s", c->socket_path,
				     shp_strerror(errno, ebuf, sizeof(ebuf)));
	if (!S_ISSOCK(st.st_mode))
		return shp_error_set(err, SHP_E_UNREACHABLE,
				     "cannot connect to shepherdd at '%s': not a socket",
				     c->socket_path);
	return 0;
}

static int build_headers(const struct shp_httpc *c, bool has_body, const char *idempotency_key,
			 struct curl_slist **ret, struct shp_error *err)
{
	_cleanup_(curl_slist_free_allp) struct curl_slist *h = NULL;
	char line[160];
	struct curl_slist *n;

	(void)snprintf(line, sizeof(line), "%s: %d", SHP_HDR_API_VERSION, SHP_API_VERSION);
	const char *fixed[] = {"Accept: application/json", "Expect:", line,
			       has_body ? "Content-Type: application/json" : NULL};
	for (size_t i = 0; i < SHP_ARRAY_SIZE(fixed); i++) {
		if (!fixed[i])
			continue;
		n = curl_slist_append(h, fixed[i]);
		if (!n)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		h = n;
	}
	if (idempotency_key) {
		if (strlen(idempotency_key) > 100 || strpbrk(idempotency_key, "\r\n"))
			return shp_error_set(err, SHP_E_INVAL, "invalid idempotency key");
		(void)snprintf(line, sizeof(line), "%s: %s", SHP_HDR_IDEMPOTENCY_KEY,
			       idempotency_key);
		n = curl_slist_append(h, line);
		if (!n)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		h = n;
	}
	if (c->auth_header) {
		n = curl_slist_append(h, c->auth_header);
		if (!n)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		h = n;
	}
	*ret = TAKE_PTR(h);
	return 0;
}

static void setup_method(CURL *curl, const char *method, const char *body, size_t body_len)
{
	if (strcmp(method, "GET") == 0 && !body) {
		(void)curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		return;
	}
	if (strcmp(method, "HEAD") == 0) {
		(void)curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
		return;
	}
	if (strcmp(method, "POST") != 0)
		(void)curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body || strcmp(method, "GET") != 0) {
		(void)curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		(void)curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
	}
}

static void setup_transport(struct shp_httpc *c)
{
	CURL *curl = c->curl;

	if (c->socket_path)
		(void)curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
#if LIBCURL_VERSION_NUM >= 0x075500
	(void)curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	(void)curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (c->cacert)
		(void)curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	if (c->cert)
		(void)curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		(void)curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	(void)curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	(void)curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			       c->timeout_ms < CONNECT_TIMEOUT_MS ? c->timeout_ms
								  : CONNECT_TIMEOUT_MS);
	(void)curl_easy_setopt(curl, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
	(void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->errbuf);
}

int shp_httpc_request(struct shp_httpc *c, const char *method, const char *path, const char *body,
		      size_t body_len, const char *idempotency_key, struct shp_httpc_response *resp,
		      struct shp_error *err)
{
	_cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
	_cleanup_(shp_buf_releasep) struct shp_buf url = SHP_BUF_INIT(SHP_API_URL_MAX + 4096);
	struct transfer t = {.resp = resp};
	uint64_t start;
	CURLcode rc;
	int r;

	response_reset(resp);
	if (!path_is_valid(path))
		return shp_error_set(err, SHP_E_INVAL, "invalid request path '%s'", path);
	if (shp_buf_add(&url, c->base_url) < 0 || shp_buf_add(&url, path) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "request URL is too long");
	r = build_headers(c, body != NULL, idempotency_key, &headers, err);
	if (r < 0)
		return r;
	if (c->verbose)
		fprintf(stderr, "-> %s %s\n", method, path);
	r = check_socket(c, err);
	if (r < 0)
		return r;

	curl_easy_reset(c->curl);
	c->errbuf[0] = '\0';
	setup_transport(c);
	(void)curl_easy_setopt(c->curl, CURLOPT_URL, url.buf);
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	(void)curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &t);
	(void)curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &t);
	setup_method(c->curl, method, body, body_len);

	start = shp_now_monotonic_ns();
	rc = curl_easy_perform(c->curl);
	if (rc != CURLE_OK) {
		r = map_curl_error(c, rc, &t, err);
		if (c->verbose)
			fprintf(stderr, "<- failed (%.1f ms)\n",
				(double)(shp_now_monotonic_ns() - start) / 1e6);
		return r;
	}
	(void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (c->verbose)
		fprintf(stderr, "<- %ld (%.1f ms) request-id=%s\n", resp->status,
			(double)(shp_now_monotonic_ns() - start) / 1e6,
			resp->request_id[0] ? resp->request_id : "-");
	return 0;
}

static void add_details(const json_t *details, int room, struct shp_error *err)
{
	json_t *obj = (json_t *)details; /* jansson's iterators are not const */

	if (!json_is_object(details))
		return;
	for (void *it = json_object_iter(obj); it && room > 0;
	     it = json_object_iter_next(obj, it)) {
		const char *key = json_object_iter_key(it);
		json_t *v = json_object_iter_value(it);
		_cleanup_free_ char *text = NULL;

		if (!json_is_string(v))
			text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		shp_error_detail(err, key, "%s",
				 json_is_string(v) ? json_string_value(v)
				 : text            ? text
						   : "");
		room--;
	}
}

int shp_httpc_response_error(const struct shp_httpc_response *resp, json_t **ret_body,
			     struct shp_error *err)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	const json_t *e = NULL;
	const char *code = NULL, *msg = NULL, *rid = NULL;
	enum shp_errc errc;
	int r;

	if (resp->body.len > 0)
		body = shp_json_parse(resp->body.buf, resp->body.len, SHP_API_JSON_DEPTH_MAX, NULL);
	if (body)
		e = json_object_get(body, SHP_API_FIELD_ERROR);
	if (json_is_object(e)) {
		code = shp_json_str(e, SHP_API_FIELD_CODE);
		msg = shp_json_str(e, SHP_API_FIELD_MESSAGE);
		rid = shp_json_str(e, SHP_API_FIELD_REQUEST_ID);
	}
	if (!code)
		e = NULL; /* not a daemon error body: a proxy, or a server that is not shepherdd */
	errc = shp_errc_from_api(code, resp->status);
	if (errc == SHP_OK)
		errc = SHP_E_PROTO; /* 1xx/3xx: nothing the CLI can follow */
	if (e && msg && msg[0])
		r = shp_error_set(err, errc, "%s", msg);
	else
		r = shp_error_set(err, errc, "HTTP %ld from server", resp->status);
	if (!err)
		return r;
	err->http_status = resp->status;
	if (code)
		shp_error_api_code(err, code);
	if (!rid && resp->request_id[0])
		rid = resp->request_id;
	if (e)
		add_details(json_object_get(e, SHP_API_FIELD_DETAILS),
			    SHP_ERROR_DETAILS_MAX - (rid ? 1 : 0), err);
	if (rid)
		shp_error_detail(err, SHP_API_FIELD_REQUEST_ID, "%s", rid);
	if (ret_body && e)
		*ret_body = TAKE_PTR(body);
	return r;
}

int shp_httpc_json(struct shp_httpc *c, const char *method, const char *path, const json_t *body,
		   const char *idempotency_key, json_t **ret, struct shp_error *err)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *text = NULL;
	json_t *answer = NULL;
	int r;

	shp_httpc_response_init(&resp);
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return shp_error_set(err, SHP_E_NOMEM, "cannot serialise the request body");
	}
	r = shp_httpc_request(c, method, path, text, text ? strlen(text) : 0, idempotency_key,
			      &resp, err);
	if (r < 0)
		return r;
	if (resp.status < 200 || resp.status > 299)
		return shp_httpc_response_error(&resp, NULL, err);
	if (resp.body.len > 0) {
		struct shp_error perr = SHP_ERROR_INIT;

		answer =
			shp_json_parse(resp.body.buf, resp.body.len, SHP_API_JSON_DEPTH_MAX, &perr);
		if (!answer)
			return shp_error_set(err, SHP_E_PROTO, "invalid JSON from shepherdd: %s",
					     perr.msg);
	}
	*ret = answer;
	return 0;
}

int shp_httpc_escape(const char *s, struct shp_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = out->len;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char enc[3] = {'%', hex[*p >> 4], hex[*p & 0xf]};
		int r;

		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			     *p == '~';

		if (plain)
			r = shp_buf_addch(out, (char)*p);
		else
			r = shp_buf_addn(out, enc, sizeof(enc));
		if (r < 0) {
			shp_buf_truncate(out, start);
			return r;
		}
	}
	return 0;
}
