/*
 * pack_write.c - build a pack in memory: header, stored blobs, trailer (an
 * index object for this one pack, with its id field zero and its length
 * zero), footer.  Format in cairn/pack.h and docs/FORMAT.md ("Pack").
 *
 * Blob bytes go into one growable buffer (limit CAIRN_PACK_MAX_LEN); the
 * blob table and the refs of trees grow beside it.  Refs are kept as
 * positions in their buffer, not pointers, because the buffer moves as it
 * grows; finish turns them into pointers in one allocation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/err.h"
#include "cairn/pack.h"

struct pack_blob {
    uint8_t id[CAIRN_ID_LEN];
    uint8_t type;
    uint32_t offset, length, raw_length;
    uint32_t nrefs;
    size_t refs_at; /* byte position in w->refs */
};

struct cairn_pack_writer {
    struct cairn_buf data; /* header and blobs so far */
    struct pack_blob *blobs;
    uint32_t nblobs, cap;
    struct cairn_buf refs;
};

static const uint8_t pack_header[CAIRN_PACK_HEADER_LEN] = {'C', 'R', 'N', 'P',
                                                           1,   0,   0,   0};

/* Empty w and write the header. */
static int writer_reset(struct cairn_pack_writer *w)
{
    w->data.len = 0;
    w->refs.len = 0;
    w->nblobs = 0;
    return cairn_buf_append(&w->data, pack_header, sizeof(pack_header));
}

/*
 * Make an empty pack writer (its header already counted by
 * cairn_pack_writer_size).  NULL if out of memory.  Free with
 * cairn_pack_writer_free.
 */
struct cairn_pack_writer *cairn_pack_writer_new(void)
{
    struct cairn_pack_writer *w;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        goto err0;
    cairn_buf_init(&w->data, CAIRN_PACK_MAX_LEN);
    cairn_buf_init(&w->refs, CAIRN_INDEX_MAX_LEN);
    if (writer_reset(w) != 0)
        goto err1;

    /* Success! */
    return w;

err1:
    cairn_buf_free(&w->data);
    free(w);
err0:
    /* Failure! */
    return NULL;
}

/* Free w and everything it holds.  NULL is fine. */
void cairn_pack_writer_free(struct cairn_pack_writer *w)
{
    if (w == NULL)
        return;
    cairn_buf_free(&w->data);
    cairn_buf_free(&w->refs);
    free(w->blobs);
    free(w);
}

/*
 * Append a copy of the stored blob stored[0..stored_len) with its id, type
 * (CAIRN_BLOB_DATA or CAIRN_BLOB_TREE), plaintext length and, for a tree,
 * the ids it refers to (copied).  CAIRN_EINVAL for an unknown type, refs on
 * a data blob, an empty blob, raw_len above CAIRN_BLOB_MAX or nrefs above
 * CAIRN_TREE_REFS_MAX; CAIRN_ERANGE if the pack would exceed
 * CAIRN_PACK_MAX_LEN; CAIRN_ENOMEM.  On failure w is unchanged.
 */
int cairn_pack_writer_add(struct cairn_pack_writer *w,
                          const uint8_t id[CAIRN_ID_LEN], uint8_t type,
                          const uint8_t *stored, uint32_t stored_len,
                          uint32_t raw_len, const uint8_t (*refs)[CAIRN_ID_LEN],
                          uint32_t nrefs)
{
    struct pack_blob *b, *nb;
    size_t refs_at = w->refs.len, offset = w->data.len;
    uint32_t ncap;
    int rc;

    if (id == NULL || stored == NULL || stored_len == 0 ||
        (type != CAIRN_BLOB_DATA && type != CAIRN_BLOB_TREE) ||
        raw_len > CAIRN_BLOB_MAX || nrefs > CAIRN_TREE_REFS_MAX ||
        (nrefs > 0 && (type != CAIRN_BLOB_TREE || refs == NULL))) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (w->nblobs == UINT32_MAX) {
        rc = CAIRN_ERANGE;
        goto err0;
    }
    if (w->data.len == 0 && (rc = writer_reset(w)) != 0)
        goto err0;
    offset = w->data.len;
    if (w->nblobs == w->cap) {
        ncap = (w->cap == 0) ? 64 : w->cap * 2;
        if (ncap < w->cap) /* cannot happen before the pack is too big */
            ncap = UINT32_MAX;
        if ((nb = realloc(w->blobs, (size_t)ncap * sizeof(*nb))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err0;
        }
        w->blobs = nb;
        w->cap = ncap;
    }
    if ((rc = cairn_buf_append(&w->data, stored, stored_len)) != 0)
        goto err0;
    if (nrefs > 0 && (rc = cairn_buf_append(&w->refs, refs,
                                            (size_t)nrefs * CAIRN_ID_LEN)) != 0)
        goto err1;

    b = &w->blobs[w->nblobs++];
    memcpy(b->id, id, CAIRN_ID_LEN);
    b->type = type;
    b->offset = (uint32_t)offset; /* < CAIRN_PACK_MAX_LEN < 2^32 */
    b->length = stored_len;
    b->raw_length = raw_len;
    b->nrefs = nrefs;
    b->refs_at = refs_at;

    /* Success! */
    return 0;

err1:
    w->data.len = offset;
err0:
    /* Failure! */
    return rc;
}

/* Bytes so far, the 8-byte header included (not the trailer). */
size_t cairn_pack_writer_size(const struct cairn_pack_writer *w)
{
    return w->data.len;
}

/* Number of blobs added since the writer was made or last finished. */
uint32_t cairn_pack_writer_count(const struct cairn_pack_writer *w)
{
    return w->nblobs;
}

/* The writer's blob table as one cairn_pack_info allocation. */
static struct cairn_pack_info *writer_info(const struct cairn_pack_writer *w)
{
    struct cairn_pack_info *pi;
    size_t off_blobs, off_refs;
    uint8_t *block, *refs;
    uint32_t i;

    off_blobs = (sizeof(*pi) + 15) & ~(size_t)15;
    off_refs = off_blobs + (size_t)w->nblobs * sizeof(pi->blobs[0]);
    if ((block = malloc(off_refs + w->refs.len)) == NULL)
        return NULL;
    pi = (struct cairn_pack_info *)block;
    memset(pi, 0, sizeof(*pi));
    pi->nblobs = w->nblobs;
    pi->blobs = (w->nblobs > 0)
                    ? (struct cairn_index_entry *)(block + off_blobs)
                    : NULL;
    refs = block + off_refs;
    if (w->refs.len > 0)
        memcpy(refs, w->refs.data, w->refs.len);
    for (i = 0; i < w->nblobs; i++) {
        const struct pack_blob *b = &w->blobs[i];
        struct cairn_index_entry *e = &pi->blobs[i];

        memcpy(e->id, b->id, CAIRN_ID_LEN);
        e->type = b->type;
        e->offset = b->offset;
        e->length = b->length;
        e->raw_length = b->raw_length;
        e->nrefs = b->nrefs;
        e->refs = (b->nrefs > 0) ? (uint8_t(*)[CAIRN_ID_LEN])(refs + b->refs_at)
                                 : NULL;
    }
    return pi;
}

void cairn_pack_header(uint8_t out[CAIRN_PACK_HEADER_LEN])
{
    memcpy(out, pack_header, CAIRN_PACK_HEADER_LEN);
}

int cairn_pack_trailer_append(const struct cairn_pack_info *pi,
                              const uint8_t mac_key[CAIRN_KEY_LEN],
                              struct cairn_buf *out)
{
    struct cairn_pack_info t = *pi;
    uint8_t footer[CAIRN_PACK_FOOTER_LEN];
    size_t start = out->len;
    int rc;

    /* A pack cannot name its own hash: the trailer's id and length are
     * zero. */
    memset(t.id, 0, sizeof(t.id));
    t.length = 0;
    if ((rc = cairn_index_encode(&t, 1, mac_key, out)) != 0)
        return rc;
    cairn_le32enc(footer, (uint32_t)(out->len - start)); /* <= 256 MiB */
    memcpy(footer + 4, "CRNE", 4);
    if ((rc = cairn_buf_append(out, footer, sizeof(footer))) != 0) {
        out->len = start;
        return rc;
    }
    return 0;
}

/*
 * Finish the pack: append the trailer (an index object for this pack,
 * MACed with mac_key, its pack id field 32 zero bytes and its length 0),
 * the trailer's length (u32) and "CRNE", and hash the whole.  On success
 * the pack's bytes (*out_buf, malloc'ed, *out_len long) and its
 * description (*out_info, id = SHA-256 of the bytes, length = *out_len;
 * free with cairn_pack_info_free) pass to the caller, and w is empty and
 * reusable.  An empty pack is allowed.  CAIRN_ERANGE if the trailer would
 * take the pack past CAIRN_PACK_MAX_LEN, CAIRN_ENOMEM, CAIRN_ECRYPTO; on
 * failure w still holds its blobs.
 */
int cairn_pack_writer_finish(struct cairn_pack_writer *w,
                             const uint8_t mac_key[CAIRN_KEY_LEN],
                             uint8_t **out_buf, size_t *out_len,
                             struct cairn_pack_info **out_info)
{
    struct cairn_pack_info *pi;
    size_t len;
    uint8_t *bytes;
    int rc;

    if (mac_key == NULL || out_buf == NULL || out_len == NULL ||
        out_info == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (w->data.len == 0 && (rc = writer_reset(w)) != 0)
        goto err0;
    if ((pi = writer_info(w)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((rc = cairn_pack_trailer_append(pi, mac_key, &w->data)) != 0)
        goto err1;

    cairn_sha256(w->data.data, w->data.len, pi->id);
    pi->length = w->data.len;
    bytes = cairn_buf_steal(&w->data, &len);

    /*
     * The pack has left; start the next one.  If even the 8-byte header
     * cannot be allocated now, add and finish write it first.
     */
    cairn_buf_init(&w->data, CAIRN_PACK_MAX_LEN);
    (void)writer_reset(w);

    *out_buf = bytes;
    *out_len = len;
    *out_info = pi;

    /* Success! */
    return 0;

err1:
    cairn_pack_info_free(pi);
err0:
    /* Failure! */
    return rc;
}

/* Free a pack description made by cairn_pack_writer_finish.  NULL is
 * fine. */
void cairn_pack_info_free(struct cairn_pack_info *pi)
{
    free(pi);
}
