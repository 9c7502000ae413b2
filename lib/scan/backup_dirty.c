/*
 * backup_dirty.c - targeted backups: the dirty set a watcher hands in,
 * where each directory stands against it, and the snapshot's totals kept
 * exact for the parts of the tree that are not visited.
 *
 * The dirty set is sorted component by component (bk_path_cmp), so the
 * paths inside a directory follow it together: a directory's dirty paths
 * are a range, and a child's range is found by binary search inside its
 * parent's.  A walk with a dirty set visits only the directories on the
 * way to dirty paths and keeps the parent's subtree elsewhere; totals are
 * the parent's, minus the parent's entries of every visited directory
 * (and the old subtrees that were neither visited again nor kept), plus
 * what the walk counted.
 */
#include <stdlib.h>
#include <string.h>

#include "backup_internal.h"
#include "cairn/err.h"
#include "cairn/repo.h"

/* Deeper old trees than the walker ever writes are damage. */
#define OLD_MAX_DEPTH 4200

/* Is d strictly inside the directory s (slen bytes)? */
static int path_below(const char *d, const char *s, size_t slen)
{
    if (slen == 1 && s[0] == '/')
        return d[0] == '/' && d[1] != '\0';
    return strncmp(d, s, slen) == 0 && d[slen] == '/';
}

static int dirty_qcmp(const void *x, const void *y)
{
    return bk_path_cmp(*(char *const *)x, *(char *const *)y);
}

/* First index in v[lo..hi) whose path does not sort before p. */
static size_t lower_bound(char *const *v, size_t lo, size_t hi, const char *p)
{
    size_t mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (bk_path_cmp(v[mid], p) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Is d a selected path, inside one, or above one?  (b->paths are sorted
 * and not nested, so the only candidate containing d is the one just
 * before it.) */
static int in_selection(const struct bk *b, const char *d)
{
    size_t i = lower_bound(b->paths, 0, b->npaths, d);

    if (i < b->npaths &&
        (strcmp(b->paths[i], d) == 0 || path_below(b->paths[i], d, strlen(d))))
        return 1;
    return i > 0 && path_below(d, b->paths[i - 1], strlen(b->paths[i - 1]));
}

int bk_dirty_prepare(struct bk *b)
{
    const struct cairn_backup_opts *o = b->o;
    const struct cairn_snapshot *par = o->parent;
    const char *prev;
    char *p;
    size_t i, j;
    int rc;

    b->dirty_active = 0;
    if (!o->dirty_set)
        return 0;
    if (o->ndirty > 0 && o->dirty == NULL)
        return CAIRN_EINVAL;
    if (o->ndirty > 0 &&
        (b->dirty = calloc(o->ndirty, sizeof(*b->dirty))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < o->ndirty; i++) {
        if (o->dirty[i] == NULL || o->dirty[i][0] == '\0')
            return CAIRN_EINVAL;
        if ((rc = cairn_backup_path_clean(o->dirty[i], &p)) != 0)
            return rc;
        if (!in_selection(b, p)) {
            free(p); /* outside the selection: nothing to do */
            continue;
        }
        b->dirty[b->ndirty++] = p;
    }
    if (b->ndirty > 1)
        qsort(b->dirty, b->ndirty, sizeof(*b->dirty), dirty_qcmp);
    /* Drop duplicates and paths inside another dirty path: that one is
     * walked wholly. */
    for (i = 0, j = 0; i < b->ndirty; i++) {
        if (j > 0) {
            prev = b->dirty[j - 1];
            if (strcmp(prev, b->dirty[i]) == 0 ||
                path_below(b->dirty[i], prev, strlen(prev))) {
                free(b->dirty[i]);
                continue;
            }
        }
        b->dirty[j++] = b->dirty[i];
    }
    b->ndirty = j;

    /* Follow the dirty set only against a parent of the same selection. */
    if (par == NULL || !par->have_private || par->npaths != b->npaths)
        return 0;
    for (i = 0; i < b->npaths; i++)
        if (par->paths[i] == NULL || strcmp(par->paths[i], b->paths[i]) != 0)
            return 0;
    if (b->ndirty > 0 && strcmp(b->dirty[0], "/") == 0)
        return 0; /* everything is dirty: a full walk */
    b->dirty_active = 1;
    return 0;
}

void bk_dirty_free(struct bk *b)
{
    size_t i;

    for (i = 0; i < b->ndirty; i++)
        free(b->dirty[i]);
    free(b->dirty);
    b->dirty = NULL;
    b->ndirty = 0;
}

void bk_dirty_root(const struct bk *b, struct bk_dpos *out)
{
    out->whole = !b->dirty_active;
    out->lo = 0;
    out->hi = b->ndirty;
}

enum bk_dirty_kind bk_dirty_child(const struct bk *b, const struct bk_dpos *pos,
                                  const char *path, size_t pathlen,
                                  struct bk_dpos *out_child)
{
    size_t i, lo, hi, mid;

    out_child->whole = 0;
    out_child->lo = out_child->hi = 0;
    i = lower_bound(b->dirty, pos->lo, pos->hi, path);
    if (i == pos->hi)
        return BK_DIRTY_CLEAN;
    if (strcmp(b->dirty[i], path) == 0) {
        out_child->whole = 1;
        return BK_DIRTY_AT;
    }
    if (!path_below(b->dirty[i], path, pathlen))
        return BK_DIRTY_CLEAN;
    /* The dirty paths inside path come together from i on. */
    lo = i + 1;
    hi = pos->hi;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (path_below(b->dirty[mid], path, pathlen))
            lo = mid + 1;
        else
            hi = mid;
    }
    out_child->lo = i;
    out_child->hi = lo;
    return BK_DIRTY_ABOVE;
}

/* Counts of one entry: [0] files, [1] dirs, [2] bytes. */
static void tally(const struct cairn_tree_entry *e, uint64_t acc[3])
{
    if (e->type == CAIRN_NODE_DIR) {
        acc[1]++;
    } else {
        acc[0]++;
        if (e->type == CAIRN_NODE_FILE)
            acc[2] += e->size;
    }
}

void bk_count_entry(struct bk *b, const struct cairn_tree_entry *e)
{
    uint64_t acc[3] = {0, 0, 0};

    tally(e, acc);
    atomic_fetch_add(&b->files, acc[0]);
    atomic_fetch_add(&b->dirs, acc[1]);
    atomic_fetch_add(&b->bytes, acc[2]);
}

/* Count everything inside the old tree id into acc (rare: a directory
 * removed or replaced since the parent). */
static int old_subtree(struct bk *b, struct cairn_blob_codec *codec,
                       const uint8_t id[CAIRN_ID_LEN], int depth,
                       uint64_t acc[3])
{
    struct cairn_tree *t;
    const struct cairn_tree_entry *e;
    uint32_t i;
    int rc;

    if (depth >= OLD_MAX_DEPTH)
        return CAIRN_ECORRUPT;
    if ((rc = cairn_repo_read_tree(b->r, codec, id, &t)) != 0)
        return rc;
    for (i = 0; i < t->nentries && rc == 0; i++) {
        e = &t->entries[i];
        tally(e, acc);
        if (e->type == CAIRN_NODE_DIR && e->has_subtree)
            rc = old_subtree(b, codec, e->subtree, depth + 1, acc);
    }
    cairn_tree_free(t);
    return rc;
}

int bk_dirty_replaced(struct bk *b, struct cairn_blob_codec *codec,
                      const struct cairn_tree *old, const uint8_t *used)
{
    const struct cairn_tree_entry *e;
    uint64_t acc[3] = {0, 0, 0};
    uint32_t i;
    int rc = 0;

    for (i = 0; i < old->nentries && rc == 0; i++) {
        e = &old->entries[i];
        tally(e, acc);
        if (e->type == CAIRN_NODE_DIR && e->has_subtree &&
            (used == NULL || !used[i]))
            rc = old_subtree(b, codec, e->subtree, 1, acc);
    }
    if (rc == 0) {
        atomic_fetch_add(&b->old_files, acc[0]);
        atomic_fetch_add(&b->old_dirs, acc[1]);
        atomic_fetch_add(&b->old_bytes, acc[2]);
    }
    return rc;
}
