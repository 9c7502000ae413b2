/*
 * restore_files.c - write the contents of the planned files with a pool of
 * workers.  Each worker takes the next unit of work: a run of whole small
 * files, whose blobs it sorts by pack and offset and fetches with one
 * ranged read per run of neighbouring blobs (so a store over HTTP answers
 * a few requests, not one per file), or one item (a whole file, or a range
 * of chunks of a big one), read in runs of consecutive blobs.  Blobs are
 * opened with the worker's own codec and written at their offsets,
 * skipping all-zero blocks so holes stay holes.  Every file is written
 * unnamed (or at a temporary name) and put in place, with its metadata,
 * by whoever writes its last piece (or removed when its content is
 * damaged): no partial file ever has its real name.  Files are created
 * and named relative to their directory, which each worker keeps open
 * while its files stay in it: a path walked from the root for every file
 * (twice: create, rename) was a tenth of a restore's CPU time.
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
/* Fetching a unit: bytes between two blobs of a pack read (and dropped)
 * rather than asked for in another request. */
#define GAP_MAX (32u * 1024)

/*
 * The units are cut into one contiguous run (segment) per worker, so that
 * workers mostly create files in different directories (creating entries
 * in one directory is serialised by the kernel); a worker with nothing in
 * its own segment helps with the others'.  Planning cuts the segments as
 * it goes, by the cost the whole plan was estimated at beforehand: a
 * segment's end is SIZE_MAX until known, and its next is SIZE_MAX until
 * planning reaches it.
 */
struct rs_seg {
    atomic_size_t next;
    atomic_size_t end;
};

struct rs_worker {
    struct rs *rs;
    struct cairn_blob_codec *codec;
    uint8_t *rbuf; /* stored bytes */
    size_t rcap;
    uint8_t *pbuf; /* plaintext */
    size_t pcap;
    size_t *order; /* a unit's chunks, sorted by pack and offset */
    uint64_t *pos;  /* where each chunk of the unit lies in rbuf */
    size_t ocap;
    int dirfd;       /* directory of the last file worked on, or -1 */
    const char *dir; /* its path: the first dirlen bytes of a file's path */
    size_t dirlen;
    gid_t new_gid;   /* the group a file created there gets */
    int new_gid_ok;
    int index;
    pthread_t tid;
    int started;
};

/* The workers, and what planning has handed them so far. */
struct rs_pool {
    struct rs_worker *w;
    int nw;
    struct rs_seg *segs;
    int nsegs;
    int cur;             /* the segment planning adds to */
    uint64_t cost_total; /* the whole plan's estimated cost */
    uint64_t cost_acc;   /* ... of the units planned so far */
    atomic_size_t units_ready; /* rs->units[0, units_ready) are planned */
    atomic_int planned;        /* all of them are */
    pthread_mutex_t lock;      /* for sleeping and waking only */
    pthread_cond_t cond;
    int waiting;
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

/* The mode a whole file is created with: its own permissions, and
 * always read and write for its owner, who writes it. */
static mode_t create_mode(const struct rs_file *f)
{
    return (mode_t)((f->e->mode & 0777) | 0600);
}

/*
 * Metadata of a regular file through its descriptor.  A file created
 * whole by this worker (not split) already has the owner and mode it was
 * created with: set only what differs (two system calls saved per file).
 */
static void file_meta(struct rs_worker *w, int fd, const struct rs_file *f)
{
    struct rs *rs = w->rs;
    const struct cairn_tree_entry *e = f->e;
    mode_t want = (mode_t)(e->mode & 07777);
    struct timespec ts[2];
    int owner_set = 0, mode_set = 0;

    if (!f->split) {
        owner_set = w->new_gid_ok && e->uid == rs->euid &&
                    e->gid == w->new_gid;
        mode_set = rs->umask >= 0 &&
                   want == (create_mode(f) & ~(mode_t)rs->umask);
    }
    if (e->nxattrs > 0)
        rs_set_xattrs(rs, fd, f->path, e, 1);
    if (rs->o->restore_owner && !owner_set &&
        fchown(fd, e->uid, e->gid) != 0)
        rs_file_error(rs, f->path, errno, "cannot set owner");
    if (!mode_set && fchmod(fd, want) != 0)
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

/*
 * The directory of f (opened as a path, kept for the next file in it),
 * with the last components of f's final and temporary names (which lie
 * in the same directory).  -1 with errno when it cannot be opened.
 */
static int file_dir(struct rs_worker *w, const struct rs_file *f,
                    const char **name, const char **tmp)
{
    const char *slash = strrchr(f->path, '/');
    size_t dl = slash != NULL ? (size_t)(slash - f->path) : 0;
    char buf[PATH_MAX];
    struct stat st;

    *name = slash != NULL ? slash + 1 : f->path;
    *tmp = f->tmp + (slash != NULL ? dl + 1 : 0);
    if (w->dirfd >= 0 && dl == w->dirlen &&
        memcmp(f->path, w->dir, dl) == 0)
        return w->dirfd;
    if (w->dirfd >= 0)
        close(w->dirfd);
    w->dirfd = -1;
    if (dl >= sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, f->path, dl);
    buf[dl] = '\0';
    w->dirfd = open(slash == NULL ? "." : dl == 0 ? "/" : buf,
                    O_PATH | O_DIRECTORY | O_CLOEXEC);
    w->dir = f->path;
    w->dirlen = dl;
    /* New files take the directory's group when it is set-group-ID. */
    w->new_gid_ok = w->dirfd >= 0 && fstat(w->dirfd, &st) == 0;
    if (w->new_gid_ok)
        w->new_gid = (st.st_mode & S_ISGID) ? st.st_gid : w->rs->egid;
    return w->dirfd;
}

/*
 * Open the file an item is written to.  A part of a split file: its
 * temporary file.  A whole file: a new unnamed file in its directory
 * (*anon set), named only once complete -- one directory entry made
 * instead of two, and nothing to clean up after a crash -- or where the
 * file system has no unnamed files or something is at the path already,
 * a new file at its temporary name.
 */
static int open_item(struct rs_worker *w, const struct rs_file *f,
                     int *anon)
{
    struct rs *rs = w->rs;
    int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW;
    const char *name, *tmp;
    int dfd, fd;

    *anon = 0;
    if ((dfd = file_dir(w, f, &name, &tmp)) < 0)
        return -1;
    if (f->split)
        return openat(dfd, tmp, flags);
    if (f->absent && !atomic_load(&rs->no_tmpfile)) {
        fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC,
                    create_mode(f));
        if (fd >= 0) {
            *anon = 1;
            return fd;
        }
        if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
            atomic_store(&rs->no_tmpfile, 1);
    }
    flags |= O_CREAT | O_EXCL;
    fd = openat(dfd, tmp, flags, create_mode(f));
    if (fd < 0 && errno == EEXIST) {
        /* Something else holds the temporary name: replace it. */
        if (unlinkat(dfd, tmp, 0) == 0 ||
            unlinkat(dfd, tmp, AT_REMOVEDIR) == 0)
            fd = openat(dfd, tmp, flags, create_mode(f));
    }
    return fd;
}

/*
 * Open chunk k of file f from its stored bytes and write it to fd.
 * Returns 0, 1 when the content is damaged (reported), -1 when writing
 * failed (reported), or a fatal error.
 */
static int write_blob(struct rs_worker *w, struct rs_file *f, int fd,
                      size_t k, const uint8_t *stored, uint64_t *wend)
{
    struct rs *rs = w->rs;
    const struct rs_chunk *c = &rs->chunks[k];
    int rc;

    if ((rc = grow(&w->pbuf, &w->pcap, c->raw_length > 0 ? c->raw_length
                                                         : 1)) != 0)
        return rc;
    rc = cairn_blob_open(w->codec, CAIRN_BLOB_DATA, c->id, stored,
                         c->length, w->pbuf, c->raw_length,
                         rs->o->verify_ids);
    if (rc == CAIRN_ENOMEM)
        return rc;
    if (rc != 0) {
        atomic_store(&f->damaged, 1);
        rs_damaged(rs, f->spath, rc, "a content blob does not authenticate");
        return 1;
    }
    if (c->raw_length > 0 &&
        write_sparse(fd, w->pbuf, c->raw_length, c->file_off, wend)) {
        atomic_store(&f->failed, 1);
        rs_file_error(rs, f->path, errno, "cannot write");
        return -1;
    }
    atomic_fetch_add(&rs->bytes_done, c->raw_length);
    return 0;
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
        for (k = i; k < j; k++)
            if ((rc = write_blob(w, f, fd, k,
                                 w->rbuf + (c[k].offset - c[i].offset),
                                 wend)) != 0)
                return rc;
    }
    return 0;
}

/* Close an unfinished file and leave nothing of it behind. */
static void discard(const struct rs_file *f, int fd, int anon)
{
    close(fd);
    if (!anon)
        unlink(f->tmp);
}

/* Give the unnamed file fd the name dfd/name.  -1 with errno. */
static int link_anon(struct rs *rs, int fd, int dfd, const char *name)
{
    char proc[64];

    if (!atomic_load(&rs->no_empty_link)) {
        if (linkat(fd, "", dfd, name, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno != ENOENT && errno != EPERM)
            return -1;
        /* Not allowed without CAP_DAC_READ_SEARCH: through /proc. */
        atomic_store(&rs->no_empty_link, 1);
    }
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, dfd, name, AT_SYMLINK_FOLLOW);
}

/* Rename dfd/from to dfd/to, over a file or an empty directory there. */
static int move_over(int dfd, const char *from, const char *to)
{
    if (renameat(dfd, from, dfd, to) == 0)
        return 0;
    if ((errno != EISDIR && errno != ENOTEMPTY && errno != EEXIST) ||
        unlinkat(dfd, to, AT_REMOVEDIR) != 0)
        return -1;
    return renameat(dfd, from, dfd, to);
}

/* Finish a file after its last piece: size, metadata, or removal. */
static void finish_file(struct rs_worker *w, struct rs_file *f, int fd,
                        uint64_t wend, int anon)
{
    struct rs *rs = w->rs;
    const char *name, *tmp;
    int dfd;

    if (atomic_load(&f->damaged) || atomic_load(&f->failed)) {
        /* No wrong content is left behind. */
        discard(f, fd, anon);
        return;
    }
    /* Trailing zeros were skipped: set the length (a split file has it
     * from its creation). */
    if (!f->split && wend != f->length &&
        ftruncate(fd, (off_t)f->length) != 0) {
        rs_file_error(rs, f->path, errno, "cannot set length");
        discard(f, fd, anon);
        return;
    }
    file_meta(w, fd, f);
    if (anon) {
        /* Whole, with its metadata: named (or, when something has
         * appeared at its path since, named by its temporary name and
         * moved over that). */
        if ((dfd = file_dir(w, f, &name, &tmp)) < 0 ||
            (link_anon(rs, fd, dfd, name) != 0 &&
             (errno != EEXIST || link_anon(rs, fd, dfd, tmp) != 0 ||
              move_over(dfd, tmp, name) != 0))) {
            rs_file_error(rs, f->path, errno, "cannot move into place");
            close(fd);
            if (dfd >= 0)
                unlinkat(dfd, tmp, 0);
            return;
        }
        if (close(fd) != 0) {
            rs_file_error(rs, f->path, errno, "cannot close");
            unlinkat(dfd, name, 0);
            return;
        }
        atomic_fetch_add(&rs->files_done, 1);
        return;
    }
    if (close(fd) != 0) {
        rs_file_error(rs, f->path, errno, "cannot close");
        unlink(f->tmp);
        return;
    }
    /* Whole, with its metadata: into place (over what was there). */
    if ((dfd = file_dir(w, f, &name, &tmp)) < 0 ||
        move_over(dfd, tmp, name) != 0) {
        rs_file_error(rs, f->path, errno, "cannot move into place");
        unlink(f->tmp);
        return;
    }
    atomic_fetch_add(&rs->files_done, 1);
}

static int do_item(struct rs_worker *w, const struct rs_item *it)
{
    struct rs *rs = w->rs;
    struct rs_file *f = &rs->files[it->f];
    uint64_t wend = 0;
    int fd, rc, anon = 0;

    if (atomic_load(&f->damaged) || atomic_load(&f->failed)) {
        fd = -1;
        rc = 1;
    } else if ((fd = open_item(w, f, &anon)) < 0) {
        if (!atomic_exchange(&f->failed, 1))
            rs_file_error(rs, f->path, errno, "cannot create");
        rc = -1;
    } else {
        rc = write_chunks(w, f, fd, it->c0, it->c1, &wend);
    }
    if (rc < -1) {
        /* Fatal: leave no partial file behind. */
        if (fd >= 0)
            discard(f, fd, anon);
        return rc;
    }
    if (atomic_fetch_sub(&f->parts_left, 1) == 1) {
        if (fd >= 0)
            finish_file(w, f, fd, wend, anon);
        else if (f->split)
            unlink(f->tmp);
    } else if (fd >= 0) {
        close(fd);
    }
    rs_progress(rs, 0);
    return 0;
}

static int cmp_chunk(const void *a, const void *b, void *arg)
{
    const struct rs_chunk *c = arg;
    const struct rs_chunk *x = &c[*(const size_t *)a];
    const struct rs_chunk *y = &c[*(const size_t *)b];
    int d = memcmp(x->pack, y->pack, CAIRN_ID_LEN);

    if (d != 0)
        return d;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return 0;
}

/*
 * Fetch the stored blobs of every chunk of the unit's items (chunks
 * [cb, ce) of rs->chunks hold them) into w->rbuf: sorted by pack and
 * offset, blobs at most GAP_MAX apart read together, one ranged read per
 * run.  w->pos[k - cb] is where chunk k lies in rbuf, UINT64_MAX when its
 * pack could not be read (*out_err says why).  0 or a fatal error.
 */
static int fetch_unit(struct rs_worker *w, const struct rs_unit *u,
                      size_t cb, size_t ce, int *out_err)
{
    struct rs *rs = w->rs;
    const struct rs_chunk *c = rs->chunks;
    char name[2 * CAIRN_ID_LEN + 1];
    uint64_t start, end, at, need = 0;
    size_t i, j, k, n = 0;
    int rc;

    if (ce - cb > w->ocap) {
        size_t *no;
        uint64_t *np;

        if ((no = realloc(w->order, (ce - cb) * sizeof(*no))) == NULL)
            return CAIRN_ENOMEM;
        w->order = no;
        if ((np = realloc(w->pos, (ce - cb) * sizeof(*np))) == NULL)
            return CAIRN_ENOMEM;
        w->pos = np;
        w->ocap = ce - cb;
    }
    for (i = u->i0; i < u->i1; i++)
        for (k = rs->items[i].c0; k < rs->items[i].c1; k++)
            w->order[n++] = k;
    qsort_r(w->order, n, sizeof(*w->order), cmp_chunk, (void *)c);

    /* Twice over the runs: the room they need, then the reads. */
    for (int pass = 0; pass < 2; pass++) {
        at = 0;
        for (i = 0; i < n; i = j) {
            start = c[w->order[i]].offset;
            end = start + c[w->order[i]].length;
            for (j = i + 1; j < n; j++) {
                const struct rs_chunk *x = &c[w->order[j]];
                uint64_t xe = (uint64_t)x->offset + x->length;

                if (memcmp(x->pack, c[w->order[i]].pack, CAIRN_ID_LEN) != 0 ||
                    x->offset > end + GAP_MAX ||
                    (xe > end ? xe : end) - start > RUN_MAX)
                    break;
                if (xe > end)
                    end = xe;
            }
            if (pass == 0) {
                need += end - start;
                continue;
            }
            cairn_hex_encode(c[w->order[i]].pack, CAIRN_ID_LEN, name);
            rc = cairn_store_get_range(rs->store, CAIRN_OBJ_PACK, name, start,
                                       (size_t)(end - start), w->rbuf + at);
            if (rc == CAIRN_ENOMEM)
                return rc;
            for (k = i; k < j; k++) {
                const struct rs_chunk *x = &c[w->order[k]];
                uint64_t p = at + (x->offset - start);
                int rc1 = rc;

                /* A run that failed: each blob alone, so that only the
                 * files whose own content is missing are lost. */
                if (rc != 0 && j - i > 1)
                    rc1 = cairn_store_get_range(rs->store, CAIRN_OBJ_PACK,
                                                name, x->offset, x->length,
                                                w->rbuf + p);
                if (rc1 == CAIRN_ENOMEM)
                    return rc1;
                if (rc1 != 0)
                    *out_err = rc1;
                w->pos[w->order[k] - cb] = rc1 != 0 ? UINT64_MAX : p;
            }
            at += end - start;
        }
        if (pass == 0 && (rc = grow(&w->rbuf, &w->rcap,
                                    need > 0 ? (size_t)need : 1)) != 0)
            return rc;
    }
    return 0;
}

/* A unit of several whole small files: fetch, then write one by one. */
static int do_batch(struct rs_worker *w, const struct rs_unit *u)
{
    struct rs *rs = w->rs;
    size_t cb = rs->items[u->i0].c0, ce = rs->items[u->i1 - 1].c1, i, k;
    const struct rs_item *it;
    struct rs_file *f;
    uint64_t wend;
    int fd, rc, anon, err = 0;

    if (rs_cancelled(rs) || atomic_load(&rs->fatal))
        return CAIRN_ECANCELED;
    if ((rc = fetch_unit(w, u, cb, ce, &err)) != 0)
        return rc;
    for (i = u->i0; i < u->i1; i++) {
        it = &rs->items[i];
        f = &rs->files[it->f];
        if (rs_cancelled(rs) || atomic_load(&rs->fatal))
            return CAIRN_ECANCELED;
        if ((fd = open_item(w, f, &anon)) < 0) {
            atomic_store(&f->failed, 1);
            rs_file_error(rs, f->path, errno, "cannot create");
            atomic_fetch_sub(&f->parts_left, 1);
            continue;
        }
        wend = 0;
        for (rc = 0, k = it->c0; k < it->c1 && rc == 0; k++) {
            if (w->pos[k - cb] == UINT64_MAX) {
                atomic_store(&f->damaged, 1);
                rs_damaged(rs, f->spath, err,
                           err == CAIRN_ENOENT
                               ? "a pack holding its content is missing"
                               : "a pack holding its content cannot be "
                                 "read");
                rc = 1;
                break;
            }
            rc = write_blob(w, f, fd, k, w->rbuf + w->pos[k - cb], &wend);
        }
        if (rc < -1) {
            discard(f, fd, anon);
            return rc;
        }
        atomic_fetch_sub(&f->parts_left, 1);
        finish_file(w, f, fd, wend, anon);
        rs_progress(rs, 0);
    }
    return 0;
}

static int do_unit(struct rs_worker *w, const struct rs_unit *u)
{
    if (u->i1 - u->i0 == 1)
        return do_item(w, &w->rs->items[u->i0]);
    return do_batch(w, u);
}

/*
 * Take the next unit of segment sg, if one is ready: 1 (*out set) or 0.
 * Units [0, units_ready) are planned; a segment's end, once known, is
 * published before any unit past it, so a worker that sees those units
 * sees the end too.
 */
static int take(struct rs_pool *p, struct rs_seg *sg, size_t *out)
{
    size_t ready = atomic_load_explicit(&p->units_ready,
                                        memory_order_acquire);
    size_t end = atomic_load_explicit(&sg->end, memory_order_acquire);
    size_t lim = end != SIZE_MAX ? end : ready;
    size_t i = atomic_load(&sg->next);

    while (i < lim)
        if (atomic_compare_exchange_weak(&sg->next, &i, i + 1)) {
            *out = i;
            return 1;
        }
    return 0;
}

/* Take a unit: from the worker's own segment first, then from any. */
static int take_any(struct rs_pool *p, int own, size_t *out)
{
    int s;

    for (s = 0; s < p->nsegs; s++)
        if (take(p, &p->segs[(own + s) % p->nsegs], out))
            return 1;
    return 0;
}

static void stop(struct rs *rs, int rc)
{
    int zero = 0;

    atomic_compare_exchange_strong(&rs->fatal, &zero, rc);
}

/* Wake the workers waiting for units. */
static void pool_wake(struct rs_pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->waiting > 0)
        pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/*
 * A worker: units as they are planned, until planning has ended and none
 * is left (or a fatal error).  It sleeps only while planning goes on
 * with nothing ready.
 */
static void *worker_main(void *arg)
{
    struct rs_worker *w = arg;
    struct rs *rs = w->rs;
    struct rs_pool *p = rs->pool;
    size_t i;
    int rc, got;

    for (;;) {
        if (atomic_load(&rs->fatal))
            return NULL;
        if (rs_cancelled(rs)) {
            stop(rs, CAIRN_ECANCELED);
            pool_wake(p);
            return NULL;
        }
        if (!(got = take_any(p, w->index, &i))) {
            pthread_mutex_lock(&p->lock);
            while (!(got = take_any(p, w->index, &i)) &&
                   !atomic_load(&p->planned) && !atomic_load(&rs->fatal)) {
                p->waiting++;
                pthread_cond_wait(&p->cond, &p->lock);
                p->waiting--;
            }
            pthread_mutex_unlock(&p->lock);
            if (!got)
                return NULL;
        }
        if ((rc = do_unit(w, &rs->units[i])) != 0) {
            stop(rs, rc);
            pool_wake(p);
            return NULL;
        }
    }
}

static void pool_free(struct rs *rs)
{
    struct rs_pool *p = rs->pool;
    int i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nw; i++) {
        cairn_blob_codec_free(p->w[i].codec);
        if (p->w[i].dirfd >= 0)
            close(p->w[i].dirfd);
        free(p->w[i].rbuf);
        free(p->w[i].pbuf);
        free(p->w[i].order);
        free(p->w[i].pos);
    }
    free(p->w);
    free(p->segs);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    rs->pool = NULL;
}

int rs_pool_start(struct rs *rs, uint64_t cost_total)
{
    struct rs_pool *p;
    int i, n = rs->nthreads > 0 ? rs->nthreads : 1;

    if ((p = calloc(1, sizeof(*p))) == NULL)
        return CAIRN_ENOMEM;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return CAIRN_ENOMEM;
    }
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return CAIRN_ENOMEM;
    }
    rs->pool = p;
    atomic_init(&p->units_ready, 0);
    atomic_init(&p->planned, 0);
    p->cost_total = cost_total;
    if ((p->segs = calloc((size_t)n, sizeof(*p->segs))) == NULL ||
        (p->w = calloc((size_t)n, sizeof(*p->w))) == NULL) {
        pool_free(rs);
        return CAIRN_ENOMEM;
    }
    p->nsegs = n;
    for (i = 0; i < n; i++) {
        atomic_init(&p->segs[i].next, i == 0 ? 0 : SIZE_MAX);
        atomic_init(&p->segs[i].end, SIZE_MAX);
    }
    p->nw = n;
    for (i = 0; i < n; i++) {
        p->w[i].rs = rs;
        p->w[i].index = i;
        p->w[i].dirfd = -1;
        if ((p->w[i].codec = cairn_blob_codec_new(cairn_repo_keys(rs->repo),
                                                  0)) == NULL) {
            pool_free(rs);
            return CAIRN_ENOMEM;
        }
    }
    /* Worker 0 is the planning thread, once planning is done. */
    for (i = 1; i < n; i++) {
        if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0)
            break; /* fewer workers; the others still finish the job */
        p->w[i].started = 1;
    }
    return 0;
}

void rs_pool_publish(struct rs *rs, uint64_t cost)
{
    struct rs_pool *p = rs->pool;
    uint64_t share = p->cost_total / (uint64_t)p->nsegs;

    /* The unit rs->nunits - 1 ends the current segment when the cost
     * planned so far reaches that segment's share. */
    p->cost_acc += cost;
    while (p->cur < p->nsegs - 1 &&
           p->cost_acc >= share * (uint64_t)(p->cur + 1)) {
        atomic_store_explicit(&p->segs[p->cur].end, rs->nunits,
                              memory_order_release);
        p->cur++;
        atomic_store(&p->segs[p->cur].next, rs->nunits);
    }
    atomic_store_explicit(&p->units_ready, rs->nunits, memory_order_release);
    pool_wake(p);
}

int rs_pool_finish(struct rs *rs, int plan_rc)
{
    struct rs_pool *p = rs->pool;
    int i, rc;

    if (plan_rc != 0)
        stop(rs, plan_rc);
    for (i = p->cur; i < p->nsegs; i++) {
        atomic_store_explicit(&p->segs[i].end, rs->nunits,
                              memory_order_release);
        if (i > p->cur)
            atomic_store(&p->segs[i].next, rs->nunits);
    }
    atomic_store_explicit(&p->units_ready, rs->nunits, memory_order_release);
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->planned, 1);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (plan_rc == 0)
        worker_main(&p->w[0]);
    for (i = 1; i < p->nw; i++)
        if (p->w[i].started)
            pthread_join(p->w[i].tid, NULL);
    rc = atomic_load(&rs->fatal);
    pool_free(rs);
    return rc;
}
