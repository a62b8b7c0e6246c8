/*
 * shepherd rbac: principal mappings. A mapping makes an authenticated principal (a unix
 * account, an API token, a certificate subject) act as a user, a member of a team with a team
 * role, and a holder of a platform role in some environments, while it is enabled.
 * Administrators only.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "util.h"

enum { OPT_USER = CLI_OPT_LOCAL, OPT_TEAM, OPT_TEAM_ROLE, OPT_ROLE, OPT_ENV, OPT_DISABLED };

static const char *const principal_kinds[] = {"unix", "token", "cert", NULL};
static const char *const platform_roles[] = {"platform-admin", "approver", "operator", "viewer",
					     NULL};
static const char *const team_roles[] = {"owner", "member", "viewer", NULL};

int cli_env_list(struct cli_ctx *ctx, const char *envs, json_t *body, const char *key)
{
	_cleanup_(json_decrefp) json_t *arr = json_array();
	_cleanup_free_ char *copy = xstrdup(envs ? envs : "");
	char *save = NULL;

	for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
		bool dup = false;
		size_t i;
		json_t *v;

		if (strcmp(e, "test") != 0 && strcmp(e, "prod") != 0)
			return shp_error_set(&ctx->err, SHP_E_INVAL,
					     _("invalid environment '%s' (expected test, prod or "
					       "test,prod)"),
					     e);
		json_array_foreach(arr, i, v) dup = dup || strcmp(json_string_value(v), e) == 0;
		if (dup)
			return shp_error_set(&ctx->err, SHP_E_INVAL,
					     _("environment '%s' is given twice"), e);
		json_array_append_new(arr, json_string(e));
	}
	if (json_array_size(arr) == 0)
		return cli_usage_error(ctx, _("--env needs test, prod or test,prod"));
	return json_object_set(body, key, arr) < 0
		       ? shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"))
		       : 0;
}

char *cli_envs_cell(const json_t *item, int64_t now)
{
	const json_t *envs = json_object_get(item, "allowed_environments");
	struct shp_buf b = SHP_BUF_INIT(256);
	size_t i;
	json_t *v;

	(void)now;
	json_array_foreach(envs, i, v)
	{
		if (i)
			xbuf_add(&b, ",");
		xbuf_add(&b, json_string_value(v) ? json_string_value(v) : "?");
	}
	return shp_buf_detach(&b, NULL);
}

static const struct cli_column mapping_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("KIND"), N_("Kind"), "principal_kind"},
	{N_("PRINCIPAL"), N_("Principal"), "principal", COL_FLEX},
	{N_("USER"), N_("User"), "user_name"},
	{N_("TEAM"), N_("Team"), "team", 0, "-"},
	{N_("TEAM ROLE"), N_("Team role"), "team_role", 0, "-"},
	{N_("ROLE"), N_("Role"), "role", 0, "-"},
	{N_("ENVIRONMENTS"), N_("Environments"), NULL, 0, NULL, cli_envs_cell},
	{N_("ENABLED"), N_("Enabled"), "enabled"},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{NULL},
};

static const struct cli_kind mapping_kind = {"mapping", N_("mappings"), "id", mapping_columns};

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static int cmd_rbac_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *items = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = cli_list(ctx, SHP_ROUTE_RBAC_MAPPINGS, "", 0, mapping_kind.plural, &items);
	if (r < 0)
		return r;
	return cli_show_list(ctx, &mapping_kind, items);
}

struct map_opts {
	const char *user, *team, *team_role, *role, *envs;
	bool disabled;
};

static int map_body(struct cli_ctx *ctx, const char *kind, const char *principal,
		    const struct map_opts *o, json_t *body)
{
	int r;

	if (!in_list(kind, principal_kinds))
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid kind '%s' (expected unix, token or cert)"), kind);
	if (!o->user)
		return cli_usage_error(ctx, _("--user is required"));
	if (!o->team != !o->team_role)
		return cli_usage_error(ctx, _("--team and --team-role go together"));
	if (!o->role != !o->envs)
		return cli_usage_error(ctx, _("--role and --env go together"));
	if (!o->team && !o->role)
		return cli_usage_error(ctx, _("give --team and --team-role, --role and --env, or "
					      "both"));
	if (o->role && !in_list(o->role, platform_roles))
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid role '%s' (expected platform-admin, approver, "
				       "operator or viewer)"),
				     o->role);
	if (o->team_role && !in_list(o->team_role, team_roles))
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid team role '%s' (expected owner, member or viewer)"),
				     o->team_role);
	if ((r = cli_body_set(ctx, body, "principal_kind", kind)) < 0 ||
	    (r = cli_body_set(ctx, body, "principal", principal)) < 0 ||
	    (r = cli_body_set(ctx, body, "user_name", o->user)) < 0 ||
	    (r = cli_body_set(ctx, body, "team", o->team)) < 0 ||
	    (r = cli_body_set(ctx, body, "team_role", o->team_role)) < 0 ||
	    (r = cli_body_set(ctx, body, "role", o->role)) < 0)
		return r;
	if (o->envs && (r = cli_env_list(ctx, o->envs, body, "allowed_environments")) < 0)
		return r;
	return json_object_set_new(body, "enabled", json_boolean(!o->disabled)) < 0
		       ? shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"))
		       : 0;
}

static int cmd_rbac_map(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *mapping = NULL;
	struct map_opts o = {0};
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_USER: o.user = optarg; break;
		case OPT_TEAM: o.team = optarg; break;
		case OPT_TEAM_ROLE: o.team_role = optarg; break;
		case OPT_ROLE: o.role = optarg; break;
		case OPT_ENV: o.envs = optarg; break;
		case OPT_DISABLED: o.disabled = true; break;
		}
	}
	r = map_body(ctx, argv[optind], argv[optind + 1], &o, body);
	if (r < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_RBAC_MAPPINGS, body, &mapping);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &mapping_kind, mapping, N_("created"));
}

/* ID as a path: digits only, so nothing else reaches the daemon. */
static char *mapping_path(struct cli_ctx *ctx, const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 18 || strspn(id, "0123456789") != n) {
		shp_error_set(&ctx->err, SHP_E_INVAL, _("invalid mapping id '%.40s' (a number)"),
			      id);
		return NULL;
	}
	return cli_path(SHP_ROUTE_RBAC_MAPPINGS, id);
}

static int cmd_rbac_unmap(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *mapping = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = mapping_path(ctx, argv[optind]);
	if (!path)
		return -ctx->err.code;
	r = cli_call(ctx, "DELETE", path, NULL, &mapping);
	if (r < 0)
		return r;
	if (!mapping)
		mapping = json_pack("{s:s}", "id", argv[optind]);
	return cli_show_done(ctx, &mapping_kind, mapping, N_("deleted"));
}

/* enable/disable: read the mapping, flip enabled, put it back whole. */
static int set_enabled(int argc, char **argv, struct cli_ctx *ctx, bool enabled)
{
	static const char *const keep[] = {
		"principal_kind",       "principal", "user_name", "team", "team_role", "role",
		"allowed_environments", NULL};
	_cleanup_(json_decrefp) json_t *cur = NULL;
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *mapping = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = mapping_path(ctx, argv[optind]);
	if (!path)
		return -ctx->err.code;
	if ((r = cli_call(ctx, "GET", path, NULL, &cur)) < 0)
		return r;
	for (size_t i = 0; keep[i]; i++) {
		json_t *v = json_object_get(cur, keep[i]);
		if (v && !json_is_null(v))
			(void)json_object_set(body, keep[i], v);
	}
	(void)json_object_set_new(body, "enabled", json_boolean(enabled));
	if ((r = cli_call(ctx, "PUT", path, body, &mapping)) < 0)
		return r;
	return cli_show_done(ctx, &mapping_kind, mapping, enabled ? N_("enabled") : N_("disabled"));
}

static int cmd_rbac_enable(int argc, char **argv, struct cli_ctx *ctx)
{
	return set_enabled(argc, argv, ctx, true);
}

static int cmd_rbac_disable(int argc, char **argv, struct cli_ctx *ctx)
{
	return set_enabled(argc, argv, ctx, false);
}

static const struct shp_flag map_flags[] = {
	{"user", OPT_USER, 0, NULL, "USER", N_("the user the principal acts as"), .required = true},
	{"team", OPT_TEAM, 0, NULL, "SYSTEM", N_("the system (team) the principal is a member of")},
	{"team-role", OPT_TEAM_ROLE, 0, NULL, "ROLE", N_("its role in the team"), team_roles},
	{"role", OPT_ROLE, 0, NULL, "ROLE", N_("a platform role"), platform_roles},
	{"env", OPT_ENV, 0, "environment", "ENV[,ENV]",
	 N_("the environments of the platform role: test, prod or test,prod")},
	{"disabled", OPT_DISABLED, 0, NULL, NULL, N_("create the mapping disabled")},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd rbac_verbs[] = {
	{
		.name = "disable",
		.fn = cmd_rbac_disable,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("switch a principal mapping off"),
		.description =
			N_("Disable the mapping ID: from the principal's next request on, it "
			   "acts as itself again."),
		.opts = no_flags,
	},
	{
		.name = "enable",
		.fn = cmd_rbac_enable,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("switch a principal mapping on"),
		.description = N_("Enable the mapping ID again."),
		.opts = no_flags,
	},
	{
		.name = "list",
		.fn = cmd_rbac_list,
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list principal mappings"),
		.description = N_("List the principal mappings, oldest first."),
		.opts = no_flags,
	},
	{
		.name = "map",
		.fn = cmd_rbac_map,
		.min_args = 2,
		.max_args = 2,
		.usage = "unix|token|cert PRINCIPAL --user USER [--team SYSTEM] [--team-role ROLE] "
			 "[--role ROLE] [--env ENV[,ENV]] [--disabled]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("map a principal to a user, a team and a role"),
		.description =
			N_("Make callers authenticated as PRINCIPAL act as USER (created on first "
			   "contact), a member of the system --team with --team-role, and a holder "
			   "of --role in the environments of --env. PRINCIPAL is, for unix, the "
			   "account name; for token, OWNER/TOKEN_NAME (the token owner's user name "
			   "and the token's name); for cert, the certificate subject as shepherd "
			   "writes it, such as O=example,CN=alice (what \"shepherd whoami\" shows "
			   "after cert: for that certificate)."),
		.opts = map_flags,
	},
	{
		.name = "unmap",
		.fn = cmd_rbac_unmap,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("remove a principal mapping"),
		.description = N_("Delete the mapping ID."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_rbac = {
	.name = "rbac",
	.summary = N_("map principals to users, teams and roles"),
	.description = N_("Principal mappings let an identity from outside (a unix account, an API "
			  "token, a certificate subject) act as a shepherd user with a team and a "
			  "platform role, without granting these to the identity's own user. Only "
			  "administrators may manage them."),
	.subcmds = rbac_verbs,
};
