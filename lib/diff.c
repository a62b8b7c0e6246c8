/*
 * Unified line diff: lines are split and numbered by content (a hash table gives equal lines
 * the same id), Myers' linear-space O(ND) algorithm marks the changed lines of each side, and
 * the change groups are printed as diff(1) hunks with context.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "diff.h"
#include "error.h"

struct side {
	const char *text;
	size_t len;
	int n;       /* lines */
	size_t *off; /* n + 1 offsets: line i is text[off[i] .. off[i + 1]) */
	int *id;     /* content id of each line */
	bool *chg;   /* line deleted (a) or inserted (b) */
};

struct myers {
	const int *a, *b;
	bool *ca, *cb;
	int *fd, *bd; /* diagonal vectors, indexed from -(nb + 1) */
};

/* One run of changes: a[i0..i1) replaced by b[j0..j1). */
struct group {
	int i0, i1, j0, j1;
};

static void side_release(struct side *s)
{
	free(s->off);
	free(s->id);
	free(s->chg);
}

static int side_split(struct side *s, const char *text, size_t len, struct shp_error *err)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	if (len > 0 && text[len - 1] != '\n')
		n++;
	if (n > SHP_DIFF_MAX_LINES)
		return shp_error_set(err, SHP_E_LIMIT, "cannot diff a text of over %d lines",
				     SHP_DIFF_MAX_LINES);
	s->text = text;
	s->len = len;
	s->n = (int)n;
	s->off = calloc(n + 1, sizeof(*s->off));
	s->id = calloc(n + 1, sizeof(*s->id));
	s->chg = calloc(n + 1, sizeof(*s->chg));
	if (!s->off || !s->id || !s->chg)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory splitting lines");
	size_t k = 0;

	for (size_t i = 0; i < len; i++)
		if (text[i] == '\n')
			s->off[++k] = i + 1;
	s->off[n] = len;
	return 0;
}

static uint64_t line_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

struct slot {
	const char *s;
	size_t len;
	uint64_t hash;
	int id;
};

static void number_side(struct side *sd, struct slot *tab, size_t mask, int *next_id)
{
	for (int i = 0; i < sd->n; i++) {
		const char *s = sd->text + sd->off[i];
		size_t len = sd->off[i + 1] - sd->off[i];
		uint64_t h = line_hash(s, len);
		size_t k = h & mask;

		while (tab[k].s &&
		       !(tab[k].hash == h && tab[k].len == len && memcmp(tab[k].s, s, len) == 0))
			k = (k + 1) & mask;
		if (!tab[k].s)
			tab[k] = (struct slot){.s = s, .len = len, .hash = h, .id = (*next_id)++};
		sd->id[i] = tab[k].id;
	}
}

/* Give equal lines of both sides equal ids. */
static int number_lines(struct side *a, struct side *b, struct shp_error *err)
{
	size_t size = 16;
	int next_id = 0;

	while (size < 2 * ((size_t)a->n + (size_t)b->n))
		size <<= 1;
	_cleanup_free_ struct slot *tab = calloc(size, sizeof(*tab));

	if (!tab)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory numbering lines");
	number_side(a, tab, size - 1, &next_id);
	number_side(b, tab, size - 1, &next_id);
	return 0;
}

/*
 * Find the middle snake of a[xoff..xlim) and b[yoff..ylim) (both non-empty, first and last
 * lines differing): run the forward and backward searches of Myers' paper, one step of edit
 * distance at a time, until they overlap; (*ret_x, *ret_y) is a point on an optimal path.
 */
static void middle_snake(struct myers *m, int xoff, int xlim, int yoff, int ylim, int *ret_x,
			 int *ret_y)
{
	int *fd = m->fd, *bd = m->bd;
	const int dmin = xoff - ylim, dmax = xlim - yoff;
	const int fmid = xoff - yoff, bmid = xlim - ylim;
	int fmin = fmid, fmax = fmid, bmin = bmid, bmax = bmid;
	const bool odd = (fmid - bmid) & 1;

	fd[fmid] = xoff;
	bd[bmid] = xlim;
	for (;;) {
		if (fmin > dmin)
			fd[--fmin - 1] = -1;
		else
			++fmin;
		if (fmax < dmax)
			fd[++fmax + 1] = -1;
		else
			--fmax;
		for (int d = fmax; d >= fmin; d -= 2) {
			int tlo = fd[d - 1], thi = fd[d + 1];
			int x = tlo >= thi ? tlo + 1 : thi;
			int y = x - d;

			while (x < xlim && y < ylim && m->a[x] == m->b[y])
				x++, y++;
			fd[d] = x;
			if (odd && bmin <= d && d <= bmax && bd[d] <= x) {
				*ret_x = x;
				*ret_y = y;
				return;
			}
		}
		if (bmin > dmin)
			bd[--bmin - 1] = INT_MAX;
		else
			++bmin;
		if (bmax < dmax)
			bd[++bmax + 1] = INT_MAX;
		else
			--bmax;
		for (int d = bmax; d >= bmin; d -= 2) {
			int tlo = bd[d - 1], thi = bd[d + 1];
			int x = tlo < thi ? tlo : thi - 1;
			int y = x - d;

			while (x > xoff && y > yoff && m->a[x - 1] == m->b[y - 1])
				x--, y--;
			bd[d] = x;
			if (!odd && fmin <= d && d <= fmax && x <= fd[d]) {
				*ret_x = x;
				*ret_y = y;
				return;
			}
		}
	}
}

/* Mark the lines of a[xoff..xlim) and b[yoff..ylim) outside a longest common subsequence. */
static void compare_seq(struct myers *m, int xoff, int xlim, int yoff, int ylim)
{
	while (xoff < xlim && yoff < ylim && m->a[xoff] == m->b[yoff])
		xoff++, yoff++;
	while (xlim > xoff && ylim > yoff && m->a[xlim - 1] == m->b[ylim - 1])
		xlim--, ylim--;
	if (xoff == xlim) {
		while (yoff < ylim)
			m->cb[yoff++] = true;
	} else if (yoff == ylim) {
		while (xoff < xlim)
			m->ca[xoff++] = true;
	} else {
		int xmid, ymid;

		middle_snake(m, xoff, xlim, yoff, ylim, &xmid, &ymid);
		compare_seq(m, xoff, xmid, yoff, ymid);
		compare_seq(m, xmid, xlim, ymid, ylim);
	}
}

static int mark_changes(struct side *a, struct side *b, struct shp_error *err)
{
	size_t diags = (size_t)a->n + (size_t)b->n + 3;
	_cleanup_free_ int *fd = calloc(diags, sizeof(int));
	_cleanup_free_ int *bd = calloc(diags, sizeof(int));

	if (!fd || !bd)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory comparing lines");
	struct myers m = {
		.a = a->id,
		.b = b->id,
		.ca = a->chg,
		.cb = b->chg,
		.fd = fd + b->n + 1,
		.bd = bd + b->n + 1,
	};

	compare_seq(&m, 0, a->n, 0, b->n);
	return 0;
}

/* The change groups in order; *ret is owned (free()). */
static int collect_groups(const struct side *a, const struct side *b, struct group **ret,
			  int *ret_n, struct shp_error *err)
{
	_cleanup_free_ struct group *g = calloc((size_t)a->n + (size_t)b->n + 1, sizeof(*g));
	int n = 0, i = 0, j = 0;

	if (!g)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory grouping changes");
	while (i < a->n || j < b->n) {
		if (i < a->n && j < b->n && !a->chg[i] && !b->chg[j]) {
			i++, j++;
			continue;
		}
		struct group cur = {.i0 = i, .j0 = j};

		while (i < a->n && a->chg[i])
			i++;
		while (j < b->n && b->chg[j])
			j++;
		if (i == cur.i0 && j == cur.j0)
			return shp_error_set(err, SHP_E_INTERNAL, "diff: inconsistent line marks");
		cur.i1 = i;
		cur.j1 = j;
		g[n++] = cur;
	}
	*ret = TAKE_PTR(g);
	*ret_n = n;
	return 0;
}

/* One line with its one-character prefix, and diff(1)'s marker when it has no newline. */
static int emit_line(struct shp_buf *out, char prefix, const struct side *s, int i)
{
	const char *p = s->text + s->off[i];
	size_t len = s->off[i + 1] - s->off[i];
	int r = shp_buf_addch(out, prefix);

	if (r == 0)
		r = shp_buf_addn(out, p, len);
	if (r == 0 && (len == 0 || p[len - 1] != '\n'))
		r = shp_buf_add(out, "\n\\ No newline at end of file\n");
	return r;
}

/* diff(1)'s range: "start,count", "start" for one line, the line before for none. */
static int emit_range(struct shp_buf *out, char sign, int start, int count)
{
	if (count == 1)
		return shp_buf_addf(out, "%c%d", sign, start + 1);
	return shp_buf_addf(out, "%c%d,%d", sign, count == 0 ? start : start + 1, count);
}

static int emit_hunk(struct shp_buf *out, const struct side *a, const struct side *b,
		     const struct group *g, int ng, int context)
{
	int as = g[0].i0 - context < 0 ? 0 : g[0].i0 - context;
	int bs = g[0].j0 - (g[0].i0 - as);
	const struct group *last = &g[ng - 1];
	int ae = last->i1 + context > a->n ? a->n : last->i1 + context;
	int be = last->j1 + (ae - last->i1);
	int r = shp_buf_add(out, "@@ ");

	if (r == 0)
		r = emit_range(out, '-', as, ae - as);
	if (r == 0)
		r = shp_buf_add(out, " ");
	if (r == 0)
		r = emit_range(out, '+', bs, be - bs);
	if (r == 0)
		r = shp_buf_add(out, " @@\n");
	int i = as;

	for (int k = 0; k < ng && r == 0; k++) {
		for (; i < g[k].i0 && r == 0; i++)
			r = emit_line(out, ' ', a, i);
		for (i = g[k].i0; i < g[k].i1 && r == 0; i++)
			r = emit_line(out, '-', a, i);
		for (int j = g[k].j0; j < g[k].j1 && r == 0; j++)
			r = emit_line(out, '+', b, j);
	}
	for (; i < ae && r == 0; i++)
		r = emit_line(out, ' ', a, i);
	return r;
}

/* Headers, then hunks: groups whose gap is at most 2 * context share one. */
static int emit_unified(struct shp_buf *out, const struct side *a, const struct side *b,
			const struct group *g, int ng, const char *label_a, const char *label_b,
			int context)
{
	int r = shp_buf_addf(out, "--- %s\n+++ %s\n", label_a, label_b);

	for (int k = 0; k < ng && r == 0;) {
		int end = k + 1;

		while (end < ng && g[end].i0 - g[end - 1].i1 <= 2 * context)
			end++;
		r = emit_hunk(out, a, b, g + k, end - k, context);
		k = end;
	}
	return r;
}

static bool label_is_valid(const char *s)
{
	return s && !strchr(s, '\n') && !strchr(s, '\r');
}

int shp_diff_unified(const char *a, size_t alen, const char *b, size_t blen, const char *label_a,
		     const char *label_b, int context, struct shp_buf *out, struct shp_error *err)
{
	_cleanup_(side_release) struct side sa = {0};
	_cleanup_(side_release) struct side sb = {0};
	_cleanup_free_ struct group *groups = NULL;
	int ngroups = 0, r;
	size_t start = out->len;

	if (context < 0 || context > SHP_DIFF_MAX_CONTEXT)
		return shp_error_set(err, SHP_E_INVAL, "diff context %d is not within 0..%d",
				     context, SHP_DIFF_MAX_CONTEXT);
	if (!label_is_valid(label_a) || !label_is_valid(label_b))
		return shp_error_set(err, SHP_E_INVAL, "diff labels must be single lines");
	if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
		return 0;
	r = side_split(&sa, a, alen, err);
	if (r == 0)
		r = side_split(&sb, b, blen, err);
	if (r == 0)
		r = number_lines(&sa, &sb, err);
	if (r == 0)
		r = mark_changes(&sa, &sb, err);
	if (r == 0)
		r = collect_groups(&sa, &sb, &groups, &ngroups, err);
	if (r < 0)
		return r;
	r = emit_unified(out, &sa, &sb, groups, ngroups, label_a, label_b, context);
	if (r < 0) {
		shp_buf_truncate(out, start);
		return shp_error_set(err, -r,
				     r == -SHP_E_LIMIT ? "diff output over %zu bytes"
						       : "out of memory writing the diff (%zu)",
				     out->max);
	}
	return 0;
}
