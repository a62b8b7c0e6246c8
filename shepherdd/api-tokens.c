/*
 * Bearer tokens for clients over TLS (CI scripts): create (shown once, stored as SHA-256),
 * list, revoke. A user manages their own; a platform admin manages anyone's and may create a
 * token for a user that does not exist yet (a service account).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"

#define TOKEN_BYTES 32
#define TOKEN_MAX_LIFETIME_S (366LL * 86400)
#define TOKEN_DEFAULT_LIFETIME "90d"

static const struct shd_col token_cols[] = {
	{"id", COL_INT},
	{"name", COL_TEXT},
	{"user", COL_TEXT},
	{"prefix", COL_TEXT},
	{"created_at", COL_TIME},
	{"expires_at", COL_TIME},
	{"last_used_at", COL_TIME},
	{"revoked_at", COL_TIME},
};
#define NCOLS ((int)SHP_ARRAY_SIZE(token_cols))

#define TOKEN_SELECT                                                                               \
	"SELECT t.id, t.name, u.name, t.prefix, t.created_at, t.expires_at, t.last_used_at,"       \
	" t.revoked_at"

static bool token_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* "shp_" + 43 base64url characters of 32 random bytes. */
static int new_token(char out[64], struct shp_error *err)
{
	unsigned char raw[TOKEN_BYTES];
	unsigned char b64[48];
	int len;

	if (shp_random_bytes(raw, sizeof(raw), err) < 0)
		return -err->code;
	len = EVP_EncodeBlock(b64, raw, sizeof(raw));
	explicit_bzero(raw, sizeof(raw));
	while (len > 0 && b64[len - 1] == '=')
		len--;
	for (int i = 0; i < len; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	(void)snprintf(out, 64, "shp_%.*s", len, (const char *)b64);
	explicit_bzero(b64, sizeof(b64));
	return 0;
}

/* The target user's id: the caller, or (admins) any user, created if missing. */
static int target_user(struct shd_req *req, const char *user, char id[24], bool *created,
		       struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	*created = false;
	if (!user || strcmp(user, req->ident.name) == 0) {
		(void)snprintf(id, 24, "%lld", (long long)req->ident.user_id);
		return 0;
	}
	if (shd_req_require_admin(req, err) < 0)
		return shp_error_set(err, SHP_E_PERM,
				     "only a platform admin can create tokens for another user");
	if (strlen(user) > 128 || shd_validate_text("user", user, 128, err) < 0 || !*user)
		return shp_error_set(err, SHP_E_INVAL, "field 'user' is not a valid user name");
	res = shd_db_exec(req->db,
			  "WITH ins AS (INSERT INTO users (name) VALUES ($1)"
			  "  ON CONFLICT (name) DO NOTHING RETURNING id)"
			  " SELECT id, true FROM ins UNION ALL"
			  " SELECT id, false FROM users WHERE name = $1",
			  1, (const char *[]){user}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) < 1)
		return shp_error_set(err, SHP_E_INTERNAL, "user '%s' could not be created", user);
	(void)snprintf(id, 24, "%s", shd_db_value(res, 0, 0));
	*created = strcmp(shd_db_value(res, 0, 1), "t") == 0;
	return 0;
}

static const char *const token_fields[] = {"name", "user", "expires_in", NULL};

int shd_api_tokens_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, token_fields, err);
	const char *name = NULL, *user = NULL, *expires = TOKEN_DEFAULT_LIFETIME;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char token[64] = "", hex[65], bytea[70], prefix[16], uid[24], secs[24], caller[24];
	unsigned char hash[32];
	json_auto_t *obj = NULL;
	int64_t lifetime = 0;
	bool created = false;

	if (!body || shp_json_get_string(body, "name", true, 256, &name, err) < 0 ||
	    shp_json_get_string(body, "user", false, 256, &user, err) < 0 ||
	    shp_json_get_string(body, "expires_in", false, 32, &expires, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.63s", name);
	if (!token_name_ok(name)) {
		shp_error_set(err, SHP_E_INVAL,
			      "field 'name' must be 1-63 characters of letters, digits, '.', '_' "
			      "and '-'");
		shp_error_detail(err, "field", "name");
		return -SHP_E_INVAL;
	}
	if (strcmp(expires, "never") != 0 && (shp_parse_duration(expires, &lifetime, err) < 0 ||
					      lifetime <= 0 || lifetime > TOKEN_MAX_LIFETIME_S)) {
		shp_error_set(err, SHP_E_INVAL,
			      "field 'expires_in' must be a duration up to 366d (e.g. 30d) or "
			      "'never'");
		shp_error_detail(err, "field", "expires_in");
		return -SHP_E_INVAL;
	}
	(void)snprintf(caller, sizeof(caller), "%lld", (long long)req->ident.user_id);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (target_user(req, user, uid, &created, err) < 0)
		goto fail;
	if (new_token(token, err) < 0)
		goto fail;
	shd_auth_token_hash(token, hash);
	shp_hex_encode(hash, sizeof(hash), hex);
	(void)snprintf(bytea, sizeof(bytea), "\\x%s", hex);
	(void)snprintf(prefix, sizeof(prefix), "%.12s", token);
	(void)snprintf(secs, sizeof(secs), "%lld", (long long)lifetime);
	res = shd_db_exec(
		req->db,
		"WITH t AS (INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_by,"
		"  expires_at) VALUES ($1, $2, $3::bytea, $4, $5,"
		"  CASE WHEN $6::bigint > 0 THEN now() + make_interval(secs => $6::bigint) END)"
		"  RETURNING *) " TOKEN_SELECT " FROM t JOIN users u ON u.id = t.user_id",
		6, (const char *[]){uid, name, bytea, prefix, caller, secs}, err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT)
			shp_error_set(err, SHP_E_CONFLICT,
				      "an active token named '%s' already exists for that user",
				      name);
		goto fail;
	}
	obj = shd_row_to_json(res, 0, token_cols, NCOLS);
	if (!obj) {
		shp_error_set(err, SHP_E_INTERNAL, "unreadable token row");
		goto fail;
	}
	(void)json_object_set_new(obj, "user_created", json_boolean(created));
	if (shd_audit_write(req->db, req, "TOKEN_CREATE", "token", name, "success", obj, err) < 0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	/* the only time the token leaves the daemon */
	(void)json_object_set_new(obj, "token", json_string(token));
	explicit_bzero(token, sizeof(token));
	return shd_resp_json_take(resp, 201, TAKE_PTR(obj));
fail:
	explicit_bzero(token, sizeof(token));
	shd_db_rollback(req->db);
	return -err->code;
}

int shd_api_tokens_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	const char *cursor = shd_req_query(req, "cursor");
	const char *user = shd_req_query(req, "user");
	const char *all = shd_req_query(req, "all");
	bool everyone = all && strcmp(all, "true") == 0;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char limit_s[16], self[24];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if ((everyone || (user && strcmp(user, req->ident.name) != 0)) &&
	    shd_req_require_admin(req, err) < 0)
		return shp_error_set(err, SHP_E_PERM,
				     "only a platform admin can list other users' tokens");
	if (cursor && shd_cursor_decode(cursor, &cur, err) < 0)
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	(void)snprintf(self, sizeof(self), "%lld", (long long)req->ident.user_id);
	res = shd_db_exec(req->db,
			  TOKEN_SELECT
			  " FROM api_tokens t JOIN users u ON u.id = t.user_id"
			  " WHERE t.id > coalesce($1::bigint, 0)"
			  "   AND ($3::boolean OR ($4::text IS NULL AND t.user_id = $5::bigint)"
			  "        OR u.name = $4)"
			  " ORDER BY t.id LIMIT $2::int + 1",
			  5,
			  (const char *[]){cursor ? cur.buf : NULL, limit_s,
					   everyone ? "true" : "false", user, self},
			  err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, token_cols, NCOLS, limit, 0, err);
}

int shd_api_tokens_revoke(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *id = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *obj = NULL;
	long long v;
	char self[24];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.63s", id);
	if (shp_parse_int(id, 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "token '%.40s' not found", id);
	(void)snprintf(self, sizeof(self), "%lld", (long long)req->ident.user_id);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	/* someone else's token is "not found" to a non-admin: existence is not revealed */
	res = shd_db_exec(
		req->db,
		"WITH t AS (UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
		"  WHERE id = $1::bigint AND ($2::boolean OR user_id = $3::bigint)"
		"  RETURNING *) " TOKEN_SELECT " FROM t JOIN users u ON u.id = t.user_id",
		3, (const char *[]){id, req->ident.is_admin ? "true" : "false", self}, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return shp_error_set(err, SHP_E_NOTFOUND, "token '%s' not found", id);
	}
	obj = shd_row_to_json(res, 0, token_cols, NCOLS);
	if (shd_audit_write(req->db, req, "TOKEN_REVOKE", "token", shd_db_value(res, 0, 1),
			    "success", obj, err) < 0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	return shd_resp_row(resp, 200, res, token_cols, NCOLS, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}
