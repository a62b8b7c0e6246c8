/*
 * Unit tests of lib/canon.c: the canonical text (key order, escapes, numbers), SHA-256 known
 * vectors and the stability of the hash across key insertion order.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "canon.h"
#include "error.h"

static char *canon_of(const json_t *j)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_canon_json(j, &b, &err), 0, "%s", err.msg);
	return shp_buf_detach(&b, NULL);
}

static void assert_canon(const json_t *j, const char *want)
{
	char *got = canon_of(j);

	cr_assert_str_eq(got, want);
	free(got);
}

static void assert_canon_text(const char *json_text, const char *want)
{
	json_error_t jerr;
	json_t *j = json_loads(json_text, JSON_DECODE_ANY, &jerr);

	cr_assert_not_null(j, "%s", jerr.text);
	assert_canon(j, want);
	json_decref(j);
}

Test(canon, sha256_known_vectors)
{
	char hex[SHP_SHA256_HEX_LEN + 1];
	unsigned char raw[SHP_SHA256_LEN];

	shp_sha256_hex("abc", 3, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	shp_sha256_hex("", 0, hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	shp_sha256("abc", 3, raw);
	cr_assert_eq(raw[0], 0xba);
	cr_assert_eq(raw[31], 0xad);
}

Test(canon, keys_sorted_no_whitespace)
{
	assert_canon_text("{ \"b\" : 1 , \"a\" : { \"d\" : [ 1 , 2 ] , \"c\" : null } }",
			  "{\"a\":{\"c\":null,\"d\":[1,2]},\"b\":1}");
	assert_canon_text("{}", "{}");
	assert_canon_text("[]", "[]");
	assert_canon_text("[true, false, null]", "[true,false,null]");
}

Test(canon, keys_sort_by_utf8_bytes)
{
	/* 'B' (0x42) < 'a' (0x61) < "a\u0000"-free "ab" < "\u00e9" (0xc3 0xa9) < "\u4e2d" */
	assert_canon_text("{\"\\u4e2d\": 5, \"\\u00e9\": 4, \"ab\": 3, \"a\": 2, \"B\": 1}",
			  "{\"B\":1,\"a\":2,\"ab\":3,\"\xc3\xa9\":4,\"\xe4\xb8\xad\":5}");
}

Test(canon, string_escapes_are_minimal)
{
	json_auto_t *s = json_string("q\" b\\ \b\f\n\r\t \x01\x1f\x7f / \xc3\xa9 \xf0\x9f\x90\x91");

	assert_canon(s, "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\x7f / \xc3\xa9 "
			"\xf0\x9f\x90\x91\"");
}

Test(canon, unicode_escapes_in_input_become_utf8)
{
	assert_canon_text("\"\\u00e9\\ud83d\\udc11\\u0041\"", "\"\xc3\xa9\xf0\x9f\x90\x91"
							      "A\"");
}

Test(canon, embedded_nul_is_escaped)
{
	json_auto_t *s = json_stringn("a\0b", 3);

	assert_canon(s, "\"a\\u0000b\"");
}

Test(canon, integers)
{
	json_auto_t *a = json_pack("[I, I, I, I]", (json_int_t)0, (json_int_t)-42,
				   (json_int_t)INT64_MAX, (json_int_t)INT64_MIN);

	assert_canon(a, "[0,-42,9223372036854775807,-9223372036854775808]");
}

Test(canon, reals_shortest_round_trip)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{1.5, "1.5"},
		{1.0, "1.0"},
		{-2.0, "-2.0"},
		{0.0, "0.0"},
		{-0.0, "-0.0"},
		{0.1, "0.1"},
		{1e300, "1e+300"},
		{1e-7, "1e-07"},
		{123456789012345680.0, "1.2345678901234568e+17"},
		{0.30000000000000004, "0.30000000000000004"},
		{5e-324, "4.94065645841247e-324"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_auto_t *r = json_real(cases[i].v);
		char *got = canon_of(r);

		cr_assert_str_eq(got, cases[i].want, "case %zu", i);
		cr_assert_eq(strtod(got, NULL), cases[i].v, "case %zu reads back", i);
		free(got);
	}
}

Test(canon, int_and_real_differ)
{
	json_auto_t *i = json_integer(1);
	json_auto_t *r = json_real(1.0);
	char a[SHP_SHA256_HEX_LEN + 1], b[SHP_SHA256_HEX_LEN + 1];

	cr_assert_eq(shp_canon_sha256_hex(i, a, NULL), 0);
	cr_assert_eq(shp_canon_sha256_hex(r, b, NULL), 0);
	cr_assert_str_neq(a, b);
}

Test(canon, same_hash_whatever_the_insertion_order)
{
	json_auto_t *x = json_object();
	json_auto_t *y = json_object();
	json_t *xi = json_object(), *yi = json_object();
	char hx[SHP_SHA256_HEX_LEN + 1], hy[SHP_SHA256_HEX_LEN + 1];

	json_object_set_new(xi, "zone", json_string("a"));
	json_object_set_new(xi, "cpu", json_integer(2));
	json_object_set_new(xi, "deep", json_pack("{s:{s:i,s:i}}", "k", "y", 1, "x", 2));
	json_object_set_new(x, "spec", xi);
	json_object_set_new(x, "name", json_string("vm-1"));
	json_object_set_new(x, "targets", json_pack("[s,s]", "t1", "t2"));

	json_object_set_new(y, "targets", json_pack("[s,s]", "t1", "t2"));
	json_object_set_new(y, "name", json_string("vm-1"));
	json_object_set_new(yi, "deep", json_pack("{s:{s:i,s:i}}", "k", "x", 2, "y", 1));
	json_object_set_new(yi, "cpu", json_integer(2));
	json_object_set_new(yi, "zone", json_string("a"));
	json_object_set_new(y, "spec", yi);

	cr_assert_eq(shp_canon_sha256_hex(x, hx, NULL), 0);
	cr_assert_eq(shp_canon_sha256_hex(y, hy, NULL), 0);
	cr_assert_str_eq(hx, hy);
	assert_canon(x, "{\"name\":\"vm-1\",\"spec\":{\"cpu\":2,\"deep\":{\"k\":{\"x\":2,\"y\":1}},"
			"\"zone\":\"a\"},\"targets\":[\"t1\",\"t2\"]}");

	/* Array order is meaningful. */
	json_object_set_new(y, "targets", json_pack("[s,s]", "t2", "t1"));
	cr_assert_eq(shp_canon_sha256_hex(y, hy, NULL), 0);
	cr_assert_str_neq(hx, hy);
}

Test(canon, hash_is_sha256_of_canonical_text)
{
	json_auto_t *j = json_pack("{s:i,s:s}", "b", 1, "a", "x");
	char want[SHP_SHA256_HEX_LEN + 1], got[SHP_SHA256_HEX_LEN + 1];
	const char *text = "{\"a\":\"x\",\"b\":1}";

	shp_sha256_hex(text, strlen(text), want);
	cr_assert_eq(shp_canon_sha256_hex(j, got, NULL), 0);
	cr_assert_str_eq(got, want);
}

Test(canon, appends_and_respects_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(12);
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *j = json_pack("{s:s}", "key", "value");

	cr_assert_eq(shp_buf_add(&b, "#"), 0);
	cr_assert_eq(shp_canon_json(j, &b, &err), -SHP_E_LIMIT);
	cr_assert_eq(err.code, SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "#", "a failed call leaves the buffer as it was");
	shp_buf_release(&b);
	shp_buf_init(&b, 16);
	cr_assert_eq(shp_buf_add(&b, "#"), 0);
	cr_assert_eq(shp_canon_json(j, &b, &err), 0, "exactly at the cap");
	cr_assert_str_eq(b.buf, "#{\"key\":\"value\"}");
	shp_buf_release(&b);
}

Test(canon, depth_is_bounded)
{
	json_t *root = json_array(), *cur = root;
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;

	for (int i = 0; i < 3000; i++) {
		json_t *next = json_array();

		json_array_append_new(cur, next);
		cur = next;
	}
	cr_assert_eq(shp_canon_json(root, &b, &err), -SHP_E_LIMIT);
	cr_assert_not_null(strstr(err.msg, "deeper"), "%s", err.msg);
	cr_assert_eq(b.len, 0);
	json_decref(root);
	shp_buf_release(&b);
}

Test(canon, null_value_is_an_error)
{
	struct shp_buf b = SHP_BUF_INIT(64);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_lt(shp_canon_json(NULL, &b, &err), 0);
	cr_assert_neq(err.code, SHP_OK);
}
