/*
 * cairn/blob.h - turning a plaintext blob into its stored form and back.
 *
 * Stored form of a blob (see docs/FORMAT.md, "Blob"):
 *   AES-256-GCM(key = data key, nonce random,
 *               ad = id (32) | type (1),
 *               plaintext = compression (1: 0 raw, 1 zstd) | payload)
 *   = nonce (12) | ciphertext | tag (16)
 * The id is HMAC-SHA-256(id key, plaintext content).
 */
#ifndef CAIRN_BLOB_H
#define CAIRN_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"

enum cairn_blob_type {
    CAIRN_BLOB_DATA = 0,
    CAIRN_BLOB_TREE = 1,
};

#define CAIRN_BLOB_RAW 0
#define CAIRN_BLOB_ZSTD 1

/* Largest blob plaintext accepted anywhere (bounded by the chunker max and
 * the largest tree). */
#define CAIRN_BLOB_MAX (64u * 1024 * 1024)

/* Worst-case stored size of a blob of len plaintext bytes. */
size_t cairn_blob_seal_bound(size_t len);

/*
 * A per-thread codec: HMAC, AES-GCM and zstd contexts plus scratch space,
 * all reused across blobs.  Not thread safe; make one per thread.
 * level: zstd level (1..19); <= 0 disables compression.
 */
struct cairn_blob_codec;
struct cairn_blob_codec *cairn_blob_codec_new(const struct cairn_keys *keys,
                                              int level);
void cairn_blob_codec_free(struct cairn_blob_codec *c);

/* Compute the blob id of plaintext buf. */
int cairn_blob_id(struct cairn_blob_codec *c, const void *buf, size_t len,
                  uint8_t out_id[CAIRN_ID_LEN]);

/*
 * Compress (if it shrinks; incompressible data is detected from a sample
 * and stored raw) and encrypt buf into out, which must hold
 * cairn_blob_seal_bound(len) bytes.  *out_len receives the stored length.
 */
int cairn_blob_seal(struct cairn_blob_codec *c, uint8_t type,
                    const uint8_t id[CAIRN_ID_LEN], const void *buf,
                    size_t len, uint8_t *out, size_t *out_len);

/*
 * Verify, decrypt and decompress a stored blob into out, which must hold
 * raw_len bytes (the plaintext length from the index).  CAIRN_ECORRUPT if
 * it does not authenticate or does not decompress to exactly raw_len bytes.
 * When verify_id is set, also recompute the id and compare (check
 * --read-data does this; restore relies on the GCM tag, which binds the id).
 */
int cairn_blob_open(struct cairn_blob_codec *c, uint8_t type,
                    const uint8_t id[CAIRN_ID_LEN], const uint8_t *stored,
                    size_t stored_len, uint8_t *out, size_t raw_len,
                    int verify_id);

#endif
