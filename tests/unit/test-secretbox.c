/*
 * Sealed secrets: round trips of every size, any altered byte refused, the purpose and the key
 * both bound, the key id, and the key file (created 0600 under any umask, refused when open to
 * others, of the wrong size, or not a regular file).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "error.h"
#include "secretbox.h"

static const unsigned char key_a[SHD_SECRETBOX_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[SHD_SECRETBOX_KEY_LEN] = "fedcba9876543210fedcba9876543210";

static char dir[64];

static void setup(void)
{
	(void)snprintf(dir, sizeof(dir), "/tmp/shp-secretbox.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char path[128];

	(void)snprintf(path, sizeof(path), "%s/key", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

TestSuite(secretbox, .init = setup, .fini = teardown);

/* Seal plain under box b for aad; the blob in *blob, its length returned. */
static size_t seal(const struct shd_secretbox *b, const void *plain, size_t n, const char *aad,
		   unsigned char **blob)
{
	struct shp_error err = SHP_ERROR_INIT;
	size_t len = 0;

	cr_assert_eq(shd_secretbox_seal(b, plain, n, aad, blob, &len, &err), 0, "%s", err.msg);
	cr_assert_eq(len, n + SHD_SECRETBOX_OVERHEAD);
	return len;
}

static void round_trip(size_t n)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_a);
	struct shp_error err = SHP_ERROR_INIT;
	unsigned char *plain = malloc(n + 1), *blob = NULL;
	char *out = NULL;
	size_t len, out_len = 0;

	for (size_t i = 0; i < n; i++)
		plain[i] = (unsigned char)(i * 7 + 3);
	len = seal(b, plain, n, "cluster:lab", &blob);
	if (n >= 16)
		cr_assert(memmem(blob, len, plain, 16) == NULL, "the plaintext shows in the blob");
	cr_assert_eq(shd_secretbox_open(b, blob, len, "cluster:lab", &out, &out_len, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(out_len, n);
	cr_assert(memcmp(out, plain, n) == 0);
	cr_assert_eq(out[n], '\0');
	shd_secretbox_wipe_free(out, out_len + 1);
	free(blob);
	free(plain);
}

Test(secretbox, round_trip_of_every_size)
{
	round_trip(0);
	round_trip(1);
	round_trip(31);
	round_trip(4096);
	round_trip(3 << 20);
}

Test(secretbox, two_seals_differ)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_a);
	_cleanup_free_ unsigned char *x = NULL;
	_cleanup_free_ unsigned char *y = NULL;

	seal(b, "same", 4, "p", &x);
	seal(b, "same", 4, "p", &y);
	cr_assert(memcmp(x, y, SHD_SECRETBOX_NONCE_LEN) != 0, "the nonce repeated");
}

Test(secretbox, any_altered_byte_is_refused)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_a);
	_cleanup_free_ unsigned char *blob = NULL;
	size_t len = seal(b, "a bearer token", 14, "cluster:lab", &blob);

	/* every byte of nonce, ciphertext and tag, each bit position in turn */
	for (size_t i = 0; i < len; i++) {
		struct shp_error err = SHP_ERROR_INIT;
		char *out = NULL;
		size_t out_len = 0;

		blob[i] ^= (unsigned char)(1u << (i % 8));
		cr_assert_eq(shd_secretbox_open(b, blob, len, "cluster:lab", &out, &out_len, &err),
			     -SHP_E_INVAL, "byte %zu altered and still opened", i);
		cr_assert_null(out);
		cr_assert_not_null(strstr(err.msg, "cannot be opened"), "%s", err.msg);
		blob[i] ^= (unsigned char)(1u << (i % 8));
	}
}

Test(secretbox, truncated_blobs_are_refused)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_a);
	_cleanup_free_ unsigned char *blob = NULL;
	size_t len = seal(b, "token", 5, "x", &blob);

	for (size_t n = 0; n < len; n++) {
		char *out = NULL;
		size_t out_len = 0;

		cr_assert_lt(shd_secretbox_open(b, blob, n, "x", &out, &out_len, NULL), 0,
			     "a blob cut to %zu bytes opened", n);
	}
}

Test(secretbox, another_purpose_is_refused)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_a);
	_cleanup_free_ unsigned char *blob = NULL;
	struct shp_error err = SHP_ERROR_INIT;
	size_t len = seal(b, "token", 5, "cluster:lab", &blob);
	char *out = NULL;
	size_t out_len = 0;

	cr_assert_eq(shd_secretbox_open(b, blob, len, "cluster:prod", &out, &out_len, &err),
		     -SHP_E_INVAL);
	cr_assert_eq(shd_secretbox_open(b, blob, len, "", &out, &out_len, &err), -SHP_E_INVAL);
	cr_assert_eq(shd_secretbox_open(b, blob, len, "cluster:la", &out, &out_len, &err),
		     -SHP_E_INVAL);
}

Test(secretbox, another_key_is_refused)
{
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *a = shd_secretbox_new(key_a);
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(key_b);
	_cleanup_free_ unsigned char *blob = NULL;
	size_t len = seal(a, "token", 5, "cluster:lab", &blob);
	char *out = NULL;
	size_t out_len = 0;

	cr_assert_eq(shd_secretbox_open(b, blob, len, "cluster:lab", &out, &out_len, NULL),
		     -SHP_E_INVAL);
	cr_assert_str_neq(shd_secretbox_key_id(a), shd_secretbox_key_id(b));
}

Test(secretbox, key_id_is_the_start_of_the_keys_sha256)
{
	static const unsigned char zero[SHD_SECRETBOX_KEY_LEN];
	_cleanup_(shd_secretbox_freep) struct shd_secretbox *b = shd_secretbox_new(zero);

	/* sha256 of 32 zero bytes: 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925
	 */
	cr_assert_str_eq(shd_secretbox_key_id(b), "66687aad");
}

static void key_path(char *out, size_t size)
{
	(void)snprintf(out, size, "%s/key", dir);
}

Test(secretbox, key_file_is_created_0600_whatever_the_umask)
{
	struct shp_error err = SHP_ERROR_INIT;
	struct shd_secretbox *b, *again;
	char path[128];
	struct stat st;

	key_path(path, sizeof(path));
	/* this umask would leave 0400: the mode must still be exactly 0600 */
	(void)umask(0277);
	b = shd_secretbox_load(path, &err);
	(void)umask(0022);
	cr_assert_not_null(b, "%s", err.msg);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_size, SHD_SECRETBOX_KEY_LEN);
	/* loading again reads the same key */
	again = shd_secretbox_load(path, &err);
	cr_assert_not_null(again, "%s", err.msg);
	cr_assert_str_eq(shd_secretbox_key_id(b), shd_secretbox_key_id(again));
	shd_secretbox_free(again);
	shd_secretbox_free(b);
}

Test(secretbox, a_key_file_open_to_others_is_refused)
{
	struct shp_error err = SHP_ERROR_INIT;
	char path[128];
	struct shd_secretbox *b;

	key_path(path, sizeof(path));
	b = shd_secretbox_load(path, &err);
	cr_assert_not_null(b, "%s", err.msg);
	shd_secretbox_free(b);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_null(shd_secretbox_load(path, &err));
	cr_assert_eq(err.code, SHP_E_PERM);
	cr_assert_not_null(strstr(err.msg, "mode 0644"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "chmod 600"), "%s", err.msg);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_null(shd_secretbox_load(path, NULL));
}

Test(secretbox, a_key_file_of_the_wrong_size_is_refused)
{
	struct shp_error err = SHP_ERROR_INIT;
	char path[128];
	FILE *f;

	key_path(path, sizeof(path));
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("too short", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_null(shd_secretbox_load(path, &err));
	cr_assert_eq(err.code, SHP_E_INVAL);
	cr_assert_not_null(strstr(err.msg, "holds 9 bytes instead of 32"), "%s", err.msg);
}

Test(secretbox, a_key_path_that_is_a_directory_or_a_symlink_is_refused)
{
	char path[128], target[128];

	key_path(path, sizeof(path));
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_null(shd_secretbox_load(path, NULL));
	cr_assert_eq(rmdir(path), 0);
	(void)snprintf(target, sizeof(target), "%s/elsewhere", dir);
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_null(shd_secretbox_load(path, NULL));
	(void)unlink(target);
}

Test(secretbox, a_missing_directory_is_an_io_error)
{
	struct shp_error err = SHP_ERROR_INIT;

	cr_assert_null(shd_secretbox_load("/nonexistent-shp-dir/key", &err));
	cr_assert_eq(err.code, SHP_E_IO);
	cr_assert_not_null(strstr(err.msg, "/nonexistent-shp-dir/key"), "%s", err.msg);
}
