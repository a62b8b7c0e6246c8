/*
 * libFuzzer target: what the provider reads from a user or a cluster — a kubeconfig, a
 * VirtualMachine (and a list of them), a Kubernetes Status error, a resource quantity.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "k8s-status.h"
#include "kubeconfig.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_k8s_failure f;
	struct shd_vm vm, *list = NULL;
	size_t n = 0;
	int64_t bytes;
	char q[40];
	json_t *j;

	shd_kubeconfig_free(shd_kubeconfig_parse((const char *)data, size, NULL, false, &err));
	shd_kubeconfig_free(shd_kubeconfig_parse((const char *)data, size, "ctx", true, &err));
	(void)shd_k8s_error(422, (const char *)data, size, NULL, &f, &err);
	if (size < sizeof(q)) {
		memcpy(q, data, size);
		q[size] = '\0';
		(void)shd_k8s_quantity_bytes(q, &bytes, &err);
	}
	j = json_loadb((const char *)data, size, 0, NULL);
	if (!j)
		return 0;
	(void)shd_vm_map(j, j, &vm, &err);
	if (shd_vm_map_list(j, j, &list, &n, NULL, &err) == 0)
		free(list);
	json_decref(j);
	return 0;
}
