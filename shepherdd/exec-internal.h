/*
 * Internals shared by the execution engine's files: the engine struct with its metrics, and
 * the record helpers every path uses (events, the terminal transition).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "exec.h"

#define EXEC_STATUS_N 6 /* pending running succeeded failed cancelled rejected */
#define EXEC_ACTIONS_MAX 32
#define EXEC_LOCKS_MAX 1000      /* distinct (target, action) pairs an execution may lock */
#define EXEC_LOCK_SLACK_MS 60000 /* locks outlive the execution's timeout by this much */
#define EXEC_HIST_N 14

extern const uint64_t shd_exec_hist_ms[EXEC_HIST_N - 1];

/* Counters only grow; every member is an atomic, so no lock is needed. */
struct shd_exec_metrics {
	atomic_uint_fast64_t finished[EXEC_STATUS_N][_SHD_SLA_MAX];
	atomic_uint_fast64_t timed_out[_SHD_SLA_MAX];
	atomic_uint_fast64_t user_cancelled[_SHD_SLA_MAX];
	atomic_uint_fast64_t rbac_violations;
	atomic_uint_fast64_t lock_busy;
	atomic_uint_fast64_t record_only;
	atomic_uint_fast64_t locks_reaped; /* counted by the reaper job (locks.c) */
	/* execution duration by first action and SLA class */
	atomic_uint_fast64_t hist[EXEC_ACTIONS_MAX][_SHD_SLA_MAX][EXEC_HIST_N];
	atomic_uint_fast64_t hist_sum_ms[EXEC_ACTIONS_MAX][_SHD_SLA_MAX];
};

struct shd_exec_engine_kinds;

struct shd_exec_engine {
	struct shd_exec_config cfg;
	struct shd_exec_metrics m;
	struct shd_exec_engine_kinds *kinds; /* job kind contexts, one per registered queue */
	struct shd_providers *providers;     /* borrowed, set once before the queue starts */
	struct shd_exec_hooks hooks; /* governance hooks, set once before the queue starts */
};

/* Index of a status name in the execution_status enum order, or -1. */
int shd_exec_status_index(const char *status);

/* Insert one execution_events row (any transaction state). data (may be NULL) is taken. */
int shd_exec_event(PGconn *conn, int64_t id, int step, const char *type, const char *message,
		   json_t *data, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Move execution id (row locked by the caller's transaction) from `from` to `to`, checked by
 * the FSM, recording last_transition_* and the status event. Terminal moves also set ended_at,
 * skip the steps still pending and release every lock the execution holds.
 */
int shd_exec_transition(PGconn *conn, int64_t id, const char *from, const char *to, const char *by,
			struct shp_error *err) SHP_MUSTCHECK;

/* The lock owner tag of an execution: "exec:<id>". */
void shd_exec_owner(int64_t id, char out[32]);

/*
 * The distinct lock keys of a normalised plan for tenant, sorted, as a JSON array of strings
 * (new reference). SHP_E_LIMIT past EXEC_LOCKS_MAX, SHP_E_INVAL for a target that cannot be
 * part of a key.
 */
json_t *shd_exec_lock_keys(const char *tenant, const json_t *plan, struct shp_error *err);
/* Take (or renew) every key for the execution, for ttl_ms. RESOURCE_BUSY as shd_lock_acquire. */
int shd_exec_lock_all(PGconn *conn, int64_t id, const json_t *keys, int ttl_ms,
		      struct shp_error *err) SHP_MUSTCHECK;

/* Record a finished execution in the metrics. */
void shd_exec_metrics_finished(struct shd_exec_engine *e, const char *status,
			       enum shd_sla_class sla, const char *first_action, int64_t ms,
			       bool timed_out, bool user_cancelled);

/*
 * Check a plan against the action table and normalise it: *ret_plan (new reference), the
 * heaviest action class, the estimated duration, the step and target counts. SHP_E_INVAL.
 */
int shd_exec_analyse(const json_t *plan, json_t **ret_plan, enum shd_action_class *ret_cls,
		     int64_t *ret_ms, size_t *ret_steps, size_t *ret_targets,
		     struct shp_error *err) SHP_MUSTCHECK;
