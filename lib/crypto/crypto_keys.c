/*
 * crypto_keys.c - the per-purpose keys of an archive, HKDF, randomness,
 * wiping and constant-time comparison.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cairn/crypto.h"
#include "cairn/err.h"

/*
 * Key derivation, version 1 (docs/FORMAT.md, "Keys"):
 *
 *   key = HKDF-SHA-256(ikm  = archive key (32 bytes),
 *                      salt = archive id (32 bytes),
 *                      info = <string below, ASCII, no NUL>,
 *                      L    = 32)
 *
 *   "cairn/v1/id"       id      HMAC-SHA-256 key of blob ids
 *   "cairn/v1/data"     data    AES-256-GCM key of blobs
 *   "cairn/v1/mac"      mac     HMAC-SHA-256 key of index objects, pack
 *                               trailers and the config
 *   "cairn/v1/meta"     meta    AES-256-GCM key of the private part of
 *                               snapshots
 *   "cairn/v1/chunker"  chunker seed of the chunker's gear table
 *
 * The archive key itself is kept as keys->master.  These strings are part of
 * the format: changing one makes every existing archive unreadable.
 */
#define KEY_INFO_ID "cairn/v1/id"
#define KEY_INFO_DATA "cairn/v1/data"
#define KEY_INFO_MAC "cairn/v1/mac"
#define KEY_INFO_META "cairn/v1/meta"
#define KEY_INFO_CHUNKER "cairn/v1/chunker"

/*
 * HKDF-SHA-256 (RFC 5869, extract then expand) of key[0..keylen) with salt
 * (may be empty) and info (a NUL-terminated string; NULL means empty) into
 * out[0..outlen).  CAIRN_EINVAL if outlen is 0 or > 255 * 32, CAIRN_ECRYPTO
 * if OpenSSL fails.  Thread safe.
 */
int cairn_hkdf(const uint8_t *key, size_t keylen, const uint8_t *salt,
               size_t saltlen, const char *info, uint8_t *out, size_t outlen)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx;
    OSSL_PARAM params[5], *p = params;
    int rc = CAIRN_ECRYPTO;

    if (outlen == 0 || outlen > 255 * 32)
        return CAIRN_EINVAL;
    if (info == NULL)
        info = "";

    if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL)
        goto err0;
    if ((kctx = EVP_KDF_CTX_new(kdf)) == NULL)
        goto err1;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                            (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key,
                                             keylen);
    if (saltlen > 0)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                 (void *)salt, saltlen);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                             strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, outlen, params) != 1) {
        OPENSSL_cleanse(out, outlen);
        goto err2;
    }

    /* Success! */
    rc = 0;

err2:
    EVP_KDF_CTX_free(kctx);
err1:
    EVP_KDF_free(kdf);
err0:
    return rc;
}

/*
 * Derive every per-purpose key of an archive from its archive key master and
 * its archive id (see the table above) into out, and copy master into
 * out->master.  On failure out is wiped.  Thread safe.
 */
int cairn_keys_derive(const uint8_t master[CAIRN_KEY_LEN],
                      const uint8_t archive_id[CAIRN_ID_LEN],
                      struct cairn_keys *out)
{
    const struct {
        const char *info;
        uint8_t *key;
    } derive[] = {
        {KEY_INFO_ID, out->id},           {KEY_INFO_DATA, out->data},
        {KEY_INFO_MAC, out->mac},         {KEY_INFO_META, out->meta},
        {KEY_INFO_CHUNKER, out->chunker},
    };
    size_t i;
    int rc;

    memmove(out->master, master, CAIRN_KEY_LEN);
    for (i = 0; i < sizeof(derive) / sizeof(derive[0]); i++) {
        if ((rc = cairn_hkdf(master, CAIRN_KEY_LEN, archive_id, CAIRN_ID_LEN,
                             derive[i].info, derive[i].key, CAIRN_KEY_LEN)) !=
            0)
            goto err0;
    }

    /* Success! */
    return 0;

err0:
    cairn_keys_wipe(out);
    return rc;
}

/* Wipe every key in k.  NULL is a no-op. */
void cairn_keys_wipe(struct cairn_keys *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k, sizeof(*k));
}

/*
 * Fill buf[0..len) from OpenSSL's CSPRNG (seeded by the OS).  CAIRN_ECRYPTO
 * if it fails (buf is then zeroed).  Thread safe.
 */
int cairn_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t n;

    while (len > 0) {
        n = (len > (1u << 30)) ? (1u << 30) : len;
        if (RAND_bytes(p, (int)n) != 1)
            goto err0;
        p += n;
        len -= n;
    }

    /* Success! */
    return 0;

err0:
    memset(buf, 0, (size_t)(p - (uint8_t *)buf) + len);
    return CAIRN_ECRYPTO;
}

/* Overwrite p[0..n) with zeros in a way the compiler cannot elide. */
void cairn_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/*
 * Compare a[0..n) and b[0..n) in time that depends only on n: 1 if equal,
 * 0 if not.
 */
int cairn_ct_equal(const void *a, const void *b, size_t n)
{
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(a, b, n) == 0;
}
