/*
 * The simulated cluster's core: its state under one mutex, the global resourceVersion, the
 * event log the watches read, the pending transitions applied lazily (each call first applies
 * what is due, in due order, each one a separate event), the constructor and the test hooks.
 * The VM operations and the watch are in provider-sim-vm.c, manifests in provider-sim-spec.c,
 * the other kinds in provider-sim-ops.c and provider-sim-cluster.c.
 */
#include "config.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "error.h"
#include "labelsel.h"
#include "log.h"
#include "provider-sim-internal.h"
#include "provider-sim.h"
#include "util.h"

/* ---- memory and messages ------------------------------------------------------------------ */

void *sim_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		log_error("simulated cluster: out of memory");
		abort();
	}
	return p;
}

void *sim_xrealloc(void *p, size_t n, size_t size)
{
	void *q = n && size && n > SIZE_MAX / size ? NULL : realloc(p, (n ? n : 1) * size);

	if (!q) {
		log_error("simulated cluster: out of memory");
		abort();
	}
	return q;
}

void sim_copy(char *dst, size_t size, const char *src)
{
	(void)snprintf(dst, size, "%s", src ? src : "");
}

/*
 * Names and values in messages come from callers and may hold anything: control bytes become
 * '?', and a long one is cut with "...", so a message stays one printable line.
 */
void sim_quote(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; s && *s && n + 4 < size; s++)
		out[n++] = (unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : '?';
	if (s && *s)
		out[n++] = '.', out[n++] = '.', out[n++] = '.';
	out[n] = '\0';
}

/*
 * The error a real cluster's answer becomes in the KubeVirt provider (k8s-status.c): the
 * same code and API code for the status, "cluster: " and the Status message, the reason as a
 * detail. Callers then add what was attempted, as that provider does.
 */
int sim_fail(struct shp_error *err, int http, const char *reason, const char *fmt, ...)
{
	static const struct {
		int http;
		enum shp_errc code;
		const char *api;
	} map[] = {
		{400, SHP_E_INVAL, "CLUSTER_BAD_REQUEST"}, {403, SHP_E_PERM, "CLUSTER_FORBIDDEN"},
		{404, SHP_E_NOTFOUND, "NOT_FOUND"},        {409, SHP_E_CONFLICT, "CONFLICT"},
		{422, SHP_E_INVAL, "CLUSTER_INVALID"},     {504, SHP_E_TIMEOUT, "CLUSTER_TIMEOUT"},
	};
	enum shp_errc code = SHP_E_K8S;
	const char *api = "CLUSTER_ERROR";
	char msg[SHP_ERROR_MSG_MAX - 16];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < SHP_ARRAY_SIZE(map); i++)
		if (map[i].http == http)
			code = map[i].code, api = map[i].api;
	if (http == 409 && strcmp(reason, "AlreadyExists") == 0)
		api = "ALREADY_EXISTS";
	shp_error_set(err, code, "cluster: %s", msg);
	if (err) {
		shp_error_api_code(err, api);
		shp_error_detail(err, "cluster_reason", "%s", reason);
	}
	return -(int)code;
}

/* ---- object sets -------------------------------------------------------------------------- */

static int key_cmp(const struct sim_obj *o, const char *ns, const char *name)
{
	int c = strcmp(o->ns, ns);

	return c ? c : strcmp(o->name, name);
}

/* Binary search: true when found at *ret_pos, else *ret_pos is where it would go. */
static bool set_search(const struct sim_set *set, const char *ns, const char *name, size_t *ret_pos)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(set->items[mid], ns, name);
		if (c == 0) {
			*ret_pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return false;
}

/* Sorted sets keep lists in the API server's order (namespace, then name) at no extra cost. */
struct sim_obj *sim_find(struct sim *s, enum sim_kind kind, const char *ns, const char *name)
{
	size_t pos;

	if (!ns || !name)
		return NULL;
	return set_search(&s->sets[kind], ns, name, &pos) ? s->sets[kind].items[pos] : NULL;
}

int sim_insert(struct sim *s, struct sim_obj *o, struct shp_error *err)
{
	static const char *const plural[] = {"virtualmachines", "virtualmachinesnapshots",
					     "virtualmachinerestores", "virtualmachineclones",
					     "virtualmachineinstancemigrations"};
	struct sim_set *set = &s->sets[o->kind];
	size_t pos;

	if (set->n >= SIM_MAX_OBJECTS)
		return sim_fail(err, 403, "Forbidden",
				"%s \"%s\" is forbidden: exceeded quota: the simulated cluster "
				"holds at most %d %s",
				plural[o->kind], o->name, SIM_MAX_OBJECTS, plural[o->kind]);
	if (set_search(set, o->ns, o->name, &pos))
		return sim_fail(err, 409, "AlreadyExists", "%s \"%s\" already exists",
				plural[o->kind], o->name);
	if (set->n == set->cap) {
		set->cap = set->cap ? set->cap * 2 : 64;
		set->items = sim_xrealloc(set->items, set->cap, sizeof(*set->items));
	}
	memmove(&set->items[pos + 1], &set->items[pos], (set->n - pos) * sizeof(*set->items));
	set->items[pos] = o;
	set->n++;
	return 0;
}

void sim_remove(struct sim *s, struct sim_obj *o)
{
	struct sim_set *set = &s->sets[o->kind];
	size_t pos;

	if (set_search(set, o->ns, o->name, &pos) && set->items[pos] == o) {
		memmove(&set->items[pos], &set->items[pos + 1],
			(set->n - pos - 1) * sizeof(*set->items));
		set->n--;
	}
	sim_unschedule(s, o);
	sim_obj_release(o);
	free(o);
}

/* ---- transitions ------------------------------------------------------------------------ */

/*
 * An object is in the pending list at most once, whatever its next step: rescheduling only
 * moves its due time. next_due may be early after an unschedule; that costs one scan.
 */
void sim_schedule(struct sim *s, struct sim_obj *o, uint64_t from)
{
	if (!o->due_ns) {
		if (s->n_pending == s->cap_pending) {
			s->cap_pending = s->cap_pending ? s->cap_pending * 2 : 64;
			s->pending = sim_xrealloc(s->pending, s->cap_pending, sizeof(*s->pending));
		}
		s->pending[s->n_pending++] = o;
	}
	o->due_ns = from + s->tick_ns;
	o->seq = ++s->seq;
	if (o->due_ns < s->next_due)
		s->next_due = o->due_ns;
}

void sim_unschedule(struct sim *s, struct sim_obj *o)
{
	if (!o->due_ns)
		return;
	for (size_t i = 0; i < s->n_pending; i++)
		if (s->pending[i] == o) {
			s->pending[i] = s->pending[--s->n_pending];
			break;
		}
	o->due_ns = 0;
}

/*
 * Apply every transition due at `now`, earliest first (ties in scheduling order); a step may
 * schedule the object's next one from its own due time, so a late caller sees the whole chain.
 */
static void apply_due(struct sim *s, uint64_t now)
{
	while (s->next_due <= now) {
		struct sim_obj *first = NULL;
		size_t at = 0;

		for (size_t i = 0; i < s->n_pending; i++) {
			struct sim_obj *o = s->pending[i];
			if (!first || o->due_ns < first->due_ns ||
			    (o->due_ns == first->due_ns && o->seq < first->seq))
				first = s->pending[i], at = i;
		}
		if (!first || first->due_ns > now) {
			s->next_due = first ? first->due_ns : UINT64_MAX;
			return;
		}
		uint64_t due = first->due_ns;
		s->pending[at] = s->pending[--s->n_pending];
		first->due_ns = 0;
		if (first->kind == SIM_VM)
			sim_vm_step(s, (struct sim_vm *)first, due);
		else
			sim_step_other(s, first, due);
	}
}

uint64_t sim_bump(struct sim *s)
{
	return ++s->rv;
}

uint64_t sim_next_serial(struct sim *s)
{
	return ++s->serial;
}

void sim_make_uid(struct sim *s, char *out, size_t size)
{
	(void)snprintf(out, size, "%08" PRIx32 "-5e5e-4000-8000-%012" PRIx64, s->uid_base,
		       sim_next_serial(s));
}

/* ---- the event log ------------------------------------------------------------------------ */

static void event_free(struct sim_event *ev)
{
	json_decref(ev->labels);
	json_decref(ev->prev_labels);
	free(ev);
}

static void log_clear(struct sim *s)
{
	for (size_t i = 0; i < s->log_n; i++)
		event_free(s->log[(s->log_head + i) % SIM_LOG_MAX]);
	s->log_head = s->log_n = 0;
}

/*
 * Events hold a copy of the VM and references to its labels (which are replaced, never
 * changed, so sharing them is safe); every reference is taken and dropped under the lock.
 */
void sim_vm_event(struct sim *s, struct sim_vm *vm, enum shd_watch_type type, json_t *prev_labels)
{
	struct sim_event *ev = sim_xcalloc(1, sizeof(*ev));

	vm->rv = ++s->rv;
	(void)snprintf(vm->pub.resource_version, sizeof(vm->pub.resource_version), "%" PRIu64,
		       vm->rv);
	ev->rv = vm->rv;
	ev->type = type;
	ev->vm = vm->pub;
	ev->labels = json_incref(vm->labels);
	ev->prev_labels = prev_labels ? json_incref(prev_labels) : NULL;
	if (!s->log)
		s->log = sim_xcalloc(SIM_LOG_MAX, sizeof(*s->log));
	if (s->log_n == SIM_LOG_MAX) {
		/* the oldest event goes: a watch must now start after it */
		struct sim_event *old = s->log[s->log_head];
		s->floor_rv = old->rv;
		event_free(old);
		s->log_head = (s->log_head + 1) % SIM_LOG_MAX;
		s->log_n--;
	}
	s->log[(s->log_head + s->log_n) % SIM_LOG_MAX] = ev;
	s->log_n++;
	pthread_cond_broadcast(&s->changed);
}

const struct sim_event *sim_log_at(const struct sim *s, size_t i)
{
	return s->log[(s->log_head + i) % SIM_LOG_MAX];
}

/* The log is in RV order, so a resuming watch finds its place by binary search. */
size_t sim_log_first_after(const struct sim *s, uint64_t rv)
{
	size_t lo = 0, hi = s->log_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sim_log_at(s, mid)->rv <= rv)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- entering and leaving a call -------------------------------------------------------- */

int sim_unreachable_error(const struct sim *s, struct shp_error *err)
{
	shp_error_set(err, SHP_E_UNAVAIL, "cluster '%s' is unreachable: connection refused",
		      s->cluster);
	shp_error_api_code(err, "UNREACHABLE");
	return -SHP_E_UNAVAIL;
}

/* An injected failure, with the API code the KubeVirt provider gives that code. */
static int fault_error(const struct sim *s, enum shp_errc code, struct shp_error *err)
{
	static const struct {
		enum shp_errc code;
		const char *api;
	} apis[] = {
		{SHP_E_UNAVAIL, "CLUSTER_UNAVAILABLE"}, {SHP_E_TIMEOUT, "CLUSTER_TIMEOUT"},
		{SHP_E_RATE, "CLUSTER_THROTTLED"},      {SHP_E_K8S, "CLUSTER_ERROR"},
		{SHP_E_PERM, "CLUSTER_FORBIDDEN"},      {SHP_E_INVAL, "CLUSTER_INVALID"},
		{SHP_E_CONFLICT, "CONFLICT"},           {SHP_E_NOTFOUND, "NOT_FOUND"},
	};

	shp_error_set(err, code, "cluster '%s': injected failure (simulated %s)", s->cluster,
		      shp_errc_to_string(code));
	for (size_t i = 0; i < SHP_ARRAY_SIZE(apis); i++)
		if (apis[i].code == code)
			shp_error_api_code(err, apis[i].api);
	return -(int)code;
}

/*
 * Due transitions are applied once the call goes ahead. A failed call (unreachable, injected
 * fault) leaves them to the next one, which catches up by due time, so nothing is lost.
 */
int sim_enter(struct sim *s, uint64_t deadline_ns, struct shp_error *err)
{
	uint64_t now = shp_now_monotonic_ns();
	int errc;

	if (deadline_ns && now >= deadline_ns)
		return shp_error_set(err, SHP_E_TIMEOUT, "cluster '%s': deadline exceeded",
				     s->cluster);
	pthread_mutex_lock(&s->lock);
	if (s->unreachable) {
		pthread_mutex_unlock(&s->lock);
		return sim_unreachable_error(s, err);
	}
	if (s->fault_count > 0) {
		s->fault_count--;
		errc = s->fault_errc;
		pthread_mutex_unlock(&s->lock);
		return fault_error(s, (enum shp_errc)errc, err);
	}
	apply_due(s, now);
	return 0;
}

void sim_leave(struct sim *s)
{
	pthread_mutex_unlock(&s->lock);
}

void sim_wait(struct sim *s, uint64_t until_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(until_ns / 1000000000u),
			      .tv_nsec = (long)(until_ns % 1000000000u)};

	(void)pthread_cond_timedwait(&s->changed, &s->lock, &ts);
}

void sim_apply_due(struct sim *s, uint64_t now)
{
	apply_due(s, now);
}

int sim_need_namespace(struct sim *s, const char *ns, struct shp_error *err)
{
	char q[80];

	if (ns && json_object_get(s->namespaces, ns))
		return 0;
	sim_quote(q, sizeof(q), ns);
	return sim_fail(err, 404, "NotFound", "namespaces \"%s\" not found", q);
}

int sim_add_namespace(struct sim *s, const char *ns, struct shp_error *err)
{
	if (json_object_get(s->namespaces, ns))
		return 0;
	if (json_object_size(s->namespaces) >= SIM_MAX_NAMESPACES)
		return sim_fail(err, 403, "Forbidden",
				"namespaces \"%s\" is forbidden: exceeded quota: the simulated "
				"cluster holds at most %d namespaces",
				ns, SIM_MAX_NAMESPACES);
	json_object_set_new(s->namespaces, ns, json_true());
	sim_bump(s);
	return 0;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

struct sim_provider {
	struct shd_provider p;
	struct sim s;
};

extern const struct shd_infra_ops sim_infra_ops;

/* Every object, pending step, event and namespace goes; the new cluster's namespaces return. */
static void clear_objects(struct sim *s)
{
	for (int k = 0; k < _SIM_KIND_MAX; k++) {
		struct sim_set *set = &s->sets[k];
		for (size_t i = 0; i < set->n; i++) {
			sim_obj_release(set->items[i]);
			free(set->items[i]);
		}
		set->n = 0;
	}
	s->n_pending = 0;
	s->next_due = UINT64_MAX;
	log_clear(s);
	json_object_clear(s->namespaces);
	for (const char *const *ns =
		     (const char *const[]){"default", "kube-system", "kubevirt", NULL};
	     *ns; ns++)
		json_object_set_new(s->namespaces, *ns, json_true());
}

static void sim_destroy(struct shd_provider *p)
{
	struct sim_provider *sp = (struct sim_provider *)p;
	struct sim *s = &sp->s;

	clear_objects(s);
	for (int k = 0; k < _SIM_KIND_MAX; k++)
		free(s->sets[k].items);
	free(s->pending);
	free(s->log);
	json_decref(s->namespaces);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(sp);
}

static int check_options(const struct shd_sim_options *opt, struct shp_error *err)
{
	if (opt->tick_ms < 0 || opt->tick_ms > 3600000)
		return shp_error_set(err, SHP_E_INVAL, "simulated cluster: tick_ms %d out of range",
				     opt->tick_ms);
	if (opt->nodes < 0 || opt->nodes > 1000)
		return shp_error_set(err, SHP_E_INVAL, "simulated cluster: %d nodes (at most 1000)",
				     opt->nodes);
	return 0;
}

static void init_condvar(pthread_cond_t *c)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
}

struct shd_provider *shd_provider_sim_new(const struct shd_sim_options *opt, struct shp_error *err)
{
	static const struct shd_sim_options defaults = {0};
	struct sim_provider *sp;
	struct sim *s;

	if (!opt)
		opt = &defaults;
	if (check_options(opt, err) < 0)
		return NULL;
	sp = sim_xcalloc(1, sizeof(*sp));
	s = &sp->s;
	sim_copy(s->cluster, sizeof(s->cluster), opt->cluster_name ? opt->cluster_name : "sim");
	s->tick_ns = (uint64_t)(opt->tick_ms ? opt->tick_ms : 500) * 1000000u;
	s->nodes = opt->nodes ? opt->nodes : 3;
	s->gpu = opt->gpu;
	s->hugepages = opt->hugepages;
	if (shp_random_bytes(&s->uid_base, sizeof(s->uid_base), NULL) < 0)
		s->uid_base = (uint32_t)shp_now_realtime_us();
	s->next_due = UINT64_MAX;
	s->rv = 1000; /* like a real cluster, never a small number */
	s->floor_rv = s->rv;
	pthread_mutex_init(&s->lock, NULL);
	init_condvar(&s->changed);
	s->namespaces = json_object();
	clear_objects(s);

	sp->p.kind = "simulated";
	sp->p.infra = (struct shd_infra){&sim_infra_ops, s};
	sp->p.snapshots = (struct shd_snapshots){&sim_snapshot_ops, s};
	sp->p.clones = (struct shd_clones){&sim_clone_ops, s};
	sp->p.migrations = (struct shd_migrations){&sim_migration_ops, s};
	sp->p.instancetypes = (struct shd_instancetypes){&sim_instancetype_ops, s};
	/* the console's impl is the provider: a stream holds a reference on it */
	sp->p.console = (struct shd_console){&sim_console_ops, &sp->p};
	sp->p.cluster = (struct shd_cluster_if){&sim_cluster_ops, s};
	sp->p.destroy = sim_destroy;
	atomic_init(&sp->p.refs, 1);
	return &sp->p;
}

/* ---- test hooks ------------------------------------------------------------------------------ */

/* The hooks take only a simulated cluster's provider: anything else is a programming error. */
static struct sim *sim_of(struct shd_provider *p)
{
	assert(p && p->destroy == sim_destroy);
	return p->infra.impl;
}

void shd_provider_sim_reset(struct shd_provider *p)
{
	struct sim *s = sim_of(p);

	pthread_mutex_lock(&s->lock);
	clear_objects(s);
	s->floor_rv = sim_bump(s); /* nothing before the reset can be resumed from */
	s->epoch++;
	s->unreachable = false;
	s->fault_count = 0;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

int shd_provider_sim_remove_raw(struct shd_provider *p, const char *ns, const char *name)
{
	struct sim *s = sim_of(p);
	struct sim_obj *o;

	pthread_mutex_lock(&s->lock);
	o = sim_find(s, SIM_VM, ns, name);
	if (o) {
		sim_migrations_drop(s, ns, name);
		sim_remove(s, o);
	}
	pthread_mutex_unlock(&s->lock);
	return o ? 0 : -SHP_E_NOTFOUND;
}

void shd_provider_sim_set_unreachable(struct shd_provider *p, bool unreachable)
{
	struct sim *s = sim_of(p);

	pthread_mutex_lock(&s->lock);
	s->unreachable = unreachable;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

void shd_provider_sim_set_fault(struct shd_provider *p, int errc, int count)
{
	struct sim *s = sim_of(p);

	pthread_mutex_lock(&s->lock);
	s->fault_errc = errc > SHP_OK && errc < _SHP_E_MAX ? errc : SHP_E_INTERNAL;
	s->fault_count = count > 0 ? count : 0;
	pthread_mutex_unlock(&s->lock);
}

void shd_provider_sim_expire_watches(struct shd_provider *p)
{
	struct sim *s = sim_of(p);

	pthread_mutex_lock(&s->lock);
	log_clear(s);
	s->floor_rv = s->rv;
	s->epoch++;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

/* ---- seeding ----------------------------------------------------------------------------------
 */

static int seed_check(const char *ns, const char *prefix, int n, const json_t *labels,
		      struct shp_error *err)
{
	char longest[SHD_VM_NAME_MAX + 32];

	if (!shp_name_is_valid(ns))
		return shp_error_set(err, SHP_E_INVAL, "seed: invalid namespace");
	if (n < 0 || n > SIM_MAX_OBJECTS)
		return shp_error_set(err, SHP_E_INVAL, "seed: %d VMs (0 to %d)", n,
				     SIM_MAX_OBJECTS);
	(void)snprintf(longest, sizeof(longest), "%s-%d", prefix ? prefix : "", n);
	if (!prefix || !shd_dns_subdomain_is_valid(longest))
		return shp_error_set(err, SHP_E_INVAL, "seed: invalid name prefix");
	return labels ? sim_labels_check(labels, false, "seed", prefix, err) : 0;
}

/*
 * Seeded VMs skip the transitions: a large cluster is there at once, as if it had been running
 * for a while. Each still gets its ADDED event, so a watch from before the seed sees them.
 */
int shd_provider_sim_seed(struct shd_provider *p, const char *ns, const char *prefix, int n,
			  bool running, const json_t *labels, struct shp_error *err)
{
	struct sim *s = sim_of(p);
	uint64_t now = shp_now_monotonic_ns();
	struct shd_vm v = {0};
	int r = seed_check(ns, prefix, n, labels, err);

	if (r < 0)
		return r;
	sim_copy(v.namespace_, sizeof(v.namespace_), ns);
	sim_copy(v.run_strategy, sizeof(v.run_strategy), running ? "Always" : "Halted");
	v.cpus = 1;
	v.memory_bytes = 1024 * 1024 * 1024;
	pthread_mutex_lock(&s->lock);
	r = sim_add_namespace(s, ns, err);
	for (int i = 1; r == 0 && i <= n; i++) {
		(void)snprintf(v.name, sizeof(v.name), "%s-%d", prefix, i);
		if (!sim_vm_get(s, ns, v.name))
			r = sim_vm_create_from(s, &v, labels,
					       running ? SHD_VM_RUNNING : SHD_VM_STOPPED, NULL, now,
					       err);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}
