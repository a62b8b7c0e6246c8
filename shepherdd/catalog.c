/*
 * The catalogue in the database (gov.h "instance sizes and templates"): an enabled size, the
 * active, latest or a given version of a template, and the one-time import of the seed
 * catalogue (templates/NAME.yaml and sizes.yaml under the seed directory) at daemon start.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "catalog.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "json.h"
#include "util.h"
#include "yaml.h"

#define SEED_FILE_MAX (1u << 20) /* bytes per seed file */
#define SEED_FILES_MAX 256       /* template files */
#define SEED_SIZES_MAX 256
#define SEED_DEPTH 32

/* ---- sizes ----------------------------------------------------------------------------------- */

void shd_size_release(struct shd_size *s)
{
	if (!s)
		return;
	json_decref(s->required_capabilities);
	s->required_capabilities = NULL;
}

int shd_size_get(PGconn *conn, const char *name, struct shd_size *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT name, cpus, memory_mib, cpu_overcommit::float8, memory_overcommit::float8,"
		" required_capabilities FROM instance_sizes WHERE name = $1 AND NOT disabled",
		1, (const char *[]){name}, err);
	struct shd_size s = {0};
	json_error_t je;

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "instance size '%.63s' not found or disabled",
			      name);
		shp_error_detail(err, "field", "size");
		return -SHP_E_NOTFOUND;
	}
	(void)snprintf(s.name, sizeof(s.name), "%s", PQgetvalue(res, 0, 0));
	s.cpus = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
	s.memory_mib = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	s.cpu_overcommit = strtod(PQgetvalue(res, 0, 3), NULL);
	s.memory_overcommit = strtod(PQgetvalue(res, 0, 4), NULL);
	s.required_capabilities = json_loads(PQgetvalue(res, 0, 5), 0, &je);
	if (!s.required_capabilities)
		return shp_error_set(err, SHP_E_INTERNAL, "size '%s': unreadable capabilities",
				     s.name);
	*ret = s;
	return 0;
}

/* ---- templates ------------------------------------------------------------------------------- */

/* Every column as one JSON object (image_source and the field lists as JSON values). */
#define TEMPLATE_SELECT "SELECT to_jsonb(t)::text FROM templates t WHERE t.name = $1"

static json_t *template_query(PGconn *conn, const char *sql, const char *name, const char *version,
			      struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, sql, version ? 2 : 1, (const char *[]){name, version}, err);
	json_error_t je;
	json_t *t;

	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "template '%.63s'%s%s not found", name,
			      version ? " version " : "", version ? version : "");
		shp_error_detail(err, "field", "template");
		return NULL;
	}
	t = json_loads(PQgetvalue(res, 0, 0), 0, &je);
	if (!t)
		shp_error_set(err, SHP_E_INTERNAL, "template '%s': unreadable row", name);
	return t;
}

json_t *shd_template_get_active(PGconn *conn, const char *name, struct shp_error *err)
{
	json_t *t =
		template_query(conn, TEMPLATE_SELECT " AND t.status = 'active'", name, NULL, err);

	if (!t && err && err->code == SHP_E_NOTFOUND)
		shp_error_set(err, SHP_E_NOTFOUND, "template '%.63s' has no active version", name);
	return t;
}

json_t *shd_template_get_latest(PGconn *conn, const char *name, struct shp_error *err)
{
	return template_query(conn,
			      TEMPLATE_SELECT " AND t.status <> 'archived'"
					      " ORDER BY t.version DESC LIMIT 1",
			      name, NULL, err);
}

json_t *shd_template_get_version(PGconn *conn, const char *name, int version, struct shp_error *err)
{
	char v[16];

	(void)snprintf(v, sizeof(v), "%d", version);
	return template_query(conn, TEMPLATE_SELECT " AND t.version = $2::int", name, v, err);
}

/* ---- reading seed files ---------------------------------------------------------------------- */

/* A regular file of at most SEED_FILE_MAX bytes into out. */
static int read_file(const char *path, struct shp_buf *out, struct shp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char chunk[8192];
	ssize_t n;

	if (fd < 0)
		return shp_error_errno(err, errno, "cannot open '%s'", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return shp_error_set(err, SHP_E_INVAL, "'%s' is not a regular file", path);
	if (st.st_size > (off_t)SEED_FILE_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "'%s' is larger than %u bytes", path,
				     SEED_FILE_MAX);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (shp_buf_addn(out, chunk, (size_t)n) < 0)
			return shp_error_set(err, SHP_E_LIMIT, "'%s' is larger than %u bytes", path,
					     SEED_FILE_MAX);
	if (n < 0)
		return shp_error_errno(err, errno, "cannot read '%s'", path);
	return 0;
}

/* Parse dir/rel as YAML; errors read "rel:LINE: ...". */
static json_t *load_yaml(const char *dir, const char *rel, json_t **ret_lines,
			 struct shp_error *err)
{
	struct shp_buf b = SHP_BUF_INIT(SEED_FILE_MAX);
	_cleanup_free_ char *path = NULL;
	const char *line;
	json_t *doc;

	if (asprintf(&path, "%s/%s", dir, rel) < 0) {
		path = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory"), NULL;
	}
	if (read_file(path, &b, err) < 0) {
		shp_buf_release(&b);
		return NULL;
	}
	doc = shp_yaml_to_json_lines(b.buf, b.len, SEED_DEPTH, ret_lines, err);
	shp_buf_release(&b);
	if (!doc) {
		line = NULL;
		for (int i = 0; err && i < err->n_details; i++)
			if (strcmp(err->details[i].key, "line") == 0)
				line = err->details[i].value;
		(void)shp_error_prefix(err, "%s:%s", rel, line ? line : "1");
	}
	return doc;
}

struct seed {
	json_t *templates; /* array of template bodies */
	json_t *sizes;     /* array of size bodies */
};

static void seed_release(struct seed *s)
{
	json_decref(s->templates);
	json_decref(s->sizes);
}

static bool has_name(const json_t *list, const json_t *item)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
	{
		if (json_equal(json_object_get(v, "name"), json_object_get(item, "name")))
			return true;
	}
	return false;
}

static int yaml_name_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && ((n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0) ||
				       (n > 4 && strcmp(e->d_name + n - 4, ".yml") == 0));
}

static int seed_template(const char *dir, const char *file, struct seed *s, struct shp_error *err)
{
	_cleanup_free_ char *rel = NULL;
	json_auto_t *lines = NULL, *doc = NULL;

	if (asprintf(&rel, "templates/%s", file) < 0) {
		rel = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (!(doc = load_yaml(dir, rel, &lines, err)))
		return -err->code;
	if (shd_template_check(doc, err) < 0)
		return shd_seed_locate(err, rel, lines, "");
	if (has_name(s->templates, doc)) {
		shp_error_set(err, SHP_E_INVAL, "template '%s' is defined twice",
			      json_string_value(json_object_get(doc, "name")));
		shp_error_detail(err, "field", "name");
		return shd_seed_locate(err, rel, lines, "");
	}
	return json_array_append(s->templates, doc) < 0 ? -SHP_E_NOMEM : 0;
}

static int seed_templates(const char *dir, struct seed *s, struct shp_error *err)
{
	_cleanup_free_ char *tdir = NULL;
	struct dirent **names = NULL;
	int n, r = 0;

	if (asprintf(&tdir, "%s/templates", dir) < 0) {
		tdir = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	n = scandir(tdir, &names, yaml_name_filter, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : shp_error_errno(err, errno, "cannot list '%s'", tdir);
	if (n > SEED_FILES_MAX)
		r = shp_error_set(err, SHP_E_LIMIT, "'%s' holds more than %d templates", tdir,
				  SEED_FILES_MAX);
	for (int i = 0; r == 0 && i < n; i++)
		r = seed_template(dir, names[i]->d_name, s, err);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int seed_sizes(const char *dir, struct seed *s, struct shp_error *err)
{
	static const char *const top[] = {"sizes", NULL};
	json_auto_t *lines = NULL, *doc = NULL;
	_cleanup_free_ char *path = NULL;
	const json_t *list;
	struct stat st;
	char prefix[32];
	size_t i;
	json_t *v;

	if (asprintf(&path, "%s/sizes.yaml", dir) < 0) {
		path = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (stat(path, &st) < 0 && errno == ENOENT)
		return 0;
	if (!(doc = load_yaml(dir, "sizes.yaml", &lines, err)))
		return -err->code;
	list = json_object_get(doc, "sizes");
	if (!json_is_array(list) || json_array_size(list) > SEED_SIZES_MAX) {
		shp_error_set(err, SHP_E_INVAL,
			      "sizes.yaml must hold 'sizes:', a list of at most %d sizes",
			      SEED_SIZES_MAX);
		shp_error_detail(err, "field", "sizes");
		return shd_seed_locate(err, "sizes.yaml", lines, "");
	}
	if (shp_json_check_fields(doc, top, err) < 0)
		return shd_seed_locate(err, "sizes.yaml", lines, "");
	json_array_foreach(list, i, v)
	{
		struct shd_size_row row;

		(void)snprintf(prefix, sizeof(prefix), "sizes[%zu].", i);
		if (shd_size_check(v, true, &row, err) < 0)
			return shd_seed_locate(err, "sizes.yaml", lines, prefix);
		shd_size_row_release(&row);
		if (has_name(s->sizes, v)) {
			shp_error_set(err, SHP_E_INVAL, "size '%s' is defined twice",
				      json_string_value(json_object_get(v, "name")));
			shp_error_detail(err, "field", "name");
			return shd_seed_locate(err, "sizes.yaml", lines, prefix);
		}
		if (json_array_append(s->sizes, v) < 0)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	return 0;
}

/* ---- writing the seed ------------------------------------------------------------------------ */

/* A string member as is, another value as JSON text (*owned), def when absent. */
static const char *json_text(const json_t *obj, const char *key, const char *def, char **owned)
{
	const json_t *v = json_object_get(obj, key);

	if (!v)
		return def;
	if (json_is_string(v) || !owned)
		return json_string_value(v);
	*owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	return *owned;
}

/* Templates whose name is taken already are left alone. */
static int insert_template(PGconn *conn, const json_t *t, int *ret_n, struct shp_error *err)
{
	_cleanup_free_ char *src = NULL, *quick = NULL, *adv = NULL;
	const char *p[7] = {
		json_string_value(json_object_get(t, "name")),
		json_text(t, "description", "", NULL),
		json_text(t, "os", "", NULL),
		json_text(t, "image_source", "{}", &src),
		json_text(t, "cloud_init", "", NULL),
		json_text(t, "quick_fields", "[]", &quick),
		json_text(t, "advanced_fields", "[]", &adv),
	};
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!p[3] || !p[5] || !p[6])
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	res = shd_db_exec(conn,
			  "INSERT INTO templates (name, version, status, description, os,"
			  " image_source, cloud_init, quick_fields, advanced_fields, source,"
			  " created_by, published_at)"
			  " SELECT $1::text, 1, 'active', $2, $3, $4::jsonb, $5, $6::jsonb,"
			  " $7::jsonb, 'seed', 'seed', now()"
			  " WHERE NOT EXISTS (SELECT 1 FROM templates WHERE name = $1::text)",
			  7, p, err);
	if (!res)
		return shp_error_prefix(err, "template '%s'", p[0]);
	*ret_n += (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

static int insert_size(PGconn *conn, const json_t *body, int *ret_n, struct shp_error *err)
{
	struct shd_size_row r;
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_size_check(body, true, &r, err) < 0)
		return -err->code;
	res = shd_db_exec(conn,
			  "INSERT INTO instance_sizes (name, cpus, memory_mib, cpu_overcommit,"
			  " memory_overcommit, required_capabilities, description, created_by)"
			  " VALUES ($1, $2::int, $3::bigint, coalesce($4::numeric, 1),"
			  " coalesce($5::numeric, 1), coalesce($6::jsonb, '[]'), coalesce($7, ''),"
			  " 'seed') ON CONFLICT (name) DO NOTHING",
			  7,
			  (const char *[]){r.name, r.cpus, r.memory_mib,
					   r.cpu_overcommit[0] ? r.cpu_overcommit : NULL,
					   r.memory_overcommit[0] ? r.memory_overcommit : NULL,
					   r.required_capabilities, r.description},
			  err);
	shd_size_row_release(&r);
	if (!res)
		return -err->code;
	*ret_n += (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

static int seed_write(PGconn *conn, const char *dir, const struct seed *s, struct shp_error *err)
{
	int nt = 0, ns = 0;
	char nts[16], nss[16];
	size_t i;
	json_t *v;

	json_array_foreach(s->templates, i, v)
	{
		if (insert_template(conn, v, &nt, err) < 0)
			return -err->code;
	}
	json_array_foreach(s->sizes, i, v)
	{
		if (insert_size(conn, v, &ns, err) < 0)
			return -err->code;
	}
	(void)snprintf(nts, sizeof(nts), "%d", nt);
	(void)snprintf(nss, sizeof(nss), "%d", ns);
	return shd_db_command(conn,
			      "INSERT INTO seed_imports (source, templates, sizes)"
			      " VALUES ($1, $2::int, $3::int)",
			      3, (const char *[]){dir, nts, nss}, err);
}

/* Whether an import happened already; the table lock keeps two daemons from both importing. */
static int already_imported(PGconn *conn, bool *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_command(conn, "LOCK TABLE seed_imports IN SHARE ROW EXCLUSIVE MODE", 0, NULL,
			   err) < 0)
		return -err->code;
	res = shd_db_exec(conn, "SELECT 1 FROM seed_imports LIMIT 1", 0, NULL, err);
	if (!res)
		return -err->code;
	*ret = PQntuples(res) > 0;
	return 0;
}

int shd_seed_import(PGconn *conn, const char *dir, bool *ret_done, struct shp_error *err)
{
	_cleanup_(seed_release) struct seed s = {.templates = json_array(), .sizes = json_array()};
	struct stat st;
	bool done = false;

	if (!s.templates || !s.sizes)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (already_imported(conn, &done, err) < 0)
		goto fail;
	if (done) {
		shd_db_rollback(conn);
		*ret_done = false;
		return 0;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		shp_error_set(err, SHP_E_INVAL, "seed directory '%s' does not exist", dir);
		goto fail;
	}
	/* everything is checked before anything is written */
	if (seed_templates(dir, &s, err) < 0 || seed_sizes(dir, &s, err) < 0 ||
	    seed_write(conn, dir, &s, err) < 0 || shd_db_commit(conn, err) < 0)
		goto fail;
	*ret_done = true;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}
