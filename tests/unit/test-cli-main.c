/*
 * The whole CLI (cli/main.c built with main renamed) in a child process, against a scripted
 * HTTP server on a Unix socket: paging, Idempotency-Key, retries, the error report and exit
 * statuses, -o json errors on stdout, token output, usage errors and the stdout check.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "cleanup.h"

int shepherd_main(int argc, char **argv); /* cli/main.c, built with -Dmain=shepherd_main */

#define BE_SHEPHERD "SHP_TEST_BE_SHEPHERD"

/*
 * run_argv() executes this very binary with BE_SHEPHERD set: it is then the shepherd command,
 * before Criterion's main starts (glibc passes argc and argv to constructors).
 */
__attribute__((constructor)) static void be_shepherd(int argc, char **argv)
{
	if (!getenv(BE_SHEPHERD))
		return;
	unsetenv(BE_SHEPHERD);
	exit(shepherd_main(argc, argv));
}

#define MAX_EXCHANGES 16
#define REQUEST_MAX 8192

/*
 * The server is a separate process (the CLI runs in children of the test process, which must
 * stay single-threaded for LeakSanitizer). It answers requests with the scripted replies in
 * order and records them; both live in shared memory.
 */
struct exchange {
	int status;
	char headers[256]; /* extra header lines, each ending in \r\n */
	char body[4096];
	char request[REQUEST_MAX]; /* request line and headers, then the body */
};

struct shared {
	int n_script;
	int n_requests;
	struct exchange x[MAX_EXCHANGES];
};

static struct shared *sh;
static char dir[64];
static char sock_path[128];
static pid_t server = -1;

struct run {
	int status;
	char *out;
	char *err;
};

static void expect(int status, const char *headers, const char *body)
{
	struct exchange *x;

	cr_assert_lt(sh->n_script, MAX_EXCHANGES);
	x = &sh->x[sh->n_script++];
	x->status = status;
	(void)snprintf(x->headers, sizeof(x->headers), "%s", headers ? headers : "");
	(void)snprintf(x->body, sizeof(x->body), "%s", body ? body : "");
}

/* Read one request into out: headers, then Content-Length bytes of body. */
static void read_request(int fd, char *out, size_t size)
{
	size_t len = 0, want = 0;
	char *end = NULL, *cl;
	ssize_t n;

	out[0] = '\0';
	while (len + 1 < size) {
		n = read(fd, out + len, size - 1 - len);
		if (n <= 0)
			return;
		len += (size_t)n;
		out[len] = '\0';
		if (!end && (end = strstr(out, "\r\n\r\n"))) {
			cl = strcasestr(out, "\r\nContent-Length:");
			if (cl && cl < end)
				want = strtoul(cl + 17, NULL, 10);
		}
		if (end && len >= (size_t)(end - out) + 4 + want)
			return;
	}
}

static void serve(int listen_fd)
{
	int fd;

	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		int i = sh->n_requests;
		struct exchange none = {
			500, "", "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"no script\"}}"};
		struct exchange *x = i < sh->n_script ? &sh->x[i] : &none;
		char head[1024];

		read_request(fd, i < MAX_EXCHANGES ? sh->x[i].request : none.request, REQUEST_MAX);
		sh->n_requests = i + 1;
		(void)snprintf(
			head, sizeof(head),
			"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			"Content-Length: %zu\r\nX-Request-Id: rid-%d\r\nConnection: close\r\n"
			"%s\r\n",
			x->status, strlen(x->body), i + 1, x->headers);
		(void)!write(fd, head, strlen(head));
		(void)!write(fd, x->body, strlen(x->body));
		close(fd);
	}
}

static void setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	(void)snprintf(dir, sizeof(dir), "/tmp/test-cli-main.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	(void)snprintf(sock_path, sizeof(sock_path), "%s/shepherdd.sock", dir);
	(void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(fd, 8) == 0);
	server = fork();
	cr_assert_geq(server, 0);
	if (server == 0) {
		serve(fd);
		_exit(0);
	}
	close(fd);
	/* A clean environment: no config file, no SHEPHERD_* settings, no colour questions. */
	setenv("HOME", dir, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_STATE_HOME");
	unsetenv("SHEPHERD_SOCKET");
	unsetenv("SHEPHERD_SERVER");
	unsetenv("SHEPHERD_TOKEN");
	unsetenv("SHEPHERD_OUTPUT");
	unsetenv("SHEPHERD_CONFIG");
}

static void teardown(void)
{
	char cmd[128];

	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
	munmap(sh, sizeof(*sh));
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 30);

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 1 << 20);
	size_t n;

	cr_assert_not_null(f);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Run shepherd with argv (NULL-terminated) in a child, stdout to out_path (or /dev/full). */
static struct run run_argv(char **argv, const char *out_path)
{
	char outp[160], errp[160];
	struct run r = {0};
	int argc = 0, st;
	pid_t pid;

	while (argv[argc])
		argc++;
	(void)snprintf(outp, sizeof(outp), "%s/out", dir);
	(void)snprintf(errp, sizeof(errp), "%s/err", dir);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(out_path ? out_path : outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		/* A fresh process image (see be_shepherd): exit-time checks such as
		 * LeakSanitizer's run as they do for the real command. */
		setenv(BE_SHEPHERD, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "shepherd died: status %d", st);
	r.status = WEXITSTATUS(st);
	r.out = out_path ? strdup("") : slurp(outp);
	r.err = slurp(errp);
	return r;
}

/* shepherd --socket SOCK ARGS... */
static struct run shepherd(const char *first, ...)
{
	char *argv[32] = {"shepherd", "--socket", sock_path};
	int argc = 3;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	return run_argv(argv, NULL);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static const char *request(int i)
{
	cr_assert_lt(i, sh->n_requests, "only %d requests were made", sh->n_requests);
	return sh->x[i].request;
}

#define NS(name) "{\"name\":\"" name "\",\"environment\":\"test\",\"created_at\":null}"

Test(cli, a_list_follows_the_pages)
{
	struct run r;

	expect(200, NULL, "{\"items\":[" NS("a") "," NS("b") "],\"next_cursor\":\"c/2\"}");
	expect(200, NULL, "{\"items\":[" NS("c") "],\"next_cursor\":null}");
	r = shepherd("namespace", "list", "--environment", "test", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "namespace/a\nnamespace/b\nnamespace/c\n");
	cr_assert_eq(sh->n_requests, 2);
	cr_assert(strncmp(request(0), "GET /api/v1/namespaces?environment=test&limit=500 ", 50) ==
			  0,
		  "%s", request(0));
	cr_assert_not_null(strstr(request(1), "&cursor=c%2F2 "), "%s", request(1));
	cr_assert_null(strcasestr(request(0), "Idempotency-Key"), "reads carry no key");
	run_free(&r);
}

Test(cli, limit_stops_early_and_json_prints_the_items)
{
	struct run r;

	expect(200, NULL, "{\"items\":[" NS("a") "," NS("b") "],\"next_cursor\":\"x\"}");
	r = shepherd("ns", "list", "--limit", "2", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(sh->n_requests, 1);
	cr_assert_not_null(strstr(request(0), "?limit=2 "), "%s", request(0));
	cr_assert_eq(r.out[0], '[', "a list prints the array of items: %s", r.out);
	cr_assert_not_null(strstr(r.out, "\"name\": \"b\""), "%s", r.out);
	run_free(&r);
}

Test(cli, empty_list)
{
	struct run r;

	expect(200, NULL, "{\"items\":[],\"next_cursor\":null}");
	r = shepherd("namespace", "list", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "No namespaces found.\n");
	run_free(&r);
}

Test(cli, table_output)
{
	struct run r;

	expect(200, NULL,
	       "{\"items\":[{\"name\":\"team-a\",\"environment\":\"test\",\"description\":\"x\","
	       "\"created_at\":\"2020-01-01T00:00:00Z\",\"id\":4,\"created_by\":\"root\"}],"
	       "\"next_cursor\":null}");
	r = shepherd("namespace", "list", "-o", "wide", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strncmp(r.out, "NAME     ENVIRONMENT   DESCRIPTION   AGE", 40) == 0, "%s", r.out);
	cr_assert_not_null(strstr(r.out, "CREATED BY   ID\n"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "team-a   test          x             "), "%s", r.out);
	cr_assert_null(strchr(r.out, '\033'), "no colour when stdout is not a terminal");
	run_free(&r);
}

Test(cli, mutations_carry_an_idempotency_key)
{
	struct run r;
	const char *key;

	expect(201, NULL, NS("team-a"));
	r = shepherd("namespace", "create", "team-a", "--env=prod", "--description", "Team A",
		     NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "namespace/team-a created\n");
	cr_assert(strncmp(request(0), "POST /api/v1/namespaces ", 24) == 0, "%s", request(0));
	key = strcasestr(request(0), "\r\nIdempotency-Key: ");
	cr_assert_not_null(key);
	cr_assert_eq(strspn(key + 19, "0123456789abcdef"), 32, "128 random bits in hex");
	cr_assert_not_null(strstr(request(0), "\r\n\r\n{\"description\":\"Team A\","
					      "\"environment\":\"prod\",\"name\":\"team-a\"}"),
			   "%s", request(0));
	run_free(&r);

	expect(200, NULL, NS("team-a"));
	r = shepherd("-q", "namespace", "delete", "team-a", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "", "-q keeps the confirmation quiet");
	cr_assert(strncmp(request(1), "DELETE /api/v1/namespaces/team-a ", 33) == 0);
	cr_assert_not_null(strcasestr(request(1), "\r\nIdempotency-Key: "));
	run_free(&r);
}

Test(cli, a_short_retry_after_is_honoured_with_the_same_key)
{
	struct run r;
	const char *k1, *k2;

	expect(429, "Retry-After: 0\r\n",
	       "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow\"}}");
	expect(201, NULL, NS("x"));
	r = shepherd("namespace", "create", "x", "--environment", "test", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(sh->n_requests, 2);
	k1 = strcasestr(request(0), "Idempotency-Key: ");
	k2 = strcasestr(request(1), "Idempotency-Key: ");
	cr_assert(k1 && k2 && strncmp(k1, k2, 17 + 32) == 0, "the retry reuses the key");
	run_free(&r);
}

Test(cli, a_long_retry_after_is_the_callers_business)
{
	struct run r;

	expect(503, "Retry-After: 120\r\n",
	       "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"busy\"}}");
	r = shepherd("status", NULL);
	cr_assert_eq(r.status, 9);
	cr_assert_eq(sh->n_requests, 1);
	cr_assert_str_eq(r.err, "shepherd: error: busy\n");
	run_free(&r);
}

Test(cli, errors_map_to_exit_statuses)
{
	static const struct {
		int http;
		const char *code;
		int exit;
	} cases[] = {
		{404, "NOT_FOUND", 4},        {403, "FORBIDDEN", 5},
		{401, "UNAUTHENTICATED", 5},  {409, "CONFLICT", 6},
		{400, "INVALID_ARGUMENT", 7}, {500, "INTERNAL", 8},
		{502, "UPSTREAM_ERROR", 8},
	};
	char body[160];

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		struct run r;

		(void)snprintf(body, sizeof(body),
			       "{\"error\":{\"code\":\"%s\",\"message\":\"m\"}}", cases[i].code);
		expect(cases[i].http, NULL, body);
		r = shepherd("namespace", "show", "x", NULL);
		cr_expect_eq(r.status, cases[i].exit, "%s: exit %d", cases[i].code, r.status);
		run_free(&r);
	}
}

Test(cli, validation_details_and_request_id)
{
	struct run r;
	const char *body = "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"invalid name\","
			   "\"details\":{\"field\":\"name\"},\"request_id\":\"abc123\"}}";

	expect(400, NULL, body);
	r = shepherd("namespace", "create", "Bad_Name", "--environment", "test", NULL);
	cr_assert_eq(r.status, 7);
	cr_assert_str_eq(r.err, "shepherd: error: invalid name\n  field: name\n");
	cr_assert_str_eq(r.out, "");
	run_free(&r);

	expect(400, NULL, body);
	r = shepherd("-v", "namespace", "create", "Bad_Name", "--environment", "test", NULL);
	cr_assert_not_null(strstr(r.err, "-> POST /api/v1/namespaces\n"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "<- 400 ("), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "  request id: abc123\n"), "%s", r.err);
	run_free(&r);
}

Test(cli, json_mode_prints_the_error_object_on_stdout)
{
	struct run r;

	expect(404, NULL,
	       "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"namespace 'x' not found\","
	       "\"details\":{\"name\":\"x\"},\"request_id\":\"r1\"}}");
	r = shepherd("namespace", "show", "x", "-o", "json", NULL);
	cr_assert_eq(r.status, 4);
	cr_assert_str_eq(r.out,
			 "{\n  \"error\": {\n    \"code\": \"NOT_FOUND\",\n    \"details\": {\n"
			 "      \"name\": \"x\"\n    },\n    \"message\": \"namespace 'x' not "
			 "found\",\n    \"request_id\": \"r1\"\n  }\n}\n");
	cr_assert_str_eq(r.err, "shepherd: error: namespace 'x' not found\n");
	run_free(&r);

	/* Not in table mode, and not for a body that is not the daemon's. */
	expect(404, NULL, "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"gone\"}}");
	r = shepherd("namespace", "show", "x", NULL);
	cr_assert_str_eq(r.out, "");
	run_free(&r);
	expect(502, NULL, "<html>bad gateway</html>");
	r = shepherd("namespace", "show", "x", "--json", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "shepherd: error: HTTP 502 from server\n");
	run_free(&r);
}

Test(cli, token_create_prints_the_token_alone)
{
	struct run r;

	expect(201, NULL,
	       "{\"id\":3,\"name\":\"ci\",\"user\":\"bob\",\"token\":\"shp_s3cr3t\","
	       "\"prefix\":\"shp_s3\",\"created_at\":\"2020-01-01T00:00:00Z\",\"expires_at\":"
	       "null}");
	r = shepherd("token", "create", "ci", "--user", "bob", "--expires", "30d", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "shp_s3cr3t\n");
	cr_assert_not_null(strstr(r.err, "cannot be shown again"), "%s", r.err);
	cr_assert_null(strstr(r.err, "shp_s3cr3t"));
	cr_assert_not_null(strstr(request(0), "{\"expires_in\":\"30d\",\"name\":\"ci\","
					      "\"user\":\"bob\"}"),
			   "%s", request(0));
	run_free(&r);

	r = shepherd("token", "create", "ci", "-o", "name", NULL);
	cr_assert_eq(r.status, 2, "-o name would lose the token");
	cr_assert_eq(sh->n_requests, 1, "and nothing was asked");
	run_free(&r);
}

Test(cli, the_token_never_shows_in_verbose_output)
{
	struct run r;
	char *argv[] = {"shepherd", "--socket", sock_path, "--token", "shp_topsecret",
			"-v",       "whoami",   "-o",      "json",    NULL};

	expect(200, NULL, "{\"name\":\"ci-bot\",\"id\":2}");
	r = run_argv(argv, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strcasestr(request(0), "\r\nAuthorization: Bearer shp_topsecret\r\n"));
	cr_assert_null(strstr(r.err, "topsecret"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "using a bearer token (from token)"), "%s", r.err);
	run_free(&r);
}

Test(cli, token_revoke_checks_the_id)
{
	struct run r;

	r = shepherd("token", "revoke", "abc", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_eq(sh->n_requests, 0);
	run_free(&r);
	expect(200, NULL, "{\"id\":3,\"name\":\"ci\",\"revoked_at\":\"2020-01-01T00:00:00Z\"}");
	r = shepherd("token", "revoke", "3", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "token/3 revoked\n");
	cr_assert(strncmp(request(0), "DELETE /api/v1/tokens/3 ", 24) == 0);
	run_free(&r);
}

Test(cli, unreachable_daemon)
{
	char missing[160];
	char *argv[] = {"shepherd", "--socket", missing, "namespace", "list", NULL};
	char *version[] = {"shepherd", "--socket", missing, "version", NULL};
	struct run r;

	(void)snprintf(missing, sizeof(missing), "%s/nothing.sock", dir);
	r = run_argv(argv, NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_not_null(strstr(r.err, missing), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "is shepherdd running?"), "%s", r.err);
	run_free(&r);
	r = run_argv(version, NULL);
	cr_assert_eq(r.status, 0, "version still answers");
	cr_assert_not_null(strstr(r.out, "server: unreachable"), "%s", r.out);
	run_free(&r);
}

Test(cli, usage_errors)
{
	static const struct {
		const char *args[6];
		const char *want;
	} cases[] = {
		{{"namespaec", "list"}, "did you mean 'namespace'?"},
		{{"namespace", "frobnicate"}, "did you mean one of: create, delete, list, show?"},
		{{"namespace"}, "'namespace' needs a verb"},
		{{"namespace", "create"}, "'namespace create' takes 1 argument, not 0"},
		{{"namespace", "create", "x"}, "needs '--environment ENV'"},
		{{"namespace", "list", "--bogus"}, "unknown option '--bogus' for 'namespace list'"},
		{{"namespace", "list", "--env"}, "option '--env' needs a value"},
		{{"namespace", "list", "--environ", "test"}, "did you mean '--environment'?"},
		{{"--verb", "status"}, "unknown option '--verb'"},
		{{"status", "extra"}, "'status' takes no arguments"},
		{{"help", "nope"}, "unknown command 'nope'"},
		{{"completion", "tcsh"}, "unknown shell 'tcsh'"},
		{{"--timeout", "0", "status"}, "invalid value '0' for '--timeout'"},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		char *argv[10] = {"shepherd", "--socket", sock_path};
		struct run r;
		int n = 3;

		for (int j = 0; cases[i].args[j]; j++)
			argv[n++] = (char *)cases[i].args[j];
		r = run_argv(argv, NULL);
		cr_expect_eq(r.status, 2, "%s: exit %d", cases[i].want, r.status);
		cr_expect_not_null(strstr(r.err, cases[i].want), "wanted '%s' in: %s",
				   cases[i].want, r.err);
		cr_expect_str_eq(r.out, "");
		run_free(&r);
	}
	cr_assert_eq(sh->n_requests, 0, "no usage error reaches the daemon");
}

Test(cli, invalid_values_are_invalid_input)
{
	struct run r = shepherd("namespace", "create", "x", "--environment", "staging", NULL);

	cr_assert_eq(r.status, 7);
	cr_assert_not_null(strstr(r.err, "(expected test or prod)"), "%s", r.err);
	run_free(&r);
	r = shepherd("-o", "xml", "status", NULL);
	cr_assert_eq(r.status, 7);
	run_free(&r);
	cr_assert_eq(sh->n_requests, 0);
}

Test(cli, help_everywhere)
{
	static const char *const forms[][4] = {
		{NULL},
		{"help"},
		{"--help"},
		{"help", "namespace"},
		{"namespace", "--help"},
		{"help", "namespace", "create"},
		{"namespace", "create", "--help"},
		{"ns", "create", "-h"},
		{"help", "version"},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(forms); i++) {
		char *argv[8] = {"shepherd"};
		struct run r;
		int n = 1;

		for (int j = 0; j < 4 && forms[i][j]; j++)
			argv[n++] = (char *)forms[i][j];
		r = run_argv(argv, NULL);
		cr_expect_eq(r.status, 0, "form %zu", i);
		cr_expect(strncmp(r.out, "Usage: shepherd", 15) == 0, "form %zu: %s", i, r.out);
		cr_expect_str_eq(r.err, "");
		run_free(&r);
	}
}

Test(cli, a_write_failure_is_exit_1)
{
	char *argv[] = {"shepherd", "help", NULL};
	struct run r = run_argv(argv, "/dev/full");

	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "write failure on standard output"), "%s", r.err);
	run_free(&r);
}

Test(cli, output_format_from_the_environment)
{
	struct run r;

	setenv("SHEPHERD_OUTPUT", "yaml", 1);
	expect(200, NULL, "{\"name\":\"root\",\"id\":1,\"is_admin\":true}");
	r = shepherd("whoami", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "name: root\n"), "%s", r.out);
	run_free(&r);
	expect(200, NULL, "{\"name\":\"root\",\"id\":1,\"is_admin\":true}");
	r = shepherd("whoami", "-o", "name", NULL);
	cr_assert_str_eq(r.out, "user/root\n", "the command line wins");
	run_free(&r);
}

Test(cli, a_broken_page_is_a_protocol_error)
{
	struct run r;

	expect(200, NULL, "{\"items\":[],\"next_cursor\":\"again\"}");
	r = shepherd("audit", "list", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_not_null(strstr(r.err, "empty page with a cursor"), "%s", r.err);
	run_free(&r);
	expect(200, NULL, "{\"nothing\":1}");
	r = shepherd("cluster", "list", NULL);
	cr_assert_eq(r.status, 8);
	run_free(&r);
	expect(200, NULL, "[1]");
	r = shepherd("cluster", "show", "lab", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_str_eq(r.err,
			 "shepherd: error: unexpected answer from shepherdd: not a cluster\n");
	run_free(&r);
}
