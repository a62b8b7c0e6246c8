/*
 * Who may act for a tenant, and the execution path's feature flag, over HTTP. Tenant members
 * are managed by platform admins and by the tenant's owners; flags by platform admins. Every
 * change is audited in the transaction that makes it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "exec.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col member_cols[] = {
	{"tenant", COL_TEXT},     {"user", COL_TEXT},       {"role", COL_TEXT},
	{"created_at", COL_TIME}, {"created_by", COL_TEXT}, {"mapped", COL_BOOL},
};

static const struct shd_col flag_cols[] = {
	{"scope", COL_TEXT},
	{"enabled", COL_BOOL},
	{"updated_at", COL_TIME},
	{"updated_by", COL_TEXT},
};

/* Admins, and owners of the tenant when manage; any member when reading. */
static int may_manage(struct shd_req *req, const char *tenant, bool manage, struct shp_error *err)
{
	char role[16];

	if (shd_validate_name("tenant", tenant, err) < 0)
		return -err->code;
	if (req->ident.is_admin)
		return 0;
	if (shd_tenant_role(req->db, req->ident.user_id, tenant, role, sizeof(role), err) < 0)
		return -err->code;
	if (manage ? strcmp(role, "owner") == 0 : role[0] != '\0')
		return 0;
	if (!manage)
		return shp_error_set(err, SHP_E_NOTFOUND, "tenant '%s' not found", tenant);
	return shp_error_set(err, SHP_E_PERM,
			     "only a platform-admin or an owner of tenant '%s' may change its "
			     "members",
			     tenant);
}

int shd_api_tenant_members_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *tenant = req->params[0];

	if (may_manage(req, tenant, false, err) < 0)
		return -err->code;
	/* members granted here and members through principal mappings (mapped: true) */
	res = shd_db_exec(req->db,
			  "SELECT m.tenant_id, u.name, m.role, t.created_at, t.created_by,"
			  "  t.user_id IS NULL"
			  " FROM effective_tenant_members m JOIN users u ON u.id = m.user_id"
			  " LEFT JOIN tenant_members t ON t.tenant_id = m.tenant_id"
			  "  AND t.user_id = m.user_id AND t.role = m.role"
			  " WHERE m.tenant_id = $1 ORDER BY u.name, 6 LIMIT 1001",
			  1, (const char *[]){tenant}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, member_cols, SHP_ARRAY_SIZE(member_cols), 1000, 1,
				  err);
}

int shd_api_tenant_members_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"role", NULL};
	static const char *const roles[] = {"owner", "member", "viewer", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *tenant = req->params[0], *user = req->params[1], *role = NULL;
	bool known = false;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.60s/%.60s", tenant, user);
	if (!body || shp_json_get_string(body, "role", true, 16, &role, err) < 0)
		return -err->code;
	for (const char *const *r = roles; *r; r++)
		known = known || strcmp(*r, role) == 0;
	if (!known) {
		shp_error_set(err, SHP_E_INVAL, "role must be owner, member or viewer");
		shp_error_detail(err, "field", "role");
		return -SHP_E_INVAL;
	}
	if (shd_validate_text("user", user, 128, err) < 0 || may_manage(req, tenant, true, err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	/* a user not seen yet is created, as on first contact: grants may come first */
	res = shd_db_exec(
		req->db,
		"WITH u AS (INSERT INTO users (name) VALUES ($2)"
		"  ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id, name)"
		" INSERT INTO tenant_members AS m (tenant_id, user_id, role, created_by)"
		" SELECT $1, u.id, $3::tenant_role, $4 FROM u"
		" ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role"
		" RETURNING m.tenant_id, (SELECT name FROM u), m.role, m.created_at,"
		"  m.created_by, false",
		4, (const char *[]){tenant, user, role, req->ident.name}, err);
	details = json_pack("{s:s,s:s}", "user", user, "role", role);
	if (!res ||
	    shd_audit_write(req->db, req, "TENANT_MEMBER_SET", "tenant", req->audit_name, "success",
			    details, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_row(resp, 200, res, member_cols, SHP_ARRAY_SIZE(member_cols), err);
}

int shd_api_tenant_members_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *tenant = req->params[0], *user = req->params[1];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.60s/%.60s", tenant, user);
	if (may_manage(req, tenant, true, err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "DELETE FROM tenant_members m USING users u"
			  " WHERE u.id = m.user_id AND m.tenant_id = $1 AND u.name = $2"
			  " RETURNING m.role",
			  2, (const char *[]){tenant, user}, err);
	if (res && PQntuples(res) == 0)
		shp_error_set(err, SHP_E_NOTFOUND, "'%s' is not a member of tenant '%s'", user,
			      tenant);
	if (!res || PQntuples(res) == 0 ||
	    shd_audit_write(req->db, req, "TENANT_MEMBER_REMOVE", "tenant", req->audit_name,
			    "success", NULL, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	resp->status = 204;
	return 0;
}

/* ---- the execution flag ---------------------------------------------------------------- */

static int check_scope(const char *scope, struct shp_error *err)
{
	bool ok = strcmp(scope, "global") == 0 ||
		  (strncmp(scope, "level:", 6) == 0 && scope[6] >= '0' && scope[6] <= '3' &&
		   scope[7] == '\0') ||
		  (strncmp(scope, "tenant:", 7) == 0 &&
		   shd_validate_name("tenant", scope + 7, NULL) == 0);

	if (ok)
		return 0;
	shp_error_set(err, SHP_E_INVAL,
		      "invalid flag scope '%.80s': use global, level:0..3 or tenant:NAME", scope);
	shp_error_detail(err, "field", "scope");
	return -SHP_E_INVAL;
}

int shd_api_exec_flags_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		req->db,
		"SELECT scope, enabled, updated_at, updated_by FROM execution_flags ORDER BY scope"
		" LIMIT 1001",
		0, NULL, err);
	json_auto_t *items = NULL;

	if (!res)
		return -err->code;
	items = json_array();
	for (int i = 0; items && i < PQntuples(res) && i < 1000; i++)
		json_array_append_new(
			items, shd_row_to_json(res, i, flag_cols, SHP_ARRAY_SIZE(flag_cols)));
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:O,s:n,s:b}", SHP_API_FIELD_ITEMS, items,
					    SHP_API_FIELD_NEXT_CURSOR, "default_enabled",
					    req->d->cfg->exec_enabled));
}

int shd_api_exec_flags_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"enabled", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *scope = req->params[0];
	bool enabled = false;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", scope);
	if (!body || shp_json_get_bool(body, "enabled", true, &enabled, err) < 0 ||
	    check_scope(scope, err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "INSERT INTO execution_flags (scope, enabled, updated_by)"
			  " VALUES ($1, $2::boolean, $3) ON CONFLICT (scope) DO UPDATE"
			  " SET enabled = EXCLUDED.enabled, updated_by = EXCLUDED.updated_by,"
			  "  updated_at = now()"
			  " RETURNING scope, enabled, updated_at, updated_by",
			  3, (const char *[]){scope, enabled ? "true" : "false", req->ident.name},
			  err);
	details = json_pack("{s:b}", "enabled", enabled);
	if (!res ||
	    shd_audit_write(req->db, req, "EXEC_FLAG_SET", "execution_flag", scope, "success",
			    details, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_row(resp, 200, res, flag_cols, SHP_ARRAY_SIZE(flag_cols), err);
}

int shd_api_exec_flags_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *scope = req->params[0];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", scope);
	if (check_scope(scope, err) < 0 || shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, "DELETE FROM execution_flags WHERE scope = $1 RETURNING 1", 1,
			  (const char *[]){scope}, err);
	if (res && PQntuples(res) == 0)
		shp_error_set(err, SHP_E_NOTFOUND, "flag '%s' is not set", scope);
	if (!res || PQntuples(res) == 0 ||
	    shd_audit_write(req->db, req, "EXEC_FLAG_UNSET", "execution_flag", scope, "success",
			    NULL, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	resp->status = 204;
	return 0;
}
