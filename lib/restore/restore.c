/*
 * restore.c - bring a snapshot (or part of it) back to disk.
 *
 * Three phases, the first two side by side:
 *   1. plan: walk the trees from the chosen path, create the directories
 *      (mode 0700 for now), look up every content blob, and collect the
 *      files, symlinks, special files and hard links; in a directory this
 *      run did not create, look at what is there already (an entry in
 *      place from an earlier run is left alone; something different is
 *      handled by the existing-entry policy) and remove temporary files an
 *      interrupted run left; group small files into units fetched
 *      together, each handed to the workers as soon as it is complete;
 *   2. contents: a pool of workers (restore_files.c) writes the files,
 *      each file's metadata applied when it is complete;
 *   3. the rest: hard links, symlinks and special files, then the
 *      directories' metadata, deepest first (creating entries changes a
 *      directory's times).
 *
 * Since the workers read the plan while it grows, its arrays are sized
 * beforehand by a count over the trees (read ahead by restore_trees.c)
 * and never move.
 *
 * A file whose content is missing or does not authenticate is reported
 * (CAIRN_EV_DAMAGED_FILE) and removed: no file is left with wrong content.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/restore.h"
#include "restore/restore_int.h"

#define SPLIT_MIN (48u * 1024 * 1024) /* files above this are split ... */
#define PART_LEN (16u * 1024 * 1024)  /* ... in pieces of about this */
#define ARENA_BLOCK (256u * 1024)
#define UNIT_BYTES (4u * 1024 * 1024) /* small files fetched together ... */
#define UNIT_FILES 256                /* ... up to these limits */
#define TMP_PREFIX ".cairn-tmp."
/* A file's creation, counted as this many bytes of data when the work is
 * cut in even parts. */
#define COST_FILE 65536

struct rs_arena {
    struct rs_arena *next;
    size_t used, cap;
    char data[];
};

static char *arena_dup(struct rs *rs, const char *s, size_t n)
{
    struct rs_arena *a = rs->arena;
    size_t cap;
    char *p;

    if (a == NULL || a->cap - a->used < n + 1) {
        cap = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
        if ((a = malloc(sizeof(*a) + cap)) == NULL)
            return NULL;
        a->next = rs->arena;
        a->used = 0;
        a->cap = cap;
        rs->arena = a;
    }
    p = a->data + a->used;
    memcpy(p, s, n);
    p[n] = '\0';
    a->used += n + 1;
    return p;
}

static void arena_free(struct rs_arena *a)
{
    struct rs_arena *n;

    for (; a != NULL; a = n) {
        n = a->next;
        free(a);
    }
}

/* Make room for one more element of size sz in *v (count n, capacity cap). */
static int push(void *vp, size_t *n, size_t *cap, size_t sz)
{
    void **v = vp;
    size_t ncap;
    void *nv;

    if (*n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    if (ncap > SIZE_MAX / sz)
        return CAIRN_ENOMEM;
    if ((nv = realloc(*v, ncap * sz)) == NULL)
        return CAIRN_ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

int64_t rs_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rs_cancelled(struct rs *rs)
{
    return rs->o->cancel != NULL && *rs->o->cancel != 0;
}

void rs_event(struct rs *rs, int kind, const char *path, const char *name,
              int err, int sys_errno, const char *detail)
{
    struct cairn_event ev;

    if (rs->o->on_event == NULL)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.path = path;
    ev.name = name;
    ev.err = err;
    ev.sys_errno = sys_errno;
    ev.detail = detail;
    pthread_mutex_lock(&rs->ev_lock);
    rs->o->on_event(rs->o->event_arg, &ev);
    pthread_mutex_unlock(&rs->ev_lock);
}

void rs_file_error(struct rs *rs, const char *path, int sys_errno,
                   const char *what)
{
    char detail[512];
    int zero = 0;

    atomic_fetch_add(&rs->errors, 1);
    if (sys_errno != 0)
        snprintf(detail, sizeof(detail), "%s: %s", what, strerror(sys_errno));
    else
        snprintf(detail, sizeof(detail), "%s", what);
    rs_event(rs, CAIRN_EV_FILE_ERROR, path, NULL,
             cairn_err_from_errno(sys_errno), sys_errno, detail);
    /* A full disk fails every file after this one: stop (what is in
     * place is whole, and running the restore again finishes it). */
    if (sys_errno == ENOSPC || sys_errno == EDQUOT)
        atomic_compare_exchange_strong(&rs->fatal, &zero, CAIRN_ENOSPC);
}

void rs_damaged(struct rs *rs, const char *spath, int err, const char *detail)
{
    atomic_fetch_add(&rs->errors, 1);
    atomic_fetch_add(&rs->damaged, 1);
    rs_event(rs, CAIRN_EV_DAMAGED_FILE, spath, NULL, err, 0, detail);
}

void rs_progress(struct rs *rs, int force)
{
    struct cairn_progress p;
    struct cairn_event ev;
    int64_t now;

    if (rs->o->on_event == NULL)
        return;
    now = rs_now();
    if (force)
        pthread_mutex_lock(&rs->ev_lock);
    else if (pthread_mutex_trylock(&rs->ev_lock) != 0)
        return; /* someone else is reporting right now */
    if (force || now - rs->last_progress >= 250000000) {
        rs->last_progress = now;
        memset(&p, 0, sizeof(p));
        p.files_done = atomic_load(&rs->files_done);
        p.files_total = atomic_load(&rs->files_total);
        p.bytes_done = atomic_load(&rs->bytes_done);
        p.bytes_total = atomic_load(&rs->bytes_total);
        p.errors = atomic_load(&rs->errors);
        p.elapsed_ns = now - rs->t0;
        p.totals_final = atomic_load(&rs->planned);
        memset(&ev, 0, sizeof(ev));
        ev.kind = CAIRN_EV_PROGRESS;
        ev.progress = &p;
        rs->o->on_event(rs->o->event_arg, &ev);
    }
    pthread_mutex_unlock(&rs->ev_lock);
}

void rs_set_xattrs(struct rs *rs, int fd, const char *path,
                   const struct cairn_tree_entry *e, int follow)
{
    const struct cairn_xattr *x;
    uint16_t i;
    int rc;

    for (i = 0; i < e->nxattrs; i++) {
        x = &e->xattrs[i];
        /* Other namespaces (trusted, security, system) need privilege. */
        if (!rs->is_root && strncmp(x->name, "user.", 5) != 0)
            continue;
        if (fd >= 0)
            rc = fsetxattr(fd, x->name, x->value, x->len, 0);
        else if (follow)
            rc = setxattr(path, x->name, x->value, x->len, 0);
        else
            rc = lsetxattr(path, x->name, x->value, x->len, 0);
        if (rc != 0)
            rs_file_error(rs, path, errno, "cannot set extended attribute");
    }
}

/* Owner, mode and times by path (directories, symlinks, special files). */
static void path_meta(struct rs *rs, const char *path,
                      const struct cairn_tree_entry *e)
{
    int link = e->type == CAIRN_NODE_SYMLINK;
    struct timespec ts[2];
    int fd = -1;

    /* A directory through a descriptor: its path walked once, not three
     * times (deep trees have thousands of directories). */
    if (e->type == CAIRN_NODE_DIR)
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (e->nxattrs > 0)
        rs_set_xattrs(rs, fd, path, e, !link);
    if (rs->o->restore_owner &&
        (fd >= 0 ? fchown(fd, e->uid, e->gid)
                 : fchownat(AT_FDCWD, path, e->uid, e->gid,
                            AT_SYMLINK_NOFOLLOW)) != 0)
        rs_file_error(rs, path, errno, "cannot set owner");
    if (!link && (fd >= 0 ? fchmod(fd, (mode_t)(e->mode & 07777))
                          : fchmodat(AT_FDCWD, path,
                                     (mode_t)(e->mode & 07777), 0)) != 0)
        rs_file_error(rs, path, errno, "cannot set mode");
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
    if ((fd >= 0 ? futimens(fd, ts)
                 : utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW)) != 0)
        rs_file_error(rs, path, errno, "cannot set times");
    if (fd >= 0)
        close(fd);
}

/*
 * Create a directory: 1 if made, 0 if one is there already (not a symlink
 * to one), -1 with errno otherwise (EEXIST: something else is there).
 */
static int make_dir(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0)
        return 1;
    if (errno != EEXIST)
        return -1;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode))
        return 0;
    errno = EEXIST;
    return -1;
}

/*
 * The k-th other name (k >= 1) for name in the directory dir[0..dl):
 * "stem (restored TAG).ext", then "stem (restored TAG k).ext", written
 * whole to out (PATH_MAX bytes).  Directories keep no extension.  Returns
 * its length, or 0 if it would be too long.
 */
static size_t alt_path(const struct rs *rs, const char *dir, size_t dl,
                       const char *name, int k, int is_dir, char *out)
{
    const char *dot = is_dir ? NULL : strrchr(name, '.');
    char suffix[64];
    size_t stem, ext, sl;
    int n;

    if (dot == name || (dot != NULL && strlen(dot) > 16))
        dot = NULL;
    stem = dot != NULL ? (size_t)(dot - name) : strlen(name);
    ext = dot != NULL ? strlen(dot) : 0;
    if (k == 1)
        n = snprintf(suffix, sizeof(suffix), " (restored %s)", rs->tag);
    else
        n = snprintf(suffix, sizeof(suffix), " (restored %s %d)", rs->tag,
                     k);
    if (n < 0 || (size_t)n >= sizeof(suffix))
        return 0;
    sl = (size_t)n;
    if (stem + sl + ext > NAME_MAX || dl + 1 + stem + sl + ext >= PATH_MAX)
        return 0;
    memcpy(out, dir, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, name, stem);
    memcpy(out + dl + 1 + stem, suffix, sl);
    memcpy(out + dl + 1 + stem + sl, name + stem, ext);
    out[dl + 1 + stem + sl + ext] = '\0';
    return dl + 1 + stem + sl + ext;
}

/* Is what st describes (at path) the entry e, restored already?  length:
 * a regular file's content length. */
static int same_entry(const struct rs *rs, const struct stat *st,
                      const char *path, const struct cairn_tree_entry *e,
                      uint64_t length)
{
    char target[PATH_MAX];
    ssize_t n;

    switch (e->type) {
    case CAIRN_NODE_FILE:
        return S_ISREG(st->st_mode) && (uint64_t)st->st_size == length &&
               (int64_t)st->st_mtim.tv_sec * 1000000000 +
                       st->st_mtim.tv_nsec ==
                   e->mtime_ns &&
               (st->st_mode & 07777) == (e->mode & 07777) &&
               (!rs->o->restore_owner ||
                (st->st_uid == e->uid && st->st_gid == e->gid));
    case CAIRN_NODE_SYMLINK:
        if (!S_ISLNK(st->st_mode))
            return 0;
        n = readlink(path, target, sizeof(target));
        return n >= 0 && (size_t)n == strlen(e->target) &&
               memcmp(target, e->target, (size_t)n) == 0;
    case CAIRN_NODE_FIFO:
        return S_ISFIFO(st->st_mode);
    case CAIRN_NODE_SOCK:
        return S_ISSOCK(st->st_mode);
    case CAIRN_NODE_CHR:
        return S_ISCHR(st->st_mode) && st->st_rdev == (dev_t)e->rdev;
    case CAIRN_NODE_BLK:
        return S_ISBLK(st->st_mode) && st->st_rdev == (dev_t)e->rdev;
    default:
        return 0;
    }
}

/* Count and report an existing entry left alone (SKIP). */
static void keep_existing(struct rs *rs, const char *path)
{
    rs->res->kept++;
    rs_event(rs, CAIRN_EV_INFO, path, NULL, CAIRN_EEXIST, EEXIST,
             "something different is there already; left alone");
}

/*
 * Where an entry other than a directory goes, when its directory was not
 * made by this run: enum rs_place (RS_FAIL reported), or CAIRN_ENOMEM.
 * With RENAME, *path may become another name (in the arena); dl is the
 * length of the directory part of *path.  *absent: nothing is at *path.
 */
static int place_entry(struct rs *rs, const struct cairn_tree_entry *e,
                       uint64_t length, char **path, size_t dl, int *absent)
{
    const char *name = *path + dl + 1;
    char alt[PATH_MAX];
    struct stat st;
    size_t n;
    int k, free_name;

    *absent = 0;
    if (lstat(*path, &st) != 0) {
        if (errno == ENOENT) {
            *absent = 1;
            return RS_NEW;
        }
        rs_file_error(rs, *path, errno, "cannot look at what is there");
        return RS_FAIL;
    }
    if (same_entry(rs, &st, *path, e, length))
        return RS_DONE;
    switch (rs->o->existing) {
    case CAIRN_RESTORE_SKIP:
        keep_existing(rs, *path);
        return RS_KEEP;
    case CAIRN_RESTORE_RENAME:
        for (k = 1; k < 100; k++) {
            if ((n = alt_path(rs, *path, dl, name, k, 0, alt)) == 0)
                break;
            if (lstat(alt, &st) == 0)
                free_name = 0;
            else if (errno == ENOENT)
                free_name = 1;
            else
                break;
            if (free_name || same_entry(rs, &st, alt, e, length)) {
                if ((*path = arena_dup(rs, alt, n)) == NULL)
                    return CAIRN_ENOMEM;
                if (free_name)
                    rs->res->renamed++;
                *absent = free_name;
                return free_name ? RS_NEW : RS_DONE;
            }
        }
        rs_file_error(rs, *path, EEXIST,
                      "something different is there and no other name is "
                      "free; not restored");
        return RS_FAIL;
    default:
        return RS_NEW;
    }
}

/* Remove the temporary files an interrupted restore left in dir (an
 * existing directory; "" is the root). */
static void remove_tmps(const char *dir)
{
    struct dirent *de;
    DIR *d;

    if ((d = opendir(dir[0] != '\0' ? dir : "/")) == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

/* The temporary name of path (in the arena): ".cairn-tmp.<name>" beside
 * it, or ".cairn-tmp.#<hash>" when that would be too long. */
static char *tmp_name(struct rs *rs, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash != NULL ? (size_t)(slash - path) : 0, nl;
    char buf[PATH_MAX], hex[2 * 32 + 1];
    uint8_t h[32];
    int n;

    nl = strlen(path) - dl - 1;
    if (nl + sizeof(TMP_PREFIX) - 1 <= NAME_MAX) {
        n = snprintf(buf, sizeof(buf), "%.*s/" TMP_PREFIX "%s", (int)dl,
                     path, path + dl + 1);
    } else {
        cairn_sha256(path + dl + 1, nl, h);
        cairn_hex_encode(h, 16, hex);
        n = snprintf(buf, sizeof(buf), "%.*s/" TMP_PREFIX "#%s", (int)dl,
                     path, hex);
    }
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    return arena_dup(rs, buf, (size_t)n);
}

/* mkdir -p for the target. */
static int make_target(const char *target)
{
    char buf[PATH_MAX];
    size_t n = strlen(target), i;
    struct stat st;

    if (n == 0 || n >= sizeof(buf))
        return CAIRN_EINVAL;
    memcpy(buf, target, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return cairn_err_from_errno(errno);
        buf[i] = i < n ? '/' : '\0';
    }
    if (stat(target, &st) != 0)
        return cairn_err_from_errno(errno);
    if (!S_ISDIR(st.st_mode))
        return CAIRN_EINVAL;
    return 0;
}

static int name_ok(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int plan_tree(struct rs *rs, const uint8_t id[CAIRN_ID_LEN], char *fp,
                     size_t fl, char *sp, size_t sl, int fresh);

static int plan_items(struct rs *rs, size_t fi);

/* A file with more than one link: the first of its dev/ino planned is
 * restored, the others become hard links to it (rs->others). */
static int plan_link(struct rs *rs, size_t fi)
{
    struct rs_file *f = &rs->files[fi];
    const struct cairn_tree_entry *p;
    size_t mask = rs->links_cap - 1, h, k;
    struct rs_node *node;
    int rc;

    if (rs->links_cap == 0)
        return 0;
    h = (size_t)((f->e->dev * 0x9e3779b97f4a7c15u) ^
                 (f->e->ino * 0xc2b2ae3d27d4eb4fu));
    for (h ^= h >> 29;; h++) {
        if ((k = rs->links[h & mask]) == 0) {
            rs->links[h & mask] = fi + 1;
            return 0;
        }
        p = rs->files[k - 1].e;
        if (p->dev == f->e->dev && p->ino == f->e->ino)
            break;
    }
    f->primary = (long)(k - 1);
    if ((rc = push(&rs->others, &rs->nothers, &rs->others_cap,
                   sizeof(*rs->others))) != 0)
        return rc;
    node = &rs->others[rs->nothers++];
    node->e = f->e;
    node->path = f->path;
    node->spath = f->spath;
    node->file = (long)fi;
    node->done = 0;
    return 0;
}

static int plan_file(struct rs *rs, const struct cairn_tree_entry *e,
                     char *path, char *spath, size_t dl, int fresh)
{
    struct cairn_blob_loc loc;
    struct rs_file *f;
    struct rs_chunk *c;
    uint64_t off = 0;
    uint32_t i;
    int rc, place = RS_NEW, absent = 1;

    /* The count before planning saw this entry: never more than that. */
    if (rs->nfiles == rs->files_cap ||
        e->ncontent > rs->chunks_cap - rs->nchunks)
        return CAIRN_ECORRUPT;
    for (i = 0; i < e->ncontent; i++) {
        rc = cairn_repo_lookup(rs->repo, e->content[i], &loc);
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rc != 0 || loc.type != CAIRN_BLOB_DATA ||
            loc.raw_length > CAIRN_BLOB_MAX) {
            rs_damaged(rs, spath, rc ? rc : CAIRN_ECORRUPT,
                       "a content blob is missing from the index");
            return 0;
        }
        c = &rs->chunks[rs->nchunks + i];
        memcpy(c->pack, loc.pack, CAIRN_ID_LEN);
        c->id = e->content[i];
        c->offset = loc.offset;
        c->length = loc.length;
        c->raw_length = loc.raw_length;
        c->file_off = off;
        off += loc.raw_length;
    }
    if (!fresh) {
        place = place_entry(rs, e, off, &path, dl, &absent);
        if (place < 0)
            return place;
        if (place == RS_FAIL)
            return 0;
    }
    f = &rs->files[rs->nfiles];
    memset(f, 0, sizeof(*f));
    f->e = e;
    f->path = path;
    f->spath = spath;
    f->chunk0 = rs->nchunks;
    f->nchunks = e->ncontent;
    f->length = off;
    f->primary = -1;
    f->place = place;
    f->absent = absent;
    rs->nchunks += e->ncontent;
    rs->nfiles++;
    if (e->nlink > 1 && (rc = plan_link(rs, rs->nfiles - 1)) != 0)
        return rc;
    return plan_items(rs, rs->nfiles - 1);
}

/*
 * Plan one entry whose parent's paths are fp[0..fl) (on disk) and
 * sp[0..sl) (in the snapshot).  The buffers hold PATH_MAX bytes.
 */
static int plan_entry(struct rs *rs, const struct cairn_tree_entry *e,
                      char *fp, size_t fl, char *sp, size_t sl, int fresh)
{
    size_t n = strlen(e->name);
    struct rs_node *node;
    char *path, *spath;
    int rc, made, place, absent;

    if (rs_cancelled(rs))
        return CAIRN_ECANCELED;
    if ((rc = atomic_load(&rs->fatal)) != 0)
        return rc; /* a worker stopped on it */
    if (fl + 1 + n >= PATH_MAX || sl + 1 + n >= PATH_MAX) {
        rs_file_error(rs, fp, ENAMETOOLONG, "path too long; not restored");
        return 0;
    }
    fp[fl] = '/';
    memcpy(fp + fl + 1, e->name, n + 1);
    sp[sl] = '/';
    memcpy(sp + sl + 1, e->name, n + 1);
    if (!name_ok(e->name)) {
        rs_event(rs, CAIRN_EV_PROBLEM, sp, NULL, CAIRN_ECORRUPT, 0,
                 "invalid name in tree; not restored");
        atomic_fetch_add(&rs->errors, 1);
        return 0;
    }
    if ((path = arena_dup(rs, fp, fl + 1 + n)) == NULL ||
        (spath = arena_dup(rs, sp, sl + 1 + n)) == NULL)
        return CAIRN_ENOMEM;

    switch (e->type) {
    case CAIRN_NODE_FILE:
        return plan_file(rs, e, path, spath, fl, fresh);
    case CAIRN_NODE_DIR:
        made = make_dir(path);
        if (made < 0 && errno == EEXIST) {
            /* Something other than a directory holds the name. */
            if (rs->o->existing == CAIRN_RESTORE_SKIP) {
                keep_existing(rs, path);
                return 0;
            }
            if (rs->o->existing == CAIRN_RESTORE_RENAME) {
                size_t an = 0;
                int k;

                for (k = 1, made = -1; k < 100 && made < 0; k++) {
                    if ((an = alt_path(rs, fp, fl, e->name, k, 1,
                                       rs->scratch)) == 0)
                        break;
                    made = make_dir(rs->scratch);
                }
                if (made < 0) {
                    rs_file_error(rs, path, EEXIST,
                                  "something else is there and no other "
                                  "name is free; not restored");
                    return 0;
                }
                /* Its entries go under the new name. */
                memcpy(fp, rs->scratch, an + 1);
                n = an - fl - 1;
                if ((path = arena_dup(rs, fp, an)) == NULL)
                    return CAIRN_ENOMEM;
                rs->res->renamed++;
            } else if (unlink(path) == 0) {
                made = make_dir(path);
            }
        }
        if (made < 0) {
            rs_file_error(rs, path, errno, "cannot create directory");
            return 0;
        }
        if ((rc = push(&rs->dirs, &rs->ndirs, &rs->dirs_cap,
                       sizeof(*rs->dirs))) != 0)
            return rc;
        node = &rs->dirs[rs->ndirs++];
        node->e = e;
        node->path = path;
        node->spath = spath;
        node->file = -1;
        node->done = 0;
        if (!e->has_subtree)
            return 0;
        return plan_tree(rs, e->subtree, fp, fl + 1 + n, sp,
                         sl + 1 + strlen(e->name), made == 1);
    default:
        place = RS_NEW;
        if (!fresh && (place = place_entry(rs, e, 0, &path, fl, &absent)) < 0)
            return place;
        if (place == RS_FAIL || place == RS_KEEP)
            return 0;
        if ((rc = push(&rs->others, &rs->nothers, &rs->others_cap,
                       sizeof(*rs->others))) != 0)
            return rc;
        node = &rs->others[rs->nothers++];
        node->e = e;
        node->path = path;
        node->spath = spath;
        node->file = -1;
        node->done = place == RS_DONE;
        return 0;
    }
}

static int plan_tree(struct rs *rs, const uint8_t id[CAIRN_ID_LEN], char *fp,
                     size_t fl, char *sp, size_t sl, int fresh)
{
    struct cairn_tree *t;
    uint32_t i;
    int rc;

    if (!fresh)
        remove_tmps(fp);
    if ((rc = rs_tree_get(rs, id, &t)) != 0) {
        /* The whole directory's listing is lost (count_tree read it). */
        rs_damaged(rs, sl ? sp : "/", rc,
                   "the directory's listing cannot be read; its "
                   "contents are not restored");
        return 0;
    }
    for (i = 0; i < t->nentries; i++) {
        if ((rc = plan_entry(rs, &t->entries[i], fp, fl, sp, sl, fresh)))
            return rc;
        fp[fl] = '\0';
        sp[sl] = '\0';
    }
    return 0;
}

/*
 * Find subpath in the snapshot.  *out_e is the entry (NULL for the root);
 * its snapshot path is left in sp, whose first *out_parent bytes are the
 * parent's path.
 */
static int resolve(struct rs *rs, struct cairn_blob_codec *codec,
                   const struct cairn_snapshot *s, const char *subpath,
                   const struct cairn_tree_entry **out_e, char *sp,
                   size_t *out_parent)
{
    const struct cairn_tree_entry *e = NULL;
    const char *p = subpath ? subpath : "", *q;
    uint8_t id[CAIRN_ID_LEN];
    struct cairn_tree *t;
    char name[NAME_MAX + 1];
    size_t n, sl = 0, parent = 0;
    int rc;

    memcpy(id, s->root, CAIRN_ID_LEN);
    sp[0] = '\0';
    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        for (q = p; *q != '\0' && *q != '/'; q++)
            ;
        n = (size_t)(q - p);
        if (n > NAME_MAX || sl + 1 + n >= PATH_MAX)
            return CAIRN_ENOENT;
        memcpy(name, p, n);
        name[n] = '\0';
        if (e != NULL) {
            if (e->type != CAIRN_NODE_DIR || !e->has_subtree)
                return CAIRN_ENOENT;
            memcpy(id, e->subtree, CAIRN_ID_LEN);
        }
        if ((rc = cairn_repo_read_tree(rs->repo, codec, id, &t)) != 0)
            return rc;
        if ((rc = push(&rs->trees, &rs->ntrees, &rs->trees_cap,
                       sizeof(*rs->trees))) != 0) {
            cairn_tree_free(t);
            return rc;
        }
        rs->trees[rs->ntrees++] = t;
        if ((e = cairn_tree_find(t, name)) == NULL)
            return CAIRN_ENOENT;
        parent = sl;
        sp[sl] = '/';
        memcpy(sp + sl + 1, name, n + 1);
        sl += 1 + n;
        p = q;
    }
    *out_e = e;
    *out_parent = parent;
    return 0;
}

/*
 * Group the items planned since the last call into units -- runs of whole
 * small files whose blobs one worker fetches together (UNIT_BYTES stored,
 * UNIT_FILES files at most), every other item alone -- and hand each
 * complete unit to the workers.  last: planning is over; the open unit is
 * complete too.
 */
static void close_unit(struct rs *rs, size_t i1)
{
    rs->units[rs->nunits].i0 = rs->unit_i0;
    rs->units[rs->nunits].i1 = i1;
    rs->nunits++;
    rs_pool_publish(rs, rs->unit_cost);
    rs->unit_i0 = i1;
    rs->unit_acc = 0;
    rs->unit_cost = 0;
}

static void plan_units(struct rs *rs, int last)
{
    const struct rs_item *it;
    uint64_t len, raw;
    size_t k;

    for (; rs->unit_scan < rs->nitems; rs->unit_scan++) {
        it = &rs->items[rs->unit_scan];
        for (len = 0, raw = 0, k = it->c0; k < it->c1; k++) {
            len += rs->chunks[k].length;
            raw += rs->chunks[k].raw_length;
        }
        if (rs->files[it->f].split || len > UNIT_BYTES / 4) {
            if (rs->unit_i0 < rs->unit_scan)
                close_unit(rs, rs->unit_scan);
            rs->unit_cost = COST_FILE + raw;
            close_unit(rs, rs->unit_scan + 1); /* alone */
            continue;
        }
        if (rs->unit_scan - rs->unit_i0 == UNIT_FILES ||
            rs->unit_acc + len > UNIT_BYTES)
            close_unit(rs, rs->unit_scan);
        rs->unit_acc += len;
        rs->unit_cost += COST_FILE + raw;
    }
    if (last && rs->unit_i0 < rs->nitems)
        close_unit(rs, rs->nitems);
}

/* Cut file fi into work items (a big file into pieces, created here)
 * and group them into units. */
static int plan_items(struct rs *rs, size_t fi)
{
    struct rs_file *f = &rs->files[fi];
    size_t c, c0;
    uint64_t acc;
    int fd;

    if (f->primary >= 0 || f->place == RS_KEEP)
        return 0;
    if (f->place == RS_DONE) {
        rs->res->skipped_files++;
        rs->res->skipped_bytes += f->length;
        return 0;
    }
    if ((f->tmp = tmp_name(rs, f->path)) == NULL) {
        rs_file_error(rs, f->path, ENAMETOOLONG, "path too long");
        atomic_store(&f->failed, 1);
        return 0;
    }
    f->split = f->length > SPLIT_MIN && f->nchunks > 1;
    if (f->split) {
        fd = open(f->tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC |
                              O_NOFOLLOW, 0600);
        if (fd < 0) {
            rs_file_error(rs, f->path, errno, "cannot create");
            atomic_store(&f->failed, 1);
            return 0;
        }
        if (ftruncate(fd, (off_t)f->length) != 0) {
            rs_file_error(rs, f->path, errno, "cannot set length");
            atomic_store(&f->failed, 1);
            close(fd);
            unlink(f->tmp);
            return 0;
        }
        close(fd);
    }
    atomic_fetch_add(&rs->files_total, 1);
    atomic_fetch_add(&rs->bytes_total, f->length);
    c0 = f->chunk0;
    do {
        acc = 0;
        c = c0;
        if (f->split) {
            while (c < f->chunk0 + f->nchunks && acc < PART_LEN)
                acc += rs->chunks[c++].raw_length;
        } else {
            c = f->chunk0 + f->nchunks;
        }
        /* items_cap is files + chunks: at most one item per chunk, and
         * one for an empty file. */
        if (rs->nitems == rs->items_cap)
            return CAIRN_ECORRUPT;
        rs->items[rs->nitems].f = fi;
        rs->items[rs->nitems].c0 = c0;
        rs->items[rs->nitems].c1 = c;
        rs->nitems++;
        atomic_fetch_add(&f->parts_left, 1);
        c0 = c;
    } while (c0 < f->chunk0 + f->nchunks);
    plan_units(rs, 0);
    return 0;
}

/* What planning below the tree id can produce, counted beforehand (an
 * upper bound: planning may leave out what it cannot restore). */
struct rs_count {
    size_t files, chunks, links;
    uint64_t cost;
};

static int count_tree(struct rs *rs, struct cairn_blob_codec *codec,
                      const uint8_t id[CAIRN_ID_LEN], struct rs_count *n);

static int count_entry(struct rs *rs, struct cairn_blob_codec *codec,
                       const struct cairn_tree_entry *e, struct rs_count *n)
{
    if (e->type == CAIRN_NODE_DIR)
        return e->has_subtree ? count_tree(rs, codec, e->subtree, n) : 0;
    if (e->type != CAIRN_NODE_FILE)
        return 0;
    n->files++;
    n->chunks += e->ncontent;
    n->links += e->nlink > 1;
    n->cost += COST_FILE + e->size;
    return 0;
}

/* A tree not read ahead is read here (the read-ahead leaves out what it
 * cannot read) and kept, or why it cannot be read, for planning. */
static int count_tree(struct rs *rs, struct cairn_blob_codec *codec,
                      const uint8_t id[CAIRN_ID_LEN], struct rs_count *n)
{
    struct cairn_tree *t;
    uint32_t i;
    int rc;

    if (rs_cancelled(rs))
        return CAIRN_ECANCELED;
    if ((rc = rs_tree_get(rs, id, &t)) == CAIRN_ENOENT) {
        rc = cairn_repo_read_tree(rs->repo, codec, id, &t);
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rs_tree_keep(rs, id, rc == 0 ? t : NULL, rc) != 0) {
            if (rc == 0)
                cairn_tree_free(t);
            return CAIRN_ENOMEM;
        }
    }
    if (rc != 0)
        return 0; /* planning reports it */
    for (i = 0; i < t->nentries; i++)
        if ((rc = count_entry(rs, codec, &t->entries[i], n)) != 0)
            return rc;
    return 0;
}

/* Room for everything the count allows; the arrays never move after. */
static int plan_room(struct rs *rs, const struct rs_count *n)
{
    size_t cap;

    rs->files_cap = n->files;
    rs->chunks_cap = n->chunks;
    if (n->files > SIZE_MAX - n->chunks)
        return CAIRN_ENOMEM;
    rs->items_cap = rs->units_cap = n->files + n->chunks;
    if ((rs->files = calloc(n->files + 1, sizeof(*rs->files))) == NULL ||
        (rs->chunks = calloc(n->chunks + 1, sizeof(*rs->chunks))) == NULL ||
        (rs->items = calloc(rs->items_cap + 1, sizeof(*rs->items))) ==
            NULL ||
        (rs->units = calloc(rs->units_cap + 1, sizeof(*rs->units))) == NULL)
        return CAIRN_ENOMEM;
    if (n->links > 0) {
        for (cap = 16; cap / 2 < n->links; cap *= 2)
            if (cap > SIZE_MAX / 4 / sizeof(*rs->links))
                return CAIRN_ENOMEM;
        if ((rs->links = calloc(cap, sizeof(*rs->links))) == NULL)
            return CAIRN_ENOMEM;
        rs->links_cap = cap;
    }
    return 0;
}

static void restore_other(struct rs *rs, const struct rs_node *nd)
{
    const struct cairn_tree_entry *e = nd->e;
    const struct rs_file *pf, *f;
    struct stat sa, sb;
    mode_t m;
    int rc;

    if (nd->done) {
        /* There already, from an earlier run. */
        if (e->type == CAIRN_NODE_SYMLINK)
            rs->res->links++;
        else
            rs->res->specials++;
        return;
    }
    switch (e->type) {
    case CAIRN_NODE_FILE: /* a hard link */
        f = &rs->files[nd->file];
        pf = &rs->files[f->primary];
        if (f->place == RS_KEEP)
            return; /* counted already */
        if (pf->place == RS_KEEP) {
            keep_existing(rs, nd->path);
            return;
        }
        if (f->place == RS_DONE && stat(pf->path, &sa) == 0 &&
            lstat(nd->path, &sb) == 0 && sa.st_ino == sb.st_ino &&
            sa.st_dev == sb.st_dev) {
            rs->res->skipped_files++;
            return;
        }
        if (atomic_load(&pf->damaged)) {
            rs_damaged(rs, nd->spath, CAIRN_ECORRUPT,
                       "hard link to a file whose content is damaged");
            return;
        }
        if (atomic_load(&pf->failed) || atomic_load(&pf->parts_left)) {
            rs_file_error(rs, nd->path, 0, "hard link target not restored");
            return;
        }
        rc = link(pf->path, nd->path);
        if (rc != 0 && errno == EEXIST && unlink(nd->path) == 0)
            rc = link(pf->path, nd->path);
        if (rc != 0) {
            rs_file_error(rs, nd->path, errno, "cannot create hard link");
            return;
        }
        rs->res->files++;
        return;
    case CAIRN_NODE_SYMLINK:
        rc = symlink(e->target, nd->path);
        if (rc != 0 && errno == EEXIST && unlink(nd->path) == 0)
            rc = symlink(e->target, nd->path);
        if (rc != 0) {
            rs_file_error(rs, nd->path, errno, "cannot create symlink");
            return;
        }
        path_meta(rs, nd->path, e);
        rs->res->links++;
        return;
    case CAIRN_NODE_FIFO:
    case CAIRN_NODE_SOCK:
    case CAIRN_NODE_CHR:
    case CAIRN_NODE_BLK:
        m = e->type == CAIRN_NODE_FIFO   ? S_IFIFO
            : e->type == CAIRN_NODE_SOCK ? S_IFSOCK
            : e->type == CAIRN_NODE_CHR  ? S_IFCHR
                                         : S_IFBLK;
        if ((m == S_IFCHR || m == S_IFBLK) && !rs->is_root) {
            rs_event(rs, CAIRN_EV_INFO, nd->path, NULL, CAIRN_EPERM, EPERM,
                     "device node skipped: only root can create it");
            return;
        }
        rc = mknod(nd->path, m | 0600, (dev_t)e->rdev);
        if (rc != 0 && errno == EEXIST && unlink(nd->path) == 0)
            rc = mknod(nd->path, m | 0600, (dev_t)e->rdev);
        if (rc != 0) {
            rs_file_error(rs, nd->path, errno, "cannot create special file");
            return;
        }
        path_meta(rs, nd->path, e);
        rs->res->specials++;
        return;
    default:
        rs_event(rs, CAIRN_EV_PROBLEM, nd->spath, NULL, CAIRN_ECORRUPT, 0,
                 "unknown entry type; not restored");
        atomic_fetch_add(&rs->errors, 1);
        return;
    }
}

/* Remove the pieces of big files left unfinished by a fatal error. */
static void remove_unfinished(struct rs *rs)
{
    size_t i;

    for (i = 0; i < rs->nfiles; i++)
        if (rs->files[i].split && atomic_load(&rs->files[i].parts_left) > 0)
            unlink(rs->files[i].tmp);
}

/*
 * Restore snapshot s (or o->subpath in it) into o->target.  See
 * cairn/restore.h.  Entries that could not be written (permissions, a
 * full disk) are reported (CAIRN_EV_FILE_ERROR) and counted in errors;
 * the result is then CAIRN_EIO unless some content was damaged
 * (CAIRN_ECORRUPT takes precedence).  A damaged file is removed, never
 * left with wrong content.  The target directory's own metadata is not
 * changed.  Device nodes are skipped (CAIRN_EV_INFO) unless running as
 * root.  Counting: files = regular files including extra hard links,
 * links = symlinks, specials = fifos, sockets, devices.  Thread safe with
 * respect to r (readers only); events are serialised.
 */
/* The umask, from /proc (reading it with umask() would change it for a
 * moment under every other thread); -1 when unknown. */
static int process_umask(void)
{
    char line[128];
    unsigned m;
    int found = -1;
    FILE *f;

    if ((f = fopen("/proc/self/status", "re")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "Umask: %o", &m) == 1) {
            found = (int)(m & 0777);
            break;
        }
    fclose(f);
    return found;
}

int cairn_restore(struct cairn_repo *r, const struct cairn_snapshot *s,
                  const struct cairn_restore_opts *o,
                  struct cairn_restore_result *out)
{
    struct cairn_blob_codec *codec;
    const struct cairn_tree_entry *top;
    struct cairn_restore_result res;
    struct rs_count cnt;
    struct rs rs;
    char *fp, *sp;
    size_t fl, sl, i;
    struct tm tm;
    time_t ts;
    long ncpu;
    int rc, wrc;

    memset(&res, 0, sizeof(res));
    memset(&rs, 0, sizeof(rs));
    if (r == NULL || s == NULL || o == NULL || o->target == NULL ||
        o->target[0] == '\0' || o->existing < CAIRN_RESTORE_OVERWRITE ||
        o->existing > CAIRN_RESTORE_SKIP) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    rs.repo = r;
    rs.store = cairn_repo_store(r);
    rs.o = o;
    rs.res = &res;
    rs.is_root = geteuid() == 0;
    rs.euid = geteuid();
    rs.egid = getegid();
    rs.umask = process_umask();
    rs.t0 = rs_now();
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    rs.nthreads = o->threads > 0 ? o->threads : (ncpu > 0 ? (int)ncpu : 1);
    if (rs.nthreads > 256)
        rs.nthreads = 256;
    atomic_init(&rs.fatal, 0);
    atomic_init(&rs.files_done, 0);
    atomic_init(&rs.bytes_done, 0);
    atomic_init(&rs.errors, 0);
    atomic_init(&rs.no_tmpfile, 0);
    atomic_init(&rs.no_empty_link, 0);
    atomic_init(&rs.damaged, 0);
    atomic_init(&rs.files_total, 0);
    atomic_init(&rs.bytes_total, 0);
    atomic_init(&rs.planned, 0);
    if (pthread_mutex_init(&rs.ev_lock, NULL) != 0) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((fp = malloc(3 * PATH_MAX)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    sp = fp + PATH_MAX;
    rs.scratch = sp + PATH_MAX;
    ts = (time_t)(s->time_ns / 1000000000);
    gmtime_r(&ts, &tm);
    strftime(rs.tag, sizeof(rs.tag), "%Y-%m-%d %H%M%S", &tm);
    if ((codec = cairn_blob_codec_new(cairn_repo_keys(r), 0)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    if ((rc = make_target(o->target)) != 0)
        goto err3;
    fl = strlen(o->target);
    while (fl > 1 && o->target[fl - 1] == '/')
        fl--;
    if (fl == 1 && o->target[0] == '/')
        fl = 0; /* the root: children are "/name" */
    memcpy(fp, o->target, fl);
    fp[fl] = '\0';

    /* 1. Plan, while the workers write what is planned (2). */
    if ((rc = resolve(&rs, codec, s, o->subpath, &top, sp, &sl)) != 0)
        goto err4;
    /* Every tree below the start, read ahead in few requests, and what
     * planning them can produce. */
    memset(&cnt, 0, sizeof(cnt));
    if (top == NULL) {
        if ((rc = rs_prefetch_trees(&rs, s->root)) == 0)
            rc = count_tree(&rs, codec, s->root, &cnt);
    } else if (top->type == CAIRN_NODE_DIR && top->has_subtree) {
        if ((rc = rs_prefetch_trees(&rs, top->subtree)) == 0)
            rc = count_tree(&rs, codec, top->subtree, &cnt);
    } else {
        rc = count_entry(&rs, codec, top, &cnt);
    }
    if (rc != 0 || (rc = plan_room(&rs, &cnt)) != 0 ||
        (rc = rs_pool_start(&rs, cnt.cost)) != 0)
        goto err4;
    if (top == NULL)
        rc = plan_tree(&rs, s->root, fp, fl, sp, 0, 0);
    else if (top->type == CAIRN_NODE_DIR)
        rc = top->has_subtree ? plan_tree(&rs, top->subtree, fp, fl, sp,
                                          strlen(sp), 0)
                              : 0;
    else {
        sp[sl] = '\0';
        rc = plan_entry(&rs, top, fp, fl, sp, sl, 0);
    }
    if (rc == 0) {
        plan_units(&rs, 1);
        atomic_store(&rs.planned, 1);
        res.dirs = rs.ndirs;
        rs_progress(&rs, 1);
    }

    /* 2. Contents: the planning thread helps once it is done. */
    wrc = rs_pool_finish(&rs, rc);
    if (rc != 0 || wrc != 0) {
        remove_unfinished(&rs);
        if (rc == 0)
            rc = wrc;
        goto err4;
    }
    res.files = atomic_load(&rs.files_done);

    /* 3. Links, special files, then directories deepest first. */
    for (i = 0; i < rs.nothers; i++) {
        if (rs_cancelled(&rs)) {
            rc = CAIRN_ECANCELED;
            goto err4;
        }
        restore_other(&rs, &rs.others[i]);
    }
    for (i = rs.ndirs; i > 0; i--)
        path_meta(&rs, rs.dirs[i - 1].path, rs.dirs[i - 1].e);
    rs_progress(&rs, 1);

    /* Damage first: it is what the caller must hear about. */
    rc = atomic_load(&rs.damaged) ? CAIRN_ECORRUPT
         : atomic_load(&rs.errors) ? CAIRN_EIO
                                   : 0;

err4:
    res.bytes = atomic_load(&rs.bytes_done);
    res.errors = atomic_load(&rs.errors);
    res.damaged_files = atomic_load(&rs.damaged);
    for (i = 0; i < rs.ntrees; i++)
        cairn_tree_free(rs.trees[i]);
    free(rs.trees);
    rs_trees_free(&rs);
    free(rs.files);
    free(rs.chunks);
    free(rs.items);
    free(rs.units);
    free(rs.links);
    free(rs.dirs);
    free(rs.others);
    arena_free(rs.arena);
err3:
    cairn_blob_codec_free(codec);
err2:
    free(fp);
err1:
    pthread_mutex_destroy(&rs.ev_lock);
err0:
    res.elapsed_ns = rs.t0 ? rs_now() - rs.t0 : 0;
    if (out != NULL)
        *out = res;
    return rc;
}
