/*
 * Canonical JSON and SHA-256. Canonical form: object keys sorted by their UTF-8 bytes, no
 * whitespace, strings with the minimal JSON escapes (", \, control characters as \uXXXX except
 * \b \f \n \r \t), integers in decimal, reals in the shortest form that reads back to the same
 * double ("1.5", "1e+300"), reals with no fractional part written as integers are NOT merged
 * (1 and 1.0 differ: their JSON types differ). The plan hash builds on this.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_buf;
struct shp_error;

#define SHP_SHA256_LEN 32
#define SHP_SHA256_HEX_LEN 64

/* Append the canonical form of j to out. */
int shp_canon_json(const json_t *j, struct shp_buf *out, struct shp_error *err) SHP_MUSTCHECK;
/* SHA-256 of data into out (32 bytes). */
void shp_sha256(const void *data, size_t len, unsigned char out[SHP_SHA256_LEN]);
/* Lower-case hex SHA-256 of data into out (65 bytes). */
void shp_sha256_hex(const void *data, size_t len, char out[SHP_SHA256_HEX_LEN + 1]);
/* Hex SHA-256 of the canonical form of j. */
int shp_canon_sha256_hex(const json_t *j, char out[SHP_SHA256_HEX_LEN + 1],
			 struct shp_error *err) SHP_MUSTCHECK;
