/*
 * What k8s.c and k8s-watch.c share: the client's state and the pieces of one exchange.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"

struct shp_error;

struct shd_k8s_slot {
	CURL *h;   /* kept between requests so its connection is reused */
	bool busy; /* lent to one thread */
};

struct shd_k8s {
	char *name;
	char *server;     /* base URL, no trailing '/' (the TLS name's when tls-server-name) */
	char *connect_to; /* "tlsname:port:host:port" for tls-server-name, or NULL */
	char *ca_pem;
	char *cert_pem;
	char *key_pem;     /* secret, wiped */
	char *auth_header; /* secret ("Authorization: Bearer ..."), wiped */
	bool insecure;
	int max_inflight;
	bool sync_ready;
	pthread_mutex_t mu; /* protects slots[].busy, busy, max_busy, requests, retries, rng */
	pthread_cond_t cv;  /* a slot was released */
	struct shd_k8s_slot *slots;
	int busy, max_busy;
	uint64_t requests, retries;
	uint64_t rng;
};

/* The state of one exchange, shared with curl's callbacks. */
struct shd_k8s_xfer {
	struct shd_k8s *k;
	struct shp_buf body;
	bool over; /* the body hit its cap */
	long status;
	char retry_after[32];
};

/* Reset h and set the connection options (credentials, TLS, protocols). */
int shd_k8s_setup_handle(struct shd_k8s *k, CURL *h, struct shp_error *err);
/* Method, URL (built into url), body and timeouts of a request. */
int shd_k8s_prepare(struct shd_k8s *k, CURL *h, const char *method, const char *path,
		    const char *body, size_t body_len, long timeout_ms, struct shp_buf *url);
struct curl_slist *shd_k8s_headers(struct shd_k8s *k, const char *content_type, bool text);
void shd_k8s_free_headers(struct curl_slist *l);
size_t shd_k8s_on_header(char *p, size_t size, size_t n, void *ud);
int shd_k8s_transport_error(struct shd_k8s *k, CURLcode cc, const char *detail, long waited_ms,
			    struct shp_error *err);
