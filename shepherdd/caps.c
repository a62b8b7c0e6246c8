/*
 * Capability matching: whether a cluster's detected capabilities cover what an instance size
 * requires, and the fallback that asks the cluster itself (a dry-run create) when the detected
 * list cannot tell, for example a feature gate the cluster's RBAC hides from us.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "health.h"
#include "provider.h"

/* Check that j is an array of strings; what names it in the message. */
static bool is_string_array(const json_t *j, const char *what, struct shp_error *err)
{
	size_t i;
	const json_t *v;

	if (!json_is_array(j)) {
		shp_error_set(err, SHP_E_INVAL, "%s must be an array of strings", what);
		return false;
	}
	json_array_foreach(j, i, v)
	{
		if (!json_is_string(v)) {
			shp_error_set(err, SHP_E_INVAL, "%s[%zu] must be a string", what, i);
			return false;
		}
	}
	return true;
}

static bool array_has(const json_t *arr, const char *s)
{
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	}
	return false;
}

bool shd_caps_has_all(const json_t *cluster_caps, const json_t *required, json_t **ret_missing,
		      struct shp_error *err)
{
	json_auto_t *missing = NULL;
	size_t i;
	const json_t *v;

	if (!is_string_array(required, "required capabilities", err) ||
	    !is_string_array(cluster_caps, "cluster capabilities", err))
		return false;
	missing = json_array();
	if (!missing) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return false;
	}
	json_array_foreach(required, i, v)
	{
		const char *want = json_string_value(v);

		if (!array_has(cluster_caps, want) && !array_has(missing, want) &&
		    json_array_append_new(missing, json_string(want)) < 0) {
			shp_error_set(err, SHP_E_NOMEM, "out of memory");
			return false;
		}
	}
	if (json_array_size(missing) == 0)
		return true;
	if (ret_missing)
		*ret_missing = TAKE_PTR(missing);
	return false;
}

int shd_caps_dry_run_check(const struct shd_infra *infra, const json_t *vm_manifest,
			   uint64_t deadline_ns, bool *ret_ok, char **ret_reason,
			   struct shp_error *err)
{
	struct shp_error cerr = SHP_ERROR_INIT;
	char *reason;
	int r;

	if (!infra || !infra->ops || !infra->ops->create_vm)
		return shp_error_set(err, SHP_E_UNAVAIL, "the cluster cannot validate manifests");
	if (!json_is_object(vm_manifest))
		return shp_error_set(err, SHP_E_INVAL, "a VM manifest is a JSON object");
	r = infra->ops->create_vm(infra->impl, vm_manifest, true, NULL, deadline_ns, &cerr);
	if (r == 0) {
		*ret_ok = true;
		*ret_reason = NULL;
		return 0;
	}
	/* what the cluster refuses is an answer; not being able to ask is an error */
	if (cerr.code != SHP_E_INVAL && cerr.code != SHP_E_CONFLICT &&
	    cerr.code != SHP_E_UNPROCESSABLE) {
		if (err)
			*err = cerr;
		return -cerr.code;
	}
	reason = strdup(cerr.msg);
	if (!reason)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	*ret_ok = false;
	*ret_reason = reason;
	return 0;
}
