/*
 * make bench-provider: figures for the KubeVirt provider, asserting nothing.
 * 1. VMs mapped per second from a 5,000-VM list and its VMIs (in memory, KubeVirt's object
 *    shapes, managedFields included): shd_vm_map_list alone, and parse + map from the JSON text.
 * 2. Against the API simulator ($KUBESIM) seeded with 5,000 VMs: the time to re-list them all
 *    after a watch from a compacted resourceVersion answered 410.
 * 3. get_vm requests per second with 8 threads at the default in-flight limit (8).
 * Each figure is the median of a few runs.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "kubeconfig.h"
#include "kubesim-proc.h"
#include "provider-kubevirt.h"
#include "provider.h"
#include "util.h"
#include "vm.h"

#define N_VMS 5000
#define RUNS 5
#define SIM_RUNS 3 /* a re-list of 5,000 takes seconds against the simulator */
#define THREADS 8
#define GETS_PER_THREAD 250

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* Listing 5,000 VMs from the simulator takes longer than the default deadline. */
static uint64_t in_s(int s)
{
	return shp_now_monotonic_ns() + (uint64_t)s * 1000000000u;
}

static double seconds_since(uint64_t t0)
{
	return (double)(shp_now_monotonic_ns() - t0) / 1e9;
}

static json_t *vm_object(int i)
{
	char name[32];

	(void)snprintf(name, sizeof(name), "vm-%05d", i);
	return json_pack(
		"{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:I, s:s, s:{s:s, s:s}, s:[{s:s, s:s, s:s, "
		"s:s, s:{s:{s:{s:{}}, s:{s:{}}}}}]}, s:{s:s, s:{s:{s:{s:s}}, s:{s:{s:{s:i, s:i, "
		"s:i}, s:{s:s}, s:{s:[{s:s, s:{s:s}}], s:[{s:s, s:{}}]}}, s:[{s:s, s:{}}], "
		"s:[{s:s, s:{s:s}}]}}}, s:{s:s, s:b, s:b, s:[{s:s, s:s}], s:s}}",
		"apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name,
		"namespace", "bench", "uid", "6a1f0c8e-1d2b-4c3a-9e8f-000000000000",
		"resourceVersion", "123456", "generation", (json_int_t)2, "creationTimestamp",
		"2026-11-22T10:00:00Z", "labels", "app.kubernetes.io/managed-by", "shepherd",
		"shepherd.io/vm-id", "42", "managedFields", "manager", "kubevirt-shepherd",
		"operation", "Apply", "apiVersion", "kubevirt.io/v1", "fieldsType", "FieldsV1",
		"fieldsV1", "f:metadata", "f:labels", "f:app.kubernetes.io/managed-by", "f:spec",
		"f:runStrategy", "spec", "runStrategy", "Always", "template", "metadata", "labels",
		"kubevirt.io/domain", name, "spec", "domain", "cpu", "sockets", 2, "cores", 1,
		"threads", 1, "memory", "guest", "2Gi", "devices", "disks", "name", "rootdisk",
		"disk", "bus", "virtio", "interfaces", "name", "default", "masquerade", "networks",
		"name", "default", "pod", "volumes", "name", "rootdisk", "containerDisk", "image",
		"quay.io/containerdisks/fedora:latest", "status", "printableStatus", "Running",
		"created", 1, "ready", 1, "conditions", "type", "Ready", "status", "True",
		"runStrategy", "Always");
}

static json_t *vmi_object(int i)
{
	char name[32];

	(void)snprintf(name, sizeof(name), "vm-%05d", i);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:[{s:s, s:s, s:[s]}], "
			 "s:[{s:s, s:s}]}}",
			 "apiVersion", "kubevirt.io/v1", "kind", "VirtualMachineInstance",
			 "metadata", "name", name, "namespace", "bench", "uid", "vmi-uid", "status",
			 "phase", "Running", "nodeName", "node-1", "interfaces", "name", "default",
			 "ipAddress", "10.0.2.2", "ipAddresses", "10.0.2.2", "conditions", "type",
			 "Ready", "status", "True");
}

static void bench_mapping(void)
{
	json_auto_t *vms = json_array(), *vmis = json_array(), *lv = NULL, *li = NULL;
	_cleanup_free_ char *text_v = NULL, *text_i = NULL;
	double pure[RUNS], parsed[RUNS];

	for (int i = 0; i < N_VMS; i++) {
		(void)json_array_append_new(vms, vm_object(i));
		(void)json_array_append_new(vmis, vmi_object(i));
	}
	lv = json_pack("{s:s, s:O}", "kind", "VirtualMachineList", "items", vms);
	li = json_pack("{s:s, s:O}", "kind", "VirtualMachineInstanceList", "items", vmis);
	text_v = json_dumps(lv, JSON_COMPACT);
	text_i = json_dumps(li, JSON_COMPACT);
	for (int r = 0; r < RUNS; r++) {
		_cleanup_free_ struct shd_vm *out = NULL;
		size_t n = 0;
		uint64_t t0 = shp_now_monotonic_ns();

		if (shd_vm_map_list(lv, li, &out, &n, NULL, NULL) < 0 || n != N_VMS)
			fprintf(stderr, "mapping failed\n");
		pure[r] = N_VMS / seconds_since(t0);
	}
	for (int r = 0; r < RUNS; r++) {
		_cleanup_free_ struct shd_vm *out = NULL;
		size_t n = 0;
		uint64_t t0 = shp_now_monotonic_ns();
		json_auto_t *a = json_loads(text_v, 0, NULL), *b = json_loads(text_i, 0, NULL);

		if (shd_vm_map_list(a, b, &out, &n, NULL, NULL) < 0 || n != N_VMS)
			fprintf(stderr, "mapping failed\n");
		parsed[r] = N_VMS / seconds_since(t0);
	}
	printf("map 5,000 VMs + VMIs (in memory):      %10.0f VMs/s (median of %d)\n",
	       median(pure, RUNS), RUNS);
	printf("parse + map 5,000 VMs + VMIs (%4.1f MB): %10.0f VMs/s (median of %d)\n",
	       (double)(strlen(text_v) + strlen(text_i)) / 1e6, median(parsed, RUNS), RUNS);
}

/* ---- against the simulator --------------------------------------------------------------- */

static struct shd_provider *sim_provider(const struct kubesim_proc *sim)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc =
		shd_kubeconfig_parse(sim->kubeconfig, strlen(sim->kubeconfig), NULL, false, &err);
	struct shd_kubevirt_options opt = {.cluster_name = "bench"};
	struct shd_provider *p = kc ? shd_provider_kubevirt_new(kc, &opt, &err) : NULL;

	if (!p)
		fprintf(stderr, "bench-provider: %s\n", err.msg);
	return p;
}

static int ignore(void *ud, enum shd_watch_type t, const struct shd_vm *vm, const char *rv)
{
	(void)ud, (void)t, (void)vm, (void)rv;
	return 0;
}

static void bench_relist(struct shd_provider *p, struct kubesim_proc *sim)
{
	double t[SIM_RUNS];

	for (int r = 0; r < SIM_RUNS; r++) {
		struct shd_vm_list l = {0};
		struct shp_error err = SHP_ERROR_INIT;
		char rv[32];
		uint64_t t0;
		int rc;

		if (p->infra.ops->list_vms(p->infra.impl, NULL, NULL, &l, in_s(300), &err) < 0) {
			fprintf(stderr, "list: %s\n", err.msg);
			return;
		}
		(void)snprintf(rv, sizeof(rv), "%s", l.resource_version);
		shd_vm_list_release(&l);
		char seed[96];
		(void)snprintf(seed, sizeof(seed),
			       "{\"namespace\":\"bench2\",\"vms\":1,\"prefix\":\"r%d-\"}", r);
		(void)kubesim_ctl(sim, "/_sim/seed", seed); /* a change, then compact past it */
		(void)kubesim_ctl(sim, "/_sim/compact", "{}");
		t0 = shp_now_monotonic_ns();
		rc = p->infra.ops->watch_vms(p->infra.impl, NULL, rv, ignore, NULL, NULL, 0, &err);
		if (rc != SHD_WATCH_EXPIRED)
			fprintf(stderr, "watch from a compacted RV gave %d: %s\n", rc, err.msg);
		if (p->infra.ops->list_vms(p->infra.impl, NULL, NULL, &l, in_s(300), &err) < 0)
			fprintf(stderr, "re-list: %s\n", err.msg);
		t[r] = seconds_since(t0);
		if (r == 0)
			printf("re-list after 410: %zu VMs\n", l.n);
		shd_vm_list_release(&l);
	}
	printf("410 + re-list of 5,000 VMs:            %10.3f s (median of %d)\n",
	       median(t, SIM_RUNS), SIM_RUNS);
}

struct getter {
	struct shd_provider *p;
	int ok, failed;
	char why[160];
};

static void *get_loop(void *arg)
{
	struct getter *g = arg;
	char name[32];

	for (int i = 0; i < GETS_PER_THREAD; i++) {
		struct shd_vm vm;
		struct shp_error err = SHP_ERROR_INIT;
		(void)snprintf(name, sizeof(name), "vm-%d", 1 + (i * 7919) % N_VMS); /* vm-1.. */
		if (g->p->infra.ops->get_vm(g->p->infra.impl, "bench", name, &vm, 0, &err) == 0)
			g->ok++;
		else if (g->failed++ == 0)
			(void)snprintf(g->why, sizeof(g->why), "%s", err.msg);
	}
	return NULL;
}

static void bench_gets(struct shd_provider *p)
{
	double rate[SIM_RUNS];
	int failed = 0;

	for (int r = 0; r < SIM_RUNS; r++) {
		pthread_t t[THREADS];
		struct getter g[THREADS];
		uint64_t t0 = shp_now_monotonic_ns();

		for (int i = 0; i < THREADS; i++) {
			g[i] = (struct getter){.p = p};
			(void)pthread_create(&t[i], NULL, get_loop, &g[i]);
		}
		for (int i = 0; i < THREADS; i++) {
			(void)pthread_join(t[i], NULL);
			if (g[i].failed && !failed)
				fprintf(stderr, "get_vm failed: %s\n", g[i].why);
			failed += g[i].failed;
		}
		/* each get_vm is two requests: the VM and its VMI */
		rate[r] = 2.0 * THREADS * GETS_PER_THREAD / seconds_since(t0);
	}
	printf("get_vm, %d threads, in-flight limit 8:  %10.0f requests/s (median of %d)%s\n",
	       THREADS, median(rate, SIM_RUNS), SIM_RUNS, failed ? " (some failed)" : "");
}

int main(void)
{
	struct kubesim_proc sim;
	struct shd_provider *p;
	char seed[128];

	setvbuf(stdout, NULL, _IOLBF, 0); /* figures show up as they come, even into a file */
	json_object_seed(0);
	bench_mapping();
	if (!getenv("KUBESIM")) {
		printf("KUBESIM is not set: the simulator figures are left out\n");
		return 0;
	}
	if (kubesim_start(&sim, (const char *const[]){"--quiet", NULL}) < 0) {
		fprintf(stderr, "bench-provider: cannot start the simulator\n");
		return 1;
	}
	(void)snprintf(seed, sizeof(seed),
		       "{\"namespace\":\"bench\",\"vms\":%d,\"prefix\":\"vm-\",\"running\":true}",
		       N_VMS);
	p = sim_provider(&sim);
	if (p && kubesim_ctl(&sim, "/_sim/seed", seed) == 200) {
		bench_relist(p, &sim);
		bench_gets(p);
	}
	shd_provider_unref(p);
	kubesim_stop(&sim);
	return 0;
}
