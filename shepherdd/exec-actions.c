/*
 * The actions a plan's steps may name, and the helpers actions use. The VM actions live in
 * exec-vm.c; this is the test set, which stays available to tests:
 *   test.noop    read    does nothing
 *   test.sleep   read    {"ms": N} sleeps N ms (honours the step's deadline)
 *   test.fail    read    {"times": N} fails transiently on its first N runs;
 *                        {"permanent": true} fails for good
 *   test.effect  modify  {"key": K, "ms": N} records effect K once (create-if-absent), counting
 *                        runs and overlapping runs in test_effects, then sleeps N ms
 *   test.deploy  deploy  {"ms": N} sleeps N ms
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define SLEEP_MAX_MS (3600 * 1000)
#define SLICE_MS 10

static uint64_t now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int shd_step_sleep(struct shd_step_ctx *s, int64_t ms, struct shp_error *err)
{
	uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
	uint64_t beat = now_ns();
	struct timespec slice = {.tv_nsec = SLICE_MS * 1000000L};

	for (uint64_t t = now_ns(); t < end; t = now_ns()) {
		if (t >= s->deadline_ns)
			return shp_error_set(err, SHP_E_TIMEOUT, "step %d ran past its deadline",
					     s->step_index);
		if (s->job && atomic_load(&s->job->abandoned))
			return shp_error_set(err, SHP_E_UNAVAIL, "the daemon is shutting down");
		/* keep the lease: a heartbeat every 5 s is well inside every SLA's lease */
		if (s->job && t - beat > 5000000000u) {
			struct shp_error herr = SHP_ERROR_INIT;
			beat = t;
			if (shd_job_heartbeat(s->job, &herr) < 0 && herr.code == SHP_E_CONFLICT)
				return shp_error_set(err, SHP_E_UNAVAIL,
						     "the job's lease was lost");
		}
		if (end - t < (uint64_t)SLICE_MS * 1000000u)
			slice.tv_nsec = (long)(end - t);
		(void)nanosleep(&slice, NULL);
	}
	return 0;
}

static int64_t param_ms(const json_t *params)
{
	const json_t *v = json_object_get(params, "ms");

	return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

static int get_ms(const struct shd_step_ctx *s, int64_t *ms, struct shp_error *err)
{
	return shp_json_get_int(s->params, "ms", false, 0, SLEEP_MAX_MS, ms, err);
}

static int64_t estimate_small(const json_t *params, size_t ntargets)
{
	(void)params;
	return 1 + (int64_t)ntargets;
}

static int64_t estimate_ms(const json_t *params, size_t ntargets)
{
	(void)ntargets;
	return param_ms(params) + 1;
}

static int run_noop(struct shd_step_ctx *s, struct shp_error *err)
{
	(void)s;
	(void)err;
	return 0;
}

static int run_sleep(struct shd_step_ctx *s, struct shp_error *err)
{
	int64_t ms = 0;

	if (get_ms(s, &ms, err) < 0 || shd_step_sleep(s, ms, err) < 0)
		return -err->code;
	s->result = json_pack("{s:I}", "slept_ms", (json_int_t)ms);
	return 0;
}

static int run_fail(struct shd_step_ctx *s, struct shp_error *err)
{
	int64_t times = 0;
	int permanent = 0;

	if (shp_json_get_int(s->params, "times", false, 0, 1000, &times, err) < 0)
		return -err->code;
	if (json_is_true(json_object_get(s->params, "permanent")))
		permanent = 1;
	if (permanent)
		return shp_error_set(err, SHP_E_INVAL, "planned permanent failure");
	if (s->attempt <= times)
		return shp_error_set(err, SHP_E_UNAVAIL, "planned failure %d of %" PRId64,
				     s->attempt, times);
	return 0;
}

static int run_effect(struct shd_step_ctx *s, struct shp_error *err)
{
	/* the advisory lock on the execution shows whether another runner holds it right now */
	static const char effect_sql[] =
		"WITH lk AS (SELECT pg_try_advisory_lock(7, ($2::bigint % 2147483647)::int) AS got)"
		" INSERT INTO test_effects AS e (key, job_id, overlapped)"
		" SELECT $1, $2, CASE WHEN got THEN 0 ELSE 1 END FROM lk"
		" ON CONFLICT (key) DO UPDATE SET runs = e.runs + 1,"
		"  overlapped = e.overlapped + excluded.overlapped"
		" RETURNING (SELECT got FROM lk), runs";
	static const char unlock_sql[] =
		"SELECT pg_advisory_unlock(7, ($1::bigint % 2147483647)::int)";
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *key = NULL;
	int64_t ms = 0;
	char id[24];
	bool got;
	int rc = 0;

	if (shp_json_get_string(s->params, "key", true, 255, &key, err) < 0 ||
	    get_ms(s, &ms, err) < 0)
		return -err->code;
	(void)snprintf(id, sizeof(id), "%" PRId64, s->execution_id);
	res = shd_db_exec(s->conn, effect_sql, 2, (const char *[]){key, id}, err);
	if (!res)
		return shp_error_prefix(err, "recording effect '%s'", key);
	got = shd_db_value(res, 0, 0)[0] == 't';
	s->result = json_pack("{s:s,s:s}", "key", key, "runs", shd_db_value(res, 0, 1));
	if (ms > 0)
		rc = shd_step_sleep(s, ms, err);
	if (got && shd_db_command(s->conn, unlock_sql, 1, (const char *[]){id}, NULL) < 0)
		log_warn("execution %s: releasing the effect's advisory lock failed, ignoring", id);
	return rc;
}

const struct shd_action shd_actions[] = {
	{"test.noop", SHD_ACTION_READ, estimate_small, run_noop},
	{"test.sleep", SHD_ACTION_READ, estimate_ms, run_sleep},
	{"test.fail", SHD_ACTION_READ, estimate_small, run_fail},
	{"test.effect", SHD_ACTION_MODIFY, estimate_ms, run_effect},
	{"test.deploy", SHD_ACTION_DEPLOY, estimate_ms, run_sleep},
	{NULL},
};

const struct shd_action *shd_action_find(const char *name)
{
	for (const struct shd_action *a = shd_actions; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	for (const struct shd_action *a = shd_vm_actions; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	for (const struct shd_action *a = shd_gov_actions; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

const char *shd_action_class_to_string(enum shd_action_class c)
{
	static const char *const names[] = {"read", "modify", "deploy"};

	return shp_enum_to_string(names, SHP_ARRAY_SIZE(names), (int)c);
}
