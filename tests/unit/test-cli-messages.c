/*
 * cli/messages.c: the templates of the daemon's codes are filled from the error's details, the
 * most specific one that its details fill wins, missing details and unknown codes give no
 * message (the daemon's is said), and without a translation the daemon's words are kept.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "messages.h"

static struct shp_error daemon_error(const char *code, const char *msg)
{
	struct shp_error e = SHP_ERROR_INIT;

	(void)shp_error_set(&e, SHP_E_CONFLICT, "%s", msg);
	shp_error_api_code(&e, code);
	return e;
}

static void expect_text(const struct shp_error *e, const char *want)
{
	char *text = cli_error_message_untranslated(e);

	cr_assert_not_null(text, "no message for %s", e->api_code);
	cr_expect_str_eq(text, want);
	free(text);
}

Test(messages, fills_placeholders_from_details)
{
	struct shp_error e = daemon_error("CONFIRMATION_REQUIRED", "deleting needs confirmation");

	shp_error_detail(&e, "parameter", "%s", "confirm_name");
	expect_text(&e, "this needs confirmation: repeat it with 'confirm_name'");
	shp_error_detail(&e, "environment", "%s", "prod");
	expect_text(&e, "this needs confirmation in prod: repeat it with 'confirm_name'");
}

Test(messages, skips_templates_whose_details_are_missing)
{
	struct shp_error e = daemon_error("AMBIGUOUS_NAME", "VM 'web' is in several namespaces");

	shp_error_detail(&e, "namespaces", "%s", "a,b");
	expect_text(&e, "the name is in several namespaces (a,b): name one with --namespace");
	shp_error_detail(&e, "name", "%s", "web");
	expect_text(&e, "'web' is in several namespaces (a,b): name one with --namespace");
}

Test(messages, message_placeholder_is_the_daemons_message)
{
	struct shp_error e = daemon_error("FORBIDDEN", "only owners of system 'shop' may do this");

	expect_text(&e, "permission denied: only owners of system 'shop' may do this");
}

Test(messages, details_are_sanitized)
{
	struct shp_error e = daemon_error("IMMUTABLE_FIELD", "no");

	shp_error_detail(&e, "field", "%s", "a\033[31mb\nc");
	expect_text(&e, "field 'a?[31mb c' cannot change once the VM exists");
}

Test(messages, unknown_codes_and_local_errors_have_none)
{
	struct shp_error e = daemon_error("SOMETHING_NEW", "a brand new refusal");
	struct shp_error local = SHP_ERROR_INIT;

	cr_expect_null(cli_error_message_untranslated(&e));
	cr_expect_null(cli_error_message(&e));
	(void)shp_error_set(&local, SHP_E_USAGE, "unknown command 'x'");
	cr_expect_null(cli_error_message_untranslated(&local));
}

Test(messages, untranslated_means_the_daemons_words)
{
	struct shp_error e =
		daemon_error("SELF_APPROVAL", "'bob' requested ticket 3 and may not decide it");

	/* no catalogue is bound: the template has no translation */
	cr_expect_null(cli_error_message(&e));
	expect_text(&e, "you requested this ticket: someone else must decide it");
}
