/*
 * kubeconfig -> struct shd_kubeconfig: resolve the context to its cluster and user entries,
 * check every field's type, decode the *-data fields (base64 of PEM), refuse file references,
 * plugins and, unless allowed, insecure transport.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"
#include "kubeconfig.h"
#include "util.h"
#include "yaml.h"

#define NAME_MAX_LEN 253
#define FIELD_MAX (256 * 1024) /* one decoded certificate or token */

struct shd_kubeconfig *shd_kubeconfig_free(struct shd_kubeconfig *k)
{
	if (!k)
		return NULL;
	if (k->token)
		explicit_bzero(k->token, strlen(k->token));
	if (k->client_key_pem)
		explicit_bzero(k->client_key_pem, strlen(k->client_key_pem));
	free(k->token);
	free(k->client_key_pem);
	free(k->client_cert_pem);
	free(k->ca_pem);
	free(k->tls_server_name);
	free(k->namespace_);
	free(k->server);
	free(k->context);
	free(k);
	return NULL;
}

/* The entry of list `key` (clusters, users, contexts) named name, or NULL. Names are unique. */
static const json_t *entry(const json_t *doc, const char *key, const char *name,
			   struct shp_error *err)
{
	const json_t *list = json_object_get(doc, key), *e, *found = NULL;
	size_t i;

	if (list && !json_is_array(list) && !json_is_null(list)) {
		shp_error_set(err, SHP_E_INVAL, "kubeconfig: '%s' must be a list", key);
		return NULL;
	}
	json_array_foreach(list, i, e)
	{
		const char *n = json_string_value(json_object_get(e, "name"));
		if (!json_is_object(e) || !n) {
			shp_error_set(err, SHP_E_INVAL, "kubeconfig: %s[%zu] has no name", key, i);
			return NULL;
		}
		if (strcmp(n, name) != 0)
			continue;
		if (found) {
			shp_error_set(err, SHP_E_INVAL, "kubeconfig: two %s are named '%.60s'", key,
				      name);
			return NULL;
		}
		found = e;
	}
	if (!found)
		shp_error_set(err, SHP_E_INVAL, "kubeconfig: no %.20s named '%.60s'", key, name);
	return found;
}

/* A string field of obj (absent or null: *ret = NULL); wrong type or too long: error. */
static int opt_str(const json_t *obj, const char *where, const char *key, size_t max,
		   const char **ret, struct shp_error *err)
{
	const json_t *v = json_object_get(obj, key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > max)
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: %s.%s must be a string of at "
				     "most %zu bytes",
				     where, key, max);
	*ret = json_string_value(v);
	return 0;
}

/* base64 of a PEM block -> NUL-terminated PEM (owned). The content is never put in a message. */
static int decode_pem(const char *b64, const char *what, char **ret, struct shp_error *err)
{
	size_t n = strlen(b64), out_max = n / 4 * 3 + 3;
	unsigned char *out;
	int len;

	if (n == 0 || n % 4 != 0 || out_max > FIELD_MAX)
		return shp_error_set(err, SHP_E_INVAL, "kubeconfig: %s is not valid base64", what);
	out = calloc(1, out_max + 1);
	if (!out)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	len = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
	if (len < 0) {
		free(out);
		return shp_error_set(err, SHP_E_INVAL, "kubeconfig: %s is not valid base64", what);
	}
	/* EVP_DecodeBlock counts the padding as data: drop one byte per '=' */
	len -= (n >= 1 && b64[n - 1] == '=') + (n >= 2 && b64[n - 2] == '=');
	out[len] = '\0';
	if ((size_t)len != strlen((char *)out) || strncmp((char *)out, "-----BEGIN ", 11) != 0) {
		explicit_bzero(out, out_max);
		free(out);
		return shp_error_set(err, SHP_E_INVAL, "kubeconfig: %s is not a PEM block", what);
	}
	*ret = (char *)out;
	return 0;
}

static int refuse_files(const json_t *obj, const char *where, const char *const *keys,
			struct shp_error *err)
{
	for (; *keys; keys++)
		if (json_object_get(obj, *keys))
			return shp_error_set(err, SHP_E_INVAL,
					     "kubeconfig: %s.%s names a file or a plugin, which "
					     "shepherd cannot use: put the credentials inline "
					     "(the *-data fields or token)",
					     where, *keys);
	return 0;
}

static int dup_into(char **dst, const char *src, struct shp_error *err)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : shp_error_set(err, SHP_E_NOMEM, "out of memory");
}

static int take_cluster(const json_t *c, bool allow_insecure, struct shd_kubeconfig *k,
			struct shp_error *err)
{
	static const char *const files[] = {"certificate-authority", NULL};
	const char *server, *ca, *sni;
	const json_t *insecure = json_object_get(c, "insecure-skip-tls-verify");

	if (!json_is_object(c))
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: the cluster entry has no "
				     "'cluster' mapping");
	if (refuse_files(c, "cluster", files, err) < 0 ||
	    opt_str(c, "cluster", "server", 2048, &server, err) < 0 ||
	    opt_str(c, "cluster", "certificate-authority-data", FIELD_MAX, &ca, err) < 0 ||
	    opt_str(c, "cluster", "tls-server-name", NAME_MAX_LEN, &sni, err) < 0)
		return -err->code;
	if (!server)
		return shp_error_set(err, SHP_E_INVAL, "kubeconfig: the cluster has no server");
	if (strncmp(server, "https://", 8) != 0 &&
	    !(allow_insecure && strncmp(server, "http://", 7) == 0))
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: server '%.100s' is not https://", server);
	if (insecure && !json_is_boolean(insecure))
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: insecure-skip-tls-verify must be true or false");
	k->insecure = json_is_true(insecure);
	if (k->insecure && !allow_insecure)
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: the cluster skips TLS verification; refused "
				     "unless insecure clusters are explicitly allowed");
	if (dup_into(&k->server, server, err) < 0 || dup_into(&k->tls_server_name, sni, err) < 0)
		return -err->code;
	return ca ? decode_pem(ca, "certificate-authority-data", &k->ca_pem, err) : 0;
}

static int take_user(const json_t *u, struct shd_kubeconfig *k, struct shp_error *err)
{
	static const char *const files[] = {
		"tokenFile",     "client-certificate", "client-key", "exec",
		"auth-provider", "username",           "password",   NULL};
	const char *token, *cert, *key;

	if (!json_is_object(u))
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: the user entry has no 'user' "
				     "mapping");
	if (refuse_files(u, "user", files, err) < 0 ||
	    opt_str(u, "user", "token", FIELD_MAX, &token, err) < 0 ||
	    opt_str(u, "user", "client-certificate-data", FIELD_MAX, &cert, err) < 0 ||
	    opt_str(u, "user", "client-key-data", FIELD_MAX, &key, err) < 0)
		return -err->code;
	if (!!cert != !!key)
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: a client certificate needs its "
				     "key and the other way round");
	if (!token && !(cert && key))
		return shp_error_set(err, SHP_E_INVAL,
				     "kubeconfig: the user has neither a token "
				     "nor a client certificate and key");
	if (dup_into(&k->token, token, err) < 0)
		return -err->code;
	if (cert && (decode_pem(cert, "client-certificate-data", &k->client_cert_pem, err) < 0 ||
		     decode_pem(key, "client-key-data", &k->client_key_pem, err) < 0))
		return -err->code;
	return 0;
}

struct shd_kubeconfig *shd_kubeconfig_parse(const char *text, size_t len, const char *context,
					    bool allow_insecure, struct shp_error *err)
{
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *k = NULL;
	json_auto_t *doc = NULL;
	const json_t *ctx, *c, *cl, *us;
	const char *cluster, *user, *ns;

	if (len > SHD_KUBECONFIG_MAX) {
		shp_error_set(err, SHP_E_LIMIT, "kubeconfig is larger than %d bytes",
			      SHD_KUBECONFIG_MAX);
		return NULL;
	}
	doc = shp_yaml_to_json(text, len, 16, err);
	if (!doc) {
		shp_error_prefix(err, "kubeconfig");
		return NULL;
	}
	if (!json_is_object(doc)) {
		shp_error_set(err, SHP_E_INVAL, "kubeconfig: not a mapping");
		return NULL;
	}
	if (!context)
		context = json_string_value(json_object_get(doc, "current-context"));
	if (!context || !*context) {
		shp_error_set(err, SHP_E_INVAL,
			      "kubeconfig: no context given and no "
			      "current-context");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	ctx = entry(doc, "contexts", context, err);
	if (!ctx)
		return NULL;
	c = json_object_get(ctx, "context");
	if (!json_is_object(c)) {
		shp_error_set(err, SHP_E_INVAL, "kubeconfig: context '%.60s' is empty", context);
		return NULL;
	}
	if (opt_str(c, "context", "cluster", NAME_MAX_LEN, &cluster, err) < 0 ||
	    opt_str(c, "context", "user", NAME_MAX_LEN, &user, err) < 0 ||
	    opt_str(c, "context", "namespace", 63, &ns, err) < 0)
		return NULL;
	if (!cluster || !user) {
		shp_error_set(err, SHP_E_INVAL,
			      "kubeconfig: context '%.60s' needs a cluster and a "
			      "user",
			      context);
		return NULL;
	}
	cl = entry(doc, "clusters", cluster, err);
	us = cl ? entry(doc, "users", user, err) : NULL;
	if (!cl || !us ||
	    take_cluster(json_object_get(cl, "cluster"), allow_insecure, k, err) < 0 ||
	    take_user(json_object_get(us, "user"), k, err) < 0 ||
	    dup_into(&k->context, context, err) < 0 ||
	    dup_into(&k->namespace_, ns ? ns : "default", err) < 0)
		return NULL;
	return TAKE_PTR(k);
}
