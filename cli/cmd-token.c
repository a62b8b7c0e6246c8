/*
 * shepherd token: bearer tokens for the HTTPS listener (CI jobs, remote users). The daemon keeps
 * only a hash; the token itself is shown once, by 'token create', and never again.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

enum { OPT_USER = CLI_OPT_LOCAL, OPT_EXPIRES, OPT_ALL, OPT_LIMIT };

static char *token_state(const json_t *t, int64_t now)
{
	const char *expires = shp_json_str(t, "expires_at");
	int64_t when;

	if (shp_json_str(t, "revoked_at"))
		return xstrdup("revoked");
	if (expires && cli_parse_time(expires, &when) == 0 && when <= now)
		return xstrdup("expired");
	return xstrdup("active");
}

static const struct cli_column token_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("NAME"), N_("Name"), "name"},
	{N_("USER"), N_("User"), "user"},
	{N_("PREFIX"), N_("Prefix"), "prefix"},
	{N_("STATE"), N_("State"), NULL, 0, NULL, token_state},
	{N_("EXPIRES"), N_("Expires"), "expires_at", COL_WHEN, N_("never")},
	{N_("LAST USED"), N_("Last used"), "last_used_at", COL_WHEN, N_("never")},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("REVOKED"), N_("Revoked"), "revoked_at", COL_WIDE | COL_WHEN, "-"},
	{NULL},
};

static const struct cli_kind token_kind = {"token", N_("tokens"), "id", token_columns};

static int cmd_token_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *tok = NULL;
	const char *user = NULL, *expires = NULL, *secret;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_USER)
			user = optarg;
		else if (c == OPT_EXPIRES)
			expires = optarg;
	}
	/* Checked before asking: the token exists only in this one answer. */
	if (ctx->format == CLI_FORMAT_NAME)
		return cli_usage_error(ctx, _("'-o name' would not show the new token; use table, "
					      "json or yaml"));
	if ((r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "user", user)) < 0 ||
	    (r = cli_body_set(ctx, body, "expires_in", expires)) < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_TOKENS, body, &tok);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_object(ctx, &token_kind, tok);
	secret = shp_json_str(tok, "token");
	if (!secret || !secret[0] || strpbrk(secret, "\r\n"))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no token in it"));
	cli_note(ctx,
		 _("Token %" PRId64 " ('%s') created. Store it now: it cannot be "
		   "shown again.\n"),
		 shp_json_int(tok, "id", 0), argv[optind]);
	printf("%s\n", secret);
	return 0;
}

static const struct cli_filter token_filters[] = {
	{OPT_USER, "user"},
	{OPT_ALL, "all", "true"},
	{0},
};

static int cmd_token_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_TOKENS, &token_kind, token_filters,
				 OPT_LIMIT);
}

static int cmd_token_revoke(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *tok = NULL;
	_cleanup_free_ char *path = NULL;
	struct shp_error perr = SHP_ERROR_INIT;
	long long id;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if (shp_parse_int(argv[optind], 1, INT64_MAX, &id, &perr) < 0)
		return cli_usage_error(ctx, _("'%s' is not a token id (see 'shepherd token list')"),
				       argv[optind]);
	path = cli_path(SHP_ROUTE_TOKENS, argv[optind]);
	r = cli_call(ctx, "DELETE", path, NULL, &tok);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &token_kind, tok, N_("revoked"));
}

static const struct shp_flag create_flags[] = {
	{"user", OPT_USER, 0, NULL, "USER", N_("create the token for this user (administrators)")},
	{"expires", OPT_EXPIRES, 0, NULL, "DURATION",
	 N_("let the token expire after this long: 3600, 90m, 12h, 30d")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"user", OPT_USER, 0, NULL, "USER", N_("the tokens of this user (administrators)")},
	{"all", OPT_ALL, 0, NULL, NULL, N_("the tokens of every user (administrators)")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N tokens")},
	{NULL},
};

static const struct shp_subcmd token_verbs[] = {
	{
		.name = "create",
		.fn = cmd_token_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--user USER] [--expires DURATION]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("create a token and print it once"),
		.description =
			N_("Create a token called NAME, for yourself or (administrators) for "
			   "--user. In table output the token alone is printed on stdout, so "
			   "that TOKEN=$(shepherd token create ci) works, and a reminder to store "
			   "it goes to stderr: it cannot be shown again. -o json and -o yaml "
			   "print the whole answer, token included; -o name is refused."),
		.opts = create_flags,
	},
	{
		.name = "list",
		.fn = cmd_token_list,
		.usage = "[--user USER] [--all] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list tokens"),
		.description =
			N_("List your tokens, or (administrators) those of --user or of every "
			   "user with --all. Tokens themselves are never shown, only their "
			   "prefix."),
		.opts = list_flags,
	},
	{
		.name = "revoke",
		.fn = cmd_token_revoke,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("revoke a token"),
		.description = N_("Revoke the token with the id ID (see 'shepherd token list'); it "
				  "stops working at once. Prints the revoked token's record."),
	},
	{NULL},
};

const struct shp_cmd cmd_token = {
	.name = "token",
	.summary = N_("manage API tokens"),
	.description =
		N_("Tokens authenticate clients on shepherdd's HTTPS listener (--server), for "
		   "CI jobs and remote use; on the local socket you are known by your user id "
		   "and need none. shepherdd stores only a hash of each token."),
	.subcmds = token_verbs,
};
