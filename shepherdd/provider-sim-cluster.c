/*
 * The simulated cluster as a whole: the u1.* cluster instance types of KubeVirt's common bundle
 * and a few preferences (no namespaced ones), its health (HEALTHY with simulated versions, or
 * UNREACHABLE when switched so) and its capabilities (from the constructor's options).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "provider-sim-internal.h"

#define GiB (1024ll * 1024 * 1024)
#define MiB (1024ll * 1024)

static const struct shd_instancetype instancetypes[] = {
	{"u1.nano", "", true, 1, 512 * MiB},    {"u1.micro", "", true, 1, 1 * GiB},
	{"u1.small", "", true, 1, 2 * GiB},     {"u1.medium", "", true, 1, 4 * GiB},
	{"u1.2xmedium", "", true, 2, 4 * GiB},  {"u1.large", "", true, 2, 8 * GiB},
	{"u1.xlarge", "", true, 4, 16 * GiB},   {"u1.2xlarge", "", true, 8, 32 * GiB},
	{"u1.4xlarge", "", true, 16, 64 * GiB}, {"u1.8xlarge", "", true, 32, 128 * GiB},
};

static const struct shd_preference preferences[] = {
	{"centos.stream9", "", true, "sockets", "virtio"},
	{"fedora", "", true, "sockets", "virtio"},
	{"rhel.9", "", true, "sockets", "virtio"},
	{"ubuntu", "", true, "sockets", "virtio"},
	{"windows.11", "", true, "sockets", "sata"},
};

const struct shd_instancetype *sim_instancetype_find(const char *name)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(instancetypes); i++)
		if (strcmp(instancetypes[i].name, name) == 0)
			return &instancetypes[i];
	return NULL;
}

const struct shd_preference *sim_preference_find(const char *name)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(preferences); i++)
		if (strcmp(preferences[i].name, name) == 0)
			return &preferences[i];
	return NULL;
}

/* ---- the capability tables ---------------------------------------------- */

static int it_list(void *impl, const char *ns, struct shd_instancetype **ret, size_t *ret_n,
		   uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	size_t n = ns ? 0 : SHP_ARRAY_SIZE(instancetypes); /* no namespaced ones */
	int r = ns ? shd_provider_check_name("namespace", ns, true, err) : 0;

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "listing %s",
				       ns ? "virtualmachineinstancetypes"
					  : "virtualmachineclusterinstancetypes");
		return r;
	}
	sim_leave(s);
	*ret = sim_xcalloc(n, sizeof(**ret));
	memcpy(*ret, instancetypes, n * sizeof(**ret));
	*ret_n = n;
	return 0;
}

static int pref_list(void *impl, const char *ns, struct shd_preference **ret, size_t *ret_n,
		     uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	size_t n = ns ? 0 : SHP_ARRAY_SIZE(preferences);
	int r = ns ? shd_provider_check_name("namespace", ns, true, err) : 0;

	if (r < 0)
		return r;
	if ((r = sim_enter(s, deadline_ns, err)) < 0) {
		(void)shp_error_prefix(err, "listing %s",
				       ns ? "virtualmachinepreferences"
					  : "virtualmachineclusterpreferences");
		return r;
	}
	sim_leave(s);
	*ret = sim_xcalloc(n, sizeof(**ret));
	memcpy(*ret, preferences, n * sizeof(**ret));
	*ret_n = n;
	return 0;
}

const struct shd_instancetype_ops sim_instancetype_ops = {
	.list_instancetypes = it_list,
	.list_preferences = pref_list,
};

static int cl_health(void *impl, struct shd_health_report *ret, uint64_t deadline_ns,
		     struct shp_error *err)
{
	struct sim *s = impl;
	struct shd_health_report h = {.health = SHD_HEALTH_HEALTHY};

	(void)deadline_ns;
	(void)err;
	pthread_mutex_lock(&s->lock);
	if (s->unreachable) {
		h.health = SHD_HEALTH_UNREACHABLE;
		(void)snprintf(h.message, sizeof(h.message),
			       "cluster '%s' is unreachable: connection refused", s->cluster);
	} else {
		sim_copy(h.kubernetes_version, sizeof(h.kubernetes_version), "v1.30.0-sim");
		sim_copy(h.kubevirt_version, sizeof(h.kubevirt_version), "v1.5.0-sim");
	}
	pthread_mutex_unlock(&s->lock);
	*ret = h;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cl_capabilities(void *impl, json_t **ret, uint64_t deadline_ns, struct shp_error *err)
{
	struct sim *s = impl;
	/* "vnc": provider-sim-console.c serves a console for every running VM */
	const char *caps[8] = {"clone",          "instancetypes", "kubevirt",
			       "live-migration", "snapshot",      "vnc"};
	size_t n = 6;
	int r = sim_enter(s, deadline_ns, err);

	if (r < 0)
		return r;
	if (s->gpu)
		caps[n++] = "gpu";
	if (s->hugepages)
		caps[n++] = "hugepages";
	sim_leave(s);
	qsort(caps, n, sizeof(*caps), str_cmp);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(caps[i]));
	*ret = a;
	return 0;
}

const struct shd_cluster_ops sim_cluster_ops = {
	.health = cl_health,
	.capabilities = cl_capabilities,
};
