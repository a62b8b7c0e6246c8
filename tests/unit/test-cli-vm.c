/*
 * shepherd vm (the whole CLI, cli/main.c built with main renamed) against a scripted server:
 * the body of a create (disks, cloud-init, overrides, --no-start, --yes), bad local input, the
 * outcome of a request followed with --wait as the exit status, the confirmation a refused
 * request needs named off a terminal, and the diff printed as text or JSON.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "cleanup.h"
#include "cli-harness.h"

static void expect_json(int status, const char *body)
{
	harness_expect_raw("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			   status, strlen(body), body);
}

static void setup(void)
{
	harness_setup("test-cli-vm");
}

TestSuite(vm, .init = setup, .fini = harness_teardown, .timeout = 60);

#define shepherd(...) harness_shepherd("/dev/null", __VA_ARGS__)

#define ACCEPTED(type)                                                                             \
	"{\"request_id\":5,\"type\":\"" type "\",\"status\":\"PENDING_APPROVAL\",\"ticket_id\":7," \
	"\"approval_level\":2,\"task_id\":null,\"status_url\":\"/api/v1/requests/5\"}"
#define REQUEST(status, more)                                                                      \
	"{\"id\":5,\"type\":\"START_VM\",\"status\":\"" status "\",\"ticket_id\":7,"               \
	"\"task_id\":null" more "}"

/* The JSON body of request i. */
static json_t *body_of(int i)
{
	const char *req = harness_request(i);
	const char *body = strstr(req, "\r\n\r\n");
	json_error_t jerr;
	json_t *j;

	cr_assert_not_null(body, "%s", req);
	j = json_loads(body + 4, 0, &jerr);
	cr_assert_not_null(j, "%s: %s", jerr.text, body + 4);
	return j;
}

Test(vm, create_sends_the_spec)
{
	char path[160];
	FILE *f;
	struct harness_run r;

	(void)snprintf(path, sizeof(path), "%s/user-data.yaml", harness_dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("#cloud-config\npackages: [nginx]\n", f);
	fclose(f);
	expect_json(202, ACCEPTED("CREATE_VM"));
	r = shepherd("vm", "create", "web-1", "--namespace", "team-a", "--service", "front",
		     "--template", "debian-12", "--size", "small", "--cpus", "4", "--memory", "8Gi",
		     "--disk", "data=20Gi:fast", "--disk", "logs=5Gi", "--cloud-init", path,
		     "--cluster", "sim1", "--no-start", "--yes", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out,
			 "request 5 CREATE_VM: PENDING_APPROVAL (ticket 7, approval level 2)\n");
	cr_assert(strncmp(harness_request(0), "POST /api/v1/vms HTTP/1.1", 25) == 0);
	json_t *b = body_of(0);
	json_t *want = json_loads(
		"{\"name\":\"web-1\",\"namespace\":\"team-a\",\"service\":\"front\",\"template\":"
		"\"debian-12\",\"size\":\"small\",\"cpus\":4,\"memory\":\"8Gi\",\"disks\":[{"
		"\"name\":"
		"\"data\",\"size\":\"20Gi\",\"storage_class\":\"fast\"},{\"name\":\"logs\","
		"\"size\":"
		"\"5Gi\"}],\"cloud_init\":\"#cloud-config\\npackages: [nginx]\\n\",\"cluster\":"
		"\"sim1\",\"run\":false,\"confirm\":true}",
		0, NULL);

	cr_assert(json_equal(b, want), "%s", json_dumps(b, JSON_SORT_KEYS));
	json_decref(b);
	json_decref(want);
	harness_run_free(&r);
}

Test(vm, bad_local_input_sends_nothing)
{
	static const char *const bad[][3] = {
		{"--disk", "data", "NAME=SIZE"},   {"--disk", "=1Gi", "NAME=SIZE"},
		{"--disk", "d=1Gi:", "NAME=SIZE"}, {"--cpus", "zero", "--cpus"},
		{"--cpus", "2000", "--cpus"},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(bad); i++) {
		struct harness_run r =
			shepherd("vm", "modify", "web-1", bad[i][0], bad[i][1], NULL);

		cr_expect_eq(r.status, 2, "case %zu: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, bad[i][2]), "case %zu: %s", i, r.err);
		harness_run_free(&r);
	}
	struct harness_run r = shepherd("vm", "modify", "web-1", NULL);

	cr_expect_eq(r.status, 2);
	cr_expect_not_null(strstr(r.err, "nothing to change"), "%s", r.err);
	harness_run_free(&r);
	r = shepherd("vm", "create", "web-1", "--namespace", "a", "--service", "s", "--template",
		     "t", "--size", "s", "--cloud-init", "/nonexistent/file", NULL);
	cr_expect_eq(r.status, 1, "%s", r.err);
	cr_expect_not_null(strstr(r.err, "/nonexistent/file"), "%s", r.err);
	harness_run_free(&r);
	cr_assert_eq(harness_n_requests(), 0);
}

Test(vm, wait_outcomes_are_exit_statuses)
{
	static const struct {
		const char *request;
		int status;
		const char *want;
	} cases[] = {
		{REQUEST("COMPLETED", ""), 0, ""},
		{REQUEST("FAILED", ",\"error\":\"boom\""), 1, "request 5 ended FAILED: boom"},
		{REQUEST("REJECTED", ",\"error\":\"no budget\""), 5,
		 "request 5 ended REJECTED: no budget"},
		{REQUEST("CANCELLED", ""), 6, "request 5 ended CANCELLED"},
		{REQUEST("EXPIRED", ""), 9, "request 5 ended EXPIRED"},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++) {
		struct harness_run r;

		expect_json(202, ACCEPTED("START_VM"));
		expect_json(200, cases[i].request);
		r = shepherd("vm", "start", "web-1", "--namespace", "team-a", "--wait", "-o",
			     "json", NULL);
		cr_expect_eq(r.status, cases[i].status, "case %zu: %s", i, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].want), "case %zu: %s", i, r.err);
		cr_expect(strncmp(r.out, "{\n", 2) == 0, "case %zu: the request on stdout: %s", i,
			  r.out);
		harness_run_free(&r);
	}
	cr_assert(strncmp(harness_request(0), "POST /api/v1/vms/web-1/start?namespace=team-a ",
			  46) == 0,
		  "%s", harness_request(0));
	cr_assert(strncmp(harness_request(1), "GET /api/v1/requests/5 ", 23) == 0, "%s",
		  harness_request(1));
}

Test(vm, confirmation_is_named_never_asked_off_a_terminal)
{
	struct harness_run r;

	expect_json(400, "{\"error\":{\"code\":\"CONFIRMATION_REQUIRED\",\"message\":\"DELETE_VM "
			 "needs the requester's confirmation: set 'confirm_name'\",\"details\":{"
			 "\"parameter\":\"confirm_name\",\"environment\":\"prod\"},\"request_id\":"
			 "\"x\"}}");
	r = shepherd("vm", "delete", "db-1", NULL);
	/* the typed name would be asked for on a terminal: elsewhere a usage error naming it */
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "pass --confirm-name db-1"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "no terminal to ask on"), "%s", r.err);
	cr_assert_eq(harness_n_requests(), 1, "asked once, never again");
	harness_run_free(&r);

	expect_json(400, "{\"error\":{\"code\":\"CONFIRMATION_REQUIRED\",\"message\":\"STOP_VM "
			 "needs the requester's confirmation: set 'confirm'\",\"details\":{"
			 "\"parameter\":\"confirm\"},\"request_id\":\"x\"}}");
	r = shepherd("vm", "stop", "web-1", NULL);
	cr_assert_eq(r.status, 7, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "pass --yes"), "%s", r.err);
	harness_run_free(&r);

	expect_json(202, ACCEPTED("DELETE_VM"));
	r = shepherd("vm", "delete", "db-1", "--namespace", "pay", "--confirm-name", "db-1", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(strncmp(harness_request(2),
			  "DELETE /api/v1/vms/db-1?namespace=pay&confirm_name=db-1 ", 56) == 0,
		  "%s", harness_request(2));
	harness_run_free(&r);
}

Test(vm, diff_as_text_and_json)
{
	static const char answer[] = "{\"name\":\"web-1\",\"namespace\":\"team-a\",\"from\":1,"
				     "\"to\":2,\"diff\":\"--- a\\n+++ b\\n@@ -1 +1 @@\\n-cpus: "
				     "2\\n+cpus: 4\\n\"}";
	struct harness_run r;

	expect_json(200, answer);
	r = shepherd("vm", "diff", "web-1", "--from", "1", "--to", "2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "--- a\n+++ b\n@@ -1 +1 @@\n-cpus: 2\n+cpus: 4\n");
	cr_assert(strncmp(harness_request(0), "GET /api/v1/vms/web-1/diff?from=1&to=2 ", 39) == 0,
		  "%s", harness_request(0));
	harness_run_free(&r);
	expect_json(200, answer);
	r = shepherd("vm", "diff", "web-1", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "\"diff\": \"--- a\\n"), "%s", r.out);
	harness_run_free(&r);
	r = shepherd("vm", "diff", "web-1", "--from", "x", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	harness_run_free(&r);
}

Test(vm, ambiguous_name_is_a_conflict)
{
	struct harness_run r;

	expect_json(409, "{\"error\":{\"code\":\"AMBIGUOUS_NAME\",\"message\":\"VM 'web-1' exists "
			 "in several namespaces (a, b): name one with ?namespace=\",\"details\":{"
			 "\"namespaces\":\"a,b\"},\"request_id\":\"x\"}}");
	r = shepherd("vm", "show", "web-1", NULL);
	cr_assert_eq(r.status, 6, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "several namespaces"), "%s", r.err);
	harness_run_free(&r);
}
