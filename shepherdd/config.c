/*
 * shepherdd's configuration. One option table drives the YAML file keys, the SHEPHERD_*
 * environment variables, the command-line flags, --help, --check-config and the generated key
 * list of shepherd.conf(5). Precedence: flags > environment > file > defaults.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"
#include "yaml.h"

enum opt_type {
	OPT_STRING,
	OPT_INT,
	OPT_DURATION_MS,
	OPT_DURATION_S,
	OPT_SIZE,
	OPT_MODE,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_NAMES,
	OPT_BOOL,
};

struct opt {
	const char *key;  /* YAML path, "socket.path" */
	const char *env;  /* environment variable */
	const char *flag; /* long flag, without "--" */
	enum opt_type type;
	size_t offset;
	const char *def; /* default as text; NULL = none or computed */
	long long min, max;
	const char *arg; /* metavariable for help */
	const char *help;
};

#define O(f) offsetof(struct shd_config, f)

static const struct opt opts[] = {
	{"state_dir", "SHEPHERD_STATE_DIR", "state-dir", OPT_STRING, O(state_dir), NULL, 0, 0,
	 "DIR",
	 "state directory (embedded database, socket); default /var/lib/shepherd for root, "
	 "else $XDG_STATE_HOME/shepherd"},
	{"schema_dir", "SHEPHERD_SCHEMA_DIR", "schema-dir", OPT_STRING, O(schema_dir), NULL, 0, 0,
	 "DIR", "directory of the schema migrations (default: the installed ones)"},
	{"seed.dir", "SHEPHERD_SEED_DIR", "seed-dir", OPT_STRING, O(seed_dir), NULL, 0, 0, "DIR",
	 "the seed catalogue (templates/*.yaml, sizes.yaml), imported once into an empty "
	 "database (default: the installed one)"},
	{"socket.path", "SHEPHERD_SOCKET", "socket", OPT_STRING, O(socket_path), NULL, 0, 0, "PATH",
	 "Unix socket of the API (default <state_dir>/shepherdd.sock)"},
	{"socket.mode", "SHEPHERD_SOCKET_MODE", "socket-mode", OPT_MODE, O(socket_mode), "0660", 0,
	 0777, "MODE", "permissions of the socket (octal)"},
	{"socket.group", "SHEPHERD_SOCKET_GROUP", "socket-group", OPT_STRING, O(socket_group), NULL,
	 0, 0, "GROUP", "group owning the socket: its members may use shepherd"},
	{"tls.listen", "SHEPHERD_TLS_LISTEN", "tls-listen", OPT_STRING, O(tls_listen), NULL, 0, 0,
	 "HOST:PORT", "also serve the API over TLS on this address"},
	{"tls.cert", "SHEPHERD_TLS_CERT", "tls-cert", OPT_STRING, O(tls_cert), NULL, 0, 0, "FILE",
	 "server certificate (PEM)"},
	{"tls.key", "SHEPHERD_TLS_KEY", "tls-key", OPT_STRING, O(tls_key), NULL, 0, 0, "FILE",
	 "server private key (PEM)"},
	{"tls.client_ca", "SHEPHERD_TLS_CLIENT_CA", "tls-client-ca", OPT_STRING, O(tls_client_ca),
	 NULL, 0, 0, "FILE", "CA that signs client certificates (enables mTLS)"},
	{"database.url", "SHEPHERD_DATABASE_URL", "database-url", OPT_STRING, O(database_url), NULL,
	 0, 0, "URL", "PostgreSQL to use; unset = run an embedded PostgreSQL"},
	{"database.pool_size", "SHEPHERD_DATABASE_POOL_SIZE", "db-pool-size", OPT_INT,
	 O(db_pool_size), "8", 1, 256, "N", "database connections of the request pool"},
	{"database.checkout_timeout", "SHEPHERD_DATABASE_CHECKOUT_TIMEOUT", "db-checkout-timeout",
	 OPT_DURATION_MS, O(db_checkout_timeout_ms), "5s", 1, 600000, "DURATION",
	 "how long a request waits for a free connection"},
	{"database.statement_timeout", "SHEPHERD_DATABASE_STATEMENT_TIMEOUT",
	 "db-statement-timeout", OPT_DURATION_MS, O(db_statement_timeout_ms), "30s", 0, 3600000,
	 "DURATION", "statement_timeout of every connection"},
	{"database.lock_timeout", "SHEPHERD_DATABASE_LOCK_TIMEOUT", "db-lock-timeout",
	 OPT_DURATION_MS, O(db_lock_timeout_ms), "10s", 0, 3600000, "DURATION",
	 "lock_timeout of every connection"},
	{"database.idle_in_transaction_timeout", "SHEPHERD_DATABASE_IDLE_IN_TX_TIMEOUT",
	 "db-idle-in-tx-timeout", OPT_DURATION_MS, O(db_idle_in_tx_timeout_ms), "60s", 0, 3600000,
	 "DURATION", "idle_in_transaction_session_timeout of every connection"},
	{"embedded.bindir", "SHEPHERD_PG_BINDIR", "pg-bindir", OPT_STRING, O(pg_bindir),
	 SHP_PG_BINDIR, 0, 0, "DIR", "PostgreSQL server binaries for the embedded database"},
	{"embedded.user", "SHEPHERD_PG_USER", "pg-user", OPT_STRING, O(pg_user), "shepherd", 0, 0,
	 "USER", "system user running the embedded PostgreSQL when shepherdd runs as root"},
	{"embedded.start_timeout", "SHEPHERD_PG_START_TIMEOUT", "pg-start-timeout", OPT_DURATION_MS,
	 O(pg_start_timeout_ms), "60s", 1000, 3600000, "DURATION",
	 "how long to wait for the embedded PostgreSQL to start"},
	{"http.threads", "SHEPHERD_HTTP_THREADS", "http-threads", OPT_INT, O(http_threads), "8", 1,
	 256, "N", "threads serving requests"},
	{"http.body_limit", "SHEPHERD_HTTP_BODY_LIMIT", "http-body-limit", OPT_SIZE,
	 O(http_body_limit), "1MiB", 1024, 64 * 1024 * 1024, "SIZE",
	 "largest request body accepted (413 above)"},
	{"http.header_limit", "SHEPHERD_HTTP_HEADER_LIMIT", "http-header-limit", OPT_SIZE,
	 O(http_header_limit), "32KiB", 4096, 1024 * 1024, "SIZE",
	 "memory for a request's line and headers (431/413 above)"},
	{"http.connection_timeout", "SHEPHERD_HTTP_CONNECTION_TIMEOUT", "http-connection-timeout",
	 OPT_DURATION_S, O(http_connection_timeout_s), "60s", 1, 86400, "DURATION",
	 "idle connections are closed after this long"},
	{"http.max_connections", "SHEPHERD_HTTP_MAX_CONNECTIONS", "http-max-connections", OPT_INT,
	 O(http_max_connections), "1024", 1, 65536, "N", "concurrent connections per listener"},
	{"http.max_streams", "SHEPHERD_HTTP_MAX_STREAMS", "http-max-streams", OPT_INT,
	 O(http_max_streams), "64", 1, 4096, "N", "open task event streams (429 above)"},
	{"server.websocket_sessions", "SHEPHERD_WEBSOCKET_SESSIONS", "websocket-sessions", OPT_INT,
	 O(websocket_sessions), "64", 0, 4096, "N",
	 "WebSocket sessions (consoles, progress streams) at once: 429 above; 0 refuses every "
	 "upgrade"},
	{"execution.enabled", "SHEPHERD_EXECUTION_ENABLED", "execution-enabled", OPT_BOOL,
	 O(exec_enabled), "true", 0, 0, "BOOL",
	 "run plans for real when no global flag is set (false: record only)"},
	{"execution.immediate_max", "SHEPHERD_EXECUTION_IMMEDIATE_MAX", "execution-immediate-max",
	 OPT_DURATION_MS, O(exec_immediate_max_ms), "10s", 0, 600000, "DURATION",
	 "read-only plans estimated within this run inline in the request"},
	{"execution.dedupe_window", "SHEPHERD_EXECUTION_DEDUPE_WINDOW", "execution-dedupe-window",
	 OPT_DURATION_S, O(exec_dedupe_window_s), "60s", 0, 86400, "DURATION",
	 "a finished task still answers an identical submission this long"},
	{"approvals.ttl", "SHEPHERD_APPROVALS_TTL", "approvals-ttl", OPT_DURATION_S,
	 O(approvals_ttl_s), "7d", 60, 31536000, "DURATION",
	 "a request waiting for approval expires after this long"},
	{"batch.max_items", "SHEPHERD_BATCH_MAX_ITEMS", "batch-max-items", OPT_INT,
	 O(batch_max_items), "500", 1, 10000, "N", "requests one batch may carry"},
	{"ratelimit.api_rate", "SHEPHERD_RATELIMIT_API_RATE", "ratelimit-api-rate", OPT_INT,
	 O(rl_api_rate), "50", 0, 1000000, "N",
	 "mutating API requests a second for everybody but platform admins (token bucket; 0 "
	 "is no limit): 429 above"},
	{"ratelimit.api_burst", "SHEPHERD_RATELIMIT_API_BURST", "ratelimit-api-burst", OPT_INT,
	 O(rl_api_burst), "100", 1, 1000000, "N",
	 "mutating API requests accepted at once before ratelimit.api_rate applies"},
	{"ratelimit.global_pending_batches", "SHEPHERD_RATELIMIT_GLOBAL_PENDING_BATCHES",
	 "ratelimit-global-pending-batches", OPT_INT, O(rl_global_pending_batches), "100", 0,
	 1000000, "N", "open batches of all users together (0 is no limit): 429 above"},
	{"ratelimit.user_pending_batches", "SHEPHERD_RATELIMIT_USER_PENDING_BATCHES",
	 "ratelimit-user-pending-batches", OPT_INT, O(rl_user_pending_batches), "5", 0, 100000, "N",
	 "open batches of one user: 429 above"},
	{"ratelimit.user_pending_children", "SHEPHERD_RATELIMIT_USER_PENDING_CHILDREN",
	 "ratelimit-user-pending-children", OPT_INT, O(rl_user_pending_children), "1000", 0,
	 10000000, "N", "requests of one user's open batches not yet ended: 429 above"},
	{"ratelimit.user_cooldown", "SHEPHERD_RATELIMIT_USER_COOLDOWN", "ratelimit-user-cooldown",
	 OPT_DURATION_S, O(rl_user_cooldown_s), "10s", 0, 86400, "DURATION",
	 "a user's next batch waits this long after their last one (429 before)"},
	{"notifications.sender", "SHEPHERD_NOTIFICATIONS_SENDER", "notifications-sender",
	 OPT_STRING, O(notify_sender), "inbox", 0, 0, "NAME",
	 "where notifications go: inbox (the only channel of this version)"},
	{"notifications.retention_days", "SHEPHERD_NOTIFICATIONS_RETENTION_DAYS",
	 "notifications-retention-days", OPT_INT, O(notify_retention_days), "90", 1, 3650, "DAYS",
	 "notifications older than this many days are deleted (daily job notify.retention)"},
	{"notifications.status_window", "SHEPHERD_NOTIFICATIONS_STATUS_WINDOW",
	 "notifications-status-window", OPT_DURATION_S, O(notify_status_window_s), "10m", 1, 86400,
	 "DURATION", "a VM's status changes within this long tell its owner once (counted)"},
	{"queue.workers", "SHEPHERD_QUEUE_WORKERS", "queue-workers", OPT_INT, O(queue_workers),
	 "10", 1, 256, "N", "job queue worker threads"},
	{"queue.fetch_batch", "SHEPHERD_QUEUE_FETCH_BATCH", "queue-fetch-batch", OPT_INT,
	 O(queue_fetch_batch), "100", 1, 1000, "N", "jobs claimed per fetch"},
	{"queue.poll_interval", "SHEPHERD_QUEUE_POLL_INTERVAL", "queue-poll-interval",
	 OPT_DURATION_MS, O(queue_poll_interval_ms), "1s", 1000, 3600000, "DURATION",
	 "look for jobs this often even without a notification"},
	{"queue.shutdown_grace", "SHEPHERD_QUEUE_SHUTDOWN_GRACE", "queue-shutdown-grace",
	 OPT_DURATION_MS, O(queue_shutdown_grace_ms), "10s", 0, 3600000, "DURATION",
	 "running jobs get this long at shutdown before they are requeued"},
	{"queue.retry_base", "SHEPHERD_QUEUE_RETRY_BASE", "queue-retry-base", OPT_DURATION_MS,
	 O(queue_retry_base_ms), "1s", 1000, 3600000, "DURATION",
	 "a failed job waits this long before its retry, doubled at each attempt (at most 1h)"},
	{"health.interval", "SHEPHERD_HEALTH_INTERVAL", "health-interval", OPT_DURATION_S,
	 O(health_interval_s), "30s", 1, 86400, "DURATION",
	 "check every cluster's health and capabilities this often"},
	{"watch.scan_interval", "SHEPHERD_WATCH_SCAN_INTERVAL", "watch-scan-interval",
	 OPT_DURATION_MS, O(watch_scan_interval_ms), "5s", 1000, 3600000, "DURATION",
	 "the VM watcher looks for added and removed clusters this often"},
	{"reconcile.interval", "SHEPHERD_RECONCILE_INTERVAL", "reconcile-interval", OPT_DURATION_S,
	 O(reconcile_interval_s), "10m", 10, 7 * 86400, "DURATION",
	 "the reconciler compares every cluster with the database this often"},
	{"reconcile.mode", "SHEPHERD_RECONCILE_MODE", "reconcile-mode", OPT_STRING,
	 O(reconcile_mode), "dry-run", 0, 0, "MODE",
	 "what the periodic reconciler does: dry-run (report) or mark (mark ghost rows)"},
	{"adoption.interval", "SHEPHERD_ADOPTION_INTERVAL", "adoption-interval", OPT_DURATION_S,
	 O(adoption_interval_s), "5m", 10, 7 * 86400, "DURATION",
	 "clusters are scanned for VMs offered for adoption this often"},
	{"provider.key_file", "SHEPHERD_PROVIDER_KEY_FILE", "provider-key-file", OPT_STRING,
	 O(provider_key_file), NULL, 0, 0, "FILE",
	 "key sealing cluster credentials, created (mode 0600) when absent (default "
	 "<state_dir>/credentials.key)"},
	{"provider.max_inflight", "SHEPHERD_PROVIDER_MAX_INFLIGHT", "provider-max-inflight",
	 OPT_INT, O(provider_max_inflight), "8", 1, 1024, "N",
	 "concurrent requests to one cluster's API"},
	{"provider.timeout", "SHEPHERD_PROVIDER_TIMEOUT", "provider-timeout", OPT_DURATION_MS,
	 O(provider_timeout_ms), "30s", 1000, 3600000, "DURATION",
	 "default deadline of a call to a cluster"},
	{"console.token_ttl", "SHEPHERD_CONSOLE_TOKEN_TTL", "console-token-ttl", OPT_DURATION_S,
	 O(console_token_ttl_s), "5m", 10, 7200, "DURATION",
	 "a VNC console token is valid this long (at most 2h; in prod never past the grant)"},
	{"console.previous_key_files", "SHEPHERD_CONSOLE_PREVIOUS_KEY_FILES",
	 "console-previous-key-files", OPT_STRING, O(console_previous_key_files), NULL, 0, 0,
	 "FILES",
	 "comma-separated earlier provider.key_file keys: console tokens they sealed still open "
	 "during a key rotation"},
	{"console.idle_timeout", "SHEPHERD_CONSOLE_IDLE_TIMEOUT", "console-idle-timeout",
	 OPT_DURATION_S, O(console_idle_timeout_s), "15m", 1, 86400, "DURATION",
	 "a VNC console session with no traffic either way for this long is closed"},
	{"console.session_max", "SHEPHERD_CONSOLE_SESSION_MAX", "console-session-max",
	 OPT_DURATION_S, O(console_session_max_s), "8h", 10, 7 * 86400, "DURATION",
	 "a VNC console session is closed after this long, whatever its traffic"},
	{"log.level", "SHEPHERD_LOG_LEVEL", "log-level", OPT_LOG_LEVEL, O(log_level), "info", 0, 0,
	 "LEVEL", "error, warn, info or debug"},
	{"log.format", "SHEPHERD_LOG_FORMAT", "log-format", OPT_LOG_FORMAT, O(log_format), "logfmt",
	 0, 0, "FORMAT", "logfmt or json"},
	{"admins", "SHEPHERD_ADMINS", "admins", OPT_NAMES, O(admins), NULL, 0, 0, "NAMES",
	 "comma-separated user names made platform admins on first contact"},
};

#undef O

#define FLAG_CONFIG 1000
#define FLAG_VERBOSE 1001
#define FLAG_OPT_BASE 2000

static char **str_slot(struct shd_config *cfg, const struct opt *o)
{
	return (char **)((char *)cfg + o->offset);
}

static int *int_slot(struct shd_config *cfg, const struct opt *o)
{
	return (int *)((char *)cfg + o->offset);
}

static int parse_names(const char *text, json_t **slot, struct shp_error *err)
{
	_cleanup_free_ char *copy = strdup(text);
	json_auto_t *arr = json_array();
	char *save = NULL;

	if (!copy || !arr)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if (strlen(tok) > 128)
			return shp_error_set(err, SHP_E_INVAL, "user name '%.40s...' is too long",
					     tok);
		if (json_array_append_new(arr, json_string(tok)) < 0)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	json_decref(*slot);
	*slot = TAKE_PTR(arr);
	return 0;
}

/* Set one option from its text form. source names where it came from, for messages. */
static int set_opt(struct shd_config *cfg, const struct opt *o, const char *text,
		   const char *source, struct shp_error *err)
{
	struct shp_error e = SHP_ERROR_INIT;
	long long v = 0;
	int64_t secs;
	uint64_t bytes;
	int lvl;
	char *end;

	switch (o->type) {
	case OPT_STRING: {
		char *copy = strdup(text);
		if (!copy)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		free(*str_slot(cfg, o));
		*str_slot(cfg, o) = *text ? copy : NULL;
		if (!*text)
			free(copy);
		return 0;
	}
	case OPT_INT:
		if (shp_parse_int(text, o->min, o->max, &v, &e) < 0)
			break;
		*int_slot(cfg, o) = (int)v;
		return 0;
	case OPT_DURATION_MS:
	case OPT_DURATION_S:
		if (shp_parse_duration(text, &secs, &e) < 0)
			break;
		v = o->type == OPT_DURATION_MS ? secs * 1000 : secs;
		if (v < o->min || v > o->max) {
			shp_error_set(&e, SHP_E_INVAL, "'%s' is out of range", text);
			break;
		}
		*int_slot(cfg, o) = (int)v;
		return 0;
	case OPT_SIZE:
		if (shp_parse_size(text, &bytes, &e) < 0)
			break;
		if (bytes < (uint64_t)o->min || bytes > (uint64_t)o->max) {
			shp_error_set(&e, SHP_E_INVAL, "'%s' is out of range [%lld, %lld] bytes",
				      text, o->min, o->max);
			break;
		}
		*(uint64_t *)((char *)cfg + o->offset) = bytes;
		return 0;
	case OPT_MODE:
		errno = 0;
		v = strtoll(text, &end, 8);
		if (errno || *end || end == text || v < 0 || v > o->max) {
			shp_error_set(&e, SHP_E_INVAL, "'%s' is not an octal file mode", text);
			break;
		}
		*(unsigned *)((char *)cfg + o->offset) = (unsigned)v;
		return 0;
	case OPT_LOG_LEVEL:
		lvl = shp_log_level_from_string(text);
		if (lvl < 0) {
			shp_error_set(&e, SHP_E_INVAL,
				      "'%s' is not one of error, warn, info, debug", text);
			break;
		}
		*(enum shp_log_level *)((char *)cfg + o->offset) = (enum shp_log_level)lvl;
		return 0;
	case OPT_LOG_FORMAT:
		if (strcmp(text, "logfmt") == 0)
			cfg->log_format = SHP_LOG_LOGFMT;
		else if (strcmp(text, "json") == 0)
			cfg->log_format = SHP_LOG_JSON;
		else {
			shp_error_set(&e, SHP_E_INVAL, "'%s' is not one of logfmt, json", text);
			break;
		}
		return 0;
	case OPT_BOOL:
		if (strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 ||
		    strcmp(text, "on") == 0 || strcmp(text, "1") == 0)
			*(bool *)((char *)cfg + o->offset) = true;
		else if (strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
			 strcmp(text, "off") == 0 || strcmp(text, "0") == 0)
			*(bool *)((char *)cfg + o->offset) = false;
		else {
			shp_error_set(&e, SHP_E_INVAL, "'%s' is not one of true, false", text);
			break;
		}
		return 0;
	case OPT_NAMES:
		if (parse_names(text, (json_t **)((char *)cfg + o->offset), &e) < 0)
			break;
		return 0;
	}
	shp_error_set(err, e.code ? e.code : SHP_E_INVAL, "%s: '%s': %s", source, o->key, e.msg);
	shp_error_detail(err, "field", "%s", o->key);
	return -SHP_E_INVAL;
}

static const struct opt *find_opt_key(const char *key)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++)
		if (strcmp(opts[i].key, key) == 0)
			return &opts[i];
	return NULL;
}

static int set_defaults(struct shd_config *cfg, struct shp_error *err)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++) {
		int r;
		if (!opts[i].def)
			continue;
		r = set_opt(cfg, &opts[i], opts[i].def, "default", err);
		if (r < 0)
			return r;
	}
	cfg->admins = json_array();
	return cfg->admins ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

/* Walk the YAML document: nested mappings become dotted keys. */
static int apply_yaml_node(struct shd_config *cfg, const char *prefix, json_t *node,
			   const char *file, struct shp_error *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(node, k, v)
	{
		char key[128];
		const struct opt *o;
		char num[64];
		const char *text;
		int r;

		(void)snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k);
		o = find_opt_key(key);
		if (!o && json_is_object(v)) {
			r = apply_yaml_node(cfg, key, v, file, err);
			if (r < 0)
				return r;
			continue;
		}
		if (!o) {
			shp_error_set(err, SHP_E_INVAL, "%s: unknown configuration key '%s'", file,
				      key);
			shp_error_detail(err, "field", "%s", key);
			return -SHP_E_INVAL;
		}
		if (o->type == OPT_NAMES && json_is_array(v)) {
			size_t i;
			json_t *item;
			json_array_clear(cfg->admins);
			json_array_foreach(v, i, item)
			{
				if (!json_is_string(item))
					return shp_error_set(err, SHP_E_INVAL,
							     "%s: '%s' must be a list of names",
							     file, key);
				(void)json_array_append(cfg->admins, item);
			}
			continue;
		}
		if (json_is_string(v))
			text = json_string_value(v);
		else if (json_is_integer(v)) {
			(void)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				       json_integer_value(v));
			text = num;
		} else if (json_is_boolean(v))
			text = json_is_true(v) ? "true" : "false";
		else if (json_is_null(v))
			text = "";
		else {
			shp_error_set(err, SHP_E_INVAL, "%s: '%s' must be a scalar value", file,
				      key);
			shp_error_detail(err, "field", "%s", key);
			return -SHP_E_INVAL;
		}
		r = set_opt(cfg, o, text, file, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_file(struct shd_config *cfg, const char *path, bool must_exist,
		     struct shp_error *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct shp_buf data __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(1 << 20);
	json_auto_t *doc = NULL;
	char chunk[4096];
	size_t n;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return shp_error_errno(err, errno, "cannot read configuration file '%s'", path);
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (shp_buf_addn(&data, chunk, n) < 0)
			return shp_error_set(err, SHP_E_LIMIT,
					     "configuration file '%s' is larger than 1 MiB", path);
	if (ferror(f))
		return shp_error_errno(err, errno, "reading configuration file '%s'", path);
	doc = shp_yaml_to_json(data.buf, data.len, 16, err);
	if (!doc)
		return shp_error_prefix(err, "%s", path);
	if (json_is_null(doc))
		return 0;
	if (!json_is_object(doc))
		return shp_error_set(err, SHP_E_INVAL, "%s: the configuration must be a mapping",
				     path);
	free(cfg->config_path);
	cfg->config_path = strdup(path);
	return apply_yaml_node(cfg, "", doc, path, err);
}

static int apply_env(struct shd_config *cfg, struct shp_error *err)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++) {
		const char *v = getenv(opts[i].env);
		int r;

		if (!v)
			continue;
		r = set_opt(cfg, &opts[i], v, opts[i].env, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static char *default_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char *out = NULL;

	if (geteuid() == 0)
		return strdup(SHP_LOCALSTATEDIR "/lib/shepherd");
	if (xdg && *xdg == '/')
		return asprintf(&out, "%s/shepherd", xdg) < 0 ? NULL : out;
	if (!home || *home != '/') {
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
			return asprintf(&out, "%s/.local/state/shepherd", pw.pw_dir) < 0 ? NULL
											 : out;
		return NULL;
	}
	return asprintf(&out, "%s/.local/state/shepherd", home) < 0 ? NULL : out;
}

/* The installed schema, else the source tree's (running from a build directory). */
static char *default_schema_dir(void)
{
	char exe[PATH_MAX];
	char *out = NULL;
	struct stat st;
	ssize_t n;

	if (stat(SHP_PKGDATADIR "/schema", &st) == 0 && S_ISDIR(st.st_mode))
		return strdup(SHP_PKGDATADIR "/schema");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		if (asprintf(&out, "%s/../schema", exe) >= 0 && stat(out, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			return out;
		free(out);
		out = NULL;
		/* out-of-tree build: the source tree is recorded by configure */
		if (asprintf(&out, "%s/schema", SHP_ABS_SRCDIR) >= 0 && stat(out, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			return out;
		free(out);
	}
	return strdup(SHP_PKGDATADIR "/schema");
}

/* The installed seed catalogue, else the source tree's (running from a build directory). */
static char *default_seed_dir(void)
{
	struct stat st;

	if (stat(SHP_PKGDATADIR "/seed", &st) == 0 && S_ISDIR(st.st_mode))
		return strdup(SHP_PKGDATADIR "/seed");
	if (stat(SHP_ABS_SRCDIR "/deploy/seed", &st) == 0 && S_ISDIR(st.st_mode))
		return strdup(SHP_ABS_SRCDIR "/deploy/seed");
	return strdup(SHP_PKGDATADIR "/seed");
}

static int fill_computed(struct shd_config *cfg, struct shp_error *err)
{
	if (!cfg->state_dir && !(cfg->state_dir = default_state_dir()))
		return shp_error_set(err, SHP_E_INVAL,
				     "cannot determine a state directory: set --state-dir");
	if (!cfg->socket_path &&
	    asprintf(&cfg->socket_path, "%s/shepherdd.sock", cfg->state_dir) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (!cfg->schema_dir && !(cfg->schema_dir = default_schema_dir()))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (!cfg->seed_dir && !(cfg->seed_dir = default_seed_dir()))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (!cfg->provider_key_file &&
	    asprintf(&cfg->provider_key_file, "%s/credentials.key", cfg->state_dir) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (cfg->tls_listen && (!cfg->tls_cert || !cfg->tls_key))
		return shp_error_set(err, SHP_E_INVAL, "tls.listen needs tls.cert and tls.key");
	if (cfg->tls_client_ca && !cfg->tls_listen)
		return shp_error_set(err, SHP_E_INVAL, "tls.client_ca needs tls.listen");
	if (strlen(cfg->socket_path) >= 108)
		return shp_error_set(err, SHP_E_INVAL,
				     "socket path '%s' is longer than a Unix socket allows (107)",
				     cfg->socket_path);
	return 0;
}

/* The getopt table: --config, --verbose, and one flag per option. */
static struct option *build_longopts(void)
{
	size_t n = SHP_ARRAY_SIZE(opts);
	struct option *lo = calloc(n + 3, sizeof(*lo));

	if (!lo)
		return NULL;
	lo[0] = (struct option){"config", required_argument, NULL, FLAG_CONFIG};
	lo[1] = (struct option){"verbose", no_argument, NULL, FLAG_VERBOSE};
	for (size_t i = 0; i < n; i++)
		lo[i + 2] = (struct option){opts[i].flag, required_argument, NULL,
					    FLAG_OPT_BASE + (int)i};
	return lo;
}

/* Find --config / -c before anything else, so the file is read before env and flags. */
static const char *find_config_flag(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}

static char *default_config_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *out = NULL;

	if (geteuid() == 0)
		return strdup(SHP_SYSCONFDIR "/shepherd/shepherdd.yaml");
	if (xdg && *xdg == '/')
		return asprintf(&out, "%s/shepherd/shepherdd.yaml", xdg) < 0 ? NULL : out;
	if (home && *home == '/')
		return asprintf(&out, "%s/.config/shepherd/shepherdd.yaml", home) < 0 ? NULL : out;
	return NULL;
}

struct shd_config *shd_config_load(int argc, char **argv, int *ret_argi, struct shp_error *err)
{
	_cleanup_(shd_config_freep) struct shd_config *cfg = calloc(1, sizeof(*cfg));
	_cleanup_free_ struct option *lo = build_longopts();
	const char *path;
	int c;

	if (!cfg || !lo) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	if (set_defaults(cfg, err) < 0)
		return NULL;

	path = find_config_flag(argc, argv);
	if (!path)
		path = getenv("SHEPHERDD_CONFIG");
	if (path) {
		if (load_file(cfg, path, true, err) < 0)
			return NULL;
	} else {
		_cleanup_free_ char *def = default_config_path();
		if (def && load_file(cfg, def, false, err) < 0)
			return NULL;
	}
	if (apply_env(cfg, err) < 0)
		return NULL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+v", lo, NULL)) != -1) {
		if (c == FLAG_CONFIG)
			continue;
		if (c == 'v' || c == FLAG_VERBOSE) {
			cfg->log_level = SHP_LOG_DEBUG;
			continue;
		}
		if (c >= FLAG_OPT_BASE && c < FLAG_OPT_BASE + (int)SHP_ARRAY_SIZE(opts)) {
			const struct opt *o = &opts[c - FLAG_OPT_BASE];
			char src[80];
			(void)snprintf(src, sizeof(src), "--%s", o->flag);
			if (set_opt(cfg, o, optarg, src, err) < 0) {
				err->code = SHP_E_USAGE;
				return NULL;
			}
			continue;
		}
		if (c == ':' || (c == '?' && optopt))
			shp_error_set(err, SHP_E_USAGE, "option '%s' needs a value",
				      argv[optind - 1]);
		else
			shp_error_set(err, SHP_E_USAGE, "unknown option '%s'", argv[optind - 1]);
		return NULL;
	}
	if (fill_computed(cfg, err) < 0)
		return NULL;
	if (ret_argi)
		*ret_argi = optind;
	return TAKE_PTR(cfg);
}

struct shd_config *shd_config_free(struct shd_config *cfg)
{
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++)
		if (opts[i].type == OPT_STRING)
			free(*str_slot(cfg, &opts[i]));
	json_decref(cfg->admins);
	free(cfg->config_path);
	free(cfg);
	return NULL;
}

static bool key_is_secret(const struct opt *o)
{
	/* a database URL may carry a password */
	return strcmp(o->key, "database.url") == 0;
}

json_t *shd_config_to_json(const struct shd_config *cfg)
{
	json_t *root = json_object();

	if (!root)
		return NULL;
	(void)json_object_set_new(root, "config_file",
				  cfg->config_path ? json_string(cfg->config_path) : json_null());
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];
		const char *base = (const char *)cfg + o->offset;
		json_t *v = NULL;
		char text[32];

		switch (o->type) {
		case OPT_STRING: {
			const char *s = *(char *const *)base;
			if (s && key_is_secret(o)) {
				json_t *tmp = json_string(s);
				json_t *wrap = json_pack("{s:o}", "url", tmp);
				json_t *masked = shp_mask_json(wrap);
				v = json_incref(json_object_get(masked, "url"));
				json_decref(masked);
				json_decref(wrap);
			} else {
				v = s ? json_string(s) : json_null();
			}
			break;
		}
		case OPT_INT:
		case OPT_DURATION_S: v = json_integer(*(const int *)base); break;
		case OPT_DURATION_MS: v = json_integer(*(const int *)base); break;
		case OPT_SIZE: v = json_integer((json_int_t) * (const uint64_t *)base); break;
		case OPT_MODE:
			(void)snprintf(text, sizeof(text), "%04o", *(const unsigned *)base);
			v = json_string(text);
			break;
		case OPT_LOG_LEVEL: v = json_string(shp_log_level_to_string(cfg->log_level)); break;
		case OPT_LOG_FORMAT:
			v = json_string(cfg->log_format == SHP_LOG_JSON ? "json" : "logfmt");
			break;
		case OPT_NAMES: v = json_deep_copy(cfg->admins); break;
		case OPT_BOOL: v = json_boolean(*(const bool *)base); break;
		}
		(void)json_object_set_new(root, o->key, v ? v : json_null());
	}
	return root;
}

void shd_config_print_help(FILE *f)
{
	fprintf(f,
		"Usage: shepherdd [OPTION...]\n"
		"       shepherdd migrate status|up|down [N] [OPTION...]\n"
		"\n"
		"The shepherd daemon: serves the shepherd API on a Unix socket (and TLS), keeps\n"
		"all state in PostgreSQL (an embedded server when no database URL is set).\n"
		"\n"
		"  -h, --help                             show this help and exit\n"
		"      --version                          show the version and exit\n"
		"      --check-config                     validate the configuration, print it "
		"as JSON, exit\n"
		"      --config FILE                      configuration file (YAML; see "
		"shepherd.conf(5)); also $SHEPHERDD_CONFIG\n"
		"  -v, --verbose                          log at debug level\n");
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++) {
		char lhs[64];
		(void)snprintf(lhs, sizeof(lhs), "--%s %s", opts[i].flag, opts[i].arg);
		fprintf(f, "      %-34s %s\n", lhs, opts[i].help);
		fprintf(f, "      %-34s [%s, $%s%s%s]\n", "", opts[i].key, opts[i].env,
			opts[i].def ? ", default " : "", opts[i].def ? opts[i].def : "");
	}
	fprintf(f, "\nSee shepherdd(8) and shepherd.conf(5).\n");
}

void shd_config_print_man_keys(FILE *f)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];
		fprintf(f, ".TP\n.B %s\n", o->key);
		fprintf(f, "%s.\n", o->help);
		fprintf(f, "Environment\n.BR %s ;\nflag\n.BR \\-\\-%s\\ \\fI%s\\fR", o->env,
			o->flag, o->arg);
		if (o->def)
			fprintf(f, ";\ndefault\n.BR %s", o->def);
		fprintf(f, ".\n");
	}
}
