/*
 * The virt-api subresources (subresources.kubevirt.io/v1): start, stop, restart and migrate on
 * VMs; pause, unpause, freeze, unfreeze and softreboot on VMIs; expand-spec. They answer
 * before anything changes (202 for VMs, 200 for VMIs) with virt-api's 404/409 messages; start
 * and stop rewrite spec.runStrategy as an Update by "virt-api" (so a later apply of a different
 * value conflicts) or queue status.stateChangeRequests, as KubeVirt does.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "kubesim.h"
#include "util.h"
#include "yaml.h"

#define MGR "virt-api"

static int sub_not_found(struct ks_resp *resp, const char *singular, const char *name)
{
	char msg[512];

	(void)snprintf(msg, sizeof(msg), "%s.kubevirt.io \"%s\" not found", singular, name);
	return ks_error(resp, 404, "NotFound", msg,
			json_pack("{s:s, s:s, s:s}", "name", name, "group", "kubevirt.io", "kind",
				  singular));
}

static int sub_conflict(struct ks_resp *resp, const char *singular, const char *name,
			const char *why)
{
	char msg[768];

	(void)snprintf(msg, sizeof(msg),
		       "Operation cannot be fulfilled on %s.kubevirt.io \"%s\": %s", singular, name,
		       why);
	return ks_error(resp, 409, "Conflict", msg,
			json_pack("{s:s, s:s, s:s}", "name", name, "group", "kubevirt.io", "kind",
				  singular));
}

static int accepted(struct ks_resp *resp, int code)
{
	resp->status = code;
	resp->raw = strdup("");
	return 0;
}

/* Rewrite spec.runStrategy (or spec.running when the VM uses it) as virt-api does. */
static void set_run_strategy(struct ks *ks, const json_t *vm, const char *rs, bool dry)
{
	json_t *nw = json_deep_copy(vm), *spec = json_object_get(nw, "spec");
	json_t *gen = kv_at(nw, "metadata.generation");

	if (dry) {
		json_decref(nw);
		return;
	}
	if (json_object_get(spec, "running") && !json_object_get(spec, "runStrategy"))
		json_object_set_new(spec, "running", json_boolean(strcmp(rs, "Always") == 0));
	else
		json_object_set_new(spec, "runStrategy", json_string(rs));
	json_object_set_new(json_object_get(nw, "metadata"), "generation",
			    json_integer(json_integer_value(gen) + 1));
	kv_write(ks, KS_R_VM, nw, vm, MGR, false);
}

/* Queue state change requests (a JSON array, stolen) through the status subresource. */
static void request(struct ks *ks, const json_t *vm, json_t *reqs, bool dry)
{
	json_t *nw = json_deep_copy(vm), *st = json_object_get(nw, "status");

	if (dry) {
		json_decref(nw);
		json_decref(reqs);
		return;
	}
	if (!json_is_object(st)) {
		st = json_object();
		json_object_set_new(nw, "status", st);
	}
	json_object_set_new(st, "stateChangeRequests", reqs);
	kv_write(ks, KS_R_VM, nw, vm, MGR, true);
}

static bool vmi_alive(const json_t *vmi)
{
	return vmi && !kv_vmi_is_final(vmi);
}

static int vm_start(struct ks *ks, struct ks_resp *resp, const json_t *vm, const json_t *vmi,
		    bool dry)
{
	const char *name = kv_str(vm, "metadata.name"), *rs = kv_run_strategy(vm);
	char why[160];

	if (vmi_alive(vmi))
		return sub_conflict(resp, "virtualmachine", name, "VM is already running");
	if (kv_str(vm, "status.restoreInProgress")) {
		(void)snprintf(why, sizeof(why),
			       "Cannot start VM until restore \"%.64s\" completes",
			       kv_str(vm, "status.restoreInProgress"));
		return sub_conflict(resp, "virtualmachine", name, why);
	}
	if (strcmp(rs, "Always") == 0 || strcmp(rs, "Once") == 0) {
		(void)snprintf(why, sizeof(why), "%s does not support manual start requests", rs);
		return sub_conflict(resp, "virtualmachine", name, why);
	}
	if (strcmp(rs, "RerunOnFailure") == 0 && vmi &&
	    shp_strcmp0(kv_str(vmi, "status.phase"), "Failed") == 0)
		return sub_conflict(
			resp, "virtualmachine", name,
			"RerunOnFailure does not support starting VM from failed state");
	if (strcmp(rs, "Halted") == 0)
		set_run_strategy(ks, vm, "Always", dry);
	else
		request(ks, vm, json_pack("[{s:s}]", "action", "Start"), dry);
	return accepted(resp, 202);
}

static int vm_stop(struct ks *ks, struct ks_resp *resp, const json_t *vm, const json_t *vmi,
		   const json_t *body, bool dry)
{
	const char *name = kv_str(vm, "metadata.name"), *rs = kv_run_strategy(vm);

	if (strcmp(rs, "Always") == 0 || strcmp(rs, "Once") == 0) {
		set_run_strategy(ks, vm, "Halted", dry);
		return accepted(resp, 202);
	}
	if (!vmi_alive(vmi))
		return sub_conflict(resp, "virtualmachine", name, "VM is not running");
	if (strcmp(rs, "Halted") == 0) {
		if (!json_is_integer(json_object_get(body, "gracePeriod")))
			return sub_conflict(resp, "virtualmachine", name, "VM is not running");
		if (!dry)
			kv_mark_deleted(ks, KS_R_VMI, vmi);
	} else if (strcmp(rs, "RerunOnFailure") == 0) {
		set_run_strategy(ks, vm, "Halted", dry);
	} else {
		request(ks, vm,
			json_pack("[{s:s, s:s}]", "action", "Stop", "uid",
				  kv_str(vmi, "metadata.uid")),
			dry);
	}
	return accepted(resp, 202);
}

static int vm_restart(struct ks *ks, struct ks_resp *resp, const json_t *vm, const json_t *vmi,
		      const json_t *body, bool dry)
{
	const char *name = kv_str(vm, "metadata.name"), *rs = kv_run_strategy(vm);
	json_t *grace = json_object_get(body, "gracePeriodSeconds");
	char why[160];

	if (json_is_integer(grace) && json_integer_value(grace) > 0)
		return ks_error(resp, 400, "BadRequest",
				"For force restart, only gracePeriod=0 is supported for now", NULL);
	if (json_is_integer(grace) && json_integer_value(grace) < 0)
		return ks_error(resp, 400, "BadRequest",
				"gracePeriod has to be greater or equal to 0", NULL);
	if (strcmp(rs, "Halted") == 0 || strcmp(rs, "Once") == 0) {
		(void)snprintf(why, sizeof(why),
			       "RunStategy %s does not support manual restart requests", rs);
		return sub_conflict(resp, "virtualmachine", name, why);
	}
	if (!vmi_alive(vmi))
		return sub_conflict(resp, "virtualmachine", name, "VM is not running: Halted");
	request(ks, vm,
		json_pack("[{s:s, s:s}, {s:s}]", "action", "Stop", "uid",
			  kv_str(vmi, "metadata.uid"), "action", "Start"),
		dry);
	if (!dry && json_is_integer(grace))
		kv_mark_deleted(ks, KS_R_VMI, vmi);
	return accepted(resp, 202);
}

/* migrate: a VMIM named kubevirt-migrate-vm-XXXXX; a webhook refusal surfaces as a 500. */
static int vm_migrate(struct ks *ks, struct ks_resp *resp, const json_t *vm, const json_t *vmi,
		      const json_t *body, bool dry)
{
	const char *ns = kv_str(vm, "metadata.namespace"), *name = kv_str(vm, "metadata.name");
	struct ks_resp adm = {0};
	json_auto_t *m = NULL;
	char mname[80];

	if (!vmi)
		return sub_not_found(resp, "virtualmachineinstance", name);
	if (shp_strcmp0(kv_str(vmi, "status.phase"), "Running") != 0)
		return sub_conflict(resp, "virtualmachine", name, "VM is not running");
	ks_generate_name("kubevirt-migrate-vm-", mname, sizeof(mname));
	m = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "kubevirt.io/v1",
		      "kind", "VirtualMachineInstanceMigration", "metadata", "name", mname,
		      "namespace", ns, "labels", "kubevirt.io/vmi-name", name, "spec", "vmiName",
		      name);
	if (json_is_object(json_object_get(body, "addedNodeSelector")))
		json_object_set(json_object_get(m, "spec"), "addedNodeSelector",
				json_object_get(body, "addedNodeSelector"));
	if (ks_admit(ks, &adm, KS_R_VMIM, m, NULL) < 0) {
		ks_errorf(resp, 500, "InternalError", "Internal error occurred: %s",
			  kv_str(adm.body, "message"));
		json_decref(adm.body);
		return -1;
	}
	if (!dry) {
		json_object_set_new(json_object_get(m, "metadata"), "finalizers",
				    json_pack("[s]", ks_resources[KS_R_VMIM].finalizer));
		kv_create(ks, KS_R_VMIM, json_deep_copy(m), MGR);
	}
	return accepted(resp, 202);
}

static int vmi_action(struct ks *ks, struct ks_resp *resp, const json_t *vmi, const char *action,
		      bool dry)
{
	const char *name = kv_str(vmi, "metadata.name");
	bool running = shp_strcmp0(kv_str(vmi, "status.phase"), "Running") == 0;
	bool paused = kv_has_condition(vmi, "Paused");
	json_t *nw;

	if (strcmp(action, "pause") == 0) {
		if (!running)
			return sub_conflict(resp, "virtualmachineinstance", name,
					    "VM is not running");
		if (paused)
			return sub_conflict(resp, "virtualmachineinstance", name,
					    "VMI is already paused");
	} else if (strcmp(action, "unpause") == 0) {
		const json_t *vm = ks_get(ks, KS_R_VM, kv_str(vmi, "metadata.namespace"), name);
		if (kv_at(vm, "status.snapshotInProgress"))
			return sub_conflict(resp, "virtualmachineinstance", name,
					    "VM snapshot is in progress");
		if (!running)
			return sub_conflict(resp, "virtualmachineinstance", name,
					    "VMI is not running");
		if (!paused)
			return sub_conflict(resp, "virtualmachineinstance", name,
					    "VMI is not paused");
	} else if (!running) {
		return sub_conflict(resp, "virtualmachineinstance", name, "VMI is not running");
	}
	if (!dry && (strcmp(action, "pause") == 0 || strcmp(action, "unpause") == 0)) {
		nw = json_deep_copy(vmi);
		if (strcmp(action, "pause") == 0)
			kv_condition(nw, "Paused", true, "PausedByUser", "VMI was paused by user");
		else
			kv_condition_del(nw, "Paused");
		kv_write(ks, KS_R_VMI, nw, vmi, "virt-handler", true);
	}
	return accepted(resp, 200);
}

/* expand-spec: the VM with its instance type folded into the template. */
static int vm_expand(struct ks *ks, struct ks_resp *resp, const json_t *vm)
{
	json_t *out = json_deep_copy(vm), *spec = kv_at(out, "spec.template.spec");

	if (json_is_object(spec))
		kv_expand_instancetype(ks, vm, spec);
	json_object_del(json_object_get(out, "spec"), "instancetype");
	return ks_reply(resp, 200, out);
}

static bool busy(const json_t *vm)
{
	return json_array_size(kv_at(vm, "status.stateChangeRequests")) > 0;
}

static int vm_action(struct ks *ks, struct ks_resp *resp, const char *ns, const char *name,
		     const char *action, const json_t *body, bool dry)
{
	const json_t *vm = ks_get(ks, KS_R_VM, ns, name);
	const json_t *vmi = ks_get(ks, KS_R_VMI, ns, name);

	if (!vm)
		return sub_not_found(resp, "virtualmachine", name);
	if (strcmp(action, "expand-spec") == 0)
		return vm_expand(ks, resp, vm);
	if (busy(vm) && strcmp(action, "migrate") != 0)
		return sub_conflict(resp, "virtualmachine", name,
				    "unable to complete request: stop/start already underway");
	if (strcmp(action, "start") == 0)
		return vm_start(ks, resp, vm, vmi, dry);
	if (strcmp(action, "stop") == 0)
		return vm_stop(ks, resp, vm, vmi, body, dry);
	if (strcmp(action, "restart") == 0)
		return vm_restart(ks, resp, vm, vmi, body, dry);
	return vm_migrate(ks, resp, vm, vmi, body, dry);
}

static bool known(const char *res, const char *action)
{
	static const char *const vm_actions[] = {"start", "stop", "restart", "migrate",
						 "expand-spec"};
	static const char *const vmi_actions[] = {"pause", "unpause", "freeze", "unfreeze",
						  "softreboot"};
	bool vm = strcmp(res, "virtualmachines") == 0;
	const char *const *list = vm ? vm_actions : vmi_actions;
	size_t n = vm ? SHP_ARRAY_SIZE(vm_actions) : SHP_ARRAY_SIZE(vmi_actions);

	if (!vm && strcmp(res, "virtualmachineinstances") != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], action) == 0)
			return true;
	return false;
}

static int parse_sub_body(struct ks_req *req, struct ks_resp *resp, json_t **ret)
{
	struct shp_error err = SHP_ERROR_INIT;

	*ret = NULL;
	if (req->body_len == 0)
		return 0;
	*ret = shp_yaml_to_json(req->body, req->body_len, KS_JSON_DEPTH, &err);
	if (!*ret || !json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return ks_errorf(resp, 400, "BadRequest",
				 "Can not unmarshal Request body to struct, error: %s", err.msg);
	}
	return 0;
}

int ks_subresource(struct ks_req *req, struct ks_resp *resp, const char *ns, const char *res,
		   const char *name, const char *action)
{
	struct ks *ks = req->ks;
	json_auto_t *body = NULL;
	bool vm = strcmp(res, "virtualmachines") == 0;
	bool get = strcmp(action, "expand-spec") == 0;
	int dry, r;

	if (!known(res, action))
		return ks_error(resp, 404, "NotFound",
				"the server could not find the requested resource", json_object());
	if (strcmp(req->method, get ? "GET" : "PUT") != 0)
		return ks_error(resp, 405, "MethodNotAllowed",
				"the server does not allow this method on the requested resource",
				NULL);
	if (parse_sub_body(req, resp, &body) < 0 || (dry = ks_dry_run(req, resp, body)) < 0)
		return -1;
	pthread_mutex_lock(&ks->mu);
	if (vm) {
		r = vm_action(ks, resp, ns, name, action, body, dry);
	} else {
		const json_t *vmi = ks_get(ks, KS_R_VMI, ns, name);
		r = vmi ? vmi_action(ks, resp, vmi, action, dry)
			: sub_not_found(resp, "virtualmachineinstance", name);
	}
	pthread_mutex_unlock(&ks->mu);
	return r;
}
