/*
 * A line diff in the unified format (what `diff -u --label A --label B` prints), for showing
 * how two texts differ: VM revisions, an approver's modification of a spec.
 *
 * Lines end at '\n'; a last line without one is a different line from the same text with one,
 * and is followed by "\ No newline at end of file" as diff(1) does. The algorithm is Myers'
 * O(ND) difference in linear space (divide and conquer on the middle snake), so the cost is
 * bounded by the line limit below.
 *
 * Thread rules: none (no shared state).
 */
#pragma once

#include <stddef.h>

#include "cleanup.h"

struct shp_buf;
struct shp_error;

/* Each input may have at most this many lines (-SHP_E_LIMIT beyond). */
#define SHP_DIFF_MAX_LINES 10000
/* The largest number of context lines accepted. */
#define SHP_DIFF_MAX_CONTEXT 1000

/*
 * Append to out the unified diff of a[0..alen) against b[0..blen): "--- label_a", "+++
 * label_b", then the "@@ -l,s +l,s @@" hunks with `context` lines of context around each
 * change; hunks closer than 2 * context lines are merged. Equal inputs append nothing.
 * -SHP_E_INVAL (context out of 0..SHP_DIFF_MAX_CONTEXT, a label with a newline), -SHP_E_LIMIT
 * (too many lines, or out's cap), -SHP_E_NOMEM; out is unchanged on failure.
 */
int shp_diff_unified(const char *a, size_t alen, const char *b, size_t blen, const char *label_a,
		     const char *label_b, int context, struct shp_buf *out,
		     struct shp_error *err) SHP_MUSTCHECK;
