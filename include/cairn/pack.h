/*
 * cairn/pack.h - packs and index objects.
 *
 * A pack is many stored blobs in one object, named by the SHA-256 of its
 * bytes, self-describing through an authenticated trailer:
 *
 *   "CRNP" | version u8 (1) | 3 zero bytes
 *   stored blob 0 | stored blob 1 | ...
 *   trailer: an index object (below) describing this one pack, its pack id
 *            field all zeros (a pack cannot name its own hash)
 *   trailer length u32 | "CRNE"
 *
 * An index object lists the blobs of one or more packs:
 *
 *   "CRNI" | version u8 (1) | 3 zero bytes | npacks u32
 *   per pack: id [32] | length u64 | nblobs u32
 *     per blob: id [32] | type u8 | flags u8 (0) | offset u32 | length u32
 *               | raw_length u32 | nrefs u32 | refs [32] * nrefs
 *   HMAC-SHA-256(mac key, every preceding byte) [32]
 *
 * refs lists, for a tree blob, the ids it refers to (content and subtrees),
 * so a server can trace reachability without keys.  All integers are
 * little-endian.  See docs/FORMAT.md.
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"

#define CAIRN_PACK_HEADER_LEN 8
#define CAIRN_PACK_FOOTER_LEN 8
#define CAIRN_PACK_MAX_LEN (1024u * 1024 * 1024) /* 1 GiB: decoders refuse more */
#define CAIRN_INDEX_MAX_LEN (256u * 1024 * 1024)
#define CAIRN_TREE_REFS_MAX (16u * 1024 * 1024)

struct cairn_index_entry {
    uint8_t id[CAIRN_ID_LEN];
    uint8_t type;
    uint32_t offset;     /* from the start of the pack */
    uint32_t length;     /* stored length */
    uint32_t raw_length; /* plaintext length */
    uint32_t nrefs;
    uint8_t (*refs)[CAIRN_ID_LEN]; /* NULL when nrefs == 0 */
};

struct cairn_pack_info {
    uint8_t id[CAIRN_ID_LEN]; /* SHA-256 of the pack's bytes */
    uint64_t length;
    uint32_t nblobs;
    struct cairn_index_entry *blobs;
};

struct cairn_index {
    uint32_t npacks;
    struct cairn_pack_info *packs;
};

/*
 * Encode an index object for npacks packs into out (appended).  The MAC is
 * computed with mac_key.
 */
int cairn_index_encode(const struct cairn_pack_info *packs, uint32_t npacks,
                       const uint8_t mac_key[CAIRN_KEY_LEN],
                       struct cairn_buf *out);

/*
 * Decode an index object.  With mac_key, the MAC is verified first
 * (CAIRN_ECORRUPT on mismatch); with NULL it is skipped (a server without
 * keys).  Every length and count is checked against the input: truncated
 * or inconsistent input is CAIRN_ECORRUPT, an unknown version
 * CAIRN_EVERSION.  *out is one allocation tree freed by cairn_index_free.
 */
int cairn_index_decode(const uint8_t *buf, size_t len,
                       const uint8_t *mac_key, struct cairn_index **out);
void cairn_index_free(struct cairn_index *idx);

/* Free a pack info made by cairn_pack_writer_finish.  NULL is fine. */
void cairn_pack_info_free(struct cairn_pack_info *pi);

/*
 * Pack writer: accumulates stored blobs in memory.  Not thread safe.
 */
struct cairn_pack_writer;
struct cairn_pack_writer *cairn_pack_writer_new(void);
void cairn_pack_writer_free(struct cairn_pack_writer *w);

/* Append a stored blob (copied).  refs/nrefs: a tree's references. */
int cairn_pack_writer_add(struct cairn_pack_writer *w,
                          const uint8_t id[CAIRN_ID_LEN], uint8_t type,
                          const uint8_t *stored, uint32_t stored_len,
                          uint32_t raw_len,
                          const uint8_t (*refs)[CAIRN_ID_LEN], uint32_t nrefs);

/* Bytes and blobs so far (bytes include the header). */
size_t cairn_pack_writer_size(const struct cairn_pack_writer *w);
uint32_t cairn_pack_writer_count(const struct cairn_pack_writer *w);

/*
 * Append the trailer and footer, hash the pack.  The pack's bytes
 * (*out_buf, malloc'ed) and its description (*out_info, with id and length
 * set) pass to the caller; the writer is empty again and reusable.
 */
int cairn_pack_writer_finish(struct cairn_pack_writer *w,
                             const uint8_t mac_key[CAIRN_KEY_LEN],
                             uint8_t **out_buf, size_t *out_len,
                             struct cairn_pack_info **out_info);

/* The bytes every pack starts with. */
void cairn_pack_header(uint8_t out[CAIRN_PACK_HEADER_LEN]);

/*
 * Append the trailer and footer of a pack holding pi's blobs (offsets from
 * the start of the pack) to out: the index object of that one pack, its id
 * and length written as zero, MACed with mac_key, then its length and
 * "CRNE".  For writers that stream a pack instead of using
 * cairn_pack_writer.  On failure out is as it was.
 */
int cairn_pack_trailer_append(const struct cairn_pack_info *pi,
                              const uint8_t mac_key[CAIRN_KEY_LEN],
                              struct cairn_buf *out);

/*
 * Parse the trailer of a whole pack held in memory and check its structure:
 * header, footer, trailer MAC (when mac_key is not NULL), every blob inside
 * the blob area in order without overlap.  Returns a one-pack index whose
 * packs[0].id is the SHA-256 of the bytes and packs[0].length = len.
 */
int cairn_pack_read_index(const uint8_t *pack, size_t len,
                          const uint8_t *mac_key, struct cairn_index **out);

/*
 * The same, for a caller that has already computed the SHA-256 of
 * pack[0..len) (in the same pass as opening its blobs, say): packs[0].id
 * is set to id without hashing again.  CAIRN_EINVAL if id is NULL.
 */
int cairn_pack_read_index_hashed(const uint8_t *pack, size_t len,
                                 const uint8_t *mac_key,
                                 const uint8_t id[CAIRN_ID_LEN],
                                 struct cairn_index **out);

/* From a pack's last CAIRN_PACK_FOOTER_LEN bytes, the trailer's length
 * (for reading just the tail of a large pack). */
int cairn_pack_footer_decode(const uint8_t footer[CAIRN_PACK_FOOTER_LEN],
                             uint32_t *out_trailer_len);

#endif
