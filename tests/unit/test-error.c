/*
 * Unit tests of lib/error.c: the code table (every code has a name, an API code, an HTTP
 * status and an exit status), set/prefix/detail/api_code behaviour, NULL err, and the
 * "untouched on success" convention seen from a caller.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "util.h"

Test(error, every_code_has_a_complete_row)
{
	for (int c = SHP_OK; c < _SHP_E_MAX; c++) {
		const char *name = shp_errc_to_string((enum shp_errc)c);
		const char *api = shp_errc_api_code((enum shp_errc)c);
		int status = shp_errc_http_status((enum shp_errc)c);
		enum shp_exit ex = shp_errc_exit_status((enum shp_errc)c);

		cr_assert_not_null(name, "code %d", c);
		cr_assert_not_null(api, "code %d", c);
		cr_assert_eq(strncmp(name, "SHP_", 4), 0, "code %d: %s", c, name);
		cr_assert_gt(strlen(api), 1, "code %d", c);
		for (const char *p = api; *p; p++)
			cr_assert(isupper((unsigned char)*p) || *p == '_', "code %d: %s", c, api);
		cr_assert(status >= 200 && status <= 599, "code %d: %d", c, status);
		cr_assert(((int)ex >= SHP_EXIT_OK && ex <= SHP_EXIT_RETRY) ||
				  ex == SHP_EXIT_INTERRUPTED,
			  "code %d", c);
		if (c == SHP_OK) {
			cr_assert_eq(status, 200);
			cr_assert_eq(ex, SHP_EXIT_OK);
		} else {
			cr_assert_geq(status, 400, "code %d", c);
			cr_assert_neq(ex, SHP_EXIT_OK, "code %d must fail the CLI", c);
		}
		for (int d = SHP_OK; d < c; d++)
			cr_assert_str_neq(name, shp_errc_to_string((enum shp_errc)d));
	}
}

Test(error, table_values)
{
	static const struct {
		enum shp_errc code;
		const char *name, *api;
		int status;
		enum shp_exit ex;
	} rows[] = {
		{SHP_E_INVAL, "SHP_E_INVAL", "INVALID_ARGUMENT", 400, SHP_EXIT_INVALID},
		{SHP_E_MALFORMED, "SHP_E_MALFORMED", "MALFORMED_REQUEST", 400, SHP_EXIT_INVALID},
		{SHP_E_USAGE, "SHP_E_USAGE", "USAGE", 400, SHP_EXIT_USAGE},
		{SHP_E_UNAUTH, "SHP_E_UNAUTH", "UNAUTHENTICATED", 401, SHP_EXIT_PERM},
		{SHP_E_PERM, "SHP_E_PERM", "FORBIDDEN", 403, SHP_EXIT_PERM},
		{SHP_E_NOTFOUND, "SHP_E_NOTFOUND", "NOT_FOUND", 404, SHP_EXIT_NOTFOUND},
		{SHP_E_METHOD, "SHP_E_METHOD", "METHOD_NOT_ALLOWED", 405, SHP_EXIT_FAILURE},
		{SHP_E_CONFLICT, "SHP_E_CONFLICT", "CONFLICT", 409, SHP_EXIT_CONFLICT},
		{SHP_E_LIMIT, "SHP_E_LIMIT", "PAYLOAD_TOO_LARGE", 413, SHP_EXIT_INVALID},
		{SHP_E_MEDIA, "SHP_E_MEDIA", "UNSUPPORTED_MEDIA_TYPE", 415, SHP_EXIT_INVALID},
		{SHP_E_UNPROCESSABLE, "SHP_E_UNPROCESSABLE", "UNPROCESSABLE", 422,
		 SHP_EXIT_INVALID},
		{SHP_E_RATE, "SHP_E_RATE", "RATE_LIMITED", 429, SHP_EXIT_RETRY},
		{SHP_E_NOMEM, "SHP_E_NOMEM", "INTERNAL", 500, SHP_EXIT_SERVER},
		{SHP_E_INTERNAL, "SHP_E_INTERNAL", "INTERNAL", 500, SHP_EXIT_SERVER},
		{SHP_E_DB, "SHP_E_DB", "INTERNAL", 500, SHP_EXIT_SERVER},
		{SHP_E_IO, "SHP_E_IO", "INTERNAL", 500, SHP_EXIT_FAILURE},
		{SHP_E_K8S, "SHP_E_K8S", "UPSTREAM_ERROR", 502, SHP_EXIT_SERVER},
		{SHP_E_PROTO, "SHP_E_PROTO", "PROTOCOL_ERROR", 502, SHP_EXIT_SERVER},
		{SHP_E_UNAVAIL, "SHP_E_UNAVAIL", "UNAVAILABLE", 503, SHP_EXIT_RETRY},
		{SHP_E_TIMEOUT, "SHP_E_TIMEOUT", "TIMEOUT", 504, SHP_EXIT_RETRY},
		{SHP_E_UNREACHABLE, "SHP_E_UNREACHABLE", "UNREACHABLE", 503, SHP_EXIT_UNREACHABLE},
		{SHP_E_INTERRUPTED, "SHP_E_INTERRUPTED", "INTERRUPTED", 500, SHP_EXIT_INTERRUPTED},
	};

	cr_assert_eq(sizeof(rows) / sizeof(rows[0]), _SHP_E_MAX - 1, "one row per error code");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		cr_assert_str_eq(shp_errc_to_string(rows[i].code), rows[i].name);
		cr_assert_str_eq(shp_errc_api_code(rows[i].code), rows[i].api);
		cr_assert_eq(shp_errc_http_status(rows[i].code), rows[i].status, "%s",
			     rows[i].name);
		cr_assert_eq(shp_errc_exit_status(rows[i].code), rows[i].ex, "%s", rows[i].name);
	}
}

Test(error, out_of_range_codes_read_as_internal)
{
	cr_assert_str_eq(shp_errc_to_string((enum shp_errc) - 1), "SHP_E_INTERNAL");
	cr_assert_str_eq(shp_errc_to_string(_SHP_E_MAX), "SHP_E_INTERNAL");
	cr_assert_str_eq(shp_errc_api_code((enum shp_errc)1000), "INTERNAL");
	cr_assert_eq(shp_errc_http_status(_SHP_E_MAX), 500);
	cr_assert_eq(shp_errc_exit_status(_SHP_E_MAX), SHP_EXIT_SERVER);
}

Test(error, api_codes_map_back)
{
	for (int c = SHP_E_INVAL; c < _SHP_E_MAX; c++) {
		const char *api = shp_errc_api_code((enum shp_errc)c);
		int status = shp_errc_http_status((enum shp_errc)c);
		enum shp_errc back = shp_errc_from_api(api, status);

		/* Codes that share a row on the wire (NOMEM, INTERNAL, DB) map to one of them. */
		cr_assert_str_eq(shp_errc_api_code(back), api, "code %d", c);
		cr_assert_eq(shp_errc_http_status(back), status, "code %d", c);
	}
	cr_assert_eq(shp_errc_from_api("NOT_FOUND", 404), SHP_E_NOTFOUND);
	cr_assert_eq(shp_errc_from_api("CONFIRMATION_REQUIRED", 409), SHP_E_CONFLICT);
	cr_assert_eq(shp_errc_from_api("SOMETHING_NEW", 422), SHP_E_UNPROCESSABLE);
	cr_assert_eq(shp_errc_from_api("NOT_FOUND", 500), SHP_E_INTERNAL,
		     "an API code with the wrong status falls back on the status");
	cr_assert_eq(shp_errc_from_api(NULL, 503), SHP_E_UNAVAIL);
}

Test(error, from_http)
{
	cr_assert_eq(shp_errc_from_http(200), SHP_OK);
	cr_assert_eq(shp_errc_from_http(204), SHP_OK);
	cr_assert_eq(shp_errc_from_http(400), SHP_E_INVAL);
	cr_assert_eq(shp_errc_from_http(401), SHP_E_UNAUTH);
	cr_assert_eq(shp_errc_from_http(403), SHP_E_PERM);
	cr_assert_eq(shp_errc_from_http(404), SHP_E_NOTFOUND);
	cr_assert_eq(shp_errc_from_http(405), SHP_E_METHOD);
	cr_assert_eq(shp_errc_from_http(409), SHP_E_CONFLICT);
	cr_assert_eq(shp_errc_from_http(413), SHP_E_LIMIT);
	cr_assert_eq(shp_errc_from_http(415), SHP_E_MEDIA);
	cr_assert_eq(shp_errc_from_http(418), SHP_E_INVAL);
	cr_assert_eq(shp_errc_from_http(422), SHP_E_UNPROCESSABLE);
	cr_assert_eq(shp_errc_from_http(429), SHP_E_RATE);
	cr_assert_eq(shp_errc_from_http(500), SHP_E_INTERNAL);
	cr_assert_eq(shp_errc_from_http(502), SHP_E_PROTO);
	cr_assert_eq(shp_errc_from_http(503), SHP_E_UNAVAIL);
	cr_assert_eq(shp_errc_from_http(504), SHP_E_TIMEOUT);
	cr_assert_eq(shp_errc_from_http(599), SHP_E_INTERNAL);
}

Test(error, set_fills_and_returns_minus_code)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_error_set(&err, SHP_E_NOTFOUND, "vm '%s' not found", "web-1"),
		     -SHP_E_NOTFOUND);
	cr_assert_eq(err.code, SHP_E_NOTFOUND);
	cr_assert_str_eq(err.msg, "vm 'web-1' not found");
	cr_assert_eq(err.n_details, 0);
	cr_assert_str_eq(shp_error_api_code_of(&err), "NOT_FOUND");
}

Test(error, set_replaces_everything_from_before)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)shp_error_errno(&err, EACCES, "first");
	shp_error_detail(&err, "k", "v");
	shp_error_api_code(&err, "CUSTOM");
	(void)shp_error_set(&err, SHP_E_CONFLICT, "second");
	cr_assert_eq(err.code, SHP_E_CONFLICT);
	cr_assert_eq(err.sys_errno, 0);
	cr_assert_eq(err.n_details, 0);
	cr_assert_str_eq(err.api_code, "");
	cr_assert_str_eq(err.msg, "second");
}

Test(error, set_may_quote_its_own_message)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)shp_error_set(&err, SHP_E_DB, "connection refused");
	(void)shp_error_set(&err, SHP_E_UNAVAIL, "database down (%s)", err.msg);
	cr_assert_str_eq(err.msg, "database down (connection refused)");
}

Test(error, invalid_codes_become_internal)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_error_set(&err, SHP_OK, "x"), -SHP_E_INTERNAL);
	cr_assert_eq(err.code, SHP_E_INTERNAL);
	cr_assert_eq(shp_error_set(&err, _SHP_E_MAX, "x"), -SHP_E_INTERNAL);
	cr_assert_eq(shp_error_set(&err, (enum shp_errc) - 3, "x"), -SHP_E_INTERNAL);
}

Test(error, null_err_is_safe)
{
	cr_assert_eq(shp_error_set(NULL, SHP_E_PERM, "x %d", 1), -SHP_E_PERM);
	cr_assert_eq(shp_error_errno(NULL, ENOENT, "x"), -SHP_E_IO);
	cr_assert_eq(shp_error_prefix(NULL, "ctx"), -SHP_E_INTERNAL);
	shp_error_detail(NULL, "k", "v");
	shp_error_api_code(NULL, "X");
	shp_error_clear(NULL);
}

Test(error, errno_appends_strerror)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_error_errno(&err, ENOENT, "opening '%s'", "/etc/x"), -SHP_E_IO);
	cr_assert_eq(err.code, SHP_E_IO);
	cr_assert_eq(err.sys_errno, ENOENT);
	cr_assert_str_eq(err.msg, "opening '/etc/x': No such file or directory");
}

Test(error, prefix_adds_context)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)shp_error_set(&err, SHP_E_INVAL, "field 'name' must be a string");
	cr_assert_eq(shp_error_prefix(&err, "creating namespace '%s'", "ns1"), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "creating namespace 'ns1': field 'name' must be a string");
	cr_assert_eq(err.code, SHP_E_INVAL);

	shp_error_clear(&err);
	cr_assert_eq(shp_error_prefix(&err, "ctx"), -SHP_E_INTERNAL, "unset err becomes internal");
	cr_assert_eq(err.code, SHP_E_INTERNAL);
	cr_assert_str_eq(err.msg, "ctx: ");
}

Test(error, details_are_bounded)
{
	struct shp_error err = SHP_ERROR_INIT;
	char long_value[400];

	(void)shp_error_set(&err, SHP_E_INVAL, "bad");
	for (int i = 0; i < SHP_ERROR_DETAILS_MAX + 3; i++)
		shp_error_detail(&err, "field", "f%d", i);
	cr_assert_eq(err.n_details, SHP_ERROR_DETAILS_MAX);
	cr_assert_str_eq(err.details[0].key, "field");
	cr_assert_str_eq(err.details[0].value, "f0");
	cr_assert_str_eq(err.details[SHP_ERROR_DETAILS_MAX - 1].value, "f5");

	shp_error_clear(&err);
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	shp_error_detail(&err, "a-key-much-longer-than-thirty-two-bytes", "%s", long_value);
	cr_assert_eq(strlen(err.details[0].key), sizeof(err.details[0].key) - 1);
	cr_assert_eq(strlen(err.details[0].value), sizeof(err.details[0].value) - 1);
}

Test(error, api_code_override)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)shp_error_set(&err, SHP_E_CONFLICT, "confirm the deletion");
	cr_assert_str_eq(shp_error_api_code_of(&err), "CONFLICT");
	shp_error_api_code(&err, "CONFIRMATION_REQUIRED");
	cr_assert_str_eq(shp_error_api_code_of(&err), "CONFIRMATION_REQUIRED");
	cr_assert_eq(shp_errc_http_status(err.code), 409);
}

Test(error, clear_resets)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)shp_error_set(&err, SHP_E_DB, "x");
	shp_error_detail(&err, "k", "v");
	shp_error_clear(&err);
	cr_assert_eq(err.code, SHP_OK);
	cr_assert_eq(err.n_details, 0);
	cr_assert_str_eq(err.msg, "");
}

Test(error, long_messages_stay_valid_utf8)
{
	struct shp_error err = SHP_ERROR_INIT;
	char text[1200];
	json_t *j;

	/* 'x' then two-byte characters: the 511-byte cut falls inside one of them. */
	text[0] = 'x';
	for (size_t i = 1; i + 2 < sizeof(text); i += 2)
		memcpy(text + i, "\xc3\xa9", 2);
	text[sizeof(text) - 1] = '\0';
	(void)shp_error_set(&err, SHP_E_INVAL, "%s", text + 1);
	cr_assert(shp_utf8_is_valid(err.msg, strlen(err.msg)));
	(void)shp_error_set(&err, SHP_E_INVAL, "%s", text);
	cr_assert(shp_utf8_is_valid(err.msg, strlen(err.msg)));
	cr_assert_eq(strlen(err.msg), SHP_ERROR_MSG_MAX - 1);
	(void)shp_error_prefix(&err, "ctx");
	cr_assert(shp_utf8_is_valid(err.msg, strlen(err.msg)));
	shp_error_detail(&err, "k", "%s", text);
	cr_assert(shp_utf8_is_valid(err.details[0].value, strlen(err.details[0].value)));
	j = json_string(err.msg);
	cr_assert_not_null(j, "the message must be usable in a JSON error body");
	json_decref(j);
}

Test(error, untouched_on_success)
{
	struct shp_error err = SHP_ERROR_INIT;
	long long v = 7;

	(void)shp_error_set(&err, SHP_E_CONFLICT, "earlier");
	shp_error_detail(&err, "k", "v");
	cr_assert_eq(shp_parse_int("42", 0, 100, &v, &err), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(err.code, SHP_E_CONFLICT);
	cr_assert_str_eq(err.msg, "earlier");
	cr_assert_eq(err.n_details, 1);

	cr_assert_eq(shp_parse_int("x", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(v, 42, "outputs are untouched on failure");
	cr_assert_eq(err.code, SHP_E_INVAL);
}
