/*
 * Batch operations: a parent ticket (batch_approval_tickets) over many child requests, each
 * child an ordinary request with its event and ticket (approval_tickets.parent_ticket_id), and
 * the two layers of rate limits that guard submissions. The parent's counters and aggregate
 * status are kept by triggers of schema/0010_batch.up.sql in the transaction that moves a
 * child, whatever moves it (the execution hooks, a cancel, an approval, an expiry).
 * See docs/internals/batch.md.
 *
 * Functions taking a PGconn run on the caller's connection; any thread.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;
struct shd_req;
struct shd_resp;
struct shd_queue;
struct shd_exec_engine;

#define SHD_BATCH_DISPATCH_KIND "batch.dispatch"
#define SHD_BATCH_SWEEP_KIND "batch.sweep"

/* ---- rate limits (ratelimit.c) ------------------------------------------------------------ */

/*
 * The global token bucket of mutating API requests: rate tokens a second, at most burst in
 * the bucket. Thread-safe (a mutex); created by main before the listeners start.
 */
struct shd_ratelimit;
struct shd_ratelimit *shd_ratelimit_new(double rate, double burst);
struct shd_ratelimit *shd_ratelimit_free(struct shd_ratelimit *rl);
SHP_DEFINE_CLEANUP(struct shd_ratelimit *, shd_ratelimit_free)
/* Take one token: true, or false with the seconds until one is there (>= 1). rl NULL: true. */
bool shd_ratelimit_take(struct shd_ratelimit *rl, long *ret_retry_after);

/*
 * The router's check of a mutating request (platform admins and exempt users pass): 0, or
 * -SHP_E_RATE with code RATE_LIMITED, details.limit "api_rate" and resp->retry_after set.
 */
int shd_ratelimit_request(struct shd_req *req, struct shd_resp *resp,
			  struct shp_error *err) SHP_MUSTCHECK;
/*
 * A batch of nchildren may be submitted by the caller now: the global pending parents, then
 * the caller's pending parents, pending children and cooldown (their override, else the
 * configuration); a retry (new_parent false) is held to the pending children only. -SHP_E_RATE
 * naming the limit, with resp->retry_after.
 */
int shd_batch_limits_check(struct shd_req *req, struct shd_resp *resp, int nchildren,
			   bool new_parent, struct shp_error *err) SHP_MUSTCHECK;

int shd_api_rate_limits_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rate_limits_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rate_limits_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rate_limits_delete(struct shd_req *, struct shd_resp *, struct shp_error *);

/* ---- batches (batch.c, api-batch.c) ------------------------------------------------------- */

/*
 * Submit executions for the batch's automatic children that have none yet (all batches when
 * batch_id is 0, for children older than a minute): each in a transaction of its own, the
 * child's ticket naming the execution. A child whose submission is refused is failed with the
 * refusal's code. *ret_count counts the executions submitted.
 */
int shd_batch_dispatch(struct shd_exec_engine *e, PGconn *conn, int64_t batch_id, int *ret_count,
		       struct shp_error *err) SHP_MUSTCHECK;

/* Register batch.dispatch and the periodic batch.sweep (every minute). */
int shd_batch_register(struct shd_queue *q, struct shd_exec_engine *e,
		       struct shp_error *err) SHP_MUSTCHECK;

int shd_api_batch_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_create_compat(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_power(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_retry(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_cancel(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_batch_approve(struct shd_req *, struct shd_resp *, struct shp_error *);
