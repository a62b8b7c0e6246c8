/*
 * Integration tests of shepherdd/db.c against the server of with-postgres.sh: concurrent
 * checkouts from a small pool, checkout timeouts, cleanup on checkin, session settings, error
 * mapping, secrets kept out of messages, and fail-fast plus recovery while the server restarts.
 * One test stops the server, so the tests of this binary run one at a time (see main).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "util.h"

static const char *pgurl(void)
{
	const char *url = getenv("SHP_TEST_PGURL");

	cr_assert(url && *url, "SHP_TEST_PGURL is not set: run me under "
			       "tests/helpers/with-postgres.sh");
	return url;
}

static struct shd_dbpool *pool_new(int size, int checkout_timeout_ms)
{
	struct shd_dbpool_config cfg = {
		.conninfo = pgurl(),
		.size = size,
		.checkout_timeout_ms = checkout_timeout_ms,
		.application_name = "test-dbpool",
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool *pool = shd_dbpool_new(&cfg, &err);

	cr_assert(pool, "%s", err.msg);
	return pool;
}

static PGconn *get_ok(struct shd_dbpool *pool)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_dbpool_get(pool, &err);

	cr_assert(conn, "checkout failed: %s", err.msg);
	return conn;
}

static long query_long(PGconn *conn, const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(conn, sql, 0, NULL, &err);
	long v;

	cr_assert(res, "%s: %s", sql, err.msg);
	v = strtol(shd_db_value(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void query_text(PGconn *conn, const char *sql, char *out, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(conn, sql, 0, NULL, &err);

	cr_assert(res, "%s: %s", sql, err.msg);
	(void)snprintf(out, size, "%s", shd_db_value(res, 0, 0));
	PQclear(res);
}

static double elapsed_s(uint64_t t0)
{
	return (double)(shp_now_monotonic_ns() - t0) / 1e9;
}

/* Each test gets its own table names: tests run in one database. */
static void exec_ok(PGconn *conn, const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(conn, sql, 0, NULL, &err), 0, "%s: %s", sql, err.msg);
}

/* --- concurrency --------------------------------------------------------------------------- */

#define THREADS 8
#define ROUNDS 10

struct shared {
	struct shd_dbpool *pool;
	pthread_mutex_t lock; /* protects out[] and the counters below */
	PGconn *out[THREADS];
	int n_out;
	int max_out;
	int sharing; /* a connection handed out twice at once */
	int failures;
	int pids[THREADS * ROUNDS];
	int n_pids;
};

static void *worker(void *arg)
{
	struct shared *s = arg;

	for (int i = 0; i < ROUNDS; i++) {
		struct shp_error err = SHP_ERROR_INIT;
		PGconn *conn = shd_dbpool_get(s->pool, &err);
		PGresult *res;

		if (!conn) {
			pthread_mutex_lock(&s->lock);
			s->failures++;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		pthread_mutex_lock(&s->lock);
		for (int k = 0; k < s->n_out; k++)
			if (s->out[k] == conn)
				s->sharing++;
		s->out[s->n_out++] = conn;
		if (s->n_out > s->max_out)
			s->max_out = s->n_out;
		pthread_mutex_unlock(&s->lock);

		res = shd_db_exec(conn, "SELECT pg_backend_pid(), pg_sleep(0.01)", 0, NULL, &err);
		pthread_mutex_lock(&s->lock);
		if (res)
			s->pids[s->n_pids++] = atoi(PQgetvalue(res, 0, 0));
		else
			s->failures++;
		for (int k = 0; k < s->n_out; k++)
			if (s->out[k] == conn) {
				s->out[k] = s->out[--s->n_out];
				break;
			}
		pthread_mutex_unlock(&s->lock);
		PQclear(res);
		shd_dbpool_put(s->pool, conn);
	}
	return NULL;
}

Test(dbpool, eight_threads_share_two_connections)
{
	struct shared s = {.pool = pool_new(2, 30000)};
	pthread_t t[THREADS];
	struct shd_dbpool_stats st;
	int distinct = 0;

	pthread_mutex_init(&s.lock, NULL);
	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, worker, &s), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);

	cr_assert_eq(s.failures, 0);
	cr_assert_eq(s.sharing, 0, "a connection was checked out twice at once");
	cr_assert_leq(s.max_out, 2);
	cr_assert_eq(s.max_out, 2, "the pool never used its second connection");
	cr_assert_eq(s.n_pids, THREADS * ROUNDS);
	for (int i = 0; i < s.n_pids; i++) {
		bool seen = false;

		for (int k = 0; k < i; k++)
			seen = seen || s.pids[k] == s.pids[i];
		distinct += !seen;
	}
	cr_assert_leq(distinct, 2, "%d server sessions for a pool of 2", distinct);

	shd_dbpool_get_stats(s.pool, &st);
	cr_assert_eq(st.size, 2);
	cr_assert_eq(st.open, 2);
	cr_assert_eq(st.in_use, 0);
	cr_assert_eq(st.waiting, 0);
	cr_assert_eq(st.checkouts, (uint64_t)(THREADS * ROUNDS));
	cr_assert_eq(st.timeouts, 0);
	cr_assert_eq(st.connect_failures, 0);
	cr_assert_eq(st.resets, 0);
	cr_assert(st.healthy);
	shd_dbpool_free(s.pool);
	pthread_mutex_destroy(&s.lock);
}

/* --- timeouts and waiting ------------------------------------------------------------------ */

Test(dbpool, checkout_times_out_with_unavail)
{
	struct shd_dbpool *pool = pool_new(1, 200);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool_stats st;
	PGconn *held = get_ok(pool);
	uint64_t t0 = shp_now_monotonic_ns();

	cr_assert_null(shd_dbpool_get(pool, &err));
	cr_assert_eq(err.code, SHP_E_UNAVAIL, "%s", err.msg);
	cr_assert_geq(elapsed_s(t0), 0.18);
	cr_assert_lt(elapsed_s(t0), 2.0);
	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.timeouts, 1);
	cr_assert_eq(st.in_use, 1);
	cr_assert_eq(st.checkouts, 1);

	shd_dbpool_put(pool, held);
	shd_dbpool_put(pool, get_ok(pool));
	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.checkouts, 2);
	cr_assert_eq(st.in_use, 0);
	cr_assert_eq(st.open, 1);
	shd_dbpool_free(pool);
}

struct waiter {
	struct shd_dbpool *pool;
	PGconn *got;
	struct shp_error err;
};

static void *wait_for_conn(void *arg)
{
	struct waiter *w = arg;

	w->got = shd_dbpool_get(w->pool, &w->err);
	return NULL;
}

Test(dbpool, waiter_gets_the_returned_connection)
{
	struct waiter w = {.pool = pool_new(1, 10000), .err = SHP_ERROR_INIT};
	PGconn *held = get_ok(w.pool);
	struct shd_dbpool_stats st;
	pthread_t t;
	uint64_t t0;

	cr_assert_eq(pthread_create(&t, NULL, wait_for_conn, &w), 0);
	for (int i = 0; i < 1000; i++) {
		shd_dbpool_get_stats(w.pool, &st);
		if (st.waiting == 1)
			break;
		usleep(10 * 1000);
	}
	cr_assert_eq(st.waiting, 1, "the second checkout is not waiting");
	t0 = shp_now_monotonic_ns();
	shd_dbpool_put(w.pool, held);
	pthread_join(t, NULL);
	cr_assert_eq(w.got, held, "%s", w.err.msg);
	cr_assert_lt(elapsed_s(t0), 2.0);
	shd_dbpool_put(w.pool, w.got);
	shd_dbpool_free(w.pool);
}

/* --- checkin ------------------------------------------------------------------------------- */

Test(dbpool, open_transaction_is_rolled_back_on_put)
{
	struct shd_dbpool *pool = pool_new(1, 5000);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool_stats st;
	PGconn *conn = get_ok(pool);
	long pid = query_long(conn, "SELECT pg_backend_pid()");

	exec_ok(conn, "CREATE TABLE rollback_on_put (v int)");
	cr_assert_eq(shd_db_begin(conn, &err), 0, "%s", err.msg);
	exec_ok(conn, "INSERT INTO rollback_on_put VALUES (1)");
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_INTRANS);
	shd_dbpool_put(pool, conn);

	conn = get_ok(pool);
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	cr_assert_eq(query_long(conn, "SELECT pg_backend_pid()"), pid, "not the same connection");
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM rollback_on_put"), 0);

	/* A failed transaction too. */
	cr_assert_eq(shd_db_begin(conn, &err), 0, "%s", err.msg);
	cr_assert_null(shd_db_exec(conn, "SELECT 1 / 0", 0, NULL, &err));
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_INERROR);
	shd_dbpool_put(pool, conn);
	conn = get_ok(pool);
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	cr_assert_eq(query_long(conn, "SELECT pg_backend_pid()"), pid);
	exec_ok(conn, "DROP TABLE rollback_on_put");
	shd_dbpool_put(pool, conn);

	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.resets, 0);
	cr_assert_eq(st.open, 1);
	shd_dbpool_free(pool);
}

static void terminate_backend(long pid)
{
	PGconn *admin = PQconnectdb(pgurl());
	char text[32];
	const char *params[] = {text};
	PGresult *res;

	cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
	(void)snprintf(text, sizeof(text), "%ld", pid);
	res = PQexecParams(admin, "SELECT pg_terminate_backend($1::int, 5000)", 1, NULL, params,
			   NULL, NULL, 0);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(admin));
	cr_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	PQfinish(admin);
}

Test(dbpool, broken_connection_is_discarded_on_put)
{
	struct shd_dbpool *pool = pool_new(1, 5000);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool_stats st;
	PGconn *conn = get_ok(pool);
	long pid = query_long(conn, "SELECT pg_backend_pid()");

	terminate_backend(pid);
	cr_assert_null(shd_db_exec(conn, "SELECT 1", 0, NULL, &err));
	cr_assert_eq(err.code, SHP_E_UNAVAIL, "%s: %s", shp_errc_to_string(err.code), err.msg);
	cr_assert_eq(PQstatus(conn), CONNECTION_BAD);
	shd_dbpool_put(pool, conn);
	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.resets, 1);
	cr_assert_eq(st.open, 0);
	cr_assert_eq(st.in_use, 0);

	conn = get_ok(pool);
	cr_assert_neq(query_long(conn, "SELECT pg_backend_pid()"), pid);
	shd_dbpool_put(pool, conn);
	shd_dbpool_free(pool);
}

Test(dbpool, dead_idle_connection_is_replaced_on_checkout)
{
	struct shd_dbpool *pool = pool_new(1, 5000);
	struct shd_dbpool_stats st;
	PGconn *conn = get_ok(pool);
	long pid = query_long(conn, "SELECT pg_backend_pid()");

	shd_dbpool_put(pool, conn);
	terminate_backend(pid);
	conn = get_ok(pool);
	cr_assert_neq(query_long(conn, "SELECT pg_backend_pid()"), pid);
	shd_dbpool_put(pool, conn);
	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.resets, 1);
	cr_assert_eq(st.open, 1);
	cr_assert_eq(st.checkouts, 2);
	shd_dbpool_free(pool);
}

/* --- session settings and errors ----------------------------------------------------------- */

Test(dbpool, session_settings_apply_to_every_connection)
{
	struct shd_dbpool_config cfg = {
		.conninfo = pgurl(),
		.size = 2,
		.checkout_timeout_ms = 5000,
		.statement_timeout_ms = 300,
		.lock_timeout_ms = 250,
		.idle_in_tx_timeout_ms = 0,
		.application_name = "shepherdd-test",
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool *pool = shd_dbpool_new(&cfg, &err);
	PGconn *a, *b;
	char v[64];

	cr_assert(pool, "%s", err.msg);
	a = get_ok(pool);
	b = get_ok(pool);
	cr_assert_neq(a, b);
	for (PGconn *c = a; c; c = c == a ? b : NULL) {
		query_text(c, "SHOW statement_timeout", v, sizeof(v));
		cr_assert_str_eq(v, "300ms");
		query_text(c, "SHOW lock_timeout", v, sizeof(v));
		cr_assert_str_eq(v, "250ms");
		query_text(c, "SHOW idle_in_transaction_session_timeout", v, sizeof(v));
		cr_assert_str_eq(v, "0", "0 keeps the server default");
		query_text(c, "SHOW application_name", v, sizeof(v));
		cr_assert_str_eq(v, "shepherdd-test");
	}
	cr_assert_null(shd_db_exec(a, "SELECT pg_sleep(2)", 0, NULL, &err));
	cr_assert_eq(err.code, SHP_E_TIMEOUT, "%s: %s", shp_errc_to_string(err.code), err.msg);
	cr_assert_str_eq(err.sqlstate, "57014");
	shd_dbpool_put(pool, a);
	shd_dbpool_put(pool, b);
	shd_dbpool_free(pool);
}

static void expect_error(PGconn *conn, const char *sql, const char *param, enum shp_errc code,
			 const char *sqlstate)
{
	struct shp_error err = SHP_ERROR_INIT;
	const char *params[] = {param};

	cr_assert_null(shd_db_exec(conn, sql, param ? 1 : 0, param ? params : NULL, &err), "%s",
		       sql);
	cr_assert_eq(err.code, code, "%s: got %s (%s)", sql, shp_errc_to_string(err.code), err.msg);
	cr_assert_str_eq(err.sqlstate, sqlstate, "%s: %s", sql, err.msg);
	cr_assert_neq(err.msg[0], '\0');
}

Test(dbpool, sqlstates_map_to_error_codes)
{
	struct shd_dbpool *pool = pool_new(1, 5000);
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = get_ok(pool);
	const char *params[] = {"7", NULL};
	PGresult *res;

	exec_ok(conn, "CREATE TABLE map_parent (id int PRIMARY KEY)");
	exec_ok(conn, "CREATE TABLE map_child (id int PRIMARY KEY CHECK (id > 0), "
		      "parent int NOT NULL REFERENCES map_parent (id))");
	exec_ok(conn, "INSERT INTO map_parent VALUES (1)");
	expect_error(conn, "INSERT INTO map_parent VALUES ($1::int)", "1", SHP_E_CONFLICT, "23505");
	expect_error(conn, "INSERT INTO map_child VALUES (1, $1::int)", "99", SHP_E_INVAL, "23503");
	expect_error(conn, "INSERT INTO map_child VALUES (1, NULL)", NULL, SHP_E_INVAL, "23502");
	expect_error(conn, "INSERT INTO map_child VALUES (-1, $1::int)", "1", SHP_E_INVAL, "23514");
	expect_error(conn, "SELECT 1 / $1::int", "0", SHP_E_INVAL, "22012");
	expect_error(conn, "SELECT $1::int", "not a number", SHP_E_INVAL, "22P02");
	expect_error(conn, "SELEKT 1", NULL, SHP_E_DB, "42601");
	expect_error(conn, "SELECT * FROM no_such_table", NULL, SHP_E_DB, "42P01");

	/* NULL cells, parameters and out-of-range look-ups. */
	res = shd_db_exec(conn, "SELECT $1::int, $2::int", 2, params, &err);
	cr_assert(res, "%s", err.msg);
	cr_assert_str_eq(shd_db_value(res, 0, 0), "7");
	cr_assert_null(shd_db_value(res, 0, 1));
	cr_assert_null(shd_db_value(res, 1, 0));
	cr_assert_null(shd_db_value(res, 0, 2));
	PQclear(res);

	/* COMMIT of a failed transaction rolls back: that is an error. */
	cr_assert_eq(shd_db_begin(conn, &err), 0);
	cr_assert_neq(shd_db_command(conn, "SELECT 1 / 0", 0, NULL, &err), 0);
	shp_error_clear(&err);
	cr_assert_lt(shd_db_commit(conn, &err), 0);
	cr_assert_eq(err.code, SHP_E_DB);
	cr_assert_eq(PQtransactionStatus(conn), PQTRANS_IDLE);

	/* A committed transaction and a rollback. */
	cr_assert_eq(shd_db_begin(conn, &err), 0);
	exec_ok(conn, "INSERT INTO map_parent VALUES (2)");
	cr_assert_eq(shd_db_commit(conn, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_db_begin(conn, &err), 0);
	exec_ok(conn, "INSERT INTO map_parent VALUES (3)");
	shd_db_rollback(conn);
	shd_db_rollback(conn);
	cr_assert_eq(query_long(conn, "SELECT count(*) FROM map_parent"), 2);
	cr_assert_eq(shd_db_command(conn, "SELECT 1", 0, NULL, NULL), 0);
	cr_assert_eq(shd_db_command(conn, "SELECT 1 / 0", 0, NULL, NULL), -SHP_E_INVAL);

	exec_ok(conn, "DROP TABLE map_child, map_parent");
	shd_dbpool_put(pool, conn);
	shd_dbpool_free(pool);
}

/* --- configuration and secrets ------------------------------------------------------------- */

Test(dbpool, conninfo_secrets_stay_out_of_errors)
{
	static const char *const bad[] = {
		"host=/nonexistent/dir password=hunter2secret dbname=x",
		"password=hunter2secret = = broken",
		"password='hunter2secret",
		"host=/tmp password=hunter2secret nosuchoption=1",
	};
	char longinfo[5000];

	for (size_t i = 0; i < SHP_ARRAY_SIZE(bad); i++) {
		struct shd_dbpool_config cfg = {.conninfo = bad[i], .size = 1};
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_dbpool *pool = shd_dbpool_new(&cfg, &err);
		PGconn *conn;

		if (pool) {
			conn = shd_dbpool_get(pool, &err);
			cr_assert_null(conn, "%s", bad[i]);
			shd_dbpool_free(pool);
		}
		cr_assert_neq(err.code, SHP_OK, "%s", bad[i]);
		cr_assert_null(strstr(err.msg, "hunter2"), "secret in '%s'", err.msg);

		shp_error_clear(&err);
		conn = shd_db_connect(&cfg, &err);
		cr_assert_null(conn);
		cr_assert_neq(err.code, SHP_OK);
		cr_assert_null(strstr(err.msg, "hunter2"), "secret in '%s'", err.msg);
	}

	memset(longinfo, 'a', sizeof(longinfo) - 1);
	longinfo[sizeof(longinfo) - 1] = '\0';
	memcpy(longinfo, "password=", 9);
	{
		struct shd_dbpool_config cfg = {.conninfo = longinfo, .size = 1};
		struct shp_error err = SHP_ERROR_INIT;

		cr_assert_null(shd_dbpool_new(&cfg, &err));
		cr_assert_eq(err.code, SHP_E_INVAL);
		cr_assert(strstr(err.msg, "too long"), "%s", err.msg);
		cr_assert_null(strstr(err.msg, "aaaa"));
	}
}

Test(dbpool, invalid_configuration_is_refused)
{
	struct shd_dbpool_config cfg = {.conninfo = pgurl(), .size = 0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_dbpool_new(&cfg, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	cfg.size = 1;
	cfg.checkout_timeout_ms = -1;
	cr_assert_null(shd_dbpool_new(&cfg, &err));
	cfg.checkout_timeout_ms = 0;
	cfg.conninfo = "";
	cr_assert_null(shd_dbpool_new(&cfg, &err));
	cfg.conninfo = NULL;
	cr_assert_null(shd_dbpool_new(&cfg, &err));
	cr_assert_null(shd_dbpool_free(NULL));
	shd_dbpool_put(NULL, NULL);
}

/* --- unreachable server: fail fast, back off, recover ---------------------------------------- */

/*
 * The backoff is checked by what the pool did (its connect attempts), with pauses of a second
 * and more, so that a loaded machine does not change the outcome: no assertion on how long a
 * checkout took beyond "well within the pause".
 */
Test(dbpool, unreachable_server_fails_fast_with_backoff)
{
	struct shd_dbpool_config cfg = {
		.conninfo = "host=/nonexistent/socket/dir dbname=x user=shepherd",
		.size = 2,
		.checkout_timeout_ms = 10000,
		.backoff_min_ms = 1000,
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool *pool = shd_dbpool_new(&cfg, &err);
	struct shd_dbpool_stats st;
	uint64_t t0;

	cr_assert(pool, "%s", err.msg);
	shd_dbpool_get_stats(pool, &st);
	cr_assert(st.healthy, "a new pool is optimistic");
	cr_assert_eq(st.backoff_ms, 0);

	t0 = shp_now_monotonic_ns();
	cr_assert_null(shd_dbpool_get(pool, &err));
	cr_assert_eq(err.code, SHP_E_UNAVAIL, "%s", err.msg);
	cr_assert(strstr(err.msg, "/nonexistent/socket/dir"), "%s", err.msg);
	/* During the backoff: no connect attempt, an immediate failure (not the 10 s wait). */
	for (int i = 0; i < 5; i++) {
		shp_error_clear(&err);
		cr_assert_null(shd_dbpool_get(pool, &err));
		cr_assert_eq(err.code, SHP_E_UNAVAIL);
	}
	cr_assert_lt(elapsed_s(t0), 0.9, "checkouts waited during the backoff");
	shd_dbpool_get_stats(pool, &st);
	cr_assert_eq(st.connect_failures, 1, "a connect attempt during the backoff");
	cr_assert_eq(st.backoff_ms, 1000);
	cr_assert_not(st.healthy);
	cr_assert_eq(st.open, 0);

	/* Once the pause is over, one more attempt, and a pause twice as long. */
	usleep(1100 * 1000);
	t0 = shp_now_monotonic_ns();
	cr_assert_null(shd_dbpool_get(pool, &err));
	cr_assert_null(shd_dbpool_get(pool, &err));
	shd_dbpool_get_stats(pool, &st);
	cr_assert_lt(elapsed_s(t0), 1.9);
	cr_assert_eq(st.connect_failures, 2, "retried before the doubled backoff");
	cr_assert_eq(st.backoff_ms, 2000, "the backoff doubles");
	cr_assert_eq(st.timeouts, 0);
	shd_dbpool_free(pool);

	/* the first pause is at most the cap (5 s) */
	cfg.backoff_min_ms = 6000;
	cr_assert_null(shd_dbpool_new(&cfg, &err), "a first pause over the 5 s cap");
	cr_assert_eq(err.code, SHP_E_INVAL);
}

static int pg_ctl(const char *action)
{
	const char *helper = getenv("SHP_TEST_PGCTL");
	char cmd[1024];

	cr_assert(helper && *helper, "SHP_TEST_PGCTL is not set: run me under with-postgres.sh");
	(void)snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null", helper, action);
	return system(cmd);
}

/* Whatever happened in the test, leave the server running for the next one. */
static void server_up(void)
{
	char pidfile[1024];
	const char *data = getenv("SHP_TEST_PGDATA");

	if (!data)
		return;
	(void)snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", data);
	if (access(pidfile, F_OK) != 0)
		(void)pg_ctl("start");
}

Test(dbpool, recovers_after_server_restart, .fini = server_up, .timeout = 120)
{
	struct shd_dbpool *pool = pool_new(2, 5000);
	struct shd_dbpool_stats st;
	PGconn *a = get_ok(pool), *b = get_ok(pool);
	PGconn *conn = NULL;
	uint64_t t0;

	shd_dbpool_put(pool, a);
	shd_dbpool_put(pool, b);
	cr_assert_eq(pg_ctl("stop"), 0, "stopping the server failed");

	for (int i = 0; i < 10; i++) {
		struct shp_error err = SHP_ERROR_INIT;

		t0 = shp_now_monotonic_ns();
		cr_assert_null(shd_dbpool_get(pool, &err),
			       "a checkout succeeded with the server down");
		cr_assert_eq(err.code, SHP_E_UNAVAIL, "%s: %s", shp_errc_to_string(err.code),
			     err.msg);
		cr_assert_lt(elapsed_s(t0), 1.0, "a checkout took %.2f s with the server down",
			     elapsed_s(t0));
		usleep(50 * 1000);
	}
	shd_dbpool_get_stats(pool, &st);
	cr_assert_not(st.healthy);
	cr_assert_eq(st.open, 0, "dead connections are still counted");
	cr_assert_eq(st.resets, 2);
	cr_assert_geq(st.connect_failures, 1);
	cr_assert_eq(st.timeouts, 0);

	cr_assert_eq(pg_ctl("start"), 0, "starting the server failed");
	t0 = shp_now_monotonic_ns();
	while (!conn && elapsed_s(t0) < 10.0) {
		struct shp_error err = SHP_ERROR_INIT;

		conn = shd_dbpool_get(pool, &err);
		if (!conn) {
			cr_assert_eq(err.code, SHP_E_UNAVAIL, "%s", err.msg);
			usleep(50 * 1000);
		}
	}
	cr_assert(conn, "no connection within 10 s of the server's restart");
	cr_assert_eq(query_long(conn, "SELECT 40 + 2"), 42);
	shd_dbpool_put(pool, conn);
	shd_dbpool_get_stats(pool, &st);
	cr_assert(st.healthy);
	cr_assert_eq(st.open, 1);

	/* Both slots work again. */
	a = get_ok(pool);
	b = get_ok(pool);
	cr_assert_eq(query_long(a, "SELECT 1") + query_long(b, "SELECT 1"), 2);
	shd_dbpool_put(pool, a);
	shd_dbpool_put(pool, b);
	shd_dbpool_free(pool);
}

/* The recovery test stops the shared server: no other test of this binary may run meanwhile. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
