/*
 * The KubeVirt mapper, table-driven over real object shapes and broken ones: every
 * printableStatus, the VMI-phase fallback, errors from conditions, identity checks, list
 * mapping with one VMI lookup, and resource quantities.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "vm.h"

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	cr_assert_not_null(j, "bad fixture: %s: %s", e.text, text);
	return j;
}

#define META                                                                                       \
	"\"metadata\":{\"name\":\"vm1\",\"namespace\":\"ns1\",\"uid\":\"u-1\","                    \
	"\"resourceVersion\":\"42\"}"

struct status_case {
	const char *vm_status; /* the VM's "status" object text, or NULL for none */
	const char *vmi;       /* the VMI's "status" object text, or NULL for no VMI */
	const char *spec;      /* the VM's "spec" text */
	enum shd_vm_status want;
	const char *error_has; /* substring of error, or "" for none */
};

static const struct status_case cases[] = {
	{"{\"printableStatus\":\"Running\",\"ready\":true}", "{\"phase\":\"Running\"}", "{}",
	 SHD_VM_RUNNING, ""},
	{"{\"printableStatus\":\"Stopped\"}", NULL, "{\"runStrategy\":\"Halted\"}", SHD_VM_STOPPED,
	 ""},
	{"{\"printableStatus\":\"Starting\"}", "{\"phase\":\"Scheduling\"}", "{}", SHD_VM_STARTING,
	 ""},
	{"{\"printableStatus\":\"Provisioning\"}", NULL, "{}", SHD_VM_STARTING, ""},
	{"{\"printableStatus\":\"WaitingForVolumeBinding\"}", NULL, "{}", SHD_VM_STARTING, ""},
	{"{\"printableStatus\":\"Stopping\"}", "{\"phase\":\"Running\"}", "{}", SHD_VM_STOPPING,
	 ""},
	{"{\"printableStatus\":\"Terminating\"}", NULL, "{}", SHD_VM_STOPPING, ""},
	{"{\"printableStatus\":\"Migrating\"}", "{\"phase\":\"Running\"}", "{}", SHD_VM_MIGRATING,
	 ""},
	{"{\"printableStatus\":\"Paused\"}", "{\"phase\":\"Running\"}", "{}", SHD_VM_PAUSED, ""},
	{"{\"printableStatus\":\"CrashLoopBackOff\",\"conditions\":[{\"type\":\"Failure\","
	 "\"status\":\"True\",\"message\":\"guest crashed\"}]}",
	 NULL, "{}", SHD_VM_FAILED, "CrashLoopBackOff: guest crashed"},
	{"{\"printableStatus\":\"ErrImagePull\",\"conditions\":[{\"type\":\"Ready\","
	 "\"status\":\"False\",\"reason\":\"ImagePull\"}]}",
	 NULL, "{}", SHD_VM_FAILED, "ErrImagePull: ImagePull"},
	{"{\"printableStatus\":\"ErrorUnschedulable\"}", NULL, "{}", SHD_VM_FAILED,
	 "ErrorUnschedulable"},
	{"{\"printableStatus\":\"ImagePullBackOff\"}", NULL, "{}", SHD_VM_FAILED,
	 "ImagePullBackOff"},
	{"{\"printableStatus\":\"ErrorPvcNotFound\"}", NULL, "{}", SHD_VM_FAILED,
	 "ErrorPvcNotFound"},
	{"{\"printableStatus\":\"DataVolumeError\"}", NULL, "{}", SHD_VM_FAILED, "DataVolumeError"},
	{"{\"printableStatus\":\"Unknown\"}", NULL, "{}", SHD_VM_UNKNOWN, "Unknown"},
	{"{\"printableStatus\":\"WaitingForReceiver\"}", NULL, "{}", SHD_VM_UNKNOWN,
	 "WaitingForReceiver"},
	/* no printableStatus: the VMI's phase decides */
	{"{}", "{\"phase\":\"Running\"}", "{}", SHD_VM_RUNNING, ""},
	{"{}", "{\"phase\":\"Pending\"}", "{}", SHD_VM_STARTING, ""},
	{"{}", "{}", "{}", SHD_VM_STARTING, ""},
	{"{}", "{\"phase\":\"Succeeded\"}", "{}", SHD_VM_STOPPED, ""},
	{"{}",
	 "{\"phase\":\"Failed\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
	 "\"message\":\"virt-launcher died\"}]}",
	 "{}", SHD_VM_FAILED, "virt-launcher died"},
	{"{}", "{\"phase\":\"WaitingForSync\"}", "{}", SHD_VM_UNKNOWN, ""},
	{NULL, NULL, "{\"runStrategy\":\"Halted\"}", SHD_VM_STOPPED, ""},
	{NULL, NULL, "{\"running\":false}", SHD_VM_STOPPED, ""},
	{NULL, NULL, "{}", SHD_VM_STOPPED, ""}, /* neither set: KubeVirt's default is Halted */
	{NULL, NULL, "{\"runStrategy\":\"Always\"}", SHD_VM_UNKNOWN, ""},
	/* broken shapes */
	{"{\"printableStatus\":7}", NULL, "{}", SHD_VM_UNKNOWN, "not a string"},
	{"{\"printableStatus\":\"Exploding\"}", NULL, "{}", SHD_VM_UNKNOWN, "unrecognised"},
	{"{\"printableStatus\":null}", "{\"phase\":\"Running\"}", "{}", SHD_VM_RUNNING, ""},
	{"[]", "{\"phase\":3}", "{}", SHD_VM_STARTING, ""},
	{"{\"printableStatus\":\"CrashLoopBackOff\",\"conditions\":{\"type\":\"Failure\"}}", NULL,
	 "{}", SHD_VM_FAILED, "CrashLoopBackOff"},
	{"{\"printableStatus\":\"CrashLoopBackOff\",\"conditions\":[7,null,{\"type\":1}]}", NULL,
	 "{}", SHD_VM_FAILED, "CrashLoopBackOff"},
};

Test(vm_map, every_status_and_broken_shape)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct status_case *c = &cases[i];
		char vmtext[2048], vmitext[1024];
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_vm vm;
		json_t *v, *vmi = NULL;

		(void)snprintf(vmtext, sizeof(vmtext), "{" META ",\"spec\":%s%s%s}", c->spec,
			       c->vm_status ? ",\"status\":" : "",
			       c->vm_status ? c->vm_status : "");
		v = parse(vmtext);
		if (c->vmi) {
			(void)snprintf(vmitext, sizeof(vmitext), "{" META ",\"status\":%s}",
				       c->vmi);
			vmi = parse(vmitext);
		}
		cr_assert_eq(shd_vm_map(v, vmi, &vm, &err), 0, "case %zu: %s", i, err.msg);
		cr_expect_eq(vm.status, c->want, "case %zu: %s wanted %s", i,
			     shd_vm_status_to_string(vm.status), shd_vm_status_to_string(c->want));
		if (*c->error_has)
			cr_expect(strstr(vm.error, c->error_has), "case %zu: error '%s' lacks '%s'",
				  i, vm.error, c->error_has);
		else
			cr_expect_str_empty(vm.error, "case %zu: unexpected error '%s'", i,
					    vm.error);
		json_decref(v);
		json_decref(vmi);
	}
}

Test(vm_map, spec_and_vmi_details)
{
	json_t *v = parse("{" META ",\"spec\":{\"runStrategy\":\"Always\",\"template\":{\"spec\":"
			  "{\"domain\":{\"cpu\":{\"sockets\":2,\"cores\":2,\"threads\":1},"
			  "\"memory\":{\"guest\":\"2Gi\"}}}}},\"status\":{\"printableStatus\":"
			  "\"Running\",\"ready\":true}}");
	json_t *vmi = parse("{" META ",\"status\":{\"phase\":\"Running\",\"nodeName\":\"node-a\","
			    "\"interfaces\":[{\"name\":\"default\",\"ipAddress\":\"10.0.2.2\"}]}}");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	cr_assert_eq(shd_vm_map(v, vmi, &vm, &err), 0, "%s", err.msg);
	cr_expect_str_eq(vm.name, "vm1");
	cr_expect_str_eq(vm.namespace_, "ns1");
	cr_expect_str_eq(vm.uid, "u-1");
	cr_expect_str_eq(vm.resource_version, "42");
	cr_expect_str_eq(vm.run_strategy, "Always");
	cr_expect_eq(vm.cpus, 4);
	cr_expect_eq(vm.memory_bytes, 2LL << 30);
	cr_expect(vm.ready);
	cr_expect_str_eq(vm.node, "node-a");
	cr_expect_str_eq(vm.ip, "10.0.2.2");
	json_decref(v);
	json_decref(vmi);

	/* wrong types everywhere in the spec: no crash, defaults instead */
	v = parse("{" META ",\"spec\":{\"runStrategy\":5,\"running\":\"yes\",\"instancetype\":"
		  "{\"name\":\"u1.medium\"},\"template\":{\"spec\":{\"domain\":{\"cpu\":"
		  "{\"sockets\":\"2\",\"cores\":-1},\"memory\":{\"guest\":\"lots\"},"
		  "\"resources\":{\"requests\":{\"memory\":\"1Gi\"}}}}}}}");
	vmi = parse("{" META ",\"status\":{\"phase\":\"Running\",\"nodeName\":7,\"interfaces\":"
		    "[{\"ipAddress\":[\"x\"]}]}}");
	cr_assert_eq(shd_vm_map(v, vmi, &vm, &err), 0, "%s", err.msg);
	cr_expect_str_eq(vm.run_strategy, "Halted");
	cr_expect_eq(vm.cpus, 0, "a negative core count is no count");
	cr_expect_eq(vm.memory_bytes, 0, "guest memory that is no quantity is not replaced");
	cr_expect_str_eq(vm.instancetype, "u1.medium");
	cr_expect_str_empty(vm.node);
	cr_expect_str_empty(vm.ip);
	json_decref(v);
	json_decref(vmi);
}

Test(vm_map, identity_is_required)
{
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"metadata\":null}",
		"{\"metadata\":{\"name\":\"vm1\"}}",
		"{\"metadata\":{\"name\":\"\",\"namespace\":\"ns1\"}}",
		"{\"metadata\":{\"name\":7,\"namespace\":\"ns1\"}}",
		"{\"metadata\":{\"name\":\"vm1\",\"namespace\":[\"ns1\"]}}",
	};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *v = parse(bad[i]);
		cr_expect_eq(shd_vm_map(v, NULL, &vm, &err), -SHP_E_INVAL, "case %zu", i);
		json_decref(v);
	}
	json_t *v = parse("{" META "}");
	json_t *other = parse("{\"metadata\":{\"name\":\"vm2\",\"namespace\":\"ns1\"}}");
	cr_expect_eq(shd_vm_map(v, other, &vm, &err), -SHP_E_INVAL, "a VMI of another VM");
	cr_expect(strstr(err.msg, "does not belong"));
	json_decref(v);
	json_decref(other);
}

Test(vm_map, list_with_one_lookup)
{
	json_t *vms = parse("{\"items\":["
			    "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n2\"},\"status\":{}},"
			    "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n1\"},\"status\":{}},"
			    "{\"metadata\":{\"name\":7}},"
			    "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n1\"},"
			    "\"spec\":{\"runStrategy\":\"Halted\"}}]}");
	json_t *vmis = parse("{\"items\":["
			     "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n1\"},\"status\":"
			     "{\"phase\":\"Running\"}},"
			     "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n1\"},\"status\":"
			     "{\"phase\":\"Failed\"}},"
			     "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n2\"},\"status\":"
			     "{\"phase\":\"Pending\"}},"
			     "\"junk\"]}");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm *out = NULL;
	size_t n = 0, skipped = 0;

	cr_assert_eq(shd_vm_map_list(vms, vmis, &out, &n, &skipped, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 3);
	cr_expect_eq(skipped, 1, "the nameless VM is skipped and counted");
	cr_expect_str_eq(out[0].name, "b");
	cr_expect_eq(out[0].status, SHD_VM_STARTING, "n2/b has its own VMI, not n1/b's");
	cr_expect_eq(out[1].status, SHD_VM_RUNNING);
	cr_expect_eq(out[2].status, SHD_VM_STOPPED, "no VMI, halted");
	free(out);
	cr_expect_eq(shd_vm_map_list(vmis, NULL, &out, &n, NULL, &err), 0);
	free(out);
	json_decref(vms);
	json_decref(vmis);
	vms = parse("{\"items\":7}");
	cr_expect_eq(shd_vm_map_list(vms, NULL, &out, &n, NULL, &err), -SHP_E_INVAL);
	json_decref(vms);
}

Test(vm_map, quantities)
{
	static const struct {
		const char *q;
		int64_t want;
	} good[] = {
		{"1024", 1024},       {"2Gi", 2LL << 30}, {"512Mi", 512LL << 20},
		{"1.5Gi", 3LL << 29}, {"1G", 1000000000}, {"100k", 100000},
		{"100m", 0},          {"1Ti", 1LL << 40},
	};
	static const char *const bad[] = {"",     "Gi",    "-1Gi",          "2 Gi", "2GiB",
					  "0x10", "1e400", "99999999999Pi", "inf",  "2g"};
	struct shp_error err = SHP_ERROR_INIT;
	int64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_expect_eq(shd_k8s_quantity_bytes(good[i].q, &v, &err), 0, "%s: %s", good[i].q,
			     err.msg);
		cr_expect_eq(v, good[i].want, "%s", good[i].q);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(shd_k8s_quantity_bytes(bad[i], &v, &err), -SHP_E_INVAL, "'%s'",
			     bad[i]);
	cr_expect_eq(shd_k8s_quantity_bytes(NULL, &v, &err), -SHP_E_INVAL);
}

Test(vm_map, status_names)
{
	for (int s = 0; s < _SHD_VM_STATUS_MAX; s++)
		cr_expect_eq(shd_vm_status_from_string(shd_vm_status_to_string(s)), s);
	cr_expect_eq(shd_vm_status_from_string("PENDING"), -1, "no PENDING at the domain level");
}
