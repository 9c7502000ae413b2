/*
 * backup_walk.c - the walker: lists directories, decides which files
 * changed, reads and cuts them into chunks for the workers.
 *
 * Per entry it costs one fstatat; an unchanged file (same size, mtime,
 * ctime and inode as in the parent snapshot, content still indexed) is
 * never opened.  Directories are walked through their file descriptors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backup_internal.h"
#include "cairn/err.h"
#include "cairn/log.h"

#define CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"
#define MAX_DEPTH 4096

/* ---------------------------------------------------------------- paths */

int bk_path_cmp(const char *a, const char *b)
{
    for (; *a && *a == *b; a++, b++)
        ;
    if (*a == *b)
        return 0;
    if (*a == '\0')
        return -1;
    if (*b == '\0')
        return 1;
    if (*a == '/')
        return -1;
    if (*b == '/')
        return 1;
    return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
}

static int path_qcmp(const void *x, const void *y)
{
    return bk_path_cmp(*(char *const *)x, *(char *const *)y);
}

int cairn_backup_path_clean(const char *p, char **out)
{
    char cwd[PATH_MAX], *full, *res, *tok, *save;
    size_t n, len;

    if (p[0] == '/') {
        full = strdup(p);
    } else {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return cairn_err_from_errno(errno);
        n = strlen(cwd) + strlen(p) + 2;
        if ((full = malloc(n)) != NULL)
            snprintf(full, n, "%s/%s", cwd, p);
    }
    if (full == NULL)
        return CAIRN_ENOMEM;
    if ((res = malloc(strlen(full) + 2)) == NULL) {
        free(full);
        return CAIRN_ENOMEM;
    }
    len = 0;
    for (tok = strtok_r(full, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (strcmp(tok, ".") == 0)
            continue;
        if (strcmp(tok, "..") == 0) {
            while (len > 0 && res[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        res[len++] = '/';
        n = strlen(tok);
        memcpy(res + len, tok, n);
        len += n;
    }
    if (len == 0)
        res[len++] = '/';
    res[len] = '\0';
    free(full);
    *out = res;
    return 0;
}

int bk_paths_prepare(struct bk *b)
{
    size_t i, j, n;
    int rc;

    if ((b->paths = calloc(b->o->npaths, sizeof(*b->paths))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < b->o->npaths; i++) {
        if ((rc = cairn_backup_path_clean(b->o->paths[i], &b->paths[i])) != 0)
            return rc;
        b->npaths++;
    }
    qsort(b->paths, b->npaths, sizeof(*b->paths), path_qcmp);
    /* Drop duplicates and paths inside another selected path. */
    for (i = 0, j = 0; i < b->npaths; i++) {
        if (j > 0) {
            const char *prev = b->paths[j - 1];

            n = strlen(prev);
            if (strcmp(prev, b->paths[i]) == 0 || strcmp(prev, "/") == 0 ||
                (strncmp(prev, b->paths[i], n) == 0 &&
                 b->paths[i][n] == '/')) {
                free(b->paths[i]);
                continue;
            }
        }
        b->paths[j++] = b->paths[i];
    }
    b->npaths = j;
    return 0;
}

/* ---------------------------------------------------------------- names */

static char *cached_name(struct bk_name_cache *c, uint32_t id, int group)
{
    char buf[4096], *name = NULL;
    int i;

    for (i = 0; i < c->n; i++)
        if (c->id[i] == id)
            return strdup(c->name[i]);
    if (group) {
        struct group gr, *res = NULL;

        if (getgrgid_r(id, &gr, buf, sizeof(buf), &res) == 0 && res)
            name = res->gr_name;
    } else {
        struct passwd pw, *res = NULL;

        if (getpwuid_r(id, &pw, buf, sizeof(buf), &res) == 0 && res)
            name = res->pw_name;
    }
    if (name == NULL)
        name = "";
    if (c->n < (int)(sizeof(c->id) / sizeof(c->id[0]))) {
        if ((c->name[c->n] = strdup(name)) != NULL)
            c->id[c->n++] = id;
    }
    return strdup(name);
}

/* ---------------------------------------------------------------- xattrs */

/* Read the extended attributes of fd (or of path, when fd < 0, without
 * following a symlink).  Filesystems without xattrs are not an error. */
static int read_xattrs(int fd, const char *path, struct cairn_tree_entry *e)
{
    char *list = NULL, *p;
    ssize_t n, v;
    size_t count = 0;
    int rc = 0, tries;

    for (tries = 0; tries < 4; tries++) {
        n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
        if (n <= 0)
            return (n == 0 || errno == ENOTSUP || errno == ENOSYS) ? 0 : errno;
        free(list);
        if ((list = malloc((size_t)n)) == NULL)
            return ENOMEM;
        n = fd >= 0 ? flistxattr(fd, list, (size_t)n)
                    : llistxattr(path, list, (size_t)n);
        if (n >= 0)
            break;
        if (errno != ERANGE) {
            rc = errno;
            goto out;
        }
    }
    if (n < 0) {
        rc = ERANGE;
        goto out;
    }
    for (p = list; p < list + n; p += strlen(p) + 1)
        count++;
    if (count == 0 || count > UINT16_MAX)
        goto out;
    if ((e->xattrs = calloc(count, sizeof(*e->xattrs))) == NULL) {
        rc = ENOMEM;
        goto out;
    }
    for (p = list; p < list + n; p += strlen(p) + 1) {
        struct cairn_xattr *x = &e->xattrs[e->nxattrs];

        for (tries = 0; tries < 4; tries++) {
            v = fd >= 0 ? fgetxattr(fd, p, NULL, 0) : lgetxattr(path, p, NULL, 0);
            if (v < 0)
                break;
            free(x->value);
            if ((x->value = malloc(v > 0 ? (size_t)v : 1)) == NULL) {
                rc = ENOMEM;
                goto out;
            }
            v = fd >= 0 ? fgetxattr(fd, p, x->value, (size_t)v)
                        : lgetxattr(path, p, x->value, (size_t)v);
            if (v >= 0 || errno != ERANGE)
                break;
        }
        if (v < 0) {
            free(x->value);
            x->value = NULL;
            if (errno == ENODATA)
                continue; /* removed meanwhile */
            rc = errno;
            goto out;
        }
        if ((x->name = strdup(p)) == NULL) {
            free(x->value);
            x->value = NULL;
            rc = ENOMEM;
            goto out;
        }
        x->len = (uint32_t)v;
        e->nxattrs++;
    }
out:
    free(list);
    return rc;
}

static int copy_xattrs(const struct cairn_tree_entry *from,
                       struct cairn_tree_entry *to)
{
    uint16_t i;

    if (from->nxattrs == 0)
        return 0;
    if ((to->xattrs = calloc(from->nxattrs, sizeof(*to->xattrs))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < from->nxattrs; i++) {
        struct cairn_xattr *x = &to->xattrs[i];

        if ((x->name = strdup(from->xattrs[i].name)) == NULL ||
            (x->value = malloc(from->xattrs[i].len + 1)) == NULL) {
            free(x->name);
            return CAIRN_ENOMEM;
        }
        memcpy(x->value, from->xattrs[i].value, from->xattrs[i].len);
        x->len = from->xattrs[i].len;
        to->nxattrs++;
    }
    return 0;
}

/* ---------------------------------------------------------------- entries */

/*
 * Open a directory (or a file) without changing its access time, where we
 * may: listing a directory would otherwise move the atime that this and
 * the next backup record, and an unchanged directory would not keep its
 * tree id.
 */
static int open_noatime(int dfd, const char *name, int flags)
{
    int fd = openat(dfd, name, flags | O_NOATIME);

    if (fd < 0 && errno == EPERM)
        fd = openat(dfd, name, flags);
    return fd;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int node_type(mode_t m)
{
    if (S_ISREG(m))
        return CAIRN_NODE_FILE;
    if (S_ISDIR(m))
        return CAIRN_NODE_DIR;
    if (S_ISLNK(m))
        return CAIRN_NODE_SYMLINK;
    if (S_ISFIFO(m))
        return CAIRN_NODE_FIFO;
    if (S_ISCHR(m))
        return CAIRN_NODE_CHR;
    if (S_ISBLK(m))
        return CAIRN_NODE_BLK;
    if (S_ISSOCK(m))
        return CAIRN_NODE_SOCK;
    return 0;
}

/* Fill the metadata part of e from st (name already set). */
static int fill_meta(struct bk_walker *w, struct cairn_tree_entry *e,
                     const struct stat *st)
{
    e->type = (uint8_t)node_type(st->st_mode);
    e->mode = st->st_mode & 07777;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    if ((e->user = cached_name(&w->users, st->st_uid, 0)) == NULL ||
        (e->group = cached_name(&w->groups, st->st_gid, 1)) == NULL)
        return CAIRN_ENOMEM;
    e->mtime_ns = ts_ns(&st->st_mtim);
    e->atime_ns = ts_ns(&st->st_atim);
    e->ctime_ns = ts_ns(&st->st_ctim);
    e->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->rdev = st->st_rdev;
    e->nlink = (uint32_t)st->st_nlink;
    return 0;
}

/* Append an entry slot to d (capacity was reserved by the caller). */
static struct cairn_tree_entry *entry_new(struct bk_dir *d, const char *name,
                                          size_t *out_slot)
{
    struct cairn_tree_entry *e;

    if (d->n == d->cap)
        return NULL;
    e = &d->entries[d->n];
    memset(e, 0, sizeof(*e));
    if ((e->name = strdup(name)) == NULL)
        return NULL;
    *out_slot = d->n++;
    return e;
}

/* Forget the last entry of d (only the walker appends, so it is ours). */
static void entry_drop_last(struct bk_dir *d)
{
    bk_entry_clear(&d->entries[--d->n]);
}

/*
 * "Racy" entries: changed too close to the parent's stat for the times to
 * tell.  File times come from a coarse clock (a scheduler tick, 1-10 ms,
 * on file systems with nanosecond times; whole seconds, or two, on
 * others), so a file written again within the same tick as the parent
 * backup looked at it keeps its size and times.  The parent looked at
 * every file after its start, so a file whose times are within a tick of
 * that start, or later, is read again (as git does with its index).
 */
#define RACY_TICK_NS (50 * 1000 * 1000LL)       /* fine-grained times */
#define RACY_COARSE_NS (2 * 1000 * 1000 * 1000LL) /* whole-second times */
static int racy(const struct bk *b, const struct cairn_tree_entry *oe)
{
    int64_t tick;

    if (b->parent_start_ns == 0)
        return 0;
    tick = (oe->mtime_ns % 1000000000 == 0 && oe->ctime_ns % 1000000000 == 0)
               ? RACY_COARSE_NS
               : RACY_TICK_NS;
    return oe->mtime_ns >= b->parent_start_ns - tick ||
           oe->ctime_ns >= b->parent_start_ns - tick;
}

/* Is the file unchanged since the parent snapshot?  Then reuse its ids. */
static int reuse_unchanged(struct bk *b, const struct cairn_tree_entry *oe,
                           const struct stat *st, struct cairn_tree_entry *e)
{
    uint32_t i;

    if (oe == NULL || oe->type != CAIRN_NODE_FILE ||
        oe->size != (uint64_t)st->st_size ||
        oe->mtime_ns != ts_ns(&st->st_mtim) ||
        oe->ctime_ns != ts_ns(&st->st_ctim) || oe->ino != st->st_ino)
        return 0;
    if (racy(b, oe))
        return 0;
    for (i = 0; i < oe->ncontent; i++)
        if (cairn_repo_lookup(b->r, oe->content[i], NULL) != 0)
            return 0;
    if (oe->ncontent > 0) {
        size_t n = (size_t)oe->ncontent * CAIRN_ID_LEN;

        if ((e->content = malloc(n)) == NULL)
            return -1;
        memcpy(e->content, oe->content, n);
    }
    e->ncontent = oe->ncontent;
    if (copy_xattrs(oe, e) != 0)
        return -1;
    return 1;
}

/* Count an entry that has no content (symlink, fifo, device) as new,
 * changed or unchanged against the parent snapshot, as files are. */
static void count_other(struct bk *b, const struct cairn_tree_entry *oe,
                        const struct cairn_tree_entry *e)
{
    if (oe == NULL)
        atomic_fetch_add(&b->files_new, 1);
    else if (oe->type == e->type && oe->ctime_ns == e->ctime_ns &&
             oe->ino == e->ino)
        atomic_fetch_add(&b->files_unchanged, 1);
    else
        atomic_fetch_add(&b->files_changed, 1);
}

/* Read n bytes (fewer at end of file).  Returns bytes read or -1. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Let go of the walker's shared segment (its chunks still hold it). */
static void shared_release(struct bk_walker *w)
{
    if (w->shared != NULL)
        bk_seg_release(w->b, w->shared);
    w->shared = NULL;
    w->shared_used = 0;
}

/*
 * Read an open file and queue its chunks.  The entry at slot gets its
 * content ids as the workers produce them.  Returns 0, a fatal error, or
 * 1 if the file could not be read (reported; the entry is dropped at
 * finish time by marking it type 0).
 *
 * A file smaller than a segment is read with one read of its stat size
 * into the free part of the walker's shared segment (a fresh one when it
 * does not fit); a larger one goes through segments of its own, the tail
 * of each moved to the next.
 */
static int read_file(struct bk_walker *w, struct bk_dir *d, size_t slot, int fd,
                     const struct stat *st, const char *path)
{
    struct bk *b = w->b;
    struct cairn_tree_entry *e = &d->entries[slot];
    struct bk_file *f;
    struct bk_seg *seg = NULL, *nseg;
    size_t start = 0, end = 0, c, rem, limit = 0;
    uint64_t total = 0;
    uint32_t cap, nchunks = 0;
    ssize_t got;
    int eof = 0, rc = 0, err = 0, big;

    if (st->st_size == 0) {
        e->size = 0;
        return 0;
    }
    cap = (uint32_t)((uint64_t)st->st_size / b->chunk_min + 2);
    if ((f = calloc(1, sizeof(*f))) == NULL ||
        (f->ids = calloc(cap, CAIRN_ID_LEN)) == NULL) {
        free(f);
        return CAIRN_ENOMEM;
    }
    f->dir = d;
    atomic_init(&f->pending, 1);
    e->content = f->ids;
    atomic_fetch_add(&d->pending, 1);

    big = (uint64_t)st->st_size >= b->seg_size;
    if (big) {
        /* Its segments need the memory budget: give back the shared one
         * first (never wait for memory while holding it). */
        shared_release(w);
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        pthread_mutex_lock(&b->bigread);
    } else {
        if (w->shared != NULL &&
            b->seg_size - w->shared_used < (size_t)st->st_size)
            shared_release(w);
        if (w->shared == NULL &&
            (w->shared = bk_seg_new(b, b->seg_size)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto done;
        }
        seg = w->shared;
        /* The file's reference; the walker keeps its own. */
        atomic_fetch_add(&seg->refs, 1);
        start = end = w->shared_used;
        limit = end + (size_t)st->st_size;
    }
    for (;;) {
        if (seg == NULL) {
            if ((seg = bk_seg_new(b, b->seg_size)) == NULL) {
                rc = CAIRN_ENOMEM;
                break;
            }
            limit = seg->cap;
        }
        /* Fill.  A small file is read with one read of its stat size: no
         * second read just to see the end. */
        if (!eof && end < limit) {
            got = read_full(fd, seg->buf + end, limit - end);
            if (got < 0) {
                err = errno;
                break;
            }
            if ((size_t)got < limit - end || !big)
                eof = 1;
            end += (size_t)got;
            total += (uint64_t)got;
        }
        /* Cut. */
        while (start < end) {
            c = cairn_chunker_next(b->chunker, seg->buf + start, end - start,
                                   eof);
            if (c == 0)
                break;
            if (nchunks == cap) {
                /* The file grew far beyond its stat size while we read;
                 * keep what fits, the next backup sees the rest. */
                total -= end - start;
                eof = 1;
                end = start;
                break;
            }
            if ((rc = bk_submit(b, seg, seg->buf + start, c, f, nchunks)) !=
                0)
                break;
            nchunks++;
            start += c;
        }
        if (rc != 0 || (eof && start >= end))
            break;
        /* Move the tail into a fresh segment and read on. */
        rem = end - start;
        if ((nseg = bk_seg_new(b, b->seg_size)) == NULL) {
            rc = CAIRN_ENOMEM;
            break;
        }
        memcpy(nseg->buf, seg->buf + start, rem);
        bk_seg_release(b, seg);
        seg = nseg;
        limit = seg->cap;
        start = 0;
        end = rem;
    }
    if (!big && w->shared != NULL)
        w->shared_used = limit;
    if (seg != NULL)
        bk_seg_release(b, seg);
done:
    if (big)
        pthread_mutex_unlock(&b->bigread);
    e->ncontent = nchunks;
    e->size = total;
    atomic_fetch_add(&b->bytes_read, total);
    if (rc == 0 && err != 0) {
        bk_file_error(b, path, err, "cannot read");
        e->type = 0; /* dropped when the directory is finished */
        rc = 1;
    }
    bk_file_release(b, f, w->codec);
    return rc;
}

static int walk_dir(struct bk_walker *w, struct bk_dir *d, int dfd, char *path,
                    size_t pathlen, const struct cairn_tree *old, dev_t rootdev,
                    int depth, const struct bk_dpos *dp);

/* Walk a directory task on this walker: its previous version, its
 * entries; then close it and drop the walker's hold. */
static int task_run(struct bk_walker *w, struct bk_task *t)
{
    struct bk *b = w->b;
    struct cairn_tree *old = NULL;
    int rc, r;

    if (t->has_old &&
        (r = cairn_repo_read_tree(b->r, w->codec, t->old_id, &old)) != 0) {
        old = NULL;
        if (b->dirty_active) {
            /* The totals are kept by difference with the old trees. */
            cairn_log(CAIRN_LOG_ERROR, "%s: previous version unreadable (%s)",
                      t->path, cairn_strerror(r));
            rc = r;
            goto out;
        }
        cairn_log(CAIRN_LOG_WARN,
                  "%s: previous version unreadable (%s); reading all", t->path,
                  cairn_strerror(r));
    }
    rc = walk_dir(w, t->d, t->fd, t->path, t->pathlen, old, t->rootdev,
                  t->depth, &t->dpos);
out:
    close(t->fd);
    cairn_tree_free(old);
    bk_dir_release(b, t->d, w->codec);
    return rc;
}

/* Queue a directory for an idle walker, if there are helpers and room: 1
 * if queued (the task then owns its fd and a copy of its path). */
static int task_push(struct bk *b, const struct bk_task *t)
{
    struct bk_task *q;
    char *path;

    if (b->nwalkers == 0)
        return 0;
    if ((path = malloc(PATH_MAX)) == NULL)
        return 0;
    memcpy(path, t->path, t->pathlen + 1);
    pthread_mutex_lock(&b->lock);
    if (b->ntasks >= BK_TASKS_MAX) {
        pthread_mutex_unlock(&b->lock);
        free(path);
        return 0;
    }
    q = &b->tasks[b->ntasks++];
    *q = *t;
    q->path = path;
    pthread_cond_signal(&b->task_cond);
    pthread_mutex_unlock(&b->lock);
    return 1;
}

/*
 * Take and walk queued directories until none is queued or being walked
 * (stop_when_idle: the caller's thread at the end of the walk), or until
 * the walk is over (helper walkers).
 */
static void task_loop(struct bk_walker *w, int stop_when_idle)
{
    struct bk *b = w->b;
    struct bk_task t;
    int rc;

    /* Never wait for other walkers while holding memory they may need. */
    shared_release(w);
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->ntasks == 0 &&
               !(stop_when_idle ? b->tasks_active == 0 : b->walk_stop))
            pthread_cond_wait(&b->task_cond, &b->lock);
        if (b->ntasks == 0)
            break;
        t = b->tasks[--b->ntasks];
        b->tasks_active++;
        pthread_mutex_unlock(&b->lock);
        if (atomic_load(&b->fatal) != 0) {
            /* Dropped unwalked; the holds still unwind. */
            close(t.fd);
            bk_dir_release(b, t.d, w->codec);
        } else if ((rc = task_run(w, &t)) != 0) {
            bk_set_fatal(b, rc);
        }
        free(t.path);
        shared_release(w);
        pthread_mutex_lock(&b->lock);
        b->tasks_active--;
        pthread_cond_broadcast(&b->task_cond);
    }
    pthread_mutex_unlock(&b->lock);
}

static void walker_clear(struct bk_walker *w)
{
    int i;

    for (i = 0; i < w->users.n; i++)
        free(w->users.name[i]);
    for (i = 0; i < w->groups.n; i++)
        free(w->groups.name[i]);
    w->users.n = w->groups.n = 0;
}

static void *walker_main(void *arg)
{
    struct bk_walker *w = arg;

    task_loop(w, 0);
    return NULL;
}

int bk_walkers_start(struct bk *b, int n)
{
    int i;

    if (n <= 0)
        return 0;
    if ((b->walkers = calloc((size_t)n, sizeof(*b->walkers))) == NULL ||
        (b->walker_ctx = calloc((size_t)n, sizeof(*b->walker_ctx))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < n; i++) {
        struct bk_walker *w = &b->walker_ctx[i];

        w->b = b;
        w->codec = cairn_blob_codec_new(cairn_repo_keys(b->r),
                                        cairn_repo_config(b->r)->zstd_level);
        if (w->codec == NULL)
            return CAIRN_ENOMEM;
        if (pthread_create(&b->walkers[i], NULL, walker_main, w) != 0) {
            cairn_blob_codec_free(w->codec);
            w->codec = NULL;
            return CAIRN_ENOMEM;
        }
        b->nwalkers++;
    }
    return 0;
}

void bk_walkers_stop(struct bk *b)
{
    int i;

    pthread_mutex_lock(&b->lock);
    b->walk_stop = 1;
    pthread_cond_broadcast(&b->task_cond);
    pthread_mutex_unlock(&b->lock);
    for (i = 0; i < b->nwalkers; i++) {
        pthread_join(b->walkers[i], NULL);
        cairn_blob_codec_free(b->walker_ctx[i].codec);
        walker_clear(&b->walker_ctx[i]);
    }
    b->nwalkers = 0;
    free(b->walkers);
    free(b->walker_ctx);
    b->walkers = NULL;
    b->walker_ctx = NULL;
}

/*
 * Back up the entry name of directory dfd (full path path) into d.
 * Returns 0 (also when the entry was reported and skipped) or a fatal
 * error.
 */
static int add_entry(struct bk_walker *w, struct bk_dir *d, int dfd, char *path,
                     size_t pathlen, const char *name,
                     const struct cairn_tree *old, dev_t rootdev, int selected,
                     int depth, const struct bk_dpos *dp, uint8_t *old_used)
{
    struct bk *b = w->b;
    struct cairn_tree_entry *e;
    const struct cairn_tree_entry *oe;
    struct bk_dir *child;
    struct bk_task t;
    struct bk_dpos cdp;
    struct stat st;
    size_t slot;
    ssize_t n;
    int fd, rc = 0, err, r;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        bk_file_error(b, path, errno, "cannot stat");
        return 0;
    }
    if (!selected && cairn_exclude_match(b->ex, path, pathlen, name,
                                         S_ISDIR(st.st_mode)))
        return 0;
    if (node_type(st.st_mode) == 0)
        return 0;
    oe = old != NULL ? cairn_tree_find(old, name) : NULL;
    if ((e = entry_new(d, name, &slot)) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = fill_meta(w, e, &st)) != 0)
        return rc;

    switch (e->type) {
    case CAIRN_NODE_FILE:
        r = reuse_unchanged(b, oe, &st, e);
        if (r < 0)
            return CAIRN_ENOMEM;
        atomic_fetch_add(&b->files, 1);
        if (r > 0) {
            atomic_fetch_add(&b->files_unchanged, 1);
            atomic_fetch_add(&b->bytes, e->size);
            return 0;
        }
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
        if (fd < 0 && errno == EPERM)
            fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            bk_file_error(b, path, errno, "cannot open");
            atomic_fetch_sub(&b->files, 1);
            entry_drop_last(d);
            return 0;
        }
        if ((err = read_xattrs(fd, path, e)) != 0) {
            close(fd);
            if (err == ENOMEM)
                return CAIRN_ENOMEM;
            bk_file_error(b, path, err, "cannot read extended attributes");
            atomic_fetch_sub(&b->files, 1);
            entry_drop_last(d);
            return 0;
        }
        atomic_fetch_add(oe != NULL ? &b->files_changed : &b->files_new, 1);
        rc = read_file(w, d, slot, fd, &st, path);
        close(fd);
        if (rc == 1) {
            atomic_fetch_sub(&b->files, 1);
            return 0;
        }
        atomic_fetch_add(&b->bytes, e->size);
        return rc;

    case CAIRN_NODE_SYMLINK:
        atomic_fetch_add(&b->files, 1);
        if ((e->target = malloc((size_t)st.st_size + 2)) == NULL)
            return CAIRN_ENOMEM;
        n = readlinkat(dfd, name, e->target, (size_t)st.st_size + 1);
        if (n < 0 || n > st.st_size) {
            bk_file_error(b, path, n < 0 ? errno : EAGAIN,
                          "cannot read symlink");
            atomic_fetch_sub(&b->files, 1);
            entry_drop_last(d);
            return 0;
        }
        e->target[n] = '\0';
        count_other(b, oe, e);
        return 0;

    case CAIRN_NODE_DIR:
        atomic_fetch_add(&b->dirs, 1);
        if (b->o->one_file_system && st.st_dev != rootdev)
            return 0; /* a mount point: kept, empty */
        if (depth >= MAX_DEPTH) {
            bk_file_error(b, path, ELOOP, "directory nesting too deep");
            return 0;
        }
        cdp = *dp;
        if (!dp->whole &&
            bk_dirty_child(b, dp, path, pathlen, &cdp) == BK_DIRTY_CLEAN) {
            /* No dirty path in it: keep the parent's subtree, unless the
             * directory itself tells of a change the caller missed. */
            if (oe != NULL && oe->type == CAIRN_NODE_DIR && oe->has_subtree &&
                oe->ino == e->ino && oe->mtime_ns == e->mtime_ns &&
                oe->ctime_ns == e->ctime_ns) {
                if (copy_xattrs(oe, e) != 0)
                    return CAIRN_ENOMEM;
                memcpy(e->subtree, oe->subtree, CAIRN_ID_LEN);
                e->has_subtree = 1;
                if (old_used != NULL)
                    old_used[oe - old->entries] = 1;
                atomic_fetch_add(&b->dirs_reused, 1);
                return 0;
            }
            cdp.whole = 1;
        }
        fd = open_noatime(dfd, name,
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            bk_file_error(b, path, errno, "cannot open directory");
            atomic_fetch_sub(&b->dirs, 1);
            entry_drop_last(d);
            return 0;
        }
        if (oe != NULL && oe->type == CAIRN_NODE_DIR &&
            oe->ctime_ns == e->ctime_ns) {
            if (copy_xattrs(oe, e) != 0) {
                close(fd);
                return CAIRN_ENOMEM;
            }
        } else if ((err = read_xattrs(fd, path, e)) != 0) {
            bk_file_error(b, path, err, "cannot read extended attributes");
        }
        if ((child = calloc(1, sizeof(*child))) == NULL) {
            close(fd);
            return CAIRN_ENOMEM;
        }
        child->parent = d;
        child->parent_slot = slot;
        atomic_init(&child->pending, 1);
        atomic_fetch_add(&d->pending, 1);
        memset(&t, 0, sizeof(t));
        t.d = child;
        t.fd = fd;
        t.path = path;
        t.pathlen = pathlen;
        if (oe != NULL && oe->type == CAIRN_NODE_DIR && oe->has_subtree) {
            memcpy(t.old_id, oe->subtree, CAIRN_ID_LEN);
            t.has_old = 1;
            if (old_used != NULL)
                old_used[oe - old->entries] = 1; /* visited again */
        }
        t.rootdev = rootdev;
        t.depth = depth + 1;
        t.dpos = cdp;
        /* An idle walker takes it, or we walk it now. */
        if (task_push(b, &t))
            return 0;
        return task_run(w, &t);

    default: /* fifo, device, socket: metadata only */
        atomic_fetch_add(&b->files, 1);
        count_other(b, oe, e);
        if ((err = read_xattrs(-1, path, e)) != 0 && err != EPERM)
            bk_file_error(b, path, err, "cannot read extended attributes");
        return 0;
    }
}

struct name_list {
    char **v;
    size_t n, cap;
};

static int name_qcmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void name_list_free(struct name_list *nl)
{
    size_t i;

    for (i = 0; i < nl->n; i++)
        free(nl->v[i]);
    free(nl->v);
}

/* Read the names in a directory, sorted. */
static int list_names(int dfd, struct name_list *nl)
{
    DIR *dir;
    struct dirent *de;
    int fd, rc = 0;

    if ((fd = dup(dfd)) < 0)
        return errno;
    if ((dir = fdopendir(fd)) == NULL) {
        rc = errno;
        close(fd);
        return rc;
    }
    rewinddir(dir);
    for (;;) {
        errno = 0;
        if ((de = readdir(dir)) == NULL) {
            rc = errno;
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (nl->n == nl->cap) {
            size_t ncap = nl->cap ? nl->cap * 2 : 32;
            char **nv = realloc(nl->v, ncap * sizeof(*nv));

            if (nv == NULL) {
                rc = ENOMEM;
                break;
            }
            nl->v = nv;
            nl->cap = ncap;
        }
        if ((nl->v[nl->n] = strdup(de->d_name)) == NULL) {
            rc = ENOMEM;
            break;
        }
        nl->n++;
    }
    closedir(dir);
    if (rc == 0 && nl->n > 1)
        qsort(nl->v, nl->n, sizeof(*nl->v), name_qcmp);
    return rc;
}

/* Does the directory hold a valid CACHEDIR.TAG? */
static int is_cachedir(int dfd)
{
    char buf[sizeof(CACHEDIR_SIG) - 1];
    int fd;
    ssize_t n;

    fd = open_noatime(dfd, "CACHEDIR.TAG", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read_full(fd, (uint8_t *)buf, sizeof(buf));
    close(fd);
    return n == (ssize_t)sizeof(buf) && memcmp(buf, CACHEDIR_SIG, n) == 0;
}

/*
 * List directory dfd (path) into d and back up its entries.  old: its
 * previous version (or NULL); dp: its position against the dirty set.
 * With a dirty set the old entries it replaces are counted off the
 * parent's totals.
 */
static int walk_dir(struct bk_walker *w, struct bk_dir *d, int dfd, char *path,
                    size_t pathlen, const struct cairn_tree *old, dev_t rootdev,
                    int depth, const struct bk_dpos *dp)
{
    struct bk *b = w->b;
    struct name_list nl = {NULL, 0, 0};
    uint8_t *used = NULL;
    size_t i, nlen;
    int rc = 0, err;

    atomic_fetch_add(&b->dirs_listed, 1);
    if (b->dirty_active && old != NULL && old->nentries > 0 &&
        (used = calloc(old->nentries, 1)) == NULL)
        return CAIRN_ENOMEM;
    if ((err = list_names(dfd, &nl)) != 0) {
        if (err == ENOMEM) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        bk_file_error(b, path, err, "cannot list directory");
        goto replaced;
    }
    if (b->o->exclude_caches && is_cachedir(dfd)) {
        for (i = 0; i < nl.n; i++)
            if (strcmp(nl.v[i], "CACHEDIR.TAG") == 0)
                break;
        if (i < nl.n) {
            char *keep = nl.v[i];

            nl.v[i] = NULL;
            name_list_free(&nl);
            nl.n = nl.cap = 0;
            nl.v = malloc(sizeof(*nl.v));
            if (nl.v == NULL) {
                free(keep);
                rc = CAIRN_ENOMEM;
                goto out;
            }
            nl.v[0] = keep;
            nl.n = nl.cap = 1;
        }
    }
    if (nl.n > 0 && (d->entries = calloc(nl.n, sizeof(*d->entries))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    d->cap = nl.n;
    for (i = 0; i < nl.n && rc == 0; i++) {
        nlen = strlen(nl.v[i]);
        if (pathlen + 1 + nlen >= PATH_MAX) {
            bk_file_error(b, path, ENAMETOOLONG, "path too long");
            continue;
        }
        if (pathlen > 1)
            path[pathlen] = '/';
        memcpy(path + pathlen + (pathlen > 1), nl.v[i], nlen + 1);
        rc = add_entry(w, d, dfd, path, pathlen + (pathlen > 1) + nlen, nl.v[i],
                       old, rootdev, 0, depth, dp, used);
        path[pathlen] = '\0';
        if (b->o->cancel != NULL && *b->o->cancel)
            rc = CAIRN_ECANCELED;
        if (rc == 0 && atomic_load(&b->fatal) != 0)
            rc = atomic_load(&b->fatal);
        bk_progress(b, 0);
    }
    if (rc != 0)
        goto out;
replaced:
    if (b->dirty_active && old != NULL)
        rc = bk_dirty_replaced(b, w->codec, old, used);
out:
    name_list_free(&nl);
    free(used);
    return rc;
}

/* Length of the first component of p (p does not start with '/'). */
static size_t comp_len(const char *p)
{
    const char *s = strchr(p, '/');

    return s ? (size_t)(s - p) : strlen(p);
}

/* Append to d a copy of the parent snapshot's entry oe (a part of the
 * selection the dirty set does not touch: no stat, no listing). */
static int entry_copy(struct bk_dir *d, const struct cairn_tree_entry *oe)
{
    struct cairn_tree_entry *e;
    size_t slot, n;

    if ((e = entry_new(d, oe->name, &slot)) == NULL)
        return CAIRN_ENOMEM;
    e->type = oe->type;
    e->mode = oe->mode;
    e->uid = oe->uid;
    e->gid = oe->gid;
    e->mtime_ns = oe->mtime_ns;
    e->atime_ns = oe->atime_ns;
    e->ctime_ns = oe->ctime_ns;
    e->size = oe->size;
    e->dev = oe->dev;
    e->ino = oe->ino;
    e->rdev = oe->rdev;
    e->nlink = oe->nlink;
    if ((e->user = strdup(oe->user != NULL ? oe->user : "")) == NULL ||
        (e->group = strdup(oe->group != NULL ? oe->group : "")) == NULL)
        return CAIRN_ENOMEM;
    if (oe->target != NULL && oe->target[0] != '\0' &&
        (e->target = strdup(oe->target)) == NULL)
        return CAIRN_ENOMEM;
    if (copy_xattrs(oe, e) != 0)
        return CAIRN_ENOMEM;
    if (oe->ncontent > 0) {
        n = (size_t)oe->ncontent * CAIRN_ID_LEN;
        if ((e->content = malloc(n)) == NULL)
            return CAIRN_ENOMEM;
        memcpy(e->content, oe->content, n);
        e->ncontent = oe->ncontent;
    }
    if (oe->has_subtree) {
        memcpy(e->subtree, oe->subtree, CAIRN_ID_LEN);
        e->has_subtree = 1;
    }
    return 0;
}

/*
 * Back up the selected paths paths[0..n), all below prefix (an existing
 * directory whose bk_dir is d), creating the directories between prefix
 * and each path with their real metadata but only the selected children.
 * old: prefix's previous version (or NULL); dp: its position against the
 * dirty set.
 */
static int walk_virtual(struct bk_walker *w, struct bk_dir *d,
                        const char *prefix, char **paths, size_t n,
                        const struct cairn_tree *old, const struct bk_dpos *dp)
{
    struct bk *b = w->b;
    size_t plen = strcmp(prefix, "/") == 0 ? 0 : strlen(prefix);
    size_t i, j, groups = 0, clen, slot;
    struct cairn_tree_entry *e;
    const struct cairn_tree_entry *oe;
    struct cairn_tree *old_child;
    struct bk_dir *child;
    struct bk_dpos cdp;
    struct stat st;
    char path[PATH_MAX], comp[NAME_MAX + 1];
    uint8_t *used = NULL;
    int pfd, err, rc = 0;

    atomic_fetch_add(&b->dirs_listed, 1);
    for (i = 0; i < n; i = j) {
        clen = comp_len(paths[i] + plen + 1);
        for (j = i + 1; j < n && comp_len(paths[j] + plen + 1) == clen &&
                        strncmp(paths[j] + plen + 1, paths[i] + plen + 1,
                                clen) == 0;
             j++)
            ;
        groups++;
    }
    if ((d->entries = calloc(groups, sizeof(*d->entries))) == NULL)
        return CAIRN_ENOMEM;
    d->cap = groups;
    if (b->dirty_active && old != NULL && old->nentries > 0 &&
        (used = calloc(old->nentries, 1)) == NULL)
        return CAIRN_ENOMEM;
    if ((pfd = open(plen ? prefix : "/",
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        for (i = 0; i < n; i++)
            bk_file_error(b, paths[i], errno, "cannot open parent directory");
        goto replaced;
    }

    for (i = 0; i < n && rc == 0; i = j) {
        const char *c0 = paths[i] + plen + 1;

        clen = comp_len(c0);
        for (j = i + 1; j < n && comp_len(paths[j] + plen + 1) == clen &&
                        strncmp(paths[j] + plen + 1, c0, clen) == 0;
             j++)
            ;
        if (clen > NAME_MAX || plen + 1 + clen >= sizeof(path)) {
            bk_file_error(b, paths[i], ENAMETOOLONG, "path too long");
            continue;
        }
        memcpy(comp, c0, clen);
        comp[clen] = '\0';
        memcpy(path, prefix, plen);
        path[plen] = '/';
        memcpy(path + plen + 1, comp, clen + 1);
        oe = old != NULL ? cairn_tree_find(old, comp) : NULL;

        cdp = *dp;
        if (!dp->whole && bk_dirty_child(b, dp, path, plen + 1 + clen, &cdp) ==
                              BK_DIRTY_CLEAN) {
            if (oe != NULL) {
                /* Untouched: the parent's entry, subtree and all. */
                if ((rc = entry_copy(d, oe)) != 0)
                    break;
                bk_count_entry(b, oe);
                if (used != NULL)
                    used[oe - old->entries] = 1;
                if (oe->type == CAIRN_NODE_DIR)
                    atomic_fetch_add(&b->dirs_reused, 1);
                continue;
            }
            cdp.whole = 1; /* not in the parent: as a full backup would */
        }

        if (j == i + 1 && strcmp(paths[i], path) == 0) {
            /* A selected path: back it up whole. */
            if (fstatat(pfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                bk_file_error(b, path, errno, "cannot stat");
                continue;
            }
            rc = add_entry(w, d, pfd, path, strlen(path), comp, old, st.st_dev,
                           1, 0, cdp.whole ? &cdp : dp, used);
            continue;
        }
        /* A directory on the way to selected paths. */
        err = fstatat(pfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0 ? errno
              : !S_ISDIR(st.st_mode)                           ? ENOTDIR
                                                               : 0;
        if (err != 0) {
            for (; i < j; i++)
                bk_file_error(b, paths[i], err, "cannot reach");
            continue;
        }
        if ((e = entry_new(d, comp, &slot)) == NULL ||
            (rc = fill_meta(w, e, &st)) != 0) {
            rc = CAIRN_ENOMEM;
            break;
        }
        {
            int dfd = openat(pfd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

            if (dfd >= 0) {
                read_xattrs(dfd, path, e);
                close(dfd);
            }
        }
        atomic_fetch_add(&b->dirs, 1);
        old_child = NULL;
        if (oe != NULL && oe->type == CAIRN_NODE_DIR && oe->has_subtree) {
            err = cairn_repo_read_tree(b->r, w->codec, oe->subtree, &old_child);
            if (err != 0 && b->dirty_active) {
                cairn_log(CAIRN_LOG_ERROR,
                          "%s: previous version unreadable (%s)", path,
                          cairn_strerror(err));
                rc = err;
                break;
            }
            if (err != 0)
                old_child = NULL;
            else if (used != NULL)
                used[oe - old->entries] = 1;
        }
        if ((child = calloc(1, sizeof(*child))) == NULL) {
            cairn_tree_free(old_child);
            rc = CAIRN_ENOMEM;
            break;
        }
        child->parent = d;
        child->parent_slot = slot;
        atomic_init(&child->pending, 1);
        atomic_fetch_add(&d->pending, 1);
        rc = walk_virtual(w, child, path, paths + i, j - i, old_child, &cdp);
        cairn_tree_free(old_child);
        bk_dir_release(b, child, w->codec);
    }
    close(pfd);
    if (rc != 0)
        goto out;
replaced:
    if (b->dirty_active && old != NULL)
        rc = bk_dirty_replaced(b, w->codec, old, used);
out:
    free(used);
    return rc;
}

/* Count files and bytes below directory dfd, as the walker would see
 * them (same excludes), for progress totals. */
static void count_dir(struct bk *b, int dfd, char *path, size_t pathlen,
                      dev_t rootdev, int depth)
{
    struct name_list nl = {NULL, 0, 0};
    struct stat st;
    size_t i, nlen, clen;
    int fd;

    if (depth >= MAX_DEPTH || list_names(dfd, &nl) != 0) {
        name_list_free(&nl);
        return;
    }
    if (b->o->exclude_caches && is_cachedir(dfd)) {
        atomic_fetch_add(&b->files_total, 1);
        name_list_free(&nl);
        return;
    }
    for (i = 0; i < nl.n && !atomic_load(&b->stop_count); i++) {
        nlen = strlen(nl.v[i]);
        if (pathlen + 1 + nlen >= PATH_MAX)
            continue;
        if (pathlen > 1)
            path[pathlen] = '/';
        memcpy(path + pathlen + (pathlen > 1), nl.v[i], nlen + 1);
        clen = pathlen + (pathlen > 1) + nlen;
        if (fstatat(dfd, nl.v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !cairn_exclude_match(b->ex, path, clen, nl.v[i],
                                 S_ISDIR(st.st_mode))) {
            if (!S_ISDIR(st.st_mode)) {
                atomic_fetch_add(&b->files_total, 1);
                if (S_ISREG(st.st_mode))
                    atomic_fetch_add(&b->bytes_total, (uint64_t)st.st_size);
            } else if (!b->o->one_file_system || st.st_dev == rootdev) {
                fd = open_noatime(dfd, nl.v[i],
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                      O_CLOEXEC);
                if (fd >= 0) {
                    count_dir(b, fd, path, clen, rootdev, depth + 1);
                    close(fd);
                }
            }
        }
        path[pathlen] = '\0';
    }
    name_list_free(&nl);
}

void *bk_count_main(void *arg)
{
    struct bk *b = arg;
    char path[PATH_MAX];
    struct stat st;
    size_t i, n;
    int fd;

    for (i = 0; i < b->npaths && !atomic_load(&b->stop_count); i++) {
        if (lstat(b->paths[i], &st) != 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            atomic_fetch_add(&b->files_total, 1);
            if (S_ISREG(st.st_mode))
                atomic_fetch_add(&b->bytes_total, (uint64_t)st.st_size);
            continue;
        }
        if ((fd = open_noatime(AT_FDCWD, b->paths[i],
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            continue;
        n = strlen(b->paths[i]);
        if (n < sizeof(path)) {
            memcpy(path, b->paths[i], n + 1);
            count_dir(b, fd, path, n, st.st_dev, 0);
        }
        close(fd);
    }
    atomic_store(&b->totals_final, 1);
    return NULL;
}

int bk_walk(struct bk *b, struct bk_dir *root)
{
    struct bk_walker mw = {b, b->codec, {{0}, {0}, 0}, {{0}, {0}, 0}, NULL, 0};
    struct bk_walker *w = &mw;
    struct cairn_tree *old = NULL;
    struct bk_dpos dp;
    char path[PATH_MAX];
    struct stat st;
    int fd, rc;

    if (b->o->parent != NULL &&
        (rc = cairn_repo_read_tree(b->r, w->codec, b->o->parent->root,
                                   &old)) != 0) {
        cairn_log(CAIRN_LOG_WARN,
                  "parent snapshot unreadable (%s); reading every file",
                  cairn_strerror(rc));
        old = NULL;
    }
    /* Without the parent's trees there is nothing to keep: walk all.
     * (No walker has a task yet: the helpers see the final value.) */
    if (old == NULL)
        b->dirty_active = 0;
    bk_dirty_root(b, &dp);
    if (b->npaths == 1 && strcmp(b->paths[0], "/") == 0) {
        /* The whole file system. */
        if ((fd = open_noatime(AT_FDCWD, "/",
                               O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
            fstat(fd, &st) != 0) {
            rc = cairn_err_from_errno(errno);
            if (fd >= 0)
                close(fd);
        } else {
            path[0] = '/';
            path[1] = '\0';
            rc = walk_dir(w, root, fd, path, 1, old, st.st_dev, 0, &dp);
            close(fd);
        }
    } else {
        rc = walk_virtual(w, root, "/", b->paths, b->npaths, old, &dp);
    }
    cairn_tree_free(old);
    bk_dir_release(b, root, w->codec);
    if (rc != 0)
        bk_set_fatal(b, rc);
    /* Help with the directories queued for the helpers until all are
     * walked. */
    task_loop(w, 1);
    walker_clear(w);
    return rc;
}
