/*
 * The reconciler's pure core: the diff of vms rows against a cluster's managed VMs (ghosts,
 * orphans, rows present) on a table of cases, the circuit breaker's rule at its edges, the
 * mode names and the labels-only manifest adopt applies.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "provider.h"
#include "reconcile.h"

/* "ns/name" or "ns/name#uid" for rows (id = position + 1) and VMs; a "!" marks a recent row. */
#define MAXN 8

struct diff_case {
	const char *title;
	const char *rows[MAXN];
	const char *vms[MAXN];
	const char *ghosts;  /* "ns/name,ns/name" in the expected order, "" for none */
	const char *orphans; /* likewise */
	size_t present;
};

static void parse_key(const char *s, char *ns, size_t nsz, char *name, size_t nmsz, char *uid,
		      size_t usz)
{
	const char *slash = strchr(s, '/'), *hash = strchr(s, '#');

	cr_assert(slash, "bad key %s", s);
	(void)snprintf(ns, nsz, "%.*s", (int)(slash - s), s);
	(void)snprintf(name, nmsz, "%.*s", (int)((hash ? hash : s + strlen(s)) - slash - 1),
		       slash + 1);
	(void)snprintf(uid, usz, "%s", hash ? hash + 1 : "");
}

static void join(const struct shd_rec_item *items, size_t n, char *out, size_t size)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(out);
		(void)snprintf(out + len, size - len, "%s%s/%s", i ? "," : "", items[i].namespace_,
			       items[i].name);
	}
}

static void run_case(const struct diff_case *c)
{
	struct shd_rec_item rows[MAXN] = {0};
	struct shd_vm vms[MAXN] = {0};
	struct shd_rec_diff d = {0};
	struct shp_error err = SHP_ERROR_INIT;
	size_t nr = 0, nv = 0;
	char got[1024];

	for (; nr < MAXN && c->rows[nr]; nr++) {
		char key[128];
		size_t len = strlen(c->rows[nr]);

		rows[nr].id = (int64_t)nr + 1;
		rows[nr].recent = len && c->rows[nr][len - 1] == '!';
		(void)snprintf(key, sizeof(key), "%.*s", (int)(len - rows[nr].recent), c->rows[nr]);
		parse_key(key, rows[nr].namespace_, sizeof(rows[nr].namespace_), rows[nr].name,
			  sizeof(rows[nr].name), rows[nr].uid, sizeof(rows[nr].uid));
	}
	for (; nv < MAXN && c->vms[nv]; nv++)
		parse_key(c->vms[nv], vms[nv].namespace_, sizeof(vms[nv].namespace_), vms[nv].name,
			  sizeof(vms[nv].name), vms[nv].uid, sizeof(vms[nv].uid));
	cr_assert_eq(shd_reconcile_diff(rows, nr, vms, nv, &d, &err), 0, "%s", err.msg);
	join(d.ghosts, d.n_ghosts, got, sizeof(got));
	cr_expect_str_eq(got, c->ghosts, "%s: ghosts", c->title);
	join(d.orphans, d.n_orphans, got, sizeof(got));
	cr_expect_str_eq(got, c->orphans, "%s: orphans", c->title);
	cr_expect_eq(d.n_present, c->present, "%s: present %zu", c->title, d.n_present);
	for (size_t i = 0; i < d.n_ghosts; i++)
		cr_expect_gt(d.ghosts[i].id, 0, "%s: a ghost carries its row id", c->title);
	shd_rec_diff_release(&d);
}

static const struct diff_case cases[] = {
	{"empty", {NULL}, {NULL}, "", "", 0},
	{"all match", {"a/x", "a/y", "b/x"}, {"b/x", "a/x", "a/y"}, "", "", 3},
	{"only ghosts", {"a/y", "a/x"}, {NULL}, "a/x,a/y", "", 0},
	{"only orphans", {NULL}, {"b/z", "a/z"}, "", "a/z,b/z", 0},
	{"mixed", {"a/x", "a/gone"}, {"a/x", "a/new"}, "a/gone", "a/new", 1},
	{"duplicate VMs count once", {"a/x"}, {"a/x", "a/x", "a/o", "a/o"}, "", "a/o", 1},
	{"duplicate rows count once", {"a/g", "a/g"}, {NULL}, "a/g", "", 0},
	{"names differing only in namespace", {"a/x"}, {"b/x"}, "a/x", "b/x", 0},
	{"same name in two namespaces", {"a/x", "b/x"}, {"b/x"}, "a/x", "", 1},
	{"namespace is compared before name", {"b/a", "a/b"}, {NULL}, "a/b,b/a", "", 0},
	{"same uid matches", {"a/x#u1"}, {"a/x#u1"}, "", "", 1},
	{"recreated under the same name", {"a/x#u1"}, {"a/x#u2"}, "a/x", "a/x", 0},
	{"a row without uid matches by name", {"a/x"}, {"a/x#u9"}, "", "", 1},
	{"a VM without uid matches by name", {"a/x#u1"}, {"a/x"}, "", "", 1},
	{"a recent row is no ghost", {"a/new!", "a/old"}, {NULL}, "a/old", "", 0},
	{"a recent row still matches", {"a/new!"}, {"a/new"}, "", "", 1},
};

Test(reconcile, diff_table)
{
	for (size_t i = 0; i < SHP_ARRAY_SIZE(cases); i++)
		run_case(&cases[i]);
}

Test(reconcile, diff_of_many_is_sorted)
{
	enum { N = 500 };
	static struct shd_rec_item rows[N];
	static struct shd_vm vms[N];
	struct shd_rec_diff d = {0};

	/* rows 0..N-1 in reverse; the cluster has the even ones and N odd extras */
	for (int i = 0; i < N; i++) {
		rows[i].id = i + 1;
		(void)snprintf(rows[i].namespace_, sizeof(rows[i].namespace_), "ns");
		(void)snprintf(rows[i].name, sizeof(rows[i].name), "vm-%04d", N - 1 - i);
		(void)snprintf(vms[i].namespace_, sizeof(vms[i].namespace_), "ns");
		(void)snprintf(vms[i].name, sizeof(vms[i].name), "vm-%04d", i % 2 ? 1000 + i : i);
	}
	cr_assert_eq(shd_reconcile_diff(rows, N, vms, N, &d, NULL), 0);
	cr_assert_eq(d.n_ghosts, N / 2);
	cr_assert_eq(d.n_orphans, N / 2);
	cr_assert_eq(d.n_present, N / 2);
	for (size_t i = 1; i < d.n_ghosts; i++)
		cr_assert_lt(strcmp(d.ghosts[i - 1].name, d.ghosts[i].name), 0);
	for (size_t i = 1; i < d.n_orphans; i++)
		cr_assert_lt(strcmp(d.orphans[i - 1].name, d.orphans[i].name), 0);
	shd_rec_diff_release(&d);
	cr_assert_null(d.ghosts);
}

Test(reconcile, breaker_rule)
{
	/* fewer than SHD_RECONCILE_HALT_MIN_ROWS rows never halt */
	cr_expect_not(shd_reconcile_should_halt(0, 0));
	cr_expect_not(shd_reconcile_should_halt(3, 3));
	/* exactly half is not more than half */
	cr_expect_not(shd_reconcile_should_halt(4, 2));
	cr_expect(shd_reconcile_should_halt(4, 3));
	cr_expect_not(shd_reconcile_should_halt(10, 5));
	cr_expect(shd_reconcile_should_halt(10, 6));
	cr_expect(shd_reconcile_should_halt(5, 3));
	cr_expect_not(shd_reconcile_should_halt(1000, 500));
	cr_expect(shd_reconcile_should_halt(1000, 501));
}

Test(reconcile, mode_names)
{
	cr_expect_str_eq(shd_reconcile_mode_to_string(SHD_RECONCILE_DRY_RUN), "dry-run");
	cr_expect_str_eq(shd_reconcile_mode_to_string(SHD_RECONCILE_MARK), "mark");
	cr_expect_eq(shd_reconcile_mode_from_string("mark"), SHD_RECONCILE_MARK);
	cr_expect_eq(shd_reconcile_mode_from_string("dry-run"), SHD_RECONCILE_DRY_RUN);
	cr_expect_eq(shd_reconcile_mode_from_string("delete"), -1);
	cr_expect_eq(shd_reconcile_mode_from_string("MARK"), -1);
}

Test(reconcile, label_manifest_holds_only_the_labels)
{
	json_t *m = shd_adoption_label_manifest("team-a", "web-1", 42);
	json_t *md = json_object_get(m, "metadata");
	json_t *labels = json_object_get(md, "labels");

	cr_assert(m);
	cr_expect_eq(json_object_size(m), 3, "apiVersion, kind, metadata only");
	cr_expect_str_eq(json_string_value(json_object_get(m, "apiVersion")), "kubevirt.io/v1");
	cr_expect_str_eq(json_string_value(json_object_get(m, "kind")), "VirtualMachine");
	cr_expect_eq(json_object_size(md), 3, "name, namespace, labels only");
	cr_expect_str_eq(json_string_value(json_object_get(md, "name")), "web-1");
	cr_expect_str_eq(json_string_value(json_object_get(md, "namespace")), "team-a");
	cr_expect_eq(json_object_size(labels), 2);
	cr_expect_str_eq(json_string_value(json_object_get(labels, SHD_LABEL_MANAGED_BY)),
			 "shepherd");
	cr_expect_str_eq(json_string_value(json_object_get(labels, SHD_LABEL_VM_ID)), "42");
	json_decref(m);
}
