/*
 * VM revisions: each finished create or modify appends the effective spec as YAML, deflated
 * (spec_z) with its size and SHA-256, numbered per VM under a lock on the vms row; reading
 * one back inflates it and checks both, so a damaged row is reported, never shown.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "buf.h"
#include "canon.h"
#include "db.h"
#include "error.h"
#include "gov.h"
#include "util.h"
#include "yaml.h"
#include "zbuf.h"

/* The schema's limits: spec_size and octet_length(spec_z). */
#define REV_YAML_MAX (4u << 20)
#define REV_Z_MAX (1u << 20)

/* The spec as YAML, its hash, and the deflated bytes as bytea text ("\x..."). */
struct rev_blob {
	struct shp_buf yaml;
	struct shp_buf bytea;
	char sha256[SHP_SHA256_HEX_LEN + 1];
};

static void rev_blob_release(struct rev_blob *b)
{
	shp_buf_release(&b->yaml);
	shp_buf_release(&b->bytea);
}

static int rev_blob_build(const json_t *spec, struct rev_blob *b, struct shp_error *err)
{
	_cleanup_(shp_buf_releasep) struct shp_buf z = SHP_BUF_INIT(REV_Z_MAX);
	int r;

	if (!json_is_object(spec))
		return shp_error_set(err, SHP_E_INVAL, "a revision's spec must be an object");
	r = shp_json_to_yaml(spec, &b->yaml, err);
	if (r < 0)
		return shp_error_prefix(err, "revision spec");
	shp_sha256_hex(b->yaml.buf, b->yaml.len, b->sha256);
	r = shp_zbuf_deflate(b->yaml.buf, b->yaml.len, &z, err);
	if (r < 0)
		return shp_error_prefix(err, "revision spec");
	r = shp_buf_grow(&b->bytea, 2 * z.len + 3);
	if (r < 0)
		return shp_error_set(err, -r, "revision spec: out of memory");
	b->bytea.buf[0] = '\\';
	b->bytea.buf[1] = 'x';
	shp_hex_encode(z.buf, z.len, b->bytea.buf + 2);
	b->bytea.len = 2 + 2 * z.len;
	return 0;
}

/*
 * Lock the VM's row, then read the highest version in a statement of its own: under READ
 * COMMITTED that statement's snapshot sees what a concurrent add committed before our lock
 * was granted, so two adds never pick the same number.
 */
static int next_version(PGconn *conn, const char *vm_id, int *ret, struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *lock = NULL;
	_cleanup_(PQclearp) PGresult *max = NULL;

	lock = shd_db_exec(conn, "SELECT revision FROM vms WHERE id = $1 FOR UPDATE", 1,
			   (const char *[]){vm_id}, err);
	if (!lock)
		return -err->code;
	if (PQntuples(lock) != 1)
		return shp_error_set(err, SHP_E_NOTFOUND, "no VM with id %s", vm_id);
	max = shd_db_exec(conn,
			  "SELECT COALESCE(max(version), 0) FROM vm_revisions WHERE vm_id = $1", 1,
			  (const char *[]){vm_id}, err);
	if (!max)
		return -err->code;
	long cur = strtol(PQgetvalue(lock, 0, 0), NULL, 10);
	long top = strtol(PQgetvalue(max, 0, 0), NULL, 10);

	if ((cur > top ? cur : top) >= INT32_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "VM %s has too many revisions", vm_id);
	*ret = (int)(cur > top ? cur : top) + 1;
	return 0;
}

static void id_or_null(int64_t id, char *buf, size_t size, const char **ret)
{
	(void)snprintf(buf, size, "%" PRId64, id);
	*ret = id > 0 ? buf : NULL;
}

static int insert_revision(PGconn *conn, const struct shd_revision_new *r, const char *vm_id,
			   int version, const struct rev_blob *b, struct shp_error *err)
{
	char ver[16], size[24], tid[24], eid[24], xid[24];
	const char *p_tid, *p_eid, *p_xid;

	(void)snprintf(ver, sizeof(ver), "%d", version);
	(void)snprintf(size, sizeof(size), "%zu", b->yaml.len);
	id_or_null(r->ticket_id, tid, sizeof(tid), &p_tid);
	id_or_null(r->event_id, eid, sizeof(eid), &p_eid);
	id_or_null(r->execution_id, xid, sizeof(xid), &p_xid);
	const char *params[] = {vm_id, ver,   b->bytea.buf, size,         b->sha256,
				p_tid, p_eid, p_xid,        r->plan_hash, r->actor ? r->actor : ""};

	int rc = shd_db_command(conn,
				"INSERT INTO vm_revisions (vm_id, version, spec_z, spec_size,"
				" spec_sha256, ticket_id, event_id, execution_id, plan_hash,"
				" created_by) VALUES ($1, $2, $3::bytea, $4, $5, $6, $7, $8, $9,"
				" $10)",
				10, params, err);
	if (rc == 0)
		rc = shd_db_command(
			conn, "UPDATE vms SET revision = $2, updated_at = now() WHERE id = $1", 2,
			(const char *[]){vm_id, ver}, err);
	return rc;
}

int shd_revision_add(PGconn *conn, const struct shd_revision_new *r, int *ret_version,
		     struct shp_error *err)
{
	_cleanup_(rev_blob_release) struct rev_blob b = {
		.yaml = SHP_BUF_INIT(REV_YAML_MAX),
		.bytea = SHP_BUF_INIT(2 * REV_Z_MAX + 3),
	};
	char vm_id[24];
	int version = 0, rc;

	if (r->vm_id <= 0)
		return shp_error_set(err, SHP_E_INVAL, "a revision needs a VM id");
	rc = rev_blob_build(r->spec, &b, err);
	if (rc < 0)
		return rc;
	(void)snprintf(vm_id, sizeof(vm_id), "%" PRId64, r->vm_id);
	rc = next_version(conn, vm_id, &version, err);
	if (rc == 0)
		rc = insert_revision(conn, r, vm_id, version, &b, err);
	if (rc < 0)
		return shp_error_prefix(err, "adding a revision of VM %s", vm_id);
	if (ret_version)
		*ret_version = version;
	return 0;
}

/* Inflate a stored blob and check it against its recorded size and hash. */
static int rev_inflate(const unsigned char *z, size_t zlen, long size, const char *sha256,
		       struct shp_buf *out, struct shp_error *err)
{
	size_t start = out->len;
	char got[SHP_SHA256_HEX_LEN + 1];
	int r;

	if (size < 0 || size > (long)REV_YAML_MAX)
		return shp_error_set(err, SHP_E_INTERNAL, "recorded size %ld is out of range",
				     size);
	r = shp_zbuf_inflate(z, zlen, (size_t)size, out, err);
	if (r == -SHP_E_PROTO || r == -SHP_E_LIMIT) {
		char why[SHP_ERROR_MSG_MAX];

		(void)snprintf(why, sizeof(why), "%s", err->msg);
		return shp_error_set(err, SHP_E_INTERNAL, "%s", why);
	}
	if (r < 0)
		return r;
	shp_sha256_hex(out->buf + start, out->len - start, got);
	if (out->len - start != (size_t)size || strcmp(got, sha256) != 0) {
		shp_buf_truncate(out, start);
		return shp_error_set(err, SHP_E_INTERNAL,
				     "the inflated spec does not match its recorded size and hash");
	}
	return 0;
}

int shd_revision_yaml(PGconn *conn, int64_t vm_id, int version, struct shp_buf *out,
		      struct shp_error *err)
{
	_cleanup_(PQclearp) PGresult *res = NULL;
	char id[24], ver[16];
	size_t zlen = 0;
	int r;

	(void)snprintf(id, sizeof(id), "%" PRId64, vm_id);
	(void)snprintf(ver, sizeof(ver), "%d", version);
	res = shd_db_exec(conn,
			  "SELECT spec_z, spec_size, spec_sha256 FROM vm_revisions"
			  " WHERE vm_id = $1 AND version = $2",
			  2, (const char *[]){id, ver}, err);
	if (!res)
		return -err->code;
	if (PQntuples(res) != 1)
		return shp_error_set(err, SHP_E_NOTFOUND, "VM %s has no revision %d", id, version);
	unsigned char *z = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &zlen);

	if (!z)
		return shp_error_set(err, SHP_E_NOMEM, "out of memory reading revision %d",
				     version);
	r = rev_inflate(z, zlen, strtol(PQgetvalue(res, 0, 1), NULL, 10), PQgetvalue(res, 0, 2),
			out, err);
	PQfreemem(z);
	if (r < 0)
		return shp_error_prefix(err, "revision %d of VM %s is corrupt", version, id);
	return 0;
}
