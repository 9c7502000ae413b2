/*
 * restore_int.h - shared state of one restore run (restore.c plans it,
 * restore_files.c writes file contents with a pool of workers).
 */
#ifndef CAIRN_RESTORE_INT_H
#define CAIRN_RESTORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn/restore.h"

/* Where one content blob of a file lies, and where it goes in the file. */
struct rs_chunk {
    uint8_t pack[CAIRN_ID_LEN];
    const uint8_t *id; /* points into the tree entry */
    uint32_t offset, length, raw_length;
    uint64_t file_off;
};

/* One regular file to restore. */
/* Where a file or other entry goes (plan time). */
enum rs_place {
    RS_NEW = 0,  /* restore it at path */
    RS_DONE = 1, /* already in place (an earlier run): leave it */
    RS_KEEP = 2, /* something different is there and stays (SKIP) */
    RS_FAIL = 3, /* cannot be restored (reported) */
};

struct rs_file {
    const struct cairn_tree_entry *e;
    char *path;          /* on disk (target/...) */
    char *tmp;           /* the temporary name it is written to */
    char *spath;         /* inside the snapshot, for reports */
    size_t chunk0;       /* first of its chunks in rs->chunks */
    size_t nchunks;
    uint64_t length;     /* sum of the chunks' raw lengths */
    long primary;        /* hard link: index of the file it links to, or -1 */
    int split;           /* content written by several work items */
    int place;           /* enum rs_place */
    int absent;          /* nothing was at path when planned */
    atomic_int parts_left;
    atomic_int damaged;  /* content missing or failed to authenticate */
    atomic_int failed;   /* could not be written (reported already) */
};

/* A piece of work: chunks [c0, c1) of file f. */
struct rs_item {
    size_t f;
    size_t c0, c1;
};

/* What one worker takes at a time: items [i0, i1).  Several items only
 * when they are whole small files, whose blobs are fetched together. */
struct rs_unit {
    size_t i0, i1;
};

/* A tree read ahead of planning (restore_trees.c), or why it could not
 * be read (t NULL). */
struct rs_ctree {
    uint8_t id[CAIRN_ID_LEN];
    struct cairn_tree *t;
    int err;
};

/* Any other entry (directory, symlink, special file, hard link). */
struct rs_node {
    const struct cairn_tree_entry *e;
    char *path;
    char *spath;
    long file; /* hard links: index in rs->files; -1 otherwise */
    int done;  /* there already (an earlier run): only counted */
};

struct rs {
    struct cairn_repo *repo;
    struct cairn_store *store;
    const struct cairn_restore_opts *o;
    struct cairn_restore_result *res;
    int is_root;
    int umask;  /* the process's umask, or -1 when it cannot be read */
    atomic_int no_tmpfile; /* the target's file system lacks O_TMPFILE */
    atomic_int no_empty_link; /* linkat(AT_EMPTY_PATH) is not allowed */
    uid_t euid; /* who new files belong to (before their owner is set) */
    gid_t egid;
    int nthreads;
    int64_t t0;

    /* The plan.  Workers read files, chunks, items and units while
     * planning appends to them, so their room is set before planning
     * (from a count over the trees) and never moves. */
    struct rs_ctree *cached; /* trees read ahead, sorted by id */
    size_t ncached, cached_cap;
    struct cairn_tree **trees;
    size_t ntrees, trees_cap;
    struct rs_file *files;
    size_t nfiles, files_cap;
    struct rs_chunk *chunks;
    size_t nchunks, chunks_cap;
    struct rs_item *items;
    size_t nitems, items_cap;
    struct rs_unit *units;
    size_t nunits, units_cap;
    size_t unit_scan;     /* items before this are in units or the open one */
    size_t unit_i0;       /* the open unit's first item */
    uint64_t unit_acc;    /* ... its stored bytes */
    uint64_t unit_cost;   /* ... its cost (COST_FILE per item and bytes) */
    size_t *links;        /* hard-linked files by dev/ino: index + 1, or 0 */
    size_t links_cap;     /* a power of two */
    char tag[32]; /* "YYYY-MM-DD HHMMSS" of the snapshot, for RENAME */
    char *scratch; /* PATH_MAX bytes for planning */
    struct rs_node *dirs, *others;
    size_t ndirs, dirs_cap, nothers, others_cap;
    struct rs_arena *arena;

    /* While workers run. */
    struct rs_pool *pool; /* restore_files.c */
    atomic_int fatal; /* a cairn_err that stops everything, or 0 */
    atomic_uint_fast64_t files_done, bytes_done, errors, damaged;
    atomic_uint_fast64_t files_total, bytes_total; /* planned so far */
    atomic_int planned; /* ... and that is all */
    pthread_mutex_t ev_lock; /* serialises events and progress */
    int64_t last_progress;
};

int64_t rs_now(void);
int rs_cancelled(struct rs *rs);

/* Report an event (serialised).  path/name/detail may be NULL. */
void rs_event(struct rs *rs, int kind, const char *path, const char *name,
              int err, int sys_errno, const char *detail);
/* Report a file that could not be written: counts one error. */
void rs_file_error(struct rs *rs, const char *path, int sys_errno,
                   const char *what);
/* Report damaged content of a file: counts an error and a damaged file. */
void rs_damaged(struct rs *rs, const char *spath, int err,
                const char *detail);
/* Send progress if 250 ms have passed (or force). */
void rs_progress(struct rs *rs, int force);

/* Apply extended attributes of e to path (fd >= 0: to the open file). */
void rs_set_xattrs(struct rs *rs, int fd, const char *path,
                   const struct cairn_tree_entry *e, int follow);

/* Read every tree below root (included) into rs->cached with
 * rs->nthreads workers and few, coalesced reads (restore_trees.c).  Trees
 * that cannot be read are left out, for planning to read and report.
 * 0, CAIRN_ENOMEM or CAIRN_ECANCELED. */
int rs_prefetch_trees(struct rs *rs, const uint8_t root[CAIRN_ID_LEN]);
/* Keep tree t in rs->cached for planning, or (t NULL) that it could not
 * be read, for the reason err.  0 or CAIRN_ENOMEM (t not taken). */
int rs_tree_keep(struct rs *rs, const uint8_t id[CAIRN_ID_LEN],
                 struct cairn_tree *t, int err);
/* The tree with this id: 0 (*t set), the error it could not be read
 * with, or CAIRN_ENOENT when it was never read. */
int rs_tree_get(const struct rs *rs, const uint8_t id[CAIRN_ID_LEN],
                struct cairn_tree **t);
/* Free rs->cached and its trees. */
void rs_trees_free(struct rs *rs);

/*
 * The workers that write the files' contents (restore_files.c):
 * rs->nthreads of them, one of which is the planning thread once it is
 * done.  rs_pool_start starts them before planning (cost_total: the
 * plan's estimated cost, to cut it in even parts); planning hands them
 * each unit it appends to rs->units with rs_pool_publish (cost: the
 * unit's); rs_pool_finish says planning is over (plan_rc: how it ended;
 * not 0 stops the workers), helps until every unit is written, and
 * returns 0 or the fatal error that stopped the workers.
 */
int rs_pool_start(struct rs *rs, uint64_t cost_total);
void rs_pool_publish(struct rs *rs, uint64_t cost);
int rs_pool_finish(struct rs *rs, int plan_rc);

#endif
