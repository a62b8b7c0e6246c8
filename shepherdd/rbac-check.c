/*
 * The pure checks behind the rolebindings and rbac/mappings API (rbac.h): what a role, a team
 * role, a user name, a principal string of each kind and an environment list may be. Kept apart
 * from the handlers so hostile input is unit-tested without a database.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "gov.h"
#include "rbac.h"
#include "util.h"

int shd_env_index(const char *env)
{
	if (!env)
		return -1;
	if (strcmp(env, "test") == 0)
		return 0;
	if (strcmp(env, "prod") == 0)
		return 1;
	return -1;
}

static bool in_list(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

bool shd_rbac_role_is_valid(const char *role)
{
	static const char *const roles[] = {"platform-admin", "approver", "operator", "viewer",
					    NULL};

	return in_list(role, roles);
}

bool shd_rbac_team_role_is_valid(const char *role)
{
	static const char *const roles[] = {"owner", "member", "viewer", NULL};

	return in_list(role, roles);
}

static int field_error(struct shp_error *err, const char *field, const char *what)
{
	shp_error_set(err, SHP_E_INVAL, "field '%s' %s", field, what);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int shd_rbac_check_user_name(const char *field, const char *name, struct shp_error *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128)
		return field_error(err, field, "must be 1 to 128 bytes long");
	if (!shp_utf8_is_valid(name, n) || has_control(name))
		return field_error(err, field, "must be UTF-8 without control characters");
	if (name[0] == ' ' || name[n - 1] == ' ')
		return field_error(err, field, "must not start or end with a space");
	return 0;
}

static bool unix_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
			  (c == '$' && i == n - 1);
		if (!ok)
			return false;
	}
	return true;
}

/* "OWNER/TOKEN_NAME": the last '/' splits (owner names may hold one, token names may not). */
static int check_token_principal(const char *p, struct shp_error *err)
{
	const char *slash = strrchr(p, '/');
	char owner[130];

	if (!slash || slash == p || slash[1] == '\0' || strlen(slash + 1) > 63)
		return field_error(err, "principal",
				   "of a token mapping must be OWNER/TOKEN_NAME (the token "
				   "owner's user name and the token's name, at most 63 bytes)");
	if ((size_t)(slash - p) >= sizeof(owner))
		return field_error(err, "principal", "names a token owner longer than 128 bytes");
	(void)snprintf(owner, sizeof(owner), "%.*s", (int)(slash - p), p);
	return shd_rbac_check_user_name("principal", owner, err);
}

int shd_rbac_check_principal(const char *kind, const char *principal, struct shp_error *err)
{
	size_t n = strlen(principal);

	if (n == 0 || n > 512)
		return field_error(err, "principal", "must be 1 to 512 bytes long");
	if (!shp_utf8_is_valid(principal, n) || has_control(principal))
		return field_error(err, "principal", "must be UTF-8 without control characters");
	if (strcmp(kind, "unix") == 0)
		return unix_name_ok(principal)
			       ? 0
			       : field_error(err, "principal",
					     "of a unix mapping must be an account name (letters, "
					     "digits, '.', '_', '-', at most 32 bytes)");
	if (strcmp(kind, "token") == 0)
		return check_token_principal(principal, err);
	if (strcmp(kind, "cert") == 0)
		return strchr(principal, '=')
			       ? 0
			       : field_error(err, "principal",
					     "of a cert mapping must be a certificate subject such "
					     "as O=example,CN=alice");
	return field_error(err, "principal_kind", "must be unix, token or cert");
}

int shd_rbac_envs_literal(const json_t *arr, const char *field, char *out, size_t size,
			  struct shp_error *err)
{
	bool seen[2] = {false, false};
	size_t i, len = 0;
	json_t *v;

	if (!json_is_array(arr))
		return field_error(err, field, "must be an array of environments (test, prod)");
	if (json_array_size(arr) == 0)
		return field_error(err, field, "must name at least one environment");
	if (json_array_size(arr) > 2 || size < 16)
		return field_error(err, field, "names an environment twice");
	out[len++] = '{';
	json_array_foreach(arr, i, v)
	{
		const char *e = json_string_value(v);
		int idx = !e ? -1 : strcmp(e, "test") == 0 ? 0 : strcmp(e, "prod") == 0 ? 1 : -1;

		if (!e)
			return field_error(err, field, "must hold strings");
		if (idx < 0)
			return field_error(err, field, "may hold only 'test' and 'prod'");
		if (seen[idx])
			return field_error(err, field, "names an environment twice");
		seen[idx] = true;
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "", e);
	}
	(void)snprintf(out + len, size - len, "}");
	return 0;
}
