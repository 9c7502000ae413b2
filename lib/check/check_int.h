/*
 * check_int.h - shared state of one check run (check.c: structure and
 * trees; check_data.c: reading packs).
 */
#ifndef CAIRN_CHECK_INT_H
#define CAIRN_CHECK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/check.h"
#include "cairn/pack.h"

#define NONE UINT32_MAX

/* An open-addressing table from 32-byte ids (uniformly random) to u32. */
struct idslot {
    uint8_t key[CAIRN_ID_LEN];
    uint32_t val;
    uint32_t used;
};

struct idmap {
    struct idslot *s;
    size_t cap, n; /* cap: a power of two */
};

struct ck_pack {
    const struct cairn_pack_info *info; /* in one of ck->indexes */
    char name[2 * CAIRN_ID_LEN + 1];
    uint64_t stored_size;
    int stored;
    size_t first_blob; /* its blobs are blobs[first_blob...] */
    atomic_int damaged;
    int lost; /* none of its blobs can be read (missing, cut short) */
};

struct ck_blob {
    uint32_t pack;
    uint32_t next; /* another copy of the same id, or NONE */
    uint8_t bad;   /* read_data found it damaged */
    const struct cairn_index_entry *ent;
};

struct ck {
    struct cairn_repo *r;
    struct cairn_store *store;
    const struct cairn_check_opts *o;
    struct cairn_check_result *res;
    int64_t t0;

    struct cairn_index **indexes;
    size_t nindexes;
    struct ck_pack *packs;
    size_t npacks;
    struct idmap pack_map; /* pack id -> packs[] */
    struct ck_blob *blobs;
    size_t nblobs;
    struct idmap blob_map; /* blob id -> blobs[] (first copy) */
    struct idmap tree_map; /* tree id -> 1 clean, 2 damage below */

    /* read_data workers */
    uint32_t *todo;
    size_t ntodo;
    atomic_size_t next;
    atomic_uint_fast64_t bytes_read, packs_read, errors, damaged_packs;
    uint64_t bytes_total;
    atomic_int fatal;
    pthread_mutex_t ev_lock;
    int64_t last_progress;

    /* tree walk (main thread) */
    struct cairn_blob_codec *codec;
    uint8_t *rbuf, *pbuf;
    size_t rcap, pcap;
    char *path;
    size_t path_cap;
};

int64_t ck_now(void);
int ck_cancelled(const struct ck *ck);
/* Report an event (serialised with the workers'). */
void ck_event(struct ck *ck, int kind, const char *path, const char *name,
              int err, const char *detail);
/* A problem: counted as an error and reported. */
void ck_problem(struct ck *ck, const char *name, int err, const char *detail);
/* A damaged pack, reported once; lost: none of its blobs can be read. */
void ck_pack_damaged(struct ck *ck, struct ck_pack *p, int lost, int err,
                     const char *why);
/* Progress, at most every 250 ms unless forced. */
void ck_progress(struct ck *ck, int force);
int ck_grow(uint8_t **p, size_t *cap, size_t need);
/* Read and verify the chosen packs (check_data.c). */
int ck_read_data(struct ck *ck);

#endif
