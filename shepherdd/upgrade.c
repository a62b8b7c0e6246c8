/*
 * WebSocket sessions on the API listeners: the upgrade handshake a handler accepts, the
 * registry of sessions (capped, closed on shutdown), and the framing on an upgraded socket:
 * masked client frames read as a byte stream with PING/CLOSE handled inside, unmasked frames
 * written under a lock, a PING when the client is quiet and a close when it stays silent.
 * See docs/internals/websocket.md.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>

#include "error.h"
#include "log.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

#define IN_MIN (16u * 1024)    /* the receive buffer (bigger if the client sent more early) */
#define CONTROL_FRAME_MAX 131u /* 2 + 4 (mask) + 125 */
#define CLOSE_LINGER_MS 1000   /* after our CLOSE, wait this long for the client's */
#define PING_MAX_NS (15ull * 1000000000ull)
#define PROTOCOL_MAX 64

enum conn_state {
	CONN_NEW,     /* accepted by a handler, the 101 not queued yet */
	CONN_QUEUED,  /* the 101 is queued; MHD calls us when it went out */
	CONN_RUNNING, /* the session thread runs */
	CONN_DONE,    /* the session ended (or never started) */
};

struct shd_ws_hub {
	int max_sessions;
	int idle_s;
	pthread_mutex_t mu; /* protects everything below and every conn's state, refs, next */
	pthread_cond_t cv;  /* signalled when a session ends */
	struct shd_ws_conn *conns;
	int count; /* sessions not CONN_DONE */
	bool stop;
};

struct shd_ws_conn {
	struct shd_ws_hub *hub;
	enum conn_state state;
	int refs; /* the hub's list (until done), the request (until its completion) */
	struct shd_ws_conn *next;
	int wake; /* eventfd, readable once the daemon stops */
	char accept[SHP_WS_ACCEPT_LEN + 1];
	char protocol[PROTOCOL_MAX];
	shd_ws_session_fn fn;
	void *cls;
	shd_ws_free_fn free_fn;
	/* set by the upgrade callback */
	int fd;
	struct MHD_UpgradeResponseHandle *urh;
	/* the reader's (one thread) */
	uint8_t *in;
	size_t in_cap, in_pos, in_len;
	bool in_frame;   /* inside a data frame's payload */
	bool in_message; /* a fragmented message goes on */
	bool frame_fin;
	unsigned msg_opcode; /* TEXT or BINARY of the current message */
	uint64_t frame_left; /* payload bytes of the current frame still to deliver */
	uint64_t frame_off;  /* delivered so far (the mask's phase) */
	uint8_t mask[4];
	bool ended; /* CLOSE received, the peer gone, or a protocol error */
	_Atomic uint64_t last_rx_ns;
	uint64_t last_ping_ns;
	/* the writers' */
	pthread_mutex_t wmu; /* serialises frames; protects close_sent and broken */
	bool close_sent;
	bool broken;
};

/* ---- the registry ----------------------------------------------------------------------- */

/* The session's argument and its destructor, taken out under hub->mu to be freed outside it. */
struct owned_cls {
	shd_ws_free_fn free_fn;
	void *cls;
};

static struct owned_cls take_cls_locked(struct shd_ws_conn *c)
{
	struct owned_cls o = {c->free_fn, c->cls};

	c->cls = NULL;
	return o;
}

static void free_cls(struct owned_cls o)
{
	if (o.free_fn && o.cls)
		o.free_fn(o.cls);
}

struct shd_ws_hub *shd_ws_hub_new(int max_sessions, int idle_s, struct shp_error *err)
{
	struct shd_ws_hub *h = calloc(1, sizeof(*h));

	if (!h) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	h->max_sessions = max_sessions;
	h->idle_s = idle_s > 0 ? idle_s : 60;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	return h;
}

int shd_ws_hub_count(struct shd_ws_hub *h)
{
	int n;

	pthread_mutex_lock(&h->mu);
	n = h->count;
	pthread_mutex_unlock(&h->mu);
	return n;
}

static void conn_free(struct shd_ws_conn *c)
{
	if (c->wake >= 0)
		(void)close(c->wake);
	pthread_mutex_destroy(&c->wmu);
	free(c->in);
	free(c);
}

/* Drop a reference (hub->mu held); the last one frees the connection. */
static void conn_unref_locked(struct shd_ws_conn *c)
{
	if (--c->refs == 0)
		conn_free(c);
}

static void wake_conn(struct shd_ws_conn *c)
{
	uint64_t one = 1;

	(void)!write(c->wake, &one, sizeof(one));
}

/* The session is over (or never started): out of the list and the count. hub->mu held. */
static void conn_done_locked(struct shd_ws_conn *c)
{
	struct shd_ws_hub *h = c->hub;

	if (c->state == CONN_DONE)
		return;
	c->state = CONN_DONE;
	for (struct shd_ws_conn **pp = &h->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	h->count--;
	pthread_cond_broadcast(&h->cv);
	conn_unref_locked(c);
}

void shd_ws_hub_close_all(struct shd_ws_hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	for (struct shd_ws_conn *c = h->conns; c; c = c->next)
		wake_conn(c);
	/* sessions whose 101 is still on its way end when MHD stops; wait for running ones */
	for (;;) {
		bool running = false;
		for (struct shd_ws_conn *c = h->conns; c; c = c->next)
			running = running || c->state == CONN_RUNNING;
		if (!running)
			break;
		pthread_cond_wait(&h->cv, &h->mu);
	}
	pthread_mutex_unlock(&h->mu);
}

struct shd_ws_hub *shd_ws_hub_free(struct shd_ws_hub *h)
{
	if (!h)
		return NULL;
	pthread_mutex_lock(&h->mu);
	while (h->conns) {
		struct owned_cls o = take_cls_locked(h->conns);

		conn_done_locked(h->conns);
		pthread_mutex_unlock(&h->mu);
		free_cls(o);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	return NULL;
}

/* ---- the handshake ------------------------------------------------------------------------ */

/* Does the comma-separated list v hold token (ignoring case and blanks)? */
static bool list_has(const char *v, const char *token, bool ignore_case)
{
	size_t tl = strlen(token);

	while (v && *v) {
		size_t n;
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		n = strcspn(v, ",");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n == tl && (ignore_case ? strncasecmp(v, token, n) : strncmp(v, token, n)) == 0)
			return true;
		v += strcspn(v, ",");
	}
	return false;
}

bool shd_ws_is_upgrade(const struct shd_req *req)
{
	const char *up =
		MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);

	return strcmp(req->method, "GET") == 0 && list_has(up, "websocket", true);
}

/* A Sec-WebSocket-Key is the base64 of 16 bytes. */
static bool key_is_valid(const char *key)
{
	unsigned char raw[20];

	if (!key || strlen(key) != SHP_WS_KEY_LEN || strcmp(key + 22, "==") != 0)
		return false;
	for (int i = 0; i < 22; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
			    key[i]))
			return false;
	return EVP_DecodeBlock(raw, (const unsigned char *)key, SHP_WS_KEY_LEN) == 18;
}

static int bad_upgrade(struct shp_error *err, const char *header, const char *why)
{
	shp_error_set(err, SHP_E_INVAL, "WebSocket upgrade refused: %s", why);
	shp_error_detail(err, "header", "%s", header);
	return -SHP_E_INVAL;
}

static int check_headers(struct shd_req *req, const char *protocol, char *accept,
			 struct shp_error *err)
{
	const char *conn = shd_req_header(req, MHD_HTTP_HEADER_CONNECTION);
	const char *version = shd_req_header(req, "Sec-WebSocket-Version");
	const char *key = shd_req_header(req, "Sec-WebSocket-Key");
	const char *offered = shd_req_header(req, "Sec-WebSocket-Protocol");

	if (!shd_ws_is_upgrade(req) || !list_has(conn, "upgrade", true))
		return bad_upgrade(err, "Upgrade",
				   "a GET with 'Upgrade: websocket' and 'Connection: Upgrade' "
				   "is needed");
	if (!version || strcmp(version, "13") != 0)
		return bad_upgrade(err, "Sec-WebSocket-Version", "only version 13 is spoken");
	if (!key_is_valid(key))
		return bad_upgrade(err, "Sec-WebSocket-Key", "the key is not 16 bytes in base64");
	if (!list_has(offered, protocol, false)) {
		bad_upgrade(err, "Sec-WebSocket-Protocol", "the subprotocol is not offered");
		shp_error_detail(err, "protocol", "%s", protocol);
		return -SHP_E_INVAL;
	}
	if (shp_ws_accept_key(key, accept) < 0)
		return shp_error_set(err, SHP_E_INTERNAL, "computing Sec-WebSocket-Accept failed");
	return 0;
}

/* Room for one more session, or the refusal. hub->mu held. */
static int check_cap_locked(struct shd_ws_hub *h, struct shd_resp *resp, struct shp_error *err)
{
	if (h->stop)
		return shp_error_set(err, SHP_E_UNAVAIL, "the daemon is shutting down");
	if (h->max_sessions == 0) {
		shp_error_set(err, SHP_E_LIMIT,
			      "WebSocket sessions are disabled here (server.websocket_sessions "
			      "is 0)");
		shp_error_api_code(err, SHD_WS_API_DISABLED);
		err->http_status = 429;
		return -SHP_E_LIMIT;
	}
	if (h->count < h->max_sessions)
		return 0;
	shp_error_set(err, SHP_E_LIMIT, "all %d WebSocket sessions are taken; retry later",
		      h->max_sessions);
	shp_error_api_code(err, SHD_WS_API_EXHAUSTED);
	err->http_status = 429;
	resp->retry_after = 5;
	return -SHP_E_LIMIT;
}

static struct shd_ws_conn *conn_new(struct shd_ws_hub *h, const char *protocol, const char *accept)
{
	struct shd_ws_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake < 0) {
		free(c);
		return NULL;
	}
	c->hub = h;
	c->fd = -1;
	c->refs = 1;
	(void)snprintf(c->protocol, sizeof(c->protocol), "%s", protocol);
	memcpy(c->accept, accept, sizeof(c->accept));
	pthread_mutex_init(&c->wmu, NULL);
	return c;
}

int shd_ws_accept(struct shd_req *req, struct shd_resp *resp, const char *protocol,
		  shd_ws_session_fn fn, void *cls, shd_ws_free_fn free_fn, struct shp_error *err)
{
	struct shd_ws_hub *h = req->d->ws;
	char accept[SHP_WS_ACCEPT_LEN + 1];
	struct shd_ws_conn *c;
	int r = check_headers(req, protocol, accept, err);

	if (r == 0 && strlen(protocol) >= PROTOCOL_MAX)
		r = shp_error_set(err, SHP_E_INTERNAL, "subprotocol name too long");
	if (r == 0 && !h)
		r = shp_error_set(err, SHP_E_UNAVAIL, "WebSocket sessions are not available");
	if (r == 0) {
		pthread_mutex_lock(&h->mu);
		r = check_cap_locked(h, resp, err);
		c = r == 0 ? conn_new(h, protocol, accept) : NULL;
		if (r == 0 && !c)
			r = shp_error_set(err, SHP_E_NOMEM, "out of memory");
		if (c) {
			c->fn = fn;
			c->cls = cls;
			c->free_fn = free_fn;
			c->next = h->conns;
			h->conns = c;
			h->count++;
			resp->upgrade = c;
			resp->status = 101;
		}
		pthread_mutex_unlock(&h->mu);
	}
	if (r < 0 && free_fn && cls)
		free_fn(cls);
	return r;
}

/* ---- waiting ------------------------------------------------------------------------------ */

static bool stopping(const struct shd_ws_conn *c)
{
	struct pollfd p = {.fd = c->wake, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Wait for events on the socket, or the wake-up: 1 ready, 0 timed out, -1 stopping/failed. */
static int wait_sock(struct shd_ws_conn *c, short events, int ms)
{
	struct pollfd p[2] = {{.fd = c->fd, .events = events}, {.fd = c->wake, .events = POLLIN}};
	int n;

	do
		n = poll(p, 2, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (p[1].revents & POLLIN))
		return -1;
	return n > 0 ? 1 : 0;
}

/* Milliseconds from now to deadline (ns), at least 0. */
static int ms_until(uint64_t deadline)
{
	uint64_t now = shp_now_monotonic_ns();

	if (now >= deadline)
		return 0;
	return (deadline - now) / 1000000 > 3600000 ? 3600000 : (int)((deadline - now) / 1000000);
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Send every byte of the vector before the idle bound passes. wmu held. */
static int send_all_locked(struct shd_ws_conn *c, struct iovec *iov, int n)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)c->hub->idle_s * 1000000000ull;
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};

	if (c->broken)
		return -1;
	while (m.msg_iovlen > 0) {
		ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a client that stops reading is given the idle bound, no more */
			if (wait_sock(c, POLLOUT, ms_until(deadline)) <= 0)
				goto broken;
			continue;
		}
		if (k < 0)
			goto broken;
		while (m.msg_iovlen > 0 && (size_t)k >= m.msg_iov->iov_len) {
			k -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen > 0) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + k;
			m.msg_iov->iov_len -= (size_t)k;
		}
	}
	return 0;
broken:
	c->broken = true;
	return -1;
}

static int send_frame_locked(struct shd_ws_conn *c, unsigned opcode, const void *buf, size_t len)
{
	uint8_t head[SHP_WS_HEADER_MAX];
	struct iovec iov[2] = {{head, 0}, {(void *)buf, len}};

	iov[0].iov_len = shp_ws_encode_header(head, opcode, true, len, NULL);
	return send_all_locked(c, iov, len > 0 ? 2 : 1);
}

int shd_ws_conn_write(struct shd_ws_conn *c, unsigned opcode, const void *buf, size_t len,
		      struct shp_error *err)
{
	int r;

	if (opcode != SHP_WS_TEXT && opcode != SHP_WS_BINARY)
		return shp_error_set(err, SHP_E_INTERNAL, "bad WebSocket opcode %u", opcode);
	pthread_mutex_lock(&c->wmu);
	if (c->close_sent || stopping(c))
		r = -1;
	else
		r = send_frame_locked(c, opcode, buf, len);
	pthread_mutex_unlock(&c->wmu);
	if (r < 0)
		return shp_error_set(err, SHP_E_UNAVAIL, "the WebSocket connection is closed");
	return 0;
}

void shd_ws_conn_close(struct shd_ws_conn *c, unsigned code, const char *reason)
{
	uint8_t p[125];
	size_t n = reason ? strlen(reason) : 0;

	if (n > sizeof(p) - 2)
		n = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (n)
		memcpy(p + 2, reason, n);
	pthread_mutex_lock(&c->wmu);
	if (!c->close_sent) {
		c->close_sent = true;
		(void)send_frame_locked(c, SHP_WS_CLOSE, p, n + 2);
	}
	pthread_mutex_unlock(&c->wmu);
}

static void send_control(struct shd_ws_conn *c, unsigned opcode, const uint8_t *p, size_t n)
{
	pthread_mutex_lock(&c->wmu);
	if (!c->close_sent)
		(void)send_frame_locked(c, opcode, p, n);
	pthread_mutex_unlock(&c->wmu);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* More bytes from the socket: 1, 0 at its end, -1 on a failure. */
static int recv_more(struct shd_ws_conn *c)
{
	ssize_t k;

	if (c->in_pos > 0 && c->in_pos == c->in_len)
		c->in_pos = c->in_len = 0;
	if (c->in_len == c->in_cap && c->in_pos > 0) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	do
		k = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
	c->in_len += (size_t)k;
	return k > 0;
}

static long fail(struct shd_ws_conn *c, int code, struct shp_error *err)
{
	bool big = code == SHP_E_LIMIT;

	c->ended = true;
	shd_ws_conn_close(c, big ? SHP_WS_CLOSE_TOO_BIG : SHP_WS_CLOSE_PROTOCOL,
			  big ? "frame too large" : "protocol error");
	return shp_error_set(err, (enum shp_errc)code,
			     big ? "a WebSocket frame over %u bytes"
				 : "a WebSocket protocol error (frame %u bytes at most)",
			     SHD_WS_FRAME_MAX);
}

/* A complete control frame at in_pos (payload unmasked in place). 1 go on, 0 the end. */
static int control_frame(struct shd_ws_conn *c, const struct shp_ws_frame *f, uint8_t *payload)
{
	shp_ws_mask(payload, (size_t)f->len, f->mask, 0);
	if (f->opcode == SHP_WS_PING) {
		send_control(c, SHP_WS_PONG, payload, (size_t)f->len);
		return 1;
	}
	if (f->opcode == SHP_WS_PONG)
		return 1;
	/* CLOSE: echo its code, as RFC 6455 5.5.1 asks */
	c->ended = true;
	pthread_mutex_lock(&c->wmu);
	if (!c->close_sent) {
		c->close_sent = true;
		(void)send_frame_locked(c, SHP_WS_CLOSE, payload, f->len >= 2 ? 2 : 0);
	}
	pthread_mutex_unlock(&c->wmu);
	return 0;
}

/*
 * The next frame header in the buffer: 1 a data frame begins (or a control frame was handled),
 * 0 more bytes needed, 2 CLOSE received, or -SHP_E_PROTO / -SHP_E_LIMIT.
 */
static int next_frame(struct shd_ws_conn *c)
{
	struct shp_ws_frame f;
	uint8_t *p = c->in + c->in_pos;
	size_t avail = c->in_len - c->in_pos;
	int hl = shp_ws_decode_header(p, avail, true, SHD_WS_FRAME_MAX, &f);

	if (hl <= 0)
		return hl;
	if (f.opcode >= SHP_WS_CLOSE) {
		if (avail < (size_t)hl + f.len)
			return 0;
		c->in_pos += (size_t)hl + (size_t)f.len;
		atomic_store(&c->last_rx_ns, shp_now_monotonic_ns());
		return control_frame(c, &f, p + hl) ? 1 : 2;
	}
	if ((f.opcode == SHP_WS_CONT) != c->in_message)
		return -SHP_E_PROTO; /* a continuation of nothing, or a message inside a message */
	if (f.opcode != SHP_WS_CONT)
		c->msg_opcode = f.opcode;
	c->in_pos += (size_t)hl;
	c->in_frame = true;
	c->in_message = !f.fin;
	c->frame_fin = f.fin;
	c->frame_left = f.len;
	c->frame_off = 0;
	memcpy(c->mask, f.mask, 4);
	atomic_store(&c->last_rx_ns, shp_now_monotonic_ns());
	return 1;
}

/* Payload bytes of the current data frame that are buffered, unmasked into buf. */
static size_t deliver(struct shd_ws_conn *c, void *buf, size_t len)
{
	size_t n = c->in_len - c->in_pos;

	if (n > len)
		n = len;
	if (n > c->frame_left)
		n = (size_t)c->frame_left;
	memcpy(buf, c->in + c->in_pos, n);
	shp_ws_mask(buf, n, c->mask, c->frame_off);
	c->in_pos += n;
	c->frame_left -= n;
	c->frame_off += n;
	if (c->frame_left == 0)
		c->in_frame = false;
	return n;
}

/*
 * A quiet client is PINGed after a third of the idle bound, and at least every 15 s (as often as
 * the SSE stream's keep-alive: clients use either to tell a dead connection).
 */
static uint64_t ping_after(const struct shd_ws_conn *c)
{
	uint64_t third = (uint64_t)c->hub->idle_s * 1000000000ull / 3;

	return third < PING_MAX_NS ? third : PING_MAX_NS;
}

/* Quiet client: PING it now and then; silent past the idle bound: it is gone. */
static int keep_alive(struct shd_ws_conn *c, uint64_t now)
{
	uint64_t idle = (uint64_t)c->hub->idle_s * 1000000000ull;
	uint64_t rx = atomic_load(&c->last_rx_ns);

	if (now - rx > idle) {
		c->ended = true;
		shd_ws_conn_close(c, 1001, "idle for too long");
		return -1;
	}
	if (now - rx > ping_after(c) && now - c->last_ping_ns > ping_after(c)) {
		c->last_ping_ns = now;
		send_control(c, SHP_WS_PING, (const uint8_t *)"shepherd", 8);
	}
	return 0;
}

/* The next wait's length: the caller's deadline, or sooner for the keep-alive's sake. */
static int wait_ms(const struct shd_ws_conn *c, uint64_t deadline)
{
	int ms = ms_until(deadline);
	int tick = (int)(ping_after(c) / 2000000); /* half of it, in ms */

	return ms < tick ? ms : tick > 0 ? tick : 1;
}

long shd_ws_conn_read(struct shd_ws_conn *c, void *buf, size_t len, unsigned *ret_opcode,
		      int timeout_ms, struct shp_error *err)
{
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;
	int r;

	for (;;) {
		if (c->ended || stopping(c))
			return 0;
		if (c->in_frame && c->frame_left > 0 && c->in_pos < c->in_len) {
			*ret_opcode = c->msg_opcode;
			return (long)deliver(c, buf, len);
		}
		if (c->in_frame && c->frame_left == 0)
			c->in_frame = false; /* an empty frame */
		if (!c->in_frame) {
			r = next_frame(c);
			if (r < 0)
				return fail(c, -r, err);
			if (r == 2)
				return 0;
			if (r == 1)
				continue;
		}
		if (keep_alive(c, shp_now_monotonic_ns()) < 0)
			return 0;
		if (shp_now_monotonic_ns() >= deadline)
			return shp_error_set(err, SHP_E_TIMEOUT, "no WebSocket data for %d ms",
					     timeout_ms);
		r = wait_sock(c, POLLIN, wait_ms(c, deadline));
		if (r < 0)
			return 0;
		if (r == 1 && recv_more(c) <= 0) {
			c->ended = true; /* the peer went away without a CLOSE */
			return 0;
		}
	}
}

/* ---- the session -------------------------------------------------------------------------- */

/* After our CLOSE, read (and drop) until the client's CLOSE or its end, so nothing is reset. */
static void linger(struct shd_ws_conn *c)
{
	uint64_t deadline = shp_now_monotonic_ns() + CLOSE_LINGER_MS * 1000000ull;
	uint8_t sink[4096];

	while (!c->ended && shp_now_monotonic_ns() < deadline) {
		unsigned op;
		struct shp_error e = SHP_ERROR_INIT;
		long n = shd_ws_conn_read(c, sink, sizeof(sink), &op, ms_until(deadline), &e);
		if (n == 0 || (n < 0 && e.code != SHP_E_TIMEOUT))
			break;
	}
}

static void *session_main(void *arg)
{
	struct shd_ws_conn *c = arg;
	struct shd_ws_hub *h = c->hub;

	shp_log_ctx_set("thread", "websocket");
	log_debug("websocket session %s started", c->protocol);
	c->fn(c, c->cls);
	free_cls((struct owned_cls){c->free_fn, c->cls});
	c->cls = NULL;
	shd_ws_conn_close(c, stopping(c) ? 1001 : SHP_WS_CLOSE_NORMAL,
			  stopping(c) ? "shutting down" : "");
	if (!stopping(c))
		linger(c);
	log_debug("websocket session %s ended", c->protocol);
	(void)MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
	pthread_mutex_lock(&h->mu);
	conn_done_locked(c);
	pthread_mutex_unlock(&h->mu);
	shp_log_ctx_clear();
	return NULL;
}

/* MHD hands over the socket once the 101 is out (one of MHD's threads: do not block). */
static void upgraded(void *cls, struct MHD_Connection *connection, void *req_cls,
		     const char *extra_in, size_t extra_in_size, MHD_socket sock,
		     struct MHD_UpgradeResponseHandle *urh)
{
	struct shd_ws_conn *c = cls;
	struct shd_ws_hub *h = c->hub;
	struct owned_cls o = {0};
	pthread_attr_t attr;
	pthread_t t;
	int flags = fcntl(sock, F_GETFL);
	bool ok;

	c->fd = sock;
	c->urh = urh;
	c->in_cap = extra_in_size > IN_MIN ? extra_in_size : IN_MIN;
	c->in = malloc(c->in_cap);
	ok = c->in && flags >= 0 && fcntl(sock, F_SETFL, flags | O_NONBLOCK) == 0;
	if (ok && extra_in_size > 0) {
		memcpy(c->in, extra_in, extra_in_size);
		c->in_len = extra_in_size;
	}
	c->last_ping_ns = shp_now_monotonic_ns();
	atomic_store(&c->last_rx_ns, c->last_ping_ns);
	pthread_mutex_lock(&h->mu);
	ok = ok && c->state == CONN_QUEUED && !h->stop;
	if (ok) {
		c->state = CONN_RUNNING;
		(void)pthread_attr_init(&attr);
		(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ok = pthread_create(&t, &attr, session_main, c) == 0;
		(void)pthread_attr_destroy(&attr);
	}
	if (!ok) {
		o = take_cls_locked(c);
		conn_done_locked(c);
	}
	pthread_mutex_unlock(&h->mu);
	free_cls(o);
	if (!ok) {
		log_warn("a WebSocket session could not start (out of resources or shutting down)");
		(void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	}
}

struct MHD_Response *shd_ws_response(struct shd_ws_conn *c)
{
	struct shd_ws_hub *h = c->hub;
	struct MHD_Response *r = MHD_create_response_for_upgrade(upgraded, c);

	if (r && (MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket") != MHD_YES ||
		  MHD_add_response_header(r, "Sec-WebSocket-Accept", c->accept) != MHD_YES ||
		  MHD_add_response_header(r, "Sec-WebSocket-Protocol", c->protocol) != MHD_YES)) {
		MHD_destroy_response(r);
		r = NULL;
	}
	struct owned_cls o = {0};

	pthread_mutex_lock(&h->mu);
	if (r) {
		c->state = CONN_QUEUED;
		c->refs++; /* the request's, until its completion */
	} else {
		o = take_cls_locked(c);
		conn_done_locked(c);
	}
	pthread_mutex_unlock(&h->mu);
	free_cls(o);
	return r;
}

void shd_ws_request_done(struct shd_ws_conn *c)
{
	struct owned_cls o = {0};
	struct shd_ws_hub *h;

	if (!c)
		return;
	h = c->hub;
	pthread_mutex_lock(&h->mu);
	if (c->state == CONN_QUEUED) {
		/* the 101 never went out: the client left, or MHD gave up */
		o = take_cls_locked(c);
		conn_done_locked(c);
	}
	conn_unref_locked(c);
	pthread_mutex_unlock(&h->mu);
	free_cls(o);
}

void shd_ws_conn_abandon(struct shd_ws_conn *c)
{
	struct owned_cls o;
	struct shd_ws_hub *h;

	if (!c)
		return;
	h = c->hub;
	pthread_mutex_lock(&h->mu);
	o = take_cls_locked(c);
	conn_done_locked(c);
	pthread_mutex_unlock(&h->mu);
	free_cls(o);
}
