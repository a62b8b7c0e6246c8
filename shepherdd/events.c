/*
 * Domain events and their dispatcher: recording an event (and, once approved, its job) in the
 * caller's transaction, FSM-checked status changes, the job kind that maps an event's type to
 * its handler, the daily archiving, and the test event types the test suite drives.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "error.h"
#include "events.h"
#include "fsm.h"
#include "log.h"
#include "shepherdd.h"

#define ARCHIVE_AFTER_DAYS 30
#define ERROR_MAX 4000

static int enqueue(PGconn *conn, int64_t id, enum shd_sla_class sla, int priority,
		   int64_t *ret_job_id, struct shp_error *err)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	char args[48], key[48];
	int r;

	(void)snprintf(args, sizeof(args), "{\"event_id\":%lld}", (long long)id);
	(void)snprintf(key, sizeof(key), "event:%lld", (long long)id);
	p.kind = SHD_EVENT_KIND;
	p.args = args;
	p.sla = sla;
	p.priority = priority;
	p.unique_key = key;
	r = shd_job_insert(conn, &p, &ins, err);
	if (r < 0)
		return r;
	if (ret_job_id)
		*ret_job_id = ins.id;
	return 0;
}

int shd_event_create(PGconn *conn, const struct shd_event_new *ev, int64_t *ret_id,
		     int64_t *ret_job_id, struct shp_error *err)
{
	_cleanup_free_ char *payload = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char actor_id[24], reserved[24];
	int64_t id;

	if (!json_is_object(ev->payload))
		return shp_error_set(err, SHP_E_INVAL, "an event payload is a JSON object");
	payload = json_dumps(ev->payload, JSON_COMPACT | JSON_SORT_KEYS);
	if (!payload)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(actor_id, sizeof(actor_id), "%lld", (long long)ev->actor_id);
	(void)snprintf(reserved, sizeof(reserved), "%lld", (long long)ev->id);
	res = shd_db_exec(
		conn,
		"INSERT INTO domain_events (id, type, payload, actor_id, actor, tenant, status)"
		" VALUES (coalesce($7::bigint,"
		"          nextval(pg_get_serial_sequence('domain_events', 'id'))),"
		"         $1, $2::jsonb, $3, $4, $5, $6::event_status) RETURNING id",
		7,
		(const char *[]){ev->type, payload, ev->actor_id > 0 ? actor_id : NULL, ev->actor,
				 ev->tenant ? ev->tenant : "",
				 ev->auto_approved ? "PROCESSING" : "PENDING",
				 ev->id > 0 ? reserved : NULL},
		err);
	if (!res)
		return shp_error_prefix(err, "recording the %s event", ev->type);
	id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	if (ret_job_id)
		*ret_job_id = 0;
	if (ev->auto_approved && enqueue(conn, id, ev->sla, ev->priority, ret_job_id, err) < 0)
		return -err->code;
	*ret_id = id;
	return 0;
}

int shd_event_reserve_id(PGconn *conn, int64_t *ret_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, "SELECT nextval(pg_get_serial_sequence('domain_events', 'id'))",
			    0, NULL, err);

	if (!res)
		return shp_error_prefix(err, "reserving an event id");
	*ret_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

int shd_event_transition(PGconn *conn, int64_t id, const char *to, const char *error,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24], msg[ERROR_MAX + 1];
	const char *from;
	int r;

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn, "SELECT status FROM domain_events WHERE id = $1 FOR UPDATE", 1,
			  (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "event %s not found", ids);
	from = shd_db_value(res, 0, 0);
	r = shd_fsm_check(&shd_fsm_event, from, to, err);
	if (r < 0)
		return r;
	if (error)
		(void)snprintf(msg, sizeof(msg), "%s", error);
	return shd_db_command(conn,
			      "UPDATE domain_events SET status = $2::event_status, error = $3,"
			      " updated_at = now(), finalized_at = CASE WHEN $2 IN ('COMPLETED',"
			      " 'FAILED', 'CANCELLED') THEN now() END WHERE id = $1",
			      3, (const char *[]){ids, to, error ? msg : NULL}, err);
}

/* Transition in a transaction of its own (the worker's connection is in autocommit). */
static int transition_tx(PGconn *conn, int64_t id, const char *to, const char *error,
			 struct shp_error *err)
{
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (shd_event_transition(conn, id, to, error, err) < 0 || shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	return 0;
}

int shd_event_approve(PGconn *conn, int64_t id, enum shd_sla_class sla, int priority,
		      int64_t *ret_job_id, struct shp_error *err)
{
	if (shd_event_transition(conn, id, "PROCESSING", NULL, err) < 0)
		return -err->code;
	return enqueue(conn, id, sla, priority, ret_job_id, err);
}

json_t *shd_event_get(PGconn *conn, int64_t id, struct shp_error *err)
{
	static const struct shd_col cols[] = {
		{"id", COL_INT},           {"type", COL_TEXT},
		{"payload", COL_JSON},     {"actor", COL_TEXT},
		{"tenant", COL_TEXT},      {"status", COL_TEXT},
		{"error", COL_TEXT},       {"created_at", COL_TIME},
		{"updated_at", COL_TIME},  {"finalized_at", COL_TIME},
		{"archived_at", COL_TIME},
	};
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];
	json_t *j;

	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn,
			  "SELECT id, type, payload, actor, tenant, status, error, created_at,"
			  " updated_at, finalized_at, archived_at FROM domain_events WHERE id = $1",
			  1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "event %s not found", ids);
		return NULL;
	}
	j = shd_row_to_json(res, 0, cols, (int)SHP_ARRAY_SIZE(cols));
	if (!j)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return j;
}

int shd_events_archive(PGconn *conn, int days, int *ret_count, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char d[16];

	(void)snprintf(d, sizeof(d), "%d", days);
	res = shd_db_exec(conn,
			  "UPDATE domain_events SET archived_at = now()"
			  " WHERE archived_at IS NULL AND finalized_at IS NOT NULL"
			  "   AND finalized_at < now() - make_interval(days => $1::int)",
			  1, (const char *[]){d}, err);
	if (!res)
		return -err->code;
	if (ret_count)
		*ret_count = (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

/* ---- the test event types -------------------------------------------------------------- */

static int test_noop(PGconn *conn, int64_t id, const json_t *payload, struct shd_job *job,
		     struct shp_error *err)
{
	return 0;
}

/* {"times": N}: fail on the first N attempts */
static int test_fail(PGconn *conn, int64_t id, const json_t *payload, struct shd_job *job,
		     struct shp_error *err)
{
	json_int_t times = json_integer_value(json_object_get(payload, "times"));

	if (job->attempt <= times)
		return shp_error_set(err, SHP_E_INTERNAL, "failing on purpose (attempt %d of %d)",
				     job->attempt, (int)times);
	return 0;
}

/* {"ms": N}: sleep, stopping early when asked */
static int test_sleep(PGconn *conn, int64_t id, const json_t *payload, struct shd_job *job,
		      struct shp_error *err)
{
	json_int_t ms = json_integer_value(json_object_get(payload, "ms"));
	struct timespec tick = {.tv_nsec = 10 * 1000 * 1000};

	for (json_int_t slept = 0; slept < ms; slept += 10) {
		if (shd_job_should_stop(job))
			return shp_error_set(err, SHP_E_TIMEOUT, "stopped after %lld ms",
					     (long long)slept);
		(void)nanosleep(&tick, NULL);
	}
	return 0;
}

const struct shd_event_route shd_event_routes[] = {
	{"TEST_NOOP", test_noop},
	{"TEST_FAIL", test_fail},
	{"TEST_SLEEP", test_sleep},
	{NULL, NULL},
};

/* ---- the dispatcher ---------------------------------------------------------------------- */

static const struct shd_event_route *route_of(const char *type)
{
	for (const struct shd_event_route *r = shd_event_routes; r->type; r++)
		if (strcmp(r->type, type) == 0)
			return r;
	return NULL;
}

/* The handler failed: retry, or on the last attempt mark the event FAILED and give up. */
static enum shd_job_outcome handler_failed(struct shd_job *job, PGconn *conn, int64_t id,
					   const struct shp_error *herr)
{
	struct shp_error err = SHP_ERROR_INIT;

	if (atomic_load(&job->cancel)) {
		if (transition_tx(conn, id, "CANCELLED", "cancelled", &err) < 0)
			log_warn("event %lld: marking it cancelled failed: %s", (long long)id,
				 err.msg);
		return SHD_JOB_CANCEL;
	}
	if (job->attempt >= job->max_attempts &&
	    transition_tx(conn, id, "FAILED", herr->msg, &err) < 0)
		log_warn("event %lld: marking it failed failed: %s", (long long)id, err.msg);
	return shd_job_fail(job, "%s", herr->msg);
}

static enum shd_job_outcome dispatch(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	const json_t *eid = json_object_get(job->args, "event_id");
	const struct shd_event_route *route;
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *payload = NULL;
	const char *status;
	PGconn *conn;
	char ids[24];
	int64_t id;

	if (!json_is_integer(eid) || json_integer_value(eid) <= 0) {
		(void)shd_job_fail(job, "job arguments carry no event_id");
		return SHD_JOB_DISCARD;
	}
	id = json_integer_value(eid);
	conn = shd_job_conn(job, &err);
	if (!conn)
		return shd_job_fail(job, "%s", err.msg);
	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	res = shd_db_exec(conn, "SELECT type, payload, status FROM domain_events WHERE id = $1", 1,
			  (const char *[]){ids}, &err);
	if (!res)
		return shd_job_fail(job, "%s", err.msg);
	if (PQntuples(res) == 0) {
		log_warn("job %lld: event %s no longer exists; cancelling the job",
			 (long long)job->id, ids);
		return SHD_JOB_CANCEL;
	}
	status = shd_db_value(res, 0, 2);
	if (shd_fsm_is_terminal(&shd_fsm_event, status))
		return SHD_JOB_DONE; /* handled by an earlier run that finished the event */
	if (strcmp(status, "PROCESSING") != 0) {
		log_warn("job %lld: event %s is %s, not approved; cancelling the job",
			 (long long)job->id, ids, status);
		return SHD_JOB_CANCEL;
	}
	route = route_of(shd_db_value(res, 0, 0));
	if (!route) {
		if (transition_tx(conn, id, "FAILED", "no handler for this event type", &err) < 0)
			return shd_job_fail(job, "%s", err.msg);
		return SHD_JOB_DISCARD;
	}
	payload = json_loads(shd_db_value(res, 0, 1), 0, NULL);
	if (!payload)
		return shd_job_fail(job, "event %s has an unreadable payload", ids);
	if (route->handler(conn, id, payload, job, &err) < 0)
		return handler_failed(job, conn, id, &err);
	if (transition_tx(conn, id, "COMPLETED", NULL, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	return SHD_JOB_DONE;
}

static enum shd_job_outcome archive(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	if (!conn || shd_events_archive(conn, ARCHIVE_AFTER_DAYS, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (n > 0)
		log_info("archived %d finished domain event(s)", n);
	return SHD_JOB_DONE;
}

int shd_events_register(struct shd_queue *q, struct shp_error *err)
{
	const struct shd_job_kind kinds[] = {
		{.name = SHD_EVENT_KIND, .run = dispatch, .timeout_ms = 60000},
		{.name = "events.archive", .run = archive, .timeout_ms = 60000},
	};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(kinds); i++)
		if (shd_queue_register(q, &kinds[i], err) < 0)
			return -err->code;
	return shd_queue_add_periodic(q, "events.archive", "@daily 03:17", "events.archive", "{}",
				      err);
}
