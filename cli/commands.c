/*
 * The command table: every command of shepherd, sorted by name, and the global options. Dispatch,
 * help, suggestions, completions and the COMMANDS section of shepherd(1) all read it.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "i18n.h"

const struct shp_cmd *const cli_commands[] = {
	&cmd_complete_names, &cmd_man_commands, &cmd_man_options,   &cmd_adoption,   &cmd_approvals,
	&cmd_audit,          &cmd_batch,        &cmd_cluster,       &cmd_completion, &cmd_flags,
	&cmd_help,           &cmd_inbox,        &cmd_instancetypes, &cmd_jobs,       &cmd_namespace,
	&cmd_policy,         &cmd_queue,        &cmd_rbac,          &cmd_reconcile,  &cmd_requests,
	&cmd_role,           &cmd_service,      &cmd_shell,         &cmd_size,       &cmd_status,
	&cmd_system,         &cmd_tasks,        &cmd_template,      &cmd_tenant,     &cmd_token,
	&cmd_version,        &cmd_vm,           &cmd_vnc,           &cmd_whoami,     NULL,
};

const char *const cli_environment_values[] = {"test", "prod", NULL};
const char *const cli_shell_values[] = {"bash", "zsh", "fish", NULL};

const struct shp_flag cli_global_flags[] = {
	{"socket", CLI_OPT_SOCKET, 0, NULL, "PATH", N_("the Unix socket of shepherdd"),
	 .file = true},
	{"server", CLI_OPT_SERVER, 0, NULL, "URL",
	 N_("talk to shepherdd at https://HOST:PORT instead")},
	{"token", CLI_OPT_TOKEN, 0, NULL, "TOKEN",
	 N_("authenticate with this bearer token (prefer SHEPHERD_TOKEN: arguments are visible to "
	    "other users)")},
	{"cacert", CLI_OPT_CACERT, 0, NULL, "FILE", N_("CA certificates to verify the server with"),
	 .file = true},
	{"cert", CLI_OPT_CERT, 0, NULL, "FILE", N_("client certificate (PEM)"), .file = true},
	{"key", CLI_OPT_KEY, 0, NULL, "FILE", N_("private key of the client certificate"),
	 .file = true},
	{"output", CLI_OPT_OUTPUT, 'o', NULL, "FORMAT", N_("output format"), cli_output_values},
	{"json", CLI_OPT_JSON, 0, NULL, NULL, N_("same as -o json")},
	{"no-color", CLI_OPT_NO_COLOR, 0, NULL, NULL, N_("no colour, even on a terminal")},
	{"quiet", CLI_OPT_QUIET, 'q', NULL, NULL, N_("print only data and errors")},
	{"verbose", CLI_OPT_VERBOSE, 'v', NULL, NULL,
	 N_("show each request, its status, timing and request id on stderr")},
	{"timeout", CLI_OPT_TIMEOUT, 0, NULL, "SECONDS",
	 N_("give up on a request after this long "
	    "(default 30)")},
	{"help", CLI_OPT_HELP, 'h', NULL, NULL, N_("show help and exit")},
	{"version", CLI_OPT_VERSION, 0, NULL, NULL, N_("show the client version and exit")},
	{NULL},
};

const struct shp_cmd *const *cli_visible_commands(void)
{
	static const struct shp_cmd *visible[SHP_ARRAY_SIZE(cli_commands)];

	if (!visible[0]) {
		size_t n = 0;

		for (const struct shp_cmd *const *c = cli_commands; *c; c++)
			if (!cli_cmd_is_hidden(*c))
				visible[n++] = *c;
	}
	return visible;
}

bool cli_cmd_is_hidden(const struct shp_cmd *cmd)
{
	return cmd->self && (cmd->self->flags & CMD_HIDDEN);
}

const struct shp_subcmd *cli_cmd_entries(const struct shp_cmd *cmd)
{
	return cmd->subcmds ? cmd->subcmds : cmd->self;
}

const struct shp_cmd *cli_find_cmd(const char *name)
{
	for (const struct shp_cmd *const *c = cli_commands; *c; c++)
		if (strcmp((*c)->name, name) == 0 ||
		    ((*c)->alias && strcmp((*c)->alias, name) == 0))
			return *c;
	return NULL;
}

const struct shp_subcmd *cli_find_subcmd(const struct shp_cmd *cmd, const char *name)
{
	if (!cmd->subcmds)
		return NULL;
	for (const struct shp_subcmd *s = cmd->subcmds; s->name; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

const char *cli_suggest_cmd(const char *word)
{
	const char *names[2 * SHP_ARRAY_SIZE(cli_commands)];
	size_t n = 0;

	for (const struct shp_cmd *const *c = cli_commands; *c; c++) {
		if (cli_cmd_is_hidden(*c))
			continue;
		names[n++] = (*c)->name;
		if ((*c)->alias)
			names[n++] = (*c)->alias;
	}
	return cli_suggest(word, names, n);
}

const char *cli_suggest_subcmd(const struct shp_cmd *cmd, const char *word)
{
	const char *names[64];
	size_t n = 0;

	if (!cmd->subcmds)
		return NULL;
	for (const struct shp_subcmd *s = cmd->subcmds; s->name && n < SHP_ARRAY_SIZE(names); s++)
		if (!(s->flags & CMD_HIDDEN))
			names[n++] = s->name;
	return cli_suggest(word, names, n);
}

const char *cli_cmd_path(const struct shp_cmd *cmd, const struct shp_subcmd *sub)
{
	static char path[128];

	if (sub && sub->name)
		(void)snprintf(path, sizeof(path), "%s %s", cmd->name, sub->name);
	else
		(void)snprintf(path, sizeof(path), "%s", cmd->name);
	return path;
}
