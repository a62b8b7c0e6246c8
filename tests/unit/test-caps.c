/*
 * Capability matching: covered, missing (listed once, in the required order), empty
 * requirements, wrong types with their reason; and the dry-run fallback against a fake
 * infrastructure that accepts, rejects, or cannot answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "error.h"
#include "health.h"
#include "provider.h"

static json_t *J(const char *text)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

	cr_assert_not_null(j, "bad test JSON: %s", text);
	return j;
}

static bool has_all(const char *caps, const char *req, json_t **missing, struct shp_error *err)
{
	json_auto_t *c = J(caps), *r = J(req);

	return shd_caps_has_all(c, r, missing, err);
}

Test(caps, covered)
{
	json_t *missing = NULL;

	cr_assert(has_all("[\"kubevirt\",\"snapshot\",\"gpu\"]", "[\"gpu\",\"kubevirt\"]", &missing,
			  NULL));
	cr_assert_null(missing);
}

Test(caps, empty_requirements_always_hold)
{
	cr_assert(has_all("[]", "[]", NULL, NULL));
	cr_assert(has_all("[\"kubevirt\"]", "[]", NULL, NULL));
}

Test(caps, missing_listed_once_in_order)
{
	json_auto_t *missing = NULL;
	json_auto_t *want = J("[\"hugepages\",\"gpu\"]");
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_not(has_all("[\"kubevirt\"]",
			      "[\"hugepages\",\"kubevirt\",\"gpu\",\"hugepages\"]", &missing,
			      &err));
	cr_assert(json_equal(missing, want));
	cr_assert_eq(err.code, SHP_OK, "a missing capability is not an error");
}

Test(caps, missing_without_out_param)
{
	cr_assert_not(has_all("[]", "[\"gpu\"]", NULL, NULL));
}

Test(caps, case_matters)
{
	cr_assert_not(has_all("[\"GPU\"]", "[\"gpu\"]", NULL, NULL));
}

Test(caps, wrong_types_give_the_reason)
{
	static const struct {
		const char *caps, *req, *reason;
	} cases[] = {
		{"[\"gpu\"]", "\"gpu\"", "required capabilities must be an array of strings"},
		{"[\"gpu\"]", "{\"gpu\":true}",
		 "required capabilities must be an array of strings"},
		{"[\"gpu\"]", "[\"gpu\", 3]", "required capabilities[1] must be a string"},
		{"[\"gpu\"]", "[null]", "required capabilities[0] must be a string"},
		{"null", "[\"gpu\"]", "cluster capabilities must be an array of strings"},
		{"[\"gpu\", [\"x\"]]", "[]", "cluster capabilities[1] must be a string"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shp_error err = SHP_ERROR_INIT;
		json_t *missing = NULL;

		cr_assert_not(has_all(cases[i].caps, cases[i].req, &missing, &err), "case %zu", i);
		cr_assert_null(missing, "case %zu", i);
		cr_assert_eq(err.code, SHP_E_INVAL, "case %zu", i);
		cr_assert_str_eq(err.msg, cases[i].reason, "case %zu", i);
	}
}

Test(caps, null_arguments_are_wrong_types)
{
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *c = J("[]");

	cr_assert_not(shd_caps_has_all(c, NULL, NULL, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	cr_assert_not(shd_caps_has_all(NULL, c, NULL, NULL));
}

/* ---- the dry-run fallback ----------------------------------------------------------------- */

struct fake {
	int code; /* what create_vm fails with, SHP_OK to accept */
	const char *msg;
	bool saw_dry_run;
	int calls;
};

static int fake_create(void *impl, const json_t *manifest, bool dry_run, struct shd_vm *ret,
		       uint64_t deadline_ns, struct shp_error *err)
{
	struct fake *f = impl;

	f->calls++;
	f->saw_dry_run = dry_run;
	if (f->code == SHP_OK)
		return 0;
	return shp_error_set(err, f->code, "%s", f->msg);
}

static const struct shd_infra_ops fake_ops = {.create_vm = fake_create};

static int dry_run(struct fake *f, const char *manifest, bool *ok, char **reason,
		   struct shp_error *err)
{
	struct shd_infra infra = {.ops = &fake_ops, .impl = f};
	json_auto_t *m = J(manifest);

	return shd_caps_dry_run_check(&infra, m, 0, ok, reason, err);
}

Test(caps, dry_run_accepted)
{
	struct fake f = {.code = SHP_OK};
	char *reason = (char *)"untouched";
	bool ok = false;

	cr_assert_eq(dry_run(&f, "{\"kind\":\"VirtualMachine\"}", &ok, &reason, NULL), 0);
	cr_assert(ok);
	cr_assert_null(reason);
	cr_assert(f.saw_dry_run, "the check never creates for real");
	cr_assert_eq(f.calls, 1);
}

Test(caps, dry_run_rejection_is_the_reason)
{
	struct fake f = {.code = SHP_E_INVAL,
			 .msg = "admission webhook denied: Snapshot feature gate is not enabled"};
	struct shp_error err = SHP_ERROR_INIT;
	char *reason = NULL;
	bool ok = true;

	cr_assert_eq(dry_run(&f, "{}", &ok, &reason, &err), 0);
	cr_assert_not(ok);
	cr_assert_str_eq(reason, f.msg);
	cr_assert_eq(err.code, SHP_OK);
	free(reason);
}

Test(caps, dry_run_unanswered_is_an_error)
{
	struct fake f = {.code = SHP_E_UNAVAIL, .msg = "connection refused"};
	struct shp_error err = SHP_ERROR_INIT;
	char *reason = NULL;
	bool ok = true;

	cr_assert_eq(dry_run(&f, "{}", &ok, &reason, &err), -SHP_E_UNAVAIL);
	cr_assert_str_eq(err.msg, "connection refused");
	cr_assert(ok, "ret_ok is untouched on failure");
	cr_assert_null(reason);
}

Test(caps, dry_run_bad_input)
{
	struct fake f = {.code = SHP_OK};
	struct shd_infra none = {0};
	struct shp_error err = SHP_ERROR_INIT;
	json_auto_t *m = J("{}");
	char *reason = NULL;
	bool ok = false;

	cr_assert_eq(dry_run(&f, "[1]", &ok, &reason, &err), -SHP_E_INVAL);
	cr_assert_eq(f.calls, 0);
	cr_assert_eq(shd_caps_dry_run_check(&none, m, 0, &ok, &reason, NULL), -SHP_E_UNAVAIL);
}
