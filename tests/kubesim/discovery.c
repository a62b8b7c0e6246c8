/*
 * The resource table and what is derived from it alone: API discovery (/api, /api/v1, /apis,
 * /apis/{group}, /apis/{group}/{version}, including the aggregated subresources.kubevirt.io
 * group), /version, the health endpoints and the KubeVirt version subresource.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "kubesim.h"

#define FIN_VM "kubevirt.io/virtualMachineControllerFinalize"
#define FIN_VMI "kubevirt.io/foregroundDeleteVirtualMachine"
#define FIN_VMIM "kubevirt.io/migrationJobFinalize"
#define FIN_SNAP "snapshot.kubevirt.io/vmsnapshot-protection"
#define FIN_CONTENT "snapshot.kubevirt.io/vmsnapshotcontent-protection"

/* group, version, plural, singular, kind, short names, namespaced, status, crd, ro, finalizer */
const struct ks_resource ks_resources[_KS_R_MAX] = {
	[KS_R_NAMESPACE] = {"", "v1", "namespaces", "namespace", "Namespace", "ns", false, true,
			    false, false, NULL},
	[KS_R_NODE] = {"", "v1", "nodes", "node", "Node", "no", false, true, false, true, NULL},
	[KS_R_VM] = {"kubevirt.io", "v1", "virtualmachines", "virtualmachine", "VirtualMachine",
		     "vm,vms", true, true, true, false, FIN_VM},
	[KS_R_VMI] = {"kubevirt.io", "v1", "virtualmachineinstances", "virtualmachineinstance",
		      "VirtualMachineInstance", "vmi,vmis", true, false, true, false, FIN_VMI},
	[KS_R_VMIM] = {"kubevirt.io", "v1", "virtualmachineinstancemigrations",
		       "virtualmachineinstancemigration", "VirtualMachineInstanceMigration",
		       "vmim,vmims", true, true, true, false, FIN_VMIM},
	[KS_R_KUBEVIRT] = {"kubevirt.io", "v1", "kubevirts", "kubevirt", "KubeVirt", "kv,kvs", true,
			   true, true, false, NULL},
	[KS_R_SNAPSHOT] = {"snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots",
			   "virtualmachinesnapshot", "VirtualMachineSnapshot",
			   "vmsnapshot,vmsnapshots", true, true, true, false, FIN_SNAP},
	[KS_R_SNAPCONTENT] = {"snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshotcontents",
			      "virtualmachinesnapshotcontent", "VirtualMachineSnapshotContent",
			      "vmsnapshotcontent,vmsnapshotcontents", true, true, true, false,
			      FIN_CONTENT},
	[KS_R_RESTORE] = {"snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores",
			  "virtualmachinerestore", "VirtualMachineRestore", "vmrestore,vmrestores",
			  true, true, true, false, NULL},
	[KS_R_CLONE] = {"clone.kubevirt.io", "v1beta1", "virtualmachineclones",
			"virtualmachineclone", "VirtualMachineClone", "vmclone,vmclones", true,
			true, true, false, NULL},
	[KS_R_INSTANCETYPE] = {"instancetype.kubevirt.io", "v1beta1", "virtualmachineinstancetypes",
			       "virtualmachineinstancetype", "VirtualMachineInstancetype",
			       "vminstancetype,vminstancetypes,vmf,vmfs", true, false, true, false,
			       NULL},
	[KS_R_PREFERENCE] = {"instancetype.kubevirt.io", "v1beta1", "virtualmachinepreferences",
			     "virtualmachinepreference", "VirtualMachinePreference",
			     "vmpref,vmprefs,vmp,vmps", true, false, true, false, NULL},
	[KS_R_CLUSTER_INSTANCETYPE] = {"instancetype.kubevirt.io", "v1beta1",
				       "virtualmachineclusterinstancetypes",
				       "virtualmachineclusterinstancetype",
				       "VirtualMachineClusterInstancetype",
				       "vmclusterinstancetype,vmclusterinstancetypes,vmcf,vmcfs",
				       false, false, true, false, NULL},
	[KS_R_CLUSTER_PREFERENCE] = {"instancetype.kubevirt.io", "v1beta1",
				     "virtualmachineclusterpreferences",
				     "virtualmachineclusterpreference",
				     "VirtualMachineClusterPreference",
				     "vmcp,vmcps,vmclusterpref,vmclusterprefs", false, false, true,
				     false, NULL},
	[KS_R_DATAVOLUME] = {"cdi.kubevirt.io", "v1beta1", "datavolumes", "datavolume",
			     "DataVolume", "dv,dvs", true, true, true, false, NULL},
};

/* The aggregated virt-api group: its resources are actions on VMs and VMIs. */
static const char *const subresource_names[] = {
	"virtualmachines/start",
	"virtualmachines/stop",
	"virtualmachines/restart",
	"virtualmachines/migrate",
	"virtualmachines/expand-spec",
	"virtualmachineinstances/pause",
	"virtualmachineinstances/unpause",
	"virtualmachineinstances/vnc",
	"virtualmachineinstances/console",
	"virtualmachineinstances/freeze",
	"virtualmachineinstances/unfreeze",
	"virtualmachineinstances/softreboot",
	"expand-vm-spec",
};

void ks_api_version(const struct ks_resource *r, char *out, size_t size)
{
	if (*r->group)
		(void)snprintf(out, size, "%s/%s", r->group, r->version);
	else
		(void)snprintf(out, size, "%s", r->version);
}

void ks_qualified(const struct ks_resource *r, char *out, size_t size)
{
	if (*r->group)
		(void)snprintf(out, size, "%s.%s", r->plural, r->group);
	else
		(void)snprintf(out, size, "%s", r->plural);
}

int ks_resource_find(const char *group, const char *version, const char *plural)
{
	for (int i = 0; i < _KS_R_MAX; i++) {
		const struct ks_resource *r = &ks_resources[i];
		if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
		    strcmp(r->plural, plural) == 0)
			return i;
	}
	return -1;
}

static json_t *short_names(const char *s)
{
	json_t *a = json_array();
	char buf[128], *save = NULL;

	if (!s)
		return a;
	(void)snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	return a;
}

static json_t *resource_entry(const struct ks_resource *r)
{
	json_t *verbs = r->read_only
				? json_pack("[s,s,s]", "get", "list", "watch")
				: json_pack("[s,s,s,s,s,s,s,s]", "delete", "deletecollection",
					    "get", "list", "patch", "create", "update", "watch");
	json_t *e = json_pack("{s:s, s:s, s:b, s:s, s:o, s:o}", "name", r->plural, "singularName",
			      r->singular, "namespaced", r->namespaced, "kind", r->kind, "verbs",
			      verbs, "shortNames", short_names(r->short_names));

	if (r->crd)
		json_object_set_new(e, "categories", json_pack("[s]", "all"));
	return e;
}

static json_t *resource_list(const char *group, const char *version)
{
	json_t *items = json_array();
	char gv[128];

	for (int i = 0; i < _KS_R_MAX; i++) {
		const struct ks_resource *r = &ks_resources[i];
		char sub[160];
		if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
			continue;
		json_array_append_new(items, resource_entry(r));
		if (!r->status_sub)
			continue;
		(void)snprintf(sub, sizeof(sub), "%s/status", r->plural);
		json_array_append_new(items, json_pack("{s:s, s:s, s:b, s:s, s:[s,s,s]}", "name",
						       sub, "singularName", "", "namespaced",
						       r->namespaced, "kind", r->kind, "verbs",
						       "get", "patch", "update"));
	}
	if (strcmp(group, "subresources.kubevirt.io") == 0)
		for (size_t i = 0; i < SHP_ARRAY_SIZE(subresource_names); i++)
			json_array_append_new(
				items,
				json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name",
					  subresource_names[i], "singularName", "", "namespaced",
					  true, "kind", "", "verbs",
					  strstr(subresource_names[i], "vnc") ||
							  strstr(subresource_names[i], "console")
						  ? "get"
						  : "update"));
	(void)snprintf(gv, sizeof(gv), "%s%s%s", group, *group ? "/" : "", version);
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
			 "groupVersion", gv, "resources", items);
}

/* The named groups, each with its one served version. */
static const char *const groups[][2] = {
	{"kubevirt.io", "v1"},
	{"subresources.kubevirt.io", "v1"},
	{"snapshot.kubevirt.io", "v1beta1"},
	{"clone.kubevirt.io", "v1beta1"},
	{"instancetype.kubevirt.io", "v1beta1"},
	{"cdi.kubevirt.io", "v1beta1"},
};

static json_t *group_doc(size_t i, bool with_kind)
{
	char gv[128];
	json_t *g;

	(void)snprintf(gv, sizeof(gv), "%s/%s", groups[i][0], groups[i][1]);
	g = json_pack("{s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "name", groups[i][0], "versions",
		      "groupVersion", gv, "version", groups[i][1], "preferredVersion",
		      "groupVersion", gv, "version", groups[i][1]);
	if (with_kind) {
		json_object_set_new(g, "kind", json_string("APIGroup"));
		json_object_set_new(g, "apiVersion", json_string("v1"));
	}
	return g;
}

static int find_group(const char *name)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(groups); i++)
		if (strcmp(groups[i][0], name) == 0)
			return (int)i;
	return -1;
}

static int version_doc(struct ks_req *req, struct ks_resp *resp)
{
	(void)req;
	return ks_reply(resp, 200,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1",
				  "minor", "30", "gitVersion", "v1.30.2", "gitCommit",
				  "39683505b630ff2121012f3c5b16215a1449d5ed", "gitTreeState",
				  "clean", "buildDate", "2024-06-11T20:21:00Z", "goVersion",
				  "go1.22.4", "compiler", "gc", "platform", "linux/amd64"));
}

static int kubevirt_version(struct ks_req *req, struct ks_resp *resp)
{
	return ks_reply(resp, 200,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "gitVersion",
				  req->ks->cfg.kubevirt_version, "gitCommit", "0000000",
				  "gitTreeState", "clean", "buildDate", "2025-01-01T00:00:00Z",
				  "goVersion", "go1.22.10", "compiler", "gc", "platform",
				  "linux/amd64"));
}

static int not_found(struct ks_resp *resp)
{
	return ks_error(resp, 404, "NotFound", "the server could not find the requested resource",
			json_object());
}

static int apis_doc(struct ks_resp *resp, char **s, int n)
{
	json_t *list;
	int g;

	if (n == 1) {
		list = json_array();
		for (size_t i = 0; i < SHP_ARRAY_SIZE(groups); i++)
			json_array_append_new(list, group_doc(i, false));
		return ks_reply(resp, 200,
				json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion",
					  "v1", "groups", list));
	}
	if ((g = find_group(s[1])) < 0)
		return not_found(resp);
	if (n == 2)
		return ks_reply(resp, 200, group_doc((size_t)g, true));
	if (n == 3 && strcmp(s[2], groups[g][1]) == 0)
		return ks_reply(resp, 200, resource_list(s[1], s[2]));
	return not_found(resp);
}

/* ---- /openapi/v2 in protobuf (gnostic's openapi_v2.Document), encoded by hand ---- */

static void pb_varint(struct shp_buf *b, uint64_t v)
{
	do {
		unsigned char c = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			c |= 0x80;
		if (shp_buf_addch(b, (char)c) < 0)
			abort();
	} while (v);
}

/* A length-delimited field (string or embedded message). */
static void pb_bytes(struct shp_buf *b, unsigned field, const void *data, size_t len)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, len);
	if (shp_buf_addn(b, data, len) < 0)
		abort();
}

static void pb_str(struct shp_buf *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

static void pb_msg(struct shp_buf *b, unsigned field, struct shp_buf *m)
{
	pb_bytes(b, field, m->buf, m->len);
	shp_buf_release(m);
}

/*
 * One NamedPathItem: the resource's PATCH operation with its dryRun query parameter and its
 * x-kubernetes-group-version-kind, which is what kubectl looks for before --dry-run=server.
 */
static void pb_path(struct shp_buf *paths, const struct ks_resource *r)
{
	struct shp_buf q = SHP_BUF_INIT(1 << 16), nb = SHP_BUF_INIT(1 << 16);
	struct shp_buf par = SHP_BUF_INIT(1 << 16), item = SHP_BUF_INIT(1 << 16);
	struct shp_buf any = SHP_BUF_INIT(1 << 16), ext = SHP_BUF_INIT(1 << 16);
	struct shp_buf op = SHP_BUF_INIT(1 << 16), pi = SHP_BUF_INIT(1 << 16);
	struct shp_buf named = SHP_BUF_INIT(1 << 16);
	char yaml[256], path[256];

	pb_str(&q, 2, "query");
	pb_str(&q, 4, "dryRun");
	pb_str(&q, 6, "string");
	pb_msg(&nb, 3, &q);     /* NonBodyParameter.query_parameter_sub_schema */
	pb_msg(&par, 2, &nb);   /* Parameter.non_body_parameter */
	pb_msg(&item, 1, &par); /* ParametersItem.parameter */
	(void)snprintf(yaml, sizeof(yaml), "group: \"%s\"\nkind: %s\nversion: %s\n", r->group,
		       r->kind, r->version);
	pb_str(&any, 2, yaml); /* Any.yaml */
	pb_str(&ext, 1, "x-kubernetes-group-version-kind");
	pb_msg(&ext, 2, &any);
	pb_msg(&op, 8, &item); /* Operation.parameters */
	pb_msg(&op, 13, &ext); /* Operation.vendor_extension */
	pb_msg(&pi, 8, &op);   /* PathItem.patch */
	(void)snprintf(path, sizeof(path), "/api%s/%s%s%s%s/%s/{name}", *r->group ? "s" : "",
		       r->group, *r->group ? "/" : "", r->version,
		       r->namespaced ? "/namespaces/{namespace}" : "", r->plural);
	pb_str(&named, 1, path);
	pb_msg(&named, 2, &pi);
	pb_msg(paths, 2, &named); /* Paths.path */
}

static int openapi_v2_pb(struct ks_resp *resp)
{
	struct shp_buf doc = SHP_BUF_INIT(1 << 20), info = SHP_BUF_INIT(1024);
	struct shp_buf paths = SHP_BUF_INIT(1 << 20);

	pb_str(&doc, 1, "2.0");
	pb_str(&info, 1, "Kubernetes");
	pb_str(&info, 2, "v1.30.2");
	pb_msg(&doc, 2, &info);
	for (int i = 0; i < _KS_R_MAX; i++)
		if (!ks_resources[i].read_only)
			pb_path(&paths, &ks_resources[i]);
	pb_msg(&doc, 8, &paths);
	resp->raw_len = doc.len;
	resp->raw = shp_buf_detach(&doc, NULL);
	if (!resp->raw)
		abort();
	resp->ctype = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
	return 0;
}

/*
 * /openapi/v2 without schemas: clients that insist on it (kubectl validates client-side and
 * checks dry-run support there) find the PATCH operations and skip validating unknown kinds.
 */
static int openapi_v2(struct ks_req *req, struct ks_resp *resp)
{
	const char *accept = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Accept");

	if (accept && strstr(accept, "protobuf"))
		return openapi_v2_pb(resp);
	return ks_reply(resp, 200,
			json_pack("{s:s, s:{s:s, s:s}, s:{}, s:{}}", "swagger", "2.0", "info",
				  "title", "Kubernetes", "version", "v1.30.2", "paths",
				  "definitions"));
}

int ks_discovery(struct ks_req *req, struct ks_resp *resp)
{
	char **s = req->segs;
	int n = req->nsegs;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
		return ks_error(resp, 405, "MethodNotAllowed",
				"the server does not allow this method on the requested resource",
				NULL);
	if (n == 1 && strcmp(s[0], "version") == 0)
		return version_doc(req, resp);
	if (n == 1 && (strcmp(s[0], "readyz") == 0 || strcmp(s[0], "livez") == 0 ||
		       strcmp(s[0], "healthz") == 0)) {
		resp->raw = strdup("ok");
		resp->ctype = "text/plain; charset=utf-8";
		return 0;
	}
	if (n == 2 && strcmp(s[0], "openapi") == 0 && strcmp(s[1], "v2") == 0)
		return openapi_v2(req, resp);
	if (n == 1 && strcmp(s[0], "api") == 0)
		return ks_reply(resp, 200,
				json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions",
					  "versions", "v1", "serverAddressByClientCIDRs",
					  "clientCIDR", "0.0.0.0/0", "serverAddress",
					  req->ks->cfg.listen));
	if (n == 2 && strcmp(s[0], "api") == 0 && strcmp(s[1], "v1") == 0)
		return ks_reply(resp, 200, resource_list("", "v1"));
	if (n == 4 && strcmp(s[1], "subresources.kubevirt.io") == 0 && strcmp(s[2], "v1") == 0 &&
	    strcmp(s[3], "version") == 0)
		return kubevirt_version(req, resp);
	if (n >= 1 && n <= 3 && strcmp(s[0], "apis") == 0)
		return apis_doc(resp, s, n);
	return not_found(resp);
}
