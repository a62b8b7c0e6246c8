/*
 * shepherd tasks: executions of plans — submit a plan for a tenant, list and show tasks with
 * their steps, follow one to its end, cancel one. A followed task's outcome is the exit status.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"
#include "yaml.h"

#define PLAN_FILE_MAX (16u << 20) /* the daemon's own body limit is smaller by default */
#define REASON_MAX 1024
#define PRIORITY_MAX 100
#define HASH_SHORT 12

enum {
	OPT_FILE = 'f',
	OPT_TENANT = CLI_OPT_LOCAL,
	OPT_SLA,
	OPT_PRIORITY,
	OPT_WAIT_LOCK,
	OPT_YES,
	OPT_WAIT,
	OPT_STATUS,
	OPT_LIMIT,
	OPT_REASON,
};

static const char *const task_statuses[] = {"pending",   "running",  "succeeded", "failed",
					    "cancelled", "rejected", NULL};
static const char *const sla_classes[] = {"fast", "medium", "long", NULL};

/* ---- cells ---------------------------------------------------------------------------------- */

static char *task_status(const json_t *t, int64_t now)
{
	const char *s = shp_json_str(t, "status");

	if (json_is_true(json_object_get(t, "timed_out")))
		return xasprintf(_("%s (timed out)"), s ? s : "?");
	return xstrdup(s ? s : _("<none>"));
}

static char *task_steps(const json_t *t, int64_t now)
{
	return xasprintf("%" PRId64 "/%" PRId64, shp_json_int(t, "steps_done", 0),
			 shp_json_int(t, "steps_total", 0));
}

static char *task_plan_hash(const json_t *t, int64_t now)
{
	const char *h = shp_json_str(t, "plan_hash");

	return h ? xasprintf("%.*s", HASH_SHORT, h) : xstrdup(_("<none>"));
}

static char *task_mode(const json_t *t, int64_t now)
{
	const char *mode = shp_json_str(t, "mode"), *why = shp_json_str(t, "mode_reason");

	if (why && why[0])
		return xasprintf("%s (%s)", mode ? mode : "?", why);
	return xstrdup(mode ? mode : _("<none>"));
}

static char *task_approval(const json_t *t, int64_t now)
{
	const char *state = shp_json_str(t, "approval_state");

	return xasprintf("level %" PRId64 ", %s", shp_json_int(t, "approval_level", 0),
			 state ? state : "?");
}

static char *task_timeout(const json_t *t, int64_t now)
{
	const char *policy = shp_json_str(t, "timeout_policy_id");
	int64_t ms = shp_json_int(t, "timeout_ms", 0);

	if (policy)
		return xasprintf("%" PRId64 " ms (%s)", ms, policy);
	return xasprintf("%" PRId64 " ms", ms);
}

static char *task_cancelled(const json_t *t, int64_t now)
{
	const char *by = shp_json_str(t, "cancelled_by"), *why = shp_json_str(t, "cancel_reason");

	if (!by)
		return xstrdup("-");
	if (why && why[0])
		return xasprintf(_("by %s: %s"), by, why);
	return xasprintf(_("by %s"), by);
}

static char *task_error(const json_t *t, int64_t now)
{
	const char *e = shp_json_str(t, "error"), *code = shp_json_str(t, "error_code");

	if (!e)
		return xstrdup("-");
	if (code)
		return xasprintf("%s (%s)", e, code);
	return xstrdup(e);
}

static char *step_targets(const json_t *s, int64_t now)
{
	const json_t *targets = json_object_get(s, "targets");
	struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	size_t i;
	json_t *t;
	char *text;

	json_array_foreach(targets, i, t)
	{
		_cleanup_free_ char *raw = NULL;

		if (!json_is_string(t))
			raw = json_dumps(t, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		xbuf_addf(&b, "%s%s", i ? "," : "",
			  json_is_string(t) ? json_string_value(t)
			  : raw             ? raw
					    : "?");
	}
	text = shp_buf_detach(&b, NULL);
	if (!text)
		abort();
	return text;
}

/* How long the step ran (or runs, so far). */
static char *step_time(const json_t *s, int64_t now)
{
	const char *start = shp_json_str(s, "started_at"), *end = shp_json_str(s, "ended_at");
	int64_t a, b = now;
	char age[32];

	if (!start || cli_parse_time(start, &a) < 0 || (end && cli_parse_time(end, &b) < 0))
		return xstrdup("-");
	cli_format_age(b - a, age, sizeof(age));
	return xstrdup(age);
}

static const struct cli_column task_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("STATUS"), N_("Status"), NULL, 0, NULL, task_status},
	{N_("TENANT"), N_("Tenant"), "tenant"},
	{N_("ACTOR"), N_("Actor"), "actor"},
	{N_("MODE"), N_("Mode"), "mode"},
	{N_("STEPS"), N_("Steps"), NULL, COL_RIGHT, NULL, task_steps},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("SLA"), N_("SLA class"), "sla_class", COL_WIDE},
	{N_("PLAN HASH"), N_("Plan hash"), NULL, COL_WIDE, NULL, task_plan_hash},
	{N_("ERROR"), N_("Error"), "error", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind task_kind = {"task", N_("tasks"), "id", task_columns};

/* 'tasks show' in table output: every field worth reading, then the steps. */
static const struct cli_column task_detail_columns[] = {
	{N_("ID"), N_("ID"), "id"},
	{N_("STATUS"), N_("Status"), NULL, 0, NULL, task_status},
	{N_("TENANT"), N_("Tenant"), "tenant"},
	{N_("ACTOR"), N_("Actor"), "actor"},
	{N_("MODE"), N_("Mode"), NULL, 0, NULL, task_mode},
	{N_("RECORD ONLY"), N_("Record only"), "record_only"},
	{N_("STEPS"), N_("Steps done"), NULL, 0, NULL, task_steps},
	{N_("SLA"), N_("SLA class"), "sla_class"},
	{N_("PRIORITY"), N_("Priority"), "priority"},
	{N_("APPROVAL"), N_("Approval"), NULL, 0, NULL, task_approval},
	{N_("TIMEOUT"), N_("Timeout"), NULL, 0, NULL, task_timeout},
	{N_("PLAN HASH"), N_("Plan hash"), "plan_hash"},
	{N_("JOB"), N_("Job"), "job_id", 0, "-"},
	{N_("WORKER"), N_("Worker"), "worker_id", 0, "-"},
	{N_("ATTEMPTS"), N_("Attempts"), "attempts", 0, "0"},
	{N_("CREATED"), N_("Created"), "created_at", COL_WHEN},
	{N_("STARTED"), N_("Started"), "started_at", COL_WHEN, "-"},
	{N_("ENDED"), N_("Ended"), "ended_at", COL_WHEN, "-"},
	{N_("CANCELLED"), N_("Cancelled"), NULL, 0, NULL, task_cancelled},
	{N_("ERROR"), N_("Error"), NULL, 0, NULL, task_error},
	{NULL},
};

static const struct cli_kind task_detail_kind = {"task", N_("tasks"), "id", task_detail_columns};

static const struct cli_column step_columns[] = {
	{"#", N_("Index"), "index", COL_RIGHT},
	{N_("ACTION"), N_("Action"), "action"},
	{N_("TARGETS"), N_("Targets"), NULL, COL_FLEX, NULL, step_targets},
	{N_("STATUS"), N_("Status"), NULL, 0, NULL, task_status},
	{N_("ATTEMPTS"), N_("Attempts"), "attempts", COL_RIGHT, "0"},
	{N_("TIME"), N_("Time"), NULL, COL_RIGHT, NULL, step_time},
	{N_("ERROR"), N_("Error"), "error", COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind step_kind = {"step", N_("steps"), "index", step_columns};

/* ---- shared --------------------------------------------------------------------------------- */

static bool is_table(const struct cli_ctx *ctx)
{
	return ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE;
}

/* The task, and in table output a table of its steps under it. */
static int show_task(struct cli_ctx *ctx, const json_t *task)
{
	const json_t *steps = json_object_get(task, "steps");
	struct cli_render rr;
	int r;

	if (!is_table(ctx))
		return cli_show_object(ctx, &task_kind, task);
	r = cli_show_object(ctx, &task_detail_kind, task);
	if (r < 0 || json_array_size(steps) == 0)
		return r;
	fputc('\n', stdout);
	rr = cli_render_of(ctx);
	if (cli_render_list(stdout, &step_kind, steps, &rr) < 0)
		return shp_error_set(&ctx->err, SHP_E_IO, _("cannot write the output"));
	return 0;
}

/* A task id as the API spells it ("12"), into out. */
static int parse_id(struct cli_ctx *ctx, const char *s, char *out, size_t size)
{
	long long id;

	if (shp_parse_int(s, 1, INT64_MAX, &id, NULL) < 0)
		return cli_usage_error(ctx, _("'%s' is not a task id (see 'shepherd tasks list')"),
				       s);
	(void)snprintf(out, size, "%lld", id);
	return 0;
}

static bool is_terminal(const char *status)
{
	return status && (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
			  strcmp(status, "cancelled") == 0 || strcmp(status, "rejected") == 0 ||
			  strcmp(status, "timed_out") == 0);
}

/* A failure carrying the exit status that the task's outcome calls for. */
static int outcome_error(struct cli_ctx *ctx, enum shp_exit status, enum shp_errc code,
			 const char *what, const json_t *task)
{
	const char *error = shp_json_str(task, "error");

	ctx->exit_status = status;
	if (error && error[0])
		return shp_error_set(&ctx->err, code, _("task %" PRId64 " %s: %s"),
				     shp_json_int(task, "id", 0), what, error);
	return shp_error_set(&ctx->err, code, _("task %" PRId64 " %s"), shp_json_int(task, "id", 0),
			     what);
}

/*
 * The exit status of a finished task (shepherd(1), EXIT STATUS): 0 succeeded, 1 failed,
 * 9 timed out, 6 cancelled, 5 rejected. With cancelling, a cancelled task is the success and
 * any other end is 6: the task ended before the cancel took effect.
 */
static int task_outcome(struct cli_ctx *ctx, const json_t *task, bool cancelling)
{
	const char *status = shp_json_str(task, "status");

	if (!json_is_object(task) || !status)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	if (cancelling) {
		if (strcmp(status, "cancelled") == 0)
			return 0;
		ctx->exit_status = SHP_EXIT_CONFLICT;
		return shp_error_set(&ctx->err, SHP_E_CONFLICT,
				     _("task %" PRId64 " %s before the cancel took effect"),
				     shp_json_int(task, "id", 0), status);
	}
	if (strcmp(status, "succeeded") == 0)
		return 0;
	if (strcmp(status, "timed_out") == 0 || json_is_true(json_object_get(task, "timed_out")))
		return outcome_error(ctx, SHP_EXIT_RETRY, SHP_E_TIMEOUT, _("timed out"), task);
	if (strcmp(status, "failed") == 0)
		return outcome_error(ctx, SHP_EXIT_FAILURE, SHP_E_INTERNAL, _("failed"), task);
	if (strcmp(status, "cancelled") == 0)
		return outcome_error(ctx, SHP_EXIT_CONFLICT, SHP_E_CONFLICT, _("was cancelled"),
				     task);
	if (strcmp(status, "rejected") == 0)
		return outcome_error(ctx, SHP_EXIT_PERM, SHP_E_PERM, _("was rejected"), task);
	return shp_error_set(
		&ctx->err, SHP_E_PROTO,
		_("unexpected answer from shepherdd: task %" PRId64 " has not ended (status '%s')"),
		shp_json_int(task, "id", 0), status);
}

/* Follow a task (unless it has ended already), show how it ended, exit with its outcome. */
static int finish(struct cli_ctx *ctx, const json_t *task, bool cancelling)
{
	_cleanup_(json_decrefp) json_t *final = NULL;
	_cleanup_free_ char *path = NULL;
	char id[24];
	int r;

	if (!json_is_object(task) || shp_json_int(task, "id", 0) <= 0)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	(void)snprintf(id, sizeof(id), "%" PRId64, shp_json_int(task, "id", 0));
	if (!is_terminal(shp_json_str(task, "status"))) {
		r = cli_follow_task(ctx, id, &final);
	} else if (json_is_array(json_object_get(task, "steps"))) {
		final = json_incref((json_t *)task);
		r = 0;
	} else {
		path = cli_path(SHP_ROUTE_TASKS, id); /* the answer lacks the steps */
		r = cli_call(ctx, "GET", path, NULL, &final);
	}
	if (r < 0)
		return r;
	if (!json_is_object(final))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	r = show_task(ctx, final);
	return r < 0 ? r : task_outcome(ctx, final, cancelling);
}

/* ---- submit --------------------------------------------------------------------------------- */

static int read_all(struct cli_ctx *ctx, int fd, const char *name, struct shp_buf *data)
{
	char chunk[65536];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shp_error_errno(&ctx->err, errno, _("cannot read plan file '%s'"),
					       name);
		if (shp_buf_addn(data, chunk, (size_t)n) < 0)
			return shp_error_set(&ctx->err, SHP_E_LIMIT,
					     _("plan file '%s' is larger than %u MiB"), name,
					     PLAN_FILE_MAX >> 20);
	}
	return 0;
}

/* The plan from a file ("-": standard input), YAML or JSON, shaped {"steps": [...]}. */
static int read_plan(struct cli_ctx *ctx, const char *file, json_t **ret)
{
	_cleanup_(shp_buf_releasep) struct shp_buf data = SHP_BUF_INIT(PLAN_FILE_MAX);
	_cleanup_close_ int fd = -1;
	_cleanup_(json_decrefp) json_t *plan = NULL;
	struct shp_error perr = SHP_ERROR_INIT;
	bool from_stdin = strcmp(file, "-") == 0;
	const char *name = from_stdin ? "-" : file;
	const char *start;
	int r;

	if (!from_stdin) {
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return shp_error_errno(&ctx->err, errno, _("cannot open plan file '%s'"),
					       file);
	}
	r = read_all(ctx, from_stdin ? STDIN_FILENO : fd, name, &data);
	if (r < 0)
		return r;
	start = data.buf + strspn(data.buf, " \t\r\n");
	/* JSON is read as JSON (exact numbers, its own errors); anything else as YAML. */
	if (*start == '{' || *start == '[')
		plan = shp_json_parse(data.buf, data.len, SHP_API_JSON_DEPTH_MAX, &perr);
	else if (*start)
		plan = shp_yaml_to_json(data.buf, data.len, SHP_API_JSON_DEPTH_MAX, &perr);
	else
		(void)shp_error_set(&perr, SHP_E_INVAL, _("the file is empty"));
	if (!plan)
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("cannot read plan file '%s': %s"),
				     name, perr.msg);
	if (!json_is_object(plan) || !json_is_array(json_object_get(plan, "steps")))
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("plan file '%s' must hold a plan: a mapping with a list of "
				       "steps ({\"steps\": [...]})"),
				     name);
	*ret = TAKE_PTR(plan);
	return 0;
}

struct submit_opts {
	const char *file, *tenant, *sla, *priority;
	bool wait_lock, wait, yes;
};

static int submit_body(struct cli_ctx *ctx, const struct submit_opts *o, json_t **ret)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	json_t *plan = NULL;
	long long prio;
	int r;

	if (!shp_name_is_valid(o->tenant))
		return shp_error_set(
			&ctx->err, SHP_E_INVAL,
			_("invalid tenant '%s': a lower-case DNS label (letters, digits "
			  "and '-', at most 63)"),
			o->tenant);
	if (o->priority && shp_parse_int(o->priority, 0, PRIORITY_MAX, &prio, NULL) < 0)
		return cli_usage_error(ctx,
				       _("invalid value '%s' for '--priority' (expected 0 to %d)"),
				       o->priority, PRIORITY_MAX);
	r = read_plan(ctx, o->file, &plan);
	if (r < 0)
		return r;
	if (json_object_set_new(body, "plan", plan) < 0 ||
	    (o->priority && json_object_set_new(body, "priority", json_integer(prio)) < 0))
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	if ((r = cli_body_set(ctx, body, "tenant", o->tenant)) < 0 ||
	    (r = cli_body_set(ctx, body, "sla_class", o->sla)) < 0 ||
	    (r = cli_body_set(ctx, body, "on_busy", o->wait_lock ? "wait" : NULL)) < 0)
		return r;
	if (o->yes && json_object_set_new(body, "confirm", json_true()) < 0)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	*ret = TAKE_PTR(body);
	return 0;
}

static int cmd_tasks_submit(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_(json_decrefp) json_t *task = NULL;
	struct submit_opts o = {0};
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_FILE: o.file = optarg; break;
		case OPT_TENANT: o.tenant = optarg; break;
		case OPT_SLA: o.sla = optarg; break;
		case OPT_PRIORITY: o.priority = optarg; break;
		case OPT_WAIT_LOCK: o.wait_lock = true; break;
		case OPT_YES: o.yes = true; break;
		case OPT_WAIT: o.wait = true; break;
		default: break;
		}
	}
	r = submit_body(ctx, &o, &body);
	if (r < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_TASKS, body, &task);
	if (r < 0)
		return r;
	if (!json_is_object(task))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	if (is_table(ctx) && json_is_true(json_object_get(task, "duplicate")))
		cli_note(ctx,
			 _("Task %" PRId64 " already runs this plan for tenant '%s'; "
			   "showing it instead of a new one.\n"),
			 shp_json_int(task, "id", 0), o.tenant);
	if (!o.wait)
		return show_task(ctx, task);
	/* Following may take long: say which task it is while there is time to note it. */
	if (is_table(ctx) && !is_terminal(shp_json_str(task, "status")))
		cli_note(ctx,
			 _("Following task %" PRId64 "; interrupting stops the following, not the "
			   "task.\n"),
			 shp_json_int(task, "id", 0));
	return finish(ctx, task, false);
}

/* ---- list, show, watch, cancel -------------------------------------------------------------- */

static const struct cli_filter task_filters[] = {
	{OPT_STATUS, "status"},
	{OPT_TENANT, "tenant"},
	{0},
};

static int cmd_tasks_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_TASKS, &task_kind, task_filters,
				 OPT_LIMIT);
}

static int cmd_tasks_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *task = NULL;
	_cleanup_free_ char *path = NULL;
	char id[24];
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = parse_id(ctx, argv[optind], id, sizeof(id));
	if (r < 0)
		return r;
	path = cli_path(SHP_ROUTE_TASKS, id);
	r = cli_call(ctx, "GET", path, NULL, &task);
	if (r < 0)
		return r;
	if (!json_is_object(task))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	return show_task(ctx, task);
}

static int cmd_tasks_watch(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *task = NULL;
	char id[24];
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = parse_id(ctx, argv[optind], id, sizeof(id));
	if (r < 0)
		return r;
	r = cli_follow_task(ctx, id, &task);
	if (r < 0)
		return r;
	if (!json_is_object(task))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	r = show_task(ctx, task);
	return r < 0 ? r : task_outcome(ctx, task, false);
}

/* Without --wait: what the cancel did, in a line ("task/12 cancel requested"). */
static int show_cancelled(struct cli_ctx *ctx, const json_t *task)
{
	const char *status = shp_json_str(task, "status");
	_cleanup_free_ char *what = NULL;

	if (!json_is_object(task) || !status)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a task"));
	if (strcmp(status, "cancelled") == 0)
		what = xstrdup(_("cancelled"));
	else if (is_terminal(status))
		what = xasprintf(_("had already ended (%s)"), status);
	else
		what = xstrdup(_("cancel requested"));
	return cli_show_done(ctx, &task_kind, task, what);
}

static int cmd_tasks_cancel(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_(json_decrefp) json_t *task = NULL;
	_cleanup_free_ char *base = NULL;
	_cleanup_free_ char *path = NULL;
	const char *reason = NULL;
	bool wait = false;
	char id[24];
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_REASON)
			reason = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	r = parse_id(ctx, argv[optind], id, sizeof(id));
	if (r < 0)
		return r;
	if (reason && strlen(reason) > REASON_MAX)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("the reason is longer than %d bytes"), REASON_MAX);
	if (reason) {
		body = json_object();
		if (!body)
			return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
		r = cli_body_set(ctx, body, "reason", reason);
		if (r < 0)
			return r;
	}
	base = cli_path(SHP_ROUTE_TASKS, id);
	path = xasprintf("%s/cancel", base);
	r = cli_call(ctx, "POST", path, body, &task);
	if (r < 0)
		return r;
	return wait ? finish(ctx, task, true) : show_cancelled(ctx, task);
}

/* ---- the table ------------------------------------------------------------------------------ */

static const struct shp_flag submit_flags[] = {
	{"file", OPT_FILE, 'f', NULL, "FILE",
	 N_("the plan, YAML or JSON ({\"steps\": [...]}); - reads standard input"), .file = true,
	 .required = true},
	{"tenant", OPT_TENANT, 0, NULL, "TENANT", N_("the tenant the task runs for"),
	 .required = true},
	{"sla", OPT_SLA, 0, NULL, "CLASS", N_("the SLA class, which sets the timeouts"),
	 sla_classes},
	{"priority", OPT_PRIORITY, 0, NULL, "N", N_("the task's priority in the queue, 0 to 100")},
	{"wait-lock", OPT_WAIT_LOCK, 0, NULL, NULL,
	 N_("wait for a target another task holds instead of failing")},
	{"yes", OPT_YES, 0, NULL, NULL,
	 N_("confirm a plan that changes things (approval level 1; deploy plans also need a "
	    "platform-admin)")},
	{"wait", OPT_WAIT, 0, NULL, NULL, N_("follow the task to its end; exit with its outcome")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"status", OPT_STATUS, 0, NULL, "STATUS", N_("only tasks in this status"), task_statuses},
	{"tenant", OPT_TENANT, 0, NULL, "TENANT", N_("only tasks of this tenant")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N newest tasks")},
	{NULL},
};

static const struct shp_flag cancel_flags[] = {
	{"reason", OPT_REASON, 0, NULL, "TEXT", N_("why, kept with the task (at most 1024 bytes)")},
	{"wait", OPT_WAIT, 0, NULL, NULL, N_("wait until the task has ended")},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd tasks_verbs[] = {
	{
		.name = "cancel",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TASK,
		.fn = cmd_tasks_cancel,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID [--reason TEXT] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("cancel a task"),
		.description =
			N_("Cancel task ID: a pending task at once, a running one at its next "
			   "check, between steps. Cancelling a task that has ended changes "
			   "nothing. The task's actor, an owner of its tenant or an administrator "
			   "may cancel it. With --wait, follow the task until it has ended: the "
			   "exit status is 0 when it ended cancelled and 6 when it ended "
			   "otherwise before the cancel took effect."),
		.opts = cancel_flags,
	},
	{
		.name = "list",
		.fn = cmd_tasks_list,
		.usage = "[--status STATUS] [--tenant TENANT] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list tasks, newest first"),
		.description =
			N_("List the tasks of the tenants you belong to (administrators: all), "
			   "newest first, matching every filter given. STEPS counts the steps "
			   "done out of all; -o wide adds the SLA class, the start of the plan "
			   "hash and the error."),
		.opts = list_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TASK,
		.fn = cmd_tasks_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one task and its steps"),
		.description =
			N_("Show task ID and, under it, a table of its steps with their status, "
			   "attempts, time and error. -o json prints the whole task, plan and "
			   "steps included."),
		.opts = no_flags,
	},
	{
		.name = "submit",
		.fn = cmd_tasks_submit,
		.usage = "--file FILE|- --tenant TENANT [--sla fast|medium|long] [--priority N] "
			 "[--wait-lock] [--yes] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("run a plan for a tenant"),
		.description =
			N_("Submit the plan in FILE (YAML or JSON, a mapping with a list of steps, "
			   "each with an action, its targets and parameters) to run for TENANT, "
			   "and show the task. A short plan runs at once and the task shown has "
			   "ended; a longer one runs in the background. While a task of yours "
			   "runs a plan for a tenant, submitting the same plan for it again shows "
			   "that task instead of a new one. "
			   "Without --wait the exit status only says whether the task was "
			   "accepted; with --wait the task is followed to its end and its outcome "
			   "is the exit status, as for 'tasks watch'."),
		.opts = submit_flags,
	},
	{
		.name = "watch",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TASK,
		.fn = cmd_tasks_watch,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("follow a task to its end"),
		.description =
			N_("Follow task ID until it ends, printing each of its events as a line "
			   "on stderr (in table output), then show the task. The exit status is "
			   "the task's outcome: 0 succeeded, 1 failed, 5 rejected, 6 cancelled, 9 "
			   "timed out. A task that has ended already prints its events and ends "
			   "at once."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_tasks = {
	.name = "tasks",
	.alias = "task",
	.summary = N_("run plans and follow their tasks"),
	.description = N_("A task runs one plan, a list of steps, for one tenant, as the user who "
			  "submitted it. Its events (steps starting and ending, progress, a cancel "
			  "or a timeout) can be followed live; the execution flags decide whether "
			  "the steps really run or are only recorded."),
	.subcmds = tasks_verbs,
};
