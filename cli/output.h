/*
 * What the CLI prints on stdout: tables (fitted to the terminal), detail views, JSON, YAML and
 * kind/name lines, described per resource kind by a column table. The cli_render_* functions
 * take everything as arguments (unit-testable); cli_show_* apply a struct cli_ctx.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "cli.h"

/* Column flags. */
#define COL_WIDE (1u << 0)  /* only with -o wide (and in detail views) */
#define COL_RIGHT (1u << 1) /* right-aligned (numbers) */
#define COL_FLEX (1u << 2)  /* free text: shrunk first when the table is wider than the terminal */
#define COL_AGE (1u << 3)   /* an RFC 3339 time shown as its age: "5m", "2h", "3d" */
#define COL_WHEN (1u << 4)  /* an RFC 3339 time shown as "5m ago" or "in 3d" */

struct cli_column {
	const char *header; /* "CREATED BY" */
	const char *label;  /* "Created by", in detail views */
	const char *field;  /* JSON member, dots for nesting ("pool.size") */
	unsigned flags;     /* COL_* */
	const char *none;   /* shown for null or missing values; "<none>" when NULL */
	/* Computes the cell instead of field (allocated text); now is for ages. */
	char *(*cell)(const json_t *item, int64_t now);
};

struct cli_kind {
	const char *name;                 /* "namespace": -o name prints "namespace/NAME" */
	const char *plural;               /* "namespaces": "No namespaces found." */
	const char *name_field;           /* the member -o name prints */
	const struct cli_column *columns; /* ending with { NULL } */
};

struct cli_render {
	enum cli_format format;
	int width;   /* fit tables into this many columns; 0: never truncate */
	bool color;  /* bold headers and labels */
	int64_t now; /* seconds since the epoch, for ages */
};

/* A list: a table (wide adds the COL_WIDE columns), the items array (json, yaml), or names. */
int cli_render_list(FILE *out, const struct cli_kind *kind, const json_t *items,
		    const struct cli_render *r);
/* One object: a "Label: value" detail view in table/wide mode, else as cli_render_list. */
int cli_render_object(FILE *out, const struct cli_kind *kind, const json_t *obj,
		      const struct cli_render *r);
/* j with sorted keys and a 2-space indent, then a newline. */
int cli_render_json(FILE *out, const json_t *j);
int cli_render_yaml(FILE *out, const json_t *j);
/* "Label:  value" lines, labels padded to the longest, bold when color. */
void cli_render_pairs(FILE *out, const char *const *labels, char *const *values, size_t n,
		      bool color);

/* The text of one cell (allocated, control characters replaced). */
char *cli_cell_text(const struct cli_column *col, const json_t *item, int64_t now);
/* Member at a dot path, or NULL. */
const json_t *cli_json_path(const json_t *obj, const char *path);

/* Columns taken by s on a terminal: UTF-8 characters, not bytes. */
size_t cli_text_width(const char *s);
/* Shorten s in place to at most width columns, ending in "..." when cut. */
void cli_text_truncate(char *s, size_t width);
/* Copy of s with C0/C1 control characters and DEL replaced (tabs and newlines by a space). */
char *cli_text_sanitize(const char *s);

/* kubectl's ages: "45s", "3m20s", "15m", "2h5m", "10h", "3d4h", "30d", "2y100d", "9y". */
void cli_format_age(int64_t seconds, char *out, size_t size);
/* Parse RFC 3339 ("2026-11-22T15:36:49.123456Z", offsets allowed) to seconds since the epoch. */
int cli_parse_time(const char *s, int64_t *ret);

/* The render settings of ctx. */
struct cli_render cli_render_of(const struct cli_ctx *ctx);
/* Print a list; an empty one in table mode says "No <plural> found." on stderr instead. */
int cli_show_list(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *items);
int cli_show_object(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *obj);
/* j as it is, in -o json or -o yaml (what commands without a kind print). */
int cli_show_raw(struct cli_ctx *ctx, const json_t *j);
/* After a change: "namespace/NAME created" in table mode (nothing with -q), else the object. */
int cli_show_done(struct cli_ctx *ctx, const struct cli_kind *kind, const json_t *obj,
		  const char *what);
