/*
 * The KubeVirt provider against the API simulator over HTTPS (tests/helpers/kubesim-proc: a
 * fresh simulator per test, a CA, a random token, a kubeconfig): every operation, create twice
 * giving one VM, server-side apply conflicts and force, dry runs that persist nothing, a watch
 * from a compacted resourceVersion (SHD_WATCH_EXPIRED, then list and watch again), 429 and 500
 * retried, 500 forever ending within the deadline, an unreachable cluster, the in-flight limit
 * under many threads, a bad token (SHP_E_PERM, the token not in the message), tls-server-name,
 * and a watch stream cut in the middle.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "kubesim-proc.h"
#include "provider-kubevirt.h"
#include "provider.h"
#include "util.h"

static struct kubesim_proc sim;
static bool sim_up;

static void start_sim(const char *const *extra)
{
	if (!getenv("KUBESIM"))
		cr_skip_test("KUBESIM is not set");
	cr_assert_eq(kubesim_start(&sim, extra), 0, "kubesim starts");
	sim_up = true;
}

static void setup(void)
{
	start_sim((const char *const[]){"--quiet", "--tick-ms", "20", "--feature-gates",
					"Snapshot,LiveMigration", NULL});
}

static void teardown(void)
{
	if (sim_up)
		kubesim_stop(&sim);
	sim_up = false;
}

TestSuite(provider_kubevirt, .init = setup, .fini = teardown, .timeout = 60);

static struct shd_kubeconfig *kubeconfig(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_kubeconfig *kc =
		shd_kubeconfig_parse(sim.kubeconfig, strlen(sim.kubeconfig), NULL, false, &err);

	cr_assert_not_null(kc, "%s", err.msg);
	return kc;
}

static struct shd_provider *provider_with(int max_inflight, const char *token)
{
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = kubeconfig();
	struct shd_kubevirt_options opt = {.cluster_name = "sim", .max_inflight = max_inflight};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p;

	if (token) {
		free(kc->token);
		kc->token = strdup(token);
	}
	p = shd_provider_kubevirt_new(kc, &opt, &err);
	cr_assert_not_null(p, "%s", err.msg);
	return p;
}

static struct shd_provider *provider(void)
{
	return provider_with(0, NULL);
}

static uint64_t in_ms(long ms)
{
	return shp_now_monotonic_ns() + (uint64_t)ms * 1000000u;
}

static void ctl(const char *path, const char *json)
{
	cr_assert_eq(kubesim_ctl(&sim, path, json), 200, "kubesim %s %s", path, json);
}

static json_t *manifest(const char *ns, const char *name, const char *strategy)
{
	json_t *m = json_pack(
		"{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:{s:{s:{s:{s:i}, s:{s:s}, s:{s:[{s:s, "
		"s:{s:s}}]}}, s:[{s:s, s:{s:s}}]}}}}",
		"apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name,
		"namespace", ns, "labels", SHD_LABEL_MANAGED_BY, "shepherd", "spec", "runStrategy",
		strategy, "template", "spec", "domain", "cpu", "cores", 2, "memory", "guest", "1Gi",
		"devices", "disks", "name", "rootdisk", "disk", "bus", "virtio", "volumes", "name",
		"rootdisk", "containerDisk", "image", "quay.io/containerdisks/fedora:latest");

	cr_assert_not_null(m);
	return m;
}

/* get_vm until its status is want (or the time is up). */
static void wait_status(struct shd_provider *p, const char *ns, const char *name,
			enum shd_vm_status want)
{
	struct shd_vm vm = {0};
	struct shp_error err = SHP_ERROR_INIT;

	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, ns, name, &vm, 0, &err), 0, "%s",
			     err.msg);
		if (vm.status == want)
			return;
		usleep(20000);
	}
	cr_assert_fail("VM %s/%s is %s, not %s", ns, name, shd_vm_status_to_string(vm.status),
		       shd_vm_status_to_string(want));
}

static struct shd_provider *with_vm(const char *ns, const char *name, const char *strategy)
{
	struct shd_provider *p = provider();
	json_auto_t *m = manifest(ns, name, strategy);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, ns, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	return p;
}

/* ---- VMs ----------------------------------------------------------------------------------- */

Test(provider_kubevirt, create_twice_is_one_vm)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	json_auto_t *m = manifest("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm a, b;
	struct shd_vm_list l = {0};

	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, "t1", 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, "t1", 0, &err), 0, "again");
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &a, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &b, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(a.uid, b.uid, "the same VM");
	cr_assert_str_eq(a.name, "vm1");
	cr_assert_eq(a.cpus, 2);
	cr_assert_eq(a.memory_bytes, 1073741824LL);
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, "t1", NULL, &l, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(l.n, 1);
	cr_assert_neq(l.resource_version[0], '\0');
	shd_vm_list_release(&l);
}

Test(provider_kubevirt, power_lifecycle_and_delete)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	const struct shd_infra_ops *o = p->infra.ops;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	int rc;

	wait_status(p, "t1", "vm1", SHD_VM_STOPPED);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_STOP, 0, &err), 0,
		     "stop of a stopped VM is done: %s", err.msg);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_START, 0, &err), 0, "%s",
		     err.msg);
	wait_status(p, "t1", "vm1", SHD_VM_RUNNING);
	cr_assert_eq(o->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), 0);
	cr_assert_neq(vm.node[0], '\0', "the VMI's node");
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_START, 0, &err), 0,
		     "already running: %s", err.msg);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_PAUSE, 0, &err), 0, "%s",
		     err.msg);
	wait_status(p, "t1", "vm1", SHD_VM_PAUSED);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_PAUSE, 0, &err), 0,
		     "already paused: %s", err.msg);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_UNPAUSE, 0, &err), 0, "%s",
		     err.msg);
	wait_status(p, "t1", "vm1", SHD_VM_RUNNING);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_UNPAUSE, 0, &err), 0,
		     "not paused: %s", err.msg);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_RESTART, 0, &err), 0, "%s",
		     err.msg);
	/* while the restart is under way KubeVirt refuses other requests with a 409 */
	for (int i = 0; i < 1000; i++) {
		rc = o->power(p->infra.impl, "t1", "vm1", SHD_POWER_STOP, 0, &err);
		if (rc != -SHP_E_CONFLICT)
			break;
		cr_assert(strstr(err.msg, "already underway"), "%s", err.msg);
		usleep(20000);
	}
	cr_assert_eq(rc, 0, "%s", err.msg);
	wait_status(p, "t1", "vm1", SHD_VM_STOPPED);
	shp_error_clear(&err);
	cr_assert_eq(o->power(p->infra.impl, "t1", "vm1", SHD_POWER_RESTART, 0, &err),
		     -SHP_E_CONFLICT, "restarting a stopped VM is a conflict");
	cr_assert(strstr(err.msg, "restart of VM 't1/vm1'"), "%s", err.msg);
	rc = o->power(p->infra.impl, "t1", "vm1", SHD_POWER_PAUSE, 0, &err);
	cr_assert(rc == -SHP_E_NOTFOUND || rc == -SHP_E_CONFLICT,
		  "a stopped VM has no running VMI to pause: %s", err.msg);
	cr_assert_eq(o->delete_vm(p->infra.impl, "t1", "vm1", 0, &err), 0, "%s", err.msg);
	for (int i = 0; i < 1000; i++) {
		if (o->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err) == -SHP_E_NOTFOUND)
			break;
		usleep(20000);
	}
	cr_assert_eq(o->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), -SHP_E_NOTFOUND);
	cr_assert_eq(o->delete_vm(p->infra.impl, "t1", "vm1", 0, &err), 0, "absent is deleted");
	cr_assert_eq(o->power(p->infra.impl, "t1", "nope", SHD_POWER_START, 0, &err),
		     -SHP_E_NOTFOUND);
}

Test(provider_kubevirt, dry_run_persists_nothing)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	json_auto_t *m = manifest("t1", "dry", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	struct shd_vm_list l = {0};

	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, "t1", 0, &err), 0);
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, true, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(vm.name, "dry");
	cr_assert_eq(p->infra.ops->update_vm(p->infra.impl, m, true, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, "t1", NULL, &l, 0, &err), 0);
	cr_assert_eq(l.n, 0, "nothing stored");
	shd_vm_list_release(&l);
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "dry", &vm, 0, &err),
		     -SHP_E_NOTFOUND);
}

/* A PATCH apply by another field manager, without force. */
static int apply_as(const char *manager, const char *strategy, struct shp_error *err)
{
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = kubeconfig();
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = shd_k8s_new(kc, "sim", 2, err);
	json_auto_t *body =
		json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "kubevirt.io/v1",
			  "kind", "VirtualMachine", "metadata", "name", "vm1", "namespace", "t1",
			  "spec", "runStrategy", strategy);
	char path[256];
	struct shd_k8s_resp r;
	int rc;

	cr_assert_not_null(k);
	(void)snprintf(path, sizeof(path),
		       "/apis/kubevirt.io/v1/namespaces/t1/virtualmachines/vm1?fieldManager=%s",
		       manager);
	struct shd_k8s_req req = {.method = "PATCH",
				  .path = path,
				  .body = body,
				  .content_type = "application/apply-patch+yaml",
				  .deadline_ns = in_ms(5000)};
	rc = shd_k8s_call(k, &req, &r, err);
	shd_k8s_resp_release(&r);
	return rc;
}

Test(provider_kubevirt, ssa_conflict_and_force)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	json_auto_t *m = manifest("t1", "vm1", "Manual");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	/* shepherd applies runStrategy: Manual, then another manager wants it otherwise */
	cr_assert_eq(p->infra.ops->update_vm(p->infra.impl, m, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(vm.run_strategy, "Manual");
	cr_assert_eq(apply_as("other-mgr", "Always", &err), -SHP_E_CONFLICT, "%s", err.msg);
	cr_assert(strstr(err.msg, "kubevirt-shepherd"), "the owner is named: %s", err.msg);
	/* shepherd's apply takes fields back with force, even after someone else wrote them */
	cr_assert_eq(apply_as("other-mgr", "Manual", &err), 0, "same value is shared: %s", err.msg);
	json_object_set_new(json_object_get(m, "spec"), "runStrategy", json_string("Halted"));
	cr_assert_eq(p->infra.ops->update_vm(p->infra.impl, m, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(vm.run_strategy, "Halted");
}

Test(provider_kubevirt, list_pages_through_many_vms)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};

	ctl("/_sim/seed", "{\"namespace\":\"many\",\"vms\":520,\"prefix\":\"vm-\","
			  "\"running\":true,\"labels\":{\"tier\":\"a\"}}");
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, "many", NULL, &l, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(l.n, 520, "two pages of 500");
	cr_assert_neq(l.items[0].node[0], '\0', "VMIs joined");
	shd_vm_list_release(&l);
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, NULL, "tier=a", &l, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(l.n, 520, "two pages of 500");
	shd_vm_list_release(&l);
	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, NULL, "tier in (b)", &l, 0, &err), 0);
	cr_assert_eq(l.n, 0);
	shd_vm_list_release(&l);
}

/* ---- watch --------------------------------------------------------------------------------- */

struct watched {
	const char *want;
	int added, bookmarks;
	char rv[32];
};

static int on_vm(void *ud, enum shd_watch_type t, const struct shd_vm *vm, const char *rv)
{
	struct watched *w = ud;

	(void)snprintf(w->rv, sizeof(w->rv), "%s", rv);
	if (t == SHD_WATCH_BOOKMARK) {
		w->bookmarks++;
		return 0;
	}
	if (t == SHD_WATCH_ADDED && strcmp(vm->name, w->want) == 0) {
		w->added++;
		return -1; /* seen: stop */
	}
	return 0;
}

static void *create_later(void *arg)
{
	struct shd_provider *p = arg;
	json_auto_t *m = manifest("t1", "late", "Halted");

	usleep(200000);
	(void)p->infra.ops->create_vm(p->infra.impl, m, false, NULL, 0, NULL);
	return NULL;
}

Test(provider_kubevirt, watch_410_then_relist_and_watch)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	const struct shd_infra_ops *o = p->infra.ops;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	struct watched w = {.want = "late"};
	char old_rv[32];
	pthread_t t;

	cr_assert_eq(o->list_vms(p->infra.impl, NULL, NULL, &l, 0, &err), 0, "%s", err.msg);
	(void)snprintf(old_rv, sizeof(old_rv), "%s", l.resource_version);
	shd_vm_list_release(&l);
	ctl("/_sim/seed", "{\"namespace\":\"t2\",\"vms\":2}");
	ctl("/_sim/compact", "{}");
	cr_assert_eq(o->watch_vms(p->infra.impl, NULL, old_rv, on_vm, &w, NULL, in_ms(5000), &err),
		     SHD_WATCH_EXPIRED, "%s", err.msg);
	/* the recovery: list again, watch from the new resourceVersion */
	cr_assert_eq(o->list_vms(p->infra.impl, NULL, NULL, &l, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(pthread_create(&t, NULL, create_later, p), 0);
	cr_assert_eq(o->watch_vms(p->infra.impl, NULL, l.resource_version, on_vm, &w, NULL,
				  in_ms(10000), &err),
		     0, "%s", err.msg);
	pthread_join(t, NULL);
	cr_assert_eq(w.added, 1, "the new VM arrives as ADDED");
	shd_vm_list_release(&l);
}

Test(provider_kubevirt, watch_http_410_and_legacy_gone)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct watched w = {.want = "none"};

	ctl("/_sim/seed", "{\"namespace\":\"t2\",\"vms\":1}");
	ctl("/_sim/compact", "{}");
	ctl("/_sim/faults", "{\"watch_410_http\":true}");
	cr_assert_eq(p->infra.ops->watch_vms(p->infra.impl, NULL, "1", on_vm, &w, NULL, in_ms(5000),
					     &err),
		     SHD_WATCH_EXPIRED, "%s", err.msg);
	ctl("/_sim/faults", "{\"legacy_gone\":true}");
	cr_assert_eq(p->infra.ops->watch_vms(p->infra.impl, NULL, "1", on_vm, &w, NULL, in_ms(5000),
					     &err),
		     SHD_WATCH_EXPIRED, "%s", err.msg);
}

static void *stop_later(void *arg)
{
	usleep(300000);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

Test(provider_kubevirt, watch_stops_on_the_flag)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	struct watched w = {.want = "none"};
	atomic_bool stop = false;
	pthread_t t;
	uint64_t t0;

	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, NULL, NULL, &l, 0, &err), 0);
	cr_assert_eq(pthread_create(&t, NULL, stop_later, &stop), 0);
	t0 = shp_now_monotonic_ns();
	cr_assert_eq(p->infra.ops->watch_vms(p->infra.impl, NULL, l.resource_version, on_vm, &w,
					     &stop, in_ms(20000), &err),
		     0, "%s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 2000000000u, "within a second of the flag");
	pthread_join(t, NULL);
	shd_vm_list_release(&l);
}

/* ---- faults ------------------------------------------------------------------------------- */

Test(provider_kubevirt, retries_429_and_500)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	uint64_t t0 = shp_now_monotonic_ns();

	ctl("/_sim/faults", "{\"status\":429,\"count\":1,\"retry_after\":1,"
			    "\"path_prefix\":\"/apis/kubevirt.io\"}");
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_geq(shp_now_monotonic_ns() - t0, 900000000u, "Retry-After honoured");
	ctl("/_sim/faults", "{\"status\":500,\"count\":2,\"path_prefix\":\"/apis/kubevirt.io\"}");
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), 0, "%s",
		     err.msg);
	ctl("/_sim/faults", "{\"status\":503,\"count\":1}");
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), 0, "%s",
		     err.msg);
}

Test(provider_kubevirt, endless_500_ends_within_the_deadline)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	uint64_t t0;

	ctl("/_sim/faults",
	    "{\"status\":500,\"count\":100000,\"path_prefix\":\"/apis/kubevirt.io\"}");
	t0 = shp_now_monotonic_ns();
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, in_ms(1500), &err),
		     -SHP_E_K8S, "%s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1700000000u, "within the deadline");
	cr_assert(strstr(err.msg, "getting VM 't1/vm1'"), "%s", err.msg);
}

Test(provider_kubevirt, unreachable_cluster_fails_fast_and_clean)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *first = with_vm("t1", "vm1", "Halted");
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_health_report rep;
	struct shd_vm vm;
	uint64_t t0;
	int rc;

	/* new connections are closed at once; a new provider has no kept-alive one */
	ctl("/_sim/unreachable", "{\"seconds\":3}");
	p = provider();
	t0 = shp_now_monotonic_ns();
	rc = p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, in_ms(2000), &err);
	cr_assert(rc == -SHP_E_UNAVAIL || rc == -SHP_E_TIMEOUT, "%d %s", rc, err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 2200000000u);
	if (rc == -SHP_E_UNAVAIL)
		cr_assert_str_eq(shp_error_api_code_of(&err), "UNREACHABLE");
	cr_assert_null(strstr(err.msg, sim.token), "no token: %s", err.msg);
	cr_assert_eq(p->cluster.ops->health(p->cluster.impl, &rep, in_ms(2000), &err), 0);
	cr_assert_eq(rep.health, SHD_HEALTH_UNREACHABLE, "%s", rep.message);
	/* and once the simulator is gone for good */
	kubesim_stop(&sim);
	sim_up = false;
	t0 = shp_now_monotonic_ns();
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), -SHP_E_UNAVAIL,
		     "%s", err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1000000000u, "refused at once");
}

struct getter {
	struct shd_provider *p;
	int rc;
};

static void *get_one(void *arg)
{
	struct getter *g = arg;
	struct shd_vm vm;
	struct shp_error err = SHP_ERROR_INIT;

	g->rc = g->p->infra.ops->get_vm(g->p->infra.impl, "t1", "vm1", &vm, in_ms(20000), &err);
	return NULL;
}

/* 16 threads, each get_vm two requests of 100 ms: the time says how many ran at once. */
static double run_gets(struct shd_provider *p)
{
	pthread_t t[16];
	struct getter g[16];
	uint64_t t0 = shp_now_monotonic_ns();

	for (int i = 0; i < 16; i++) {
		g[i] = (struct getter){.p = p};
		cr_assert_eq(pthread_create(&t[i], NULL, get_one, &g[i]), 0);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(g[i].rc, 0);
	}
	return (double)(shp_now_monotonic_ns() - t0) / 1e9;
}

struct caller {
	struct shd_k8s *k;
	int rc;
};

static void *call_one(void *arg)
{
	struct caller *c = arg;
	struct shd_k8s_req req = {.method = "GET",
				  .path = "/apis/kubevirt.io/v1/namespaces/t1/virtualmachines/vm1",
				  .deadline_ns = in_ms(20000)};
	struct shd_k8s_resp r;

	c->rc = shd_k8s_call(c->k, &req, &r, NULL);
	shd_k8s_resp_release(&r);
	return NULL;
}

Test(provider_kubevirt, inflight_limit_holds_under_threads)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	_cleanup_(shd_provider_unrefp) struct shd_provider *narrow = provider_with(4, NULL);
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = kubeconfig();
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = shd_k8s_new(kc, "sim", 4, NULL);
	struct shd_k8s_stats st;
	struct caller c[16];
	pthread_t t[16];
	double slow;

	ctl("/_sim/faults",
	    "{\"count\":0,\"latency_ms\":100,\"path_prefix\":\"/apis/kubevirt.io\"}");
	/* the provider: 32 requests of 100 ms, 4 at a time, cannot take less than 0.8 s */
	slow = run_gets(narrow);
	cr_assert_geq(slow, 0.75, "limit 4 took %.2f s", slow);
	/* the client underneath: 16 slow requests reach the limit and never pass it */
	cr_assert_not_null(k);
	for (int i = 0; i < 16; i++) {
		c[i] = (struct caller){.k = k};
		cr_assert_eq(pthread_create(&t[i], NULL, call_one, &c[i]), 0);
	}
	for (int i = 0; i < 16; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(c[i].rc, 0);
	}
	shd_k8s_get_stats(k, &st);
	cr_assert_eq(st.max_busy, 4);
	cr_assert_eq(st.requests, 16);
}

Test(provider_kubevirt, bad_token_is_perm_without_the_token)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p =
		provider_with(0, "not-the-right-token-0123456789");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1", &vm, 0, &err), -SHP_E_PERM,
		     "%s", err.msg);
	cr_assert_null(strstr(err.msg, "not-the-right-token"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, sim.token), "%s", err.msg);
}

/* ---- snapshots, clones, migrations, instance types --------------------------------------- */

Test(provider_kubevirt, snapshots_and_restores)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	const struct shd_snapshot_ops *o = p->snapshots.ops;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_snapshot s, s2;
	struct shd_restore r;
	_cleanup_free_ struct shd_snapshot *all = NULL;
	size_t n = 0;

	cr_assert_eq(o->create(p->snapshots.impl, "t1", "vm1", "snap1", &s, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(o->create(p->snapshots.impl, "t1", "vm1", "snap1", &s2, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_str_eq(s.uid, s2.uid, "create if absent");
	cr_assert_eq(o->create(p->snapshots.impl, "t1", "other", "snap1", &s2, 0, &err),
		     -SHP_E_CONFLICT, "the name is taken by another VM's snapshot");
	for (int i = 0; i < 1000 && !s.ready; i++) {
		usleep(20000);
		cr_assert_eq(o->get(p->snapshots.impl, "t1", "snap1", &s, 0, &err), 0, "%s",
			     err.msg);
	}
	cr_assert(s.ready, "phase %s", s.phase);
	cr_assert_str_eq(s.vm, "vm1");
	cr_assert_eq(o->list(p->snapshots.impl, "t1", "vm1", &all, &n, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1);
	free(all);
	all = NULL;
	cr_assert_eq(o->list(p->snapshots.impl, "t1", "vm2", &all, &n, 0, &err), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(o->restore(p->snapshots.impl, "t1", "vm1", "snap1", "r1", &r, 0, &err), 0,
		     "%s", err.msg);
	for (int i = 0; i < 1000 && !r.complete; i++) {
		usleep(20000);
		cr_assert_eq(o->get_restore(p->snapshots.impl, "t1", "r1", &r, 0, &err), 0, "%s",
			     err.msg);
	}
	cr_assert(r.complete);
	cr_assert_str_eq(r.snapshot, "snap1");
	cr_assert_eq(o->remove(p->snapshots.impl, "t1", "snap1", 0, &err), 0, "%s", err.msg);
	cr_assert_eq(o->remove(p->snapshots.impl, "t1", "never", 0, &err), 0, "absent is removed");
	cr_assert_eq(o->get(p->snapshots.impl, "t1", "never", &s, 0, &err), -SHP_E_NOTFOUND);
}

Test(provider_kubevirt, clones)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	const struct shd_clone_ops *o = p->clones.ops;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_clone c;
	struct shd_snapshot s;
	struct shd_vm vm;
	_cleanup_free_ struct shd_clone *all = NULL;
	size_t n = 0;

	cr_assert_eq(o->from_vm(p->clones.impl, "t1", "vm1", "vm1-copy", "c1", &c, 0, &err), 0,
		     "%s", err.msg);
	cr_assert_str_eq(c.source_kind, "VirtualMachine");
	cr_assert_str_eq(c.target, "vm1-copy");
	for (int i = 0; i < 1500 && strcmp(c.phase, "Succeeded") != 0; i++) {
		usleep(20000);
		cr_assert_eq(o->get(p->clones.impl, "t1", "c1", &c, 0, &err), 0, "%s", err.msg);
	}
	cr_assert_str_eq(c.phase, "Succeeded");
	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "t1", "vm1-copy", &vm, 0, &err), 0,
		     "the target VM exists: %s", err.msg);
	cr_assert_eq(p->snapshots.ops->create(p->snapshots.impl, "t1", "vm1", "s1", &s, 0, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(o->from_snapshot(p->clones.impl, "t1", "s1", "vm1-copy2", "c2", &c, 0, &err),
		     0, "%s", err.msg);
	cr_assert_str_eq(c.source_kind, "VirtualMachineSnapshot");
	cr_assert_eq(o->list(p->clones.impl, "t1", &all, &n, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 2);
}

Test(provider_kubevirt, migrations)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Always");
	const struct shd_migration_ops *o = p->migrations.ops;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_migration m, got;
	_cleanup_free_ struct shd_migration *all = NULL;
	size_t n = 0;

	wait_status(p, "t1", "vm1", SHD_VM_RUNNING);
	cr_assert_eq(o->cancel(p->migrations.impl, "t1", "vm1", 0, &err), -SHP_E_NOTFOUND);
	cr_assert_eq(o->migrate(p->migrations.impl, "t1", "vm1", &m, 0, &err), 0, "%s", err.msg);
	cr_assert_str_eq(m.vm, "vm1");
	cr_assert(strncmp(m.name, "shepherd-migrate-", 17) == 0, "%s", m.name);
	cr_assert_eq(o->get(p->migrations.impl, "t1", m.name, &got, 0, &err), 0, "%s", err.msg);
	cr_assert_str_eq(got.uid, m.uid);
	cr_assert_eq(o->list(p->migrations.impl, "t1", "vm1", &all, &n, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(o->cancel(p->migrations.impl, "t1", "vm1", 0, &err), 0, "%s", err.msg);
	for (int i = 0; i < 1500; i++) {
		if (o->get(p->migrations.impl, "t1", m.name, &got, 0, &err) < 0 || got.failed ||
		    got.completed || got.abort_requested)
			break;
		usleep(20000);
	}
}

Test(provider_kubevirt, instancetypes_and_preferences)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	const struct shd_instancetype_ops *o = p->instancetypes.ops;
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_free_ struct shd_instancetype *its = NULL;
	_cleanup_free_ struct shd_preference *prefs = NULL;
	size_t n = 0, np = 0;
	bool medium = false;

	cr_assert_eq(o->list_instancetypes(p->instancetypes.impl, NULL, &its, &n, 0, &err), 0, "%s",
		     err.msg);
	for (size_t i = 0; i < n; i++)
		if (strcmp(its[i].name, "u1.medium") == 0) {
			medium = true;
			cr_assert(its[i].cluster_scoped);
			cr_assert_eq(its[i].cpus, 1);
			cr_assert_eq(its[i].memory_bytes, 4LL << 30);
		}
	cr_assert(medium, "u1.medium among %zu", n);
	cr_assert_eq(o->list_preferences(p->instancetypes.impl, NULL, &prefs, &np, 0, &err), 0,
		     "%s", err.msg);
	cr_assert_gt(np, 0);
	free(its);
	its = NULL;
	cr_assert_eq(o->list_instancetypes(p->instancetypes.impl, "default", &its, &n, 0, &err), 0,
		     "%s", err.msg);
}

/* ---- the cluster ------------------------------------------------------------------------- */

Test(provider_kubevirt, health_and_capabilities)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_health_report rep;
	json_auto_t *caps = NULL, *caps2 = NULL;
	_cleanup_free_ char *text = NULL, *text2 = NULL;

	cr_assert_eq(p->cluster.ops->health(p->cluster.impl, &rep, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(rep.health, SHD_HEALTH_HEALTHY, "%s", rep.message);
	cr_assert_neq(rep.kubernetes_version[0], '\0');
	cr_assert_neq(rep.kubevirt_version[0], '\0');
	cr_assert_eq(p->cluster.ops->capabilities(p->cluster.impl, &caps, 0, &err), 0, "%s",
		     err.msg);
	text = json_dumps(caps, JSON_COMPACT);
	cr_assert(strstr(text, "\"kubevirt\""), "%s", text);
	cr_assert(strstr(text, "\"snapshot\""), "%s", text);
	cr_assert(strstr(text, "\"clone\""), "%s", text);
	cr_assert(strstr(text, "\"live-migration\""), "%s", text);
	for (size_t i = 1; i < json_array_size(caps); i++)
		cr_assert_lt(strcmp(json_string_value(json_array_get(caps, i - 1)),
				    json_string_value(json_array_get(caps, i))),
			     0, "sorted: %s", text);
	ctl("/_sim/feature-gates", "{\"featureGates\":[]}");
	cr_assert_eq(p->cluster.ops->capabilities(p->cluster.impl, &caps2, 0, &err), 0, "%s",
		     err.msg);
	text2 = json_dumps(caps2, JSON_COMPACT);
	cr_assert_null(strstr(text2, "\"snapshot\""), "the gate is off: %s", text2);
	cr_assert_null(strstr(text2, "\"clone\""), "%s", text2);
}

/* tls-server-name: the certificate is checked against that name, the connection goes to the URL. */
static int get_with_tls_name(const char *tls_name, struct shp_error *err)
{
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = kubeconfig();
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = NULL;
	struct shd_k8s_req req = {.method = "GET", .path = "/version", .deadline_ns = in_ms(5000)};
	struct shd_k8s_resp r;
	int rc;

	kc->tls_server_name = strdup(tls_name);
	k = shd_k8s_new(kc, "sim", 2, err);
	cr_assert_not_null(k, "%s", err->msg);
	cr_assert_neq(shd_k8s_server(k)[strlen(shd_k8s_server(k)) - 1], '/', "%s",
		      shd_k8s_server(k));
	rc = shd_k8s_call(k, &req, &r, err);
	shd_k8s_resp_release(&r);
	return rc;
}

Test(provider_kubevirt, tls_server_name)
{
	struct shp_error err = SHP_ERROR_INIT;

	/* the simulator's certificate names localhost and 127.0.0.1; the URL says 127.0.0.1 */
	cr_assert_eq(get_with_tls_name("localhost", &err), 0, "%s", err.msg);
	cr_assert_eq(get_with_tls_name("wrong.example", &err), -SHP_E_UNAVAIL, "%s", err.msg);
	cr_assert_str_eq(shp_error_api_code_of(&err), "UNREACHABLE");
	cr_assert(strstr(err.msg, "certificate subject name"), "%s", err.msg);
}

static void *drop_later(void *arg)
{
	(void)arg;
	usleep(300000);
	ctl("/_sim/drop-watches", "{}");
	return NULL;
}

/* A stream cut in the middle is a failure the caller sees (it watches again from its RV). */
Test(provider_kubevirt, watch_cut_mid_stream)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = with_vm("t1", "vm1", "Halted");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	struct watched w = {.want = "none"};
	pthread_t t;
	int rc;

	cr_assert_eq(p->infra.ops->list_vms(p->infra.impl, NULL, NULL, &l, 0, &err), 0);
	cr_assert_eq(pthread_create(&t, NULL, drop_later, NULL), 0);
	rc = p->infra.ops->watch_vms(p->infra.impl, NULL, l.resource_version, on_vm, &w, NULL,
				     in_ms(10000), &err);
	pthread_join(t, NULL);
	cr_assert_eq(rc, -SHP_E_UNAVAIL, "%s", err.msg);
	cr_assert(strstr(err.msg, "the watch stream from cluster 'sim' broke"), "%s", err.msg);
	shd_vm_list_release(&l);
}

/* A slow controller (5 s ticks) keeps a deleted namespace Terminating long enough to see it. */
static void slow_setup(void)
{
	start_sim((const char *const[]){"--quiet", "--tick-ms", "5000", NULL});
}

TestSuite(provider_kubevirt_slow, .init = slow_setup, .fini = teardown, .timeout = 60);

Test(provider_kubevirt_slow, ensure_namespace_refuses_a_terminating_one)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider();
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = kubeconfig();
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = shd_k8s_new(kc, "sim", 2, NULL);
	struct shd_k8s_req del = {
		.method = "DELETE", .path = "/api/v1/namespaces/t9", .deadline_ns = in_ms(5000)};
	struct shd_k8s_resp r;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_not_null(k);
	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, "t9", 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_k8s_call(k, &del, &r, &err), 0, "%s", err.msg);
	shd_k8s_resp_release(&r);
	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, "t9", 0, &err), -SHP_E_CONFLICT);
	cr_assert(strstr(err.msg, "namespace 't9' is being terminated"), "%s", err.msg);
}
