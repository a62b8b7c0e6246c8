/*
 * The shell behind `shepherd shell`: each line is split like sh would (no expansions) and run
 * through the command table exactly as argv would be, with the shell's global options and its
 * daemon connection. On a terminal it is a readline prompt with history and completion (the
 * table's commands, verbs, options and values, and resource names from names.c); otherwise it
 * reads lines silently, as a script interpreter.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cli.h"
#include "error.h"
#include "httpc.h"
#include "i18n.h"
#include "output.h"
#include "shell.h"

#define HISTORY_MAX 1000 /* lines kept in the history file */

/* ---- splitting ------------------------------------------------------------------------------ */

struct splitter {
	struct shp_buf word;
	char **words;
	size_t n;
	bool in_word;
};

static int push_word(struct splitter *s, struct shp_error *err)
{
	if (s->n >= CLI_WORDS_MAX)
		return shp_error_set(err, SHP_E_LIMIT, _("more than %d words on one line"),
				     CLI_WORDS_MAX);
	s->words = xreallocarray(s->words, s->n + 2, sizeof(*s->words));
	s->words[s->n++] = xstrdup(s->word.buf);
	s->words[s->n] = NULL;
	shp_buf_reset(&s->word);
	s->in_word = false;
	return 0;
}

void cli_words_free(char **words)
{
	for (size_t i = 0; words && words[i]; i++)
		free(words[i]);
	free(words);
}

/* The characters of the line into words; *quote is the quote left open at the end, or 0. */
static int split(struct splitter *s, const char *line, size_t len, bool partial, char *quote,
		 struct shp_error *err)
{
	char q = 0;

	for (size_t i = 0; i < len; i++) {
		char c = line[i];

		if (q == '\'' && c != '\'') {
			xbuf_addn(&s->word, &c, 1);
		} else if (q == '"' && c == '\\' && i + 1 < len &&
			   (line[i + 1] == '"' || line[i + 1] == '\\')) {
			xbuf_addn(&s->word, &line[++i], 1);
		} else if (q && c == q) {
			q = 0;
		} else if (q) {
			xbuf_addn(&s->word, &c, 1);
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			if (s->in_word && push_word(s, err) < 0)
				return -SHP_E_LIMIT;
		} else if (c == '#' && !s->in_word) {
			break;
		} else {
			s->in_word = true;
			if (c == '\'' || c == '"')
				q = c;
			else if (c != '\\')
				xbuf_addn(&s->word, &c, 1);
			else if (i + 1 < len)
				xbuf_addn(&s->word, &line[++i], 1);
			else if (!partial)
				return shp_error_set(err, SHP_E_INVAL,
						     _("a backslash ends the line"));
		}
	}
	*quote = q;
	return 0;
}

int cli_split_line(const char *line, size_t len, bool partial, char ***ret_words, size_t *ret_n,
		   bool *ret_open, struct shp_error *err)
{
	struct splitter s = {.word = SHP_BUF_INIT(CLI_LINE_MAX + 1)};
	char quote = 0;
	bool open;
	int r;

	if (len > CLI_LINE_MAX)
		return shp_error_set(err, SHP_E_LIMIT, _("line longer than %u bytes"),
				     CLI_LINE_MAX);
	if (memchr(line, '\0', len))
		return shp_error_set(err, SHP_E_INVAL, _("a NUL byte in the line"));
	s.words = xcalloc(1, sizeof(*s.words));
	r = split(&s, line, len, partial, &quote, err);
	if (r == 0 && quote && !partial)
		r = shp_error_set(err, SHP_E_INVAL, _("unterminated %s quote"),
				  quote == '\'' ? _("single") : _("double"));
	open = s.in_word;
	if (r == 0 && s.in_word)
		r = push_word(&s, err);
	shp_buf_release(&s.word);
	if (r < 0) {
		cli_words_free(s.words);
		return r;
	}
	*ret_words = s.words;
	*ret_n = s.n;
	if (ret_open)
		*ret_open = open;
	return 0;
}

/* ---- running one line ----------------------------------------------------------------------- */

struct shell {
	struct cli_ctx *base; /* the session: global options, configuration, connection */
	char *history;        /* the history file, or NULL */
	int status;           /* the exit status of the last failure */
	bool tty;
};

/* Options that change how the daemon is reached: a line using them gets its own connection. */
static bool changes_connection(char *const *words, size_t n)
{
	static const char *const names[] = {"--socket", "--server", "--token",   "--cacert",
					    "--cert",   "--key",    "--timeout", "--verbose"};

	for (size_t i = 0; i < n; i++) {
		if (words[i][0] == '-' && words[i][1] != '-' && strchr(words[i], 'v'))
			return true;
		for (size_t k = 0; k < SHP_ARRAY_SIZE(names); k++) {
			size_t l = strlen(names[k]);

			if (strncmp(words[i], names[k], l) == 0 &&
			    (words[i][l] == '\0' || words[i][l] == '='))
				return true;
		}
	}
	return false;
}

static void copy_setting(struct cli_setting *dst, const struct cli_setting *src)
{
	if (src->value)
		cli_config_set(dst, src->value, src->source, src->origin);
}

/* A context for one line: the session's settings, copied so that the line's options stay its. */
static void line_ctx_init(struct cli_ctx *lc, const struct cli_ctx *base)
{
	cli_ctx_init(lc);
	copy_setting(&lc->config.socket, &base->config.socket);
	copy_setting(&lc->config.server, &base->config.server);
	copy_setting(&lc->config.token, &base->config.token);
	copy_setting(&lc->config.cacert, &base->config.cacert);
	copy_setting(&lc->config.cert, &base->config.cert);
	copy_setting(&lc->config.key, &base->config.key);
	copy_setting(&lc->config.output, &base->config.output);
	lc->config.path = base->config.path ? xstrdup(base->config.path) : NULL;
	lc->config.color = base->config.color;
	lc->format = base->format;
	lc->format_set = base->format_set;
	lc->quiet = base->quiet;
	lc->verbose = base->verbose;
	lc->no_color = base->no_color;
	lc->timeout_ms = base->timeout_ms;
}

static bool is_word(const char *w, const char *a, const char *b)
{
	return strcmp(w, a) == 0 || (b && strcmp(w, b) == 0);
}

/* Run the words of one line; false when the shell should end. */
static bool run_words(struct shell *sh, char **words, size_t n)
{
	struct cli_ctx lc;
	bool shared;
	int r;

	if (n > 0 && strcmp(words[0], "shepherd") == 0)
		words++, n--; /* "shepherd vm list" typed out of habit */
	if (n == 0)
		return true;
	if (is_word(words[0], "exit", "quit"))
		return false;
	if (strcmp(words[0], "shell") == 0) {
		fputs(_("shepherd: error: 'shell' does not run inside the shell\n"), stderr);
		sh->status = SHP_EXIT_USAGE;
		return true;
	}
	line_ctx_init(&lc, sh->base);
	shared = !changes_connection(words, n);
	if (shared)
		lc.http = TAKE_PTR(sh->base->http);
	r = cli_run_command(&lc, (int)n, words);
	if (r < 0)
		sh->status = cli_report_error(&lc);
	else if (lc.exit_status)
		sh->status = lc.exit_status;
	if (n == 1 && strcmp(words[0], "help") == 0 && r == 0)
		fputs(_("\nIn the shell: 'exit', 'quit' or Ctrl-D leaves, Ctrl-C abandons the "
			"line, "
			"TAB completes.\n"),
		      stdout);
	if (shared)
		sh->base->http = TAKE_PTR(lc.http);
	(void)fflush(stdout);
	cli_ctx_release(&lc);
	return true;
}

static bool run_line(struct shell *sh, const char *line, size_t len)
{
	struct shp_error err = SHP_ERROR_INIT;
	char **words = NULL;
	size_t n = 0;
	bool go_on;

	if (cli_split_line(line, len, false, &words, &n, NULL, &err) < 0) {
		fprintf(stderr, _("shepherd: error: %s\n"), err.msg);
		sh->status = SHP_EXIT_USAGE;
		return true;
	}
	go_on = run_words(sh, words, n);
	cli_words_free(words);
	return go_on;
}

/* ---- reading without a terminal -------------------------------------------------------------- */

/* One line of at most CLI_LINE_MAX bytes into buf; *ret_long when it was longer (dropped). */
static bool read_script_line(FILE *in, char *buf, size_t *ret_len, bool *ret_long)
{
	size_t len = 0;
	int c;

	*ret_long = false;
	while ((c = getc(in)) != EOF && c != '\n') {
		if (len < CLI_LINE_MAX)
			buf[len++] = (char)c;
		else
			*ret_long = true;
	}
	*ret_len = len;
	return c != EOF || len > 0 || *ret_long;
}

static void run_script(struct shell *sh)
{
	_cleanup_free_ char *line = xmalloc(CLI_LINE_MAX + 1);
	size_t len;
	bool too_long;

	while (read_script_line(stdin, line, &len, &too_long)) {
		if (too_long) {
			fprintf(stderr, _("shepherd: error: line longer than %u bytes\n"),
				CLI_LINE_MAX);
			sh->status = SHP_EXIT_USAGE;
			continue;
		}
		if (!run_line(sh, line, len))
			return;
	}
}

/* ---- completion ------------------------------------------------------------------------------ */

static struct shell *completing; /* the shell readline completes for (main thread only) */

static void offer(struct cli_namelist *out, const char *word, const char *text)
{
	if (word && strncmp(word, text, strlen(text)) == 0) {
		out->v = xreallocarray(out->v, out->n + 2, sizeof(*out->v));
		out->v[out->n++] = xstrdup(word);
		out->v[out->n] = NULL;
	}
}

static void offer_flags(struct cli_namelist *out, const struct shp_flag *flags, const char *text)
{
	for (const struct shp_flag *f = flags; f && f->name; f++) {
		_cleanup_free_ char *l = xasprintf("--%s", f->name);

		offer(out, l, text);
	}
}

static void offer_commands(struct cli_namelist *out, const char *text)
{
	for (const struct shp_cmd *const *c = cli_visible_commands(); *c; c++)
		offer(out, (*c)->name, text);
}

static void offer_verbs(struct cli_namelist *out, const struct shp_cmd *cmd, const char *text)
{
	for (const struct shp_subcmd *s = cmd ? cmd->subcmds : NULL; s && s->name; s++)
		if (!(s->flags & CMD_HIDDEN))
			offer(out, s->name, text);
}

static void offer_names(struct cli_namelist *out, enum cli_names kind, const char *text)
{
	_cleanup_(cli_namelist_freep) struct cli_namelist *n = NULL;

	if (!completing) /* not from the shell's readline (the unit test) */
		return;
	n = cli_names_get(completing->base, kind);
	for (size_t i = 0; i < n->n; i++)
		offer(out, n->v[i], text);
}

/* The option a word names among the command's and the global ones, or NULL. */
static const struct shp_flag *find_flag(const struct shp_subcmd *sub, const char *w)
{
	const struct shp_flag *const sets[] = {sub && sub->opts ? sub->opts : cli_global_flags,
					       cli_global_flags, NULL};

	for (size_t i = 0; sets[i]; i++)
		for (const struct shp_flag *f = sets[i]; f->name; f++)
			if ((w[1] == '-' && (strcmp(w + 2, f->name) == 0 ||
					     (f->alias && strcmp(w + 2, f->alias) == 0))) ||
			    (w[1] != '-' && f->short_name && w[1] == f->short_name && !w[2]))
				return f;
	return NULL;
}

/* Where the words typed so far leave the word being completed. */
struct position {
	const struct shp_cmd *cmd;
	const struct shp_subcmd *sub;
	const struct shp_flag *value_of; /* the word is this option's value */
	const char *first;               /* the first positional argument */
	int npos;                        /* positional arguments before the word */
	bool lost;                       /* an unknown command or verb: nothing to offer */
};

static void locate(char **words, size_t n, struct position *p)
{
	*p = (struct position){0};
	for (size_t i = words[0] && strcmp(words[0], "shepherd") == 0; i < n; i++) {
		const char *w = words[i];

		if (p->value_of) {
			p->value_of = NULL;
		} else if (w[0] == '-' && w[1]) {
			const struct shp_flag *f = strchr(w, '=') ? NULL : find_flag(p->sub, w);

			p->value_of = f && f->arg ? f : NULL;
		} else if (!p->cmd) {
			p->cmd = cli_find_cmd(w);
			p->lost = !p->cmd;
			p->sub = p->cmd ? p->cmd->self : NULL;
		} else if (!p->sub) {
			p->sub = cli_find_subcmd(p->cmd, w);
			p->lost = !p->sub;
		} else if (p->npos++ == 0) {
			p->first = w;
		}
		if (p->lost)
			return;
	}
}

static void offer_positional(struct cli_namelist *out, const struct position *p, const char *text)
{
	const struct shp_subcmd *s = p->sub;

	if (s->args_complete == CLI_COMPLETE_VALUES && p->npos == 0)
		for (size_t i = 0; s->arg_values[i]; i++)
			offer(out, s->arg_values[i], text);
	else if (s->args_complete == CLI_COMPLETE_COMMAND && p->npos == 0)
		offer_commands(out, text);
	else if (s->args_complete == CLI_COMPLETE_COMMAND && p->npos == 1)
		offer_verbs(out, cli_find_cmd(p->first), text);
	else if (s->args_complete == CLI_COMPLETE_NAMES && p->npos == 0)
		offer_names(out, s->arg_names, text);
}

/* The candidates for text after words; *ret_files when file names fit instead. */
SHP_STATIC struct cli_namelist *candidates(char **words, size_t n, const char *text,
					   bool *ret_files)
{
	struct cli_namelist *out = xcalloc(1, sizeof(*out));
	struct position p;

	out->v = xcalloc(1, sizeof(*out->v));
	*ret_files = false;
	locate(words, n, &p);
	if (p.lost)
		return out;
	if (p.value_of) {
		for (size_t i = 0; p.value_of->values && p.value_of->values[i]; i++)
			offer(out, p.value_of->values[i], text);
		if (p.value_of->names)
			offer_names(out, p.value_of->names, text);
		*ret_files = p.value_of->file;
	} else if (text[0] == '-') {
		offer_flags(out, p.sub ? p.sub->opts : NULL, text);
		offer_flags(out, cli_global_flags, text);
	} else if (!p.cmd) {
		offer_commands(out, text);
		offer(out, "exit", text);
		offer(out, "quit", text);
	} else if (!p.sub) {
		offer_verbs(out, p.cmd, text);
	} else {
		offer_positional(out, &p, text);
	}
	return out;
}

static struct cli_namelist *matches;

static char *next_match(const char *text, int state)
{
	static size_t i;

	(void)text;
	if (state == 0)
		i = 0;
	return matches && i < matches->n ? xstrdup(matches->v[i++]) : NULL;
}

static char **complete(const char *text, int start, int end)
{
	char **words = NULL, **found;
	size_t n = 0;
	bool files;
	struct shp_error err = SHP_ERROR_INIT;

	(void)end;
	rl_attempted_completion_over = 1;
	if (cli_split_line(rl_line_buffer, (size_t)start, true, &words, &n, NULL, &err) < 0)
		return NULL;
	matches = candidates(words, n, text, &files);
	cli_words_free(words);
	if (files && matches->n == 0) {
		matches = cli_namelist_free(matches);
		return rl_completion_matches(text, rl_filename_completion_function);
	}
	found = rl_completion_matches(text, next_match);
	matches = cli_namelist_free(matches);
	return found;
}

/* ---- the terminal --------------------------------------------------------------------------- */

/* The history file, created private; NULL when there is no place for it. */
static char *open_history(void)
{
	_cleanup_free_ char *path =
		cli_xdg_path("XDG_STATE_HOME", ".local/state", "shepherd/history");
	_cleanup_free_ char *dir = NULL;
	int fd;

	if (!path)
		return NULL;
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	cli_make_dirs(dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return NULL;
	(void)fchmod(fd, 0600);
	(void)close(fd);
	(void)read_history(path);
	return TAKE_PTR(path);
}

/* Keep the line, unless it starts with a blank or carries a token. */
static void remember(struct shell *sh, const char *line)
{
	if (!line[0] || line[0] == ' ' || line[0] == '\t' || strstr(line, "--token"))
		return;
	add_history(line);
	if (!sh->history)
		return;
	(void)append_history(1, sh->history);
	(void)history_truncate_file(sh->history, HISTORY_MAX);
	(void)chmod(sh->history, 0600);
}

/* "shepherd (https://shepherd.example:8443)> " or "shepherd (/run/shepherd/shepherdd.sock)> " */
static char *make_prompt(const struct cli_ctx *ctx)
{
	const char *target =
		ctx->config.server.value ? ctx->config.server.value : ctx->config.socket.value;
	_cleanup_free_ char *clean = cli_text_sanitize(target ? target : "?");

	return xasprintf("shepherd (%s)> ", clean);
}

static void run_tty(struct shell *sh)
{
	_cleanup_free_ char *prompt = make_prompt(sh->base);
	char *line;

	rl_readline_name = "shepherd";
	/* with the output going to a file, the prompts and echo go to the terminal still */
	rl_outstream = isatty(STDOUT_FILENO) ? stdout : stderr;
	rl_catch_signals = 0;
	rl_completer_quote_characters = "'\"";
	rl_attempted_completion_function = complete;
	stifle_history(HISTORY_MAX);
	sh->history = open_history();
	completing = sh;
	/* Ctrl-C drops the line being typed, or stops the command running, not the shell */
	cli_interrupt_arm();
	for (;;) {
		bool interrupted;

		line = cli_read_line(prompt, true, &interrupted);
		if (!line) {
			fputc('\n', stdout);
			break;
		}
		remember(sh, line);
		bool go_on = run_line(sh, line, strlen(line));

		free(line);
		(void)cli_interrupt_take(); /* one that came as the command ended */
		if (!go_on)
			break;
	}
	cli_interrupt_disarm();
	completing = NULL;
	rl_attempted_completion_function = NULL;
}

int cli_shell_run(struct cli_ctx *ctx)
{
	struct shell sh = {.base = ctx, .tty = isatty(STDIN_FILENO)};

	if (sh.tty)
		run_tty(&sh);
	else
		run_script(&sh);
	free(sh.history);
	return sh.status;
}
