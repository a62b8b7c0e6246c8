/*
 * The VM spec: table-driven good and hostile specs (types, limits, unknown fields, names,
 * disks, cloud-init, text), the approver's replacement rules (immutable and required fields,
 * removed fields counted), quantities and the resources a spec gets from its size.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "gov.h"

#define BASE                                                                                       \
	"\"name\":\"web-1\",\"namespace\":\"team-a\",\"service\":\"shop\",\"template\":\"debian-"  \
	"12\",\"size\":\"small\""

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	cr_assert_not_null(j, "bad test JSON %s: %s", text, je.text);
	return j;
}

static const char *const good[] = {
	"{" BASE "}",
	"{" BASE ",\"cpus\":1,\"memory\":\"64Mi\"}",
	"{" BASE ",\"cpus\":1024,\"memory\":\"16Ti\",\"run\":false}",
	"{" BASE ",\"system\":\"payments\",\"template_version\":3,\"cluster\":\"c1\"}",
	"{" BASE ",\"disks\":[{\"name\":\"data\",\"size\":\"10Gi\"},"
	"{\"name\":\"logs\",\"size\":\"1Ti\",\"storage_class\":\"fast.ssd-1\"}]}",
	"{" BASE ",\"storage_class\":\"standard\",\"description\":\"a web server\\nline two\"}",
	"{" BASE ",\"cloud_init\":\"#cloud-config\\npackages: [nginx]\\n\"}",
	"{" BASE ",\"cloud_init\":\"#!/bin/sh\\necho hi: [\\n\"}",
	"{" BASE ",\"cloud_init\":\"# only a comment\\n\"}",
	"{" BASE ",\"cloud_init\":\"\"}",
	"{" BASE ",\"disks\":[]}",
};

Test(gov_spec, good_specs)
{
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_auto_t *spec = parse(good[i]);
		struct shp_error err = SHP_ERROR_INIT;

		cr_expect_eq(shd_spec_validate(spec, &err), 0, "spec %zu refused: %s", i, err.msg);
	}
}

struct bad {
	const char *json;
	const char *field; /* the detail field, NULL: none expected */
	const char *msg;   /* a substring of the message */
};

static const struct bad bad[] = {
	{"[]", NULL, "must be a JSON object"},
	{"{\"name\":\"x\"}", "namespace", "missing field 'namespace'"},
	{"{" BASE ",\"colour\":\"blue\"}", "colour", "unknown field 'colour'"},
	{"{" BASE ",\"cpus\":0}", "cpus", "from 1 to 1024"},
	{"{" BASE ",\"cpus\":1025}", "cpus", "from 1 to 1024"},
	{"{" BASE ",\"cpus\":\"2\"}", "cpus", "must be an integer"},
	{"{" BASE ",\"cpus\":2.5}", "cpus", "must be an integer"},
	{"{" BASE ",\"cpus\":null}", "cpus", "must not be null"},
	{"{" BASE ",\"memory\":8}", "memory", "must be a string"},
	{"{" BASE ",\"memory\":\"8G\"}", "memory", "not a quantity"},
	{"{" BASE ",\"memory\":\"63Mi\"}", "memory", "less than 64 Mi"},
	{"{" BASE ",\"memory\":\"17Ti\"}", "memory", "more than 16 Ti"},
	{"{" BASE ",\"memory\":\"99999999999999999999Gi\"}", "memory", "not a quantity"},
	{"{" BASE ",\"memory\":\"-1Gi\"}", "memory", "not a quantity"},
	{"{" BASE ",\"memory\":\"1.5Gi\"}", "memory", "not a quantity"},
	{"{" BASE ",\"run\":\"yes\"}", "run", "must be a boolean"},
	{"{" BASE ",\"template_version\":0}", "template_version", "from 1"},
	{"{\"name\":\"Web\",\"namespace\":\"a\",\"service\":\"s\",\"template\":\"t\",\"size\":"
	 "\"s\"}",
	 "name", "DNS-1123 label"},
	{"{\"name\":\"a-\",\"namespace\":\"a\",\"service\":\"s\",\"template\":\"t\",\"size\":"
	 "\"s\"}",
	 "name", "DNS-1123 label"},
	{"{\"name\":\"a\",\"namespace\":\"a;drop\",\"service\":\"s\",\"template\":\"t\",\"size\":"
	 "\"s\"}",
	 "namespace", "DNS-1123 label"},
	{"{\"name\":\"a\",\"namespace\":\"a\",\"service\":\"../etc\",\"template\":\"t\",\"size\":"
	 "\"s\"}",
	 "service", "DNS-1123 label"},
	{"{\"name\":\"a\",\"namespace\":\"a\",\"service\":\"s\",\"template\":\"t\\u0000x\","
	 "\"size\":"
	 "\"s\"}",
	 "template", "without control characters"},
	{"{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	 "\"namespace\":"
	 "\"a\",\"service\":\"s\",\"template\":\"t\",\"size\":\"s\"}",
	 "name", "longer than 63"},
	{"{\"name\":\"a\",\"namespace\":\"a\",\"service\":\"s\",\"template\":\"t\",\"size\":7}",
	 "size", "must be a string"},
	{"{" BASE ",\"system\":\"SYS\"}", "system", "DNS-1123 label"},
	{"{" BASE ",\"cluster\":\"\"}", "cluster", "DNS-1123 label"},
	{"{" BASE ",\"disks\":{}}", "disks", "must be an array"},
	{"{" BASE ",\"disks\":[1]}", "disks[0]", "must be an object"},
	{"{" BASE ",\"disks\":[{\"name\":\"d\"}]}", "disks[0].size", "missing field"},
	{"{" BASE ",\"disks\":[{\"size\":\"1Gi\"}]}", "disks[0].name", "missing field"},
	{"{" BASE ",\"disks\":[{\"name\":\"rootdisk\",\"size\":\"1Gi\"}]}", "disks[0].name",
	 "reserved"},
	{"{" BASE
	 ",\"disks\":[{\"name\":\"d\",\"size\":\"1Gi\"},{\"name\":\"d\",\"size\":\"1Gi\"}]}",
	 "disks[1].name", "used twice"},
	{"{" BASE ",\"disks\":[{\"name\":\"d\",\"size\":\"1Gi\",\"iops\":5}]}", "iops",
	 "unknown field 'iops'"},
	{"{" BASE ",\"disks\":[{\"name\":\"d\",\"size\":\"1G\"}]}", "disks[0].size",
	 "not a quantity"},
	{"{" BASE ",\"disks\":[{\"name\":\"d\",\"size\":\"1Gi\",\"storage_class\":\"Fast\"}]}",
	 "disks[0].storage_class", "subdomain"},
	{"{" BASE ",\"disks\":[{\"name\":\"a\",\"size\":\"1Gi\"},{\"name\":\"b\",\"size\":\"1Gi\"},"
	 "{\"name\":\"c\",\"size\":\"1Gi\"},{\"name\":\"d\",\"size\":\"1Gi\"},{\"name\":\"e\","
	 "\"size\":"
	 "\"1Gi\"},{\"name\":\"f\",\"size\":\"1Gi\"},{\"name\":\"g\",\"size\":\"1Gi\"},{\"name\":"
	 "\"h\","
	 "\"size\":\"1Gi\"},{\"name\":\"i\",\"size\":\"1Gi\"}]}",
	 "disks", "more than 8"},
	{"{" BASE ",\"storage_class\":\"a..b\"}", "storage_class", "subdomain"},
	{"{" BASE ",\"description\":\"bell\\u0007\"}", "description", "control characters"},
	{"{" BASE ",\"cloud_init\":\"a: [1, 2\\nb: c\\n\"}", "cloud_init", "line"},
	{"{" BASE ",\"cloud_init\":\"- a\\n- b\\n\"}", "cloud_init", "must be a mapping"},
	{"{" BASE ",\"cloud_init\":\"a: &x 1\\nb: *x\\n\"}", "cloud_init", "aliases"},
	{"{" BASE ",\"cloud_init\":5}", "cloud_init", "must be a string"},
};

Test(gov_spec, hostile_specs)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_auto_t *spec = parse(bad[i].json);
		struct shp_error err = SHP_ERROR_INIT;
		const char *field = NULL;

		cr_expect_eq(shd_spec_validate(spec, &err), -SHP_E_INVAL, "case %zu accepted: %s",
			     i, bad[i].json);
		cr_expect(strstr(err.msg, bad[i].msg), "case %zu: '%s' lacks '%s'", i, err.msg,
			  bad[i].msg);
		for (int k = 0; k < err.n_details; k++)
			if (strcmp(err.details[k].key, "field") == 0)
				field = err.details[k].value;
		if (bad[i].field)
			cr_expect(field && strcmp(field, bad[i].field) == 0,
				  "case %zu: field '%s', want '%s'", i, field ? field : "(none)",
				  bad[i].field);
	}
}

Test(gov_spec, oversized_text)
{
	size_t n = 65537;
	char *big = malloc(n + 1);
	json_auto_t *spec = parse("{" BASE "}");
	struct shp_error err = SHP_ERROR_INIT;

	memset(big, 'a', n);
	big[n] = '\0';
	json_object_set_new(spec, "cloud_init", json_string(big));
	cr_expect_eq(shd_spec_validate(spec, &err), -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "longer than 65536"), "%s", err.msg);
	big[1025] = '\0';
	json_object_del(spec, "cloud_init");
	json_object_set_new(spec, "description", json_string(big));
	cr_expect_eq(shd_spec_validate(spec, &err), -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "longer than 1024"), "%s", err.msg);
	free(big);
}

Test(gov_spec, cloud_init_line_numbers)
{
	struct shp_error err = SHP_ERROR_INIT;
	bool line = false;

	cr_assert_eq(shd_cloud_init_check("#cloud-config\nusers:\n  - name: a\n   bad: [\n", &err),
		     -SHP_E_INVAL);
	for (int k = 0; k < err.n_details; k++)
		if (strcmp(err.details[k].key, "line") == 0)
			line = strcmp(err.details[k].value, "4") == 0 ||
			       strcmp(err.details[k].value, "5") == 0;
	cr_expect(line, "no line detail: %s", err.msg);
	cr_expect(strstr(err.msg, "line"), "%s", err.msg);
}

Test(gov_spec, effective)
{
	json_auto_t *a = parse("{\"name\":\"a\"}");
	json_auto_t *b = parse("{\"name\":\"b\"}");

	cr_expect_eq(shd_spec_effective(a, NULL), a);
	cr_expect_eq(shd_spec_effective(a, b), b);
	cr_expect_eq(shd_spec_effective(a, json_null()), a);
}

struct mod {
	const char *modified;
	int rc;
	const char *code;
	const char *field;
	int removed;
};

static const struct mod mods[] = {
	{"{" BASE ",\"system\":\"pay\",\"cpus\":4}", 0, NULL, NULL, 1},
	{"{" BASE ",\"system\":\"pay\",\"cpus\":2,\"memory\":\"4Gi\",\"disks\":[]}", 0, NULL, NULL,
	 1},
	{"{\"name\":\"web-1\",\"namespace\":\"team-a\",\"service\":\"shop\",\"template\":\"debian-"
	 "12\","
	 "\"system\":\"pay\"}",
	 -SHP_E_INVAL, "REQUIRED_FIELD_REMOVED", "size", 0},
	{"{\"name\":\"web-2\",\"namespace\":\"team-a\",\"service\":\"shop\",\"template\":\"t\","
	 "\"size\":\"s\",\"system\":\"pay\"}",
	 -SHP_E_INVAL, "IMMUTABLE_FIELD", "name", 0},
	{"{" BASE ",\"system\":\"other\"}", -SHP_E_INVAL, "IMMUTABLE_FIELD", "system", 0},
	{"{" BASE "}", -SHP_E_INVAL, "IMMUTABLE_FIELD", "system", 0},
	{"{\"name\":\"web-1\",\"namespace\":\"team-b\",\"service\":\"shop\",\"template\":\"t\","
	 "\"size\":\"s\",\"system\":\"pay\"}",
	 -SHP_E_INVAL, "IMMUTABLE_FIELD", "namespace", 0},
	{"[]", -SHP_E_INVAL, NULL, NULL, 0},
};

Test(gov_spec, modification)
{
	json_auto_t *req = parse("{" BASE ",\"system\":\"pay\",\"cpus\":2,\"description\":\"x\"}");

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		json_auto_t *mod = parse(mods[i].modified);
		struct shp_error err = SHP_ERROR_INIT;
		int removed = -1;

		cr_expect_eq(shd_spec_check_modification(req, mod, &removed, &err), mods[i].rc,
			     "case %zu: %s", i, err.msg);
		if (mods[i].rc == 0)
			cr_expect_eq(removed, mods[i].removed, "case %zu: removed %d", i, removed);
		if (mods[i].code)
			cr_expect_str_eq(shp_error_api_code_of(&err), mods[i].code, "case %zu", i);
		if (mods[i].field)
			cr_expect(strstr(err.msg, mods[i].field), "case %zu: %s", i, err.msg);
	}
}

Test(gov_spec, many_removed)
{
	json_auto_t *req =
		parse("{" BASE ",\"system\":\"p\",\"cpus\":2,\"memory\":\"1Gi\",\"run\":true,"
		      "\"description\":\"d\",\"cluster\":\"c\",\"storage_class\":\"s\"}");
	json_auto_t *mod = parse("{" BASE ",\"system\":\"p\"}");
	int removed = 0;

	cr_assert_eq(shd_spec_check_modification(req, mod, &removed, NULL), 0);
	cr_expect_eq(removed, 6);
}

Test(gov_spec, quantities)
{
	static const struct {
		const char *q;
		int64_t mib;
	} ok[] = {
		{"64Mi", 64}, {"512Mi", 512}, {"8Gi", 8192}, {"1Ti", 1048576}, {"16Ti", 16777216}};
	static const char *const no[] = {"",     "Gi",  "8",   "8gi",    "8GB",  "8 Gi", " 8Gi",
					 "8Gi ", "0Gi", "1Pi", "0x10Mi", "+8Gi", "8Ki",  "1e3Mi"};
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(shd_quantity_mib(ok[i].q, &v, NULL), 0, "%s", ok[i].q);
		cr_expect_eq(v, ok[i].mib, "%s", ok[i].q);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = -7;
		cr_expect_eq(shd_quantity_mib(no[i], &v, NULL), -SHP_E_INVAL, "'%s'", no[i]);
		cr_expect_eq(v, -7, "'%s' touched the result", no[i]);
	}
	cr_expect_eq(shd_quantity_mib(NULL, &v, NULL), -SHP_E_INVAL);
}

Test(gov_spec, resources)
{
	struct shd_size size = {.name = "small", .cpus = 2, .memory_mib = 4096};
	json_auto_t *plain = parse("{" BASE "}");
	json_auto_t *over = parse("{" BASE ",\"cpus\":8,\"memory\":\"32Gi\"}");
	json_auto_t *bad_mem = parse("{" BASE ",\"memory\":\"32\"}");
	int64_t mib = 0;
	int cpus = 0;

	cr_assert_eq(shd_spec_resources(plain, &size, &cpus, &mib, NULL), 0);
	cr_expect(cpus == 2 && mib == 4096);
	cr_assert_eq(shd_spec_resources(over, &size, &cpus, &mib, NULL), 0);
	cr_expect(cpus == 8 && mib == 32768);
	cr_expect_eq(shd_spec_resources(bad_mem, &size, &cpus, &mib, NULL), -SHP_E_INVAL);
	cr_expect_eq(shd_spec_resources(plain, NULL, &cpus, &mib, NULL), -SHP_E_INVAL);
}

Test(gov_spec, field_lists)
{
	size_t n = 0;

	for (; shd_spec_fields[n]; n++)
		;
	cr_expect_eq(n, 15);
	for (size_t i = 0; shd_spec_required[i]; i++) {
		bool found = false;
		for (size_t k = 0; shd_spec_fields[k]; k++)
			found |= strcmp(shd_spec_fields[k], shd_spec_required[i]) == 0;
		cr_expect(found, "%s", shd_spec_required[i]);
	}
}
