/*
 * shepherd policy: the approval policies, one per request type and environment (or "any"),
 * which decide whether a request runs at once, needs the requester's confirmation, one
 * approver's review (with a runbook) or several approvers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "output.h"
#include "util.h"

enum {
	OPT_ENVIRONMENT = CLI_OPT_LOCAL,
	OPT_LEVEL,
	OPT_APPROVERS,
	OPT_RUNBOOK,
	OPT_ESCALATE_CPUS,
	OPT_ESCALATE_MEMORY,
};

static const char *const policy_envs[] = {"test", "prod", "any", NULL};

static const struct cli_column policy_columns[] = {
	{N_("TYPE"), N_("Request type"), "request_type"},
	{N_("ENVIRONMENT"), N_("Environment"), "environment", 0, N_("any")},
	{N_("LEVEL"), N_("Level"), "level", COL_RIGHT},
	{N_("APPROVERS"), N_("Approvers required"), "approvers_required", COL_RIGHT},
	{N_("ESCALATE CPUS"), N_("Escalate above CPUs"), "escalate_cpus", COL_WIDE | COL_RIGHT},
	{N_("ESCALATE MIB"), N_("Escalate above MiB"), "escalate_memory_mib", COL_WIDE | COL_RIGHT},
	{N_("RUNBOOK"), N_("Runbook"), "runbook_url", COL_FLEX, ""},
	{N_("UPDATED"), N_("Updated"), "updated_at", COL_AGE | COL_WIDE},
	{N_("UPDATED BY"), N_("Updated by"), "updated_by", COL_WIDE, ""},
	{NULL},
};

static const struct cli_kind policy_kind = {"policy", N_("policies"), "request_type",
					    policy_columns};

static int cmd_policy_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *items = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = cli_list(ctx, SHP_ROUTE_POLICIES, "", 0, policy_kind.plural, &items);
	if (r < 0)
		return r;
	return cli_show_list(ctx, &policy_kind, items);
}

/* TYPE as the API spells it (CREATE_VM); lower case is accepted. */
static char *type_arg(struct cli_ctx *ctx, const char *arg)
{
	size_t n = strlen(arg);
	_cleanup_free_ char *t = NULL;

	if (n == 0 || n > 32)
		goto bad;
	t = xstrdup(arg);
	for (size_t i = 0; i < n; i++) {
		if (t[i] >= 'a' && t[i] <= 'z')
			t[i] = (char)(t[i] - 'a' + 'A');
		else if (t[i] == '-')
			t[i] = '_';
		else if (!((t[i] >= 'A' && t[i] <= 'Z') || t[i] == '_'))
			goto bad;
	}
	return TAKE_PTR(t);
bad:
	shp_error_set(&ctx->err, SHP_E_INVAL, _("invalid request type '%.40s' (e.g. CREATE_VM)"),
		      arg);
	return NULL;
}

static int cmd_policy_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *type = NULL, *path = NULL;
	struct shp_buf q __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(256);
	const char *env = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_ENVIRONMENT)
			env = optarg;
	type = type_arg(ctx, argv[optind]);
	if (!type)
		return -ctx->err.code;
	path = cli_path(SHP_ROUTE_POLICIES, type);
	if (!env) {
		r = cli_list(ctx, path, "", 0, policy_kind.plural, &ans);
		return r < 0 ? r : cli_show_list(ctx, &policy_kind, ans);
	}
	cli_query_add(&q, "environment", env);
	free(path);
	path = xasprintf("%s/%s?%s", SHP_ROUTE_POLICIES, type, q.buf);
	r = cli_call(ctx, "GET", path, NULL, &ans);
	return r < 0 ? r : cli_show_object(ctx, &policy_kind, ans);
}

/* "8Gi", "512Mi", "1Ti" or a bare number of MiB. */
static int memory_mib(struct cli_ctx *ctx, const char *q, long long *ret)
{
	static const struct {
		const char *suffix;
		long long mib;
	} units[] = {{"Mi", 1}, {"Gi", 1024}, {"Ti", 1024 * 1024}, {"", 1}};
	size_t n = strlen(q);

	for (size_t i = 0; i < SHP_ARRAY_SIZE(units); i++) {
		size_t k = strlen(units[i].suffix);
		char num[32];
		long long v;

		if (n <= k || n - k >= sizeof(num) || strcmp(q + n - k, units[i].suffix) != 0)
			continue;
		memcpy(num, q, n - k);
		num[n - k] = '\0';
		if (shp_parse_int(num, 0, 16777216 / units[i].mib, &v, NULL) < 0)
			break;
		*ret = v * units[i].mib;
		return 0;
	}
	return shp_error_set(
		&ctx->err, SHP_E_INVAL,
		_("invalid --escalate-memory '%.40s' (a quantity such as 8Gi or 512Mi)"), q);
}

/* --name N into body[key] as a whole number within [min, max]. */
static int int_opt(struct cli_ctx *ctx, json_t *body, const char *key, const char *flag,
		   const char *arg, long long min, long long max)
{
	long long v;

	if (shp_parse_int(arg, min, max, &v, NULL) < 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("--%s must be a whole number from %lld to %lld"), flag, min,
				     max);
	(void)json_object_set_new(body, key, json_integer(v));
	return 0;
}

static int set_opt(struct cli_ctx *ctx, json_t *body, int c, const char **env)
{
	long long mib = 0;

	switch (c) {
	case OPT_ENVIRONMENT: *env = optarg; return 0;
	case OPT_LEVEL: return int_opt(ctx, body, "level", "level", optarg, 0, 3);
	case OPT_APPROVERS:
		return int_opt(ctx, body, "approvers_required", "approvers", optarg, 1, 10);
	case OPT_RUNBOOK: return cli_body_set(ctx, body, "runbook_url", optarg);
	case OPT_ESCALATE_CPUS:
		return int_opt(ctx, body, "escalate_cpus", "escalate-cpus", optarg, 0, 1024);
	case OPT_ESCALATE_MEMORY:
		if (memory_mib(ctx, optarg, &mib) < 0)
			return -ctx->err.code;
		(void)json_object_set_new(body, "escalate_memory_mib", json_integer(mib));
		return 0;
	default: return 0;
	}
}

static int cmd_policy_set(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *ans = NULL;
	_cleanup_free_ char *type = NULL, *base = NULL, *path = NULL;
	const char *env = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if ((r = set_opt(ctx, body, c, &env)) < 0)
			return r;
	type = type_arg(ctx, argv[optind]);
	if (!type)
		return -ctx->err.code;
	base = cli_path(SHP_ROUTE_POLICIES, type);
	path = cli_path(base, env);
	r = cli_call(ctx, "PUT", path, body, &ans);
	if (r < 0)
		return r;
	return cli_show_done(ctx, &policy_kind, ans, N_("set"));
}

static const struct shp_flag show_flags[] = {
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV",
	 N_("the policy that decides in this environment"), cli_environment_values},
	{NULL},
};

static const struct shp_flag set_flags[] = {
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV",
	 N_("the environment of the row (any: requests without one, and the fallback)"),
	 policy_envs, .required = true},
	{"level", OPT_LEVEL, 0, NULL, "N",
	 N_("the level: 0 auto, 1 requester's confirmation, 2 review, 3 several approvers"),
	 .required = true},
	{"approvers", OPT_APPROVERS, 0, NULL, "N", N_("approvals needed at level 3 (2 or more)")},
	{"runbook", OPT_RUNBOOK, 0, NULL, "URL", N_("the runbook reviewers follow (level 2)")},
	{"escalate-cpus", OPT_ESCALATE_CPUS, 0, NULL, "N",
	 N_("a request adding more CPUs than this moves up one level")},
	{"escalate-memory", OPT_ESCALATE_MEMORY, 0, NULL, "QUANTITY",
	 N_("a request adding more memory than this (8Gi) moves up one level")},
	{NULL},
};

static const struct shp_subcmd policy_verbs[] = {
	{
		.name = "list",
		.fn = cmd_policy_list,
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the approval policies"),
		.description = N_("List every approval policy: one row per request type and "
				  "environment, and rows for any environment."),
	},
	{
		.name = "set",
		.fn = cmd_policy_set,
		.min_args = 1,
		.max_args = 1,
		.usage = "TYPE --environment test|prod|any --level N [--approvers N] "
			 "[--runbook URL] [--escalate-cpus N] [--escalate-memory QUANTITY]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("set the approval policy of a request type"),
		.description =
			N_("Set the policy of request type TYPE (CREATE_VM, START_VM, ...) in an "
			   "environment. Level 2 needs a runbook URL, level 3 needs --approvers 2 "
			   "or more. Only platform administrators may set policies."),
		.opts = set_flags,
	},
	{
		.name = "show",
		.fn = cmd_policy_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "TYPE [--environment test|prod]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show the policies of a request type"),
		.description =
			N_("Show the policies of TYPE; with --environment, the one that decides "
			   "there (its own row, else the row for any environment)."),
		.opts = show_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_policy = {
	.name = "policy",
	.summary = N_("see and set approval policies"),
	.description = N_("An approval policy says what a request of one type needs in one "
			  "environment: nothing (0), the requester's confirmation (1), one "
			  "approver's review (2) or several approvers (3). A request adding many "
			  "CPUs or much memory moves up one level."),
	.subcmds = policy_verbs,
};
