/*
 * What every provider shares: its reference count, the check of the names it is given, and the
 * names of power operations and health states. The implementations live in
 * provider-kubevirt*.c and provider-sim*.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "provider.h"

const char *shd_power_op_to_string(enum shd_power_op op)
{
	static const char *const names[] = {
		[SHD_POWER_START] = "start",     [SHD_POWER_STOP] = "stop",
		[SHD_POWER_RESTART] = "restart", [SHD_POWER_PAUSE] = "pause",
		[SHD_POWER_UNPAUSE] = "unpause",
	};

	if ((unsigned)op >= SHP_ARRAY_SIZE(names))
		return "unknown";
	return names[op];
}

const char *shd_cluster_health_to_string(enum shd_cluster_health h)
{
	static const char *const names[] = {
		[SHD_HEALTH_UNKNOWN] = "UNKNOWN",
		[SHD_HEALTH_HEALTHY] = "HEALTHY",
		[SHD_HEALTH_UNHEALTHY] = "UNHEALTHY",
		[SHD_HEALTH_UNREACHABLE] = "UNREACHABLE",
	};

	if ((unsigned)h >= SHP_ARRAY_SIZE(names))
		return "UNKNOWN";
	return names[h];
}

void shd_vm_list_release(struct shd_vm_list *l)
{
	if (!l)
		return;
	free(l->items);
	l->items = NULL;
	l->n = 0;
	l->resource_version[0] = '\0';
}

struct shd_provider *shd_provider_ref(struct shd_provider *p)
{
	if (p)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

struct shd_provider *shd_provider_unref(struct shd_provider *p)
{
	if (p && atomic_fetch_sub(&p->refs, 1) == 1)
		p->destroy(p);
	return NULL;
}

int shd_provider_check_name(const char *what, const char *s, bool is_label, struct shp_error *err)
{
	size_t n = s ? strlen(s) : 0, max = is_label ? 63 : 253;
	bool ok = n > 0 && n <= max;

	for (size_t i = 0; ok && i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		bool inner = c == '-' || (!is_label && c == '.');
		ok = alnum || (inner && i > 0 && i + 1 < n);
	}
	if (ok)
		return 0;
	return shp_error_set(err, SHP_E_INVAL,
			     "invalid %s name: it must be a DNS-1123 %s of at most %zu lower-case "
			     "letters, digits and '-'",
			     what, is_label ? "label" : "name", max);
}

int shd_provider_check_ns_name(const char *ns, const char *what, const char *name,
			       struct shp_error *err)
{
	int r = shd_provider_check_name("namespace", ns, true, err);

	return r < 0 ? r : shd_provider_check_name(what, name, false, err);
}
