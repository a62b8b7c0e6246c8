/*
 * lib/httpc against a real HTTP server: libmicrohttpd runs inside the test process on a Unix
 * socket in a temp dir and answers a few fixed routes (echo, error bodies, big bodies, retry).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
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
	json_t *j =
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s%}", "method", method, "path", url,
			  "authorization", hdr(conn, "Authorization"), "idempotency_key",
			  hdr(conn, "Idempotency-Key"), "content_type", hdr(conn, "Content-Type"),
			  "api_version", hdr(conn, "X-Shepherd-Api-Version"), "body", up->body.buf,
			  up->body.len);
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

static enum MHD_Result route(struct MHD_Connection *conn, const char *url, const char *method,
			     struct upload *up)
{
	if (strcmp(url, "/echo") == 0)
		return echo(conn, url, method, up);
	if (strcmp(url, "/not-found") == 0)
		return reply(conn, 404, "application/json",
			     "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"namespace 'x' not "
			     "found\",\"details\":{\"kind\":\"namespace\",\"name\":\"x\"},"
			     "\"request_id\":\"req-body\"}}",
			     "X-Request-Id", "req-header");
	if (strcmp(url, "/invalid") == 0)
		return reply(conn, 400, "application/json",
			     "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"name is too "
			     "long\",\"details\":{\"field\":\"name\",\"max\":63,\"ok\":false}}}",
			     "X-Request-Id", "req-inval");
	if (strcmp(url, "/confirm") == 0)
		return reply(
			conn, 409, "application/json",
			"{\"error\":{\"code\":\"CONFIRMATION_REQUIRED\",\"message\":\"type the "
			"name\",\"details\":{}}}",
			NULL, NULL);
	if (strcmp(url, "/proxy") == 0)
		return reply(conn, 502, "text/html", "<html>Bad Gateway</html>", NULL, NULL);
	if (strcmp(url, "/redirect") == 0)
		return reply(conn, 301, "text/plain", "moved", "Location", "/echo");
	if (strcmp(url, "/garbage") == 0)
		return reply(conn, 200, "application/json", "{\"a\":", NULL, NULL);
	if (strcmp(url, "/empty") == 0)
		return reply(conn, 204, "application/json", "", NULL, NULL);
	if (strcmp(url, "/rate") == 0)
		return reply(conn, 429, "application/json",
			     "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow down\"}}",
			     "Retry-After", "7");
	if (strcmp(url, "/unavailable") == 0)
		return reply(conn, 503, "application/json",
			     "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"later\"}}",
			     "Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT");
	if (strncmp(url, "/big/", 5) == 0) {
		uint64_t n = strtoull(url + 5, NULL, 10);
		struct MHD_Response *r = MHD_create_response_from_callback(
			n, 64 * 1024, big_body, (void *)(uintptr_t)n, NULL);
		enum MHD_Result ret = MHD_queue_response(conn, 200, r);

		MHD_destroy_response(r);
		return ret;
	}
	return reply(conn, 404, "text/plain", "no such route", NULL, NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct upload *up = *con_cls;

	if (!up) {
		up = calloc(1, sizeof(*up));
		shp_buf_init(&up->body, 1 << 20);
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

static struct MHD_Daemon *start_mhd(int fd)
{
	struct MHD_Daemon *d =
		MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
				 MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
				 completed, NULL, MHD_OPTION_END);
	cr_assert(d != NULL);
	return d;
}

static void setup(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int tcp;

	cr_assert(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/test-httpc.XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL);
	(void)snprintf(sock_path, sizeof(sock_path), "%s/shepherdd.sock", tmpdir);
	mhd = start_mhd(unix_listener(sock_path, true));

	/* A plain-HTTP server on loopback, for the TLS failure case. */
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(tcp, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(tcp, 16) == 0);
	cr_assert(getsockname(tcp, (struct sockaddr *)&sa, &len) == 0);
	tcp_port = ntohs(sa.sin_port);
	mhd_tcp = start_mhd(tcp);
}

static void teardown(void)
{
	char cmd[128];

	MHD_stop_daemon(mhd);
	MHD_stop_daemon(mhd_tcp);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)system(cmd);
	curl_global_cleanup();
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
