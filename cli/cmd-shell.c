/*
 * shepherd shell: the interactive shell (repl.c) as a command of the table. The global options
 * given to it hold for every line; its own exit status is that of the last command that failed.
 */
#include "config.h"

#include <stdio.h>

#include "cli.h"
#include "i18n.h"
#include "shell.h"

static int cmd_shell_run(int argc, char **argv, struct cli_ctx *ctx)
{
	while (cli_getopt(ctx, argc, argv) != -1)
		;
	ctx->exit_status = cli_shell_run(ctx);
	return 0;
}

static const struct shp_subcmd shell_entry = {
	.fn = cmd_shell_run,
	.usage = "",
	.flags = CMD_NEEDS_DAEMON,
	.summary = N_("run commands interactively, with history and completion"),
	.description = N_(
		"Read commands without the leading 'shepherd', one a line, and run each as "
		"shepherd would, against the daemon of the global options given to 'shepherd "
		"shell' (which hold for every line; a line may add its own). On a terminal, the "
		"prompt names the daemon, TAB completes commands, verbs, options, their values and "
		"resource names (asked of the daemon), and the history is kept in "
		"$XDG_STATE_HOME/shepherd/history (lines starting with a blank or holding a "
		"--token are not). Words are split as sh splits them, with '...', \"...\" and "
		"backslashes, but nothing is expanded; '#' starts a comment. A failing command "
		"prints its error and the shell goes on. 'exit', 'quit' or Ctrl-D leaves; Ctrl-C "
		"abandons the line being typed, or stops the command running (exit status 130) "
		"and the shell goes on. Off a terminal the shell reads the lines without "
		"prompting, as a script, and exits with the status of the last command that "
		"failed (0 when none did)."),
};

const struct shp_cmd cmd_shell = {
	.name = "shell",
	.summary = N_("run commands interactively, with history and completion"),
	.self = &shell_entry,
};
