/*
 * shepherd whoami: the user the daemon takes you for, and how it knows (Unix socket peer,
 * bearer token or client certificate).
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "output.h"

static const struct cli_column user_columns[] = {
	{"NAME", "Name", "name"},
	{"ID", "ID", "id", COL_RIGHT},
	{"ADMIN", "Admin", "is_admin"},
	{"AUTH", "Authenticated by", "auth_method"},
	{"PRINCIPAL", "Principal", "principal"},
	{"AGE", "Created", "created_at", COL_AGE},
	{NULL},
};

static const struct cli_kind user_kind = {"user", "users", "name", user_columns};

static int cmd_whoami_run(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *me = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = cli_call(ctx, "GET", SHP_ROUTE_WHOAMI, NULL, &me);
	if (r < 0)
		return r;
	return cli_show_object(ctx, &user_kind, me);
}

static const struct shp_subcmd whoami_entry = {
	.fn = cmd_whoami_run,
	.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
	.summary = "show who the daemon takes you for",
	.description = "Show the shepherd user the daemon maps you to, whether it is an "
		       "administrator, and how you were authenticated: \"unix\" (the user id on "
		       "the local socket), \"token\" or \"cert\" (a client certificate), with the "
		       "principal it matched.",
};

const struct shp_cmd cmd_whoami = {
	.name = "whoami",
	.summary = "show who the daemon takes you for",
	.self = &whoami_entry,
};
