/*
 * The reconciler and adoption over HTTP (platform admins only) and as jobs: run a reconcile
 * now, list the runs, scan for adoption candidates, list, adopt and ignore them; and the job
 * kinds reconcile.run and adoption.scan that the leader enqueues periodically.
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
