/*
 * Pure checks of the platform-role and principal-mapping API's input (rbac-check.c): role and
 * kind names, principal strings, user names and allowed_environments lists. No database.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cleanup.h"

struct shp_error;

/* "platform-admin", "approver", "operator" or "viewer". */
bool shd_rbac_role_is_valid(const char *role);
/* A team role: "owner", "member" or "viewer". */
bool shd_rbac_team_role_is_valid(const char *role);

/*
 * A user name as the API takes it: 1..128 bytes of UTF-8 without control characters and
 * without leading or trailing spaces. SHP_E_INVAL naming field.
 */
int shd_rbac_check_user_name(const char *field, const char *name,
			     struct shp_error *err) SHP_MUSTCHECK;

/*
 * A principal string of a kind (unix, token, cert), as authentication builds them:
 *   unix   the account name: 1..32 bytes of [A-Za-z0-9._-], not starting with '-'
 *   token  "OWNER/TOKEN_NAME": the token owner's user name, '/', the token's name (1..63);
 *          the last '/' separates them
 *   cert   the certificate subject as GnuTLS writes it (attributes in the certificate's order,
 *          "O=example,CN=alice"): 1..512 bytes with at least one '='
 * No control characters anywhere. SHP_E_INVAL naming the field.
 */
int shd_rbac_check_principal(const char *kind, const char *principal,
			     struct shp_error *err) SHP_MUSTCHECK;

/*
 * An allowed_environments JSON array: 1..2 distinct strings, each "test" or "prod". Writes the
 * PostgreSQL array literal ("{test,prod}", in the order given) to out (>= 16 bytes).
 * SHP_E_INVAL naming field for anything else (not an array, empty, a duplicate, a wrong type,
 * an unknown environment).
 */
int shd_rbac_envs_literal(const json_t *arr, const char *field, char *out, size_t size,
			  struct shp_error *err) SHP_MUSTCHECK;
