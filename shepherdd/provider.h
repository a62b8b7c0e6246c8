/*
 * The provider interface: what shepherd asks of a cluster, split by capability so a caller
 * depends on the narrowest part it needs (a snapshot job takes a `const struct shd_snapshots
 * *`, never the whole provider). Each capability is a table of function pointers and the
 * implementation's state; a NULL table means the provider lacks the capability.
 *
 * Two implementations: the KubeVirt provider (Kubernetes REST over libcurl, provider-kubevirt.c)
 * and the simulated cluster (in memory, provider-sim.c). Both speak only the domain models of
 * vm.h; no Kubernetes object crosses this line.
 *
 * Contract of every operation:
 * - Thread-safe: one provider serves every thread of the daemon.
 * - deadline_ns is an absolute shp_now_monotonic_ns() value; 0 means the provider's default
 *   (30 s from now). Waiting for an in-flight slot counts against it. Past it, SHP_E_TIMEOUT.
 * - Errors: SHP_E_NOTFOUND, SHP_E_CONFLICT (with the cluster's causes as details), SHP_E_INVAL
 *   (rejected by validation), SHP_E_PERM, SHP_E_RATE and SHP_E_UNAVAIL (retryable; the
 *   provider has already honoured Retry-After within the deadline), SHP_E_TIMEOUT,
 *   SHP_E_UNREACHABLE-like transport failures as SHP_E_UNAVAIL with api code "UNREACHABLE".
 * - Idempotent writes: create_vm is create-if-absent (an existing VM of the same name is
 *   returned, not duplicated), delete of an absent object succeeds, power operations that are
 *   already satisfied ("already running") succeed.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cleanup.h"
#include "vm.h"

struct shp_error;

/* The field manager of every server-side apply, and the labels shepherd puts on what it owns. */
#define SHD_FIELD_MANAGER "kubevirt-shepherd"
#define SHD_LABEL_MANAGED_BY "app.kubernetes.io/managed-by" /* = "shepherd" */
#define SHD_LABEL_VM_ID "shepherd.io/vm-id"                 /* the vms row id */
#define SHD_LABEL_ADOPT "shepherd.io/adopt"                 /* = "true": offer for adoption */

/* ---- infrastructure: VMs and their power ----------------------------------------------- */

enum shd_power_op {
	SHD_POWER_START,
	SHD_POWER_STOP,
	SHD_POWER_RESTART,
	SHD_POWER_PAUSE,
	SHD_POWER_UNPAUSE,
};

const char *shd_power_op_to_string(enum shd_power_op op); /* "start" */

/*
 * Check a Kubernetes name before it reaches a cluster: a DNS-1123 label (namespaces, at most 63)
 * or subdomain (objects, at most 253). SHP_E_INVAL names `what` but never echoes the name,
 * which may hold anything. Both providers check alike, so they refuse alike.
 */
int shd_provider_check_name(const char *what, const char *s, bool is_label,
			    struct shp_error *err) SHP_MUSTCHECK;
/* A namespace, then an object name of kind `what`. */
int shd_provider_check_ns_name(const char *ns, const char *what, const char *name,
			       struct shp_error *err) SHP_MUSTCHECK;

/* A list, with the collection's resourceVersion to watch from. */
struct shd_vm_list {
	struct shd_vm *items; /* owned */
	size_t n;
	char resource_version[32];
};

void shd_vm_list_release(struct shd_vm_list *l);

enum shd_watch_type { SHD_WATCH_ADDED, SHD_WATCH_MODIFIED, SHD_WATCH_DELETED, SHD_WATCH_BOOKMARK };

/*
 * One watch event. For BOOKMARK only rv is meaningful (vm is NULL). rv is the resourceVersion
 * to resume from after this event. Return 0 to go on, < 0 to stop the watch (the watch then
 * returns 0).
 */
typedef int (*shd_vm_watch_fn)(void *ud, enum shd_watch_type type, const struct shd_vm *vm,
			       const char *rv);

/* watch_vms returns this (> 0) when from_rv is too old: list again, then watch from the new RV. */
#define SHD_WATCH_EXPIRED 1

struct shd_infra_ops {
	int (*get_vm)(void *impl, const char *ns, const char *name, struct shd_vm *ret,
		      uint64_t deadline_ns, struct shp_error *err);
	/* ns NULL = every namespace; selector NULL or a Kubernetes label selector. */
	int (*list_vms)(void *impl, const char *ns, const char *selector, struct shd_vm_list *ret,
			uint64_t deadline_ns, struct shp_error *err);
	/*
	 * manifest: a full VirtualMachine object (borrowed). Create-if-absent; with dry_run
	 * nothing is persisted and ret is what would be. ret may be NULL.
	 */
	int (*create_vm)(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			 uint64_t deadline_ns, struct shp_error *err);
	/* Server-side apply of the fields shepherd owns (force, SHD_FIELD_MANAGER). */
	int (*update_vm)(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
			 uint64_t deadline_ns, struct shp_error *err);
	int (*delete_vm)(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
			 struct shp_error *err);
	int (*power)(void *impl, const char *ns, const char *name, enum shd_power_op op,
		     uint64_t deadline_ns, struct shp_error *err);
	/* Create the namespace if absent (just in time); SHP_E_CONFLICT if it is terminating. */
	int (*ensure_namespace)(void *impl, const char *ns, uint64_t deadline_ns,
				struct shp_error *err);
	/*
	 * Watch VMs in every namespace from from_rv (never ""), calling fn per event, until the
	 * stream ends (0), *stop becomes true (0), fn stops it (0), from_rv is too old
	 * (SHD_WATCH_EXPIRED) or an error (< 0). Bookmarks are requested.
	 */
	int (*watch_vms)(void *impl, const char *selector, const char *from_rv, shd_vm_watch_fn fn,
			 void *ud, const atomic_bool *stop, uint64_t deadline_ns,
			 struct shp_error *err);
};

struct shd_infra {
	const struct shd_infra_ops *ops;
	void *impl;
};

/* ---- snapshots and restores ------------------------------------------------------------ */

struct shd_snapshot_ops {
	int (*create)(void *impl, const char *ns, const char *vm, const char *name,
		      struct shd_snapshot *ret, uint64_t deadline_ns, struct shp_error *err);
	int (*get)(void *impl, const char *ns, const char *name, struct shd_snapshot *ret,
		   uint64_t deadline_ns, struct shp_error *err);
	/* vm NULL = every snapshot of ns. *ret owned (free()). */
	int (*list)(void *impl, const char *ns, const char *vm, struct shd_snapshot **ret,
		    size_t *ret_n, uint64_t deadline_ns, struct shp_error *err);
	int (*remove)(void *impl, const char *ns, const char *name, uint64_t deadline_ns,
		      struct shp_error *err);
	int (*restore)(void *impl, const char *ns, const char *vm, const char *snapshot,
		       const char *name, struct shd_restore *ret, uint64_t deadline_ns,
		       struct shp_error *err);
	int (*get_restore)(void *impl, const char *ns, const char *name, struct shd_restore *ret,
			   uint64_t deadline_ns, struct shp_error *err);
};

struct shd_snapshots {
	const struct shd_snapshot_ops *ops;
	void *impl;
};

/* ---- clones ------------------------------------------------------------------------------ */

struct shd_clone_ops {
	int (*from_vm)(void *impl, const char *ns, const char *vm, const char *target,
		       const char *name, struct shd_clone *ret, uint64_t deadline_ns,
		       struct shp_error *err);
	int (*from_snapshot)(void *impl, const char *ns, const char *snapshot, const char *target,
			     const char *name, struct shd_clone *ret, uint64_t deadline_ns,
			     struct shp_error *err);
	int (*get)(void *impl, const char *ns, const char *name, struct shd_clone *ret,
		   uint64_t deadline_ns, struct shp_error *err);
	int (*list)(void *impl, const char *ns, struct shd_clone **ret, size_t *ret_n,
		    uint64_t deadline_ns, struct shp_error *err);
};

struct shd_clones {
	const struct shd_clone_ops *ops;
	void *impl;
};

/* ---- live migration ---------------------------------------------------------------------- */

struct shd_migration_ops {
	int (*migrate)(void *impl, const char *ns, const char *vm, struct shd_migration *ret,
		       uint64_t deadline_ns, struct shp_error *err);
	int (*get)(void *impl, const char *ns, const char *name, struct shd_migration *ret,
		   uint64_t deadline_ns, struct shp_error *err);
	/* vm NULL = every migration of ns. */
	int (*list)(void *impl, const char *ns, const char *vm, struct shd_migration **ret,
		    size_t *ret_n, uint64_t deadline_ns, struct shp_error *err);
	/* Cancel the VM's migration in flight; SHP_E_NOTFOUND when none is. */
	int (*cancel)(void *impl, const char *ns, const char *vm, uint64_t deadline_ns,
		      struct shp_error *err);
};

struct shd_migrations {
	const struct shd_migration_ops *ops;
	void *impl;
};

/* ---- instance types and preferences ------------------------------------------------------ */

struct shd_instancetype_ops {
	/* ns NULL = the cluster instance types; otherwise those of ns. */
	int (*list_instancetypes)(void *impl, const char *ns, struct shd_instancetype **ret,
				  size_t *ret_n, uint64_t deadline_ns, struct shp_error *err);
	int (*list_preferences)(void *impl, const char *ns, struct shd_preference **ret,
				size_t *ret_n, uint64_t deadline_ns, struct shp_error *err);
};

struct shd_instancetypes {
	const struct shd_instancetype_ops *ops;
	void *impl;
};

/* ---- console ------------------------------------------------------------------------------ */

/* An open VNC byte stream (RFB inside WebSocket binary frames, framing hidden here). */
struct shd_console_stream;

struct shd_console_ops {
	int (*open_vnc)(void *impl, const char *ns, const char *vm, struct shd_console_stream **ret,
			uint64_t deadline_ns, struct shp_error *err);
	/* Bytes read into buf (0 at end of stream), or < 0. Blocks at most timeout_ms. */
	long (*read)(struct shd_console_stream *s, void *buf, size_t len, int timeout_ms,
		     struct shp_error *err);
	int (*write)(struct shd_console_stream *s, const void *buf, size_t len,
		     struct shp_error *err);
	void (*close)(struct shd_console_stream *s); /* NULL-safe */
};

struct shd_console {
	const struct shd_console_ops *ops;
	void *impl;
};

/* ---- the cluster itself: health and capabilities -------------------------------------- */

enum shd_cluster_health {
	SHD_HEALTH_UNKNOWN,
	SHD_HEALTH_HEALTHY,
	SHD_HEALTH_UNHEALTHY,   /* answers, but something needed is not ready */
	SHD_HEALTH_UNREACHABLE, /* does not answer at all */
};

const char *shd_cluster_health_to_string(enum shd_cluster_health h); /* "HEALTHY" */

struct shd_health_report {
	enum shd_cluster_health health;
	char kubernetes_version[32]; /* "v1.30.2", "" if unknown */
	char kubevirt_version[32];
	char message[512]; /* why it is not HEALTHY */
};

struct shd_cluster_ops {
	/* Never fails for a sick cluster: that is a report. < 0 only for local failures. */
	int (*health)(void *impl, struct shd_health_report *ret, uint64_t deadline_ns,
		      struct shp_error *err);
	/*
	 * Detected capabilities as a sorted JSON array of strings (owned), from API discovery,
	 * the KubeVirt CR's feature gates and node labels: "kubevirt", "cdi", "snapshot",
	 * "clone", "live-migration", "instancetypes", "vnc", "gpu", "hugepages", ...
	 */
	int (*capabilities)(void *impl, json_t **ret, uint64_t deadline_ns, struct shp_error *err);
};

struct shd_cluster_if {
	const struct shd_cluster_ops *ops;
	void *impl;
};

/* ---- the provider: all capabilities of one cluster ------------------------------------- */

struct shd_provider {
	const char *kind; /* "kubevirt" or "simulated" (static) */
	struct shd_infra infra;
	struct shd_snapshots snapshots; /* ops NULL when unsupported */
	struct shd_clones clones;
	struct shd_migrations migrations;
	struct shd_instancetypes instancetypes;
	struct shd_console console;
	struct shd_cluster_if cluster;
	void (*destroy)(struct shd_provider *p); /* frees impl and p */
	atomic_int refs;
};

struct shd_provider *shd_provider_ref(struct shd_provider *p);
/* Drop a reference; the last one destroys. NULL-safe; returns NULL. */
struct shd_provider *shd_provider_unref(struct shd_provider *p);
SHP_DEFINE_CLEANUP(struct shd_provider *, shd_provider_unref)

/* ---- the registry: one provider per registered cluster --------------------------------- */

struct shd_providers;
struct shd_dbpool;

/*
 * The daemon's providers, built on first use from the clusters table (credentials decrypted
 * with the key in key_file, created 0600 when absent) and kept until the cluster changes.
 */
struct shd_providers *shd_providers_new(struct shd_dbpool *pool, const char *key_file,
					int max_inflight, struct shp_error *err);
struct shd_providers *shd_providers_free(struct shd_providers *r);

/* The provider of cluster id (a new reference), or NULL with SHP_E_NOTFOUND / others. */
struct shd_provider *shd_providers_get(struct shd_providers *r, int64_t cluster_id,
				       struct shp_error *err);
/* Forget cluster id's provider (changed or deleted); later gets build a new one. */
void shd_providers_invalidate(struct shd_providers *r, int64_t cluster_id);
