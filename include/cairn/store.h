/*
 * cairn/store.h - where an archive's objects live.  A store is a table of
 * operations (one file per backend: store_dir.c now, store_http.c and
 * store_s3.c later).  Stores know nothing of keys: objects are opaque bytes
 * under a type and a name.
 *
 * Every operation is thread safe.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stddef.h>
#include <stdint.h>

enum cairn_obj_type {
    CAIRN_OBJ_CONFIG = 0,   /* the one "config" object */
    CAIRN_OBJ_KEY = 1,      /* key files */
    CAIRN_OBJ_PACK = 2,     /* packs */
    CAIRN_OBJ_INDEX = 3,    /* index objects */
    CAIRN_OBJ_SNAPSHOT = 4, /* snapshots */
    CAIRN_OBJ_LOCK = 5,     /* locks (not content-named) */
};
#define CAIRN_OBJ_NTYPES 6

/* Names: "config" for the config, otherwise 1..128 characters of
 * [0-9a-z._-] (content-named objects use 64 lowercase hex digits). */
int cairn_store_name_valid(enum cairn_obj_type type, const char *name);

typedef int (*cairn_store_list_fn)(void *arg, const char *name,
                                   uint64_t size);

struct cairn_store_ops {
    const char *name; /* "dir", "http", "s3" */

    /*
     * Store an object.  It is written whole or not at all, and is durable
     * and visible to get/list once put returns with durable != 0, or after
     * the next barrier otherwise.  Putting a name that already exists is
     * not an error (content-named objects are idempotent); the existing
     * object is kept.  CAIRN_ENOSPC when the disk is full (nothing left).
     */
    int (*put)(void *ctx, enum cairn_obj_type type, const char *name,
               const void *buf, size_t len, int durable);
    /*
     * Streaming put, for large objects whose name is known only once they
     * are whole (packs are named by their hash).  begin opens a hidden
     * temporary object; append adds bytes; commit gives it its name with
     * the semantics of put (durable now or at the next barrier; an
     * existing name is kept); abort discards it.  commit and abort free
     * the handle, also on failure.  One thread at a time per handle.
     */
    int (*begin)(void *ctx, enum cairn_obj_type type, void **out_h);
    int (*append)(void *ctx, void *h, const void *buf, size_t len);
    int (*commit)(void *ctx, void *h, const char *name, int durable);
    void (*abort)(void *ctx, void *h);
    /* Read back len bytes at off of what was appended to h so far (a
     * server checks an upload before naming it).  CAIRN_ECORRUPT when
     * off + len goes past the end. */
    int (*stream_read)(void *ctx, void *h, uint64_t off, size_t len,
                       uint8_t *out);
    /* Make every earlier put durable and visible. */
    int (*barrier)(void *ctx);
    /* Read a whole object; *out malloc'ed.  CAIRN_ENOENT if absent. */
    int (*get)(void *ctx, enum cairn_obj_type type, const char *name,
               uint8_t **out, size_t *out_len);
    /* Read len bytes at off into out.  CAIRN_ECORRUPT if the object is
     * shorter than off + len, CAIRN_ENOENT if absent. */
    int (*get_range)(void *ctx, enum cairn_obj_type type, const char *name,
                     uint64_t off, size_t len, uint8_t *out);
    /* Size of an object; CAIRN_ENOENT if absent. */
    int (*stat)(void *ctx, enum cairn_obj_type type, const char *name,
                uint64_t *out_size);
    /* Call fn for every object of type (any order); a non-zero return
     * from fn stops the listing and is returned. */
    int (*list)(void *ctx, enum cairn_obj_type type, cairn_store_list_fn fn,
                void *arg);
    /* Remove an object; CAIRN_ENOENT if absent. */
    int (*remove)(void *ctx, enum cairn_obj_type type, const char *name);
    /* Release everything (pending un-barriered puts are discarded). */
    void (*close)(void *ctx);
};

struct cairn_store {
    const struct cairn_store_ops *ops;
    void *ctx;
};

/*
 * The directory store.  Layout under path:
 *   config  keys/<name>  snapshots/<name>  locks/<name>
 *   index/<2 hex>/<name>  data/<2 hex>/<name>
 * A put writes "<dir>/.tmp-<random>", fsyncs it when durable (or at the
 * barrier), renames it to its name, and fsyncs the directory.
 * create: make the layout (CAIRN_EEXIST if path holds a config already);
 * otherwise CAIRN_ENOENT if path is not a store.  *out freed with
 * cairn_store_free.
 */
int cairn_store_dir_open(const char *path, int create,
                         struct cairn_store **out);

/*
 * The HTTP store: a device's archive on a Cairn server (docs/API.md,
 * "Device archives").  base_url is "https://host:port"; the device's
 * token authenticates ("cd_<device>.<secret>"); pin is the server's
 * public key pin ("sha256//<base64>", as curl's CURLOPT_PINNEDPUBLICKEY)
 * or NULL to use the system's CA store.  Puts are durable when the server
 * answers; a streamed put is spooled to a temporary file and uploaded at
 * commit.  Transient failures (connection refused or reset, 5xx) are
 * retried with backoff for up to retry_secs; then CAIRN_EIO.  401/403
 * give CAIRN_EPERM, 404 CAIRN_ENOENT.
 */
struct cairn_http_opts {
    const char *base_url;
    const char *device_id;
    const char *token;
    const char *pin;
    unsigned retry_secs; /* 0: 60 */
    /* Upload rate cap in bytes a second (curl's MAX_SEND_SPEED, per
     * upload; the writer uploads one pack at a time); 0: none. */
    uint64_t max_send_bps;
};
int cairn_store_http_open(const struct cairn_http_opts *o,
                          struct cairn_store **out);

/*
 * Which of names[0..n) (objects of type) the server of the HTTP store s
 * has: out_have[i] is set to 1 or 0 (undefined on failure).  Asks in
 * batches of at most 1000 names (POST .../objects/<type>/have).
 * CAIRN_EINVAL if s is not an HTTP store, type is not kept on the server
 * (keys, locks) or a name is invalid; otherwise as the store's
 * operations.  Thread safe.
 */
int cairn_store_http_have(struct cairn_store *s, enum cairn_obj_type type,
                          const char *const *names, size_t n,
                          uint8_t *out_have);

/* Close and free.  NULL is fine. */
void cairn_store_free(struct cairn_store *s);

/* Thin wrappers over the operations. */
int cairn_store_put(struct cairn_store *s, enum cairn_obj_type type,
                    const char *name, const void *buf, size_t len,
                    int durable);
int cairn_store_begin(struct cairn_store *s, enum cairn_obj_type type,
                      void **out_h);
int cairn_store_append(struct cairn_store *s, void *h, const void *buf,
                       size_t len);
int cairn_store_commit(struct cairn_store *s, void *h, const char *name,
                       int durable);
void cairn_store_abort(struct cairn_store *s, void *h);
int cairn_store_stream_read(struct cairn_store *s, void *h, uint64_t off,
                            size_t len, uint8_t *out);
int cairn_store_barrier(struct cairn_store *s);
int cairn_store_get(struct cairn_store *s, enum cairn_obj_type type,
                    const char *name, uint8_t **out, size_t *out_len);
int cairn_store_get_range(struct cairn_store *s, enum cairn_obj_type type,
                          const char *name, uint64_t off, size_t len,
                          uint8_t *out);
int cairn_store_stat(struct cairn_store *s, enum cairn_obj_type type,
                     const char *name, uint64_t *out_size);
int cairn_store_list(struct cairn_store *s, enum cairn_obj_type type,
                     cairn_store_list_fn fn, void *arg);
int cairn_store_remove(struct cairn_store *s, enum cairn_obj_type type,
                       const char *name);

#endif
