/*
 * Integration tests of shepherdd/pgembed.c: the embedded server in a temp state directory —
 * start, query, stop; no second initdb; stale postmaster.pid recovery; a leftover server for
 * the same data directory; the parent-death signal; the run_as user under root; start errors.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "pgembed.h"
#include "util.h"

#define START_TIMEOUT_MS 60000

static char state[256];

static const char *bindir(void)
{
	const char *d = getenv("SHP_TEST_PGBIN");

	if (!d || !*d)
		d = getenv("SHP_PG_BINDIR");
	return d && *d ? d : SHP_PG_BINDIR;
}

static void make_state_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	cr_assert(getenv("SHP_TEST_PGURL"), "SHP_TEST_PGURL is not set: run me under "
					    "tests/helpers/with-postgres.sh");
	(void)snprintf(state, sizeof(state), "%s/shp-pgembed.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (strlen(state) > 60)
		(void)snprintf(state, sizeof(state), "/tmp/shp-pgembed.XXXXXX");
	cr_assert(mkdtemp(state), "mkdtemp: %s", strerror(errno));
}

static void remove_state_dir(void)
{
	char cmd[512];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state);
	(void)!system(cmd);
}

TestSuite(pgembed, .init = make_state_dir, .fini = remove_state_dir, .timeout = 180);

static struct shd_pgembed *start(void)
{
	struct shd_pgembed_config cfg = {
		.state_dir = state,
		.bindir = bindir(),
		.start_timeout_ms = START_TIMEOUT_MS,
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_pgembed *pg = shd_pgembed_start(&cfg, &err);

	cr_assert(pg, "start failed: %s", err.msg);
	cr_assert_eq(err.code, SHP_OK);
	return pg;
}

static PGconn *connect_ok(const struct shd_pgembed *pg)
{
	PGconn *conn = PQconnectdb(shd_pgembed_conninfo(pg));

	cr_assert_eq(PQstatus(conn), CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
	return conn;
}

/* The single value of a query without parameters, copied into out. */
static void query1(PGconn *conn, const char *sql, char *out, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(conn, sql, 0, NULL, &err);

	cr_assert(res, "%s: %s", sql, err.msg);
	cr_assert_eq(PQntuples(res), 1);
	(void)snprintf(out, size, "%s", shd_db_value(res, 0, 0) ? shd_db_value(res, 0, 0) : "");
	PQclear(res);
}

static bool pid_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	const char *p;
	size_t n;

	(void)waitpid(pid, NULL, WNOHANG);
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[2] == 'Z';
}

static bool wait_pid_gone(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (pid_gone(pid))
			return true;
		usleep(50 * 1000);
	}
	return pid_gone(pid);
}

static uid_t proc_uid(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	long uid = -1;

	(void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4))
			uid = strtol(line + 4, NULL, 10);
	fclose(f);
	cr_assert_geq(uid, 0);
	return (uid_t)uid;
}

static void write_file(const char *path, const char *text, const char *mode)
{
	FILE *f = fopen(path, mode);

	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert_geq(fputs(text, f), 0);
	cr_assert_eq(fclose(f), 0);
}

static bool file_exists(const char *dir, const char *name)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

Test(pgembed, start_query_stop)
{
	struct shd_pgembed *pg = start();
	PGconn *conn = connect_ok(pg);
	pid_t pid = shd_pgembed_pid(pg);
	char v[256], sock[300];

	cr_assert_gt(pid, 0);
	cr_assert(shd_pgembed_is_running(pg));
	query1(conn, "SELECT current_database()", v, sizeof(v));
	cr_assert_str_eq(v, "shepherd");
	query1(conn, "SELECT current_user", v, sizeof(v));
	cr_assert_str_eq(v, "shepherd");
	query1(conn, "SHOW listen_addresses", v, sizeof(v));
	cr_assert_str_eq(v, "");
	query1(conn, "SHOW unix_socket_permissions", v, sizeof(v));
	cr_assert_str_eq(v, "0700");
	query1(conn, "SHOW max_connections", v, sizeof(v));
	cr_assert_str_eq(v, "100");
	query1(conn, "SHOW shared_buffers", v, sizeof(v));
	cr_assert_str_eq(v, "64MB");
	query1(conn, "SELECT 6 * 7", v, sizeof(v));
	cr_assert_str_eq(v, "42");
	PQfinish(conn);

	(void)snprintf(sock, sizeof(sock), "%s/pgsock", state);
	cr_assert(file_exists(sock, ".s.PGSQL.5432"));
	cr_assert(file_exists(state, "postgresql.log"));
	cr_assert(shd_pgembed_stop(pg, 30000) == NULL);
	cr_assert(pid_gone(pid), "the server (pid %d) still runs after stop", (int)pid);
	cr_assert_not(file_exists(sock, ".s.PGSQL.5432"));
}

Test(pgembed, runs_as_run_as_user_under_root)
{
	struct shd_pgembed *pg = start();
	uid_t uid = proc_uid(shd_pgembed_pid(pg));
	char pgdata[300];
	struct stat st;

	(void)snprintf(pgdata, sizeof(pgdata), "%s/pgdata", state);
	cr_assert_eq(stat(pgdata, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(st.st_uid, uid, "pgdata is not owned by the server's user");
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("shepherd");

		cr_assert(pw, "the default run_as user 'shepherd' was not created");
		cr_assert_eq(uid, pw->pw_uid, "server uid %d, expected %d", (int)uid,
			     (int)pw->pw_uid);
		cr_assert_neq(uid, 0);
	} else {
		cr_assert_eq(uid, geteuid());
	}
	shd_pgembed_stop(pg, 30000);
}

Test(pgembed, second_start_does_not_initdb)
{
	struct shd_pgembed *pg = start();
	PGconn *conn = connect_ok(pg);
	struct shp_error err = SHP_ERROR_INIT;
	char v[64];

	cr_assert_eq(shd_db_command(conn, "CREATE TABLE marker (v text)", 0, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(
		shd_db_command(conn, "INSERT INTO marker VALUES ('first start')", 0, NULL, &err), 0,
		"%s", err.msg);
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);

	pg = start();
	conn = connect_ok(pg);
	query1(conn, "SELECT v FROM marker", v, sizeof(v));
	cr_assert_str_eq(v, "first start");
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);
}

/* A pid that is certainly not running: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void write_pidfiles(pid_t pid)
{
	char path[300], text[512];

	(void)snprintf(path, sizeof(path), "%s/pgdata/postmaster.pid", state);
	(void)snprintf(text, sizeof(text),
		       "%d\n%s/pgdata\n1700000000\n5432\n%s/pgsock\n\n"
		       "  5432001         0\nready   \n",
		       (int)pid, state, state);
	write_file(path, text, "w");
	(void)snprintf(path, sizeof(path), "%s/pgsock/.s.PGSQL.5432.lock", state);
	(void)snprintf(text, sizeof(text), "%d\n%s/pgdata\n1700000000\n5432\n%s/pgsock\n", (int)pid,
		       state, state);
	write_file(path, text, "w");
}

Test(pgembed, stale_pid_file_with_dead_pid)
{
	struct shd_pgembed *pg = start();
	PGconn *conn;
	char v[16];

	shd_pgembed_stop(pg, 30000);
	write_pidfiles(dead_pid());
	pg = start();
	conn = connect_ok(pg);
	query1(conn, "SELECT 1", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);
}

Test(pgembed, stale_pid_file_with_live_foreign_pid)
{
	struct shd_pgembed *pg = start();
	pid_t other;
	PGconn *conn;
	char v[16];

	shd_pgembed_stop(pg, 30000);
	other = fork();
	cr_assert_geq(other, 0);
	if (other == 0) {
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	write_pidfiles(other);
	pg = start();
	cr_assert_eq(kill(other, 0), 0, "an unrelated process was killed");
	conn = connect_ok(pg);
	query1(conn, "SELECT 1", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);
	(void)kill(other, SIGKILL);
	(void)waitpid(other, NULL, 0);
}

/* The postmaster of with-postgres.sh: a live postgres, but for another data directory. */
static pid_t other_postmaster(void)
{
	const char *data = getenv("SHP_TEST_PGDATA");
	char path[1024];
	FILE *f;
	int pid = 0;

	cr_assert(data && *data, "SHP_TEST_PGDATA is not set: run me under with-postgres.sh");
	(void)snprintf(path, sizeof(path), "%s/postmaster.pid", data);
	f = fopen(path, "r");
	cr_assert(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	cr_assert_eq(kill(pid, 0), 0);
	return pid;
}

Test(pgembed, stale_pid_file_naming_another_server)
{
	struct shd_pgembed *pg = start();
	pid_t other = other_postmaster();
	PGconn *conn;
	char v[16];

	shd_pgembed_stop(pg, 30000);
	write_pidfiles(other);
	pg = start();
	cr_assert_eq(kill(other, 0), 0, "the other data directory's server was stopped");
	conn = connect_ok(pg);
	query1(conn, "SELECT 1", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);
}

Test(pgembed, leftover_server_is_replaced)
{
	struct shd_pgembed *forgotten = start();
	pid_t old = shd_pgembed_pid(forgotten);
	struct shd_pgembed *pg;
	PGconn *conn;
	char v[16];

	pg = start();
	cr_assert_neq(shd_pgembed_pid(pg), old);
	cr_assert(wait_pid_gone(old, 10000), "the leftover server (pid %d) still runs", (int)old);
	cr_assert(shd_pgembed_is_running(pg));
	conn = connect_ok(pg);
	query1(conn, "SELECT 1", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	PQfinish(conn);
	shd_pgembed_stop(pg, 30000);
	/* Only to free the handle: its process is long gone. */
	shd_pgembed_stop(forgotten, 0);
}

Test(pgembed, server_stops_when_the_daemon_dies)
{
	int fds[2];
	pid_t child, server = 0;
	int status;
	struct shd_pgembed *pg;

	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		struct shd_pgembed_config cfg = {.state_dir = state,
						 .bindir = bindir(),
						 .start_timeout_ms = START_TIMEOUT_MS};
		struct shd_pgembed *p = shd_pgembed_start(&cfg, NULL);
		pid_t pid = p ? shd_pgembed_pid(p) : 0;

		(void)!write(fds[1], &pid, sizeof(pid));
		_exit(p ? 0 : 1); /* dies without stopping the server */
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &server, sizeof(server)), (ssize_t)sizeof(server));
	close(fds[0]);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed to start");
	cr_assert_gt(server, 0);
	cr_assert(wait_pid_gone(server, 30000), "the server (pid %d) outlived its parent",
		  (int)server);

	pg = start();
	cr_assert(shd_pgembed_is_running(pg));
	shd_pgembed_stop(pg, 30000);
}

Test(pgembed, failed_start_reports_the_log)
{
	struct shd_pgembed_config cfg = {
		.state_dir = state, .bindir = bindir(), .start_timeout_ms = START_TIMEOUT_MS};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_pgembed *pg = start();
	char path[300];
	uint64_t t0;

	shd_pgembed_stop(pg, 30000);
	(void)snprintf(path, sizeof(path), "%s/pgdata/postgresql.auto.conf", state);
	write_file(path, "shared_buffers = 'lots'\n", "a");
	t0 = shp_now_monotonic_ns();
	pg = shd_pgembed_start(&cfg, &err);
	cr_assert_null(pg);
	cr_assert_eq(err.code, SHP_E_UNAVAIL, "code %s: %s", shp_errc_to_string(err.code), err.msg);
	cr_assert(strstr(err.msg, "exited during start"), "%s", err.msg);
	cr_assert(strstr(err.msg, "postgresql.log"), "the log path is not named: %s", err.msg);
	cr_assert(strstr(err.msg, "contains errors") || strstr(err.msg, "shared_buffers"),
		  "the log's last lines are missing: %s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, (uint64_t)START_TIMEOUT_MS * 1000000u / 2);
}

Test(pgembed, missing_binaries_are_an_error)
{
	struct shd_pgembed_config cfg = {
		.state_dir = state, .bindir = "/nonexistent/pg/bin", .start_timeout_ms = 5000};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_pgembed_start(&cfg, &err));
	cr_assert_neq(err.code, SHP_OK);
	cr_assert(strstr(err.msg, "/nonexistent/pg/bin/initdb"), "%s", err.msg);
	cr_assert_not(file_exists(state, "pgdata/PG_VERSION"));
}
