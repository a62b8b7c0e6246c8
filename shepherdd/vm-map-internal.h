/*
 * Typed reads of Kubernetes objects shared by the mappers (vm-map.c, vm-map-objs.c): a path
 * that is absent, null or of another type is simply not there.
 */
#pragma once

#include <stddef.h>

#include <jansson.h>

#define PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

static inline const json_t *obj_at(const json_t *j, const char *const *path)
{
	for (; *path && json_is_object(j); path++)
		j = json_object_get(j, *path);
	return *path ? NULL : j;
}

static inline const char *str_at(const json_t *j, const char *const *path)
{
	const json_t *v = obj_at(j, path);

	return json_is_string(v) ? json_string_value(v) : NULL;
}
