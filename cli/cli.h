/*
 * The shepherd command line: the command table (STYLE 2.6), the context of one invocation, and
 * the helpers the cmd-<noun>.c files share (options, daemon calls, allocation, suggestions).
 *
 * Adding a command: write cmd-<noun>.c ending in a `const struct shp_cmd cmd_<noun>`, declare it
 * below and list it in commands.c (sorted). Help, completions and shepherd(1) follow from it.
 */
#pragma once

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "buf.h"
#include "cleanup.h"
#include "error.h"

struct cli_ctx;
struct shp_httpc;

typedef int (*shp_cmd_fn)(int argc, char **argv, struct cli_ctx *ctx);

/* Subcommand flags. */
#define CMD_NEEDS_DAEMON (1u << 0) /* talks to shepherdd: the configuration is loaded first */
#define CMD_READONLY (1u << 1)     /* changes nothing */
#define CMD_HIDDEN (1u << 2)       /* left out of help, suggestions, completions and man page */
#define CMD_SYNC (1u << 3) /* changes things and is done when it returns: nothing to --wait for */

/* What the positional arguments of a command complete to. */
enum cli_complete {
	CLI_COMPLETE_NONE,
	CLI_COMPLETE_VALUES,  /* one of arg_values */
	CLI_COMPLETE_COMMAND, /* a command, then one of its verbs */
	CLI_COMPLETE_NAMES,   /* the first one: a resource name of the kind in arg_names */
};

/* Kinds of resource names, completed by asking the daemon (names.c). */
enum cli_names {
	CLI_NAMES_NONE,
	CLI_NAMES_VM,
	CLI_NAMES_NAMESPACE,
	CLI_NAMES_CLUSTER,
	CLI_NAMES_TEMPLATE,
	CLI_NAMES_SIZE,
	CLI_NAMES_SYSTEM,
	CLI_NAMES_SERVICE,
	CLI_NAMES_APPROVAL,
	CLI_NAMES_REQUEST,
	CLI_NAMES_TASK,
	CLI_NAMES_BATCH,
	CLI_NAMES_NOTIFICATION,
	_CLI_NAMES_MAX,
};

/* Option ids: the short letter when there is one, else a number from these ranges. */
enum {
	CLI_OPT_HELP = 'h',
	CLI_OPT_OUTPUT = 'o',
	CLI_OPT_QUIET = 'q',
	CLI_OPT_VERBOSE = 'v',
	CLI_OPT_SOCKET = 0x100,
	CLI_OPT_SERVER,
	CLI_OPT_TOKEN,
	CLI_OPT_CACERT,
	CLI_OPT_CERT,
	CLI_OPT_KEY,
	CLI_OPT_JSON,
	CLI_OPT_NO_COLOR,
	CLI_OPT_TIMEOUT,
	CLI_OPT_VERSION,
	CLI_OPT_LOCAL = 0x200, /* each cmd-<noun>.c numbers its own options from here */
};

/* One option of a command, or a global one. Tables end with { NULL }. */
struct shp_flag {
	const char *name;          /* long name, without "--" */
	int id;                    /* what cli_getopt() returns */
	int short_name;            /* 'o' for -o, or 0 */
	const char *alias;         /* another long name (--env for --environment), or NULL */
	const char *arg;           /* the value's name ("ENV") when the option takes one */
	const char *help;          /* one line, lowercase, no full stop */
	const char *const *values; /* the only accepted values (checked and completed), or NULL */
	bool file;                 /* the value is a path: complete file names */
	bool required;             /* the command refuses to run without it */
	enum cli_names names;      /* the value is a resource name of this kind */
};

struct shp_subcmd {
	const char *name; /* the verb; NULL for the entry of a verbless command */
	shp_cmd_fn fn;
	int min_args; /* positional arguments, after the options are taken out */
	int max_args;
	const char *usage;           /* what follows "shepherd NOUN [VERB]" */
	unsigned flags;              /* CMD_* */
	const char *summary;         /* one line, lowercase, no full stop */
	const char *description;     /* sentences for --help and shepherd(1); "\n\n" between
					paragraphs */
	const struct shp_flag *opts; /* its options, or NULL */
	enum cli_complete args_complete;
	const char *const *arg_values;
	enum cli_names arg_names; /* with CLI_COMPLETE_NAMES */
};

struct shp_cmd {
	const char *name;
	const char *alias;                /* or NULL */
	const char *summary;              /* one line, lowercase, no full stop */
	const char *description;          /* a paragraph for help and shepherd(1) */
	const struct shp_subcmd *subcmds; /* its verbs, sorted, ending with { NULL } */
	const struct shp_subcmd *self;    /* instead of subcmds: the command takes no verb */
	const char *default_verb;         /* run when no verb (or an option) follows, or NULL */
};

/* commands.c: the table, sorted by name, ending with NULL. */
extern const struct shp_cmd *const cli_commands[];
extern const struct shp_flag cli_global_flags[];
extern const char *const cli_output_values[];
extern const char *const cli_environment_values[];
extern const char *const cli_shell_values[];

extern const struct shp_cmd cmd_adoption;
extern const struct shp_cmd cmd_approvals;
extern const struct shp_cmd cmd_audit;
extern const struct shp_cmd cmd_batch;
extern const struct shp_cmd cmd_cluster;
extern const struct shp_cmd cmd_complete_names;
extern const struct shp_cmd cmd_completion;
extern const struct shp_cmd cmd_flags;
extern const struct shp_cmd cmd_help;
extern const struct shp_cmd cmd_inbox;
extern const struct shp_cmd cmd_instancetypes;
extern const struct shp_cmd cmd_jobs;
extern const struct shp_cmd cmd_man_commands;
extern const struct shp_cmd cmd_man_options;
extern const struct shp_cmd cmd_namespace;
extern const struct shp_cmd cmd_policy;
extern const struct shp_cmd cmd_queue;
extern const struct shp_cmd cmd_rbac;
extern const struct shp_cmd cmd_reconcile;
extern const struct shp_cmd cmd_requests;
extern const struct shp_cmd cmd_role;
extern const struct shp_cmd cmd_service;
extern const struct shp_cmd cmd_shell;
extern const struct shp_cmd cmd_size;
extern const struct shp_cmd cmd_status;
extern const struct shp_cmd cmd_system;
extern const struct shp_cmd cmd_tasks;
extern const struct shp_cmd cmd_template;
extern const struct shp_cmd cmd_tenant;
extern const struct shp_cmd cmd_token;
extern const struct shp_cmd cmd_version;
extern const struct shp_cmd cmd_vm;
extern const struct shp_cmd cmd_vnc;
extern const struct shp_cmd cmd_whoami;
/* the answer to a submitted request (cmd-system.c; systems, services and VMs) */
extern const struct cli_kind cli_request_answer_kind;

/* The commands help, completions and the man page show (no hidden ones), ending with NULL. */
const struct shp_cmd *const *cli_visible_commands(void);
/* Exact name or alias; NULL when unknown. */
const struct shp_cmd *cli_find_cmd(const char *name);
const struct shp_subcmd *cli_find_subcmd(const struct shp_cmd *cmd, const char *name);
/* The closest visible command (or verb of cmd) to a mistyped word, or NULL. */
const char *cli_suggest_cmd(const char *word);
const char *cli_suggest_subcmd(const struct shp_cmd *cmd, const char *word);
/* Its verbs, or its own entry when it takes no verb, as a {NULL}-terminated array. */
const struct shp_subcmd *cli_cmd_entries(const struct shp_cmd *cmd);
bool cli_cmd_is_hidden(const struct shp_cmd *cmd);
/* "namespace create" or "version" (static storage, overwritten by the next call). */
const char *cli_cmd_path(const struct shp_cmd *cmd, const struct shp_subcmd *sub);

/* config.c: settings from the command line, the environment and the config file. */
enum cli_source { CLI_SRC_NONE, CLI_SRC_DEFAULT, CLI_SRC_FILE, CLI_SRC_ENV, CLI_SRC_FLAG };

struct cli_setting {
	char *value;
	enum cli_source source;
	const char *origin; /* "--socket", "SHEPHERD_SOCKET", "config file": for messages */
};

struct cli_config {
	char *path; /* the config file that was read, or NULL */
	struct cli_setting socket, server, token, cacert, cert, key, output;
	int color; /* the file's "color": -1 unset, 0 or 1 */
};

void cli_config_init(struct cli_config *cfg);
void cli_config_release(struct cli_config *cfg);
/* Set s to value unless it already holds a value from a stronger source. */
void cli_config_set(struct cli_setting *s, const char *value, enum cli_source src,
		    const char *origin);
/*
 * $VAR/suffix when $VAR is an absolute path (XDG ignores relative ones), else
 * $HOME/fallback/suffix, else NULL (allocated).
 */
char *cli_xdg_path(const char *var, const char *fallback, const char *suffix);
/* The config file's path: $SHEPHERD_CONFIG, else $XDG_CONFIG_HOME or ~/.config/shepherd/. */
char *cli_config_file_path(void);
/*
 * Read the config file (if it exists) and the SHEPHERD_* environment into cfg, then decide
 * between socket and server and fill in the default socket. Values set earlier from a stronger
 * source (the command line) are kept. -SHP_E_INVAL for a broken file, -SHP_E_PERM for a file
 * that holds a token and is open to others.
 */
int cli_config_load(struct cli_config *cfg, struct shp_error *err) SHP_MUSTCHECK;
/* The socket used when nothing else is configured. */
char *cli_config_default_socket(void);

enum cli_format {
	CLI_FORMAT_TABLE,
	CLI_FORMAT_WIDE,
	CLI_FORMAT_JSON,
	CLI_FORMAT_YAML,
	CLI_FORMAT_NAME
};
/* "table" -> CLI_FORMAT_TABLE; -1 when unknown. */
int cli_format_from_string(const char *s);

/* The state of one invocation. */
struct cli_ctx {
	struct cli_config config;
	enum cli_format format;
	bool format_set; /* given on the command line (else the config's output applies) */
	bool quiet;
	bool verbose;
	bool no_color;
	bool color; /* colour on stdout: a terminal, and neither --no-color nor NO_COLOR */
	bool stdout_tty;
	int term_width; /* columns of the terminal on stdout; 0 when stdout is not a terminal */
	long timeout_ms;
	const struct shp_cmd *cmd;
	const struct shp_subcmd *sub;
	struct option *longopts; /* the running command's options, for cli_getopt() */
	char *shortopts;
	struct shp_httpc *http; /* created by the first daemon call */
	struct shp_error err;   /* the failure a handler returned */
	bool usage_hint;        /* err is about the command line: show the usage with it */
	json_t *error_body;     /* the daemon's {"error": {...}} behind err, if any */
	int exit_status;        /* when not 0: the exit status of a failure, instead of err's */
};

void cli_ctx_init(struct cli_ctx *ctx);
void cli_ctx_release(struct cli_ctx *ctx);

/* main.c */
/*
 * Run one command line (argv[0] is the command, global options may follow it), as main does
 * after the global options before it: look-ups, checks, the handler. -code with ctx->err set.
 */
int cli_run_command(struct cli_ctx *ctx, int argc, char **argv);
/* Print ctx->err as main does ("shepherd: error: ..." and hints); returns the exit status. */
int cli_report_error(struct cli_ctx *ctx);

/* options.c */
/*
 * For handlers: getopt_long over the running command's options as listed in the table. Global
 * options and --help were applied (and every value checked) by main before the handler ran and
 * are skipped here. Returns the option's id (optarg holds its value), -1 at the end, when
 * argv[optind..argc) are the positional arguments.
 */
int cli_getopt(struct cli_ctx *ctx, int argc, char **argv);
/*
 * For main: getopt_long with ctx's tables. Returns the option's id, -1 at the end, or
 * CLI_OPT_FAILED with a usage error in ctx->err for an unknown or abbreviated option or a missing
 * value (what names the command in the message).
 */
int cli_next_option(struct cli_ctx *ctx, int argc, char **argv, const char *what);
#define CLI_OPT_FAILED (-2)
/* Build the getopt_long tables of sets (each a {NULL}-terminated flag table; NULL ends). */
void cli_build_options(const struct shp_flag *const *sets, bool stop_at_nonoption,
		       struct option **ret_long, char **ret_short);
/* Find the flag with id in sets. */
const struct shp_flag *cli_flag_by_id(const struct shp_flag *const *sets, int id);
/* Apply a global option to ctx; -SHP_E_USAGE/-SHP_E_INVAL with ctx->err on a bad value. */
int cli_apply_global(struct cli_ctx *ctx, int id, const char *arg);
/* Check a value against flag->values; -SHP_E_INVAL naming the option otherwise. */
int cli_check_value(const struct shp_flag *flag, const char *value, struct shp_error *err);

/*
 * interrupt.c: Ctrl-C in the shell. Armed, SIGINT sets a flag (no SA_RESTART) instead of ending
 * shepherd; disarmed, the earlier action is back. Main thread only (the flag is read anywhere).
 */
void cli_interrupt_arm(void);
void cli_interrupt_disarm(void);
bool cli_interrupt_is_armed(void);
/* Whether Ctrl-C came since the flag was last taken. */
bool cli_interrupted(void);
/* cli_interrupted(), and clear the flag. */
bool cli_interrupt_take(void);
/* The flag itself, for shp_httpc_config.interrupt (never NULL). */
const volatile sig_atomic_t *cli_interrupt_flag(void);
/* ctx->err says the command was interrupted (exit 130); returns -SHP_E_INTERRUPTED. */
int cli_interrupt_error(struct cli_ctx *ctx);
/* Sleep ms, less when interrupted: false when Ctrl-C came before or during the nap. */
bool cli_nap_ms(long ms);

/* client.c: calls to shepherdd. On failure they return -code with ctx->err set. */
/* Set up ctx->http (no connection is made yet); a no-op when it exists. */
int cli_connect(struct cli_ctx *ctx) SHP_MUSTCHECK;
/*
 * One request: body may be NULL; mutating methods carry a fresh Idempotency-Key (kept across
 * the retries of a 429/503 that asked for a short wait). On 2xx *ret is the answer (NULL for
 * an empty body).
 */
int cli_call(struct cli_ctx *ctx, const char *method, const char *path, const json_t *body,
	     json_t **ret) SHP_MUSTCHECK;
/*
 * DELETE path and say so with cli_show_done: the answer, or after a 204 the object
 * {k1: v1, k2: v2} naming what was removed.
 */
int cli_delete_done(struct cli_ctx *ctx, const char *path, const struct cli_kind *kind,
		    const char *k1, const char *v1, const char *k2, const char *v2,
		    const char *what);
/*
 * GET a list: route plus query (may be empty; "key=value&..." already escaped), page by page
 * through next_cursor, up to limit items (0: all, capped at CLI_LIST_MAX with a warning).
 * *ret_items is the array of all items.
 */
int cli_list(struct cli_ctx *ctx, const char *route, const char *query, long limit,
	     const char *plural, json_t **ret_items) SHP_MUSTCHECK;
#define CLI_LIST_MAX 10000
/* cli_list, and *ret_first_page is the whole first answer (for members besides the items). */
int cli_list_full(struct cli_ctx *ctx, const char *route, const char *query, long limit,
		  const char *plural, json_t **ret_items, json_t **ret_first_page) SHP_MUSTCHECK;
/* Append "&key=value" (or "key=value" to an empty query) with value escaped; no-op when NULL. */
void cli_query_add(struct shp_buf *query, const char *key, const char *value);
/* route + "/" + the escaped segment (allocated). */
char *cli_path(const char *route, const char *segment);
/* obj[key] = value as a JSON string; -SHP_E_INVAL when value is not UTF-8. NULL is skipped. */
int cli_body_set(struct cli_ctx *ctx, json_t *obj, const char *key,
		 const char *value) SHP_MUSTCHECK;
struct cli_kind;
/*
 * The "NOUN show NAME" and "NOUN delete NAME" commands of a resource at route/NAME, which take
 * no options of their own: GET and show it, or DELETE it and report done_word ("deleted").
 */
int cli_named_show(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		   const struct cli_kind *kind) SHP_MUSTCHECK;
int cli_named_delete(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		     const struct cli_kind *kind, const char *done_word) SHP_MUSTCHECK;
/* One option of a "NOUN list" command that becomes a query parameter. */
struct cli_filter {
	int opt;           /* the option's id */
	const char *key;   /* the query parameter */
	const char *value; /* fixed value for an option without argument; NULL: its argument */
};
/*
 * The "NOUN list" commands: the options in filters (ended by { 0 }) become query parameters,
 * limit_opt is the id of --limit; then list route and show the items as kind.
 */
int cli_filtered_list(int argc, char **argv, struct cli_ctx *ctx, const char *route,
		      const struct cli_kind *kind, const struct cli_filter *filters,
		      int limit_opt) SHP_MUSTCHECK;
/* Parse --limit's value (1..CLI_LIST_MAX). */
int cli_parse_limit(struct cli_ctx *ctx, const char *s, long *ret) SHP_MUSTCHECK;

/* cmd-rbac.c: environments of platform roles, shared with cmd-role.c and cmd-whoami.c. */
/* body[key] = the environments of "test", "prod" or "test,prod" (each once). */
int cli_env_list(struct cli_ctx *ctx, const char *envs, json_t *body,
		 const char *key) SHP_MUSTCHECK;
/* A table cell: an item's allowed_environments joined with commas. */
char *cli_envs_cell(const json_t *item, int64_t now);

/* follow.c: following a task to its end. */
#define CLI_SSE_FRAME_MAX (1u << 20) /* one event-stream frame */
#define CLI_FOLLOW_POLL_MS 500       /* the polling interval when the stream is not available */
/*
 * Follow task id (digits) until it ends: its event stream over a WebSocket, else as Server-Sent
 * Events (either resumed after a break, with backoff), else polling its events
 * (SHEPHERD_WAIT_TRANSPORT forces one; -v says which). In table output the events go to stderr,
 * on a terminal as one progress line. *ret_task is then the finished task, with its steps.
 */
int cli_follow_task(struct cli_ctx *ctx, const char *id, json_t **ret_task) SHP_MUSTCHECK;
/*
 * wait.c: show an accepted request's answer (request_id, ...) as kind; with wait, follow the
 * request to its end (its task live, once it has one) and show the final request instead in
 * JSON and YAML. Returns its outcome: 0 COMPLETED, else the error with a task's exit status.
 */
int cli_request_done(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *answer,
		     bool wait) SHP_MUSTCHECK;
/* The waiting part of it alone, for a caller that reported the answer its own way. */
int cli_request_wait(struct cli_ctx *ctx, int64_t id) SHP_MUSTCHECK;
/* The same for an approval ticket (which its approvers see when the request they may not). */
int cli_ticket_wait(struct cli_ctx *ctx, const char *ticket) SHP_MUSTCHECK;
/*
 * The pieces: GET route/ids (a request or a ticket; noun names it in the lines) until its status
 * is final, one line per change of status, its task followed once; *ret the final object.
 */
int cli_wait_final(struct cli_ctx *ctx, const char *noun, const char *route, const char *ids,
		   json_t **ret) SHP_MUSTCHECK;
/* 0 for a COMPLETED r; else its error, and ctx's exit status as a task with that outcome. */
int cli_wait_outcome(struct cli_ctx *ctx, const char *noun, const json_t *r);
/* "12:00:01 step_started  step 0 'test.sleep' started" for an event object (no newline). */
char *cli_event_line(const json_t *event);

/* util.c: allocation that aborts on OOM, messages, suggestions. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) SHP_PRINTF(1, 2);
void xbuf_add(struct shp_buf *b, const char *s);
void xbuf_addn(struct shp_buf *b, const void *data, size_t n);
void xbuf_addf(struct shp_buf *b, const char *fmt, ...) SHP_PRINTF(2, 3);
#define CLI_BUF_MAX (256u * 1024 * 1024)

/*
 * Read a YAML (or JSON) mapping from path ("-": standard input), at most max bytes, into *ret
 * (a new object); what names the mapping in the error when it is something else.
 */
int cli_read_yaml_object(struct cli_ctx *ctx, const char *path, size_t max, const char *what,
			 json_t **ret);

/* Set ctx->err to a usage error; returns -SHP_E_USAGE. */
int cli_usage_error(struct cli_ctx *ctx, const char *fmt, ...) SHP_PRINTF(2, 3);
/* "shepherd: warning: ..." on stderr, unless --quiet. */
void cli_warn(const struct cli_ctx *ctx, const char *fmt, ...) SHP_PRINTF(2, 3);
/* Informational text on stderr, unless --quiet. */
void cli_note(const struct cli_ctx *ctx, const char *fmt, ...) SHP_PRINTF(2, 3);

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions). */
size_t cli_edit_distance(const char *a, const char *b);
/*
 * The candidate (of n) a mistyped word most likely meant: the closest within 2 edits, else the
 * only candidate the word is a prefix of (2+ characters); NULL when none is close.
 */
const char *cli_suggest(const char *word, const char *const *candidates, size_t n);

/* help.c: help text, generated from the table. */
void cli_help_overview(FILE *out);
void cli_help_command(FILE *out, const struct shp_cmd *cmd);
void cli_help_subcmd(FILE *out, const struct shp_cmd *cmd, const struct shp_subcmd *sub);
/* "shepherd namespace create NAME --environment ENV [...]" */
void cli_print_usage(FILE *out, const struct shp_cmd *cmd, const struct shp_subcmd *sub);
/* Print text word-wrapped to width columns, each line indented by indent spaces. */
void cli_wrap(FILE *out, const char *text, int indent, int width);
