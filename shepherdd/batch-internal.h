/*
 * Internal to the batch sources (batch.c, api-batch.c): a batch being submitted, its children
 * checked one by one with the errors that name their index, then recorded together.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "gov-submit.h"
#include "gov.h"
#include "plan.h"

#define BATCH_ERRORS_MAX 50 /* item errors listed in a refusal */

struct batch_child {
	struct shd_vm_prepared p;
	struct shd_policy_decision d;
	char hash[SHP_SHA256_HEX_LEN + 1]; /* automatic children: the plan the policy approved */
	int index;                         /* in the submitted list */
	int64_t event_id, ticket_id;
	int64_t retry_of; /* a retry: the failed child it replaces */
};

struct batch_sub {
	const char *kind;   /* CREATE_VM, START_VM, STOP_VM, RESTART_VM */
	const char *source; /* vms, approvals, power */
	bool confirm;
	bool retry;
	int64_t id; /* the parent (set before recording for a retry) */
	struct batch_child *c;
	size_t n;
	struct shd_policy *policies; /* owned: the children's decisions borrow their runbooks */
	/* item errors */
	json_t *errors; /* owned: [{"index", "code", "message", "field"?}] */
	int nerrors;
	int first_index;
	struct shp_error first_error;
};

void batch_sub_release(struct batch_sub *b);
/* Note that item index is invalid (err says why). */
void batch_item_error(struct batch_sub *b, int index, const struct shp_error *e);
/* 400 BATCH_INVALID listing the item errors (details.errors, details.index of the first). */
int batch_invalid_answer(struct shd_req *req, struct shd_resp *resp, const struct batch_sub *b);
/* The policy's decision and, for automatic children, the plan hash; errors go to the items. */
int batch_decide_all(struct shd_req *req, struct batch_sub *b, struct shp_error *err);
/* Parent (unless b->id), children, notifications and the dispatch job in one transaction. */
int batch_record(struct shd_req *req, struct batch_sub *b, struct shp_error *err);
/*
 * The batch of the path, if the caller may see it: its requester, a platform admin, or an
 * approver of the environment of one of its children; else SHP_E_NOTFOUND. *ret_own: the
 * requester or a platform admin (who may retry and cancel). ret_kind (size bytes) gets its
 * kind unless NULL.
 */
int batch_find(struct shd_req *req, int64_t *ret_id, bool *ret_own, char *ret_kind, size_t size,
	       struct shp_error *err);
