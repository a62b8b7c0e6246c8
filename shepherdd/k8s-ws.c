/*
 * The WebSocket client behind the VNC console: a CONNECT_ONLY curl handle set up like every
 * other request of the cluster (TLS, client certificate, tls-server-name), the HTTP/1.1 upgrade
 * written and its answer read by hand, then frames over curl_easy_send/recv with poll() for
 * waiting. Received payload streams into the caller's buffer, so a frame is never held whole.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "error.h"
#include "k8s-internal.h"
#include "k8s-status.h"
#include "k8s-ws.h"
#include "k8s.h"
#include "util.h"
#include "ws.h"

#define IN_SIZE (64u * 1024) /* received bytes not yet consumed; holds the whole head */
#define CONTROL_MAX 125
#define SEND_TIMEOUT_MS 30000 /* one write, or the PONG/CLOSE sent from a read */
#define CLOSE_TIMEOUT_MS 1000

enum kind { DELIVER, SKIP, CONTROL };

struct shd_k8s_ws {
	struct shd_k8s *k; /* borrowed */
	CURL *h;
	curl_socket_t sock;
	pthread_mutex_t mu;  /* protects each curl_easy_send/recv on h */
	pthread_mutex_t wmu; /* held while one frame is sent, so frames never interleave */
	uint8_t *in;         /* in[start..end): received, not yet consumed */
	size_t start, end;
	/* the reader's state (read's thread only) */
	bool in_frame;   /* the payload of cur is being consumed */
	unsigned opcode; /* of cur */
	enum kind kind;
	uint64_t left;
	uint8_t ctl[CONTROL_MAX];
	size_t ctl_len;
	bool in_message; /* a fragmented data message goes on */
	bool message_binary;
	bool eof;    /* CLOSE received or the connection ended */
	int failed;  /* < 0 after a protocol error: every later read fails */
	bool closed; /* CLOSE sent (wmu) */
};

static long remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = shp_now_monotonic_ns();

	return deadline_ns > now ? (long)((deadline_ns - now) / 1000000u) : 0;
}

static int wait_sock(struct shd_k8s_ws *ws, short events, uint64_t deadline_ns,
		     struct shp_error *err)
{
	struct pollfd p = {.fd = (int)ws->sock, .events = events};
	long left = remaining_ms(deadline_ns);
	int n;

	if (left <= 0)
		return -SHP_E_TIMEOUT;
	n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
	if (n < 0 && errno != EINTR)
		return shp_error_errno(err, errno, "waiting on cluster '%s'", ws->k->name);
	return 0;
}

static int lost(struct shd_k8s_ws *ws, CURLcode cc, struct shp_error *err)
{
	shp_error_set(err, SHP_E_UNAVAIL, "the connection to cluster '%s' failed: %s", ws->k->name,
		      curl_easy_strerror(cc));
	shp_error_api_code(err, "UNREACHABLE");
	return -SHP_E_UNAVAIL;
}

static int send_all(struct shd_k8s_ws *ws, const void *data, size_t len, uint64_t deadline_ns,
		    struct shp_error *err)
{
	const char *p = data;

	while (len > 0) {
		size_t sent = 0;
		CURLcode cc;
		int rc;

		pthread_mutex_lock(&ws->mu);
		cc = curl_easy_send(ws->h, p, len, &sent);
		pthread_mutex_unlock(&ws->mu);
		if (cc == CURLE_OK) {
			p += sent;
			len -= sent;
			continue;
		}
		if (cc != CURLE_AGAIN)
			return lost(ws, cc, err);
		rc = wait_sock(ws, POLLOUT, deadline_ns, err);
		if (rc == -SHP_E_TIMEOUT)
			return shp_error_set(err, SHP_E_TIMEOUT,
					     "cluster '%s' takes no more console data",
					     ws->k->name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Receive more into in: > 0 bytes, 0 at the end of the connection, < 0 (timeout: quiet). */
static long fill(struct shd_k8s_ws *ws, uint64_t deadline_ns, struct shp_error *err)
{
	if (ws->start == ws->end) {
		ws->start = ws->end = 0;
	} else if (ws->start > 0 && ws->end == IN_SIZE) {
		memmove(ws->in, ws->in + ws->start, ws->end - ws->start);
		ws->end -= ws->start;
		ws->start = 0;
	}
	for (;;) {
		size_t n = 0;
		CURLcode cc;
		int rc;

		pthread_mutex_lock(&ws->mu);
		cc = curl_easy_recv(ws->h, ws->in + ws->end, IN_SIZE - ws->end, &n);
		pthread_mutex_unlock(&ws->mu);
		if (cc == CURLE_OK) {
			ws->end += n;
			return (long)n;
		}
		if (cc != CURLE_AGAIN)
			return lost(ws, cc, err);
		rc = wait_sock(ws, POLLIN, deadline_ns, err);
		if (rc < 0)
			return rc;
	}
}

/* ---- frames out ----------------------------------------------------------------------------- */

static int send_frame(struct shd_k8s_ws *ws, unsigned opcode, const uint8_t *payload, size_t len,
		      uint64_t deadline_ns, struct shp_error *err)
{
	uint8_t head[SHP_WS_HEADER_MAX], mask[4], chunk[16 * 1024];
	size_t hl;
	int rc = 0;

	if (RAND_bytes(mask, sizeof(mask)) != 1)
		return shp_error_set(err, SHP_E_INTERNAL, "no random bytes for a frame mask");
	hl = shp_ws_encode_header(head, opcode, true, len, mask);
	pthread_mutex_lock(&ws->wmu);
	if (ws->closed)
		rc = shp_error_set(err, SHP_E_UNAVAIL, "the console of cluster '%s' is closed",
				   ws->k->name);
	else
		rc = send_all(ws, head, hl, deadline_ns, err);
	for (size_t off = 0; rc == 0 && off < len;) {
		size_t n = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
		memcpy(chunk, payload + off, n);
		shp_ws_mask(chunk, n, mask, off);
		rc = send_all(ws, chunk, n, deadline_ns, err);
		off += n;
	}
	if (rc < 0 || opcode == SHP_WS_CLOSE)
		ws->closed = true; /* half a frame went out: nothing can follow */
	pthread_mutex_unlock(&ws->wmu);
	return rc;
}

static void send_close(struct shd_k8s_ws *ws, unsigned code, long timeout_ms)
{
	uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	(void)send_frame(ws, SHP_WS_CLOSE, p, sizeof(p),
			 shp_now_monotonic_ns() + (uint64_t)timeout_ms * 1000000u, NULL);
}

int shd_k8s_ws_write(struct shd_k8s_ws *ws, const void *buf, size_t len, struct shp_error *err)
{
	const uint8_t *p = buf;
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)SEND_TIMEOUT_MS * 1000000u;

	while (len > 0) {
		size_t n = len < SHD_K8S_WS_WRITE_FRAME ? len : SHD_K8S_WS_WRITE_FRAME;
		int rc = send_frame(ws, SHP_WS_BINARY, p, n, deadline, err);
		if (rc < 0)
			return rc;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- frames in ------------------------------------------------------------------------------ */

static int fail(struct shd_k8s_ws *ws, int code, struct shp_error *err)
{
	bool big = code == -SHP_E_LIMIT;

	send_close(ws, big ? SHP_WS_CLOSE_TOO_BIG : SHP_WS_CLOSE_PROTOCOL, CLOSE_TIMEOUT_MS);
	ws->failed = -SHP_E_PROTO;
	return shp_error_set(err, SHP_E_PROTO, "the console of cluster '%s' %s", ws->k->name,
			     big ? "sent a frame over 1 MiB" : "broke the WebSocket protocol");
}

static int begin_frame(struct shd_k8s_ws *ws, const struct shp_ws_frame *f, struct shp_error *err)
{
	if (f->opcode == SHP_WS_CONT) {
		if (!ws->in_message)
			return fail(ws, -SHP_E_PROTO, err);
		ws->kind = ws->message_binary ? DELIVER : SKIP;
		ws->in_message = !f->fin;
	} else if (f->opcode == SHP_WS_TEXT || f->opcode == SHP_WS_BINARY) {
		if (ws->in_message)
			return fail(ws, -SHP_E_PROTO, err);
		ws->message_binary = f->opcode == SHP_WS_BINARY;
		ws->kind = ws->message_binary ? DELIVER : SKIP;
		ws->in_message = !f->fin;
	} else {
		ws->kind = CONTROL;
		ws->ctl_len = 0;
	}
	ws->opcode = f->opcode;
	ws->left = f->len;
	ws->in_frame = true;
	return 0;
}

static void end_frame(struct shd_k8s_ws *ws)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)SEND_TIMEOUT_MS * 1000000u;

	ws->in_frame = false;
	if (ws->opcode == SHP_WS_PING) {
		(void)send_frame(ws, SHP_WS_PONG, ws->ctl, ws->ctl_len, deadline, NULL);
	} else if (ws->opcode == SHP_WS_CLOSE) {
		unsigned code = ws->ctl_len >= 2 ? (unsigned)ws->ctl[0] << 8 | ws->ctl[1]
						 : SHP_WS_CLOSE_NORMAL;
		send_close(ws, code, CLOSE_TIMEOUT_MS);
		ws->eof = true;
	}
}

/* Consume buffered bytes: payload into buf (*got grows), control frames handled. */
static int consume(struct shd_k8s_ws *ws, uint8_t *buf, size_t len, size_t *got,
		   struct shp_error *err)
{
	while (!ws->eof && *got < len) {
		size_t avail = ws->end - ws->start, n;

		if (!ws->in_frame) {
			struct shp_ws_frame f;
			int hl = shp_ws_decode_header(ws->in + ws->start, avail, false,
						      SHD_K8S_WS_FRAME_MAX, &f);
			if (hl == 0)
				return 0;
			if (hl < 0)
				return fail(ws, hl, err);
			ws->start += (size_t)hl;
			if (begin_frame(ws, &f, err) < 0)
				return ws->failed;
		} else if (avail == 0 && ws->left > 0) {
			return 0;
		}
		n = avail = ws->end - ws->start;
		if (n > ws->left)
			n = (size_t)ws->left;
		if (ws->kind == DELIVER) {
			if (n > len - *got)
				n = len - *got;
			memcpy(buf + *got, ws->in + ws->start, n);
			*got += n;
		} else if (ws->kind == CONTROL) {
			memcpy(ws->ctl + ws->ctl_len, ws->in + ws->start, n);
			ws->ctl_len += n;
		}
		ws->start += n;
		ws->left -= n;
		if (ws->left == 0)
			end_frame(ws);
	}
	return 0;
}

long shd_k8s_ws_read(struct shd_k8s_ws *ws, void *buf, size_t len, int timeout_ms,
		     struct shp_error *err)
{
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
	size_t got = 0;

	if (ws->failed < 0)
		return shp_error_set(err, -ws->failed, "the console of cluster '%s' failed before",
				     ws->k->name);
	if (len == 0)
		return 0;
	for (;;) {
		long rc = consume(ws, buf, len, &got, err);
		if (rc < 0)
			return rc;
		if (got > 0)
			return (long)got;
		if (ws->eof)
			return 0;
		rc = fill(ws, deadline, err);
		if (rc == 0) {
			ws->eof = true; /* the connection ended without CLOSE */
			return 0;
		}
		if (rc == -SHP_E_TIMEOUT)
			return shp_error_set(err, SHP_E_TIMEOUT,
					     "no console data from cluster '%s' within %d ms",
					     ws->k->name, timeout_ms);
		if (rc < 0)
			return rc;
	}
}

/* ---- the upgrade ---------------------------------------------------------------------------- */

static struct shd_k8s_ws *ws_new(struct shd_k8s *k)
{
	struct shd_k8s_ws *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	ws->k = k;
	ws->sock = CURL_SOCKET_BAD;
	ws->in = malloc(IN_SIZE);
	ws->h = curl_easy_init();
	pthread_mutex_init(&ws->mu, NULL);
	pthread_mutex_init(&ws->wmu, NULL);
	if (!ws->in || !ws->h)
		return shd_k8s_ws_close(ws);
	return ws;
}

struct shd_k8s_ws *shd_k8s_ws_close(struct shd_k8s_ws *ws)
{
	if (!ws)
		return NULL;
	if (ws->sock != CURL_SOCKET_BAD && !ws->eof && ws->failed == 0) {
		uint8_t drain[4096];
		uint64_t until = shp_now_monotonic_ns() + (uint64_t)CLOSE_TIMEOUT_MS * 1000000u;
		send_close(ws, SHP_WS_CLOSE_NORMAL, CLOSE_TIMEOUT_MS);
		/* the server answers CLOSE: wait for it, so neither side writes to a closed peer */
		while (!ws->eof && ws->failed == 0 && shp_now_monotonic_ns() < until) {
			long left = remaining_ms(until);
			if (shd_k8s_ws_read(ws, drain, sizeof(drain), left > 0 ? (int)left : 1,
					    NULL) < 0)
				break;
		}
	}
	if (ws->h)
		curl_easy_cleanup(ws->h);
	pthread_mutex_destroy(&ws->mu);
	pthread_mutex_destroy(&ws->wmu);
	free(ws->in);
	free(ws);
	return NULL;
}

/* Connect (TCP and TLS) like any request of k, without sending one. */
static int connect_only(struct shd_k8s_ws *ws, const char *path, uint64_t deadline_ns,
			struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf url = SHP_BUF_INIT(64 * 1024);
	struct shd_k8s *k = ws->k;
	struct curl_slist *connect_to = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long left = remaining_ms(deadline_ns);
	CURLcode cc;
	int rc;

	if (left <= 0)
		return shp_error_set(err, SHP_E_TIMEOUT,
				     "the deadline passed before connecting to cluster '%s'",
				     k->name);
	rc = shd_k8s_setup_handle(k, ws->h, err);
	if (rc < 0)
		return rc;
	if (shd_k8s_prepare(k, ws->h, "GET", path, NULL, 0, left, &url) < 0)
		return shp_error_set(err, SHP_E_LIMIT, "request path too long");
	if (k->connect_to && !(connect_to = curl_slist_append(NULL, k->connect_to)))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)curl_easy_setopt(ws->h, CURLOPT_CONNECT_TO, connect_to);
	(void)curl_easy_setopt(ws->h, CURLOPT_CONNECT_ONLY, 1L);
	(void)curl_easy_setopt(ws->h, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(ws->h);
	(void)curl_easy_setopt(ws->h, CURLOPT_CONNECT_TO, NULL);
	(void)curl_easy_setopt(ws->h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(connect_to);
	if (cc != CURLE_OK)
		return shd_k8s_transport_error(k, cc, errbuf, left, err);
	if (curl_easy_getinfo(ws->h, CURLINFO_ACTIVESOCKET, &ws->sock) != CURLE_OK ||
	    ws->sock == CURL_SOCKET_BAD)
		return shp_error_set(err, SHP_E_INTERNAL, "no socket for cluster '%s'", k->name);
	return 0;
}

/* Host header value: the URL's host, and its port when the URL names one. */
static int host_of(const char *server, struct shp_buf *out)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;
	int rc = -SHP_E_INVAL;

	if (u && curl_url_set(u, CURLUPART_URL, server, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		(void)curl_url_get(u, CURLUPART_PORT, &port, 0);
		rc = port ? shp_buf_addf(out, "%s:%s", host, port) : shp_buf_add(out, host);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static int send_upgrade(struct shd_k8s_ws *ws, const char *path, const char *key,
			const char *protocol, uint64_t deadline_ns, struct shp_error *err)
{
	struct shp_buf req = SHP_BUF_INIT(64 * 1024);
	int rc = shp_buf_addf(&req, "GET %s HTTP/1.1\r\nHost: ", path);

	if (rc == 0)
		rc = host_of(ws->k->server, &req);
	if (rc == 0)
		rc = shp_buf_addf(&req,
				  "\r\nUser-Agent: shepherd/" PACKAGE_VERSION "\r\n"
				  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Protocol: %s\r\n",
				  key, protocol);
	if (rc == 0 && ws->k->auth_header)
		rc = shp_buf_addf(&req, "%s\r\n", ws->k->auth_header);
	if (rc == 0)
		rc = shp_buf_add(&req, "\r\n");
	if (rc == 0)
		rc = send_all(ws, req.buf, req.len, deadline_ns, err);
	else
		rc = shp_error_set(err, SHP_E_LIMIT, "the upgrade request is too long");
	explicit_bzero(req.buf, req.len); /* it holds the token */
	shp_buf_release(&req);
	return rc;
}

/* Read until the end of the head; *ret_len is the head's length (its bytes stay in in). */
static int read_head(struct shd_k8s_ws *ws, uint64_t deadline_ns, size_t *ret_len,
		     struct shp_error *err)
{
	for (;;) {
		const uint8_t *end = NULL;
		long n;

		for (size_t i = 3; i < ws->end && !end; i++)
			if (memcmp(ws->in + i - 3, "\r\n\r\n", 4) == 0)
				end = ws->in + i + 1;
		if (end && (size_t)(end - ws->in) <= SHD_K8S_WS_HEAD_MAX) {
			*ret_len = (size_t)(end - ws->in);
			return 0;
		}
		if (end || ws->end >= SHD_K8S_WS_HEAD_MAX)
			return shp_error_set(err, SHP_E_LIMIT,
					     "the upgrade answer of cluster '%s' has a head over "
					     "%u bytes",
					     ws->k->name, SHD_K8S_WS_HEAD_MAX);
		n = fill(ws, deadline_ns, err);
		if (n == 0)
			return shp_error_set(
				err, SHP_E_PROTO,
				"cluster '%s' closed the connection during the upgrade",
				ws->k->name);
		if (n == -SHP_E_TIMEOUT)
			return shp_error_set(
				err, SHP_E_TIMEOUT,
				"no upgrade answer from cluster '%s' before the deadline",
				ws->k->name);
		if (n < 0)
			return (int)n;
	}
}

/* The body of a refused upgrade (capped), as far as the deadline allows. */
static void read_refusal(struct shd_k8s_ws *ws, const struct shp_ws_answer *a, size_t head_len,
			 uint64_t deadline_ns)
{
	size_t want = a->content_length >= 0 && (uint64_t)a->content_length < SHD_K8S_WS_BODY_MAX
			      ? (size_t)a->content_length
			      : SHD_K8S_WS_BODY_MAX;

	ws->start = head_len;
	while (ws->end - ws->start < want && ws->end < IN_SIZE) {
		struct shp_error e = SHP_ERROR_INIT;
		if (fill(ws, deadline_ns, &e) <= 0)
			break;
	}
	if (ws->end - ws->start > want)
		ws->end = ws->start + want;
}

static int refused(struct shd_k8s_ws *ws, const struct shp_ws_answer *a, size_t head_len,
		   uint64_t deadline_ns, struct shp_error *err)
{
	const char *body, *open, *close;
	size_t len;
	int rc;

	read_refusal(ws, a, head_len, deadline_ns);
	body = (const char *)ws->in + ws->start;
	len = ws->end - ws->start;
	if (a->chunked) { /* the Status is the one chunk: from its first '{' to its last '}' */
		open = memchr(body, '{', len);
		close = open ? memrchr(open, '}', len - (size_t)(open - body)) : NULL;
		len = close ? (size_t)(close - open) + 1 : 0;
		body = open;
	}
	rc = shd_k8s_error(a->status, body, len, NULL, NULL, err);
	ws->start = ws->end = 0;
	return rc;
}

int shd_k8s_ws_open(struct shd_k8s *k, const char *path, const char *protocol, uint64_t deadline_ns,
		    struct shd_k8s_ws **ret, struct shp_error *err)
{
	struct shd_k8s_ws *ws = ws_new(k);
	struct shp_ws_answer a;
	uint8_t raw[16];
	char key[SHP_WS_KEY_LEN + 1];
	size_t head_len = 0;
	int rc;

	if (!ws)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)) != SHP_WS_KEY_LEN) {
		shd_k8s_ws_close(ws);
		return shp_error_set(err, SHP_E_INTERNAL, "no random bytes for a WebSocket key");
	}
	ws->eof = true; /* nothing to close politely until the upgrade is done */
	rc = connect_only(ws, path, deadline_ns, err);
	if (rc == 0)
		rc = send_upgrade(ws, path, key, protocol, deadline_ns, err);
	if (rc == 0)
		rc = read_head(ws, deadline_ns, &head_len, err);
	if (rc == 0 && shp_ws_parse_answer((const char *)ws->in, head_len, &a) < 0)
		rc = shp_error_set(err, SHP_E_PROTO,
				   "cluster '%s' answered the upgrade with a malformed head",
				   k->name);
	if (rc == 0 && a.status != 101)
		rc = refused(ws, &a, head_len, deadline_ns, err);
	else if (rc == 0)
		rc = shp_ws_check_upgrade(&a, key, protocol, err);
	if (rc < 0) {
		shd_k8s_ws_close(ws);
		return rc;
	}
	ws->start = head_len; /* frames may already follow the head */
	ws->eof = false;
	*ret = ws;
	return 0;
}
