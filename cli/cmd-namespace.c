/*
 * shepherd namespace: the namespace registry. A namespace has a global name and an environment
 * (test or prod) and no cluster binding; shepherdd creates it on a cluster when a VM first
 * needs it there.
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"

enum { OPT_ENVIRONMENT = CLI_OPT_LOCAL, OPT_DESCRIPTION, OPT_LIMIT };

static const struct cli_column namespace_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("ENVIRONMENT"), N_("Environment"), "environment"},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_FLEX, ""},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{N_("ID"), N_("ID"), "id", COL_WIDE | COL_RIGHT},
	{NULL},
};

static const struct cli_kind namespace_kind = {
	"namespace",
	N_("namespaces"),
	"name",
	namespace_columns,
};

static int cmd_namespace_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *ns = NULL;
	const char *env = NULL, *description = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_ENVIRONMENT)
			env = optarg;
		else if (c == OPT_DESCRIPTION)
			description = optarg;
	}
	if ((r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "environment", env)) < 0 ||
	    (r = cli_body_set(ctx, body, "description", description)) < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_NAMESPACES, body, &ns);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &namespace_kind, ns, N_("created"));
}

static const struct cli_filter namespace_filters[] = {
	{OPT_ENVIRONMENT, "environment"},
	{0},
};

static int cmd_namespace_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_NAMESPACES, &namespace_kind,
				 namespace_filters, OPT_LIMIT);
}

static int cmd_namespace_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_NAMESPACES, &namespace_kind);
}

static int cmd_namespace_delete(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_delete(argc, argv, ctx, SHP_ROUTE_NAMESPACES, &namespace_kind,
				N_("deleted"));
}

static const struct shp_flag create_flags[] = {
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", N_("the environment of the namespace"),
	 cli_environment_values, .required = true},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the namespace is for")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", N_("only namespaces of this environment"),
	 cli_environment_values},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N namespaces")},
	{NULL},
};

static const struct shp_subcmd namespace_verbs[] = {
	{
		.name = "create",
		.fn = cmd_namespace_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --environment test|prod [--description TEXT]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("register a namespace"),
		.description =
			N_("Register the namespace NAME in the environment given by "
			   "--environment. NAME is a DNS label: up to 63 lower-case letters, "
			   "digits and hyphens, starting and ending with a letter or digit. Only "
			   "administrators may create namespaces."),
		.opts = create_flags,
	},
	{
		.name = "delete",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_NAMESPACE,
		.fn = cmd_namespace_delete,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("remove a namespace from the registry"),
		.description = N_("Remove the namespace NAME from the registry and print what was "
				  "removed. Only administrators may delete namespaces."),
	},
	{
		.name = "list",
		.fn = cmd_namespace_list,
		.usage = "[--environment test|prod] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list namespaces"),
		.description =
			N_("List the registered namespaces, sorted by name. Only the namespaces "
			   "of the environments you may see are shown."),
		.opts = list_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_NAMESPACE,
		.fn = cmd_namespace_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one namespace"),
		.description = N_("Show every field of the namespace NAME. A namespace of an "
				  "environment you may not see is not found."),
	},
	{NULL},
};

const struct shp_cmd cmd_namespace = {
	.name = "namespace",
	.alias = "ns",
	.summary = N_("manage the namespace registry"),
	.description =
		N_("Namespaces are registered once, with a name that is unique across all "
		   "clusters and an environment (test or prod). They are not bound to a "
		   "cluster: shepherdd creates a namespace on a cluster of the same environment "
		   "when a virtual machine first needs it there."),
	.subcmds = namespace_verbs,
};
