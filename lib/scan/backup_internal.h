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

    int64_t start_ns, last_progress_ns;
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

/* Helper walker threads: start n, and stop them once the walk is done. */
int bk_walkers_start(struct bk *b, int n);
void bk_walkers_stop(struct bk *b);

/* The counting thread's body (arg: struct bk *). */
void *bk_count_main(void *arg);

/* The walker: back up every selected path below root, releasing the
 * walker's hold on root whatever happens. */
int bk_walk(struct bk *b, struct bk_dir *root);

#endif
