/*
 * The execution engine: an execution runs one frozen plan (plan.h) for one tenant and one
 * actor, step by step, under per-asset locks (locks.h), an SLA timeout from timeout_policies
 * and a cancellation check between steps, recording every move in executions,
 * execution_steps and execution_events. Short read-only plans run inline in the request that
 * submits them (the immediate path); the rest are queued as a job that carries only the
 * execution id (the background path). Both paths run the same code (shd_exec_run), so the
 * checks, locks and records are the same.
 *
 * Thread rules: the engine is created by main before any thread starts and is read-only
 * afterwards except for its metrics (atomics). Every function taking a PGconn runs on the
 * caller's connection; none keeps a transaction open across a step.
 * See docs/internals/exec.md.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "cleanup.h"
#include "queue.h"

struct shp_error;
struct shd_providers;
struct shd_exec_engine;

/* What an action does to its targets: it picks the timeout policy and the approval level. */
enum shd_action_class { SHD_ACTION_READ, SHD_ACTION_MODIFY, SHD_ACTION_DEPLOY, _SHD_ACTION_MAX };

const char *shd_action_class_to_string(enum shd_action_class c);

/* One step as an action sees it while it runs. */
struct shd_step_ctx {
	PGconn *conn; /* the runner's connection; no transaction open */
	int64_t execution_id;
	int step_index;
	int attempt; /* of this step, 1 on its first run */
	const char *tenant;
	const json_t *targets; /* borrowed: the step's sorted targets */
	const json_t *params;  /* borrowed: the step's parameters */
	uint64_t deadline_ns;  /* monotonic: the step's time is up here */
	struct shd_job *job;   /* the queue job (background path) or NULL (immediate path) */
	json_t *result;        /* the action may set a small result object (owned by the runner) */
	struct shd_providers *providers; /* the clusters' providers; NULL in tests without them */
};

/*
 * Run one step. 0 on success. On failure, err's code says what happens next:
 * SHP_E_UNAVAIL, SHP_E_DB, SHP_E_K8S: transient, the execution is retried by the queue
 * (the immediate path fails it); SHP_E_TIMEOUT: the step timed out; anything else fails the
 * execution at once.
 */
typedef int (*shd_action_fn)(struct shd_step_ctx *s, struct shp_error *err);
/* Expected duration of one step of this action with these parameters, in ms. */
typedef int64_t (*shd_action_estimate_fn)(const json_t *params, size_t ntargets);

struct shd_action {
	const char *name; /* "test.sleep" */
	enum shd_action_class cls;
	shd_action_estimate_fn estimate;
	shd_action_fn run;
	const char *const *params; /* the parameters it knows, NULL-terminated; NULL = any */
};

/* The action table (exec-actions.c), ended by { NULL }. The test set is always present. */
extern const struct shd_action shd_actions[];
extern const struct shd_action shd_vm_actions[];  /* exec-vm.c: vm.get, vm.create, ... */
extern const struct shd_action shd_gov_actions[]; /* exec-gov.c: vm.provision, vm.update */
const struct shd_action *shd_action_find(const char *name);

/*
 * Helpers for actions. shd_step_sleep sleeps ms in short slices, keeping the job's lease
 * alive; -SHP_E_TIMEOUT if the step's deadline comes first, -SHP_E_UNAVAIL if the daemon is
 * shutting the job down. A cancel request does not interrupt a step: the running step
 * finishes and the runner skips the rest.
 */
int shd_step_sleep(struct shd_step_ctx *s, int64_t ms, struct shp_error *err) SHP_MUSTCHECK;

/* ---- the engine ------------------------------------------------------------------------- */

struct shd_exec_config {
	int64_t immediate_max_ms;  /* plans estimated above this go to the background (10 s) */
	int immediate_max_steps;   /* ... and plans with more steps (20) */
	int immediate_max_targets; /* ... and plans touching more targets (50) */
	int dedupe_window_s;   /* a finished execution still answers duplicates this long (60) */
	bool default_enabled;  /* the global flag when no row says otherwise */
	int lock_wait_poll_ms; /* how often a waiting execution retries a busy lock (500) */
};

struct shd_exec_engine *shd_exec_engine_new(const struct shd_exec_config *cfg,
					    struct shp_error *err);
struct shd_exec_engine *shd_exec_engine_free(struct shd_exec_engine *e);
/* Give the engine the daemon's providers (borrowed; set before the queue starts). */
void shd_exec_set_providers(struct shd_exec_engine *e, struct shd_providers *providers);
SHP_DEFINE_CLEANUP(struct shd_exec_engine *, shd_exec_engine_free)

/* The counter the lock reaper adds to (for shd_locks_register). Borrowed, e's life. */
atomic_uint_fast64_t *shd_exec_reaped_counter(struct shd_exec_engine *e);

/* Register the runner's job kinds (one per SLA class: exec.fast, exec.medium, exec.long). */
int shd_exec_register(struct shd_exec_engine *e, struct shd_queue *q,
		      struct shp_error *err) SHP_MUSTCHECK;

/* A submission, as the API layer has checked the caller. Pointers are borrowed. */
struct shd_exec_submit {
	const char *tenant;
	const json_t *plan;
	enum shd_sla_class sla;
	int priority;   /* 0..100 */
	bool wait_lock; /* wait for busy locks instead of failing with RESOURCE_BUSY */
	bool confirm;   /* the caller confirms a level-1 plan */
	int64_t actor_id;
	const char *actor;
	bool actor_is_admin;
	const char *request_id;
	int64_t event_id; /* the governance request (domain event) this carries out, 0 = none */
	/*
	 * A ticket's approval (NULL = none): the normalised plan must hash to it (else
	 * SHP_E_CONFLICT with code APPROVAL_INVALIDATED); it is recorded as approved_plan_hash
	 * with approval_state 'approved' and stands in for the confirm/admin level checks.
	 */
	const char *approved_plan_hash;
	/* called inside the submission's transaction once the execution is recorded (audit) */
	int (*in_tx)(PGconn *conn, int64_t id, void *arg, struct shp_error *err);
	void *in_tx_arg;
};

struct shd_exec_submitted {
	int64_t id;
	bool duplicate; /* an earlier execution of the same plan, tenant and actor */
	bool immediate; /* the caller runs it now with shd_exec_run */
};

/*
 * Validate and record an execution in one transaction on conn (which must have none open):
 * the plan is normalised and hashed, the actor's right on the tenant checked, the mode and
 * timeout policy chosen, the locks taken (unless wait_lock), and on the background path the
 * job enqueued. SHP_E_INVAL (bad plan), SHP_E_PERM (not a member / approval needed),
 * SHP_E_CONFLICT with RESOURCE_BUSY, SHP_E_DB/UNAVAIL.
 */
int shd_exec_submit(struct shd_exec_engine *e, PGconn *conn, const struct shd_exec_submit *s,
		    struct shd_exec_submitted *ret, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Run execution id on conn (no transaction open) until it ends or must wait; job is the queue
 * job on the background path, NULL inline. Returns what the queue should do with the job
 * (SHD_JOB_DONE once the execution is terminal). Never fails: problems are recorded on the
 * execution, or turned into a retry.
 */
enum shd_job_outcome shd_exec_run(struct shd_exec_engine *e, PGconn *conn, int64_t id,
				  struct shd_job *job, const char *worker_id);

/*
 * Ask for cancellation (idempotent): a pending execution is cancelled at once, a running one
 * is told and stops between steps; a finished one is left as it is. by is the actor's name.
 * SHP_E_NOTFOUND.
 */
int shd_exec_cancel(struct shd_exec_engine *e, PGconn *conn, int64_t id, const char *by,
		    const char *reason, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Hooks for executions that carry a governance request (event_id set): on_start runs in the
 * transaction that moves the execution to running, on_finish in the one that ends it (status
 * succeeded|failed|cancelled|rejected, with the execution's error code and message, NULL on
 * success). A failing hook rolls back only its own part: the execution still ends, the
 * failure is logged, and the governance sweep (gov.sync) repeats the hook later.
 */
struct shd_exec_hooks {
	int (*on_start)(PGconn *conn, int64_t execution_id, int64_t event_id, void *arg,
			struct shp_error *err);
	int (*on_finish)(PGconn *conn, int64_t execution_id, int64_t event_id, const char *status,
			 const char *error_code, const char *error, void *arg,
			 struct shp_error *err);
	void *arg;
};
/* Set before the queue starts (copied). */
void shd_exec_set_hooks(struct shd_exec_engine *e, const struct shd_exec_hooks *h);

/* ---- reads (exec-store.c) ----------------------------------------------------------------- */

struct shd_exec_filter {
	bool all; /* every tenant (admins); else the tenants user_id belongs to */
	int64_t user_id;
	const char *status; /* NULL = any */
	const char *tenant; /* NULL = any */
	int64_t before_id;  /* keyset cursor, 0 = from the newest */
	int limit;          /* rows wanted; the result holds up to limit + 1 */
};
/* Task rows (list columns) newest first, limit + 1 of them for the page logic. */
PGresult *shd_exec_list(PGconn *conn, const struct shd_exec_filter *f, struct shp_error *err);

/* The task object (docs/internals/tasks-api.md), with its steps when with_steps. */
json_t *shd_exec_get(PGconn *conn, int64_t id, bool with_steps, struct shp_error *err);
/* The tenant of an execution into out (size >= 64); SHP_E_NOTFOUND. */
int shd_exec_tenant(PGconn *conn, int64_t id, char *out, size_t size,
		    struct shp_error *err) SHP_MUSTCHECK;
/*
 * Up to limit events after after_id: {"items": [...], "last_event_id": N, "done": bool}.
 * done: the execution is terminal and no event is left after the page.
 */
json_t *shd_exec_events(PGconn *conn, int64_t id, int64_t after_id, int limit,
			struct shp_error *err);

/*
 * May user_id act on tenant with an action of class cls, as the database says now? Platform
 * admins may; owners and members may; viewers may read; disabled users may not.
 */
int shd_exec_authorized(PGconn *conn, int64_t user_id, const char *tenant,
			enum shd_action_class cls, bool *ret_ok,
			struct shp_error *err) SHP_MUSTCHECK;
/*
 * May user_id run plan (normalised) for tenant? shd_exec_authorized's answer, and besides:
 * a plan of VM power operations only may be run by an operator or platform-admin of the
 * environment of every VM it touches (the namespace's, else the cluster's).
 */
int shd_exec_plan_authorized(PGconn *conn, int64_t user_id, const char *tenant,
			     enum shd_action_class cls, const json_t *plan, bool *ret_ok,
			     struct shp_error *err) SHP_MUSTCHECK;
/* user_id's role in tenant into out ("" if none, or if the user is disabled). */
int shd_tenant_role(PGconn *conn, int64_t user_id, const char *tenant, char *out, size_t size,
		    struct shp_error *err) SHP_MUSTCHECK;

/* Append the engine's Prometheus metrics (counters, and gauges read on conn if not NULL). */
int shd_exec_metrics_render(struct shd_exec_engine *e, PGconn *conn,
			    struct shp_buf *out) SHP_MUSTCHECK;
