/*
 * The CLI's calls to shepherdd: one lazily opened connection per invocation, an Idempotency-Key
 * on every mutating request (reused by the retries of a 429/503 that asked for a short wait),
 * list paging through next_cursor, and the small builders for paths, queries and bodies.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "util.h"

#define RETRY_WAIT_MAX 60 /* seconds: a longer Retry-After is the caller's decision */
#define RETRY_ATTEMPTS 5

/*
 * Wait out a 429/503's Retry-After with a countdown on stderr (one line rewritten on a
 * terminal, else one line); SHEPHERD_NO_RETRY=1 turns the retries off.
 */
static bool retry_wait(struct cli_ctx *ctx, long seconds, int attempt)
{
	const char *off = getenv("SHEPHERD_NO_RETRY");
	bool tty = isatty(STDERR_FILENO);

	if ((off && off[0] && strcmp(off, "0") != 0) || seconds < 0 || seconds > RETRY_WAIT_MAX ||
	    attempt >= RETRY_ATTEMPTS)
		return false;
	if (!tty && !ctx->quiet)
		fprintf(stderr, _("shepherd: %s; retrying in %lds\n"), ctx->err.msg, seconds);
	for (long left = seconds; left > 0; left--) {
		if (tty && !ctx->quiet) {
			fputc('\r', stderr); /* the countdown overwrites itself */
			fprintf(stderr, _("shepherd: busy, retrying in %lds... "), left);
		}
		if (!cli_nap_ms(1000))
			break; /* Ctrl-C in the shell: the caller reports it */
	}
	if (tty && !ctx->quiet)
		fprintf(stderr, "\r\033[K");
	return true;
}

int cli_connect(struct cli_ctx *ctx)
{
	struct cli_config *cfg = &ctx->config;
	struct shp_httpc_config hc = {
		.socket_path = cfg->socket.value,
		.server_url = cfg->server.value,
		.token = cfg->token.value,
		.cacert = cfg->cacert.value,
		.cert = cfg->cert.value,
		.key = cfg->key.value,
		.timeout_ms = ctx->timeout_ms,
		.verbose = ctx->verbose,
		.interrupt = cli_interrupt_flag(),
	};

	if (ctx->http)
		return 0;
	if (ctx->verbose) {
		if (hc.server_url)
			fprintf(stderr, _("using server %s (from %s)\n"), hc.server_url,
				cfg->server.origin);
		else
			fprintf(stderr, _("using socket %s (from %s)\n"), hc.socket_path,
				cfg->socket.origin);
		if (hc.token)
			fprintf(stderr, _("using a bearer token (from %s)\n"), cfg->token.origin);
	}
	ctx->http = shp_httpc_new(&hc, &ctx->err);
	return ctx->http ? 0 : -(int)ctx->err.code;
}

static bool is_mutating(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static int parse_answer(struct cli_ctx *ctx, const struct shp_httpc_response *resp, json_t **ret)
{
	struct shp_error perr = SHP_ERROR_INIT;
	json_t *j;

	if (resp->body.len == 0) {
		*ret = NULL;
		return 0;
	}
	j = shp_json_parse(resp->body.buf, resp->body.len, SHP_API_JSON_DEPTH_MAX, &perr);
	if (!j)
		return shp_error_set(&ctx->err, SHP_E_PROTO, _("invalid JSON from shepherdd: %s"),
				     perr.msg);
	*ret = j;
	return 0;
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
	     json_t **ret)
{
	_cleanup_(shp_httpc_response_release) struct shp_httpc_response resp;
	_cleanup_free_ char *text = NULL;
	char key[33];
	int r;

	shp_httpc_response_init(&resp);
	r = cli_connect(ctx);
	if (r < 0)
		return r;
	if (is_mutating(method)) {
		r = shp_random_hex(16, key, &ctx->err);
		if (r < 0)
			return r;
	}
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return shp_error_set(&ctx->err, SHP_E_NOMEM,
					     _("cannot serialise the request"));
	}
	for (int attempt = 1;; attempt++) {
		r = shp_httpc_request(ctx->http, method, path, text, text ? strlen(text) : 0,
				      is_mutating(method) ? key : NULL, &resp, &ctx->err);
		if (r < 0)
			return r;
		if (resp.status >= 200 && resp.status <= 299)
			return parse_answer(ctx, &resp, ret);
		json_decref(ctx->error_body);
		ctx->error_body = NULL;
		r = shp_httpc_response_error(&resp, &ctx->error_body, &ctx->err);
		if ((resp.status != 429 && resp.status != 503) ||
		    !retry_wait(ctx, resp.retry_after, attempt))
			return r;
		if (cli_interrupted())
			return cli_interrupt_error(ctx);
	}
}

void cli_query_add(struct shp_buf *query, const char *key, const char *value)
{
	if (!value)
		return;
	xbuf_addf(query, "%s%s=", query->len ? "&" : "", key);
	/* Fails only past CLI_BUF_MAX or without memory: nothing sensible is left to do. */
	if (shp_httpc_escape(value, query) < 0)
		abort();
}

char *cli_path(const char *route, const char *segment)
{
	struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	char *s;

	xbuf_addf(&b, "%s/", route);
	if (shp_httpc_escape(segment, &b) < 0)
		abort();
	s = shp_buf_detach(&b, NULL);
	if (!s)
		abort();
	return s;
}

int cli_body_set(struct cli_ctx *ctx, json_t *obj, const char *key, const char *value)
{
	json_t *s;

	if (!value)
		return 0;
	s = json_string(value);
	if (!s)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("the value of '%s' is not valid UTF-8"), key);
	if (json_object_set_new(obj, key, s) < 0)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	return 0;
}

int cli_parse_limit(struct cli_ctx *ctx, const char *s, long *ret)
{
	long long v;
	struct shp_error perr = SHP_ERROR_INIT;

	if (shp_parse_int(s, 1, CLI_LIST_MAX, &v, &perr) < 0)
		return cli_usage_error(ctx,
				       _("invalid value '%s' for '--limit' (expected 1 to %d)"), s,
				       CLI_LIST_MAX);
	*ret = (long)v;
	return 0;
}

/* One page: checks the shape and moves its items into all. */
static int take_page(struct cli_ctx *ctx, json_t *page, json_t *all, long cap,
		     const char **ret_cursor)
{
	json_t *items = json_object_get(page, SHP_API_FIELD_ITEMS);
	json_t *cursor = json_object_get(page, SHP_API_FIELD_NEXT_CURSOR);
	if (!json_is_array(items) || (cursor && !json_is_null(cursor) && !json_is_string(cursor)))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a list"));
	for (size_t i = 0; i < json_array_size(items); i++) {
		if ((long)json_array_size(all) >= cap)
			break;
		if (json_array_append(all, json_array_get(items, i)) < 0)
			return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	}
	*ret_cursor = json_is_string(cursor) && json_string_value(cursor)[0]
			      ? json_string_value(cursor)
			      : NULL;
	if (*ret_cursor && json_array_size(items) == 0)
		return shp_error_set(
			&ctx->err, SHP_E_PROTO,
			_("unexpected answer from shepherdd: an empty page with a cursor"));
	return 0;
}

int cli_list(struct cli_ctx *ctx, const char *route, const char *query, long limit,
	     const char *plural, json_t **ret_items)
{
	return cli_list_full(ctx, route, query, limit, plural, ret_items, NULL);
}

int cli_list_full(struct cli_ctx *ctx, const char *route, const char *query, long limit,
		  const char *plural, json_t **ret_items, json_t **ret_first_page)
{
	_cleanup_(json_decrefp) json_t *all = json_array();
	_cleanup_(json_decrefp) json_t *first = NULL;
	_cleanup_(json_decrefp) json_t *page = NULL;
	_cleanup_free_ char *cursor = NULL;
	long cap = limit > 0 ? limit : CLI_LIST_MAX;
	const char *next = NULL;
	int r;

	if (!all)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	for (;;) {
		_cleanup_(shp_buf_releasep) struct shp_buf path = SHP_BUF_INIT(CLI_BUF_MAX);
		long want = cap - (long)json_array_size(all);
		struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);

		xbuf_add(&q, query ? query : "");
		xbuf_addf(&q, "%slimit=%ld", q.len ? "&" : "",
			  want < SHP_API_PAGE_MAX ? want : (long)SHP_API_PAGE_MAX);
		cli_query_add(&q, "cursor", cursor);
		xbuf_addf(&path, "%s?%s", route, q.buf);
		shp_buf_release(&q);

		json_decref(TAKE_PTR(page));
		r = cli_call(ctx, "GET", path.buf, NULL, &page);
		if (r < 0)
			return r;
		r = take_page(ctx, page, all, cap, &next);
		if (r < 0)
			return r;
		if (!first)
			first = json_incref(page);
		if (!next || (long)json_array_size(all) >= cap)
			break;
		if (cursor && strcmp(cursor, next) == 0)
			return shp_error_set(
				&ctx->err, SHP_E_PROTO,
				_("unexpected answer from shepherdd: the same cursor twice"));
		free(cursor);
		cursor = xstrdup(next);
	}
	if (next && limit <= 0)
		cli_warn(ctx, _("showing the first %ld %s only; narrow the list with a filter"),
			 cap, cli_tr(plural));
	*ret_items = TAKE_PTR(all);
	if (ret_first_page)
		*ret_first_page = TAKE_PTR(first);
	return 0;
}

static int named_call(int argc, char **argv, struct cli_ctx *ctx, const char *method,
		      const char *route, json_t **ret)
{
	_cleanup_free_ char *path = NULL;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = cli_path(route, argv[optind]);
	return cli_call(ctx, method, path, NULL, ret);
}

int cli_named_show(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		   const struct cli_kind *kind)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	int r = named_call(argc, argv, ctx, "GET", route, &obj);

	return r < 0 ? r : cli_show_object(ctx, kind, obj);
}

int cli_named_delete(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		     const struct cli_kind *kind, const char *done_word)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	int r = named_call(argc, argv, ctx, "DELETE", route, &obj);

	return r < 0 ? r : cli_show_done(ctx, kind, obj, done_word);
}

int cli_filtered_list(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		      const struct cli_kind *kind, const struct cli_filter *filters, int limit_opt)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	long limit = 0;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == limit_opt) {
			r = cli_parse_limit(ctx, optarg, &limit);
			if (r < 0)
				return r;
			continue;
		}
		for (const struct cli_filter *f = filters; f && f->opt; f++)
			if (f->opt == c)
				cli_query_add(&query, f->key, f->value ? f->value : optarg);
	}
	r = cli_list(ctx, route, query.buf, limit, kind->plural, &items);
	if (r < 0)
		return r;
	return cli_show_list(ctx, kind, items);
}

int cli_delete_done(struct cli_ctx *ctx, const char *path, const struct cli_kind *kind,
		    const char *k1, const char *v1, const char *k2, const char *v2,
		    const char *what)
{
	_cleanup_(json_decrefp) json_t *gone = NULL;
	int r = cli_call(ctx, "DELETE", path, NULL, &gone);

	if (r < 0)
		return r;
	if (!gone)
		gone = json_pack("{s:s, s:s}", k1, v1, k2, v2);
	if (!gone)
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("the names are not valid UTF-8"));
	return cli_show_done(ctx, kind, gone, what);
}
