/*
 * The test action set, always registered: test.noop, test.sleep (honours cancel), test.fail
 * (fails a given number of times) and test.effect (records an effect once per key in
 * test_effects, counting raw runs and runs that overlapped another holder of the same job).
 * They let tests and operators prove the queue's guarantees on a live daemon.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "json.h"
#include "queue.h"

#define SLEEP_MAX_MS (24 * 3600 * 1000)

static enum shd_job_outcome run_noop(struct shd_job *job, void *ctx)
{
	(void)job;
	(void)ctx;
	return SHD_JOB_DONE;
}

/* Sleep for ms in 10 ms steps; false when told to stop first. */
static bool sleep_steps(struct shd_job *job, int64_t ms)
{
	for (int64_t slept = 0; slept < ms; slept += 10) {
		if (shd_job_should_stop(job))
			return false;
		usleep((useconds_t)(ms - slept < 10 ? ms - slept : 10) * 1000);
	}
	return !shd_job_should_stop(job);
}

static enum shd_job_outcome run_sleep(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t ms = 0;

	(void)ctx;
	if (shp_json_get_int(job->args, "ms", true, 0, SLEEP_MAX_MS, &ms, &err) < 0) {
		(void)shd_job_fail(job, "%s", err.msg);
		return SHD_JOB_DISCARD;
	}
	if (sleep_steps(job, ms))
		return SHD_JOB_DONE;
	if (atomic_load(&job->cancel))
		return SHD_JOB_CANCEL;
	return shd_job_fail(job, "stopped by shutdown");
}

static enum shd_job_outcome run_fail(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t times = 0;

	(void)ctx;
	if (shp_json_get_int(job->args, "times", true, 0, 1000, &times, &err) < 0) {
		(void)shd_job_fail(job, "%s", err.msg);
		return SHD_JOB_DISCARD;
	}
	if (job->attempt <= times)
		return shd_job_fail(job, "planned failure %d of %" PRId64, job->attempt, times);
	return SHD_JOB_DONE;
}

static enum shd_job_outcome run_effect(struct shd_job *job, void *ctx)
{
	/* the advisory lock on the job id shows whether another worker holds the job right now */
	static const char effect_sql[] =
		"WITH lk AS (SELECT pg_try_advisory_lock($2::bigint) AS got)"
		" INSERT INTO test_effects AS e (key, job_id, overlapped)"
		" SELECT $1, $2, CASE WHEN got THEN 0 ELSE 1 END FROM lk"
		" ON CONFLICT (key) DO UPDATE SET runs = e.runs + 1,"
		"  overlapped = e.overlapped + excluded.overlapped"
		" RETURNING (SELECT got FROM lk)";
	static const char unlock_sql[] = "SELECT pg_advisory_unlock($1::bigint)";
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *key = NULL;
	int64_t hold_ms = 0;
	char id[24];
	PGconn *conn;
	bool got;

	(void)ctx;
	if (shp_json_get_string(job->args, "key", true, 255, &key, &err) < 0 ||
	    shp_json_get_int(job->args, "hold_ms", false, 0, 60000, &hold_ms, &err) < 0) {
		(void)shd_job_fail(job, "%s", err.msg);
		return SHD_JOB_DISCARD;
	}
	conn = shd_job_conn(job, &err);
	if (!conn)
		return shd_job_fail(job, "%s", err.msg);
	(void)snprintf(id, sizeof(id), "%" PRId64, job->id);
	res = shd_db_exec(conn, effect_sql, 2, (const char *[]){key, id}, &err);
	if (!res)
		return shd_job_fail(job, "recording the effect: %s", err.msg);
	got = shd_db_value(res, 0, 0)[0] == 't';
	PQclear(res);
	res = NULL;
	if (hold_ms > 0)
		(void)sleep_steps(job, hold_ms);
	if (got) {
		res = shd_db_exec(conn, unlock_sql, 1, (const char *[]){id}, &err);
		if (!res)
			return shd_job_fail(job, "releasing the job lock: %s", err.msg);
	}
	return SHD_JOB_DONE;
}

int shd_jobs_test_register(struct shd_queue *q, struct shp_error *err)
{
	static const struct shd_job_kind kinds[] = {
		{.name = "test.noop", .run = run_noop, .timeout_ms = 1000},
		{.name = "test.sleep", .run = run_sleep, .timeout_ms = 60000},
		{.name = "test.fail", .run = run_fail, .timeout_ms = 1000},
		{.name = "test.effect", .run = run_effect, .timeout_ms = 2000},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (shd_queue_register(q, &kinds[i], err) < 0)
			return -err->code;
	return 0;
}
