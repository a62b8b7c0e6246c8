/*
 * Result rows to JSON, in C: the database returns plain columns and this file writes the JSON
 * objects (building JSON inside PostgreSQL costs several times more CPU per row). A column
 * spec names each result column and says how to write it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "error.h"
#include "shepherdd.h"

static int add_json_string(struct shp_buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;
	int r = shp_buf_addch(out, '"');

	for (const char *p = s; r == 0 && *p; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		r = shp_buf_addn(out, run, (size_t)(p - run));
		run = p + 1;
		switch (c) {
		case '"': memcpy(esc, "\\\"", 3); break;
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		default:
			esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
			esc[4] = hex[c >> 4], esc[5] = hex[c & 15], esc[6] = '\0';
			break;
		}
		if (r == 0)
			r = shp_buf_add(out, esc);
	}
	if (r == 0)
		r = shp_buf_add(out, run);
	return r == 0 ? shp_buf_addch(out, '"') : r;
}

/* "2026-11-22 15:53:09.167139+00" (DateStyle ISO, TimeZone UTC) -> "2026-11-22T15:53:09.167139Z" */
static int add_timestamp(struct shp_buf *out, const char *v)
{
	size_t len = strlen(v), n;
	char buf[48];

	/* the date has '-' in it: the zone starts after "YYYY-MM-DD HH:MM:SS" */
	if (len < 19)
		return add_json_string(out, v);
	n = 19 + strcspn(v + 19, "+-Z");
	if (n >= sizeof(buf) - 2)
		return add_json_string(out, v);
	memcpy(buf, v, n);
	buf[10] = 'T';
	buf[n] = 'Z';
	buf[n + 1] = '\0';
	return add_json_string(out, buf);
}

int shd_row_json(const PGresult *res, int row, const struct shd_col *cols, int ncols,
		 struct shp_buf *out)
{
	int r = shp_buf_addch(out, '{');

	for (int i = 0; r == 0 && i < ncols; i++) {
		const char *v = PQgetisnull(res, row, i) ? NULL : PQgetvalue(res, row, i);

		if (i > 0)
			r = shp_buf_addch(out, ',');
		if (r == 0)
			r = add_json_string(out, cols[i].name);
		if (r == 0)
			r = shp_buf_addch(out, ':');
		if (r != 0)
			break;
		if (!v) {
			r = shp_buf_add(out, "null");
			continue;
		}
		switch (cols[i].type) {
		case COL_INT:
		case COL_JSON: r = shp_buf_add(out, v); break;
		case COL_BOOL: r = shp_buf_add(out, v[0] == 't' ? "true" : "false"); break;
		case COL_TIME: r = add_timestamp(out, v); break;
		case COL_TEXT: r = add_json_string(out, v); break;
		}
	}
	return r == 0 ? shp_buf_addch(out, '}') : r;
}

int shd_resp_row(struct shd_resp *resp, int status, const PGresult *res, const struct shd_col *cols,
		 int ncols, struct shp_error *err)
{
	struct shp_buf b = SHP_BUF_INIT(SIZE_MAX / 2);
	size_t len;
	char *text;

	if (PQntuples(res) < 1 || PQnfields(res) < ncols)
		return shp_error_set(err, SHP_E_INTERNAL, "the database returned no row");
	if (shd_row_json(res, 0, cols, ncols, &b) < 0 || !(text = shp_buf_detach(&b, &len))) {
		shp_buf_release(&b);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	shd_resp_release(resp);
	resp->raw = text;
	resp->raw_len = len;
	resp->status = status;
	return 0;
}

json_t *shd_row_to_json(const PGresult *res, int row, const struct shd_col *cols, int ncols)
{
	struct shp_buf b __attribute__((cleanup(shp_buf_releasep))) = SHP_BUF_INIT(SIZE_MAX / 2);

	if (PQntuples(res) <= row || PQnfields(res) < ncols ||
	    shd_row_json(res, row, cols, ncols, &b) < 0)
		return NULL;
	return json_loadb(b.buf, b.len, 0, NULL);
}

int shd_resp_rows_page(struct shd_resp *resp, const PGresult *res, const struct shd_col *cols,
		       int ncols, int limit, int key_col, struct shp_error *err)
{
	struct shp_buf b = SHP_BUF_INIT(SIZE_MAX / 2);
	int n = PQntuples(res);
	bool more = n > limit;
	size_t len;
	char *text;
	int r;

	if (PQnfields(res) < ncols || key_col >= PQnfields(res))
		return shp_error_set(err, SHP_E_INTERNAL,
				     "page query returned an unexpected shape");
	if (more)
		n = limit;
	r = shp_buf_grow(&b, 256 + (size_t)n * 256);
	if (r == 0)
		r = shp_buf_add(&b, "{\"" SHP_API_FIELD_ITEMS "\":[");
	for (int i = 0; r == 0 && i < n; i++) {
		if (i > 0)
			r = shp_buf_addch(&b, ',');
		if (r == 0)
			r = shd_row_json(res, i, cols, ncols, &b);
	}
	if (r == 0)
		r = shp_buf_add(&b, "],\"" SHP_API_FIELD_NEXT_CURSOR "\":");
	if (r == 0 && more) {
		r = shp_buf_addch(&b, '"');
		if (r == 0)
			r = shd_cursor_encode(PQgetvalue(res, n - 1, key_col), &b);
		if (r == 0)
			r = shp_buf_addch(&b, '"');
	} else if (r == 0) {
		r = shp_buf_add(&b, "null");
	}
	if (r == 0)
		r = shp_buf_addch(&b, '}');
	if (r < 0 || !(text = shp_buf_detach(&b, &len))) {
		shp_buf_release(&b);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	shd_resp_release(resp);
	resp->raw = text;
	resp->raw_len = len;
	resp->status = 200;
	return 0;
}
