/*
 * watch_int.h - what watch.c shares with its backends (watch_inotify.c,
 * watch_fanotify.c).  Not for the rest of the agent.
 */
#ifndef AGENT_WATCH_INT_H
#define AGENT_WATCH_INT_H

#include <stddef.h>

#include "watch.h"

/* Longest path the watcher builds; longer ones are reported as RESCAN of
 * the deepest directory that fits. */
#define WATCH_PATH_MAX 65536

/* A growable path being built, always NUL-terminated once set. */
struct watch_path {
    char *p;
    size_t len, cap;
};

/* A backend: an operation table, one per file. */
struct watch_ops {
    const char *name;
    /* Process pending events, reporting through watch_report. */
    int (*read)(struct agent_watch *w);
    /* Events may have been lost: bring the backend's state back in step
     * with the file system (inotify: walk the selection again). */
    int (*resync)(struct agent_watch *w);
    /* Try again to watch what is on the unwatched list (see
     * agent_watch_retry); NULL: the backend cannot. */
    int (*retry)(struct agent_watch *w);
    void (*free)(struct agent_watch *w);
};

struct agent_watch {
    const struct watch_ops *ops;
    void *be; /* the backend's state */
    int fd;   /* the pollable descriptor, owned by the backend */

    char **roots; /* normalised, no duplicates */
    size_t *rootlen;
    size_t nroots;
    agent_watch_excluded_fn excluded;
    void *xarg;
    unsigned max_watches;

    int lost; /* reports were dropped: resync and RESCAN every root */

    char **unw; /* subtrees not covered, none inside another */
    size_t nunw, capunw;

    /* The current agent_watch_read call. */
    agent_watch_fn fn;
    void *fnarg;
    int fnret;            /* nonzero once fn asked to stop */
    struct watch_path last; /* last report, to merge repeats */
    unsigned lastflags;
    int havelast;

    struct watch_path path; /* scratch for the backends */
};

/* Backends' entry points: set w->ops, w->be and w->fd, or return an error
 * and leave them unset. */
int watch_inotify_open(struct agent_watch *w);
int watch_fanotify_open(struct agent_watch *w);

/* Report (path, flags) to the caller's fn, merging a repeat of the last
 * report.  A REMOVED report also drops unwatched entries at or below
 * path.  Returns 0, or nonzero if fn asked to stop (then every later
 * report is dropped and w->lost set). */
int watch_report(struct agent_watch *w, const char *path, unsigned flags);

/* RESCAN every root (after a queue overflow). */
int watch_report_roots(struct agent_watch *w);

/* Is path equal to top or below it?  Both normalised. */
int watch_is_under(const char *path, const char *top, size_t toplen);

/* The index of the innermost root holding path, or -1. */
long watch_root_of(const struct agent_watch *w, const char *path);

/* Is path exactly one of the roots? */
int watch_is_root(const struct agent_watch *w, const char *path);

/* Ask the caller's exclusion callback; 0 if there is none. */
int watch_is_excluded(const struct agent_watch *w, const char *path,
                      int is_dir);

/* Add path to the unwatched list (unless an entry covers it already;
 * entries below it go).  Returns 0 or CAIRN_ENOMEM. */
int watch_unwatched_add(struct agent_watch *w, const char *path);

/* Drop unwatched entries equal to or below path. */
void watch_unwatched_drop(struct agent_watch *w, const char *path);

/* Path building.  set/append return 0 or CAIRN_ENOMEM / CAIRN_ERANGE;
 * append adds "/" and name (no slash after a root of "/"). */
int watch_path_set(struct watch_path *p, const char *s, size_t n);
int watch_path_append(struct watch_path *p, const char *name, size_t n);
void watch_path_free(struct watch_path *p);

#endif
