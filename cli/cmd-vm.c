/*
 * shepherd vm: the VMs a user may see (list, show, revisions, history, the diff of two
 * revisions) and the requests that change them (create, modify, delete, start, stop,
 * restart). A request answers with its id, ticket and status; --wait follows it to its end
 * (and the task carrying it out, once there is one) and exits with its outcome.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "cmd-batch.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "shell.h"
#include "util.h"

enum {
	OPT_NAMESPACE = CLI_OPT_LOCAL,
	OPT_SYSTEM,
	OPT_SERVICE,
	OPT_STATUS,
	OPT_CLUSTER,
	OPT_LIMIT,
	OPT_FROM,
	OPT_TO,
	OPT_TEMPLATE,
	OPT_SIZE,
	OPT_DISK,
	OPT_CLOUD_INIT,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_NO_START,
	OPT_YES,
	OPT_WAIT,
	OPT_CONFIRM_NAME,
	OPT_SELECTOR,
};

/* What the watcher reports (the vm_status type). */
static const char *const vm_status_values[] = {N_("RUNNING"), N_("STOPPED"), "STARTING",
					       "STOPPING",    "MIGRATING",   "PAUSED",
					       "FAILED",      "UNKNOWN",     NULL};

/* cloud-init user data is at most this long (the spec's limit). */
#define VM_CLOUD_INIT_MAX (64u * 1024)

static const struct cli_column vm_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("NAMESPACE"), N_("Namespace"), "namespace"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("SYSTEM"), N_("System"), "system", 0, ""},
	{N_("SERVICE"), N_("Service"), "service", 0, ""},
	{N_("SIZE"), N_("Size"), "size", 0, ""},
	{N_("CPUS"), N_("CPUs"), "cpus", COL_RIGHT},
	{N_("MEMORY"), N_("Memory"), "memory", 0, ""},
	{N_("CLUSTER"), N_("Cluster"), "cluster"},
	{N_("REV"), N_("Revision"), "revision", COL_RIGHT},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("ENVIRONMENT"), N_("Environment"), "environment", COL_WIDE},
	{N_("OWNER"), N_("Owner"), "owner", COL_WIDE, ""},
	{N_("TEMPLATE"), N_("Template"), "template", COL_WIDE, ""},
	{N_("NODE"), N_("Node"), "node", COL_WIDE, ""},
	{N_("IP"), N_("IP"), "ip", COL_WIDE, ""},
	{NULL},
};

static const struct cli_kind vm_kind = {"vm", N_("VMs"), "name", vm_columns};

static const struct cli_column revision_columns[] = {
	{N_("VERSION"), N_("Version"), "version", COL_RIGHT},
	{N_("AGE"), N_("Created"), "created_at", COL_AGE},
	{N_("BY"), N_("Created by"), "created_by", 0, ""},
	{N_("TICKET"), N_("Ticket"), "ticket_id", COL_RIGHT, ""},
	{N_("TASK"), N_("Task"), "execution_id", COL_RIGHT, ""},
	{N_("SIZE"), N_("Size"), "spec_size", COL_RIGHT},
	{N_("PLAN HASH"), N_("Plan hash"), "plan_hash", COL_WIDE, ""},
	{N_("SHA256"), N_("SHA-256"), "spec_sha256", COL_WIDE},
	{NULL},
};

static const struct cli_kind revision_kind = {"revision", N_("revisions"), "version",
					      revision_columns};

static const struct cli_column history_columns[] = {
	{N_("TIME"), N_("Time"), "at"},
	{N_("KIND"), N_("Kind"), "kind"},
	{N_("ID"), N_("ID"), "id", COL_RIGHT},
	{N_("ACTOR"), N_("Actor"), "actor", 0, ""},
	{N_("WHAT"), N_("What"), "what", COL_FLEX, ""},
	{N_("DETAILS"), N_("Details"), "details", COL_WIDE | COL_FLEX, ""},
	{NULL},
};

static const struct cli_kind history_kind = {"event", N_("history entries"), "id", history_columns};

/* ---- reads ------------------------------------------------------------------------------- */

static const struct cli_filter list_filters[] = {
	{OPT_NAMESPACE, "namespace"}, {OPT_SYSTEM, "system"},   {OPT_SERVICE, "service"},
	{OPT_STATUS, "status"},       {OPT_CLUSTER, "cluster"}, {0},
};

static int cmd_vm_list(int argc, char **argv, struct cli_ctx *ctx)
{
	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_VMS, &vm_kind, list_filters, OPT_LIMIT);
}

/* "/api/v1/vms/NAME" plus suffix (allocated). */
static char *vm_path(const char *name, const char *suffix)
{
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_VMS, name);

	return xasprintf("%s%s", base, suffix ? suffix : "");
}

/* "?namespace=NS" or "" (allocated). */
static char *ns_query(const char *ns)
{
	struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);

	cli_query_add(&q, "namespace", ns);
	char *s = xasprintf("%s%s", q.len ? "?" : "", q.buf);

	shp_buf_release(&q);
	return s;
}

/* The options of the reads that name one VM: --namespace (and --limit where it applies). */
static int read_opts(int argc, char **argv, struct cli_ctx *ctx, const char **ns, long *limit)
{
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE) {
			*ns = optarg;
		} else if (c == OPT_LIMIT && limit) {
			r = cli_parse_limit(ctx, optarg, limit);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The spec of a shown VM, as YAML under the detail view. */
static int show_spec(struct cli_ctx *ctx, const json_t *vm)
{
	const json_t *spec = json_object_get(vm, "spec");

	if (!json_is_object(spec))
		return 0;
	printf(_("\n%sSpec:%s\n"), ctx->color ? "\033[1m" : "", ctx->color ? "\033[0m" : "");
	return cli_render_yaml(stdout, spec);
}

static int cmd_vm_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *vm = NULL;
	_cleanup_free_ char *path = NULL, *q = NULL, *url = NULL;
	const char *ns = NULL;
	int r = read_opts(argc, argv, ctx, &ns, NULL);

	if (r < 0)
		return r;
	path = vm_path(argv[optind], NULL);
	q = ns_query(ns);
	url = xasprintf("%s%s", path, q);
	r = cli_call(ctx, "GET", url, NULL, &vm);
	if (r < 0)
		return r;
	r = cli_show_object(ctx, &vm_kind, vm);
	if (r == 0 && (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE))
		r = show_spec(ctx, vm);
	return r;
}

/* A list under the VM (revisions, history), every page. */
static int vm_sublist(int argc, char **argv, struct cli_ctx *ctx, const char *suffix,
		      const struct cli_kind *kind)
{
	_cleanup_(shp_buf_releasep) struct shp_buf query = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *items = NULL;
	_cleanup_free_ char *route = NULL;
	const char *ns = NULL;
	long limit = 0;
	int r = read_opts(argc, argv, ctx, &ns, &limit);

	if (r < 0)
		return r;
	route = vm_path(argv[optind], suffix);
	cli_query_add(&query, "namespace", ns);
	r = cli_list(ctx, route, query.buf, limit, kind->plural, &items);
	return r < 0 ? r : cli_show_list(ctx, kind, items);
}

static int cmd_vm_revisions(int argc, char **argv, struct cli_ctx *ctx)
{
	return vm_sublist(argc, argv, ctx, "/revisions", &revision_kind);
}

static int cmd_vm_history(int argc, char **argv, struct cli_ctx *ctx)
{
	return vm_sublist(argc, argv, ctx, "/history", &history_kind);
}

/* The unified diff, coloured on a terminal as git does: headers bold, hunks cyan. */
static void print_diff(const struct cli_ctx *ctx, const char *text)
{
	const char *line = text;

	while (*line) {
		size_t n = strcspn(line, "\n");
		const char *color = NULL;

		if (ctx->color) {
			if (strncmp(line, "--- ", 4) == 0 || strncmp(line, "+++ ", 4) == 0)
				color = "\033[1m";
			else if (line[0] == '@')
				color = "\033[36m";
			else if (line[0] == '+')
				color = "\033[32m";
			else if (line[0] == '-')
				color = "\033[31m";
		}
		_cleanup_free_ char *raw = xasprintf("%.*s", (int)n, line);
		_cleanup_free_ char *safe = cli_text_sanitize(raw);

		printf("%s%s%s\n", color ? color : "", safe, color ? "\033[0m" : "");
		line += n + (line[n] == '\n');
	}
}

static int cmd_vm_diff(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *d = NULL;
	_cleanup_free_ char *path = NULL, *url = NULL;
	const char *from = NULL, *to = NULL;
	long long v;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE)
			cli_query_add(&q, "namespace", optarg);
		else if (c == OPT_FROM || c == OPT_TO) {
			if (shp_parse_int(optarg, c == OPT_FROM ? 0 : 1, INT32_MAX, &v, NULL) < 0)
				return cli_usage_error(ctx,
						       _("--%s: '%s' is not a revision number"),
						       c == OPT_FROM ? "from" : "to", optarg);
			*(c == OPT_FROM ? &from : &to) = optarg;
		}
	}
	cli_query_add(&q, "from", from);
	cli_query_add(&q, "to", to);
	path = vm_path(argv[optind], "/diff");
	url = xasprintf("%s%s%s", path, q.len ? "?" : "", q.buf);
	r = cli_call(ctx, "GET", url, NULL, &d);
	if (r < 0)
		return r;
	if (ctx->format != CLI_FORMAT_TABLE && ctx->format != CLI_FORMAT_WIDE)
		return cli_show_raw(ctx, d);
	const char *text = shp_json_str(d, "diff");

	if (!text)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no diff"));
	if (!text[0])
		cli_note(ctx, _("revisions %" PRId64 " and %" PRId64 " have the same spec\n"),
			 shp_json_int(d, "from", 0), shp_json_int(d, "to", 0));
	print_diff(ctx, text);
	return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* What the mutating verbs share. */
struct req_opts {
	const char *ns;
	const char *confirm_name;
	const char *selector; /* power operations: a batch over the VMs it selects */
	bool yes;
	bool wait;
};

/* "request 12 CREATE_VM: PENDING_APPROVAL (ticket 7, approval level 2; task 3)" */
static void print_request(const struct cli_ctx *ctx, const json_t *r, const char *id_key)
{
	const json_t *ticket = json_object_get(r, "ticket_id");
	const json_t *task = json_object_get(r, "task_id");
	const char *st = shp_json_str(r, "status"), *ty = shp_json_str(r, "type");
	_cleanup_free_ char *status = cli_text_sanitize(st ? st : "?");
	_cleanup_free_ char *type = cli_text_sanitize(ty ? ty : "");

	if (ctx->quiet)
		return;
	printf(_("request %" PRId64 " %s: %s"), shp_json_int(r, id_key, 0), type, status);
	if (json_is_integer(ticket))
		printf(_(" (ticket %lld, approval level %" PRId64 ")"),
		       (long long)json_integer_value(ticket), shp_json_int(r, "approval_level", 0));
	if (json_is_integer(task))
		printf(_(", task %lld"), (long long)json_integer_value(task));
	printf("\n");
}

/* After a request was accepted: report it, and with --wait follow it to its end. */
static int request_done(struct cli_ctx *ctx, const json_t *answer, bool wait)
{
	_cleanup_(json_decrefp) json_t *final = NULL;
	int64_t id = shp_json_int(answer, "request_id", 0);
	char ids[24];
	int r;

	if (id <= 0)
		return shp_error_set(&ctx->err, SHP_E_PROTO,
				     _("unexpected answer from shepherdd: no request id"));
	if (!wait) {
		if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE) {
			print_request(ctx, answer, "request_id");
			return 0;
		}
		return cli_show_raw(ctx, answer);
	}
	if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE) {
		if (!ctx->quiet)
			print_request(ctx, answer, "request_id");
	}
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	r = cli_wait_final(ctx, _("request"), SHP_ROUTE_REQUESTS, ids, &final);
	if (r < 0)
		return r;
	if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE)
		print_request(ctx, final, "id");
	else if ((r = cli_show_raw(ctx, final)) < 0)
		return r;
	return cli_wait_outcome(ctx, _("request"), final);
}

/* The parameter a 400 CONFIRMATION_REQUIRED asks for ("confirm", "confirm_name"), or NULL. */
static const char *confirmation_needed(const struct cli_ctx *ctx)
{
	const json_t *e = json_object_get(ctx->error_body, "error");

	if (!e || !shp_json_str(e, "code") ||
	    strcmp(shp_json_str(e, "code"), "CONFIRMATION_REQUIRED") != 0)
		return NULL;
	const char *p = shp_json_str(json_object_get(e, "details"), "parameter");

	return p ? p : "confirm";
}

/* Say which flag the refused request needs; exit 7. */
static int confirmation_refused(struct cli_ctx *ctx, const char *param, const char *name)
{
	const json_t *details =
		json_object_get(json_object_get(ctx->error_body, "error"), "details");
	const char *env = shp_json_str(details, "environment");
	char what[SHP_ERROR_MSG_MAX];

	(void)snprintf(what, sizeof(what), "%s", ctx->err.msg);
	ctx->usage_hint = false;
	if (strcmp(param, "confirm_name") == 0)
		return shp_error_set(
			&ctx->err, SHP_E_INVAL,
			_("%s%s%s%s: pass --confirm-name %s (no prompt off a terminal)"), what,
			env ? " (" : "", env ? env : "", env ? ")" : "", name);
	return shp_error_set(&ctx->err, SHP_E_INVAL, _("%s%s%s%s: pass --yes"), what,
			     env ? " (" : "", env ? env : "", env ? ")" : "");
}

/* Ask on the terminal: the VM's name typed (confirm_name), or y/N. *ret: what to send. */
static int prompt_confirmation(struct cli_ctx *ctx, const char *param, const char *name, char **ret)
{
	_cleanup_free_ char *question = NULL, *answer = NULL, *flag = NULL;
	bool typed = strcmp(param, "confirm_name") == 0;
	char why[SHP_ERROR_MSG_MAX];
	int r;

	(void)snprintf(why, sizeof(why), "%s", ctx->err.msg);
	*ret = NULL;
	if (!typed) {
		question = xasprintf(_("Delete VM '%s'? [y/N] "), name);
		return cli_prompt_yes(ctx, question, why, "--yes", _("not deleted"));
	}
	question =
		xasprintf(_("Deleting VM '%s' cannot be undone. Type its name to go on: "), name);
	flag = xasprintf("--confirm-name %s", name);
	r = cli_prompt(ctx, question, why, flag, &answer);
	if (r < 0)
		return r;
	if (strcmp(answer, name) != 0) {
		ctx->exit_status = SHP_EXIT_FAILURE;
		return shp_error_set(&ctx->err, SHP_E_INTERNAL,
				     _("not deleted: the name typed does not match"));
	}
	*ret = TAKE_PTR(answer);
	return 0;
}

/* Send one request; a refusal for want of confirmation names the flag that gives it. */
static int submit(struct cli_ctx *ctx, const char *method, const char *url, const json_t *body,
		  const char *name, json_t **ret)
{
	int r = cli_call(ctx, method, url, body, ret);
	const char *param;

	if (r < 0 && (param = confirmation_needed(ctx)))
		return confirmation_refused(ctx, param, name);
	return r;
}

static void body_set_new(json_t *body, const char *key, json_t *value)
{
	if (!value || json_object_set_new(body, key, value) < 0)
		abort(); /* out of memory */
}

/* --disk NAME=SIZE[:CLASS] into {"name", "size", "storage_class"?}. */
static int parse_disk(struct cli_ctx *ctx, const char *s, json_t *disks)
{
	const char *eq = strchr(s, '=');
	_cleanup_free_ char *name = NULL, *size = NULL;
	const char *colon;

	if (!eq || eq == s || !eq[1])
		return cli_usage_error(ctx, _("--disk '%s': expected NAME=SIZE[:STORAGE-CLASS]"),
				       s);
	name = xasprintf("%.*s", (int)(eq - s), s);
	colon = strchr(eq + 1, ':');
	size = colon ? xasprintf("%.*s", (int)(colon - eq - 1), eq + 1) : xstrdup(eq + 1);
	if (!size[0] || (colon && !colon[1]))
		return cli_usage_error(ctx, _("--disk '%s': expected NAME=SIZE[:STORAGE-CLASS]"),
				       s);
	json_t *d = json_object();

	body_set_new(d, "name", json_string(name));
	body_set_new(d, "size", json_string(size));
	if (colon)
		body_set_new(d, "storage_class", json_string(colon + 1));
	if (!json_string_value(json_object_get(d, "name")) ||
	    !json_string_value(json_object_get(d, "size"))) {
		json_decref(d);
		return shp_error_set(&ctx->err, SHP_E_INVAL, _("--disk '%s' is not valid UTF-8"),
				     s);
	}
	if (json_array_append_new(disks, d) < 0)
		abort();
	return 0;
}

/* The contents of --cloud-init FILE (at most VM_CLOUD_INIT_MAX bytes). */
static int read_cloud_init(struct cli_ctx *ctx, const char *file, char **ret)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(VM_CLOUD_INIT_MAX);
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
	char chunk[4096];
	ssize_t n;

	if (fd < 0)
		return shp_error_errno(&ctx->err, errno, _("cannot open '%s'"), file);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (shp_buf_addn(&b, chunk, (size_t)n) < 0)
			return shp_error_set(
				&ctx->err, SHP_E_INVAL,
				_("'%s' is larger than the %u bytes cloud-init may have"), file,
				VM_CLOUD_INIT_MAX);
	if (n < 0)
		return shp_error_errno(&ctx->err, errno, _("cannot read '%s'"), file);
	*ret = shp_buf_detach(&b, NULL);
	return 0;
}

/* Options of create and modify: each sets a member of the body. */
static int spec_opt(struct cli_ctx *ctx, int c, const char *arg, json_t *body, json_t *disks,
		    struct req_opts *o)
{
	_cleanup_free_ char *text = NULL;
	long long v;
	int r;

	switch (c) {
	case OPT_NAMESPACE: o->ns = arg; return 0;
	case OPT_YES: o->yes = true; return 0;
	case OPT_WAIT: o->wait = true; return 0;
	case OPT_NO_START: body_set_new(body, "run", json_false()); return 0;
	case OPT_SERVICE: return cli_body_set(ctx, body, "service", arg);
	case OPT_TEMPLATE: return cli_body_set(ctx, body, "template", arg);
	case OPT_SIZE: return cli_body_set(ctx, body, "size", arg);
	case OPT_CLUSTER: return cli_body_set(ctx, body, "cluster", arg);
	case OPT_MEMORY: return cli_body_set(ctx, body, "memory", arg);
	case OPT_DISK: return parse_disk(ctx, arg, disks);
	case OPT_CPUS:
		if (shp_parse_int(arg, 1, 1024, &v, NULL) < 0)
			return cli_usage_error(
				ctx, _("--cpus: '%s' is not a number of CPUs (1..1024)"), arg);
		body_set_new(body, "cpus", json_integer(v));
		return 0;
	case OPT_CLOUD_INIT:
		r = read_cloud_init(ctx, arg, &text);
		return r < 0 ? r : cli_body_set(ctx, body, "cloud_init", text);
	default: return 0;
	}
}

static int parse_spec_opts(int argc, char **argv, struct cli_ctx *ctx, json_t *body,
			   struct req_opts *o)
{
	_cleanup_(json_decrefp) json_t *disks = json_array();
	int c, r;

	if (!disks)
		abort();
	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		r = spec_opt(ctx, c, optarg, body, disks, o);
		if (r < 0)
			return r;
	}
	if (json_array_size(disks) > 0)
		body_set_new(body, "disks", json_incref(disks));
	if (o->yes)
		body_set_new(body, "confirm", json_true());
	return 0;
}

static int cmd_vm_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *answer = NULL;
	struct req_opts o = {0};
	int r = parse_spec_opts(argc, argv, ctx, body, &o);

	if (r < 0 || (r = cli_body_set(ctx, body, "name", argv[optind])) < 0 ||
	    (r = cli_body_set(ctx, body, "namespace", o.ns)) < 0)
		return r;
	r = submit(ctx, "POST", SHP_ROUTE_VMS, body, argv[optind], &answer);
	return r < 0 ? r : request_done(ctx, answer, o.wait);
}

static int cmd_vm_modify(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *answer = NULL;
	_cleanup_free_ char *path = NULL, *q = NULL, *url = NULL;
	struct req_opts o = {0};
	int r = parse_spec_opts(argc, argv, ctx, body, &o);

	if (r < 0)
		return r;
	if (json_object_size(body) == (o.yes ? 1u : 0u))
		return cli_usage_error(ctx, _("nothing to change: give --size, --cpus, --memory or "
					      "--disk"));
	path = vm_path(argv[optind], NULL);
	q = ns_query(o.ns);
	url = xasprintf("%s%s", path, q);
	r = submit(ctx, "PATCH", url, body, argv[optind], &answer);
	return r < 0 ? r : request_done(ctx, answer, o.wait);
}

static int parse_req_opts(int argc, char **argv, struct cli_ctx *ctx, struct req_opts *o)
{
	int c;

	while ((c = cli_getopt(ctx, argc, argv)) != -1) {
		if (c == OPT_NAMESPACE)
			o->ns = optarg;
		else if (c == OPT_YES)
			o->yes = true;
		else if (c == OPT_WAIT)
			o->wait = true;
		else if (c == OPT_CONFIRM_NAME)
			o->confirm_name = optarg;
		else if (c == OPT_SELECTOR)
			o->selector = optarg;
	}
	return 0;
}

/* DELETE with the confirmation given so far (typed: the name typed at the prompt). */
static int delete_call(struct cli_ctx *ctx, const char *name, const struct req_opts *o,
		       const char *typed, bool yes, json_t **ret)
{
	_cleanup_(shp_buf_releasep) struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_free_ char *path = vm_path(name, NULL), *url = NULL;

	cli_query_add(&q, "namespace", o->ns);
	cli_query_add(&q, "confirm", yes ? "true" : NULL);
	cli_query_add(&q, "confirm_name", typed ? typed : o->confirm_name);
	url = xasprintf("%s%s%s", path, q.len ? "?" : "", q.buf);
	return cli_call(ctx, "DELETE", url, NULL, ret);
}

/*
 * A delete asks for what the environment's rule wants: on a terminal the name typed (prod)
 * or a y/N (test) when no flag gave it; off a terminal never, the error names the flag.
 */
static int cmd_vm_delete(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *answer = NULL;
	_cleanup_free_ char *typed = NULL;
	struct req_opts o = {0};
	int r = parse_req_opts(argc, argv, ctx, &o);
	const char *name = argv[optind], *param;

	if (r < 0)
		return r;
	r = delete_call(ctx, name, &o, NULL, o.yes, &answer);
	if (r < 0 && (param = confirmation_needed(ctx))) {
		if (o.yes || o.confirm_name) /* the flags given are not enough: no question */
			return confirmation_refused(ctx, param, name);
		r = prompt_confirmation(ctx, param, name, &typed);
		if (r < 0)
			return r;
		shp_error_clear(&ctx->err);
		bool typed_name = strcmp(param, "confirm_name") == 0;

		r = delete_call(ctx, name, &o, typed_name ? typed : NULL, !typed_name || o.yes,
				&answer);
		if (r < 0 && (param = confirmation_needed(ctx)))
			return confirmation_refused(ctx, param, name);
	}
	return r < 0 ? r : request_done(ctx, answer, o.wait);
}

static int power(int argc, char **argv, struct cli_ctx *ctx, const char *op)
{
	_cleanup_(json_decrefp) json_t *body = json_object();
	_cleanup_(json_decrefp) json_t *answer = NULL;
	_cleanup_free_ char *path = NULL, *q = NULL, *url = NULL, *suffix = NULL;
	struct req_opts o = {0};
	int r = parse_req_opts(argc, argv, ctx, &o);

	if (r < 0)
		return r;
	if (o.selector && optind < argc)
		return cli_usage_error(ctx, _("name a VM or give --selector, not both"));
	if (o.selector)
		return cli_batch_power(ctx, op, o.selector, o.yes, o.wait);
	if (optind >= argc)
		return cli_usage_error(ctx, _("name a VM, or select VMs with --selector"));
	if (o.yes)
		body_set_new(body, "confirm", json_true());
	suffix = xasprintf("/%s", op);
	path = vm_path(argv[optind], suffix);
	q = ns_query(o.ns);
	url = xasprintf("%s%s", path, q);
	r = submit(ctx, "POST", url, body, argv[optind], &answer);
	return r < 0 ? r : request_done(ctx, answer, o.wait);
}

static int cmd_vm_start(int argc, char **argv, struct cli_ctx *ctx)
{
	return power(argc, argv, ctx, "start");
}

static int cmd_vm_stop(int argc, char **argv, struct cli_ctx *ctx)
{
	return power(argc, argv, ctx, "stop");
}

static int cmd_vm_restart(int argc, char **argv, struct cli_ctx *ctx)
{
	return power(argc, argv, ctx, "restart");
}

/* ---- the table ----------------------------------------------------------------------------- */

#define F_NAMESPACE(help)                                                                          \
	{                                                                                          \
		"namespace", OPT_NAMESPACE, 0, NULL, "NS", help, .names = CLI_NAMES_NAMESPACE      \
	}
#define F_WAIT                                                                                     \
	{                                                                                          \
		"wait", OPT_WAIT, 0, NULL, NULL,                                                   \
			N_("follow the request to its end; exit with its outcome")                 \
	}
#define F_YES                                                                                      \
	{                                                                                          \
		"yes", OPT_YES, 0, NULL, NULL,                                                     \
			N_("confirm the request (what a policy of level 1 asks of the requester)") \
	}

static const struct shp_flag list_flags[] = {
	F_NAMESPACE(N_("only VMs of this namespace")),
	{"system", OPT_SYSTEM, 0, NULL, "SYSTEM", N_("only VMs of this system"),
	 .names = CLI_NAMES_SYSTEM},
	{"service", OPT_SERVICE, 0, NULL, "SERVICE", N_("only VMs of this service"),
	 .names = CLI_NAMES_SERVICE},
	{"status", OPT_STATUS, 0, NULL, "STATUS", N_("only VMs in this status"), vm_status_values},
	{"cluster", OPT_CLUSTER, 0, NULL, "CLUSTER", N_("only VMs on this cluster"),
	 .names = CLI_NAMES_CLUSTER},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N VMs")},
	{NULL},
};

static const struct shp_flag one_vm_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	{NULL},
};

static const struct shp_flag sublist_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N entries")},
	{NULL},
};

static const struct shp_flag diff_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	{"from", OPT_FROM, 0, NULL, "N", N_("the older revision (default: the one before --to)")},
	{"to", OPT_TO, 0, NULL, "M", N_("the newer revision (default: the latest)")},
	{NULL},
};

#define SPEC_FLAGS                                                                                 \
	{"cpus", OPT_CPUS, 0, NULL, "N", N_("the number of CPUs, instead of the size's")},         \
		{"memory", OPT_MEMORY, 0,                                                          \
		 NULL,     "QUANTITY", N_("memory, instead of the size's (8Gi, 512Mi)")},          \
	{                                                                                          \
		"disk", OPT_DISK, 0, NULL, "NAME=SIZE[:CLASS]",                                    \
			N_("an extra disk (repeat for more; at most 8)")                           \
	}

static const struct shp_flag create_flags[] = {
	{"namespace", OPT_NAMESPACE, 0, NULL, "NS", N_("the namespace of the VM"), .required = true,
	 .names = CLI_NAMES_NAMESPACE},
	{"service", OPT_SERVICE, 0, NULL, "SERVICE", N_("the service the VM belongs to"),
	 .required = true, .names = CLI_NAMES_SERVICE},
	{"template", OPT_TEMPLATE, 0, NULL, "TEMPLATE", N_("the template to build it from"),
	 .required = true, .names = CLI_NAMES_TEMPLATE},
	{"size", OPT_SIZE, 0, NULL, "SIZE", N_("the instance size"), .required = true,
	 .names = CLI_NAMES_SIZE},
	SPEC_FLAGS,
	{"cloud-init", OPT_CLOUD_INIT, 0, NULL, "FILE",
	 N_("cloud-init user data (YAML, at most 64 KiB) instead of the template's"), .file = true},
	{"cluster", OPT_CLUSTER, 0, NULL, "CLUSTER",
	 N_("the preferred cluster (the approver decides)"), .names = CLI_NAMES_CLUSTER},
	{"no-start", OPT_NO_START, 0, NULL, NULL, N_("do not start the VM once it is created")},
	F_YES,
	F_WAIT,
	{NULL},
};

static const struct shp_flag modify_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	{"size", OPT_SIZE, 0, NULL, "SIZE", N_("another instance size"), .names = CLI_NAMES_SIZE},
	SPEC_FLAGS,
	F_YES,
	F_WAIT,
	{NULL},
};

static const struct shp_flag delete_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	F_YES,
	{"confirm-name", OPT_CONFIRM_NAME, 0, NULL, "NAME",
	 N_("the VM's name again, which deleting a VM in prod needs")},
	F_WAIT,
	{NULL},
};

static const struct shp_flag power_flags[] = {
	F_NAMESPACE(N_("the VM's namespace, when its name is in several")),
	{"selector", OPT_SELECTOR, 0, NULL, "SEL",
	 N_("every VM the selector picks, as one batch (namespace=, system=, service=, "
	    "cluster=, status=, name= a glob; terms joined by commas)")},
	F_YES,
	F_WAIT,
	{NULL},
};

static const struct shp_subcmd vm_verbs[] = {
	{"create", cmd_vm_create, 1, 1,
	 "NAME --namespace NS --service SVC --template T --size S [--disk NAME=SIZE[:CLASS]]... "
	 "[--cloud-init FILE] [--cluster C] [--cpus N] [--memory Q] [--no-start] [--yes] [--wait]",
	 CMD_NEEDS_DAEMON, N_("request a new VM"),
	 N_("Request a new VM built from a template in an instance size, for a service of a system "
	    "you belong to. The approval policy of the namespace's environment decides whether it "
	    "is created at once or waits for an approver."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."),
	 create_flags},
	{"delete", cmd_vm_delete, 1, 1,
	 "NAME [--namespace NS] [--yes] [--confirm-name NAME] [--wait]", CMD_NEEDS_DAEMON,
	 N_("request the deletion of a VM"),
	 N_("Request the deletion of a VM. A test VM needs --yes, a prod VM its name again "
	    "(--confirm-name); on a terminal shepherd asks for what is missing, anywhere else it "
	    "refuses (exit 2) and names the option."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."),
	 delete_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"diff", cmd_vm_diff, 1, 1, "NAME [--namespace NS] [--from N] [--to M]",
	 CMD_NEEDS_DAEMON | CMD_READONLY, N_("show how two revisions of a VM's spec differ"),
	 N_("Show the unified diff of the specs (YAML) of two revisions of a VM: by default the "
	    "latest against the one before it. Coloured on a terminal."),
	 diff_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"history", cmd_vm_history, 1, 1, "NAME [--namespace NS] [--limit N]",
	 CMD_NEEDS_DAEMON | CMD_READONLY, N_("show everything that happened to a VM"),
	 N_("One time-ordered list of a VM's requests, the approvers' decisions (with the plan "
	    "hash "
	    "they approved), the tasks that carried them out, its revisions and the status changes "
	    "the watcher saw."),
	 sublist_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"list", cmd_vm_list, 0, 0,
	 "[--namespace NS] [--system SYSTEM] [--service SVC] [--status STATUS] [--cluster C] "
	 "[--limit N]",
	 CMD_NEEDS_DAEMON | CMD_READONLY, N_("list the VMs you may see"),
	 N_("List the active VMs you may see: those of your systems, or every system's in the "
	    "environments where you approve or operate."),
	 list_flags},
	{"modify", cmd_vm_modify, 1, 1,
	 "NAME [--namespace NS] [--size S] [--cpus N] [--memory Q] [--disk NAME=SIZE[:CLASS]]... "
	 "[--yes] [--wait]",
	 CMD_NEEDS_DAEMON, N_("request a change to a VM"),
	 N_("Request a change of a VM's size, CPUs, memory or disks."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."),
	 modify_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"restart", cmd_vm_restart, 0, 1,
	 "[NAME] [--namespace NS] [--selector SEL] [--yes] [--wait]", CMD_NEEDS_DAEMON,
	 N_("request a restart of a VM"),
	 N_("Request a restart of a VM."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."
	    " With --selector instead of NAME it asks the same of every VM the selector picks "
	    "(terms "
	    "key=value joined by commas over namespace, system, service, cluster, status and name, "
	    "a "
	    "glob), as one batch: see shepherd batch."),
	 power_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"revisions", cmd_vm_revisions, 1, 1, "NAME [--namespace NS] [--limit N]",
	 CMD_NEEDS_DAEMON | CMD_READONLY, N_("list the revisions of a VM's spec"),
	 N_("List the revisions of a VM's spec, one for each change carried out, with the ticket, "
	    "task and plan hash behind it."),
	 sublist_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"show", cmd_vm_show, 1, 1, "NAME [--namespace NS]", CMD_NEEDS_DAEMON | CMD_READONLY,
	 N_("show a VM and its spec"),
	 N_("Show a VM: its status as the watcher last saw it, where it runs, who owns it, its "
	    "template, size and resources, and its current spec. A name used in several namespaces "
	    "needs --namespace."),
	 one_vm_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"start", cmd_vm_start, 0, 1, "[NAME] [--namespace NS] [--selector SEL] [--yes] [--wait]",
	 CMD_NEEDS_DAEMON, N_("request the start of a VM"),
	 N_("Request the start of a stopped VM."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."
	    " With --selector instead of NAME it asks the same of every VM the selector picks "
	    "(terms "
	    "key=value joined by commas over namespace, system, service, cluster, status and name, "
	    "a "
	    "glob), as one batch: see shepherd batch."),
	 power_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{"stop", cmd_vm_stop, 0, 1, "[NAME] [--namespace NS] [--selector SEL] [--yes] [--wait]",
	 CMD_NEEDS_DAEMON, N_("request the stop of a VM"),
	 N_("Request the stop of a running VM."
	    " It prints the request's id, its ticket when it needs approval, and its status; with "
	    "--wait it follows the request (and the task carrying it out) to its end, and the exit "
	    "status is its outcome: 0 completed, 1 failed, 5 rejected, 6 cancelled, 9 expired."
	    " With --selector instead of NAME it asks the same of every VM the selector picks "
	    "(terms "
	    "key=value joined by commas over namespace, system, service, cluster, status and name, "
	    "a "
	    "glob), as one batch: see shepherd batch."),
	 power_flags, .args_complete = CLI_COMPLETE_NAMES, .arg_names = CLI_NAMES_VM},
	{NULL},
};

const struct shp_cmd cmd_vm = {
	.name = "vm",
	.summary = N_("see VMs and request changes to them"),
	.description = N_("VMs belong to a service of a system. Their members see them and request "
			  "changes, which an approval policy may send to an approver first; every "
			  "change carried out leaves a revision of the VM's spec."),
	.subcmds = vm_verbs,
};
