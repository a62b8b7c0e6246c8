/*
 * The listeners: a Unix socket (caller = the peer's uid via SO_PEERCRED) and an optional TLS
 * listener, each a libmicrohttpd daemon with a thread pool. This file owns the request
 * lifecycle (headers, capped body, completion) and turns a struct shd_resp into an MHD
 * response; routing and everything after it live in router.c.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "error.h"
#include "log.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

/* The context of one listener's callbacks. */
struct listener {
	struct shd_server *s;
	bool is_unix;
};

struct shd_server {
	struct shd_daemon *d;
	struct listener unix_l;
	struct listener tls_l;
	struct MHD_Daemon *unix_mhd;
	struct MHD_Daemon *tls_mhd;
	int unix_fd;
	char *socket_path;
	char *tls_cert_pem;
	char *tls_key_pem;
	char *tls_ca_pem;
};

/* Request ids: a per-process random prefix and a counter; unique, cheap, never reused. */
static char reqid_prefix[9];
static atomic_uint_fast64_t reqid_counter;

static void make_request_id(struct shd_req *req)
{
	uint64_t n = atomic_fetch_add_explicit(&reqid_counter, 1, memory_order_relaxed);
	const char *given =
		MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, SHP_HDR_REQUEST_ID);

	if (given) {
		size_t len = strlen(given);
		bool ok = len > 0 && len < sizeof(req->request_id);
		for (size_t i = 0; ok && i < len; i++) {
			char c = given[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
		}
		if (ok) {
			memcpy(req->request_id, given, len + 1);
			return;
		}
	}
	(void)snprintf(req->request_id, sizeof(req->request_id), "%s%016llx", reqid_prefix,
		       (unsigned long long)n);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("http: %s", line);
}

/* New connection: remember whose it is. */
static void notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct listener *l = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		struct shd_conn *c = calloc(1, sizeof(*c));
		const union MHD_ConnectionInfo *ci;

		*socket_context = c;
		if (!c)
			return;
		c->is_unix = l->is_unix;
		ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (c->is_unix && ci) {
			struct ucred cred;
			socklen_t len = sizeof(cred);
			if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
				c->has_peer = true;
				c->peer_uid = cred.uid;
				c->peer_gid = cred.gid;
				c->peer_pid = cred.pid;
			}
		}
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
	}
}

static void req_free(struct shd_req *req)
{
	if (!req)
		return;
	shd_ws_request_done(req->upgrade);
	shp_buf_release(&req->body);
	for (int i = 0; i < req->nparams; i++)
		free(req->params[i]);
	free(req);
}

static void request_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	req_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result queue(struct shd_req *req, struct shd_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char num[32];
	uint64_t dur;

	if (!resp->stream && !resp->raw && resp->json) {
		resp->raw = json_dumps(resp->json, JSON_COMPACT);
		resp->raw_len = resp->raw ? strlen(resp->raw) : 0;
	}
	if (!resp->stream && resp->raw && resp->content_type == NULL) {
		/* a JSON body ends with a newline, like curl users expect */
		char *p = realloc(resp->raw, resp->raw_len + 2);
		if (p) {
			resp->raw = p;
			resp->raw[resp->raw_len++] = '\n';
			resp->raw[resp->raw_len] = '\0';
		}
	}
	if (resp->upgrade && resp->status != 101) {
		shd_ws_conn_abandon(resp->upgrade); /* an error answer replaced the 101 */
		resp->upgrade = NULL;
	}
	if (resp->upgrade) {
		/* the session's 101 (upgrade.c): the request keeps a borrowed pointer */
		r = shd_ws_response(resp->upgrade);
		req->upgrade = r ? resp->upgrade : NULL;
		resp->upgrade = NULL;
	} else if (resp->stream) {
		r = resp->stream; /* a streamed body (sse.c): ours to queue and destroy */
		resp->stream = NULL;
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	} else {
		r = MHD_create_response_from_buffer(
			resp->raw_len, resp->raw ? resp->raw : (char *)"",
			resp->raw ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	}
	if (!r) {
		shd_resp_release(resp);
		return MHD_NO;
	}
	resp->raw = NULL; /* MHD owns it now */
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				      resp->content_type ? resp->content_type : "application/json");
	(void)MHD_add_response_header(r, SHP_HDR_REQUEST_ID, req->request_id);
	(void)snprintf(num, sizeof(num), "%d", SHP_API_VERSION);
	(void)MHD_add_response_header(r, SHP_HDR_API_VERSION, num);
	if (resp->retry_after >= 0) {
		(void)snprintf(num, sizeof(num), "%ld", resp->retry_after);
		(void)MHD_add_response_header(r, SHP_HDR_RETRY_AFTER, num);
	}
	if (resp->allow)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
	if (resp->replayed)
		(void)MHD_add_response_header(r, "Idempotent-Replayed", "true");
	ret = MHD_queue_response(req->mhd, (unsigned)resp->status, r);
	MHD_destroy_response(r);

	shp_log_ctx_set("req", req->request_id);
	dur = shp_now_monotonic_ns() - req->start_ns;
	shd_metrics_observe(req->d->metrics, req->route, resp->status, dur);
	if (resp->status >= 500 ||
	    (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
		shp_log(resp->status >= 500 ? SHP_LOG_ERROR : SHP_LOG_INFO,
			"request method=%s path=%s status=%d duration_us=%llu", req->method,
			req->url, resp->status, (unsigned long long)(dur / 1000));
	else
		log_debug("request method=%s path=%s status=%d duration_us=%llu", req->method,
			  req->url, resp->status, (unsigned long long)(dur / 1000));
	shd_resp_release(resp);
	shp_log_ctx_clear();
	return ret;
}

static enum MHD_Result reply_error(struct shd_req *req, enum shp_errc code, const char *msg)
{
	struct shd_resp resp = {.retry_after = -1};
	struct shp_error err = SHP_ERROR_INIT;

	shp_error_set(&err, code, "%s", msg);
	shd_resp_error(req, &resp, &err);
	return queue(req, &resp);
}

static struct shd_req *req_new(struct shd_server *s, struct MHD_Connection *connection,
			       const char *url, const char *method)
{
	struct shd_req *req = calloc(1, sizeof(*req));
	const union MHD_ConnectionInfo *ci;

	if (!req)
		return NULL;
	req->d = s->d;
	req->mhd = connection;
	req->method = method;
	req->url = url;
	req->route = -1;
	req->start_ns = shp_now_monotonic_ns();
	shp_buf_init(&req->body, (size_t)s->d->cfg->http_body_limit);
	ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->conn = ci ? ci->socket_context : NULL;
	make_request_id(req);
	return req;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *connection, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct shd_server *s = cls;
	struct shd_req *req = *con_cls;
	struct shd_resp resp = {.retry_after = -1};

	if (!req) {
		const char *cl;

		req = req_new(s, connection, url, method);
		if (!req)
			return MHD_NO;
		*con_cls = req;
		if (!req->conn)
			return reply_error(req, SHP_E_NOMEM, "out of memory");
		cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			long long n;
			if (shp_parse_int(cl, 0, INT64_MAX, &n, NULL) < 0)
				return reply_error(req, SHP_E_MALFORMED, "invalid Content-Length");
			if ((uint64_t)n > s->d->cfg->http_body_limit) {
				char msg[128];
				(void)snprintf(msg, sizeof(msg),
					       "request body of %lld bytes is larger than the "
					       "limit of %llu bytes",
					       n, (unsigned long long)s->d->cfg->http_body_limit);
				return reply_error(req, SHP_E_LIMIT, msg);
			}
		}
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		/* chunked uploads have no Content-Length: count here */
		if (!req->body_too_large &&
		    shp_buf_addn(&req->body, upload_data, *upload_data_size) < 0)
			req->body_too_large = true;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->body_too_large) {
		char msg[128];
		(void)snprintf(msg, sizeof(msg),
			       "request body is larger than the limit of %llu bytes",
			       (unsigned long long)s->d->cfg->http_body_limit);
		return reply_error(req, SHP_E_LIMIT, msg);
	}

	shp_log_ctx_set("req", req->request_id);
	shd_router_dispatch(req, &resp);
	return queue(req, &resp);
}

static int bind_unix_socket(struct shd_server *s, const struct shd_config *cfg,
			    struct shp_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	int probe;

	if (strlen(cfg->socket_path) >= sizeof(sa.sun_path))
		return shp_error_set(err, SHP_E_INVAL, "socket path '%s' is too long",
				     cfg->socket_path);
	memcpy(sa.sun_path, cfg->socket_path, strlen(cfg->socket_path) + 1);

	/* A socket file left by a crash is removed; a live one means another daemon. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		bool alive = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(probe);
		if (alive)
			return shp_error_set(err, SHP_E_CONFLICT,
					     "another shepherdd is already listening on '%s'",
					     cfg->socket_path);
	}
	if (unlink(cfg->socket_path) < 0 && errno != ENOENT)
		return shp_error_errno(err, errno, "removing stale socket '%s'", cfg->socket_path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return shp_error_errno(err, errno, "creating the API socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return shp_error_errno(err, errno, "binding '%s'", cfg->socket_path);
	if (cfg->socket_group) {
		struct group gr, *res = NULL;
		char buf[4096];
		int r = getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res);
		if (r != 0 || !res)
			return shp_error_set(err, SHP_E_INVAL, "socket group '%s' does not exist",
					     cfg->socket_group);
		if (chown(cfg->socket_path, (uid_t)-1, gr.gr_gid) < 0)
			return shp_error_errno(err, errno, "giving '%s' to group '%s'",
					       cfg->socket_path, cfg->socket_group);
	}
	if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
		return shp_error_errno(err, errno, "setting the mode of '%s'", cfg->socket_path);
	if (listen(fd, 511) < 0)
		return shp_error_errno(err, errno, "listening on '%s'", cfg->socket_path);
	s->unix_fd = TAKE_FD(fd);
	s->socket_path = strdup(cfg->socket_path);
	return 0;
}

static char *read_pem(const char *path, const char *what, struct shp_error *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	char chunk[4096];
	size_t n;

	if (!f) {
		shp_error_errno(err, errno, "cannot read %s '%s'", what, path);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (shp_buf_addn(&b, chunk, n) < 0) {
			shp_buf_release(&b);
			shp_error_set(err, SHP_E_LIMIT, "%s '%s' is larger than 1 MiB", what, path);
			return NULL;
		}
	}
	return shp_buf_detach(&b, NULL);
}

static unsigned mhd_flags(void)
{
	return MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG |
	       MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
}

#define MAX_OPTS 20

struct opts {
	struct MHD_OptionItem item[MAX_OPTS];
	int n;
};

static void opt_add(struct opts *o, enum MHD_OPTION option, intptr_t value, void *ptr)
{
	assert(o->n < MAX_OPTS - 1);
	o->item[o->n++] = (struct MHD_OptionItem){option, value, ptr};
	o->item[o->n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

/* The options both listeners share. */
static void common_opts(struct shd_server *s, struct listener *l, struct opts *o)
{
	const struct shd_config *cfg = s->d->cfg;

	opt_add(o, MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads, NULL);
	opt_add(o, MHD_OPTION_CONNECTION_LIMIT, cfg->http_max_connections, NULL);
	opt_add(o, MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_connection_timeout_s, NULL);
	opt_add(o, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)cfg->http_header_limit, NULL);
	opt_add(o, MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_connection, l);
	opt_add(o, MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed, s);
}

static int start_unix(struct shd_server *s, struct shp_error *err)
{
	struct opts o = {.n = 0};

	/* the logger goes first, or MHD prints what comes before it itself */
	opt_add(&o, MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s);
	opt_add(&o, MHD_OPTION_LISTEN_SOCKET, s->unix_fd, NULL);
	s->unix_l = (struct listener){s, true};
	common_opts(s, &s->unix_l, &o);
	s->unix_mhd = MHD_start_daemon(mhd_flags(), 0, NULL, NULL, access_handler, s,
				       MHD_OPTION_ARRAY, o.item, MHD_OPTION_END);
	if (!s->unix_mhd)
		return shp_error_set(err, SHP_E_IO, "starting the HTTP server on '%s' failed",
				     s->d->cfg->socket_path);
	s->unix_fd = -1; /* MHD closes it */
	return 0;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bool *v6,
			struct shp_error *err)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	const char *port;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	size_t hlen;
	int r;

	if (!colon || colon == listen || !colon[1])
		return shp_error_set(err, SHP_E_INVAL, "tls.listen '%s' is not HOST:PORT", listen);
	port = colon + 1;
	hlen = (size_t)(colon - listen);
	if (listen[0] == '[' && hlen >= 2 && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return shp_error_set(err, SHP_E_INVAL, "tls.listen host is too long");
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0 || !res)
		return shp_error_set(err, SHP_E_INVAL, "tls.listen '%s': %s", listen,
				     gai_strerror(r));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

static int start_tls(struct shd_server *s, struct shp_error *err)
{
	const struct shd_config *cfg = s->d->cfg;
	struct sockaddr_storage ss;
	struct opts o = {.n = 0};
	socklen_t sslen = 0;
	bool v6 = false;
	unsigned flags = mhd_flags() | MHD_USE_TLS;
	int r;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return shp_error_set(err, SHP_E_INVAL,
				     "this libmicrohttpd was built without TLS support");
	r = parse_listen(cfg->tls_listen, &ss, &sslen, &v6, err);
	if (r < 0)
		return r;
	if (v6)
		flags |= MHD_USE_IPv6;
	if (!(s->tls_cert_pem = read_pem(cfg->tls_cert, "TLS certificate", err)) ||
	    !(s->tls_key_pem = read_pem(cfg->tls_key, "TLS key", err)))
		return -err->code;
	if (cfg->tls_client_ca && !(s->tls_ca_pem = read_pem(cfg->tls_client_ca, "client CA", err)))
		return -err->code;

	opt_add(&o, MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, s);
	opt_add(&o, MHD_OPTION_SOCK_ADDR, 0, &ss);
	opt_add(&o, MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem);
	opt_add(&o, MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem);
	if (s->tls_ca_pem)
		opt_add(&o, MHD_OPTION_HTTPS_MEM_TRUST, 0, s->tls_ca_pem);
	s->tls_l = (struct listener){s, false};
	common_opts(s, &s->tls_l, &o);
	s->tls_mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_ARRAY,
				      o.item, MHD_OPTION_END);
	if (!s->tls_mhd)
		return shp_error_set(err, SHP_E_IO,
				     "starting the TLS listener on '%s' failed (address in use, "
				     "or an unusable certificate/key)",
				     cfg->tls_listen);
	return 0;
}

struct shd_server *shd_server_start(struct shd_daemon *d, struct shp_error *err)
{
	_cleanup_(shd_server_stopp) struct shd_server *s = calloc(1, sizeof(*s));
	unsigned char rnd[4];

	if (!s) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	s->d = d;
	s->unix_fd = -1;
	if (shp_random_bytes(rnd, sizeof(rnd), err) < 0)
		return NULL;
	shp_hex_encode(rnd, sizeof(rnd), reqid_prefix);
	d->ws = shd_ws_hub_new(d->cfg->websocket_sessions, d->cfg->http_connection_timeout_s, err);
	if (!d->ws)
		return NULL;
	if (bind_unix_socket(s, d->cfg, err) < 0 || start_unix(s, err) < 0)
		return NULL;
	if (d->cfg->tls_listen && start_tls(s, err) < 0)
		return NULL;
	return TAKE_PTR(s);
}

struct shd_server *shd_server_stop(struct shd_server *s)
{
	if (!s)
		return NULL;
	/* upgraded connections must be closed before their listener stops */
	shd_ws_hub_close_all(s->d->ws);
	if (s->tls_mhd)
		MHD_stop_daemon(s->tls_mhd);
	if (s->unix_mhd)
		MHD_stop_daemon(s->unix_mhd);
	s->d->ws = shd_ws_hub_free(s->d->ws);
	if (s->unix_fd >= 0)
		close(s->unix_fd);
	if (s->socket_path) {
		(void)unlink(s->socket_path);
		free(s->socket_path);
	}
	free(s->tls_cert_pem);
	if (s->tls_key_pem) {
		explicit_bzero(s->tls_key_pem, strlen(s->tls_key_pem));
		free(s->tls_key_pem);
	}
	free(s->tls_ca_pem);
	free(s);
	return NULL;
}
