/*
 * The embedded PostgreSQL: when no database URL is configured, shepherdd runs its own server.
 * First start: initdb into <state>/pgdata. Every start: recover from a stale postmaster.pid,
 * start `postgres` as a child listening only on a Unix socket in <state>/pgsock (mode 0700,
 * no TCP), wait until it accepts connections. The child gets SIGINT if the daemon dies
 * (setpriv --pdeathsig), so a kill -9 of the daemon does not leave it running.
 * Run as root, the server runs as a dedicated system user (created with useradd if missing),
 * because PostgreSQL refuses to run as root.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cleanup.h"

struct shp_error;

struct shd_pgembed_config {
	const char *state_dir; /* parent of pgdata/ and pgsock/ */
	const char *bindir;    /* directory with initdb and postgres */
	const char *run_as;    /* system user when started as root (default "shepherd") */
	int start_timeout_ms;  /* wait for readiness at most this long */
	const char *log_path;  /* server log file (default <state>/postgresql.log) */
};

/* Start (initdb first if needed). NULL with err on failure; the log path is named in err. */
struct shd_pgembed *shd_pgembed_start(const struct shd_pgembed_config *cfg, struct shp_error *err);
/* The libpq conninfo for the running server (borrowed, valid until stop). */
const char *shd_pgembed_conninfo(const struct shd_pgembed *pg);
pid_t shd_pgembed_pid(const struct shd_pgembed *pg);
/* True while the child runs (reaps it if it exited). */
bool shd_pgembed_is_running(struct shd_pgembed *pg);
/* Fast shutdown (SIGINT), wait up to timeout_ms, then SIGKILL. Frees pg; returns NULL. */
struct shd_pgembed *shd_pgembed_stop(struct shd_pgembed *pg, int timeout_ms);
