/*
 * Field management and PATCH. Every write records who owns which fields in
 * metadata.managedFields (fieldsV1; all lists are atomic, as in CRDs without list-type
 * markers). Server-side apply (application/apply-patch+yaml) detects conflicts with other
 * managers, shares fields applied with equal values, takes them over with force and removes
 * fields a manager stopped applying when nobody else owns them. Merge patch and JSON patch are
 * recorded as Update operations; strategic merge patch is refused on custom resources.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kubesim.h"
#include "util.h"
#include "yaml.h"

#define SEP '\x1f' /* joins the keys of a flattened field path */

/* ---- flattened field sets: a JSON object whose keys are paths ("spec\x1frunStrategy") ---- */

static void flat_add_leaves(json_t *set, const json_t *v, char *path, size_t len, size_t size)
{
	const char *k;
	json_t *c;

	if (!json_is_object(v) || json_object_size(v) == 0) {
		if (len > 0)
			json_object_set_new(set, path, json_true());
		return;
	}
	json_object_foreach((json_t *)v, k, c)
	{
		int n = snprintf(path + len, size - len, "%s%s", len ? "\x1f" : "", k);
		if (n < 0 || (size_t)n >= size - len)
			continue; /* absurdly deep or long: not tracked */
		flat_add_leaves(set, c, path, len + (size_t)n, size);
		path[len] = '\0';
	}
}

/* The managed fields of obj: labels, annotations, finalizers and ownerReferences of metadata,
 * every other top-level member except apiVersion/kind; status only, or without status. */
static json_t *flat_of(const json_t *obj, bool status_only, bool skip_status)
{
	static const char *const md_keys[] = {"labels", "annotations", "finalizers",
					      "ownerReferences"};
	json_t *set = json_object();
	char path[2048];
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v)
	{
		bool is_status = strcmp(k, "status") == 0;
		if (!strcmp(k, "apiVersion") || !strcmp(k, "kind") || !strcmp(k, "metadata"))
			continue;
		if ((status_only && !is_status) || (skip_status && is_status))
			continue;
		(void)snprintf(path, sizeof(path), "%s", k);
		flat_add_leaves(set, v, path, strlen(path), sizeof(path));
	}
	for (size_t i = 0; !status_only && i < SHP_ARRAY_SIZE(md_keys); i++) {
		v = json_object_get(json_object_get(obj, "metadata"), md_keys[i]);
		if (!v)
			continue;
		(void)snprintf(path, sizeof(path), "metadata%c%s", SEP, md_keys[i]);
		if (json_is_object(v))
			flat_add_leaves(set, v, path, strlen(path), sizeof(path));
		else /* atomic lists: the member itself is the leaf */
			json_object_set_new(set, path, json_true());
	}
	return set;
}

json_t *ks_fields_of(const json_t *obj, bool status_only, bool skip_status)
{
	return flat_of(obj, status_only, skip_status);
}

/* fieldsV1 -> flat set. */
static void flat_from_v1(json_t *set, const json_t *v1, char *path, size_t len, size_t size)
{
	const char *k;
	json_t *c;
	bool leaf = true;

	json_object_foreach((json_t *)v1, k, c)
	{
		int n;
		if (strncmp(k, "f:", 2) != 0)
			continue;
		leaf = false;
		n = snprintf(path + len, size - len, "%s%s", len ? "\x1f" : "", k + 2);
		if (n < 0 || (size_t)n >= size - len)
			continue;
		flat_from_v1(set, c, path, len + (size_t)n, size);
		path[len] = '\0';
	}
	if (leaf && len > 0)
		json_object_set_new(set, path, json_true());
}

/* flat set -> fieldsV1. */
static json_t *flat_to_v1(const json_t *set)
{
	json_t *v1 = json_object();
	const char *k;
	json_t *x;

	json_object_foreach((json_t *)set, k, x)
	{
		json_t *node = v1;
		char buf[2048], *save = NULL, sep[2] = {SEP, 0};
		(void)snprintf(buf, sizeof(buf), "%s", k);
		for (char *t = strtok_r(buf, sep, &save); t; t = strtok_r(NULL, sep, &save)) {
			char fk[1100];
			json_t *child;
			(void)snprintf(fk, sizeof(fk), "f:%s", t);
			if (!(child = json_object_get(node, fk))) {
				child = json_object();
				json_object_set_new(node, fk, child);
			}
			node = child;
		}
	}
	(void)x;
	return v1;
}

/* The value at a flattened path, or NULL (walked in place: this runs for every field). */
static json_t *value_at(const json_t *obj, const char *path)
{
	json_t *v = (json_t *)obj;

	while (v && *path) {
		const char *sep = strchr(path, SEP);
		size_t n = sep ? (size_t)(sep - path) : strlen(path);
		v = json_object_getn(v, path, n);
		path += sep ? n + 1 : n;
	}
	return v;
}

/* Set (value != NULL) or remove the member at a path; removal prunes maps it leaves empty. */
static void set_at(json_t *obj, const char *path, json_t *value)
{
	char buf[2048], sep[2] = {SEP, 0};
	json_t *stack[64];
	char *keys[64];
	int depth = 0;
	char *save = NULL;
	json_t *node = obj;

	(void)snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, sep, &save); t && depth < 64; t = strtok_r(NULL, sep, &save))
		keys[depth++] = t;
	for (int i = 0; i < depth - 1; i++) {
		json_t *child = json_object_get(node, keys[i]);
		if (!json_is_object(child)) {
			if (!value)
				return;
			child = json_object();
			json_object_set_new(node, keys[i], child);
		}
		stack[i] = node;
		node = child;
	}
	if (depth == 0)
		return;
	if (value) {
		json_object_set_new(node, keys[depth - 1], json_deep_copy(value));
		return;
	}
	json_object_del(node, keys[depth - 1]);
	for (int i = depth - 2; i >= 1 && json_object_size(node) == 0; i--) {
		json_object_del(stack[i], keys[i]);
		node = stack[i];
	}
}

/* ---- managedFields entries ---- */

static bool entry_is(const json_t *e, const char *manager, const char *op, const char *sub)
{
	return shp_strcmp0(json_string_value(json_object_get(e, "manager")), manager) == 0 &&
	       shp_strcmp0(json_string_value(json_object_get(e, "operation")), op) == 0 &&
	       shp_strcmp0(json_string_value(json_object_get(e, "subresource")), sub) == 0;
}

/* The entries of obj with their field sets flattened into "set" (a working copy). */
static json_t *entries_load(const json_t *obj)
{
	json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
	json_t *out = json_array();
	size_t i;
	json_t *e;

	json_array_foreach(mf, i, e)
	{
		json_t *c = json_deep_copy(e), *set = json_object();
		char path[2048] = "";
		flat_from_v1(set, json_object_get(e, "fieldsV1"), path, 0, sizeof(path));
		json_object_set_new(c, "set", set);
		json_object_del(c, "fieldsV1");
		json_array_append_new(out, c);
	}
	return out;
}

/* Back to managedFields: fieldsV1 from the sets, fields no longer in obj dropped, empty
 * entries removed. */
static json_t *entries_store(json_t *entries, const json_t *obj)
{
	json_t *all = flat_of(obj, false, false), *out = json_array();
	size_t i;
	json_t *e;

	json_array_foreach(entries, i, e)
	{
		json_t *set = json_object_get(e, "set"), *c;
		const char *k;
		json_t *x;
		void *tmp;
		json_object_foreach_safe(set, tmp, k, x)
		{
			if (!json_object_get(all, k))
				json_object_del(set, k);
		}
		if (json_object_size(set) == 0)
			continue;
		c = json_deep_copy(e);
		json_object_del(c, "set");
		json_object_set_new(c, "fieldsType", json_string("FieldsV1"));
		json_object_set_new(c, "fieldsV1", flat_to_v1(set));
		json_array_append_new(out, c);
	}
	json_decref(all);
	return out;
}

static json_t *entry_get(json_t *entries, const char *manager, const char *op, const char *sub,
			 const char *api_version)
{
	size_t i;
	json_t *e;
	char now[32];

	ks_now(now, sizeof(now));
	json_array_foreach(entries, i, e)
	{
		if (entry_is(e, manager, op, sub)) {
			json_object_set_new(e, "time", json_string(now));
			json_object_set_new(e, "apiVersion", json_string(api_version));
			return e;
		}
	}
	e = json_pack("{s:s, s:s, s:s, s:s, s:{}}", "manager", manager, "operation", op,
		      "apiVersion", api_version, "time", now, "set");
	if (sub)
		json_object_set_new(e, "subresource", json_string(sub));
	json_array_append_new(entries, e);
	return e;
}

void ks_managed_update(json_t *new_obj, const json_t *old_obj, const char *manager,
		       const char *api_version, const char *subresource)
{
	bool status = subresource && strcmp(subresource, "status") == 0;
	json_auto_t *entries = old_obj ? entries_load(old_obj) : json_array();
	json_auto_t *nf = flat_of(new_obj, status, false);
	json_auto_t *of = old_obj ? flat_of(old_obj, status, false) : json_object();
	json_auto_t *changed = json_object();
	json_t *mine, *e, *x;
	const char *k;
	size_t i;

	json_object_foreach(nf, k, x)
	{
		if (!old_obj || !json_equal(value_at(new_obj, k), value_at(old_obj, k)))
			json_object_set_new(changed, k, json_true());
	}
	json_object_foreach(of, k, x)
	{
		if (!json_object_get(nf, k))
			json_object_set_new(changed, k, json_true());
	}
	if (json_object_size(changed) == 0 && old_obj) {
		json_object_set(
			json_object_get(new_obj, "metadata"), "managedFields",
			json_object_get(json_object_get(old_obj, "metadata"), "managedFields"));
		return;
	}
	mine = entry_get(entries, manager, "Update", subresource, api_version);
	json_array_foreach(entries, i, e)
	{
		json_t *set = json_object_get(e, "set");
		json_object_foreach(changed, k, x)
		{
			if (e == mine && json_object_get(nf, k))
				json_object_set_new(set, k, json_true());
			else
				json_object_del(set, k);
		}
	}
	json_object_set_new(json_object_get(new_obj, "metadata"), "managedFields",
			    entries_store(entries, new_obj));
}

/* ---- merge patch (RFC 7386) and JSON patch (RFC 6902) ---- */

static json_t *merge_patch(json_t *target, const json_t *patch)
{
	const char *k;
	json_t *v;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
	}
	json_object_foreach((json_t *)patch, k, v)
	{
		if (json_is_null(v))
			json_object_del(target, k);
		else
			json_object_set_new(
				target, k, merge_patch(json_incref(json_object_get(target, k)), v));
	}
	return target;
}

/* A JSON pointer token in place: ~1 is '/', ~0 is '~'. */
static void unescape(char *s)
{
	for (char *t = s; (t = strchr(t, '~')); t++) {
		memmove(t, t + 1, strlen(t));
		*t = *t == '1' ? '/' : '~';
	}
}

/* Resolve a JSON pointer to (parent, last token); -1 when a parent is missing. */
static int pointer_parent(json_t *doc, const char *ptr, json_t **ret_parent, char *last,
			  size_t size)
{
	char buf[2048], *p, *slash;
	json_t *node = doc;

	if (ptr[0] != '/' || strlen(ptr) >= sizeof(buf))
		return -1;
	memcpy(buf, ptr + 1, strlen(ptr));
	p = buf;
	while ((slash = strchr(p, '/'))) {
		*slash = '\0';
		unescape(p);
		if (json_is_object(node))
			node = json_object_get(node, p);
		else if (json_is_array(node))
			node = json_array_get(node, strtoul(p, NULL, 10));
		else
			node = NULL;
		if (!node)
			return -1;
		p = slash + 1;
	}
	unescape(p);
	(void)snprintf(last, size, "%s", p);
	*ret_parent = node;
	return 0;
}

static bool array_index(const json_t *arr, const char *tok, bool for_add, size_t *ret)
{
	char *end;
	unsigned long i;

	if (for_add && strcmp(tok, "-") == 0) {
		*ret = json_array_size(arr);
		return true;
	}
	if (!*tok || (tok[0] == '0' && tok[1]))
		return false;
	i = strtoul(tok, &end, 10);
	if (*end || i > json_array_size(arr) || (!for_add && i == json_array_size(arr)))
		return false;
	*ret = i;
	return true;
}

static json_t *pointer_get(json_t *doc, const char *ptr)
{
	json_t *parent;
	char last[1024];
	size_t i;

	if (strcmp(ptr, "") == 0)
		return doc;
	if (pointer_parent(doc, ptr, &parent, last, sizeof(last)) < 0)
		return NULL;
	if (json_is_object(parent))
		return json_object_get(parent, last);
	if (json_is_array(parent) && array_index(parent, last, false, &i))
		return json_array_get(parent, i);
	return NULL;
}

/* add/replace (value stolen) or remove (value NULL) at ptr. */
static int pointer_put(json_t *doc, const char *ptr, json_t *value, bool replace)
{
	json_t *parent;
	char last[1024];
	size_t i;

	if (pointer_parent(doc, ptr, &parent, last, sizeof(last)) < 0) {
		json_decref(value);
		return -1;
	}
	if (json_is_object(parent)) {
		if ((!value || replace) && !json_object_get(parent, last)) {
			json_decref(value);
			return -1;
		}
		return value ? json_object_set_new(parent, last, value)
			     : json_object_del(parent, last);
	}
	if (json_is_array(parent) && array_index(parent, last, value && !replace, &i)) {
		if (!value)
			return json_array_remove(parent, i);
		return replace ? json_array_set_new(parent, i, value)
			       : json_array_insert_new(parent, i, value);
	}
	json_decref(value);
	return -1;
}

/* One operation; on failure a message in msg. */
static int json_patch_op(json_t *doc, const json_t *op, char *msg, size_t size)
{
	const char *o = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	const char *from = json_string_value(json_object_get(op, "from"));
	json_t *value = json_object_get(op, "value"), *src;

	if (!o || !path) {
		(void)snprintf(msg, size, "missing op or path");
		return -1;
	}
	if (strcmp(o, "test") == 0) {
		if (json_equal(pointer_get(doc, path), value))
			return 0;
		(void)snprintf(msg, size, "testing value %.200s failed: test failed", path);
		return -1;
	}
	if ((!strcmp(o, "add") || !strcmp(o, "replace")) && !value) {
		(void)snprintf(msg, size, "missing value for op %.20s", o);
		return -1;
	}
	if (!strcmp(o, "add") || !strcmp(o, "replace") || !strcmp(o, "remove")) {
		if (pointer_put(doc, path, value ? json_deep_copy(value) : NULL,
				!strcmp(o, "replace")) == 0)
			return 0;
		(void)snprintf(msg, size,
			       "%s operation does not apply: doc is missing path: %.200s", o, path);
		return -1;
	}
	if ((!strcmp(o, "move") || !strcmp(o, "copy")) && from &&
	    (src = json_deep_copy(pointer_get(doc, from)))) {
		if (!strcmp(o, "move") && pointer_put(doc, from, NULL, false) < 0) {
			json_decref(src);
			return -1;
		}
		if (pointer_put(doc, path, src, false) == 0)
			return 0;
	}
	(void)snprintf(msg, size, "unable to apply op %.20s at %.200s", o, path);
	return -1;
}

static int json_patch(json_t *doc, const json_t *ops, struct ks_resp *resp)
{
	char msg[512];
	size_t i;
	json_t *op;

	if (!json_is_array(ops))
		return ks_error(
			resp, 400, "BadRequest",
			"json: cannot unmarshal object into Go value of type jsonpatch.Patch",
			NULL);
	json_array_foreach(ops, i, op)
	{
		if (json_patch_op(doc, op, msg, sizeof(msg)) < 0)
			return ks_error(resp, 422, "Invalid", msg, NULL);
	}
	return 0;
}

/* ---- server-side apply ---- */

static void print_manager(const json_t *e, char *out, size_t size)
{
	const char *sub = json_string_value(json_object_get(e, "subresource"));
	int n = snprintf(out, size, "\"%s\"", json_string_value(json_object_get(e, "manager")));

	if (sub && n > 0 && (size_t)n < size)
		n += snprintf(out + n, size - (size_t)n, " with subresource \"%s\"", sub);
	if (entry_is(e, json_string_value(json_object_get(e, "manager")), "Update", sub) && n > 0 &&
	    (size_t)n < size)
		(void)snprintf(out + n, size - (size_t)n, " using %s",
			       json_string_value(json_object_get(e, "apiVersion")));
}

static void print_path(const char *flat, char *out, size_t size)
{
	(void)snprintf(out, size, ".%s", flat);
	for (char *p = out; *p; p++)
		if (*p == SEP)
			*p = '.';
}

static int cmp_conflict(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	int c = strcmp(json_string_value(json_object_get(x, "m")),
		       json_string_value(json_object_get(y, "m")));

	return c ? c
		 : strcmp(json_string_value(json_object_get(x, "p")),
			  json_string_value(json_object_get(y, "p")));
}

/* 409 with one FieldManagerConflict cause per field, grouped by manager in the message. */
static int conflict_error(struct ks_resp *resp, json_t *conflicts)
{
	size_t n = json_array_size(conflicts);
	_cleanup_free_ json_t **v = calloc(n, sizeof(*v));
	struct shp_buf msg = SHP_BUF_INIT(64 * 1024);
	json_t *causes = json_array();
	const char *group = NULL;
	int r = 0;

	if (!v)
		abort();
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(conflicts, i);
	qsort(v, n, sizeof(*v), cmp_conflict);
	if (n == 1)
		r |= shp_buf_addf(&msg, "Apply failed with 1 conflict: conflict with %s: %s",
				  json_string_value(json_object_get(v[0], "m")),
				  json_string_value(json_object_get(v[0], "p")));
	else
		r |= shp_buf_addf(&msg, "Apply failed with %zu conflicts: ", n);
	for (size_t i = 0; i < n; i++) {
		const char *m = json_string_value(json_object_get(v[i], "m"));
		const char *p = json_string_value(json_object_get(v[i], "p"));
		char cm[600];
		(void)snprintf(cm, sizeof(cm), "conflict with %s", m);
		json_array_append_new(causes,
				      json_pack("{s:s, s:s, s:s}", "reason", "FieldManagerConflict",
						"message", cm, "field", p));
		if (n == 1)
			continue;
		if (!group || strcmp(group, m) != 0)
			r |= shp_buf_addf(&msg, "%sconflicts with %s:", group ? "\n" : "", m);
		group = m;
		r |= shp_buf_addf(&msg, "\n- %s", p);
	}
	(void)r; /* a message cut at the cap is still a message */
	ks_error(resp, 409, "Conflict", msg.buf, json_pack("{s:o}", "causes", causes));
	shp_buf_release(&msg);
	return -1;
}

/* Conflicts of the applied fields fa with other managers; with force, ownership moves. */
static json_t *find_conflicts(json_t *entries, const json_t *mine, const json_t *cur,
			      const json_t *applied, const json_t *fa, bool force)
{
	json_t *conflicts = json_array(), *e, *x;
	const char *k;
	size_t i;

	json_array_foreach(entries, i, e)
	{
		json_t *set = json_object_get(e, "set");
		char m[400], p[2100];
		if (e == mine)
			continue;
		json_object_foreach((json_t *)fa, k, x)
		{
			if (!json_object_get(set, k) ||
			    json_equal(value_at(cur, k), value_at(applied, k)))
				continue;
			if (force) {
				json_object_del(set, k);
				continue;
			}
			print_manager(e, m, sizeof(m));
			print_path(k, p, sizeof(p));
			json_array_append_new(conflicts, json_pack("{s:s, s:s}", "m", m, "p", p));
		}
	}
	return conflicts;
}

static bool owned_by_other(json_t *entries, const json_t *mine, const char *k)
{
	size_t i;
	json_t *e;

	json_array_foreach(entries, i, e)
	{
		if (e != mine && json_object_get(json_object_get(e, "set"), k))
			return true;
	}
	return false;
}

/* Merge the applied fields into a copy of cur; drop what the manager stopped applying. */
static json_t *apply_merge(json_t *entries, json_t *mine, const json_t *cur, const json_t *applied,
			   const json_t *fa)
{
	json_t *nw = json_deep_copy(cur), *x;
	const char *k;

	json_object_foreach(json_object_get(mine, "set"), k, x)
	{
		if (!json_object_get(fa, k) && !owned_by_other(entries, mine, k))
			set_at(nw, k, NULL);
	}
	json_object_foreach((json_t *)fa, k, x)
	{
		json_t *v = value_at(applied, k), *old = value_at(nw, k);
		if (json_is_object(v) && json_object_size(v) == 0 && json_is_object(old))
			continue; /* an empty map merges into what is there */
		set_at(nw, k, v);
	}
	json_object_set_new(mine, "set", json_deep_copy(fa));
	return nw;
}

static int apply_existing(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
			  const json_t *applied, const json_t *cur, const char *manager, bool dry)
{
	const struct ks_resource *r = &ks_resources[t->res];
	bool status = t->sub != NULL;
	const char *force = ks_query(req, "force");
	json_auto_t *fa = flat_of(applied, status, !status && r->status_sub);
	json_auto_t *entries = entries_load(cur);
	json_auto_t *conflicts = NULL, *nw = NULL, *managed = NULL;
	json_t *mine;
	char av[128];

	ks_api_version(r, av, sizeof(av));
	mine = entry_get(entries, manager, "Apply", t->sub, av);
	conflicts = find_conflicts(entries, mine, cur, applied, fa,
				   force && strcmp(force, "true") == 0);
	if (json_array_size(conflicts) > 0)
		return conflict_error(resp, conflicts);
	nw = apply_merge(entries, mine, cur, applied, fa);
	managed = entries_store(entries, nw);
	return ks_commit_update(req, resp, t, nw, cur, dry, managed);
}

static json_t *apply_body(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_t *obj = shp_yaml_to_json(req->body, req->body_len, KS_JSON_DEPTH, &err);
	const json_t *md;
	const char *name;

	if (!obj || !json_is_object(obj)) {
		json_decref(obj);
		ks_errorf(resp, 400, "BadRequest", "error decoding YAML: %s",
			  obj ? "not a map" : err.msg);
		return NULL;
	}
	md = json_object_get(obj, "metadata");
	name = json_string_value(json_object_get(md, "name"));
	if (!json_is_string(json_object_get(obj, "apiVersion")) ||
	    !json_is_string(json_object_get(obj, "kind"))) {
		ks_error(resp, 400, "BadRequest", "Object 'Kind' is missing in the applied object",
			 NULL);
	} else if (!name || strcmp(name, t->name) != 0) {
		ks_errorf(resp, 400, "BadRequest",
			  "the name of the object (%.253s) does not match the name on the URL (%s)",
			  name ? name : "", t->name);
	} else if (json_object_get(md, "managedFields")) {
		ks_error(resp, 400, "BadRequest", "metadata.managedFields must be nil", NULL);
	} else {
		return obj;
	}
	json_decref(obj);
	return NULL;
}

static int apply(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t, bool dry)
{
	const char *mgr = ks_query(req, "fieldManager");
	json_auto_t *applied = NULL;
	const json_t *cur;
	const char *rv;
	int r;

	if (!mgr || !*mgr)
		return ks_error(resp, 422, "Invalid",
				"PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
				"value: is required for apply patch",
				json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "group", "meta.k8s.io",
					  "kind", "PatchOptions", "causes", "reason",
					  "FieldValueRequired", "message",
					  "Required value: is required for apply patch", "field",
					  "fieldManager"));
	if (strlen(mgr) > 128)
		return ks_error(resp, 422, "Invalid",
				"fieldManager: Too long: may not be longer than 128", NULL);
	if (!(applied = apply_body(req, resp, t)))
		return -1;
	pthread_mutex_lock(&req->ks->mu);
	cur = ks_get(req->ks, t->res, t->ns, t->name);
	rv = json_string_value(
		json_object_get(json_object_get(applied, "metadata"), "resourceVersion"));
	if (!cur && t->sub)
		r = ks_not_found(resp, &ks_resources[t->res], t->name);
	else if (!cur)
		r = ks_create_obj(req, resp, t, applied, dry, mgr);
	else if (rv && *rv &&
		 strcmp(rv, json_string_value(json_object_get(json_object_get(cur, "metadata"),
							      "resourceVersion"))) != 0)
		r = ks_conflict_modified(resp, &ks_resources[t->res], t->name);
	else
		r = apply_existing(req, resp, t, applied, cur, mgr, dry);
	pthread_mutex_unlock(&req->ks->mu);
	return r;
}

static int patch_update(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t,
			bool dry, bool merge)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *patch = shp_json_parse(req->body, req->body_len, KS_JSON_DEPTH, &err);
	json_auto_t *doc = NULL;
	const json_t *cur;
	const char *rv;
	int r = -1;

	if (!patch)
		return ks_errorf(resp, 400, "BadRequest", "error decoding patch: %s", err.msg);
	pthread_mutex_lock(&req->ks->mu);
	cur = ks_get(req->ks, t->res, t->ns, t->name);
	rv = json_string_value(
		json_object_get(json_object_get(patch, "metadata"), "resourceVersion"));
	if (!cur) {
		ks_not_found(resp, &ks_resources[t->res], t->name);
	} else if (merge && rv &&
		   strcmp(rv, json_string_value(json_object_get(json_object_get(cur, "metadata"),
								"resourceVersion"))) != 0) {
		ks_conflict_modified(resp, &ks_resources[t->res], t->name);
	} else if (merge) {
		doc = merge_patch(json_deep_copy(cur), patch);
		r = ks_commit_update(req, resp, t, doc, cur, dry, NULL);
	} else {
		doc = json_deep_copy(cur);
		if (json_patch(doc, patch, resp) == 0)
			r = ks_commit_update(req, resp, t, doc, cur, dry, NULL);
	}
	pthread_mutex_unlock(&req->ks->mu);
	return r;
}

int ks_patch(struct ks_req *req, struct ks_resp *resp, const struct ks_target *t)
{
	const struct ks_resource *r = &ks_resources[t->res];
	const char *ct = req->content_type ? req->content_type : "";
	const char *force = ks_query(req, "force");
	size_t n = strcspn(ct, "; ");
	int dry = ks_dry_run(req, resp, NULL);

	if (dry < 0)
		return -1;
	if (n == 28 && strncmp(ct, "application/apply-patch+yaml", n) == 0)
		return apply(req, resp, t, dry);
	if (force)
		return ks_error(
			resp, 422, "Invalid",
			"force: Invalid value: true: may not be specified for non-apply patch",
			NULL);
	if (n == 28 && strncmp(ct, "application/merge-patch+json", n) == 0)
		return patch_update(req, resp, t, dry, true);
	if (n == 27 && strncmp(ct, "application/json-patch+json", n) == 0)
		return patch_update(req, resp, t, dry, false);
	if (n == 38 && strncmp(ct, "application/strategic-merge-patch+json", n) == 0 && !r->crd)
		return patch_update(req, resp, t, dry, true);
	return ks_errorf(resp, 415, "UnsupportedMediaType",
			 "the body of the request was in an unknown format - accepted media types "
			 "include: application/json-patch+json, application/merge-patch+json, "
			 "application/apply-patch+yaml%s",
			 r->crd ? "" : ", application/strategic-merge-patch+json");
}

void ks_managed_apply_create(json_t *obj, const char *manager, const char *api_version)
{
	json_auto_t *entries = json_array();
	json_t *e = entry_get(entries, manager, "Apply", NULL, api_version);

	json_object_set_new(e, "set", flat_of(obj, false, false));
	json_object_set_new(json_object_get(obj, "metadata"), "managedFields",
			    entries_store(entries, obj));
}
