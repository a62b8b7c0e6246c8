/*
 * A Kubernetes REST client over libcurl, one per cluster, shared by every thread of the daemon.
 * It owns the cluster's credentials (CA, client certificate and key, bearer token, all in memory),
 * a pool of max_inflight CURL easy handles (so connections are reused) and the slots that bound
 * how many requests run at once. Every call is bounded by an absolute deadline; 429 and 5xx
 * answers are retried (Retry-After, else backoff with jitter) while the deadline allows; answers
 * are capped at SHD_K8S_BODY_MAX and parsed with a depth limit. Secrets never reach a log line or
 * an error message.
 *
 * Thread rules: shd_k8s_call and shd_k8s_watch may be called from any thread at once; new and
 * free from one thread while no call runs.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cleanup.h"
#include "k8s-status.h"

struct shp_buf;
struct shp_error;
struct shd_kubeconfig;

#define SHD_K8S_BODY_MAX (16u * 1024 * 1024) /* bytes of one answer */
#define SHD_K8S_LINE_MAX (4u * 1024 * 1024)  /* bytes of one watch event */
#define SHD_K8S_JSON_DEPTH 96                /* managedFields nest deep */
#define SHD_K8S_EXPIRED 1                    /* a watch's resourceVersion is too old */

struct shd_k8s;

/*
 * A client for the cluster of kc (copied: kc may be freed afterwards). name labels messages
 * ("cluster 'prod'"). max_inflight <= 0 means 8. NULL with SHP_E_INVAL (a bad server URL or
 * credentials curl cannot take) or SHP_E_NOMEM.
 */
struct shd_k8s *shd_k8s_new(const struct shd_kubeconfig *kc, const char *name, int max_inflight,
			    struct shp_error *err);
/* Wipe the secrets and free; NULL-safe; returns NULL. No call may be running. */
struct shd_k8s *shd_k8s_free(struct shd_k8s *k);
SHP_DEFINE_CLEANUP(struct shd_k8s *, shd_k8s_free)

const char *shd_k8s_name(const struct shd_k8s *k);   /* borrowed, valid until free */
const char *shd_k8s_server(const struct shd_k8s *k); /* the base URL, no trailing '/' */

/* Counters since creation, for tests and metrics (racy snapshot). */
struct shd_k8s_stats {
	uint64_t requests; /* HTTP exchanges, retries included */
	uint64_t retries;
	int max_busy; /* the most slots ever in use at once */
};
void shd_k8s_get_stats(struct shd_k8s *k, struct shd_k8s_stats *ret);

/* One request. path includes the query and is already escaped (see shd_k8s_pathf). */
struct shd_k8s_req {
	const char *method;       /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;         /* "/apis/kubevirt.io/v1/..." */
	const json_t *body;       /* sent as JSON, or NULL */
	const char *content_type; /* NULL = application/json */
	uint64_t deadline_ns;     /* absolute, shp_now_monotonic_ns(); required */
	bool text;                /* the answer is text (/readyz): ret->text, not parsed */
	bool fresh; /* on a new connection: proves the cluster still accepts them (health) */
};

/* The answer: status, the parsed body (2xx) and, for a failure, its classification. */
struct shd_k8s_resp {
	long status;
	json_t *json;                   /* owned; NULL when the body was empty or text */
	char *text;                     /* owned; set for req->text */
	struct shd_k8s_failure failure; /* when status is not 2xx */
	char message[256];              /* the Status message of a failure, cleaned, "" if none */
};

void shd_k8s_resp_release(struct shd_k8s_resp *r);

/*
 * Run one request, retrying 429 and 5xx within the deadline. 0 on a 2xx answer. Otherwise
 * -SHP_E_* with err filled: a cluster answer through shd_k8s_error (ret->status, failure and
 * message set, so callers can treat "AlreadyExists" or "VM is already running" specially); a
 * transport failure as SHP_E_UNAVAIL with API code "UNREACHABLE" (ret->status 0) or
 * SHP_E_TIMEOUT; waiting too long for a free slot as SHP_E_TIMEOUT; an answer over
 * SHD_K8S_BODY_MAX as SHP_E_LIMIT; a 2xx body that is not JSON as SHP_E_PROTO. ret is
 * always initialised; release it in every case.
 */
int shd_k8s_call(struct shd_k8s *k, const struct shd_k8s_req *req, struct shd_k8s_resp *ret,
		 struct shp_error *err) SHP_MUSTCHECK;

/*
 * One watch event: type ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") and its object (borrowed,
 * valid during the call). Return 0 to go on, < 0 to stop (the watch then returns 0).
 */
typedef int (*shd_k8s_event_fn)(void *ud, const char *type, const json_t *object);

/*
 * Stream a watch (path with watch=1 and its resourceVersion) on a connection of its own (it
 * does not take a slot). Calls fn per event until: the server ends the stream, *stop is set
 * (checked at least every second), fn stops, or the deadline passes (all 0); the
 * resourceVersion is too old, in the stream or as HTTP 410 (SHD_K8S_EXPIRED); or a failure
 * (< 0: an HTTP error, an ERROR event other than 410, an event line over SHD_K8S_LINE_MAX,
 * a transport failure).
 */
int shd_k8s_watch(struct shd_k8s *k, const char *path, shd_k8s_event_fn fn, void *ud,
		  const atomic_bool *stop, uint64_t deadline_ns,
		  struct shp_error *err) SHP_MUSTCHECK;

/* ---- pure helpers (exposed for tests) ----------------------------------------------------- */

/*
 * Append to b a path built from fmt, in which each "%s" is replaced by its argument
 * percent-encoded (everything but A-Z a-z 0-9 - . _ ~), so a name can never add a path
 * segment or a query. "%%" is a literal '%'; no other conversion is allowed.
 */
int shd_k8s_pathf(struct shp_buf *b, const char *fmt, ...) SHP_MUSTCHECK;
/* Append "?key=value" or "&key=value" (value percent-encoded); value NULL appends nothing. */
int shd_k8s_query(struct shp_buf *b, const char *key, const char *value) SHP_MUSTCHECK;

/* Splitting a byte stream into lines ("\n"-terminated; "\r\n" tolerated), across chunks. */
struct shd_ndjson {
	struct shp_buf *line; /* the partial line so far */
	size_t max;           /* longest line accepted */
};

typedef int (*shd_ndjson_fn)(void *ud, const char *line, size_t len);

void shd_ndjson_init(struct shd_ndjson *s, size_t max);
void shd_ndjson_release(struct shd_ndjson *s);
/*
 * Feed len bytes; fn is called for each complete, non-empty line. Returns 0, fn's negative
 * result (stops at once), -SHP_E_LIMIT for a line longer than max or -SHP_E_NOMEM.
 */
int shd_ndjson_feed(struct shd_ndjson *s, const char *data, size_t len, shd_ndjson_fn fn,
		    void *ud) SHP_MUSTCHECK;
/* True when a partial line is pending (the stream ended in the middle of an event). */
bool shd_ndjson_has_partial(const struct shd_ndjson *s);
