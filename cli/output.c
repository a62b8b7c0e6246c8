/*
 * The CLI's output formats: aligned tables fitted to the terminal, detail views, JSON with
 * sorted keys, YAML and kind/name lines; and the cell helpers they share (UTF-8 width,
 * truncation, control-character scrubbing, kubectl-style ages).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "cli.h"
#include "error.h"
#include "i18n.h"
#include "output.h"
#include "yaml.h"

#define SEP_WIDTH 3 /* spaces between columns */
#define FLEX_MIN 10 /* a free-text column is never shrunk below this (or its header) */
#define MAX_COLUMNS 32
#define BOLD "\033[1m"
#define RESET "\033[0m"

const char *const cli_output_values[] = {
	[CLI_FORMAT_TABLE] = "table", [CLI_FORMAT_WIDE] = "wide", [CLI_FORMAT_JSON] = "json",
	[CLI_FORMAT_YAML] = "yaml",   [CLI_FORMAT_NAME] = "name", NULL,
};

int cli_format_from_string(const char *s)
{
	for (int i = 0; cli_output_values[i]; i++)
		if (strcmp(s, cli_output_values[i]) == 0)
			return i;
	return -1;
}

const json_t *cli_json_path(const json_t *obj, const char *path)
{
	const json_t *v = obj;
	const char *p = path;

	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char key[128];

		if (!json_is_object(v) || n >= sizeof(key))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		p += n + (dot ? 1 : 0);
	}
	return v;
}

size_t cli_text_width(const char *s)
{
	size_t w = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			w++;
	return w;
}

/* Byte offset where the character after the first n characters of s starts. */
static size_t char_offset(const char *s, size_t n)
{
	size_t i = 0;

	while (s[i] && n > 0) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		n--;
	}
	return i;
}

void cli_text_truncate(char *s, size_t width)
{
	size_t keep;

	if (cli_text_width(s) <= width)
		return;
	if (width < 3) {
		s[char_offset(s, width)] = '\0';
		return;
	}
	keep = char_offset(s, width - 3);
	memcpy(s + keep, "...", 4);
}

char *cli_text_sanitize(const char *s)
{
	char *out = xmalloc(strlen(s) + 1);
	char *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\t' || *p == '\n' || *p == '\r') {
			*o++ = ' ';
		} else if (*p < 0x20 || *p == 0x7f) {
			*o++ = '?';
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			/* C1 controls (U+0080..U+009F) act as escape sequences on some terminals.
			 */
			*o++ = '?';
			p++;
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	return out;
}

void cli_format_age(int64_t s, char *out, size_t size)
{
	int64_t m = s / 60, h = s / 3600, d = h / 24;

	if (s < -1)
		(void)snprintf(out, size, "<invalid>");
	else if (s < 0)
		(void)snprintf(out, size, "0s");
	else if (s < 120)
		(void)snprintf(out, size, "%" PRId64 "s", s);
	else if (m < 10 && s % 60)
		(void)snprintf(out, size, "%" PRId64 "m%" PRId64 "s", m, s % 60);
	else if (m < 180)
		(void)snprintf(out, size, "%" PRId64 "m", m);
	else if (h < 8 && m % 60)
		(void)snprintf(out, size, "%" PRId64 "h%" PRId64 "m", h, m % 60);
	else if (h < 48)
		(void)snprintf(out, size, "%" PRId64 "h", h);
	else if (h < 24 * 8 && h % 24)
		(void)snprintf(out, size, "%" PRId64 "d%" PRId64 "h", d, h % 24);
	else if (h < 24 * 365 * 2)
		(void)snprintf(out, size, "%" PRId64 "d", d);
	else if (h < 24 * 365 * 8 && d % 365)
		(void)snprintf(out, size, "%" PRId64 "y%" PRId64 "d", d / 365, d % 365);
	else
		(void)snprintf(out, size, "%" PRId64 "y", d / 365);
}

static bool parse_digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static bool expect(const char **p, const char *chars)
{
	if (!**p || !strchr(chars, **p))
		return false;
	(*p)++;
	return true;
}

int cli_parse_time(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;
	time_t t;

	if (!parse_digits(&p, 4, &y) || !expect(&p, "-") || !parse_digits(&p, 2, &mo) ||
	    !expect(&p, "-") || !parse_digits(&p, 2, &d) || !expect(&p, "Tt ") ||
	    !parse_digits(&p, 2, &h) || !expect(&p, ":") || !parse_digits(&p, 2, &mi) ||
	    !expect(&p, ":") || !parse_digits(&p, 2, &sec))
		return -SHP_E_INVAL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -SHP_E_INVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (!parse_digits(&p, 2, &oh) || !expect(&p, ":") || !parse_digits(&p, 2, &om))
			return -SHP_E_INVAL;
	} else {
		return -SHP_E_INVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    oh > 23 || om > 59)
		return -SHP_E_INVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*ret = (int64_t)t - sign * (oh * 3600 + om * 60);
	return 0;
}

/* A timestamp cell: "5m" (COL_AGE) or "5m ago" / "in 3d" (COL_WHEN); NULL if unparsable. */
static char *time_text(const struct cli_column *col, const char *value, int64_t now, bool detail)
{
	char age[32];
	int64_t t;

	if (cli_parse_time(value, &t) < 0)
		return NULL;
	if ((col->flags & COL_AGE) && !detail) {
		cli_format_age(now - t, age, sizeof(age));
		return xstrdup(age);
	}
	cli_format_age(t > now ? t - now : now - t, age, sizeof(age));
	if (detail)
		return t > now ? xasprintf(_("%s (in %s)"), value, age)
			       : xasprintf(_("%s (%s ago)"), value, age);
	/* TRANSLATORS: %s is a short age such as "5m", "2h30m" or "3d" */
	return t > now ? xasprintf(_("in %s"), age) : xasprintf(_("%s ago"), age);
}

static char *value_text(const struct cli_column *col, const json_t *v, int64_t now, bool detail)
{
	_cleanup_free_ char *raw = NULL;
	char *t;

	if (!v || json_is_null(v))
		return xstrdup(col->none ? cli_tr(col->none) : _("<none>"));
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (col->flags & (COL_AGE | COL_WHEN)) {
			t = time_text(col, json_string_value(v), now, detail);
			if (t)
				return t;
		}
		return cli_text_sanitize(json_string_value(v));
	case JSON_INTEGER: return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	case JSON_REAL: return xasprintf("%g", json_real_value(v));
	case JSON_TRUE: return xstrdup("true");
	case JSON_FALSE: return xstrdup("false");
	default:
		raw = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (!raw)
			abort();
		return cli_text_sanitize(raw);
	}
}

static char *cell(const struct cli_column *col, const json_t *item, int64_t now, bool detail)
{
	if (col->cell) {
		_cleanup_free_ char *raw = col->cell(item, now);
		return cli_text_sanitize(raw);
	}
	return value_text(col, cli_json_path(item, col->field), now, detail);
}

char *cli_cell_text(const struct cli_column *col, const json_t *item, int64_t now)
{
	return cell(col, item, now, false);
}

static size_t flex_floor(const struct cli_column *col)
{
	size_t h = cli_text_width(col->header);

	return h > FLEX_MIN ? h : FLEX_MIN;
}

/* Shrink the widest free-text column, one column at a time, until the table fits. */
static void fit_columns(const struct cli_column *const *cols, size_t *width, size_t ncols,
			int limit)
{
	size_t total = SEP_WIDTH * (ncols - 1);

	for (size_t j = 0; j < ncols; j++)
		total += width[j];
	while (limit > 0 && total > (size_t)limit) {
		size_t best = ncols;

		for (size_t j = 0; j < ncols; j++)
			if ((cols[j]->flags & COL_FLEX) && width[j] > flex_floor(cols[j]) &&
			    (best == ncols || width[j] > width[best]))
				best = j;
		if (best == ncols)
			return; /* nothing left to shrink: the lines wrap */
		width[best]--;
		total--;
	}
}

static void print_cell(FILE *out, const char *text, size_t width, bool right, bool last)
{
	size_t w = cli_text_width(text);

	if (right)
		fprintf(out, "%*s%s", (int)(width - w), "", text);
	else if (last)
		fputs(text, out);
	else
		fprintf(out, "%s%*s", text, (int)(width - w), "");
	if (!last)
		fprintf(out, "%*s", SEP_WIDTH, "");
}

static void print_row(FILE *out, const struct cli_column *const *cols, char **texts,
		      const size_t *width, size_t ncols, bool bold)
{
	if (bold)
		fputs(BOLD, out);
	for (size_t j = 0; j < ncols; j++) {
		cli_text_truncate(texts[j], width[j]);
		print_cell(out, texts[j], width[j], cols[j]->flags & COL_RIGHT, j + 1 == ncols);
	}
	fputs(bold ? RESET "\n" : "\n", out);
}

static int render_table(FILE *out, const struct cli_kind *kind, const json_t *items,
			const struct cli_render *r)
{
	const struct cli_column *cols[MAX_COLUMNS];
	size_t ncols = 0, nrows = json_array_size(items);
	size_t width[MAX_COLUMNS] = {0};
	char *header[MAX_COLUMNS];
	char **texts;

	for (const struct cli_column *c = kind->columns; c->header && ncols < MAX_COLUMNS; c++)
		if (r->format == CLI_FORMAT_WIDE || !(c->flags & COL_WIDE))
			cols[ncols++] = c;
	texts = xcalloc(nrows * ncols + 1, sizeof(*texts));
	for (size_t j = 0; j < ncols; j++) {
		header[j] = xstrdup(cli_tr(cols[j]->header));
		width[j] = cli_text_width(header[j]);
	}
	for (size_t i = 0; i < nrows; i++) {
		for (size_t j = 0; j < ncols; j++) {
			char *t = cli_cell_text(cols[j], json_array_get(items, i), r->now);
			size_t w = cli_text_width(t);

			texts[i * ncols + j] = t;
			if (w > width[j])
				width[j] = w;
		}
	}
	fit_columns(cols, width, ncols, r->width);
	print_row(out, cols, header, width, ncols, r->color);
	for (size_t i = 0; i < nrows; i++)
		print_row(out, cols, texts + i * ncols, width, ncols, false);
	for (size_t j = 0; j < ncols; j++)
		free(header[j]);
	for (size_t i = 0; i < nrows * ncols; i++)
		free(texts[i]);
	free(texts);
	return 0;
}

static void render_name(FILE *out, const struct cli_kind *kind, const json_t *obj)
{
	struct cli_column col = {.field = kind->name_field, .none = ""};
	_cleanup_free_ char *name =
		value_text(&col, cli_json_path(obj, kind->name_field), 0, false);

	fprintf(out, "%s/%s\n", kind->name, name);
}

int cli_render_json(FILE *out, const json_t *j)
{
	if (json_dumpf(j, out, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENCODE_ANY) < 0)
		return -SHP_E_IO;
	fputc('\n', out);
	return 0;
}

int cli_render_yaml(FILE *out, const json_t *j)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	int r;

	r = shp_json_to_yaml(j, &b, NULL);
	if (r < 0)
		return r;
	fwrite(b.buf, 1, b.len, out);
	return 0;
}

int cli_render_list(FILE *out, const struct cli_kind *kind, const json_t *items,
		    const struct cli_render *r)
{
	switch (r->format) {
	case CLI_FORMAT_JSON: return cli_render_json(out, items);
	case CLI_FORMAT_YAML: return cli_render_yaml(out, items);
	case CLI_FORMAT_NAME:
		for (size_t i = 0; i < json_array_size(items); i++)
			render_name(out, kind, json_array_get(items, i));
		return 0;
	default: return render_table(out, kind, items, r);
	}
}

void cli_render_pairs(FILE *out, const char *const *labels, char *const *values, size_t n,
		      bool color)
{
	size_t pad = 0;

	for (size_t i = 0; i < n; i++)
		if (cli_text_width(labels[i]) + 1 > pad)
			pad = cli_text_width(labels[i]) + 1;
	for (size_t i = 0; i < n; i++) {
		size_t w = cli_text_width(labels[i]) + 1;

		fprintf(out, "%s%s:%s%*s%s\n", color ? BOLD : "", labels[i], color ? RESET : "",
			(int)(pad - w + 2), "", values[i]);
	}
}

int cli_render_object(FILE *out, const struct cli_kind *kind, const json_t *obj,
		      const struct cli_render *r)
{
	const char *labels[MAX_COLUMNS] = {NULL};
	char *values[MAX_COLUMNS] = {NULL};
	size_t n = 0;

	switch (r->format) {
	case CLI_FORMAT_JSON: return cli_render_json(out, obj);
	case CLI_FORMAT_YAML: return cli_render_yaml(out, obj);
	case CLI_FORMAT_NAME: render_name(out, kind, obj); return 0;
	default: break;
	}
	for (const struct cli_column *c = kind->columns; c->header && n < MAX_COLUMNS; c++) {
		labels[n] = cli_tr(c->label ? c->label : c->header);
		values[n++] = cell(c, obj, r->now, true);
	}
	cli_render_pairs(out, labels, values, n, r->color);
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	return 0;
}

struct cli_render cli_render_of(const struct cli_ctx *ctx)
{
	return (struct cli_render){
		.format = ctx->format,
		.width = ctx->stdout_tty ? ctx->term_width : 0,
		.color = ctx->color,
		.now = (int64_t)time(NULL),
	};
}

static int output_failed(struct cli_ctx *ctx, int r)
{
	if (r == -SHP_E_IO)
		return shp_error_set(&ctx->err, SHP_E_IO, _("cannot write the output"));
	return shp_error_set(&ctx->err, r < 0 ? (enum shp_errc) - r : SHP_E_INTERNAL,
			     _("cannot format the output as %s"), cli_output_values[ctx->format]);
}

int cli_show_list(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *items)
{
	struct cli_render r = cli_render_of(ctx);
	int rc;

	if (json_array_size(items) == 0 &&
	    (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE)) {
		/* TRANSLATORS: %s is a kind of object in the plural: "namespaces", "tokens" */
		cli_note(ctx, _("No %s found.\n"), cli_tr(kind->plural));
		return 0;
	}
	rc = cli_render_list(stdout, kind, items, &r);
	return rc < 0 ? output_failed(ctx, rc) : 0;
}

int cli_show_object(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *obj)
{
	struct cli_render r = cli_render_of(ctx);
	int rc;

	if (!json_is_object(obj))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a %s"), kind->name);
	rc = cli_render_object(stdout, kind, obj, &r);
	return rc < 0 ? output_failed(ctx, rc) : 0;
}

int cli_show_raw(struct cli_ctx *ctx, const json_t *j)
{
	int rc = ctx->format == CLI_FORMAT_YAML ? cli_render_yaml(stdout, j)
						: cli_render_json(stdout, j);

	return rc < 0 ? output_failed(ctx, rc) : 0;
}

int cli_show_done(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *obj,
		  const char *what)
{
	struct cli_column col = {.field = kind->name_field, .none = ""};
	_cleanup_free_ char *name = NULL;

	if (!json_is_object(obj) ||
	    (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE))
		return cli_show_object(ctx, kind, obj);
	if (ctx->quiet)
		return 0;
	name = value_text(&col, cli_json_path(obj, kind->name_field), 0, false);
	/* "namespace/team-a created": the kind and name stay as they are, the verb is translated */
	printf("%s/%s %s\n", kind->name, name, cli_tr(what));
	return 0;
}
