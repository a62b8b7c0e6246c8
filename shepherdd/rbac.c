/*
 * Platform roles and environments: what a user may see and do, by environment. The decision is
 * the schema's (user_envs over effective_role_bindings, which folds in principal mappings and
 * users.is_admin, and gives a disabled user nothing); this file reads it in one query.
 * shd_env_index, being pure, lives in rbac-check.c.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "error.h"
#include "gov.h"

/*
 * One row: for each environment, whether it is in user_envs for the three role sets, and
 * whether the user holds platform-admin at all (a binding whose environment list is empty
 * still makes an admin of the platform's own resources).
 */
static const char sql_access[] =
	"WITH e AS (SELECT user_envs($1::bigint, '" SHD_ROLES_ANY "') AS see,"
	"  user_envs($1::bigint, '" SHD_ROLES_APPROVE "') AS approve,"
	"  user_envs($1::bigint, '" SHD_ROLES_CROSS_SYSTEM "') AS cross_sys)"
	" SELECT 'test' = ANY (see), 'prod' = ANY (see),"
	"  'test' = ANY (approve), 'prod' = ANY (approve),"
	"  'test' = ANY (cross_sys), 'prod' = ANY (cross_sys),"
	"  EXISTS (SELECT 1 FROM effective_role_bindings b"
	"   WHERE b.user_id = $1::bigint AND b.role = 'platform-admin')"
	"  AND NOT EXISTS (SELECT 1 FROM users u"
	"   WHERE u.id = $1::bigint AND u.disabled_at IS NOT NULL)"
	" FROM e";

static bool cell_true(const PGresult *res, int col)
{
	const char *v = shd_db_value(res, 0, col);

	return v && strcmp(v, "t") == 0;
}

int shd_access_load(PGconn *conn, int64_t user_id, struct shd_access *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24];

	memset(ret, 0, sizeof(*ret));
	ret->user_id = user_id;
	(void)snprintf(id, sizeof(id), "%" PRId64, user_id);
	res = shd_db_exec(conn, sql_access, 1, (const char *[]){id}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_INTERNAL, "access query returned %d rows",
				     PQntuples(res));
	for (int e = 0; e < 2; e++) {
		ret->see[e] = cell_true(res, e);
		ret->approve[e] = cell_true(res, 2 + e);
		ret->cross[e] = cell_true(res, 4 + e);
	}
	ret->admin = cell_true(res, 6);
	return 0;
}
