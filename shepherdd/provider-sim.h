/*
 * The simulated cluster: a provider (provider.h) that keeps every object in memory and changes
 * them asynchronously the way KubeVirt does, so the daemon, the demo and the tests can manage
 * VMs with no Kubernetes at all. It answers with the same errors as the KubeVirt provider (the
 * same codes, API codes and "cluster: ..." messages) and the same state sequences:
 *
 *   create (runStrategy Always)  STARTING -> RUNNING (a node node-1..N, an IP 10.x.y.z)
 *   create (Halted or Manual)    STOPPED
 *   start                        STARTING -> RUNNING
 *   stop                         STOPPING -> STOPPED
 *   restart                      STOPPING -> STARTING -> RUNNING
 *   pause / unpause              PAUSED / RUNNING at once
 *   delete                       STOPPING (Terminating) -> gone (DELETED)
 *   migrate                      MIGRATING -> RUNNING on another node; the migration goes
 *                                Pending .. Running -> Succeeded, or Failed when cancelled
 *
 * Each arrow is one tick (shd_sim_options.tick_ms) and one watch event with a new
 * resourceVersion. There is no thread: every call, and every watch wake-up, first applies the
 * transitions that are due. The console capability is absent (console.ops is NULL): VNC is not
 * simulated.
 *
 * See docs/internals/simulated-cluster.md.
 */
#pragma once

#include <stdbool.h>

#include "provider.h"

struct shp_error;

struct shd_sim_options {
	const char *cluster_name; /* in messages; NULL = "sim" */
	int tick_ms;              /* one asynchronous step; 0 = 500 */
	int nodes;                /* node-1 .. node-N; 0 = 3 */
	bool gpu;                 /* adds the "gpu" capability */
	bool hugepages;           /* adds the "hugepages" capability */
};

/*
 * A new simulated cluster (one reference, kind "simulated") holding the namespaces default,
 * kube-system and kubevirt and no VM. opt may be NULL (all defaults). SHP_E_INVAL for a
 * negative tick or node count, or more than 1000 nodes.
 */
struct shd_provider *shd_provider_sim_new(const struct shd_sim_options *opt, struct shp_error *err);

/* ---- test hooks (p must come from shd_provider_sim_new; any thread) -------------------- */

/*
 * Create n VMs "<prefix>-<i>" (i = 1..n, existing names skipped) in namespace ns (created if
 * absent) at once, already RUNNING (with node and IP) or STOPPED, with 1 CPU, 1 GiB and the
 * labels given (a JSON object of strings, borrowed; may be NULL). One ADDED event each.
 * SHP_E_INVAL for a bad name, namespace or label, SHP_E_LIMIT past the object cap.
 */
int shd_provider_sim_seed(struct shd_provider *p, const char *ns, const char *prefix, int n,
			  bool running, const json_t *labels, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Back to an empty cluster, as new: every object is gone without events, faults and
 * unreachability are cleared. The resourceVersion does not go back: it continues from where it
 * was, and every watch (running or resumed from before the reset) gets SHD_WATCH_EXPIRED.
 */
void shd_provider_sim_reset(struct shd_provider *p);

/*
 * Remove a VM behind everyone's back: no event, no resourceVersion, as if the cluster's
 * storage lost it (for ghost detection). 0, or -SHP_E_NOTFOUND.
 */
int shd_provider_sim_remove_raw(struct shd_provider *p, const char *ns, const char *name);

/*
 * While set, every call fails with SHP_E_UNAVAIL (API code "UNREACHABLE"), a running watch
 * ends with it, and health reports SHD_HEALTH_UNREACHABLE.
 */
void shd_provider_sim_set_unreachable(struct shd_provider *p, bool unreachable);

/*
 * The next count calls (any operation except health) fail with -errc (an enum shp_errc) and a
 * message saying the failure was injected. count 0 clears it.
 */
void shd_provider_sim_set_fault(struct shd_provider *p, int errc, int count);

/*
 * Compaction: the event log is emptied, so a watch from any older resourceVersion gets
 * SHD_WATCH_EXPIRED, and so does every watch running now (as when an API server restarts).
 */
void shd_provider_sim_expire_watches(struct shd_provider *p);
