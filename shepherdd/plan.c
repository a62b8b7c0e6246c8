/*
 * Plan normalisation and hashing (see plan.h): shape checks, sorted targets, canonical JSON,
 * SHA-256.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "canon.h"
#include "error.h"
#include "plan.h"

#define CANON_MAX (16u << 20)

struct keyed {
	char *canon; /* canonical JSON of the target */
	json_t *value;
};

static int cmp_keyed(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->canon, ((const struct keyed *)b)->canon);
}

static int step_error(struct shp_error *err, size_t i, const char *what)
{
	shp_error_set(err, SHP_E_INVAL, "plan step %zu: %s", i + 1, what);
	shp_error_detail(err, "step", "%zu", i + 1);
	return -SHP_E_INVAL;
}

static json_t *step_fail(struct shp_error *err, size_t i, const char *what)
{
	(void)step_error(err, i, what);
	return NULL;
}

/* targets sorted by canonical form into a new array; duplicates refused */
static json_t *sorted_targets(const json_t *targets, size_t step, struct shp_error *err)
{
	size_t n = json_array_size(targets), i;
	struct keyed *k = calloc(n ? n : 1, sizeof(*k));
	json_t *out = json_array();
	json_t *t;
	int r = 0;

	if (!k || !out) {
		r = shp_error_set(err, SHP_E_NOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(targets, i, t)
	{
		struct shp_buf b = SHP_BUF_INIT(CANON_MAX);
		if (!json_is_string(t) && !json_is_object(t)) {
			r = step_error(err, step, "a target must be a string or an object");
			goto done;
		}
		r = shp_canon_json(t, &b, err);
		k[i].canon = shp_buf_detach(&b, NULL);
		k[i].value = t;
		if (r < 0 || !k[i].canon) {
			r = r < 0 ? r : shp_error_set(err, SHP_E_NOMEM, "out of memory");
			goto done;
		}
	}
	qsort(k, n, sizeof(*k), cmp_keyed);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(k[i - 1].canon, k[i].canon) == 0) {
			r = step_error(err, step, "a target is listed twice");
			goto done;
		}
		(void)json_array_append(out, k[i].value);
	}
done:
	for (i = 0; k && i < n; i++)
		free(k[i].canon);
	free(k);
	if (r < 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *normalize_step(const json_t *step, size_t i, struct shp_error *err)
{
	const json_t *action = json_object_get(step, "action");
	const json_t *targets = json_object_get(step, "targets");
	const json_t *params = json_object_get(step, "params");
	json_t *sorted;
	const char *key;
	json_t *v;

	if (!json_is_object(step))
		return step_fail(err, i, "must be an object");
	json_object_foreach((json_t *)step, key, v) if (strcmp(key, "action") &&
							strcmp(key, "targets") &&
							strcmp(key, "params"))
	{
		shp_error_set(err, SHP_E_INVAL, "plan step %zu: unknown field '%.40s'", i + 1, key);
		return NULL;
	}
	if (!json_is_string(action) || json_string_length(action) == 0 ||
	    json_string_length(action) > SHD_PLAN_ACTION_MAX ||
	    strlen(json_string_value(action)) != json_string_length(action))
		return step_fail(err, i, "'action' must be a short non-empty string");
	if (!json_is_array(targets) || json_array_size(targets) > SHD_PLAN_TARGETS_MAX)
		return step_fail(err, i, "'targets' must be an array of at most 1000");
	if (params && !json_is_object(params))
		return step_fail(err, i, "'params' must be an object");
	sorted = sorted_targets(targets, i, err);
	if (!sorted)
		return NULL;
	return json_pack("{s:O,s:o,s:o}", "action", action, "targets", sorted, "params",
			 params ? json_deep_copy(params) : json_object());
}

json_t *shd_plan_normalize(const json_t *plan, struct shp_error *err)
{
	const json_t *steps = json_object_get(plan, "steps");
	json_auto_t *out = json_array();
	size_t i;
	json_t *s;

	if (!json_is_object(plan) || json_object_size(plan) != 1 || !json_is_array(steps)) {
		shp_error_set(err, SHP_E_INVAL, "a plan is an object with one field, 'steps'");
		return NULL;
	}
	if (json_array_size(steps) == 0 || json_array_size(steps) > SHD_PLAN_STEPS_MAX) {
		shp_error_set(err, SHP_E_INVAL, "a plan has 1 to %d steps", SHD_PLAN_STEPS_MAX);
		return NULL;
	}
	json_array_foreach(steps, i, s)
	{
		json_t *n = normalize_step(s, i, err);
		if (!n || json_array_append_new(out, n) < 0)
			return NULL;
	}
	return json_pack("{s:O}", "steps", out);
}

static int hash_with(const json_t *plan, const char *tenant, const char *actor,
		     char out[SHP_SHA256_HEX_LEN + 1], struct shp_error *err)
{
	struct shp_buf b __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(CANON_MAX);
	json_auto_t *norm = shd_plan_normalize(plan, err);
	int r;

	if (!norm)
		return -err->code;
	r = shp_canon_json(norm, &b, err);
	if (r < 0)
		return r;
	/* NUL separators: no tenant/actor pair can be spelled as another */
	if (tenant && (shp_buf_addn(&b, "", 1) < 0 || shp_buf_add(&b, tenant) < 0 ||
		       shp_buf_addn(&b, "", 1) < 0 || shp_buf_add(&b, actor) < 0))
		return shp_error_set(err, SHP_E_LIMIT, "plan is too large to hash");
	shp_sha256_hex(b.buf, b.len, out);
	return 0;
}

int shd_plan_hash(const json_t *plan, char out[SHP_SHA256_HEX_LEN + 1], struct shp_error *err)
{
	return hash_with(plan, NULL, NULL, out, err);
}

int shd_plan_dedupe_key(const json_t *plan, const char *tenant, const char *actor,
			char out[SHP_SHA256_HEX_LEN + 1], struct shp_error *err)
{
	if (!tenant || !*tenant || !actor || !*actor)
		return shp_error_set(err, SHP_E_INVAL, "a dedupe key needs a tenant and an actor");
	return hash_with(plan, tenant, actor, out, err);
}
