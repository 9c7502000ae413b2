/*
 * repo_internal.h - the parts of an open archive shared by the files of
 * lib/repo.  Not a public header.
 */
#ifndef CAIRN_REPO_INTERNAL_H
#define CAIRN_REPO_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "cairn/repo.h"

/* One blob in the in-memory index: 52 bytes. */
struct repo_blob {
    uint8_t id[CAIRN_ID_LEN];
    uint32_t pack; /* number in repo_index.packs */
    uint32_t offset, length, raw_length;
    uint8_t type;
};

/*
 * The blobs are kept densely, in the order they were added (blobs[0..n));
 * the table maps an id to its blob by open addressing with linear probing
 * over 4-byte numbers (blob number + 1; 0: empty), at most 3/4 full.  So a
 * million blobs take 52 MB of records and 8 MB of table, where slots of
 * whole records at that load took up to 110 MB (and twice that while
 * growing).  Ids are HMAC outputs: their first eight bytes are already a
 * uniform hash.
 */
struct repo_index {
    pthread_rwlock_t lock;
    struct repo_blob *blobs;
    size_t n, blobs_cap;
    uint32_t *table;
    size_t cap; /* table entries, a power of two */
    uint8_t (*packs)[CAIRN_ID_LEN];
    uint32_t npacks, packs_cap;
    uint32_t *pack_slots; /* pack id -> number + 1 (0: empty) */
    size_t pack_slots_cap;
};

struct cairn_repo {
    struct cairn_store *store;
    struct cairn_config config;
    struct cairn_keys keys;
    struct cairn_chunker *chunker;
    char key_name[2 * CAIRN_ID_LEN + 1];
    struct repo_index index;
    /* Packs found in the store but in no index object (left by an
     * interrupted backup); adopted at load time, named by the next index
     * object a writer stores. */
    struct cairn_pack_info **orphans;
    size_t norphans;
};

int repo_index_init(struct repo_index *ix);
void repo_index_destroy(struct repo_index *ix);
/* Add every blob of pack pi (the first location of a blob wins). */
int repo_index_add_pack(struct repo_index *ix, const struct cairn_pack_info *pi);
/* 1 if the pack id is known. */
int repo_index_has_pack(struct repo_index *ix, const uint8_t id[CAIRN_ID_LEN]);

/*
 * Copy a pack description into one allocation, the form
 * cairn_pack_info_free releases (refs included).  NULL on ENOMEM.
 */
struct cairn_pack_info *repo_pack_info_dup(const uint8_t id[CAIRN_ID_LEN],
                                           uint64_t length,
                                           const struct cairn_index_entry *b,
                                           uint32_t n);

/* The directory-free hex name of an id. */
void repo_hex(const uint8_t id[CAIRN_ID_LEN], char out[2 * CAIRN_ID_LEN + 1]);

#endif
