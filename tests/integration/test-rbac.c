/*
 * shd_access_load against a real database: what role bindings, principal mappings and
 * users.is_admin give each environment (see, approve, cross-system), platform-admin with any
 * environment list, and nothing for a disabled user or one without roles.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "gov.h"
#include "testdb.h"

static void setup(void)
{
	testdb_setup("shp_rbac");
}

TestSuite(rbac, .init = setup, .fini = testdb_teardown, .timeout = 60);

static void exec_sql(const char *sql)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_db_command(testdb_conn, sql, 0, NULL, &err), 0, "%s: %s", sql, err.msg);
}

/* A new user, its id. */
static int64_t user(const char *name)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGresult *res =
		shd_db_exec(testdb_conn, "INSERT INTO users (name) VALUES ($1) RETURNING id", 1,
			    (const char *[]){name}, &err);
	int64_t id;

	cr_assert_not_null(res, "%s", err.msg);
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return id;
}

static void bind_role(int64_t uid, const char *role, const char *envs)
{
	struct shp_error err = SHP_ERROR_INIT;
	char id[24];

	(void)snprintf(id, sizeof(id), "%" PRId64, uid);
	cr_assert_eq(
		shd_db_command(testdb_conn,
			       "INSERT INTO role_bindings (user_id, role, allowed_environments)"
			       " VALUES ($1, $2::platform_role, $3::environment[])",
			       3, (const char *[]){id, role, envs}, &err),
		0, "%s", err.msg);
}

static struct shd_access load(int64_t uid)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_access a;

	cr_assert_eq(shd_access_load(testdb_conn, uid, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(a.user_id, uid);
	return a;
}

Test(rbac, viewer_sees_its_environment_only)
{
	int64_t v = user("viewer-test");
	struct shd_access a;

	bind_role(v, "viewer", "{test}");
	a = load(v);
	cr_assert(a.see[0]);
	cr_assert_not(a.see[1]);
	cr_assert_not(a.approve[0] || a.approve[1] || a.cross[0] || a.cross[1] || a.admin);
}

Test(rbac, approver_and_operator)
{
	int64_t ap = user("approver"), op = user("operator");
	struct shd_access a;

	bind_role(ap, "approver", "{prod}");
	bind_role(op, "operator", "{test,prod}");
	a = load(ap);
	cr_assert(a.see[1] && a.approve[1] && a.cross[1]);
	cr_assert_not(a.see[0] || a.approve[0] || a.cross[0] || a.admin);
	a = load(op);
	cr_assert(a.see[0] && a.see[1] && a.cross[0] && a.cross[1]);
	cr_assert_not(a.approve[0] || a.approve[1] || a.admin, "operators do not approve");
}

Test(rbac, admins)
{
	int64_t flag = user("flag-admin"), bound = user("bound-admin");
	struct shd_access a;

	exec_sql("UPDATE users SET is_admin = true WHERE name = 'flag-admin'");
	a = load(flag);
	cr_assert(a.admin && a.see[0] && a.see[1] && a.approve[0] && a.approve[1]);
	bind_role(bound, "platform-admin", "{}");
	a = load(bound);
	cr_assert(a.admin, "platform-admin without environments is still an admin");
	cr_assert_not(a.see[0] || a.see[1], "but sees no environment");
}

Test(rbac, mappings_count_while_enabled)
{
	int64_t m = user("mapped");
	struct shd_access a;

	exec_sql("INSERT INTO rbac_mappings (principal_kind, principal, user_name, role,"
		 " allowed_environments) VALUES ('token', 'ci/deploy', 'mapped', 'approver', "
		 "'{test}')");
	a = load(m);
	cr_assert(a.see[0] && a.approve[0]);
	cr_assert_not(a.see[1]);
	exec_sql("UPDATE rbac_mappings SET enabled = false");
	a = load(m);
	cr_assert_not(a.see[0] || a.approve[0], "a disabled mapping grants nothing");
}

Test(rbac, disabled_and_unknown_users_get_nothing)
{
	int64_t d = user("gone");
	struct shd_access a;

	bind_role(d, "platform-admin", "{test,prod}");
	exec_sql("UPDATE users SET disabled_at = now() WHERE name = 'gone'");
	a = load(d);
	cr_assert_not(a.admin || a.see[0] || a.see[1] || a.approve[0] || a.cross[1]);
	a = load(999999);
	cr_assert_not(a.admin || a.see[0] || a.see[1]);
	a = load(user("nobody"));
	cr_assert_not(a.admin || a.see[0] || a.see[1]);
}
