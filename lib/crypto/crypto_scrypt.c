/*
 * crypto_scrypt.c - scrypt (RFC 7914) through OpenSSL's EVP_KDF "SCRYPT".
 */
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "cairn/crypto.h"
#include "cairn/err.h"

/*
 * Besides the ranges in crypto.h, the memory scrypt needs (128 * r * N
 * bytes) is capped: the ranges alone would allow 16 GiB (r = 32,
 * N = 2^22), and a damaged key file must not make us try that.
 */
#define SCRYPT_MEM_CAP ((uint64_t)1 << 30)
/* Room for OpenSSL's own bookkeeping beyond V and B. */
#define SCRYPT_MEM_SLACK ((uint64_t)1 << 20)

/*
 * scrypt(pass[0..passlen), salt[0..saltlen), N = 2^log2_n, r, p) into
 * out[0..outlen).  CAIRN_EINVAL for parameters out of range (log2_n
 * 10..22, r 1..32, p 1..16, 128 * r * N <= 1 GiB) or outlen 0,
 * CAIRN_ECRYPTO (or CAIRN_ENOMEM) if OpenSSL fails.  Thread safe.
 */
int cairn_scrypt(const char *pass, size_t passlen, const uint8_t *salt,
                 size_t saltlen, const struct cairn_kdf_params *params,
                 uint8_t *out, size_t outlen)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx;
    OSSL_PARAM op[7], *p = op;
    uint64_t n, maxmem;
    uint32_t r, par;
    int rc = CAIRN_EINVAL;

    if (params->log2_n < 10 || params->log2_n > 22 || params->r < 1 ||
        params->r > 32 || params->p < 1 || params->p > 16 || outlen == 0)
        goto err0;
    n = (uint64_t)1 << params->log2_n;
    r = params->r;
    par = params->p;
    if (128 * (uint64_t)r * n > SCRYPT_MEM_CAP)
        goto err0;
    /* OpenSSL needs 128 * r * (N + 2) for V plus 128 * r * p for B. */
    maxmem = 128 * (uint64_t)r * (n + 2) + 128 * (uint64_t)r * par +
             SCRYPT_MEM_SLACK;
    if (pass == NULL)
        pass = "";
    if (salt == NULL)
        salt = (const uint8_t *)"";

    rc = CAIRN_ECRYPTO;
    if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL)
        goto err0;
    if ((kctx = EVP_KDF_CTX_new(kdf)) == NULL)
        goto err1;
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                             (void *)pass, passlen);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt,
                                             saltlen);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, outlen, op) != 1) {
        OPENSSL_cleanse(out, outlen);
        goto err2;
    }

    /* Success! */
    rc = 0;

err2:
    /* Frees (and cleanses) OpenSSL's copy of the passphrase. */
    EVP_KDF_CTX_free(kctx);
err1:
    EVP_KDF_free(kdf);
err0:
    return rc;
}
