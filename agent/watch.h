/*
 * watch.h - the agent's file watcher: which paths under the selected roots
 * changed.
 *
 * Two backends behind one interface (watch_fanotify.c, watch_inotify.c):
 *
 *  - fanotify: one FAN_MARK_FILESYSTEM mark per file system holding a root,
 *    with FAN_REPORT_DFID_NAME.  Sees every change on those file systems
 *    with no per-directory state and no watch limit; needs CAP_SYS_ADMIN.
 *  - inotify: one watch per directory of the selection, added recursively
 *    and kept up to date as directories come, go and move.  Works for any
 *    user; bounded by fs.inotify.max_user_watches (and opts.max_watches).
 *
 * The watcher never loses a change silently.  What it cannot report
 * precisely it reports as AGENT_WATCH_RESCAN of a subtree (queue
 * overflow: each root; a directory moved in from outside; a subtree that
 * could not be watched), and subtrees it cannot watch at all are listed
 * by agent_watch_unwatched() so the agent polls them.
 *
 * Reports are hints, not facts: a path may be reported more than once,
 * may no longer exist when the agent looks (it was deleted or moved since),
 * and a CHANGED path may turn out to be unchanged.  The agent must lstat
 * what it is told about and treat "missing" as removed.
 *
 * Thread safety: a watcher is used by one thread at a time.  Different
 * watchers are independent.
 */
#ifndef AGENT_WATCH_H
#define AGENT_WATCH_H

#include <stddef.h>

/* Backends, for agent_watch_opts.mode. */
#define AGENT_WATCH_AUTO 0     /* fanotify if it works here, else inotify */
#define AGENT_WATCH_INOTIFY 1  /* inotify only */
#define AGENT_WATCH_FANOTIFY 2 /* fanotify only; fail if it does not work */

/* Flags given to an agent_watch_fn (one or more). */
#define AGENT_WATCH_CHANGED 0x1u /* path (a file or directory) was created,
                                  * written, or its metadata changed */
#define AGENT_WATCH_REMOVED 0x2u /* path was deleted or moved away; if it
                                  * was a directory, so was all below it */
#define AGENT_WATCH_RESCAN 0x4u  /* anything at or below path may have
                                  * changed without being reported: scan the
                                  * subtree again */

/*
 * Called once per report with an absolute path inside one of the roots (no
 * trailing slash, no "." or ".." components, no double slashes) and the
 * flags.  path is valid only during the call.  Return 0 to go on; any
 * other value stops agent_watch_read(), which returns that value, and the
 * watcher remembers that reports were dropped: the next agent_watch_read()
 * starts with AGENT_WATCH_RESCAN of every root.
 */
typedef int (*agent_watch_fn)(void *arg, const char *path, unsigned flags);

/*
 * Is path (absolute, inside a root, never a root itself) excluded from the
 * selection?  is_dir is 1 for a directory, else 0.  Return nonzero if so:
 * the watcher does not descend into an excluded directory and reports
 * nothing at or below an excluded path.  Called often, from inside
 * agent_watch_open() and agent_watch_read(); must be cheap and must not
 * call back into the watcher.
 */
typedef int (*agent_watch_excluded_fn)(void *arg, const char *path,
                                       int is_dir);

struct agent_watch_opts {
    const char *const *roots; /* absolute paths of the selected folders */
    size_t nroots;            /* at least 1 */
    int mode;                 /* AGENT_WATCH_AUTO, _INOTIFY or _FANOTIFY */
    agent_watch_excluded_fn excluded; /* may be NULL: nothing excluded */
    void *arg;                        /* passed to excluded */
    unsigned max_watches; /* inotify: at most this many watches (0: only the
                           * kernel's limit); lets tests reach the limit */
};

struct agent_watch;

/*
 * Start watching opts->roots (copied; the caller keeps ownership of opts
 * and its strings).  Roots must be absolute; trailing slashes are dropped,
 * duplicates ignored, and a root inside another root is fine.  A root
 * that does not exist or is not a directory, and any subtree that cannot
 * be watched (inotify watch limit, permission), is listed by
 * agent_watch_unwatched() rather than failing the call.
 *
 * With AGENT_WATCH_AUTO, fanotify is used if it can be set up on the file
 * system of every root (privileged agent, file system with file handles),
 * else inotify.  With inotify, open walks the whole selection to add its
 * watches, so it takes about as long as listing every directory once.
 *
 * Returns 0 and sets *out_w (free with agent_watch_free), or:
 * CAIRN_EINVAL (no roots, a relative root or one with "." or ".."
 * components, an unknown mode; with AGENT_WATCH_FANOTIFY, a root that is
 * not its own realpath(), since fanotify reports real paths), CAIRN_EPERM
 * (AGENT_WATCH_FANOTIFY without the privilege), CAIRN_ENOMEM, CAIRN_EIO
 * (the kernel refused for another reason, e.g. too many inotify
 * instances or a file system fanotify cannot mark).
 */
int agent_watch_open(const struct agent_watch_opts *opts,
                     struct agent_watch **out_w);

/*
 * The descriptor to poll for POLLIN; when readable, call agent_watch_read.
 * Owned by the watcher (do not close it); valid until agent_watch_free.
 */
int agent_watch_fd(const struct agent_watch *w);

/*
 * Drain pending kernel events without blocking and call fn(arg, path,
 * flags) for each report.  Consecutive identical reports are merged.  A
 * call does a bounded amount of reading (new directories are walked in
 * full, though); if more events are pending, the descriptor stays
 * readable.  With inotify, new directories are watched here and their
 * current contents reported, so files made before the watch existed are
 * not missed.
 *
 * Returns 0 (also when nothing was pending), the nonzero value fn
 * returned (see agent_watch_fn), or CAIRN_ENOMEM / CAIRN_EIO; after an
 * error the watcher stays usable and the next call starts with
 * AGENT_WATCH_RESCAN of every root.
 */
int agent_watch_read(struct agent_watch *w, agent_watch_fn fn, void *arg);

/*
 * Call fn(arg, path, AGENT_WATCH_RESCAN) for each subtree the watcher
 * does not cover now (roots that are missing, directories beyond the watch
 * limit or that could not be watched), so the agent can poll them.  The
 * list shrinks as those paths are removed and is rebuilt when a queue
 * overflow makes the watcher walk the selection again.  Returns 0 or
 * what fn returned (nonzero stops the listing).
 */
int agent_watch_unwatched(const struct agent_watch *w, agent_watch_fn fn,
                          void *arg);

/*
 * Try again to watch the subtrees agent_watch_unwatched lists: the watch
 * limit may have been raised, watches freed, a missing root created.
 * Those now watched leave the list, and their changes are reported from
 * then on; list them (and rescan them) first, for what changed while they
 * were not watched.  With fanotify, nothing to do.  Returns 0 or
 * CAIRN_ENOMEM.
 */
int agent_watch_retry(struct agent_watch *w);

/* The backend in use: "fanotify" or "inotify" (a static string). */
const char *agent_watch_mode(const struct agent_watch *w);

/* Stop watching and free w.  agent_watch_free(NULL) does nothing. */
void agent_watch_free(struct agent_watch *w);

#endif
