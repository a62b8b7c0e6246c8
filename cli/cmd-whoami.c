/*
 * shepherd whoami: the user the daemon takes you for, and how it knows (Unix socket peer,
 * bearer token or client certificate), with the platform roles and systems the user holds.
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"

/* "approver (test,prod), viewer (test)" from the roles array. */
static char *roles_cell(const json_t *me, int64_t now)
{
	struct shp_buf b = SHP_BUF_INIT(4096);
	size_t i;
	json_t *r;

	json_array_foreach(json_object_get(me, "roles"), i, r)
	{
		_cleanup_free_ char *envs = cli_envs_cell(r, now);
		const char *name = json_string_value(json_object_get(r, "role"));

		xbuf_addf(&b, "%s%s (%s)", i ? ", " : "", name ? name : "?", envs ? envs : "");
	}
	return shp_buf_detach(&b, NULL);
}

/* "shop (owner), web (member)" from the systems array. */
static char *systems_cell(const json_t *me, int64_t now)
{
	struct shp_buf b = SHP_BUF_INIT(4096);
	size_t i;
	json_t *s;

	(void)now;
	json_array_foreach(json_object_get(me, "systems"), i, s)
	{
		const char *name = json_string_value(json_object_get(s, "system"));
		const char *role = json_string_value(json_object_get(s, "role"));

		xbuf_addf(&b, "%s%s (%s)", i ? ", " : "", name ? name : "?", role ? role : "?");
	}
	return shp_buf_detach(&b, NULL);
}

static const struct cli_column user_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("ADMIN"), N_("Admin"), "is_admin"},
	{N_("AUTH"), N_("Authenticated by"), "auth_method"},
	{N_("PRINCIPAL"), N_("Principal"), "principal"},
	{N_("ROLES"), N_("Roles"), NULL, COL_WIDE, NULL, roles_cell},
	{N_("SYSTEMS"), N_("Systems"), NULL, COL_WIDE, NULL, systems_cell},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{NULL},
};

static const struct cli_kind user_kind = {"user", N_("users"), "name", user_columns};

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
	.summary = N_("show who the daemon takes you for"),
	.description =
		N_("Show the shepherd user the daemon maps you to, whether it is an "
		   "administrator, and how you were authenticated: \"unix\" (the user id on "
		   "the local socket), \"token\" or \"cert\" (a client certificate), with the "
		   "principal it matched; then the platform roles you hold with their "
		   "environments, and the systems you belong to with your role in each "
		   "(directly or through a principal mapping)."),
};

const struct shp_cmd cmd_whoami = {
	.name = "whoami",
	.summary = N_("show who the daemon takes you for"),
	.self = &whoami_entry,
};
