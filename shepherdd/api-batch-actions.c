/*
 * What can be done to a batch after its submission: retry its failed children (new children
 * of the same parent, each checked again as a new request), cancel the children that have not
 * started, and approve every child waiting for review at once (one decision per child, with
 * each child's own plan hash, through the single approval's code).
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

/* The batch of the path for its requester or a platform admin; 404 for anyone else. */
static int own_batch(struct shd_req *req, int64_t *ret_id, char *kind, size_t size,
		     struct shp_error *err)
{
	bool own = false;
	int r = batch_find(req, ret_id, &own, kind, size, err);

	if (r < 0)
		return r;
	if (!own)
		return shp_error_set(err, SHP_E_NOTFOUND, "batch %s not found", req->params[0]);
	return 0;
}

/* The parent's status now, for the answers (null if it cannot be read). */
static json_t *parent_status(PGconn *conn, int64_t id)
{
	struct shp_error e = SHP_ERROR_INIT;
	char ids[24];
	_cleanup_(PQclearp) PGresult *res = NULL;

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn, "SELECT status::text FROM batch_approval_tickets WHERE id = $1", 1,
			  (const char *[]){ids}, &e);
	return res && PQntuples(res) ? json_string(shd_db_value(res, 0, 0)) : json_null();
}

/* ---- retry ------------------------------------------------------------------------------------
 */

/* The failed child again, as a new request from its payload. */
static int prepare_again(struct shd_req *req, struct batch_child *c, const char *type,
			 const json_t *payload, struct shp_error *err)
{
	const json_t *vm = json_object_get(payload, "vm");
	enum shd_req_type t;
	json_t *spec;

	if (shd_req_type_from_string(type, &t, err) < 0)
		return -err->code;
	if (t != SHD_REQ_CREATE_VM)
		return shd_vm_power_prepare(req, t, shp_json_str(vm, "namespace"),
					    shp_json_str(vm, "name"), &c->p, err);
	spec = json_deep_copy(json_object_get(payload, "spec"));
	if (!spec)
		return shp_error_set(err, SHP_E_INTERNAL, "the failed request has no spec");
	if (shd_spec_validate(spec, err) < 0) {
		json_decref(spec);
		return -err->code;
	}
	return shd_vm_create_prepare(req, spec, &c->p, err);
}

/* The failed children not yet retried, each prepared again; refusals go to the items. */
static int load_failed(struct shd_req *req, struct batch_sub *b, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, b->id);
	res = shd_db_exec(req->db,
			  "SELECT t.id, t.batch_index, t.request_type::text, e.payload"
			  " FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id"
			  " WHERE t.parent_ticket_id = $1 AND t.status = 'FAILED'"
			  "   AND t.retried_by IS NULL ORDER BY t.batch_index, t.id",
			  1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	b->c = calloc((size_t)PQntuples(res) + 1, sizeof(*b->c));
	if (!b->c)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	b->n = (size_t)PQntuples(res);
	for (int i = 0; i < PQntuples(res); i++) {
		struct batch_child *c = &b->c[i];
		struct shp_error e = SHP_ERROR_INIT;
		json_auto_t *payload = json_loads(PQgetvalue(res, i, 3), 0, NULL);

		c->retry_of = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		c->index = (int)strtol(PQgetvalue(res, i, 1), NULL, 10);
		if (prepare_again(req, c, PQgetvalue(res, i, 2), payload, &e) < 0) {
			if (e.code == SHP_E_DB || e.code == SHP_E_UNAVAIL)
				return -(*err = e).code;
			batch_item_error(b, c->index, &e);
		}
	}
	return 0;
}

/*
 * Retry: the failed children again, recorded as a submission is (all or nothing), under the
 * same parent; an empty list when nothing failed.
 */
int shd_api_batch_retry(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct batch_sub b __attribute__((cleanup(batch_sub_release))) = {.retry = true};
	json_auto_t *list = json_array();
	char kind[32];

	if (own_batch(req, &b.id, kind, sizeof(kind), err) < 0 || load_failed(req, &b, err) < 0)
		return -err->code;
	b.kind = kind;
	b.source = "vms";
	b.confirm = true; /* the batch was confirmed when it was submitted */
	if (b.n == 0)
		return shd_resp_json_take(resp, 200,
					  json_pack("{s:I,s:o,s:[]}", "batch_id", (json_int_t)b.id,
						    "status", parent_status(req->db, b.id),
						    "retried"));
	if (shd_batch_limits_check(req, resp, (int)b.n, false, err) < 0)
		return -err->code;
	if (!b.nerrors && batch_decide_all(req, &b, err) < 0)
		return -err->code;
	if (b.nerrors)
		return batch_invalid_answer(req, resp, &b);
	if (batch_record(req, &b, err) < 0)
		return -err->code;
	for (size_t i = 0; i < b.n; i++)
		(void)json_array_append_new(
			list, json_pack("{s:i,s:I,s:I,s:s,s:s}", "index", b.c[i].index, "ticket_id",
					(json_int_t)b.c[i].ticket_id, "retry_of",
					(json_int_t)b.c[i].retry_of, "namespace", b.c[i].p.sub.ns,
					"name", b.c[i].p.sub.target));
	return shd_resp_json_take(resp, 202,
				  json_pack("{s:I,s:o,s:O}", "batch_id", (json_int_t)b.id, "status",
					    parent_status(req->db, b.id), "retried", list));
}

/* ---- cancel -----------------------------------------------------------------------------------
 */

/* A child with no execution yet: its ticket and event CANCELLED, in one transaction. */
static int cancel_unstarted(struct shd_req *req, const char *tid, bool *ret_done,
			    struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *d = NULL;

	*ret_done = false;
	if (shd_db_begin(req->db, err) < 0)
		return -err->code;
	res = shd_db_exec(
		req->db,
		"UPDATE approval_tickets SET status = 'CANCELLED', error_code = 'CANCELLED',"
		" reason = 'batch cancelled', finished_at = now(), updated_at = now()"
		" WHERE id = $1 AND execution_id IS NULL"
		"   AND status IN ('PENDING_APPROVAL', 'APPROVED')"
		" RETURNING event_id, namespace || '/' || target_name",
		1, (const char *[]){tid}, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1) {
		d = json_pack("{s:s,s:s}", "ticket_id", tid, "request_id", shd_db_value(res, 0, 0));
		if (shd_event_transition(req->db, strtoll(shd_db_value(res, 0, 0), NULL, 10),
					 "CANCELLED", "batch cancelled", err) < 0 ||
		    shd_audit_write(req->db, req, "REQUEST_CANCELLED", "request",
				    shd_db_value(res, 0, 1), "success", d, err) < 0)
			goto fail;
		*ret_done = true;
	}
	if (shd_db_commit(req->db, err) < 0)
		goto fail;
	return 0;
fail:
	shd_db_rollback(req->db);
	return -err->code;
}

/* One child: unstarted ones at once, a pending execution through the engine. */
static int cancel_child(struct shd_req *req, const PGresult *res, int i, bool *ret_done,
			struct shp_error *err)
{
	const char *tid = PQgetvalue(res, i, 0);

	if (PQgetisnull(res, i, 1))
		return cancel_unstarted(req, tid, ret_done, err);
	*ret_done = true;
	return shd_exec_cancel(req->d->exec, req->db, strtoll(PQgetvalue(res, i, 1), NULL, 10),
			       req->ident.name, "batch cancelled", err);
}

/* Cancel: every child that has not started; the answer lists those cancelled. */
int shd_api_batch_cancel(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *list = json_array();
	int64_t id = 0;
	char kind[32], ids[24];

	if (own_batch(req, &id, kind, sizeof(kind), err) < 0)
		return -err->code;
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	/* not started: no execution, or one still pending */
	res = shd_db_exec(req->db,
			  "SELECT t.id, t.execution_id, t.batch_index, t.namespace, t.target_name"
			  " FROM approval_tickets t LEFT JOIN executions x ON x.id = t.execution_id"
			  " WHERE t.parent_ticket_id = $1 AND t.retried_by IS NULL"
			  "   AND (t.status = 'PENDING_APPROVAL' OR (t.status = 'APPROVED'"
			  "        AND (x.id IS NULL OR x.status = 'pending')))"
			  " ORDER BY t.id",
			  1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		bool done = false;
		if (cancel_child(req, res, i, &done, err) < 0)
			return -err->code;
		if (done)
			(void)json_array_append_new(
				list,
				json_pack("{s:I,s:i,s:s,s:s}", "ticket_id",
					  (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10),
					  "index", (int)strtol(PQgetvalue(res, i, 2), NULL, 10),
					  "namespace", PQgetvalue(res, i, 3), "name",
					  PQgetvalue(res, i, 4)));
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:I,s:o,s:O}", "batch_id", (json_int_t)id, "status",
					    parent_status(req->db, id), "cancelled", list));
}

/* ---- approve all --------------------------------------------------------------------------------
 */

/* The single approval of child tid, with the batch's body, as POST /approvals/{id}/approve. */
static json_t *approve_child(struct shd_req *req, const char *tid, const char *body)
{
	struct shp_buf saved = req->body, nb = SHP_BUF_INIT(8192);
	struct shd_resp r = {.retry_after = -1};
	struct shp_error e = SHP_ERROR_INIT;
	char *saved_param = req->params[0];
	json_t *out;

	if (shp_buf_add(&nb, body) < 0)
		return json_pack("{s:s,s:s}", "ticket_id", tid, "error", "body too large");
	req->body = nb;
	req->params[0] = (char *)tid;
	if (shd_api_approvals_approve(req, &r, &e) < 0)
		out = json_pack("{s:s,s:s}", "code", shp_error_api_code_of(&e), "message", e.msg);
	else
		out = json_deep_copy(r.json);
	req->params[0] = saved_param;
	nb = req->body;
	req->body = saved;
	shp_buf_release(&nb);
	shd_resp_release(&r);
	if (out)
		(void)json_object_set_new(out, "ticket_id", json_integer(strtoll(tid, NULL, 10)));
	return out;
}

/*
 * Approve all: the single approval for each child waiting for review, each in its own
 * transactions; one child refused does not stop the others. Anyone who sees the batch may ask;
 * each child's approval decides whether they may approve it.
 */
int shd_api_batch_approve(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"cluster", "reason", NULL};
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *body = req->body.len ? shd_req_json_object(req, allowed, err) : json_object();
	json_auto_t *approved = json_array(), *refused = json_array();
	_cleanup_free_ char *text = NULL;
	const char *ignored = NULL;
	int64_t id = 0;
	bool own = false;
	char ids[24];

	if (!body ||
	    shp_json_get_string(body, "cluster", false, SHP_API_NAME_MAX, &ignored, err) < 0 ||
	    shp_json_get_string(body, "reason", false, 1024, &ignored, err) < 0)
		return -err->code;
	text = json_dumps(body, JSON_COMPACT);
	if (batch_find(req, &id, &own, NULL, 0, err) < 0)
		return -err->code;
	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(req->db,
			  "SELECT id FROM approval_tickets WHERE parent_ticket_id = $1"
			  " AND status = 'PENDING_APPROVAL' AND retried_by IS NULL ORDER BY id",
			  1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *one = approve_child(req, PQgetvalue(res, i, 0), text);
		(void)json_array_append_new(json_object_get(one, "code") ? refused : approved, one);
	}
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:I,s:o,s:O,s:O}", "batch_id", (json_int_t)id,
					    "status", parent_status(req->db, id), "approved",
					    approved, "refused", refused));
}
