/*
 * The command table's invariants (sorted, unique names, options that neither clash nor drift
 * from the usage strings, help text style), the look-ups and suggestions built on it, and the
 * help text generated from it.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cli.h"

static const struct shp_flag *const globals[] = {cli_global_flags, NULL};

/* Calls fn for every entry of every command, hidden ones included. */
static void each_entry(void (*fn)(const struct shp_cmd *, const struct shp_subcmd *))
{
	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		if ((*c)->self)
			fn(*c, (*c)->self);
		for (const struct shp_subcmd *s = (*c)->subcmds; s && s->name; s++)
			fn(*c, s);
	}
}

static char *capture(void (*fn)(FILE *, const void *), const void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	fn(f, arg);
	fclose(f);
	return text;
}

Test(table, commands_are_sorted_and_unique)
{
	size_t n = 0;

	for (const struct shp_cmd *const *c = cli_commands; *c; c++, n++) {
		cr_assert((*c)->name && (*c)->summary, "command %zu lacks a name or summary", n);
		cr_assert(((*c)->subcmds != NULL) != ((*c)->self != NULL),
			  "'%s' needs verbs or its own entry, not both", (*c)->name);
		if (c != cli_commands)
			cr_assert_lt(strcmp(c[-1]->name, (*c)->name), 0, "'%s' is out of order",
				     (*c)->name);
		for (const struct shp_cmd *const *d = cli_commands; *d; d++) {
			if (c == d)
				continue;
			cr_assert_str_neq((*c)->name, (*d)->name);
			if ((*c)->alias) {
				cr_assert_str_neq((*c)->alias, (*d)->name);
				cr_assert(!(*d)->alias || strcmp((*c)->alias, (*d)->alias) != 0);
			}
		}
		if ((*c)->subcmds) {
			cr_assert((*c)->description, "'%s' lacks a description", (*c)->name);
			for (const struct shp_subcmd *s = (*c)->subcmds; s[1].name; s++)
				cr_assert_lt(strcmp(s->name, s[1].name), 0,
					     "verbs of '%s' unsorted", (*c)->name);
		}
	}
	cr_assert_gt(n, 5);
}

static void check_text(const struct shp_cmd *cmd, const struct shp_subcmd *s)
{
	const char *path = cli_cmd_path(cmd, s);
	size_t n;

	cr_assert_not_null(s->fn, "'%s' has no handler", path);
	cr_assert_not_null(s->summary, "'%s' has no summary", path);
	cr_assert_not_null(s->description, "'%s' has no description", path);
	cr_assert(islower((unsigned char)s->summary[0]), "summary of '%s' starts lowercase", path);
	n = strlen(s->summary);
	cr_assert(n < 60 && s->summary[n - 1] != '.', "summary of '%s': short, no full stop", path);
	n = strlen(s->description);
	cr_assert(s->description[n - 1] == '.', "description of '%s' ends a sentence", path);
	cr_assert(s->min_args >= 0 && (s->max_args < 0 || s->max_args >= s->min_args),
		  "arity of '%s'", path);
	if (s->args_complete == CLI_COMPLETE_VALUES)
		cr_assert_not_null(s->arg_values, "'%s' completes values it does not list", path);
}

Test(table, entries_are_complete)
{
	each_entry(check_text);
}

static void check_flags(const struct shp_cmd *cmd, const struct shp_subcmd *s)
{
	const char *path = cli_cmd_path(cmd, s);

	for (const struct shp_flag *f = s->opts; f && f->name; f++) {
		char word[80];
		const char *at;

		cr_assert(islower((unsigned char)f->help[0]), "help of --%s (%s)", f->name, path);
		cr_assert(f->id >= CLI_OPT_LOCAL || (f->short_name && f->id == f->short_name),
			  "--%s of '%s' has a local id", f->name, path);
		cr_assert_neq(f->short_name, 'h', "-h is --help");
		cr_assert(!f->values || f->arg, "--%s lists values but takes none", f->name);
		/* Nothing clashes with a global option, nor with another option of the verb. */
		for (const struct shp_flag *g = cli_global_flags; g->name; g++) {
			cr_assert_str_neq(f->name, g->name, "--%s of '%s' is global", f->name,
					  path);
			cr_assert(!f->alias || strcmp(f->alias, g->name) != 0);
			cr_assert(!f->short_name || f->short_name != g->short_name);
			cr_assert_neq(f->id, g->id);
		}
		for (const struct shp_flag *g = s->opts; g->name; g++) {
			if (g == f)
				continue;
			cr_assert_str_neq(f->name, g->name);
			cr_assert_neq(f->id, g->id, "--%s and --%s share an id", f->name, g->name);
		}
		/* The usage string shows it, in brackets unless required. */
		(void)snprintf(word, sizeof(word), "--%s", f->name);
		at = strstr(s->usage, word);
		cr_assert_not_null(at, "the usage of '%s' lacks %s", path, word);
		cr_assert_eq(f->required, at == s->usage || at[-1] != '[', "%s of '%s' is %s", word,
			     path, f->required ? "required" : "optional");
	}
}

Test(table, options_match_usage_and_never_clash)
{
	each_entry(check_flags);
}

Test(table, global_options_are_unique)
{
	for (const struct shp_flag *f = cli_global_flags; f->name; f++)
		for (const struct shp_flag *g = f + 1; g->name; g++) {
			cr_assert_str_neq(f->name, g->name);
			cr_assert_neq(f->id, g->id);
			cr_assert(!f->short_name || f->short_name != g->short_name);
		}
	cr_assert_eq(cli_flag_by_id(globals, CLI_OPT_OUTPUT)->short_name, 'o');
	cr_assert_null(cli_flag_by_id(globals, CLI_OPT_LOCAL));
}

Test(table, lookups)
{
	const struct shp_cmd *ns = cli_find_cmd("namespace");

	cr_assert_not_null(ns);
	cr_assert_eq(cli_find_cmd("ns"), ns, "aliases find the command");
	cr_assert_null(cli_find_cmd("names"), "no prefix matching");
	cr_assert_null(cli_find_cmd("Namespace"));
	cr_assert_not_null(cli_find_subcmd(ns, "create"));
	cr_assert_null(cli_find_subcmd(ns, "creat"));
	cr_assert_null(cli_find_subcmd(cli_find_cmd("version"), "x"));
	cr_assert_str_eq(cli_cmd_path(ns, cli_find_subcmd(ns, "list")), "namespace list");
	cr_assert_str_eq(cli_suggest_cmd("namespaec"), "namespace");
	cr_assert_str_eq(cli_suggest_cmd("clutser"), "cluster");
	cr_assert_str_eq(cli_suggest_subcmd(ns, "lsit"), "list");
	cr_assert_null(cli_suggest_cmd("__man-command"), "hidden commands are never suggested");
	for (const struct shp_cmd *const *c = cli_visible_commands(); *c; c++)
		cr_assert(!cli_cmd_is_hidden(*c));
}

static void overview(FILE *f, const void *arg)
{
	cli_help_overview(f);
}

static void command_help(FILE *f, const void *arg)
{
	cli_help_command(f, arg);
}

Test(help, overview_lists_visible_commands_and_global_options)
{
	char *text = capture(overview, NULL);

	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		char line[80];

		(void)snprintf(line, sizeof(line), "\n  %s ", (*c)->name);
		if (cli_cmd_is_hidden(*c))
			cr_assert_null(strstr(text, (*c)->name), "%s is hidden", (*c)->name);
		else
			cr_assert_not_null(strstr(text, line), "%s is listed", (*c)->name);
	}
	for (const struct shp_flag *f = cli_global_flags; f->name; f++) {
		char word[80];

		(void)snprintf(word, sizeof(word), "--%s", f->name);
		cr_assert_not_null(strstr(text, word), "%s is listed", word);
	}
	cr_assert_not_null(strstr(text, "-o, --output FORMAT"));
	cr_assert_not_null(strstr(text, "(alias: ns)"));
	free(text);
}

Test(help, command_help_lists_verbs_and_verb_help_the_options)
{
	const struct shp_cmd *cluster = cli_find_cmd("cluster");
	char *text = capture(command_help, cluster);
	char *verb = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_not_null(strstr(text, "Usage: shepherd cluster VERB"));
	for (const struct shp_subcmd *s = cluster->subcmds; s->name; s++)
		cr_assert_not_null(strstr(text, s->summary), "%s", s->name);
	free(text);

	f = open_memstream(&verb, &len);
	cli_help_subcmd(f, cluster, cli_find_subcmd(cluster, "add"));
	fclose(f);
	cr_assert_not_null(strstr(verb, "Usage: shepherd cluster add NAME [--kubeconfig FILE]"));
	cr_assert_not_null(strstr(verb, "--environment, --env ENV"));
	cr_assert_not_null(strstr(verb, "(test or"));
	cr_assert_not_null(strstr(verb, "prod; required)"));
	cr_assert_not_null(strstr(verb, "-h, --help"));
	for (const char *p = verb; *p; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] ? 1 : 0))
		cr_assert_leq(strcspn(p, "\n"), 80, "help lines fit 80 columns");
	free(verb);
}

Test(help, wrap)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_wrap(f, "one two three four five six\n\nseven", 2, 14);
	fclose(f);
	cr_assert_str_eq(text, "  one two\n  three four\n  five six\n\n  seven\n");
	free(text);
}
