/*
 * Following a task to its end: its stream (GET /tasks/ID/stream) upgraded to a WebSocket, else
 * as Server-Sent Events, either resumed after the last event seen when it breaks; polling
 * GET /tasks/ID/events?after=N when the daemon cannot stream; then the finished task.
 * SHEPHERD_WAIT_TRANSPORT=ws|sse|poll forces one, a list of them allows those. In table output
 * the events go to stderr: one line each, or one progress line rewritten in place on a terminal.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "error.h"
#include "httpc.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "sse.h"
#include "util.h"
#include "wsc.h"

#define RECONNECT_MAX 5      /* breaks of the stream in a row before polling instead */
#define BACKOFF_FIRST_MS 250 /* then doubled, up to BACKOFF_MAX_MS */
#define BACKOFF_MAX_MS 4000
#define STREAM_IDLE_MS 45000 /* three missed keep-alives (the server sends one every 15 s) */
#define STREAM_HEALTHY_NS (60ull * 1000000000ull)
#define POLL_PAGE 500
#define POLL_FAILURES_MAX 5 /* passing failures in a row while polling */
#define WS_READ_MS 1000     /* a WebSocket read waits this long, then checks the silence */
#define WS_MESSAGE_MAX (16u << 20)

/* Which transports to try, in this order (SHEPHERD_WAIT_TRANSPORT narrows it to one). */
enum transport { TRY_WS = 1 << 0, TRY_SSE = 1 << 1, TRY_POLL = 1 << 2 };

struct follow {
	struct cli_ctx *ctx;
	char *base; /* /api/v1/tasks/ID */
	struct cli_sse sse;
	int64_t last_seen;               /* the highest event id shown */
	char resume[CLI_SSE_ID_MAX + 1]; /* the Last-Event-ID of the next connection, or "" */
	bool show;                       /* events go to stderr */
	bool live;                       /* ... as one progress line rewritten in place */
	bool line_open;                  /* the progress line is on the screen, unfinished */
	size_t width;                    /* the terminal's columns: the line is cut to fit */
	unsigned transports;             /* enum transport */
	bool told;                       /* -v said which transport carries the events */
	bool contacted; /* the daemon answered once: a failure after that may be passing */
	/* The current connection. */
	bool ended;    /* the end frame arrived */
	bool unusable; /* no stream here: another status or type, or frames we cannot read */
	int events;    /* frames it delivered */
	struct shp_error last; /* why the last transport was given up */
};

/* Sleep ms; false (ctx->err set) when Ctrl-C in the shell cut it short. */
static bool nap_ms(struct follow *f, long ms)
{
	if (cli_nap_ms(ms))
		return true;
	(void)cli_interrupt_error(f->ctx);
	return false;
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
	if (f->live) {
		size_t n = strlen(line);

		/* a line that wrapped could not be rewritten: cut it, not inside a character */
		if (n >= f->width) {
			n = f->width - 1;
			while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
				n--;
		}
		fprintf(stderr, "\r\033[K%.*s", (int)n, line);
		f->line_open = true;
	} else {
		fprintf(stderr, "%s\n", line);
	}
}

/* -v: the one line saying how the events come. */
static void tell_transport(struct follow *f, const char *how)
{
	if (!f->ctx->verbose || f->told)
		return;
	f->told = true;
	if (f->line_open)
		fputc('\n', stderr);
	f->line_open = false;
	fprintf(stderr, _("following task %s %s\n"), strrchr(f->base, '/') + 1, how);
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

		fprintf(stderr, _("ignoring a '%s' event that is not a JSON object\n"), name);
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
	if (resp->status == 200 && is_event_stream(resp->content_type)) {
		tell_transport(f, _("over Server-Sent Events"));
		return 0;
	}
	shp_error_set(&f->last, SHP_E_UNAVAIL, _("no event stream (HTTP %ld, '%s')"), resp->status,
		      resp->content_type);
	if (f->ctx->verbose && (f->transports & TRY_POLL))
		fprintf(stderr, _("%s: polling instead\n"), f->last.msg);
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
			fprintf(stderr, _("cannot read the event stream (%s): polling instead\n"),
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
		if (cli_interrupted())
			return cli_interrupt_error(f->ctx);
		if (f->unusable)
			return 1;
		/* A connection that brought events, or lasted (the server ends quiet ones), was
		 * fine. */
		if (f->events > 0 || shp_now_monotonic_ns() - start >= STREAM_HEALTHY_NS)
			breaks = 0;
		/* Refused: the daemon is gone for now; polling reports it if it stays away. */
		if (r < 0 && e.code == SHP_E_UNREACHABLE) {
			f->last = e;
			return 1;
		}
		if (++breaks > RECONNECT_MAX) {
			shp_error_set(&f->last, SHP_E_UNAVAIL,
				      _("the event stream keeps breaking"));
			if (f->ctx->verbose)
				fprintf(stderr,
					_("the event stream keeps breaking: polling instead\n"));
			return 1;
		}
		set_resume(f);
		if (f->ctx->verbose)
			fprintf(stderr, _("the event stream broke (%s); reconnecting in %ld ms\n"),
				r < 0 ? e.msg : _("closed before the task ended"),
				backoff_ms(breaks));
		if (!nap_ms(f, backoff_ms(breaks)))
			return -SHP_E_INTERRUPTED;
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
				     _("unexpected answer from shepherdd: not a page of events"));
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

	tell_transport(f, _("by polling"));
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
				fprintf(stderr, _("polling failed (%s); again in %ld ms\n"),
					f->ctx->err.msg, backoff_ms(failures));
			if (!nap_ms(f, backoff_ms(failures)))
				return -SHP_E_INTERRUPTED;
			continue;
		}
		forget_error(f->ctx);
		failures = 0;
		f->contacted = true;
		r = take_events(f, page, &done);
		if (r < 0 || done)
			return r < 0 ? r : 0;
		if (r < POLL_PAGE && !nap_ms(f, CLI_FOLLOW_POLL_MS))
			return -SHP_E_INTERRUPTED;
	}
}

/* ---- WebSocket -------------------------------------------------------------------------- */

/* One message (a JSON text frame): an event, or the end (1). */
static int ws_message(struct follow *f, const char *text, size_t len)
{
	_cleanup_(json_decrefp) json_t *j = shp_json_parse(text, len, SHP_API_JSON_DEPTH_MAX, NULL);
	const char *type = shp_json_str(j, "event");
	const json_t *data = json_object_get(j, "data");

	f->events++;
	if (type && strcmp(type, SHP_SSE_EVENT_END) == 0) {
		f->ended = true;
		return 1;
	}
	if (json_is_object(data))
		show_event(f, data);
	else if (f->ctx->verbose)
		fprintf(stderr, _("ignoring a WebSocket message that is not an event\n"));
	return 0;
}

/* Messages until the task ends, the daemon closes, or it falls silent past STREAM_IDLE_MS. */
static int ws_follow_open(struct follow *f, struct shp_wsc *w, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf msg = SHP_BUF_INIT(WS_MESSAGE_MAX);
	char chunk[16384];

	for (;;) {
		struct shp_error e = SHP_ERROR_INIT;
		unsigned op = 0;
		long n = shp_wsc_read(w, chunk, sizeof(chunk), &op, WS_READ_MS, &e);

		if (n == 0)
			return 0;
		if (n < 0 && e.code == SHP_E_TIMEOUT && shp_wsc_quiet_ms(w) < STREAM_IDLE_MS)
			continue;
		if (n < 0) {
			*err = e;
			return -(int)e.code;
		}
		if (shp_buf_addn(&msg, chunk, (size_t)n) < 0) {
			f->unusable = true;
			return shp_error_set(err, SHP_E_LIMIT,
					     _("a WebSocket message over %u bytes"),
					     WS_MESSAGE_MAX);
		}
		if (!shp_wsc_message_ended(w))
			continue;
		if (op == SHP_WS_TEXT && ws_message(f, msg.buf, msg.len) == 1)
			return 0;
		shp_buf_reset(&msg);
	}
}

/* One WebSocket, from after the last event seen. *ret_opened: the daemon switched. */
static int ws_once(struct follow *f, bool *ret_opened, struct shp_error *err)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *path =
		f->last_seen > 0 ? xasprintf("%s/stream?after=%" PRId64, f->base, f->last_seen)
				 : xasprintf("%s/stream", f->base);
	struct shp_wsc *w = NULL;
	int r;

	shp_httpc_response_init(&resp);
	f->ended = f->unusable = false;
	f->events = 0;
	r = shp_wsc_open(f->ctx->http, path, SHP_WS_PROTOCOL_EVENTS, &resp, &w, err);
	*ret_opened = r == 0;
	if (resp.status > 0)
		f->contacted = true;
	if (r < 0)
		return r;
	tell_transport(f, _("over a WebSocket"));
	r = ws_follow_open(f, w, err);
	shp_wsc_close(w);
	return r;
}

/* 0 when the task ended on the WebSocket, 1 when polling must take over, 2 to try SSE. */
static int follow_ws(struct follow *f)
{
	int breaks = 0;

	for (;;) {
		struct shp_error e = SHP_ERROR_INIT;
		uint64_t start = shp_now_monotonic_ns();
		bool opened = false;
		int r = ws_once(f, &opened, &e);

		if (f->ended)
			return 0;
		if (cli_interrupted())
			return cli_interrupt_error(f->ctx);
		if (!opened || f->unusable) {
			/* refused (sessions off or all taken, an older daemon) or unreadable */
			f->last = e;
			if (e.code == SHP_E_UNREACHABLE)
				return 1;
			if (e.code == SHP_E_NOTFOUND || e.code == SHP_E_PERM ||
			    e.code == SHP_E_UNAUTH) {
				/* no other transport would be let in either */
				f->ctx->err = e;
				return -(int)e.code;
			}
			if (f->ctx->verbose && (f->transports & TRY_SSE))
				fprintf(stderr, _("no WebSocket (%s): trying Server-Sent Events\n"),
					e.msg);
			return 2;
		}
		if (f->events > 0 || shp_now_monotonic_ns() - start >= STREAM_HEALTHY_NS)
			breaks = 0;
		if (++breaks > RECONNECT_MAX) {
			shp_error_set(&f->last, SHP_E_UNAVAIL, _("the WebSocket keeps breaking"));
			return 2;
		}
		if (f->ctx->verbose)
			fprintf(stderr, _("the WebSocket broke (%s); reconnecting in %ld ms\n"),
				r < 0 ? e.msg : _("closed before the task ended"),
				backoff_ms(breaks));
		if (!nap_ms(f, backoff_ms(breaks)))
			return -SHP_E_INTERRUPTED;
	}
}

/* ---- choosing ---------------------------------------------------------------------------- */

/*
 * SHEPHERD_WAIT_TRANSPORT: ws, sse or poll forces one, a comma-separated list ("sse,poll")
 * allows those (still tried in the order WebSocket, Server-Sent Events, polling); unset or auto
 * tries all three.
 */
static int transports(struct cli_ctx *ctx, unsigned *ret)
{
	const char *v = getenv("SHEPHERD_WAIT_TRANSPORT");
	unsigned set = 0;

	if (!v || !v[0] || strcmp(v, "auto") == 0) {
		*ret = TRY_WS | TRY_SSE | TRY_POLL;
		return 0;
	}
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");

		if ((n == 2 && strncmp(p, "ws", n) == 0) ||
		    (n == 9 && strncmp(p, "websocket", n) == 0))
			set |= TRY_WS;
		else if (n == 3 && strncmp(p, "sse", n) == 0)
			set |= TRY_SSE;
		else if (n == 4 && strncmp(p, "poll", n) == 0)
			set |= TRY_POLL;
		else
			return shp_error_set(&ctx->err, SHP_E_USAGE,
					     _("SHEPHERD_WAIT_TRANSPORT must be ws, sse, poll, a "
					       "list of them or auto, not '%s'"),
					     v);
		p += n + (p[n] == ',');
	}
	*ret = set;
	return 0;
}

/* The transports allowed could not follow the task (polling was not among them). */
static int no_transport(struct follow *f)
{
	const char *name = (f->transports & TRY_SSE) ? "Server-Sent Events" : "WebSocket";

	/* the daemon is unreachable, or this transport failed (exit 1): not the task's fault */
	shp_error_set(&f->ctx->err,
		      f->last.code == SHP_E_UNREACHABLE ? SHP_E_UNREACHABLE : SHP_E_IO,
		      _("cannot follow task %s over %s (SHEPHERD_WAIT_TRANSPORT): %s"),
		      strrchr(f->base, '/') + 1, name, f->last.msg[0] ? f->last.msg : "-");
	return -(int)f->ctx->err.code;
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

	f.live = f.show && !ctx->verbose && isatty(STDERR_FILENO);
	if (f.live) {
		struct winsize ws;

		f.width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col
										      : 80;
	}
	cli_sse_init(&f.sse, CLI_SSE_FRAME_MAX);
	r = transports(ctx, &f.transports);
	if (r == 0)
		r = cli_connect(ctx);
	if (r == 0)
		r = (f.transports & TRY_WS) ? follow_ws(&f) : 2;
	if (r == 2)
		r = (f.transports & TRY_SSE) ? follow_stream(&f) : 1;
	if (r == 1)
		r = (f.transports & TRY_POLL) ? follow_poll(&f) : no_transport(&f);
	if (f.line_open)
		fputc('\n', stderr);
	if (r == 0)
		r = cli_call(ctx, "GET", f.base, NULL, ret_task);
	cli_sse_release(&f.sse);
	free(f.base);
	return r;
}
