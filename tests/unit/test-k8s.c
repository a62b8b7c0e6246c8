/*
 * The Kubernetes client without a cluster: path and query escaping, the NDJSON splitter, and the
 * client against a scripted libmicrohttpd server on loopback (plain HTTP, an insecure
 * kubeconfig): retries of 429 and 500 within the deadline, the answer cap, transport failures,
 * refused credentials with no token in the message, the in-flight limit and its queue timeout,
 * and watches (events split across chunks, ERROR 410, HTTP 410, a clean end, the stop flag).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <microhttpd.h>

#include "buf.h"
#include "error.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "util.h"

#define TOKEN "s3cr3t-t0ken-value"

/* ---- paths and queries -------------------------------------------------------------------- */

Test(k8s, pathf_escapes_every_argument)
{
	struct shp_buf b = SHP_BUF_INIT(1024);

	cr_assert_eq(shd_k8s_pathf(&b, "/api/v1/namespaces/%s/x/%s", "ns-1", "a/b?c=d&e f%"), 0);
	cr_assert_str_eq(b.buf, "/api/v1/namespaces/ns-1/x/a%2Fb%3Fc%3Dd%26e%20f%25");
	shp_buf_reset(&b);
	cr_assert_eq(shd_k8s_pathf(&b, "/%s/100%%", "\xc3\xa9.~_-"), 0);
	cr_assert_str_eq(b.buf, "/%C3%A9.~_-/100%");
	shp_buf_reset(&b);
	cr_assert_eq(shd_k8s_pathf(&b, "/%s", ".."), 0, "dots are unreserved");
	cr_assert_str_eq(b.buf, "/..");
	shp_buf_reset(&b);
	cr_assert_lt(shd_k8s_pathf(&b, "/%d", 5), 0, "only %%s is allowed");
	shp_buf_release(&b);
}

Test(k8s, pathf_respects_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(16);

	cr_assert_eq(shd_k8s_pathf(&b, "/%s", "0123456789abcdefghij"), -SHP_E_LIMIT);
	shp_buf_release(&b);
}

Test(k8s, query_joins_and_escapes)
{
	struct shp_buf b = SHP_BUF_INIT(1024);

	cr_assert_eq(shp_buf_add(&b, "/apis/kubevirt.io/v1/virtualmachines"), 0);
	cr_assert_eq(shd_k8s_query(&b, "labelSelector", "app in (a,b),!x,k=v"), 0);
	cr_assert_eq(shd_k8s_query(&b, "continue", NULL), 0);
	cr_assert_eq(shd_k8s_query(&b, "limit", "500"), 0);
	cr_assert_str_eq(b.buf, "/apis/kubevirt.io/v1/virtualmachines"
				"?labelSelector=app%20in%20%28a%2Cb%29%2C%21x%2Ck%3Dv&limit=500");
	shp_buf_release(&b);
}

/* ---- the NDJSON splitter ------------------------------------------------------------------ */

struct lines {
	char got[16][64];
	int n, stop_at;
};

static int collect(void *ud, const char *line, size_t len)
{
	struct lines *l = ud;

	cr_assert_lt(l->n, 16);
	(void)snprintf(l->got[l->n], sizeof(l->got[0]), "%.*s", (int)len, line);
	return ++l->n == l->stop_at ? -42 : 0;
}

Test(k8s, ndjson_splits_across_chunks)
{
	const char *text = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n{\"d\"";
	struct shd_ndjson s;
	struct lines l = {.stop_at = -1};

	shd_ndjson_init(&s, 64);
	for (size_t i = 0; text[i]; i++) /* one byte at a time: the worst split */
		cr_assert_eq(shd_ndjson_feed(&s, text + i, 1, collect, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.got[0], "{\"a\":1}");
	cr_assert_str_eq(l.got[1], "{\"b\":2}");
	cr_assert_str_eq(l.got[2], "{\"c\":3}");
	cr_assert(shd_ndjson_has_partial(&s));
	cr_assert_eq(shd_ndjson_feed(&s, ":4}\n", 4, collect, &l), 0);
	cr_assert_str_eq(l.got[3], "{\"d\":4}");
	cr_assert_not(shd_ndjson_has_partial(&s));
	shd_ndjson_release(&s);
}

Test(k8s, ndjson_several_events_in_one_chunk_and_stop)
{
	const char *text = "1\n2\n3\n4\n";
	struct shd_ndjson s;
	struct lines l = {.stop_at = 2};

	shd_ndjson_init(&s, 64);
	cr_assert_eq(shd_ndjson_feed(&s, text, strlen(text), collect, &l), -42);
	cr_assert_eq(l.n, 2, "nothing after the callback said stop");
	shd_ndjson_release(&s);
}

Test(k8s, ndjson_caps_the_line)
{
	struct shd_ndjson s;
	struct lines l = {.stop_at = -1};
	char big[100];

	memset(big, 'x', sizeof(big));
	shd_ndjson_init(&s, 64);
	cr_assert_eq(shd_ndjson_feed(&s, big, 50, collect, &l), 0);
	cr_assert_eq(shd_ndjson_feed(&s, big, 50, collect, &l), -SHP_E_LIMIT);
	shd_ndjson_release(&s);
	shd_ndjson_init(&s, 64);
	big[80] = '\n';
	cr_assert_eq(shd_ndjson_feed(&s, big, 81, collect, &l), -SHP_E_LIMIT, "whole line at once");
	cr_assert_eq(l.n, 0);
	shd_ndjson_release(&s);
}

/* ---- a scripted server -------------------------------------------------------------------- */

static struct MHD_Daemon *mhd;
static int port;
static atomic_int hits, inflight, peak_inflight;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
			     const char *hname, const char *hvalue)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	(void)MHD_add_response_header(r, "Content-Type", "application/json");
	if (hname)
		(void)MHD_add_response_header(r, hname, hvalue);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *status_body(int code, const char *reason)
{
	static __thread char b[256];

	(void)snprintf(b, sizeof(b),
		       "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
		       "\"message\":\"%s happened\",\"reason\":\"%s\",\"code\":%d}",
		       reason, reason, code);
	return b;
}

/* A streamed body served `step` bytes at a time from text; then hang or end. */
struct stream {
	const char *text;
	size_t step;
	bool hang;
};

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	const struct stream *s = cls;
	size_t len = strlen(s->text), n;

	if (pos >= len) {
		if (!s->hang)
			return MHD_CONTENT_READER_END_OF_STREAM;
		usleep(100000);
		if (pos > len + 100)
			return MHD_CONTENT_READER_END_OF_STREAM;
		buf[0] = '\n'; /* keep-alive: empty lines are no events */
		return 1;
	}
	n = len - pos < s->step ? len - pos : s->step;
	n = n < max ? n : max;
	memcpy(buf, s->text + pos, n);
	return (ssize_t)n;
}

static enum MHD_Result stream(struct MHD_Connection *c, const struct stream *s)
{
	struct MHD_Response *r =
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, stream_cb, (void *)s, NULL);
	enum MHD_Result ret = MHD_queue_response(c, 200, r);

	MHD_destroy_response(r);
	return ret;
}

#define EV(type, rv)                                                                               \
	"{\"type\":\"" type "\",\"object\":{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"   \
	"\"vm1\",\"namespace\":\"ns1\",\"resourceVersion\":\"" rv "\"}}}\n"

static const struct stream watch_410 = {
	EV("ADDED", "11")
		EV("MODIFIED", "12") "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
				     "\"code\":410,\"reason\":\"Expired\"}}\n",
	5, false};
static const struct stream watch_end = {EV("ADDED", "11") EV("BOOKMARK", "20"), 1000, false};
static const struct stream watch_hang = {EV("ADDED", "11"), 1000, true};
static const struct stream watch_500 = {
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"reason\":"
	"\"InternalError\",\"message\":\"etcd is sad\"}}\n",
	1000, false};

static ssize_t big_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls;
	if (pos > SHD_K8S_BODY_MAX + 1024 * 1024)
		return MHD_CONTENT_READER_END_OF_STREAM;
	memset(buf, ' ', max);
	return (ssize_t)max;
}

static enum MHD_Result slow(struct MHD_Connection *c, useconds_t us)
{
	int now = atomic_fetch_add(&inflight, 1) + 1, seen = atomic_load(&peak_inflight);

	while (now > seen && !atomic_compare_exchange_weak(&peak_inflight, &seen, now))
		;
	usleep(us);
	atomic_fetch_sub(&inflight, 1);
	return reply(c, 200, "{\"kind\":\"Slow\"}", NULL, NULL);
}

static enum MHD_Result route(struct MHD_Connection *c, const char *url)
{
	int n = atomic_fetch_add(&hits, 1);

	if (strcmp(url, "/ok") == 0)
		return reply(c, 200, "{\"kind\":\"Ok\",\"n\":1}", "Warning",
			     "299 - \"deprecated\"");
	if (strcmp(url, "/retry429") == 0)
		return n == 0 ? reply(c, 429, status_body(429, "TooManyRequests"), "Retry-After",
				      "1")
			      : reply(c, 200, "{\"kind\":\"Ok\"}", NULL, NULL);
	if (strcmp(url, "/retry500") == 0)
		return n < 2 ? reply(c, 500, status_body(500, "InternalError"), NULL, NULL)
			     : reply(c, 200, "{\"kind\":\"Ok\"}", NULL, NULL);
	if (strcmp(url, "/fail500") == 0)
		return reply(c, 500, status_body(500, "InternalError"), NULL, NULL);
	if (strcmp(url, "/notjson") == 0)
		return reply(c, 200, "<html>", NULL, NULL);
	if (strcmp(url, "/unauth") == 0)
		return reply(c, 401, status_body(401, "Unauthorized"), NULL, NULL);
	if (strcmp(url, "/slow") == 0)
		return slow(c, 200000);
	if (strcmp(url, "/big") == 0) {
		struct MHD_Response *r = MHD_create_response_from_callback(
			MHD_SIZE_UNKNOWN, 64 * 1024, big_cb, NULL, NULL);
		enum MHD_Result ret = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/watch410") == 0)
		return stream(c, &watch_410);
	if (strcmp(url, "/watchend") == 0)
		return stream(c, &watch_end);
	if (strcmp(url, "/watchhang") == 0)
		return stream(c, &watch_hang);
	if (strcmp(url, "/watch500") == 0)
		return stream(c, &watch_500);
	if (strcmp(url, "/watchgone") == 0)
		return reply(c, 410, status_body(410, "Gone"), NULL, NULL);
	return reply(c, 404, status_body(404, "NotFound"), NULL, NULL);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *size, void **state)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");

	(void)cls, (void)method, (void)version, (void)data;
	if (!*state) { /* the first call only sees the headers */
		*state = (void *)1;
		return MHD_YES;
	}
	*size = 0;
	if (!auth || strcmp(auth, "Bearer " TOKEN) != 0)
		return reply(c, 401, status_body(401, "Unauthorized"), NULL, NULL);
	return route(c, url);
}

static void start(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(fd, 64) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	port = ntohs(sa.sin_port);
	mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
			       NULL, NULL, handler, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
			       MHD_OPTION_END);
	cr_assert_not_null(mhd);
}

static void stop(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
}

TestSuite(k8s_client, .init = start, .fini = stop, .timeout = 30);

static struct shd_k8s *client(int max_inflight, const char *token, int at_port)
{
	char server[64];
	struct shd_kubeconfig kc = {.insecure = true, .token = (char *)token};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_k8s *k;

	(void)snprintf(server, sizeof(server), "http://127.0.0.1:%d", at_port);
	kc.server = server;
	k = shd_k8s_new(&kc, "test", max_inflight, &err);
	cr_assert_not_null(k, "%s", err.msg);
	return k;
}

static uint64_t in_ms(long ms)
{
	return shp_now_monotonic_ns() + (uint64_t)ms * 1000000u;
}

static int get(struct shd_k8s *k, const char *path, long ms, struct shd_k8s_resp *r,
	       struct shp_error *err)
{
	struct shd_k8s_req req = {.method = "GET", .path = path, .deadline_ns = in_ms(ms)};

	return shd_k8s_call(k, &req, r, err);
}

Test(k8s_client, get_parses_json)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(get(k, "/ok", 5000, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(json_string_value(json_object_get(r.json, "kind")), "Ok");
	cr_assert_eq(err.code, SHP_OK, "err untouched on success");
	shd_k8s_resp_release(&r);
}

Test(k8s_client, retries_429_with_retry_after)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shd_k8s_stats st;
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t t0 = shp_now_monotonic_ns();

	cr_assert_eq(get(k, "/retry429", 5000, &r, &err), 0, "%s", err.msg);
	cr_assert_geq(shp_now_monotonic_ns() - t0, 900000000u, "Retry-After: 1 honoured");
	shd_k8s_get_stats(k, &st);
	cr_assert_eq(st.requests, 2);
	cr_assert_eq(st.retries, 1);
	cr_assert_eq(err.code, SHP_OK);
	shd_k8s_resp_release(&r);
}

Test(k8s_client, retries_500_with_backoff)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(get(k, "/retry500", 5000, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(atomic_load(&hits), 3);
	shd_k8s_resp_release(&r);
}

Test(k8s_client, endless_500_fails_within_the_deadline)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t t0 = shp_now_monotonic_ns();

	cr_assert_eq(get(k, "/fail500", 1500, &r, &err), -SHP_E_K8S);
	cr_assert_leq(shp_now_monotonic_ns() - t0, 1600000000u, "ended by the deadline");
	cr_assert_geq(atomic_load(&hits), 2, "retried at least once");
	cr_assert_eq(r.status, 500);
	cr_assert(r.failure.retryable);
	cr_assert(strstr(err.msg, "InternalError happened"), "%s", err.msg);
	shd_k8s_resp_release(&r);
}

Test(k8s_client, bad_token_is_perm_without_the_token)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, "wrong-" TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(get(k, "/ok", 5000, &r, &err), -SHP_E_PERM);
	cr_assert_null(strstr(err.msg, TOKEN), "%s", err.msg);
	cr_assert_eq(atomic_load(&hits), 0, "not retried");
	shd_k8s_resp_release(&r);
}

Test(k8s_client, oversized_answer_is_limit)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(get(k, "/big", 20000, &r, &err), -SHP_E_LIMIT, "%s", err.msg);
	shd_k8s_resp_release(&r);
}

Test(k8s_client, non_json_answer_is_proto)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(get(k, "/notjson", 5000, &r, &err), -SHP_E_PROTO);
	shd_k8s_resp_release(&r);
}

Test(k8s_client, refused_connection_is_unreachable)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct shd_k8s *k;
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t t0;

	/* a port bound but not listening: connections are refused */
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	k = client(2, TOKEN, ntohs(sa.sin_port));
	t0 = shp_now_monotonic_ns();
	cr_assert_eq(get(k, "/ok", 5000, &r, &err), -SHP_E_UNAVAIL);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1000000000u, "fast");
	cr_assert_str_eq(shp_error_api_code_of(&err), "UNREACHABLE");
	cr_assert(strstr(err.msg, "cluster 'test' at 'http://127.0.0.1:"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, TOKEN));
	shd_k8s_resp_release(&r);
	shd_k8s_free(k);
	close(fd);
}

struct par {
	struct shd_k8s *k;
	int rc;
};

static void *par_get(void *arg)
{
	struct par *p = arg;
	struct shd_k8s_resp r;

	p->rc = get(p->k, "/slow", 10000, &r, NULL);
	shd_k8s_resp_release(&r);
	return NULL;
}

Test(k8s_client, inflight_limit_holds)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	pthread_t t[8];
	struct par p[8];
	struct shd_k8s_stats st;

	for (int i = 0; i < 8; i++) {
		p[i] = (struct par){.k = k};
		cr_assert_eq(pthread_create(&t[i], NULL, par_get, &p[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(p[i].rc, 0);
	}
	shd_k8s_get_stats(k, &st);
	cr_assert_eq(st.max_busy, 2);
	cr_assert_eq(atomic_load(&peak_inflight), 2, "the server saw at most 2 at once");
}

Test(k8s_client, waiting_for_a_slot_is_bounded)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(1, TOKEN, port);
	struct par p = {.k = k};
	pthread_t t;
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(pthread_create(&t, NULL, par_get, &p), 0);
	usleep(50000);
	cr_assert_eq(get(k, "/ok", 60, &r, &err), -SHP_E_TIMEOUT);
	cr_assert(strstr(err.msg, "waiting for a free connection to cluster 'test'"), "%s",
		  err.msg);
	shd_k8s_resp_release(&r);
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, 0);
}

/* ---- watches ------------------------------------------------------------------------------- */

struct seen {
	int n;
	char types[8][16];
	char rvs[8][16];
	int stop_after;
};

static int on_event(void *ud, const char *type, const json_t *obj)
{
	struct seen *s = ud;
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));

	cr_assert_lt(s->n, 8);
	(void)snprintf(s->types[s->n], sizeof(s->types[0]), "%s", type);
	(void)snprintf(s->rvs[s->n], sizeof(s->rvs[0]), "%s", rv ? rv : "");
	return ++s->n == s->stop_after ? -1 : 0;
}

Test(k8s_client, watch_split_events_then_410)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct seen s = {0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_k8s_watch(k, "/watch410", on_event, &s, NULL, in_ms(5000), &err),
		     SHD_K8S_EXPIRED, "%s", err.msg);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.types[0], "ADDED");
	cr_assert_str_eq(s.rvs[1], "12");
}

Test(k8s_client, watch_http_410_and_clean_end)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct seen s = {0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_k8s_watch(k, "/watchgone", on_event, &s, NULL, in_ms(5000), &err),
		     SHD_K8S_EXPIRED);
	cr_assert_eq(shd_k8s_watch(k, "/watchend", on_event, &s, NULL, in_ms(5000), &err), 0, "%s",
		     err.msg);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.types[1], "BOOKMARK");
	cr_assert_str_eq(s.rvs[1], "20");
}

Test(k8s_client, watch_error_event_and_refusal)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	_cleanup_(shd_k8s_freep) struct shd_k8s *bad = client(2, "nope", port);
	struct seen s = {0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_k8s_watch(k, "/watch500", on_event, &s, NULL, in_ms(5000), &err),
		     -SHP_E_K8S);
	cr_assert(strstr(err.msg, "etcd is sad"), "%s", err.msg);
	cr_assert_eq(shd_k8s_watch(bad, "/watchend", on_event, &s, NULL, in_ms(5000), &err),
		     -SHP_E_PERM);
	cr_assert_eq(s.n, 0);
}

static atomic_bool stop_flag;

static void *raise_stop(void *arg)
{
	(void)arg;
	usleep(300000);
	atomic_store(&stop_flag, true);
	return NULL;
}

Test(k8s_client, watch_stops_on_flag_fn_and_deadline)
{
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = client(2, TOKEN, port);
	struct seen s = {0}, one = {.stop_after = 1};
	struct shp_error err = SHP_ERROR_INIT;
	pthread_t t;
	uint64_t t0 = shp_now_monotonic_ns();

	cr_assert_eq(pthread_create(&t, NULL, raise_stop, NULL), 0);
	cr_assert_eq(shd_k8s_watch(k, "/watchhang", on_event, &s, &stop_flag, in_ms(20000), &err),
		     0, "%s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1500000000u, "stopped within a second");
	pthread_join(t, NULL);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(shd_k8s_watch(k, "/watchhang", on_event, &one, NULL, in_ms(20000), &err), 0);
	cr_assert_eq(one.n, 1);
	t0 = shp_now_monotonic_ns();
	cr_assert_eq(shd_k8s_watch(k, "/watchhang", on_event, &s, NULL, in_ms(700), &err), 0,
		     "the deadline ends a watch cleanly: %s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1500000000u);
}

/* ---- construction ------------------------------------------------------------------------- */

Test(k8s, refuses_bad_servers_and_tokens)
{
	struct shd_kubeconfig kc = {.server = "ftp://x", .token = "t"};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_k8s_new(&kc, "c", 2, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	kc.server = "http://127.0.0.1:1";
	cr_assert_null(shd_k8s_new(&kc, "c", 2, &err), "plain http needs insecure");
	kc.server = "https://127.0.0.1:1";
	kc.token = "abc\r\nX-Evil: 1";
	shp_error_clear(&err);
	cr_assert_null(shd_k8s_new(&kc, "c", 2, &err));
	cr_assert_null(strstr(err.msg, "abc"), "%s", err.msg);
}
