/*
 * An approver's modification of a request's spec: the preview (the unified diff of the
 * requested spec's YAML against the new one, the warnings and the new plan hash) and the
 * modification itself, a full replacement stored on the ticket. A modification voids earlier
 * approvals; an approved ticket whose execution has not started has that execution cancelled
 * and goes back to PENDING_APPROVAL, so it needs approving again.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "approvals-internal.h"
#include "db.h"
#include "diff.h"
#include "error.h"
#include "exec.h"
#include "fsm.h"
#include "gov.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"
#include "yaml.h"

#define DIFF_MAX (4u * 1024 * 1024)
#define DIFF_CONTEXT 3
#define REMOVED_WARN 5 /* removing this many top-level fields or more is warned about */

struct modification {
	json_t *spec; /* borrowed from the body */
	const char *cluster, *reason;
	int removed;
	json_t *warnings; /* owned */
	char hash[SHP_SHA256_HEX_LEN + 1];
	char cluster_used[64]; /* the cluster of hash, "" when none is known */
	int64_t cluster_id;    /* set when the body names one */
};

static void modification_release(struct modification *m)
{
	json_decref(m->warnings);
	m->warnings = NULL;
}

/* The top-level fields of the request the new spec drops, as "a, b, c". */
static char *removed_names(const json_t *requested, const json_t *spec)
{
	struct shp_buf b = SHP_BUF_INIT(4096);
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)requested, key, v)
	{
		if (json_object_get(spec, key))
			continue;
		if ((b.len && shp_buf_add(&b, ", ") < 0) || shp_buf_add(&b, key) < 0)
			break;
	}
	return shp_buf_detach(&b, NULL);
}

/*
 * The checks a preview and a modification share: only VM specs change; the replacement rules
 * against the request, then the spec's own validation; the warning; the new plan's hash when a
 * cluster is known (the plan also proves the template version and size still exist).
 */
static int check_spec(PGconn *conn, const struct approval_ticket *t, struct modification *m,
		      struct shp_error *err)
{
	const char *cluster;
	struct approval_cluster c __attribute__((cleanup(approval_cluster_release))) = {0};

	if (t->type != SHD_REQ_CREATE_VM && t->type != SHD_REQ_MODIFY_VM) {
		shp_error_set(err, SHP_E_INVAL, "a %s request has no spec to modify", t->type_name);
		shp_error_detail(err, "type", "%s", t->type_name);
		return -SHP_E_INVAL;
	}
	/* the replacement rules first: a removed required field is named as such */
	if (shd_spec_check_modification(t->requested, m->spec, &m->removed, err) < 0 ||
	    shd_spec_validate(m->spec, err) < 0)
		return -err->code;
	m->warnings = json_array();
	if (m->removed >= REMOVED_WARN) {
		_cleanup_free_ char *names = removed_names(t->requested, m->spec);

		(void)json_array_append_new(
			m->warnings,
			json_sprintf("%d top-level fields of the request are removed (%s)",
				     m->removed, names ? names : "?"));
	}
	if (m->cluster) {
		if (approval_cluster_load(conn, m->cluster, &c, err) < 0)
			return -err->code;
		m->cluster_id = c.id;
	}
	cluster = approval_cluster_choice(t, m->spec, m->cluster);
	if (!cluster)
		return 0;
	(void)snprintf(m->cluster_used, sizeof(m->cluster_used), "%s", cluster);
	return approval_plan(conn, t, m->spec, cluster, m->hash, NULL, err);
}

static int parse_modification(struct shd_req *req, bool with_reason, json_t **ret_body,
			      struct modification *m, struct shp_error *err)
{
	static const char *const preview_fields[] = {"spec", "cluster", NULL};
	static const char *const put_fields[] = {"spec", "cluster", "reason", NULL};
	json_t *body = shd_req_json_object(req, with_reason ? put_fields : preview_fields, err);

	*ret_body = body;
	if (!body || shp_json_get_object(body, "spec", true, &m->spec, err) < 0 ||
	    shp_json_get_string(body, "cluster", false, SHP_API_NAME_MAX, &m->cluster, err) < 0 ||
	    shp_json_get_string(body, "reason", with_reason, APPROVAL_REASON_MAX, &m->reason, err) <
		    0)
		return -err->code;
	if (!with_reason)
		return 0;
	if (shd_validate_text("reason", m->reason, APPROVAL_REASON_MAX, err) < 0)
		return -err->code;
	if (!*m->reason) {
		shp_error_set(err, SHP_E_INVAL, "a modification needs a reason");
		shp_error_detail(err, "field", "reason");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* The unified diff of the requested spec's YAML against spec's. */
static json_t *spec_diff(const json_t *requested, const json_t *spec, struct shp_error *err)
{
	struct shp_buf a __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(DIFF_MAX);
	struct shp_buf b __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(DIFF_MAX);
	struct shp_buf d __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(DIFF_MAX);

	if (shp_json_to_yaml(requested, &a, err) < 0 || shp_json_to_yaml(spec, &b, err) < 0 ||
	    shp_diff_unified(a.buf, a.len, b.buf, b.len, "requested", "modified", DIFF_CONTEXT, &d,
			     err) < 0)
		return NULL;
	return json_stringn(d.buf, d.len);
}

static void log_warnings(const struct approval_ticket *t, const struct modification *m)
{
	size_t i;
	json_t *w;

	json_array_foreach(m->warnings, i, w)
		log_warn("ticket %" PRId64 ": %s", t->id, json_string_value(w));
}

int shd_api_approvals_preview(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	struct modification m __attribute__((cleanup(modification_release))) = {0};
	json_auto_t *body = NULL;
	json_t *diff;

	if (approval_ticket_for_approver(req, &t, err) < 0 ||
	    parse_modification(req, false, &body, &m, err) < 0 ||
	    check_spec(req->db, &t, &m, err) < 0)
		return -err->code;
	diff = spec_diff(t.requested, m.spec, err);
	if (!diff)
		return -err->code;
	log_warnings(&t, &m);
	return shd_resp_json_take(
		resp, 200,
		json_pack("{s:I,s:o,s:O,s:i,s:o,s:o}", "ticket_id", (json_int_t)t.id, "diff", diff,
			  "warnings", m.warnings, "removed_fields", m.removed, "plan_hash",
			  m.hash[0] ? json_string(m.hash) : json_null(), "cluster",
			  m.cluster_used[0] ? json_string(m.cluster_used) : json_null()));
}

/* ---- the modification ---------------------------------------------------------------------- */

/* An approved ticket can go back only while its execution has not started. */
static int detach_pending_execution(PGconn *conn, const struct approval_ticket *t,
				    struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char xid[24];

	if (t->execution_id == 0)
		return 0;
	(void)snprintf(xid, sizeof(xid), "%" PRId64, t->execution_id);
	res = shd_db_exec(conn,
			  "SELECT status = 'pending' AND cancelled_at IS NULL FROM executions"
			  " WHERE id = $1 FOR UPDATE",
			  1, (const char *[]){xid}, err);
	if (!res)
		return -err->code;
	/*
	 * The execution no longer carries out this request: detached from the event, its end
	 * (the cancellation below) runs no governance hook, so the request stays open for the
	 * re-approval.
	 */
	if (PQntuples(res) == 0 || shd_db_value(res, 0, 0)[0] == 't')
		return shd_db_command(conn, "UPDATE executions SET event_id = NULL WHERE id = $1",
				      1, (const char *[]){xid}, err);
	shp_error_set(err, SHP_E_CONFLICT,
		      "task %s of ticket %" PRId64 " has started: the spec can no longer change",
		      xid, t->id);
	shp_error_api_code(err, "ILLEGAL_TRANSITION");
	shp_error_detail(err, "task_id", "%s", xid);
	return -SHP_E_CONFLICT;
}

static int store_modification(struct shd_req *req, const struct approval_ticket *t,
			      const struct modification *m, struct shp_error *err)
{
	_cleanup_free_ char *spec = json_dumps(m->spec, JSON_COMPACT);
	char ids[24], cid[24];

	if (!spec)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(ids, sizeof(ids), "%" PRId64, t->id);
	(void)snprintf(cid, sizeof(cid), "%" PRId64, m->cluster_id);
	return shd_db_command(
		req->db,
		"UPDATE approval_tickets SET modified_spec = $2::jsonb, modification_reason = $3,"
		" modified_by = $4, modified_at = clock_timestamp(), plan_hash = $5,"
		" cluster_id = CASE WHEN $6::bigint > 0 THEN $6::bigint ELSE cluster_id END,"
		" status = 'PENDING_APPROVAL', approved_plan_hash = NULL, execution_id = NULL,"
		" decided_at = NULL, updated_at = now() WHERE id = $1",
		6,
		(const char *[]){ids, spec, m->reason, req->ident.name, m->hash[0] ? m->hash : NULL,
				 cid},
		err);
}

static int notify_requester(PGconn *conn, const struct approval_ticket *t, const char *by,
			    const char *reason, struct shp_error *err)
{
	struct shd_notification n = {
		.type = "APPROVAL_MODIFIED", .body = reason, .ticket_id = t->id};
	char title[160];

	if (t->requester_id <= 0)
		return 0;
	(void)snprintf(title, sizeof(title), "Request %" PRId64 " (%s %s) modified by %s",
		       t->event_id, t->type_name, t->target, by);
	n.title = title;
	return shd_notify_sender()->to_user(conn, t->requester_id, &n, err);
}

/* Inside the transaction: lock, check the state, store, void approvals, audit. */
static int modify_in_tx(struct shd_req *req, int64_t id, struct modification *m,
			int64_t *ret_cancel, int *ret_voided, struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	json_auto_t *details = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	/* the ticket's execution before the ticket: the order a starting worker takes them in */
	if (shd_db_command(req->db,
			   "SELECT 1 FROM executions WHERE id ="
			   " (SELECT execution_id FROM approval_tickets WHERE id = $1) FOR UPDATE",
			   1, (const char *[]){ids}, err) < 0)
		return -err->code;
	if (approval_ticket_load(req->db, ids, req->ident.user_id, true, &t, err) < 0)
		return -err->code;
	if (strcmp(t.status, "PENDING_APPROVAL") != 0 &&
	    (shd_fsm_check(&shd_fsm_ticket, t.status, "PENDING_APPROVAL", err) < 0 ||
	     detach_pending_execution(req->db, &t, err) < 0))
		return -err->code;
	*ret_cancel = t.execution_id;
	if (store_modification(req, &t, m, err) < 0 ||
	    approval_invalidate(req->db, t.id, ret_voided, err) < 0)
		return -err->code;
	details = json_pack("{s:s,s:s,s:i,s:O,s:s}", "reason", m->reason, "previous_status",
			    t.status, "removed_fields", m->removed, "warnings", m->warnings,
			    "plan_hash", m->hash);
	if (approval_audit(req->db, req, "APPROVAL_MODIFIED", &t, details, err) < 0)
		return -err->code;
	if (*ret_voided > 0 || t.execution_id) {
		json_decref(details);
		details = json_pack("{s:i,s:s}", "invalidated", *ret_voided, "cause",
				    "spec modified");
		if (t.execution_id)
			(void)json_object_set_new(details, "cancelled_task_id",
						  json_integer(t.execution_id));
		if (approval_audit(req->db, req, "APPROVAL_INVALIDATED", &t, details, err) < 0)
			return -err->code;
	}
	return notify_requester(req->db, &t, req->ident.name, m->reason, err);
}

int shd_api_approvals_modify(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct approval_ticket t __attribute__((cleanup(approval_ticket_release))) = {0};
	struct modification m __attribute__((cleanup(modification_release))) = {0};
	struct shp_error e2 = SHP_ERROR_INIT;
	json_auto_t *body = NULL;
	int64_t cancel = 0;
	int voided = 0;

	if (approval_ticket_for_approver(req, &t, err) < 0 ||
	    parse_modification(req, true, &body, &m, err) < 0 ||
	    check_spec(req->db, &t, &m, err) < 0 || shd_db_begin(req->db, err) < 0)
		return -err->code;
	if (modify_in_tx(req, t.id, &m, &cancel, &voided, err) < 0 ||
	    shd_db_commit(req->db, err) < 0) {
		shd_db_rollback(req->db);
		return -err->code;
	}
	log_warnings(&t, &m);
	/*
	 * The approved execution no longer belongs to the ticket (its execution_id is cleared
	 * and approved_plan_hash voided): cancel it before it starts. It was pending when the
	 * ticket was locked; should a worker have claimed it since, it stops between steps.
	 */
	if (cancel &&
	    shd_exec_cancel(req->d->exec, req->db, cancel, req->ident.name,
			    "the approved spec was modified: it needs approving again", &e2) < 0)
		log_error("ticket %" PRId64 ": cancelling task %" PRId64 " failed: %s", t.id,
			  cancel, e2.msg);
	return shd_resp_json_take(resp, 200,
				  json_pack("{s:I,s:I,s:s,s:o,s:i,s:O,s:i,s:o}", "ticket_id",
					    (json_int_t)t.id, "request_id", (json_int_t)t.event_id,
					    "status", "PENDING_APPROVAL", "plan_hash",
					    m.hash[0] ? json_string(m.hash) : json_null(),
					    "removed_fields", m.removed, "warnings", m.warnings,
					    "invalidated", voided, "cancelled_task_id",
					    cancel ? json_integer(cancel) : json_null()));
}
