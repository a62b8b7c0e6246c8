/*
 * The store: objects per resource, the single global resourceVersion counter and the watch
 * event log. Every change bumps the counter, stamps metadata.resourceVersion and appends an
 * event holding the object before and after, so that the state at any RV still in the log can be
 * rebuilt (paginated lists read that snapshot). Callers hold ks->mu.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kubesim.h"
#include "util.h"

void ks_key(const char *ns, const char *name, char *out, size_t size)
{
	if (ns && *ns)
		(void)snprintf(out, size, "%s/%s", ns, name);
	else
		(void)snprintf(out, size, "%s", name);
}

void ks_store_init(struct ks *ks)
{
	for (int i = 0; i < _KS_R_MAX; i++)
		ks->objs[i] = json_object();
	ks->stats_by_verb = json_object();
}

static void drop_log(struct ks *ks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(ks->log[i].obj);
		json_decref(ks->log[i].prev);
	}
	memmove(ks->log, ks->log + n, (ks->log_len - n) * sizeof(*ks->log));
	ks->log_len -= n;
}

void ks_store_release(struct ks *ks)
{
	drop_log(ks, ks->log_len);
	free(ks->log);
	ks->log = NULL;
	ks->log_cap = 0;
	for (int i = 0; i < _KS_R_MAX; i++) {
		json_decref(ks->objs[i]);
		ks->objs[i] = NULL;
	}
	json_decref(ks->stats_by_verb);
	ks->stats_by_verb = NULL;
}

/* Back to the initial objects; the RV keeps counting and the log is compacted. */
void ks_store_reset(struct ks *ks)
{
	for (int i = 0; i < _KS_R_MAX; i++)
		json_object_clear(ks->objs[i]);
	ks->rv++;
	ks_compact(ks);
	ks_seed_cluster(ks);
	pthread_cond_broadcast(&ks->cond);
}

static bool is_cluster_scoped(enum ks_res res)
{
	return !ks_resources[res].namespaced;
}

json_t *ks_get(struct ks *ks, enum ks_res res, const char *ns, const char *name)
{
	char key[512];

	ks_key(is_cluster_scoped(res) ? NULL : ns, name, key, sizeof(key));
	return json_object_get(ks->objs[res], key);
}

static void log_append(struct ks *ks, uint64_t rv, enum ks_ev_type type, enum ks_res res,
		       json_t *obj, json_t *prev)
{
	if (ks->log_len == ks->log_cap) {
		size_t cap = ks->log_cap ? ks->log_cap * 2 : 1024;
		struct ks_event *n = realloc(ks->log, cap * sizeof(*n));
		if (!n)
			abort();
		ks->log = n;
		ks->log_cap = cap;
	}
	ks->log[ks->log_len++] = (struct ks_event){rv, type, res, json_incref(obj), prev};
	if (ks->log_len > KS_LOG_MAX) {
		size_t n = ks->log_len - KS_LOG_MAX;
		ks->floor = ks->log[n - 1].rv;
		drop_log(ks, n);
	}
}

static void stamp_rv(json_t *obj, uint64_t rv)
{
	char s[32];
	json_t *md = json_object_get(obj, "metadata");

	(void)snprintf(s, sizeof(s), "%llu", (unsigned long long)rv);
	if (!md) {
		md = json_object();
		json_object_set_new(obj, "metadata", md);
	}
	json_object_set_new(md, "resourceVersion", json_string(s));
}

static void key_of(enum ks_res res, const json_t *obj, char *out, size_t size)
{
	const json_t *md = json_object_get(obj, "metadata");

	ks_key(is_cluster_scoped(res) ? NULL : json_string_value(json_object_get(md, "namespace")),
	       json_string_value(json_object_get(md, "name")), out, size);
}

uint64_t ks_put(struct ks *ks, enum ks_res res, json_t *obj)
{
	char key[512];
	json_t *prev;
	uint64_t rv = ++ks->rv;

	key_of(res, obj, key, sizeof(key));
	stamp_rv(obj, rv);
	prev = json_incref(json_object_get(ks->objs[res], key));
	log_append(ks, rv, prev ? KS_EV_MODIFIED : KS_EV_ADDED, res, obj, prev);
	json_object_set_new(ks->objs[res], key, obj);
	pthread_cond_broadcast(&ks->cond);
	return rv;
}

uint64_t ks_remove(struct ks *ks, enum ks_res res, const char *ns, const char *name)
{
	char key[512];
	json_t *prev, *last;
	uint64_t rv;

	ks_key(is_cluster_scoped(res) ? NULL : ns, name, key, sizeof(key));
	prev = json_object_get(ks->objs[res], key);
	if (!prev)
		return 0;
	rv = ++ks->rv;
	last = json_deep_copy(prev);
	stamp_rv(last, rv);
	log_append(ks, rv, KS_EV_DELETED, res, last, json_incref(prev));
	json_decref(last);
	json_object_del(ks->objs[res], key);
	pthread_cond_broadcast(&ks->cond);
	return rv;
}

void ks_compact(struct ks *ks)
{
	ks->floor = ks->rv;
	drop_log(ks, ks->log_len);
	pthread_cond_broadcast(&ks->cond);
}

size_t ks_log_after(const struct ks *ks, uint64_t after)
{
	size_t lo = 0, hi = ks->log_len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ks->log[mid].rv <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The object under key as it was at rv: the state before the first logged change after rv, or
 * the current one when nothing changed since. The caller checks rv >= floor first.
 */
json_t *ks_get_at(struct ks *ks, enum ks_res res, const char *key, uint64_t rv)
{
	char k[512];

	for (size_t i = ks_log_after(ks, rv); i < ks->log_len; i++) {
		const struct ks_event *e = &ks->log[i];
		if (e->res != res)
			continue;
		key_of(res, e->obj, k, sizeof(k));
		if (strcmp(k, key) == 0)
			return e->prev;
	}
	return json_object_get(ks->objs[res], key);
}

void ks_new_uid(char *out, size_t size)
{
	unsigned char b[16];
	char hex[33];

	if (shp_random_bytes(b, sizeof(b), NULL) < 0)
		abort();
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	shp_hex_encode(b, sizeof(b), hex);
	(void)snprintf(out, size, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
		       hex + 20);
}

/* RFC 3339 in UTC with whole seconds, as the apiserver writes metav1.Time. */
void ks_now(char *out, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	(void)gmtime_r(&t, &tm);
	(void)strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
