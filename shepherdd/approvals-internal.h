/*
 * What the approval handlers share (api-approvals.c, api-approvals-spec.c): a ticket as read
 * for one request, the cluster an approval names, and the plan hash of a spec on a cluster.
 * Every function runs on the caller's connection and transaction.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canon.h"
#include "gov.h"

struct shd_req;
struct shp_error;

#define APPROVAL_REASON_MAX 1024
#define APPROVAL_AUDIT_TYPE "approval"

struct approval_ticket {
	int64_t id, event_id, requester_id, cluster_id, execution_id;
	enum shd_req_type type;
	char type_name[32];
	char status[24];
	char event_status[24];
	char requester[129];
	char system[64], service[64], ns[64], env[8], target[64];
	char cluster[64];                       /* the ticket's cluster, "" if none */
	char plan_hash[SHP_SHA256_HEX_LEN + 1]; /* "" until a cluster is chosen */
	char modified_at[48];                   /* text of modified_at, "" if never modified */
	int required;
	bool can_approve;  /* an approver (or platform admin) of the ticket's environment */
	json_t *payload;   /* owned: the event's payload ({"spec": ..., "vm": ...}) */
	json_t *requested; /* owned: the spec asked for (the payload's "spec", else the payload) */
	json_t *modified;  /* owned or NULL: an approver's replacement */
};
void approval_ticket_release(struct approval_ticket *t);

struct approval_cluster {
	int64_t id;
	char name[64];
	char env[8];
	json_t *caps; /* owned: the cluster's capabilities (array) */
};
void approval_cluster_release(struct approval_cluster *c);

/*
 * Read ticket id as user uid may see it (approvers of its environment, its requester), with
 * FOR UPDATE when lock. SHP_E_NOTFOUND when it does not exist for uid.
 */
int approval_ticket_load(PGconn *conn, const char *id, int64_t uid, bool lock,
			 struct approval_ticket *ret, struct shp_error *err) SHP_MUSTCHECK;
/* The ticket's id path parameter, checked (SHP_E_NOTFOUND for anything but a number). */
int approval_id_param(struct shd_req *req, const char **ret, struct shp_error *err) SHP_MUSTCHECK;
/* Load a visible ticket that the caller may decide: 404 if invisible, 403 for the requester. */
int approval_ticket_for_approver(struct shd_req *req, struct approval_ticket *ret,
				 struct shp_error *err) SHP_MUSTCHECK;

/* A registered cluster by name; SHP_E_NOTFOUND naming it. */
int approval_cluster_load(PGconn *conn, const char *name, struct approval_cluster *ret,
			  struct shp_error *err) SHP_MUSTCHECK;
/*
 * The cluster an approval uses: the one asked for, else the ticket's, else the spec's
 * preferred one; NULL (no error) when there is none.
 */
const char *approval_cluster_choice(const struct approval_ticket *t, const json_t *spec,
				    const char *asked);

/*
 * The plan of the ticket's request with spec on cluster (shd_gov_plan) and its hash.
 * *ret_plan (may be NULL) receives the plan.
 */
int approval_plan(PGconn *conn, const struct approval_ticket *t, const json_t *spec,
		  const char *cluster, char hash[SHP_SHA256_HEX_LEN + 1], json_t **ret_plan,
		  struct shp_error *err) SHP_MUSTCHECK;

/* Void the ticket's valid approvals; *ret_count (may be NULL) is how many. */
int approval_invalidate(PGconn *conn, int64_t ticket_id, int *ret_count,
			struct shp_error *err) SHP_MUSTCHECK;

/* Audit row about ticket t (details get ticket_id and request_id added; borrowed). */
int approval_audit(PGconn *conn, const struct shd_req *req, const char *action,
		   const struct approval_ticket *t, json_t *details,
		   struct shp_error *err) SHP_MUSTCHECK;
