/*
 * The KubeVirt provider's VNC console against the API simulator over HTTPS: the RFB greeting,
 * bytes echoed back (small, and 200 KiB written in frames and read in pieces), a clean close,
 * the errors before the upgrade (stopped VM, a VMI not Running, missing VM, no graphics device,
 * a hostile name, a bad token, preserveSession refused), a wrong subprotocol, a second session
 * kicking the first, and the deadline of an upgrade the server does not answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "k8s-ws.h"
#include "k8s.h"
#include "kubeconfig.h"
#include "kubesim-proc.h"
#include "provider-kubevirt.h"
#include "provider.h"
#include "util.h"

#define GREETING "RFB 003.008\n"

static struct kubesim_proc sim;
static bool sim_up;

static void setup(void)
{
	if (!getenv("KUBESIM"))
		cr_skip_test("KUBESIM is not set");
	cr_assert_eq(kubesim_start(&sim, (const char *const[]){"--quiet", "--tick-ms", "20", NULL}),
		     0, "kubesim starts");
	sim_up = true;
}

static void teardown(void)
{
	if (sim_up)
		kubesim_stop(&sim);
	sim_up = false;
}

TestSuite(console, .init = setup, .fini = teardown, .timeout = 60);

static struct shd_provider *provider_with(const char *token)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc =
		shd_kubeconfig_parse(sim.kubeconfig, strlen(sim.kubeconfig), NULL, false, &err);
	struct shd_kubevirt_options opt = {.cluster_name = "sim"};
	struct shd_provider *p;

	cr_assert_not_null(kc, "%s", err.msg);
	if (token) {
		free(kc->token);
		kc->token = strdup(token);
	}
	p = shd_provider_kubevirt_new(kc, &opt, &err);
	cr_assert_not_null(p, "%s", err.msg);
	cr_assert_not_null(p->console.ops, "the KubeVirt provider has a console");
	return p;
}

static uint64_t in_ms(long ms)
{
	return shp_now_monotonic_ns() + (uint64_t)ms * 1000000u;
}

/* Create ns/name with runStrategy strategy (graphics off when !graphics), wait for want. */
static void make_vm(struct shd_provider *p, const char *ns, const char *name, const char *strategy,
		    bool graphics, enum shd_vm_status want)
{
	json_auto_t *m = json_pack(
		"{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:{s:{s:{s:{s:s}, s:{s:b}}}}}}", "apiVersion",
		"kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name, "namespace",
		ns, "spec", "runStrategy", strategy, "template", "spec", "domain", "memory",
		"guest", "1Gi", "devices", "autoattachGraphicsDevice", graphics);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm = {0};

	cr_assert_not_null(m);
	cr_assert_eq(p->infra.ops->ensure_namespace(p->infra.impl, ns, 0, &err), 0, "%s", err.msg);
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &vm, 0, &err), 0, "%s",
		     err.msg);
	for (int i = 0; i < 1000 && vm.status != want; i++) {
		usleep(20000);
		cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, ns, name, &vm, 0, &err), 0, "%s",
			     err.msg);
	}
	cr_assert_eq(vm.status, want, "VM %s/%s is %s", ns, name,
		     shd_vm_status_to_string(vm.status));
}

/* A VM whose VMI stays in Scheduling (the simulator's Unschedulable fault). */
static void make_unschedulable(struct shd_provider *p, const char *ns, const char *name)
{
	json_auto_t *m = json_pack(
		"{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s, s:{s:{s:{s:{s:s}}}}}}", "apiVersion",
		"kubevirt.io/v1", "kind", "VirtualMachine", "metadata", "name", name, "namespace",
		ns, "annotations", "kubesim.shepherd.dev/fault", "Unschedulable", "spec",
		"runStrategy", "Always", "template", "spec", "domain", "memory", "guest", "1Gi");
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_vm vm = {0};

	cr_assert_not_null(m);
	cr_assert_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &vm, 0, &err), 0, "%s",
		     err.msg);
}

static struct shd_console_stream *open_vnc(struct shd_provider *p, const char *ns, const char *name)
{
	struct shd_console_stream *s = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(p->console.ops->open_vnc(p->console.impl, ns, name, &s, in_ms(5000), &err), 0,
		     "%s", err.msg);
	cr_assert_not_null(s);
	return s;
}

/* Read exactly len bytes (in as many reads as it takes). */
static void read_exactly(struct shd_provider *p, struct shd_console_stream *s, char *buf,
			 size_t len)
{
	struct shp_error err = SHP_ERROR_INIT;

	for (size_t got = 0; got < len;) {
		long n = p->console.ops->read(s, buf + got, len - got, 5000, &err);
		cr_assert_gt(n, 0, "read %zu of %zu: %ld %s", got, len, n, err.msg);
		got += (size_t)n;
	}
}

static void expect_greeting(struct shd_provider *p, struct shd_console_stream *s)
{
	char buf[sizeof(GREETING)] = "";

	read_exactly(p, s, buf, strlen(GREETING));
	cr_assert_str_eq(buf, GREETING);
}

Test(console, greeting_round_trip_and_close)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_stream *s;
	char small[16] = "";
	size_t big_len = 200 * 1024;
	_cleanup_free_ char *big = malloc(big_len), *back = malloc(big_len);

	make_vm(p, "c1", "vm1", "Always", true, SHD_VM_RUNNING);
	s = open_vnc(p, "c1", "vm1");
	expect_greeting(p, s);
	cr_assert_eq(p->console.ops->write(s, "RFB 003.008\n", 12, &err), 0, "%s", err.msg);
	read_exactly(p, s, small, 12);
	cr_assert_str_eq(small, "RFB 003.008\n");
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i * 7 + i / 251);
	cr_assert_eq(p->console.ops->write(s, big, big_len, &err), 0, "%s", err.msg);
	read_exactly(p, s, back, big_len);
	cr_assert_eq(memcmp(big, back, big_len), 0, "200 KiB come back unchanged");
	/* nothing more is pending: a short read times out and the stream stays usable */
	cr_assert_eq(p->console.ops->read(s, small, sizeof(small), 50, &err), -SHP_E_TIMEOUT);
	cr_assert_eq(p->console.ops->write(s, "x", 1, &err), 0, "%s", err.msg);
	read_exactly(p, s, small, 1);
	cr_assert_eq(small[0], 'x');
	p->console.ops->close(s);
	p->console.ops->close(NULL);
}

Test(console, errors_before_the_upgrade)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shd_console_stream *s = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	int rc;

	make_vm(p, "c2", "off", "Halted", true, SHD_VM_STOPPED);
	rc = p->console.ops->open_vnc(p->console.impl, "c2", "off", &s, in_ms(5000), &err);
	cr_assert_eq(rc, -SHP_E_CONFLICT, "a stopped VM: %d %s", rc, err.msg);
	cr_assert(strstr(err.msg, "not running"), "%s", err.msg);
	cr_assert_null(s);

	err = (struct shp_error)SHP_ERROR_INIT;
	rc = p->console.ops->open_vnc(p->console.impl, "c2", "absent", &s, in_ms(5000), &err);
	cr_assert_eq(rc, -SHP_E_NOTFOUND, "a missing VM: %d %s", rc, err.msg);

	/* a VMI that exists but is not Running: 400 "VMI is not running" */
	make_unschedulable(p, "c2", "stuck");
	for (int i = 0; i < 500; i++) {
		err = (struct shp_error)SHP_ERROR_INIT;
		rc = p->console.ops->open_vnc(p->console.impl, "c2", "stuck", &s, in_ms(5000),
					      &err);
		if (rc != -SHP_E_CONFLICT || strstr(err.msg, "its VMI"))
			break;
		usleep(20000); /* until the VMI exists */
	}
	cr_assert_eq(rc, -SHP_E_CONFLICT, "a VMI not Running: %d %s", rc, err.msg);
	cr_assert(strstr(err.msg, "its VMI is not yet"), "%s", err.msg);
	cr_assert_null(s);

	make_vm(p, "c2", "headless", "Always", false, SHD_VM_RUNNING);
	err = (struct shp_error)SHP_ERROR_INIT;
	rc = p->console.ops->open_vnc(p->console.impl, "c2", "headless", &s, in_ms(5000), &err);
	cr_assert_eq(rc, -SHP_E_INVAL, "no graphics: %d %s", rc, err.msg);
	cr_assert(strstr(err.msg, "No graphics devices"), "%s", err.msg);

	err = (struct shp_error)SHP_ERROR_INIT;
	rc = p->console.ops->open_vnc(p->console.impl, "c2", "Bad/Name", &s, in_ms(5000), &err);
	cr_assert_eq(rc, -SHP_E_INVAL, "a hostile name is refused before anything is sent");
	cr_assert_null(s);
}

Test(console, bad_token_is_perm_without_the_token)
{
	const char *bad = "not-the-token-0123456789abcdef";
	_cleanup_(shd_provider_unrefp) struct shd_provider *good = provider_with(NULL);
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(bad);
	struct shd_console_stream *s = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	int rc;

	make_vm(good, "c3", "vm1", "Always", true, SHD_VM_RUNNING);
	rc = p->console.ops->open_vnc(p->console.impl, "c3", "vm1", &s, in_ms(5000), &err);
	cr_assert_eq(rc, -SHP_E_PERM, "%d %s", rc, err.msg);
	cr_assert_null(strstr(err.msg, bad), "the token is not in '%s'", err.msg);
	cr_assert_null(strstr(err.msg, sim.token), "the token is not in '%s'", err.msg);
}

Test(console, second_session_kicks_the_first)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_stream *a, *b;
	char buf[64];
	long n;

	make_vm(p, "c4", "vm1", "Always", true, SHD_VM_RUNNING);
	a = open_vnc(p, "c4", "vm1");
	expect_greeting(p, a);
	b = open_vnc(p, "c4", "vm1");
	expect_greeting(p, b);
	n = p->console.ops->read(a, buf, sizeof(buf), 5000, &err);
	cr_assert_eq(n, 0, "the first session ends: %ld %s", n, err.msg);
	cr_assert_eq(p->console.ops->read(a, buf, sizeof(buf), 10, &err), 0, "and stays ended");
	cr_assert_lt(p->console.ops->write(a, "x", 1, &err), 0, "no writes after the end");
	cr_assert_eq(p->console.ops->write(b, "hello", 5, &err), 0, "%s", err.msg);
	read_exactly(p, b, buf, 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	p->console.ops->close(a);
	p->console.ops->close(b);
}

Test(console, preserve_session_refused_while_one_is_open)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shd_k8s *k;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_console_stream *a;
	const char *path = "/apis/subresources.kubevirt.io/v1/namespaces/c5/"
			   "virtualmachineinstances/vm1/vnc?preserveSession=true";
	int rc;
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc =
		shd_kubeconfig_parse(sim.kubeconfig, strlen(sim.kubeconfig), NULL, false, &err);

	make_vm(p, "c5", "vm1", "Always", true, SHD_VM_RUNNING);
	a = open_vnc(p, "c5", "vm1");
	expect_greeting(p, a);
	k = shd_k8s_new(kc, "sim", 1, &err);
	cr_assert_not_null(k, "%s", err.msg);
	rc = shd_k8s_ws_open(k, path, "plain.kubevirt.io", in_ms(5000), &ws, &err);
	cr_assert_eq(rc, -SHP_E_K8S,
		     "an active session with preserveSession=true is refused "
		     "with a 500: %d %s",
		     rc, err.msg);
	cr_assert(strstr(err.msg, "Active VNC connection"), "%s", err.msg);
	cr_assert_null(ws);
	p->console.ops->close(a);
	/* with no session open, preserveSession=true opens one */
	for (int i = 0; i < 250 && rc < 0; i++) {
		usleep(20000);
		rc = shd_k8s_ws_open(k, path, "plain.kubevirt.io", in_ms(5000), &ws, &err);
	}
	cr_assert_eq(rc, 0, "%s", err.msg);
	ws = shd_k8s_ws_close(ws);
	shd_k8s_free(k);
}

Test(console, wrong_subprotocol_is_a_protocol_error)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc =
		shd_kubeconfig_parse(sim.kubeconfig, strlen(sim.kubeconfig), NULL, false, &err);
	_cleanup_(shd_k8s_freep) struct shd_k8s *k = shd_k8s_new(kc, "sim", 1, &err);
	struct shd_k8s_ws *ws = NULL;
	int rc;

	make_vm(p, "c6", "vm1", "Always", true, SHD_VM_RUNNING);
	rc = shd_k8s_ws_open(k,
			     "/apis/subresources.kubevirt.io/v1/namespaces/c6/"
			     "virtualmachineinstances/vm1/vnc",
			     "base64.channel.k8s.io", in_ms(5000), &ws, &err);
	cr_assert_eq(rc, -SHP_E_PROTO, "%d %s", rc, err.msg);
	cr_assert(strstr(err.msg, "subprotocol"), "%s", err.msg);
	cr_assert_null(ws);
}

Test(console, deadline_holds_when_the_upgrade_is_not_answered)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = provider_with(NULL);
	struct shd_console_stream *s = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	uint64_t t0;
	int rc;

	make_vm(p, "c7", "vm1", "Always", true, SHD_VM_RUNNING);
	cr_assert_eq(kubesim_ctl(&sim, "/_sim/faults",
				 "{\"path_prefix\":\"/apis/subresources.kubevirt.io\","
				 "\"latency_ms\":3000}"),
		     200);
	t0 = shp_now_monotonic_ns();
	rc = p->console.ops->open_vnc(p->console.impl, "c7", "vm1", &s, in_ms(400), &err);
	cr_assert_eq(rc, -SHP_E_TIMEOUT, "%d %s", rc, err.msg);
	cr_assert_lt(shp_now_monotonic_ns() - t0, 1500000000u, "the deadline held");
	cr_assert_null(s);
}
