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
};

/*
 * Back up: walk every path, store new content, write trees, and commit a
 * snapshot after everything it names is durable.  Files that cannot be
 * read are reported (CAIRN_EV_FILE_ERROR) and counted; the snapshot is
 * still written (complete = 0).  Returns 0 when a snapshot was written,
 * else an error (nothing referenced is left half-written).  The index must
 * be loaded.
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
