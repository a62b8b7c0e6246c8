/*
 * Unit tests of lib/zbuf.c: round trips (empty, small, large and incompressible data), the
 * inflated-size cap, the output buffer's cap, and corrupt, truncated or padded streams.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "error.h"
#include "zbuf.h"

static void round_trip(const char *data, size_t len)
{
	struct shp_buf z = SHP_BUF_INIT(len + 1024 + len / 100);
	struct shp_buf back = SHP_BUF_INIT(len + 1);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_zbuf_deflate(data, len, &z, &err), 0, "%s", err.msg);
	cr_assert_gt(z.len, 0);
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, len, &back, &err), 0, "%s", err.msg);
	cr_assert_eq(back.len, len);
	cr_assert(len == 0 || memcmp(back.buf, data, len) == 0);
	shp_buf_release(&z);
	shp_buf_release(&back);
}

/* Deterministic pseudo-random bytes (xorshift), which deflate cannot shrink. */
static char *noise(size_t n)
{
	char *p = malloc(n);
	uint64_t x = 88172645463325252ULL;

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (char)x;
	}
	return p;
}

static void compress_into(const char *data, size_t len, struct shp_buf *z)
{
	struct shp_error err = SHP_ERROR_INIT;

	shp_buf_init(z, 1 << 24);
	cr_assert_eq(shp_zbuf_deflate(data, len, z, &err), 0, "%s", err.msg);
}

Test(zbuf, round_trip_small_and_empty)
{
	round_trip("", 0);
	round_trip("a", 1);
	round_trip("name: web-1\ncpus: 2\nmemory: 4Gi\n", 31);
}

Test(zbuf, round_trip_binary_with_nuls)
{
	const char data[] = {'\0', 'x', '\0', '\377', '\n', '\0'};

	round_trip(data, sizeof(data));
}

Test(zbuf, round_trip_large_compressible)
{
	size_t n = 3 << 20;
	char *p = malloc(n);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = "spec: value\n"[i % 12];
	round_trip(p, n);
	free(p);
}

Test(zbuf, round_trip_large_incompressible)
{
	size_t n = 1 << 20;
	char *p = noise(n);

	round_trip(p, n);
	free(p);
}

Test(zbuf, deflate_appends_after_existing_bytes)
{
	struct shp_buf z = SHP_BUF_INIT(4096), back = SHP_BUF_INIT(4096);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shp_buf_add(&z, "HDR"), 0);
	cr_assert_eq(shp_zbuf_deflate("hello", 5, &z, &err), 0);
	cr_assert_eq(memcmp(z.buf, "HDR", 3), 0);
	cr_assert_eq(shp_buf_add(&back, "> "), 0);
	cr_assert_eq(shp_zbuf_inflate(z.buf + 3, z.len - 3, 5, &back, &err), 0, "%s", err.msg);
	cr_assert_str_eq(back.buf, "> hello");
	shp_buf_release(&z);
	shp_buf_release(&back);
}

Test(zbuf, inflate_cap_exceeded)
{
	size_t n = 100000;
	char *p = calloc(1, n);
	struct shp_buf z, back = SHP_BUF_INIT(1 << 24);
	struct shp_error err = SHP_ERROR_INIT;

	compress_into(p, n, &z);
	cr_assert_lt(z.len, 1000, "zeros compress well");
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, n - 1, &back, &err), -SHP_E_LIMIT);
	cr_assert_eq(err.code, SHP_E_LIMIT);
	cr_assert(strstr(err.msg, "99999"), "%s", err.msg);
	cr_assert_eq(back.len, 0, "the output is left as it was");
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, n, &back, &err), 0);
	cr_assert_eq(back.len, n);
	shp_buf_release(&z);
	shp_buf_release(&back);
	free(p);
}

Test(zbuf, output_buffer_cap)
{
	struct shp_buf z, small = SHP_BUF_INIT(10);
	struct shp_error err = SHP_ERROR_INIT;
	char *p = noise(5000);

	cr_assert_eq(shp_zbuf_deflate(p, 5000, &small, &err), -SHP_E_LIMIT);
	cr_assert_eq(small.len, 0);
	compress_into(p, 5000, &z);
	shp_error_clear(&err);
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, 1 << 20, &small, &err), -SHP_E_LIMIT);
	cr_assert_eq(small.len, 0);
	shp_buf_release(&z);
	shp_buf_release(&small);
	free(p);
}

Test(zbuf, corrupt_input)
{
	struct shp_buf z, back = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;
	const char *text = "apiVersion: v1\nkind: VirtualMachine\nname: db-1\n";

	cr_assert_eq(shp_zbuf_inflate("not zlib at all", 15, 1 << 20, &back, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "corrupt compressed data"), "%s", err.msg);
	cr_assert_eq(shp_zbuf_inflate("", 0, 1 << 20, &back, &err), -SHP_E_PROTO);

	compress_into(text, strlen(text), &z);
	z.buf[z.len / 2] ^= 0x55; /* a flipped byte: bad data or a bad checksum */
	shp_error_clear(&err);
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, 1 << 20, &back, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "corrupt compressed data"), "%s", err.msg);
	cr_assert_eq(back.len, 0);
	shp_buf_release(&z);
	shp_buf_release(&back);
}

Test(zbuf, truncated_and_trailing)
{
	struct shp_buf z, back = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;
	const char *text = "a text long enough to be compressed into a few dozen bytes\n";

	compress_into(text, strlen(text), &z);
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len - 3, 1 << 20, &back, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
	cr_assert_eq(back.len, 0);
	cr_assert_eq(shp_buf_add(&z, "junk"), 0);
	shp_error_clear(&err);
	cr_assert_eq(shp_zbuf_inflate(z.buf, z.len, 1 << 20, &back, &err), -SHP_E_PROTO);
	cr_assert(strstr(err.msg, "trailing"), "%s", err.msg);
	shp_buf_release(&z);
	shp_buf_release(&back);
}
