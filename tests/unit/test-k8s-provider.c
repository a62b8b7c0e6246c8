/*
 * The KubeVirt provider's checks that come before any request: constructor options, every
 * capability filled, hostile names and malformed manifests refused with
 * SHP_E_INVAL without echoing the name. The cluster URL points at a closed port, so a check
 * that let a request through would show up as SHP_E_UNAVAIL instead. Then health and
 * capabilities against a scripted server: readyz failing, KubeVirt absent, not Deployed or its
 * CR unreadable; feature gates from the CR or the dry-run probe; GPUs and hugepages on nodes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>

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

Test(kubevirt_provider, every_capability)
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
	cr_assert_not_null(p->console.ops);
	cr_assert(p->console.ops->open_vnc && p->console.ops->read && p->console.ops->write &&
		  p->console.ops->close);
	p->console.ops->close(NULL);
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
		struct shd_console_stream *cs = NULL;
		cr_expect_eq(p->console.ops->open_vnc(p->console.impl, "ns1", n, &cs, 0, NULL),
			     -SHP_E_INVAL, "'%s'", n);
		cr_expect_eq(p->console.ops->open_vnc(p->console.impl, n, "vm1", &cs, 0, NULL),
			     -SHP_E_INVAL, "'%s'", n);
		cr_expect_null(cs);
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

/* ---- health and capabilities against a scripted server ---------------------------------- */

/* What the scripted cluster says; each test sets it before asking. */
static struct {
	int readyz;        /* status of /readyz */
	bool kubevirt;     /* subresources.kubevirt.io answers /version */
	int cr_status;     /* status of the KubeVirt CR list (403: unreadable) */
	const char *phase; /* the CR's status.phase */
	const char *gates; /* the CR's featureGates array text */
	int probe_status;  /* the dry-run snapshot create */
	const char *nodes; /* the NodeList items text, or NULL for 403 */
} scene;

static struct MHD_Daemon *mhd;
static int port;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret = MHD_queue_response(c, status, r);

	MHD_destroy_response(r);
	return ret;
}

#define FORBIDDEN                                                                                  \
	"{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Forbidden\",\"code\":403}"

static enum MHD_Result scripted(void *cls, struct MHD_Connection *c, const char *url,
				const char *method, const char *version, const char *data,
				size_t *size, void **state)
{
	static __thread char b[2048];

	(void)cls, (void)version, (void)data;
	if (!*state) {
		*state = (void *)1;
		return MHD_YES;
	}
	if (*size) {
		*size = 0; /* a body: ignored */
		return MHD_YES;
	}
	if (strcmp(url, "/version") == 0)
		return answer(c, 200, "{\"gitVersion\":\"v1.30.2\"}");
	if (strcmp(url, "/readyz") == 0)
		return answer(c, (unsigned)scene.readyz,
			      scene.readyz == 200 ? "ok" : "[-]etcd failed");
	if (strcmp(url, "/apis/subresources.kubevirt.io/v1/version") == 0)
		return scene.kubevirt ? answer(c, 200, "{\"gitVersion\":\"v1.5.0\"}")
				      : answer(c, 404, "{\"kind\":\"Status\",\"code\":404}");
	if (strcmp(url, "/apis/kubevirt.io/v1/kubevirts") == 0) {
		if (scene.cr_status != 200)
			return answer(c, (unsigned)scene.cr_status, FORBIDDEN);
		(void)snprintf(
			b, sizeof(b),
			"{\"items\":[{\"metadata\":{\"name\":\"kubevirt\",\"namespace\":"
			"\"kubevirt\"},\"spec\":{\"configuration\":{\"developerConfiguration\":"
			"{\"featureGates\":%s}}},\"status\":{\"phase\":\"%s\"}}]}",
			scene.gates ? scene.gates : "[]", scene.phase ? scene.phase : "Deployed");
		return answer(c, 200, scene.phase && !*scene.phase ? "{\"items\":[]}" : b);
	}
	if (strcmp(url, "/apis") == 0)
		return answer(
			c, 200,
			"{\"kind\":\"APIGroupList\",\"groups\":[{\"name\":\"kubevirt.io\"},"
			"{\"name\":\"snapshot.kubevirt.io\"},{\"name\":\"clone.kubevirt.io\"},"
			"{\"name\":\"subresources.kubevirt.io\"},{\"name\":\"apps\"}]}");
	if (strcmp(method, "POST") == 0 && strstr(url, "virtualmachinesnapshots"))
		return answer(
			c, (unsigned)scene.probe_status,
			scene.probe_status == 400
				? "{\"kind\":\"Status\",\"code\":400,\"message\":\"admission "
				  "webhook "
				  "\\\"virtualmachinesnapshot-validator.snapshot.kubevirt.io\\\" "
				  "denied the request: snapshot feature gate not enabled\"}"
				: "{\"kind\":\"Status\",\"code\":404,\"message\":\"vm not "
				  "found\"}");
	if (strcmp(url, "/api/v1/nodes") == 0) {
		if (!scene.nodes)
			return answer(c, 403, FORBIDDEN);
		(void)snprintf(b, sizeof(b), "{\"items\":%s}", scene.nodes);
		return answer(c, 200, b);
	}
	return answer(c, 404, "{\"kind\":\"Status\",\"code\":404}");
}

static void start_scripted(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	cr_assert(listen(fd, 16) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	port = ntohs(sa.sin_port);
	mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
			       NULL, NULL, scripted, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
			       MHD_OPTION_END);
	cr_assert_not_null(mhd);
	scene.readyz = 200;
	scene.kubevirt = true;
	scene.cr_status = 200;
	scene.probe_status = 404;
}

static void stop_scripted(void)
{
	if (mhd)
		MHD_stop_daemon(mhd);
}

TestSuite(kubevirt_cluster, .init = start_scripted, .fini = stop_scripted, .timeout = 30);

static struct shd_provider *scripted_provider(void)
{
	char server[64];
	struct shd_kubeconfig kc = {.server = server, .insecure = true};
	struct shd_kubevirt_options opt = {.cluster_name = "c1", .default_timeout_ms = 5000};
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_provider *p;

	(void)snprintf(server, sizeof(server), "http://127.0.0.1:%d", port);
	p = shd_provider_kubevirt_new(&kc, &opt, &err);
	cr_assert_not_null(p, "%s", err.msg);
	return p;
}

static struct shd_health_report health(void)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = scripted_provider();
	struct shd_health_report rep;

	cr_assert_eq(p->cluster.ops->health(p->cluster.impl, &rep, 0, NULL), 0);
	return rep;
}

Test(kubevirt_cluster, health_reports)
{
	struct shd_health_report rep = health();

	cr_assert_eq(rep.health, SHD_HEALTH_HEALTHY, "%s", rep.message);
	cr_assert_str_eq(rep.kubernetes_version, "v1.30.2");
	cr_assert_str_eq(rep.kubevirt_version, "v1.5.0");
	scene.phase = "Deploying";
	rep = health();
	cr_assert_eq(rep.health, SHD_HEALTH_UNHEALTHY);
	cr_assert(strstr(rep.message, "KubeVirt is 'Deploying'"), "%s", rep.message);
	scene.phase = "";
	rep = health();
	cr_assert_eq(rep.health, SHD_HEALTH_UNHEALTHY);
	cr_assert(strstr(rep.message, "not installed"), "%s", rep.message);
	scene.phase = NULL;
	scene.cr_status = 403; /* unreadable CR: the version decides */
	rep = health();
	cr_assert_eq(rep.health, SHD_HEALTH_HEALTHY, "%s", rep.message);
	scene.kubevirt = false;
	rep = health();
	cr_assert_eq(rep.health, SHD_HEALTH_UNHEALTHY, "%s", rep.message);
	scene.readyz = 500;
	rep = health();
	cr_assert_eq(rep.health, SHD_HEALTH_UNHEALTHY);
	cr_assert(strstr(rep.message, "not ready"), "%s", rep.message);
}

static char *caps(void)
{
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = scripted_provider();
	json_auto_t *j = NULL;
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(p->cluster.ops->capabilities(p->cluster.impl, &j, 0, &err), 0, "%s", err.msg);
	return json_dumps(j, JSON_COMPACT);
}

Test(kubevirt_cluster, capabilities_from_discovery_gates_and_nodes)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

	scene.gates = "[\"Snapshot\"]";
	scene.nodes = "[{\"metadata\":{\"labels\":{\"nvidia.com/gpu.present\":\"true\"}},"
		      "\"status\":{\"allocatable\":{\"hugepages-2Mi\":\"0\"}}},"
		      "{\"metadata\":{},\"status\":{\"allocatable\":{\"hugepages-1Gi\":\"2Gi\"}}}]";
	a = caps();
	cr_assert_str_eq(a, "[\"clone\",\"gpu\",\"hugepages\",\"kubevirt\",\"live-migration\","
			    "\"snapshot\",\"vnc\"]");
	scene.gates = "[]"; /* v1.5: Snapshot must be listed */
	scene.nodes = "[{\"status\":{\"allocatable\":{\"nvidia.com/gpu\":\"0\"}}}]";
	b = caps();
	cr_assert_str_eq(b, "[\"kubevirt\",\"live-migration\",\"vnc\"]");
	/* the CR unreadable: the dry-run probe decides; nodes unreadable: neither gpu nor hugepages
	 */
	scene.cr_status = 403;
	scene.nodes = NULL;
	scene.probe_status = 400;
	c = caps();
	cr_assert_str_eq(c, "[\"kubevirt\",\"live-migration\",\"vnc\"]");
	scene.probe_status = 404; /* refused for another reason: the gate is on */
	d = caps();
	cr_assert_str_eq(d, "[\"clone\",\"kubevirt\",\"live-migration\",\"snapshot\",\"vnc\"]");
}
