/*
 * download.c - a snapshot's files as a tar or zip stream (download.h).
 *
 * libarchive writes to a callback that appends to d->out; download_read
 * hands those bytes out and, when they run short, takes one step: write
 * the next entry's header, or decrypt the next blob of the current file
 * and write it.  The walk keeps a stack of decoded trees (one per
 * directory level being listed), so memory grows with the depth, not
 * with the number of files.
 *
 * In a tar, a file with more than one link is written once: the first of
 * its dev/ino carries the content, the others are hard-link entries to it
 * (counted once against the size cap).  A zip has no hard links: each is
 * a copy.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/browse.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/tree.h"

#include "download.h"

#define ZERO_CHUNK 65536

struct frame {
    struct cairn_tree *t;
    uint32_t i, end;
    size_t plen; /* the archive path prefix's length in d->path */
};

/* A file with more than one link (tar only). */
struct link {
    uint64_t dev, ino;
    int used;
    char *path; /* the archive path it was written at; NULL before */
};

struct download {
    struct cairn_repo *r;
    enum download_format fmt;
    struct link *links; /* open addressing by dev/ino */
    size_t nlinks, links_cap;
    const struct cairn_snapshot *s;
    struct cairn_blob_codec *codec;
    struct archive *a;
    char **paths;
    size_t npaths, next_path;

    /* the walk */
    struct frame *st;
    size_t depth, cap;
    char *path;
    size_t path_cap;

    /* the file being written */
    const struct cairn_tree_entry *file;
    uint32_t content_i;
    uint64_t file_done;
    int file_damaged;

    /* archive bytes made and not yet read */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    int out_err;

    int finished, dead;
    uint64_t files, bytes, skipped;             /* planned */
    uint64_t done_files, done_bytes, damaged;   /* so far */
};

/* ---- paths ---- */

/* Is p absolute with no "." or ".." components?  Empty components
 * ("//") are allowed and ignored, as cairn_browse_walk does. */
static int path_valid(const char *p)
{
    const char *c, *e;

    if (p == NULL || p[0] != '/' || strlen(p) > 4096)
        return 0;
    for (c = p; *c != '\0'; c = e) {
        while (*c == '/')
            c++;
        for (e = c; *e != '\0' && *e != '/'; e++)
            ;
        if ((e - c == 1 && c[0] == '.') ||
            (e - c == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
    }
    return 1;
}

/* The last component of p (its length in *len; 0 for the root). */
static const char *path_top(const char *p, size_t *len)
{
    size_t n = strlen(p), e;

    while (n > 0 && p[n - 1] == '/')
        n--;
    e = n;
    while (n > 0 && p[n - 1] != '/')
        n--;
    *len = e - n;
    return p + n;
}

/* ---- hard links ---- */

static size_t link_slot(const struct link *v, size_t cap, uint64_t dev,
                        uint64_t ino)
{
    size_t h = (size_t)((dev * 0x9e3779b97f4a7c15u) ^
                        (ino * 0xc2b2ae3d27d4eb4fu));

    for (h ^= h >> 29;; h++)
        if (!v[h & (cap - 1)].used ||
            (v[h & (cap - 1)].dev == dev && v[h & (cap - 1)].ino == ino))
            return h & (cap - 1);
}

/* e's link record, or NULL; with add (*added then says whether it is
 * new), made if there is none, NULL meaning out of memory. */
static struct link *link_get(struct download *d,
                             const struct cairn_tree_entry *e, int add,
                             int *added)
{
    struct link *nv, *l;
    size_t i, ncap;

    if (d->links_cap > 0) {
        l = &d->links[link_slot(d->links, d->links_cap, e->dev, e->ino)];
        if (l->used)
            return l;
    }
    if (!add)
        return NULL;
    if ((d->nlinks + 1) * 2 > d->links_cap) {
        ncap = d->links_cap ? d->links_cap * 2 : 64;
        if ((nv = calloc(ncap, sizeof(*nv))) == NULL)
            return NULL;
        for (i = 0; i < d->links_cap; i++)
            if (d->links[i].used)
                nv[link_slot(nv, ncap, d->links[i].dev, d->links[i].ino)] =
                    d->links[i];
        free(d->links);
        d->links = nv;
        d->links_cap = ncap;
    }
    l = &d->links[link_slot(d->links, d->links_cap, e->dev, e->ino)];
    l->dev = e->dev;
    l->ino = e->ino;
    l->used = 1;
    d->nlinks++;
    *added = 1;
    return l;
}

/* ---- planning ---- */

static int count_one(void *arg, const char *path, const struct cairn_tree_entry *e)
{
    struct download *d = arg;
    int added = 0;

    (void)path;
    switch (e->type) {
    case CAIRN_NODE_FILE:
        d->files++;
        if (d->fmt == DOWNLOAD_TAR && e->nlink > 1) {
            if (link_get(d, e, 1, &added) == NULL)
                return CAIRN_ENOMEM;
            if (!added)
                break; /* a hard link: no content of its own */
        }
        d->bytes += e->size;
        break;
    case CAIRN_NODE_DIR:
    case CAIRN_NODE_SYMLINK:
        break;
    default:
        d->skipped++;
    }
    return 0;
}

static int out_write_cb_open(struct archive *a, void *arg)
{
    (void)a;
    (void)arg;
    return ARCHIVE_OK;
}

/* libarchive's output: append to d->out. */
static la_ssize_t out_write_cb(struct archive *a, void *arg, const void *buf,
                               size_t len)
{
    struct download *d = arg;

    (void)a;
    if (d->out_len + len > d->out_cap) {
        size_t cap = d->out_cap ? d->out_cap : 65536;
        uint8_t *p;

        while (cap < d->out_len + len)
            cap *= 2;
        if ((p = malloc(cap)) == NULL) {
            d->out_err = CAIRN_ENOMEM;
            return -1;
        }
        if (d->out_len > 0)
            memcpy(p, d->out, d->out_len);
        if (d->out != NULL) {
            cairn_wipe(d->out, d->out_cap);
            free(d->out);
        }
        d->out = p;
        d->out_cap = cap;
    }
    memcpy(d->out + d->out_len, buf, len);
    d->out_len += len;
    return (la_ssize_t)len;
}

static int out_close_cb(struct archive *a, void *arg)
{
    (void)a;
    (void)arg;
    return ARCHIVE_OK;
}

/* See download.h. */
int download_new(struct cairn_repo *r, const struct cairn_snapshot *s,
                 const char *const *paths, size_t npaths,
                 enum download_format fmt, struct download **out,
                 size_t *out_bad)
{
    struct download *d;
    size_t i, j, li, lj;
    const char *ti, *tj;
    int rc;

    if (npaths == 0 || npaths > DOWNLOAD_PATHS_MAX ||
        (fmt != DOWNLOAD_TAR && fmt != DOWNLOAD_ZIP))
        return CAIRN_EINVAL;
    for (i = 0; i < npaths; i++) {
        if (!path_valid(paths[i])) {
            if (out_bad != NULL)
                *out_bad = i;
            return CAIRN_EINVAL;
        }
        ti = path_top(paths[i], &li);
        if (li == 0 && npaths > 1) {
            if (out_bad != NULL)
                *out_bad = i;
            return CAIRN_EINVAL;
        }
        for (j = 0; j < i; j++) {
            tj = path_top(paths[j], &lj);
            if (li == lj && memcmp(ti, tj, li) == 0) {
                if (out_bad != NULL)
                    *out_bad = i;
                return CAIRN_EINVAL;
            }
        }
    }
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return CAIRN_ENOMEM;
    d->r = r;
    d->s = s;
    d->fmt = fmt;
    rc = CAIRN_ENOMEM;
    if ((d->paths = calloc(npaths, sizeof(*d->paths))) == NULL)
        goto err;
    d->npaths = npaths;
    for (i = 0; i < npaths; i++)
        if ((d->paths[i] = strdup(paths[i])) == NULL)
            goto err;
    for (i = 0; i < npaths; i++) {
        if ((rc = cairn_browse_walk(r, s, paths[i], 1, count_one, d)) != 0) {
            if (rc == CAIRN_ENOENT && out_bad != NULL)
                *out_bad = i;
            goto err;
        }
    }
    rc = CAIRN_ENOMEM;
    if ((d->codec = cairn_blob_codec_new(cairn_repo_keys(r), 0)) == NULL)
        goto err;
    if ((d->path = malloc(256)) == NULL)
        goto err;
    d->path_cap = 256;
    if ((d->a = archive_write_new()) == NULL)
        goto err;
    rc = CAIRN_EIO;
    if (fmt == DOWNLOAD_TAR) {
        if (archive_write_set_format_pax(d->a) != ARCHIVE_OK)
            goto err;
    } else {
        if (archive_write_set_format_zip(d->a) != ARCHIVE_OK ||
            archive_write_set_format_option(d->a, "zip", "compression",
                                            "store") != ARCHIVE_OK)
            goto err;
    }
    if (archive_write_set_bytes_per_block(d->a, 0) != ARCHIVE_OK ||
        archive_write_open(d->a, d, out_write_cb_open, out_write_cb,
                           out_close_cb) != ARCHIVE_OK)
        goto err;
    *out = d;
    return 0;

err:
    download_free(d);
    return rc;
}

void download_totals(const struct download *d, uint64_t *out_files,
                     uint64_t *out_bytes, uint64_t *out_skipped)
{
    if (out_files != NULL)
        *out_files = d->files;
    if (out_bytes != NULL)
        *out_bytes = d->bytes;
    if (out_skipped != NULL)
        *out_skipped = d->skipped;
}

int download_fits(const struct download *d, uint64_t max_bytes)
{
    return d->bytes <= max_bytes;
}

void download_progress(const struct download *d, uint64_t *out_files,
                       uint64_t *out_bytes, uint64_t *out_damaged)
{
    if (out_files != NULL)
        *out_files = d->done_files;
    if (out_bytes != NULL)
        *out_bytes = d->done_bytes;
    if (out_damaged != NULL)
        *out_damaged = d->damaged;
}

/* ---- the walk ---- */

static int frame_push(struct download *d, struct cairn_tree *t, uint32_t i,
                      uint32_t end, size_t plen)
{
    if (d->depth == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct frame *p = realloc(d->st, nc * sizeof(*p));

        if (p == NULL) {
            cairn_tree_free(t);
            return CAIRN_ENOMEM;
        }
        d->st = p;
        d->cap = nc;
    }
    d->st[d->depth].t = t;
    d->st[d->depth].i = i;
    d->st[d->depth].end = end;
    d->st[d->depth].plen = plen;
    d->depth++;
    return 0;
}

/* Make d->path hold its first plen bytes, then name (and NUL). */
static int path_set(struct download *d, size_t plen, const char *name)
{
    size_t n = strlen(name);

    if (plen + n + 2 > d->path_cap) {
        size_t cap = (plen + n + 2) * 2;
        char *p = realloc(d->path, cap);

        if (p == NULL)
            return CAIRN_ENOMEM;
        d->path = p;
        d->path_cap = cap;
    }
    memcpy(d->path + plen, name, n + 1);
    return 0;
}

/*
 * Start the next path asked for: push a frame holding just its entry (in
 * its parent's tree), or the root tree's entries for "/".
 */
static int start_path(struct download *d, const char *p)
{
    struct cairn_tree *t = NULL, *nt;
    const struct cairn_tree_entry *e = NULL;
    uint8_t id[CAIRN_ID_LEN];
    const char *c = p, *q;
    char *name;
    int rc;

    memcpy(id, d->s->root, CAIRN_ID_LEN);
    for (;;) {
        while (*c == '/')
            c++;
        if (*c == '\0')
            break;
        for (q = c; *q != '\0' && *q != '/'; q++)
            ;
        if (e != NULL) {
            if (e->type != CAIRN_NODE_DIR || !e->has_subtree) {
                rc = CAIRN_ENOENT;
                goto err;
            }
            memcpy(id, e->subtree, CAIRN_ID_LEN);
        }
        if ((rc = cairn_repo_read_tree(d->r, d->codec, id, &nt)) != 0)
            goto err;
        cairn_tree_free(t);
        t = nt;
        if ((name = strndup(c, (size_t)(q - c))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err;
        }
        e = cairn_tree_find(t, name);
        free(name);
        if (e == NULL) {
            rc = CAIRN_ENOENT;
            goto err;
        }
        c = q;
    }
    if (e == NULL) {
        if ((rc = cairn_repo_read_tree(d->r, d->codec, d->s->root, &t)) != 0)
            goto err;
        return frame_push(d, t, 0, t->nentries, 0);
    }
    return frame_push(d, t, (uint32_t)(e - t->entries),
                      (uint32_t)(e - t->entries) + 1, 0);

err:
    cairn_tree_free(t);
    return rc;
}

static int la_err(struct download *d)
{
    return d->out_err ? d->out_err : CAIRN_EIO;
}

/* Write e's header as d->path (link: a hard link to that path). */
static int write_header(struct download *d, const struct cairn_tree_entry *e,
                        const char *link)
{
    struct archive_entry *ae;
    int64_t sec = e->mtime_ns / 1000000000, nsec = e->mtime_ns % 1000000000;
    int rc = 0;

    if (nsec < 0) {
        nsec += 1000000000;
        sec--;
    }
    if ((ae = archive_entry_new()) == NULL)
        return CAIRN_ENOMEM;
    archive_entry_set_pathname_utf8(ae, d->path);
    archive_entry_set_perm(ae, (mode_t)(e->mode & 07777));
    archive_entry_set_mtime(ae, (time_t)sec, (long)nsec);
    archive_entry_set_uid(ae, e->uid);
    archive_entry_set_gid(ae, e->gid);
    if (e->user[0] != '\0')
        archive_entry_set_uname_utf8(ae, e->user);
    if (e->group[0] != '\0')
        archive_entry_set_gname_utf8(ae, e->group);
    switch (e->type) {
    case CAIRN_NODE_FILE:
        archive_entry_set_filetype(ae, AE_IFREG);
        if (link != NULL) {
            archive_entry_set_hardlink_utf8(ae, link);
            archive_entry_set_size(ae, 0);
        } else {
            archive_entry_set_size(ae, (la_int64_t)e->size);
        }
        break;
    case CAIRN_NODE_DIR:
        archive_entry_set_filetype(ae, AE_IFDIR);
        archive_entry_set_size(ae, 0);
        break;
    default: /* CAIRN_NODE_SYMLINK */
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink_utf8(ae, e->target);
        archive_entry_set_size(ae, 0);
        break;
    }
    if (archive_write_header(d->a, ae) < ARCHIVE_WARN)
        rc = la_err(d);
    archive_entry_free(ae);
    return rc;
}

static int write_data(struct download *d, const uint8_t *p, size_t n)
{
    la_ssize_t w;

    while (n > 0) {
        if ((w = archive_write_data(d->a, p, n)) <= 0)
            return la_err(d);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The next piece of the current file: one blob, or the end. */
static int file_step(struct download *d)
{
    const struct cairn_tree_entry *e = d->file;
    static const uint8_t zeros[ZERO_CHUNK];
    uint8_t *blob = NULL;
    size_t len = 0, n;
    int rc;

    if (d->content_i < e->ncontent && d->file_done < e->size) {
        rc = cairn_repo_read_blob(d->r, d->codec, e->content[d->content_i],
                                  CAIRN_BLOB_DATA, &blob, &len);
        d->content_i++;
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rc != 0) {
            /* Missing or damaged: zeros for the rest, reported. */
            d->file_damaged = 1;
            d->content_i = e->ncontent;
            return 0;
        }
        n = len;
        if (n > e->size - d->file_done)
            n = (size_t)(e->size - d->file_done);
        rc = write_data(d, blob, n);
        cairn_wipe(blob, len);
        free(blob);
        if (rc != 0)
            return rc;
        d->file_done += n;
        d->done_bytes += n;
        return 0;
    }
    /* The archive header promised e->size bytes. */
    if (d->file_done < e->size) {
        d->file_damaged = 1;
        n = e->size - d->file_done > ZERO_CHUNK
                ? ZERO_CHUNK
                : (size_t)(e->size - d->file_done);
        if ((rc = write_data(d, zeros, n)) != 0)
            return rc;
        d->file_done += n;
        return 0;
    }
    if (archive_write_finish_entry(d->a) < ARCHIVE_WARN)
        return la_err(d);
    d->done_files++;
    d->damaged += d->file_damaged != 0;
    d->file = NULL;
    return 0;
}

/* One step of the archive. */
static int step(struct download *d)
{
    const struct cairn_tree_entry *e;
    struct cairn_tree *sub;
    struct link *l = NULL;
    struct frame *f;
    size_t plen;
    int rc;

    if (d->file != NULL)
        return file_step(d);
    if (d->depth == 0) {
        if (d->next_path < d->npaths)
            return start_path(d, d->paths[d->next_path++]);
        if (archive_write_close(d->a) != ARCHIVE_OK)
            return la_err(d);
        d->finished = 1;
        return 0;
    }
    f = &d->st[d->depth - 1];
    if (f->i == f->end) {
        cairn_tree_free(f->t);
        d->depth--;
        return 0;
    }
    e = &f->t->entries[f->i++];
    plen = f->plen;
    if (e->type != CAIRN_NODE_FILE && e->type != CAIRN_NODE_DIR &&
        e->type != CAIRN_NODE_SYMLINK)
        return 0;
    if ((rc = path_set(d, plen, e->name)) != 0)
        return rc;
    if (e->type == CAIRN_NODE_FILE && e->nlink > 1 &&
        (l = link_get(d, e, 0, NULL)) != NULL && l->path != NULL) {
        /* Its content is in the archive already. */
        if ((rc = write_header(d, e, l->path)) != 0)
            return rc;
        d->done_files++;
        return 0;
    }
    if ((rc = write_header(d, e, NULL)) != 0)
        return rc;
    if (l != NULL && (l->path = strdup(d->path)) == NULL)
        return CAIRN_ENOMEM;
    if (e->type == CAIRN_NODE_FILE) {
        d->file = e;
        d->content_i = 0;
        d->file_done = 0;
        d->file_damaged = 0;
        return 0;
    }
    if (e->type == CAIRN_NODE_DIR && e->has_subtree) {
        plen += strlen(e->name);
        d->path[plen++] = '/';
        if ((rc = cairn_repo_read_tree(d->r, d->codec, e->subtree, &sub)) !=
            0)
            return rc;
        return frame_push(d, sub, 0, sub->nentries, plen);
    }
    return 0;
}

/* See download.h. */
long long download_read(struct download *d, uint8_t *buf, size_t max)
{
    size_t n;
    int rc;

    if (d->dead)
        return CAIRN_EINVAL;
    while (d->out_off == d->out_len) {
        d->out_off = d->out_len = 0;
        if (d->finished)
            return 0;
        if ((rc = step(d)) != 0) {
            d->dead = 1;
            return rc;
        }
    }
    n = d->out_len - d->out_off;
    if (n > max)
        n = max;
    memcpy(buf, d->out + d->out_off, n);
    d->out_off += n;
    return (long long)n;
}

/* See download.h. */
void download_free(struct download *d)
{
    size_t i;

    if (d == NULL)
        return;
    if (d->a != NULL)
        archive_write_free(d->a);
    while (d->depth > 0)
        cairn_tree_free(d->st[--d->depth].t);
    free(d->st);
    for (i = 0; d->paths != NULL && i < d->npaths; i++)
        free(d->paths[i]);
    free(d->paths);
    free(d->path);
    for (i = 0; i < d->links_cap; i++)
        free(d->links[i].path);
    free(d->links);
    if (d->out != NULL) {
        cairn_wipe(d->out, d->out_cap);
        free(d->out);
    }
    cairn_blob_codec_free(d->codec);
    free(d);
}
