/*
 * cache_store.c - a store (include/cairn/store.h) in front of the server's,
 * keeping a local copy of the archive's immutable small objects (config,
 * index objects, snapshots) in the agent's state database.
 *
 * Those objects are content-named and never rewritten, so a copy never
 * goes stale: at start the agent lists the index objects on the server (one
 * request) and reads only those it has not seen before.  A copy is checked
 * against its name (SHA-256) when read; one that does not match is dropped
 * and read from the server again.  Packs go straight through.  Whatever the
 * agent itself writes is copied as it is written.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/store.h"

#include "cache_store.h"
#include "state.h"

struct cstore {
    struct cairn_store *inner;
    struct agent_state *st;
};

static int cached_type(enum cairn_obj_type t)
{
    return t == CAIRN_OBJ_CONFIG || t == CAIRN_OBJ_INDEX ||
           t == CAIRN_OBJ_SNAPSHOT;
}

/* Does buf match its content name?  The config has none to check. */
static int matches_name(enum cairn_obj_type t, const char *name,
                        const uint8_t *buf, size_t len)
{
    uint8_t h[CAIRN_ID_LEN];
    char hex[2 * CAIRN_ID_LEN + 1];

    if (t == CAIRN_OBJ_CONFIG)
        return 1;
    cairn_sha256(buf, len, h);
    cairn_hex_encode(h, CAIRN_ID_LEN, hex);
    return strcmp(hex, name) == 0;
}

static int c_put(void *ctx, enum cairn_obj_type type, const char *name,
                 const void *buf, size_t len, int durable)
{
    struct cstore *c = ctx;
    int rc;

    if ((rc = cairn_store_put(c->inner, type, name, buf, len, durable)) != 0)
        return rc;
    if (cached_type(type))
        (void)agent_cache_put(c->st, type, name, buf, len);
    return 0;
}

/* A streamed put of an object the cache keeps: its bytes are kept too
 * (index objects are small: a few hundred KiB), up to COPY_MAX. */
#define COPY_MAX (64u << 20)

struct chandle {
    void *inner;
    enum cairn_obj_type type;
    uint8_t *copy;
    size_t len, cap;
    int too_big;
};

static int c_begin(void *ctx, enum cairn_obj_type type, void **out_h)
{
    struct cstore *c = ctx;
    struct chandle *h;
    int rc;

    if ((h = calloc(1, sizeof(*h))) == NULL)
        return CAIRN_ENOMEM;
    h->type = type;
    h->too_big = !cached_type(type);
    if ((rc = cairn_store_begin(c->inner, type, &h->inner)) != 0) {
        free(h);
        return rc;
    }
    *out_h = h;
    return 0;
}

static int c_append(void *ctx, void *hv, const void *buf, size_t len)
{
    struct cstore *c = ctx;
    struct chandle *h = hv;
    uint8_t *p;
    size_t cap;

    if (!h->too_big) {
        if (h->len + len > COPY_MAX) {
            h->too_big = 1;
        } else if (h->len + len > h->cap) {
            cap = h->cap ? h->cap : 64 * 1024;
            while (cap < h->len + len)
                cap *= 2;
            if ((p = realloc(h->copy, cap)) == NULL) {
                h->too_big = 1; /* not kept: read back from the server */
            } else {
                h->copy = p;
                h->cap = cap;
            }
        }
        if (!h->too_big) {
            memcpy(h->copy + h->len, buf, len);
            h->len += len;
        }
    }
    return cairn_store_append(c->inner, h->inner, buf, len);
}

static int c_commit(void *ctx, void *hv, const char *name, int durable)
{
    struct cstore *c = ctx;
    struct chandle *h = hv;
    int rc = cairn_store_commit(c->inner, h->inner, name, durable);

    if (rc == 0 && !h->too_big && matches_name(h->type, name, h->copy, h->len))
        (void)agent_cache_put(c->st, h->type, name, h->copy, h->len);
    free(h->copy);
    free(h);
    return rc;
}

static void c_abort(void *ctx, void *hv)
{
    struct cstore *c = ctx;
    struct chandle *h = hv;

    cairn_store_abort(c->inner, h->inner);
    free(h->copy);
    free(h);
}

static int c_stream_read(void *ctx, void *hv, uint64_t off, size_t len,
                         uint8_t *out)
{
    struct cstore *c = ctx;
    struct chandle *h = hv;

    return cairn_store_stream_read(c->inner, h->inner, off, len, out);
}

static int c_barrier(void *ctx)
{
    struct cstore *c = ctx;

    return cairn_store_barrier(c->inner);
}

static int c_get(void *ctx, enum cairn_obj_type type, const char *name,
                 uint8_t **out, size_t *out_len)
{
    struct cstore *c = ctx;
    int rc;

    if (!cached_type(type))
        return cairn_store_get(c->inner, type, name, out, out_len);
    if (agent_cache_get(c->st, type, name, out, out_len) == 0) {
        if (matches_name(type, name, *out, *out_len))
            return 0;
        free(*out);
        *out = NULL;
        (void)agent_cache_drop(c->st, type, name);
    }
    if ((rc = cairn_store_get(c->inner, type, name, out, out_len)) != 0)
        return rc;
    if (matches_name(type, name, *out, *out_len))
        (void)agent_cache_put(c->st, type, name, *out, *out_len);
    return 0;
}

static int c_get_range(void *ctx, enum cairn_obj_type type, const char *name,
                       uint64_t off, size_t len, uint8_t *out)
{
    struct cstore *c = ctx;

    return cairn_store_get_range(c->inner, type, name, off, len, out);
}

static int c_stat(void *ctx, enum cairn_obj_type type, const char *name,
                  uint64_t *out_size)
{
    struct cstore *c = ctx;

    return cairn_store_stat(c->inner, type, name, out_size);
}

static int c_list(void *ctx, enum cairn_obj_type type, cairn_store_list_fn fn,
                  void *arg)
{
    struct cstore *c = ctx;

    return cairn_store_list(c->inner, type, fn, arg);
}

static int c_remove(void *ctx, enum cairn_obj_type type, const char *name)
{
    struct cstore *c = ctx;
    int rc = cairn_store_remove(c->inner, type, name);

    if (cached_type(type))
        (void)agent_cache_drop(c->st, type, name);
    return rc;
}

static void c_close(void *ctx)
{
    struct cstore *c = ctx;

    cairn_store_free(c->inner);
    free(c);
}

static const struct cairn_store_ops cache_ops = {
    .name = "cache",
    .put = c_put,
    .begin = c_begin,
    .append = c_append,
    .commit = c_commit,
    .abort = c_abort,
    .stream_read = c_stream_read,
    .barrier = c_barrier,
    .get = c_get,
    .get_range = c_get_range,
    .stat = c_stat,
    .list = c_list,
    .remove = c_remove,
    .close = c_close,
};

int agent_cache_store_new(struct cairn_store *inner, struct agent_state *st,
                          struct cairn_store **out)
{
    struct cstore *c;
    struct cairn_store *s;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return CAIRN_ENOMEM;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        free(c);
        return CAIRN_ENOMEM;
    }
    c->inner = inner;
    c->st = st;
    s->ops = &cache_ops;
    s->ctx = c;
    *out = s;
    return 0;
}
