/*
 * WebSocket (RFC 6455) sessions on the API listeners: a handler accepts an upgrade with
 * shd_ws_accept, the 101 goes out, and the session function runs on a thread of its own over
 * the upgraded connection (the Unix socket, or TLS through libmicrohttpd's forwarding). The
 * sessions are capped (server.websocket_sessions), pinged and closed when idle for longer than
 * http.connection_timeout, and closed (their threads waited for) when the daemon stops.
 *
 * Thread rules: one reader and one writer may run at the same time on two threads (writes are
 * serialised inside); the session function may start one extra thread for the other direction
 * and must join it before returning.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ws.h"

struct shd_req;
struct shd_resp;
struct shd_daemon;
struct shp_error;
struct MHD_Connection;
struct MHD_Response;

/* The opcodes a session writes (the codec's, under the daemon's prefix). */
#define SHD_WS_TEXT SHP_WS_TEXT
#define SHD_WS_BINARY SHP_WS_BINARY

/* The payload of one received frame, at most (CLOSE 1009 above). */
#define SHD_WS_FRAME_MAX (1u << 20)

struct shd_ws_conn; /* one upgraded connection (server side): RFC 6455 framing on a socket */
typedef void (*shd_ws_session_fn)(struct shd_ws_conn *c, void *cls);
typedef void (*shd_ws_free_fn)(void *cls);
/* Does the request ask to upgrade to a WebSocket (GET, Upgrade: websocket)? */
bool shd_ws_is_upgrade(const struct shd_req *req);
/*
 * From a handler: check the upgrade headers (version 13, a valid key, `protocol` among those
 * offered in Sec-WebSocket-Protocol; else -SHP_E_INVAL), check the session cap
 * (server.websocket_sessions; -SHP_E_LIMIT with resp->retry_after), and answer 101. Once the
 * connection is upgraded, fn(conn, cls) runs on a thread of its own; the connection is closed
 * after fn returns. cls is owned from the call on (free_fn(cls) after fn, or at once on
 * failure). The session outlives the request: fn borrows its own database connection if it
 * needs one (shd_dbpool), never req's.
 */
int shd_ws_accept(struct shd_req *req, struct shd_resp *resp, const char *protocol,
		  shd_ws_session_fn fn, void *cls, shd_ws_free_fn free_fn, struct shp_error *err);
/*
 * Payload bytes of data frames (TEXT or BINARY, fragments joined; *ret_opcode says which) as
 * they arrive, waiting at most timeout_ms: > 0 bytes, 0 at the end (CLOSE received, the peer
 * gone, or the daemon shutting down), -SHP_E_TIMEOUT (usable again), -SHP_E_PROTO / -SHP_E_LIMIT
 * (CLOSE 1002/1009 sent). PING is answered inside. Client frames must be masked.
 */
long shd_ws_conn_read(struct shd_ws_conn *c, void *buf, size_t len, unsigned *ret_opcode,
		      int timeout_ms, struct shp_error *err);
/* One frame (unmasked), opcode SHD_WS_TEXT or SHD_WS_BINARY: 0, -SHP_E_UNAVAIL. */
int shd_ws_conn_write(struct shd_ws_conn *c, unsigned opcode, const void *buf, size_t len,
		      struct shp_error *err);
/* Send CLOSE with code and a short reason (once; later calls do nothing). */
void shd_ws_conn_close(struct shd_ws_conn *c, unsigned code, const char *reason);

/* ---- for the listeners (server.c) ---------------------------------------------------------- */

/* API error codes of a refused upgrade (the CLI falls back to another transport on them). */
#define SHD_WS_API_DISABLED "WEBSOCKET_DISABLED"
#define SHD_WS_API_EXHAUSTED "WEBSOCKET_SESSIONS_EXHAUSTED"

struct shd_ws_hub;

/* The session registry: at most max_sessions (0: upgrades refused), idle bound idle_s. */
struct shd_ws_hub *shd_ws_hub_new(int max_sessions, int idle_s, struct shp_error *err);
/* Tell every session to end and wait until their threads are done; new upgrades are refused. */
void shd_ws_hub_close_all(struct shd_ws_hub *h);
/* After shd_ws_hub_close_all and the listeners' stop; NULL-safe; returns NULL. */
struct shd_ws_hub *shd_ws_hub_free(struct shd_ws_hub *h);
/* Sessions open or waiting for their 101 to go out. */
int shd_ws_hub_count(struct shd_ws_hub *h);

/*
 * The 101 answer of an accepted upgrade (resp->upgrade): a response to queue with status 101.
 * The connection is the response's from then on; the request keeps a borrowed pointer for
 * shd_ws_request_done. NULL when out of memory (the session is dropped).
 */
struct MHD_Response *shd_ws_response(struct shd_ws_conn *c);
/* The request ended (MHD's completion): a session whose 101 never went out is dropped. */
void shd_ws_request_done(struct shd_ws_conn *c);
/* An accepted session whose 101 is not sent after all (an error answer instead). */
void shd_ws_conn_abandon(struct shd_ws_conn *c);
