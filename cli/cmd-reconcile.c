/*
 * shepherd reconcile: compare the database with the clusters now (dry-run or mark) and print
 * the ghosts and orphans of each cluster, or list the recorded runs (platform admins).
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

#define RECONCILE_ROUTE SHP_API_PREFIX "/reconcile"

enum { OPT_MODE = CLI_OPT_LOCAL, OPT_CLUSTER, OPT_LIMIT };

static const char *const modes[] = {"dry-run", "mark", NULL};

static char *run_counts(const json_t *j, int64_t now)
{
	(void)now;
	return xasprintf("%lld/%lld", (long long)shp_json_int(j, "ghost_count", 0),
			 (long long)shp_json_int(j, "orphan_count", 0));
}

static const struct cli_column run_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("CLUSTER"), N_("Cluster"), "cluster"},
	{N_("MODE"), N_("Mode"), "mode"},
	{N_("OUTCOME"), N_("Outcome"), "outcome"},
	{N_("GHOSTS/ORPHANS"), N_("Ghosts/orphans"), NULL, COL_RIGHT, NULL, run_counts},
	{N_("ROWS"), N_("Rows"), "db_count", COL_RIGHT | COL_WIDE},
	{N_("VMS"), N_("VMs"), "cluster_count", COL_RIGHT | COL_WIDE},
	{N_("ACTOR"), N_("Actor"), "actor", COL_WIDE},
	{N_("AGE"), N_("Started"), "started_at", COL_AGE},
	{N_("MESSAGE"), N_("Message"), "message", COL_FLEX},
	{NULL},
};

static const struct cli_kind run_kind = {"reconcile-run", N_("reconcile runs"), "id", run_columns};

/* One cluster's run as a few lines: the outcome, then each ghost and orphan. */
static void print_run(const json_t *run)
{
	_cleanup_free_ char *cluster = cli_text_sanitize(shp_json_str(run, "cluster"));
	_cleanup_free_ char *msg = cli_text_sanitize(shp_json_str(run, "message"));
	size_t i;
	json_t *it;

	printf(_("cluster %s (%s): %s: %s\n"), cluster, shp_json_str(run, "mode"),
	       shp_json_str(run, "outcome"), msg);
	json_array_foreach(json_object_get(run, "ghosts"), i, it)
	{
		_cleanup_free_ char *ns = cli_text_sanitize(shp_json_str(it, "namespace"));
		_cleanup_free_ char *name = cli_text_sanitize(shp_json_str(it, "name"));
		printf(_("  ghost   %s/%s (row %lld)\n"), ns, name,
		       (long long)shp_json_int(it, "id", 0));
	}
	json_array_foreach(json_object_get(run, "orphans"), i, it)
	{
		_cleanup_free_ char *ns = cli_text_sanitize(shp_json_str(it, "namespace"));
		_cleanup_free_ char *name = cli_text_sanitize(shp_json_str(it, "name"));
		printf(_("  orphan  %s/%s\n"), ns, name);
	}
}

/* Exit 1 when a run halted or failed (after the output). */
static int runs_verdict(struct cli_ctx *ctx, const json_t *items)
{
	size_t i, bad = 0;
	json_t *run;

	json_array_foreach(items, i, run)
	{
		if (shp_strcmp0(shp_json_str(run, "outcome"), "ok") != 0)
			bad++;
	}
	if (bad == 0)
		return 0;
	ctx->exit_status = SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_INTERNAL,
			     _("%zu of %zu reconcile run(s) halted or failed"), bad,
			     json_array_size(items));
}

static int list_runs(struct cli_ctx *ctx, const char *cluster, long limit)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	int r;

	cli_query_add(&query, "cluster", cluster);
	r = cli_list(ctx, RECONCILE_ROUTE "/runs", query.buf, limit, run_kind.plural, &items);
	if (r < 0)
		return r;
	return cli_show_list(ctx, &run_kind, items);
}

static int run_now(struct cli_ctx *ctx, const char *cluster, const char *mode)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *answer = NULL;
	const json_t *items;
	size_t i;
	json_t *run;
	int r;

	if (cli_body_set(ctx, body, "cluster", cluster) < 0 ||
	    cli_body_set(ctx, body, "mode", mode) < 0)
		return -ctx->err.code;
	r = cli_call(ctx, "POST", RECONCILE_ROUTE, body, &answer);
	if (r < 0)
		return r;
	items = json_object_get(answer, SHP_API_FIELD_ITEMS);
	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML) {
		r = cli_show_raw(ctx, answer);
		if (r < 0)
			return r;
	} else {
		if (json_array_size(items) == 0)
			cli_note(ctx, _("No clusters to reconcile."));
		json_array_foreach(items, i, run) print_run(run);
	}
	return runs_verdict(ctx, items);
}

static int cmd_reconcile_run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *mode = NULL, *cluster = NULL;
	long limit = 0;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_MODE)
			mode = optarg;
		else if (c == OPT_CLUSTER)
			cluster = optarg;
		else if (c == OPT_LIMIT && (r = cli_parse_limit(ctx, optarg, &limit)) < 0)
			return r;
	}
	if (optind < argc && strcmp(argv[optind], "runs") != 0)
		return cli_usage_error(ctx, _("unknown argument '%s' (only 'runs')"), argv[optind]);
	if (ctx->format == CLI_FORMAT_NAME)
		return cli_usage_error(ctx, _("'-o name' does not apply to 'reconcile'"));
	if (optind < argc) {
		if (mode)
			return cli_usage_error(ctx,
					       _("'--mode' does not apply to 'reconcile runs'"));
		return list_runs(ctx, cluster, limit);
	}
	if (limit)
		return cli_usage_error(ctx, _("'--limit' applies only to 'reconcile runs'"));
	return run_now(ctx, cluster, mode);
}

static const char *const reconcile_args[] = {"runs", NULL};

static const struct shp_flag reconcile_flags[] = {
	{"mode", OPT_MODE, 0, NULL, "MODE",
	 N_("report only (dry-run, the default) or also mark ghost rows"), modes},
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("only this cluster"),
	 .names = CLI_NAMES_CLUSTER},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("with 'runs': show at most the N newest runs")},
	{NULL},
};

static const struct shp_subcmd reconcile_entry = {
	.fn = cmd_reconcile_run,
	.min_args = 0,
	.max_args = 1,
	.usage = "[runs] [--mode MODE] [--cluster NAME] [--limit N]",
	.flags = CMD_NEEDS_DAEMON,
	.summary = N_("compare the database with the clusters"),
	.description = N_(
		"Without an argument: reconcile every cluster (or --cluster) now and print, per "
		"cluster, the outcome, the ghosts (VM rows whose VM is gone from the cluster) and "
		"the orphans (VMs labelled as managed by shepherd that have no row). --mode "
		"dry-run only reports; --mode mark also marks the ghost rows (and unmarks rows "
		"whose VM is back). Nothing is ever deleted. When more than half of a cluster's "
		"rows look like ghosts the run halts without marking anything. The exit status is "
		"1 when a run halted or failed.\n\n"
		"With 'runs': list the recorded runs, newest first."),
	.opts = reconcile_flags,
	.args_complete = CLI_COMPLETE_VALUES,
	.arg_values = reconcile_args,
};

const struct shp_cmd cmd_reconcile = {
	.name = "reconcile",
	.summary = N_("compare the database with the clusters (platform admins)"),
	.self = &reconcile_entry,
};
