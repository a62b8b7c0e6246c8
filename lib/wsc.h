/*
 * The CLI's WebSocket (RFC 6455) to the daemon: the upgrade asked for on an shp_httpc's
 * connection settings (the Unix socket, or TLS with its CA, client certificate and token), then
 * frames on the switched connection: data read as a byte stream with PING answered and CLOSE
 * ending it, frames written masked. Frames the daemon sends are capped (SHP_WSC_FRAME_MAX).
 *
 * Thread rules: one thread only (OpenSSL forbids concurrent reads and writes on one SSL object):
 * multiplex with poll on shp_wsc_fd, reading first while shp_wsc_has_buffered.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ws.h"

struct shp_error;
struct shp_httpc;
struct shp_httpc_response;

#define SHP_WSC_FRAME_MAX (16u << 20) /* the payload of one frame from the daemon */

struct shp_wsc; /* a WebSocket to the daemon on an shp_httpc's connection settings */
/*
 * GET path (with its query) as an upgrade asking for subprotocol `protocol`, with the
 * client's socket/TLS/token. 0 and *ret (owned); a refusal (non-101) fills resp (status,
 * body, retry_after) and returns the daemon's error exactly as shp_httpc_json reports it;
 * transport failures as shp_httpc_request. The upgraded connection belongs to the wsc: c
 * opens a new one for its next request.
 */
int shp_wsc_open(struct shp_httpc *c, const char *path, const char *protocol,
		 struct shp_httpc_response *resp, struct shp_wsc **ret, struct shp_error *err);
/*
 * The same with more header lines ("Name: value", NULL-terminated, at most 8), for what must not
 * travel in the URL (a token of its own); the caller wipes them afterwards if they are secret.
 */
int shp_wsc_open_with(struct shp_httpc *c, const char *path, const char *protocol,
		      const char *const *extra, struct shp_httpc_response *resp,
		      struct shp_wsc **ret, struct shp_error *err);
/* As shd_ws_conn_read (server frames unmasked), 0 at the end, -SHP_E_TIMEOUT, ... */
long shp_wsc_read(struct shp_wsc *w, void *buf, size_t len, unsigned *ret_opcode, int timeout_ms,
		  struct shp_error *err);
/* One masked frame. 0, -SHP_E_IO. */
int shp_wsc_write(struct shp_wsc *w, unsigned opcode, const void *buf, size_t len,
		  struct shp_error *err);
/*
 * For poll(2): the socket, and whether shp_wsc_read would hand out something (payload, or the
 * end) without waiting on it: bytes TLS has decrypted already, or a frame buffered far enough.
 */
int shp_wsc_fd(const struct shp_wsc *w);
bool shp_wsc_has_buffered(const struct shp_wsc *w);
struct shp_wsc *shp_wsc_close(struct shp_wsc *w); /* CLOSE 1000, free; NULL-safe */

/*
 * Did the last shp_wsc_read deliver the final bytes of a message (a frame with FIN, read to its
 * end)? Lets a caller that needs whole messages (one JSON document per text frame) split them.
 */
bool shp_wsc_message_ended(const struct shp_wsc *w);
/* Milliseconds since bytes last came from the daemon (its PINGs count): a dead peer's sign. */
unsigned long shp_wsc_quiet_ms(const struct shp_wsc *w);
/* The code of the daemon's CLOSE (1000, 1001, ...), 1005 without a code, 0 before any. */
unsigned shp_wsc_close_code(const struct shp_wsc *w);
