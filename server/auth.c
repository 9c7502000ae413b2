/*
 * auth.c - the server's authentication primitives: scrypt password hashes,
 * TOTP (liboath), recovery codes, tokens, login throttling and terminal QR
 * codes (libqrencode).  No catalog and no I/O besides the CSPRNG; secrets
 * are wiped after use and compared in constant time.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oath.h>
#include <openssl/evp.h>
#include <qrencode.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

#include "auth.h"

/* ---- password hashes ---- */

#define PW_PREFIX "scrypt$"
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
/* Base64 lengths (with padding) of the salt and of the hash. */
#define PW_SALT_B64 (4 * ((PW_SALT_LEN + 2) / 3))
#define PW_HASH_B64 (4 * ((PW_HASH_LEN + 2) / 3))
/* "scrypt$" + 3 numbers of at most 10 digits + 5 '$' + salt + hash + NUL. */
#define PW_STORED_MAX (7 + 3 * 10 + 5 + PW_SALT_B64 + PW_HASH_B64 + 1)
/* scrypt memory (128 * r * N) a stored hash may ask for, as cairn_scrypt. */
#define PW_KDF_MEM_MAX ((uint64_t)1 << 30)

static const struct cairn_kdf_params kdf_default = {
    CAIRN_KDF_DEFAULT_LOG2_N, CAIRN_KDF_DEFAULT_R, CAIRN_KDF_DEFAULT_P};

/* The ranges of cairn_scrypt(), memory cap included. */
static int kdf_params_ok(const struct cairn_kdf_params *kdf)
{
    return kdf->log2_n >= 10 && kdf->log2_n <= 22 && kdf->r >= 1 &&
           kdf->r <= 32 && kdf->p >= 1 && kdf->p <= 16 &&
           ((uint64_t)128 * kdf->r << kdf->log2_n) <= PW_KDF_MEM_MAX;
}

/* A parsed stored hash. */
struct pw_stored {
    struct cairn_kdf_params kdf;
    uint8_t salt[PW_SALT_LEN];
    uint8_t hash[PW_HASH_LEN];
};

/*
 * Parse the decimal number s[0..len): digits only, no sign, no leading
 * zero, at most UINT32_MAX.  0 or -1.
 */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 10 || (len > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/*
 * Decode the canonical padded base64 s[0..len) of exactly n bytes into
 * out: the length must be right and re-encoding must give s back, so
 * whitespace, bad padding and stray bits are refused.  0 or -1.
 */
static int b64_decode_exact(const char *s, size_t len, uint8_t *out, size_t n)
{
    uint8_t tmp[3 * (PW_HASH_B64 / 4)];
    char enc[PW_HASH_B64 + 1];
    int rc = -1;

    if (n > PW_HASH_LEN || len != 4 * ((n + 2) / 3))
        goto err0;
    if (EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len) !=
        (int)(3 * (len / 4)))
        goto err1;
    EVP_EncodeBlock((unsigned char *)enc, tmp, (int)n);
    if (memcmp(enc, s, len) != 0)
        goto err1;
    memcpy(out, tmp, n);

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(tmp, sizeof(tmp));
    cairn_wipe(enc, sizeof(enc));
err0:
    return rc;
}

/*
 * Parse "scrypt$<log2_n>$<r>$<p>$<salt>$<hash>" into *out.  CAIRN_ECORRUPT
 * if it is malformed or its parameters are outside cairn_scrypt's ranges.
 */
static int pw_parse(const char *stored, struct pw_stored *out)
{
    const char *f[6];
    size_t flen[6];
    const char *p, *end;
    uint32_t log2_n, r, par;
    size_t len, i;

    if (stored == NULL)
        return CAIRN_ECORRUPT;
    len = strnlen(stored, PW_STORED_MAX);
    if (len >= PW_STORED_MAX || strncmp(stored, PW_PREFIX, 7) != 0)
        return CAIRN_ECORRUPT;

    /* Five fields after the prefix: four '$', none in the last field. */
    p = stored + 7;
    end = stored + len;
    for (i = 0; i < 5; i++) {
        const char *d = memchr(p, '$', (size_t)(end - p));

        if ((i < 4) != (d != NULL))
            return CAIRN_ECORRUPT;
        if (d == NULL)
            d = end;
        f[i] = p;
        flen[i] = (size_t)(d - p);
        p = d + 1;
    }

    if (parse_u32(f[0], flen[0], &log2_n) != 0 ||
        parse_u32(f[1], flen[1], &r) != 0 ||
        parse_u32(f[2], flen[2], &par) != 0 || log2_n > 255)
        return CAIRN_ECORRUPT;
    out->kdf.log2_n = (uint8_t)log2_n;
    out->kdf.r = r;
    out->kdf.p = par;
    if (!kdf_params_ok(&out->kdf))
        return CAIRN_ECORRUPT;
    if (b64_decode_exact(f[3], flen[3], out->salt, PW_SALT_LEN) != 0 ||
        b64_decode_exact(f[4], flen[4], out->hash, PW_HASH_LEN) != 0)
        return CAIRN_ECORRUPT;
    return 0;
}

/*
 * Hash the password pw[0..len) with a fresh 16-byte salt and the scrypt
 * parameters kdf (NULL: the defaults) into the text form documented in
 * auth.h; *out is malloc'ed (the caller frees it).  CAIRN_EINVAL for
 * parameters out of cairn_scrypt's ranges, CAIRN_ENOMEM, CAIRN_ECRYPTO.
 * Thread safe.
 */
int srv_password_hash(const char *pw, size_t len,
                      const struct cairn_kdf_params *kdf, char **out)
{
    uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
    char salt64[PW_SALT_B64 + 1], hash64[PW_HASH_B64 + 1];
    char *s;
    int n, rc;

    if (kdf == NULL)
        kdf = &kdf_default;
    if ((pw == NULL && len > 0) || out == NULL || !kdf_params_ok(kdf)) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((rc = cairn_random(salt, sizeof(salt))) != 0)
        goto err0;
    if ((rc = cairn_scrypt(pw, len, salt, sizeof(salt), kdf, hash,
                           sizeof(hash))) != 0)
        goto err1;
    EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof(salt));
    EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof(hash));

    if ((s = malloc(PW_STORED_MAX)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    n = snprintf(s, PW_STORED_MAX, PW_PREFIX "%u$%u$%u$%s$%s",
                 (unsigned)kdf->log2_n, (unsigned)kdf->r, (unsigned)kdf->p,
                 salt64, hash64);
    if (n < 0 || n >= PW_STORED_MAX) {
        free(s);
        rc = CAIRN_EINVAL;
        goto err1;
    }
    *out = s;

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(hash, sizeof(hash));
    cairn_wipe(hash64, sizeof(hash64));
err0:
    return rc;
}

/*
 * Check pw[0..len) against stored (from srv_password_hash).  0 if it
 * matches, CAIRN_EAUTH if not, CAIRN_ECORRUPT if stored is malformed or
 * asks for parameters outside cairn_scrypt's ranges (checked before scrypt
 * runs), CAIRN_ENOMEM/CAIRN_ECRYPTO if scrypt fails.  The hashes are
 * compared in constant time.  Thread safe.
 */
int srv_password_verify(const char *pw, size_t len, const char *stored)
{
    struct pw_stored st;
    uint8_t hash[PW_HASH_LEN];
    int rc;

    if ((rc = pw_parse(stored, &st)) != 0)
        goto err0;
    if (pw == NULL && len > 0) {
        rc = CAIRN_EINVAL;
        goto err1;
    }
    if ((rc = cairn_scrypt(pw, len, st.salt, sizeof(st.salt), &st.kdf, hash,
                           sizeof(hash))) != 0)
        goto err2;
    rc = cairn_ct_equal(hash, st.hash, sizeof(hash)) ? 0 : CAIRN_EAUTH;

err2:
    cairn_wipe(hash, sizeof(hash));
err1:
    cairn_wipe(&st, sizeof(st));
err0:
    return rc;
}

/*
 * 1 if stored uses a smaller log2_n, r or p than kdf (NULL: the defaults),
 * so the password should be hashed again at the next successful login; 0
 * if not; CAIRN_ECORRUPT if stored is malformed (non-zero, so a caller
 * that only tests the result rehashes, which is harmless).  Thread safe.
 */
int srv_password_needs_rehash(const char *stored,
                              const struct cairn_kdf_params *kdf)
{
    struct pw_stored st;
    int rc;

    if (kdf == NULL)
        kdf = &kdf_default;
    if ((rc = pw_parse(stored, &st)) != 0)
        goto err0;
    rc = st.kdf.log2_n < kdf->log2_n || st.kdf.r < kdf->r || st.kdf.p < kdf->p;
    cairn_wipe(&st, sizeof(st));

err0:
    return rc;
}

/* ---- TOTP ---- */

#define TOTP_STEP 30
#define TOTP_DIGITS 6
#define TOTP_SECRET_BYTES 20
/* Longest issuer or account name srv_totp_uri takes. */
#define TOTP_NAME_MAX 256

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_init_rc = OATH_OK;

static void oath_init_once(void)
{
    oath_init_rc = oath_init();
}

/* Initialise liboath once per process.  0 or CAIRN_ECRYPTO. */
static int oath_ready(void)
{
    if (pthread_once(&oath_once, oath_init_once) != 0)
        return CAIRN_ECRYPTO;
    return oath_init_rc == OATH_OK ? 0 : CAIRN_ECRYPTO;
}

/*
 * Write a new TOTP secret (20 random bytes) to out as 32 characters of
 * RFC 4648 base32 without padding, NUL-terminated.  CAIRN_ENOMEM,
 * CAIRN_ECRYPTO.  Thread safe.
 */
int srv_totp_secret_new(char out[SRV_TOTP_SECRET_LEN + 1])
{
    uint8_t raw[TOTP_SECRET_BYTES];
    char *b32 = NULL;
    size_t b32len = 0, i, n = 0;
    int rc;

    if ((rc = oath_ready()) != 0)
        goto err0;
    if ((rc = cairn_random(raw, sizeof(raw))) != 0)
        goto err1;
    if (oath_base32_encode((const char *)raw, sizeof(raw), &b32, &b32len) !=
        OATH_OK) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    for (i = 0; i < b32len; i++) {
        if (b32[i] == '=')
            continue;
        if (n == SRV_TOTP_SECRET_LEN)
            break;
        out[n++] = b32[i];
    }
    if (n != SRV_TOTP_SECRET_LEN || i != b32len) {
        cairn_wipe(out, n);
        rc = CAIRN_ECRYPTO;
        goto err2;
    }
    out[n] = '\0';

    /* Success! */
    rc = 0;

err2:
    cairn_wipe(b32, b32len);
    free(b32);
err1:
    cairn_wipe(raw, sizeof(raw));
err0:
    return rc;
}

/* Is c unreserved in a URI (RFC 3986), so written as is? */
static int uri_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Append s percent-encoded to b (which has room: 3 bytes per byte). */
static void uri_put(struct cairn_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p;
    char e[3];

    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        if (uri_unreserved(*p)) {
            cairn_buf_append(b, p, 1);
        } else {
            e[0] = '%';
            e[1] = hex[*p >> 4];
            e[2] = hex[*p & 0x0f];
            cairn_buf_append(b, e, 3);
        }
    }
}

/* Is s a non-empty string of RFC 4648 base32 letters (no padding)? */
static int is_base32(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '2' && *s <= '7')))
            return 0;
    return 1;
}

/*
 * Write the otpauth URI of a TOTP secret to *out (malloc'ed; the caller
 * frees it; it holds the secret):
 *   otpauth://totp/<issuer>:<account>?secret=<secret>&issuer=<issuer>
 *   &algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded (every byte but the RFC 3986
 * unreserved ones, so a ':' inside a name is %3A).  CAIRN_EINVAL if issuer
 * or account is empty or longer than 256 bytes or secret is not base32
 * (upper case, no padding, at most 128 characters); CAIRN_ENOMEM.
 */
int srv_totp_uri(const char *issuer, const char *account, const char *secret,
                 char **out)
{
    static const char tail[] = "&algorithm=SHA1&digits=6&period=30";
    struct cairn_buf b;
    size_t li, la, ls, need, got;
    int rc;

    if (issuer == NULL || account == NULL || secret == NULL || out == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    li = strnlen(issuer, TOTP_NAME_MAX + 1);
    la = strnlen(account, TOTP_NAME_MAX + 1);
    ls = strnlen(secret, 129);
    if (li == 0 || li > TOTP_NAME_MAX || la == 0 || la > TOTP_NAME_MAX ||
        ls > 128 || !is_base32(secret)) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    need = strlen("otpauth://totp/") + 3 * li + 1 + 3 * la +
           strlen("?secret=") + ls + strlen("&issuer=") + 3 * li + sizeof(tail);

    /* One allocation of the final size: no stray copies of the secret. */
    cairn_buf_init(&b, need);
    if ((rc = cairn_buf_reserve(&b, need)) != 0)
        goto err0;
    cairn_buf_append(&b, "otpauth://totp/", strlen("otpauth://totp/"));
    uri_put(&b, issuer);
    cairn_buf_append(&b, ":", 1);
    uri_put(&b, account);
    cairn_buf_append(&b, "?secret=", strlen("?secret="));
    cairn_buf_append(&b, secret, ls);
    cairn_buf_append(&b, "&issuer=", strlen("&issuer="));
    uri_put(&b, issuer);
    cairn_buf_append(&b, tail, sizeof(tail)); /* with its NUL */
    *out = (char *)cairn_buf_steal(&b, &got);

    /* Success! */
    rc = 0;

err0:
    return rc;
}

/* liboath's comparison callback: 0 if the code matches, 1 if not (never
 * negative, which liboath takes as an error); constant time. */
static int totp_code_cmp(void *handle, const char *test_otp)
{
    return cairn_ct_equal(handle, test_otp, TOTP_DIGITS + 1) ? 0 : 1;
}

/*
 * Check the 6-digit code against secret (base32) at time now (seconds
 * since the epoch), accepting the steps before, at and after now's.  A
 * step <= last_step (the last one accepted; -1 if none) is never tried,
 * so each code works once; of the steps left, the earliest that matches
 * is taken.  On success *out_step is that step.  CAIRN_EAUTH if no step
 * matches (wrong or replayed), CAIRN_EINVAL if code is not exactly six
 * ASCII digits, secret is not base32 or now is negative, CAIRN_ECRYPTO if
 * liboath fails.  Thread safe.
 *
 * Each step is checked alone (window 0 at that step's time) rather than
 * with liboath's window of 1, whose order (now, +1, -1) would let a code
 * that happens to equal both a used step's and a fresh step's be refused.
 */
int srv_totp_verify(const char *secret, const char *code, int64_t now,
                    int64_t last_step, int64_t *out_step)
{
    char want[TOTP_DIGITS + 1];
    char *key = NULL;
    size_t keylen = 0, i;
    int64_t cur, step;
    int k, r, rc;

    if (secret == NULL || code == NULL || out_step == NULL || now < 0) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    for (i = 0; i < TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            break;
    if (i != TOTP_DIGITS || code[TOTP_DIGITS] != '\0') {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    memcpy(want, code, sizeof(want));

    if ((rc = oath_ready()) != 0)
        goto err1;
    if (oath_base32_decode(secret, strlen(secret), &key, &keylen) != OATH_OK ||
        keylen == 0) {
        rc = CAIRN_EINVAL;
        goto err2;
    }

    rc = CAIRN_EAUTH;
    cur = now / TOTP_STEP;
    for (k = -1; k <= 1; k++) {
        step = cur + k;
        if (step < 0 || step <= last_step)
            continue;
        r = oath_totp_validate3_callback(
            key, keylen, (time_t)(step * TOTP_STEP), TOTP_STEP, 0, TOTP_DIGITS,
            0, NULL, NULL, totp_code_cmp, want);
        if (r == 0) {
            *out_step = step;
            rc = 0;
            break;
        }
        if (r != OATH_INVALID_OTP) {
            rc = CAIRN_ECRYPTO;
            break;
        }
    }

err2:
    if (key != NULL) {
        cairn_wipe(key, keylen);
        free(key);
    }
err1:
    cairn_wipe(want, sizeof(want));
err0:
    return rc;
}

/* ---- recovery codes ---- */

/* Crockford's base32 alphabet, lower case: no i, l, o or u to misread. */
static const char rc_alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
#define RC_CHARS 12    /* 60 bits */
#define RC_TEXT_LEN 14 /* "xxxx-xxxx-xxxx" */
#define RC_MAX_CODES 1000

/* Write one new code "xxxx-xxxx-xxxx" and a NUL to out[0..15). */
static int recovery_code_one(char out[RC_TEXT_LEN + 1])
{
    uint8_t raw[8];
    uint64_t v;
    int i, j = 0, rc;

    if ((rc = cairn_random(raw, sizeof(raw))) != 0)
        return rc;
    v = cairn_le64dec(raw);
    for (i = 0; i < RC_CHARS; i++) {
        if (i == 4 || i == 8)
            out[j++] = '-';
        out[j++] = rc_alphabet[(v >> (5 * i)) & 31];
    }
    out[j] = '\0';
    cairn_wipe(raw, sizeof(raw));
    cairn_wipe(&v, sizeof(v));
    return 0;
}

/*
 * Make n (1..1000) new recovery codes, all different: *out_codes receives
 * a malloc'ed array of n malloc'ed strings, freed with
 * srv_recovery_codes_free(*out_codes, n).  CAIRN_EINVAL for n out of
 * range, CAIRN_ENOMEM, CAIRN_ECRYPTO.  Thread safe.
 */
int srv_recovery_codes_new(int n, char ***out_codes)
{
    char **codes;
    int i, j, made = 0, rc;

    if (n < 1 || n > RC_MAX_CODES || out_codes == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((codes = calloc((size_t)n, sizeof(*codes))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    while (made < n) {
        if ((codes[made] = malloc(RC_TEXT_LEN + 1)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
        if ((rc = recovery_code_one(codes[made])) != 0) {
            free(codes[made]);
            goto err1;
        }
        for (j = 0; j < made; j++)
            if (strcmp(codes[j], codes[made]) == 0)
                break;
        if (j < made) {
            /* A repeat (about 2^-60 per pair): draw again. */
            free(codes[made]);
            continue;
        }
        made++;
    }
    *out_codes = codes;

    /* Success! */
    return 0;

err1:
    for (i = 0; i < made; i++) {
        cairn_wipe(codes[i], RC_TEXT_LEN);
        free(codes[i]);
    }
    free(codes);
err0:
    return rc;
}

/*
 * Wipe and free the n codes of srv_recovery_codes_new and their array.
 * codes NULL: does nothing.
 */
void srv_recovery_codes_free(char **codes, int n)
{
    int i;

    if (codes == NULL)
        return;
    for (i = 0; i < n; i++) {
        if (codes[i] == NULL)
            continue;
        cairn_wipe(codes[i], strlen(codes[i]));
        free(codes[i]);
    }
    free(codes);
}

/*
 * Write the stored form of a recovery code, the lowercase hex SHA-256 of
 * its 12 characters (dashes and white space dropped, lowercased, and the
 * look-alikes o -> 0, i and l -> 1 mapped as in Crockford's base32), to
 * out_hex.  So "K7F3 9X2M P4QA" and "k7f3-9x2m-p4qa" give the same hash.
 * CAIRN_EINVAL if what is left is not 12 characters of the alphabet.
 * Thread safe.
 */
int srv_recovery_hash(const char *code, char out_hex[65])
{
    char norm[RC_CHARS];
    uint8_t md[32];
    size_t n = 0;
    const char *p;
    char c;
    int rc = CAIRN_EINVAL;

    if (code == NULL || out_hex == NULL)
        goto err0;
    for (p = code; *p != '\0'; p++) {
        c = *p;
        if (c == '-' || c == ' ' || c == '\t')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == 'o')
            c = '0';
        else if (c == 'i' || c == 'l')
            c = '1';
        if (c == '\0' || strchr(rc_alphabet, c) == NULL || n == RC_CHARS)
            goto err1;
        norm[n++] = c;
    }
    if (n != RC_CHARS)
        goto err1;
    cairn_sha256(norm, n, md);
    cairn_hex_encode(md, sizeof(md), out_hex);

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(norm, sizeof(norm));
err0:
    return rc;
}

/* ---- tokens ---- */

#define TOKEN_RAW 32
#define TOKEN_B64URL 43 /* 32 bytes in base64url without padding */
#define TOKEN_PREFIX_MAX (SRV_TOKEN_MAX - 1 - TOKEN_B64URL)

/*
 * Write prefix (NULL: none; at most 36 bytes of letters, digits, '_', '-'
 * and '.') followed by the base64url of 32 random bytes (43 characters, no
 * padding) and a NUL to out.  CAIRN_EINVAL for a bad prefix,
 * CAIRN_ECRYPTO.  Thread safe.
 */
int srv_token_new(const char *prefix, char out[SRV_TOKEN_MAX])
{
    uint8_t raw[TOKEN_RAW];
    char b64[4 * ((TOKEN_RAW + 2) / 3) + 1];
    size_t plen, i;
    int rc;

    if (prefix == NULL)
        prefix = "";
    plen = strnlen(prefix, TOKEN_PREFIX_MAX + 1);
    if (out == NULL || plen > TOKEN_PREFIX_MAX) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    for (i = 0; i < plen; i++) {
        char c = prefix[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
            rc = CAIRN_EINVAL;
            goto err0;
        }
    }
    if ((rc = cairn_random(raw, sizeof(raw))) != 0)
        goto err1;
    EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
    for (i = 0; i < TOKEN_B64URL; i++) {
        if (b64[i] == '+')
            b64[i] = '-';
        else if (b64[i] == '/')
            b64[i] = '_';
    }
    memcpy(out, prefix, plen);
    memcpy(out + plen, b64, TOKEN_B64URL);
    out[plen + TOKEN_B64URL] = '\0';

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(raw, sizeof(raw));
    cairn_wipe(b64, sizeof(b64));
err0:
    return rc;
}

/* Write the lowercase hex SHA-256 of token (NULL: "") to out_hex. */
void srv_token_hash(const char *token, char out_hex[65])
{
    uint8_t md[32];

    if (token == NULL)
        token = "";
    cairn_sha256(token, strlen(token), md);
    cairn_hex_encode(md, sizeof(md), out_hex);
}

/* ---- login throttling ---- */

static const struct srv_lockout lockout_default = {5, 10, 900, 60};

/*
 * The seconds to wait at time now before the next try of an account (or
 * address) with failures consecutive failures, the last at last_failure,
 * under policy p (NULL: the defaults 5, 10, 900 s, 60 s):
 *   failures < slow_after: 0;
 *   slow_after <= failures < lock_after: what is left of
 *     min(2^(failures - slow_after), max_delay) seconds after last_failure;
 *   failures >= lock_after: locked (*out_locked = 1, if out_locked is not
 *     NULL) until last_failure + lock_secs, then 0 and not locked.
 * A threshold <= 0 turns its stage off.  A clock that went back never
 * makes the wait longer than the delay or lock itself.  Thread safe.
 */
int64_t srv_lockout_wait(const struct srv_lockout *p, int failures,
                         int64_t last_failure, int64_t now, int *out_locked)
{
    int64_t delay, wait;
    int locked = 0;

    if (p == NULL)
        p = &lockout_default;
    delay = 0;
    if (failures > 0 && p->lock_after > 0 && failures >= p->lock_after &&
        p->lock_secs > 0) {
        delay = p->lock_secs;
        locked = 1;
    } else if (failures > 0 && p->slow_after > 0 && failures >= p->slow_after &&
               p->max_delay > 0) {
        int e = failures - p->slow_after;

        delay = e >= 62 ? INT64_MAX : (int64_t)1 << e;
        if (delay > p->max_delay)
            delay = p->max_delay;
    }

    wait = 0;
    if (delay > 0) {
        /* now - last_failure may not fit in an int64_t; its unsigned
         * difference, when now >= last_failure, does. */
        uint64_t elapsed = (uint64_t)now - (uint64_t)last_failure;

        if (now < last_failure)
            wait = delay;
        else if (elapsed < (uint64_t)delay)
            wait = delay - (int64_t)elapsed;
    }
    if (wait == 0)
        locked = 0;
    if (out_locked != NULL)
        *out_locked = locked;
    return wait;
}

/* ---- terminal QR codes ---- */

#define QR_QUIET 4 /* modules of light border, as ISO/IEC 18004 asks */

/*
 * Is the module at (x, y) of the drawing (symbol of width w inside the
 * quiet zone) dark?  Below the quiet zone (the bottom half of the last
 * line when the height is odd) counts as dark: left blank.
 */
static int qr_dark(const QRcode *qr, size_t w, size_t x, size_t y)
{
    if (y >= w + 2 * QR_QUIET)
        return 1;
    if (x < QR_QUIET || y < QR_QUIET || x - QR_QUIET >= w || y - QR_QUIET >= w)
        return 0;
    return qr->data[(y - QR_QUIET) * w + (x - QR_QUIET)] & 1;
}

/*
 * Render text (1 to 2953 bytes, NUL-terminated) as a QR code (byte mode,
 * error correction M, the smallest version that holds it) for a UTF-8
 * terminal with a dark background: light modules are drawn, dark ones are
 * left blank, two module rows per line with the half blocks U+2580 and
 * U+2584, the full block U+2588 and a space, inside a light quiet zone of 4
 * modules.  Every line ends with '\n'.  *out is malloc'ed (the caller frees
 * it).  CAIRN_EINVAL for empty text, CAIRN_ERANGE if it does not fit in a
 * QR code, CAIRN_ENOMEM.  Thread safe (libqrencode is built with pthread).
 */
int srv_qr_terminal(const char *text, char **out)
{
    static const char *const cell[4] = {
        "\xe2\x96\x88", /* top light, bottom light: full block */
        "\xe2\x96\x80", /* top light, bottom dark: upper half */
        "\xe2\x96\x84", /* top dark, bottom light: lower half */
        " ",            /* both dark */
    };
    QRcode *qr;
    size_t w, full, lines, cap, len = 0, x, y;
    const char *c;
    char *s;
    int rc;

    if (text == NULL || out == NULL || *text == '\0') {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    errno = 0;
    if ((qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M)) == NULL) {
        rc = errno == ENOMEM   ? CAIRN_ENOMEM
             : errno == ERANGE ? CAIRN_ERANGE
                               : CAIRN_EINVAL;
        goto err0;
    }
    w = (size_t)qr->width;
    full = w + 2 * QR_QUIET;
    lines = (full + 1) / 2;
    cap = lines * (3 * full + 1) + 1;
    if ((s = malloc(cap)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }

    for (y = 0; y < full; y += 2) {
        for (x = 0; x < full; x++) {
            c = cell[(qr_dark(qr, w, x, y) << 1) | qr_dark(qr, w, x, y + 1)];
            memcpy(s + len, c, strlen(c));
            len += strlen(c);
        }
        s[len++] = '\n';
    }
    s[len] = '\0';
    *out = s;

    /* Success! */
    rc = 0;

err1:
    QRcode_free(qr);
err0:
    return rc;
}

/* ---- strings ---- */

/*
 * 1 if a and b are equal NUL-terminated strings, 0 if not or either is
 * NULL.  The time depends on the lengths only, not on where the strings
 * differ.  Thread safe.
 */
int srv_str_equal(const char *a, const char *b)
{
    size_t la, lb;

    if (a == NULL || b == NULL)
        return 0;
    la = strlen(a);
    lb = strlen(b);
    if (la != lb)
        return 0;
    return cairn_ct_equal(a, b, la);
}
