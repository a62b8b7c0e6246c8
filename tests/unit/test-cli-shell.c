/*
 * The shell's line splitter against ordinary and hostile input (quotes left open, escapes at
 * the end, NUL bytes, lines and word counts past the caps), and the table's completion marks
 * that the shell and the generated scripts rely on.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cli.h"
#include "error.h"
#include "shell.h"

/* Split s; returns the words joined with '|' (allocated), or NULL with *ret_code set. */
static char *split(const char *s, size_t len, bool partial, int *ret_code, bool *ret_open)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_buf out = SHP_BUF_INIT(1u << 24);
	char **words = NULL;
	size_t n = 0;
	int r = cli_split_line(s, len, partial, &words, &n, ret_open, &err);

	*ret_code = r;
	if (r < 0) {
		cr_assert(err.msg[0], "a failure says why");
		return NULL;
	}
	cr_assert_null(words[n], "the words end with NULL");
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(shp_buf_add(&out, i ? "|" : ""), 0);
		cr_assert_eq(shp_buf_add(&out, words[i]), 0);
	}
	cli_words_free(words);
	return shp_buf_detach(&out, NULL);
}

static void expect_words(const char *line, const char *joined)
{
	int code;
	char *got = split(line, strlen(line), false, &code, NULL);

	cr_assert_not_null(got, "'%s' splits (code %d)", line, code);
	cr_assert_str_eq(got, joined, "'%s'", line);
	free(got);
}

static void expect_failure(const char *line, size_t len, int code)
{
	int got;

	cr_assert_null(split(line, len, false, &got, NULL));
	cr_assert_eq(got, code, "'%.40s' fails with %d, not %d", line, code, got);
}

Test(split, words_quotes_and_escapes)
{
	expect_words("vm list", "vm|list");
	expect_words("  vm\t list  \r\n", "vm|list");
	expect_words("", "");
	expect_words("   ", "");
	expect_words("vm show 'a b'", "vm|show|a b");
	expect_words("x \"a \\\"b\\\" \\\\ \\n\"", "x|a \"b\" \\ \\n");
	expect_words("a\\ b c", "a b|c");
	expect_words("'it'\\''s'", "it's");
	expect_words("''", "");
	expect_words("a '' b", "a||b");
	expect_words("--reason=\"two words\"", "--reason=two words");
	expect_words("'$HOME' * ~ `x` $(y)", "$HOME|*|~|`x`|$(y)");
}

Test(split, comments)
{
	expect_words("# nothing", "");
	expect_words("vm list # all of them", "vm|list");
	expect_words("vm a#b", "vm|a#b");
	expect_words("vm '#x'", "vm|#x");
}

Test(split, unbalanced_quotes_and_escapes_fail)
{
	expect_failure("vm show 'web", 12, -SHP_E_INVAL);
	expect_failure("vm show \"web", 12, -SHP_E_INVAL);
	expect_failure("vm show \"web\\\"", 14, -SHP_E_INVAL);
	expect_failure("vm show web\\", 12, -SHP_E_INVAL);
	expect_failure("'", 1, -SHP_E_INVAL);
}

Test(split, nul_bytes_fail)
{
	expect_failure("vm\0list", 7, -SHP_E_INVAL);
	expect_failure("\0", 1, -SHP_E_INVAL);
	expect_failure("'a\0'", 4, -SHP_E_INVAL);
}

Test(split, huge_lines_and_word_counts_fail)
{
	size_t n = CLI_LINE_MAX + 1;
	char *line = malloc(n);
	int code;
	char *got;

	memset(line, 'a', n);
	expect_failure(line, n, -SHP_E_LIMIT);
	/* exactly the cap: one long word */
	got = split(line, CLI_LINE_MAX, false, &code, NULL);
	cr_assert_not_null(got);
	cr_assert_eq(strlen(got), CLI_LINE_MAX);
	free(got);
	/* "a a a ...": more words than allowed */
	for (size_t i = 1; i < CLI_LINE_MAX; i += 2)
		line[i] = ' ';
	expect_failure(line, CLI_LINE_MAX, -SHP_E_LIMIT);
	/* every byte value but NUL is taken as it is */
	for (size_t i = 0; i < 255; i++)
		line[i] = (char)(i + 1);
	got = split(line, 255, true, &code, NULL);
	cr_assert_not_null(got);
	free(got);
	free(line);
}

Test(split, partial_lines_for_completion)
{
	int code;
	bool open;
	char *got = split("vm show 'we", 11, true, &code, &open);

	cr_assert_str_eq(got, "vm|show|we");
	cr_assert(open);
	free(got);
	got = split("vm show ", 8, true, &code, &open);
	cr_assert_str_eq(got, "vm|show");
	cr_assert(!open);
	free(got);
	got = split("vm show a\\", 10, true, &code, &open);
	cr_assert_str_eq(got, "vm|show|a");
	free(got);
}

/* Every name kind in the table is one __complete knows, on an argument that exists. */
Test(table, completion_marks_are_consistent)
{
	int marked = 0;

	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		const struct shp_subcmd *s = cli_cmd_entries(*c);

		for (; s && (s->name || s == (*c)->self); s++) {
			if (s->args_complete == CLI_COMPLETE_NAMES) {
				cr_assert_not_null(cli_names_kind_name(s->arg_names), "%s",
						   cli_cmd_path(*c, s));
				cr_assert_neq(s->max_args, 0, "%s", cli_cmd_path(*c, s));
				marked++;
			}
			for (const struct shp_flag *f = s->opts; f && f->name; f++)
				cr_assert(!f->names || (f->arg && cli_names_kind_name(f->names)),
					  "--%s of %s", f->name, cli_cmd_path(*c, s));
			if (s == (*c)->self)
				break;
		}
	}
	cr_assert_gt(marked, 10);
	for (int k = CLI_NAMES_NONE + 1; k < _CLI_NAMES_MAX; k++)
		cr_assert_eq(cli_names_kind_from_string(cli_names_kind_name((enum cli_names)k)), k);
	cr_assert_eq(cli_names_kind_from_string("bogus"), -1);
}

/* repl.c's completion, without readline: what is offered for text after the words. */
struct cli_namelist *candidates(char **words, size_t n, const char *text, bool *ret_files);

static char *offered(const char *line, const char *text, bool *ret_files)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_buf out = SHP_BUF_INIT(1u << 20);
	char **words = NULL;
	size_t n = 0;
	struct cli_namelist *c;

	cr_assert_eq(cli_split_line(line, strlen(line), true, &words, &n, NULL, &err), 0);
	c = candidates(words, n, text, ret_files);
	for (size_t i = 0; i < c->n; i++) {
		cr_assert_eq(shp_buf_add(&out, i ? " " : ""), 0);
		cr_assert_eq(shp_buf_add(&out, c->v[i]), 0);
	}
	cli_namelist_free(c);
	cli_words_free(words);
	return shp_buf_detach(&out, NULL);
}

static void expect_offer(const char *line, const char *text, const char *want)
{
	bool files;
	char *got = offered(line, text, &files);

	cr_assert_str_eq(got, want, "after '%s', '%s'", line, text);
	free(got);
}

Test(complete, commands_verbs_options_and_values)
{
	bool files;
	char *got;

	expect_offer("", "nam", "namespace");
	expect_offer("", "qu", "queue quit");
	expect_offer("", "__", ""); /* hidden commands stay hidden */
	expect_offer("shepherd ", "ver", "version");
	expect_offer("namespace ", "sh", "show");
	expect_offer("namespace ", "", "create delete list show");
	expect_offer("namespace create x ", "--env", "--environment");
	expect_offer("namespace create x --environment ", "", "test prod");
	expect_offer("namespace create x --env ", "p", "prod");
	expect_offer("-o ", "j", "json");
	expect_offer("vm list --output ", "ya", "yaml");
	expect_offer("completion ", "", "bash zsh fish");
	expect_offer("help ", "vm", "vm");
	expect_offer("help vm ", "sh", "show");
	expect_offer("bogus ", "", "");
	expect_offer("namespace bogus ", "", "");
	expect_offer("vm show web-1 ", "--na", "--namespace");
	expect_offer("namespace list ", "--so", "--socket");
	got = offered("cluster add x --kubeconfig ", "", &files);
	cr_assert(files, "--kubeconfig completes file names");
	free(got);
	got = offered("namespace show ", "", &files);
	cr_assert_str_eq(got, "", "names need the daemon (none outside the shell)");
	cr_assert(!files);
	free(got);
}
