/*
 * The transition tables of executions, domain events and approval tickets, and the one check
 * every status change goes through.
 */
#include "config.h"

#include <string.h>

#include "error.h"
#include "fsm.h"

static const char *const exec_states[] = {"pending",   "running",  "succeeded", "failed",
					  "cancelled", "rejected", NULL};
static const char *const exec_terminal[] = {"succeeded", "failed", "cancelled", "rejected", NULL};
static const struct shd_fsm_edge exec_edges[] = {
	{"pending", "running"},
	{"pending", "rejected"},
	{"pending", "cancelled"},
	{"running", "succeeded"},
	{"running", "failed"},
	{"running", "cancelled"},
	{NULL, NULL},
};

const struct shd_fsm shd_fsm_execution = {"execution", exec_states, exec_terminal, exec_edges};

/* Auto-approved events skip PENDING: they are created PROCESSING. */
static const char *const event_states[] = {"PENDING", "PROCESSING", "COMPLETED",
					   "FAILED",  "CANCELLED",  NULL};
static const char *const event_terminal[] = {"COMPLETED", "FAILED", "CANCELLED", NULL};
static const struct shd_fsm_edge event_edges[] = {
	{"PENDING", "PROCESSING"},
	{"PENDING", "CANCELLED"},
	{"PENDING", "FAILED"},
	{"PROCESSING", "COMPLETED"},
	{"PROCESSING", "FAILED"},
	{"PROCESSING", "CANCELLED"},
	{NULL, NULL},
};

const struct shd_fsm shd_fsm_event = {"event", event_states, event_terminal, event_edges};

static const char *const ticket_states[] = {"PENDING_APPROVAL", "APPROVED", "EXECUTING",
					    "COMPLETED",        "FAILED",   "REJECTED",
					    "CANCELLED",        "EXPIRED",  NULL};
static const char *const ticket_terminal[] = {"COMPLETED", "FAILED",  "REJECTED",
					      "CANCELLED", "EXPIRED", NULL};
static const struct shd_fsm_edge ticket_edges[] = {
	{"PENDING_APPROVAL", "APPROVED"},
	{"PENDING_APPROVAL", "REJECTED"},
	{"PENDING_APPROVAL", "CANCELLED"},
	{"PENDING_APPROVAL", "EXPIRED"},
	{"APPROVED", "EXECUTING"},
	{"APPROVED", "CANCELLED"},
	/* its execution was refused before it started (the plan changed, a right was lost) */
	{"APPROVED", "FAILED"},
	/* a change to the effective plan after approval sends the ticket back for review */
	{"APPROVED", "PENDING_APPROVAL"},
	{"EXECUTING", "COMPLETED"},
	{"EXECUTING", "FAILED"},
	{"EXECUTING", "CANCELLED"},
	{NULL, NULL},
};

const struct shd_fsm shd_fsm_ticket = {"ticket", ticket_states, ticket_terminal, ticket_edges};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

bool shd_fsm_has_state(const struct shd_fsm *fsm, const char *state)
{
	return state && in_list(fsm->states, state);
}

bool shd_fsm_is_terminal(const struct shd_fsm *fsm, const char *state)
{
	return state && in_list(fsm->terminal, state);
}

int shd_fsm_check(const struct shd_fsm *fsm, const char *from, const char *to,
		  struct shp_error *err)
{
	if (!shd_fsm_has_state(fsm, from) || !shd_fsm_has_state(fsm, to))
		return shp_error_set(err, SHP_E_INVAL, "unknown %s state '%s'", fsm->name,
				     shd_fsm_has_state(fsm, from) ? (to ? to : "(null)")
								  : (from ? from : "(null)"));
	for (const struct shd_fsm_edge *e = fsm->edges; e->from; e++)
		if (strcmp(e->from, from) == 0 && strcmp(e->to, to) == 0)
			return 0;
	shp_error_set(err, SHP_E_CONFLICT, "illegal %s transition from '%s' to '%s'%s", fsm->name,
		      from, to, shd_fsm_is_terminal(fsm, from) ? " (a final state)" : "");
	shp_error_api_code(err, "ILLEGAL_TRANSITION");
	shp_error_detail(err, "what", "%s", fsm->name);
	shp_error_detail(err, "from", "%s", from);
	shp_error_detail(err, "to", "%s", to);
	return -SHP_E_CONFLICT;
}
