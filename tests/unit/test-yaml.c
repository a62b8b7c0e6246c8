/*
 * Unit tests of lib/yaml.c: core-schema typing, the refusals (aliases, tags, duplicate and
 * non-string keys, several documents, depth), error positions, the emitter's layout and the
 * JSON -> YAML -> JSON round trip.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "yaml.h"

static const char *detail(const struct shp_error *err, const char *key)
{
	for (int i = 0; i < err->n_details; i++)
		if (strcmp(err->details[i].key, key) == 0)
			return err->details[i].value;
	return NULL;
}

static json_t *load(const char *text, struct shp_error *err)
{
	return shp_yaml_to_json(text, strlen(text), 32, err);
}

/* Parse text, expecting failure with a message containing want. */
static void assert_refused(const char *text, const char *want)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *j = load(text, &err);

	cr_assert_null(j, "'%s' was accepted", text);
	cr_assert_eq(err.code, SHP_E_MALFORMED, "'%s': %s", text, err.msg);
	cr_assert_not_null(strstr(err.msg, want), "'%s': got '%s', want '%s'", text, err.msg, want);
}

/* The value of "v" in "v: <scalar>" must equal the JSON text want. */
static void assert_scalar(const char *scalar, const char *want)
{
	struct shp_error err = SHP_ERROR_INIT;
	char text[256];
	json_error_t jerr;
	json_auto_t *doc = NULL;
	json_auto_t *expect = json_loads(want, JSON_DECODE_ANY, &jerr);

	cr_assert_not_null(expect, "bad expectation %s", want);
	(void)snprintf(text, sizeof(text), "v: %s\n", scalar);
	doc = load(text, &err);
	cr_assert_not_null(doc, "'%s': %s", scalar, err.msg);
	cr_assert(json_equal(json_object_get(doc, "v"), expect), "'%s' is not %s", scalar, want);
}

Test(yaml, core_schema_nulls_and_bools)
{
	assert_scalar("", "null");
	assert_scalar("~", "null");
	assert_scalar("null", "null");
	assert_scalar("Null", "null");
	assert_scalar("NULL", "null");
	assert_scalar("nULL", "\"nULL\"");
	assert_scalar("true", "true");
	assert_scalar("True", "true");
	assert_scalar("TRUE", "true");
	assert_scalar("false", "false");
	assert_scalar("False", "false");
	assert_scalar("FALSE", "false");
	assert_scalar("yes", "\"yes\"");
	assert_scalar("off", "\"off\"");
	assert_scalar("tRUE", "\"tRUE\"");
}

Test(yaml, core_schema_numbers)
{
	assert_scalar("0", "0");
	assert_scalar("-17", "-17");
	assert_scalar("+17", "17");
	assert_scalar("007", "7");
	assert_scalar("0o17", "15");
	assert_scalar("0x1F", "31");
	assert_scalar("0xff", "255");
	assert_scalar("9223372036854775807", "9223372036854775807");
	assert_scalar("-9223372036854775808", "-9223372036854775808");
	assert_scalar("1.5", "1.5");
	assert_scalar("-.5", "-0.5");
	assert_scalar("5.", "5.0");
	assert_scalar("1e3", "1000.0");
	assert_scalar("1.5E-2", "0.015");
	assert_scalar("0o8", "\"0o8\"");
	assert_scalar("0x", "\"0x\"");
	assert_scalar("1_000", "\"1_000\"");
	assert_scalar("1.2.3", "\"1.2.3\"");
	assert_scalar(".", "\".\"");
	assert_scalar("1e", "\"1e\"");
	assert_scalar("12:30", "\"12:30\"");
	assert_scalar("2024-01-01", "\"2024-01-01\"");
}

Test(yaml, quoted_and_block_scalars_stay_strings)
{
	assert_scalar("\"true\"", "\"true\"");
	assert_scalar("'42'", "\"42\"");
	assert_scalar("\"\"", "\"\"");
	assert_scalar("'~'", "\"~\"");
	assert_scalar("\"caf\\u00e9 \\t\"", "\"caf\\u00e9 \\t\"");
	assert_scalar("|\n  line1\n  line2\n", "\"line1\\nline2\\n\"");
	assert_scalar(">-\n  a\n  b\n", "\"a b\"");
}

Test(yaml, core_tags)
{
	assert_scalar("!!str 42", "\"42\"");
	assert_scalar("!!str", "\"\"");
	assert_scalar("!!int \"42\"", "42");
	assert_scalar("!!float 1", "1.0");
	assert_scalar("!!float \"2.5\"", "2.5");
	assert_scalar("!!bool \"true\"", "true");
	assert_scalar("!!null \"\"", "null");
	assert_scalar("! 12", "\"12\"");
	assert_scalar("!!map {a: 1}", "{\"a\": 1}");
	assert_scalar("!!seq [1]", "[1]");
	assert_refused("v: !!int abc", "'abc' is not a valid !!int");
	assert_refused("v: !!bool 1", "is not a valid !!bool");
	assert_refused("v: !!binary aGVsbG8=", "YAML tag '!!binary' is not supported");
	assert_refused("v: !custom x", "YAML tag '!custom' is not supported");
	assert_refused("v: !!map [1]", "YAML tag '!!map' is not supported here");
	assert_refused("v: !!timestamp 2001-12-14", "!!timestamp");
}

Test(yaml, integer_overflow_is_refused)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(load("a: 1\nb: 9223372036854775808\n", &err));
	cr_assert_not_null(strstr(err.msg, "integer '9223372036854775808' is out of range"), "%s",
			   err.msg);
	cr_assert_str_eq(detail(&err, "line"), "2");
	cr_assert_str_eq(detail(&err, "column"), "4");
	assert_refused("v: -9223372036854775809", "out of range");
	assert_refused("v: 0x8000000000000000", "out of range");
	assert_refused("v: 0o1777777777777777777777", "out of range");
}

Test(yaml, non_finite_floats_are_refused)
{
	assert_refused("v: .inf", "'.inf' cannot be represented in JSON");
	assert_refused("v: -.Inf", "cannot be represented");
	assert_refused("v: .NaN", "cannot be represented");
	assert_refused("v: 1e999", "cannot be represented");
	assert_scalar("1e-999", "0.0");
	assert_scalar(".infx", "\".infx\"");
}

Test(yaml, nested_block_and_flow)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *text = "name: web\n"
			   "spec:\n"
			   "  cpu: 2\n"
			   "  disks:\n"
			   "    - size: 10Gi\n"
			   "      boot: true\n"
			   "    - {size: 20Gi, boot: false}\n"
			   "  tags: [a, 'b', \"c\"]\n"
			   "  empty: {}\n"
			   "  none: []\n"
			   "# comment\n";
	json_auto_t *j = load(text, &err);
	json_auto_t *want =
		json_loads("{\"name\":\"web\",\"spec\":{\"cpu\":2,\"disks\":[{\"size\":\"10Gi\","
			   "\"boot\":true},{\"size\":\"20Gi\",\"boot\":false}],"
			   "\"tags\":[\"a\",\"b\",\"c\"],\"empty\":{},\"none\":[]}}",
			   0, NULL);

	cr_assert_not_null(j, "%s", err.msg);
	cr_assert(json_equal(j, want));
	cr_assert_eq(err.code, SHP_OK);
}

Test(yaml, top_level_scalars_and_sequences)
{
	json_auto_t *a = load("42\n", NULL);
	json_auto_t *b = load("- 1\n- two\n", NULL);
	json_auto_t *c = load("--- hello\n...\n", NULL);

	cr_assert_eq(json_integer_value(a), 42);
	cr_assert_eq(json_array_size(b), 2);
	cr_assert_str_eq(json_string_value(c), "hello");
}

Test(yaml, empty_documents)
{
	assert_refused("", "empty YAML document");
	assert_refused("# only a comment\n", "empty YAML document");
	assert_refused("\n\n", "empty YAML document");
	cr_assert_null(shp_yaml_to_json(NULL, 0, 32, NULL));
}

Test(yaml, aliases_and_anchors_are_refused)
{
	assert_refused("a: &x 1\nb: *x\n", "YAML aliases are not supported");
	assert_refused("a: *x\n", "YAML aliases are not supported (alias '*x')");
	assert_refused("a: &big [1, 2]\n", "anchor '&big'");
	assert_refused("a: &m {k: v}\n", "YAML aliases are not supported");
	assert_refused("- &a [1]\n- [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
		       "YAML aliases are not supported");
}

Test(yaml, multiple_documents_are_refused)
{
	assert_refused("a: 1\n---\nb: 2\n", "multiple YAML documents are not supported");
	assert_refused("--- 1\n--- 2\n", "multiple YAML documents");
}

Test(yaml, keys_must_be_unique_strings)
{
	assert_refused("a: 1\nb: 2\na: 3\n", "duplicate mapping key 'a'");
	assert_refused("x:\n  a: 1\n  'a': 2\n", "duplicate mapping key 'a'");
	assert_refused("1: one\n", "mapping key '1' must be a string");
	assert_refused("true: yes\n", "must be a string");
	assert_refused("~: x\n", "must be a string");
	assert_refused("? [a, b]\n: c\n", "mapping keys must be strings");
	assert_refused("? {a: b}\n: c\n", "mapping keys must be strings");
	assert_refused("\"a\\0b\": c\n", "NUL");

	json_auto_t *ok = load("'1': one\n!!str 2: two\n\"true\": x\n", NULL);

	cr_assert_str_eq(json_string_value(json_object_get(ok, "1")), "one");
	cr_assert_str_eq(json_string_value(json_object_get(ok, "2")), "two");
	cr_assert_str_eq(json_string_value(json_object_get(ok, "true")), "x");
}

Test(yaml, strings_with_nul_are_refused)
{
	assert_refused("v: \"a\\0b\"\n", "NUL bytes are not allowed");
}

Test(yaml, syntax_errors_name_line_and_column)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(load("a: 1\nb: [1, 2\nc: 3\n", &err));
	cr_assert_eq(err.code, SHP_E_MALFORMED);
	cr_assert_not_null(strstr(err.msg, "malformed YAML at line "), "%s", err.msg);
	cr_assert_not_null(detail(&err, "line"));
	cr_assert_not_null(detail(&err, "column"));

	shp_error_clear(&err);
	cr_assert_null(load("a: 1\n  b: 2\n", &err));
	cr_assert_str_eq(detail(&err, "line"), "2", "%s", err.msg);
}

Test(yaml, invalid_utf8_and_control_bytes)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char bad_utf8[] = "a: 1\nb: \xc3\x28\n";
	const char nul[] = "a: 1\nb: x\0y\n";

	cr_assert_null(shp_yaml_to_json(bad_utf8, sizeof(bad_utf8) - 1, 32, &err));
	cr_assert_not_null(strstr(err.msg, "invalid UTF-8"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "line"), "2");
	cr_assert_str_eq(detail(&err, "column"), "4");

	shp_error_clear(&err);
	cr_assert_null(shp_yaml_to_json(nul, sizeof(nul) - 1, 32, &err));
	cr_assert_not_null(strstr(err.msg, "NUL byte"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "line"), "2");
	cr_assert_str_eq(detail(&err, "column"), "5");
}

Test(yaml, depth_limit)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *ok = shp_yaml_to_json("a:\n  b:\n    - [1]\n", 18, 4, &err);

	cr_assert_not_null(ok, "%s", err.msg);
	cr_assert_null(shp_yaml_to_json("a:\n  b:\n    - [1]\n", 18, 3, &err));
	cr_assert_not_null(strstr(err.msg, "nesting deeper than 3 levels"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "line"), "3");
	cr_assert_null(shp_yaml_to_json("[1]", 3, 0, &err));
	json_decref(shp_yaml_to_json("1", 1, 0, NULL));
}

Test(yaml, ten_mebibytes_of_brackets_fail_fast)
{
	size_t n = 10u * 1024 * 1024;
	char *text = malloc(n);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_not_null(text);
	memset(text, '[', n);
	cr_assert_null(shp_yaml_to_json(text, n, 32, &err));
	cr_assert_not_null(strstr(err.msg, "nesting deeper than 32 levels"), "%s", err.msg);
	cr_assert_str_eq(detail(&err, "column"), "33");
	free(text);
}

static char *to_yaml(const json_t *j)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_json_to_yaml(j, &b, &err), 0, "%s", err.msg);
	return shp_buf_detach(&b, NULL);
}

static void assert_yaml(const char *json_text, const char *want)
{
	json_auto_t *j = json_loads(json_text, JSON_DECODE_ANY, NULL);
	char *got;

	cr_assert_not_null(j, "bad JSON %s", json_text);
	got = to_yaml(j);
	cr_assert_str_eq(got, want);
	free(got);
}

Test(yaml, emitter_layout)
{
	assert_yaml("{\"b\": 1, \"a\": {\"y\": [1, 2], \"x\": \"s\"}, "
		    "\"c\": [{\"k\": 1, \"j\": 2}, [3, 4], {}, []]}",
		    "a:\n"
		    "  x: s\n"
		    "  \"y\":\n"
		    "    - 1\n"
		    "    - 2\n"
		    "b: 1\n"
		    "c:\n"
		    "  - j: 2\n"
		    "    k: 1\n"
		    "  - - 3\n"
		    "    - 4\n"
		    "  - {}\n"
		    "  - []\n");
	assert_yaml("{}", "{}\n");
	assert_yaml("[]", "[]\n");
	assert_yaml("\"plain\"", "plain\n");
	assert_yaml("[null, true, false, 1.5, 2.0, -3, 1e300, -2.5e-7]",
		    "- null\n- true\n- false\n- 1.5\n- 2.0\n- -3\n- 1.0e+300\n- -2.5e-07\n");
}

Test(yaml, emitter_quotes_ambiguous_strings)
{
	assert_yaml("[\"true\", \"null\", \"~\", \"\", \"42\", \"0x1f\", \"1.5\", \".inf\", "
		    "\"yes\", \"No\", \" lead\", \"trail \", \"a: b\", \"a #b\", \"- x\", \"#c\", "
		    "\"key:\", \"@x\", \"'q'\", \"2024-01-01\", \"tab\\there\", \"<<\"]",
		    "- \"true\"\n- \"null\"\n- \"~\"\n- \"\"\n- \"42\"\n- \"0x1f\"\n- \"1.5\"\n"
		    "- \".inf\"\n- \"yes\"\n- \"No\"\n- \" lead\"\n- \"trail \"\n- \"a: b\"\n"
		    "- \"a #b\"\n- \"- x\"\n- \"#c\"\n- \"key:\"\n- \"@x\"\n- \"'q'\"\n"
		    "- \"2024-01-01\"\n- \"tab\\there\"\n- \"<<\"\n");
	assert_yaml(
		"[\"web-1\", \"a:b\", \"x#y\", \"caf\\u00e9\", \"hello world\", \"10Gi\", "
		"\"4vcpu\", \"3d\", \"0b101\", \"1:30\"]",
		"- web-1\n- a:b\n- x#y\n- caf\xc3\xa9\n- hello world\n- 10Gi\n- 4vcpu\n- \"3d\"\n"
		"- \"0b101\"\n- \"1:30\"\n");
}

Test(yaml, emitter_escapes_controls)
{
	assert_yaml("\"a\\u0001b\\u007f\\u0085\\u2028\\ufeff\\\"\\\\\"",
		    "\"a\\x01b\\x7F\\N\\L\\uFEFF\\\"\\\\\"\n");
}

Test(yaml, emitter_literal_blocks)
{
	assert_yaml("{\"s\": \"line1\\nline2\\n\"}", "s: |\n  line1\n  line2\n");
	assert_yaml("{\"s\": \"line1\\n\\n  indented\"}", "s: |-\n  line1\n\n    indented\n");
	assert_yaml("[\"a\\nb\\n\\n\"]", "- |+\n  a\n  b\n\n");
	assert_yaml("\"top\\nlevel\\n\"", "|\n  top\n  level\n");
	/* Not safe as a literal block: double quotes. */
	assert_yaml("[\" lead\\nx\", \"trail \\nx\", \"cr\\r\\nx\", \"\\n\\n\"]",
		    "- \" lead\\nx\"\n- \"trail \\nx\"\n- \"cr\\r\\nx\"\n- \"\\n\\n\"\n");
}

Test(yaml, emitter_respects_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(8);
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *j = json_pack("{s:s}", "key", "value");

	cr_assert_eq(shp_buf_add(&b, "#"), 0);
	cr_assert_eq(shp_json_to_yaml(j, &b, &err), -SHP_E_LIMIT);
	cr_assert_eq(err.code, SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "#");
	shp_buf_release(&b);
}

static void assert_round_trip(const json_t *j)
{
	struct shp_error err = SHP_ERROR_INIT;
	char *text = to_yaml(j);
	json_auto_t *back = shp_yaml_to_json(text, strlen(text), 64, &err);
	char *a = json_dumps(j, JSON_SORT_KEYS | JSON_ENCODE_ANY);

	cr_assert_not_null(back, "%s\n--- yaml:\n%s", err.msg, text);
	cr_assert(json_equal(j, back), "round trip of %s through:\n%s", a, text);
	free(a);
	free(text);
}

Test(yaml, round_trip_rich_values)
{
	static const char *const strings[] = {
		"",
		" ",
		"plain",
		"true",
		"False",
		"null",
		"~",
		"123",
		"-1",
		"0o7",
		"0x1F",
		"1e3",
		".5",
		".nan",
		"-.inf",
		"yes",
		"on",
		"y",
		"=",
		"<<",
		"- a",
		"a - b",
		"? q",
		": c",
		"a: b",
		"a:b",
		"a #b",
		"a#b",
		"#",
		"&anchor",
		"*alias",
		"!tag",
		"%dir",
		"@at",
		"`tick`",
		"|",
		">",
		"[x]",
		"{y}",
		"a, b",
		"'single'",
		"\"double\"",
		"back\\slash",
		"caf\xc3\xa9",
		"\xe4\xb8\xad\xe6\x96\x87",
		"\xf0\x9f\x90\x91",
		"\xc2\xa0nbsp",
		"tab\tin",
		"\ttab",
		"trailing ",
		" leading",
		"multi\nline",
		"multi\nline\n",
		"ends\n\n\n",
		"\nleading newline",
		"\n",
		"\n\n",
		"a\r\nb",
		"\x01\x02\x1f\x7f",
		"\xc2\x85nel",
		"\xe2\x80\xa8ls",
		"\xef\xbb\xbf"
		"bom",
		"\xef\xbf\xbe",
		"---",
		"...",
		"--- x",
		"... y",
		"line1\n---\nline3\n",
		"line\n...\n",
		"  two lead\nspaces",
		"x\n  indented\n\tx",
		"0",
		"00",
		"+",
		"-",
		".",
		"1.",
		"1e",
		"1_0",
		"12:30:00",
		"2001-12-14",
		"\\",
		"\"",
		"'",
		"a'b\"c",
		"key: |",
		"- |\n  x",
		"# not a comment",
		"end:",
		"x\xc2\x80y",
		"10Gi",
		"500m",
		"1h30m",
		"0b101",
		"2001-12-14t21:59:43.10-05:00",
	};
	json_auto_t *arr = json_array();
	json_auto_t *obj = json_object();

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_auto_t *s = json_string(strings[i]);

		cr_assert_not_null(s, "string %zu", i);
		assert_round_trip(s);
		json_array_append(arr, s);
		json_object_set(obj, strings[i], s);
	}
	assert_round_trip(arr);
	assert_round_trip(obj);

	json_auto_t *nested = json_pack(
		"{s:[{s:{s:[i,f,f,f,b,n,s]}},[[[]]],{},[{}]],s:{s:{s:{s:{}}}},s:I,s:I,s:f,s:f}",
		"list", "deep", "x", 1, 2.5, 1.0, -0.0, 1, "s\nt", "map", "a", "b", "c", "max",
		(json_int_t)INT64_MAX, "min", (json_int_t)INT64_MIN, "tiny", 5e-324, "huge",
		1.7976931348623157e308);

	cr_assert_not_null(nested);
	assert_round_trip(nested);
	json_array_append(arr, nested);
	json_object_set(obj, "nested", nested);
	json_object_set(obj, "arr", arr);
	assert_round_trip(obj);
}

Test(yaml, round_trip_long_keys_and_values)
{
	char key[3000];
	json_auto_t *o = json_object();

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	json_object_set_new(o, key, json_pack("{s:[i,i]}", "inner", 1, 2));
	key[1500] = '\0';
	json_object_set_new(o, key, json_string(key));
	key[20] = '\n';
	json_object_set_new(o, key, json_integer(3));
	assert_round_trip(o);

	json_auto_t *list = json_array();

	json_array_append(list, o);
	assert_round_trip(list);
}
