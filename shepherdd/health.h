/*
 * Cluster health and capabilities. A periodic job ("cluster.health") asks every cluster's
 * provider for its health and, on the same cycle, its capabilities, and writes them to the
 * clusters row (capabilities only when detected; the last known ones stay otherwise). A cluster
 * whose provider cannot be built is UNHEALTHY with the reason. POST
 * /api/v1/clusters/{name}/health runs the same check at once.
 *
 * caps.c decides whether a cluster can host an instance size (its required capabilities) and
 * validates a manifest against the cluster itself (a dry-run create) when the detected list
 * cannot tell.
 *
 * Threads: a struct shd_health is read-only after creation and used by any thread; functions
 * taking a PGconn run on the caller's connection (no transaction open).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;
struct shd_dbpool;
struct shd_infra;
struct shd_provider;
struct shd_queue;

/* The provider of a cluster: a new reference, or NULL with err (any thread). */
typedef struct shd_provider *(*shd_health_provider_fn)(void *ud, int64_t cluster_id,
						       struct shp_error *err);

struct shd_health_config {
	struct shd_dbpool *pool;         /* for checks given no connection */
	shd_health_provider_fn provider; /* required */
	void *provider_ud;
	int check_timeout_ms; /* deadline of one cluster's check (0 = 10 s) */
	int interval_s;       /* the periodic job's period (0 = 30 s) */
};

#define SHD_HEALTH_JOB_KIND "cluster.health"
#define SHD_CAPS_MAX 256 /* capabilities kept per cluster */

struct shd_health;

struct shd_health *shd_health_new(const struct shd_health_config *cfg, struct shp_error *err);
struct shd_health *shd_health_free(struct shd_health *h); /* NULL-safe; returns NULL */
SHP_DEFINE_CLEANUP(struct shd_health *, shd_health_free)

/* Register the job kind and its periodic schedule on q (before shd_queue_start). */
int shd_health_register(struct shd_health *h, struct shd_queue *q,
			struct shp_error *err) SHP_MUSTCHECK;

/*
 * Check cluster_id now (bounded by the configured timeout, or deadline_ns if sooner; 0 = none),
 * write the result (on conn, or when conn is NULL on one borrowed from the pool after the
 * cluster answered), log a change of health once, and return the cluster's health columns as a
 * new JSON object in *ret (may be NULL): name, health, health_message, health_checked_at,
 * kubernetes_version, kubevirt_version, capabilities, capabilities_at, and "previous_health".
 * SHP_E_NOTFOUND for an unknown cluster, SHP_E_DB/UNAVAIL.
 */
int shd_health_check_cluster(struct shd_health *h, PGconn *conn, int64_t cluster_id,
			     uint64_t deadline_ns, json_t **ret,
			     struct shp_error *err) SHP_MUSTCHECK;

/* Check every cluster in turn; *ret_checked (may be NULL) counts them. */
int shd_health_check_all(struct shd_health *h, PGconn *conn, int *ret_checked,
			 struct shp_error *err) SHP_MUSTCHECK;

/* ---- caps.c ---------------------------------------------------------------------------------- */

/*
 * Whether the cluster's capabilities (a JSON array of strings) include every required one (an
 * array of strings; empty = always true). On false, *ret_missing (may be NULL) is a new array
 * of what is missing; a wrong type (not an array, a non-string element) is false with the
 * reason in err (SHP_E_INVAL) and no missing list.
 */
bool shd_caps_has_all(const json_t *cluster_caps, const json_t *required, json_t **ret_missing,
		      struct shp_error *err);

/*
 * Ask the cluster whether it would accept vm_manifest (create_vm with dry_run): 0 with
 * *ret_ok true when accepted; 0 with *ret_ok false and *ret_reason (owned, free()) the cluster's
 * rejection (validation, a disabled feature gate, a refused field) when rejected; < 0 when the
 * cluster could not answer (SHP_E_UNAVAIL, SHP_E_TIMEOUT, SHP_E_PERM, ...).
 */
int shd_caps_dry_run_check(const struct shd_infra *infra, const json_t *vm_manifest,
			   uint64_t deadline_ns, bool *ret_ok, char **ret_reason,
			   struct shp_error *err) SHP_MUSTCHECK;

/* ---- api-health.c: the daemon's glue ---------------------------------------------------- */

/* The registry lookup for the watcher and the checker: ud is the struct shd_daemon. */
struct shd_provider *shd_daemon_provider(void *ud, int64_t cluster_id, struct shp_error *err);
