/*
 * The one way a command asks the user something: readline on a terminal (no history, no
 * completion, the prompt on stderr so that stdout stays data), and off a terminal a refusal
 * that names the option giving the answer, exit 2. Deletes, confirmations and reasons all
 * come through here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/readline.h>

#include "cli.h"
#include "error.h"
#include "i18n.h"
#include "shell.h"

bool cli_can_prompt(void)
{
	return isatty(STDIN_FILENO) && isatty(STDERR_FILENO);
}

/* No completion in an answer: TAB inserts nothing useful, so offer nothing. */
static char **complete_nothing(const char *text, int start, int end)
{
	(void)text;
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1;
	return NULL;
}

int cli_prompt(struct cli_ctx *ctx, const char *question, const char *why, const char *flag,
	       char **ret)
{
	rl_completion_func_t *saved_completion = rl_attempted_completion_function;
	FILE *saved_out = rl_outstream;
	char *answer;

	if (!cli_can_prompt()) {
		ctx->usage_hint = false;
		return shp_error_set(&ctx->err, SHP_E_USAGE,
				     _("%s: pass %s (no terminal to ask on)"), why, flag);
	}
	rl_outstream = stderr;
	rl_attempted_completion_function = complete_nothing;
	answer = readline(question);
	rl_attempted_completion_function = saved_completion;
	rl_outstream = saved_out;
	*ret = answer ? answer : xstrdup("");
	return 0;
}

int cli_prompt_yes(struct cli_ctx *ctx, const char *question, const char *why, const char *flag,
		   const char *refused)
{
	_cleanup_free_ char *answer = NULL;
	int r = cli_prompt(ctx, question, why, flag, &answer);

	if (r < 0)
		return r;
	if (strcmp(answer, "y") == 0 || strcmp(answer, "yes") == 0 || strcmp(answer, _("y")) == 0 ||
	    strcmp(answer, _("yes")) == 0)
		return 0;
	ctx->exit_status = SHP_EXIT_FAILURE;
	return shp_error_set(&ctx->err, SHP_E_INTERNAL, "%s", refused);
}

int cli_prompt_text(struct cli_ctx *ctx, const char *question, const char *flag, char **ret)
{
	_cleanup_free_ char *why =
		xasprintf(_("'%s' needs %s"), cli_cmd_path(ctx->cmd, ctx->sub), flag);
	_cleanup_free_ char *answer = NULL, *pass = xasprintf(_("%s TEXT"), flag);
	int r = cli_prompt(ctx, question, why, pass, &answer);

	if (r < 0)
		return r;
	if (!answer[0]) {
		ctx->exit_status = SHP_EXIT_FAILURE;
		return shp_error_set(&ctx->err, SHP_E_INTERNAL, _("nothing typed: nothing done"));
	}
	*ret = TAKE_PTR(answer);
	return 0;
}
