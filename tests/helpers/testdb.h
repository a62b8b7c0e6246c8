/*
 * For Criterion integration tests: a database of the test's own on the throwaway server of
 * with-postgres.sh, migrated to the latest schema, and a connection to it.
 */
#pragma once

#include <libpq-fe.h>

#include "db.h"

/* Set by testdb_setup: the connection settings and the test thread's connection. */
extern struct shd_dbpool_config testdb_config;
extern PGconn *testdb_conn;

/* Create the database "<prefix>_<pid>", apply every migration, connect. */
void testdb_setup(const char *prefix);
/* Close the connection and drop the database. */
void testdb_teardown(void);
