/*
 * Reconcile runs and their callers: one run over one cluster (list, diff, mark or report,
 * record in reconcile_runs, audit; never a delete, never a write to the cluster), the HTTP
 * handlers (platform admins only: run now, list runs, scan for adoption candidates, list,
 * adopt and ignore them) and the job kinds reconcile.run and adoption.scan that the leader
 * enqueues periodically.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "provider.h"
#include "queue.h"
#include "reconcile.h"
#include "shepherdd.h"
#include "util.h"

#define CLUSTERS_MAX 256              /* clusters one request or job goes through */
#define API_DEADLINE_MS 30000         /* a synchronous run over HTTP, all clusters together */
#define JOB_CLUSTER_DEADLINE_MS 60000 /* one cluster in a job */

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
			  " FROM vms WHERE cluster_id = $1 AND deleted_at IS NULL",
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

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* The registry's provider for cluster id (a new reference), or NULL with perr set. */
static struct shd_provider *provider_of(struct shd_daemon *d, int64_t id, struct shp_error *perr)
{
	if (!d || !d->providers) {
		shp_error_set(perr, SHP_E_UNAVAIL, "no cluster providers in this daemon");
		return NULL;
	}
	return shd_providers_get(d->providers, id, perr);
}

/* The clusters to go through: the one named (SHP_E_NOTFOUND) or all of them, by name. */
static PGresult *select_clusters(PGconn *conn, const char *name, struct shp_error *err)
{
	char cap[16];
	PGresult *res;

	(void)snprintf(cap, sizeof(cap), "%d", CLUSTERS_MAX);
	res = shd_db_exec(conn,
			  "SELECT id, name FROM clusters WHERE $1::text IS NULL OR name = $1"
			  " ORDER BY name LIMIT $2",
			  2, (const char *[]){name, cap}, err);
	if (res && name && PQntuples(res) == 0) {
		PQclear(res);
		shp_error_set(err, SHP_E_NOTFOUND, "cluster '%.63s' not found", name);
		shp_error_detail(err, "field", "cluster");
		return NULL;
	}
	return res;
}

/* Reconcile every cluster of res; *ret_items gets the runs. */
static int reconcile_all(PGconn *conn, struct shd_daemon *d, const PGresult *res,
			 enum shd_reconcile_mode mode, const struct shd_reconcile_ctx *ctx,
			 json_t *items, struct shp_error *err)
{
	for (int i = 0; i < PQntuples(res); i++) {
		struct shp_error perr = SHP_ERROR_INIT;
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_of(d, id, &perr);
		json_t *run = NULL;

		if (shd_reconcile_cluster(conn, p ? &p->infra : NULL, &perr, id, mode, ctx, &run,
					  err) < 0)
			return -err->code;
		(void)json_array_append_new(items, run);
	}
	return 0;
}

/* An optional JSON object body: {} when there is none. */
static json_t *optional_body(struct shd_req *req, const char *const *allowed, struct shp_error *err)
{
	if (req->body.len == 0)
		return json_object();
	return shd_req_json_object(req, allowed, err);
}

int shd_api_reconcile_run(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"cluster", "mode", NULL};
	json_auto_t *body = optional_body(req, allowed, err);
	const char *cluster = NULL, *mode_s = "dry-run";
	struct shd_reconcile_ctx ctx = {.who = req};
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *items = json_array();
	bool ok = true;
	size_t i;
	json_t *run;
	int mode;

	if (!body || shp_json_get_string(body, "cluster", false, 63, &cluster, err) < 0 ||
	    shp_json_get_string(body, "mode", false, 16, &mode_s, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", cluster ? cluster : "*");
	if ((mode = shd_reconcile_mode_from_string(mode_s)) < 0) {
		shp_error_set(err, SHP_E_INVAL, "mode must be 'dry-run' or 'mark'");
		shp_error_detail(err, "field", "mode");
		return -SHP_E_INVAL;
	}
	if (!items)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	res = select_clusters(req->db, cluster, err);
	if (!res)
		return -err->code;
	ctx.deadline_ns = shp_now_monotonic_ns() + (uint64_t)API_DEADLINE_MS * 1000000u;
	if (reconcile_all(req->db, req->d, res, (enum shd_reconcile_mode)mode, &ctx, items, err) <
	    0)
		return -err->code;
	json_array_foreach(items, i, run)
	{
		if (shp_strcmp0(shp_json_str(run, "outcome"), "ok") != 0)
			ok = false;
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:O,s:b}", SHP_API_FIELD_ITEMS, items, "ok", ok));
}

/* A keyset cursor holding an id: *ret 0 when there is none. */
static int cursor_id(struct shd_req *req, int64_t *ret, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	const char *cursor = shd_req_query(req, "cursor");
	long long v;

	*ret = 0;
	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, &cur, err) < 0 ||
	    shp_parse_int(cur.buf, 1, INT64_MAX, &v, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return -SHP_E_INVAL;
	}
	*ret = v;
	return 0;
}

int shd_api_reconcile_runs(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *cluster = shd_req_query(req, "cluster");
	_cleanup_(PQclearp) PGresult *res = NULL;
	char before[24], lim[16];
	int64_t b = 0;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || cursor_id(req, &b, err) < 0)
		return -err->code;
	(void)snprintf(before, sizeof(before), "%lld", (long long)b);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(req->db,
			  "SELECT r.id, r.cluster_id, c.name, r.mode, r.started_at, r.finished_at,"
			  " r.outcome, r.db_count, r.cluster_count, jsonb_array_length(r.ghosts),"
			  " jsonb_array_length(r.orphans), r.ghosts, r.orphans, r.message, r.actor"
			  " FROM reconcile_runs r JOIN clusters c ON c.id = r.cluster_id"
			  " WHERE ($1::text IS NULL OR c.name = $1)"
			  " AND ($2::bigint = 0 OR r.id < $2::bigint) ORDER BY r.id DESC LIMIT $3",
			  3, (const char *[]){cluster, before, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, shd_reconcile_run_cols, shd_reconcile_run_ncols, limit,
				  0, err);
}

/* ---- adoption ------------------------------------------------------------------------------ */

int shd_api_adoptions_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *state = shd_req_query(req, "state");
	const char *cluster = shd_req_query(req, "cluster");
	_cleanup_(PQclearp) PGresult *res = NULL;
	char before[24], lim[16];
	int64_t b = 0;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || cursor_id(req, &b, err) < 0)
		return -err->code;
	if (state && strcmp(state, "pending") != 0 && strcmp(state, "adopted") != 0 &&
	    strcmp(state, "ignored") != 0) {
		shp_error_set(err, SHP_E_INVAL, "state must be pending, adopted or ignored");
		shp_error_detail(err, "field", "state");
		return -SHP_E_INVAL;
	}
	(void)snprintf(before, sizeof(before), "%lld", (long long)b);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(req->db,
			  SHD_ADOPTION_SELECT " WHERE ($1::text IS NULL OR a.state = $1)"
					      " AND ($2::text IS NULL OR c.name = $2)"
					      " AND ($3::bigint = 0 OR a.id < $3::bigint)"
					      " ORDER BY a.id DESC LIMIT $4",
			  4, (const char *[]){state, cluster, before, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, shd_adoption_cols, shd_adoption_ncols, limit, 0, err);
}

static json_t *scan_one(PGconn *conn, struct shd_daemon *d, int64_t id, const char *name,
			uint64_t deadline_ns)
{
	struct shp_error e = SHP_ERROR_INIT;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_of(d, id, &e);
	int seen = 0, created = 0;

	if (!p ||
	    shd_adoption_scan_cluster(conn, &p->infra, id, deadline_ns, &seen, &created, &e) < 0) {
		log_warn("adoption scan of cluster '%s' failed: %s", name, e.msg);
		return json_pack("{s:s,s:b,s:s}", "cluster", name, "ok", false, "error", e.msg);
	}
	log_info("adoption scan of cluster '%s': %d candidate(s), %d new", name, seen, created);
	return json_pack("{s:s,s:b,s:i,s:i}", "cluster", name, "ok", true, "seen", seen, "new",
			 created);
}

int shd_api_adoptions_scan(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"cluster", NULL};
	json_auto_t *body = optional_body(req, allowed, err);
	const char *cluster = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *items = json_array();
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)API_DEADLINE_MS * 1000000u;

	if (!body || shp_json_get_string(body, "cluster", false, 63, &cluster, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", cluster ? cluster : "*");
	res = select_clusters(req->db, cluster, err);
	if (!res)
		return -err->code;
	for (int i = 0; items && i < PQntuples(res); i++)
		(void)json_array_append_new(
			items, scan_one(req->db, req->d, strtoll(PQgetvalue(res, i, 0), NULL, 10),
					PQgetvalue(res, i, 1), deadline));
	if (shd_audit_write(req->db, req, "ADOPTION_SCAN", "cluster", req->audit_name, "success",
			    NULL, err) < 0)
		return -err->code;
	return shd_resp_json_take(resp, 200, json_pack("{s:O}", SHP_API_FIELD_ITEMS, items));
}

static int adoption_id(struct shd_req *req, int64_t *ret, struct shp_error *err)
{
	long long v;

	if (shp_parse_int(req->params[0], 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "adoption '%.40s' not found",
				     req->params[0]);
	*ret = v;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%lld", v);
	return 0;
}

int shd_api_adoptions_adopt(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"namespace", NULL};
	json_auto_t *body = optional_body(req, allowed, err);
	struct shd_reconcile_ctx ctx = {.who = req};
	struct shp_error perr = SHP_ERROR_INIT;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	const char *ns = NULL;
	json_t *out = NULL;
	int64_t id, cluster_id;

	if (!body || adoption_id(req, &id, err) < 0 ||
	    shp_json_get_string(body, "namespace", false, 63, &ns, err) < 0 ||
	    shd_adoption_cluster(req->db, id, &cluster_id, err) < 0)
		return -err->code;
	if (ns && shd_validate_name("namespace", ns, err) < 0)
		return -err->code;
	p = provider_of(req->d, cluster_id, &perr);
	ctx.deadline_ns = shp_now_monotonic_ns() + (uint64_t)API_DEADLINE_MS * 1000000u;
	if (shd_adoption_adopt(req->db, p ? &p->infra : NULL, id, ns, &ctx, &out, err) < 0)
		return -err->code;
	return shd_resp_json_take(resp, 200, out);
}

int shd_api_adoptions_ignore(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shd_reconcile_ctx ctx = {.who = req};
	json_t *out = NULL;
	int64_t id;

	if (adoption_id(req, &id, err) < 0 || shd_adoption_ignore(req->db, id, &ctx, &out, err) < 0)
		return -err->code;
	return shd_resp_json_take(resp, 200, out);
}

/* ---- the jobs -------------------------------------------------------------------------------- */

/* The audit rows of a job name the daemon itself; the request id names the job. */
static void job_who(const struct shd_job *job, struct shd_req *who)
{
	*who = (struct shd_req){0};
	(void)snprintf(who->ident.name, sizeof(who->ident.name), "shepherdd");
	(void)snprintf(who->request_id, sizeof(who->request_id), "job-%lld", (long long)job->id);
}

static enum shd_job_outcome reconcile_job(struct shd_job *job, void *ud)
{
	struct shd_daemon *d = ud;
	struct shp_error err = SHP_ERROR_INIT;
	const char *mode_s = shp_json_str(job->args, "mode");
	int mode = shd_reconcile_mode_from_string(mode_s ? mode_s : "dry-run");
	PGconn *conn = shd_job_conn(job, &err);
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *items = json_array();
	struct shd_req who;
	struct shd_reconcile_ctx ctx = {.who = &who};

	if (mode < 0)
		return shd_job_fail(job, "unknown reconcile mode '%.16s'", mode_s);
	if (!conn || !(res = select_clusters(conn, NULL, &err)) || !items)
		return shd_job_fail(job, "%s", err.msg);
	job_who(job, &who);
	ctx.deadline_ns = shp_now_monotonic_ns() + (uint64_t)JOB_CLUSTER_DEADLINE_MS * 1000000u;
	if (reconcile_all(conn, d, res, (enum shd_reconcile_mode)mode, &ctx, items, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	return SHD_JOB_DONE;
}

static enum shd_job_outcome adoption_job(struct shd_job *job, void *ud)
{
	struct shd_daemon *d = ud;
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	_cleanup_(PQclearp) PGresult *res = NULL;
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)JOB_CLUSTER_DEADLINE_MS * 1000000u;

	if (!conn || !(res = select_clusters(conn, NULL, &err)))
		return shd_job_fail(job, "%s", err.msg);
	for (int i = 0; i < PQntuples(res) && !shd_job_should_stop(job); i++)
		json_decref(scan_one(conn, d, strtoll(PQgetvalue(res, i, 0), NULL, 10),
				     PQgetvalue(res, i, 1), deadline));
	return SHD_JOB_DONE;
}

int shd_reconcile_register(struct shd_queue *q, struct shd_daemon *d, int reconcile_interval_s,
			   const char *mode, int adoption_interval_s, struct shp_error *err)
{
	struct shd_job_kind rk = {SHD_RECONCILE_JOB_KIND, reconcile_job, d, 5 * 60 * 1000};
	struct shd_job_kind ak = {SHD_ADOPTION_JOB_KIND, adoption_job, d, 5 * 60 * 1000};
	char rspec[32], aspec[32], args[64];

	if (shd_reconcile_mode_from_string(mode) < 0)
		return shp_error_set(err, SHP_E_INVAL,
				     "reconcile.mode must be 'dry-run' or 'mark', not '%.16s'",
				     mode);
	(void)snprintf(rspec, sizeof(rspec), "@every %ds", reconcile_interval_s);
	(void)snprintf(aspec, sizeof(aspec), "@every %ds", adoption_interval_s);
	(void)snprintf(args, sizeof(args), "{\"mode\":\"%s\"}", mode);
	if (shd_queue_register(q, &rk, err) < 0 || shd_queue_register(q, &ak, err) < 0 ||
	    shd_queue_add_periodic(q, "reconcile", rspec, SHD_RECONCILE_JOB_KIND, args, err) < 0 ||
	    shd_queue_add_periodic(q, "adoption-scan", aspec, SHD_ADOPTION_JOB_KIND, NULL, err) < 0)
		return -err->code;
	return 0;
}
