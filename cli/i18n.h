/*
 * Messages for translation: the CLI's own strings go through gettext (text domain "shepherd").
 * _() marks and translates a string; N_() only marks one (a table entry translated where it is
 * printed). Any thread.
 */
#pragma once

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)

/*
 * gettext() for text that may be NULL or empty, such as table entries: gettext("") would be the
 * catalogue's header.
 */
static inline const char *cli_tr(const char *s)
{
	return s && s[0] ? gettext(s) : s;
}
