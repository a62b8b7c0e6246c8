/*
 * Approval policies: which level of review a request needs. The match is pure (rows in,
 * decision out) so the whole matrix is unit-tested; the load reads approval_policies.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "gov.h"
#include "util.h"

static const struct shd_policy *find_row(const struct shd_policy *rows, size_t n,
					 enum shd_req_type type, int env)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].type == type && rows[i].env == env)
			return &rows[i];
	return NULL;
}

/* Does the change exceed one of the row's escalation thresholds (0 = off)? */
static bool exceeds(const struct shd_policy *p, int add_cpus, int64_t add_memory_mib)
{
	if (p->escalate_cpus > 0 && add_cpus > p->escalate_cpus)
		return true;
	return p->escalate_memory_mib > 0 && add_memory_mib > p->escalate_memory_mib;
}

int shd_policy_match(const struct shd_policy *rows, size_t n, enum shd_req_type type, int env,
		     int add_cpus, int64_t add_memory_mib, struct shd_policy_decision *ret,
		     struct shp_error *err)
{
	const struct shd_policy *p = env >= 0 ? find_row(rows, n, type, env) : NULL;
	struct shd_policy_decision d;

	if (!p)
		p = find_row(rows, n, type, -1);
	if (!p)
		return shp_error_set(
			err, SHP_E_NOTFOUND, "no approval policy for %s in environment '%s'",
			shd_req_type_to_string(type) ? shd_req_type_to_string(type) : "?",
			env == 0   ? "test"
			: env == 1 ? "prod"
				   : "none");
	d.level = p->level;
	d.approvers_required =
		p->level >= 3 ? (p->approvers_required >= 2 ? p->approvers_required : 2) : 1;
	d.runbook_url = p->runbook_url;
	d.escalated = false;
	d.env = p->env;
	if (d.level < 3 && exceeds(p, add_cpus, add_memory_mib)) {
		d.level++;
		d.escalated = true;
		if (d.level == 3)
			d.approvers_required = 2;
	}
	*ret = d;
	return 0;
}

/* Row i of the SELECT below into *p. */
static int parse_row(const PGresult *res, int i, struct shd_policy *p, struct shp_error *err)
{
	const char *env = shd_db_value(res, i, 1);
	long long v[4];

	memset(p, 0, sizeof(*p));
	if (shd_req_type_from_string(shd_db_value(res, i, 0), &p->type, err) < 0)
		return -err->code;
	p->env = !env ? -1 : strcmp(env, "test") == 0 ? 0 : strcmp(env, "prod") == 0 ? 1 : -2;
	if (p->env == -2)
		return shp_error_set(err, SHP_E_DB, "approval policy with environment '%.16s'",
				     env);
	for (int c = 0; c < 4; c++)
		if (shp_parse_int(shd_db_value(res, i, 2 + c), 0, INT64_MAX, &v[c], err) < 0)
			return shp_error_prefix(err, "approval policy row");
	p->level = (int)v[0];
	p->approvers_required = (int)v[1];
	p->escalate_cpus = (int)v[2];
	p->escalate_memory_mib = v[3];
	(void)snprintf(p->runbook_url, sizeof(p->runbook_url), "%s", shd_db_value(res, i, 6));
	return 0;
}

int shd_policy_load(PGconn *conn, struct shd_policy **ret, size_t *ret_n, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	_cleanup_free_ struct shd_policy *rows = NULL;
	int n;

	res = shd_db_exec(conn,
			  "SELECT request_type::text, environment::text, level, approvers_required,"
			  "       escalate_cpus, escalate_memory_mib, runbook_url"
			  "  FROM approval_policies ORDER BY request_type, environment NULLS LAST",
			  0, NULL, err);
	if (!res)
		return shp_error_prefix(err, "loading approval policies");
	n = PQntuples(res);
	rows = calloc(n > 0 ? (size_t)n : 1, sizeof(*rows));
	if (!rows)
		return shp_error_set(err, SHP_E_NOMEM, "loading approval policies");
	for (int i = 0; i < n; i++)
		if (parse_row(res, i, &rows[i], err) < 0)
			return -err->code;
	*ret = TAKE_PTR(rows);
	*ret_n = (size_t)n;
	return 0;
}
