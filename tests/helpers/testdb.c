/*
 * A database per integration test (see testdb.h): created on the with-postgres.sh server,
 * migrated with the daemon's own migrator, dropped afterwards.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "migrate.h"
#include "testdb.h"

struct shd_dbpool_config testdb_config;
PGconn *testdb_conn;

static char dbname[64];
static char conninfo[600];

static const char *env_required(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v && *v, "%s is not set: run me under tests/helpers/with-postgres.sh", name);
	return v;
}

static void admin_exec(const char *verb, const char *suffix)
{
	PGconn *admin = PQconnectdb(env_required("SHP_TEST_PGURL"));
	char sql[200];
	PGresult *res;

	cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
	(void)snprintf(sql, sizeof(sql), "%s %s%s", verb, dbname, suffix);
	res = PQexec(admin, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
	PQfinish(admin);
}

void testdb_setup(const char *prefix)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)snprintf(dbname, sizeof(dbname), "%s_%d", prefix, (int)getpid());
	admin_exec("CREATE DATABASE", "");
	(void)snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", env_required("SHP_TEST_PGURL"),
		       dbname);
	testdb_config = (struct shd_dbpool_config){
		.conninfo = conninfo, .size = 1, .application_name = prefix};
	testdb_conn = shd_db_connect(&testdb_config, &err);
	cr_assert(testdb_conn, "%s", err.msg);
	cr_assert_eq(shd_migrate_up(testdb_conn, env_required("SHP_SCHEMA_DIR"), 0, NULL, &err), 0,
		     "%s", err.msg);
}

void testdb_teardown(void)
{
	if (testdb_conn)
		PQfinish(testdb_conn);
	testdb_conn = NULL;
	admin_exec("DROP DATABASE IF EXISTS", " WITH (FORCE)");
}
