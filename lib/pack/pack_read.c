/*
 * pack_read.c - check a whole pack's structure and read its trailer.
 *
 *   header (8) | blob area | trailer (trailer_len) | trailer_len u32 | "CRNE"
 *
 * The trailer is an index object for this one pack whose pack id is 32
 * zero bytes and whose length is 0 (a pack cannot hold its own hash).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/pack.h"

/* The smallest index object: header (12) and MAC (32). */
#define INDEX_MIN_LEN 44

/*
 * Read the footer (a pack's last 8 bytes): the trailer's length.
 * CAIRN_ECORRUPT if the magic is not "CRNE" or the length is impossible
 * (below the smallest index object or above CAIRN_INDEX_MAX_LEN).  The
 * caller still checks that the pack is long enough to hold it.
 */
int cairn_pack_footer_decode(const uint8_t footer[CAIRN_PACK_FOOTER_LEN],
                             uint32_t *out_trailer_len)
{
    uint32_t tlen;

    if (footer == NULL || memcmp(footer + 4, "CRNE", 4) != 0)
        return CAIRN_ECORRUPT;
    tlen = cairn_le32dec(footer);
    if (tlen < INDEX_MIN_LEN || tlen > CAIRN_INDEX_MAX_LEN)
        return CAIRN_ECORRUPT;
    *out_trailer_len = tlen;
    return 0;
}

/*
 * pack_read_index: check the pack pack[0..len) and decode its trailer
 * (id: the pack's SHA-256 if already known, else NULL): header magic and
 * version (CAIRN_EVERSION for a version other than 1), footer, trailer
 * MAC when mac_key is not NULL, one pack with a zero id and zero length in
 * the trailer, every blob inside the blob area [8, len - 8 - trailer_len)
 * in increasing order without overlap (gaps are allowed).  Anything else
 * wrong is CAIRN_ECORRUPT; CAIRN_ENOMEM, CAIRN_ECRYPTO.  On success *out
 * (free with cairn_index_free) holds one pack whose id is the SHA-256 of
 * the bytes and whose length is len.  Thread safe.
 */
static int pack_read_index(const uint8_t *pack, size_t len,
                           const uint8_t *mac_key,
                           const uint8_t id[CAIRN_ID_LEN],
                           struct cairn_index **out)
{
    static const uint8_t zero_id[CAIRN_ID_LEN] = {0};
    struct cairn_index *idx = NULL;
    struct cairn_pack_info *pi;
    size_t area_end;
    uint32_t tlen, i;
    int rc;

    if (pack == NULL || len < CAIRN_PACK_HEADER_LEN + CAIRN_PACK_FOOTER_LEN ||
        len > CAIRN_PACK_MAX_LEN || memcmp(pack, "CRNP", 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (pack[4] != 1) {
        rc = CAIRN_EVERSION;
        goto err0;
    }
    if (pack[5] != 0 || pack[6] != 0 || pack[7] != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if ((rc = cairn_pack_footer_decode(pack + len - CAIRN_PACK_FOOTER_LEN,
                                       &tlen)) != 0)
        goto err0;
    if (tlen > len - CAIRN_PACK_HEADER_LEN - CAIRN_PACK_FOOTER_LEN) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    area_end = len - CAIRN_PACK_FOOTER_LEN - tlen;
    if ((rc = cairn_index_decode(pack + area_end, tlen, mac_key, &idx)) != 0)
        goto err0;

    /* The index decoder has checked order and overlap; add the bounds. */
    if (idx->npacks != 1) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    pi = &idx->packs[0];
    if (pi->length != 0 || memcmp(pi->id, zero_id, CAIRN_ID_LEN) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    for (i = 0; i < pi->nblobs; i++) {
        if (pi->blobs[i].offset < CAIRN_PACK_HEADER_LEN ||
            (uint64_t)pi->blobs[i].offset + pi->blobs[i].length > area_end) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
    }
    if (id != NULL)
        memcpy(pi->id, id, CAIRN_ID_LEN);
    else
        cairn_sha256(pack, len, pi->id);
    pi->length = len;
    *out = idx;

    /* Success! */
    return 0;

err1:
    cairn_index_free(idx);
err0:
    /* Failure! */
    return rc;
}

/*
 * pack_read_index, hashing the pack here: *out's packs[0].id is the
 * SHA-256 of pack[0..len).  Errors as above.  Thread safe.
 */
int cairn_pack_read_index(const uint8_t *pack, size_t len,
                          const uint8_t *mac_key, struct cairn_index **out)
{
    return pack_read_index(pack, len, mac_key, NULL, out);
}

/*
 * As cairn_pack_read_index, for a caller that has hashed the pack's bytes
 * already (while reading its blobs): packs[0].id of *out is id, taken as
 * it is.
 */
int cairn_pack_read_index_hashed(const uint8_t *pack, size_t len,
                                 const uint8_t *mac_key,
                                 const uint8_t id[CAIRN_ID_LEN],
                                 struct cairn_index **out)
{
    if (id == NULL)
        return CAIRN_EINVAL;
    return pack_read_index(pack, len, mac_key, id, out);
}
