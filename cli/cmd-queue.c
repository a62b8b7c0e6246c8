/*
 * shepherd queue: the job queue's queues for platform admins — jobs per state, and pausing or
 * resuming a queue.
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "error.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"

static const struct cli_column queue_columns[] = {
	{N_("QUEUE"), N_("Queue"), "name"},
	{N_("PAUSED"), N_("Paused"), "paused"},
	{N_("AVAILABLE"), N_("Available"), "available", COL_RIGHT, "0"},
	{N_("SCHEDULED"), N_("Scheduled"), "scheduled", COL_RIGHT, "0"},
	{N_("RUNNING"), N_("Running"), "running", COL_RIGHT, "0"},
	{N_("RETRYABLE"), N_("Retryable"), "retryable", COL_RIGHT, "0"},
	{N_("COMPLETED"), N_("Completed"), "completed", COL_RIGHT, "0"},
	{N_("CANCELLED"), N_("Cancelled"), "cancelled", COL_RIGHT, "0"},
	{N_("DISCARDED"), N_("Discarded"), "discarded", COL_RIGHT, "0"},
	{NULL},
};

static const struct cli_kind queue_kind = {"queue", N_("queues"), "name", queue_columns};

static int cmd_queue_stats(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *stats = NULL;
	_cleanup_(json_decrefp) json_t *items = json_array();
	const char *name;
	json_t *q;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = cli_call(ctx, "GET", SHP_ROUTE_QUEUES, NULL, &stats);
	if (r < 0)
		return r;
	/* {"queues": {"NAME": {...}}} becomes a list of {"name": NAME, ...} */
	json_object_foreach(json_object_get(stats, "queues"), name, q)
	{
		json_t *row = json_deep_copy(q);
		if (!row || json_object_set_new(row, "name", json_string(name)) < 0 ||
		    json_array_append_new(items, row) < 0)
			return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	}
	return cli_show_list(ctx, &queue_kind, items);
}

static int queue_action(int argc, char **argv, struct cli_ctx *ctx, const char *verb,
			const char *done)
{
	_cleanup_(json_decrefp) json_t *res = NULL;
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	base = cli_path(SHP_ROUTE_QUEUES, argv[optind]);
	path = xasprintf("%s/%s", base, verb);
	r = cli_call(ctx, "POST", path, NULL, &res);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &queue_kind, res, done);
}

static int cmd_queue_pause(int argc, char **argv, struct cli_ctx *ctx)
{
	return queue_action(argc, argv, ctx, "pause", N_("paused"));
}

static int cmd_queue_resume(int argc, char **argv, struct cli_ctx *ctx)
{
	return queue_action(argc, argv, ctx, "resume", N_("resumed"));
}

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd queue_verbs[] = {
	{
		.name = "pause",
		.fn = cmd_queue_pause,
		.min_args = 1,
		.max_args = 1,
		.usage = "QUEUE",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("stop taking jobs from a queue"),
		.description = N_("Stop taking new jobs from QUEUE; running jobs finish. Jobs keep "
				  "arriving and wait until the queue is resumed."),
		.opts = no_flags,
	},
	{
		.name = "resume",
		.fn = cmd_queue_resume,
		.min_args = 1,
		.max_args = 1,
		.usage = "QUEUE",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("take jobs from a paused queue again"),
		.description = N_("Take jobs from QUEUE again after a pause."),
		.opts = no_flags,
	},
	{
		.name = "stats",
		.fn = cmd_queue_stats,
		.usage = "",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("count jobs per queue and state"),
		.description =
			N_("Show, for every queue, how many jobs are in each state and whether "
			   "the queue is paused."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_queue = {
	.name = "queue",
	.summary = N_("see and pause the job queues (platform admins)"),
	.description =
		N_("Jobs wait in named queues; a paused queue keeps its jobs until resumed."),
	.subcmds = queue_verbs,
};
