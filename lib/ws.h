/*
 * WebSocket (RFC 6455) pieces without I/O: the frame header codec, the Sec-WebSocket-Accept
 * computation and the parsing and checking of an upgrade answer's head. Used by the daemon's
 * Kubernetes console client (k8s-ws.c) and its upgraded API connections (upgrade.c), by the
 * CLI's client (wsc.c), and by the API simulator's server side.
 *
 * Pure functions: no I/O, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shp_error;

#define SHP_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define SHP_WS_HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask) */
#define SHP_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define SHP_WS_KEY_LEN 24    /* base64 of 16 bytes */

enum shp_ws_opcode {
	SHP_WS_CONT = 0x0,
	SHP_WS_TEXT = 0x1,
	SHP_WS_BINARY = 0x2,
	SHP_WS_CLOSE = 0x8,
	SHP_WS_PING = 0x9,
	SHP_WS_PONG = 0xa,
};

/* Close status codes we send. */
#define SHP_WS_CLOSE_NORMAL 1000
#define SHP_WS_CLOSE_PROTOCOL 1002
#define SHP_WS_CLOSE_TOO_BIG 1009

struct shp_ws_frame {
	bool fin;
	unsigned opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t len;      /* payload bytes */
	size_t header_len; /* bytes of the header, mask included */
};

/*
 * Encode a frame header into out (SHP_WS_HEADER_MAX bytes): fin, opcode, the shortest length
 * form, and the mask when mask is not NULL. Returns the header's length.
 */
size_t shp_ws_encode_header(uint8_t *out, unsigned opcode, bool fin, uint64_t len,
			    const uint8_t *mask);

/*
 * Decode the frame header at p (n bytes available). want_masked: frames from a client must be
 * masked, frames from a server must not. Returns the header length (> 0), 0 when more bytes are
 * needed, -SHP_E_PROTO (reserved bits, unknown opcode, a fragmented or long control frame, the
 * wrong masking, a 64-bit length with the top bit set) or -SHP_E_LIMIT (payload over max).
 */
int shp_ws_decode_header(const uint8_t *p, size_t n, bool want_masked, uint64_t max,
			 struct shp_ws_frame *ret);

/* XOR len bytes of data with mask, starting at payload offset off. */
void shp_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t off);

/* out (SHP_WS_ACCEPT_LEN + 1 bytes) = base64(SHA-1(key + GUID)). 0 or -SHP_E_INTERNAL. */
int shp_ws_accept_key(const char *key, char *out);

/* What matters in the head of an upgrade answer. */
struct shp_ws_answer {
	long status;
	bool upgrade_websocket;   /* Upgrade: websocket */
	bool connection_upgrade;  /* Connection: ... upgrade ... */
	char accept[64];          /* Sec-WebSocket-Accept, "" if absent */
	char protocol[64];        /* Sec-WebSocket-Protocol, "" if absent */
	long long content_length; /* -1 if absent */
	bool chunked;
};

/*
 * Parse an answer's head (status line and header lines, through the empty line; len bytes, not
 * NUL-terminated). 0, or -SHP_E_PROTO for a head that is not HTTP/1.x or a malformed line.
 */
int shp_ws_parse_answer(const char *head, size_t len, struct shp_ws_answer *ret);

/*
 * Check a 101 answer against the key we sent and the subprotocol we asked for: 0, or
 * -SHP_E_PROTO with err naming what is wrong.
 */
int shp_ws_check_upgrade(const struct shp_ws_answer *a, const char *key, const char *protocol,
			 struct shp_error *err);
