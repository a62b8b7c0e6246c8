/*
 * shepherd adoption: VMs a cluster offers with the label shepherd.io/adopt=true — list them,
 * scan for new ones now, adopt one (shepherd manages it from then on) or ignore it.
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

#define ADOPTIONS_ROUTE SHP_API_PREFIX "/adoptions"

enum { OPT_STATE = CLI_OPT_LOCAL, OPT_CLUSTER, OPT_NAMESPACE, OPT_LIMIT };

static const char *const states[] = {"pending", "adopted", "ignored", NULL};

static const struct cli_column adoption_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("CLUSTER"), N_("Cluster"), "cluster"},
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("NAME"), N_("Name"), "name"},
	{N_("STATE"), N_("State"), "state"},
	{N_("STATUS"), N_("Status"), "summary.status"},
	{N_("CPUS"), N_("CPUs"), "summary.cpus", COL_RIGHT | COL_WIDE},
	{N_("NODE"), N_("Node"), "summary.node", COL_WIDE},
	{N_("FOUND"), N_("Discovered"), "discovered_at", COL_AGE},
	{N_("SEEN"), N_("Last seen"), "last_seen_at", COL_WIDE | COL_WHEN},
	{N_("DECIDED BY"), N_("Decided by"), "decided_by", COL_WIDE},
	{N_("VM ID"), N_("VM id"), "vm_id", COL_WIDE | COL_RIGHT},
	{NULL},
};

static const struct cli_kind adoption_kind = {"adoption", N_("adoptions"), "id", adoption_columns};

static const struct cli_filter adoption_filters[] = {
	{OPT_STATE, "state"},
	{OPT_CLUSTER, "cluster"},
	{0},
};

static int cmd_adoption_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, ADOPTIONS_ROUTE, &adoption_kind, adoption_filters,
				 OPT_LIMIT);
}

/* POST /adoptions/ID/<verb> with body, then report the adoption as it is now. */
static int decide(struct cli_ctx *ctx, const char *id, const char *verb, const json_t *body,
		  const char *done)
{
	_cleanup_(json_decrefp) json_t *a = NULL;
	_cleanup_free_ char *base = cli_path(ADOPTIONS_ROUTE, id);
	_cleanup_free_ char *path = xasprintf("%s/%s", base, verb);
	const char *label;
	int r;

	r = cli_call(ctx, "POST", path, body, &a);
	if (r < 0)
		return r;
	label = shp_json_str(a, "label");
	if (label && strcmp(label, "pending") == 0) {
		_cleanup_free_ char *why = cli_text_sanitize(shp_json_str(a, "label_error"));
		cli_warn(ctx,
			 _("the VM is adopted but not labelled as managed yet (%s); the next "
			   "adoption scan labels it"),
			 why);
	}
	return cli_show_done(ctx, &adoption_kind, a, done);
}

static int cmd_adoption_adopt(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	const char *ns = NULL;
	int c;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_NAMESPACE)
			ns = optarg;
	if (cli_body_set(ctx, body, "namespace", ns) < 0)
		return -ctx->err.code;
	return decide(ctx, argv[optind], "adopt", body, "adopted");
}

static int cmd_adoption_ignore(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	return decide(ctx, argv[optind], "ignore", body, "ignored");
}

static int cmd_adoption_scan(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *answer = NULL;
	const char *cluster = NULL;
	size_t i, bad = 0;
	json_t *it;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_CLUSTER)
			cluster = optarg;
	if (cli_body_set(ctx, body, "cluster", cluster) < 0)
		return -ctx->err.code;
	r = cli_call(ctx, "POST", ADOPTIONS_ROUTE "/scan", body, &answer);
	if (r < 0)
		return r;
	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML)
		r = cli_show_raw(ctx, answer);
	json_array_foreach(json_object_get(answer, SHP_API_FIELD_ITEMS), i, it)
	{
		_cleanup_free_ char *name = cli_text_sanitize(shp_json_str(it, "cluster"));
		const char *error = shp_json_str(it, "error");
		_cleanup_free_ char *why = cli_text_sanitize(error ? error : _("unknown error"));
		bool ok = json_is_true(json_object_get(it, "ok"));

		bad += !ok;
		if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML)
			continue;
		if (ok)
			printf(_("cluster %s: %lld offered, %lld new\n"), name,
			       (long long)shp_json_int(it, "seen", 0),
			       (long long)shp_json_int(it, "new", 0));
		else
			printf(_("cluster %s: scan failed: %s\n"), name, why);
	}
	if (r < 0 || bad == 0)
		return r;
	ctx->exit_status = SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_INTERNAL, _("%zu cluster scan(s) failed"), bad);
}

static const struct shp_flag list_flags[] = {
	{"state", OPT_STATE, 0, NULL, "STATE", N_("only adoptions in this state"), states},
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("only this cluster's"),
	 .names = CLI_NAMES_CLUSTER},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N newest")},
	{NULL},
};

static const struct shp_flag adopt_flags[] = {
	{"namespace", OPT_NAMESPACE, 0, NULL, "NS",
	 N_("refuse unless the VM is in this namespace (a guard against adopting the wrong VM)"),
	 .names = CLI_NAMES_NAMESPACE},
	{NULL},
};

static const struct shp_flag scan_flags[] = {
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("only this cluster"),
	 .names = CLI_NAMES_CLUSTER},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd adoption_verbs[] = {
	{
		.name = "adopt",
		.fn = cmd_adoption_adopt,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID [--namespace NS]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("adopt a VM offered for adoption"),
		.description =
			N_("Adopt pending adoption ID: shepherd records the VM as one it "
			   "manages and labels it in its cluster as managed by shepherd. If "
			   "the label cannot be applied now the adoption still stands and the "
			   "next adoption scan applies it. An adoption is decided once."),
		.opts = adopt_flags,
	},
	{
		.name = "ignore",
		.fn = cmd_adoption_ignore,
		.min_args = 1,
		.max_args = 1,
		.usage = "ID",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("decline a VM offered for adoption"),
		.description =
			N_("Ignore pending adoption ID: it stays listed as ignored and is not "
			   "offered again. An adoption is decided once."),
		.opts = no_flags,
	},
	{
		.name = "list",
		.fn = cmd_adoption_list,
		.usage = "[--state STATE] [--cluster NAME] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list VMs offered for adoption, newest first"),
		.description = N_("List the VMs found with the label shepherd.io/adopt=true and no "
				  "record in shepherd, with what was decided about them."),
		.opts = list_flags,
	},
	{
		.name = "scan",
		.fn = cmd_adoption_scan,
		.usage = "[--cluster NAME]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("look for VMs offered for adoption now"),
		.description =
			N_("Scan every cluster (or --cluster) for VMs labelled "
			   "shepherd.io/adopt=true that shepherd does not manage, and record "
			   "them as pending adoptions. shepherdd also does this periodically "
			   "(adoption.interval)."),
		.opts = scan_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_adoption = {
	.name = "adoption",
	.summary = N_("adopt existing VMs into shepherd (platform admins)"),
	.description = N_("VMs created outside shepherd are offered for adoption by labelling them "
			  "shepherd.io/adopt=true in their cluster; nothing without that label is "
			  "ever offered. A platform admin adopts or ignores each one."),
	.subcmds = adoption_verbs,
};
