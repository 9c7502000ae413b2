/*
 * browse.c - list the entries of a snapshot below a path.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/browse.h"
#include "cairn/err.h"

struct walk {
    struct cairn_repo *r;
    struct cairn_blob_codec *codec;
    cairn_browse_fn fn;
    void *arg;
    int recursive;
    char *path; /* the current path, NUL-terminated */
    size_t cap;
};

/* Append "/" name to w->path, which holds len bytes now. */
static int path_push(struct walk *w, size_t len, const char *name)
{
    size_t n = strlen(name), need = len + n + 2;
    char *p;

    if (need > w->cap) {
        if ((p = realloc(w->path, need * 2)) == NULL)
            return CAIRN_ENOMEM;
        w->path = p;
        w->cap = need * 2;
    }
    w->path[len] = '/';
    memcpy(w->path + len + 1, name, n + 1);
    return 0;
}

static int walk_tree(struct walk *w, const uint8_t id[CAIRN_ID_LEN],
                     size_t len)
{
    const struct cairn_tree_entry *e;
    struct cairn_tree *t;
    uint32_t i;
    int rc;

    if ((rc = cairn_repo_read_tree(w->r, w->codec, id, &t)) != 0)
        goto err0;
    for (i = 0; i < t->nentries; i++) {
        e = &t->entries[i];
        if ((rc = path_push(w, len, e->name)) != 0)
            goto err1;
        if ((rc = w->fn(w->arg, w->path, e)) != 0)
            goto err1;
        if (w->recursive && e->type == CAIRN_NODE_DIR && e->has_subtree &&
            (rc = walk_tree(w, e->subtree, len + 1 + strlen(e->name))) != 0)
            goto err1;
    }
    rc = 0;

err1:
    cairn_tree_free(t);
err0:
    return rc;
}

/*
 * Walk snapshot s below path.  See cairn/browse.h.  Not thread safe with
 * respect to fn; r is only read.
 */
int cairn_browse_walk(struct cairn_repo *r, const struct cairn_snapshot *s,
                      const char *path, int recursive, cairn_browse_fn fn,
                      void *arg)
{
    struct cairn_tree *t = NULL, *nt;
    const struct cairn_tree_entry *e = NULL;
    const char *p = path ? path : "", *q;
    uint8_t id[CAIRN_ID_LEN];
    struct walk w;
    size_t len = 0;
    char *name;
    int rc;

    memset(&w, 0, sizeof(w));
    if (r == NULL || s == NULL || fn == NULL)
        return CAIRN_EINVAL;
    w.r = r;
    w.fn = fn;
    w.arg = arg;
    w.recursive = recursive;
    if ((w.codec = cairn_blob_codec_new(cairn_repo_keys(r), 0)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((w.path = malloc(256)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    w.cap = 256;
    w.path[0] = '\0';
    memcpy(id, s->root, CAIRN_ID_LEN);

    /* Resolve path, one component at a time. */
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        for (q = p; *q != '\0' && *q != '/'; q++)
            ;
        if (e != NULL) {
            if (e->type != CAIRN_NODE_DIR || !e->has_subtree) {
                rc = CAIRN_ENOENT;
                goto err2;
            }
            memcpy(id, e->subtree, CAIRN_ID_LEN);
        }
        if ((rc = cairn_repo_read_tree(r, w.codec, id, &nt)) != 0)
            goto err2;
        cairn_tree_free(t);
        t = nt;
        if ((name = strndup(p, (size_t)(q - p))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err2;
        }
        e = cairn_tree_find(t, name);
        if (e != NULL && (rc = path_push(&w, len, name)) != 0) {
            free(name);
            goto err2;
        }
        free(name);
        if (e == NULL) {
            rc = CAIRN_ENOENT;
            goto err2;
        }
        len = strlen(w.path);
        p = q;
    }

    if (e == NULL) {
        rc = walk_tree(&w, s->root, 0);
    } else {
        if ((rc = fn(arg, w.path, e)) != 0)
            goto err2;
        /* The path's own children, then deeper only when recursive. */
        if (e->type == CAIRN_NODE_DIR && e->has_subtree)
            rc = walk_tree(&w, e->subtree, len);
    }

err2:
    cairn_tree_free(t);
    free(w.path);
err1:
    cairn_blob_codec_free(w.codec);
err0:
    return rc;
}
