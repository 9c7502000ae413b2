/*
 * store_dir.c - the directory store: one file per object under a root.
 *
 *   config  keys/<name>  snapshots/<name>  locks/<name>
 *   index/<2 hex>/<name>  data/<2 hex>/<name>
 *
 * Crash safety: an object is written to "<its dir>/.tmp-<16 hex>" and only
 * renamed to its name once fully written and fsynced, so nothing
 * half-written is ever visible under a final name.  Non-durable puts are
 * left as temp files (not even fsynced) until the next barrier, which
 * makes them durable and visible in one batch.
 *
 * Leftover temp files (from a crash, or a process killed before its
 * barrier) are removed by list when it meets one whose mtime is more than
 * an hour old: list already reads every directory, so this costs nothing
 * unless such files exist, and the hour leaves alone temp files another
 * live process is still writing.
 *
 * The fan-out directories (data/xx, index/xx) are made when the first
 * object goes into them, and the parent's fsync makes each durable before
 * anything in it is: a small archive has a few, not 512 empty
 * directories (2 MB as du counts, and per device on a server).
 *
 * All state is under the root's directory descriptor (openat and friends),
 * so relative paths are short and fixed in size.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/store.h"
#include "store/store_int.h"

#define FANOUT 256
/* Directory ids: root, keys, snapshots, locks, data/00..ff, index/00..ff. */
#define DIR_ROOT 0
#define DIR_KEYS 1
#define DIR_SNAPSHOTS 2
#define DIR_LOCKS 3
#define DIR_DATA 4
#define DIR_INDEX (DIR_DATA + FANOUT)
#define NDIRS (DIR_INDEX + FANOUT)

#define NAME_LEN 128         /* longest object name */
#define TMP_PREFIX ".tmp-"   /* temp files: TMP_PREFIX + 16 hex digits */
#define TMP_LEN (5 + 16 + 1) /* with the NUL */
#define DPATH_LEN 16         /* "index/ab" and the NUL, with room */
#define PATH_LEN (DPATH_LEN + 1 + NAME_LEN + 1)
#define STALE_TMP_SECS (60 * 60)

/*
 * At a barrier with at least this many pending files, one syncfs replaces
 * the per-file fsyncs: on ext4 each fsync forces its own journal commit
 * (a few ms on a disk, far more than the data write-out of a small file),
 * while syncfs writes everything out and commits once.  Below it,
 * per-file fsync avoids waiting for unrelated dirty data on the same
 * file system.
 */
#define SYNCFS_MIN 8

#define CACHE_SLOTS 64

struct pending {
    uint16_t dir;    /* where the object goes */
    uint16_t tmpdir; /* where its temp file is */
    char tmp[TMP_LEN];
    char name[NAME_LEN + 1];
};

/* A cached read-only descriptor for get_range. */
struct fdslot {
    int fd; /* -1: empty */
    int type;
    int dead;      /* removed: close when refs drops to 0 */
    unsigned refs; /* get_range calls using fd right now */
    uint64_t used; /* LRU clock */
    char name[NAME_LEN + 1];
};

struct dirstore {
    int rootfd;
    atomic_uchar made[NDIRS]; /* fan-out directory known to be there */
    pthread_mutex_t pend_lock;
    struct pending *pend;
    size_t npend, cappend;
    pthread_mutex_t cache_lock;
    uint64_t clock;
    struct fdslot slots[CACHE_SLOTS];
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The directory id of (type, name); name already validated. */
static int dir_id(enum cairn_obj_type type, const char *name)
{
    switch (type) {
    case CAIRN_OBJ_KEY:
        return DIR_KEYS;
    case CAIRN_OBJ_SNAPSHOT:
        return DIR_SNAPSHOTS;
    case CAIRN_OBJ_LOCK:
        return DIR_LOCKS;
    case CAIRN_OBJ_PACK:
        return DIR_DATA + (hexval(name[0]) << 4) + hexval(name[1]);
    case CAIRN_OBJ_INDEX:
        return DIR_INDEX + (hexval(name[0]) << 4) + hexval(name[1]);
    default:
        return DIR_ROOT;
    }
}

/* Write the path of directory id (relative to the root) to buf. */
static void dir_path(int id, char buf[DPATH_LEN])
{
    static const char hex[] = "0123456789abcdef";

    if (id == DIR_ROOT) {
        strcpy(buf, ".");
    } else if (id == DIR_KEYS) {
        strcpy(buf, "keys");
    } else if (id == DIR_SNAPSHOTS) {
        strcpy(buf, "snapshots");
    } else if (id == DIR_LOCKS) {
        strcpy(buf, "locks");
    } else {
        int x = id < DIR_INDEX ? id - DIR_DATA : id - DIR_INDEX;

        strcpy(buf, id < DIR_INDEX ? "data/xx" : "index/xx");
        buf[strlen(buf) - 2] = hex[x >> 4];
        buf[strlen(buf) - 1] = hex[x & 15];
    }
}

/* buf = dir/file (file alone in the root); fits PATH_LEN by construction. */
static void join_path(int dir, const char *file, char buf[PATH_LEN])
{
    char dp[DPATH_LEN];

    if (dir == DIR_ROOT) {
        snprintf(buf, PATH_LEN, "%s", file);
        return;
    }
    dir_path(dir, dp);
    snprintf(buf, PATH_LEN, "%s/%s", dp, file);
}

static int obj_path(enum cairn_obj_type type, const char *name,
                    char buf[PATH_LEN])
{
    if (!cairn_store_name_valid(type, name))
        return CAIRN_EINVAL;
    join_path(dir_id(type, name), name, buf);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, p, len > SSIZE_MAX ? SSIZE_MAX : len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cairn_err_from_errno(errno);
        }
        if (n == 0)
            return CAIRN_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_path(int rootfd, const char *dp)
{
    int fd, rc = 0;

    if ((fd = openat(rootfd, dp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return cairn_err_from_errno(errno);
    if (fsync(fd) != 0)
        rc = cairn_err_from_errno(errno);
    close(fd);
    return rc;
}

static int fsync_dir(int rootfd, int dir)
{
    char dp[DPATH_LEN];

    dir_path(dir, dp);
    return fsync_path(rootfd, dp);
}

/*
 * Make fan-out directory dir unless it is known to be there (this store
 * made it or met it before), and sync its parent when it is new, so the
 * directory outlives a crash before anything in it does.  One that is
 * there already is taken as durable: whoever made it synced its parent
 * right after (and a journalling file system commits that with the first
 * fsync in it anyway).  Nothing is read at open: the server opens a
 * store for every request.
 */
static int ensure_dir(struct dirstore *d, int dir)
{
    char dp[DPATH_LEN];
    int rc;

    if (dir < DIR_DATA || atomic_load(&d->made[dir]))
        return 0;
    dir_path(dir, dp);
    if (mkdirat(d->rootfd, dp, 0700) == 0) {
        if ((rc = fsync_path(d->rootfd,
                             dir < DIR_INDEX ? "data" : "index")) != 0)
            return rc;
    } else if (errno != EEXIST) {
        return cairn_err_from_errno(errno);
    }
    atomic_store(&d->made[dir], 1);
    return 0;
}

/* Create a new temp file in dir: its name in tmp, its path in tpath. */
static int tmp_create(struct dirstore *d, int dir, char tmp[TMP_LEN],
                      char tpath[PATH_LEN], int *out_fd)
{
    uint64_t r;
    int tries, fd, rc;

    if ((rc = ensure_dir(d, dir)) != 0)
        return rc;
    for (tries = 0; tries < 8; tries++) {
        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return CAIRN_EIO;
        snprintf(tmp, TMP_LEN, TMP_PREFIX "%016llx", (unsigned long long)r);
        join_path(dir, tmp, tpath);
        fd = openat(d->rootfd, tpath,
                    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno != EEXIST && errno != EINTR)
            return cairn_err_from_errno(errno);
    }
    return CAIRN_EIO;
}

/*
 * Rename tpath to path unless path exists; if it does, the existing object
 * is kept and the temp file removed.  On failure the temp file is left for
 * the caller to remove.
 */
static int publish(int rootfd, const char *tpath, const char *path)
{
    if (renameat2(rootfd, tpath, rootfd, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST) {
        unlinkat(rootfd, tpath, 0);
        return 0;
    }
    /* File systems without RENAME_NOREPLACE: replacing is harmless, as a
     * name always means the same bytes. */
    if (errno == EINVAL || errno == ENOSYS) {
        if (renameat(rootfd, tpath, rootfd, path) == 0)
            return 0;
    }
    return cairn_err_from_errno(errno);
}

static int pending_add(struct dirstore *d, int tmpdir, int dir,
                       const char *tmp, const char *name)
{
    struct pending *p;
    size_t ncap;
    int rc = 0;

    pthread_mutex_lock(&d->pend_lock);
    if (d->npend == d->cappend) {
        ncap = d->cappend ? d->cappend * 2 : 64;
        if ((p = realloc(d->pend, ncap * sizeof(*p))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        d->pend = p;
        d->cappend = ncap;
    }
    p = &d->pend[d->npend++];
    p->dir = (uint16_t)dir;
    p->tmpdir = (uint16_t)tmpdir;
    memcpy(p->tmp, tmp, TMP_LEN);
    snprintf(p->name, sizeof(p->name), "%s", name);
out:
    pthread_mutex_unlock(&d->pend_lock);
    return rc;
}

static int dir_put(void *ctx, enum cairn_obj_type type, const char *name,
                   const void *buf, size_t len, int durable)
{
    struct dirstore *d = ctx;
    char path[PATH_LEN], tpath[PATH_LEN], tmp[TMP_LEN];
    struct stat st;
    int dir, fd = -1, rc;

    if ((rc = obj_path(type, name, path)) != 0)
        goto err0;
    dir = dir_id(type, name);

    /* Already there: keep it, and skip writing it again. */
    if (fstatat(d->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
        goto done;
    if (errno != ENOENT) {
        rc = cairn_err_from_errno(errno);
        goto err0;
    }

    if ((rc = tmp_create(d, dir, tmp, tpath, &fd)) != 0)
        goto err0;
    if ((rc = write_all(fd, buf, len)) != 0)
        goto err2;
    if (durable && fsync(fd) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err2;
    }
    /* Start writing it out now, without waiting, so the barrier finds
     * little left to do. */
    if (!durable)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (close(fd) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err1;
    }
    if (!durable) {
        if ((rc = pending_add(d, dir, dir, tmp, name)) != 0)
            goto err1;
        goto done;
    }
    if ((rc = publish(d->rootfd, tpath, path)) != 0)
        goto err1;
    /* Visible now, and whole; only the directory entry may be volatile. */
    if ((rc = fsync_dir(d->rootfd, dir)) != 0)
        goto err0;

done:
    /* Success! */
    return 0;

err2:
    close(fd);
err1:
    unlinkat(d->rootfd, tpath, 0);
err0:
    /* Failure! */
    return rc;
}

/* A streamed object: its temp file, in the first directory of its type
 * (its final directory depends on the name, not known yet). */
struct dir_stream {
    int fd;
    int tmpdir;
    enum cairn_obj_type type;
    char tmp[TMP_LEN];
};

static int stream_dir(enum cairn_obj_type type)
{
    switch (type) {
    case CAIRN_OBJ_PACK:
        return DIR_DATA;
    case CAIRN_OBJ_INDEX:
        return DIR_INDEX;
    default:
        return dir_id(type, "00");
    }
}

static int dir_begin(void *ctx, enum cairn_obj_type type, void **out_h)
{
    struct dirstore *d = ctx;
    struct dir_stream *ds;
    char tpath[PATH_LEN];
    int rc;

    if ((ds = calloc(1, sizeof(*ds))) == NULL)
        return CAIRN_ENOMEM;
    ds->type = type;
    ds->tmpdir = stream_dir(type);
    if ((rc = tmp_create(d, ds->tmpdir, ds->tmp, tpath, &ds->fd)) != 0) {
        free(ds);
        return rc;
    }
    *out_h = ds;
    return 0;
}

static int dir_append(void *ctx, void *h, const void *buf, size_t len)
{
    struct dir_stream *ds = h;

    (void)ctx;
    return write_all(ds->fd, buf, len);
}

static int dir_stream_read(void *ctx, void *h, uint64_t off, size_t len,
                           uint8_t *out)
{
    struct dir_stream *ds = h;

    (void)ctx;
    return store_pread_all(ds->fd, out, len, off);
}

static void dir_abort(void *ctx, void *h)
{
    struct dirstore *d = ctx;
    struct dir_stream *ds = h;
    char tpath[PATH_LEN];

    join_path(ds->tmpdir, ds->tmp, tpath);
    close(ds->fd);
    unlinkat(d->rootfd, tpath, 0);
    free(ds);
}

static int dir_commit(void *ctx, void *h, const char *name, int durable)
{
    struct dirstore *d = ctx;
    struct dir_stream *ds = h;
    char path[PATH_LEN], tpath[PATH_LEN];
    struct stat st;
    int dir, rc;

    join_path(ds->tmpdir, ds->tmp, tpath);
    if ((rc = obj_path(ds->type, name, path)) != 0)
        goto err1;
    dir = dir_id(ds->type, name);
    if (fstatat(d->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* Already there: keep it. */
        dir_abort(ctx, h);
        return 0;
    }
    /* Its directory, for the rename now or at the barrier. */
    if ((rc = ensure_dir(d, dir)) != 0)
        goto err1;
    if (durable && fsync(ds->fd) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err1;
    }
    if (!durable)
        sync_file_range(ds->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    rc = close(ds->fd) != 0 ? cairn_err_from_errno(errno) : 0;
    ds->fd = -1;
    if (rc != 0)
        goto err2;
    if (!durable) {
        if ((rc = pending_add(d, ds->tmpdir, dir, ds->tmp, name)) != 0)
            goto err2;
        free(ds);
        return 0;
    }
    if ((rc = publish(d->rootfd, tpath, path)) != 0)
        goto err2;
    free(ds);
    return fsync_dir(d->rootfd, dir);

err1:
    close(ds->fd);
err2:
    unlinkat(d->rootfd, tpath, 0);
    free(ds);
    return rc;
}

static int dir_barrier(void *ctx)
{
    struct dirstore *d = ctx;
    struct pending *p;
    size_t n, i, done = 0;
    uint8_t touched[NDIRS];
    char tpath[PATH_LEN], path[PATH_LEN];
    int fd, dir, rc = 0;

    /* Take the batch; puts of other threads go on into a new one. */
    pthread_mutex_lock(&d->pend_lock);
    p = d->pend;
    n = d->npend;
    d->pend = NULL;
    d->npend = d->cappend = 0;
    pthread_mutex_unlock(&d->pend_lock);
    if (n == 0)
        goto out;

    if (n >= SYNCFS_MIN) {
        if (syncfs(d->rootfd) != 0) {
            rc = cairn_err_from_errno(errno);
            goto out;
        }
    } else {
        for (i = 0; i < n; i++) {
            join_path(p[i].tmpdir, p[i].tmp, tpath);
            if ((fd = openat(d->rootfd, tpath, O_RDONLY | O_CLOEXEC)) < 0) {
                rc = cairn_err_from_errno(errno);
                goto out;
            }
            if (fsync(fd) != 0) {
                rc = cairn_err_from_errno(errno);
                close(fd);
                goto out;
            }
            close(fd);
        }
    }

    memset(touched, 0, sizeof(touched));
    for (done = 0; done < n; done++) {
        join_path(p[done].tmpdir, p[done].tmp, tpath);
        join_path(p[done].dir, p[done].name, path);
        if ((rc = publish(d->rootfd, tpath, path)) != 0)
            goto out;
        touched[p[done].dir] = 1;
    }
    for (dir = 0; dir < NDIRS; dir++)
        if (touched[dir] && (rc = fsync_dir(d->rootfd, dir)) != 0)
            goto out;

out:
    /*
     * On failure, drop what was not published: after a failed fsync the
     * kernel may have marked the pages clean, so a retry could "succeed"
     * on lost data.  The caller must treat the batch as not stored.
     */
    for (i = done; i < n; i++) {
        join_path(p[i].tmpdir, p[i].tmp, tpath);
        unlinkat(d->rootfd, tpath, 0);
    }
    free(p);
    return rc;
}

static int dir_get(void *ctx, enum cairn_obj_type type, const char *name,
                   uint8_t **out, size_t *out_len)
{
    struct dirstore *d = ctx;
    char path[PATH_LEN];
    struct stat st;
    uint8_t *buf;
    size_t len;
    int fd, rc;

    if ((rc = obj_path(type, name, path)) != 0)
        goto err0;
    if ((fd = openat(d->rootfd, path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = cairn_err_from_errno(errno);
        goto err0;
    }
    if (fstat(fd, &st) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err1;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = CAIRN_EIO;
        goto err1;
    }
    if ((uint64_t)st.st_size > SIZE_MAX - 1) {
        rc = CAIRN_ERANGE;
        goto err1;
    }
    len = (size_t)st.st_size;
    if ((buf = malloc(len + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    /* Objects never change in place: a short read means damage. */
    if ((rc = store_pread_all(fd, buf, len, 0)) != 0)
        goto err2;
    close(fd);

    *out = buf;
    *out_len = len;

    /* Success! */
    return 0;

err2:
    free(buf);
err1:
    close(fd);
err0:
    /* Failure! */
    return rc;
}

/* Close a slot's descriptor and empty it.  Cache lock held. */
static void slot_clear(struct fdslot *sl)
{
    close(sl->fd);
    sl->fd = -1;
    sl->dead = 0;
    sl->refs = 0;
}

static int slot_is(const struct fdslot *sl, enum cairn_obj_type type,
                   const char *name)
{
    return sl->fd >= 0 && !sl->dead && sl->type == (int)type &&
           strcmp(sl->name, name) == 0;
}

/*
 * Get a descriptor for (type, name) from the cache, opening it if needed.
 * *out_slot is the slot to give back with cache_release, or -1 when every
 * slot was busy and *out_fd is a private descriptor to close instead.
 */
static int cache_acquire(struct dirstore *d, enum cairn_obj_type type,
                         const char *name, const char *path, int *out_slot,
                         int *out_fd)
{
    struct fdslot *sl;
    int i, fd, victim = -1;

    pthread_mutex_lock(&d->cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++)
        if (slot_is(&d->slots[i], type, name))
            goto hit;
    pthread_mutex_unlock(&d->cache_lock);

    /* Open outside the lock, so that other threads' hits need not wait. */
    if ((fd = openat(d->rootfd, path, O_RDONLY | O_CLOEXEC)) < 0)
        return cairn_err_from_errno(errno);

    pthread_mutex_lock(&d->cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++) {
        sl = &d->slots[i];
        if (slot_is(sl, type, name)) {
            /* Another thread opened it meanwhile. */
            close(fd);
            goto hit;
        }
        /* Prefer an empty slot, else the least recently used idle one. */
        if (sl->fd < 0) {
            if (victim < 0 || d->slots[victim].fd >= 0)
                victim = i;
        } else if (sl->refs == 0 &&
                   (victim < 0 || (d->slots[victim].fd >= 0 &&
                                   sl->used < d->slots[victim].used))) {
            victim = i;
        }
    }
    if (victim < 0) {
        pthread_mutex_unlock(&d->cache_lock);
        *out_slot = -1;
        *out_fd = fd;
        return 0;
    }
    sl = &d->slots[victim];
    if (sl->fd >= 0)
        slot_clear(sl);
    sl->fd = fd;
    sl->type = (int)type;
    sl->dead = 0;
    sl->refs = 0;
    snprintf(sl->name, sizeof(sl->name), "%s", name);
    i = victim;
hit:
    sl = &d->slots[i];
    sl->refs++;
    sl->used = ++d->clock;
    *out_slot = i;
    *out_fd = sl->fd;
    pthread_mutex_unlock(&d->cache_lock);
    return 0;
}

static void cache_release(struct dirstore *d, int slot, int fd)
{
    struct fdslot *sl;

    if (slot < 0) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&d->cache_lock);
    sl = &d->slots[slot];
    if (--sl->refs == 0 && sl->dead)
        slot_clear(sl);
    pthread_mutex_unlock(&d->cache_lock);
}

/* Forget (type, name): a removed object must not stay readable here. */
static void cache_forget(struct dirstore *d, enum cairn_obj_type type,
                         const char *name)
{
    struct fdslot *sl;
    int i;

    pthread_mutex_lock(&d->cache_lock);
    for (i = 0; i < CACHE_SLOTS; i++) {
        sl = &d->slots[i];
        if (!slot_is(sl, type, name))
            continue;
        if (sl->refs == 0)
            slot_clear(sl);
        else
            sl->dead = 1;
    }
    pthread_mutex_unlock(&d->cache_lock);
}

static int dir_get_range(void *ctx, enum cairn_obj_type type, const char *name,
                         uint64_t off, size_t len, uint8_t *out)
{
    struct dirstore *d = ctx;
    char path[PATH_LEN];
    int slot, fd, rc;

    if ((rc = obj_path(type, name, path)) != 0)
        goto err0;
    /* off + len past what off_t can address cannot lie in the object. */
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off) {
        if ((rc = cache_acquire(d, type, name, path, &slot, &fd)) != 0)
            goto err0;
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    if ((rc = cache_acquire(d, type, name, path, &slot, &fd)) != 0)
        goto err0;
    if ((rc = store_pread_all(fd, out, len, off)) != 0)
        goto err1;
    cache_release(d, slot, fd);

    /* Success! */
    return 0;

err1:
    cache_release(d, slot, fd);
err0:
    /* Failure! */
    return rc;
}

static int dir_stat(void *ctx, enum cairn_obj_type type, const char *name,
                    uint64_t *out_size)
{
    struct dirstore *d = ctx;
    char path[PATH_LEN];
    struct stat st;
    int rc;

    if ((rc = obj_path(type, name, path)) != 0)
        return rc;
    if (fstatat(d->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return cairn_err_from_errno(errno);
    if (!S_ISREG(st.st_mode))
        return CAIRN_EIO;
    *out_size = (uint64_t)st.st_size;
    return 0;
}

/* Is tmp (in dir) a temp file of one of our own pending puts? */
static int is_pending(struct dirstore *d, int dir, const char *tmp)
{
    size_t i;
    int found = 0;

    pthread_mutex_lock(&d->pend_lock);
    for (i = 0; i < d->npend && !found; i++)
        found = d->pend[i].dir == dir && strcmp(d->pend[i].tmp, tmp) == 0;
    pthread_mutex_unlock(&d->pend_lock);
    return found;
}

/* Remove tmp if it is older than STALE_TMP_SECS.  Errors are ignored: the
 * store may be read-only, and another process may remove it first. */
static void reap_stale_tmp(struct dirstore *d, int dfd, int dir,
                           const char *tmp, time_t now)
{
    struct stat st;

    if (fstatat(dfd, tmp, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || st.st_mtime > now - STALE_TMP_SECS)
        return;
    if (is_pending(d, dir, tmp))
        return;
    unlinkat(dfd, tmp, 0);
}

static int list_dir(struct dirstore *d, enum cairn_obj_type type, int dir,
                    time_t now, cairn_store_list_fn fn, void *arg)
{
    char dp[DPATH_LEN];
    struct dirent *de;
    struct stat st;
    DIR *dh;
    int fd, rc = 0;

    dir_path(dir, dp);
    if ((fd = openat(d->rootfd, dp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        /* A fan-out directory may be missing in a damaged store. */
        if (errno == ENOENT)
            return 0;
        return cairn_err_from_errno(errno);
    }
    if ((dh = fdopendir(fd)) == NULL) {
        rc = cairn_err_from_errno(errno);
        close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        if ((de = readdir(dh)) == NULL) {
            if (errno != 0)
                rc = cairn_err_from_errno(errno);
            break;
        }
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            reap_stale_tmp(d, fd, dir, de->d_name, now);
            continue;
        }
        /* Foreign files, and objects in the wrong fan-out directory. */
        if (!cairn_store_name_valid(type, de->d_name) ||
            dir_id(type, de->d_name) != dir)
            continue;
        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) /* removed meanwhile */
                continue;
            rc = cairn_err_from_errno(errno);
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if ((rc = fn(arg, de->d_name, (uint64_t)st.st_size)) != 0)
            break;
    }
    closedir(dh);
    return rc;
}

static int dir_list(void *ctx, enum cairn_obj_type type, cairn_store_list_fn fn,
                    void *arg)
{
    struct dirstore *d = ctx;
    time_t now = time(NULL);
    int i, rc = 0;

    switch (type) {
    case CAIRN_OBJ_CONFIG:
        rc = list_dir(d, type, DIR_ROOT, now, fn, arg);
        break;
    case CAIRN_OBJ_KEY:
        rc = list_dir(d, type, DIR_KEYS, now, fn, arg);
        break;
    case CAIRN_OBJ_SNAPSHOT:
        rc = list_dir(d, type, DIR_SNAPSHOTS, now, fn, arg);
        break;
    case CAIRN_OBJ_LOCK:
        rc = list_dir(d, type, DIR_LOCKS, now, fn, arg);
        break;
    case CAIRN_OBJ_PACK:
    case CAIRN_OBJ_INDEX:
        for (i = 0; i < FANOUT && rc == 0; i++)
            rc = list_dir(d, type,
                          (type == CAIRN_OBJ_PACK ? DIR_DATA : DIR_INDEX) + i,
                          now, fn, arg);
        break;
    default:
        rc = CAIRN_EINVAL;
    }
    return rc;
}

static int dir_remove(void *ctx, enum cairn_obj_type type, const char *name)
{
    struct dirstore *d = ctx;
    char path[PATH_LEN];
    int rc;

    if ((rc = obj_path(type, name, path)) != 0)
        return rc;
    if (unlinkat(d->rootfd, path, 0) != 0)
        return cairn_err_from_errno(errno);
    cache_forget(d, type, name);
    return 0;
}

static void dir_close(void *ctx)
{
    struct dirstore *d = ctx;
    char tpath[PATH_LEN];
    size_t i;

    if (d == NULL)
        return;
    /* Un-barriered puts are discarded. */
    for (i = 0; i < d->npend; i++) {
        join_path(d->pend[i].tmpdir, d->pend[i].tmp, tpath);
        unlinkat(d->rootfd, tpath, 0);
    }
    free(d->pend);
    for (i = 0; i < CACHE_SLOTS; i++)
        if (d->slots[i].fd >= 0)
            close(d->slots[i].fd);
    close(d->rootfd);
    pthread_mutex_destroy(&d->cache_lock);
    pthread_mutex_destroy(&d->pend_lock);
    free(d);
}

static const struct cairn_store_ops dir_ops = {
    .name = "dir",
    .put = dir_put,
    .begin = dir_begin,
    .append = dir_append,
    .commit = dir_commit,
    .abort = dir_abort,
    .stream_read = dir_stream_read,
    .barrier = dir_barrier,
    .get = dir_get,
    .get_range = dir_get_range,
    .stat = dir_stat,
    .list = dir_list,
    .remove = dir_remove,
    .close = dir_close,
};

/* mkdir -p path (mode 0700 for what it creates). */
static int mkdir_parents(const char *path)
{
    char *p, *s;
    int rc = 0;

    if ((p = strdup(path)) == NULL)
        return CAIRN_ENOMEM;
    for (s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        if (s[-1] != '/') {
            char c = *s;

            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rc = cairn_err_from_errno(errno);
                break;
            }
            *s = c;
        }
        if (*s == '\0')
            break;
    }
    free(p);
    return rc;
}

/* The top directories (the fan-out ones come with their first object). */
static int mkdir_layout(int rootfd)
{
    char dp[DPATH_LEN];
    int dir;

    if ((mkdirat(rootfd, "data", 0700) != 0 && errno != EEXIST) ||
        (mkdirat(rootfd, "index", 0700) != 0 && errno != EEXIST))
        return cairn_err_from_errno(errno);
    for (dir = DIR_KEYS; dir < DIR_DATA; dir++) {
        dir_path(dir, dp);
        if (mkdirat(rootfd, dp, 0700) != 0 && errno != EEXIST)
            return cairn_err_from_errno(errno);
    }
    /* The layout must outlive a crash before the config is put. */
    return fsync_dir(rootfd, DIR_ROOT);
}

/*
 * Open the directory store at path (see store.h for the layout).  With
 * create, make the layout (missing parents too) unless a config is there
 * already (CAIRN_EEXIST); without, CAIRN_ENOENT unless path holds a
 * config.  *out is freed with cairn_store_free.
 */
int cairn_store_dir_open(const char *path, int create, struct cairn_store **out)
{
    struct dirstore *d;
    struct cairn_store *s;
    struct stat st;
    int i, rc;

    if (path == NULL || path[0] == '\0') {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    for (i = 0; i < CACHE_SLOTS; i++)
        d->slots[i].fd = -1;
    if (pthread_mutex_init(&d->pend_lock, NULL) != 0) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    if (pthread_mutex_init(&d->cache_lock, NULL) != 0) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    if (create && (rc = mkdir_parents(path)) != 0)
        goto err3;
    if ((d->rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = cairn_err_from_errno(errno);
        goto err3;
    }
    if (fstatat(d->rootfd, "config", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (create) {
            rc = CAIRN_EEXIST;
            goto err4;
        }
    } else if (errno != ENOENT || !create) {
        rc = cairn_err_from_errno(errno);
        goto err4;
    }
    if (create && (rc = mkdir_layout(d->rootfd)) != 0)
        goto err4;
    if ((s = malloc(sizeof(*s))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err4;
    }
    s->ops = &dir_ops;
    s->ctx = d;
    *out = s;

    /* Success! */
    return 0;

err4:
    close(d->rootfd);
err3:
    pthread_mutex_destroy(&d->cache_lock);
err2:
    pthread_mutex_destroy(&d->pend_lock);
err1:
    free(d);
err0:
    /* Failure! */
    return rc;
}
