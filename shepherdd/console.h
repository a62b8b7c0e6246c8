/*
 * The VNC console: single-use tokens sealed with the cluster-credential key (console-token.c,
 * pure), the grants a VNC_ACCESS approval creates (console-grant.c), the API that issues
 * tokens and takes requests (api-console.c) and the proxied session (console-proxy.c). The
 * walk-through is docs/internals/console.md; the schema is schema/0009_console.up.sql.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;
struct shd_secretbox;

#define SHD_CONSOLE_TTL_MAX_S 7200 /* a token or a grant: at most 2 hours */
#define SHD_CONSOLE_KEYS_MAX 8     /* the current key and up to 7 previous ones */
#define SHD_CONSOLE_TOKEN_MAX 2048 /* the longest token accepted, in characters */
#define SHD_CONSOLE_TOKEN_HEADER "X-Shepherd-Console-Token"
#define SHD_CONSOLE_PROTOCOL "vnc.shepherd.io"
#define SHD_CONSOLE_TOKEN_PREFIX "shvnc1."

/* ---- keys (console-token.c) -------------------------------------------------------------- */

/* The current key (seals) and the previous ones (still open). Immutable once made. */
struct shd_console_keys;

/*
 * Take ownership of boxes[0] (the current key) and boxes[1..n-1] (previous keys), n >= 1 and
 * <= SHD_CONSOLE_KEYS_MAX; on failure every box is freed. NULL only when out of memory.
 */
struct shd_console_keys *shd_console_keys_new(struct shd_secretbox **boxes, size_t n);
/*
 * The current key from current_path (shd_secretbox_load: created 0600 when absent) and the
 * previous ones from previous, a comma-separated list of key files (NULL or "" for none;
 * each must exist). Errors name the file, never the key.
 */
struct shd_console_keys *shd_console_keys_load(const char *current_path, const char *previous,
					       struct shp_error *err);
struct shd_console_keys *shd_console_keys_free(struct shd_console_keys *k);
SHP_DEFINE_CLEANUP(struct shd_console_keys *, shd_console_keys_free)
/* The current key's id (borrowed). */
const char *shd_console_keys_current_id(const struct shd_console_keys *k);

/* ---- tokens (console-token.c, pure) ------------------------------------------------------ */

/* What a token says; every field is inside the sealed blob. */
struct shd_console_claims {
	char jti[33];  /* 32 hex characters: the single-use marker's key */
	int64_t sub;   /* the user's id: only they may use it */
	int64_t vm_id; /* vms.id */
	char ns[64];   /* the VM's namespace and name, when it was issued */
	char name[64];
	int64_t iat;    /* issued at, Unix seconds */
	int64_t exp;    /* expires at, Unix seconds: iat < exp <= iat + 2 h */
	char key_id[9]; /* set by open: the key that sealed it */
};

/*
 * Seal c (jti, sub, vm_id, ns, name, iat, exp) with the current key: *ret is an owned
 * NUL-terminated token "shvnc1.KEYID.HEX". SHP_E_INVAL for claims out of bounds.
 */
int shd_console_token_seal(const struct shd_console_keys *k, const struct shd_console_claims *c,
			   char **ret, struct shp_error *err) SHP_MUSTCHECK;
/*
 * Open a token with the key its id names (current or previous) and read its claims. Every
 * failure (malformed, unknown key id, altered, claims missing or out of bounds) is SHP_E_INVAL
 * with API code TOKEN_INVALID and a message that never quotes the token.
 */
int shd_console_token_open(const struct shd_console_keys *k, const char *token,
			   struct shd_console_claims *ret, struct shp_error *err) SHP_MUSTCHECK;
/*
 * The checks on opened claims before a connection: sub must be user_id (SHP_E_PERM,
 * TOKEN_NOT_YOURS), now (Unix seconds) before exp (SHP_E_PERM, TOKEN_EXPIRED) and not before
 * iat by more than a minute of clock skew (TOKEN_INVALID).
 */
int shd_console_claims_check(const struct shd_console_claims *c, int64_t user_id, int64_t now,
			     struct shp_error *err) SHP_MUSTCHECK;

/* ---- grants (console-grant.c) ------------------------------------------------------------ */

/*
 * Record the grant a VNC_ACCESS request asks for, in the caller's transaction. payload is the
 * request's ({"vm": {"id", ...}, "spec": {"duration_s", "reason"}}); ticket_id 0 when the
 * policy let it through without a ticket; max_duration_s > 0 shortens it (an approver's
 * choice). The requester gets a VNC_ACCESS_GRANTED notification.
 */
int shd_console_grant_create(PGconn *conn, int64_t ticket_id, const json_t *payload,
			     int max_duration_s, int64_t requester_id, const char *granted_by,
			     struct shp_error *err) SHP_MUSTCHECK;

/*
 * The periodic job console.cleanup (@every 1h): deletes single-use token markers that expired
 * more than a day ago, SHD_CONSOLE_CLEANUP_BATCH rows a statement. Grants and sessions stay as
 * records. Registered on q before it starts.
 */
#define SHD_CONSOLE_CLEANUP_KIND "console.cleanup"
#define SHD_CONSOLE_CLEANUP_BATCH 1000
struct shd_queue;
int shd_console_register(struct shd_queue *q, struct shp_error *err) SHP_MUSTCHECK;

/* ---- the VM a console request names (api-console.c) --------------------------------------- */

struct shd_req;
struct shd_resp;

struct shd_console_vm {
	int64_t id, cluster_id;
	char ns[64], name[64], system[64], service[64], cluster[64];
	int env;       /* 0 test, 1 prod */
	char role[16]; /* the caller's role in the VM's system */
	bool cross;    /* operator or platform-admin of the VM's environment */
};

/*
 * The VM named by the path ({name}, ?namespace=) that the caller may see and act on: an owner
 * or member of its system, or an operator or platform admin of its environment. A VM they may
 * not see is SHP_E_NOTFOUND (and an RBAC_VIOLATION audit row when it exists); a viewer's is
 * SHP_E_PERM; a name in several namespaces SHP_E_CONFLICT AMBIGUOUS_NAME. Uses conn.
 */
int shd_console_vm_find(struct shd_req *req, PGconn *conn, struct shd_console_vm *ret,
			struct shp_error *err) SHP_MUSTCHECK;
