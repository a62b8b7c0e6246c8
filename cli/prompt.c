/*
 * The one way a command asks the user something: readline on a terminal (no history, no
 * completion, the prompt on stderr so that stdout stays data), and off a terminal a refusal
 * that names the option giving the answer, exit 2. Deletes, confirmations and reasons all
 * come through here.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
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

/* ---- readline's callback interface, so that Ctrl-C is seen at once ---------------------- */

static char *line_read;
static bool line_done;

static void on_line(char *line)
{
	line_read = line;
	line_done = true;
	rl_callback_handler_remove();
}

/* Ctrl-C: the line typed so far is dropped, "^C" shown and the cursor on a new line. */
static void drop_line(void)
{
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	rl_point = rl_end = 0;
	fputs("^C", rl_outstream);
	rl_crlf();
}

char *cli_read_line(const char *prompt, bool again, bool *ret_interrupted)
{
	sigset_t sigint, saved;

	*ret_interrupted = false;
	line_read = NULL;
	line_done = false;
	/* SIGINT is held but inside ppoll: one that comes while a key is handled ends the next
	 * wait at once, rather than being seen only at the next key */
	sigemptyset(&sigint);
	sigaddset(&sigint, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &sigint, &saved);
	rl_callback_handler_install(prompt, on_line);
	while (!line_done) {
		struct pollfd pfd = {.fd = fileno(rl_instream), .events = POLLIN};
		int r;

		if (cli_interrupt_take()) {
			drop_line();
			if (!again) {
				*ret_interrupted = true;
				break;
			}
			rl_on_new_line();
			rl_redisplay();
			continue;
		}
		r = ppoll(&pfd, 1, NULL, &saved);
		if (r > 0 && !cli_interrupted())
			rl_callback_read_char();
		else if (r < 0 && errno != EINTR)
			break;
	}
	if (!line_done)
		rl_callback_handler_remove();
	(void)sigprocmask(SIG_SETMASK, &saved, NULL);
	return line_read;
}

/* ---- prompts ------------------------------------------------------------------------------ */

int cli_prompt(struct cli_ctx *ctx, const char *question, const char *why, const char *flag,
	       char **ret)
{
	bool interrupted = false;
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
	/* in the shell Ctrl-C stops the command that asks; elsewhere it ends shepherd */
	answer = cli_interrupt_is_armed() ? cli_read_line(question, false, &interrupted)
					  : readline(question);
	rl_attempted_completion_function = saved_completion;
	rl_outstream = saved_out;
	if (interrupted)
		return cli_interrupt_error(ctx);
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
