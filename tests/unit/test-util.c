/*
 * Unit tests of lib/util.c: the UTF-8 validator, name validation, the duration, size and
 * integer parsers (with overflow), hex and random ids, clocks and RFC 3339, the constant-time
 * comparison and the NULL-safe string helpers.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "util.h"

static bool utf8(const char *s)
{
	return shp_utf8_is_valid(s, strlen(s));
}

Test(util, utf8_valid)
{
	cr_assert(shp_utf8_is_valid("", 0));
	cr_assert(utf8("plain ascii ~\x7f"));
	cr_assert(utf8("\xc2\x80"));         /* U+0080, smallest 2-byte */
	cr_assert(utf8("\xdf\xbf"));         /* U+07FF */
	cr_assert(utf8("\xe0\xa0\x80"));     /* U+0800, smallest 3-byte */
	cr_assert(utf8("\xed\x9f\xbf"));     /* U+D7FF, below the surrogates */
	cr_assert(utf8("\xee\x80\x80"));     /* U+E000, above them */
	cr_assert(utf8("\xef\xbf\xbf"));     /* U+FFFF */
	cr_assert(utf8("\xf0\x90\x80\x80")); /* U+10000, smallest 4-byte */
	cr_assert(utf8("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last code point */
	cr_assert(utf8("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x90\x91"));
	cr_assert(shp_utf8_is_valid("a\0b", 3), "NUL is a valid character");
}

Test(util, utf8_invalid)
{
	static const char *const bad[] = {
		"\x80",
		"\xbf",
		"a\x80z", /* lone continuation bytes */
		"\xc0\x80",
		"\xc1\xbf", /* overlong 2-byte */
		"\xe0\x80\x80",
		"\xe0\x9f\xbf", /* overlong 3-byte */
		"\xf0\x80\x80\x80",
		"\xf0\x8f\xbf\xbf", /* overlong 4-byte */
		"\xed\xa0\x80",
		"\xed\xbf\xbf",
		"\xed\xb0\x80", /* surrogates */
		"\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80",
		"\xf7\xbf\xbf\xbf", /* > U+10FFFF */
		"\xf8\x88\x80\x80\x80",
		"\xfc\x84\x80\x80\x80\x80",
		"\xfe",
		"\xff",
		"\xc3",
		"\xe2\x82",
		"\xf0\x9f\x90", /* truncated */
		"\xc3(",
		"\xe2\x28\xa1",
		"\xf0\x9f\x28\x91", /* bad continuation */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(utf8(bad[i]), "case %zu accepted", i);
	cr_assert_not(shp_utf8_is_valid("ab\xc3\xa9", 3), "n cuts a sequence");
	cr_assert(shp_utf8_is_valid("ab\xc3\xa9", 2));
}

Test(util, names)
{
	char n63[64], n64[65];

	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'b', 64);
	n64[64] = '\0';
	cr_assert(shp_name_is_valid("a"));
	cr_assert(shp_name_is_valid("0"));
	cr_assert(shp_name_is_valid("web-1"));
	cr_assert(shp_name_is_valid("a--b"));
	cr_assert(shp_name_is_valid("9lives"));
	cr_assert(shp_name_is_valid(n63));
	cr_assert_not(shp_name_is_valid(n64));
	cr_assert_not(shp_name_is_valid(""));
	cr_assert_not(shp_name_is_valid(NULL));
	cr_assert_not(shp_name_is_valid("-a"));
	cr_assert_not(shp_name_is_valid("a-"));
	cr_assert_not(shp_name_is_valid("-"));
	cr_assert_not(shp_name_is_valid("Web"));
	cr_assert_not(shp_name_is_valid("a_b"));
	cr_assert_not(shp_name_is_valid("a.b"));
	cr_assert_not(shp_name_is_valid("a b"));
	cr_assert_not(shp_name_is_valid("caf\xc3\xa9"));
	cr_assert_not(shp_name_is_valid("a\n"));
}

Test(util, parse_int)
{
	struct shp_error err = SHP_ERROR_INIT;
	long long v = 0;

	cr_assert_eq(shp_parse_int("42", 0, 100, &v, &err), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(shp_parse_int("-0", -5, 5, &v, &err), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(shp_parse_int("+7", 0, 10, &v, &err), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(shp_parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, &v, &err), 0);
	cr_assert_eq(v, LLONG_MAX);
	cr_assert_eq(shp_parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v, &err), 0);
	cr_assert_eq(v, LLONG_MIN);
	cr_assert_eq(shp_parse_int("100", 0, 100, &v, &err), 0, "max is inclusive");
	cr_assert_eq(shp_parse_int("0", 0, 100, &v, &err), 0, "min is inclusive");
	cr_assert_eq(err.code, SHP_OK);

	v = 5;
	cr_assert_eq(shp_parse_int("101", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "101 is out of range [0, 100]");
	cr_assert_eq(shp_parse_int("-1", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("9223372036854775808", LLONG_MIN, LLONG_MAX, &v, &err),
		     -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("-9223372036854775809", LLONG_MIN, LLONG_MAX, &v, &err),
		     -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("12a", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "'12a' is not a whole number");
	cr_assert_eq(shp_parse_int("1.0", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("0x10", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int(" 5", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("5 ", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("-", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int("", 0, 100, &v, &err), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_int(NULL, 0, 100, &v, NULL), -SHP_E_INVAL);
	cr_assert_eq(v, 5, "failures leave *ret alone");
}

Test(util, parse_duration)
{
	static const struct {
		const char *in;
		int64_t want;
	} ok[] = {
		{"0", 0},     {"45", 45},
		{"30s", 30},  {"5m", 300},
		{"2h", 7200}, {"7d", 604800},
		{"+3s", 3},   {"106751991167300d", 106751991167300LL * 86400},
	};
	static const char *const bad[] = {
		"",
		"s",
		"-5s",
		"5x",
		"5 s",
		" 5s",
		"1.5h",
		"5ms",
		"1w",
		"h5",
		"106751991167301d",
		"9223372036854775807d",
		"99999999999999999999",
		"0123456789012345678901234567890123456789s",
	};
	struct shp_error err = SHP_ERROR_INIT;
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(shp_parse_duration(ok[i].in, &v, &err), 0, "'%s': %s", ok[i].in,
			     err.msg);
		cr_assert_eq(v, ok[i].want, "'%s'", ok[i].in);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		cr_assert_eq(shp_parse_duration(bad[i], &v, &err), -SHP_E_INVAL, "'%s'", bad[i]);
		cr_assert_eq(v, -7);
		cr_assert_eq(err.code, SHP_E_INVAL);
	}
	cr_assert_eq(shp_parse_duration(NULL, &v, NULL), -SHP_E_INVAL);
	cr_assert_eq(shp_parse_duration("5x", &v, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.msg, "invalid duration '5x' (use a number with s, m, h or d)");
}

Test(util, parse_size)
{
	static const struct {
		const char *in;
		uint64_t want;
	} ok[] = {
		{"0", 0},
		{"64", 64},
		{"512k", 512 * 1024},
		{"512K", 512 * 1024},
		{"1M", 1024 * 1024},
		{"1m", 1024 * 1024},
		{"1MiB", 1024 * 1024},
		{"4KiB", 4096},
		{"1MB", 1024 * 1024},
		{"2G", 2ULL * 1024 * 1024 * 1024},
		{"2GiB", 2ULL * 1024 * 1024 * 1024},
		{"8589934591G", 8589934591ULL * 1024 * 1024 * 1024},
		{"9223372036854775807", 9223372036854775807ULL},
	};
	static const char *const bad[] = {
		"",
		"k",
		"-1",
		"-1k",
		"1T",
		"1.5M",
		"1 M",
		"1iB",
		"iB",
		"KiB",
		"1Mi",
		"M1",
		"8589934592G",
		"9223372036854775808",
		"0123456789012345678901234567890123456789",
	};
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(shp_parse_size(ok[i].in, &v, &err), 0, "'%s': %s", ok[i].in, err.msg);
		cr_assert_eq(v, ok[i].want, "'%s'", ok[i].in);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		cr_assert_eq(shp_parse_size(bad[i], &v, &err), -SHP_E_INVAL, "'%s'", bad[i]);
		cr_assert_eq(v, 7);
	}
	cr_assert_eq(shp_parse_size(NULL, &v, NULL), -SHP_E_INVAL);
}

Test(util, hex)
{
	char out[9];
	static const unsigned char data[] = {0x00, 0x9f, 0xab, 0xff};

	shp_hex_encode(data, sizeof(data), out);
	cr_assert_str_eq(out, "009fabff");
	shp_hex_encode(data, 0, out);
	cr_assert_str_eq(out, "");
}

Test(util, random)
{
	char a[33], b[33], big[200];
	unsigned char raw[64] = {0}, zero[64] = {0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_random_hex(16, a, &err), 0);
	cr_assert_eq(shp_random_hex(16, b, &err), 0);
	cr_assert_eq(strlen(a), 32);
	cr_assert_eq(strspn(a, "0123456789abcdef"), 32);
	cr_assert_str_neq(a, b);
	cr_assert_eq(shp_random_hex(64, big, &err), 0);
	cr_assert_eq(strlen(big), 128);
	cr_assert_eq(shp_random_hex(65, big, &err), -SHP_E_INTERNAL);
	cr_assert_eq(err.code, SHP_E_INTERNAL);
	cr_assert_eq(shp_random_bytes(raw, 0, NULL), 0);
	cr_assert_eq(shp_random_bytes(raw, sizeof(raw), NULL), 0);
	cr_assert_neq(memcmp(raw, zero, sizeof(raw)), 0);
}

Test(util, clocks_and_rfc3339)
{
	char ts[40];
	uint64_t m1 = shp_now_monotonic_ns(), m2 = shp_now_monotonic_ns();

	cr_assert_geq(m2, m1);
	cr_assert_gt(shp_now_realtime_us(), 1577836800ULL * 1000000, "after 2020");
	shp_format_rfc3339(0, ts, sizeof(ts));
	cr_assert_str_eq(ts, "1970-01-01T00:00:00.000000Z");
	shp_format_rfc3339(1700000000123456ULL, ts, sizeof(ts));
	cr_assert_str_eq(ts, "2023-11-14T22:13:20.123456Z");
	shp_format_rfc3339(951782400000001ULL, ts, sizeof(ts));
	cr_assert_str_eq(ts, "2000-02-29T00:00:00.000001Z");
	shp_format_rfc3339(shp_now_realtime_us(), ts, sizeof(ts));
	cr_assert_eq(strlen(ts), 27);
	cr_assert_eq(ts[26], 'Z');
}

Test(util, constant_time_compare)
{
	cr_assert(shp_mem_equal_ct("abcdef", "abcdef", 6));
	cr_assert(shp_mem_equal_ct("x", "y", 0));
	cr_assert_not(shp_mem_equal_ct("abcdef", "bbcdef", 6));
	cr_assert_not(shp_mem_equal_ct("abcdef", "abcdeg", 6));
	cr_assert_not(shp_mem_equal_ct("a\0c", "a\0d", 3));
	cr_assert(shp_mem_equal_ct("abcdeX", "abcdeY", 5));
}

Test(util, strings)
{
	char buf[128];

	cr_assert_eq(shp_strcmp0(NULL, NULL), 0);
	cr_assert_eq(shp_strcmp0(NULL, ""), 0);
	cr_assert_lt(shp_strcmp0(NULL, "a"), 0);
	cr_assert_gt(shp_strcmp0("b", "a"), 0);
	cr_assert(shp_streq("x", "x"));
	cr_assert_not(shp_streq("x", NULL));
	cr_assert_str_eq(shp_strerror(ENOENT, buf, sizeof(buf)), "No such file or directory");
	cr_assert_gt(strlen(shp_strerror(123456, buf, sizeof(buf))), 0);
}

Test(util, enum_names)
{
	static const char *const names[] = {"fast", "medium", "long"};

	cr_assert_str_eq(shp_enum_to_string(names, 3, 1), "medium");
	cr_assert_str_eq(shp_enum_to_string(names, 3, 3), "unknown");
	cr_assert_str_eq(shp_enum_to_string(names, 3, -1), "unknown");
	cr_assert_eq(shp_enum_from_string(names, 3, "long"), 2);
	cr_assert_eq(shp_enum_from_string(names, 3, "LONG"), -1, "names are case-sensitive");
	cr_assert_eq(shp_enum_from_string(names, 3, NULL), -1);
}
