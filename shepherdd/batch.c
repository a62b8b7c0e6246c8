/*
 * Batches: recording a parent and all its children in one transaction (each child an ordinary
 * request: its domain event, its ticket, its REQUEST_SUBMITTED audit row), and the dispatch of
 * the children the policy lets run without review, one execution each, on the queue.
 * Children waiting for review are approved one by one or all at once (api-batch.c); their
 * executions are submitted by the approval, as for any ticket.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "batch-internal.h"
#include "batch.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "exec.h"
#include "gov-submit.h"
#include "json.h"
#include "log.h"
#include "plan.h"
#include "queue.h"
#include "shepherdd.h"
#include "util.h"

void batch_sub_release(struct batch_sub *b)
{
	for (size_t i = 0; i < b->n; i++)
		shd_vm_prepared_release(&b->c[i].p);
	free(b->c);
	free(b->policies);
	json_decref(b->errors);
	*b = (struct batch_sub){0};
}

/* The value of detail key in err, or NULL. */
static const char *detail_of(const struct shp_error *err, const char *key)
{
	for (int i = 0; i < err->n_details; i++)
		if (strcmp(err->details[i].key, key) == 0)
			return err->details[i].value;
	return NULL;
}

void batch_item_error(struct batch_sub *b, int index, const struct shp_error *e)
{
	json_t *item;

	/* the first refusal is the message; the others are listed, up to a cap */
	b->nerrors++;
	if (b->nerrors == 1) {
		b->first_error = *e;
		b->first_index = index;
	}
	if (!b->errors)
		b->errors = json_array();
	if (!b->errors || json_array_size(b->errors) >= BATCH_ERRORS_MAX)
		return;
	item = json_pack("{s:i,s:s,s:s}", "index", index, "code", shp_error_api_code_of(e),
			 "message", e->msg);
	if (item && detail_of(e, "field"))
		(void)json_object_set_new(item, "field", json_string(detail_of(e, "field")));
	(void)json_array_append_new(b->errors, item);
}

/*
 * The answer is built here rather than by the router: the router's error body carries string
 * details only, and the item errors are a list. The shape is the router's all the same.
 */
int batch_invalid_answer(struct shd_req *req, struct shd_resp *resp, const struct batch_sub *b)
{
	char msg[700];
	json_t *details;

	(void)snprintf(msg, sizeof(msg), "%d of %zu items are invalid; item %d: %s", b->nerrors,
		       b->n, b->first_index, b->first_error.msg);
	details = json_pack("{s:O,s:i,s:i}", "errors", b->errors, "index", b->first_index,
			    "invalid", b->nerrors);
	if (details && detail_of(&b->first_error, "field"))
		(void)json_object_set_new(details, "field",
					  json_string(detail_of(&b->first_error, "field")));
	return shd_resp_json_take(resp, 400,
				  json_pack("{s:{s:s,s:s,s:o,s:s}}", SHP_API_FIELD_ERROR,
					    SHP_API_FIELD_CODE, "BATCH_INVALID",
					    SHP_API_FIELD_MESSAGE, msg, SHP_API_FIELD_DETAILS,
					    details ? details : json_object(),
					    SHP_API_FIELD_REQUEST_ID, req->request_id));
}

/*
 * The policy's word on one child: its level; a level 1 needs the batch's confirm; a child
 * that runs without review needs a cluster, and the hash of its plan is what the policy
 * approved (as for a single request).
 */
static int decide(struct shd_req *req, const struct shd_policy *rows, size_t nrows, bool confirm,
		  struct batch_child *c, struct shp_error *err)
{
	const struct shd_gov_sub *s = &c->p.sub;
	json_auto_t *plan = NULL;

	if (shd_policy_match(rows, nrows, s->type, s->env, s->add_cpus, s->add_memory_mib, &c->d,
			     err) < 0)
		return -err->code;
	if (c->d.level == 1 && !confirm)
		return shd_gov_confirmation_required(err, "confirm", shd_gov_env_name(s->env),
						     shd_req_type_to_string(s->type));
	if (c->d.level >= 2)
		return 0;
	if (!s->cluster || !s->cluster[0]) {
		shp_error_set(err, SHP_E_INVAL,
			      "%s runs without review in %s, so it needs a cluster: name one in "
			      "'cluster'",
			      shd_req_type_to_string(s->type),
			      shd_gov_env_name(s->env) ? shd_gov_env_name(s->env) : "any");
		shp_error_detail(err, "field", "cluster");
		return -SHP_E_INVAL;
	}
	plan = s->plan(req->db, s, err);
	if (!plan || shd_plan_hash(plan, c->hash, err) < 0)
		return -err->code;
	return 0;
}

/*
 * The policies are read once for the whole batch (kept with it: a decision borrows its row's
 * runbook URL); each child is matched against them.
 */
int batch_decide_all(struct shd_req *req, struct batch_sub *b, struct shp_error *err)
{
	size_t nrows = 0;

	free(b->policies);
	b->policies = NULL;
	if (shd_policy_load(req->db, &b->policies, &nrows, err) < 0)
		return -err->code;
	for (size_t i = 0; i < b->n; i++) {
		struct shp_error e = SHP_ERROR_INIT;
		if (decide(req, b->policies, nrows, b->confirm, &b->c[i], &e) < 0) {
			if (e.code == SHP_E_DB || e.code == SHP_E_UNAVAIL ||
			    e.code == SHP_E_NOMEM) {
				*err = e;
				return -e.code;
			}
			batch_item_error(b, b->c[i].index, &e);
		}
	}
	return 0;
}

/* ---- recording ------------------------------------------------------------------------------ */

/* The parent starts empty: the children's triggers fill its counters and status. */
static int insert_parent(PGconn *conn, struct shd_req *req, struct batch_sub *b,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(
		conn,
		"INSERT INTO batch_approval_tickets (kind, source, requester_id, requester,"
		" request_id) VALUES ($1, $2, $3, $4, $5) RETURNING id",
		5,
		(const char *[]){b->kind, b->source, req->ident.user_id > 0 ? uid : NULL,
				 req->ident.name, req->request_id},
		err);
	if (!res)
		return -err->code;
	b->id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

/* The child's ticket: PENDING_APPROVAL under review, APPROVED (level 0-1) when it runs at once. */
static int insert_ticket(PGconn *conn, struct shd_req *req, const struct batch_sub *b,
			 struct batch_child *c, struct shp_error *err)
{
	const struct shd_gov_sub *s = &c->p.sub;
	bool automatic = c->d.level < 2;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ev[24], uid[24], vm[24], lv[8], ap[8], ttl[24], parent[24], idx[16];

	(void)snprintf(ev, sizeof(ev), "%" PRId64, c->event_id);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(vm, sizeof(vm), "%" PRId64, s->vm_id);
	(void)snprintf(lv, sizeof(lv), "%d", c->d.level);
	(void)snprintf(ap, sizeof(ap), "%d", c->d.approvers_required);
	(void)snprintf(ttl, sizeof(ttl), "%d", req->d->cfg->approvals_ttl_s);
	(void)snprintf(parent, sizeof(parent), "%" PRId64, b->id);
	(void)snprintf(idx, sizeof(idx), "%d", c->index);
	res = shd_db_exec(
		conn,
		"INSERT INTO approval_tickets (event_id, request_type, requester_id, requester,"
		"   system, service, namespace, environment, target_name, vm_id, cluster_id,"
		"   approval_level, approvals_required, runbook_url, escalated, expires_at,"
		"   parent_ticket_id, batch_index, status, plan_hash, approved_plan_hash, "
		"decided_at)"
		" VALUES ($1, $2::request_type, $3, $4, $5, $6, $7, $8::environment, $9, $10,"
		"   (SELECT id FROM clusters WHERE name = $11), $12, $13, $14, $15::boolean,"
		"   now() + make_interval(secs => $16::bigint), $17, $18,"
		"   CASE WHEN $19::text IS NULL THEN 'PENDING_APPROVAL' ELSE 'APPROVED' END"
		"   ::ticket_status, $19, $19, CASE WHEN $19::text IS NULL THEN NULL ELSE now() "
		"END)"
		" RETURNING id",
		19,
		(const char *[]){ev, shd_req_type_to_string(s->type),
				 req->ident.user_id > 0 ? uid : NULL, req->ident.name, s->system,
				 s->service, s->ns, shd_gov_env_name(s->env), s->target,
				 s->vm_id > 0 ? vm : NULL, s->cluster, lv, ap, c->d.runbook_url,
				 c->d.escalated ? "true" : "false", ttl, parent, idx,
				 automatic ? c->hash : NULL},
		err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT) {
			shp_error_set(err, SHP_E_CONFLICT,
				      "item %d: a VM named '%s' in namespace '%s' is already "
				      "requested",
				      c->index, s->target, s->ns);
			shp_error_api_code(err, "NAME_TAKEN");
			shp_error_detail(err, "index", "%d", c->index);
		}
		return -err->code;
	}
	c->ticket_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

/* REQUEST_SUBMITTED for one child, as its single request writes it, naming the batch. */
static int audit_child(PGconn *conn, struct shd_req *req, const struct batch_sub *b,
		       const struct batch_child *c, struct shp_error *err)
{
	const struct shd_gov_sub *s = &c->p.sub;
	json_auto_t *d = json_pack("{s:I,s:s,s:s,s:i,s:I,s:I,s:i,s:s}", "request_id",
				   (json_int_t)c->event_id, "type", shd_req_type_to_string(s->type),
				   "target", s->target, "approval_level", c->d.level, "ticket_id",
				   (json_int_t)c->ticket_id, "batch_id", (json_int_t)b->id,
				   "batch_index", c->index, "system", s->system);

	if (!d)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (c->retry_of)
		(void)json_object_set_new(d, "retry_of", json_integer(c->retry_of));
	return shd_audit_write(conn, req, "REQUEST_SUBMITTED", "request", s->target, "success", d,
			       err);
}

/*
 * One child: its event (PROCESSING at once when the policy lets it run, as a single automatic
 * request's), its ticket, its audit row; a retried child points at its replacement.
 */
static int record_child(PGconn *conn, struct shd_req *req, const struct batch_sub *b,
			struct batch_child *c, struct shp_error *err)
{
	const struct shd_gov_sub *s = &c->p.sub;
	struct shd_event_new ev = {.type = shd_req_type_to_string(s->type),
				   .payload = s->payload,
				   .actor_id = req->ident.user_id,
				   .actor = req->ident.name,
				   .tenant = s->system};

	if (shd_event_create(conn, &ev, &c->event_id, NULL, err) < 0 ||
	    (c->d.level < 2 &&
	     shd_event_transition(conn, c->event_id, "PROCESSING", NULL, err) < 0) ||
	    insert_ticket(conn, req, b, c, err) < 0 || audit_child(conn, req, b, c, err) < 0)
		return -err->code;
	if (!c->retry_of)
		return 0;
	{
		char old[24], now[24];
		(void)snprintf(old, sizeof(old), "%" PRId64, c->retry_of);
		(void)snprintf(now, sizeof(now), "%" PRId64, c->ticket_id);
		return shd_db_command(
			conn,
			"UPDATE approval_tickets SET retried_by = $2, updated_at = now()"
			" WHERE id = $1 AND retried_by IS NULL",
			2, (const char *[]){old, now}, err);
	}
}

/* One APPROVAL_PENDING per environment for the children waiting for review. */
static int notify_approvers(PGconn *conn, struct shd_req *req, const struct batch_sub *b,
			    struct shp_error *err)
{
	for (int env = -1; env <= 1; env++) {
		int waiting = 0;
		char title[256];
		json_auto_t *data = NULL;
		struct shd_notification n = {.type = "APPROVAL_PENDING", .body = ""};

		for (size_t i = 0; i < b->n; i++)
			waiting += b->c[i].d.level >= 2 && b->c[i].p.sub.env == env;
		if (!waiting)
			continue;
		(void)snprintf(title, sizeof(title),
			       "Batch %" PRId64 ": %d %s request(s) by %.128s "
			       "wait for approval",
			       b->id, waiting, b->kind, req->ident.name);
		data = json_pack("{s:I,s:s,s:i,s:s}", "batch_id", (json_int_t)b->id, "type",
				 b->kind, "children", waiting, "requester", req->ident.name);
		n.title = title;
		n.data = data;
		if (shd_notify_inbox.to_approvers(conn, env, &n, err) < 0)
			return -err->code;
	}
	return 0;
}

/* The dispatch job, in the batch's transaction, when some child runs without review. */
static int enqueue_dispatch(PGconn *conn, const struct batch_sub *b, struct shp_error *err)
{
	struct shd_job_params p = SHD_JOB_PARAMS_INIT;
	struct shd_job_inserted out;
	char args[64];

	for (size_t i = 0; i < b->n; i++) {
		if (b->c[i].d.level >= 2)
			continue;
		(void)snprintf(args, sizeof(args), "{\"batch_id\": %" PRId64 "}", b->id);
		p.kind = SHD_BATCH_DISPATCH_KIND;
		p.args = args;
		return shd_job_insert(conn, &p, &out, err);
	}
	return 0;
}

int batch_record(struct shd_req *req, struct batch_sub *b, struct shp_error *err)
{
	PGconn *conn = req->db;
	json_auto_t *d = NULL;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (!b->id && insert_parent(conn, req, b, err) < 0)
		goto fail;
	for (size_t i = 0; i < b->n; i++)
		if (record_child(conn, req, b, &b->c[i], err) < 0)
			goto fail;
	d = json_pack("{s:I,s:s,s:I,s:b}", "batch_id", (json_int_t)b->id, "type", b->kind,
		      "children", (json_int_t)b->n, "retry", b->retry);
	if (notify_approvers(conn, req, b, err) < 0 || enqueue_dispatch(conn, b, err) < 0 ||
	    shd_audit_write(conn, req, b->retry ? "BATCH_RETRIED" : "BATCH_SUBMITTED", "batch",
			    req->audit_name, "success", d, err) < 0 ||
	    shd_db_commit(conn, err) < 0)
		goto fail;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

/* ---- dispatch ---------------------------------------------------------------------------------
 */

/* An automatic child, as the dispatcher reads it. */
struct auto_child {
	int64_t ticket_id, event_id, requester_id;
	char ids[24];
	const char *type, *hash, *cluster, *requester, *system;
	const char *request_id; /* the submission's, which the execution carries */
	json_t *payload;        /* owned */
};

/* Inside the execution's transaction: the ticket names it, unless someone was faster. */
static int claim_in_tx(PGconn *conn, int64_t id, void *arg, struct shp_error *err)
{
	struct auto_child *a = arg;
	_cleanup_(PQclearp) PGresult *res = NULL;
	char xid[24];

	(void)snprintf(xid, sizeof(xid), "%" PRId64, id);
	res = shd_db_exec(conn,
			  "UPDATE approval_tickets SET execution_id = $2, updated_at = now()"
			  " WHERE id = $1 AND execution_id IS NULL AND status = 'APPROVED'"
			  " RETURNING id",
			  2, (const char *[]){a->ids, xid}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) > 0)
		return 0;
	shp_error_set(err, SHP_E_CONFLICT, "ticket %s was dispatched or cancelled", a->ids);
	shp_error_api_code(err, "ALREADY_DISPATCHED");
	shp_error_detail(err, "ticket", "%s", a->ids);
	return -SHP_E_CONFLICT;
}

/* A child whose execution was refused: the ticket and the event FAILED with the refusal. */
static int fail_child(PGconn *conn, const struct auto_child *a, const struct shp_error *why,
		      struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_auto_t *d = json_pack("{s:I,s:I,s:s,s:s}", "request_id", (json_int_t)a->event_id,
				   "ticket_id", (json_int_t)a->ticket_id, "request_type", a->type,
				   "error_code", shp_error_api_code_of(why));

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	res = shd_db_exec(conn,
			  "UPDATE approval_tickets SET status = 'FAILED', error_code = $2,"
			  " error = left($3, 4096), finished_at = now(), updated_at = now()"
			  " WHERE id = $1 AND status = 'APPROVED' AND execution_id IS NULL"
			  " RETURNING id",
			  3, (const char *[]){a->ids, shp_error_api_code_of(why), why->msg}, err);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1 &&
	    (shd_event_transition(conn, a->event_id, "FAILED", why->msg, err) < 0 ||
	     shd_audit_write(conn, NULL, "EXECUTION_FAILED", "request", a->ids, "failed", d, err) <
		     0))
		goto fail;
	if (shd_db_commit(conn, err) < 0)
		goto fail;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

/*
 * The child's execution, as an approval submits one: the plan built again from the request's
 * payload must hash to what the policy approved (the engine checks it), and the requester is
 * the actor whose right the worker checks again.
 */
static int submit_child(struct shd_exec_engine *e, PGconn *conn, struct auto_child *a,
			struct shp_error *err)
{
	enum shd_req_type type;
	json_auto_t *plan = NULL;
	struct shd_exec_submitted out = {0};
	struct shd_exec_submit s = {.tenant = a->system,
				    .sla = SHD_SLA_MEDIUM,
				    .priority = SHD_JOB_PRIORITY_NORMAL,
				    .wait_lock = true,
				    .confirm = true,
				    .actor_id = a->requester_id,
				    .actor = a->requester,
				    .request_id = a->request_id,
				    .event_id = a->event_id,
				    .approved_plan_hash = a->hash,
				    .in_tx = claim_in_tx,
				    .in_tx_arg = a};
	char worker[64];

	if (shd_req_type_from_string(a->type, &type, err) < 0)
		return -err->code;
	if (type == SHD_REQ_CREATE_VM)
		s.sla = SHD_SLA_LONG;
	plan = shd_gov_plan(conn, type, json_object_get(a->payload, "spec"),
			    json_object_get(a->payload, "vm"), a->cluster, err);
	if (!plan)
		return -err->code;
	s.plan = plan;
	if (shd_exec_submit(e, conn, &s, &out, err) < 0)
		return -err->code;
	if (out.immediate && !out.duplicate) {
		(void)snprintf(worker, sizeof(worker), "batch/%ld", (long)getpid());
		(void)shd_exec_run(e, conn, out.id, NULL, worker);
	}
	return 0;
}

/* Row i of the dispatcher's query; the strings are borrowed from res. */
static void row_child(const PGresult *res, int i, struct auto_child *a)
{
	a->ticket_id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	(void)snprintf(a->ids, sizeof(a->ids), "%" PRId64, a->ticket_id);
	a->event_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
	a->type = PQgetvalue(res, i, 2);
	a->hash = PQgetvalue(res, i, 3);
	a->cluster = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
	a->payload = json_loads(PQgetvalue(res, i, 5), 0, NULL);
	a->requester_id = PQgetisnull(res, i, 6) ? 0 : strtoll(PQgetvalue(res, i, 6), NULL, 10);
	a->requester = PQgetvalue(res, i, 7);
	a->system = PQgetvalue(res, i, 8);
	a->request_id = PQgetvalue(res, i, 9);
}

int shd_batch_dispatch(struct shd_exec_engine *e, PGconn *conn, int64_t batch_id, int *ret_count,
		       struct shp_error *err)
{
	static const char sql[] =
		"SELECT t.id, t.event_id, t.request_type::text, t.approved_plan_hash, c.name,"
		"  e.payload, t.requester_id, t.requester, t.system, b.request_id"
		" FROM approval_tickets t JOIN domain_events e ON e.id = t.event_id"
		" JOIN batch_approval_tickets b ON b.id = t.parent_ticket_id"
		" LEFT JOIN clusters c ON c.id = t.cluster_id"
		" WHERE t.parent_ticket_id IS NOT NULL AND t.status = 'APPROVED'"
		"   AND t.execution_id IS NULL AND t.approval_level <= 1"
		"   AND (t.parent_ticket_id = $1::bigint OR ($1::bigint = 0"
		"        AND t.created_at < now() - interval '1 minute'))"
		" ORDER BY t.id LIMIT 1000";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char bid[24];

	*ret_count = 0;
	(void)snprintf(bid, sizeof(bid), "%" PRId64, batch_id);
	res = shd_db_exec(conn, sql, 1, (const char *[]){bid}, err);
	if (!res)
		return -err->code;
	/*
	 * Each child on its own: a refusal fails that child only; the database failing stops
	 * the pass (the job is retried, and the claim makes a second pass harmless).
	 */
	for (int i = 0; i < PQntuples(res); i++) {
		struct auto_child a = {0};
		struct shp_error cerr = SHP_ERROR_INIT, ferr = SHP_ERROR_INIT;

		row_child(res, i, &a);
		if (submit_child(e, conn, &a, &cerr) == 0) {
			(*ret_count)++;
		} else if (cerr.code == SHP_E_DB || cerr.code == SHP_E_UNAVAIL) {
			json_decref(a.payload);
			*err = cerr;
			return -cerr.code;
		} else if (strcmp(shp_error_api_code_of(&cerr), "ALREADY_DISPATCHED") != 0) {
			log_warn("batch: ticket %s refused: %s", a.ids, cerr.msg);
			if (fail_child(conn, &a, &cerr, &ferr) < 0)
				log_error("batch: failing ticket %s: %s", a.ids, ferr.msg);
		}
		json_decref(a.payload);
	}
	return 0;
}

/* ---- the job kinds ------------------------------------------------------------------------- */

/* batch.dispatch: args {"batch_id": N}, enqueued with the batch. */
static enum shd_job_outcome dispatch_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	json_int_t id = json_integer_value(json_object_get(job->args, "batch_id"));
	int n = 0;

	if (!conn || shd_batch_dispatch(ctx, conn, id, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	log_info("batch %" JSON_INTEGER_FORMAT ": %d execution(s) submitted", id, n);
	return SHD_JOB_DONE;
}

/* batch.sweep: children a lost dispatch job left without an execution. */
static enum shd_job_outcome sweep_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	if (!conn || shd_batch_dispatch(ctx, conn, 0, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (n > 0)
		log_info("batch.sweep: %d execution(s) submitted late", n);
	return SHD_JOB_DONE;
}

int shd_batch_register(struct shd_queue *q, struct shd_exec_engine *e, struct shp_error *err)
{
	struct shd_job_kind dk = {SHD_BATCH_DISPATCH_KIND, dispatch_job, e, 300000};
	struct shd_job_kind sk = {SHD_BATCH_SWEEP_KIND, sweep_job, e, 300000};

	if (shd_queue_register(q, &dk, err) < 0 || shd_queue_register(q, &sk, err) < 0 ||
	    shd_queue_add_periodic(q, SHD_BATCH_SWEEP_KIND, "@every 60s", SHD_BATCH_SWEEP_KIND,
				   "{}", err) < 0)
		return -err->code;
	return 0;
}
