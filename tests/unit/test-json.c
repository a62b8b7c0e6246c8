/*
 * Unit tests of lib/json.c: bounded parsing and its error positions, the typed getters, the
 * unknown-field check and dumping into a capped buffer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"

static const char *detail(const struct shp_error *err, const char *key)
{
	for (int i = 0; i < err->n_details; i++)
		if (strcmp(err->details[i].key, key) == 0)
			return err->details[i].value;
	return NULL;
}

static json_t *parse(const char *text, struct shp_error *err)
{
	return shp_json_parse(text, strlen(text), 32, err);
}

Test(json, parses_any_value)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *a = parse("{\"a\": [1, 2.5, \"x\", true, null]}", &err);
	json_auto_t *b = parse("42", &err);
	json_auto_t *c = parse("\"caf\xc3\xa9\"", &err);

	cr_assert_not_null(a);
	cr_assert_eq(json_array_size(json_object_get(a, "a")), 5);
	cr_assert_eq(json_integer_value(b), 42);
	cr_assert_str_eq(json_string_value(c), "caf\xc3\xa9");
	cr_assert_eq(err.code, SHP_OK, "err must stay untouched on success");
}

Test(json, error_names_line_column_and_position)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *text = "{\n  \"a\": 1,\n  \"b\": ]\n}";

	cr_assert_null(shp_json_parse(text, strlen(text), 32, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "malformed JSON at line 3, column"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "line"), "3");
	cr_assert_not_null(detail(&err, "column"));
	cr_assert_not_null(detail(&err, "position"));
	cr_assert_gt(atoi(detail(&err, "position")), 10);
}

Test(json, rejects_nul_bytes)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char text[] = "{\"a\": \"x\0y\"}";

	cr_assert_null(shp_json_parse(text, sizeof(text) - 1, 32, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "NUL byte"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "position"), "8");
	cr_assert_str_eq(detail(&err, "column"), "9");
}

Test(json, rejects_escaped_nul_in_strings)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(parse("{\"a\": \"x\\u0000y\"}", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
}

Test(json, rejects_invalid_utf8)
{
	static const char *const bad[] = {
		"\"\xc3\"",             /* truncated sequence */
		"\"\xc0\xaf\"",         /* overlong '/' */
		"\"\xed\xa0\x80\"",     /* surrogate */
		"\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
		"\"\xff\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shp_error err = SHP_ERROR_INIT;

		cr_assert_null(parse(bad[i], &err), "case %zu", i);
		cr_assert_eq(err.code, SHP_E_MALFORMED);
		cr_assert_not_null(strstr(err.msg, "invalid UTF-8"), "case %zu: %s", i, err.msg);
		cr_assert_str_eq(detail(&err, "position"), "1");
	}
}

Test(json, rejects_duplicate_keys)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(parse("{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "duplicate"), "%s", err.msg);
}

Test(json, rejects_trailing_data)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(parse("{\"a\": 1} {\"b\": 2}", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	shp_error_clear(&err);
	cr_assert_null(parse("[1] x", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
}

Test(json, rejects_empty_input)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shp_json_parse("", 0, 32, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_null(shp_json_parse(NULL, 0, 32, NULL));
}

Test(json, depth_limit_is_exact)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *ok = parse("[[[{\"a\": [1]}]]]", &err);

	cr_assert_not_null(ok, "%s", err.msg);
	cr_assert_null(shp_json_parse("[[[{\"a\": [1]}]]]", 16, 4, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "nesting deeper than 4 levels"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "column"), "10");
	json_decref(shp_json_parse("[[[{\"a\": [1]}]]]", 16, 5, NULL));
}

Test(json, depth_prescan_ignores_brackets_in_strings)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *text = "{\"a\": \"[[[[[[{{{{\", \"b\\\"[[[\": [\"]]]]\\\\\", 1]}";
	json_auto_t *j = shp_json_parse(text, strlen(text), 2, &err);

	cr_assert_not_null(j, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(j, "a")), "[[[[[[{{{{");
	cr_assert_not_null(json_object_get(j, "b\"[[["));
}

Test(json, ten_mebibytes_of_brackets_fail_fast)
{
	size_t n = 10u * 1024 * 1024;
	char *text = malloc(n);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_not_null(text);
	memset(text, '[', n);
	cr_assert_null(shp_json_parse(text, n, 32, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "nesting deeper than 32 levels"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "position"), "32");
	free(text);
}

Test(json, parse_object_requires_object)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *j = shp_json_parse_object("{}", 2, 32, &err);

	cr_assert_not_null(j);
	cr_assert_null(shp_json_parse_object("[1]", 3, 32, &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_str_eq(err.msg, "request body must be a JSON object");
	cr_assert_null(shp_json_parse_object("\"x\"", 3, 32, &err));
	cr_assert_null(shp_json_parse_object("{", 1, 32, &err));
	cr_assert_not_null(strstr(err.msg, "malformed JSON"));
}

Test(json, check_fields)
{
	static const char *const allowed[] = {"name", "environment", NULL};
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *good = parse("{\"name\": \"a\", \"environment\": \"test\"}", NULL);
	json_auto_t *bad = parse("{\"name\": \"a\", \"colour\": \"red\"}", NULL);
	json_auto_t *empty = parse("{}", NULL);

	cr_assert_eq(shp_json_check_fields(good, allowed, &err), 0);
	cr_assert_eq(shp_json_check_fields(empty, allowed, &err), 0);
	cr_assert_eq(err.code, SHP_OK);
	cr_assert_eq(shp_json_check_fields(bad, allowed, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "unknown field 'colour'");
	cr_assert_str_eq(detail(&err, "field"), "colour");
}

Test(json, get_string)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *o = parse("{\"name\": \"web-1\", \"environment\": 3, \"none\": null}", NULL);
	const char *s = "unchanged";

	cr_assert_eq(shp_json_get_string(o, "name", true, 63, &s, &err), 0);
	cr_assert_str_eq(s, "web-1");
	cr_assert_eq(shp_json_get_string(o, "missing", false, 0, &s, &err), 0);
	cr_assert_str_eq(s, "web-1", "optional and absent leaves *ret alone");
	cr_assert_eq(shp_json_get_string(o, "none", false, 0, &s, &err), 0);
	cr_assert_eq(err.code, SHP_OK);

	cr_assert_eq(shp_json_get_string(o, "environment", true, 0, &s, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'environment' must be a string");
	cr_assert_str_eq(detail(&err, "field"), "environment");
	cr_assert_eq(shp_json_get_string(o, "missing", true, 0, &s, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "missing field 'missing'");
	cr_assert_eq(shp_json_get_string(o, "none", true, 0, &s, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "missing field 'none'");
	cr_assert_str_eq(s, "web-1", "failure leaves *ret alone");
}

Test(json, get_string_length_bound)
{
	struct shp_error err = SHP_ERROR_INIT;
	char text[256];
	const char *s = NULL;
	json_auto_t *o = NULL;

	(void)snprintf(text, sizeof(text), "{\"name\": \"%063d\", \"long\": \"%064d\"}", 0, 0);
	o = parse(text, NULL);
	cr_assert_eq(shp_json_get_string(o, "name", true, 63, &s, &err), 0);
	cr_assert_eq(strlen(s), 63);
	cr_assert_eq(shp_json_get_string(o, "long", true, 63, &s, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'long' is longer than 63 bytes");
	cr_assert_eq(shp_json_get_string(o, "long", true, 0, &s, &err), 0, "0 means no limit");
}

Test(json, get_string_refuses_embedded_nul)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *o = json_object();
	const char *s = NULL;

	cr_assert_eq(json_object_set_new(o, "name", json_stringn("a\0b", 3)), 0);
	cr_assert_eq(shp_json_get_string(o, "name", true, 0, &s, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'name' must not contain NUL bytes");
	cr_assert_null(s);
}

Test(json, get_int)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *o = parse("{\"n\": 5, \"r\": 5.0, \"s\": \"5\", \"big\": 9223372036854775807,"
			       " \"neg\": -3}",
			       NULL);
	int64_t v = -1;

	cr_assert_eq(shp_json_get_int(o, "n", true, 0, 10, &v, &err), 0);
	cr_assert_eq(v, 5);
	cr_assert_eq(shp_json_get_int(o, "big", true, INT64_MIN, INT64_MAX, &v, &err), 0);
	cr_assert_eq(v, INT64_MAX);
	cr_assert_eq(shp_json_get_int(o, "x", false, 0, 10, &v, &err), 0);
	cr_assert_eq(v, INT64_MAX);

	cr_assert_eq(shp_json_get_int(o, "r", true, 0, 10, &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'r' must be an integer");
	cr_assert_eq(shp_json_get_int(o, "s", true, 0, 10, &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 's' must be an integer");
	cr_assert_eq(shp_json_get_int(o, "n", true, 6, 10, &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'n' must be between 6 and 10");
	cr_assert_eq(shp_json_get_int(o, "neg", true, 0, 10, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_json_get_int(o, "n", true, 0, 4, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(v, INT64_MAX, "failure leaves *ret alone");
}

Test(json, integer_overflow_in_text_is_refused)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(parse("{\"n\": 9223372036854775808}", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
}

Test(json, get_bool_and_object)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *o = parse("{\"b\": true, \"f\": false, \"i\": 1, \"o\": {\"x\": 1}, "
			       "\"a\": []}",
			       NULL);
	bool b = false;
	json_t *sub = NULL;

	cr_assert_eq(shp_json_get_bool(o, "b", true, &b, &err), 0);
	cr_assert(b);
	cr_assert_eq(shp_json_get_bool(o, "f", true, &b, &err), 0);
	cr_assert_not(b);
	cr_assert_eq(shp_json_get_bool(o, "i", true, &b, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'i' must be a boolean");

	cr_assert_eq(shp_json_get_object(o, "o", true, &sub, &err), 0);
	cr_assert_eq(json_integer_value(json_object_get(sub, "x")), 1);
	cr_assert_eq(shp_json_get_object(o, "a", true, &sub, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "field 'a' must be an object");
	cr_assert_eq(shp_json_get_object(o, "zz", true, &sub, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "missing field 'zz'");
}

Test(json, getters_accept_null_err)
{
	json_auto_t *o = parse("{\"n\": \"x\"}", NULL);
	int64_t v;

	cr_assert_eq(shp_json_get_int(o, "n", true, 0, 1, &v, NULL), -SHP_E_INVAL);
	cr_assert_eq(shp_json_get_int(NULL, "n", true, 0, 1, &v, NULL), -SHP_E_INVAL);
}

Test(json, long_keys_are_cut_in_messages)
{
	struct shp_error err = SHP_ERROR_INIT;
	char key[300];
	json_auto_t *o = json_object();
	const char *s;

	/* 99 two-byte characters: the cut must not split one. */
	for (int i = 0; i < 99; i++)
		memcpy(key + 2 * i, "\xc3\xa9", 2);
	key[198] = '\0';
	cr_assert_eq(json_object_set_new(o, key, json_integer(1)), 0);
	cr_assert_eq(shp_json_get_string(o, key, true, 0, &s, &err), -SHP_E_INVAL);
	cr_assert_lt(strlen(err.msg), 100);
	cr_assert_not_null(strstr(err.msg, "must be a string"));
	json_auto_t *str = json_string(err.msg);
	cr_assert_not_null(str, "message must stay valid UTF-8");
}

Test(json, trusted_readers)
{
	json_auto_t *o = parse("{\"s\": \"v\", \"i\": 7, \"r\": 1.5}", NULL);

	cr_assert_str_eq(shp_json_str(o, "s"), "v");
	cr_assert_null(shp_json_str(o, "i"));
	cr_assert_null(shp_json_str(o, "zz"));
	cr_assert_null(shp_json_str(NULL, "s"));
	cr_assert_eq(shp_json_int(o, "i", -1), 7);
	cr_assert_eq(shp_json_int(o, "r", -1), -1);
	cr_assert_eq(shp_json_int(o, "s", -1), -1);
	cr_assert_eq(shp_json_int(NULL, "i", -1), -1);
}

Test(json, dump_buf_sorted_and_appending)
{
	struct shp_buf b = SHP_BUF_INIT(1024);
	json_auto_t *o = parse("{\"b\": 1, \"a\": [true, null], \"c\": \"x\"}", NULL);
	json_auto_t *n = json_integer(3);

	cr_assert_eq(shp_buf_add(&b, ">"), 0);
	cr_assert_eq(shp_json_dump_buf(o, &b, false), 0);
	cr_assert_str_eq(b.buf, ">{\"a\":[true,null],\"b\":1,\"c\":\"x\"}");
	shp_buf_reset(&b);
	cr_assert_eq(shp_json_dump_buf(o, &b, true), 0);
	cr_assert_not_null(strstr(b.buf, "\n  \"a\": ["), "%s", b.buf);
	shp_buf_reset(&b);
	cr_assert_eq(shp_json_dump_buf(n, &b, false), 0, "scalars too");
	cr_assert_str_eq(b.buf, "3");
	shp_buf_release(&b);
}

Test(json, dump_buf_cap_leaves_buffer_unchanged)
{
	struct shp_buf b = SHP_BUF_INIT(10);
	json_auto_t *o = parse("{\"abc\": \"defghijkl\"}", NULL);

	cr_assert_eq(shp_buf_add(&b, "12"), 0);
	cr_assert_eq(shp_json_dump_buf(o, &b, false), -SHP_E_LIMIT);
	cr_assert_eq(b.len, 2);
	cr_assert_str_eq(b.buf, "12");
	shp_buf_release(&b);
}
