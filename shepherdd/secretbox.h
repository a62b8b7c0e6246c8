/*
 * Sealed secrets at rest: AES-256-GCM under the daemon's key file. A sealed blob is
 * nonce (12 random bytes) || ciphertext || tag (16 bytes); the additional authenticated data
 * names the blob's purpose ("cluster:lab"), so a blob copied to another row does not open. The
 * key id (the first 8 hex characters of the key's SHA-256) is stored beside each blob, so a
 * changed key is reported as such rather than as a failed decryption.
 *
 * A box is immutable after it is made: any thread may seal and open with it at once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cleanup.h"

struct shp_error;

#define SHD_SECRETBOX_KEY_LEN 32
#define SHD_SECRETBOX_NONCE_LEN 12
#define SHD_SECRETBOX_TAG_LEN 16
#define SHD_SECRETBOX_OVERHEAD (SHD_SECRETBOX_NONCE_LEN + SHD_SECRETBOX_TAG_LEN)
#define SHD_SECRETBOX_KEY_ID_LEN 8          /* hex characters */
#define SHD_SECRETBOX_PLAIN_MAX (64u << 20) /* the largest plaintext sealed or opened */

struct shd_secretbox;

/* A box with the given raw key (copied). NULL only when out of memory. */
struct shd_secretbox *shd_secretbox_new(const unsigned char key[SHD_SECRETBOX_KEY_LEN]);
/*
 * A box with the key in the file at path. An absent file is created (O_EXCL, mode 0600 whatever
 * the umask) holding 32 random bytes. A file that grants any permission to group or others,
 * is not a regular file, or is not exactly 32 bytes long is refused (SHP_E_PERM or SHP_E_INVAL,
 * the message says how to fix it); I/O failures are SHP_E_IO.
 */
struct shd_secretbox *shd_secretbox_load(const char *path, struct shp_error *err);
/* Wipe the key and free; NULL-safe; returns NULL. */
struct shd_secretbox *shd_secretbox_free(struct shd_secretbox *b);
SHP_DEFINE_CLEANUP(struct shd_secretbox *, shd_secretbox_free)

/* The key's id: 8 lower-case hex characters (borrowed, valid as long as b). */
const char *shd_secretbox_key_id(const struct shd_secretbox *b);

/*
 * Seal len bytes of plain (len may be 0) bound to aad (a NUL-terminated purpose string).
 * *ret is an owned buffer of *ret_len = len + SHD_SECRETBOX_OVERHEAD bytes. SHP_E_LIMIT past
 * SHD_SECRETBOX_PLAIN_MAX, SHP_E_INTERNAL when the crypto library fails.
 */
int shd_secretbox_seal(const struct shd_secretbox *b, const void *plain, size_t len,
		       const char *aad, unsigned char **ret, size_t *ret_len,
		       struct shp_error *err) SHP_MUSTCHECK;
/*
 * Open a sealed blob with the same aad. *ret is an owned buffer of *ret_len bytes plus a NUL
 * (so text can be used as a string); release it with shd_secretbox_wipe_free. A blob that is
 * too short, was altered, was sealed for another purpose or under another key fails with
 * SHP_E_INVAL ("cannot be opened"); the message never carries any of the blob.
 */
int shd_secretbox_open(const struct shd_secretbox *b, const unsigned char *blob, size_t len,
		       const char *aad, char **ret, size_t *ret_len,
		       struct shp_error *err) SHP_MUSTCHECK;

/* Wipe n bytes at p, then free it. NULL-safe. */
void shd_secretbox_wipe_free(void *p, size_t n);
