/*
 * cairn/crypto.h - keys, ids, authenticated encryption, key files.
 *
 * All primitives come from OpenSSL 3 libcrypto.  See docs/FORMAT.md for the
 * exact derivations; the short version:
 *
 *   archive key (32 random bytes)
 *     --HKDF-SHA-256(salt = archive id, info = "cairn/v1/<purpose>")-->
 *       id      HMAC-SHA-256 key for blob ids
 *       data    AES-256-GCM key for blobs
 *       mac     HMAC-SHA-256 key authenticating index objects, pack
 *               trailers and the config
 *       meta    AES-256-GCM key for the private part of snapshots
 *       chunker seed of the gear table of the chunker
 */
#ifndef CAIRN_CRYPTO_H
#define CAIRN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_KEY_LEN 32
#define CAIRN_ID_LEN 32
#define CAIRN_NONCE_LEN 12
#define CAIRN_TAG_LEN 16
/* Sealed length = plaintext length + CAIRN_AEAD_OVERHEAD (nonce | ct | tag). */
#define CAIRN_AEAD_OVERHEAD (CAIRN_NONCE_LEN + CAIRN_TAG_LEN)

struct cairn_keys {
    uint8_t master[CAIRN_KEY_LEN];
    uint8_t id[CAIRN_KEY_LEN];
    uint8_t data[CAIRN_KEY_LEN];
    uint8_t mac[CAIRN_KEY_LEN];
    uint8_t meta[CAIRN_KEY_LEN];
    uint8_t chunker[CAIRN_KEY_LEN];
};

/* Derive the per-purpose keys from the archive key and the archive id. */
int cairn_keys_derive(const uint8_t master[CAIRN_KEY_LEN],
                      const uint8_t archive_id[CAIRN_ID_LEN],
                      struct cairn_keys *out);
/* Wipe every key in k. */
void cairn_keys_wipe(struct cairn_keys *k);

/* HKDF-SHA-256 (RFC 5869), extract and expand; outlen <= 255*32. */
int cairn_hkdf(const uint8_t *key, size_t keylen, const uint8_t *salt,
               size_t saltlen, const char *info, uint8_t *out, size_t outlen);

/* Fill buf with len bytes from the OS CSPRNG (RAND_bytes). */
int cairn_random(void *buf, size_t len);
/* Wipe memory in a way the compiler cannot remove. */
void cairn_wipe(void *p, size_t n);
/* Constant-time comparison: 1 if equal, 0 if not. */
int cairn_ct_equal(const void *a, const void *b, size_t n);

/* One-shot SHA-256. */
void cairn_sha256(const void *buf, size_t len, uint8_t out[32]);

/* Streaming SHA-256 (for large objects read piecewise). */
struct cairn_sha256;
struct cairn_sha256 *cairn_sha256_new(void);
int cairn_sha256_update(struct cairn_sha256 *s, const void *buf, size_t len);
/* Write the digest and reset s for reuse. */
int cairn_sha256_final(struct cairn_sha256 *s, uint8_t out[32]);
void cairn_sha256_free(struct cairn_sha256 *s);

/* One-shot HMAC-SHA-256. */
int cairn_hmac_sha256(const uint8_t key[CAIRN_KEY_LEN], const void *buf,
                      size_t len, uint8_t out[32]);

/*
 * A reusable HMAC-SHA-256 context under one key (key setup done once).  One
 * per thread; not thread safe.  Used for blob ids.
 */
struct cairn_hmac;
struct cairn_hmac *cairn_hmac_new(const uint8_t key[CAIRN_KEY_LEN]);
int cairn_hmac_compute(struct cairn_hmac *h, const void *buf, size_t len,
                       uint8_t out[32]);
void cairn_hmac_free(struct cairn_hmac *h);

/*
 * A reusable AES-256-GCM context under one key.  One per thread.
 *
 * seal: encrypt the concatenation p1 || p2 (either may be empty) with a
 * fresh random nonce and associated data ad; writes
 *   nonce (12) | ciphertext (n1 + n2) | tag (16)
 * to out, which must hold n1 + n2 + CAIRN_AEAD_OVERHEAD bytes.
 *
 * open: verify and decrypt in (inlen >= CAIRN_AEAD_OVERHEAD) into out, which
 * must hold inlen - CAIRN_AEAD_OVERHEAD bytes.  CAIRN_ECORRUPT if the tag
 * does not verify (nothing useful is left in out then).
 */
struct cairn_aead;
struct cairn_aead *cairn_aead_new(const uint8_t key[CAIRN_KEY_LEN]);
int cairn_aead_seal(struct cairn_aead *a, const void *ad, size_t adlen,
                    const void *p1, size_t n1, const void *p2, size_t n2,
                    uint8_t *out);
int cairn_aead_open(struct cairn_aead *a, const void *ad, size_t adlen,
                    const uint8_t *in, size_t inlen, uint8_t *out);
void cairn_aead_free(struct cairn_aead *a);

/* scrypt parameters; stored in every key file. */
struct cairn_kdf_params {
    uint8_t log2_n; /* N = 2^log2_n; default 15 */
    uint32_t r;     /* default 8 */
    uint32_t p;     /* default 1 */
};
#define CAIRN_KDF_DEFAULT_LOG2_N 15
#define CAIRN_KDF_DEFAULT_R 8
#define CAIRN_KDF_DEFAULT_P 1

/* scrypt(pass, salt) -> out.  CAIRN_EINVAL for parameters out of range
 * (log2_n 10..22, r 1..32, p 1..16). */
int cairn_scrypt(const char *pass, size_t passlen, const uint8_t *salt,
                 size_t saltlen, const struct cairn_kdf_params *params,
                 uint8_t *out, size_t outlen);

/*
 * Key files: the archive key wrapped under a passphrase.  Format in
 * docs/FORMAT.md ("Key file").  A key file's name in the store is the hex
 * SHA-256 of its bytes.
 */
struct cairn_keyfile_info {
    int64_t created_ns;
    struct cairn_kdf_params kdf;
    char label[256]; /* e.g. "ana@laptop"; NUL-terminated, may be empty */
};

/* Create a key file.  *out is malloc'ed; the caller frees it. */
int cairn_keyfile_create(const uint8_t master[CAIRN_KEY_LEN],
                         const uint8_t archive_id[CAIRN_ID_LEN],
                         const char *pass, size_t passlen,
                         const struct cairn_kdf_params *kdf, const char *label,
                         uint8_t **out, size_t *out_len);

/* Unwrap a key file.  CAIRN_EAUTH if the passphrase is wrong,
 * CAIRN_ECORRUPT/CAIRN_EVERSION if the file is damaged or too new. */
int cairn_keyfile_open(const uint8_t *buf, size_t len, const char *pass,
                       size_t passlen, uint8_t out_master[CAIRN_KEY_LEN],
                       uint8_t out_archive_id[CAIRN_ID_LEN]);

/* Read the public header of a key file (no passphrase needed). */
int cairn_keyfile_info(const uint8_t *buf, size_t len,
                       struct cairn_keyfile_info *out);

#endif
