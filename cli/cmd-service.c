/*
 * shepherd service: the services of a system (a VM names its service; the service's system
 * is the VM's tenant). Owners and members of the system create and delete them; a delete is
 * confirmed with --yes.
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "shell.h"

enum { OPT_SYSTEM = CLI_OPT_LOCAL, OPT_DESCRIPTION, OPT_YES, OPT_LIMIT, OPT_WAIT };

static const struct cli_column service_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("SYSTEM"), N_("System"), "system"},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_FLEX, ""},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{NULL},
};

static const struct cli_kind service_kind = {"service", N_("services"), "name", service_columns};

static int cmd_service_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *ans = NULL;
	const char *description = NULL, *sys = NULL;
	bool wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_DESCRIPTION)
			description = optarg;
		else if (c == OPT_SYSTEM)
			sys = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	if ((r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "system", sys)) < 0 ||
	    (r = cli_body_set(ctx, body, "description", description)) < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_SERVICES, body, &ans);
	if (r < 0)
		return r;
	return cli_request_done(ctx, &cli_request_answer_kind, ans, wait);
}

static int cmd_service_delete(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL, *url = NULL, *question = NULL, *why = NULL;
	bool yes = false, wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		yes = yes || c == OPT_YES;
		wait = wait || c == OPT_WAIT;
	}
	if (!yes) { /* asked on a terminal, else refused naming --yes */
		question = xasprintf(_("Delete service '%s'? [y/N] "), argv[optind]);
		why = xasprintf(_("deleting service '%s' needs --yes to confirm"), argv[optind]);
		if ((r = cli_prompt_yes(ctx, question, why, "--yes", _("not deleted"))) < 0)
			return r;
	}
	path = cli_path(SHP_ROUTE_SERVICES, argv[optind]);
	url = xasprintf("%s?confirm=true", path);
	r = cli_call(ctx, "DELETE", url, NULL, &ans);
	if (r < 0)
		return r;
	return cli_request_done(ctx, &cli_request_answer_kind, ans, wait);
}

static const struct cli_filter service_filters[] = {
	{OPT_SYSTEM, "system"},
	{0},
};

static int cmd_service_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_SERVICES, &service_kind,
				 service_filters, OPT_LIMIT);
}

static int cmd_service_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_SERVICES, &service_kind);
}

static const struct shp_flag create_flags[] = {
	{"system", OPT_SYSTEM, 0, NULL, "SYSTEM", N_("the system the service belongs to"),
	 .required = true, .names = CLI_NAMES_SYSTEM},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the service is")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the request to its end (its task live); exit with its outcome")},
	{NULL},
};

static const struct shp_flag delete_flags[] = {
	{"yes", OPT_YES, 'y', NULL, NULL, N_("confirm the deletion")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the request to its end (its task live); exit with its outcome")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"system", OPT_SYSTEM, 0, NULL, "SYSTEM", N_("only the services of this system"),
	 .names = CLI_NAMES_SYSTEM},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N services")},
	{NULL},
};

static const struct shp_subcmd service_verbs[] = {
	{
		.name = "create",
		.fn = cmd_service_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --system SYSTEM [--description TEXT] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("create a service in a system"),
		.description = N_("Request the service NAME in SYSTEM. Owners and members of the "
				  "system may; service names are unique among active services."),
		.opts = create_flags,
	},
	{
		.name = "delete",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SERVICE,
		.fn = cmd_service_delete,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--yes] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("delete a service"),
		.description = N_("Request the deletion of service NAME, which must have no VMs. "
				  "--yes confirms it; without it shepherd asks on a terminal and "
				  "refuses anywhere else."),
		.opts = delete_flags,
	},
	{
		.name = "list",
		.fn = cmd_service_list,
		.usage = "[--system SYSTEM] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list services"),
		.description = N_("List the services of the systems you belong to (platform "
				  "administrators see all)."),
		.opts = list_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SERVICE,
		.fn = cmd_service_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one service"),
		.description = N_("Show the service NAME."),
	},
	{NULL},
};

const struct shp_cmd cmd_service = {
	.name = "service",
	.summary = N_("manage the services of systems"),
	.description = N_("A service belongs to a system; VMs belong to a service."),
	.subcmds = service_verbs,
};
