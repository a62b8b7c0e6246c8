/*
 * The KubeVirt provider: every capability of provider.h (console aside) as calls to one
 * cluster's Kubernetes API through a shared struct shd_k8s. See docs/internals/provider.md for
 * the Kubernetes request behind each operation.
 */
#pragma once

#include "provider.h"

struct shd_kubeconfig;
struct shp_error;

struct shd_kubevirt_options {
	const char *cluster_name; /* for messages */
	int max_inflight;         /* requests at once to the cluster; 0 = 8 */
	int default_timeout_ms;   /* an operation's deadline when the caller gives 0; 0 = 30000 */
};

/*
 * A provider for the cluster of kc (what it needs is copied; kc may be freed afterwards), with
 * one reference. NULL with SHP_E_INVAL (bad options or credentials libcurl cannot use) or
 * SHP_E_NOMEM. No request is made here.
 */
struct shd_provider *shd_provider_kubevirt_new(const struct shd_kubeconfig *kc,
					       const struct shd_kubevirt_options *opt,
					       struct shp_error *err);
