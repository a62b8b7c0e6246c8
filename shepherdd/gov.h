/*
 * Governance: the contract shared by requests, approvals, policies, RBAC, the catalogue
 * (templates and instance sizes), plans, revisions and notifications. The schema is
 * schema/0008_governance.up.sql; the walk-through is docs/internals/governance.md.
 *
 * Functions taking a PGconn run on the caller's connection (and transaction, if one is open);
 * any thread. Pure functions (marked so) touch no database and are unit-tested alone.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canon.h"
#include "cleanup.h"

struct shp_error;
struct shp_buf;
struct shd_req;

/* ---- request types (gov-types.c, pure) ------------------------------------------------- */

enum shd_req_type {
	SHD_REQ_CREATE_SYSTEM,
	SHD_REQ_DELETE_SYSTEM,
	SHD_REQ_CREATE_SERVICE,
	SHD_REQ_DELETE_SERVICE,
	SHD_REQ_CREATE_VM,
	SHD_REQ_MODIFY_VM,
	SHD_REQ_DELETE_VM,
	SHD_REQ_START_VM,
	SHD_REQ_STOP_VM,
	SHD_REQ_RESTART_VM,
	SHD_REQ_VNC_ACCESS,
	_SHD_REQ_MAX,
};

/* "CREATE_VM" (the request_type enum's label), or NULL when out of range. */
const char *shd_req_type_to_string(enum shd_req_type t);
/* -SHP_E_INVAL naming the accepted values when s is not a type. */
int shd_req_type_from_string(const char *s, enum shd_req_type *ret,
			     struct shp_error *err) SHP_MUSTCHECK;
/*
 * Systems, services and console access (a grant): recorded in the database only, nothing runs
 * on a cluster.
 */
bool shd_req_type_record_only(enum shd_req_type t);
/* Types about one existing VM (modify, delete, power, console). */
bool shd_req_type_targets_vm(enum shd_req_type t);

/* ---- environments and access (rbac.c; the SQL functions are in the schema) -------------- */

/*
 * Visibility is decided in SQL, never after the fact: the schema's views
 * effective_role_bindings and effective_tenant_members join bindings, principal mappings and
 * users.is_admin, and these functions answer from them (a disabled user gets nothing):
 *   user_envs(uid, roles platform_role[]) -> environment[]
 *   vm_visible(uid, system, environment) -> boolean
 *   user_system_role(uid, system) -> text ('' if none)
 * Who sees what:
 *   - namespaces: those whose environment is in user_envs(uid, any role);
 *   - VMs, tickets, systems' resources: environment visible AND (a member of the system, or
 *     approver/operator/platform-admin in that environment);
 *   - anything else answers 404, never 403, so existence is not revealed.
 */
#define SHD_ROLES_ANY "{platform-admin,approver,operator,viewer}"
#define SHD_ROLES_APPROVE "{platform-admin,approver}"
#define SHD_ROLES_CROSS_SYSTEM "{platform-admin,approver,operator}"

struct shd_access {
	int64_t user_id;
	bool admin;      /* platform-admin (binding, mapping or users.is_admin) */
	bool see[2];     /* by environment index (0 test, 1 prod): may see namespaces */
	bool approve[2]; /* may approve tickets of that environment */
	bool cross[2];   /* may see and operate every system's VMs there */
};

/* "test" -> 0, "prod" -> 1, anything else -1. */
int shd_env_index(const char *env);
/* Load user_id's access (one query). */
int shd_access_load(PGconn *conn, int64_t user_id, struct shd_access *ret,
		    struct shp_error *err) SHP_MUSTCHECK;

/* ---- instance sizes and templates (catalog.c) ------------------------------------------ */

struct shd_size {
	char name[64];
	int cpus;
	int64_t memory_mib;
	double cpu_overcommit;         /* >= 1: requests = limits / overcommit */
	double memory_overcommit;      /* >= 1 */
	json_t *required_capabilities; /* owned: array of capability names */
};
void shd_size_release(struct shd_size *s);
/* An enabled size by name; SHP_E_NOTFOUND. */
int shd_size_get(PGconn *conn, const char *name, struct shd_size *ret,
		 struct shp_error *err) SHP_MUSTCHECK;

/*
 * Templates as JSON objects with the columns of the templates table (image_source,
 * quick_fields and advanced_fields as JSON values). New references, or NULL with err.
 * GetActiveTemplate: the active version (SHP_E_NOTFOUND if none: a deprecated or archived
 * template takes no new VMs). GetLatestTemplate: the highest version, any status but archived.
 * A version: that exact version (any status, for approvals of older requests).
 */
json_t *shd_template_get_active(PGconn *conn, const char *name, struct shp_error *err);
json_t *shd_template_get_latest(PGconn *conn, const char *name, struct shp_error *err);
json_t *shd_template_get_version(PGconn *conn, const char *name, int version,
				 struct shp_error *err);

/*
 * Import deploy/seed/ (templates/NAME.yaml and sizes.yaml under dir, docs/seed-format.md)
 * once: when seed_imports has no row, everything is validated first (errors name file, line
 * and field) and inserted in one transaction with the seed_imports row (names already taken
 * are left alone); afterwards nothing is read again.
 * *ret_done is false when an earlier import made it skip.
 */
int shd_seed_import(PGconn *conn, const char *dir, bool *ret_done,
		    struct shp_error *err) SHP_MUSTCHECK;

/* ---- the VM spec (gov-spec.c, pure) ------------------------------------------------------ */

/*
 * A VM spec is what a CREATE_VM asks for, and what MODIFY_VM's payload and an approver's
 * modified_spec carry in full:
 *   name             required  DNS label (<= 63), immutable after creation
 *   namespace        required  a registered namespace; immutable (never modifiable)
 *   service          required  an active service; immutable (its system is the tenant)
 *   system           set by shepherdd from the service at submission; immutable
 *   template         required  a template name
 *   template_version           resolved to the active version at submission
 *   size             required  an instance size name
 *   cpus                       override of the size's CPUs (1..1024)
 *   memory                     override of the size's memory, a quantity ("8Gi", "512Mi")
 *   disks                      up to 8 extra disks: [{"name", "size", "storage_class"?}]
 *   storage_class              of the root disk (data volume and PVC images)
 *   cloud_init                 user cloud-init YAML (<= 64 KiB), replaces the template's
 *   cluster                    a preferred cluster; the approver decides
 *   run                        start after creating (default true)
 *   description                <= 1024 bytes
 * Unknown fields are refused. An approver's modification is a full replacement (never a
 * merge): the effective spec is modified_spec when there is one, else the payload's spec.
 */
#define SHD_SPEC_MAX_DISKS 8
extern const char *const shd_spec_fields[];    /* every field above, NULL-terminated */
extern const char *const shd_spec_required[];  /* name namespace service template size */
extern const char *const shd_spec_immutable[]; /* name namespace service system */

/* Check shape, types and limits of a spec; SHP_E_INVAL naming the field. */
int shd_spec_validate(const json_t *spec, struct shp_error *err) SHP_MUSTCHECK;
/* The effective spec (borrowed: modified when not NULL, else requested). */
const json_t *shd_spec_effective(const json_t *requested, const json_t *modified);
/*
 * Check an approver's full replacement against the request: an immutable field changed ->
 * SHP_E_INVAL with code IMMUTABLE_FIELD; a required field missing -> SHP_E_INVAL with code
 * REQUIRED_FIELD_REMOVED; *ret_removed is the number of top-level fields the request had and
 * the modification lacks (5 or more: the caller warns).
 */
int shd_spec_check_modification(const json_t *requested, const json_t *modified, int *ret_removed,
				struct shp_error *err) SHP_MUSTCHECK;
/* "8Gi" -> 8192 MiB; SHP_E_INVAL for anything else (units Mi, Gi, Ti; >= 64 Mi). */
int shd_quantity_mib(const char *q, int64_t *ret, struct shp_error *err) SHP_MUSTCHECK;
/* The CPUs and memory a spec gets: its overrides, else the size's. */
int shd_spec_resources(const json_t *spec, const struct shd_size *size, int *ret_cpus,
		       int64_t *ret_memory_mib, struct shp_error *err) SHP_MUSTCHECK;

/* ---- rendering (render.c, pure) --------------------------------------------------------- */

/*
 * The KubeVirt VirtualMachine manifest of a spec: template (image source, cloud-init) +
 * size (CPU/memory, overcommit as requests below limits) + spec (overrides, disks, storage
 * class, cloud-init, run strategy), labelled app.kubernetes.io/managed-by=shepherd and with
 * shepherd.io/{system,service,template,size} labels. Deterministic: the same inputs give the
 * same JSON, so the plan hash is stable. NULL with SHP_E_INVAL naming the field.
 */
json_t *shd_render_vm(const json_t *tmpl, const struct shd_size *size, const json_t *spec,
		      struct shp_error *err);
/* Cloud-init YAML syntax check (libyaml), with line and column in the message. */
int shd_cloud_init_check(const char *yaml, struct shp_error *err) SHP_MUSTCHECK;

/* ---- policies (policy.c) ----------------------------------------------------------------- */

struct shd_policy {
	enum shd_req_type type;
	int env;   /* environment index, -1 for the row without one */
	int level; /* 0 auto, 1 requester's confirmation, 2 review, 3 N-of-M */
	int approvers_required;
	char runbook_url[2049];
	int escalate_cpus;           /* 0 = off */
	int64_t escalate_memory_mib; /* 0 = off */
};

struct shd_policy_decision {
	int level;
	int approvers_required;  /* >= 2 at level 3, else 1 */
	const char *runbook_url; /* borrowed from the matched row */
	bool escalated;          /* moved up a level by the size of the change */
	int env;                 /* the matched row's environment index, -1 for the fallback */
};

/*
 * Pure: the row for (type, env) or else (type, none); a request adding more than the row's
 * escalate_cpus CPUs or escalate_memory_mib MiB moves up one level (at most 3; escalating
 * to 3 needs 2 approvers). SHP_E_NOTFOUND if no row matches.
 */
int shd_policy_match(const struct shd_policy *rows, size_t n, enum shd_req_type type, int env,
		     int add_cpus, int64_t add_memory_mib, struct shd_policy_decision *ret,
		     struct shp_error *err) SHP_MUSTCHECK;
/* Every row of approval_policies (*ret owned, free()). */
int shd_policy_load(PGconn *conn, struct shd_policy **ret, size_t *ret_n,
		    struct shp_error *err) SHP_MUSTCHECK;

/* ---- plans of requests (gov-plan.c) ------------------------------------------------------ */

/*
 * The plan that carries out a request on a cluster, for the execution engine (plan.h):
 *   CREATE_VM: vm.provision {cluster, namespace, name, manifest} (ensure namespace, server-side
 *              dry run, apply, wait until it runs when run is true)
 *   MODIFY_VM: vm.update {cluster, namespace, name, manifest}
 *   DELETE_VM: vm.delete {cluster, namespace, name}
 *   START/STOP/RESTART_VM: vm.power {cluster, namespace, name, op}
 * spec is the effective spec (CREATE/MODIFY) and vm the target {"namespace", "name"} (the
 * others); cluster is the chosen cluster's name. The template version and size named in spec
 * are read from the catalogue, so any change to them, the spec or the cluster changes the
 * plan hash. New reference or NULL with err.
 */
json_t *shd_gov_plan(PGconn *conn, enum shd_req_type type, const json_t *spec, const json_t *vm,
		     const char *cluster, struct shp_error *err);

/* ---- revisions (revisions.c) -------------------------------------------------------------- */

struct shd_revision_new {
	int64_t vm_id;
	const json_t *spec; /* the effective spec, stored as YAML, deflate-compressed */
	int64_t ticket_id;  /* 0 = none */
	int64_t event_id;
	int64_t execution_id;
	const char *plan_hash; /* NULL = none */
	const char *actor;
};
/* Append the VM's next revision (version = max + 1) in the caller's transaction. */
int shd_revision_add(PGconn *conn, const struct shd_revision_new *r, int *ret_version,
		     struct shp_error *err) SHP_MUSTCHECK;
/* The YAML of one revision (inflated) appended to out; SHP_E_NOTFOUND. */
int shd_revision_yaml(PGconn *conn, int64_t vm_id, int version, struct shp_buf *out,
		      struct shp_error *err) SHP_MUSTCHECK;

/* ---- notifications (notify.c) ------------------------------------------------------------ */

struct shd_notification {
	const char *type;   /* APPROVAL_PENDING, APPROVAL_COMPLETED, APPROVAL_REJECTED, ... */
	const char *title;  /* one line */
	const char *body;   /* may be "" */
	const json_t *data; /* may be NULL */
	int64_t ticket_id;  /* 0 = none */
	/*
	 * Coalescing (to_user only): with a key, a notification of the same type and key the user
	 * has not read, sent less than coalesce_s ago, is replaced by this one (its count grows)
	 * instead of a new one being added: a flapping VM tells its owner once per window.
	 */
	const char *coalesce_key; /* NULL = never coalesced; at most 128 bytes */
	int coalesce_s;
};

/*
 * Where notifications go (docs/internals/notifications.md). V1 has one sender, the inbox
 * (rows of notifications, written in the caller's transaction so they commit with what they
 * announce); other channels implement the same two calls, on the caller's connection and
 * inside its transaction (a channel that reaches out of the database queues a job there).
 */
struct shd_notify_sender {
	const char *name;
	/* to one user */
	int (*to_user)(PGconn *conn, int64_t user_id, const struct shd_notification *n,
		       struct shp_error *err);
	/* to every user who may approve in environment env (an index; -1: in any) */
	int (*to_approvers)(PGconn *conn, int env, const struct shd_notification *n,
			    struct shp_error *err);
};
extern const struct shd_notify_sender shd_notify_inbox;

/*
 * The sender every notification goes through: the one chosen at start-up with
 * shd_notify_use (notifications.sender), the inbox until then. Any thread.
 */
const struct shd_notify_sender *shd_notify_sender(void);
/*
 * Choose the sender by name ("inbox"): main, once, before any thread starts (afterwards it is
 * only read). SHP_E_INVAL naming the known senders.
 */
int shd_notify_use(const char *name, struct shp_error *err) SHP_MUSTCHECK;

/* ---- external approval systems (V1: the interface only) --------------------------------- */

/*
 * An external approval system (a ticketing or change-management tool) would implement this;
 * V1 ships none, and the built-in approval decides every ticket. The registry is the
 * external_approval_systems table. See docs/internals/governance.md.
 */
enum shd_external_status {
	SHD_EXTERNAL_PENDING,
	SHD_EXTERNAL_APPROVED,
	SHD_EXTERNAL_REJECTED,
	SHD_EXTERNAL_CANCELLED,
};
struct shd_external_approval_ops {
	const char *kind;
	/* submit ticket_id with its effective spec and plan hash; *ret_ref names it there */
	int (*submit)(void *impl, int64_t ticket_id, const json_t *ticket, char *ret_ref,
		      size_t ref_size, struct shp_error *err);
	int (*check_status)(void *impl, const char *ref, enum shd_external_status *ret,
			    char *reason, size_t reason_size, struct shp_error *err);
	int (*cancel)(void *impl, const char *ref, struct shp_error *err);
};
