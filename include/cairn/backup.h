/*
 * cairn/backup.h - back up a selection of paths into a snapshot.
 */
#ifndef CAIRN_BACKUP_H
#define CAIRN_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/event.h"
#include "cairn/repo.h"
#include "cairn/snapshot.h"

struct cairn_backup_opts {
    const char *const *paths; /* absolute or relative; made absolute */
    size_t npaths;
    const char *const *excludes; /* glob patterns (see docs/CLI.md) */
    size_t nexcludes;
    const char *const *exclude_files; /* files of patterns, one a line */
    size_t nexclude_files;
    int exclude_caches;  /* skip the contents of CACHEDIR.TAG directories */
    int one_file_system; /* do not cross mount points below a path */
    /* Parent snapshot: unchanged files (size, mtime, ctime, inode) are not
     * read again.  NULL: none. */
    const struct cairn_snapshot *parent;
    const char *hostname; /* NULL: gethostname() */
    const char *const *tags;
    size_t ntags;
    int threads; /* workers; 0: number of CPUs */
    /* Count the selection on a thread of its own while backing up, so
     * progress events carry totals (for percent and ETA).  Costs one more
     * metadata pass; meant for when someone watches. */
    int count_totals;
    cairn_event_fn on_event;
    void *event_arg;
    volatile int *cancel; /* set non-zero to stop early; may be NULL */

    /*
     * Targeted backup (a watcher knows what changed).  With dirty_set
     * non-zero and a parent whose selection equals this run's, only the
     * dirty paths are looked at again:
     *  - a directory that is a dirty path is walked wholly (with the
     *    parent for unchanged files, as a full backup is);
     *  - a directory above a dirty path is listed and its entries
     *    stat'ed; its child directories that lead to no dirty path keep
     *    the parent's subtree (unless their inode, mtime or ctime
     *    changed: then they are walked wholly);
     *  - anything else is not visited: its entry and subtree come from
     *    the parent snapshot (no stat, no listing).
     * Removed paths disappear from their re-listed directory; dirty paths
     * outside the selection are ignored ("/" means everything).  Without
     * a readable parent, or when the selection differs from the parent's,
     * the whole selection is walked (result.walked_all).  The trees and
     * totals are those a full walk would give for the same file system,
     * provided the dirty set names every change since the parent and the
     * excludes, exclude_caches and one_file_system equal the parent's.
     * count_totals is ignored (it would walk everything).  With dirty_set
     * zero, dirty/ndirty are ignored and everything is walked, as before.
     */
    const char *const *dirty; /* absolute paths; cleaned like paths */
    size_t ndirty;
    int dirty_set;
    /* The caller knows the selection is not wholly backed up even if this
     * run has no error (e.g. work still queued): the snapshot is written
     * with complete = 0. */
    int incomplete;
};

struct cairn_backup_result {
    uint8_t snapshot_id[CAIRN_ID_LEN];
    int complete;           /* every file was read */
    uint64_t files, dirs;   /* in the snapshot */
    uint64_t bytes;         /* file bytes in the snapshot */
    uint64_t files_new, files_changed, files_unchanged;
    uint64_t bytes_read;    /* file bytes actually read */
    uint64_t blobs_added;
    uint64_t added_bytes;   /* stored (compressed, encrypted) bytes added */
    uint64_t errors;        /* files or directories that could not be read */
    int64_t elapsed_ns;
    /* The work done: directories visited (listed and their entries
     * stat'ed; the root and the directories above the selected paths
     * count, with only their selected entries stat'ed), and directories
     * whose subtree was taken from the parent without a visit. */
    uint64_t dirs_listed, dirs_reused;
    int walked_all; /* the whole selection was walked (no dirty set used) */
};

/*
 * Back up: walk every path, store new content, write trees, and commit a
 * snapshot after everything it names is durable.  Files that cannot be
 * read are reported (CAIRN_EV_FILE_ERROR) and counted; the snapshot is
 * still written (complete = 0).  complete is also 0 when o->incomplete
 * is set, or when a dirty-set run keeps parts of a parent that had
 * errors (files it could not read are still missing from those parts).
 * With a dirty set the snapshot's files, dirs and bytes are the parent's
 * plus the differences found in what was visited (exact, as a full
 * walk's).  Directories and files are opened without changing their
 * access time where the caller may (O_NOATIME), so that an unchanged
 * directory keeps its tree id.  Returns 0 when a snapshot was written,
 * else an error (nothing referenced is left half-written; with a dirty
 * set, an unreadable tree of the parent is an error: run a full backup).
 * The index must be loaded.
 */
int cairn_backup(struct cairn_repo *r, const struct cairn_backup_opts *o,
                 struct cairn_backup_result *out);

/*
 * Make p absolute (against the working directory) and clean ("." and ".."
 * resolved lexically, no repeated or trailing slashes), as backup records
 * selected paths.  *out malloc'ed.
 */
int cairn_backup_path_clean(const char *p, char **out);

#endif
