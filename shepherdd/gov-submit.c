/*
 * Recording a governance request: the policy decides the level; one transaction writes the
 * domain event, the REQUEST_SUBMITTED audit row and then the ticket and its notifications
 * (review), the record itself (record-only types) or the execution (auto-executed types,
 * through shd_exec_submit's in_tx so event, audit and execution commit together).
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
#include "events.h"
#include "exec.h"
#include "gov-submit.h"
#include "json.h"
#include "log.h"
#include "plan.h"
#include "shepherdd.h"

/* What was recorded, for the answer. */
struct outcome {
	int64_t event_id, ticket_id, task_id;
	const char *status;
};

const char *shd_gov_env_name(int env)
{
	return env == 0 ? "test" : env == 1 ? "prod" : NULL;
}

int shd_gov_confirmation_required(struct shp_error *err, const char *param, const char *env,
				  const char *what)
{
	shp_error_set(err, SHP_E_INVAL, "%s needs confirmation: set '%s'", what, param);
	shp_error_api_code(err, "CONFIRMATION_REQUIRED");
	shp_error_detail(err, "parameter", "%s", param);
	if (env)
		shp_error_detail(err, "environment", "%s", env);
	return -SHP_E_INVAL;
}

void shd_gov_audit_violation(struct shd_req *req, const char *resource_type, const char *name,
			     const struct shp_error *refusal)
{
	struct shp_error e2 = SHP_ERROR_INIT;
	json_auto_t *details = json_pack("{s:s,s:s}", "code", shp_error_api_code_of(refusal),
					 "message", refusal->msg);

	shd_db_rollback(req->db);
	if (shd_audit_write(req->db, req, "RBAC_VIOLATION", resource_type, name, "denied", details,
			    &e2) < 0)
		log_warn("RBAC_VIOLATION by '%s' not audited: %s", req->ident.name, e2.msg);
}

/* REQUEST_SUBMITTED, in the recording transaction, naming request, ticket and task. */
static int audit_submitted(PGconn *conn, struct shd_req *req, const struct shd_gov_sub *sub,
			   const struct outcome *o, int level, struct shp_error *err)
{
	json_auto_t *d = json_pack("{s:I,s:s,s:s,s:i}", "request_id", (json_int_t)o->event_id,
				   "type", shd_req_type_to_string(sub->type), "target", sub->target,
				   "approval_level", level);

	if (!d)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)json_object_set_new(d, "ticket_id",
				  o->ticket_id ? json_integer(o->ticket_id) : json_null());
	if (o->task_id)
		(void)json_object_set_new(d, "task_id", json_integer(o->task_id));
	if (sub->system[0])
		(void)json_object_set_new(d, "system", json_string(sub->system));
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", sub->target);
	return shd_audit_write(conn, req, "REQUEST_SUBMITTED", "request", sub->target, "success", d,
			       err);
}

/* The event, PENDING; reserved is an id from shd_event_reserve_id or 0. */
static int create_event(PGconn *conn, struct shd_req *req, const struct shd_gov_sub *sub,
			int64_t reserved, int64_t *ret_id, struct shp_error *err)
{
	struct shd_event_new ev = {
		.type = shd_req_type_to_string(sub->type),
		.payload = sub->payload,
		.actor_id = req->ident.user_id,
		.actor = req->ident.name,
		.tenant = sub->system,
		.auto_approved = false, /* the execution carries it out, not an event job */
		.id = reserved,
	};

	return shd_event_create(conn, &ev, ret_id, NULL, err);
}

/* The ticket with the policy's decision; it expires after approvals.ttl. */
static int insert_ticket(PGconn *conn, struct shd_req *req, const struct shd_gov_sub *sub,
			 const struct shd_policy_decision *d, struct outcome *o,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ev[24], uid[24], vm[24], lv[8], ap[8], ttl[24];

	(void)snprintf(ev, sizeof(ev), "%" PRId64, o->event_id);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	(void)snprintf(vm, sizeof(vm), "%" PRId64, sub->vm_id);
	(void)snprintf(lv, sizeof(lv), "%d", d->level);
	(void)snprintf(ap, sizeof(ap), "%d", d->approvers_required);
	(void)snprintf(ttl, sizeof(ttl), "%d", req->d->cfg->approvals_ttl_s);
	res = shd_db_exec(
		conn,
		"INSERT INTO approval_tickets (event_id, request_type, requester_id, requester,"
		"   system, service, namespace, environment, target_name, vm_id, cluster_id,"
		"   approval_level, approvals_required, runbook_url, escalated, expires_at)"
		" VALUES ($1, $2::request_type, $3, $4, $5, $6, $7, $8::environment, $9, $10,"
		"   (SELECT id FROM clusters WHERE name = $11), $12, $13, $14, $15::boolean,"
		"   now() + make_interval(secs => $16::bigint)) RETURNING id",
		16,
		(const char *[]){ev, shd_req_type_to_string(sub->type),
				 req->ident.user_id > 0 ? uid : NULL, req->ident.name, sub->system,
				 sub->service, sub->ns, shd_gov_env_name(sub->env), sub->target,
				 sub->vm_id > 0 ? vm : NULL, sub->cluster, lv, ap, d->runbook_url,
				 d->escalated ? "true" : "false", ttl},
		err);
	if (!res) {
		if (err->code == SHP_E_CONFLICT) { /* the open-create index: a race lost */
			shp_error_set(err, SHP_E_CONFLICT,
				      "a VM named '%s' in namespace '%s' is already requested",
				      sub->target, sub->ns);
			shp_error_api_code(err, "NAME_TAKEN");
		}
		return -err->code;
	}
	o->ticket_id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	return 0;
}

/* APPROVAL_PENDING to the approvers of the request's environment, with the runbook. */
static int notify_approvers(PGconn *conn, struct shd_req *req, const struct shd_gov_sub *sub,
			    const struct shd_policy_decision *d, const struct outcome *o,
			    struct shp_error *err)
{
	char title[256], body[512];
	json_auto_t *data = json_pack(
		"{s:I,s:I,s:s,s:s,s:s}", "request_id", (json_int_t)o->event_id, "ticket_id",
		(json_int_t)o->ticket_id, "type", shd_req_type_to_string(sub->type), "target",
		sub->target, "requester", req->ident.name);
	struct shd_notification n = {.type = "APPROVAL_PENDING",
				     .title = title,
				     .body = body,
				     .data = data,
				     .ticket_id = o->ticket_id};

	(void)snprintf(title, sizeof(title), "%s '%s'%s%s waits for approval",
		       shd_req_type_to_string(sub->type), sub->target, sub->ns[0] ? " in " : "",
		       sub->ns);
	(void)snprintf(body, sizeof(body), "requested by %.128s (level %d%s)%s%.300s",
		       req->ident.name, d->level, d->escalated ? ", escalated" : "",
		       d->runbook_url[0] ? "; runbook: " : "", d->runbook_url);
	/* a request without an environment (systems, services) goes to every approver */
	return shd_notify_sender()->to_approvers(conn, sub->env, &n, err);
}

/* Level 2-3: event PENDING, ticket, audit, notifications, in one transaction. */
static int record_ticket(struct shd_req *req, const struct shd_gov_sub *sub,
			 const struct shd_policy_decision *d, struct outcome *o,
			 struct shp_error *err)
{
	PGconn *conn = req->db;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (create_event(conn, req, sub, 0, &o->event_id, err) < 0 ||
	    insert_ticket(conn, req, sub, d, o, err) < 0 ||
	    audit_submitted(conn, req, sub, o, d->level, err) < 0 ||
	    notify_approvers(conn, req, sub, d, o, err) < 0 || shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	o->status = "PENDING_APPROVAL";
	return 0;
}

/* Record-only types at level 0-1: carried out with the event, which ends COMPLETED. */
static int record_only(struct shd_req *req, const struct shd_gov_sub *sub, int level,
		       struct outcome *o, struct shp_error *err)
{
	PGconn *conn = req->db;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (create_event(conn, req, sub, 0, &o->event_id, err) < 0 ||
	    shd_gov_record(conn, sub->type, sub->payload, req->ident.user_id, req->ident.name,
			   err) < 0 ||
	    shd_event_transition(conn, o->event_id, "PROCESSING", NULL, err) < 0 ||
	    shd_event_transition(conn, o->event_id, "COMPLETED", NULL, err) < 0 ||
	    audit_submitted(conn, req, sub, o, level, err) < 0 || shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	o->status = "COMPLETED";
	return 0;
}

struct exec_tx {
	struct shd_req *req;
	const struct shd_gov_sub *sub;
	struct outcome *o;
	int level;
};

/* Inside the execution's transaction: the event (reserved id), PROCESSING, the audit row. */
static int exec_in_tx(PGconn *conn, int64_t id, void *arg, struct shp_error *err)
{
	struct exec_tx *x = arg;
	int64_t ev = 0;

	x->o->task_id = id;
	if (create_event(conn, x->req, x->sub, x->o->event_id, &ev, err) < 0 ||
	    shd_event_transition(conn, ev, "PROCESSING", NULL, err) < 0)
		return -err->code;
	return audit_submitted(conn, x->req, x->sub, x->o, x->level, err);
}

/*
 * The policy approved this very plan when it let the request run without review: its hash
 * binds the execution as an approver's would (and stands in for the engine's level checks).
 */
static int policy_approval(const json_t *plan, char hash[SHP_SHA256_HEX_LEN + 1],
			   struct shp_error *err)
{
	return shd_plan_hash(plan, hash, err);
}

/* Level 0-1 of a type that runs on a cluster: the event and its execution together. */
static int record_execution(struct shd_req *req, const struct shd_gov_sub *sub, int level,
			    struct outcome *o, struct shp_error *err)
{
	json_auto_t *plan = NULL;
	struct exec_tx x = {.req = req, .sub = sub, .o = o, .level = level};
	struct shd_exec_submit s = {0};
	struct shd_exec_submitted out = {0};
	char worker[64], hash[SHP_SHA256_HEX_LEN + 1];

	if (!sub->cluster || !sub->cluster[0]) {
		shp_error_set(err, SHP_E_INVAL,
			      "%s runs without review in %s, so it needs a cluster: name one in "
			      "'cluster' (or have the policy require an approval, whose approver "
			      "picks it)",
			      shd_req_type_to_string(sub->type),
			      shd_gov_env_name(sub->env) ? shd_gov_env_name(sub->env) : "any");
		shp_error_detail(err, "field", "cluster");
		return -SHP_E_INVAL;
	}
	plan = sub->plan(req->db, sub, err);
	if (!plan || policy_approval(plan, hash, err) < 0 ||
	    shd_event_reserve_id(req->db, &o->event_id, err) < 0)
		return -err->code;
	s.tenant = sub->system;
	s.plan = plan;
	s.sla = SHD_SLA_MEDIUM;
	s.priority = 50;
	s.confirm = true; /* the policy decided (and level 1 was confirmed) */
	/* an accepted request waits its turn behind another one on the same VM */
	s.wait_lock = true;
	s.actor_id = req->ident.user_id;
	s.actor = req->ident.name;
	s.actor_is_admin = req->ident.is_admin;
	s.request_id = req->request_id;
	s.event_id = o->event_id;
	s.approved_plan_hash = hash;
	s.in_tx = exec_in_tx;
	s.in_tx_arg = &x;
	if (shd_exec_submit(req->d->exec, req->db, &s, &out, err) < 0)
		return -err->code;
	o->task_id = out.id;
	o->status = "PROCESSING";
	if (out.immediate && !out.duplicate) {
		(void)snprintf(worker, sizeof(worker), "inline/%ld/%s", (long)getpid(),
			       req->request_id);
		(void)shd_exec_run(req->d->exec, req->db, out.id, NULL, worker);
	}
	return 0;
}

/* 202 with the request's summary (docs/internals/governance.md, step 2). */
static int answer(struct shd_resp *resp, const struct shd_gov_sub *sub, int level,
		  const struct outcome *o)
{
	char url[64];
	json_t *j;

	(void)snprintf(url, sizeof(url), SHP_API_PREFIX "/requests/%" PRId64, o->event_id);
	j = json_pack("{s:I,s:s,s:s,s:o,s:i,s:o,s:s}", "request_id", (json_int_t)o->event_id,
		      "type", shd_req_type_to_string(sub->type), "status", o->status, "ticket_id",
		      o->ticket_id ? json_integer(o->ticket_id) : json_null(), "approval_level",
		      level, "task_id", o->task_id ? json_integer(o->task_id) : json_null(),
		      "status_url", url);
	return shd_resp_json_take(resp, 202, j);
}

int shd_gov_submit(struct shd_req *req, struct shd_resp *resp, const struct shd_gov_sub *sub,
		   struct shp_error *err)
{
	_cleanup_free_ struct shd_policy *rows = NULL;
	struct shd_policy_decision d;
	struct outcome o = {0};
	size_t n = 0;
	int r;

	if (shd_policy_load(req->db, &rows, &n, err) < 0 ||
	    shd_policy_match(rows, n, sub->type, sub->env, sub->add_cpus, sub->add_memory_mib, &d,
			     err) < 0)
		return -err->code;
	if (d.level == 1 && !sub->confirm)
		return shd_gov_confirmation_required(err, "confirm", shd_gov_env_name(sub->env),
						     shd_req_type_to_string(sub->type));
	if (d.level >= 2)
		r = record_ticket(req, sub, &d, &o, err);
	else if (shd_req_type_record_only(sub->type))
		r = record_only(req, sub, d.level, &o, err);
	else
		r = record_execution(req, sub, d.level, &o, err);
	if (r < 0)
		return r;
	return answer(resp, sub, d.level, &o);
}
