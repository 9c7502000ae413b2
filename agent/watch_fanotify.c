/*
 * watch_fanotify.c - the watcher on fanotify: one FAN_MARK_FILESYSTEM mark
 * per file system holding a root, events with FAN_REPORT_DFID_NAME.
 *
 * An event names a directory by file handle, plus an entry name.  The
 * handle is turned into a path with open_by_handle_at (against a
 * descriptor on the same file system) and readlink of /proc/self/fd/N;
 * the answer - outside the selection, inside, excluded, or gone - is kept
 * in a fixed-size cache, because a whole file system's events (builds,
 * logs, other people's files) come through here and most of them are for
 * a few busy directories.  Renaming or deleting any directory can change
 * the answer for any cached one, so such an event empties the cache.
 *
 * With a file-system mark nothing needs adding as directories come: a new
 * directory's contents arrive as events of their own.  What fanotify
 * cannot do is tell which files a directory moved in from elsewhere
 * holds, hence RESCAN for it.
 *
 * Needs CAP_SYS_ADMIN (the mark) and CAP_DAC_READ_SEARCH
 * (open_by_handle_at); open checks both up front, so AUTO falls back to
 * inotify rather than miss events later.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cairn/err.h"
#include "watch_int.h"

#define FAN_EVENTS                                                            \
    (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY |   \
     FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_ONDIR)
#define FAN_CHANGE (FAN_CREATE | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE)
#define HANDLE_MAX 128 /* MAX_HANDLE_SZ */
#define CACHE_SLOTS 4096 /* a power of two */
#define CACHE_FILL (CACHE_SLOTS / 4 * 3)
#define READ_BUF 16384
#define READS_PER_CALL 16
#define FSID_LEN 8
#define FH_HDR 8 /* struct file_handle without f_handle */

/* What a directory handle resolves to. */
enum { DIR_OUTSIDE, DIR_INSIDE, DIR_EXCLUDED, DIR_GONE };

struct fan_fs {
    unsigned char fsid[FSID_LEN];
    int mountfd; /* for open_by_handle_at */
};

struct dir_ent {
    uint64_t hash;
    int state;
    size_t keylen;
    char *path; /* in the same allocation; "" if unknown */
    unsigned char key[]; /* fsid, handle type, handle */
};

struct fan {
    int fd;
    struct fan_fs *fs;
    size_t nfs;
    struct dir_ent **cache; /* CACHE_SLOTS */
    size_t ncache;
    int unresolved; /* a handle could not be resolved for a passing
                     * reason: rescan everything */
    struct watch_path link;
    alignas(struct fanotify_event_metadata) unsigned char buf[READ_BUF];
};

static void cache_clear(struct fan *fa)
{
    size_t i;

    if (fa->ncache == 0)
        return;
    for (i = 0; i < CACHE_SLOTS; i++) {
        free(fa->cache[i]);
        fa->cache[i] = NULL;
    }
    fa->ncache = 0;
}

static uint64_t key_hash(const unsigned char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ k[i]) * 0x100000001b3u;
    return h;
}

/* readlink of /proc/self/fd/fd into fa->link.  0, or -1 if no path. */
static int fd_path(struct fan *fa, int fd)
{
    char proc[64], *np;
    size_t cap = fa->link.cap ? fa->link.cap : 256;
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    for (;;) {
        if (fa->link.cap < cap) {
            if ((np = realloc(fa->link.p, cap)) == NULL)
                return -1;
            fa->link.p = np;
            fa->link.cap = cap;
        }
        if ((n = readlink(proc, fa->link.p, cap)) < 0)
            return -1;
        if ((size_t)n < cap) {
            fa->link.p[n] = '\0';
            fa->link.len = (size_t)n;
            return fa->link.p[0] == '/' ? 0 : -1;
        }
        if (cap >= WATCH_PATH_MAX)
            return -1;
        cap *= 2;
    }
}

/* Where does the directory at path stand: inside the selection (and not
 * at or below an excluded directory), excluded, or outside?  path is
 * modified during the call and restored. */
static int path_state(const struct agent_watch *w, char *path)
{
    size_t i, j;
    long root;
    char c;
    int ex;

    if ((root = watch_root_of(w, path)) < 0)
        return DIR_OUTSIDE;
    if (w->excluded == NULL)
        return DIR_INSIDE;
    /* Each directory below the root, outermost first. */
    i = w->rootlen[root] == 1 ? 0 : w->rootlen[root];
    while (path[i] != '\0') {
        for (j = i + 1; path[j] != '\0' && path[j] != '/'; j++)
            ;
        c = path[j];
        path[j] = '\0';
        ex = watch_is_excluded(w, path, 1);
        path[j] = c;
        if (ex)
            return DIR_EXCLUDED;
        i = j;
    }
    return DIR_INSIDE;
}

/* Resolve a directory handle (key: fsid, type, handle bytes).  Returns
 * 0 with *out (owned by the cache) or CAIRN_ENOMEM. */
static int resolve(struct agent_watch *w, struct fan *fa,
                   const unsigned char *key, size_t keylen,
                   const struct dir_ent **out)
{
    alignas(struct file_handle) unsigned char hb[FH_HDR + HANDLE_MAX];
    struct file_handle *fh = (struct file_handle *)(void *)hb;
    uint64_t h = key_hash(key, keylen);
    struct dir_ent *e;
    struct stat st;
    size_t i, f, plen = 0;
    int32_t type;
    int state = DIR_OUTSIDE, fd = -1;

    for (i = h & (CACHE_SLOTS - 1); fa->cache[i] != NULL;
         i = (i + 1) & (CACHE_SLOTS - 1)) {
        e = fa->cache[i];
        if (e->hash == h && e->keylen == keylen &&
            memcmp(e->key, key, keylen) == 0) {
            *out = e;
            return 0;
        }
    }

    for (f = 0; f < fa->nfs; f++)
        if (memcmp(fa->fs[f].fsid, key, FSID_LEN) == 0)
            break;
    if (f < fa->nfs) {
        memcpy(&type, key + FSID_LEN, 4);
        fh->handle_bytes = (unsigned)(keylen - FSID_LEN - 4);
        fh->handle_type = type;
        memcpy(fh->f_handle, key + FSID_LEN + 4, fh->handle_bytes);
        fd = open_by_handle_at(fa->fs[f].mountfd, fh, O_PATH | O_CLOEXEC);
        if (fd < 0 && errno != ESTALE && errno != ENOENT) {
            fa->unresolved = 1;
            state = DIR_GONE;
        } else if (fd < 0 || fstat(fd, &st) != 0 || st.st_nlink == 0) {
            state = DIR_GONE;
        } else if (fd_path(fa, fd) != 0) {
            state = DIR_GONE;
            fa->unresolved = 1;
        } else {
            state = path_state(w, fa->link.p);
            plen = fa->link.len;
        }
        if (fd >= 0)
            close(fd);
    }
    if (fa->ncache >= CACHE_FILL) {
        cache_clear(fa);
        i = h & (CACHE_SLOTS - 1);
    }
    if ((e = malloc(sizeof(*e) + keylen + plen + 1)) == NULL)
        return CAIRN_ENOMEM;
    e->hash = h;
    e->state = state;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    e->path = (char *)e->key + keylen;
    if (plen > 0)
        memcpy(e->path, fa->link.p, plen);
    e->path[plen] = '\0';
    for (; fa->cache[i] != NULL; i = (i + 1) & (CACHE_SLOTS - 1))
        ;
    /* A passing failure is not cached: try again next time. */
    if (state == DIR_GONE && fa->unresolved) {
        fa->cache[i] = NULL;
        *out = NULL;
        free(e);
        return 0;
    }
    fa->cache[i] = e;
    fa->ncache++;
    *out = e;
    return 0;
}

/* A directory at or above a root was deleted or moved: say so for the
 * roots below it. */
static int roots_below(struct agent_watch *w, const char *path, unsigned flags)
{
    size_t i, n = strlen(path);
    int r;

    for (i = 0; i < w->nroots; i++)
        if (watch_is_under(w->roots[i], path, n) &&
            (r = watch_report(w, w->roots[i], flags)) != 0)
            return r;
    return 0;
}

/* One event about directory key and entry name ("." for the directory
 * itself). */
static int handle_event(struct agent_watch *w, struct fan *fa, uint64_t mask,
                        const unsigned char *key, size_t keylen,
                        const char *name)
{
    const struct dir_ent *e;
    int isdir = (mask & FAN_ONDIR) != 0, state, r;
    int dirmove = isdir && (mask & (FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO));
    unsigned flags;

    if ((r = resolve(w, fa, key, keylen, &e)) != 0)
        return r;
    if (e == NULL || e->state == DIR_GONE)
        return 0;
    state = e->state;
    if (strcmp(name, ".") == 0) {
        if (state == DIR_INSIDE && (mask & FAN_CHANGE))
            return watch_report(w, e->path, AGENT_WATCH_CHANGED);
        return 0;
    }
    /* Most events on a file system are for other people's files. */
    if (state != DIR_INSIDE && !dirmove)
        return 0;
    if ((r = watch_path_set(&w->path, e->path, strlen(e->path))) == 0)
        r = watch_path_append(&w->path, name, strlen(name));
    if (r == CAIRN_ERANGE) {
        if (state != DIR_INSIDE)
            return 0;
        return watch_report(w, e->path, AGENT_WATCH_RESCAN);
    }
    if (r != 0)
        return r;
    if (dirmove) {
        /* Paths of cached directories may have changed. */
        cache_clear(fa);
        r = roots_below(w, w->path.p,
                        (mask & FAN_MOVED_TO) ? AGENT_WATCH_RESCAN
                                              : AGENT_WATCH_REMOVED);
        if (r != 0)
            return r;
    }
    if (state != DIR_INSIDE || watch_is_excluded(w, w->path.p, isdir))
        return 0;
    if (mask & (FAN_CHANGE | FAN_MOVED_TO))
        flags = (isdir && (mask & FAN_MOVED_TO)) ? AGENT_WATCH_RESCAN
                                                  : AGENT_WATCH_CHANGED;
    else if (mask & (FAN_DELETE | FAN_MOVED_FROM))
        flags = AGENT_WATCH_REMOVED;
    else
        return 0;
    return watch_report(w, w->path.p, flags);
}

/*
 * One event from buf[0..n) (n its event_len, already checked to fit):
 * find the directory record and hand it on.  Returns 0, CAIRN_ECORRUPT
 * for a record that does not parse, or what handle_event returned.
 */
static int parse_event(struct agent_watch *w, struct fan *fa,
                       const unsigned char *buf, size_t n, uint64_t mask,
                       size_t metalen)
{
    struct fanotify_event_info_header hdr;
    unsigned char key[FSID_LEN + 4 + HANDLE_MAX];
    uint32_t hbytes;
    int32_t htype;
    const unsigned char *rec;
    const char *name;
    size_t off, keylen;

    for (off = metalen; n - off >= sizeof(hdr); off += hdr.len) {
        rec = buf + off;
        memcpy(&hdr, rec, sizeof(hdr));
        if (hdr.len < sizeof(hdr) || hdr.len > n - off)
            return CAIRN_ECORRUPT;
        if (hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME &&
            hdr.info_type != FAN_EVENT_INFO_TYPE_DFID)
            continue;
        if (hdr.len < sizeof(hdr) + FSID_LEN + FH_HDR)
            return CAIRN_ECORRUPT;
        memcpy(&hbytes, rec + sizeof(hdr) + FSID_LEN, 4);
        memcpy(&htype, rec + sizeof(hdr) + FSID_LEN + 4, 4);
        if (hbytes > HANDLE_MAX ||
            hbytes > hdr.len - sizeof(hdr) - FSID_LEN - FH_HDR)
            return CAIRN_ECORRUPT;
        memcpy(key, rec + sizeof(hdr), FSID_LEN);
        memcpy(key + FSID_LEN, &htype, 4);
        memcpy(key + FSID_LEN + 4, rec + sizeof(hdr) + FSID_LEN + FH_HDR,
               hbytes);
        keylen = FSID_LEN + 4 + hbytes;
        name = ".";
        if (hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
            const unsigned char *s =
                rec + sizeof(hdr) + FSID_LEN + FH_HDR + hbytes;
            size_t left = hdr.len - sizeof(hdr) - FSID_LEN - FH_HDR - hbytes;
            if (left == 0 || memchr(s, '\0', left) == NULL || s[0] == '\0' ||
                memchr(s, '/', strlen((const char *)s)) != NULL)
                return CAIRN_ECORRUPT;
            name = (const char *)s;
        }
        return handle_event(w, fa, mask, key, keylen, name);
    }
    return 0; /* no directory record: nothing we asked for */
}

static int fanotify_resync(struct agent_watch *w)
{
    struct fan *fa = w->be;

    cache_clear(fa);
    fa->unresolved = 0;
    return 0;
}

static int fanotify_read(struct agent_watch *w)
{
    struct fan *fa = w->be;
    struct fanotify_event_metadata md;
    size_t off, n, k;
    ssize_t got;
    int overflow = 0, r = 0;

    for (k = 0; k < READS_PER_CALL; k++) {
        got = read(fa->fd, fa->buf, sizeof(fa->buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            break;
        if (got <= 0) {
            r = got == 0 ? 0 : CAIRN_EIO;
            break;
        }
        n = (size_t)got;
        for (off = 0; n - off >= sizeof(md); off += md.event_len) {
            memcpy(&md, fa->buf + off, sizeof(md));
            if (md.vers != FANOTIFY_METADATA_VERSION ||
                md.event_len < sizeof(md) || md.event_len > n - off ||
                md.metadata_len < sizeof(md) ||
                md.metadata_len > md.event_len) {
                overflow = 1; /* cannot happen; if it does, rescan */
                break;
            }
            if (md.fd >= 0)
                close(md.fd);
            if (md.mask & FAN_Q_OVERFLOW) {
                overflow = 1;
                continue;
            }
            r = parse_event(w, fa, fa->buf + off, md.event_len, md.mask,
                            md.metadata_len);
            if (r == CAIRN_ECORRUPT) {
                overflow = 1;
                r = 0;
            }
            if (r != 0)
                goto out;
        }
        if (n + 4096 <= sizeof(fa->buf))
            break; /* a short read: drained */
    }
out:
    if (r == 0 && (overflow || fa->unresolved)) {
        (void)fanotify_resync(w);
        r = watch_report_roots(w);
    }
    return r;
}

static void fanotify_free(struct agent_watch *w)
{
    struct fan *fa = w->be;
    size_t i;

    if (fa == NULL)
        return;
    if (fa->fd >= 0)
        close(fa->fd);
    for (i = 0; i < fa->nfs; i++)
        close(fa->fs[i].mountfd);
    free(fa->fs);
    if (fa->cache != NULL)
        cache_clear(fa);
    free(fa->cache);
    watch_path_free(&fa->link);
    free(fa);
    w->be = NULL;
}

static int fanotify_retry(struct agent_watch *w);

static const struct watch_ops fanotify_ops = {
    .name = "fanotify",
    .read = fanotify_read,
    .resync = fanotify_resync,
    .retry = fanotify_retry,
    .free = fanotify_free,
};

static int errno_to_err(int e)
{
    if (e == EPERM || e == EACCES)
        return CAIRN_EPERM;
    if (e == ENOMEM)
        return CAIRN_ENOMEM;
    return CAIRN_EIO;
}

/* Mark the file system of root (an existing, canonical directory), unless
 * marked already, after checking its handles can be opened. */
static int mark_fs(struct fan *fa, const char *root)
{
    alignas(struct file_handle) unsigned char hb[FH_HDR + HANDLE_MAX];
    struct file_handle *fh = (struct file_handle *)(void *)hb;
    struct fan_fs *nf;
    struct statfs sfs;
    unsigned char fsid[FSID_LEN];
    size_t i;
    int mfd, fd, mntid, r;

    if (statfs(root, &sfs) != 0)
        return errno_to_err(errno);
    memcpy(fsid, &sfs.f_fsid, FSID_LEN);
    for (i = 0; i < fa->nfs; i++)
        if (memcmp(fa->fs[i].fsid, fsid, FSID_LEN) == 0)
            return 0;
    if ((mfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        r = errno_to_err(errno);
        goto err0;
    }
    fh->handle_bytes = HANDLE_MAX;
    if (name_to_handle_at(AT_FDCWD, root, fh, &mntid, 0) != 0) {
        r = errno_to_err(errno);
        goto err1;
    }
    if ((fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC)) < 0) {
        r = errno_to_err(errno);
        goto err1;
    }
    close(fd);
    if (fanotify_mark(fa->fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_EVENTS,
                      AT_FDCWD, root) != 0) {
        r = errno_to_err(errno);
        goto err1;
    }
    if ((nf = realloc(fa->fs, (fa->nfs + 1) * sizeof(*nf))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err1;
    }
    fa->fs = nf;
    memcpy(fa->fs[fa->nfs].fsid, fsid, FSID_LEN);
    fa->fs[fa->nfs].mountfd = mfd;
    fa->nfs++;
    return 0;

err1:
    close(mfd);
err0:
    return r;
}

/*
 * The unwatched list holds roots that were missing, or not directories,
 * when the watch began.  Once one is a directory, its file system is
 * marked (nothing to do when another root's mark covers it already) and it
 * leaves the list; one that still cannot be marked stays on it.
 */
static int fanotify_retry(struct agent_watch *w)
{
    struct fan *fa = w->be;
    struct stat st;
    char *rp;
    size_t i;
    int r;

    for (i = 0; i < w->nunw;) {
        const char *root = w->unw[i];

        if (!watch_is_root(w, root) || stat(root, &st) != 0 ||
            !S_ISDIR(st.st_mode) || (rp = realpath(root, NULL)) == NULL) {
            i++;
            continue;
        }
        r = strcmp(rp, root) == 0 ? mark_fs(fa, root) : CAIRN_EINVAL;
        free(rp);
        if (r == CAIRN_ENOMEM)
            return r;
        if (r != 0) {
            i++;
            continue;
        }
        /* Its slot now holds another entry, or the list ended. */
        watch_unwatched_drop(w, root);
    }
    return 0;
}

int watch_fanotify_open(struct agent_watch *w)
{
    struct fan *fa;
    struct stat st;
    char *rp;
    size_t i;
    int r;

    if ((fa = calloc(1, sizeof(*fa))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err0;
    }
    fa->fd = -1;
    w->be = fa;
    w->ops = &fanotify_ops;
    if ((fa->cache = calloc(CACHE_SLOTS, sizeof(*fa->cache))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err1;
    }
    fa->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME |
                               FAN_NONBLOCK | FAN_CLOEXEC,
                           O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (fa->fd < 0) {
        r = errno_to_err(errno);
        goto err1;
    }
    for (i = 0; i < w->nroots; i++) {
        if ((rp = realpath(w->roots[i], NULL)) == NULL) {
            if (errno != ENOENT && errno != ENOTDIR) {
                r = errno_to_err(errno);
                goto err1;
            }
            if ((r = watch_unwatched_add(w, w->roots[i])) != 0)
                goto err1;
            continue;
        }
        /* Events come with real paths: a root through a symbolic link
         * would never match them. */
        r = strcmp(rp, w->roots[i]) == 0 ? 0 : CAIRN_EINVAL;
        free(rp);
        if (r != 0)
            goto err1;
        if (stat(w->roots[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            if ((r = watch_unwatched_add(w, w->roots[i])) != 0)
                goto err1;
            continue;
        }
        if ((r = mark_fs(fa, w->roots[i])) != 0)
            goto err1;
    }
    w->fd = fa->fd;
    return 0;

err1:
    fanotify_free(w);
    w->ops = NULL;
err0:
    return r;
}
