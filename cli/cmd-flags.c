/*
 * shepherd flags: the execution flags, which decide whether a task's steps really run or are
 * only recorded — everywhere (global), per approval level (level:N) or per tenant (tenant:NAME).
 * Scopes and states are checked here before the daemon sees them.
 */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "api.h"
#include "cli.h"
#include "i18n.h"
#include "json.h"
#include "output.h"
#include "util.h"

#define LEVEL_MAX '3' /* approval levels are 0..3 */

static char *flag_state(const json_t *f, int64_t now)
{
	const char *state = json_is_true(json_object_get(f, "enabled")) ? "on" : "off";

	if (json_is_true(json_object_get(f, "default")))
		return xasprintf("%s (default)", state);
	return xstrdup(state);
}

static const struct cli_column flag_columns[] = {
	{N_("SCOPE"), N_("Scope"), "scope"},
	{N_("STATE"), N_("State"), NULL, 0, NULL, flag_state},
	{N_("UPDATED"), N_("Updated"), "updated_at", COL_WHEN, "-"},
	{N_("UPDATED BY"), N_("Updated by"), "updated_by", 0, "-"},
	{NULL},
};

static const struct cli_kind flag_kind = {"flag", N_("flags"), "scope", flag_columns};

static int invalid_scope(struct cli_ctx *ctx, const char *scope, const char *why)
{
	return shp_error_set(&ctx->err, SHP_E_INVAL, _("invalid scope '%s': %s"), scope, why);
}

/* global, level:0..3 or tenant:NAME, NAME a tenant's name. */
static int check_scope(struct cli_ctx *ctx, const char *scope)
{
	if (strcmp(scope, "global") == 0)
		return 0;
	if (strncmp(scope, "level:", 6) == 0) {
		if (scope[6] >= '0' && scope[6] <= LEVEL_MAX && scope[7] == '\0')
			return 0;
		return invalid_scope(ctx, scope, _("the approval level is 0, 1, 2 or 3"));
	}
	if (strncmp(scope, "tenant:", 7) == 0) {
		if (shp_name_is_valid(scope + 7))
			return 0;
		return invalid_scope(ctx, scope,
				     "a tenant is a lower-case DNS label (letters, digits and "
				     "'-', at most 63)");
	}
	return invalid_scope(ctx, scope,
			     _("expected global, level:N (N from 0 to 3) or tenant:NAME"));
}

/* An unset global flag is shown as the daemon's default, so that the list says what applies. */
static int add_default_global(struct cli_ctx *ctx, json_t *items, const json_t *page)
{
	const json_t *def = json_object_get(page, "default_enabled");
	size_t i;
	json_t *f;

	json_array_foreach(items, i, f)
	{
		if (shp_streq(shp_json_str(f, "scope"), "global"))
			return 0;
	}
	if (!json_is_boolean(def))
		return 0;
	f = json_pack("{s:s, s:O, s:n, s:n, s:b}", "scope", "global", "enabled", (json_t *)def,
		      "updated_at", "updated_by", "default", 1);
	if (!f || json_array_insert_new(items, 0, f) < 0)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	return 0;
}

static int cmd_flags_list(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *items = NULL;
	_cleanup_(json_decrefp) json_t *page = NULL;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	r = cli_list_full(ctx, SHP_ROUTE_EXEC_FLAGS, "", 0, flag_kind.plural, &items, &page);
	if (r < 0)
		return r;
	r = add_default_global(ctx, items, page);
	if (r < 0)
		return r;
	return cli_show_list(ctx, &flag_kind, items);
}

static int cmd_flags_set(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_(json_decrefp) json_t *flag = NULL;
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *done = NULL;
	const char *scope, *state;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	scope = argv[optind];
	state = argv[optind + 1];
	r = check_scope(ctx, scope);
	if (r < 0)
		return r;
	if (strcmp(state, "on") != 0 && strcmp(state, "off") != 0)
		return shp_error_set(&ctx->err, SHP_E_INVAL,
				     _("invalid state '%s' (expected on or off)"), state);
	body = json_pack("{s:b}", "enabled", strcmp(state, "on") == 0);
	if (!body)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	path = cli_path(SHP_ROUTE_EXEC_FLAGS, scope);
	r = cli_call(ctx, "PUT", path, body, &flag);
	if (r < 0)
		return r;
	done = xasprintf(_("set %s"), state);
	return cli_show_done(ctx, &flag_kind, flag, done);
}

static int cmd_flags_unset(int argc, char **argv, struct cli_ctx *ctx)
{
	_cleanup_(json_decrefp) json_t *flag = NULL;
	_cleanup_free_ char *path = NULL;
	const char *scope;
	int r;

	while (cli_getopt(ctx, argc, argv) != -1)
		;
	scope = argv[optind];
	r = check_scope(ctx, scope);
	if (r < 0)
		return r;
	path = cli_path(SHP_ROUTE_EXEC_FLAGS, scope);
	r = cli_call(ctx, "DELETE", path, NULL, &flag);
	if (r < 0)
		return r;
	/* 204: what was removed is named by the scope alone. */
	if (!flag)
		flag = json_pack("{s:s}", "scope", scope);
	if (!flag)
		return shp_error_set(&ctx->err, SHP_E_NOMEM, _("out of memory"));
	return cli_show_done(ctx, &flag_kind, flag, N_("unset"));
}

static const struct shp_flag no_flags[] = {{NULL}};

static const struct shp_subcmd flags_verbs[] = {
	{
		.name = "list",
		.fn = cmd_flags_list,
		.usage = "",
		.flags = CMD_NEEDS_DAEMON | CMD_READONLY,
		.summary = N_("list the execution flags that are set"),
		.description =
			N_("List the execution flags that are set, and the global one even when "
			   "it is not: then it shows the daemon's default, marked '(default)' (and "
			   "\"default\": true in -o json)."),
		.opts = no_flags,
	},
	{
		.name = "set",
		.fn = cmd_flags_set,
		.min_args = 2,
		.max_args = 2,
		.usage = "SCOPE on|off",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("switch execution on or off for a scope"),
		.description =
			N_("Switch execution on or off for SCOPE: global, level:N for the tasks of "
			   "approval level N (0 to 3), or tenant:NAME for the tasks of one tenant. "
			   "A task runs for real only when every flag that applies to it is on; "
			   "otherwise it is recorded and its steps are skipped. Only "
			   "administrators may set flags."),
		.opts = no_flags,
	},
	{
		.name = "unset",
		.fn = cmd_flags_unset,
		.min_args = 1,
		.max_args = 1,
		.usage = "SCOPE",
		.flags = CMD_NEEDS_DAEMON | CMD_SYNC,
		.summary = N_("remove the flag of a scope"),
		.description =
			N_("Remove the flag of SCOPE (as for 'flags set'). An absent level or "
			   "tenant flag counts as on; an absent global flag means the daemon's "
			   "default. Only administrators may unset flags."),
		.opts = no_flags,
	},
	{NULL},
};

const struct shp_cmd cmd_flags = {
	.name = "flags",
	.summary = N_("switch task execution on or off"),
	.description = N_("Execution flags are the switch between running tasks for real and only "
			  "recording them, globally, per approval level or per tenant."),
	.subcmds = flags_verbs,
};
