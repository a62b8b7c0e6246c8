/*
 * The endpoints about the daemon itself: liveness, readiness, metrics, version, status, and
 * whoami.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "exec.h"
#include "migrate.h"
#include "shepherdd.h"
#include "util.h"
#include "watcher.h"

static const char live_body[] = "{\"status\":\"ok\"}";

int shd_api_health_live(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	if (shd_resp_raw(resp, 200, live_body, sizeof(live_body) - 1, NULL) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

/* Highest applied migration, or -1 with err. */
static int applied_version(PGconn *db, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(db, "SELECT coalesce(max(version), 0) FROM shepherd_schema_migrations",
			    0, NULL, err);

	if (!res)
		return -1;
	return (int)strtol(shd_db_value(res, 0, 0), NULL, 10);
}

int shd_api_health_ready(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_error dberr = SHP_ERROR_INIT;
	PGconn *db;
	int current = -1;
	const char *reason = NULL;

	if (atomic_load(&req->d->shutting_down))
		reason = "shutting down";
	else if (!(db = shd_dbpool_get(req->d->pool, &dberr)))
		reason = "database unreachable";
	else {
		current = applied_version(db, &dberr);
		shd_dbpool_put(req->d->pool, db);
		if (current < 0)
			reason = "database unreachable";
		else if (current != req->d->schema_latest)
			reason = "migrations pending";
	}
	(void)shd_resp_json_take(resp, reason ? 503 : 200,
				 json_pack("{s:s,s:s*,s:{s:i,s:i}}", "status",
					   reason ? "not ready" : "ready", "reason", reason,
					   "migrations", "current", current, "latest",
					   req->d->schema_latest));
	if (reason)
		resp->retry_after = 1;
	return 0;
}

int shd_api_metrics(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf b = SHP_BUF_INIT(16u << 20);
	struct shp_error dberr = SHP_ERROR_INIT;
	PGconn *conn;
	size_t len;
	char *text;
	int r;

	/* the database gauges are left out while the database is unreachable */
	conn = shd_dbpool_get(req->d->pool, &dberr);
	r = shd_metrics_render(req->d, &b);
	if (r == 0 && req->d->exec)
		r = shd_exec_metrics_render(req->d->exec, conn, &b);
	if (r == 0)
		r = shd_watcher_metrics_render(req->d->watcher, &b);
	if (conn)
		shd_dbpool_put(req->d->pool, conn);
	if (r < 0) {
		shp_buf_release(&b);
		return shp_error_set(err, SHP_E_NOMEM, "rendering metrics failed");
	}
	text = shp_buf_detach(&b, &len);
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	resp->raw = text;
	resp->raw_len = len;
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return 0;
}

int shd_api_version(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:s,s:i,s:s,s:s}", "version", PACKAGE_VERSION,
					    "api_version", SHP_API_VERSION, "commit",
					    SHP_GIT_COMMIT, "built", __DATE__ " " __TIME__));
}

int shd_api_status(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shd_daemon *d = req->d;
	struct shd_dbpool_stats st;
	char started[40];
	int current = applied_version(req->db, err);

	if (current < 0)
		return -err->code;
	shd_dbpool_get_stats(d->pool, &st);
	shp_format_rfc3339(d->started_at_us, started, sizeof(started));
	return shd_resp_json_take(
		resp, 200,
		json_pack("{s:{s:s,s:i,s:s,s:I},s:{s:b,s:b,s:s,s:{s:i,s:i,s:i,s:i}},"
			  "s:{s:i,s:i,s:i}}",
			  "daemon", "version", PACKAGE_VERSION, "pid", (int)getpid(), "started_at",
			  started, "uptime_seconds",
			  (json_int_t)((shp_now_realtime_us() - d->started_at_us) / 1000000),
			  "database", "reachable", 1, "embedded", d->embedded_db, "server_version",
			  d->pg_server_version, "pool", "size", st.size, "open", st.open, "in_use",
			  st.in_use, "waiting", st.waiting, "migrations", "current", current,
			  "latest", d->schema_latest, "pending",
			  d->schema_latest > current ? d->schema_latest - current : 0));
}

/*
 * The caller's platform roles (bindings, mappings and users.is_admin merged per role) and
 * systems (direct and mapped membership, the strongest role per system).
 */
static const char sql_whoami[] =
	"SELECT u.created_at,"
	" (SELECT coalesce(jsonb_agg(jsonb_build_object('role', r.role,"
	"   'allowed_environments', r.envs) ORDER BY r.role), '[]')"
	"  FROM (SELECT b.role, coalesce(array_agg(DISTINCT e ORDER BY e)"
	"    FILTER (WHERE e IS NOT NULL), '{}') AS envs"
	"   FROM effective_role_bindings b"
	"   LEFT JOIN LATERAL unnest(b.allowed_environments) AS e ON true"
	"   WHERE b.user_id = u.id GROUP BY b.role) r),"
	" (SELECT coalesce(jsonb_agg(jsonb_build_object('system', m.tenant_id, 'role', m.role)"
	"   ORDER BY m.tenant_id), '[]')"
	"  FROM (SELECT tenant_id, min(role) AS role FROM effective_tenant_members"
	"   WHERE user_id = u.id GROUP BY tenant_id) m)"
	" FROM users u WHERE u.id = $1";

int shd_api_whoami(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const struct shd_col cols[] = {
		{"created_at", COL_TIME}, {"roles", COL_JSON}, {"systems", COL_JSON}};
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_t *row;
	char id[24];

	(void)snprintf(id, sizeof(id), "%lld", (long long)req->ident.user_id);
	res = shd_db_exec(req->db, sql_whoami, 1, (const char *[]){id}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_NOTFOUND, "user not found");
	row = shd_row_to_json(res, 0, cols, SHP_ARRAY_SIZE(cols));
	if (!row)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)json_object_update_new(
		row, json_pack("{s:I,s:s,s:b,s:s,s:s}", "id", (json_int_t)req->ident.user_id,
			       "name", req->ident.name, "is_admin", req->ident.is_admin,
			       "auth_method", shd_auth_method_to_string(req->ident.method),
			       "principal", req->ident.principal));
	return shd_resp_json_take(resp, 200, row);
}
