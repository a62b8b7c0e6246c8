/*
 * The execution side of governance requests: the engine's hooks carry a request's ticket and
 * event along with its execution (on_start in the transaction that starts it, on_finish in the
 * one that ends it: the VM row and its revision, the ticket, the event, the audit trail and the
 * requester's notification), and two periodic jobs: gov.sync repeats on_finish where a hook
 * failed, gov.expire ends tickets nobody decided in time.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "db.h"
#include "error.h"
#include "events.h"
#include "exec.h"
#include "fsm.h"
#include "gov-finish.h"
#include "gov.h"
#include "log.h"
#include "queue.h"
#include "shepherdd.h"
#include "util.h"

#define SWEEP_MAX 100 /* requests one pass of a periodic job looks at */
/* a batch's children ending within this long of each other share one notification per outcome */
#define BATCH_TELL_WINDOW_S 86400

/* One governance request as the hooks see it. */
struct greq {
	PGconn *conn;
	int64_t execution_id; /* 0 = none (an expired ticket) */
	int64_t event_id;
	int64_t ticket_id; /* 0 = the request has no ticket */
	int64_t batch_id;  /* the ticket's parent batch, 0 = none */
	char exec_ids[24], event_ids[24], ticket_ids[24];
	char type[64];
	char event_status[16];
	char ticket_status[24];
	int64_t requester_id; /* 0 = unknown (a deleted user) */
	char requester[160];
	char plan_hash[SHP_SHA256_HEX_LEN + 1]; /* "" = none */
	char target[160];                       /* "namespace/name", "" if none */
	bool record_only; /* the execution path was off: nothing ran on the cluster */
	json_t *payload;  /* owned */
	json_t *modified; /* owned; NULL = no modification */
};

static void greq_release(struct greq *g)
{
	json_decref(g->payload);
	json_decref(g->modified);
	g->payload = g->modified = NULL;
}

static void set_id(char *out, size_t size, int64_t id)
{
	(void)snprintf(out, size, "%" PRId64, id);
}

static int64_t id_of(const PGresult *res, int row, int col)
{
	const char *v = shd_db_value(res, row, col);

	return v ? strtoll(v, NULL, 10) : 0;
}

/* The event (locked) and the execution's plan: type, status, requester, target, plan hash. */
static int load_event(struct greq *g, struct shp_error *err)
{
	static const char sql[] =
		"SELECT e.type, e.status, e.payload, e.actor_id, e.actor, x.plan_hash,"
		"  coalesce(x.plan_snapshot #>> '{steps,0,params,namespace}' || '/'"
		"   || (x.plan_snapshot #>> '{steps,0,params,name}'), ''), x.record_only"
		" FROM domain_events e LEFT JOIN executions x ON x.id = $2::bigint"
		" WHERE e.id = $1 FOR UPDATE OF e";
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(g->conn, sql, 2,
			  (const char *[]){g->event_ids, g->execution_id ? g->exec_ids : NULL},
			  err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "request %s not found", g->event_ids);
	(void)snprintf(g->type, sizeof(g->type), "%s", shd_db_value(res, 0, 0));
	(void)snprintf(g->event_status, sizeof(g->event_status), "%s", shd_db_value(res, 0, 1));
	g->payload = json_loads(shd_db_value(res, 0, 2), 0, NULL);
	g->requester_id = id_of(res, 0, 3);
	(void)snprintf(g->requester, sizeof(g->requester), "%s", shd_db_value(res, 0, 4));
	(void)snprintf(g->plan_hash, sizeof(g->plan_hash), "%s",
		       shd_db_value(res, 0, 5) ? shd_db_value(res, 0, 5) : "");
	(void)snprintf(g->target, sizeof(g->target), "%s", shd_db_value(res, 0, 6));
	g->record_only = shp_streq(shd_db_value(res, 0, 7), "t");
	if (!g->payload)
		return shp_error_set(err, SHP_E_INTERNAL, "request %s has no readable payload",
				     g->event_ids);
	return 0;
}

/* The event's ticket, if any (locked): the requester it names wins over the event's actor. */
static int load_ticket(struct greq *g, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		g->conn,
		"SELECT id, status, requester_id, requester, modified_spec, namespace || '/' ||"
		" target_name, parent_ticket_id FROM approval_tickets WHERE event_id = $1 FOR "
		"UPDATE",
		1, (const char *[]){g->event_ids}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return 0;
	g->ticket_id = id_of(res, 0, 0);
	set_id(g->ticket_ids, sizeof(g->ticket_ids), g->ticket_id);
	(void)snprintf(g->ticket_status, sizeof(g->ticket_status), "%s", shd_db_value(res, 0, 1));
	g->requester_id = id_of(res, 0, 2);
	(void)snprintf(g->requester, sizeof(g->requester), "%s", shd_db_value(res, 0, 3));
	if (!PQgetisnull(res, 0, 4))
		g->modified = json_loads(shd_db_value(res, 0, 4), 0, NULL);
	if (!g->target[0] && strcmp(shd_db_value(res, 0, 5), "/") != 0)
		(void)snprintf(g->target, sizeof(g->target), "%s", shd_db_value(res, 0, 5));
	g->batch_id = id_of(res, 0, 6);
	return 0;
}

static int load(struct greq *g, PGconn *conn, int64_t execution_id, int64_t event_id,
		struct shp_error *err)
{
	g->conn = conn;
	g->execution_id = execution_id;
	g->event_id = event_id;
	set_id(g->exec_ids, sizeof(g->exec_ids), execution_id);
	set_id(g->event_ids, sizeof(g->event_ids), event_id);
	if (load_event(g, err) < 0 || load_ticket(g, err) < 0)
		return -err->code;
	return 0;
}

/* Nothing left to do: the event is final and so is its ticket, if it has one. */
static bool settled(const struct greq *g)
{
	return shd_fsm_is_terminal(&shd_fsm_event, g->event_status) &&
	       (!g->ticket_id || shd_fsm_is_terminal(&shd_fsm_ticket, g->ticket_status));
}

/* Move the ticket (FSM-checked); the error code and message are kept with a failure. */
static int ticket_to(struct greq *g, const char *to, const char *code, const char *error,
		     struct shp_error *err)
{
	static const char sql[] =
		"UPDATE approval_tickets SET status = $2::ticket_status,"
		" execution_id = coalesce($3::bigint, execution_id),"
		" error_code = coalesce($4, error_code), error = coalesce(left($5, 4096), error),"
		" updated_at = now(), finished_at = CASE WHEN $2 IN ('COMPLETED', 'FAILED',"
		"  'CANCELLED', 'EXPIRED') THEN now() ELSE finished_at END"
		" WHERE id = $1";

	if (!g->ticket_id || strcmp(g->ticket_status, to) == 0)
		return 0;
	if (shd_fsm_check(&shd_fsm_ticket, g->ticket_status, to, err) < 0)
		return shp_error_prefix(err, "ticket %s", g->ticket_ids);
	if (shd_db_command(g->conn, sql, 5,
			   (const char *[]){g->ticket_ids, to, g->execution_id ? g->exec_ids : NULL,
					    code, error},
			   err) < 0)
		return -err->code;
	(void)snprintf(g->ticket_status, sizeof(g->ticket_status), "%s", to);
	return 0;
}

static int event_to(struct greq *g, const char *to, const char *error, struct shp_error *err)
{
	if (shd_fsm_is_terminal(&shd_fsm_event, g->event_status))
		return 0;
	if (shd_event_transition(g->conn, g->event_id, to, error, err) < 0)
		return shp_error_prefix(err, "request %s", g->event_ids);
	(void)snprintf(g->event_status, sizeof(g->event_status), "%s", to);
	return 0;
}

/* An audit row of the daemon's, naming the ticket, the request, the execution and the plan. */
static int audit(struct greq *g, const char *action, const char *outcome, const char *code,
		 struct shp_error *err)
{
	json_auto_t *d = json_pack("{s:I,s:s}", "request_id", (json_int_t)g->event_id,
				   "request_type", g->type);

	if (!d)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (g->ticket_id)
		json_object_set_new(d, "ticket_id", json_integer(g->ticket_id));
	if (g->execution_id)
		json_object_set_new(d, "execution_id", json_integer(g->execution_id));
	if (g->plan_hash[0])
		json_object_set_new(d, "plan_hash", json_string(g->plan_hash));
	if (code)
		json_object_set_new(d, "error_code", json_string(code));
	if (g->record_only)
		json_object_set_new(d, "record_only", json_true());
	return shd_audit_write(g->conn, NULL, action, g->target[0] ? "vm" : "request",
			       g->target[0] ? g->target : g->event_ids, outcome, d, err);
}

/* A notification to the requester (none when the user is gone). */
static int tell(struct greq *g, const char *type, const char *what, const char *body,
		struct shp_error *err)
{
	json_auto_t *data = json_pack("{s:I,s:s}", "request_id", (json_int_t)g->event_id,
				      "request_type", g->type);
	struct shd_notification n = {.type = type, .body = body ? body : "", .data = data};
	char title[256], key[32];

	if (g->requester_id <= 0)
		return 0;
	if (!data)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (g->execution_id)
		json_object_set_new(data, "execution_id", json_integer(g->execution_id));
	if (g->target[0])
		json_object_set_new(data, "target", json_string(g->target));
	(void)snprintf(title, sizeof(title), "Request %s (%s%s%.160s) %s", g->event_ids, g->type,
		       g->target[0] ? " " : "", g->target, what);
	if (g->batch_id > 0) {
		/* a batch's children tell once per outcome and batch, not once each */
		(void)snprintf(key, sizeof(key), "batch:%" PRId64, g->batch_id);
		n.coalesce_key = key;
		n.coalesce_s = BATCH_TELL_WINDOW_S;
		json_object_set_new(data, "batch_id", json_integer(g->batch_id));
		(void)snprintf(title, sizeof(title),
			       "Batch %" PRId64 ": request %s (%s%s%.160s) %s", g->batch_id,
			       g->event_ids, g->type, g->target[0] ? " " : "", g->target, what);
	}
	n.title = title;
	n.ticket_id = g->ticket_id;
	return shd_notify_sender()->to_user(g->conn, g->requester_id, &n, err);
}

/* ---- the VM row --------------------------------------------------------------------------- */

/* The active row of the VM the plan's provision or update step made or changed. */
static int vm_of_plan(struct greq *g, const char *action, int64_t *ret_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		g->conn,
		"SELECT v.id FROM executions x, jsonb_array_elements(x.plan_snapshot -> 'steps') s,"
		"  clusters c, vms v"
		" WHERE x.id = $1 AND s ->> 'action' = $2 AND c.name = s #>> '{params,cluster}'"
		"   AND v.cluster_id = c.id AND v.namespace = s #>> '{params,namespace}'"
		"   AND v.name = s #>> '{params,name}' AND v.deleted_at IS NULL",
		2, (const char *[]){g->exec_ids, action}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_NOTFOUND,
				     "execution %s: no VM row for its %s step (%d rows)",
				     g->exec_ids, action, PQntuples(res));
	*ret_id = id_of(res, 0, 0);
	return 0;
}

static const char *spec_str(const json_t *spec, const char *key)
{
	const char *s = json_string_value(json_object_get(spec, key));

	return s ? s : "";
}

/* The spec a VM request asked for: the payload's "spec" member, or the payload itself. */
static const json_t *requested_spec(const json_t *payload)
{
	const json_t *spec = json_object_get(payload, "spec");

	return json_is_object(spec) ? spec : payload;
}

/* Ownership and the effective spec on the row, and its next revision. */
static int record_vm(struct greq *g, const char *action, struct shp_error *err)
{
	const json_t *spec = shd_spec_effective(requested_spec(g->payload), g->modified);
	const json_t *tv = json_object_get(spec, "template_version");
	_cleanup_free_ char *text = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
	struct shd_revision_new rev = {.spec = spec,
				       .ticket_id = g->ticket_id,
				       .event_id = g->event_id,
				       .execution_id = g->execution_id,
				       .plan_hash = g->plan_hash[0] ? g->plan_hash : NULL,
				       .actor = g->requester};
	char vm_ids[24], owner[24], version[16], tvs[16];
	int revision = 0;

	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	if (vm_of_plan(g, action, &rev.vm_id, err) < 0 ||
	    shd_revision_add(g->conn, &rev, &revision, err) < 0)
		return -err->code;
	set_id(vm_ids, sizeof(vm_ids), rev.vm_id);
	set_id(owner, sizeof(owner), g->requester_id);
	(void)snprintf(version, sizeof(version), "%d", revision);
	(void)snprintf(tvs, sizeof(tvs), "%" JSON_INTEGER_FORMAT, json_integer_value(tv));
	/* a modification keeps the owner; only a VM nobody owned (adopted) gets one */
	return shd_db_command(
		g->conn,
		"UPDATE vms SET system = $2, service = $3,"
		" owner_id = CASE WHEN $10::boolean THEN $4::bigint"
		"  ELSE coalesce(owner_id, $4::bigint) END,"
		" template = $5, template_version = $6::int, size = $7, spec = $8::jsonb,"
		" revision = $9::int, updated_at = now() WHERE id = $1",
		10,
		(const char *[]){vm_ids, spec_str(spec, "system"), spec_str(spec, "service"),
				 g->requester_id > 0 ? owner : NULL, spec_str(spec, "template"),
				 json_is_integer(tv) ? tvs : NULL, spec_str(spec, "size"), text,
				 version, strcmp(action, "vm.provision") == 0 ? "true" : "false"},
		err);
}

/* vm.delete soft-deletes the row; a row still active (an older delete step) is closed here. */
static int check_deleted(struct greq *g, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		g->conn,
		"UPDATE vms v SET deleted_at = now(), updated_at = now()"
		" FROM executions x, jsonb_array_elements(x.plan_snapshot -> 'steps') s, clusters c"
		" WHERE x.id = $1 AND s ->> 'action' = 'vm.delete'"
		"   AND c.name = s #>> '{params,cluster}' AND v.cluster_id = c.id"
		"   AND v.namespace = s #>> '{params,namespace}' AND v.name = s #>> '{params,name}'"
		"   AND v.deleted_at IS NULL RETURNING v.id",
		1, (const char *[]){g->exec_ids}, err);

	if (!res)
		return -err->code;
	if (PQntuples(res) > 0)
		log_warn("request %s: the row of VM '%s' was still active after its delete; "
			 "marked deleted",
			 g->event_ids, g->target);
	return 0;
}

/* ---- the hooks ------------------------------------------------------------------------------ */

int shd_gov_on_start(PGconn *conn, int64_t execution_id, int64_t event_id, void *arg,
		     struct shp_error *err)
{
	struct greq g __attribute__((cleanup(greq_release))) = {0};

	(void)arg;
	if (load(&g, conn, execution_id, event_id, err) < 0)
		return -err->code;
	if (strcmp(g.ticket_status, "APPROVED") == 0 &&
	    ticket_to(&g, "EXECUTING", NULL, NULL, err) < 0)
		return -err->code;
	return audit(&g, "EXECUTION_STARTED", "success", NULL, err);
}

/* What a succeeded request changes on the VM rows; record-only (the path is off) nothing. */
static int apply_vm(struct greq *g, struct shp_error *err)
{
	if (g->record_only)
		return 0;
	if (strcmp(g->type, "CREATE_VM") == 0)
		return record_vm(g, "vm.provision", err);
	if (strcmp(g->type, "MODIFY_VM") == 0)
		return record_vm(g, "vm.update", err);
	if (strcmp(g->type, "DELETE_VM") == 0)
		return check_deleted(g, err);
	return 0;
}

static int succeed(struct greq *g, struct shp_error *err)
{
	if (apply_vm(g, err) < 0)
		return -err->code;
	/* a ticket whose on_start was lost is still APPROVED: it executed all the same */
	if (strcmp(g->ticket_status, "APPROVED") == 0 &&
	    ticket_to(g, "EXECUTING", NULL, NULL, err) < 0)
		return -err->code;
	if (ticket_to(g, "COMPLETED", NULL, NULL, err) < 0 ||
	    event_to(g, "COMPLETED", NULL, err) < 0 ||
	    audit(g, "EXECUTION_COMPLETED", "success", NULL, err) < 0 ||
	    tell(g, g->ticket_id ? "APPROVAL_COMPLETED" : "REQUEST_COMPLETED", "completed", "",
		 err) < 0)
		return -err->code;
	return 0;
}

static int fail(struct greq *g, const char *status, const char *code, const char *error,
		struct shp_error *err)
{
	bool cancelled = strcmp(status, "cancelled") == 0;
	char what[96];

	if (!code)
		code = cancelled ? "CANCELLED" : "INTERNAL";
	(void)snprintf(what, sizeof(what), "%s (%s)", cancelled ? "was cancelled" : "failed", code);
	if (ticket_to(g, cancelled ? "CANCELLED" : "FAILED", code, error, err) < 0 ||
	    event_to(g, cancelled ? "CANCELLED" : "FAILED", error ? error : code, err) < 0 ||
	    audit(g, "EXECUTION_FAILED", "failed", code, err) < 0 ||
	    tell(g, cancelled ? "REQUEST_CANCELLED" : "REQUEST_FAILED", what, error, err) < 0)
		return -err->code;
	return 0;
}

int shd_gov_on_finish(PGconn *conn, int64_t execution_id, int64_t event_id, const char *status,
		      const char *error_code, const char *error, void *arg, struct shp_error *err)
{
	struct greq g __attribute__((cleanup(greq_release))) = {0};

	(void)arg;
	if (load(&g, conn, execution_id, event_id, err) < 0)
		return -err->code;
	if (settled(&g))
		return 0;
	if (strcmp(status, "succeeded") == 0)
		return succeed(&g, err);
	return fail(&g, status, error_code, error, err);
}

void shd_gov_set_hooks(struct shd_exec_engine *e)
{
	struct shd_exec_hooks h = {.on_start = shd_gov_on_start, .on_finish = shd_gov_on_finish};

	shd_exec_set_hooks(e, &h);
}

/* ---- gov.sync ------------------------------------------------------------------------------- */

/* on_finish again for one ended execution, under its row lock, in a transaction of its own. */
static int repair(PGconn *conn, const char *exec_ids, int64_t event_id, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	res = shd_db_exec(conn,
			  "SELECT status, error_code, error FROM executions WHERE id = $1"
			  " FOR UPDATE",
			  1, (const char *[]){exec_ids}, err);
	if (!res || PQntuples(res) == 0 ||
	    !shd_fsm_is_terminal(&shd_fsm_execution, shd_db_value(res, 0, 0))) {
		shd_db_rollback(conn);
		return res ? 0 : -err->code;
	}
	if (shd_gov_on_finish(conn, strtoll(exec_ids, NULL, 10), event_id, shd_db_value(res, 0, 0),
			      shd_db_value(res, 0, 1), shd_db_value(res, 0, 2), NULL, err) < 0 ||
	    shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	return 0;
}

/* Approved tickets that have no execution at all: the approval's transaction makes both. */
static void report_orphans(PGconn *conn)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		conn,
		"SELECT t.id, t.event_id FROM domain_events e"
		" JOIN approval_tickets t ON t.event_id = e.id"
		" WHERE e.status = 'PROCESSING' AND e.archived_at IS NULL AND t.status = 'APPROVED'"
		" AND NOT EXISTS (SELECT 1 FROM executions x WHERE x.event_id = t.event_id)"
		" ORDER BY t.id LIMIT 100", /* SWEEP_MAX */
		0, NULL, &err);

	if (!res) {
		log_warn("gov.sync: looking for approved tickets without an execution failed: %s",
			 err.msg);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++)
		log_warn("gov.sync: ticket %s (request %s) is APPROVED but has no execution",
			 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
}

int shd_gov_sync(PGconn *conn, int *ret_repaired, struct shp_error *err)
{
	/*
	 * The last execution of each request that is not final yet, if that execution ended. A
	 * ticket's event is PROCESSING from the approval until the hook ends both together, so
	 * the open events (an index of their own) are where to look.
	 */
	static const char sql[] =
		"SELECT id, event_id FROM (SELECT DISTINCT ON (x.event_id) x.id, x.event_id,"
		"   x.status FROM executions x WHERE x.event_id IN"
		"   (SELECT id FROM domain_events WHERE status IN ('PENDING', 'PROCESSING')"
		"     AND archived_at IS NULL)"
		"   ORDER BY x.event_id, x.id DESC) last"
		" WHERE status IN ('succeeded', 'failed', 'cancelled', 'rejected')"
		" ORDER BY id LIMIT 100"; /* SWEEP_MAX */
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, sql, 0, NULL, err);

	*ret_repaired = 0;
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		struct shp_error rerr = SHP_ERROR_INIT;
		if (repair(conn, PQgetvalue(res, i, 0), id_of(res, i, 1), &rerr) < 0) {
			log_error("gov.sync: execution %s (request %s): %s", PQgetvalue(res, i, 0),
				  PQgetvalue(res, i, 1), rerr.msg);
			continue;
		}
		(*ret_repaired)++;
	}
	report_orphans(conn);
	return 0;
}

/* ---- gov.expire ----------------------------------------------------------------------------- */

/* The ticket's request, locked, for an expiry: still pending and past its time, or nothing. */
static int load_expiring(struct greq *g, PGconn *conn, const char *ticket_ids, bool *ret_due,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn,
			    "SELECT event_id, status = 'PENDING_APPROVAL' AND expires_at < now()"
			    " FROM approval_tickets WHERE id = $1 FOR UPDATE",
			    1, (const char *[]){ticket_ids}, err);

	*ret_due = false;
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0 || shd_db_value(res, 0, 1)[0] != 't')
		return 0;
	*ret_due = true;
	return load(g, conn, 0, id_of(res, 0, 0), err);
}

static int expire_one(PGconn *conn, const char *ticket_ids, bool *ret_done, struct shp_error *err)
{
	struct greq g __attribute__((cleanup(greq_release))) = {0};

	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (load_expiring(&g, conn, ticket_ids, ret_done, err) < 0)
		goto fail;
	if (!*ret_done) {
		shd_db_rollback(conn); /* decided in the meantime */
		return 0;
	}
	if (ticket_to(&g, "EXPIRED", "EXPIRED", "nobody decided before it expired", err) < 0 ||
	    event_to(&g, "CANCELLED", "the approval expired", err) < 0 ||
	    audit(&g, "REQUEST_EXPIRED", "success", NULL, err) < 0 ||
	    tell(&g, "REQUEST_EXPIRED", "expired",
		 "Nobody decided on it before it expired; ask again if it is still needed.",
		 err) < 0 ||
	    shd_db_commit(conn, err) < 0)
		goto fail;
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

static int warn_one(PGconn *conn, const char *ticket_ids, bool *ret_done, struct shp_error *err)
{
	struct greq g __attribute__((cleanup(greq_release))) = {0};
	_cleanup_(PQclearp) PGresult *res =
		shd_db_exec(conn, "SELECT event_id FROM approval_tickets WHERE id = $1", 1,
			    (const char *[]){ticket_ids}, err);

	if (!res || PQntuples(res) == 0)
		return res ? 0 : -err->code;
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	if (load(&g, conn, 0, id_of(res, 0, 0), err) < 0 ||
	    tell(&g, "APPROVAL_EXPIRING", "expires within a day",
		 "It is still waiting for approval and expires within a day.", err) < 0 ||
	    shd_db_commit(conn, err) < 0) {
		shd_db_rollback(conn);
		return -err->code;
	}
	*ret_done = true;
	return 0;
}

/*
 * Run fn over the ticket ids a query selects, counting those it acted on (*done); failures are
 * logged and the others still run.
 */
static int each_ticket(PGconn *conn, const char *sql, const char *what,
		       int (*fn)(PGconn *, const char *, bool *, struct shp_error *),
		       int *ret_count, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, sql, 0, NULL, err);

	*ret_count = 0;
	if (!res)
		return -err->code;
	for (int i = 0; i < PQntuples(res); i++) {
		struct shp_error terr = SHP_ERROR_INIT;
		bool done = false;
		if (fn(conn, PQgetvalue(res, i, 0), &done, &terr) < 0)
			log_error("gov.expire: %s ticket %s: %s", what, PQgetvalue(res, i, 0),
				  terr.msg);
		else if (done)
			(*ret_count)++;
	}
	return 0;
}

int shd_gov_expire(PGconn *conn, int *ret_expired, int *ret_warned, struct shp_error *err)
{
	/* the warning is sent once: the inbox remembers it (the one sender in this version) */
	static const char warn_sql[] =
		"SELECT t.id FROM approval_tickets t WHERE t.status = 'PENDING_APPROVAL'"
		" AND t.expires_at >= now() AND t.expires_at < now() + interval '1 day'"
		" AND t.requester_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM notifications n"
		"  WHERE n.ticket_id = t.id AND n.type = 'APPROVAL_EXPIRING')"
		" ORDER BY t.expires_at LIMIT 100"; /* SWEEP_MAX */
	static const char expire_sql[] =
		"SELECT id FROM approval_tickets WHERE status = 'PENDING_APPROVAL'"
		" AND expires_at < now() ORDER BY expires_at LIMIT 100"; /* SWEEP_MAX */

	if (each_ticket(conn, expire_sql, "expiring", expire_one, ret_expired, err) < 0 ||
	    each_ticket(conn, warn_sql, "warning about", warn_one, ret_warned, err) < 0)
		return -err->code;
	return 0;
}

/* ---- the job kinds -------------------------------------------------------------------------- */

static enum shd_job_outcome sync_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int n = 0;

	(void)ctx;
	if (!conn || shd_gov_sync(conn, &n, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (n > 0)
		log_info("gov.sync: brought %d request(s) up to date with their execution", n);
	return SHD_JOB_DONE;
}

static enum shd_job_outcome expire_job(struct shd_job *job, void *ctx)
{
	struct shp_error err = SHP_ERROR_INIT;
	PGconn *conn = shd_job_conn(job, &err);
	int expired = 0, warned = 0;

	(void)ctx;
	if (!conn || shd_gov_expire(conn, &expired, &warned, &err) < 0)
		return shd_job_fail(job, "%s", err.msg);
	if (expired > 0 || warned > 0)
		log_info("gov.expire: %d ticket(s) expired, %d requester(s) warned", expired,
			 warned);
	return SHD_JOB_DONE;
}

int shd_gov_register(struct shd_queue *q, struct shp_error *err)
{
	struct shd_job_kind sk = {SHD_GOV_SYNC_KIND, sync_job, NULL, 60000};
	struct shd_job_kind ek = {SHD_GOV_EXPIRE_KIND, expire_job, NULL, 60000};

	if (shd_queue_register(q, &sk, err) < 0 || shd_queue_register(q, &ek, err) < 0 ||
	    shd_queue_add_periodic(q, SHD_GOV_SYNC_KIND, "@every 60s", SHD_GOV_SYNC_KIND, "{}",
				   err) < 0 ||
	    shd_queue_add_periodic(q, SHD_GOV_EXPIRE_KIND, "@every 60s", SHD_GOV_EXPIRE_KIND, "{}",
				   err) < 0)
		return -err->code;
	return 0;
}
