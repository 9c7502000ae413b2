/*
 * backup_internal.h - state shared by the backup pipeline (backup.c) and
 * the directory walker (backup_walk.c).  Not a public header.
 *
 * Threads: the walker (the caller's thread) lists directories, stats
 * entries, reads files and cuts them into chunks; workers hash, seal and
 * store each chunk.  A directory's tree is written when its last file and
 * subdirectory are done, by whichever thread finishes last.
 */
#ifndef CAIRN_BACKUP_INTERNAL_H
#define CAIRN_BACKUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn/backup.h"
#include "cairn/tree.h"
#include "exclude.h"

/* A buffer of file bytes shared by the chunks cut from it. */
struct bk_seg {
    uint8_t *buf;
    size_t cap;
    atomic_int refs;
};

struct bk_dir;

/* A file whose chunks are in flight. */
struct bk_file {
    struct bk_dir *dir;
    atomic_int pending; /* chunks in flight + 1 while the walker reads */
    uint8_t (*ids)[CAIRN_ID_LEN];
};

/* A directory whose tree is being built. */
struct bk_dir {
    struct bk_dir *parent;
    size_t parent_slot; /* this directory's entry in parent->entries */
    atomic_int pending; /* 1 while listed + unfinished files and subdirs */
    struct cairn_tree_entry *entries;
    size_t n, cap;
};

struct bk_job {
    struct bk_seg *seg;
    const uint8_t *data;
    size_t len;
    struct bk_file *file;
    uint32_t index;
};

struct bk_name_cache {
    uint32_t id[16];
    char *name[16];
    int n;
};

/* One walking thread's own tools. */
struct bk_walker {
    struct bk *b;
    struct cairn_blob_codec *codec;
    struct bk_name_cache users, groups;
    /* A full-size segment that files smaller than a segment are read into
     * one after another (shared_used bytes so far), so that they need no
     * buffer of their own; NULL if none.  Released before the walker
     * waits for anything but the workers (backup_walk.c). */
    struct bk_seg *shared;
    size_t shared_used;
};

/*
 * Where a directory stands against the dirty set (backup_dirty.c).
 * whole: walk everything below as a full backup does (always so without
 * a dirty set); else the dirty paths strictly below the directory are
 * b->dirty[lo..hi), and only the way to them is walked.
 */
struct bk_dpos {
    int whole;
    size_t lo, hi;
};

/* What a path is to the dirty set, seen from its directory's bk_dpos. */
enum bk_dirty_kind {
    BK_DIRTY_CLEAN = 0, /* no dirty path at or below it */
    BK_DIRTY_AT = 1,    /* a dirty path: walk it wholly */
    BK_DIRTY_ABOVE = 2, /* dirty paths below it: walk the way to them */
};

/* A directory waiting to be walked (its fd open, its bk_dir made). */
struct bk_task {
    struct bk_dir *d;
    int fd;
    char *path; /* PATH_MAX bytes */
    size_t pathlen;
    uint8_t old_id[CAIRN_ID_LEN];
    int has_old;
    dev_t rootdev;
    int depth;
    struct bk_dpos dpos;
};

/* Directories queued for idle walkers, at most (each holds an open fd). */
#define BK_TASKS_MAX 64

struct bk {
    struct cairn_repo *r;
    const struct cairn_backup_opts *o;
    struct cairn_repo_writer *w;
    const struct cairn_chunker *chunker;
    struct cairn_blob_codec *codec; /* the walker's */
    struct cairn_exclude *ex;
    char **paths; /* the selection: absolute, clean, sorted, not nested */
    size_t npaths;
    /* The dirty set (backup_dirty.c): absolute, clean, sorted like paths,
     * not nested, inside or above the selection.  dirty_active: the walk
     * follows it (else a full walk, the dirty set unused). */
    char **dirty;
    size_t ndirty;
    int dirty_active;
    uint32_t chunk_min, chunk_max;
    size_t seg_size;

    pthread_mutex_t lock;
    pthread_cond_t nonempty, nonfull, memfree, done;
    struct bk_job *ring;
    size_t ring_cap, ring_head, ring_n;
    size_t inflight, inflight_max;
    /* Full-size segment buffers kept for reuse: fresh ones would be
     * mapped and faulted in page by page each time. */
    uint8_t *segpool[1];
    int nsegpool;
    int stop;
    pthread_t *workers;
    struct cairn_blob_codec **wcodecs;
    int nworkers;

    atomic_int fatal; /* first fatal error */
    uint8_t root_id[CAIRN_ID_LEN];
    int root_done;

    atomic_uint_fast64_t files, dirs, bytes, bytes_read, files_new,
        files_changed, files_unchanged, blobs_added, added_bytes, errors;
    atomic_uint_fast64_t dirs_listed, dirs_reused;
    /* With a dirty set: the parent's entries that the walk replaced (the
     * old entries of each visited directory, and the whole old subtrees
     * that were not visited again nor kept).  Snapshot totals are the
     * parent's + files/dirs/bytes - these. */
    atomic_uint_fast64_t old_files, old_dirs, old_bytes;

    int64_t start_ns, last_progress_ns;
    /* The parent snapshot's start (0: no parent).  A file whose recorded
     * mtime or ctime is within one timestamp tick of it (or after it) is
     * read again even if it looks unchanged: a change in the same tick as
     * the parent's stat leaves size and times equal (bk_racy). */
    int64_t parent_start_ns;
    /* The counting thread (count_totals). */
    atomic_uint_fast64_t files_total, bytes_total;
    atomic_int totals_final;
    atomic_int stop_count;
    pthread_t counter;
    int counter_started;
    pthread_mutex_t evlock; /* events come from several walkers */
    /* A file larger than a segment is read by one walker at a time: it
     * holds a segment while it waits for the next, and two walkers doing
     * that at once could each wait for the other's. */
    pthread_mutex_t bigread;

    /* Directories for the walkers: a stack, taken by idle walkers. */
    struct bk_task tasks[BK_TASKS_MAX];
    int ntasks, tasks_active, walk_stop;
    pthread_cond_t task_cond;
    pthread_t *walkers;
    struct bk_walker *walker_ctx;
    int nwalkers; /* helper walker threads (the caller's thread walks too) */
};

int64_t bk_now_ns(void);
void bk_set_fatal(struct bk *b, int rc);

/* Allocate a segment of cap bytes, waiting while too much is in flight. */
struct bk_seg *bk_seg_new(struct bk *b, size_t cap);
void bk_seg_release(struct bk *b, struct bk_seg *s);

/* Queue a chunk for the workers (takes a reference on seg). */
int bk_submit(struct bk *b, struct bk_seg *seg, const uint8_t *data,
              size_t len, struct bk_file *f, uint32_t index);

/* Drop one hold on a file / directory; the last one finishes it. */
void bk_file_release(struct bk *b, struct bk_file *f,
                     struct cairn_blob_codec *codec);
void bk_dir_release(struct bk *b, struct bk_dir *d,
                    struct cairn_blob_codec *codec);

/* Free what an entry owns (not the entry itself). */
void bk_entry_clear(struct cairn_tree_entry *e);

/* Report a file that could not be backed up. */
void bk_file_error(struct bk *b, const char *path, int sys_errno,
                   const char *what);
/* Progress, at most every 250 ms (walker thread only). */
void bk_progress(struct bk *b, int force);

/*
 * Make b->paths from the options: absolute (relative to the working
 * directory), without "." / ".." / repeated slashes, sorted component by
 * component, without duplicates or paths inside other selected paths.
 */
int bk_paths_prepare(struct bk *b);

/* Compare paths component by component ('/' sorts before any byte, and a
 * path before the paths inside it); the order of b->paths and b->dirty. */
int bk_path_cmp(const char *a, const char *b);

/*
 * Make b->dirty from the options' dirty paths (cleaned, sorted, nested
 * ones and those outside the selection dropped) and decide whether the
 * walk may follow it (b->dirty_active): a dirty set was asked for, the
 * parent's selection equals b->paths, and "/" is not dirty.  Call after
 * bk_paths_prepare.
 */
int bk_dirty_prepare(struct bk *b);
void bk_dirty_free(struct bk *b);

/*
 * Classify path (pathlen bytes, a child of a directory at pos, pos not
 * whole) and set *out_child to the child's position (whole for
 * BK_DIRTY_AT, the dirty paths below it for BK_DIRTY_ABOVE).
 */
enum bk_dirty_kind bk_dirty_child(const struct bk *b, const struct bk_dpos *pos,
                                  const char *path, size_t pathlen,
                                  struct bk_dpos *out_child);

/* The walk's starting position: whole unless the dirty set is followed. */
void bk_dirty_root(const struct bk *b, struct bk_dpos *out);

/*
 * A visited directory's previous version old is replaced by what the walk
 * built: count its entries into b->old_*, and for each old subdirectory
 * not marked in used (visited again or kept), its whole old subtree
 * (read from the archive).  Returns 0 or an error reading a tree.
 */
int bk_dirty_replaced(struct bk *b, struct cairn_blob_codec *codec,
                      const struct cairn_tree *old, const uint8_t *used);

/* Add the counts of one entry (and nothing below it) to b's totals. */
void bk_count_entry(struct bk *b, const struct cairn_tree_entry *e);

/* Helper walker threads: start n, and stop them once the walk is done. */
int bk_walkers_start(struct bk *b, int n);
void bk_walkers_stop(struct bk *b);

/* The counting thread's body (arg: struct bk *). */
void *bk_count_main(void *arg);

/* The walker: back up every selected path below root, releasing the
 * walker's hold on root whatever happens. */
int bk_walk(struct bk *b, struct bk_dir *root);

#endif
