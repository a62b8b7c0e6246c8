/*
 * AES-256-GCM sealing with OpenSSL's EVP interface, and the key file behind it: created once
 * with 32 random bytes and mode 0600, refused when anyone but its owner may read it. Key
 * material and plaintext are wiped with OPENSSL_cleanse before their memory is given back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "error.h"
#include "secretbox.h"
#include "util.h"

struct shd_secretbox {
	unsigned char key[SHD_SECRETBOX_KEY_LEN];
	char key_id[SHD_SECRETBOX_KEY_ID_LEN + 1];
};

SHP_DEFINE_CLEANUP(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

struct shd_secretbox *shd_secretbox_new(const unsigned char key[SHD_SECRETBOX_KEY_LEN])
{
	struct shd_secretbox *b = calloc(1, sizeof(*b));
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (!b)
		return NULL;
	memcpy(b->key, key, SHD_SECRETBOX_KEY_LEN);
	if (EVP_Digest(key, SHD_SECRETBOX_KEY_LEN, digest, &dlen, EVP_sha256(), NULL) != 1)
		return shd_secretbox_free(b);
	shp_hex_encode(digest, dlen, hex);
	memcpy(b->key_id, hex, SHD_SECRETBOX_KEY_ID_LEN);
	b->key_id[SHD_SECRETBOX_KEY_ID_LEN] = '\0';
	return b;
}

struct shd_secretbox *shd_secretbox_free(struct shd_secretbox *b)
{
	if (!b)
		return NULL;
	OPENSSL_cleanse(b, sizeof(*b));
	free(b);
	return NULL;
}

const char *shd_secretbox_key_id(const struct shd_secretbox *b)
{
	return b->key_id;
}

void shd_secretbox_wipe_free(void *p, size_t n)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, n);
	free(p);
}

/* Create path with a fresh random key; -SHP_E_CONFLICT when it appeared meanwhile. */
static int key_create(const char *path, unsigned char key[SHD_SECRETBOX_KEY_LEN],
		      struct shp_error *err)
{
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0 && errno == EEXIST)
		return -SHP_E_CONFLICT;
	if (fd < 0)
		return shp_error_errno(err, errno, "creating key file '%s'", path);
	/* the mode given to open is filtered by the umask; fchmod is not */
	if (fchmod(fd, 0600) < 0)
		r = shp_error_errno(err, errno, "setting the mode of key file '%s'", path);
	else if (RAND_bytes(key, SHD_SECRETBOX_KEY_LEN) != 1)
		r = shp_error_set(err, SHP_E_INTERNAL, "no random bytes for key file '%s'", path);
	else if (write(fd, key, SHD_SECRETBOX_KEY_LEN) != SHD_SECRETBOX_KEY_LEN)
		r = shp_error_errno(err, errno ? errno : EIO, "writing key file '%s'", path);
	else if (fsync(fd) < 0)
		r = shp_error_errno(err, errno, "writing key file '%s'", path);
	if (r < 0) {
		OPENSSL_cleanse(key, SHD_SECRETBOX_KEY_LEN);
		(void)unlink(path);
	}
	return r;
}

/* Read the key of an existing file, after checking its type, mode and size. */
static int key_read(const char *path, unsigned char key[SHD_SECRETBOX_KEY_LEN],
		    struct shp_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return shp_error_errno(err, errno, "opening key file '%s'", path);
	if (fstat(fd, &st) < 0)
		return shp_error_errno(err, errno, "reading key file '%s'", path);
	if (!S_ISREG(st.st_mode))
		return shp_error_set(err, SHP_E_INVAL, "key file '%s' is not a regular file", path);
	if (st.st_mode & 077)
		return shp_error_set(err, SHP_E_PERM,
				     "key file '%s' may be read by others (mode %04o): "
				     "run chmod 600 on it",
				     path, (unsigned)(st.st_mode & 07777));
	if (st.st_size != SHD_SECRETBOX_KEY_LEN)
		return shp_error_set(err, SHP_E_INVAL,
				     "key file '%s' holds %lld bytes instead of %d: it is not a "
				     "shepherd key",
				     path, (long long)st.st_size, SHD_SECRETBOX_KEY_LEN);
	n = read(fd, key, SHD_SECRETBOX_KEY_LEN);
	if (n != SHD_SECRETBOX_KEY_LEN) {
		OPENSSL_cleanse(key, SHD_SECRETBOX_KEY_LEN);
		return shp_error_errno(err, n < 0 ? errno : EIO, "reading key file '%s'", path);
	}
	return 0;
}

struct shd_secretbox *shd_secretbox_load(const char *path, struct shp_error *err)
{
	unsigned char key[SHD_SECRETBOX_KEY_LEN];
	struct shd_secretbox *b;
	int r;

	r = key_create(path, key, err);
	if (r == -SHP_E_CONFLICT)
		r = key_read(path, key, err);
	if (r < 0)
		return NULL;
	b = shd_secretbox_new(key);
	OPENSSL_cleanse(key, sizeof(key));
	if (!b)
		shp_error_set(err, SHP_E_NOMEM, "out of memory");
	return b;
}

/* Set up ctx for AES-256-GCM with key and nonce, in the given direction, and feed aad. */
static bool gcm_init(EVP_CIPHER_CTX *ctx, const struct shd_secretbox *b, const unsigned char *nonce,
		     const char *aad, bool encrypt)
{
	int outl = 0;

	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SHD_SECRETBOX_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, b->key, nonce, encrypt) != 1)
		return false;
	return EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)aad, (int)strlen(aad)) ==
	       1;
}

int shd_secretbox_seal(const struct shd_secretbox *b, const void *plain, size_t len,
		       const char *aad, unsigned char **ret, size_t *ret_len, struct shp_error *err)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *out, *ct;
	int outl = 0, finl = 0;

	if (len > SHD_SECRETBOX_PLAIN_MAX)
		return shp_error_set(err, SHP_E_LIMIT, "secret of %zu bytes is too large to seal",
				     len);
	out = malloc(len + SHD_SECRETBOX_OVERHEAD);
	ctx = EVP_CIPHER_CTX_new();
	if (!out || !ctx) {
		free(out);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	ct = out + SHD_SECRETBOX_NONCE_LEN;
	/* a nonce must never repeat under one key: 96 random bits per seal */
	if (RAND_bytes(out, SHD_SECRETBOX_NONCE_LEN) != 1 || !gcm_init(ctx, b, out, aad, true) ||
	    (len > 0 && EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, ct + outl, &finl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SHD_SECRETBOX_TAG_LEN, ct + len) != 1) {
		shd_secretbox_wipe_free(out, len + SHD_SECRETBOX_OVERHEAD);
		return shp_error_set(err, SHP_E_INTERNAL, "sealing a secret failed");
	}
	*ret = out;
	*ret_len = len + SHD_SECRETBOX_OVERHEAD;
	return 0;
}

int shd_secretbox_open(const struct shd_secretbox *b, const unsigned char *blob, size_t len,
		       const char *aad, char **ret, size_t *ret_len, struct shp_error *err)
{
	_cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
	const unsigned char *ct = blob + SHD_SECRETBOX_NONCE_LEN;
	size_t n;
	char *out;
	int outl = 0, finl = 0;

	if (len < SHD_SECRETBOX_OVERHEAD || len - SHD_SECRETBOX_OVERHEAD > SHD_SECRETBOX_PLAIN_MAX)
		return shp_error_set(err, SHP_E_INVAL,
				     "sealed secret cannot be opened: it has %zu bytes, not a "
				     "sealed blob's length",
				     len);
	n = len - SHD_SECRETBOX_OVERHEAD;
	out = malloc(n + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!out || !ctx) {
		free(out);
		return shp_error_set(err, SHP_E_NOMEM, "out of memory");
	}
	if (!gcm_init(ctx, b, blob, aad, false) ||
	    (n > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)out, &outl, ct, (int)n) != 1) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SHD_SECRETBOX_TAG_LEN,
				(void *)(ct + n)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)out + outl, &finl) != 1) {
		shd_secretbox_wipe_free(out, n + 1);
		return shp_error_set(err, SHP_E_INVAL,
				     "sealed secret cannot be opened: it was altered, or sealed "
				     "for another purpose or with another key");
	}
	out[n] = '\0';
	*ret = out;
	*ret_len = n;
	return 0;
}
