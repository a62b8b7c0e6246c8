/*
 * For C tests: the Kubernetes API simulator (tests/kubesim/kubesim, or $KUBESIM) as a child
 * process with TLS and a random bearer token in a private temporary directory, and a client for
 * its control API (/_sim/...). Test-thread only.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

struct kubesim_proc {
	pid_t pid;
	char dir[256];    /* the temporary directory: certificates, port file, kubeconfig */
	char url[64];     /* https://127.0.0.1:PORT */
	char token[40];   /* the bearer token */
	char ca_pem[320]; /* path of the CA certificate (PEM) */
	char *kubeconfig; /* a kubeconfig (YAML) with inline CA data and the token; owned */
};

/*
 * Start the simulator; extra_args (NULL-terminated, may be NULL) go to its command line, e.g.
 * {"--tick-ms", "20", NULL}. Waits until it listens (10 s at most). 0, or -1 with a message on
 * stderr; on failure nothing is left running.
 */
int kubesim_start(struct kubesim_proc *ret, const char *const *extra_args);

/*
 * POST json (NULL: "{}") to the control API path ("/_sim/compact", or just "compact"); GET for
 * stats. Returns the HTTP status (200 on success) or -1; the response body, when ret_body is
 * not NULL, is stored there (owned, NUL-terminated).
 */
int kubesim_ctl_body(struct kubesim_proc *p, const char *path, const char *json, char **ret_body);
int kubesim_ctl(struct kubesim_proc *p, const char *path, const char *json);

/* Stop it (SIGTERM, wait), remove its directory, free the kubeconfig. NULL-safe, idempotent. */
void kubesim_stop(struct kubesim_proc *p);
