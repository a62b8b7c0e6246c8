/*
 * shepherd audit: the append-only audit log, newest entry first, filtered on the server by
 * action, actor and resource.
 */
#include "config.h"

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "json.h"
#include "output.h"

enum { OPT_ACTION = CLI_OPT_LOCAL, OPT_ACTOR, OPT_RESOURCE_TYPE, OPT_RESOURCE, OPT_LIMIT };

static char *audit_resource(const json_t *e, int64_t now)
{
	const char *type = shp_json_str(e, "resource_type");
	const char *name = shp_json_str(e, "resource_name");

	if (type && name)
		return xasprintf("%s/%s", type, name);
	return xstrdup(type ? type : name ? name : "<none>");
}

static const struct cli_column audit_columns[] = {
	{"ID", "ID", "id", COL_RIGHT},
	{"AGE", "At", "at", COL_AGE},
	{"ACTOR", "Actor", "actor"},
	{"ACTION", "Action", "action"},
	{"RESOURCE", "Resource", NULL, 0, NULL, audit_resource},
	{"OUTCOME", "Outcome", "outcome"},
	{"TIME", "Time", "at", COL_WIDE},
	{"REQUEST ID", "Request id", "request_id", COL_WIDE},
	{"DETAILS", "Details", "details", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind audit_kind = {"audit", "audit entries", "id", audit_columns};

static const struct cli_filter audit_filters[] = {
	{OPT_ACTION, "action"},
	{OPT_ACTOR, "actor"},
	{OPT_RESOURCE_TYPE, "resource_type"},
	{OPT_RESOURCE, "resource_name"},
	{0},
};

static int cmd_audit_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_AUDIT, &audit_kind, audit_filters,
				 OPT_LIMIT);
}

static const struct shp_flag list_flags[] = {
	{"action", OPT_ACTION, 0, NULL, "ACTION", "only entries of this action (NAMESPACE_CREATE)"},
	{"actor", OPT_ACTOR, 0, NULL, "USER", "only entries of this user"},
	{"resource-type", OPT_RESOURCE_TYPE, 0, NULL, "TYPE",
	 "only entries about this kind of resource (namespace, cluster, token)"},
	{"resource", OPT_RESOURCE, 0, NULL, "NAME", "only entries about the resource NAME"},
	{"limit", OPT_LIMIT, 0, NULL, "N", "show at most the N newest entries"},
	{NULL},
};

static const struct shp_subcmd audit_verbs[] = {
	{
		.name = "list",
		.fn = cmd_audit_list,
		.usage = "[--action ACTION] [--actor USER] [--resource-type TYPE] "
			 "[--resource NAME] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = "list audit entries, newest first",
		.description = "List audit entries, newest first, matching every filter given. "
			       "Without --limit all matching entries are fetched, up to 10000.",
		.opts = list_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_audit = {
	.name = "audit",
	.summary = "read the audit log",
	.description = "Every operation through shepherdd, allowed or refused, leaves an entry in "
		       "the audit log, which nobody can change afterwards.",
	.subcmds = audit_verbs,
};
