/*
 * The HTTP side: libmicrohttpd with a thread per connection (watch streams block in their
 * content reader), bearer-token authentication, injected faults and latency, request counting,
 * routing of paths to discovery, the control API, subresources and the REST verbs, and the
 * Status objects every error is answered with.
 */
#include "config.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "kubesim.h"
#include "util.h"

/* Per-request state across MHD's calls: the body being read. */
struct conn_state {
	struct shp_buf body;
	bool too_big;
};

const char *ks_query(const struct ks_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

int ks_reply(struct ks_resp *resp, int code, json_t *body)
{
	json_decref(resp->body);
	resp->status = code;
	resp->body = body;
	return 0;
}

int ks_error(struct ks_resp *resp, int code, const char *reason, const char *message,
	     json_t *details)
{
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
			       "apiVersion", "v1", "metadata", "status", "Failure", "message",
			       message, "reason", reason, "code", code);

	if (details)
		json_object_set_new(st, "details", details);
	ks_reply(resp, code, st);
	return -1;
}

int ks_errorf(struct ks_resp *resp, int code, const char *reason, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ks_error(resp, code, reason, msg, NULL);
}

int ks_not_found(struct ks_resp *resp, const struct ks_resource *r, const char *name)
{
	char q[128], msg[512];

	ks_qualified(r, q, sizeof(q));
	(void)snprintf(msg, sizeof(msg), "%s \"%s\" not found", q, name);
	return ks_error(
		resp, 404, "NotFound", msg,
		json_pack("{s:s, s:s, s:s}", "name", name, "group", r->group, "kind", r->plural));
}

static bool is_public(const char *path)
{
	return strcmp(path, "/version") == 0 || strcmp(path, "/readyz") == 0 ||
	       strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0;
}

static bool authorized(struct ks *ks, struct MHD_Connection *conn)
{
	const char *h;
	size_t want, got;

	if (!ks->cfg.token)
		return true;
	h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	want = strlen(ks->cfg.token);
	got = strlen(h);
	return got == want && shp_mem_equal_ct(h, ks->cfg.token, want);
}

static void count_request(struct ks *ks, const char *method)
{
	json_t *n;

	pthread_mutex_lock(&ks->mu);
	ks->requests++;
	n = json_object_get(ks->stats_by_verb, method);
	json_object_set_new(ks->stats_by_verb, method,
			    json_integer(n ? json_integer_value(n) + 1 : 1));
	pthread_mutex_unlock(&ks->mu);
}

/* Latency and the next-N-requests failure; 1 when a fault answered the request. */
static int apply_faults(struct ks_req *req, struct ks_resp *resp)
{
	struct ks *ks = req->ks;
	struct ks_faults *f = &ks->faults;
	int latency = 0, status = 0, retry = 0;

	pthread_mutex_lock(&ks->mu);
	if (strncmp(req->path, f->path_prefix, strlen(f->path_prefix)) == 0) {
		latency = f->latency_ms;
		if (f->status && f->count > 0) {
			status = f->status;
			retry = f->retry_after;
			if (--f->count == 0)
				f->status = 0;
		}
	}
	pthread_mutex_unlock(&ks->mu);
	if (latency > 0) {
		struct timespec ts = {latency / 1000, (long)(latency % 1000) * 1000000L};
		(void)nanosleep(&ts, NULL);
	}
	if (!status)
		return 0;
	resp->retry_after = retry;
	if (status == 429) {
		ks_error(resp, 429, "TooManyRequests",
			 "the server has received too many requests "
			 "and has asked us to try again later",
			 retry ? json_pack("{s:i}", "retryAfterSeconds", retry) : NULL);
	} else if (status == 503) {
		ks_error(resp, 503, "ServiceUnavailable",
			 "the server is currently unable to "
			 "handle the request",
			 NULL);
	} else if (status == 504) {
		ks_error(resp, 504, "Timeout",
			 "the server was unable to return a response in the "
			 "time allotted, but may still be processing the request",
			 NULL);
	} else {
		ks_errorf(resp, status, "InternalError",
			  "Internal error occurred: injected fault (HTTP %d)", status);
	}
	return 1;
}

static int split_path(struct ks_req *req, char *copy)
{
	char *save = NULL;

	req->nsegs = 0;
	for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (req->nsegs == (int)SHP_ARRAY_SIZE(req->segs))
			return -1;
		req->segs[req->nsegs++] = s;
	}
	return 0;
}

/* .../[watch/][namespaces/NS/]PLURAL[/NAME[/SUB]] after the group/version segments. */
static int route_resource(struct ks_req *req, struct ks_resp *resp, const char *group,
			  const char *version, char **rest, int n)
{
	struct ks_target t = {0};
	int res;

	if (n > 0 && strcmp(rest[0], "watch") == 0) {
		t.watch_path = true;
		rest++;
		n--;
	}
	if (n >= 3 && strcmp(rest[0], "namespaces") == 0 &&
	    ks_resource_find(group, version, rest[2]) >= 0) {
		t.ns = rest[1];
		rest += 2;
		n -= 2;
	}
	if (n < 1 || n > 3 || (res = ks_resource_find(group, version, rest[0])) < 0)
		return ks_error(resp, 404, "NotFound",
				"the server could not find the requested resource", json_object());
	t.res = (enum ks_res)res;
	t.name = n > 1 ? rest[1] : NULL;
	t.sub = n > 2 ? rest[2] : NULL;
	if (t.ns && !ks_resources[res].namespaced)
		return ks_error(resp, 404, "NotFound",
				"the server could not find the requested resource", json_object());
	return ks_api_handle(req, resp, &t);
}

static int route(struct ks_req *req, struct ks_resp *resp)
{
	char **s = req->segs;
	int n = req->nsegs;

	if (n >= 1 && strcmp(s[0], "_sim") == 0)
		return ks_control(req, resp);
	if (apply_faults(req, resp))
		return -1;
	if (n >= 1 && strcmp(s[0], "api") == 0 && n > 2)
		return route_resource(req, resp, "", s[1], s + 2, n - 2);
	if (n >= 1 && strcmp(s[0], "apis") == 0 && n > 3) {
		if (strcmp(s[1], "subresources.kubevirt.io") == 0) {
			if (n == 8 && strcmp(s[3], "namespaces") == 0 &&
			    strcmp(s[5], "virtualmachineinstances") == 0 &&
			    strcmp(s[7], "vnc") == 0)
				return ks_vnc(req, resp, s[4], s[6]);
			if (n == 8 && strcmp(s[3], "namespaces") == 0)
				return ks_subresource(req, resp, s[4], s[5], s[6], s[7]);
			return ks_discovery(req, resp);
		}
		return route_resource(req, resp, s[1], s[2], s + 3, n - 3);
	}
	return ks_discovery(req, resp);
}

static void handle(struct ks *ks, struct MHD_Connection *conn, const char *method, const char *url,
		   struct conn_state *cs, struct ks_resp *resp)
{
	struct ks_req req = {.ks = ks, .conn = conn, .method = method, .path = url};
	_cleanup_free_ char *copy = strdup(url);

	req.body = cs->body.buf;
	req.body_len = cs->body.len;
	req.user_agent =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
	req.content_type =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	count_request(ks, method);
	if (!is_public(url) && !authorized(ks, conn)) {
		ks_error(resp, 401, "Unauthorized", "Unauthorized", NULL);
		return;
	}
	if (cs->too_big) {
		ks_error(resp, 413, "RequestEntityTooLarge", "the request body is too large", NULL);
		return;
	}
	if (!copy || split_path(&req, copy) < 0) {
		ks_error(resp, 404, "NotFound", "the server could not find the requested resource",
			 json_object());
		return;
	}
	(void)route(&req, resp);
}

static enum MHD_Result queue_resp(struct ks *ks, struct MHD_Connection *conn, struct ks_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (resp->vnc) {
		r = ks_vnc_response(resp->vnc);
		if (!r)
			free(resp->vnc);
		resp->vnc = NULL; /* the upgrade handler owns it now */
	} else if (resp->watch) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, ks_watch_read,
						      resp->watch, ks_watch_free);
		resp->ctype = "application/json";
	} else {
		char *text = resp->raw;
		size_t len = resp->raw_len;
		if (!text) {
			text = resp->body ? json_dumps(resp->body, JSON_COMPACT) : strdup("");
			resp->ctype = resp->ctype ? resp->ctype : "application/json";
		}
		resp->raw = NULL;
		if (text && !len)
			len = strlen(text);
		r = text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
		if (!r)
			free(text);
	}
	if (!r)
		return MHD_NO;
	if (resp->ctype)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->ctype);
	if (resp->retry_after > 0) {
		char num[24];
		(void)snprintf(num, sizeof(num), "%d", resp->retry_after);
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, num);
	}
	if (resp->warning[0])
		(void)MHD_add_response_header(r, "Warning", resp->warning);
	(void)MHD_add_response_header(r, "Cache-Control", "no-cache, private");
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	(void)ks;
	return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct ks *ks = cls;
	struct conn_state *cs = *con_cls;
	struct ks_resp resp = {.status = 200};
	enum MHD_Result ret;

	(void)version;
	if (!cs) {
		cs = calloc(1, sizeof(*cs));
		if (!cs)
			return MHD_NO;
		shp_buf_init(&cs->body, KS_BODY_MAX);
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!cs->too_big && shp_buf_addn(&cs->body, upload_data, *upload_size) < 0)
			cs->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	handle(ks, conn, method, url, cs, &resp);
	ret = queue_resp(ks, conn, &resp);
	json_decref(resp.body);
	free(resp.raw);
	return ret;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	struct conn_state *cs = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (cs) {
		shp_buf_release(&cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

/* The "unreachable" switch: refuse every new connection until the deadline. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct ks *ks = cls;
	bool refuse;

	(void)addr;
	(void)len;
	pthread_mutex_lock(&ks->mu);
	refuse = shp_now_monotonic_ns() < ks->unreachable_until_ns;
	pthread_mutex_unlock(&ks->mu);
	return refuse ? MHD_NO : MHD_YES;
}

static char *read_file(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct shp_buf b = SHP_BUF_INIT(1024 * 1024);
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (shp_buf_addn(&b, chunk, n) < 0) {
			shp_buf_release(&b);
			return NULL;
		}
	return shp_buf_detach(&b, NULL);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, bool *v6)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
	struct addrinfo *res = NULL;
	size_t hlen;

	if (!colon || colon == listen || !colon[1])
		return -1;
	hlen = (size_t)(colon - listen);
	if (listen[0] == '[' && hlen >= 2 && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return -1;
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

/* PEMs stay allocated for the daemon's life (MHD keeps pointers to them). */
static char *tls_cert_pem, *tls_key_pem;

int ks_http_start(struct ks *ks, void **ret_daemon, int *ret_port)
{
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	bool v6 = false;

	if (parse_listen(ks->cfg.listen, &ss, &v6) < 0) {
		fprintf(stderr, "kubesim: --listen '%s' is not HOST:PORT\n", ks->cfg.listen);
		return -1;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	if (ks->cfg.tls_cert) {
		tls_cert_pem = read_file(ks->cfg.tls_cert);
		tls_key_pem = read_file(ks->cfg.tls_key);
		if (!tls_cert_pem || !tls_key_pem) {
			fprintf(stderr, "kubesim: cannot read the TLS certificate or key\n");
			return -1;
		}
		flags |= MHD_USE_TLS;
	}
	d = MHD_start_daemon(flags, 0, accept_policy, ks, access_handler, ks, MHD_OPTION_SOCK_ADDR,
			     &ss, MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_CONNECTION_TIMEOUT,
			     120u, MHD_OPTION_NOTIFY_COMPLETED, request_completed, ks,
			     ks->cfg.tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
			     tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "kubesim: cannot listen on '%s'\n", ks->cfg.listen);
		return -1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*ret_port = info ? info->port : 0;
	*ret_daemon = d;
	return 0;
}

void ks_http_stop(void *daemon)
{
	ks_vnc_drain();
	if (daemon)
		MHD_stop_daemon(daemon);
	ks_vnc_release();
	free(tls_cert_pem);
	free(tls_key_pem);
	tls_cert_pem = tls_key_pem = NULL;
}
