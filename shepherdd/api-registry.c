/*
 * The namespace registry an admin keeps by hand: a global name and its environment, with no
 * cluster binding (a namespace is created on the chosen cluster just in time). Clusters, which
 * carry sealed credentials and a provider, live in api-clusters.c. Every user reads the
 * namespaces of the environments their platform roles allow (user_envs); the others do not
 * exist for them.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "shepherdd.h"
#include "util.h"

struct registry {
	const char *kind;         /* "namespace" */
	const char *audit_create; /* "NAMESPACE_CREATE" */
	const char *audit_delete;
	const struct shd_col *cols; /* the columns every statement below returns */
	int ncols;
	const char *sql_get;    /* $1 name, $2 the caller's user id -> the row if visible */
	const char *sql_delete; /* $1 name -> the deleted row */
	/* $1 after-name, $2 limit, $3 environment filter, $4 the caller's user id */
	const char *sql_page;
};

/* The key (name) is column 1. */
#define REG_COLS "n.id, n.name, n.environment, n.description, n.created_at, u.name"
#define WITH_CREATOR " n LEFT JOIN users u ON u.id = n.created_by"
#define KEY_COL 1

static const struct shd_col ns_cols[] = {
	{"id", COL_INT},           {"name", COL_TEXT},       {"environment", COL_TEXT},
	{"description", COL_TEXT}, {"created_at", COL_TIME}, {"created_by", COL_TEXT},
};

#define NS_SELECT "SELECT " REG_COLS

/* Visible to user $N: its environment is one the user's platform roles allow. */
#define VISIBLE_TO(n) " n.environment = ANY (user_envs($" n "::bigint, '" SHD_ROLES_ANY "'))"

/* Keyset page by name; '' sorts before every name, so the first page needs no special case. */
#define PAGE_WHERE                                                                                 \
	" WHERE n.name > coalesce($1::text, '') AND ($3::environment IS NULL OR"                   \
	" n.environment = $3::environment) AND" VISIBLE_TO("4") " ORDER BY n.name"                 \
								" LIMIT $2::int + 1"

static const struct registry namespaces = {
	.kind = "namespace",
	.audit_create = "NAMESPACE_CREATE",
	.audit_delete = "NAMESPACE_DELETE",
	.cols = ns_cols,
	.ncols = SHP_ARRAY_SIZE(ns_cols),
	.sql_get =
		NS_SELECT " FROM namespaces" WITH_CREATOR " WHERE n.name = $1 AND" VISIBLE_TO("2"),
	.sql_delete = "WITH n AS (DELETE FROM namespaces WHERE name = $1 RETURNING *) " NS_SELECT
		      " FROM n LEFT JOIN users u ON u.id = n.created_by",
	.sql_page = NS_SELECT " FROM namespaces" WITH_CREATOR PAGE_WHERE,
};

static int not_found(const struct registry *r, const char *name, struct shp_error *err)
{
	shp_error_set(err, SHP_E_NOTFOUND, "%s '%s' not found", r->kind, name);
	shp_error_detail(err, "name", "%s", name);
	return -SHP_E_NOTFOUND;
}

static int registry_get(const struct registry *r, struct shd_req *req, struct shd_resp *resp,
			struct shp_error *err)
{
	const char *name = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	if (!shp_name_is_valid(name))
		return not_found(r, name, err);
	(void)snprintf(uid, sizeof(uid), "%lld", (long long)req->ident.user_id);
	res = shd_db_exec(req->db, r->sql_get, 2, (const char *[]){name, uid}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return not_found(r, name, err);
	return shd_resp_row(resp, 200, res, r->cols, r->ncols, err);
}

static int registry_list(const struct registry *r, struct shd_req *req, struct shd_resp *resp,
			 struct shp_error *err)
{
	struct shp_buf after __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(256);
	const char *cursor = shd_req_query(req, "cursor");
	const char *env = shd_req_query(req, "environment");
	_cleanup_(PQclearp) PGresult *res = NULL;
	char limit_s[16], uid[24];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (cursor && shd_cursor_decode(cursor, &after, err) < 0)
		return -err->code;
	if (env && shd_validate_environment("environment", env, err) < 0)
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	(void)snprintf(uid, sizeof(uid), "%lld", (long long)req->ident.user_id);
	res = shd_db_exec(req->db, r->sql_page, 4,
			  (const char *[]){cursor ? after.buf : NULL, limit_s, env, uid}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, r->cols, r->ncols, limit, KEY_COL, err);
}

static int registry_delete(const struct registry *r, struct shd_req *req, struct shd_resp *resp,
			   struct shp_error *err)
{
	const char *name = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *obj = NULL;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", name);
	if (!shp_name_is_valid(name))
		return not_found(r, name, err);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, r->sql_delete, 1, (const char *[]){name}, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return not_found(r, name, err);
	}
	obj = shd_row_to_json(res, 0, r->cols, r->ncols);
	if (shd_audit_write(req->db, req, r->audit_delete, r->kind, name, "success", obj, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	return shd_resp_row(resp, 200, res, r->cols, r->ncols, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* Insert (sql with RETURNING the object) and audit in one transaction; 409 on a duplicate. */
static int registry_insert(const struct registry *r, struct shd_req *req, struct shd_resp *resp,
			   const char *name, const char *sql, int nparams,
			   const char *const *params, const json_t *audit_details,
			   struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, sql, nparams, params, err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT) {
			shp_error_set(err, SHP_E_CONFLICT, "%s '%s' already exists", r->kind, name);
			shp_error_detail(err, "name", "%s", name);
		}
		goto fail;
	}
	if (shd_audit_write(req->db, req, r->audit_create, r->kind, name, "success", audit_details,
			    err) < 0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	return shd_resp_row(resp, 201, res, r->cols, r->ncols, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

int shd_api_namespaces_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, NULL, err);
	struct shd_namespace_spec spec;
	char uid[24];

	if (!body || shd_validate_namespace(body, &spec, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", spec.name);
	(void)snprintf(uid, sizeof(uid), "%lld", (long long)req->ident.user_id);
	return registry_insert(
		&namespaces, req, resp, spec.name,
		"WITH n AS (INSERT INTO namespaces (name, environment, description, created_by)"
		" VALUES ($1, $2::environment, $3, $4) RETURNING *) " NS_SELECT
		" FROM n LEFT JOIN users u ON u.id = n.created_by",
		4, (const char *[]){spec.name, spec.environment, spec.description, uid}, body, err);
}

int shd_api_namespaces_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return registry_list(&namespaces, req, resp, err);
}

int shd_api_namespaces_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return registry_get(&namespaces, req, resp, err);
}

int shd_api_namespaces_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return registry_delete(&namespaces, req, resp, err);
}
