/*
 * cairn/check.h - verify an archive.
 */
#ifndef CAIRN_CHECK_H
#define CAIRN_CHECK_H

#include <stdint.h>

#include "cairn/event.h"
#include "cairn/repo.h"

struct cairn_check_opts {
    int read_data;           /* read and verify every pack */
    unsigned subset_percent; /* 1..100: read this share of packs (chosen at
                              * random); 0 with read_data: all */
    int threads;             /* 0: number of CPUs */
    cairn_event_fn on_event;
    void *event_arg;
    volatile int *cancel;
};

struct cairn_check_result {
    uint64_t snapshots, trees, packs, blobs;
    uint64_t packs_read, bytes_read;
    uint64_t unreferenced_packs; /* stored but in no index: not an error */
    uint64_t damaged_packs;      /* missing, wrong size, wrong hash, bad blob */
    uint64_t damaged_files;      /* files whose content lies in them */
    uint64_t errors;             /* every problem found */
    int64_t elapsed_ns;
};

/*
 * Structure check: config and keys; every index object decodes and
 * authenticates; every indexed pack exists with its length; every
 * snapshot decodes; every tree reachable from a snapshot reads and
 * decodes, and every blob it names is indexed.  With read_data: every
 * (chosen) pack hashes to its name, its trailer matches the index, every
 * blob authenticates, decompresses and matches its id.  Each problem is an
 * event naming the pack and, for damaged packs, the files (snapshot and
 * path) whose content they hold.  0 when no problem was found,
 * CAIRN_ECORRUPT when some were, another error if the check could not run.
 */
int cairn_check(struct cairn_repo *r, const struct cairn_check_opts *o,
                struct cairn_check_result *out);

#endif
