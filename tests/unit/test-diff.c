/*
 * Unit tests of lib/diff.c: equal texts, insertions, deletions, changes at the start and the
 * end, a missing final newline, hunks merged within the context, large inputs, the limits, and
 * the output of `diff -u` on texts whose differences are unambiguous.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "diff.h"
#include "error.h"

static char *diff_of(const char *a, const char *b, int context)
{
	struct shp_buf out = SHP_BUF_INIT(1 << 24);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_diff_unified(a, strlen(a), b, strlen(b), "a", "b", context, &out, &err), 0,
		     "%s", err.msg);
	return shp_buf_detach(&out, NULL);
}

static void assert_diff(const char *a, const char *b, int context, const char *want)
{
	char *got = diff_of(a, b, context);

	cr_assert_str_eq(got, want, "got:\n%s\nwant:\n%s", got, want);
	free(got);
}

/* n lines "line 1\n" .. "line n\n", with line k (1-based) replaced by repl when k > 0. */
static char *numbered(int n, int k, const char *repl)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 24);

	for (int i = 1; i <= n; i++)
		cr_assert_eq(i == k ? shp_buf_add(&b, repl) : shp_buf_addf(&b, "line %d\n", i), 0);
	return shp_buf_detach(&b, NULL);
}

Test(diff, equal_inputs_give_nothing)
{
	assert_diff("", "", 3, "");
	assert_diff("a\nb\n", "a\nb\n", 3, "");
	assert_diff("no newline", "no newline", 0, "");
}

Test(diff, insertion_in_the_middle)
{
	assert_diff("a\nb\nc\n", "a\nb\nX\nc\n", 1, "--- a\n+++ b\n@@ -2,2 +2,3 @@\n b\n+X\n c\n");
	assert_diff("a\nb\nc\n", "a\nb\nX\nc\n", 0, "--- a\n+++ b\n@@ -2,0 +3 @@\n+X\n");
}

Test(diff, deletion)
{
	assert_diff("a\nb\nc\n", "a\nc\n", 3, "--- a\n+++ b\n@@ -1,3 +1,2 @@\n a\n-b\n c\n");
	assert_diff("a\nb\nc\n", "a\nc\n", 0, "--- a\n+++ b\n@@ -2 +1,0 @@\n-b\n");
}

Test(diff, from_and_to_empty)
{
	assert_diff("", "x\ny\n", 3, "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n");
	assert_diff("x\n", "", 3, "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n");
}

Test(diff, change_at_start_and_end)
{
	assert_diff("a\nb\nc\nd\n", "A\nb\nc\nd\n", 1,
		    "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n");
	assert_diff("a\nb\nc\nd\n", "a\nb\nc\nD\n", 1,
		    "--- a\n+++ b\n@@ -3,2 +3,2 @@\n c\n-d\n+D\n");
}

Test(diff, no_trailing_newline)
{
	assert_diff("a\nb", "a\nb\n", 3,
		    "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
	assert_diff("a\nb\n", "a\nc", 3,
		    "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\\ No newline at end of file\n");
}

Test(diff, hunks_merged_within_context)
{
	char *a = numbered(20, 0, NULL);
	struct shp_buf both = SHP_BUF_INIT(1 << 20);

	/* lines 5 and 11 changed: a gap of 5 lines, within 2 * 3, so one hunk */
	for (int i = 1; i <= 20; i++)
		cr_assert_eq(i == 5    ? shp_buf_add(&both, "five\n")
			     : i == 11 ? shp_buf_add(&both, "eleven\n")
				       : shp_buf_addf(&both, "line %d\n", i),
			     0);
	char *one = diff_of(a, both.buf, 3);

	cr_assert(strstr(one, "--- a\n+++ b\n@@ -2,13 +2,13 @@\n"), "%s", one);
	cr_assert_null(strstr(one + 14, "\n@@"), "%s", one);
	/* with one line of context they are two hunks */
	char *two = diff_of(a, both.buf, 1);

	cr_assert(strstr(two, "@@ -4,3 +4,3 @@\n line 4\n-line 5\n+five\n line 6\n"), "%s", two);
	cr_assert(strstr(two, "@@ -10,3 +10,3 @@\n line 10\n-line 11\n+eleven\n line 12\n"), "%s",
		  two);
	free(one);
	free(two);
	free(a);
	shp_buf_release(&both);
}

Test(diff, large_inputs)
{
	char *a = numbered(SHP_DIFF_MAX_LINES, 0, NULL);
	char *b = numbered(SHP_DIFF_MAX_LINES, 5000, "changed\n");
	char *d = diff_of(a, b, 3);

	cr_assert_str_eq(d, "--- a\n+++ b\n@@ -4997,7 +4997,7 @@\n line 4997\n line 4998\n line "
			    "4999\n-line 5000\n+changed\n line 5001\n line 5002\n line 5003\n");
	free(d);
	/* completely different texts of the maximum size finish too */
	char *c = numbered(SHP_DIFF_MAX_LINES, 0, NULL);

	for (char *p = c; *p; p++)
		if (*p == 'l')
			*p = 'L';
	d = diff_of(a, c, 3);
	cr_assert(strncmp(d, "--- a\n+++ b\n@@ -1,10000 +1,10000 @@\n-line 1\n", 40) == 0);
	free(d);
	free(a);
	free(b);
	free(c);
}

Test(diff, limits)
{
	struct shp_buf out = SHP_BUF_INIT(64);
	struct shp_error err = SHP_ERROR_INIT;
	char *big = numbered(SHP_DIFF_MAX_LINES + 1, 0, NULL);

	cr_assert_eq(shp_diff_unified(big, strlen(big), "x\n", 2, "a", "b", 3, &out, &err),
		     -SHP_E_LIMIT);
	cr_assert(strstr(err.msg, "10000 lines"), "%s", err.msg);
	cr_assert_eq(shp_diff_unified("a\n", 2, "b\n", 2, "a", "b", -1, &out, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_diff_unified("a\n", 2, "b\n", 2, "a\nx", "b", 3, &out, &err),
		     -SHP_E_INVAL);
	/* the output's cap: the buffer is left as it was */
	cr_assert_eq(shp_buf_add(&out, "keep"), 0);
	cr_assert_eq(shp_diff_unified(big, 1000, "", 0, "a", "b", 3, &out, &err), -SHP_E_LIMIT);
	cr_assert_str_eq(out.buf, "keep");
	shp_buf_release(&out);
	free(big);
}

/* `diff -u --label a --label b` of the two texts, read from its standard output. */
static char *system_diff(const char *a, const char *b)
{
	char pa[] = "/tmp/shp-diff-a-XXXXXX", pb[] = "/tmp/shp-diff-b-XXXXXX";
	int fa = mkstemp(pa), fb = mkstemp(pb);

	cr_assert(fa >= 0 && fb >= 0);
	cr_assert_eq(write(fa, a, strlen(a)), (ssize_t)strlen(a));
	cr_assert_eq(write(fb, b, strlen(b)), (ssize_t)strlen(b));
	close(fa);
	close(fb);
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "diff -u --label a --label b %s %s", pa, pb);
	FILE *p = popen(cmd, "r");
	struct shp_buf out = SHP_BUF_INIT(1 << 24);
	char chunk[4096];
	size_t n;

	cr_assert_not_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		cr_assert_eq(shp_buf_addn(&out, chunk, n), 0);
	pclose(p);
	unlink(pa);
	unlink(pb);
	return shp_buf_detach(&out, NULL);
}

static void assert_like_diff_u(const char *a, const char *b)
{
	char *want = system_diff(a, b);

	assert_diff(a, b, 3, want);
	free(want);
}

Test(diff, same_as_diff_u)
{
	char *a = numbered(40, 0, NULL);
	char *b = numbered(40, 20, "twenty\n");
	char *c = numbered(40, 39, "thirty-nine\n");

	assert_like_diff_u(a, b);
	assert_like_diff_u(a, c);
	assert_like_diff_u(b, c);
	assert_like_diff_u("name: web\ncpus: 2\nmemory: 4Gi\nsize: small\n",
			   "name: web\ncpus: 4\nmemory: 4Gi\nsize: small\ndisks:\n- name: data\n");
	assert_like_diff_u("first\nsecond\nthird", "first\nthird\nfourth\n");
	assert_like_diff_u("", "only\n");
	free(a);
	free(b);
	free(c);
}

/* ---- property test: the diff applies back, and its edits are minimal ------------------- */

struct lines {
	const char *p[64];
	size_t n[64];
	int count;
};

static void split(const char *s, struct lines *l)
{
	l->count = 0;
	while (*s) {
		const char *e = strchr(s, '\n');
		size_t len = e ? (size_t)(e - s) + 1 : strlen(s);

		l->p[l->count] = s;
		l->n[l->count++] = len;
		s += len;
	}
}

/* Apply the hunks of diff to a; the result must equal b. Returns the lines added + removed. */
static int apply_diff(const char *a, const char *b, const char *diff)
{
	struct shp_buf out = SHP_BUF_INIT(1 << 20);
	struct lines la;
	const char *d = strchr(strchr(diff, '\n') + 1, '\n') + 1; /* past the headers */
	int ai = 0, edits = 0;

	split(a, &la);
	while (*d) {
		int as, al = 1, bs, bl = 1;

		cr_assert(sscanf(d, "@@ -%d,%d +%d,%d @@", &as, &al, &bs, &bl) >= 2 ||
				  sscanf(d, "@@ -%d +%d,%d @@", &as, &bs, &bl) >= 2,
			  "%s", d);
		int start = al == 0 ? as : as - 1;

		for (; ai < start; ai++)
			cr_assert_eq(shp_buf_addn(&out, la.p[ai], la.n[ai]), 0);
		d = strchr(d, '\n') + 1;
		while (*d && *d != '@') {
			const char *e = strchr(d, '\n');
			size_t len = (size_t)(e - d);
			bool nonl = e[1] == '\\';

			if (*d == ' ' || *d == '-') {
				cr_assert_eq(la.n[ai] - (nonl ? 0 : 1), len - 1);
				cr_assert(memcmp(la.p[ai], d + 1, len - 1) == 0);
				ai++;
			}
			if (*d == ' ' || *d == '+')
				cr_assert_eq(shp_buf_addn(&out, d + 1, nonl ? len - 1 : len), 0);
			edits += *d != ' ';
			d = e + 1;
			if (nonl)
				d = strchr(d, '\n') + 1;
		}
	}
	for (; ai < la.count; ai++)
		cr_assert_eq(shp_buf_addn(&out, la.p[ai], la.n[ai]), 0);
	cr_assert_str_eq(out.buf, b, "a:\n%s\nb:\n%s\ndiff:\n%s", a, b, diff);
	shp_buf_release(&out);
	return edits;
}

static int lcs(const struct lines *a, const struct lines *b)
{
	int t[65][65] = {{0}};

	for (int i = 1; i <= a->count; i++)
		for (int j = 1; j <= b->count; j++) {
			bool eq = a->n[i - 1] == b->n[j - 1] &&
				  memcmp(a->p[i - 1], b->p[j - 1], a->n[i - 1]) == 0;
			int up = t[i - 1][j] > t[i][j - 1] ? t[i - 1][j] : t[i][j - 1];

			t[i][j] = eq ? t[i - 1][j - 1] + 1 : up;
		}
	return t[a->count][b->count];
}

static void random_text(unsigned *seed, char *out, size_t size)
{
	int n = (int)(rand_r(seed) % 40);
	size_t o = 0;

	for (int i = 0; i < n && o + 4 < size; i++) {
		out[o++] = (char)('a' + rand_r(seed) % 4);
		out[o++] = '\n';
	}
	if (o > 0 && rand_r(seed) % 5 == 0)
		o--; /* no newline at the end */
	out[o] = '\0';
}

Test(diff, random_texts_apply_back_with_minimal_edits)
{
	unsigned seed = 12345;

	for (int round = 0; round < 2000; round++) {
		char a[200], b[200];
		struct lines la, lb;

		random_text(&seed, a, sizeof(a));
		random_text(&seed, b, sizeof(b));
		char *d = diff_of(a, b, (int)(rand_r(&seed) % 4));

		if (strcmp(a, b) == 0) {
			cr_assert_str_eq(d, "");
		} else {
			split(a, &la);
			split(b, &lb);
			cr_assert_eq(apply_diff(a, b, d), la.count + lb.count - 2 * lcs(&la, &lb),
				     "not minimal:\n%s", d);
		}
		free(d);
	}
}
