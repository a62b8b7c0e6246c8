/*
 * State machines as data: each machine is a table of legal transitions. Executions, domain
 * events and approval tickets each have one; every status change goes through shd_fsm_check,
 * so an illegal move is an error that names both states and a terminal state never moves.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct shp_error;

struct shd_fsm_edge {
	const char *from;
	const char *to;
};

struct shd_fsm {
	const char *name;                 /* "execution" */
	const char *const *states;        /* every state, NULL-terminated */
	const char *const *terminal;      /* the states that never move, NULL-terminated */
	const struct shd_fsm_edge *edges; /* legal transitions, ended by { NULL, NULL } */
};

/* The machines. */
extern const struct shd_fsm
	shd_fsm_execution;                 /* pending running succeeded failed cancelled rejected */
extern const struct shd_fsm shd_fsm_event; /* PENDING PROCESSING COMPLETED FAILED CANCELLED */
extern const struct shd_fsm shd_fsm_ticket; /* PENDING_APPROVAL APPROVED EXECUTING COMPLETED ... */

bool shd_fsm_has_state(const struct shd_fsm *fsm, const char *state);
bool shd_fsm_is_terminal(const struct shd_fsm *fsm, const char *state);
/*
 * 0 when from -> to is legal. Otherwise -SHP_E_CONFLICT with API code ILLEGAL_TRANSITION,
 * a message naming both states ("illegal execution transition from 'pending' to
 * 'succeeded'") and details "from" and "to"; an unknown state is -SHP_E_INVAL.
 */
int shd_fsm_check(const struct shd_fsm *fsm, const char *from, const char *to,
		  struct shp_error *err) SHP_MUSTCHECK;
