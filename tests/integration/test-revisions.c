/*
 * VM revisions against a real PostgreSQL: versions increment and vms.revision follows, the
 * stored blob is deflated YAML with its size and hash, a round trip gives back the spec,
 * concurrent adds on separate connections never collide, a damaged blob (bytes, size or
 * hash) is reported as corrupt, and a missing VM or revision is SHP_E_NOTFOUND.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "canon.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "testdb.h"
#include "yaml.h"

static int64_t vm_id;

/* One text value of sql (no parameters), copied into a rotating buffer. */
static const char *one(const char *sql)
{
	static char slots[4][512];
	static int next;
	struct shp_error err = SHP_ERROR_INIT;
	char *out = slots[next++ % 4];
	PGresult *res = shd_db_exec(testdb_conn, sql, 0, NULL, &err);

	cr_assert(res, "%s: %s", sql, err.msg);
	(void)snprintf(out, sizeof(slots[0]), "%s",
		       PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

static void setup(void)
{
	testdb_setup("shp_revisions");
	(void)one("INSERT INTO clusters (name, api_url, environment, kind)"
		  " VALUES ('sim1', 'sim://sim1', 'test', 'simulated')");
	vm_id = atoll(one("INSERT INTO vms (cluster_id, namespace, name, system, service)"
			  " SELECT id, 'team-a', 'web-1', 'shop', 'front' FROM clusters"
			  " RETURNING id"));
}

TestSuite(revisions, .init = setup, .fini = testdb_teardown, .timeout = 60);

static json_t *spec_with_cpus(int cpus)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:[{s:s, s:s}]}", "name", "web-1",
			 "namespace", "team-a", "service", "front", "template", "debian-12", "size",
			 "small", "cpus", cpus, "disks", "name", "data", "size", "10Gi");
}

static int add(PGconn *conn, int cpus, struct shp_error *err)
{
	json_t *spec = spec_with_cpus(cpus);
	struct shd_revision_new r = {
		.vm_id = vm_id,
		.spec = spec,
		.actor = "alice",
		.plan_hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	int version = -1;
	int rc = shd_revision_add(conn, &r, &version, err);

	json_decref(spec);
	return rc < 0 ? rc : version;
}

static char *yaml_of(int version)
{
	struct shp_buf out = SHP_BUF_INIT(1 << 20);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_revision_yaml(testdb_conn, vm_id, version, &out, &err), 0, "%s", err.msg);
	return shp_buf_detach(&out, NULL);
}

Test(revisions, versions_increment_and_vm_follows)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(add(testdb_conn, 2, &err), 1, "%s", err.msg);
	cr_assert_eq(add(testdb_conn, 4, &err), 2, "%s", err.msg);
	cr_assert_eq(add(testdb_conn, 8, &err), 3, "%s", err.msg);
	cr_assert_str_eq(one("SELECT revision FROM vms"), "3");
	cr_assert_str_eq(one("SELECT string_agg(version::text, ',' ORDER BY version)"
			     " FROM vm_revisions"),
			 "1,2,3");
	cr_assert_str_eq(one("SELECT created_by || ' ' || left(plan_hash, 4) FROM vm_revisions"
			     " WHERE version = 2"),
			 "alice 0123");
}

Test(revisions, stored_as_deflated_yaml_round_trip)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *want = spec_with_cpus(6);
	char hash[SHP_SHA256_HEX_LEN + 1], q[256];

	cr_assert_eq(add(testdb_conn, 6, &err), 1, "%s", err.msg);
	char *yaml = yaml_of(1);

	cr_assert(strstr(yaml, "cpus: 6\n"), "%s", yaml);
	json_t *back = shp_yaml_to_json(yaml, strlen(yaml), 16, &err);

	cr_assert(back, "%s", err.msg);
	cr_assert(json_equal(back, want));
	shp_sha256_hex(yaml, strlen(yaml), hash);
	(void)snprintf(q, sizeof(q),
		       "SELECT spec_sha256 = '%s' AND spec_size = %zu"
		       " AND substr(spec_z, 1, 1) = '\\x78'::bytea FROM vm_revisions",
		       hash, strlen(yaml));
	cr_assert_str_eq(one(q), "t", "hash, size and a zlib header are stored");
	json_decref(want);
	json_decref(back);
	free(yaml);
}

Test(revisions, missing_vm_or_revision)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_buf out = SHP_BUF_INIT(1024);
	json_t *spec = spec_with_cpus(1);
	struct shd_revision_new r = {.vm_id = vm_id + 1000, .spec = spec};

	cr_assert_eq(shd_revision_add(testdb_conn, &r, NULL, &err), -SHP_E_NOTFOUND);
	cr_assert_eq(shd_revision_yaml(testdb_conn, vm_id, 1, &out, &err), -SHP_E_NOTFOUND);
	cr_assert(strstr(err.msg, "no revision 1"), "%s", err.msg);
	r.vm_id = vm_id;
	r.spec = json_array();
	cr_assert_eq(shd_revision_add(testdb_conn, &r, NULL, &err), -SHP_E_INVAL);
	json_decref((json_t *)r.spec);
	json_decref(spec);
}

static void assert_corrupt(const char *damage)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shp_buf out = SHP_BUF_INIT(1 << 20);

	(void)one("DELETE FROM vm_revisions");
	(void)one("UPDATE vms SET revision = 0");
	cr_assert_eq(add(testdb_conn, 2, &err), 1, "%s", err.msg);
	(void)one(damage);
	cr_assert_eq(shd_revision_yaml(testdb_conn, vm_id, 1, &out, &err), -SHP_E_INTERNAL,
		     "%s: %s", damage, err.msg);
	cr_assert(strstr(err.msg, "revision 1 of VM") && strstr(err.msg, "is corrupt"), "%s",
		  err.msg);
	cr_assert_eq(out.len, 0);
	shp_buf_release(&out);
}

Test(revisions, corrupt_blob_is_a_clear_error)
{
	assert_corrupt("UPDATE vm_revisions SET spec_z = '\\x0102030405'::bytea");
	assert_corrupt("UPDATE vm_revisions SET spec_z = substr(spec_z, 1, octet_length(spec_z)"
		       " - 4)");
	assert_corrupt("UPDATE vm_revisions SET spec_size = spec_size - 1");
	assert_corrupt("UPDATE vm_revisions SET spec_sha256 = repeat('0', 64)");
}

struct adder {
	int versions[10];
	char msg[SHP_ERROR_MSG_MAX];
};

/* Ten adds, each in its own transaction, on a connection of this thread's own. */
static void *adder_run(void *arg)
{
	struct adder *a = arg;
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_db_connect(&testdb_config, &err);

	for (int i = 0; conn && i < 10; i++) {
		int v = -1;

		if (shd_db_begin(conn, &err) == 0 && (v = add(conn, i + 1, &err)) > 0 &&
		    shd_db_commit(conn, &err) == 0) {
			a->versions[i] = v;
			continue;
		}
		shd_db_rollback(conn);
		break;
	}
	(void)snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
	if (conn)
		PQfinish(conn);
	return NULL;
}

Test(revisions, concurrent_adds_never_collide)
{
	struct adder adders[4];
	pthread_t th[4];
	bool seen[41] = {false};

	memset(adders, 0, sizeof(adders));
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, adder_run, &adders[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		for (int k = 0; k < 10; k++) {
			int v = adders[i].versions[k];

			cr_assert(v >= 1 && v <= 40, "adder %d: %s", i, adders[i].msg);
			cr_assert_not(seen[v], "version %d given twice", v);
			seen[v] = true;
		}
	cr_assert_str_eq(one("SELECT count(*) || ' ' || max(version) FROM vm_revisions"), "40 40");
	cr_assert_str_eq(one("SELECT revision FROM vms"), "40");
}
