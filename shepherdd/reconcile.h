/*
 * The reconciler and the adoption workflow: compare what the database says shepherd manages
 * with what a cluster holds, and offer VMs labelled for adoption to an admin.
 *
 * Three layers:
 *  - the pure diff (any thread, no I/O): DB rows against the VMs listed with the managed-by
 *    selector give ghosts (rows without a VM) and orphans (VMs labelled ours without a row),
 *    and the circuit breaker's rule;
 *  - runs over one cluster on a caller's connection (api-reconcile.c, adoption.c): they list
 *    the cluster through the infrastructure capability, record the run or the adoption rows
 *    and audit them; any thread, one connection per thread;
 *  - the job kinds and periodic jobs (reconcile.run, adoption.scan) and the HTTP handlers
 *    (api-reconcile.c).
 * Nothing here ever deletes a row or touches a VM, except adopt, which labels the adopted VM.
 * See docs/internals/reconciler.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cleanup.h"
#include "shepherdd.h"
#include "vm.h"

struct shp_error;
struct shd_infra;
struct shd_daemon;
struct shd_queue;
struct shd_req;

#define SHD_RECONCILE_JOB_KIND "reconcile.run"
#define SHD_ADOPTION_JOB_KIND "adoption.scan"
#define SHD_MANAGED_SELECTOR "app.kubernetes.io/managed-by=shepherd"
#define SHD_ADOPT_SELECTOR "shepherd.io/adopt=true"

/*
 * The circuit breaker: a run halts when more than SHD_RECONCILE_HALT_PERCENT of the cluster's
 * rows look like ghosts and there are at least SHD_RECONCILE_HALT_MIN_ROWS rows (below that a
 * single ghost is already 25 % or more, and marking is reversible anyway).
 */
#define SHD_RECONCILE_HALT_PERCENT 50
#define SHD_RECONCILE_HALT_MIN_ROWS 4
/* A row younger than this is never a ghost: its VM may still be on its way to the cluster. */
#define SHD_RECONCILE_GRACE_S 60

enum shd_reconcile_mode { SHD_RECONCILE_DRY_RUN, SHD_RECONCILE_MARK, _SHD_RECONCILE_MODE_MAX };

const char *shd_reconcile_mode_to_string(enum shd_reconcile_mode m); /* "dry-run" */
int shd_reconcile_mode_from_string(const char *s);                   /* -1 if unknown */

/* One VM as the diff sees it: a vms row (id > 0) or a VM of the cluster (id 0). */
struct shd_rec_item {
	int64_t id;
	char namespace_[64];
	char name[SHD_VM_NAME_MAX + 1];
	char uid[64]; /* "" when unknown */
	bool recent;  /* a row younger than SHD_RECONCILE_GRACE_S: it matches, but is no ghost */
};

struct shd_rec_diff {
	struct shd_rec_item *ghosts; /* owned; sorted by namespace, then name */
	size_t n_ghosts;
	struct shd_rec_item *orphans; /* owned; sorted likewise */
	size_t n_orphans;
	int64_t *present; /* owned: ids of the rows whose VM is there */
	size_t n_present;
};

/*
 * The diff of db (n_db rows of one cluster) against cluster (its VMs listed with the managed-by
 * selector). Identity is (namespace, name); a row whose uid is set and differs from the VM's
 * is a ghost (its VM was deleted and another created under the name) and that VM an orphan.
 * A recent row without its VM is neither ghost nor present. Duplicates in either input count
 * once. SHP_E_NOMEM. ret is filled only on success.
 */
int shd_reconcile_diff(const struct shd_rec_item *db, size_t n_db, const struct shd_vm *cluster,
		       size_t n_cluster, struct shd_rec_diff *ret,
		       struct shp_error *err) SHP_MUSTCHECK;
void shd_rec_diff_release(struct shd_rec_diff *d);

/* The circuit breaker's rule: true when the run must halt (see above). */
bool shd_reconcile_should_halt(size_t n_rows, size_t n_ghosts);

/* Who runs it: the audit rows name this caller (an HTTP request, or a job's stand-in). */
struct shd_reconcile_ctx {
	const struct shd_req *who; /* borrowed; ident.name is the actor */
	uint64_t deadline_ns;      /* absolute monotonic; 0 = the provider's default */
};

/*
 * Reconcile cluster_id in mode on conn (no transaction open). infra NULL means the provider
 * could not be had; why is in provider_err. The run is recorded (reconcile_runs) and audited
 * (RECONCILE_RUN, plus RECONCILE_HALTED when the breaker trips) whatever its outcome: ok,
 * halted or failed (listing failed). *ret_run is the run as JSON (new reference). < 0 only
 * when the run could not be recorded (SHP_E_DB, SHP_E_NOTFOUND for an unknown cluster).
 */
int shd_reconcile_cluster(PGconn *conn, const struct shd_infra *infra,
			  const struct shp_error *provider_err, int64_t cluster_id,
			  enum shd_reconcile_mode mode, const struct shd_reconcile_ctx *ctx,
			  json_t **ret_run, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Scan cluster_id for VMs labelled shepherd.io/adopt=true that have no vms row, and upsert
 * them as pending adoptions (discovered_at kept, last_seen_at refreshed, a decided row stays
 * decided). Adopted VMs still missing their managed label get it again. *ret_seen is the
 * number of candidates found, *ret_new the rows created (either may be NULL).
 */
int shd_adoption_scan_cluster(PGconn *conn, const struct shd_infra *infra, int64_t cluster_id,
			      uint64_t deadline_ns, int *ret_seen, int *ret_new,
			      struct shp_error *err) SHP_MUSTCHECK;

/*
 * Adopt pending adoption id: in one transaction insert the vms row and mark the adoption
 * adopted (decided_by the caller, audited ADOPTION_ADOPTED); then label the VM as managed
 * (server-side apply of two labels). namespace, when not NULL, must be the VM's namespace.
 * A labelling failure leaves the adoption standing: *ret is then {"label": "pending", ...}.
 * infra may be NULL (no provider: the label stays pending). SHP_E_NOTFOUND, SHP_E_CONFLICT
 * (already decided: details carry the state; or a vms row exists), SHP_E_INVAL.
 */
int shd_adoption_adopt(PGconn *conn, const struct shd_infra *infra, int64_t id,
		       const char *namespace_, const struct shd_reconcile_ctx *ctx, json_t **ret,
		       struct shp_error *err) SHP_MUSTCHECK;
/* Ignore pending adoption id (audited ADOPTION_IGNORED). SHP_E_NOTFOUND, SHP_E_CONFLICT. */
int shd_adoption_ignore(PGconn *conn, int64_t id, const struct shd_reconcile_ctx *ctx, json_t **ret,
			struct shp_error *err) SHP_MUSTCHECK;
/* The adoption as JSON (new reference), or NULL with SHP_E_NOTFOUND. */
json_t *shd_adoption_get(PGconn *conn, int64_t id, struct shp_error *err);
/* The cluster id of the adoption (for the caller to find its provider). SHP_E_NOTFOUND. */
int shd_adoption_cluster(PGconn *conn, int64_t id, int64_t *ret_cluster_id,
			 struct shp_error *err) SHP_MUSTCHECK;

/*
 * The labels-only manifest adopt applies: apiVersion, kind and metadata {name, namespace,
 * labels {managed-by: shepherd, vm-id: vm_id}}. A new reference.
 */
json_t *shd_adoption_label_manifest(const char *namespace_, const char *name, int64_t vm_id);

/*
 * Register reconcile.run and adoption.scan on q and their periodic jobs (every
 * reconcile_interval_s with mode, every adoption_interval_s). d is the job's context (its
 * providers registry; it must outlive q). SHP_E_INVAL for a bad mode or interval.
 */
int shd_reconcile_register(struct shd_queue *q, struct shd_daemon *d, int reconcile_interval_s,
			   const char *mode, int adoption_interval_s,
			   struct shp_error *err) SHP_MUSTCHECK;

/* The columns of a run as JSON (shd_row_to_json), in the order run queries select them. */
extern const struct shd_col shd_reconcile_run_cols[];
extern const int shd_reconcile_run_ncols;

/* The columns of an adoption as JSON, as SHD_ADOPTION_SELECT selects them (alias a). */
extern const struct shd_col shd_adoption_cols[];
extern const int shd_adoption_ncols;
#define SHD_ADOPTION_SELECT                                                                        \
	"SELECT a.id, a.cluster_id, c.name, a.namespace, a.name, a.uid, a.labels, a.summary,"      \
	" a.state, a.discovered_at, a.last_seen_at, a.decided_by, a.decided_at, a.vm_id"           \
	" FROM pending_adoptions a JOIN clusters c ON c.id = a.cluster_id"
