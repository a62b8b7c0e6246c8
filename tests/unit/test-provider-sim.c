/*
 * The simulated cluster through the provider interface, with a 20 ms tick: every operation,
 * the state sequences as a watch sees them (order, increasing RVs), create-if-absent, dry
 * runs, the webhook's validation, selectors, expiry and re-list, unreachability and injected
 * faults, 5,000 seeded VMs, reset, snapshots, restores, clones, migrations, instance types,
 * health, and threads creating, powering and listing while one watches.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SHP_SIM_DRIVER
/*
 * Criterion does not start under ThreadSanitizer: built with SHP_SIM_DRIVER the same tests run
 * from a plain main(), one after the other, each with a fresh provider.
 */
static int drv_failures;
static void drv_fail(bool fatal, const char *file, int line, const char *what)
{
	fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
	drv_failures++;
	if (fatal)
		exit(1);
}
#define DRV_CHECK(fatal, c)                                                                        \
	do {                                                                                       \
		if (!(c))                                                                          \
			drv_fail(fatal, __FILE__, __LINE__, #c);                                   \
	} while (0)
#define cr_assert(c, ...) DRV_CHECK(true, c)
#define cr_expect(c, ...) DRV_CHECK(false, c)
#define cr_assert_fail(...) DRV_CHECK(true, false)
#define cr_assert_eq(a, b, ...) DRV_CHECK(true, (a) == (b))
#define cr_assert_geq(a, b, ...) DRV_CHECK(true, (a) >= (b))
#define cr_assert_not_null(a, ...) DRV_CHECK(true, (a) != NULL)
#define cr_expect_eq(a, b, ...) DRV_CHECK(false, (a) == (b))
#define cr_expect_neq(a, b, ...) DRV_CHECK(false, (a) != (b))
#define cr_expect_gt(a, b, ...) DRV_CHECK(false, (a) > (b))
#define cr_expect_geq(a, b, ...) DRV_CHECK(false, (a) >= (b))
#define cr_expect_lt(a, b, ...) DRV_CHECK(false, (a) < (b))
#define cr_expect_null(a, ...) DRV_CHECK(false, (a) == NULL)
#define cr_expect_str_eq(a, b, ...) DRV_CHECK(false, strcmp((a), (b)) == 0)
#define cr_expect_str_neq(a, b, ...) DRV_CHECK(false, strcmp((a), (b)) != 0)
#define TestSuite(...)
struct drv_test {
	const char *name;
	void (*fn)(void);
};
static struct drv_test drv_tests[64];
static int drv_n;
#define Test(suite, name, ...)                                                                     \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void reg_##name(void)                                  \
	{                                                                                          \
		drv_tests[drv_n++] = (struct drv_test){#name, test_##name};                        \
	}                                                                                          \
	static void test_##name(void)
#else
#include <criterion/criterion.h>
#endif

#include "error.h"
#include "provider-sim-internal.h"
#include "provider-sim.h"
#include "util.h"

/* long enough that a call under ThreadSanitizer on a loaded machine does not outlast a tick */
#define TICK_MS 100
#define MS 1000000ull
#define HEAD "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","

static struct shd_provider *P;

static void setup(void)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options o = {.cluster_name = "lab", .tick_ms = TICK_MS};

	P = shd_provider_sim_new(&o, &err);
	cr_assert_not_null(P, "%s", err.msg);
}

static void teardown(void)
{
	P = shd_provider_unref(P);
}

TestSuite(provider_sim, .init = setup, .fini = teardown);

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A VirtualMachine manifest; strategy NULL leaves runStrategy out, mem NULL leaves memory out. */
static json_t *vm_manifest(const char *ns, const char *name, const char *strategy, const char *mem)
{
	json_t *m = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{s:{s:{s:{s:{s:i}}}}}}", "apiVersion",
			      "kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name,
			      "namespace", ns, "labels", "app.kubernetes.io/managed-by", "shepherd",
			      "spec", "template", "spec", "domain", "cpu", "cores", 2);
	json_t *spec = json_object_get(m, "spec");

	if (strategy)
		json_object_set_new(spec, "runStrategy", json_string(strategy));
	if (mem)
		json_object_set_new(
			json_object_get(json_object_get(json_object_get(spec, "template"), "spec"),
					"domain"),
			"memory", json_pack("{s:s}", "guest", mem));
	return m;
}

static int create(const char *name, const char *strategy, struct shd_vm *ret)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *m = vm_manifest("default", name, strategy, "1Gi");
	int r = P->infra.ops->create_vm(P->infra.impl, m, false, ret, 0, &err);

	cr_assert_eq(r, 0, "create %s: %s", name, err.msg);
	return r;
}

static struct shd_vm get(const char *name)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;

	cr_assert_eq(P->infra.ops->get_vm(P->infra.impl, "default", name, &vm, 0, &err), 0, "%s",
		     err.msg);
	return vm;
}

static void wait_status(const char *name, enum shd_vm_status st)
{
	for (int i = 0; i < 200; i++) {
		if (get(name).status == st)
			return;
		sleep_ms(TICK_MS / 2);
	}
	cr_assert_fail("%s never became %s (is %s)", name, shd_vm_status_to_string(st),
		       shd_vm_status_to_string(get(name).status));
}

static int power(const char *name, enum shd_power_op op, struct shp_error *err)
{
	return P->infra.ops->power(P->infra.impl, "default", name, op, 0, err);
}

static char *list_rv(void)
{
	struct shd_vm_list l = {0};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, NULL, NULL, &l, 0, &err), 0);
	char *rv = strdup(l.resource_version);
	shd_vm_list_release(&l);
	return rv;
}

/* ---- a recorder of watch events ---------------------------------------------------------- */

#define MAX_EV 12000

struct rec {
	pthread_mutex_t lock;
	size_t n;
	enum shd_watch_type type[MAX_EV];
	enum shd_vm_status status[MAX_EV];
	char name[MAX_EV][32];
	uint64_t rv[MAX_EV];
	int stop_after; /* > 0: return -1 after this many events */
	bool saw_node;  /* an event carried a node or an IP */
	atomic_bool stop;
	/* for a watch thread */
	const char *selector, *from;
	int result;
	struct shp_error err;
	uint64_t deadline;
};

static int record(void *ud, enum shd_watch_type type, const struct shd_vm *vm, const char *rv)
{
	struct rec *r = ud;

	pthread_mutex_lock(&r->lock);
	if (r->n < MAX_EV) {
		r->type[r->n] = type;
		r->status[r->n] = vm ? vm->status : _SHD_VM_STATUS_MAX;
		snprintf(r->name[r->n], sizeof(r->name[0]), "%s", vm ? vm->name : "");
		r->rv[r->n] = strtoull(rv, NULL, 10);
		r->saw_node |= vm && (vm->node[0] || vm->ip[0]);
		r->n++;
	}
	size_t n = r->n;
	pthread_mutex_unlock(&r->lock);
	return r->stop_after > 0 && (int)n >= r->stop_after ? -1 : 0;
}

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof(*r));

	pthread_mutex_init(&r->lock, NULL);
	return r;
}

static int watch(struct rec *r, const char *selector, const char *from, long ms,
		 struct shp_error *err)
{
	return P->infra.ops->watch_vms(P->infra.impl, selector, from, record, r, &r->stop,
				       shp_now_monotonic_ns() + (uint64_t)ms * MS, err);
}

static void *watch_thread(void *arg)
{
	struct rec *r = arg;

	r->result = P->infra.ops->watch_vms(P->infra.impl, r->selector, r->from, record, r,
					    &r->stop, r->deadline, &r->err);
	return NULL;
}

/* Statuses of name's non-bookmark events, in order, as "STARTING,RUNNING,...". */
static void sequence_of(struct rec *r, const char *name, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->n; i++) {
		if (r->type[i] == SHD_WATCH_BOOKMARK || strcmp(r->name[i], name) != 0)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s%s%s", n ? "," : "",
				      r->type[i] == SHD_WATCH_DELETED ? "DELETED:" : "",
				      shd_vm_status_to_string(r->status[i]));
	}
}

static void assert_rvs_increase(const struct rec *r)
{
	for (size_t i = 1; i < r->n; i++)
		cr_assert(r->rv[i] >= r->rv[i - 1], "event %zu: rv %" PRIu64 " after %" PRIu64, i,
			  r->rv[i], r->rv[i - 1]);
	for (size_t i = 1; i < r->n; i++)
		if (r->type[i] != SHD_WATCH_BOOKMARK && r->type[i - 1] != SHD_WATCH_BOOKMARK)
			cr_assert(r->rv[i] > r->rv[i - 1], "events %zu and %zu share an rv", i - 1,
				  i);
}

/* ---- VMs and their states ------------------------------------------------------------------ */

Test(provider_sim, create_always_starts_then_runs)
{
	struct shd_vm vm;

	create("web", "Always", &vm);
	cr_expect_eq(vm.status, SHD_VM_STARTING);
	cr_expect_str_eq(vm.printable_status, "Starting");
	cr_expect_str_eq(vm.run_strategy, "Always");
	cr_expect_eq(vm.cpus, 2);
	cr_expect_eq(vm.memory_bytes, 1024ll * 1024 * 1024);
	cr_expect_neq(vm.uid[0], '\0');
	cr_expect_neq(vm.resource_version[0], '\0');
	wait_status("web", SHD_VM_RUNNING);
	vm = get("web");
	cr_expect(vm.ready);
	cr_expect_eq(strncmp(vm.node, "node-", 5), 0, "%s", vm.node);
	cr_expect_eq(strncmp(vm.ip, "10.", 3), 0, "%s", vm.ip);
	cr_expect_str_eq(vm.printable_status, "Running");

	create("db", NULL, &vm);
	cr_expect_eq(vm.status, SHD_VM_STOPPED, "no runStrategy: Halted");
	cr_expect_str_eq(vm.run_strategy, "Halted");
	sleep_ms(3 * TICK_MS);
	cr_expect_eq(get("db").status, SHD_VM_STOPPED);
	cr_expect_str_eq(get("db").node, "");
}

Test(provider_sim, state_sequences_through_watch)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_free_ char *rv0 = list_rv();
	struct rec *r = rec_new();

	create("a", "Always", NULL);
	wait_status("a", SHD_VM_RUNNING);
	cr_assert_eq(power("a", SHD_POWER_STOP, &err), 0);
	cr_expect_eq(get("a").status, SHD_VM_STOPPING);
	wait_status("a", SHD_VM_STOPPED);
	cr_expect_str_eq(get("a").run_strategy, "Halted", "stop of an Always VM sets Halted");
	cr_assert_eq(power("a", SHD_POWER_START, &err), 0);
	cr_expect_str_eq(get("a").run_strategy, "Always");
	wait_status("a", SHD_VM_RUNNING);
	cr_assert_eq(power("a", SHD_POWER_RESTART, &err), 0);
	wait_status("a", SHD_VM_RUNNING);
	cr_assert_eq(power("a", SHD_POWER_PAUSE, &err), 0);
	cr_expect_eq(get("a").status, SHD_VM_PAUSED, "pause is immediate");
	cr_expect(!get("a").ready);
	cr_assert_eq(power("a", SHD_POWER_UNPAUSE, &err), 0);
	cr_expect_eq(get("a").status, SHD_VM_RUNNING);
	cr_assert_eq(P->infra.ops->delete_vm(P->infra.impl, "default", "a", 0, &err), 0);
	cr_expect_str_eq(get("a").printable_status, "Terminating");
	sleep_ms(3 * TICK_MS);

	/* replayed from the log: a watch from before it all sees every step */
	cr_assert_eq(watch(r, NULL, rv0, 5 * TICK_MS, &err), 0, "%s", err.msg);
	char seq[512];
	sequence_of(r, "a", seq, sizeof(seq));
	cr_expect_str_eq(seq, "STARTING,RUNNING,STOPPING,STOPPED,STARTING,RUNNING,STOPPING,"
			      "STARTING,RUNNING,PAUSED,RUNNING,STOPPING,DELETED:STOPPING");
	cr_expect_eq(r->type[0], SHD_WATCH_ADDED);
	assert_rvs_increase(r);
	cr_expect_eq(r->type[r->n - 1], SHD_WATCH_BOOKMARK, "a bookmark closes the watch");
	cr_expect(!r->saw_node, "watch events carry no VMI fields, as from a real cluster");
	struct shd_vm vm;
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "a", &vm, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect(strstr(err.msg, "virtualmachines.kubevirt.io \"a\" not found"), "%s", err.msg);
	free(r);
}

Test(provider_sim, live_watch_in_a_thread)
{
	struct rec *r = rec_new();
	pthread_t t;

	r->from = list_rv();
	r->deadline = shp_now_monotonic_ns() + 20000 * MS;
	cr_assert_eq(pthread_create(&t, NULL, watch_thread, r), 0);
	sleep_ms(TICK_MS);
	create("live", "Always", NULL);
	wait_status("live", SHD_VM_RUNNING);
	for (int i = 0; i < 4000; i++) { /* the watch may lag behind under a sanitizer */
		pthread_mutex_lock(&r->lock);
		size_t n = r->n;
		pthread_mutex_unlock(&r->lock);
		if (n >= 2)
			break;
		sleep_ms(5);
	}
	atomic_store(&r->stop, true);
	pthread_join(t, NULL);
	cr_expect_eq(r->result, 0, "a stopped watch returns 0: %s", r->err.msg);
	char seq[128];
	sequence_of(r, "live", seq, sizeof(seq));
	cr_expect_str_eq(seq, "STARTING,RUNNING");
	assert_rvs_increase(r);
	free((char *)r->from);
	free(r);
}

Test(provider_sim, create_twice_is_one_vm_and_dry_run_persists_nothing)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm a, b, d;
	struct shd_vm_list l = {0};
	json_auto_t *m = vm_manifest("default", "dry", "Always", "2Gi");

	/* halted, so that no transition of its own moves the resourceVersion below */
	create("twice", "Halted", &a);
	create("twice", "Always", &b);
	cr_expect_str_eq(a.uid, b.uid);
	cr_expect_str_eq(b.run_strategy, "Halted", "the existing VM, not the new manifest");

	_cleanup_free_ char *rv = list_rv();
	cr_assert_eq(P->infra.ops->create_vm(P->infra.impl, m, true, &d, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_eq(d.status, SHD_VM_STARTING);
	cr_expect_eq(d.memory_bytes, 2ll << 30);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "dry", &d, 0, &err),
		     -SHP_E_NOTFOUND);
	_cleanup_free_ char *rv2 = list_rv();
	cr_expect_str_eq(rv, rv2, "a dry run does not bump the resourceVersion");
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "default", NULL, &l, 0, &err), 0);
	cr_expect_eq(l.n, 1);
	shd_vm_list_release(&l);
	cr_expect_eq(P->infra.ops->create_vm(P->infra.impl, m, true, NULL, 0, &err), 0);
}

struct bad_manifest {
	const char *json;
	enum shp_errc code;
	const char *msg_has;
};

#define DOM "\"template\":{\"spec\":{\"domain\":"
static const struct bad_manifest bads[] = {
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM "{}}}}}",
	 SHP_E_INVAL,
	 "no memory requested, at least one of 'spec.template.spec.domain.memory.guest', "
	 "'spec.template.spec.domain.memory.hugepages.pageSize' or "
	 "'spec.template.spec.domain.resources.requests.memory' must be set"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"running\":true,"
	      "\"runStrategy\":\"Always\"," DOM "{\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "Running and RunStrategy are mutually exclusive"},
	{HEAD "\"metadata\":{\"name\":\"Bad_Name\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "invalid VM name: it must be a DNS-1123 name"},
	{HEAD "\"metadata\":{\"name\":\"x\\u0001y\",\"namespace\":\"default\"},\"spec\":{}}",
	 SHP_E_INVAL, "invalid VM name"},
	{HEAD "\"metadata\":{\"namespace\":\"default\"},\"spec\":{}}", SHP_E_INVAL,
	 "invalid VM name"},
	{HEAD "\"metadata\":{\"name\":\"x\"},\"spec\":{}}", SHP_E_INVAL,
	 "invalid namespace name: it must be a DNS-1123 label"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"Bad NS\"},\"spec\":{}}", SHP_E_INVAL,
	 "invalid namespace name"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}}", SHP_E_INVAL,
	 "spec: Required value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":7}", SHP_E_INVAL,
	 "spec: Invalid value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{}}", SHP_E_INVAL,
	 "spec.template: Required value"},
	{"[1]", SHP_E_INVAL, "the VM manifest has no metadata"},
	{"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}}", SHP_E_INVAL,
	 "the manifest must be a kubevirt.io/v1 VirtualMachine"},
	{"{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"x\",\"namespace\":\"d\"}}",
	 SHP_E_INVAL, "the manifest must be a kubevirt.io/v1 VirtualMachine"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"runStrategy\":"
	      "\"Sometimes\"," DOM "{\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "spec.runStrategy: Unsupported value: \"Sometimes\""},
	{HEAD
	 "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"runStrategy\":7}}",
	 SHP_E_INVAL, "spec.runStrategy: Invalid value"},
	{HEAD
	 "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"running\":\"yes\"}}",
	 SHP_E_INVAL, "spec.running: Invalid value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{\"-bad\":\"v\"}},"
	      "\"spec\":{}}",
	 SHP_E_INVAL, "metadata.labels: Invalid value: \"-bad\""},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{\"k\":\"v v\"}},"
	      "\"spec\":{}}",
	 SHP_E_INVAL, "a valid label must be an empty string"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\",\"labels\":{\"k\":7}},"
	      "\"spec\":{}}",
	 SHP_E_INVAL, "must be a string"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\",\"labels\":[]},\"spec\":{}}",
	 SHP_E_INVAL, "metadata.labels: Invalid value: must be an object"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"instancetype\":{"
	      "\"name\":\"u1.huge\"}," DOM "{}}}}}",
	 SHP_E_INVAL,
	 "Failure to find instancetype: "
	 "virtualmachineclusterinstancetypes.instancetype.kubevirt.io "
	 "\"u1.huge\" not found"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"instancetype\":{"
	      "\"kind\":\"VirtualMachineInstancetype\",\"name\":\"u1.small\"}," DOM "{}}}}}",
	 SHP_E_INVAL, "virtualmachineinstancetypes.instancetype.kubevirt.io \"u1.small\""},
	{HEAD
	 "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"instancetype\":{}}}",
	 SHP_E_INVAL, "spec.instancetype.name: Required value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"preference\":{"
	      "\"name\":\"beos\"},\"instancetype\":{\"name\":\"u1.small\"}," DOM "{}}}}}",
	 SHP_E_INVAL, "virtualmachineclusterpreferences.instancetype.kubevirt.io \"beos\""},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"instancetype\":{"
	      "\"name\":\"u1.small\"}," DOM "{\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL,
	 "VM field(s) spec.template.spec.domain.memory conflicts with selected instance"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{\"instancetype\":{"
	      "\"name\":\"u1.small\"}," DOM "{\"cpu\":{\"cores\":2}}}}}}",
	 SHP_E_INVAL, "VM field(s) spec.template.spec.domain.cpu conflicts"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"cpu\":{\"cores\":\"2\"},\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "spec.template.spec.domain.cpu.cores: Invalid value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"cpu\":{\"cores\":1024,\"sockets\":8},\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "8192 vCPUs"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"cpu\":7,\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_INVAL, "domain.cpu: Invalid value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"memory\":{\"guest\":\"lots\"}}}}}}",
	 SHP_E_INVAL, "memory.guest: Invalid value: \"lots\""},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"},\"spec\":{" DOM
	      "{\"resources\":{\"requests\":{\"memory\":0}}}}}}}",
	 SHP_E_INVAL, "resources.requests.memory: Invalid value"},
	{HEAD "\"metadata\":{\"name\":\"x\",\"namespace\":\"nope\"},\"spec\":{" DOM
	      "{\"memory\":{\"guest\":\"1Gi\"}}}}}}",
	 SHP_E_NOTFOUND, "namespaces \"nope\" not found"},
};

Test(provider_sim, create_validation_like_the_webhook)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(bads); i++) {
		struct shp_error err = SHP_ERROR_INIT;
		json_error_t je;
		json_auto_t *m = json_loads(bads[i].json, JSON_DECODE_ANY, &je);
		cr_assert_not_null(m, "case %zu: %s", i, je.text);
		int r = P->infra.ops->create_vm(P->infra.impl, m, false, NULL, 0, &err);
		cr_expect_eq(r, -(int)bads[i].code, "case %zu: %d %s", i, r, err.msg);
		cr_expect(strstr(err.msg, bads[i].msg_has) != NULL, "case %zu: '%s' lacks '%s'", i,
			  err.msg, bads[i].msg_has);
		if (strstr(bads[i].msg_has, "invalid") != bads[i].msg_has &&
		    !strstr(bads[i].msg_has, "manifest"))
			cr_expect(strstr(err.msg, "creating VM 'default/x': cluster: ") ||
					  strstr(err.msg, "creating VM 'nope/x': cluster: "),
				  "case %zu: %s", i, err.msg);
	}
	struct shd_vm_list l = {0};
	struct shp_error err = SHP_ERROR_INIT;
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, NULL, NULL, &l, 0, &err), 0);
	cr_expect_eq(l.n, 0, "nothing invalid was stored");
	shd_vm_list_release(&l);
}

Test(provider_sim, namespace_and_instancetype_and_hugepages)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	json_auto_t *it = json_loads(
		HEAD
		"\"metadata\":{\"name\":\"it\",\"namespace\":\"team-a\"},\"spec\":{\"running\":"
		"false,\"instancetype\":{\"name\":\"u1.medium\"},\"preference\":{\"name\":"
		"\"fedora\"},\"template\":{\"spec\":{\"domain\":{}}}}}",
		0, NULL);
	json_auto_t *hp = json_loads(
		HEAD
		"\"metadata\":{\"name\":\"hp\",\"namespace\":\"team-a\"},\"spec\":{\"running\":"
		"true,\"template\":{\"spec\":{\"domain\":{\"memory\":{\"hugepages\":{\"pageSize\":"
		"\"2Mi\"}}}}}}}",
		0, NULL);

	cr_expect_eq(P->infra.ops->create_vm(P->infra.impl, it, false, &vm, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect_str_eq(err.api_code, "NOT_FOUND");
	cr_expect_eq(P->infra.ops->ensure_namespace(P->infra.impl, "Team A", 0, &err),
		     -SHP_E_INVAL);
	cr_assert_eq(P->infra.ops->ensure_namespace(P->infra.impl, "team-a", 0, &err), 0);
	cr_assert_eq(P->infra.ops->ensure_namespace(P->infra.impl, "team-a", 0, &err), 0);
	cr_assert_eq(P->infra.ops->create_vm(P->infra.impl, it, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_str_eq(vm.instancetype, "u1.medium");
	cr_expect_eq(vm.cpus, 0, "sizes come from the instance type, as the mapper reports them");
	cr_expect_eq(vm.memory_bytes, 0);
	cr_expect_str_eq(vm.run_strategy, "Halted", "running:false is Halted");
	cr_assert_eq(P->infra.ops->create_vm(P->infra.impl, hp, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_str_eq(vm.run_strategy, "Always");
	cr_expect_eq(vm.status, SHD_VM_STARTING);
}

Test(provider_sim, update_merges_labels_and_fields)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm;
	struct shd_vm_list l = {0};
	json_auto_t *labels_only = json_loads(
		HEAD "\"metadata\":{\"name\":\"u\",\"namespace\":\"default\",\"labels\":{"
		     "\"shepherd.io/adopt\":\"true\",\"app.kubernetes.io/managed-by\":null}}}",
		0, NULL);
	json_auto_t *start = json_loads(
		HEAD
		"\"metadata\":{\"name\":\"u\",\"namespace\":\"default\"},\"spec\":{\"runStrategy\":"
		"\"Always\",\"template\":{\"spec\":{\"domain\":{\"cpu\":{\"sockets\":4}}}}}}",
		0, NULL);
	json_auto_t *ghost = json_loads(HEAD "\"metadata\":{\"name\":\"ghost\",\"namespace\":"
					     "\"default\",\"labels\":{\"a\":\"b\"}}}",
					0, NULL);
	json_auto_t *conflict = json_loads(HEAD "\"metadata\":{\"name\":\"u\",\"namespace\":"
						"\"default\"},\"spec\":{\"instancetype\":{"
						"\"name\":\"u1.small\"}}}",
					   0, NULL);

	create("u", "Halted", NULL);
	_cleanup_free_ char *rv0 = list_rv();
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, labels_only, true, &vm, 0, &err), 0,
		     "%s", err.msg);
	_cleanup_free_ char *rv1 = list_rv();
	cr_expect_str_eq(rv0, rv1, "a dry-run update changes nothing");
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, labels_only, false, &vm, 0, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "default",
					    "shepherd.io/adopt=true,"
					    "!app.kubernetes.io/managed-by",
					    &l, 0, &err),
		     0, "%s", err.msg);
	cr_expect_eq(l.n, 1, "labels merged, null removed");
	shd_vm_list_release(&l);
	_cleanup_free_ char *rv2 = list_rv();
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, labels_only, false, &vm, 0, &err), 0);
	_cleanup_free_ char *rv3 = list_rv();
	cr_expect_str_eq(rv2, rv3, "a no-op apply does not bump the resourceVersion");

	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, start, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_eq(vm.cpus, 4);
	cr_expect_eq(vm.status, SHD_VM_STARTING, "runStrategy Always starts it");
	wait_status("u", SHD_VM_RUNNING);
	cr_expect_eq(P->infra.ops->update_vm(P->infra.impl, conflict, false, &vm, 0, &err),
		     -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "conflicts with selected instance type"), "%s", err.msg);
	cr_expect_eq(P->infra.ops->update_vm(P->infra.impl, ghost, false, &vm, 0, &err),
		     -SHP_E_NOTFOUND);
	json_auto_t *many = json_loads(HEAD "\"metadata\":{\"name\":\"u\",\"namespace\":"
					    "\"default\",\"labels\":{}}}",
				       0, NULL);
	for (int i = 0; i < 64; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		json_object_set_new(json_object_get(json_object_get(many, "metadata"), "labels"), k,
				    json_string("v"));
	}
	cr_expect_eq(P->infra.ops->update_vm(P->infra.impl, many, false, &vm, 0, &err),
		     -SHP_E_INVAL, "64 more labels are too many");
	cr_expect(strstr(err.msg, "Too many"), "%s", err.msg);

	/* Halted through an apply stops it; an apply of a whole absent VM creates it */
	json_object_set_new(json_object_get(start, "spec"), "runStrategy", json_string("Halted"));
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, start, false, &vm, 0, &err), 0);
	cr_expect_eq(vm.status, SHD_VM_STOPPING);
	wait_status("u", SHD_VM_STOPPED);
	json_auto_t *whole = vm_manifest("default", "applied", "Always", "1Gi");
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, whole, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_eq(vm.status, SHD_VM_STARTING);
}

Test(provider_sim, power_rules_of_the_subresources)
{
	struct shp_error err = SHP_ERROR_INIT;

	create("p", "Halted", NULL);
	cr_expect_eq(power("p", SHD_POWER_STOP, &err), 0, "stop when stopped: satisfied");
	cr_expect_eq(power("p", SHD_POWER_PAUSE, &err), -SHP_E_CONFLICT);
	cr_expect(strstr(err.msg, "virtualmachineinstance.kubevirt.io \"p\": VM is not running"),
		  "%s", err.msg);
	cr_expect_str_eq(err.api_code, "CONFLICT");
	cr_expect_eq(power("p", SHD_POWER_UNPAUSE, &err), -SHP_E_CONFLICT);
	cr_expect(strstr(err.msg, "VMI is not running"), "%s", err.msg);
	cr_expect_eq(power("p", SHD_POWER_RESTART, &err), -SHP_E_CONFLICT);
	cr_expect(strstr(err.msg, "RunStategy Halted does not support manual restart requests"),
		  "%s", err.msg);
	cr_expect_eq(power("nope", SHD_POWER_START, &err), -SHP_E_NOTFOUND);
	cr_expect(strstr(err.msg, "virtualmachine.kubevirt.io \"nope\" not found"), "%s", err.msg);
	cr_expect_eq(power("nope", SHD_POWER_PAUSE, &err), -SHP_E_NOTFOUND);
	cr_expect_eq(power("nope", SHD_POWER_STOP, NULL), -SHP_E_NOTFOUND, "err may be NULL");
	cr_expect(strstr(err.msg, "virtualmachineinstance.kubevirt.io"), "%s", err.msg);
	cr_expect_eq(power("p", (enum shd_power_op)42, &err), -SHP_E_INVAL);

	cr_assert_eq(power("p", SHD_POWER_START, &err), 0);
	cr_expect_eq(power("p", SHD_POWER_START, &err), 0, "start when starting: satisfied");
	cr_expect_eq(power("p", SHD_POWER_PAUSE, &err), -SHP_E_CONFLICT, "starting is not running");
	wait_status("p", SHD_VM_RUNNING);
	cr_expect_eq(power("p", SHD_POWER_START, &err), 0, "start when running: satisfied");
	cr_expect_eq(power("p", SHD_POWER_UNPAUSE, &err), 0, "unpause when not paused: satisfied");
	cr_assert_eq(power("p", SHD_POWER_PAUSE, &err), 0);
	cr_expect_eq(power("p", SHD_POWER_PAUSE, &err), 0, "pause when paused: satisfied");

	/* start during a stop starts it again; stop during a restart stops it */
	cr_assert_eq(power("p", SHD_POWER_STOP, &err), 0);
	cr_assert_eq(power("p", SHD_POWER_START, &err), 0);
	cr_expect_eq(power("p", SHD_POWER_RESTART, &err), 0, "restart pending: satisfied");
	wait_status("p", SHD_VM_RUNNING);
	cr_assert_eq(power("p", SHD_POWER_RESTART, &err), 0);
	cr_expect_eq(get("p").status, SHD_VM_STOPPING);
	cr_assert_eq(power("p", SHD_POWER_STOP, &err), 0);
	cr_expect_eq(power("p", SHD_POWER_STOP, &err), 0);
	cr_expect_eq(power("p", SHD_POWER_RESTART, &err), -SHP_E_CONFLICT, "stopping: not running");
	sleep_ms(4 * TICK_MS);
	cr_expect_eq(get("p").status, SHD_VM_STOPPED);

	/* Manual keeps its strategy; Once cannot be restarted */
	create("m", "Manual", NULL);
	cr_assert_eq(power("m", SHD_POWER_START, &err), 0);
	cr_expect_str_eq(get("m").run_strategy, "Manual");
	wait_status("m", SHD_VM_RUNNING);
	cr_assert_eq(power("m", SHD_POWER_RESTART, &err), 0);
	create("once", "Once", NULL);
	cr_expect_eq(power("once", SHD_POWER_RESTART, &err), -SHP_E_CONFLICT);

	/* a VM being deleted */
	cr_assert_eq(P->infra.ops->delete_vm(P->infra.impl, "default", "m", 0, &err), 0);
	cr_expect_eq(power("m", SHD_POWER_START, &err), -SHP_E_CONFLICT);
	cr_expect_eq(power("m", SHD_POWER_RESTART, &err), -SHP_E_CONFLICT);
	cr_expect_eq(power("m", SHD_POWER_STOP, &err), 0);
	cr_expect_eq(P->infra.ops->delete_vm(P->infra.impl, "default", "m", 0, &err), 0);
	cr_expect_eq(P->infra.ops->delete_vm(P->infra.impl, "default", "absent", 0, &err), 0,
		     "delete of an absent VM succeeds");
}

Test(provider_sim, selectors_in_list_and_watch)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	json_auto_t *adopt = json_pack("{s:s}", "shepherd.io/adopt", "true");
	struct rec *r = rec_new();

	cr_assert_eq(shd_provider_sim_seed(P, "ns1", "plain", 3, false, NULL, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_provider_sim_seed(P, "ns2", "offer", 2, true, adopt, &err), 0, "%s",
		     err.msg);
	_cleanup_free_ char *rv0 = list_rv();
	cr_assert_eq(
		P->infra.ops->list_vms(P->infra.impl, NULL, "shepherd.io/adopt=true", &l, 0, &err),
		0);
	cr_expect_eq(l.n, 2);
	cr_expect_str_eq(l.items[0].name, "offer-1");
	cr_expect_eq(l.items[0].status, SHD_VM_RUNNING);
	shd_vm_list_release(&l);
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "ns1", NULL, &l, 0, &err), 0);
	cr_expect_eq(l.n, 3);
	cr_expect_eq(l.items[0].status, SHD_VM_STOPPED);
	shd_vm_list_release(&l);
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "ns1", "shepherd.io/adopt", &l, 0, &err),
		     0);
	cr_expect_eq(l.n, 0);
	shd_vm_list_release(&l);
	cr_expect_eq(P->infra.ops->list_vms(P->infra.impl, NULL, "a in (", &l, 0, &err),
		     -SHP_E_INVAL);
	cr_expect_eq(P->infra.ops->list_vms(P->infra.impl, NULL, "a in (", &l, 0, NULL),
		     -SHP_E_INVAL);

	/* plain-1 enters the selector (ADDED), offer-1 leaves it (DELETED) */
	json_auto_t *in =
		json_loads(HEAD "\"metadata\":{\"name\":\"plain-1\",\"namespace\":\"ns1\","
				"\"labels\":{\"shepherd.io/adopt\":\"true\"}}}",
			   0, NULL);
	json_auto_t *out =
		json_loads(HEAD "\"metadata\":{\"name\":\"offer-1\",\"namespace\":\"ns2\","
				"\"labels\":{\"shepherd.io/adopt\":\"no\"}}}",
			   0, NULL);
	json_auto_t *still =
		json_loads(HEAD "\"metadata\":{\"name\":\"offer-2\",\"namespace\":\"ns2\","
				"\"labels\":{\"x\":\"y\"}}}",
			   0, NULL);
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, in, false, NULL, 0, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, out, false, NULL, 0, &err), 0);
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, still, false, NULL, 0, &err), 0);
	cr_assert_eq(watch(r, "shepherd.io/adopt=true", rv0, 2 * TICK_MS, &err), 0, "%s", err.msg);
	cr_assert_geq(r->n, 3);
	cr_expect_eq(r->type[0], SHD_WATCH_ADDED);
	cr_expect_str_eq(r->name[0], "plain-1");
	cr_expect_eq(r->type[1], SHD_WATCH_DELETED);
	cr_expect_str_eq(r->name[1], "offer-1");
	cr_expect_eq(r->type[2], SHD_WATCH_MODIFIED);
	cr_expect_str_eq(r->name[2], "offer-2");
	cr_expect_eq(watch(r, "=x", rv0, TICK_MS, &err), -SHP_E_INVAL);
	free(r);
}

Test(provider_sim, expiry_then_list_and_watch_again)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct rec *r = rec_new();
	_cleanup_free_ char *rv0 = list_rv();

	create("e1", "Halted", NULL);
	shd_provider_sim_expire_watches(P);
	cr_expect_eq(watch(r, NULL, rv0, 5 * TICK_MS, &err), SHD_WATCH_EXPIRED);
	cr_expect_eq(r->n, 0);
	_cleanup_free_ char *rv1 = list_rv();
	create("e2", "Halted", NULL);
	cr_expect_eq(watch(r, NULL, rv1, 2 * TICK_MS, &err), 0, "%s", err.msg);
	cr_expect_str_eq(r->name[0], "e2");

	/* a running watch ends EXPIRED too */
	struct rec *t = rec_new();
	pthread_t th;
	t->from = rv1;
	t->deadline = shp_now_monotonic_ns() + 5000 * MS;
	cr_assert_eq(pthread_create(&th, NULL, watch_thread, t), 0);
	sleep_ms(2 * TICK_MS);
	shd_provider_sim_expire_watches(P);
	pthread_join(th, NULL);
	cr_expect_eq(t->result, SHD_WATCH_EXPIRED);
	free(t);

	/* the ring's own floor: more events than it keeps */
	_cleanup_free_ char *rv2 = list_rv();
	cr_assert_eq(shd_provider_sim_seed(P, "default", "many", 4200, false, NULL, &err), 0);
	cr_expect_eq(watch(r, NULL, rv2, TICK_MS, &err), SHD_WATCH_EXPIRED);
	free(r);
}

Test(provider_sim, watch_edges)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct rec *r = rec_new();
	atomic_bool stop = true;

	create("w1", "Halted", NULL);
	create("w2", "Halted", NULL);
	cr_expect_eq(watch(r, NULL, "", TICK_MS, &err), -SHP_E_INVAL);
	cr_expect_eq(watch(r, NULL, "abc", TICK_MS, &err), -SHP_E_INVAL);
	cr_expect_eq(watch(r, NULL, "99999999", TICK_MS, &err), -SHP_E_TIMEOUT);
	cr_expect(strstr(err.msg, "Too large resource version"), "%s", err.msg);
	cr_expect_eq(P->infra.ops->watch_vms(P->infra.impl, NULL, NULL, record, r, NULL, 0, &err),
		     -SHP_E_INVAL);

	/* from "0": the current VMs as ADDED first */
	cr_assert_eq(watch(r, NULL, "0", 2 * TICK_MS, &err), 0, "%s", err.msg);
	cr_assert_geq(r->n, 3);
	cr_expect_eq(r->type[0], SHD_WATCH_ADDED);
	cr_expect_str_eq(r->name[0], "w1");
	cr_expect_str_eq(r->name[1], "w2");
	cr_expect_eq(r->type[r->n - 1], SHD_WATCH_BOOKMARK);

	/* the callback stops the watch, in the initial burst and later */
	r->n = 0;
	r->stop_after = 1;
	cr_expect_eq(watch(r, NULL, "0", 1000, &err), 0);
	cr_expect_eq(r->n, 1);
	r->n = 0;
	_cleanup_free_ char *rv = list_rv();
	create("w3", "Always", NULL);
	cr_expect_eq(watch(r, NULL, rv, 1000, &err), 0);
	cr_expect_eq(r->n, 1);

	/* the stop flag; idle bookmarks */
	r->n = 0;
	r->stop_after = 0;
	cr_expect_eq(P->infra.ops->watch_vms(P->infra.impl, NULL, "0", record, r, &stop, 0, &err),
		     0);
	r->n = 0;
	sleep_ms(3 * TICK_MS);
	_cleanup_free_ char *rv2 = list_rv();
	cr_expect_eq(watch(r, NULL, rv2, (SIM_BOOKMARK_TICKS + 10) * TICK_MS, &err), 0);
	cr_expect_geq(r->n, 2, "an idle bookmark and the closing one");
	cr_expect_eq(r->type[0], SHD_WATCH_BOOKMARK);

	/* a deadline already past */
	cr_expect_eq(P->infra.ops->watch_vms(P->infra.impl, NULL, "0", record, r, NULL, 1, &err),
		     -SHP_E_TIMEOUT);
	free(r);
}

/* ---- switches: unreachable, faults, reset, raw removal -------------------------------------- */

Test(provider_sim, unreachable_and_faults)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_health_report h;
	struct shd_vm vm;
	struct rec *r = rec_new();
	pthread_t th;

	cr_assert_eq(P->cluster.ops->health(P->cluster.impl, &h, 0, &err), 0);
	cr_expect_eq(h.health, SHD_HEALTH_HEALTHY);
	cr_expect_str_eq(h.kubernetes_version, "v1.30.0-sim");
	cr_expect_str_eq(h.kubevirt_version, "v1.5.0-sim");
	create("u1", "Halted", NULL);

	r->from = list_rv();
	r->deadline = shp_now_monotonic_ns() + 5000 * MS;
	cr_assert_eq(pthread_create(&th, NULL, watch_thread, r), 0);
	sleep_ms(2 * TICK_MS);
	shd_provider_sim_set_unreachable(P, true);
	pthread_join(th, NULL);
	cr_expect_eq(r->result, -SHP_E_UNAVAIL, "a running watch breaks");
	cr_expect_str_eq(r->err.api_code, "UNREACHABLE");
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err),
		     -SHP_E_UNAVAIL);
	cr_expect_str_eq(err.api_code, "UNREACHABLE");
	cr_expect(strstr(err.msg, "cluster 'lab' is unreachable"), "%s", err.msg);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, NULL),
		     -SHP_E_UNAVAIL);
	cr_expect_eq(watch(r, NULL, "0", TICK_MS, &err), -SHP_E_UNAVAIL);
	cr_assert_eq(P->cluster.ops->health(P->cluster.impl, &h, 0, &err), 0);
	cr_expect_eq(h.health, SHD_HEALTH_UNREACHABLE);
	cr_expect(strstr(h.message, "unreachable"), "%s", h.message);
	shd_provider_sim_set_unreachable(P, false);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err), 0);

	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 3);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err),
		     -SHP_E_UNAVAIL);
	cr_expect(strstr(err.msg, "injected failure"), "%s", err.msg);
	cr_expect_str_eq(err.api_code, "CLUSTER_UNAVAILABLE");
	cr_expect_eq(power("u1", SHD_POWER_START, NULL), -SHP_E_UNAVAIL, "err may be NULL");
	cr_expect_eq(power("u1", SHD_POWER_START, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err), 0,
		     "three calls only");
	cr_expect_eq(vm.status, SHD_VM_STOPPED, "the failed start did nothing");
	shd_provider_sim_set_fault(P, -5, 1);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err),
		     -SHP_E_INTERNAL);
	shd_provider_sim_set_fault(P, SHP_E_CONFLICT, 5);
	shd_provider_sim_set_fault(P, SHP_E_CONFLICT, 0);
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 0, &err), 0);

	/* deadlines */
	cr_expect_eq(P->infra.ops->get_vm(P->infra.impl, "default", "u1", &vm, 1, &err),
		     -SHP_E_TIMEOUT);
	free((char *)r->from);
	free(r);
}

Test(provider_sim, reset_and_remove_raw)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	struct rec *r = rec_new();

	create("r1", "Halted", NULL);
	create("r2", "Halted", NULL);
	_cleanup_free_ char *rv0 = list_rv();
	cr_expect_eq(shd_provider_sim_remove_raw(P, "default", "r2"), 0);
	cr_expect_eq(shd_provider_sim_remove_raw(P, "default", "r2"), -SHP_E_NOTFOUND);
	_cleanup_free_ char *rv1 = list_rv();
	cr_expect_str_eq(rv0, rv1, "a raw removal leaves no trace");
	cr_expect_eq(watch(r, NULL, rv0, TICK_MS, &err), 0);
	cr_expect_eq(r->n, 1, "only the closing bookmark: no event for the ghost");

	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 3);
	shd_provider_sim_reset(P);
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, NULL, NULL, &l, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_eq(l.n, 0);
	cr_expect_gt(strtoull(l.resource_version, NULL, 10), strtoull(rv0, NULL, 10) - 1,
		     "the resourceVersion does not go back");
	shd_vm_list_release(&l);
	cr_expect_eq(watch(r, NULL, rv1, TICK_MS, &err), SHD_WATCH_EXPIRED);
	json_auto_t *m = vm_manifest("team-x", "x", NULL, "1Gi");
	cr_expect_eq(P->infra.ops->create_vm(P->infra.impl, m, false, NULL, 0, &err),
		     -SHP_E_NOTFOUND, "namespaces created before the reset are gone");
	create("after", "Halted", NULL);
	free(r);
}

Test(provider_sim, seed_five_thousand_and_list)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm_list l = {0};
	json_auto_t *labels = json_pack("{s:s}", "app.kubernetes.io/managed-by", "shepherd");
	uint64_t t0 = shp_now_monotonic_ns();

	cr_assert_eq(shd_provider_sim_seed(P, "bulk", "vm", 5000, true, labels, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(shd_provider_sim_seed(P, "bulk", "vm", 5000, true, labels, &err), 0,
		     "a second seed skips what exists");
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "bulk",
					    "app.kubernetes.io/managed-by=shepherd", &l, 0, &err),
		     0);
	cr_expect_eq(l.n, 5000);
	cr_expect_eq(l.items[0].status, SHD_VM_RUNNING);
	cr_expect_neq(l.items[4999].ip[0], '\0');
	shd_vm_list_release(&l);
	cr_expect_lt(shp_now_monotonic_ns() - t0, 3000 * MS, "seeding and listing are quick");

	cr_expect_eq(shd_provider_sim_seed(P, "Bad", "vm", 1, true, NULL, &err), -SHP_E_INVAL);
	cr_expect_eq(shd_provider_sim_seed(P, "ok", "Bad_", 1, true, NULL, &err), -SHP_E_INVAL);
	cr_expect_eq(shd_provider_sim_seed(P, "ok", NULL, 1, true, NULL, &err), -SHP_E_INVAL);
	cr_expect_eq(shd_provider_sim_seed(P, "ok", "vm", -1, true, NULL, &err), -SHP_E_INVAL);
	json_auto_t *bad = json_pack("{s:i}", "k", 1);
	cr_expect_eq(shd_provider_sim_seed(P, "ok", "vm", 1, true, bad, &err), -SHP_E_INVAL);
}

Test(provider_sim, options)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options bad_tick = {.tick_ms = -1}, bad_nodes = {.nodes = 5000};
	json_t *caps = NULL;

	cr_expect_null(shd_provider_sim_new(&bad_tick, &err));
	cr_expect_eq(err.code, SHP_E_INVAL);
	cr_expect_null(shd_provider_sim_new(&bad_nodes, &err));
	struct shd_provider *d = shd_provider_sim_new(NULL, &err);
	cr_assert_not_null(d);
	cr_expect_str_eq(d->kind, "simulated");
	cr_expect(d->console.ops != NULL, "the console is simulated (provider-sim-console.c)");
	cr_assert_eq(d->cluster.ops->capabilities(d->cluster.impl, &caps, 0, &err), 0);
	char *s = json_dumps(caps, JSON_COMPACT);
	cr_expect_str_eq(s, "[\"clone\",\"instancetypes\",\"kubevirt\",\"live-migration\","
			    "\"snapshot\",\"vnc\"]");
	free(s);
	json_decref(caps);
	shd_provider_unref(d);

	struct shd_sim_options all = {.gpu = true, .hugepages = true};
	d = shd_provider_sim_new(&all, &err);
	cr_assert_eq(d->cluster.ops->capabilities(d->cluster.impl, &caps, 0, &err), 0);
	s = json_dumps(caps, JSON_COMPACT);
	cr_expect_str_eq(s, "[\"clone\",\"gpu\",\"hugepages\",\"instancetypes\",\"kubevirt\","
			    "\"live-migration\",\"snapshot\",\"vnc\"]");
	free(s);
	json_decref(caps);
	shd_provider_sim_set_fault(d, SHP_E_UNAVAIL, 1);
	cr_expect_eq(d->cluster.ops->capabilities(d->cluster.impl, &caps, 0, &err), -SHP_E_UNAVAIL);
	shd_provider_unref(d);
}

/* ---- the other kinds ----------------------------------------------------------------------- */

Test(provider_sim, instancetypes_and_preferences)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_instancetype *it = NULL;
	struct shd_preference *pr = NULL;
	size_t n = 0;

	cr_assert_eq(P->instancetypes.ops->list_instancetypes(P->instancetypes.impl, NULL, &it, &n,
							      0, &err),
		     0);
	cr_expect_geq(n, 8);
	bool medium = false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(it[i].name, "u1.medium") == 0)
			medium = it[i].cpus == 1 && it[i].memory_bytes == 4ll << 30 &&
				 it[i].cluster_scoped;
	cr_expect(medium, "u1.medium is 1 vCPU and 4Gi");
	free(it);
	cr_assert_eq(P->instancetypes.ops->list_instancetypes(P->instancetypes.impl, "default", &it,
							      &n, 0, &err),
		     0);
	cr_expect_eq(n, 0);
	free(it);
	cr_assert_eq(P->instancetypes.ops->list_preferences(P->instancetypes.impl, NULL, &pr, &n, 0,
							    &err),
		     0);
	cr_expect_geq(n, 3);
	free(pr);
	cr_assert_eq(P->instancetypes.ops->list_preferences(P->instancetypes.impl, "default", &pr,
							    &n, 0, &err),
		     0);
	cr_expect_eq(n, 0);
	free(pr);
	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 2);
	cr_expect_eq(P->instancetypes.ops->list_instancetypes(P->instancetypes.impl, NULL, &it, &n,
							      0, &err),
		     -SHP_E_UNAVAIL);
	cr_expect_eq(P->instancetypes.ops->list_preferences(P->instancetypes.impl, NULL, &pr, &n, 0,
							    &err),
		     -SHP_E_UNAVAIL);
}

static struct shd_migration mig_get(const char *name)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_migration m;

	cr_assert_eq(P->migrations.ops->get(P->migrations.impl, "default", name, &m, 0, &err), 0,
		     "%s", err.msg);
	return m;
}

static void wait_migration_final(const char *name)
{
	for (int i = 0; i < 200; i++) {
		struct shd_migration m = mig_get(name);
		if (m.completed || m.failed)
			return;
		sleep_ms(TICK_MS / 2);
	}
	cr_assert_fail("migration %s never ended", name);
}

Test(provider_sim, live_migration)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_migration m, m2;
	struct shd_migration *all = NULL;
	size_t n = 0;

	create("mv", "Always", NULL);
	cr_expect_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     -SHP_E_INVAL, "starting: not running");
	cr_expect(strstr(err.msg, "migrating VM 'default/mv': cluster: admission webhook "
				  "\"migration-create-validator.kubevirt.io\" denied the request: "
				  "Cannot migrate VMI"),
		  "%s", err.msg);
	wait_status("mv", SHD_VM_RUNNING);
	char node[64];
	snprintf(node, sizeof(node), "%s", get("mv").node);
	cr_assert_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     0, "%s", err.msg);
	cr_expect_eq(strncmp(m.name, "shepherd-migrate-", 17), 0, "%s", m.name);
	cr_expect_str_eq(m.phase, "Pending");
	cr_expect_str_eq(m.source_node, node);
	cr_expect_str_neq(m.target_node, node);
	cr_expect_eq(get("mv").status, SHD_VM_MIGRATING);
	cr_expect_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m2, 0, &err),
		     -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "in-flight migration detected"), "%s", err.msg);
	cr_expect_eq(power("mv", SHD_POWER_PAUSE, &err), -SHP_E_CONFLICT);
	cr_expect_eq(power("mv", SHD_POWER_UNPAUSE, &err), 0);
	sleep_ms(2 * TICK_MS);
	cr_expect_str_neq(mig_get(m.name).phase, "Pending", "phases advance");
	wait_migration_final(m.name);
	m2 = mig_get(m.name);
	cr_expect(m2.completed);
	cr_expect_str_eq(m2.phase, "Succeeded");
	cr_expect_eq(get("mv").status, SHD_VM_RUNNING);
	cr_expect_str_eq(get("mv").node, m.target_node, "the VM moved");

	/* cancel: Failed with abort */
	cr_assert_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     0);
	cr_assert_eq(P->migrations.ops->cancel(P->migrations.impl, "default", "mv", 0, &err), 0);
	cr_assert_eq(P->migrations.ops->cancel(P->migrations.impl, "default", "mv", 0, &err), 0);
	wait_migration_final(m.name);
	m2 = mig_get(m.name);
	cr_expect(m2.failed && m2.abort_requested);
	cr_expect_str_eq(m2.phase, "Failed");
	cr_expect_str_eq(get("mv").node, m.source_node, "an aborted migration stays put");
	cr_expect_eq(get("mv").status, SHD_VM_RUNNING);
	cr_expect_eq(P->migrations.ops->cancel(P->migrations.impl, "default", "mv", 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect_eq(P->migrations.ops->get(P->migrations.impl, "default", "nope", &m, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "nope", &m, 0, &err),
		     -SHP_E_INVAL);
	cr_expect(strstr(err.msg, "the VMI \"default/nope\" does not exist"), "%s", err.msg);
	cr_expect_eq(P->migrations.ops->cancel(P->migrations.impl, "default", NULL, 0, &err),
		     -SHP_E_INVAL);
	cr_expect_eq(P->migrations.ops->list(P->migrations.impl, NULL, NULL, &all, &n, 0, &err),
		     -SHP_E_INVAL);
	cr_expect_eq(P->migrations.ops->get(P->migrations.impl, "default", "Bad Name", &m, 0, &err),
		     -SHP_E_INVAL);
	cr_expect(!strstr(err.msg, "Bad Name"), "a bad name is not echoed: %s", err.msg);

	/* a stop interrupts one; finished ones are kept five per VM */
	cr_assert_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     0);
	cr_assert_eq(power("mv", SHD_POWER_STOP, &err), 0);
	cr_expect(mig_get(m.name).failed);
	wait_status("mv", SHD_VM_STOPPED);
	cr_assert_eq(power("mv", SHD_POWER_START, &err), 0);
	for (int i = 0; i < 4; i++) {
		wait_status("mv", SHD_VM_RUNNING);
		cr_assert_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0,
							&err),
			     0, "%s", err.msg);
		wait_migration_final(m.name);
	}
	cr_assert_eq(
		P->migrations.ops->list(P->migrations.impl, "default", "mv", &all, &n, 0, &err), 0);
	cr_expect_eq(n, 5);
	free(all);
	cr_assert_eq(
		P->migrations.ops->list(P->migrations.impl, "default", NULL, &all, &n, 0, &err), 0);
	cr_expect_eq(n, 5);
	free(all);
	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 4);
	cr_expect_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     -SHP_E_UNAVAIL);
	cr_expect_eq(P->migrations.ops->get(P->migrations.impl, "default", "x", &m, 0, &err),
		     -SHP_E_UNAVAIL);
	cr_expect_eq(
		P->migrations.ops->list(P->migrations.impl, "default", NULL, &all, &n, 0, &err),
		-SHP_E_UNAVAIL);
	cr_expect_eq(P->migrations.ops->cancel(P->migrations.impl, "default", "mv", 0, &err),
		     -SHP_E_UNAVAIL);

	/* deleting the VM drops its migrations */
	wait_status("mv", SHD_VM_RUNNING);
	cr_assert_eq(P->migrations.ops->migrate(P->migrations.impl, "default", "mv", &m, 0, &err),
		     0);
	cr_assert_eq(P->infra.ops->delete_vm(P->infra.impl, "default", "mv", 0, &err), 0);
	sleep_ms(3 * TICK_MS);
	cr_assert_eq(
		P->migrations.ops->list(P->migrations.impl, "default", NULL, &all, &n, 0, &err), 0);
	cr_expect_eq(n, 0);
	free(all);
}

Test(provider_sim, migration_needs_a_second_node)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_sim_options one = {.tick_ms = TICK_MS, .nodes = 1};
	struct shd_provider *d = shd_provider_sim_new(&one, &err);
	struct shd_migration m;
	json_auto_t *labels = NULL;

	cr_assert_eq(shd_provider_sim_seed(d, "default", "solo", 1, true, labels, &err), 0);
	cr_assert_eq(
		d->migrations.ops->migrate(d->migrations.impl, "default", "solo-1", &m, 0, &err),
		0);
	cr_expect_str_eq(m.target_node, "");
	sleep_ms(4 * TICK_MS);
	cr_assert_eq(d->migrations.ops->get(d->migrations.impl, "default", m.name, &m, 0, &err), 0);
	cr_expect(m.failed);
	cr_expect(strstr(m.error, "nodes are available"), "%s", m.error);
	shd_provider_unref(d);
}

static struct shd_snapshot snap_get(const char *name)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_snapshot s;

	cr_assert_eq(P->snapshots.ops->get(P->snapshots.impl, "default", name, &s, 0, &err), 0,
		     "%s", err.msg);
	return s;
}

Test(provider_sim, snapshots_and_restores)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_snapshot s;
	struct shd_snapshot *all = NULL;
	struct shd_restore r;
	size_t n = 0;
	const struct shd_snapshot_ops *ops = P->snapshots.ops;
	void *impl = P->snapshots.impl;

	create("sv", "Always", NULL);
	cr_assert_eq(ops->create(impl, "default", "sv", "snap1", &s, 0, &err), 0, "%s", err.msg);
	cr_expect_str_eq(s.phase, "InProgress");
	cr_expect(!s.ready);
	cr_expect_eq(ops->create(impl, "default", "sv", "snap1", &s, 0, &err), 0, "same: existing");
	cr_expect_eq(ops->create(impl, "default", "other", "snap1", &s, 0, &err), -SHP_E_CONFLICT);
	cr_expect(strstr(err.msg, "a different virtualmachinesnapshots named 'snap1' exists"), "%s",
		  err.msg);
	cr_expect_eq(ops->list(impl, NULL, NULL, &all, &n, 0, &err), -SHP_E_INVAL);
	cr_expect_eq(ops->create(impl, "default", "nope", "snap2", &s, 0, &err), -SHP_E_NOTFOUND);
	cr_expect_eq(ops->create(impl, "default", "sv", "Bad_Snap", &s, 0, &err), -SHP_E_INVAL);
	cr_expect_eq(ops->create(impl, "nons", "sv", "snap3", &s, 0, &err), -SHP_E_NOTFOUND);
	cr_expect_eq(ops->restore(impl, "default", "sv", "snap1", "r0", &r, 0, &err), -SHP_E_INVAL,
		     "not ready yet");
	cr_expect(strstr(err.msg, "not ready to use"), "%s", err.msg);
	sleep_ms(3 * TICK_MS);
	s = snap_get("snap1");
	cr_expect_str_eq(s.phase, "Succeeded");
	cr_expect(s.ready);
	cr_expect_eq(strncmp(s.content, "vmsnapshot-content-", 19), 0, "%s", s.content);
	cr_expect_neq(s.created_at[0], '\0');
	cr_assert_eq(ops->list(impl, "default", "sv", &all, &n, 0, &err), 0);
	cr_expect_eq(n, 1);
	free(all);
	cr_assert_eq(ops->list(impl, "default", "other", &all, &n, 0, &err), 0);
	cr_expect_eq(n, 0);
	free(all);
	cr_expect_eq(ops->get(impl, "default", "nope", &s, 0, &err), -SHP_E_NOTFOUND);

	/* restore: the target must be stopped; it gets the snapshot's labels back */
	cr_expect_eq(ops->restore(impl, "default", "sv", "snap1", "r1", &r, 0, &err),
		     -SHP_E_CONFLICT);
	cr_expect_eq(ops->restore(impl, "default", "sv", "nope", "r1", &r, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect_eq(ops->restore(impl, "default", "sv", "snap1", "Bad_R", &r, 0, &err),
		     -SHP_E_INVAL);
	cr_assert_eq(power("sv", SHD_POWER_STOP, &err), 0);
	wait_status("sv", SHD_VM_STOPPED);
	json_auto_t *relabel = json_loads(HEAD "\"metadata\":{\"name\":\"sv\",\"namespace\":"
					       "\"default\",\"labels\":{\"extra\":\"1\"}}}",
					  0, NULL);
	cr_assert_eq(P->infra.ops->update_vm(P->infra.impl, relabel, false, NULL, 0, &err), 0);
	cr_assert_eq(ops->restore(impl, "default", "sv", "snap1", "r1", &r, 0, &err), 0, "%s",
		     err.msg);
	cr_expect(!r.complete);
	cr_expect_eq(ops->restore(impl, "default", "sv", "snap1", "r1", &r, 0, &err), 0);
	cr_expect_eq(ops->restore(impl, "default", "xx", "snap1", "r1", &r, 0, &err),
		     -SHP_E_CONFLICT);
	sleep_ms(3 * TICK_MS);
	cr_assert_eq(ops->get_restore(impl, "default", "r1", &r, 0, &err), 0);
	cr_expect(r.complete);
	struct shd_vm_list l = {0};
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, "default", "extra", &l, 0, &err), 0);
	cr_expect_eq(l.n, 0, "the labels are the snapshot's again");
	shd_vm_list_release(&l);
	cr_expect_eq(ops->get_restore(impl, "default", "nope", &r, 0, &err), -SHP_E_NOTFOUND);

	/* restore to a VM that does not exist creates it */
	cr_assert_eq(ops->restore(impl, "default", "sv-copy", "snap1", "r2", &r, 0, &err), 0);
	sleep_ms(3 * TICK_MS);
	cr_expect_str_eq(get("sv-copy").run_strategy, "Always", "as it was when snapshotted");
	/* a restore whose snapshot went away */
	cr_assert_eq(ops->restore(impl, "default", "sv-gone", "snap1", "r3", &r, 0, &err), 0);
	cr_assert_eq(ops->remove(impl, "default", "snap1", 0, &err), 0);
	cr_assert_eq(ops->remove(impl, "default", "snap1", 0, &err), 0, "absent: success");
	sleep_ms(3 * TICK_MS);
	cr_assert_eq(ops->get_restore(impl, "default", "r3", &r, 0, &err), 0);
	cr_expect(!r.complete);
	cr_expect_neq(r.error[0], '\0');

	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 6);
	cr_expect_eq(ops->create(impl, "default", "sv", "s9", &s, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->get(impl, "default", "s9", &s, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->list(impl, "default", NULL, &all, &n, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->remove(impl, "default", "s9", 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->restore(impl, "default", "sv", "s9", "r9", &r, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->get_restore(impl, "default", "r9", &r, 0, &err), -SHP_E_UNAVAIL);
}

Test(provider_sim, clones)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_clone c;
	struct shd_clone *all = NULL;
	struct shd_snapshot s;
	size_t n = 0;
	const struct shd_clone_ops *ops = P->clones.ops;
	void *impl = P->clones.impl;
	_cleanup_free_ char *rv0 = list_rv();
	struct rec *r = rec_new();

	create("src", "Always", NULL);
	cr_assert_eq(ops->from_vm(impl, "default", "src", "copy", "c1", &c, 0, &err), 0, "%s",
		     err.msg);
	cr_expect_str_eq(c.phase, "SnapshotInProgress");
	cr_expect_str_eq(c.source_kind, "VirtualMachine");
	cr_expect_eq(ops->from_vm(impl, "default", "src", "copy", "c1", &c, 0, &err), 0);
	cr_expect_eq(ops->from_vm(impl, "default", "other", "copy", "c1", &c, 0, &err),
		     -SHP_E_CONFLICT);
	cr_expect_eq(ops->from_vm(impl, "default", "nope", "copy", "c2", &c, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_expect_eq(ops->from_vm(impl, "default", "src", "Bad_T", "c2", &c, 0, &err),
		     -SHP_E_INVAL);
	cr_expect_eq(ops->from_vm(impl, "nons", "src", "t", "c2", &c, 0, &err), -SHP_E_NOTFOUND);
	sleep_ms(TICK_MS + TICK_MS / 2);
	for (int i = 0; i < 400; i++) {
		cr_assert_eq(ops->get(impl, "default", "c1", &c, 0, &err), 0);
		if (strcmp(c.phase, "Succeeded") == 0)
			break;
		sleep_ms(TICK_MS / 2);
	}
	cr_expect_str_eq(c.phase, "Succeeded");
	cr_expect_eq(get("copy").status == SHD_VM_STARTING || get("copy").status == SHD_VM_RUNNING,
		     1, "the target copies the source's runStrategy Always");
	cr_assert_eq(watch(r, NULL, rv0, TICK_MS, &err), 0);
	char seq[256];
	sequence_of(r, "copy", seq, sizeof(seq));
	cr_expect_eq(strncmp(seq, "STARTING", 8), 0, "%s", seq);

	/* from a snapshot; a generated target; a target that exists fails */
	cr_assert_eq(
		P->snapshots.ops->create(P->snapshots.impl, "default", "src", "s1", &s, 0, &err),
		0);
	sleep_ms(2 * TICK_MS);
	cr_assert_eq(ops->from_snapshot(impl, "default", "s1", NULL, "c3", &c, 0, &err), 0);
	cr_expect_str_eq(c.phase, "RestoreInProgress");
	cr_expect_eq(strncmp(c.target, "clone-", 6), 0, "%s", c.target);
	cr_expect_eq(ops->from_snapshot(impl, "default", "nope", NULL, "c4", &c, 0, &err),
		     -SHP_E_NOTFOUND);
	cr_assert_eq(ops->from_vm(impl, "default", "src", "src", "c5", &c, 0, &err), 0);
	sleep_ms(6 * TICK_MS);
	cr_assert_eq(ops->get(impl, "default", "c5", &c, 0, &err), 0);
	cr_expect_str_eq(c.phase, "Failed");
	cr_expect(strstr(c.error, "already exists"), "%s", c.error);
	cr_assert_eq(ops->list(impl, "default", &all, &n, 0, &err), 0);
	cr_expect_eq(n, 3);
	free(all);
	cr_expect_eq(ops->get(impl, "default", "nope", &c, 0, &err), -SHP_E_NOTFOUND);
	cr_expect(strstr(err.msg, "getting virtualmachineclones 'default/nope': cluster: "
				  "virtualmachineclones.clone.kubevirt.io \"nope\" not found"),
		  "%s", err.msg);
	cr_expect_eq(ops->list(impl, NULL, &all, &n, 0, &err), -SHP_E_INVAL);
	shd_provider_sim_set_fault(P, SHP_E_UNAVAIL, 3);
	cr_expect_eq(ops->from_vm(impl, "default", "src", "t", "c9", &c, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->get(impl, "default", "c9", &c, 0, &err), -SHP_E_UNAVAIL);
	cr_expect_eq(ops->list(impl, "default", &all, &n, 0, &err), -SHP_E_UNAVAIL);
	free(r);
}

/* ---- threads ----------------------------------------------------------------------------------
 */

struct worker {
	int id;
	atomic_int *errors;
};

static void worker_error(struct worker *w, const char *what, const struct shp_error *err)
{
	fprintf(stderr, "worker %d: %s: %s\n", w->id, what, err->msg);
	atomic_fetch_add(w->errors, 1);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const enum shd_power_op ops[] = {SHD_POWER_START, SHD_POWER_STOP, SHD_POWER_RESTART,
						SHD_POWER_PAUSE, SHD_POWER_UNPAUSE};

	for (int i = 0; i < 40; i++) {
		struct shp_error err = SHP_ERROR_INIT;
		char name[32];
		struct shd_vm_list l = {0};
		snprintf(name, sizeof(name), "t%d-%d", w->id, i % 8);
		json_t *m = vm_manifest("default", name, i % 2 ? "Always" : "Halted", "1Gi");
		if (P->infra.ops->create_vm(P->infra.impl, m, false, NULL, 0, &err) < 0)
			worker_error(w, "create", &err);
		json_decref(m);
		/* a name deleted 8 rounds ago may still be going (create returns it, then it is
		 * gone): power answers 409 while it goes, 404 once it has gone */
		int r = P->infra.ops->power(P->infra.impl, "default", name, ops[i % 5], 0, &err);
		if (r < 0 && r != -SHP_E_CONFLICT && r != -SHP_E_NOTFOUND)
			worker_error(w, "power", &err);
		if (P->infra.ops->list_vms(P->infra.impl, NULL, "app.kubernetes.io/managed-by", &l,
					   0, &err) < 0)
			worker_error(w, "list", &err);
		shd_vm_list_release(&l);
		if (i % 10 == 9)
			(void)P->infra.ops->delete_vm(P->infra.impl, "default", name, 0, &err);
		sleep_ms(1);
	}
	return NULL;
}

Test(provider_sim, threads_create_power_list_while_one_watches)
{
	struct rec *r = rec_new();
	pthread_t watcher, workers[4];
	struct worker w[4];
	atomic_int errors = 0;

	r->from = list_rv();
	r->deadline = shp_now_monotonic_ns() + 10000 * MS;
	cr_assert_eq(pthread_create(&watcher, NULL, watch_thread, r), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){i, &errors};
		cr_assert_eq(pthread_create(&workers[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(workers[i], NULL);
	/* every transition done (restarts take two ticks), then until the watch has seen it all */
	sleep_ms(4 * TICK_MS);
	for (int i = 0; i < 500; i++) {
		_cleanup_free_ char *now = list_rv();
		pthread_mutex_lock(&r->lock);
		bool caught_up = r->n && r->rv[r->n - 1] >= strtoull(now, NULL, 10);
		pthread_mutex_unlock(&r->lock);
		if (caught_up)
			break;
		sleep_ms(10);
	}
	atomic_store(&r->stop, true);
	pthread_join(watcher, NULL);
	cr_expect_eq(atomic_load(&errors), 0);
	cr_expect_eq(r->result, 0, "%s", r->err.msg);
	cr_expect_gt(r->n, 32);
	assert_rvs_increase(r);

	/* the watch saw what a list shows now: replaying its events gives the same set */
	struct shd_vm_list l = {0};
	struct shp_error err = SHP_ERROR_INIT;
	cr_assert_eq(P->infra.ops->list_vms(P->infra.impl, NULL, NULL, &l, 0, &err), 0);
	size_t alive = 0;
	for (size_t i = 0; i < l.n; i++) {
		enum shd_vm_status last = _SHD_VM_STATUS_MAX;
		bool deleted = false;
		for (size_t k = 0; k < r->n; k++)
			if (strcmp(r->name[k], l.items[i].name) == 0) {
				last = r->status[k];
				deleted = r->type[k] == SHD_WATCH_DELETED;
			}
		cr_expect(!deleted, "%s was seen deleted but exists", l.items[i].name);
		cr_expect_eq(last, l.items[i].status, "%s: last seen %s, listed %s",
			     l.items[i].name, shd_vm_status_to_string(last),
			     shd_vm_status_to_string(l.items[i].status));
		alive++;
	}
	cr_expect_gt(alive, 0);
	shd_vm_list_release(&l);
	free((char *)r->from);
	free(r);
}

#ifdef SHP_SIM_DRIVER
int main(void)
{
	for (int i = 0; i < drv_n; i++) {
		fprintf(stderr, "test %s\n", drv_tests[i].name);
		setup();
		drv_tests[i].fn();
		teardown();
	}
	fprintf(stderr, "%d tests, %d failures\n", drv_n, drv_failures);
	return drv_failures ? 1 : 0;
}
#endif
