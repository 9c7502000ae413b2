/*
 * keyfile.c - the archive key wrapped under a passphrase.
 *
 * Key file, version 1 (docs/FORMAT.md, "Key file"); integers little-endian:
 *
 *   offset  size  field
 *        0     4  magic "CRNK"
 *        4     1  version (1)
 *        5     3  reserved, zero
 *        8     8  created_ns, i64, nanoseconds since the Unix epoch
 *       16     1  log2_n   scrypt N = 2^log2_n (10..22)
 *       17     4  r        scrypt r (1..32)
 *       21     4  p        scrypt p (1..16)
 *       25    32  salt     random
 *       57   2+L  label    u16 length L (<= 255) then L bytes (no NUL)
 *     59+L    12  nonce    random
 *     71+L    64  ciphertext
 *    135+L    16  tag
 *   151+L         end of file (nothing may follow)
 *
 *   wrapping key = scrypt(passphrase, salt, N, r, p), 32 bytes
 *   ciphertext | tag = AES-256-GCM(wrapping key, nonce,
 *                                  ad = bytes 0 .. 59+L (all before nonce),
 *                                  plaintext = archive key (32) |
 *                                              archive id (32))
 *
 * A magic or reserved-byte mismatch, a bad length or kdf parameters out of
 * range (those above, and 128 * r * N <= 1 GiB) is CAIRN_ECORRUPT (checked
 * before scrypt runs); a version other than 1 is CAIRN_EVERSION; a tag that
 * does not verify is CAIRN_EAUTH (a wrong passphrase and a tampered file cannot
 * be told apart).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

#define KEYFILE_MAGIC "CRNK"
#define KEYFILE_VERSION 1
#define KEYFILE_SALT_LEN 32
#define KEYFILE_LABEL_MAX 255
/* scrypt memory (128 * r * N) a key file may ask for, as in cairn_scrypt. */
#define KEYFILE_KDF_MEM_MAX ((uint64_t)1 << 30)
#define KEYFILE_PT_LEN (CAIRN_KEY_LEN + CAIRN_ID_LEN)
/* Bytes of a key file besides the label. */
#define KEYFILE_FIXED_LEN (57 + 2 + CAIRN_AEAD_OVERHEAD + KEYFILE_PT_LEN)

/* A parsed key file; the pointers point into the file's bytes. */
struct keyfile {
    struct cairn_keyfile_info info;
    const uint8_t *salt;
    size_t ad_len;         /* bytes before the nonce */
    const uint8_t *sealed; /* nonce | ciphertext | tag */
};

/* The ranges of cairn_scrypt(), memory cap included. */
static int kdf_params_ok(const struct cairn_kdf_params *kdf)
{
    return kdf->log2_n >= 10 && kdf->log2_n <= 22 && kdf->r >= 1 &&
           kdf->r <= 32 && kdf->p >= 1 && kdf->p <= 16 &&
           ((uint64_t)128 * kdf->r << kdf->log2_n) <= KEYFILE_KDF_MEM_MAX;
}

/* Parse and check the structure of buf[0..len); no cryptography. */
static int keyfile_parse(const uint8_t *buf, size_t len, struct keyfile *kf)
{
    struct cairn_reader r;
    const uint8_t *magic, *label;
    uint8_t version, zero[3], log2_n;
    uint16_t label_len;
    uint32_t r_, p_;
    uint64_t created;

    cairn_reader_init(&r, buf, len);
    if (cairn_get_bytes(&r, 4, &magic) != 0 ||
        memcmp(magic, KEYFILE_MAGIC, 4) != 0)
        return CAIRN_ECORRUPT;
    /* The version decides the layout of everything after it. */
    if (cairn_get_u8(&r, &version) != 0)
        return CAIRN_ECORRUPT;
    if (version != KEYFILE_VERSION)
        return CAIRN_EVERSION;
    cairn_get_u8(&r, &zero[0]);
    cairn_get_u8(&r, &zero[1]);
    cairn_get_u8(&r, &zero[2]);
    cairn_get_u64(&r, &created);
    cairn_get_u8(&r, &log2_n);
    cairn_get_u32(&r, &r_);
    cairn_get_u32(&r, &p_);
    cairn_get_bytes(&r, KEYFILE_SALT_LEN, &kf->salt);
    cairn_get_u16(&r, &label_len);
    if (r.err != 0)
        return CAIRN_ECORRUPT;
    if ((zero[0] | zero[1] | zero[2]) != 0 || label_len > KEYFILE_LABEL_MAX)
        return CAIRN_ECORRUPT;
    if (cairn_get_bytes(&r, label_len, &label) != 0 ||
        memchr(label, '\0', label_len) != NULL)
        return CAIRN_ECORRUPT;
    kf->ad_len = len - r.left;
    if (cairn_get_bytes(&r, CAIRN_AEAD_OVERHEAD + KEYFILE_PT_LEN,
                        &kf->sealed) != 0 ||
        r.left != 0)
        return CAIRN_ECORRUPT;

    kf->info.created_ns = (int64_t)created;
    kf->info.kdf.log2_n = log2_n;
    kf->info.kdf.r = r_;
    kf->info.kdf.p = p_;
    if (!kdf_params_ok(&kf->info.kdf))
        return CAIRN_ECORRUPT;
    memcpy(kf->info.label, label, label_len);
    kf->info.label[label_len] = '\0';
    return 0;
}

/*
 * Wrap master and archive_id under pass[0..passlen) with scrypt parameters
 * kdf (NULL: the defaults) and label (NULL: empty; at most 255 bytes) into a
 * new key file.  *out (malloc'ed, the caller frees it) and *out_len receive
 * it.  CAIRN_EINVAL for bad parameters or a long label, CAIRN_ENOMEM,
 * CAIRN_ECRYPTO.  Thread safe.
 */
int cairn_keyfile_create(const uint8_t master[CAIRN_KEY_LEN],
                         const uint8_t archive_id[CAIRN_ID_LEN],
                         const char *pass, size_t passlen,
                         const struct cairn_kdf_params *kdf, const char *label,
                         uint8_t **out, size_t *out_len)
{
    static const struct cairn_kdf_params kdf_default = {
        CAIRN_KDF_DEFAULT_LOG2_N, CAIRN_KDF_DEFAULT_R, CAIRN_KDF_DEFAULT_P};
    struct cairn_buf b;
    struct cairn_aead *aead;
    struct timespec ts;
    uint8_t salt[KEYFILE_SALT_LEN];
    uint8_t wrap[CAIRN_KEY_LEN];
    uint8_t pt[KEYFILE_PT_LEN];
    size_t label_len, ad_len;
    int64_t created = 0;
    int rc;

    if (kdf == NULL)
        kdf = &kdf_default;
    if (label == NULL)
        label = "";
    label_len = strlen(label);
    if (!kdf_params_ok(kdf) || label_len > KEYFILE_LABEL_MAX) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
        created = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

    if ((rc = cairn_random(salt, sizeof(salt))) != 0)
        goto err0;
    if ((rc = cairn_scrypt(pass, passlen, salt, sizeof(salt), kdf, wrap,
                           sizeof(wrap))) != 0)
        goto err1;
    if ((aead = cairn_aead_new(wrap)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }

    /* One allocation of the final size: no stray copies of the file. */
    cairn_buf_init(&b, KEYFILE_FIXED_LEN + label_len);
    if ((rc = cairn_buf_reserve(&b, KEYFILE_FIXED_LEN + label_len)) != 0)
        goto err2;
    cairn_buf_append(&b, KEYFILE_MAGIC, 4);
    cairn_buf_put_u8(&b, KEYFILE_VERSION);
    cairn_buf_append(&b, "\0\0\0", 3);
    cairn_buf_put_u64(&b, (uint64_t)created);
    cairn_buf_put_u8(&b, kdf->log2_n);
    cairn_buf_put_u32(&b, kdf->r);
    cairn_buf_put_u32(&b, kdf->p);
    cairn_buf_append(&b, salt, sizeof(salt));
    cairn_buf_put_str16(&b, label, label_len);
    ad_len = b.len;

    memcpy(pt, master, CAIRN_KEY_LEN);
    memcpy(pt + CAIRN_KEY_LEN, archive_id, CAIRN_ID_LEN);
    if ((rc = cairn_aead_seal(aead, b.data, ad_len, pt, sizeof(pt), NULL, 0,
                              b.data + ad_len)) != 0)
        goto err3;
    b.len = ad_len + CAIRN_AEAD_OVERHEAD + sizeof(pt);

    *out = cairn_buf_steal(&b, out_len);

    /* Success! */
    rc = 0;

err3:
    cairn_wipe(pt, sizeof(pt));
    cairn_buf_free(&b);
err2:
    cairn_aead_free(aead);
err1:
    cairn_wipe(wrap, sizeof(wrap));
err0:
    return rc;
}

/*
 * Unwrap the key file buf[0..len) with pass[0..passlen): the archive key and
 * archive id go to out_master and out_archive_id (written only on success).
 * CAIRN_EAUTH if the passphrase is wrong (or the sealed part was tampered
 * with), CAIRN_ECORRUPT if the file is malformed, CAIRN_EVERSION if its
 * version is not 1, CAIRN_ENOMEM, CAIRN_ECRYPTO.  Thread safe.
 */
int cairn_keyfile_open(const uint8_t *buf, size_t len, const char *pass,
                       size_t passlen, uint8_t out_master[CAIRN_KEY_LEN],
                       uint8_t out_archive_id[CAIRN_ID_LEN])
{
    struct keyfile kf;
    struct cairn_aead *aead;
    uint8_t wrap[CAIRN_KEY_LEN];
    uint8_t pt[KEYFILE_PT_LEN];
    int rc;

    if ((rc = keyfile_parse(buf, len, &kf)) != 0)
        goto err0;
    if ((rc = cairn_scrypt(pass, passlen, kf.salt, KEYFILE_SALT_LEN,
                           &kf.info.kdf, wrap, sizeof(wrap))) != 0)
        goto err1;
    if ((aead = cairn_aead_new(wrap)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    if ((rc = cairn_aead_open(aead, buf, kf.ad_len, kf.sealed,
                              CAIRN_AEAD_OVERHEAD + sizeof(pt), pt)) != 0) {
        if (rc == CAIRN_ECORRUPT)
            rc = CAIRN_EAUTH;
        goto err2;
    }
    memcpy(out_master, pt, CAIRN_KEY_LEN);
    memcpy(out_archive_id, pt + CAIRN_KEY_LEN, CAIRN_ID_LEN);

    /* Success! */
    rc = 0;

err2:
    cairn_wipe(pt, sizeof(pt));
    cairn_aead_free(aead);
err1:
    cairn_wipe(wrap, sizeof(wrap));
err0:
    return rc;
}

/*
 * Read the public header of the key file buf[0..len) into out (no
 * passphrase needed; nothing is verified cryptographically).
 * CAIRN_ECORRUPT or CAIRN_EVERSION as for cairn_keyfile_open.
 */
int cairn_keyfile_info(const uint8_t *buf, size_t len,
                       struct cairn_keyfile_info *out)
{
    struct keyfile kf;
    int rc;

    if ((rc = keyfile_parse(buf, len, &kf)) != 0)
        return rc;
    *out = kf.info;
    return 0;
}
