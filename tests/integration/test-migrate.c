/*
 * Integration tests of shepherdd/migrate.c against the server of with-postgres.sh: the
 * up/down/up round trip compared with pg_dump, status, steps, concurrent appliers, changed and
 * missing files, failed migrations, and the append-only audit log. Each test has a database of
 * its own (Criterion runs tests in parallel).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "error.h"
#include "migrate.h"
#include "util.h"

static char dbname[64];
static char conninfo[2048];
static char tmpdir[256];

static const char *env_required(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v && *v,
		  "%s is not set: run me under tests/helpers/with-postgres.sh "
		  "(make check sets SHP_SCHEMA_DIR)",
		  name);
	return v;
}

static const char *schema_dir(void)
{
	return env_required("SHP_SCHEMA_DIR");
}

static PGconn *connect_to(const char *info)
{
	PGconn *conn = PQconnectdb(info);

	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
	return conn;
}

static void admin_exec(const char *verb, const char *suffix)
{
	PGconn *admin = connect_to(env_required("SHP_TEST_PGURL"));
	char *ident = PQescapeIdentifier(admin, dbname, strlen(dbname));
	char sql[256];
	PGresult *res;

	cr_assert(ident);
	(void)snprintf(sql, sizeof(sql), "%s %s%s", verb, ident, suffix);
	res = PQexec(admin, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
	PQfreemem(ident);
	PQfinish(admin);
}

/* A database and a scratch directory per test. */
static void setup(void)
{
	const char *tmp = getenv("TMPDIR");

	(void)snprintf(dbname, sizeof(dbname), "shp_migrate_%d", (int)getpid());
	admin_exec("CREATE DATABASE", "");
	(void)snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", env_required("SHP_TEST_PGURL"),
		       dbname);
	(void)snprintf(tmpdir, sizeof(tmpdir), "%s/shp-migrate.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
	char cmd[512];

	admin_exec("DROP DATABASE IF EXISTS", " WITH (FORCE)");
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 120);

static int count_up_files(const char *dir)
{
	char cmd[512];
	FILE *p;
	int n = -1;

	(void)snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^[0-9]*_.*\\.up\\.sql$'", dir);
	p = popen(cmd, "r");
	cr_assert(p);
	cr_assert_eq(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static long query_long(PGconn *conn, const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(conn, sql, 0, NULL, &err);
	long v;

	cr_assert(res, "%s: %s", sql, err.msg);
	cr_assert_eq(PQntuples(res), 1, "%s", sql);
	v = strtol(shd_db_value(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void up_ok(PGconn *conn, const char *dir, int steps, int expect)
{
	struct shp_error err = SHP_ERROR_INIT;
	int applied = -1;

	cr_assert_eq(shd_migrate_up(conn, dir, steps, &applied, &err), 0, "up: %s", err.msg);
	cr_assert_eq(applied, expect, "up %d: applied %d, expected %d", steps, applied, expect);
}

static void down_ok(PGconn *conn, const char *dir, int steps, int expect)
{
	struct shp_error err = SHP_ERROR_INIT;
	int reverted = -1;

	cr_assert_eq(shd_migrate_down(conn, dir, steps, &reverted, &err), 0, "down: %s", err.msg);
	cr_assert_eq(reverted, expect, "down %d: reverted %d, expected %d", steps, reverted,
		     expect);
}

/*
 * pg_dump --schema-only of the test database, as one string. Newer pg_dump releases wrap the
 * dump in \restrict / \unrestrict lines with a random key: those lines are left out.
 */
static char *dump_schema(void)
{
	char cmd[4096], line[8192];
	struct shp_buf out = SHP_BUF_INIT(16 * 1024 * 1024);
	FILE *p;

	(void)snprintf(cmd, sizeof(cmd), "'%s/pg_dump' --schema-only --no-owner -d '%s'",
		       env_required("SHP_TEST_PGBIN"), conninfo);
	p = popen(cmd, "r");
	cr_assert(p);
	while (fgets(line, sizeof(line), p)) {
		if (!strncmp(line, "\\restrict ", 10) || !strncmp(line, "\\unrestrict ", 12))
			continue;
		cr_assert_eq(shp_buf_add(&out, line), 0);
	}
	cr_assert_eq(pclose(p), 0, "pg_dump failed");
	return shp_buf_detach(&out, NULL);
}

/* Objects in public other than the tracking table (and its index, row type and array type). */
static long foreign_objects(PGconn *conn)
{
	return query_long(
		conn, "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
		      "c.relnamespace"
		      "        WHERE n.nspname = 'public' AND c.relname NOT IN"
		      "        ('shepherd_schema_migrations', 'shepherd_schema_migrations_pkey'))"
		      "     + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = "
		      "t.typnamespace"
		      "        WHERE n.nspname = 'public' AND t.typname NOT IN"
		      "        ('shepherd_schema_migrations', '_shepherd_schema_migrations'))"
		      "     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = "
		      "p.pronamespace"
		      "        WHERE n.nspname = 'public')");
}

Test(migrate, up_down_up_gives_the_same_schema)
{
	PGconn *conn = connect_to(conninfo);
	int n = count_up_files(schema_dir());
	char *first, *second;

	cr_assert_gt(n, 0, "no migrations in '%s'", schema_dir());
	up_ok(conn, schema_dir(), 0, n);
	up_ok(conn, schema_dir(), 0, 0);
	first = dump_schema();
	cr_assert(strstr(first, "CREATE TABLE public.audit_log"), "unexpected dump:\n%s", first);
	cr_assert(strstr(first, "CREATE TABLE public.shepherd_schema_migrations"));
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM shepherd_schema_migrations"), n);

	down_ok(conn, schema_dir(), 0, n);
	cr_assert_eq(foreign_objects(conn), 0, "objects survived the rollback");
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM shepherd_schema_migrations"), 0);
	down_ok(conn, schema_dir(), 0, 0);

	up_ok(conn, schema_dir(), 0, n);
	second = dump_schema();
	cr_assert_str_eq(first, second, "the schema differs after down and up again");
	free(first);
	free(second);
	PQfinish(conn);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
}

/* Three small migrations in tmpdir; each up sleeps a little to widen races. */
static void write_synthetic(void)
{
	static const char *const names[] = {"0001_alpha", "0002_beta", "0003_gamma"};
	static const char *const tables[] = {"alpha", "beta", "gamma"};
	char name[64], text[512];

	for (int i = 0; i < 3; i++) {
		(void)snprintf(name, sizeof(name), "%s.up.sql", names[i]);
		(void)snprintf(text, sizeof(text),
			       "-- test migration\nSELECT pg_sleep(0.05);\n"
			       "CREATE TABLE %s (id int PRIMARY KEY);\n"
			       "INSERT INTO %s VALUES (1);\n",
			       tables[i], tables[i]);
		write_file(tmpdir, name, text);
		(void)snprintf(name, sizeof(name), "%s.down.sql", names[i]);
		(void)snprintf(text, sizeof(text), "DROP TABLE %s;\n", tables[i]);
		write_file(tmpdir, name, text);
	}
	write_file(tmpdir, "README", "not a migration\n");
}

static void remove_file(const char *name)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
}

/* Advisory locks in this test's database (other tests run beside it, in their own). */
static long advisory_locks(PGconn *conn)
{
	return query_long(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
				"database = (SELECT oid FROM pg_database "
				"WHERE datname = current_database())");
}

static long current_version(PGconn *conn)
{
	return query_long(conn, "SELECT coalesce(max(version), 0) FROM shepherd_schema_migrations");
}

Test(migrate, steps_go_one_at_a_time)
{
	PGconn *conn = connect_to(conninfo);

	write_synthetic();
	up_ok(conn, tmpdir, 1, 1);
	cr_assert_eq(current_version(conn), 1);
	up_ok(conn, tmpdir, 1, 1);
	cr_assert_eq(current_version(conn), 2);
	down_ok(conn, tmpdir, 1, 1);
	cr_assert_eq(current_version(conn), 1);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'beta'"),
		     0);
	up_ok(conn, tmpdir, 0, 2);
	cr_assert_eq(current_version(conn), 3);
	down_ok(conn, tmpdir, 2, 2);
	cr_assert_eq(current_version(conn), 1);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM alpha"), 1);
	up_ok(conn, tmpdir, 5, 2);
	down_ok(conn, tmpdir, 0, 3);
	cr_assert_eq(current_version(conn), 0);
	PQfinish(conn);
}

static json_t *status_ok(PGconn *conn, const char *dir)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *st = shd_migrate_status(conn, dir, &err);

	cr_assert(st, "status: %s", err.msg);
	return st;
}

static bool is_current(PGconn *conn, const char *dir)
{
	struct shp_error err = SHP_ERROR_INIT;
	bool current = false;

	cr_assert_eq(shd_migrate_is_current(conn, dir, &current, &err), 0, "%s", err.msg);
	return current;
}

static bool looks_like_rfc3339(const char *s)
{
	/* 2026-11-22T15:36:49.123456Z */
	return s && strlen(s) == 27 && s[4] == '-' && s[10] == 'T' && s[19] == '.' && s[26] == 'Z';
}

Test(migrate, status_before_and_after)
{
	PGconn *conn = connect_to(conninfo);
	json_t *st, *list, *e;
	size_t i;

	write_synthetic();
	st = status_ok(conn, tmpdir);
	cr_assert_eq(json_integer_value(json_object_get(st, "current")), 0);
	cr_assert_eq(json_integer_value(json_object_get(st, "latest")), 3);
	cr_assert_eq(json_integer_value(json_object_get(st, "pending")), 3);
	list = json_object_get(st, "migrations");
	cr_assert_eq(json_array_size(list), 3);
	json_array_foreach(list, i, e)
	{
		cr_assert_eq(json_integer_value(json_object_get(e, "version")), (json_int_t)i + 1);
		cr_assert(json_is_false(json_object_get(e, "applied")));
		cr_assert(json_is_null(json_object_get(e, "applied_at")));
	}
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "name")),
			 "beta");
	json_decref(st);
	cr_assert_not(is_current(conn, tmpdir));

	up_ok(conn, tmpdir, 2, 2);
	st = status_ok(conn, tmpdir);
	cr_assert_eq(json_integer_value(json_object_get(st, "current")), 2);
	cr_assert_eq(json_integer_value(json_object_get(st, "pending")), 1);
	list = json_object_get(st, "migrations");
	cr_assert(json_is_true(json_object_get(json_array_get(list, 1), "applied")));
	cr_assert(json_is_false(json_object_get(json_array_get(list, 2), "applied")));
	cr_assert_not(is_current(conn, tmpdir));
	json_decref(st);

	up_ok(conn, tmpdir, 0, 1);
	st = status_ok(conn, tmpdir);
	cr_assert_eq(json_integer_value(json_object_get(st, "current")), 3);
	cr_assert_eq(json_integer_value(json_object_get(st, "latest")), 3);
	cr_assert_eq(json_integer_value(json_object_get(st, "pending")), 0);
	json_array_foreach(json_object_get(st, "migrations"), i, e)
	{
		const char *at = json_string_value(json_object_get(e, "applied_at"));

		cr_assert(json_is_true(json_object_get(e, "applied")));
		cr_assert(looks_like_rfc3339(at), "applied_at '%s'", at ? at : "(null)");
	}
	json_decref(st);
	cr_assert(is_current(conn, tmpdir));
	PQfinish(conn);
}

Test(migrate, real_schema_status_and_is_current)
{
	PGconn *conn = connect_to(conninfo);
	int n = count_up_files(schema_dir());
	json_t *st = status_ok(conn, schema_dir());

	cr_assert_eq(json_integer_value(json_object_get(st, "pending")), n);
	json_decref(st);
	cr_assert_not(is_current(conn, schema_dir()));
	up_ok(conn, schema_dir(), 0, n);
	st = status_ok(conn, schema_dir());
	cr_assert_eq(json_integer_value(json_object_get(st, "pending")), 0);
	cr_assert_eq(json_array_size(json_object_get(st, "migrations")), (size_t)n);
	json_decref(st);
	cr_assert(is_current(conn, schema_dir()));
	PQfinish(conn);
}

Test(migrate, concurrent_appliers_apply_each_migration_once)
{
	enum { PROCS = 4 };
	pid_t pids[PROCS];
	int go[2];
	int total = 0;
	PGconn *conn;

	write_synthetic();
	cr_assert_eq(pipe(go), 0);
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0) {
			struct shp_error err = SHP_ERROR_INIT;
			PGconn *c;
			char b;
			int applied = -1;

			close(go[1]);
			c = PQconnectdb(conninfo);
			if (PQstatus(c) != CONNECTION_OK)
				_exit(100);
			(void)!read(go[0], &b, 1); /* every child starts when the pipe closes */
			if (shd_migrate_up(c, tmpdir, 0, &applied, &err) < 0) {
				fprintf(stderr, "child: %s\n", err.msg);
				_exit(101);
			}
			PQfinish(c);
			_exit(applied);
		}
	}
	close(go[0]);
	usleep(100 * 1000);
	close(go[1]);
	for (int i = 0; i < PROCS; i++) {
		int status;

		cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
		cr_assert(WIFEXITED(status), "child %d crashed", i);
		cr_assert_leq(WEXITSTATUS(status), 3, "child %d failed (%d)", i,
			      WEXITSTATUS(status));
		total += WEXITSTATUS(status);
	}
	cr_assert_eq(total, 3, "%d migrations applied in all, expected 3", total);
	conn = connect_to(conninfo);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM shepherd_schema_migrations"), 3);
	cr_assert_eq(query_long(conn, "SELECT count(DISTINCT version) FROM "
				      "shepherd_schema_migrations"),
		     3);
	cr_assert_eq(query_long(conn, "SELECT (SELECT count(*) FROM alpha) + "
				      "(SELECT count(*) FROM beta) + (SELECT count(*) FROM gamma)"),
		     3);
	cr_assert_eq(advisory_locks(conn), 0, "the migration lock was not released");
	PQfinish(conn);
}

static void copy_schema(void)
{
	char cmd[1024];

	(void)snprintf(cmd, sizeof(cmd), "cp '%s'/*.sql '%s'/", schema_dir(), tmpdir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(migrate, changed_checksum_is_detected)
{
	PGconn *conn = connect_to(conninfo);
	int n = count_up_files(schema_dir());
	struct shp_error err = SHP_ERROR_INIT;
	char path[512];
	FILE *f;
	int applied = -7;

	copy_schema();
	up_ok(conn, tmpdir, 0, n);
	(void)snprintf(path, sizeof(path), "%s/0001_foundation.up.sql", tmpdir);
	f = fopen(path, "a");
	cr_assert(f);
	fputs("-- an edit after the fact\n", f);
	fclose(f);

	cr_assert_eq(shd_migrate_up(conn, tmpdir, 0, &applied, &err), -SHP_E_CONFLICT, "%s",
		     err.msg);
	cr_assert_eq(applied, -7, "ret_applied was touched on failure");
	cr_assert(strstr(err.msg, "0001_foundation"), "%s", err.msg);
	cr_assert(strstr(err.msg, "checksum"), "%s", err.msg);
	shp_error_clear(&err);
	cr_assert_eq(shd_migrate_down(conn, tmpdir, 1, NULL, &err), -SHP_E_CONFLICT, "%s", err.msg);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM shepherd_schema_migrations"), n,
		     "a changed migration was re-run or reverted");
	cr_assert_eq(advisory_locks(conn), 0,
		     "the migration lock was not released after the error");
	PQfinish(conn);
}

Test(migrate, missing_down_file_is_an_error)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;

	write_synthetic();
	remove_file("0002_beta.down.sql");
	cr_assert_eq(shd_migrate_up(conn, tmpdir, 0, NULL, &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "0002_beta.up.sql"), "the file is not named: %s", err.msg);
	cr_assert(strstr(err.msg, "down"), "%s", err.msg);
	cr_assert_null(shd_migrate_status(conn, tmpdir, &err));
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'alpha'"),
		     0, "migrations ran despite the error");
	PQfinish(conn);
}

Test(migrate, badly_named_sql_file_is_an_error)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;

	write_synthetic();
	write_file(tmpdir, "notes.txt", "ignored\n");
	up_ok(conn, tmpdir, 1, 1);
	write_file(tmpdir, "4_short.up.sql", "SELECT 1;\n");
	cr_assert_eq(shd_migrate_up(conn, tmpdir, 0, NULL, &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "4_short.up.sql"), "%s", err.msg);
	PQfinish(conn);
}

Test(migrate, unknown_applied_version_is_refused)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;
	json_t *st;

	write_synthetic();
	up_ok(conn, tmpdir, 0, 3);
	remove_file("0003_gamma.up.sql");
	remove_file("0003_gamma.down.sql");
	cr_assert_eq(shd_migrate_up(conn, tmpdir, 0, NULL, &err), -SHP_E_CONFLICT);
	cr_assert(strstr(err.msg, "newer"), "%s", err.msg);
	st = status_ok(conn, tmpdir);
	cr_assert_eq(json_integer_value(json_object_get(st, "current")), 3);
	cr_assert_eq(json_integer_value(json_object_get(st, "latest")), 2);
	cr_assert_eq(json_array_size(json_object_get(st, "migrations")), 3);
	json_decref(st);
	PQfinish(conn);
}

Test(migrate, failing_migration_rolls_back_and_unlocks)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;
	int applied = -1;

	write_synthetic();
	write_file(tmpdir, "0002_beta.up.sql",
		   "CREATE TABLE beta (id int PRIMARY KEY);\nSELECT no_such_function();\n");
	cr_assert_lt(shd_migrate_up(conn, tmpdir, 0, &applied, &err), 0);
	cr_assert(strstr(err.msg, "0002_beta"), "%s", err.msg);
	cr_assert(strstr(err.msg, "no_such_function"), "%s", err.msg);
	cr_assert_str_eq(err.sqlstate, "42883");
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	cr_assert_eq(current_version(conn), 1);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'beta'"), 0,
		     "the failed migration was not rolled back");
	cr_assert_eq(advisory_locks(conn), 0,
		     "the migration lock was not released after the error");

	write_file(tmpdir, "0002_beta.up.sql",
		   "CREATE TABLE beta (id int PRIMARY KEY);\nCOMMIT;\n");
	cr_assert_lt(shd_migrate_up(conn, tmpdir, 0, NULL, &err), 0);
	cr_assert(strstr(err.msg, "ended the migration's transaction"), "%s", err.msg);
	PQfinish(conn);
}

Test(migrate, migration_inside_a_transaction_is_refused)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;

	write_synthetic();
	cr_assert_eq(shd_db_begin(conn, &err), 0);
	cr_assert_lt(shd_migrate_up(conn, tmpdir, 0, NULL, &err), 0);
	shd_db_rollback(conn);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'alpha'"),
		     0);
	PQfinish(conn);
}

static void expect_refused(PGconn *conn, const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_db_exec(conn, sql, 0, NULL, &err), "'%s' was allowed", sql);
	cr_assert_str_eq(err.sqlstate, "42501", "%s: %s", sql, err.msg);
	cr_assert(strstr(err.msg, "append-only"), "%s", err.msg);
}

Test(migrate, audit_log_is_append_only)
{
	PGconn *conn = connect_to(conninfo);
	struct shp_error err = SHP_ERROR_INIT;
	const char *params[] = {"TEST_ACTION", "success"};

	up_ok(conn, schema_dir(), 0, count_up_files(schema_dir()));
	cr_assert_eq(shd_db_command(conn,
				    "INSERT INTO audit_log (actor, action, outcome) "
				    "VALUES ('tester', $1, $2)",
				    2, params, &err),
		     0, "%s", err.msg);
	expect_refused(conn, "UPDATE audit_log SET actor = 'someone else'");
	expect_refused(conn, "DELETE FROM audit_log");
	expect_refused(conn, "TRUNCATE audit_log");
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM audit_log WHERE actor = 'tester'"), 1);
	PQfinish(conn);
}
