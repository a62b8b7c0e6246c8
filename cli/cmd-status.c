/*
 * shepherd status: the daemon's health in a few lines (GET /api/v1/status): its process, its
 * database and connection pool, and the schema migrations.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"

/* A member of a nested object as text: a string, a number, or "?". */
static char *field(const json_t *st, const char *path)
{
	const json_t *v = cli_json_path(st, path);

	if (json_is_string(v))
		return cli_text_sanitize(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? _("yes") : _("no"));
	return xstrdup("?");
}

static char *daemon_line(const json_t *st)
{
	_cleanup_free_ char *version = field(st, "daemon.version");
	_cleanup_free_ char *pid = field(st, "daemon.pid");
	_cleanup_free_ char *since = field(st, "daemon.started_at");
	char up[32];

	cli_format_age(shp_json_int(json_object_get(st, "daemon"), "uptime_seconds", 0), up,
		       sizeof(up));
	return xasprintf(_("shepherdd %s, pid %s, up %s (since %s)"), version, pid, up, since);
}

static char *database_line(const json_t *st)
{
	const json_t *reachable = cli_json_path(st, "database.reachable");
	const json_t *embedded = cli_json_path(st, "database.embedded");
	_cleanup_free_ char *version = field(st, "database.server_version");

	if (!json_is_true(reachable))
		return xstrdup(_("unreachable"));
	return json_is_true(embedded) ? xasprintf(_("reachable, embedded PostgreSQL %s"), version)
				      : xasprintf(_("reachable, PostgreSQL %s"), version);
}

static char *pool_line(const json_t *st)
{
	_cleanup_free_ char *size = field(st, "database.pool.size");
	_cleanup_free_ char *open = field(st, "database.pool.open");
	_cleanup_free_ char *in_use = field(st, "database.pool.in_use");

	return xasprintf(_("%s in use, %s open, size %s"), in_use, open, size);
}

static char *migrations_line(const json_t *st)
{
	_cleanup_free_ char *current = field(st, "migrations.current");
	_cleanup_free_ char *latest = field(st, "migrations.latest");
	_cleanup_free_ char *pending = field(st, "migrations.pending");

	return xasprintf(_("at %s of %s, %s pending"), current, latest, pending);
}

static int cmd_status_run(int argc, char **argv, struct cli_ctx *ctx)
{
	static const char *const labels[] = {N_("Daemon"), N_("Database"), N_("Pool"),
					     N_("Migrations")};
	_cleanup_(json_decrefp) json_t *st = NULL;
	const char *shown[SHP_ARRAY_SIZE(labels)];
	char *values[SHP_ARRAY_SIZE(labels)];
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	if (ctx->format == CLI_FORMAT_NAME)
		return cli_usage_error(ctx, _("'-o name' does not apply to 'status'"));
	r = cli_call(ctx, "GET", SHP_ROUTE_STATUS, NULL, &st);
	if (r < 0)
		return r;
	if (ctx->format == CLI_FORMAT_JSON || ctx->format == CLI_FORMAT_YAML)
		return cli_show_raw(ctx, st);
	values[0] = daemon_line(st);
	values[1] = database_line(st);
	values[2] = pool_line(st);
	values[3] = migrations_line(st);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(labels); i++)
		shown[i] = _(labels[i]);
	cli_render_pairs(stdout, shown, values, SHP_ARRAY_SIZE(labels), ctx->color);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(values); i++)
		free(values[i]);
	return 0;
}

static const struct shp_subcmd status_entry = {
	.fn = cmd_status_run,
	.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
	.summary = N_("show the daemon's health"),
	.description =
		N_("Show shepherdd's version, process id and uptime, whether its PostgreSQL "
		   "database is reachable (and whether it is the embedded one), the use of its "
		   "connection pool, and the state of the schema migrations. The exit status "
		   "is 0 whenever the daemon answers; read the JSON (-o json) to check the "
		   "parts."),
};

const struct shp_cmd cmd_status = {
	.name = "status",
	.summary = N_("show the daemon's health"),
	.self = &status_entry,
};
