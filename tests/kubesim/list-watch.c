/*
 * LIST and WATCH. A list reads a consistent snapshot at one RV (rebuilt from the event log),
 * sorted by key, paginated with an opaque continue token that carries that RV; a token older
 * than the compaction floor answers 410 Expired. A watch replays the log after its RV (or sends
 * synthetic ADDED events for the current state), then streams live events as newline-delimited
 * JSON, with bookmarks, timeouts, the in-stream 410 and abrupt disconnects on request.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "kubesim.h"
#include "labelsel.h"
#include "util.h"

#define BOOKMARK_NS (1000ull * 1000 * 1000)
#define WATCH_DEFAULT_TIMEOUT_S 1800
#define WATCH_CHUNK_MAX (256u * 1024u)

/* The request's selectors, parsed once. */
struct selectors {
	struct shd_labelsel *labels;
	char *fields;
	char *ns; /* a copy: a watch outlives its request */
};

struct ks_watch {
	struct ks *ks;
	enum ks_res res;
	struct selectors sel;
	uint64_t cursor;      /* every event up to here has been looked at */
	uint64_t deadline_ns; /* monotonic */
	uint64_t next_bookmark_ns;
	uint64_t drop_gen;
	bool bookmarks;
	bool done;
	struct shp_buf out; /* formatted, not yet sent */
	size_t sent;
	int chunk; /* the watch_chunk_bytes fault, read with the events */
	int fd;    /* the connection's socket, to notice a client that went away */
};

bool ks_field_match(const char *sel, const json_t *obj)
{
	const json_t *md = json_object_get(obj, "metadata");
	char buf[1024], *save = NULL;

	if (!sel || !*sel)
		return true;
	(void)snprintf(buf, sizeof(buf), "%s", sel);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool neg = false;
		char *op = strstr(t, "!="), *val;
		const char *have;
		if (op) {
			neg = true;
			val = op + 2;
		} else if ((op = strstr(t, "=="))) {
			val = op + 2;
		} else {
			op = strchr(t, '=');
			val = op + 1;
		}
		*op = '\0';
		have = json_string_value(json_object_get(
			md, strcmp(t, "metadata.name") == 0 ? "name" : "namespace"));
		if ((shp_strcmp0(have ? have : "", val) == 0) == neg)
			return false;
	}
	return true;
}

int ks_field_check(const char *sel, struct ks_resp *resp)
{
	char buf[1024], *save = NULL;

	if (!sel || !*sel)
		return 0;
	if (strlen(sel) >= sizeof(buf))
		return ks_error(resp, 400, "BadRequest", "the field selector is too long", NULL);
	memcpy(buf, sel, strlen(sel) + 1);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t n = strcspn(t, "!=");
		if (t[n] == '\0')
			return ks_errorf(resp, 400, "BadRequest",
					 "invalid field selector: '%.200s': no operator", t);
		t[n] = '\0';
		while (n > 0 && t[n - 1] == ' ')
			t[--n] = '\0';
		if (strcmp(t, "metadata.name") != 0 && strcmp(t, "metadata.namespace") != 0)
			return ks_errorf(resp, 400, "BadRequest",
					 "\"%.200s\" is not a known field selector: only "
					 "\"metadata.name\", \"metadata.namespace\"",
					 t);
	}
	return 0;
}

static int selectors_parse(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
			   struct selectors *s)
{
	const char *ls = ks_query(req, "labelSelector"), *fs = ks_query(req, "fieldSelector");
	struct shp_error err = SHP_ERROR_INIT;

	if (t->ns && !(s->ns = strdup(t->ns)))
		abort();
	if (ks_field_check(fs, resp) < 0)
		return -1;
	if (fs && *fs && !(s->fields = strdup(fs)))
		abort();
	if (ls && *ls && !(s->labels = shd_labelsel_parse(ls, &err)))
		return ks_errorf(resp, 400, "BadRequest", "unable to parse requirement: %s",
				 err.msg);
	return 0;
}

static void selectors_release(struct selectors *s)
{
	s->labels = shd_labelsel_free(s->labels);
	free(s->fields);
	free(s->ns);
	s->fields = s->ns = NULL;
}

static bool selected(const struct selectors *s, const json_t *obj)
{
	const json_t *md = json_object_get(obj, "metadata");

	if (!obj)
		return false;
	if (s->ns && shp_strcmp0(json_string_value(json_object_get(md, "namespace")), s->ns) != 0)
		return false;
	if (!ks_field_match(s->fields, obj))
		return false;
	return !s->labels || shd_labelsel_match(s->labels, json_object_get(md, "labels"));
}

/* key -> object at rv: the current map with the logged changes after rv undone. */
static json_t *snapshot(struct ks *ks, enum ks_res res, uint64_t rv)
{
	json_t *snap = json_object();
	char key[512];

	json_object_update(snap, ks->objs[res]);
	for (size_t i = ks->log_len; i > ks_log_after(ks, rv); i--) {
		const struct ks_event *e = &ks->log[i - 1];
		const json_t *md = json_object_get(e->obj, "metadata");
		if (e->res != res)
			continue;
		ks_key(ks_resources[res].namespaced
			       ? json_string_value(json_object_get(md, "namespace"))
			       : NULL,
		       json_string_value(json_object_get(md, "name")), key, sizeof(key));
		if (e->prev)
			json_object_set(snap, key, e->prev);
		else
			json_object_del(snap, key);
	}
	return snap;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of a map; the strings are borrowed from it. */
static const char **sorted_keys(json_t *map, size_t *ret_n)
{
	size_t n = json_object_size(map), i = 0;
	const char **keys = calloc(n + 1, sizeof(*keys));
	const char *k;
	json_t *v;

	if (!keys)
		abort();
	json_object_foreach(map, k, v)
	{
		keys[i++] = k;
	}
	qsort(keys, n, sizeof(*keys), cmp_str);
	*ret_n = n;
	return keys;
}

/* The continue token: hex of {"rv":N,"start":"<last key>"}, opaque to clients. */
static char *token_encode(uint64_t rv, const char *key)
{
	json_auto_t *j = json_pack("{s:s, s:I, s:s}", "v", "meta.k8s.io/v1", "rv", (json_int_t)rv,
				   "start", key);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
	size_t n = s ? strlen(s) : 0;
	char *hex = malloc(2 * n + 1);

	if (!s || !hex)
		abort();
	shp_hex_encode(s, n, hex);
	return hex;
}

static json_t *token_decode(const char *tok)
{
	size_t n = strlen(tok);
	_cleanup_free_ char *raw = NULL;
	json_t *j;

	if (n == 0 || n % 2 || n > 4096 || !(raw = malloc(n / 2 + 1)))
		return NULL;
	for (size_t i = 0; i < n; i += 2) {
		int hi = shp_hex_digit(tok[i]), lo = shp_hex_digit(tok[i + 1]);
		if (hi < 0 || lo < 0)
			return NULL;
		raw[i / 2] = (char)(hi << 4 | lo);
	}
	raw[n / 2] = '\0';
	j = json_loads(raw, 0, NULL);
	if (!json_is_integer(json_object_get(j, "rv")) ||
	    !json_is_string(json_object_get(j, "start"))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int expired(struct ks *ks, struct ks_resp *resp, const char *msg)
{
	return ks_error(resp, 410, ks->faults.legacy_gone ? "Gone" : "Expired", msg, NULL);
}

#define CONTINUE_EXPIRED                                                                           \
	"The provided continue parameter is too old to display a consistent list result. You "     \
	"can start a new list without the continue parameter, or use the continue token in this "  \
	"response to retrieve the remainder of the results. Continuing with the provided token "   \
	"results in an inconsistent list - objects that were created, modified, or deleted "       \
	"between the time the first chunk was returned and now may show up in the list."

/* Where the list reads: its RV and the key to start after. -1 with the error set. */
static int list_position(struct ks_req *req, struct ks_resp *resp, uint64_t *rv, char *start,
			 size_t size)
{
	struct ks *ks = req->ks;
	const char *cont = ks_query(req, "continue"), *qrv = ks_query(req, "resourceVersion");
	const char *match = ks_query(req, "resourceVersionMatch");
	long long n;

	*rv = ks->rv;
	start[0] = '\0';
	if (cont && *cont) {
		json_auto_t *tok = token_decode(cont);
		if (!tok)
			return ks_error(resp, 400, "BadRequest",
					"continue key is not valid: illegal base64 data", NULL);
		*rv = (uint64_t)json_integer_value(json_object_get(tok, "rv"));
		(void)snprintf(start, size, "%s", json_string_value(json_object_get(tok, "start")));
		if (*rv < ks->floor || *rv > ks->rv)
			return expired(ks, resp, CONTINUE_EXPIRED);
		return 0;
	}
	if (!qrv || !*qrv || strcmp(qrv, "0") == 0)
		return 0;
	if (shp_parse_int(qrv, 0, INT64_MAX, &n, NULL) < 0)
		return ks_errorf(resp, 400, "BadRequest", "invalid resourceVersion: %.64s", qrv);
	if (match && strcmp(match, "Exact") == 0) {
		if ((uint64_t)n < ks->floor)
			return expired(ks, resp,
				       "The resourceVersion for the provided list is too old.");
		if ((uint64_t)n > ks->rv)
			return ks_errorf(resp, 504, "Timeout",
					 "Too large resource version: %lld, current: %llu", n,
					 (unsigned long long)ks->rv);
		*rv = (uint64_t)n;
	} else if (match && strcmp(match, "NotOlderThan") != 0) {
		return ks_errorf(resp, 422, "Invalid",
				 "resourceVersionMatch: Unsupported value: \"%.64s\"", match);
	}
	return 0;
}

static json_t *list_doc(const struct ks_resource *r, uint64_t rv, json_t *items)
{
	char av[128], kind[96], srv[32];

	ks_api_version(r, av, sizeof(av));
	(void)snprintf(kind, sizeof(kind), "%sList", r->kind);
	(void)snprintf(srv, sizeof(srv), "%llu", (unsigned long long)rv);
	return json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion", av, "kind", kind, "metadata",
			 "resourceVersion", srv, "items", items);
}

static int list_locked(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		       const struct selectors *sel, long long limit)
{
	struct ks *ks = req->ks;
	char start[512];
	uint64_t rv;
	json_auto_t *snap = NULL;
	_cleanup_free_ const char **keys = NULL;
	size_t n, i = 0, remaining = 0;
	json_t *items, *doc;
	const char *last = NULL;

	if (list_position(req, resp, &rv, start, sizeof(start)) < 0)
		return -1;
	snap = snapshot(ks, t->res, rv);
	keys = sorted_keys(snap, &n);
	items = json_array();
	for (; i < n && start[0] && strcmp(keys[i], start) <= 0; i++)
		;
	for (; i < n; i++) {
		json_t *o = json_object_get(snap, keys[i]);
		if (!selected(sel, o))
			continue;
		if (limit > 0 && (long long)json_array_size(items) == limit) {
			remaining++;
			continue;
		}
		json_array_append_new(items, json_deep_copy(o));
		last = keys[i];
	}
	doc = list_doc(&ks_resources[t->res], rv, items);
	if (remaining) {
		json_t *md = json_object_get(doc, "metadata");
		_cleanup_free_ char *tok = token_encode(rv, last);
		json_object_set_new(md, "continue", json_string(tok));
		json_object_set_new(md, "remainingItemCount", json_integer((json_int_t)remaining));
	}
	return ks_reply(resp, 200, doc);
}

int ks_list(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	struct selectors sel = {0};
	const char *ql = ks_query(req, "limit");
	long long limit = 0;
	int r;

	if (ql && *ql && shp_parse_int(ql, 0, INT64_MAX, &limit, NULL) < 0)
		return ks_errorf(resp, 400, "BadRequest", "invalid limit: %.64s", ql);
	if (limit > KS_LIST_LIMIT_MAX)
		limit = KS_LIST_LIMIT_MAX;
	if (selectors_parse(req, resp, t, &sel) < 0) {
		selectors_release(&sel);
		return -1;
	}
	pthread_mutex_lock(&req->ks->mu);
	r = list_locked(req, resp, t, &sel, limit);
	pthread_mutex_unlock(&req->ks->mu);
	selectors_release(&sel);
	return r;
}

static uint64_t now_ns(void)
{
	return shp_now_monotonic_ns();
}

/* Append one event line to the watch's output. */
static void emit(struct ks_watch *w, const char *type, const json_t *obj)
{
	json_auto_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
	_cleanup_free_ char *s = json_dumps(ev, JSON_COMPACT);

	if (!s || shp_buf_add(&w->out, s) < 0 || shp_buf_addch(&w->out, '\n') < 0)
		w->done = true; /* the cap: the stream ends, the client re-watches */
}

static void emit_bookmark(struct ks_watch *w, uint64_t rv)
{
	const struct ks_resource *r = &ks_resources[w->res];
	char av[128], srv[32];
	json_auto_t *o = NULL;

	ks_api_version(r, av, sizeof(av));
	(void)snprintf(srv, sizeof(srv), "%llu", (unsigned long long)rv);
	o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", av, "kind", r->kind, "metadata",
		      "resourceVersion", srv);
	emit(w, "BOOKMARK", o);
}

static void emit_expired(struct ks_watch *w, uint64_t req_rv, uint64_t floor)
{
	char msg[128];
	json_auto_t *st = NULL;

	(void)snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)",
		       (unsigned long long)req_rv, (unsigned long long)floor + 1);
	st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion", "v1",
		       "metadata", "status", "Failure", "message", msg, "reason",
		       w->ks->faults.legacy_gone ? "Gone" : "Expired", "code", 410);
	emit(w, "ERROR", st);
	w->done = true;
}

/* An injected ERROR event (500 and the like), after which the stream ends. */
static void emit_error(struct ks_watch *w, int code)
{
	json_auto_t *st =
		json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status", "apiVersion",
			  "v1", "metadata", "status", "Failure", "message",
			  "an error on the server has prevented the request from succeeding",
			  "reason", code == 410 ? "Expired" : "InternalError", "code", code);

	emit(w, "ERROR", st);
	w->done = true;
}

/* Format the logged events after the cursor that this watch selects. */
static void drain_log(struct ks_watch *w)
{
	struct ks *ks = w->ks;

	for (size_t i = ks_log_after(ks, w->cursor); i < ks->log_len; i++) {
		const struct ks_event *e = &ks->log[i];
		bool now, before;
		w->cursor = e->rv;
		if (e->res != w->res)
			continue;
		now = e->type != KS_EV_DELETED && selected(&w->sel, e->obj);
		before = e->prev && selected(&w->sel, e->prev);
		if (now && before)
			emit(w, "MODIFIED", e->obj);
		else if (now)
			emit(w, "ADDED", e->obj);
		else if (before)
			emit(w, "DELETED", e->obj);
		if (w->out.len >= WATCH_CHUNK_MAX || w->done)
			break;
	}
}

static void initial_events(struct ks_watch *w)
{
	struct ks *ks = w->ks;
	_cleanup_free_ const char **keys = NULL;
	size_t n;

	keys = sorted_keys(ks->objs[w->res], &n);
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object_get(ks->objs[w->res], keys[i]);
		if (selected(&w->sel, o))
			emit(w, "ADDED", o);
	}
	w->cursor = ks->rv;
}

static void wait_until(struct ks *ks, uint64_t until_ns)
{
	struct timespec ts;
	uint64_t now = now_ns(), d = until_ns > now ? until_ns - now : 0;

	if (d > BOOKMARK_NS)
		d = BOOKMARK_NS;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(d / 1000000000ull);
	ts.tv_nsec += (long)(d % 1000000000ull);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&ks->cond, &ks->mu, &ts);
}

/* Whether the client closed its end (a quiet watch would otherwise hold its thread until the
 * timeout). */
static bool peer_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Fill w->out with the next events; false when the stream must break off abruptly. */
static bool watch_fill(struct ks_watch *w)
{
	struct ks *ks = w->ks;

	for (;;) {
		uint64_t now = now_ns();
		if (ks->drop_gen != w->drop_gen && !ks->drop_error)
			return false;
		if (ks->drop_gen != w->drop_gen) {
			emit_error(w, ks->drop_error);
			return true;
		}
		if (atomic_load(&ks->stop)) {
			w->done = true;
			return true;
		}
		if (peer_gone(w->fd))
			return false;
		if (w->cursor < ks->floor) {
			emit_expired(w, w->cursor, ks->floor);
			return true;
		}
		drain_log(w);
		if (w->out.len > 0 || w->done)
			return true;
		if (now >= w->deadline_ns) {
			if (w->bookmarks)
				emit_bookmark(w, ks->rv);
			w->done = true;
			return true;
		}
		if (w->bookmarks && now >= w->next_bookmark_ns) {
			emit_bookmark(w, ks->rv);
			w->next_bookmark_ns = now + BOOKMARK_NS;
			return true;
		}
		wait_until(ks, w->bookmarks && w->next_bookmark_ns < w->deadline_ns
				       ? w->next_bookmark_ns
				       : w->deadline_ns);
	}
}

ssize_t ks_watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct ks_watch *w = cls;
	size_t n;

	(void)pos;
	if (w->sent == w->out.len) {
		bool ok;
		shp_buf_reset(&w->out);
		w->sent = 0;
		if (w->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&w->ks->mu);
		ok = watch_fill(w);
		w->chunk = w->ks->faults.watch_chunk_bytes;
		pthread_mutex_unlock(&w->ks->mu);
		if (!ok)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (w->out.len == 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = w->out.len - w->sent;
	if (n > max)
		n = max;
	if (w->chunk > 0 && n > (size_t)w->chunk)
		n = (size_t)w->chunk; /* events split across chunks, on request */
	memcpy(buf, w->out.buf + w->sent, n);
	w->sent += n;
	return (ssize_t)n;
}

void ks_watch_free(void *cls)
{
	struct ks_watch *w = cls;

	pthread_mutex_lock(&w->ks->mu);
	w->ks->watches_open--;
	pthread_mutex_unlock(&w->ks->mu);
	selectors_release(&w->sel);
	shp_buf_release(&w->out);
	free(w);
}

static int watch_params(struct ks_req *req, struct ks_resp *resp, struct ks_watch *w,
			long long *ret_rv)
{
	const char *qrv = ks_query(req, "resourceVersion"), *qt = ks_query(req, "timeoutSeconds");
	const char *qb = ks_query(req, "allowWatchBookmarks");
	long long timeout = WATCH_DEFAULT_TIMEOUT_S;

	*ret_rv = -1;
	if (qrv && *qrv && strcmp(qrv, "0") != 0 &&
	    shp_parse_int(qrv, 0, INT64_MAX, ret_rv, NULL) < 0)
		return ks_errorf(resp, 400, "BadRequest", "invalid resourceVersion: %.64s", qrv);
	if (qt && *qt && shp_parse_int(qt, 0, 86400, &timeout, NULL) < 0)
		return ks_errorf(resp, 400, "BadRequest", "invalid timeoutSeconds: %.64s", qt);
	w->bookmarks = qb && (strcmp(qb, "true") == 0 || strcmp(qb, "1") == 0);
	w->deadline_ns = now_ns() + (uint64_t)timeout * 1000000000ull;
	w->next_bookmark_ns = now_ns() + BOOKMARK_NS;
	return 0;
}

int ks_watch_start(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	struct ks *ks = req->ks;
	struct ks_watch *w = calloc(1, sizeof(*w));
	const union MHD_ConnectionInfo *ci;
	long long rv;

	if (!w)
		abort();
	w->ks = ks;
	w->res = t->res;
	w->fd = -1;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		w->fd = ci->connect_fd;
	shp_buf_init(&w->out, 8u * 1024u * 1024u);
	if (watch_params(req, resp, w, &rv) < 0 || selectors_parse(req, resp, t, &w->sel) < 0) {
		selectors_release(&w->sel);
		shp_buf_release(&w->out);
		free(w);
		return -1;
	}
	pthread_mutex_lock(&ks->mu);
	if (rv >= 0 && (uint64_t)rv < ks->floor && ks->faults.watch_410_http) {
		char msg[128];
		(void)snprintf(msg, sizeof(msg), "too old resource version: %lld (%llu)", rv,
			       (unsigned long long)ks->floor + 1);
		pthread_mutex_unlock(&ks->mu);
		selectors_release(&w->sel);
		shp_buf_release(&w->out);
		free(w);
		return expired(ks, resp, msg);
	}
	if (rv < 0)
		initial_events(w);
	else if ((uint64_t)rv < ks->floor)
		emit_expired(w, (uint64_t)rv, ks->floor);
	else
		w->cursor = (uint64_t)rv;
	w->drop_gen = ks->drop_gen;
	w->chunk = ks->faults.watch_chunk_bytes;
	ks->watches_open++;
	pthread_mutex_unlock(&ks->mu);
	resp->watch = w;
	resp->status = 200;
	return 0;
}
