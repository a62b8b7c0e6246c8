/*
 * The execution engine's records: progress events, the FSM-checked terminal and non-terminal
 * transitions (which release locks), lock keys, the task, step and event objects of the API,
 * the tenant authorisation check, and the engine's metrics.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "canon.h"
#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "fsm.h"
#include "locks.h"
#include "shepherdd.h"
#include "util.h"

/* In the order of the execution_status enum. */
static const char *const statuses[EXEC_STATUS_N] = {"pending", "running",   "succeeded",
						    "failed",  "cancelled", "rejected"};

int shd_exec_status_index(const char *status)
{
	for (int i = 0; i < EXEC_STATUS_N; i++)
		if (strcmp(statuses[i], status) == 0)
			return i;
	return -1;
}

void shd_exec_owner(int64_t id, char out[32])
{
	(void)snprintf(out, 32, "exec:%" PRId64, id);
}

int shd_exec_event(PGconn *conn, int64_t id, int step, const char *type, const char *message,
		   json_t *data, struct shp_error *err)
{
	json_auto_t *taken = data;
	_cleanup_free_ char *d = taken ? json_dumps(taken, JSON_COMPACT) : NULL;
	char ids[24], steps[16];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	(void)snprintf(steps, sizeof(steps), "%d", step);
	return shd_db_command(
		conn,
		"INSERT INTO execution_events (execution_id, step_index, type, message,"
		" data) VALUES ($1, $2, $3, left($4, 4096), coalesce($5::jsonb, '{}'))",
		5, (const char *[]){ids, step >= 0 ? steps : NULL, type, message, d}, err);
}

/*
 * started_at and ended_at are the moments themselves, not the transaction's start: a claim that
 * waited on a lock its holder released starts after that holder ended. An execution that never
 * started has no end either (valid_timing).
 */
static const char transition_sql[] =
	"UPDATE executions SET status = $2::execution_status,"
	" last_transition_from = status, last_transition_at = now(), last_transition_by = $3,"
	" started_at = CASE WHEN $2 = 'running'"
	"   THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,"
	" ended_at = CASE WHEN $4 AND started_at IS NOT NULL THEN clock_timestamp()"
	"   ELSE ended_at END,"
	" deadline_at = CASE WHEN $2 = 'running' AND deadline_at IS NULL"
	"   THEN now() + make_interval(secs => timeout_ms / 1000.0) ELSE deadline_at END"
	" WHERE id = $1";

int shd_exec_transition(PGconn *conn, int64_t id, const char *from, const char *to, const char *by,
			struct shp_error *err)
{
	bool terminal = shd_fsm_is_terminal(&shd_fsm_execution, to);
	char ids[24], owner[32], msg[96];

	if (shd_fsm_check(&shd_fsm_execution, from, to, err) < 0)
		return -err->code;
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (shd_db_command(conn, transition_sql, 4,
			   (const char *[]){ids, to, by, terminal ? "true" : "false"}, err) < 0)
		return -err->code;
	(void)snprintf(msg, sizeof(msg), "%s -> %s", from, to);
	if (shd_exec_event(conn, id, -1, "status", msg,
			   json_pack("{s:s,s:s,s:s}", "from", from, "to", to, "by", by), err) < 0)
		return -err->code;
	if (!terminal)
		return 0;
	shd_exec_owner(id, owner);
	if (shd_db_command(conn,
			   "UPDATE execution_steps SET status = 'skipped'"
			   " WHERE execution_id = $1 AND status = 'pending'",
			   1, (const char *[]){ids}, err) < 0)
		return -err->code;
	return shd_db_command(conn, "DELETE FROM execution_locks WHERE owner = $1", 1,
			      (const char *[]){owner}, err);
}

/* A target as it goes into a lock key: a string as it is, an object as canonical JSON. */
static int target_ref(const json_t *t, struct shp_buf *out, struct shp_error *err)
{
	shp_buf_reset(out);
	if (json_is_string(t))
		return shp_buf_add(out, json_string_value(t)) < 0
			       ? shp_error_set(err, SHP_E_LIMIT, "target is too long")
			       : 0;
	return shp_canon_json(t, out, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		      json_string_value(*(json_t *const *)b));
}

json_t *shd_exec_lock_keys(const char *tenant, const json_t *plan, struct shp_error *err)
{
	struct shp_buf ref __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(4096);
	json_auto_t *keys = json_array();
	const json_t *step, *t;
	size_t i, k, n;
	json_t **v;
	char key[SHD_LOCK_KEY_MAX];

	json_array_foreach(json_object_get(plan, "steps"), i, step)
	{
		const char *action = json_string_value(json_object_get(step, "action"));
		json_array_foreach(json_object_get(step, "targets"), k, t)
		{
			if (target_ref(t, &ref, err) < 0 ||
			    shd_lock_key(tenant, ref.buf, action, key, sizeof(key), err) < 0) {
				shp_error_prefix(err, "step %zu", i);
				return NULL;
			}
			if (json_array_size(keys) >= EXEC_LOCKS_MAX * 4) {
				shp_error_set(err, SHP_E_LIMIT,
					      "the plan locks more than %d targets",
					      EXEC_LOCKS_MAX);
				return NULL;
			}
			json_array_append_new(keys, json_string(key));
		}
	}
	/* sort and drop duplicates: one action on one target is one lock */
	n = json_array_size(keys);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(keys, i);
	qsort(v, n, sizeof(*v), cmp_str);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(json_string_value(v[i]), json_string_value(v[i - 1])) != 0)
			json_array_append(out, v[i]);
	free(v);
	if (json_array_size(out) > EXEC_LOCKS_MAX) {
		json_decref(out);
		shp_error_set(err, SHP_E_LIMIT, "the plan locks more than %d targets",
			      EXEC_LOCKS_MAX);
		return NULL;
	}
	return out;
}

int shd_exec_lock_all(PGconn *conn, int64_t id, const json_t *keys, int ttl_ms,
		      struct shp_error *err)
{
	const json_t *k;
	char owner[32];
	size_t i;

	shd_exec_owner(id, owner);
	json_array_foreach(keys, i, k) if (shd_lock_acquire(conn, json_string_value(k), owner,
							    ttl_ms, id, err) < 0) return -err->code;
	return 0;
}

/* ---- the API's objects ------------------------------------------------------------------ */

#define TASK_COLUMNS                                                                               \
	"e.id, e.tenant_id, e.actor, e.status, e.mode, e.mode_reason, e.sla_class, e.priority,"    \
	" e.approval_level, e.approval_state, e.record_only, e.plan_hash, e.estimated_ms,"         \
	" e.timeout_ms, e.timeout_policy_id, e.timed_out, e.job_id, e.worker_id,"                  \
	" e.lease_renewals, e.cancel_checks_performed, e.cancelled_by, e.cancelled_at,"            \
	" e.cancel_reason, e.result_summary, e.error, e.error_code,"                               \
	" (SELECT count(*) FROM execution_steps s WHERE s.execution_id = e.id),"                   \
	" (SELECT count(*) FROM execution_steps s WHERE s.execution_id = e.id"                     \
	"   AND s.status NOT IN ('pending', 'running')),"                                          \
	" e.attempts, e.created_at, e.started_at, e.ended_at, e.last_transition_at,"               \
	" e.last_transition_by, e.last_transition_from, '" SHP_ROUTE_TASKS "/' || e.id,"           \
	" (extract(epoch FROM e.ended_at - e.started_at) * 1000)::bigint,"                         \
	" (extract(epoch FROM e.started_at - e.created_at) * 1000)::bigint"

const struct shd_col shd_exec_task_cols[] = {
	{"id", COL_INT},
	{"tenant", COL_TEXT},
	{"actor", COL_TEXT},
	{"status", COL_TEXT},
	{"mode", COL_TEXT},
	{"mode_reason", COL_TEXT},
	{"sla_class", COL_TEXT},
	{"priority", COL_INT},
	{"approval_level", COL_INT},
	{"approval_state", COL_TEXT},
	{"record_only", COL_BOOL},
	{"plan_hash", COL_TEXT},
	{"estimated_ms", COL_INT},
	{"timeout_ms", COL_INT},
	{"timeout_policy_id", COL_TEXT},
	{"timed_out", COL_BOOL},
	{"job_id", COL_INT},
	{"worker_id", COL_TEXT},
	{"lease_renewals", COL_INT},
	{"cancel_checks_performed", COL_INT},
	{"cancelled_by", COL_TEXT},
	{"cancelled_at", COL_TIME},
	{"cancel_reason", COL_TEXT},
	{"result", COL_JSON},
	{"error", COL_TEXT},
	{"error_code", COL_TEXT},
	{"steps_total", COL_INT},
	{"steps_done", COL_INT},
	{"attempts", COL_INT},
	{"created_at", COL_TIME},
	{"started_at", COL_TIME},
	{"ended_at", COL_TIME},
	{"last_transition_at", COL_TIME},
	{"last_transition_by", COL_TEXT},
	{"last_transition_from", COL_TEXT},
	{"status_url", COL_TEXT},
	{"duration_ms", COL_INT},
	{"queue_wait_ms", COL_INT},
	{"plan", COL_JSON}, /* only in the single-task query */
};
const int shd_exec_task_ncols_list = (int)SHP_ARRAY_SIZE(shd_exec_task_cols) - 1;

PGresult *shd_exec_list(PGconn *conn, const struct shd_exec_filter *f, struct shp_error *err)
{
	char uid[24], before[24], lim[16];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, f->user_id);
	(void)snprintf(before, sizeof(before), "%" PRId64, f->before_id);
	(void)snprintf(lim, sizeof(lim), "%d", f->limit + 1);
	return shd_db_exec(
		conn,
		"SELECT " TASK_COLUMNS " FROM executions e"
		" WHERE ($1::boolean OR e.tenant_id IN"
		"        (SELECT tenant_id FROM tenant_members WHERE user_id = $2::bigint))"
		"   AND ($3::text IS NULL OR e.status = $3::execution_status)"
		"   AND ($4::text IS NULL OR e.tenant_id = $4)"
		"   AND ($5::bigint = 0 OR e.id < $5::bigint)"
		" ORDER BY e.id DESC LIMIT $6::int",
		6,
		(const char *[]){f->all ? "true" : "false", uid, f->status, f->tenant, before, lim},
		err);
}

static const struct shd_col step_cols[] = {
	{"index", COL_INT},      {"action", COL_TEXT},    {"targets", COL_JSON},
	{"params", COL_JSON},    {"status", COL_TEXT},    {"attempts", COL_INT},
	{"timeout_ms", COL_INT}, {"timed_out", COL_BOOL}, {"started_at", COL_TIME},
	{"ended_at", COL_TIME},  {"result", COL_JSON},    {"error", COL_TEXT},
};

static const struct shd_col event_cols[] = {
	{"id", COL_INT},          {"task_id", COL_INT},  {"type", COL_TEXT},
	{"step_index", COL_INT},  {"message", COL_TEXT}, {"data", COL_JSON},
	{"created_at", COL_TIME},
};

static json_t *steps_json(PGconn *conn, const char *ids, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT step_index, action, targets, params, status, attempts, timeout_ms,"
		" timed_out, started_at, ended_at, result, error FROM execution_steps"
		" WHERE execution_id = $1 ORDER BY step_index",
		1, (const char *[]){ids}, err);
	json_t *steps;

	if (!res)
		return NULL;
	steps = json_array();
	for (int i = 0; steps && i < PQntuples(res); i++)
		if (json_array_append_new(steps, shd_row_to_json(res, i, step_cols,
								 SHP_ARRAY_SIZE(step_cols))) < 0) {
			steps = (json_decref(steps), NULL);
			shp_error_set(err, SHP_E_NOMEM, "out of memory");
		}
	return steps;
}

json_t *shd_exec_get(PGconn *conn, int64_t id, bool with_steps, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *task = NULL;
	json_t *steps;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn,
			  "SELECT " TASK_COLUMNS ", e.plan_snapshot FROM executions e"
			  " WHERE e.id = $1",
			  1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "task %s not found", ids);
		return NULL;
	}
	task = shd_row_to_json(res, 0, shd_exec_task_cols, (int)SHP_ARRAY_SIZE(shd_exec_task_cols));
	if (!task) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	if (with_steps) {
		steps = steps_json(conn, ids, err);
		if (!steps || json_object_set_new(task, "steps", steps) < 0)
			return NULL;
	}
	return json_incref(task);
}

int shd_exec_tenant(PGconn *conn, int64_t id, char *out, size_t size, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn, "SELECT tenant_id FROM executions WHERE id = $1", 1,
			  (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "task %s not found", ids);
	(void)snprintf(out, size, "%s", shd_db_value(res, 0, 0));
	return 0;
}

json_t *shd_exec_events(PGconn *conn, int64_t id, int64_t after_id, int limit,
			struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *st = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *items = json_array();
	char ids[24], after[24], lim[16];
	int64_t last = after_id;
	bool terminal;
	int n;

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	(void)snprintf(after, sizeof(after), "%" PRId64, after_id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	/*
	 * The status is read before the events: an event written after that read is either in
	 * this page or reported as not done, so "done" never hides an event.
	 */
	st = shd_db_exec(conn,
			 "SELECT status IN ('succeeded', 'failed', 'cancelled', 'rejected')"
			 " FROM executions WHERE id = $1",
			 1, (const char *[]){ids}, err);
	if (!st)
		return NULL;
	if (PQntuples(st) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "task %s not found", ids);
		return NULL;
	}
	terminal = shd_db_value(st, 0, 0)[0] == 't';
	res = shd_db_exec(conn,
			  "SELECT id, execution_id, type, step_index, message, data, created_at"
			  " FROM execution_events WHERE execution_id = $1 AND id > $2"
			  " ORDER BY id LIMIT $3",
			  3, (const char *[]){ids, after, lim}, err);
	if (!res || !items)
		return NULL;
	n = PQntuples(res);
	for (int i = 0; i < n && i < limit; i++) {
		json_t *ev = shd_row_to_json(res, i, event_cols, SHP_ARRAY_SIZE(event_cols));
		if (!ev || json_array_append_new(items, ev) < 0) {
			shp_error_set(err, SHP_E_NOMEM, "out of memory");
			return NULL;
		}
		last = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	}
	json_t *page = json_object();
	if (!page || json_object_set(page, SHP_API_FIELD_ITEMS, items) < 0 ||
	    json_object_set_new(page, "last_event_id", json_integer(last)) < 0 ||
	    json_object_set_new(page, "done", json_boolean(terminal && n <= limit)) < 0) {
		json_decref(page);
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	return page;
}

int shd_tenant_role(PGconn *conn, int64_t user_id, const char *tenant, char *out, size_t size,
		    struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	/* members from effective_tenant_members (principal mappings included) */
	res = shd_db_exec(conn, "SELECT user_system_role($2::bigint, $1)", 2,
			  (const char *[]){tenant, uid}, err);
	if (!res)
		return -err->code;
	(void)snprintf(out, size, "%s", PQntuples(res) ? shd_db_value(res, 0, 0) : "");
	return 0;
}

int shd_exec_authorized(PGconn *conn, int64_t user_id, const char *tenant,
			enum shd_action_class cls, bool *ret_ok, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];
	const char *role;

	(void)snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	/* the user row is read again: an admin demoted or a user disabled since the request counts
	 */
	res = shd_db_exec(conn,
			  "SELECT EXISTS (SELECT 1 FROM effective_role_bindings b"
			  "  WHERE b.user_id = u.id AND b.role = 'platform-admin'),"
			  " u.disabled_at IS NOT NULL, nullif(user_system_role(u.id, $2), '')"
			  " FROM users u WHERE u.id = $1",
			  2, (const char *[]){uid, tenant}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0 || shd_db_value(res, 0, 1)[0] == 't') {
		*ret_ok = false;
		return 0;
	}
	role = shd_db_value(res, 0, 2);
	*ret_ok = shd_db_value(res, 0, 0)[0] == 't' ||
		  (role && (strcmp(role, "owner") == 0 || strcmp(role, "member") == 0)) ||
		  (role && strcmp(role, "viewer") == 0 && cls == SHD_ACTION_READ);
	return 0;
}

/* ---- metrics ----------------------------------------------------------------------------- */

const uint64_t shd_exec_hist_ms[EXEC_HIST_N - 1] = {10,   50,    100,   250,   500,    1000,  2500,
						    5000, 10000, 30000, 60000, 300000, 600000};

static int action_index(const char *name)
{
	int i = 0;

	for (const struct shd_action *a = shd_actions; a->name && i < EXEC_ACTIONS_MAX; a++, i++)
		if (name && strcmp(a->name, name) == 0)
			return i;
	return -1;
}

void shd_exec_metrics_finished(struct shd_exec_engine *e, const char *status,
			       enum shd_sla_class sla, const char *first_action, int64_t ms,
			       bool timed_out, bool user_cancelled)
{
	struct shd_exec_metrics *m = &e->m;
	int st = shd_exec_status_index(status), a = action_index(first_action);
	size_t b = 0;

	if (st < 0 || (int)sla < 0 || sla >= _SHD_SLA_MAX)
		return;
	atomic_fetch_add_explicit(&m->finished[st][sla], 1, memory_order_relaxed);
	if (timed_out)
		atomic_fetch_add_explicit(&m->timed_out[sla], 1, memory_order_relaxed);
	if (user_cancelled)
		atomic_fetch_add_explicit(&m->user_cancelled[sla], 1, memory_order_relaxed);
	if (a < 0 || ms < 0)
		return;
	while (b < EXEC_HIST_N - 1 && (uint64_t)ms > shd_exec_hist_ms[b])
		b++;
	atomic_fetch_add_explicit(&m->hist[a][sla][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->hist_sum_ms[a][sla], (uint64_t)ms, memory_order_relaxed);
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static int render_counters(struct shd_exec_engine *e, struct shp_buf *b)
{
	struct shd_exec_metrics *m = &e->m;
	int r = shp_buf_add(b,
			    "# HELP shepherd_executions_finished_total Executions that ended, by "
			    "status and SLA class.\n"
			    "# TYPE shepherd_executions_finished_total counter\n");

	for (int s = 2; r == 0 && s < EXEC_STATUS_N; s++)
		for (int c = 0; r == 0 && c < _SHD_SLA_MAX; c++)
			r = shp_buf_addf(b,
					 "shepherd_executions_finished_total{status=\"%s\","
					 "sla_class=\"%s\"} %llu\n",
					 statuses[s], shd_sla_class_to_string(c),
					 LOAD(m->finished[s][c]));
	if (r == 0)
		r = shp_buf_add(b,
				"# HELP shepherd_executions_timed_out_total Executions stopped by "
				"their SLA timeout.\n"
				"# TYPE shepherd_executions_timed_out_total counter\n"
				"# HELP shepherd_executions_user_cancelled_total Executions "
				"cancelled by a person (not failures).\n"
				"# TYPE shepherd_executions_user_cancelled_total counter\n");
	for (int c = 0; r == 0 && c < _SHD_SLA_MAX; c++)
		r = shp_buf_addf(
			b,
			"shepherd_executions_timed_out_total{sla_class=\"%s\"} %llu\n"
			"shepherd_executions_user_cancelled_total{sla_class=\"%s\"} %llu\n",
			shd_sla_class_to_string(c), LOAD(m->timed_out[c]),
			shd_sla_class_to_string(c), LOAD(m->user_cancelled[c]));
	if (r == 0)
		r = shp_buf_addf(
			b,
			"# HELP shepherd_rbac_violations_total Executions refused by the worker's "
			"permission re-check.\n"
			"# TYPE shepherd_rbac_violations_total counter\n"
			"shepherd_rbac_violations_total %llu\n"
			"# HELP shepherd_execution_lock_busy_total Submissions or runs that met a "
			"busy per-asset lock.\n"
			"# TYPE shepherd_execution_lock_busy_total counter\n"
			"shepherd_execution_lock_busy_total %llu\n"
			"# HELP shepherd_execution_locks_reaped_total Expired per-asset locks the "
			"reaper deleted.\n"
			"# TYPE shepherd_execution_locks_reaped_total counter\n"
			"shepherd_execution_locks_reaped_total %llu\n"
			"# HELP shepherd_executions_record_only_total Executions recorded with the "
			"execution path switched off.\n"
			"# TYPE shepherd_executions_record_only_total counter\n"
			"shepherd_executions_record_only_total %llu\n",
			LOAD(m->rbac_violations), LOAD(m->lock_busy), LOAD(m->locks_reaped),
			LOAD(m->record_only));
	return r;
}

static int render_histogram(struct shd_exec_engine *e, struct shp_buf *b)
{
	struct shd_exec_metrics *m = &e->m;
	int r = shp_buf_add(b, "# HELP shepherd_execution_duration_seconds Execution time from "
			       "start to end, by first action and SLA class.\n"
			       "# TYPE shepherd_execution_duration_seconds histogram\n");
	int a = 0;

	for (const struct shd_action *act = shd_actions;
	     r == 0 && act->name && a < EXEC_ACTIONS_MAX; act++, a++) {
		for (int c = 0; r == 0 && c < _SHD_SLA_MAX; c++) {
			const char *sla = shd_sla_class_to_string(c);
			uint64_t cum = 0;
			for (int k = 0; k < EXEC_HIST_N; k++)
				cum += LOAD(m->hist[a][c][k]);
			if (cum == 0)
				continue;
			cum = 0;
			for (int k = 0; r == 0 && k < EXEC_HIST_N; k++) {
				cum += LOAD(m->hist[a][c][k]);
				if (k < EXEC_HIST_N - 1)
					r = shp_buf_addf(
						b,
						"shepherd_execution_duration_seconds_bucket{"
						"action=\"%s\",sla_class=\"%s\",le=\"%g\"} "
						"%llu\n",
						act->name, sla, (double)shd_exec_hist_ms[k] / 1e3,
						(unsigned long long)cum);
				else
					r = shp_buf_addf(
						b,
						"shepherd_execution_duration_seconds_bucket{"
						"action=\"%s\",sla_class=\"%s\",le=\"+Inf\"} "
						"%llu\n",
						act->name, sla, (unsigned long long)cum);
			}
			if (r == 0)
				r = shp_buf_addf(
					b,
					"shepherd_execution_duration_seconds_sum{action=\"%s\","
					"sla_class=\"%s\"} %.3f\n"
					"shepherd_execution_duration_seconds_count{action="
					"\"%s\",sla_class=\"%s\"} %llu\n",
					act->name, sla, (double)LOAD(m->hist_sum_ms[a][c]) / 1e3,
					act->name, sla, (unsigned long long)cum);
		}
	}
	return r;
}

/* Gauges read from the database: they hold for every daemon sharing it. */
static int render_gauges(PGconn *conn, struct shp_buf *b)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT 'jobs' AS k, state::text AS s, count(*) FROM jobs GROUP BY state"
		" UNION ALL SELECT 'exec', status::text, count(*) FROM executions"
		"   WHERE status IN ('pending', 'running') GROUP BY status"
		" UNION ALL SELECT 'locks', '', count(*) FROM execution_locks"
		" UNION ALL SELECT 'rescues', '', coalesce(sum(rescues), 0) FROM jobs",
		0, NULL, NULL);
	int r = 0;

	if (!res)
		return 0; /* the database is down: /metrics still answers with the counters */
	r = shp_buf_add(b, "# HELP shepherd_jobs Jobs in the queue by state (discarded: the "
			   "dead-letter queue).\n# TYPE shepherd_jobs gauge\n"
			   "# HELP shepherd_executions_active Executions pending or running.\n"
			   "# TYPE shepherd_executions_active gauge\n"
			   "# HELP shepherd_execution_locks_held Per-asset locks held.\n"
			   "# TYPE shepherd_execution_locks_held gauge\n"
			   "# HELP shepherd_job_lease_expirations Rescues of jobs whose lease "
			   "expired, over the jobs still kept.\n"
			   "# TYPE shepherd_job_lease_expirations gauge\n");
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		const char *k = PQgetvalue(res, i, 0), *s = PQgetvalue(res, i, 1);
		const char *v = PQgetvalue(res, i, 2);
		if (strcmp(k, "jobs") == 0)
			r = shp_buf_addf(b, "shepherd_jobs{state=\"%s\"} %s\n", s, v);
		else if (strcmp(k, "exec") == 0)
			r = shp_buf_addf(b, "shepherd_executions_active{status=\"%s\"} %s\n", s, v);
		else if (strcmp(k, "locks") == 0)
			r = shp_buf_addf(b, "shepherd_execution_locks_held %s\n", v);
		else
			r = shp_buf_addf(b, "shepherd_job_lease_expirations %s\n", v);
	}
	return r;
}

int shd_exec_metrics_render(struct shd_exec_engine *e, PGconn *conn, struct shp_buf *out)
{
	int r = render_counters(e, out);

	if (r == 0)
		r = render_histogram(e, out);
	if (r == 0 && conn)
		r = render_gauges(conn, out);
	return r;
}

/* Every step a vm.power: the params of each as a JSON array, else NULL. */
static json_t *power_steps(const json_t *plan)
{
	json_auto_t *out = json_array();
	const json_t *steps = json_object_get(plan, "steps"), *step;
	size_t i;

	if (!out || !json_is_array(steps) || json_array_size(steps) == 0)
		return NULL;
	json_array_foreach(steps, i, step)
	{
		const char *action = json_string_value(json_object_get(step, "action"));

		if (!action || strcmp(action, "vm.power") != 0 ||
		    json_array_append(out, json_object_get(step, "params")) < 0)
			return NULL;
	}
	return TAKE_PTR(out);
}

int shd_exec_plan_authorized(PGconn *conn, int64_t user_id, const char *tenant,
			     enum shd_action_class cls, const json_t *plan, bool *ret_ok,
			     struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *power = NULL;
	_cleanup_free_ char *params = NULL;
	char uid[24];

	if (shd_exec_authorized(conn, user_id, tenant, cls, ret_ok, err) < 0)
		return -err->code;
	if (*ret_ok || !(power = power_steps(plan)))
		return 0;
	params = json_dumps(power, JSON_COMPACT);
	if (!params)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(uid, sizeof(uid), "%" PRId64, user_id);
	res = shd_db_exec(conn,
			  "SELECT coalesce(bool_and(coalesce(coalesce(n.environment, c.environment)"
			  "   = ANY (user_envs($1, '{platform-admin,operator}')), false)), false)"
			  " FROM jsonb_to_recordset($2::jsonb) AS x(namespace text, cluster text)"
			  " LEFT JOIN namespaces n ON n.name = x.namespace"
			  " LEFT JOIN clusters c ON c.name = x.cluster",
			  2, (const char *[]){uid, params}, err);
	if (!res)
		return -err->code;
	*ret_ok = shd_db_value(res, 0, 0)[0] == 't';
	return 0;
}
