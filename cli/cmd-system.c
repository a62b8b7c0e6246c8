/*
 * shepherd system: systems are the tenants of shepherd (a VM belongs to a service, a service
 * to a system). Creating one makes you its owner; deleting one asks for its name to be typed.
 * Both are requests (shepherd requests), recorded at once under the default policy.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "shell.h"

enum { OPT_DESCRIPTION = CLI_OPT_LOCAL, OPT_CONFIRM_NAME, OPT_LIMIT, OPT_WAIT };

static const struct cli_column system_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("ROLE"), N_("Your role"), "role", 0, "-"},
	{N_("SERVICES"), N_("Services"), "services", COL_RIGHT},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_FLEX, ""},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{NULL},
};

static const struct cli_kind system_kind = {"system", N_("systems"), "name", system_columns};

/* The answer of a submitted request (shared by system, service and vm requests). */
static const struct cli_column request_columns[] = {
	{N_("REQUEST"), N_("Request"), "request_id", COL_RIGHT},
	{N_("TYPE"), N_("Type"), "type"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("LEVEL"), N_("Approval level"), "approval_level", COL_RIGHT},
	{N_("TICKET"), N_("Ticket"), "ticket_id", COL_RIGHT, "-"},
	{N_("TASK"), N_("Task"), "task_id", COL_RIGHT, "-"},
	{NULL},
};

const struct cli_kind cli_request_answer_kind = {"request", N_("requests"), "request_id",
						 request_columns};

static int cmd_system_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *ans = NULL;
	const char *description = NULL;
	bool wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_DESCRIPTION)
			description = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	if ((r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "description", description)) < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_SYSTEMS, body, &ans);
	if (r < 0)
		return r;
	return cli_request_done(ctx, &cli_request_answer_kind, ans, wait);
}

/* The typed name: --confirm-name, else asked on the terminal (never off one). */
static int typed_name(struct cli_ctx *ctx, const char *name, const char *given, char **ret)
{
	_cleanup_free_ char *question = NULL, *why = NULL, *flag = NULL;

	if (given) {
		*ret = xstrdup(given);
		return 0;
	}
	question = xasprintf(_("Deleting system '%s' cannot be undone. Type its name to confirm: "),
			     name);
	why = xasprintf(_("deleting system '%s' needs its name typed"), name);
	flag = xasprintf("--confirm-name %s", name);
	return cli_prompt(ctx, question, why, flag, ret);
}

static int cmd_system_delete(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL, *typed = NULL;
	const char *given = NULL, *name;
	bool wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_CONFIRM_NAME)
			given = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	name = argv[optind];
	if ((r = typed_name(ctx, name, given, &typed)) < 0)
		return r;
	if (strcmp(typed, name) != 0) {
		ctx->exit_status = SHP_EXIT_FAILURE;
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("the name typed does not match '%s': nothing deleted"),
				     name);
	}
	if ((r = cli_body_set(ctx, body, "confirm_name", typed)) < 0)
		return r;
	path = cli_path(SHP_ROUTE_SYSTEMS, name);
	r = cli_call(ctx, "DELETE", path, body, &ans);
	if (r < 0)
		return r;
	return cli_request_done(ctx, &cli_request_answer_kind, ans, wait);
}

static int cmd_system_list(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct cli_filter none[] = {{0}};

	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_SYSTEMS, &system_kind, none, OPT_LIMIT);
}

static int cmd_system_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_SYSTEMS, &system_kind);
}

static const struct shp_flag create_flags[] = {
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the system is")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the request to its end (its task live); exit with its outcome")},
	{NULL},
};

static const struct shp_flag delete_flags[] = {
	{"confirm-name", OPT_CONFIRM_NAME, 0, NULL, "NAME",
	 N_("the system's name, typed to confirm (asked for on a terminal)")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the request to its end (its task live); exit with its outcome")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N systems")},
	{NULL},
};

static const struct shp_subcmd system_verbs[] = {
	{
		.name = "create",
		.fn = cmd_system_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--description TEXT] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("create a system (you become its owner)"),
		.description =
			N_("Request the system NAME, a DNS label. Anyone may create a system "
			   "and becomes its owner; the request is recorded at once unless a "
			   "policy asks for a review."),
		.opts = create_flags,
	},
	{
		.name = "delete",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SYSTEM,
		.fn = cmd_system_delete,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--confirm-name NAME] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("delete a system (type its name)"),
		.description =
			N_("Request the deletion of system NAME. Its owners may delete it once "
			   "it has no services and no VMs. The name must be typed: at the "
			   "prompt on a terminal, or with --confirm-name."),
		.opts = delete_flags,
	},
	{
		.name = "list",
		.fn = cmd_system_list,
		.usage = "[--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list your systems"),
		.description =
			N_("List the systems you belong to (platform administrators see all), "
			   "with your role and their number of services."),
		.opts = list_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SYSTEM,
		.fn = cmd_system_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one system"),
		.description = N_("Show the system NAME."),
	},
	{NULL},
};

const struct shp_cmd cmd_system = {
	.name = "system",
	.summary = N_("manage systems (the tenants)"),
	.description = N_("A system owns services, and services own VMs. Its owners and members "
			  "ask for VMs; its owners delete it."),
	.subcmds = system_verbs,
};
