/*
 * The reconciler's pure core: the diff of a cluster's vms rows against its VMs labelled as
 * managed (ghosts and orphans), the circuit breaker's rule, the mode names and the labels-only
 * manifest adoption applies. No I/O: the runs that use it live in api-reconcile.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "provider.h"
#include "reconcile.h"
#include "util.h"

static const char *const mode_names[] = {
	[SHD_RECONCILE_DRY_RUN] = "dry-run",
	[SHD_RECONCILE_MARK] = "mark",
};

const char *shd_reconcile_mode_to_string(enum shd_reconcile_mode m)
{
	return shp_enum_to_string(mode_names, SHP_ARRAY_SIZE(mode_names), (int)m);
}

int shd_reconcile_mode_from_string(const char *s)
{
	return shp_enum_from_string(mode_names, SHP_ARRAY_SIZE(mode_names), s);
}

/* ---- the pure diff ---------------------------------------------------------------------- */

static int cmp_item(const void *a, const void *b)
{
	const struct shd_rec_item *x = a, *y = b;
	int c = strcmp(x->namespace_, y->namespace_);

	return c ? c : strcmp(x->name, y->name);
}

static void item_from_vm(struct shd_rec_item *it, const struct shd_vm *vm)
{
	it->id = 0;
	(void)snprintf(it->namespace_, sizeof(it->namespace_), "%s", vm->namespace_);
	(void)snprintf(it->name, sizeof(it->name), "%s", vm->name);
	(void)snprintf(it->uid, sizeof(it->uid), "%s", vm->uid);
}

/* Sorted copy without duplicate keys (the first of equal keys is kept). */
static struct shd_rec_item *sorted_unique(struct shd_rec_item *items, size_t n, size_t *ret_n)
{
	size_t out = 0;

	qsort(items, n, sizeof(*items), cmp_item);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || cmp_item(&items[out - 1], &items[i]) != 0)
			items[out++] = items[i];
	*ret_n = out;
	return items;
}

static bool uid_differs(const struct shd_rec_item *row, const struct shd_rec_item *vm)
{
	return row->uid[0] && vm->uid[0] && strcmp(row->uid, vm->uid) != 0;
}

/* Merge the two sorted lists into d (whose arrays have room for every item). */
static void merge(const struct shd_rec_item *a, size_t na, const struct shd_rec_item *b, size_t nb,
		  struct shd_rec_diff *d)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : cmp_item(&a[i], &b[j]);

		if (c < 0) {
			if (!a[i].recent)
				d->ghosts[d->n_ghosts++] = a[i];
			i++;
		} else if (c > 0) {
			d->orphans[d->n_orphans++] = b[j++];
		} else if (uid_differs(&a[i], &b[j])) {
			if (!a[i].recent)
				d->ghosts[d->n_ghosts++] = a[i];
			i++;
			d->orphans[d->n_orphans++] = b[j++];
		} else {
			d->present[d->n_present++] = a[i++].id;
			j++;
		}
	}
}

int shd_reconcile_diff(const struct shd_rec_item *db, size_t n_db, const struct shd_vm *cluster,
		       size_t n_cluster, struct shd_rec_diff *ret, struct shp_error *err)
{
	_cleanup_free_ struct shd_rec_item *a = calloc(n_db + 1, sizeof(*a));
	_cleanup_free_ struct shd_rec_item *b = calloc(n_cluster + 1, sizeof(*b));
	struct shd_rec_diff d = {0};
	size_t na = 0, nb = 0;

	d.ghosts = calloc(n_db + 1, sizeof(*d.ghosts));
	d.orphans = calloc(n_cluster + 1, sizeof(*d.orphans));
	d.present = calloc(n_db + 1, sizeof(*d.present));
	if (!a || !b || !d.ghosts || !d.orphans || !d.present) {
		shd_rec_diff_release(&d);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (n_db)
		memcpy(a, db, n_db * sizeof(*a));
	for (size_t i = 0; i < n_cluster; i++)
		item_from_vm(&b[i], &cluster[i]);
	sorted_unique(a, n_db, &na);
	sorted_unique(b, n_cluster, &nb);
	merge(a, na, b, nb, &d);
	*ret = d;
	return 0;
}

void shd_rec_diff_release(struct shd_rec_diff *d)
{
	free(d->ghosts);
	free(d->orphans);
	free(d->present);
	*d = (struct shd_rec_diff){0};
}

bool shd_reconcile_should_halt(size_t n_rows, size_t n_ghosts)
{
	if (n_rows < SHD_RECONCILE_HALT_MIN_ROWS)
		return false;
	return n_ghosts * 100 > n_rows * SHD_RECONCILE_HALT_PERCENT;
}

/* ---- adoption's label manifest --------------------------------------------------------- */

json_t *shd_adoption_label_manifest(const char *namespace_, const char *name, int64_t vm_id)
{
	char id[24];

	(void)snprintf(id, sizeof(id), "%lld", (long long)vm_id);
	return json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s}}}", "apiVersion", "kubevirt.io/v1",
			 "kind", "VirtualMachine", "metadata", "name", name, "namespace",
			 namespace_, "labels", SHD_LABEL_MANAGED_BY, "shepherd", SHD_LABEL_VM_ID,
			 id);
}
