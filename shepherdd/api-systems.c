/*
 * Systems and services over HTTP: record-only requests (create, delete) that go through the
 * policy like every request, and the reads. Anyone may create a system and becomes its
 * owner; its owners delete it, typing its name; owners and members create and delete its
 * services. Members and platform admins see a system; to anyone else it does not exist.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "error.h"
#include "gov-submit.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

#define DESCRIPTION_MAX 1024
/* a platform admin in some environment, or users.is_admin */
#define SQL_ADMIN "cardinality(user_envs($1, '{platform-admin}')) > 0"

static const struct shd_col system_cols[] = {
	{"name", COL_TEXT},       {"description", COL_TEXT}, {"created_at", COL_TIME},
	{"created_by", COL_TEXT}, {"role", COL_TEXT},        {"services", COL_INT},
};

static const struct shd_col service_cols[] = {
	{"name", COL_TEXT},       {"system", COL_TEXT},     {"description", COL_TEXT},
	{"created_at", COL_TIME}, {"created_by", COL_TEXT},
};

/* The caller's role in an active system: "" (none), "owner", "member", "viewer". */
static int system_role(struct shd_req *req, const char *sys, char *role, size_t size,
		       bool *ret_exists, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db,
			  "SELECT user_system_role($1, s.name), " SQL_ADMIN
			  "  FROM systems s WHERE s.name = $2 AND s.deleted_at IS NULL",
			  2, (const char *[]){uid, sys}, err);
	if (!res)
		return -err->code;
	*ret_exists = PQntuples(res) == 1;
	(void)snprintf(role, size, "%s", *ret_exists ? shd_db_value(res, 0, 0) : "");
	if (*ret_exists && !role[0] && strcmp(shd_db_value(res, 0, 1), "t") == 0)
		(void)snprintf(role, size, "admin");
	return 0;
}

/*
 * May the caller act on system sys (owner_only: delete it)? A system they are not in does not
 * exist for them (404); a refusal is audited as RBAC_VIOLATION.
 */
static int may_act(struct shd_req *req, const char *rtype, const char *name, const char *sys,
		   bool owner_only, struct shp_error *err)
{
	char role[16];
	bool exists = false;

	if (system_role(req, sys, role, sizeof(role), &exists, err) < 0)
		return -err->code;
	if (!exists || (!role[0]))
		shp_error_set(err, SHP_E_NOTFOUND, "system '%s' not found", sys);
	else if (strcmp(role, "viewer") == 0 || (owner_only && strcmp(role, "member") == 0))
		shp_error_set(err, SHP_E_PERM, "only %s of system '%s' may do this",
			      owner_only ? "an owner" : "an owner or a member", sys);
	else
		return 0;
	if (exists)
		shd_gov_audit_violation(req, rtype, name, err);
	return -err->code;
}

/* confirm=true as a query parameter or a JSON member, as the CLI and scripts send it. */
static bool confirm_query(struct shd_req *req, const json_t *body)
{
	const char *q = shd_req_query(req, "confirm");
	const json_t *b = body ? json_object_get(body, "confirm") : NULL;

	return (q && strcmp(q, "true") == 0) || json_is_true(b);
}

/* An optional JSON body of a DELETE: only the allowed fields. */
static json_t *optional_body(struct shd_req *req, const char *const *allowed, int *ret,
			     struct shp_error *err)
{
	*ret = 0;
	if (req->body.len == 0)
		return NULL;
	json_t *j = shd_req_json_object(req, allowed, err);
	if (!j)
		*ret = -err->code;
	return j;
}

/* 409 NAME_TAKEN: the unique indexes cover only active rows, so a deleted name is free. */
static int name_taken(struct shp_error *err, const char *what, const char *name)
{
	shp_error_set(err, SHP_E_CONFLICT, "a %s named '%s' already exists", what, name);
	shp_error_api_code(err, "NAME_TAKEN");
	shp_error_detail(err, "field", "name");
	shp_error_detail(err, "kind", "%s", what);
	shp_error_detail(err, "name", "%s", name);
	return -SHP_E_CONFLICT;
}

/* A member of the payload's spec, "" when absent. */
static const char *spec_str(const json_t *spec, const char *key)
{
	const char *s = shp_json_str(spec, key);

	return s ? s : "";
}

/* What a record-only request is about, from its payload. */
struct record {
	const char *name, *system, *description;
	int64_t requester_id;
	const char *requester;
};

static int record_create_system(PGconn *conn, const struct record *r, struct shp_error *err)
{
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, r->requester_id);
	if (shd_db_command(
		    conn, "INSERT INTO systems (name, description, created_by) VALUES ($1, $2, $3)",
		    3, (const char *[]){r->name, r->description, r->requester}, err) < 0)
		return err->code == SHP_E_CONFLICT ? name_taken(err, "system", r->name)
						   : -(int)err->code;
	/* the requester owns what they created */
	return shd_db_command(conn,
			      "INSERT INTO tenant_members (tenant_id, user_id, role, created_by)"
			      " VALUES ($1, $2, 'owner', $3) ON CONFLICT (tenant_id, user_id)"
			      " DO UPDATE SET role = 'owner'",
			      3, (const char *[]){r->name, uid, r->requester}, err);
}

/* A system in use is not deleted: its services and VMs go first. */
static int system_in_use(PGconn *conn, const char *sys, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(
		conn,
		"SELECT (SELECT count(*) FROM services sv JOIN systems s"
		"          ON s.id = sv.system_id WHERE s.name = $1"
		"           AND s.deleted_at IS NULL AND sv.deleted_at IS NULL),"
		"       (SELECT count(*) FROM vms WHERE system = $1 AND deleted_at IS NULL)",
		1, (const char *[]){sys}, err);
	if (!res)
		return -err->code;
	if (strcmp(shd_db_value(res, 0, 0), "0") != 0 || strcmp(shd_db_value(res, 0, 1), "0") != 0)
		return shp_error_set(err, SHP_E_CONFLICT,
				     "system '%s' still has %s active service(s) and %s VM(s): "
				     "delete them first",
				     sys, shd_db_value(res, 0, 0), shd_db_value(res, 0, 1));
	return 0;
}

/*
 * Soft delete: the row stays for the history (requests and audit rows name it). The row lock
 * first, then the in-use check, so a service created meanwhile cannot slip in.
 */
static int record_delete_system(PGconn *conn, const struct record *r, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_command(
		    conn,
		    "SELECT id FROM systems WHERE name = $1 AND deleted_at IS NULL FOR UPDATE", 1,
		    (const char *[]){r->name}, err) < 0 ||
	    system_in_use(conn, r->name, err) < 0)
		return -err->code;
	res = shd_db_exec(conn,
			  "UPDATE systems SET deleted_at = now()"
			  " WHERE name = $1 AND deleted_at IS NULL RETURNING id",
			  1, (const char *[]){r->name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "system '%s' not found", r->name);
	/* a system created later under this name starts with no members */
	return shd_db_command(conn, "DELETE FROM tenant_members WHERE tenant_id = $1", 1,
			      (const char *[]){r->name}, err);
}

/* The system is looked up again in the transaction: it may have been deleted meanwhile. */
static int record_create_service(PGconn *conn, const struct record *r, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(
		conn,
		"INSERT INTO services (system_id, name, description, created_by)"
		" SELECT id, $2, $3, $4 FROM systems WHERE name = $1 AND deleted_at IS NULL"
		" RETURNING id",
		4, (const char *[]){r->system, r->name, r->description, r->requester}, err);
	if (!res)
		return err->code == SHP_E_CONFLICT ? name_taken(err, "service", r->name)
						   : -(int)err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "system '%s' not found", r->system);
	return 0;
}

static int service_in_use(PGconn *conn, const char *svc, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(conn,
			  "SELECT count(*) FROM vms WHERE service = $1 AND deleted_at IS NULL", 1,
			  (const char *[]){svc}, err);
	if (!res)
		return -err->code;
	if (strcmp(shd_db_value(res, 0, 0), "0") != 0)
		return shp_error_set(err, SHP_E_CONFLICT,
				     "service '%s' still has %s active VM(s): delete them first",
				     svc, shd_db_value(res, 0, 0));
	return 0;
}

/* Soft delete, under a row lock, refused while VMs still name the service. */
static int record_delete_service(PGconn *conn, const struct record *r, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_command(
		    conn,
		    "SELECT id FROM services WHERE name = $1 AND deleted_at IS NULL FOR UPDATE", 1,
		    (const char *[]){r->name}, err) < 0 ||
	    service_in_use(conn, r->name, err) < 0)
		return -err->code;
	res = shd_db_exec(conn,
			  "UPDATE services SET deleted_at = now()"
			  " WHERE name = $1 AND deleted_at IS NULL RETURNING id",
			  1, (const char *[]){r->name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "service '%s' not found", r->name);
	return 0;
}

int shd_gov_record(PGconn *conn, enum shd_req_type type, const json_t *payload,
		   int64_t requester_id, const char *requester, struct shp_error *err)
{
	const json_t *spec = json_object_get(payload, "spec");
	struct record r = {
		.name = spec_str(spec, "name"),
		.system = spec_str(spec, "system"),
		.description = spec_str(spec, "description"),
		.requester_id = requester_id,
		.requester = requester,
	};

	if (type == SHD_REQ_VNC_ACCESS) /* a policy that lets it through: the full duration */
		return shd_console_grant_create(conn, 0, payload, 0, requester_id, requester, err);
	if (!r.name[0])
		return shp_error_set(err, SHP_E_INVAL, "the %s request names nothing",
				     shd_req_type_to_string(type) ? shd_req_type_to_string(type)
								  : "unknown");
	switch (type) {
	case SHD_REQ_CREATE_SYSTEM: return record_create_system(conn, &r, err);
	case SHD_REQ_DELETE_SYSTEM: return record_delete_system(conn, &r, err);
	case SHD_REQ_CREATE_SERVICE: return record_create_service(conn, &r, err);
	case SHD_REQ_DELETE_SERVICE: return record_delete_service(conn, &r, err);
	default:
		return shp_error_set(err, SHP_E_INVAL, "a %s request is not record-only",
				     shd_req_type_to_string(type) ? shd_req_type_to_string(type)
								  : "unknown");
	}
}

/* Body of a create: name, optional description (and system for a service). */
static int parse_create(struct shd_req *req, const char *const *allowed, bool service,
			json_t **ret_body, const char **ret_sys, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	const char *name = NULL, *desc = "", *sys = NULL;
	bool confirm = false;

	if (!body ||
	    shp_json_get_string(body, "name", true, SHP_API_NAME_MAX + 1, &name, err) < 0 ||
	    shp_json_get_string(body, "description", false, DESCRIPTION_MAX, &desc, err) < 0 ||
	    shp_json_get_bool(body, "confirm", false, &confirm, err) < 0 ||
	    (service &&
	     shp_json_get_string(body, "system", true, SHP_API_NAME_MAX + 1, &sys, err) < 0))
		return -err->code;
	if (shd_validate_name("name", name, err) < 0 ||
	    (sys && shd_validate_name("system", sys, err) < 0) ||
	    shd_validate_text("description", desc, DESCRIPTION_MAX, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", name);
	*ret_sys = sys;
	*ret_body = TAKE_PTR(body);
	return 0;
}

/* CREATE_SYSTEM: anyone; the name is checked here and again by the unique index. */
int shd_api_systems_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"name", "description", "confirm", NULL};
	json_auto_t *body = NULL, *payload = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *sys = NULL, *name;
	struct shd_gov_sub sub = {
		.type = SHD_REQ_CREATE_SYSTEM, .service = "", .ns = "", .env = -1};

	if (parse_create(req, allowed, false, &body, &sys, err) < 0)
		return -err->code;
	name = shp_json_str(body, "name");
	res = shd_db_exec(req->db, "SELECT 1 FROM systems WHERE name = $1 AND deleted_at IS NULL",
			  1, (const char *[]){name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) > 0)
		return name_taken(err, "system", name);
	payload = json_pack("{s:{s:s,s:s}}", "spec", "name", name, "description",
			    shp_json_str(body, "description") ? shp_json_str(body, "description")
							      : "");
	sub.system = sub.target = name;
	sub.payload = payload;
	sub.confirm = json_is_true(json_object_get(body, "confirm"));
	return shd_gov_submit(req, resp, &sub, err);
}

/* DELETE_SYSTEM: owners (and platform admins), with the system's name typed. */
int shd_api_systems_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"confirm_name", "confirm", NULL};
	const char *name = req->params[0], *typed;
	json_auto_t *body = NULL, *payload = NULL;
	struct shd_gov_sub sub = {
		.type = SHD_REQ_DELETE_SYSTEM, .service = "", .ns = "", .env = -1};
	int r;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", name);
	body = optional_body(req, allowed, &r, err);
	if (r < 0 || shd_validate_name("name", name, err) < 0 ||
	    may_act(req, "system", name, name, true, err) < 0)
		return -err->code;
	typed = shd_req_query(req, "confirm_name");
	if (!typed)
		typed = shp_json_str(body, "confirm_name");
	if (!typed || strcmp(typed, name) != 0)
		return shd_gov_confirmation_required(err, "confirm_name", NULL,
						     "deleting a system");
	if (system_in_use(req->db, name, err) < 0)
		return -err->code;
	payload = json_pack("{s:{s:s}}", "spec", "name", name);
	sub.system = sub.target = name;
	sub.payload = payload;
	sub.confirm = true; /* the typed name is the confirmation */
	return shd_gov_submit(req, resp, &sub, err);
}

/* CREATE_SERVICE: owners and members of the system; others do not see it. */
int shd_api_services_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"name", "system", "description", "confirm", NULL};
	json_auto_t *body = NULL, *payload = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *sys = NULL, *name, *desc;
	struct shd_gov_sub sub = {.type = SHD_REQ_CREATE_SERVICE, .ns = "", .env = -1};

	if (parse_create(req, allowed, true, &body, &sys, err) < 0)
		return -err->code;
	name = shp_json_str(body, "name");
	desc = shp_json_str(body, "description");
	if (may_act(req, "service", name, sys, false, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, "SELECT 1 FROM services WHERE name = $1 AND deleted_at IS NULL",
			  1, (const char *[]){name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) > 0)
		return name_taken(err, "service", name);
	payload = json_pack("{s:{s:s,s:s,s:s}}", "spec", "name", name, "system", sys, "description",
			    desc ? desc : "");
	sub.system = sys;
	sub.service = sub.target = name;
	sub.payload = payload;
	sub.confirm = json_is_true(json_object_get(body, "confirm"));
	return shd_gov_submit(req, resp, &sub, err);
}

/* The system of an active service into sys (size >= 64); SHP_E_NOTFOUND. */
static int service_system(struct shd_req *req, const char *svc, char *sys, size_t size,
			  struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(req->db,
			  "SELECT s.name FROM services sv JOIN systems s ON s.id = sv.system_id"
			  " WHERE sv.name = $1 AND sv.deleted_at IS NULL",
			  1, (const char *[]){svc}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "service '%s' not found", svc);
	(void)snprintf(sys, size, "%s", shd_db_value(res, 0, 0));
	return 0;
}

/* DELETE_SERVICE: owners and members of its system, with confirm=true. */
int shd_api_services_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"confirm", NULL};
	const char *name = req->params[0];
	json_auto_t *body = NULL, *payload = NULL;
	struct shd_gov_sub sub = {.type = SHD_REQ_DELETE_SERVICE, .ns = "", .env = -1};
	char sys[64];
	int r;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", name);
	body = optional_body(req, allowed, &r, err);
	if (r < 0 || shd_validate_name("name", name, err) < 0 ||
	    service_system(req, name, sys, sizeof(sys), err) < 0)
		return -err->code;
	if (may_act(req, "service", name, sys, false, err) < 0) {
		if (err->code == SHP_E_NOTFOUND)
			shp_error_set(err, SHP_E_NOTFOUND, "service '%s' not found", name);
		return -err->code;
	}
	if (!confirm_query(req, body))
		return shd_gov_confirmation_required(err, "confirm", NULL, "deleting a service");
	if (service_in_use(req->db, name, err) < 0)
		return -err->code;
	payload = json_pack("{s:{s:s,s:s}}", "spec", "name", name, "system", sys);
	sub.system = sys;
	sub.service = sub.target = name;
	sub.payload = payload;
	sub.confirm = true;
	return shd_gov_submit(req, resp, &sub, err);
}

/* ?cursor= of a list keyed by name: the last name seen, or NULL. */
static int name_cursor(struct shd_req *req, struct shp_buf *out, const char **ret,
		       struct shp_error *err)
{
	const char *cursor = shd_req_query(req, "cursor");

	*ret = NULL;
	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, out, err) < 0)
		return -err->code;
	*ret = out->buf;
	return 0;
}

#define SYSTEM_SELECT                                                                              \
	"SELECT s.name, s.description, s.created_at, s.created_by,"                                \
	"       user_system_role($1, s.name),"                                                     \
	"       (SELECT count(*) FROM services sv"                                                 \
	"         WHERE sv.system_id = s.id AND sv.deleted_at IS NULL)"                            \
	"  FROM systems s WHERE s.deleted_at IS NULL"                                              \
	"   AND (" SQL_ADMIN " OR user_system_role($1, s.name) <> '')"

/* GET /systems: visibility is in the query (SYSTEM_SELECT), keyset-paged by name. */
int shd_api_systems_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(512);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *after = NULL;
	char uid[24], lim[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || name_cursor(req, &cur, &after, err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(req->db,
			  SYSTEM_SELECT " AND ($2::text IS NULL OR s.name > $2)"
					" ORDER BY s.name LIMIT $3",
			  3, (const char *[]){uid, after, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, system_cols, SHP_ARRAY_SIZE(system_cols), limit, 0,
				  err);
}

int shd_api_systems_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	if (shd_validate_name("name", req->params[0], err) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "system not found");
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db, SYSTEM_SELECT " AND s.name = $2", 2,
			  (const char *[]){uid, req->params[0]}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "system '%s' not found", req->params[0]);
	return shd_resp_row(resp, 200, res, system_cols, SHP_ARRAY_SIZE(system_cols), err);
}

#define SERVICE_SELECT                                                                             \
	"SELECT sv.name, s.name, sv.description, sv.created_at, sv.created_by"                     \
	"  FROM services sv JOIN systems s ON s.id = sv.system_id"                                 \
	" WHERE sv.deleted_at IS NULL AND s.deleted_at IS NULL"                                    \
	"   AND (" SQL_ADMIN " OR user_system_role($1, s.name) <> '')"

int shd_api_services_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(512);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *after = NULL, *sys = shd_req_query(req, "system");
	char uid[24], lim[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || name_cursor(req, &cur, &after, err) < 0 ||
	    (sys && shd_validate_name("system", sys, err) < 0))
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(req->db,
			  SERVICE_SELECT " AND ($2::text IS NULL OR sv.name > $2)"
					 " AND ($3::text IS NULL OR s.name = $3)"
					 " ORDER BY sv.name LIMIT $4",
			  4, (const char *[]){uid, after, sys, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, service_cols, SHP_ARRAY_SIZE(service_cols), limit, 0,
				  err);
}

int shd_api_services_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	if (shd_validate_name("name", req->params[0], err) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "service not found");
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db, SERVICE_SELECT " AND sv.name = $2", 2,
			  (const char *[]){uid, req->params[0]}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "service '%s' not found", req->params[0]);
	return shd_resp_row(resp, 200, res, service_cols, SHP_ARRAY_SIZE(service_cols), err);
}
