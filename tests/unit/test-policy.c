/*
 * Approval policies: the default matrix of schema 0008 (every type in test, prod and without
 * an environment), the fallback row, escalation by CPUs and by memory (up to level 3 with two
 * approvers), and missing rows.
 */
#include "config.h"

#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "gov.h"

#define RB(x) "https://shepherd.invalid/runbooks/" x

/* The rows schema/0008_governance.up.sql inserts. */
static const struct shd_policy defaults[] = {
	{SHD_REQ_CREATE_SYSTEM, -1, 0, 1, "", 0, 0},
	{SHD_REQ_DELETE_SYSTEM, -1, 0, 1, "", 0, 0},
	{SHD_REQ_CREATE_SERVICE, -1, 0, 1, "", 0, 0},
	{SHD_REQ_DELETE_SERVICE, -1, 0, 1, "", 0, 0},
	{SHD_REQ_CREATE_VM, 0, 2, 1, RB("vm-create"), 0, 0},
	{SHD_REQ_CREATE_VM, 1, 2, 1, RB("vm-create"), 0, 0},
	{SHD_REQ_MODIFY_VM, 0, 2, 1, RB("vm-modify"), 0, 0},
	{SHD_REQ_MODIFY_VM, 1, 2, 1, RB("vm-modify"), 0, 0},
	{SHD_REQ_DELETE_VM, 0, 2, 1, RB("vm-delete"), 0, 0},
	{SHD_REQ_DELETE_VM, 1, 2, 1, RB("vm-delete"), 0, 0},
	{SHD_REQ_START_VM, 0, 0, 1, "", 0, 0},
	{SHD_REQ_START_VM, 1, 2, 1, RB("vm-power"), 0, 0},
	{SHD_REQ_STOP_VM, 0, 0, 1, "", 0, 0},
	{SHD_REQ_STOP_VM, 1, 2, 1, RB("vm-power"), 0, 0},
	{SHD_REQ_RESTART_VM, 0, 0, 1, "", 0, 0},
	{SHD_REQ_RESTART_VM, 1, 2, 1, RB("vm-power"), 0, 0},
	{SHD_REQ_VNC_ACCESS, 0, 0, 1, "", 0, 0},
	{SHD_REQ_VNC_ACCESS, 1, 2, 1, RB("vnc-access"), 0, 0},
};
#define NDEF (sizeof(defaults) / sizeof(defaults[0]))

/* The expected level per type for env test (0), prod (1) and none (-1): -1 = no row. */
static const int matrix[_SHD_REQ_MAX][3] = {
	[SHD_REQ_CREATE_SYSTEM] = {0, 0, 0},  [SHD_REQ_DELETE_SYSTEM] = {0, 0, 0},
	[SHD_REQ_CREATE_SERVICE] = {0, 0, 0}, [SHD_REQ_DELETE_SERVICE] = {0, 0, 0},
	[SHD_REQ_CREATE_VM] = {2, 2, -1},     [SHD_REQ_MODIFY_VM] = {2, 2, -1},
	[SHD_REQ_DELETE_VM] = {2, 2, -1},     [SHD_REQ_START_VM] = {0, 2, -1},
	[SHD_REQ_STOP_VM] = {0, 2, -1},       [SHD_REQ_RESTART_VM] = {0, 2, -1},
	[SHD_REQ_VNC_ACCESS] = {0, 2, -1},
};

Test(policy, default_matrix)
{
	static const int envs[3] = {0, 1, -1};

	for (int t = 0; t < _SHD_REQ_MAX; t++) {
		for (int e = 0; e < 3; e++) {
			struct shp_error err = SHP_ERROR_INIT;
			struct shd_policy_decision d;
			int r = shd_policy_match(defaults, NDEF, (enum shd_req_type)t, envs[e], 0,
						 0, &d, &err);

			if (matrix[t][e] < 0) {
				cr_assert_eq(r, -SHP_E_NOTFOUND, "%s env %d has no row",
					     shd_req_type_to_string(t), envs[e]);
				cr_assert(strstr(err.msg, shd_req_type_to_string(t)), "%s",
					  err.msg);
				continue;
			}
			cr_assert_eq(r, 0, "%s env %d: %s", shd_req_type_to_string(t), envs[e],
				     err.msg);
			cr_assert_eq(d.level, matrix[t][e], "%s env %d", shd_req_type_to_string(t),
				     envs[e]);
			cr_assert_eq(d.approvers_required, 1);
			cr_assert_not(d.escalated);
			cr_assert_eq(d.level == 2, d.runbook_url[0] != '\0',
				     "a review shows its runbook (%s)", shd_req_type_to_string(t));
		}
	}
}

Test(policy, record_only_types_match_the_row_without_environment)
{
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(defaults, NDEF, SHD_REQ_CREATE_SYSTEM, 1, 0, 0, &d, NULL), 0);
	cr_assert_eq(d.env, -1);
	cr_assert_eq(d.level, 0);
}

Test(policy, environment_row_wins_over_fallback)
{
	const struct shd_policy rows[] = {
		{SHD_REQ_START_VM, -1, 3, 2, "", 0, 0},
		{SHD_REQ_START_VM, 0, 1, 1, "", 0, 0},
	};
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(rows, 2, SHD_REQ_START_VM, 0, 0, 0, &d, NULL), 0);
	cr_assert_eq(d.level, 1);
	cr_assert_eq(d.env, 0);
	/* prod has no row of its own: the fallback decides */
	cr_assert_eq(shd_policy_match(rows, 2, SHD_REQ_START_VM, 1, 0, 0, &d, NULL), 0);
	cr_assert_eq(d.level, 3);
	cr_assert_eq(d.approvers_required, 2);
	cr_assert_eq(d.env, -1);
}

Test(policy, escalation_by_cpus)
{
	const struct shd_policy rows[] = {
		{SHD_REQ_MODIFY_VM, 0, 1, 1, "", 4, 0},
	};
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_MODIFY_VM, 0, 4, 0, &d, NULL), 0);
	cr_assert_eq(d.level, 1, "adding exactly the threshold stays");
	cr_assert_not(d.escalated);
	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_MODIFY_VM, 0, 5, 999999, &d, NULL), 0);
	cr_assert_eq(d.level, 2, "memory has no threshold here, CPUs do");
	cr_assert(d.escalated);
	cr_assert_eq(d.approvers_required, 1);
	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_MODIFY_VM, 0, -8, 0, &d, NULL), 0);
	cr_assert_eq(d.level, 1, "removing CPUs never escalates");
}

Test(policy, escalation_by_memory_to_level_3_needs_two_approvers)
{
	const struct shd_policy rows[] = {
		{SHD_REQ_MODIFY_VM, 1, 2, 1, RB("vm-modify"), 0, 8192},
	};
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_MODIFY_VM, 1, 100, 8192, &d, NULL), 0);
	cr_assert_eq(d.level, 2, "CPUs have no threshold; memory at the threshold stays");
	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_MODIFY_VM, 1, 0, 8193, &d, NULL), 0);
	cr_assert_eq(d.level, 3);
	cr_assert(d.escalated);
	cr_assert_eq(d.approvers_required, 2);
	cr_assert_str_eq(d.runbook_url, RB("vm-modify"));
}

Test(policy, level_3_does_not_escalate_further)
{
	const struct shd_policy rows[] = {
		{SHD_REQ_CREATE_VM, 1, 3, 4, "", 1, 1},
	};
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_CREATE_VM, 1, 64, 65536, &d, NULL), 0);
	cr_assert_eq(d.level, 3);
	cr_assert_not(d.escalated);
	cr_assert_eq(d.approvers_required, 4, "the row's quorum is kept");
}

Test(policy, escalation_from_level_0)
{
	const struct shd_policy rows[] = {
		{SHD_REQ_CREATE_VM, 0, 0, 1, "", 8, 16384},
	};
	struct shd_policy_decision d;

	cr_assert_eq(shd_policy_match(rows, 1, SHD_REQ_CREATE_VM, 0, 16, 1024, &d, NULL), 0);
	cr_assert_eq(d.level, 1);
	cr_assert(d.escalated);
}

Test(policy, missing_rows)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_policy_decision d = {.level = 42};

	cr_assert_eq(shd_policy_match(NULL, 0, SHD_REQ_CREATE_VM, 0, 0, 0, &d, &err),
		     -SHP_E_NOTFOUND);
	cr_assert_eq(d.level, 42, "the decision is untouched on failure");
	cr_assert(strstr(err.msg, "CREATE_VM") && strstr(err.msg, "test"), "%s", err.msg);
	shp_error_clear(&err);
	/* a row for another environment does not stand in */
	cr_assert_eq(shd_policy_match(defaults + 4, 1, SHD_REQ_CREATE_VM, 1, 0, 0, &d, &err),
		     -SHP_E_NOTFOUND);
}

Test(policy, request_types_round_trip)
{
	struct shp_error err = SHP_ERROR_INIT;
	enum shd_req_type t;

	for (int i = 0; i < _SHD_REQ_MAX; i++) {
		cr_assert_eq(shd_req_type_from_string(shd_req_type_to_string(i), &t, NULL), 0);
		cr_assert_eq((int)t, i);
	}
	cr_assert_null(shd_req_type_to_string(_SHD_REQ_MAX));
	cr_assert_eq(shd_req_type_from_string("create_vm", &t, &err), -SHP_E_INVAL);
	cr_assert(strstr(err.msg, "CREATE_VM"), "%s", err.msg);
	cr_assert(shd_req_type_record_only(SHD_REQ_DELETE_SERVICE));
	cr_assert_not(shd_req_type_record_only(SHD_REQ_CREATE_VM));
	cr_assert(shd_req_type_targets_vm(SHD_REQ_RESTART_VM));
	cr_assert_not(shd_req_type_targets_vm(SHD_REQ_CREATE_VM));
	cr_assert_not(shd_req_type_targets_vm(SHD_REQ_CREATE_SYSTEM));
}
