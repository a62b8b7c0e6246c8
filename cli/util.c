/*
 * Small CLI helpers: allocation that aborts on OOM (a command line tool has nothing better to
 * do), messages on stderr, and the "did you mean" suggestions.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "error.h"
#include "i18n.h"
#include "yaml.h"

static _Noreturn void out_of_memory(void)
{
	fputs("shepherd: fatal: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		out_of_memory();
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n ? n : 1, size ? size : 1);

	if (!q)
		out_of_memory();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		out_of_memory();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory();
	return s;
}

static void xbuf_check(int r)
{
	if (r == -SHP_E_LIMIT) {
		fputs("shepherd: fatal: text larger than the buffer limit\n", stderr);
		abort();
	}
	if (r < 0)
		out_of_memory();
}

void xbuf_add(struct shp_buf *b, const char *s)
{
	xbuf_check(shp_buf_add(b, s));
}

void xbuf_addn(struct shp_buf *b, const void *data, size_t n)
{
	xbuf_check(shp_buf_addn(b, data, n));
}

void xbuf_addf(struct shp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = shp_buf_vaddf(b, fmt, ap);
	va_end(ap);
	xbuf_check(r);
}

int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = shp_error_vset(&ctx->err, SHP_E_USAGE, fmt, ap);
	va_end(ap);
	ctx->usage_hint = true;
	return r;
}

void cli_warn(const struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->quiet)
		return;
	fputs("shepherd: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_note(const struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	if (ctx->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

size_t cli_edit_distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	_cleanup_free_ size_t *d = xcalloc((n + 1) * (m + 1), sizeof(*d));
	size_t r;

#define D(i, j) d[(i) * (m + 1) + (j)]
	for (size_t i = 0; i <= n; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= m; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = D(i - 1, j) + 1;

			if (D(i, j - 1) + 1 < best)
				best = D(i, j - 1) + 1;
			if (D(i - 1, j - 1) + cost < best)
				best = D(i - 1, j - 1) + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    D(i - 2, j - 2) + 1 < best)
				best = D(i - 2, j - 2) + 1;
			D(i, j) = best;
		}
	}
	r = D(n, m);
#undef D
	return r;
}

const char *cli_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL, *prefix_of = NULL;
	size_t best_d = 3, wlen = strlen(word);
	int prefixes = 0;

	for (size_t i = 0; i < n; i++) {
		size_t d = cli_edit_distance(word, candidates[i]);

		/* Two edits of a one- or two-letter word can turn it into anything. */
		if (d < best_d && d < wlen) {
			best = candidates[i];
			best_d = d;
		}
		if (wlen >= 2 && strncmp(word, candidates[i], wlen) == 0) {
			prefix_of = candidates[i];
			prefixes++;
		}
	}
	if (best)
		return best;
	return prefixes == 1 ? prefix_of : NULL;
}

int cli_read_yaml_object(struct cli_ctx *ctx, const char *path, size_t max, const char *what,
			 json_t **ret)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(max);
	_cleanup_fclose_ FILE *f = strcmp(path, "-") == 0 ? NULL : fopen(path, "re");
	FILE *in = strcmp(path, "-") == 0 ? stdin : f;
	char chunk[8192];
	size_t n;
	json_t *j;

	if (!in)
		return shp_error_errno(&ctx->err, errno, _("cannot open '%s'"), path);
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (shp_buf_addn(&b, chunk, n) < 0)
			return shp_error_set(&ctx->err, SHP_E_LIMIT,
					     _("'%s' is larger than %zu bytes"), path, max);
	if (ferror(in))
		return shp_error_errno(&ctx->err, errno, _("cannot read '%s'"), path);
	j = shp_yaml_to_json(b.buf, b.len, SHP_API_JSON_DEPTH_MAX, &ctx->err);
	if (!j)
		return shp_error_prefix(&ctx->err, "%s", path);
	if (!json_is_object(j)) {
		json_decref(j);
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("'%s' is not %s"), path, what);
	}
	*ret = j;
	return 0;
}
