/*
 * Tasks (executions) over HTTP: submit a plan (run inline or queued), list and show tasks,
 * their progress events by polling or as a Server-Sent Events stream, and cancel. A task is
 * visible to platform admins and to the members of its tenant; to anyone else it does not
 * exist (404). See docs/internals/tasks-api.md.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "exec.h"
#include "fsm.h"
#include "json.h"
#include "queue.h"
#include "shepherdd.h"
#include "upgrade.h"
#include "util.h"

static int task_id_param(struct shd_req *req, int64_t *ret, struct shp_error *err)
{
	long long v;

	if (shp_parse_int(req->params[0], 1, INT64_MAX, &v, NULL) < 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "task '%.40s' not found", req->params[0]);
	*ret = v;
	return 0;
}

/* The caller may see the task (admin or tenant member); else it does not exist for them. */
static int visible_task(struct shd_req *req, int64_t *ret_id, char *ret_role, size_t size,
			struct shp_error *err)
{
	char tenant[64];

	if (task_id_param(req, ret_id, err) < 0 ||
	    shd_exec_tenant(req->db, *ret_id, tenant, sizeof(tenant), err) < 0 ||
	    shd_tenant_role(req->db, req->ident.user_id, tenant, ret_role, size, err) < 0)
		return -err->code;
	if (!req->ident.is_admin && !ret_role[0])
		return shp_error_set(err, SHP_E_NOTFOUND, "task %" PRId64 " not found", *ret_id);
	return 0;
}

struct submit_audit {
	struct shd_req *req;
	const char *tenant;
};

static int audit_in_tx(PGconn *conn, int64_t id, void *arg, struct shp_error *err)
{
	struct submit_audit *a = arg;
	json_auto_t *details = json_pack("{s:s}", "tenant", a->tenant);

	(void)snprintf(a->req->audit_name, sizeof(a->req->audit_name), "%" PRId64, id);
	return shd_audit_write(conn, a->req, "TASK_SUBMIT", "task", a->req->audit_name, "success",
			       details, err);
}

static int parse_submit(struct shd_req *req, const json_t *body, struct shd_exec_submit *s,
			struct shp_error *err)
{
	const char *sla = NULL, *on_busy = NULL;
	int64_t prio = SHD_JOB_PRIORITY_NORMAL;
	bool confirm = false;
	int c;

	if (shp_json_get_string(body, "tenant", true, SHP_API_NAME_MAX, &s->tenant, err) < 0 ||
	    shp_json_get_string(body, "sla_class", false, 16, &sla, err) < 0 ||
	    shp_json_get_string(body, "on_busy", false, 16, &on_busy, err) < 0 ||
	    shp_json_get_int(body, "priority", false, 0, 100, &prio, err) < 0 ||
	    shp_json_get_bool(body, "confirm", false, &confirm, err) < 0)
		return -err->code;
	s->plan = json_object_get(body, "plan");
	if (!json_is_object(s->plan)) {
		shp_error_set(err, SHP_E_INVAL, "'plan' must be an object with 'steps'");
		shp_error_detail(err, "field", "plan");
		return -SHP_E_INVAL;
	}
	s->sla = SHD_SLA_MEDIUM;
	if (sla && (c = shd_sla_class_from_string(sla)) < 0) {
		shp_error_set(err, SHP_E_INVAL, "unknown sla_class '%.16s' (fast, medium, long)",
			      sla);
		shp_error_detail(err, "field", "sla_class");
		return -SHP_E_INVAL;
	} else if (sla) {
		s->sla = (enum shd_sla_class)c;
	}
	if (on_busy && strcmp(on_busy, "fail") != 0 && strcmp(on_busy, "wait") != 0) {
		shp_error_set(err, SHP_E_INVAL, "on_busy must be 'fail' or 'wait'");
		shp_error_detail(err, "field", "on_busy");
		return -SHP_E_INVAL;
	}
	s->wait_lock = on_busy && strcmp(on_busy, "wait") == 0;
	s->priority = (int)prio;
	s->confirm = confirm;
	s->actor_id = req->ident.user_id;
	s->actor = req->ident.name;
	s->actor_is_admin = req->ident.is_admin;
	s->request_id = req->request_id;
	return 0;
}

int shd_api_tasks_submit(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"tenant",  "plan",    "sla_class", "priority",
					      "on_busy", "confirm", NULL};
	json_auto_t *body = shd_req_json_object(req, allowed, err);
	struct shd_exec_submit s = {0};
	struct shd_exec_submitted out = {0};
	struct submit_audit audit = {.req = req};
	char worker[64];
	json_t *task;

	if (!body || parse_submit(req, body, &s, err) < 0)
		return -err->code;
	audit.tenant = s.tenant;
	s.in_tx = audit_in_tx;
	s.in_tx_arg = &audit;
	if (shd_exec_submit(req->d->exec, req->db, &s, &out, err) < 0)
		return -err->code;
	if (out.immediate && !out.duplicate) {
		(void)snprintf(worker, sizeof(worker), "inline/%ld/%s", (long)getpid(),
			       req->request_id);
		(void)shd_exec_run(req->d->exec, req->db, out.id, NULL, worker);
	}
	task = shd_exec_get(req->db, out.id, true, err);
	if (!task)
		return -err->code;
	json_object_set_new(task, "duplicate", json_boolean(out.duplicate));
	return shd_resp_json_take(resp, out.immediate || out.duplicate ? 200 : 202, task);
}

int shd_api_tasks_list(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shp_buf cur __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(32);
	_cleanup_(PQclearp) PGresult *res = NULL;
	struct shd_exec_filter f = {.all = req->ident.is_admin, .user_id = req->ident.user_id};
	const char *cursor = shd_req_query(req, "cursor");
	long long before = 0;

	if (shd_req_limit(req, &f.limit, err) < 0)
		return -err->code;
	f.status = shd_req_query(req, "status");
	f.tenant = shd_req_query(req, "tenant");
	if (f.status && !shd_fsm_has_state(&shd_fsm_execution, f.status)) {
		shp_error_set(err, SHP_E_INVAL, "unknown task status '%.40s'", f.status);
		shp_error_detail(err, "field", "status");
		return -SHP_E_INVAL;
	}
	if (f.tenant && shd_validate_name("tenant", f.tenant, err) < 0)
		return -err->code;
	if (cursor && (shd_cursor_decode(cursor, &cur, err) < 0 ||
		       shp_parse_int(cur.buf, 1, INT64_MAX, &before, NULL) < 0))
		return shp_error_set(err, SHP_E_INVAL, "invalid cursor");
	f.before_id = before;
	res = shd_exec_list(req->db, &f, err);
	if (!res)
		return -err->code;
	return shd_resp_rows_page(resp, res, shd_exec_task_cols, shd_exec_task_ncols_list, f.limit,
				  0, err);
}

int shd_api_tasks_get(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	char role[16];
	int64_t id = 0;
	json_t *task;

	if (visible_task(req, &id, role, sizeof(role), err) < 0)
		return -err->code;
	task = shd_exec_get(req->db, id, true, err);
	return task ? shd_resp_json_take(resp, 200, task) : -(int)err->code;
}

/* ?after=N, else the Last-Event-ID header (for streams), else 0. */
static int after_param(struct shd_req *req, bool header, int64_t *ret, struct shp_error *err)
{
	const char *v = header ? shd_req_header(req, SHP_HDR_LAST_EVENT_ID) : NULL;
	long long n = 0;

	if (!v)
		v = shd_req_query(req, "after");
	if (v && shp_parse_int(v, 0, INT64_MAX, &n, NULL) < 0) {
		shp_error_set(err, SHP_E_INVAL, "'after' must be an event id (a whole number)");
		shp_error_detail(err, "field", "after");
		return -SHP_E_INVAL;
	}
	*ret = n;
	return 0;
}

int shd_api_tasks_events(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	char role[16];
	int64_t id = 0, after = 0;
	int limit;
	json_t *page;

	if (visible_task(req, &id, role, sizeof(role), err) < 0 ||
	    after_param(req, false, &after, err) < 0 || shd_req_limit(req, &limit, err) < 0)
		return -err->code;
	page = shd_exec_events(req->db, id, after, limit, err);
	return page ? shd_resp_json_take(resp, 200, page) : -(int)err->code;
}

int shd_api_tasks_stream(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	char role[16];
	int64_t id = 0, after = 0;

	if (visible_task(req, &id, role, sizeof(role), err) < 0 ||
	    after_param(req, true, &after, err) < 0)
		return -err->code;
	if (shd_ws_is_upgrade(req))
		return shd_api_tasks_stream_ws(req, resp, id, after, err);
	resp->stream = shd_sse_open(req->d->sse, req->mhd, id, after, err);
	if (!resp->stream)
		return -err->code;
	resp->status = 200;
	resp->content_type = SHP_SSE_CONTENT_TYPE;
	return 0;
}

int shd_api_tasks_cancel(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"reason", NULL};
	json_auto_t *body = NULL;
	json_auto_t *task = NULL;
	json_auto_t *details = NULL;
	const char *reason = NULL;
	char role[16];
	int64_t id = 0;

	if (visible_task(req, &id, role, sizeof(role), err) < 0)
		return -err->code;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%" PRId64, id);
	if (req->body.len > 0) {
		body = shd_req_json_object(req, allowed, err);
		if (!body || shp_json_get_string(body, "reason", false, 1024, &reason, err) < 0)
			return -err->code;
	}
	task = shd_exec_get(req->db, id, false, err);
	if (!task)
		return -err->code;
	/* the actor, an owner of the tenant, or an admin */
	if (!req->ident.is_admin && strcmp(role, "owner") != 0 &&
	    strcmp(json_string_value(json_object_get(task, "actor")), req->ident.name) != 0)
		return shp_error_set(err, SHP_E_PERM,
				     "only the task's actor, an owner of tenant '%s' or a "
				     "platform-admin may cancel it",
				     json_string_value(json_object_get(task, "tenant")));
	if (shd_exec_cancel(req->d->exec, req->db, id, req->ident.name, reason, err) < 0)
		return -err->code;
	details = json_pack("{s:s?}", "reason", reason);
	if (shd_audit_write(req->db, req, "TASK_CANCEL", "task", req->audit_name, "success",
			    details, err) < 0)
		return -err->code;
	json_decref(task);
	task = shd_exec_get(req->db, id, true, err);
	return task ? shd_resp_json_take(resp, 200, json_incref(task)) : -(int)err->code;
}
