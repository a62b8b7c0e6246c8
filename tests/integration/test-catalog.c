/*
 * The catalogue against a real database: the shipped seed imported once (a second import
 * skips, names already taken are left alone), a broken seed rolls back everything, the active,
 * latest and exact versions of a template, enabled sizes with their overcommit, and the
 * rendered VM of a seeded template and size.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "gov.h"
#include "testdb.h"

#define SEED SHP_ABS_SRCDIR "/deploy/seed"

static void setup(void)
{
	testdb_setup("shp_catalog");
}

TestSuite(catalog, .init = setup, .fini = testdb_teardown, .timeout = 60);

static char *scalar(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(testdb_conn, sql, 0, NULL, &err);
	char *v;

	cr_assert_not_null(res, "%s: %s", sql, err.msg);
	v = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return v;
}

static void exec_sql(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(testdb_conn, sql, 0, NULL, &err), 0, "%s: %s", sql, err.msg);
}

static void expect_scalar(const char *sql, const char *want)
{
	char *got = scalar(sql);

	cr_expect_str_eq(got, want, "%s", sql);
	free(got);
}

Test(catalog, seed_imported_once)
{
	struct shp_error err = SHP_ERROR_INIT;
	bool done = false;

	cr_assert_eq(shd_seed_import(testdb_conn, SEED, &done, &err), 0, "%s", err.msg);
	cr_expect(done);
	expect_scalar("SELECT count(*) || ' ' || sum(templates) || ' ' || sum(sizes)"
		      " FROM seed_imports",
		      "1 5 6");
	expect_scalar("SELECT count(*) FROM templates WHERE status = 'active' AND source = 'seed'"
		      " AND version = 1",
		      "5");
	exec_sql("UPDATE instance_sizes SET cpus = 7 WHERE name = 'small'");
	cr_assert_eq(shd_seed_import(testdb_conn, SEED, &done, &err), 0, "%s", err.msg);
	cr_expect_not(done, "a second import skips");
	expect_scalar("SELECT cpus FROM instance_sizes WHERE name = 'small'", "7");
	expect_scalar("SELECT count(*) FROM seed_imports", "1");
	/* once the row is gone, an import over taken names adds nothing */
	exec_sql("DELETE FROM seed_imports");
	cr_assert_eq(shd_seed_import(testdb_conn, SEED, &done, &err), 0, "%s", err.msg);
	cr_expect(done);
	expect_scalar("SELECT templates || ' ' || sizes FROM seed_imports", "0 0");
	expect_scalar("SELECT cpus FROM instance_sizes WHERE name = 'small'", "7");
}

/* A seed dir whose sizes are good and whose one template is broken at line 4. */
static void write_broken_seed(char *dir, size_t size)
{
	char path[256];
	FILE *f;

	(void)snprintf(dir, size, "/tmp/shp-seed.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/templates", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/sizes.yaml", dir);
	f = fopen(path, "w");
	fputs("sizes:\n  - {name: one, cpus: 1, memory: 1Gi}\n", f);
	fclose(f);
	(void)snprintf(path, sizeof(path), "%s/templates/a.yaml", dir);
	f = fopen(path, "w");
	fputs("name: a\nimage_source:\n  type: containerDisk\n  image: 'has space'\n", f);
	fclose(f);
}

static void remove_seed(const char *dir)
{
	char path[256];

	(void)snprintf(path, sizeof(path), "%s/templates/a.yaml", dir);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/templates", dir);
	(void)rmdir(path);
	(void)snprintf(path, sizeof(path), "%s/sizes.yaml", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

Test(catalog, broken_seed_rolls_back)
{
	struct shp_error err = SHP_ERROR_INIT;
	bool done = true;
	char dir[64];

	write_broken_seed(dir, sizeof(dir));
	cr_expect_eq(shd_seed_import(testdb_conn, dir, &done, &err), -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "templates/a.yaml:4: image_source.image: "), "%s", err.msg);
	expect_scalar("SELECT count(*) FROM seed_imports", "0");
	expect_scalar("SELECT count(*) FROM instance_sizes", "0");
	remove_seed(dir);
	cr_expect_eq(shd_seed_import(testdb_conn, "/nonexistent/seed", &done, &err), -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "does not exist"), "%s", err.msg);
}

Test(catalog, template_versions)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *active = NULL, *latest = NULL, *v2 = NULL, *none = NULL;

	exec_sql("INSERT INTO templates (name, version, status, image_source) VALUES"
		 " ('t', 1, 'deprecated', '{\"type\":\"containerDisk\",\"image\":\"a\"}'),"
		 " ('t', 2, 'active', '{\"type\":\"containerDisk\",\"image\":\"b\"}'),"
		 " ('t', 3, 'draft', '{\"type\":\"containerDisk\",\"image\":\"c\"}'),"
		 " ('t', 4, 'archived', '{\"type\":\"containerDisk\",\"image\":\"d\"}')");
	active = shd_template_get_active(testdb_conn, "t", &err);
	cr_assert_not_null(active, "%s", err.msg);
	cr_expect_eq(json_integer_value(json_object_get(active, "version")), 2);
	cr_expect_str_eq(json_string_value(
				 json_object_get(json_object_get(active, "image_source"), "image")),
			 "b");
	latest = shd_template_get_latest(testdb_conn, "t", &err);
	cr_assert_not_null(latest);
	cr_expect_eq(json_integer_value(json_object_get(latest, "version")), 3,
		     "the latest is the highest not archived");
	v2 = shd_template_get_version(testdb_conn, "t", 4, &err);
	cr_assert_not_null(v2);
	cr_expect_str_eq(json_string_value(json_object_get(v2, "status")), "archived");
	exec_sql("UPDATE templates SET status = 'deprecated' WHERE name = 't' AND version = 2");
	none = shd_template_get_active(testdb_conn, "t", &err);
	cr_expect_null(none);
	cr_expect_eq(err.code, SHP_E_NOTFOUND);
	cr_expect(strstr(err.msg, "no active version"), "%s", err.msg);
	cr_expect_null(shd_template_get_version(testdb_conn, "t", 9, &err));
	cr_expect_eq(err.code, SHP_E_NOTFOUND);
	cr_expect_null(shd_template_get_latest(testdb_conn, "nope", &err));
	cr_expect_eq(err.code, SHP_E_NOTFOUND);
}

/* The string at a dotted path (array indexes as numbers), or "". */
static const char *str_at(const json_t *j, const char *path)
{
	char buf[256], *save = NULL;

	(void)snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); p && j; p = strtok_r(NULL, ".", &save))
		j = json_is_array(j) ? json_array_get(j, strtoul(p, NULL, 10))
				     : json_object_get(j, p);
	return json_is_string(j) ? json_string_value(j) : "";
}

Test(catalog, sizes_and_render)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_size size __attribute__((cleanup(shd_size_release))) = {0};
	struct shd_size gpu __attribute__((cleanup(shd_size_release))) = {0};
	json_auto_t *tmpl = NULL, *spec = NULL, *vm = NULL;
	bool done;

	cr_assert_eq(shd_seed_import(testdb_conn, SEED, &done, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_size_get(testdb_conn, "medium", &size, &err), 0, "%s", err.msg);
	cr_expect(size.cpus == 2 && size.memory_mib == 4096 && size.cpu_overcommit == 2.0 &&
		  size.memory_overcommit == 1.0);
	cr_expect_eq(json_array_size(size.required_capabilities), 0);
	cr_assert_eq(shd_size_get(testdb_conn, "gpu-small", &gpu, &err), 0, "%s", err.msg);
	cr_expect_str_eq(json_string_value(json_array_get(gpu.required_capabilities, 0)), "gpu");
	exec_sql("UPDATE instance_sizes SET disabled = true WHERE name = 'large'");
	cr_expect_eq(shd_size_get(testdb_conn, "large", &gpu, &err), -SHP_E_NOTFOUND,
		     "a disabled size is not found");
	tmpl = shd_template_get_active(testdb_conn, "centos-stream-9", &err);
	cr_assert_not_null(tmpl, "%s", err.msg);
	spec = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", "db-1", "namespace", "team-a",
			 "service", "shop", "system", "pay", "template", "centos-stream-9", "size",
			 "medium");
	vm = shd_render_vm(tmpl, &size, spec, &err);
	cr_assert_not_null(vm, "%s", err.msg);
	cr_expect_str_eq(str_at(vm, "spec.template.spec.domain.resources.requests.cpu"), "1",
			 "2 CPUs at an overcommit of 2 reserve one");
	cr_expect_str_eq(str_at(vm, "spec.template.spec.domain.memory.guest"), "4096Mi");
	cr_expect_str_eq(str_at(vm, "spec.dataVolumeTemplates.0.spec.source.registry.url"),
			 "docker://quay.io/containerdisks/centos-stream:9");
	cr_expect_str_eq(str_at(vm, "spec.template.spec.volumes.1.name"), "cloudinit");
}
