/*
 * Batch operations over HTTP: POST /vms/batch (many VM creates) and its compatibility forms
 * POST /approvals/batch and POST /vms/batch/power (a power operation on VMs named or
 * selected), the parent with its children (GET /vms/batch/{id}), the caller's batches, and
 * retry, cancel and approve-all on a parent. Every item is checked as its single request is
 * (api-vm-requests.c); the errors name the item's index. See docs/internals/batch.md.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "batch-internal.h"
#include "batch.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "exec.h"
#include "json.h"
#include "log.h"
#include "shepherdd.h"
#include "util.h"

#define SELECTOR_MAX 512

/* ---- the answer -------------------------------------------------------------------------- */

/* A child as the submission's answer lists it (its ticket's status at creation). */
static json_t *child_summary(const struct batch_child *c)
{
	const struct shd_gov_sub *s = &c->p.sub;
	json_t *j = json_pack("{s:i,s:I,s:I,s:s,s:s,s:s,s:i}", "index", c->index, "ticket_id",
			      (json_int_t)c->ticket_id, "request_id", (json_int_t)c->event_id,
			      "namespace", s->ns, "name", s->target, "status",
			      c->d.level >= 2 ? "PENDING_APPROVAL" : "APPROVED", "approval_level",
			      c->d.level);

	if (j && c->retry_of)
		(void)json_object_set_new(j, "retry_of", json_integer(c->retry_of));
	return j;
}

/* The parent's counters as they stand (after the commit). */
static json_t *parent_json(PGconn *conn, int64_t id, struct shp_error *err)
{
	static const struct shd_col cols[] = {
		{"batch_id", COL_INT},
		{"kind", COL_TEXT},
		{"source", COL_TEXT},
		{"status", COL_TEXT},
		{"requester", COL_TEXT},
		{"request_id", COL_TEXT},
		{"total", COL_INT},
		{"success", COL_INT},
		{"failed", COL_INT},
		{"pending", COL_INT},
		{"awaiting_approval", COL_INT},
		{"cancelled", COL_INT},
		{"retried", COL_INT},
		{"created_at", COL_TIME},
		{"updated_at", COL_TIME},
		{"finished_at", COL_TIME},
	};
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24], url[80];
	json_t *j;

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn,
			  "SELECT id, kind, source, status::text, requester, request_id, total,"
			  " success, failed, pending + awaiting, awaiting, cancelled, retried,"
			  " created_at, updated_at, finished_at"
			  " FROM batch_approval_tickets WHERE id = $1",
			  1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "batch %s not found", ids);
		return NULL;
	}
	j = shd_row_to_json(res, 0, cols, (int)SHP_ARRAY_SIZE(cols));
	(void)snprintf(url, sizeof(url), SHP_ROUTE_VMS "/batch/%" PRId64, id);
	if (j)
		(void)json_object_set_new(j, "status_url", json_string(url));
	else
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return j;
}

/* 202: the parent as GET shows it, with the children just recorded under list. */
static int answer_submitted(struct shd_req *req, struct shd_resp *resp, const struct batch_sub *b,
			    const char *list, struct shp_error *err)
{
	json_t *j = parent_json(req->db, b->id, err);
	json_t *children = json_array();

	if (!j || !children) {
		json_decref(children);
		json_decref(j);
		return -err->code;
	}
	for (size_t i = 0; i < b->n; i++)
		(void)json_array_append_new(children, child_summary(&b->c[i]));
	(void)json_object_set_new(j, list, children);
	return shd_resp_json_take(resp, 202, j);
}

/* ---- submitting ---------------------------------------------------------------------------- */

/* Room for n children (zeroed: a child not prepared owns nothing). */
static int batch_alloc(struct batch_sub *b, size_t n, struct shp_error *err)
{
	b->c = calloc(n ? n : 1, sizeof(*b->c));
	if (!b->c)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	b->n = n;
	return 0;
}

/* The list of items: 1..batch.max_items of them. */
static int items_of(struct shd_req *req, const json_t *body, const char *key, const json_t **ret,
		    struct shp_error *err)
{
	const json_t *items = json_object_get(body, key);
	int max = req->d->cfg->batch_max_items;

	if (!json_is_array(items)) {
		shp_error_set(err, SHP_E_INVAL, "'%s' must be a list", key);
		shp_error_detail(err, "field", "%s", key);
		return -SHP_E_INVAL;
	}
	if (json_array_size(items) == 0 || json_array_size(items) > (size_t)max) {
		shp_error_set(err, SHP_E_INVAL, "'%s' must have 1 to %d entries (it has %zu)", key,
			      max, json_array_size(items));
		shp_error_api_code(err, "BATCH_TOO_LARGE");
		shp_error_detail(err, "field", "%s", key);
		shp_error_detail(err, "max", "%d", max);
		return -SHP_E_INVAL;
	}
	*ret = items;
	return 0;
}

/* An item named twice (namespace and name) in one batch. */
static bool duplicate_name(const struct batch_sub *b, size_t upto, const json_t *spec)
{
	const char *ns = shp_json_str(spec, "namespace"), *name = shp_json_str(spec, "name");

	for (size_t i = 0; i < upto; i++)
		if (b->c[i].p.spec && shp_streq(shp_json_str(b->c[i].p.spec, "namespace"), ns) &&
		    shp_streq(shp_json_str(b->c[i].p.spec, "name"), name))
			return true;
	return false;
}

/* One create item: shape, a name not repeated, then POST /vms's checks. */
static int prepare_create(struct shd_req *req, struct batch_sub *b, size_t i, const json_t *item,
			  struct shp_error *err)
{
	json_t *spec;

	if (!json_is_object(item))
		return shp_error_set(err, SHP_E_INVAL, "an item must be an object (a VM spec)");
	if (shd_spec_validate(item, err) < 0)
		return -err->code;
	if (duplicate_name(b, i, item)) {
		shp_error_set(err, SHP_E_CONFLICT, "VM '%s' in '%s' is named twice in the batch",
			      shp_json_str(item, "name"), shp_json_str(item, "namespace"));
		shp_error_api_code(err, "NAME_TAKEN");
		shp_error_detail(err, "field", "name");
		return -SHP_E_CONFLICT;
	}
	spec = json_deep_copy(item);
	if (!spec)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return shd_vm_create_prepare(req, spec, &b->c[i].p, err);
}

/* A check's failure of an item is the item's, unless the database itself failed. */
static bool fatal(const struct shp_error *e)
{
	return e->code == SHP_E_DB || e->code == SHP_E_UNAVAIL || e->code == SHP_E_NOMEM;
}

/*
 * A batch of creates: the limits first (nothing else is read for a caller who must wait),
 * then every item, then the policies, then one transaction. Item errors are collected so
 * that one answer names every item to fix.
 */
static int create(struct shd_req *req, struct shd_resp *resp, const char *source,
		  struct shp_error *err)
{
	static const char *const allowed[] = {"items", "confirm", NULL};
	struct batch_sub b __attribute__((cleanup(batch_sub_release))) = {.kind = "CREATE_VM",
									  .source = source};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	const json_t *items = NULL;

	if (!body || items_of(req, body, "items", &items, err) < 0 ||
	    shp_json_get_bool(body, "confirm", false, &b.confirm, err) < 0 ||
	    shd_batch_limits_check(req, resp, (int)json_array_size(items), true, err) < 0 ||
	    batch_alloc(&b, json_array_size(items), err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "CREATE_VM x%zu", b.n);
	for (size_t i = 0; i < b.n; i++) {
		struct shp_error e = SHP_ERROR_INIT;
		b.c[i].index = (int)i;
		if (prepare_create(req, &b, i, json_array_get(items, i), &e) < 0) {
			if (fatal(&e))
				return -(*err = e).code;
			batch_item_error(&b, (int)i, &e);
		}
	}
	if (!b.nerrors && batch_decide_all(req, &b, err) < 0)
		return -err->code;
	if (b.nerrors)
		return batch_invalid_answer(req, resp, &b);
	if (batch_record(req, &b, err) < 0)
		return -err->code;
	return answer_submitted(req, resp, &b, "children", err);
}

int shd_api_batch_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return create(req, resp, "vms", err);
}

int shd_api_batch_create_compat(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return create(req, resp, "approvals", err);
}

/* ---- power batches ----------------------------------------------------------------------- */

/* The selector's terms: key=value[,key=value...] over namespace, system, service, cluster,
 * status (exact) and name (a glob with * and ?). */
struct selector {
	char buf[SELECTOR_MAX + 1];
	const char *namespace, *system, *service, *cluster, *status, *name;
	char like[2 * SELECTOR_MAX + 1];
};

static int bad_selector(struct shp_error *err, const char *what, const char *term)
{
	shp_error_set(err, SHP_E_INVAL,
		      "selector: %s '%.64s' (terms are key=value joined by "
		      "commas; keys namespace, system, service, cluster, status, name)",
		      what, term);
	shp_error_detail(err, "field", "selector");
	return -SHP_E_INVAL;
}

/* A name glob as a LIKE pattern: % and _ escaped, * and ? translated. */
static void glob_to_like(const char *g, char *out, size_t size)
{
	size_t n = 0;

	for (; *g && n + 3 < size; g++) {
		if (*g == '%' || *g == '_' || *g == '\\')
			out[n++] = '\\', out[n++] = *g;
		else
			out[n++] = *g == '*' ? '%' : *g == '?' ? '_' : *g;
	}
	out[n] = '\0';
}

/* Parse into s (its buffer holds the terms; the keys' values point into it). */
static int parse_selector(const char *text, struct selector *s, struct shp_error *err)
{
	const char **slot;
	char *save = NULL, *term;

	if (strlen(text) > SELECTOR_MAX || !text[0])
		return bad_selector(err, "must have 1 to 512 characters, not", "");
	(void)snprintf(s->buf, sizeof(s->buf), "%s", text);
	for (term = strtok_r(s->buf, ",", &save); term; term = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(term, '=');
		if (!eq || eq == term || !eq[1])
			return bad_selector(err, "a term is not key=value:", term);
		*eq = '\0';
		slot = strcmp(term, "namespace") == 0 ? &s->namespace
		       : strcmp(term, "system") == 0  ? &s->system
		       : strcmp(term, "service") == 0 ? &s->service
		       : strcmp(term, "cluster") == 0 ? &s->cluster
		       : strcmp(term, "status") == 0  ? &s->status
		       : strcmp(term, "name") == 0    ? &s->name
						      : NULL;
		if (!slot)
			return bad_selector(err, "unknown key", term);
		if (*slot)
			return bad_selector(err, "a key is given twice:", term);
		*slot = eq + 1;
	}
	if (!s->namespace && !s->system && !s->service && !s->cluster && !s->status && !s->name)
		return bad_selector(err, "has no term:", text);
	if (s->name)
		glob_to_like(s->name, s->like, sizeof(s->like));
	return 0;
}

/* The visible VMs a selector matches, up to max + 1 (namespace, name). */
static PGresult *select_vms(struct shd_req *req, const struct selector *s, int max,
			    struct shp_error *err)
{
	char uid[24], lim[16];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(lim, sizeof(lim), "%d", max + 1);
	return shd_db_exec(
		req->db,
		"SELECT v.namespace, v.name FROM vms v JOIN namespaces n ON n.name = v.namespace"
		" JOIN clusters c ON c.id = v.cluster_id"
		" WHERE v.deleted_at IS NULL AND vm_visible($1, v.system, n.environment)"
		"   AND ($2::text IS NULL OR v.namespace = $2)"
		"   AND ($3::text IS NULL OR v.system = $3) AND ($4::text IS NULL OR v.service = "
		"$4)"
		"   AND ($5::text IS NULL OR c.name = $5)"
		"   AND ($6::text IS NULL OR v.status::text = upper($6))"
		"   AND ($7::text IS NULL OR v.name LIKE $7)"
		" ORDER BY v.namespace, v.name LIMIT $8",
		8,
		(const char *[]){uid, s->namespace, s->system, s->service, s->cluster, s->status,
				 s->name ? s->like : NULL, lim},
		err);
}

/* The request type of an operation's name. */
static int power_type(const char *op, enum shd_req_type *ret, struct shp_error *err)
{
	if (shp_streq(op, "start"))
		*ret = SHD_REQ_START_VM;
	else if (shp_streq(op, "stop"))
		*ret = SHD_REQ_STOP_VM;
	else if (shp_streq(op, "restart"))
		*ret = SHD_REQ_RESTART_VM;
	else {
		shp_error_set(err, SHP_E_INVAL, "'operation' must be start, stop or restart");
		shp_error_detail(err, "field", "operation");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* One named VM ("name" or "namespace/name") through the single power request's checks. */
static int prepare_power_named(struct shd_req *req, struct batch_child *c, enum shd_req_type t,
			       const json_t *item, struct shp_error *err)
{
	const char *text = json_string_value(item), *slash;
	char ns[64];

	if (!text)
		return shp_error_set(err, SHP_E_INVAL, "a name must be a string");
	slash = strchr(text, '/');
	if (!slash)
		return shd_vm_power_prepare(req, t, NULL, text, &c->p, err);
	if ((size_t)(slash - text) >= sizeof(ns))
		return shp_error_set(err, SHP_E_NOTFOUND, "VM '%.100s' not found", text);
	(void)snprintf(ns, sizeof(ns), "%.*s", (int)(slash - text), text);
	return shd_vm_power_prepare(req, t, ns, slash + 1, &c->p, err);
}

/* Children from a list of names, each checked as its single request. */
static int power_by_names(struct shd_req *req, struct batch_sub *b, enum shd_req_type t,
			  const json_t *names, struct shp_error *err)
{
	if (batch_alloc(b, json_array_size(names), err) < 0)
		return -err->code;
	for (size_t i = 0; i < b->n; i++) {
		struct shp_error e = SHP_ERROR_INIT;
		b->c[i].index = (int)i;
		if (prepare_power_named(req, &b->c[i], t, json_array_get(names, i), &e) < 0) {
			if (fatal(&e))
				return -(*err = e).code;
			batch_item_error(b, (int)i, &e);
		}
	}
	return 0;
}

/* Children from the VMs a selector matches (1 to batch.max_items of them). */
static int power_by_selector(struct shd_req *req, struct batch_sub *b, enum shd_req_type t,
			     const char *text, struct shp_error *err)
{
	struct selector s = {0};
	_cleanup_(PQclearp) PGresult *res = NULL;
	int max = req->d->cfg->batch_max_items;

	if (parse_selector(text, &s, err) < 0 || !(res = select_vms(req, &s, max, err)))
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_INVAL, "selector '%.200s' matches no VM", text);
		shp_error_api_code(err, "BATCH_EMPTY");
		shp_error_detail(err, "field", "selector");
		return -SHP_E_INVAL;
	}
	if (PQntuples(res) > max) {
		shp_error_set(err, SHP_E_INVAL, "selector '%.200s' matches more than %d VMs", text,
			      max);
		shp_error_api_code(err, "BATCH_TOO_LARGE");
		shp_error_detail(err, "max", "%d", max);
		return -SHP_E_INVAL;
	}
	if (batch_alloc(b, (size_t)PQntuples(res), err) < 0)
		return -err->code;
	for (size_t i = 0; i < b->n; i++) {
		struct shp_error e = SHP_ERROR_INIT;
		b->c[i].index = (int)i;
		if (shd_vm_power_prepare(req, t, PQgetvalue(res, (int)i, 0),
					 PQgetvalue(res, (int)i, 1), &b->c[i].p, &e) < 0) {
			if (fatal(&e))
				return -(*err = e).code;
			batch_item_error(b, (int)i, &e);
		}
	}
	return 0;
}

/*
 * A power batch: one of names and selector; the limits are checked once the number of
 * children is known (a selector's only then).
 */
int shd_api_batch_power(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"operation", "names", "selector", "confirm", NULL};
	struct batch_sub b __attribute__((cleanup(batch_sub_release))) = {.source = "power"};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	const json_t *names = NULL;
	const char *op = NULL, *sel = NULL;
	enum shd_req_type t;

	if (!body || shp_json_get_string(body, "operation", true, 16, &op, err) < 0 ||
	    power_type(op, &t, err) < 0 ||
	    shp_json_get_string(body, "selector", false, SELECTOR_MAX, &sel, err) < 0 ||
	    shp_json_get_bool(body, "confirm", false, &b.confirm, err) < 0)
		return -err->code;
	if (!sel == !json_object_get(body, "names")) {
		shp_error_set(err, SHP_E_INVAL, "name the VMs with 'names' or 'selector' (one)");
		shp_error_detail(err, "field", "selector");
		return -SHP_E_INVAL;
	}
	b.kind = shd_req_type_to_string(t);
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s %.100s", b.kind,
		       sel ? sel : "names");
	if ((!sel && items_of(req, body, "names", &names, err) < 0) ||
	    (sel ? power_by_selector(req, &b, t, sel, err)
		 : power_by_names(req, &b, t, names, err)) < 0 ||
	    shd_batch_limits_check(req, resp, (int)b.n, true, err) < 0)
		return -err->code;
	if (!b.nerrors && batch_decide_all(req, &b, err) < 0)
		return -err->code;
	if (b.nerrors)
		return batch_invalid_answer(req, resp, &b);
	if (batch_record(req, &b, err) < 0)
		return -err->code;
	return answer_submitted(req, resp, &b, "children", err);
}

/* ---- reading ----------------------------------------------------------------------------------
 */

/*
 * The batch of the path, if the caller may see it: its requester, a platform admin, or an
 * approver of the environment of one of its children. Otherwise it does not exist.
 * *ret_own: the caller is the requester or a platform admin (may retry and cancel).
 */
int batch_find(struct shd_req *req, int64_t *ret_id, bool *ret_own, char *ret_kind, size_t size,
	       struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *id = req->params[0];
	char uid[24];
	long long n = 0;

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", id);
	if (shp_parse_int(id, 1, INT64_MAX, &n, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "batch '%.64s' not found", id);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(
		req->db,
		"SELECT b.requester_id = $2 OR $3::boolean, b.kind FROM batch_approval_tickets b"
		" WHERE b.id = $1 AND (b.requester_id = $2 OR $3::boolean OR EXISTS"
		"  (SELECT 1 FROM approval_tickets t WHERE t.parent_ticket_id = b.id"
		"    AND t.environment = ANY (user_envs($2, '" SHD_ROLES_APPROVE "'))))",
		3, (const char *[]){id, uid, req->ident.is_admin ? "true" : "false"}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "batch %s not found", id);
	*ret_id = n;
	*ret_own = shp_streq(shd_db_value(res, 0, 0), "t");
	if (ret_kind)
		(void)snprintf(ret_kind, size, "%s", shd_db_value(res, 0, 1));
	return 0;
}

/* A child's columns in GET /vms/batch/{id} (the ticket's, with its execution as task_id). */
static const struct shd_col child_cols[] = {
	{"ticket_id", COL_INT},   {"index", COL_INT},          {"request_id", COL_INT},
	{"type", COL_TEXT},       {"namespace", COL_TEXT},     {"name", COL_TEXT},
	{"status", COL_TEXT},     {"approval_level", COL_INT}, {"task_id", COL_INT},
	{"error_code", COL_TEXT}, {"error", COL_TEXT},         {"retried_by", COL_INT},
	{"updated_at", COL_TIME},
};

/* A page of children after ?cursor= (a ticket id), ?status= filtering. */
static json_t *children_page(struct shd_req *req, int64_t id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *cursor = shd_req_query(req, "cursor"), *status = shd_req_query(req, "status");
	char ids[24], lim[16], after[24] = "0";
	long long a = 0;
	int limit, n;
	json_t *items, *page;

	if (shd_req_limit(req, &limit, err) < 0)
		return NULL;
	if (cursor && shp_parse_int(cursor, 0, INT64_MAX, &a, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return NULL;
	}
	if (status && (strlen(status) > 24 ||
		       strspn(status, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != strlen(status))) {
		shp_error_set(err, SHP_E_INVAL, "'status' must be a ticket status");
		shp_error_detail(err, "field", "status");
		return NULL;
	}
	(void)snprintf(after, sizeof(after), "%lld", a);
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	res = shd_db_exec(
		req->db,
		"SELECT id, batch_index, event_id, request_type::text, namespace, target_name,"
		" status::text, approval_level, execution_id, error_code, error, retried_by,"
		" updated_at FROM approval_tickets WHERE parent_ticket_id = $1 AND id > $2"
		" AND ($4::text IS NULL OR status::text = $4) ORDER BY id LIMIT $3",
		4, (const char *[]){ids, after, lim, status}, err);
	if (!res)
		return NULL;
	n = PQntuples(res) > limit ? limit : PQntuples(res);
	items = json_array();
	for (int i = 0; i < n; i++)
		(void)json_array_append_new(
			items,
			shd_row_to_json(res, i, child_cols, (int)SHP_ARRAY_SIZE(child_cols)));
	page = json_pack("{s:o,s:o}", "items", items, "next_cursor",
			 PQntuples(res) > limit ? json_string(PQgetvalue(res, n - 1, 0))
						: json_null());
	if (!page)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return page;
}

/* The parent with one page of its children. */
int shd_api_batch_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	json_auto_t *j = NULL;
	json_t *page;
	int64_t id = 0;
	bool own = false;

	if (batch_find(req, &id, &own, NULL, 0, err) < 0 || !(j = parent_json(req->db, id, err)) ||
	    !(page = children_page(req, id, err)))
		return -err->code;
	(void)json_object_set_new(j, "children", page);
	return shd_resp_json_take(resp, 200, TAKE_PTR(j));
}

/* The caller's batches (everybody's with all=true, for admins), newest first, by id. */
int shd_api_batch_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const struct shd_col cols[] = {
		{"batch_id", COL_INT},  {"kind", COL_TEXT},       {"source", COL_TEXT},
		{"status", COL_TEXT},   {"requester", COL_TEXT},  {"total", COL_INT},
		{"success", COL_INT},   {"failed", COL_INT},      {"pending", COL_INT},
		{"cancelled", COL_INT}, {"created_at", COL_TIME},
	};
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *all = shd_req_query(req, "all"), *cursor = shd_req_query(req, "cursor");
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(64);
	char uid[24], lim[16], before[24];
	long long b = INT64_MAX;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (cursor && (shd_cursor_decode(cursor, &cur, err) < 0 ||
		       shp_parse_int(cur.buf, 1, INT64_MAX, &b, NULL) < 0)) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return -SHP_E_INVAL;
	}
	if (all && !shp_streq(all, "true") && !shp_streq(all, "false"))
		return shp_error_set(err, SHP_E_INVAL, "'all' must be true or false");
	if (shp_streq(all, "true") && shd_req_require_admin(req, err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	(void)snprintf(before, sizeof(before), "%lld", b);
	res = shd_db_exec(
		req->db,
		"SELECT id, kind, source, status::text, requester, total, success, failed,"
		" pending + awaiting, cancelled, created_at FROM batch_approval_tickets"
		" WHERE ($2::boolean OR requester_id = $1) AND id < $3"
		" ORDER BY id DESC LIMIT $4",
		4, (const char *[]){uid, shp_streq(all, "true") ? "true" : "false", before, lim},
		err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, cols, (int)SHP_ARRAY_SIZE(cols), limit, 0, err);
}
