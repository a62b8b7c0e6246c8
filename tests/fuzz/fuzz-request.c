/*
 * libFuzzer target: a request body as the daemon receives it, through the bounded JSON parser
 * into the validation of namespaces and clusters. Any crash, leak, or UB is a finding.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "error.h"
#include "json.h"
#include "shepherdd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_namespace_spec ns;
	struct shd_cluster_spec cl;
	json_t *j = shp_json_parse_object((const char *)data, size, SHP_API_JSON_DEPTH_MAX, &err);

	if (!j)
		return 0;
	(void)shd_validate_namespace(j, &ns, &err);
	(void)shd_validate_cluster(j, &cl, &err);
	json_decref(j);
	return 0;
}
