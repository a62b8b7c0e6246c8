/*
 * Unit tests of lib/buf.c: the invariants (never NULL, always NUL-terminated), the cap (exactly
 * at it succeeds, one byte past fails and changes nothing), NUL bytes, detach, truncate, reset
 * and release.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "error.h"

Test(buf, starts_empty_and_terminated)
{
	struct shp_buf a = SHP_BUF_INIT(16);
	struct shp_buf b;

	shp_buf_init(&b, 32);
	cr_assert_not_null(a.buf);
	cr_assert_str_eq(a.buf, "");
	cr_assert_eq(a.len, 0);
	cr_assert_eq(a.max, 16);
	cr_assert_str_eq(b.buf, "");
	cr_assert_eq(b.max, 32);
	shp_buf_release(&a);
	shp_buf_release(&b);
}

Test(buf, append_exactly_to_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(10);

	cr_assert_eq(shp_buf_add(&b, "0123"), 0);
	cr_assert_eq(shp_buf_addn(&b, "456789", 6), 0);
	cr_assert_eq(b.len, 10);
	cr_assert_str_eq(b.buf, "0123456789");
	cr_assert_eq(shp_buf_addch(&b, 'x'), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_add(&b, ""), 0, "adding nothing at the cap is fine");
	cr_assert_eq(b.len, 10);
	cr_assert_str_eq(b.buf, "0123456789");
	shp_buf_release(&b);
}

Test(buf, one_byte_past_the_cap_changes_nothing)
{
	struct shp_buf b = SHP_BUF_INIT(10);
	char *before;

	cr_assert_eq(shp_buf_add(&b, "abcdef"), 0);
	before = b.buf;
	cr_assert_eq(shp_buf_add(&b, "ghijk"), -SHP_E_LIMIT);
	cr_assert_eq(b.len, 6);
	cr_assert_str_eq(b.buf, "abcdef");
	cr_assert_eq(b.buf, before);
	cr_assert_eq(shp_buf_addn(&b, "ghijk", 5), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_addf(&b, "%s", "ghijk"), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_grow(&b, 5), -SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "abcdef");
	cr_assert_eq(shp_buf_add(&b, "ghij"), 0);
	cr_assert_str_eq(b.buf, "abcdefghij");
	shp_buf_release(&b);
}

Test(buf, addf_at_the_cap)
{
	struct shp_buf b = SHP_BUF_INIT(8);

	cr_assert_eq(shp_buf_addf(&b, "%d-%s", 12, "ab"), 0);
	cr_assert_eq(shp_buf_addf(&b, "%03d", 7), 0);
	cr_assert_str_eq(b.buf, "12-ab007");
	cr_assert_eq(b.len, 8);
	cr_assert_eq(shp_buf_addf(&b, "%s", ""), 0);
	cr_assert_eq(shp_buf_addf(&b, "%c", 'z'), -SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "12-ab007");
	shp_buf_release(&b);
}

Test(buf, addf_longer_than_the_first_allocation)
{
	struct shp_buf b = SHP_BUF_INIT(100000);
	char want[5001];

	memset(want, 'q', 5000);
	want[5000] = '\0';
	cr_assert_eq(shp_buf_addf(&b, "%s", "<"), 0);
	cr_assert_eq(shp_buf_addf(&b, "%.*s>", 5000, want), 0);
	cr_assert_eq(b.len, 5002);
	cr_assert_eq(b.buf[0], '<');
	cr_assert_eq(memcmp(b.buf + 1, want, 5000), 0);
	cr_assert_str_eq(b.buf + 5001, ">");
	shp_buf_release(&b);
}

Test(buf, zero_cap)
{
	struct shp_buf b = SHP_BUF_INIT(0);
	char *p;
	size_t len = 99;

	cr_assert_eq(shp_buf_add(&b, ""), 0);
	cr_assert_eq(shp_buf_addch(&b, 'a'), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_addf(&b, "x"), -SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "");
	p = shp_buf_detach(&b, &len);
	cr_assert_str_eq(p, "");
	cr_assert_eq(len, 0);
	free(p);
}

Test(buf, huge_requests_fail_without_overflow)
{
	struct shp_buf b = SHP_BUF_INIT(64);
	struct shp_buf u = SHP_BUF_INIT(SIZE_MAX);

	cr_assert_eq(shp_buf_add(&b, "x"), 0);
	cr_assert_eq(shp_buf_grow(&b, SIZE_MAX), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_grow(&b, SIZE_MAX - 1), -SHP_E_LIMIT);
	cr_assert_str_eq(b.buf, "x");

	cr_assert_eq(shp_buf_add(&u, "unbounded"), 0, "a SIZE_MAX cap still works");
	cr_assert_str_eq(u.buf, "unbounded");
	cr_assert_eq(shp_buf_grow(&u, SIZE_MAX - u.len), -SHP_E_LIMIT);
	cr_assert_eq(shp_buf_grow(&u, SIZE_MAX), -SHP_E_LIMIT);
	cr_assert_str_eq(u.buf, "unbounded");
	shp_buf_release(&b);
	shp_buf_release(&u);
}

Test(buf, nul_bytes_via_addn)
{
	struct shp_buf b = SHP_BUF_INIT(16);

	cr_assert_eq(shp_buf_addn(&b, "a\0b", 3), 0);
	cr_assert_eq(shp_buf_addch(&b, '\0'), 0);
	cr_assert_eq(shp_buf_add(&b, "c"), 0);
	cr_assert_eq(b.len, 5);
	cr_assert_eq(memcmp(b.buf, "a\0b\0c", 6), 0, "len is authoritative, still terminated");
	shp_buf_truncate(&b, 2);
	cr_assert_eq(b.len, 2);
	cr_assert_eq(b.buf[2], '\0');
	shp_buf_release(&b);
}

Test(buf, grow_keeps_len)
{
	struct shp_buf b = SHP_BUF_INIT(1000);

	cr_assert_eq(shp_buf_add(&b, "ab"), 0);
	cr_assert_eq(shp_buf_grow(&b, 500), 0);
	cr_assert_eq(b.len, 2);
	cr_assert_geq(b.alloc, 503);
	cr_assert_str_eq(b.buf, "ab");
	cr_assert_eq(shp_buf_grow(&b, 998), 0, "exactly to the cap");
	cr_assert_eq(shp_buf_grow(&b, 999), -SHP_E_LIMIT);
	cr_assert_leq(b.alloc, 1001, "never more than max + 1");
	shp_buf_release(&b);
}

Test(buf, detach_of_an_empty_buffer)
{
	struct shp_buf b = SHP_BUF_INIT(16);
	size_t len = 99;
	char *p = shp_buf_detach(&b, &len);

	cr_assert_not_null(p);
	cr_assert_neq(p, shp_buf_empty, "always heap-allocated");
	cr_assert_str_eq(p, "");
	cr_assert_eq(len, 0);
	free(p);
	cr_assert_eq(b.max, 16);
	cr_assert_str_eq(b.buf, "");
}

Test(buf, detach_hands_out_and_reinits)
{
	struct shp_buf b = SHP_BUF_INIT(16);
	size_t len = 0;
	char *p;

	cr_assert_eq(shp_buf_add(&b, "hello"), 0);
	p = shp_buf_detach(&b, &len);
	cr_assert_str_eq(p, "hello");
	cr_assert_eq(len, 5);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.max, 16);
	cr_assert_str_eq(b.buf, "");
	cr_assert_eq(shp_buf_add(&b, "again"), 0);
	cr_assert_neq(b.buf, p);
	free(p);
	p = shp_buf_detach(&b, NULL);
	cr_assert_str_eq(p, "again");
	free(p);
}

Test(buf, truncate_and_reset)
{
	struct shp_buf b = SHP_BUF_INIT(64);
	char *mem;

	shp_buf_truncate(&b, 0);
	shp_buf_reset(&b);
	cr_assert_str_eq(b.buf, "", "truncating the shared empty string is harmless");
	cr_assert_eq(shp_buf_add(&b, "abcdef"), 0);
	shp_buf_truncate(&b, 10);
	cr_assert_str_eq(b.buf, "abcdef", "growing by truncate is a no-op");
	shp_buf_truncate(&b, 3);
	cr_assert_str_eq(b.buf, "abc");
	cr_assert_eq(b.len, 3);
	mem = b.buf;
	shp_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_str_eq(b.buf, "");
	cr_assert_eq(b.buf, mem, "reset keeps the allocation");
	cr_assert_eq(shp_buf_add(&b, "xyz"), 0);
	cr_assert_eq(b.buf, mem);
	shp_buf_release(&b);
}

Test(buf, release_reinits_with_the_same_cap)
{
	struct shp_buf b = SHP_BUF_INIT(5);

	shp_buf_release(&b);
	cr_assert_eq(shp_buf_add(&b, "abcde"), 0);
	shp_buf_release(&b);
	cr_assert_eq(b.buf, shp_buf_empty);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.alloc, 0);
	cr_assert_eq(b.max, 5);
	cr_assert_eq(shp_buf_add(&b, "abcdef"), -SHP_E_LIMIT);
	shp_buf_release(&b);
}

Test(buf, cleanup_attribute_releases)
{
	for (int i = 0; i < 3; i++) {
		_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(1024);

		cr_assert_eq(shp_buf_addf(&b, "round %d", i), 0);
	}
}

Test(buf, many_small_appends_match_a_reference)
{
	struct shp_buf b = SHP_BUF_INIT(1 << 20);
	char *ref = malloc(100000);
	size_t n = 0;

	cr_assert_not_null(ref);
	for (int i = 0; n + 16 < 100000; i++) {
		char piece[16];
		int k = snprintf(piece, sizeof(piece), "%d,", i);

		memcpy(ref + n, piece, (size_t)k);
		n += (size_t)k;
		if (i % 2)
			cr_assert_eq(shp_buf_addf(&b, "%d,", i), 0);
		else
			cr_assert_eq(shp_buf_addn(&b, piece, (size_t)k), 0);
	}
	cr_assert_eq(b.len, n);
	cr_assert_eq(memcmp(b.buf, ref, n), 0);
	cr_assert_eq(b.buf[n], '\0');
	free(ref);
	shp_buf_release(&b);
}
