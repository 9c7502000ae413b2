/*
 * restore_files.c - write the contents of the planned files with a pool of
 * workers.  Each worker takes the next work item (a whole small file, or a
 * range of chunks of a big one), reads runs of consecutive blobs lying
 * side by side in one pack with a single ranged read, opens them with its
 * own codec and writes them at their offsets, skipping all-zero blocks so
 * holes stay holes.  A file is finished (metadata, or removal when its
 * content is damaged) by whoever writes its last piece.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/blob.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"
#include "restore/restore_int.h"

#define RUN_MAX (8u * 1024 * 1024) /* largest single ranged read */
#define HOLE_BLOCK 4096

/*
 * The items are cut into one contiguous run per worker, so that workers
 * mostly create files in different directories (creating entries in one
 * directory is serialised by the kernel); a worker done with its run
 * helps with the others'.
 */
struct rs_seg {
    atomic_size_t next;
    size_t end;
};

struct rs_worker {
    struct rs *rs;
    struct cairn_blob_codec *codec;
    uint8_t *rbuf; /* stored bytes */
    size_t rcap;
    uint8_t *pbuf; /* plaintext */
    size_t pcap;
    int index;
    pthread_t tid;
    int started;
};

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    uint8_t *n;

    if (need <= *cap)
        return 0;
    if ((n = realloc(*p, need)) == NULL)
        return CAIRN_ENOMEM;
    *p = n;
    *cap = need;
    return 0;
}

static int is_zero(const uint8_t *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    ssize_t w;

    while (n > 0) {
        w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/*
 * Write p[0..n) at file offset off, leaving out every whole, aligned
 * HOLE_BLOCK of zeros.  -1 with errno on failure.
 */
static int write_sparse(int fd, const uint8_t *p, size_t n, uint64_t off,
                        uint64_t *wend)
{
    size_t i = 0, run = 0, blk;
    int in_run = 0;

    while (i < n) {
        blk = HOLE_BLOCK - (size_t)((off + i) % HOLE_BLOCK);
        if (blk > n - i)
            blk = n - i;
        if (blk == HOLE_BLOCK && is_zero(p + i, blk)) {
            if (in_run && pwrite_all(fd, p + run, i - run, off + run))
                return -1;
            if (in_run && off + i > *wend)
                *wend = off + i;
            in_run = 0;
        } else if (!in_run) {
            run = i;
            in_run = 1;
        }
        i += blk;
    }
    if (in_run && pwrite_all(fd, p + run, n - run, off + run))
        return -1;
    if (in_run && off + n > *wend)
        *wend = off + n;
    return 0;
}

/* Metadata of a regular file through its descriptor. */
static void file_meta(struct rs *rs, int fd, const struct rs_file *f)
{
    const struct cairn_tree_entry *e = f->e;
    struct timespec ts[2];

    if (e->nxattrs > 0)
        rs_set_xattrs(rs, fd, f->path, e, 1);
    if (rs->o->restore_owner && fchown(fd, e->uid, e->gid) != 0)
        rs_file_error(rs, f->path, errno, "cannot set owner");
    if (fchmod(fd, (mode_t)(e->mode & 07777)) != 0)
        rs_file_error(rs, f->path, errno, "cannot set mode");
    ts[0].tv_sec = e->atime_ns / 1000000000;
    ts[0].tv_nsec = e->atime_ns % 1000000000;
    ts[1].tv_sec = e->mtime_ns / 1000000000;
    ts[1].tv_nsec = e->mtime_ns % 1000000000;
    if (ts[0].tv_nsec < 0) {
        ts[0].tv_nsec += 1000000000;
        ts[0].tv_sec--;
    }
    if (ts[1].tv_nsec < 0) {
        ts[1].tv_nsec += 1000000000;
        ts[1].tv_sec--;
    }
    if (futimens(fd, ts) != 0)
        rs_file_error(rs, f->path, errno, "cannot set times");
}

/* Open (creating when the item is the whole file) the file of an item. */
static int open_item(struct rs *rs, const struct rs_file *f)
{
    int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
    int fd;

    if (!f->split)
        flags |= O_CREAT | O_TRUNC;
    fd = open(f->path, flags, 0600);
    if (fd < 0 && !f->split && (errno == ELOOP || errno == EISDIR)) {
        /* Something else holds the name: replace it. */
        if (unlink(f->path) == 0 || rmdir(f->path) == 0)
            fd = open(f->path, flags, 0600);
    }
    return fd;
}

/*
 * Write chunks [c0, c1) of file f to fd; *wend: the end of the last byte
 * written.  Returns 0, 1 when the content is damaged (reported), -1 when
 * writing failed (reported), or a fatal error.
 */
static int write_chunks(struct rs_worker *w, struct rs_file *f, int fd,
                        size_t c0, size_t c1, uint64_t *wend)
{
    struct rs *rs = w->rs;
    const struct rs_chunk *c = rs->chunks;
    char name[2 * CAIRN_ID_LEN + 1];
    size_t i, j, k;
    uint64_t span;
    int rc;

    for (i = c0; i < c1; i = j) {
        if (atomic_load(&f->damaged) || atomic_load(&f->failed))
            return 1;
        if (rs_cancelled(rs) || atomic_load(&rs->fatal))
            return CAIRN_ECANCELED;
        /* A run: blobs side by side in one pack. */
        span = c[i].length;
        for (j = i + 1; j < c1; j++) {
            if (c[j].offset != c[j - 1].offset + (uint64_t)c[j - 1].length ||
                memcmp(c[j].pack, c[i].pack, CAIRN_ID_LEN) != 0 ||
                span + c[j].length > RUN_MAX)
                break;
            span += c[j].length;
        }
        if ((rc = grow(&w->rbuf, &w->rcap, span)) != 0)
            return rc;
        cairn_hex_encode(c[i].pack, CAIRN_ID_LEN, name);
        rc = cairn_store_get_range(rs->store, CAIRN_OBJ_PACK, name,
                                   c[i].offset, span, w->rbuf);
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rc != 0) {
            atomic_store(&f->damaged, 1);
            rs_damaged(rs, f->spath, rc,
                       rc == CAIRN_ENOENT ? "a pack holding its content is "
                                            "missing"
                                          : "a pack holding its content "
                                            "cannot be read");
            return 1;
        }
        for (k = i; k < j; k++) {
            rc = cairn_blob_open(w->codec, CAIRN_BLOB_DATA, c[k].id,
                                 w->rbuf + (c[k].offset - c[i].offset),
                                 c[k].length, w->pbuf, c[k].raw_length,
                                 rs->o->verify_ids);
            if (rc == CAIRN_ENOMEM)
                return rc;
            if (rc != 0) {
                atomic_store(&f->damaged, 1);
                rs_damaged(rs, f->spath, rc,
                           "a content blob does not authenticate");
                return 1;
            }
            if (c[k].raw_length > 0 &&
                write_sparse(fd, w->pbuf, c[k].raw_length, c[k].file_off,
                             wend)) {
                atomic_store(&f->failed, 1);
                rs_file_error(rs, f->path, errno, "cannot write");
                return -1;
            }
            atomic_fetch_add(&rs->bytes_done, c[k].raw_length);
        }
    }
    return 0;
}

/* Finish a file after its last piece: size, metadata, or removal. */
static void finish_file(struct rs *rs, struct rs_file *f, int fd,
                        uint64_t wend)
{
    if (atomic_load(&f->damaged) || atomic_load(&f->failed)) {
        /* No wrong content is left behind. */
        close(fd);
        unlink(f->path);
        return;
    }
    /* Trailing zeros were skipped: set the length (a split file has it
     * from its creation). */
    if (!f->split && wend != f->length &&
        ftruncate(fd, (off_t)f->length) != 0) {
        rs_file_error(rs, f->path, errno, "cannot set length");
        close(fd);
        unlink(f->path);
        return;
    }
    file_meta(rs, fd, f);
    if (close(fd) != 0) {
        rs_file_error(rs, f->path, errno, "cannot close");
        unlink(f->path);
        return;
    }
    atomic_fetch_add(&rs->files_done, 1);
}

static int do_item(struct rs_worker *w, const struct rs_item *it)
{
    struct rs *rs = w->rs;
    struct rs_file *f = &rs->files[it->f];
    uint64_t wend = 0;
    int fd, rc;

    if (atomic_load(&f->damaged) || atomic_load(&f->failed)) {
        fd = -1;
        rc = 1;
    } else if ((fd = open_item(rs, f)) < 0) {
        if (!atomic_exchange(&f->failed, 1))
            rs_file_error(rs, f->path, errno, "cannot create");
        rc = -1;
    } else {
        rc = write_chunks(w, f, fd, it->c0, it->c1, &wend);
    }
    if (rc < -1) {
        /* Fatal: leave no partial file behind. */
        if (fd >= 0) {
            close(fd);
            unlink(f->path);
        }
        return rc;
    }
    if (atomic_fetch_sub(&f->parts_left, 1) == 1) {
        if (fd >= 0)
            finish_file(rs, f, fd, wend);
        else if (f->split)
            unlink(f->path);
    } else if (fd >= 0) {
        close(fd);
    }
    rs_progress(rs, 0);
    return 0;
}

static void *worker_main(void *arg)
{
    struct rs_worker *w = arg;
    struct rs *rs = w->rs;
    struct rs_seg *sg;
    int s, zero, rc;
    size_t i;

    for (s = 0; s < rs->nthreads; s++) {
        sg = &rs->segs[(w->index + s) % rs->nthreads];
        for (;;) {
            if (atomic_load(&rs->fatal))
                return NULL;
            if (rs_cancelled(rs)) {
                zero = 0;
                atomic_compare_exchange_strong(&rs->fatal, &zero,
                                               CAIRN_ECANCELED);
                return NULL;
            }
            i = atomic_fetch_add(&sg->next, 1);
            if (i >= sg->end)
                break;
            if ((rc = do_item(w, &rs->items[i])) != 0) {
                zero = 0;
                atomic_compare_exchange_strong(&rs->fatal, &zero, rc);
                return NULL;
            }
        }
    }
    return NULL;
}

/* Cut the items into n runs of about equal cost (a file's creation
 * counted as 64 KiB of data). */
static int make_segments(struct rs *rs, int n)
{
    uint64_t total = 0, acc = 0;
    size_t i, start = 0;
    int s = 0;

    if ((rs->segs = calloc((size_t)n, sizeof(*rs->segs))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < rs->nitems; i++)
        total += 65536 + rs->files[rs->items[i].f].length /
                             (rs->files[rs->items[i].f].split ? 4 : 1);
    for (i = 0; i < rs->nitems && s < n - 1; i++) {
        acc += 65536 + rs->files[rs->items[i].f].length /
                           (rs->files[rs->items[i].f].split ? 4 : 1);
        if (acc >= total / (uint64_t)n * (uint64_t)(s + 1)) {
            atomic_init(&rs->segs[s].next, start);
            rs->segs[s].end = i + 1;
            start = i + 1;
            s++;
        }
    }
    for (; s < n; s++) {
        atomic_init(&rs->segs[s].next, start);
        rs->segs[s].end = rs->nitems;
        start = rs->nitems;
    }
    return 0;
}

int rs_write_files(struct rs *rs)
{
    struct rs_worker *w;
    int i, n, rc = 0;

    if (rs->nitems == 0)
        return 0;
    if ((size_t)rs->nthreads > rs->nitems)
        rs->nthreads = (int)rs->nitems;
    n = rs->nthreads;
    if ((rc = make_segments(rs, n)) != 0)
        return rc;
    if ((w = calloc((size_t)n, sizeof(*w))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    for (i = 0; i < n; i++) {
        w[i].rs = rs;
        w[i].index = i;
        w[i].codec = cairn_blob_codec_new(cairn_repo_keys(rs->repo), 0);
        if (w[i].codec == NULL ||
            grow(&w[i].pbuf, &w[i].pcap,
                 rs->max_raw > 0 ? rs->max_raw : 1) != 0) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
    }
    for (i = 1; i < n; i++) {
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            break; /* fewer workers; the others still finish the job */
        w[i].started = 1;
    }
    worker_main(&w[0]);
    for (i = 1; i < n; i++)
        if (w[i].started)
            pthread_join(w[i].tid, NULL);
    rc = atomic_load(&rs->fatal);

err1:
    for (i = 0; i < n; i++) {
        cairn_blob_codec_free(w[i].codec);
        free(w[i].rbuf);
        free(w[i].pbuf);
    }
    free(w);
err0:
    free(rs->segs);
    rs->segs = NULL;
    return rc;
}
