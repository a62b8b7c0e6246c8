/*
 * The daemon's database layer: the bounded connection pool (lazy connects, fail-fast backoff
 * while the server is down, rollback or discard on checkin), standalone connections with the
 * same session settings, and parameterised execution with SQLSTATE -> error code mapping.
 * See docs/internals/dbpool.md for the pool's contract.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-events.h>
#include <libpq-fe.h>

#include "db.h"
#include "error.h"
#include "util.h"

#define CONNINFO_MAX 4096
#define APPNAME_MAX 63 /* NAMEDATALEN - 1 */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_S "10"

struct shd_dbpool {
	/* Immutable after shd_dbpool_new. */
	char *conninfo;
	char *application_name;
	int size;
	int checkout_timeout_ms;
	int statement_timeout_ms;
	int lock_timeout_ms;
	int idle_in_tx_timeout_ms;

	pthread_mutex_t lock; /* protects everything below */
	pthread_cond_t freed; /* a connection came back, or a connect attempt ended */
	PGconn **idle;        /* stack of idle connections, n_idle of them */
	int n_idle;
	int open;       /* idle + checked out */
	int connecting; /* connect attempts in progress (they count against size) */
	int waiting;
	uint64_t checkouts;
	uint64_t timeouts;
	uint64_t connect_failures;
	uint64_t resets;
	bool healthy;
	int backoff_min_ms;   /* the first pause */
	int backoff_ms;       /* 0 while healthy */
	uint64_t retry_at_ns; /* no connect attempt before this (monotonic) */
};

static void flatten(char *s)
{
	size_t n;

	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* The libpq message of conn, on one line, into buf. */
static const char *conn_message(const PGconn *conn, char *buf, size_t size)
{
	const char *m = conn ? PQerrorMessage(conn) : NULL;

	(void)snprintf(buf, size, "%s", m && *m ? m : "out of memory");
	flatten(buf);
	return buf;
}

static char *ms_text(int ms, char *buf, size_t size)
{
	if (ms <= 0)
		return NULL; /* set_config(name, NULL, false) restores the server default */
	(void)snprintf(buf, size, "%d", ms);
	return buf;
}

static int check_config(const struct shd_dbpool_config *cfg, struct shp_error *err)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	size_t len;

	if (!cfg || !cfg->conninfo || !*cfg->conninfo)
		return shp_error_set(err, SHP_E_INVAL, "no database connection string configured");
	len = strlen(cfg->conninfo);
	if (len > CONNINFO_MAX)
		return shp_error_set(
			err, SHP_E_INVAL,
			"database connection string is too long (%zu bytes, at most %d)", len,
			CONNINFO_MAX);
	if (cfg->statement_timeout_ms < 0 || cfg->lock_timeout_ms < 0 ||
	    cfg->idle_in_tx_timeout_ms < 0)
		return shp_error_set(err, SHP_E_INVAL, "database timeouts must not be negative");
	if (cfg->application_name && strlen(cfg->application_name) > APPNAME_MAX)
		return shp_error_set(err, SHP_E_INVAL, "application name is longer than %d bytes",
				     APPNAME_MAX);
	/* libpq's parse errors may quote pieces of the string (a password): never pass them on. */
	opts = PQconninfoParse(cfg->conninfo, &perr);
	if (!opts) {
		bool oom = !perr;

		PQfreemem(perr);
		return oom ? shp_error_set(err, SHP_E_NOMEM,
					   "parsing the database connection string")
			   : shp_error_set(err, SHP_E_INVAL, "invalid database connection string");
	}
	PQconninfoFree(opts);
	return 0;
}

/*
 * Settings every session gets, in one parameterised statement. DateStyle and TimeZone fix the
 * text form of timestamps the daemon turns into RFC 3339.
 */
static int apply_session_settings(PGconn *conn, const struct shd_dbpool_config *cfg,
				  struct shp_error *err)
{
	static const char sql[] = "SELECT set_config('statement_timeout', $1, false), "
				  "set_config('lock_timeout', $2, false), "
				  "set_config('idle_in_transaction_session_timeout', $3, false), "
				  "set_config('DateStyle', 'ISO, YMD', false), "
				  "set_config('TimeZone', 'UTC', false)";
	char b1[16], b2[16], b3[16];
	const char *params[3] = {
		ms_text(cfg->statement_timeout_ms, b1, sizeof(b1)),
		ms_text(cfg->lock_timeout_ms, b2, sizeof(b2)),
		ms_text(cfg->idle_in_tx_timeout_ms, b3, sizeof(b3)),
	};
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, sql, 3, params, err);

	if (!res)
		return shp_error_prefix(err, "applying database session settings");
	return 0;
}

/*
 * libpq prints notices (and FATAL messages that arrive on an idle connection) to stderr by
 * default; the daemon's output is its log, and this layer does not log: drop them.
 */
static void ignore_notice(void *arg, const PGresult *res)
{
}

PGconn *shd_db_connect(const struct shd_dbpool_config *cfg, struct shp_error *err)
{
	/* Later keywords win: the caller's connect_timeout may override ours, not the reverse. */
	const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
	const char *vals[] = {CONNECT_TIMEOUT_S, NULL, NULL, NULL};
	char msg[SHP_ERROR_MSG_MAX];
	PGconn *conn;
	int r;

	r = check_config(cfg, err);
	if (r < 0)
		return NULL;
	vals[1] = cfg->conninfo;
	if (cfg->application_name && *cfg->application_name)
		vals[2] = cfg->application_name;
	else
		keys[2] = NULL;
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		shp_error_set(err, conn ? SHP_E_UNAVAIL : SHP_E_NOMEM,
			      "connecting to the database: %s",
			      conn_message(conn, msg, sizeof(msg)));
		PQfinish(conn);
		return NULL;
	}
	(void)PQsetNoticeReceiver(conn, ignore_notice, NULL);
	if (apply_session_settings(conn, cfg, err) < 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void pool_config(const struct shd_dbpool *pool, struct shd_dbpool_config *cfg)
{
	*cfg = (struct shd_dbpool_config){
		.conninfo = pool->conninfo,
		.size = pool->size,
		.checkout_timeout_ms = pool->checkout_timeout_ms,
		.statement_timeout_ms = pool->statement_timeout_ms,
		.lock_timeout_ms = pool->lock_timeout_ms,
		.idle_in_tx_timeout_ms = pool->idle_in_tx_timeout_ms,
		.backoff_min_ms = pool->backoff_min_ms,
		.application_name = pool->application_name,
	};
}

struct shd_dbpool *shd_dbpool_new(const struct shd_dbpool_config *cfg, struct shp_error *err)
{
	_cleanup_free_ struct shd_dbpool *pool = NULL;
	pthread_condattr_t attr;
	int r;

	r = check_config(cfg, err);
	if (r < 0)
		return NULL;
	if (cfg->size < 1 || cfg->size > 1000) {
		shp_error_set(err, SHP_E_INVAL, "database pool size %d is out of range 1-1000",
			      cfg->size);
		return NULL;
	}
	if (cfg->checkout_timeout_ms < 0) {
		shp_error_set(err, SHP_E_INVAL, "database checkout timeout must not be negative");
		return NULL;
	}
	if (cfg->backoff_min_ms < 0 || cfg->backoff_min_ms > BACKOFF_MAX_MS) {
		shp_error_set(err, SHP_E_INVAL,
			      "database connect backoff %d ms is out of range 0-%d",
			      cfg->backoff_min_ms, BACKOFF_MAX_MS);
		return NULL;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool) {
		shp_error_set(err, SHP_E_NOMEM, "allocating the database pool");
		return NULL;
	}
	pool->conninfo = strdup(cfg->conninfo);
	pool->application_name = cfg->application_name ? strdup(cfg->application_name) : NULL;
	pool->idle = calloc((size_t)cfg->size, sizeof(*pool->idle));
	if (!pool->conninfo || !pool->idle || (cfg->application_name && !pool->application_name)) {
		free(pool->conninfo);
		free(pool->application_name);
		free(pool->idle);
		shp_error_set(err, SHP_E_NOMEM, "allocating the database pool");
		return NULL;
	}
	pool->size = cfg->size;
	pool->checkout_timeout_ms = cfg->checkout_timeout_ms;
	pool->statement_timeout_ms = cfg->statement_timeout_ms;
	pool->lock_timeout_ms = cfg->lock_timeout_ms;
	pool->idle_in_tx_timeout_ms = cfg->idle_in_tx_timeout_ms;
	pool->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : BACKOFF_MIN_MS;
	pool->healthy = true;

	(void)pthread_mutex_init(&pool->lock, NULL);
	(void)pthread_condattr_init(&attr);
	(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&pool->freed, &attr);
	(void)pthread_condattr_destroy(&attr);
	return TAKE_PTR(pool);
}

struct shd_dbpool *shd_dbpool_free(struct shd_dbpool *pool)
{
	if (!pool)
		return NULL;
	for (int i = 0; i < pool->n_idle; i++)
		PQfinish(pool->idle[i]);
	(void)pthread_cond_destroy(&pool->freed);
	(void)pthread_mutex_destroy(&pool->lock);
	free(pool->idle);
	free(pool->conninfo);
	free(pool->application_name);
	free(pool);
	return NULL;
}

/*
 * An idle connection may have died while it sat in the pool (server restart, idle timeout):
 * the server then sent a FATAL message and closed the socket. Read what is pending without
 * blocking, until EOF shows up or nothing more is there.
 */
static bool conn_is_alive(PGconn *conn)
{
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

	for (int i = 0; i < 4; i++) {
		if (PQstatus(conn) != CONNECTION_OK || pfd.fd < 0)
			return false;
		if (poll(&pfd, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(conn))
			return false;
	}
	return PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

static void timespec_from_ns(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* Record the outcome of a connect attempt (pool locked). */
static void note_connect(struct shd_dbpool *pool, bool ok)
{
	if (ok) {
		pool->healthy = true;
		pool->backoff_ms = 0;
		pool->retry_at_ns = 0;
		return;
	}
	pool->connect_failures++;
	pool->healthy = false;
	if (pool->backoff_ms == 0)
		pool->backoff_ms = pool->backoff_min_ms;
	else if (pool->backoff_ms < BACKOFF_MAX_MS)
		pool->backoff_ms = pool->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
									 : pool->backoff_ms * 2;
	pool->retry_at_ns = shp_now_monotonic_ns() + (uint64_t)pool->backoff_ms * 1000000u;
}

/* Open a connection for a slot reserved by the caller (pool unlocked here). */
static PGconn *pool_connect(struct shd_dbpool *pool, struct shp_error *err)
{
	struct shd_dbpool_config cfg;
	PGconn *conn;

	pool_config(pool, &cfg);
	conn = shd_db_connect(&cfg, err);
	(void)pthread_mutex_lock(&pool->lock);
	pool->connecting--;
	note_connect(pool, conn != NULL);
	if (conn) {
		pool->open++;
		pool->checkouts++;
	}
	/* Waiters re-evaluate: a slot is free again, or the server is now known to be down. */
	(void)pthread_cond_broadcast(&pool->freed);
	(void)pthread_mutex_unlock(&pool->lock);
	return conn;
}

/* Forget a connection that turned out dead on checkout; the caller closes it. */
static void pool_drop(struct shd_dbpool *pool)
{
	(void)pthread_mutex_lock(&pool->lock);
	pool->open--;
	pool->resets++;
	(void)pthread_cond_broadcast(&pool->freed);
	(void)pthread_mutex_unlock(&pool->lock);
}

PGconn *shd_dbpool_get(struct shd_dbpool *pool, struct shp_error *err)
{
	uint64_t deadline = shp_now_monotonic_ns() + (uint64_t)pool->checkout_timeout_ms * 1000000u;

	(void)pthread_mutex_lock(&pool->lock);
	for (;;) {
		uint64_t now = shp_now_monotonic_ns();
		struct timespec ts;

		if (pool->n_idle > 0) {
			PGconn *conn = pool->idle[--pool->n_idle];

			(void)pthread_mutex_unlock(&pool->lock);
			if (conn_is_alive(conn)) {
				(void)pthread_mutex_lock(&pool->lock);
				pool->checkouts++;
				(void)pthread_mutex_unlock(&pool->lock);
				return conn;
			}
			pool_drop(pool);
			PQfinish(conn);
			(void)pthread_mutex_lock(&pool->lock);
			continue;
		}
		/* While the server is down one thread probes at a time; the others fail at once. */
		if (!pool->healthy && (now < pool->retry_at_ns || pool->connecting > 0)) {
			uint64_t wait_ms =
				now < pool->retry_at_ns ? (pool->retry_at_ns - now) / 1000000u : 0;

			(void)pthread_mutex_unlock(&pool->lock);
			shp_error_set(err, SHP_E_UNAVAIL,
				      "database unavailable (next connection attempt in %llu ms)",
				      (unsigned long long)wait_ms);
			return NULL;
		}
		if (pool->open + pool->connecting < pool->size) {
			pool->connecting++;
			(void)pthread_mutex_unlock(&pool->lock);
			return pool_connect(pool, err);
		}
		if (now >= deadline) {
			pool->timeouts++;
			(void)pthread_mutex_unlock(&pool->lock);
			shp_error_set(err, SHP_E_UNAVAIL,
				      "no database connection became free within %d ms",
				      pool->checkout_timeout_ms);
			return NULL;
		}
		timespec_from_ns(&ts, deadline);
		pool->waiting++;
		(void)pthread_cond_timedwait(&pool->freed, &pool->lock, &ts);
		pool->waiting--;
	}
}

/* Bring a returned connection back to a clean idle state; false if it must be discarded. */
static bool conn_reset_for_reuse(PGconn *conn)
{
	PGresult *res;
	bool ok;

	if (PQstatus(conn) != CONNECTION_OK)
		return false;
	switch (PQtransactionStatus(conn)) {
	case PQTRANS_IDLE: return true;
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR: break;
	default:
		/* A command still running or an unknown state: not worth the risk. */
		return false;
	}
	res = PQexec(conn, "ROLLBACK");
	ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	return ok && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

void shd_dbpool_put(struct shd_dbpool *pool, PGconn *conn)
{
	bool keep;

	if (!conn)
		return;
	keep = conn_reset_for_reuse(conn);
	(void)pthread_mutex_lock(&pool->lock);
	if (keep) {
		pool->idle[pool->n_idle++] = conn;
	} else {
		pool->open--;
		pool->resets++;
	}
	(void)pthread_cond_broadcast(&pool->freed);
	(void)pthread_mutex_unlock(&pool->lock);
	if (!keep)
		PQfinish(conn);
}

void shd_dbpool_get_stats(struct shd_dbpool *pool, struct shd_dbpool_stats *ret)
{
	(void)pthread_mutex_lock(&pool->lock);
	*ret = (struct shd_dbpool_stats){
		.size = pool->size,
		.open = pool->open,
		.in_use = pool->open - pool->n_idle,
		.waiting = pool->waiting,
		.checkouts = pool->checkouts,
		.timeouts = pool->timeouts,
		.connect_failures = pool->connect_failures,
		.resets = pool->resets,
		.backoff_ms = pool->backoff_ms,
		.healthy = pool->healthy,
	};
	(void)pthread_mutex_unlock(&pool->lock);
}

static enum shp_errc code_of_sqlstate(const char *s)
{
	if (!s || strlen(s) != 5)
		return SHP_E_DB;
	if (!strcmp(s, "23505"))
		return SHP_E_CONFLICT;
	if (!strcmp(s, "23503") || !strcmp(s, "23502") || !strcmp(s, "23514") ||
	    !strncmp(s, "22", 2))
		return SHP_E_INVAL;
	if (!strcmp(s, "40001") || !strcmp(s, "40P01"))
		return SHP_E_UNAVAIL;
	if (!strcmp(s, "57014"))
		return SHP_E_TIMEOUT;
	/* Connection exceptions, and the server shutting down or starting up under us. */
	if (!strncmp(s, "08", 2) || !strcmp(s, "57P01") || !strcmp(s, "57P02") ||
	    !strcmp(s, "57P03"))
		return SHP_E_UNAVAIL;
	return SHP_E_DB;
}

static void set_result_error(PGconn *conn, const PGresult *res, struct shp_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	enum shp_errc code = code_of_sqlstate(state);
	char msg[SHP_ERROR_MSG_MAX];

	if (PQstatus(conn) == CONNECTION_BAD)
		code = SHP_E_UNAVAIL;
	if (primary && detail)
		(void)snprintf(msg, sizeof(msg), "%s (%s)", primary, detail);
	else if (primary)
		(void)snprintf(msg, sizeof(msg), "%s", primary);
	else if (res && *PQresultErrorMessage(res))
		(void)snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
	else
		(void)conn_message(conn, msg, sizeof(msg));
	flatten(msg);
	shp_error_set(err, code, "%s", msg);
	if (err && state)
		(void)snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
}

/*
 * Prepared statements. Each connection remembers, in libpq instance data, the statements it has
 * prepared (by a 64-bit hash of their text; the statement is named after it). The first run of
 * a statement on a connection prepares it, later runs only bind and execute: planning is most
 * of the cost of a short query. The cache dies with its connection (PGEVT_CONNDESTROY) and
 * is emptied when libpq resets one. A connection belongs to one thread at a time, so the cache
 * needs no lock.
 */
#define STMT_CACHE_SLOTS 256 /* a power of two; a full cache falls back to unprepared runs */

struct stmt_cache {
	int used;
	uint64_t slot[STMT_CACHE_SLOTS]; /* 0 = empty */
};

static int stmt_event(PGEventId id, void *info, void *pass)
{
	if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		free(PQinstanceData(e->conn, stmt_event));
	} else if (id == PGEVT_CONNRESET) {
		PGEventConnReset *e = info;
		struct stmt_cache *c = PQinstanceData(e->conn, stmt_event);
		if (c)
			memset(c, 0, sizeof(*c));
	}
	return 1;
}

static uint64_t stmt_hash(const char *sql, int nparams)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)nparams;

	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ? h : 1;
}

static struct stmt_cache *stmt_cache_of(PGconn *conn)
{
	struct stmt_cache *c = PQinstanceData(conn, stmt_event);

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (!PQregisterEventProc(conn, stmt_event, "shepherd-statements", NULL) ||
	    !PQsetInstanceData(conn, stmt_event, c)) {
		free(c);
		return NULL;
	}
	return c;
}

/* Find h in the cache: 1 present, 0 absent (*ret_slot: where to add it, or -1 if full). */
static int stmt_lookup(const struct stmt_cache *c, uint64_t h, int *ret_slot)
{
	unsigned i = (unsigned)h & (STMT_CACHE_SLOTS - 1);

	for (int n = 0; n < STMT_CACHE_SLOTS; n++, i = (i + 1) & (STMT_CACHE_SLOTS - 1)) {
		if (c->slot[i] == h)
			return 1;
		if (c->slot[i] == 0) {
			*ret_slot = c->used < STMT_CACHE_SLOTS * 3 / 4 ? (int)i : -1;
			return 0;
		}
	}
	*ret_slot = -1;
	return 0;
}

static PGresult *exec_cached(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	struct stmt_cache *c = stmt_cache_of(conn);
	uint64_t h = stmt_hash(sql, nparams);
	char name[24];
	int slot = -1;

	if (!c)
		return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	(void)snprintf(name, sizeof(name), "shp_%016llx", (unsigned long long)h);
	if (!stmt_lookup(c, h, &slot)) {
		PGresult *prep;

		if (slot < 0)
			return PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
		prep = PQprepare(conn, name, sql, nparams, NULL);
		if (!prep || PQresultStatus(prep) != PGRES_COMMAND_OK)
			return prep; /* the caller reports the error */
		PQclear(prep);
		c->slot[slot] = h;
		c->used++;
	}
	return PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
}

PGresult *shd_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
		      struct shp_error *err)
{
	PGresult *res = exec_cached(conn, sql, nparams, params);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	if (res && (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)) {
		PQclear(res);
		shp_error_set(err, SHP_E_INTERNAL, "COPY is not supported through shd_db_exec");
		return NULL;
	}
	set_result_error(conn, res, err);
	PQclear(res);
	return NULL;
}

int shd_db_command(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct shp_error *err)
{
	struct shp_error local = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, sql, nparams, params, &local);

	if (res)
		return 0;
	if (err)
		*err = local;
	return -(int)local.code;
}

int shd_db_begin(PGconn *conn, struct shp_error *err)
{
	return shd_db_command(conn, "BEGIN", 0, NULL, err);
}

int shd_db_commit(PGconn *conn, struct shp_error *err)
{
	struct shp_error local = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, "COMMIT", 0, NULL, &local);

	if (!res) {
		if (err)
			*err = local;
		return -(int)local.code;
	}
	/* COMMIT of a failed transaction succeeds as a command but rolls back. */
	if (!strcmp(PQcmdStatus(res), "ROLLBACK"))
		return shp_error_set(err, SHP_E_DB, "transaction was rolled back after an error");
	return 0;
}

void shd_db_rollback(PGconn *conn)
{
	PGTransactionStatusType ts;

	if (!conn || PQstatus(conn) != CONNECTION_OK)
		return;
	ts = PQtransactionStatus(conn);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(conn, "ROLLBACK"));
}

const char *shd_db_value(const PGresult *res, int row, int col)
{
	if (!res || row < 0 || col < 0 || row >= PQntuples(res) || col >= PQnfields(res))
		return NULL;
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}
