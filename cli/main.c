/*
 * shepherd's entry point: global options, dispatch through the command table (exact names and
 * aliases only, a "did you mean" for typos), the option, value and argument-count checks the
 * table asks for, the handler, then the error report, the exit status and git's check that
 * stdout really was written.
 */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "error.h"
#include "httpc.h"
#include "i18n.h"
#include "messages.h"
#include "output.h"

#define DEFAULT_WIDTH 80
#define MAX_LOCAL_FLAGS 32

static const struct shp_flag no_flags[] = {{NULL}};

void cli_ctx_init(struct cli_ctx *ctx)
{
	*ctx = (struct cli_ctx){.format = CLI_FORMAT_TABLE, .err = SHP_ERROR_INIT};
	cli_config_init(&ctx->config);
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	cli_config_release(&ctx->config);
	ctx->http = shp_httpc_free(ctx->http);
	json_decref(ctx->error_body);
	free(ctx->longopts);
	free(ctx->shortopts);
	cli_ctx_init(ctx);
}

static void set_options(struct cli_ctx *ctx, const struct shp_flag *const *sets, bool stop)
{
	free(ctx->longopts);
	free(ctx->shortopts);
	cli_build_options(sets, stop, &ctx->longopts, &ctx->shortopts);
	opterr = 0;
	optind = 0; /* glibc: start over, forgetting the previous scan */
}

static void setup_terminal(struct cli_ctx *ctx)
{
	struct winsize ws;
	const char *no_color = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	ctx->stdout_tty = isatty(STDOUT_FILENO);
	ctx->term_width = 0;
	if (ctx->stdout_tty)
		ctx->term_width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0
					  ? ws.ws_col
					  : DEFAULT_WIDTH;
	ctx->color = ctx->stdout_tty && !ctx->no_color && !(no_color && no_color[0]) &&
		     ctx->config.color != 0 && !(term && strcmp(term, "dumb") == 0);
}

static int unknown_command(struct cli_ctx *ctx, const char *word)
{
	const char *hint = cli_suggest_cmd(word);

	if (hint)
		return cli_usage_error(ctx, _("unknown command '%s'; did you mean '%s'?"), word,
				       hint);
	return cli_usage_error(ctx, _("unknown command '%s'"), word);
}

/* A verb is one of a few: when none is close to the typo, name them all. */
static int unknown_verb(struct cli_ctx *ctx, const char *word)
{
	_cleanup_(shp_buf_releasep) struct shp_buf verbs = SHP_BUF_INIT(CLI_BUF_MAX);
	const char *hint = cli_suggest_subcmd(ctx->cmd, word);

	if (hint)
		return cli_usage_error(ctx, _("unknown verb '%s' for '%s'; did you mean '%s'?"),
				       word, ctx->cmd->name, hint);
	for (const struct shp_subcmd *s = ctx->cmd->subcmds; s->name; s++)
		if (!(s->flags & CMD_HIDDEN))
			xbuf_addf(&verbs, "%s%s", verbs.len ? ", " : "", s->name);
	return cli_usage_error(ctx, _("unknown verb '%s' for '%s'; did you mean one of: %s?"), word,
			       ctx->cmd->name, verbs.buf);
}

static int check_arity(struct cli_ctx *ctx, int nargs)
{
	const struct shp_subcmd *sub = ctx->sub;
	const char *path = cli_cmd_path(ctx->cmd, sub);

	if (nargs >= sub->min_args && (sub->max_args < 0 || nargs <= sub->max_args))
		return 0;
	if (sub->max_args == 0)
		return cli_usage_error(ctx, _("'%s' takes no arguments"), path);
	if (sub->min_args == sub->max_args)
		return cli_usage_error(ctx,
				       ngettext("'%s' takes %d argument, not %d",
						"'%s' takes %d arguments, not %d", sub->min_args),
				       path, sub->min_args, nargs);
	if (sub->max_args < 0)
		return cli_usage_error(ctx,
				       ngettext("'%s' takes at least %d argument",
						"'%s' takes at least %d arguments", sub->min_args),
				       path, sub->min_args);
	return cli_usage_error(ctx, _("'%s' takes %d to %d arguments, not %d"), path, sub->min_args,
			       sub->max_args, nargs);
}

/* The options of the command: its own (value-checked) and the global ones, anywhere. */
static int parse_command_options(struct cli_ctx *ctx, int argc, char **argv, bool *ret_help)
{
	const struct shp_flag *local = ctx->sub->opts ? ctx->sub->opts : no_flags;
	const struct shp_flag *const sets[] = {local, cli_global_flags, NULL};
	const struct shp_flag *const local_set[] = {local, NULL};
	bool seen[MAX_LOCAL_FLAGS] = {false};
	const char *path = cli_cmd_path(ctx->cmd, ctx->sub);
	const struct shp_flag *f;
	int c, r;

	set_options(ctx, sets, false);
	while ((c = cli_next_option(ctx, argc, argv, path)) != -1) {
		if (c == CLI_OPT_FAILED)
			return -SHP_E_USAGE;
		if (c == CLI_OPT_HELP) {
			*ret_help = true;
			continue;
		}
		f = cli_flag_by_id(local_set, c);
		if (!f) {
			r = cli_apply_global(ctx, c, optarg);
			if (r < 0)
				return r;
			continue;
		}
		r = cli_check_value(f, optarg ? optarg : "", &ctx->err);
		if (r < 0)
			return r;
		if (f - local < MAX_LOCAL_FLAGS)
			seen[f - local] = true;
	}
	if (*ret_help)
		return 0;
	r = check_arity(ctx, argc - optind);
	if (r < 0)
		return r;
	for (f = local; f->name; f++)
		if (f->required && f - local < MAX_LOCAL_FLAGS && !seen[f - local])
			return cli_usage_error(ctx, _("'%s' needs '--%s %s'"), path, f->name,
					       f->arg);
	return 0;
}

static int run_subcmd(struct cli_ctx *ctx, int argc, char **argv)
{
	bool help = false;
	int r;

	r = parse_command_options(ctx, argc, argv, &help);
	if (r < 0)
		return r;
	if (help) {
		cli_help_subcmd(stdout, ctx->cmd, ctx->sub);
		return 0;
	}
	if (ctx->sub->flags & CMD_NEEDS_DAEMON) {
		r = cli_config_load(&ctx->config, &ctx->err);
		if (r < 0)
			return r;
		if (!ctx->format_set && ctx->config.output.value)
			ctx->format =
				(enum cli_format)cli_format_from_string(ctx->config.output.value);
	}
	setup_terminal(ctx);
	optind = 0;
	return ctx->sub->fn(argc, argv, ctx);
}

static int run(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct shp_flag *const sets[] = {cli_global_flags, NULL};
	bool help = false, version = false;
	int c, r;

	set_options(ctx, sets, true);
	while ((c = cli_next_option(ctx, argc, argv, "shepherd")) != -1) {
		if (c == CLI_OPT_FAILED)
			return -SHP_E_USAGE;
		if (c == CLI_OPT_HELP)
			help = true;
		else if (c == CLI_OPT_VERSION)
			version = true;
		else if ((r = cli_apply_global(ctx, c, optarg)) < 0)
			return r;
	}
	setup_terminal(ctx);
	if (version) {
		printf("shepherd %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (help || optind == argc) {
		cli_help_overview(stdout);
		return 0;
	}
	return cli_run_command(ctx, argc - optind, argv + optind);
}

int cli_run_command(struct cli_ctx *ctx, int argc, char **argv)
{
	ctx->cmd = cli_find_cmd(argv[0]);
	if (!ctx->cmd)
		return unknown_command(ctx, argv[0]);
	if (ctx->cmd->self) {
		ctx->sub = ctx->cmd->self;
		return run_subcmd(ctx, argc, argv);
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		cli_help_command(stdout, ctx->cmd);
		return 0;
	}
	/* "shepherd inbox --unread" is "shepherd inbox list --unread" */
	if (ctx->cmd->default_verb && (argc < 2 || argv[1][0] == '-')) {
		ctx->sub = cli_find_subcmd(ctx->cmd, ctx->cmd->default_verb);
		return run_subcmd(ctx, argc, argv);
	}
	if (argc < 2)
		return cli_usage_error(ctx, _("'%s' needs a verb"), ctx->cmd->name);
	if (argv[1][0] == '-')
		return cli_usage_error(ctx, _("'%s' needs a verb before its options"),
				       ctx->cmd->name);
	ctx->sub = cli_find_subcmd(ctx->cmd, argv[1]);
	if (!ctx->sub)
		return unknown_verb(ctx, argv[1]);
	return run_subcmd(ctx, argc - 1, argv + 1);
}

static void usage_hint(const struct cli_ctx *ctx)
{
	if (ctx->sub) {
		fputs(_("usage: "), stderr);
		cli_print_usage(stderr, ctx->cmd, ctx->sub);
		fprintf(stderr, _("Run 'shepherd %s --help' for more.\n"),
			cli_cmd_path(ctx->cmd, ctx->sub));
	} else if (ctx->cmd) {
		fprintf(stderr, _("Run 'shepherd %s --help' for its verbs.\n"), ctx->cmd->name);
	} else {
		fputs(_("Run 'shepherd --help' for the commands.\n"), stderr);
	}
}

int cli_report_error(struct cli_ctx *ctx)
{
	const struct shp_error *e = &ctx->err;
	enum shp_errc code = e->code == SHP_OK ? SHP_E_INTERNAL : e->code;
	/* a known refusal in the user's language, from its code and details */
	_cleanup_free_ char *said = cli_error_message(e);
	_cleanup_free_ char *msg = cli_text_sanitize(said        ? said
						     : e->msg[0] ? e->msg
								 : shp_errc_api_code(code));
	bool details = ctx->verbose || shp_errc_exit_status(code) == SHP_EXIT_INVALID;
	const char *request_id = NULL;

	/* Scripts parsing -o json get the daemon's error object on stdout too. */
	if (ctx->error_body && ctx->format == CLI_FORMAT_JSON)
		(void)cli_render_json(stdout, ctx->error_body);
	fprintf(stderr, "shepherd: error: %s\n", msg);
	if (said && ctx->verbose && e->msg[0]) {
		_cleanup_free_ char *own = cli_text_sanitize(e->msg);

		fprintf(stderr, _("  shepherdd said: %s\n"), own);
	}
	for (int i = 0; i < e->n_details; i++) {
		_cleanup_free_ char *v = cli_text_sanitize(e->details[i].value);
		_cleanup_free_ char *k = cli_text_sanitize(e->details[i].key);

		if (strcmp(e->details[i].key, SHP_API_FIELD_REQUEST_ID) == 0)
			request_id = e->details[i].value;
		else if (details)
			fprintf(stderr, "  %s: %s\n", k, v);
	}
	if (request_id && ctx->verbose) {
		_cleanup_free_ char *rid = cli_text_sanitize(request_id);

		fprintf(stderr, _("  request id: %s\n"), rid);
	}
	if (code == SHP_E_UNREACHABLE)
		fputs(_("hint: is shepherdd running? start it with 'shepherdd' (see shepherdd(8)), "
			"or "
			"point --socket/--server at it\n"),
		      stderr);
	if (code == SHP_E_USAGE && ctx->usage_hint)
		usage_hint(ctx);
	return ctx->exit_status ? ctx->exit_status : (int)shp_errc_exit_status(code);
}

/* git's check: output that could not be written is a failure, unless the reader went away. */
static int close_stdout(void)
{
	struct stat st;
	bool is_pipe =
		fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
	int r = 0;

	if (fflush(stdout) != 0 && errno != EPIPE && !is_pipe) {
		perror("shepherd: error: write failure on standard output");
		r = -1;
	} else if (ferror(stdout) && !is_pipe) {
		fprintf(stderr, "shepherd: error: %s\n", _("write failure on standard output"));
		r = -1;
	}
	if (fclose(stdout) != 0 && r == 0 && errno != EPIPE && !is_pipe) {
		perror("shepherd: error: close failed on standard output");
		r = -1;
	}
	return r;
}

/*
 * The user's locale for messages and characters, but numbers stay in C: values on the command
 * line ("--timeout 1.5") and in files are parsed the same everywhere. SHEPHERD_LOCALEDIR
 * replaces the installed catalogue directory (tests use a catalogue built on the spot).
 */
static void setup_messages(void)
{
	const char *dir = getenv("SHEPHERD_LOCALEDIR");

	(void)setlocale(LC_ALL, "");
	(void)setlocale(LC_NUMERIC, "C");
	(void)bindtextdomain(PACKAGE, dir && dir[0] ? dir : SHP_LOCALEDIR);
	(void)textdomain(PACKAGE);
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx;
	int status = SHP_EXIT_OK;

	setup_messages();
	cli_ctx_init(&ctx);
	if (run(&ctx, argc, argv) < 0)
		status = cli_report_error(&ctx);
	else /* a handler that reported its failures itself (the shell) */
		status = ctx.exit_status;
	if (close_stdout() < 0 && status == SHP_EXIT_OK)
		status = SHP_EXIT_FAILURE;
	cli_ctx_release(&ctx);
	return status;
}
