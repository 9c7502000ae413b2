/*
 * store.c - object names, and the thin wrappers over a store's operation
 * table.  The wrappers check names once here, so no backend can be handed
 * a name that escapes its directory or its key space.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/store.h"
#include "store/store_int.h"

/* Longest name of a non-config object. */
#define NAME_MAX_LEN 128

/*
 * Return 1 if name is a valid object name for type, 0 if not.  Besides the
 * header's rule (1..128 characters of [0-9a-z._-], "config" for the
 * config), a name may not start with '.' (so ".", ".." and the stores'
 * ".tmp-" files are never names), and packs and index objects, which are
 * fanned out by their first two characters, must start with two lowercase
 * hex digits.  Thread safe.
 */
int cairn_store_name_valid(enum cairn_obj_type type, const char *name)
{
    size_t i;
    char ch;

    if (name == NULL)
        return 0;
    if (type == CAIRN_OBJ_CONFIG)
        return strcmp(name, "config") == 0;
    if ((unsigned)type >= CAIRN_OBJ_NTYPES)
        return 0;
    if (name[0] == '\0' || name[0] == '.')
        return 0;
    for (i = 0; name[i] != '\0'; i++) {
        if (i >= NAME_MAX_LEN)
            return 0;
        ch = name[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    if (type == CAIRN_OBJ_PACK || type == CAIRN_OBJ_INDEX) {
        for (i = 0; i < 2; i++) {
            ch = name[i];
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
                return 0;
        }
    }
    return 1;
}

/* Close and free s.  NULL is fine. */
void cairn_store_free(struct cairn_store *s)
{
    if (s == NULL)
        return;
    if (s->ops != NULL && s->ops->close != NULL)
        s->ops->close(s->ctx);
    free(s);
}

/* Put buf[0..len) as (type, name); see struct cairn_store_ops.put.
 * CAIRN_EINVAL for an invalid name. */
int cairn_store_put(struct cairn_store *s, enum cairn_obj_type type,
                    const char *name, const void *buf, size_t len, int durable)
{
    if (!cairn_store_name_valid(type, name) || (buf == NULL && len > 0))
        return CAIRN_EINVAL;
    return s->ops->put(s->ctx, type, name, buf, len, durable);
}

/* Open a streaming put (see struct cairn_store_ops). */
int cairn_store_begin(struct cairn_store *s, enum cairn_obj_type type,
                      void **out_h)
{
    if ((unsigned)type >= CAIRN_OBJ_NTYPES || type == CAIRN_OBJ_CONFIG)
        return CAIRN_EINVAL;
    return s->ops->begin(s->ctx, type, out_h);
}

int cairn_store_append(struct cairn_store *s, void *h, const void *buf,
                       size_t len)
{
    return s->ops->append(s->ctx, h, buf, len);
}

/* Name a streamed object; frees h whatever the result. */
int cairn_store_commit(struct cairn_store *s, void *h, const char *name,
                       int durable)
{
    return s->ops->commit(s->ctx, h, name, durable);
}

void cairn_store_abort(struct cairn_store *s, void *h)
{
    if (h != NULL)
        s->ops->abort(s->ctx, h);
}

/* Read back what was appended to h (see struct cairn_store_ops). */
int cairn_store_stream_read(struct cairn_store *s, void *h, uint64_t off,
                            size_t len, uint8_t *out)
{
    return s->ops->stream_read(s->ctx, h, off, len, out);
}

/* Make every earlier put durable and visible. */
int cairn_store_barrier(struct cairn_store *s)
{
    return s->ops->barrier(s->ctx);
}

/* Read a whole object into *out (malloc'ed, caller frees). */
int cairn_store_get(struct cairn_store *s, enum cairn_obj_type type,
                    const char *name, uint8_t **out, size_t *out_len)
{
    if (!cairn_store_name_valid(type, name))
        return CAIRN_EINVAL;
    return s->ops->get(s->ctx, type, name, out, out_len);
}

/* Read len bytes at off into out (caller's buffer). */
int cairn_store_get_range(struct cairn_store *s, enum cairn_obj_type type,
                          const char *name, uint64_t off, size_t len,
                          uint8_t *out)
{
    if (!cairn_store_name_valid(type, name) || (out == NULL && len > 0))
        return CAIRN_EINVAL;
    return s->ops->get_range(s->ctx, type, name, off, len, out);
}

/* Size of an object. */
int cairn_store_stat(struct cairn_store *s, enum cairn_obj_type type,
                     const char *name, uint64_t *out_size)
{
    if (!cairn_store_name_valid(type, name))
        return CAIRN_EINVAL;
    return s->ops->stat(s->ctx, type, name, out_size);
}

/* Call fn(arg, name, size) for every object of type. */
int cairn_store_list(struct cairn_store *s, enum cairn_obj_type type,
                     cairn_store_list_fn fn, void *arg)
{
    if ((unsigned)type >= CAIRN_OBJ_NTYPES || fn == NULL)
        return CAIRN_EINVAL;
    return s->ops->list(s->ctx, type, fn, arg);
}

/* Remove an object. */
int cairn_store_remove(struct cairn_store *s, enum cairn_obj_type type,
                       const char *name)
{
    if (!cairn_store_name_valid(type, name))
        return CAIRN_EINVAL;
    return s->ops->remove(s->ctx, type, name);
}

int store_pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
    ssize_t n;

    while (len > 0) {
        n = pread(fd, p, len > SSIZE_MAX ? SSIZE_MAX : len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_err_from_errno(errno);
        }
        if (n == 0)
            return CAIRN_ECORRUPT;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}
