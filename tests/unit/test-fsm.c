/*
 * The state machines: legal moves pass, illegal ones name both states, final states never
 * move, unknown states are refused.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "fsm.h"

Test(fsm, execution_legal_path)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "pending", "running", &err), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "running", "succeeded", &err), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "running", "cancelled", &err), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "pending", "rejected", &err), 0);
	cr_assert_eq(err.code, SHP_OK, "a legal move leaves err untouched");
}

Test(fsm, execution_illegal_names_both_states)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "pending", "succeeded", &err),
		     -SHP_E_CONFLICT);
	cr_assert_str_eq(err.api_code, "ILLEGAL_TRANSITION");
	cr_assert(strstr(err.msg, "'pending'") && strstr(err.msg, "'succeeded'"), "%s", err.msg);
	cr_assert_eq(err.n_details, 3);
	cr_assert_str_eq(err.details[0].key, "what");
	cr_assert_str_eq(err.details[0].value, "execution");
	cr_assert_str_eq(err.details[1].key, "from");
	cr_assert_str_eq(err.details[1].value, "pending");
	cr_assert_str_eq(err.details[2].key, "to");
	cr_assert_str_eq(err.details[2].value, "succeeded");
}

Test(fsm, terminal_states_never_move)
{
	const struct shd_fsm *machines[] = {&shd_fsm_execution, &shd_fsm_event, &shd_fsm_ticket};

	for (size_t m = 0; m < 3; m++) {
		const struct shd_fsm *f = machines[m];
		for (const char *const *t = f->terminal; *t; t++) {
			cr_assert(shd_fsm_has_state(f, *t), "%s: terminal %s is a state", f->name,
				  *t);
			for (const char *const *s = f->states; *s; s++) {
				struct shp_error err = SHP_ERROR_INIT;
				cr_assert_lt(shd_fsm_check(f, *t, *s, &err), 0, "%s: %s -> %s",
					     f->name, *t, *s);
				cr_assert(strstr(err.msg, "final state"), "%s", err.msg);
			}
		}
		for (const struct shd_fsm_edge *e = f->edges; e->from; e++) {
			cr_assert(shd_fsm_has_state(f, e->from) && shd_fsm_has_state(f, e->to),
				  "%s: edge %s -> %s uses known states", f->name, e->from, e->to);
			cr_assert(!shd_fsm_is_terminal(f, e->from), "%s: no edge leaves %s",
				  f->name, e->from);
		}
	}
}

Test(fsm, unknown_states_are_invalid)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, "pending", "exploded", &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "exploded"), "%s", err.msg);
	cr_assert_eq(shd_fsm_check(&shd_fsm_execution, NULL, "running", NULL), -SHP_E_INVAL);
	cr_assert_eq(shd_fsm_check(&shd_fsm_ticket, "pending_approval", "APPROVED", NULL),
		     -SHP_E_INVAL, "states are case-sensitive");
}

Test(fsm, ticket_and_event_paths)
{
	cr_assert_eq(shd_fsm_check(&shd_fsm_ticket, "PENDING_APPROVAL", "APPROVED", NULL), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_ticket, "APPROVED", "EXECUTING", NULL), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_ticket, "EXECUTING", "COMPLETED", NULL), 0);
	cr_assert_lt(shd_fsm_check(&shd_fsm_ticket, "PENDING_APPROVAL", "EXECUTING", NULL), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_event, "PENDING", "PROCESSING", NULL), 0);
	cr_assert_eq(shd_fsm_check(&shd_fsm_event, "PROCESSING", "COMPLETED", NULL), 0);
	cr_assert_lt(shd_fsm_check(&shd_fsm_event, "PENDING", "COMPLETED", NULL), 0);
}
