/*
 * Submitting a governance request (internal to the request handlers): match the policy and
 * record the request in one transaction, as docs/internals/governance.md (steps 1-2) says.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "gov.h"

struct shd_req;
struct shd_resp;
struct shp_error;

/* A checked request, ready to record. Pointers are borrowed. */
struct shd_gov_sub {
	enum shd_req_type type;
	const char *system;  /* the tenant (for CREATE_SYSTEM the new system's name) */
	const char *service; /* "" when none */
	const char *ns;      /* "" when none */
	int env;             /* the namespace's environment index, -1 for none */
	const char *target;  /* the name the request is about */
	int64_t vm_id;       /* the VM a VM-targeted request is about, 0 = none */
	const char *cluster; /* the cluster named (spec) or the VM's; NULL = none */
	const json_t *payload;
	bool confirm; /* the requester's confirmation (level 1) */
	int add_cpus; /* what the request adds, for escalation */
	int64_t add_memory_mib;
	/* executed types: the plan on sub->cluster (a new reference, or NULL with err) */
	json_t *(*plan)(PGconn *conn, const struct shd_gov_sub *sub, struct shp_error *err);
};

/*
 * Match the policy and record the request on req->db (no transaction open): event, audit
 * REQUEST_SUBMITTED, and the ticket with notifications (level 2-3), the record (record-only
 * types) or the execution (level 0-1). Answers 202 with the request's summary.
 */
int shd_gov_submit(struct shd_req *req, struct shd_resp *resp, const struct shd_gov_sub *sub,
		   struct shp_error *err) SHP_MUSTCHECK;

/*
 * A VM request checked exactly as its single endpoint checks it (api-vm-requests.c), for the
 * batches: sub is ready for recording; its pointers point into this struct (fill in place).
 */
struct shd_vm_prepared {
	struct shd_gov_sub sub;
	char system[64], service[64], ns[64], name[64], cluster[64];
	json_t *spec;    /* owned: the checked spec of a create, else NULL */
	json_t *payload; /* owned */
};
void shd_vm_prepared_release(struct shd_vm_prepared *p);
/* A CREATE_VM spec (taken; shape already validated) through POST /vms's checks. */
int shd_vm_create_prepare(struct shd_req *req, json_t *spec_take, struct shd_vm_prepared *p,
			  struct shp_error *err) SHP_MUSTCHECK;
/* A power request (START/STOP/RESTART_VM) on the visible VM ns/name (ns NULL = any). */
int shd_vm_power_prepare(struct shd_req *req, enum shd_req_type type, const char *ns,
			 const char *name, struct shd_vm_prepared *p,
			 struct shp_error *err) SHP_MUSTCHECK;

/*
 * Carry out a record-only request (systems, services) from its payload in the caller's
 * transaction: a new system (and its owner, the requester), a new service, or the soft
 * delete of one not in use (SHP_E_CONFLICT otherwise; NAME_TAKEN for a name in use).
 * Called at submission under an automatic policy, and when a reviewed one is approved.
 */
int shd_gov_record(PGconn *conn, enum shd_req_type type, const json_t *payload,
		   int64_t requester_id, const char *requester,
		   struct shp_error *err) SHP_MUSTCHECK;

/* 400 CONFIRMATION_REQUIRED naming the parameter needed (and the environment, if any). */
int shd_gov_confirmation_required(struct shp_error *err, const char *param, const char *env,
				  const char *what);
/* Audit a refused attempt on another system's resource as RBAC_VIOLATION (denied). */
void shd_gov_audit_violation(struct shd_req *req, const char *resource_type, const char *name,
			     const struct shp_error *refusal);
/* "test", "prod" or NULL. */
const char *shd_gov_env_name(int env);
