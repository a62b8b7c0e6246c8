/*
 * Reading a VirtualMachine manifest for the simulated cluster, with the checks a real cluster
 * makes before it stores one: the API server's (object names, labels, field types, the run
 * strategy's values) and KubeVirt's validating webhook (running and runStrategy together,
 * memory requested unless an instance type gives it, no explicit sizes next to an instance
 * type, the instance type and preference must exist). The messages are the cluster's own.
 * Pure: no state is touched.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "labelsel.h"
#include "provider-sim-internal.h"
#include "util.h"

#define WEBHOOK "admission webhook \"virtualmachine-validator.kubevirt.io\" denied the request: "
#define DOMAIN "spec.template.spec.domain"

static const char *const strategies[] = {"Always", "Halted", "Manual", "RerunOnFailure", "Once"};

bool sim_strategy_runs(const char *s)
{
	return s && (strcmp(s, "Always") == 0 || strcmp(s, "RerunOnFailure") == 0 ||
		     strcmp(s, "Once") == 0);
}

static const json_t *at(const json_t *j, const char *const *path)
{
	for (; *path && json_is_object(j); path++)
		j = json_object_get(j, *path);
	return *path || json_is_null(j) ? NULL : j;
}

#define PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

/* 422 'VirtualMachine.kubevirt.io "name" is invalid: <detail>' (the API server's shape). */
static int invalid(struct shp_error *err, const char *kind, const char *name, const char *fmt, ...)
	SHP_PRINTF(4, 5);

static int invalid(struct shp_error *err, const char *kind, const char *name, const char *fmt, ...)
{
	char detail[320], q[80];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	sim_quote(q, sizeof(q), name);
	return sim_fail(err, 422, "Invalid", "%s \"%s\" is invalid: %s", kind, q, detail);
}

int sim_labels_check(const json_t *labels, bool allow_null, const char *kind, const char *name,
		     struct shp_error *err)
{
	const char *k;
	const json_t *v;
	char q[80];

	if (!json_is_object(labels))
		return invalid(err, kind, name,
			       "metadata.labels: Invalid value: must be an object");
	if (json_object_size(labels) > SIM_MAX_LABELS)
		return invalid(err, kind, name,
			       "metadata.labels: Too many: %zu: must have at most %d items",
			       json_object_size(labels), SIM_MAX_LABELS);
	json_object_foreach((json_t *)labels, k, v)
	{
		sim_quote(q, sizeof(q), k);
		if (!shd_label_key_is_valid(k))
			return invalid(
				err, kind, name,
				"metadata.labels: Invalid value: \"%s\": name part must consist "
				"of alphanumeric characters, '-', '_' or '.', and must start and "
				"end with an alphanumeric character (with an optional DNS "
				"subdomain prefix and '/')",
				q);
		if (json_is_null(v) && allow_null)
			continue;
		if (!json_is_string(v))
			return invalid(err, kind, name,
				       "metadata.labels: Invalid value: \"%s\": must be a string",
				       q);
		if (!shd_label_value_is_valid(json_string_value(v))) {
			sim_quote(q, sizeof(q), json_string_value(v));
			return invalid(
				err, kind, name,
				"metadata.labels: Invalid value: \"%s\": a valid label must be "
				"an empty string or consist of alphanumeric characters, '-', '_' "
				"or '.', and must start and end with an alphanumeric character",
				q);
		}
	}
	return 0;
}

/* apiVersion/kind, metadata.name, metadata.namespace (checked as the KubeVirt provider does). */
int sim_manifest_id(const json_t *m, const char **ret_ns, const char **ret_name,
		    struct shp_error *err)
{
	const json_t *meta = json_object_get(m, "metadata");
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *api = json_string_value(json_object_get(m, "apiVersion"));
	int r;

	if (!json_is_object(m) || !json_is_object(meta))
		return shp_error_set(err, SHP_E_INVAL, "the VM manifest has no metadata");
	if (!shp_streq(kind, "VirtualMachine") || !shp_streq(api, "kubevirt.io/v1"))
		return shp_error_set(err, SHP_E_INVAL,
				     "the manifest must be a kubevirt.io/v1 VirtualMachine");
	if ((r = shd_provider_check_ns_name(ns, "VM", name, err)) < 0)
		return r;
	*ret_ns = ns;
	*ret_name = name;
	return 0;
}

static int parse_strategy(const json_t *spec, struct sim_manifest *ret, struct shp_error *err)
{
	const json_t *running = at(spec, PATH("running"));
	const json_t *strategy = at(spec, PATH("runStrategy"));
	const char *vm = "VirtualMachine.kubevirt.io";
	char q[40];

	if (running && !json_is_boolean(running))
		return invalid(err, vm, ret->name,
			       "spec.running: Invalid value: must be a boolean");
	if (strategy && !json_is_string(strategy))
		return invalid(err, vm, ret->name,
			       "spec.runStrategy: Invalid value: must be a string");
	if (running && strategy)
		return sim_fail(err, 422, "Invalid",
				WEBHOOK "Running and RunStrategy are mutually exclusive. Note that "
					"Running is deprecated, please use RunStrategy instead");
	if (running) {
		ret->run_strategy = json_is_true(running) ? "Always" : "Halted";
		return 0;
	}
	if (!strategy)
		return 0;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(strategies); i++)
		if (strcmp(json_string_value(strategy), strategies[i]) == 0) {
			ret->run_strategy = strategies[i];
			return 0;
		}
	sim_quote(q, sizeof(q), json_string_value(strategy));
	return invalid(err, vm, ret->name,
		       "spec.runStrategy: Unsupported value: \"%s\": supported values: \"Always\", "
		       "\"Halted\", \"Manual\", \"RerunOnFailure\", \"Once\"",
		       q);
}

/* spec.instancetype or spec.preference: {kind?, name}; it must exist in the cluster. */
static int parse_ref(const json_t *spec, const char *field, struct sim_manifest *ret,
		     struct shp_error *err)
{
	bool is_type = strcmp(field, "instancetype") == 0;
	const json_t *ref = at(spec, PATH(field));
	const char *name = json_string_value(at(ref, PATH("name")));
	const char *kind = json_string_value(at(ref, PATH("kind")));
	const char *cluster_kind =
		is_type ? "VirtualMachineClusterInstancetype" : "VirtualMachineClusterPreference";
	char q[80];

	if (!ref)
		return 0;
	if (!json_is_object(ref) || !name || !*name)
		return invalid(err, "VirtualMachine.kubevirt.io", ret->name,
			       "spec.%s.name: Required value", field);
	sim_quote(q, sizeof(q), name);
	bool cluster = !kind || strcmp(kind, cluster_kind) == 0;
	bool found = cluster && (is_type ? sim_instancetype_find(name) != NULL
					 : sim_preference_find(name) != NULL);
	if (!found)
		return sim_fail(err, 422, "Invalid",
				WEBHOOK
				"Failure to find %s: %s.instancetype.kubevirt.io \"%s\" not "
				"found",
				field,
				is_type ? (cluster ? "virtualmachineclusterinstancetypes"
						   : "virtualmachineinstancetypes")
					: (cluster ? "virtualmachineclusterpreferences"
						   : "virtualmachinepreferences"),
				q);
	if (is_type)
		ret->instancetype = name;
	return 0;
}

static int parse_cpu(const json_t *dom, struct sim_manifest *ret, struct shp_error *err)
{
	static const char *const fields[] = {"sockets", "cores", "threads"};
	const json_t *cpu = at(dom, PATH("cpu"));
	int cpus = 1;

	if (!cpu)
		return 0;
	if (!json_is_object(cpu))
		return invalid(err, "VirtualMachine.kubevirt.io", ret->name,
			       DOMAIN ".cpu: Invalid value: must be an object");
	for (size_t i = 0; i < SHP_ARRAY_SIZE(fields); i++) {
		const json_t *v = at(cpu, PATH(fields[i]));
		if (!v)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1024)
			return invalid(err, "VirtualMachine.kubevirt.io", ret->name,
				       DOMAIN ".cpu.%s: Invalid value: must be an integer from 1 "
					      "to 1024",
				       fields[i]);
		cpus *= (int)json_integer_value(v);
	}
	if (cpus > 4096)
		return invalid(err, "VirtualMachine.kubevirt.io", ret->name,
			       DOMAIN ".cpu: Invalid value: %d vCPUs (at most 4096)", cpus);
	ret->has_cpu = true;
	ret->cpus = cpus;
	return 0;
}

/*
 * memory.guest wins over resources.requests.memory, as in the KubeVirt mapper; hugepages alone
 * count as a memory request for the webhook but give no size.
 */
static int parse_memory(const json_t *dom, struct sim_manifest *ret, struct shp_error *err)
{
	static const char *const paths[][4] = {{"memory", "guest", NULL},
					       {"resources", "requests", "memory", NULL}};
	char q[48];

	for (size_t i = 0; i < SHP_ARRAY_SIZE(paths); i++) {
		const json_t *v = at(dom, paths[i]);
		const char *field = i == 0 ? "memory.guest" : "resources.requests.memory";
		if (!v || ret->has_memory)
			continue;
		sim_quote(q, sizeof(q), json_is_string(v) ? json_string_value(v) : "?");
		if (!json_is_string(v) ||
		    shd_k8s_quantity_bytes(json_string_value(v), &ret->memory_bytes, NULL) < 0 ||
		    ret->memory_bytes <= 0)
			return invalid(err, "VirtualMachine.kubevirt.io", ret->name,
				       DOMAIN ".%s: Invalid value: \"%s\": quantities must match "
					      "the regular expression "
					      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
				       field, q);
		ret->has_memory = true;
	}
	if (json_is_string(at(dom, PATH("memory", "hugepages", "pageSize"))))
		ret->has_memory = true;
	return 0;
}

/* The webhook's rules about sizes: memory is required, and excluded by an instancetype. */
static int check_sizes(const json_t *dom, bool create, const struct sim_manifest *m,
		       struct shp_error *err)
{
	if (m->instancetype && (m->has_cpu || m->has_memory))
		return sim_fail(err, 422, "Invalid",
				WEBHOOK "VM field(s) %s conflicts with selected instance type",
				m->has_cpu                ? DOMAIN ".cpu"
				: at(dom, PATH("memory")) ? DOMAIN ".memory"
							  : DOMAIN ".resources.requests.memory");
	if (create && !m->instancetype && !m->has_memory)
		return sim_fail(err, 422, "Invalid",
				WEBHOOK "no memory requested, at least one of "
					"'" DOMAIN ".memory.guest', '" DOMAIN
					".memory.hugepages.pageSize' or '" DOMAIN
					".resources.requests.memory' must be set");
	return 0;
}

/*
 * The order is the cluster's: the API server's schema (types, required fields) before the
 * webhook (references, sizes), so a manifest with several faults gets the first error a real
 * cluster would give.
 */
int sim_manifest_parse(const json_t *m, bool create, struct sim_manifest *ret,
		       struct shp_error *err)
{
	struct sim_manifest r = {0};
	const json_t *spec, *tmpl, *dom;
	int rc;

	if ((rc = sim_manifest_id(m, &r.ns, &r.name, err)) < 0)
		return rc;
	r.labels = at(m, PATH("metadata", "labels"));
	if (r.labels && (rc = sim_labels_check(r.labels, !create, "VirtualMachine.kubevirt.io",
					       r.name, err)) < 0)
		return rc;
	spec = at(m, PATH("spec"));
	if (!spec && create)
		return invalid(err, "VirtualMachine.kubevirt.io", r.name, "spec: Required value");
	if (spec && !json_is_object(spec))
		return invalid(err, "VirtualMachine.kubevirt.io", r.name,
			       "spec: Invalid value: must be an object");
	r.has_spec = spec != NULL;
	if ((rc = parse_strategy(spec, &r, err)) < 0 ||
	    (rc = parse_ref(spec, "instancetype", &r, err)) < 0 ||
	    (rc = parse_ref(spec, "preference", &r, err)) < 0)
		return rc;
	tmpl = at(spec, PATH("template"));
	if (create && !json_is_object(tmpl))
		return invalid(err, "VirtualMachine.kubevirt.io", r.name,
			       "spec.template: Required value");
	dom = at(tmpl, PATH("spec", "domain"));
	if ((rc = parse_cpu(dom, &r, err)) < 0 || (rc = parse_memory(dom, &r, err)) < 0 ||
	    (rc = check_sizes(dom, create, &r, err)) < 0)
		return rc;
	*ret = r;
	return 0;
}
