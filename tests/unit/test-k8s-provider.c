/*
 * The KubeVirt provider's checks that come before any request: constructor options, every
 * capability filled (console aside), hostile names and malformed manifests refused with
 * SHP_E_INVAL without echoing the name. The cluster URL points at a closed port, so a check
 * that let a request through would show up as SHP_E_UNAVAIL instead.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "kubeconfig.h"
#include "provider-kubevirt.h"
#include "provider.h"

static struct shd_provider *provider(void)
{
	struct shd_kubeconfig kc = {.server = "https://127.0.0.1:1", .token = "tok"};
	struct shd_kubevirt_options opt = {.cluster_name = "c1", .default_timeout_ms = 2000};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p = shd_provider_kubevirt_new(&kc, &opt, &err);

	cr_assert_not_null(p, "%s", err.msg);
	return p;
}

Test(kubevirt_provider, options_are_checked)
{
	struct shd_kubeconfig kc = {.server = "https://127.0.0.1:1"};
	struct shd_kubevirt_options opt = {.cluster_name = "c1"};
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_provider_kubevirt_new(&kc, NULL, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	opt.cluster_name = "";
	cr_assert_null(shd_provider_kubevirt_new(&kc, &opt, NULL));
	opt.cluster_name = "c1";
	opt.max_inflight = -1;
	cr_assert_null(shd_provider_kubevirt_new(&kc, &opt, NULL));
	opt.max_inflight = 0;
	opt.default_timeout_ms = -5;
	cr_assert_null(shd_provider_kubevirt_new(&kc, &opt, NULL));
	opt.default_timeout_ms = 0;
	kc.server = "http://127.0.0.1:1";
	cr_assert_null(shd_provider_kubevirt_new(&kc, &opt, NULL), "plain http without insecure");
}

Test(kubevirt_provider, every_capability_but_console)
{
	struct shd_provider *p = provider();

	cr_assert_str_eq(p->kind, "kubevirt");
	cr_assert_not_null(p->infra.ops);
	cr_assert_not_null(p->infra.ops->watch_vms);
	cr_assert_not_null(p->snapshots.ops);
	cr_assert_not_null(p->clones.ops);
	cr_assert_not_null(p->migrations.ops);
	cr_assert_not_null(p->instancetypes.ops);
	cr_assert_not_null(p->cluster.ops);
	cr_assert_null(p->console.ops);
	cr_assert_eq(atomic_load(&p->refs), 1);
	shd_provider_unref(p);
}

static const char *const bad_names[] = {
	"",       "UPPER",  "a/b",       "a?b=c", "../x", "-lead",
	"trail-", "sp ace", "new\nline", "\x01",  "x.y.", "%2F",
};

Test(kubevirt_provider, hostile_names_never_reach_the_cluster)
{
	struct shd_provider *p = provider();

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_vm vm;
		struct shd_snapshot s;
		const char *n = bad_names[i];

		cr_expect_eq(p->infra.ops->get_vm(p->infra.impl, "ns1", n, &vm, 0, &err),
			     -SHP_E_INVAL, "'%s'", n);
		if (n[0])
			cr_expect_null(strstr(err.msg, n), "the name is not echoed: %s", err.msg);
		cr_expect_eq(p->infra.ops->delete_vm(p->infra.impl, n, "vm1", 0, NULL),
			     -SHP_E_INVAL);
		cr_expect_eq(p->infra.ops->power(p->infra.impl, "ns1", n, SHD_POWER_START, 0, NULL),
			     -SHP_E_INVAL);
		cr_expect_eq(p->infra.ops->ensure_namespace(p->infra.impl, n, 0, NULL),
			     -SHP_E_INVAL);
		cr_expect_eq(
			p->snapshots.ops->create(p->snapshots.impl, "ns1", "vm1", n, &s, 0, NULL),
			-SHP_E_INVAL);
		cr_expect_eq(p->migrations.ops->cancel(p->migrations.impl, "ns1", n, 0, NULL),
			     -SHP_E_INVAL);
	}
	/* a namespace is a label: no dots, at most 63 */
	cr_expect_eq(p->infra.ops->ensure_namespace(p->infra.impl, "a.b", 0, NULL), -SHP_E_INVAL);
	cr_expect_eq(p->infra.ops->ensure_namespace(
			     p->infra.impl,
			     "a123456789012345678901234567890123456789012345678901234567890123", 0,
			     NULL),
		     -SHP_E_INVAL);
	shd_provider_unref(p);
}

static const char *const bad_manifests[] = {
	"[]",
	"{}",
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\"}",
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"}"
	"}",
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"
	"\"a\"}}",
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":"
	"\"a/b\",\"namespace\":\"n\"}}",
	"{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":5,"
	"\"namespace\":\"n\"}}",
};

Test(kubevirt_provider, malformed_manifests_are_refused)
{
	struct shd_provider *p = provider();

	for (size_t i = 0; i < sizeof(bad_manifests) / sizeof(bad_manifests[0]); i++) {
		json_auto_t *m = json_loads(bad_manifests[i], JSON_DECODE_ANY, NULL);
		struct shd_vm vm;

		cr_assert_not_null(m);
		cr_expect_eq(p->infra.ops->create_vm(p->infra.impl, m, false, &vm, 0, NULL),
			     -SHP_E_INVAL, "%s", bad_manifests[i]);
		cr_expect_eq(p->infra.ops->update_vm(p->infra.impl, m, true, &vm, 0, NULL),
			     -SHP_E_INVAL, "%s", bad_manifests[i]);
	}
	shd_provider_unref(p);
}

Test(kubevirt_provider, a_watch_needs_a_resource_version)
{
	struct shd_provider *p = provider();
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(p->infra.ops->watch_vms(p->infra.impl, NULL, "", NULL, NULL, NULL, 0, &err),
		     -SHP_E_INVAL);
	shd_provider_unref(p);
}

Test(kubevirt_provider, a_closed_port_is_unreachable)
{
	struct shd_provider *p = provider();
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_health_report rep;
	struct shd_vm vm;

	cr_assert_eq(p->infra.ops->get_vm(p->infra.impl, "ns1", "vm1", &vm, 0, &err),
		     -SHP_E_UNAVAIL);
	cr_assert_str_eq(shp_error_api_code_of(&err), "UNREACHABLE");
	cr_assert(strstr(err.msg, "getting VM 'ns1/vm1'"), "%s", err.msg);
	cr_assert_null(strstr(err.msg, "tok"), "%s", err.msg);
	cr_assert_eq(p->cluster.ops->health(p->cluster.impl, &rep, 0, NULL), 0);
	cr_assert_eq(rep.health, SHD_HEALTH_UNREACHABLE);
	cr_assert(strstr(rep.message, "127.0.0.1:1"), "%s", rep.message);
	shd_provider_unref(p);
}
