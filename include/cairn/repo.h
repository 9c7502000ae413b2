/*
 * cairn/repo.h - an open archive: store + keys + config + in-memory index.
 */
#ifndef CAIRN_REPO_H
#define CAIRN_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/blob.h"
#include "cairn/chunker.h"
#include "cairn/crypto.h"
#include "cairn/pack.h"
#include "cairn/snapshot.h"
#include "cairn/store.h"
#include "cairn/tree.h"

#define CAIRN_PACK_SIZE_DEFAULT (16u * 1024 * 1024)
#define CAIRN_ZSTD_LEVEL_DEFAULT 2

struct cairn_repo;

struct cairn_repo_init_opts {
    struct cairn_chunker_params chunk; /* zeros: defaults */
    uint32_t pack_size;                /* 0: CAIRN_PACK_SIZE_DEFAULT */
    int32_t zstd_level;                /* 0: default; < 0: no compression */
    struct cairn_kdf_params kdf;       /* zeros: defaults */
    const char *label;                 /* key file label, may be NULL */
};

/*
 * Create a new archive in store (which must hold no config): a random
 * archive key and id, the config, and one key file for pass.  On success
 * the repo owns store; on failure the caller still does.
 */
int cairn_repo_init(struct cairn_store *store, const char *pass,
                    size_t passlen, const struct cairn_repo_init_opts *opts,
                    struct cairn_repo **out);

/*
 * Open an archive: read the config, try each key file with pass
 * (CAIRN_EAUTH if none opens), derive the keys, verify the config MAC.
 * The index is not loaded yet (cairn_repo_load_index).  Ownership of store
 * as for cairn_repo_init.
 */
int cairn_repo_open(struct cairn_store *store, const char *pass,
                    size_t passlen, struct cairn_repo **out);

/*
 * The same with the archive key given directly instead of a passphrase:
 * archives kept by a Cairn server, whose key the device holds in a local
 * file and the server only wrapped (escrow, owner).  init writes the
 * config and no key file; open checks that the config belongs to
 * archive_id (CAIRN_EAUTH otherwise).
 */
int cairn_repo_init_key(struct cairn_store *store,
                        const uint8_t master[CAIRN_KEY_LEN],
                        const uint8_t archive_id[CAIRN_ID_LEN],
                        const struct cairn_repo_init_opts *opts,
                        struct cairn_repo **out);
int cairn_repo_open_key(struct cairn_store *store,
                        const uint8_t master[CAIRN_KEY_LEN],
                        const uint8_t archive_id[CAIRN_ID_LEN],
                        struct cairn_repo **out);

/* Wipe the keys and free everything, the store too.  NULL is fine. */
void cairn_repo_free(struct cairn_repo *r);

const struct cairn_keys *cairn_repo_keys(const struct cairn_repo *r);
const struct cairn_config *cairn_repo_config(const struct cairn_repo *r);
const struct cairn_chunker *cairn_repo_chunker(const struct cairn_repo *r);
struct cairn_store *cairn_repo_store(struct cairn_repo *r);
/* Name (hex) of the key file that opened the archive. */
const char *cairn_repo_key_name(const struct cairn_repo *r);

/*
 * Load every index object into the in-memory blob table.  An index object
 * that fails to decode is reported through cairn_log and counted in
 * *out_bad (may be NULL); the rest load.  Call once before lookups.
 */
int cairn_repo_load_index(struct cairn_repo *r, uint32_t *out_bad);

struct cairn_blob_loc {
    uint8_t pack[CAIRN_ID_LEN];
    uint32_t offset, length, raw_length;
    uint8_t type;
};

/* Find a blob in the loaded index.  CAIRN_ENOENT if unknown.  Thread safe
 * (readers only; concurrent with a writer's additions too). */
int cairn_repo_lookup(struct cairn_repo *r, const uint8_t id[CAIRN_ID_LEN],
                      struct cairn_blob_loc *out);

/* Totals over the loaded index: blobs by type, their plaintext and stored
 * bytes.  Any pointer may be NULL. */
void cairn_repo_index_totals(struct cairn_repo *r, uint64_t *out_data_blobs,
                             uint64_t *out_tree_blobs, uint64_t *out_raw_bytes,
                             uint64_t *out_stored_bytes);

/* Number of blobs and packs in the loaded index. */
uint64_t cairn_repo_blob_count(struct cairn_repo *r);
uint64_t cairn_repo_pack_count(struct cairn_repo *r);

/*
 * Read a blob: look it up, fetch its bytes, verify and decode with codec
 * (one per thread).  *out malloc'ed, *out_len = raw length.  CAIRN_ENOENT
 * if not in the index or its pack is missing, CAIRN_ECORRUPT if damaged.
 */
int cairn_repo_read_blob(struct cairn_repo *r, struct cairn_blob_codec *codec,
                         const uint8_t id[CAIRN_ID_LEN], uint8_t type,
                         uint8_t **out, size_t *out_len);

/* Read and decode a tree blob. */
int cairn_repo_read_tree(struct cairn_repo *r, struct cairn_blob_codec *codec,
                         const uint8_t id[CAIRN_ID_LEN],
                         struct cairn_tree **out);

/*
 * All snapshots, decoded with the keys, sorted by time (oldest first).
 * Snapshots that fail to decode are reported through cairn_log and left
 * out (counted in *out_bad, may be NULL).  Free with
 * cairn_snapshot_list_free.
 */
int cairn_repo_list_snapshots(struct cairn_repo *r,
                              struct cairn_snapshot ***out, size_t *out_n,
                              uint32_t *out_bad);
void cairn_snapshot_list_free(struct cairn_snapshot **v, size_t n);

/*
 * Resolve "latest", a full hex id or a unique hex prefix (at least 4
 * digits).  CAIRN_ENOENT, CAIRN_EAMBIGUOUS, CAIRN_EINVAL.
 */
int cairn_repo_find_snapshot(struct cairn_repo *r, const char *spec,
                             struct cairn_snapshot **out);

/* Encode and store a snapshot durably (after everything it refers to is
 * durable); sets s->id. */
int cairn_repo_save_snapshot(struct cairn_repo *r, struct cairn_snapshot *s);

/*
 * The blob writer: a thread-safe sink for new blobs during a backup.
 * Blobs go into packs (data and trees in separate packs); full packs are
 * handed to a background thread that stores them; flush makes everything
 * added so far durable and indexed.
 */
struct cairn_repo_writer;
int cairn_repo_writer_new(struct cairn_repo *r,
                          struct cairn_repo_writer **out);

/*
 * Add a blob whose id the caller computed with cairn_blob_id.  If the id
 * is already stored or being stored, nothing is done and *out_added = 0.
 * Otherwise the blob is sealed with codec (the caller's, per thread) and
 * queued; *out_added = its stored length (>= 1).  Thread safe.  refs: for
 * a tree, the ids it refers to.
 */
int cairn_repo_writer_add(struct cairn_repo_writer *w,
                          struct cairn_blob_codec *codec, uint8_t type,
                          const uint8_t id[CAIRN_ID_LEN], const void *data,
                          size_t len, const uint8_t (*refs)[CAIRN_ID_LEN],
                          uint32_t nrefs, uint64_t *out_added);

/* Is id stored or being stored?  Thread safe. */
int cairn_repo_writer_has(struct cairn_repo_writer *w,
                          const uint8_t id[CAIRN_ID_LEN]);

/*
 * Finish open packs, store them, wait for the background thread, make the
 * packs durable, write the index object(s) naming them, durably.  After
 * flush, every blob added is readable through cairn_repo_lookup.
 */
int cairn_repo_writer_flush(struct cairn_repo_writer *w);

/* Stop (without flushing: unflushed blobs are lost, packs already stored
 * stay unreferenced) and free.  NULL is fine. */
void cairn_repo_writer_free(struct cairn_repo_writer *w);

/* Bytes and packs stored through w so far. */
uint64_t cairn_repo_writer_stored_bytes(struct cairn_repo_writer *w);

/* Key files. */
int cairn_repo_key_add(struct cairn_repo *r, const char *pass, size_t passlen,
                       const struct cairn_kdf_params *kdf, const char *label,
                       char out_name[2 * CAIRN_ID_LEN + 1]);
typedef int (*cairn_repo_key_fn)(void *arg, const char *name,
                                 const struct cairn_keyfile_info *info,
                                 int current);
int cairn_repo_key_list(struct cairn_repo *r, cairn_repo_key_fn fn,
                        void *arg);
/* Remove a key file; CAIRN_EINVAL for the one in use (which also keeps the
 * last one from going). */
int cairn_repo_key_remove(struct cairn_repo *r, const char *name);

#endif
