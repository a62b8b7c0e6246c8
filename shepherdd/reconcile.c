/*
 * The reconciler: the pure diff of a cluster's vms rows against its VMs labelled as managed
 * (ghosts and orphans), the circuit breaker's rule, and one run over one cluster (list, diff,
 * mark or report, record in reconcile_runs, audit). It never deletes a row and never writes
 * to a cluster.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "provider.h"
#include "reconcile.h"
#include "shepherdd.h"
#include "util.h"

static const char *const mode_names[] = {
	[SHD_RECONCILE_DRY_RUN] = "dry-run",
	[SHD_RECONCILE_MARK] = "mark",
};

const char *shd_reconcile_mode_to_string(enum shd_reconcile_mode m)
{
	return shp_enum_to_string(mode_names, SHP_ARRAY_SIZE(mode_names), (int)m);
}

int shd_reconcile_mode_from_string(const char *s)
{
	return shp_enum_from_string(mode_names, SHP_ARRAY_SIZE(mode_names), s);
}

/* ---- the pure diff ---------------------------------------------------------------------- */

static int cmp_item(const void *a, const void *b)
{
	const struct shd_rec_item *x = a, *y = b;
	int c = strcmp(x->namespace_, y->namespace_);

	return c ? c : strcmp(x->name, y->name);
}

static void item_from_vm(struct shd_rec_item *it, const struct shd_vm *vm)
{
	it->id = 0;
	(void)snprintf(it->namespace_, sizeof(it->namespace_), "%s", vm->namespace_);
	(void)snprintf(it->name, sizeof(it->name), "%s", vm->name);
	(void)snprintf(it->uid, sizeof(it->uid), "%s", vm->uid);
}

/* Sorted copy without duplicate keys (the first of equal keys is kept). */
static struct shd_rec_item *sorted_unique(struct shd_rec_item *items, size_t n, size_t *ret_n)
{
	size_t out = 0;

	qsort(items, n, sizeof(*items), cmp_item);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || cmp_item(&items[out - 1], &items[i]) != 0)
			items[out++] = items[i];
	*ret_n = out;
	return items;
}

static bool uid_differs(const struct shd_rec_item *row, const struct shd_rec_item *vm)
{
	return row->uid[0] && vm->uid[0] && strcmp(row->uid, vm->uid) != 0;
}

/* Merge the two sorted lists into d (whose arrays have room for every item). */
static void merge(const struct shd_rec_item *a, size_t na, const struct shd_rec_item *b, size_t nb,
		  struct shd_rec_diff *d)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : cmp_item(&a[i], &b[j]);

		if (c < 0) {
			if (!a[i].recent)
				d->ghosts[d->n_ghosts++] = a[i];
			i++;
		} else if (c > 0) {
			d->orphans[d->n_orphans++] = b[j++];
		} else if (uid_differs(&a[i], &b[j])) {
			if (!a[i].recent)
				d->ghosts[d->n_ghosts++] = a[i];
			i++;
			d->orphans[d->n_orphans++] = b[j++];
		} else {
			d->present[d->n_present++] = a[i++].id;
			j++;
		}
	}
}

int shd_reconcile_diff(const struct shd_rec_item *db, size_t n_db, const struct shd_vm *cluster,
		       size_t n_cluster, struct shd_rec_diff *ret, struct shp_error *err)
{
	_cleanup_free_ struct shd_rec_item *a = calloc(n_db + 1, sizeof(*a));
	_cleanup_free_ struct shd_rec_item *b = calloc(n_cluster + 1, sizeof(*b));
	struct shd_rec_diff d = {0};
	size_t na = 0, nb = 0;

	d.ghosts = calloc(n_db + 1, sizeof(*d.ghosts));
	d.orphans = calloc(n_cluster + 1, sizeof(*d.orphans));
	d.present = calloc(n_db + 1, sizeof(*d.present));
	if (!a || !b || !d.ghosts || !d.orphans || !d.present) {
		shd_rec_diff_release(&d);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (n_db)
		memcpy(a, db, n_db * sizeof(*a));
	for (size_t i = 0; i < n_cluster; i++)
		item_from_vm(&b[i], &cluster[i]);
	sorted_unique(a, n_db, &na);
	sorted_unique(b, n_cluster, &nb);
	merge(a, na, b, nb, &d);
	*ret = d;
	return 0;
}

void shd_rec_diff_release(struct shd_rec_diff *d)
{
	free(d->ghosts);
	free(d->orphans);
	free(d->present);
	*d = (struct shd_rec_diff){0};
}

bool shd_reconcile_should_halt(size_t n_rows, size_t n_ghosts)
{
	if (n_rows < SHD_RECONCILE_HALT_MIN_ROWS)
		return false;
	return n_ghosts * 100 > n_rows * SHD_RECONCILE_HALT_PERCENT;
}

/* ---- one run over one cluster ------------------------------------------------------------ */

const struct shd_col shd_reconcile_run_cols[] = {
	{"id", COL_INT},          {"cluster_id", COL_INT},   {"cluster", COL_TEXT},
	{"mode", COL_TEXT},       {"started_at", COL_TIME},  {"finished_at", COL_TIME},
	{"outcome", COL_TEXT},    {"db_count", COL_INT},     {"cluster_count", COL_INT},
	{"ghost_count", COL_INT}, {"orphan_count", COL_INT}, {"ghosts", COL_JSON},
	{"orphans", COL_JSON},    {"message", COL_TEXT},     {"actor", COL_TEXT},
};
const int shd_reconcile_run_ncols = (int)SHP_ARRAY_SIZE(shd_reconcile_run_cols);

/* Everything one run carries from the listing to the record. */
struct run {
	int64_t cluster_id;
	char cluster[64];
	enum shd_reconcile_mode mode;
	char started_at[40];
	const char *outcome;
	char message[1024];
	size_t db_count, cluster_count;
	struct shd_rec_diff diff;
	int marked, unmarked;
};

static int load_cluster_name(PGconn *conn, struct run *r, struct shp_error *err)
{
	char id[24];
	_cleanup_(PQclearp) PGresult *res = NULL;

	(void)snprintf(id, sizeof(id), "%lld", (long long)r->cluster_id);
	res = shd_db_exec(conn, "SELECT name FROM clusters WHERE id = $1", 1, (const char *[]){id},
			  err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "cluster %lld not found",
				     (long long)r->cluster_id);
	(void)snprintf(r->cluster, sizeof(r->cluster), "%s", PQgetvalue(res, 0, 0));
	return 0;
}

/* The cluster's rows, each flagged when it is too young to be a ghost. */
static int load_rows(PGconn *conn, int64_t cluster_id, struct shd_rec_item **ret, size_t *ret_n,
		     struct shp_error *err)
{
	char id[24], grace[16];
	_cleanup_(PQclearp) PGresult *res = NULL;
	struct shd_rec_item *items;
	int n;

	(void)snprintf(id, sizeof(id), "%lld", (long long)cluster_id);
	(void)snprintf(grace, sizeof(grace), "%d", SHD_RECONCILE_GRACE_S);
	res = shd_db_exec(conn,
			  "SELECT id, namespace, name, uid,"
			  " created_at > now() - make_interval(secs => $2::int)"
			  " FROM vms WHERE cluster_id = $1",
			  2, (const char *[]){id, grace}, err);
	if (!res)
		return shp_error_prefix(err, "reading the cluster's VM rows");
	n = PQntuples(res);
	items = calloc((size_t)n + 1, sizeof(*items));
	if (!items)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		items[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		(void)snprintf(items[i].namespace_, sizeof(items[i].namespace_), "%s",
			       PQgetvalue(res, i, 1));
		(void)snprintf(items[i].name, sizeof(items[i].name), "%s", PQgetvalue(res, i, 2));
		(void)snprintf(items[i].uid, sizeof(items[i].uid), "%s", PQgetvalue(res, i, 3));
		items[i].recent = strcmp(PQgetvalue(res, i, 4), "t") == 0;
	}
	*ret = items;
	*ret_n = (size_t)n;
	return 0;
}

static char *items_json(const struct shd_rec_item *items, size_t n, bool with_id)
{
	json_auto_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "namespace", items[i].namespace_, "name",
				      items[i].name, "uid", items[i].uid);
		if (o && with_id)
			(void)json_object_set_new(o, "id", json_integer(items[i].id));
		if (!o || json_array_append_new(arr, o) < 0)
			return NULL;
	}
	return arr ? json_dumps(arr, JSON_COMPACT) : NULL;
}

/* "{1,2,3}" for an ANY($n::bigint[]) parameter. */
static char *ids_literal(const int64_t *ids, size_t n)
{
	struct shp_buf b = SHP_BUF_INIT(64 * 1024 * 1024);
	int rc = shp_buf_add(&b, "{");

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = shp_buf_addf(&b, "%s%lld", i ? "," : "", (long long)ids[i]);
	if (rc == 0)
		rc = shp_buf_add(&b, "}");
	if (rc < 0) {
		shp_buf_release(&b);
		return NULL;
	}
	return shp_buf_detach(&b, NULL);
}

/* Mark the ghosts (keeping an earlier marked_at) and clear the mark of rows present again. */
static int apply_marks(PGconn *conn, struct run *r, struct shp_error *err)
{
	_cleanup_free_ int64_t *ids = calloc(r->diff.n_ghosts + 1, sizeof(*ids));
	_cleanup_free_ char *ghosts = NULL;
	_cleanup_free_ char *present = ids_literal(r->diff.present, r->diff.n_present);
	_cleanup_(PQclearp) PGresult *a = NULL;
	_cleanup_(PQclearp) PGresult *b = NULL;

	for (size_t i = 0; ids && i < r->diff.n_ghosts; i++)
		ids[i] = r->diff.ghosts[i].id;
	if (ids)
		ghosts = ids_literal(ids, r->diff.n_ghosts);
	if (!ghosts || !present)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	a = shd_db_exec(conn,
			"UPDATE vms SET reconcile_mark = 'ghost', marked_at = now(), updated_at = "
			"now() WHERE id = ANY($1::bigint[]) AND reconcile_mark IS NULL",
			1, (const char *[]){ghosts}, err);
	if (!a)
		return shp_error_prefix(err, "marking ghosts");
	b = shd_db_exec(conn,
			"UPDATE vms SET reconcile_mark = NULL, marked_at = NULL, updated_at = now()"
			" WHERE id = ANY($1::bigint[]) AND reconcile_mark IS NOT NULL",
			1, (const char *[]){present}, err);
	if (!b)
		return shp_error_prefix(err, "clearing marks");
	r->marked = (int)strtol(PQcmdTuples(a), NULL, 10);
	r->unmarked = (int)strtol(PQcmdTuples(b), NULL, 10);
	return 0;
}

static PGresult *insert_run(PGconn *conn, const struct run *r, const char *actor,
			    struct shp_error *err)
{
	_cleanup_free_ char *ghosts = items_json(r->diff.ghosts, r->diff.n_ghosts, true);
	_cleanup_free_ char *orphans = items_json(r->diff.orphans, r->diff.n_orphans, false);
	char id[24], dbc[24], clc[24];

	if (!ghosts || !orphans) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	(void)snprintf(id, sizeof(id), "%lld", (long long)r->cluster_id);
	(void)snprintf(dbc, sizeof(dbc), "%zu", r->db_count);
	(void)snprintf(clc, sizeof(clc), "%zu", r->cluster_count);
	return shd_db_exec(
		conn,
		"INSERT INTO reconcile_runs (cluster_id, mode, started_at, finished_at, outcome,"
		" db_count, cluster_count, ghosts, orphans, message, actor)"
		" VALUES ($1, $2, $3::timestamptz, now(), $4, $5, $6, $7::jsonb, $8::jsonb, $9, "
		"$10)"
		" RETURNING id, cluster_id, $11::text, mode, started_at, finished_at, outcome,"
		" db_count, cluster_count, jsonb_array_length(ghosts), jsonb_array_length(orphans),"
		" ghosts, orphans, message, actor",
		11,
		(const char *[]){id, shd_reconcile_mode_to_string(r->mode), r->started_at,
				 r->outcome, dbc, clc, ghosts, orphans, r->message, actor,
				 r->cluster},
		err);
}

static int audit_run(PGconn *conn, const struct run *r, const struct shd_reconcile_ctx *ctx,
		     int64_t run_id, struct shp_error *err)
{
	bool ok = strcmp(r->outcome, "ok") == 0;
	json_auto_t *details =
		json_pack("{s:I,s:s,s:s,s:I,s:I,s:I,s:I}", "run_id", (json_int_t)run_id, "mode",
			  shd_reconcile_mode_to_string(r->mode), "outcome", r->outcome, "ghosts",
			  (json_int_t)r->diff.n_ghosts, "orphans", (json_int_t)r->diff.n_orphans,
			  "marked", (json_int_t)r->marked, "unmarked", (json_int_t)r->unmarked);

	if (!details)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (shd_audit_write(conn, ctx->who, "RECONCILE_RUN", "cluster", r->cluster,
			    ok ? "success" : "failed", details, err) < 0)
		return -err->code;
	if (strcmp(r->outcome, "halted") == 0 &&
	    shd_audit_write(conn, ctx->who, "RECONCILE_HALTED", "cluster", r->cluster, "failed",
			    details, err) < 0)
		return -err->code;
	return 0;
}

/* Marks (when due), the run row and its audit rows: one transaction. */
static int record(PGconn *conn, struct run *r, const struct shd_reconcile_ctx *ctx,
		  json_t **ret_run, struct shp_error *err)
{
	const char *actor =
		ctx->who && ctx->who->ident.name[0] ? ctx->who->ident.name : "shepherdd";
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_t *run;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (r->mode == SHD_RECONCILE_MARK && strcmp(r->outcome, "ok") == 0 &&
	    apply_marks(conn, r, err) < 0)
		goto fail;
	if (r->mode == SHD_RECONCILE_MARK && strcmp(r->outcome, "ok") == 0) {
		size_t len = strlen(r->message);
		(void)snprintf(r->message + len, sizeof(r->message) - len,
			       "; %d marked, %d unmarked", r->marked, r->unmarked);
	}
	res = insert_run(conn, r, actor, err);
	if (!res)
		goto fail;
	run = shd_row_to_json(res, 0, shd_reconcile_run_cols, shd_reconcile_run_ncols);
	if (!run) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		goto fail;
	}
	if (audit_run(conn, r, ctx, strtoll(PQgetvalue(res, 0, 0), NULL, 10), err) < 0 ||
	    shd_db_commit(conn, err) < 0) {
		json_decref(run);
		goto fail;
	}
	*ret_run = run;
	return 0;
fail:
	shd_db_rollback(conn);
	return shp_error_prefix(err, "recording the reconcile run of '%s'", r->cluster);
}

/* List, diff and judge; fills r (outcome, message, diff). < 0 only for local failures. */
static int compare(PGconn *conn, const struct shd_infra *infra, const struct shp_error *perr,
		   const struct shd_reconcile_ctx *ctx, struct run *r, struct shp_error *err)
{
	struct shp_error lerr = SHP_ERROR_INIT;
	struct shd_vm_list list = {0};
	_cleanup_free_ struct shd_rec_item *rows = NULL;
	int rc;

	if (load_rows(conn, r->cluster_id, &rows, &r->db_count, err) < 0)
		return -err->code;
	if (!infra) {
		r->outcome = "failed";
		(void)snprintf(r->message, sizeof(r->message), "no provider for the cluster: %s",
			       perr && perr->msg[0] ? perr->msg : "unknown error");
		return 0;
	}
	rc = infra->ops->list_vms(infra->impl, NULL, SHD_MANAGED_SELECTOR, &list, ctx->deadline_ns,
				  &lerr);
	if (rc < 0) {
		r->outcome = "failed";
		(void)snprintf(r->message, sizeof(r->message), "listing the cluster failed: %s",
			       lerr.msg);
		return 0;
	}
	r->cluster_count = list.n;
	rc = shd_reconcile_diff(rows, r->db_count, list.items, list.n, &r->diff, err);
	shd_vm_list_release(&list);
	if (rc < 0)
		return rc;
	if (shd_reconcile_should_halt(r->db_count, r->diff.n_ghosts)) {
		r->outcome = "halted";
		(void)snprintf(r->message, sizeof(r->message),
			       "circuit breaker: %zu of %zu rows look like ghosts, over the %d%% "
			       "limit; nothing marked",
			       r->diff.n_ghosts, r->db_count, SHD_RECONCILE_HALT_PERCENT);
		return 0;
	}
	r->outcome = "ok";
	(void)snprintf(r->message, sizeof(r->message), "%zu ghost(s), %zu orphan(s)",
		       r->diff.n_ghosts, r->diff.n_orphans);
	return 0;
}

static void log_run(const struct run *r)
{
	if (strcmp(r->outcome, "halted") == 0)
		log_error("reconcile of cluster '%s' halted: %s", r->cluster, r->message);
	else if (strcmp(r->outcome, "failed") == 0)
		log_warn("reconcile of cluster '%s' failed: %s", r->cluster, r->message);
	else
		log_info("reconcile of cluster '%s' (%s): %s", r->cluster,
			 shd_reconcile_mode_to_string(r->mode), r->message);
}

int shd_reconcile_cluster(PGconn *conn, const struct shd_infra *infra,
			  const struct shp_error *provider_err, int64_t cluster_id,
			  enum shd_reconcile_mode mode, const struct shd_reconcile_ctx *ctx,
			  json_t **ret_run, struct shp_error *err)
{
	struct run r = {.cluster_id = cluster_id, .mode = mode};
	int rc;

	shp_format_rfc3339(shp_now_realtime_us(), r.started_at, sizeof(r.started_at));
	if (load_cluster_name(conn, &r, err) < 0)
		return -err->code;
	rc = compare(conn, infra, provider_err, ctx, &r, err);
	if (rc == 0) {
		log_run(&r);
		rc = record(conn, &r, ctx, ret_run, err);
	}
	shd_rec_diff_release(&r.diff);
	return rc;
}
