/*
 * "My requests": the governance requests (domain events) a user made, with their tickets and
 * tasks, and the requester's cancellation of a request still waiting for approval. Someone
 * else's request does not exist for a user (404), unless they are a platform admin.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "fsm.h"
#include "gov-submit.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

static const struct shd_col request_cols[] = {
	{"id", COL_INT},
	{"type", COL_TEXT},
	{"status", COL_TEXT},
	{"event_status", COL_TEXT},
	{"system", COL_TEXT},
	{"target", COL_TEXT},
	{"namespace", COL_TEXT},
	{"environment", COL_TEXT},
	{"ticket_id", COL_INT},
	{"ticket_status", COL_TEXT},
	{"approval_level", COL_INT},
	{"task_id", COL_INT},
	{"requester", COL_TEXT},
	{"error", COL_TEXT},
	{"created_at", COL_TIME},
	{"updated_at", COL_TIME},
	{"payload", COL_JSON}, /* the show only */
};

/* status: the ticket's when there is one, else the event's (as the submission answered). */
#define REQUEST_SELECT                                                                             \
	"SELECT e.id, e.type, coalesce(t.status::text, e.status::text), e.status::text,"           \
	"       e.tenant,"                                                                         \
	"       coalesce(t.target_name, e.payload->'vm'->>'name', e.payload->'spec'->>'name'),"    \
	"       coalesce(t.namespace, e.payload->'vm'->>'namespace',"                              \
	"                e.payload->'spec'->>'namespace'),"                                        \
	"       t.environment::text, t.id, t.status::text, t.approval_level,"                      \
	"       (SELECT max(x.id) FROM executions x WHERE x.event_id = e.id),"                     \
	"       e.actor, coalesce(t.error, e.error), e.created_at,"                                \
	"       greatest(e.updated_at, t.updated_at), e.payload"                                   \
	"  FROM domain_events e LEFT JOIN approval_tickets t ON t.event_id = e.id"                 \
	" WHERE e.type = ANY (enum_range(NULL::request_type)::text[])"

#define NCOLS_LIST (SHP_ARRAY_SIZE(request_cols) - 1)

static bool is_request_status(const char *s)
{
	return shd_fsm_has_state(&shd_fsm_ticket, s) || shd_fsm_has_state(&shd_fsm_event, s);
}

int shd_api_requests_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *cursor = shd_req_query(req, "cursor"), *status = shd_req_query(req, "status");
	long long before = 0;
	char uid[24], lim[16], bef[24];
	int limit;

	if (shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	if (status && !is_request_status(status)) {
		shp_error_set(err, SHP_E_INVAL, "unknown request status '%.40s'", status);
		shp_error_detail(err, "field", "status");
		return -SHP_E_INVAL;
	}
	if (cursor && (shd_cursor_decode(cursor, &cur, err) < 0 ||
		       shp_parse_int(cur.buf, 1, INT64_MAX, &before, NULL) < 0))
		return shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(lim, sizeof(lim), "%d", limit + 1);
	(void)snprintf(bef, sizeof(bef), "%lld", before);
	res = shd_db_exec(req->db,
			  REQUEST_SELECT " AND e.actor_id = $1 AND ($2::bigint = 0 OR e.id < $2)"
					 " AND ($3::text IS NULL"
					 "      OR coalesce(t.status::text, e.status::text) = $3)"
					 " ORDER BY e.id DESC LIMIT $4",
			  4, (const char *[]){uid, bef, status, lim}, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, request_cols, NCOLS_LIST, limit, 0, err);
}

static int id_param(const char *s, const char *what, int64_t *ret, struct shp_error *err)
{
	long long v;

	if (shp_parse_int(s, 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "%s '%.40s' not found", what, s);
	*ret = v;
	return 0;
}

int shd_api_requests_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], ids[24];
	int64_t id = 0;

	if (id_param(req->params[0], "request", &id, err) < 0)
		return -err->code;
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(req->db,
			  REQUEST_SELECT " AND e.id = $2 AND (e.actor_id = $1"
					 "  OR cardinality(user_envs($1, '{platform-admin}')) > 0)",
			  2, (const char *[]){uid, ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "request %" PRId64 " not found", id);
	return shd_resp_row(resp, 200, res, request_cols, SHP_ARRAY_SIZE(request_cols), err);
}

struct ticket_row {
	int64_t event_id;
	char status[24];
	bool mine, visible;
};

/* The ticket under a row lock, and whether the caller asked for it or may see it. */
static int lock_ticket(struct shd_req *req, int64_t id, struct ticket_row *t, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24], ids[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(
		req->db,
		"SELECT t.event_id, t.status::text, t.requester_id IS NOT DISTINCT FROM $1,"
		"       CASE WHEN t.environment IS NULL"
		"            THEN cardinality(user_envs($1, '{platform-admin,approver}')) > 0"
		"                 OR user_system_role($1, t.system) <> ''"
		"            ELSE vm_visible($1, t.system, t.environment) END"
		"  FROM approval_tickets t WHERE t.id = $2 FOR UPDATE OF t",
		2, (const char *[]){uid, ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "approval %" PRId64 " not found", id);
	t->event_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(t->status, sizeof(t->status), "%s", shd_db_value(res, 0, 1));
	t->mine = strcmp(shd_db_value(res, 0, 2), "t") == 0;
	t->visible = strcmp(shd_db_value(res, 0, 3), "t") == 0;
	if (!t->mine && !t->visible)
		return shp_error_set(err, SHP_E_NOTFOUND, "approval %" PRId64 " not found", id);
	if (!t->mine)
		return shp_error_set(err, SHP_E_PERM,
				     "only the requester may cancel approval %" PRId64, id);
	return shd_fsm_check(&shd_fsm_ticket, t->status, "CANCELLED", err);
}

static int cancel_ticket(struct shd_req *req, int64_t id, const struct ticket_row *t,
			 const char *reason, struct shp_error *err)
{
	json_auto_t *d = json_pack("{s:I,s:I,s:s}", "ticket_id", (json_int_t)id, "request_id",
				   (json_int_t)t->event_id, "reason", reason);
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	if (shd_db_command(req->db,
			   "UPDATE approval_tickets SET status = 'CANCELLED', reason = $2,"
			   "       decided_at = now(), finished_at = now(), updated_at = now()"
			   " WHERE id = $1",
			   2, (const char *[]){ids, reason[0] ? reason : NULL}, err) < 0 ||
	    shd_event_transition(req->db, t->event_id, "CANCELLED", NULL, err) < 0)
		return -err->code;
	return shd_audit_write(req->db, req, "REQUEST_CANCELLED", "request", req->audit_name,
			       "success", d, err);
}

/* POST /approvals/{id}/cancel: the requester withdraws a request waiting for approval. */
int shd_api_requests_cancel(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"reason", NULL};
	json_auto_t *body = NULL;
	struct ticket_row t = {0};
	const char *reason = "";
	int64_t id = 0;

	if (req->body.len > 0 &&
	    (!(body = shd_req_json_object(req, allowed, err)) ||
	     shp_json_get_string(body, "reason", false, 1024, &reason, err) < 0 ||
	     shd_validate_text("reason", reason, 1024, err) < 0))
		return -err->code;
	if (id_param(req->params[0], "approval", &id, err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%" PRId64, id);
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (lock_ticket(req, id, &t, err) < 0 || cancel_ticket(req, id, &t, reason, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:I,s:I,s:s}", "ticket_id", (json_int_t)id,
					    "request_id", (json_int_t)t.event_id, "status",
					    "CANCELLED"));
}
