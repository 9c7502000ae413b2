/*
 * blob.c - a blob's plaintext to its stored form and back.
 *
 * Stored form (docs/FORMAT.md, "Blob"):
 *
 *   nonce (12) | AES-256-GCM ciphertext of (flag (1) | payload) | tag (16)
 *
 *   key   the archive's data key
 *   ad    id (32) | type (1)
 *   flag  0: payload is the plaintext itself (raw)
 *         1: payload is one or more zstd frames that decompress to exactly
 *            the plaintext
 *   id    HMAC-SHA-256(id key, plaintext)
 *
 * Every blob is compressed; one whose compressed form is not smaller than
 * its plaintext is stored raw.  (A quick test on a sample, skipping the
 * rest when the sample did not shrink, was measured on the benchmark's
 * standard dataset: it saved no measurable CPU, since zstd already passes
 * incompressible blocks through quickly, and lost 11 MB of 1.6 GB on files
 * that are partly compressible.)  The archive's default level is 2
 * (CAIRN_ZSTD_LEVEL_DEFAULT): on that dataset, cut into 1 MiB pieces,
 * level 2 compresses as fast as level 1 and about 1% smaller; level 3
 * is no smaller again on the archive and costs about 15% more CPU.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "cairn/blob.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "crypto/crypto_internal.h"

#define BLOB_AD_LEN (CAIRN_ID_LEN + 1)
/* The longest payload cairn_blob_open() accepts. */
#define BLOB_PAYLOAD_MAX                                                       \
    (cairn_blob_seal_bound(CAIRN_BLOB_MAX) - 1 - CAIRN_AEAD_OVERHEAD)

struct cairn_blob_codec {
    struct cairn_hmac *hmac;
    struct cairn_aead *aead;
    int level;
    ZSTD_CCtx *cctx;  /* made on first use */
    ZSTD_DCtx *dctx;  /* made on first use */
    uint8_t *scratch; /* compressed payloads being opened */
    size_t scratch_cap;
};

/*
 * Worst-case stored size of a blob of len plaintext bytes: the larger of
 * the zstd bound and len, plus the flag byte and the AEAD overhead.
 * SIZE_MAX if that does not fit a size_t.
 */
size_t cairn_blob_seal_bound(size_t len)
{
    size_t b = ZSTD_compressBound(len);

    if (ZSTD_isError(b) || b < len)
        b = len;
    if (b > SIZE_MAX - 1 - CAIRN_AEAD_OVERHEAD)
        return SIZE_MAX;
    return b + 1 + CAIRN_AEAD_OVERHEAD;
}

/*
 * A codec sealing and opening blobs under keys->id and keys->data, with zstd
 * level level (<= 0: never compress; above ZSTD_maxCLevel(): that).  The
 * keys are copied into OpenSSL contexts; keys may be wiped afterwards.  NULL
 * if out of memory.  Not thread safe: one per thread.
 */
struct cairn_blob_codec *cairn_blob_codec_new(const struct cairn_keys *keys,
                                              int level)
{
    struct cairn_blob_codec *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto err0;
    if ((c->hmac = cairn_hmac_new(keys->id)) == NULL)
        goto err1;
    if ((c->aead = cairn_aead_new(keys->data)) == NULL)
        goto err2;
    if (level > ZSTD_maxCLevel())
        level = ZSTD_maxCLevel();
    c->level = level;

    /* Success! */
    return c;

err2:
    cairn_hmac_free(c->hmac);
err1:
    free(c);
err0:
    return NULL;
}

/* Free c and everything it holds.  NULL is a no-op. */
void cairn_blob_codec_free(struct cairn_blob_codec *c)
{
    if (c == NULL)
        return;
    free(c->scratch);
    ZSTD_freeDCtx(c->dctx);
    ZSTD_freeCCtx(c->cctx);
    cairn_aead_free(c->aead);
    cairn_hmac_free(c->hmac);
    free(c);
}

/* The id of plaintext buf[0..len) into out_id.  0 or CAIRN_ECRYPTO. */
int cairn_blob_id(struct cairn_blob_codec *c, const void *buf, size_t len,
                  uint8_t out_id[CAIRN_ID_LEN])
{
    return cairn_hmac_compute(c->hmac, buf, len, out_id);
}

static void blob_ad(uint8_t ad[BLOB_AD_LEN], const uint8_t id[CAIRN_ID_LEN],
                    uint8_t type)
{
    memcpy(ad, id, CAIRN_ID_LEN);
    ad[CAIRN_ID_LEN] = type;
}

/*
 * Compress src[0..len) at level into dst[0..cap).  The compressed length,
 * or 0 if it failed (the caller then stores the blob raw).
 */
static size_t blob_compress(struct cairn_blob_codec *c, uint8_t *dst,
                            size_t cap, const uint8_t *src, size_t len,
                            int level)
{
    size_t n;

    if (c->cctx == NULL && (c->cctx = ZSTD_createCCtx()) == NULL)
        return 0;
    n = ZSTD_compressCCtx(c->cctx, dst, cap, src, len, level);
    return ZSTD_isError(n) ? 0 : n;
}

/*
 * Seal the plaintext buf[0..len) of a blob of type type and id id into out,
 * which must hold cairn_blob_seal_bound(len) bytes; *out_len receives the
 * stored length.  CAIRN_ERANGE if len > CAIRN_BLOB_MAX, CAIRN_ECRYPTO.  Not
 * thread safe.
 */
int cairn_blob_seal(struct cairn_blob_codec *c, uint8_t type,
                    const uint8_t id[CAIRN_ID_LEN], const void *buf, size_t len,
                    uint8_t *out, size_t *out_len)
{
    const uint8_t *src = buf;
    uint8_t ad[BLOB_AD_LEN];
    /* The payload is compressed straight into its place in out and then
     * encrypted in place: no copy of the blob is made. */
    uint8_t *payload = out + CAIRN_NONCE_LEN + 1;
    size_t cap, clen = 0;
    uint8_t flag = CAIRN_BLOB_RAW;
    int rc;

    if (len > CAIRN_BLOB_MAX)
        return CAIRN_ERANGE;
    blob_ad(ad, id, type);
    /* out holds seal_bound(len): the payload area is at least this. */
    cap = cairn_blob_seal_bound(len) - CAIRN_AEAD_OVERHEAD - 1;

    if (c->level > 0 && len > 0) {
        clen = blob_compress(c, payload, cap, src, len, c->level);
        if (clen > 0 && clen < len)
            flag = CAIRN_BLOB_ZSTD;
    }

    if (flag == CAIRN_BLOB_ZSTD) {
        rc = cairn_aead_seal(c->aead, ad, sizeof(ad), &flag, 1, payload, clen,
                             out);
        *out_len = clen + 1 + CAIRN_AEAD_OVERHEAD;
    } else {
        rc = cairn_aead_seal(c->aead, ad, sizeof(ad), &flag, 1, src, len, out);
        *out_len = len + 1 + CAIRN_AEAD_OVERHEAD;
    }
    return rc;
}

/* Make the codec's scratch space hold at least n bytes. */
static int blob_scratch(struct cairn_blob_codec *c, size_t n)
{
    uint8_t *p;

    if (n <= c->scratch_cap)
        return 0;
    /* Grow by at least half again, to settle after a few blobs, but never
     * past the largest payload a blob can have. */
    if (n < c->scratch_cap + c->scratch_cap / 2)
        n = c->scratch_cap + c->scratch_cap / 2;
    if (n > BLOB_PAYLOAD_MAX)
        n = BLOB_PAYLOAD_MAX;
    if ((p = malloc(n)) == NULL)
        return CAIRN_ENOMEM;
    free(c->scratch);
    c->scratch = p;
    c->scratch_cap = n;
    return 0;
}

/*
 * Decompress src[0..srclen) into out, which must come to exactly raw_len
 * bytes.  0 or CAIRN_ECORRUPT (CAIRN_ENOMEM if no context can be made).
 */
static int blob_decompress(struct cairn_blob_codec *c, uint8_t *out,
                           size_t raw_len, const uint8_t *src, size_t srclen)
{
    size_t n;

    if (c->dctx == NULL && (c->dctx = ZSTD_createDCtx()) == NULL)
        return CAIRN_ENOMEM;
    n = ZSTD_decompressDCtx(c->dctx, out, raw_len, src, srclen);
    if (ZSTD_isError(n) || n != raw_len)
        return CAIRN_ECORRUPT;
    return 0;
}

/*
 * Verify, decrypt and decompress the stored blob stored[0..stored_len) of
 * type type and id id into out[0..raw_len).  CAIRN_ECORRUPT if it does not
 * authenticate, its flag is unknown, or it does not come to exactly raw_len
 * bytes; with verify_id, also if HMAC(out) is not id.  On failure
 * out[0..raw_len) is zeroed (unless raw_len > CAIRN_BLOB_MAX, which is
 * CAIRN_ECORRUPT at once).  CAIRN_ENOMEM, CAIRN_ECRYPTO.  Not thread safe.
 */
int cairn_blob_open(struct cairn_blob_codec *c, uint8_t type,
                    const uint8_t id[CAIRN_ID_LEN], const uint8_t *stored,
                    size_t stored_len, uint8_t *out, size_t raw_len,
                    int verify_id)
{
    uint8_t ad[BLOB_AD_LEN];
    uint8_t got[CAIRN_ID_LEN];
    size_t payload_len;
    uint8_t flag;
    int rc = CAIRN_ECORRUPT;

    if (raw_len > CAIRN_BLOB_MAX)
        goto err0;
    if (stored_len < CAIRN_AEAD_OVERHEAD + 1 ||
        stored_len > cairn_blob_seal_bound(raw_len))
        goto err1;
    payload_len = stored_len - CAIRN_AEAD_OVERHEAD - 1;
    blob_ad(ad, id, type);

    if (payload_len == raw_len) {
        /* Most likely raw: decrypt straight into out. */
        if ((rc = cairn_aead_open_split(c->aead, ad, sizeof(ad), stored,
                                        stored_len, &flag, 1, out)) != 0)
            goto err1;
        if (flag == CAIRN_BLOB_ZSTD) {
            /* Legal, if odd: a frame as long as its content. */
            if ((rc = blob_scratch(c, payload_len)) != 0)
                goto err1;
            if (payload_len > 0)
                memcpy(c->scratch, out, payload_len);
            if ((rc = blob_decompress(c, out, raw_len, c->scratch,
                                      payload_len)) != 0)
                goto err1;
        } else if (flag != CAIRN_BLOB_RAW) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
    } else {
        /* Must be compressed (a raw payload is raw_len long): decrypt to
         * scratch, decompress into out. */
        if ((rc = blob_scratch(c, payload_len)) != 0)
            goto err1;
        if ((rc = cairn_aead_open_split(c->aead, ad, sizeof(ad), stored,
                                        stored_len, &flag, 1, c->scratch)) != 0)
            goto err1;
        if (flag != CAIRN_BLOB_ZSTD) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
        if ((rc = blob_decompress(c, out, raw_len, c->scratch, payload_len)) !=
            0)
            goto err1;
    }

    if (verify_id) {
        if ((rc = cairn_hmac_compute(c->hmac, out, raw_len, got)) != 0)
            goto err1;
        if (!cairn_ct_equal(got, id, CAIRN_ID_LEN)) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
    }

    /* Success! */
    return 0;

err1:
    if (raw_len > 0)
        memset(out, 0, raw_len);
err0:
    return rc;
}
