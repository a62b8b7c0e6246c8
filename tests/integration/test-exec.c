/*
 * The execution engine's functions against a real database: eight connections submitting the
 * same plan at once make one execution (across tenants, two), eight racing for one target
 * leave one holder and seven RESOURCE_BUSY, an inline run records its steps and releases its
 * locks, an illegal transition names both states, and a cancel before the run is final.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "exec.h"
#include "exec-internal.h"
#include "locks.h"
#include "testdb.h"

static struct shd_exec_engine *engine;

static void setup(void)
{
	struct shd_exec_config cfg = {.default_enabled = true, .dedupe_window_s = 60};
	struct shp_error err = SHP_ERROR_INIT;

	testdb_setup("shp_exec");
	cr_assert_eq(
		shd_db_command(testdb_conn,
			       "INSERT INTO users (id, name, is_admin) VALUES (1, 'alice', true),"
			       " (2, 'bob', false)",
			       0, NULL, &err),
		0, "%s", err.msg);
	engine = shd_exec_engine_new(&cfg, &err);
	cr_assert_not_null(engine, "%s", err.msg);
}

static void teardown(void)
{
	engine = shd_exec_engine_free(engine);
	testdb_teardown();
}

TestSuite(exec, .init = setup, .fini = teardown, .timeout = 60);

static json_t *plan_of(const char *action, const char *target, const char *key)
{
	return json_pack("{s:[{s:s,s:[s],s:{s:s}}]}", "steps", "action", action, "targets", target,
			 "params", "key", key);
}

struct racer {
	const char *tenant;
	json_t *plan;
	int rc;
	struct shd_exec_submitted out;
	char api_code[40];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_submit s = {.tenant = r->tenant,
				    .plan = r->plan,
				    .sla = SHD_SLA_MEDIUM,
				    .priority = 50,
				    .confirm = true,
				    .actor_id = 1,
				    .actor = "alice",
				    .actor_is_admin = true};
	PGconn *conn = shd_db_connect(&testdb_config, &err);

	if (!conn) {
		r->rc = -SHP_E_UNAVAIL;
		return NULL;
	}
	r->rc = shd_exec_submit(engine, conn, &s, &r->out, &err);
	(void)snprintf(r->api_code, sizeof(r->api_code), "%s", err.api_code);
	PQfinish(conn);
	return NULL;
}

static void run_racers(struct racer *r, int n)
{
	pthread_t t[16];

	for (int i = 0; i < n; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static long long count(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res = shd_db_exec(testdb_conn, sql, 0, NULL, &err);
	long long n;

	cr_assert_not_null(res, "%s", err.msg);
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

Test(exec, concurrent_duplicates_make_one_execution_per_tenant)
{
	struct racer r[8];
	int fresh = 0;

	for (int i = 0; i < 8; i++)
		r[i] = (struct racer){.tenant = i % 2 ? "team-b" : "team-a",
				      .plan = plan_of("test.effect", "vm-1", "k")};
	run_racers(r, 8);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(r[i].rc, 0, "racer %d: %d %s", i, r[i].rc, r[i].api_code);
		fresh += !r[i].out.duplicate;
		cr_assert_eq(r[i].out.id, r[i % 2].out.id,
			     "the same plan, tenant and actor is one "
			     "execution");
		json_decref(r[i].plan);
	}
	cr_assert_eq(fresh, 2, "one new execution per tenant, the rest duplicates");
	cr_assert_neq(r[0].out.id, r[1].out.id, "tenants never share an execution");
	cr_assert_eq(count("SELECT count(*) FROM executions"), 2);
	cr_assert_eq(count("SELECT count(*) FROM jobs WHERE kind = 'exec.medium'"), 2,
		     "one job each");
}

Test(exec, racing_for_one_target_leaves_one_holder)
{
	struct racer r[8];
	int won = 0, busy = 0;
	char key[8][8];

	for (int i = 0; i < 8; i++) {
		(void)snprintf(key[i], sizeof(key[i]), "k%d", i);
		r[i] = (struct racer){.tenant = "team-a",
				      .plan = plan_of("test.effect", "vm-7", key[i])};
	}
	run_racers(r, 8);
	for (int i = 0; i < 8; i++) {
		if (r[i].rc == 0)
			won++;
		else if (r[i].rc == -SHP_E_CONFLICT && strcmp(r[i].api_code, "RESOURCE_BUSY") == 0)
			busy++;
		json_decref(r[i].plan);
	}
	cr_assert_eq(won, 1, "exactly one execution holds the target");
	cr_assert_eq(busy, 7, "the others fail fast with RESOURCE_BUSY");
	cr_assert_eq(count("SELECT count(*) FROM executions"), 1, "the losers left nothing behind");
	cr_assert_eq(count("SELECT count(*) FROM execution_locks"), 1);
}

Test(exec, inline_run_records_steps_and_releases_locks)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *plan =
		json_pack("{s:[{s:s,s:[s,s]},{s:s,s:[s]}]}", "steps", "action", "test.noop",
			  "targets", "b", "a", "action", "test.sleep", "targets", "a");
	struct shd_exec_submit s = {.tenant = "team-a",
				    .plan = plan,
				    .sla = SHD_SLA_FAST,
				    .priority = 50,
				    .actor_id = 1,
				    .actor = "alice"};
	struct shd_exec_submitted out = {0};

	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), 0, "%s", err.msg);
	cr_assert(out.immediate, "a short read-only plan runs inline");
	cr_assert_eq(count("SELECT count(*) FROM execution_locks"), 3,
		     "a lock per target and action: a and b for noop, a for sleep");
	cr_assert_eq(shd_exec_run(engine, testdb_conn, out.id, NULL, "test"), SHD_JOB_DONE);
	cr_assert_eq(count("SELECT count(*) FROM executions WHERE status = 'succeeded'"
			   " AND last_transition_from = 'running' AND last_transition_by = 'test'"),
		     1, "the transition is recorded");
	cr_assert_eq(count("SELECT count(*) FROM execution_steps WHERE status = 'succeeded'"), 2);
	cr_assert_eq(count("SELECT count(*) FROM execution_locks"), 0, "locks are released");
	cr_assert_eq(count("SELECT count(*) FROM execution_events WHERE type = 'step_started'"), 2);
	cr_assert_eq(shd_exec_run(engine, testdb_conn, out.id, NULL, "test"), SHD_JOB_DONE,
		     "running a finished execution again does nothing");
	cr_assert_eq(count("SELECT count(*) FROM execution_steps WHERE attempts = 1"), 2);
}

Test(exec, illegal_transition_names_both_states)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *plan = plan_of("test.effect", "vm-3", "x");
	struct shd_exec_submit s = {.tenant = "team-a",
				    .plan = plan,
				    .sla = SHD_SLA_MEDIUM,
				    .priority = 50,
				    .confirm = true,
				    .actor_id = 1,
				    .actor = "alice",
				    .actor_is_admin = true};
	struct shd_exec_submitted out = {0};

	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_exec_transition(testdb_conn, out.id, "pending", "succeeded", "t", &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "ILLEGAL_TRANSITION");
	cr_assert(strstr(err.msg, "'pending'") && strstr(err.msg, "'succeeded'"), "%s", err.msg);
	cr_assert_eq(shd_exec_cancel(engine, testdb_conn, out.id, "alice", "no", &err), 0, "%s",
		     err.msg);
	cr_assert_eq(count("SELECT count(*) FROM executions WHERE status = 'cancelled'"
			   " AND cancelled_by = 'alice' AND cancelled_at IS NOT NULL"),
		     1, "a pending execution is cancelled at once");
	cr_assert_eq(count("SELECT count(*) FROM execution_locks"), 0, "and its locks released");
	cr_assert_eq(count("SELECT count(*) FROM jobs WHERE state = 'cancelled'"), 1,
		     "and its job cancelled");
	cr_assert_eq(shd_exec_transition(testdb_conn, out.id, "cancelled", "running", "t", &err),
		     -SHP_E_CONFLICT, "a terminal state never moves");
	cr_assert_eq(shd_exec_cancel(engine, testdb_conn, out.id, "alice", "again", &err), 0,
		     "cancelling again is harmless");
}

Test(exec, non_members_and_viewers_are_refused)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *plan = plan_of("test.effect", "vm-4", "y");
	struct shd_exec_submit s = {.tenant = "team-a",
				    .plan = plan,
				    .sla = SHD_SLA_MEDIUM,
				    .priority = 50,
				    .confirm = true,
				    .actor_id = 2,
				    .actor = "bob"};
	struct shd_exec_submitted out = {0};

	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), -SHP_E_PERM);
	cr_assert_eq(shd_db_command(testdb_conn,
				    "INSERT INTO tenant_members (tenant_id, user_id, role)"
				    " VALUES ('team-a', 2, 'viewer')",
				    0, NULL, &err),
		     0, "%s", err.msg);
	cr_assert_eq(shd_exec_submit(engine, testdb_conn, &s, &out, &err), -SHP_E_PERM,
		     "a viewer may not modify");
	cr_assert_eq(count("SELECT count(*) FROM executions"), 0);
}

Test(exec, inline_wait_for_a_busy_lock_is_bounded)
{
	struct shd_exec_config cfg = {
		.default_enabled = true, .immediate_max_ms = 300, .lock_wait_poll_ms = 50};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_exec_engine *e = shd_exec_engine_new(&cfg, &err);
	json_auto_t *plan =
		json_pack("{s:[{s:s,s:[s]}]}", "steps", "action", "test.noop", "targets", "held");
	struct shd_exec_submit s = {.tenant = "team-a",
				    .plan = plan,
				    .sla = SHD_SLA_FAST,
				    .priority = 50,
				    .wait_lock = true,
				    .actor_id = 1,
				    .actor = "alice"};
	struct shd_exec_submitted out = {0};

	cr_assert_not_null(e);
	cr_assert_eq(shd_lock_acquire(testdb_conn, "lock:v1:team-a:held:test.noop", "someone",
				      60000, 0, &err),
		     0, "%s", err.msg);
	cr_assert_eq(shd_exec_submit(e, testdb_conn, &s, &out, &err), 0, "%s", err.msg);
	cr_assert(out.immediate);
	cr_assert_eq(shd_exec_run(e, testdb_conn, out.id, NULL, "test"), SHD_JOB_DONE);
	cr_assert_eq(count("SELECT count(*) FROM executions WHERE status = 'rejected'"
			   " AND error_code = 'RESOURCE_BUSY'"),
		     1, "an inline task waits for a busy lock only as long as a request may");
	cr_assert_eq(count("SELECT count(*) FROM execution_events WHERE type = 'lock_busy'"), 1);
	cr_assert_eq(count("SELECT count(*) FROM execution_locks WHERE owner = 'someone'"), 1,
		     "the holder keeps its lock");
	shd_exec_engine_free(e);
}
