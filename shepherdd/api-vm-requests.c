/*
 * VM requests over HTTP: create (POST /vms), modify (PATCH /vms/{name}), delete and the power
 * operations. Each is checked as docs/internals/governance.md (step 1) says (the caller's
 * right on the VM's system, the spec against the catalogue, the delete confirmation of the
 * environment) and then recorded by shd_gov_submit. A VM is found by name, with ?namespace=
 * when the name is in several namespaces; one the caller may not see does not exist.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "gov-submit.h"
#include "json.h"
#include "shepherdd.h"
#include "util.h"

#define VM_MATCH_MAX 10 /* namespaces listed when a name is ambiguous */

/* A VM as the request handlers see it. */
struct vm_row {
	int64_t id;
	char ns[64], name[64], system[64], service[64], cluster[64];
	int env;
	char role[16]; /* the caller's role in the VM's system */
	bool cross;    /* operator or platform-admin of the VM's environment */
	json_t *spec;  /* owned, NULL when the VM has none */
	int cpus;      /* as last seen on the cluster */
	int64_t memory_mib;
};

static void vm_row_release(struct vm_row *v)
{
	json_decref(v->spec);
	v->spec = NULL;
}

/* The body's fields that may name a VM spec, plus "confirm" (and the delete's confirm_name). */
static void allowed_fields(const char **out, size_t size, const char *extra)
{
	size_t n = 0;

	for (size_t i = 0; shd_spec_fields[i] && n + 3 < size; i++)
		out[n++] = shd_spec_fields[i];
	out[n++] = "confirm";
	if (extra)
		out[n++] = extra;
	out[n] = NULL;
}

/* The index gov.h uses for an environment's name (0 test, 1 prod), -1 otherwise. */
static int env_index(const char *e)
{
	return e && strcmp(e, "test") == 0 ? 0 : e && strcmp(e, "prod") == 0 ? 1 : -1;
}

#define VM_SELECT                                                                                  \
	"SELECT v.id, v.namespace, v.name, v.system, v.service, c.name, n.environment::text,"      \
	"       user_system_role($1, v.system),"                                                   \
	"       n.environment = ANY (user_envs($1, '{platform-admin,operator}')),"                 \
	"       v.spec, v.cpus, v.memory_bytes / 1048576"                                          \
	"  FROM vms v JOIN namespaces n ON n.name = v.namespace"                                   \
	"  JOIN clusters c ON c.id = v.cluster_id"                                                 \
	" WHERE v.name = $2 AND ($3::text IS NULL OR v.namespace = $3) AND v.deleted_at IS NULL"

/* Row 0 of VM_SELECT into v; a spec that does not parse is treated as none. */
static void parse_vm(const PGresult *res, struct vm_row *v)
{
	const char *spec = shd_db_value(res, 0, 9);

	v->id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
	(void)snprintf(v->ns, sizeof(v->ns), "%s", shd_db_value(res, 0, 1));
	(void)snprintf(v->name, sizeof(v->name), "%s", shd_db_value(res, 0, 2));
	(void)snprintf(v->system, sizeof(v->system), "%s", shd_db_value(res, 0, 3));
	(void)snprintf(v->service, sizeof(v->service), "%s", shd_db_value(res, 0, 4));
	(void)snprintf(v->cluster, sizeof(v->cluster), "%s", shd_db_value(res, 0, 5));
	v->env = env_index(shd_db_value(res, 0, 6));
	(void)snprintf(v->role, sizeof(v->role), "%s", shd_db_value(res, 0, 7));
	v->cross = strcmp(shd_db_value(res, 0, 8), "t") == 0;
	v->spec = spec ? json_loads(spec, 0, NULL) : NULL;
	v->cpus = (int)strtol(shd_db_value(res, 0, 10), NULL, 10);
	v->memory_mib = strtoll(shd_db_value(res, 0, 11), NULL, 10);
}

/* A VM that exists but that the caller may not see: an attempt on another system's VM. */
static void audit_if_hidden(struct shd_req *req, const char *name, const char *ns,
			    const struct shp_error *refusal)
{
	struct shp_error e2 = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(
		req->db,
		"SELECT 1 FROM vms WHERE name = $1 AND ($2::text IS NULL OR namespace = $2)"
		"   AND deleted_at IS NULL LIMIT 1",
		2, (const char *[]){name, ns}, &e2);

	if (res && PQntuples(res) > 0)
		shd_gov_audit_violation(req, "vm", name, refusal);
}

/* 409 naming the namespaces where name is. */
static int ambiguous(const PGresult *res, const char *name, struct shp_error *err)
{
	struct shp_buf b __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(1024);

	for (int i = 0; i < PQntuples(res) && i < VM_MATCH_MAX; i++)
		if (shp_buf_addf(&b, "%s%s", i ? "," : "", shd_db_value(res, i, 1)) < 0)
			break;
	shp_error_set(err, SHP_E_CONFLICT,
		      "VM name '%s' is in several namespaces (%s): add ?namespace=", name, b.buf);
	shp_error_api_code(err, "AMBIGUOUS_NAME");
	shp_error_detail(err, "name", "%s", name);
	shp_error_detail(err, "namespaces", "%s", b.buf);
	return -SHP_E_CONFLICT;
}

/* The visible VM named name (in namespace ns, NULL = any). */
static int find_vm_named(struct shd_req *req, const char *name, const char *ns, struct vm_row *v,
			 struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%.100s", name);
	if (!shp_name_is_valid(name) || (ns && !shp_name_is_valid(ns)))
		return shp_error_set(err, SHP_E_NOTFOUND, "VM '%.63s' not found", name);
	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db,
			  VM_SELECT " AND vm_visible($1, v.system, n.environment)"
				    " ORDER BY v.namespace LIMIT 10",
			  3, (const char *[]){uid, name, ns}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) > 1)
		return ambiguous(res, name, err);
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "VM '%s' not found", name);
		audit_if_hidden(req, name, ns, err);
		return -SHP_E_NOTFOUND;
	}
	parse_vm(res, v);
	return 0;
}

/* The visible VM named by the path (and ?namespace=). */
static int find_vm(struct shd_req *req, struct vm_row *v, struct shp_error *err)
{
	return find_vm_named(req, req->params[0], shd_req_query(req, "namespace"), v, err);
}

/*
 * May the caller ask for this on the VM? Owners and members of its system; for power
 * operations also operators and platform admins of its environment; viewers never.
 */
static int may_request(struct shd_req *req, const struct vm_row *v, bool power,
		       struct shp_error *err)
{
	bool member = strcmp(v->role, "owner") == 0 || strcmp(v->role, "member") == 0;

	if (member || (power && v->cross))
		return 0;
	shp_error_set(err, SHP_E_PERM, "only %s of system '%s' may ask for this on VM '%s'",
		      power ? "owners, members, operators and platform admins"
			    : "owners and members",
		      v->system, v->name);
	shp_error_detail(err, "system", "%s", v->system);
	shp_error_detail(err, "vm", "%s", v->name);
	if (!v->role[0])
		shd_gov_audit_violation(req, "vm", v->name, err);
	return -SHP_E_PERM;
}

/* The VM as a request's payload names it. */
static json_t *vm_json(const struct vm_row *v)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)v->id, "namespace", v->ns,
			 "name", v->name, "system", v->system, "service", v->service, "cluster",
			 v->cluster);
}

/* The submission of a request about VM v (sub's other fields are set by the caller). */
static void sub_for_vm(struct shd_gov_sub *sub, const struct vm_row *v)
{
	sub->system = v->system;
	sub->service = v->service;
	sub->ns = v->ns;
	sub->env = v->env;
	sub->target = v->name;
	sub->vm_id = v->id;
	sub->cluster = v->cluster;
}

/* The plan of an automatic request: what the payload asks, on the VM's or the named cluster. */
static json_t *plan_of(PGconn *conn, const struct shd_gov_sub *sub, struct shp_error *err)
{
	const json_t *spec = json_object_get(sub->payload, "spec");
	const json_t *vm = json_object_get(sub->payload, "vm");

	return shd_gov_plan(conn, sub->type, spec, vm, sub->cluster, err);
}

/* The optional body of a delete or power request; "confirm" also as a query parameter. */
static int optional_body(struct shd_req *req, const char *const *allowed, json_t **ret,
			 bool *ret_confirm, struct shp_error *err)
{
	const char *q = shd_req_query(req, "confirm");
	bool confirm = false;

	*ret = NULL;
	if (req->body.len > 0) {
		*ret = shd_req_json_object(req, allowed, err);
		if (!*ret || shp_json_get_bool(*ret, "confirm", false, &confirm, err) < 0)
			return -err->code;
	}
	if (q && strcmp(q, "true") != 0 && strcmp(q, "false") != 0) {
		shp_error_set(err, SHP_E_INVAL, "query parameter 'confirm' must be true or false");
		shp_error_detail(err, "field", "confirm");
		return -SHP_E_INVAL;
	}
	*ret_confirm = confirm || (q && strcmp(q, "true") == 0);
	return 0;
}

/* START_VM, STOP_VM, RESTART_VM: the VM is the whole request; the policy does the rest. */
static int power(struct shd_req *req, struct shd_resp *resp, enum shd_req_type type,
		 struct shp_error *err)
{
	static const char *const allowed[] = {"confirm", NULL};
	struct vm_row v __attribute__((cleanup(vm_row_release))) = {0};
	json_auto_t *body = NULL, *payload = NULL;
	struct shd_gov_sub sub = {.type = type, .plan = plan_of};

	if (optional_body(req, allowed, &body, &sub.confirm, err) < 0 ||
	    find_vm(req, &v, err) < 0 || may_request(req, &v, true, err) < 0)
		return -err->code;
	payload = json_pack("{s:o}", "vm", vm_json(&v));
	sub_for_vm(&sub, &v);
	sub.payload = payload;
	return shd_gov_submit(req, resp, &sub, err);
}

void shd_vm_prepared_release(struct shd_vm_prepared *p)
{
	json_decref(p->spec);
	json_decref(p->payload);
	p->spec = p->payload = NULL;
}

int shd_vm_power_prepare(struct shd_req *req, enum shd_req_type type, const char *ns,
			 const char *name, struct shd_vm_prepared *p, struct shp_error *err)
{
	struct vm_row v __attribute__((cleanup(vm_row_release))) = {0};

	if (find_vm_named(req, name, ns, &v, err) < 0 || may_request(req, &v, true, err) < 0)
		return -err->code;
	(void)snprintf(p->system, sizeof(p->system), "%s", v.system);
	(void)snprintf(p->service, sizeof(p->service), "%s", v.service);
	(void)snprintf(p->ns, sizeof(p->ns), "%s", v.ns);
	(void)snprintf(p->name, sizeof(p->name), "%s", v.name);
	(void)snprintf(p->cluster, sizeof(p->cluster), "%s", v.cluster);
	p->payload = json_pack("{s:o}", "vm", vm_json(&v));
	p->sub = (struct shd_gov_sub){.type = type,
				      .plan = plan_of,
				      .system = p->system,
				      .service = p->service,
				      .ns = p->ns,
				      .env = v.env,
				      .target = p->name,
				      .vm_id = v.id,
				      .cluster = p->cluster,
				      .payload = p->payload};
	return p->payload ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

int shd_api_vms_start(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return power(req, resp, SHD_REQ_START_VM, err);
}

int shd_api_vms_stop(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return power(req, resp, SHD_REQ_STOP_VM, err);
}

int shd_api_vms_restart(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	return power(req, resp, SHD_REQ_RESTART_VM, err);
}

/*
 * The delete confirmation of the environment (seed 000): a test VM needs confirm=true, a
 * prod VM its name typed as confirm_name (query or body).
 */
static int delete_confirmed(struct shd_req *req, const json_t *body, bool confirm,
			    const struct vm_row *v, struct shp_error *err)
{
	const char *typed = shd_req_query(req, "confirm_name");

	if (!typed)
		typed = shp_json_str(body, "confirm_name");
	if (v->env == 1) {
		if (typed && strcmp(typed, v->name) == 0)
			return 0;
		return shd_gov_confirmation_required(err, "confirm_name", "prod",
						     "deleting a prod VM (its name typed)");
	}
	if (confirm)
		return 0;
	return shd_gov_confirmation_required(err, "confirm", shd_gov_env_name(v->env),
					     "deleting a VM");
}

/* DELETE_VM: the confirmation is checked before the policy, whatever level it asks for. */
int shd_api_vms_delete(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	static const char *const allowed[] = {"confirm", "confirm_name", NULL};
	struct vm_row v __attribute__((cleanup(vm_row_release))) = {0};
	json_auto_t *body = NULL, *payload = NULL;
	struct shd_gov_sub sub = {.type = SHD_REQ_DELETE_VM, .plan = plan_of};
	bool confirm = false;

	if (optional_body(req, allowed, &body, &confirm, err) < 0 || find_vm(req, &v, err) < 0 ||
	    may_request(req, &v, false, err) < 0 ||
	    delete_confirmed(req, body, confirm, &v, err) < 0)
		return -err->code;
	payload = json_pack("{s:o}", "vm", vm_json(&v));
	sub_for_vm(&sub, &v);
	sub.payload = payload;
	sub.confirm = true; /* the delete confirmation is the requester's */
	return shd_gov_submit(req, resp, &sub, err);
}

/* ---- the catalogue checks of a create or a modify ------------------------------------------ */

/* The template's active version into spec's template_version (TEMPLATE_NOT_ACTIVE if none). */
static int resolve_template(PGconn *conn, json_t *spec, struct shp_error *err)
{
	const char *name = shp_json_str(spec, "template");
	json_auto_t *t = shd_template_get_active(conn, name, err);

	if (!t) {
		if (err->code != SHP_E_NOTFOUND)
			return -err->code;
		shp_error_set(err, SHP_E_CONFLICT,
			      "template '%s' has no active version: it takes no new VMs", name);
		shp_error_api_code(err, "TEMPLATE_NOT_ACTIVE");
		shp_error_detail(err, "field", "template");
		shp_error_detail(err, "name", "%s", name);
		return -SHP_E_CONFLICT;
	}
	(void)json_object_set_new(spec, "template_version",
				  json_integer(json_integer_value(json_object_get(t, "version"))));
	return 0;
}

/* An enabled size, and the CPUs and memory spec gets with it. */
static int size_resources(PGconn *conn, const json_t *spec, int *ret_cpus, int64_t *ret_mib,
			  struct shp_error *err)
{
	struct shd_size size __attribute__((cleanup(shd_size_release))) = {0};
	const char *name = shp_json_str(spec, "size");

	if (shd_size_get(conn, name, &size, err) < 0) {
		if (err->code == SHP_E_NOTFOUND) {
			shp_error_set(err, SHP_E_INVAL, "size '%s' is not an enabled instance size",
				      name);
			shp_error_detail(err, "field", "size");
		}
		return -err->code;
	}
	return shd_spec_resources(spec, &size, ret_cpus, ret_mib, err);
}

/* A cluster the spec prefers must exist and be of the namespace's environment. */
static int check_cluster(PGconn *conn, const json_t *spec, int env, struct shp_error *err)
{
	const char *c = shp_json_str(spec, "cluster");
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (!c)
		return 0;
	res = shd_db_exec(conn, "SELECT environment::text FROM clusters WHERE name = $1", 1,
			  (const char *[]){c}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_INVAL, "cluster '%s' is not registered", c);
		shp_error_detail(err, "field", "cluster");
		return -SHP_E_INVAL;
	}
	if (env_index(shd_db_value(res, 0, 0)) == env)
		return 0;
	shp_error_set(err, SHP_E_CONFLICT, "cluster '%s' is %s, the namespace is %s", c,
		      shd_db_value(res, 0, 0), shd_gov_env_name(env));
	shp_error_api_code(err, "ENVIRONMENT_MISMATCH");
	shp_error_detail(err, "field", "cluster");
	shp_error_detail(err, "cluster_environment", "%s", shd_db_value(res, 0, 0));
	shp_error_detail(err, "namespace_environment", "%s", shd_gov_env_name(env));
	return -SHP_E_CONFLICT;
}

/* No active VM and no open create request may have the name in the namespace. */
static int name_free(PGconn *conn, const char *ns, const char *name, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;

	res = shd_db_exec(conn,
			  "SELECT (SELECT count(*) FROM vms WHERE namespace = $1 AND name = $2"
			  "           AND deleted_at IS NULL)"
			  "     + (SELECT count(*) FROM approval_tickets WHERE namespace = $1"
			  "           AND target_name = $2 AND request_type = 'CREATE_VM'"
			  "           AND status IN ('PENDING_APPROVAL', 'APPROVED', 'EXECUTING'))",
			  2, (const char *[]){ns, name}, err);
	if (!res)
		return -err->code;
	/* the open-create index on approval_tickets catches a request racing this one */
	if (strcmp(shd_db_value(res, 0, 0), "0") == 0)
		return 0;
	shp_error_set(err, SHP_E_CONFLICT, "a VM named '%s' exists or is requested in '%s'", name,
		      ns);
	shp_error_api_code(err, "NAME_TAKEN");
	shp_error_detail(err, "field", "name");
	shp_error_detail(err, "kind", "vm");
	shp_error_detail(err, "name", "%s", name);
	shp_error_detail(err, "namespace", "%s", ns);
	return -SHP_E_CONFLICT;
}

/* A registered namespace the caller may see: its environment index. */
static int visible_namespace(struct shd_req *req, const char *ns, int *ret_env,
			     struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db,
			  "SELECT environment::text FROM namespaces WHERE name = $2"
			  "   AND environment = ANY (user_envs($1, '" SHD_ROLES_ANY "'))",
			  2, (const char *[]){uid, ns}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "namespace '%s' not found", ns);
		shp_error_detail(err, "field", "namespace");
		return -SHP_E_NOTFOUND;
	}
	*ret_env = env_index(shd_db_value(res, 0, 0));
	return 0;
}

/* The active service's system into sys; the caller must be an owner or member of it. */
static int service_of(struct shd_req *req, const char *svc, char *sys, size_t size,
		      struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *role;
	char uid[24];

	(void)snprintf(uid, sizeof(uid), "%" PRId64, req->ident.user_id);
	res = shd_db_exec(req->db,
			  "SELECT s.name, user_system_role($1, s.name)"
			  "  FROM services sv JOIN systems s ON s.id = sv.system_id"
			  " WHERE sv.name = $2 AND sv.deleted_at IS NULL AND s.deleted_at IS NULL",
			  2, (const char *[]){uid, svc}, err);
	if (!res)
		return -err->code;
	role = PQntuples(res) ? shd_db_value(res, 0, 1) : "";
	if (strcmp(role, "owner") == 0 || strcmp(role, "member") == 0) {
		(void)snprintf(sys, size, "%s", shd_db_value(res, 0, 0));
		return 0;
	}
	if (role[0]) /* a viewer of the system */
		return shp_error_set(err, SHP_E_PERM,
				     "only owners and members of system '%s' may ask for VMs",
				     shd_db_value(res, 0, 0));
	shp_error_set(err, SHP_E_NOTFOUND, "service '%s' not found", svc);
	shp_error_detail(err, "field", "service");
	if (PQntuples(res))
		shd_gov_audit_violation(req, "service", svc, err);
	return -SHP_E_NOTFOUND;
}

/* The spec of a create: the body without "confirm", checked. */
static json_t *create_spec(struct shd_req *req, bool *ret_confirm, struct shp_error *err)
{
	const char *allowed[40];
	json_auto_t *body = NULL;

	allowed_fields(allowed, SHP_ARRAY_SIZE(allowed), NULL);
	body = shd_req_json_object(req, allowed, err);
	if (!body || shp_json_get_bool(body, "confirm", false, ret_confirm, err) < 0)
		return NULL;
	(void)json_object_del(body, "confirm");
	if (shd_spec_validate(body, err) < 0)
		return NULL;
	(void)snprintf(req->audit_name, sizeof(req->audit_name), "%s", shp_json_str(body, "name"));
	return TAKE_PTR(body);
}

/*
 * The checks of a CREATE_VM on a validated spec (taken), into p: the caller's system is the
 * service's; what the request adds, for escalation, is the whole size (or the overrides).
 */
int shd_vm_create_prepare(struct shd_req *req, json_t *spec_take, struct shd_vm_prepared *p,
			  struct shp_error *err)
{
	json_auto_t *spec = spec_take;
	struct shd_gov_sub sub = {.type = SHD_REQ_CREATE_VM, .plan = plan_of};
	const char *given_sys;
	char *sys = p->system;
	int64_t mib = 0;
	int cpus = 0;

	if (visible_namespace(req, shp_json_str(spec, "namespace"), &sub.env, err) < 0 ||
	    service_of(req, shp_json_str(spec, "service"), sys, sizeof(p->system), err) < 0)
		return -err->code;
	given_sys = shp_json_str(spec, "system");
	if (given_sys && strcmp(given_sys, sys) != 0) {
		shp_error_set(err, SHP_E_INVAL, "service '%s' belongs to system '%s', not '%s'",
			      shp_json_str(spec, "service"), sys, given_sys);
		shp_error_detail(err, "field", "system");
		return -SHP_E_INVAL;
	}
	/* the tenant is decided here, never by the body */
	(void)json_object_set_new(spec, "system", json_string(sys));
	if (resolve_template(req->db, spec, err) < 0 ||
	    size_resources(req->db, spec, &cpus, &mib, err) < 0 ||
	    check_cluster(req->db, spec, sub.env, err) < 0 ||
	    name_free(req->db, shp_json_str(spec, "namespace"), shp_json_str(spec, "name"), err) <
		    0)
		return -err->code;
	p->payload = json_pack("{s:O}", "spec", spec);
	if (!p->payload)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	sub.system = sys;
	sub.service = shp_json_str(spec, "service");
	sub.ns = shp_json_str(spec, "namespace");
	sub.target = shp_json_str(spec, "name");
	sub.cluster = shp_json_str(spec, "cluster");
	sub.payload = p->payload;
	sub.add_cpus = cpus;
	sub.add_memory_mib = mib;
	p->sub = sub;
	p->spec = TAKE_PTR(spec);
	return 0;
}

/* CREATE_VM from the body: the spec plus "confirm". */
int shd_api_vms_create(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct shd_vm_prepared p __attribute__((cleanup(shd_vm_prepared_release))) = {0};
	bool confirm = false;
	json_t *spec = create_spec(req, &confirm, err);

	if (!spec || shd_vm_create_prepare(req, spec, &p, err) < 0)
		return -err->code;
	p.sub.confirm = confirm;
	return shd_gov_submit(req, resp, &p.sub, err);
}

/* name, namespace, service and system never change (IMMUTABLE_FIELD). */
static int check_immutable(const json_t *changes, const json_t *current, struct shp_error *err)
{
	for (size_t i = 0; shd_spec_immutable[i]; i++) {
		const char *f = shd_spec_immutable[i];
		const json_t *c = json_object_get(changes, f);

		if (!c || json_equal(c, json_object_get(current, f)))
			continue;
		shp_error_set(err, SHP_E_INVAL, "field '%s' cannot change after creation", f);
		shp_error_api_code(err, "IMMUTABLE_FIELD");
		shp_error_detail(err, "field", "%s", f);
		return -SHP_E_INVAL;
	}
	if (json_object_get(changes, "template_version") &&
	    !json_equal(json_object_get(changes, "template_version"),
			json_object_get(current, "template_version"))) {
		shp_error_set(err, SHP_E_INVAL,
			      "'template_version' is not set by hand: a changed 'template' takes "
			      "its active version");
		shp_error_detail(err, "field", "template_version");
		return -SHP_E_INVAL;
	}
	return 0;
}

/* The full new spec: the current one with the changes applied (null removes a field). */
static json_t *apply_changes(PGconn *conn, const json_t *current, const json_t *changes,
			     struct shp_error *err)
{
	json_auto_t *spec = json_deep_copy(current);
	const char *key;
	json_t *value;

	if (!spec) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	json_object_foreach((json_t *)changes, key, value)
	{
		if (json_is_null(value))
			(void)json_object_del(spec, key);
		else
			(void)json_object_set(spec, key, value);
	}
	if (shd_spec_validate(spec, err) < 0)
		return NULL;
	if (!json_equal(json_object_get(spec, "template"), json_object_get(current, "template")) &&
	    resolve_template(conn, spec, err) < 0)
		return NULL;
	return TAKE_PTR(spec);
}

/* What the new spec adds to the VM: its resources now (by its spec, else as last seen). */
static int added(PGconn *conn, const struct vm_row *v, const json_t *spec, int *ret_cpus,
		 int64_t *ret_mib, struct shp_error *err)
{
	struct shp_error ignored = SHP_ERROR_INIT;
	int cpus = 0, now_cpus = v->cpus;
	int64_t mib = 0, now_mib = v->memory_mib;

	if (size_resources(conn, spec, &cpus, &mib, err) < 0)
		return -err->code;
	/* a size disabled since the VM was made still tells what it has */
	if (size_resources(conn, v->spec, &now_cpus, &now_mib, &ignored) < 0) {
		now_cpus = v->cpus;
		now_mib = v->memory_mib;
	}
	*ret_cpus = cpus - now_cpus;
	*ret_mib = mib - now_mib;
	return 0;
}

/*
 * MODIFY_VM: the request carries the full new spec, so an approver reviews (and the plan
 * renders) exactly what the VM will be, not a patch whose meaning depends on the VM's state.
 */
int shd_api_vms_modify(struct shd_req *req, struct shd_resp *resp, struct shp_error *err)
{
	struct vm_row v __attribute__((cleanup(vm_row_release))) = {0};
	json_auto_t *changes = NULL, *spec = NULL, *payload = NULL;
	struct shd_gov_sub sub = {.type = SHD_REQ_MODIFY_VM, .plan = plan_of};
	const char *allowed[40];

	allowed_fields(allowed, SHP_ARRAY_SIZE(allowed), NULL);
	changes = shd_req_json_object(req, allowed, err);
	if (!changes || shp_json_get_bool(changes, "confirm", false, &sub.confirm, err) < 0)
		return -err->code;
	(void)json_object_del(changes, "confirm");
	if (find_vm(req, &v, err) < 0 || may_request(req, &v, false, err) < 0)
		return -err->code;
	if (!v.spec)
		return shp_error_set(err, SHP_E_CONFLICT,
				     "VM '%s' was not made through a request: it has no spec to "
				     "modify",
				     v.name);
	if (json_object_size(changes) == 0) {
		shp_error_set(err, SHP_E_INVAL, "nothing to change: name the fields to modify");
		return -SHP_E_INVAL;
	}
	if (check_immutable(changes, v.spec, err) < 0 ||
	    !(spec = apply_changes(req->db, v.spec, changes, err)) ||
	    check_cluster(req->db, spec, v.env, err) < 0 ||
	    added(req->db, &v, spec, &sub.add_cpus, &sub.add_memory_mib, err) < 0)
		return -err->code;
	payload = json_pack("{s:O,s:o,s:O}", "spec", spec, "vm", vm_json(&v), "changes", changes);
	sub_for_vm(&sub, &v);
	sub.payload = payload;
	return shd_gov_submit(req, resp, &sub, err);
}
