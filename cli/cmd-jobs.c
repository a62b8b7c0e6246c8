/*
 * shepherd jobs: the durable job queue for platform admins — list and show jobs, revive one
 * from the dead-letter state, discard or cancel one.
 */
#include "config.h"

#include <stdlib.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"

enum { OPT_STATE = CLI_OPT_LOCAL, OPT_KIND, OPT_QUEUE, OPT_LIMIT };

static const char *const job_states[] = {"available", "scheduled", "running",   "retryable",
					 "completed", "cancelled", "discarded", NULL};

static char *job_attempts(const json_t *j, int64_t now)
{
	return xasprintf("%lld/%lld", (long long)shp_json_int(j, "attempt", 0),
			 (long long)shp_json_int(j, "max_attempts", 0));
}

static char *job_last_error(const json_t *j, int64_t now)
{
	const json_t *errors = json_object_get(j, "errors");
	const json_t *last = json_array_get(errors, json_array_size(errors) - 1);
	const char *e = shp_json_str(last, "error");

	return xstrdup(e ? e : "");
}

static const struct cli_column job_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("STATE"), N_("State"), "state"},
	{N_("KIND"), N_("Kind"), "kind"},
	{N_("QUEUE"), N_("Queue"), "queue"},
	{N_("ATTEMPTS"), N_("Attempts"), NULL, 0, NULL, job_attempts},
	{N_("PRIORITY"), N_("Priority"), "priority", COL_RIGHT},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("SCHEDULED"), N_("Scheduled"), "scheduled_at", COL_WIDE | COL_WHEN},
	{N_("ARGS"), N_("Args"), "args", COL_WIDE},
	{N_("LAST ERROR"), N_("Last error"), NULL, COL_WIDE | COL_FLEX, NULL, job_last_error},
	{NULL},
};

static const struct cli_kind job_kind = {"job", N_("jobs"), "id", job_columns};

static const struct cli_filter job_filters[] = {
	{OPT_STATE, "state"},
	{OPT_KIND, "kind"},
	{OPT_QUEUE, "queue"},
	{0},
};

static int cmd_jobs_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_JOBS, &job_kind, job_filters,
				 OPT_LIMIT);
}

static int cmd_jobs_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_JOBS, &job_kind);
}

/* POST /jobs/ID/<verb>, then report the job as it is now. */
static int job_action(int argc, char **argv, struct cli_ctx *ctx, const char *verb,
		      const char *done)
{
	_cleanup_(json_decrefp) json_t *job = NULL;
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	base = cli_path(SHP_ROUTE_JOBS, argv[optind]);
	path = xasprintf("%s/%s", base, verb);
	r = cli_call(ctx, "POST", path, NULL, &job);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &job_kind, job, done);
}

static int cmd_jobs_retry(int argc, char **argv, struct cli_ctx *ctx)
{
	return job_action(argc, argv, ctx, "retry", N_("queued again"));
}

static int cmd_jobs_discard(int argc, char **argv, struct cli_ctx *ctx)
{
	return job_action(argc, argv, ctx, "discard", N_("discarded"));
}

static int cmd_jobs_cancel(int argc, char **argv, struct cli_ctx *ctx)
{
	return job_action(argc, argv, ctx, "cancel", N_("cancelled"));
}

static const struct shp_flag list_flags[] = {
	{"state", OPT_STATE, 0, NULL, "STATE", N_("only jobs in this state"), job_states},
	{"kind", OPT_KIND, 0, NULL, "KIND", N_("only jobs of this kind (event.dispatch)")},
	{"queue", OPT_QUEUE, 0, NULL, "QUEUE", N_("only jobs of this queue")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N newest jobs")},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd jobs_verbs[] = {
	{
		.name = "cancel",
		.fn = cmd_jobs_cancel,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("cancel a job"),
		.description = N_("Cancel job ID: a waiting job at once, a running one at its next "
				  "check. Cancelling twice is harmless."),
		.opts = no_flags,
	},
	{
		.name = "discard",
		.fn = cmd_jobs_discard,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("discard a waiting job"),
		.description =
			N_("Move waiting job ID to the dead-letter state without running it."),
		.opts = no_flags,
	},
	{
		.name = "list",
		.fn = cmd_jobs_list,
		.usage = "[--state STATE] [--kind KIND] [--queue QUEUE] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list jobs, newest first"),
		.description =
			N_("List the queue's jobs, newest first, matching every filter given. "
			   "Discarded jobs are the dead-letter queue."),
		.opts = list_flags,
	},
	{
		.name = "retry",
		.fn = cmd_jobs_retry,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("queue a failed job again"),
		.description = N_("Queue a discarded, cancelled or retryable job ID again now; an "
				  "exhausted job gets one more attempt."),
		.opts = no_flags,
	},
	{
		.name = "show",
		.fn = cmd_jobs_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one job"),
		.description = N_("Show job ID with its arguments and the error of every failed "
				  "attempt."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_jobs = {
	.name = "jobs",
	.summary = N_("inspect and steer the job queue (platform admins)"),
	.description = N_("Every change shepherd makes runs as a job of its durable queue, with "
			  "retries and a dead-letter state for jobs that keep failing."),
	.subcmds = jobs_verbs,
};
