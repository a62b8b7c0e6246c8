/*
 * The approver's side of governance: the workbench (pending tickets of the caller's
 * environments, oldest first, keyset-paged), one ticket with its effective spec, plan hash and
 * decisions, and the approve and reject decisions. The last approval of a quorum approves the
 * ticket, moves its event to PROCESSING and submits the execution in one transaction. See
 * docs/internals/governance.md (flow step 3, approval integrity).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "approvals-internal.h"
#include "console.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "exec.h"
#include "fsm.h"
#include "gov-submit.h"
#include "gov.h"
#include "health.h"
#include "json.h"
#include "plan.h"
#include "shepherdd.h"
#include "util.h"

#define APPROVE_ROLES "'{platform-admin,approver}'"
/*
 * May the approver whose environments are envs decide a ticket? Those of its environment; a
 * ticket without one (systems and services) belongs to every approver, as its APPROVAL_PENDING
 * notification did.
 */
#define MAY_APPROVE(envs)                                                                          \
	"(t.environment = ANY (" envs ")"                                                          \
	" OR (t.environment IS NULL AND cardinality(" envs ") > 0))"
#define DECISIONS_MAX 500

/* ---- shared helpers ------------------------------------------------------------------------ */

void approval_ticket_release(struct approval_ticket *t)
{
	json_decref(t->payload);
	json_decref(t->requested);
	json_decref(t->modified);
	t->payload = t->requested = t->modified = NULL;
}

void approval_cluster_release(struct approval_cluster *c)
{
	json_decref(c->caps);
	c->caps = NULL;
}

static void copy_col(char *dst, size_t size, const PGresult *res, int col)
{
	const char *v = shd_db_value(res, 0, col);

	(void)snprintf(dst, size, "%s", v ? v : "");
}

static int64_t col_i64(const PGresult *res, int col)
{
	const char *v = shd_db_value(res, 0, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

#define TICKET_LOAD_SQL                                                                            \
	"SELECT t.id, t.event_id, t.request_type, t.status, e.status, t.requester_id,"             \
	" t.requester, t.system, t.service, t.namespace, coalesce(t.environment::text, ''),"       \
	" t.target_name, t.cluster_id, c.name, t.plan_hash, t.modified_at::text,"                  \
	" t.approvals_required,"                                                                   \
	" coalesce(" MAY_APPROVE(                                                                  \
		"user_envs($2, " APPROVE_ROLES                                                     \
		")") ", false),"                                                                   \
		     " e.payload, t.modified_spec, t.execution_id"                                 \
		     " FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id"          \
		     " LEFT JOIN clusters c ON c.id = t.cluster_id"                                \
		     " WHERE t.id = $1 AND (" MAY_APPROVE("user_envs($2, " APPROVE_ROLES           \
							  ")") " OR"                               \
							       "  t.requester_id = $2)"

static int ticket_from_row(const PGresult *res, struct approval_ticket *t, struct shp_error *err)
{
	json_t *spec;
	int r;

	t->id = col_i64(res, 0);
	t->event_id = col_i64(res, 1);
	copy_col(t->type_name, sizeof(t->type_name), res, 2);
	copy_col(t->status, sizeof(t->status), res, 3);
	copy_col(t->event_status, sizeof(t->event_status), res, 4);
	t->requester_id = col_i64(res, 5);
	copy_col(t->requester, sizeof(t->requester), res, 6);
	copy_col(t->system, sizeof(t->system), res, 7);
	copy_col(t->service, sizeof(t->service), res, 8);
	copy_col(t->ns, sizeof(t->ns), res, 9);
	copy_col(t->env, sizeof(t->env), res, 10);
	copy_col(t->target, sizeof(t->target), res, 11);
	t->cluster_id = col_i64(res, 12);
	copy_col(t->cluster, sizeof(t->cluster), res, 13);
	copy_col(t->plan_hash, sizeof(t->plan_hash), res, 14);
	copy_col(t->modified_at, sizeof(t->modified_at), res, 15);
	t->required = (int)col_i64(res, 16);
	t->can_approve = shd_db_value(res, 0, 17)[0] == 't';
	t->execution_id = col_i64(res, 20);
	r = shd_req_type_from_string(t->type_name, &t->type, err);
	if (r < 0)
		return r;
	t->payload = json_loads(shd_db_value(res, 0, 18), 0, NULL);
	spec = json_object_get(t->payload, "spec");
	t->requested = json_incref(json_is_object(spec) ? spec : t->payload);
	if (shd_db_value(res, 0, 19))
		t->modified = json_loads(shd_db_value(res, 0, 19), 0, NULL);
	if (!json_is_object(t->payload) || (shd_db_value(res, 0, 19) && !t->modified))
		return shp_error_set(err, SHP_E_NOMEM, "out of memory reading ticket %" PRId64,
				     t->id);
	return 0;
}

int approval_ticket_load(PGconn *conn, const char *id, int64_t uid, bool lock,
			 struct approval_ticket *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uids[24];

	(void)snprintf(uids, sizeof(uids), "%" PRId64, uid);
	res = shd_db_exec(conn, lock ? TICKET_LOAD_SQL " FOR UPDATE OF t" : TICKET_LOAD_SQL, 2,
			  (const char *[]){id, uids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "approval ticket %s not found", id);
		shp_error_detail(err, "ticket", "%s", id);
		return -SHP_E_NOTFOUND;
	}
	return ticket_from_row(res, ret, err);
}

int approval_id_param(struct shd_req *req, const char **ret, struct shp_error *err)
{
	long long v;

	if (shp_parse_int(req->params[0], 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "approval ticket '%.40s' not found",
				     req->params[0]);
	*ret = req->params[0];
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%lld", v);
	return 0;
}

int approval_ticket_for_approver(struct shd_req *req, struct approval_ticket *ret,
				 struct shp_error *err)
{
	const char *id;

	if (approval_id_param(req, &id, err) < 0 ||
	    approval_ticket_load(req->db, id, req->ident.user_id, false, ret, err) < 0)
		return -err->code;
	if (!ret->can_approve)
		return shp_error_set(err, SHP_E_PERM,
				     "only an approver of environment '%s' may decide ticket %s",
				     ret->env, id);
	return 0;
}

int approval_cluster_load(PGconn *conn, const char *name, struct approval_cluster *ret,
			  struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_validate_name("cluster", name, err) < 0)
		return -err->code;
	res = shd_db_exec(
		conn, "SELECT id, name, environment, capabilities FROM clusters WHERE name = $1", 1,
		(const char *[]){name}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "cluster '%s' not found", name);
		shp_error_detail(err, "cluster", "%s", name);
		return -SHP_E_NOTFOUND;
	}
	ret->id = col_i64(res, 0);
	copy_col(ret->name, sizeof(ret->name), res, 1);
	copy_col(ret->env, sizeof(ret->env), res, 2);
	ret->caps = json_loads(shd_db_value(res, 0, 3), 0, NULL);
	if (!ret->caps)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

const char *approval_cluster_choice(const struct approval_ticket *t, const json_t *spec,
				    const char *asked)
{
	const char *pref = shp_json_str(spec, "cluster");

	if (asked && *asked)
		return asked;
	if (t->cluster[0])
		return t->cluster;
	return pref && *pref ? pref : NULL;
}

int approval_plan(PGconn *conn, const struct approval_ticket *t, const json_t *spec,
		  const char *cluster, char hash[SHP_SHA256_HEX_LEN + 1], json_t **ret_plan,
		  struct shp_error *err)
{
	json_t *named = json_object_get(t->payload, "vm");
	/* the VM the request names (modify, delete, power), else the ticket's target */
	json_auto_t *vm = json_is_object(named)
				  ? json_incref(named)
				  : json_pack("{s:s,s:s}", "namespace", t->ns, "name", t->target);
	json_auto_t *plan = NULL;

	if (!vm)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	plan = shd_gov_plan(conn, t->type, spec, vm, cluster, err);
	if (!plan || shd_plan_hash(plan, hash, err) < 0)
		return -err->code;
	if (ret_plan)
		*ret_plan = TAKE_PTR(plan);
	return 0;
}

int approval_invalidate(PGconn *conn, int64_t ticket_id, int *ret_count, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, ticket_id);
	res = shd_db_exec(
		conn,
		"UPDATE approval_decisions SET invalidated_at = now()"
		" WHERE ticket_id = $1 AND decision = 'approve' AND invalidated_at IS NULL",
		1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (ret_count)
		*ret_count = (int)strtol(PQcmdTuples(res), NULL, 10);
	return 0;
}

int approval_audit(PGconn *conn, const struct shd_req *req, const char *action,
		   const struct approval_ticket *t, json_t *details, struct shp_error *err)
{
	char name[24];

	(void)snprintf(name, sizeof(name), "%" PRId64, t->id);
	(void)json_object_set_new(details, "ticket_id", json_integer(t->id));
	(void)json_object_set_new(details, "request_id", json_integer(t->event_id));
	return shd_audit_write(conn, req, action, APPROVAL_AUDIT_TYPE, name, "success", details,
			       err);
}

/* ---- the workbench ------------------------------------------------------------------------- */

/* The columns of a ticket in lists and in the detail view (the detail adds more). */
static const struct shd_col ticket_cols[] = {
	{"id", COL_INT},
	{"type", COL_TEXT},
	{"status", COL_TEXT},
	{"requester", COL_TEXT},
	{"system", COL_TEXT},
	{"service", COL_TEXT},
	{"namespace", COL_TEXT},
	{"environment", COL_TEXT},
	{"name", COL_TEXT},
	{"cluster", COL_TEXT},
	{"approval_level", COL_INT},
	{"approvals", COL_INT},
	{"approvals_required", COL_INT},
	{"escalated", COL_BOOL},
	{"runbook_url", COL_TEXT},
	{"created_at", COL_TIME},
	{"expires_at", COL_TIME},
	{"days_pending", COL_INT},
	{"priority_tier", COL_TEXT},
	{"request_id", COL_INT},
	/* the detail view only */
	{"plan_hash", COL_TEXT},
	{"approved_plan_hash", COL_TEXT},
	{"modification_reason", COL_TEXT},
	{"modified_by", COL_TEXT},
	{"modified_at", COL_TIME},
	{"task_id", COL_INT},
	{"reason", COL_TEXT},
	{"error_code", COL_TEXT},
	{"error", COL_TEXT},
	{"decided_at", COL_TIME},
	{"finished_at", COL_TIME},
	{"updated_at", COL_TIME},
};
#define TICKET_NCOLS_LIST 20

/*
 * days_pending counts whole days from creation to the decision (or now); the tier follows
 * from it: normal 0-3, warning 4-7, urgent beyond.
 */
#define TICKET_LIST_COLS                                                                           \
	"t.id, t.request_type, t.status, t.requester, t.system, t.service, t.namespace,"           \
	" t.environment, t.target_name, c.name, t.approval_level,"                                 \
	" (SELECT count(*) FROM approval_decisions d WHERE d.ticket_id = t.id"                     \
	"   AND d.decision = 'approve' AND d.invalidated_at IS NULL),"                             \
	" t.approvals_required, t.escalated, t.runbook_url, t.created_at, t.expires_at, x.days,"   \
	" CASE WHEN x.days > 7 THEN 'urgent' WHEN x.days >= 4 THEN 'warning' ELSE 'normal' END,"   \
	" t.event_id"
#define TICKET_FROM                                                                                \
	" FROM approval_tickets t LEFT JOIN clusters c ON c.id = t.cluster_id"                     \
	" CROSS JOIN LATERAL (SELECT floor(extract(epoch FROM"                                     \
	"   coalesce(t.decided_at, t.finished_at, now()) - t.created_at) / 86400)::int AS days) x"

/*
 * The environments are computed once (an init plan), and the keyset condition is always
 * present ('-infinity' on the first page), so the pending list walks
 * approval_tickets_pending_idx from the cursor on. The selective filters (namespace,
 * requester) are part of the statement's text rather than "$n IS NULL OR ...": a prepared
 * statement's generic plan could not use their indexes otherwise. Eight statements in all.
 */
#define WB_NS(ns) ns " AND t.namespace = $3"
#define WB_REQ(req) req " AND t.requester = $4"
#define WORKBENCH_SQL(status_cond, ns_cond, req_cond)                                              \
	"SELECT " TICKET_LIST_COLS ", t.created_at::text || '|' || t.id" TICKET_FROM               \
	" WHERE " status_cond " AND " MAY_APPROVE(                                                 \
		"(SELECT user_envs($1, " APPROVE_ROLES                                             \
		"))::environment[]") " AND ($2::request_type IS NULL OR t.request_type = "         \
				     "$2::request_type)" ns_cond req_cond                          \
				     " AND ($5::environment IS NULL OR t.environment = "           \
				     "$5::environment)"                                            \
				     " AND (t.created_at, t.id) > ($6::timestamptz, $7::bigint)"   \
				     " ORDER BY t.created_at, t.id LIMIT $8"
/* the pending list has partial indexes of its own, which a literal status can use */
#define WB_PENDING "t.status = 'PENDING_APPROVAL' AND $9::text IS NULL"
#define WB_OTHER "t.status = $9::ticket_status"
#define WB_UNUSED(n) " AND $" #n "::text IS NULL"

/* [pending][namespace given][requester given] */
static const char *const workbench_sql[2][2][2] = {
	{{WORKBENCH_SQL(WB_OTHER, WB_UNUSED(3), WB_UNUSED(4)),
	  WORKBENCH_SQL(WB_OTHER, WB_UNUSED(3), WB_REQ(""))},
	 {WORKBENCH_SQL(WB_OTHER, WB_NS(""), WB_UNUSED(4)),
	  WORKBENCH_SQL(WB_OTHER, WB_NS(""), WB_REQ(""))}},
	{{WORKBENCH_SQL(WB_PENDING, WB_UNUSED(3), WB_UNUSED(4)),
	  WORKBENCH_SQL(WB_PENDING, WB_UNUSED(3), WB_REQ(""))},
	 {WORKBENCH_SQL(WB_PENDING, WB_NS(""), WB_UNUSED(4)),
	  WORKBENCH_SQL(WB_PENDING, WB_NS(""), WB_REQ(""))}},
};

struct workbench_query {
	const char *status, *type, *ns, *requester, *env;
	char after_at[64], after_id[24];
	int limit;
};

/* The cursor is "<created_at text>|<id>" of the last item. */
static int workbench_cursor(struct shd_req *req, struct workbench_query *q, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(128);
	const char *cursor = shd_req_query(req, "cursor");
	const char *bar;
	long long id;

	(void)snprintf(q->after_at, sizeof(q->after_at), "-infinity");
	(void)snprintf(q->after_id, sizeof(q->after_id), "0");
	if (!cursor)
		return 0;
	if (shd_cursor_decode(cursor, &cur, err) < 0)
		return -err->code;
	bar = strrchr(cur.buf, '|');
	if (!bar || bar == cur.buf || (size_t)(bar - cur.buf) >= sizeof(q->after_at) ||
	    strspn(cur.buf, "0123456789-:. +") != (size_t)(bar - cur.buf) ||
	    shp_parse_int(bar + 1, 1, INT64_MAX, &id, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid cursor");
		shp_error_detail(err, "field", "cursor");
		return -SHP_E_INVAL;
	}
	(void)snprintf(q->after_at, sizeof(q->after_at), "%.*s", (int)(bar - cur.buf), cur.buf);
	(void)snprintf(q->after_id, sizeof(q->after_id), "%lld", id);
	return 0;
}

static int bad_filter(struct shp_error *err, const char *field, const char *what)
{
	shp_error_set(err, SHP_E_INVAL, "query parameter '%s': %s", field, what);
	shp_error_detail(err, "field", "%s", field);
	return -SHP_E_INVAL;
}

static int workbench_filters(struct shd_req *req, struct workbench_query *q, struct shp_error *err)
{
	const char *sort = shd_req_query(req, "sort");
	enum shd_req_type type;

	q->status = shd_req_query(req, "status");
	q->type = shd_req_query(req, "type");
	q->ns = shd_req_query(req, "namespace");
	q->requester = shd_req_query(req, "requester");
	q->env = shd_req_query(req, "environment");
	if (sort && strcmp(sort, "days_pending") != 0)
		return bad_filter(err, "sort", "the only order is 'days_pending'");
	if (!q->status)
		q->status = "PENDING_APPROVAL";
	if (!shd_fsm_has_state(&shd_fsm_ticket, q->status))
		return bad_filter(err, "status",
				  "not a ticket status (PENDING_APPROVAL, APPROVED, "
				  "EXECUTING, COMPLETED, FAILED, REJECTED, CANCELLED, "
				  "EXPIRED)");
	if (q->type && shd_req_type_from_string(q->type, &type, err) < 0) {
		shp_error_detail(err, "field", "type");
		return -err->code;
	}
	if (q->ns && shd_validate_name("namespace", q->ns, err) < 0)
		return -err->code;
	if (q->requester &&
	    (strlen(q->requester) > 128 || !shp_utf8_is_valid(q->requester, strlen(q->requester))))
		return bad_filter(err, "requester", "not a user name");
	if (q->env && shd_validate_environment("environment", q->env, err) < 0)
		return -err->code;
	if (shd_req_limit(req, &q->limit, err) < 0)
		return -err->code;
	return workbench_cursor(req, q, err);
}

int shd_api_approvals_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	struct workbench_query q = {0};
	char uid[24], limit[16];
	bool pending;

	if (workbench_filters(req, &q, err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(limit, sizeof(limit), "%d", q.limit + 1);
	pending = strcmp(q.status, "PENDING_APPROVAL") == 0;
	res = shd_db_exec(req->db, workbench_sql[pending][q.ns != NULL][q.requester != NULL], 9,
			  (const char *[]){uid, q.type, q.ns, q.requester, q.env, q.after_at,
					   q.after_id, limit, pending ? NULL : q.status},
			  err);
	if (!res) {
		if (err->code == SHP_E_INVAL) /* a cursor time the server could not read */
			return bad_filter(err, "cursor", "invalid cursor");
		return -err->code;
	}
	return shd_resp_rows_page(resp, res, ticket_cols, TICKET_NCOLS_LIST, q.limit,
				  TICKET_NCOLS_LIST, err);
}

/* ---- one ticket ---------------------------------------------------------------------------- */

static const struct shd_col decision_cols[] = {
	{"id", COL_INT},          {"decision", COL_TEXT},       {"approver", COL_TEXT},
	{"principal", COL_TEXT},  {"auth_method", COL_TEXT},    {"source", COL_TEXT},
	{"request_id", COL_TEXT}, {"plan_hash", COL_TEXT},      {"reason", COL_TEXT},
	{"created_at", COL_TIME}, {"invalidated_at", COL_TIME},
};

static json_t *decisions_json(PGconn *conn, int64_t ticket_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *arr = json_array();
	char ids[24], lim[16];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, ticket_id);
	(void)snprintf(lim, sizeof(lim), "%d", DECISIONS_MAX);
	res = shd_db_exec(
		conn,
		"SELECT id, decision, approver, principal, auth_method, source, request_id,"
		" plan_hash, reason, created_at, invalidated_at FROM approval_decisions"
		" WHERE ticket_id = $1 ORDER BY id LIMIT $2",
		2, (const char *[]){ids, lim}, err);
	if (!res)
		return NULL;
	for (int i = 0; arr && i < PQntuples(res); i++) {
		json_t *d =
			shd_row_to_json(res, i, decision_cols, (int)SHP_ARRAY_SIZE(decision_cols));

		if (json_array_append_new(arr, d) < 0) {
			shp_error_set(err, SHP_E_NOMEM, "out of memory");
			return NULL;
		}
	}
	if (!arr)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return TAKE_PTR(arr);
}

static json_t *ticket_row_json(PGconn *conn, int64_t id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];
	json_t *j;

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn,
			  "SELECT " TICKET_LIST_COLS ", t.plan_hash, t.approved_plan_hash,"
			  " t.modification_reason, t.modified_by, t.modified_at, t.execution_id,"
			  " t.reason, t.error_code, t.error, t.decided_at, t.finished_at,"
			  " t.updated_at" TICKET_FROM " WHERE t.id = $1",
			  1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	j = shd_row_to_json(res, 0, ticket_cols, (int)SHP_ARRAY_SIZE(ticket_cols));
	if (!j)
		shp_error_set(err, SHP_E_NOTFOUND, "approval ticket %s not found", ids);
	return j;
}

/* The plan hash as it stands for cluster (or the reason there is none yet). */
static void add_current_plan(PGconn *conn, const struct approval_ticket *t, const json_t *spec,
			     const char *asked, json_t *out)
{
	struct shp_error e = SHP_ERROR_INIT;
	const char *cluster = approval_cluster_choice(t, spec, asked);
	char hash[SHP_SHA256_HEX_LEN + 1];

	(void)json_object_set_new(out, "record_only",
				  json_boolean(shd_req_type_record_only(t->type)));
	if (shd_req_type_record_only(t->type)) {
		/* a system or a service: recorded when approved, on no cluster */
		(void)json_object_set_new(out, "plan_cluster", json_null());
		(void)json_object_set_new(out, "current_plan_hash", json_null());
		return;
	}
	(void)json_object_set_new(out, "plan_cluster",
				  cluster ? json_string(cluster) : json_null());
	if (!cluster) {
		(void)json_object_set_new(out, "current_plan_hash", json_null());
		(void)json_object_set_new(
			out, "plan_error",
			json_string("no cluster chosen yet: approve with a cluster"));
		return;
	}
	if (approval_plan(conn, t, spec, cluster, hash, NULL, &e) < 0) {
		if (e.code >= SHP_E_NOMEM && e.code != SHP_E_UNAVAIL && e.code != SHP_E_TIMEOUT) {
			/* internal: the detail stays in the log */
			shp_log(SHP_LOG_ERROR, "plan of ticket %" PRId64 ": %s", t->id, e.msg);
			snprintf(e.msg, sizeof(e.msg), "internal error");
		}
		(void)json_object_set_new(out, "current_plan_hash", json_null());
		(void)json_object_set_new(out, "plan_error", json_string(e.msg));
		return;
	}
	(void)json_object_set_new(out, "current_plan_hash", json_string(hash));
}

int shd_api_approvals_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	const char *asked = shd_req_query(req, "cluster");
	const json_t *spec;
	json_auto_t *j = NULL;
	json_t *dec;
	const char *id;

	if (approval_id_param(req, &id, err) < 0 ||
	    approval_ticket_load(req->db, id, req->ident.user_id, false, &t, err) < 0)
		return -err->code;
	if (asked && shd_validate_name("cluster", asked, err) < 0)
		return -err->code;
	j = ticket_row_json(req->db, t.id, err);
	dec = j ? decisions_json(req->db, t.id, err) : NULL;
	if (!dec)
		return -err->code;
	spec = shd_spec_effective(t.requested, t.modified);
	(void)json_object_set_new(j, "decisions", dec);
	(void)json_object_set_new(j, "requested_spec", json_incref(t.requested));
	(void)json_object_set_new(j, "modified_spec",
				  t.modified ? json_incref(t.modified) : json_null());
	(void)json_object_set_new(j, "effective_spec", json_deep_copy(spec));
	(void)json_object_set_new(
		j, "can_approve",
		json_boolean(t.can_approve && t.requester_id != req->ident.user_id));
	add_current_plan(req->db, &t, spec, asked, j);
	return shd_resp_json_take(resp, 200, TAKE_PTR(j));
}

/* ---- approve ------------------------------------------------------------------------------- */

struct approve_ctx {
	struct shd_req *req;
	const struct approval_ticket *t; /* as read before the transaction */
	const struct approval_cluster *c;
	const char *reason;
	char hash[SHP_SHA256_HEX_LEN + 1];
	bool final;       /* this approval completes the quorum: the execution is being submitted */
	bool need_final;  /* found inside the transaction: the quorum is reached */
	bool already;     /* this approver's valid approval was there already */
	bool record_only; /* systems and services: no cluster, no plan, recorded on approval */
	int duration_s;   /* VNC_ACCESS: the approver shortens the grant to this (0 = as asked) */
	int approvals;
	int64_t exec_id;
};

static int plan_changed_conflict(struct shp_error *err, int64_t id, const char *what)
{
	shp_error_set(err, SHP_E_CONFLICT, "ticket %" PRId64 " %s: review it again", id, what);
	shp_error_api_code(err, "APPROVAL_INVALIDATED");
	shp_error_detail(err, "ticket", "%" PRId64, id);
	return -SHP_E_CONFLICT;
}

/* Another cluster or another plan: earlier approvals no longer stand. */
static int move_plan(PGconn *conn, struct approve_ctx *a, const struct approval_ticket *now,
		     struct shp_error *err)
{
	json_auto_t *details = NULL;
	char ids[24], cid[24];
	int voided = 0;

	if (now->cluster_id == a->c->id && strcmp(now->plan_hash, a->hash) == 0)
		return 0;
	(void)snprintf(ids, sizeof(ids), "%" PRId64, now->id);
	(void)snprintf(cid, sizeof(cid), "%" PRId64, a->c->id);
	if (approval_invalidate(conn, now->id, &voided, err) < 0 ||
	    shd_db_command(conn,
			   "UPDATE approval_tickets SET cluster_id = $2, plan_hash = $3,"
			   " updated_at = now() WHERE id = $1",
			   3, (const char *[]){ids, cid, a->hash}, err) < 0)
		return -err->code;
	if (voided == 0)
		return 0;
	details = json_pack("{s:i,s:s,s:s,s:s}", "invalidated", voided, "cause",
			    now->cluster_id != a->c->id ? "cluster changed" : "plan changed",
			    "previous_cluster", now->cluster, "cluster", a->c->name);
	return approval_audit(conn, a->req, "APPROVAL_INVALIDATED", now, details, err);
}

/*
 * Record this approver's approval once; a->approvals is then the valid count. A second valid
 * approval by the same approver is not an error (approval_decisions_once_idx would refuse
 * it): it is answered as "already approved", so a repeated approve is harmless. Only
 * approvals of the current hash count, which after move_plan are all the valid ones.
 */
static int add_decision(PGconn *conn, struct approve_ctx *a, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *ins = NULL;
	_cleanup_(PQclearp) PGresult *cnt = NULL;
	const struct shd_identity *me = &a->req->ident;
	char ids[24], uid[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, a->t->id);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, me->user_id);
	ins = shd_db_exec(
		conn,
		"INSERT INTO approval_decisions (ticket_id, approver_id, approver, decision,"
		" plan_hash, auth_method, principal, source, request_id, reason)"
		" SELECT $1, $2, $3, 'approve', $4, $5, $6, $7, $8, $9"
		" WHERE NOT EXISTS (SELECT 1 FROM approval_decisions WHERE ticket_id = $1"
		"  AND approver_id = $2 AND decision = 'approve' AND invalidated_at IS NULL)"
		" RETURNING id",
		9,
		(const char *[]){ids, uid, me->name, a->hash[0] ? a->hash : NULL,
				 shd_auth_method_to_string(me->method), me->principal,
				 a->req->conn && a->req->conn->is_unix ? "unix" : "tls",
				 a->req->request_id, a->reason ? a->reason : ""},
		err);
	if (!ins)
		return -err->code;
	a->already = PQntuples(ins) == 0;
	cnt = shd_db_exec(conn,
			  "SELECT count(*) FROM approval_decisions WHERE ticket_id = $1"
			  " AND decision = 'approve' AND invalidated_at IS NULL"
			  " AND plan_hash IS NOT DISTINCT FROM $2",
			  2, (const char *[]){ids, a->hash[0] ? a->hash : NULL}, err);
	if (!cnt)
		return -err->code;
	a->approvals = (int)col_i64(cnt, 0);
	return 0;
}

/*
 * The quorum is complete: the ticket is APPROVED and its event PROCESSING, with the task. This
 * runs inside shd_exec_submit's transaction, so the execution, the ticket, the event, the audit
 * row and the requester's notification commit together or not at all.
 */
static int approve_ticket(PGconn *conn, struct approve_ctx *a, const struct approval_ticket *now,
			  struct shp_error *err)
{
	struct shd_notification n = {
		.type = "APPROVAL_APPROVED", .body = "", .ticket_id = a->t->id};
	json_auto_t *data = NULL;
	char ids[24], xid[24], title[128];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, a->t->id);
	(void)snprintf(xid, sizeof(xid), "%" PRId64, a->exec_id);
	if (shd_db_command(
		    conn,
		    "UPDATE approval_tickets SET status = 'APPROVED', approved_plan_hash = $2,"
		    " execution_id = $3, decided_at = now(), updated_at = now() WHERE id = $1",
		    3, (const char *[]){ids, a->hash, xid}, err) < 0)
		return -err->code;
	/* a ticket modified after an approval comes back with its event still PROCESSING */
	if (strcmp(now->event_status, "PROCESSING") != 0 &&
	    shd_event_transition(conn, a->t->event_id, "PROCESSING", NULL, err) < 0)
		return -err->code;
	if (a->t->requester_id <= 0)
		return 0;
	(void)snprintf(title, sizeof(title), "Request %" PRId64 " (%s %s) approved", a->t->event_id,
		       a->t->type_name, a->t->target);
	data = json_pack("{s:I,s:I,s:I}", "ticket_id", (json_int_t)a->t->id, "request_id",
			 (json_int_t)a->t->event_id, "task_id", (json_int_t)a->exec_id);
	n.title = title;
	n.data = data;
	return shd_notify_sender()->to_user(conn, a->t->requester_id, &n, err);
}

/* Carry out a record-only request; a console grant names its ticket and its approver. */
static int record_approved(PGconn *conn, const struct approve_ctx *a,
			   const struct approval_ticket *now, struct shp_error *err)
{
	if (now->type == SHD_REQ_VNC_ACCESS)
		return shd_console_grant_create(conn, now->id, now->payload, a->duration_s,
						now->requester_id, a->req->ident.name, err);
	return shd_gov_record(conn, now->type, now->payload, now->requester_id, now->requester,
			      err);
}

/*
 * The quorum of a record-only request (a system or a service): it is recorded in the
 * approval's transaction, so the ticket walks APPROVED, EXECUTING and COMPLETED and the event
 * PROCESSING and COMPLETED at once, every move FSM-checked.
 */
static int complete_record(PGconn *conn, struct approve_ctx *a, const struct approval_ticket *now,
			   struct shp_error *err)
{
	struct shd_notification n = {
		.type = "APPROVAL_COMPLETED", .body = "", .ticket_id = now->id};
	char ids[24], title[160];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, now->id);
	if (shd_fsm_check(&shd_fsm_ticket, now->status, "APPROVED", err) < 0 ||
	    shd_fsm_check(&shd_fsm_ticket, "APPROVED", "EXECUTING", err) < 0 ||
	    shd_fsm_check(&shd_fsm_ticket, "EXECUTING", "COMPLETED", err) < 0 ||
	    record_approved(conn, a, now, err) < 0 ||
	    shd_db_command(conn,
			   "UPDATE approval_tickets SET status = 'COMPLETED', decided_at = now(),"
			   " finished_at = now(), updated_at = now() WHERE id = $1",
			   1, (const char *[]){ids}, err) < 0 ||
	    shd_event_transition(conn, now->event_id, "PROCESSING", NULL, err) < 0 ||
	    shd_event_transition(conn, now->event_id, "COMPLETED", NULL, err) < 0)
		return -err->code;
	if (now->requester_id <= 0)
		return 0;
	(void)snprintf(title, sizeof(title), "Request %" PRId64 " (%s %s) approved and done",
		       now->event_id, now->type_name, now->target);
	n.title = title;
	return shd_notify_sender()->to_user(conn, now->requester_id, &n, err);
}

/*
 * Inside a transaction: lock the ticket, check it did not move, record the approval. The
 * checks before the transaction were made on an unlocked read; under the lock the state and
 * the modification time must still be what they were, else the approver saw something else.
 */
static int record_approval(PGconn *conn, struct approve_ctx *a, struct shp_error *err)
{
	struct approval_ticket now __attribute__((cleanup(approval_ticket_release))) = {0};
	json_auto_t *details = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, a->t->id);
	if (approval_ticket_load(conn, ids, a->req->ident.user_id, true, &now, err) < 0 ||
	    shd_fsm_check(&shd_fsm_ticket, now.status, "APPROVED", err) < 0)
		return -err->code;
	if (strcmp(now.modified_at, a->t->modified_at) != 0)
		return plan_changed_conflict(err, now.id, "was modified meanwhile");
	if ((!a->record_only && move_plan(conn, a, &now, err) < 0) ||
	    add_decision(conn, a, err) < 0)
		return -err->code;
	a->need_final = a->approvals >= now.required;
	/* a record-only request has nothing to submit: it is carried out right here */
	if (a->need_final && a->record_only)
		a->final = true;
	if (a->final && !a->need_final)
		return plan_changed_conflict(err, now.id, "lost approvals meanwhile");
	if (a->final && (a->record_only ? complete_record(conn, a, &now, err)
					: approve_ticket(conn, a, &now, err)) < 0)
		return -err->code;
	if (a->already)
		return 0;
	details =
		json_pack("{s:s,s:s,s:i,s:i,s:b,s:s}", "plan_hash", a->hash, "cluster", a->c->name,
			  "approvals", a->approvals, "approvals_required", now.required, "approved",
			  a->final, "reason", a->reason ? a->reason : "");
	if (a->final)
		(void)json_object_set_new(details, "task_id", json_integer(a->exec_id));
	return approval_audit(conn, a->req, "APPROVAL_APPROVED", &now, details, err);
}

static int approve_in_tx(PGconn *conn, int64_t id, void *arg, struct shp_error *err)
{
	struct approve_ctx *a = arg;

	a->exec_id = id;
	a->final = true;
	return record_approval(conn, a, err);
}

/* The cluster suits the request: the namespace's environment, the size's capabilities. */
static int check_cluster(PGconn *conn, const struct approval_ticket *t, const json_t *spec,
			 const struct approval_cluster *c, struct shp_error *err)
{
	struct shd_size size __attribute__((cleanup(shd_size_release))) = {0};
	json_auto_t *missing = NULL;
	const char *size_name = shp_json_str(spec, "size");

	if (strcmp(c->env, t->env) != 0) {
		shp_error_set(err, SHP_E_CONFLICT,
			      "cluster '%s' is in environment '%s' but namespace '%s' is in '%s'",
			      c->name, c->env, t->ns, t->env);
		shp_error_api_code(err, "ENVIRONMENT_MISMATCH");
		shp_error_detail(err, "cluster_environment", "%s", c->env);
		shp_error_detail(err, "namespace_environment", "%s", t->env);
		return -SHP_E_CONFLICT;
	}
	if (!size_name)
		return 0; /* no size named: nothing the request requires of the cluster */
	if (shd_size_get(conn, size_name, &size, err) < 0)
		return -err->code;
	if (shd_caps_has_all(c->caps, size.required_capabilities, &missing, err))
		return 0;
	if (!missing)
		return -err->code;
	{
		_cleanup_free_ char *list = json_dumps(missing, JSON_COMPACT);

		shp_error_set(err, SHP_E_CONFLICT,
			      "cluster '%s' lacks capabilities size '%s' requires: %s", c->name,
			      size_name, list ? list : "?");
		shp_error_api_code(err, "CAPABILITY_MISSING");
		shp_error_detail(err, "missing", "%s", list ? list : "");
	}
	return -SHP_E_CONFLICT;
}

struct approve_body {
	const char *cluster, *plan_hash, *reason;
	int64_t duration_s; /* VNC_ACCESS only */
};

static int parse_approve(struct shd_req *req, json_t **ret_body, struct approve_body *b,
			 struct shp_error *err)
{
	static const char *const allowed[] = {"cluster", "plan_hash", "reason", "duration_s", NULL};
	json_t *body = req->body.len ? shd_req_json_object(req, allowed, err) : json_object();

	*ret_body = body;
	if (!body ||
	    shp_json_get_string(body, "cluster", false, SHP_API_NAME_MAX, &b->cluster, err) < 0 ||
	    shp_json_get_string(body, "plan_hash", false, SHP_SHA256_HEX_LEN, &b->plan_hash, err) <
		    0 ||
	    shp_json_get_string(body, "reason", false, APPROVAL_REASON_MAX, &b->reason, err) < 0 ||
	    shp_json_get_int(body, "duration_s", false, 60, SHD_CONSOLE_TTL_MAX_S, &b->duration_s,
			     err) < 0)
		return -err->code;
	if (b->plan_hash && (strlen(b->plan_hash) != SHP_SHA256_HEX_LEN ||
			     strspn(b->plan_hash, "0123456789abcdef") != SHP_SHA256_HEX_LEN)) {
		shp_error_set(err, SHP_E_INVAL, "plan_hash must be 64 lower-case hex digits");
		shp_error_detail(err, "field", "plan_hash");
		return -SHP_E_INVAL;
	}
	if (b->reason && shd_validate_text("reason", b->reason, APPROVAL_REASON_MAX, err) < 0)
		return -err->code;
	return 0;
}

/*
 * Refuse the requester: nobody approves (or rejects) their own request, even as an approver of
 * the environment. SHP_E_PERM makes the router audit the attempt as denied.
 */
static int not_self(struct shd_req *req, const struct approval_ticket *t, struct shp_error *err)
{
	if (t->requester_id != req->ident.user_id)
		return 0;
	shp_error_set(err, SHP_E_PERM, "'%s' requested ticket %" PRId64 " and may not decide it",
		      req->ident.name, t->id);
	shp_error_api_code(err, "SELF_APPROVAL");
	shp_error_detail(err, "ticket", "%" PRId64, t->id);
	return -SHP_E_PERM;
}

/* Everything checked before the transaction: cluster, capabilities, the plan hash. */
static int prepare_approval(struct shd_req *req, const struct approval_ticket *t,
			    const struct approve_body *b, struct approval_cluster *c,
			    struct approve_ctx *a, json_t **ret_plan, struct shp_error *err)
{
	const json_t *spec = shd_spec_effective(t->requested, t->modified);
	const char *cluster = approval_cluster_choice(t, spec, b->cluster);

	if (not_self(req, t, err) < 0 ||
	    shd_fsm_check(&shd_fsm_ticket, t->status, "APPROVED", err) < 0)
		return -err->code;
	a->record_only = shd_req_type_record_only(t->type);
	if (a->record_only && (b->cluster || b->plan_hash)) {
		shp_error_set(err, SHP_E_INVAL, "a %s request runs on no cluster and has no plan",
			      t->type_name);
		shp_error_detail(err, "field", "%s", b->cluster ? "cluster" : "plan_hash");
		return -SHP_E_INVAL;
	}
	if (b->duration_s && t->type != SHD_REQ_VNC_ACCESS) {
		shp_error_set(err, SHP_E_INVAL, "only a VNC_ACCESS approval takes a duration");
		shp_error_detail(err, "field", "duration_s");
		return -SHP_E_INVAL;
	}
	a->duration_s = (int)b->duration_s;
	if (a->record_only)
		return 0;
	if (!cluster) {
		shp_error_set(err, SHP_E_INVAL,
			      "ticket %" PRId64 " has no cluster yet: choose one (--cluster)",
			      t->id);
		shp_error_detail(err, "field", "cluster");
		return -SHP_E_INVAL;
	}
	if (approval_cluster_load(req->db, cluster, c, err) < 0 ||
	    check_cluster(req->db, t, spec, c, err) < 0 ||
	    approval_plan(req->db, t, spec, c->name, a->hash, ret_plan, err) < 0)
		return -err->code;
	if (b->plan_hash && strcmp(b->plan_hash, a->hash) != 0) {
		plan_changed_conflict(err, t->id, "has another plan than the one approved");
		shp_error_detail(err, "current_plan_hash", "%s", a->hash);
		return -SHP_E_CONFLICT;
	}
	return 0;
}

/* The approval that completes the quorum: submit the execution with everything else. */
static int submit_approved(struct shd_req *req, struct approve_ctx *a, const json_t *plan,
			   struct shd_exec_submitted *out, struct shp_error *err)
{
	struct shd_exec_submit s = {
		.tenant = a->t->system,
		.plan = plan,
		.sla = a->t->type == SHD_REQ_CREATE_VM ? SHD_SLA_LONG : SHD_SLA_MEDIUM,
		.priority = SHD_JOB_PRIORITY_NORMAL,
		.wait_lock = true,
		.actor_id = a->t->requester_id,
		.actor = a->t->requester,
		.request_id = req->request_id,
		.event_id = a->t->event_id,
		.approved_plan_hash = a->hash,
		.in_tx = approve_in_tx,
		.in_tx_arg = a,
	};
	char worker[64];

	if (shd_exec_submit(req->d->exec, req->db, &s, out, err) < 0)
		return -err->code;
	if (out->duplicate) {
		shp_error_set(err, SHP_E_CONFLICT,
			      "task %" PRId64 " runs the same plan already: approve again once it "
			      "has finished",
			      out->id);
		shp_error_detail(err, "task_id", "%" PRId64, out->id);
		return -SHP_E_CONFLICT;
	}
	if (out->immediate) {
		(void)snprintf(worker, sizeof(worker), "inline/%ld/%s", (long)getpid(),
			       req->request_id);
		(void)shd_exec_run(req->d->exec, req->db, out->id, NULL, worker);
	}
	return 0;
}

static json_t *approve_answer(const struct approve_ctx *a, const char *status, int required)
{
	return json_pack("{s:I,s:I,s:s,s:o,s:o,s:i,s:i,s:b,s:o}", "ticket_id", (json_int_t)a->t->id,
			 "request_id", (json_int_t)a->t->event_id, "status", status, "plan_hash",
			 a->hash[0] ? json_string(a->hash) : json_null(), "cluster",
			 a->c->name[0] ? json_string(a->c->name) : json_null(), "approvals",
			 a->approvals, "approvals_required", required, "already_approved",
			 a->already, "task_id",
			 a->exec_id ? json_integer(a->exec_id) : json_null());
}

int shd_api_approvals_approve(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	struct approval_cluster c __attribute__((cleanup(approval_cluster_release))) = {0};
	struct approve_ctx a = {.req = req, .t = &t, .c = &c};
	struct shd_exec_submitted out = {0};
	struct approve_body b = {0};
	json_auto_t *body = NULL;
	json_auto_t *plan = NULL;

	if (approval_ticket_for_approver(req, &t, err) < 0 ||
	    parse_approve(req, &body, &b, err) < 0 ||
	    prepare_approval(req, &t, &b, &c, &a, &plan, err) < 0)
		return -err->code;
	a.reason = b.reason;
	/*
	 * First as one more approval in a transaction of its own. Whether it completes the quorum
	 * is only known under the ticket's lock; when it does, that transaction is rolled back and
	 * the approval recorded again inside the execution's submission, which has to open the
	 * transaction itself (shd_exec_submit needs a connection without one).
	 */
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (record_approval(req->db, &a, err) < 0)
		goto fail;
	if (!a.need_final || a.final) {
		if (shd_db_commit(req->db, err) < 0)
			goto fail;
		return shd_resp_json_take(
			resp, 200,
			approve_answer(&a, a.final ? "COMPLETED" : "PENDING_APPROVAL", t.required));
	}
	shd_db_rollback(req->db);
	if (submit_approved(req, &a, plan, &out, err) < 0)
		return -err->code;
	return shd_resp_json_take(resp, 202, approve_answer(&a, "APPROVED", t.required));
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* ---- reject -------------------------------------------------------------------------------- */

static int reject_in_tx(struct shd_req *req, const struct approval_ticket *pre, const char *reason,
			struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	struct shd_notification n = {.type = "APPROVAL_REJECTED", .body = reason};
	const struct shd_identity *me = &req->ident;
	json_auto_t *details = NULL;
	char ids[24], uid[24], title[160];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, pre->id);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, me->user_id);
	if (approval_ticket_load(req->db, ids, me->user_id, true, &t, err) < 0 ||
	    shd_fsm_check(&shd_fsm_ticket, t.status, "REJECTED", err) < 0 ||
	    shd_db_command(
		    req->db,
		    "INSERT INTO approval_decisions (ticket_id, approver_id, approver,"
		    " decision, plan_hash, auth_method, principal, source, request_id, reason)"
		    " VALUES ($1, $2, $3, 'reject', $4, $5, $6, $7, $8, $9)",
		    9,
		    (const char *[]){ids, uid, me->name, t.plan_hash[0] ? t.plan_hash : NULL,
				     shd_auth_method_to_string(me->method), me->principal,
				     req->conn && req->conn->is_unix ? "unix" : "tls",
				     req->request_id, reason},
		    err) < 0 ||
	    shd_db_command(
		    req->db,
		    "UPDATE approval_tickets SET status = 'REJECTED', reason = $2,"
		    " decided_at = now(), finished_at = now(), updated_at = now() WHERE id = $1",
		    2, (const char *[]){ids, reason}, err) < 0 ||
	    shd_event_transition(req->db, t.event_id, "CANCELLED", "rejected by an approver", err) <
		    0)
		return -err->code;
	details = json_pack("{s:s}", "reason", reason);
	if (approval_audit(req->db, req, "APPROVAL_REJECTED", &t, details, err) < 0)
		return -err->code;
	if (t.requester_id <= 0)
		return 0;
	(void)snprintf(title, sizeof(title), "Request %" PRId64 " (%s %s) rejected by %s",
		       t.event_id, t.type_name, t.target, me->name);
	n.title = title;
	n.ticket_id = t.id;
	return shd_notify_sender()->to_user(req->db, t.requester_id, &n, err);
}

int shd_api_approvals_reject(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"reason", NULL};
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	json_auto_t *body = NULL;
	const char *reason = NULL;

	if (approval_ticket_for_approver(req, &t, err) < 0)
		return -err->code;
	body = shd_req_json_object(req, allowed, err);
	if (!body ||
	    shp_json_get_string(body, "reason", true, APPROVAL_REASON_MAX, &reason, err) < 0 ||
	    shd_validate_text("reason", reason, APPROVAL_REASON_MAX, err) < 0)
		return -err->code;
	if (!*reason) {
		shp_error_set(err, SHP_E_INVAL, "a rejection needs a reason");
		shp_error_detail(err, "field", "reason");
		return -SHP_E_INVAL;
	}
	if (not_self(req, &t, err) < 0 || shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (reject_in_tx(req, &t, reason, err) < 0 || shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:I,s:I,s:s,s:s}", "ticket_id", (json_int_t)t.id,
					    "request_id", (json_int_t)t.event_id, "status",
					    "REJECTED", "reason", reason));
}
