/*
 * Help text, generated from the command table: the overview (shepherd --help), a command's verbs
 * (shepherd NOUN --help) and a verb's usage, description and options (shepherd NOUN VERB --help).
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "i18n.h"

#define HELP_WIDTH 80
#define OPTION_COLUMN 34

/*
 * Word-wrap text to width columns. The output is at column col already (0: a line start); new
 * lines are indented by indent. "\n\n" separates paragraphs.
 */
static void wrap_from(FILE *out, const char *text, int col, int indent, int width)
{
	bool line_empty = true;
	const char *p = text;

	while (*p) {
		size_t n;

		if (strncmp(p, "\n\n", 2) == 0) {
			fputs(line_empty ? "\n" : "\n\n", out);
			col = 0;
			line_empty = true;
			p += 2;
			continue;
		}
		if (*p == ' ' || *p == '\n') {
			p++;
			continue;
		}
		n = strcspn(p, " \n");
		if (!line_empty && col + 1 + (int)n > width) {
			fputc('\n', out);
			col = 0;
			line_empty = true;
		}
		if (col == 0)
			col = fprintf(out, "%*s", indent, "");
		col += fprintf(out, "%s%.*s", line_empty ? "" : " ", (int)n, p);
		line_empty = false;
		p += n;
	}
	if (!line_empty)
		fputc('\n', out);
}

void cli_wrap(FILE *out, const char *text, int indent, int width)
{
	wrap_from(out, text, 0, indent, width);
}

/* "-o, --output FORMAT" or "    --socket PATH" */
static void flag_synopsis(const struct shp_flag *f, struct shp_buf *b)
{
	if (f->short_name)
		xbuf_addf(b, "-%c, ", f->short_name);
	else
		xbuf_add(b, "    ");
	xbuf_addf(b, "--%s", f->name);
	if (f->alias)
		xbuf_addf(b, ", --%s", f->alias);
	if (f->arg)
		xbuf_addf(b, " %s", f->arg);
}

static void flag_help(const struct shp_flag *f, struct shp_buf *b)
{
	xbuf_add(b, cli_tr(f->help));
	if (f->values) {
		xbuf_add(b, " (");
		for (size_t i = 0; f->values[i]; i++)
			xbuf_addf(b, "%s%s",
				  i == 0             ? ""
				  : f->values[i + 1] ? ", "
						     : _(" or "),
				  f->values[i]);
		xbuf_add(b, f->required ? _("; required)") : ")");
	} else if (f->required) {
		xbuf_add(b, _(" (required)"));
	}
}

static void print_flags(FILE *out, const struct shp_flag *flags)
{
	for (const struct shp_flag *f = flags; f && f->name; f++) {
		_cleanup_(shp_buf_releasep) struct shp_buf syn = SHP_BUF_INIT(CLI_BUF_MAX);
		_cleanup_(shp_buf_releasep) struct shp_buf help = SHP_BUF_INIT(CLI_BUF_MAX);

		flag_synopsis(f, &syn);
		flag_help(f, &help);
		if (2 + syn.len + 2 > OPTION_COLUMN) {
			fprintf(out, "  %s\n", syn.buf);
			wrap_from(out, help.buf, 0, OPTION_COLUMN, HELP_WIDTH);
		} else {
			fprintf(out, "  %-*s", OPTION_COLUMN - 2, syn.buf);
			wrap_from(out, help.buf, OPTION_COLUMN, OPTION_COLUMN, HELP_WIDTH);
		}
	}
}

void cli_print_usage(FILE *out, const struct shp_cmd *cmd, const struct shp_subcmd *sub)
{
	fprintf(out, "shepherd %s", cli_cmd_path(cmd, sub));
	if (sub && sub->usage && sub->usage[0])
		fprintf(out, " %s", sub->usage);
	fputc('\n', out);
}

void cli_help_overview(FILE *out)
{
	size_t w = 0;

	fputs(_("Usage: shepherd [OPTIONS] COMMAND [VERB] [ARGUMENTS]\n\n"), out);
	cli_wrap(out,
		 _("shepherd governs virtual machines on KubeVirt clusters through the "
		   "shepherdd daemon."),
		 0, HELP_WIDTH);
	fputs(_("\nCommands:\n"), out);
	for (const struct shp_cmd *const *c = cli_commands; *c; c++)
		if (!cli_cmd_is_hidden(*c) && strlen((*c)->name) > w)
			w = strlen((*c)->name);
	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		if (cli_cmd_is_hidden(*c))
			continue;
		fprintf(out, "  %-*s   %s", (int)w, (*c)->name, cli_tr((*c)->summary));
		if ((*c)->alias)
			fprintf(out, _(" (alias: %s)"), (*c)->alias);
		fputc('\n', out);
	}
	fputs(_("\nGlobal options:\n"), out);
	print_flags(out, cli_global_flags);
	fputs("\n", out);
	cli_wrap(out,
		 _("Run 'shepherd help COMMAND' or 'shepherd COMMAND --help' for the verbs of a "
		   "command. See shepherd(1) for output formats, configuration and exit statuses."),
		 0, HELP_WIDTH);
}

void cli_help_command(FILE *out, const struct shp_cmd *cmd)
{
	size_t w = 0;

	if (cmd->self) {
		cli_help_subcmd(out, cmd, cmd->self);
		return;
	}
	fprintf(out, _("Usage: shepherd %s VERB [ARGUMENTS]\n\n"), cmd->name);
	cli_wrap(out, cli_tr(cmd->description), 0, HELP_WIDTH);
	if (cmd->alias)
		fprintf(out, _("\nAlias: %s\n"), cmd->alias);
	fputs(_("\nVerbs:\n"), out);
	for (const struct shp_subcmd *s = cmd->subcmds; s->name; s++)
		if (strlen(s->name) > w)
			w = strlen(s->name);
	for (const struct shp_subcmd *s = cmd->subcmds; s->name; s++)
		if (!(s->flags & CMD_HIDDEN))
			fprintf(out, "  %-*s   %s\n", (int)w, s->name, cli_tr(s->summary));
	fprintf(out, _("\nRun 'shepherd %s VERB --help' for the options of a verb.\n"), cmd->name);
}

/*
 * "Usage: shepherd NOUN VERB ARGS", the arguments wrapped under the first one; a bracketed
 * group ("[--limit N]") is never split.
 */
static void print_usage_wrapped(FILE *out, const struct shp_cmd *cmd, const struct shp_subcmd *sub)
{
	int indent = fprintf(out, _("Usage: shepherd %s"), cli_cmd_path(cmd, sub)) + 1;
	int col = indent - 1;
	const char *p = sub->usage ? sub->usage : "";

	while (*p) {
		size_t n = 0;
		int depth = 0;

		p += strspn(p, " ");
		while (p[n] && (depth > 0 || p[n] != ' ')) {
			depth += p[n] == '[' ? 1 : p[n] == ']' ? -1 : 0;
			n++;
		}
		if (n == 0)
			break;
		if (col + 1 + (int)n > HELP_WIDTH && col > indent)
			col = fprintf(out, "\n%*s", indent - 1, "") - 1;
		col += fprintf(out, " %.*s", (int)n, p);
		p += n;
	}
	fputc('\n', out);
}

void cli_help_subcmd(FILE *out, const struct shp_cmd *cmd, const struct shp_subcmd *sub)
{
	static const struct shp_flag help_flag[] = {
		{"help", CLI_OPT_HELP, 'h', NULL, NULL, N_("show this help")},
		{NULL},
	};

	print_usage_wrapped(out, cmd, sub);
	fputc('\n', out);
	cli_wrap(out, cli_tr(sub->description), 0, HELP_WIDTH);
	if (sub->flags & CMD_SYNC) {
		fputc('\n', out);
		cli_wrap(out,
			 _("This command completes before it returns: there is nothing to wait "
			   "for."),
			 0, HELP_WIDTH);
	}
	if (cmd->alias)
		fprintf(out, _("\n'%s' may be shortened to '%s'.\n"), cmd->name, cmd->alias);
	fputs(_("\nOptions:\n"), out);
	print_flags(out, sub->opts);
	print_flags(out, help_flag);
	fputs(_("\nThe global options (see 'shepherd --help') may also follow the verb.\n"), out);
}
