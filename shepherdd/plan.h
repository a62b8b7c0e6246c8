/*
 * Plans: what an operation will do, as an ordered list of steps, each with an action, its
 * targets and parameters:
 *   {"steps": [{"action": "vm.create", "targets": ["ns/a/vm-1"], "params": {...}}, ...]}
 * The plan hash is SHA-256 over the canonical JSON of the normalised plan (targets sorted,
 * keys sorted, no whitespace); step order is significant and kept. An approval is bound to
 * this hash, and the internal dedupe key of an execution is
 * sha256(canonical plan + tenant + actor).
 */
#pragma once

#include <jansson.h>

#include "canon.h"
#include "cleanup.h"

struct shp_error;

#define SHD_PLAN_STEPS_MAX 1000
#define SHD_PLAN_TARGETS_MAX 1000
#define SHD_PLAN_ACTION_MAX 64

/*
 * Check a plan's shape and return a normalised copy (new reference): every step has a
 * non-empty "action" (at most SHD_PLAN_ACTION_MAX bytes), "targets" (an array of strings or
 * objects, sorted by their canonical form, duplicates refused) and "params" (an object,
 * {} when absent); no other keys. NULL with SHP_E_INVAL naming the step on failure.
 */
json_t *shd_plan_normalize(const json_t *plan, struct shp_error *err);
/* Hex plan hash of plan (normalised first). */
int shd_plan_hash(const json_t *plan, char out[SHP_SHA256_HEX_LEN + 1],
		  struct shp_error *err) SHP_MUSTCHECK;
/* Hex dedupe key of plan for tenant and actor (both non-empty). */
int shd_plan_dedupe_key(const json_t *plan, const char *tenant, const char *actor,
			char out[SHP_SHA256_HEX_LEN + 1], struct shp_error *err) SHP_MUSTCHECK;
