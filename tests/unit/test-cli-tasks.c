/*
 * shepherd tasks, flags and tenant (the whole CLI, cli/main.c built with main renamed) in a
 * child process against a scripted server on a Unix socket that answers with raw HTTP: submit
 * bodies, following a task over Server-Sent Events, reconnecting with Last-Event-ID, falling
 * back to polling, the exit status of each outcome, and the local checks of flags and roles.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "cli-harness.h"

static char plan_path[160];

static void expect_json(int status, const char *body)
{
	harness_expect_raw("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			   status, strlen(body), body);
}

/* An event stream that ends when the server closes the connection. */
static void expect_sse(const char *frames)
{
	harness_expect_raw("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
			   "no-cache\r\nConnection: close\r\n\r\n%s",
			   frames);
}

static void setup(void)
{
	harness_setup("test-cli-tasks");
	(void)snprintf(plan_path, sizeof(plan_path), "%s/plan.yaml", harness_dir);
	setenv("TZ", "UTC", 1); /* event lines show local times */
	/* the scripted server speaks SSE and JSON: the WebSocket is t0610's and test-wsc's */
	setenv("SHEPHERD_WAIT_TRANSPORT", "sse,poll", 1);
}

TestSuite(tasks, .init = setup, .fini = harness_teardown, .timeout = 60);

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* shepherd --socket SOCK ARGS..., stdin from /dev/null. */
#define shepherd(...) harness_shepherd("/dev/null", __VA_ARGS__)

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
	struct harness_run r;

	write_file(plan_path, plan_yaml);
	expect_json(202, TASK("pending", STEPS));
	r = shepherd("tasks", "submit", "-f", plan_path, "--tenant", "team-a", "--sla", "fast",
		     "--priority", "70", "--wait-lock", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(0), "POST /api/v1/tasks HTTP/1.1\r\n");
	cr_assert_not_null(strcasestr(harness_request(0), "\r\nIdempotency-Key: "), "%s",
			   harness_request(0));
	cr_assert_not_null(
		strstr(harness_request(0),
		       "\r\n\r\n{\"on_busy\":\"wait\",\"plan\":{\"steps\":[{\"action\":"
		       "\"test.sleep\",\"params\":{\"ms\":200},\"targets\":[\"vm-1\"]}]},"
		       "\"priority\":70,\"sla_class\":\"fast\",\"tenant\":\"team-a\"}"),
		"%s", harness_request(0));
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
	harness_run_free(&r);
}

Test(tasks, submit_reads_json_from_standard_input)
{
	struct harness_run r;

	write_file(plan_path, "  {\"steps\": [{\"action\": \"test.sleep\", \"targets\": []}]}\n");
	expect_json(200, TASK("succeeded", ",\"duplicate\":true"));
	r = harness_shepherd(plan_path, "task", "submit", "--file", "-", "--tenant", "team-a", "-o",
			     "json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(harness_request(0), "\r\n\r\n{\"plan\":{\"steps\":[{\"action\":"
						      "\"test.sleep\",\"targets\":[]}]},\"tenant\":"
						      "\"team-a\"}"),
			   "%s", harness_request(0));
	assert_starts(r.out, "{\n  \"actor\": \"alice\",\n");
	cr_assert_str_eq(r.err, "", "-o json adds nothing on stderr");
	harness_run_free(&r);
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
		struct harness_run r;

		(void)snprintf(path, sizeof(path), "%s/%s", harness_dir, cases[i].file);
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
		harness_run_free(&r);
	}
	cr_assert_eq(harness_n_requests(), 0);
	/* Both options are required. */
	struct harness_run r = shepherd("tasks", "submit", "--tenant", "team-a", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "needs '--file FILE'"), "%s", r.err);
	harness_run_free(&r);
}

/* ---- following ------------------------------------------------------------------------------ */

Test(tasks, submit_wait_follows_the_stream)
{
	struct harness_run r;

	write_file(plan_path, plan_yaml);
	expect_json(202, TASK("pending", ""));
	expect_sse(": keepalive\n\n" FRAME(1, "status", "task 12 is running")
			   FRAME(2, "step_started", "step 0 'test.sleep' started") END_FRAME);
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "submit", "-f", plan_path, "--tenant", "team-a", "--wait", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(1), "GET /api/v1/tasks/12/stream HTTP/1.1\r\n");
	cr_assert_not_null(strstr(harness_request(1), "\r\nAccept: text/event-stream\r\n"), "%s",
			   harness_request(1));
	cr_assert_null(strstr(harness_request(1), "Last-Event-ID"),
		       "the first connection starts at 0");
	assert_starts(harness_request(2), "GET /api/v1/tasks/12 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err, "Following task 12; interrupting stops the following, not the "
				"task.\n"
				"12:00:01 status        task 12 is running\n"
				"12:00:02 step_started  step 0 'test.sleep' started\n");
	assert_starts(r.out, "ID:           12\nStatus:       succeeded\n");
	harness_run_free(&r);
}

Test(tasks, a_broken_stream_is_resumed_after_the_last_event)
{
	struct harness_run r;

	/* Closed after event 2, without the end frame; the second connection repeats event 2. */
	expect_sse(FRAME(1, "status", "running") FRAME(2, "step_started", "started") "id: 3\nda");
	expect_sse(FRAME(2, "step_started", "started") FRAME(3, "step_finished", "failed")
			   END_FRAME);
	expect_json(200, TASK("failed", ",\"error\":\"step 1 'test.fail' failed: boom\"" STEPS));
	r = shepherd("tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_not_null(strstr(harness_request(1), "\r\nLast-Event-ID: 2\r\n"), "%s",
			   harness_request(1));
	cr_assert_str_eq(r.err,
			 "12:00:01 status        running\n"
			 "12:00:02 step_started  started\n"
			 "12:00:03 step_finished failed\n"
			 "shepherd: error: task 12 failed: step 1 'test.fail' failed: boom\n");
	assert_starts(r.out, "ID:           12\nStatus:       failed\n");
	harness_run_free(&r);
}

Test(tasks, no_event_stream_falls_back_to_polling)
{
	struct harness_run r;

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
	assert_starts(harness_request(1),
		      "GET /api/v1/tasks/12/events?after=0&limit=500 HTTP/1.1\r\n");
	assert_starts(harness_request(2),
		      "GET /api/v1/tasks/12/events?after=1&limit=500 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err, "12:00:01 status        running\n"
				"12:00:02 cancel_requested cancel requested by bob\n"
				"shepherd: error: task 12 was cancelled\n");
	cr_assert_not_null(strstr(r.out, "Cancelled:    by bob: oops\n"), "%s", r.out);
	harness_run_free(&r);
}

Test(tasks, an_error_status_falls_back_to_polling_which_reports_it)
{
	struct harness_run r;
	static const char gone[] = "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"task 12 not "
				   "found\"}}";

	expect_json(404, gone);
	expect_json(404, gone);
	r = shepherd("tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 4);
	cr_assert_eq(harness_n_requests(), 2);
	cr_assert_str_eq(r.err, "shepherd: error: task 12 not found\n");
	harness_run_free(&r);
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
		struct harness_run r;

		expect_sse(END_FRAME);
		expect_json(200, cases[i].task);
		r = shepherd("tasks", "watch", "12", "-o", "json", NULL);
		cr_expect_eq(r.status, cases[i].status, "case %zu: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].want), "case %zu: %s", i, r.err);
		cr_expect(strncmp(r.out, "{\n  \"actor\"", 11) == 0,
			  "case %zu: the task alone on stdout: %s", i, r.out);
		harness_run_free(&r);
	}
}

Test(tasks, json_output_has_no_event_lines)
{
	struct harness_run r;

	expect_sse(FRAME(1, "status", "running") END_FRAME);
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "watch", "12", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.err, "");
	cr_assert_not_null(strstr(r.out, "\"steps\": ["), "%s", r.out);
	harness_run_free(&r);
}

Test(tasks, a_refused_reconnection_polls_and_reports)
{
	struct harness_run r;

	/* No server at all: the stream is refused, polling says why. */
	char *missing = NULL;

	cr_assert_neq(asprintf(&missing, "%s/nothing.sock", harness_dir), -1);
	r = shepherd("--socket", missing, "tasks", "watch", "12", NULL);
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "is shepherdd running?"), "%s", r.err);
	free(missing);
	harness_run_free(&r);
}

/* ---- list, show, cancel -----------------------------------------------------------------------
 */

Test(tasks, list_and_show)
{
	struct harness_run r;

	expect_json(200,
		    "{\"items\":[" TASK("running", ",\"error\":null") "],\"next_cursor\":null}");
	r = shepherd("tasks", "list", "--status", "running", "--tenant", "team-a", "-o", "wide",
		     NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(0),
		      "GET /api/v1/tasks?status=running&tenant=team-a&limit=500 HTTP/1.1\r\n");
	assert_starts(r.out, "ID   STATUS    TENANT   ACTOR   MODE         STEPS   AGE");
	cr_assert_not_null(strstr(r.out, "SLA      PLAN HASH      ERROR\n"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "12   running   team-a   alice   background     1/2"),
			   "%s", r.out);
	cr_assert_not_null(strstr(r.out, "medium   0123456789ab   \n"), "%s", r.out);
	harness_run_free(&r);

	expect_json(200, TASK("running", STEPS));
	r = shepherd("tasks", "show", "12", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "task/12\n");
	harness_run_free(&r);

	r = shepherd("tasks", "show", "twelve", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_eq(harness_n_requests(), 2);
	harness_run_free(&r);
	r = shepherd("tasks", "list", "--status", "done", NULL);
	cr_assert_eq(r.status, 7);
	harness_run_free(&r);
}

Test(tasks, cancel)
{
	struct harness_run r;

	expect_json(200, TASK("running", ",\"cancelled_by\":\"alice\""));
	r = shepherd("tasks", "cancel", "12", "--reason", "wrong plan", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(0), "POST /api/v1/tasks/12/cancel HTTP/1.1\r\n");
	cr_assert_not_null(strcasestr(harness_request(0), "\r\nIdempotency-Key: "));
	cr_assert_not_null(strstr(harness_request(0), "\r\n\r\n{\"reason\":\"wrong plan\"}"), "%s",
			   harness_request(0));
	cr_assert_str_eq(r.out, "task/12 cancel requested\n");
	harness_run_free(&r);

	/* --wait: cancelled is what was asked for. */
	expect_json(200, TASK("running", ""));
	expect_sse(FRAME(1, "cancel_requested", "cancel requested by alice") END_FRAME);
	expect_json(200, TASK("cancelled", STEPS));
	r = shepherd("tasks", "cancel", "12", "--wait", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_null(strstr(harness_request(1), "\r\n\r\n{"), "no reason, no body");
	harness_run_free(&r);

	/* It ended otherwise before the cancel took effect. */
	expect_json(200, TASK("succeeded", ""));
	expect_json(200, TASK("succeeded", STEPS));
	r = shepherd("tasks", "cancel", "12", "--wait", NULL);
	cr_assert_eq(r.status, 6, "%s", r.err);
	assert_starts(harness_request(5), "GET /api/v1/tasks/12 HTTP/1.1\r\n");
	cr_assert_str_eq(r.err,
			 "shepherd: error: task 12 succeeded before the cancel took effect\n");
	harness_run_free(&r);
}

/* ---- flags and tenant ---------------------------------------------------------------------- */

Test(tasks, flags)
{
	struct harness_run r;

	expect_json(200, "{\"items\":[{\"scope\":\"level:2\",\"enabled\":false,\"updated_at\":"
			 "\"2020-01-01T00:00:00Z\",\"updated_by\":\"root\"}],\"next_cursor\":null,"
			 "\"default_enabled\":true}");
	r = shepherd("flags", "list", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(r.out, "SCOPE     STATE          UPDATED");
	cr_assert_not_null(strstr(r.out, "\nglobal    on (default)   -"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "\nlevel:2   off            "), "%s", r.out);
	harness_run_free(&r);

	expect_json(200, "{\"scope\":\"tenant:team-a\",\"enabled\":false}");
	r = shepherd("flags", "set", "tenant:team-a", "off", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(1),
		      "PUT /api/v1/execution/flags/tenant%3Ateam-a HTTP/1.1\r\n");
	cr_assert_not_null(strstr(harness_request(1), "\r\n\r\n{\"enabled\":false}"), "%s",
			   harness_request(1));
	cr_assert_str_eq(r.out, "flag/tenant:team-a set off\n");
	harness_run_free(&r);

	harness_expect_raw("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	r = shepherd("flags", "unset", "level:2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(2), "DELETE /api/v1/execution/flags/level%3A2 HTTP/1.1\r\n");
	cr_assert_str_eq(r.out, "flag/level:2 unset\n");
	harness_run_free(&r);

	static const char *const bad[][2] = {
		{"level:4", "on"},    {"level:", "on"},     {"level:12", "on"}, {"tenant:", "on"},
		{"tenant:A_B", "on"}, {"everything", "on"}, {"global", "yes"},
	};
	for (size_t i = 0; i < SHP_ARRAY_SIZE(bad); i++) {
		r = shepherd("flags", "set", bad[i][0], bad[i][1], NULL);
		cr_expect_eq(r.status, 7, "%s %s: %d", bad[i][0], bad[i][1], r.status);
		cr_expect(strstr(r.err, "invalid scope") || strstr(r.err, "invalid state"), "%s",
			  r.err);
		harness_run_free(&r);
	}
	cr_assert_eq(harness_n_requests(), 3, "refused before asking");
}

Test(tasks, tenant_members)
{
	struct harness_run r;

	expect_json(200, "{\"items\":[{\"tenant\":\"team-a\",\"user\":\"alice\",\"role\":"
			 "\"owner\",\"created_at\":\"2020-01-01T00:00:00Z\"}],"
			 "\"next_cursor\":null}");
	r = shepherd("tenant", "members", "team-a", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(0),
		      "GET /api/v1/tenants/team-a/members?limit=500 HTTP/1.1\r\n");
	cr_assert_str_eq(r.out, "member/alice\n");
	harness_run_free(&r);

	expect_json(200, "{\"tenant\":\"team-a\",\"user\":\"bob@example\",\"role\":\"viewer\"}");
	r = shepherd("tenant", "grant", "team-a", "bob@example", "viewer", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(1),
		      "PUT /api/v1/tenants/team-a/members/bob%40example HTTP/1.1\r\n");
	cr_assert_not_null(strstr(harness_request(1), "\r\n\r\n{\"role\":\"viewer\"}"), "%s",
			   harness_request(1));
	cr_assert_str_eq(r.out, "member/bob@example is now viewer of tenant 'team-a'\n");
	harness_run_free(&r);

	harness_expect_raw("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	r = shepherd("tenant", "revoke", "team-a", "bob@example", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_starts(harness_request(2), "DELETE /api/v1/tenants/team-a/members/bob%40example ");
	cr_assert_str_eq(r.out, "{\n  \"tenant\": \"team-a\",\n  \"user\": \"bob@example\"\n}\n");
	harness_run_free(&r);

	r = shepherd("tenant", "grant", "team-a", "bob", "admin", NULL);
	cr_assert_eq(r.status, 7);
	cr_assert_not_null(strstr(r.err, "invalid role 'admin' (expected owner, member or viewer)"),
			   "%s", r.err);
	harness_run_free(&r);
	r = shepherd("tenant", "members", "Team A", NULL);
	cr_assert_eq(r.status, 7);
	harness_run_free(&r);
	cr_assert_eq(harness_n_requests(), 3);
}
