/*
 * Kubernetes API errors: a non-2xx answer (usually a Status object) becomes a shepherd error
 * with the cluster's own message, its reason as the API code, the causes of a 422 as details,
 * and whether and when to retry (429 and 5xx, Retry-After or details.retryAfterSeconds).
 *
 * Pure functions: no I/O, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct shp_error;

struct shd_k8s_failure {
	long http_status;
	char reason[48];   /* Status.reason ("NotFound", "Conflict", ...), "" if none */
	bool retryable;    /* 429 and 5xx: try again after retry_after_s */
	int retry_after_s; /* 1..60 */
	bool expired;      /* 410: the resourceVersion is too old; list again */
};

/*
 * Fill err from an answer with status http_status (>= 300) and body (may be NULL or not
 * JSON); retry_after is the Retry-After header or NULL. *ret (may be NULL) gets the
 * classification. Returns -err->code: 404 SHP_E_NOTFOUND, 409 SHP_E_CONFLICT, 401/403
 * SHP_E_PERM, 400/422 SHP_E_INVAL, 429 SHP_E_RATE, 503 SHP_E_UNAVAIL, 504 SHP_E_TIMEOUT, anything
 * else SHP_E_K8S.
 */
int shd_k8s_error(long http_status, const char *body, size_t len, const char *retry_after,
		  struct shd_k8s_failure *ret, struct shp_error *err);
