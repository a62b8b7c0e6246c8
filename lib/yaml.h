/*
 * YAML <-> JSON with libyaml. Reading: one document, block or flow style; plain scalars are typed
 * the YAML 1.2 core-schema way (null ~ true false, integers, floats, .inf .nan) and everything
 * quoted stays a string; anchors and aliases are refused (no billion laughs); tags other than the
 * core ones are refused; mapping keys must be strings and unique. Errors name line and column
 * (details "line", "column"; 1-based). Writing: a readable block-style document with
 * strings quoted whenever a plain scalar would be read back as something else.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_buf;
struct shp_error;

/* Parse data[0..len) (max nesting max_depth) into a new json_t, or NULL with SHP_E_MALFORMED. */
json_t *shp_yaml_to_json(const char *data, size_t len, int max_depth, struct shp_error *err);
/*
 * The same, and *ret_lines (when not NULL) a new object mapping the path of every node below
 * the root to its 1-based line: "image_source.type", "sizes[2].cpus" (a mapping member's line
 * is its key's). For messages that point into a file.
 */
json_t *shp_yaml_to_json_lines(const char *data, size_t len, int max_depth, json_t **ret_lines,
			       struct shp_error *err);
/* Emit j as a YAML document (appended to out, ends with a newline). */
int shp_json_to_yaml(const json_t *j, struct shp_buf *out, struct shp_error *err) SHP_MUSTCHECK;
