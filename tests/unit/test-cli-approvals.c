/*
 * shepherd approvals (the whole CLI, cli/main.c built with main renamed) in a child process
 * against a scripted server on a Unix socket: --set builds the full replacement from the
 * effective spec (typed fields, an empty value removes one), --file replaces it whole, approve
 * sends the plan hash the ticket showed for the chosen cluster, and the checks made before
 * anything is sent.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "cli-harness.h"

static char spec_path[160];

static void expect_json(int status, const char *body)
{
	harness_expect_raw("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			   status, strlen(body), body);
}

static void setup(void)
{
	harness_setup("test-cli-approvals");
	(void)snprintf(spec_path, sizeof(spec_path), "%s/spec.yaml", harness_dir);
}

TestSuite(approvals, .init = setup, .fini = harness_teardown, .timeout = 60);

/* shepherd --socket SOCK ARGS..., stdin from /dev/null (not a terminal). */
#define shepherd(...) harness_shepherd("/dev/null", __VA_ARGS__)

/* The body of request i (after the blank line). */
static const char *body_of(int i)
{
	const char *b = strstr(harness_request(i), "\r\n\r\n");

	cr_assert_not_null(b, "%s", harness_request(i));
	return b + 4;
}

static void assert_has(const char *text, const char *part)
{
	cr_assert_not_null(strstr(text, part), "wanted '%s' in: %s", part, text);
}

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SPEC                                                                                       \
	"{\"name\":\"web-1\",\"namespace\":\"team-t\",\"service\":\"web\",\"system\":\"shop\","    \
	"\"template\":\"debian-12\",\"template_version\":1,\"size\":\"small\",\"cpus\":2,"         \
	"\"memory\":\"2Gi\",\"description\":\"a VM\"}"
#define TICKET(plan)                                                                               \
	"{\"id\":7,\"request_id\":12,\"type\":\"CREATE_VM\",\"status\":\"PENDING_APPROVAL\","      \
	"\"effective_spec\":" SPEC ",\"requested_spec\":" SPEC ",\"modified_spec\":null," plan     \
	",\"decisions\":[]}"
#define PREVIEW                                                                                    \
	"{\"ticket_id\":7,\"diff\":\"--- requested\\n+++ modified\\n@@ -1 +1 @@\\n-cpus: 2\\n"     \
	"+cpus: 4\\n\",\"warnings\":[],\"removed_fields\":0,\"plan_hash\":\"" HASH "\","           \
	"\"cluster\":\"sim1\"}"

Test(approvals, set_builds_the_full_replacement)
{
	struct harness_run r;

	expect_json(200, TICKET("\"current_plan_hash\":null"));
	expect_json(200, PREVIEW);
	r = shepherd("approvals", "preview", "7", "--set", "cpu=4", "--set", "memory=8Gi", "--set",
		     "storage_class=fast", "--set", "template_version=3", "--set", "size=large",
		     "--set", "cluster=sim1", "--set", "run=false", "--set", "description=", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(harness_n_requests(), 2);
	assert_has(harness_request(0), "GET /api/v1/approvals/7 HTTP/1.1\r\n");
	assert_has(harness_request(1), "POST /api/v1/admin/approvals/7/preview HTTP/1.1\r\n");
	/* typed, every other field kept, the emptied one gone (jansson sorts no keys: as sent) */
	assert_has(body_of(1), "\"cpus\":4");
	assert_has(body_of(1), "\"memory\":\"8Gi\"");
	assert_has(body_of(1), "\"storage_class\":\"fast\"");
	assert_has(body_of(1), "\"template_version\":3");
	assert_has(body_of(1), "\"size\":\"large\"");
	assert_has(body_of(1), "\"cluster\":\"sim1\"");
	assert_has(body_of(1), "\"run\":false");
	assert_has(body_of(1), "\"name\":\"web-1\"");
	assert_has(body_of(1), "\"system\":\"shop\"");
	cr_assert_null(strstr(body_of(1), "description"), "%s", body_of(1));
	/* the diff on stdout, uncoloured off a terminal; the hash on stderr */
	assert_has(r.out, "-cpus: 2\n+cpus: 4\n");
	cr_assert_null(strchr(r.out, '\033'), "%s", r.out);
	assert_has(r.err, "plan hash: " HASH);
	harness_run_free(&r);
}

Test(approvals, bad_set_values_are_refused_before_sending)
{
	static const char *const bad[] = {
		"cpu=lots", "cpu=0", "template_version=-1", "run=maybe", "colour=red", "=4", "cpu"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct harness_run r;
		int before = harness_n_requests();

		expect_json(200, TICKET("\"current_plan_hash\":null"));
		r = shepherd("approvals", "preview", "7", "--set", bad[i], NULL);
		cr_assert_eq(r.status, 2, "--set %s: %d %s", bad[i], r.status, r.err);
		cr_assert_eq(harness_n_requests(), before + 1, "only the GET: --set %s", bad[i]);
		harness_run_free(&r);
	}
}

Test(approvals, file_replaces_the_spec_whole)
{
	struct harness_run r;
	FILE *f = fopen(spec_path, "w");

	cr_assert_not_null(f);
	fputs("name: web-1\nnamespace: team-t\nservice: web\ntemplate: debian-12\nsize: large\n",
	      f);
	fclose(f);
	expect_json(200, PREVIEW);
	r = shepherd("approvals", "preview", "7", "--file", spec_path, "--cluster", "sim1", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(harness_n_requests(), 1, "no GET: the file is the whole spec");
	assert_has(body_of(0), "\"size\":\"large\"");
	assert_has(body_of(0), "\"cluster\":\"sim1\"");
	cr_assert_null(strstr(body_of(0), "cpus"), "%s", body_of(0));
	harness_run_free(&r);
}

Test(approvals, set_and_file_together_are_refused)
{
	struct harness_run r =
		shepherd("approvals", "preview", "7", "--set", "cpu=4", "--file", spec_path, NULL);

	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert_eq(harness_n_requests(), 0);
	harness_run_free(&r);
	r = shepherd("approvals", "preview", "7", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	harness_run_free(&r);
}

Test(approvals, approve_sends_the_hash_it_was_shown)
{
	struct harness_run r;

	expect_json(200, TICKET("\"current_plan_hash\":\"" HASH "\",\"plan_cluster\":\"sim1\""));
	expect_json(202, "{\"ticket_id\":7,\"status\":\"APPROVED\",\"approvals\":1,"
			 "\"approvals_required\":1,\"already_approved\":false,\"task_id\":31}");
	r = shepherd("approvals", "approve", "7", "--cluster", "sim1", "--reason", "fine", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	assert_has(harness_request(0), "GET /api/v1/approvals/7?cluster=sim1 HTTP/1.1\r\n");
	assert_has(harness_request(1), "POST /api/v1/approvals/7/approve HTTP/1.1\r\n");
	assert_has(body_of(1), "\"plan_hash\":\"" HASH "\"");
	assert_has(body_of(1), "\"cluster\":\"sim1\"");
	assert_has(body_of(1), "\"reason\":\"fine\"");
	assert_has(r.out, "ticket 7 approved: task 31 runs it\n");
	harness_run_free(&r);
}

Test(approvals, approve_without_a_cluster_says_which_option)
{
	struct harness_run r;

	expect_json(200, TICKET("\"current_plan_hash\":null,\"plan_cluster\":null"));
	r = shepherd("approvals", "approve", "7", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	assert_has(r.err, "--cluster");
	cr_assert_eq(harness_n_requests(), 1, "nothing is approved");
	harness_run_free(&r);
}

Test(approvals, modify_off_a_terminal_needs_yes)
{
	struct harness_run r;

	expect_json(200, TICKET("\"current_plan_hash\":null"));
	expect_json(200, PREVIEW);
	r = shepherd("approvals", "modify", "7", "--set", "cpu=4", "--reason", "more", NULL);
	cr_assert_eq(r.status, 2, "%s", r.err);
	assert_has(r.err, "--yes");
	cr_assert_eq(harness_n_requests(), 2, "the preview, then nothing");
	harness_run_free(&r);
}
