/*
 * test_watch.c - the agent's file watcher on a real file system: files and
 * directories created, written, chmod-ed, renamed and deleted at several
 * depths; trees made faster than watches can be added; moves in and out
 * of the selection; exclusions; the watch limit; queue overflow; both
 * backends, and AUTO falling back to inotify without the privilege.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/capability.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "cairn/err.h"
#include "watch.h"

#define WAIT_MS 5000
#define QUIET_MS 300

/* Every report received. */
struct rec {
    char **path;
    unsigned *flags;
    size_t n, cap;
    int stop_with; /* nonzero: the callback returns it (once) */
};

static int rec_fn(void *arg, const char *path, unsigned flags)
{
    struct rec *r = arg;

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->path = realloc(r->path, r->cap * sizeof(*r->path));
        r->flags = realloc(r->flags, r->cap * sizeof(*r->flags));
        assert_non_null(r->path);
        assert_non_null(r->flags);
    }
    r->path[r->n] = strdup(path);
    assert_non_null(r->path[r->n]);
    r->flags[r->n++] = flags;
    if (r->stop_with) {
        int s = r->stop_with;
        r->stop_with = 0;
        return s;
    }
    return 0;
}

static void rec_clear(struct rec *r)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        free(r->path[i]);
    r->n = 0;
}

static void rec_free(struct rec *r)
{
    rec_clear(r);
    free(r->path);
    free(r->flags);
    memset(r, 0, sizeof(*r));
}

static int rec_has(const struct rec *r, const char *path, unsigned flag)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        if (strcmp(r->path[i], path) == 0 && (r->flags[i] & flag))
            return 1;
    return 0;
}

/* Any report at or below path? */
static int rec_has_under(const struct rec *r, const char *path)
{
    size_t i, n = strlen(path);

    for (i = 0; i < r->n; i++)
        if (strncmp(r->path[i], path, n) == 0 &&
            (r->path[i][n] == '\0' || r->path[i][n] == '/'))
            return 1;
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Poll and read until (path, flag) has been reported, or time is up. */
static int wait_for(struct agent_watch *w, struct rec *r, const char *path,
                    unsigned flag)
{
    long end = now_ms() + WAIT_MS;
    struct pollfd pfd;

    pfd.fd = agent_watch_fd(w);
    pfd.events = POLLIN;
    while (!rec_has(r, path, flag)) {
        if (now_ms() > end) {
            size_t i;
            print_message("never saw %s flag %u; got:\n", path, flag);
            for (i = 0; i < r->n; i++)
                print_message("  %s %u\n", r->path[i], r->flags[i]);
            return 0;
        }
        if (poll(&pfd, 1, 50) > 0)
            assert_int_equal(agent_watch_read(w, rec_fn, r), 0);
    }
    return 1;
}

/* Read until nothing has come for QUIET_MS. */
static void settle(struct agent_watch *w, struct rec *r)
{
    struct pollfd pfd;

    pfd.fd = agent_watch_fd(w);
    pfd.events = POLLIN;
    while (poll(&pfd, 1, QUIET_MS) > 0)
        assert_int_equal(agent_watch_read(w, rec_fn, r), 0);
}

/* Every report is inside root. */
static void assert_all_under(const struct rec *r, const char *root)
{
    size_t i, n = strlen(root);

    for (i = 0; i < r->n; i++) {
        if (strncmp(r->path[i], root, n) != 0 ||
            (r->path[i][n] != '\0' && r->path[i][n] != '/'))
            fail_msg("report outside the root: %s", r->path[i]);
    }
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b, sizeof(bufs[0]), fmt, ap);
    va_end(ap);
    return b;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int rm_one(const char *p, const struct stat *st, int type,
                  struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *path)
{
    (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Per test: base (a fresh temp dir, canonical), base/root (the selection)
 * and base/out (outside it). */
struct fix {
    char base[256];
    char root[300];
    char out[300];
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/cairn-watch-XXXXXX", *rp;

    if (f == NULL || mkdtemp(tmpl) == NULL)
        return -1;
    if ((rp = realpath(tmpl, NULL)) == NULL)
        return -1;
    snprintf(f->base, sizeof(f->base), "%s", rp);
    free(rp);
    snprintf(f->root, sizeof(f->root), "%s/root", f->base);
    snprintf(f->out, sizeof(f->out), "%s/out", f->base);
    if (mkdir(f->root, 0755) != 0 || mkdir(f->out, 0755) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    rm_rf(f->base);
    free(f);
    return 0;
}

/* Open a watcher on f->root; *skipped if mode is fanotify and it does not
 * work here. */
static struct agent_watch *open_mode(struct fix *f, int mode,
                                     agent_watch_excluded_fn ex,
                                     unsigned max_watches)
{
    const char *roots[1] = {f->root};
    struct agent_watch_opts o = {
        .roots = roots, .nroots = 1, .mode = mode, .excluded = ex,
        .max_watches = max_watches};
    struct agent_watch *w = NULL;
    int r = agent_watch_open(&o, &w);

    if (mode == AGENT_WATCH_FANOTIFY && r != 0) {
        print_message("fanotify refused here (%s); skipping\n",
                      cairn_strerror(r));
        skip();
    }
    assert_int_equal(r, 0);
    assert_non_null(w);
    assert_string_equal(agent_watch_mode(w), mode == AGENT_WATCH_FANOTIFY
                                                 ? "fanotify"
                                                 : "inotify");
    return w;
}

/* Create, write, chmod, rename and delete at several depths. */
static void basic(void **state, int mode)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    const char *R = f->root;

    assert_int_equal(mkdir(pathf("%s/d1", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/d1/d2", R), 0755), 0);
    write_file(pathf("%s/f", R), "x");
    w = open_mode(f, mode, NULL, 0);

    write_file(pathf("%s/f", R), "changed");
    assert_true(wait_for(w, &r, pathf("%s/f", R), AGENT_WATCH_CHANGED));
    write_file(pathf("%s/d1/d2/g", R), "g");
    assert_true(wait_for(w, &r, pathf("%s/d1/d2/g", R), AGENT_WATCH_CHANGED));
    assert_int_equal(chmod(pathf("%s/d1", R), 0700), 0);
    assert_true(wait_for(w, &r, pathf("%s/d1", R), AGENT_WATCH_CHANGED));
    assert_int_equal(chmod(pathf("%s/d1/d2/g", R), 0600), 0);
    rec_clear(&r);
    assert_true(wait_for(w, &r, pathf("%s/d1/d2/g", R), AGENT_WATCH_CHANGED));

    /* A file renamed across directories. */
    assert_int_equal(
        rename(pathf("%s/d1/d2/g", R), pathf("%s/d1/h", R)), 0);
    assert_true(wait_for(w, &r, pathf("%s/d1/d2/g", R), AGENT_WATCH_REMOVED));
    assert_true(wait_for(w, &r, pathf("%s/d1/h", R), AGENT_WATCH_CHANGED));

    assert_int_equal(unlink(pathf("%s/f", R)), 0);
    assert_true(wait_for(w, &r, pathf("%s/f", R), AGENT_WATCH_REMOVED));

    /* A directory renamed within the selection: old removed, new rescanned,
     * and later changes come under the new name. */
    assert_int_equal(rename(pathf("%s/d1/d2", R), pathf("%s/d3", R)), 0);
    assert_true(wait_for(w, &r, pathf("%s/d1/d2", R), AGENT_WATCH_REMOVED));
    assert_true(wait_for(w, &r, pathf("%s/d3", R), AGENT_WATCH_RESCAN));
    write_file(pathf("%s/d3/new", R), "n");
    assert_true(wait_for(w, &r, pathf("%s/d3/new", R), AGENT_WATCH_CHANGED));

    /* Outside the root: nothing. */
    write_file(pathf("%s/x", f->out), "x");
    assert_int_equal(mkdir(pathf("%s/xd", f->out), 0755), 0);

    rm_rf(pathf("%s/d3", R));
    assert_true(wait_for(w, &r, pathf("%s/d3", R), AGENT_WATCH_REMOVED));
    settle(w, &r);
    assert_all_under(&r, R);
    assert_false(rec_has_under(&r, pathf("%s/d1/d2/new", R)));

    agent_watch_free(w);
    rec_free(&r);
}

/* mkdir -p a/b/c && write a/b/c/f, faster than watches can be added. */
static void new_tree(void **state, int mode)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    const char *R = f->root;
    int i;

    w = open_mode(f, mode, NULL, 0);
    assert_int_equal(mkdir(pathf("%s/a", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/a/b", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/a/b/c", R), 0755), 0);
    write_file(pathf("%s/a/b/c/f", R), "f");
    for (i = 0; i < 20; i++)
        write_file(pathf("%s/a/b/m%d", R, i), "m");
    assert_true(wait_for(w, &r, pathf("%s/a/b/c/f", R), AGENT_WATCH_CHANGED));
    for (i = 0; i < 20; i++)
        assert_true(
            wait_for(w, &r, pathf("%s/a/b/m%d", R, i), AGENT_WATCH_CHANGED));
    /* The new directories are watched now. */
    write_file(pathf("%s/a/b/c/f2", R), "f");
    assert_true(wait_for(w, &r, pathf("%s/a/b/c/f2", R), AGENT_WATCH_CHANGED));
    settle(w, &r);
    assert_all_under(&r, R);
    agent_watch_free(w);
    rec_free(&r);
}

/* A directory moved in from outside is rescanned (and watched); one moved
 * out is removed (and no longer watched). */
static void move_in_out(void **state, int mode)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    const char *R = f->root;

    assert_int_equal(mkdir(pathf("%s/m", f->out), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/m/x", f->out), 0755), 0);
    write_file(pathf("%s/m/x/y", f->out), "y");
    w = open_mode(f, mode, NULL, 0);

    assert_int_equal(rename(pathf("%s/m", f->out), pathf("%s/m", R)), 0);
    assert_true(wait_for(w, &r, pathf("%s/m", R), AGENT_WATCH_RESCAN));
    write_file(pathf("%s/m/x/z", R), "z");
    assert_true(wait_for(w, &r, pathf("%s/m/x/z", R), AGENT_WATCH_CHANGED));

    /* A file moved in is CHANGED, one moved out REMOVED. */
    write_file(pathf("%s/file", f->out), "f");
    assert_int_equal(
        rename(pathf("%s/file", f->out), pathf("%s/m/file", R)), 0);
    assert_true(wait_for(w, &r, pathf("%s/m/file", R), AGENT_WATCH_CHANGED));
    assert_int_equal(
        rename(pathf("%s/m/file", R), pathf("%s/file2", f->out)), 0);
    assert_true(wait_for(w, &r, pathf("%s/m/file", R), AGENT_WATCH_REMOVED));

    assert_int_equal(rename(pathf("%s/m", R), pathf("%s/m2", f->out)), 0);
    assert_true(wait_for(w, &r, pathf("%s/m", R), AGENT_WATCH_REMOVED));
    settle(w, &r);
    rec_clear(&r);
    write_file(pathf("%s/m2/x/w", f->out), "w");
    write_file(pathf("%s/m2/v", f->out), "v");
    write_file(pathf("%s/marker", R), "k");
    assert_true(wait_for(w, &r, pathf("%s/marker", R), AGENT_WATCH_CHANGED));
    settle(w, &r);
    assert_all_under(&r, R);
    assert_false(rec_has_under(&r, pathf("%s/m", R)));
    agent_watch_free(w);
    rec_free(&r);
}

/* Exclude directories named "skip" and files ending in ".tmp". */
static int ex_fn(void *arg, const char *path, int is_dir)
{
    const char *base = strrchr(path, '/');
    size_t n;

    (*(int *)arg)++;
    base = base ? base + 1 : path;
    n = strlen(base);
    if (is_dir)
        return strcmp(base, "skip") == 0;
    return n >= 4 && strcmp(base + n - 4, ".tmp") == 0;
}

static void excluded(void **state, int mode)
{
    struct fix *f = *state;
    const char *roots[1] = {f->root};
    struct agent_watch *w = NULL;
    struct rec r = {0};
    const char *R = f->root;
    int calls = 0, rv;

    assert_int_equal(mkdir(pathf("%s/skip", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/skip/deep", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/keep", R), 0755), 0);
    {
        struct agent_watch_opts o = {.roots = roots, .nroots = 1,
                                     .mode = mode, .excluded = ex_fn,
                                     .arg = &calls};
        rv = agent_watch_open(&o, &w);
        if (mode == AGENT_WATCH_FANOTIFY && rv != 0)
            skip();
        assert_int_equal(rv, 0);
    }
    write_file(pathf("%s/skip/deep/f", R), "f");
    write_file(pathf("%s/skip/g", R), "g");
    write_file(pathf("%s/keep/a.tmp", R), "t");
    assert_int_equal(mkdir(pathf("%s/keep/skip", R), 0755), 0);
    write_file(pathf("%s/keep/skip/h", R), "h");
    write_file(pathf("%s/keep/ok", R), "o");
    assert_true(wait_for(w, &r, pathf("%s/keep/ok", R), AGENT_WATCH_CHANGED));
    settle(w, &r);
    assert_false(rec_has_under(&r, pathf("%s/skip", R)));
    assert_false(rec_has_under(&r, pathf("%s/keep/skip", R)));
    assert_false(rec_has_under(&r, pathf("%s/keep/a.tmp", R)));
    assert_true(calls > 0);
    agent_watch_free(w);
    rec_free(&r);
}

static void test_inotify_basic(void **s) { basic(s, AGENT_WATCH_INOTIFY); }
static void test_fanotify_basic(void **s) { basic(s, AGENT_WATCH_FANOTIFY); }
static void test_inotify_new_tree(void **s) { new_tree(s, AGENT_WATCH_INOTIFY); }
static void test_fanotify_new_tree(void **s)
{
    new_tree(s, AGENT_WATCH_FANOTIFY);
}
static void test_inotify_move(void **s) { move_in_out(s, AGENT_WATCH_INOTIFY); }
static void test_fanotify_move(void **s)
{
    move_in_out(s, AGENT_WATCH_FANOTIFY);
}
static void test_inotify_excluded(void **s)
{
    excluded(s, AGENT_WATCH_INOTIFY);
}
static void test_fanotify_excluded(void **s)
{
    excluded(s, AGENT_WATCH_FANOTIFY);
}

struct list {
    char p[16][512];
    size_t n;
};

static int list_fn(void *arg, const char *path, unsigned flags)
{
    struct list *l = arg;

    assert_int_equal(flags, AGENT_WATCH_RESCAN);
    assert_true(l->n < 16);
    snprintf(l->p[l->n++], sizeof(l->p[0]), "%s", path);
    return 0;
}

static int list_has(const struct list *l, const char *path)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (strcmp(l->p[i], path) == 0)
            return 1;
    return 0;
}

/* max_watches 1: only the root is watched; its subdirectories are listed
 * as unwatched, new ones reported RESCAN and listed, removed ones
 * dropped from the list. */
static void test_inotify_limit(void **state)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    struct list l = {0};
    const char *R = f->root;

    assert_int_equal(mkdir(pathf("%s/a", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/a/a1", R), 0755), 0);
    assert_int_equal(mkdir(pathf("%s/b", R), 0755), 0);
    w = open_mode(f, AGENT_WATCH_INOTIFY, NULL, 1);
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 2);
    assert_true(list_has(&l, pathf("%s/a", R)));
    assert_true(list_has(&l, pathf("%s/b", R)));

    assert_int_equal(mkdir(pathf("%s/c", R), 0755), 0);
    assert_true(wait_for(w, &r, pathf("%s/c", R), AGENT_WATCH_RESCAN));
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 3);
    assert_true(list_has(&l, pathf("%s/c", R)));

    rm_rf(pathf("%s/a", R));
    assert_true(wait_for(w, &r, pathf("%s/a", R), AGENT_WATCH_REMOVED));
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 2);
    assert_false(list_has(&l, pathf("%s/a", R)));
    agent_watch_free(w);

    /* A limit of 3, breadth first: the root, b and c fit, b/b1 does not.
     * Changes in the watched part still come. */
    assert_int_equal(mkdir(pathf("%s/b/b1", R), 0755), 0);
    w = open_mode(f, AGENT_WATCH_INOTIFY, NULL, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.p[0], pathf("%s/b/b1", R));
    write_file(pathf("%s/c/f", R), "f");
    assert_true(wait_for(w, &r, pathf("%s/c/f", R), AGENT_WATCH_CHANGED));
    /* Trying again at the limit changes nothing... */
    assert_int_equal(agent_watch_retry(w), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 1);
    /* ... but once c's watch is freed, b/b1 is watched: its changes are
     * reported and it leaves the list. */
    rm_rf(pathf("%s/c", R));
    assert_true(wait_for(w, &r, pathf("%s/c", R), AGENT_WATCH_REMOVED));
    assert_int_equal(agent_watch_retry(w), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 0);
    write_file(pathf("%s/b/b1/g", R), "g");
    assert_true(wait_for(w, &r, pathf("%s/b/b1/g", R), AGENT_WATCH_CHANGED));
    /* The unwatched subtree's removal drops it from the list. */
    rm_rf(pathf("%s/b/b1", R));
    assert_true(wait_for(w, &r, pathf("%s/b/b1", R), AGENT_WATCH_REMOVED));
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 0);
    agent_watch_free(w);
    rec_free(&r);
}

/* Write a number to a /proc/sys file; 0 or -1. */
static int sysctl_write(const char *path, long v)
{
    FILE *fp = fopen(path, "w");
    int ok;

    if (fp == NULL)
        return -1;
    ok = fprintf(fp, "%ld\n", v) > 0;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

static long sysctl_read(const char *path)
{
    FILE *fp = fopen(path, "r");
    long v = -1;

    if (fp == NULL)
        return -1;
    if (fscanf(fp, "%ld", &v) != 1)
        v = -1;
    fclose(fp);
    return v;
}

/* Open a watcher while the kernel's queue limit (read at init) is small. */
static struct agent_watch *open_small_queue(struct fix *f, int mode,
                                            const char *knob)
{
    struct agent_watch *w;
    long old = sysctl_read(knob);
    const char *roots[1] = {f->root};
    struct agent_watch_opts o = {.roots = roots, .nroots = 1, .mode = mode};
    int r;

    if (old <= 0 || sysctl_write(knob, 16) != 0) {
        print_message("%s not writable; skipping\n", knob);
        skip();
    }
    r = agent_watch_open(&o, &w);
    assert_int_equal(sysctl_write(knob, old), 0);
    assert_int_equal(sysctl_read(knob), old);
    if (r != 0 && mode == AGENT_WATCH_FANOTIFY)
        skip();
    assert_int_equal(r, 0);
    return w;
}

static void overflow(void **state, int mode, const char *knob)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    const char *R = f->root;
    int i;

    w = open_small_queue(f, mode, knob);
    for (i = 0; i < 100; i++)
        write_file(pathf("%s/n%d", R, i), "n");
    /* Made while the queue is full: its creation is lost. */
    assert_int_equal(mkdir(pathf("%s/late", R), 0755), 0);
    assert_true(wait_for(w, &r, R, AGENT_WATCH_RESCAN));
    settle(w, &r);
    if (mode == AGENT_WATCH_FANOTIFY) {
        /* A whole file system's events share its 16-event queue, so
         * later events here may overflow again: the RESCAN is the test. */
        agent_watch_free(w);
        rec_free(&r);
        return;
    }
    /* The resync watched what the lost events would have told. */
    rec_clear(&r);
    write_file(pathf("%s/late/f", R), "f");
    assert_true(wait_for(w, &r, pathf("%s/late/f", R), AGENT_WATCH_CHANGED));
    agent_watch_free(w);
    rec_free(&r);
}

static void test_inotify_overflow(void **s)
{
    overflow(s, AGENT_WATCH_INOTIFY, "/proc/sys/fs/inotify/max_queued_events");
}

static void test_fanotify_overflow(void **s)
{
    overflow(s, AGENT_WATCH_FANOTIFY,
             "/proc/sys/fs/fanotify/max_queued_events");
}

/* A callback that stops a read: the read returns its value, and the next
 * read starts with a RESCAN of the root. */
static void test_callback_stop(void **state)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    struct pollfd pfd;
    int rv = 0;
    long end;

    w = open_mode(f, AGENT_WATCH_INOTIFY, NULL, 0);
    write_file(pathf("%s/a", f->root), "a");
    write_file(pathf("%s/b", f->root), "b");
    pfd.fd = agent_watch_fd(w);
    pfd.events = POLLIN;
    r.stop_with = 7;
    end = now_ms() + WAIT_MS;
    while (rv == 0 && now_ms() < end)
        if (poll(&pfd, 1, 50) > 0)
            rv = agent_watch_read(w, rec_fn, &r);
    assert_int_equal(rv, 7);
    rec_clear(&r);
    assert_int_equal(agent_watch_read(w, rec_fn, &r), 0);
    assert_true(r.n >= 1);
    assert_string_equal(r.path[0], f->root);
    assert_int_equal(r.flags[0], AGENT_WATCH_RESCAN);
    agent_watch_free(w);
    rec_free(&r);
}

/* The root itself deleted: REMOVED, then listed for polling. */
static void test_inotify_root_removed(void **state)
{
    struct fix *f = *state;
    struct agent_watch *w;
    struct rec r = {0};
    struct list l = {0};

    assert_int_equal(mkdir(pathf("%s/sub", f->root), 0755), 0);
    w = open_mode(f, AGENT_WATCH_INOTIFY, NULL, 0);
    rm_rf(f->root);
    assert_true(wait_for(w, &r, f->root, AGENT_WATCH_REMOVED));
    settle(w, &r);
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.p[0], f->root);
    agent_watch_free(w);
    rec_free(&r);
}

/* Two roots, one inside the other, a duplicate, a trailing slash, and a
 * missing one (listed as unwatched). */
static void test_roots(void **state)
{
    struct fix *f = *state;
    char inner[512], slash[512], missing[512];
    const char *roots[4];
    struct agent_watch_opts o = {.roots = roots, .nroots = 4,
                                 .mode = AGENT_WATCH_INOTIFY};
    struct agent_watch *w = NULL;
    struct rec r = {0};
    struct list l = {0};

    snprintf(inner, sizeof(inner), "%s/in", f->root);
    snprintf(slash, sizeof(slash), "%s//", f->root);
    snprintf(missing, sizeof(missing), "%s/missing", f->base);
    assert_int_equal(mkdir(inner, 0755), 0);
    roots[0] = f->root;
    roots[1] = inner;
    roots[2] = slash;
    roots[3] = missing;
    assert_int_equal(agent_watch_open(&o, &w), 0);
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.p[0], missing);
    write_file(pathf("%s/x", inner), "x");
    assert_true(wait_for(w, &r, pathf("%s/x", inner), AGENT_WATCH_CHANGED));
    write_file(pathf("%s/y", f->root), "y");
    assert_true(wait_for(w, &r, pathf("%s/y", f->root), AGENT_WATCH_CHANGED));
    agent_watch_free(w);
    rec_free(&r);
}

/* A root missing when the watch begins is watched once it is there and
 * the unwatched list is tried again. */
static void root_appears(void **state, int mode)
{
    struct fix *f = *state;
    char late[512];
    const char *roots[1] = {late};
    struct agent_watch_opts o = {.roots = roots, .nroots = 1, .mode = mode};
    struct agent_watch *w = NULL;
    struct rec r = {0};
    struct list l = {0};
    int rv;

    snprintf(late, sizeof(late), "%s/late", f->base);
    rv = agent_watch_open(&o, &w);
    if (mode == AGENT_WATCH_FANOTIFY && rv != 0) {
        print_message("fanotify refused here (%s); skipping\n",
                      cairn_strerror(rv));
        skip();
    }
    assert_int_equal(rv, 0);
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.p[0], late);

    assert_int_equal(mkdir(late, 0755), 0);
    assert_int_equal(agent_watch_retry(w), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(agent_watch_unwatched(w, list_fn, &l), 0);
    assert_int_equal(l.n, 0);
    write_file(pathf("%s/f", late), "f");
    assert_true(wait_for(w, &r, pathf("%s/f", late), AGENT_WATCH_CHANGED));
    agent_watch_free(w);
    rec_free(&r);
}

static void test_inotify_root_appears(void **s)
{
    root_appears(s, AGENT_WATCH_INOTIFY);
}
static void test_fanotify_root_appears(void **s)
{
    root_appears(s, AGENT_WATCH_FANOTIFY);
}

static void test_bad_args(void **state)
{
    struct fix *f = *state;
    const char *rel[1] = {"relative/path"};
    const char *dots[1] = {"/tmp/../etc"};
    const char *ok[1] = {f->root};
    struct agent_watch_opts o = {.roots = rel, .nroots = 1};
    struct agent_watch *w = NULL;

    assert_int_equal(agent_watch_open(&o, &w), CAIRN_EINVAL);
    o.roots = dots;
    assert_int_equal(agent_watch_open(&o, &w), CAIRN_EINVAL);
    o.roots = ok;
    o.nroots = 0;
    assert_int_equal(agent_watch_open(&o, &w), CAIRN_EINVAL);
    o.nroots = 1;
    o.mode = 7;
    assert_int_equal(agent_watch_open(&o, &w), CAIRN_EINVAL);
    assert_int_equal(agent_watch_open(NULL, &w), CAIRN_EINVAL);
    assert_null(w);
    agent_watch_free(NULL);
}

/* Drop CAP_SYS_ADMIN from the effective set of this process. */
static int drop_sys_admin(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];

    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
    return (int)syscall(SYS_capset, &h, d);
}

/* AUTO picks fanotify when it works, and inotify when it does not (here:
 * a child process without CAP_SYS_ADMIN), where FANOTIFY fails. */
static void test_auto(void **state)
{
    struct fix *f = *state;
    const char *roots[1] = {f->root};
    struct agent_watch_opts o = {.roots = roots, .nroots = 1,
                                 .mode = AGENT_WATCH_FANOTIFY};
    struct agent_watch *w = NULL;
    int fan_ok, st;
    pid_t pid;

    fan_ok = agent_watch_open(&o, &w) == 0;
    agent_watch_free(w);
    w = NULL;
    o.mode = AGENT_WATCH_AUTO;
    assert_int_equal(agent_watch_open(&o, &w), 0);
    assert_string_equal(agent_watch_mode(w),
                        fan_ok ? "fanotify" : "inotify");
    agent_watch_free(w);
    w = NULL;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (drop_sys_admin() != 0)
            _exit(10);
        o.mode = AGENT_WATCH_FANOTIFY;
        if (agent_watch_open(&o, &w) != CAIRN_EPERM)
            _exit(11);
        o.mode = AGENT_WATCH_AUTO;
        if (agent_watch_open(&o, &w) != 0)
            _exit(12);
        if (strcmp(agent_watch_mode(w), "inotify") != 0)
            _exit(13);
        agent_watch_free(w);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    if (!fan_ok)
        print_message("fanotify does not work here; only the fallback "
                      "was tested\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inotify_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inotify_new_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inotify_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inotify_excluded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inotify_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inotify_overflow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inotify_root_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_callback_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inotify_root_appears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_root_appears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_new_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_excluded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fanotify_overflow, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auto, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
