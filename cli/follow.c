/*
 * Following a task to its end: its Server-Sent Events stream (GET /tasks/ID/stream), resumed with
 * Last-Event-ID after a break; polling GET /tasks/ID/events?after=N when the server cannot
 * stream; then the finished task. In table output every event becomes one line on stderr.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "error.h"
#include "httpc.h"
#include "json.h"
#include "output.h"
#include "sse.h"
#include "util.h"

#define RECONNECT_MAX 5      /* breaks of the stream in a row before polling instead */
#define BACKOFF_FIRST_MS 250 /* then doubled, up to BACKOFF_MAX_MS */
#define BACKOFF_MAX_MS 4000
#define STREAM_IDLE_MS 45000 /* three missed keep-alives (the server sends one every 15 s) */
#define STREAM_HEALTHY_NS (60ull * 1000000000ull)
#define POLL_PAGE 500
#define POLL_FAILURES_MAX 5 /* passing failures in a row while polling */

struct follow {
	struct cli_ctx *ctx;
	char *base; /* /api/v1/tasks/ID */
	struct cli_sse sse;
	int64_t last_seen;               /* the highest event id shown */
	char resume[CLI_SSE_ID_MAX + 1]; /* the Last-Event-ID of the next connection, or "" */
	bool show;                       /* events go to stderr */
	bool contacted; /* the daemon answered once: a failure after that may be passing */
	/* The current connection. */
	bool ended;    /* the end frame arrived */
	bool unusable; /* no stream here: another status or type, or frames we cannot read */
	int events;    /* frames it delivered */
};

static void nap_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long backoff_ms(int attempt)
{
	long ms = BACKOFF_FIRST_MS;

	for (int i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

char *cli_event_line(const json_t *event)
{
	const char *at = shp_json_str(event, "created_at");
	const char *type = shp_json_str(event, "type");
	const char *msg = shp_json_str(event, "message");
	const json_t *step = json_object_get(event, "step_index");
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char *kind = cli_text_sanitize(type && type[0] ? type : "event");
	char when[16] = "--:--:--";
	struct tm tm;
	int64_t t;
	time_t tt;

	if (at && cli_parse_time(at, &t) == 0) {
		tt = (time_t)t;
		if (localtime_r(&tt, &tm))
			(void)strftime(when, sizeof(when), "%H:%M:%S", &tm);
	}
	if (msg && msg[0])
		text = cli_text_sanitize(msg);
	else if (json_is_integer(step))
		text = xasprintf("step %" JSON_INTEGER_FORMAT, json_integer_value(step));
	if (!text)
		return xasprintf("%s %s", when, kind);
	return xasprintf("%s %-13s %s", when, kind, text);
}

/* An event, unless it was shown already (a reconnection or a poll may repeat it). */
static void show_event(struct follow *f, const json_t *event)
{
	int64_t id = shp_json_int(event, "id", 0);
	_cleanup_free_ char *line = NULL;

	if (id > 0 && id <= f->last_seen)
		return;
	if (id > f->last_seen)
		f->last_seen = id;
	if (!f->show)
		return;
	line = cli_event_line(event);
	fprintf(stderr, "%s\n", line);
}

/* Resume after the stream's last id when it can travel in a header, else the last one shown. */
static void set_resume(struct follow *f)
{
	const char *id = f->sse.last_id;
	bool ok = id[0] != '\0';

	for (const char *p = id; *p && ok; p++)
		ok = *p >= 0x20 && *p < 0x7f;
	if (ok)
		(void)snprintf(f->resume, sizeof(f->resume), "%s", id);
	else if (f->last_seen > 0)
		(void)snprintf(f->resume, sizeof(f->resume), "%" PRId64, f->last_seen);
}

static int on_event(void *arg, const struct cli_sse_event *ev)
{
	struct follow *f = arg;
	_cleanup_(json_decrefp) json_t *j = NULL;

	f->events++;
	if (strcmp(ev->event, SHP_SSE_EVENT_END) == 0) {
		f->ended = true;
		return 1;
	}
	j = shp_json_parse(ev->data, ev->data_len, SHP_API_JSON_DEPTH_MAX, NULL);
	if (json_is_object(j)) {
		show_event(f, j);
	} else if (f->ctx->verbose) {
		_cleanup_free_ char *name = cli_text_sanitize(ev->event);

		fprintf(stderr, "ignoring a '%s' event that is not a JSON object\n", name);
	}
	return 0;
}

static bool is_event_stream(const char *type)
{
	size_t n = strlen(SHP_SSE_CONTENT_TYPE);

	return strncasecmp(type, SHP_SSE_CONTENT_TYPE, n) == 0 &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

static int on_head(void *arg, const struct shp_httpc_response *resp, struct shp_error *err)
{
	struct follow *f = arg;

	f->contacted = true;
	if (resp->status == 200 && is_event_stream(resp->content_type))
		return 0;
	if (f->ctx->verbose)
		fprintf(stderr, "no event stream (HTTP %ld, '%s'): polling instead\n", resp->status,
			resp->content_type);
	f->unusable = true;
	return 1;
}

static int on_data(void *arg, const char *data, size_t len, struct shp_error *err)
{
	struct follow *f = arg;
	int r = cli_sse_feed(&f->sse, data, len, on_event, f, err);

	if (r < 0) {
		/* Only the parser fails: a frame over the cap, a broken id. Polling still works. */
		if (f->ctx->verbose)
			fprintf(stderr, "cannot read the event stream (%s): polling instead\n",
				err ? err->msg : "");
		f->unusable = true;
	}
	return r;
}

/* One connection to the stream, read until it ends, breaks or turns out unusable. */
static int stream_once(struct follow *f, struct shp_error *err)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *path = xasprintf("%s/stream", f->base);
	_cleanup_free_ char *last = NULL;
	const char *headers[3] = {"Cache-Control: no-cache", NULL, NULL};
	long idle = f->ctx->timeout_ms > STREAM_IDLE_MS ? f->ctx->timeout_ms : STREAM_IDLE_MS;
	struct shp_httpc_stream s = {
		.path = path,
		.accept = SHP_SSE_CONTENT_TYPE,
		.headers = headers,
		.idle_timeout_ms = idle,
		.on_head = on_head,
		.on_data = on_data,
		.arg = f,
	};

	shp_httpc_response_init(&resp);
	if (f->resume[0]) {
		last = xasprintf("%s: %s", SHP_HDR_LAST_EVENT_ID, f->resume);
		headers[1] = last;
	}
	cli_sse_reset(&f->sse);
	f->ended = f->unusable = false;
	f->events = 0;
	return shp_httpc_stream(f->ctx->http, &s, &resp, err);
}

/* 0 when the task ended on the stream, 1 when polling must take over. */
static int follow_stream(struct follow *f)
{
	int breaks = 0;

	for (;;) {
		struct shp_error e = SHP_ERROR_INIT;
		uint64_t start = shp_now_monotonic_ns();
		int r = stream_once(f, &e);

		if (f->ended)
			return 0;
		if (f->unusable)
			return 1;
		/* A connection that brought events, or lasted (the server ends quiet ones), was
		 * fine. */
		if (f->events > 0 || shp_now_monotonic_ns() - start >= STREAM_HEALTHY_NS)
			breaks = 0;
		/* Refused: the daemon is gone for now; polling reports it if it stays away. */
		if (r < 0 && e.code == SHP_E_UNREACHABLE)
			return 1;
		if (++breaks > RECONNECT_MAX) {
			if (f->ctx->verbose)
				fprintf(stderr,
					"the event stream keeps breaking: polling instead\n");
			return 1;
		}
		set_resume(f);
		if (f->ctx->verbose)
			fprintf(stderr, "the event stream broke (%s); reconnecting in %ld ms\n",
				r < 0 ? e.msg : "closed before the task ended", backoff_ms(breaks));
		nap_ms(backoff_ms(breaks));
	}
}

static bool is_passing(enum shp_errc code)
{
	return code == SHP_E_UNREACHABLE || code == SHP_E_TIMEOUT || code == SHP_E_PROTO ||
	       code == SHP_E_UNAVAIL;
}

/* A failure that was retried away must not be reported with a later one. */
static void forget_error(struct cli_ctx *ctx)
{
	shp_error_clear(&ctx->err);
	json_decref(ctx->error_body);
	ctx->error_body = NULL;
}

static int take_events(struct follow *f, const json_t *page, bool *ret_done)
{
	const json_t *items = json_object_get(page, "items");
	const json_t *done = json_object_get(page, "done");

	if (!json_is_array(items) || !json_is_boolean(done))
		return shp_error_set(&f->ctx->err, SHP_E_PROTO,
				     "unexpected answer from shepherdd: not a page of events");
	for (size_t i = 0; i < json_array_size(items); i++)
		if (json_is_object(json_array_get(items, i)))
			show_event(f, json_array_get(items, i));
	if (shp_json_int(page, "last_event_id", 0) > f->last_seen)
		f->last_seen = shp_json_int(page, "last_event_id", 0);
	*ret_done = json_is_true(done);
	return (int)json_array_size(items);
}

static int follow_poll(struct follow *f)
{
	int failures = 0;

	for (;;) {
		_cleanup_(json_decrefp) json_t *page = NULL;
		_cleanup_free_ char *path = xasprintf("%s/events?after=%" PRId64 "&limit=%d",
						      f->base, f->last_seen, POLL_PAGE);
		bool done = false;
		int r = cli_call(f->ctx, "GET", path, NULL, &page);

		if (r < 0) {
			if (!f->contacted || !is_passing(f->ctx->err.code) ||
			    ++failures > POLL_FAILURES_MAX)
				return r;
			if (f->ctx->verbose)
				fprintf(stderr, "polling failed (%s); again in %ld ms\n",
					f->ctx->err.msg, backoff_ms(failures));
			nap_ms(backoff_ms(failures));
			continue;
		}
		forget_error(f->ctx);
		failures = 0;
		f->contacted = true;
		r = take_events(f, page, &done);
		if (r < 0 || done)
			return r < 0 ? r : 0;
		if (r < POLL_PAGE)
			nap_ms(CLI_FOLLOW_POLL_MS);
	}
}

int cli_follow_task(struct cli_ctx *ctx, const char *id, json_t **ret_task)
{
	struct follow f = {
		.ctx = ctx,
		.base = cli_path(SHP_ROUTE_TASKS, id),
		.show = !ctx->quiet &&
			(ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE),
	};
	int r;

	cli_sse_init(&f.sse, CLI_SSE_FRAME_MAX);
	r = cli_connect(ctx);
	if (r == 0)
		r = follow_stream(&f);
	if (r == 1)
		r = follow_poll(&f);
	if (r == 0)
		r = cli_call(ctx, "GET", f.base, NULL, ret_task);
	cli_sse_release(&f.sse);
	free(f.base);
	return r;
}
