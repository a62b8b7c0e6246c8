/*
 * shepherd help, and the hidden generators of shepherd(1)'s COMMANDS and GLOBAL OPTIONS
 * sections and of the NAME, SYNOPSIS and OPTIONS sections of each shepherd-NOUN(1) (roff, from
 * the command table; tests/cli/t0002-manpage.sh keeps the pages equal to their output).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "i18n.h"

static int cmd_help_run(int argc, char **argv, struct cli_ctx *ctx)
{
	const struct shp_cmd *cmd;
	const struct shp_subcmd *sub;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		cli_help_overview(stdout);
		return 0;
	}
	cmd = cli_find_cmd(argv[0]);
	if (!cmd) {
		const char *hint = cli_suggest_cmd(argv[0]);

		if (hint)
			return cli_usage_error(ctx, _("unknown command '%s'; did you mean '%s'?"),
					       argv[0], hint);
		return cli_usage_error(ctx, _("unknown command '%s'"), argv[0]);
	}
	if (argc == 1) {
		cli_help_command(stdout, cmd);
		return 0;
	}
	if (!cmd->subcmds)
		return cli_usage_error(ctx, _("'%s' has no verbs"), cmd->name);
	sub = cli_find_subcmd(cmd, argv[1]);
	if (!sub) {
		const char *hint = cli_suggest_subcmd(cmd, argv[1]);

		if (hint)
			return cli_usage_error(ctx,
					       _("unknown verb '%s' for '%s'; did you mean '%s'?"),
					       argv[1], cmd->name, hint);
		return cli_usage_error(ctx, _("unknown verb '%s' for '%s'"), argv[1], cmd->name);
	}
	cli_help_subcmd(stdout, cmd, sub);
	return 0;
}

/*
 * Text for roff: backslashes, a leading dot or quote, and the dashes of options ("-o",
 * "--resource-type": every dash of a word that starts with one is a minus sign, so that what is
 * copied from the page can be typed).
 */
static void roff_escape(struct shp_buf *b, const char *s, size_t n)
{
	bool option = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		char prev = i ? s[i - 1] : ' ';

		if (i == 0 && (b->len == 0 || b->buf[b->len - 1] == '\n') &&
		    (c == '.' || c == '\''))
			xbuf_add(b, "\\&");
		if (c == '-' && strchr(" [(|'", prev))
			option = true;
		else if (!(c == '-' || c == '_' || (c >= 'a' && c <= 'z') ||
			   (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			option = false;
		if (c == '\\')
			xbuf_add(b, "\\e");
		else if (c == '-' && option)
			xbuf_add(b, "\\-");
		else if (c == '\n')
			xbuf_addn(b, " ", 1);
		else
			xbuf_addn(b, &c, 1);
	}
}

/* A help line as a sentence: capital first letter, full stop. */
static void roff_sentence(struct shp_buf *b, const char *s)
{
	/* ASCII only: the generated pages must not depend on the locale */
	char first = s[0] >= 'a' && s[0] <= 'z' ? (char)(s[0] - 'a' + 'A') : s[0];
	size_t n = strlen(s);

	xbuf_addn(b, &first, 1);
	roff_escape(b, s + 1, n - 1);
	if (n && s[n - 1] != '.')
		xbuf_add(b, ".");
}

/* "NAME --environment test|prod": options bold, metavariables italic, literals bold. */
static void roff_usage(struct shp_buf *b, const char *usage)
{
	static const char word_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					 "0123456789_-.";

	for (const char *p = usage; *p;) {
		size_t n = strspn(p, word_chars);
		bool meta = true;

		if (n == 0) {
			roff_escape(b, p, 1);
			p++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (islower((unsigned char)p[i]) || p[i] == '-')
				meta = false;
		xbuf_add(b, meta ? "\\fI" : "\\fB");
		for (size_t i = 0; i < n; i++)
			xbuf_add(b, p[i] == '-' ? "\\-" : (char[]){p[i], '\0'});
		xbuf_add(b, "\\fR");
		p += n;
	}
}

/* Paragraphs of text, the first one plain, the next ones after a paragraph macro. */
static void roff_paragraphs(struct shp_buf *b, const char *text, const char *macro)
{
	const char *p = text;

	while (*p) {
		const char *end = strstr(p, "\n\n");
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (p != text)
			xbuf_addf(b, "%s\n", macro);
		roff_escape(b, p, n);
		xbuf_add(b, "\n");
		p += n;
		p += strspn(p, "\n");
	}
}

/* "--name" with every dash a minus sign. */
static void roff_option(struct shp_buf *b, const char *name)
{
	xbuf_add(b, "\\-\\-");
	for (const char *p = name; *p; p++)
		xbuf_add(b, *p == '-' ? "\\-" : (char[]){*p, '\0'});
}

static void roff_flag(struct shp_buf *b, const struct shp_flag *f)
{
	xbuf_add(b, ".TP\n");
	if (f->short_name)
		xbuf_addf(b, "\\fB\\-%c\\fR, ", f->short_name);
	xbuf_add(b, "\\fB");
	roff_option(b, f->name);
	xbuf_add(b, "\\fR");
	if (f->alias) {
		xbuf_add(b, ", \\fB");
		roff_option(b, f->alias);
		xbuf_add(b, "\\fR");
	}
	if (f->arg)
		xbuf_addf(b, " \\fI%s\\fR", f->arg);
	xbuf_add(b, "\n");
	roff_sentence(b, f->help);
	if (f->values) {
		xbuf_add(b, " One of");
		for (size_t i = 0; f->values[i]; i++)
			xbuf_addf(b, "%s\\fB%s\\fR", i ? ", " : " ", f->values[i]);
		xbuf_add(b, ".");
	}
	if (f->required)
		xbuf_add(b, " Required.");
	xbuf_add(b, "\n");
}

static void roff_entry(struct shp_buf *b, const struct shp_cmd *cmd, const struct shp_subcmd *sub)
{
	xbuf_addf(b, ".TP\n\\fBshepherd %s\\fR", cli_cmd_path(cmd, sub));
	if (sub->usage && sub->usage[0]) {
		xbuf_add(b, " ");
		roff_usage(b, sub->usage);
	}
	xbuf_add(b, "\n");
	roff_paragraphs(b, sub->description, ".IP");
	if (!sub->opts || !sub->opts[0].name)
		return;
	xbuf_add(b, ".RS\n");
	for (const struct shp_flag *f = sub->opts; f->name; f++)
		roff_flag(b, f);
	xbuf_add(b, ".RE\n");
}

static int print_buf(struct shp_buf *b)
{
	fwrite(b->buf, 1, b->len, stdout);
	shp_buf_release(b);
	return 0;
}

/* shepherd-NOUN(1)'s NAME: "shepherd\-token \- manage API tokens". */
static void man_noun_name(struct shp_buf *b, const struct shp_cmd *cmd)
{
	xbuf_add(b, "shepherd\\-");
	roff_escape(b, cmd->name, strlen(cmd->name));
	xbuf_add(b, " \\- ");
	roff_escape(b, cmd->summary, strlen(cmd->summary));
	xbuf_add(b, "\n");
}

static void man_usage_line(struct shp_buf *b, const struct shp_cmd *cmd, const struct shp_subcmd *s)
{
	if (b->len)
		xbuf_add(b, ".br\n");
	xbuf_addf(b, "\\fBshepherd %s\\fR", cli_cmd_path(cmd, s));
	if (s->usage && s->usage[0]) {
		xbuf_add(b, " ");
		roff_usage(b, s->usage);
	}
	xbuf_add(b, "\n");
}

/* Its SYNOPSIS: one usage line per verb. */
static void man_noun_synopsis(struct shp_buf *b, const struct shp_cmd *cmd)
{
	if (cmd->self)
		man_usage_line(b, cmd, cmd->self);
	for (const struct shp_subcmd *s = cmd->subcmds; s && s->name; s++)
		if (!(s->flags & CMD_HIDDEN))
			man_usage_line(b, cmd, s);
}

/* Its OPTIONS: each verb, what it does, and its options (as in shepherd(1)'s COMMANDS). */
static void man_noun_options(struct shp_buf *b, const struct shp_cmd *cmd)
{
	if (cmd->self)
		roff_entry(b, cmd, cmd->self);
	for (const struct shp_subcmd *s = cmd->subcmds; s && s->name; s++)
		if (!(s->flags & CMD_HIDDEN))
			roff_entry(b, cmd, s);
}

/* "__man-commands NOUN name|synopsis|options": a generated block of shepherd-NOUN(1). */
static int man_noun(struct cli_ctx *ctx, const char *noun, const char *section)
{
	struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	const struct shp_cmd *cmd = cli_find_cmd(noun);

	if (!cmd || cli_cmd_is_hidden(cmd) || strcmp(cmd->name, noun) != 0)
		return cli_usage_error(ctx, _("unknown command '%s'"), noun);
	if (strcmp(section, "name") == 0)
		man_noun_name(&b, cmd);
	else if (strcmp(section, "synopsis") == 0)
		man_noun_synopsis(&b, cmd);
	else if (strcmp(section, "options") == 0)
		man_noun_options(&b, cmd);
	else
		return cli_usage_error(ctx, _("unknown section '%s' (name, synopsis or options)"),
				       section);
	return print_buf(&b);
}

static int cmd_man_commands_run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if (argc - optind == 2)
		return man_noun(ctx, argv[optind], argv[optind + 1]);
	if (argc - optind == 1)
		return cli_usage_error(ctx, _("'%s' needs a section: name, synopsis or options"),
				       argv[optind]);
	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		const struct shp_cmd *cmd = *c;

		if (cli_cmd_is_hidden(cmd))
			continue;
		xbuf_addf(&b, ".SS %s\n", cmd->name);
		if (cmd->description) {
			roff_paragraphs(&b, cmd->description, ".PP");
			if (cmd->alias)
				xbuf_addf(&b, "May be shortened to \\fB%s\\fR.\n", cmd->alias);
		}
		if (cmd->self)
			roff_entry(&b, cmd, cmd->self);
		for (const struct shp_subcmd *s = cmd->subcmds; s && s->name; s++)
			if (!(s->flags & CMD_HIDDEN))
				roff_entry(&b, cmd, s);
	}
	return print_buf(&b);
}

static int cmd_man_options_run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	for (const struct shp_flag *f = cli_global_flags; f->name; f++)
		roff_flag(&b, f);
	return print_buf(&b);
}

static const struct shp_subcmd help_entry = {
	.fn = cmd_help_run,
	.max_args = 2,
	.usage = "[COMMAND [VERB]]",
	.flags = CMD_READONLY,
	.summary = N_("show help for a command or verb"),
	.description = N_("Without arguments, list the commands and the global options. With a "
			  "COMMAND, show its verbs; with a COMMAND and a VERB, the verb's usage, "
			  "description and options. 'shepherd COMMAND --help' and "
			  "'shepherd COMMAND VERB --help' show the same."),
	.args_complete = CLI_COMPLETE_COMMAND,
};

const struct shp_cmd cmd_help = {
	.name = "help",
	.summary = N_("show help for a command or verb"),
	.self = &help_entry,
};

static const struct shp_subcmd man_commands_entry = {
	.fn = cmd_man_commands_run,
	.max_args = 2,
	.usage = "[COMMAND name|synopsis|options]",
	.flags = CMD_READONLY | CMD_HIDDEN,
	.summary = N_("print the COMMANDS section of shepherd(1)"),
	.description = N_("Print the COMMANDS section of shepherd(1) in roff, generated from the "
			  "command table. With a COMMAND, print the NAME, SYNOPSIS or OPTIONS "
			  "section of its own page, shepherd-COMMAND(1)."),
};

const struct shp_cmd cmd_man_commands = {
	.name = "__man-commands",
	.summary = N_("print the COMMANDS section of shepherd(1)"),
	.self = &man_commands_entry,
};

static const struct shp_subcmd man_options_entry = {
	.fn = cmd_man_options_run,
	.flags = CMD_READONLY | CMD_HIDDEN,
	.summary = N_("print the GLOBAL OPTIONS section of shepherd(1)"),
	.description = N_("Print the GLOBAL OPTIONS section of shepherd(1) in roff, generated from "
			  "the option table."),
};

const struct shp_cmd cmd_man_options = {
	.name = "__man-options",
	.summary = N_("print the GLOBAL OPTIONS section of shepherd(1)"),
	.self = &man_options_entry,
};
