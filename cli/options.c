/*
 * Options, from the table to getopt_long: building the option arrays, refusing abbreviated long
 * names (an abbreviation that works today breaks when a longer option arrives), checking
 * values against the table, and applying the global options to the context.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cli.h"
#include "error.h"
#include "i18n.h"

void cli_build_options(const struct shp_flag *const *sets, bool stop_at_nonoption,
		       struct option **ret_long, char **ret_short)
{
	size_t n = 0, k = 0;
	struct option *lo;
	struct shp_buf so = SHP_BUF_INIT(CLI_BUF_MAX);

	for (size_t i = 0; sets[i]; i++)
		for (const struct shp_flag *f = sets[i]; f->name; f++)
			n += f->alias ? 2 : 1;
	lo = xcalloc(n + 1, sizeof(*lo));
	/* '+': stop at the first non-option; ':': report a missing value as ':'. */
	xbuf_add(&so, stop_at_nonoption ? "+:" : ":");
	for (size_t i = 0; sets[i]; i++) {
		for (const struct shp_flag *f = sets[i]; f->name; f++) {
			int has_arg = f->arg ? required_argument : no_argument;

			lo[k++] = (struct option){f->name, has_arg, NULL, f->id};
			if (f->alias)
				lo[k++] = (struct option){f->alias, has_arg, NULL, f->id};
			if (f->short_name)
				xbuf_addf(&so, "%c%s", f->short_name, f->arg ? ":" : "");
		}
	}
	*ret_long = lo;
	*ret_short = shp_buf_detach(&so, NULL);
	if (!*ret_short)
		abort();
}

const struct shp_flag *cli_flag_by_id(const struct shp_flag *const *sets, int id)
{
	for (size_t i = 0; sets[i]; i++)
		for (const struct shp_flag *f = sets[i]; f->name; f++)
			if (f->id == id)
				return f;
	return NULL;
}

/* "a, b or c" */
static void values_text(const char *const *values, struct shp_buf *out)
{
	for (size_t i = 0; values[i]; i++)
		xbuf_addf(out, "%s%s", i == 0 ? "" : values[i + 1] ? ", " : " or ", values[i]);
}

int cli_check_value(const struct shp_flag *flag, const char *value, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf expected = SHP_BUF_INIT(4096);

	if (flag->arg && !value[0])
		return shp_error_set(err, SHP_E_USAGE, _("option '--%s' needs a non-empty value"),
				     flag->name);
	if (!flag->values)
		return 0;
	for (size_t i = 0; flag->values[i]; i++)
		if (strcmp(value, flag->values[i]) == 0)
			return 0;
	values_text(flag->values, &expected);
	return shp_error_set(err, SHP_E_INVAL, _("invalid value '%s' for '--%s' (expected %s)"),
			     value, flag->name, expected.buf);
}

static int parse_timeout(struct cli_ctx *ctx, const char *s)
{
	char *end;
	double secs;

	errno = 0;
	secs = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(secs) || secs <= 0 || secs > 86400)
		return cli_usage_error(ctx,
				       _("invalid value '%s' for '--timeout' (expected seconds, "
					 "more than 0 and at most 86400)"),
				       s);
	ctx->timeout_ms = (long)(secs * 1000 + 0.999);
	return 0;
}

int cli_apply_global(struct cli_ctx *ctx, int id, const char *arg)
{
	const struct shp_flag *const sets[] = {cli_global_flags, NULL};
	const struct shp_flag *flag = cli_flag_by_id(sets, id);
	struct cli_setting *s = NULL;
	int r;

	if (flag && flag->arg) {
		r = cli_check_value(flag, arg, &ctx->err);
		if (r < 0)
			return r;
	}
	switch (id) {
	case CLI_OPT_SOCKET: s = &ctx->config.socket; break;
	case CLI_OPT_SERVER: s = &ctx->config.server; break;
	case CLI_OPT_TOKEN: s = &ctx->config.token; break;
	case CLI_OPT_CACERT: s = &ctx->config.cacert; break;
	case CLI_OPT_CERT: s = &ctx->config.cert; break;
	case CLI_OPT_KEY: s = &ctx->config.key; break;
	case CLI_OPT_OUTPUT:
		ctx->format = (enum cli_format)cli_format_from_string(arg);
		ctx->format_set = true;
		break;
	case CLI_OPT_JSON:
		ctx->format = CLI_FORMAT_JSON;
		ctx->format_set = true;
		break;
	case CLI_OPT_NO_COLOR: ctx->no_color = true; break;
	case CLI_OPT_QUIET: ctx->quiet = true; break;
	case CLI_OPT_VERBOSE: ctx->verbose = true; break;
	case CLI_OPT_TIMEOUT: return parse_timeout(ctx, arg);
	case CLI_OPT_VERSION: return cli_usage_error(ctx, _("'--version' goes before the command"));
	default:
		return shp_error_set(&ctx->err, SHP_E_INTERNAL, _("unhandled global option %d"),
				     id);
	}
	if (s)
		cli_config_set(s, arg, CLI_SRC_FLAG, flag->name);
	return 0;
}

/*
 * The command line word holding the option getopt_long just returned: argv[optind - 1], or
 * argv[optind - 2] when the value was a separate word.
 */
static const char *option_word(char **argv, bool has_value)
{
	if (has_value && optind >= 2 && optarg == argv[optind - 1])
		return argv[optind - 2];
	return argv[optind - 1];
}

int cli_next_option(struct cli_ctx *ctx, int argc, char **argv, const char *what)
{
	int idx = -1;
	int c = getopt_long(argc, argv, ctx->shortopts, ctx->longopts, &idx);
	const char *word;
	size_t n;

	if (c == -1)
		return -1;
	if (c == '?' || c == ':') {
		/* optopt is the letter of a short option; a long one is named by its word. */
		char letter[3] = {'-', (char)optopt, '\0'};
		bool is_long = strncmp(argv[optind - 1], "--", 2) == 0;

		word = is_long ? argv[optind - 1] : letter;
		n = strcspn(word, "=");
		if (c == ':')
			(void)cli_usage_error(ctx, _("option '%.*s' needs a value"), (int)n, word);
		else
			(void)cli_usage_error(ctx, _("unknown option '%.*s' for '%s'"), (int)n,
					      word, what);
		return CLI_OPT_FAILED;
	}
	if (idx >= 0) {
		word = option_word(argv, ctx->longopts[idx].has_arg != no_argument);
		n = strcspn(word + 2, "=");
		if (strncmp(word, "--", 2) == 0 &&
		    (strlen(ctx->longopts[idx].name) != n ||
		     strncmp(word + 2, ctx->longopts[idx].name, n))) {
			(void)cli_usage_error(ctx,
					      _("unknown option '%.*s' for '%s' (did you mean "
						"'--%s'?)"),
					      (int)n + 2, word, what, ctx->longopts[idx].name);
			return CLI_OPT_FAILED;
		}
	}
	return c;
}

int cli_getopt(struct cli_ctx *ctx, int argc, char **argv)
{
	const struct shp_flag *const globals[] = {cli_global_flags, NULL};

	for (;;) {
		int c = getopt_long(argc, argv, ctx->shortopts, ctx->longopts, NULL);

		if (c == -1)
			return -1;
		/* Checked and applied by main already. */
		if (c == '?' || c == ':' || cli_flag_by_id(globals, c))
			continue;
		return c;
	}
}
