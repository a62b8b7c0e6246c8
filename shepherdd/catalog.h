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
