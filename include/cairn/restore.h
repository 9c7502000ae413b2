/*
 * cairn/restore.h - bring a snapshot (or part of it) back to disk.
 */
#ifndef CAIRN_RESTORE_H
#define CAIRN_RESTORE_H

#include <stdint.h>

#include "cairn/event.h"
#include "cairn/repo.h"
#include "cairn/snapshot.h"

/* What to do when something else is already where an entry goes
 * (cairn_restore_opts.existing).  A regular file already in place with
 * the snapshot's size, mtime and mode (and owner, when restore_owner) is
 * taken as restored, whatever the policy: that is what makes an
 * interrupted restore resumable. */
enum cairn_restore_existing {
    CAIRN_RESTORE_OVERWRITE = 0, /* replace it (the default) */
    CAIRN_RESTORE_RENAME = 1,    /* restore beside it, as
                                  * "name (restored YYYY-MM-DD HHMMSS).ext"
                                  * (the snapshot's time, UTC) */
    CAIRN_RESTORE_SKIP = 2,      /* leave it alone (reported, counted) */
};

struct cairn_restore_opts {
    const char *target;  /* directory; created if missing */
    const char *subpath; /* absolute path inside the snapshot; NULL or "/"
                          * for everything.  A directory's contents are
                          * restored into target; a file lands in target. */
    int threads;         /* 0: number of CPUs */
    int restore_owner;   /* chown to the stored uid/gid (root only) */
    int verify_ids;      /* also recompute every blob id */
    cairn_event_fn on_event;
    void *event_arg;
    volatile int *cancel;
    int existing; /* enum cairn_restore_existing */
};

struct cairn_restore_result {
    uint64_t files, dirs, links, specials;
    uint64_t bytes;
    uint64_t errors;         /* entries not (fully) restored */
    uint64_t damaged_files;  /* of which: content damaged or missing */
    int64_t elapsed_ns;
    /* Regular files found in place already (an earlier, interrupted
     * restore): neither read from the archive nor written. */
    uint64_t skipped_files, skipped_bytes;
    uint64_t kept;    /* existing different entries left alone (SKIP) */
    uint64_t renamed; /* entries restored under another name (RENAME) */
};

/*
 * Restore.  Content, mode, owner (when asked), times, symlinks, hard links
 * (entries with the same dev/ino and nlink > 1), extended attributes,
 * holes (all-zero runs are skipped, so sparse files stay sparse), empty
 * files and directories.  A file whose content is damaged is reported
 * (CAIRN_EV_DAMAGED_FILE) and the rest goes on.
 *
 * Resumable: each regular file is written to a temporary name in its
 * directory (".cairn-tmp.<name>") and renamed into place only when whole,
 * with its metadata, so an interrupted restore never leaves a partial file
 * under its real name; a later run skips the files already in place (see
 * enum cairn_restore_existing) and removes the temporary files left in
 * the directories it restores into.  The contents of many small files are
 * fetched together: their blobs are grouped by pack and read in runs, one
 * ranged read per run.  Returns 0 when everything
 * was restored, CAIRN_ECORRUPT when some files were damaged, CAIRN_EIO
 * when some entries could not be written (each reported,
 * CAIRN_EV_FILE_ERROR), CAIRN_ENOSPC when the target's disk filled up
 * (the restore stops there: what is in place is whole, and a second run
 * finishes it), another error when restore could not go on.
 */
int cairn_restore(struct cairn_repo *r, const struct cairn_snapshot *s,
                  const struct cairn_restore_opts *o,
                  struct cairn_restore_result *out);

#endif
