/*
 * The client side of a WebSocket to shepherdd: the upgrade over shp_httpc (its connection
 * settings, token and TLS), the answer checked (status, Sec-WebSocket-Accept, subprotocol),
 * then frames on the switched connection: the daemon's payload handed out as it arrives (no
 * frame is ever held whole), PING answered, CLOSE echoed, our frames masked.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "error.h"
#include "httpc.h"
#include "util.h"
#include "ws.h"
#include "wsc.h"

#define HEAD_MAX 8192u       /* the 101's header fields we keep for the check */
#define IN_SIZE (16u * 1024) /* the read buffer: a control frame fits many times over */
#define WRITE_CHUNK 16384u
#define IO_TIMEOUT_MS 30000
#define CLOSE_WAIT_MS 1000
#define EXTRA_MAX 8 /* extra header lines of an upgrade */

struct shp_wsc {
	struct shp_httpc *conn; /* the switched connection */
	uint8_t in[IN_SIZE];
	size_t in_pos, in_len;
	bool in_frame, in_message, frame_fin, msg_end;
	unsigned msg_opcode;
	uint64_t frame_left;
	bool ended; /* CLOSE received, the end of the stream, or a protocol error */
	bool close_sent;
	unsigned close_code;
	uint64_t last_rx_ns; /* when bytes last came */
};

/* ---- the handshake ------------------------------------------------------------------------ */

/* The 101's fields as header lines, to be read by shp_ws_parse_answer. */
static void keep_field(void *arg, const char *name, size_t nlen, const char *v, size_t vlen)
{
	struct shp_buf *head = arg;

	/* past the cap the head is cut short: the check then fails on what is missing */
	if (shp_buf_addf(head, "%.*s: %.*s\r\n", (int)nlen, name, (int)vlen, v) < 0)
		return;
}

static int make_key(char *key, struct shp_error *err)
{
	unsigned char raw[16];

	if (shp_random_bytes(raw, sizeof(raw), err) < 0)
		return -SHP_E_INTERNAL;
	if (EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)) != SHP_WS_KEY_LEN)
		return shp_error_set(err, SHP_E_INTERNAL, "encoding the WebSocket key failed");
	return 0;
}

/* The answer was not a 101: the daemon's refusal, or a server that did not switch. */
static int not_switched(const struct shp_httpc_response *resp, struct shp_error *err)
{
	if (resp->status >= 200 && resp->status <= 299)
		return shp_error_set(err, SHP_E_PROTO,
				     "shepherdd answered %ld instead of switching to a WebSocket",
				     resp->status);
	return shp_httpc_response_error(resp, NULL, err);
}

int shp_wsc_open(struct shp_httpc *c, const char *path, const char *protocol,
		 struct shp_httpc_response *resp, struct shp_wsc **ret, struct shp_error *err)
{
	return shp_wsc_open_with(c, path, protocol, NULL, resp, ret, err);
}

int shp_wsc_open_with(struct shp_httpc *c, const char *path, const char *protocol,
		      const char *const *extra, struct shp_httpc_response *resp,
		      struct shp_wsc **ret, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf head = SHP_BUF_INIT(HEAD_MAX);
	char key[SHP_WS_KEY_LEN + 1], kh[64], ph[160];
	const char *headers[5 + EXTRA_MAX + 1] = {"Connection: Upgrade", "Upgrade: websocket",
						  "Sec-WebSocket-Version: 13", kh, ph};
	struct shp_ws_answer a;
	struct shp_httpc *k = NULL;
	struct shp_wsc *w;
	size_t n = 0;
	int r;

	if (strlen(protocol) > 100 || strpbrk(protocol, "\r\n,"))
		return shp_error_set(err, SHP_E_INVAL, "invalid WebSocket subprotocol '%s'",
				     protocol);
	for (; extra && extra[n]; n++) {
		if (n == EXTRA_MAX)
			return shp_error_set(err, SHP_E_INVAL, "too many extra header lines");
		headers[5 + n] = extra[n]; /* checked by shp_httpc_upgrade */
	}
	if (make_key(key, err) < 0)
		return -err->code;
	(void)snprintf(kh, sizeof(kh), "Sec-WebSocket-Key: %s", key);
	(void)snprintf(ph, sizeof(ph), "Sec-WebSocket-Protocol: %s", protocol);
	if (shp_buf_add(&head, "HTTP/1.1 101 Switching Protocols\r\n") < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	r = shp_httpc_upgrade(c, path, headers, keep_field, &head, resp, &k, err);
	if (r < 0)
		return r;
	if (!k)
		return not_switched(resp, err);
	if (shp_ws_parse_answer(head.buf, head.len, &a) < 0 ||
	    shp_ws_check_upgrade(&a, key, protocol, err) < 0) {
		shp_httpc_free(k);
		return shp_error_set(err, SHP_E_PROTO,
				     "shepherdd's WebSocket answer is not valid%s%s",
				     err && err->msg[0] ? ": " : "", err ? err->msg : "");
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		shp_httpc_free(k);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	w->conn = k;
	w->last_rx_ns = shp_now_monotonic_ns();
	*ret = w;
	return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

static int send_frame(struct shp_wsc *w, unsigned opcode, const void *buf, size_t len,
		      struct shp_error *err)
{
	uint8_t head[SHP_WS_HEADER_MAX], mask[4], chunk[WRITE_CHUNK];
	size_t hl, off = 0;
	int r;

	if (shp_random_bytes(mask, sizeof(mask), err) < 0)
		return -SHP_E_IO;
	hl = shp_ws_encode_header(head, opcode, true, len, mask);
	r = shp_httpc_raw_write(w->conn, head, hl, IO_TIMEOUT_MS, err);
	while (r == 0 && off < len) {
		size_t n = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		memcpy(chunk, (const uint8_t *)buf + off, n);
		shp_ws_mask(chunk, n, mask, off);
		r = shp_httpc_raw_write(w->conn, chunk, n, IO_TIMEOUT_MS, err);
		off += n;
	}
	if (r < 0) {
		w->ended = true;
		return shp_error_set(err, SHP_E_IO, "writing to the WebSocket failed%s%s",
				     err ? ": " : "", err ? err->msg : "");
	}
	return 0;
}

int shp_wsc_write(struct shp_wsc *w, unsigned opcode, const void *buf, size_t len,
		  struct shp_error *err)
{
	if (w->ended || w->close_sent)
		return shp_error_set(err, SHP_E_IO, "the WebSocket is closed");
	if (opcode != SHP_WS_TEXT && opcode != SHP_WS_BINARY)
		return shp_error_set(err, SHP_E_INVAL, "bad WebSocket opcode %u", opcode);
	return send_frame(w, opcode, buf, len, err);
}

static void send_close(struct shp_wsc *w, unsigned code)
{
	uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	if (w->close_sent)
		return;
	w->close_sent = true;
	(void)send_frame(w, SHP_WS_CLOSE, p, sizeof(p), NULL);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* More bytes into the buffer: 1, 0 at the end, or -SHP_E_TIMEOUT / -SHP_E_PROTO. */
static int fill(struct shp_wsc *w, int timeout_ms, struct shp_error *err)
{
	long k;

	if (w->in_pos == w->in_len)
		w->in_pos = w->in_len = 0;
	if (w->in_len == sizeof(w->in)) {
		memmove(w->in, w->in + w->in_pos, w->in_len - w->in_pos);
		w->in_len -= w->in_pos;
		w->in_pos = 0;
	}
	k = shp_httpc_raw_read(w->conn, w->in + w->in_len, sizeof(w->in) - w->in_len, timeout_ms,
			       err);
	if (k < 0)
		return (int)k;
	w->in_len += (size_t)k;
	if (k > 0)
		w->last_rx_ns = shp_now_monotonic_ns();
	return k > 0;
}

static long fail(struct shp_wsc *w, int code, struct shp_error *err)
{
	w->ended = true;
	send_close(w, code == SHP_E_LIMIT ? SHP_WS_CLOSE_TOO_BIG : SHP_WS_CLOSE_PROTOCOL);
	return shp_error_set(err, (enum shp_errc)code,
			     code == SHP_E_LIMIT ? "a WebSocket frame from shepherdd over %u bytes"
						 : "shepherdd broke the WebSocket protocol "
						   "(frames of %u bytes at most)",
			     SHP_WSC_FRAME_MAX);
}

/* A control frame, whole in the buffer: 1 go on, 0 CLOSE (answered). */
static int control_frame(struct shp_wsc *w, const struct shp_ws_frame *f, const uint8_t *p)
{
	if (f->opcode == SHP_WS_PING) {
		if (!w->close_sent)
			(void)send_frame(w, SHP_WS_PONG, p, (size_t)f->len, NULL);
		return 1;
	}
	if (f->opcode == SHP_WS_PONG)
		return 1;
	w->close_code = f->len >= 2 ? (unsigned)(p[0] << 8 | p[1]) : 1005;
	w->ended = true;
	send_close(w, f->len >= 2 ? w->close_code : SHP_WS_CLOSE_NORMAL);
	return 0;
}

/* The next frame header: 1 a data frame begins or a control frame was handled, 0 more bytes
 * are needed, 2 CLOSE, or -SHP_E_PROTO / -SHP_E_LIMIT. */
static int next_frame(struct shp_wsc *w)
{
	struct shp_ws_frame f;
	const uint8_t *p = w->in + w->in_pos;
	size_t avail = w->in_len - w->in_pos;
	int hl = shp_ws_decode_header(p, avail, false, SHP_WSC_FRAME_MAX, &f);

	if (hl <= 0)
		return hl;
	if (f.opcode >= SHP_WS_CLOSE) {
		if (avail < (size_t)hl + f.len)
			return 0;
		w->in_pos += (size_t)hl + (size_t)f.len;
		return control_frame(w, &f, p + hl) ? 1 : 2;
	}
	if ((f.opcode == SHP_WS_CONT) != w->in_message)
		return -SHP_E_PROTO;
	if (f.opcode != SHP_WS_CONT)
		w->msg_opcode = f.opcode;
	w->in_pos += (size_t)hl;
	w->in_frame = true;
	w->in_message = !f.fin;
	w->frame_fin = f.fin;
	w->frame_left = f.len;
	return 1;
}

static size_t deliver(struct shp_wsc *w, void *buf, size_t len)
{
	size_t n = w->in_len - w->in_pos;

	if (n > len)
		n = len;
	if (n > w->frame_left)
		n = (size_t)w->frame_left;
	memcpy(buf, w->in + w->in_pos, n);
	w->in_pos += n;
	w->frame_left -= n;
	if (w->frame_left == 0) {
		w->in_frame = false;
		w->msg_end = w->frame_fin;
	}
	return n;
}

long shp_wsc_read(struct shp_wsc *w, void *buf, size_t len, unsigned *ret_opcode, int timeout_ms,
		  struct shp_error *err)
{
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	int r;

	w->msg_end = false;
	for (;;) {
		uint64_t now;

		if (w->ended)
			return 0;
		if (w->in_frame && w->frame_left > 0 && w->in_pos < w->in_len) {
			*ret_opcode = w->msg_opcode;
			return (long)deliver(w, buf, len);
		}
		if (w->in_frame && w->frame_left == 0)
			w->in_frame = false; /* an empty frame carries nothing to hand out */
		if (!w->in_frame) {
			r = next_frame(w);
			if (r < 0)
				return fail(w, -r, err);
			if (r == 2)
				return 0;
			if (r == 1)
				continue;
		}
		now = shp_now_monotonic_ns();
		r = fill(w, now >= deadline ? 0 : (int)((deadline - now) / 1000000), err);
		if (r == 0) {
			w->ended = true; /* the daemon went away without a CLOSE */
			return 0;
		}
		if (r < 0)
			return r;
	}
}

/* ---- the rest ----------------------------------------------------------------------------- */

int shp_wsc_fd(const struct shp_wsc *w)
{
	return shp_httpc_fd(w->conn);
}

bool shp_wsc_has_buffered(const struct shp_wsc *w)
{
	struct shp_ws_frame f;
	size_t avail = w->in_len - w->in_pos;
	int hl;

	if (shp_httpc_has_buffered(w->conn) || w->ended)
		return true;
	if (avail == 0)
		return false;
	if (w->in_frame)
		return true; /* payload bytes, or the end of an empty frame */
	/* a frame's head cut short needs the socket: reading now would only wait */
	hl = shp_ws_decode_header(w->in + w->in_pos, avail, false, SHP_WSC_FRAME_MAX, &f);
	if (hl <= 0)
		return hl < 0; /* a broken head is reported by the next read */
	return f.opcode < SHP_WS_CLOSE || avail >= (size_t)hl + f.len;
}

bool shp_wsc_message_ended(const struct shp_wsc *w)
{
	return w->msg_end;
}

unsigned long shp_wsc_quiet_ms(const struct shp_wsc *w)
{
	return (unsigned long)((shp_now_monotonic_ns() - w->last_rx_ns) / 1000000);
}

unsigned shp_wsc_close_code(const struct shp_wsc *w)
{
	return w->close_code;
}

struct shp_wsc *shp_wsc_close(struct shp_wsc *w)
{
	uint64_t deadline;
	uint8_t sink[1024];

	if (!w)
		return NULL;
	if (!w->ended) {
		/* CLOSE, then read until the daemon's own CLOSE (or a moment passes) */
		send_close(w, SHP_WS_CLOSE_NORMAL);
		deadline = shp_now_monotonic_ns() + CLOSE_WAIT_MS * 1000000ull;
		while (!w->ended && shp_now_monotonic_ns() < deadline) {
			unsigned op;
			long n = shp_wsc_read(w, sink, sizeof(sink), &op, CLOSE_WAIT_MS, NULL);
			if (n < 0 && n != -SHP_E_TIMEOUT)
				break;
		}
	}
	shp_httpc_free(w->conn);
	free(w);
	return NULL;
}
