/*
 * What the files of the KubeVirt provider share: its state, deadlines, name checks, and the
 * request helpers built on shd_k8s (one object, a paginated list, a write).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "k8s.h"
#include "provider.h"

struct shp_buf;
struct shp_error;

#define KV_PATH_MAX (8u * 1024)
#define KV_LIST_PAGE "500"
#define KV_LIST_MAX 200000 /* items of one list, all pages together */

/* Group/version prefixes. */
#define KV_VM_API "/apis/kubevirt.io/v1"
#define KV_SUB_API "/apis/subresources.kubevirt.io/v1"
#define KV_SNAP_API "/apis/snapshot.kubevirt.io/v1beta1"
#define KV_CLONE_API "/apis/clone.kubevirt.io/v1beta1"
#define KV_IT_API "/apis/instancetype.kubevirt.io/v1beta1"

struct kv {
	struct shd_provider p; /* first: the provider is the allocation */
	struct shd_k8s *k8s;   /* thread-safe, shared by every call */
	char *name;
	int timeout_ms;
};

/* The operation's deadline: the caller's, or now + the default. */
uint64_t kv_deadline(const struct kv *kv, uint64_t deadline_ns);
/* A DNS-1123 subdomain (label when is_label: a namespace); SHP_E_INVAL naming what. */

/* Append api + "/namespaces/{ns}/{plural}[/{name}]" to b, escaped. */
int kv_path(struct shp_buf *b, const char *api, const char *ns, const char *plural,
	    const char *name, struct shp_error *err);
/* GET path -> the object (owned). */
int kv_get(struct kv *kv, const char *path, uint64_t deadline_ns, json_t **ret,
	   struct shp_error *err);
/* Any request; ret released by the caller. */
int kv_send(struct kv *kv, const char *method, const char *path, const json_t *body,
	    const char *content_type, uint64_t deadline_ns, struct shd_k8s_resp *ret,
	    struct shp_error *err);
/*
 * Every item of a collection (path without query; selector may be NULL), page by page with
 * limit/continue; a continue token that expired restarts the list. *ret is an owned array;
 * rv (may be NULL) gets the list's resourceVersion.
 */
int kv_list(struct kv *kv, const char *path, const char *selector, uint64_t deadline_ns,
	    json_t **ret, char *rv, size_t rv_size, struct shp_error *err);
/* Delete; an absent object is success. */
int kv_delete(struct kv *kv, const char *path, uint64_t deadline_ns, struct shp_error *err);
/*
 * POST a new object to collection; 409 AlreadyExists -> GET collection/name and return that
 * (*ret_existed set). dry_run adds dryRun=All.
 */
int kv_create(struct kv *kv, const char *collection, const char *name, const json_t *obj,
	      bool dry_run, uint64_t deadline_ns, json_t **ret, bool *ret_existed,
	      struct shp_error *err);

/* Capability tables (provider-kubevirt-objs.c, provider-kubevirt-cluster.c). */
extern const struct shd_snapshot_ops kv_snapshot_ops;
extern const struct shd_clone_ops kv_clone_ops;
extern const struct shd_migration_ops kv_migration_ops;
extern const struct shd_instancetype_ops kv_instancetype_ops;
extern const struct shd_cluster_ops kv_cluster_ops;
extern const struct shd_console_ops kv_console_ops; /* provider-kubevirt-console.c */
