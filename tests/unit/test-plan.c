/*
 * Plans: the hash is stable under reordered targets and keys, sensitive to step order and to
 * any value, and bad shapes are refused with the step named.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "plan.h"

static json_t *parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	cr_assert_not_null(j, "bad test JSON: %s", text);
	return j;
}

static void hash_of(const char *text, char out[65])
{
	json_auto_t *p = parse(text);
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_plan_hash(p, out, &err), 0, "%s", err.msg);
	cr_assert_eq(strlen(out), 64);
}

Test(plan, hash_stable_under_reordered_targets_and_keys)
{
	char a[65], b[65];

	hash_of("{\"steps\":[{\"action\":\"vm.restart\",\"targets\":[\"ns/a/vm-2\",\"ns/a/vm-1\","
		"{\"vm\":\"x\",\"ns\":\"b\"}],\"params\":{\"force\":true,\"grace\":30}}]}",
		a);
	hash_of("{\"steps\":[{\"params\":{\"grace\":30,\"force\":true},\"targets\":[{\"ns\":\"b\","
		"\"vm\":\"x\"},\"ns/a/vm-1\",\"ns/a/vm-2\"],\"action\":\"vm.restart\"}]}",
		b);
	cr_assert_str_eq(a, b);
}

Test(plan, hash_depends_on_step_order_and_values)
{
	char a[65], b[65], c[65];

	hash_of("{\"steps\":[{\"action\":\"a\",\"targets\":[]},{\"action\":\"b\",\"targets\":[]}]}",
		a);
	hash_of("{\"steps\":[{\"action\":\"b\",\"targets\":[]},{\"action\":\"a\",\"targets\":[]}]}",
		b);
	hash_of("{\"steps\":[{\"action\":\"a\",\"targets\":[]},{\"action\":\"b\",\"targets\":[],"
		"\"params\":{\"n\":1}}]}",
		c);
	cr_assert_str_neq(a, b, "step order is part of the plan");
	cr_assert_str_neq(a, c, "params are part of the plan");
}

Test(plan, missing_params_equal_empty_params)
{
	char a[65], b[65];

	hash_of("{\"steps\":[{\"action\":\"a\",\"targets\":[\"t\"]}]}", a);
	hash_of("{\"steps\":[{\"action\":\"a\",\"targets\":[\"t\"],\"params\":{}}]}", b);
	cr_assert_str_eq(a, b);
}

Test(plan, dedupe_key_binds_tenant_and_actor)
{
	json_auto_t *p = parse("{\"steps\":[{\"action\":\"a\",\"targets\":[\"t\"]}]}");
	char k1[65], k2[65], k3[65], k4[65], h[65];
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_plan_dedupe_key(p, "sys-a", "alice", k1, &err), 0);
	cr_assert_eq(shd_plan_dedupe_key(p, "sys-b", "alice", k2, &err), 0);
	cr_assert_eq(shd_plan_dedupe_key(p, "sys-a", "bob", k3, &err), 0);
	cr_assert_eq(shd_plan_dedupe_key(p, "sys-", "aalice", k4, &err), 0);
	cr_assert_eq(shd_plan_hash(p, h, &err), 0);
	cr_assert_str_neq(k1, k2, "another tenant, another key");
	cr_assert_str_neq(k1, k3, "another actor, another key");
	cr_assert_str_neq(k1, k4, "the boundary between tenant and actor counts");
	cr_assert_str_neq(k1, h);
	cr_assert_lt(shd_plan_dedupe_key(p, "", "alice", k1, NULL), 0);
}

Test(plan, bad_shapes_are_refused)
{
	static const char *const bad[] = {
		"[]",
		"{}",
		"{\"steps\":[]}",
		"{\"steps\":[1]}",
		"{\"steps\":[{\"targets\":[]}]}",
		"{\"steps\":[{\"action\":\"\",\"targets\":[]}]}",
		"{\"steps\":[{\"action\":\"a\"}]}",
		"{\"steps\":[{\"action\":\"a\",\"targets\":[1]}]}",
		"{\"steps\":[{\"action\":\"a\",\"targets\":[\"x\",\"x\"]}]}",
		"{\"steps\":[{\"action\":\"a\",\"targets\":[],\"params\":[]}]}",
		"{\"steps\":[{\"action\":\"a\",\"targets\":[],\"extra\":1}]}",
		"{\"steps\":[],\"other\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_auto_t *p = parse(bad[i]);
		struct shp_error err = SHP_ERROR_INIT;
		char h[65];
		cr_assert_lt(shd_plan_hash(p, h, &err), 0, "accepted: %s", bad[i]);
		cr_assert_eq(err.code, SHP_E_INVAL, "%s: %s", bad[i], err.msg);
	}
}

Test(plan, error_names_the_step)
{
	json_auto_t *p = parse("{\"steps\":[{\"action\":\"a\",\"targets\":[]},{\"action\":\"b\","
			       "\"targets\":[\"x\",\"x\"]}]}");
	struct shp_error err = SHP_ERROR_INIT;
	char h[65];

	cr_assert_lt(shd_plan_hash(p, h, &err), 0);
	cr_assert(strstr(err.msg, "step 2"), "%s", err.msg);
	cr_assert_str_eq(err.details[0].key, "step");
	cr_assert_str_eq(err.details[0].value, "2");
}
