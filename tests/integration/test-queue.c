/*
 * Integration tests of the job queue against the server of with-postgres.sh: transactional and
 * batched enqueue, unique keys, scheduling, retries and the dead-letter state, cancel, snooze,
 * pause, lease expiry and rescue, graceful shutdown, two runners on one database, leader
 * takeover, periodic jobs, the admin functions, and the planner using the queue's indexes.
 * Each test has a database of its own. Built without Criterion (SHP_QUEUE_DRIVER) the same
 * scenarios run from a plain main(), which is how the ThreadSanitizer build runs them.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#ifdef SHP_QUEUE_DRIVER
/* a minimal stand-in for the few Criterion macros used below */
static const char *current_test;
static void drv_fail(const char *expr, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
static void drv_fail(const char *expr, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL %s (%s:%d): %s", current_test, __FILE__, line, expr);
	if (fmt[2]) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	exit(1);
}
/* the message, when there is one, starts with a string literal that ": " is joined to */
#define cr_assert(c, ...)                                                                          \
	do {                                                                                       \
		if (!(c))                                                                          \
			drv_fail(#c, __LINE__, ": " __VA_ARGS__);                                  \
	} while (0)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_log_info(...) fprintf(stderr, __VA_ARGS__)
#define Test(suite, name, ...) static void test_##name(void)
#else
#include <criterion/criterion.h>
#include <criterion/logging.h>
#endif

#include "db.h"
#include "error.h"
#include "migrate.h"
#include "queue.h"
#include "util.h"

static char dbname[64];
static char conninfo[600];
static PGconn *tc; /* the test thread's connection */

static const char *env_required(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v && *v, "%s is not set: run me under tests/helpers/with-postgres.sh", name);
	return v;
}

static void admin_exec(const char *what)
{
	PGconn *admin = PQconnectdb(env_required("SHP_TEST_PGURL"));
	char *ident, sql[200];
	PGresult *res;

	cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
	ident = PQescapeIdentifier(admin, dbname, strlen(dbname));
	(void)snprintf(sql, sizeof(sql), "%s %s%s", what, ident,
		       strncmp(what, "DROP", 4) == 0 ? " WITH (FORCE)" : "");
	res = PQexec(admin, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(admin));
	PQclear(res);
	PQfreemem(ident);
	PQfinish(admin);
}

static const struct shd_dbpool_config *dbcfg(void)
{
	static struct shd_dbpool_config c;

	c = (struct shd_dbpool_config){
		.conninfo = conninfo, .size = 1, .application_name = "test-queue"};
	return &c;
}

static void setup(void)
{
	struct shp_error err = SHP_ERROR_INIT;

	(void)snprintf(dbname, sizeof(dbname), "shp_queue_%d", (int)getpid());
	admin_exec("CREATE DATABASE");
	(void)snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", env_required("SHP_TEST_PGURL"),
		       dbname);
	tc = shd_db_connect(dbcfg(), &err);
	cr_assert(tc, "%s", err.msg);
	cr_assert_eq(shd_migrate_up(tc, env_required("SHP_SCHEMA_DIR"), 0, NULL, &err), 0, "%s",
		     err.msg);
}

static void teardown(void)
{
	if (tc)
		PQfinish(tc);
	tc = NULL;
	admin_exec("DROP DATABASE IF EXISTS");
}

#ifndef SHP_QUEUE_DRIVER
TestSuite(queue, .init = setup, .fini = teardown, .timeout = 120);
#endif

/* One value of a statement with up to two text parameters, as a number. */
static long long val(const char *sql, const char *p1, const char *p2)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(tc, sql, p2 ? 2 : p1 ? 1 : 0, (const char *[]){p1, p2}, &err);
	long long v;

	cr_assert(res, "%s: %s", sql, err.msg);
	cr_assert_eq(PQntuples(res), 1, "%s: %d rows", sql, PQntuples(res));
	v = shd_db_value(res, 0, 0) ? strtoll(shd_db_value(res, 0, 0), NULL, 10) : -1;
	PQclear(res);
	return v;
}

static const char *idstr(int64_t id)
{
	static char buf[4][24];
	static int n;

	n = (n + 1) % 4;
	(void)snprintf(buf[n], sizeof(buf[n]), "%" PRId64, id);
	return buf[n];
}

static const char *state_of(int64_t id)
{
	static char out[32];
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(tc, "SELECT state FROM jobs WHERE id = $1", 1,
				    (const char *[]){idstr(id)}, &err);

	cr_assert(res && PQntuples(res) == 1, "job %" PRId64 ": %s", id, err.msg);
	(void)snprintf(out, sizeof(out), "%s", shd_db_value(res, 0, 0));
	PQclear(res);
	return out;
}

/* Wait (at most ms) until job id is in state; assert it got there. */
static void wait_state(int64_t id, const char *state, int ms)
{
	for (int waited = 0; strcmp(state_of(id), state) != 0; waited += 20) {
		if (waited >= ms)
			cr_assert(false, "job %" PRId64 " is %s, not %s, after %d ms", id,
				  state_of(id), state, ms);
		usleep(20 * 1000);
	}
}

/* Wait until the statement's value reaches want. */
static void wait_val(const char *sql, const char *p1, long long want, int ms)
{
	for (int waited = 0; val(sql, p1, NULL) != want; waited += 20) {
		if (waited >= ms)
			cr_assert(false, "%s is %lld, not %lld, after %d ms", sql,
				  val(sql, p1, NULL), want, ms);
		usleep(20 * 1000);
	}
}

static atomic_int snooze_runs;
static atomic_int heartbeat_codes[3];

static enum shd_job_outcome run_snoozer(struct shd_job *job, void *ctx)
{
	(void)ctx;
	if (atomic_fetch_add(&snooze_runs, 1) == 0)
		return shd_job_snooze(job, 200);
	return SHD_JOB_DONE;
}

/* Renew more often than the SLA class allows: the last renewal is refused. */
static enum shd_job_outcome run_heartbeater(struct shd_job *job, void *ctx)
{
	(void)ctx;
	for (int i = 0; i < 3; i++) {
		struct shp_error err = SHP_ERROR_INIT;

		atomic_store(&heartbeat_codes[i],
			     shd_job_heartbeat(job, &err) < 0 ? (int)err.code : 0);
	}
	return SHD_JOB_DONE;
}

/* A runner with test-friendly timings; fields of `over` that are set win. */
static struct shd_queue *start_queue(const struct shd_queue_config *over)
{
	struct shd_queue_config qc = {
		.db = dbcfg(),
		.workers = 4,
		.fetch_batch = 50,
		.poll_interval_ms = 100,
		.shutdown_grace_ms = 2000,
		.retry_base_ms = 10,
		.retry_max_ms = 200,
		.maintenance = true,
		.leader_ttl_ms = 2000,
		.maint_interval_ms = 50,
		.rescue_interval_ms = 100,
	};
	static const struct shd_job_kind extra[] = {
		{.name = "t.snooze", .run = run_snoozer, .timeout_ms = 1000},
		{.name = "t.heartbeat", .run = run_heartbeater, .timeout_ms = 1000},
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q;

	if (over) {
		qc.workers = over->workers ?: qc.workers;
		qc.fetch_batch = over->fetch_batch ?: qc.fetch_batch;
		qc.shutdown_grace_ms = over->shutdown_grace_ms ?: qc.shutdown_grace_ms;
		qc.leader_ttl_ms = over->leader_ttl_ms ?: qc.leader_ttl_ms;
		qc.worker_id = over->worker_id;
		qc.maintenance = !over->worker_id || strcmp(over->worker_id, "no-maintenance") != 0;
	}
	q = shd_queue_new(&qc, &err);
	cr_assert(q, "%s", err.msg);
	cr_assert_eq(shd_jobs_test_register(q, &err), 0, "%s", err.msg);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(extra); i++)
		cr_assert_eq(shd_queue_register(q, &extra[i], &err), 0, "%s", err.msg);
	cr_assert_eq(shd_queue_start(q, &err), 0, "%s", err.msg);
	return q;
}

static int64_t enqueue(const char *kind, const char *args, const char *unique_key)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;

	p.kind = kind;
	p.args = args;
	p.unique_key = unique_key;
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), 0, "%s", err.msg);
	return ins.id;
}

/* ---- enqueue ------------------------------------------------------------------------------ */

Test(queue, transactional_enqueue)
{
	struct shd_queue *q = start_queue(NULL);
	struct shp_error err = SHP_ERROR_INIT;
	int64_t id;

	cr_assert_eq(shd_db_begin(tc, &err), 0);
	id = enqueue("test.noop", NULL, NULL);
	shd_db_rollback(tc);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1", idstr(id), NULL), 0);
	usleep(300 * 1000);
	cr_assert_eq(val("SELECT count(*) FROM jobs", NULL, NULL), 0, "a rolled-back job exists");

	cr_assert_eq(shd_db_begin(tc, &err), 0);
	id = enqueue("test.noop", "{\"n\": 1}", NULL);
	cr_assert_eq(shd_db_commit(tc, &err), 0, "%s", err.msg);
	wait_state(id, "completed", 15000);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(id), NULL), 1);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND finalized_at IS NOT NULL",
			 idstr(id), NULL),
		     1);
	shd_queue_free(q);
}

Test(queue, batch_insert)
{
	enum { N = 1000 };
	static struct shd_job_params p[N];
	static struct shd_job_inserted ins[N];
	static char args[N][32];
	static const char *const tags[] = {"batch", NULL};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q;

	for (int i = 0; i < N; i++) {
		p[i] = (struct shd_job_params)SHD_JOB_PARAMS_INIT;
		p[i].kind = "test.noop";
		(void)snprintf(args[i], sizeof(args[i]), "{\"i\": %d}", i);
		p[i].args = args[i];
		p[i].priority = i % 101;
		p[i].tags = tags;
	}
	cr_assert_eq(shd_job_insert_many(tc, p, N, ins, &err), 0, "%s", err.msg);
	for (int i = 0; i < N; i++) {
		cr_assert(!ins[i].duplicate);
		cr_assert_eq(val("SELECT (args->>'i')::int FROM jobs WHERE id = $1",
				 idstr(ins[i].id), NULL),
			     i, "row %d has its own id", i);
	}
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE tags = '{batch}'", NULL, NULL), N);
	cr_assert_eq(shd_job_insert_many(tc, p, 0, ins, &err), -SHP_E_LIMIT);
	{
		/* tags that need quoting inside the nested array literals; a job without tags */
		static const char *const odd[] = {"a\"b", "c,d", "{e}", "f\\g", "NULL", NULL};
		struct shd_job_params two[2] = {SHD_JOB_PARAMS_INIT, SHD_JOB_PARAMS_INIT};

		two[0].kind = two[1].kind = "t.none";
		two[0].tags = odd;
		cr_assert_eq(shd_job_insert_many(tc, two, 2, ins, &err), 0, "%s", err.msg);
		cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND tags = ARRAY['a\"b',"
				 " 'c,d', '{e}', 'f\\g', 'NULL']",
				 idstr(ins[0].id), NULL),
			     1);
		cr_assert_eq(val("SELECT cardinality(tags) FROM jobs WHERE id = $1",
				 idstr(ins[1].id), NULL),
			     0);
		cr_assert_eq(val("WITH d AS (DELETE FROM jobs WHERE kind = 't.none' RETURNING 1)"
				 " SELECT count(*) FROM d",
				 NULL, NULL),
			     2);
	}
	{
		/* columns the same for every job travel once and are repeated for each row */
		struct shd_job_params same[3];

		for (int i = 0; i < 3; i++) {
			same[i] = (struct shd_job_params)SHD_JOB_PARAMS_INIT;
			same[i].kind = "t.none";
			same[i].queue = "q2";
			same[i].args = "{\"a\": 1}";
			same[i].metadata = "{\"m\": 2}";
			same[i].priority = 7;
			same[i].sla = SHD_SLA_FAST;
		}
		cr_assert_eq(shd_job_insert_many(tc, same, 3, ins, &err), 0, "%s", err.msg);
		cr_assert_eq(
			val("WITH d AS (DELETE FROM jobs WHERE kind = 't.none' AND queue = 'q2'"
			    " AND args = '{\"a\": 1}' AND metadata = '{\"m\": 2}' AND priority = 7"
			    " AND sla_class = 'fast' AND max_attempts = 3 AND tags = '{}'"
			    " AND unique_key IS NULL AND state = 'available' RETURNING 1)"
			    " SELECT count(*) FROM d",
			    NULL, NULL),
			3);
	}
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE queue = 'default' AND metadata = '{}'"
			 " AND max_attempts = 5 AND sla_class = 'medium'",
			 NULL, NULL),
		     N);
	q = start_queue(NULL);
	wait_val("SELECT count(*) FROM jobs WHERE state = 'completed'", NULL, N, 20000);
	shd_queue_free(q);
}

Test(queue, unique_key_duplicate)
{
	struct shd_job_params p[3] = {SHD_JOB_PARAMS_INIT, SHD_JOB_PARAMS_INIT,
				      SHD_JOB_PARAMS_INIT};
	struct shd_job_inserted ins[3];
	struct shp_error err = SHP_ERROR_INIT;
	int64_t a = enqueue("test.noop", NULL, "k1"), b = enqueue("test.noop", NULL, "k1");

	cr_assert_eq(a, b, "a duplicate returns the existing job");
	cr_assert_eq(val("SELECT count(*) FROM jobs", NULL, NULL), 1);
	/* within one batch, and against an existing job */
	for (int i = 0; i < 3; i++)
		p[i].kind = "test.noop";
	p[0].unique_key = "k2";
	p[1].unique_key = "k2";
	p[2].unique_key = "k1";
	cr_assert_eq(shd_job_insert_many(tc, p, 3, ins, &err), 0, "%s", err.msg);
	cr_assert(!ins[0].duplicate);
	cr_assert(ins[1].duplicate);
	cr_assert_eq(ins[1].id, ins[0].id);
	cr_assert(ins[2].duplicate);
	cr_assert_eq(ins[2].id, a);
	/* a cancelled job releases its key */
	cr_assert_eq(shd_job_cancel(tc, a, NULL, &err), 0, "%s", err.msg);
	cr_assert_neq(enqueue("test.noop", NULL, "k1"), a);
}

Test(queue, scheduled_not_run_early)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue(NULL);

	p.kind = "test.noop";
	p.run_at_us = shp_now_realtime_us() + 3000000; /* 2 s to spare after the check below */
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), 0, "%s", err.msg);
	cr_assert_str_eq(state_of(ins.id), "scheduled");
	usleep(1000 * 1000);
	cr_assert_str_eq(state_of(ins.id), "scheduled");
	wait_state(ins.id, "completed", 15000);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND attempted_at >= scheduled_at",
			 idstr(ins.id), NULL),
		     1, "it ran at or after its time");
	shd_queue_free(q);
}

/* ---- retries, dead letters, cancel, snooze, pause ------------------------------------------ */

Test(queue, retry_with_backoff_then_success)
{
	struct shd_queue *q = start_queue(NULL);
	int64_t id = enqueue("test.fail", "{\"times\": 2}", NULL);

	wait_state(id, "completed", 15000);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(id), NULL), 3);
	cr_assert_eq(val("SELECT cardinality(errors) FROM jobs WHERE id = $1", idstr(id), NULL), 2);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND errors[2]->>'error' = "
			 "'planned failure 2 of 2' AND (errors[2]->>'attempt')::int = 2",
			 idstr(id), NULL),
		     1);
	shd_queue_free(q);
}

Test(queue, dead_letter_then_retry)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue(NULL);
	json_t *job;

	p.kind = "test.fail";
	p.args = "{\"times\": 3}";
	p.sla = SHD_SLA_FAST; /* 3 attempts */
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), 0, "%s", err.msg);
	wait_state(ins.id, "discarded", 15000);
	job = shd_job_get(tc, ins.id, &err);
	cr_assert(job, "%s", err.msg);
	cr_assert_eq(json_integer_value(json_object_get(job, "attempt")), 3);
	cr_assert_eq(json_array_size(json_object_get(job, "errors")), 3, "the error history");
	cr_assert(json_is_string(json_object_get(job, "finalized_at")));
	json_decref(job);

	/* retry from the dead-letter state: attempt kept, one more allowed, and it succeeds */
	cr_assert_eq(shd_job_retry(tc, ins.id, &err), 0, "%s", err.msg);
	wait_state(ins.id, "completed", 15000);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(ins.id), NULL), 4);
	cr_assert_eq(shd_job_retry(tc, ins.id, &err), -SHP_E_CONFLICT, "a completed job stays");
	cr_assert_eq(shd_job_retry(tc, 999999, &err), -SHP_E_NOTFOUND);
	shd_queue_free(q);
}

Test(queue, cancel_queued_and_running)
{
	struct shp_error err = SHP_ERROR_INIT;
	enum shd_job_state st;
	struct shd_queue *q;
	int64_t queued = enqueue("test.noop", NULL, NULL), running;

	cr_assert_eq(shd_job_cancel(tc, queued, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st, SHD_JOB_CANCELLED, "a queued job is cancelled at once");
	cr_assert_eq(shd_job_cancel(tc, queued, &st, &err), 0, "cancel is idempotent");
	cr_assert_eq(st, SHD_JOB_CANCELLED);

	q = start_queue(NULL);
	running = enqueue("test.sleep", "{\"ms\": 60000}", NULL);
	wait_state(running, "running", 15000);
	cr_assert_eq(shd_job_cancel(tc, running, &st, &err), 0, "%s", err.msg);
	cr_assert_eq(st, SHD_JOB_RUNNING, "a running job is told, not stopped by force");
	wait_state(running, "cancelled", 15000);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'completed'", NULL, NULL), 0);
	cr_assert_eq(shd_job_cancel(tc, 424242, &st, &err), -SHP_E_NOTFOUND);
	shd_queue_free(q);
}

Test(queue, snooze_does_not_count_an_attempt)
{
	struct shd_queue *q = start_queue(NULL);
	int64_t id = enqueue("t.snooze", NULL, NULL);

	wait_state(id, "completed", 15000);
	cr_assert_eq(atomic_load(&snooze_runs), 2);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(id), NULL), 1);
	shd_queue_free(q);
}

Test(queue, pause_and_resume)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue(NULL);
	json_t *stats;

	cr_assert_eq(shd_queue_pause(tc, "slow", &err), 0, "%s", err.msg);
	cr_assert_eq(shd_queue_pause(tc, "slow", &err), 0, "pause is idempotent");
	p.kind = "test.noop";
	p.queue = "slow";
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), 0, "%s", err.msg);
	usleep(500 * 1000);
	cr_assert_str_eq(state_of(ins.id), "available");
	stats = shd_queue_stats(tc, &err);
	cr_assert(stats, "%s", err.msg);
	cr_assert(json_is_true(json_object_get(
		json_object_get(json_object_get(stats, "queues"), "slow"), "paused")));
	cr_assert_eq(
		json_integer_value(json_object_get(
			json_object_get(json_object_get(stats, "queues"), "slow"), "available")),
		1);
	json_decref(stats);
	cr_assert_eq(shd_queue_resume(tc, "slow", &err), 0, "%s", err.msg);
	wait_state(ins.id, "completed", 15000);
	shd_queue_free(q);
}

Test(queue, heartbeat_limited_by_sla)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue(NULL);

	p.kind = "t.heartbeat";
	p.sla = SHD_SLA_FAST; /* one renewal */
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), 0, "%s", err.msg);
	wait_state(ins.id, "completed", 15000);
	cr_assert_eq(atomic_load(&heartbeat_codes[0]), 0);
	cr_assert_eq(atomic_load(&heartbeat_codes[1]), SHP_E_LIMIT);
	cr_assert_eq(val("SELECT lease_renewals FROM jobs WHERE id = $1", idstr(ins.id), NULL), 1);
	shd_queue_free(q);
}

/* ---- leases, rescue, shutdown ------------------------------------------------------------- */

Test(queue, expired_lease_is_rescued_and_fenced)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t id = enqueue("test.effect", "{\"key\": \"rescued\"}", NULL);
	PGresult *res;
	char fence[64];
	struct shd_queue *q;

	/* a worker that claims the job with a short lease (2 s: a loaded machine may take a while
	 * to start the runner below, which must find it still running) and dies */
	res = shd_db_exec(tc,
			  "UPDATE jobs SET state = 'running', attempt = attempt + 1,"
			  " attempted_at = now(), attempted_by = '{dead}',"
			  " lease_expires_at = now() + interval '2 seconds'"
			  " WHERE id = $1 RETURNING attempted_at",
			  1, (const char *[]){idstr(id)}, &err);
	cr_assert(res && PQntuples(res) == 1, "%s", err.msg);
	(void)snprintf(fence, sizeof(fence), "%s", shd_db_value(res, 0, 0));
	PQclear(res);

	q = start_queue(NULL);
	usleep(150 * 1000);
	cr_assert_str_eq(state_of(id), "running", "nobody else runs a leased job");
	wait_state(id, "completed", 15000);
	cr_assert_eq(val("SELECT rescues FROM jobs WHERE id = $1", idstr(id), NULL), 1);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(id), NULL), 2);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND attempted_by[1] = 'dead'"
			 " AND attempted_by[2] = $2 AND errors[1]->>'error' LIKE 'lease expired%'"
			 " AND errors[1]->>'worker' = 'dead'",
			 idstr(id), shd_queue_worker_id(q)),
		     1);
	cr_assert_eq(val("SELECT count(*) FROM test_effects WHERE key = 'rescued'", NULL, NULL), 1);

	/* the dead worker's late completion does not overwrite anything */
	{
		char ids[32], data[200];

		(void)snprintf(ids, sizeof(ids), "{%s}", idstr(id));
		(void)snprintf(data, sizeof(data),
			       "{\"%s\": {\"s\": \"discarded\", \"f\": \"%s\", \"e\": \"late\"}}",
			       idstr(id), fence);
		res = shd_db_exec(tc, shd_queue_sql("complete"), 3,
				  (const char *[]){ids, data, "dead"}, &err);
	}
	cr_assert(res, "%s", err.msg);
	cr_assert_eq(PQntuples(res), 0, "the old lease holder cannot complete the job");
	PQclear(res);
	cr_assert_str_eq(state_of(id), "completed");
	shd_queue_free(q);
}

Test(queue, graceful_shutdown_requeues_long_job)
{
	struct shd_queue_config over = {.shutdown_grace_ms = 200};
	struct shd_queue *q = start_queue(&over);
	int64_t id = enqueue("test.sleep", "{\"ms\": 60000}", NULL), quick;
	uint64_t t0;

	wait_state(id, "running", 15000);
	quick = enqueue("test.sleep", "{\"ms\": 50}", NULL);
	wait_state(quick, "completed", 15000);
	t0 = shp_now_monotonic_ns();
	shd_queue_free(q);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 3000000000ull, "shutdown waits only the grace");
	cr_assert_str_eq(state_of(id), "available");
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(id), NULL), 0,
		     "the interrupted attempt is not counted");
	cr_assert_eq(val("SELECT coalesce(cardinality(errors), 0) FROM jobs WHERE id = $1",
			 idstr(id), NULL),
		     0);
	/* a new runner picks it up */
	q = start_queue(NULL);
	wait_state(id, "running", 15000);
	shd_queue_free(q);
}

/* ---- two runners -------------------------------------------------------------------------- */

Test(queue, two_runners_exactly_once)
{
	enum { N = 5000, BATCH = 1000 };
	static struct shd_job_params p[BATCH];
	static struct shd_job_inserted ins[BATCH];
	static char args[BATCH][48];
	struct shd_queue_config over = {.workers = 8, .fetch_batch = 100};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *a = start_queue(&over), *b = start_queue(&over);

	for (int base = 0; base < N; base += BATCH) {
		for (int i = 0; i < BATCH; i++) {
			p[i] = (struct shd_job_params)SHD_JOB_PARAMS_INIT;
			p[i].kind = "test.effect";
			(void)snprintf(args[i], sizeof(args[i]), "{\"key\": \"e%d\"}", base + i);
			p[i].args = args[i];
		}
		cr_assert_eq(shd_job_insert_many(tc, p, BATCH, ins, &err), 0, "%s", err.msg);
	}
	wait_val("SELECT count(*) FROM jobs WHERE state = 'completed'", NULL, N, 60000);
	cr_assert_eq(val("SELECT count(*) FROM test_effects", NULL, NULL), N,
		     "every key an effect");
	cr_assert_eq(val("SELECT count(*) FROM test_effects WHERE runs <> 1", NULL, NULL), 0,
		     "every job ran once");
	cr_assert_eq(val("SELECT sum(overlapped) FROM test_effects", NULL, NULL), 0,
		     "no job was held by two workers at once");
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE attempt <> 1", NULL, NULL), 0);
	cr_assert_eq(val("SELECT count(DISTINCT attempted_by[1]) FROM jobs", NULL, NULL), 2,
		     "both runners took jobs");
	shd_queue_free(a);
	shd_queue_free(b);
}

Test(queue, leader_takeover_after_expiry)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *a, *b;
	bool leader = false;
	int waited = 0;

	/* a leader that dies: its row expires in 2 s (the check below comes well before) */
	cr_assert_eq(shd_queue_elect(tc, "shepherd", "ghost", 2000, &leader, &err), 0, "%s",
		     err.msg);
	cr_assert(leader);
	a = start_queue(NULL);
	usleep(200 * 1000);
	cr_assert(!shd_queue_is_leader(a), "no takeover before the row expires");
	while (!shd_queue_is_leader(a) && waited < 10000) {
		usleep(20 * 1000);
		waited += 20;
	}
	cr_assert(shd_queue_is_leader(a), "takeover after the row expired");
	cr_assert_eq(val("SELECT count(*) FROM leader WHERE leader_id = $1", shd_queue_worker_id(a),
			 NULL),
		     1);
	b = start_queue(NULL);
	usleep(300 * 1000);
	cr_assert(!shd_queue_is_leader(b), "one leader at a time");
	shd_queue_free(a); /* resigns */
	for (waited = 0; !shd_queue_is_leader(b) && waited < 10000; waited += 20)
		usleep(20 * 1000);
	cr_assert(shd_queue_is_leader(b), "the other runner takes over");
	shd_queue_free(b);
	cr_assert_eq(val("SELECT count(*) FROM leader", NULL, NULL), 0);
}

Test(queue, runner_without_maintenance_never_leads)
{
	struct shd_queue_config over = {.worker_id = "no-maintenance"};
	struct shd_queue *q = start_queue(&over);
	int64_t id = enqueue("test.noop", NULL, NULL);

	wait_state(id, "completed", 15000);
	usleep(300 * 1000);
	cr_assert(!shd_queue_is_leader(q));
	cr_assert_eq(val("SELECT count(*) FROM leader", NULL, NULL), 0);
	shd_queue_free(q);
}

/* ---- periodic jobs, cleaner, admin -------------------------------------------------------- */

Test(queue, periodic_schedule)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t start = 0;
	bool enq = false;

	cr_assert_eq(shd_periodic_due("@every 60s", 1000000, &start, &err), 0);
	cr_assert_eq(start, 999960);
	cr_assert_eq(shd_periodic_due("@daily 03:00", 86400 * 10 + 3 * 3600 + 5, &start, &err), 0);
	cr_assert_eq(start, 86400 * 10 + 3 * 3600);
	cr_assert_eq(shd_periodic_due("@daily 03:00", 86400 * 10 + 2 * 3600, &start, &err), 1,
		     "not due long after yesterday's run");
	cr_assert_eq(shd_periodic_due("@daily 24:00", 0, &start, &err), -SHP_E_INVAL);
	cr_assert_eq(shd_periodic_due("*/5 * * * *", 0, &start, &err), -SHP_E_INVAL);

	cr_assert_eq(shd_queue_periodic_enqueue(tc, "beat", "@every 60s", "test.noop", NULL,
						1000000, &enq, &err),
		     0, "%s", err.msg);
	cr_assert(enq);
	cr_assert_eq(shd_queue_periodic_enqueue(tc, "beat", "@every 60s", "test.noop", NULL,
						1000010, &enq, &err),
		     0);
	cr_assert(!enq, "a second leader does not enqueue the same period");
	cr_assert_eq(shd_queue_periodic_enqueue(tc, "beat", "@every 60s", "test.noop", NULL,
						1000060, &enq, &err),
		     0);
	cr_assert(enq, "the next period gets its job");
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE unique_key LIKE 'periodic:beat:%'", NULL,
			 NULL),
		     2);
}

Test(queue, cleaner_deletes_old_finished_jobs)
{
	struct shp_error err = SHP_ERROR_INIT;
	int n = 0;

	cr_assert_eq(
		shd_db_command(tc,
			       "INSERT INTO jobs (kind, state, max_attempts, finalized_at)"
			       " SELECT 'test.noop', s::job_state, 3, now() - a * interval '1 hour'"
			       " FROM unnest($1::text[], $2::int[]) AS t(s, a)",
			       2,
			       (const char *[]){"{completed,completed,discarded,discarded,"
						"cancelled}",
						"{1,25,25,200,200}"},
			       &err),
		0, "%s", err.msg);
	cr_assert_eq(shd_queue_clean(tc, 86400, 7 * 86400, 100, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 3);
	cr_assert_eq(val("SELECT count(*) FROM jobs", NULL, NULL), 2);
}

Test(queue, admin_get_list_discard)
{
	struct shd_job_filter f = {.state = SHD_JOB_AVAILABLE, .kind = "test.noop", .limit = 2};
	struct shp_error err = SHP_ERROR_INIT;
	int64_t ids[5];
	json_t *page;

	for (int i = 0; i < 5; i++)
		ids[i] = enqueue("test.noop", NULL, NULL);
	page = shd_job_list(tc, &f, &err);
	cr_assert(page, "%s", err.msg);
	cr_assert_eq(json_array_size(json_object_get(page, "jobs")), 2);
	cr_assert_eq(json_integer_value(json_object_get(
			     json_array_get(json_object_get(page, "jobs"), 0), "id")),
		     ids[4]);
	f.before_id = json_integer_value(json_object_get(page, "next_before_id"));
	json_decref(page);
	cr_assert_eq(f.before_id, ids[3]);
	f.limit = 10;
	page = shd_job_list(tc, &f, &err);
	cr_assert(page, "%s", err.msg);
	cr_assert_eq(json_array_size(json_object_get(page, "jobs")), 3);
	cr_assert(json_is_null(json_object_get(page, "next_before_id")));
	json_decref(page);
	f.limit = SHD_JOB_LIST_MAX + 1;
	cr_assert(!shd_job_list(tc, &f, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);

	cr_assert_eq(shd_job_discard(tc, ids[0], &err), 0, "%s", err.msg);
	cr_assert_str_eq(state_of(ids[0]), "discarded");
	cr_assert_eq(shd_job_discard(tc, ids[0], &err), -SHP_E_CONFLICT);
	cr_assert(!shd_job_get(tc, 777777, &err));
	cr_assert_eq(err.code, SHP_E_NOTFOUND);
}

Test(queue, unknown_kind_and_unparsable_args)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q;
	int64_t unknown = enqueue("no.such.kind", NULL, NULL), deep;
	PGresult *res;

	/* a row written by hand with args nested deeper than jansson parses */
	res = shd_db_exec(tc,
			  "INSERT INTO jobs (kind, max_attempts, args) VALUES ('test.noop', 3,"
			  " ('{\"a\": ' || repeat('[', 3000) || repeat(']', 3000) || '}')::jsonb)"
			  " RETURNING id",
			  0, NULL, &err);
	cr_assert(res && PQntuples(res) == 1, "%s", err.msg);
	deep = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	PQclear(res);
	q = start_queue(NULL);
	wait_state(deep, "discarded", 15000);
	cr_assert_eq(val("SELECT count(*) FROM jobs WHERE id = $1 AND errors[1]->>'error' ="
			 " 'the job''s args cannot be parsed'",
			 idstr(deep), NULL),
		     1);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(deep), NULL), 1);
	wait_state(unknown, "discarded", 15000);
	cr_assert_eq(val("SELECT attempt FROM jobs WHERE id = $1", idstr(unknown), NULL), 5,
		     "an unknown kind is retried like a failure");
	shd_queue_free(q);
}

Test(queue, bad_parameters_refused)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), -SHP_E_INVAL, "kind is required");
	p.kind = "test.noop";
	p.args = "[1]";
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), -SHP_E_MALFORMED, "args is an object");
	p.args = NULL;
	p.priority = 101;
	cr_assert_eq(shd_job_insert(tc, &p, &ins, &err), -SHP_E_INVAL);
	cr_assert_eq(val("SELECT count(*) FROM jobs", NULL, NULL), 0);
}

/* ---- the planner uses the queue's indexes -------------------------------------------------- */

/* EXPLAIN the statement `name` with args under a plan cache mode; it must use index. */
static void expect_index(const char *name, const char *args, const char *mode, const char *index)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res;
	char sql[200];
	bool found = false;

	cr_assert_eq(shd_db_command(tc, "SELECT set_config('plan_cache_mode', $1, false)", 1,
				    (const char *[]){mode}, &err),
		     0, "%s", err.msg);
	res = PQprepare(tc, name, shd_queue_sql(name), 0, NULL);
	cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(tc));
	PQclear(res);
	(void)snprintf(sql, sizeof(sql), "EXPLAIN EXECUTE \"%s\"(%s)", name, args);
	res = PQexec(tc, sql);
	cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(tc));
	for (int i = 0; i < PQntuples(res); i++)
		found |= strstr(PQgetvalue(res, i, 0), index) != NULL;
	if (!found)
		for (int i = 0; i < PQntuples(res); i++)
			cr_log_info("%s\n", PQgetvalue(res, i, 0));
	PQclear(res);
	(void)snprintf(sql, sizeof(sql), "DEALLOCATE \"%s\"", name);
	PQclear(PQexec(tc, sql));
	cr_assert(found, "the %s statement uses %s (%s)", name, index, mode);
}

/* Both plan modes: the runner's sessions use generic plans for the claim and the completions. */
static void expect_index_any_plan(const char *name, const char *args, const char *index)
{
	expect_index(name, args, "force_custom_plan", index);
	expect_index(name, args, "force_generic_plan", index);
}

/* A backlog of available jobs only, one queue: every estimate from the statistics is exact. */
static void expect_claim_on_backlog(void)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(tc,
				    "INSERT INTO jobs (kind, max_attempts) SELECT 'test.noop', 3"
				    " FROM generate_series(1, $1::int)",
				    1, (const char *[]){"20000"}, &err),
		     0, "%s", err.msg);
	cr_assert_eq(shd_db_command(tc, "ANALYZE jobs", 0, NULL, &err), 0, "%s", err.msg);
	expect_index_any_plan("claim", "100, 'w', '{test.noop}', '{1000}', 1000", "jobs_fetch_idx");
	expect_index_any_plan("claim-queues",
			      "100, 'w', '{test.noop}', '{1000}', 1000, '{default}'",
			      "jobs_fetch_idx");
	/* a thousand claimed since the statistics saw none running: completions still go by id */
	cr_assert_eq(
		shd_db_command(tc,
			       "UPDATE jobs SET state = 'running', attempted_at = now(),"
			       " lease_expires_at = now() + interval '1 minute' WHERE id <= $1",
			       1, (const char *[]){"1000"}, &err),
		0, "%s", err.msg);
	expect_index_any_plan("done", "'{1,2,3}', now()", "jobs_pkey");
	expect_index_any_plan("complete", "'{1,2,3}', '{}', 'w'", "jobs_pkey");
	cr_assert_eq(shd_db_command(tc, "TRUNCATE jobs", 0, NULL, &err), 0, "%s", err.msg);
}

Test(queue, statements_use_their_indexes)
{
	struct shp_error err = SHP_ERROR_INIT;

	expect_claim_on_backlog();
	/* a realistic table: mostly finished jobs, a few in each live state */
	cr_assert_eq(shd_db_command(
			     tc,
			     "INSERT INTO jobs (kind, state, max_attempts, priority,"
			     " scheduled_at, finalized_at, attempted_at, lease_expires_at)"
			     " SELECT 'test.noop', st, 3, g % 101,"
			     "  now() + CASE WHEN st IN ('scheduled', 'retryable')"
			     "   THEN interval '1 hour' ELSE interval '0' END,"
			     "  CASE WHEN st IN ('completed', 'cancelled', 'discarded')"
			     "   THEN now() - (g % 48) * interval '1 hour' END,"
			     "  CASE WHEN st = 'running' THEN now() END,"
			     "  CASE WHEN st = 'running' THEN now() + interval '1 minute' END"
			     " FROM generate_series(1, $1::int) g,"
			     "  LATERAL (SELECT (CASE WHEN g % 50 = 0 THEN 'available'"
			     "   WHEN g % 50 = 1 THEN 'scheduled' WHEN g % 50 = 2 THEN 'retryable'"
			     "   WHEN g % 50 = 3 THEN 'running' WHEN g % 50 = 4 THEN 'discarded'"
			     "   ELSE 'completed' END)::job_state AS st) s",
			     1, (const char *[]){"100000"}, &err),
		     0, "%s", err.msg);
	cr_assert_eq(shd_db_command(tc, "ANALYZE jobs", 0, NULL, &err), 0, "%s", err.msg);
	expect_index_any_plan("claim", "100, 'w', '{test.noop}', '{1000}', 1000", "jobs_fetch_idx");
	expect_index_any_plan("claim", "100, 'w', '{test.noop}', '{1000}', 1000", "Tid Scan");
	expect_index_any_plan("claim-queues",
			      "100, 'w', '{test.noop}', '{1000}', 1000, '{default}'",
			      "jobs_fetch_idx");
	expect_index_any_plan("done", "'{1,2,3}', now()", "jobs_pkey");
	expect_index_any_plan("complete", "'{1,2,3}', '{}', 'w'", "jobs_pkey");
	expect_index("rescue", "1000", "force_custom_plan", "jobs_rescuer_idx");
	expect_index("schedule", "1000", "force_custom_plan", "jobs_scheduler_idx");
	expect_index("clean", "86400, 604800, 1000", "force_custom_plan", "jobs_cleaner_idx");
}

#ifdef SHP_QUEUE_DRIVER
/* Every test, in order, for sanitizer builds where Criterion does not start. */
static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{"transactional_enqueue", test_transactional_enqueue},
	{"batch_insert", test_batch_insert},
	{"unique_key_duplicate", test_unique_key_duplicate},
	{"scheduled_not_run_early", test_scheduled_not_run_early},
	{"retry_with_backoff_then_success", test_retry_with_backoff_then_success},
	{"dead_letter_then_retry", test_dead_letter_then_retry},
	{"cancel_queued_and_running", test_cancel_queued_and_running},
	{"snooze_does_not_count_an_attempt", test_snooze_does_not_count_an_attempt},
	{"pause_and_resume", test_pause_and_resume},
	{"heartbeat_limited_by_sla", test_heartbeat_limited_by_sla},
	{"expired_lease_is_rescued_and_fenced", test_expired_lease_is_rescued_and_fenced},
	{"graceful_shutdown_requeues_long_job", test_graceful_shutdown_requeues_long_job},
	{"two_runners_exactly_once", test_two_runners_exactly_once},
	{"leader_takeover_after_expiry", test_leader_takeover_after_expiry},
	{"runner_without_maintenance_never_leads", test_runner_without_maintenance_never_leads},
	{"unknown_kind_and_unparsable_args", test_unknown_kind_and_unparsable_args},
	{"periodic_schedule", test_periodic_schedule},
	{"cleaner_deletes_old_finished_jobs", test_cleaner_deletes_old_finished_jobs},
	{"admin_get_list_discard", test_admin_get_list_discard},
	{"bad_parameters_refused", test_bad_parameters_refused},
	{"statements_use_their_indexes", test_statements_use_their_indexes},
};

int main(void)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(scenarios); i++) {
		current_test = scenarios[i].name;
		setup();
		scenarios[i].fn();
		teardown();
		printf("ok %zu - %s\n", i + 1, scenarios[i].name);
	}
	return 0;
}
#else
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	/* each test has its own database; two at a time keep within max_connections */
	criterion_options.jobs = 2;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
#endif
