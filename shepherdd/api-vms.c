/*
 * The VM reads: GET /api/v1/vms (the active VMs the caller may see, filtered, by pages),
 * /vms/{name}, and its revisions, the diff of two revisions and its history. Visibility is
 * vm_visible() in the queries themselves: a VM the caller may not see answers 404, as one
 * that does not exist.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "db.h"
#include "diff.h"
#include "error.h"
#include "gov.h"
#include "shepherdd.h"
#include "util.h"
#include "vm.h"

/* The largest YAML of a revision we diff (the schema's spec_size limit). */
#define VM_YAML_MAX (4u << 20)
/* The diff of two such texts stays below this. */
#define VM_DIFF_MAX (16u << 20)

/*
 * The environment of a VM: its namespace's, else its cluster's (an unregistered namespace).
 * vm_visible() decides; the two conditions before it are what it implies (an environment the
 * caller sees; one where they cross systems, or a system they belong to), computed once per
 * query, so that it runs only on the rows that may pass instead of on every VM.
 */
#define VM_ENV "coalesce(n.environment, c.environment)"
#define VM_FROM                                                                                    \
	" FROM vms v JOIN clusters c ON c.id = v.cluster_id"                                       \
	" LEFT JOIN namespaces n ON n.name = v.namespace"                                          \
	" LEFT JOIN users u ON u.id = v.owner_id"                                                  \
	" WHERE v.deleted_at IS NULL"                                                              \
	"   AND " VM_ENV " IN (SELECT unnest(user_envs($1::bigint, '" SHD_ROLES_ANY "')))"         \
	"   AND (" VM_ENV " IN (SELECT unnest(user_envs($1::bigint, '" SHD_ROLES_CROSS_SYSTEM      \
	"')))"                                                                                     \
	"        OR v.system IN (SELECT m.tenant_id FROM effective_tenant_members m"               \
	"                         WHERE m.user_id = $1::bigint))"                                  \
	"   AND vm_visible($1::bigint, v.system, " VM_ENV ")"

#define VM_COLUMNS                                                                                 \
	"SELECT v.id, v.name, v.namespace, c.name, coalesce(n.environment, c.environment),"        \
	" v.system, v.service, coalesce(u.name, ''), v.template, v.template_version, v.size,"      \
	" v.status, v.printable_status, v.cpus, v.memory_bytes,"                                   \
	" CASE WHEN v.memory_bytes = 0 THEN ''"                                                    \
	"  WHEN v.memory_bytes % 1073741824 = 0 THEN (v.memory_bytes / 1073741824) || 'Gi'"        \
	"  ELSE (v.memory_bytes / 1048576) || 'Mi' END,"                                           \
	" v.node, v.ip, v.revision, v.observed_at, v.created_at, v.updated_at"

static const struct shd_col vm_cols[] = {
	{"id", COL_INT},
	{"name", COL_TEXT},
	{"namespace", COL_TEXT},
	{"cluster", COL_TEXT},
	{"environment", COL_TEXT},
	{"system", COL_TEXT},
	{"service", COL_TEXT},
	{"owner", COL_TEXT},
	{"template", COL_TEXT},
	{"template_version", COL_INT},
	{"size", COL_TEXT},
	{"status", COL_TEXT},
	{"printable_status", COL_TEXT},
	{"cpus", COL_INT},
	{"memory_bytes", COL_INT},
	{"memory", COL_TEXT},
	{"node", COL_TEXT},
	{"ip", COL_TEXT},
	{"revision", COL_INT},
	{"observed_at", COL_TIME},
	{"created_at", COL_TIME},
	{"updated_at", COL_TIME},
	{"spec", COL_JSON}, /* GET /vms/{name} only */
};
#define VM_NCOLS_LIST ((int)SHP_ARRAY_SIZE(vm_cols) - 1)

static const char sql_vm_page[] =
	VM_COLUMNS VM_FROM "   AND v.id > coalesce($2::bigint, 0)"
			   "   AND ($3::text IS NULL OR v.namespace = $3)"
			   "   AND ($4::text IS NULL OR v.system = $4)"
			   "   AND ($5::text IS NULL OR v.service = $5)"
			   "   AND ($6::text IS NULL OR v.status::text = $6)"
			   "   AND ($7::text IS NULL OR c.name = $7)"
			   " ORDER BY v.id LIMIT $8::int + 1";

static const char sql_vm_get[] = VM_COLUMNS
	", v.spec" VM_FROM
	" AND v.name = $2 AND ($3::text IS NULL OR v.namespace = $3) ORDER BY v.namespace LIMIT 20";

/* A VM name as the vms table takes it: [a-z0-9.-], alphanumeric at both ends, <= 63. */
static int check_vm_name(const char *field, const char *s, struct shp_error *err)
{
	size_t n = s ? strlen(s) : 0;
	bool ok = n >= 1 && n <= 63;

	for (size_t i = 0; ok && i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		ok = alnum || ((c == '-' || c == '.') && i > 0 && i < n - 1);
	}
	if (ok)
		return 0;
	shp_error_set(
		err, SHP_E_INVAL,
		"'%s' must be a VM name (lower-case letters, digits, '-' and '.', at most 63)",
		field);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

/* The optional query filters of GET /vms, checked. */
static int vm_filters(struct shd_req *req, const char **f, struct shp_error *err)
{
	static const char *const names[] = {"namespace", "system", "service", "status", "cluster"};

	for (size_t i = 0; i < SHP_ARRAY_SIZE(names); i++) {
		f[i] = shd_req_query(req, names[i]);
		if (!f[i])
			continue;
		if (i != 3 && shd_validate_name(names[i], f[i], err) < 0)
			return -err->code;
	}
	if (f[3] && shd_vm_status_from_string(f[3]) < 0) {
		shp_error_set(err, SHP_E_INVAL,
			      "'status' must be RUNNING, STOPPED, STARTING, STOPPING, MIGRATING, "
			      "PAUSED, FAILED or UNKNOWN");
		shp_error_detail(err, "field", "status");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* ?cursor= of an id-keyed page into out ("" when absent). */
static int id_cursor(struct shd_req *req, struct shp_buf *out, struct shp_error *err)
{
	const char *cursor = shd_req_query(req, "cursor");
	long long id;

	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, out, err) < 0)
		return -err->code;
	if (shp_parse_int(out->buf, 0, INT64_MAX, &id, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return -SHP_E_INVAL;
	}
	return 0;
}

int shd_api_vms_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf cur = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *f[5];
	char uid[24], limit_s[16];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || id_cursor(req, &cur, err) < 0 ||
	    vm_filters(req, f, err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	const char *params[] = {uid,    cur.len ? cur.buf : NULL, f[0], f[1], f[2], f[3], f[4],
				limit_s};

	res = shd_db_exec(req->db, sql_vm_page, 8, params, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, vm_cols, VM_NCOLS_LIST, limit, 0, err);
}

/* An ambiguous name: 409 naming the namespaces the caller can see it in. */
static int ambiguous(const PGresult *res, const char *name, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf list = SHP_BUF_INIT(4096);

	for (int i = 0; i < PQntuples(res); i++)
		if (shp_buf_addf(&list, "%s%s", i ? "," : "", PQgetvalue(res, i, 2)) < 0)
			break;
	shp_error_set(err, SHP_E_CONFLICT,
		      "VM '%s' exists in several namespaces (%s): name one with ?namespace=", name,
		      list.buf);
	shp_error_api_code(err, "AMBIGUOUS_NAME");
	shp_error_detail(err, "name", "%s", name);
	shp_error_detail(err, "namespaces", "%s", list.buf);
	return -SHP_E_CONFLICT;
}

/* The one visible, active VM named by the path (and ?namespace=): its row (vm_cols). */
static int vm_find(struct shd_req *req, PGresult **ret, int64_t *ret_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *name = req->params[0], *ns = shd_req_query(req, "namespace");
	char uid[24];

	if (check_vm_name("name", name, err) < 0 ||
	    (ns && shd_validate_name("namespace", ns, err) < 0))
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db, sql_vm_get, 3, (const char *[]){uid, name, ns}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return ns ? shp_error_set(err, SHP_E_NOTFOUND,
					  "VM '%s' not found in namespace '%s'", name, ns)
			  : shp_error_set(err, SHP_E_NOTFOUND, "VM '%s' not found", name);
	if (PQntuples(res) > 1)
		return ambiguous(res, name, err);
	*ret_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (ret)
		*ret = TAKE_PTR(res);
	return 0;
}

int shd_api_vms_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	int64_t id;

	if (vm_find(req, &res, &id, err) < 0)
		return -err->code;
	return shd_resp_row(resp, 200, res, vm_cols, SHP_ARRAY_SIZE(vm_cols), err);
}

static const struct shd_col rev_cols[] = {
	{"version", COL_INT},   {"created_at", COL_TIME},  {"created_by", COL_TEXT},
	{"spec_size", COL_INT}, {"spec_sha256", COL_TEXT}, {"ticket_id", COL_INT},
	{"event_id", COL_INT},  {"execution_id", COL_INT}, {"plan_hash", COL_TEXT},
};

int shd_api_vms_revisions(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf cur = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char vm_id[24], limit_s[16];
	int64_t id;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || id_cursor(req, &cur, err) < 0 ||
	    vm_find(req, NULL, &id, err) < 0)
		return -err->code;
	(void)snprintf(vm_id, sizeof(vm_id), "%" PRId64, id);
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	res = shd_db_exec(
		req->db,
		"SELECT version, created_at, created_by, spec_size, spec_sha256, ticket_id,"
		" event_id, execution_id, plan_hash FROM vm_revisions"
		" WHERE vm_id = $1 AND version > coalesce($2::int, 0)"
		" ORDER BY version LIMIT $3::int + 1",
		3, (const char *[]){vm_id, cur.len ? cur.buf : NULL, limit_s}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, rev_cols, SHP_ARRAY_SIZE(rev_cols), limit, 0, err);
}

/* ?key= as a revision number in [min, max], or dflt when absent. */
static int version_arg(struct shd_req *req, const char *key, int min, int max, int dflt, int *ret,
		       struct shp_error *err)
{
	const char *s = shd_req_query(req, key);
	long long v;

	if (!s) {
		*ret = dflt;
		return 0;
	}
	if (shp_parse_int(s, min, max, &v, err) < 0) {
		shp_error_prefix(err, "query parameter '%s' (revisions %d..%d)", key, min, max);
		shp_error_detail(err, "field", "%s", key);
		return -SHP_E_INVAL;
	}
	*ret = (int)v;
	return 0;
}

/* Revision version's YAML into out; version 0 is the empty text before the first. */
static int revision_text(struct shd_req *req, int64_t vm_id, int version, struct shp_buf *out,
			 struct shp_error *err)
{
	if (version == 0)
		return 0;
	return shd_revision_yaml(req->db, vm_id, version, out, err);
}

static int diff_answer(struct shd_resp *resp, const PGresult *vm, int from, int to,
		       const char *text, struct shp_error *err)
{
	json_t *j =
		json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", PQgetvalue(vm, 0, 1), "namespace",
			  PQgetvalue(vm, 0, 2), "from", from, "to", to, "diff", text);

	if (!j)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return shd_resp_json_take(resp, 200, j);
}

int shd_api_vms_diff(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *vm = NULL;
	_cleanup_(shp_buf_releasep) struct shp_buf a = SHP_BUF_INIT(VM_YAML_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf b = SHP_BUF_INIT(VM_YAML_MAX);
	_cleanup_(shp_buf_releasep) struct shp_buf out = SHP_BUF_INIT(VM_DIFF_MAX);
	char la[160], lb[160];
	int64_t id;
	int latest, from, to;

	if (vm_find(req, &vm, &id, err) < 0)
		return -err->code;
	latest = (int)strtol(PQgetvalue(vm, 0, 18), NULL, 10);
	if (latest < 1)
		return shp_error_set(err, SHP_E_NOTFOUND, "VM '%s' has no revisions yet",
				     req->params[0]);
	if (version_arg(req, "to", 1, latest, latest, &to, err) < 0 ||
	    version_arg(req, "from", 0, latest, to - 1, &from, err) < 0)
		return -err->code;
	if (revision_text(req, id, from, &a, err) < 0 || revision_text(req, id, to, &b, err) < 0)
		return -err->code;
	(void)snprintf(la, sizeof(la), "%s/%s revision %d", PQgetvalue(vm, 0, 2),
		       PQgetvalue(vm, 0, 1), from);
	(void)snprintf(lb, sizeof(lb), "%s/%s revision %d", PQgetvalue(vm, 0, 2),
		       PQgetvalue(vm, 0, 1), to);
	if (shp_diff_unified(a.buf, a.len, b.buf, b.len, la, lb, 3, &out, err) < 0)
		return -err->code;
	return diff_answer(resp, vm, from, to, out.buf, err);
}

/*
 * The history of one VM, oldest first: its requests (domain events with their tickets, by the
 * ticket's vm_id, or by namespace and name for requests since an earlier VM of that name was
 * deleted), the approvers' decisions, the executions, the revisions and the watcher's status
 * changes. Each item: at, kind, id, actor, what, details; k is the page key.
 */
/* Entries of one instant in the order things happen: request, decision, task, revision. */
#define HISTORY_RANK(k)                                                                            \
	"CASE " k " WHEN 'request' THEN 1 WHEN 'decision' THEN 2 WHEN 'execution' THEN 3"          \
	" WHEN 'revision' THEN 4 ELSE 5 END"

static const char sql_vm_history[] =
	"WITH v AS (SELECT id, namespace, name FROM vms WHERE id = $1),"
	" prior AS (SELECT coalesce(max(o.deleted_at), '-infinity') AS since FROM vms o, v"
	"   WHERE o.namespace = v.namespace AND o.name = v.name AND o.id <> v.id),"
	" t AS (SELECT t.* FROM approval_tickets t, v, prior WHERE t.vm_id = v.id"
	"   OR (t.vm_id IS NULL AND t.namespace = v.namespace AND t.target_name = v.name"
	"       AND t.created_at > prior.since)),"
	" named AS (SELECT e.id FROM domain_events e, v, prior"
	"   WHERE e.type IN ('CREATE_VM', 'MODIFY_VM', 'DELETE_VM', 'START_VM', 'STOP_VM',"
	"     'RESTART_VM', 'VNC_ACCESS')"
	"     AND coalesce(e.payload->'vm'->>'namespace', e.payload->'spec'->>'namespace')"
	"         = v.namespace"
	"     AND coalesce(e.payload->'vm'->>'name', e.payload->'spec'->>'name') = v.name"
	"     AND e.created_at > prior.since),"
	" ev AS (SELECT e.id, e.type, e.status, e.actor, e.created_at, t.id AS ticket_id,"
	"   t.status AS ticket_status, t.approval_level FROM domain_events e"
	"   LEFT JOIN t ON t.event_id = e.id"
	"   WHERE e.id IN (SELECT event_id FROM t UNION SELECT id FROM named)),"
	" items AS ("
	"  SELECT created_at AS at, 'request' AS kind, id, actor, type AS what,"
	"   jsonb_build_object('status', status, 'ticket_id', ticket_id, 'ticket_status',"
	"    ticket_status, 'approval_level', approval_level) AS details FROM ev"
	"  UNION ALL SELECT d.created_at, 'decision', d.id, d.approver, d.decision,"
	"   jsonb_build_object('ticket_id', d.ticket_id, 'plan_hash', d.plan_hash, 'reason',"
	"    d.reason, 'auth_method', d.auth_method, 'invalidated_at', d.invalidated_at)"
	"   FROM approval_decisions d JOIN t ON t.id = d.ticket_id"
	"  UNION ALL SELECT x.created_at, 'execution', x.id, x.actor, x.status::text,"
	"   jsonb_build_object('event_id', x.event_id, 'plan_hash', x.plan_hash,"
	"    'approved_plan_hash', x.approved_plan_hash, 'started_at', x.started_at,"
	"    'ended_at', x.ended_at, 'error', x.error)"
	"   FROM executions x WHERE x.id IN (SELECT xe.id FROM executions xe"
	"    WHERE xe.event_id IN (SELECT id FROM ev) UNION SELECT execution_id FROM t)"
	"  UNION ALL SELECT r.created_at, 'revision', r.version, r.created_by,"
	"   'revision ' || r.version, jsonb_build_object('ticket_id', r.ticket_id, 'event_id',"
	"    r.event_id, 'execution_id', r.execution_id, 'plan_hash', r.plan_hash,"
	"    'spec_sha256', r.spec_sha256)"
	"   FROM vm_revisions r, v WHERE r.vm_id = v.id"
	"  UNION ALL SELECT e.created_at, 'status', e.id, e.actor,"
	"   (e.payload->>'from') || ' -> ' || (e.payload->>'to'), e.payload"
	"   FROM domain_events e, v WHERE e.type = 'VM_STATUS_CHANGE'"
	"    AND e.payload->>'vm_id' = v.id::text)"
	" SELECT at, kind, id, actor, what, details, at::text || '|' || kind || '|' || id"
	" FROM items WHERE $2::text IS NULL OR (at, " HISTORY_RANK(
		"kind") ", id) >"
			"  (split_part($2, '|', 1)::timestamptz, " HISTORY_RANK(
				"split_part($2, '|', 2)") ","
							  "   split_part($2, '|', 3)::bigint)"
							  " ORDER BY at, " HISTORY_RANK(
								  "kind") ", id LIMIT $3::int + 1";

static const struct shd_col history_cols[] = {
	{"at", COL_TIME},    {"kind", COL_TEXT}, {"id", COL_INT},
	{"actor", COL_TEXT}, {"what", COL_TEXT}, {"details", COL_JSON},
};

/* A history cursor: "<timestamp>|<kind>|<id>", checked before it reaches SQL. */
static int history_cursor(struct shd_req *req, struct shp_buf *out, struct shp_error *err)
{
	static const char *const kinds[] = {"|decision|", "|execution|", "|request|", "|revision|",
					    "|status|"};
	const char *cursor = shd_req_query(req, "cursor");
	bool ok = false;

	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, out, err) < 0)
		return -err->code;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(kinds) && !ok; i++) {
		const char *k = strstr(out->buf, kinds[i]);
		long long id;

		ok = k && k > out->buf && k - out->buf < 40 &&
		     shp_parse_int(k + strlen(kinds[i]), 0, INT64_MAX, &id, NULL) == 0;
	}
	for (const char *p = out->buf; ok && *p; p++)
		ok = (*p >= '0' && *p <= '9') || strchr(" -+:.|abcdefghijklmnopqrstuvwxyz", *p);
	if (ok)
		return 0;
	shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	shp_error_detail(err, "field", "cursor");
	return -SHP_E_INVAL;
}

int shd_api_vms_history(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf cur = SHP_BUF_INIT(128);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char vm_id[24], limit_s[16];
	int64_t id;
	int limit;

	if (shd_req_limit(req, &limit, err) < 0 || history_cursor(req, &cur, err) < 0 ||
	    vm_find(req, NULL, &id, err) < 0)
		return -err->code;
	(void)snprintf(vm_id, sizeof(vm_id), "%" PRId64, id);
	(void)snprintf(limit_s, sizeof(limit_s), "%d", limit);
	res = shd_db_exec(req->db, sql_vm_history, 3,
			  (const char *[]){vm_id, cur.len ? cur.buf : NULL, limit_s}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, history_cols, SHP_ARRAY_SIZE(history_cols), limit, 6,
				  err);
}
