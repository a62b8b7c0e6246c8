/*
 * Running an execution, the same on both paths: under the row lock, re-check the actor's
 * permission (defense in depth), re-verify the plan hash against its approval, take the
 * per-asset locks and move to running; then run the steps outside any transaction, checking
 * for cancellation and the deadline between steps; then finish in one transaction that moves
 * to the terminal state and releases the locks. The governance hooks of an execution that
 * carries a request run inside the start and end transactions. Also cancellation, the job
 * kinds, the engine.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "fsm.h"
#include "log.h"
#include "plan.h"
#include "util.h"

/* One run of one execution. */
struct run {
	struct shd_exec_engine *e;
	PGconn *conn;
	int64_t id;
	char ids[24];
	struct shd_job *job;
	const char *worker_id;
	/* loaded */
	char status[16];
	char tenant[64];
	char first_action[SHD_PLAN_ACTION_MAX + 1];
	enum shd_sla_class sla;
	bool record_only;
	int64_t exec_left_ms; /* until the deadline (from created_at while pending) */
	uint64_t deadline_ns; /* monotonic */
	bool ended;           /* the terminal state is recorded */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- finishing ------------------------------------------------------------------------- */

struct outcome {
	const char *status;     /* terminal status */
	const char *error_code; /* NULL on success */
	char error[512];
	bool timed_out;
	bool user_cancelled;
	bool invalidated; /* the approval no longer matches the plan */
	json_t *result;   /* borrowed; NULL = none */
};

/* The structured log line of a finished execution (seed 003 §7.2 fields). */
static void log_finished(const PGresult *res, const struct outcome *o)
{
	static const char *const names[] = {
		"request_id",
		"plan_hash",
		"exec_id",
		"actor_id",
		"tenant_id",
		"action",
		"targets",
		"approval_level",
		"started_at",
		"ended_at",
		"status",
		"duration_ms",
		"retries_total",
		"queue_wait_ms",
		"worker_id",
		"lease_renewals",
		"cancel_checks_performed",
		"mode",
		"sla_class",
		"timeout_policy_id",
	};
	json_auto_t *f = json_object();

	for (size_t i = 0; f && i < SHP_ARRAY_SIZE(names); i++) {
		const char *v = shd_db_value(res, 0, (int)i);
		json_t *j = NULL;
		if (v && (strcmp(names[i], "targets") == 0))
			j = json_loads(v, 0, NULL);
		if (!j)
			j = v ? json_string(v) : json_null();
		json_object_set_new(f, names[i], j);
	}
	json_object_set_new(f, "error_class",
			    o->error_code ? json_string(o->error_code) : json_null());
	json_object_set_new(f, "timed_out", json_boolean(o->timed_out));
	shp_log_fields(strcmp(o->status, "succeeded") == 0 ? SHP_LOG_INFO : SHP_LOG_WARN,
		       "execution_finished", f);
}

static const char finish_sql[] =
	"UPDATE executions e SET error = left($2, 4096), error_code = $3, timed_out = $4::boolean,"
	" result_summary = coalesce($5::jsonb, result_summary),"
	" approval_state = CASE WHEN $7::boolean THEN 'invalidated' ELSE approval_state END"
	" WHERE id = $1"
	" RETURNING request_id, plan_hash, id, actor_id, tenant_id,"
	"  plan_snapshot #>> '{steps,0,action}',"
	"  (SELECT jsonb_agg(t) FROM (SELECT DISTINCT jsonb_array_elements(s -> 'targets') t"
	"     FROM jsonb_array_elements(plan_snapshot -> 'steps') s LIMIT 20) x),"
	"  approval_level, started_at, coalesce(ended_at, clock_timestamp()), $6,"
	"  (extract(epoch FROM coalesce(ended_at, clock_timestamp()) - coalesce(started_at,"
	"   clock_timestamp())) * 1000)::bigint,"
	"  greatest(attempts - 1, 0),"
	"  (extract(epoch FROM coalesce(started_at, now()) - created_at) * 1000)::bigint,"
	"  worker_id, lease_renewals, cancel_checks_performed, mode, sla_class, timeout_policy_id";

/*
 * The governance hooks run inside the engine's transaction behind a savepoint: a failing hook
 * undoes only its own writes, the execution's records commit anyway, and the governance sweep
 * (gov.sync) repeats the hook later. Only executions with an event id get here, so the others
 * pay nothing.
 */
static int hook_open(PGconn *conn, struct shp_error *err)
{
	return shd_db_command(conn, "SAVEPOINT shd_exec_hook", 0, NULL, err);
}

static int hook_close(PGconn *conn, const char *ids, const char *which, int rc,
		      const struct shp_error *herr, struct shp_error *err)
{
	if (rc == 0)
		return shd_db_command(conn, "RELEASE SAVEPOINT shd_exec_hook", 0, NULL, err);
	log_error("execution %s: the %s hook failed (the governance sweep repeats it): %s", ids,
		  which, herr->msg);
	return shd_db_command(conn, "ROLLBACK TO SAVEPOINT shd_exec_hook", 0, NULL, err);
}

static int hook_finish(struct shd_exec_engine *e, PGconn *conn, int64_t id, const char *ids,
		       int64_t event_id, const struct outcome *o, struct shp_error *err)
{
	struct shp_error herr = SHP_ERROR_INIT;
	int rc;

	if (event_id <= 0 || !e->hooks.on_finish)
		return 0;
	if (hook_open(conn, err) < 0)
		return -err->code;
	rc = e->hooks.on_finish(conn, id, event_id, o->status, o->error_code,
				o->error_code ? o->error : NULL, e->hooks.arg, &herr);
	return hook_close(conn, ids, "on_finish", rc, &herr, err);
}

static int hook_start(struct run *r, int64_t event_id, struct shp_error *err)
{
	struct shp_error herr = SHP_ERROR_INIT;
	int rc;

	if (event_id <= 0 || !r->e->hooks.on_start)
		return 0;
	if (hook_open(r->conn, err) < 0)
		return -err->code;
	rc = r->e->hooks.on_start(r->conn, r->id, event_id, r->e->hooks.arg, &herr);
	return hook_close(r->conn, r->ids, "on_start", rc, &herr, err);
}

static int64_t event_of(const PGresult *res, int col)
{
	const char *v = shd_db_value(res, 0, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

/* Move to the terminal state in one transaction; a no-op if someone else already did. */
static void finish(struct run *r, struct outcome *o)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = NULL;
	_cleanup_(PQclearp) PGresult *cur = NULL;
	_cleanup_free_ char *result = o->result ? json_dumps(o->result, JSON_COMPACT) : NULL;
	const char *from;
	int64_t ms;

	if (shd_db_begin(r->conn, &err) < 0)
		goto fail;
	cur = shd_db_exec(r->conn,
			  "SELECT status, event_id FROM executions WHERE id = $1 FOR UPDATE", 1,
			  (const char *[]){r->ids}, &err);
	if (!cur || PQntuples(cur) == 0)
		goto fail;
	from = shd_db_value(cur, 0, 0);
	if (shd_fsm_is_terminal(&shd_fsm_execution, from)) {
		shd_db_rollback(r->conn);
		r->ended = true;
		return;
	}
	res = shd_db_exec(r->conn, finish_sql, 7,
			  (const char *[]){r->ids, o->error_code ? o->error : NULL, o->error_code,
					   o->timed_out ? "true" : "false", result, o->status,
					   o->invalidated ? "true" : "false"},
			  &err);
	if (!res || shd_exec_transition(r->conn, r->id, from, o->status, r->worker_id, &err) < 0 ||
	    hook_finish(r->e, r->conn, r->id, r->ids, event_of(cur, 1), o, &err) < 0 ||
	    shd_db_commit(r->conn, &err) < 0)
		goto fail;
	r->ended = true;
	ms = strtoll(shd_db_value(res, 0, 11), NULL, 10);
	shd_exec_metrics_finished(r->e, o->status, r->sla, r->first_action, ms, o->timed_out,
				  o->user_cancelled);
	log_finished(res, o);
	return;
fail:
	shd_db_rollback(r->conn);
	/* the job retries (or the lock and the lease expire): nothing is lost */
	log_error("execution %s: recording its end (%s) failed: %s", r->ids, o->status, err.msg);
}

static enum shd_job_outcome end_with(struct run *r, const char *status, const char *code,
				     bool timed_out, const char *fmt, ...) SHP_PRINTF(5, 6);

static enum shd_job_outcome end_with(struct run *r, const char *status, const char *code,
				     bool timed_out, const char *fmt, ...)
{
	struct outcome o = {.status = status, .error_code = code, .timed_out = timed_out};
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(o.error, sizeof(o.error), fmt, ap);
	va_end(ap);
	finish(r, &o);
	if (r->ended)
		return SHD_JOB_DONE;
	return r->job ? shd_job_fail(r->job, "recording the end failed") : SHD_JOB_FAILED;
}

/* ---- starting -------------------------------------------------------------------------- */

enum start { START_RUN, START_DONE, START_WAIT, START_RETRY };

/* Refuse the execution: it never ran (rejected) or stops now (failed). */
static enum start refuse(struct run *r, const char *code, const char *msg, bool timed_out)
{
	bool running = strcmp(r->status, "running") == 0;

	shd_db_rollback(r->conn);
	(void)end_with(r, running ? "failed" : "rejected", code, timed_out, "%s", msg);
	return START_DONE;
}

/* Defense in depth: the actor must still hold the right it had when it submitted. */
static int recheck_rbac(struct run *r, const PGresult *row, enum shd_action_class cls,
			const json_t *plan, bool *ret_ok, struct shp_error *err)
{
	const char *actor_id = shd_db_value(row, 0, 2);
	json_auto_t *data = NULL;

	*ret_ok = false;
	if (actor_id && shd_exec_plan_authorized(r->conn, strtoll(actor_id, NULL, 10), r->tenant,
						 cls, plan, ret_ok, err) < 0)
		return -err->code;
	if (*ret_ok)
		return 0;
	data = json_pack("{s:s,s:s?,s:s,s:s}", "actor", shd_db_value(row, 0, 3), "actor_id",
			 actor_id, "tenant", r->tenant, "action_class",
			 shd_action_class_to_string(cls));
	atomic_fetch_add_explicit(&r->e->m.rbac_violations, 1, memory_order_relaxed);
	shd_db_rollback(r->conn);
	log_warn("execution %s: rbac_violation: '%s' may no longer run a %s plan for tenant '%s'",
		 r->ids, shd_db_value(row, 0, 3), shd_action_class_to_string(cls), r->tenant);
	return shd_exec_event(r->conn, r->id, -1, "rbac_violation",
			      "the actor's permission on the tenant was refused at execution",
			      json_incref(data), err);
}

/* The plan must hash to what was recorded, and to what was approved. */
static bool plan_intact(const PGresult *row, const json_t *plan)
{
	char hash[SHP_SHA256_HEX_LEN + 1];
	const char *approved = shd_db_value(row, 0, 6);

	if (shd_plan_hash(plan, hash, NULL) < 0 || strcmp(hash, shd_db_value(row, 0, 5)) != 0)
		return false;
	return strcmp(shd_db_value(row, 0, 7), "approved") != 0 ||
	       (approved && strcmp(approved, hash) == 0);
}

/* Take the locks; busy means fail now, or wait while the execution's time lasts. */
static enum start take_locks(struct run *r, const json_t *plan, bool wait, struct shp_error *err)
{
	json_auto_t *keys = shd_exec_lock_keys(r->tenant, plan, err);
	int ttl;

	if (!keys)
		return refuse(r, "INVALID_ARGUMENT", err->msg, false);
	ttl = (int)(r->exec_left_ms > 0 ? r->exec_left_ms : 1) + EXEC_LOCK_SLACK_MS;
	if (shd_exec_lock_all(r->conn, r->id, keys, ttl, err) == 0)
		return START_RUN;
	if (err->code != SHP_E_CONFLICT)
		return START_RETRY;
	atomic_fetch_add_explicit(&r->e->m.lock_busy, 1, memory_order_relaxed);
	if (!wait)
		return refuse(r, "RESOURCE_BUSY", err->msg, false);
	if (r->exec_left_ms <= 0)
		return refuse(r, "TIMEOUT", "timed out waiting for a busy lock", true);
	shd_db_rollback(r->conn);
	/* one lock_busy event per execution, not one per poll */
	if (shd_db_command(r->conn,
			   "INSERT INTO execution_events (execution_id, type, message)"
			   " SELECT $1, 'lock_busy', left($2, 4096) WHERE NOT EXISTS"
			   " (SELECT 1 FROM execution_events WHERE execution_id = $1"
			   "   AND type = 'lock_busy')",
			   2, (const char *[]){r->ids, err->msg}, NULL) < 0)
		log_warn("execution %s: recording the busy lock failed, ignoring", r->ids);
	return START_WAIT;
}

static const char load_sql[] =
	"SELECT status, tenant_id, actor_id, actor, plan_snapshot, plan_hash, approved_plan_hash,"
	" approval_state, sla_class, cancelled_at IS NOT NULL, on_busy, record_only,"
	" (extract(epoch FROM coalesce(deadline_at,"
	"   created_at + make_interval(secs => timeout_ms / 1000.0)) - now()) * 1000)::bigint,"
	" timeout_ms, event_id"
	" FROM executions WHERE id = $1 FOR UPDATE";

static enum start start(struct run *r, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *row = NULL;
	json_auto_t *recorded = NULL;
	json_auto_t *plan = NULL;
	enum shd_action_class cls;
	enum start st;
	int64_t est;
	size_t ns, nt;
	bool ok;

	if (shd_db_begin(r->conn, err) < 0)
		return START_RETRY;
	row = shd_db_exec(r->conn, load_sql, 1, (const char *[]){r->ids}, err);
	if (!row)
		goto retry;
	if (PQntuples(row) == 0) {
		shd_db_rollback(r->conn);
		shp_error_set(err, SHP_E_NOTFOUND, "execution %s no longer exists", r->ids);
		return START_DONE;
	}
	(void)snprintf(r->status, sizeof(r->status), "%s", shd_db_value(row, 0, 0));
	(void)snprintf(r->tenant, sizeof(r->tenant), "%s", shd_db_value(row, 0, 1));
	r->sla = (enum shd_sla_class)shd_sla_class_from_string(shd_db_value(row, 0, 8));
	r->record_only = shd_db_value(row, 0, 11)[0] == 't';
	r->exec_left_ms = strtoll(shd_db_value(row, 0, 12), NULL, 10);
	if (shd_fsm_is_terminal(&shd_fsm_execution, r->status)) {
		shd_db_rollback(r->conn);
		return START_DONE;
	}
	if (shd_db_value(row, 0, 9)[0] == 't') {
		struct outcome o = {
			.status = "cancelled", .user_cancelled = true, .error_code = "CANCELLED"};
		shd_db_rollback(r->conn);
		(void)snprintf(o.error, sizeof(o.error), "cancelled before it started");
		finish(r, &o);
		return r->ended ? START_DONE : START_RETRY;
	}
	recorded = json_loads(shd_db_value(row, 0, 4), 0, NULL);
	if (!recorded || shd_exec_analyse(recorded, &plan, &cls, &est, &ns, &nt, err) < 0)
		return refuse(r, "INVALID_ARGUMENT", "the recorded plan no longer validates",
			      false);
	(void)snprintf(r->first_action, sizeof(r->first_action), "%s",
		       json_string_value(json_object_get(
			       json_array_get(json_object_get(plan, "steps"), 0), "action")));
	if (recheck_rbac(r, row, cls, plan, &ok, err) < 0)
		goto retry;
	if (!ok) {
		(void)end_with(r, strcmp(r->status, "running") == 0 ? "failed" : "rejected",
			       "RBAC_VIOLATION", false,
			       "the actor may no longer run this plan for tenant '%s'", r->tenant);
		return START_DONE;
	}
	if (!plan_intact(row, plan)) {
		struct outcome o = {.status = strcmp(r->status, "running") == 0 ? "failed"
										: "rejected",
				    .error_code = "APPROVAL_INVALIDATED",
				    .invalidated = true};
		shd_db_rollback(r->conn);
		(void)snprintf(o.error, sizeof(o.error),
			       "the plan changed after it was approved: approve it again");
		finish(r, &o);
		return r->ended ? START_DONE : START_RETRY;
	}
	st = take_locks(r, plan, strcmp(shd_db_value(row, 0, 10), "wait") == 0, err);
	if (st != START_RUN)
		return st == START_RETRY ? (shd_db_rollback(r->conn), START_RETRY) : st;
	if (strcmp(r->status, "pending") == 0 &&
	    (shd_exec_transition(r->conn, r->id, "pending", "running", r->worker_id, err) < 0 ||
	     hook_start(r, event_of(row, 14), err) < 0))
		goto retry;
	if (shd_db_command(
		    r->conn,
		    "UPDATE executions SET worker_id = left($2, 100), attempts = attempts + 1"
		    " WHERE id = $1",
		    2, (const char *[]){r->ids, r->worker_id}, err) < 0 ||
	    shd_db_commit(r->conn, err) < 0)
		goto retry;
	/* a new run has its whole timeout; a resumed one what is left of it */
	if (strcmp(r->status, "pending") == 0)
		r->exec_left_ms = strtoll(shd_db_value(row, 0, 13), NULL, 10);
	r->deadline_ns =
		mono_ns() + (uint64_t)(r->exec_left_ms > 0 ? r->exec_left_ms : 0) * 1000000u;
	return START_RUN;
retry:
	shd_db_rollback(r->conn);
	return START_RETRY;
}

/* ---- the steps ------------------------------------------------------------------------- */

static bool is_transient(enum shp_errc c)
{
	return c == SHP_E_UNAVAIL || c == SHP_E_DB || c == SHP_E_K8S || c == SHP_E_IO ||
	       c == SHP_E_RATE;
}

/* Between steps: has anyone asked to cancel? Counted in cancel_checks_performed. */
static int cancel_requested(struct run *r, bool *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		r->conn,
		"UPDATE executions SET cancel_checks_performed = cancel_checks_performed + 1"
		" WHERE id = $1 RETURNING cancelled_at IS NOT NULL",
		1, (const char *[]){r->ids}, err);

	if (!res)
		return -err->code;
	*ret = PQntuples(res) == 0 || shd_db_value(res, 0, 0)[0] == 't';
	return 0;
}

static int step_begin(struct run *r, int idx, int *ret_attempt, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char si[16], msg[160];

	(void)snprintf(si, sizeof(si), "%d", idx);
	res = shd_db_exec(r->conn,
			  "UPDATE execution_steps SET status = 'running', attempts = attempts + 1,"
			  " started_at = coalesce(started_at, now()), ended_at = NULL, error = NULL"
			  " WHERE execution_id = $1 AND step_index = $2 RETURNING attempts, action",
			  2, (const char *[]){r->ids, si}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_INTERNAL, "step %d is missing", idx);
	*ret_attempt = (int)strtol(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(msg, sizeof(msg), "step %d '%s' started (attempt %d)", idx,
		       shd_db_value(res, 0, 1), *ret_attempt);
	return shd_exec_event(r->conn, r->id, idx, "step_started", msg,
			      json_pack("{s:i}", "attempt", *ret_attempt), err);
}

static int step_end(struct run *r, int idx, const char *status, bool timed_out,
		    const json_t *result, const char *error, struct shp_error *err)
{
	_cleanup_free_ char *res = result ? json_dumps(result, JSON_COMPACT) : NULL;
	char si[16], msg[640];

	(void)snprintf(si, sizeof(si), "%d", idx);
	if (shd_db_command(
		    r->conn,
		    "UPDATE execution_steps SET status = $3::step_status, ended_at = now(),"
		    " timed_out = $4::boolean, error = left($6, 4096),"
		    " result = CASE WHEN octet_length($5) <= 10240 THEN $5::jsonb END"
		    " WHERE execution_id = $1 AND step_index = $2",
		    6,
		    (const char *[]){r->ids, si, status, timed_out ? "true" : "false", res, error},
		    err) < 0)
		return -err->code;
	(void)snprintf(msg, sizeof(msg), "step %d %s%s%.500s", idx, status, error ? ": " : "",
		       error ? error : "");
	return shd_exec_event(r->conn, r->id, idx, "step_finished", msg,
			      json_pack("{s:s,s:b}", "status", status, "timed_out", timed_out),
			      err);
}

/* Run one step; returns SHD_JOB_DONE to go on, anything else ends the run with that. */
static int run_step(struct run *r, const PGresult *steps, int row, enum shd_job_outcome *ret,
		    struct shp_error *err)
{
	struct shp_error aerr = SHP_ERROR_INIT;
	int idx = (int)strtol(PQgetvalue(steps, row, 0), NULL, 10);
	const struct shd_action *a = shd_action_find(PQgetvalue(steps, row, 1));
	json_auto_t *targets = json_loads(PQgetvalue(steps, row, 2), 0, NULL);
	json_auto_t *params = json_loads(PQgetvalue(steps, row, 3), 0, NULL);
	int64_t step_ms = strtoll(PQgetvalue(steps, row, 4), NULL, 10);
	struct shd_step_ctx s = {.conn = r->conn,
				 .execution_id = r->id,
				 .step_index = idx,
				 .tenant = r->tenant,
				 .targets = targets,
				 .params = params,
				 .job = r->job,
				 .providers = r->e->providers};
	uint64_t now = mono_ns(), step_deadline = now + (uint64_t)step_ms * 1000000u;
	json_auto_t *result = NULL;
	int rc;

	*ret = SHD_JOB_DONE;
	if (step_begin(r, idx, &s.attempt, err) < 0)
		return -err->code;
	if (r->record_only) {
		json_auto_t *note = json_pack("{s:b}", "record_only", true);
		return step_end(r, idx, "skipped", false, note, NULL, err);
	}
	if (!a || !targets || !params) {
		*ret = end_with(r, "failed", "INVALID_ARGUMENT", false, "step %d is unreadable",
				idx);
		return 0;
	}
	s.deadline_ns = step_deadline < r->deadline_ns ? step_deadline : r->deadline_ns;
	rc = a->run(&s, &aerr);
	result = s.result;
	if (rc == 0)
		return step_end(r, idx, "succeeded", false, result, NULL, err);
	if (aerr.code == SHP_E_TIMEOUT || mono_ns() >= s.deadline_ns) {
		if (step_end(r, idx, "failed", true, result, aerr.msg, err) < 0)
			return -err->code;
		if (shd_exec_event(r->conn, r->id, idx, "timeout", aerr.msg, NULL, NULL) < 0)
			log_warn("execution %s: recording the timeout event failed, ignoring",
				 r->ids);
		*ret = end_with(r, "failed", "TIMEOUT", true, "step %d timed out: %s", idx,
				aerr.msg);
		return 0;
	}
	if (step_end(r, idx, "failed", false, result, aerr.msg, err) < 0)
		return -err->code;
	if (is_transient(aerr.code) && r->job && r->job->attempt < r->job->max_attempts) {
		*ret = shd_job_fail(r->job, "step %d: %s", idx, aerr.msg);
		return 0;
	}
	if (is_transient(aerr.code) && r->job) {
		/* out of attempts: the execution fails and its job goes to the dead-letter queue */
		*ret = end_with(r, "failed", shp_error_api_code_of(&aerr), false,
				"step %d: %s (after %d attempts)", idx, aerr.msg, r->job->attempt);
		if (*ret == SHD_JOB_DONE) {
			(void)shd_job_fail(r->job, "step %d: %s", idx, aerr.msg);
			*ret = SHD_JOB_DISCARD;
		}
		return 0;
	}
	*ret = end_with(r, "failed", shp_error_api_code_of(&aerr), false, "step %d: %s", idx,
			aerr.msg);
	return 0;
}

static enum shd_job_outcome run_steps(struct run *r, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *steps = shd_db_exec(
		r->conn,
		"SELECT step_index, action, targets, params, timeout_ms FROM execution_steps"
		" WHERE execution_id = $1 AND status NOT IN ('succeeded', 'skipped')"
		" ORDER BY step_index",
		1, (const char *[]){r->ids}, err);
	enum shd_job_outcome o = SHD_JOB_DONE;
	struct outcome done = {.status = "succeeded"};
	json_auto_t *summary = NULL;
	bool cancel = false;

	if (!steps)
		return SHD_JOB_FAILED;
	for (int i = 0; i < PQntuples(steps); i++) {
		if (cancel_requested(r, &cancel, err) < 0)
			return SHD_JOB_FAILED;
		if (cancel) {
			struct outcome c = {.status = "cancelled", .user_cancelled = true};
			(void)snprintf(c.error, sizeof(c.error), "cancelled before step %s",
				       PQgetvalue(steps, i, 0));
			c.error_code = "CANCELLED";
			finish(r, &c);
			return r->ended ? SHD_JOB_DONE : SHD_JOB_FAILED;
		}
		if (mono_ns() >= r->deadline_ns)
			return end_with(r, "failed", "TIMEOUT", true,
					"the execution's time ran out before step %s",
					PQgetvalue(steps, i, 0));
		if (run_step(r, steps, i, &o, err) < 0)
			return SHD_JOB_FAILED;
		if (o != SHD_JOB_DONE || r->ended)
			return o;
	}
	summary = json_pack("{s:i,s:b}", "steps_run", PQntuples(steps), "record_only",
			    r->record_only);
	done.result = summary;
	finish(r, &done);
	return r->ended ? SHD_JOB_DONE : SHD_JOB_FAILED;
}

/* ---- the entry points ------------------------------------------------------------------- */

enum shd_job_outcome shd_exec_run(struct shd_exec_engine *e, PGconn *conn, int64_t id,
				  struct shd_job *job, const char *worker_id)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct run r = {.e = e, .conn = conn, .id = id, .job = job, .worker_id = worker_id};
	uint64_t wait_until = mono_ns() + (uint64_t)e->cfg.immediate_max_ms * 1000000u;
	struct timespec poll = {.tv_sec = e->cfg.lock_wait_poll_ms / 1000,
				.tv_nsec = (long)(e->cfg.lock_wait_poll_ms % 1000) * 1000000L};
	enum shd_job_outcome o;

	(void)snprintf(r.ids, sizeof(r.ids), "%" PRId64, id);
	shp_log_ctx_set("exec", r.ids);
	for (;;) {
		enum start st = start(&r, &err);
		if (st == START_RUN)
			break;
		if (st == START_WAIT && !job && mono_ns() < wait_until) {
			(void)nanosleep(&poll,
					NULL); /* inline: wait here, a request's time at most */
			continue;
		}
		if (st == START_WAIT && !job) {
			struct outcome busy = {.status = "rejected", .error_code = "RESOURCE_BUSY"};
			(void)snprintf(busy.error, sizeof(busy.error),
				       "a target stayed busy for the %" PRId64
				       " ms an inline task may "
				       "wait; submit it again later",
				       e->cfg.immediate_max_ms);
			finish(&r, &busy);
			shp_log_ctx_unset("exec");
			return SHD_JOB_DONE;
		}
		shp_log_ctx_unset("exec");
		if (st == START_WAIT)
			return shd_job_snooze(job, e->cfg.lock_wait_poll_ms);
		if (st == START_DONE)
			return err.code == SHP_E_NOTFOUND && job ? SHD_JOB_CANCEL : SHD_JOB_DONE;
		log_warn("execution %s: starting failed: %s", r.ids, err.msg);
		return job ? shd_job_fail(job, "starting execution %s: %s", r.ids, err.msg)
			   : SHD_JOB_FAILED;
	}
	o = run_steps(&r, &err);
	if (job && job->renewals > 0) {
		char n[16];
		(void)snprintf(n, sizeof(n), "%d", job->renewals);
		if (shd_db_command(conn,
				   "UPDATE executions SET lease_renewals = lease_renewals + $2::int"
				   " WHERE id = $1",
				   2, (const char *[]){r.ids, n}, NULL) < 0)
			log_warn("execution %s: recording lease renewals failed, ignoring", r.ids);
	}
	if (o == SHD_JOB_FAILED && !r.ended) {
		if (err.code)
			log_warn("execution %s: this run stopped: %s", r.ids, err.msg);
		if (job && !job->error[0])
			o = shd_job_fail(job, "execution %s: %s", r.ids,
					 err.code ? err.msg : "failed");
	}
	shp_log_ctx_unset("exec");
	return o;
}

int shd_exec_cancel(struct shd_exec_engine *e, PGconn *conn, int64_t id, const char *by,
		    const char *reason, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *row = NULL;
	const char *status, *job;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	row = shd_db_exec(conn,
			  "SELECT status, cancelled_at IS NOT NULL, job_id, sla_class, event_id "
			  "FROM executions"
			  " WHERE id = $1 FOR UPDATE",
			  1, (const char *[]){ids}, err);
	if (!row)
		goto fail;
	if (PQntuples(row) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "task %s not found", ids);
		goto fail;
	}
	status = shd_db_value(row, 0, 0);
	job = shd_db_value(row, 0, 2);
	if (shd_fsm_is_terminal(&shd_fsm_execution, status) || shd_db_value(row, 0, 1)[0] == 't') {
		shd_db_rollback(conn); /* finished, or already asked: nothing more to do */
		return 0;
	}
	if (shd_db_command(conn,
			   "UPDATE executions SET cancelled_by = $2, cancelled_at = now(),"
			   " cancel_reason = left($3, 1024) WHERE id = $1",
			   3, (const char *[]){ids, by, reason ? reason : ""}, err) < 0 ||
	    shd_exec_event(conn, id, -1, "cancel_requested", reason && *reason ? reason : "",
			   json_pack("{s:s}", "by", by), err) < 0)
		goto fail;
	if (strcmp(status, "pending") == 0) {
		struct outcome o = {.status = "cancelled", .error_code = "CANCELLED"};
		(void)snprintf(o.error, sizeof(o.error), "cancelled before it started");
		if (shd_db_command(conn,
				   "UPDATE executions SET error = 'cancelled before it started',"
				   " error_code = 'CANCELLED' WHERE id = $1",
				   1, (const char *[]){ids}, err) < 0 ||
		    shd_exec_transition(conn, id, "pending", "cancelled", by, err) < 0 ||
		    hook_finish(e, conn, id, ids, event_of(row, 4), &o, err) < 0)
			goto fail;
	}
	/* a queued job is cancelled at once; a running one is told and stops between steps */
	if (job && shd_job_cancel(conn, strtoll(job, NULL, 10), NULL, err) < 0 &&
	    err->code != SHP_E_NOTFOUND)
		goto fail;
	if (shd_db_commit(conn, err) < 0)
		goto fail;
	if (strcmp(status, "pending") == 0)
		shd_exec_metrics_finished(
			e, "cancelled",
			(enum shd_sla_class)shd_sla_class_from_string(shd_db_value(row, 0, 3)),
			NULL, -1, false, true);
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

/*
 * The sweeper (leader, periodic): an execution still pending or running a minute past its
 * deadline with no live job behind it lost its runner (an inline run whose daemon died); it
 * is ended as timed out so its locks are freed and its waiters learn the outcome.
 */
static int sweep(struct shd_exec_engine *e, PGconn *conn, int *ret_count, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT x.id, x.sla_class FROM executions x"
		" WHERE x.status IN ('pending', 'running')"
		"   AND coalesce(x.deadline_at, x.created_at + make_interval(secs => x.timeout_ms"
		"     / 1000.0)) + interval '60 seconds' < now()"
		"   AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = x.job_id"
		"     AND j.state IN ('available', 'scheduled', 'running', 'retryable'))"
		" ORDER BY x.id LIMIT 100",
		0, NULL, err);

	*ret_count = 0;
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		struct run r = {.e = e, .conn = conn, .worker_id = "sweeper"};
		struct outcome o = {.status = "failed", .error_code = "TIMEOUT", .timed_out = true};
		_cleanup_(PQclearp) PGresult *st = NULL;

		r.id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		(void)snprintf(r.ids, sizeof(r.ids), "%" PRId64, r.id);
		r.sla = (enum shd_sla_class)shd_sla_class_from_string(PQgetvalue(res, i, 1));
		st = shd_db_exec(conn, "SELECT status FROM executions WHERE id = $1", 1,
				 (const char *[]){r.ids}, err);
		if (!st)
			return -err->code;
		if (PQntuples(st) && strcmp(shd_db_value(st, 0, 0), "pending") == 0)
			o.status = "rejected";
		(void)snprintf(o.error, sizeof(o.error),
			       "abandoned: its runner stopped before it finished");
		finish(&r, &o);
		if (r.ended)
			(*ret_count)++;
	}
	return 0;
}

/* The job kinds: the job's args carry only the execution id. */
struct exec_kind_ctx {
	struct shd_exec_engine *e;
	char worker_id[128];
};

static enum shd_job_outcome exec_job(struct shd_job *job, void *ctx)
{
	struct exec_kind_ctx *k = ctx;
	struct shp_error err = SHP_ERROR_INIT;
	const json_t *id = json_object_get(job->args, "execution_id");
	PGconn *conn;

	if (!json_is_integer(id) || json_integer_value(id) <= 0) {
		(void)shd_job_fail(job, "job arguments carry no execution_id");
		return SHD_JOB_DISCARD;
	}
	conn = shd_job_conn(job, &err);
	if (!conn)
		return shd_job_fail(job, "%s", err.msg);
	return shd_exec_run(k->e, conn, json_integer_value(id), job, k->worker_id);
}

static enum shd_job_outcome sweep_job(struct shd_job *job, void *ctx)
{
	struct exec_kind_ctx *k = ctx;
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	if (!conn || sweep(k->e, conn, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (n > 0)
		log_warn("ended %d abandoned execution(s) as timed out", n);
	return SHD_JOB_DONE;
}

#define EXEC_QUEUES_MAX 8

struct shd_exec_engine_kinds {
	struct exec_kind_ctx ctx[EXEC_QUEUES_MAX];
	int n;
};

struct shd_exec_engine *shd_exec_engine_new(const struct shd_exec_config *cfg,
					    struct shp_error *err)
{
	struct shd_exec_engine *e = calloc(1, sizeof(*e));

	if (!e) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	e->cfg = *cfg;
	if (e->cfg.immediate_max_ms <= 0)
		e->cfg.immediate_max_ms = 10000;
	if (e->cfg.immediate_max_steps <= 0)
		e->cfg.immediate_max_steps = 20;
	if (e->cfg.immediate_max_targets <= 0)
		e->cfg.immediate_max_targets = 50;
	if (e->cfg.dedupe_window_s < 0)
		e->cfg.dedupe_window_s = 0;
	if (e->cfg.lock_wait_poll_ms <= 0)
		e->cfg.lock_wait_poll_ms = 500;
	return e;
}

struct shd_exec_engine *shd_exec_engine_free(struct shd_exec_engine *e)
{
	if (e)
		free(e->kinds);
	free(e);
	return NULL;
}

void shd_exec_set_providers(struct shd_exec_engine *e, struct shd_providers *providers)
{
	e->providers = providers;
}

void shd_exec_set_hooks(struct shd_exec_engine *e, const struct shd_exec_hooks *h)
{
	e->hooks = *h;
}

atomic_uint_fast64_t *shd_exec_reaped_counter(struct shd_exec_engine *e)
{
	return &e->m.locks_reaped;
}

int shd_exec_register(struct shd_exec_engine *e, struct shd_queue *q, struct shp_error *err)
{
	/* a job's lease starts from its SLA's longest step; long plans renew it by heartbeat */
	static const int lease_ms[_SHD_SLA_MAX] = {10000, 30000, 60000};
	struct exec_kind_ctx *k;

	if (!e->kinds && !(e->kinds = calloc(1, sizeof(*e->kinds))))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (e->kinds->n >= EXEC_QUEUES_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "too many queues for one engine");
	k = &e->kinds->ctx[e->kinds->n++];
	k->e = e;
	(void)snprintf(k->worker_id, sizeof(k->worker_id), "%s", shd_queue_worker_id(q));
	for (int c = 0; c < _SHD_SLA_MAX; c++) {
		static const char *const names[] = {"exec.fast", "exec.medium", "exec.long"};
		struct shd_job_kind kind = {
			.name = names[c], .run = exec_job, .ctx = k, .timeout_ms = lease_ms[c]};
		if (shd_queue_register(q, &kind, err) < 0)
			return -err->code;
	}
	struct shd_job_kind sw = {
		.name = "exec.sweep", .run = sweep_job, .ctx = k, .timeout_ms = 30000};
	if (shd_queue_register(q, &sw, err) < 0)
		return -err->code;
	return shd_queue_add_periodic(q, "exec.sweep", "@every 30s", "exec.sweep", "{}", err);
}
