/*
 * Small helpers with no better home: thread-safe strerror, randomness, hex, clocks, UTF-8 and
 * name validation, duration parsing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

struct shp_error;

/* strerror_r wrapper (GNU or XSI), always returns buf or a static string. */
const char *shp_strerror(int errnum, char *buf, size_t size);

/* Fill buf with n cryptographically random bytes (getrandom); 0 or -SHP_E_IO. */
int shp_random_bytes(void *buf, size_t n, struct shp_error *err) SHP_MUSTCHECK;
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void shp_hex_encode(const void *data, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int shp_hex_digit(char c);
/* A random id of 2*nbytes hex characters into out (size >= 2*nbytes + 1); 0 or -SHP_E_IO. */
int shp_random_hex(size_t nbytes, char *out, struct shp_error *err) SHP_MUSTCHECK;

/* Clocks. */
uint64_t shp_now_monotonic_ns(void);
uint64_t shp_now_realtime_us(void);
/* RFC 3339 UTC with microseconds ("2026-11-22T15:36:49.123456Z") into out (>= 32 bytes). */
void shp_format_rfc3339(uint64_t realtime_us, char *out, size_t size);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool shp_utf8_is_valid(const char *s, size_t n);
/*
 * True when s is a DNS-1123 label: 1-63 chars of [a-z0-9-], starting and ending alphanumeric.
 * The shape of every Kubernetes namespace and of shepherd resource names.
 */
bool shp_name_is_valid(const char *s);

/* Parse "30s", "5m", "2h", "7d" or a bare number of seconds; 0 or -SHP_E_INVAL. */
int shp_parse_duration(const char *s, int64_t *ret_seconds, struct shp_error *err) SHP_MUSTCHECK;
/* Parse a size "64", "512k", "1M", "1MiB", "2G"; 0 or -SHP_E_INVAL. */
int shp_parse_size(const char *s, uint64_t *ret_bytes, struct shp_error *err) SHP_MUSTCHECK;
/* strtol with full checking into [min, max]; 0 or -SHP_E_INVAL. */
int shp_parse_int(const char *s, long long min, long long max, long long *ret,
		  struct shp_error *err) SHP_MUSTCHECK;

/* Constant-time comparison of n bytes. */
bool shp_mem_equal_ct(const void *a, const void *b, size_t n);

/*
 * Enum names: names[v] for 0 <= v < n ("unknown" otherwise), and the index of s in names
 * (-1 if absent). Every enum that reaches SQL or JSON goes through a table of names.
 */
const char *shp_enum_to_string(const char *const *names, size_t n, int v);
int shp_enum_from_string(const char *const *names, size_t n, const char *s);

/* strcmp that treats NULL as "". */
int shp_strcmp0(const char *a, const char *b);
static inline bool shp_streq(const char *a, const char *b)
{
	return shp_strcmp0(a, b) == 0;
}
