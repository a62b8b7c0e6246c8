/*
 * The interactive side of the CLI: the prompts every command asks through (prompt.c), resource
 * names for completion (names.c), the line splitter and the readline shell (repl.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"
#include "cli.h"

struct shp_error;

/* ---- prompt.c ---- */
/* Whether a prompt may be shown: standard input and standard error are terminals. */
bool cli_can_prompt(void);
/*
 * Ask question on the terminal with readline (no history, no completion). Off a terminal,
 * refuse: -SHP_E_USAGE with ctx->err saying why: "<why>: pass <flag> (no terminal to ask on)".
 * In the shell, Ctrl-C at the question is -SHP_E_INTERRUPTED.
 * *ret is the line typed (owned; "" at end of input). Main thread only.
 */
int cli_prompt(struct cli_ctx *ctx, const char *question, const char *why, const char *flag,
	       char **ret) SHP_MUSTCHECK;
/*
 * One line from the terminal with readline's callback interface (the prompt on rl_outstream):
 * NULL at the end of input. Ctrl-C (the armed interrupt, see cli_interrupt_arm) drops the line
 * typed so far; with again the prompt is shown afresh, else the result is NULL with
 * *ret_interrupted set. The line is owned. Main thread only.
 */
char *cli_read_line(const char *prompt, bool again, bool *ret_interrupted);
/* A y/N question: 0 for "y" or "yes", else -SHP_E_INTERNAL exit 1 with refused as the error. */
int cli_prompt_yes(struct cli_ctx *ctx, const char *question, const char *why, const char *flag,
		   const char *refused) SHP_MUSTCHECK;
/*
 * A required text option missing from the command line (approval reasons): asked for on a
 * terminal, a usage error naming the option off one. *ret is owned, never empty.
 */
int cli_prompt_text(struct cli_ctx *ctx, const char *question, const char *flag,
		    char **ret) SHP_MUSTCHECK;

/* ---- names.c ---- */
#define CLI_NAMES_TIMEOUT_MS 300       /* how long completion waits for the daemon, by default */
#define CLI_NAMES_TIMEOUT_MAX_MS 60000 /* SHEPHERD_COMPLETE_TIMEOUT's upper bound */
#define CLI_NAMES_TTL_S 30             /* how long a cached list is used without asking */
#define CLI_NAMES_MAX 2000             /* names kept per kind */
#define CLI_NAME_LEN_MAX 256

/* A list of names: v[n] is NULL. */
struct cli_namelist {
	char **v;
	size_t n;
};
struct cli_namelist *cli_namelist_free(struct cli_namelist *n);
SHP_DEFINE_CLEANUP(struct cli_namelist *, cli_namelist_free)
/* mkdir -p with mode 0700 for what it creates; failures show later, when the file is opened. */
void cli_make_dirs(const char *dir);
/* "vm" for CLI_NAMES_VM; NULL for none. */
const char *cli_names_kind_name(enum cli_names kind);
/* CLI_NAMES_VM for "vm"; -1 when unknown. */
int cli_names_kind_from_string(const char *s);
/*
 * The names of kind the daemon of ctx's target shows ctx's user: from the cache when younger
 * than CLI_NAMES_TTL_S, else asked within CLI_NAMES_TIMEOUT_MS or SHEPHERD_COMPLETE_TIMEOUT
 * (milliseconds; a slow link or a loaded machine may want more) and cached, else the stale
 * cache, else none. Never fails; the result is owned.
 */
struct cli_namelist *cli_names_get(const struct cli_ctx *ctx, enum cli_names kind);

/* ---- repl.c ---- */
#define CLI_LINE_MAX (64u * 1024) /* one command line of the shell */
#define CLI_WORDS_MAX 4096

/*
 * Split a command line the way sh does, without expansions: blanks separate words, '...'
 * keeps everything, "..." keeps everything but \" and \\, a backslash outside quotes escapes
 * the next character, a '#' starting a word starts a comment. partial (for completion):
 * an unterminated quote or escape ends the last word instead of failing, and *ret_open says
 * whether the line ends inside a word. -SHP_E_INVAL (unbalanced quote, trailing backslash, a
 * NUL byte), -SHP_E_LIMIT (longer than CLI_LINE_MAX, more than CLI_WORDS_MAX words).
 * *ret_words is owned (NULL-terminated).
 */
int cli_split_line(const char *line, size_t len, bool partial, char ***ret_words, size_t *ret_n,
		   bool *ret_open, struct shp_error *err) SHP_MUSTCHECK;
void cli_words_free(char **words);
/* The shell: reads command lines until exit, quit or end of input; the exit status. */
int cli_shell_run(struct cli_ctx *ctx);
