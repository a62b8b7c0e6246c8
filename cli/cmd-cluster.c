/*
 * shepherd cluster: the Kubernetes clusters (with KubeVirt) that shepherd places virtual
 * machines on. Each has an API URL, an environment, and a reference to the credentials
 * shepherdd uses to reach it; the credentials themselves never pass through the CLI.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "output.h"

enum {
	OPT_API_URL = CLI_OPT_LOCAL,
	OPT_ENVIRONMENT,
	OPT_CREDENTIALS_REF,
	OPT_DESCRIPTION,
	OPT_LIMIT
};

static const struct cli_column cluster_columns[] = {
	{"NAME", "Name", "name"},
	{"ENVIRONMENT", "Environment", "environment"},
	{"API URL", "API URL", "api_url", COL_FLEX},
	{"AGE", "Created", "created_at", COL_AGE},
	{"DESCRIPTION", "Description", "description", COL_WIDE | COL_FLEX, ""},
	{"CREDENTIALS REF", "Credentials ref", "credentials_ref", COL_WIDE},
	{"CREATED BY", "Created by", "created_by", COL_WIDE},
	{"ID", "ID", "id", COL_WIDE | COL_RIGHT},
	{NULL},
};

static const struct cli_kind cluster_kind = {"cluster", "clusters", "name", cluster_columns};

static int cmd_cluster_add(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *cluster = NULL;
	const char *url = NULL, *env = NULL, *cref = NULL, *description = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_API_URL: url = optarg; break;
		case OPT_ENVIRONMENT: env = optarg; break;
		case OPT_CREDENTIALS_REF: cref = optarg; break;
		case OPT_DESCRIPTION: description = optarg; break;
		}
	}
	if ((r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "api_url", url)) < 0 ||
	    (r = cli_body_set(ctx, body, "environment", env)) < 0 ||
	    (r = cli_body_set(ctx, body, "credentials_ref", cref)) < 0 ||
	    (r = cli_body_set(ctx, body, "description", description)) < 0)
		return r;
	r = cli_call(ctx, "POST", SHP_ROUTE_CLUSTERS, body, &cluster);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &cluster_kind, cluster, "added");
}

static int cmd_cluster_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind, NULL,
				 OPT_LIMIT);
}

static int cmd_cluster_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind);
}

/* ---- health ------------------------------------------------------------------------------ */

static const struct cli_column health_columns[] = {
	{"NAME", "Name", "name"},
	{"STATUS", "Status", "health"},
	{"KUBERNETES", "Kubernetes version", "kubernetes_version", 0, ""},
	{"KUBEVIRT", "KubeVirt version", "kubevirt_version", 0, ""},
	{"CHECKED", "Checked", "health_checked_at", COL_WHEN, "never"},
	{"MESSAGE", "Message", "health_message", COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind health_kind = {"cluster health", "cluster health", "name",
					    health_columns};

/* Check now; the exit status says whether the cluster is HEALTHY (0) or not (1). */
static int cmd_cluster_health(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *state = NULL;
	_cleanup_free_ char *path = NULL, *health = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = cli_path(SHP_ROUTE_CLUSTERS, argv[optind]);
	health = xasprintf("%s/health", path);
	r = cli_call(ctx, "POST", health, NULL, &state);
	if (r < 0)
		return r;
	if (!json_is_string(json_object_get(state, "health")))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     "unexpected answer from shepherdd: not a health state");
	r = cli_show_object(ctx, &health_kind, state);
	if (r < 0 || strcmp(json_string_value(json_object_get(state, "health")), "HEALTHY") == 0)
		return r;
	ctx->exit_status = SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_UNAVAIL, "cluster '%s' is %s", argv[optind],
			     json_string_value(json_object_get(state, "health")));
}

static int cmd_cluster_remove(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_delete(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind, "removed");
}

static const struct shp_flag add_flags[] = {
	{"api-url", OPT_API_URL, 0, NULL, "URL", "the Kubernetes API server, https://HOST:PORT",
	 .required = true},
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", "the environment the cluster serves",
	 cli_environment_values, .required = true},
	{"credentials-ref", OPT_CREDENTIALS_REF, 0, NULL, "REF",
	 "where shepherdd finds the credentials for the cluster"},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", "what the cluster is for"},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"limit", OPT_LIMIT, 0, NULL, "N", "show at most N clusters"},
	{NULL},
};

static const struct shp_subcmd cluster_verbs[] = {
	{
		.name = "add",
		.fn = cmd_cluster_add,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --api-url URL --environment test|prod [--credentials-ref REF] "
			 "[--description TEXT]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = "register a cluster",
		.description = "Register the cluster NAME, reached at the Kubernetes API server "
			       "given by --api-url, for the environment given by --environment. "
			       "--credentials-ref names the credentials shepherdd uses for it; the "
			       "credentials themselves are configured on the daemon's side. Only "
			       "administrators may add clusters.",
		.opts = add_flags,
	},
	{
		.name = "health",
		.fn = cmd_cluster_health,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON,
		.summary = "check a cluster's health now",
		.description = "Ask the cluster NAME for its health, versions and capabilities now "
			       "(shepherdd also does so periodically) and print its status "
			       "(HEALTHY, UNHEALTHY, UNREACHABLE or UNKNOWN), Kubernetes and "
			       "KubeVirt versions, why it is not healthy, and when it was checked. "
			       "The exit status is 0 when the cluster is HEALTHY, 1 otherwise. "
			       "Only administrators may check clusters.",
	},
	{
		.name = "list",
		.fn = cmd_cluster_list,
		.usage = "[--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = "list clusters",
		.description = "List the registered clusters, sorted by name.",
		.opts = list_flags,
	},
	{
		.name = "remove",
		.fn = cmd_cluster_remove,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON,
		.summary = "remove a cluster from shepherd",
		.description = "Remove the cluster NAME from shepherd and print what was removed. "
			       "Nothing on the cluster itself is changed. Only administrators may "
			       "remove clusters.",
	},
	{
		.name = "show",
		.fn = cmd_cluster_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = "show one cluster",
		.description = "Show every field of the cluster NAME.",
	},
	{NULL},
};

const struct shp_cmd cmd_cluster = {
	.name = "cluster",
	.summary = "manage the Kubernetes clusters virtual machines run on",
	.description = "Clusters are the Kubernetes clusters, with KubeVirt, that shepherd places "
		       "virtual machines on. Each serves one environment (test or prod), and only "
		       "namespaces of the same environment are placed on it.",
	.subcmds = cluster_verbs,
};
