/*
 * tree_decode.c - decode a tree blob's plaintext into one allocation.
 *
 * The input is hostile.  Pass 1 walks the bytes checking every length
 * against what remains and every rule of the format (tree_encode.c lists
 * them), and adds up what the decoded tree needs; nothing is allocated
 * until the whole input has been checked, so a count can never ask for
 * more memory than the input could describe.  Pass 2 fills one block:
 *
 *   struct cairn_tree | entries[] | xattrs[] | bytes (ids, strings, values)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/tree.h"

#define TREE_HEADER_LEN 9
#define TREE_MODE_MASK 07777u
#define ALIGN 16

/* A cursor over validated-or-to-be-validated input. */
struct cur {
    const uint8_t *p;
    size_t left;
};

static int take(struct cur *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return -1;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

/* A str16: its bytes (no NUL among them) and length. */
static int take_str16(struct cur *c, const uint8_t **s, size_t *n)
{
    const uint8_t *p;

    if (take(c, 2, &p))
        return -1;
    *n = cairn_le16dec(p);
    if (take(c, *n, s))
        return -1;
    if (*n > 0 && memchr(*s, '\0', *n) != NULL)
        return -1;
    return 0;
}

static int name_valid(const uint8_t *s, size_t n)
{
    if (n == 0 || memchr(s, '/', n) != NULL)
        return 0;
    if (s[0] == '.' && (n == 1 || (n == 2 && s[1] == '.')))
        return 0;
    return 1;
}

/* Is (a, an) strictly before (b, bn) in bytewise order? */
static int name_before(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, (an < bn) ? an : bn);

    return (c < 0) || (c == 0 && an < bn);
}

/* What pass 1 learns. */
struct tree_size {
    size_t nxattrs; /* all entries' xattrs */
    size_t bytes;   /* ids, strings with their NULs, xattr values */
};

/*
 * Pass 1 over one entry: check it, add what it needs to *ts, and return
 * the name (for the ordering check).
 */
static int entry_scan(struct cur *c, struct tree_size *ts, const uint8_t **name,
                      size_t *namelen)
{
    const uint8_t *p, *s;
    size_t n;
    uint8_t type;
    uint16_t nx, i;
    uint32_t ncontent, vlen;

    if (take_str16(c, name, namelen) || !name_valid(*name, *namelen))
        return -1;
    ts->bytes += *namelen + 1;
    if (take(c, 13, &p))
        return -1;
    type = p[0];
    if (type < CAIRN_NODE_FILE || type > CAIRN_NODE_SOCK)
        return -1;
    if ((cairn_le32dec(p + 1) & ~TREE_MODE_MASK) != 0)
        return -1;
    if (take_str16(c, &s, &n)) /* user */
        return -1;
    ts->bytes += n + 1;
    if (take_str16(c, &s, &n)) /* group */
        return -1;
    ts->bytes += n + 1;
    /* times, size, dev, ino, nlink, rdev; nxattrs */
    if (take(c, 62, &p))
        return -1;
    nx = cairn_le16dec(p + 60);
    ts->nxattrs += nx;
    for (i = 0; i < nx; i++) {
        if (take_str16(c, &s, &n) || n == 0)
            return -1;
        ts->bytes += n + 1;
        if (take(c, 4, &p))
            return -1;
        vlen = cairn_le32dec(p);
        if (take(c, vlen, &s))
            return -1;
        ts->bytes += vlen;
    }
    if (take_str16(c, &s, &n)) /* target */
        return -1;
    if (n > 0 && type != CAIRN_NODE_SYMLINK)
        return -1;
    ts->bytes += n + 1;
    if (take(c, 4, &p))
        return -1;
    ncontent = cairn_le32dec(p);
    if (ncontent > 0 && type != CAIRN_NODE_FILE)
        return -1;
    if (ncontent > c->left / CAIRN_ID_LEN)
        return -1;
    n = (size_t)ncontent * CAIRN_ID_LEN;
    (void)take(c, n, &p);
    ts->bytes += n;
    if (take(c, 1, &p))
        return -1;
    if (p[0] > 1 || (p[0] == 1 && type != CAIRN_NODE_DIR))
        return -1;
    if (p[0] == 1 && take(c, CAIRN_ID_LEN, &p))
        return -1;
    return 0;
}

/* Copy a checked str16 into the byte arena as a C string. */
static char *fill_str16(struct cur *c, uint8_t **arena)
{
    size_t n = cairn_le16dec(c->p);
    char *s = (char *)*arena;

    memcpy(s, c->p + 2, n);
    s[n] = '\0';
    c->p += 2 + n;
    *arena += n + 1;
    return s;
}

/* Pass 2 over one entry (already checked). */
static void entry_fill(struct cur *c, struct cairn_tree_entry *e,
                       struct cairn_xattr **xa, uint8_t **arena)
{
    uint16_t i;
    size_t n;

    e->name = fill_str16(c, arena);
    e->type = c->p[0];
    e->mode = cairn_le32dec(c->p + 1);
    e->uid = cairn_le32dec(c->p + 5);
    e->gid = cairn_le32dec(c->p + 9);
    c->p += 13;
    e->user = fill_str16(c, arena);
    e->group = fill_str16(c, arena);
    e->mtime_ns = (int64_t)cairn_le64dec(c->p);
    e->atime_ns = (int64_t)cairn_le64dec(c->p + 8);
    e->ctime_ns = (int64_t)cairn_le64dec(c->p + 16);
    e->size = cairn_le64dec(c->p + 24);
    e->dev = cairn_le64dec(c->p + 32);
    e->ino = cairn_le64dec(c->p + 40);
    e->nlink = cairn_le32dec(c->p + 48);
    e->rdev = cairn_le64dec(c->p + 52);
    e->nxattrs = cairn_le16dec(c->p + 60);
    c->p += 62;
    e->xattrs = (e->nxattrs > 0) ? *xa : NULL;
    for (i = 0; i < e->nxattrs; i++) {
        struct cairn_xattr *x = (*xa)++;

        x->name = fill_str16(c, arena);
        x->len = cairn_le32dec(c->p);
        x->value = *arena;
        memcpy(x->value, c->p + 4, x->len);
        *arena += x->len;
        c->p += 4 + (size_t)x->len;
    }
    e->target = fill_str16(c, arena);
    e->ncontent = cairn_le32dec(c->p);
    c->p += 4;
    if (e->ncontent > 0) {
        n = (size_t)e->ncontent * CAIRN_ID_LEN;
        e->content = (uint8_t(*)[CAIRN_ID_LEN])(void *)*arena;
        memcpy(*arena, c->p, n);
        *arena += n;
        c->p += n;
    } else {
        e->content = NULL;
    }
    e->has_subtree = c->p[0];
    c->p += 1;
    if (e->has_subtree) {
        memcpy(e->subtree, c->p, CAIRN_ID_LEN);
        c->p += CAIRN_ID_LEN;
    } else {
        memset(e->subtree, 0, CAIRN_ID_LEN);
    }
}

static size_t align_up(size_t n)
{
    return (n + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

/*
 * Decode the tree in buf[0..len).  Truncated input, trailing bytes,
 * unsorted or duplicate names, invalid names ('/', NUL, "", ".", ".."), a
 * NUL in any string, an unknown type or any other broken rule of the
 * format is CAIRN_ECORRUPT; a version other than 1 is CAIRN_EVERSION;
 * CAIRN_ENOMEM.  On success *out is one allocation, freed with
 * cairn_tree_free; it does not point into buf.
 */
int cairn_tree_decode(const uint8_t *buf, size_t len, struct cairn_tree **out)
{
    struct tree_size ts = {0, 0};
    struct cur c;
    struct cairn_tree *t;
    struct cairn_xattr *xa;
    const uint8_t *name, *prev = NULL;
    size_t namelen, prevlen = 0, off_entries, off_xattrs, off_bytes, total;
    uint8_t *block, *arena;
    uint32_t n, i;
    int rc;

    if (buf == NULL || len < TREE_HEADER_LEN || memcmp(buf, "CRNT", 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (buf[4] != 1) {
        rc = CAIRN_EVERSION;
        goto err0;
    }
    n = cairn_le32dec(buf + 5);

    /* Pass 1: check and size.  An entry takes at least 89 bytes. */
    c.p = buf + TREE_HEADER_LEN;
    c.left = len - TREE_HEADER_LEN;
    if (n > c.left / 89) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    for (i = 0; i < n; i++) {
        if (entry_scan(&c, &ts, &name, &namelen) != 0 ||
            (prev != NULL && !name_before(prev, prevlen, name, namelen))) {
            rc = CAIRN_ECORRUPT;
            goto err0;
        }
        prev = name;
        prevlen = namelen;
    }
    if (c.left != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }

    /*
     * Every entry, xattr and byte of the result was at least one byte of
     * input, so on 64-bit systems these sums cannot overflow; the checks
     * are for 32-bit ones.
     */
    off_entries = align_up(sizeof(struct cairn_tree));
    if (n > (SIZE_MAX / 2 - off_entries) / sizeof(struct cairn_tree_entry) ||
        ts.nxattrs > (SIZE_MAX / 4) / sizeof(struct cairn_xattr) ||
        ts.bytes > SIZE_MAX / 8) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    off_xattrs =
        align_up(off_entries + (size_t)n * sizeof(struct cairn_tree_entry));
    off_bytes = align_up(off_xattrs + ts.nxattrs * sizeof(struct cairn_xattr));
    total = off_bytes + ts.bytes;
    if ((block = malloc(total)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }

    /* Pass 2: fill. */
    t = (struct cairn_tree *)block;
    t->nentries = n;
    t->entries =
        (n > 0) ? (struct cairn_tree_entry *)(block + off_entries) : NULL;
    xa = (struct cairn_xattr *)(block + off_xattrs);
    arena = block + off_bytes;
    c.p = buf + TREE_HEADER_LEN;
    c.left = len - TREE_HEADER_LEN;
    for (i = 0; i < n; i++)
        entry_fill(&c, &t->entries[i], &xa, &arena);
    *out = t;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}

/* Free a decoded tree.  NULL is fine. */
void cairn_tree_free(struct cairn_tree *t)
{
    free(t);
}
