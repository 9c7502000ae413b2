/*
 * watch_inotify.c - the watcher on inotify: one watch per directory.
 *
 * Each watch is a node {wd, parent's wd, name}; a root's node has parent
 * -1 and its full path as name.  A path is rebuilt by following parents,
 * so a directory moved inside the selection is one node update, and the
 * memory is one small node per watched directory, nothing per file.
 * Nodes live in an open-addressing table keyed by wd (wds are never
 * reused soon: the kernel hands them out cyclically), which shrinks as
 * watches go.
 *
 * Races: a new directory is watched first and listed second, so whatever
 * was made in it before the watch is seen by the listing and whatever
 * comes after by the watch.  A directory moved out is only known to have
 * left once the read is over without a matching IN_MOVED_TO; its watches
 * are removed then.  If that guess is wrong (the IN_MOVED_TO comes in a
 * later read), the directory is simply watched again as if moved in.
 *
 * Losses: on IN_Q_OVERFLOW, or when the caller stopped a read, the whole
 * selection is walked again: every directory is (re)watched and marked,
 * and watches not marked are dropped, so the watch tree is exact again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/err.h"
#include "watch_int.h"

#define DIR_MASK                                                              \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY |        \
     IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF |             \
     IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define CHANGE_MASK (IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE)
#define READ_BUF 16384
#define READS_PER_CALL 16
#define MAX_DEPTH 4096 /* deeper chains are taken as corrupt */
#define TAB_MIN 64

struct inode_node {
    int wd;
    int parent; /* -1: a root */
    uint32_t gen; /* last walk that saw it */
    char name[]; /* a root: its full path */
};

/* A directory that moved away; gone from the selection unless an
 * IN_MOVED_TO with the same cookie follows. */
struct pending_move {
    uint32_t cookie;
    int wd;
    int parent;
    char *name;
};

/* What watch_dir found. */
enum {
    DIR_KNOWN = 0, /* watched already, and seen by this walk */
    DIR_NEW = 1,   /* a new watch */
    DIR_STALE = 2, /* watched already, first time seen by this walk */
};

struct inot {
    int fd;
    struct inode_node **slot; /* cap slots, NULL when empty */
    size_t cap, n;
    uint32_t gen;
    struct pending_move *mv;
    size_t nmv, capmv;
    int *q; /* walk queue, and scratch list of wds */
    size_t nq, capq;
    const struct inode_node **chain; /* node_path scratch */
    size_t capchain;
    struct watch_path tmp; /* a path kept across a walk */
    alignas(struct inotify_event) char buf[READ_BUF];
};

static size_t slot_of(const struct inot *in, int wd)
{
    return ((uint32_t)wd * 2654435761u) & (in->cap - 1);
}

static size_t tab_find(const struct inot *in, int wd)
{
    size_t i;

    for (i = slot_of(in, wd); in->slot[i] != NULL; i = (i + 1) & (in->cap - 1))
        if (in->slot[i]->wd == wd)
            return i;
    return SIZE_MAX;
}

static struct inode_node *tab_get(const struct inot *in, int wd)
{
    size_t i = tab_find(in, wd);

    return i == SIZE_MAX ? NULL : in->slot[i];
}

static int tab_resize(struct inot *in, size_t ncap)
{
    struct inode_node **old = in->slot;
    size_t ocap = in->cap, i, j;

    if ((in->slot = calloc(ncap, sizeof(*in->slot))) == NULL) {
        in->slot = old;
        return CAIRN_ENOMEM;
    }
    in->cap = ncap;
    for (i = 0; i < ocap; i++) {
        if (old[i] == NULL)
            continue;
        for (j = slot_of(in, old[i]->wd); in->slot[j] != NULL;
             j = (j + 1) & (ncap - 1))
            ;
        in->slot[j] = old[i];
    }
    free(old);
    return 0;
}

/* Room for one more node, so that inserting cannot fail. */
static int tab_reserve(struct inot *in)
{
    if ((in->n + 1) * 4 <= in->cap * 3)
        return 0;
    return tab_resize(in, in->cap * 2);
}

/* Insert nd (its wd not in the table yet; room reserved). */
static void tab_put(struct inot *in, struct inode_node *nd)
{
    size_t i;

    for (i = slot_of(in, nd->wd); in->slot[i] != NULL;
         i = (i + 1) & (in->cap - 1))
        ;
    in->slot[i] = nd;
    in->n++;
}

/* Remove and free the node of wd, if any (backward-shift deletion). */
static void tab_del(struct inot *in, int wd)
{
    size_t i = tab_find(in, wd), j, k, mask = in->cap - 1;

    if (i == SIZE_MAX)
        return;
    free(in->slot[i]);
    in->slot[i] = NULL;
    in->n--;
    for (j = (i + 1) & mask; in->slot[j] != NULL; j = (j + 1) & mask) {
        k = slot_of(in, in->slot[j]->wd);
        /* Move slot j back to i unless its home k lies in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        in->slot[i] = in->slot[j];
        in->slot[j] = NULL;
        i = j;
    }
    if (in->cap > TAB_MIN && in->n * 8 < in->cap)
        (void)tab_resize(in, in->cap / 2); /* if it fails, stay big */
}

static int q_push(struct inot *in, int wd)
{
    int *nq;

    if (in->nq == in->capq) {
        size_t ncap = in->capq ? in->capq * 2 : 64;
        if ((nq = realloc(in->q, ncap * sizeof(*nq))) == NULL)
            return CAIRN_ENOMEM;
        in->q = nq;
        in->capq = ncap;
    }
    in->q[in->nq++] = wd;
    return 0;
}

/* Build nd's path in w->path.  CAIRN_ENOENT if its chain of parents is
 * broken (a stale node), CAIRN_ERANGE if too long. */
static int node_path(struct agent_watch *w, struct inot *in,
                     const struct inode_node *nd)
{
    const struct inode_node **nc;
    size_t depth = 0, ncap;
    int r;

    for (;;) {
        if (depth == in->capchain) {
            if (depth >= MAX_DEPTH)
                return CAIRN_ENOENT;
            ncap = in->capchain ? in->capchain * 2 : 32;
            if ((nc = realloc(in->chain, ncap * sizeof(*nc))) == NULL)
                return CAIRN_ENOMEM;
            in->chain = nc;
            in->capchain = ncap;
        }
        in->chain[depth++] = nd;
        if (nd->parent == -1)
            break;
        if ((nd = tab_get(in, nd->parent)) == NULL)
            return CAIRN_ENOENT;
    }
    nd = in->chain[--depth];
    if ((r = watch_path_set(&w->path, nd->name, strlen(nd->name))) != 0)
        return r;
    while (depth > 0) {
        nd = in->chain[--depth];
        if ((r = watch_path_append(&w->path, nd->name, strlen(nd->name))) != 0)
            return r;
    }
    return 0;
}

/* Is nd at or below the node of top? */
static int node_under(const struct inot *in, const struct inode_node *nd,
                      int top)
{
    size_t depth;

    for (depth = 0; nd != NULL && depth < MAX_DEPTH; depth++) {
        if (nd->wd == top)
            return 1;
        if (nd->parent == -1)
            return 0;
        nd = tab_get(in, nd->parent);
    }
    return 0;
}

/* Stop watching top and every directory below it. */
static void remove_subtree(struct inot *in, int top)
{
    size_t i;

    in->nq = 0;
    for (i = 0; i < in->cap; i++)
        if (in->slot[i] != NULL && node_under(in, in->slot[i], top) &&
            q_push(in, in->slot[i]->wd) != 0)
            break; /* out of memory: the rest stay, and are harmless */
    for (i = 0; i < in->nq; i++) {
        (void)inotify_rm_watch(in->fd, in->q[i]);
        tab_del(in, in->q[i]);
    }
    in->nq = 0;
}

/*
 * Watch the directory at path, a child called name of the node parent (or
 * a root: parent -1, name the path).  Returns 0 with *out_wd and
 * *out_state (DIR_*), a positive errno value if it cannot be watched
 * (ENOSPC: a watch limit), or CAIRN_ENOMEM.
 */
static int watch_dir(struct agent_watch *w, struct inot *in, const char *path,
                     int parent, const char *name, size_t namelen,
                     int *out_wd, int *out_state)
{
    struct inode_node *old, *nd;
    size_t i;
    int wd;

    if (tab_reserve(in) != 0)
        return CAIRN_ENOMEM;
    if ((wd = inotify_add_watch(in->fd, path, DIR_MASK)) < 0)
        return errno != 0 ? errno : EIO;
    old = tab_get(in, wd);
    if (old == NULL && w->max_watches != 0 && in->n >= w->max_watches) {
        (void)inotify_rm_watch(in->fd, wd);
        return ENOSPC;
    }
    *out_wd = wd;
    *out_state = old == NULL ? DIR_NEW
                             : (old->gen != in->gen ? DIR_STALE : DIR_KNOWN);
    if (old != NULL && old->parent == parent &&
        strncmp(old->name, name, namelen) == 0 && old->name[namelen] == '\0') {
        old->gen = in->gen;
        return 0;
    }
    /* New, or moved here: a node with this parent and name. */
    if ((nd = malloc(sizeof(*nd) + namelen + 1)) == NULL) {
        if (old == NULL)
            (void)inotify_rm_watch(in->fd, wd);
        return CAIRN_ENOMEM;
    }
    nd->wd = wd;
    nd->parent = parent;
    nd->gen = in->gen;
    memcpy(nd->name, name, namelen);
    nd->name[namelen] = '\0';
    if (old == NULL) {
        tab_put(in, nd);
    } else {
        i = tab_find(in, wd);
        free(in->slot[i]);
        in->slot[i] = nd;
    }
    return 0;
}

/* A subtree we cannot watch: list it for polling and ask for a rescan. */
static int unwatched(struct agent_watch *w, const char *path)
{
    int r;

    if ((r = watch_unwatched_add(w, path)) != 0)
        return r;
    return watch_report(w, path, AGENT_WATCH_RESCAN);
}

/*
 * Walk the tree below the (watched) node start breadth-first, watching
 * every directory not excluded.  Descends into directories new to the
 * table or not yet seen by this generation.  If report, every entry found
 * is reported CHANGED.  Returns 0, CAIRN_ENOMEM, or what a report
 * returned.
 */
static int walk(struct agent_watch *w, struct inot *in, int start, int report)
{
    struct inode_node *nd;
    struct dirent *de;
    struct stat st;
    size_t head, dirlen, nlen;
    DIR *d;
    int dfd, wd, cwd, state, isdir, r;

    in->nq = 0;
    if ((r = q_push(in, start)) != 0)
        goto err0;
    for (head = 0; head < in->nq; head++) {
        wd = in->q[head];
        if ((nd = tab_get(in, wd)) == NULL)
            continue;
        if ((r = node_path(w, in, nd)) == CAIRN_ENOMEM)
            goto err0;
        if (r != 0)
            continue;
        dfd = open(w->path.p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue; /* gone; its parent reports that */
            if ((r = unwatched(w, w->path.p)) != 0)
                goto err0;
            continue;
        }
        if ((d = fdopendir(dfd)) == NULL) {
            close(dfd);
            r = CAIRN_ENOMEM;
            goto err0;
        }
        dirlen = w->path.len;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' &&
                (de->d_name[1] == '\0' ||
                 (de->d_name[1] == '.' && de->d_name[2] == '\0')))
                continue;
            w->path.len = dirlen;
            w->path.p[dirlen] = '\0';
            nlen = strlen(de->d_name);
            if (watch_path_append(&w->path, de->d_name, nlen) != 0) {
                w->path.len = dirlen;
                w->path.p[dirlen] = '\0';
                if ((r = unwatched(w, w->path.p)) != 0)
                    goto err1;
                break;
            }
            if (de->d_type == DT_UNKNOWN)
                isdir = fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
                            0 &&
                        S_ISDIR(st.st_mode);
            else
                isdir = de->d_type == DT_DIR;
            if (isdir && watch_is_root(w, w->path.p))
                continue; /* watched as a root of its own */
            if (watch_is_excluded(w, w->path.p, isdir))
                continue;
            if (report &&
                (r = watch_report(w, w->path.p, AGENT_WATCH_CHANGED)) != 0)
                goto err1;
            if (!isdir)
                continue;
            r = watch_dir(w, in, w->path.p, wd, de->d_name, nlen, &cwd,
                          &state);
            if (r < 0)
                goto err1;
            if (r == ENOENT || r == ENOTDIR)
                continue;
            if (r > 0) {
                if ((r = unwatched(w, w->path.p)) != 0)
                    goto err1;
                continue;
            }
            if (state == DIR_NEW)
                watch_unwatched_drop(w, w->path.p);
            if (state != DIR_KNOWN && (r = q_push(in, cwd)) != 0)
                goto err1;
        }
        closedir(d);
    }
    in->nq = 0;
    return 0;

err1:
    closedir(d);
err0:
    in->nq = 0;
    return r;
}

/* Walk the whole selection again; drop watches of directories gone. */
static int inotify_resync(struct agent_watch *w)
{
    struct inot *in = w->be;
    size_t i;
    int wd, state, r;

    in->gen++;
    while (w->nunw > 0)
        free(w->unw[--w->nunw]);
    for (i = 0; i < w->nroots; i++) {
        r = watch_dir(w, in, w->roots[i], -1, w->roots[i], w->rootlen[i], &wd,
                      &state);
        if (r < 0)
            return r;
        if (r > 0) {
            if ((r = watch_unwatched_add(w, w->roots[i])) != 0)
                return r;
            continue;
        }
        if (state != DIR_KNOWN && (r = walk(w, in, wd, 0)) != 0)
            return r;
    }
    in->nq = 0;
    for (i = 0; i < in->cap; i++)
        if (in->slot[i] != NULL && in->slot[i]->gen != in->gen &&
            (r = q_push(in, in->slot[i]->wd)) != 0)
            return r;
    for (i = 0; i < in->nq; i++) {
        (void)inotify_rm_watch(in->fd, in->q[i]);
        tab_del(in, in->q[i]);
    }
    in->nq = 0;
    return 0;
}

/* A directory appeared at in->tmp (a child name of parent): created, or
 * moved in. */
static int dir_arrived(struct agent_watch *w, struct inot *in, int parent,
                       const char *name, size_t namelen, int moved)
{
    int wd, state, r;

    r = watch_dir(w, in, in->tmp.p, parent, name, namelen, &wd, &state);
    if (r < 0)
        return r;
    if (r == ENOENT || r == ENOTDIR)
        return 0; /* gone again; the IN_DELETE or IN_MOVED_FROM follows */
    if (r > 0)
        return unwatched(w, in->tmp.p);
    if (state == DIR_NEW)
        watch_unwatched_drop(w, in->tmp.p);
    r = watch_report(w, in->tmp.p,
                     moved ? AGENT_WATCH_RESCAN : AGENT_WATCH_CHANGED);
    if (r != 0)
        return r;
    /* A known directory moved within the selection keeps its watches. */
    if (state == DIR_NEW)
        return walk(w, in, wd, !moved);
    return 0;
}

static int move_add(struct inot *in, uint32_t cookie, int parent,
                    const char *name, size_t namelen)
{
    struct pending_move *nm;
    size_t i;
    char *s;

    for (i = 0; i < in->cap; i++) {
        struct inode_node *nd = in->slot[i];
        if (nd != NULL && nd->parent == parent &&
            strncmp(nd->name, name, namelen) == 0 &&
            nd->name[namelen] == '\0')
            break;
    }
    if (i == in->cap)
        return 0; /* not watched: nothing to undo */
    if (in->nmv == in->capmv) {
        size_t ncap = in->capmv ? in->capmv * 2 : 8;
        if ((nm = realloc(in->mv, ncap * sizeof(*nm))) == NULL)
            return CAIRN_ENOMEM;
        in->mv = nm;
        in->capmv = ncap;
    }
    if ((s = strndup(name, namelen)) == NULL)
        return CAIRN_ENOMEM;
    in->mv[in->nmv].cookie = cookie;
    in->mv[in->nmv].wd = in->slot[i]->wd;
    in->mv[in->nmv].parent = parent;
    in->mv[in->nmv].name = s;
    in->nmv++;
    return 0;
}

static void move_cancel(struct inot *in, uint32_t cookie)
{
    size_t i;

    for (i = 0; i < in->nmv; i++)
        if (in->mv[i].cookie == cookie) {
            free(in->mv[i].name);
            in->mv[i] = in->mv[--in->nmv];
            return;
        }
}

/* Directories moved away with no IN_MOVED_TO seen: unwatch them, unless
 * they were watched again somewhere else meanwhile. */
static void moves_finish(struct inot *in)
{
    struct inode_node *nd;
    size_t i;

    for (i = 0; i < in->nmv; i++) {
        nd = tab_get(in, in->mv[i].wd);
        if (nd != NULL && nd->parent == in->mv[i].parent &&
            strcmp(nd->name, in->mv[i].name) == 0)
            remove_subtree(in, nd->wd);
        free(in->mv[i].name);
    }
    in->nmv = 0;
}

/* One event; *overflow set on IN_Q_OVERFLOW. */
static int handle_event(struct agent_watch *w, struct inot *in,
                        const struct inotify_event *ev, int *overflow)
{
    struct inode_node *nd;
    size_t namelen, dirlen;
    uint32_t m = ev->mask;
    int isdir, wd = ev->wd, r;

    if (m & IN_Q_OVERFLOW) {
        *overflow = 1;
        return 0;
    }
    if ((nd = tab_get(in, wd)) == NULL)
        return 0; /* a watch already dropped */
    if (m & IN_IGNORED) {
        tab_del(in, wd);
        return 0;
    }
    if ((r = node_path(w, in, nd)) == CAIRN_ENOMEM)
        return r;
    if (r != 0)
        return 0; /* stale: its parent's events tell */
    namelen = strnlen(ev->name, ev->len);
    if (namelen == 0) {
        if (nd->parent == -1 && (m & (IN_DELETE_SELF | IN_MOVE_SELF))) {
            /* A root went: poll it from now on. */
            remove_subtree(in, wd);
            if ((r = watch_report(w, w->path.p, AGENT_WATCH_REMOVED)) != 0)
                return r;
            return watch_unwatched_add(w, w->path.p);
        }
        if (m & IN_UNMOUNT) {
            if (nd->parent == -1 &&
                (r = watch_unwatched_add(w, w->path.p)) != 0)
                return r;
            return watch_report(w, w->path.p, AGENT_WATCH_RESCAN);
        }
        if (m & CHANGE_MASK)
            return watch_report(w, w->path.p, AGENT_WATCH_CHANGED);
        return 0;
    }
    dirlen = w->path.len;
    if (watch_path_append(&w->path, ev->name, namelen) != 0) {
        w->path.len = dirlen;
        w->path.p[dirlen] = '\0';
        return watch_report(w, w->path.p, AGENT_WATCH_RESCAN);
    }
    isdir = (m & IN_ISDIR) != 0;
    if (watch_is_excluded(w, w->path.p, isdir))
        return 0;
    if (m & IN_MOVED_FROM) {
        if (isdir && (r = move_add(in, ev->cookie, wd, ev->name, namelen)) != 0)
            return r;
        return watch_report(w, w->path.p, AGENT_WATCH_REMOVED);
    }
    if (m & IN_DELETE)
        return watch_report(w, w->path.p, AGENT_WATCH_REMOVED);
    if (isdir && (m & (IN_MOVED_TO | IN_CREATE))) {
        if (m & IN_MOVED_TO)
            move_cancel(in, ev->cookie);
        if ((r = watch_path_set(&in->tmp, w->path.p, w->path.len)) != 0)
            return r;
        return dir_arrived(w, in, wd, ev->name, namelen,
                           (m & IN_MOVED_TO) != 0);
    }
    if (m & (CHANGE_MASK | IN_MOVED_TO))
        return watch_report(w, w->path.p, AGENT_WATCH_CHANGED);
    return 0;
}

static int inotify_read(struct agent_watch *w)
{
    struct inot *in = w->be;
    const struct inotify_event *ev;
    size_t off, n, k;
    ssize_t got;
    int overflow = 0, r = 0;

    for (k = 0; k < READS_PER_CALL; k++) {
        got = read(in->fd, in->buf, sizeof(in->buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            break;
        if (got <= 0) {
            r = got == 0 ? 0 : CAIRN_EIO;
            break;
        }
        n = (size_t)got;
        for (off = 0; n - off >= sizeof(*ev); off += sizeof(*ev) + ev->len) {
            ev = (const struct inotify_event *)(const void *)(in->buf + off);
            if (ev->len > n - off - sizeof(*ev)) {
                overflow = 1; /* cannot happen; if it does, rescan */
                break;
            }
            if ((r = handle_event(w, in, ev, &overflow)) != 0)
                goto out;
        }
        /* A short read means the queue was drained. */
        if (n + sizeof(*ev) + NAME_MAX + 1 <= sizeof(in->buf))
            break;
    }
out:
    if (r != 0 || overflow) {
        for (k = 0; k < in->nmv; k++)
            free(in->mv[k].name);
        in->nmv = 0;
    } else {
        moves_finish(in);
    }
    if (r == 0 && overflow) {
        if ((r = inotify_resync(w)) == 0)
            r = watch_report_roots(w);
    }
    return r;
}

static void inotify_free(struct agent_watch *w)
{
    struct inot *in = w->be;
    size_t i;

    if (in == NULL)
        return;
    if (in->fd >= 0)
        close(in->fd);
    for (i = 0; i < in->cap; i++)
        free(in->slot[i]);
    free(in->slot);
    for (i = 0; i < in->nmv; i++)
        free(in->mv[i].name);
    free(in->mv);
    free(in->q);
    free(in->chain);
    watch_path_free(&in->tmp);
    free(in);
    w->be = NULL;
}

/*
 * Watch again what the unwatched list holds, as far as the limit allows
 * now.  Each entry is a root or a directory whose parent is watched
 * (entries are the top of what could not be watched): its parent's watch
 * is found by adding it again (the kernel hands back the same descriptor
 * for a watched inode), then the entry is watched and walked as a new
 * directory would be.  What still does not fit goes back on the list.
 */
static int inotify_retry(struct agent_watch *w)
{
    struct inot *in = w->be;
    const char *name;
    size_t n, i, dl;
    char **todo;
    int pwd, wd, state, r = 0;

    if (w->nunw == 0)
        return 0;
    /* The list changes below: work on a copy. */
    n = w->nunw;
    if ((todo = calloc(n, sizeof(*todo))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < n; i++)
        if ((todo[i] = strdup(w->unw[i])) == NULL) {
            r = CAIRN_ENOMEM;
            goto out;
        }
    for (i = 0; i < n; i++) {
        if (watch_is_root(w, todo[i])) {
            pwd = -1;
            name = todo[i];
            dl = strlen(todo[i]);
        } else {
            name = strrchr(todo[i], '/');
            if (name == NULL || name == todo[i])
                continue;
            dl = (size_t)(name - todo[i]);
            if ((r = watch_path_set(&in->tmp, todo[i], dl)) != 0)
                goto out;
            pwd = inotify_add_watch(in->fd, in->tmp.p, DIR_MASK);
            if (pwd < 0)
                continue;
            if (tab_get(in, pwd) == NULL) {
                /* Its parent is not watched after all: leave it. */
                (void)inotify_rm_watch(in->fd, pwd);
                continue;
            }
            name++;
            dl = strlen(name);
        }
        r = watch_dir(w, in, todo[i], pwd, name, dl, &wd, &state);
        if (r < 0)
            goto out;
        if (r == ENOSPC) {
            r = 0;
            break; /* still at the limit: the rest wait too */
        }
        if (r > 0) {
            r = 0;
            continue;
        }
        watch_unwatched_drop(w, todo[i]);
        if (state != DIR_KNOWN && (r = walk(w, in, wd, 0)) != 0)
            goto out;
    }

out:
    for (i = 0; i < n; i++)
        free(todo[i]);
    free(todo);
    return r;
}

static const struct watch_ops inotify_ops = {
    .name = "inotify",
    .read = inotify_read,
    .resync = inotify_resync,
    .retry = inotify_retry,
    .free = inotify_free,
};

int watch_inotify_open(struct agent_watch *w)
{
    struct inot *in;
    int r;

    if ((in = calloc(1, sizeof(*in))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err0;
    }
    in->fd = -1;
    in->gen = 1;
    w->be = in;
    w->ops = &inotify_ops;
    if ((in->slot = calloc(TAB_MIN, sizeof(*in->slot))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err1;
    }
    in->cap = TAB_MIN;
    if ((in->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        r = errno == ENOMEM ? CAIRN_ENOMEM : CAIRN_EIO;
        goto err1;
    }
    w->fd = in->fd;
    if ((r = inotify_resync(w)) != 0)
        goto err1;
    return 0;

err1:
    inotify_free(w);
    w->ops = NULL;
    w->fd = -1;
err0:
    return r;
}
