/*
 * shepherd role: platform roles. A binding gives a user a role (platform-admin, approver,
 * operator or viewer) in some environments; the environments decide what the user sees.
 * Administrators only.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "util.h"

enum { OPT_USER = CLI_OPT_LOCAL, OPT_ENV, OPT_LIMIT };

#define USER_MAX 128

static const char *const platform_roles[] = {"platform-admin", "approver", "operator", "viewer",
					     NULL};

static const struct cli_column binding_columns[] = {
	{N_("USER"), N_("User"), "user"},
	{N_("ROLE"), N_("Role"), "role"},
	{N_("ENVIRONMENTS"), N_("Environments"), NULL, 0, NULL, cli_envs_cell},
	{N_("AGE"), N_("Granted"), "created_at", COL_AGE},
	{N_("GRANTED BY"), N_("Granted by"), "created_by", COL_WIDE},
	{NULL},
};

static const struct cli_kind binding_kind = {"rolebinding", N_("role bindings"), "user",
					     binding_columns};

static int check_user(struct cli_ctx *ctx, const char *user)
{
	if (!user[0])
		return cli_usage_error(ctx, _("the user name is empty"));
	if (strlen(user) > USER_MAX)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("the user name is longer than %d bytes"), USER_MAX);
	return 0;
}

static int check_role(struct cli_ctx *ctx, const char *role)
{
	for (size_t i = 0; platform_roles[i]; i++)
		if (strcmp(role, platform_roles[i]) == 0)
			return 0;
	return shp_error_set(&ctx->err, SHP_E_INVAL,
			     _("invalid role '%s' (expected platform-admin, approver, operator or "
			       "viewer)"),
			     role);
}

/* /api/v1/rolebindings/USER/ROLE */
static char *binding_path(const char *user, const char *role)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_ROLEBINDINGS, user);

	return cli_path(base, role);
}

static const struct cli_filter binding_filters[] = {
	{OPT_USER, "user"},
	{0},
};

static int cmd_role_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_ROLEBINDINGS, &binding_kind,
				 binding_filters, OPT_LIMIT);
}

static int cmd_role_bind(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *binding = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *done = NULL;
	const char *envs = NULL, *user, *role;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_ENV)
			envs = optarg;
	user = argv[optind];
	role = argv[optind + 1];
	if ((r = check_user(ctx, user)) < 0 || (r = check_role(ctx, role)) < 0)
		return r;
	if ((r = cli_env_list(ctx, envs, body, "allowed_environments")) < 0)
		return r;
	path = binding_path(user, role);
	r = cli_call(ctx, "PUT", path, body, &binding);
	if (r < 0)
		return r;
	done = xasprintf(_("is now %s in %s"), role, envs);
	return cli_show_done(ctx, &binding_kind, binding, done);
}

static int cmd_role_unbind(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *done = NULL;
	const char *user, *role;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	user = argv[optind];
	role = argv[optind + 1];
	if ((r = check_user(ctx, user)) < 0 || (r = check_role(ctx, role)) < 0)
		return r;
	path = binding_path(user, role);
	done = xasprintf(_("is no longer %s"), role);
	return cli_delete_done(ctx, path, &binding_kind, "user", user, "role", role, done);
}

static const struct shp_flag list_flags[] = {
	{"user", OPT_USER, 0, NULL, "USER", N_("only this user's bindings")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N bindings")},
	{NULL},
};

static const struct shp_flag bind_flags[] = {
	{"env", OPT_ENV, 0, "environment", "ENV[,ENV]",
	 N_("the environments the role is held in: test, prod or test,prod"), .required = true},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd role_verbs[] = {
	{
		.name = "bind",
		.fn = cmd_role_bind,
		.min_args = 2,
		.max_args = 2,
		.usage = "USER platform-admin|approver|operator|viewer --env test[,prod]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("give a user a platform role"),
		.description =
			N_("Give USER the role in the environments of --env, or change the "
			   "environments of a role USER holds. A user not seen yet is created. "
			   "Viewers see the namespaces of their environments; operators and "
			   "approvers also the virtual machines of every system there, and "
			   "approvers approve its requests. Only administrators may bind roles."),
		.opts = bind_flags,
		.args_complete = CLI_COMPLETE_NONE,
	},
	{
		.name = "list",
		.fn = cmd_role_list,
		.usage = "[--user USER] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list platform role bindings"),
		.description =
			N_("List the role bindings, sorted by user and role. Roles that come "
			   "from a principal mapping are listed by \"shepherd rbac list\". "
			   "Only administrators may list bindings."),
		.opts = list_flags,
	},
	{
		.name = "unbind",
		.fn = cmd_role_unbind,
		.min_args = 2,
		.max_args = 2,
		.usage = "USER platform-admin|approver|operator|viewer",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("take a platform role away"),
		.description =
			N_("Remove USER's binding to the role. Only administrators may unbind "
			   "roles."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_role = {
	.name = "role",
	.summary = N_("manage platform roles"),
	.description =
		N_("Platform roles say what a user may see and do across systems, and in which "
		   "environments: platform-admin, approver, operator and viewer."),
	.subcmds = role_verbs,
};
