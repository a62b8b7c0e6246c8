/*
 * Database access for the daemon: a bounded connection pool (a PGconn is used by one thread at a
 * time, never shared), parameterised execution with SQLSTATE -> error mapping, and transaction
 * helpers. The CLI never links this.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;

SHP_DEFINE_CLEANUP(PGresult *, PQclear)

struct shd_dbpool_config {
	const char *conninfo;      /* libpq connection string or URI (copied) */
	int size;                  /* maximum connections, >= 1 */
	int checkout_timeout_ms;   /* wait for a free connection at most this long */
	int statement_timeout_ms;  /* SET per connection; 0 = server default */
	int lock_timeout_ms;       /* likewise */
	int idle_in_tx_timeout_ms; /* idle_in_transaction_session_timeout */
	int backoff_min_ms;        /* first pause after a failed connect; 0 = 100 ms */
	const char *application_name;
};

struct shd_dbpool_stats {
	int size;    /* configured maximum */
	int open;    /* connections currently open */
	int in_use;  /* checked out */
	int waiting; /* threads waiting for a connection */
	uint64_t checkouts;
	uint64_t timeouts; /* checkouts that gave up */
	uint64_t connect_failures;
	uint64_t resets; /* broken connections discarded */
	int backoff_ms;  /* the pause after the last failed connect; 0 while healthy */
	bool healthy;    /* the last connect attempt succeeded */
};

/*
 * Create the pool. Connections open lazily; the pool does not fail when the server is down.
 * While the server is unreachable, checkouts fail fast with SHP_E_UNAVAIL (connect attempts are
 * spaced by an exponential backoff, 100 ms (backoff_min_ms) doubling to 5 s) and recover by
 * themselves.
 */
struct shd_dbpool *shd_dbpool_new(const struct shd_dbpool_config *cfg, struct shp_error *err);
/* Close every connection; no checkout may be outstanding. Returns NULL. */
struct shd_dbpool *shd_dbpool_free(struct shd_dbpool *pool);

/*
 * Borrow a connection (owning thread only until shd_dbpool_put). SHP_E_UNAVAIL when none became
 * free within the checkout timeout or the server cannot be reached.
 */
PGconn *shd_dbpool_get(struct shd_dbpool *pool, struct shp_error *err);
/*
 * Give it back. A connection not in PQTRANS_IDLE is rolled back (or discarded if that fails);
 * a CONNECTION_BAD one is discarded. conn may be NULL.
 */
void shd_dbpool_put(struct shd_dbpool *pool, PGconn *conn);
void shd_dbpool_get_stats(struct shd_dbpool *pool, struct shd_dbpool_stats *ret);

/* Open one standalone connection with the pool's session settings (for LISTEN, migrations). */
PGconn *shd_db_connect(const struct shd_dbpool_config *cfg, struct shp_error *err);

/*
 * Run one parameterised statement (params are text, NULL = SQL NULL). The statement is prepared
 * on the connection the first time that connection runs it and reused after that (so it must
 * be a single statement). Returns the result for
 * PGRES_COMMAND_OK / PGRES_TUPLES_OK, else NULL with err set from the SQLSTATE:
 * 23505 -> SHP_E_CONFLICT, 23503/23502/23514/22xxx -> SHP_E_INVAL, 40001/40P01 -> SHP_E_UNAVAIL
 * (retryable), 57014 -> SHP_E_TIMEOUT, 08xxx / lost connection -> SHP_E_UNAVAIL, else SHP_E_DB.
 * err->sqlstate is filled. The message carries the server's text (never sent to clients).
 */
PGresult *shd_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
		      struct shp_error *err);
/* shd_db_exec for statements whose result is not needed; 0 or -code. */
int shd_db_command(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   struct shp_error *err) SHP_MUSTCHECK;

int shd_db_begin(PGconn *conn, struct shp_error *err) SHP_MUSTCHECK;
int shd_db_commit(PGconn *conn, struct shp_error *err) SHP_MUSTCHECK;
/* Roll back if a transaction is open; never fails (a broken connection is left for the pool). */
void shd_db_rollback(PGconn *conn);

/* Cell helpers: borrowed value or NULL for SQL NULL. */
const char *shd_db_value(const PGresult *res, int row, int col);
