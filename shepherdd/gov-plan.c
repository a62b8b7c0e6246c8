/*
 * The plan that carries out a governance request on one cluster (gov.h): a single step whose
 * targets name the VM as "namespace/name", as the VM actions lock them. The manifest of a
 * create or modify is rendered here from the template version and size the spec names, so a
 * change to any of them, to the spec or to the cluster changes the plan and its hash.
 */
#include "config.h"

#include <stdio.h>

#include "error.h"
#include "gov.h"
#include "json.h"

/* The VirtualMachine of spec: its template version (the active one if none) and its size. */
static json_t *render(PGconn *conn, const json_t *spec, struct shp_error *err)
{
	const char *tmpl_name = shp_json_str(spec, "template"),
		   *size_name = shp_json_str(spec, "size");
	const json_t *version = json_object_get(spec, "template_version");
	json_auto_t *tmpl = NULL;
	struct shd_size size __attribute__((cleanup(shd_size_release))) = {0};

	if (!tmpl_name || !size_name) {
		shp_error_set(err, SHP_E_INVAL, "the spec names no template or no size");
		return NULL;
	}
	tmpl = json_is_integer(version)
		       ? shd_template_get_version(conn, tmpl_name, (int)json_integer_value(version),
						  err)
		       : shd_template_get_active(conn, tmpl_name, err);
	if (!tmpl || shd_size_get(conn, size_name, &size, err) < 0)
		return NULL;
	return shd_render_vm(tmpl, &size, spec, err);
}

/* namespace and name of the request's VM: the spec's (create, modify), else vm's. */
static int vm_names(enum shd_req_type type, const json_t *spec, const json_t *vm, const char **ns,
		    const char **name, struct shp_error *err)
{
	const json_t *src = type == SHD_REQ_CREATE_VM || type == SHD_REQ_MODIFY_VM ? spec : vm;

	*ns = shp_json_str(src, "namespace");
	*name = shp_json_str(src, "name");
	if (!*ns || !*name)
		return shp_error_set(err, SHP_E_INVAL, "the %s request names no VM",
				     shd_req_type_to_string(type) ? shd_req_type_to_string(type)
								  : "unknown");
	return 0;
}

/* The action and the parameters besides cluster, namespace and name. */
static const char *action_of(PGconn *conn, enum shd_req_type type, const json_t *spec,
			     json_t *params, struct shp_error *err)
{
	json_t *m;

	switch (type) {
	case SHD_REQ_CREATE_VM:
	case SHD_REQ_MODIFY_VM:
		m = render(conn, spec, err);
		if (!m)
			return NULL;
		(void)json_object_set_new(params, "manifest", m);
		return type == SHD_REQ_CREATE_VM ? "vm.provision" : "vm.update";
	case SHD_REQ_DELETE_VM: return "vm.delete";
	case SHD_REQ_START_VM:
	case SHD_REQ_STOP_VM:
	case SHD_REQ_RESTART_VM:
		(void)json_object_set_new(params, "op",
					  json_string(type == SHD_REQ_START_VM  ? "start"
						      : type == SHD_REQ_STOP_VM ? "stop"
										: "restart"));
		return "vm.power";
	default:
		shp_error_set(err, SHP_E_INVAL, "a %s request runs nothing on a cluster",
			      shd_req_type_to_string(type) ? shd_req_type_to_string(type)
							   : "unknown");
		return NULL;
	}
}

json_t *shd_gov_plan(PGconn *conn, enum shd_req_type type, const json_t *spec, const json_t *vm,
		     const char *cluster, struct shp_error *err)
{
	json_auto_t *params = NULL;
	const char *ns, *name, *action;
	char target[128];

	if (!cluster || !cluster[0]) {
		shp_error_set(err, SHP_E_INVAL, "a plan needs a cluster");
		return NULL;
	}
	if (vm_names(type, spec, vm, &ns, &name, err) < 0)
		return NULL;
	params = json_pack("{s:s,s:s,s:s}", "cluster", cluster, "namespace", ns, "name", name);
	if (!params) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	action = action_of(conn, type, spec, params, err);
	if (!action)
		return NULL;
	(void)snprintf(target, sizeof(target), "%s/%s", ns, name);
	return json_pack("{s:[{s:s,s:[s],s:O}]}", "steps", "action", action, "targets", target,
			 "params", params);
}
