/*
 * jansson helpers: bounded parsing with precise errors, typed field getters that set
 * struct shp_error, and unknown-field checks. Nothing here logs.
 *
 * Ownership: functions returning json_t * return a new reference; json_t * parameters are
 * borrowed unless the name ends in _take.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_buf;
struct shp_error;

/*
 * Parse one JSON value from data[0..len). Rejects: invalid UTF-8, NUL bytes, duplicate object
 * keys, nesting deeper than max_depth, trailing garbage. On failure returns NULL and sets
 * SHP_E_MALFORMED with details "line", "column" and "position" (byte offset) where known.
 */
json_t *shp_json_parse(const char *data, size_t len, int max_depth, struct shp_error *err);
/* Like shp_json_parse, and also require a JSON object at the top. */
json_t *shp_json_parse_object(const char *data, size_t len, int max_depth, struct shp_error *err);

/*
 * Refuse keys of obj that are not in allowed (a NULL-terminated list): SHP_E_INVAL
 * "unknown field 'x'" with detail field=x.
 */
int shp_json_check_fields(const json_t *obj, const char *const *allowed,
			  struct shp_error *err) SHP_MUSTCHECK;

/*
 * Typed getters. A missing key (or JSON null) gives -SHP_E_INVAL "missing field 'k'" when
 * required, else 0 with *ret left unchanged. A wrong type gives -SHP_E_INVAL
 * "field 'k' must be a string" (detail field=k). Strings are borrowed from obj, must be valid
 * UTF-8 without NUL and at most max_len bytes (0 = no limit).
 */
int shp_json_get_string(const json_t *obj, const char *key, bool required, size_t max_len,
			const char **ret, struct shp_error *err) SHP_MUSTCHECK;
int shp_json_get_int(const json_t *obj, const char *key, bool required, int64_t min, int64_t max,
		     int64_t *ret, struct shp_error *err) SHP_MUSTCHECK;
int shp_json_get_bool(const json_t *obj, const char *key, bool required, bool *ret,
		      struct shp_error *err) SHP_MUSTCHECK;
/* A nested object (borrowed). */
int shp_json_get_object(const json_t *obj, const char *key, bool required, json_t **ret,
			struct shp_error *err) SHP_MUSTCHECK;

/* Borrowed string member or NULL (no error), for reading trusted JSON (responses, rows). */
const char *shp_json_str(const json_t *obj, const char *key);
/* Integer member or def. */
int64_t shp_json_int(const json_t *obj, const char *key, int64_t def);

/* Serialise with sorted keys, compact, into out (appends); 0 or -SHP_E_LIMIT/-SHP_E_NOMEM. */
int shp_json_dump_buf(const json_t *j, struct shp_buf *out, bool pretty) SHP_MUSTCHECK;
