/*
 * Platform roles and principal mappings over HTTP, for platform admins: role bindings (a user
 * holds a role in some environments) and mappings (an authenticated principal acts as a user,
 * with a team and a role). Every change is audited in the transaction that makes it, and
 * cached identities are dropped afterwards so the change counts at once.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "rbac.h"
#include "shepherdd.h"
#include "util.h"

/* Cursors of the lists: the last item's key (bindings: user, 0x1f, role; mappings: id). */
#define KEY_SEP "\x1f"

static const struct shd_col binding_cols[] = {
	{"user", COL_TEXT},       {"role", COL_TEXT},       {"allowed_environments", COL_JSON},
	{"created_at", COL_TIME}, {"created_by", COL_TEXT},
};

/* the sixth column is the page key */
#define BINDING_SELECT                                                                             \
	"SELECT u.name, b.role, to_jsonb(b.allowed_environments), b.created_at, b.created_by,"     \
	" u.name || E'" KEY_SEP "' || b.role::text"

static const struct shd_col mapping_cols[] = {
	{"id", COL_INT},          {"principal_kind", COL_TEXT},
	{"principal", COL_TEXT},  {"user_name", COL_TEXT},
	{"team", COL_TEXT},       {"team_role", COL_TEXT},
	{"role", COL_TEXT},       {"allowed_environments", COL_JSON},
	{"enabled", COL_BOOL},    {"created_at", COL_TIME},
	{"created_by", COL_TEXT}, {"updated_at", COL_TIME},
};

#define MAPPING_COLS                                                                               \
	"id, principal_kind, principal, user_name, team, team_role, role,"                         \
	" to_jsonb(allowed_environments), enabled, created_at, created_by, updated_at"

/* Run a statement, audit, commit; roll back on any failure. */
static int audit_commit(struct shd_req *req, const PGresult *res, const char *action,
			const char *type, const json_t *details, struct shp_error *err)
{
	if (!res ||
	    shd_audit_write(req->db, req, action, type, req->audit_name, "success", details, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	shd_auth_invalidate(req->d);
	return 0;
}

/* ---- role bindings --------------------------------------------------------------------- */

/* ?limit= and ?cursor= (decoded into after, "" when absent). */
static int page_args(struct shd_req *req, int *ret_limit, char *limit_s, size_t size,
		     struct shp_buf *after, struct shp_error *err)
{
	const char *cursor = shd_req_query(req, "cursor");

	if (shd_req_limit(req, ret_limit, err) < 0 ||
	    (cursor && shd_cursor_decode(cursor, after, err) < 0))
		return -err->code;
	(void)snprintf(limit_s, size, "%d", *ret_limit);
	return 0;
}

int shd_api_rolebindings_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf after __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(512);
	const char *user = shd_req_query(req, "user");
	_cleanup_(PQclearp) PGresult *res = NULL;
	char limit_s[16];
	int limit;

	if (page_args(req, &limit, limit_s, sizeof(limit_s), &after, err) < 0)
		return -err->code;
	if (user && shd_rbac_check_user_name("user", user, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  BINDING_SELECT " FROM role_bindings b JOIN users u ON u.id = b.user_id"
					 " WHERE ($1::text IS NULL OR u.name = $1)"
					 "  AND (u.name, b.role::text) > (split_part($2, E'" KEY_SEP
					 "', 1),"
					 "   split_part($2, E'" KEY_SEP "', 2))"
					 " ORDER BY u.name, b.role::text LIMIT $3::int + 1",
			  3, (const char *[]){user, after.buf, limit_s}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, binding_cols, SHP_ARRAY_SIZE(binding_cols), limit, 5,
				  err);
}

/* The path's user and role, checked; the audit name is "user/role". */
static int binding_params(struct shd_req *req, struct shp_error *err)
{
	const char *user = req->params[0], *role = req->params[1];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.60s/%.20s", user, role);
	if (shd_rbac_check_user_name("user", user, err) < 0)
		return -err->code;
	if (!shd_rbac_role_is_valid(role)) {
		shp_error_set(err, SHP_E_INVAL,
			      "role must be platform-admin, approver, operator or viewer");
		shp_error_detail(err, "field", "role");
		return -SHP_E_INVAL;
	}
	return 0;
}

int shd_api_rolebindings_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"allowed_environments", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *user = req->params[0], *role = req->params[1];
	char envs[16];

	if (binding_params(req, err) < 0 || !body)
		return -err->code;
	if (shd_rbac_envs_literal(json_object_get(body, "allowed_environments"),
				  "allowed_environments", envs, sizeof(envs), err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	/* a user not seen yet is created, as on first contact: grants may come first */
	res = shd_db_exec(
		req->db,
		"WITH u AS (INSERT INTO users (name) VALUES ($1)"
		"  ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id, name)"
		" INSERT INTO role_bindings AS b (user_id, role, allowed_environments, created_by)"
		" SELECT u.id, $2::platform_role, $3::environment[], $4 FROM u"
		" ON CONFLICT (user_id, role) DO UPDATE"
		"  SET allowed_environments = EXCLUDED.allowed_environments"
		" RETURNING (SELECT name FROM u), b.role, to_jsonb(b.allowed_environments),"
		"  b.created_at, b.created_by",
		4, (const char *[]){user, role, envs, req->ident.name}, err);
	details = json_pack("{s:s,s:s,s:O}", "user", user, "role", role, "allowed_environments",
			    json_object_get(body, "allowed_environments"));
	if (audit_commit(req, res, "ROLE_BINDING_SET", "role_binding", details, err) < 0)
		return -err->code;
	return shd_resp_row(resp, 200, res, binding_cols, SHP_ARRAY_SIZE(binding_cols), err);
}

int shd_api_rolebindings_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *details = NULL;
	const char *user = req->params[0], *role = req->params[1];

	if (binding_params(req, err) < 0 || shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "DELETE FROM role_bindings b USING users u"
			  " WHERE u.id = b.user_id AND u.name = $1 AND b.role = $2::platform_role"
			  " RETURNING to_jsonb(b.allowed_environments)::text",
			  2, (const char *[]){user, role}, err);
	if (res && PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return shp_error_set(err, SHP_E_NOTFOUND, "'%s' holds no %s binding", user, role);
	}
	if (res)
		details = json_pack("{s:s,s:s,s:o*}", "user", user, "role", role,
				    "allowed_environments",
				    json_loads(shd_db_value(res, 0, 0), 0, NULL));
	if (audit_commit(req, res, "ROLE_BINDING_DELETE", "role_binding", details, err) < 0)
		return -err->code;
	resp->status = 204;
	return 0;
}

/* ---- principal mappings ------------------------------------------------------------------ */

/* A mapping body, checked: the parameters of the insert or update, in column order. */
struct mapping_in {
	const char *kind, *principal, *user_name, *team, *team_role, *role;
	char envs[16];
	bool enabled;
};

static int check_team(struct mapping_in *m, struct shp_error *err)
{
	if (!m->team != !m->team_role) {
		shp_error_set(err, SHP_E_INVAL,
			      "team and team_role go together: give both or "
			      "neither");
		shp_error_detail(err, "field", m->team ? "team_role" : "team");
		return -SHP_E_INVAL;
	}
	if (m->team && shd_validate_name("team", m->team, err) < 0)
		return -err->code;
	if (m->team_role && !shd_rbac_team_role_is_valid(m->team_role)) {
		shp_error_set(err, SHP_E_INVAL, "team_role must be owner, member or viewer");
		shp_error_detail(err, "field", "team_role");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* The role and its environments: both or neither. */
static int check_role(struct mapping_in *m, const json_t *envs, struct shp_error *err)
{
	bool no_envs =
		!envs || json_is_null(envs) || (json_is_array(envs) && json_array_size(envs) == 0);

	(void)snprintf(m->envs, sizeof(m->envs), "{}");
	if (!m->role) {
		if (no_envs)
			return 0;
		shp_error_set(err, SHP_E_INVAL, "allowed_environments needs a role");
		shp_error_detail(err, "field", "allowed_environments");
		return -SHP_E_INVAL;
	}
	if (!shd_rbac_role_is_valid(m->role)) {
		shp_error_set(err, SHP_E_INVAL,
			      "role must be platform-admin, approver, operator or viewer");
		shp_error_detail(err, "field", "role");
		return -SHP_E_INVAL;
	}
	return shd_rbac_envs_literal(envs, "allowed_environments", m->envs, sizeof(m->envs), err);
}

static int parse_mapping(struct shd_req *req, json_t **ret_body, struct mapping_in *m,
			 struct shp_error *err)
{
	static const char *const allowed[] = {
		"principal_kind",       "principal", "user_name", "team", "team_role", "role",
		"allowed_environments", "enabled",   NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);

	memset(m, 0, sizeof(*m));
	m->enabled = true;
	if (!body || shp_json_get_string(body, "principal_kind", true, 8, &m->kind, err) < 0 ||
	    shp_json_get_string(body, "principal", true, 0, &m->principal, err) < 0 ||
	    shp_json_get_string(body, "user_name", true, 0, &m->user_name, err) < 0 ||
	    shp_json_get_string(body, "team", false, 0, &m->team, err) < 0 ||
	    shp_json_get_string(body, "team_role", false, 16, &m->team_role, err) < 0 ||
	    shp_json_get_string(body, "role", false, 32, &m->role, err) < 0 ||
	    shp_json_get_bool(body, "enabled", false, &m->enabled, err) < 0)
		return -err->code;
	if (shd_rbac_check_principal(m->kind, m->principal, err) < 0 ||
	    shd_rbac_check_user_name("user_name", m->user_name, err) < 0 ||
	    check_team(m, err) < 0 ||
	    check_role(m, json_object_get(body, "allowed_environments"), err) < 0)
		return -err->code;
	if (!m->team && !m->role) {
		shp_error_set(err, SHP_E_INVAL,
			      "a mapping grants something: give a team (with team_role), a role "
			      "(with allowed_environments), or both");
		shp_error_detail(err, "field", "role");
		return -SHP_E_INVAL;
	}
	*ret_body = TAKE_PTR(body);
	return 0;
}

/* The mapping as the audit row's details. */
static json_t *mapping_details(const PGresult *res)
{
	return res && PQntuples(res) == 1
		       ? shd_row_to_json(res, 0, mapping_cols, SHP_ARRAY_SIZE(mapping_cols))
		       : NULL;
}

/* 23505 on (principal_kind, principal): say which, without the server's text. */
static int principal_taken(const struct mapping_in *m, struct shp_error *err)
{
	if (err->code != SHP_E_CONFLICT)
		return -err->code;
	shp_error_set(err, SHP_E_CONFLICT, "%s principal '%.200s' is mapped already", m->kind,
		      m->principal);
	shp_error_detail(err, "field", "principal");
	return -SHP_E_CONFLICT;
}

int shd_api_rbac_mappings_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf after __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char limit_s[16], after_s[24] = "0";
	long long last = 0;
	int limit;

	if (page_args(req, &limit, limit_s, sizeof(limit_s), &after, err) < 0)
		return -err->code;
	if (after.len > 0) {
		if (shp_parse_int(after.buf, 0, INT64_MAX, &last, NULL) < 0) {
			shp_error_set(err, SHP_E_INVAL, "invalid cursor");
			shp_error_detail(err, "field", "cursor");
			return -SHP_E_INVAL;
		}
		(void)snprintf(after_s, sizeof(after_s), "%lld", last);
	}
	res = shd_db_exec(req->db,
			  "SELECT " MAPPING_COLS " FROM rbac_mappings WHERE id > $1::bigint"
			  " ORDER BY id LIMIT $2::int + 1",
			  2, (const char *[]){after_s, limit_s}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, mapping_cols, SHP_ARRAY_SIZE(mapping_cols), limit, 0,
				  err);
}

static int mapping_id(struct shd_req *req, char *out, size_t size, struct shp_error *err)
{
	long long v;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.40s", req->params[0]);
	if (shp_parse_int(req->params[0], 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "mapping '%.40s' not found",
				     req->params[0]);
	(void)snprintf(out, size, "%lld", v);
	return 0;
}

int shd_api_rbac_mappings_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24];

	if (mapping_id(req, id, sizeof(id), err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, "SELECT " MAPPING_COLS " FROM rbac_mappings WHERE id = $1", 1,
			  (const char *[]){id}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "mapping %s not found", id);
	return shd_resp_row(resp, 200, res, mapping_cols, SHP_ARRAY_SIZE(mapping_cols), err);
}

int shd_api_rbac_mappings_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = NULL;
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	struct mapping_in m;

	if (parse_mapping(req, &body, &m, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s:%.100s", m.kind, m.principal);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "INSERT INTO rbac_mappings (principal_kind, principal, user_name, team,"
			  " team_role, role, allowed_environments, enabled, created_by)"
			  " VALUES ($1, $2, $3, $4, $5::tenant_role, $6::platform_role,"
			  " $7::environment[], $8::boolean, $9)"
			  " ON CONFLICT (principal_kind, principal) DO NOTHING"
			  " RETURNING " MAPPING_COLS,
			  9,
			  (const char *[]){m.kind, m.principal, m.user_name, m.team, m.team_role,
					   m.role, m.envs, m.enabled ? "true" : "false",
					   req->ident.name},
			  err);
	if (res && PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		err->code = SHP_E_CONFLICT;
		return principal_taken(&m, err);
	}
	if (res)
		(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s",
			       shd_db_value(res, 0, 0));
	details = mapping_details(res);
	if (audit_commit(req, res, "RBAC_MAPPING_CREATE", "rbac_mapping", details, err) < 0)
		return -err->code;
	return shd_resp_row(resp, 201, res, mapping_cols, SHP_ARRAY_SIZE(mapping_cols), err);
}

int shd_api_rbac_mappings_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = NULL;
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	struct mapping_in m;
	char id[24];

	if (mapping_id(req, id, sizeof(id), err) < 0 || parse_mapping(req, &body, &m, err) < 0 ||
	    shd_db_begin(req->db, err) < 0)
		return -err->code;
	/* a full replacement: every column from the body, the optional ones reset when absent */
	res = shd_db_exec(req->db,
			  "UPDATE rbac_mappings SET principal_kind = $2, principal = $3,"
			  " user_name = $4, team = $5, team_role = $6::tenant_role,"
			  " role = $7::platform_role, allowed_environments = $8::environment[],"
			  " enabled = $9::boolean, updated_at = now()"
			  " WHERE id = $1 RETURNING " MAPPING_COLS,
			  9,
			  (const char *[]){id, m.kind, m.principal, m.user_name, m.team,
					   m.team_role, m.role, m.envs,
					   m.enabled ? "true" : "false"},
			  err);
	if (!res) {
		shd_db_rollback(req->db);
		return principal_taken(&m, err);
	}
	if (PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return shp_error_set(err, SHP_E_NOTFOUND, "mapping %s not found", id);
	}
	details = mapping_details(res);
	if (audit_commit(req, res, "RBAC_MAPPING_UPDATE", "rbac_mapping", details, err) < 0)
		return -err->code;
	return shd_resp_row(resp, 200, res, mapping_cols, SHP_ARRAY_SIZE(mapping_cols), err);
}

int shd_api_rbac_mappings_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24];

	if (mapping_id(req, id, sizeof(id), err) < 0 || shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "DELETE FROM rbac_mappings WHERE id = $1 RETURNING " MAPPING_COLS, 1,
			  (const char *[]){id}, err);
	if (res && PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return shp_error_set(err, SHP_E_NOTFOUND, "mapping %s not found", id);
	}
	details = mapping_details(res);
	if (audit_commit(req, res, "RBAC_MAPPING_DELETE", "rbac_mapping", details, err) < 0)
		return -err->code;
	resp->status = 204;
	return 0;
}
