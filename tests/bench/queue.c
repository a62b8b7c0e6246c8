/*
 * Queue benchmark, shaped like /work/shared/bench/queue's peer measurements: enqueue of N no-op
 * jobs one by one (one client, then 10 clients) and in batches of 1,000; processing N
 * pre-inserted jobs with 10 workers; and wake-up latency (enqueue call -> handler start) of an
 * idle runner. Each measurement runs in a fresh database. It prints figures; it asserts nothing.
 * Connection: $SHP_BENCH_PGURL, else $SHP_TEST_PGURL (with-postgres.sh). N: $SHP_BENCH_N.
 * Subset: $SHP_BENCH_ONLY (enqueue, process, latency).
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "log.h"
#include "migrate.h"
#include "queue.h"
#include "util.h"

static char base_url[512];
static char conninfo[600];
static const char *schema_dir;
static int n_jobs = 20000;

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench-queue: %s: %s\n", what, msg);
	exit(1);
}

static struct shd_dbpool_config dbcfg(void)
{
	return (struct shd_dbpool_config){
		.conninfo = conninfo, .size = 1, .application_name = "bench-queue"};
}

static PGconn *connect_db(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_dbpool_config c = dbcfg();
	PGconn *conn = shd_db_connect(&c, &err);

	if (!conn)
		die("connect", err.msg);
	return conn;
}

static void admin(const char *sql)
{
	PGconn *a = PQconnectdb(base_url);
	PGresult *res = PQexec(a, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		die(sql, PQerrorMessage(a));
	PQclear(res);
	PQfinish(a);
}

/* A fresh database with the schema. */
static void fresh_db(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn;

	admin("DROP DATABASE IF EXISTS shepherd_queue_bench WITH (FORCE)");
	admin("CREATE DATABASE shepherd_queue_bench");
	(void)snprintf(conninfo, sizeof(conninfo), "%s dbname=shepherd_queue_bench", base_url);
	conn = connect_db();
	if (shd_migrate_up(conn, schema_dir, 0, NULL, &err) < 0)
		die("migrate", err.msg);
	PQfinish(conn);
}

static void exec_plain(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		die(sql, PQerrorMessage(conn));
	PQclear(res);
}

static double seconds_since(uint64_t t0)
{
	return (double)(shp_now_monotonic_ns() - t0) / 1e9;
}

/* ---- enqueue ------------------------------------------------------------------------------ */

struct single_arg {
	int count;
};

static void *single_thread(void *p)
{
	struct single_arg *a = p;
	struct shd_job_params jp = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = connect_db();

	jp.kind = "test.noop";
	for (int i = 0; i < a->count; i++)
		if (shd_job_insert(conn, &jp, &ins, &err) < 0)
			die("insert", err.msg);
	PQfinish(conn);
	return NULL;
}

static void bench_single(int clients)
{
	pthread_t t[16];
	struct single_arg a = {.count = n_jobs / clients};
	uint64_t t0;
	double s;

	fresh_db();
	t0 = shp_now_monotonic_ns();
	for (int i = 0; i < clients; i++)
		pthread_create(&t[i], NULL, single_thread, &a);
	for (int i = 0; i < clients; i++)
		pthread_join(t[i], NULL);
	s = seconds_since(t0);
	printf("enqueue 1-by-1, %2d client(s)      %8.0f jobs/s  (%d jobs in %.2f s)\n", clients,
	       a.count * clients / s, a.count * clients, s);
}

static void insert_batched(int per_call, const char *kind)
{
	struct shd_job_params *jp = calloc((size_t)per_call, sizeof(*jp));
	struct shd_job_inserted *ins = calloc((size_t)per_call, sizeof(*ins));
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = connect_db();

	for (int i = 0; i < per_call; i++) {
		jp[i] = (struct shd_job_params)SHD_JOB_PARAMS_INIT;
		jp[i].kind = kind;
	}
	for (int done = 0; done < n_jobs; done += per_call)
		if (shd_job_insert_many(
			    conn, jp, (size_t)(n_jobs - done < per_call ? n_jobs - done : per_call),
			    ins, &err) < 0)
			die("insert_many", err.msg);
	PQfinish(conn);
	free(jp);
	free(ins);
}

static void bench_batch(int per_call)
{
	uint64_t t0;
	double s;

	fresh_db();
	t0 = shp_now_monotonic_ns();
	insert_batched(per_call, "test.noop");
	s = seconds_since(t0);
	printf("enqueue batch of %5d             %8.0f jobs/s  (%d jobs in %.2f s)\n", per_call,
	       n_jobs / s, n_jobs, s);
}

/* ---- processing --------------------------------------------------------------------------- */

static struct shd_queue *runner(int workers, int batch)
{
	struct shd_dbpool_config c = dbcfg();
	struct shd_queue_config qc = {
		.db = &c,
		.workers = workers,
		.fetch_batch = batch,
		.poll_interval_ms = 1000,
		.shutdown_grace_ms = 5000,
		.maintenance = true,
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = shd_queue_new(&qc, &err);

	if (!q || shd_jobs_test_register(q, &err) < 0)
		die("queue", err.msg);
	return q;
}

static long long count_completed(PGconn *conn)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(conn, "SELECT count(*) FROM jobs WHERE state = 'completed'", 0,
				    NULL, &err);
	long long n;

	if (!res)
		die("count", err.msg);
	n = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

static atomic_long noop_runs;

static enum shd_job_outcome run_noop_counted(struct shd_job *job, void *ctx)
{
	(void)job;
	(void)ctx;
	atomic_fetch_add(&noop_runs, 1);
	return SHD_JOB_DONE;
}

/*
 * The clock stops when the database holds n_jobs completed jobs. Counting them is a scan of the
 * table, so it is only polled once the handlers have run every job (an in-process counter):
 * polling all along would take a good part of a core from the server being measured.
 */
static void bench_process(int workers, int batch)
{
	static const struct shd_job_kind noop = {
		.name = "bench.noop", .run = run_noop_counted, .timeout_ms = 1000};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q;
	PGconn *conn;
	uint64_t t0;
	double s;

	fresh_db();
	insert_batched(1000, "bench.noop");
	conn = connect_db();
	exec_plain(conn, "VACUUM ANALYZE jobs");
	exec_plain(conn, "CHECKPOINT");
	q = runner(workers, batch);
	if (shd_queue_register(q, &noop, &err) < 0)
		die("register", err.msg);
	atomic_store(&noop_runs, 0);
	t0 = shp_now_monotonic_ns();
	if (shd_queue_start(q, &err) < 0)
		die("start", err.msg);
	while (atomic_load(&noop_runs) < n_jobs)
		usleep(1000);
	while (count_completed(conn) < n_jobs)
		usleep(1000);
	s = seconds_since(t0);
	printf("process, %2d workers, batch %4d    %8.0f jobs/s  (%d jobs in %.2f s)\n", workers,
	       batch, n_jobs / s, n_jobs, s);
	shd_queue_free(q);
	PQfinish(conn);
}

/* ---- wake-up latency ---------------------------------------------------------------------- */

static atomic_uint_fast64_t started_ns;

static enum shd_job_outcome run_stamp(struct shd_job *job, void *ctx)
{
	(void)job;
	(void)ctx;
	atomic_store(&started_ns, shp_now_monotonic_ns());
	return SHD_JOB_DONE;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bench_latency(int samples)
{
	static const struct shd_job_kind stamp = {
		.name = "bench.stamp", .run = run_stamp, .timeout_ms = 1000};
	struct shd_job_params jp = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t *lat = calloc((size_t)samples, sizeof(*lat));
	struct shd_queue *q;
	PGconn *conn;

	fresh_db();
	q = runner(10, 100);
	if (shd_queue_register(q, &stamp, &err) < 0 || shd_queue_start(q, &err) < 0)
		die("start", err.msg);
	conn = connect_db();
	jp.kind = "bench.stamp";
	usleep(300 * 1000);
	for (int i = -20; i < samples; i++) {
		uint64_t before = atomic_load(&started_ns), t0 = shp_now_monotonic_ns();

		if (shd_job_insert(conn, &jp, &ins, &err) < 0)
			die("insert", err.msg);
		while (atomic_load(&started_ns) == before)
			usleep(20);
		if (i >= 0)
			lat[i] = atomic_load(&started_ns) - t0;
		usleep(25 * 1000);
	}
	qsort(lat, (size_t)samples, sizeof(*lat), cmp_u64);
	printf("wake-up latency (%d samples)       p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f "
	       "ms\n",
	       samples, lat[samples / 2] / 1e6, lat[samples * 90 / 100] / 1e6,
	       lat[samples * 99 / 100] / 1e6, lat[samples - 1] / 1e6);
	shd_queue_free(q);
	PQfinish(conn);
	free(lat);
}

/* $SHP_BENCH_ONLY: a space-separated subset of enqueue, process and latency; unset = all. */
static bool wanted(const char *only, const char *what)
{
	return !only || !*only || strstr(only, what) != NULL;
}

int main(void)
{
	const char *url = getenv("SHP_BENCH_PGURL"), *only;

	if (!url || !*url)
		url = getenv("SHP_TEST_PGURL");
	schema_dir = getenv("SHP_SCHEMA_DIR");
	if (!url || !*url || !schema_dir)
		die("setup", "set SHP_BENCH_PGURL or SHP_TEST_PGURL, and SHP_SCHEMA_DIR");
	(void)snprintf(base_url, sizeof(base_url), "%s", url);
	if (getenv("SHP_BENCH_N"))
		n_jobs = atoi(getenv("SHP_BENCH_N"));
	if (n_jobs < 1000 || n_jobs > 10000000)
		die("setup", "SHP_BENCH_N must be 1000 to 10000000");
	shp_log_setup(SHP_LOG_WARN, SHP_LOG_LOGFMT, STDERR_FILENO);
	only = getenv("SHP_BENCH_ONLY");
	printf("shepherd queue, N = %d no-op jobs, every guarantee on\n", n_jobs);
	if (wanted(only, "enqueue")) {
		bench_single(1);
		bench_single(10);
		bench_batch(1000);
		bench_batch(10000);
	}
	if (wanted(only, "process")) {
		bench_process(10, 100);
		bench_process(10, 1000);
	}
	if (wanted(only, "latency"))
		bench_latency(200);
	return 0;
}
