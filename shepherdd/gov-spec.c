/*
 * The VM spec of a request (gov.h "the VM spec"): its fields, the check of shape, types and
 * limits, the effective spec after an approver's replacement, the rules of that replacement,
 * quantities and the resources a spec gets from its size. Pure: no database, no I/O.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "gov.h"
#include "json.h"
#include "util.h"

#define NAME_MAX_LEN 63
#define CLASS_MAX_LEN 253
#define CLOUD_INIT_MAX 65536
#define DESCRIPTION_MAX 1024
#define MEMORY_MIB_MIN 64
#define MEMORY_MIB_MAX 16777216 /* 16 TiB, the instance_sizes limit */

const char *const shd_spec_fields[] = {
	"name",    "namespace", "service",     "system", "template",      "template_version",
	"size",    "cpus",      "memory",      "disks",  "storage_class", "cloud_init",
	"cluster", "run",       "description", NULL,
};
const char *const shd_spec_required[] = {"name", "namespace", "service", "template", "size", NULL};
const char *const shd_spec_immutable[] = {"name", "namespace", "service", "system", NULL};

static const char *const disk_fields[] = {"name", "size", "storage_class", NULL};
/* Volume names the renderer uses itself; a disk may not take them. */
static const char *const reserved_disks[] = {"rootdisk", "cloudinit", NULL};

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Text without control characters (newlines and tabs allowed when multiline). */
static bool text_is_clean(const char *s, size_t n, bool multiline)
{
	if (!shp_utf8_is_valid(s, n) || memchr(s, '\0', n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0x7f ||
		    (c < 0x20 && !(multiline && (c == '\n' || c == '\t' || c == '\r'))))
			return false;
	}
	return true;
}

/* A string member (or NULL when absent); SHP_E_INVAL for another type or dirty text. */
static int get_text(const json_t *obj, const char *key, const char *field, size_t max,
		    bool multiline, const char **ret, struct shp_error *err)
{
	const json_t *v = json_object_get(obj, key);

	*ret = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return shp_error_field(err, field, "field '%s' must be a string", field);
	if (json_string_length(v) > max) {
		(void)shp_error_field(err, field, "field '%s' is longer than %zu bytes", field,
				      max);
		shp_error_detail(err, "max_length", "%zu", max);
		return -SHP_E_INVAL;
	}
	if (!text_is_clean(json_string_value(v), json_string_length(v), multiline))
		return shp_error_field(err, field,
				       "field '%s' must be UTF-8 text without control characters",
				       field);
	*ret = json_string_value(v);
	return 0;
}

/* A DNS-1123 label member; never echoes the hostile value beyond a short quote. */
static int get_label(const json_t *obj, const char *key, const char *field, const char **ret,
		     struct shp_error *err)
{
	const char *s;
	int r = get_text(obj, key, field, 4096, false, &s, err);

	*ret = NULL;
	if (r < 0 || !s)
		return r;
	if (strlen(s) > NAME_MAX_LEN) {
		(void)shp_error_field(err, field, "field '%s' is longer than %d characters", field,
				      NAME_MAX_LEN);
		shp_error_detail(err, "max_length", "%d", NAME_MAX_LEN);
		return -SHP_E_INVAL;
	}
	if (!shp_name_is_valid(s))
		return shp_error_field(err, field,
				       "field '%s' must be a DNS-1123 label: lower-case letters, "
				       "digits and '-', starting and ending with a letter or digit "
				       "(got '%.63s')",
				       field, s);
	*ret = s;
	return 0;
}

/* A DNS-1123 subdomain (storage class names): labels joined by dots, at most 253. */
static bool subdomain_is_valid(const char *s)
{
	size_t n = strlen(s);
	char part[NAME_MAX_LEN + 1];

	if (n == 0 || n > CLASS_MAX_LEN)
		return false;
	for (const char *p = s;;) {
		size_t len = strcspn(p, ".");
		if (len == 0 || len > NAME_MAX_LEN)
			return false;
		memcpy(part, p, len);
		part[len] = '\0';
		if (!shp_name_is_valid(part))
			return false;
		if (!p[len])
			return true;
		p += len + 1;
	}
}

static int get_class(const json_t *obj, const char *key, const char *field, struct shp_error *err)
{
	const char *s;
	int r = get_text(obj, key, field, 4096, false, &s, err);

	if (r < 0 || !s)
		return r;
	if (!subdomain_is_valid(s))
		return shp_error_field(err, field,
				       "field '%s' must be a DNS-1123 subdomain of at most %d "
				       "characters (got '%.63s')",
				       field, CLASS_MAX_LEN, s);
	return 0;
}

static int not_quantity(const char *q, struct shp_error *err)
{
	return shp_error_set(err, SHP_E_INVAL,
			     "'%.32s' is not a quantity: a whole number with the unit Mi, Gi or Ti "
			     "(\"512Mi\", \"8Gi\")",
			     q ? q : "");
}

int shd_quantity_mib(const char *q, int64_t *ret, struct shp_error *err)
{
	static const struct {
		const char *suffix;
		int64_t mib;
	} units[] = {{"Mi", 1}, {"Gi", 1024}, {"Ti", 1024 * 1024}};
	size_t digits = q ? strspn(q, "0123456789") : 0;
	int64_t n = 0, mib = -1;

	/* 12 digits are plenty: anything longer is out of range in any unit */
	if (digits == 0 || digits > 12)
		return not_quantity(q, err);
	for (size_t i = 0; i < digits; i++)
		n = n * 10 + (q[i] - '0');
	for (size_t i = 0; i < SHP_ARRAY_SIZE(units); i++)
		if (strcmp(q + digits, units[i].suffix) == 0)
			mib = n * units[i].mib; /* < 2^60: no overflow */
	if (mib < 0)
		return not_quantity(q, err);
	if (mib < MEMORY_MIB_MIN)
		return shp_error_set(err, SHP_E_INVAL, "quantity '%.32s' is less than %d Mi", q,
				     MEMORY_MIB_MIN);
	if (mib > MEMORY_MIB_MAX)
		return shp_error_set(err, SHP_E_INVAL, "quantity '%.32s' is more than 16 Ti", q);
	*ret = mib;
	return 0;
}

static int get_quantity(const json_t *obj, const char *key, const char *field,
			struct shp_error *err)
{
	const char *s;
	int64_t mib;
	int r = get_text(obj, key, field, 64, false, &s, err);

	if (r < 0 || !s)
		return r;
	if (shd_quantity_mib(s, &mib, err) < 0) {
		(void)shp_error_prefix(err, "field '%s'", field);
		shp_error_detail(err, "field", "%s", field);
		return -SHP_E_INVAL;
	}
	return 0;
}

static int check_disk(const json_t *disk, size_t i, const json_t *disks, struct shp_error *err)
{
	char field[64];
	const char *name;
	size_t j;
	json_t *other;

	(void)snprintf(field, sizeof(field), "disks[%zu]", i);
	if (!json_is_object(disk))
		return shp_error_field(err, field, "field '%s' must be an object", field);
	if (shp_json_check_fields(disk, disk_fields, err) < 0) {
		(void)shp_error_prefix(err, "field '%s'", field);
		return -SHP_E_INVAL;
	}
	(void)snprintf(field, sizeof(field), "disks[%zu].name", i);
	if (get_label(disk, "name", field, &name, err) < 0)
		return -SHP_E_INVAL;
	if (!name)
		return shp_error_field(err, field, "missing field '%s'", field);
	if (in_list(reserved_disks, name))
		return shp_error_field(err, field, "field '%s' must not be '%s' (a reserved name)",
				       field, name);
	json_array_foreach(disks, j, other)
	{
		if (j < i && shp_streq(json_string_value(json_object_get(other, "name")), name))
			return shp_error_field(err, field, "disk name '%s' is used twice", name);
	}
	(void)snprintf(field, sizeof(field), "disks[%zu].size", i);
	if (!json_object_get(disk, "size"))
		return shp_error_field(err, field, "missing field '%s'", field);
	if (get_quantity(disk, "size", field, err) < 0)
		return -SHP_E_INVAL;
	(void)snprintf(field, sizeof(field), "disks[%zu].storage_class", i);
	return get_class(disk, "storage_class", field, err);
}

static int check_disks(const json_t *spec, struct shp_error *err)
{
	const json_t *disks = json_object_get(spec, "disks");
	size_t i;
	json_t *d;

	if (!disks)
		return 0;
	if (!json_is_array(disks))
		return shp_error_field(err, "disks", "field 'disks' must be an array");
	if (json_array_size(disks) > SHD_SPEC_MAX_DISKS) {
		(void)shp_error_field(err, "disks", "field 'disks' has more than %d disks",
				      SHD_SPEC_MAX_DISKS);
		shp_error_detail(err, "max_items", "%d", SHD_SPEC_MAX_DISKS);
		return -SHP_E_INVAL;
	}
	json_array_foreach(disks, i, d)
	{
		if (check_disk(d, i, disks, err) < 0)
			return -SHP_E_INVAL;
	}
	return 0;
}

static int check_int(const json_t *spec, const char *key, int64_t min, int64_t max,
		     struct shp_error *err)
{
	const json_t *v = json_object_get(spec, key);

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return shp_error_field(err, key, "field '%s' must be an integer", key);
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		(void)shp_error_field(err, key, "field '%s' must be from %lld to %lld", key,
				      (long long)min, (long long)max);
		shp_error_detail(err, "min", "%lld", (long long)min);
		shp_error_detail(err, "max", "%lld", (long long)max);
		return -SHP_E_INVAL;
	}
	return 0;
}

static int check_names(const json_t *spec, struct shp_error *err)
{
	static const char *const labels[] = {"name",     "namespace", "service", "system",
					     "template", "size",      "cluster", NULL};
	const char *s;

	for (size_t i = 0; labels[i]; i++)
		if (get_label(spec, labels[i], labels[i], &s, err) < 0)
			return -SHP_E_INVAL;
	for (size_t i = 0; shd_spec_required[i]; i++)
		if (!json_object_get(spec, shd_spec_required[i]))
			return shp_error_field(err, shd_spec_required[i], "missing field '%s'",
					       shd_spec_required[i]);
	return 0;
}

int shd_spec_validate(const json_t *spec, struct shp_error *err)
{
	const json_t *run = json_object_get(spec, "run");
	const char *s;

	if (!json_is_object(spec))
		return shp_error_set(err, SHP_E_INVAL, "the VM spec must be a JSON object");
	/* null is not a value of any field: absent fields are left out */
	for (size_t i = 0; shd_spec_fields[i]; i++)
		if (json_is_null(json_object_get(spec, shd_spec_fields[i])))
			return shp_error_field(err, shd_spec_fields[i],
					       "field '%s' must not be null", shd_spec_fields[i]);
	if (shp_json_check_fields(spec, shd_spec_fields, err) < 0 || check_names(spec, err) < 0 ||
	    check_int(spec, "template_version", 1, INT32_MAX, err) < 0 ||
	    check_int(spec, "cpus", 1, 1024, err) < 0 ||
	    get_quantity(spec, "memory", "memory", err) < 0 || check_disks(spec, err) < 0 ||
	    get_class(spec, "storage_class", "storage_class", err) < 0 ||
	    get_text(spec, "description", "description", DESCRIPTION_MAX, true, &s, err) < 0 ||
	    get_text(spec, "cloud_init", "cloud_init", CLOUD_INIT_MAX, true, &s, err) < 0)
		return -SHP_E_INVAL;
	if (s && shd_cloud_init_check(s, err) < 0)
		return -SHP_E_INVAL;
	if (run && !json_is_boolean(run))
		return shp_error_field(err, "run", "field 'run' must be a boolean");
	return 0;
}

const json_t *shd_spec_effective(const json_t *requested, const json_t *modified)
{
	return modified && json_is_object(modified) ? modified : requested;
}

int shd_spec_check_modification(const json_t *requested, const json_t *modified, int *ret_removed,
				struct shp_error *err)
{
	const char *key;
	json_t *v;
	int removed = 0;

	if (!json_is_object(requested) || !json_is_object(modified))
		return shp_error_set(err, SHP_E_INVAL, "the modified spec must be a JSON object");
	for (size_t i = 0; shd_spec_required[i]; i++)
		if (!json_object_get(modified, shd_spec_required[i])) {
			shp_error_field(err, shd_spec_required[i],
					"the modified spec lacks the required field '%s'",
					shd_spec_required[i]);
			shp_error_api_code(err, "REQUIRED_FIELD_REMOVED");
			return -SHP_E_INVAL;
		}
	for (size_t i = 0; shd_spec_immutable[i]; i++) {
		const json_t *a = json_object_get(requested, shd_spec_immutable[i]);
		const json_t *b = json_object_get(modified, shd_spec_immutable[i]);
		if (a == b || (a && b && json_equal(a, b)))
			continue;
		shp_error_field(err, shd_spec_immutable[i], "field '%s' cannot be changed",
				shd_spec_immutable[i]);
		shp_error_api_code(err, "IMMUTABLE_FIELD");
		return -SHP_E_INVAL;
	}
	json_object_foreach((json_t *)requested, key, v)
	{
		if (!json_object_get(modified, key))
			removed++;
	}
	if (ret_removed)
		*ret_removed = removed;
	return 0;
}

int shd_spec_resources(const json_t *spec, const struct shd_size *size, int *ret_cpus,
		       int64_t *ret_memory_mib, struct shp_error *err)
{
	const json_t *cpus = json_object_get(spec, "cpus");
	const json_t *memory = json_object_get(spec, "memory");
	int64_t mib = size ? size->memory_mib : 0;
	int n = size ? size->cpus : 0;

	if (cpus) {
		if (!json_is_integer(cpus) || json_integer_value(cpus) < 1 ||
		    json_integer_value(cpus) > 1024)
			return shp_error_field(err, "cpus", "field 'cpus' must be from 1 to 1024");
		n = (int)json_integer_value(cpus);
	}
	if (memory) {
		if (!json_is_string(memory))
			return shp_error_field(err, "memory", "field 'memory' must be a string");
		if (shd_quantity_mib(json_string_value(memory), &mib, err) < 0) {
			shp_error_detail(err, "field", "memory");
			(void)shp_error_prefix(err, "field 'memory'");
			return -SHP_E_INVAL;
		}
	}
	if (n < 1 || n > 1024 || mib < MEMORY_MIB_MIN || mib > MEMORY_MIB_MAX)
		return shp_error_set(err, SHP_E_INVAL,
				     "the size gives no valid CPU count or memory (%d CPUs, %lld "
				     "MiB)",
				     n, (long long)mib);
	*ret_cpus = n;
	*ret_memory_mib = mib;
	return 0;
}
