/*
 * A task's progress events over a WebSocket: GET /api/v1/tasks/{id}/stream upgraded with the
 * subprotocol events.shepherd.io sends what the Server-Sent Events stream sends, one JSON text
 * frame per event, resumable after an id (Last-Event-ID or ?after=). The session polls the
 * events on a pooled connection it holds only while it queries, never while it writes.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

#define WS_POLL_MS 250
#define WS_PAGE 100
#define WS_LIFETIME_NS (3600ull * 1000000000ull) /* then the client resumes with ?after= */

struct task_stream {
	struct shd_daemon *d;
	int64_t exec_id;
	int64_t last_id;
};

/* One frame's text: {"event": type, "id": id, "data": ev}, or the end frame with the task. */
static char *frame_text(const char *type, const json_t *id, json_t *data)
{
	json_auto_t *f = json_pack("{s:s,s:O*,s:O}", "event", type, "id", id, "data", data);

	return f ? json_dumps(f, JSON_COMPACT) : NULL;
}

/* The frames of one round (the new events, and the end frame when the task is done). */
static int collect(PGconn *db, struct task_stream *s, json_t *frames, bool *ret_end)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *page = shd_exec_events(db, s->exec_id, s->last_id, WS_PAGE, &err);
	json_t *ev;
	size_t i;

	if (!page)
		return err.code == SHP_E_NOTFOUND ? (*ret_end = true, 0) : -(int)err.code;
	json_array_foreach(json_object_get(page, SHP_API_FIELD_ITEMS), i, ev)
	{
		const char *type = json_string_value(json_object_get(ev, "type"));
		char *t = frame_text(type ? type : "event", json_object_get(ev, "id"), ev);
		if (!t || json_array_append_new(frames, json_string_nocheck(t)) < 0) {
			free(t);
			return -SHP_E_NOMEM;
		}
		free(t);
		s->last_id = json_integer_value(json_object_get(ev, "id"));
	}
	if (json_is_true(json_object_get(page, "done"))) {
		json_auto_t *task = shd_exec_get(db, s->exec_id, false, &err);
		_cleanup_free_ char *t = task ? frame_text(SHP_SSE_EVENT_END, NULL, task) : NULL;
		if (!t)
			return task ? -SHP_E_NOMEM : -(int)err.code;
		*ret_end = true;
		return json_array_append_new(frames, json_string_nocheck(t)) < 0 ? -SHP_E_NOMEM
										 : (int)i;
	}
	return (int)i;
}

/* One round: query on a borrowed connection, then write. > 0 a full page (go on at once). */
static int round_trip(struct shd_ws_conn *c, struct task_stream *s, bool *ret_end)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *frames = json_array();
	PGconn *db = shd_dbpool_get(s->d->pool, &err);
	json_t *f;
	size_t i;
	int n;

	if (!db)
		return 0; /* the pool is busy: next round */
	n = frames ? collect(db, s, frames, ret_end) : -SHP_E_NOMEM;
	shd_dbpool_put(s->d->pool, db);
	if (n < 0) {
		log_warn("task %" PRId64 " event stream: %s", s->exec_id,
			 shp_errc_to_string((enum shp_errc) - n));
		return 0;
	}
	json_array_foreach(frames, i, f)
	{
		const char *t = json_string_value(f);
		if (shd_ws_conn_write(c, SHD_WS_TEXT, t, json_string_length(f), &err) < 0)
			return -1;
	}
	return n >= WS_PAGE;
}

static void stream_session(struct shd_ws_conn *c, void *cls)
{
	struct task_stream *s = cls;
	uint64_t opened = shp_now_monotonic_ns();
	char sink[256];

	for (;;) {
		struct shp_error e = SHP_ERROR_INIT;
		bool end = false;
		unsigned op;
		long n;
		int r = round_trip(c, s, &end);

		if (r < 0 || end)
			return;
		if (shp_now_monotonic_ns() - opened > WS_LIFETIME_NS) {
			shd_ws_conn_close(c, SHP_WS_CLOSE_NORMAL, "stream lifetime reached");
			return;
		}
		if (r > 0)
			continue;
		/* the client sends nothing but control frames; its CLOSE ends the stream */
		n = shd_ws_conn_read(c, sink, sizeof(sink), &op, WS_POLL_MS, &e);
		if (n == 0 || (n < 0 && e.code != SHP_E_TIMEOUT))
			return;
	}
}

int shd_api_tasks_stream_ws(struct shd_req *req, struct shd_resp *resp, int64_t exec_id,
			    int64_t after_id, struct shp_error *err)
{
	struct task_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	s->d = req->d;
	s->exec_id = exec_id;
	s->last_id = after_id;
	return shd_ws_accept(req, resp, SHP_WS_PROTOCOL_EVENTS, stream_session, s, free, err);
}
