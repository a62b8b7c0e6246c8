/*
 * shepherd audit: the append-only audit log, newest entry first, filtered on the server by
 * action, actor, resource, ticket, outcome and time; followed as it grows (list --follow), or
 * exported whole as JSON lines, oldest first.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

enum {
	OPT_ACTION = CLI_OPT_LOCAL,
	OPT_ACTOR,
	OPT_RESOURCE_TYPE,
	OPT_RESOURCE,
	OPT_LIMIT,
	OPT_TICKET,
	OPT_OUTCOME,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_FOLLOW,
};

/* Pages of this many entries when following or exporting. */
#define AUDIT_PAGE 500
/* How often --follow asks for new entries. */
#define AUDIT_FOLLOW_MS 1000

static const char *const outcome_values[] = {"success", "denied", "failed", NULL};

static char *audit_resource(const json_t *e, int64_t now)
{
	const char *type = shp_json_str(e, "resource_type");
	const char *name = shp_json_str(e, "resource_name");

	if (type && name)
		return xasprintf("%s/%s", type, name);
	return xstrdup(type ? type : name ? name : _("<none>"));
}

static const struct cli_column audit_columns[] = {
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("AGE"), N_("At"), "at", COL_AGE},
	{N_("ACTOR"), N_("Actor"), "actor"},
	{N_("ACTION"), N_("Action"), "action"},
	{N_("RESOURCE"), N_("Resource"), NULL, 0, NULL, audit_resource},
	{N_("OUTCOME"), N_("Outcome"), "outcome"},
	{N_("TIME"), N_("Time"), "at", COL_WIDE},
	{N_("REQUEST ID"), N_("Request id"), "request_id", COL_WIDE},
	{N_("DETAILS"), N_("Details"), "details", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind audit_kind = {"audit", N_("audit entries"), "id", audit_columns};

static const struct cli_filter audit_filters[] = {
	{OPT_ACTION, "action"},
	{OPT_ACTOR, "actor"},
	{OPT_RESOURCE_TYPE, "resource_type"},
	{OPT_RESOURCE, "resource_name"},
	{OPT_TICKET, "ticket"},
	{OPT_OUTCOME, "outcome"},
	{0},
};

/*
 * --since/--until: an RFC 3339 time as it is, or a duration ("10m", "2h", "7d") meaning that
 * long ago, as the RFC 3339 time it was.
 */
static int time_arg(struct cli_ctx *ctx, const char *opt, const char *s, struct shp_buf *query,
		    const char *key)
{
	int64_t secs;
	int64_t t;
	char when[40];

	if (cli_parse_time(s, &t) == 0) {
		cli_query_add(query, key, s);
		return 0;
	}
	if (shp_parse_duration(s, &secs, NULL) < 0)
		return cli_usage_error(ctx,
				       _("--%s: '%s' is neither a time (2026-11-22T15:00:00Z) nor "
					 "a duration (10m, 2h, 7d)"),
				       opt, s);
	shp_format_rfc3339(shp_now_realtime_us() - (uint64_t)secs * 1000000u, when, sizeof(when));
	cli_query_add(query, key, when);
	return 0;
}

/* The options every audit verb shares, as the query; *follow and *limit where they apply. */
static int audit_query(int argc, char **argv, struct cli_ctx *ctx, struct shp_buf *query,
		       bool *follow, long *limit)
{
	int c, r = 0;

	while (r == 0 && (c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_LIMIT)
			r = cli_parse_limit(ctx, optarg, limit);
		else if (c == OPT_FOLLOW)
			*follow = true;
		else if (c == OPT_SINCE || c == OPT_UNTIL)
			r = time_arg(ctx, c == OPT_SINCE ? "since" : "until", optarg, query,
				     c == OPT_SINCE ? "since" : "until");
		for (const struct cli_filter *f = audit_filters; f->opt; f++)
			if (f->opt == c)
				cli_query_add(query, f->key, optarg);
	}
	return r;
}

/* One entry as a JSON line (sorted keys: the field names are the API's, stable). */
static int print_json_line(struct cli_ctx *ctx, const json_t *e)
{
	if (json_dumpf(e, stdout, JSON_COMPACT | JSON_SORT_KEYS) < 0 || putchar('\n') == EOF)
		return shp_error_errno(&ctx->err, errno, _("cannot write the audit entries"));
	return 0;
}

/* One entry as a line of --follow in table output. */
static void print_follow_line(const json_t *e)
{
	_cleanup_free_ char *res = audit_resource(e, 0);
	const char *fields[] = {shp_json_str(e, "at"), shp_json_str(e, "actor"),
				shp_json_str(e, "action"), res, shp_json_str(e, "outcome")};
	char *clean[5];

	for (int i = 0; i < 5; i++)
		clean[i] = cli_text_sanitize(fields[i] ? fields[i] : "");
	printf("%-6" PRId64 " %-27s %-16s %-24s %-32s %s\n", shp_json_int(e, "id", 0), clean[0],
	       clean[1], clean[2], clean[3], clean[4]);
	for (int i = 0; i < 5; i++) /* a cleanup attribute on an array frees only its first */
		free(clean[i]);
}

/*
 * The entries after *last, oldest first, page by page until none is left: each is printed
 * (JSON lines, or follow lines) and *last moves along.
 */
static int drain_after(struct cli_ctx *ctx, const char *query, bool json, int64_t *last)
{
	for (;;) {
		_cleanup_(json_decrefp) json_t *page = NULL;
		_cleanup_free_ char *url =
			xasprintf("%s?%s%safter=%" PRId64 "&limit=%d", SHP_ROUTE_AUDIT, query,
				  query[0] ? "&" : "", *last, AUDIT_PAGE);
		const json_t *items, *e;
		size_t i;
		int r = cli_call(ctx, "GET", url, NULL, &page);

		if (r < 0)
			return r;
		items = json_object_get(page, "items");
		if (!json_is_array(items))
			return shp_error_set(&ctx->err, SHP_E_PROTO,
					     _("unexpected answer from shepherdd: no items"));
		json_array_foreach(items, i, e)
		{
			if (json ? (r = print_json_line(ctx, e)) < 0 : (print_follow_line(e), 0))
				return r;
			*last = shp_json_int(e, "id", *last);
		}
		(void)fflush(stdout);
		if (json_array_size(items) < AUDIT_PAGE)
			return 0;
	}
}

static bool is_transient(enum shp_errc code)
{
	return code == SHP_E_UNREACHABLE || code == SHP_E_UNAVAIL || code == SHP_E_TIMEOUT ||
	       code == SHP_E_RATE;
}

/* --follow: the newest entries (oldest first), then every new one as it comes. */
static int audit_follow(struct cli_ctx *ctx, const char *query, long limit)
{
	_cleanup_(json_decrefp) json_t *items = NULL;
	bool json = ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE;
	int64_t last = 0;
	int r = cli_list(ctx, SHP_ROUTE_AUDIT, query, limit ? limit : 10, "audit entries", &items);

	if (r < 0)
		return r;
	if (!json && !ctx->quiet)
		printf("%-6s %-27s %-16s %-24s %-32s %s\n", "ID", "TIME", "ACTOR", "ACTION",
		       "RESOURCE", "OUTCOME");
	for (size_t i = json_array_size(items); i-- > 0;) {
		const json_t *e = json_array_get(items, i);

		if (json ? (r = print_json_line(ctx, e)) < 0 : (print_follow_line(e), 0))
			return r;
		last = shp_json_int(e, "id", last);
	}
	for (bool down = false;;) {
		(void)fflush(stdout);
		if (!cli_nap_ms(AUDIT_FOLLOW_MS))
			return cli_interrupt_error(ctx);
		r = drain_after(ctx, query, json, &last);
		if (r < 0 && !is_transient(ctx->err.code))
			return r;
		/* a daemon restarting or busy: say so once, and go on asking */
		if (r < 0 && !down)
			cli_warn(ctx, _("%s, retrying"), ctx->err.msg);
		if (r == 0 && down)
			cli_note(ctx, _("shepherd: following again\n"));
		down = r < 0;
		shp_error_clear(&ctx->err);
	}
}

static int cmd_audit_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	bool follow = false;
	long limit = 0;
	int r = audit_query(argc, argv, ctx, &query, &follow, &limit);

	if (r < 0)
		return r;
	if (follow)
		return audit_follow(ctx, query.buf, limit);
	r = cli_list(ctx, SHP_ROUTE_AUDIT, query.buf, limit, audit_kind.plural, &items);
	return r < 0 ? r : cli_show_list(ctx, &audit_kind, items);
}

static int cmd_audit_export(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	int64_t last = 0;
	int r = audit_query(argc, argv, ctx, &query, NULL, NULL);

	return r < 0 ? r : drain_after(ctx, query.buf, true, &last);
}

#define AUDIT_FILTER_FLAGS                                                                         \
	{"action", OPT_ACTION, 0,                                                                  \
	 NULL,     "ACTION",   N_("only entries of this action (NAMESPACE_CREATE)")},              \
		{"actor", OPT_ACTOR, 0, NULL, "USER", N_("only entries of this user")},            \
		{"resource-type",                                                                  \
		 OPT_RESOURCE_TYPE,                                                                \
		 0,                                                                                \
		 NULL,                                                                             \
		 "TYPE",                                                                           \
		 N_("only entries about this kind of resource (namespace, cluster, token)")},      \
		{"resource", OPT_RESOURCE, 0,                                                      \
		 NULL,       "NAME",       N_("only entries about the resource NAME")},            \
		{"ticket",                                                                         \
		 OPT_TICKET,                                                                       \
		 0,                                                                                \
		 NULL,                                                                             \
		 "ID",                                                                             \
		 N_("only entries about this approval ticket"),                                    \
		 .names = CLI_NAMES_APPROVAL},                                                     \
		{"outcome",     OPT_OUTCOME, 0,                                                    \
		 NULL,          "OUTCOME",   N_("only entries with this outcome"),                 \
		 outcome_values},                                                                  \
		{"since",                                                                          \
		 OPT_SINCE,                                                                        \
		 0,                                                                                \
		 NULL,                                                                             \
		 "TIME",                                                                           \
		 N_("only entries from TIME on (RFC 3339, or a duration ago: 10m, 2h, 7d)")},      \
	{                                                                                          \
		"until", OPT_UNTIL, 0, NULL, "TIME", N_("only entries before TIME (likewise)")     \
	}

static const struct shp_flag list_flags[] = {
	AUDIT_FILTER_FLAGS,
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N newest entries")},
	{"follow", OPT_FOLLOW, 0, NULL, NULL,
	 N_("show the newest entries, then each new one as it comes, until interrupted")},
	{NULL},
};

static const struct shp_flag export_flags[] = {
	AUDIT_FILTER_FLAGS,
	{NULL},
};

static const struct shp_subcmd audit_verbs[] = {
	{
		.name = "export",
		.fn = cmd_audit_export,
		.usage = "[--since TIME] [--until TIME] [--action ACTION] [--actor USER] "
			 "[--resource-type TYPE] [--resource NAME] [--ticket ID] "
			 "[--outcome OUTCOME]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("write audit entries as JSON lines, oldest first"),
		.description =
			N_("Write every matching audit entry to standard output as JSON lines, "
			   "oldest first: one object per line with the fields id, at, actor, "
			   "action, resource_type, resource_name, outcome, request_id and "
			   "details. All entries are written, page by page."),
		.opts = export_flags,
	},
	{
		.name = "list",
		.fn = cmd_audit_list,
		.usage = "[--action ACTION] [--actor USER] [--resource-type TYPE] "
			 "[--resource NAME] [--ticket ID] [--outcome OUTCOME] [--since TIME] "
			 "[--until TIME] [--limit N] [--follow]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list audit entries, newest first"),
		.description = N_("List audit entries, newest first, matching every filter given. "
				  "Without --limit all matching entries are fetched, up to 10000. "
				  "With --follow the newest entries (10 unless --limit says) are "
				  "shown oldest first, then every new entry as it is written, one "
				  "line each (JSON lines with -o json), until interrupted."),
		.opts = list_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_audit = {
	.name = "audit",
	.summary = N_("read the audit log"),
	.description =
		N_("Every operation through shepherdd, allowed or refused, leaves an entry in "
		   "the audit log, which nobody can change afterwards."),
	.subcmds = audit_verbs,
};
