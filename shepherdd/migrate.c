/*
 * Schema migrations: reading NNNN_<name>.up.sql / .down.sql from the schema directory, the
 * shepherd_schema_migrations tracking table, and applying or reverting files one transaction
 * each under a session advisory lock. The files are trusted (installed with the program): they
 * are the one place SQL text runs unparameterised, through PQexec (several statements each).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "db.h"
#include "error.h"
#include "migrate.h"
#include "util.h"

#define SQL_FILE_MAX (1024 * 1024)
#define MIGRATIONS_MAX 10000
#define CHECKSUM_HEX 65
/* pg_advisory_lock key shared by every shepherdd: "shepherd" in ASCII. */
#define LOCK_KEY "8316008245401842276"

struct migration {
	int version;
	char *name;
	char *up; /* paths */
	char *down;
	char checksum[CHECKSUM_HEX]; /* sha256 of the up file, lower-case hex */
};

struct migration_set {
	const char *dir;
	struct migration *v;
	size_t n;
};

static void migration_set_release(struct migration_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].name);
		free(set->v[i].up);
		free(set->v[i].down);
	}
	free(set->v);
	set->v = NULL;
	set->n = 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

/*
 * "0001_foundation.up.sql" -> version 1, name "foundation" (name_len bytes at f + name_off),
 * up. False for anything else.
 */
static bool parse_file_name(const char *f, int *ret_version, size_t *ret_name_off,
			    size_t *ret_name_len, bool *ret_up)
{
	size_t digits = 0, len = strlen(f), end;
	bool up = has_suffix(f, ".up.sql");
	long version = 0;

	if (!up && !has_suffix(f, ".down.sql"))
		return false;
	while (f[digits] >= '0' && f[digits] <= '9') {
		version = version * 10 + (f[digits] - '0');
		digits++;
	}
	if (digits < 4 || digits > 9 || f[digits] != '_' || version <= 0)
		return false;
	end = len - (up ? strlen(".up.sql") : strlen(".down.sql"));
	if (end <= digits + 1)
		return false;
	for (size_t i = digits + 1; i < end; i++) {
		char c = f[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	*ret_version = (int)version;
	*ret_name_off = digits + 1;
	*ret_name_len = end - digits - 1;
	*ret_up = up;
	return true;
}

static struct migration *find_version(const struct migration_set *set, int version)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].version == version)
			return &set->v[i];
	return NULL;
}

static int add_file(struct migration_set *set, const char *fname, struct shp_error *err)
{
	struct migration *m;
	size_t off, len;
	bool up;
	int version;
	char **slot;

	if (!parse_file_name(fname, &version, &off, &len, &up)) {
		if (has_suffix(fname, ".sql"))
			return shp_error_set(err, SHP_E_INVAL,
					     "unexpected file '%s' in '%s': migrations are named "
					     "NNNN_name.up.sql and NNNN_name.down.sql",
					     fname, set->dir);
		return 0;
	}
	m = find_version(set, version);
	if (!m) {
		struct migration *v;

		if (set->n >= MIGRATIONS_MAX)
			return shp_error_set(err, SHP_E_LIMIT, "more than %d migrations in '%s'",
					     MIGRATIONS_MAX, set->dir);
		v = realloc(set->v, (set->n + 1) * sizeof(*v));
		if (!v)
			return shp_error_set(err, SHP_E_NOMEM, "reading '%s'", set->dir);
		set->v = v;
		m = &set->v[set->n];
		*m = (struct migration){.version = version, .name = strndup(fname + off, len)};
		if (!m->name)
			return shp_error_set(err, SHP_E_NOMEM, "reading '%s'", set->dir);
		set->n++;
	} else if (strlen(m->name) != len || strncmp(m->name, fname + off, len)) {
		return shp_error_set(err, SHP_E_INVAL,
				     "'%s' and migration '%04d_%s' share version %d", fname,
				     m->version, m->name, version);
	}
	slot = up ? &m->up : &m->down;
	if (*slot)
		return shp_error_set(err, SHP_E_INVAL, "'%s' duplicates '%s'", fname, *slot);
	if (asprintf(slot, "%s/%s", set->dir, fname) < 0) {
		*slot = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "reading '%s'", set->dir);
	}
	return 0;
}

static int cmp_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

/* Read a whole migration file: a regular file of at most SQL_FILE_MAX bytes without NULs. */
static int read_sql_file(const char *path, char **ret, size_t *ret_len, struct shp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	if (fd < 0 || fstat(fd, &st) < 0)
		return shp_error_errno(err, errno, "opening '%s'", path);
	if (!S_ISREG(st.st_mode))
		return shp_error_set(err, SHP_E_INVAL, "'%s' is not a regular file", path);
	if (st.st_size > SQL_FILE_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "'%s' is larger than %d bytes", path,
				     SQL_FILE_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return shp_error_set(err, SHP_E_NOMEM, "reading '%s'", path);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return shp_error_errno(err, errno, "reading '%s'", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return shp_error_set(err, SHP_E_INVAL, "'%s' contains a NUL byte", path);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int checksum_file(const char *path, char out[CHECKSUM_HEX], struct shp_error *err)
{
	_cleanup_free_ char *text = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	size_t len;
	int r;

	r = read_sql_file(path, &text, &len, err);
	if (r < 0)
		return r;
	if (!EVP_Digest(text, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return shp_error_set(err, SHP_E_INTERNAL, "computing the SHA-256 of '%s'", path);
	shp_hex_encode(md, md_len, out);
	return 0;
}

/* Every migration of dir, sorted, each with both files and the checksum of its up file. */
static int load_migrations(const char *dir, struct migration_set *set, struct shp_error *err)
{
	DIR *d;
	struct dirent *e;
	int r = 0;

	*set = (struct migration_set){.dir = dir};
	d = opendir(dir);
	if (!d)
		return shp_error_errno(err, errno, "opening the schema directory '%s'", dir);
	errno = 0;
	while (r == 0 && (e = readdir(d))) {
		if (e->d_name[0] != '.')
			r = add_file(set, e->d_name, err);
		errno = 0;
	}
	if (r == 0 && errno)
		r = shp_error_errno(err, errno, "reading the schema directory '%s'", dir);
	(void)closedir(d);
	if (r < 0)
		return r;
	qsort(set->v, set->n, sizeof(*set->v), cmp_version);
	for (size_t i = 0; i < set->n && r == 0; i++) {
		struct migration *m = &set->v[i];

		if (!m->up)
			r = shp_error_set(err, SHP_E_INVAL, "'%s' has no matching up file",
					  m->down);
		else if (!m->down)
			r = shp_error_set(err, SHP_E_INVAL,
					  "'%s' has no down file (%04d_%s.down.sql)", m->up,
					  m->version, m->name);
		else
			r = checksum_file(m->up, m->checksum, err);
	}
	return r;
}

static int table_exists(PGconn *conn, bool *ret, struct shp_error *err)
{
	const char *params[] = {"shepherd_schema_migrations"};
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(conn, "SELECT to_regclass($1) IS NOT NULL", 1, params, err);
	if (!res)
		return shp_error_prefix(err, "looking for the migrations table");
	*ret = shp_streq(shd_db_value(res, 0, 0), "t");
	return 0;
}

/* The tracking table's rows, or a NULL result when it does not exist yet. */
static int read_applied(PGconn *conn, PGresult **ret, struct shp_error *err)
{
	static const char sql[] =
		"SELECT version, name, checksum, "
		"to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
		"FROM shepherd_schema_migrations ORDER BY version";
	bool exists = false;
	int r;

	*ret = NULL;
	r = table_exists(conn, &exists, err);
	if (r < 0 || !exists)
		return r;
	*ret = shd_db_exec(conn, sql, 0, NULL, err);
	return *ret ? 0 : shp_error_prefix(err, "reading the applied migrations");
}

/* Create the tracking table if missing (under the lock, so no two creators race). */
static int ensure_table(PGconn *conn, struct shp_error *err)
{
	static const char sql[] = "CREATE TABLE shepherd_schema_migrations ("
				  " version integer PRIMARY KEY,"
				  " name text NOT NULL,"
				  " checksum text NOT NULL,"
				  " applied_at timestamptz NOT NULL DEFAULT now())";
	bool exists = false;
	int r;

	r = table_exists(conn, &exists, err);
	if (r < 0 || exists)
		return r;
	r = shd_db_command(conn, sql, 0, NULL, err);
	return r < 0 ? shp_error_prefix(err, "creating the migrations table") : 0;
}

static int applied_version(const PGresult *res, int row)
{
	return (int)strtol(shd_db_value(res, row, 0), NULL, 10);
}

static bool is_applied(const PGresult *res, int version)
{
	for (int i = 0; res && i < PQntuples(res); i++)
		if (applied_version(res, i) == version)
			return true;
	return false;
}

/* Every applied migration must be on disk, unchanged. */
static int verify_applied(const struct migration_set *set, const PGresult *res,
			  struct shp_error *err)
{
	for (int i = 0; res && i < PQntuples(res); i++) {
		int version = applied_version(res, i);
		const struct migration *m = find_version(set, version);

		if (!m)
			return shp_error_set(err, SHP_E_CONFLICT,
					     "applied migration %d ('%s') is not in '%s': the "
					     "database schema is newer than this shepherdd",
					     version, shd_db_value(res, i, 1), set->dir);
		if (strcmp(m->checksum, shd_db_value(res, i, 2)))
			return shp_error_set(err, SHP_E_CONFLICT,
					     "migration %04d_%s was changed after it was applied "
					     "(checksum mismatch of '%s')",
					     m->version, m->name, m->up);
	}
	return 0;
}

static int exec_error(PGconn *conn, PGresult *res, struct shp_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	char line[SHP_ERROR_MSG_MAX];
	int r;

	(void)snprintf(line, sizeof(line), "%s", msg && *msg ? msg : "out of memory");
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	r = shp_error_set(err, PQstatus(conn) == CONNECTION_BAD ? SHP_E_UNAVAIL : SHP_E_DB, "%s",
			  line);
	if (err && state)
		(void)snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	return r;
}

/* Run one file and record it, in one transaction. */
static int run_file(PGconn *conn, const struct migration *m, bool up, struct shp_error *err)
{
	char version[16];
	const char *ins[] = {version, m->name, m->checksum};
	const char *del[] = {version};
	_cleanup_free_ char *sql = NULL;
	PGresult *res;
	ExecStatusType st;
	size_t len;
	int r;

	(void)snprintf(version, sizeof(version), "%d", m->version);
	r = read_sql_file(up ? m->up : m->down, &sql, &len, err);
	if (r < 0)
		return r;
	r = shd_db_begin(conn, err);
	if (r < 0)
		return r;
	res = PQexec(conn, sql);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY)
		r = exec_error(conn, res, err);
	else if (PQtransactionStatus(conn) != PQTRANS_INTRANS)
		r = shp_error_set(err, SHP_E_INVAL, "'%s' ended the migration's transaction",
				  up ? m->up : m->down);
	PQclear(res);
	if (r == 0 && up)
		r = shd_db_command(conn,
				   "INSERT INTO shepherd_schema_migrations "
				   "(version, name, checksum) VALUES ($1, $2, $3)",
				   3, ins, err);
	else if (r == 0)
		r = shd_db_command(conn,
				   "DELETE FROM shepherd_schema_migrations WHERE version = $1", 1,
				   del, err);
	if (r == 0)
		r = shd_db_commit(conn, err);
	if (r < 0)
		shd_db_rollback(conn);
	return r;
}

struct plan {
	const struct migration_set *set;
	bool up;
	int steps;
	int done;
};

static int migrate_locked(PGconn *conn, struct plan *p, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *applied = NULL;
	int r;

	r = ensure_table(conn, err);
	if (r == 0)
		r = read_applied(conn, &applied, err);
	if (r == 0)
		r = verify_applied(p->set, applied, err);
	if (r < 0)
		return r;
	if (p->up) {
		for (size_t i = 0; i < p->set->n; i++) {
			const struct migration *m = &p->set->v[i];

			if (is_applied(applied, m->version))
				continue;
			if (p->steps > 0 && p->done >= p->steps)
				break;
			r = run_file(conn, m, true, err);
			if (r < 0)
				return shp_error_prefix(err, "applying migration %04d_%s",
							m->version, m->name);
			p->done++;
		}
		return 0;
	}
	for (int i = PQntuples(applied) - 1; i >= 0; i--) {
		const struct migration *m = find_version(p->set, applied_version(applied, i));

		if (p->steps > 0 && p->done >= p->steps)
			break;
		r = run_file(conn, m, false, err);
		if (r < 0)
			return shp_error_prefix(err, "reverting migration %04d_%s", m->version,
						m->name);
		p->done++;
	}
	return 0;
}

/* Load the files, then migrate under the advisory lock (released on every path). */
static int migrate(PGconn *conn, const char *schema_dir, bool up, int steps, int *ret_done,
		   struct shp_error *err)
{
	const char *key[] = {LOCK_KEY};
	struct migration_set set;
	struct plan p = {.set = &set, .up = up, .steps = steps};
	int r;

	if (steps < 0)
		return shp_error_set(err, SHP_E_INVAL, "negative number of migration steps");
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		return shp_error_set(err, SHP_E_INTERNAL,
				     "migrations need an idle connection outside any transaction");
	r = load_migrations(schema_dir, &set, err);
	if (r == 0) {
		r = shd_db_command(conn, "SELECT pg_advisory_lock($1::bigint)", 1, key, err);
		if (r < 0)
			r = shp_error_prefix(err, "taking the migration lock");
	}
	if (r == 0) {
		r = migrate_locked(conn, &p, err);
		shd_db_rollback(conn);
		/* A broken connection has released the lock with the session. */
		if (shd_db_command(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, key, NULL) <
			    0 &&
		    r == 0 && PQstatus(conn) == CONNECTION_OK)
			r = shp_error_set(err, SHP_E_DB, "releasing the migration lock");
	}
	migration_set_release(&set);
	if (r == 0 && ret_done)
		*ret_done = p.done;
	return r;
}

int shd_migrate_up(PGconn *conn, const char *schema_dir, int steps, int *ret_applied,
		   struct shp_error *err)
{
	return migrate(conn, schema_dir, true, steps, ret_applied, err);
}

int shd_migrate_down(PGconn *conn, const char *schema_dir, int steps, int *ret_reverted,
		     struct shp_error *err)
{
	return migrate(conn, schema_dir, false, steps, ret_reverted, err);
}

static json_t *entry_json(int version, const char *name, bool applied, const char *applied_at)
{
	return json_pack("{s:i, s:s, s:b, s:o}", "version", version, "name", name, "applied",
			 applied, "applied_at", applied_at ? json_string(applied_at) : json_null());
}

/* The applied row of version, or -1. */
static int applied_row(const PGresult *res, int version)
{
	for (int i = 0; res && i < PQntuples(res); i++)
		if (applied_version(res, i) == version)
			return i;
	return -1;
}

static json_t *status_json(const struct migration_set *set, const PGresult *applied)
{
	json_auto_t *list = json_array();
	int current = 0, latest = 0, pending = 0;
	size_t i = 0;
	int j = 0, n_applied = applied ? PQntuples(applied) : 0;

	if (!list)
		return NULL;
	/* Merge the files and the applied rows (which may hold versions unknown here). */
	while (i < set->n || j < n_applied) {
		int fv = i < set->n ? set->v[i].version : INT_MAX;
		int av = j < n_applied ? applied_version(applied, j) : INT_MAX;
		json_t *e;

		if (fv <= av) {
			int row = applied_row(applied, fv);

			e = entry_json(fv, set->v[i].name, row >= 0,
				       row >= 0 ? shd_db_value(applied, row, 3) : NULL);
			pending += row < 0;
			latest = fv;
			i++;
			j += fv == av;
		} else {
			e = entry_json(av, shd_db_value(applied, j, 1), true,
				       shd_db_value(applied, j, 3));
			j++;
		}
		if (!e || json_array_append_new(list, e) < 0)
			return NULL;
	}
	if (n_applied > 0)
		current = applied_version(applied, n_applied - 1);
	return json_pack("{s:i, s:i, s:i, s:O}", "current", current, "latest", latest, "pending",
			 pending, "migrations", list);
}

json_t *shd_migrate_status(PGconn *conn, const char *schema_dir, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *applied = NULL;
	struct migration_set set;
	json_t *status = NULL;
	int r;

	r = load_migrations(schema_dir, &set, err);
	if (r == 0)
		r = read_applied(conn, &applied, err);
	if (r == 0) {
		status = status_json(&set, applied);
		if (!status)
			shp_error_set(err, SHP_E_NOMEM, "building the migration status");
	}
	migration_set_release(&set);
	return status;
}

int shd_migrate_is_current(PGconn *conn, const char *schema_dir, bool *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *applied = NULL;
	struct migration_set set;
	bool current = true;
	int r;

	r = load_migrations(schema_dir, &set, err);
	if (r == 0)
		r = read_applied(conn, &applied, err);
	for (size_t i = 0; r == 0 && i < set.n; i++)
		if (!is_applied(applied, set.v[i].version))
			current = false;
	migration_set_release(&set);
	if (r == 0)
		*ret = current;
	return r;
}
