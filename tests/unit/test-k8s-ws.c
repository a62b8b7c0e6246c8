/*
 * The WebSocket codec of the console (shepherdd/ws.c): frame headers encoded and decoded in
 * every length form, hostile headers (truncated, reserved bits, unknown opcodes, masked server
 * frames, long or fragmented control frames, lengths over the cap or with the top bit set),
 * masking, the accept key of RFC 6455, and upgrade answers (wrong key, wrong subprotocol,
 * missing headers, malformed heads). Then the client (k8s-ws.c) against a scripted server on
 * loopback: text skipped, PINGs answered (inside a fragmented message too), fragments joined,
 * 16- and 64-bit lengths, CLOSE answered and ending the stream, writes masked; a frame over the
 * cap (CLOSE 1009), masked server frames and out-of-place fragments (CLOSE 1002); refusals
 * mapped through the Status (chunked too) without the token; a bad accept key; a head over
 * 16 KiB; a connection closed during the upgrade.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "k8s-ws.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "util.h"
#include "ws.h"

#define MAX (1u << 20)

Test(ws, encode_decode_round_trip)
{
	static const struct {
		uint64_t len;
		size_t header; /* without mask */
	} cases[] = {{0, 2},    {1, 2},        {125, 2},
		     {126, 4},  {65535, 4},    {65536, 10},
		     {MAX, 10}, {MAX - 1, 10}, {(uint64_t)1 << 40, 10}};
	const uint8_t mask[4] = {1, 2, 3, 4};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int masked = 0; masked < 2; masked++) {
			uint8_t h[SHP_WS_HEADER_MAX];
			struct shp_ws_frame f;
			size_t n = shp_ws_encode_header(h, SHP_WS_BINARY, true, cases[i].len,
							masked ? mask : NULL);
			cr_assert_eq(n, cases[i].header + (masked ? 4 : 0), "case %zu", i);
			int rc = shp_ws_decode_header(h, n, masked, UINT64_MAX >> 1, &f);
			cr_assert_eq(rc, (int)n, "case %zu", i);
			cr_assert_eq(f.len, cases[i].len);
			cr_assert(f.fin);
			cr_assert_eq(f.opcode, SHP_WS_BINARY);
			cr_assert_eq(f.masked, (bool)masked);
			if (masked)
				cr_assert_eq(memcmp(f.mask, mask, 4), 0);
			/* every prefix of the header asks for more bytes */
			for (size_t k = 0; k < n; k++)
				cr_assert_eq(
					shp_ws_decode_header(h, k, masked, UINT64_MAX >> 1, &f), 0,
					"case %zu prefix %zu", i, k);
		}
	}
}

Test(ws, hostile_headers)
{
	static const struct {
		const char *what;
		uint8_t bytes[14];
		size_t n;
		bool want_masked;
		int rc;
	} cases[] = {
		{"reserved bit", {0xc2, 0x00}, 2, false, -SHP_E_PROTO},
		{"unknown opcode 3", {0x83, 0x00}, 2, false, -SHP_E_PROTO},
		{"unknown opcode 0xb", {0x8b, 0x00}, 2, false, -SHP_E_PROTO},
		{"masked server frame", {0x82, 0x81, 1, 2, 3, 4}, 6, false, -SHP_E_PROTO},
		{"unmasked client frame", {0x82, 0x01}, 2, true, -SHP_E_PROTO},
		{"fragmented ping", {0x09, 0x00}, 2, false, -SHP_E_PROTO},
		{"long close", {0x88, 126, 0, 200}, 4, false, -SHP_E_PROTO},
		{"64-bit top bit", {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, 10, false, -SHP_E_PROTO},
		{"64-bit huge",
		 {0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		 10,
		 false,
		 -SHP_E_LIMIT},
		{"64-bit cap + 1", {0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 1}, 10, false, -SHP_E_LIMIT},
		{"truncated 16-bit", {0x82, 126, 1}, 3, false, 0},
		{"truncated 64-bit", {0x82, 127, 0, 0, 0}, 5, false, 0},
		{"truncated mask", {0x82, 0x85, 1, 2}, 4, true, 0},
		{"one byte", {0x82}, 1, false, 0},
		{"nothing", {0}, 0, false, 0},
		{"64-bit at the cap", {0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0}, 10, false, 10},
		{"text", {0x81, 0x03}, 2, false, 2},
		{"continuation", {0x00, 0x03}, 2, false, 2},
		{"close", {0x88, 0x02}, 2, false, 2},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shp_ws_frame f = {0};
		int rc = shp_ws_decode_header(cases[i].bytes, cases[i].n, cases[i].want_masked, MAX,
					      &f);
		cr_assert_eq(rc, cases[i].rc, "%s: %d", cases[i].what, rc);
	}
}

Test(ws, mask_is_its_own_inverse_at_any_offset)
{
	const uint8_t mask[4] = {0xa1, 0x5c, 0x00, 0xff};
	uint8_t data[37], orig[37], split[37];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = orig[i] = split[i] = (uint8_t)(i * 13);
	shp_ws_mask(data, sizeof(data), mask, 0);
	cr_assert_eq(data[1], (uint8_t)(13 ^ 0x5c));
	/* masking in two pieces gives the same bytes as in one */
	shp_ws_mask(split, 10, mask, 0);
	shp_ws_mask(split + 10, sizeof(split) - 10, mask, 10);
	cr_assert_eq(memcmp(data, split, sizeof(data)), 0);
	shp_ws_mask(data, sizeof(data), mask, 0);
	cr_assert_eq(memcmp(data, orig, sizeof(data)), 0);
}

Test(ws, accept_key_of_rfc6455)
{
	char out[SHP_WS_ACCEPT_LEN + 1];

	cr_assert_eq(shp_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define GOOD_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

Test(ws, upgrade_answers)
{
	static const struct {
		const char *what;
		const char *head;
		int parse_rc;
		long status;
		int check_rc;
		const char *msg;
	} cases[] = {
		{"good",
		 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
		 "Upgrade\r\nSec-WebSocket-Accept: " GOOD_ACCEPT
		 "\r\nSec-WebSocket-Protocol: plain.kubevirt.io\r\n\r\n",
		 0, 101, 0, NULL},
		{"case and lists",
		 "HTTP/1.1 101 OK\nupgrade: WebSocket\nconnection: keep-alive, "
		 "UPGRADE\nsec-websocket-accept:" GOOD_ACCEPT
		 "\nsec-websocket-protocol:  plain.kubevirt.io \n\n",
		 0, 101, 0, NULL},
		{"bad accept",
		 "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: AAAAPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
		 "Sec-WebSocket-Protocol: plain.kubevirt.io\r\n\r\n",
		 0, 101, -SHP_E_PROTO, "Accept"},
		{"no accept",
		 "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Protocol: plain.kubevirt.io\r\n\r\n",
		 0, 101, -SHP_E_PROTO, "Accept"},
		{"wrong subprotocol",
		 "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: "
		 "Upgrade\r\nSec-WebSocket-Accept: " GOOD_ACCEPT
		 "\r\nSec-WebSocket-Protocol: base64.channel.k8s.io\r\n\r\n",
		 0, 101, -SHP_E_PROTO, "subprotocol"},
		{"no subprotocol",
		 "HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
		 0, 101, -SHP_E_PROTO, "subprotocol"},
		{"no upgrade header",
		 "HTTP/1.1 101 X\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
		 0, 101, -SHP_E_PROTO, "Upgrade"},
		{"refused", "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n", 0, 404,
		 -SHP_E_PROTO, "404"},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", -SHP_E_PROTO, 0, 0, NULL},
		{"bad status", "HTTP/1.1 1x1 X\r\n\r\n", -SHP_E_PROTO, 0, 0, NULL},
		{"line without colon", "HTTP/1.1 101 X\r\nbogus\r\n\r\n", -SHP_E_PROTO, 0, 0, NULL},
		{"bad length", "HTTP/1.1 400 X\r\nContent-Length: -5\r\n\r\n", -SHP_E_PROTO, 0, 0,
		 NULL},
		{"empty", "", -SHP_E_PROTO, 0, 0, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shp_ws_answer a;
		struct shp_error err = SHP_ERROR_INIT;
		int rc = shp_ws_parse_answer(cases[i].head, strlen(cases[i].head), &a);

		cr_assert_eq(rc, cases[i].parse_rc, "%s: parse %d", cases[i].what, rc);
		if (rc < 0)
			continue;
		cr_assert_eq(a.status, cases[i].status, "%s", cases[i].what);
		rc = shp_ws_check_upgrade(&a, KEY, "plain.kubevirt.io", &err);
		cr_assert_eq(rc, cases[i].check_rc, "%s: check %d %s", cases[i].what, rc, err.msg);
		if (cases[i].msg)
			cr_assert(strstr(err.msg, cases[i].msg), "%s: %s", cases[i].what, err.msg);
	}
}

Test(ws, answer_fields)
{
	const char *h = "HTTP/1.1 400 Bad Request\r\nContent-Length: 42\r\nTransfer-Encoding: "
			"chunked\r\nSec-WebSocket-Protocol: \x01x\r\n\r\nbody";
	struct shp_ws_answer a;

	cr_assert_eq(shp_ws_parse_answer(h, strlen(h), &a), 0);
	cr_assert_eq(a.status, 400);
	cr_assert_eq(a.content_length, 42);
	cr_assert(a.chunked);
	cr_assert_str_eq(a.protocol, "x", "control bytes are dropped");
}

/* ---- the client against a scripted server (plain HTTP on loopback) ------------------------ */

struct script {
	const char
		*answer; /* the whole answer, then close, instead of a 101 (refusals, bad heads) */
	const char *accept; /* a 101 with this accept key instead of the right one */
	uint8_t *frames;    /* sent after the 101 */
	size_t frames_len;
	char head[8192]; /* the client's request head */
	uint8_t got[8192];
	size_t got_len; /* what the client sent after its head */
	int lfd, port;
};

static void listen_on(struct script *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(s->lfd, 0);
	cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->lfd, 1), 0);
	cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
}

static void write_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void *serve(void *arg)
{
	struct script *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	size_t n = 0;
	char *end = NULL, *key, answer[512], accept_key[SHP_WS_ACCEPT_LEN + 1] = "";

	while (fd >= 0 && !end && n < sizeof(s->head) - 1) {
		ssize_t r = read(fd, s->head + n, sizeof(s->head) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		s->head[n] = '\0';
		end = strstr(s->head, "\r\n\r\n");
	}
	if (end) {
		key = strstr(s->head, "Sec-WebSocket-Key: ");
		if (key && sscanf(key + 19, "%28[A-Za-z0-9+/=]", answer) == 1)
			(void)shp_ws_accept_key(answer, accept_key);
		if (s->answer) {
			write_all(fd, s->answer, strlen(s->answer));
		} else {
			(void)snprintf(answer, sizeof(answer),
				       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
				       "Sec-WebSocket-Protocol: plain.kubevirt.io\r\n\r\n",
				       s->accept ? s->accept : accept_key);
			write_all(fd, answer, strlen(answer));
			write_all(fd, s->frames, s->frames_len);
		}
		for (; !s->answer;) { /* what the client sends, until it closes */
			struct pollfd p = {.fd = fd, .events = POLLIN};
			ssize_t r;
			if (poll(&p, 1, 3000) <= 0 || s->got_len == sizeof(s->got))
				break;
			r = read(fd, s->got + s->got_len, sizeof(s->got) - s->got_len);
			if (r <= 0)
				break;
			s->got_len += (size_t)r;
		}
	}
	if (fd >= 0)
		close(fd);
	close(s->lfd);
	return NULL;
}

/* Append a server frame (unmasked unless mask) to s->frames. */
static void add_frame(struct script *s, unsigned opcode, bool fin, const void *payload, size_t len,
		      uint64_t claimed_len, const uint8_t *mask)
{
	uint8_t h[SHP_WS_HEADER_MAX];
	size_t hl = shp_ws_encode_header(h, opcode, fin, claimed_len ? claimed_len : len, mask);

	s->frames = realloc(s->frames, s->frames_len + hl + len);
	cr_assert_not_null(s->frames);
	memcpy(s->frames + s->frames_len, h, hl);
	memcpy(s->frames + s->frames_len + hl, payload, len);
	if (mask)
		shp_ws_mask(s->frames + s->frames_len + hl, len, mask, 0);
	s->frames_len += hl + len;
}

static struct shd_k8s *client_for(struct script *s, pthread_t *t)
{
	char url[64];
	struct shd_kubeconfig kc = {.insecure = true, .token = "sekrit-token-4711", .server = url};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_k8s *k;

	listen_on(s);
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	k = shd_k8s_new(&kc, "scripted", 1, &err);
	cr_assert_not_null(k, "%s", err.msg);
	cr_assert_eq(pthread_create(t, NULL, serve, s), 0);
	return k;
}

static int open_ws(struct shd_k8s *k, struct shd_k8s_ws **ws, struct shp_error *err)
{
	return shd_k8s_ws_open(k, "/vnc?preserveSession=false", "plain.kubevirt.io",
			       shp_now_monotonic_ns() + 3000000000u, ws, err);
}

/* The frames the client sent: opcode and unmasked payload of the i-th. */
static bool client_frame(struct script *s, int index, unsigned *op, uint8_t *payload, size_t *len)
{
	size_t off = 0;

	for (int i = 0;; i++) {
		struct shp_ws_frame f;
		int hl = shp_ws_decode_header(s->got + off, s->got_len - off, true, 4096, &f);
		if (hl <= 0 || off + (size_t)hl + f.len > s->got_len)
			return false;
		if (i == index) {
			*op = f.opcode;
			*len = (size_t)f.len;
			memcpy(payload, s->got + off + hl, *len);
			shp_ws_mask(payload, *len, f.mask, 0);
			return true;
		}
		off += (size_t)hl + (size_t)f.len;
	}
}

Test(ws_client, frames_pings_fragments_and_close)
{
	struct script s = {0};
	pthread_t t;
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = NULL;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	static uint8_t big[70000], mid[300], want[5 + 300 + 70000], got[sizeof(want)];
	uint8_t payload[4096];
	size_t have = 0, len;
	unsigned op;
	long n;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i % 251);
	memset(mid, 'm', sizeof(mid));
	memcpy(want, "hello", 5);
	memcpy(want + 5, mid, sizeof(mid));
	memcpy(want + 5 + sizeof(mid), big, sizeof(big));
	add_frame(&s, SHP_WS_TEXT, true, "skip me", 7, 0, NULL);
	add_frame(&s, SHP_WS_PING, true, "abc", 3, 0, NULL);
	add_frame(&s, SHP_WS_BINARY, false, "he", 2, 0, NULL);
	add_frame(&s, SHP_WS_PING, true, "p2", 2, 0, NULL); /* control inside a message */
	add_frame(&s, SHP_WS_CONT, true, "llo", 3, 0, NULL);
	add_frame(&s, SHP_WS_TEXT, false, "te", 2, 0, NULL); /* a fragmented text: skipped */
	add_frame(&s, SHP_WS_CONT, true, "xt", 2, 0, NULL);
	add_frame(&s, SHP_WS_BINARY, true, mid, sizeof(mid), 0, NULL); /* 16-bit length */
	add_frame(&s, SHP_WS_BINARY, true, big, sizeof(big), 0, NULL); /* 64-bit length */
	add_frame(&s, SHP_WS_CLOSE, true, "\x03\xe8", 2, 0, NULL);
	k = client_for(&s, &t);
	cr_assert_eq(open_ws(k, &ws, &err), 0, "%s", err.msg);
	while ((n = shd_k8s_ws_read(ws, got + have, sizeof(got) - have, 2000, &err)) > 0)
		have += (size_t)n;
	cr_assert_eq(n, 0, "the stream ends with the CLOSE: %ld %s", n, err.msg);
	cr_assert_eq(have, sizeof(want));
	cr_assert_eq(memcmp(got, want, sizeof(want)), 0);
	cr_assert_eq(shd_k8s_ws_read(ws, got, 1, 10, &err), 0, "and stays at its end");
	cr_assert_lt(shd_k8s_ws_write(ws, "x", 1, &err), 0, "no writes after CLOSE");
	ws = shd_k8s_ws_close(ws);
	pthread_join(t, NULL);
	cr_assert(strstr(s.head, "GET /vnc?preserveSession=false HTTP/1.1\r\n"), "%s", s.head);
	cr_assert(strstr(s.head, "\r\nUpgrade: websocket\r\n"));
	cr_assert(strstr(s.head, "\r\nSec-WebSocket-Version: 13\r\n"));
	cr_assert(strstr(s.head, "\r\nSec-WebSocket-Protocol: plain.kubevirt.io\r\n"));
	cr_assert(strstr(s.head, "\r\nAuthorization: Bearer sekrit-token-4711\r\n"));
	cr_assert(client_frame(&s, 0, &op, payload, &len) && op == SHP_WS_PONG && len == 3 &&
			  memcmp(payload, "abc", 3) == 0,
		  "PONG abc");
	cr_assert(client_frame(&s, 1, &op, payload, &len) && op == SHP_WS_PONG && len == 2 &&
			  memcmp(payload, "p2", 2) == 0,
		  "PONG p2");
	cr_assert(client_frame(&s, 2, &op, payload, &len) && op == SHP_WS_CLOSE && len == 2 &&
			  payload[0] == 0x03 && payload[1] == 0xe8,
		  "CLOSE 1000 answered");
	cr_assert_not(client_frame(&s, 3, &op, payload, &len), "nothing after the CLOSE");
	free(s.frames);
}

Test(ws_client, writes_are_masked_binary_frames)
{
	struct script s = {0};
	pthread_t t;
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = NULL;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	uint8_t payload[4096];
	size_t len;
	unsigned op;

	k = client_for(&s, &t);
	cr_assert_eq(open_ws(k, &ws, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_k8s_ws_write(ws, "RFB 003.008\n", 12, &err), 0, "%s", err.msg);
	ws = shd_k8s_ws_close(ws); /* the server never answers the CLOSE: close waits 1 s */
	pthread_join(t, NULL);
	cr_assert(client_frame(&s, 0, &op, payload, &len) && op == SHP_WS_BINARY && len == 12 &&
		  memcmp(payload, "RFB 003.008\n", 12) == 0);
	cr_assert(client_frame(&s, 1, &op, payload, &len) && op == SHP_WS_CLOSE && len == 2 &&
		  payload[0] == 0x03 && payload[1] == 0xe8);
}

/* A bad frame from the server: read fails with SHP_E_PROTO and the client sends CLOSE code. */
static void bad_frame(void (*script)(struct script *), unsigned code)
{
	struct script s = {0};
	pthread_t t;
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = NULL;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	uint8_t buf[64];
	size_t len;
	unsigned op;

	script(&s);
	k = client_for(&s, &t);
	cr_assert_eq(open_ws(k, &ws, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_k8s_ws_read(ws, buf, sizeof(buf), 2000, &err), -SHP_E_PROTO, "%s",
		     err.msg);
	cr_assert_eq(shd_k8s_ws_read(ws, buf, sizeof(buf), 10, &err), -SHP_E_PROTO,
		     "reads keep failing");
	ws = shd_k8s_ws_close(ws);
	pthread_join(t, NULL);
	cr_assert(client_frame(&s, 0, &op, buf, &len) && op == SHP_WS_CLOSE && len == 2);
	cr_assert_eq((unsigned)buf[0] << 8 | buf[1], code);
	free(s.frames);
}

static void frame_over_cap(struct script *s)
{
	add_frame(s, SHP_WS_BINARY, true, "", 0, SHD_K8S_WS_FRAME_MAX + 1, NULL);
}

static void masked_frame(struct script *s)
{
	add_frame(s, SHP_WS_BINARY, true, "abc", 3, 0, (const uint8_t[4]){1, 2, 3, 4});
}

static void stray_continuation(struct script *s)
{
	add_frame(s, SHP_WS_CONT, true, "abc", 3, 0, NULL);
}

static void binary_inside_a_message(struct script *s)
{
	add_frame(s, SHP_WS_BINARY, false, "a", 1, 0, NULL);
	add_frame(s, SHP_WS_BINARY, true, "b", 1, 0, NULL);
}

Test(ws_client, frame_over_the_cap_is_1009)
{
	bad_frame(frame_over_cap, SHP_WS_CLOSE_TOO_BIG);
}

Test(ws_client, masked_server_frame_is_1002)
{
	bad_frame(masked_frame, SHP_WS_CLOSE_PROTOCOL);
}

Test(ws_client, stray_continuation_is_1002)
{
	bad_frame(stray_continuation, SHP_WS_CLOSE_PROTOCOL);
}

Test(ws_client, new_message_inside_a_message_is_1002)
{
	bad_frame(binary_inside_a_message, SHP_WS_CLOSE_PROTOCOL);
}

/* The upgrade refused or botched: open's result, and the token never in the message. */
static void refused(const char *answer, const char *accept, int want, const char *msg)
{
	struct script s = {.answer = answer, .accept = accept};
	pthread_t t;
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = NULL;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	int rc;

	k = client_for(&s, &t);
	rc = open_ws(k, &ws, &err);
	cr_assert_eq(rc, want, "%d %s", rc, err.msg);
	cr_assert_null(ws);
	cr_assert(strstr(err.msg, msg), "'%s' in '%s'", msg, err.msg);
	cr_assert_null(strstr(err.msg, "sekrit"), "%s", err.msg);
	pthread_join(t, NULL);
}

#define STATUS(code, reason, message)                                                              \
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"" message \
	"\",\"reason\":\"" reason "\",\"code\":" #code "}"

Test(ws_client, refusals)
{
	static const char nf[] =
		STATUS(404, "NotFound", "virtualmachineinstance.kubevirt.io \\\"x\\\" not found");
	static const char nr[] = STATUS(400, "BadRequest", "VMI is not running");
	char a[1024];

	(void)snprintf(a, sizeof(a), "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n%s",
		       strlen(nf), nf);
	refused(a, NULL, -SHP_E_NOTFOUND, "not found");
	(void)snprintf(a, sizeof(a),
		       "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n"
		       "0\r\n\r\n",
		       strlen(nr), nr);
	refused(a, NULL, -SHP_E_INVAL, "VMI is not running");
	refused("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", NULL, -SHP_E_PERM, "");
	refused("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n"
		"Active VNC connection. Request denied.",
		NULL, -SHP_E_K8S, "");
	refused(NULL, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", -SHP_E_PROTO, "Sec-WebSocket-Accept");
	refused("SSH-2.0-OpenSSH_9.2\r\n\r\n", NULL, -SHP_E_PROTO, "malformed");
	refused("", NULL, -SHP_E_PROTO, "closed the connection");
}

Test(ws_client, head_over_16_kib)
{
	static char a[20 * 1024 + 64];
	size_t n = (size_t)snprintf(a, sizeof(a), "HTTP/1.1 101 Switching Protocols\r\n");

	while (n + 80 < sizeof(a) - 8)
		n += (size_t)snprintf(a + n, sizeof(a) - n, "X-Pad: %070d\r\n", 0);
	(void)snprintf(a + n, sizeof(a) - n, "\r\n");
	refused(a, NULL, -SHP_E_LIMIT, "over");
}
