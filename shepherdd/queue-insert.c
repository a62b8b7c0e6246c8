/*
 * The queue's SQL surface on a caller's connection: enqueue (one job or a batch in one
 * statement, unique keys, scheduled jobs, NOTIFY on commit) and the admin functions (get, list,
 * retry, discard, cancel, pause/resume, stats). Nothing here opens a transaction.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "error.h"
#include "json.h"
#include "queue-internal.h"
#include "queue.h"
#include "util.h"

static const char *const state_names[] = {
	"available", "scheduled", "running", "retryable", "completed", "cancelled", "discarded",
};
static const char *const sla_names[] = {"fast", "medium", "long"};

const char *shd_job_state_to_string(enum shd_job_state s)
{
	return shp_enum_to_string(state_names, SHP_ARRAY_SIZE(state_names), (int)s);
}

int shd_job_state_from_string(const char *s)
{
	return shp_enum_from_string(state_names, SHP_ARRAY_SIZE(state_names), s);
}

const char *shd_sla_class_to_string(enum shd_sla_class c)
{
	return shp_enum_to_string(sla_names, SHP_ARRAY_SIZE(sla_names), (int)c);
}

int shd_sla_class_from_string(const char *s)
{
	return shp_enum_from_string(sla_names, SHP_ARRAY_SIZE(sla_names), s);
}

int shd_sla_max_attempts(enum shd_sla_class c)
{
	return c == SHD_SLA_MEDIUM ? 5 : 3;
}

int shd_sla_max_renewals(enum shd_sla_class c)
{
	return c == SHD_SLA_FAST ? 1 : c == SHD_SLA_MEDIUM ? 3 : 10;
}

/* ---- enqueue ------------------------------------------------------------------------------ */

static int check_name(const char *field, const char *v, struct shp_error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n > SHD_JOB_NAME_MAX || !shp_utf8_is_valid(v, n))
		return shp_error_set(err, SHP_E_INVAL, "job %s must be 1 to %d bytes of UTF-8",
				     field, SHD_JOB_NAME_MAX);
	return 0;
}

static int check_object(const char *field, const char *v, struct shp_error *err)
{
	json_auto_t *j = NULL;
	size_t n = strlen(v);

	if (n > SHD_JOB_ARGS_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "job %s exceed %d bytes", field,
				     SHD_JOB_ARGS_MAX);
	j = shp_json_parse_object(v, n, 32, err);
	if (!j)
		return shp_error_prefix(err, "job %s", field);
	return 0;
}

static int check_params(const struct shd_job_params *p, struct shp_error *err)
{
	size_t ntags = 0;

	if (!p->kind)
		return shp_error_set(err, SHP_E_INVAL, "job kind is required");
	if (check_name("kind", p->kind, err) < 0)
		return -(int)err->code;
	if (p->queue && check_name("queue", p->queue, err) < 0)
		return -err->code;
	if (p->unique_key && check_name("unique key", p->unique_key, err) < 0)
		return -err->code;
	if (p->priority < 0 || p->priority > 100)
		return shp_error_set(err, SHP_E_INVAL, "job priority must be 0 to 100");
	if ((unsigned)p->sla >= _SHD_SLA_MAX)
		return shp_error_set(err, SHP_E_INVAL, "job SLA class is unknown");
	if (p->max_attempts < 0 || p->max_attempts > 1000)
		return shp_error_set(err, SHP_E_INVAL, "job max_attempts must be 0 to 1000");
	if (p->args && check_object("args", p->args, err) < 0)
		return -err->code;
	if (p->metadata && check_object("metadata", p->metadata, err) < 0)
		return -err->code;
	for (; p->tags && p->tags[ntags]; ntags++) {
		if (ntags >= SHD_JOB_TAGS_MAX)
			return shp_error_set(err, SHP_E_LIMIT, "more than %d job tags",
					     SHD_JOB_TAGS_MAX);
		if (check_name("tag", p->tags[ntags], err) < 0)
			return -(int)err->code;
	}
	return 0;
}

/* Append s as an element of a PostgreSQL array literal: quoted, NULL for NULL. */
static int array_add(struct shp_buf *b, const char *s)
{
	int r = shp_buf_addch(b, b->len ? ',' : '{');

	if (r < 0)
		return r;
	if (!s)
		return shp_buf_add(b, "NULL");
	r = shp_buf_addch(b, '"');
	while (r == 0 && *s) {
		size_t run = strcspn(s, "\"\\");

		r = shp_buf_addn(b, s, run);
		s += run;
		if (r == 0 && *s) {
			r = shp_buf_addch(b, '\\') ?: shp_buf_addch(b, *s);
			s++;
		}
	}
	return r == 0 ? shp_buf_addch(b, '"') : r;
}

static int array_end(struct shp_buf *b)
{
	return shp_buf_add(b, b->len == 0 ? "{}" : "}");
}

/* Cap of one array parameter of a batch; a larger batch fails with SHP_E_LIMIT. */
#define BATCH_TEXT_MAX ((size_t)64 << 20)

enum { A_KIND, A_QUEUE, A_ARGS, A_META, A_PRIO, A_MAX, A_SLA, A_RUNAT, A_UKEY, A_TAGS, A_N };

/* The tags of one job as a text[] literal, or NULL (no buffer touched) when it has none. */
static int tags_literal(const struct shd_job_params *p, struct shp_buf *out)
{
	int r = 0;

	for (size_t i = 0; p->tags && p->tags[i] && r == 0; i++)
		r = array_add(out, p->tags[i]);
	return r ?: out->len ? array_end(out) : 0;
}

static const char *queue_of(const struct shd_job_params *p)
{
	return p->queue ? p->queue : "default";
}

static const char *args_of(const char *json)
{
	return json ? json : "{}";
}

static int max_attempts_of(const struct shd_job_params *p)
{
	return p->max_attempts ? p->max_attempts : shd_sla_max_attempts(p->sla);
}

/*
 * Which columns a batch sends whole: a column that is the same for every job goes as one
 * element (the statement repeats it), one that is NULL for every job as an empty array. The
 * kinds always go whole: they set the number of rows.
 */
static void batch_shape(const struct shd_job_params *p, size_t n, bool whole[A_N])
{
	for (int k = 0; k < A_N; k++)
		whole[k] = k == A_KIND;
	for (size_t i = 1; i < n; i++) {
		whole[A_QUEUE] |= strcmp(queue_of(&p[i]), queue_of(p)) != 0;
		whole[A_ARGS] |= strcmp(args_of(p[i].args), args_of(p->args)) != 0;
		whole[A_META] |= strcmp(args_of(p[i].metadata), args_of(p->metadata)) != 0;
		whole[A_PRIO] |= p[i].priority != p->priority;
		whole[A_MAX] |= max_attempts_of(&p[i]) != max_attempts_of(p);
		whole[A_SLA] |= p[i].sla != p->sla;
	}
	for (size_t i = 0; i < n; i++) {
		whole[A_RUNAT] |= p[i].run_at_us != 0;
		whole[A_UKEY] |= p[i].unique_key != NULL;
		whole[A_TAGS] |= p[i].tags && p[i].tags[0];
	}
}

/* Add job p's values to the arrays: every whole column, and the others for the first job. */
static int add_job_arrays(struct shp_buf arr[A_N], const struct shd_job_params *p,
			  const bool whole[A_N], bool first)
{
	char num[32], at[40];
	struct shp_buf tags = SHP_BUF_INIT((SHD_JOB_NAME_MAX * 2 + 3) * SHD_JOB_TAGS_MAX + 3);
	int r;

	r = array_add(&arr[A_KIND], p->kind);
	if (r == 0 && (first || whole[A_QUEUE]))
		r = array_add(&arr[A_QUEUE], queue_of(p));
	if (r == 0 && (first || whole[A_ARGS]))
		r = array_add(&arr[A_ARGS], args_of(p->args));
	if (r == 0 && (first || whole[A_META]))
		r = array_add(&arr[A_META], args_of(p->metadata));
	(void)snprintf(num, sizeof(num), "%d", p->priority);
	if (r == 0 && (first || whole[A_PRIO]))
		r = array_add(&arr[A_PRIO], num);
	(void)snprintf(num, sizeof(num), "%d", max_attempts_of(p));
	if (r == 0 && (first || whole[A_MAX]))
		r = array_add(&arr[A_MAX], num);
	if (r == 0 && (first || whole[A_SLA]))
		r = array_add(&arr[A_SLA], shd_sla_class_to_string(p->sla));
	if (p->run_at_us)
		shp_format_rfc3339(p->run_at_us, at, sizeof(at));
	if (r == 0 && whole[A_RUNAT])
		r = array_add(&arr[A_RUNAT], p->run_at_us ? at : NULL);
	if (r == 0 && whole[A_UKEY])
		r = array_add(&arr[A_UKEY], p->unique_key);
	if (r == 0 && whole[A_TAGS]) {
		r = tags_literal(p, &tags);
		r = r ?: array_add(&arr[A_TAGS], tags.len ? tags.buf : NULL);
	}
	shp_buf_release(&tags);
	return r;
}

/*
 * The rows of a batch: unnest pads the shorter arrays with NULLs, and a column sent as one
 * element (see batch_shape) is repeated from it. Tags come as one text[] literal per job.
 */
#define INSERT_INPUT                                                                               \
	" FROM (SELECT t.kind, coalesce(t.queue, ($2::text[])[1]) AS queue,"                       \
	"  coalesce(t.args, ($3::jsonb[])[1]) AS args,"                                            \
	"  coalesce(t.metadata, ($4::jsonb[])[1]) AS metadata,"                                    \
	"  coalesce(t.priority, ($5::smallint[])[1]) AS priority,"                                 \
	"  coalesce(t.max_attempts, ($6::smallint[])[1]) AS max_attempts,"                         \
	"  coalesce(t.sla, ($7::sla_class[])[1]) AS sla, t.run_at, t.unique_key, t.tags, t.ord"    \
	"  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $5::smallint[],"          \
	"   $6::smallint[], $7::sla_class[], $8::timestamptz[], $9::text[], $10::text[])"          \
	"   WITH ORDINALITY AS t(kind, queue, args, metadata, priority, max_attempts, sla,"        \
	"   run_at, unique_key, tags, ord)) t"
#define INSERT_VALUES                                                                              \
	" CASE WHEN run_at > now() THEN 'scheduled'::job_state ELSE 'available'::job_state END,"   \
	" kind, queue, args, metadata, priority, max_attempts, sla,"                               \
	" greatest(coalesce(run_at, now()), now()), unique_key, coalesce(tags::text[], '{}')"
#define INSERT_NOTIFY                                                                              \
	" (SELECT count(pg_notify('shepherd_jobs', q)) FROM (SELECT DISTINCT queue AS q FROM ins"  \
	"  WHERE state = 'available') s)"

/*
 * A batch with unique keys. Ids are drawn up front so each input row knows its id: the rows
 * RETURNING leaves out are the duplicates. The NOTIFY sits in the statement and is delivered
 * when the transaction commits.
 */
static const char insert_sql[] =
	"WITH input AS (SELECT nextval(pg_get_serial_sequence('jobs', 'id')) AS id, "
	"t.*" INSERT_INPUT "),"
	" ins AS (INSERT INTO jobs (id, state, kind, queue, args, metadata, priority, max_attempts,"
	"  sla_class, scheduled_at, unique_key, tags)"
	"  SELECT id," INSERT_VALUES " FROM input ORDER BY ord"
	"  ON CONFLICT (unique_key)"
	"   WHERE unique_key IS NOT NULL AND state NOT IN ('cancelled', 'discarded') DO NOTHING"
	"  RETURNING id, queue, state),"
	" woken AS (SELECT" INSERT_NOTIFY " AS n)"
	" SELECT input.id, ins.id IS NULL, input.unique_key, woken.n"
	" FROM input LEFT JOIN ins ON ins.id = input.id CROSS JOIN woken ORDER BY input.ord";

/*
 * A batch without unique keys cannot meet a duplicate: a plain insert (no speculative
 * insertion, no join back to the input), in the input's order, so RETURNING gives the ids in
 * order. Same parameters as insert_sql ($9 is empty).
 */
static const char insert_plain_sql[] =
	"WITH ins AS (INSERT INTO jobs (state, kind, queue, args, metadata, priority,"
	"  max_attempts, sla_class, scheduled_at, unique_key, tags)"
	" SELECT" INSERT_VALUES INSERT_INPUT " ORDER BY ord RETURNING id, queue, state)"
	" SELECT id, false, NULL," INSERT_NOTIFY " FROM ins";

static const char existing_sql[] =
	"SELECT unique_key, id FROM jobs WHERE unique_key = ANY($1::text[])"
	" AND state NOT IN ('cancelled', 'discarded')";

/* Fill in the ids of the live jobs that hold the duplicates' unique keys. */
static int resolve_duplicates(PGconn *conn, const PGresult *res, struct shd_job_inserted *ret,
			      struct shp_error *err)
{
	struct shp_buf keys = SHP_BUF_INIT(BATCH_TEXT_MAX);
	_cleanup_(PQclearp) PGresult *ex = NULL;
	int n = PQntuples(res), r = 0;

	for (int i = 0; i < n && r == 0; i++)
		if (ret[i].duplicate)
			r = array_add(&keys, shd_db_value(res, i, 2));
	r = r ?: array_end(&keys);
	if (r < 0) {
		shp_buf_release(&keys);
		return shp_error_set(err, -r, "building the unique keys");
	}
	ex = shd_db_exec(conn, existing_sql, 1, (const char *[]){keys.buf}, err);
	shp_buf_release(&keys);
	if (!ex)
		return -err->code;
	for (int i = 0; i < n; i++) {
		if (!ret[i].duplicate)
			continue;
		ret[i].id = 0;
		for (int k = 0; k < PQntuples(ex); k++)
			if (shp_streq(shd_db_value(ex, k, 0), shd_db_value(res, i, 2)))
				ret[i].id = strtoll(shd_db_value(ex, k, 1), NULL, 10);
		if (ret[i].id == 0)
			return shp_error_set(err, SHP_E_CONFLICT,
					     "unique key '%s' is held by a job not yet committed",
					     shd_db_value(res, i, 2));
	}
	return 0;
}

int shd_job_insert_many(PGconn *conn, const struct shd_job_params *p, size_t n,
			struct shd_job_inserted *ret, struct shp_error *err)
{
	ERR_LOCAL(err);
	struct shp_buf arr[A_N];
	_cleanup_(PQclearp) PGresult *res = NULL;
	const char *params[A_N];
	bool any_dup = false, whole[A_N];
	int r = 0;

	if (n == 0 || n > SHD_JOB_BATCH_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "a batch holds 1 to %d jobs",
				     SHD_JOB_BATCH_MAX);
	for (size_t i = 0; i < n; i++)
		if (check_params(&p[i], err) < 0)
			return -err->code;
	for (int k = 0; k < A_N; k++)
		shp_buf_init(&arr[k], BATCH_TEXT_MAX);
	batch_shape(p, n, whole);
	for (size_t i = 0; i < n && r == 0; i++)
		r = add_job_arrays(arr, &p[i], whole, i == 0);
	for (int k = 0; k < A_N && r == 0; k++)
		r = array_end(&arr[k]);
	for (int k = 0; k < A_N; k++)
		params[k] = arr[k].buf;
	if (r == 0) {
		res = shd_db_exec(conn, whole[A_UKEY] ? insert_sql : insert_plain_sql, A_N, params,
				  err);
		if (!res)
			r = -err->code;
	} else {
		r = shp_error_set(err, -r, "building the job batch");
	}
	for (int k = 0; k < A_N; k++)
		shp_buf_release(&arr[k]);
	if (r < 0)
		return r;
	if ((size_t)PQntuples(res) != n)
		return shp_error_set(err, SHP_E_INTERNAL, "enqueue returned %d rows for %zu jobs",
				     PQntuples(res), n);
	for (size_t i = 0; i < n; i++) {
		ret[i].id = strtoll(shd_db_value(res, (int)i, 0), NULL, 10);
		ret[i].duplicate = shd_db_value(res, (int)i, 1)[0] == 't';
		any_dup |= ret[i].duplicate;
	}
	return any_dup ? resolve_duplicates(conn, res, ret, err) : 0;
}

/* One job: the same contract as the batch statement, in a lighter statement. */
#define INSERT_ONE                                                                                 \
	"WITH ins AS (INSERT INTO jobs (state, kind, queue, args, metadata, priority, "            \
	"max_attempts,"                                                                            \
	"  sla_class, scheduled_at, unique_key, tags)"                                             \
	" VALUES (CASE WHEN $8::timestamptz > now() THEN 'scheduled'::job_state"                   \
	"  ELSE 'available'::job_state END, $1, $2, $3::jsonb, $4::jsonb, $5::smallint,"           \
	"  $6::smallint, $7::sla_class, greatest(coalesce($8::timestamptz, now()), now()), $9,"    \
	"  $10::text[])"
#define INSERT_ONE_NOTIFY                                                                          \
	" RETURNING id, queue, state)"                                                             \
	" SELECT id, CASE WHEN state = 'available' THEN pg_notify('shepherd_jobs', queue) END"     \
	" FROM ins"

static const char insert_one_sql[] =
	INSERT_ONE " ON CONFLICT (unique_key)"
		   "  WHERE unique_key IS NOT NULL AND state NOT IN ('cancelled', 'discarded') DO "
		   "NOTHING" INSERT_ONE_NOTIFY;
/* Without a unique key there is nothing to conflict with: no speculative insertion. */
static const char insert_one_plain_sql[] = INSERT_ONE INSERT_ONE_NOTIFY;

static int existing_one(PGconn *conn, const char *key, int64_t *ret_id, struct shp_error *err)
{
	struct shp_buf keys = SHP_BUF_INIT(4 * SHD_JOB_NAME_MAX);
	_cleanup_(PQclearp) PGresult *res = NULL;

	if (array_add(&keys, key) < 0 || array_end(&keys) < 0) {
		shp_buf_release(&keys);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	res = shd_db_exec(conn, existing_sql, 1, (const char *[]){keys.buf}, err);
	shp_buf_release(&keys);
	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_CONFLICT,
				     "unique key '%s' is held by a job not yet committed", key);
	*ret_id = strtoll(shd_db_value(res, 0, 1), NULL, 10);
	return 0;
}

int shd_job_insert(PGconn *conn, const struct shd_job_params *p, struct shd_job_inserted *ret,
		   struct shp_error *err)
{
	ERR_LOCAL(err);
	struct shp_buf tags = SHP_BUF_INIT((SHD_JOB_NAME_MAX * 2 + 3) * SHD_JOB_TAGS_MAX + 3);
	_cleanup_(PQclearp) PGresult *res = NULL;
	char prio[8], max[8], at[40];
	const char *params[10];
	int r = 0;

	if (check_params(p, err) < 0)
		return -err->code;
	for (size_t i = 0; p->tags && p->tags[i] && r == 0; i++)
		r = array_add(&tags, p->tags[i]);
	r = r ?: array_end(&tags);
	if (r < 0) {
		shp_buf_release(&tags);
		return shp_error_set(err, -r, "building the job tags");
	}
	(void)snprintf(prio, sizeof(prio), "%d", p->priority);
	(void)snprintf(max, sizeof(max), "%d",
		       p->max_attempts ? p->max_attempts : shd_sla_max_attempts(p->sla));
	if (p->run_at_us)
		shp_format_rfc3339(p->run_at_us, at, sizeof(at));
	params[0] = p->kind;
	params[1] = p->queue ? p->queue : "default";
	params[2] = p->args ? p->args : "{}";
	params[3] = p->metadata ? p->metadata : "{}";
	params[4] = prio;
	params[5] = max;
	params[6] = shd_sla_class_to_string(p->sla);
	params[7] = p->run_at_us ? at : NULL;
	params[8] = p->unique_key;
	params[9] = tags.buf;
	res = shd_db_exec(conn, p->unique_key ? insert_one_sql : insert_one_plain_sql, 10, params,
			  err);
	shp_buf_release(&tags);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 1) {
		ret->id = strtoll(shd_db_value(res, 0, 0), NULL, 10);
		ret->duplicate = false;
		return 0;
	}
	if (!p->unique_key)
		return shp_error_set(err, SHP_E_INTERNAL, "enqueue returned no row");
	if (existing_one(conn, p->unique_key, &ret->id, err) < 0)
		return -err->code;
	ret->duplicate = true;
	return 0;
}

/* ---- admin -------------------------------------------------------------------------------- */

static json_t *parse_row_json(const char *text, struct shp_error *err)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

	if (!j)
		shp_error_set(err, SHP_E_INTERNAL, "the database returned invalid JSON");
	return j;
}

json_t *shd_job_get(PGconn *conn, int64_t id, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] = "SELECT to_jsonb(j) FROM jobs j WHERE id = $1";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn, sql, 1, (const char *[]){ids}, err);
	if (!res)
		return NULL;
	if (PQntuples(res) == 0) {
		shp_error_set(err, SHP_E_NOTFOUND, "job %" PRId64 " not found", id);
		return NULL;
	}
	return parse_row_json(shd_db_value(res, 0, 0), err);
}

json_t *shd_job_list(PGconn *conn, const struct shd_job_filter *f, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"SELECT coalesce(jsonb_agg(to_jsonb(j) ORDER BY j.id DESC), '[]') FROM"
		" (SELECT * FROM jobs WHERE ($1::job_state IS NULL OR state = $1)"
		"  AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR queue = $3)"
		"  AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $5) j";
	_cleanup_(PQclearp) PGresult *res = NULL;
	json_t *jobs, *out, *last;
	char before[24], limit[16];
	const char *params[5];

	if (f->limit < 1 || f->limit > SHD_JOB_LIST_MAX || f->state >= _SHD_JOB_STATE_MAX ||
	    f->before_id < 0) {
		shp_error_set(err, SHP_E_INVAL, "invalid job filter");
		return NULL;
	}
	(void)snprintf(before, sizeof(before), "%" PRId64, f->before_id);
	(void)snprintf(limit, sizeof(limit), "%d", f->limit);
	params[0] = f->state >= 0 ? state_names[f->state] : NULL;
	params[1] = f->kind;
	params[2] = f->queue;
	params[3] = f->before_id > 0 ? before : NULL;
	params[4] = limit;
	res = shd_db_exec(conn, sql, 5, params, err);
	if (!res)
		return NULL;
	jobs = parse_row_json(shd_db_value(res, 0, 0), err);
	if (!jobs)
		return NULL;
	last = json_array_get(jobs, json_array_size(jobs) - 1);
	out = json_pack("{s:o, s:o}", "jobs", jobs, "next_before_id",
			(int)json_array_size(jobs) == f->limit
				? json_incref(json_object_get(last, "id"))
				: json_null());
	if (!out)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return out;
}

/* Run an id statement that returns one row when it acted; tell why it did not otherwise. */
static int id_action(PGconn *conn, const char *sql, int64_t id, const char *what,
		     struct shp_error *err)
{
	static const char state_sql[] = "SELECT state FROM jobs WHERE id = $1";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn, sql, 1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 1)
		return 0;
	PQclear(res);
	res = shd_db_exec(conn, state_sql, 1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "job %" PRId64 " not found", id);
	return shp_error_set(err, SHP_E_CONFLICT, "cannot %s job %" PRId64 ": it is %s", what, id,
			     shd_db_value(res, 0, 0));
}

int shd_job_retry(PGconn *conn, int64_t id, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"WITH upd AS (UPDATE jobs SET state = 'available', scheduled_at = now(),"
		" finalized_at = NULL, cancel_requested_at = NULL, lease_expires_at = NULL,"
		" max_attempts = greatest(max_attempts, attempt + 1)"
		" WHERE id = $1 AND state IN ('discarded', 'cancelled', 'retryable') RETURNING "
		"queue)"
		" SELECT pg_notify('shepherd_jobs', queue) FROM upd";

	return id_action(conn, sql, id, "retry", err);
}

int shd_job_discard(PGconn *conn, int64_t id, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"UPDATE jobs SET state = 'discarded', finalized_at = now(),"
		" errors = array_append(coalesce(errors, '{}'), jsonb_build_object('attempt', "
		"attempt,"
		"  'at', now(), 'error', 'discarded by an administrator', 'worker', NULL))"
		" WHERE id = $1 AND state IN ('available', 'scheduled', 'retryable') RETURNING id";

	return id_action(conn, sql, id, "discard", err);
}

int shd_job_cancel(PGconn *conn, int64_t id, enum shd_job_state *ret_state, struct shp_error *err)
{
	ERR_LOCAL(err);
	/* every SET expression sees the old row */
	static const char sql[] =
		"WITH upd AS (UPDATE jobs SET"
		" cancel_requested_at = coalesce(cancel_requested_at, now()),"
		" state = CASE WHEN state IN ('available', 'scheduled', 'retryable')"
		"  THEN 'cancelled'::job_state ELSE state END,"
		" finalized_at = CASE WHEN state IN ('available', 'scheduled', 'retryable')"
		"  THEN now() ELSE finalized_at END"
		" WHERE id = $1 RETURNING state)"
		" SELECT state, CASE WHEN state = 'running'"
		"  THEN pg_notify('shepherd_job_cancel', $1::text) END FROM upd";
	_cleanup_(PQclearp) PGresult *res = NULL;
	char ids[24];

	(void)snprintf(ids, sizeof(ids), "%" PRId64, id);
	res = shd_db_exec(conn, sql, 1, (const char *[]){ids}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) == 0)
		return shp_error_set(err, SHP_E_NOTFOUND, "job %" PRId64 " not found", id);
	if (ret_state)
		*ret_state = (enum shd_job_state)shd_job_state_from_string(shd_db_value(res, 0, 0));
	return 0;
}

int shd_queue_pause(PGconn *conn, const char *queue, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"INSERT INTO queues (name, paused_at) VALUES ($1, now()) ON CONFLICT (name)"
		" DO UPDATE SET paused_at = coalesce(queues.paused_at, now())";

	if (check_name("queue", queue, err) < 0)
		return -err->code;
	return shd_db_command(conn, sql, 1, (const char *[]){queue}, err);
}

int shd_queue_resume(PGconn *conn, const char *queue, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"WITH upd AS (UPDATE queues SET paused_at = NULL WHERE name = $1 RETURNING name)"
		" SELECT pg_notify('shepherd_jobs', $1) FROM upd";

	if (check_name("queue", queue, err) < 0)
		return -err->code;
	return shd_db_command(conn, sql, 1, (const char *[]){queue}, err);
}

json_t *shd_queue_stats(PGconn *conn, struct shp_error *err)
{
	ERR_LOCAL(err);
	static const char sql[] =
		"SELECT coalesce(s.queue, q.name), s.state, coalesce(s.n, 0), q.paused_at IS NOT "
		"NULL"
		" FROM (SELECT queue, state::text, count(*) AS n FROM jobs GROUP BY 1, 2) s"
		" FULL JOIN queues q ON q.name = s.queue";
	_cleanup_(PQclearp) PGresult *res = shd_db_exec(conn, sql, 0, NULL, err);
	json_auto_t *queues = json_object();

	if (!res || !queues)
		return NULL;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = shd_db_value(res, i, 0), *state = shd_db_value(res, i, 1);
		json_t *q = json_object_get(queues, name);

		if (!q) {
			q = json_object();
			for (int s = 0; q && s < _SHD_JOB_STATE_MAX; s++)
				json_object_set_new(q, state_names[s], json_integer(0));
			if (!q || json_object_set_new(queues, name, q) < 0) {
				shp_error_set(err, SHP_E_NOMEM, "out of memory");
				return NULL;
			}
		}
		json_object_set_new(q, "paused", json_boolean(shd_db_value(res, i, 3)[0] == 't'));
		if (state)
			json_object_set_new(
				q, state, json_integer(strtoll(shd_db_value(res, i, 2), NULL, 10)));
	}
	return json_pack("{s:O}", "queues", queues);
}
