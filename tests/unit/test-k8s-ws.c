/*
 * The WebSocket codec of the console (shepherdd/ws.c): frame headers encoded and decoded in
 * every length form, hostile headers (truncated, reserved bits, unknown opcodes, masked server
 * frames, long or fragmented control frames, lengths over the cap or with the top bit set),
 * masking, the accept key of RFC 6455, and upgrade answers (wrong key, wrong subprotocol,
 * missing headers, malformed heads).
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
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
			uint8_t h[SHD_WS_HEADER_MAX];
			struct shd_ws_frame f;
			size_t n = shd_ws_encode_header(h, SHD_WS_BINARY, true, cases[i].len,
							masked ? mask : NULL);
			cr_assert_eq(n, cases[i].header + (masked ? 4 : 0), "case %zu", i);
			int rc = shd_ws_decode_header(h, n, masked, UINT64_MAX >> 1, &f);
			cr_assert_eq(rc, (int)n, "case %zu", i);
			cr_assert_eq(f.len, cases[i].len);
			cr_assert(f.fin);
			cr_assert_eq(f.opcode, SHD_WS_BINARY);
			cr_assert_eq(f.masked, (bool)masked);
			if (masked)
				cr_assert_eq(memcmp(f.mask, mask, 4), 0);
			/* every prefix of the header asks for more bytes */
			for (size_t k = 0; k < n; k++)
				cr_assert_eq(
					shd_ws_decode_header(h, k, masked, UINT64_MAX >> 1, &f), 0,
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
		struct shd_ws_frame f = {0};
		int rc = shd_ws_decode_header(cases[i].bytes, cases[i].n, cases[i].want_masked, MAX,
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
	shd_ws_mask(data, sizeof(data), mask, 0);
	cr_assert_eq(data[1], (uint8_t)(13 ^ 0x5c));
	/* masking in two pieces gives the same bytes as in one */
	shd_ws_mask(split, 10, mask, 0);
	shd_ws_mask(split + 10, sizeof(split) - 10, mask, 10);
	cr_assert_eq(memcmp(data, split, sizeof(data)), 0);
	shd_ws_mask(data, sizeof(data), mask, 0);
	cr_assert_eq(memcmp(data, orig, sizeof(data)), 0);
}

Test(ws, accept_key_of_rfc6455)
{
	char out[SHD_WS_ACCEPT_LEN + 1];

	cr_assert_eq(shd_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
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
		struct shd_ws_answer a;
		struct shp_error err = SHP_ERROR_INIT;
		int rc = shd_ws_parse_answer(cases[i].head, strlen(cases[i].head), &a);

		cr_assert_eq(rc, cases[i].parse_rc, "%s: parse %d", cases[i].what, rc);
		if (rc < 0)
			continue;
		cr_assert_eq(a.status, cases[i].status, "%s", cases[i].what);
		rc = shd_ws_check_upgrade(&a, KEY, "plain.kubevirt.io", &err);
		cr_assert_eq(rc, cases[i].check_rc, "%s: check %d %s", cases[i].what, rc, err.msg);
		if (cases[i].msg)
			cr_assert(strstr(err.msg, cases[i].msg), "%s: %s", cases[i].what, err.msg);
	}
}

Test(ws, answer_fields)
{
	const char *h = "HTTP/1.1 400 Bad Request\r\nContent-Length: 42\r\nTransfer-Encoding: "
			"chunked\r\nSec-WebSocket-Protocol: \x01x\r\n\r\nbody";
	struct shd_ws_answer a;

	cr_assert_eq(shd_ws_parse_answer(h, strlen(h), &a), 0);
	cr_assert_eq(a.status, 400);
	cr_assert_eq(a.content_length, 42);
	cr_assert(a.chunked);
	cr_assert_str_eq(a.protocol, "x", "control bytes are dropped");
}
