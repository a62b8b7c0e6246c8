/*
 * Watches: one streamed GET on a handle of its own, its body split into newline-delimited JSON
 * events (an event may span chunks, a chunk may hold several), each parsed and handed to the
 * caller; the in-stream ERROR event and HTTP 410 for a resourceVersion that is too old; the stop
 * flag checked from curl's progress callback, which runs at least once a second.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "k8s-internal.h"
#include "k8s.h"
#include "util.h"

#define ERROR_BODY_MAX (64u * 1024) /* the Status of a refused watch */

/* ---- the line splitter ---------------------------------------------------------------------- */

void shd_ndjson_init(struct shd_ndjson *s, size_t max)
{
	s->line = calloc(1, sizeof(*s->line));
	if (s->line)
		shp_buf_init(s->line, max + 1);
	s->max = max;
}

void shd_ndjson_release(struct shd_ndjson *s)
{
	if (s->line) {
		shp_buf_release(s->line);
		free(s->line);
	}
	s->line = NULL;
}

bool shd_ndjson_has_partial(const struct shd_ndjson *s)
{
	return s->line && s->line->len > 0;
}

static int emit(struct shd_ndjson *s, const char *line, size_t len, shd_ndjson_fn fn, void *ud)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > s->max)
		return -SHP_E_LIMIT;
	return len > 0 ? fn(ud, line, len) : 0;
}

int shd_ndjson_feed(struct shd_ndjson *s, const char *data, size_t len, shd_ndjson_fn fn, void *ud)
{
	if (!s->line)
		return -SHP_E_NOMEM;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		int rc;

		if (!nl) /* keep the partial line for the next chunk */
			return shp_buf_addn(s->line, data, n) < 0 ? -SHP_E_LIMIT : 0;
		if (s->line->len == 0) {
			rc = emit(s, data, n, fn, ud); /* the whole line is in this chunk */
		} else {
			if (shp_buf_addn(s->line, data, n) < 0)
				return -SHP_E_LIMIT;
			rc = emit(s, s->line->buf, s->line->len, fn, ud);
			shp_buf_reset(s->line);
		}
		if (rc < 0)
			return rc;
		data += n + 1;
		len -= n + 1;
	}
	return 0;
}

/* ---- the watch ------------------------------------------------------------------------------ */

struct watch {
	struct shd_k8s_xfer x; /* x.body holds a refused watch's Status */
	CURL *h;
	struct shd_ndjson lines;
	shd_k8s_event_fn fn;
	void *ud;
	const atomic_bool *stop;
	bool streaming; /* a 2xx answer: the body is events */
	bool expired;   /* ERROR 410 in the stream */
	bool stopped;   /* fn or *stop ended it */
	int failed;     /* < 0: what ended it */
	struct shp_error err;
};

/* An ERROR event: 410 means list again; anything else is a failure the caller sees. */
static int error_event(struct watch *w, const json_t *obj)
{
	_cleanup_free_ char *text = json_dumps(obj, JSON_COMPACT);
	json_int_t code = json_integer_value(json_object_get(obj, "code"));

	if (code == 410) {
		w->expired = true;
		return -1;
	}
	w->failed = shd_k8s_error(code >= 300 ? (long)code : 500, text, text ? strlen(text) : 0,
				  NULL, NULL, &w->err);
	(void)shp_error_prefix(&w->err, "watch of cluster '%s'", w->x.k->name);
	return -1;
}

static int on_line(void *ud, const char *line, size_t len)
{
	struct watch *w = ud;
	json_auto_t *ev = shp_json_parse(line, len, SHD_K8S_JSON_DEPTH, &w->err);
	const char *type = json_string_value(json_object_get(ev, "type"));
	const json_t *obj = json_object_get(ev, "object");

	if (!ev) {
		w->err.code = SHP_E_PROTO;
		w->failed =
			shp_error_prefix(&w->err, "watch event from cluster '%s'", w->x.k->name);
		return -1;
	}
	if (!type || !json_is_object(obj)) {
		w->failed = shp_error_set(&w->err, SHP_E_PROTO,
					  "watch event from cluster '%s' without type or object",
					  w->x.k->name);
		return -1;
	}
	if (strcmp(type, "ERROR") == 0)
		return error_event(w, obj);
	if (w->fn(w->ud, type, obj) < 0) {
		w->stopped = true;
		return -1;
	}
	return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct watch *w = ud;
	size_t len = size * n;
	int rc;

	if (!w->streaming) {
		(void)curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->x.status);
		w->streaming = w->x.status >= 200 && w->x.status < 300;
	}
	if (!w->streaming)
		return shp_buf_addn(&w->x.body, p, len) < 0 ? 0 : len;
	rc = shd_ndjson_feed(&w->lines, p, len, on_line, w);
	if (rc == -SHP_E_LIMIT || rc == -SHP_E_NOMEM)
		w->failed = shp_error_set(&w->err, rc == -SHP_E_LIMIT ? SHP_E_LIMIT : SHP_E_NOMEM,
					  "a watch event from cluster '%s' is longer than %u bytes",
					  w->x.k->name, SHD_K8S_LINE_MAX);
	return rc < 0 ? 0 : len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct watch *w = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	if (w->stop && atomic_load(w->stop)) {
		w->stopped = true;
		return 1;
	}
	return 0;
}

static void set_callbacks(struct watch *w)
{
	(void)curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, on_data);
	(void)curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	(void)curl_easy_setopt(w->h, CURLOPT_HEADERFUNCTION, shd_k8s_on_header);
	(void)curl_easy_setopt(w->h, CURLOPT_HEADERDATA, &w->x);
	(void)curl_easy_setopt(w->h, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(w->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	(void)curl_easy_setopt(w->h, CURLOPT_XFERINFODATA, w);
}

/* What ended the stream, in the order of the contract. */
static int outcome(struct watch *w, CURLcode cc, const char *errbuf, long left,
		   struct shp_error *err)
{
	struct shd_k8s *k = w->x.k;

	if (w->expired)
		return SHD_K8S_EXPIRED;
	if (w->failed < 0) {
		if (err)
			*err = w->err;
		return w->failed;
	}
	if (w->stopped)
		return 0;
	if (!w->streaming) {
		long code = 0;

		/* a 2xx whose stream ended before its first event is a stream all the same */
		if (curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
		    code >= 200 && code < 300) {
			w->streaming = true;
			w->x.status = code;
		}
	}
	if (!w->streaming && w->x.status == 410)
		return SHD_K8S_EXPIRED;
	if (cc == CURLE_OK && !w->streaming)
		return shd_k8s_error(w->x.status, w->x.body.buf, w->x.body.len,
				     w->x.retry_after[0] ? w->x.retry_after : NULL, NULL, err);
	if (cc == CURLE_OPERATION_TIMEDOUT && w->streaming)
		return 0;                   /* the caller's deadline: like a server-side timeout */
	if (cc != CURLE_OK && w->streaming) /* reachable, but the stream was cut */
		return shp_error_set(err, SHP_E_UNAVAIL,
				     "the watch stream from cluster '%s' broke: %s", k->name,
				     errbuf[0] ? errbuf : curl_easy_strerror(cc));
	if (cc != CURLE_OK)
		return shd_k8s_transport_error(k, cc, errbuf, left, err);
	return 0;
}

int shd_k8s_watch(struct shd_k8s *k, const char *path, shd_k8s_event_fn fn, void *ud,
		  const atomic_bool *stop, uint64_t deadline_ns, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf url = SHP_BUF_INIT(64 * 1024);
	struct watch w = {.x = {.k = k, .body = SHP_BUF_INIT(ERROR_BODY_MAX)},
			  .fn = fn,
			  .ud = ud,
			  .stop = stop,
			  .err = SHP_ERROR_INIT};
	struct curl_slist *hdrs = NULL, *connect_to = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	uint64_t now = shp_now_monotonic_ns();
	long left = deadline_ns > now ? (long)((deadline_ns - now) / 1000000u) : 0;
	CURLcode cc;
	int rc;

	if (left <= 0)
		return shp_error_set(err, SHP_E_TIMEOUT, "the deadline passed before the watch");
	w.h = curl_easy_init();
	shd_ndjson_init(&w.lines, SHD_K8S_LINE_MAX);
	hdrs = shd_k8s_headers(k, NULL, false);
	if (k->connect_to)
		connect_to = curl_slist_append(NULL, k->connect_to);
	if (!w.h || !w.lines.line || !hdrs || (k->connect_to && !connect_to)) {
		rc = shp_error_set(err, SHP_E_NOMEM, "out of memory");
	} else if ((rc = shd_k8s_setup_handle(k, w.h, err)) == 0) {
		(void)shd_k8s_prepare(k, w.h, "GET", path, NULL, 0, left, &url);
		(void)curl_easy_setopt(w.h, CURLOPT_HTTPHEADER, hdrs);
		(void)curl_easy_setopt(w.h, CURLOPT_CONNECT_TO, connect_to);
		(void)curl_easy_setopt(w.h, CURLOPT_ERRORBUFFER, errbuf);
		set_callbacks(&w);
		cc = curl_easy_perform(w.h);
		if (!w.streaming)
			(void)curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.x.status);
		rc = outcome(&w, cc, errbuf, left, err);
	}
	if (w.h)
		curl_easy_cleanup(w.h);
	shd_k8s_free_headers(hdrs);
	curl_slist_free_all(connect_to);
	shd_ndjson_release(&w.lines);
	shp_buf_release(&w.x.body);
	return rc;
}
