/*
 * shepherd version: the client's version and the daemon's (GET /api/v1/version). A daemon that
 * cannot be reached is reported as such and is not a failure: the client part still answers.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"

enum { OPT_CLIENT = CLI_OPT_LOCAL };

static void print_server(const json_t *server)
{
	const char *commit = shp_json_str(server, "commit");
	const char *built = shp_json_str(server, "built");
	_cleanup_free_ char *version = cli_text_sanitize(
		shp_json_str(server, "version") ? shp_json_str(server, "version") : "?");

	printf(_("server: shepherdd %s (API %" PRId64), version,
	       shp_json_int(server, "api_version", 0));
	if (commit && commit[0]) {
		_cleanup_free_ char *c = cli_text_sanitize(commit);
		printf(_(", commit %s"), c);
	}
	if (built && built[0]) {
		_cleanup_free_ char *b = cli_text_sanitize(built);
		printf(_(", built %s"), b);
	}
	printf(")\n");
}

static int print_versions(struct cli_ctx *ctx, json_t *server, bool client_only,
			  const char *unreachable)
{
	_cleanup_(json_decrefp) json_t *out = NULL;
	_cleanup_free_ char *why = NULL;

	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML) {
		out = json_pack("{s:{s:s, s:i}}", "client", "version", PACKAGE_VERSION,
				"api_version", SHP_API_VERSION);
		if (!out)
			return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
		if (!client_only)
			(void)json_object_set(out, "server", server ? server : json_null());
		return cli_show_raw(ctx, out);
	}
	printf(_("client: shepherd %s (API %d)\n"), PACKAGE_VERSION, SHP_API_VERSION);
	if (client_only)
		return 0;
	if (!server) {
		why = cli_text_sanitize(unreachable);
		printf(_("server: unreachable (%s)\n"), why);
		return 0;
	}
	print_server(server);
	return 0;
}

static int cmd_version_run(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *server = NULL;
	bool client_only = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_CLIENT)
			client_only = true;
	if (ctx->format == CLI_FORMAT_NAME)
		return cli_usage_error(ctx, _("'-o name' does not apply to 'version'"));
	if (!client_only) {
		r = cli_call(ctx, "GET", SHP_ROUTE_VERSION, NULL, &server);
		if (r < 0 && r != -SHP_E_UNREACHABLE && r != -SHP_E_TIMEOUT)
			return r;
		if (server &&
		    shp_json_int(server, "api_version", SHP_API_VERSION) != SHP_API_VERSION)
			cli_warn(ctx, _("this client speaks API %d, the server API %" PRId64),
				 SHP_API_VERSION, shp_json_int(server, "api_version", 0));
	}
	r = print_versions(ctx, server, client_only, ctx->err.msg);
	if (r < 0)
		return r;
	shp_error_clear(&ctx->err);
	return 0;
}

static const struct shp_flag version_flags[] = {
	{"client", OPT_CLIENT, 0, NULL, NULL,
	 N_("only the client's version; do not ask the daemon")},
	{NULL},
};

static const struct shp_subcmd version_entry = {
	.fn = cmd_version_run,
	.usage = "[--client]",
	.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
	.summary = N_("show the client's and the daemon's versions"),
	.description =
		N_("Show the version of this client and of the shepherdd it talks to, with "
		   "their API versions. When the daemon cannot be reached, the server part "
		   "says so and the exit status is still 0; with -o json the server is null."),
	.opts = version_flags,
};

const struct shp_cmd cmd_version = {
	.name = "version",
	.summary = N_("show the client's and the daemon's versions"),
	.self = &version_entry,
};
