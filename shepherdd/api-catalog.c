/*
 * The catalogue's API: templates (versions created as drafts after their cloud-init, rendered
 * manifest and a server-side dry run are checked; published, deprecated, archived; exported in
 * the seed format) and instance sizes (created, changed, disabled). Anyone signed in reads;
 * platform admins write, each write audited in its own transaction.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "buf.h"
#include "catalog.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "health.h"
#include "json.h"
#include "log.h"
#include "provider.h"
#include "shepherdd.h"
#include "util.h"
#include "yaml.h"

#define CHECK_VM_NAME "shepherd-template-check"

/* ---- rows ---------------------------------------------------------------------------------- */

static const struct shd_col tmpl_cols[] = {
	{"id", COL_INT},
	{"name", COL_TEXT},
	{"version", COL_INT},
	{"status", COL_TEXT},
	{"description", COL_TEXT},
	{"os", COL_TEXT},
	{"image_source", COL_JSON},
	{"quick_fields", COL_JSON},
	{"advanced_fields", COL_JSON},
	{"source", COL_TEXT},
	{"created_at", COL_TIME},
	{"created_by", COL_TEXT},
	{"published_at", COL_TIME},
	{"deprecated_at", COL_TIME},
	{"archived_at", COL_TIME},
	{"cloud_init", COL_TEXT}, /* last: lists leave it out */
};
#define TMPL_NCOLS ((int)SHP_ARRAY_SIZE(tmpl_cols))
#define TMPL_SELECT                                                                                \
	"SELECT t.id, t.name, t.version, t.status, t.description, t.os, t.image_source,"           \
	" t.quick_fields, t.advanced_fields, t.source, t.created_at, t.created_by,"                \
	" t.published_at, t.deprecated_at, t.archived_at, t.cloud_init"

static const struct shd_col size_cols[] = {
	{"id", COL_INT},
	{"name", COL_TEXT},
	{"cpus", COL_INT},
	{"memory_mib", COL_INT},
	{"memory", COL_TEXT},
	{"cpu_overcommit", COL_JSON},
	{"memory_overcommit", COL_JSON},
	{"required_capabilities", COL_JSON},
	{"description", COL_TEXT},
	{"disabled", COL_BOOL},
	{"created_at", COL_TIME},
	{"created_by", COL_TEXT},
	{"updated_at", COL_TIME},
};
#define SIZE_NCOLS ((int)SHP_ARRAY_SIZE(size_cols))
/* memory as the quantity it was given in: whole Gi when it divides, else Mi */
#define SIZE_SELECT                                                                                \
	"SELECT s.id, s.name, s.cpus, s.memory_mib,"                                               \
	" CASE WHEN s.memory_mib % 1024 = 0 THEN (s.memory_mib / 1024) || 'Gi'"                    \
	" ELSE s.memory_mib || 'Mi' END,"                                                          \
	" to_json(s.cpu_overcommit::float8)::text, to_json(s.memory_overcommit::float8)::text,"    \
	" s.required_capabilities, s.description, s.disabled, s.created_at, s.created_by,"         \
	" s.updated_at"

static int not_found(const char *what, const char *name, struct shp_error *err)
{
	shp_error_set(err, SHP_E_NOTFOUND, "%s '%.63s' not found", what, name);
	shp_error_detail(err, "name", "%.63s", name);
	return -SHP_E_NOTFOUND;
}

/* ?all=true|false */
static int query_all(struct shd_req *req, bool *ret, struct shp_error *err)
{
	const char *all = shd_req_query(req, "all");

	*ret = false;
	if (!all || strcmp(all, "false") == 0)
		return 0;
	if (strcmp(all, "true") == 0)
		return *ret = true, 0;
	shp_error_set(err, SHP_E_INVAL, "'all' must be true or false");
	shp_error_detail(err, "field", "all");
	return -SHP_E_INVAL;
}

/* ---- templates: reading -------------------------------------------------------------------- */

static const char *const statuses[] = {"draft", "active", "deprecated", "archived", NULL};

static int check_status_query(const char *status, struct shp_error *err)
{
	for (size_t i = 0; status && statuses[i]; i++)
		if (strcmp(status, statuses[i]) == 0)
			return 0;
	if (!status)
		return 0;
	shp_error_set(err, SHP_E_INVAL,
		      "'status' must be draft, active, deprecated or archived (got '%.32s')",
		      status);
	shp_error_detail(err, "field", "status");
	return -SHP_E_INVAL;
}

/* The cursor "name/version" of the last item. */
static int template_cursor(struct shd_req *req, struct shp_buf *after, const char **ret_name,
			   const char **ret_version, struct shp_error *err)
{
	const char *cursor = shd_req_query(req, "cursor");
	char *slash;

	*ret_name = *ret_version = NULL;
	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, after, err) < 0)
		return -SHP_E_INVAL;
	slash = strchr(after->buf, '/');
	if (!slash || strspn(slash + 1, "0123456789") != strlen(slash + 1) || !slash[1] ||
	    strlen(slash + 1) > 9)
		return shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	*slash = '\0';
	if (!shp_name_is_valid(after->buf))
		return shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	*ret_name = after->buf;
	*ret_version = slash + 1;
	return 0;
}

int shd_api_templates_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf after = SHP_BUF_INIT(256);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *status = shd_req_query(req, "status"), *cname, *cversion;
	char limit_s[16];
	bool all;
	int limit;

	if (check_status_query(status, err) < 0 || query_all(req, &all, err) < 0 ||
	    shd_req_limit(req, &limit, err) < 0 ||
	    template_cursor(req, &after, &cname, &cversion, err) < 0)
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
	res = shd_db_exec(
		req->db,
		TMPL_SELECT ", t.name || '/' || t.version FROM templates t"
			    " WHERE ($1::template_status IS NULL OR t.status = $1)"
			    " AND ($2::boolean OR t.status <> 'archived'"
			    "      OR $1::template_status = 'archived')"
			    " AND ($3::text IS NULL OR (t.name, t.version) > ($3, $4::int))"
			    " ORDER BY t.name, t.version LIMIT $5::int",
		5, (const char *[]){status, all ? "true" : "false", cname, cversion, limit_s}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, tmpl_cols, TMPL_NCOLS - 1, limit, TMPL_NCOLS, err);
}

/* ?version=N: 0 when absent. */
static int query_version(struct shd_req *req, int *ret, struct shp_error *err)
{
	const char *v = shd_req_query(req, "version");
	long long n;

	*ret = 0;
	if (!v)
		return 0;
	if (shp_parse_int(v, 1, INT32_MAX, &n, err) < 0) {
		shp_error_detail(err, "field", "version");
		return shp_error_prefix(err, "'version'");
	}
	*ret = (int)n;
	return 0;
}

/* The row of name: that version, else the active one, else the latest not archived. */
static PGresult *template_row(PGconn *conn, const char *name, int version, struct shp_error *err)
{
	char v[16];
	PGresult *res;

	(void)snprintf(v, sizeof(v), "%d", version);
	res = shd_db_exec(conn,
			  TMPL_SELECT " FROM templates t WHERE t.name = $1 AND ($2::int > 0"
				      " AND t.version = $2::int OR $2::int = 0"
				      " AND t.status <> 'archived')"
				      " ORDER BY t.status = 'active' DESC, t.version DESC LIMIT 1",
			  2, (const char *[]){name, v}, err);
	if (res && PQntuples(res) == 0) {
		PQclear(res);
		if (version > 0) {
			shp_error_set(err, SHP_E_NOTFOUND, "template '%.63s' version %d not found",
				      name, version);
			shp_error_detail(err, "name", "%.63s", name);
			return NULL;
		}
		return not_found("template", name, err), NULL;
	}
	return res;
}

/* {version, status} of every version of name, oldest first. */
static json_t *template_versions(PGconn *conn, const char *name, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT coalesce(json_agg(json_build_object('version', version, 'status', status)"
		" ORDER BY version), '[]')::text FROM templates WHERE name = $1",
		1, (const char *[]){name}, err);
	json_error_t je;

	return res ? json_loads(PQgetvalue(res, 0, 0), 0, &je) : NULL;
}

int shd_api_templates_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *t = NULL, *versions = NULL;
	int version;

	if (query_version(req, &version, err) < 0 ||
	    !(res = template_row(req->db, req->params[0], version, err)) ||
	    !(versions = template_versions(req->db, req->params[0], err)))
		return -err->code;
	t = shd_row_to_json(res, 0, tmpl_cols, TMPL_NCOLS);
	if (!t || json_object_set(t, "versions", versions) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return shd_resp_json_take(resp, 200, TAKE_PTR(t));
}

/* The seed-format document of a template row (shd_template_fields). */
static json_t *export_doc(const json_t *row)
{
	json_t *doc = json_object();

	for (size_t i = 0; doc && shd_template_fields[i]; i++) {
		json_t *v = json_object_get(row, shd_template_fields[i]);
		if (v && !json_is_null(v))
			json_object_set(doc, shd_template_fields[i], v);
	}
	return doc;
}

/* doc as YAML, its fields in the seed format's order (name first) rather than sorted. */
static int export_yaml(const json_t *doc, struct shp_buf *out, struct shp_error *err)
{
	for (size_t i = 0; shd_template_fields[i]; i++) {
		json_t *v = json_object_get(doc, shd_template_fields[i]);
		json_auto_t *one = v ? json_pack("{s:O}", shd_template_fields[i], v) : NULL;

		if (v && !one)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
		if (one && shp_json_to_yaml(one, out, err) < 0)
			return -err->code;
	}
	return 0;
}

int shd_api_templates_export(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf y = SHP_BUF_INIT(1u << 20);
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *row = NULL, *doc = NULL;
	const char *format = shd_req_query(req, "format");
	int version;

	if (format && strcmp(format, "json") != 0 && strcmp(format, "yaml") != 0) {
		shp_error_set(err, SHP_E_INVAL, "'format' must be yaml or json");
		shp_error_detail(err, "field", "format");
		return -SHP_E_INVAL;
	}
	if (query_version(req, &version, err) < 0 ||
	    !(res = template_row(req->db, req->params[0], version, err)))
		return -err->code;
	row = shd_row_to_json(res, 0, tmpl_cols, TMPL_NCOLS);
	doc = row ? export_doc(row) : NULL;
	if (!doc)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (format && strcmp(format, "json") == 0)
		return shd_resp_json_take(resp, 200, TAKE_PTR(doc));
	if (shp_buf_addf(&y, "# template %s version %s (%s), in the seed format\n",
			 json_string_value(json_object_get(row, "name")), PQgetvalue(res, 0, 2),
			 PQgetvalue(res, 0, 3)) < 0 ||
	    export_yaml(doc, &y, err) < 0)
		return err->code ? -(int)err->code
				 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (shd_resp_raw(resp, 200, y.buf, y.len, "application/yaml") < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

/* ---- templates: creating a version ---------------------------------------------------------- */

/* The smallest enabled size (NOTFOUND when there is none). */
static int smallest_size(PGconn *conn, struct shd_size *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn,
			    "SELECT name FROM instance_sizes WHERE NOT disabled"
			    " ORDER BY cpus, memory_mib, name LIMIT 1",
			    0, NULL, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "no instance size is enabled");
	return shd_size_get(conn, PQgetvalue(res, 0, 0), ret, err);
}

/* One HEALTHY cluster (test environments first): id and default namespace, or id 0. */
static int healthy_cluster(PGconn *conn, int64_t *ret_id, char *name, size_t name_size, char *ns,
			   size_t ns_size, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT id, name, default_namespace FROM clusters WHERE health = 'HEALTHY'"
		" ORDER BY environment = 'test' DESC, id LIMIT 1",
		0, NULL, err);

	*ret_id = 0;
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return 0;
	*ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	(void)snprintf(name, name_size, "%s", PQgetvalue(res, 0, 1));
	(void)snprintf(ns, ns_size, "%s", PQgetvalue(res, 0, 2));
	return 0;
}

/* The spec of a throw-away VM that shows the template renders and a cluster would take it. */
static json_t *check_spec(const json_t *body, const char *size, const char *ns)
{
	const char *pvc_ns = shp_json_str(json_object_get(body, "image_source"), "namespace");

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "name", CHECK_VM_NAME, "namespace",
			 pvc_ns ? pvc_ns : ns, "service", "template-check", "template",
			 json_string_value(json_object_get(body, "name")), "size", size, "run",
			 false);
}

/* Ask the cluster (dry run); validation["dry_run"] says whether it ran, where and how. */
static int dry_run(struct shd_req *req, int64_t cluster_id, const char *cluster,
		   const json_t *manifest, json_t *validation, struct shp_error *err)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	struct shp_error perr = SHP_ERROR_INIT;
	_cleanup_free_ char *reason = NULL;
	bool ok = false;
	int r;

	p = shd_daemon_provider(req->d, cluster_id, &perr);
	/* deadline 0: the provider's own (provider.timeout) */
	r = p ? shd_caps_dry_run_check(&p->infra, manifest, 0, &ok, &reason, &perr)
	      : -(int)perr.code;
	if (r < 0) {
		log_warn("template dry run on cluster '%s' could not run: %s", cluster, perr.msg);
		json_object_set_new(validation, "dry_run",
				    json_pack("{s:b,s:s,s:s}", "ran", false, "cluster", cluster,
					      "reason", perr.msg));
		return 0;
	}
	json_object_set_new(
		validation, "dry_run",
		json_pack("{s:b,s:s,s:b}", "ran", true, "cluster", cluster, "accepted", ok));
	if (ok)
		return 0;
	shp_error_set(err, SHP_E_INVAL, "cluster '%s' refused the template's VM (dry run): %s",
		      cluster, reason);
	shp_error_detail(err, "field", "image_source");
	shp_error_detail(err, "cluster", "%s", cluster);
	return -SHP_E_INVAL;
}

/* Render with the smallest size and dry-run on a healthy cluster; fills validation. */
static int validate_template(struct shd_req *req, const json_t *body, json_t *validation,
			     struct shp_error *err)
{
	struct shd_size size = {0};
	char cluster[128] = "", ns[64] = "default";
	json_auto_t *spec = NULL, *manifest = NULL;
	int64_t cluster_id;
	int r;

	if (healthy_cluster(req->db, &cluster_id, cluster, sizeof(cluster), ns, sizeof(ns), err) <
	    0)
		return -err->code;
	r = smallest_size(req->db, &size, err);
	if (r == -SHP_E_NOTFOUND) {
		json_object_set_new(validation, "rendered", json_false());
		json_object_set_new(validation, "dry_run",
				    json_pack("{s:b,s:s}", "ran", false, "reason",
					      "no enabled instance size to render with"));
		return 0;
	}
	if (r < 0)
		return r;
	spec = check_spec(body, size.name, ns);
	manifest = spec ? shd_render_vm(body, &size, spec, err) : NULL;
	json_object_set_new(validation, "rendered_with_size", json_string(size.name));
	shd_size_release(&size);
	if (!manifest && !spec)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (!manifest) {
		(void)shp_error_prefix(err, "rendering the template");
		return -SHP_E_INVAL;
	}
	json_object_set_new(validation, "rendered", json_true());
	if (cluster_id == 0) {
		json_object_set_new(validation, "dry_run",
				    json_pack("{s:b,s:s}", "ran", false, "reason",
					      "no HEALTHY cluster to ask"));
		return 0;
	}
	return dry_run(req, cluster_id, cluster, manifest, validation, err);
}

static int insert_version(struct shd_req *req, const json_t *body, PGresult **ret,
			  struct shp_error *err)
{
	_cleanup_free_ char *src = json_dumps(json_object_get(body, "image_source"), JSON_COMPACT);
	_cleanup_free_ char *quick = NULL, *adv = NULL;
	const json_t *q = json_object_get(body, "quick_fields");
	const json_t *a = json_object_get(body, "advanced_fields");

	quick = q ? json_dumps(q, JSON_COMPACT) : strdup("[]");
	adv = a ? json_dumps(a, JSON_COMPACT) : strdup("[]");
	if (!src || !quick || !adv)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	*ret = shd_db_exec(req->db,
			   "WITH n AS (INSERT INTO templates (name, version, status, description,"
			   " os, image_source, cloud_init, quick_fields, advanced_fields,"
			   " created_by)"
			   " SELECT $1::text, coalesce(max(version), 0) + 1, 'draft', $2, $3,"
			   " $4::jsonb, $5, $6::jsonb, $7::jsonb, $8 FROM templates"
			   " WHERE name = $1::text"
			   " RETURNING *) " TMPL_SELECT " FROM n t",
			   8,
			   (const char *[]){json_string_value(json_object_get(body, "name")),
					    shp_json_str(body, "description") ?: "",
					    shp_json_str(body, "os") ?: "", src,
					    shp_json_str(body, "cloud_init") ?: "", quick, adv,
					    req->ident.name},
			   err);
	if (!*ret && err->code == SHP_E_CONFLICT)
		shp_error_set(err, SHP_E_CONFLICT,
			      "another version of template '%s' was created at the same time; "
			      "try again",
			      json_string_value(json_object_get(body, "name")));
	return *ret ? 0 : -err->code;
}

int shd_api_templates_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, shd_template_fields, err);
	json_auto_t *validation = json_object(), *t = NULL, *details = NULL;
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!body || shd_template_check(body, err) < 0)
		return -err->code;
	if (!validation)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	json_object_set_new(validation, "cloud_init", json_string("ok"));
	/* the cluster is asked before the transaction opens */
	if (validate_template(req, body, validation, err) < 0)
		return -err->code;
	if (shd_db_begin(req->db, err) < 0 || insert_version(req, body, &res, err) < 0)
		goto fail;
	t = shd_row_to_json(res, 0, tmpl_cols, TMPL_NCOLS);
	details = json_pack("{s:s,s:s,s:O}", "name", PQgetvalue(res, 0, 1), "version",
			    PQgetvalue(res, 0, 2), "validation", validation);
	if (!t || !details) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		goto fail;
	}
	if (shd_audit_write(req->db, req, "TEMPLATE_CREATE", "template", PQgetvalue(res, 0, 1),
			    "success", details, err) < 0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	log_info("template '%s' version %s created (draft)", PQgetvalue(res, 0, 1),
		 PQgetvalue(res, 0, 2));
	json_object_set(t, "validation", validation);
	return shd_resp_json_take(resp, 201, TAKE_PTR(t));
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* ---- templates: the life cycle --------------------------------------------------------------- */

struct transition {
	const char *verb, *to, *action;
	const char *from[3]; /* statuses it may leave */
};

static const struct transition transitions[] = {
	{"publish", "active", "TEMPLATE_PUBLISH", {"draft", "deprecated", NULL}},
	{"deprecate", "deprecated", "TEMPLATE_DEPRECATE", {"draft", "active", NULL}},
	{"archive", "archived", "TEMPLATE_ARCHIVE", {"draft", "active", "deprecated"}},
};

/* Lock name's versions; the status of version (NOTFOUND when absent) into status. */
static int lock_version(PGconn *conn, const char *name, const char *version, char *status,
			size_t size, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn,
			    "SELECT version, status FROM templates WHERE name = $1 ORDER BY version"
			    " FOR UPDATE",
			    1, (const char *[]){name}, err);

	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), version) == 0) {
			(void)snprintf(status, size, "%s", PQgetvalue(res, i, 1));
			return 0;
		}
	shp_error_set(err, SHP_E_NOTFOUND, "template '%.63s' version %s not found", name, version);
	shp_error_detail(err, "name", "%.63s", name);
	return -SHP_E_NOTFOUND;
}

static int check_transition(const struct transition *t, const char *name, const char *version,
			    const char *status, struct shp_error *err)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(t->from) && t->from[i]; i++)
		if (strcmp(t->from[i], status) == 0)
			return 0;
	shp_error_set(err, SHP_E_CONFLICT, "template '%s' version %s is %s: it cannot %s", name,
		      version, status,
		      strcmp(t->verb, "publish") == 0     ? "be published"
		      : strcmp(t->verb, "deprecate") == 0 ? "be deprecated"
							  : "be archived");
	shp_error_detail(err, "status", "%s", status);
	return -SHP_E_CONFLICT;
}

/* Publishing: the active version (if another) becomes deprecated first (one active per name). */
static int move_version(PGconn *conn, const struct transition *t, const char *name,
			const char *version, PGresult **ret_prev, PGresult **ret,
			struct shp_error *err)
{
	if (strcmp(t->to, "active") == 0 &&
	    !(*ret_prev = shd_db_exec(conn,
				      "UPDATE templates SET status = 'deprecated',"
				      " deprecated_at = now() WHERE name = $1"
				      " AND status = 'active' RETURNING version",
				      1, (const char *[]){name}, err)))
		return -err->code;
	*ret = shd_db_exec(
		conn,
		"WITH u AS (UPDATE templates SET status = $3::template_status,"
		" published_at = CASE WHEN $3 = 'active' THEN now() ELSE published_at END,"
		" deprecated_at = CASE WHEN $3 = 'deprecated' THEN now()"
		" ELSE deprecated_at END,"
		" archived_at = CASE WHEN $3 = 'archived' THEN now() ELSE archived_at END"
		" WHERE name = $1 AND version = $2::int RETURNING *) " TMPL_SELECT " FROM u t",
		3, (const char *[]){name, version, t->to}, err);
	return *ret ? 0 : -err->code;
}

static int template_transition(struct shd_req *req, struct shd_resp *resp,
			       const struct transition *t, struct shp_error *err)
{
	static const char *const fields[] = {"version", NULL};
	json_auto_t *body = shd_req_json_object(req, fields, err);
	_cleanup_(PQclearp) PGresult *prev = NULL, *res = NULL;
	const char *name = req->params[0];
	json_auto_t *details = NULL;
	char version[24], status[16];
	int64_t v;

	if (!body || shp_json_get_int(body, "version", true, 1, INT32_MAX, &v, err) < 0)
		return -err->code;
	(void)snprintf(version, sizeof(version), "%lld", (long long)v);
	if (shd_db_begin(req->db, err) < 0 ||
	    lock_version(req->db, name, version, status, sizeof(status), err) < 0 ||
	    check_transition(t, name, version, status, err) < 0 ||
	    move_version(req->db, t, name, version, &prev, &res, err) < 0)
		goto fail;
	details = json_pack("{s:s,s:I,s:s,s:s}", "name", name, "version", (json_int_t)v, "from",
			    status, "to", t->to);
	if (details && prev && PQntuples(prev) > 0)
		json_object_set_new(details, "deprecated_version",
				    json_integer(strtoll(PQgetvalue(prev, 0, 0), NULL, 10)));
	if (shd_audit_write(req->db, req, t->action, "template", name, "success", details, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	log_info("template '%s' version %s: %s -> %s", name, version, status, t->to);
	return shd_resp_row(resp, 200, res, tmpl_cols, TMPL_NCOLS, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

int shd_api_templates_publish(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return template_transition(req, resp, &transitions[0], err);
}

int shd_api_templates_deprecate(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return template_transition(req, resp, &transitions[1], err);
}

int shd_api_templates_archive(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return template_transition(req, resp, &transitions[2], err);
}

/* ---- sizes ----------------------------------------------------------------------------------- */

int shd_api_sizes_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf after = SHP_BUF_INIT(256);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *cursor = shd_req_query(req, "cursor");
	char limit_s[16];
	bool all;
	int limit;

	if (query_all(req, &all, err) < 0 || shd_req_limit(req, &limit, err) < 0 ||
	    (cursor && shd_cursor_decode(cursor, &after, err) < 0))
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit + 1);
	res = shd_db_exec(
		req->db,
		SIZE_SELECT " FROM instance_sizes s WHERE ($1::boolean OR NOT s.disabled)"
			    " AND ($2::text IS NULL OR s.name > $2)"
			    " ORDER BY s.name LIMIT $3::int",
		3, (const char *[]){all ? "true" : "false", cursor ? after.buf : NULL, limit_s},
		err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, size_cols, SIZE_NCOLS, limit, 1, err);
}

int shd_api_sizes_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(req->db, SIZE_SELECT " FROM instance_sizes s WHERE s.name = $1", 1,
			    (const char *[]){req->params[0]}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return not_found("instance size", req->params[0], err);
	return shd_resp_row(resp, 200, res, size_cols, SIZE_NCOLS, err);
}

/* Run a size write and its audit row in one transaction; answer with the row. */
static int size_write(struct shd_req *req, struct shd_resp *resp, int status, const char *sql,
		      int nparams, const char *const *params, const char *action, const char *name,
		      const json_t *details, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(req->db, sql, nparams, params, err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT)
			shp_error_set(err, SHP_E_CONFLICT, "instance size '%s' already exists",
				      name);
		goto fail;
	}
	if (PQntuples(res) == 0) {
		not_found("instance size", name, err);
		goto fail;
	}
	if (shd_audit_write(req->db, req, action, "instance_size", name, "success", details, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	log_info("instance size '%s': %s", name, action);
	return shd_resp_row(resp, status, res, size_cols, SIZE_NCOLS, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

#define SIZE_PARAMS(r)                                                                             \
	(r).cpus[0] ? (r).cpus : NULL, (r).memory_mib[0] ? (r).memory_mib : NULL,                  \
		(r).cpu_overcommit[0] ? (r).cpu_overcommit : NULL,                                 \
		(r).memory_overcommit[0] ? (r).memory_overcommit : NULL,                           \
		(r).required_capabilities, (r).description

int shd_api_sizes_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, NULL, err);
	struct shd_size_row r;
	int rc;

	if (!body || shd_size_check(body, true, &r, err) < 0)
		return -err->code;
	rc = size_write(req, resp, 201,
			"WITH n AS (INSERT INTO instance_sizes (name, cpus, memory_mib,"
			" cpu_overcommit, memory_overcommit, required_capabilities, description,"
			" created_by) VALUES ($1, $2::int, $3::bigint, coalesce($4::numeric, 1),"
			" coalesce($5::numeric, 1), coalesce($6::jsonb, '[]'), coalesce($7, ''),"
			" $8) RETURNING *) " SIZE_SELECT " FROM n s",
			8, (const char *[]){r.name, SIZE_PARAMS(r), req->ident.name}, "SIZE_CREATE",
			r.name, body, err);
	shd_size_row_release(&r);
	return rc;
}

int shd_api_sizes_update(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, NULL, err);
	struct shd_size_row r;
	int rc;

	if (!body || shd_size_check(body, false, &r, err) < 0)
		return -err->code;
	if (json_object_size(body) == 0) {
		shd_size_row_release(&r);
		return shp_error_set(err, SHP_E_INVAL,
				     "nothing to change: give at least one field");
	}
	rc = size_write(req, resp, 200,
			"WITH u AS (UPDATE instance_sizes SET cpus = coalesce($2::int, cpus),"
			" memory_mib = coalesce($3::bigint, memory_mib),"
			" cpu_overcommit = coalesce($4::numeric, cpu_overcommit),"
			" memory_overcommit = coalesce($5::numeric, memory_overcommit),"
			" required_capabilities = coalesce($6::jsonb, required_capabilities),"
			" description = coalesce($7, description),"
			" disabled = coalesce($8::boolean, disabled), updated_at = now()"
			" WHERE name = $1 RETURNING *) " SIZE_SELECT " FROM u s",
			8,
			(const char *[]){req->params[0], SIZE_PARAMS(r),
					 r.disabled < 0 ? NULL
					 : r.disabled   ? "true"
							: "false"},
			"SIZE_UPDATE", req->params[0], body, err);
	shd_size_row_release(&r);
	return rc;
}

/* Disabling keeps the row: VMs and approvals of older requests still name it. */
int shd_api_sizes_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return size_write(req, resp, 200,
			  "WITH u AS (UPDATE instance_sizes SET disabled = true, updated_at = now()"
			  " WHERE name = $1 RETURNING *) " SIZE_SELECT " FROM u s",
			  1, (const char *[]){req->params[0]}, "SIZE_DISABLE", req->params[0], NULL,
			  err);
}
