/*
 * shepherd batch: many requests under one parent ticket. submit sends a file of VM specs
 * (YAML or JSON, a list) as one batch; status shows the parent and its children, redrawn on a
 * terminal until the batch ends, else one line per change; retry, cancel and approve act on
 * every child concerned and list them. vm start|stop|restart --selector submits a power batch
 * through cli_batch_power. See docs/internals/batch.md.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "cmd-batch.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"
#include "yaml.h"

enum {
	OPT_YES = CLI_OPT_LOCAL,
	OPT_WAIT,
	OPT_ALL,
	OPT_LIMIT,
	OPT_ONCE,
	OPT_CLUSTER,
	OPT_REASON,
};

#define BATCH_FILE_MAX (4u * 1024 * 1024)
#define BATCH_POLL_MS 1000
#define BATCH_ROUTE SHP_ROUTE_VMS "/batch"

static const struct cli_column batch_columns[] = {
	{N_("ID"), N_("Batch"), "batch_id", COL_RIGHT},
	{N_("KIND"), N_("Kind"), "kind"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("TOTAL"), N_("Total"), "total", COL_RIGHT},
	{N_("OK"), N_("Succeeded"), "success", COL_RIGHT},
	{N_("FAILED"), N_("Failed"), "failed", COL_RIGHT},
	{N_("PENDING"), N_("Pending"), "pending", COL_RIGHT},
	{N_("CANCELLED"), N_("Cancelled"), "cancelled", COL_RIGHT},
	{N_("AGE"), N_("Submitted"), "created_at", COL_AGE},
	{N_("REQUESTER"), N_("Requester"), "requester", COL_WIDE},
	{NULL},
};

static const struct cli_kind batch_kind = {"batch", N_("batches"), "batch_id", batch_columns};

static const struct cli_column child_columns[] = {
	{N_("#"), N_("Index"), "index", COL_RIGHT},
	{N_("TICKET"), N_("Ticket"), "ticket_id", COL_RIGHT},
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("NAME"), N_("Name"), "name"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("TASK"), N_("Task"), "task_id", COL_RIGHT, "-"},
	{N_("ERROR"), N_("Error"), "error_code", 0, ""},
	{N_("RETRIED BY"), N_("Retried by"), "retried_by", COL_WIDE | COL_RIGHT, "-"},
	{NULL},
};

static const struct cli_kind child_kind = {"ticket", N_("children"), "ticket_id", child_columns};

/* The batch's status is one it never leaves. */
static bool batch_final(const char *status)
{
	static const char *const finals[] = {"COMPLETED", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"};

	for (size_t i = 0; status && i < SHP_ARRAY_SIZE(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			return true;
	return false;
}

/* The exit status of an ended batch: 0 completed, 6 cancelled, 1 otherwise. */
static int batch_outcome(struct cli_ctx *ctx, const json_t *parent)
{
	const char *st = shp_json_str(parent, "status");

	if (shp_streq(st, "COMPLETED"))
		return 0;
	ctx->exit_status = shp_streq(st, "CANCELLED") ? SHP_EXIT_CONFLICT : SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_INTERNAL, _("batch %lld ended %s"),
			     (long long)json_integer_value(json_object_get(parent, "batch_id")),
			     st ? st : "?");
}

/* A batch id is a number: anything else is refused before asking the daemon. */
static int check_id(struct cli_ctx *ctx, const char *id)
{
	long long v;

	if (shp_parse_int(id, 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid batch id '%.40s' (a number)"), id);
	return 0;
}

/* ---- fetching a batch with all its children ------------------------------------------------ */

/* The batch with every child, page after page (the parent's members from the first page). */
static int fetch(struct cli_ctx *ctx, const char *id, json_t **ret)
{
	_cleanup_(json_decrefp) json_t *all = json_array();
	json_t *parent = NULL;
	_cleanup_free_ char *cursor = NULL;

	for (;;) {
		json_t *page = NULL, *children;
		_cleanup_free_ char *url =
			cursor ? xasprintf("%s/%s?limit=%d&cursor=%s", BATCH_ROUTE, id,
					   SHP_API_PAGE_MAX, cursor)
			       : xasprintf("%s/%s?limit=%d", BATCH_ROUTE, id, SHP_API_PAGE_MAX);
		int r = cli_call(ctx, "GET", url, NULL, &page);

		if (r < 0) {
			json_decref(parent);
			return r;
		}
		children = json_object_get(page, "children");
		(void)json_array_extend(all, json_object_get(children, "items"));
		free(cursor);
		cursor = shp_json_str(children, "next_cursor")
				 ? xstrdup(shp_json_str(children, "next_cursor"))
				 : NULL;
		if (!parent)
			parent = page;
		else
			json_decref(page);
		if (!cursor)
			break;
	}
	(void)json_object_set(parent, "children", all);
	*ret = parent;
	return 0;
}

/* The parent's row and the table of its children. */
static void print_batch(struct cli_ctx *ctx, const json_t *b)
{
	_cleanup_(json_decrefp) json_t *row = json_array();
	struct cli_render r = cli_render_of(ctx);

	(void)json_array_append(row, (json_t *)b);
	(void)cli_render_list(stdout, &batch_kind, row, &r);
	printf("\n");
	(void)cli_render_list(stdout, &child_kind, json_object_get(b, "children"), &r);
	(void)fflush(stdout);
}

/* One line of a change: the parent's counters, or a child's new status. */
static void announce_parent(const json_t *b)
{
	printf(_("batch %lld: %s (%lld of %lld succeeded, %lld failed, %lld pending, %lld "
		 "cancelled)\n"),
	       (long long)json_integer_value(json_object_get(b, "batch_id")),
	       shp_json_str(b, "status"),
	       (long long)json_integer_value(json_object_get(b, "success")),
	       (long long)json_integer_value(json_object_get(b, "total")),
	       (long long)json_integer_value(json_object_get(b, "failed")),
	       (long long)json_integer_value(json_object_get(b, "pending")),
	       (long long)json_integer_value(json_object_get(b, "cancelled")));
}

/*
 * The children whose status changed since before (all of them the first time), then the
 * parent's line when its status or its pending count moved.
 */
static void announce_changes(const json_t *before, const json_t *now)
{
	const json_t *old = json_object_get(before, "children"), *c;
	size_t i;

	json_array_foreach(json_object_get(now, "children"), i, c)
	{
		const json_t *o = NULL, *x;
		size_t k;
		json_array_foreach(old, k, x) if (json_equal(json_object_get(x, "ticket_id"),
							     json_object_get(c, "ticket_id"))) o =
			x;
		if (o && shp_streq(shp_json_str(o, "status"), shp_json_str(c, "status")))
			continue;
		printf(_("  #%lld %s/%s: %s%s%s\n"),
		       (long long)json_integer_value(json_object_get(c, "index")),
		       shp_json_str(c, "namespace"), shp_json_str(c, "name"),
		       shp_json_str(c, "status"), shp_json_str(c, "error_code") ? " " : "",
		       shp_json_str(c, "error_code") ? shp_json_str(c, "error_code") : "");
	}
	if (!json_equal(json_object_get(before, "status"), json_object_get(now, "status")) ||
	    !json_equal(json_object_get(before, "pending"), json_object_get(now, "pending")))
		announce_parent(now);
	(void)fflush(stdout);
}

/*
 * Follow batch id until it ends: on a terminal the whole view is redrawn each time; elsewhere
 * each change is one line (what changed, then the parent's counters).
 */
static int follow(struct cli_ctx *ctx, const char *id, bool redraw)
{
	_cleanup_(json_decrefp) json_t *last = NULL;

	for (;;) {
		json_t *now = NULL;
		int r = fetch(ctx, id, &now);

		if (r < 0)
			return r;
		if (redraw) {
			printf("\033[H\033[2J");
			print_batch(ctx, now);
		} else {
			announce_changes(last, now);
		}
		json_decref(last);
		last = now;
		if (batch_final(shp_json_str(now, "status")))
			return batch_outcome(ctx, now);
		if (!cli_nap_ms(BATCH_POLL_MS))
			return cli_interrupt_error(ctx);
	}
}

/* ---- submit ------------------------------------------------------------------------------------
 */

/* The whole file (or standard input), at most BATCH_FILE_MAX bytes. */
static int read_file(struct cli_ctx *ctx, const char *path, struct shp_buf *b)
{
	_cleanup_fclose_ FILE *f = strcmp(path, "-") == 0 ? NULL : fopen(path, "re");
	FILE *in = strcmp(path, "-") == 0 ? stdin : f;
	char chunk[8192];
	size_t n;

	if (!in)
		return shp_error_errno(&ctx->err, errno, _("cannot open '%s'"), path);
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		if (shp_buf_addn(b, chunk, n) < 0)
			return shp_error_set(&ctx->err, SHP_E_LIMIT,
					     _("'%s' is larger than %u bytes"), path,
					     BATCH_FILE_MAX);
	if (ferror(in))
		return shp_error_errno(&ctx->err, errno, _("cannot read '%s'"), path);
	return 0;
}

/* "FILE:LINE: " for item index (and field), when the file says where it is. */
static char *where(const char *path, const json_t *lines, long index, const char *field)
{
	char key[160];
	const json_t *line;

	(void)snprintf(key, sizeof(key), "[%ld]%s%s", index, field ? "." : "", field ? field : "");
	line = json_object_get(lines, key);
	if (!line && field) {
		(void)snprintf(key, sizeof(key), "[%ld]", index);
		line = json_object_get(lines, key);
	}
	return line ? xasprintf("%s:%lld: ", path, (long long)json_integer_value(line))
		    : xasprintf("%s: ", path);
}

/* The file's items: a list of VM specs, or a mapping with "items" (the API's body). */
static int load_items(struct cli_ctx *ctx, const char *path, json_t **ret, json_t **ret_lines)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(BATCH_FILE_MAX);
	json_t *doc, *items;
	size_t i;

	if (read_file(ctx, path, &b) < 0)
		return -ctx->err.code;
	doc = shp_yaml_to_json_lines(b.buf, b.len, SHP_API_JSON_DEPTH_MAX, ret_lines, &ctx->err);
	if (!doc)
		return shp_error_prefix(&ctx->err, "%s", path);
	items = json_is_object(doc) ? json_incref(json_object_get(doc, "items")) : json_incref(doc);
	json_decref(doc);
	if (!json_is_array(items) || json_array_size(items) == 0) {
		json_decref(items);
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("%s: expected a non-empty list of VM specs"), path);
	}
	json_array_foreach(items, i, doc) if (!json_is_object(doc))
	{
		_cleanup_free_ char *at = where(path, *ret_lines, (long)i, NULL);
		json_decref(items);
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("%sitem %zu: expected a mapping (a VM spec)"), at, i);
	}
	*ret = items;
	return 0;
}

/* The daemon refused items (400 BATCH_INVALID with details.errors). */
static bool has_item_errors(const struct cli_ctx *ctx)
{
	const json_t *error = json_object_get(ctx->error_body, "error");

	return json_is_array(json_object_get(json_object_get(error, "details"), "errors"));
}

/* The daemon's item errors, each with the file, the item's line, its name and the field. */
static int item_errors(struct cli_ctx *ctx, const char *path, const json_t *items,
		       const json_t *lines)
{
	const json_t *details =
		json_object_get(json_object_get(ctx->error_body, "error"), "details");
	const json_t *e;
	size_t i;

	if (!json_is_array(json_object_get(details, "errors")))
		return -ctx->err.code;
	json_array_foreach(json_object_get(details, "errors"), i, e)
	{
		long idx = (long)json_integer_value(json_object_get(e, "index"));
		const char *field = shp_json_str(e, "field");
		_cleanup_free_ char *at = where(path, lines, idx, field);
		const char *name = shp_json_str(json_array_get(items, (size_t)idx), "name");

		fprintf(stderr, _("%sitem %ld (%s)%s%s%s: %s\n"), at, idx, name ? name : "?",
			field ? _(", field '") : "", field ? field : "", field ? "'" : "",
			shp_json_str(e, "message"));
	}
	return shp_error_set(&ctx->err, SHP_E_INVAL,
			     _("%s: %lld item(s) refused, nothing submitted"), path,
			     (long long)json_integer_value(json_object_get(details, "invalid")));
}

/* After a submission: one line (or the answer in -o json), then --wait follows it. */
static int submitted(struct cli_ctx *ctx, const json_t *ans, bool wait)
{
	char id[32];

	(void)snprintf(id, sizeof(id), "%lld",
		       (long long)json_integer_value(json_object_get(ans, "batch_id")));
	if (ctx->format != CLI_FORMAT_TABLE && !wait)
		return cli_show_raw(ctx, ans);
	if (!ctx->quiet)
		printf(_("batch %s submitted: %lld %s request(s), %lld waiting for approval "
			 "(%s)\n"),
		       id, (long long)json_integer_value(json_object_get(ans, "total")),
		       shp_json_str(ans, "kind"),
		       (long long)json_integer_value(json_object_get(ans, "awaiting_approval")),
		       shp_json_str(ans, "status_url"));
	(void)fflush(stdout);
	return wait ? follow(ctx, id, false) : 0;
}

/*
 * The file's items go as they are: the daemon checks them as single requests would be, and
 * its item errors are printed against the file (line, item, name, field).
 */
static int cmd_batch_submit(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *items = NULL, *lines = NULL, *body = NULL, *ans = NULL;
	const char *path;
	bool yes = false, wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_YES)
			yes = true;
		else if (c == OPT_WAIT)
			wait = true;
	}
	path = argv[optind];
	if (load_items(ctx, path, &items, &lines) < 0)
		return -ctx->err.code;
	body = json_pack("{s:O,s:b}", "items", items, "confirm", yes);
	r = cli_call(ctx, "POST", BATCH_ROUTE, body, &ans);
	if (r < 0 && has_item_errors(ctx))
		return item_errors(ctx, path, items, lines);
	if (r < 0)
		return r;
	return submitted(ctx, ans, wait);
}

int cli_batch_power(struct cli_ctx *ctx, const char *op, const char *selector, bool yes, bool wait)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_(json_decrefp) json_t *body =
		json_pack("{s:s,s:s,s:b}", "operation", op, "selector", selector, "confirm", yes);
	int r = cli_call(ctx, "POST", BATCH_ROUTE "/power", body, &ans);

	return r < 0 ? r : submitted(ctx, ans, wait);
}

/* ---- list, status --------------------------------------------------------------------------- */

static int cmd_batch_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	long limit = 0;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_ALL)
			cli_query_add(&q, "all", "true");
		else if (c == OPT_LIMIT && cli_parse_limit(ctx, optarg, &limit) < 0)
			return -ctx->err.code;
	}
	r = cli_list(ctx, BATCH_ROUTE, q.buf, limit, batch_kind.plural, &items);
	return r < 0 ? r : cli_show_list(ctx, &batch_kind, items);
}

/* Follow by default; --once, or a machine format, shows one snapshot. */
static int cmd_batch_status(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *b = NULL;
	bool once = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_ONCE)
			once = true;
	if ((r = check_id(ctx, argv[optind])) < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		once = true;
	if (!once)
		return follow(ctx, argv[optind], ctx->stdout_tty);
	if ((r = fetch(ctx, argv[optind], &b)) < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, b);
	print_batch(ctx, b);
	return 0;
}

/* ---- retry, cancel, approve ------------------------------------------------------------------ */

/* The children an action touched: one line each, then the parent's status. */
static int affected(struct cli_ctx *ctx, const json_t *ans, const char *list, const char *verb)
{
	const json_t *c;
	size_t i;

	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, ans);
	json_array_foreach(json_object_get(ans, list), i, c)
	{
		printf(_("  #%lld %s/%s (ticket %lld) %s\n"),
		       (long long)json_integer_value(json_object_get(c, "index")),
		       shp_json_str(c, "namespace") ? shp_json_str(c, "namespace") : "-",
		       shp_json_str(c, "name") ? shp_json_str(c, "name") : "-",
		       (long long)json_integer_value(json_object_get(c, "ticket_id")), verb);
	}
	printf(_("batch %lld: %zu child(ren) %s; status %s\n"),
	       (long long)json_integer_value(json_object_get(ans, "batch_id")),
	       json_array_size(json_object_get(ans, list)), verb, shp_json_str(ans, "status"));
	return 0;
}

/* retry and cancel: POST .../ID/WHAT, then the children touched. */
static int action(int argc, char **argv, struct cli_ctx *ctx, const char *what, const char *list,
		  const char *verb)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *path = NULL;
	bool wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		wait = wait || c == OPT_WAIT;
	if ((r = check_id(ctx, argv[optind])) < 0)
		return r;
	path = xasprintf("%s/%s/%s", BATCH_ROUTE, argv[optind], what);
	r = cli_call(ctx, "POST", path, NULL, &ans);
	if (r == 0)
		r = affected(ctx, ans, list, verb);
	return r < 0 || !wait ? r : follow(ctx, argv[optind], false);
}

static int cmd_batch_retry(int argc, char **argv, struct cli_ctx *ctx)
{
	return action(argc, argv, ctx, "retry", "retried", _("submitted again"));
}

static int cmd_batch_cancel(int argc, char **argv, struct cli_ctx *ctx)
{
	return action(argc, argv, ctx, "cancel", "cancelled", _("cancelled"));
}

/* Every child waiting for review: the decisions, then the refusals (exit 1 if any). */
static int cmd_batch_approve(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *ans = NULL, *body = json_object();
	_cleanup_free_ char *path = NULL;
	const json_t *c;
	bool wait = false;
	size_t i;
	int o, r;

	while ((o = cli_getopt(ctx, argc, argv)) != -1) {
		if (o == OPT_CLUSTER)
			(void)json_object_set_new(body, "cluster", json_string(optarg));
		else if (o == OPT_REASON)
			(void)json_object_set_new(body, "reason", json_string(optarg));
		else if (o == OPT_WAIT)
			wait = true;
	}
	if ((r = check_id(ctx, argv[optind])) < 0)
		return r;
	path = xasprintf("%s/%s/approve", BATCH_ROUTE, argv[optind]);
	if ((r = cli_call(ctx, "POST", path, body, &ans)) < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE) {
		r = cli_show_raw(ctx, ans);
		return r < 0 || !wait ? r : follow(ctx, argv[optind], false);
	}
	json_array_foreach(json_object_get(ans, "approved"), i, c)
		printf(_("  ticket %lld %s (plan %.12s)\n"),
		       (long long)json_integer_value(json_object_get(c, "ticket_id")),
		       shp_json_str(c, "status"),
		       shp_json_str(c, "plan_hash") ? shp_json_str(c, "plan_hash") : "-");
	json_array_foreach(json_object_get(ans, "refused"), i, c)
		printf(_("  ticket %lld refused: %s\n"),
		       (long long)json_integer_value(json_object_get(c, "ticket_id")),
		       shp_json_str(c, "message"));
	printf(_("batch %s: %zu approved, %zu refused; status %s\n"), argv[optind],
	       json_array_size(json_object_get(ans, "approved")),
	       json_array_size(json_object_get(ans, "refused")), shp_json_str(ans, "status"));
	if (json_array_size(json_object_get(ans, "refused")) > 0)
		ctx->exit_status = SHP_EXIT_FAILURE;
	if (json_array_size(json_object_get(ans, "refused")) > 0)
		return shp_error_set(&ctx->err, SHP_E_INTERNAL, _("some children were refused"));
	return wait ? follow(ctx, argv[optind], false) : 0;
}

/* ---- the table --------------------------------------------------------------------------------
 */

static const struct shp_flag submit_flags[] = {
	{"yes", OPT_YES, 'y', NULL, NULL,
	 N_("confirm the requests whose policy asks for the requester's confirmation")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the batch to its end, one line per change; exit with its outcome")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"all", OPT_ALL, 0, NULL, NULL, N_("every user's batches (platform admins)")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N batches")},
	{NULL},
};

static const struct shp_flag status_flags[] = {
	{"once", OPT_ONCE, 0, NULL, NULL, N_("show the batch once instead of following it")},
	{NULL},
};

static const struct shp_flag approve_flags[] = {
	{"cluster", OPT_CLUSTER, 0, NULL, "C", N_("run the children on cluster C"), NULL, false,
	 false, CLI_NAMES_CLUSTER},
	{"reason", OPT_REASON, 0, NULL, "TEXT", N_("why (recorded with each decision)")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("then follow the batch to its end, one line per change; exit with its outcome")},
	{NULL},
};

static const struct shp_flag wait_flags[] = {
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("then follow the batch to its end, one line per change; exit with its outcome")},
	{NULL},
};

static const struct shp_subcmd batch_verbs[] = {
	{"approve", cmd_batch_approve, 1, 1, "ID [--cluster C] [--reason TEXT] [--wait]",
	 CMD_NEEDS_DAEMON, N_("approve every child of a batch waiting for review"),
	 N_("Approve, as an approver of their environment, every child of batch ID that waits "
	    "for review: one decision per child, each on the child's own plan hash, exactly as "
	    "shepherd approvals approve would record it. Children that cannot be approved (your "
	    "own, another environment's) are listed as refused."),
	 approve_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_BATCH},
	{"cancel", cmd_batch_cancel, 1, 1, "ID [--wait]", CMD_NEEDS_DAEMON,
	 N_("cancel the children of a batch that have not started"),
	 N_("Cancel every child of batch ID that waits for approval or for its turn; children "
	    "already running finish. The children cancelled are listed."),
	 wait_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_BATCH},
	{"list", cmd_batch_list, 0, 0, "[--all] [--limit N]", CMD_NEEDS_DAEMON | CMD_READONLY,
	 N_("list your batches"), N_("List your batches, newest first, with their counters."),
	 list_flags},
	{"retry", cmd_batch_retry, 1, 1, "ID [--wait]", CMD_NEEDS_DAEMON,
	 N_("submit the failed children of a batch again"),
	 N_("Submit every FAILED child of batch ID again, as new children of the same batch, "
	    "each checked as a new request. The new children are listed."),
	 wait_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_BATCH},
	{"status", cmd_batch_status, 1, 1, "ID [--once]", CMD_NEEDS_DAEMON | CMD_READONLY,
	 N_("follow a batch: its counters and its children"),
	 N_("Show batch ID (its status and counters) and the table of its children. On a "
	    "terminal the view is redrawn until the batch ends; otherwise each change is printed "
	    "as one line. --once (or -o json) shows it once."),
	 status_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_BATCH},
	{"submit", cmd_batch_submit, 1, 1, "FILE [--yes] [--wait]", CMD_NEEDS_DAEMON,
	 N_("request many VMs at once"),
	 N_("Submit the VM specs of FILE (YAML or JSON: a list of specs with the fields of "
	    "shepherd vm create, or a mapping whose items is that list; - reads standard input) "
	    "as one batch. Either every request is recorded or none: the errors name the file, "
	    "the item and the field. The children then run one by one."),
	 submit_flags},
	{NULL},
};

const struct shp_cmd cmd_batch = {
	.name = "batch",
	.summary = N_("many requests under one parent"),
	.description = N_("A batch records many requests at once (VM creates, or a power "
			  "operation on the VMs a selector picks) under one parent, whose status "
			  "aggregates its children: COMPLETED, PARTIAL_SUCCESS, FAILED or "
			  "CANCELLED."),
	.subcmds = batch_verbs,
};
