/*
 * Approval policies over HTTP: every user may read them (they say what a request will need);
 * platform admins set one row per (request type, environment or "any"), checked as the
 * schema's constraints would be but with a message that names the field, and audited as
 * POLICY_SET in the transaction that writes it.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col policy_cols[] = {
	{"request_type", COL_TEXT},       {"environment", COL_TEXT}, {"level", COL_INT},
	{"approvers_required", COL_INT},  {"runbook_url", COL_TEXT}, {"escalate_cpus", COL_INT},
	{"escalate_memory_mib", COL_INT}, {"updated_at", COL_TIME},  {"updated_by", COL_TEXT},
};

#define POLICY_SELECT                                                                              \
	"SELECT request_type::text, environment::text, level, approvers_required, runbook_url,"    \
	"       escalate_cpus, escalate_memory_mib, updated_at, updated_by"                        \
	"  FROM approval_policies"

int shd_api_policies_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(req->db,
			  POLICY_SELECT " ORDER BY request_type, environment NULLS FIRST LIMIT 201",
			  0, NULL, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, policy_cols, SHP_ARRAY_SIZE(policy_cols), 200, 0, err);
}

/* The type path parameter, checked. */
static int type_param(struct shd_req *req, enum shd_req_type *ret, struct shp_error *err)
{
	if (shd_req_type_from_string(req->params[0], ret, err) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "no request type '%.64s'",
				     req->params[0]);
	return 0;
}

/*
 * GET /policies/{type}: its rows; with ?environment=E the one row that decides in E (its own,
 * else the one without an environment), as shd_policy_match picks it.
 */
int shd_api_policies_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *env = shd_req_query(req, "environment");
	enum shd_req_type t;

	if (type_param(req, &t, err) < 0)
		return -err->code;
	if (!env) {
		res = shd_db_exec(req->db,
				  POLICY_SELECT " WHERE request_type = $1::request_type"
						" ORDER BY environment NULLS FIRST",
				  1, (const char *[]){req->params[0]}, err);
		if (!res)
			return -err->code;
		return shd_resp_rows_page(resp, res, policy_cols, SHP_ARRAY_SIZE(policy_cols),
					  PQntuples(res) + 1, 0, err);
	}
	if (shd_validate_environment("environment", env, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  POLICY_SELECT
			  " WHERE request_type = $1::request_type"
			  "   AND (environment = $2::environment OR environment IS NULL)"
			  " ORDER BY environment NULLS LAST LIMIT 1",
			  2, (const char *[]){req->params[0], env}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "no approval policy for %s in %s",
				     req->params[0], env);
	return shd_resp_row(resp, 200, res, policy_cols, SHP_ARRAY_SIZE(policy_cols), err);
}

struct policy_in {
	int64_t level, approvers, cpus, memory;
	const char *runbook;
};

static int field_error(struct shp_error *err, const char *field, const char *msg)
{
	shp_error_set(err, SHP_E_INVAL, "%s", msg);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

/* The body, with the rules of the levels: 2 needs a runbook, 3 needs two approvers or more. */
static int parse_policy(const json_t *body, struct policy_in *p, struct shp_error *err)
{
	p->approvers = 0;
	p->cpus = p->memory = 0;
	p->runbook = "";
	if (shp_json_get_int(body, "level", true, 0, 3, &p->level, err) < 0 ||
	    shp_json_get_int(body, "approvers_required", false, 1, 10, &p->approvers, err) < 0 ||
	    shp_json_get_string(body, "runbook_url", false, 2048, &p->runbook, err) < 0 ||
	    shp_json_get_int(body, "escalate_cpus", false, 0, 1024, &p->cpus, err) < 0 ||
	    shp_json_get_int(body, "escalate_memory_mib", false, 0, 16777216, &p->memory, err) < 0)
		return -err->code;
	if (p->runbook[0] && shd_validate_api_url("runbook_url", p->runbook, err) < 0)
		return -err->code;
	if (p->level == 2 && !p->runbook[0])
		return field_error(err, "runbook_url",
				   "level 2 (review) needs a runbook_url (http or https)");
	if (p->level == 3 && p->approvers < 2)
		return field_error(err, "approvers_required",
				   "level 3 needs approvers_required of 2 or more");
	if (p->level < 3 && p->approvers > 1)
		return field_error(err, "approvers_required",
				   "approvers_required above 1 needs level 3");
	if (p->approvers == 0)
		p->approvers = 1;
	return 0;
}

static int policy_upsert(struct shd_req *req, const char *env, const struct policy_in *p,
			 PGresult **ret, struct shp_error *err)
{
	char lv[24], ap[24], cpus[24], mem[24];

	(void)snprintf(lv, sizeof(lv), "%" PRId64, p->level);
	(void)snprintf(ap, sizeof(ap), "%" PRId64, p->approvers);
	(void)snprintf(cpus, sizeof(cpus), "%" PRId64, p->cpus);
	(void)snprintf(mem, sizeof(mem), "%" PRId64, p->memory);
	*ret = shd_db_exec(
		req->db,
		"INSERT INTO approval_policies AS p (request_type, environment, level,"
		"   approvers_required, runbook_url, escalate_cpus, escalate_memory_mib, "
		"updated_by)"
		" VALUES ($1::request_type, $2::environment, $3, $4, $5, $6, $7, $8)"
		" ON CONFLICT (request_type, environment) DO UPDATE SET level = EXCLUDED.level,"
		"   approvers_required = EXCLUDED.approvers_required,"
		"   runbook_url = EXCLUDED.runbook_url, escalate_cpus = EXCLUDED.escalate_cpus,"
		"   escalate_memory_mib = EXCLUDED.escalate_memory_mib, updated_at = now(),"
		"   updated_by = EXCLUDED.updated_by"
		" RETURNING p.request_type::text, p.environment::text, p.level,"
		"   p.approvers_required, p.runbook_url, p.escalate_cpus, p.escalate_memory_mib,"
		"   p.updated_at, p.updated_by",
		8,
		(const char *[]){req->params[0], env, lv, ap, p->runbook, cpus, mem,
				 req->ident.name},
		err);
	return *ret ? 0 : -err->code;
}

/* PUT /policies/{type}/{test|prod|any} (platform admins; the route checks). */
int shd_api_policies_put(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"level",         "approvers_required",  "runbook_url",
					      "escalate_cpus", "escalate_memory_mib", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	json_auto_t *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *env = req->params[1];
	struct policy_in p;
	enum shd_req_type t;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.64s/%.8s", req->params[0], env);
	if (type_param(req, &t, err) < 0)
		return -err->code;
	if (strcmp(env, "any") == 0)
		env = NULL;
	else if (strcmp(env, "test") != 0 && strcmp(env, "prod") != 0)
		return shp_error_set(err, SHP_E_NOTFOUND,
				     "no environment '%.16s' (test, prod or any)", env);
	if (!body || parse_policy(body, &p, err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	details = json_pack("{s:s,s:s?,s:I,s:I,s:s,s:I,s:I}", "request_type", req->params[0],
			    "environment", env, "level", (json_int_t)p.level, "approvers_required",
			    (json_int_t)p.approvers, "runbook_url", p.runbook, "escalate_cpus",
			    (json_int_t)p.cpus, "escalate_memory_mib", (json_int_t)p.memory);
	if (policy_upsert(req, env, &p, &res, err) < 0 ||
	    shd_audit_write(req->db, req, "POLICY_SET", "policy", req->audit_name, "success",
			    details, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_row(resp, 200, res, policy_cols, SHP_ARRAY_SIZE(policy_cols), err);
}
