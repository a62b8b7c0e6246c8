/*
 * Helpers used across lib/, cli/ and shepherdd/. All are thread-safe.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "error.h"
#include "util.h"

const char *shp_strerror(int errnum, char *buf, size_t size)
{
#if defined(_GNU_SOURCE) && defined(__GLIBC__)
	return strerror_r(errnum, buf, size);
#else
	if (strerror_r(errnum, buf, size) != 0)
		(void)snprintf(buf, size, "error %d", errnum);
	return buf;
#endif
}

int shp_random_bytes(void *buf, size_t n, struct shp_error *err)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t k = getrandom(p, n, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return shp_error_errno(err, errno, "reading random bytes");
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

void shp_hex_encode(const void *data, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int shp_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int shp_random_hex(size_t nbytes, char *out, struct shp_error *err)
{
	unsigned char raw[64];
	int r;

	if (nbytes > sizeof(raw))
		return shp_error_set(err, SHP_E_INTERNAL, "random id of %zu bytes is too long",
				     nbytes);
	r = shp_random_bytes(raw, nbytes, err);
	if (r < 0)
		return r;
	shp_hex_encode(raw, nbytes, out);
	return 0;
}

uint64_t shp_now_monotonic_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t shp_now_realtime_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void shp_format_rfc3339(uint64_t realtime_us, char *out, size_t size)
{
	time_t secs = (time_t)(realtime_us / 1000000u);
	struct tm tm;

	if (!gmtime_r(&secs, &tm)) {
		(void)snprintf(out, size, "1970-01-01T00:00:00.000000Z");
		return;
	}
	(void)snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "Z", tm.tm_year + 1900,
		       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       realtime_us % 1000000u);
}

bool shp_utf8_is_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		uint32_t cp;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000))
			return false; /* overlong */
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

bool shp_name_is_valid(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

int shp_parse_int(const char *s, long long min, long long max, long long *ret,
		  struct shp_error *err)
{
	char *end = NULL;
	long long v;

	if (!s || !*s)
		return shp_error_set(err, SHP_E_INVAL, "empty number");
	/* strtoll would skip leading blanks; trailing ones are refused, so refuse these too. */
	if (isspace((unsigned char)s[0]))
		return shp_error_set(err, SHP_E_INVAL, "'%s' is not a whole number", s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || *end != '\0' || end == s)
		return shp_error_set(err, SHP_E_INVAL, "'%s' is not a whole number", s);
	if (v < min || v > max)
		return shp_error_set(err, SHP_E_INVAL, "%lld is out of range [%lld, %lld]", v, min,
				     max);
	*ret = v;
	return 0;
}

int shp_parse_duration(const char *s, int64_t *ret_seconds, struct shp_error *err)
{
	char num[32];
	size_t n;
	long long v, mult = 1;
	int r;

	if (!s || !*s)
		return shp_error_set(err, SHP_E_INVAL, "empty duration");
	n = strlen(s);
	if (n >= sizeof(num))
		return shp_error_set(err, SHP_E_INVAL, "duration '%.40s' is too long", s);
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's':
		mult = 1;
		num[--n] = '\0';
		break;
	case 'm':
		mult = 60;
		num[--n] = '\0';
		break;
	case 'h':
		mult = 3600;
		num[--n] = '\0';
		break;
	case 'd':
		mult = 86400;
		num[--n] = '\0';
		break;
	default: break;
	}
	r = shp_parse_int(num, 0, INT64_MAX / 86400, &v, NULL);
	if (r < 0)
		return shp_error_set(err, SHP_E_INVAL,
				     "invalid duration '%s' (use a number with s, m, h or d)", s);
	*ret_seconds = (int64_t)(v * mult);
	return 0;
}

int shp_parse_size(const char *s, uint64_t *ret_bytes, struct shp_error *err)
{
	char num[32];
	size_t n;
	long long v;
	uint64_t mult = 1;

	if (!s || !*s)
		return shp_error_set(err, SHP_E_INVAL, "empty size");
	n = strlen(s);
	if (n >= sizeof(num))
		return shp_error_set(err, SHP_E_INVAL, "size '%.40s' is too long", s);
	memcpy(num, s, n + 1);
	if (n > 3 && strcmp(num + n - 2, "iB") == 0 && strchr("kKmMgG", num[n - 3]))
		num[n -= 2] = '\0';
	else if (n > 1 && (num[n - 1] == 'B' || num[n - 1] == 'b') && n > 1 &&
		 strchr("kKmMgG", num[n - 2]))
		num[--n] = '\0';
	if (n > 0) {
		switch (num[n - 1]) {
		case 'k':
		case 'K':
			mult = 1024;
			num[--n] = '\0';
			break;
		case 'm':
		case 'M':
			mult = 1024 * 1024;
			num[--n] = '\0';
			break;
		case 'g':
		case 'G':
			mult = 1024 * 1024 * 1024;
			num[--n] = '\0';
			break;
		default: break;
		}
	}
	if (shp_parse_int(num, 0, (long long)(INT64_MAX / (int64_t)mult), &v, NULL) < 0)
		return shp_error_set(err, SHP_E_INVAL, "invalid size '%s' (use e.g. 512k, 1M, 2G)",
				     s);
	*ret_bytes = (uint64_t)v * mult;
	return 0;
}

bool shp_mem_equal_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

const char *shp_enum_to_string(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "unknown";
}

int shp_enum_from_string(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int shp_strcmp0(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}
