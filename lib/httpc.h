/*
 * The HTTP client that speaks to shepherdd: plain HTTP/1.1 over the daemon's Unix socket, or
 * over TLS with OpenSSL (server CA, client certificate, bearer token). It does not use libcurl:
 * loading libcurl's dependencies alone costs more than the CLI's whole start-up budget. One
 * struct shp_httpc holds one kept-alive connection; it belongs to one thread at a time.
 * Response bodies are capped (SHP_HTTPC_BODY_MAX), except a streamed body, which the caller
 * takes piece by piece as it arrives (shp_httpc_stream) and must bound itself.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "cleanup.h"

struct shp_error;

#define SHP_HTTPC_BODY_MAX (64u * 1024 * 1024)

struct shp_httpc_config {
	const char *socket_path; /* used when server_url is NULL */
	const char *server_url;  /* "https://host:port" */
	const char *token;       /* bearer token (never logged) */
	const char *cacert;      /* CA bundle to verify the server */
	const char *cert;        /* client certificate (mTLS) */
	const char *key;         /* its private key */
	long timeout_ms;         /* whole-request timeout; 0 = 30 s */
	bool verbose;            /* print method, URL, status and timing to stderr */
	/*
	 * NULL, or a flag a signal handler sets (borrowed, for the client's life): once it is
	 * non-zero, any wait ends with SHP_E_INTERRUPTED and the connection is dropped.
	 */
	const volatile sig_atomic_t *interrupt;
};

struct shp_httpc_response {
	long status;
	struct shp_buf body;
	char request_id[64];
	long retry_after; /* seconds from Retry-After, or -1 */
	char content_type[128];
};

/* Copies what it needs from cfg. NULL with err on failure. */
struct shp_httpc *shp_httpc_new(const struct shp_httpc_config *cfg, struct shp_error *err);
struct shp_httpc *shp_httpc_free(struct shp_httpc *c);
SHP_DEFINE_CLEANUP(struct shp_httpc *, shp_httpc_free)

void shp_httpc_response_init(struct shp_httpc_response *r);
void shp_httpc_response_release(struct shp_httpc_response *r);

/*
 * Send one request. path is absolute ("/api/v1/namespaces?limit=5"), body may be NULL
 * (sent as application/json when set), idempotency_key may be NULL. Fails only when no HTTP
 * response came back: SHP_E_UNREACHABLE (connect failed: message names the socket or URL),
 * SHP_E_TIMEOUT, SHP_E_LIMIT (response too large), SHP_E_PROTO/SHP_E_IO otherwise. An HTTP
 * error status is not a failure here.
 */
int shp_httpc_request(struct shp_httpc *c, const char *method, const char *path, const char *body,
		      size_t body_len, const char *idempotency_key, struct shp_httpc_response *resp,
		      struct shp_error *err) SHP_MUSTCHECK;

/*
 * A streamed request: the body of a 2xx answer goes to on_data piece by piece as it arrives
 * (Content-Length, chunked or close-delimited framing, already removed), for answers that
 * never end on their own such as Server-Sent Events.
 */
struct shp_httpc_stream {
	const char *method;         /* "GET" when NULL; the request has no body */
	const char *path;           /* as for shp_httpc_request */
	const char *accept;         /* the Accept header; "application/json" when NULL */
	const char *const *headers; /* more "Name: value" header lines, NULL-terminated, or NULL */
	long idle_timeout_ms;       /* longest silence while the body streams; 0: the client's */
	/*
	 * Called once the status and headers are in (resp's body still empty). Returns 0 to read
	 * on, 1 to stop here (the body is left unread and the connection closed), or a negative
	 * -SHP_E_* with err filled to fail. May be NULL.
	 */
	int (*on_head)(void *arg, const struct shp_httpc_response *resp, struct shp_error *err);
	/*
	 * Called with each piece of a 2xx answer's body (never empty); borrowed, valid during the
	 * call only. Returns 0, 1 or -SHP_E_* as on_head.
	 */
	int (*on_data)(void *arg, const char *data, size_t len, struct shp_error *err);
	void *arg;
};

/*
 * Send a streamed request and read its answer to the end, or until a callback stops it. The
 * connect, the request and the answer's head are bounded by the client's timeout; then every
 * read by s->idle_timeout_ms (SHP_E_TIMEOUT, "no data ... for N ms"). A non-2xx answer's body
 * is not streamed: it is collected into resp->body (capped), for shp_httpc_response_error.
 * Returns 0 when the answer ended or a callback returned 1; otherwise the errors of
 * shp_httpc_request (SHP_E_PROTO for a body cut short) or a callback's negative value.
 */
int shp_httpc_stream(struct shp_httpc *c, const struct shp_httpc_stream *s,
		     struct shp_httpc_response *resp, struct shp_error *err) SHP_MUSTCHECK;

/*
 * Request with a JSON body (may be NULL) and a JSON answer. On a 2xx status *ret is the parsed
 * body (or NULL for an empty body). On an error status the daemon's error body becomes err:
 * code from "code" (shp_errc_from_api), message, api_code, details, and the request id in a
 * "request_id" detail; -code is returned.
 */
int shp_httpc_json(struct shp_httpc *c, const char *method, const char *path, const json_t *body,
		   const char *idempotency_key, json_t **ret, struct shp_error *err) SHP_MUSTCHECK;

/*
 * The error carried by a response with a non-2xx status, exactly as shp_httpc_json reports it:
 * fills err and returns -code. When ret_body is not NULL and the body is a daemon error body
 * ({"error": {...}}), *ret_body is that whole body (a new reference), for callers that show the
 * server's answer verbatim; otherwise *ret_body is left NULL.
 */
int shp_httpc_response_error(const struct shp_httpc_response *resp, json_t **ret_body,
			     struct shp_error *err);

/* Sees one header field of an answer (name and value borrowed, not NUL-terminated). */
typedef void (*shp_httpc_field_fn)(void *arg, const char *name, size_t name_len, const char *value,
				   size_t value_len);

/*
 * A protocol switch: GET path with the extra header lines (Upgrade, Connection and those of the
 * protocol), on_field (may be NULL) seeing every header field of the answer. A 101 returns 0
 * with *ret_conn a new client that owns the switched connection (its socket, its TLS session,
 * the bytes already read past the head): use it with shp_httpc_raw_* only, free it with
 * shp_httpc_free, before c. Another status returns 0 with *ret_conn NULL and resp holding the
 * answer (the body of a 2xx is left unread and the connection closed). Errors as for
 * shp_httpc_request; c opens a new connection for its next request.
 */
int shp_httpc_upgrade(struct shp_httpc *c, const char *path, const char *const *headers,
		      shp_httpc_field_fn on_field, void *arg, struct shp_httpc_response *resp,
		      struct shp_httpc **ret_conn, struct shp_error *err) SHP_MUSTCHECK;
/*
 * On a switched connection: up to n bytes, waiting at most timeout_ms: > 0, 0 at the end of the
 * stream, -SHP_E_TIMEOUT (usable again), -SHP_E_PROTO (a reset or a TLS failure).
 */
long shp_httpc_raw_read(struct shp_httpc *c, void *buf, size_t n, int timeout_ms,
			struct shp_error *err);
/* All n bytes within timeout_ms: 0, -SHP_E_TIMEOUT, -SHP_E_PROTO. */
int shp_httpc_raw_write(struct shp_httpc *c, const void *buf, size_t n, int timeout_ms,
			struct shp_error *err) SHP_MUSTCHECK;
/* For poll(2): the connection's socket (-1 when there is none). */
int shp_httpc_fd(const struct shp_httpc *c);
/* Bytes already read from the socket but not yet taken (buffered, or decrypted by TLS). */
bool shp_httpc_has_buffered(const struct shp_httpc *c);

/* Percent-encode s for a path segment or query value into out (appends). */
int shp_httpc_escape(const char *s, struct shp_buf *out) SHP_MUSTCHECK;
