/*
 * cairn/restore.h - bring a snapshot (or part of it) back to disk.
 */
#ifndef CAIRN_RESTORE_H
#define CAIRN_RESTORE_H

#include <stdint.h>

#include "cairn/event.h"
#include "cairn/repo.h"
#include "cairn/snapshot.h"

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
};

struct cairn_restore_result {
    uint64_t files, dirs, links, specials;
    uint64_t bytes;
    uint64_t errors;         /* entries not (fully) restored */
    uint64_t damaged_files;  /* of which: content damaged or missing */
    int64_t elapsed_ns;
};

/*
 * Restore.  Content, mode, owner (when asked), times, symlinks, hard links
 * (entries with the same dev/ino and nlink > 1), extended attributes,
 * holes (all-zero runs are skipped, so sparse files stay sparse), empty
 * files and directories.  A file whose content is damaged is reported
 * (CAIRN_EV_DAMAGED_FILE) and the rest goes on.  Returns 0 when everything
 * was restored, CAIRN_ECORRUPT when some files were damaged, another error
 * when restore could not go on.
 */
int cairn_restore(struct cairn_repo *r, const struct cairn_snapshot *s,
                  const struct cairn_restore_opts *o,
                  struct cairn_restore_result *out);

#endif
