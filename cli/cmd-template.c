/*
 * shepherd template: the VM templates of the catalogue and their versions: list, show, create a
 * version from a file in the seed format, publish, deprecate, archive, and export a version
 * in the seed format (which create reads back).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"
#include "yaml.h"

#define TEMPLATE_FILE_MAX (1u << 20) /* what the seed import reads too */

enum {
	OPT_STATUS = CLI_OPT_LOCAL,
	OPT_ALL,
	OPT_LIMIT,
	OPT_VERSION,
};

static const char *const status_values[] = {"draft", "active", "deprecated", "archived", NULL};

static char *image_cell(const json_t *t, int64_t now)
{
	const json_t *src = json_object_get(t, "image_source");
	const char *type = shp_json_str(src, "type");
	const char *where = shp_json_str(src, "image");

	if (!where)
		where = shp_json_str(src, "registry");
	if (!where)
		where = shp_json_str(src, "url");
	if (!where)
		where = shp_json_str(src, "name");
	return xasprintf("%s %s", type ? type : "?", where ? where : "");
}

static char *versions_cell(const json_t *t, int64_t now)
{
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(CLI_BUF_MAX);
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(t, "versions"), i, v)
	{
		xbuf_addf(&b, "%s%lld (%s)", i ? ", " : "",
			  (long long)json_integer_value(json_object_get(v, "version")),
			  shp_json_str(v, "status") ? shp_json_str(v, "status") : "?");
	}
	return b.len ? shp_buf_detach(&b, NULL) : xstrdup(_("<none>"));
}

static const struct cli_column template_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("VERSION"), N_("Version"), "version", COL_RIGHT},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("OS"), N_("OS"), "os", 0, ""},
	{N_("IMAGE"), N_("Image"), NULL, COL_FLEX, NULL, image_cell},
	{N_("DESCRIPTION"), N_("Description"), "description", COL_WIDE | COL_FLEX, ""},
	{N_("SOURCE"), N_("Source"), "source", COL_WIDE},
	{N_("CREATED BY"), N_("Created by"), "created_by", COL_WIDE},
	{N_("AGE"), N_("Created"), "created_at", COL_WIDE | COL_AGE},
	{N_("PUBLISHED"), N_("Published"), "published_at", COL_WIDE | COL_WHEN, N_("never")},
	{NULL},
};

/* The detail view adds every version. */
static const struct cli_column template_detail_columns[] = {
	{N_("NAME"), N_("Name"), "name"},
	{N_("VERSION"), N_("Version"), "version"},
	{N_("STATUS"), N_("Status"), "status"},
	{N_("OS"), N_("OS"), "os", 0, ""},
	{N_("IMAGE"), N_("Image"), NULL, 0, NULL, image_cell},
	{N_("DESCRIPTION"), N_("Description"), "description", 0, ""},
	{N_("SOURCE"), N_("Source"), "source"},
	{N_("CREATED BY"), N_("Created by"), "created_by"},
	{N_("CREATED"), N_("Created"), "created_at", COL_WHEN},
	{N_("PUBLISHED"), N_("Published"), "published_at", COL_WHEN, N_("never")},
	{N_("DEPRECATED"), N_("Deprecated"), "deprecated_at", COL_WHEN, N_("never")},
	{N_("ARCHIVED"), N_("Archived"), "archived_at", COL_WHEN, N_("never")},
	{N_("VERSIONS"), N_("Versions"), NULL, 0, NULL, versions_cell},
	{NULL},
};

static const struct cli_kind template_kind = {"template", N_("templates"), "name",
					      template_columns};
static const struct cli_kind template_detail = {"template", N_("templates"), "name",
						template_detail_columns};

static int cmd_template_list(int argc, char **argv, struct cli_ctx *ctx)
{
	static const struct cli_filter filters[] = {
		{OPT_STATUS, "status"}, {OPT_ALL, "all", "true"}, {0}};

	return cli_filtered_list(argc, argv, ctx, SHP_ROUTE_TEMPLATES, &template_kind, filters,
				 OPT_LIMIT);
}

/* route/NAME[/suffix][?version=N] (allocated). */
static char *template_path(const char *name, const char *suffix, const char *version,
			   const char *extra_query)
{
	_cleanup_(shp_buf_releasep) struct shp_buf q = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_free_ char *base = cli_path(SHP_ROUTE_TEMPLATES, name);

	cli_query_add(&q, "version", version);
	if (extra_query) {
		xbuf_add(&q, q.len ? "&" : "");
		xbuf_add(&q, extra_query);
	}
	return xasprintf("%s%s%s%s", base, suffix ? suffix : "", q.len ? "?" : "", q.buf);
}

static int check_version(struct cli_ctx *ctx, const char *v)
{
	long long n;

	if (v && shp_parse_int(v, 1, INT32_MAX, &n, NULL) < 0)
		return cli_usage_error(
			ctx, _("--template-version: a version number (1, 2, ...), not '%s'"), v);
	return 0;
}

static int cmd_template_show(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	_cleanup_free_ char *path = NULL;
	const char *version = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_VERSION)
			version = optarg;
	if ((r = check_version(ctx, version)) < 0)
		return r;
	path = template_path(argv[optind], NULL, version, NULL);
	if ((r = cli_call(ctx, "GET", path, NULL, &t)) < 0)
		return r;
	r = cli_show_object(ctx, &template_detail, t);
	if (r == 0 && (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE) &&
	    shp_json_str(t, "cloud_init") && *shp_json_str(t, "cloud_init"))
		printf(_("Cloud-init:\n%s"), shp_json_str(t, "cloud_init"));
	return r;
}

/* What the daemon checked before it stored the version, on stderr. */
static void note_validation(struct cli_ctx *ctx, const json_t *t)
{
	const json_t *v = json_object_get(t, "validation");
	const json_t *dry = json_object_get(v, "dry_run");

	if (json_is_true(json_object_get(v, "rendered")))
		cli_note(ctx, _("Rendered with size '%s'.\n"),
			 shp_json_str(v, "rendered_with_size") ?: "?");
	if (json_is_true(json_object_get(dry, "ran")))
		cli_note(ctx, _("Dry run on cluster '%s': accepted.\n"),
			 shp_json_str(dry, "cluster") ?: "?");
	else if (dry)
		cli_note(ctx, _("No dry run%s%s: %s.\n"),
			 shp_json_str(dry, "cluster") ? " on " : "",
			 shp_json_str(dry, "cluster") ?: "", shp_json_str(dry, "reason") ?: "?");
}

static int cmd_template_create(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = NULL, *t = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if ((r = cli_read_yaml_object(ctx, argv[optind], TEMPLATE_FILE_MAX,
				      "a template (a mapping of its fields)", &body)) < 0 ||
	    (r = cli_call(ctx, "POST", SHP_ROUTE_TEMPLATES, body, &t)) < 0)
		return r;
	note_validation(ctx, t);
	if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE) {
		if (!ctx->quiet)
			printf(_("template/%s version %lld created (draft)\n"),
			       shp_json_str(t, "name") ?: "?",
			       (long long)shp_json_int(t, "version", 0));
		return 0;
	}
	return cli_show_object(ctx, &template_kind, t);
}

/* publish, deprecate, archive: POST route/NAME/verb {"version": N}. */
static int template_move(int argc, char **argv, struct cli_ctx *ctx, const char *verb,
			 const char *done)
{
	_cleanup_(json_decrefp) json_t *body = NULL, *t = NULL;
	_cleanup_free_ char *path = NULL, *suffix = xasprintf("/%s", verb);
	const char *version = NULL;
	long long n;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_VERSION)
			version = optarg;
	if (!version || shp_parse_int(version, 1, INT32_MAX, &n, NULL) < 0)
		return cli_usage_error(ctx, _("--template-version: a version number (1, 2, ...)"));
	body = json_pack("{s:I}", "version", (json_int_t)n);
	path = template_path(argv[optind], suffix, NULL, NULL);
	if ((r = cli_call(ctx, "POST", path, body, &t)) < 0)
		return r;
	if (ctx->format == CLI_FORMAT_TABLE || ctx->format == CLI_FORMAT_WIDE) {
		if (!ctx->quiet)
			printf(_("template/%s version %lld %s\n"), argv[optind], n, done);
		return 0;
	}
	return cli_show_object(ctx, &template_kind, t);
}

static int cmd_template_publish(int argc, char **argv, struct cli_ctx *ctx)
{
	return template_move(argc, argv, ctx, "publish", "published");
}

static int cmd_template_deprecate(int argc, char **argv, struct cli_ctx *ctx)
{
	return template_move(argc, argv, ctx, "deprecate", "deprecated");
}

static int cmd_template_archive(int argc, char **argv, struct cli_ctx *ctx)
{
	return template_move(argc, argv, ctx, "archive", "archived");
}

static const char *const export_order[] = {
	"name",         "description",     "os", "image_source", "cloud_init",
	"quick_fields", "advanced_fields",
};

/* The seed-format document: YAML on stdout (JSON with -o json). */
static int cmd_template_export(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(shp_buf_releasep) struct shp_buf y = SHP_BUF_INIT(CLI_BUF_MAX);
	_cleanup_(json_decrefp) json_t *doc = NULL;
	_cleanup_free_ char *path = NULL;
	const char *version = NULL;
	int c, r;

	while ((c = cli_getopt(ctx, argc, argv)) != -1)
		if (c == OPT_VERSION)
			version = optarg;
	if ((r = check_version(ctx, version)) < 0)
		return r;
	path = template_path(argv[optind], "/export", version, "format=json");
	if ((r = cli_call(ctx, "GET", path, NULL, &doc)) < 0)
		return r;
	if (ctx->format == CLI_FORMAT_JSON)
		return cli_show_raw(ctx, doc);
	/* the seed format's order, name first (the emitter alone sorts keys) */
	for (size_t i = 0; i < SHP_ARRAY_SIZE(export_order); i++) {
		json_t *v = json_object_get(doc, export_order[i]);
		_cleanup_(json_decrefp) json_t *one =
			v ? json_pack("{s:O}", export_order[i], v) : NULL;

		if (one && shp_json_to_yaml(one, &y, &ctx->err) < 0)
			return -ctx->err.code;
	}
	fputs(y.buf, stdout);
	return 0;
}

static const struct shp_flag list_flags[] = {
	{"status", OPT_STATUS, 0, NULL, "STATUS", N_("only versions in this status"),
	 status_values},
	{"all", OPT_ALL, 0, NULL, NULL, N_("also archived versions")},
	{"limit", OPT_LIMIT, 0, NULL, "N", N_("show at most N versions")},
	{NULL},
};

static const struct shp_flag version_flags[] = {
	{"template-version", OPT_VERSION, 0, NULL, "N",
	 N_("this version (default: the active one, else the latest)")},
	{NULL},
};

static const struct shp_flag move_flags[] = {
	{"template-version", OPT_VERSION, 0, NULL, "N", N_("the version"), .required = true},
	{NULL},
};

static const struct shp_subcmd template_verbs[] = {
	{
		.name = "archive",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TEMPLATE,
		.fn = cmd_template_archive,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --template-version N",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("archive a version of a template"),
		.description =
			N_("Archive version N of the template NAME: it is hidden from lists "
			   "(unless --all) and never used for new VMs. Administrators only."),
		.opts = move_flags,
	},
	{
		.name = "create",
		.fn = cmd_template_create,
		.min_args = 1,
		.max_args = 1,
		.usage = "FILE",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("create the next version of a template from a file"),
		.description = N_(
			"Read a template in the seed format from FILE ('-': standard input; see "
			"docs/seed-format.md: name, description, os, image_source, cloud_init, "
			"quick_fields, advanced_fields) and create it as the next version of its "
			"name, as a draft. shepherdd checks the fields, the cloud-init's YAML "
			"syntax (errors give the line), renders the VM with the smallest enabled "
			"size and asks a HEALTHY cluster for a dry run; what ran is said on "
			"stderr. "
			"Publish the version to make it the one new VMs get. Administrators only."),
		.opts = NULL,
	},
	{
		.name = "deprecate",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TEMPLATE,
		.fn = cmd_template_deprecate,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --template-version N",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("deprecate a version of a template"),
		.description =
			N_("Deprecate version N of the template NAME: new VMs can no longer "
			   "be requested with it; existing ones keep it. Administrators only."),
		.opts = move_flags,
	},
	{
		.name = "export",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TEMPLATE,
		.fn = cmd_template_export,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--template-version N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("print a template in the seed format"),
		.description =
			N_("Print the template NAME (its active version, else the latest, or "
			   "--template-version N) as a YAML file in the seed format, which "
			   "'shepherd template create' and the seed import read back."),
		.opts = version_flags,
	},
	{
		.name = "list",
		.fn = cmd_template_list,
		.min_args = 0,
		.max_args = 0,
		.usage = "[--status STATUS] [--all] [--limit N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the versions of every template"),
		.description =
			N_("List every template version with its status (draft, active, "
			   "deprecated), ordered by name and version; archived versions only "
			   "with --all or --status archived."),
		.opts = list_flags,
	},
	{
		.name = "publish",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TEMPLATE,
		.fn = cmd_template_publish,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME --template-version N",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("make a version the active one"),
		.description = N_("Make version N of the template NAME active: new VMs get it. The "
				  "version active before becomes deprecated. Administrators only."),
		.opts = move_flags,
	},
	{
		.name = "show",
		.args_complete = CLI_COMPLETE_NAMES,
		.arg_names = CLI_NAMES_TEMPLATE,
		.fn = cmd_template_show,
		.min_args = 1,
		.max_args = 1,
		.usage = "NAME [--template-version N]",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("show a template"),
		.description = N_(
			"Show the template NAME: its active version (else the latest, or "
			"--template-version N), its image, cloud-init and every version's status."),
		.opts = version_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_template = {
	.name = "template",
	.summary = N_("the VM templates of the catalogue"),
	.description = N_("A template says what a VM boots: its image (a container disk, a disk "
			  "imported from a URL or registry, or an existing claim) and its default "
			  "cloud-init. Each change is a new version: a draft, then active (one per "
			  "template), deprecated, archived. Requests name a template and get its "
			  "active version."),
	.subcmds = template_verbs,
};
