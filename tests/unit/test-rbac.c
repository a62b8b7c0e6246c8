/*
 * The pure checks of the platform-role and principal-mapping API: environment indexes, role
 * names, user names, principal strings per kind, and allowed_environments lists, on good and
 * hostile input.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "gov.h"
#include "rbac.h"

Test(rbac, env_index)
{
	cr_assert_eq(shd_env_index("test"), 0);
	cr_assert_eq(shd_env_index("prod"), 1);
	cr_assert_eq(shd_env_index("Prod"), -1);
	cr_assert_eq(shd_env_index(""), -1);
	cr_assert_eq(shd_env_index("test "), -1);
	cr_assert_eq(shd_env_index(NULL), -1);
}

Test(rbac, roles)
{
	cr_assert(shd_rbac_role_is_valid("platform-admin"));
	cr_assert(shd_rbac_role_is_valid("viewer"));
	cr_assert_not(shd_rbac_role_is_valid("admin"));
	cr_assert_not(shd_rbac_role_is_valid("Viewer"));
	cr_assert_not(shd_rbac_role_is_valid(""));
	cr_assert_not(shd_rbac_role_is_valid(NULL));
	cr_assert(shd_rbac_team_role_is_valid("owner"));
	cr_assert_not(shd_rbac_team_role_is_valid("approver"));
}

Test(rbac, user_names)
{
	struct shp_error err = SHP_ERROR_INIT;
	char big[200];

	cr_assert_eq(shd_rbac_check_user_name("user", "alice", &err), 0);
	cr_assert_eq(shd_rbac_check_user_name("user", "Jean Dupont", &err), 0);
	cr_assert_eq(shd_rbac_check_user_name("user", "ci/bot", &err), 0);
	cr_assert_eq(shd_rbac_check_user_name("user", "", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_user_name("user", "a\nb", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_user_name("user", "tab\there", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_user_name("user", " lead", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_user_name("user", "\xff\xfe", &err), -SHP_E_INVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(shd_rbac_check_user_name("user_name", big, &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.details[0].value, "user_name");
}

Test(rbac, principals_per_kind)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_rbac_check_principal("unix", "alice", &err), 0);
	cr_assert_eq(shd_rbac_check_principal("unix", "svc_backup.1", &err), 0);
	cr_assert_eq(shd_rbac_check_principal("unix", "machine$", &err), 0);
	cr_assert_eq(shd_rbac_check_principal("unix", "-rf", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("unix", "a b", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("unix", "x/y", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("unix", "012345678901234567890123456789012", &err),
		     -SHP_E_INVAL);

	cr_assert_eq(shd_rbac_check_principal("token", "ci-bot/deploy", &err), 0);
	cr_assert_eq(shd_rbac_check_principal("token", "team/ci/deploy", &err), 0,
		     "the last '/' splits: owner names may hold one");
	cr_assert_eq(shd_rbac_check_principal("token", "no-slash", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("token", "/deploy", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("token", "owner/", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("token",
					      "o/"
					      "0123456789012345678901234567890123456789"
					      "012345678901234567890123",
					      &err),
		     -SHP_E_INVAL, "a token name has at most 63 bytes");

	cr_assert_eq(shd_rbac_check_principal("cert", "CN=alice,O=shepherd tests", &err), 0);
	cr_assert_eq(shd_rbac_check_principal("cert", "alice", &err), -SHP_E_INVAL);
	cr_assert_eq(shd_rbac_check_principal("cert", "CN=a\x01", &err), -SHP_E_INVAL);

	cr_assert_eq(shd_rbac_check_principal("ldap", "uid=alice", &err), -SHP_E_INVAL);
	cr_assert_str_eq(err.details[0].value, "principal_kind");
	cr_assert_eq(shd_rbac_check_principal("unix", "", &err), -SHP_E_INVAL);
}

static int envs(const char *json, char *out, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
	int r;

	cr_assert_not_null(j, "test input parses: %s", json);
	r = shd_rbac_envs_literal(j, "allowed_environments", out, size, &err);
	json_decref(j);
	if (r < 0)
		cr_assert_str_eq(err.details[0].value, "allowed_environments");
	return r;
}

Test(rbac, environment_lists)
{
	char out[16];

	cr_assert_eq(envs("[\"test\"]", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{test}");
	cr_assert_eq(envs("[\"prod\", \"test\"]", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{prod,test}");
	cr_assert_eq(envs("[]", out, sizeof(out)), -SHP_E_INVAL, "empty");
	cr_assert_eq(envs("[\"test\", \"test\"]", out, sizeof(out)), -SHP_E_INVAL, "duplicate");
	cr_assert_eq(envs("[\"test\", \"prod\", \"test\"]", out, sizeof(out)), -SHP_E_INVAL);
	cr_assert_eq(envs("[\"staging\"]", out, sizeof(out)), -SHP_E_INVAL, "unknown");
	cr_assert_eq(envs("[\"TEST\"]", out, sizeof(out)), -SHP_E_INVAL);
	cr_assert_eq(envs("[1]", out, sizeof(out)), -SHP_E_INVAL, "wrong type");
	cr_assert_eq(envs("[null]", out, sizeof(out)), -SHP_E_INVAL);
	cr_assert_eq(envs("\"test\"", out, sizeof(out)), -SHP_E_INVAL, "not an array");
	cr_assert_eq(envs("{\"test\": true}", out, sizeof(out)), -SHP_E_INVAL);
	cr_assert_eq(envs("[\"test\"]", out, 8), -SHP_E_INVAL, "too small an output buffer");
}

Test(rbac, environment_list_missing)
{
	struct shp_error err = SHP_ERROR_INIT;
	char out[16];

	cr_assert_eq(shd_rbac_envs_literal(NULL, "allowed_environments", out, sizeof(out), &err),
		     -SHP_E_INVAL);
}
