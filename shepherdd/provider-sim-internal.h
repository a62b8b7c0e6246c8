/*
 * The simulated cluster's state, shared by its files: provider-sim.c (the state, the event log,
 * transitions, VMs, watch, test hooks), provider-sim-spec.c (reading and validating
 * VirtualMachine manifests), provider-sim-ops.c (snapshots, restores, clones, migrations) and
 * provider-sim-cluster.c (instance types, health, capabilities). Every function here expects
 * s->lock held unless it says otherwise.
 */
#pragma once

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "provider.h"
#include "vm.h"

struct shp_error;

#define SIM_LOG_MAX 4096      /* events kept for watches to resume from */
#define SIM_MAX_OBJECTS 50000 /* of each kind: the quota of the simulated cluster */
#define SIM_MAX_NAMESPACES 10000
#define SIM_MAX_LABELS 64
#define SIM_BOOKMARK_TICKS 10 /* an idle watch gets a BOOKMARK this often */
#define SIM_DEFAULT_DEADLINE_NS (30ull * 1000000000ull)
#define SIM_MIGRATIONS_KEPT 5 /* finished migrations kept per VM, as KubeVirt's GC does */

enum sim_kind { SIM_VM, SIM_SNAPSHOT, SIM_RESTORE, SIM_CLONE, SIM_MIGRATION, _SIM_KIND_MAX };

/* What every object starts with: its key, and its pending transition if any. */
struct sim_obj {
	char ns[64];
	char name[SHD_VM_NAME_MAX + 1];
	enum sim_kind kind;
	uint64_t due_ns; /* the next transition is due then; 0 = none pending */
	uint64_t seq;    /* order of transitions due at the same time */
};

/* Objects of one kind, sorted by namespace and name. */
struct sim_set {
	struct sim_obj **items;
	size_t n, cap;
};

/* A VM's next transition. */
enum sim_vm_step {
	SIM_STEP_NONE,
	SIM_STEP_RUN,     /* STARTING -> RUNNING */
	SIM_STEP_HALT,    /* STOPPING -> STOPPED */
	SIM_STEP_RESTART, /* STOPPING -> STARTING */
	SIM_STEP_GONE,    /* Terminating -> deleted */
};

struct sim_vm {
	struct sim_obj o;
	struct shd_vm pub; /* what get/list/watch return */
	json_t *labels;    /* an object; replaced whole on change, never mutated in place */
	enum sim_vm_step step;
	bool terminating;
	uint64_t rv;
};

struct sim_snapshot {
	struct sim_obj o;
	struct shd_snapshot pub;
	struct shd_vm source; /* the VM as captured: what a restore or clone brings back */
	json_t *source_labels;
};

struct sim_restore {
	struct sim_obj o;
	struct shd_restore pub;
};

/* Clone phases in order; a clone from a snapshot starts at RestoreInProgress. */
enum sim_clone_step { SIM_CLONE_SNAPSHOT, SIM_CLONE_RESTORE, SIM_CLONE_CREATING, SIM_CLONE_DONE };

struct sim_clone {
	struct sim_obj o;
	struct shd_clone pub;
	enum sim_clone_step step;
	struct shd_vm source; /* captured at creation */
	json_t *source_labels;
};

struct sim_migration {
	struct sim_obj o;
	struct shd_migration pub;
	int phase; /* index into the migration phase table */
	uint64_t created_seq;
};

struct sim_event {
	uint64_t rv;
	enum shd_watch_type type;
	struct shd_vm vm;
	json_t *labels;      /* the VM's labels after the change (a reference) */
	json_t *prev_labels; /* before it (MODIFIED only; a reference) */
};

struct sim {
	char cluster[64];
	uint64_t tick_ns;
	int nodes;
	bool gpu, hugepages;
	uint32_t uid_base;

	/*
	 * lock protects everything below: every object, the namespaces, the resourceVersion, the
	 * event log, the pending transitions and the test switches. changed is broadcast with it
	 * held whenever an event is logged or a watch must look again (reset, expiry,
	 * reachability).
	 */
	pthread_mutex_t lock;
	pthread_cond_t changed;

	uint64_t rv;       /* the global resourceVersion: bumped by every change */
	uint64_t floor_rv; /* a watch may resume from this RV or later */
	uint64_t epoch;    /* bumped by reset and expiry: running watches end EXPIRED */
	uint64_t seq;      /* scheduling order */
	uint64_t serial;   /* uids, addresses, generated names */
	unsigned next_node;
	bool unreachable;
	int fault_errc, fault_count;

	json_t *namespaces; /* an object used as a set of names */
	struct sim_set sets[_SIM_KIND_MAX];
	struct sim_obj **pending; /* objects with a transition due (o.due_ns != 0) */
	size_t n_pending, cap_pending;
	uint64_t next_due; /* the earliest due_ns in pending; UINT64_MAX when none */

	struct sim_event **log; /* ring of SIM_LOG_MAX, log_head is the oldest */
	size_t log_head, log_n;
};

/* ---- memory (the daemon aborts on OOM, as STYLE allows in shepherdd/) ------------------- */

void *sim_xcalloc(size_t n, size_t size);
void *sim_xrealloc(void *p, size_t n, size_t size);

/* ---- errors shaped like the KubeVirt provider's (k8s-status.c) -------------------------- */

/* http: 400, 403, 404, 409 or 422; reason: the Status reason ("NotFound", ...). */
int sim_fail(struct shp_error *err, int http, const char *reason, const char *fmt, ...)
	SHP_PRINTF(4, 5);
/*
 * Names are checked before anything else, with the KubeVirt provider's rule and message (the
 * name is not echoed): a namespace is a DNS-1123 label, other names DNS-1123 subdomains.
 */
/* A printable, bounded copy of untrusted text for a message. */
void sim_quote(char *out, size_t size, const char *s);
void sim_copy(char *dst, size_t size, const char *src);

/* ---- calls -------------------------------------------------------------------------------- */

/*
 * Begin an operation: take the lock, check the deadline, reachability and injected faults,
 * apply due transitions. 0 with the lock held, or < 0 without it.
 */
int sim_enter(struct sim *s, uint64_t deadline_ns, struct shp_error *err);
void sim_leave(struct sim *s);
/* The error of every call while the cluster is unreachable. */
int sim_unreachable_error(const struct sim *s, struct shp_error *err);
/* Wait on s->changed until woken or until_ns (monotonic); the lock is held around it. */
void sim_wait(struct sim *s, uint64_t until_ns);
void sim_apply_due(struct sim *s, uint64_t now);
/* The event log: event i (0 = oldest), and the index of the first event after rv. */
const struct sim_event *sim_log_at(const struct sim *s, size_t i);
size_t sim_log_first_after(const struct sim *s, uint64_t rv);
/* Add namespace ns (valid) if absent. */
int sim_add_namespace(struct sim *s, const char *ns, struct shp_error *err);
/* The namespace must exist: 0 or SHP_E_NOTFOUND 'namespaces "x" not found'. */
int sim_need_namespace(struct sim *s, const char *ns, struct shp_error *err);

/* ---- objects and transitions ------------------------------------------------------------- */

struct sim_obj *sim_find(struct sim *s, enum sim_kind kind, const char *ns, const char *name);
/* Insert a new object (its key set); SHP_E_PERM "exceeded quota" past SIM_MAX_OBJECTS. */
int sim_insert(struct sim *s, struct sim_obj *o, struct shp_error *err);
/* Take o out of its set and of the pending list, and free it. */
void sim_remove(struct sim *s, struct sim_obj *o);
/* Schedule o's next transition one tick after `from` (a monotonic time). */
void sim_schedule(struct sim *s, struct sim_obj *o, uint64_t from);
void sim_unschedule(struct sim *s, struct sim_obj *o);
/* Bump and return the resourceVersion (for changes that are not VM events). */
uint64_t sim_bump(struct sim *s);
uint64_t sim_next_serial(struct sim *s);
void sim_make_uid(struct sim *s, char *out, size_t size);

/* ---- VMs (provider-sim.c) ---------------------------------------------------------------- */

struct sim_vm *sim_vm_get(struct sim *s, const char *ns, const char *name);
/* Record a change of vm: new RV, an event (prev_labels for MODIFIED, may be NULL). */
void sim_vm_event(struct sim *s, struct sim_vm *vm, enum shd_watch_type type, json_t *prev_labels);
/* Set the VM's status and printableStatus (and readiness). */
void sim_vm_set_status(struct sim_vm *vm, enum shd_vm_status st, const char *printable);
/*
 * Create a VM from src (its name, namespace and spec fields; labels borrowed, copied) and log
 * ADDED. initial: SHD_VM_STARTING (RUNNING one tick later), SHD_VM_RUNNING (placed at once) or
 * SHD_VM_STOPPED. *ret (may be NULL) is borrowed, valid while the lock is held.
 */
int sim_vm_create_from(struct sim *s, const struct shd_vm *src, const json_t *labels,
		       enum shd_vm_status initial, struct sim_vm **ret, uint64_t now,
		       struct shp_error *err);
/* Apply a VM's due transition. */
void sim_vm_step(struct sim *s, struct sim_vm *vm, uint64_t due);
/* Place a VM that has just become RUNNING: a node and an address. */
void sim_vm_place(struct sim *s, struct sim_vm *vm);

/* ---- manifests (provider-sim-spec.c) ----------------------------------------------------- */

struct sim_manifest {
	const char *ns, *name; /* borrowed from the manifest */
	const json_t *labels;  /* borrowed; NULL when absent */
	bool has_spec;
	const char *run_strategy; /* NULL: not given (running:true/false are translated) */
	const char *instancetype; /* NULL: not given */
	bool has_cpu;
	int cpus;
	bool has_memory; /* guest, requests.memory or hugepages */
	int64_t memory_bytes;
};

/* The manifest's kind, apiVersion, namespace and name (borrowed), checked before anything. */
int sim_manifest_id(const json_t *m, const char **ret_ns, const char **ret_name,
		    struct shp_error *err);
/*
 * Read and validate a VirtualMachine manifest as the API server and KubeVirt's webhook do.
 * create: spec and spec.template are required and memory must be requested (unless an
 * instancetype is referenced); otherwise (an apply of some fields) only metadata is required.
 */
int sim_manifest_parse(const json_t *m, bool create, struct sim_manifest *ret,
		       struct shp_error *err);
/* A labels object: string values, valid keys and values, at most SIM_MAX_LABELS. */
int sim_labels_check(const json_t *labels, bool allow_null, const char *kind, const char *name,
		     struct shp_error *err);
/* A generated name: prefix + 5 characters, as generateName gives. */
void sim_generate_name(struct sim *s, const char *prefix, char *out, size_t size);
/* Does a run strategy keep a VM running (Always, RerunOnFailure, Once)? */
bool sim_strategy_runs(const char *strategy);

/* ---- other kinds (provider-sim-ops.c, provider-sim-cluster.c)
 * ---------------------------------------------------- */

extern const struct shd_snapshot_ops sim_snapshot_ops;
extern const struct shd_clone_ops sim_clone_ops;
extern const struct shd_migration_ops sim_migration_ops;
extern const struct shd_instancetype_ops sim_instancetype_ops;
extern const struct shd_cluster_ops sim_cluster_ops;
/* provider-sim-console.c: an RFB server per stream; its impl is the provider itself */
extern const struct shd_console_ops sim_console_ops;

/* The cluster instance type name, or NULL. */
const struct shd_instancetype *sim_instancetype_find(const char *name);
const struct shd_preference *sim_preference_find(const char *name);
/* Apply one due transition of a snapshot, restore, clone or migration. */
void sim_step_other(struct sim *s, struct sim_obj *o, uint64_t now);
/* The VM is going away or stopping: fail its migration in flight, if any. */
void sim_migration_interrupt(struct sim *s, const struct sim_vm *vm, const char *why);
/* Remove every migration of a VM (it is gone). */
void sim_migrations_drop(struct sim *s, const char *ns, const char *vm);
/* The VM's migration in flight, or NULL. */
struct sim_migration *sim_migration_active(struct sim *s, const char *ns, const char *vm);
/* Free the extra parts of an object of any kind (not the object itself). */
void sim_obj_release(struct sim_obj *o);
