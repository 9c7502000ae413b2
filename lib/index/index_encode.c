/*
 * index_encode.c - encode an index object: the blobs of one or more packs,
 * authenticated by an HMAC under the mac key (format in cairn/pack.h and
 * docs/FORMAT.md, "Index").
 *
 * The encoder enforces the rules the decoder checks (index_decode.c), so
 * whatever it writes decodes again.
 */
#include <stdint.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/err.h"
#include "cairn/pack.h"

#define INDEX_HEADER_LEN 12 /* "CRNI" | version | 3 zero | npacks u32 */
#define INDEX_PACK_FIXED (CAIRN_ID_LEN + 8 + 4)
#define INDEX_BLOB_FIXED (CAIRN_ID_LEN + 1 + 1 + 4 + 4 + 4 + 4)
#define INDEX_MAC_LEN 32

/* Check one pack's description; add its encoded size to *size. */
static int pack_check(const struct cairn_pack_info *pi, uint64_t *size)
{
    uint64_t end = CAIRN_PACK_HEADER_LEN, limit;
    uint32_t i;

    if (pi->nblobs > 0 && pi->blobs == NULL)
        return CAIRN_EINVAL;
    if (pi->length > CAIRN_PACK_MAX_LEN ||
        (pi->length != 0 &&
         pi->length < CAIRN_PACK_HEADER_LEN + CAIRN_PACK_FOOTER_LEN))
        return CAIRN_EINVAL;
    /* length 0: a pack trailer, whose bounds pack_read.c checks. */
    limit = (pi->length != 0) ? pi->length - CAIRN_PACK_FOOTER_LEN
                              : CAIRN_PACK_MAX_LEN;
    *size += INDEX_PACK_FIXED;
    for (i = 0; i < pi->nblobs; i++) {
        const struct cairn_index_entry *b = &pi->blobs[i];

        if (b->type != CAIRN_BLOB_DATA && b->type != CAIRN_BLOB_TREE)
            return CAIRN_EINVAL;
        if (b->nrefs > CAIRN_TREE_REFS_MAX ||
            (b->nrefs > 0 && (b->type != CAIRN_BLOB_TREE || b->refs == NULL)))
            return CAIRN_EINVAL;
        if (b->raw_length > CAIRN_BLOB_MAX)
            return CAIRN_EINVAL;
        if (b->offset < end || (uint64_t)b->offset + b->length > limit)
            return CAIRN_EINVAL;
        end = (uint64_t)b->offset + b->length;
        *size += INDEX_BLOB_FIXED + (uint64_t)b->nrefs * CAIRN_ID_LEN;
        if (*size > CAIRN_INDEX_MAX_LEN)
            return CAIRN_ERANGE;
    }
    return 0;
}

/*
 * Encode an index object describing packs[0..npacks), appending it to out,
 * with an HMAC-SHA-256 under mac_key over its bytes.  Within each pack,
 * blobs must lie in increasing order without overlap inside
 * [8, length - 8) (any offset >= 8 when length is 0, as in a pack
 * trailer), types be known, refs only on trees (at most
 * CAIRN_TREE_REFS_MAX), raw lengths at most CAIRN_BLOB_MAX: CAIRN_EINVAL
 * otherwise.  CAIRN_ERANGE if the object would exceed CAIRN_INDEX_MAX_LEN
 * or out cannot grow; CAIRN_ENOMEM; CAIRN_ECRYPTO.  out is unchanged on
 * failure.  Thread safe (given distinct out).
 */
int cairn_index_encode(const struct cairn_pack_info *packs, uint32_t npacks,
                       const uint8_t mac_key[CAIRN_KEY_LEN],
                       struct cairn_buf *out)
{
    uint64_t size = INDEX_HEADER_LEN + INDEX_MAC_LEN;
    uint8_t *start, *p;
    uint32_t i, j;
    int rc;

    if ((npacks > 0 && packs == NULL) || mac_key == NULL || out == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    for (i = 0; i < npacks; i++) {
        if ((rc = pack_check(&packs[i], &size)) != 0)
            goto err0;
        if (size > CAIRN_INDEX_MAX_LEN) {
            rc = CAIRN_ERANGE;
            goto err0;
        }
    }
    if ((rc = cairn_buf_reserve(out, (size_t)size)) != 0)
        goto err0;

    start = p = out->data + out->len;
    memcpy(p, "CRNI\x01\x00\x00\x00", 8);
    cairn_le32enc(p + 8, npacks);
    p += INDEX_HEADER_LEN;
    for (i = 0; i < npacks; i++) {
        const struct cairn_pack_info *pi = &packs[i];

        memcpy(p, pi->id, CAIRN_ID_LEN);
        cairn_le64enc(p + 32, pi->length);
        cairn_le32enc(p + 40, pi->nblobs);
        p += INDEX_PACK_FIXED;
        for (j = 0; j < pi->nblobs; j++) {
            const struct cairn_index_entry *b = &pi->blobs[j];

            memcpy(p, b->id, CAIRN_ID_LEN);
            p[32] = b->type;
            p[33] = 0; /* flags */
            cairn_le32enc(p + 34, b->offset);
            cairn_le32enc(p + 38, b->length);
            cairn_le32enc(p + 42, b->raw_length);
            cairn_le32enc(p + 46, b->nrefs);
            p += INDEX_BLOB_FIXED;
            if (b->nrefs > 0) {
                memcpy(p, b->refs, (size_t)b->nrefs * CAIRN_ID_LEN);
                p += (size_t)b->nrefs * CAIRN_ID_LEN;
            }
        }
    }
    if ((rc = cairn_hmac_sha256(mac_key, start, (size_t)(p - start), p)) != 0)
        goto err0;
    out->len += (size_t)size;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}
