/*
 * The console API: tokens (POST /vms/{name}/console/token) and VNC_ACCESS requests
 * (POST /vms/{name}/console/requests). A token is issued to a caller who may act on the VM:
 * at once in test, in prod only while they hold an unexpired grant, and never past it. The
 * token is returned once and never stored, logged or audited: its jti is.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "error.h"
#include "gov-submit.h"
#include "json.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"

#define REASON_MAX 1024

/* ---- the VM -----------------------------------------------------------------------------------
 */

#define CONSOLE_VM_SELECT                                                                          \
	"SELECT v.id, v.namespace, v.name, v.system, v.service, c.name, c.id,"                     \
	"       n.environment::text, user_system_role($1, v.system),"                              \
	"       n.environment = ANY (user_envs($1, '{platform-admin,operator}'))"                  \
	"  FROM vms v JOIN namespaces n ON n.name = v.namespace"                                   \
	"  JOIN clusters c ON c.id = v.cluster_id"                                                 \
	" WHERE v.name = $2 AND ($3::text IS NULL OR v.namespace = $3) AND v.deleted_at IS NULL"

static void vm_parse(const PGresult *res, struct shd_console_vm *v)
{
	v->id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(v->ns, sizeof(v->ns), "%s", shd_db_value(res, 0, 1));
	(void)snprintf(v->name, sizeof(v->name), "%s", shd_db_value(res, 0, 2));
	(void)snprintf(v->system, sizeof(v->system), "%s", shd_db_value(res, 0, 3));
	(void)snprintf(v->service, sizeof(v->service), "%s", shd_db_value(res, 0, 4));
	(void)snprintf(v->cluster, sizeof(v->cluster), "%s", shd_db_value(res, 0, 5));
	v->cluster_id = strtoll(shd_db_value(res, 0, 6), NULL, 10);
	v->env = shd_env_index(shd_db_value(res, 0, 7));
	(void)snprintf(v->role, sizeof(v->role), "%s", shd_db_value(res, 0, 8));
	v->cross = shp_streq(shd_db_value(res, 0, 9), "t");
}

/* An existing VM the caller may not see: audited as an attempt on another system's VM. */
static void audit_hidden(struct shd_req *req, PGconn *conn, const char *name, const char *ns,
			 const struct shp_error *refusal)
{
	struct shp_error e2 = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT 1 FROM vms WHERE name = $1 AND ($2::text IS NULL OR namespace = $2)"
		"   AND deleted_at IS NULL LIMIT 1",
		2, (const char *[]){name, ns}, &e2);
	json_auto_t *d = NULL;

	if (!res || PQntuples(res) == 0)
		return;
	d = json_pack("{s:s,s:s}", "code", "NOT_FOUND", "message", refusal->msg);
	if (shd_audit_write(conn, req, "RBAC_VIOLATION", "vm", name, "denied", d, &e2) < 0)
		log_warn("RBAC_VIOLATION by '%s' not audited: %s", req->ident.name, e2.msg);
}

static int may_act(struct shd_req *req, PGconn *conn, const struct shd_console_vm *v,
		   struct shp_error *err)
{
	if (shp_streq(v->role, "owner") || shp_streq(v->role, "member") || v->cross)
		return 0;
	shp_error_set(err, SHP_E_PERM,
		      "only owners and members of system '%s' (and operators of its environment) "
		      "may open the console of VM '%s'",
		      v->system, v->name);
	audit_hidden(req, conn, v->name, v->ns, err);
	return -SHP_E_PERM;
}

int shd_console_vm_find(struct shd_req *req, PGconn *conn, struct shd_console_vm *ret,
			struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *name = req->params[0], *ns = shd_req_query(req, "namespace");
	char uid[24];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", name);
	if (!shp_name_is_valid(name) || (ns && !shp_name_is_valid(ns)))
		return shp_error_set(err, SHP_E_NOTFOUND, "VM '%.63s' not found", name);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(conn,
			  CONSOLE_VM_SELECT " AND vm_visible($1, v.system, n.environment)"
					    " ORDER BY v.namespace LIMIT 10",
			  3, (const char *[]){uid, name, ns}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) > 1) {
		shp_error_set(err, SHP_E_CONFLICT,
			      "VM name '%s' is in several namespaces: add ?namespace=", name);
		shp_error_api_code(err, "AMBIGUOUS_NAME");
		return -SHP_E_CONFLICT;
	}
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "VM '%s' not found", name);
		audit_hidden(req, conn, name, ns, err);
		return -SHP_E_NOTFOUND;
	}
	vm_parse(res, ret);
	return may_act(req, conn, ret, err);
}

/* ---- tokens ------------------------------------------------------------------------------------
 */

/*
 * The CLI sends an Idempotency-Key with every POST, and an idempotent answer is stored to be
 * replayed: a token must never be, so its request is not idempotent (a repeat gets a new one).
 */
static void forget_idempotency(struct shd_req *req)
{
	struct shp_error e = SHP_ERROR_INIT;
	char id[24];

	if (req->idem_id <= 0)
		return;
	(void)snprintf(id, sizeof(id), "%" PRId64, req->idem_id);
	if (shd_db_command(req->db, "DELETE FROM idempotency_keys WHERE id = $1", 1,
			   (const char *[]){id}, &e) < 0)
		log_warn("releasing the idempotency key of a console token failed, ignoring: %s",
			 e.msg);
	req->idem_id = 0;
}

static int grant_required(struct shp_error *err, const struct shd_console_vm *v)
{
	shp_error_set(err, SHP_E_PERM,
		      "console access to prod VM '%s/%s' needs an approved grant: request it with "
		      "'shepherd vnc request %s --namespace %s --duration D --reason TEXT'",
		      v->ns, v->name, v->name, v->ns);
	shp_error_api_code(err, "VNC_GRANT_REQUIRED");
	shp_error_detail(err, "namespace", "%s", v->ns);
	shp_error_detail(err, "vm", "%s", v->name);
	shp_error_detail(err, "request_path", SHP_API_PREFIX "/vms/%s/console/requests", v->name);
	return -SHP_E_PERM;
}

/*
 * The token's lifetime: [now, now + ttl], in prod cut at the caller's latest unexpired grant
 * (*ret_grant its id; SHP_E_PERM VNC_GRANT_REQUIRED without one). Times from the database.
 */
static int token_window(struct shd_req *req, const struct shd_console_vm *v, int64_t *ret_iat,
			int64_t *ret_exp, int64_t *ret_grant, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], vid[24], ttl[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(vid, sizeof(vid), "%" PRId64, v->id);
	(void)snprintf(ttl, sizeof(ttl), "%d", req->d->cfg->console_token_ttl_s);
	res = shd_db_exec(
		req->db,
		"SELECT floor(extract(epoch FROM now()))::bigint,"
		"  floor(extract(epoch FROM LEAST(now() + make_interval(secs => $3::bigint),"
		"    g.expires_at)))::bigint, g.id"
		"  FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, expires_at FROM console_grants"
		"    WHERE user_id = $1 AND vm_id = $2 AND expires_at > now() + interval '1 second'"
		"    ORDER BY expires_at DESC LIMIT 1) g ON true",
		3, (const char *[]){uid, vid, ttl}, err);
	if (!res)
		return -err->code;
	*ret_iat = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	*ret_exp = strtoll(shd_db_value(res, 0, 1), NULL, 10);
	*ret_grant = shd_db_value(res, 0, 2) ? strtoll(shd_db_value(res, 0, 2), NULL, 10) : 0;
	if (v->env == 1 && *ret_grant == 0)
		return grant_required(err, v);
	if (v->env != 1) /* test: no grant needed, none consulted */
		*ret_grant = 0, *ret_exp = *ret_iat + req->d->cfg->console_token_ttl_s;
	return 0;
}

/* The single-use marker and the audit row, in one transaction. */
static int token_record(struct shd_req *req, const struct shd_console_vm *v,
			const struct shd_console_claims *c, int64_t grant, struct shp_error *err)
{
	char uid[24], vid[24], gid[24], iat[24], exp[24];
	json_auto_t *d =
		json_pack("{s:s,s:s,s:s,s:I,s:s}", "jti", c->jti, "namespace", v->ns, "vm", v->name,
			  "expires_in_s", (json_int_t)(c->exp - c->iat), "sealed_with",
			  shd_console_keys_current_id(req->d->console_keys));

	(void)snprintf(uid, sizeof(uid), "%" PRId64, c->sub);
	(void)snprintf(vid, sizeof(vid), "%" PRId64, v->id);
	(void)snprintf(gid, sizeof(gid), "%" PRId64, grant);
	(void)snprintf(iat, sizeof(iat), "%" PRId64, c->iat);
	(void)snprintf(exp, sizeof(exp), "%" PRId64, c->exp);
	if (grant)
		(void)json_object_set_new(d, "grant_id", json_integer(grant));
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (shd_db_command(req->db,
			   "INSERT INTO console_tokens (jti, user_id, vm_id, grant_id, key_id,"
			   " issued_at, expires_at) VALUES ($1, $2, $3, $4, $5,"
			   " to_timestamp($6::bigint), to_timestamp($7::bigint))",
			   7,
			   (const char *[]){c->jti, uid, vid, grant ? gid : NULL,
					    shd_console_keys_current_id(req->d->console_keys), iat,
					    exp},
			   err) < 0 ||
	    shd_audit_write(req->db, req, "VNC_TOKEN_ISSUED", "vm", v->name, "success", d, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return 0;
}

static json_t *token_answer(const struct shd_console_vm *v, const struct shd_console_claims *c,
			    const char *token)
{
	char path[256], exp[32];
	time_t t = (time_t)c->exp;
	struct tm tm;

	(void)gmtime_r(&t, &tm);
	(void)strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	(void)snprintf(path, sizeof(path), SHP_API_PREFIX "/vms/%s/vnc?namespace=%s", v->name,
		       v->ns);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "token", token, "jti", c->jti,
			 "namespace", v->ns, "vm", v->name, "path", path, "protocol",
			 SHD_CONSOLE_PROTOCOL, "header", SHD_CONSOLE_TOKEN_HEADER, "expires_at",
			 exp, "expires_in_s", (json_int_t)(c->exp - c->iat));
}

int shd_api_console_token(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shd_console_vm v = {0};
	struct shd_console_claims c = {0};
	_cleanup_free_ char *token = NULL;
	int64_t grant = 0;
	json_t *answer;

	static const char *const none[] = {NULL};

	forget_idempotency(req);
	if (req->body.len > 0) { /* no body, or an empty object */
		json_auto_t *body = shd_req_json_object(req, none, err);
		if (!body)
			return -err->code;
	}
	if (shd_console_vm_find(req, req->db, &v, err) < 0 ||
	    token_window(req, &v, &c.iat, &c.exp, &grant, err) < 0 ||
	    shp_random_hex(16, c.jti, err) < 0)
		return -err->code;
	c.sub = req->ident.user_id;
	c.vm_id = v.id;
	(void)snprintf(c.ns, sizeof(c.ns), "%s", v.ns);
	(void)snprintf(c.name, sizeof(c.name), "%s", v.name);
	if (shd_console_token_seal(req->d->console_keys, &c, &token, err) < 0 ||
	    token_record(req, &v, &c, grant, err) < 0)
		return -err->code;
	answer = token_answer(&v, &c, token);
	explicit_bzero(token, strlen(token));
	if (!answer)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return shd_resp_json_take(resp, 201, answer);
}

/* ---- VNC_ACCESS requests ------------------------------------------------------------------------
 */

int shd_api_console_request(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"duration_s", "reason", "confirm", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	json_auto_t *payload = NULL;
	struct shd_console_vm v = {0};
	struct shd_gov_sub sub = {.type = SHD_REQ_VNC_ACCESS};
	const char *reason = NULL;
	int64_t duration = 0;
	bool confirm = false;

	if (!body ||
	    shp_json_get_int(body, "duration_s", true, 60, SHD_CONSOLE_TTL_MAX_S, &duration, err) <
		    0 ||
	    shp_json_get_string(body, "reason", true, REASON_MAX, &reason, err) < 0 ||
	    shp_json_get_bool(body, "confirm", false, &confirm, err) < 0 ||
	    shd_validate_text("reason", reason, REASON_MAX, err) < 0)
		return -err->code;
	if (!reason[0]) {
		shp_error_set(err, SHP_E_INVAL, "a console access request needs a reason");
		shp_error_detail(err, "field", "reason");
		return -SHP_E_INVAL;
	}
	if (shd_console_vm_find(req, req->db, &v, err) < 0)
		return -err->code;
	payload = json_pack("{s:{s:I,s:s,s:s,s:s,s:s,s:s},s:{s:I,s:s}}", "vm", "id",
			    (json_int_t)v.id, "namespace", v.ns, "name", v.name, "system", v.system,
			    "service", v.service, "cluster", v.cluster, "spec", "duration_s",
			    (json_int_t)duration, "reason", reason);
	if (!payload)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	sub.system = v.system;
	sub.service = v.service;
	sub.ns = v.ns;
	sub.env = v.env;
	sub.target = v.name;
	sub.vm_id = v.id;
	sub.cluster = v.cluster;
	sub.payload = payload;
	sub.confirm = confirm;
	return shd_gov_submit(req, resp, &sub, err);
}
