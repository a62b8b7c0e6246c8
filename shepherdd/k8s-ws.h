/*
 * A WebSocket (RFC 6455) client on the Kubernetes client's credentials, for the KubeVirt VNC
 * console: the upgrade over a connection of its own (not one of the in-flight slots), binary
 * frames as a byte stream, text frames skipped, PING answered, CLOSE ending the stream.
 *
 * Thread rules: read and write may run at the same time in two threads (frames never
 * interleave); not two reads, nor two writes, at once; close when neither runs.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct shd_k8s;
struct shp_error;

#define SHD_K8S_WS_FRAME_MAX (1u << 20)     /* payload of one received frame */
#define SHD_K8S_WS_HEAD_MAX (16u * 1024)    /* the upgrade answer's head */
#define SHD_K8S_WS_BODY_MAX (64u * 1024)    /* the body of a refused upgrade */
#define SHD_K8S_WS_WRITE_FRAME (64u * 1024) /* a write is sent in frames of at most this */

struct shd_k8s_ws;

/*
 * Upgrade GET path (with its query, escaped) to a WebSocket asking for subprotocol protocol,
 * within deadline_ns. k is borrowed and must outlive the stream. 0 and *ret (owned, free with
 * shd_k8s_ws_close); or a refused upgrade through shd_k8s_error (404 SHP_E_NOTFOUND, 400
 * SHP_E_INVAL, 401/403 SHP_E_PERM, 500 SHP_E_K8S, with the cluster's message), a transport
 * failure as SHP_E_UNAVAIL or SHP_E_TIMEOUT, a bad 101 or head as SHP_E_PROTO, a head over
 * SHD_K8S_WS_HEAD_MAX as SHP_E_LIMIT.
 */
int shd_k8s_ws_open(struct shd_k8s *k, const char *path, const char *protocol, uint64_t deadline_ns,
		    struct shd_k8s_ws **ret, struct shp_error *err);

/*
 * Up to len bytes of binary payload, waiting at most timeout_ms: > 0 bytes, 0 at the end of the
 * stream (CLOSE received, or the connection ended), -SHP_E_TIMEOUT (the stream stays usable),
 * -SHP_E_PROTO (a protocol error or a frame over SHD_K8S_WS_FRAME_MAX; CLOSE 1002/1009 sent),
 * -SHP_E_UNAVAIL (the connection failed).
 */
long shd_k8s_ws_read(struct shd_k8s_ws *ws, void *buf, size_t len, int timeout_ms,
		     struct shp_error *err);

/* Send len bytes as binary frames (masked). 0, -SHP_E_UNAVAIL, -SHP_E_TIMEOUT. */
int shd_k8s_ws_write(struct shd_k8s_ws *ws, const void *buf, size_t len, struct shp_error *err);

/*
 * Send CLOSE 1000 (if the stream is still open), wait briefly for the server's CLOSE, and free;
 * NULL-safe; returns NULL.
 */
struct shd_k8s_ws *shd_k8s_ws_close(struct shd_k8s_ws *ws);
