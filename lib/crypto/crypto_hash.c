/*
 * crypto_hash.c - SHA-256 (one-shot and streaming) and HMAC-SHA-256
 * (one-shot and a reusable keyed context).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/log.h"

struct cairn_sha256 {
    EVP_MD_CTX *ctx;
};

struct cairn_hmac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

/*
 * SHA-256 of buf[0..len) into out.  This cannot report failure; OpenSSL
 * fails here only when out of memory, and then out is zeroed (a name that
 * matches no content, so the mistake is caught where the name is checked)
 * and an error is logged.  Thread safe.
 */
void cairn_sha256(const void *buf, size_t len, uint8_t out[32])
{
    if (EVP_Digest(buf, len, out, NULL, EVP_sha256(), NULL) != 1) {
        memset(out, 0, 32);
        cairn_log(CAIRN_LOG_ERROR, "SHA-256 failed in OpenSSL");
    }
}

/* A new streaming SHA-256 context, or NULL if out of memory. */
struct cairn_sha256 *cairn_sha256_new(void)
{
    struct cairn_sha256 *s;

    if ((s = malloc(sizeof(*s))) == NULL)
        goto err0;
    if ((s->ctx = EVP_MD_CTX_new()) == NULL)
        goto err1;
    if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1)
        goto err2;

    /* Success! */
    return s;

err2:
    EVP_MD_CTX_free(s->ctx);
err1:
    free(s);
err0:
    return NULL;
}

/* Hash buf[0..len) into s.  0 or CAIRN_ECRYPTO. */
int cairn_sha256_update(struct cairn_sha256 *s, const void *buf, size_t len)
{
    if (EVP_DigestUpdate(s->ctx, buf, len) != 1)
        return CAIRN_ECRYPTO;
    return 0;
}

/*
 * Write the digest of everything hashed since creation (or the last final)
 * to out, and reset s for the next object.  0 or CAIRN_ECRYPTO.
 */
int cairn_sha256_final(struct cairn_sha256 *s, uint8_t out[32])
{
    if (EVP_DigestFinal_ex(s->ctx, out, NULL) != 1)
        return CAIRN_ECRYPTO;
    if (EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1)
        return CAIRN_ECRYPTO;
    return 0;
}

/* Free s.  NULL is a no-op. */
void cairn_sha256_free(struct cairn_sha256 *s)
{
    if (s == NULL)
        return;
    EVP_MD_CTX_free(s->ctx);
    free(s);
}

/*
 * HMAC-SHA-256 under key of buf[0..len) into out.  0 or CAIRN_ECRYPTO.
 * Thread safe.  For many messages under one key use cairn_hmac_new().
 */
int cairn_hmac_sha256(const uint8_t key[CAIRN_KEY_LEN], const void *buf,
                      size_t len, uint8_t out[32])
{
    size_t outlen;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, CAIRN_KEY_LEN, buf,
                  len, out, 32, &outlen) == NULL ||
        outlen != 32)
        return CAIRN_ECRYPTO;
    return 0;
}

/*
 * A reusable HMAC-SHA-256 context under key: the key is set up once here,
 * and each cairn_hmac_compute() only re-initialises from the keyed state.
 * NULL if out of memory or OpenSSL fails.  One per thread.
 */
struct cairn_hmac *cairn_hmac_new(const uint8_t key[CAIRN_KEY_LEN])
{
    struct cairn_hmac *h;
    OSSL_PARAM params[2];

    if ((h = malloc(sizeof(*h))) == NULL)
        goto err0;
    if ((h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
        goto err1;
    if ((h->ctx = EVP_MAC_CTX_new(h->mac)) == NULL)
        goto err2;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(h->ctx, key, CAIRN_KEY_LEN, params) != 1)
        goto err3;

    /* Success! */
    return h;

err3:
    EVP_MAC_CTX_free(h->ctx);
err2:
    EVP_MAC_free(h->mac);
err1:
    free(h);
err0:
    return NULL;
}

/*
 * HMAC of buf[0..len) under h's key into out.  0 or CAIRN_ECRYPTO.  Not
 * thread safe.
 */
int cairn_hmac_compute(struct cairn_hmac *h, const void *buf, size_t len,
                       uint8_t out[32])
{
    size_t outlen;

    /* A NULL key re-initialises from the keyed state: no key setup. */
    if (EVP_MAC_init(h->ctx, NULL, 0, NULL) != 1)
        return CAIRN_ECRYPTO;
    if (EVP_MAC_update(h->ctx, buf, len) != 1)
        return CAIRN_ECRYPTO;
    if (EVP_MAC_final(h->ctx, out, &outlen, 32) != 1 || outlen != 32)
        return CAIRN_ECRYPTO;
    return 0;
}

/* Free h (OpenSSL wipes the key state).  NULL is a no-op. */
void cairn_hmac_free(struct cairn_hmac *h)
{
    if (h == NULL)
        return;
    EVP_MAC_CTX_free(h->ctx);
    EVP_MAC_free(h->mac);
    free(h);
}
