/*
 * shepherd cluster: the Kubernetes clusters (with KubeVirt) that shepherd places virtual
 * machines on, registered from a kubeconfig file (whose credentials shepherdd seals and never
 * shows again) or simulated; and shepherd instancetypes, the instance types a cluster offers.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"

#define KUBECONFIG_FILE_MAX (1u << 20) /* the daemon refuses larger kubeconfigs too */

enum {
	OPT_KUBECONFIG = CLI_OPT_LOCAL,
	OPT_CONTEXT,
	OPT_ALLOW_INSECURE,
	OPT_SIMULATED,
	OPT_ENVIRONMENT,
	OPT_DESCRIPTION,
	OPT_LIMIT,
	OPT_CLUSTER,
	OPT_NAMESPACE,
};

/* ---- cells ---------------------------------------------------------------------------------- */

static char *cluster_capabilities(const json_t *c, int64_t now)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	const json_t *caps = json_object_get(c, "capabilities"), *v;
	size_t i;

	json_array_foreach(caps, i, v)
	{
		if (i > 0)
			xbuf_add(&b, ",");
		xbuf_add(&b, json_is_string(v) ? json_string_value(v) : "?");
	}
	return b.len ? shp_buf_detach(&b, NULL) : xstrdup(_("<none>"));
}

static char *cluster_credentials(const json_t *c, int64_t now)
{
	return xstrdup(json_is_true(json_object_get(c, "has_credentials")) ? "sealed" : "none");
}

static const struct cli_column cluster_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("KIND"), N_("Kind"), "kind"},
	{N_("ENVIRONMENT"), N_("Environment"), "environment"},
	{N_("HEALTH"), N_("Health"), "health"},
	{N_("API URL"), N_("API URL"), "api_url", COL_FLEX},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_WIDE | COL_FLEX, ""},
	{N_("KUBERNETES"), N_("Kubernetes version"), "kubernetes_version", COL_WIDE, ""},
	{N_("KUBEVIRT"), N_("KubeVirt version"), "kubevirt_version", COL_WIDE, ""},
	{N_("HEALTH MESSAGE"), N_("Health message"), "health_message", COL_WIDE | COL_FLEX, ""},
	{N_("CHECKED"), N_("Health checked"), "health_checked_at", COL_WIDE | COL_WHEN,
	 N_("never")},
	{N_("CAPABILITIES"), N_("Capabilities"), NULL, COL_WIDE | COL_FLEX, NULL,
	 cluster_capabilities},
	{N_("DETECTED"), N_("Capabilities detected"), "capabilities_at", COL_WIDE | COL_WHEN,
	 N_("never")},
	{N_("DEFAULT NAMESPACE"), N_("Default namespace"), "default_namespace", COL_WIDE},
	{N_("CREDENTIALS"), N_("Credentials"), NULL, COL_WIDE, NULL, cluster_credentials},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{N_("UPDATED"), N_("Updated"), "updated_at", COL_WIDE | COL_WHEN},
	{N_("ID"), N_("ID"), "id", COL_WIDE | COL_RIGHT},
	{NULL},
};

static const struct cli_kind cluster_kind = {"cluster", N_("clusters"), "name", cluster_columns};

/* ---- add ------------------------------------------------------------------------------------ */

/* The text of a kubeconfig file ("-": standard input), at most KUBECONFIG_FILE_MAX bytes. */
static int read_kubeconfig(struct cli_ctx *ctx, const char *file, struct shp_buf *data)
{
	_cleanup_close_ int fd = -1;
	bool from_stdin = strcmp(file, "-") == 0;
	char chunk[65536];
	ssize_t n;

	if (!from_stdin) {
		fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return shp_error_errno(&ctx->err, errno, _("cannot open kubeconfig '%s'"),
					       file);
	}
	while ((n = read(from_stdin ? STDIN_FILENO : fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shp_error_errno(&ctx->err, errno, _("cannot read kubeconfig '%s'"),
					       file);
		if (shp_buf_addn(data, chunk, (size_t)n) < 0) {
			explicit_bzero(chunk, sizeof(chunk));
			return shp_error_set(&ctx->err, SHP_E_LIMIT,
					     _("kubeconfig '%s' is larger than %u MiB"), file,
					     KUBECONFIG_FILE_MAX >> 20);
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (data->len == 0 || memchr(data->buf, '\0', data->len))
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     data->len == 0 ? _("kubeconfig '%s' is empty")
						    : _("kubeconfig '%s' is not a text file"),
				     file);
	return 0;
}

struct add_opts {
	const char *kubeconfig, *context, *env, *description;
	bool allow_insecure, simulated;
};

static int add_body(struct cli_ctx *ctx, const char *name, const struct add_opts *o,
		    const struct shp_buf *text, json_t *body)
{
	int r;

	if ((r = cli_body_set(ctx, body, "name", name)) < 0 ||
	    (r = cli_body_set(ctx, body, "environment", o->env)) < 0 ||
	    (r = cli_body_set(ctx, body, "description", o->description)) < 0)
		return r;
	if (o->simulated)
		return json_object_set_new(body, "simulated", json_true()) < 0 ? -SHP_E_NOMEM : 0;
	if ((r = cli_body_set(ctx, body, "kubeconfig", text->buf)) < 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("kubeconfig '%s' is not UTF-8 text"),
				     o->kubeconfig);
	if ((r = cli_body_set(ctx, body, "context", o->context)) < 0)
		return r;
	if (o->allow_insecure && json_object_set_new(body, "allow_insecure", json_true()) < 0)
		return -SHP_E_NOMEM;
	return 0;
}

/* Overwrite the kubeconfig's copies (the file's text and the request's) once sent. */
static void wipe_kubeconfig(struct shp_buf *text, json_t *body)
{
	json_t *kc = json_object_get(body, "kubeconfig");

	if (json_is_string(kc))
		explicit_bzero((char *)json_string_value(kc), json_string_length(kc));
	if (text->len > 0)
		explicit_bzero(text->buf, text->len);
}

static int cmd_cluster_add(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf text = SHP_BUF_INIT(KUBECONFIG_FILE_MAX);
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *cluster = NULL;
	struct add_opts o = {0};
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_KUBECONFIG: o.kubeconfig = optarg; break;
		case OPT_CONTEXT: o.context = optarg; break;
		case OPT_ALLOW_INSECURE: o.allow_insecure = true; break;
		case OPT_SIMULATED: o.simulated = true; break;
		case OPT_ENVIRONMENT: o.env = optarg; break;
		case OPT_DESCRIPTION: o.description = optarg; break;
		}
	}
	if (!o.kubeconfig == !o.simulated)
		return cli_usage_error(ctx, _("give either --kubeconfig FILE or --simulated"));
	if (o.simulated && (o.context || o.allow_insecure))
		return cli_usage_error(ctx, _("--context and --allow-insecure need --kubeconfig"));
	if (o.kubeconfig && (r = read_kubeconfig(ctx, o.kubeconfig, &text)) < 0) {
		explicit_bzero(text.buf, text.len);
		return r;
	}
	r = add_body(ctx, argv[optind], &o, &text, body);
	if (r == 0)
		r = cli_call(ctx, "POST", SHP_ROUTE_CLUSTERS, body, &cluster);
	wipe_kubeconfig(&text, body);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &cluster_kind, cluster, N_("added"));
}

/* ---- list, show, capabilities, remove ------------------------------------------------------- */

static int cmd_cluster_list(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct cli_filter filters[] = {{OPT_ENVIRONMENT, "environment"}, {0}};

	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind, filters,
				 OPT_LIMIT);
}

static int cmd_cluster_show(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_show(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind);
}

static int cmd_cluster_capabilities(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *cluster = NULL;
	_cleanup_free_ char *path = NULL;
	const json_t *caps, *v;
	size_t i;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	path = cli_path(SHP_ROUTE_CLUSTERS, argv[optind]);
	r = cli_call(ctx, "GET", path, NULL, &cluster);
	if (r < 0)
		return r;
	caps = json_object_get(cluster, "capabilities");
	if (!json_is_array(caps))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: not a cluster"));
	if (json_is_null(json_object_get(cluster, "capabilities_at")))
		cli_note(ctx, _("The capabilities of cluster '%s' have not been detected yet.\n"),
			 argv[optind]);
	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML)
		return cli_show_raw(ctx, caps);
	json_array_foreach(caps, i, v)
	{
		_cleanup_free_ char *line = cli_text_sanitize(json_string_value(v));
		printf("%s\n", line ? line : "?");
	}
	return 0;
}

/* ---- health ------------------------------------------------------------------------------ */

static const struct cli_column health_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("STATUS"), N_("Status"), "health"},
	{N_("KUBERNETES"), N_("Kubernetes version"), "kubernetes_version", 0, ""},
	{N_("KUBEVIRT"), N_("KubeVirt version"), "kubevirt_version", 0, ""},
	{N_("CHECKED"), N_("Checked"), "health_checked_at", COL_WHEN, N_("never")},
	{N_("MESSAGE"), N_("Message"), "health_message", COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind health_kind = {"cluster health", N_("cluster health"), "name",
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
				     _("unexpected answer from shepherdd: not a health state"));
	r = cli_show_object(ctx, &health_kind, state);
	if (r < 0 || strcmp(json_string_value(json_object_get(state, "health")), "HEALTHY") == 0)
		return r;
	ctx->exit_status = SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_UNAVAIL, _("cluster '%s' is %s"), argv[optind],
			     json_string_value(json_object_get(state, "health")));
}

static int cmd_cluster_remove(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_named_delete(argc, argv, ctx, SHP_ROUTE_CLUSTERS, &cluster_kind, N_("removed"));
}

static char *it_memory(const json_t *it, int64_t now);

/* ---- vms ----------------------------------------------------------------------------------- */

static const struct cli_column vm_columns[] = {
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("NAME"), N_("Name"), "name"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("CPUS"), N_("CPUs"), "cpus", COL_RIGHT},
	{N_("MEMORY"), N_("Memory"), NULL, COL_RIGHT, NULL, it_memory},
	{N_("NODE"), N_("Node"), "node", 0, ""},
	{N_("IP"), N_("IP"), "ip", 0, ""},
	{N_("KUBEVIRT STATUS"), N_("KubeVirt status"), "printable_status", COL_WIDE, ""},
	{N_("INSTANCETYPE"), N_("Instance type"), "instancetype", COL_WIDE, ""},
	{N_("ERROR"), N_("Error"), "error", COL_WIDE | COL_FLEX, ""},
	{N_("UID"), N_("UID"), "uid", COL_WIDE},
	{NULL},
};

static const struct cli_kind vm_kind = {"vm", N_("VMs"), "name", vm_columns};

/* The watcher's view of the cluster's VMs; a stale view is said so on stderr. */
static int cmd_cluster_vms(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf path = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *answer = NULL;
	_cleanup_free_ char *base = NULL;
	const char *ns = NULL;
	const json_t *items;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_NAMESPACE)
			ns = optarg;
	base = cli_path(SHP_ROUTE_CLUSTERS, argv[optind]);
	cli_query_add(&query, "namespace", ns);
	xbuf_addf(&path, "%s/vms%s%s", base, query.len ? "?" : "", query.buf);
	r = cli_call(ctx, "GET", path.buf, NULL, &answer);
	if (r < 0)
		return r;
	items = json_object_get(answer, "items");
	if (!json_is_array(items))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no VMs"));
	if (json_is_true(json_object_get(answer, "stale")))
		cli_note(ctx,
			 _("Cluster '%s' is being listed again: this is its last good list.\n"),
			 argv[optind]);
	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML)
		return cli_show_raw(ctx, answer);
	return cli_show_list(ctx, &vm_kind, items);
}

static const struct shp_flag vms_flags[] = {
	{"namespace", OPT_NAMESPACE, 0, NULL, "NS", N_("only the VMs of this namespace"),
	 .names = CLI_NAMES_NAMESPACE},
	{NULL},
};

static const struct shp_flag add_flags[] = {
	{"kubeconfig", OPT_KUBECONFIG, 0, NULL, "FILE",
	 N_("the kubeconfig to reach the cluster with ('-': standard input)"), .file = true},
	{"context", OPT_CONTEXT, 0, NULL, "NAME",
	 N_("the kubeconfig's context to use (default: its current context)")},
	{"allow-insecure", OPT_ALLOW_INSECURE, 0, NULL, NULL,
	 N_("accept a server that skips TLS verification or speaks plain http")},
	{"simulated", OPT_SIMULATED, 0, NULL, NULL,
	 N_("a simulated cluster, inside shepherdd (no kubeconfig)")},
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", N_("the environment the cluster serves"),
	 cli_environment_values, .required = true},
	{"description", OPT_DESCRIPTION, 0, NULL, "TEXT", N_("what the cluster is for")},
	{NULL},
};

static const struct shp_flag list_flags[] = {
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", N_("only clusters of this environment"),
	 cli_environment_values},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N clusters")},
	{NULL},
};

static const struct shp_subcmd cluster_verbs[] = {
	{
		.name = "add",
		.fn = cmd_cluster_add,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--kubeconfig FILE] [--context NAME] [--allow-insecure] "
			 "[--simulated] "
			 "--environment test|prod [--description TEXT]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("register a cluster"),
		.description = N_(
			"Register the cluster NAME for the environment given by --environment, "
			"from a kubeconfig file (--kubeconfig) or as a simulated cluster "
			"(--simulated): one of the two. With --kubeconfig, shepherdd reaches it as "
			"the kubeconfig's context says "
			"(--context, else its current context): the server, its CA and the "
			"credentials, which must be inline (no file references, no exec or "
			"auth-provider plugins). shepherdd seals the credentials in its database "
			"and never shows them again. A server that skips TLS verification or "
			"speaks plain http is refused unless --allow-insecure is given. With "
			"--simulated, the cluster is simulated inside shepherdd, for tests and "
			"demonstrations. Only administrators may add clusters."),
		.opts = add_flags,
	},
	{
		.name = "capabilities",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_CLUSTER,
		.fn = cmd_cluster_capabilities,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list what a cluster can do"),
		.description = N_("Print the capabilities detected on the cluster NAME (snapshot, "
				  "live-migration, instancetypes, gpu, ...), one per line, or as a "
				  "JSON array with -o json. They are detected with the cluster's "
				  "health checks."),
	},
	{
		.name = "health",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_CLUSTER,
		.fn = cmd_cluster_health,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("check a cluster's health now"),
		.description =
			N_("Ask the cluster NAME for its health, versions and capabilities now "
			   "(shepherdd also does so periodically) and print its status "
			   "(HEALTHY, UNHEALTHY, UNREACHABLE or UNKNOWN), Kubernetes and "
			   "KubeVirt versions, why it is not healthy, and when it was checked. "
			   "The exit status is 0 when the cluster is HEALTHY, 1 otherwise. "
			   "Only administrators may check clusters."),
	},
	{
		.name = "list",
		.fn = cmd_cluster_list,
		.usage = "[--environment ENV] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list clusters"),
		.description =
			N_("List the registered clusters, sorted by name, with their kind and "
			   "health. -o wide adds versions, capabilities and more."),
		.opts = list_flags,
	},
	{
		.name = "remove",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_CLUSTER,
		.fn = cmd_cluster_remove,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("remove a cluster from shepherd"),
		.description =
			N_("Remove the cluster NAME, and its sealed credentials, from shepherd "
			   "and print what was removed. Nothing on the cluster itself is "
			   "changed. Only administrators may remove clusters."),
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_CLUSTER,
		.fn = cmd_cluster_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show one cluster"),
		.description = N_("Show every field of the cluster NAME: kind, API URL, health, "
				  "versions, capabilities, default namespace and whether it has "
				  "credentials (never the credentials themselves)."),
	},
	{
		.name = "vms",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_CLUSTER,
		.fn = cmd_cluster_vms,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--namespace NS]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the VMs shepherd watches on a cluster"),
		.description =
			N_("List the VMs shepherd manages on the cluster NAME as its watcher "
			   "last saw them: status, size, node and address. While the cluster is "
			   "being listed again (or does not answer) the last good list is shown "
			   "and a note says so; -o json carries it as \"stale\". Only "
			   "administrators may list them."),
		.opts = vms_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_cluster = {
	.name = "cluster",
	.summary = N_("manage the Kubernetes clusters virtual machines run on"),
	.description =
		N_("Clusters are the Kubernetes clusters, with KubeVirt, that shepherd places "
		   "virtual machines on. Each serves one environment (test or prod), and only "
		   "namespaces of the same environment are placed on it."),
	.subcmds = cluster_verbs,
};

/* ---- shepherd instancetypes ----------------------------------------------------------------- */

static char *it_memory(const json_t *it, int64_t now)
{
	static const char *const units[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
	json_int_t v = shp_json_int(it, "memory_bytes", 0);
	size_t u = 0;

	/* the largest binary unit that divides the size exactly, as Kubernetes writes it */
	while (v > 0 && v % 1024 == 0 && u + 1 < SHP_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	return xasprintf("%" JSON_INTEGER_FORMAT "%s", v, units[u]);
}

static char *it_scope(const json_t *it, int64_t now)
{
	const char *ns = shp_json_str(it, "namespace");

	return xstrdup(json_is_true(json_object_get(it, "cluster_scoped")) || !ns ? "cluster" : ns);
}

static const struct cli_column instancetype_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("CPUS"), N_("CPUs"), "cpus", COL_RIGHT},
	{N_("MEMORY"), N_("Memory"), NULL, COL_RIGHT, NULL, it_memory},
	{N_("SCOPE"), N_("Scope"), NULL, 0, NULL, it_scope},
	{N_("BYTES"), N_("Memory (bytes)"), "memory_bytes", COL_WIDE | COL_RIGHT},
	{NULL},
};

static const struct cli_kind instancetype_kind = {"instancetype", N_("instance types"), "name",
						  instancetype_columns};

static int cmd_instancetypes_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf path = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *answer = NULL;
	_cleanup_free_ char *base = NULL;
	const char *cluster = NULL, *ns = NULL;
	const json_t *items;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_CLUSTER: cluster = optarg; break;
		case OPT_NAMESPACE: ns = optarg; break;
		}
	}
	base = cli_path(SHP_ROUTE_CLUSTERS, cluster);
	cli_query_add(&query, "namespace", ns);
	xbuf_addf(&path, "%s/instancetypes%s%s", base, query.len ? "?" : "", query.buf);
	r = cli_call(ctx, "GET", path.buf, NULL, &answer);
	if (r < 0)
		return r;
	items = json_object_get(answer, "items");
	if (!json_is_array(items))
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no instance types"));
	return cli_show_list(ctx, &instancetype_kind, items);
}

static const struct shp_flag it_list_flags[] = {
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("the cluster to ask"), .required = true,
	 .names = CLI_NAMES_CLUSTER},
	{"namespace", OPT_NAMESPACE, 0, NULL, "NS",
	 N_("the instance types of this namespace (default: the cluster-wide ones)"),
	 .names = CLI_NAMES_NAMESPACE},
	{NULL},
};

static const struct shp_subcmd instancetypes_verbs[] = {
	{
		.name = "list",
		.fn = cmd_instancetypes_list,
		.usage = "--cluster NAME [--namespace NS]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list a cluster's instance types"),
		.description =
			N_("List the KubeVirt instance types the cluster given by --cluster "
			   "offers: the cluster-wide ones, or with --namespace those of that "
			   "namespace, with their CPUs and memory. shepherdd asks the cluster "
			   "at once; an unreachable cluster is an error."),
		.opts = it_list_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_instancetypes = {
	.name = "instancetypes",
	.summary = N_("list the instance types clusters offer"),
	.description = N_("Instance types are KubeVirt's named VM shapes (CPUs and memory), "
			  "cluster-wide or in a namespace. shepherd reads them from the cluster."),
	.subcmds = instancetypes_verbs,
};
