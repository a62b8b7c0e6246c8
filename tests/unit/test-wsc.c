/*
 * lib/wsc against a raw server on a Unix socket in a temp dir, one thread per test, which
 * answers the upgrade from a scenario: a good 101 with frames (fragmented text, PING, binary,
 * CLOSE; frames in the same packet as the head), and the bad ones a real daemon never sends: a
 * wrong accept key or subprotocol, a refusal, a 200 that does not switch, masked or oversized
 * frames. The server checks what the client sends: masked frames, the PONG, the CLOSE.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "httpc.h"
#include "ws.h"
#include "wsc.h"

enum scenario { GOOD, BAD_ACCEPT, BAD_PROTOCOL, REFUSED, NOT_SWITCHED, MASKED, OVERSIZED };

struct server {
	enum scenario sc;
	int lfd;
	char path[108];
	pthread_t thread;
	/* what the client sent, for the test to check */
	bool pong_ok;
	bool saw_extra; /* the upgrade carried "X-Test: yes" */
	char text_in[64];
	unsigned close_code;
};

static char tmpdir[64];

static void send_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		p = (const char *)p + k;
		n -= (size_t)k;
	}
}

static bool recv_all(int fd, void *p, size_t n)
{
	while (n > 0) {
		ssize_t k = recv(fd, p, n, 0);
		if (k <= 0)
			return false;
		p = (char *)p + k;
		n -= (size_t)k;
	}
	return true;
}

/* An unmasked frame into out (the server's), returns its length. */
static size_t frame(uint8_t *out, unsigned op, bool fin, const char *payload, size_t n)
{
	size_t hl = shp_ws_encode_header(out, op, fin, n, NULL);

	memcpy(out + hl, payload, n);
	return hl + n;
}

/* One masked frame from the client: opcode and payload (unmasked) into buf. */
static int read_client_frame(int fd, char *buf, size_t size, size_t *ret_len)
{
	uint8_t h[14];
	struct shp_ws_frame f;
	size_t have = 2;
	int hl;

	if (!recv_all(fd, h, 2))
		return -1;
	while ((hl = shp_ws_decode_header(h, have, true, size, &f)) == 0)
		if (!recv_all(fd, h + have++, 1))
			return -1;
	if (hl < 0 || !recv_all(fd, buf, (size_t)f.len))
		return -1;
	shp_ws_mask((uint8_t *)buf, (size_t)f.len, f.mask, 0);
	*ret_len = (size_t)f.len;
	return (int)f.opcode;
}

/* Read the request head; the key's accept value into accept. */
static void read_request(struct server *s, int fd, char *accept)
{
	char req[4096];
	size_t n = 0;
	char key[64] = "";
	const char *k;

	while (n < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		if (recv(fd, req + n, 1, 0) != 1)
			break;
		req[++n] = '\0';
	}
	s->saw_extra = strstr(req, "\r\nX-Test: yes\r\n") != NULL;
	k = strstr(req, "Sec-WebSocket-Key: ");
	if (k)
		(void)sscanf(k + 19, "%63[^\r]", key);
	if (shp_ws_accept_key(key, accept) < 0)
		accept[0] = '\0';
}

static void serve_good(struct server *s, int fd, const char *accept)
{
	uint8_t out[512];
	char head[512], buf[256];
	size_t n, len;
	int op;

	/* the head and the first frames in one write: the client must keep those bytes */
	n = (size_t)snprintf(head, sizeof(head),
			     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
			     "Sec-WebSocket-Protocol: test.proto\r\n\r\n",
			     accept);
	memcpy(out, head, n);
	n += frame(out + n, SHP_WS_TEXT, false, "hel", 3);
	n += frame(out + n, SHP_WS_PING, true, "png", 3);
	n += frame(out + n, SHP_WS_CONT, true, "lo", 2);
	send_all(fd, out, n);
	op = read_client_frame(fd, buf, sizeof(buf), &len);
	s->pong_ok = op == SHP_WS_PONG && len == 3 && memcmp(buf, "png", 3) == 0;
	n = frame(out, SHP_WS_BINARY, true, "\x01\x02", 2);
	send_all(fd, out, n);
	op = read_client_frame(fd, buf, sizeof(buf), &len);
	if (op == SHP_WS_TEXT && len < sizeof(s->text_in))
		memcpy(s->text_in, buf, len);
	n = frame(out, SHP_WS_CLOSE, true, "\x03\xe9", 2); /* 1001 */
	send_all(fd, out, n);
	op = read_client_frame(fd, buf, sizeof(buf), &len);
	if (op == SHP_WS_CLOSE && len >= 2)
		s->close_code = (unsigned)((uint8_t)buf[0] << 8 | (uint8_t)buf[1]);
}

static void serve_bad(struct server *s, int fd, const char *accept)
{
	uint8_t out[64];
	char head[512], buf[256];
	size_t n = 0, len;
#define SWITCHED                                                                                   \
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"        \
	"Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n"

	switch (s->sc) {
	case BAD_ACCEPT:
		n = (size_t)snprintf(head, sizeof(head), SWITCHED, "AAAA", "test.proto");
		break;
	case BAD_PROTOCOL:
		n = (size_t)snprintf(head, sizeof(head), SWITCHED, accept, "other");
		break;
	case REFUSED:
		n = (size_t)snprintf(
			head, sizeof(head), "%s",
			"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n"
			"Content-Type: application/json\r\nContent-Length: 68\r\n\r\n"
			"{\"error\":{\"code\":\"WEBSOCKET_DISABLED\",\"message\":\"off\","
			"\"details\":{}}}");
		break;
	case NOT_SWITCHED:
		n = (size_t)snprintf(head, sizeof(head), "%s",
				     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
				     ": stream open\r\n\r\n");
		break;
	default: n = (size_t)snprintf(head, sizeof(head), SWITCHED, accept, "test.proto"); break;
	}
	send_all(fd, head, n);
	if (s->sc == MASKED) {
		static const uint8_t mask[4] = {1, 2, 3, 4};
		n = shp_ws_encode_header(out, SHP_WS_TEXT, true, 1, mask);
		out[n++] = 'x' ^ 1;
		send_all(fd, out, n);
	} else if (s->sc == OVERSIZED) {
		n = shp_ws_encode_header(out, SHP_WS_BINARY, true, (uint64_t)SHP_WSC_FRAME_MAX + 1,
					 NULL);
		send_all(fd, out, n);
	} else {
		return;
	}
	if (read_client_frame(fd, buf, sizeof(buf), &len) == SHP_WS_CLOSE && len >= 2)
		s->close_code = (unsigned)((uint8_t)buf[0] << 8 | (uint8_t)buf[1]);
}

static void *serve(void *arg)
{
	struct server *s = arg;
	char accept[SHP_WS_ACCEPT_LEN + 1];
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return NULL;
	read_request(s, fd, accept);
	if (s->sc == GOOD)
		serve_good(s, fd, accept);
	else
		serve_bad(s, fd, accept);
	close(fd);
	return NULL;
}

static struct shp_httpc *start(struct server *s, enum scenario sc)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct shp_httpc_config cfg = {.timeout_ms = 5000};
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_httpc *c;

	*s = (struct server){.sc = sc};
	(void)snprintf(s->path, sizeof(s->path), "%s/s%d.sock", tmpdir, (int)sc);
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(s->lfd >= 0);
	cr_assert(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(s->lfd, 4) == 0);
	cr_assert(pthread_create(&s->thread, NULL, serve, s) == 0);
	cfg.socket_path = s->path;
	c = shp_httpc_new(&cfg, &err);
	cr_assert_not_null(c, "%s", err.msg);
	return c;
}

static void stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	unlink(s->path);
}

static void setup(void)
{
	(void)snprintf(tmpdir, sizeof(tmpdir), "/tmp/shp-wsc.XXXXXX");
	cr_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void)
{
	rmdir(tmpdir);
}

TestSuite(wsc, .init = setup, .fini = teardown, .timeout = 20);

static int open_ws(struct shp_httpc *c, struct shp_httpc_response *resp, struct shp_wsc **w,
		   struct shp_error *err)
{
	static const char *const extra[] = {"X-Test: yes", NULL};

	shp_httpc_response_init(resp);
	return shp_wsc_open_with(c, "/stream?after=1", "test.proto", extra, resp, w, err);
}

Test(wsc, frames_pings_and_close)
{
	struct server s;
	struct shp_httpc *c = start(&s, GOOD);
	struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_wsc *w = NULL;
	char buf[64], msg[64] = "";
	unsigned op = 0;
	long n;

	cr_assert_eq(open_ws(c, &resp, &w, &err), 0, "%s", err.msg);
	/* "hel" (not the end), the PING answered inside, then "lo" ending the message */
	n = shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err);
	cr_assert_eq(n, 3);
	cr_assert_eq(op, SHP_WS_TEXT);
	cr_assert_not(shp_wsc_message_ended(w));
	memcpy(msg, buf, 3);
	n = shp_wsc_read(w, buf, 1, &op, 2000, &err); /* a short buffer: one byte at a time */
	cr_assert_eq(n, 1);
	cr_assert_not(shp_wsc_message_ended(w));
	msg[3] = buf[0];
	n = shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err);
	cr_assert_eq(n, 1);
	cr_assert(shp_wsc_message_ended(w));
	msg[4] = buf[0];
	cr_assert_str_eq(msg, "hello");
	n = shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err);
	cr_assert_eq(n, 2);
	cr_assert_eq(op, SHP_WS_BINARY);
	cr_assert_eq(memcmp(buf, "\x01\x02", 2), 0);
	cr_assert_eq(shp_wsc_write(w, SHP_WS_TEXT, "from the client", 15, &err), 0);
	n = shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err);
	cr_assert_eq(n, 0, "the CLOSE ends the stream");
	cr_assert_eq(shp_wsc_close_code(w), 1001);
	cr_assert_neq(shp_wsc_write(w, SHP_WS_TEXT, "late", 4, &err), 0);
	w = shp_wsc_close(w);
	stop(&s);
	cr_assert(s.saw_extra, "the extra header line went with the upgrade");
	cr_assert(s.pong_ok, "the PING was answered with its payload, masked");
	cr_assert_str_eq(s.text_in, "from the client");
	cr_assert_eq(s.close_code, 1001, "the CLOSE is echoed");
	shp_httpc_response_release(&resp);
	shp_httpc_free(c);
}

static void refused_with(enum scenario sc, enum shp_errc want, const char *what)
{
	struct server s;
	struct shp_httpc *c = start(&s, sc);
	struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_wsc *w = NULL;
	int r = open_ws(c, &resp, &w, &err);

	cr_assert_eq(r, -(int)want, "%s: %d (%s)", what, r, err.msg);
	cr_assert_null(w);
	stop(&s);
	shp_httpc_response_release(&resp);
	shp_httpc_free(c);
}

Test(wsc, bad_answers)
{
	refused_with(BAD_ACCEPT, SHP_E_PROTO, "a wrong Sec-WebSocket-Accept");
	refused_with(BAD_PROTOCOL, SHP_E_PROTO, "another subprotocol");
	refused_with(NOT_SWITCHED, SHP_E_PROTO, "a 200 that does not switch");
}

Test(wsc, refusal_is_the_daemons_error)
{
	struct server s;
	struct shp_httpc *c = start(&s, REFUSED);
	struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_wsc *w = NULL;
	int r = open_ws(c, &resp, &w, &err);

	cr_assert_lt(r, 0);
	cr_assert_eq(resp.status, 429);
	cr_assert_eq(resp.retry_after, 5);
	cr_assert_str_eq(shp_error_api_code_of(&err), "WEBSOCKET_DISABLED");
	cr_assert_str_eq(err.msg, "off");
	stop(&s);
	shp_httpc_response_release(&resp);
	shp_httpc_free(c);
}

static void hostile_frame(enum scenario sc, enum shp_errc want, unsigned want_close)
{
	struct server s;
	struct shp_httpc *c = start(&s, sc);
	struct shp_httpc_response resp;
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_wsc *w = NULL;
	char buf[64];
	unsigned op;

	cr_assert_eq(open_ws(c, &resp, &w, &err), 0, "%s", err.msg);
	cr_assert_eq(shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err), -(long)want);
	cr_assert_eq(shp_wsc_read(w, buf, sizeof(buf), &op, 2000, &err), 0, "and then it ends");
	w = shp_wsc_close(w);
	stop(&s);
	cr_assert_eq(s.close_code, want_close);
	shp_httpc_response_release(&resp);
	shp_httpc_free(c);
}

Test(wsc, masked_server_frame)
{
	hostile_frame(MASKED, SHP_E_PROTO, 1002);
}

Test(wsc, oversized_frame)
{
	hostile_frame(OVERSIZED, SHP_E_LIMIT, 1009);
}
