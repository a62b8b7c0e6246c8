/*
 * The CLI's own words for the daemon's refusals. Every API error has a stable code and its
 * parameters in "details"; a table turns a known code and its details into a message in the
 * user's language. The daemon's message (English) stays the reference: it is said as it is for
 * a code the table does not know, when a detail the message needs is missing, and when the
 * catalogue has no translation of the message (so an English user reads the daemon's words).
 */
#pragma once

#include "error.h"

/*
 * The message for the daemon's error err (with its api_code and details), translated, as a new
 * string; NULL when err->msg is to be said instead. Any thread.
 */
char *cli_error_message(const struct shp_error *err);

/*
 * The message of the first template for api_code whose placeholders the details fill, in
 * English (untranslated), or NULL; for tests and for the documentation of the codes.
 */
char *cli_error_message_untranslated(const struct shp_error *err);
