/*
 * shepherd inbox: your notifications (requests waiting for your approval, your requests decided
 * or finished, your VMs changing status, approvals about to expire), newest first; marking them
 * read; and the unread count, for prompts and scripts.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

enum { OPT_UNREAD = CLI_OPT_LOCAL, OPT_TYPE, OPT_LIMIT, OPT_ALL };

static char *unread_mark(const json_t *n, int64_t now)
{
	(void)now;
	return xstrdup(json_is_true(json_object_get(n, "read")) ? "" : "*");
}

static const struct cli_column inbox_columns[] = {
	{N_("ID"), N_("Notification"), "id", COL_RIGHT},
	{N_("NEW"), N_("Unread"), NULL, 0, NULL, unread_mark},
	{N_("TYPE"), N_("Type"), "type"},
	{N_("TITLE"), N_("Title"), "title", COL_FLEX},
	{N_("AGE"), N_("Sent"), "created_at", COL_AGE},
	{N_("COUNT"), N_("Count"), "count", COL_WIDE | COL_RIGHT},
	{N_("TICKET"), N_("Ticket"), "ticket_id", COL_WIDE | COL_RIGHT, "-"},
	{N_("BODY"), N_("Body"), "body", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind inbox_kind = {"notification", "notifications", "id", inbox_columns};

static const struct cli_filter inbox_filters[] = {
	{OPT_UNREAD, "unread", "true"},
	{OPT_TYPE, "type"},
	{0},
};

static int cmd_inbox_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_NOTIFICATIONS, &inbox_kind,
				 inbox_filters, OPT_LIMIT);
}

/* read --all [--type T]: POST mark-all-read; {"marked": N}. */
static int read_all(struct cli_ctx *ctx, const char *type)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	cli_query_add(&query, "type", type);
	path = xasprintf("%s/mark-all-read%s%s", SHP_ROUTE_NOTIFICATIONS, query.len ? "?" : "",
			 query.buf);
	r = cli_call(ctx, "POST", path, NULL, &ans);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, ans);
	if (!ctx->quiet) {
		long long n = shp_json_int(ans, "marked", 0);

		printf(ngettext("%lld notification marked read\n",
				"%lld notifications marked read\n", (unsigned long)n),
		       n);
	}
	return 0;
}

static int cmd_inbox_read(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	_cleanup_free_ char *base = NULL, *path = NULL;
	const char *type = NULL;
	bool all = false;
	long long id;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_ALL)
			all = true;
		else if (c == OPT_TYPE)
			type = optarg;
	}
	if (all == (optind < argc))
		return cli_usage_error(ctx, _("'inbox read' takes a notification ID or --all"));
	if (type && !all)
		return cli_usage_error(ctx, _("'--type' goes with '--all'"));
	if (all)
		return read_all(ctx, type);
	if (shp_parse_int(argv[optind], 1, INT64_MAX, &id, NULL) < 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("invalid id '%.40s' (a number)"),
				     argv[optind]);
	base = cli_path(SHP_ROUTE_NOTIFICATIONS, argv[optind]);
	path = xasprintf("%s/read", base);
	r = cli_call(ctx, "PATCH", path, NULL, &obj);
	return r < 0 ? r : cli_show_done(ctx, &inbox_kind, obj, N_("marked read"));
}

/* The unread count: the number alone on stdout (or {"unread": N}), for prompts and scripts. */
static int cmd_inbox_count(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = xasprintf("%s/unread-count", SHP_ROUTE_NOTIFICATIONS);
	r = cli_call(ctx, "GET", path, NULL, &ans);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, ans);
	printf("%lld\n", (long long)shp_json_int(ans, "unread", 0));
	return 0;
}

static const struct shp_flag list_flags[] = {
	{"unread", OPT_UNREAD, 0, NULL, NULL, N_("only notifications not read yet")},
	{"type", OPT_TYPE, 0, NULL, "TYPE",
	 N_("only notifications of this type (APPROVAL_PENDING, VM_STATUS_CHANGE, ...)")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N newest notifications")},
	{NULL},
};

static const struct shp_flag read_flags[] = {
	{"all", OPT_ALL, 0, NULL, NULL, N_("mark every unread notification read")},
	{"type", OPT_TYPE, 0, NULL, "TYPE", N_("with --all: only notifications of this type")},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd inbox_verbs[] = {
	{
		.name = "count",
		.fn = cmd_inbox_count,
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("print the number of unread notifications"),
		.description = N_("Print the number of your unread notifications alone on a line "
				  "(with -o json, {\"unread\": N}), for a prompt or a script."),
		.opts = no_flags,
	},
	{
		.name = "list",
		.fn = cmd_inbox_list,
		.usage = "[--unread] [--type TYPE] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list your notifications, newest first"),
		.description = N_("List your notifications, newest first; unread ones are marked "
				  "with a * in the NEW column. This is what shepherd inbox runs "
				  "without a verb."),
		.opts = list_flags,
	},
	{
		.name = "read",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_NOTIFICATION,
		.fn = cmd_inbox_read,
		.max_args = 1,
		.usage = "[ID] [--all] [--type TYPE]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("mark a notification, or all of them, read"),
		.description = N_("Mark notification ID read, or with --all every unread one (of "
				  "TYPE). Marking one twice is harmless."),
		.opts = read_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_inbox = {
	.name = "inbox",
	.summary = N_("read your notifications"),
	.description =
		N_("shepherd tells you what concerns you in your inbox: requests waiting "
		   "for your approval, your requests approved, rejected, finished or about to "
		   "expire, and your VMs changing status. Without a verb, shepherd inbox "
		   "lists them (shepherd inbox list)."),
	.subcmds = inbox_verbs,
	.default_verb = "list",
};
