/*
 * The generic REST verbs on one resource, as the apiserver's generic registry does them: GET,
 * POST (create, generateName, namespace checks), PUT (optimistic concurrency, the status
 * subresource, generation), DELETE (preconditions, finalizers, namespaces terminating) and
 * dryRun=All for every write. LIST and WATCH live in list-watch.c, PATCH in apply.c.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "kubesim.h"
#include "labelsel.h"
#include "util.h"

static const char *md_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static json_t *md_of(json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");

	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(obj, "metadata", md);
	}
	return md;
}

int ks_dry_run(struct ks_req *req, struct ks_resp *resp, json_t *opts_body)
{
	const char *q = ks_query(req, "dryRun");
	json_t *b = json_object_get(opts_body, "dryRun");

	if (q)
		return strcmp(q, "All") == 0 ? 1
					     : ks_errorf(resp, 422, "Invalid",
							 "dryRun: Unsupported value: \"%s\": "
							 "supported values: \"All\"",
							 q);
	if (json_is_array(b) && json_array_size(b) > 0) {
		const char *v = json_string_value(json_array_get(b, 0));
		if (json_array_size(b) == 1 && v && strcmp(v, "All") == 0)
			return 1;
		return ks_error(resp, 422, "Invalid",
				"dryRun: Unsupported value: supported values: \"All\"", NULL);
	}
	return 0;
}

void ks_update_manager(struct ks_req *req, char *out, size_t size)
{
	const char *fm = ks_query(req, "fieldManager");
	const char *ua = req->user_agent;
	size_t n;

	if (fm && *fm) {
		(void)snprintf(out, size, "%s", fm);
		return;
	}
	if (!ua || !*ua)
		ua = "unknown";
	n = strcspn(ua, "/");
	if (n > 128)
		n = 128;
	(void)snprintf(out, size, "%.*s", (int)n, ua);
}

static bool is_dns_label(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* DNS-1123 subdomain: dot-separated labels, 253 characters at most. */
static bool is_dns_subdomain(const char *s)
{
	char buf[256], *save = NULL;
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
		return false;
	memcpy(buf, s, n + 1);
	for (char *t = strtok_r(buf, ".", &save); t; t = strtok_r(NULL, ".", &save))
		if (!is_dns_label(t, 63))
			return false;
	return true;
}

static int invalid_name(struct ks_resp *resp, const struct ks_resource *r, const char *name,
			bool label)
{
	char msg[1024];

	(void)snprintf(msg, sizeof(msg),
		       "%s%s%s \"%s\" is invalid: metadata.name: Invalid value: \"%.253s\": a "
		       "lowercase RFC 1123 %s must consist of lower case alphanumeric characters, "
		       "'-'%s, and must start and end with an alphanumeric character",
		       r->kind, *r->group ? "." : "", r->group, name, name,
		       label ? "label" : "subdomain", label ? "" : " or '.'");
	return ks_error(resp, 422, "Invalid", msg,
			json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", name, "group",
				  r->group, "kind", r->kind, "causes", "reason",
				  "FieldValueInvalid", "message", "Invalid value", "field",
				  "metadata.name"));
}

/* Check the body's apiVersion/kind against the URL's and fill them in. */
static int check_type(struct ks_resp *resp, const struct ks_resource *r, json_t *obj)
{
	char av[128];
	const char *got_av = json_string_value(json_object_get(obj, "apiVersion"));
	const char *got_kind = json_string_value(json_object_get(obj, "kind"));

	ks_api_version(r, av, sizeof(av));
	if (got_av && strcmp(got_av, av) != 0)
		return ks_errorf(resp, 400, "BadRequest",
				 "the API version in the data (%.100s) does not match the expected "
				 "API version (%s)",
				 got_av, av);
	if (got_kind && strcmp(got_kind, r->kind) != 0)
		return ks_errorf(
			resp, 400, "BadRequest",
			"the kind in the data (%.100s) does not match the expected kind (%s)",
			got_kind, r->kind);
	json_object_set_new(obj, "apiVersion", json_string(av));
	json_object_set_new(obj, "kind", json_string(r->kind));
	return 0;
}

void ks_generate_name(const char *prefix, char *out, size_t size)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[5];
	char suffix[6];

	if (shp_random_bytes(rnd, sizeof(rnd), NULL) < 0)
		abort();
	for (size_t i = 0; i < sizeof(rnd); i++)
		suffix[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	suffix[5] = '\0';
	(void)snprintf(out, size, "%.58s%s", prefix, suffix);
}

/* metadata.labels must be a map of valid keys to valid values (the apiserver's validation). */
static int check_labels(struct ks_resp *resp, const struct ks_resource *r, const json_t *obj)
{
	const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	const char *k;
	json_t *v;

	if (!labels)
		return 0;
	if (!json_is_object(labels))
		return ks_error(resp, 400, "BadRequest",
				"metadata.labels: must be a map of string keys to string values",
				NULL);
	json_object_foreach((json_t *)labels, k, v)
	{
		const char *sv = json_string_value(v);
		if (shd_label_key_is_valid(k) && sv && shd_label_value_is_valid(sv))
			continue;
		return ks_errorf(resp, 422, "Invalid",
				 "%s%s%s \"%.253s\" is invalid: metadata.labels: Invalid value: "
				 "\"%.253s\": a valid label must be an empty string or consist of "
				 "alphanumeric characters, '-', '_' or '.', and must start and end "
				 "with an alphanumeric character",
				 r->kind, *r->group ? "." : "", r->group,
				 json_string_value(
					 json_object_get(json_object_get(obj, "metadata"), "name")),
				 shd_label_key_is_valid(k) ? (sv ? sv : "") : k);
	}
	return 0;
}

/* The namespace must exist and not be terminating. */
static int check_namespace(struct ks *ks, struct ks_resp *resp, const char *ns)
{
	json_t *nsobj = ks_get(ks, KS_R_NAMESPACE, NULL, ns);

	if (!nsobj) {
		char msg[512];
		(void)snprintf(msg, sizeof(msg), "namespaces \"%s\" not found", ns);
		return ks_error(resp, 404, "NotFound", msg,
				json_pack("{s:s, s:s}", "name", ns, "kind", "namespaces"));
	}
	if (json_object_get(json_object_get(nsobj, "metadata"), "deletionTimestamp")) {
		char msg[512];
		(void)snprintf(msg, sizeof(msg),
			       "unable to create new content in namespace %s because it is being "
			       "terminated",
			       ns);
		return ks_error(resp, 403, "Forbidden", msg,
				json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "name", ns, "kind",
					  "namespaces", "causes", "reason", "NamespaceTerminating",
					  "message", msg, "field", "metadata.namespace"));
	}
	return 0;
}

int ks_prepare_create(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		      json_t *obj, bool dry)
{
	const struct ks_resource *r = &ks_resources[t->res];
	json_t *md = md_of(obj);
	const char *name = md_str(obj, "name"), *gen = md_str(obj, "generateName");
	const char *ns = md_str(obj, "namespace");
	char buf[320], uid[40], now[32];

	if (check_type(resp, r, obj) < 0)
		return -1;
	if (r->namespaced && ns && t->ns && strcmp(ns, t->ns) != 0)
		return ks_error(resp, 400, "BadRequest",
				"the namespace of the provided object does not match the namespace "
				"sent on the request",
				NULL);
	if ((!name || !*name) && gen && *gen) {
		ks_generate_name(gen, buf, sizeof(buf));
		json_object_set_new(md, "name", json_string(buf));
		name = md_str(obj, "name");
	}
	if (!name || !*name)
		return ks_error(resp, 422, "Invalid",
				"metadata.name: Required value: name or generateName is required",
				json_pack("{s:[{s:s, s:s, s:s}]}", "causes", "reason",
					  "FieldValueRequired", "message",
					  "Required value: name or generateName is required",
					  "field", "metadata.name"));
	if (t->res == KS_R_NAMESPACE ? !is_dns_label(name, 63) : !is_dns_subdomain(name))
		return invalid_name(resp, r, name, t->res == KS_R_NAMESPACE);
	if (r->namespaced)
		json_object_set_new(md, "namespace", json_string(t->ns));
	else
		json_object_del(md, "namespace");
	ks_new_uid(uid, sizeof(uid));
	ks_now(now, sizeof(now));
	json_object_set_new(md, "uid", json_string(uid));
	json_object_set_new(md, "creationTimestamp", json_string(now));
	json_object_set_new(md, "generation", json_integer(1));
	json_object_del(md, "resourceVersion");
	json_object_del(md, "deletionTimestamp");
	json_object_del(md, "deletionGracePeriodSeconds");
	json_object_del(md, "managedFields");
	json_object_del(md, "selfLink");
	if (r->status_sub && t->res != KS_R_NAMESPACE)
		json_object_del(obj, "status");
	if (t->res == KS_R_NAMESPACE) {
		json_object_set_new(obj, "spec", json_pack("{s:[s]}", "finalizers", "kubernetes"));
		json_object_set_new(obj, "status", json_pack("{s:s}", "phase", "Active"));
		if (!json_is_object(json_object_get(md, "labels")))
			json_object_set_new(md, "labels", json_object());
		json_object_set_new(json_object_get(md, "labels"), "kubernetes.io/metadata.name",
				    json_string(name));
	}
	(void)req;
	(void)dry;
	return 0;
}

static json_t *parse_body(struct ks_req *req, struct ks_resp *resp)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *obj;

	if (req->body_len == 0) {
		ks_error(resp, 400, "BadRequest", "the request body is empty", NULL);
		return NULL;
	}
	obj = shp_json_parse(req->body, req->body_len, KS_JSON_DEPTH, &err);
	if (!obj) {
		ks_errorf(resp, 400, "BadRequest",
			  "the body of the request was in an unknown format - accepted media types "
			  "include: application/json, application/yaml (%s)",
			  err.msg);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		ks_error(resp, 400, "BadRequest", "the request body is not a JSON object", NULL);
		return NULL;
	}
	return obj;
}

static int already_exists(struct ks_resp *resp, const struct ks_resource *r, const char *name)
{
	char q[128], msg[512];

	ks_qualified(r, q, sizeof(q));
	(void)snprintf(msg, sizeof(msg), "%s \"%s\" already exists", q, name);
	return ks_error(
		resp, 409, "AlreadyExists", msg,
		json_pack("{s:s, s:s, s:s}", "name", name, "group", r->group, "kind", r->plural));
}

int ks_create_obj(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t, json_t *obj,
		  bool dry, const char *apply_manager)
{
	struct ks *ks = req->ks;
	const struct ks_resource *r = &ks_resources[t->res];
	char mgr[160], av[128];

	if (r->namespaced && check_namespace(ks, resp, t->ns) < 0)
		return -1;
	if (ks_prepare_create(req, resp, t, obj, dry) < 0)
		return -1;
	if (ks_get(ks, t->res, t->ns, md_str(obj, "name")))
		return already_exists(resp, r, md_str(obj, "name"));
	if (check_labels(resp, r, obj) < 0 || ks_admit(ks, resp, t->res, obj, NULL) < 0)
		return -1;
	ks_update_manager(req, mgr, sizeof(mgr));
	ks_api_version(r, av, sizeof(av));
	if (apply_manager)
		ks_managed_apply_create(obj, apply_manager, av);
	else
		ks_managed_update(obj, NULL, mgr, av, NULL);
	if (!dry) {
		/* the store owns its objects alone: readers on other threads share them */
		json_t *stored = json_deep_copy(obj);
		ks_put(ks, t->res, stored);
		return ks_reply(resp, 201, json_deep_copy(stored));
	}
	return ks_reply(resp, 201, json_deep_copy(obj));
}

static int create(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	json_auto_t *obj = parse_body(req, resp);
	int dry, r;

	if (!obj || (dry = ks_dry_run(req, resp, NULL)) < 0)
		return -1;
	pthread_mutex_lock(&req->ks->mu);
	r = ks_create_obj(req, resp, t, obj, dry, NULL);
	pthread_mutex_unlock(&req->ks->mu);
	return r;
}

static int get(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	json_t *obj;

	pthread_mutex_lock(&req->ks->mu);
	obj = ks_get(req->ks, t->res, t->ns, t->name);
	if (obj)
		ks_reply(resp, 200, json_deep_copy(obj));
	pthread_mutex_unlock(&req->ks->mu);
	return obj ? 0 : ks_not_found(resp, &ks_resources[t->res], t->name);
}

int ks_conflict_modified(struct ks_resp *resp, const struct ks_resource *r, const char *name)
{
	char q[128], msg[640];

	ks_qualified(r, q, sizeof(q));
	(void)snprintf(msg, sizeof(msg),
		       "Operation cannot be fulfilled on %s \"%s\": the object has been modified; "
		       "please apply your changes to the latest version and try again",
		       q, name);
	return ks_error(
		resp, 409, "Conflict", msg,
		json_pack("{s:s, s:s, s:s}", "name", name, "group", r->group, "kind", r->plural));
}

/* Whether anything outside metadata and status differs (bumps metadata.generation). */
static bool spec_changed(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)a, k, v)
	{
		if (strcmp(k, "metadata") && strcmp(k, "status") &&
		    !json_equal(v, json_object_get(b, k)))
			return true;
	}
	json_object_foreach((json_t *)b, k, v)
	{
		if (strcmp(k, "metadata") && strcmp(k, "status") && !json_object_get(a, k))
			return true;
	}
	return false;
}

/* Carry the server-owned metadata of cur over to the replacement nw. */
static void keep_identity(json_t *nw, const json_t *cur)
{
	static const char *const keep[] = {"name",
					   "namespace",
					   "uid",
					   "creationTimestamp",
					   "generation",
					   "deletionTimestamp",
					   "deletionGracePeriodSeconds",
					   "managedFields"};
	json_t *md = md_of(nw), *cmd = json_object_get(cur, "metadata");

	for (size_t i = 0; i < SHP_ARRAY_SIZE(keep); i++) {
		json_t *v = json_object_get(cmd, keep[i]);
		if (v)
			json_object_set(md, keep[i], v);
		else
			json_object_del(md, keep[i]);
	}
}

/*
 * Store the result of a write (PUT or PATCH) on cur: the status subresource rules, generation,
 * managed fields (an Update entry, unless the caller computed them: managed), the release of a
 * deleted object's last finalizer and no-op detection. Answers 200.
 */
int ks_commit_update(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		     const json_t *body, const json_t *cur, bool dry, const json_t *managed)
{
	struct ks *ks = req->ks;
	const struct ks_resource *r = &ks_resources[t->res];
	bool status = t->sub && strcmp(t->sub, "status") == 0;
	json_auto_t *nw = json_deep_copy(status ? cur : body);
	const json_t *st = json_object_get(status ? body : cur, "status");
	char mgr[160], av[128];

	if (!status) {
		keep_identity(nw, cur);
		if (check_type(resp, r, nw) < 0)
			return -1;
	}
	if (status || r->status_sub) {
		if (st)
			json_object_set_new(nw, "status", json_deep_copy(st));
		else
			json_object_del(nw, "status");
	}
	if (spec_changed(nw, cur))
		json_object_set_new(
			md_of(nw), "generation",
			json_integer(json_integer_value(json_object_get(
					     json_object_get(cur, "metadata"), "generation")) +
				     1));
	if (check_labels(resp, r, nw) < 0 || ks_admit(ks, resp, t->res, nw, cur) < 0)
		return -1;
	ks_api_version(r, av, sizeof(av));
	ks_update_manager(req, mgr, sizeof(mgr));
	if (managed)
		json_object_set_new(md_of(nw), "managedFields", json_deep_copy(managed));
	else
		ks_managed_update(nw, cur, mgr, av, status ? "status" : NULL);
	return ks_store_update(ks, resp, t, nw, cur, dry);
}

/* The last step of every update: no-op detection, finalizer release, the store. */
int ks_store_update(struct ks *ks, struct ks_resp *resp, const struct ks_target *t, json_t *nw,
		    const json_t *cur, bool dry)
{
	json_t *fin = json_object_get(md_of(nw), "finalizers");

	json_object_set(md_of(nw), "resourceVersion",
			json_object_get(json_object_get(cur, "metadata"), "resourceVersion"));
	if (json_equal(nw, cur))
		return ks_reply(resp, 200, json_deep_copy(cur));
	if (!dry && md_str(nw, "deletionTimestamp") && json_array_size(fin) == 0) {
		ks_remove(ks, t->res, t->ns, t->name);
		return ks_reply(resp, 200, json_deep_copy(nw));
	}
	if (!dry)
		ks_put(ks, t->res, json_deep_copy(nw));
	return ks_reply(resp, 200, json_deep_copy(nw));
}

static int do_update(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		     json_t *nw, int dry)
{
	const struct ks_resource *r = &ks_resources[t->res];
	json_t *cur = ks_get(req->ks, t->res, t->ns, t->name);
	const char *name = md_str(nw, "name"), *rv = md_str(nw, "resourceVersion");

	if (name && strcmp(name, t->name) != 0)
		return ks_errorf(resp, 400, "BadRequest",
				 "the name of the object (%.253s) does not match the name on the "
				 "URL (%s)",
				 name, t->name);
	if (!cur)
		return ks_not_found(resp, r, t->name);
	if ((!rv || !*rv) && r->crd)
		return ks_error(resp, 422, "Invalid",
				"metadata.resourceVersion: Invalid value: 0x0: must be specified "
				"for an update",
				NULL);
	if (rv && *rv && strcmp(rv, md_str(cur, "resourceVersion")) != 0)
		return ks_conflict_modified(resp, r, t->name);
	return ks_commit_update(req, resp, t, nw, cur, dry, NULL);
}

static int update(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	json_auto_t *obj = parse_body(req, resp);
	int dry, r;

	if (!obj || (dry = ks_dry_run(req, resp, NULL)) < 0)
		return -1;
	pthread_mutex_lock(&req->ks->mu);
	r = do_update(req, resp, t, obj, dry);
	pthread_mutex_unlock(&req->ks->mu);
	return r;
}

static int precondition_failed(struct ks_resp *resp, const struct ks_resource *r, const char *name,
			       const char *what, const char *want, const char *have)
{
	char q[128], msg[900];

	ks_qualified(r, q, sizeof(q));
	(void)snprintf(msg, sizeof(msg),
		       "Operation cannot be fulfilled on %s \"%s\": Precondition failed: %s in "
		       "precondition: %.100s, %s in object meta: %s",
		       q, name, what, want, what, have ? have : "");
	return ks_error(
		resp, 409, "Conflict", msg,
		json_pack("{s:s, s:s, s:s}", "name", name, "group", r->group, "kind", r->plural));
}

/* DeleteOptions from the body, else from the query. */
static const char *delete_opt(struct ks_req *req, const json_t *opts, const char *key)
{
	const char *v = json_string_value(json_object_get(opts, key));

	return v ? v : ks_query(req, key);
}

/* Mark for deletion: deletionTimestamp, and Terminating for a namespace. */
static json_t *mark_deleted(const json_t *cur, enum ks_res res, bool foreground)
{
	json_t *nw = json_deep_copy(cur), *md = md_of(nw);
	char now[32];

	ks_now(now, sizeof(now));
	json_object_set_new(md, "deletionTimestamp", json_string(now));
	json_object_set_new(md, "deletionGracePeriodSeconds", json_integer(0));
	if (foreground) {
		json_t *fin = json_object_get(md, "finalizers");
		if (!json_is_array(fin)) {
			fin = json_array();
			json_object_set_new(md, "finalizers", fin);
		}
		json_array_append_new(fin, json_string("foregroundDeletion"));
	}
	if (res == KS_R_NAMESPACE)
		json_object_set_new(nw, "status", json_pack("{s:s}", "phase", "Terminating"));
	return nw;
}

static int do_delete(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
		     const json_t *opts, int dry)
{
	const struct ks_resource *r = &ks_resources[t->res];
	json_t *cur = ks_get(req->ks, t->res, t->ns, t->name);
	const json_t *pre = json_object_get(opts, "preconditions");
	const char *puid = json_string_value(json_object_get(pre, "uid"));
	const char *prv = json_string_value(json_object_get(pre, "resourceVersion"));
	const char *policy = delete_opt(req, opts, "propagationPolicy");
	bool foreground = policy && strcmp(policy, "Foreground") == 0;
	json_auto_t *nw = NULL;

	if (policy && strcmp(policy, "Foreground") && strcmp(policy, "Background") &&
	    strcmp(policy, "Orphan"))
		return ks_errorf(resp, 422, "Invalid",
				 "propagationPolicy: Unsupported value: \"%.64s\"", policy);
	if (!cur)
		return ks_not_found(resp, r, t->name);
	if (puid && strcmp(puid, md_str(cur, "uid")) != 0)
		return precondition_failed(resp, r, t->name, "UID", puid, md_str(cur, "uid"));
	if (prv && strcmp(prv, md_str(cur, "resourceVersion")) != 0)
		return precondition_failed(resp, r, t->name, "ResourceVersion", prv,
					   md_str(cur, "resourceVersion"));
	if (md_str(cur, "deletionTimestamp"))
		return ks_reply(resp, 200, json_deep_copy(cur));
	if (json_array_size(json_object_get(json_object_get(cur, "metadata"), "finalizers")) ||
	    foreground || t->res == KS_R_NAMESPACE) {
		nw = mark_deleted(cur, t->res, foreground);
		if (!dry)
			ks_put(req->ks, t->res, json_deep_copy(nw));
		return ks_reply(resp, 200, json_deep_copy(nw));
	}
	if (!dry)
		ks_remove(req->ks, t->res, t->ns, t->name);
	return ks_reply(resp, 200,
			json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s, s:s, s:s}}", "kind", "Status",
				  "apiVersion", "v1", "metadata", "status", "Success", "details",
				  "name", t->name, "group", r->group, "kind", r->plural, "uid",
				  md_str(cur, "uid")));
}

static int delete (struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	json_auto_t *opts = NULL;
	int dry, r;

	if (req->body_len > 0 && !(opts = parse_body(req, resp)))
		return -1;
	if ((dry = ks_dry_run(req, resp, opts)) < 0)
		return -1;
	pthread_mutex_lock(&req->ks->mu);
	r = do_delete(req, resp, t, opts, dry);
	pthread_mutex_unlock(&req->ks->mu);
	return r;
}

static bool is_watch(struct ks_req *req, const struct ks_target *t)
{
	const char *w = ks_query(req, "watch");

	return t->watch_path || (w && (strcmp(w, "1") == 0 || strcmp(w, "true") == 0));
}

static int method_not_allowed(struct ks_resp *resp)
{
	return ks_error(resp, 405, "MethodNotAllowed",
			"the server does not allow this method on the requested resource", NULL);
}

int ks_api_handle(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	const struct ks_resource *r = &ks_resources[t->res];
	const char *m = req->method;

	if (t->sub && (strcmp(t->sub, "status") != 0 || !r->status_sub))
		return ks_error(resp, 404, "NotFound",
				"the server could not find the requested resource", json_object());
	if (strcmp(m, "GET") == 0) {
		if (t->name)
			return get(req, resp, t);
		return is_watch(req, t) ? ks_watch_start(req, resp, t) : ks_list(req, resp, t);
	}
	if (r->read_only || t->watch_path)
		return method_not_allowed(resp);
	if (strcmp(m, "POST") == 0)
		return t->name ? method_not_allowed(resp) : create(req, resp, t);
	if (!t->name)
		return method_not_allowed(resp);
	if (strcmp(m, "PUT") == 0)
		return update(req, resp, t);
	if (strcmp(m, "PATCH") == 0)
		return ks_patch(req, resp, t);
	if (strcmp(m, "DELETE") == 0)
		return t->sub ? method_not_allowed(resp) : delete (req, resp, t);
	return method_not_allowed(resp);
}
