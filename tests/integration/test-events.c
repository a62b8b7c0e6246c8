/*
 * Domain events through the real queue and database: an auto-approved event runs and
 * completes, a rolled-back request leaves neither event nor job, the payload is immutable and
 * events are never deleted, failures are retried and the last one marks the event FAILED, a
 * job whose event is gone is cancelled, cancelling a running event marks it CANCELLED,
 * illegal status moves are refused, and archiving hides finished events from the default view.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "events.h"
#include "queue.h"
#include "testdb.h"

static void setup(void)
{
	testdb_setup("shp_events");
}

TestSuite(events, .init = setup, .fini = testdb_teardown, .timeout = 60);

static struct shd_queue *start_queue(void)
{
	struct shd_queue_config qc = {
		.db = &testdb_config,
		.workers = 2,
		.fetch_batch = 10,
		.poll_interval_ms = 50,
		.shutdown_grace_ms = 1000,
		.retry_base_ms = 10,
		.retry_max_ms = 50,
		.maintenance = true,
		.leader_ttl_ms = 2000,
		.maint_interval_ms = 50,
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = shd_queue_new(&qc, &err);

	cr_assert(q, "%s", err.msg);
	cr_assert_eq(shd_events_register(q, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_queue_start(q, &err), 0, "%s", err.msg);
	return q;
}

/* One text value of sql with $1 = id; the result lives in one of a few rotating buffers. */
static const char *text_of(const char *sql, int64_t id)
{
	static char slots[4][512];
	static int next;
	struct shp_error err = SHP_ERROR_INIT;
	char ids[24], *out = slots[next++ % 4];
	PGresult *res;

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(testdb_conn, sql, 1, (const char *[]){ids}, &err);
	cr_assert(res, "%s: %s", sql, err.msg);
	(void)snprintf(out, sizeof(slots[0]), "%s",
		       PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

static void wait_status(int64_t id, const char *want)
{
	for (int i = 0; i < 500; i++) {
		if (strcmp(text_of("SELECT status FROM domain_events WHERE id = $1", id), want) ==
		    0)
			return;
		usleep(10000);
	}
	cr_assert_fail("event %lld never reached %s", (long long)id, want);
}

static int64_t create(const char *type, const char *payload, bool approved, int64_t *ret_job)
{
	struct shd_event_new ev = {.type = type,
				   .actor = "tester",
				   .tenant = "sys-a",
				   .auto_approved = approved,
				   .sla = SHD_SLA_MEDIUM,
				   .priority = SHD_JOB_PRIORITY_NORMAL};
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *p = json_loads(payload, 0, NULL);
	int64_t id = 0, job = 0;

	ev.payload = p;
	cr_assert_eq(shd_db_begin(testdb_conn, &err), 0);
	cr_assert_eq(shd_event_create(testdb_conn, &ev, &id, &job, &err), 0, "%s", err.msg);
	cr_assert_eq(shd_db_commit(testdb_conn, &err), 0, "%s", err.msg);
	if (ret_job)
		*ret_job = job;
	return id;
}

Test(events, auto_approved_event_completes)
{
	struct shd_queue *q = start_queue();
	int64_t job = 0, id = create("TEST_NOOP", "{\"x\":1}", true, &job);

	cr_assert_gt(job, 0, "an auto-approved event is queued at once");
	wait_status(id, "COMPLETED");
	cr_assert_str_eq(text_of("SELECT args->>'event_id' FROM jobs WHERE id = $1", job),
			 text_of("SELECT id::text FROM domain_events WHERE id = $1", id),
			 "the job carries only the event id");
	cr_assert_str_eq(text_of("SELECT (SELECT count(*) FROM jsonb_object_keys(args))::text"
				 " FROM jobs WHERE id = $1",
				 job),
			 "1");
	q = shd_queue_free(q);
}

Test(events, pending_event_waits_for_approval)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue();
	int64_t job = -1, id = create("TEST_NOOP", "{}", false, &job);

	cr_assert_eq(job, 0, "a pending event has no job");
	usleep(200000);
	cr_assert_str_eq(text_of("SELECT status FROM domain_events WHERE id = $1", id), "PENDING");
	cr_assert_eq(shd_db_begin(testdb_conn, &err), 0);
	cr_assert_eq(shd_event_approve(testdb_conn, id, SHD_SLA_FAST, 0, &job, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_db_commit(testdb_conn, &err), 0);
	wait_status(id, "COMPLETED");
	q = shd_queue_free(q);
}

Test(events, rolled_back_request_leaves_nothing)
{
	struct shd_event_new ev = {
		.type = "TEST_NOOP", .actor = "tester", .auto_approved = true, .sla = SHD_SLA_FAST};
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *p = json_object();
	int64_t id, job;

	ev.payload = p;
	cr_assert_eq(shd_db_begin(testdb_conn, &err), 0);
	cr_assert_eq(shd_event_create(testdb_conn, &ev, &id, &job, &err), 0, "%s", err.msg);
	shd_db_rollback(testdb_conn);
	cr_assert_str_eq(text_of("SELECT count(*)::text FROM domain_events WHERE id >= $1", 0),
			 "0");
	cr_assert_str_eq(text_of("SELECT count(*)::text FROM jobs WHERE id >= $1", 0), "0");
}

Test(events, payload_is_immutable_and_events_are_never_deleted)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t id = create("TEST_NOOP", "{\"cpu\":2}", false, NULL);
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	cr_assert_lt(
		shd_db_command(testdb_conn,
			       "UPDATE domain_events SET payload = '{\"cpu\":64}' WHERE id = $1", 1,
			       (const char *[]){ids}, &err),
		0);
	cr_assert(strstr(err.msg, "immutable"), "%s", err.msg);
	cr_assert_lt(shd_db_command(testdb_conn,
				    "UPDATE domain_events SET actor = 'mallory' WHERE id = $1", 1,
				    (const char *[]){ids}, &err),
		     0);
	cr_assert_lt(shd_db_command(testdb_conn, "DELETE FROM domain_events WHERE id = $1", 1,
				    (const char *[]){ids}, &err),
		     0);
	cr_assert_lt(shd_db_command(testdb_conn, "TRUNCATE domain_events", 0, NULL, &err), 0);
	cr_assert_str_eq(text_of("SELECT payload->>'cpu' FROM domain_events WHERE id = $1", id),
			 "2");
	cr_assert_eq(shd_event_transition(testdb_conn, id, "CANCELLED", "withdrawn", &err), 0, "%s",
		     err.msg);
}

Test(events, illegal_transitions_are_refused)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t id = create("TEST_NOOP", "{}", false, NULL);

	cr_assert_eq(shd_event_transition(testdb_conn, id, "COMPLETED", NULL, &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "ILLEGAL_TRANSITION");
	cr_assert_eq(shd_event_transition(testdb_conn, id, "PROCESSING", NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_event_transition(testdb_conn, id, "FAILED", "broken", &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_event_transition(testdb_conn, id, "PROCESSING", NULL, &err),
		     -SHP_E_CONFLICT, "a final state never moves");
	cr_assert_eq(shd_event_transition(testdb_conn, 999999, "PROCESSING", NULL, &err),
		     -SHP_E_NOTFOUND);
}

Test(events, failures_retry_then_succeed_or_fail_the_event)
{
	struct shd_queue *q = start_queue();
	int64_t ok = create("TEST_FAIL", "{\"times\":2}", true, NULL);
	int64_t bad = create("TEST_FAIL", "{\"times\":50}", true, NULL);

	wait_status(ok, "COMPLETED");
	wait_status(bad, "FAILED");
	cr_assert(strstr(text_of("SELECT error FROM domain_events WHERE id = $1", bad),
			 "failing on purpose"));
	for (int i = 0; i < 1500; i++) {
		if (strcmp(text_of("SELECT state::text FROM jobs WHERE args->>'event_id' = "
				   "$1::text",
				   bad),
			   "discarded") == 0)
			break;
		usleep(10000);
	}
	cr_assert_str_eq(
		text_of("SELECT state::text FROM jobs WHERE args->>'event_id' = $1::text", bad),
		"discarded", "after max attempts the job is dead-lettered");
	q = shd_queue_free(q);
}

Test(events, job_without_its_event_is_cancelled)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue();

	p.kind = SHD_EVENT_KIND;
	p.args = "{\"event_id\":424242}";
	cr_assert_eq(shd_job_insert(testdb_conn, &p, &ins, &err), 0, "%s", err.msg);
	for (int i = 0; i < 1500; i++) {
		if (strcmp(text_of("SELECT state::text FROM jobs WHERE id = $1", ins.id),
			   "cancelled") == 0)
			break;
		usleep(10000);
	}
	cr_assert_str_eq(text_of("SELECT state::text FROM jobs WHERE id = $1", ins.id),
			 "cancelled");
	cr_assert_str_eq(text_of("SELECT attempt::text FROM jobs WHERE id = $1", ins.id), "1",
			 "not retried");
	q = shd_queue_free(q);
}

Test(events, cancelling_a_running_event)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_queue *q = start_queue();
	int64_t job = 0, id = create("TEST_SLEEP", "{\"ms\":20000}", true, &job);
	enum shd_job_state st;

	for (int i = 0; i < 1500; i++) {
		if (strcmp(text_of("SELECT state::text FROM jobs WHERE id = $1", job), "running") ==
		    0)
			break;
		usleep(10000);
	}
	cr_assert_eq(shd_job_cancel(testdb_conn, job, &st, &err), 0, "%s", err.msg);
	wait_status(id, "CANCELLED");
	q = shd_queue_free(q);
}

Test(events, archiving_hides_old_finished_events)
{
	struct shp_error err = SHP_ERROR_INIT;
	int64_t old = create("TEST_NOOP", "{}", false, NULL);
	int64_t live = create("TEST_NOOP", "{}", false, NULL);
	int n = -1;
	char ids[24];

	cr_assert_eq(shd_event_transition(testdb_conn, old, "CANCELLED", NULL, &err), 0);
	(void)snprintf(ids, sizeof(ids), "%lld", (long long)old);
	/* age it: only the timestamps that follow the status may move */
	cr_assert_eq(shd_db_command(testdb_conn,
				    "UPDATE domain_events SET finalized_at = now() - interval"
				    " '31 days' WHERE id = $1",
				    1, (const char *[]){ids}, &err),
		     0, "%s", err.msg);
	cr_assert_eq(shd_events_archive(testdb_conn, 30, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(
		text_of("SELECT count(*)::text FROM domain_events_current WHERE id = $1", old), "0",
		"archived events leave the default view");
	cr_assert_str_eq(text_of("SELECT count(*)::text FROM domain_events WHERE id = $1", old),
			 "1", "but stay queryable");
	cr_assert_str_eq(
		text_of("SELECT count(*)::text FROM domain_events_current WHERE id = $1", live),
		"1");
	json_auto_t *j = shd_event_get(testdb_conn, old, &err);
	cr_assert(j, "%s", err.msg);
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "CANCELLED");
	cr_assert(json_is_string(json_object_get(j, "archived_at")));
}
