/*
 * Submitting an execution: the plan is checked against the action table, normalised and
 * hashed; the caller's right on the tenant and the approval level are checked; the path
 * (immediate or background), the timeout policy and the feature flag are decided and recorded;
 * duplicates are folded into the live execution; the per-asset locks are taken; and on the
 * background path the job is enqueued, all in one transaction.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "exec-internal.h"
#include "fsm.h"
#include "log.h"
#include "plan.h"
#include "shepherdd.h"
#include "util.h"

/* What the engine learns from a plan before it records it. */
struct plan_info {
	json_t *plan;              /* normalised (owned) */
	enum shd_action_class cls; /* the heaviest action */
	int64_t estimated_ms;
	size_t nsteps, ntargets;
};

static void plan_info_release(struct plan_info *pi)
{
	json_decref(pi->plan);
	pi->plan = NULL;
}

/* An action that lists its parameters refuses any other: a typo must not pass silently. */
static int check_params(const struct shd_action *a, const json_t *params, size_t i,
			struct shp_error *err)
{
	const char *key;
	json_t *v;

	if (!a->params)
		return 0;
	json_object_foreach((json_t *)params, key, v)
	{
		const char *const *k = a->params;

		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k) {
			shp_error_set(err, SHP_E_INVAL, "step %zu: unknown parameter '%s' for %s",
				      i, key, a->name);
			shp_error_detail(err, "field", "plan.steps[%zu].params.%s", i, key);
			return -SHP_E_INVAL;
		}
	}
	return 0;
}

int shd_exec_analyse(const json_t *plan, json_t **ret_plan, enum shd_action_class *ret_cls,
		     int64_t *ret_ms, size_t *ret_steps, size_t *ret_targets, struct shp_error *err)
{
	json_auto_t *norm = shd_plan_normalize(plan, err);
	const json_t *steps, *step;
	enum shd_action_class cls = SHD_ACTION_READ;
	int64_t ms = 0;
	size_t i, ntargets = 0;

	if (!norm)
		return -err->code;
	steps = json_object_get(norm, "steps");
	if (json_array_size(steps) == 0) {
		shp_error_set(err, SHP_E_INVAL, "a plan needs at least one step");
		shp_error_detail(err, "field", "plan.steps");
		return -SHP_E_INVAL;
	}
	json_array_foreach(steps, i, step)
	{
		const char *name = json_string_value(json_object_get(step, "action"));
		const json_t *targets = json_object_get(step, "targets");
		const struct shd_action *a = shd_action_find(name);
		int64_t est;

		if (!a) {
			shp_error_set(err, SHP_E_INVAL, "step %zu: unknown action '%s'", i, name);
			shp_error_detail(err, "field", "plan.steps[%zu].action", i);
			return -SHP_E_INVAL;
		}
		if (check_params(a, json_object_get(step, "params"), i, err) < 0)
			return -err->code;
		if (a->cls > cls)
			cls = a->cls;
		est = a->estimate(json_object_get(step, "params"), json_array_size(targets));
		ms = ms > INT64_MAX / 2 - est ? INT64_MAX / 2 : ms + est;
		ntargets += json_array_size(targets);
	}
	*ret_plan = json_incref(norm);
	*ret_cls = cls;
	*ret_ms = ms;
	*ret_steps = json_array_size(steps);
	*ret_targets = ntargets;
	return 0;
}

/* Immediate only for small read-only plans: everything else is queued. */
static bool choose_immediate(const struct shd_exec_engine *e, const struct plan_info *pi,
			     char *reason, size_t size)
{
	const struct shd_exec_config *c = &e->cfg;

	if (pi->cls != SHD_ACTION_READ)
		(void)snprintf(reason, size, "a %s plan always runs in the background",
			       shd_action_class_to_string(pi->cls));
	else if (pi->estimated_ms > c->immediate_max_ms)
		(void)snprintf(reason, size,
			       "estimated %" PRId64 " ms, over the immediate limit of %" PRId64
			       " ms",
			       pi->estimated_ms, c->immediate_max_ms);
	else if (pi->nsteps > (size_t)c->immediate_max_steps)
		(void)snprintf(reason, size, "%zu steps, over the immediate limit of %d",
			       pi->nsteps, c->immediate_max_steps);
	else if (pi->ntargets > (size_t)c->immediate_max_targets)
		(void)snprintf(reason, size, "%zu targets, over the immediate limit of %d",
			       pi->ntargets, c->immediate_max_targets);
	else {
		(void)snprintf(reason, size, "read-only, estimated %" PRId64 " ms",
			       pi->estimated_ms);
		return true;
	}
	return false;
}

/* Level 0 runs at once; level 1 needs the caller's confirmation; level 2 an admin's review. */
static int check_approval(const struct shd_exec_submit *s, int level, struct shp_error *err)
{
	if (level >= 1 && !s->confirm) {
		shp_error_set(err, SHP_E_PERM,
			      "this plan changes things (approval level %d): confirm it", level);
		shp_error_api_code(err, "CONFIRMATION_REQUIRED");
		shp_error_detail(err, "approval_level", "%d", level);
		return -SHP_E_PERM;
	}
	if (level >= 2 && !s->actor_is_admin) {
		shp_error_set(err, SHP_E_PERM,
			      "a deploy plan (approval level %d) needs a platform-admin's review",
			      level);
		shp_error_api_code(err, "APPROVAL_REQUIRED");
		shp_error_detail(err, "approval_level", "%d", level);
		return -SHP_E_PERM;
	}
	return 0;
}

/*
 * A ticket's approval binds the plan: the normalised plan must hash to what the approvers saw.
 * It stands in for the confirmation and the admin's review of check_approval.
 */
static int check_approved_hash(const struct shd_exec_submit *s, const char *hash,
			       struct shp_error *err)
{
	if (strcmp(s->approved_plan_hash, hash) == 0)
		return 0;
	shp_error_set(err, SHP_E_CONFLICT,
		      "the plan no longer matches its approval (approved %.64s, now %s): "
		      "approve it again",
		      s->approved_plan_hash, hash);
	shp_error_api_code(err, "APPROVAL_INVALIDATED");
	shp_error_detail(err, "plan_hash", "%s", hash);
	return -SHP_E_CONFLICT;
}

/*
 * The dedupe key. The execution of a governance request is that request's alone: another
 * request with the same plan (a VM created, deleted and asked for again) must not fold into it,
 * so the event id joins the actor in the key.
 */
static int dedupe_key(const struct shd_exec_submit *s, const json_t *plan, char *key,
		      struct shp_error *err)
{
	char actor[192];

	if (s->event_id <= 0)
		return shd_plan_dedupe_key(plan, s->tenant, s->actor, key, err);
	(void)snprintf(actor, sizeof(actor),
		       "%.160s\x1f"
		       "event:%" PRId64,
		       s->actor, s->event_id);
	return shd_plan_dedupe_key(plan, s->tenant, actor, key, err);
}

/* Every flag that applies must be on; an absent one is on, except global's default. */
static int flag_enabled(const struct shd_exec_engine *e, PGconn *conn, const char *tenant,
			int level, bool *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char lv[8];

	(void)snprintf(lv, sizeof(lv), "%d", level);
	res = shd_db_exec(
		conn,
		"SELECT coalesce((SELECT enabled FROM execution_flags WHERE scope = 'global'),"
		"  $1::boolean)"
		" AND coalesce((SELECT enabled FROM execution_flags"
		"   WHERE scope = 'level:' || $2), true)"
		" AND coalesce((SELECT enabled FROM execution_flags"
		"   WHERE scope = 'tenant:' || $3), true)",
		3, (const char *[]){e->cfg.default_enabled ? "true" : "false", lv, tenant}, err);
	if (!res)
		return -err->code;
	*ret = shd_db_value(res, 0, 0)[0] == 't';
	return 0;
}

/*
 * A live execution with this dedupe key, or a finished one inside the dedupe window, answers
 * the submission. An older finished one gives its key up (renamed "<key>:<id>").
 */
static int find_duplicate(const struct shd_exec_engine *e, PGconn *conn, const char *tenant,
			  const char *key, int64_t *ret_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char win[16];

	(void)snprintf(win, sizeof(win), "%d", e->cfg.dedupe_window_s);
	res = shd_db_exec(
		conn,
		"SELECT id, status IN ('succeeded', 'failed', 'cancelled', 'rejected')"
		"  AND ended_at < now() - make_interval(secs => $3::int)"
		" FROM executions WHERE tenant_id = $1 AND idempotency_key = $2 FOR UPDATE",
		3, (const char *[]){tenant, key, win}, err);
	if (!res)
		return -err->code;
	*ret_id = 0;
	if (PQntuples(res) == 0)
		return 0;
	if (shd_db_value(res, 0, 1)[0] != 't') {
		*ret_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
		return 0;
	}
	return shd_db_command(conn,
			      "UPDATE executions SET idempotency_key = idempotency_key || ':' || id"
			      " WHERE id = $1",
			      1, (const char *[]){shd_db_value(res, 0, 0)}, err);
}

struct record {
	const struct shd_exec_submit *s;
	const struct plan_info *pi;
	const char *key, *hash, *reason;
	bool immediate, enabled;
	int level;
};

static int insert_execution(PGconn *conn, const struct record *r, int64_t *ret_id,
			    int *ret_timeout_ms, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	_cleanup_free_ char *plan = json_dumps(r->pi->plan, JSON_COMPACT);
	char actor_id[24], prio[8], level[8], est[24], event_id[24];
	const char *sla = shd_sla_class_to_string(r->s->sla);
	const char *cls = shd_action_class_to_string(r->pi->cls);

	if (!plan)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(actor_id, sizeof(actor_id), "%" PRId64, r->s->actor_id);
	(void)snprintf(prio, sizeof(prio), "%d", r->s->priority);
	(void)snprintf(level, sizeof(level), "%d", r->level);
	(void)snprintf(est, sizeof(est), "%" PRId64, r->pi->estimated_ms);
	(void)snprintf(event_id, sizeof(event_id), "%" PRId64, r->s->event_id);
	res = shd_db_exec(
		conn,
		"INSERT INTO executions AS x (tenant_id, actor_id, actor, idempotency_key,"
		" plan_snapshot, plan_hash, mode, sla_class, approval_state, approved_plan_hash,"
		" timeout_ms, timeout_policy_id, priority, approval_level, record_only, "
		"estimated_ms,"
		" mode_reason, on_busy, request_id, last_transition_by, event_id)"
		" SELECT $1, $2, $3, $4, $5::jsonb, $6::text, $7::execution_mode, $8::sla_class,"
		"  CASE WHEN $11::int = 0 AND NOT $18::boolean THEN 'not_required' ELSE 'approved'"
		"  END::approval_state,"
		"  CASE WHEN $11::int = 0 AND NOT $18::boolean THEN NULL ELSE $6::text END,"
		"  p.execution_timeout_ms, p.id, $10::int, $11::int, $12::boolean, $13::bigint, "
		"$14,"
		"  $15, $16, $3, $17::bigint"
		" FROM timeout_policies p WHERE p.sla_class = $8::sla_class AND p.action_class = $9"
		" ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING x.id, x.timeout_ms",
		18,
		(const char *[]){r->s->tenant, r->s->actor_id > 0 ? actor_id : NULL, r->s->actor,
				 r->key, plan, r->hash, r->immediate ? "immediate" : "background",
				 sla, cls, prio, level, r->enabled ? "false" : "true", est,
				 r->reason, r->s->wait_lock ? "wait" : "fail",
				 r->s->request_id ? r->s->request_id : "",
				 r->s->event_id > 0 ? event_id : NULL,
				 r->s->approved_plan_hash ? "true" : "false"},
		err);
	if (!res)
		return -err->code;
	*ret_timeout_ms = PQntuples(res) ? (int)strtol(shd_db_value(res, 0, 1), NULL, 10) : 0;
	*ret_id = PQntuples(res) ? strtoll(shd_db_value(res, 0, 0), NULL, 10) : 0;
	return 0;
}

static int insert_steps(PGconn *conn, int64_t id, const struct plan_info *pi, struct shp_error *err)
{
	_cleanup_free_ char *plan = json_dumps(pi->plan, JSON_COMPACT);
	char ids[24];

	if (!plan)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	return shd_db_command(
		conn,
		"INSERT INTO execution_steps (execution_id, step_index, action, targets, params,"
		" timeout_ms)"
		" SELECT $1, (o - 1)::int, s->>'action', s->'targets', s->'params',"
		"  (SELECT step_timeout_ms FROM timeout_policies p, executions x"
		"    WHERE x.id = $1 AND p.id = x.timeout_policy_id)"
		" FROM jsonb_array_elements($2::jsonb -> 'steps') WITH ORDINALITY AS t(s, o)",
		2, (const char *[]){ids, plan}, err);
}

static int enqueue(PGconn *conn, int64_t id, const struct shd_exec_submit *s, struct shp_error *err)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted ins;
	char kind[32], args[48], key[32], ids[24], job[24];

	(void)snprintf(kind, sizeof(kind), "exec.%s", shd_sla_class_to_string(s->sla));
	(void)snprintf(args, sizeof(args), "{\"execution_id\":%" PRId64 "}", id);
	shd_exec_owner(id, key);
	p.kind = kind;
	p.queue = "executions";
	p.args = args;
	p.priority = s->priority;
	p.sla = s->sla;
	p.unique_key = key;
	if (shd_job_insert(conn, &p, &ins, err) < 0)
		return -err->code;
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	(void)snprintf(job, sizeof(job), "%" PRId64, ins.id);
	return shd_db_command(conn, "UPDATE executions SET job_id = $2 WHERE id = $1", 2,
			      (const char *[]){ids, job}, err);
}

/* Everything after the duplicate check, inside the transaction. */
static int record(struct shd_exec_engine *e, PGconn *conn, const struct record *r,
		  struct shd_exec_submitted *ret, struct shp_error *err)
{
	_cleanup_(json_decrefp) json_t *keys = NULL;
	char msg[320];
	int64_t id = 0;
	int timeout_ms = 0;

	if (insert_execution(conn, r, &id, &timeout_ms, err) < 0)
		return -err->code;
	if (id == 0) {
		/* a concurrent submission of the same plan won the unique index: answer with it */
		if (find_duplicate(e, conn, r->s->tenant, r->key, &ret->id, err) < 0)
			return -err->code;
		if (ret->id == 0)
			return shp_error_set(err, SHP_E_UNAVAIL,
					     "a concurrent submission is "
					     "settling: retry");
		ret->duplicate = true;
		return 0;
	}
	if (insert_steps(conn, id, r->pi, err) < 0)
		return -err->code;
	(void)snprintf(msg, sizeof(msg), "created (%s: %s)",
		       r->immediate ? "immediate" : "background", r->reason);
	if (shd_exec_event(conn, id, -1, "status", msg,
			   json_pack("{s:s,s:b}", "mode", r->immediate ? "immediate" : "background",
				     "record_only", !r->enabled),
			   err) < 0)
		return -err->code;
	if (!r->s->wait_lock) {
		keys = shd_exec_lock_keys(r->s->tenant, r->pi->plan, err);
		if (!keys)
			return -err->code;
		/* held from now: a queued execution keeps its targets until it has run */
		if (shd_exec_lock_all(conn, id, keys, timeout_ms + EXEC_LOCK_SLACK_MS, err) < 0) {
			atomic_fetch_add_explicit(&e->m.lock_busy, 1, memory_order_relaxed);
			return -err->code;
		}
	}
	if (!r->immediate && enqueue(conn, id, r->s, err) < 0)
		return -err->code;
	if (r->s->in_tx && r->s->in_tx(conn, id, r->s->in_tx_arg, err) < 0)
		return -err->code;
	ret->id = id;
	ret->immediate = r->immediate;
	return 0;
}

int shd_exec_submit(struct shd_exec_engine *e, PGconn *conn, const struct shd_exec_submit *s,
		    struct shd_exec_submitted *ret, struct shp_error *err)
{
	struct plan_info pi __attribute__((cleanup(plan_info_release))) = {0};
	struct shd_exec_submitted out = {0};
	char hash[SHP_SHA256_HEX_LEN + 1], key[SHP_SHA256_HEX_LEN + 1], reason[256];
	struct record r = {.s = s, .pi = &pi, .key = key, .hash = hash, .reason = reason};
	bool ok = false;

	if (shd_validate_name("tenant", s->tenant, err) < 0)
		return -err->code;
	if (shd_exec_analyse(s->plan, &pi.plan, &pi.cls, &pi.estimated_ms, &pi.nsteps, &pi.ntargets,
			     err) < 0 ||
	    shd_plan_hash(pi.plan, hash, err) < 0 || dedupe_key(s, pi.plan, key, err) < 0)
		return -err->code;
	r.level = (int)pi.cls; /* read 0, modify 1, deploy 2 */
	if (shd_exec_plan_authorized(conn, s->actor_id, s->tenant, pi.cls, pi.plan, &ok, err) < 0)
		return -err->code;
	if (!ok) {
		shp_error_set(err, SHP_E_PERM, "'%s' may not run a %s plan for tenant '%s'",
			      s->actor, shd_action_class_to_string(pi.cls), s->tenant);
		shp_error_detail(err, "tenant", "%s", s->tenant);
		return -SHP_E_PERM;
	}
	if (s->approved_plan_hash ? check_approved_hash(s, hash, err) < 0
				  : check_approval(s, r.level, err) < 0)
		return -err->code;
	r.immediate = choose_immediate(e, &pi, reason, sizeof(reason));
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (flag_enabled(e, conn, s->tenant, r.level, &r.enabled, err) < 0 ||
	    find_duplicate(e, conn, s->tenant, key, &out.id, err) < 0)
		goto fail;
	if (out.id) {
		out.duplicate = true;
	} else if (record(e, conn, &r, &out, err) < 0) {
		goto fail;
	}
	if (shd_db_commit(conn, err) < 0)
		goto fail;
	if (!out.duplicate && !r.enabled)
		atomic_fetch_add_explicit(&e->m.record_only, 1, memory_order_relaxed);
	*ret = out;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}
