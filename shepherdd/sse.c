/*
 * Server-Sent Events for tasks: one hub thread with its own database connection polls the
 * progress events of every open stream and hands them to libmicrohttpd. A stream's connection
 * is suspended while it has nothing to send and resumed when the hub has queued bytes for it,
 * so no HTTP thread ever blocks. Streams are capped in number, in buffered bytes and in
 * lifetime; a client resumes a broken stream with Last-Event-ID.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "exec.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"

#define SSE_POLL_MS 200
#define SSE_KEEPALIVE_NS (15ull * 1000000000ull)
#define SSE_LIFETIME_NS (3600ull * 1000000000ull) /* then the client reconnects */
#define SSE_BUFFER_MAX (1024 * 1024)
#define SSE_PAGE 100

struct shd_sse_stream {
	struct shd_sse_hub *hub;
	struct MHD_Connection *mhd;
	int64_t exec_id;
	int64_t last_id;
	/* under hub->mu */
	struct shp_buf out; /* bytes not yet handed to MHD */
	size_t out_pos;
	bool suspended;
	bool finished; /* the end frame is queued: close once out is drained */
	bool closed;   /* MHD is done with the response */
	int refs;      /* the hub's list and MHD's response */
	uint64_t opened_ns, last_write_ns;
	struct shd_sse_stream *next;
};

struct shd_sse_hub {
	const struct shd_dbpool_config *db;
	int max_streams;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu; /* protects streams, nstreams, stop and every stream's state */
	pthread_cond_t cv;
	struct shd_sse_stream *streams;
	int nstreams;
	bool stop;
};

static void stream_unref_locked(struct shd_sse_stream *s)
{
	if (--s->refs > 0)
		return;
	shp_buf_release(&s->out);
	free(s);
}

/* MHD asks for bytes (an HTTP thread). Nothing to send: suspend until the hub resumes us. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct shd_sse_stream *s = cls;
	struct shd_sse_hub *h = s->hub;
	ssize_t n = 0;

	(void)pos;
	pthread_mutex_lock(&h->mu);
	if (s->out_pos < s->out.len) {
		size_t left = s->out.len - s->out_pos;
		n = (ssize_t)(left < max ? left : max);
		memcpy(buf, s->out.buf + s->out_pos, (size_t)n);
		s->out_pos += (size_t)n;
		if (s->out_pos == s->out.len) {
			shp_buf_reset(&s->out);
			s->out_pos = 0;
		}
	} else if (s->finished) {
		n = MHD_CONTENT_READER_END_OF_STREAM;
	} else {
		s->suspended = true;
		MHD_suspend_connection(s->mhd);
	}
	pthread_mutex_unlock(&h->mu);
	return n;
}

static void reader_free(void *cls)
{
	struct shd_sse_stream *s = cls;
	struct shd_sse_hub *h = s->hub;

	pthread_mutex_lock(&h->mu);
	s->closed = true;
	stream_unref_locked(s);
	pthread_mutex_unlock(&h->mu);
}

/* ---- the hub thread ------------------------------------------------------------------------ */

static int add_frame(struct shp_buf *b, const json_t *ev)
{
	_cleanup_free_ char *data = json_dumps(ev, JSON_COMPACT);

	if (!data)
		return -SHP_E_NOMEM;
	return shp_buf_addf(b, "id: %" JSON_INTEGER_FORMAT "\nevent: %s\ndata: %s\n\n",
			    json_integer_value(json_object_get(ev, "id")),
			    json_string_value(json_object_get(ev, "type")), data);
}

/* New bytes for one stream, built without the lock; the caller appends them under it. */
static void poll_stream(PGconn *conn, int64_t exec_id, int64_t *last_id, struct shp_buf *b,
			bool *ret_end)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *page = shd_exec_events(conn, exec_id, *last_id, SSE_PAGE, &err);
	const json_t *ev;
	size_t i;

	*ret_end = false;
	if (!page) {
		if (err.code == SHP_E_NOTFOUND)
			*ret_end = true; /* deleted under us: end the stream */
		return;
	}
	json_array_foreach(json_object_get(page, SHP_API_FIELD_ITEMS), i, ev)
	{
		if (add_frame(b, ev) < 0)
			return;
		*last_id = json_integer_value(json_object_get(ev, "id"));
	}
	if (json_is_true(json_object_get(page, "done"))) {
		json_auto_t *task = shd_exec_get(conn, exec_id, false, &err);
		_cleanup_free_ char *data = task ? json_dumps(task, JSON_COMPACT) : NULL;
		if (data &&
		    shp_buf_addf(b, "event: " SHP_SSE_EVENT_END "\ndata: %s\n\n", data) == 0)
			*ret_end = true;
	}
}

static void hub_round(struct shd_sse_hub *h, PGconn *conn)
{
	struct shd_sse_stream *list[256];
	int n = 0;

	/* take refs on a batch of live streams, then query without holding the lock */
	pthread_mutex_lock(&h->mu);
	for (struct shd_sse_stream *s = h->streams; s && n < (int)SHP_ARRAY_SIZE(list); s = s->next)
		if (!s->closed && !s->finished) {
			s->refs++;
			list[n++] = s;
		}
	pthread_mutex_unlock(&h->mu);

	for (int i = 0; i < n; i++) {
		struct shd_sse_stream *s = list[i];
		struct shp_buf b = SHP_BUF_INIT(SSE_BUFFER_MAX);
		uint64_t now = shp_now_monotonic_ns();
		int64_t last = s->last_id; /* only this thread changes last_id */
		bool end = false;

		if (conn)
			poll_stream(conn, s->exec_id, &last, &b, &end);
		if (!end && now - s->opened_ns > SSE_LIFETIME_NS)
			end = true; /* the client reconnects with Last-Event-ID */
		pthread_mutex_lock(&h->mu);
		s->last_id = last;
		if (b.len == 0 && !end && now - s->last_write_ns > SSE_KEEPALIVE_NS &&
		    shp_buf_add(&b, ": keepalive\n\n") < 0)
			end = true;
		if (b.len > 0 && shp_buf_addn(&s->out, b.buf, b.len) < 0)
			end = true; /* the client does not read: give up on it */
		if (b.len > 0)
			s->last_write_ns = now;
		if (end)
			s->finished = true;
		if (s->suspended && !s->closed && (s->out.len > s->out_pos || s->finished)) {
			s->suspended = false;
			MHD_resume_connection(s->mhd);
		}
		stream_unref_locked(s);
		pthread_mutex_unlock(&h->mu);
		shp_buf_release(&b);
	}
}

/* Drop the streams MHD is done with, and finished ones from the poll list. */
static void hub_prune(struct shd_sse_hub *h)
{
	pthread_mutex_lock(&h->mu);
	for (struct shd_sse_stream **pp = &h->streams; *pp;) {
		struct shd_sse_stream *s = *pp;
		if (s->closed || (s->finished && s->out_pos >= s->out.len && !s->suspended)) {
			*pp = s->next;
			h->nstreams--;
			stream_unref_locked(s);
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&h->mu);
}

static void *hub_main(void *arg)
{
	struct shd_sse_hub *h = arg;
	PGconn *conn = NULL;

	shp_log_ctx_set("thread", "sse");
	pthread_mutex_lock(&h->mu);
	while (!h->stop) {
		struct timespec ts;
		bool idle = h->nstreams == 0;

		(void)clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += SSE_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		if (h->stop || (idle && h->nstreams == 0))
			continue;
		pthread_mutex_unlock(&h->mu);
		if (!conn || PQstatus(conn) != CONNECTION_OK) {
			struct shp_error err = SHP_ERROR_INIT;
			if (conn)
				PQfinish(conn);
			conn = shd_db_connect(h->db, &err);
			if (!conn)
				log_warn("event streams: no database connection, retrying: %s",
					 err.msg);
		}
		hub_round(h, conn);
		hub_prune(h);
		pthread_mutex_lock(&h->mu);
	}
	pthread_mutex_unlock(&h->mu);
	if (conn)
		PQfinish(conn);
	return NULL;
}

struct shd_sse_hub *shd_sse_hub_new(const struct shd_dbpool_config *db, int max_streams,
				    struct shp_error *err)
{
	struct shd_sse_hub *h = calloc(1, sizeof(*h));

	if (!h) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	h->db = db;
	h->max_streams = max_streams > 0 ? max_streams : 64;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
		shp_error_set(err, SHP_E_INTERNAL, "starting the event stream thread failed");
		return shd_sse_hub_free(h);
	}
	h->started = true;
	return h;
}

void shd_sse_hub_close_all(struct shd_sse_hub *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	for (struct shd_sse_stream *s = h->streams; s; s = s->next) {
		s->finished = true;
		if (s->suspended && !s->closed) {
			s->suspended = false;
			MHD_resume_connection(s->mhd);
		}
	}
	pthread_mutex_unlock(&h->mu);
}

struct shd_sse_hub *shd_sse_hub_free(struct shd_sse_hub *h)
{
	if (!h)
		return NULL;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (h->started)
		(void)pthread_join(h->thread, NULL);
	/* MHD has been stopped: every response was freed; drop the hub's references */
	pthread_mutex_lock(&h->mu);
	while (h->streams) {
		struct shd_sse_stream *s = h->streams;
		h->streams = s->next;
		stream_unref_locked(s);
	}
	pthread_mutex_unlock(&h->mu);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
	return NULL;
}

struct MHD_Response *shd_sse_open(struct shd_sse_hub *h, struct MHD_Connection *mhd,
				  int64_t exec_id, int64_t after_id, struct shp_error *err)
{
	struct shd_sse_stream *s;
	struct MHD_Response *r;

	pthread_mutex_lock(&h->mu);
	if (h->nstreams >= h->max_streams || h->stop) {
		pthread_mutex_unlock(&h->mu);
		shp_error_set(err, SHP_E_RATE,
			      "too many open event streams (%d); poll the events "
			      "instead or retry later",
			      h->max_streams);
		return NULL;
	}
	pthread_mutex_unlock(&h->mu);
	s = calloc(1, sizeof(*s));
	if (!s) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	s->hub = h;
	s->mhd = mhd;
	s->exec_id = exec_id;
	s->last_id = after_id;
	s->refs = 2;
	s->opened_ns = s->last_write_ns = shp_now_monotonic_ns();
	shp_buf_init(&s->out, SSE_BUFFER_MAX);
	/* a comment first: the client sees the stream open at once */
	if (shp_buf_add(&s->out, ": stream open\n\n") < 0) {
		free(s);
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, s, reader_free);
	if (!r) {
		shp_buf_release(&s->out);
		free(s);
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_lock(&h->mu);
	s->next = h->streams;
	h->streams = s;
	h->nstreams++;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	return r;
}
