/*
 * The catalogue's checks (catalog.h): a template's and an instance size's fields as the API
 * takes them and the seed files hold them, and errors that point into a seed file by line.
 * Pure: no database, no I/O.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "gov.h"
#include "json.h"
#include "util.h"

#define TEXT_MAX 1024
#define OS_MAX 64
#define CLOUD_INIT_MAX 65536
#define CAPS_MAX 16

const char *const shd_template_fields[] = {
	"name",         "description",     "os", "image_source", "cloud_init",
	"quick_fields", "advanced_fields", NULL,
};

static const char *const size_fields[] = {
	"name",
	"cpus",
	"memory",
	"cpu_overcommit",
	"memory_overcommit",
	"required_capabilities",
	"description",
	"disabled",
	NULL,
};

static const char *detail(const struct shp_error *err, const char *key)
{
	for (int i = 0; err && i < err->n_details; i++)
		if (strcmp(err->details[i].key, key) == 0)
			return err->details[i].value;
	return NULL;
}

/* Text without control characters other than newline and tab (multiline) or none at all. */
static int get_text(const json_t *obj, const char *key, bool required, size_t max, bool multiline,
		    const char **ret, struct shp_error *err)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;

	*ret = NULL;
	if (!v || json_is_null(v))
		return required ? shp_error_field(err, key, "missing field '%s'", key) : 0;
	if (!json_is_string(v))
		return shp_error_field(err, key, "field '%s' must be a string", key);
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > max) {
		(void)shp_error_field(err, key, "field '%s' is longer than %zu bytes", key, max);
		shp_error_detail(err, "max_length", "%zu", max);
		return -SHP_E_INVAL;
	}
	if (!shp_utf8_is_valid(s, n) || memchr(s, '\0', n))
		return shp_error_field(err, key, "field '%s' is not UTF-8 text", key);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0x7f || (c < 0x20 && !(multiline && (c == '\n' || c == '\t'))))
			return shp_error_field(err, key, "field '%s' contains control characters",
					       key);
	}
	*ret = s;
	return 0;
}

static int get_name(const json_t *obj, bool required, const char **ret, struct shp_error *err)
{
	if (get_text(obj, "name", required, 4096, false, ret, err) < 0)
		return -SHP_E_INVAL;
	if (*ret && !shp_name_is_valid(*ret))
		return shp_error_field(
			err, "name",
			"field 'name' must be a DNS-1123 label of at most 63 characters: "
			"lower-case letters, digits and '-' (got '%.63s')",
			*ret);
	return 0;
}

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* quick_fields / advanced_fields: distinct spec field names. */
static int check_field_list(const json_t *body, const char *key, const json_t *other,
			    struct shp_error *err)
{
	const json_t *list = json_object_get(body, key);
	char field[48];
	size_t i, j;
	json_t *v, *w;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return shp_error_field(err, key, "field '%s' must be an array of spec field names",
				       key);
	json_array_foreach(list, i, v)
	{
		(void)snprintf(field, sizeof(field), "%s[%zu]", key, i);
		if (!json_is_string(v) || !in_list(shd_spec_fields, json_string_value(v)))
			return shp_error_field(err, field,
					       "field '%s' must name a field of the VM spec (cpus, "
					       "memory, disks, storage_class, cloud_init, ...)",
					       field);
		json_array_foreach(list, j, w)
		{
			if (j < i && json_equal(v, w))
				return shp_error_field(err, field, "field '%s' names '%s' twice",
						       key, json_string_value(v));
		}
		json_array_foreach(other, j, w)
		{
			if (json_equal(v, w))
				return shp_error_field(err, field,
						       "'%s' is in both quick_fields and "
						       "advanced_fields",
						       json_string_value(v));
		}
	}
	return 0;
}

int shd_template_check(const json_t *body, struct shp_error *err)
{
	const char *s;

	if (!json_is_object(body))
		return shp_error_set(err, SHP_E_INVAL, "a template must be an object");
	if (shp_json_check_fields(body, shd_template_fields, err) < 0 ||
	    get_name(body, true, &s, err) < 0 ||
	    get_text(body, "description", false, TEXT_MAX, true, &s, err) < 0 ||
	    get_text(body, "os", false, OS_MAX, false, &s, err) < 0 ||
	    get_text(body, "cloud_init", false, CLOUD_INIT_MAX, true, &s, err) < 0)
		return -SHP_E_INVAL;
	if (s && shd_cloud_init_check(s, err) < 0)
		return -SHP_E_INVAL;
	if (!json_object_get(body, "image_source"))
		return shp_error_field(err, "image_source", "missing field 'image_source'");
	if (shd_image_source_check(json_object_get(body, "image_source"), err) < 0)
		return -SHP_E_INVAL;
	if (check_field_list(body, "quick_fields", NULL, err) < 0 ||
	    check_field_list(body, "advanced_fields", json_object_get(body, "quick_fields"), err) <
		    0)
		return -SHP_E_INVAL;
	return 0;
}

/* ---- sizes --------------------------------------------------------------------------------- */

void shd_size_row_release(struct shd_size_row *r)
{
	free(r->required_capabilities);
	r->required_capabilities = NULL;
}

/* A ratio in [1, max] with at most two decimals, as numeric(5,2) text. */
static int get_ratio(const json_t *body, const char *key, int max, char *out, size_t size,
		     struct shp_error *err)
{
	const json_t *v = json_object_get(body, key);
	double d, hundredths;

	if (!v)
		return 0;
	if (!json_is_number(v))
		return shp_error_field(err, key, "field '%s' must be a number", key);
	d = json_number_value(v);
	if (!(d >= 1.0 && d <= max)) {
		(void)shp_error_field(err, key, "field '%s' must be from 1 to %d", key, max);
		shp_error_detail(err, "min", "1");
		shp_error_detail(err, "max", "%d", max);
		return -SHP_E_INVAL;
	}
	hundredths = d * 100.0;
	if (hundredths - (double)(long long)(hundredths + 0.5) > 1e-6 ||
	    (double)(long long)(hundredths + 0.5) - hundredths > 1e-6)
		return shp_error_field(err, key, "field '%s' has more than two decimals", key);
	(void)snprintf(out, size, "%.2f", d);
	return 0;
}

static int get_caps(const json_t *body, struct shd_size_row *r, struct shp_error *err)
{
	const json_t *caps = json_object_get(body, "required_capabilities");
	char field[48];
	size_t i, j;
	json_t *v, *w;

	if (!caps)
		return 0;
	if (!json_is_array(caps) || json_array_size(caps) > CAPS_MAX)
		return shp_error_field(
			err, "required_capabilities",
			"field 'required_capabilities' must be an array of at most %d "
			"capability names",
			CAPS_MAX);
	json_array_foreach(caps, i, v)
	{
		(void)snprintf(field, sizeof(field), "required_capabilities[%zu]", i);
		if (!json_is_string(v) || !shp_name_is_valid(json_string_value(v)))
			return shp_error_field(err, field,
					       "field '%s' must be a capability name such as 'gpu' "
					       "(lower-case letters, digits and '-')",
					       field);
		json_array_foreach(caps, j, w)
		{
			if (j < i && json_equal(v, w))
				return shp_error_field(err, field, "capability '%s' is named twice",
						       json_string_value(v));
		}
	}
	r->required_capabilities = json_dumps(caps, JSON_COMPACT);
	return r->required_capabilities ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

static int get_resources(const json_t *body, bool create, struct shd_size_row *r,
			 struct shp_error *err)
{
	const json_t *cpus = json_object_get(body, "cpus");
	const char *memory;
	int64_t mib;

	if (create && !cpus)
		return shp_error_field(err, "cpus", "missing field 'cpus'");
	if (cpus && (!json_is_integer(cpus) || json_integer_value(cpus) < 1 ||
		     json_integer_value(cpus) > 1024))
		return shp_error_field(err, "cpus",
				       "field 'cpus' must be an integer from 1 to 1024");
	if (cpus)
		(void)snprintf(r->cpus, sizeof(r->cpus), "%lld",
			       (long long)json_integer_value(cpus));
	if (get_text(body, "memory", create, 64, false, &memory, err) < 0)
		return -SHP_E_INVAL;
	if (!memory)
		return 0;
	if (shd_quantity_mib(memory, &mib, err) < 0) {
		shp_error_detail(err, "field", "memory");
		(void)shp_error_prefix(err, "field 'memory'");
		return -SHP_E_INVAL;
	}
	(void)snprintf(r->memory_mib, sizeof(r->memory_mib), "%lld", (long long)mib);
	return 0;
}

int shd_size_check(const json_t *body, bool create, struct shd_size_row *ret, struct shp_error *err)
{
	struct shd_size_row r = {.disabled = -1};
	const json_t *disabled = json_object_get(body, "disabled");

	if (!json_is_object(body))
		return shp_error_set(err, SHP_E_INVAL, "a size must be an object");
	if (shp_json_check_fields(body, size_fields, err) < 0)
		return -SHP_E_INVAL;
	if (create && disabled)
		return shp_error_field(err, "disabled", "a new size cannot be disabled");
	if (!create && json_object_get(body, "name"))
		return shp_error_field(err, "name", "a size cannot be renamed");
	if (disabled && !json_is_boolean(disabled))
		return shp_error_field(err, "disabled", "field 'disabled' must be a boolean");
	if (disabled)
		r.disabled = json_is_true(disabled);
	if (get_name(body, create, &r.name, err) < 0 || get_resources(body, create, &r, err) < 0 ||
	    get_ratio(body, "cpu_overcommit", 64, r.cpu_overcommit, sizeof(r.cpu_overcommit), err) <
		    0 ||
	    get_ratio(body, "memory_overcommit", 4, r.memory_overcommit,
		      sizeof(r.memory_overcommit), err) < 0 ||
	    get_text(body, "description", false, TEXT_MAX, true, &r.description, err) < 0 ||
	    get_caps(body, &r, err) < 0) {
		shd_size_row_release(&r);
		return -SHP_E_INVAL;
	}
	*ret = r;
	return 0;
}

/* ---- pointing into seed files -------------------------------------------------------------- */

/* The line of path or of its nearest parent ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"). */
static size_t line_of(const json_t *lines, const char *path)
{
	char buf[256];
	char *cut;

	(void)snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		const json_t *v = json_object_get(lines, buf);
		if (json_is_integer(v))
			return (size_t)json_integer_value(v);
		cut = strrchr(buf, '.');
		if (!cut || (strrchr(buf, '[') && strrchr(buf, '[') > cut))
			cut = strrchr(buf, '[');
		if (!cut)
			return 1;
		*cut = '\0';
	}
}

int shd_seed_locate(struct shp_error *err, const char *file, const json_t *lines,
		    const char *prefix)
{
	char path[256], msg[SHP_ERROR_MSG_MAX];
	const char *field, *inner;
	size_t line;

	if (!err)
		return -SHP_E_INVAL;
	field = detail(err, "field");
	(void)snprintf(path, sizeof(path), "%s%s", prefix ? prefix : "", field ? field : "");
	line = line_of(lines, path);
	/* a cloud-init block starts on the line after its key */
	inner = detail(err, "line");
	if (field && strcmp(field, "cloud_init") == 0 && inner)
		line += strtoul(inner, NULL, 10);
	(void)snprintf(msg, sizeof(msg), "%s", err->msg);
	(void)snprintf(err->msg, sizeof(err->msg), "%s:%zu: %s: %s", file, line,
		       path[0] ? path : "(document)", msg);
	return -(int)err->code;
}
