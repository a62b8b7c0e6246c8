/*
 * The whole CLI (cli/main.c built with main renamed) in a child process, against a scripted
 * HTTP server on a Unix socket: paging, Idempotency-Key, retries, the error report and exit
 * statuses, -o json errors on stdout, token output, usage errors and the stdout check.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cleanup.h"
#include "cli-harness.h"

/*
 * Script a JSON answer to the next request: status, extra header lines (each ending in \r\n)
 * and body; each answer carries the request id rid-N, N counting requests from 1.
 */
static void expect(int status, const char *headers, const char *body)
{
	body = body ? body : "";
	harness_expect_raw("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nX-Request-Id: rid-%d\r\nConnection: close\r\n"
			   "%s\r\n%s",
			   status, strlen(body), harness_n_script() + 1, headers ? headers : "",
			   body);
}

static void setup(void)
{
	harness_setup("test-cli-main");
}

TestSuite(cli, .init = setup, .fini = harness_teardown, .timeout = 30);

/* shepherd --socket SOCK ARGS..., with the test's stdin. */
#define shepherd(...) harness_shepherd(NULL, __VA_ARGS__)

#define NS(name) "{\"name\":\"" name "\",\"environment\":\"test\",\"created_at\":null}"

Test(cli, a_list_follows_the_pages)
{
	struct harness_run r;

	expect(200, NULL, "{\"items\":[" NS("a") "," NS("b") "],\"next_cursor\":\"c/2\"}");
	expect(200, NULL, "{\"items\":[" NS("c") "],\"next_cursor\":null}");
	r = shepherd("namespace", "list", "--environment", "test", "-o", "name", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "namespace/a\nnamespace/b\nnamespace/c\n");
	cr_assert_eq(harness_n_requests(), 2);
	cr_assert(strncmp(harness_request(0), "GET /api/v1/namespaces?environment=test&limit=500 ",
			  50) == 0,
		  "%s", harness_request(0));
	cr_assert_not_null(strstr(harness_request(1), "&cursor=c%2F2 "), "%s", harness_request(1));
	cr_assert_null(strcasestr(harness_request(0), "Idempotency-Key"), "reads carry no key");
	harness_run_free(&r);
}

Test(cli, limit_stops_early_and_json_prints_the_items)
{
	struct harness_run r;

	expect(200, NULL, "{\"items\":[" NS("a") "," NS("b") "],\"next_cursor\":\"x\"}");
	r = shepherd("ns", "list", "--limit", "2", "--json", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(harness_n_requests(), 1);
	cr_assert_not_null(strstr(harness_request(0), "?limit=2 "), "%s", harness_request(0));
	cr_assert_eq(r.out[0], '[', "a list prints the array of items: %s", r.out);
	cr_assert_not_null(strstr(r.out, "\"name\": \"b\""), "%s", r.out);
	harness_run_free(&r);
}

Test(cli, empty_list)
{
	struct harness_run r;

	expect(200, NULL, "{\"items\":[],\"next_cursor\":null}");
	r = shepherd("namespace", "list", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "No namespaces found.\n");
	harness_run_free(&r);
}

Test(cli, table_output)
{
	struct harness_run r;

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
	harness_run_free(&r);
}

Test(cli, mutations_carry_an_idempotency_key)
{
	struct harness_run r;
	const char *key;

	expect(201, NULL, NS("team-a"));
	r = shepherd("namespace", "create", "team-a", "--env=prod", "--description", "Team A",
		     NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "namespace/team-a created\n");
	cr_assert(strncmp(harness_request(0), "POST /api/v1/namespaces ", 24) == 0, "%s",
		  harness_request(0));
	key = strcasestr(harness_request(0), "\r\nIdempotency-Key: ");
	cr_assert_not_null(key);
	cr_assert_eq(strspn(key + 19, "0123456789abcdef"), 32, "128 random bits in hex");
	cr_assert_not_null(strstr(harness_request(0),
				  "\r\n\r\n{\"description\":\"Team A\","
				  "\"environment\":\"prod\",\"name\":\"team-a\"}"),
			   "%s", harness_request(0));
	harness_run_free(&r);

	expect(200, NULL, NS("team-a"));
	r = shepherd("-q", "namespace", "delete", "team-a", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "", "-q keeps the confirmation quiet");
	cr_assert(strncmp(harness_request(1), "DELETE /api/v1/namespaces/team-a ", 33) == 0);
	cr_assert_not_null(strcasestr(harness_request(1), "\r\nIdempotency-Key: "));
	harness_run_free(&r);
}

Test(cli, a_short_retry_after_is_honoured_with_the_same_key)
{
	struct harness_run r;
	const char *k1, *k2;

	expect(429, "Retry-After: 0\r\n",
	       "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"slow\"}}");
	expect(201, NULL, NS("x"));
	r = shepherd("namespace", "create", "x", "--environment", "test", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(harness_n_requests(), 2);
	k1 = strcasestr(harness_request(0), "Idempotency-Key: ");
	k2 = strcasestr(harness_request(1), "Idempotency-Key: ");
	cr_assert(k1 && k2 && strncmp(k1, k2, 17 + 32) == 0, "the retry reuses the key");
	harness_run_free(&r);
}

Test(cli, a_long_retry_after_is_the_callers_business)
{
	struct harness_run r;

	expect(503, "Retry-After: 120\r\n",
	       "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"busy\"}}");
	r = shepherd("status", NULL);
	cr_assert_eq(r.status, 9);
	cr_assert_eq(harness_n_requests(), 1);
	cr_assert_str_eq(r.err, "shepherd: error: busy\n");
	harness_run_free(&r);
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
		struct harness_run r;

		(void)snprintf(body, sizeof(body),
			       "{\"error\":{\"code\":\"%s\",\"message\":\"m\"}}", cases[i].code);
		expect(cases[i].http, NULL, body);
		r = shepherd("namespace", "show", "x", NULL);
		cr_expect_eq(r.status, cases[i].exit, "%s: exit %d", cases[i].code, r.status);
		harness_run_free(&r);
	}
}

Test(cli, validation_details_and_request_id)
{
	struct harness_run r;
	const char *body = "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"invalid name\","
			   "\"details\":{\"field\":\"name\"},\"request_id\":\"abc123\"}}";

	expect(400, NULL, body);
	r = shepherd("namespace", "create", "Bad_Name", "--environment", "test", NULL);
	cr_assert_eq(r.status, 7);
	cr_assert_str_eq(r.err, "shepherd: error: invalid name\n  field: name\n");
	cr_assert_str_eq(r.out, "");
	harness_run_free(&r);

	expect(400, NULL, body);
	r = shepherd("-v", "namespace", "create", "Bad_Name", "--environment", "test", NULL);
	cr_assert_not_null(strstr(r.err, "-> POST /api/v1/namespaces\n"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "<- 400 ("), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "  request id: abc123\n"), "%s", r.err);
	harness_run_free(&r);
}

Test(cli, json_mode_prints_the_error_object_on_stdout)
{
	struct harness_run r;

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
	harness_run_free(&r);

	/* Not in table mode, and not for a body that is not the daemon's. */
	expect(404, NULL, "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"gone\"}}");
	r = shepherd("namespace", "show", "x", NULL);
	cr_assert_str_eq(r.out, "");
	harness_run_free(&r);
	expect(502, NULL, "<html>bad gateway</html>");
	r = shepherd("namespace", "show", "x", "--json", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "shepherd: error: HTTP 502 from server\n");
	harness_run_free(&r);
}

Test(cli, token_create_prints_the_token_alone)
{
	struct harness_run r;

	expect(201, NULL,
	       "{\"id\":3,\"name\":\"ci\",\"user\":\"bob\",\"token\":\"shp_s3cr3t\","
	       "\"prefix\":\"shp_s3\",\"created_at\":\"2020-01-01T00:00:00Z\",\"expires_at\":"
	       "null}");
	r = shepherd("token", "create", "ci", "--user", "bob", "--expires", "30d", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "shp_s3cr3t\n");
	cr_assert_not_null(strstr(r.err, "cannot be shown again"), "%s", r.err);
	cr_assert_null(strstr(r.err, "shp_s3cr3t"));
	cr_assert_not_null(strstr(harness_request(0), "{\"expires_in\":\"30d\",\"name\":\"ci\","
						      "\"user\":\"bob\"}"),
			   "%s", harness_request(0));
	harness_run_free(&r);

	r = shepherd("token", "create", "ci", "-o", "name", NULL);
	cr_assert_eq(r.status, 2, "-o name would lose the token");
	cr_assert_eq(harness_n_requests(), 1, "and nothing was asked");
	harness_run_free(&r);
}

Test(cli, the_token_never_shows_in_verbose_output)
{
	struct harness_run r;
	char *argv[] = {"shepherd",      "--socket", harness_sock_path, "--token",
			"shp_topsecret", "-v",       "whoami",          "-o",
			"json",          NULL};

	expect(200, NULL, "{\"name\":\"ci-bot\",\"id\":2}");
	r = harness_run_argv(argv, NULL, NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(
		strcasestr(harness_request(0), "\r\nAuthorization: Bearer shp_topsecret\r\n"));
	cr_assert_null(strstr(r.err, "topsecret"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "using a bearer token (from token)"), "%s", r.err);
	harness_run_free(&r);
}

Test(cli, token_revoke_checks_the_id)
{
	struct harness_run r;

	r = shepherd("token", "revoke", "abc", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_eq(harness_n_requests(), 0);
	harness_run_free(&r);
	expect(200, NULL, "{\"id\":3,\"name\":\"ci\",\"revoked_at\":\"2020-01-01T00:00:00Z\"}");
	r = shepherd("token", "revoke", "3", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "token/3 revoked\n");
	cr_assert(strncmp(harness_request(0), "DELETE /api/v1/tokens/3 ", 24) == 0);
	harness_run_free(&r);
}

Test(cli, unreachable_daemon)
{
	char missing[160];
	char *argv[] = {"shepherd", "--socket", missing, "namespace", "list", NULL};
	char *version[] = {"shepherd", "--socket", missing, "version", NULL};
	struct harness_run r;

	(void)snprintf(missing, sizeof(missing), "%s/nothing.sock", harness_dir);
	r = harness_run_argv(argv, NULL, NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_not_null(strstr(r.err, missing), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "is shepherdd running?"), "%s", r.err);
	harness_run_free(&r);
	r = harness_run_argv(version, NULL, NULL);
	cr_assert_eq(r.status, 0, "version still answers");
	cr_assert_not_null(strstr(r.out, "server: unreachable"), "%s", r.out);
	harness_run_free(&r);
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
		char *argv[10] = {"shepherd", "--socket", harness_sock_path};
		struct harness_run r;
		int n = 3;

		for (int j = 0; cases[i].args[j]; j++)
			argv[n++] = (char *)cases[i].args[j];
		r = harness_run_argv(argv, NULL, NULL);
		cr_expect_eq(r.status, 2, "%s: exit %d", cases[i].want, r.status);
		cr_expect_not_null(strstr(r.err, cases[i].want), "wanted '%s' in: %s",
				   cases[i].want, r.err);
		cr_expect_str_eq(r.out, "");
		harness_run_free(&r);
	}
	cr_assert_eq(harness_n_requests(), 0, "no usage error reaches the daemon");
}

Test(cli, invalid_values_are_invalid_input)
{
	struct harness_run r =
		shepherd("namespace", "create", "x", "--environment", "staging", NULL);

	cr_assert_eq(r.status, 7);
	cr_assert_not_null(strstr(r.err, "(expected test or prod)"), "%s", r.err);
	harness_run_free(&r);
	r = shepherd("-o", "xml", "status", NULL);
	cr_assert_eq(r.status, 7);
	harness_run_free(&r);
	cr_assert_eq(harness_n_requests(), 0);
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
		struct harness_run r;
		int n = 1;

		for (int j = 0; j < 4 && forms[i][j]; j++)
			argv[n++] = (char *)forms[i][j];
		r = harness_run_argv(argv, NULL, NULL);
		cr_expect_eq(r.status, 0, "form %zu", i);
		cr_expect(strncmp(r.out, "Usage: shepherd", 15) == 0, "form %zu: %s", i, r.out);
		cr_expect_str_eq(r.err, "");
		harness_run_free(&r);
	}
}

Test(cli, a_write_failure_is_exit_1)
{
	char *argv[] = {"shepherd", "help", NULL};
	struct harness_run r = harness_run_argv(argv, NULL, "/dev/full");

	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "write failure on standard output"), "%s", r.err);
	harness_run_free(&r);
}

Test(cli, output_format_from_the_environment)
{
	struct harness_run r;

	setenv("SHEPHERD_OUTPUT", "yaml", 1);
	expect(200, NULL, "{\"name\":\"root\",\"id\":1,\"is_admin\":true}");
	r = shepherd("whoami", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "name: root\n"), "%s", r.out);
	harness_run_free(&r);
	expect(200, NULL, "{\"name\":\"root\",\"id\":1,\"is_admin\":true}");
	r = shepherd("whoami", "-o", "name", NULL);
	cr_assert_str_eq(r.out, "user/root\n", "the command line wins");
	harness_run_free(&r);
}

Test(cli, a_broken_page_is_a_protocol_error)
{
	struct harness_run r;

	expect(200, NULL, "{\"items\":[],\"next_cursor\":\"again\"}");
	r = shepherd("audit", "list", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_not_null(strstr(r.err, "empty page with a cursor"), "%s", r.err);
	harness_run_free(&r);
	expect(200, NULL, "{\"nothing\":1}");
	r = shepherd("cluster", "list", NULL);
	cr_assert_eq(r.status, 8);
	harness_run_free(&r);
	expect(200, NULL, "[1]");
	r = shepherd("cluster", "show", "lab", NULL);
	cr_assert_eq(r.status, 8);
	cr_assert_str_eq(r.err,
			 "shepherd: error: unexpected answer from shepherdd: not a cluster\n");
	harness_run_free(&r);
}
