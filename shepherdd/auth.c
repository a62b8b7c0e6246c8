/*
 * Who is calling. On the Unix socket: the peer's uid (SO_PEERCRED), mapped to a user created on
 * first contact from the account name. Over TLS: a bearer token (only its SHA-256 is stored) or a
 * client certificate verified against the configured CA, mapped by its subject. The daemon's own
 * account, root and the configured admins become platform admins when they are first seen.
 * An enabled principal mapping (rbac_mappings) then makes the caller act as its user; the
 * platform-admin flag is read from effective_role_bindings.
 */
#include "config.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <openssl/evp.h>

#include "db.h"
#include "error.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"

/* A unix peer's identity is re-read at most this often on one connection. */
#define IDENT_CACHE_NS (2ull * 1000 * 1000 * 1000)

#define TOKEN_PREFIX "shp_"

const char *shd_auth_method_to_string(enum shd_auth_method m)
{
	switch (m) {
	case SHD_AUTH_UNIX: return "unix";
	case SHD_AUTH_TOKEN: return "token";
	case SHD_AUTH_CERT: return "cert";
	default: return "none";
	}
}

void shd_auth_token_hash(const char *token, unsigned char out[32])
{
	unsigned int len = 32;

	(void)EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

static bool name_is_admin(const struct shd_config *cfg, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(cfg->admins, i,
			   v) if (strcmp(json_string_value(v), name) == 0) return true;
	return false;
}

/* Fill ident from a row (id, name, is_admin, disabled). */
static int ident_from_row(struct shd_identity *ident, PGresult *res, struct shp_error *err)
{
	const char *name = shd_db_value(res, 0, 1);

	if (strcmp(shd_db_value(res, 0, 3), "t") == 0)
		return shp_error_set(err, SHP_E_PERM, "user '%s' is disabled", name);
	ident->user_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(ident->name, sizeof(ident->name), "%s", name);
	ident->is_admin = strcmp(shd_db_value(res, 0, 2), "t") == 0;
	return 0;
}

static const char sql_by_principal[] = "SELECT u.id, u.name, u.is_admin, u.disabled_at IS NOT NULL"
				       "  FROM principals p JOIN users u ON u.id = p.user_id"
				       " WHERE p.kind = $1 AND p.subject = $2";

/* 1 found, 0 not found, <0 error. */
static int lookup_principal(PGconn *db, const char *kind, const char *subject,
			    struct shd_identity *ident, struct shp_error *err)
{
	const char *params[] = {kind, subject};
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(db, sql_by_principal, 2, params, err);
	int r;

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return 0;
	r = ident_from_row(ident, res, err);
	return r < 0 ? r : 1;
}

/*
 * First contact: create the user (or, for a unix account, take the existing user of that name
 * that has no unix account yet) and bind the principal. Races with a concurrent first contact
 * are settled by the unique constraints; the caller looks the principal up again.
 */
static int create_principal(struct shd_req *req, const char *kind, const char *subject,
			    const char *name, bool admin, struct shp_error *err)
{
	PGconn *db = req->db;
	const char *p_user[] = {name, admin ? "true" : "false"};
	_cleanup_(PQclearp) PGresult *ins = NULL;
	_cleanup_(PQclearp) PGresult *sel = NULL;
	const char *user_id;
	bool created;
	int r;

	if (shd_db_begin(db, err) < 0)
		return -err->code;
	ins = shd_db_exec(db,
			  "INSERT INTO users (name, is_admin) VALUES ($1, $2)"
			  " ON CONFLICT (name) DO NOTHING RETURNING id",
			  2, p_user, err);
	if (!ins)
		goto fail;
	created = PQntuples(ins) == 1;
	if (created) {
		user_id = shd_db_value(ins, 0, 0);
	} else {
		sel = shd_db_exec(db,
				  "SELECT u.id, EXISTS (SELECT 1 FROM principals p"
				  "  WHERE p.user_id = u.id AND p.kind = $2)"
				  "  FROM users u WHERE u.name = $1 FOR UPDATE",
				  2, (const char *[]){name, kind}, err);
		if (!sel)
			goto fail;
		if (PQntuples(sel) != 1 || strcmp(kind, "cert") == 0 ||
		    strcmp(shd_db_value(sel, 0, 1), "t") == 0) {
			shd_db_rollback(db);
			return shp_error_set(
				err, SHP_E_UNAUTH,
				"%s identity '%s' cannot be mapped: the user name '%s' "
				"is already taken; a platform admin must map it",
				kind, subject, name);
		}
		user_id = shd_db_value(sel, 0, 0);
	}
	r = shd_db_command(db,
			   "INSERT INTO principals (kind, subject, user_id) VALUES ($1, $2, $3)"
			   " ON CONFLICT (kind, subject) DO NOTHING",
			   3, (const char *[]){kind, subject, user_id}, err);
	if (r < 0)
		goto fail;
	if (created) {
		json_auto_t *details = json_pack("{s:s,s:s,s:b}", "kind", kind, "subject", subject,
						 "is_admin", admin);
		struct shd_req sys = *req;
		(void)snprintf(sys.ident.name, sizeof(sys.ident.name), "%s", "shepherdd");
		sys.ident.user_id = 0;
		r = shd_audit_write(db, &sys, "USER_CREATE", "user", name, "success", details, err);
		if (r < 0)
			goto fail;
	}
	if (shd_db_commit(db, err) < 0)
		goto fail;
	if (created)
		log_info("new user '%s' (%s %s)%s", name, kind, subject,
			 admin ? " is a platform admin" : "");
	return 0;
fail:
	shd_db_rollback(db);
	return -err->code;
}

/* The peer's account name (the principal a unix mapping names) into name[size]. */
static void unix_account_name(uid_t uid, char *name, size_t size)
{
	struct passwd pw, *pwres = NULL;
	char pwbuf[4096];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwres) == 0 && pwres)
		(void)snprintf(name, size, "%s", pw.pw_name);
	else
		(void)snprintf(name, size, "uid-%u", (unsigned)uid);
}

/* key receives the account name, the principal string of unix mappings. */
static int identify_unix(struct shd_req *req, char *key, size_t keysize, struct shp_error *err)
{
	struct shd_conn *c = req->conn;
	struct shd_identity *ident = &req->ident;
	char subject[32], name[129];
	bool admin;
	int r;

	if (!c->has_peer)
		return shp_error_set(err, SHP_E_UNAUTH, "the caller's credentials are unknown");
	(void)snprintf(subject, sizeof(subject), "%u", (unsigned)c->peer_uid);
	unix_account_name(c->peer_uid, name, sizeof(name));
	(void)snprintf(key, keysize, "%s", name);
	memset(ident, 0, sizeof(*ident));
	r = lookup_principal(req->db, "unix", subject, ident, err);
	if (r == 0) {
		admin = c->peer_uid == 0 || c->peer_uid == req->d->owner_uid ||
			name_is_admin(req->d->cfg, name);
		r = create_principal(req, "unix", subject, name, admin, err);
		if (r < 0)
			return r;
		r = lookup_principal(req->db, "unix", subject, ident, err);
		if (r == 0)
			return shp_error_set(err, SHP_E_INTERNAL, "user for uid %s vanished",
					     subject);
	}
	if (r < 0)
		return r;
	ident->method = SHD_AUTH_UNIX;
	(void)snprintf(ident->principal, sizeof(ident->principal), "uid:%s", subject);
	return 0;
}

static bool token_shape_ok(const char *t)
{
	size_t n = strlen(t);

	if (n < strlen(TOKEN_PREFIX) + 20 || n > 128 || strncmp(t, TOKEN_PREFIX, 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* key receives "OWNER/TOKEN_NAME", the principal string of token mappings. */
static int identify_token(struct shd_req *req, const char *token, char *key, size_t keysize,
			  struct shp_error *err)
{
	unsigned char hash[32];
	char hex[65], bytea[70];
	const char *params[1] = {bytea};
	_cleanup_(PQclearp) PGresult *res = NULL;
	int r;

	if (!token_shape_ok(token))
		return shp_error_set(err, SHP_E_UNAUTH, "invalid, expired or revoked token");
	shd_auth_token_hash(token, hash);
	shp_hex_encode(hash, sizeof(hash), hex);
	(void)snprintf(bytea, sizeof(bytea), "\\x%s", hex);
	res = shd_db_exec(
		req->db,
		"SELECT u.id, u.name, u.is_admin, u.disabled_at IS NOT NULL, t.id,"
		"       t.last_used_at IS NULL OR t.last_used_at < now() - interval '60s',"
		"       t.name"
		"  FROM api_tokens t JOIN users u ON u.id = t.user_id"
		" WHERE t.token_hash = $1::bytea AND t.revoked_at IS NULL"
		"   AND (t.expires_at IS NULL OR t.expires_at > now())",
		1, params, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_UNAUTH, "invalid, expired or revoked token");
	r = ident_from_row(&req->ident, res, err);
	if (r < 0)
		return r;
	req->ident.method = SHD_AUTH_TOKEN;
	(void)snprintf(req->ident.principal, sizeof(req->ident.principal), "token:%s",
		       shd_db_value(res, 0, 4));
	(void)snprintf(key, keysize, "%s/%s", shd_db_value(res, 0, 1), shd_db_value(res, 0, 6));
	if (strcmp(shd_db_value(res, 0, 5), "t") == 0) {
		struct shp_error e2 = SHP_ERROR_INIT;
		const char *p2[] = {shd_db_value(res, 0, 4)};
		if (shd_db_command(req->db,
				   "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", 1,
				   p2, &e2) < 0)
			log_warn("recording token use failed, ignoring: %s", e2.msg);
	}
	return 0;
}

/*
 * 1 when an enabled mapping names (kind, principal), else 0; <0 error. A certificate whose
 * subject is mapped needs no user of its own (its common name may be taken).
 */
static int mapping_enabled(PGconn *db, const char *kind, const char *principal,
			   struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(db,
			    "SELECT 1 FROM rbac_mappings WHERE principal_kind = $1"
			    " AND principal = $2 AND enabled",
			    2, (const char *[]){kind, principal}, err);

	if (!res)
		return -err->code;
	return PQntuples(res) > 0;
}

/*
 * 1 identified, 0 no certificate presented, <0 error. key receives the subject (the
 * certificate's DN as GnuTLS writes it, in the certificate's order: "O=example,CN=alice"),
 * the principal string
 * of cert mappings.
 */
static int identify_cert(struct shd_req *req, char *key, size_t keysize, struct shp_error *err)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(req->mhd, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t session;
	const gnutls_datum_t *certs;
	unsigned int ncerts = 0, status = 0;
	gnutls_x509_crt_t crt = NULL;
	char dn[512], cn[129], subject[520];
	size_t dnlen = sizeof(dn), cnlen = sizeof(cn);
	int r;

	if (!ci || !ci->tls_session || !req->d->cfg->tls_client_ca)
		return 0;
	session = ci->tls_session;
	certs = gnutls_certificate_get_peers(session, &ncerts);
	if (!certs || ncerts == 0)
		return 0;
	if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0)
		return shp_error_set(err, SHP_E_UNAUTH, "the client certificate is not trusted");
	if (gnutls_x509_crt_init(&crt) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	r = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER);
	if (r >= 0)
		r = gnutls_x509_crt_get_dn(crt, dn, &dnlen);
	if (r >= 0)
		r = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn,
						  &cnlen);
	gnutls_x509_crt_deinit(crt);
	if (r < 0)
		return shp_error_set(err, SHP_E_UNAUTH,
				     "the client certificate has no usable subject common name");
	for (size_t i = 0; cn[i]; i++)
		if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f)
			return shp_error_set(err, SHP_E_UNAUTH,
					     "the client certificate's common name has control "
					     "characters");
	(void)snprintf(subject, sizeof(subject), "%s", dn);
	r = lookup_principal(req->db, "cert", subject, &req->ident, err);
	if (r == 0)
		r = mapping_enabled(req->db, "cert", subject, err);
	if (r == 0) {
		r = create_principal(req, "cert", subject, cn, name_is_admin(req->d->cfg, cn), err);
		if (r < 0)
			return r;
		r = lookup_principal(req->db, "cert", subject, &req->ident, err);
		if (r == 0)
			return shp_error_set(err, SHP_E_INTERNAL, "certificate user vanished");
	}
	if (r < 0)
		return r;
	req->ident.method = SHD_AUTH_CERT;
	(void)snprintf(req->ident.principal, sizeof(req->ident.principal), "cert:%.150s", subject);
	(void)snprintf(key, keysize, "%s", subject);
	return 1;
}

/*
 * One row: the enabled mapping of (kind, principal) if any, its user if it exists, and whether
 * the user the request acts as (the mapped one, else $3) is a platform-admin.
 */
static const char sql_mapping[] =
	"SELECT m.user_name, u.id, u.name, u.disabled_at IS NOT NULL,"
	"  EXISTS (SELECT 1 FROM effective_role_bindings b"
	"   WHERE b.user_id = coalesce(u.id, $3::bigint) AND b.role = 'platform-admin')"
	" FROM (SELECT 1) AS one"
	" LEFT JOIN rbac_mappings m"
	"  ON m.principal_kind = $1 AND m.principal = $2 AND m.enabled"
	" LEFT JOIN users u ON u.name = m.user_name";

/* A mapping names a user not seen yet: create it, as on first contact. */
static int create_mapped_user(struct shd_req *req, const char *kind, const char *principal,
			      const char *name, struct shp_error *err)
{
	bool admin = name_is_admin(req->d->cfg, name);
	_cleanup_(PQclearp) PGresult *ins = NULL;
	json_auto_t *details = NULL;
	struct shd_req sys = *req;

	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	ins = shd_db_exec(req->db,
			  "INSERT INTO users (name, is_admin) VALUES ($1, $2)"
			  " ON CONFLICT (name) DO NOTHING RETURNING id",
			  2, (const char *[]){name, admin ? "true" : "false"}, err);
	if (ins && PQntuples(ins) == 1) {
		details = json_pack("{s:s,s:s,s:b,s:b}", "kind", kind, "principal", principal,
				    "mapped", true, "is_admin", admin);
		(void)snprintf(sys.ident.name, sizeof(sys.ident.name), "%s", "shepherdd");
		sys.ident.user_id = 0;
		if (shd_audit_write(req->db, &sys, "USER_CREATE", "user", name, "success", details,
				    err) < 0) {
			shd_db_rollback(req->db);
			return -err->code;
		}
		log_info("new user '%s' (mapped from %s principal '%s')", name, kind, principal);
	}
	if (!ins || shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return 0;
}

/*
 * Apply the principal mapping for (kind, principal), if an enabled one exists: the request acts
 * as its user (ident.principal and method stay the caller's). Then settle is_admin from
 * effective_role_bindings.
 */
static int apply_mapping(struct shd_req *req, const char *kind, const char *principal,
			 struct shp_error *err)
{
	struct shd_identity *ident = &req->ident;
	char uid[24];
	const char *user_name;

	for (int attempt = 0; attempt < 2; attempt++) {
		_cleanup_(PQclearp) PGresult *res = NULL;

		(void)snprintf(uid, sizeof(uid), "%lld", (long long)ident->user_id);
		res = shd_db_exec(req->db, sql_mapping, 3, (const char *[]){kind, principal, uid},
				  err);
		if (!res)
			return -err->code;
		user_name = shd_db_value(res, 0, 0);
		if (!user_name && ident->user_id == 0)
			/* a mapped certificate without a user of its own lost its mapping */
			return shp_error_set(err, SHP_E_UNAUTH,
					     "the principal's mapping changed; try again");
		if (!user_name) {
			ident->is_admin = strcmp(shd_db_value(res, 0, 4), "t") == 0;
			return 0;
		}
		if (shd_db_value(res, 0, 1)) {
			if (strcmp(shd_db_value(res, 0, 3), "t") == 0)
				return shp_error_set(err, SHP_E_PERM, "user '%s' is disabled",
						     user_name);
			ident->user_id = strtoll(shd_db_value(res, 0, 1), NULL, 10);
			(void)snprintf(ident->name, sizeof(ident->name), "%s",
				       shd_db_value(res, 0, 2));
			ident->is_admin = strcmp(shd_db_value(res, 0, 4), "t") == 0;
			return 0;
		}
		if (attempt == 0 && create_mapped_user(req, kind, principal, user_name, err) < 0)
			return -err->code;
	}
	return shp_error_set(err, SHP_E_INTERNAL, "mapped user vanished");
}

void shd_auth_invalidate(struct shd_daemon *d)
{
	atomic_fetch_add(&d->auth_generation, 1);
}

/* A unix connection's identity is reused for a short while, unless mappings changed. */
static bool unix_cache_fresh(struct shd_req *req)
{
	const struct shd_conn *c = req->conn;

	return c->ident_cached && c->ident_cached_gen == atomic_load(&req->d->auth_generation) &&
	       shp_now_monotonic_ns() - c->ident_cached_at_ns < IDENT_CACHE_NS;
}

/* The TLS side: a bearer token, else a client certificate. */
static int identify_tls(struct shd_req *req, char *key, size_t keysize, const char **ret_kind,
			struct shp_error *err)
{
	const char *authz = MHD_lookup_connection_value(req->mhd, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_AUTHORIZATION);
	int r;

	if (authz) {
		if (strncasecmp(authz, "Bearer ", 7) != 0)
			return shp_error_set(err, SHP_E_UNAUTH,
					     "only Bearer authorization is supported");
		*ret_kind = "token";
		return identify_token(req, authz + 7, key, keysize, err);
	}
	*ret_kind = "cert";
	r = identify_cert(req, key, keysize, err);
	if (r == 0)
		return shp_error_set(err, SHP_E_UNAUTH,
				     "authentication required: a bearer token or a client "
				     "certificate");
	return r < 0 ? r : 0;
}

int shd_auth_identify(struct shd_req *req, struct shp_error *err)
{
	struct shd_conn *c = req->conn;
	char key[520] = "";
	const char *kind = "unix";
	uint64_t gen;
	int r;

	if (!req->db)
		return shp_error_set(err, SHP_E_INTERNAL, "identifying needs the database");
	if (c->is_unix && unix_cache_fresh(req)) {
		req->ident = c->ident;
		req->authenticated = true;
		return 0;
	}
	gen = atomic_load(&req->d->auth_generation);
	r = c->is_unix ? identify_unix(req, key, sizeof(key), err)
		       : identify_tls(req, key, sizeof(key), &kind, err);
	if (r < 0 || apply_mapping(req, kind, key, err) < 0)
		return -err->code;
	if (c->is_unix) {
		c->ident = req->ident;
		c->ident_cached = true;
		c->ident_cached_at_ns = shp_now_monotonic_ns();
		c->ident_cached_gen = gen;
	}
	req->authenticated = true;
	return 0;
}
