/*
 * The execution side of governance requests (gov-finish.c): the engine's hooks that carry a
 * request's ticket and event along with its execution, and the periodic jobs that repair what
 * a failed hook left behind (gov.sync) and expire tickets nobody decided (gov.expire).
 * See docs/internals/governance.md (the flow, steps 4 and 5).
 *
 * Functions taking a PGconn run on the caller's connection: the hooks inside the engine's
 * transaction, the sweeps each in transactions of their own (no transaction open on entry).
 */
#pragma once

#include <stdint.h>

#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;
struct shd_exec_engine;
struct shd_queue;

#define SHD_GOV_SYNC_KIND "gov.sync"
#define SHD_GOV_EXPIRE_KIND "gov.expire"

/*
 * on_start: the ticket (if the event has one) APPROVED -> EXECUTING, with the execution's id;
 * audit EXECUTION_STARTED.
 */
int shd_gov_on_start(PGconn *conn, int64_t execution_id, int64_t event_id, void *arg,
		     struct shp_error *err) SHP_MUSTCHECK;
/*
 * on_finish: status succeeded records the VM row (owner, system, service, template, size, spec)
 * and its next revision for CREATE_VM and MODIFY_VM, then ticket and event COMPLETED, audit
 * EXECUTION_COMPLETED and APPROVAL_COMPLETED to the requester; failed or rejected (cancelled)
 * makes them FAILED (CANCELLED), audit EXECUTION_FAILED with the error code and tells the
 * requester. Idempotent: a request already final is left alone.
 */
int shd_gov_on_finish(PGconn *conn, int64_t execution_id, int64_t event_id, const char *status,
		      const char *error_code, const char *error, void *arg,
		      struct shp_error *err) SHP_MUSTCHECK;

/* Give the engine the hooks above (before the queue starts). */
void shd_gov_set_hooks(struct shd_exec_engine *e);

/*
 * gov.sync's pass: run on_finish again for every ended execution whose request is not final
 * (at most 100 a pass, each in its own transaction); log approved tickets without an
 * execution. *ret_repaired counts the requests brought up to date.
 */
int shd_gov_sync(PGconn *conn, int *ret_repaired, struct shp_error *err) SHP_MUSTCHECK;
/*
 * gov.expire's pass: tickets pending approval past expires_at become EXPIRED (their event
 * CANCELLED, audit REQUEST_EXPIRED, REQUEST_EXPIRED to the requester); those expiring within a
 * day get one APPROVAL_EXPIRING warning. Counts into *ret_expired and *ret_warned.
 */
int shd_gov_expire(PGconn *conn, int *ret_expired, int *ret_warned,
		   struct shp_error *err) SHP_MUSTCHECK;

/* Register the job kinds gov.sync and gov.expire and run both every minute. */
int shd_gov_register(struct shd_queue *q, struct shp_error *err) SHP_MUSTCHECK;
