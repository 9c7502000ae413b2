/*
 * cairn/snapshot.h - one version of a device's selection, and the archive
 * config.
 *
 * Snapshot object (version 1; see docs/FORMAT.md):
 *   "CRNS" | version u8 (1) | flags u8 (bit 0: complete, bit 1: has parent)
 *   | 2 zero bytes
 *   | time_ns i64 | root [32] | parent [32] | device [16]
 *   | files u64 | dirs u64 | bytes u64 | added_bytes u64 | errors u64
 *   | private length u32 | private part: AES-256-GCM under the meta key,
 *     ad = every preceding byte, plaintext:
 *       hostname str16 | username str16 | npaths u32, paths str16...
 *       | ntags u32, tags str16...
 *   | HMAC-SHA-256(mac key, every preceding byte) [32]
 * The object's name is the hex SHA-256 of its bytes: the snapshot id.
 *
 * Config object ("config" in the store):
 *   "CRNC" | version u8 (1) | 3 zero bytes | archive id [32]
 *   | chunk min u32 | avg u32 | max u32 | pack size u32 | zstd level i32
 *   | created_ns i64 | HMAC-SHA-256(mac key, every preceding byte) [32]
 */
#ifndef CAIRN_SNAPSHOT_H
#define CAIRN_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/crypto.h"

#define CAIRN_DEVICE_ID_LEN 16

struct cairn_snapshot {
    uint8_t id[CAIRN_ID_LEN]; /* SHA-256 of the encoded object */
    int64_t time_ns;
    uint8_t root[CAIRN_ID_LEN];
    uint8_t parent[CAIRN_ID_LEN];
    int has_parent;
    int complete; /* every selected file was read */
    uint8_t device[CAIRN_DEVICE_ID_LEN];
    uint64_t files, dirs, bytes, added_bytes, errors;
    /* Private part; NULL/0 when decoded without keys. */
    int have_private;
    char *hostname;
    char *username;
    uint32_t npaths;
    char **paths;
    uint32_t ntags;
    char **tags;
};

/* Encode s (its id field is ignored) and set s->id to the result's
 * SHA-256.  *out is malloc'ed. */
int cairn_snapshot_encode(struct cairn_snapshot *s,
                          const struct cairn_keys *keys, uint8_t **out,
                          size_t *out_len);

/*
 * Decode a snapshot object.  keys == NULL reads only the public part (MAC
 * not verified, have_private = 0): what a server without keys sees.  With
 * keys the MAC is verified and the private part decrypted.  s->id is set.
 */
int cairn_snapshot_decode(const uint8_t *buf, size_t len,
                          const struct cairn_keys *keys,
                          struct cairn_snapshot **out);
void cairn_snapshot_free(struct cairn_snapshot *s);

struct cairn_config {
    uint8_t archive_id[CAIRN_ID_LEN];
    uint32_t chunk_min, chunk_avg, chunk_max;
    uint32_t pack_size;
    int32_t zstd_level;
    int64_t created_ns;
};

/* Config: encode into *out (malloc'ed) with the MAC. */
int cairn_config_encode(const struct cairn_config *c,
                        const uint8_t mac_key[CAIRN_KEY_LEN], uint8_t **out,
                        size_t *out_len);
/* Decode the config; mac_key NULL skips the MAC (read before the keys are
 * known: the archive id is needed to derive them, then verify again). */
int cairn_config_decode(const uint8_t *buf, size_t len,
                        const uint8_t *mac_key, struct cairn_config *out);

#endif
