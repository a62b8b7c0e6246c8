/*
 * Cluster credentials from a kubeconfig: the chosen context's server, CA, and a bearer token or
 * a client certificate and key, all inline. File references (certificate-authority, tokenFile,
 * ...) and exec or auth-provider plugins are refused with a message saying what to do instead,
 * since the daemon stores credentials in its database and never reads the caller's files.
 * Secrets are wiped when the struct is freed and never appear in an error message.
 *
 * Pure functions: no I/O, any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct shp_error;

#define SHD_KUBECONFIG_MAX (1024 * 1024) /* bytes of kubeconfig text */

struct shd_kubeconfig {
	char *context;         /* the context used */
	char *server;          /* https://host:port */
	char *namespace_;      /* the context's namespace, "default" if none */
	char *tls_server_name; /* NULL = the server's host */
	char *ca_pem;  /* decoded certificate-authority-data, NUL-terminated; NULL = system CAs */
	bool insecure; /* insecure-skip-tls-verify (only when the caller allowed it) */
	char *token;   /* secret: bearer token, or NULL */
	char *client_cert_pem; /* client-certificate-data decoded, or NULL */
	char *client_key_pem;  /* secret: client-key-data decoded, or NULL */
};

/*
 * Parse a kubeconfig (YAML or JSON) and resolve context (NULL = current-context). An
 * insecure-skip-tls-verify: true cluster, and a plain http:// server, are refused unless
 * allow_insecure. Returns a new object, or NULL with SHP_E_INVAL naming what is wrong, or
 * SHP_E_LIMIT past SHD_KUBECONFIG_MAX.
 */
struct shd_kubeconfig *shd_kubeconfig_parse(const char *text, size_t len, const char *context,
					    bool allow_insecure, struct shp_error *err);
/* Wipe the secrets and free; NULL-safe; returns NULL. */
struct shd_kubeconfig *shd_kubeconfig_free(struct shd_kubeconfig *k);
SHP_DEFINE_CLEANUP(struct shd_kubeconfig *, shd_kubeconfig_free)
