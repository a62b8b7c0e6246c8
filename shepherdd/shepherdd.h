/*
 * shepherdd's internal header: the configuration, the daemon context, requests and responses,
 * the route table and the handlers. Each area (config, server, router, auth, metrics, api-*)
 * declares its functions here in its own section.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "cleanup.h"
#include "log.h"

struct shp_error;
struct shd_dbpool;
struct shd_metrics;
struct shd_exec_engine;
struct shd_sse_hub;
struct shd_ws_hub;
struct shd_ws_conn;
struct shd_providers;
struct shd_console_keys;
struct shd_watcher;
struct shd_health;
struct shd_ratelimit;
struct MHD_Connection;
struct MHD_Response;

/* ---- config.c ------------------------------------------------------------------------------ */

/* Immutable after load; owned by main for the daemon's life. */
struct shd_config {
	char *config_path; /* the file read, or NULL */
	char *state_dir;
	char *schema_dir;
	char *seed_dir; /* the seed catalogue, imported once (catalog.c) */

	char *socket_path;
	unsigned socket_mode;
	char *socket_group;

	char *tls_listen; /* "host:port", NULL = no TLS listener */
	char *tls_cert;
	char *tls_key;
	char *tls_client_ca;

	char *database_url; /* NULL = embedded PostgreSQL */
	int db_pool_size;
	int db_checkout_timeout_ms;
	int db_statement_timeout_ms;
	int db_lock_timeout_ms;
	int db_idle_in_tx_timeout_ms;

	char *pg_bindir;
	char *pg_user;
	int pg_start_timeout_ms;

	int http_threads;
	uint64_t http_body_limit;
	uint64_t http_header_limit;
	int http_connection_timeout_s;
	int http_max_connections;
	int http_max_streams;
	int websocket_sessions; /* upgraded API connections at once; 0 refuses upgrades */

	bool exec_enabled;
	int exec_immediate_max_ms;
	int exec_dedupe_window_s;
	int approvals_ttl_s; /* a ticket pending approval expires after this long */
	int batch_max_items; /* children of one batch (batch.md) */
	int rl_api_rate;     /* mutating API requests a second (token bucket), 0 = off */
	int rl_api_burst;
	int rl_global_pending_batches; /* open batches of everybody, 0 = off */
	int rl_user_pending_batches;   /* per user (rate_limit_overrides may say otherwise) */
	int rl_user_pending_children;
	int rl_user_cooldown_s;
	char *notify_sender;        /* notifications.sender: the channel (V1: "inbox") */
	int notify_retention_days;  /* notifications older than this are deleted */
	int notify_status_window_s; /* a VM's status changes within this tell its owner once */

	int queue_workers;
	int queue_fetch_batch;
	int queue_poll_interval_ms;
	int queue_shutdown_grace_ms;
	int queue_retry_base_ms;

	char *provider_key_file; /* the key sealing cluster credentials */
	int provider_max_inflight;
	int provider_timeout_ms;

	int console_token_ttl_s;          /* a console token lives this long (<= 2 h) */
	char *console_previous_key_files; /* comma-separated: keys whose tokens still open */
	int console_idle_timeout_s;       /* a console session with no bytes either way ends */
	int console_session_max_s;        /* and any session ends after this long */

	int reconcile_interval_s;
	char *reconcile_mode; /* "dry-run" or "mark" */
	int adoption_interval_s;
	int health_interval_s;      /* the cluster health job's period */
	int watch_scan_interval_ms; /* the watcher looks for new clusters this often */
	enum shp_log_level log_level;
	enum shp_log_format log_format;

	json_t *admins; /* array of user names made platform admins on first contact */
};

/*
 * Build the configuration: defaults, then the YAML file (explicit path, or the default one if it
 * exists), then SHEPHERD_* environment variables, then flags (argv: the options shepherdd
 * accepts; *ret_argi is the index of the first non-option argument).
 * Help and version are handled by the caller before this.
 */
struct shd_config *shd_config_load(int argc, char **argv, int *ret_argi, struct shp_error *err);
struct shd_config *shd_config_free(struct shd_config *cfg);
SHP_DEFINE_CLEANUP(struct shd_config *, shd_config_free)
/* The effective configuration as JSON (secrets masked), for --check-config. */
json_t *shd_config_to_json(const struct shd_config *cfg);
/* Print the option help (generated from the option table) to f. */
void shd_config_print_help(FILE *f);
/* Print shepherd.conf(5)'s generated key list (roff) to f. */
void shd_config_print_man_keys(FILE *f);

/* ---- the daemon context -------------------------------------------------------------------- */

struct shd_daemon {
	const struct shd_config *cfg;
	struct shd_dbpool *pool;
	struct shd_metrics *metrics;
	struct shd_exec_engine *exec;
	struct shd_sse_hub *sse;
	struct shd_ws_hub *ws; /* WebSocket sessions (upgrade.h), set by shd_server_start */
	struct shd_providers *providers;       /* one provider per cluster (provider.h) */
	struct shd_console_keys *console_keys; /* seal and open console tokens (console.h) */
	/* the VM list-watch (watcher.h): set after the listeners start, hence atomic */
	struct shd_watcher *_Atomic watcher;
	struct shd_health *health;  /* the cluster health checker (health.h) */
	struct shd_ratelimit *rate; /* the API request rate's token bucket (batch.h) */
	uid_t owner_uid;            /* the account running the daemon: a bootstrap admin */
	uint64_t started_at_us;     /* realtime */
	bool embedded_db;
	int schema_latest; /* highest migration version on disk */
	char pg_server_version[32];
	atomic_bool shutting_down;
	/* bumped when a principal mapping or role binding changes: cached identities are stale */
	atomic_uint_fast64_t auth_generation;
};

/* ---- requests and responses ---------------------------------------------------------------- */

enum shd_auth_method { SHD_AUTH_NONE, SHD_AUTH_UNIX, SHD_AUTH_TOKEN, SHD_AUTH_CERT };

struct shd_identity {
	int64_t user_id;
	char name[129];
	bool is_admin;
	enum shd_auth_method method;
	char principal[160]; /* "uid:1000", "token:7", "cert:CN=..." */
};

/* Per-connection state (MHD socket context). */
struct shd_conn {
	bool is_unix;
	bool has_peer;
	uid_t peer_uid;
	gid_t peer_gid;
	pid_t peer_pid;
	/* cached identity of a unix peer (the uid is fixed per connection) */
	bool ident_cached;
	uint64_t ident_cached_at_ns;
	uint64_t ident_cached_gen; /* shd_daemon.auth_generation when cached */
	struct shd_identity ident;
};

#define SHD_MAX_PATH_PARAMS 4

struct shd_req {
	struct shd_daemon *d;
	struct MHD_Connection *mhd;
	struct shd_conn *conn;
	const char *method;
	const char *url; /* path only, owned by MHD */
	char request_id[33];
	uint64_t start_ns;

	/* the body, capped at http.body_limit */
	struct shp_buf body;
	bool body_too_large;

	int route; /* index into shd_routes, -1 if none matched */
	int nparams;
	char *params[SHD_MAX_PATH_PARAMS]; /* decoded path parameters (owned) */

	struct shd_identity ident;
	bool authenticated;
	PGconn *db; /* borrowed from the pool for ROUTE_DB routes */

	/* for the audit row the router writes when a mutation is refused */
	char audit_name[128];

	int64_t idem_id; /* the idempotency key this request claimed, 0 if none */

	struct shd_ws_conn *upgrade; /* its WebSocket session, until the request completes */
};

struct shd_resp {
	int status;
	json_t *json; /* owned; serialised compact */
	char *raw;    /* owned; alternative to json */
	size_t raw_len;
	const char *content_type; /* static string; default application/json */
	long retry_after;         /* >= 0 adds Retry-After */
	const char *allow;        /* static; adds Allow (405) */
	bool replayed; /* the stored answer to an earlier request with this Idempotency-Key */
	struct MHD_Response *stream; /* owned: a streamed body (sse.c) instead of json/raw */
	struct shd_ws_conn *upgrade; /* owned: an accepted WebSocket session (status 101) */
};

/* ---- router.c ------------------------------------------------------------------------------ */

typedef int (*shd_handler_fn)(struct shd_req *req, struct shd_resp *resp, struct shp_error *err);

enum shd_route_flags {
	ROUTE_PUBLIC = 1 << 0, /* no identity needed */
	ROUTE_DB = 1 << 1,     /* borrow a database connection */
	ROUTE_ADMIN = 1 << 2,  /* platform admins only */
	ROUTE_BODY = 1 << 3,   /* takes a JSON object body */
};

struct shd_route {
	const char *method;
	const char *pattern; /* "/api/v1/namespaces/{name}" */
	shd_handler_fn handler;
	unsigned flags;
	const char *audit_action;  /* set for mutations: refused attempts are audited too */
	const char *resource_type; /* for those audit rows */
	const char *metric_name;   /* label in /metrics */
};

extern const struct shd_route shd_routes[];
extern const size_t shd_routes_count;

/*
 * Handle one complete request: match, authenticate, authorise, borrow a connection, call the
 * handler, turn errors into the JSON error body, write the refusal audit row.
 */
void shd_router_dispatch(struct shd_req *req, struct shd_resp *resp);
/* Fill resp with the error body for err (logs 5xx detail, never sends it). */
void shd_resp_error(struct shd_req *req, struct shd_resp *resp, const struct shp_error *err);
/* Set a JSON body (takes ownership of j) and status. Returns 0. */
int shd_resp_json_take(struct shd_resp *resp, int status, json_t *j);
/* Set a raw JSON text body (copied). Returns 0 or -SHP_E_NOMEM. */
int shd_resp_raw(struct shd_resp *resp, int status, const char *text, size_t len,
		 const char *content_type) SHP_MUSTCHECK;
void shd_resp_release(struct shd_resp *resp);

/* ---- request helpers (router.c) ------------------------------------------------------------ */

/* Parse the body as a JSON object with only the allowed fields. NULL with err on failure. */
json_t *shd_req_json_object(struct shd_req *req, const char *const *allowed, struct shp_error *err);
/* A request header (borrowed from MHD) or NULL. */
const char *shd_req_header(struct shd_req *req, const char *name);
/* A query argument (borrowed from MHD) or NULL. */
const char *shd_req_query(struct shd_req *req, const char *key);
/* ?limit= within [1, SHP_API_PAGE_MAX], default SHP_API_PAGE_DEFAULT. */
int shd_req_limit(struct shd_req *req, int *ret, struct shp_error *err) SHP_MUSTCHECK;
/* Refuse unless the caller is a platform admin (SHP_E_PERM). */
int shd_req_require_admin(struct shd_req *req, struct shp_error *err) SHP_MUSTCHECK;

/* Opaque keyset cursors: base64url text. */
int shd_cursor_encode(const char *key, struct shp_buf *out) SHP_MUSTCHECK;
/* Decode into out (cap applies); -SHP_E_INVAL "invalid cursor" on anything malformed. */
int shd_cursor_decode(const char *cursor, struct shp_buf *out, struct shp_error *err) SHP_MUSTCHECK;

/* ---- rows.c: result rows to JSON ------------------------------------------------------- */

enum shd_col_type {
	COL_INT,  /* written as is */
	COL_TEXT, /* a JSON string */
	COL_BOOL, /* 't'/'f' -> true/false */
	COL_TIME, /* timestamptz (DateStyle ISO, TimeZone UTC) -> RFC 3339 string */
	COL_JSON, /* json/jsonb text, written as is */
};

/* Result column i is written as member cols[i].name; SQL NULL is null. */
struct shd_col {
	const char *name;
	enum shd_col_type type;
};

/* The task object's columns (exec-store.c); lists use the first shd_exec_task_ncols_list. */
extern const struct shd_col shd_exec_task_cols[];
extern const int shd_exec_task_ncols_list;

/* Append row `row` of res as a JSON object. 0 or -SHP_E_NOMEM/-SHP_E_LIMIT. */
int shd_row_json(const PGresult *res, int row, const struct shd_col *cols, int ncols,
		 struct shp_buf *out) SHP_MUSTCHECK;
/* The same as a new json_t (NULL on failure). */
json_t *shd_row_to_json(const PGresult *res, int row, const struct shd_col *cols, int ncols);
/* Answer with row 0 of res as the body. */
int shd_resp_row(struct shd_resp *resp, int status, const PGresult *res, const struct shd_col *cols,
		 int ncols, struct shp_error *err) SHP_MUSTCHECK;
/*
 * Answer with a list page: res holds up to limit + 1 rows; the first limit are the items, and
 * a further row means another page, whose cursor is column key_col of the last item.
 */
int shd_resp_rows_page(struct shd_resp *resp, const PGresult *res, const struct shd_col *cols,
		       int ncols, int limit, int key_col, struct shp_error *err) SHP_MUSTCHECK;

/* ---- auth.c -------------------------------------------------------------------------------- */

/* Resolve the caller (unix peer, bearer token, client certificate). SHP_E_UNAUTH if none. */
int shd_auth_identify(struct shd_req *req, struct shp_error *err) SHP_MUSTCHECK;
const char *shd_auth_method_to_string(enum shd_auth_method m);
/* SHA-256 of a token (raw 32 bytes). */
void shd_auth_token_hash(const char *token, unsigned char out[32]);
/* Forget cached identities (after a mapping or role binding changed); any thread. */
void shd_auth_invalidate(struct shd_daemon *d);

/* ---- audit.c ------------------------------------------------------------------------------- */

/*
 * Append one audit row on conn (inside the caller's transaction, if any). details may be NULL
 * (borrowed); it is masked before it is stored. req NULL: the daemon itself acts (a worker, a
 * periodic job): the actor is SHD_AUDIT_DAEMON, with no actor id and no request id.
 */
#define SHD_AUDIT_DAEMON "shepherdd"

int shd_audit_write(PGconn *conn, const struct shd_req *req, const char *action,
		    const char *resource_type, const char *resource_name, const char *outcome,
		    const json_t *details, struct shp_error *err) SHP_MUSTCHECK;

/* ---- idempotency.c ------------------------------------------------------------------------ */

/*
 * Before a mutating handler: claim the request's Idempotency-Key (if any) for the caller.
 * 0: go on (run the handler); 1: resp holds the stored answer to replay; <0: err (422 key used
 * for another request, 409 still in progress, 400 malformed key).
 */
int shd_idempotency_begin(struct shd_req *req, struct shd_resp *resp, struct shp_error *err);
/* After the handler: store the answer (or release the key after a 5xx). */
void shd_idempotency_finish(struct shd_req *req, struct shd_resp *resp);

/* ---- metrics.c ----------------------------------------------------------------------------- */

struct shd_metrics *shd_metrics_new(size_t nroutes);
struct shd_metrics *shd_metrics_free(struct shd_metrics *m);
/* Record one finished request (route -1 = unmatched). Lock-free. */
void shd_metrics_observe(struct shd_metrics *m, int route, int status, uint64_t duration_ns);
/* The Prometheus text exposition of everything. */
int shd_metrics_render(struct shd_daemon *d, struct shp_buf *out) SHP_MUSTCHECK;

/* ---- server.c ------------------------------------------------------------------------------ */

struct shd_server;
/* Bind the Unix socket (and the TLS listener if configured) and start serving. */
struct shd_server *shd_server_start(struct shd_daemon *d, struct shp_error *err);
/* Stop accepting, finish in-flight requests, close. Returns NULL. */
struct shd_server *shd_server_stop(struct shd_server *s);
SHP_DEFINE_CLEANUP(struct shd_server *, shd_server_stop)

/* ---- sdnotify.c ---------------------------------------------------------------------------- */

/* Send a state string to $NOTIFY_SOCKET if set (systemd's sd_notify protocol); 0 if unset. */
int shd_sd_notify(const char *state, struct shp_error *err) SHP_MUSTCHECK;

/* ---- handlers (api-*.c) -------------------------------------------------------------------- */

int shd_api_health_live(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_health_ready(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_metrics(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_version(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_status(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_whoami(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_tokens_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tokens_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tokens_revoke(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_namespaces_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_namespaces_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_namespaces_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_namespaces_delete(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_clusters_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_instancetypes(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_preferences(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_health(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_clusters_vms(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_audit_list(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_jobs_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_jobs_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_jobs_retry(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_jobs_discard(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_jobs_cancel(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_queues_stats(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_queues_pause(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_queues_resume(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tasks_submit(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tasks_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tasks_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tasks_events(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tasks_stream(struct shd_req *, struct shd_resp *, struct shp_error *);
/* api-tasks-ws.c: the same stream over a WebSocket (the request is an upgrade) */
int shd_api_tasks_stream_ws(struct shd_req *req, struct shd_resp *resp, int64_t exec_id,
			    int64_t after_id, struct shp_error *err);
int shd_api_tasks_cancel(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tenant_members_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tenant_members_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_tenant_members_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_exec_flags_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_exec_flags_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_exec_flags_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_reconcile_run(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_reconcile_runs(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_adoptions_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_adoptions_scan(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_adoptions_adopt(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_adoptions_ignore(struct shd_req *, struct shd_resp *, struct shp_error *);
/* api-catalog.c: templates and instance sizes (anyone reads, platform admins write) */
int shd_api_templates_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_publish(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_deprecate(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_archive(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_templates_export(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_sizes_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_sizes_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_sizes_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_sizes_update(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_sizes_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
/* api-vms.c: the VM reads (visible VMs, their revisions, diffs and history) */
int shd_api_vms_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_revisions(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_diff(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_history(struct shd_req *, struct shd_resp *, struct shp_error *);
/* api-console.c, console-proxy.c: VNC console tokens, access requests, the session */
int shd_api_console_token(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_console_request(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_console_vnc(struct shd_req *, struct shd_resp *, struct shp_error *);

int shd_api_policies_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_policies_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_policies_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_systems_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_systems_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_systems_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_systems_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_services_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_services_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_services_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_services_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_requests_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_requests_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_requests_cancel(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_modify(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_start(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_stop(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_vms_restart(struct shd_req *, struct shd_resp *, struct shp_error *);
/* api-rbac.c: platform role bindings and principal mappings (platform admins) */
int shd_api_rolebindings_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rolebindings_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rolebindings_delete(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rbac_mappings_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rbac_mappings_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rbac_mappings_create(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rbac_mappings_put(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_rbac_mappings_delete(struct shd_req *, struct shd_resp *, struct shp_error *);

/* api-approvals.c, api-approvals-spec.c: the approvers' workbench, decisions, modifications */
int shd_api_approvals_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_approvals_get(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_approvals_approve(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_approvals_reject(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_approvals_preview(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_approvals_modify(struct shd_req *, struct shd_resp *, struct shp_error *);

/* api-inbox.c: the caller's own notifications */
int shd_api_inbox_list(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_inbox_unread_count(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_inbox_read(struct shd_req *, struct shd_resp *, struct shp_error *);
int shd_api_inbox_read_all(struct shd_req *, struct shd_resp *, struct shp_error *);

/* ---- providers.c: the provider registry (provider.h) and the credentials it opens ------ */

struct shd_kubeconfig;
/* The providers' default deadline (provider.timeout); call before the registry is shared. */
void shd_providers_set_timeout(struct shd_providers *r, int timeout_ms);
/*
 * Seal kc's credentials for the cluster named name with the registry's key: the blob as bytea
 * input text ("\x" and hex) appended to ret_bytea, the key id (SHD_SECRETBOX_KEY_ID_LEN hex
 * characters and a NUL) into ret_key_id. Any thread.
 */
int shd_providers_seal(struct shd_providers *r, const char *name, const struct shd_kubeconfig *kc,
		       struct shp_buf *ret_bytea, char *ret_key_id,
		       struct shp_error *err) SHP_MUSTCHECK;
/* Whether err's message names the cluster ("cluster 'NAME'"), so that no prefix repeats it. */
bool shd_error_names_cluster(const struct shp_error *err, const char *name);

/* ---- sse.c: task event streams --------------------------------------------------------------- */

struct shd_dbpool_config;
/* Start the stream hub (one thread, its own connection). At most max_streams open streams. */
struct shd_sse_hub *shd_sse_hub_new(const struct shd_dbpool_config *db, int max_streams,
				    struct shp_error *err);
/* End every stream (their connections are resumed to close): call before stopping MHD. */
void shd_sse_hub_close_all(struct shd_sse_hub *h);
/* Stop the thread and free the hub, after MHD was stopped. Returns NULL. */
struct shd_sse_hub *shd_sse_hub_free(struct shd_sse_hub *h);
/*
 * A response streaming the events of execution exec_id after after_id (HTTP thread). NULL with
 * SHP_E_RATE when the streams are all taken.
 */
struct MHD_Response *shd_sse_open(struct shd_sse_hub *h, struct MHD_Connection *mhd,
				  int64_t exec_id, int64_t after_id, struct shp_error *err);

/* ---- validate.c: pure checks of request bodies (also the fuzz target's entry) --------------- */

struct shd_namespace_spec {
	const char *name; /* borrowed from the JSON */
	const char *environment;
	const char *description;
};

/* A cluster to register: from a kubeconfig (sealed into the row), or simulated. */
struct shd_cluster_spec {
	const char *name;
	const char *environment;
	const char *description;
	const char *kubeconfig; /* its YAML text, NULL for a simulated cluster */
	const char *context;    /* the kubeconfig context, NULL = its current-context */
	bool allow_insecure;    /* accept insecure-skip-tls-verify and http:// servers */
	bool simulated;
};

int shd_validate_namespace(const json_t *body, struct shd_namespace_spec *ret,
			   struct shp_error *err) SHP_MUSTCHECK;
int shd_validate_cluster(const json_t *body, struct shd_cluster_spec *ret,
			 struct shp_error *err) SHP_MUSTCHECK;
/* environment must be "test" or "prod" (SHP_E_INVAL names the field). */
int shd_validate_environment(const char *field, const char *value,
			     struct shp_error *err) SHP_MUSTCHECK;
/* http(s)://host[:port][/path], at most 2048 bytes, no credentials, no whitespace. */
int shd_validate_api_url(const char *field, const char *url, struct shp_error *err) SHP_MUSTCHECK;
/* A DNS-1123 label for the given field. */
int shd_validate_name(const char *field, const char *value, struct shp_error *err) SHP_MUSTCHECK;
/* Free text: valid UTF-8, no control characters except \n and \t, at most max bytes. */
int shd_validate_text(const char *field, const char *value, size_t max,
		      struct shp_error *err) SHP_MUSTCHECK;
