/*
 * kubesim: a small kube-apiserver look-alike with KubeVirt and CDI installed, for tests. This
 * header is its one internal header: the resource table, the store (objects, the global
 * resourceVersion, the event log), requests and responses, and the entry points of each file.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "cleanup.h"
#include "error.h"

/* Caps on what a client controls. */
#define KS_BODY_MAX (3u * 1024u * 1024u)
#define KS_LOG_MAX 200000 /* events kept before the oldest are compacted away */
#define KS_JSON_DEPTH 64
#define KS_LIST_LIMIT_MAX 10000

/* Indexes into the resource table (resources.c); the order is the table's. */
enum ks_res {
	KS_R_NAMESPACE,
	KS_R_NODE,
	KS_R_VM,
	KS_R_VMI,
	KS_R_VMIM,
	KS_R_KUBEVIRT,
	KS_R_SNAPSHOT,
	KS_R_SNAPCONTENT,
	KS_R_RESTORE,
	KS_R_CLONE,
	KS_R_INSTANCETYPE,
	KS_R_PREFERENCE,
	KS_R_CLUSTER_INSTANCETYPE,
	KS_R_CLUSTER_PREFERENCE,
	KS_R_DATAVOLUME,
	_KS_R_MAX,
};

struct ks_resource {
	const char *group; /* "" for the core group */
	const char *version;
	const char *plural;
	const char *singular;
	const char *kind;
	const char *short_names; /* comma-separated, or NULL */
	bool namespaced;
	bool status_sub;       /* has a status subresource: main writes ignore .status */
	bool crd;              /* a custom resource: strategic merge patch is refused */
	bool read_only;        /* served but not writable by clients (nodes) */
	const char *finalizer; /* added by the fake controller on create, or NULL */
};

extern const struct ks_resource ks_resources[_KS_R_MAX];

/* "kubevirt.io/v1", or "v1" for the core group, into out. */
void ks_api_version(const struct ks_resource *r, char *out, size_t size);
/* "virtualmachines.kubevirt.io" (or "namespaces" for the core group), into out. */
void ks_qualified(const struct ks_resource *r, char *out, size_t size);
int ks_resource_find(const char *group, const char *version, const char *plural);

enum ks_ev_type { KS_EV_ADDED, KS_EV_MODIFIED, KS_EV_DELETED };

/* One change, in the watch event log. obj is the object after the change (for DELETED: the last
 * state, stamped with the deletion's RV); prev the object before it (NULL for ADDED). */
struct ks_event {
	uint64_t rv;
	enum ks_ev_type type;
	enum ks_res res;
	json_t *obj;
	json_t *prev;
};

/* Injected failures (control API), under the store mutex. */
struct ks_faults {
	int status;
	int count;
	int retry_after;
	int latency_ms;
	char path_prefix[256];
	bool watch_410_http;
	bool legacy_gone;
	int watch_chunk_bytes; /* > 0: watch streams go out in chunks of at most this size */
};

struct ks_config {
	const char *listen;
	const char *port_file;
	const char *tls_cert;
	const char *tls_key;
	const char *token;
	const char *kubevirt_version;
	const char *feature_gates;
	int tick_ms;
	int nodes;
	bool quiet;
	bool exit_with_parent; /* stop when the parent process goes (helpers of crashed tests) */
	long parent;
};

/*
 * The simulator. The mutex protects everything below it; the condvar is broadcast on every
 * change of the store, of drop_gen and on shutdown (watch streams wait on it).
 */
struct ks {
	struct ks_config cfg;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t rv;             /* the global resourceVersion: last one handed out */
	uint64_t floor;          /* compacted: events with rv <= floor are gone */
	json_t *objs[_KS_R_MAX]; /* per resource: key ("ns/name" or "name") -> object */
	struct ks_event *log;
	size_t log_len, log_cap;
	uint64_t drop_gen; /* bumped by drop-watches: streams of an older generation close */
	int drop_error;    /* with drop_gen: an ERROR event with this code first, or 0 */
	uint64_t unreachable_until_ns;
	uint64_t ip_counter;
	uint64_t node_rr;
	struct ks_faults faults;
	json_t *stats_by_verb;
	uint64_t requests;
	int watches_open;
	atomic_bool stop;
};

/* store.c: every function expects ks->mu held. Objects in the store are immutable: deep-copy,
 * modify, put back. */
void ks_store_init(struct ks *ks);
void ks_store_release(struct ks *ks);
void ks_store_reset(struct ks *ks);
void ks_key(const char *ns, const char *name, char *out, size_t size);
/* Borrowed; NULL when absent. ns is ignored for cluster-scoped resources. */
json_t *ks_get(struct ks *ks, enum ks_res res, const char *ns, const char *name);
/* Store obj (reference stolen) under a new RV, log an ADDED or MODIFIED event; returns the RV. */
uint64_t ks_put(struct ks *ks, enum ks_res res, json_t *obj);
/* Remove an object; logs DELETED; returns the RV (0 if absent). */
uint64_t ks_remove(struct ks *ks, enum ks_res res, const char *ns, const char *name);
/* Drop the event log up to the current RV. */
void ks_compact(struct ks *ks);
/* Index of the first event with rv > after (== log_len if none). */
size_t ks_log_after(const struct ks *ks, uint64_t after);
/* The object as it was at rv (borrowed or NULL); *ok=false when the log no longer covers rv. */
json_t *ks_get_at(struct ks *ks, enum ks_res res, const char *key, uint64_t rv);
/* Fresh identity for a new object: uid and creationTimestamp. */
void ks_new_uid(char *out, size_t size);
void ks_now(char *out, size_t size);

/* A parsed request. */
struct ks_req {
	struct ks *ks;
	void *conn; /* struct MHD_Connection * */
	const char *method;
	const char *path;
	char *body;
	size_t body_len;
	char *segs[16];
	int nsegs;
	const char *user_agent;
	const char *content_type;
};

struct ks_watch;

/* A response: a JSON body, or raw bytes, or a watch stream. */
struct ks_resp {
	int status;
	json_t *body;
	char *raw;
	size_t raw_len; /* 0: strlen(raw) */
	const char *ctype;
	int retry_after;
	char warning[256];
	struct ks_watch *watch;
	struct ks_vnc *vnc; /* a VNC upgrade (status 101), kv-vnc.c */
};

/* http.c */
const char *ks_query(const struct ks_req *req, const char *key);
/* Set a Status error; returns -1 so handlers can `return ks_error(...)`. */
int ks_error(struct ks_resp *resp, int code, const char *reason, const char *message,
	     json_t *details);
int ks_errorf(struct ks_resp *resp, int code, const char *reason, const char *fmt, ...)
	SHP_PRINTF(4, 5);
int ks_not_found(struct ks_resp *resp, const struct ks_resource *r, const char *name);
int ks_reply(struct ks_resp *resp, int code, json_t *body);
int ks_http_start(struct ks *ks, void **ret_daemon, int *ret_port);
void ks_http_stop(void *daemon);

/* api.c: the generic REST verbs on one resource. */
struct ks_target {
	enum ks_res res;
	const char *ns;   /* NULL: all namespaces (or cluster-scoped) */
	const char *name; /* NULL: the collection */
	const char *sub;  /* subresource name, or NULL */
	bool watch_path;  /* the legacy /watch/ path form */
};
int ks_api_handle(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t);
/* Check the dryRun parameter: 1 dry run, 0 not, -1 error set. */
int ks_dry_run(struct ks_req *req, struct ks_resp *resp, json_t *opts_body);
/* The identity and bookkeeping of a new object (name from generateName, uid, timestamps). */
int ks_prepare_create(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		      json_t *obj, bool dry);
/* Finish a PUT/PATCH of cur with body; managed: the managedFields to store, or NULL to record
 * an Update by the request's manager. */
int ks_commit_update(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		     const json_t *body, const json_t *cur, bool dry, const json_t *managed);
int ks_store_update(struct ks *ks, struct ks_resp *resp, const struct ks_target *t, json_t *nw,
		    const json_t *cur, bool dry);
/* Create obj (modified in place) in t's collection: 201, or an error. apply_manager: record
 * an Apply entry for it instead of an Update by the request's manager. */
int ks_create_obj(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t, json_t *obj,
		  bool dry, const char *apply_manager);
int ks_conflict_modified(struct ks_resp *resp, const struct ks_resource *r, const char *name);
void ks_generate_name(const char *prefix, char *out, size_t size);
/* The manager recorded for a non-apply write: ?fieldManager= or the User-Agent's product. */
void ks_update_manager(struct ks_req *req, char *out, size_t size);

/* list-watch.c */
int ks_list(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t);
int ks_watch_start(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t);
ssize_t ks_watch_read(void *cls, uint64_t pos, char *buf, size_t max);
void ks_watch_free(void *cls);
/* Whether obj passes a request's field selector (metadata.name / metadata.namespace). */
bool ks_field_match(const char *sel, const json_t *obj);
int ks_field_check(const char *sel, struct ks_resp *resp);

/* apply.c: field management. */
json_t *ks_fields_of(const json_t *obj, bool status_only, bool skip_status);
/* Record a non-apply write by manager (operation Update) in new_obj's managedFields. */
void ks_managed_update(json_t *new_obj, const json_t *old_obj, const char *manager,
		       const char *api_version, const char *subresource);
void ks_managed_apply_create(json_t *obj, const char *manager, const char *api_version);
int ks_patch(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t);

/* kubevirt.c: seeds, webhooks and helpers of the KubeVirt files (all with ks->mu held). */
/* Webhook-style admission of a create or update; -1 with the error set. */
int ks_admit(struct ks *ks, struct ks_resp *resp, enum ks_res res, const json_t *obj,
	     const json_t *old);
/* The initial objects: namespaces, nodes, the KubeVirt CR, instance types, preferences. */
void ks_seed_cluster(struct ks *ks);
void ks_ensure_namespace(struct ks *ks, const char *name);
/* A member by dotted path ("spec.template.spec"), borrowed; NULL when absent. */
json_t *kv_at(const json_t *o, const char *path);
const char *kv_str(const json_t *o, const char *path);
json_t *kv_create(struct ks *ks, enum ks_res res, json_t *obj, const char *manager);
void kv_write(struct ks *ks, enum ks_res res, json_t *nw, const json_t *cur, const char *manager,
	      bool status);
bool kv_gate_enabled(struct ks *ks, const char *gate);
/* The effective run strategy of a VM: spec.runStrategy, else spec.running, else Halted. */
const char *kv_run_strategy(const json_t *vm);
bool kv_vmi_is_final(const json_t *vmi);

/* kv-controller.c */
void ks_controller_tick(struct ks *ks);
/* Set a status condition, keeping lastTransitionTime while its status and reason hold. */
void kv_condition(json_t *obj, const char *type, bool value, const char *reason,
		  const char *message);
void kv_condition_del(json_t *obj, const char *type);
bool kv_has_condition(const json_t *obj, const char *type);
/* The object's status object, created when absent (borrowed). */
json_t *kv_status_of(json_t *obj);
/* status.phase, with a phaseTransitionTimestamps entry. */
void kv_phase_to(json_t *obj, const char *phase);
void kv_add_finalizer(json_t *obj, const char *fin);
void kv_remove_finalizer(json_t *obj, const char *fin);
/* Release the resource's finalizer from cur; removes it when none is left. */
void kv_release(struct ks *ks, enum ks_res res, const json_t *cur);
/* Delete as a controller does: deletionTimestamp when finalizers are pending, else remove. */
void kv_mark_deleted(struct ks *ks, enum ks_res res, const json_t *cur);
bool kv_provisioning(struct ks *ks, const json_t *vm);
/* A copy of vm with the status the controller derives from vmi (may be NULL). */
json_t *kv_vm_with_status(struct ks *ks, const json_t *vm, const json_t *vmi);
/* Fold the VM's instance type into a template spec (CPU sockets, guest memory). */
void kv_expand_instancetype(struct ks *ks, const json_t *vm, json_t *spec);
json_t *ks_make_vm(const char *ns, const char *name, const json_t *labels, bool running);

/* kv-workflows.c: one step per tick of each. */
void kv_migration_step(struct ks *ks, const char *key);
void kv_snapshot_step(struct ks *ks, const char *key);
void kv_restore_step(struct ks *ks, const char *key);
void kv_clone_step(struct ks *ks, const char *key);
void kv_datavolume_step(struct ks *ks, const char *key);
void kv_content_step(struct ks *ks, const char *key);
bool kv_datavolume_failed(struct ks *ks, const json_t *vm);
/* Create the VM's missing DataVolumes from spec.dataVolumeTemplates. */
void kv_create_datavolumes(struct ks *ks, const json_t *vm);
/* A node other than `not` (round robin), as "node-N" into out. */
void kv_pick_node(struct ks *ks, const char * not, char *out, size_t size);

/* kv-vnc.c: the vnc subresource (a WebSocket upgrade) and its 101 response. */
struct MHD_Response;
int ks_vnc(struct ks_req *req, struct ks_resp *resp, const char *ns, const char *name);
struct MHD_Response *ks_vnc_response(struct ks_vnc *v);
/* At shutdown (ks->stop set): wait for the sessions to end, then free what never upgraded. */
void ks_vnc_drain(void);
void ks_vnc_release(void);

/* kv-subresources.c */
int ks_subresource(struct ks_req *req, struct ks_resp *resp, const char *ns, const char *res,
		   const char *name, const char *action);

/* discovery.c */
int ks_discovery(struct ks_req *req, struct ks_resp *resp);

/* control.c */
int ks_control(struct ks_req *req, struct ks_resp *resp);
