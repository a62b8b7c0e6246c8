/*
 * Messages for translation: the CLI's own strings go through gettext (text domain "shepherd").
 * _() marks and translates a string; N_() only marks one (a table entry translated where it is
 * printed). Any thread.
 */
#pragma once

#include <libintl.h>

#define _(s) gettext(s)
#define N_(s) (s)
