/*
 * The ResourceWatcher: while this daemon leads the job queue, one thread per registered cluster
 * lists the VMs shepherd manages there, keeps the last good list in memory, writes what changed
 * to the vms rows, then watches from the list's resourceVersion and applies every event (a status
 * change also records a VM_STATUS_CHANGE domain event in the same transaction, and a change to a
 * settled status tells the VM's owner, coalesced per VM within status_window_s).
 *
 * A watch that answers 410 Expired clears the resourceVersion and marks the cache stale (readers
 * still get the last good list, flagged stale) until the re-list; it does not count against the
 * cluster's circuit breaker. Other failures reconnect with exponential backoff and jitter and
 * trip the breaker after `breaker_threshold` consecutive failures. See docs/internals/watcher.md.
 *
 * Threads: shd_watcher_new/start/free belong to one owning thread (main); snapshot, status and
 * metrics may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "cleanup.h"

struct shp_error;
struct shd_dbpool;
struct shd_provider;
struct shd_queue;
struct shd_vm_list;

/* The provider of a cluster: a new reference, or NULL with err. Called from watch threads. */
typedef struct shd_provider *(*shd_watcher_provider_fn)(void *ud, int64_t cluster_id,
							struct shp_error *err);

struct shd_watcher_config {
	struct shd_dbpool *pool;          /* rows are written on connections borrowed from it */
	shd_watcher_provider_fn provider; /* required */
	void *provider_ud;                /* passed to provider */
	struct shd_queue *queue;          /* watch only while it leads; NULL = always */
	int scan_interval_ms;             /* look at the clusters table this often (0 = 5 s) */
	int backoff_base_ms;              /* first reconnect delay (0 = 500 ms) */
	int backoff_max_ms;               /* reconnect delay cap (0 = 30 s) */
	int breaker_threshold;            /* consecutive failures that open it (0 = 5) */
	int breaker_open_ms;              /* first open period (0 = 5 s) */
	int breaker_max_open_ms;          /* open period cap (0 = 2 min) */
	int list_timeout_ms;              /* deadline of one LIST (0 = 15 s) */
	int watch_timeout_ms;             /* a watch is renewed after this long (0 = 5 min) */
	int join_timeout_ms;              /* stopping waits this long per thread (0 = 20 s) */
	int resync_interval_ms;           /* list again (rows catch up) this often (0 = 10 min) */
	int status_window_s; /* owners hear of a VM's changes once a window (0 = 10 min) */
};

/* The label selector of what the watcher lists and watches. */
#define SHD_WATCHER_SELECTOR "app.kubernetes.io/managed-by=shepherd"

struct shd_watcher;

/* Create a watcher (nothing runs yet); cfg is copied. NULL with err. */
struct shd_watcher *shd_watcher_new(const struct shd_watcher_config *cfg, struct shp_error *err);
/* Start the manager thread. */
int shd_watcher_start(struct shd_watcher *w, struct shp_error *err) SHP_MUSTCHECK;
/*
 * Stop every thread (the watches see their stop flag; each is joined within join_timeout_ms)
 * and free. NULL-safe; returns NULL.
 */
struct shd_watcher *shd_watcher_free(struct shd_watcher *w);
SHP_DEFINE_CLEANUP(struct shd_watcher *, shd_watcher_free)

/* Look at the clusters table now instead of at the next scan (after a cluster was added). */
void shd_watcher_kick(struct shd_watcher *w);

/*
 * A copy of the cached VMs of cluster_id (owned by the caller: shd_vm_list_release), sorted by
 * namespace and name, with the list's resourceVersion as last updated by the watch. *ret_stale
 * is true while the cache is not known to be current (after a 410 until the re-list, or while
 * the watch fails); *ret_observed_at_us (may be NULL) is the realtime of the last change.
 * SHP_E_NOTFOUND when this daemon does not watch the cluster, SHP_E_UNAVAIL when no list ever
 * succeeded.
 */
int shd_watcher_snapshot(struct shd_watcher *w, int64_t cluster_id, struct shd_vm_list *ret,
			 bool *ret_stale, uint64_t *ret_observed_at_us,
			 struct shp_error *err) SHP_MUSTCHECK;

/*
 * The state of the watch of cluster_id as a new JSON object: {"cluster", "state", "stale",
 * "listed", "resource_version", "breaker", "relists", "expired", "restarts", "events",
 * "failures", "last_error"}; NULL with SHP_E_NOTFOUND when not watched.
 */
json_t *shd_watcher_status(struct shd_watcher *w, int64_t cluster_id, struct shp_error *err);

/* Whether this watcher currently watches (holds the queue's leadership). */
bool shd_watcher_is_active(struct shd_watcher *w);

/* Append the Prometheus lines of every watched cluster to out. */
int shd_watcher_metrics_render(struct shd_watcher *w, struct shp_buf *out) SHP_MUSTCHECK;
