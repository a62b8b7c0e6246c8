/*
 * Schema migrations: schema/NNNN_<name>.up.sql and .down.sql, installed to
 * $(pkgdatadir)/schema. Applied in order, each file in its own transaction, all under one
 * session advisory lock so that daemons starting together do not race. Applied versions are
 * recorded in shepherd_schema_migrations (version, name, checksum, applied_at). A recorded
 * migration whose up file changed (checksum mismatch) is reported, never re-run.
 */
#pragma once

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "cleanup.h"

struct shp_error;

/* Apply up to steps pending migrations (0 = all). *ret_applied counts them (may be NULL). */
int shd_migrate_up(PGconn *conn, const char *schema_dir, int steps, int *ret_applied,
		   struct shp_error *err) SHP_MUSTCHECK;
/* Roll back the last steps applied migrations (0 = all) with their .down.sql files. */
int shd_migrate_down(PGconn *conn, const char *schema_dir, int steps, int *ret_reverted,
		     struct shp_error *err) SHP_MUSTCHECK;
/*
 * {"current": N, "latest": M, "pending": K, "migrations": [{"version", "name", "applied",
 *  "applied_at"}...]} — a new reference.
 */
json_t *shd_migrate_status(PGconn *conn, const char *schema_dir, struct shp_error *err);
/* True when every migration on disk is applied. */
int shd_migrate_is_current(PGconn *conn, const char *schema_dir, bool *ret,
			   struct shp_error *err) SHP_MUSTCHECK;
