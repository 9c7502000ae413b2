/*
 * browse_diff.c - compare two snapshots tree by tree.  Subtrees with equal
 * ids are equal and skipped unread; file contents are compared by their
 * lists of content ids.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/browse.h"
#include "cairn/err.h"

struct diff {
    struct cairn_repo *r;
    struct cairn_blob_codec *codec;
    cairn_diff_fn fn;
    void *arg;
    char *path;
    size_t cap;
};

static int path_push(struct diff *d, size_t len, const char *name)
{
    size_t n = strlen(name), need = len + n + 2;
    char *p;

    if (need > d->cap) {
        if ((p = realloc(d->path, need * 2)) == NULL)
            return CAIRN_ENOMEM;
        d->path = p;
        d->cap = need * 2;
    }
    d->path[len] = '/';
    memcpy(d->path + len + 1, name, n + 1);
    return 0;
}

static int xattrs_equal(const struct cairn_tree_entry *a,
                        const struct cairn_tree_entry *b)
{
    uint16_t i;

    if (a->nxattrs != b->nxattrs)
        return 0;
    for (i = 0; i < a->nxattrs; i++)
        if (strcmp(a->xattrs[i].name, b->xattrs[i].name) != 0 ||
            a->xattrs[i].len != b->xattrs[i].len ||
            memcmp(a->xattrs[i].value, b->xattrs[i].value,
                   a->xattrs[i].len) != 0)
            return 0;
    return 1;
}

/* Same type assumed.  Did the content (data, link target, device) change? */
static int content_changed(const struct cairn_tree_entry *a,
                           const struct cairn_tree_entry *b)
{
    switch (a->type) {
    case CAIRN_NODE_FILE:
        return a->size != b->size || a->ncontent != b->ncontent ||
               (a->ncontent > 0 &&
                memcmp(a->content, b->content,
                       (size_t)a->ncontent * CAIRN_ID_LEN) != 0);
    case CAIRN_NODE_SYMLINK:
        return strcmp(a->target, b->target) != 0;
    case CAIRN_NODE_CHR:
    case CAIRN_NODE_BLK:
        return a->rdev != b->rdev;
    default:
        return 0;
    }
}

/* Metadata a person would call a change (not atime, ctime, inode). */
static int meta_changed(const struct cairn_tree_entry *a,
                        const struct cairn_tree_entry *b)
{
    return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
           strcmp(a->user, b->user) != 0 ||
           strcmp(a->group, b->group) != 0 || a->mtime_ns != b->mtime_ns ||
           !xattrs_equal(a, b);
}

static int diff_trees(struct diff *d, const uint8_t *a_id,
                      const uint8_t *b_id, size_t len);

/* Report a whole subtree as added (kind '+', b side) or removed ('-'). */
static int report_all(struct diff *d, int kind,
                      const struct cairn_tree_entry *e, size_t len)
{
    int rc;

    if ((rc = d->fn(d->arg, kind, d->path,
                    kind == CAIRN_DIFF_REMOVED ? e : NULL,
                    kind == CAIRN_DIFF_ADDED ? e : NULL)) != 0)
        return rc;
    if (e->type != CAIRN_NODE_DIR || !e->has_subtree)
        return 0;
    return kind == CAIRN_DIFF_ADDED ? diff_trees(d, NULL, e->subtree, len)
                                    : diff_trees(d, e->subtree, NULL, len);
}

static int diff_pair(struct diff *d, const struct cairn_tree_entry *a,
                     const struct cairn_tree_entry *b, size_t len)
{
    int rc;

    if (a->type != b->type) {
        if ((rc = d->fn(d->arg, CAIRN_DIFF_TYPE, d->path, a, b)) != 0)
            return rc;
        /* What was below the old directory is gone; below the new, new. */
        if (a->type == CAIRN_NODE_DIR && a->has_subtree)
            return diff_trees(d, a->subtree, NULL, len);
        if (b->type == CAIRN_NODE_DIR && b->has_subtree)
            return diff_trees(d, NULL, b->subtree, len);
        return 0;
    }
    if (content_changed(a, b))
        rc = d->fn(d->arg, CAIRN_DIFF_MODIFIED, d->path, a, b);
    else if (meta_changed(a, b))
        rc = d->fn(d->arg, CAIRN_DIFF_META, d->path, a, b);
    else
        rc = 0;
    if (rc != 0 || a->type != CAIRN_NODE_DIR)
        return rc;
    if (a->has_subtree && b->has_subtree &&
        memcmp(a->subtree, b->subtree, CAIRN_ID_LEN) == 0)
        return 0; /* equal ids: equal subtrees */
    if (!a->has_subtree && !b->has_subtree)
        return 0;
    return diff_trees(d, a->has_subtree ? a->subtree : NULL,
                      b->has_subtree ? b->subtree : NULL, len);
}

/*
 * Compare the trees a_id and b_id (either may be NULL: empty) found at
 * d->path[0..len).
 */
static int diff_trees(struct diff *d, const uint8_t *a_id,
                      const uint8_t *b_id, size_t len)
{
    struct cairn_tree *a = NULL, *b = NULL;
    const struct cairn_tree_entry *ea, *eb;
    uint32_t i = 0, j = 0, na, nb;
    size_t n;
    int c, rc;

    if (a_id != NULL &&
        (rc = cairn_repo_read_tree(d->r, d->codec, a_id, &a)) != 0)
        goto err0;
    if (b_id != NULL &&
        (rc = cairn_repo_read_tree(d->r, d->codec, b_id, &b)) != 0)
        goto err1;
    na = a ? a->nentries : 0;
    nb = b ? b->nentries : 0;
    rc = 0;
    while (rc == 0 && (i < na || j < nb)) {
        ea = i < na ? &a->entries[i] : NULL;
        eb = j < nb ? &b->entries[j] : NULL;
        if (ea == NULL)
            c = 1;
        else if (eb == NULL)
            c = -1;
        else
            c = strcmp(ea->name, eb->name);
        n = strlen(c <= 0 ? ea->name : eb->name);
        if ((rc = path_push(d, len, c <= 0 ? ea->name : eb->name)) != 0)
            break;
        if (c < 0) {
            rc = report_all(d, CAIRN_DIFF_REMOVED, ea, len + 1 + n);
            i++;
        } else if (c > 0) {
            rc = report_all(d, CAIRN_DIFF_ADDED, eb, len + 1 + n);
            j++;
        } else {
            rc = diff_pair(d, ea, eb, len + 1 + n);
            i++;
            j++;
        }
    }
    d->path[len] = '\0';

    cairn_tree_free(b);
err1:
    cairn_tree_free(a);
err0:
    return rc;
}

/*
 * Compare snapshots a and b.  See cairn/browse.h.
 */
int cairn_browse_diff(struct cairn_repo *r, const struct cairn_snapshot *a,
                      const struct cairn_snapshot *b, cairn_diff_fn fn,
                      void *arg)
{
    struct diff d;
    int rc;

    memset(&d, 0, sizeof(d));
    if (r == NULL || a == NULL || b == NULL || fn == NULL)
        return CAIRN_EINVAL;
    d.r = r;
    d.fn = fn;
    d.arg = arg;
    if ((d.codec = cairn_blob_codec_new(cairn_repo_keys(r), 0)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((d.path = malloc(256)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    d.cap = 256;
    d.path[0] = '\0';
    if (memcmp(a->root, b->root, CAIRN_ID_LEN) == 0)
        rc = 0;
    else
        rc = diff_trees(&d, a->root, b->root, 0);

    free(d.path);
err1:
    cairn_blob_codec_free(d.codec);
err0:
    return rc;
}
