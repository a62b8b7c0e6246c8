/*
 * shepherdd's entry point: configuration, logging, the database (embedded or configured),
 * migrations, the pool and the listeners, then a signal loop that also supervises the embedded
 * PostgreSQL. `shepherdd migrate status|up|down [N]` manages the schema by hand.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "error.h"
#include "log.h"
#include "migrate.h"
#include "pgembed.h"
#include "provider.h"
#include "events.h"
#include "batch.h"
#include "health.h"
#include "inbox.h"
#include "locks.h"
#include "exec.h"
#include "gov.h"
#include "gov-finish.h"
#include "queue.h"
#include "reconcile.h"
#include "shepherdd.h"
#include "util.h"
#include "watcher.h"

static atomic_bool shutdown_requested;

static int die(const struct shp_error *err)
{
	fprintf(stderr, "shepherdd: error: %s\n", err->msg);
	return err->code == SHP_E_USAGE ? 2 : 1;
}

/* mkdir -p with mode for the last component. */
static int make_dirs(const char *path, mode_t mode, struct shp_error *err)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return shp_error_set(err, SHP_E_INVAL, "path '%s' is too long", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return shp_error_errno(err, errno, "creating '%s'", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return shp_error_errno(err, errno, "creating '%s'", buf);
	return 0;
}

struct db_handle {
	struct shd_pgembed *pg;
	struct shd_pgembed_config pgcfg;
	char *conninfo;
};

static int db_start(const struct shd_config *cfg, struct db_handle *h, struct shp_error *err)
{
	if (cfg->database_url) {
		h->conninfo = strdup(cfg->database_url);
		return h->conninfo ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	h->pgcfg = (struct shd_pgembed_config){
		.state_dir = cfg->state_dir,
		.bindir = cfg->pg_bindir,
		.run_as = cfg->pg_user,
		.start_timeout_ms = cfg->pg_start_timeout_ms,
	};
	log_info("starting the embedded PostgreSQL in '%s'", cfg->state_dir);
	h->pg = shd_pgembed_start(&h->pgcfg, err);
	if (!h->pg)
		return shp_error_prefix(err, "embedded PostgreSQL");
	h->conninfo = strdup(shd_pgembed_conninfo(h->pg));
	return h->conninfo ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

static void db_stop(struct db_handle *h)
{
	if (h->pg) {
		log_info("stopping the embedded PostgreSQL");
		h->pg = shd_pgembed_stop(h->pg, 30000);
	}
	free(h->conninfo);
	h->conninfo = NULL;
}

static struct shd_dbpool_config pool_config(const struct shd_config *cfg, const char *conninfo)
{
	return (struct shd_dbpool_config){
		.conninfo = conninfo,
		.size = cfg->db_pool_size,
		.checkout_timeout_ms = cfg->db_checkout_timeout_ms,
		.statement_timeout_ms = cfg->db_statement_timeout_ms,
		.lock_timeout_ms = cfg->db_lock_timeout_ms,
		.idle_in_tx_timeout_ms = cfg->db_idle_in_tx_timeout_ms,
		.application_name = "shepherdd",
	};
}

/* Apply pending migrations; fill the daemon's schema facts. */
static int migrate_at_start(struct shd_daemon *d, const struct shd_dbpool_config *pc,
			    struct shp_error *err)
{
	PGconn *conn = shd_db_connect(pc, err);
	json_auto_t *status = NULL;
	int applied = 0, r;

	if (!conn)
		return -err->code;
	r = shd_migrate_up(conn, d->cfg->schema_dir, 0, &applied, err);
	if (r == 0 && applied > 0)
		log_info("applied %d migration(s) from '%s'", applied, d->cfg->schema_dir);
	if (r == 0) {
		status = shd_migrate_status(conn, d->cfg->schema_dir, err);
		if (!status)
			r = -err->code;
		else
			d->schema_latest =
				(int)json_integer_value(json_object_get(status, "latest"));
	}
	if (r == 0) {
		int v = PQserverVersion(conn);
		(void)snprintf(d->pg_server_version, sizeof(d->pg_server_version), "%d.%d",
			       v / 10000, v % 10000);
	}
	PQfinish(conn);
	return r;
}

/* Import the seed catalogue into a database that never had it (gov.h shd_seed_import). */
static int seed_at_start(const struct shd_config *cfg, const struct shd_dbpool_config *pc,
			 struct shp_error *err)
{
	PGconn *conn = shd_db_connect(pc, err);
	bool done = false;
	int r;

	if (!conn)
		return -err->code;
	r = shd_seed_import(conn, cfg->seed_dir, &done, err);
	if (r == 0 && done)
		log_info("imported the seed catalogue from '%s'", cfg->seed_dir);
	PQfinish(conn);
	return r;
}

/* Block the signals main waits for, before any thread exists, so threads inherit the mask. */
static void setup_signals(sigset_t *set)
{
	struct sigaction ign = {.sa_handler = SIG_IGN};

	(void)sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* The job queue runs beside the listeners, on connections of its own. */
static struct shd_queue *queue_start(const struct shd_config *cfg,
				     const struct shd_dbpool_config *pc, struct shd_daemon *d,
				     struct shp_error *err)
{
	struct shd_queue_config qc = {
		.db = pc,
		.workers = cfg->queue_workers,
		.fetch_batch = cfg->queue_fetch_batch,
		.poll_interval_ms = cfg->queue_poll_interval_ms,
		.shutdown_grace_ms = cfg->queue_shutdown_grace_ms,
		.retry_base_ms = cfg->queue_retry_base_ms,
		.maintenance = true,
	};
	struct shd_queue *q = shd_queue_new(&qc, err);

	if (!q)
		return NULL;
	if (shd_jobs_test_register(q, err) < 0 || shd_events_register(q, err) < 0 ||
	    shd_locks_register(q, shd_exec_reaped_counter(d->exec), err) < 0 ||
	    shd_exec_register(d->exec, q, err) < 0 || shd_gov_register(q, err) < 0 ||
	    shd_batch_register(q, d->exec, err) < 0 ||
	    shd_inbox_register(q, &cfg->notify_retention_days, err) < 0 ||
	    shd_console_register(q, err) < 0 ||
	    shd_reconcile_register(q, d, cfg->reconcile_interval_s, cfg->reconcile_mode,
				   cfg->adoption_interval_s, err) < 0 ||
	    shd_health_register(d->health, q, err) < 0 || shd_queue_start(q, err) < 0)
		return shd_queue_free(q);
	return q;
}

/* The cluster health checker: a periodic job of the queue, and POST .../health. */
static struct shd_health *health_new(struct shd_daemon *d, struct shp_error *err)
{
	struct shd_health_config hc = {
		.pool = d->pool,
		.provider = shd_daemon_provider,
		.provider_ud = d,
		.interval_s = d->cfg->health_interval_s,
	};

	return shd_health_new(&hc, err);
}

/* The VM watcher follows the queue's leadership: one daemon watches. */
static struct shd_watcher *watcher_start(struct shd_daemon *d, struct shd_queue *q,
					 struct shp_error *err)
{
	struct shd_watcher_config wc = {
		.pool = d->pool,
		.provider = shd_daemon_provider,
		.provider_ud = d,
		.queue = q,
		.scan_interval_ms = d->cfg->watch_scan_interval_ms,
		.status_window_s = d->cfg->notify_status_window_s,
	};
	struct shd_watcher *w = shd_watcher_new(&wc, err);

	if (w && shd_watcher_start(w, err) < 0)
		w = shd_watcher_free(w);
	return w;
}

static struct shd_exec_engine *exec_engine(const struct shd_config *cfg, struct shp_error *err)
{
	struct shd_exec_config ec = {
		.immediate_max_ms = cfg->exec_immediate_max_ms,
		.dedupe_window_s = cfg->exec_dedupe_window_s,
		.default_enabled = cfg->exec_enabled,
	};

	return shd_exec_engine_new(&ec, err);
}

static void notify(const char *state)
{
	struct shp_error err = SHP_ERROR_INIT;

	if (shd_sd_notify(state, &err) < 0)
		log_warn("service manager notification failed, ignoring: %s", err.msg);
}

/* Keep the embedded server running: restart it when it died (spaced by a backoff). */
static void supervise_pg(struct db_handle *h, uint64_t *next_try_ns, int *backoff_s)
{
	struct shp_error err = SHP_ERROR_INIT;

	if (!h->pg || shd_pgembed_is_running(h->pg))
		return;
	if (shp_now_monotonic_ns() < *next_try_ns)
		return;
	log_error("the embedded PostgreSQL exited; restarting it");
	h->pg = shd_pgembed_stop(h->pg, 1000);
	h->pg = shd_pgembed_start(&h->pgcfg, &err);
	if (!h->pg) {
		log_error("restarting the embedded PostgreSQL failed: %s (retrying in %d s)",
			  err.msg, *backoff_s);
		*next_try_ns = shp_now_monotonic_ns() + (uint64_t)*backoff_s * 1000000000ull;
		if (*backoff_s < 60)
			*backoff_s *= 2;
		return;
	}
	*backoff_s = 1;
	log_info("the embedded PostgreSQL is back");
}

static int run_daemon(const struct shd_config *cfg)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct db_handle db = {0};
	struct shd_daemon d = {.cfg = cfg};
	struct shd_dbpool_config pc;
	struct shd_server *srv = NULL;
	struct shd_queue *queue = NULL;
	uint64_t next_try = 0;
	int backoff = 1, status = 1;
	sigset_t set;

	setup_signals(&set);
	d.owner_uid = geteuid();
	d.started_at_us = shp_now_realtime_us();
	d.embedded_db = cfg->database_url == NULL;
	/* before any thread: the sender is only read afterwards */
	if (shd_notify_use(cfg->notify_sender, &err) < 0 ||
	    make_dirs(cfg->state_dir, 0755, &err) < 0 || db_start(cfg, &db, &err) < 0)
		goto out;
	pc = pool_config(cfg, db.conninfo);
	if (migrate_at_start(&d, &pc, &err) < 0) {
		shp_error_prefix(&err, "migrations");
		goto out;
	}
	if (seed_at_start(cfg, &pc, &err) < 0) {
		shp_error_prefix(&err, "seed catalogue");
		goto out;
	}
	d.pool = shd_dbpool_new(&pc, &err);
	d.metrics = shd_metrics_new(shd_routes_count);
	if (!d.pool || !d.metrics)
		goto out;
	d.providers =
		shd_providers_new(d.pool, cfg->provider_key_file, cfg->provider_max_inflight, &err);
	if (!d.providers)
		goto out;
	shd_providers_set_timeout(d.providers, cfg->provider_timeout_ms);
	/* the same key seals console tokens; earlier keys still open theirs */
	d.console_keys = shd_console_keys_load(cfg->provider_key_file,
					       cfg->console_previous_key_files, &err);
	if (!d.console_keys)
		goto out;
	d.exec = exec_engine(cfg, &err);
	if (!d.exec)
		goto out;
	shd_exec_set_providers(d.exec, d.providers);
	shd_gov_set_hooks(d.exec);
	d.rate = shd_ratelimit_new(cfg->rl_api_rate, cfg->rl_api_burst);
	if (!d.rate)
		goto out;
	d.sse = shd_sse_hub_new(&pc, cfg->http_max_streams, &err);
	if (!d.sse)
		goto out;
	/* before the listeners: requests may ask for a check at once */
	d.health = health_new(&d, &err);
	if (!d.health)
		goto out;
	srv = shd_server_start(&d, &err);
	if (!srv)
		goto out;
	queue = queue_start(cfg, &pc, &d, &err);
	if (!queue)
		goto out;
	d.watcher = watcher_start(&d, queue, &err);
	if (!d.watcher)
		goto out;
	log_info("shepherdd %s ready: socket '%s'%s%s, database %s, schema version %d",
		 PACKAGE_VERSION, cfg->socket_path, cfg->tls_listen ? ", TLS on " : "",
		 cfg->tls_listen ? cfg->tls_listen : "", d.embedded_db ? "embedded" : "external",
		 d.schema_latest);
	notify("READY=1\nSTATUS=serving");

	while (!atomic_load(&shutdown_requested)) {
		struct timespec ts = {.tv_sec = 1};
		int sig = sigtimedwait(&set, NULL, &ts);

		if (sig == SIGTERM || sig == SIGINT) {
			log_info("received %s, shutting down",
				 sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP)
			log_warn("SIGHUP: configuration reload is not supported; restart shepherdd "
				 "to apply changes");
		supervise_pg(&db, &next_try, &backoff);
	}
	atomic_store(&d.shutting_down, true);
	notify("STOPPING=1");
	status = 0;
out:
	if (status != 0)
		log_error("%s", err.msg);
	shd_sse_hub_close_all(d.sse);
	srv = shd_server_stop(srv);
	d.sse = shd_sse_hub_free(d.sse);
	d.watcher = shd_watcher_free(d.watcher);
	queue = shd_queue_free(queue);
	d.health = shd_health_free(d.health);
	d.exec = shd_exec_engine_free(d.exec);
	d.rate = shd_ratelimit_free(d.rate);
	d.providers = shd_providers_free(d.providers);
	d.console_keys = shd_console_keys_free(d.console_keys);
	d.pool = shd_dbpool_free(d.pool);
	d.metrics = shd_metrics_free(d.metrics);
	db_stop(&db);
	if (status == 0)
		log_info("stopped");
	return status;
}

static int print_migrate_status(const json_t *st)
{
	size_t i;
	json_t *m;

	printf("schema version %lld of %lld, %lld pending\n",
	       (long long)json_integer_value(json_object_get(st, "current")),
	       (long long)json_integer_value(json_object_get(st, "latest")),
	       (long long)json_integer_value(json_object_get(st, "pending")));
	json_array_foreach(json_object_get(st, "migrations"), i, m)
	{
		const char *at = json_string_value(json_object_get(m, "applied_at"));
		printf("  %04lld  %-32s %s\n",
		       (long long)json_integer_value(json_object_get(m, "version")),
		       json_string_value(json_object_get(m, "name")),
		       json_is_true(json_object_get(m, "applied")) ? (at ? at : "applied")
								   : "pending");
	}
	return 0;
}

static int run_migrate(const struct shd_config *cfg, const char *verb, int steps)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct db_handle db = {0};
	struct shd_dbpool_config pc;
	json_auto_t *st = NULL;
	PGconn *conn = NULL;
	int n = 0, r = -1;

	if (make_dirs(cfg->state_dir, 0755, &err) < 0 || db_start(cfg, &db, &err) < 0)
		goto out;
	pc = pool_config(cfg, db.conninfo);
	conn = shd_db_connect(&pc, &err);
	if (!conn)
		goto out;
	if (strcmp(verb, "up") == 0) {
		r = shd_migrate_up(conn, cfg->schema_dir, steps, &n, &err);
		if (r == 0)
			printf("applied %d migration(s)\n", n);
	} else if (strcmp(verb, "down") == 0) {
		r = shd_migrate_down(conn, cfg->schema_dir, steps, &n, &err);
		if (r == 0)
			printf("rolled back %d migration(s)\n", n);
	} else {
		r = 0;
	}
	if (r == 0) {
		st = shd_migrate_status(conn, cfg->schema_dir, &err);
		r = st ? print_migrate_status(st) : -1;
	}
out:
	if (conn)
		PQfinish(conn);
	db_stop(&db);
	if (r < 0) {
		fprintf(stderr, "shepherdd: error: %s\n", err.msg);
		return 1;
	}
	return 0;
}

static bool has_flag(int argc, char **argv, const char *a, const char *b)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], a) == 0 || (b && strcmp(argv[i], b) == 0))
			return true;
	}
	return false;
}

/* Remove argv[i] (shifting the rest down). */
static void drop_arg(int *argc, char **argv, int i)
{
	memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof(*argv));
	(*argc)--;
}

/* Remove "migrate VERB [N]" at argv[i]; 0, or the exit status of a usage error. */
static int take_migrate_args(int *argc, char **argv, int i, const char **ret_verb, int *ret_steps)
{
	const char *verb = i + 1 < *argc ? argv[i + 1] : "";
	long long v;

	if (strcmp(verb, "status") != 0 && strcmp(verb, "up") != 0 && strcmp(verb, "down") != 0) {
		fprintf(stderr, "shepherdd: error: usage: shepherdd migrate status|up|down [N]\n");
		return 2;
	}
	*ret_verb = verb;
	drop_arg(argc, argv, i);
	drop_arg(argc, argv, i);
	if (i < *argc && argv[i][0] != '-') {
		if (strcmp(verb, "status") == 0 ||
		    shp_parse_int(argv[i], 1, 100000, &v, NULL) < 0) {
			fprintf(stderr, "shepherdd: error: N must be a positive number\n");
			return 2;
		}
		*ret_steps = (int)v;
		drop_arg(argc, argv, i);
	}
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_(shd_config_freep) struct shd_config *cfg = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	const char *migrate_verb = NULL;
	bool check_config;
	int steps = 0, argi = 0;

	if (has_flag(argc, argv, "--help", "-h")) {
		shd_config_print_help(stdout);
		return 0;
	}
	if (has_flag(argc, argv, "--version", NULL)) {
		printf("shepherdd %s (api %d, commit %s)\n", PACKAGE_VERSION, SHP_API_VERSION,
		       SHP_GIT_COMMIT);
		return 0;
	}
	if (has_flag(argc, argv, "--man-config-keys", NULL)) {
		shd_config_print_man_keys(stdout);
		return 0;
	}
	if (has_flag(argc, argv, "--list-routes", NULL)) {
		/* for the documentation checks: every route as "METHOD PATTERN" */
		for (size_t i = 0; i < shd_routes_count; i++)
			printf("%s %s\n", shd_routes[i].method, shd_routes[i].pattern);
		return 0;
	}
	check_config = has_flag(argc, argv, "--check-config", NULL);
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--check-config") == 0)
			drop_arg(&argc, argv, i--);
	cfg = shd_config_load(argc, argv, &argi, &err);
	if (!cfg)
		return die(&err);
	if (argi < argc && strcmp(argv[argi], "migrate") == 0) {
		/* "migrate VERB [N]" may stand among the options: take it out and parse again */
		int r = take_migrate_args(&argc, argv, argi, &migrate_verb, &steps);
		if (r != 0)
			return r;
		cfg = shd_config_free(cfg);
		cfg = shd_config_load(argc, argv, &argi, &err);
		if (!cfg)
			return die(&err);
	}
	if (argi < argc) {
		fprintf(stderr,
			"shepherdd: error: unexpected argument '%s' (see shepherdd --help)\n",
			argv[argi]);
		return 2;
	}
	shp_log_setup(cfg->log_level, cfg->log_format, STDERR_FILENO);
	if (check_config) {
		json_auto_t *j = shd_config_to_json(cfg);
		(void)json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
		return 0;
	}

	/* process-wide initialisation, before any thread exists */
	json_object_seed(0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "shepherdd: error: initialising libcurl failed\n");
		return 1;
	}
	if (!PQisthreadsafe()) {
		fprintf(stderr, "shepherdd: error: this libpq is not thread-safe\n");
		return 1;
	}
	if (migrate_verb) {
		int r = run_migrate(cfg, migrate_verb, steps);
		curl_global_cleanup();
		return r;
	}
	{
		int r = run_daemon(cfg);
		curl_global_cleanup();
		return r;
	}
}
