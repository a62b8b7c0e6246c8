/*
 * The KubeVirt provider's console: the VMI's vnc subresource as a WebSocket (subprotocol
 * plain.kubevirt.io, RFB in binary frames). A stream holds a reference on the provider, so the
 * cluster's client outlives every open console.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "k8s-ws.h"
#include "provider-kubevirt-internal.h"

#define VNC_PROTOCOL "plain.kubevirt.io"

struct shd_console_stream {
	struct shd_k8s_ws *ws;
	struct shd_provider *p; /* a reference */
};

/* A stopped VM has no VMI: the vnc path answers 404, but the VM itself is there. */
static bool vm_exists(struct kv *kv, const char *ns, const char *vm, uint64_t deadline_ns)
{
	_cleanup_(shp_buf_releasep) struct shp_buf path = SHP_BUF_INIT(KV_PATH_MAX);
	json_auto_t *obj = NULL;

	if (kv_path(&path, KV_VM_API, ns, "virtualmachines", vm, NULL) < 0)
		return false;
	return kv_get(kv, path.buf, kv_deadline(kv, deadline_ns), &obj, NULL) == 0;
}

static int kv_open_vnc(void *impl, const char *ns, const char *vm, struct shd_console_stream **ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf path = SHP_BUF_INIT(KV_PATH_MAX);
	struct kv *kv = impl;
	struct shd_console_stream *s;
	struct shd_k8s_ws *ws = NULL;
	struct shp_error e = SHP_ERROR_INIT;
	int rc = shd_provider_check_ns_name(ns, "VM", vm, err);

	if (rc < 0)
		return rc;
	if (shd_k8s_pathf(&path, KV_SUB_API "/namespaces/%s/virtualmachineinstances/%s/vnc", ns,
			  vm) < 0 ||
	    shd_k8s_query(&path, "preserveSession", "false") < 0)
		return shp_error_set(err, SHP_E_LIMIT, "request path too long");
	rc = shd_k8s_ws_open(kv->k8s, path.buf, VNC_PROTOCOL, kv_deadline(kv, deadline_ns), &ws,
			     &e);
	if (rc == -SHP_E_INVAL && strstr(e.msg, "VMI is not running"))
		rc = shp_error_set(&e, SHP_E_CONFLICT,
				   "the VM is not running (its VMI is not yet "
				   "or no longer Running)");
	else if (rc == -SHP_E_NOTFOUND && vm_exists(kv, ns, vm, deadline_ns))
		rc = shp_error_set(&e, SHP_E_CONFLICT, "the VM is not running");
	if (rc < 0) {
		(void)shp_error_prefix(&e, "VNC console of VM '%s/%s'", ns, vm);
		if (err)
			*err = e;
		return rc;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		shd_k8s_ws_close(ws);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	s->ws = ws;
	s->p = shd_provider_ref(&kv->p);
	*ret = s;
	return 0;
}

static long kv_console_read(struct shd_console_stream *s, void *buf, size_t len, int timeout_ms,
			    struct shp_error *err)
{
	return shd_k8s_ws_read(s->ws, buf, len, timeout_ms, err);
}

static int kv_console_write(struct shd_console_stream *s, const void *buf, size_t len,
			    struct shp_error *err)
{
	return shd_k8s_ws_write(s->ws, buf, len, err);
}

static void kv_console_close(struct shd_console_stream *s)
{
	if (!s)
		return;
	shd_k8s_ws_close(s->ws);
	shd_provider_unref(s->p);
	free(s);
}

const struct shd_console_ops kv_console_ops = {
	.open_vnc = kv_open_vnc,
	.read = kv_console_read,
	.write = kv_console_write,
	.close = kv_console_close,
};
