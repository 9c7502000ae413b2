/*
 * crypto_aead.c - AES-256-GCM with a context reused across messages.
 *
 * The key schedule is computed once in cairn_aead_new(); each message only
 * sets a new nonce (EVP_*Init_ex with NULL cipher and key), so sealing and
 * opening a blob allocates nothing.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "crypto_internal.h"

struct cairn_aead {
    EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
};

/* EVP_*Update take an int length: feed longer inputs in pieces. */
#define AEAD_STEP ((size_t)1 << 30)

static int aead_update(EVP_CIPHER_CTX *ctx, int encrypt, uint8_t *out,
                       const uint8_t *in, size_t len)
{
    size_t n;
    int outl;

    while (len > 0) {
        n = (len > AEAD_STEP) ? AEAD_STEP : len;
        if (encrypt) {
            if (EVP_EncryptUpdate(ctx, out, &outl, in, (int)n) != 1)
                return CAIRN_ECRYPTO;
        } else {
            if (EVP_DecryptUpdate(ctx, out, &outl, in, (int)n) != 1)
                return CAIRN_ECRYPTO;
        }
        /* GCM is a stream mode: output is never held back. */
        if (out != NULL && (size_t)outl != n)
            return CAIRN_ECRYPTO;
        if (out != NULL)
            out += n;
        in += n;
        len -= n;
    }
    return 0;
}

/*
 * A reusable AES-256-GCM context under key, or NULL if out of memory or
 * OpenSSL fails.  One per thread.
 */
struct cairn_aead *cairn_aead_new(const uint8_t key[CAIRN_KEY_LEN])
{
    struct cairn_aead *a;

    if ((a = malloc(sizeof(*a))) == NULL)
        goto err0;
    if ((a->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) == NULL)
        goto err1;
    if ((a->enc = EVP_CIPHER_CTX_new()) == NULL)
        goto err2;
    if ((a->dec = EVP_CIPHER_CTX_new()) == NULL)
        goto err3;
    /* The default nonce length of GCM in OpenSSL is 12 bytes. */
    if (EVP_EncryptInit_ex(a->enc, a->cipher, NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(a->dec, a->cipher, NULL, key, NULL) != 1)
        goto err4;

    /* Success! */
    return a;

err4:
    EVP_CIPHER_CTX_free(a->dec);
err3:
    EVP_CIPHER_CTX_free(a->enc);
err2:
    EVP_CIPHER_free(a->cipher);
err1:
    free(a);
err0:
    return NULL;
}

/*
 * Seal p1 || p2 under the given nonce with associated data ad into out:
 * nonce (12) | ciphertext (n1 + n2) | tag (16).  p2 may be exactly
 * out + CAIRN_NONCE_LEN + n1 (encryption in place); no other overlap is
 * allowed.
 */
int cairn_aead_seal_nonce(struct cairn_aead *a,
                          const uint8_t nonce[CAIRN_NONCE_LEN], const void *ad,
                          size_t adlen, const void *p1, size_t n1,
                          const void *p2, size_t n2, uint8_t *out)
{
    uint8_t *ct = out + CAIRN_NONCE_LEN;
    int outl, rc;

    if (out != nonce)
        memmove(out, nonce, CAIRN_NONCE_LEN);
    if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, out) != 1)
        return CAIRN_ECRYPTO;
    if (adlen > 0 && (rc = aead_update(a->enc, 1, NULL, ad, adlen)) != 0)
        return rc;
    if (n1 > 0 && (rc = aead_update(a->enc, 1, ct, p1, n1)) != 0)
        return rc;
    if (n2 > 0 && (rc = aead_update(a->enc, 1, ct + n1, p2, n2)) != 0)
        return rc;
    if (EVP_EncryptFinal_ex(a->enc, ct + n1 + n2, &outl) != 1 || outl != 0)
        return CAIRN_ECRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, CAIRN_TAG_LEN,
                            ct + n1 + n2) != 1)
        return CAIRN_ECRYPTO;
    return 0;
}

/*
 * Seal p1 || p2 (either may be empty) with a fresh random nonce and
 * associated data ad into out, which must hold n1 + n2 + CAIRN_AEAD_OVERHEAD
 * bytes: nonce (12) | ciphertext | tag (16).  p2 may be exactly
 * out + CAIRN_NONCE_LEN + n1 (encryption in place).  0, CAIRN_ECRYPTO.  Not
 * thread safe.
 */
int cairn_aead_seal(struct cairn_aead *a, const void *ad, size_t adlen,
                    const void *p1, size_t n1, const void *p2, size_t n2,
                    uint8_t *out)
{
    int rc;

    if ((rc = cairn_random(out, CAIRN_NONCE_LEN)) != 0)
        return rc;
    return cairn_aead_seal_nonce(a, out, ad, adlen, p1, n1, p2, n2, out);
}

/*
 * Verify and decrypt in[0..inlen) with associated data ad; the first n1
 * plaintext bytes go to out1, the rest to out2.  Both are zeroed on failure.
 */
int cairn_aead_open_split(struct cairn_aead *a, const void *ad, size_t adlen,
                          const uint8_t *in, size_t inlen, uint8_t *out1,
                          size_t n1, uint8_t *out2)
{
    const uint8_t *ct = in + CAIRN_NONCE_LEN;
    size_t ctlen, n2 = 0;
    int outl, rc = CAIRN_ECORRUPT;

    if (inlen < CAIRN_AEAD_OVERHEAD || inlen - CAIRN_AEAD_OVERHEAD < n1) {
        n1 = 0;
        goto err0;
    }
    ctlen = inlen - CAIRN_AEAD_OVERHEAD;
    n2 = ctlen - n1;

    rc = CAIRN_ECRYPTO;
    if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, in) != 1)
        goto err0;
    if (adlen > 0 && (rc = aead_update(a->dec, 0, NULL, ad, adlen)) != 0)
        goto err0;
    if (n1 > 0 && (rc = aead_update(a->dec, 0, out1, ct, n1)) != 0)
        goto err0;
    if (n2 > 0 && (rc = aead_update(a->dec, 0, out2, ct + n1, n2)) != 0)
        goto err0;
    rc = CAIRN_ECRYPTO;
    if (EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, CAIRN_TAG_LEN,
                            (void *)(ct + ctlen)) != 1)
        goto err0;
    if (EVP_DecryptFinal_ex(a->dec, NULL, &outl) != 1) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }

    /* Success! */
    return 0;

err0:
    /* Never leave unauthenticated plaintext behind. */
    if (n1 > 0)
        memset(out1, 0, n1);
    if (n2 > 0)
        memset(out2, 0, n2);
    return rc;
}

/*
 * Verify and decrypt in[0..inlen) (nonce | ciphertext | tag) with
 * associated data ad into out, which must hold inlen - CAIRN_AEAD_OVERHEAD
 * bytes.  CAIRN_ECORRUPT if inlen is too short or the tag does not verify
 * (out is zeroed then), CAIRN_ECRYPTO if OpenSSL fails.  Not thread safe.
 */
int cairn_aead_open(struct cairn_aead *a, const void *ad, size_t adlen,
                    const uint8_t *in, size_t inlen, uint8_t *out)
{
    return cairn_aead_open_split(a, ad, adlen, in, inlen, out, 0, out);
}

/* Free a (OpenSSL wipes the key schedule).  NULL is a no-op. */
void cairn_aead_free(struct cairn_aead *a)
{
    if (a == NULL)
        return;
    EVP_CIPHER_CTX_free(a->dec);
    EVP_CIPHER_CTX_free(a->enc);
    EVP_CIPHER_free(a->cipher);
    free(a);
}
