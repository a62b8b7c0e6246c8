/*
 * For the CLI's Criterion tests: the whole shepherd command (cli/main.c built with
 * -Dmain=shepherd_main) run in a child process against a scripted HTTP server on a Unix socket,
 * with a temporary directory as $HOME and no SHEPHERD_* settings.
 */
#pragma once

#include "cleanup.h"

#define HARNESS_MAX_EXCHANGES 16
#define HARNESS_TEXT_MAX 8192

/* cli/main.c, built with -Dmain=shepherd_main. */
int shepherd_main(int argc, char **argv);

/* One run of the command: its exit status, and what it wrote (owned, see harness_run_free). */
struct harness_run {
	int status;
	char *out;
	char *err;
};

/* Set by harness_setup: the temporary directory and the server's socket in it. */
extern char harness_dir[64];
extern char harness_sock_path[128];

/*
 * Make the directory /tmp/<name>.XXXXXX, start the server on <dir>/shepherdd.sock, set HOME to
 * the directory and unset XDG_CONFIG_HOME, XDG_STATE_HOME and the SHEPHERD_* variables.
 */
void harness_setup(const char *name);
/* Stop the server and remove the directory. */
void harness_teardown(void);

/*
 * Script the raw answer (status line, headers and body) to the next request; requests beyond
 * the script get a 500 INTERNAL error. The server closes each connection after its answer.
 */
void harness_expect_raw(const char *fmt, ...) SHP_PRINTF(1, 2);
/* How many answers are scripted so far. */
int harness_n_script(void);
/* How many requests the server has read. */
int harness_n_requests(void);
/* Request i as it came: the request line and headers, then the body. */
const char *harness_request(int i);

/*
 * Run the command with argv (NULL-terminated) in a fresh process image of this binary, so that
 * exit-time checks such as LeakSanitizer's run as they do for the real command. Its stdin comes
 * from in_path (NULL: the test's own). Its stdout goes to out_path, and the result's out is
 * then empty; with out_path NULL, the result has what it wrote.
 */
struct harness_run harness_run_argv(char **argv, const char *in_path, const char *out_path);
/* shepherd --socket <the server> ARGS... (NULL-terminated), stdin as for harness_run_argv. */
struct harness_run harness_shepherd(const char *in_path, const char *first, ...)
	__attribute__((sentinel));
void harness_run_free(struct harness_run *r);
