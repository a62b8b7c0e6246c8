/*
 * GET /api/v1/vms/{name}/vnc: the console session. Before the 101, the token (in a header,
 * never the URL) is opened and checked (the caller is its subject, it has not expired, the VM
 * is still visible and is the token's), then consumed once in PostgreSQL, and the provider's
 * console is opened. The session then copies bytes both ways (this thread viewer to VM, one
 * more thread VM to viewer) until either side ends, the session is idle for
 * console.idle_timeout or runs for console.session_max; its row and the audit rows
 * VNC_SESSION_STARTED / VNC_SESSION_ENDED carry the user, the VM and the bytes.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "error.h"
#include "log.h"
#include "provider.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

#define CHUNK (64u * 1024)    /* bytes copied per read */
#define POLL_MS 200           /* each direction looks at the others this often */
#define OPEN_TIMEOUT_MS 15000 /* the provider's console must open within this */

struct session {
	struct shd_daemon *d;
	struct shd_provider *p; /* a reference */
	struct shd_console_stream *stream;
	struct shd_ws_conn *ws;
	struct shd_req who; /* ident and request id only: the actor of the audit rows */
	int64_t id;         /* console_sessions.id */
	char ns[64], name[64], jti[33];
	uint64_t started_ns;
	_Atomic uint64_t last_ns; /* the last byte either way */
	atomic_ullong bytes_in;   /* viewer to VM */
	atomic_ullong bytes_out;  /* VM to viewer */
	atomic_bool stop;
	_Atomic(const char *) reason; /* the first end wins (a static string) */
};

static void session_free(void *cls)
{
	struct session *s = cls;

	if (!s)
		return;
	if (s->stream)
		s->p->console.ops->close(s->stream);
	shd_provider_unref(s->p);
	free(s);
}

/* Record why the session ends (the first reason stays) and tell both directions to stop. */
static void session_end(struct session *s, const char *reason)
{
	const char *none = NULL;

	(void)atomic_compare_exchange_strong(&s->reason, &none, reason);
	atomic_store(&s->stop, true);
}

/* Idle or too long: checked by both directions between reads. */
static bool session_expired(struct session *s)
{
	uint64_t now = shp_now_monotonic_ns();
	const struct shd_config *cfg = s->d->cfg;

	if (now - atomic_load(&s->last_ns) >= (uint64_t)cfg->console_idle_timeout_s * 1000000000u)
		session_end(s, "idle_timeout");
	else if (now - s->started_ns >= (uint64_t)cfg->console_session_max_s * 1000000000u)
		session_end(s, "session_limit");
	else if (atomic_load(&s->d->shutting_down))
		session_end(s, "shutdown");
	return atomic_load(&s->stop);
}

/* VM to viewer, on a thread of its own. */
static void *vm_to_viewer(void *arg)
{
	struct session *s = arg;
	_cleanup_free_ char *buf = malloc(CHUNK);
	struct shp_error err = SHP_ERROR_INIT;

	while (buf && !session_expired(s)) {
		long n = s->p->console.ops->read(s->stream, buf, CHUNK, POLL_MS, &err);

		if (n == -SHP_E_TIMEOUT)
			continue;
		if (n <= 0) {
			session_end(s, n == 0 ? "console_closed" : "error");
			break;
		}
		if (shd_ws_conn_write(s->ws, SHD_WS_BINARY, buf, (size_t)n, &err) < 0) {
			session_end(s, "viewer_closed");
			break;
		}
		atomic_fetch_add(&s->bytes_out, (unsigned long long)n);
		atomic_store(&s->last_ns, shp_now_monotonic_ns());
	}
	if (!buf)
		session_end(s, "error");
	return NULL;
}

/* Viewer to VM, on the session's thread. */
static void viewer_to_vm(struct session *s)
{
	_cleanup_free_ char *buf = malloc(CHUNK);
	struct shp_error err = SHP_ERROR_INIT;
	unsigned op = 0;

	while (buf && !session_expired(s)) {
		long n = shd_ws_conn_read(s->ws, buf, CHUNK, &op, POLL_MS, &err);

		if (n == -SHP_E_TIMEOUT)
			continue;
		if (n <= 0) {
			session_end(s, n == 0 ? "viewer_closed" : "error");
			break;
		}
		if (s->p->console.ops->write(s->stream, buf, (size_t)n, &err) < 0) {
			session_end(s, "console_closed");
			break;
		}
		atomic_fetch_add(&s->bytes_in, (unsigned long long)n);
		atomic_store(&s->last_ns, shp_now_monotonic_ns());
	}
	if (!buf)
		session_end(s, "error");
}

/* The session row's end and VNC_SESSION_ENDED, on a pooled connection. */
static void session_record_end(struct session *s)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *db = shd_dbpool_get(s->d->pool, &err);
	char id[24], in[24], out[24];
	const char *reason = atomic_load(&s->reason) ? atomic_load(&s->reason) : "error";
	json_auto_t *d = NULL;

	(void)snprintf(id, sizeof(id), "%" PRId64, s->id);
	(void)snprintf(in, sizeof(in), "%llu", (unsigned long long)atomic_load(&s->bytes_in));
	(void)snprintf(out, sizeof(out), "%llu", (unsigned long long)atomic_load(&s->bytes_out));
	d = json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "session_id", (json_int_t)s->id, "jti",
		      s->jti, "namespace", s->ns, "vm", s->name, "end_reason", reason, "bytes_in",
		      (json_int_t)atomic_load(&s->bytes_in), "bytes_out",
		      (json_int_t)atomic_load(&s->bytes_out), "duration_ms",
		      (json_int_t)((shp_now_monotonic_ns() - s->started_ns) / 1000000u));
	if (!db || shd_db_begin(db, &err) < 0 ||
	    shd_db_command(db,
			   "UPDATE console_sessions SET ended_at = now(), end_reason = $2,"
			   " bytes_in = $3, bytes_out = $4 WHERE id = $1 AND ended_at IS NULL",
			   4, (const char *[]){id, reason, in, out}, &err) < 0 ||
	    shd_audit_write(db, &s->who, "VNC_SESSION_ENDED", "vm", s->name, "success", d, &err) <
		    0 ||
	    shd_db_commit(db, &err) < 0) {
		if (db)
			shd_db_rollback(db);
		log_error("console session %" PRId64 " of VM '%s/%s': its end is not recorded: %s",
			  s->id, s->ns, s->name, err.msg);
	}
	if (db)
		shd_dbpool_put(s->d->pool, db);
	log_info("console session %" PRId64 " of VM '%s/%s' by '%s' ended (%s): %s bytes in, %s "
		 "out",
		 s->id, s->ns, s->name, s->who.ident.name, reason, in, out);
}

static void session_run(struct shd_ws_conn *c, void *cls)
{
	struct session *s = cls;
	pthread_t t;
	bool threaded;

	s->ws = c;
	s->started_ns = shp_now_monotonic_ns();
	atomic_store(&s->last_ns, s->started_ns);
	threaded = pthread_create(&t, NULL, vm_to_viewer, s) == 0;
	if (threaded)
		viewer_to_vm(s);
	else
		session_end(s, "error");
	if (threaded)
		(void)pthread_join(t, NULL);
	shd_ws_conn_close(c, 1000, atomic_load(&s->reason) ? atomic_load(&s->reason) : "");
	session_record_end(s);
}

/* ---- before the 101 ------------------------------------------------------------------------ */

/* Why the single-use marker was not set: replayed, expired, or not a token we issued. */
static int consume_refused(PGconn *db, const char *jti, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(db,
			    "SELECT used_at IS NOT NULL, expires_at <= now() FROM console_tokens"
			    " WHERE jti = $1",
			    1, (const char *[]){jti}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_INVAL, "console token is not valid: it was never issued");
		shp_error_api_code(err, "TOKEN_INVALID");
		return -SHP_E_INVAL;
	}
	if (shp_streq(shd_db_value(res, 0, 0), "t")) {
		shp_error_set(err, SHP_E_CONFLICT,
			      "this console token was used already: each opens one connection "
			      "(get a new one)");
		shp_error_api_code(err, "TOKEN_REPLAYED");
		return -SHP_E_CONFLICT;
	}
	shp_error_set(err, SHP_E_PERM, "this console token expired");
	shp_error_api_code(err, "TOKEN_EXPIRED");
	return -SHP_E_PERM;
}

/*
 * Set the token's single-use marker: one statement, so two replicas racing for the same token
 * cannot both win. Committed at once (no transaction is open on req->db).
 */
static int consume(struct shd_req *req, const struct shd_console_claims *c, struct shp_error *err)
{
	char from[256];
	_cleanup_(PQclearp) PGresult *res = NULL;

	(void)snprintf(from, sizeof(from), "%s %s",
		       req->conn && req->conn->is_unix ? "unix" : "tls", req->ident.principal);
	res = shd_db_exec(req->db,
			  "UPDATE console_tokens SET used_at = now(), used_from = $2"
			  " WHERE jti = $1 AND used_at IS NULL AND expires_at > now() RETURNING 1",
			  2, (const char *[]){c->jti, from}, err);
	if (!res)
		return -err->code;
	return PQntuples(res) == 1 ? 0 : consume_refused(req->db, c->jti, err);
}

/* The token from its header, opened and checked against the caller and the VM. */
static int token_claims(struct shd_req *req, const struct shd_console_vm *v,
			struct shd_console_claims *c, struct shp_error *err)
{
	const char *token = shd_req_header(req, SHD_CONSOLE_TOKEN_HEADER);

	if (!token || !token[0]) {
		shp_error_set(err, SHP_E_UNAUTH, "a console token is needed in header %s",
			      SHD_CONSOLE_TOKEN_HEADER);
		shp_error_api_code(err, "TOKEN_REQUIRED");
		return -SHP_E_UNAUTH;
	}
	if (shd_console_token_open(req->d->console_keys, token, c, err) < 0 ||
	    shd_console_claims_check(c, req->ident.user_id, (int64_t)time(NULL), err) < 0)
		return -err->code;
	if (c->vm_id != v->id) {
		shp_error_set(err, SHP_E_INVAL, "console token is not valid: it is for another VM");
		shp_error_api_code(err, "TOKEN_INVALID");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* The session row and VNC_SESSION_STARTED, committed before the 101. */
static int session_record_start(struct shd_req *req, struct session *s,
				const struct shd_console_vm *v, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], vid[24], from[256];
	json_auto_t *d = NULL;

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(vid, sizeof(vid), "%" PRId64, v->id);
	(void)snprintf(from, sizeof(from), "%s %s",
		       req->conn && req->conn->is_unix ? "unix" : "tls", req->ident.principal);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db,
			  "INSERT INTO console_sessions (jti, user_id, user_name, vm_id, namespace,"
			  " vm_name, cluster, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
			  " RETURNING id",
			  8,
			  (const char *[]){s->jti, uid, req->ident.name, vid, v->ns, v->name,
					   v->cluster, from},
			  err);
	if (res)
		s->id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	d = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "session_id", (json_int_t)s->id, "jti", s->jti,
		      "namespace", v->ns, "vm", v->name, "cluster", v->cluster, "source", from);
	if (!res ||
	    shd_audit_write(req->db, req, "VNC_SESSION_STARTED", "vm", v->name, "success", d, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return 0;
}

/* The provider's console of the VM, into s. */
static int open_console(struct shd_req *req, struct session *s, const struct shd_console_vm *v,
			struct shp_error *err)
{
	s->p = shd_providers_get(req->d->providers, v->cluster_id, err);
	if (!s->p)
		return -err->code;
	if (!s->p->console.ops) {
		shp_error_set(err, SHP_E_CONFLICT, "cluster '%s' has no VNC console", v->cluster);
		return -SHP_E_CONFLICT;
	}
	return s->p->console.ops->open_vnc(
		s->p->console.impl, v->ns, v->name, &s->stream,
		shp_now_monotonic_ns() + (uint64_t)OPEN_TIMEOUT_MS * 1000000u, err);
}

/*
 * A refused token (missing, invalid, another user's, expired, replayed): VNC_SESSION_DENIED
 * with the code and, when the token opened, its jti and subject; never the token.
 */
static void audit_denied(struct shd_req *req, const struct shd_console_vm *v,
			 const struct shd_console_claims *c, const struct shp_error *why)
{
	struct shp_error e = SHP_ERROR_INIT;
	json_auto_t *d = json_pack("{s:s,s:s,s:s}", "code", shp_error_api_code_of(why), "namespace",
				   v->ns, "vm", v->name);

	if (c->jti[0]) {
		(void)json_object_set_new(d, "jti", json_string(c->jti));
		(void)json_object_set_new(d, "issued_to", json_integer(c->sub));
	}
	if (shd_audit_write(req->db, req, "VNC_SESSION_DENIED", "vm", v->name, "denied", d, &e) < 0)
		log_warn("a refused console connection to '%s/%s' is not audited: %s", v->ns,
			 v->name, e.msg);
}

/* The upgrade was refused after the session row was written (the sessions cap): end it. */
static void session_refused(struct shd_req *req, int64_t id, const struct shd_console_vm *v,
			    const struct shp_error *why)
{
	struct shp_error e = SHP_ERROR_INIT;
	char ids[24];
	json_auto_t *d = json_pack("{s:I,s:s,s:s,s:s,s:I,s:I,s:s}", "session_id", (json_int_t)id,
				   "namespace", v->ns, "vm", v->name, "end_reason", "error",
				   "bytes_in", (json_int_t)0, "bytes_out", (json_int_t)0, "error",
				   shp_error_api_code_of(why));

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (shd_db_command(req->db,
			   "UPDATE console_sessions SET ended_at = now(), end_reason = 'error'"
			   " WHERE id = $1 AND ended_at IS NULL",
			   1, (const char *[]){ids}, &e) < 0 ||
	    shd_audit_write(req->db, req, "VNC_SESSION_ENDED", "vm", v->name, "failed", d, &e) < 0)
		log_warn("console session %" PRId64 ": its refused upgrade is not recorded: %s", id,
			 e.msg);
}

static struct session *session_new(struct shd_req *req, const struct shd_console_claims *c)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->d = req->d;
	s->who.ident = req->ident;
	(void)snprintf(s->who.request_id, sizeof(s->who.request_id), "%s", req->request_id);
	(void)snprintf(s->jti, sizeof(s->jti), "%s", c->jti);
	(void)snprintf(s->ns, sizeof(s->ns), "%s", c->ns);
	(void)snprintf(s->name, sizeof(s->name), "%s", c->name);
	return s;
}

int shd_api_console_vnc(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shd_console_vm v = {0};
	struct shd_console_claims c = {0};
	struct session *s;
	int64_t id;

	if (!shd_ws_is_upgrade(req)) {
		shp_error_set(err, SHP_E_INVAL,
			      "the VNC console is a WebSocket: upgrade with subprotocol %s",
			      SHD_CONSOLE_PROTOCOL);
		shp_error_api_code(err, "UPGRADE_REQUIRED");
		return -SHP_E_INVAL;
	}
	if (shd_console_vm_find(req, req->db, &v, err) < 0)
		return -err->code;
	if (token_claims(req, &v, &c, err) < 0 || consume(req, &c, err) < 0) {
		audit_denied(req, &v, &c, err);
		return -err->code;
	}
	s = session_new(req, &c);
	if (!s)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (open_console(req, s, &v, err) < 0 || session_record_start(req, s, &v, err) < 0) {
		session_free(s);
		return -err->code;
	}
	id = s->id;
	if (shd_ws_accept(req, resp, SHD_CONSOLE_PROTOCOL, session_run, s, session_free, err) < 0) {
		session_refused(req, id, &v, err); /* s is freed: its row ends here */
		return -err->code;
	}
	log_info("console session of VM '%s/%s' by '%s' started", v.ns, v.name, req->ident.name);
	return 0;
}
