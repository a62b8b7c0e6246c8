/*
 * cli/output.c: table layout (alignment, fitting to a width, wide columns, UTF-8 cells), detail
 * views, name and JSON output, ages and times; and the "did you mean" of cli/util.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "cli.h"
#include "output.h"
#include "util.h"

#define NOW 1800000000 /* 2027-01-15T08:00:00Z */

static const struct cli_column columns[] = {
	{"NAME", "Name", "name"},
	{"ID", "ID", "id", COL_RIGHT},
	{"DESCRIPTION", "Description", "description", COL_FLEX, ""},
	{"AGE", "Created", "created_at", COL_AGE},
	{"OWNER", "Owner", "meta.owner", COL_WIDE},
	{NULL},
};

static const struct cli_kind kind = {"widget", "widgets", "name", columns};

/* RFC 3339 for NOW - ago seconds. */
static char *at(long ago)
{
	static char buf[8][32];
	static int n;
	time_t t = NOW - ago;
	struct tm tm;
	char *out = buf[n++ % 8];

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000000Z", &tm);
	return out;
}

static void cell_is(const struct cli_column *col, const json_t *item, int64_t now, const char *want)
{
	char *got = cli_cell_text(col, item, now);

	cr_assert_str_eq(got, want);
	free(got);
}

static json_t *items(void)
{
	return json_pack("[{s:s, s:i, s:s, s:s, s:{s:s}}, {s:s, s:i, s:n, s:s, s:{s:s}}]", "name",
			 "alpha", "id", 7, "description", "the first widget", "created_at", at(300),
			 "meta", "owner", "alice", "name", "beta-long-name", "id", 1234,
			 "description", "created_at", at(3 * 86400 + 3600), "meta", "owner", "bob");
}

/* Render into a string (caller frees). */
static char *render(const json_t *list, enum cli_format format, int width)
{
	struct cli_render r = {.format = format, .width = width, .now = NOW};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	cr_assert_eq(cli_render_list(f, &kind, list, &r), 0);
	fclose(f);
	return text;
}

Test(output, table_aligns_columns)
{
	json_t *list = items();
	char *out = render(list, CLI_FORMAT_TABLE, 0);

	cr_assert_str_eq(out, "NAME               ID   DESCRIPTION        AGE\n"
			      "alpha               7   the first widget   5m\n"
			      "beta-long-name   1234                      3d1h\n");
	free(out);
	json_decref(list);
}

Test(output, wide_adds_columns)
{
	json_t *list = items();
	char *out = render(list, CLI_FORMAT_WIDE, 0);

	cr_assert_str_eq(out, "NAME               ID   DESCRIPTION        AGE    OWNER\n"
			      "alpha               7   the first widget   5m     alice\n"
			      "beta-long-name   1234                      3d1h   bob\n");
	free(out);
	json_decref(list);
}

Test(output, fits_the_width_by_shrinking_free_text)
{
	json_t *list = json_pack("[{s:s, s:i, s:s, s:s}]", "name", "a", "id", 1, "description",
				 "a description far too long for a narrow terminal window",
				 "created_at", at(10));
	char *out = render(list, CLI_FORMAT_TABLE, 40);
	char *line2 = strchr(out, '\n') + 1;

	cr_assert_str_eq(out, "NAME   ID   DESCRIPTION              AGE\n"
			      "a       1   a description far t...   10s\n");
	cr_assert_leq(cli_text_width(line2) - 1, 40);
	free(out);
	out = render(list, CLI_FORMAT_TABLE, 0);
	cr_assert_not_null(strstr(out, "far too long for a narrow terminal window   10s"),
			   "never truncated without a width: %s", out);
	free(out);
	json_decref(list);
}

Test(output, free_text_keeps_a_minimum)
{
	json_t *list =
		json_pack("[{s:s, s:i, s:s, s:s}]", "name", "a-rather-long-name", "id", 1,
			  "description", "some text that cannot fit at all", "created_at", at(10));
	char *out = render(list, CLI_FORMAT_TABLE, 20);

	/* The description stops at 11 columns (its header); the line overflows rather than
	 * losing the fixed columns. */
	cr_assert_not_null(strstr(out, "some tex..."), "%s", out);
	cr_assert_not_null(strstr(out, "a-rather-long-name"), "%s", out);
	free(out);
	json_decref(list);
}

Test(output, widest_free_text_column_shrinks_first)
{
	static const struct cli_column two[] = {
		{"A", "A", "a", COL_FLEX},
		{"B", "B", "b", COL_FLEX},
		{NULL},
	};
	static const struct cli_kind k = {"x", "xs", "a", two};
	struct cli_render r = {.format = CLI_FORMAT_TABLE, .width = 50, .now = NOW};
	json_t *list = json_pack("[{s:s, s:s}]", "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "b",
				 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_render_list(f, &k, list, &r);
	fclose(f);
	/* 30 + 3 + 50 = 83 columns into 50: b gives 20 first, then the two take turns. */
	cr_assert_str_eq(text, "A                         B\n"
			       "aaaaaaaaaaaaaaaaaaaa...   bbbbbbbbbbbbbbbbbbbbb...\n");
	free(text);
	json_decref(list);
}

Test(output, utf8_cells_count_characters)
{
	json_t *list = json_pack("[{s:s, s:i, s:s, s:s}, {s:s, s:i, s:s, s:s}]", "name", "café",
				 "id", 1, "description", "ü", "created_at", at(0), "name", "plain",
				 "id", 2, "description", "x", "created_at", at(0));
	char *out = render(list, CLI_FORMAT_TABLE, 0);

	cr_assert_str_eq(out, "NAME    ID   DESCRIPTION   AGE\n"
			      "café     1   ü             0s\n"
			      "plain    2   x             0s\n");
	free(out);
	json_decref(list);
}

Test(output, utf8_truncation_keeps_characters_whole)
{
	char s[64] = "ééééééééééééééé"; /* 15 characters, 30 bytes */

	cr_assert_eq(cli_text_width(s), 15);
	cli_text_truncate(s, 10);
	cr_assert_str_eq(s, "ééééééé...");
	cr_assert_eq(cli_text_width(s), 10);
	cli_text_truncate(s, 2);
	cr_assert_str_eq(s, "éé");
	strcpy(s, "short");
	cli_text_truncate(s, 5);
	cr_assert_str_eq(s, "short");
}

Test(output, control_characters_are_scrubbed)
{
	char *s = cli_text_sanitize("a\tb\nc\x1b[31md\x7f\xc2\x9b"
				    "e\xc3\xa9");

	cr_assert_str_eq(s, "a b c?[31md??eé");
	free(s);
}

Test(output, name_output)
{
	json_t *list = items();
	char *out = render(list, CLI_FORMAT_NAME, 0);
	static const struct cli_kind by_id = {"token", "tokens", "id", columns};
	struct cli_render r = {.format = CLI_FORMAT_NAME};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_str_eq(out, "widget/alpha\nwidget/beta-long-name\n");
	free(out);
	f = open_memstream(&text, &len);
	cli_render_object(f, &by_id, json_array_get(list, 1), &r);
	fclose(f);
	cr_assert_str_eq(text, "token/1234\n");
	free(text);
	json_decref(list);
}

Test(output, json_is_sorted_and_indented)
{
	json_t *list = json_pack("[{s:i, s:s}]", "zeta", 1, "alpha", "x");
	char *out = render(list, CLI_FORMAT_JSON, 0);

	cr_assert_str_eq(out, "[\n  {\n    \"alpha\": \"x\",\n    \"zeta\": 1\n  }\n]\n");
	free(out);
	json_decref(list);
	list = json_array();
	out = render(list, CLI_FORMAT_JSON, 0);
	cr_assert_str_eq(out, "[]\n");
	free(out);
	json_decref(list);
}

Test(output, detail_view)
{
	json_t *list = items();
	struct cli_render r = {.format = CLI_FORMAT_TABLE, .now = NOW};
	char *text = NULL, *want;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_render_object(f, &kind, json_array_get(list, 0), &r);
	fclose(f);
	want = NULL;
	cr_assert(asprintf(&want,
			   "Name:         alpha\n"
			   "ID:           7\n"
			   "Description:  the first widget\n"
			   "Created:      %s (5m ago)\n"
			   "Owner:        alice\n",
			   at(300)) > 0);
	cr_assert_str_eq(text, want);
	free(want);
	free(text);
	json_decref(list);
}

Test(output, missing_and_null_values)
{
	static const struct cli_column cols[] = {
		{"A", "A", "a"},
		{"B", "B", "b", 0, "never"},
		{"C", "C", "deep.er.field"},
		{NULL},
	};
	json_t *item = json_pack("{s:n, s:{s:{s:b}}}", "b", "deep", "er", "field", 1);

	cell_is(&cols[0], item, NOW, "<none>");
	cell_is(&cols[1], item, NOW, "never");
	cell_is(&cols[2], item, NOW, "true");
	cr_assert_null(cli_json_path(item, "deep.er.missing"));
	cr_assert_null(cli_json_path(item, "b.below_null"));
	cr_assert_null(cli_json_path(item, "deep.er.field.below_true"));
	json_decref(item);
}

Test(output, when_columns)
{
	static const struct cli_column when = {"EXPIRES", "Expires", "t", COL_WHEN, "never"};
	json_t *past = json_pack("{s:s}", "t", at(300));
	json_t *future = json_pack("{s:s}", "t", at(-3 * 86400));
	json_t *none = json_pack("{s:n}", "t");
	json_t *junk = json_pack("{s:s}", "t", "yesterday");

	cell_is(&when, past, NOW, "5m ago");
	cell_is(&when, future, NOW, "in 3d");
	cell_is(&when, none, NOW, "never");
	cell_is(&when, junk, NOW, "yesterday");
	json_decref(past);
	json_decref(future);
	json_decref(none);
	json_decref(junk);
}

Test(output, ages_like_kubectl)
{
	static const struct {
		long s;
		const char *want;
	} cases[] = {
		{-5, "<invalid>"},
		{-1, "0s"},
		{0, "0s"},
		{59, "59s"},
		{119, "119s"},
		{120, "2m"},
		{150, "2m30s"},
		{599, "9m59s"},
		{600, "10m"},
		{3 * 3600 - 1, "179m"},
		{3 * 3600, "3h"},
		{3 * 3600 + 1800, "3h30m"},
		{8 * 3600 + 1800, "8h"},
		{47 * 3600, "47h"},
		{48 * 3600, "2d"},
		{50 * 3600, "2d2h"},
		{8 * 86400, "8d"},
		{400 * 86400L, "400d"},
		{730 * 86400L, "2y"},
		{740 * 86400L, "2y10d"},
		{9 * 365 * 86400L, "9y"},
	};
	char buf[32];

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		cli_format_age(cases[i].s, buf, sizeof(buf));
		cr_expect_str_eq(buf, cases[i].want, "%ld s", cases[i].s);
	}
}

Test(output, parses_rfc3339)
{
	int64_t t;

	cr_assert_eq(cli_parse_time("2027-01-15T08:00:00Z", &t), 0);
	cr_assert_eq(t, NOW);
	cr_assert_eq(cli_parse_time("2027-01-15T08:00:00.123456Z", &t), 0);
	cr_assert_eq(t, NOW);
	cr_assert_eq(cli_parse_time("2027-01-15T10:30:00+02:30", &t), 0);
	cr_assert_eq(t, NOW);
	cr_assert_eq(cli_parse_time("2027-01-15T07:00:00-01:00", &t), 0);
	cr_assert_eq(t, NOW);
	cr_assert_lt(cli_parse_time("2027-01-15", &t), 0);
	cr_assert_lt(cli_parse_time("2027-01-15T08:00:00", &t), 0);
	cr_assert_lt(cli_parse_time("2027-13-15T08:00:00Z", &t), 0);
	cr_assert_lt(cli_parse_time("2027-01-15T08:00:00Zjunk", &t), 0);
	cr_assert_lt(cli_parse_time("2027-01-15T08:00:00.Z", &t), 0);
}

Test(suggest, did_you_mean)
{
	static const char *const nouns[] = {"audit",     "cluster", "completion", "help",
					    "namespace", "ns",      "status",     "token",
					    "version",   "whoami"};
	static const char *const verbs[] = {"create", "delete", "list", "show"};
	size_t n = SHP_ARRAY_SIZE(nouns);

	cr_assert_str_eq(cli_suggest("namespaec", nouns, n), "namespace");
	cr_assert_str_eq(cli_suggest("clustr", nouns, n), "cluster");
	cr_assert_str_eq(cli_suggest("tokne", nouns, n), "token");
	cr_assert_str_eq(cli_suggest("whomai", nouns, n), "whoami");
	cr_assert_str_eq(cli_suggest("names", nouns, n), "namespace", "a unique prefix");
	cr_assert_str_eq(cli_suggest("lst", verbs, 4), "list");
	cr_assert_str_eq(cli_suggest("delet", verbs, 4), "delete");
	cr_assert_null(cli_suggest("frobnicate", verbs, 4));
	cr_assert_null(cli_suggest("x", nouns, n), "one letter is too little to go on");
	cr_assert_null(cli_suggest("zz", nouns, n));
	cr_assert_eq(cli_edit_distance("ab", "ba"), 1);
	cr_assert_eq(cli_edit_distance("", "abc"), 3);
	cr_assert_eq(cli_edit_distance("kitten", "sitting"), 3);
}

Test(output, colour_is_a_bold_header_only)
{
	json_t *list = items();
	struct cli_render r = {.format = CLI_FORMAT_TABLE, .color = true, .now = NOW};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_render_list(f, &kind, list, &r);
	fclose(f);
	cr_assert(strncmp(text, "\033[1mNAME ", 8) == 0, "%s", text);
	cr_assert_not_null(strstr(text, "AGE\033[0m\nalpha "), "%s", text);
	cr_assert_eq(strchr(strchr(text, '\n'), '\033'), NULL, "rows are plain");
	free(text);
	json_decref(list);
}
