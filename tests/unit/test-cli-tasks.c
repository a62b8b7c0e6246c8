/*
 * shepherd tasks, flags and tenant (the whole CLI, cli/main.c built with main renamed) in a
 * child process against a scripted server on a Unix socket that answers with raw HTTP: submit
 * bodies, following a task over Server-Sent Events, reconnecting with Last-Event-ID, falling
 * back to polling, the exit status of each outcome, and the local checks of flags and roles.
 */
#include "config.h"

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

/* run() executes this very binary with BE_SHEPHERD set: it is then the shepherd command. */
__attribute__((constructor)) static void be_shepherd(int argc, char **argv)
{
	if (!getenv(BE_SHEPHERD))
		return;
	unsetenv(BE_SHEPHERD);
	exit(shepherd_main(argc, argv));
}

#define MAX_EXCHANGES 16
#define TEXT_MAX 8192

/* The server (a separate process) answers each connection with the next raw answer. */
struct exchange {
	char answer[TEXT_MAX];
	char request[TEXT_MAX];
};

struct shared {
	int n_script;
	int n_requests;
	struct exchange x[MAX_EXCHANGES];
};

static struct shared *sh;
static char dir[64];
static char sock_path[128];
static char plan_path[160];
static pid_t server = -1;

struct run {
	int status;
	char *out;
	char *err;
};

static void expect_raw(const char *fmt, ...)
{
	va_list ap;

	cr_assert_lt(sh->n_script, MAX_EXCHANGES);
	va_start(ap, fmt);
	(void)vsnprintf(sh->x[sh->n_script++].answer, TEXT_MAX, fmt, ap);
	va_end(ap);
}

static void expect_json(int status, const char *body)
{
	expect_raw("HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
		   "Connection: close\r\n\r\n%s",
		   status, strlen(body), body);
}

/* An event stream that ends when the server closes the connection. */
static void expect_sse(const char *frames)
{
	expect_raw("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
		   "no-cache\r\nConnection: close\r\n\r\n%s",
		   frames);
}

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
	static const char none[] = "HTTP/1.1 500 X\r\nContent-Type: application/json\r\n"
				   "Content-Length: 49\r\nConnection: close\r\n\r\n"
				   "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"none\"}}";
	static char scratch[TEXT_MAX];
	int fd;

	while ((fd = accept(listen_fd, NULL, NULL)) >= 0) {
		int i = sh->n_requests;
		const char *answer = i < sh->n_script ? sh->x[i].answer : none;

		read_request(fd, i < MAX_EXCHANGES ? sh->x[i].request : scratch, TEXT_MAX);
		sh->n_requests = i + 1;
		(void)!send(fd, answer, strlen(answer), MSG_NOSIGNAL);
		close(fd);
	}
}

static void setup(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	(void)snprintf(dir, sizeof(dir), "/tmp/test-cli-tasks.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	(void)snprintf(sock_path, sizeof(sock_path), "%s/shepherdd.sock", dir);
	(void)snprintf(plan_path, sizeof(plan_path), "%s/plan.yaml", dir);
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
	setenv("HOME", dir, 1);
	setenv("TZ", "UTC", 1); /* event lines show local times */
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

TestSuite(tasks, .init = setup, .fini = teardown, .timeout = 60);

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

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Run shepherd --socket SOCK with argv (NULL-terminated), stdin from in_path (or /dev/null). */
static struct run run_in(const char *in_path, const char *first, ...)
{
	char *argv[32] = {"shepherd", "--socket", sock_path};
	char outp[160], errp[160];
	struct run r = {0};
	int argc = 3, st;
	va_list ap;
	pid_t pid;

	va_start(ap, first);
	for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	(void)snprintf(outp, sizeof(outp), "%s/out", dir);
	(void)snprintf(errp, sizeof(errp), "%s/err", dir);
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int i = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(i, 0);
		dup2(o, 1);
		dup2(e, 2);
		setenv(BE_SHEPHERD, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "shepherd died: status %d", st);
	r.status = WEXITSTATUS(st);
	r.out = slurp(outp);
	r.err = slurp(errp);
	return r;
}

#define shepherd(...) run_in(NULL, __VA_ARGS__)

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

static void assert_starts(const char *text, const char *prefix)
{
	cr_assert(strncmp(text, prefix, strlen(prefix)) == 0, "wanted '%s' at the start of: %s",
		  prefix, text);
}

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TASK(status, more)                                                                         \
	"{\"id\":12,\"tenant\":\"team-a\",\"actor\":\"alice\",\"status\":\"" status "\","          \
	"\"mode\":\"background\",\"mode_reason\":\"estimated 12000 ms\",\"sla_class\":"            \
	"\"medium\",\"priority\":50,\"plan_hash\":\"" HASH "\",\"steps_total\":2,"                 \
	"\"steps_done\":1,\"timeout_ms\":30000,\"timeout_policy_id\":\"medium_read\","             \
	"\"created_at\":\"2020-01-01T12:00:00Z\"" more "}"
#define STEPS                                                                                      \
	",\"steps\":[{\"index\":0,\"action\":\"test.sleep\",\"targets\":[\"vm-1\",\"vm-2\"],"      \
	"\"status\":\"succeeded\",\"attempts\":1,\"started_at\":\"2020-01-01T12:00:01Z\","         \
	"\"ended_at\":\"2020-01-01T12:00:03Z\",\"error\":null},{\"index\":1,\"action\":"           \
	"\"test.fail\",\"targets\":[\"vm-1\"],\"status\":\"failed\",\"attempts\":2,"               \
	"\"error\":\"boom\"}]"
#define EVENT(id, type, msg)                                                                       \
	"{\"id\":" #id ",\"task_id\":12,\"type\":\"" type "\",\"step_index\":0,\"message\":\"" msg \
	"\",\"created_at\":\"2020-01-01T12:00:0" #id "Z\"}"
#define FRAME(id, type, msg) "id: " #id "\nevent: " type "\ndata: " EVENT(id, type, msg) "\n\n"
#define END_FRAME "event: end\ndata: " TASK("succeeded", "") "\n\n"

static const char plan_yaml[] = "steps:\n"
				"  - action: test.sleep\n"
				"    targets: [vm-1]\n"
				"    params: {ms: 200}\n";

/* ---- submit --------------------------------------------------------------------------------- */

Test(tasks, submit_sends_the_plan_and_shows_the_task)
{
	struct run r;

	write_file(plan_path, plan_yaml);
	expect_json(202, TASK("pending", STEPS));
	r = shepherd("tasks", "submit", "-f", plan_path, "--tenant", "team-a", "--sla", "fast",
		     "--priority", "70", "--wait-lock", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(0), "POST /api/v1/tasks HTTP/1.1\r\n");
	cr_assert_not_null(strcasestr(request(0), "\r\nIdempotency-Key: "), "%s", request(0));
	cr_assert_not_null(
		strstr(request(0),
		       "\r\n\r\n{\"on_busy\":\"wait\",\"plan\":{\"steps\":[{\"action\":"
		       "\"test.sleep\",\"params\":{\"ms\":200},\"targets\":[\"vm-1\"]}]},"
		       "\"priority\":70,\"sla_class\":\"fast\",\"tenant\":\"team-a\"}"),
		"%s", request(0));
	/* The task in detail, then its steps. */
	assert_starts(r.out, "ID:           12\nStatus:       pending\nTenant:       team-a\n");
	cr_assert_not_null(strstr(r.out, "Mode:         background (estimated 12000 ms)\n"), "%s",
			   r.out);
	cr_assert_not_null(strstr(r.out, "Timeout:      30000 ms (medium_read)\n"), "%s", r.out);
	cr_assert_not_null(strstr(r.out,
				  "\n\n#   ACTION       TARGETS     STATUS      ATTEMPTS   "
				  "TIME   ERROR\n"
				  "0   test.sleep   vm-1,vm-2   succeeded          1     2s   \n"
				  "1   test.fail    vm-1        failed             2      -   "
				  "boom\n"),
			   "%s", r.out);
	run_free(&r);
}

Test(tasks, submit_reads_json_from_standard_input)
{
	struct run r;

	write_file(plan_path, "  {\"steps\": [{\"action\": \"test.sleep\", \"targets\": []}]}\n");
	expect_json(200, TASK("succeeded", ",\"duplicate\":true"));
	r = run_in(plan_path, "task", "submit", "--file", "-", "--tenant", "team-a", "-o", "json",
		   NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(request(0), "\r\n\r\n{\"plan\":{\"steps\":[{\"action\":"
					      "\"test.sleep\",\"targets\":[]}]},\"tenant\":"
					      "\"team-a\"}"),
			   "%s", request(0));
	assert_starts(r.out, "{\n  \"actor\": \"alice\",\n");
	cr_assert_str_eq(r.err, "", "-o json adds nothing on stderr");
	run_free(&r);
}

Test(tasks, submit_checks_before_asking)
{
	static const struct {
		const char *file, *tenant, *priority;
		int status;
		const char *want;
	} cases[] = {
		{"plan", "Team_A", NULL, 7, "invalid tenant 'Team_A'"},
		{"plan", "team-a", "101", 2, "invalid value '101' for '--priority'"},
		{"plan", "team-a", "x", 2, "invalid value 'x' for '--priority'"},
		{"missing", "team-a", NULL, 1, "cannot open plan file"},
		{"list", "team-a", NULL, 7, "must hold a plan"},
		{"broken", "team-a", NULL, 7, "cannot read plan file"},
		{"empty", "team-a", NULL, 7, "the file is empty"},
	};
	char path[200];

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		struct run r;

		(void)snprintf(path, sizeof(path), "%s/%s", dir, cases[i].file);
		if (strcmp(cases[i].file, "plan") == 0)
			write_file(path, plan_yaml);
		else if (strcmp(cases[i].file, "list") == 0)
			write_file(path, "- action: test.sleep\n");
		else if (strcmp(cases[i].file, "broken") == 0)
			write_file(path, "{\"steps\": [}");
		else if (strcmp(cases[i].file, "empty") == 0)
			write_file(path, " \n");
		if (cases[i].priority)
			r = shepherd("tasks", "submit", "-f", path, "--tenant", cases[i].tenant,
				     "--priority", cases[i].priority, NULL);
		else
			r = shepherd("tasks", "submit", "-f", path, "--tenant", cases[i].tenant,
				     NULL);
		cr_expect_eq(r.status, cases[i].status, "case %zu: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].want), "case %zu: %s", i, r.err);
		run_free(&r);
	}
	cr_assert_eq(sh->n_requests, 0);
	/* Both options are required. */
	struct run r = shepherd("tasks", "submit", "--tenant", "team-a", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "needs '--file FILE'"), "%s", r.err);
	run_free(&r);
}

/* ---- following ------------------------------------------------------------------------------ */

Test(tasks, submit_wait_follows_the_stream)
{
	struct run r;

	write_file(plan_path, plan_yaml);
	expect_json(202, TASK("pending", ""));
	expect_sse(": keepalive\n\n" FRAME(1, "status", "task 12 is running")
			   FRAME(2, "step_started", "step 0 'test.sleep' started") END_FRAME);
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "submit", "-f", plan_path, "--tenant", "team-a", "--wait", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(1), "GET /api/v1/tasks/12/stream HTTP/1.1\r\n");
	cr_assert_not_null(strstr(request(1), "\r\nAccept: text/event-stream\r\n"), "%s",
			   request(1));
	cr_assert_null(strstr(request(1), "Last-Event-ID"), "the first connection starts at 0");
	assert_starts(request(2), "GET /api/v1/tasks/12 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err, "Following task 12; interrupting stops the following, not the "
				"task.\n"
				"12:00:01 status        task 12 is running\n"
				"12:00:02 step_started  step 0 'test.sleep' started\n");
	assert_starts(r.out, "ID:           12\nStatus:       succeeded\n");
	run_free(&r);
}

Test(tasks, a_broken_stream_is_resumed_after_the_last_event)
{
	struct run r;

	/* Closed after event 2, without the end frame; the second connection repeats event 2. */
	expect_sse(FRAME(1, "status", "running") FRAME(2, "step_started", "started") "id: 3\nda");
	expect_sse(FRAME(2, "step_started", "started") FRAME(3, "step_finished", "failed")
			   END_FRAME);
	expect_json(200, TASK("failed", ",\"error\":\"step 1 'test.fail' failed: boom\"" STEPS));
	r = shepherd("tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_not_null(strstr(request(1), "\r\nLast-Event-ID: 2\r\n"), "%s", request(1));
	cr_assert_str_eq(r.err,
			 "12:00:01 status        running\n"
			 "12:00:02 step_started  started\n"
			 "12:00:03 step_finished failed\n"
			 "shepherd: error: task 12 failed: step 1 'test.fail' failed: boom\n");
	assert_starts(r.out, "ID:           12\nStatus:       failed\n");
	run_free(&r);
}

Test(tasks, no_event_stream_falls_back_to_polling)
{
	struct run r;

	expect_json(200, "{\"not\":\"a stream\"}");
	expect_json(200, "{\"items\":[" EVENT(1, "status", "running") "],\"last_event_id\":1,"
								      "\"done\":false}");
	expect_json(200, "{\"items\":[" EVENT(1, "status", "running") "," EVENT(
				 2, "cancel_requested",
				 "cancel requested by bob") "],"
							    "\"last_event_id\":2,\"done\":true}");
	expect_json(200, TASK("cancelled",
			      ",\"cancelled_by\":\"bob\",\"cancel_reason\":\"oops\"" STEPS));
	r = shepherd("tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 6, "%s", r.err);
	assert_starts(request(1), "GET /api/v1/tasks/12/events?after=0&limit=500 HTTP/1.1\r\n");
	assert_starts(request(2), "GET /api/v1/tasks/12/events?after=1&limit=500 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err, "12:00:01 status        running\n"
				"12:00:02 cancel_requested cancel requested by bob\n"
				"shepherd: error: task 12 was cancelled\n");
	cr_assert_not_null(strstr(r.out, "Cancelled:    by bob: oops\n"), "%s", r.out);
	run_free(&r);
}

Test(tasks, an_error_status_falls_back_to_polling_which_reports_it)
{
	struct run r;
	static const char gone[] = "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"task 12 not "
				   "found\"}}";

	expect_json(404, gone);
	expect_json(404, gone);
	r = shepherd("tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 4);
	cr_assert_eq(sh->n_requests, 2);
	cr_assert_str_eq(r.err, "shepherd: error: task 12 not found\n");
	run_free(&r);
}

Test(tasks, outcomes_are_exit_statuses)
{
	static const struct {
		const char *task;
		int status;
		const char *want;
	} cases[] = {
		{TASK("succeeded", ""), 0, ""},
		{TASK("failed", ",\"error\":\"boom\""), 1, "task 12 failed: boom"},
		{TASK("failed", ",\"timed_out\":true,\"error\":\"over 30000 ms\""), 9,
		 "task 12 timed out: over 30000 ms"},
		{TASK("cancelled", ""), 6, "task 12 was cancelled"},
		{TASK("rejected", ",\"error\":\"approval refused\""), 5,
		 "task 12 was rejected: approval refused"},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		struct run r;

		expect_sse(END_FRAME);
		expect_json(200, cases[i].task);
		r = shepherd("tasks", "watch", "12", "-o", "json", NULL);
		cr_expect_eq(r.status, cases[i].status, "case %zu: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].want), "case %zu: %s", i, r.err);
		cr_expect(strncmp(r.out, "{\n  \"actor\"", 11) == 0,
			  "case %zu: the task alone on stdout: %s", i, r.out);
		run_free(&r);
	}
}

Test(tasks, json_output_has_no_event_lines)
{
	struct run r;

	expect_sse(FRAME(1, "status", "running") END_FRAME);
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "watch", "12", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.err, "");
	cr_assert_not_null(strstr(r.out, "\"steps\": ["), "%s", r.out);
	run_free(&r);
}

Test(tasks, a_refused_reconnection_polls_and_reports)
{
	struct run r;

	/* No server at all: the stream is refused, polling says why. */
	char *missing = NULL;

	cr_assert_neq(asprintf(&missing, "%s/nothing.sock", dir), -1);
	r = run_in(NULL, "--socket", missing, "tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "is shepherdd running?"), "%s", r.err);
	free(missing);
	run_free(&r);
}

/* ---- list, show, cancel -----------------------------------------------------------------------
 */

Test(tasks, list_and_show)
{
	struct run r;

	expect_json(200,
		    "{\"items\":[" TASK("running", ",\"error\":null") "],\"next_cursor\":null}");
	r = shepherd("tasks", "list", "--status", "running", "--tenant", "team-a", "-o", "wide",
		     NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(0),
		      "GET /api/v1/tasks?status=running&tenant=team-a&limit=500 HTTP/1.1\r\n");
	assert_starts(r.out, "ID   STATUS    TENANT   ACTOR   MODE         STEPS   AGE");
	cr_assert_not_null(strstr(r.out, "SLA      PLAN HASH      ERROR\n"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "12   running   team-a   alice   background     1/2"),
			   "%s", r.out);
	cr_assert_not_null(strstr(r.out, "medium   0123456789ab   \n"), "%s", r.out);
	run_free(&r);

	expect_json(200, TASK("running", STEPS));
	r = shepherd("tasks", "show", "12", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "task/12\n");
	run_free(&r);

	r = shepherd("tasks", "show", "twelve", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_eq(sh->n_requests, 2);
	run_free(&r);
	r = shepherd("tasks", "list", "--status", "done", NULL);
	cr_assert_eq(r.status, 7);
	run_free(&r);
}

Test(tasks, cancel)
{
	struct run r;

	expect_json(200, TASK("running", ",\"cancelled_by\":\"alice\""));
	r = shepherd("tasks", "cancel", "12", "--reason", "wrong plan", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(0), "POST /api/v1/tasks/12/cancel HTTP/1.1\r\n");
	cr_assert_not_null(strcasestr(request(0), "\r\nIdempotency-Key: "));
	cr_assert_not_null(strstr(request(0), "\r\n\r\n{\"reason\":\"wrong plan\"}"), "%s",
			   request(0));
	cr_assert_str_eq(r.out, "task/12 cancel requested\n");
	run_free(&r);

	/* --wait: cancelled is what was asked for. */
	expect_json(200, TASK("running", ""));
	expect_sse(FRAME(1, "cancel_requested", "cancel requested by alice") END_FRAME);
	expect_json(200, TASK("cancelled", STEPS));
	r = shepherd("tasks", "cancel", "12", "--wait", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_null(strstr(request(1), "\r\n\r\n{"), "no reason, no body");
	run_free(&r);

	/* It ended otherwise before the cancel took effect. */
	expect_json(200, TASK("succeeded", ""));
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "cancel", "12", "--wait", NULL);
	cr_assert_eq(r.status, 6, "%s", r.err);
	assert_starts(request(5), "GET /api/v1/tasks/12 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err,
			 "shepherd: error: task 12 succeeded before the cancel took effect\n");
	run_free(&r);
}

/* ---- flags and tenant ---------------------------------------------------------------------- */

Test(tasks, flags)
{
	struct run r;

	expect_json(200, "{\"items\":[{\"scope\":\"level:2\",\"enabled\":false,\"updated_at\":"
			 "\"2020-01-01T00:00:00Z\",\"updated_by\":\"root\"}],\"next_cursor\":null,"
			 "\"default_enabled\":true}");
	r = shepherd("flags", "list", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(r.out, "SCOPE     STATE          UPDATED");
	cr_assert_not_null(strstr(r.out, "\nglobal    on (default)   -"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "\nlevel:2   off            "), "%s", r.out);
	run_free(&r);

	expect_json(200, "{\"scope\":\"tenant:team-a\",\"enabled\":false}");
	r = shepherd("flags", "set", "tenant:team-a", "off", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(1), "PUT /api/v1/execution/flags/tenant%3Ateam-a HTTP/1.1\r\n");
	cr_assert_not_null(strstr(request(1), "\r\n\r\n{\"enabled\":false}"), "%s", request(1));
	cr_assert_str_eq(r.out, "flag/tenant:team-a set off\n");
	run_free(&r);

	expect_raw("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	r = shepherd("flags", "unset", "level:2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(2), "DELETE /api/v1/execution/flags/level%3A2 HTTP/1.1\r\n");
	cr_assert_str_eq(r.out, "flag/level:2 unset\n");
	run_free(&r);

	static const char *const bad[][2] = {
		{"level:4", "on"},    {"level:", "on"},     {"level:12", "on"}, {"tenant:", "on"},
		{"tenant:A_B", "on"}, {"everything", "on"}, {"global", "yes"},
	};
	for (size_t i = 0; i < SHP_ARRAY_SIZE(bad); i++) {
		r = shepherd("flags", "set", bad[i][0], bad[i][1], NULL);
		cr_expect_eq(r.status, 7, "%s %s: %d", bad[i][0], bad[i][1], r.status);
		cr_expect(strstr(r.err, "invalid scope") || strstr(r.err, "invalid state"), "%s",
			  r.err);
		run_free(&r);
	}
	cr_assert_eq(sh->n_requests, 3, "refused before asking");
}

Test(tasks, tenant_members)
{
	struct run r;

	expect_json(200, "{\"items\":[{\"tenant\":\"team-a\",\"user\":\"alice\",\"role\":"
			 "\"owner\",\"created_at\":\"2020-01-01T00:00:00Z\"}],"
			 "\"next_cursor\":null}");
	r = shepherd("tenant", "members", "team-a", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(0), "GET /api/v1/tenants/team-a/members?limit=500 HTTP/1.1\r\n");
	cr_assert_str_eq(r.out, "member/alice\n");
	run_free(&r);

	expect_json(200, "{\"tenant\":\"team-a\",\"user\":\"bob@example\",\"role\":\"viewer\"}");
	r = shepherd("tenant", "grant", "team-a", "bob@example", "viewer", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(1), "PUT /api/v1/tenants/team-a/members/bob%40example HTTP/1.1\r\n");
	cr_assert_not_null(strstr(request(1), "\r\n\r\n{\"role\":\"viewer\"}"), "%s", request(1));
	cr_assert_str_eq(r.out, "member/bob@example is now viewer of tenant 'team-a'\n");
	run_free(&r);

	expect_raw("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	r = shepherd("tenant", "revoke", "team-a", "bob@example", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(request(2), "DELETE /api/v1/tenants/team-a/members/bob%40example ");
	cr_assert_str_eq(r.out, "{\n  \"tenant\": \"team-a\",\n  \"user\": \"bob@example\"\n}\n");
	run_free(&r);

	r = shepherd("tenant", "grant", "team-a", "bob", "admin", NULL);
	cr_assert_eq(r.status, 7);
	cr_assert_not_null(strstr(r.err, "invalid role 'admin' (expected owner, member or viewer)"),
			   "%s", r.err);
	run_free(&r);
	r = shepherd("tenant", "members", "Team A", NULL);
	cr_assert_eq(r.status, 7);
	run_free(&r);
	cr_assert_eq(sh->n_requests, 3);
}
