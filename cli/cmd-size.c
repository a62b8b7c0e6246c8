/*
 * shepherd size: the instance sizes of the catalogue (CPUs, memory, overcommit, the cluster
 * capabilities they need): list, show, create, change, and delete (which disables).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

enum {
	OPT_ALL = CLI_OPT_LOCAL,
	OPT_LIMIT,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_CPU_OVERCOMMIT,
	OPT_MEMORY_OVERCOMMIT,
	OPT_CAPABILITIES,
	OPT_DESCRIPTION,
	OPT_ENABLE,
};

static char *caps_cell(const json_t *s, int64_t now)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(s, "required_capabilities"), i, v)
	{
		xbuf_addf(&b, "%s%s", i ? "," : "", json_is_string(v) ? json_string_value(v) : "?");
	}
	return b.len ? shp_buf_detach(&b, NULL) : xstrdup(_("<none>"));
}

/* "2" or "1.5" */
static char *ratio_cell(const json_t *s, const char *key)
{
	char buf[32];

	(void)snprintf(buf, sizeof(buf), "%g", json_number_value(json_object_get(s, key)));
	return xstrdup(buf);
}

static char *cpu_oc_cell(const json_t *s, int64_t now)
{
	return ratio_cell(s, "cpu_overcommit");
}

static char *mem_oc_cell(const json_t *s, int64_t now)
{
	return ratio_cell(s, "memory_overcommit");
}

static char *state_cell(const json_t *s, int64_t now)
{
	return xstrdup(json_is_true(json_object_get(s, "disabled")) ? "disabled" : "enabled");
}

static const struct cli_column size_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("CPUS"), N_("CPUs"), "cpus", COL_RIGHT},
	{N_("MEMORY"), N_("Memory"), "memory", COL_RIGHT},
	{N_("CPU OVERCOMMIT"), N_("CPU overcommit"), NULL, COL_RIGHT, NULL, cpu_oc_cell},
	{N_("MEMORY OVERCOMMIT"), N_("Memory overcommit"), NULL, COL_RIGHT, NULL, mem_oc_cell},
	{N_("REQUIRES"), N_("Required capabilities"), NULL, 0, NULL, caps_cell},
	{N_("STATE"), N_("State"), NULL, 0, NULL, state_cell},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_WIDE | COL_FLEX, ""},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{N_("UPDATED"), N_("Updated"), "updated_at", COL_WIDE | COL_WHEN},
	{NULL},
};

static const struct cli_kind size_kind = {"size", N_("sizes"), "name", size_columns};

static int cmd_size_list(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct cli_filter filters[] = {{OPT_ALL, "all", "true"}, {0}};

	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_SIZES, &size_kind, filters, OPT_LIMIT);
}

static int cmd_size_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_SIZES, &size_kind);
}

/* --cpus N: an integer member (the daemon checks the range). */
static int set_int(struct cli_ctx *ctx, json_t *body, const char *key, const char *opt,
		   const char *v)
{
	long long n;

	if (shp_parse_int(v, 1, 1024, &n, NULL) < 0)
		return cli_usage_error(ctx, _("--%s: a whole number from 1 to 1024, not '%s'"), opt,
				       v);
	return json_object_set_new(body, key, json_integer(n)) < 0 ? -SHP_E_NOMEM : 0;
}

static int set_ratio(struct cli_ctx *ctx, json_t *body, const char *key, const char *opt,
		     const char *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !(d >= 1.0))
		return cli_usage_error(ctx, _("--%s: a ratio of at least 1 (2, 1.5), not '%s'"),
				       opt, v);
	return json_object_set_new(body, key, json_real(d)) < 0 ? -SHP_E_NOMEM : 0;
}

/* --capabilities gpu,hugepages ("" for none). */
static int set_caps(struct cli_ctx *ctx, json_t *body, const char *v)
{
	json_t *caps = json_array();
	_cleanup_free_ char *copy = xstrdup(v);
	char *save = NULL;

	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
		if (*p && json_array_append_new(caps, json_string(p)) < 0)
			break;
	if (json_object_set_new(body, "required_capabilities", caps) < 0)
		return -SHP_E_NOMEM;
	(void)ctx;
	return 0;
}

/* The body of create and set from the options. */
static int size_body(int argc, char **argv, struct cli_ctx *ctx, json_t *body)
{
	int c, r = 0;

	while (r == 0 && (c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_CPUS: r = set_int(ctx, body, "cpus", "cpus", optarg); break;
		case OPT_MEMORY: r = cli_body_set(ctx, body, "memory", optarg); break;
		case OPT_CPU_OVERCOMMIT:
			r = set_ratio(ctx, body, "cpu_overcommit", "cpu-overcommit", optarg);
			break;
		case OPT_MEMORY_OVERCOMMIT:
			r = set_ratio(ctx, body, "memory_overcommit", "memory-overcommit", optarg);
			break;
		case OPT_CAPABILITIES: r = set_caps(ctx, body, optarg); break;
		case OPT_DESCRIPTION: r = cli_body_set(ctx, body, "description", optarg); break;
		case OPT_ENABLE:
			r = json_object_set_new(body, "disabled", json_false()) < 0 ? -SHP_E_NOMEM
										    : 0;
			break;
		}
	}
	return r;
}

static int cmd_size_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object(), *s = NULL;
	int r;

	if ((r = size_body(argc, argv, ctx, body)) < 0 ||
	    (r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_call(ctx, "POST", SHP_ROUTE_SIZES, body, &s)) < 0)
		return r;
	return cli_show_done(ctx, &size_kind, s, N_("created"));
}

static int cmd_size_set(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object(), *s = NULL;
	_cleanup_free_ char *path = NULL;
	int r;

	if ((r = size_body(argc, argv, ctx, body)) < 0)
		return r;
	if (json_object_size(body) == 0)
		return cli_usage_error(ctx, _("nothing to change: give at least one option"));
	path = cli_path(SHP_ROUTE_SIZES, argv[optind]);
	if ((r = cli_call(ctx, "PUT", path, body, &s)) < 0)
		return r;
	return cli_show_done(ctx, &size_kind, s, N_("changed"));
}

static int cmd_size_delete(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_delete(argc, argv, ctx, SHP_ROUTE_SIZES, &size_kind, N_("disabled"));
}

static const struct shp_flag create_flags[] = {
	{"cpus", OPT_CPUS, 0, NULL, "N", N_("virtual CPUs the guest sees (1-1024)"),
	 .required = true},
	{"memory", OPT_MEMORY, 0, NULL, "QUANTITY", N_("memory the guest sees: 512Mi, 8Gi, 1Ti"),
	 .required = true},
	{"cpu-overcommit", OPT_CPU_OVERCOMMIT, 0, NULL, "RATIO",
	 N_("reserve CPUs / RATIO on the node (1-64, default 1)")},
	{"memory-overcommit", OPT_MEMORY_OVERCOMMIT, 0, NULL, "RATIO",
	 N_("reserve memory / RATIO on the node (1-4, default 1)")},
	{"capabilities", OPT_CAPABILITIES, 0, NULL, "LIST",
	 N_("capabilities a cluster must report, comma-separated (gpu,hugepages; '' for none)")},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the size is for")},
	{NULL},
};

static const struct shp_flag set_flags[] = {
	{"cpus", OPT_CPUS, 0, NULL, "N", N_("virtual CPUs the guest sees (1-1024)"),
	 .required = false},
	{"memory", OPT_MEMORY, 0, NULL, "QUANTITY", N_("memory the guest sees: 512Mi, 8Gi, 1Ti"),
	 .required = false},
	{"cpu-overcommit", OPT_CPU_OVERCOMMIT, 0, NULL, "RATIO",
	 N_("reserve CPUs / RATIO on the node (1-64, default 1)")},
	{"memory-overcommit", OPT_MEMORY_OVERCOMMIT, 0, NULL, "RATIO",
	 N_("reserve memory / RATIO on the node (1-4, default 1)")},
	{"capabilities", OPT_CAPABILITIES, 0, NULL, "LIST",
	 N_("capabilities a cluster must report, comma-separated (gpu,hugepages; '' for none)")},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the size is for")},
	{"enable", OPT_ENABLE, 0, NULL, NULL, N_("enable a disabled size again")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"all", OPT_ALL, 0, NULL, NULL, N_("also disabled sizes")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N sizes")},
	{NULL},
};

static const struct shp_subcmd size_verbs[] = {
	{
		.name = "create",
		.fn = cmd_size_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --cpus N --memory QUANTITY [--cpu-overcommit RATIO] "
			 "[--memory-overcommit RATIO] [--capabilities LIST] [--description TEXT]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("create an instance size"),
		.description =
			N_("Create the instance size NAME: the CPUs and memory a VM of that "
			   "size sees, how much of them the node reserves (the overcommit "
			   "ratios: the reservation is the size divided by the ratio), and "
			   "the capabilities a cluster must report to host it. Administrators "
			   "only."),
		.opts = create_flags,
	},
	{
		.name = "delete",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SIZE,
		.fn = cmd_size_delete,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("disable an instance size"),
		.description =
			N_("Disable the instance size NAME: new requests can no longer name "
			   "it; existing VMs keep it. 'shepherd size set NAME --enable' undoes "
			   "it. Administrators only."),
	},
	{
		.name = "list",
		.fn = cmd_size_list,
		.min_args = 0,
		.max_args = 0,
		.usage = "[--all] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the instance sizes"),
		.description =
			N_("List the enabled instance sizes by name; with --all the disabled "
			   "ones too."),
		.opts = list_flags,
	},
	{
		.name = "set",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SIZE,
		.fn = cmd_size_set,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--cpus N] [--memory QUANTITY] [--cpu-overcommit RATIO] "
			 "[--memory-overcommit RATIO] [--capabilities LIST] [--description TEXT] "
			 "[--enable]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("change an instance size"),
		.description = N_("Change the fields given of the instance size NAME; the others "
				  "stay. Existing VMs are not resized. Administrators only."),
		.opts = set_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_SIZE,
		.fn = cmd_size_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show an instance size"),
		.description = N_("Show the instance size NAME, also a disabled one."),
	},
	{NULL},
};

const struct shp_cmd cmd_size = {
	.name = "size",
	.summary = N_("the instance sizes of the catalogue"),
	.description = N_("An instance size is what a VM request asks for besides its template: "
			  "CPUs, memory, the overcommit ratios and the cluster capabilities it "
			  "needs (a gpu size only goes to clusters that report gpu)."),
	.subcmds = size_verbs,
};
