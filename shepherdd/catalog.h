/*
 * The catalogue's checks shared by the seed import (catalog.c), the API (api-catalog.c) and the
 * renderer (render.c): a template's fields and image source, an instance size's fields. Pure.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_error;

/*
 * A template's image source: {"type": "containerDisk", "image"} | {"type": "dataVolume",
 * "url" | "registry", "size"} | {"type": "pvc", "name", "namespace"?}. SHP_E_INVAL naming
 * the field (detail field=image_source).
 */
int shd_image_source_check(const json_t *src, struct shp_error *err) SHP_MUSTCHECK;

/* The fields of a template as the API takes it and the seed files hold it. */
extern const char *const shd_template_fields[];

/*
 * A template body: name (DNS label), description (<= 1024), os (<= 64), image_source, cloud_init
 * (<= 64 KiB, YAML syntax checked), quick_fields and advanced_fields (spec field names, none in
 * both). Unknown fields refused. SHP_E_INVAL with detail field= the path of the fault
 * ("image_source", "quick_fields[2]", "cloud_init" with line and column inside it).
 */
int shd_template_check(const json_t *body, struct shp_error *err) SHP_MUSTCHECK;

/* An instance size as the SQL statements take it: every value as text. */
struct shd_size_row {
	const char *name; /* borrowed from the body; NULL when absent */
	char cpus[16];    /* "" when absent */
	char memory_mib[24];
	char cpu_overcommit[16];
	char memory_overcommit[16];
	char *required_capabilities; /* owned JSON text, NULL when absent */
	const char *description;     /* borrowed; NULL when absent */
	int disabled;                /* -1 absent, 0, 1 */
};
void shd_size_row_release(struct shd_size_row *r);

/*
 * A size body: name (DNS label), cpus (1..1024), memory (a quantity, gov.h), cpu_overcommit
 * (1..64) and memory_overcommit (1..4) with at most two decimals, required_capabilities (up to
 * 16 capability names), description (<= 1024). create: name, cpus and memory are required and
 * "disabled" is refused; otherwise (an update) every field is optional, "disabled" is a
 * boolean, and "name" is refused. SHP_E_INVAL naming the field.
 */
int shd_size_check(const json_t *body, bool create, struct shd_size_row *ret,
		   struct shp_error *err) SHP_MUSTCHECK;

/*
 * Point err at a seed file: its message becomes "FILE:LINE: field 'F': MESSAGE", the line
 * being that of the err's "field" detail (prefix + field) in lines (a path -> line map of
 * shp_yaml_to_json_lines), of its nearest parent, or 1. A cloud_init syntax error's line is
 * counted from the cloud_init key. Returns -err->code.
 */
int shd_seed_locate(struct shp_error *err, const char *file, const json_t *lines,
		    const char *prefix);
