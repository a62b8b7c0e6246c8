/*
 * Per-asset mutexes of the execution engine: a row of execution_locks keyed
 * "lock:v1:{tenant}:{target}:{action}", held by one owner (a worker's tag) until it expires.
 * Only the owner renews or releases it; an expired lock may be taken over; the reaper deletes
 * expired ones. All functions run one statement on the caller's connection (any thread), so
 * they join the caller's transaction if one is open.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;

#define SHD_LOCK_KEY_MAX 512

/*
 * Build the key into out (size >= SHD_LOCK_KEY_MAX). tenant and action must be non-empty and
 * free of ':' and control characters; target non-empty without control characters.
 * SHP_E_INVAL otherwise.
 */
int shd_lock_key(const char *tenant, const char *target, const char *action, char *out, size_t size,
		 struct shp_error *err) SHP_MUSTCHECK;
/*
 * Take the lock for owner for ttl_ms (execution_id may be 0). An expired lock is taken over.
 * Held by someone else: -SHP_E_CONFLICT with API code RESOURCE_BUSY and details "lock" and
 * "owner". Taking a lock one already holds renews it.
 */
int shd_lock_acquire(PGconn *conn, const char *key, const char *owner, int ttl_ms,
		     int64_t execution_id, struct shp_error *err) SHP_MUSTCHECK;
/* Extend the owner's lock by ttl_ms from now; SHP_E_CONFLICT if it is not (or no longer) held. */
int shd_lock_renew(PGconn *conn, const char *key, const char *owner, int ttl_ms,
		   struct shp_error *err) SHP_MUSTCHECK;
/* Release the owner's lock; *ret_released says whether it was held (another owner's stays). */
int shd_lock_release(PGconn *conn, const char *key, const char *owner, bool *ret_released,
		     struct shp_error *err) SHP_MUSTCHECK;
/* Delete expired locks (the reaper); *ret_count how many. */
int shd_lock_reap(PGconn *conn, int *ret_count, struct shp_error *err) SHP_MUSTCHECK;

struct shd_queue;
/*
 * Register the reaper's job kind and run it every 60 s on the queue's leader; reaped (may be
 * NULL) counts the locks it deletes, for the metrics.
 */
int shd_locks_register(struct shd_queue *q, atomic_uint_fast64_t *reaped,
		       struct shp_error *err) SHP_MUSTCHECK;
