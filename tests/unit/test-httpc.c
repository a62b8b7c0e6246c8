/*
 * lib/httpc against real servers in the test process: libmicrohttpd on a Unix socket in a temp
 * dir (fixed routes: echo, error bodies, big and chunked bodies, retry), libmicrohttpd over TLS
 * with certificates that openssl(1) makes at suite start, and a raw socket server that answers
 * from a script, for the malformed answers, hangs and closes that MHD would never produce.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>

#include "buf.h"
#include "error.h"
#include "httpc.h"

static char tmpdir[64];
static char sock_path[128];
static struct MHD_Daemon *mhd;
static struct MHD_Daemon *mhd_tcp;
static int tcp_port;
static atomic_int mhd_connections; /* connections the Unix socket server accepted */
static atomic_int tcp_connections;

struct upload {
	struct shp_buf body;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const char *body, const char *extra_name, const char *extra_value)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	(void)MHD_add_response_header(r, "Content-Type", type);
	if (extra_name)
		(void)MHD_add_response_header(r, extra_name, extra_value);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *hdr(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
	return v ? v : "";
}

static enum MHD_Result echo(struct MHD_Connection *conn, const char *url, const char *method,
			    struct upload *up)
{
	json_t *j = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s%}", "method", method, "path", url,
		"authorization", hdr(conn, "Authorization"), "idempotency_key",
		hdr(conn, "Idempotency-Key"), "content_type", hdr(conn, "Content-Type"),
		"api_version", hdr(conn, "X-Shepherd-Api-Version"), "host", hdr(conn, "Host"),
		"user_agent", hdr(conn, "User-Agent"), "body", up->body.buf, up->body.len);
	char *text = json_dumps(j, JSON_COMPACT);
	enum MHD_Result ret =
		reply(conn, 200, "application/json", text, "X-Request-Id", "req-echo");

	free(text);
	json_decref(j);
	return ret;
}

static ssize_t big_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	uint64_t total = (uint64_t)(uintptr_t)cls;
	size_t n = total - pos < max ? (size_t)(total - pos) : max;

	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	memset(buf, 'x', n);
	return (ssize_t)n;
}

/* Uneven pieces of a-z, so that chunk boundaries fall everywhere. */
static ssize_t chunk_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	uint64_t total = (uint64_t)(uintptr_t)cls;
	size_t n = total - pos < 777 ? (size_t)(total - pos) : 777;

	if (pos >= total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (pos + i) % 26);
	return (ssize_t)n;
}

/* What /chunked/N sends: N bytes of the alphabet over and over. */
static void assert_chunked_body(const struct shp_buf *body, size_t n)
{
	cr_assert_eq(body->len, n);
	for (size_t i = 0; i < body->len; i++)
		cr_assert_eq(body->buf[i], 'a' + (char)(i % 26), "byte %zu", i);
}

static enum MHD_Result callback_reply(struct MHD_Connection *conn, uint64_t size,
				      MHD_ContentReaderCallback fn, uint64_t total)
{
	struct MHD_Response *r = MHD_create_response_from_callback(size, 64 * 1024, fn,
								   (void *)(uintptr_t)total, NULL);
	enum MHD_Result ret = MHD_queue_response(conn, 200, r);

	MHD_destroy_response(r);
	return ret;
}

/* What the TLS server saw of the client's certificate. */
static enum MHD_Result tls_peer(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
	unsigned int n = 0, status = 1;
	char text[96];

	if (session && gnutls_certificate_get_peers(session, &n) && n > 0)
		(void)gnutls_certificate_verify_peers2(session, &status);
	(void)snprintf(text, sizeof(text), "{\"client_cert\":%s,\"verified\":%s}",
		       n > 0 ? "true" : "false", n > 0 && status == 0 ? "true" : "false");
	return reply(conn, 200, "application/json", text, NULL, NULL);
}

static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method,
			     struct upload *up)
{
	/* A server URL's path prefix ("https://host:port/prefix") comes before each route. */
	const char *u = strncmp(url, "/prefix/", 8) == 0 ? url + 7 : url;

	if (strcmp(u, "/echo") == 0)
		return echo(conn, url, method, up);
	if (strcmp(u, "/tls-peer") == 0)
		return tls_peer(conn);
	if (strcmp(u, "/not-found") == 0)
		return reply(conn, 404, "application/json",
			     "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"namespace 'x' not "
			     "found\",\"details\":{\"kind\":\"namespace\",\"name\":\"x\"},"
			     "\"request_id\":\"req-body\"}}",
			     "X-Request-Id", "req-header");
	if (strcmp(u, "/invalid") == 0)
		return reply(conn, 400, "application/json",
			     "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"name is too "
			     "long\",\"details\":{\"field\":\"name\",\"max\":63,\"ok\":false}}}",
			     "X-Request-Id", "req-inval");
	if (strcmp(u, "/confirm") == 0)
		return reply(
			conn, 409, "application/json",
			"{\"error\":{\"code\":\"CONFIRMATION_REQUIRED\",\"message\":\"type the "
			"name\",\"details\":{}}}",
			NULL, NULL);
	if (strcmp(u, "/proxy") == 0)
		return reply(conn, 502, "text/html", "<html>Bad Gateway</html>", NULL, NULL);
	if (strcmp(u, "/redirect") == 0)
		return reply(conn, 301, "text/plain", "moved", "Location", "/echo");
	if (strcmp(u, "/garbage") == 0)
		return reply(conn, 200, "application/json", "{\"a\":", NULL, NULL);
	if (strcmp(u, "/empty") == 0)
		return reply(conn, 204, "application/json", "", NULL, NULL);
	if (strcmp(u, "/rate") == 0)
		return reply(conn, 429, "application/json",
			     "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow down\"}}",
			     "Retry-After", "7");
	if (strcmp(u, "/unavailable") == 0)
		return reply(conn, 503, "application/json",
			     "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"later\"}}",
			     "Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT");
	if (strncmp(u, "/big/", 5) == 0) {
		uint64_t n = strtoull(u + 5, NULL, 10);
		return callback_reply(conn, n, big_body, n);
	}
	/* An unknown size: MHD sends it chunked. */
	if (strncmp(u, "/chunked/", 9) == 0)
		return callback_reply(conn, MHD_SIZE_UNKNOWN, chunk_body,
				      strtoull(u + 9, NULL, 10));
	return reply(conn, 404, "text/plain", "no such route", NULL, NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct upload *up = *con_cls;

	if (!up) {
		up = calloc(1, sizeof(*up));
		shp_buf_init(&up->body, 8 << 20);
		*con_cls = up;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (shp_buf_addn(&up->body, upload_data, *upload_data_size) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(conn, url, method, up);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;

	if (up) {
		shp_buf_release(&up->body);
		free(up);
		*con_cls = NULL;
	}
}

static void count_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			     enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add((atomic_int *)cls, 1);
}

static int unix_listener(const char *path, bool do_listen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
	if (do_listen)
		cr_assert(listen(fd, 16) == 0);
	return fd;
}

/* A listening socket on 127.0.0.1, on a port of the kernel's choice. */
static int tcp_listener(int *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(fd, 16) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* An MHD server on fd; idle_s > 0 closes connections idle that long. */
static struct MHD_Daemon *start_mhd(int fd, unsigned idle_s, atomic_int *connections)
{
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, count_connection, connections,
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_END);
	cr_assert(d != NULL);
	return d;
}

static void setup(void)
{
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-httpc.XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL);
	(void)snprintf(sock_path, sizeof(sock_path), "%s/shepherdd.sock", tmpdir);
	mhd = start_mhd(unix_listener(sock_path, true), 0, &mhd_connections);
	/* A plain-HTTP server on loopback, for the TLS failure case. */
	mhd_tcp = start_mhd(tcp_listener(&tcp_port), 0, &tcp_connections);
}

static void remove_tmpdir(void)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
}

static void teardown(void)
{
	MHD_stop_daemon(mhd);
	MHD_stop_daemon(mhd_tcp);
	remove_tmpdir();
}

TestSuite(httpc, .init = setup, .fini = teardown, .timeout = 60);

static struct shp_httpc *client(const char *token)
{
	struct shp_httpc_config cfg = {.socket_path = sock_path, .token = token};
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_httpc *c = shp_httpc_new(&cfg, &err);

	cr_assert(c != NULL, "%s", err.msg);
	return c;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(httpc, json_round_trip)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client("shp_secret");
	_cleanup_(json_decrefp) json_t *body = json_pack("{s:s, s:i}", "name", "ci", "n", 3);
	_cleanup_(json_decrefp) json_t *got = NULL;
	_cleanup_(json_decrefp) json_t *sent = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "POST", "/echo", body, "0123abcd", &got, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(got, "method")), "POST");
	cr_assert_str_eq(json_string_value(json_object_get(got, "authorization")),
			 "Bearer shp_secret");
	cr_assert_str_eq(json_string_value(json_object_get(got, "idempotency_key")), "0123abcd");
	cr_assert_str_eq(json_string_value(json_object_get(got, "content_type")),
			 "application/json");
	cr_assert_str_eq(json_string_value(json_object_get(got, "api_version")), "1");
	sent = json_loads(json_string_value(json_object_get(got, "body")), 0, NULL);
	cr_assert(json_equal(sent, body));

	/* The same handle again, now a GET without body or token-less headers changing. */
	json_decref(TAKE_PTR(got));
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(got, "method")), "GET");
	cr_assert_str_eq(json_string_value(json_object_get(got, "body")), "");
	cr_assert_str_eq(json_string_value(json_object_get(got, "idempotency_key")), "");

	json_decref(TAKE_PTR(got));
	cr_assert_eq(shp_httpc_json(c, "DELETE", "/echo", NULL, "k1", &got, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(got, "method")), "DELETE");
}

Test(httpc, raw_request_reads_headers)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.status, 200);
	cr_assert_str_eq(resp.request_id, "req-echo");
	cr_assert_str_eq(resp.content_type, "application/json");
	cr_assert_eq(resp.retry_after, -1);
	cr_assert(strstr(resp.body.buf, "\"authorization\":\"\"") != NULL);
}

Test(httpc, empty_body_gives_null)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = json_true();
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "DELETE", "/empty", NULL, "k", &got, &err), 0, "%s",
		     err.msg);
	cr_assert_null(got);
}

Test(httpc, error_body_is_mapped)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "GET", "/not-found", NULL, NULL, &got, &err),
		     -SHP_E_NOTFOUND);
	cr_assert_null(got);
	cr_assert_eq(err.code, SHP_E_NOTFOUND);
	cr_assert_eq(err.http_status, 404);
	cr_assert_str_eq(err.msg, "namespace 'x' not found");
	cr_assert_str_eq(err.api_code, "NOT_FOUND");
	cr_assert_eq(err.n_details, 3);
	cr_assert_str_eq(err.details[0].key, "kind");
	cr_assert_str_eq(err.details[0].value, "namespace");
	cr_assert_str_eq(err.details[1].key, "name");
	cr_assert_str_eq(err.details[1].value, "x");
	/* The body's request id wins over the header's. */
	cr_assert_str_eq(err.details[2].key, "request_id");
	cr_assert_str_eq(err.details[2].value, "req-body");
	cr_assert_eq(shp_errc_exit_status(err.code), SHP_EXIT_NOTFOUND);
}

Test(httpc, validation_details_are_stringified)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "POST", "/invalid", NULL, "k", &got, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "name is too long");
	cr_assert_eq(err.n_details, 4);
	cr_assert_str_eq(err.details[0].value, "name");
	cr_assert_str_eq(err.details[1].key, "max");
	cr_assert_str_eq(err.details[1].value, "63");
	cr_assert_str_eq(err.details[2].value, "false");
	cr_assert_str_eq(err.details[3].key, "request_id");
	cr_assert_str_eq(err.details[3].value, "req-inval");
}

Test(httpc, specific_api_code_keeps_its_status_class)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "POST", "/confirm", NULL, NULL, &got, &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "CONFIRMATION_REQUIRED");
	cr_assert_str_eq(shp_error_api_code_of(&err), "CONFIRMATION_REQUIRED");
	cr_assert_eq(err.n_details, 0);
}

Test(httpc, response_error_hands_out_the_body)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_(json_decrefp) json_t *body = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(shp_httpc_request(c, "GET", "/not-found", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(shp_httpc_response_error(&resp, &body, &err), -SHP_E_NOTFOUND);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(body, "error"), "code")),
			 "NOT_FOUND");

	/* Not a daemon error body: no body handed out. */
	json_decref(TAKE_PTR(body));
	cr_assert_eq(shp_httpc_request(c, "GET", "/proxy", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(shp_httpc_response_error(&resp, &body, &err), -SHP_E_PROTO);
	cr_assert_null(body);
}

Test(httpc, non_json_error_body)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "GET", "/proxy", NULL, NULL, &got, &err), -SHP_E_PROTO);
	cr_assert_str_eq(err.msg, "HTTP 502 from server");
	cr_assert_eq(err.http_status, 502);
	cr_assert_eq(err.n_details, 0);
	cr_assert_str_eq(shp_error_api_code_of(&err), "PROTOCOL_ERROR");

	cr_assert_eq(shp_httpc_json(c, "GET", "/no-such-route", NULL, NULL, &got, &err),
		     -SHP_E_NOTFOUND);
	cr_assert_str_eq(err.msg, "HTTP 404 from server");

	cr_assert_eq(shp_httpc_json(c, "GET", "/redirect", NULL, NULL, &got, &err), -SHP_E_PROTO);
	cr_assert_str_eq(err.msg, "HTTP 301 from server");
}

Test(httpc, invalid_json_answer)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "GET", "/garbage", NULL, NULL, &got, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "invalid JSON") != NULL, "%s", err.msg);
}

Test(httpc, body_cap)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(resp.body.max, SHP_HTTPC_BODY_MAX);
	resp.body.max = 4096;
	cr_assert_eq(shp_httpc_request(c, "GET", "/big/4096", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.body.len, 4096);
	cr_assert_eq(shp_httpc_request(c, "GET", "/big/4097", NULL, 0, NULL, &resp, &err),
		     -SHP_E_LIMIT);
	cr_assert_eq(err.code, SHP_E_LIMIT);
	cr_assert(strstr(err.msg, "4096") != NULL, "%s", err.msg);
	/* The handle is usable after an aborted transfer. */
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.status, 200);
}

Test(httpc, default_cap_is_enforced)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	char path[64];

	(void)snprintf(path, sizeof(path), "/big/%u", SHP_HTTPC_BODY_MAX + 1);
	cr_assert_eq(shp_httpc_json(c, "GET", path, NULL, NULL, &got, &err), -SHP_E_LIMIT);
	cr_assert_null(got);
}

Test(httpc, missing_socket_is_unreachable)
{
	struct shp_httpc_config cfg = {.socket_path = "/nonexistent/shepherd/shepherdd.sock"};
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	json_t *got = NULL;

	cr_assert(c != NULL);
	cr_assert_eq(shp_httpc_json(c, "GET", "/api/v1/version", NULL, NULL, &got, &err),
		     -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "/nonexistent/shepherd/shepherdd.sock") != NULL, "%s", err.msg);
	cr_assert_eq(shp_errc_exit_status(err.code), SHP_EXIT_UNREACHABLE);
}

Test(httpc, stale_socket_is_unreachable)
{
	char path[160];
	struct shp_httpc_config cfg = {.socket_path = path};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;

	/* A socket file nobody listens on: what a crashed daemon leaves behind. */
	(void)snprintf(path, sizeof(path), "%s/stale.sock", tmpdir);
	close(unix_listener(path, false));
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
}

Test(httpc, timeout)
{
	char path[160];
	struct shp_httpc_config cfg = {.socket_path = path, .timeout_ms = 200};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;
	int fd;

	/* Listening, never accepting: the connection is made, no answer ever comes. */
	(void)snprintf(path, sizeof(path), "%s/silent.sock", tmpdir);
	fd = unix_listener(path, true);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), -SHP_E_TIMEOUT);
	close(fd);
}

Test(httpc, tls_failure_is_unreachable)
{
	char url[64];
	struct shp_httpc_config cfg = {.server_url = url};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;

	/* A plain-HTTP server where TLS is expected: the handshake fails. */
	(void)snprintf(url, sizeof(url), "https://127.0.0.1:%d/", tcp_port);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert(c != NULL, "%s", err.msg);
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "TLS") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, url) == NULL, "trailing slash kept: %s", err.msg);
}

Test(httpc, plain_http_server_url_is_refused)
{
	struct shp_httpc_config cfg = {.server_url = "http://example.com:8443"};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shp_httpc_new(&cfg, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	cr_assert(strstr(err.msg, "https://") != NULL, "%s", err.msg);
}

Test(httpc, retry_after)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(shp_httpc_request(c, "GET", "/rate", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.status, 429);
	cr_assert_eq(resp.retry_after, 7);
	cr_assert_eq(shp_httpc_response_error(&resp, NULL, &err), -SHP_E_RATE);
	cr_assert_eq(shp_errc_exit_status(err.code), SHP_EXIT_RETRY);

	/* An HTTP date in the past means "now". */
	cr_assert_eq(shp_httpc_request(c, "GET", "/unavailable", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.status, 503);
	cr_assert_eq(resp.retry_after, 0);

	/* Headers do not leak from one response into the next. */
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.retry_after, -1);
}

Test(httpc, verbose_never_shows_the_token)
{
	struct shp_httpc_config cfg = {
		.socket_path = sock_path, .token = "shp_topsecret", .verbose = true};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;
	char out[4096] = "";
	FILE *f = tmpfile();
	int saved = dup(2);
	size_t n;

	cr_assert(f != NULL);
	(void)dup2(fileno(f), 2);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), 0);
	json_decref(got);
	fflush(stderr);
	(void)dup2(saved, 2);
	rewind(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	fclose(f);
	cr_assert(strstr(out, "-> GET /echo\n") != NULL, "%s", out);
	cr_assert(strstr(out, "<- 200 (") != NULL, "%s", out);
	cr_assert(strstr(out, "request-id=req-echo") != NULL, "%s", out);
	cr_assert(strstr(out, "topsecret") == NULL, "%s", out);
}

Test(httpc, bad_arguments)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client("tok");
	struct shp_httpc_config cfg = {.token = "a\r\nX-Evil: 1", .socket_path = sock_path};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;

	cr_assert_eq(shp_httpc_json(c, "GET", "/echo?a b", NULL, NULL, &got, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_httpc_json(c, "GET", "echo", NULL, NULL, &got, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_httpc_json(c, "POST", "/echo", NULL, "a\nb", &got, &err), -SHP_E_INVAL);
	cr_assert_null(shp_httpc_new(&cfg, &err));
}

Test(httpc, escape)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(1024);
	_cleanup_(shp_buf_releasep) struct shp_buf small = SHP_BUF_INIT(4);

	cr_assert_eq(shp_httpc_escape("AZaz09-._~", &b), 0);
	cr_assert_str_eq(b.buf, "AZaz09-._~");
	shp_buf_reset(&b);
	cr_assert_eq(shp_httpc_escape("a b/c?d=e&f#g%h+", &b), 0);
	cr_assert_str_eq(b.buf, "a%20b%2Fc%3Fd%3De%26f%23g%25h%2B");
	shp_buf_reset(&b);
	cr_assert_eq(shp_httpc_escape("é\x01", &b), 0);
	cr_assert_str_eq(b.buf, "%C3%A9%01");
	shp_buf_reset(&b);
	cr_assert_eq(shp_httpc_escape("", &b), 0);
	cr_assert_str_eq(b.buf, "");
	/* Appends; on overflow leaves the buffer as it was. */
	cr_assert_eq(shp_buf_add(&small, "ab"), 0);
	cr_assert_eq(shp_httpc_escape("/", &small), -SHP_E_LIMIT);
	cr_assert_str_eq(small.buf, "ab");
	cr_assert_eq(shp_httpc_escape("c", &small), 0);
	cr_assert_str_eq(small.buf, "abc");
}

/* ---- more of the protocol, against MHD ---------------------------------------------------- */

Test(httpc, chunked_answer)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(shp_httpc_request(c, "GET", "/chunked/100000", NULL, 0, NULL, &resp, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(resp.status, 200);
	assert_chunked_body(&resp.body, 100000);
	cr_assert_eq(shp_httpc_request(c, "GET", "/chunked/0", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.body.len, 0);

	/* The cap holds for chunks too, and the handle recovers. */
	resp.body.max = 4096;
	cr_assert_eq(shp_httpc_request(c, "GET", "/chunked/4096", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.body.len, 4096);
	cr_assert_eq(shp_httpc_request(c, "GET", "/chunked/4097", NULL, 0, NULL, &resp, &err),
		     -SHP_E_LIMIT);
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(resp.status, 200);
}

Test(httpc, request_headers)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(json_decrefp) json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(got, "host")), "localhost");
	cr_assert_str_eq(json_string_value(json_object_get(got, "user_agent")),
			 PACKAGE_NAME "/" PACKAGE_VERSION);
	cr_assert_str_eq(json_string_value(json_object_get(got, "content_type")), "");
	cr_assert_str_eq(json_string_value(json_object_get(got, "authorization")), "");
}

Test(httpc, head_has_no_body)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;

	shp_httpc_response_init(&resp);
	cr_assert_eq(shp_httpc_request(c, "HEAD", "/echo", NULL, 0, NULL, &resp, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(resp.status, 200);
	cr_assert_eq(resp.body.len, 0);
	cr_assert_str_eq(resp.request_id, "req-echo");
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_gt(resp.body.len, 0);
	cr_assert_eq(atomic_load(&mhd_connections), 1);
}

Test(httpc, keep_alive)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client("tok");
	_cleanup_(json_decrefp) json_t *body = json_pack("{s:s}", "a", "b");
	json_t *got = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(shp_httpc_json(c, i == 1 ? "POST" : "GET", "/echo",
					    i == 1 ? body : NULL, NULL, &got, &err),
			     0, "%s", err.msg);
		json_decref(got);
	}
	/* An error status does not cost the connection either. */
	cr_assert_eq(shp_httpc_json(c, "GET", "/not-found", NULL, NULL, &got, &err),
		     -SHP_E_NOTFOUND);
	cr_assert_eq(atomic_load(&mhd_connections), 1);
}

Test(httpc, reconnects_after_idle_close)
{
	static atomic_int n;
	char path[160];
	struct shp_httpc_config cfg = {.socket_path = path};
	struct shp_error err = SHP_ERROR_INIT;
	struct MHD_Daemon *d;
	json_t *got = NULL;

	/* This server closes connections idle for a second. */
	(void)snprintf(path, sizeof(path), "%s/idle.sock", tmpdir);
	d = start_mhd(unix_listener(path, true), 1, &n);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_eq(shp_httpc_json(c, "POST", "/echo", NULL, NULL, &got, &err), 0, "%s", err.msg);
	json_decref(got);
	usleep(2500 * 1000);
	/* Not safe to resend, yet it goes through: the closed connection is noticed first. */
	cr_assert_eq(shp_httpc_json(c, "POST", "/echo", NULL, NULL, &got, &err), 0, "%s", err.msg);
	json_decref(got);
	cr_assert_eq(atomic_load(&n), 2);
	MHD_stop_daemon(d);
}

/* ---- a raw server, for what MHD would never send ------------------------------------------- */

struct raw_step {
	const char *reply; /* NULL: close without answering; "": never answer */
	bool close;        /* close after the reply */
	bool early;        /* close as soon as the request head is in, leaving its body unread */
};

struct raw_server {
	int fd;
	int port;
	char path[160];
	pthread_t thread;
	const struct raw_step *steps;
	int n_steps;
	int done;        /* steps taken */
	int connections; /* connections accepted */
	atomic_bool stop;
};

/* Read one request: its head, then Content-Length bytes unless early. false at EOF. */
static bool raw_read_request(int fd, bool early)
{
	static char buf[1 << 16];
	size_t len = 0, want = 0;
	char *end = NULL, *cl;
	ssize_t n;

	while (len + 1 < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			if (early)
				return true;
			cl = strcasestr(buf, "\r\nContent-Length:");
			want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
		}
		if (end && len >= (size_t)(end - buf) + 4 + want)
			return true;
	}
	return false;
}

static void *raw_serve(void *arg)
{
	struct raw_server *s = arg;
	const struct raw_step *st;
	int fd = -1;

	while (!atomic_load(&s->stop)) {
		if (fd < 0) {
			fd = accept(s->fd, NULL, NULL);
			if (fd < 0 || atomic_load(&s->stop))
				break;
			s->connections++;
		}
		st = s->done < s->n_steps ? &s->steps[s->done] : NULL;
		if (!raw_read_request(fd, st && st->early)) {
			close(fd);
			fd = -1;
			continue;
		}
		s->done += st != NULL;
		if (st && st->reply)
			(void)!send(fd, st->reply, strlen(st->reply), MSG_NOSIGNAL);
		if (!st || !st->reply || st->close || st->early) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void raw_start(struct raw_server *s, bool tcp, const struct raw_step *steps, int n)
{
	*s = (struct raw_server){.steps = steps, .n_steps = n};
	if (tcp) {
		s->fd = tcp_listener(&s->port);
	} else {
		(void)snprintf(s->path, sizeof(s->path), "%s/raw.sock", tmpdir);
		s->fd = unix_listener(s->path, true);
	}
	cr_assert_eq(pthread_create(&s->thread, NULL, raw_serve, s), 0);
}

/* Stop the server (a connection wakes its accept) and join it. */
static void raw_stop(struct raw_server *s)
{
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	struct sockaddr_in si = {.sin_family = AF_INET, .sin_port = htons(s->port)};
	int fd = socket(s->port ? AF_INET : AF_UNIX, SOCK_STREAM, 0);

	atomic_store(&s->stop, true);
	si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	(void)snprintf(su.sun_path, sizeof(su.sun_path), "%s", s->path);
	if (s->port)
		(void)connect(fd, (struct sockaddr *)&si, sizeof(si));
	else
		(void)connect(fd, (struct sockaddr *)&su, sizeof(su));
	pthread_join(s->thread, NULL);
	close(fd);
	close(s->fd);
	if (!s->port)
		unlink(s->path);
}

static struct shp_httpc *raw_client(const struct raw_server *s, long timeout_ms)
{
	struct shp_httpc_config cfg = {.socket_path = s->path, .timeout_ms = timeout_ms};
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_httpc *c = shp_httpc_new(&cfg, &err);

	cr_assert(c != NULL, "%s", err.msg);
	return c;
}

/* One request against a server that answers `answer` and closes; returns the result. */
static int raw_once(const char *answer, struct shp_httpc_response *resp, struct shp_error *err)
{
	const struct raw_step steps[] = {{answer, true}};
	struct raw_server s;
	int r;

	raw_start(&s, false, steps, 1);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 5000);
	r = shp_httpc_request(c, "GET", "/x", NULL, 0, NULL, resp, err);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
	return r;
}

static char *big_head(void)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 20);

	cr_assert_eq(shp_buf_add(&b, "HTTP/1.1 200 OK\r\n"), 0);
	for (int i = 0; i < 70; i++)
		cr_assert_eq(shp_buf_addf(&b, "X-Filler-%d: %01000d\r\n", i, 0), 0);
	cr_assert_eq(shp_buf_add(&b, "Content-Length: 2\r\n\r\nok"), 0);
	return shp_buf_detach(&b, NULL);
}

Test(httpc, malformed_answers_are_protocol_errors)
{
	_cleanup_free_ char *huge = big_head();
	const char *bad[] = {
		"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: "
		"chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
		"HTTP/1.1 200 OK\r\nContent-Len",
		"",
		huge,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
		struct shp_error err = SHP_ERROR_INIT;

		shp_httpc_response_init(&resp);
		cr_assert_eq(raw_once(bad[i], &resp, &err), -SHP_E_PROTO, "answer %zu: %s", i,
			     err.msg);
		cr_assert_eq(err.code, SHP_E_PROTO);
		cr_assert(strstr(err.msg, "raw.sock") != NULL, "%s", err.msg);
	}
}

Test(httpc, framing_variants)
{
	const struct {
		const char *answer, *body, *request_id;
		long status;
	} ok[] = {
		/* no length: the body runs to the end of the connection */
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}", "{\"a\":1}",
		 "", 200},
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", "", 200},
		/* an interim answer first; its headers do not count */
		{"HTTP/1.1 100 Continue\r\nX-Request-Id: early\r\n\r\nHTTP/1.1 201 Created\r\n"
		 "Content-Length: 2\r\nx-request-id: r2\r\n\r\nok",
		 "ok", "r2", 201},
		/* chunk extensions, upper-case hex, trailers */
		{"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\nA \r\n"
		 "0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
		 "abc0123456789", "", 200},
		/* a reason phrase may be empty, headers may be padded */
		{"HTTP/1.1 200\r\nContent-Length:   2  \r\nX-Request-Id:\t r\x01id \r\n\r\nok",
		 "ok", "rid", 200},
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
		struct shp_error err = SHP_ERROR_INIT;

		shp_httpc_response_init(&resp);
		cr_assert_eq(raw_once(ok[i].answer, &resp, &err), 0, "answer %zu: %s", i, err.msg);
		cr_assert_eq(resp.status, ok[i].status, "answer %zu", i);
		cr_assert_str_eq(resp.body.buf, ok[i].body, "answer %zu", i);
		cr_assert_str_eq(resp.request_id, ok[i].request_id, "answer %zu", i);
	}
}

Test(httpc, long_request_id_is_truncated)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	char answer[512], id[201];

	memset(id, 'r', 200);
	id[200] = '\0';
	(void)snprintf(answer, sizeof(answer),
		       "HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: 0\r\n\r\n", id);
	shp_httpc_response_init(&resp);
	cr_assert_eq(raw_once(answer, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(strlen(resp.request_id), sizeof(resp.request_id) - 1);
	cr_assert_eq(strspn(resp.request_id, "r"), sizeof(resp.request_id) - 1);
}

Test(httpc, server_that_never_answers_times_out)
{
	const struct raw_step steps[] = {{"", false}};
	struct shp_error err = SHP_ERROR_INIT;
	struct raw_server s;
	json_t *got = NULL;
	uint64_t start, took;

	raw_start(&s, false, steps, 1);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 300);
	start = now_ms();
	cr_assert_eq(shp_httpc_json(c, "GET", "/x", NULL, NULL, &got, &err), -SHP_E_TIMEOUT);
	took = now_ms() - start;
	cr_assert(took >= 290 && took < 1500, "took %llu ms", (unsigned long long)took);
	cr_assert(strstr(err.msg, "300 ms") != NULL, "%s", err.msg);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
	cr_assert_eq(s.done, 1);
}

/* The server closes the kept connection just as the next request arrives. */
static const char ok_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

Test(httpc, resends_safe_requests_on_a_lost_connection)
{
	const struct raw_step steps[] = {{ok_answer}, {NULL}, {ok_answer}, {NULL}, {ok_answer}};
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct raw_server s;

	shp_httpc_response_init(&resp);
	raw_start(&s, false, steps, 5);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 5000);
	cr_assert_eq(shp_httpc_request(c, "GET", "/1", NULL, 0, NULL, &resp, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shp_httpc_request(c, "GET", "/2", NULL, 0, NULL, &resp, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(resp.body.buf, "ok");
	/* A POST with an Idempotency-Key is as safe to send twice. */
	cr_assert_eq(shp_httpc_request(c, "POST", "/3", "{}", 2, "key-3", &resp, &err), 0, "%s",
		     err.msg);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
	cr_assert_eq(s.done, 5);
	cr_assert_eq(s.connections, 3);
}

Test(httpc, never_resends_an_unsafe_request)
{
	const struct raw_step steps[] = {{ok_answer}, {NULL}, {ok_answer}};
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct raw_server s;

	shp_httpc_response_init(&resp);
	raw_start(&s, false, steps, 3);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 5000);
	cr_assert_eq(shp_httpc_request(c, "GET", "/1", NULL, 0, NULL, &resp, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shp_httpc_request(c, "POST", "/2", "{}", 2, NULL, &resp, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "without an answer") != NULL, "%s", err.msg);
	/* The next request opens a new connection. */
	cr_assert_eq(shp_httpc_request(c, "GET", "/3", NULL, 0, NULL, &resp, &err), 0, "%s",
		     err.msg);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
	cr_assert_eq(s.done, 3);
	cr_assert_eq(s.connections, 2);
}

/* Connection: close, or HTTP/1.0: the client hangs up even though the server would not. */
Test(httpc, connection_close_drops_the_connection)
{
	const struct raw_step steps[] = {
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok"},
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{ok_answer},
		{ok_answer}};
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct raw_server s;

	shp_httpc_response_init(&resp);
	raw_start(&s, false, steps, 4);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 5000);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(shp_httpc_request(c, "GET", "/", NULL, 0, NULL, &resp, &err), 0, "%s",
			     err.msg);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
	cr_assert_eq(s.connections, 3);
}

Test(httpc, a_closed_peer_is_an_error_not_sigpipe)
{
	const struct raw_step steps[] = {{NULL, true, true}};
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	size_t n = 8 << 20;
	_cleanup_free_ char *body = malloc(n);
	struct raw_server s;

	/* The server hangs up while an 8 MiB body is still being written. */
	cr_assert_not_null(body);
	memset(body, ' ', n);
	shp_httpc_response_init(&resp);
	raw_start(&s, false, steps, 1);
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = raw_client(&s, 5000);
	cr_assert_eq(shp_httpc_request(c, "PUT", "/", body, n, "k", &resp, &err), -SHP_E_PROTO);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
}

Test(httpc, server_urls)
{
	const char *bad[] = {"https://",           "https:///x",       "https://[::1",
			     "https://[zz]:1",     "https://[::1]x",   "https://host:0",
			     "https://host:65536", "https://host:",    "https://host:12a",
			     "https://user@host",  "https://host/a b", "https://host?q",
			     "ftp://host"};
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shp_httpc_config cfg = {.server_url = bad[i]};

		cr_assert_null(shp_httpc_new(&cfg, &err), "%s", bad[i]);
		cr_assert_eq(err.code, SHP_E_INVAL, "%s", bad[i]);
	}
	/* An IPv6 literal where nobody listens: refused, and the message names the URL. */
	struct shp_httpc_config cfg = {.server_url = "https://[::1]:1//"};
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_not_null(c, "%s", err.msg);
	cr_assert_eq(shp_httpc_json(c, "GET", "/x", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "'https://[::1]:1'") != NULL, "%s", err.msg);

	struct shp_httpc_config nx = {.server_url = "https://nonexistent.invalid"};
	_cleanup_(shp_httpc_freep) struct shp_httpc *d = shp_httpc_new(&nx, &err);
	cr_assert_eq(shp_httpc_json(d, "GET", "/x", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "nonexistent.invalid") != NULL, "%s", err.msg);
}

Test(httpc, tls_handshake_is_bounded_by_the_timeout)
{
	const struct raw_step steps[] = {{"", false}};
	struct shp_error err = SHP_ERROR_INIT;
	struct raw_server s;
	json_t *got = NULL;
	char url[64];
	uint64_t start, took;

	/* A TCP server that takes the connection and never says a word. */
	raw_start(&s, true, steps, 1);
	(void)snprintf(url, sizeof(url), "https://127.0.0.1:%d", s.port);
	struct shp_httpc_config cfg = {.server_url = url, .timeout_ms = 300};
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	start = now_ms();
	cr_assert_eq(shp_httpc_json(c, "GET", "/x", NULL, NULL, &got, &err), -SHP_E_TIMEOUT, "%s",
		     err.msg);
	took = now_ms() - start;
	cr_assert(took >= 290 && took < 1500, "took %llu ms", (unsigned long long)took);
	shp_httpc_free(TAKE_PTR(c));
	raw_stop(&s);
}

/* ---- streamed answers ----------------------------------------------------------------------- */

/*
 * A server for one streamed answer: it sends its pieces in order, and a piece may first wait
 * for the client's signal (a byte its data callback writes once a frame, "\n\n", is in). A
 * client that collected the body before handing it over would never signal: the server then
 * gives up after a few seconds and closes, which the test sees as a truncated answer.
 */
struct drip_step {
	const char *send;
	bool wait_signal;
	int sleep_ms;
};

struct drip {
	int fd;
	char path[160];
	pthread_t thread;
	const struct drip_step *steps;
	int n_steps;
	int signal[2];
	char request[8192];
};

static void *drip_serve(void *arg)
{
	struct drip *d = arg;
	size_t len = 0;
	ssize_t n;
	int fd = accept(d->fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (len + 1 < sizeof(d->request) && !strstr(d->request, "\r\n\r\n")) {
		n = read(fd, d->request + len, sizeof(d->request) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		d->request[len] = '\0';
	}
	for (int i = 0; i < d->n_steps; i++) {
		const struct drip_step *st = &d->steps[i];
		struct pollfd p = {.fd = d->signal[0], .events = POLLIN};
		char b;

		if (st->wait_signal && (poll(&p, 1, 3000) != 1 || read(d->signal[0], &b, 1) != 1))
			break;
		if (st->sleep_ms)
			usleep((useconds_t)st->sleep_ms * 1000);
		if (st->send)
			(void)!send(fd, st->send, strlen(st->send), MSG_NOSIGNAL);
	}
	close(fd);
	return NULL;
}

static void drip_start(struct drip *d, const struct drip_step *steps, int n)
{
	*d = (struct drip){.steps = steps, .n_steps = n};
	(void)snprintf(d->path, sizeof(d->path), "%s/drip.sock", tmpdir);
	d->fd = unix_listener(d->path, true);
	cr_assert_eq(pipe(d->signal), 0);
	cr_assert_eq(pthread_create(&d->thread, NULL, drip_serve, d), 0);
}

static void drip_stop(struct drip *d)
{
	pthread_join(d->thread, NULL);
	close(d->fd);
	close(d->signal[0]);
	close(d->signal[1]);
	unlink(d->path);
}

/* What a streamed request saw. */
struct got {
	struct shp_buf data;
	int heads, pieces;
	long status;
	char type[128];
	int signal_fd;  /* written to when the data so far ends a frame, or -1 */
	int stop_head;  /* on_head's answer */
	int stop_after; /* on_data answers 1 after this many pieces (0: never) */
	bool fail;      /* on_data fails */
};

static void got_init(struct got *g)
{
	*g = (struct got){.signal_fd = -1};
	shp_buf_init(&g->data, 1 << 24);
}

static int got_head(void *arg, const struct shp_httpc_response *resp, struct shp_error *err)
{
	struct got *g = arg;

	g->heads++;
	g->status = resp->status;
	(void)snprintf(g->type, sizeof(g->type), "%s", resp->content_type);
	cr_assert_eq(resp->body.len, 0);
	return g->stop_head;
}

static int got_data(void *arg, const char *data, size_t len, struct shp_error *err)
{
	struct got *g = arg;

	cr_assert_gt(len, 0);
	cr_assert_eq(shp_buf_addn(&g->data, data, len), 0);
	g->pieces++;
	if (g->signal_fd >= 0 && g->data.len >= 2 &&
	    memcmp(g->data.buf + g->data.len - 2, "\n\n", 2) == 0)
		cr_assert_eq(write(g->signal_fd, "s", 1), 1);
	if (g->fail)
		return shp_error_set(err, SHP_E_INVAL, "the callback refused the data");
	return g->stop_after && g->pieces >= g->stop_after ? 1 : 0;
}

static struct shp_httpc_stream stream_of(const char *path, struct got *g)
{
	return (struct shp_httpc_stream){
		.path = path,
		.accept = "text/event-stream",
		.on_head = got_head,
		.on_data = got_data,
		.arg = g,
	};
}

/* shp_httpc_stream of path into g, which the caller has set up with got_init. */
static int stream_path(struct shp_httpc *c, const char *path, struct got *g,
		       struct shp_httpc_response *resp, struct shp_error *err)
{
	struct shp_httpc_stream s = stream_of(path, g);

	return shp_httpc_stream(c, &s, resp, err);
}

/* "HEX\r\ntext\r\n" (static storage, one slot per call site index). */
static const char *chunk(int slot, const char *text)
{
	static char out[8][256];

	(void)snprintf(out[slot], sizeof(out[slot]), "%zx\r\n%s\r\n", strlen(text), text);
	return out[slot];
}

/* A streamed answer against the drip server; the client's idle and overall timeouts given. */
static int drip_stream(const struct drip_step *steps, int n, long timeout_ms, long idle_ms,
		       const char *const *headers, struct got *g, struct shp_httpc_response *resp,
		       struct shp_error *err, char *request, size_t request_size)
{
	struct drip d;
	struct shp_httpc_config cfg = {.socket_path = NULL, .timeout_ms = timeout_ms};
	struct shp_httpc_stream s;
	int r;

	drip_start(&d, steps, n);
	cfg.socket_path = d.path;
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, err);
	cr_assert_not_null(c);
	g->signal_fd = d.signal[1];
	s = stream_of("/api/v1/tasks/12/stream", g);
	s.idle_timeout_ms = idle_ms;
	s.headers = headers;
	r = shp_httpc_stream(c, &s, resp, err);
	shp_httpc_free(TAKE_PTR(c));
	drip_stop(&d);
	if (request)
		(void)snprintf(request, request_size, "%s", d.request);
	return r;
}

#define SSE_HEAD_CHUNKED                                                                           \
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

Test(httpc, stream_delivers_chunks_as_they_arrive)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	const char *headers[] = {"Last-Event-ID: 41", "Cache-Control: no-cache", NULL};
	char head_and_first[512], request[8192];
	struct got g;
	int r;

	(void)snprintf(head_and_first, sizeof(head_and_first), "%s%s", SSE_HEAD_CHUNKED,
		       chunk(0, "id: 1\ndata: first\n\n"));
	const struct drip_step steps[] = {
		{head_and_first},
		{chunk(1, "id: 2\ndata: second\n\n"), true},
		{chunk(2, ": keepalive\n"), true},
		{chunk(3, "\n"), false, 50},
		{"0\r\n\r\n"},
	};
	shp_httpc_response_init(&resp);
	got_init(&g);
	r = drip_stream(steps, 5, 5000, 0, headers, &g, &resp, &err, request, sizeof(request));
	cr_assert_eq(r, 0, "%s", err.msg);
	cr_assert_eq(g.heads, 1);
	cr_assert_eq(g.status, 200);
	cr_assert_str_eq(g.type, "text/event-stream");
	cr_assert_str_eq(g.data.buf,
			 "id: 1\ndata: first\n\nid: 2\ndata: second\n\n: keepalive\n\n");
	cr_assert_geq(g.pieces, 3, "one piece per chunk at least");
	cr_assert_eq(resp.body.len, 0, "a streamed body is not collected");
	cr_assert(strncmp(request, "GET /api/v1/tasks/12/stream HTTP/1.1\r\n", 38) == 0, "%s",
		  request);
	cr_assert_not_null(strstr(request, "\r\nAccept: text/event-stream\r\n"), "%s", request);
	cr_assert_not_null(strstr(request, "\r\nLast-Event-ID: 41\r\n"), "%s", request);
	cr_assert_not_null(strstr(request, "\r\nCache-Control: no-cache\r\n"), "%s", request);
	shp_buf_release(&g.data);
}

Test(httpc, stream_close_delimited_and_sized_bodies)
{
	const struct drip_step close_steps[] = {
		{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\n"},
		{"data: b\n\n", true},
	};
	const struct drip_step sized_steps[] = {
		{"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\ndata: a\n\n"},
		{"data: b\n\n", true},
	};
	const struct {
		const struct drip_step *steps;
	} cases[] = {{close_steps}, {sized_steps}};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
		struct shp_error err = SHP_ERROR_INIT;
		struct got g;

		shp_httpc_response_init(&resp);
		got_init(&g);
		cr_assert_eq(
			drip_stream(cases[i].steps, 2, 5000, 0, NULL, &g, &resp, &err, NULL, 0), 0,
			"case %zu: %s", i, err.msg);
		cr_assert_str_eq(g.data.buf, "data: a\n\ndata: b\n\n", "case %zu", i);
		shp_buf_release(&g.data);
	}
}

Test(httpc, stream_idle_timeout_is_per_read)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	char head_and_first[512];
	struct got g;
	uint64_t start, took;
	int r;

	(void)snprintf(head_and_first, sizeof(head_and_first), "%s%s", SSE_HEAD_CHUNKED,
		       chunk(0, "data: 0\n\n"));
	/* Longer in all than the client's 300 ms, but never silent for its idle 1000 ms. */
	const struct drip_step slow[] = {
		{head_and_first},
		{chunk(1, "data: 1\n\n"), false, 150},
		{chunk(2, "data: 2\n\n"), false, 150},
		{chunk(3, "data: 3\n\n"), false, 150},
		{"0\r\n\r\n", false, 150},
	};
	shp_httpc_response_init(&resp);
	got_init(&g);
	r = drip_stream(slow, 5, 300, 1000, NULL, &g, &resp, &err, NULL, 0);
	cr_assert_eq(r, 0, "%s", err.msg);
	cr_assert_str_eq(g.data.buf, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n");
	shp_buf_release(&g.data);

	/* Silent for longer than the idle timeout: SHP_E_TIMEOUT, soon. */
	const struct drip_step silent[] = {
		{head_and_first},
		{"0\r\n\r\n", false, 1500},
	};
	got_init(&g);
	start = now_ms();
	r = drip_stream(silent, 2, 5000, 300, NULL, &g, &resp, &err, NULL, 0);
	took = now_ms() - start;
	cr_assert_eq(r, -SHP_E_TIMEOUT, "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "no data from shepherdd"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "for 300 ms"), "%s", err.msg);
	cr_assert_str_eq(g.data.buf, "data: 0\n\n", "what came first was handed over");
	cr_assert_lt(took, 1500 + 1000, "took %llu ms", (unsigned long long)took);
	shp_buf_release(&g.data);
}

Test(httpc, stream_cut_short_is_a_protocol_error)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	char head[512];
	struct got g;

	(void)snprintf(head, sizeof(head), "%s%s", SSE_HEAD_CHUNKED, "20\r\ndata: only part");
	const struct drip_step steps[] = {{head}};
	shp_httpc_response_init(&resp);
	got_init(&g);
	cr_assert_eq(drip_stream(steps, 1, 5000, 0, NULL, &g, &resp, &err, NULL, 0), -SHP_E_PROTO);
	cr_assert_not_null(strstr(err.msg, "truncated"), "%s", err.msg);
	cr_assert_str_eq(g.data.buf, "data: only part");
	shp_buf_release(&g.data);
}

Test(httpc, stream_error_status_collects_the_body)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct got g;

	shp_httpc_response_init(&resp);
	got_init(&g);
	cr_assert_eq(stream_path(c, "/not-found", &g, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(g.heads, 1);
	cr_assert_eq(g.status, 404);
	cr_assert_eq(g.pieces, 0, "an error body is not streamed");
	cr_assert_eq(shp_httpc_response_error(&resp, NULL, &err), -SHP_E_NOTFOUND);
	cr_assert_str_eq(err.msg, "namespace 'x' not found");
	/* The connection stays usable. */
	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(atomic_load(&mhd_connections), 1);
	shp_buf_release(&g.data);
}

Test(httpc, stream_callbacks_stop_or_fail_it)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct got g;

	shp_httpc_response_init(&resp);
	/* The whole body otherwise, in pieces, as MHD sends it. */
	got_init(&g);
	cr_assert_eq(stream_path(c, "/chunked/100000", &g, &resp, &err), 0, "%s", err.msg);
	assert_chunked_body(&g.data, 100000);
	cr_assert_gt(g.pieces, 1);
	shp_buf_release(&g.data);

	/* on_head says stop: no body, and the connection is not reused. */
	got_init(&g);
	g.stop_head = 1;
	cr_assert_eq(stream_path(c, "/chunked/100000", &g, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(g.pieces, 0);
	shp_buf_release(&g.data);

	/* on_data says stop after the first piece. */
	got_init(&g);
	g.stop_after = 1;
	cr_assert_eq(stream_path(c, "/chunked/100000", &g, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(g.pieces, 1);
	shp_buf_release(&g.data);

	/* on_data fails: its error comes back. */
	got_init(&g);
	g.fail = true;
	cr_assert_eq(stream_path(c, "/chunked/100000", &g, &resp, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "the callback refused the data");
	shp_buf_release(&g.data);

	cr_assert_eq(shp_httpc_request(c, "GET", "/echo", NULL, 0, NULL, &resp, &err), 0);
	cr_assert_eq(atomic_load(&mhd_connections), 4, "a stopped answer costs its connection");
}

Test(httpc, stream_refuses_bad_headers_before_connecting)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = client(NULL);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	const char *bad[][2] = {
		{"Last-Event-ID: 1\r\nX-Injected: 1", NULL},
		{"No colon", NULL},
		{": empty name", NULL},
		{"Bad Name: x", NULL},
		{"X-Nul: a\x01", NULL},
	};
	struct got g;

	shp_httpc_response_init(&resp);
	got_init(&g);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(bad); i++) {
		struct shp_error err = SHP_ERROR_INIT;
		struct shp_httpc_stream s = stream_of("/echo", &g);

		s.headers = bad[i];
		cr_assert_eq(shp_httpc_stream(c, &s, &resp, &err), -SHP_E_INVAL, "header %zu", i);
	}
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_httpc_stream s = stream_of("/echo", &g);

	s.accept = "text/event-stream\r\nX-Injected: 1";
	cr_assert_eq(shp_httpc_stream(c, &s, &resp, &err), -SHP_E_INVAL);
	cr_assert_eq(g.heads, 0);
	cr_assert_eq(atomic_load(&mhd_connections), 0);
	shp_buf_release(&g.data);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

/* A CA, another CA, a server certificate for localhost and 127.0.0.1, one for another name,
 * and a client certificate; EC keys, for speed. */
static const char make_certs[] =
	"set -e; exec >/dev/null 2>&1; cd '%s'\n"
	"key='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
	"openssl req -x509 $key -keyout ca.key -out ca.crt -days 2 -subj '/CN=httpc test CA'\n"
	"openssl req -x509 $key -keyout other-ca.key -out other-ca.crt -days 2 -subj '/CN=other'\n"
	"sign() {\n"
	"  openssl req $key -keyout $1.key -out $1.csr -subj \"/CN=$1\"\n"
	"  printf '%%s\\n' \"$2\" >$1.ext\n"
	"  openssl x509 -req -in $1.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \\\n"
	"    -out $1.crt -extfile $1.ext\n"
	"}\n"
	"sign server 'subjectAltName=DNS:localhost,IP:127.0.0.1'\n"
	"sign wrong 'subjectAltName=DNS:wrong.example'\n"
	"sign client 'extendedKeyUsage=clientAuth'\n";

static char *pem[6]; /* ca.crt server.crt server.key wrong.crt wrong.key; read once */
static struct MHD_Daemon *tls_mhd, *tls_wrong_mhd;
static int tls_port, tls_wrong_port;
static atomic_int tls_connections, tls_wrong_connections;
static char ca_path[160], other_ca_path[160], client_crt[160], client_key[160];

static char *slurp(const char *name)
{
	char path[160];
	FILE *f;
	char *text = calloc(1, 1 << 16);

	(void)snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	(void)!fread(text, 1, (1 << 16) - 1, f);
	fclose(f);
	return text;
}

static struct MHD_Daemon *start_tls_mhd(int fd, const char *cert, const char *key,
					atomic_int *connections)
{
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, handler, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_HTTPS_MEM_CERT, cert,
		MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_TRUST, pem[0],
		MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
		count_connection, connections, MHD_OPTION_END);
	cr_assert(d != NULL);
	return d;
}

static void tls_setup(void)
{
	char script[2048];
	const char *names[] = {"ca.crt", "server.crt", "server.key", "wrong.crt", "wrong.key"};

	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-httpc.XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL);
	(void)snprintf(script, sizeof(script), make_certs, tmpdir);
	cr_assert_eq(system(script), 0, "openssl failed");
	for (size_t i = 0; i < SHP_ARRAY_SIZE(names); i++)
		pem[i] = slurp(names[i]);
	(void)snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", tmpdir);
	(void)snprintf(other_ca_path, sizeof(other_ca_path), "%s/other-ca.crt", tmpdir);
	(void)snprintf(client_crt, sizeof(client_crt), "%s/client.crt", tmpdir);
	(void)snprintf(client_key, sizeof(client_key), "%s/client.key", tmpdir);
	tls_mhd = start_tls_mhd(tcp_listener(&tls_port), pem[1], pem[2], &tls_connections);
	tls_wrong_mhd = start_tls_mhd(tcp_listener(&tls_wrong_port), pem[3], pem[4],
				      &tls_wrong_connections);
}

static void tls_teardown(void)
{
	MHD_stop_daemon(tls_mhd);
	MHD_stop_daemon(tls_wrong_mhd);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(pem); i++)
		free(pem[i]);
	remove_tmpdir();
}

TestSuite(httpc_tls, .init = tls_setup, .fini = tls_teardown, .timeout = 60);

static struct shp_httpc *tls_client(const char *host, int port, const char *cacert, bool mtls)
{
	struct shp_error err = SHP_ERROR_INIT;
	char url[128];
	struct shp_httpc_config cfg = {.server_url = url,
				       .cacert = cacert,
				       .token = "shp_tls_secret",
				       .cert = mtls ? client_crt : NULL,
				       .key = mtls ? client_key : NULL};
	struct shp_httpc *c;

	(void)snprintf(url, sizeof(url), "https://%s:%d/prefix/", host, port);
	c = shp_httpc_new(&cfg, &err);
	cr_assert_not_null(c, "%s", err.msg);
	return c;
}

Test(httpc_tls, trusted_server)
{
	const char *hosts[] = {"127.0.0.1", "localhost"};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(hosts); i++) {
		_cleanup_(shp_httpc_freep) struct shp_httpc *c =
			tls_client(hosts[i], tls_port, ca_path, false);
		_cleanup_(json_decrefp) json_t *body = json_pack("{s:i}", "n", 1);
		json_t *got = NULL;
		struct shp_error err = SHP_ERROR_INIT;
		char host[64];

		cr_assert_eq(shp_httpc_json(c, "POST", "/echo", body, "k", &got, &err), 0, "%s: %s",
			     hosts[i], err.msg);
		(void)snprintf(host, sizeof(host), "%s:%d", hosts[i], tls_port);
		cr_assert_str_eq(json_string_value(json_object_get(got, "host")), host);
		cr_assert_str_eq(json_string_value(json_object_get(got, "path")), "/prefix/echo");
		cr_assert_str_eq(json_string_value(json_object_get(got, "authorization")),
				 "Bearer shp_tls_secret");
		cr_assert_str_eq(json_string_value(json_object_get(got, "body")), "{\"n\":1}");
		json_decref(got);
		/* Kept alive over TLS too, chunked bodies included. */
		cr_assert_eq(shp_httpc_json(c, "GET", "/chunked/30000", NULL, NULL, &got, &err),
			     -SHP_E_PROTO, "not JSON, yet read to the end: %s", err.msg);
		cr_assert(strstr(err.msg, "invalid JSON") != NULL, "%s", err.msg);
	}
	cr_assert_eq(atomic_load(&tls_connections), 2);
}

Test(httpc_tls, untrusted_server_is_unreachable)
{
	const char *cas[] = {other_ca_path, NULL}; /* another CA; the system's CAs */

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cas); i++) {
		_cleanup_(shp_httpc_freep) struct shp_httpc *c =
			tls_client("127.0.0.1", tls_port, cas[i], false);
		struct shp_error err = SHP_ERROR_INIT;
		json_t *got = NULL;
		char url[64];

		cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err),
			     -SHP_E_UNREACHABLE);
		cr_assert(strstr(err.msg, "not trusted") != NULL, "%s", err.msg);
		(void)snprintf(url, sizeof(url), "'https://127.0.0.1:%d/prefix'", tls_port);
		cr_assert(strstr(err.msg, url) != NULL, "%s", err.msg);
		cr_assert(strstr(err.msg, "shp_tls_secret") == NULL, "%s", err.msg);
		cr_assert_eq(shp_errc_exit_status(err.code), SHP_EXIT_UNREACHABLE);
	}
}

Test(httpc_tls, name_mismatch_is_refused)
{
	const char *hosts[] = {"127.0.0.1", "localhost"};

	/* Signed by the right CA, but for wrong.example. */
	for (size_t i = 0; i < SHP_ARRAY_SIZE(hosts); i++) {
		_cleanup_(shp_httpc_freep) struct shp_httpc *c =
			tls_client(hosts[i], tls_wrong_port, ca_path, false);
		struct shp_error err = SHP_ERROR_INIT;
		json_t *got = NULL;

		cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err),
			     -SHP_E_UNREACHABLE, "%s", hosts[i]);
		cr_assert(strstr(err.msg, "not trusted") != NULL, "%s", err.msg);
		cr_assert(strstr(err.msg, "mismatch") != NULL, "%s", err.msg);
	}
	cr_assert_eq(atomic_load(&tls_wrong_connections), 2);
}

Test(httpc_tls, client_certificate)
{
	for (int mtls = 0; mtls < 2; mtls++) {
		_cleanup_(shp_httpc_freep) struct shp_httpc *c =
			tls_client("localhost", tls_port, ca_path, mtls);
		_cleanup_(json_decrefp) json_t *got = NULL;
		struct shp_error err = SHP_ERROR_INIT;

		cr_assert_eq(shp_httpc_json(c, "GET", "/tls-peer", NULL, NULL, &got, &err), 0, "%s",
			     err.msg);
		cr_assert_eq(json_is_true(json_object_get(got, "client_cert")), mtls);
		cr_assert_eq(json_is_true(json_object_get(got, "verified")), mtls);
	}
}

Test(httpc_tls, unusable_client_certificate)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *got = NULL;
	char url[64];

	(void)snprintf(url, sizeof(url), "https://localhost:%d", tls_port);
	struct shp_httpc_config cfg = {
		.server_url = url, .cacert = ca_path, .cert = client_crt, .key = ca_path};
	_cleanup_(shp_httpc_freep) struct shp_httpc *c = shp_httpc_new(&cfg, &err);
	cr_assert_eq(shp_httpc_json(c, "GET", "/echo", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "client certificate") != NULL, "%s", err.msg);

	struct shp_httpc_config nocafile = {.server_url = url, .cacert = "/nonexistent/ca.crt"};
	_cleanup_(shp_httpc_freep) struct shp_httpc *d = shp_httpc_new(&nocafile, &err);
	cr_assert_eq(shp_httpc_json(d, "GET", "/echo", NULL, NULL, &got, &err), -SHP_E_UNREACHABLE);
	cr_assert(strstr(err.msg, "/nonexistent/ca.crt") != NULL, "%s", err.msg);
}

Test(httpc_tls, streamed_answer)
{
	_cleanup_(shp_httpc_freep) struct shp_httpc *c =
		tls_client("localhost", tls_port, ca_path, false);
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct got g;

	shp_httpc_response_init(&resp);
	got_init(&g);
	cr_assert_eq(stream_path(c, "/chunked/70000", &g, &resp, &err), 0, "%s", err.msg);
	cr_assert_eq(g.status, 200);
	assert_chunked_body(&g.data, 70000);
	shp_buf_release(&g.data);
}
