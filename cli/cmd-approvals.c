/*
 * shepherd approvals: the approver's workbench — pending tickets oldest first with their age
 * and priority tier, one ticket in full, approve (with the plan hash that was shown), reject,
 * and an approver's modification of the spec: a preview as a unified diff, then the change.
 */
#include "config.h"

#include <errno.h>
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
#include "shell.h"
#include "util.h"
#include "yaml.h"

#define SPEC_FILE_MAX (1u << 20)
#define SETS_MAX 32
#define RED "\033[31m"
#define GREEN "\033[32m"
#define YELLOW "\033[33m"
#define CYAN "\033[36m"
#define RESET "\033[0m"

enum {
	OPT_SORT = CLI_OPT_LOCAL,
	OPT_TYPE,
	OPT_NAMESPACE,
	OPT_REQUESTER,
	OPT_ENVIRONMENT,
	OPT_STATUS,
	OPT_LIMIT,
	OPT_CLUSTER,
	OPT_REASON,
	OPT_SET,
	OPT_FILE,
	OPT_YES,
	OPT_DURATION,
	OPT_WAIT,
};

static const char *const sorts[] = {"days_pending", NULL};
static const char *const ticket_statuses[] = {"PENDING_APPROVAL", "APPROVED", "EXECUTING",
					      "COMPLETED",        "FAILED",   "REJECTED",
					      "CANCELLED",        "EXPIRED",  NULL};
static const char *const request_types[] = {"CREATE_SYSTEM",  "DELETE_SYSTEM", "CREATE_SERVICE",
					    "DELETE_SERVICE", "CREATE_VM",     "MODIFY_VM",
					    "DELETE_VM",      "START_VM",      "STOP_VM",
					    "RESTART_VM",     "VNC_ACCESS",    NULL};

/* ---- cells ---------------------------------------------------------------------------------- */

static char *ticket_approvals(const json_t *t, int64_t now)
{
	return xasprintf("%" PRId64 "/%" PRId64, shp_json_int(t, "approvals", 0),
			 shp_json_int(t, "approvals_required", 0));
}

static char *ticket_hash(const json_t *t, int64_t now)
{
	const char *h = shp_json_str(t, "current_plan_hash");
	const char *why = shp_json_str(t, "plan_error");

	if (h)
		return xstrdup(h);
	if (json_is_true(json_object_get(t, "record_only")))
		return xstrdup(_("<none: recorded when approved>"));
	return why ? xasprintf(_("<none>: %s"), why) : xstrdup(_("<none>"));
}

static const struct cli_column ticket_columns[] = {
	{N_("ID"), N_("Ticket"), "id", COL_RIGHT},
	{N_("TYPE"), N_("Type"), "type"},
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("NAME"), N_("Name"), "name"},
	{N_("REQUESTER"), N_("Requester"), "requester"},
	{N_("ENV"), N_("Environment"), "environment"},
	{N_("SYSTEM"), N_("System"), "system", COL_WIDE},
	{N_("CLUSTER"), N_("Cluster"), "cluster", COL_WIDE},
	{N_("STATUS"), N_("Status"), "status", COL_WIDE},
	{N_("REQUEST"), N_("Request"), "request_id", COL_WIDE | COL_RIGHT},
	{N_("LEVEL"), N_("Approval level"), "approval_level", COL_WIDE | COL_RIGHT},
	{N_("APPROVALS"), N_("Approvals"), NULL, COL_RIGHT, NULL, ticket_approvals},
	{N_("CREATED"), N_("Created"), "created_at", COL_AGE},
	{N_("DAYS"), N_("Days pending"), "days_pending", COL_RIGHT},
	{N_("TIER"), N_("Priority tier"), "priority_tier"},
	{NULL},
};
static const struct cli_kind ticket_kind = {"approval", N_("tickets"), "id", ticket_columns};

static const struct cli_column detail_columns[] = {
	{N_("ID"), N_("Ticket"), "id"},
	{N_("REQUEST"), N_("Request"), "request_id"},
	{N_("TYPE"), N_("Type"), "type"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("REQUESTER"), N_("Requester"), "requester"},
	{N_("SYSTEM"), N_("System"), "system"},
	{N_("SERVICE"), N_("Service"), "service"},
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("ENV"), N_("Environment"), "environment"},
	{N_("NAME"), N_("Name"), "name"},
	{N_("LEVEL"), N_("Approval level"), "approval_level"},
	{N_("APPROVALS"), N_("Approvals"), NULL, 0, NULL, ticket_approvals},
	{N_("RUNBOOK"), N_("Runbook"), "runbook_url"},
	{N_("CLUSTER"), N_("Plan cluster"), "plan_cluster"},
	{N_("HASH"), N_("Plan hash"), NULL, 0, NULL, ticket_hash},
	{N_("MODIFIED"), N_("Modified by"), "modified_by", 0, "-"},
	{N_("WHY"), N_("Modification reason"), "modification_reason", 0, "-"},
	{N_("TASK"), N_("Task"), "task_id", 0, "-"},
	{N_("REASON"), N_("Reason"), "reason", 0, "-"},
	{N_("CREATED"), N_("Created"), "created_at", COL_WHEN},
	{N_("EXPIRES"), N_("Expires"), "expires_at", COL_WHEN},
	{N_("DAYS"), N_("Days pending"), "days_pending"},
	{N_("TIER"), N_("Priority tier"), "priority_tier"},
	{NULL},
};
static const struct cli_kind detail_kind = {"approval", N_("approvals"), "id", detail_columns};

static const struct cli_column decision_columns[] = {
	{N_("DECISION"), N_("Decision"), "decision"},
	{N_("BY"), N_("By"), "approver"},
	{N_("PRINCIPAL"), N_("Principal"), "principal"},
	{N_("AUTH"), N_("Auth"), "auth_method"},
	{N_("SOURCE"), N_("Source"), "source"},
	{N_("WHEN"), N_("When"), "created_at", COL_AGE},
	{N_("VOID"), N_("Invalidated"), "invalidated_at", COL_AGE, "-"},
	{N_("REASON"), N_("Reason"), "reason", COL_FLEX, "-"},
	{NULL},
};
static const struct cli_kind decision_kind = {"decision", N_("decisions"), "id", decision_columns};

/* ---- list ----------------------------------------------------------------------------------- */

static const char *tier_color(const json_t *item)
{
	const char *tier = shp_json_str(item, "priority_tier");

	if (tier && strcmp(tier, "urgent") == 0)
		return RED;
	if (tier && strcmp(tier, "warning") == 0)
		return YELLOW;
	return NULL;
}

/*
 * The table with DAYS and TIER (its last two columns) coloured by tier: the table is drawn as
 * usual, then the tail of each row from the DAYS column on is wrapped in the tier's colour.
 */
static int show_colored(struct cli_ctx *ctx, const json_t *items)
{
	struct cli_render r = cli_render_of(ctx);
	_cleanup_free_ char *text = NULL;
	size_t len = 0, days_at, i = 0;
	FILE *mem = open_memstream(&text, &len);
	char *line, *save = NULL;

	if (!mem)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	if (cli_render_list(mem, &ticket_kind, items, &r) < 0 || fclose(mem) != 0)
		return shp_error_set(&ctx->err, SHP_E_IO, _("cannot draw the table"));
	line = strtok_r(text, "\n", &save);
	days_at = line && strstr(line, "DAYS") ? (size_t)(strstr(line, "DAYS") - line) : 0;
	for (; line; line = strtok_r(NULL, "\n", &save), i++) {
		const char *color = i ? tier_color(json_array_get(items, i - 1)) : NULL;
		/* DAYS is right-aligned under its header: start at the header's first column */
		size_t cut = strlen(line) > days_at ? days_at : strlen(line);

		if (!color || !days_at) {
			printf("%s\n", line);
			continue;
		}
		printf("%.*s%s%s%s\n", (int)cut, line, color, line + cut, RESET);
	}
	return 0;
}

static int cmd_approvals_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	static const char *const keys[] = {
		[OPT_SORT - CLI_OPT_LOCAL] = "sort",
		[OPT_TYPE - CLI_OPT_LOCAL] = "type",
		[OPT_NAMESPACE - CLI_OPT_LOCAL] = "namespace",
		[OPT_REQUESTER - CLI_OPT_LOCAL] = "requester",
		[OPT_ENVIRONMENT - CLI_OPT_LOCAL] = "environment",
		[OPT_STATUS - CLI_OPT_LOCAL] = "status",
	};
	long limit = 0;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_LIMIT && (r = cli_parse_limit(ctx, optarg, &limit)) < 0)
			return r;
		if (c >= OPT_SORT && c <= OPT_STATUS)
			cli_query_add(&query, keys[c - CLI_OPT_LOCAL], optarg);
	}
	r = cli_list(ctx, SHP_ROUTE_APPROVALS, query.buf, limit, ticket_kind.plural, &items);
	if (r < 0)
		return r;
	if (ctx->format == CLI_FORMAT_TABLE && ctx->color && json_array_size(items) > 0)
		return show_colored(ctx, items);
	return cli_show_list(ctx, &ticket_kind, items);
}

/* ---- show ----------------------------------------------------------------------------------- */

static int get_ticket(struct cli_ctx *ctx, const char *id, const char *cluster, json_t **ret)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_free_ char *path = cli_path(SHP_ROUTE_APPROVALS, id);
	_cleanup_free_ char *full = NULL;

	cli_query_add(&query, "cluster", cluster);
	full = query.len ? xasprintf("%s?%s", path, query.buf) : xstrdup(path);
	return cli_call(ctx, "GET", full, NULL, ret);
}

static int print_yaml_section(const char *title, const json_t *j)
{
	struct shp_buf y = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_free_ char *clean = NULL;
	int r = shp_json_to_yaml(j, &y, NULL);

	if (r == 0) {
		printf("\n%s:\n", title);
		for (const char *p = y.buf; *p;) {
			size_t n = strcspn(p, "\n");
			_cleanup_free_ char *l = xasprintf("%.*s", (int)n, p);

			clean = cli_text_sanitize(l);
			printf("  %s\n", clean);
			free(TAKE_PTR(clean));
			p += n + (p[n] == '\n');
		}
	}
	shp_buf_release(&y);
	return r;
}

static int cmd_approvals_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	const json_t *dec;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = get_ticket(ctx, argv[optind], NULL, &t);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, t);
	r = cli_show_object(ctx, &detail_kind, t);
	if (r < 0)
		return r;
	(void)print_yaml_section(_("Effective spec"), json_object_get(t, "effective_spec"));
	if (json_is_object(json_object_get(t, "modified_spec")))
		(void)print_yaml_section(_("Requested spec"), json_object_get(t, "requested_spec"));
	dec = json_object_get(t, "decisions");
	if (json_array_size(dec) == 0)
		return 0;
	printf(_("\nDecisions:\n"));
	return cli_show_list(ctx, &decision_kind, dec);
}

/* ---- approve and reject --------------------------------------------------------------------- */

static char *ticket_decision_path(const char *id, const char *verb)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_APPROVALS, id);

	return xasprintf("%s/%s", base, verb);
}

static int approve_report(struct cli_ctx *ctx, const char *id, const json_t *a)
{
	const json_t *task = json_object_get(a, "task_id");

	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, a);
	if (ctx->quiet)
		return 0;
	if (json_is_true(json_object_get(a, "already_approved")))
		printf(_("ticket %s: you approved it already (%" PRId64 " of %" PRId64
			 " approvals)\n"),
		       id, shp_json_int(a, "approvals", 0),
		       shp_json_int(a, "approvals_required", 0));
	else if (strcmp(shp_json_str(a, "status") ? shp_json_str(a, "status") : "", "COMPLETED") ==
		 0)
		printf(_("ticket %s approved: the request is recorded\n"), id);
	else if (json_is_integer(task))
		printf(_("ticket %s approved: task %lld runs it\n"), id,
		       (long long)json_integer_value(task));
	else
		printf(_("ticket %s: %" PRId64 " of %" PRId64 " approvals\n"), id,
		       shp_json_int(a, "approvals", 0), shp_json_int(a, "approvals_required", 0));
	return 0;
}

static int cmd_approvals_approve(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *a = NULL;
	_cleanup_free_ char *path = NULL;
	const char *cluster = NULL, *reason = NULL, *duration = NULL, *hash, *why;
	int64_t seconds = 0;
	bool wait = false;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_CLUSTER)
			cluster = optarg;
		else if (c == OPT_REASON)
			reason = optarg;
		else if (c == OPT_DURATION)
			duration = optarg;
		else if (c == OPT_WAIT)
			wait = true;
	}
	if (duration && shp_parse_duration(duration, &seconds, &ctx->err) < 0)
		return cli_usage_error(ctx, _("--duration: %s"), ctx->err.msg);
	/* approve what was shown: the plan hash as the daemon computes it for this cluster */
	r = get_ticket(ctx, argv[optind], cluster, &t);
	if (r < 0)
		return r;
	hash = shp_json_str(t, "current_plan_hash");
	why = shp_json_str(t, "plan_error");
	if (json_is_true(json_object_get(t, "record_only")))
		why = NULL; /* a system or a service: no cluster, no plan */
	else if (!hash && !cluster && !shp_json_str(t, "plan_cluster"))
		return cli_usage_error(ctx,
				       _("ticket %s has no cluster yet: choose one with --cluster"),
				       argv[optind]);
	else if (!hash)
		return shp_error_set(&ctx->err, SHP_E_CONFLICT,
				     _("ticket %s cannot be planned: %s"), argv[optind],
				     why ? why : _("unknown reason"));
	if (cli_body_set(ctx, body, "cluster", cluster) < 0 ||
	    cli_body_set(ctx, body, "plan_hash", hash) < 0 ||
	    cli_body_set(ctx, body, "reason", reason) < 0)
		return -ctx->err.code;
	if (duration)
		(void)json_object_set_new(body, "duration_s", json_integer(seconds));
	path = ticket_decision_path(argv[optind], "approve");
	r = cli_call(ctx, "POST", path, body, &a);
	if (r < 0)
		return r;
	/* with --wait, JSON and YAML show the final ticket alone */
	if (!wait || ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE)
		r = approve_report(ctx, argv[optind], a);
	return r < 0 || !wait ? r : cli_ticket_wait(ctx, argv[optind]);
}

static int cmd_approvals_reject(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *a = NULL;
	_cleanup_free_ char *path = NULL, *typed = NULL, *question = NULL;
	const char *reason = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_REASON)
			reason = optarg;
	if (!reason) {
		question = xasprintf(_("Why is ticket %s rejected (the requester is told)? "),
				     argv[optind]);
		if ((r = cli_prompt_text(ctx, question, "--reason", &typed)) < 0)
			return r;
		reason = typed;
	}
	if (cli_body_set(ctx, body, "reason", reason) < 0)
		return -ctx->err.code;
	path = ticket_decision_path(argv[optind], "reject");
	r = cli_call(ctx, "POST", path, body, &a);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, a);
	if (!ctx->quiet)
		printf(_("ticket %s rejected\n"), argv[optind]);
	return 0;
}

/* ---- the spec of a modification ------------------------------------------------------------- */

struct spec_opts {
	const char *sets[SETS_MAX];
	int nsets;
	const char *file, *cluster, *reason;
	bool yes;
};

static int parse_spec_opts(struct cli_ctx *ctx, int argc, char **argv, struct spec_opts *o)
{
	int c;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		switch (c) {
		case OPT_SET:
			if (o->nsets == SETS_MAX)
				return cli_usage_error(ctx, _("at most %d --set options"),
						       SETS_MAX);
			o->sets[o->nsets++] = optarg;
			break;
		case OPT_FILE: o->file = optarg; break;
		case OPT_CLUSTER: o->cluster = optarg; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_YES: o->yes = true; break;
		}
	}
	if ((o->nsets > 0) == (o->file != NULL))
		return cli_usage_error(ctx,
				       _("give either --set KEY=VALUE (one or more) or --file"));
	return 0;
}

/* A whole number in [min, max] for --set key. */
static int set_int(struct cli_ctx *ctx, json_t *spec, const char *field, const char *key,
		   const char *v, long long min, long long max)
{
	long long n;

	if (shp_parse_int(v, min, max, &n, NULL) < 0)
		return cli_usage_error(ctx, _("--set %s: '%s' is not a whole number in %lld..%lld"),
				       key, v, min, max);
	(void)json_object_set_new(spec, field, json_integer(n));
	return 0;
}

/* Apply one --set KEY=VALUE to the spec; an empty value removes the field. */
static int apply_set(struct cli_ctx *ctx, json_t *spec, const char *kv)
{
	static const char *const text_keys[] = {"memory",   "storage_class", "size", "cluster",
						"template", "description",   NULL};
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *key = eq ? xasprintf("%.*s", (int)(eq - kv), kv) : NULL;
	const char *v = eq ? eq + 1 : NULL;
	const char *field;

	if (!key || !*key)
		return cli_usage_error(ctx, _("--set wants KEY=VALUE, not '%s'"), kv);
	field = strcmp(key, "cpu") == 0 ? "cpus" : key;
	if (!*v) {
		(void)json_object_del(spec, field);
		return 0;
	}
	if (strcmp(field, "cpus") == 0)
		return set_int(ctx, spec, field, key, v, 1, 1024);
	if (strcmp(field, "template_version") == 0)
		return set_int(ctx, spec, field, key, v, 1, INT32_MAX);
	if (strcmp(field, "run") == 0) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
			return cli_usage_error(ctx, _("--set run: 'true' or 'false'"));
		(void)json_object_set_new(spec, field, json_boolean(strcmp(v, "true") == 0));
		return 0;
	}
	for (const char *const *k = text_keys; *k; k++)
		if (strcmp(field, *k) == 0)
			return cli_body_set(ctx, spec, field, v);
	return cli_usage_error(ctx,
			       _("--set: unknown key '%s' (cpu, memory, storage_class, "
				 "template_version, size, cluster, template, description, run)"),
			       key);
}

/* The full replacement: the file, or the current effective spec with the --set changes. */
static int build_spec(struct cli_ctx *ctx, const char *id, const struct spec_opts *o, json_t **ret)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	_cleanup_(json_decrefp) json_t *spec = NULL;
	int r;

	if (o->file)
		return cli_read_yaml_object(ctx, o->file, SPEC_FILE_MAX,
					    _("a mapping of spec fields"), ret);
	r = get_ticket(ctx, id, NULL, &t);
	if (r < 0)
		return r;
	spec = json_deep_copy(json_object_get(t, "effective_spec"));
	if (!json_is_object(spec))
		return shp_error_set(&ctx->err, SHP_E_PROTO, _("ticket %s came without a spec"),
				     id);
	for (int i = 0; i < o->nsets; i++)
		if ((r = apply_set(ctx, spec, o->sets[i])) < 0)
			return r;
	*ret = TAKE_PTR(spec);
	return 0;
}

/* ---- preview and modify --------------------------------------------------------------------- */

static const char *diff_color(const char *line)
{
	if (strncmp(line, "+++", 3) == 0 || strncmp(line, "---", 3) == 0)
		return NULL;
	if (line[0] == '+')
		return GREEN;
	if (line[0] == '-')
		return RED;
	return strncmp(line, "@@", 2) == 0 ? CYAN : NULL;
}

static void print_diff(struct cli_ctx *ctx, const char *diff)
{
	while (diff && *diff) {
		size_t n = strcspn(diff, "\n");
		_cleanup_free_ char *raw = xasprintf("%.*s", (int)n, diff);
		_cleanup_free_ char *line = cli_text_sanitize(raw);
		const char *color = ctx->color ? diff_color(line) : NULL;

		printf("%s%s%s\n", color ? color : "", line, color ? RESET : "");
		diff += n + (diff[n] == '\n');
	}
}

static int preview(struct cli_ctx *ctx, const char *id, const json_t *spec, const char *cluster,
		   bool show, json_t **ret)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_ADMIN_APPROVALS, id);
	_cleanup_free_ char *path = xasprintf("%s/preview", base);
	_cleanup_(json_decrefp) json_t *body = json_pack("{s:O}", "spec", spec);
	_cleanup_(json_decrefp) json_t *p = NULL;
	const char *hash;
	size_t i;
	json_t *w;
	int r;

	if (cli_body_set(ctx, body, "cluster", cluster) < 0)
		return -ctx->err.code;
	r = cli_call(ctx, "POST", path, body, &p);
	if (r < 0)
		return r;
	if (show && ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		r = cli_show_raw(ctx, p);
	else if (show)
		print_diff(ctx, shp_json_str(p, "diff"));
	json_array_foreach(json_object_get(p, "warnings"), i, w)
	{
		_cleanup_free_ char *clean = cli_text_sanitize(json_string_value(w));
		cli_warn(ctx, "%s", clean);
	}
	hash = shp_json_str(p, "plan_hash");
	if (show && (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE))
		cli_note(ctx, _("plan hash: %s\n"),
			 hash ? hash : _("<none: no cluster chosen yet>"));
	if (ret)
		*ret = TAKE_PTR(p);
	return r;
}

static int cmd_approvals_preview(int argc, char **argv, struct cli_ctx *ctx)
{
	struct spec_opts o = {0};
	_cleanup_(json_decrefp) json_t *spec = NULL;
	int r = parse_spec_opts(ctx, argc, argv, &o);

	if (r < 0 || (r = build_spec(ctx, argv[optind], &o, &spec)) < 0)
		return r;
	return preview(ctx, argv[optind], spec, o.cluster, true, NULL);
}

/* Ask on the terminal; refuse to ask anything that is not one. */
static int confirm(struct cli_ctx *ctx, const char *id)
{
	_cleanup_free_ char *question = xasprintf(_("Replace the spec of ticket %s? [y/N] "), id);

	return cli_prompt_yes(ctx, question, _("not asking for confirmation off a terminal"),
			      "--yes", _("not modified"));
}

static void modify_report(struct cli_ctx *ctx, const char *id, const json_t *m)
{
	const json_t *task = json_object_get(m, "cancelled_task_id");

	if (ctx->quiet)
		return;
	printf(_("ticket %s modified: %" PRId64
		 " approval(s) invalidated, it needs approving again\n"),
	       id, shp_json_int(m, "invalidated", 0));
	if (json_is_integer(task))
		printf(_("task %lld of the earlier approval is cancelled\n"),
		       (long long)json_integer_value(task));
}

static int cmd_approvals_modify(int argc, char **argv, struct cli_ctx *ctx)
{
	struct spec_opts o = {0};
	_cleanup_(json_decrefp) json_t *spec = NULL;
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_(json_decrefp) json_t *m = NULL;
	_cleanup_free_ char *base = NULL, *path = NULL, *typed = NULL, *question = NULL;
	const char *id;
	int r = parse_spec_opts(ctx, argc, argv, &o);

	if (r < 0 || (r = build_spec(ctx, argv[optind], &o, &spec)) < 0)
		return r;
	if (!o.reason) {
		question = xasprintf(_("Why is ticket %s modified? "), argv[optind]);
		if ((r = cli_prompt_text(ctx, question, "--reason", &typed)) < 0)
			return r;
		o.reason = typed;
	}
	id = argv[optind];
	/* the preview checks everything the modification will; it is shown unless --yes */
	if ((r = preview(ctx, id, spec, o.cluster, !o.yes, NULL)) < 0 ||
	    (!o.yes && (r = confirm(ctx, id)) < 0))
		return r;
	body = json_pack("{s:O}", "spec", spec);
	if (cli_body_set(ctx, body, "reason", o.reason) < 0 ||
	    cli_body_set(ctx, body, "cluster", o.cluster) < 0)
		return -ctx->err.code;
	base = cli_path(SHP_ROUTE_ADMIN_APPROVALS, id);
	path = xasprintf("%s/spec", base);
	r = cli_call(ctx, "PUT", path, body, &m);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, m);
	modify_report(ctx, id, m);
	return 0;
}

/* ---- the table ------------------------------------------------------------------------------ */

static const struct shp_flag list_flags[] = {
	{"sort", OPT_SORT, 0, NULL, "ORDER",
	 N_("the order: days_pending, oldest first (the default)"), sorts},
	{"type", OPT_TYPE, 0, NULL, "TYPE", N_("only requests of this type"), request_types},
	{"namespace", OPT_NAMESPACE, 0, NULL, "NS", N_("only requests in this namespace"),
	 .names = CLI_NAMES_NAMESPACE},
	{"requester", OPT_REQUESTER, 0, NULL, "USER", N_("only requests of this user")},
	{"environment", OPT_ENVIRONMENT, 0, "env", "ENV", N_("only this environment"),
	 cli_environment_values},
	{"status", OPT_STATUS, 0, NULL, "STATUS", N_("tickets in this status (PENDING_APPROVAL)"),
	 ticket_statuses},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most the N oldest")},
	{NULL},
};

static const struct shp_flag approve_flags[] = {
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME",
	 N_("run it on this cluster (else the ticket's, else the requested one)"),
	 .names = CLI_NAMES_CLUSTER},
	{"reason", OPT_REASON, 0, NULL, "TEXT", N_("a note kept with the approval")},
	{"duration", OPT_DURATION, 0, NULL, "DURATION",
	 N_("console access (VNC_ACCESS): grant it for this long only")},
	{"wait", OPT_WAIT, 0, NULL, NULL,
	 N_("follow the request to its end (its task live); exit with its outcome")},
	{NULL},
};

static const struct shp_flag reject_flags[] = {
	{"reason", OPT_REASON, 0, NULL, "TEXT",
	 N_("why (the requester is told); asked for on a terminal when missing")},
	{NULL},
};

static const struct shp_flag preview_flags[] = {
	{"set", OPT_SET, 0, NULL, "KEY=VALUE",
	 N_("change one field of the current spec (cpu, memory, storage_class, template_version, "
	    "size, cluster, template, description, run; empty removes it)")},
	{"file", OPT_FILE, 'f', NULL, "FILE", N_("the whole new spec (YAML or JSON; - for stdin)"),
	 .file = true},
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("compute the plan hash for this cluster"),
	 .names = CLI_NAMES_CLUSTER},
	{NULL},
};

static const struct shp_flag modify_flags[] = {
	{"set", OPT_SET, 0, NULL, "KEY=VALUE",
	 N_("change one field of the current spec (cpu, memory, storage_class, template_version, "
	    "size, cluster, template, description, run; empty removes it)")},
	{"file", OPT_FILE, 'f', NULL, "FILE", N_("the whole new spec (YAML or JSON; - for stdin)"),
	 .file = true},
	{"reason", OPT_REASON, 0, NULL, "TEXT",
	 N_("why (kept with the ticket); asked for on a terminal when missing")},
	{"cluster", OPT_CLUSTER, 0, NULL, "NAME", N_("choose this cluster too"),
	 .names = CLI_NAMES_CLUSTER},
	{"yes", OPT_YES, 'y', NULL, NULL, N_("do not show the preview and ask")},
	{NULL},
};

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd approvals_verbs[] = {
	{
		.name = "approve",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_APPROVAL,
		.fn = cmd_approvals_approve,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET [--cluster NAME] [--reason TEXT] [--duration DURATION] [--wait]",
		.flags = CMD_NEEDS_DAEMON,
		.summary = N_("approve a request"),
		.description =
			N_("Approve ticket TICKET as an approver of its environment (never "
			   "your own request). The ticket is read first and the approval "
			   "carries the plan hash shown for the chosen cluster, so a plan "
			   "that changed in between is refused. At level 3 the ticket waits "
			   "for the required number of distinct approvers; the last approval "
			   "starts the task. A console access request (VNC_ACCESS) runs on no "
			   "cluster: its approval grants the access, for --duration when that "
			   "is shorter than what was asked."),
		.opts = approve_flags,
	},
	{
		.name = "list",
		.fn = cmd_approvals_list,
		.usage = "[--sort days_pending] [--type TYPE] [--namespace NS] [--requester USER] "
			 "[--environment ENV] [--status STATUS] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("the workbench: tickets waiting for approval, oldest first"),
		.description =
			N_("List the tickets of the environments you approve in, oldest first. "
			   "DAYS is how long a ticket has waited and TIER its priority: normal "
			   "up to 3 days, warning 4 to 7, urgent beyond (yellow and red on a "
			   "terminal)."),
		.opts = list_flags,
	},
	{
		.name = "modify",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_APPROVAL,
		.fn = cmd_approvals_modify,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET [--set KEY=VALUE]... [--file FILE] [--reason TEXT] [--cluster "
			 "NAME] "
			 "[--yes]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("replace the spec of a request"),
		.description =
			N_("Replace the spec of ticket TICKET (with --set, one or more, or "
			   "--file): the preview is shown and you "
			   "are asked on the terminal (--yes skips both; without a terminal "
			   "--yes is required). The new spec replaces the requested one in full; "
			   "namespace, service, system and name cannot change. Earlier "
			   "approvals are void, and an approved ticket whose task has not "
			   "started has the task cancelled and needs approving again."),
		.opts = modify_flags,
	},
	{
		.name = "preview",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_APPROVAL,
		.fn = cmd_approvals_preview,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET [--set KEY=VALUE]... [--file FILE] [--cluster NAME]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show what a modification would change"),
		.description =
			N_("Show, for --set (one or more) or --file, the unified diff of the "
			   "requested spec against the new one, "
			   "the warnings (five or more fields removed) and the new plan hash, "
			   "without changing anything."),
		.opts = preview_flags,
	},
	{
		.name = "reject",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_APPROVAL,
		.fn = cmd_approvals_reject,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET [--reason TEXT]",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("reject a request"),
		.description =
			N_("Reject ticket TICKET with a reason; the request is cancelled and "
			   "the requester is told why."),
		.opts = reject_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_APPROVAL,
		.fn = cmd_approvals_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "TICKET",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show a ticket: its spec, plan hash and decisions"),
		.description =
			N_("Show ticket TICKET with the effective spec (and the requested one "
			   "when an approver replaced it), the plan hash for its cluster, the "
			   "runbook and every decision so far. Its requester may look too."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_approvals = {
	.name = "approvals",
	.summary = N_("review, approve, reject and modify requests (approvers)"),
	.description = N_("Requests that their policy sends for review wait as tickets until an "
			  "approver of their environment decides. Approvers never decide their own "
			  "requests."),
	.subcmds = approvals_verbs,
};
