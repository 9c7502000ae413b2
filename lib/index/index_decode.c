/*
 * index_decode.c - decode an index object (or a pack trailer) into one
 * allocation:
 *
 *   struct cairn_index | packs[] | blobs[] (all packs') | refs (all blobs')
 *
 * The input is hostile (a server reads index objects without keys).  Pass
 * 1 checks every count and length against the bytes that remain, and the
 * format's rules (index_encode.c); only then is memory allocated, sized
 * from what pass 1 counted.  Pass 2 fills it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/err.h"
#include "cairn/pack.h"

#define INDEX_HEADER_LEN 12
#define INDEX_PACK_FIXED (CAIRN_ID_LEN + 8 + 4)
#define INDEX_BLOB_FIXED (CAIRN_ID_LEN + 1 + 1 + 4 + 4 + 4 + 4)
#define INDEX_MAC_LEN 32
#define ALIGN 16

static size_t align_up(size_t n)
{
    return (n + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

/*
 * Pass 1 over the body body[0..n): check it and count blobs and refs.
 */
static int index_scan(const uint8_t *p, size_t n, uint32_t npacks,
                      size_t *out_nblobs, size_t *out_nrefs)
{
    size_t nblobs = 0, nrefs = 0;
    uint64_t length, end, limit, off, blen;
    uint32_t i, j, nb, nr;
    uint8_t type;

    for (i = 0; i < npacks; i++) {
        if (n < INDEX_PACK_FIXED)
            return -1;
        length = cairn_le64dec(p + 32);
        nb = cairn_le32dec(p + 40);
        p += INDEX_PACK_FIXED;
        n -= INDEX_PACK_FIXED;
        if (length > CAIRN_PACK_MAX_LEN ||
            (length != 0 &&
             length < CAIRN_PACK_HEADER_LEN + CAIRN_PACK_FOOTER_LEN))
            return -1;
        if (nb > n / INDEX_BLOB_FIXED)
            return -1;
        limit =
            (length != 0) ? length - CAIRN_PACK_FOOTER_LEN : CAIRN_PACK_MAX_LEN;
        end = CAIRN_PACK_HEADER_LEN;
        for (j = 0; j < nb; j++) {
            if (n < INDEX_BLOB_FIXED)
                return -1;
            type = p[32];
            off = cairn_le32dec(p + 34);
            blen = cairn_le32dec(p + 38);
            nr = cairn_le32dec(p + 46);
            if (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE)
                return -1;
            if (p[33] != 0) /* flags */
                return -1;
            if (off < end || off + blen > limit)
                return -1;
            end = off + blen;
            if (cairn_le32dec(p + 42) > CAIRN_BLOB_MAX)
                return -1;
            if (nr > 0 && (type != CAIRN_BLOB_TREE || nr > CAIRN_TREE_REFS_MAX))
                return -1;
            p += INDEX_BLOB_FIXED;
            n -= INDEX_BLOB_FIXED;
            if (nr > n / CAIRN_ID_LEN)
                return -1;
            p += (size_t)nr * CAIRN_ID_LEN;
            n -= (size_t)nr * CAIRN_ID_LEN;
            nrefs += nr;
        }
        nblobs += nb;
    }
    if (n != 0)
        return -1;
    *out_nblobs = nblobs;
    *out_nrefs = nrefs;
    return 0;
}

/* Pass 2: fill idx from the checked body. */
static void index_fill(const uint8_t *p, struct cairn_index *idx,
                       struct cairn_index_entry *blobs, uint8_t *refs)
{
    uint32_t i, j;
    size_t rn;

    for (i = 0; i < idx->npacks; i++) {
        struct cairn_pack_info *pi = &idx->packs[i];

        memcpy(pi->id, p, CAIRN_ID_LEN);
        pi->length = cairn_le64dec(p + 32);
        pi->nblobs = cairn_le32dec(p + 40);
        pi->blobs = (pi->nblobs > 0) ? blobs : NULL;
        p += INDEX_PACK_FIXED;
        for (j = 0; j < pi->nblobs; j++) {
            struct cairn_index_entry *b = blobs++;

            memcpy(b->id, p, CAIRN_ID_LEN);
            b->type = p[32];
            b->offset = cairn_le32dec(p + 34);
            b->length = cairn_le32dec(p + 38);
            b->raw_length = cairn_le32dec(p + 42);
            b->nrefs = cairn_le32dec(p + 46);
            p += INDEX_BLOB_FIXED;
            if (b->nrefs > 0) {
                rn = (size_t)b->nrefs * CAIRN_ID_LEN;
                b->refs = (uint8_t(*)[CAIRN_ID_LEN])refs;
                memcpy(refs, p, rn);
                refs += rn;
                p += rn;
            } else {
                b->refs = NULL;
            }
        }
    }
}

/*
 * Decode the index object buf[0..len).  When mac_key is not NULL the MAC
 * is verified before anything else is read past the version
 * (CAIRN_ECORRUPT on mismatch); with NULL it is skipped.  Truncated input,
 * trailing bytes, counts the input cannot hold, unknown blob types,
 * non-zero flags, refs on data blobs, blobs out of order, overlapping or
 * outside their pack, raw lengths above CAIRN_BLOB_MAX, input longer than
 * CAIRN_INDEX_MAX_LEN: CAIRN_ECORRUPT.  A version other than 1:
 * CAIRN_EVERSION.  CAIRN_ENOMEM, CAIRN_ECRYPTO.  *out is one allocation
 * freed by cairn_index_free; it does not point into buf.  Thread safe.
 */
int cairn_index_decode(const uint8_t *buf, size_t len, const uint8_t *mac_key,
                       struct cairn_index **out)
{
    uint8_t mac[INDEX_MAC_LEN];
    struct cairn_index *idx;
    size_t nblobs, nrefs, off_packs, off_blobs, off_refs, total;
    uint32_t npacks;
    uint8_t *block;
    int rc;

    if (buf == NULL || len < INDEX_HEADER_LEN + INDEX_MAC_LEN ||
        len > CAIRN_INDEX_MAX_LEN || memcmp(buf, "CRNI", 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (buf[4] != 1) {
        rc = CAIRN_EVERSION;
        goto err0;
    }
    if (mac_key != NULL) {
        if ((rc = cairn_hmac_sha256(mac_key, buf, len - INDEX_MAC_LEN, mac)) !=
            0)
            goto err0;
        if (!cairn_ct_equal(mac, buf + len - INDEX_MAC_LEN, INDEX_MAC_LEN)) {
            rc = CAIRN_ECORRUPT;
            goto err0;
        }
    }
    if (buf[5] != 0 || buf[6] != 0 || buf[7] != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    npacks = cairn_le32dec(buf + 8);
    if (npacks > (len - INDEX_HEADER_LEN - INDEX_MAC_LEN) / INDEX_PACK_FIXED ||
        index_scan(buf + INDEX_HEADER_LEN,
                   len - INDEX_HEADER_LEN - INDEX_MAC_LEN, npacks, &nblobs,
                   &nrefs) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }

    /* len <= CAIRN_INDEX_MAX_LEN bounds every count: no overflow below. */
    off_packs = align_up(sizeof(struct cairn_index));
    off_blobs =
        align_up(off_packs + (size_t)npacks * sizeof(struct cairn_pack_info));
    off_refs = align_up(off_blobs + nblobs * sizeof(struct cairn_index_entry));
    total = off_refs + nrefs * CAIRN_ID_LEN;
    if ((block = malloc(total)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    idx = (struct cairn_index *)block;
    idx->npacks = npacks;
    idx->packs =
        (npacks > 0) ? (struct cairn_pack_info *)(block + off_packs) : NULL;
    index_fill(buf + INDEX_HEADER_LEN, idx,
               (struct cairn_index_entry *)(block + off_blobs),
               block + off_refs);
    *out = idx;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}

/* Free a decoded index.  NULL is fine. */
void cairn_index_free(struct cairn_index *idx)
{
    free(idx);
}
