/*
 * backup.c - the backup pipeline: workers that hash, seal and store
 * chunks, the trees written as directories complete, and the snapshot.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup_internal.h"
#include "cairn/err.h"
#include "cairn/log.h"

#define RING_CAP 4096
/* Bytes of file data in flight between the walker and the workers. */
#define INFLIGHT_MAX (16u * 1024 * 1024)

int64_t bk_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bk_set_fatal(struct bk *b, int rc)
{
    int zero = 0;

    if (rc != 0)
        atomic_compare_exchange_strong(&b->fatal, &zero, rc);
}

struct bk_seg *bk_seg_new(struct bk *b, size_t cap)
{
    struct bk_seg *s;
    uint8_t *buf;

    pthread_mutex_lock(&b->lock);
    while (b->inflight > 0 && b->inflight + cap > b->inflight_max &&
           atomic_load(&b->fatal) == 0)
        pthread_cond_wait(&b->memfree, &b->lock);
    b->inflight += cap;
    buf = NULL;
    if (cap == b->seg_size && b->nsegpool > 0)
        buf = b->segpool[--b->nsegpool];
    pthread_mutex_unlock(&b->lock);
    if (buf == NULL)
        buf = malloc(cap ? cap : 1);
    if (buf == NULL || (s = malloc(sizeof(*s))) == NULL) {
        free(buf);
        pthread_mutex_lock(&b->lock);
        b->inflight -= cap;
        pthread_cond_broadcast(&b->memfree);
        pthread_mutex_unlock(&b->lock);
        return NULL;
    }
    s->buf = buf;
    s->cap = cap;
    atomic_init(&s->refs, 1);
    return s;
}

void bk_seg_release(struct bk *b, struct bk_seg *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pthread_mutex_lock(&b->lock);
    if (s->cap == b->seg_size &&
        b->nsegpool < (int)(sizeof(b->segpool) / sizeof(b->segpool[0]))) {
        b->segpool[b->nsegpool++] = s->buf;
        s->buf = NULL;
    }
    b->inflight -= s->cap;
    pthread_cond_broadcast(&b->memfree);
    pthread_mutex_unlock(&b->lock);
    free(s->buf);
    free(s);
}

int bk_submit(struct bk *b, struct bk_seg *seg, const uint8_t *data,
              size_t len, struct bk_file *f, uint32_t index)
{
    struct bk_job *j;
    int rc;

    atomic_fetch_add(&seg->refs, 1);
    atomic_fetch_add(&f->pending, 1);
    pthread_mutex_lock(&b->lock);
    while (b->ring_n == b->ring_cap && atomic_load(&b->fatal) == 0)
        pthread_cond_wait(&b->nonfull, &b->lock);
    if ((rc = atomic_load(&b->fatal)) != 0) {
        pthread_mutex_unlock(&b->lock);
        atomic_fetch_sub(&seg->refs, 1);
        atomic_fetch_sub(&f->pending, 1);
        return rc;
    }
    j = &b->ring[(b->ring_head + b->ring_n) % b->ring_cap];
    j->seg = seg;
    j->data = data;
    j->len = len;
    j->file = f;
    j->index = index;
    b->ring_n++;
    pthread_cond_signal(&b->nonempty);
    pthread_mutex_unlock(&b->lock);
    return 0;
}

void bk_entry_clear(struct cairn_tree_entry *e)
{
    uint16_t i;

    free(e->name);
    free(e->user);
    free(e->group);
    free(e->target);
    for (i = 0; i < e->nxattrs; i++) {
        free(e->xattrs[i].name);
        free(e->xattrs[i].value);
    }
    free(e->xattrs);
    free(e->content);
    memset(e, 0, sizeof(*e));
}

static int entry_cmp(const void *x, const void *y)
{
    return strcmp(((const struct cairn_tree_entry *)x)->name,
                  ((const struct cairn_tree_entry *)y)->name);
}

/* Encode, hash and store a finished directory's tree. */
static int dir_finish(struct bk *b, struct bk_dir *d,
                      struct cairn_blob_codec *codec, uint8_t out_id[32])
{
    struct cairn_tree t;
    struct cairn_buf buf;
    uint8_t(*refs)[CAIRN_ID_LEN] = NULL;
    uint32_t nrefs = 0;
    uint64_t added;
    size_t i, j;
    int rc, sorted = 1;

    /* Drop entries whose file could not be read; restore name order
     * (the virtual directories above selected paths are built in
     * selection order). */
    for (i = 0, j = 0; i < d->n; i++) {
        if (d->entries[i].type == 0) {
            bk_entry_clear(&d->entries[i]);
            continue;
        }
        if (j != i)
            d->entries[j] = d->entries[i];
        if (j > 0 && strcmp(d->entries[j - 1].name, d->entries[j].name) >= 0)
            sorted = 0;
        j++;
    }
    d->n = j;
    if (!sorted)
        qsort(d->entries, d->n, sizeof(*d->entries), entry_cmp);
    t.nentries = (uint32_t)d->n;
    t.entries = d->entries;
    cairn_buf_init(&buf, CAIRN_BLOB_MAX);
    if ((rc = cairn_tree_encode(&t, &buf)) != 0)
        goto out;
    if ((rc = cairn_tree_refs(&t, &refs, &nrefs)) != 0)
        goto out;
    if ((rc = cairn_blob_id(codec, buf.data, buf.len, out_id)) != 0)
        goto out;
    if ((rc = cairn_repo_writer_add(b->w, codec, CAIRN_BLOB_TREE, out_id,
                                    buf.data, buf.len,
                                    (const uint8_t(*)[CAIRN_ID_LEN])refs,
                                    nrefs, &added)) != 0)
        goto out;
    if (added > 0) {
        atomic_fetch_add(&b->blobs_added, 1);
        atomic_fetch_add(&b->added_bytes, added);
    }
out:
    free(refs);
    cairn_buf_free(&buf);
    return rc;
}

void bk_dir_release(struct bk *b, struct bk_dir *d,
                    struct cairn_blob_codec *codec)
{
    struct bk_dir *parent;
    uint8_t id[CAIRN_ID_LEN];
    size_t i;
    int rc;

    while (d != NULL) {
        if (atomic_fetch_sub(&d->pending, 1) != 1)
            return;
        rc = atomic_load(&b->fatal) == 0 ? dir_finish(b, d, codec, id)
                                          : CAIRN_ECANCELED;
        if (rc != 0)
            bk_set_fatal(b, rc);
        parent = d->parent;
        if (parent != NULL && rc == 0) {
            memcpy(parent->entries[d->parent_slot].subtree, id, CAIRN_ID_LEN);
            parent->entries[d->parent_slot].has_subtree = 1;
        }
        for (i = 0; i < d->n; i++)
            bk_entry_clear(&d->entries[i]);
        free(d->entries);
        if (parent == NULL) {
            pthread_mutex_lock(&b->lock);
            if (rc == 0)
                memcpy(b->root_id, id, CAIRN_ID_LEN);
            b->root_done = 1;
            pthread_cond_broadcast(&b->done);
            pthread_mutex_unlock(&b->lock);
        }
        free(d);
        d = parent;
    }
}

void bk_file_release(struct bk *b, struct bk_file *f,
                     struct cairn_blob_codec *codec)
{
    struct bk_dir *d;

    if (atomic_fetch_sub(&f->pending, 1) != 1)
        return;
    d = f->dir;
    free(f);
    bk_dir_release(b, d, codec);
}

struct worker_arg {
    struct bk *b;
    struct cairn_blob_codec *codec;
};

static void *worker_run(void *arg)
{
    struct worker_arg *wa = arg;
    struct bk *b = wa->b;
    struct bk_job j;
    uint64_t added;
    int rc;

    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (b->ring_n == 0 && !b->stop)
            pthread_cond_wait(&b->nonempty, &b->lock);
        if (b->ring_n == 0) {
            pthread_mutex_unlock(&b->lock);
            break;
        }
        j = b->ring[b->ring_head];
        b->ring_head = (b->ring_head + 1) % b->ring_cap;
        b->ring_n--;
        pthread_cond_signal(&b->nonfull);
        pthread_mutex_unlock(&b->lock);

        if (atomic_load(&b->fatal) == 0) {
            rc = cairn_blob_id(wa->codec, j.data, j.len, j.file->ids[j.index]);
            if (rc == 0)
                rc = cairn_repo_writer_add(b->w, wa->codec, CAIRN_BLOB_DATA,
                                           j.file->ids[j.index], j.data, j.len,
                                           NULL, 0, &added);
            if (rc != 0) {
                bk_set_fatal(b, rc);
            } else if (added > 0) {
                atomic_fetch_add(&b->blobs_added, 1);
                atomic_fetch_add(&b->added_bytes, added);
            }
        }
        bk_seg_release(b, j.seg);
        bk_file_release(b, j.file, wa->codec);
    }
    return NULL;
}

void bk_file_error(struct bk *b, const char *path, int sys_errno,
                   const char *what)
{
    struct cairn_event ev = {0};
    char detail[512];

    atomic_fetch_add(&b->errors, 1);
    snprintf(detail, sizeof(detail), "%s: %s", what,
             sys_errno ? strerror(sys_errno) : "failed");
    if (b->o->on_event == NULL)
        return;
    ev.kind = CAIRN_EV_FILE_ERROR;
    ev.path = path;
    ev.err = cairn_err_from_errno(sys_errno);
    ev.sys_errno = sys_errno;
    ev.detail = detail;
    pthread_mutex_lock(&b->evlock);
    b->o->on_event(b->o->event_arg, &ev);
    pthread_mutex_unlock(&b->evlock);
}

void bk_progress(struct bk *b, int force)
{
    struct cairn_progress p = {0};
    struct cairn_event ev = {0};
    int64_t now;

    if (b->o->on_event == NULL)
        return;
    now = bk_now_ns();
    if (!force && now - b->last_progress_ns < 250000000)
        return; /* racy read: only a hint */
    pthread_mutex_lock(&b->evlock);
    if (!force && now - b->last_progress_ns < 250000000) {
        pthread_mutex_unlock(&b->evlock);
        return;
    }
    b->last_progress_ns = now;
    p.files_done = atomic_load(&b->files);
    p.bytes_done = atomic_load(&b->bytes);
    p.files_total = atomic_load(&b->files_total);
    p.bytes_total = atomic_load(&b->bytes_total);
    p.totals_final = atomic_load(&b->totals_final);
    /* The count can lag behind the backup; never show more than 100%. */
    if (p.files_total < p.files_done)
        p.files_total = p.files_done;
    if (p.bytes_total < p.bytes_done)
        p.bytes_total = p.bytes_done;
    p.errors = atomic_load(&b->errors);
    p.elapsed_ns = now - b->start_ns;
    ev.kind = CAIRN_EV_PROGRESS;
    ev.progress = &p;
    b->o->on_event(b->o->event_arg, &ev);
    pthread_mutex_unlock(&b->evlock);
}

static int start_workers(struct bk *b, int n, struct worker_arg *args)
{
    int i;

    for (i = 0; i < n; i++) {
        args[i].b = b;
        args[i].codec =
            cairn_blob_codec_new(cairn_repo_keys(b->r),
                                 cairn_repo_config(b->r)->zstd_level);
        if (args[i].codec == NULL)
            return CAIRN_ENOMEM;
        if (pthread_create(&b->workers[i], NULL, worker_run, &args[i]) != 0) {
            cairn_blob_codec_free(args[i].codec);
            args[i].codec = NULL;
            return CAIRN_ENOMEM;
        }
        b->nworkers++;
    }
    return 0;
}

static void stop_workers(struct bk *b, struct worker_arg *args)
{
    int i;

    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_broadcast(&b->nonempty);
    pthread_mutex_unlock(&b->lock);
    for (i = 0; i < b->nworkers; i++) {
        pthread_join(b->workers[i], NULL);
        cairn_blob_codec_free(args[i].codec);
    }
    b->nworkers = 0;
}

/* A total of a dirty-set run: the parent's, with the entries the walk
 * replaced taken off and what it counted (*total on entry) added. */
static void totals_apply(uint64_t *total, uint64_t parent, uint64_t replaced)
{
    uint64_t have = parent + *total;

    if (have < replaced) {
        /* Only a parent whose totals disagree with its trees does this. */
        cairn_log(CAIRN_LOG_WARN, "parent snapshot totals are inconsistent");
        *total = 0;
        return;
    }
    *total = have - replaced;
}

static char *self_username(void)
{
    struct passwd pw, *res = NULL;
    char buf[1024];

    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
        return strdup(res->pw_name);
    return strdup("");
}

int cairn_backup(struct cairn_repo *r, const struct cairn_backup_opts *o,
                 struct cairn_backup_result *out)
{
    struct bk b;
    struct worker_arg *args = NULL;
    struct bk_dir *root = NULL;
    struct cairn_snapshot snap;
    char host[256];
    long ncpu;
    int i, nthreads, rc;

    memset(&b, 0, sizeof(b));
    memset(&snap, 0, sizeof(snap));
    memset(out, 0, sizeof(*out));
    b.r = r;
    b.o = o;
    b.chunker = cairn_repo_chunker(r);
    b.chunk_min = cairn_repo_config(r)->chunk_min;
    b.chunk_max = cairn_repo_config(r)->chunk_max;
    /* A segment holds at least one largest chunk plus room to read on. */
    b.seg_size = (size_t)b.chunk_max + b.chunk_max / 8;
    b.inflight_max = INFLIGHT_MAX;
    if (b.inflight_max < 2 * b.seg_size)
        b.inflight_max = 2 * b.seg_size;
    b.start_ns = bk_now_ns();
    if (o->parent != NULL)
        b.parent_start_ns = o->parent->time_ns;
    b.ring_cap = RING_CAP;
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.nonempty, NULL);
    pthread_cond_init(&b.nonfull, NULL);
    pthread_cond_init(&b.memfree, NULL);
    pthread_cond_init(&b.done, NULL);
    pthread_cond_init(&b.task_cond, NULL);
    pthread_mutex_init(&b.evlock, NULL);
    pthread_mutex_init(&b.bigread, NULL);

    if (o->npaths == 0) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((rc = bk_paths_prepare(&b)) != 0)
        goto err0;
    if ((rc = bk_dirty_prepare(&b)) != 0)
        goto err0;
    if ((rc = cairn_exclude_new(&b.ex)) != 0)
        goto err0;
    for (i = 0; (size_t)i < o->nexcludes; i++)
        if ((rc = cairn_exclude_add(b.ex, o->excludes[i])) != 0)
            goto err1;
    for (i = 0; (size_t)i < o->nexclude_files; i++)
        if ((rc = cairn_exclude_add_file(b.ex, o->exclude_files[i])) != 0)
            goto err1;
    if ((b.ring = calloc(b.ring_cap, sizeof(*b.ring))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    if ((b.codec = cairn_blob_codec_new(cairn_repo_keys(r),
                                        cairn_repo_config(r)->zstd_level)) ==
        NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    if ((rc = cairn_repo_writer_new(r, &b.w)) != 0)
        goto err3;

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = o->threads > 0 ? o->threads : (ncpu > 0 ? (int)ncpu : 1);
    if (nthreads > 64)
        nthreads = 64;
    if ((b.workers = calloc((size_t)nthreads, sizeof(*b.workers))) == NULL ||
        (args = calloc((size_t)nthreads, sizeof(*args))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err4;
    }
    if ((rc = start_workers(&b, nthreads, args)) != 0)
        goto err5;

    /* Counting would walk everything, which a dirty set avoids. */
    if (o->count_totals && !b.dirty_active &&
        pthread_create(&b.counter, NULL, bk_count_main, &b) == 0)
        b.counter_started = 1;

    /*
     * With a parent snapshot most files are unchanged and the walk is
     * metadata: nthreads - 1 helpers walk directories alongside the
     * caller's thread.  Without one, every byte is read and the workers
     * are the bottleneck; more walkers would only hold more file data in
     * memory (measured: no faster, 15-20 MB more at peak).
     */
    if ((rc = bk_walkers_start(&b, o->parent != NULL ? nthreads - 1 : 0)) !=
        0)
        goto err5;

    if ((root = calloc(1, sizeof(*root))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err5;
    }
    atomic_init(&root->pending, 1);
    /* The walk releases the root's hold; the tree is finished by whoever
     * completes last. */
    rc = bk_walk(&b, root);
    root = NULL;
    bk_set_fatal(&b, rc);

    pthread_mutex_lock(&b.lock);
    while (!b.root_done)
        pthread_cond_wait(&b.done, &b.lock);
    pthread_mutex_unlock(&b.lock);
    bk_walkers_stop(&b);
    stop_workers(&b, args);
    bk_progress(&b, 1);
    if ((rc = atomic_load(&b.fatal)) != 0)
        goto err5;
    if ((rc = cairn_repo_writer_flush(b.w)) != 0)
        goto err5;

    /* Everything the snapshot names is durable: now the snapshot. */
    snap.time_ns = b.start_ns;
    memcpy(snap.root, b.root_id, CAIRN_ID_LEN);
    if (o->parent != NULL) {
        memcpy(snap.parent, o->parent->id, CAIRN_ID_LEN);
        snap.has_parent = 1;
    }
    snap.files = atomic_load(&b.files);
    snap.dirs = atomic_load(&b.dirs);
    snap.bytes = atomic_load(&b.bytes);
    snap.added_bytes = atomic_load(&b.added_bytes);
    snap.errors = atomic_load(&b.errors);
    snap.complete = snap.errors == 0 && !o->incomplete;
    if (b.dirty_active) {
        /* The parts not visited are the parent's: a file the parent
         * could not read is still missing from them.  A parent that was
         * incomplete only because its caller had work queued (no errors)
         * does not count: that work is this run's dirty set, and the
         * caller says with o->incomplete whether any is left. */
        snap.complete = snap.complete && o->parent->errors == 0;
        totals_apply(&snap.files, o->parent->files, atomic_load(&b.old_files));
        totals_apply(&snap.dirs, o->parent->dirs, atomic_load(&b.old_dirs));
        totals_apply(&snap.bytes, o->parent->bytes, atomic_load(&b.old_bytes));
    }
    snap.have_private = 1;
    if (o->hostname != NULL) {
        snprintf(host, sizeof(host), "%s", o->hostname);
    } else if (gethostname(host, sizeof(host)) != 0) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    snap.hostname = host;
    if ((snap.username = self_username()) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err5;
    }
    snap.npaths = (uint32_t)b.npaths;
    snap.paths = b.paths;
    snap.ntags = (uint32_t)o->ntags;
    snap.tags = (char **)o->tags;
    rc = cairn_repo_save_snapshot(r, &snap);
    free(snap.username);
    if (rc != 0)
        goto err5;

    memcpy(out->snapshot_id, snap.id, CAIRN_ID_LEN);
    out->complete = snap.complete;
    out->files = snap.files;
    out->dirs = snap.dirs;
    out->bytes = snap.bytes;
    out->files_new = atomic_load(&b.files_new);
    out->files_changed = atomic_load(&b.files_changed);
    out->files_unchanged = atomic_load(&b.files_unchanged);
    out->bytes_read = atomic_load(&b.bytes_read);
    out->blobs_added = atomic_load(&b.blobs_added);
    out->added_bytes = snap.added_bytes;
    out->errors = snap.errors;
    out->elapsed_ns = bk_now_ns() - b.start_ns;
    out->dirs_listed = atomic_load(&b.dirs_listed);
    out->dirs_reused = atomic_load(&b.dirs_reused);
    out->walked_all = !b.dirty_active;

err5:
    if (b.walkers != NULL)
        bk_walkers_stop(&b);
    if (b.counter_started) {
        atomic_store(&b.stop_count, 1);
        pthread_join(b.counter, NULL);
    }
    if (b.nworkers > 0)
        stop_workers(&b, args);
    free(args);
    free(b.workers);
err4:
    cairn_repo_writer_free(b.w);
err3:
    cairn_blob_codec_free(b.codec);
err2:
    free(b.ring);
err1:
    cairn_exclude_free(b.ex);
err0:
    for (i = 0; i < b.nsegpool; i++)
        free(b.segpool[i]);
    pthread_mutex_destroy(&b.bigread);
    pthread_mutex_destroy(&b.evlock);
    pthread_cond_destroy(&b.task_cond);
    bk_dirty_free(&b);
    for (i = 0; (size_t)i < b.npaths; i++)
        free(b.paths[i]);
    free(b.paths);
    pthread_cond_destroy(&b.done);
    pthread_cond_destroy(&b.memfree);
    pthread_cond_destroy(&b.nonfull);
    pthread_cond_destroy(&b.nonempty);
    pthread_mutex_destroy(&b.lock);
    return rc;
}
