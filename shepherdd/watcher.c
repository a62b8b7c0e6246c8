/*
 * The ResourceWatcher: a manager thread that follows the clusters table while this daemon leads
 * the queue, and one list-watch thread per cluster with its cache, its backoff and its circuit
 * breaker. Rows of vms are written in batches (one statement per list, one per event), and a
 * status change records its VM_STATUS_CHANGE domain event in the same transaction, and tells the
 * VM's owner when it settled (coalesced per VM within notifications.status_window).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "breaker.h"
#include "db.h"
#include "error.h"
#include "events.h"
#include "gov.h"
#include "log.h"
#include "provider.h"
#include "queue.h"
#include "util.h"
#include "watcher.h"

enum cw_state { CW_STARTING, CW_LISTING, CW_WATCHING, CW_BACKOFF, CW_BREAKER_OPEN, CW_STOPPED };

static const char *const cw_state_names[] = {"starting", "listing",      "watching",
					     "backoff",  "breaker-open", "stopped"};

/* One watched cluster. */
struct cwatch {
	int64_t id;
	char name[64];
	struct shd_watcher *w;
	pthread_t thread;
	bool started;
	atomic_bool stop; /* honoured by the provider's watch_vms */
	bool seen;        /* manager's mark while scanning (manager thread only) */

	pthread_mutex_t mu; /* protects everything down to last_error; cond wakes sleeps */
	pthread_cond_t cond;
	struct shd_vm *items; /* sorted by namespace, name */
	size_t n, cap;
	char rv[32]; /* resume point; "" = list first */
	bool listed; /* a list succeeded once */
	bool stale;  /* not known to be current */
	uint64_t observed_at_us;
	uint64_t listed_at_ns; /* monotonic time of the last list */
	enum cw_state state;
	char last_error[256];

	struct shd_breaker breaker;
	atomic_uint_fast64_t relists, expired, restarts, events, failures;
	struct cwatch *next;
};

struct shd_watcher {
	struct shd_watcher_config cfg;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool active;
	pthread_mutex_t mu; /* protects list and kick; cond wakes the manager */
	pthread_cond_t cond;
	bool kick;
	struct cwatch *list;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static void cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* Wait on c (mu held) until stop is set or ms passed. */
static void wait_ms(pthread_cond_t *c, pthread_mutex_t *mu, const atomic_bool *stop, int64_t ms)
{
	uint64_t until = shp_now_monotonic_ns() + (uint64_t)ms * 1000000ull;
	struct timespec ts = {.tv_sec = (time_t)(until / 1000000000ull),
			      .tv_nsec = (long)(until % 1000000000ull)};

	while (!atomic_load(stop) && shp_now_monotonic_ns() < until)
		if (pthread_cond_timedwait(c, mu, &ts) == ETIMEDOUT)
			break;
}

static int vm_cmp(const void *a, const void *b)
{
	const struct shd_vm *x = a, *y = b;
	int r = strcmp(x->namespace_, y->namespace_);

	return r ? r : strcmp(x->name, y->name);
}

/* Index of (ns, name) in the sorted cache, or -1; *ret_at is where it would go. */
static long cache_find(const struct cwatch *cw, const char *ns, const char *name, size_t *ret_at)
{
	size_t lo = 0, hi = cw->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(cw->items[mid].namespace_, ns);

		if (r == 0)
			r = strcmp(cw->items[mid].name, name);
		if (r == 0)
			return (long)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (ret_at)
		*ret_at = lo;
	return -1;
}

/* Put vm into the cache (mu held); false only when out of memory. */
static bool cache_put(struct cwatch *cw, const struct shd_vm *vm)
{
	size_t at = 0;
	long i = cache_find(cw, vm->namespace_, vm->name, &at);

	if (i >= 0) {
		cw->items[i] = *vm;
		return true;
	}
	if (cw->n == cw->cap) {
		size_t cap = cw->cap ? cw->cap * 2 : 16;
		struct shd_vm *p = realloc(cw->items, cap * sizeof(*p));

		if (!p)
			return false;
		cw->items = p;
		cw->cap = cap;
	}
	memmove(&cw->items[at + 1], &cw->items[at], (cw->n - at) * sizeof(*cw->items));
	cw->items[at] = *vm;
	cw->n++;
	return true;
}

static void cache_remove(struct cwatch *cw, const char *ns, const char *name)
{
	long i = cache_find(cw, ns, name, NULL);

	if (i < 0)
		return;
	memmove(&cw->items[i], &cw->items[i + 1], (cw->n - (size_t)i - 1) * sizeof(*cw->items));
	cw->n--;
}

static void set_state(struct cwatch *cw, enum cw_state s, const char *error)
{
	pthread_mutex_lock(&cw->mu);
	cw->state = s;
	if (error)
		(void)snprintf(cw->last_error, sizeof(cw->last_error), "%s", error);
	pthread_mutex_unlock(&cw->mu);
}

/* A VM as it is after it vanished from the cluster. */
static struct shd_vm deleted_vm(const struct shd_vm *vm)
{
	struct shd_vm d = *vm;

	d.status = SHD_VM_UNKNOWN;
	d.node[0] = d.ip[0] = '\0';
	(void)snprintf(d.error, sizeof(d.error), "deleted in the cluster");
	return d;
}

/* ---- writing rows ------------------------------------------------------------------------ */

/*
 * Rows of the VMs given whose observed fields differ are updated; VMs without a row are left
 * to the reconciler and adoption. Returns the changed rows with their previous status.
 */
static const char sql_apply[] =
	"WITH n AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(namespace text, name text,"
	"   status vm_status, printable_status text, resource_version text, node text, ip text,"
	"   cpus integer, memory_bytes bigint, error text)),"
	" o AS (SELECT v.id, v.status AS old_status FROM vms v JOIN n USING (namespace, name)"
	"   WHERE v.cluster_id = $1 AND v.deleted_at IS NULL FOR UPDATE OF v)"
	" UPDATE vms v SET status = n.status, printable_status = n.printable_status,"
	"   resource_version = n.resource_version, node = n.node, ip = n.ip, cpus = n.cpus,"
	"   memory_bytes = n.memory_bytes, error = n.error, observed_at = now(), updated_at = now()"
	" FROM n, o WHERE o.id = v.id AND v.namespace = n.namespace AND v.name = n.name"
	"   AND (v.status, v.printable_status, v.resource_version, v.node, v.ip, v.cpus,"
	"        v.memory_bytes, v.error) IS DISTINCT FROM (n.status, n.printable_status,"
	"        n.resource_version, n.node, n.ip, n.cpus, n.memory_bytes, n.error)"
	" RETURNING v.id, v.namespace, v.name, o.old_status::text, v.status::text, v.owner_id";

static json_t *vm_record(const struct shd_vm *vm)
{
	return json_pack(
		"{ss ss ss ss ss ss ss si sI ss}", "namespace", vm->namespace_, "name", vm->name,
		"status", shd_vm_status_to_string(vm->status), "printable_status",
		vm->printable_status, "resource_version", vm->resource_version, "node", vm->node,
		"ip", vm->ip, "cpus", vm->cpus > 0 ? vm->cpus : 0, "memory_bytes",
		(json_int_t)(vm->memory_bytes > 0 ? vm->memory_bytes : 0), "error", vm->error);
}

/* Record the VM_STATUS_CHANGE event of row i of res (the caller's transaction). */
static int status_event(PGconn *conn, const struct cwatch *cw, const PGresult *res, int i,
			struct shp_error *err)
{
	json_auto_t *payload = json_pack("{sI ss ss ss ss ss}", "vm_id",
					 (json_int_t)strtoll(shd_db_value(res, i, 0), NULL, 10),
					 "cluster", cw->name, "namespace", shd_db_value(res, i, 1),
					 "name", shd_db_value(res, i, 2), "from",
					 shd_db_value(res, i, 3), "to", shd_db_value(res, i, 4));
	struct shd_event_new ev = {
		.type = "VM_STATUS_CHANGE",
		.payload = payload,
		.actor = "shepherdd",
		.tenant = "",
		.sla = SHD_SLA_FAST,
		.priority = SHD_JOB_PRIORITY_NORMAL,
	};
	int64_t id;

	if (!payload)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	/* an observation, not a request: recorded, and finished in the same transaction */
	if (shd_event_create(conn, &ev, &id, NULL, err) < 0 ||
	    shd_event_transition(conn, id, "PROCESSING", NULL, err) < 0 ||
	    shd_event_transition(conn, id, "COMPLETED", NULL, err) < 0)
		return -err->code;
	return 0;
}

/*
 * Whether the owner hears of a change from `from` to `to`: a VM that settled (running,
 * stopped, paused, failed), not one passing through a transitional status, and not the first
 * observation of a new row (its requester was told the request completed).
 */
static bool status_is_news(const char *from, const char *to)
{
	static const char *const settled[] = {"RUNNING", "STOPPED", "PAUSED", "FAILED"};

	if (strcmp(from, "UNKNOWN") == 0)
		return false;
	for (size_t i = 0; i < SHP_ARRAY_SIZE(settled); i++)
		if (strcmp(to, settled[i]) == 0)
			return true;
	return false;
}

/* VM_STATUS_CHANGE to the owner of row i of res, one per VM and window (the caller's tx). */
static int status_notify(PGconn *conn, const struct cwatch *cw, const PGresult *res, int i,
			 struct shp_error *err)
{
	const char *vm_id = shd_db_value(res, i, 0), *ns = shd_db_value(res, i, 1);
	const char *name = shd_db_value(res, i, 2), *from = shd_db_value(res, i, 3);
	const char *to = shd_db_value(res, i, 4);
	json_auto_t *data = json_pack("{sI ss ss ss ss ss}", "vm_id",
				      (json_int_t)strtoll(vm_id, NULL, 10), "cluster", cw->name,
				      "namespace", ns, "name", name, "from", from, "to", to);
	char title[200], body[64], key[40];
	struct shd_notification n = {
		.type = "VM_STATUS_CHANGE",
		.title = title,
		.body = body,
		.data = data,
		.coalesce_key = key,
		.coalesce_s = cw->w->cfg.status_window_s,
	};

	if (PQgetisnull(res, i, 5) || !status_is_news(from, to))
		return 0;
	if (!data)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	(void)snprintf(title, sizeof(title), "VM %s/%s is %s", ns, name, to);
	(void)snprintf(body, sizeof(body), "It was %s.", from);
	(void)snprintf(key, sizeof(key), "vm:%s", vm_id);
	return shd_notify_sender()->to_user(conn, strtoll(shd_db_value(res, i, 5), NULL, 10), &n,
					    err);
}

static int apply_tx(PGconn *conn, const struct cwatch *cw, const char *records, int *ret_changed,
		    struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24];

	(void)snprintf(id, sizeof(id), "%lld", (long long)cw->id);
	if (shd_db_begin(conn, err) < 0)
		return -err->code;
	res = shd_db_exec(conn, sql_apply, 2, (const char *[]){id, records}, err);
	if (!res)
		goto fail;
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(shd_db_value(res, i, 3), shd_db_value(res, i, 4)) != 0 &&
		    (status_event(conn, cw, res, i, err) < 0 ||
		     status_notify(conn, cw, res, i, err) < 0))
			goto fail;
	if (shd_db_commit(conn, err) < 0)
		goto fail;
	*ret_changed = PQntuples(res);
	return 0;
fail:
	shd_db_rollback(conn);
	return -err->code;
}

/* Write the rows of n VMs in one transaction. */
static int apply_rows(struct cwatch *cw, const struct shd_vm *vms, size_t n, struct shp_error *err)
{
	json_auto_t *arr = json_array();
	_cleanup_free_ char *text = NULL;
	PGconn *conn;
	int changed = 0, r;

	if (n == 0)
		return 0;
	if (!arr)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(arr, vm_record(&vms[i])) < 0)
			return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	text = json_dumps(arr, JSON_COMPACT);
	if (!text)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	conn = shd_dbpool_get(cw->w->cfg.pool, err);
	if (!conn)
		return -err->code;
	r = apply_tx(conn, cw, text, &changed, err);
	shd_dbpool_put(cw->w->cfg.pool, conn);
	if (r == 0 && changed > 0)
		log_debug("cluster '%s': %d vm row(s) updated", cw->name, changed);
	return r;
}

/* ---- list ----------------------------------------------------------------------------------- */

/*
 * What to write after a list: every item (the statement skips rows that are current, and a row
 * created since the VM was cached gets its state this way), and the vanished ones as deleted.
 */
static int list_changes(struct cwatch *cw, const struct shd_vm_list *l, struct shd_vm **ret,
			size_t *ret_n, size_t *ret_vanished)
{
	struct shd_vm *out = calloc(l->n + cw->n + 1, sizeof(*out));
	size_t k = 0, vanished = 0;

	if (!out)
		return -SHP_E_NOMEM;
	for (size_t i = 0; i < l->n; i++)
		out[k++] = l->items[i];
	for (size_t j = 0; j < cw->n; j++) {
		struct shd_vm probe;

		(void)snprintf(probe.namespace_, sizeof(probe.namespace_), "%s",
			       cw->items[j].namespace_);
		(void)snprintf(probe.name, sizeof(probe.name), "%s", cw->items[j].name);
		if (!bsearch(&probe, l->items, l->n, sizeof(*l->items), vm_cmp)) {
			out[k++] = deleted_vm(&cw->items[j]);
			vanished++;
		}
	}
	*ret = out;
	*ret_n = k;
	*ret_vanished = vanished;
	return 0;
}

/*
 * LIST, then write what changed and replace the cache. *ret_cluster_failed tells a failure of
 * the cluster (counted by the breaker) from one of the database.
 */
static int relist(struct cwatch *cw, struct shd_provider *p, bool *ret_cluster_failed,
		  struct shp_error *err)
{
	struct shd_vm_list l = {0};
	_cleanup_free_ struct shd_vm *changes = NULL;
	size_t nchanges = 0, vanished = 0;
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)cw->w->cfg.list_timeout_ms * 1000000ull;
	int r;

	set_state(cw, CW_LISTING, NULL);
	*ret_cluster_failed = true;
	r = p->infra.ops->list_vms(p->infra.impl, NULL, SHD_WATCHER_SELECTOR, &l, deadline, err);
	if (r < 0)
		return r;
	*ret_cluster_failed = false;
	qsort(l.items, l.n, sizeof(*l.items), vm_cmp);
	pthread_mutex_lock(&cw->mu);
	r = list_changes(cw, &l, &changes, &nchanges, &vanished);
	pthread_mutex_unlock(&cw->mu);
	if (r < 0) {
		shd_vm_list_release(&l);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	r = apply_rows(cw, changes, nchanges, err);
	if (r < 0) {
		/* the rows are behind: keep the cache they match (stale) and list again */
		shd_vm_list_release(&l);
		pthread_mutex_lock(&cw->mu);
		cw->rv[0] = '\0';
		cw->stale = true;
		pthread_mutex_unlock(&cw->mu);
		return r;
	}
	pthread_mutex_lock(&cw->mu);
	free(cw->items);
	cw->items = TAKE_PTR(l.items);
	cw->n = cw->cap = l.n;
	(void)snprintf(cw->rv, sizeof(cw->rv), "%s", l.resource_version);
	cw->listed = true;
	cw->listed_at_ns = shp_now_monotonic_ns();
	cw->stale = false;
	cw->observed_at_us = shp_now_realtime_us();
	pthread_mutex_unlock(&cw->mu);
	atomic_fetch_add(&cw->relists, 1);
	atomic_fetch_add(&cw->events, vanished);
	log_info("cluster '%s': listed %zu vm(s) at resourceVersion %s, %zu vanished", cw->name,
		 l.n, l.resource_version, vanished);
	return 0;
}

/* ---- watch ---------------------------------------------------------------------------------- */

/*
 * A VM event carries no VMI fields (node, IP): the watcher keeps those of the VMI it knows, and
 * for a VM that has just come to run on a VMI it does not know, it ends the watch, reads the VM
 * (with its VMI) and watches again from the same resourceVersion.
 */
#define VMI_FILL_MAX 16

struct vmi_fill {
	char ns[64];
	char name[SHD_VM_NAME_MAX + 1];
};

struct watch_ctx {
	struct cwatch *cw;
	bool got_event;
	bool db_failed;
	struct shp_error err;
	struct vmi_fill fill[VMI_FILL_MAX];
	size_t nfill;
};

/* The statuses in which a VM runs on a VMI, so has a node. */
static bool on_vmi(enum shd_vm_status st)
{
	return st == SHD_VM_RUNNING || st == SHD_VM_PAUSED || st == SHD_VM_MIGRATING ||
	       st == SHD_VM_STOPPING;
}

/*
 * The VMI fields of an event's VM (mu held): those of the cached VM while the same VMI runs (a
 * migration's end moves it, so it does not count); true when they must be read instead.
 */
static bool vmi_fields(const struct cwatch *cw, struct shd_vm *vm)
{
	long i;
	const struct shd_vm *c;

	if (vm->node[0] || !on_vmi(vm->status))
		return false;
	i = cache_find(cw, vm->namespace_, vm->name, NULL);
	c = i >= 0 ? &cw->items[i] : NULL;
	if (c && c->node[0] && on_vmi(c->status) && strcmp(c->uid, vm->uid) == 0 &&
	    !(c->status == SHD_VM_MIGRATING && vm->status != SHD_VM_MIGRATING)) {
		memcpy(vm->node, c->node, sizeof(vm->node));
		memcpy(vm->ip, c->ip, sizeof(vm->ip));
		return false;
	}
	return vm->status == SHD_VM_RUNNING || vm->status == SHD_VM_PAUSED;
}

/* What the row of an event's VM becomes (mu held); false when the cache has it already. */
static bool event_row(struct cwatch *cw, enum shd_watch_type type, const struct shd_vm *vm,
		      struct shd_vm *ret_row)
{
	long i = cache_find(cw, vm->namespace_, vm->name, NULL);

	if (type == SHD_WATCH_DELETED) {
		*ret_row = deleted_vm(i >= 0 ? &cw->items[i] : vm);
		(void)snprintf(ret_row->resource_version, sizeof(ret_row->resource_version), "%s",
			       vm->resource_version);
		return true;
	}
	if (i >= 0 && memcmp(&cw->items[i], vm, sizeof(*vm)) == 0)
		return false;
	*ret_row = *vm;
	return true;
}

/* Apply an event whose row was written to the cache (mu held). */
static void event_to_cache(struct cwatch *cw, enum shd_watch_type type, const struct shd_vm *vm)
{
	if (type == SHD_WATCH_DELETED)
		cache_remove(cw, vm->namespace_, vm->name);
	else if (!cache_put(cw, vm))
		log_error("cluster '%s': out of memory caching vm '%s'", cw->name, vm->name);
}

/*
 * One event: the row first, then the cache and the resume point. A row that cannot be written
 * leaves the cache as it was and stops the watch: the next list writes it (a VM deleted
 * meanwhile is still in the cache, so the list sees it vanish).
 */
static int on_event(void *ud, enum shd_watch_type type, const struct shd_vm *event_vm,
		    const char *rv)
{
	struct watch_ctx *ctx = ud;
	struct cwatch *cw = ctx->cw;
	struct shd_vm row, merged;
	const struct shd_vm *vm = NULL;
	bool write = false, failed = false, fill = false;

	if (!ctx->got_event) {
		ctx->got_event = true;
		shd_breaker_success(&cw->breaker);
	}
	if (type != SHD_WATCH_BOOKMARK && event_vm) {
		merged = *event_vm;
		vm = &merged;
		pthread_mutex_lock(&cw->mu);
		if (type != SHD_WATCH_DELETED)
			fill = vmi_fields(cw, &merged);
		write = event_row(cw, type, vm, &row);
		pthread_mutex_unlock(&cw->mu);
	}
	if (write) {
		atomic_fetch_add(&cw->events, 1);
		failed = apply_rows(cw, &row, 1, &ctx->err) < 0;
	}
	pthread_mutex_lock(&cw->mu);
	if (failed) {
		ctx->db_failed = true;
		cw->rv[0] = '\0';
		cw->stale = true;
	} else {
		if (write) {
			event_to_cache(cw, type, vm);
			cw->observed_at_us = shp_now_realtime_us();
		}
		if (rv && rv[0])
			(void)snprintf(cw->rv, sizeof(cw->rv), "%s", rv);
		cw->stale = false;
	}
	pthread_mutex_unlock(&cw->mu);
	if (failed)
		return -1;
	if (fill && ctx->nfill < VMI_FILL_MAX) {
		struct vmi_fill *f = &ctx->fill[ctx->nfill++];

		memcpy(f->ns, vm->namespace_, sizeof(f->ns));
		memcpy(f->name, vm->name, sizeof(f->name));
		return -1; /* read it now: the watch resumes from this event */
	}
	return 0;
}

/*
 * Read the VMs whose VMI fields are wanted and keep them in the row and the cache, if the VM
 * is still what the cache has (same uid and status): the cache stays at its resourceVersion.
 * A failure only leaves the fields empty until the next list.
 */
static void fill_vmis(struct cwatch *cw, struct shd_provider *p, const struct watch_ctx *ctx)
{
	uint64_t deadline =
		shp_now_monotonic_ns() + (uint64_t)cw->w->cfg.list_timeout_ms * 1000000ull;

	for (size_t k = 0; k < ctx->nfill; k++) {
		const struct vmi_fill *f = &ctx->fill[k];
		struct shp_error err = SHP_ERROR_INIT;
		struct shd_vm got, row;
		bool write = false;
		long i;

		if (p->infra.ops->get_vm(p->infra.impl, f->ns, f->name, &got, deadline, &err) < 0) {
			log_debug("cluster '%s': reading VM %s/%s for its node: %s", cw->name,
				  f->ns, f->name, err.msg);
			continue;
		}
		pthread_mutex_lock(&cw->mu);
		i = cache_find(cw, f->ns, f->name, NULL);
		if (i >= 0 && got.node[0] && strcmp(cw->items[i].uid, got.uid) == 0 &&
		    cw->items[i].status == got.status) {
			row = cw->items[i];
			memcpy(row.node, got.node, sizeof(row.node));
			memcpy(row.ip, got.ip, sizeof(row.ip));
			write = true;
		}
		pthread_mutex_unlock(&cw->mu);
		if (!write || apply_rows(cw, &row, 1, &err) < 0) {
			if (write)
				log_warn("cluster '%s': recording the node of VM %s/%s: %s",
					 cw->name, f->ns, f->name, err.msg);
			continue;
		}
		pthread_mutex_lock(&cw->mu);
		i = cache_find(cw, f->ns, f->name, NULL);
		if (i >= 0 && strcmp(cw->items[i].uid, row.uid) == 0)
			cw->items[i] = row;
		pthread_mutex_unlock(&cw->mu);
	}
}

/* ---- the per-cluster loop ---------------------------------------------------------------- */

static void cw_sleep(struct cwatch *cw, int64_t ms)
{
	pthread_mutex_lock(&cw->mu);
	wait_ms(&cw->cond, &cw->mu, &cw->stop, ms);
	pthread_mutex_unlock(&cw->mu);
}

/* A failure: note it, count it (by the breaker unless it was not the cluster's), back off. */
static void failed(struct cwatch *cw, const struct shp_error *err, bool cluster, int *attempt,
		   uint64_t *rng)
{
	int64_t ms = shd_backoff_ms(*attempt, cw->w->cfg.backoff_base_ms, cw->w->cfg.backoff_max_ms,
				    rng);

	atomic_fetch_add(&cw->failures, 1);
	if (cluster)
		shd_breaker_failure(&cw->breaker, shp_now_monotonic_ns());
	pthread_mutex_lock(&cw->mu);
	cw->stale = true;
	cw->state = CW_BACKOFF;
	(void)snprintf(cw->last_error, sizeof(cw->last_error), "%s", err->msg);
	pthread_mutex_unlock(&cw->mu);
	/* the first failure of a row is a warning; the retries after it are noise */
	if (*attempt == 0)
		log_warn("watching the VMs failed: %s (retrying in %lld ms)", err->msg,
			 (long long)ms);
	else
		log_debug("watching the VMs failed again: %s (retrying in %lld ms)", err->msg,
			  (long long)ms);
	if (*attempt < 30)
		(*attempt)++;
	cw_sleep(cw, ms);
}

/* One WATCH from cw->rv until it ends. */
static void watch_once(struct cwatch *cw, struct shd_provider *p, int *attempt, uint64_t *rng)
{
	struct watch_ctx ctx = {.cw = cw, .err = SHP_ERROR_INIT};
	uint64_t start = shp_now_monotonic_ns();
	uint64_t deadline = start + (uint64_t)cw->w->cfg.watch_timeout_ms * 1000000ull;
	char rv[32];
	int r;

	pthread_mutex_lock(&cw->mu);
	(void)snprintf(rv, sizeof(rv), "%s", cw->rv);
	cw->state = CW_WATCHING;
	pthread_mutex_unlock(&cw->mu);
	r = p->infra.ops->watch_vms(p->infra.impl, SHD_WATCHER_SELECTOR, rv, on_event, &ctx,
				    &cw->stop, deadline, &ctx.err);
	if (atomic_load(&cw->stop))
		return;
	if (ctx.db_failed) {
		failed(cw, &ctx.err, false, attempt, rng);
		return;
	}
	if (ctx.nfill > 0)
		fill_vmis(cw, p, &ctx);
	if (r == SHD_WATCH_EXPIRED) {
		/* 410: forget the RV, keep the cache as the last good list (stale) and re-list */
		atomic_fetch_add(&cw->expired, 1);
		pthread_mutex_lock(&cw->mu);
		cw->rv[0] = '\0';
		cw->stale = true;
		pthread_mutex_unlock(&cw->mu);
		log_info("cluster '%s': resourceVersion %s expired; listing again", cw->name, rv);
		return;
	}
	atomic_fetch_add(&cw->restarts, 1);
	if (r == 0 || ctx.err.code == SHP_E_TIMEOUT) {
		if (!ctx.got_event)
			shd_breaker_success(&cw->breaker);
		*attempt = 0;
		/* a stream that ends at once again and again must not spin */
		if (shp_now_monotonic_ns() - start < 200000000ull && !ctx.got_event)
			cw_sleep(cw, 200);
		return;
	}
	failed(cw, &ctx.err, true, attempt, rng);
}

/* One step: breaker, provider, then a list (first, after a 410, as the probe) or a watch. */
static void cw_step(struct cwatch *cw, int *attempt, uint64_t *rng)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(shd_provider_unrefp) struct shd_provider *p = NULL;
	enum shd_breaker_state bs;
	bool need_list, cluster_failed;

	if (!shd_breaker_allow(&cw->breaker, shp_now_monotonic_ns())) {
		bool opened;

		pthread_mutex_lock(&cw->mu);
		opened = cw->state != CW_BREAKER_OPEN;
		cw->state = CW_BREAKER_OPEN;
		cw->stale = true;
		pthread_mutex_unlock(&cw->mu);
		if (opened)
			log_warn("circuit breaker open: no calls to the cluster for now");
		cw_sleep(cw, 250);
		return;
	}
	/* a provider that cannot be built (credentials that do not open) fails like the cluster */
	p = cw->w->cfg.provider(cw->w->cfg.provider_ud, cw->id, &err);
	if (!p) {
		failed(cw, &err, true, attempt, rng);
		return;
	}
	bs = shd_breaker_get_state(&cw->breaker, shp_now_monotonic_ns());
	pthread_mutex_lock(&cw->mu);
	/* a periodic list also catches rows created since their VM was cached */
	need_list = cw->rv[0] == '\0' || bs != SHD_BREAKER_CLOSED ||
		    shp_now_monotonic_ns() - cw->listed_at_ns >
			    (uint64_t)cw->w->cfg.resync_interval_ms * 1000000ull;
	pthread_mutex_unlock(&cw->mu);
	if (!need_list) {
		watch_once(cw, p, attempt, rng);
		return;
	}
	if (relist(cw, p, &cluster_failed, &err) < 0) {
		if (!atomic_load(&cw->stop))
			failed(cw, &err, cluster_failed, attempt, rng);
		return;
	}
	shd_breaker_success(&cw->breaker);
	*attempt = 0;
}

static void *cw_main(void *arg)
{
	struct cwatch *cw = arg;
	uint64_t rng = shp_now_monotonic_ns() ^ ((uint64_t)cw->id * 0x9e3779b97f4a7c15ull);
	int attempt = 0;

	shp_log_ctx_set("cluster", cw->name);
	log_info("cluster '%s': watching its VMs", cw->name);
	while (!atomic_load(&cw->stop))
		cw_step(cw, &attempt, &rng);
	set_state(cw, CW_STOPPED, NULL);
	shp_log_ctx_clear();
	return NULL;
}

static struct cwatch *cw_free(struct cwatch *cw)
{
	if (!cw)
		return NULL;
	shd_breaker_release(&cw->breaker);
	pthread_cond_destroy(&cw->cond);
	pthread_mutex_destroy(&cw->mu);
	free(cw->items);
	free(cw);
	return NULL;
}

static struct cwatch *cw_new(struct shd_watcher *w, int64_t id, const char *name)
{
	struct cwatch *cw = calloc(1, sizeof(*cw));

	if (!cw)
		return NULL;
	cw->id = id;
	cw->w = w;
	(void)snprintf(cw->name, sizeof(cw->name), "%s", name);
	pthread_mutex_init(&cw->mu, NULL);
	cond_init_monotonic(&cw->cond);
	shd_breaker_init(&cw->breaker, w->cfg.breaker_threshold, w->cfg.breaker_open_ms,
			 w->cfg.breaker_max_open_ms);
	cw->stale = true;
	if (pthread_create(&cw->thread, NULL, cw_main, cw) != 0) {
		log_error("cluster '%s': starting its watch thread failed", name);
		return cw_free(cw);
	}
	cw->started = true;
	return cw;
}

/* The realtime instant timeout_ms from now (pthread_timedjoin_np's clock). */
static struct timespec realtime_after(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Join by the deadline; a thread that does not end in time is left running, detached. */
static void cw_join(struct cwatch *cw, const struct timespec *deadline)
{
	if (!cw->started) {
		cw_free(cw);
		return;
	}
	if (pthread_timedjoin_np(cw->thread, NULL, deadline) != 0) {
		log_error("cluster '%s': its watch did not stop in time; leaving it behind",
			  cw->name);
		pthread_detach(cw->thread);
		return; /* the thread still uses cw: it is never freed */
	}
	cw_free(cw);
}

/* ---- the manager -------------------------------------------------------------------------- */

static struct cwatch *find_locked(struct shd_watcher *w, int64_t id)
{
	for (struct cwatch *cw = w->list; cw; cw = cw->next)
		if (cw->id == id)
			return cw;
	return NULL;
}

/* Detach every watch not marked seen (or all) from the list; the caller stops them. */
static struct cwatch *take_unseen(struct shd_watcher *w, bool all)
{
	struct cwatch *gone = NULL, **pp;

	pthread_mutex_lock(&w->mu);
	pp = &w->list;
	while (*pp) {
		struct cwatch *cw = *pp;

		if (all || !cw->seen) {
			*pp = cw->next;
			cw->next = gone;
			gone = cw;
		} else {
			pp = &cw->next;
		}
	}
	pthread_mutex_unlock(&w->mu);
	return gone;
}

static void stop_all(struct cwatch *gone, int timeout_ms)
{
	struct timespec deadline;

	/* tell them all first so they wind down together, then join one by one */
	for (struct cwatch *cw = gone; cw; cw = cw->next) {
		atomic_store(&cw->stop, true);
		pthread_mutex_lock(&cw->mu);
		pthread_cond_broadcast(&cw->cond);
		pthread_mutex_unlock(&cw->mu);
	}
	deadline = realtime_after(timeout_ms);
	while (gone) {
		struct cwatch *next = gone->next;

		log_info("cluster '%s': no longer watched", gone->name);
		cw_join(gone, &deadline);
		gone = next;
	}
}

/* Mark the watches of the clusters in res seen and start the missing ones. */
static void sync_clusters(struct shd_watcher *w, const PGresult *res)
{
	pthread_mutex_lock(&w->mu);
	for (struct cwatch *cw = w->list; cw; cw = cw->next)
		cw->seen = false;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t id = strtoll(shd_db_value(res, i, 0), NULL, 10);
		struct cwatch *cw = find_locked(w, id);

		if (!cw) {
			cw = cw_new(w, id, shd_db_value(res, i, 1));
			if (!cw)
				continue;
			cw->next = w->list;
			w->list = cw;
		}
		cw->seen = true;
	}
	pthread_mutex_unlock(&w->mu);
}

static void scan(struct shd_watcher *w)
{
	struct shp_error err = SHP_ERROR_INIT;
	_cleanup_(PQclearp) PGresult *res = NULL;
	PGconn *conn;

	conn = shd_dbpool_get(w->cfg.pool, &err);
	if (!conn) {
		log_warn("watcher: reading the clusters failed, ignoring: %s", err.msg);
		return;
	}
	res = shd_db_exec(conn, "SELECT id, name FROM clusters ORDER BY id", 0, NULL, &err);
	shd_dbpool_put(w->cfg.pool, conn);
	if (!res) {
		log_warn("watcher: reading the clusters failed, ignoring: %s", err.msg);
		return;
	}
	sync_clusters(w, res);
	stop_all(take_unseen(w, false), w->cfg.join_timeout_ms);
}

static void *manager_main(void *arg)
{
	struct shd_watcher *w = arg;

	shp_log_ctx_set("thread", "watcher");
	while (!atomic_load(&w->stop)) {
		bool leader = !w->cfg.queue || shd_queue_is_leader(w->cfg.queue);

		if (leader != atomic_load(&w->active))
			log_info("watcher: %s", leader ? "leading: watching the clusters"
						       : "not leading: the leader watches");
		atomic_store(&w->active, leader);
		if (leader)
			scan(w);
		else
			stop_all(take_unseen(w, true), w->cfg.join_timeout_ms);
		pthread_mutex_lock(&w->mu);
		/* a new leader is checked for sooner than the full scan interval */
		if (!w->kick)
			wait_ms(&w->cond, &w->mu, &w->stop,
				leader ? w->cfg.scan_interval_ms
				       : (w->cfg.scan_interval_ms < 1000 ? w->cfg.scan_interval_ms
									 : 1000));
		w->kick = false;
		pthread_mutex_unlock(&w->mu);
	}
	stop_all(take_unseen(w, true), w->cfg.join_timeout_ms);
	atomic_store(&w->active, false);
	shp_log_ctx_clear();
	return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

static int or_default(int v, int def)
{
	return v > 0 ? v : def;
}

struct shd_watcher *shd_watcher_new(const struct shd_watcher_config *cfg, struct shp_error *err)
{
	struct shd_watcher *w;

	if (!cfg->pool || !cfg->provider) {
		shp_error_set(err, SHP_E_INVAL, "a watcher needs a pool and a provider function");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
		return NULL;
	}
	w->cfg = *cfg;
	w->cfg.scan_interval_ms = or_default(cfg->scan_interval_ms, 5000);
	w->cfg.backoff_base_ms = or_default(cfg->backoff_base_ms, 500);
	w->cfg.backoff_max_ms = or_default(cfg->backoff_max_ms, 30000);
	w->cfg.breaker_threshold = or_default(cfg->breaker_threshold, 5);
	w->cfg.breaker_open_ms = or_default(cfg->breaker_open_ms, 5000);
	w->cfg.breaker_max_open_ms = or_default(cfg->breaker_max_open_ms, 120000);
	w->cfg.list_timeout_ms = or_default(cfg->list_timeout_ms, 15000);
	w->cfg.watch_timeout_ms = or_default(cfg->watch_timeout_ms, 300000);
	w->cfg.join_timeout_ms = or_default(cfg->join_timeout_ms, 20000);
	w->cfg.resync_interval_ms = or_default(cfg->resync_interval_ms, 600000);
	w->cfg.status_window_s = or_default(cfg->status_window_s, 600);
	pthread_mutex_init(&w->mu, NULL);
	cond_init_monotonic(&w->cond);
	return w;
}

int shd_watcher_start(struct shd_watcher *w, struct shp_error *err)
{
	if (pthread_create(&w->thread, NULL, manager_main, w) != 0)
		return shp_error_set(err, SHP_E_INTERNAL, "starting the watcher thread failed");
	w->started = true;
	return 0;
}

struct shd_watcher *shd_watcher_free(struct shd_watcher *w)
{
	if (!w)
		return NULL;
	if (w->started) {
		atomic_store(&w->stop, true);
		pthread_mutex_lock(&w->mu);
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	stop_all(take_unseen(w, true), w->cfg.join_timeout_ms);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return NULL;
}

void shd_watcher_kick(struct shd_watcher *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->kick = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

bool shd_watcher_is_active(struct shd_watcher *w)
{
	return w && atomic_load(&w->active);
}

int shd_watcher_snapshot(struct shd_watcher *w, int64_t cluster_id, struct shd_vm_list *ret,
			 bool *ret_stale, uint64_t *ret_observed_at_us, struct shp_error *err)
{
	struct shd_vm *copy = NULL;
	struct cwatch *cw;
	int r = 0;

	pthread_mutex_lock(&w->mu);
	cw = find_locked(w, cluster_id);
	if (!cw) {
		pthread_mutex_unlock(&w->mu);
		return shp_error_set(err, SHP_E_NOTFOUND,
				     "cluster %lld is not watched by this daemon",
				     (long long)cluster_id);
	}
	pthread_mutex_lock(&cw->mu);
	if (!cw->listed) {
		r = shp_error_set(err, SHP_E_UNAVAIL,
				  "the VMs of cluster '%s' were never listed%s%s", cw->name,
				  cw->last_error[0] ? ": " : "", cw->last_error);
	} else {
		copy = malloc((cw->n ? cw->n : 1) * sizeof(*copy));
		if (!copy)
			r = shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (r == 0) {
		memcpy(copy, cw->items, cw->n * sizeof(*copy));
		ret->items = copy;
		ret->n = cw->n;
		(void)snprintf(ret->resource_version, sizeof(ret->resource_version), "%s", cw->rv);
		*ret_stale = cw->stale;
		if (ret_observed_at_us)
			*ret_observed_at_us = cw->observed_at_us;
	}
	pthread_mutex_unlock(&cw->mu);
	pthread_mutex_unlock(&w->mu);
	return r;
}

static json_t *cw_status(struct cwatch *cw)
{
	enum shd_breaker_state bs = shd_breaker_get_state(&cw->breaker, shp_now_monotonic_ns());
	json_t *j;

	pthread_mutex_lock(&cw->mu);
	j = json_pack("{ss sI ss sb sb ss ss sI sI sI sI sI ss}", "cluster", cw->name, "cluster_id",
		      (json_int_t)cw->id, "state", cw_state_names[cw->state], "stale", cw->stale,
		      "listed", cw->listed, "resource_version", cw->rv, "breaker",
		      shd_breaker_state_to_string(bs), "relists",
		      (json_int_t)atomic_load(&cw->relists), "expired",
		      (json_int_t)atomic_load(&cw->expired), "restarts",
		      (json_int_t)atomic_load(&cw->restarts), "events",
		      (json_int_t)atomic_load(&cw->events), "failures",
		      (json_int_t)atomic_load(&cw->failures), "last_error", cw->last_error);
	pthread_mutex_unlock(&cw->mu);
	return j;
}

json_t *shd_watcher_status(struct shd_watcher *w, int64_t cluster_id, struct shp_error *err)
{
	struct cwatch *cw;
	json_t *j = NULL;

	pthread_mutex_lock(&w->mu);
	cw = find_locked(w, cluster_id);
	if (cw)
		j = cw_status(cw);
	pthread_mutex_unlock(&w->mu);
	if (!cw)
		shp_error_set(err, SHP_E_NOTFOUND, "cluster %lld is not watched by this daemon",
			      (long long)cluster_id);
	else if (!j)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return j;
}

/* The metric families, each rendered over every watched cluster. */
static const struct {
	const char *name, *type, *help;
} families[] = {
	{"shepherd_watch_relists_total", "counter", "Full lists of a cluster's VMs."},
	{"shepherd_watch_expired_total", "counter",
	 "Watches that ended with 410 Expired (a re-list followed)."},
	{"shepherd_watch_restarts_total", "counter", "Watches that ended and were started again."},
	{"shepherd_watch_events_total", "counter",
	 "Changes applied to the cache and the rows (synthetic deletes included)."},
	{"shepherd_watch_failures_total", "counter", "Failed lists and watches."},
	{"shepherd_watch_breaker_state", "gauge",
	 "The cluster's circuit breaker: 0 closed, 1 open, 2 half-open."},
	{"shepherd_watch_stale", "gauge", "1 while the cached list is not known to be current."},
};

static uint64_t family_value(struct cwatch *cw, size_t f)
{
	switch (f) {
	case 0: return atomic_load(&cw->relists);
	case 1: return atomic_load(&cw->expired);
	case 2: return atomic_load(&cw->restarts);
	case 3: return atomic_load(&cw->events);
	case 4: return atomic_load(&cw->failures);
	case 5: return (uint64_t)shd_breaker_get_state(&cw->breaker, shp_now_monotonic_ns());
	default: {
		bool stale;
		pthread_mutex_lock(&cw->mu);
		stale = cw->stale;
		pthread_mutex_unlock(&cw->mu);
		return stale;
	}
	}
}

int shd_watcher_metrics_render(struct shd_watcher *w, struct shp_buf *out)
{
	int r;

	r = shp_buf_addf(out,
			 "# HELP shepherd_watch_active Whether this daemon watches the clusters "
			 "(it leads the queue).\n# TYPE shepherd_watch_active gauge\n"
			 "shepherd_watch_active %d\n",
			 w && atomic_load(&w->active) ? 1 : 0);
	if (!w)
		return r; /* not started (yet): nothing is watched */
	pthread_mutex_lock(&w->mu);
	for (size_t f = 0; r == 0 && f < SHP_ARRAY_SIZE(families); f++) {
		r = shp_buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
				 families[f].help, families[f].name, families[f].type);
		for (struct cwatch *cw = w->list; r == 0 && cw; cw = cw->next)
			r = shp_buf_addf(out, "%s{cluster=\"%s\"} %llu\n", families[f].name,
					 cw->name, (unsigned long long)family_value(cw, f));
	}
	pthread_mutex_unlock(&w->mu);
	return r;
}
