/*
 * The cluster registry's API: register a cluster from a kubeconfig (its credentials sealed into
 * the row) or as a simulated one, list, show and remove clusters, and ask a cluster's provider
 * for its instance types and preferences. Credentials never leave the daemon: no answer, audit
 * row or log line carries them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "provider.h"
#include "secretbox.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col cl_cols[] = {
	{"id", COL_INT},
	{"name", COL_TEXT},
	{"environment", COL_TEXT},
	{"description", COL_TEXT},
	{"created_at", COL_TIME},
	{"created_by", COL_TEXT},
	{"kind", COL_TEXT},
	{"api_url", COL_TEXT},
	{"default_namespace", COL_TEXT},
	{"health", COL_TEXT},
	{"health_message", COL_TEXT},
	{"health_checked_at", COL_TIME},
	{"kubernetes_version", COL_TEXT},
	{"kubevirt_version", COL_TEXT},
	{"capabilities", COL_JSON},
	{"capabilities_at", COL_TIME},
	{"has_credentials", COL_BOOL},
	{"updated_at", COL_TIME},
};
#define NCOLS ((int)SHP_ARRAY_SIZE(cl_cols))
#define KEY_COL 1

/* The columns above, from clusters n; the credentials themselves are never selected. */
#define CL_SELECT                                                                                  \
	"SELECT n.id, n.name, n.environment, n.description, n.created_at, u.name, n.kind,"         \
	" n.api_url, n.default_namespace, n.health, n.health_message, n.health_checked_at,"        \
	" n.kubernetes_version, n.kubevirt_version, n.capabilities, n.capabilities_at,"            \
	" n.credentials IS NOT NULL, n.updated_at"
#define WITH_CREATOR " LEFT JOIN users u ON u.id = n.created_by"

static int not_found(const char *name, struct shp_error *err)
{
	shp_error_set(err, SHP_E_NOTFOUND, "cluster '%s' not found", name);
	shp_error_detail(err, "name", "%s", name);
	return -SHP_E_NOTFOUND;
}

/* ---- registering a cluster ----------------------------------------------------------------- */

/* What a new row gets: everything text, as the INSERT's parameters. */
struct new_cluster {
	const char *kind;
	char *api_url;                             /* owned */
	struct shp_buf credentials;                /* bytea text ("\x..."), empty for none */
	char key_id[SHD_SECRETBOX_KEY_ID_LEN + 1]; /* "" for none */
	const char *default_namespace;             /* borrowed */
	struct shd_kubeconfig *kc;                 /* owned, wiped when freed */
};

static void new_cluster_release(struct new_cluster *c)
{
	free(c->api_url);
	shp_buf_release(&c->credentials);
	c->kc = shd_kubeconfig_free(c->kc);
}

/* Parse the kubeconfig, check what is stored in clear, and seal the credentials. */
static int from_kubeconfig(struct shd_req *req, const struct shd_cluster_spec *spec,
			   struct new_cluster *c, struct shp_error *err)
{
	c->kc = shd_kubeconfig_parse(spec->kubeconfig, strlen(spec->kubeconfig), spec->context,
				     spec->allow_insecure, err);
	if (!c->kc) {
		shp_error_detail(err, "field", "kubeconfig");
		return -err->code;
	}
	if (shd_validate_api_url("kubeconfig", c->kc->server, err) < 0)
		return shp_error_prefix(err, "the kubeconfig's server");
	if (!shp_name_is_valid(c->kc->namespace_)) {
		shp_error_set(err, SHP_E_INVAL,
			      "the kubeconfig context's namespace '%.63s' is not a valid namespace "
			      "name",
			      c->kc->namespace_);
		shp_error_detail(err, "field", "kubeconfig");
		return -SHP_E_INVAL;
	}
	if (!req->d->providers)
		return shp_error_set(err, SHP_E_UNAVAIL,
				     "cluster credentials cannot be sealed: "
				     "no key is loaded");
	if (shd_providers_seal(req->d->providers, spec->name, c->kc, &c->credentials, c->key_id,
			       err) < 0)
		return -err->code;
	c->kind = "kubevirt";
	c->api_url = strdup(c->kc->server);
	c->default_namespace = c->kc->namespace_;
	return c->api_url ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

static int from_simulation(const struct shd_cluster_spec *spec, struct new_cluster *c,
			   struct shp_error *err)
{
	c->kind = "simulated";
	c->default_namespace = "default";
	if (asprintf(&c->api_url, "sim://%s", spec->name) < 0) {
		c->api_url = NULL;
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	return 0;
}

/* The audit row's details: what was asked, never the kubeconfig. */
static json_t *audit_details(const struct shd_cluster_spec *spec, const struct new_cluster *c)
{
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", spec->name, "environment",
			      spec->environment, "description", spec->description, "kind", c->kind,
			      "api_url", c->api_url);

	if (d && c->kc) {
		(void)json_object_set_new(d, "context", json_string(c->kc->context));
		(void)json_object_set_new(d, "allow_insecure", json_boolean(spec->allow_insecure));
		(void)json_object_set_new(d, "key_id", json_string(c->key_id));
	}
	return d;
}

static int insert_cluster(struct shd_req *req, struct shd_resp *resp,
			  const struct shd_cluster_spec *spec, const struct new_cluster *c,
			  struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *details = audit_details(spec, c);
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%lld", (long long)req->ident.user_id);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(
		req->db,
		"WITH n AS (INSERT INTO clusters (name, api_url, environment, description,"
		" created_by, kind, credentials, credentials_key_id, default_namespace)"
		" VALUES ($1, $2, $3::environment, $4, $5, $6::cluster_kind, $7::bytea, $8, $9)"
		" RETURNING *) " CL_SELECT " FROM n" WITH_CREATOR,
		9,
		(const char *[]){spec->name, c->api_url, spec->environment, spec->description, uid,
				 c->kind, c->credentials.len ? c->credentials.buf : NULL, c->key_id,
				 c->default_namespace},
		err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT) {
			shp_error_set(err, SHP_E_CONFLICT, "cluster '%s' already exists",
				      spec->name);
			shp_error_detail(err, "name", "%s", spec->name);
		}
		goto fail;
	}
	if (shd_audit_write(req->db, req, "CLUSTER_CREATE", "cluster", spec->name, "success",
			    details, err) < 0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	log_info("cluster '%s' registered (%s, %s)", spec->name, c->kind, c->api_url);
	return shd_resp_row(resp, 201, res, cl_cols, NCOLS, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* Wipe what the request carried: the raw body and the parsed copy hold the kubeconfig. */
static void wipe_request(struct shd_req *req, json_t *body)
{
	json_t *kc = json_object_get(body, "kubeconfig");

	if (json_is_string(kc))
		OPENSSL_cleanse((char *)json_string_value(kc), json_string_length(kc));
	if (req->body.len > 0)
		OPENSSL_cleanse(req->body.buf, req->body.len);
}

int shd_api_clusters_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *body = shd_req_json_object(req, NULL, err);
	struct new_cluster c = {.credentials = SHP_BUF_INIT(1u << 20)};
	struct shd_cluster_spec spec;
	int r;

	if (!body)
		return -err->code;
	r = shd_validate_cluster(body, &spec, err);
	if (r == 0) {
		(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", spec.name);
		r = spec.simulated ? from_simulation(&spec, &c, err)
				   : from_kubeconfig(req, &spec, &c, err);
	}
	if (r == 0)
		r = insert_cluster(req, resp, &spec, &c, err);
	new_cluster_release(&c);
	wipe_request(req, body);
	return r;
}

/* ---- reading and removing ------------------------------------------------------------------ */

int shd_api_clusters_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *name = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!shp_name_is_valid(name))
		return not_found(name, err);
	res = shd_db_exec(req->db, CL_SELECT " FROM clusters n" WITH_CREATOR " WHERE n.name = $1",
			  1, (const char *[]){name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return not_found(name, err);
	return shd_resp_row(resp, 200, res, cl_cols, NCOLS, err);
}

int shd_api_clusters_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf after __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(256);
	const char *cursor = shd_req_query(req, "cursor");
	const char *env = shd_req_query(req, "environment");
	_cleanup_(PQclearp) PGresult *res = NULL;
	char limit_s[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (cursor && shd_cursor_decode(cursor, &after, err) < 0)
		return -err->code;
	if (env && shd_validate_environment("environment", env, err) < 0)
		return -err->code;
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	/* keyset page by name; '' sorts before every name */
	res = shd_db_exec(req->db,
			  CL_SELECT " FROM clusters n" WITH_CREATOR
				    " WHERE n.name > coalesce($1::text, '') AND ($3::environment"
				    " IS NULL OR n.environment = $3::environment)"
				    " ORDER BY n.name LIMIT $2::int + 1",
			  3, (const char *[]){cursor ? after.buf : NULL, limit_s, env}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, cl_cols, NCOLS, limit, KEY_COL, err);
}

int shd_api_clusters_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *name = req->params[0];
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *obj = NULL;
	int64_t id;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", name);
	if (!shp_name_is_valid(name))
		return not_found(name, err);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	/* rows of VMs deleted long ago go with it (their trail stays in the audit log) */
	if (shd_db_command(req->db,
			   "DELETE FROM vms WHERE deleted_at IS NOT NULL"
			   " AND cluster_id = (SELECT id FROM clusters WHERE name = $1)",
			   1, (const char *[]){name}, err) < 0)
		goto fail;
	res = shd_db_exec(req->db,
			  "WITH n AS (DELETE FROM clusters WHERE name = $1 RETURNING *) " CL_SELECT
			  " FROM n" WITH_CREATOR,
			  1, (const char *[]){name}, err);
	if (!res && strcmp(err->sqlstate, "23503") == 0) {
		/* active vms rows refer to it (ON DELETE RESTRICT) */
		shp_error_set(
			err, SHP_E_CONFLICT,
			"cluster '%s' still has virtual machines in shepherd: remove them first",
			name);
		shp_error_detail(err, "name", "%s", name);
	}
	if (!res)
		goto fail;
	if (PQntuples(res) == 0) {
		shd_db_rollback(req->db);
		return not_found(name, err);
	}
	obj = shd_row_to_json(res, 0, cl_cols, NCOLS);
	if (shd_audit_write(req->db, req, "CLUSTER_DELETE", "cluster", name, "success", obj, err) <
		    0 ||
	    shd_db_commit(req->db, err) < 0)
		goto fail;
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (req->d->providers)
		shd_providers_invalidate(req->d->providers, id);
	log_info("cluster '%s' removed", name);
	return shd_resp_row(resp, 200, res, cl_cols, NCOLS, err);
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* ---- asking the cluster -------------------------------------------------------------------- */

/*
 * A failure of the cluster itself (unreachable, timed out, answering nonsense) as the answer,
 * with its message: unlike a failure of ours, it tells the admin what to look at, and provider
 * messages never carry credentials. Anything else goes to the router as usual.
 */
static int cluster_failure(struct shd_req *req, struct shd_resp *resp, const char *name,
			   bool from_call, struct shp_error *err)
{
	json_t *details;

	/* the registry's own messages name the cluster already; the provider's may not */
	if (from_call && !shd_error_names_cluster(err, name))
		shp_error_prefix(err, "cluster '%s'", name);
	if (err->code != SHP_E_UNAVAIL && err->code != SHP_E_TIMEOUT && err->code != SHP_E_K8S &&
	    err->code != SHP_E_PROTO)
		return -err->code;
	log_warn("%s", err->msg);
	/* the CLI reads a plain UNREACHABLE as "shepherdd cannot be reached" */
	if (strcmp(shp_error_api_code_of(err), "UNREACHABLE") == 0)
		shp_error_api_code(err, "CLUSTER_UNREACHABLE");
	details = json_object();
	for (int i = 0; i < err->n_details; i++)
		(void)json_object_set_new(details, err->details[i].key,
					  json_string(err->details[i].value));
	(void)json_object_set_new(details, "cluster", json_string(name));
	return shd_resp_json_take(resp, shp_errc_http_status(err->code),
				  json_pack("{s:{s:s,s:s,s:o,s:s}}", SHP_API_FIELD_ERROR,
					    SHP_API_FIELD_CODE, shp_error_api_code_of(err),
					    SHP_API_FIELD_MESSAGE, err->msg, SHP_API_FIELD_DETAILS,
					    details, SHP_API_FIELD_REQUEST_ID, req->request_id));
}

/*
 * The provider of the cluster named in the path, and the namespace of ?namespace= (NULL when
 * absent). The request's database connection goes back to the pool first: a cluster may take
 * its time to answer, and the registry borrows one of its own.
 */
static struct shd_provider *cluster_provider(struct shd_req *req, const char **ret_ns,
					     struct shp_error *err)
{
	const char *name = req->params[0], *ns = shd_req_query(req, "namespace");
	_cleanup_(PQclearp) PGresult *res = NULL;
	int64_t id;

	if (ns && shd_validate_name("namespace", ns, err) < 0)
		return NULL;
	if (!shp_name_is_valid(name)) {
		not_found(name, err);
		return NULL;
	}
	res = shd_db_exec(req->db, "SELECT id FROM clusters WHERE name = $1", 1,
			  (const char *[]){name}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		not_found(name, err);
		return NULL;
	}
	id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	shd_dbpool_put(req->d->pool, req->db);
	req->db = NULL;
	if (!req->d->providers) {
		shp_error_set(err, SHP_E_UNAVAIL, "no cluster providers are available");
		return NULL;
	}
	*ret_ns = ns;
	return shd_providers_get(req->d->providers, id, err);
}

static int unsupported(const struct shd_provider *p, const char *name, const char *what,
		       struct shp_error *err)
{
	shp_error_set(err, SHP_E_INVAL, "cluster '%s' (%s) does not support %s", name, p->kind,
		      what);
	shp_error_api_code(err, "UNSUPPORTED");
	shp_error_detail(err, "cluster", "%s", name);
	shp_error_detail(err, "operation", "%s", what);
	return -SHP_E_INVAL;
}

/* {"cluster": NAME, "namespace": NS or null, "items": items} */
static int answer_items(struct shd_resp *resp, const char *name, const char *ns, json_t *items)
{
	return shd_resp_json_take(
		resp, 200,
		json_pack("{s:s,s:s?,s:o}", "cluster", name, "namespace", ns, "items", items));
}

int shd_api_clusters_instancetypes(struct shd_req *req, struct shd_resp *resp,
				   struct shp_error *err)
{
	const char *name = req->params[0], *ns = NULL;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = cluster_provider(req, &ns, err);
	_cleanup_free_ struct shd_instancetype *its = NULL;
	json_t *items;
	size_t n = 0;

	if (!p)
		return cluster_failure(req, resp, name, false, err);
	if (!p->instancetypes.ops || !p->instancetypes.ops->list_instancetypes)
		return unsupported(p, name, "instance types", err);
	if (p->instancetypes.ops->list_instancetypes(p->instancetypes.impl, ns, &its, &n, 0, err) <
	    0)
		return cluster_failure(req, resp, name, true, err);
	items = json_array();
	for (size_t i = 0; i < n; i++)
		(void)json_array_append_new(
			items,
			json_pack("{s:s,s:s?,s:b,s:i,s:I}", "name", its[i].name, "namespace",
				  its[i].cluster_scoped ? NULL : its[i].namespace_,
				  "cluster_scoped", its[i].cluster_scoped, "cpus", its[i].cpus,
				  "memory_bytes", (json_int_t)its[i].memory_bytes));
	return answer_items(resp, name, ns, items);
}

int shd_api_clusters_preferences(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	const char *name = req->params[0], *ns = NULL;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = cluster_provider(req, &ns, err);
	_cleanup_free_ struct shd_preference *prefs = NULL;
	json_t *items;
	size_t n = 0;

	if (!p)
		return cluster_failure(req, resp, name, false, err);
	if (!p->instancetypes.ops || !p->instancetypes.ops->list_preferences)
		return unsupported(p, name, "preferences", err);
	if (p->instancetypes.ops->list_preferences(p->instancetypes.impl, ns, &prefs, &n, 0, err) <
	    0)
		return cluster_failure(req, resp, name, true, err);
	items = json_array();
	for (size_t i = 0; i < n; i++)
		(void)json_array_append_new(
			items,
			json_pack("{s:s,s:s?,s:b,s:s,s:s}", "name", prefs[i].name, "namespace",
				  prefs[i].cluster_scoped ? NULL : prefs[i].namespace_,
				  "cluster_scoped", prefs[i].cluster_scoped, "cpu_topology",
				  prefs[i].cpu_topology, "disk_bus", prefs[i].disk_bus));
	return answer_items(resp, name, ns, items);
}
