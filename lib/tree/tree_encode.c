/*
 * tree_encode.c - encode a directory listing as a tree blob's plaintext,
 * and the helpers that work on a decoded tree (find, refs).
 *
 * The encoding is canonical: one tree has exactly one encoding, so equal
 * directories give equal blob ids, and decode(encode(t)) re-encodes to the
 * same bytes.  The rules the encoder enforces are the ones the decoder
 * checks (tree_decode.c); docs/FORMAT.md ("Tree") states them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/pack.h"
#include "cairn/tree.h"

#define TREE_HEADER_LEN 9 /* "CRNT" | version u8 | nentries u32 */
/* Fixed bytes of an entry (all but the contents of its strings, xattrs
 * and content ids). */
#define TREE_ENTRY_FIXED 88
#define TREE_XATTR_FIXED 6
#define TREE_MODE_MASK 07777u

/* Length of an optional string: NULL counts as "". */
static size_t opt_len(const char *s)
{
    return (s != NULL) ? strlen(s) : 0;
}

/* A name is 1..65535 bytes, without '/', and not "." or "..". */
static int name_valid(const char *s, size_t n)
{
    if (n == 0 || n > UINT16_MAX)
        return 0;
    if (memchr(s, '/', n) != NULL)
        return 0;
    if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
        return 0;
    return 1;
}

/* Check one entry against the format's rules; add its encoded size. */
static int entry_check(const struct cairn_tree_entry *e, size_t *size)
{
    size_t n, sz, i;

    if (e->name == NULL || !name_valid(e->name, strlen(e->name)))
        return CAIRN_EINVAL;
    if (e->type < CAIRN_NODE_FILE || e->type > CAIRN_NODE_SOCK)
        return CAIRN_EINVAL;
    if ((e->mode & ~TREE_MODE_MASK) != 0)
        return CAIRN_EINVAL;
    sz = TREE_ENTRY_FIXED + strlen(e->name);
    if ((n = opt_len(e->user)) > UINT16_MAX)
        return CAIRN_EINVAL;
    sz += n;
    if ((n = opt_len(e->group)) > UINT16_MAX)
        return CAIRN_EINVAL;
    sz += n;
    if ((n = opt_len(e->target)) > UINT16_MAX)
        return CAIRN_EINVAL;
    if (n > 0 && e->type != CAIRN_NODE_SYMLINK)
        return CAIRN_EINVAL;
    sz += n;
    if (e->nxattrs > 0 && e->xattrs == NULL)
        return CAIRN_EINVAL;
    for (i = 0; i < e->nxattrs; i++) {
        const struct cairn_xattr *x = &e->xattrs[i];

        if (x->name == NULL || (n = strlen(x->name)) == 0 || n > UINT16_MAX)
            return CAIRN_EINVAL;
        if (x->len > 0 && x->value == NULL)
            return CAIRN_EINVAL;
        sz += TREE_XATTR_FIXED + n + x->len;
        if (sz < x->len)
            return CAIRN_ERANGE;
    }
    if (e->ncontent > 0 && (e->type != CAIRN_NODE_FILE || e->content == NULL))
        return CAIRN_EINVAL;
    if ((size_t)e->ncontent > (SIZE_MAX - sz) / CAIRN_ID_LEN)
        return CAIRN_ERANGE;
    sz += (size_t)e->ncontent * CAIRN_ID_LEN;
    if (e->has_subtree) {
        if (e->type != CAIRN_NODE_DIR)
            return CAIRN_EINVAL;
        sz += CAIRN_ID_LEN;
    }
    if (sz > SIZE_MAX - *size)
        return CAIRN_ERANGE;
    *size += sz;
    return 0;
}

static uint8_t *put_str16(uint8_t *p, const char *s)
{
    size_t n = opt_len(s);

    cairn_le16enc(p, (uint16_t)n);
    if (n > 0)
        memcpy(p + 2, s, n);
    return p + 2 + n;
}

static uint8_t *entry_put(uint8_t *p, const struct cairn_tree_entry *e)
{
    uint16_t i;

    p = put_str16(p, e->name);
    *p++ = e->type;
    cairn_le32enc(p, e->mode);
    cairn_le32enc(p + 4, e->uid);
    cairn_le32enc(p + 8, e->gid);
    p = put_str16(p + 12, e->user);
    p = put_str16(p, e->group);
    cairn_le64enc(p, (uint64_t)e->mtime_ns);
    cairn_le64enc(p + 8, (uint64_t)e->atime_ns);
    cairn_le64enc(p + 16, (uint64_t)e->ctime_ns);
    cairn_le64enc(p + 24, e->size);
    cairn_le64enc(p + 32, e->dev);
    cairn_le64enc(p + 40, e->ino);
    cairn_le32enc(p + 48, e->nlink);
    cairn_le64enc(p + 52, e->rdev);
    cairn_le16enc(p + 60, e->nxattrs);
    p += 62;
    for (i = 0; i < e->nxattrs; i++) {
        const struct cairn_xattr *x = &e->xattrs[i];

        p = put_str16(p, x->name);
        cairn_le32enc(p, x->len);
        if (x->len > 0)
            memcpy(p + 4, x->value, x->len);
        p += 4 + (size_t)x->len;
    }
    p = put_str16(p, e->target);
    cairn_le32enc(p, e->ncontent);
    p += 4;
    if (e->ncontent > 0) {
        memcpy(p, e->content, (size_t)e->ncontent * CAIRN_ID_LEN);
        p += (size_t)e->ncontent * CAIRN_ID_LEN;
    }
    *p++ = e->has_subtree ? 1 : 0;
    if (e->has_subtree) {
        memcpy(p, e->subtree, CAIRN_ID_LEN);
        p += CAIRN_ID_LEN;
    }
    return p;
}

/*
 * Encode t, appending to out.  Entries must be sorted by name (bytewise,
 * strictly increasing), names valid, types known, mode within 07777, a
 * target only on a symlink, content ids only on a regular file, a subtree
 * only on a directory, xattr names non-empty: CAIRN_EINVAL otherwise,
 * CAIRN_ERANGE/CAIRN_ENOMEM if out cannot grow.  out is unchanged on
 * failure.  The caller owns t and out.
 */
int cairn_tree_encode(const struct cairn_tree *t, struct cairn_buf *out)
{
    size_t size = TREE_HEADER_LEN;
    uint32_t i;
    uint8_t *p;
    int rc;

    if (t == NULL || out == NULL || (t->nentries > 0 && t->entries == NULL))
        return CAIRN_EINVAL;

    /* Pass 1: check everything and size the result. */
    for (i = 0; i < t->nentries; i++) {
        if ((rc = entry_check(&t->entries[i], &size)) != 0)
            goto err0;
        if (i > 0 && strcmp(t->entries[i - 1].name, t->entries[i].name) >= 0) {
            rc = CAIRN_EINVAL;
            goto err0;
        }
    }

    /* Pass 2: write straight into the reserved space. */
    if ((rc = cairn_buf_reserve(out, size)) != 0)
        goto err0;
    p = out->data + out->len;
    memcpy(p, "CRNT", 4);
    p[4] = 1;
    cairn_le32enc(p + 5, t->nentries);
    p += TREE_HEADER_LEN;
    for (i = 0; i < t->nentries; i++)
        p = entry_put(p, &t->entries[i]);
    out->len += size;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}

/*
 * Find the entry called name by binary search (entries are sorted, and
 * names hold no NUL, so strcmp orders them as the encoding does).  NULL if
 * absent.  The result points into t.
 */
const struct cairn_tree_entry *cairn_tree_find(const struct cairn_tree *t,
                                               const char *name)
{
    uint32_t lo = 0, hi, mid;
    int c;

    if (t == NULL || name == NULL)
        return NULL;
    hi = t->nentries;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(name, t->entries[mid].name);
        if (c == 0)
            return &t->entries[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/*
 * The ids t refers to, in entry order (each entry's content ids, then its
 * subtree id).  *out_refs is malloc'ed and owned by the caller (NULL when
 * there are none); *out_n is their number.  CAIRN_ERANGE if there are more
 * than CAIRN_TREE_REFS_MAX, CAIRN_ENOMEM.
 */
int cairn_tree_refs(const struct cairn_tree *t,
                    uint8_t (**out_refs)[CAIRN_ID_LEN], uint32_t *out_n)
{
    uint8_t(*refs)[CAIRN_ID_LEN] = NULL;
    uint64_t n = 0;
    uint32_t i, k = 0;
    int rc;

    if (t == NULL || out_refs == NULL || out_n == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    for (i = 0; i < t->nentries; i++)
        n += (uint64_t)t->entries[i].ncontent +
             (t->entries[i].has_subtree ? 1 : 0);
    if (n > CAIRN_TREE_REFS_MAX) {
        rc = CAIRN_ERANGE;
        goto err0;
    }
    if (n > 0) {
        if ((refs = malloc((size_t)n * CAIRN_ID_LEN)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err0;
        }
        for (i = 0; i < t->nentries; i++) {
            const struct cairn_tree_entry *e = &t->entries[i];

            if (e->ncontent > 0) {
                memcpy(refs[k], e->content, (size_t)e->ncontent * CAIRN_ID_LEN);
                k += e->ncontent;
            }
            if (e->has_subtree)
                memcpy(refs[k++], e->subtree, CAIRN_ID_LEN);
        }
    }
    *out_refs = refs;
    *out_n = (uint32_t)n;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}
