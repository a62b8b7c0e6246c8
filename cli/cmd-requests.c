/*
 * shepherd requests: the governance requests you made (VMs, systems, services), with their
 * approval tickets and tasks, and the cancellation of one still waiting for approval.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "util.h"

enum { OPT_STATUS = CLI_OPT_LOCAL, OPT_LIMIT };

static const char *const request_statuses[] = {
	"PENDING",  "PROCESSING", "COMPLETED", "FAILED",  "CANCELLED", "PENDING_APPROVAL",
	"APPROVED", "EXECUTING",  "REJECTED",  "EXPIRED", NULL,
};

static const struct cli_column request_columns[] = {
	{N_("ID"), N_("Request"), "id", COL_RIGHT},
	{N_("TYPE"), N_("Type"), "type"},
	{N_("TARGET"), N_("Target"), "target", 0, "-"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("TICKET"), N_("Ticket"), "ticket_id", COL_RIGHT, "-"},
	{N_("TASK"), N_("Task"), "task_id", COL_RIGHT, "-"},
	{N_("SYSTEM"), N_("System"), "system", 0, "-"},
	{N_("AGE"), N_("Requested"), "created_at", COL_AGE},
	{N_("NAMESPACE"), N_("Namespace"), "namespace", COL_WIDE, "-"},
	{N_("LEVEL"), N_("Approval level"), "approval_level", COL_WIDE | COL_RIGHT, "-"},
	{N_("ERROR"), N_("Error"), "error", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind request_kind = {"request", N_("requests"), "id", request_columns};

static const struct cli_filter request_filters[] = {
	{OPT_STATUS, "status"},
	{0},
};

static int cmd_requests_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_REQUESTS, &request_kind,
				 request_filters, OPT_LIMIT);
}

static int check_id(struct cli_ctx *ctx, const char *id)
{
	long long v;

	if (shp_parse_int(id, 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("invalid id '%.40s' (a number)"),
				     id);
	return 0;
}

static int cmd_requests_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if ((r = check_id(ctx, argv[optind])) < 0)
		return r;
	path = cli_path(SHP_ROUTE_REQUESTS, argv[optind]);
	r = cli_call(ctx, "GET", path, NULL, &obj);
	return r < 0 ? r : cli_show_object(ctx, &request_kind, obj);
}

/* ID is the ticket of the request (its "TICKET" column). */
static int cmd_requests_cancel(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if ((r = check_id(ctx, argv[optind])) < 0)
		return r;
	path = xasprintf("%s/%s/cancel", SHP_ROUTE_APPROVALS_BASE, argv[optind]);
	r = cli_call(ctx, "POST", path, NULL, &ans);
	if (r < 0)
		return r;
	if (!ctx->quiet && ctx->format == CLI_FORMAT_TABLE) {
		printf(_("ticket %s cancelled (request %lld)\n"), argv[optind],
		       (long long)json_integer_value(json_object_get(ans, "request_id")));
		return 0;
	}
	return cli_show_raw(ctx, ans);
}

static const struct shp_flag list_flags[] = {
	{"status", OPT_STATUS, 0, NULL, "STATUS",
	 N_("only requests in this status (the ticket's, else the request's)"), request_statuses},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N requests")},
	{NULL},
};

static const struct shp_subcmd requests_verbs[] = {
	{
		.name = "cancel",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_REQUEST,
		.fn = cmd_requests_cancel,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("cancel a request waiting for approval"),
		.description =
			N_("Cancel your request whose approval ticket is TICKET (the TICKET "
			   "column of shepherd requests list), while it waits for approval."),
	},
	{
		.name = "list",
		.fn = cmd_requests_list,
		.usage = "[--status STATUS] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list your requests"),
		.description =
			N_("List the requests you made, newest first, with the status of their "
			   "approval ticket and their task."),
		.opts = list_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_REQUEST,
		.fn = cmd_requests_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one of your requests"),
		.description = N_("Show request ID with what was asked (its payload)."),
	},
	{NULL},
};

const struct shp_cmd cmd_requests = {
	.name = "requests",
	.summary = N_("see and cancel your requests"),
	.description = N_("Every request (a VM, a system, a service) is recorded; those that need "
			  "an approval wait for it and may be cancelled meanwhile."),
	.subcmds = requests_verbs,
};
