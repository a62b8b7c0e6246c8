/*
 * shepherd tenant: who belongs to a tenant and with which role — owners manage the tenant's
 * members and cancel any of its tasks, members run tasks, viewers only read-only plans.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

#define USER_MAX 256 /* a user name in a path segment */

static const char *const tenant_roles[] = {"owner", "member", "viewer", NULL};

static const struct cli_column member_columns[] = {
	{N_("USER"), N_("User"), "user"},
	{N_("ROLE"), N_("Role"), "role"},
	{N_("AGE"), N_("Added"), "created_at", COL_AGE},
	{N_("TENANT"), N_("Tenant"), "tenant", COL_WIDE},
	{NULL},
};

static const struct cli_kind member_kind = {"member", N_("members"), "user", member_columns};

static int check_tenant(struct cli_ctx *ctx, const char *tenant)
{
	if (shp_name_is_valid(tenant))
		return 0;
	return shp_error_set(&ctx->err, SHP_E_INVAL,
			     _("invalid tenant '%s': a lower-case DNS label (letters, digits and "
			       "'-', at most 63)"),
			     tenant);
}

static int check_user(struct cli_ctx *ctx, const char *user)
{
	if (!user[0])
		return cli_usage_error(ctx, _("the user name is empty"));
	if (strlen(user) > USER_MAX)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("the user name is longer than %d bytes"), USER_MAX);
	return 0;
}

/* /api/v1/tenants/TENANT/members[/USER] */
static char *members_path(const char *tenant, const char *user)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_TENANTS, tenant);
	_cleanup_free_ char *members = xasprintf("%s/members", base);

	return user ? cli_path(members, user) : TAKE_PTR(members);
}

static int cmd_tenant_members(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *items = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = check_tenant(ctx, argv[optind]);
	if (r < 0)
		return r;
	path = members_path(argv[optind], NULL);
	r = cli_list(ctx, path, "", 0, member_kind.plural, &items);
	if (r < 0)
		return r;
	return cli_show_list(ctx, &member_kind, items);
}

static int cmd_tenant_grant(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *member = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *done = NULL;
	const char *tenant, *user, *role;
	bool known = false;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	tenant = argv[optind];
	user = argv[optind + 1];
	role = argv[optind + 2];
	if ((r = check_tenant(ctx, tenant)) < 0 || (r = check_user(ctx, user)) < 0)
		return r;
	for (size_t i = 0; tenant_roles[i]; i++)
		known = known || strcmp(role, tenant_roles[i]) == 0;
	if (!known)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid role '%s' (expected owner, member or viewer)"),
				     role);
	r = cli_body_set(ctx, body, "role", role);
	if (r < 0)
		return r;
	path = members_path(tenant, user);
	r = cli_call(ctx, "PUT", path, body, &member);
	if (r < 0)
		return r;
	done = xasprintf(_("is now %s of tenant '%s'"), role, tenant);
	return cli_show_done(ctx, &member_kind, member, done);
}

static int cmd_tenant_revoke(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *done = NULL;
	const char *tenant, *user;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	tenant = argv[optind];
	user = argv[optind + 1];
	if ((r = check_tenant(ctx, tenant)) < 0 || (r = check_user(ctx, user)) < 0)
		return r;
	path = members_path(tenant, user);
	done = xasprintf(_("removed from tenant '%s'"), tenant);
	return cli_delete_done(ctx, path, &member_kind, "tenant", tenant, "user", user, done);
}

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd tenant_verbs[] = {
	{
		.name = "grant",
		.fn = cmd_tenant_grant,
		.min_args = 3,
		.max_args = 3,
		.usage = "TENANT USER owner|member|viewer",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("give a user a role in a tenant"),
		.description =
			N_("Make USER a member of TENANT with the given role, or change the role "
			   "of a member: owners manage the members and may cancel every task of "
			   "the tenant, members submit tasks, viewers may submit read-only plans "
			   "only. Administrators and the tenant's owners may grant roles."),
		.opts = no_flags,
	},
	{
		.name = "members",
		.fn = cmd_tenant_members,
		.min_args = 1,
		.max_args = 1,
		.usage = "TENANT",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the members of a tenant"),
		.description =
			N_("List the users of TENANT with their roles. Administrators and the "
			   "tenant's own members may see them."),
		.opts = no_flags,
	},
	{
		.name = "revoke",
		.fn = cmd_tenant_revoke,
		.min_args = 2,
		.max_args = 2,
		.usage = "TENANT USER",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("remove a user from a tenant"),
		.description =
			N_("Remove USER from TENANT. Administrators and the tenant's owners may "
			   "remove members."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_tenant = {
	.name = "tenant",
	.summary = N_("manage who belongs to a tenant"),
	.description =
		N_("Tasks run for a tenant. Its members, each an owner, a member or a viewer, "
		   "decide who may submit, see and cancel them."),
	.subcmds = tenant_verbs,
};
