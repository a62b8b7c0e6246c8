/*
 * The catalogue's pure checks: every shipped seed file passes, templates and sizes with
 * hostile or wrong fields are refused naming the field, a size's values come out as the SQL
 * text the statements take, and seed errors point at file, line and field.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "catalog.h"
#include "error.h"
#include "gov.h"
#include "yaml.h"

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	cr_assert_not_null(j, "bad test JSON %s: %s", text, je.text);
	return j;
}

static const char *field_of(const struct shp_error *err)
{
	for (int i = 0; i < err->n_details; i++)
		if (strcmp(err->details[i].key, "field") == 0)
			return err->details[i].value;
	return "";
}

static json_t *load_yaml(const char *path, json_t **lines)
{
	char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;
	struct shp_error err = SHP_ERROR_INIT;
	json_t *j;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	j = shp_yaml_to_json_lines(buf, n, 32, lines, &err);
	cr_assert_not_null(j, "%s: %s", path, err.msg);
	return j;
}

Test(catalog, shipped_seed_is_valid)
{
	DIR *d = opendir(SHP_ABS_SRCDIR "/deploy/seed/templates");
	struct dirent *e;
	int n = 0;
	json_t *sizes, *v;
	size_t i;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[512];
		struct shp_error err = SHP_ERROR_INIT;
		json_t *t;

		if (!strstr(e->d_name, ".yaml"))
			continue;
		(void)snprintf(path, sizeof(path), "%s/deploy/seed/templates/%s", SHP_ABS_SRCDIR,
			       e->d_name);
		t = load_yaml(path, NULL);
		cr_expect_eq(shd_template_check(t, &err), 0, "%s: %s", e->d_name, err.msg);
		json_decref(t);
		n++;
	}
	closedir(d);
	cr_expect_geq(n, 4, "the seed has its templates");
	sizes = load_yaml(SHP_ABS_SRCDIR "/deploy/seed/sizes.yaml", NULL);
	json_array_foreach(json_object_get(sizes, "sizes"), i, v)
	{
		struct shd_size_row r;
		struct shp_error err = SHP_ERROR_INIT;

		cr_expect_eq(shd_size_check(v, true, &r, &err), 0, "size %zu: %s", i, err.msg);
		shd_size_row_release(&r);
	}
	cr_expect_geq(json_array_size(json_object_get(sizes, "sizes")), 5);
	json_decref(sizes);
}

#define IMG "\"image_source\":{\"type\":\"containerDisk\",\"image\":\"quay.io/x:1\"}"

static const struct {
	const char *json, *field, *msg;
} bad_templates[] = {
	{"{" IMG "}", "name", "missing field 'name'"},
	{"{\"name\":\"a\"}", "image_source", "missing field 'image_source'"},
	{"{\"name\":\"a\"," IMG ",\"extra\":1}", "extra", "unknown field 'extra'"},
	{"{\"name\":\"Ab\"," IMG "}", "name", "DNS-1123"},
	{"{\"name\":\"a\"," IMG ",\"os\":\"x\\ny\"}", "os", "control characters"},
	{"{\"name\":\"a\"," IMG ",\"cloud_init\":\"a: b: c\\n\"}", "cloud_init", "line 1"},
	{"{\"name\":\"a\"," IMG ",\"quick_fields\":\"cpus\"}", "quick_fields", "array"},
	{"{\"name\":\"a\"," IMG ",\"quick_fields\":[\"cpus\",\"cpus\"]}", "quick_fields[1]",
	 "twice"},
	{"{\"name\":\"a\"," IMG ",\"quick_fields\":[\"cpus\"],\"advanced_fields\":[\"cpus\"]}",
	 "advanced_fields[0]", "both"},
	{"{\"name\":\"a\"," IMG ",\"advanced_fields\":[3]}", "advanced_fields[0]", "spec"},
	{"{\"name\":\"a\",\"image_source\":{\"type\":\"containerDisk\",\"image\":\"x\",\"tag\":1}}",
	 "image_source.tag", "unknown field 'tag'"},
	{"{\"name\":\"a\",\"image_source\":{\"type\":\"pvc\",\"name\":\"d\",\"namespace\":\"N\"}}",
	 "image_source.namespace", "DNS-1123"},
	{"{\"name\":\"a\",\"image_source\":{\"type\":\"dataVolume\",\"registry\":\"oci://x\","
	 "\"size\":\"1Gi\"}}",
	 "image_source.registry", "docker://"},
};

Test(catalog, hostile_templates)
{
	for (size_t i = 0; i < sizeof(bad_templates) / sizeof(bad_templates[0]); i++) {
		json_auto_t *t = parse(bad_templates[i].json);
		struct shp_error err = SHP_ERROR_INIT;

		cr_expect_eq(shd_template_check(t, &err), -SHP_E_INVAL, "case %zu accepted", i);
		cr_expect_str_eq(field_of(&err), bad_templates[i].field, "case %zu: %s", i,
				 err.msg);
		cr_expect(strstr(err.msg, bad_templates[i].msg), "case %zu: '%s' lacks '%s'", i,
			  err.msg, bad_templates[i].msg);
	}
}

Test(catalog, size_rows)
{
	json_auto_t *full =
		parse("{\"name\":\"big\",\"cpus\":16,\"memory\":\"2Ti\",\"cpu_overcommit\":2.5,"
		      "\"memory_overcommit\":1,\"required_capabilities\":[\"gpu\",\"hugepages\"],"
		      "\"description\":\"d\"}");
	json_auto_t *partial = parse("{\"disabled\":true,\"memory\":\"512Mi\"}");
	struct shd_size_row r;

	cr_assert_eq(shd_size_check(full, true, &r, NULL), 0);
	cr_expect_str_eq(r.name, "big");
	cr_expect_str_eq(r.cpus, "16");
	cr_expect_str_eq(r.memory_mib, "2097152");
	cr_expect_str_eq(r.cpu_overcommit, "2.50");
	cr_expect_str_eq(r.memory_overcommit, "1.00");
	cr_expect_str_eq(r.required_capabilities, "[\"gpu\",\"hugepages\"]");
	cr_expect_eq(r.disabled, -1);
	shd_size_row_release(&r);
	cr_assert_eq(shd_size_check(partial, false, &r, NULL), 0);
	cr_expect_null(r.name);
	cr_expect_str_eq(r.cpus, "");
	cr_expect_str_eq(r.memory_mib, "512");
	cr_expect_eq(r.disabled, 1);
	cr_expect_null(r.required_capabilities);
	shd_size_row_release(&r);
}

static const struct {
	bool create;
	const char *json, *field;
} bad_sizes[] = {
	{true, "{\"cpus\":1,\"memory\":\"1Gi\"}", "name"},
	{true, "{\"name\":\"a\",\"memory\":\"1Gi\"}", "cpus"},
	{true, "{\"name\":\"a\",\"cpus\":1}", "memory"},
	{true, "{\"name\":\"a\",\"cpus\":1025,\"memory\":\"1Gi\"}", "cpus"},
	{true, "{\"name\":\"a\",\"cpus\":true,\"memory\":\"1Gi\"}", "cpus"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1GB\"}", "memory"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"cpu_overcommit\":0.5}",
	 "cpu_overcommit"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"cpu_overcommit\":\"2\"}",
	 "cpu_overcommit"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"memory_overcommit\":1.005}",
	 "memory_overcommit"},
	{true,
	 "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"required_capabilities\":[\"a\",\"a\"]}",
	 "required_capabilities[1]"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"required_capabilities\":\"gpu\"}",
	 "required_capabilities"},
	{true, "{\"name\":\"a\",\"cpus\":1,\"memory\":\"1Gi\",\"disabled\":true}", "disabled"},
	{false, "{\"name\":\"a\"}", "name"},
	{false, "{\"disabled\":\"yes\"}", "disabled"},
	{false, "{\"size\":1}", "size"},
};

Test(catalog, hostile_sizes)
{
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		json_auto_t *s = parse(bad_sizes[i].json);
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_size_row r = {.cpus = "untouched"};

		cr_expect_eq(shd_size_check(s, bad_sizes[i].create, &r, &err), -SHP_E_INVAL,
			     "case %zu accepted", i);
		cr_expect_str_eq(field_of(&err), bad_sizes[i].field, "case %zu: %s", i, err.msg);
		cr_expect_str_eq(r.cpus, "untouched", "case %zu touched the result", i);
	}
}

Test(catalog, seed_locate)
{
	static const char doc[] = "sizes:\n"
				  "  - name: a\n"
				  "    cpus: 1\n"
				  "  - name: b\n"
				  "    cpus: 0\n"
				  "cloud_init: |\n"
				  "  #cloud-config\n"
				  "  a: [\n";
	json_auto_t *lines = NULL;
	json_auto_t *j = shp_yaml_to_json_lines(doc, sizeof(doc) - 1, 32, &lines, NULL);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_not_null(j);
	shp_error_set(&err, SHP_E_INVAL, "field 'cpus' must be from 1 to 1024");
	shp_error_detail(&err, "field", "cpus");
	cr_expect_eq(shd_seed_locate(&err, "sizes.yaml", lines, "sizes[1]."), -SHP_E_INVAL);
	cr_expect_str_eq(err.msg,
			 "sizes.yaml:5: sizes[1].cpus: field 'cpus' must be from 1 to 1024");
	/* a field that is not in the file: its parent's line */
	shp_error_clear(&err);
	shp_error_set(&err, SHP_E_INVAL, "missing field 'memory'");
	shp_error_detail(&err, "field", "memory");
	(void)shd_seed_locate(&err, "sizes.yaml", lines, "sizes[0].");
	cr_expect_str_eq(err.msg, "sizes.yaml:2: sizes[0].memory: missing field 'memory'");
	/* cloud-init lines count from the key */
	shp_error_clear(&err);
	shp_error_set(&err, SHP_E_INVAL, "cloud_init: malformed");
	shp_error_detail(&err, "field", "cloud_init");
	shp_error_detail(&err, "line", "2");
	(void)shd_seed_locate(&err, "t.yaml", lines, "");
	cr_expect_str_eq(err.msg, "t.yaml:8: cloud_init: cloud_init: malformed");
	/* no field at all: the document */
	shp_error_clear(&err);
	shp_error_set(&err, SHP_E_INVAL, "not a template");
	(void)shd_seed_locate(&err, "x.yaml", lines, "");
	cr_expect_str_eq(err.msg, "x.yaml:1: (document): not a template");
}

Test(catalog, yaml_lines)
{
	static const char doc[] = "a: 1\n"
				  "b:\n"
				  "  c: [x, y]\n"
				  "  d:\n"
				  "    - e: 2\n"
				  "      f: 3\n";
	json_auto_t *lines = NULL;
	json_auto_t *j = shp_yaml_to_json_lines(doc, sizeof(doc) - 1, 32, &lines, NULL);

	cr_assert_not_null(j);
	cr_expect_eq(json_integer_value(json_object_get(lines, "a")), 1);
	cr_expect_eq(json_integer_value(json_object_get(lines, "b")), 2);
	cr_expect_eq(json_integer_value(json_object_get(lines, "b.c")), 3);
	cr_expect_eq(json_integer_value(json_object_get(lines, "b.c[1]")), 3);
	cr_expect_eq(json_integer_value(json_object_get(lines, "b.d[0]")), 5);
	cr_expect_eq(json_integer_value(json_object_get(lines, "b.d[0].f")), 6);
	cr_expect_eq(json_object_size(lines), 9);
}
