/*
 * The VMI's vnc subresource as virt-api serves it: Status errors before the upgrade (VMI
 * missing, not Running, no graphics device, an active session with preserveSession=true), then a
 * WebSocket (subprotocol plain.kubevirt.io) with a fake RFB server on a thread of its own: the
 * RFB 3.8 greeting, every binary frame echoed, PING answered, CLOSE answered. A new session
 * kicks the VMI's older ones (they send CLOSE and end).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "kubesim.h"
#include "ws.h"

#define PROTOCOL "plain.kubevirt.io"
#define GREETING "RFB 003.008\n"
#define FRAME_MAX (1u << 20)
#define IN_CAP (FRAME_MAX + SHP_WS_HEADER_MAX + 64 * 1024)
#define POLL_MS 100

/* What the upgrade handler needs, made when the request is accepted. */
struct ks_vnc {
	struct ks_vnc *next; /* on the pending list until the upgrade handler takes it */
	struct ks *ks;
	char key[512]; /* "ns/name" of the VMI */
	char accept[SHP_WS_ACCEPT_LEN + 1];
	bool protocol; /* the client offered plain.kubevirt.io */
};

/* One upgraded connection. */
struct session {
	struct ks *ks;
	char key[512];
	MHD_socket sock;
	struct MHD_UpgradeResponseHandle *urh;
	atomic_bool kicked;
	uint8_t *in;
	size_t len;
	bool in_text; /* a fragmented text message goes on: its continuations are skipped */
	struct session *next;
};

/*
 * The open sessions (each frees itself when it ends) and the accepted upgrades whose handler has
 * not run yet (a client may vanish before the 101 goes out); the mutex protects both lists.
 */
static pthread_mutex_t sessions_mu = PTHREAD_MUTEX_INITIALIZER;
static struct session *sessions;
static struct ks_vnc *pending;

static void pending_add(struct ks_vnc *v)
{
	pthread_mutex_lock(&sessions_mu);
	v->next = pending;
	pending = v;
	pthread_mutex_unlock(&sessions_mu);
}

static void pending_take(struct ks_vnc *v)
{
	pthread_mutex_lock(&sessions_mu);
	for (struct ks_vnc **p = &pending; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			break;
		}
	pthread_mutex_unlock(&sessions_mu);
}

void ks_vnc_drain(void)
{
	for (int i = 0; i < 50; i++) { /* sessions see ks->stop within POLL_MS */
		bool empty;
		pthread_mutex_lock(&sessions_mu);
		empty = !sessions;
		pthread_mutex_unlock(&sessions_mu);
		if (empty)
			return;
		(void)nanosleep(&(struct timespec){0, 40 * 1000000L}, NULL);
	}
}

void ks_vnc_release(void)
{
	pthread_mutex_lock(&sessions_mu);
	while (pending) {
		struct ks_vnc *v = pending;
		pending = v->next;
		free(v);
	}
	pthread_mutex_unlock(&sessions_mu);
}

static bool vnc_active(const char *key)
{
	bool found = false;

	pthread_mutex_lock(&sessions_mu);
	for (struct session *s = sessions; s && !found; s = s->next)
		found = strcmp(s->key, key) == 0 && !atomic_load(&s->kicked);
	pthread_mutex_unlock(&sessions_mu);
	return found;
}

/* Register s, kicking the VMI's other sessions. */
static void vnc_register(struct session *s)
{
	pthread_mutex_lock(&sessions_mu);
	for (struct session *o = sessions; o; o = o->next)
		if (strcmp(o->key, s->key) == 0)
			atomic_store(&o->kicked, true);
	s->next = sessions;
	sessions = s;
	pthread_mutex_unlock(&sessions_mu);
}

static void vnc_unregister(struct session *s)
{
	pthread_mutex_lock(&sessions_mu);
	for (struct session **p = &sessions; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&sessions_mu);
}

/* ---- the session ---------------------------------------------------------------------------- */

static int send_all(MHD_socket sock, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(struct session *s, unsigned opcode, const void *payload, size_t len)
{
	uint8_t head[SHP_WS_HEADER_MAX];
	size_t hl = shp_ws_encode_header(head, opcode, true, len, NULL);

	if (send_all(s->sock, head, hl) < 0)
		return -1;
	return len ? send_all(s->sock, payload, len) : 0;
}

static int send_close(struct session *s, unsigned code)
{
	uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	(void)send_frame(s, SHP_WS_CLOSE, p, sizeof(p));
	return -1;
}

/* One complete frame: < 0 ends the session. */
static int on_frame(struct session *s, const struct shp_ws_frame *f, uint8_t *payload)
{
	shp_ws_mask(payload, (size_t)f->len, f->mask, 0);
	switch (f->opcode) {
	case SHP_WS_TEXT: s->in_text = !f->fin; return 0;
	case SHP_WS_CONT: /* a continuation of binary data is echoed like binary */
		if (!s->in_text)
			return send_frame(s, SHP_WS_BINARY, payload, (size_t)f->len);
		s->in_text = !f->fin;
		return 0;
	case SHP_WS_BINARY: return send_frame(s, SHP_WS_BINARY, payload, (size_t)f->len);
	case SHP_WS_PING: return send_frame(s, SHP_WS_PONG, payload, (size_t)f->len);
	case SHP_WS_CLOSE:
		(void)send_frame(s, SHP_WS_CLOSE, payload, f->len >= 2 ? 2 : 0);
		return -1;
	default: return 0; /* PONG */
	}
}

/* Handle the complete frames in s->in; < 0 ends the session. */
static int on_bytes(struct session *s)
{
	size_t off = 0;
	int rc = 0;

	while (rc == 0) {
		struct shp_ws_frame f;
		int hl = shp_ws_decode_header(s->in + off, s->len - off, true, FRAME_MAX, &f);
		if (hl < 0)
			return send_close(s, hl == -SHP_E_LIMIT ? SHP_WS_CLOSE_TOO_BIG
								: SHP_WS_CLOSE_PROTOCOL);
		if (hl == 0 || s->len - off - (size_t)hl < f.len)
			break;
		rc = on_frame(s, &f, s->in + off + hl);
		off += (size_t)hl + (size_t)f.len;
	}
	memmove(s->in, s->in + off, s->len - off);
	s->len -= off;
	return rc;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	int rc = send_frame(s, SHP_WS_BINARY, GREETING, strlen(GREETING));

	if (rc == 0 && s->len > 0)
		rc = on_bytes(s);
	while (rc == 0) {
		struct pollfd p = {.fd = s->sock, .events = POLLIN};
		ssize_t n;

		if (atomic_load(&s->kicked) || atomic_load(&s->ks->stop)) {
			(void)send_close(s, SHP_WS_CLOSE_NORMAL);
			break;
		}
		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		n = recv(s->sock, s->in + s->len, IN_CAP - s->len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		s->len += (size_t)n;
		rc = on_bytes(s);
	}
	(void)MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
	vnc_unregister(s); /* last: ks_vnc_drain waits for this before the daemon stops */
	free(s->in);
	free(s);
	return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct ks_vnc *v = cls;
	struct session *s = calloc(1, sizeof(*s));
	pthread_t t;
	int fl = fcntl(sock, F_GETFL);

	(void)conn;
	(void)con_cls;
	pending_take(v);
	if (fl >= 0)
		(void)fcntl(sock, F_SETFL, fl & ~O_NONBLOCK); /* sends block; reads poll first */
	if (s)
		s->in = malloc(IN_CAP);
	if (!s || !s->in || extra_in_size > IN_CAP) {
		if (s)
			free(s->in);
		free(s);
		free(v);
		(void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		return;
	}
	s->ks = v->ks;
	(void)snprintf(s->key, sizeof(s->key), "%s", v->key);
	s->sock = sock;
	s->urh = urh;
	memcpy(s->in, extra_in, extra_in_size);
	s->len = extra_in_size;
	free(v);
	vnc_register(s);
	if (pthread_create(&t, NULL, session_main, s) != 0) {
		vnc_unregister(s);
		(void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		free(s->in);
		free(s);
		return;
	}
	(void)pthread_detach(t);
}

struct MHD_Response *ks_vnc_response(struct ks_vnc *v)
{
	struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgrade, v);

	if (!r)
		return NULL;
	pending_add(v);
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
	(void)MHD_add_response_header(r, "Sec-WebSocket-Accept", v->accept);
	if (v->protocol)
		(void)MHD_add_response_header(r, "Sec-WebSocket-Protocol", PROTOCOL);
	return r;
}

/* ---- the request ---------------------------------------------------------------------------- */

static bool header_has(struct ks_req *req, const char *name, const char *token)
{
	const char *v = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
	size_t tl = strlen(token);

	for (const char *p = v; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, token, tl) == 0 &&
		    (p[tl] == '\0' || p[tl] == ',' || p[tl] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

static bool graphics_off(const json_t *obj, const char *path)
{
	const json_t *devices = json_object_get(obj, "spec");

	if (strcmp(path, "template") == 0)
		devices = json_object_get(json_object_get(devices, "template"), "spec");
	devices = json_object_get(json_object_get(devices, "domain"), "devices");
	return json_is_false(json_object_get(devices, "autoattachGraphicsDevice"));
}

/* The VMI's state: 0 when a console may open, else the Status set on resp. */
static int check_vmi(struct ks *ks, struct ks_resp *resp, const char *ns, const char *name)
{
	const json_t *vmi = ks_get(ks, KS_R_VMI, ns, name), *vm = ks_get(ks, KS_R_VM, ns, name);
	const char *phase;

	if (!vmi)
		return ks_errorf(resp, 404, "NotFound",
				 "virtualmachineinstance.kubevirt.io \"%s\" not found", name);
	phase = json_string_value(json_object_get(json_object_get(vmi, "status"), "phase"));
	if (!phase || strcmp(phase, "Running") != 0)
		return ks_error(resp, 400, "BadRequest", "VMI is not running", NULL);
	if (graphics_off(vmi, "") || (vm && graphics_off(vm, "template")))
		return ks_error(resp, 400, "BadRequest", "No graphics devices are present.", NULL);
	return 0;
}

int ks_vnc(struct ks_req *req, struct ks_resp *resp, const char *ns, const char *name)
{
	const char *key =
		MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
	const char *ver =
		MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
	const char *preserve = ks_query(req, "preserveSession");
	struct ks_vnc *v;
	char vkey[512];
	int rc;

	if (strcmp(req->method, "GET") != 0)
		return ks_error(resp, 405, "MethodNotAllowed",
				"the server does not allow this method on the requested resource",
				NULL);
	ks_key(ns, name, vkey, sizeof(vkey));
	pthread_mutex_lock(&req->ks->mu);
	rc = check_vmi(req->ks, resp, ns, name);
	pthread_mutex_unlock(&req->ks->mu);
	if (rc < 0)
		return rc;
	if (!key || strlen(key) > 64 || !ver || strcmp(ver, "13") != 0 ||
	    !header_has(req, MHD_HTTP_HEADER_UPGRADE, "websocket") ||
	    !header_has(req, MHD_HTTP_HEADER_CONNECTION, "upgrade"))
		return ks_error(resp, 400, "BadRequest",
				"websocket: the client is not using the "
				"websocket protocol",
				NULL);
	if (preserve && strcmp(preserve, "true") == 0 && vnc_active(vkey))
		return ks_error(resp, 500, "InternalError",
				"Active VNC connection. Request denied.", NULL);
	v = calloc(1, sizeof(*v));
	if (!v || shp_ws_accept_key(key, v->accept) < 0) {
		free(v);
		return ks_error(resp, 500, "InternalError", "out of memory", NULL);
	}
	v->ks = req->ks;
	(void)snprintf(v->key, sizeof(v->key), "%s", vkey);
	v->protocol = header_has(req, "Sec-WebSocket-Protocol", PROTOCOL);
	resp->vnc = v;
	resp->status = 101;
	return 0;
}
