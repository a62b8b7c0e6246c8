/*
 * The provider registry: one provider per registered cluster, built on first use from its
 * clusters row and rebuilt when the row changes. A KubeVirt cluster's credentials are opened
 * with the key file's box just long enough to build its provider; a simulated cluster needs
 * none. This file also owns the sealed credentials' format: the resolved kubeconfig context as
 * a JSON document, sealed for the purpose "cluster:NAME".
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "db.h"
#include "error.h"
#include "kubeconfig.h"
#include "log.h"
#include "provider-kubevirt.h"
#include "provider-sim.h"
#include "provider.h"
#include "secretbox.h"
#include "shepherdd.h"
#include "util.h"

#define FINGERPRINT_MAX 192
#define AAD_MAX 96
#define DEFAULT_TIMEOUT_MS 30000

struct entry {
	int64_t cluster_id;
	char fingerprint[FINGERPRINT_MAX]; /* of the row the provider was built from */
	struct shd_provider *provider;     /* the map's reference; NULL when the build failed */
	struct shp_error failure; /* why, when it failed: the same row fails the same way */
	struct entry *next;
};

struct shd_providers {
	struct shd_dbpool *pool;
	struct shd_secretbox *box;
	int max_inflight;
	int timeout_ms;
	pthread_mutex_t lock; /* protects entries: the list and every entry on it */
	struct entry *entries;
};

/* One clusters row as the registry reads it. */
struct cluster_row {
	char name[64];
	char kind[16];
	char key_id[72];
	char fingerprint[FINGERPRINT_MAX];
	unsigned char *credentials; /* owned; NULL when the row has none */
	size_t credentials_len;
};

struct shd_providers *shd_providers_new(struct shd_dbpool *pool, const char *key_file,
					int max_inflight, struct shp_error *err)
{
	struct shd_providers *r = calloc(1, sizeof(*r));

	if (!r) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	r->pool = pool;
	r->max_inflight = max_inflight;
	r->timeout_ms = DEFAULT_TIMEOUT_MS;
	r->box = shd_secretbox_load(key_file, err);
	if (!r->box) {
		shp_error_prefix(err, "cluster credentials");
		free(r);
		return NULL;
	}
	(void)pthread_mutex_init(&r->lock, NULL);
	log_info("cluster credentials key '%s' loaded from '%s'", shd_secretbox_key_id(r->box),
		 key_file);
	return r;
}

struct shd_providers *shd_providers_free(struct shd_providers *r)
{
	if (!r)
		return NULL;
	for (struct entry *e = r->entries, *next; e; e = next) {
		next = e->next;
		shd_provider_unref(e->provider);
		free(e);
	}
	(void)pthread_mutex_destroy(&r->lock);
	r->box = shd_secretbox_free(r->box);
	free(r);
	return NULL;
}

void shd_providers_set_timeout(struct shd_providers *r, int timeout_ms)
{
	r->timeout_ms = timeout_ms;
}

/* ---- the sealed credentials ---------------------------------------------------------------- */

static void purpose_of(const char *name, char out[AAD_MAX])
{
	(void)snprintf(out, AAD_MAX, "cluster:%s", name);
}

/* Overwrite every string member of a flat object in place, before it is freed. */
static void wipe_strings(json_t *o)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		if (json_is_string(v))
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
	}
}

static json_t *credentials_doc(const struct shd_kubeconfig *kc)
{
	return json_pack("{s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:b,s:s?}", "context", kc->context,
			 "server", kc->server, "ca_pem", kc->ca_pem, "token", kc->token,
			 "client_cert_pem", kc->client_cert_pem, "client_key_pem",
			 kc->client_key_pem, "tls_server_name", kc->tls_server_name, "insecure",
			 kc->insecure, "namespace", kc->namespace_);
}

int shd_providers_seal(struct shd_providers *r, const char *name, const struct shd_kubeconfig *kc,
		       struct shp_buf *ret_bytea, char *ret_key_id, struct shp_error *err)
{
	json_t *doc = credentials_doc(kc);
	_cleanup_free_ unsigned char *blob = NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	char aad[AAD_MAX], hex[3];
	size_t len = 0;
	int rc;

	if (doc)
		wipe_strings(doc);
	json_decref(doc);
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	purpose_of(name, aad);
	rc = shd_secretbox_seal(r->box, text, strlen(text), aad, &blob, &len, err);
	shd_secretbox_wipe_free(text, strlen(text));
	if (rc < 0)
		return shp_error_prefix(err, "cluster '%s'", name);
	if (shp_buf_add(ret_bytea, "\\x") < 0)
		return shp_error_set(err, SHP_E_LIMIT, "sealed credentials are too large");
	for (size_t i = 0; i < len; i++) {
		shp_hex_encode(blob + i, 1, hex);
		if (shp_buf_addn(ret_bytea, hex, 2) < 0)
			return shp_error_set(err, SHP_E_LIMIT, "sealed credentials are too large");
	}
	memcpy(ret_key_id, shd_secretbox_key_id(r->box), SHD_SECRETBOX_KEY_ID_LEN + 1);
	return 0;
}

/* A string member of doc, copied; NULL when absent or null. */
static int take_str(const json_t *doc, const char *key, char **slot)
{
	const char *s = json_string_value(json_object_get(doc, key));

	if (!s)
		return 0;
	*slot = strdup(s);
	return *slot ? 0 : -1;
}

static struct shd_kubeconfig *kubeconfig_of(const json_t *doc)
{
	_cleanup_(shd_kubeconfig_freep) struct shd_kubeconfig *kc = calloc(1, sizeof(*kc));

	if (!kc || take_str(doc, "context", &kc->context) < 0 ||
	    take_str(doc, "server", &kc->server) < 0 ||
	    take_str(doc, "namespace", &kc->namespace_) < 0 ||
	    take_str(doc, "tls_server_name", &kc->tls_server_name) < 0 ||
	    take_str(doc, "ca_pem", &kc->ca_pem) < 0 || take_str(doc, "token", &kc->token) < 0 ||
	    take_str(doc, "client_cert_pem", &kc->client_cert_pem) < 0 ||
	    take_str(doc, "client_key_pem", &kc->client_key_pem) < 0)
		return NULL;
	kc->insecure = json_is_true(json_object_get(doc, "insecure"));
	return kc->server ? TAKE_PTR(kc) : NULL;
}

static int unusable(struct shp_error *err, const char *name, const char *why)
{
	shp_error_set(err, SHP_E_UNPROCESSABLE, "cluster '%s': %s", name, why);
	shp_error_api_code(err, "CREDENTIALS_UNUSABLE");
	shp_error_detail(err, "cluster", "%s", name);
	return -SHP_E_UNPROCESSABLE;
}

/* Open row's credentials into a kubeconfig (owned; its secrets are wiped when freed). */
static struct shd_kubeconfig *open_credentials(const struct shd_providers *r,
					       const struct cluster_row *row, struct shp_error *err)
{
	const char *have = shd_secretbox_key_id(r->box);
	struct shd_kubeconfig *kc = NULL;
	char aad[AAD_MAX], why[160], *plain = NULL;
	size_t len = 0;
	json_t *doc;

	if (!row->credentials) {
		unusable(err, row->name, "it has no credentials: add it again from a kubeconfig");
		return NULL;
	}
	if (strcmp(row->key_id, have) != 0) {
		(void)snprintf(why, sizeof(why),
			       "credentials were sealed with key '%.16s', the key file holds '%s'",
			       row->key_id, have);
		unusable(err, row->name, why);
		return NULL;
	}
	purpose_of(row->name, aad);
	if (shd_secretbox_open(r->box, row->credentials, row->credentials_len, aad, &plain, &len,
			       err) < 0) {
		unusable(err, row->name,
			 "its credentials cannot be opened (they were altered or "
			 "copied from another cluster): add it again");
		return NULL;
	}
	doc = json_loadb(plain, len, 0, NULL);
	shd_secretbox_wipe_free(plain, len + 1);
	if (doc)
		kc = kubeconfig_of(doc);
	if (doc)
		wipe_strings(doc);
	json_decref(doc);
	if (!kc)
		unusable(err, row->name, "its credentials are not a credentials document");
	return kc;
}

/* ---- building providers -------------------------------------------------------------------- */

bool shd_error_names_cluster(const struct shp_error *err, const char *name)
{
	char quoted[80];

	(void)snprintf(quoted, sizeof(quoted), "cluster '%s'", name);
	return strstr(err->msg, quoted) != NULL;
}

static struct shd_provider *build(const struct shd_providers *r, const struct cluster_row *row,
				  struct shp_error *err)
{
	struct shd_provider *p;

	if (strcmp(row->kind, "simulated") == 0) {
		/* the simulator's own defaults: 500 ms steps, three nodes */
		struct shd_sim_options o = {.cluster_name = row->name};
		p = shd_provider_sim_new(&o, err);
	} else {
		struct shd_kubevirt_options o = {.cluster_name = row->name,
						 .max_inflight = r->max_inflight,
						 .default_timeout_ms = r->timeout_ms};
		struct shd_kubeconfig *kc = open_credentials(r, row, err);

		if (!kc)
			return NULL;
		p = shd_provider_kubevirt_new(kc, &o, err);
		kc = shd_kubeconfig_free(kc);
	}
	if (!p && err && !shd_error_names_cluster(err, row->name))
		shp_error_prefix(err, "cluster '%s'", row->name);
	return p;
}

static int hex_decode(const char *hex, unsigned char **ret, size_t *ret_len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *out = malloc(n ? n : 1);

	if (!out)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = shp_hex_digit(hex[2 * i]), lo = shp_hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return -1;
		}
		out[i] = (unsigned char)(hi * 16 + lo);
	}
	*ret = out;
	*ret_len = n;
	return 0;
}

/* Read cluster id's row on a connection of the pool's (given back at once). */
static int read_row(struct shd_providers *r, int64_t id, struct cluster_row *row,
		    struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	PGconn *conn = shd_dbpool_get(r->pool, err);
	char ids[24];

	if (!conn)
		return -err->code;
	(void)snprintf(ids, sizeof(ids), "%lld", (long long)id);
	/*
	 * The fingerprint changes with what a provider is built from, and only with that: a
	 * simulated cluster lives in its provider, so an unrelated change to the row (its
	 * health, say) must not rebuild it.
	 */
	res = shd_db_exec(
		conn,
		"SELECT name, kind, credentials_key_id, encode(credentials, 'hex'),"
		" kind || '/' || credentials_key_id || '/' || coalesce(md5(credentials), '-')"
		" FROM clusters WHERE id = $1",
		1, (const char *[]){ids}, err);
	shd_dbpool_put(r->pool, conn);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "cluster %lld not found", (long long)id);
	(void)snprintf(row->name, sizeof(row->name), "%s", PQgetvalue(res, 0, 0));
	(void)snprintf(row->kind, sizeof(row->kind), "%s", PQgetvalue(res, 0, 1));
	(void)snprintf(row->key_id, sizeof(row->key_id), "%s", PQgetvalue(res, 0, 2));
	(void)snprintf(row->fingerprint, sizeof(row->fingerprint), "%s", PQgetvalue(res, 0, 4));
	if (!PQgetisnull(res, 0, 3) &&
	    hex_decode(PQgetvalue(res, 0, 3), &row->credentials, &row->credentials_len) < 0)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return 0;
}

/*
 * What is known of id's row with this fingerprint: 1 and *ret a new reference to its provider,
 * -1 and err the failure of its build, 0 nothing.
 */
static int cached(struct shd_providers *r, int64_t id, const char *fingerprint,
		  struct shd_provider **ret, struct shp_error *err)
{
	int found = 0;

	pthread_mutex_lock(&r->lock);
	for (struct entry *e = r->entries; e; e = e->next) {
		if (e->cluster_id != id || strcmp(e->fingerprint, fingerprint) != 0)
			continue;
		if (e->provider) {
			*ret = shd_provider_ref(e->provider);
			found = 1;
		} else {
			if (err)
				*err = e->failure;
			found = -1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

/*
 * Keep p (one reference is the map's) as id's provider, replacing an older one; or, with p
 * NULL, remember the build's failure for this fingerprint.
 */
static void store(struct shd_providers *r, int64_t id, const char *fingerprint,
		  struct shd_provider *p, const struct shp_error *failure)
{
	struct shd_provider *old = NULL;
	struct entry *e;

	pthread_mutex_lock(&r->lock);
	for (e = r->entries; e; e = e->next)
		if (e->cluster_id == id)
			break;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		e->cluster_id = id;
		e->next = r->entries;
		r->entries = e;
	}
	if (e) {
		old = e->provider;
		e->provider = shd_provider_ref(p);
		if (failure)
			e->failure = *failure;
		(void)snprintf(e->fingerprint, sizeof(e->fingerprint), "%s", fingerprint);
	}
	pthread_mutex_unlock(&r->lock);
	/* the old provider goes when its last user lets go, outside the lock */
	shd_provider_unref(old);
}

struct shd_provider *shd_providers_get(struct shd_providers *r, int64_t cluster_id,
				       struct shp_error *err)
{
	struct shp_error e = SHP_ERROR_INIT;
	struct cluster_row row = {0};
	struct shd_provider *p = NULL;
	int known;

	if (read_row(r, cluster_id, &row, err) < 0)
		return NULL;
	known = cached(r, cluster_id, row.fingerprint, &p, err);
	if (known == 0) {
		/* built outside the lock: a slow build holds up no other cluster */
		p = build(r, &row, &e);
		if (p) {
			store(r, cluster_id, row.fingerprint, p, NULL);
			log_info("cluster '%s': %s provider ready", row.name, p->kind);
		} else {
			/* logged once per row version; a lack of memory may pass, so it is not kept
			 */
			log_warn("%s", e.msg);
			if (e.code != SHP_E_NOMEM)
				store(r, cluster_id, row.fingerprint, NULL, &e);
			if (err)
				*err = e;
		}
	}
	free(row.credentials);
	return p;
}

void shd_providers_invalidate(struct shd_providers *r, int64_t cluster_id)
{
	struct entry **pe, *e = NULL;

	pthread_mutex_lock(&r->lock);
	for (pe = &r->entries; *pe; pe = &(*pe)->next) {
		if ((*pe)->cluster_id == cluster_id) {
			e = *pe;
			*pe = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (!e)
		return;
	shd_provider_unref(e->provider);
	free(e);
}
