/*
 * repo_writer.c - the blob writer: many threads add blobs, a background
 * thread streams packs to the store, flush writes the index.
 *
 * Packs are never held whole in memory: blobs are copied into pieces of
 * about a megabyte, and an I/O thread appends each piece to the pack's
 * temporary object as it comes, hashing as it goes; the pack is named by
 * that hash when its last piece (with the trailer) is written.  Memory is
 * bounded by the pieces in flight, not by the pack size.
 *
 * A pack's bytes are hashed in order, so one pack is one thread's work.
 * There are two lanes, each an I/O thread with its own open packs: blobs
 * go to the first lane, and to the second only while the first is behind.
 * On data that does not compress, hashing and writing a pack costs about
 * as much as sealing its blobs, and one I/O thread held back the workers
 * (measured on the benchmark's standard dataset: the cores 91% busy
 * instead of 84%, the full backup about 4% faster, 5 MB more at peak).
 * A small backup still makes one data pack.
 *
 * Durability order (docs/FORMAT.md): packs are made durable by a barrier
 * before an index object names them, and index objects are durable before
 * the snapshot that needs them (the caller saves it after flush).
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "repo_internal.h"

/* Bytes of a piece before it is handed to the I/O thread. */
#define PIECE_SIZE (1024u * 1024)
/* Bytes of pieces queued for a lane's I/O thread, at most (then adders
 * wait). */
#define QUEUE_BYTES (2u * 1024 * 1024)
/* A lane whose queue holds this much is behind: blobs go to the next. */
#define LANE_BEHIND PIECE_SIZE
#define NLANES 2
/* Every this many stored packs (about 256 MiB), they are made durable and
 * an index object names them, so an interrupted backup keeps its work. */
#define INDEX_EVERY 16
/* ... or once they hold this many blobs, and a pack is closed at this many
 * blobs whatever its size: the blob lists wait in memory until indexed
 * (64 bytes a blob), and a pack of tiny files holds 400,000 of them. */
#define INDEX_BLOBS 65536
/* Pieces kept for reuse, of any size (a fresh buffer costs a page fault
 * per 4 KiB on first touch, and its unmapping on free). */
#define PIECE_POOL 8
/* Sealed blobs at least this long are queued as pieces of their own, in
 * the buffer they were sealed into (no copy); shorter ones are copied
 * into the pack's current piece. */
#define DIRECT_MIN (64u * 1024)
/* Bytes of a piece hashed and written at a time by the I/O thread. */
#define STORE_STEP (128u * 1024)
/* Fresh piece buffers are rounded up to this, so they fit later needs. */
#define PIECE_ROUND (256u * 1024)

/* The I/O side of one pack: its temporary object and running hash. */
struct pack_job {
    void *h;
    struct cairn_sha256 *sha;
    uint64_t length;
    int failed;
};

struct piece {
    uint8_t *buf;
    size_t len, cap;
    struct pack_job *job;
    int first, last;
    struct cairn_pack_info *info; /* on the last piece: the pack's blobs */
    struct piece *next;
};

/* The filling side of one pack (one per blob type). */
struct open_pack {
    struct pack_job *job; /* NULL: no pack open */
    struct piece *cur;
    uint64_t offset;
    size_t target;
    struct cairn_index_entry *blobs;
    uint32_t n, cap;
};

/* An I/O thread, its queue of pieces, and the packs it writes. */
struct lane {
    struct cairn_repo_writer *w;
    struct open_pack open[2]; /* by blob type */
    struct piece *qhead, *qtail;
    size_t qbytes, qlen;
    pthread_t io;
    int io_started;
};

struct cairn_repo_writer {
    struct cairn_repo *r;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lane lane[NLANES];

    /* Ids added through this writer and not yet flushed. */
    uint8_t (*set)[CAIRN_ID_LEN];
    uint8_t *set_used;
    size_t set_cap, set_n;

    struct piece *pool[PIECE_POOL];
    int npool;
    int stop;
    /* The indexer: makes a batch of stored packs durable and writes the
     * index object naming them, while the I/O thread goes on. */
    pthread_t ixr;
    int ixr_started;
    struct cairn_pack_info **ix_batch;
    size_t ix_n;
    int ix_busy;
    int err;      /* first error; sticky */

    struct cairn_pack_info **stored; /* stored, not yet indexed */
    size_t nstored, stored_cap;
    uint64_t stored_bytes;
    uint64_t stored_blobs; /* in stored[], not yet handed to the indexer */
};

static uint64_t id_hash(const uint8_t *id)
{
    return cairn_le64dec(id);
}

/*
 * Move the set into a new table of ncap slots, leaving out, with prune,
 * the ids the loaded index holds now.  CAIRN_ENOMEM leaves the set as it
 * was.  Lock held (the index's own lock is taken inside lookups).
 */
static int set_rehash(struct cairn_repo_writer *w, size_t ncap, int prune)
{
    uint8_t(*ns)[CAIRN_ID_LEN] = malloc(ncap * CAIRN_ID_LEN);
    uint8_t *nu = calloc(ncap, 1);
    size_t i, j, n = 0;

    if (ns == NULL || nu == NULL) {
        free(ns);
        free(nu);
        return CAIRN_ENOMEM;
    }
    for (i = 0; i < w->set_cap; i++) {
        if (!w->set_used[i] ||
            (prune && cairn_repo_lookup(w->r, w->set[i], NULL) == 0))
            continue;
        j = id_hash(w->set[i]) & (ncap - 1);
        while (nu[j])
            j = (j + 1) & (ncap - 1);
        memcpy(ns[j], w->set[i], CAIRN_ID_LEN);
        nu[j] = 1;
        n++;
    }
    free(w->set);
    free(w->set_used);
    w->set = ns;
    w->set_used = nu;
    w->set_cap = ncap;
    w->set_n = n;
    return 0;
}

/*
 * Forget the ids the loaded index now holds (their packs were indexed):
 * the set then keeps only what is still on its way, so it does not grow
 * with the whole backup.  Rebuilt in a table sized for what is left; out
 * of memory, the larger set is kept (correct, just bigger).  Lock held.
 */
static int set_prune(struct cairn_repo_writer *w)
{
    size_t keep = 0, ncap = 4096, i;

    for (i = 0; i < w->set_cap; i++)
        if (w->set_used[i] && cairn_repo_lookup(w->r, w->set[i], NULL) != 0)
            keep++;
    if (keep == w->set_n)
        return 0;
    while ((keep + 1) * 4 > ncap * 3)
        ncap *= 2;
    (void)set_rehash(w, ncap, 1);
    return 0;
}

/* Insert id into the set; *out_present says whether it was there.  Lock
 * held. */
static int set_insert(struct cairn_repo_writer *w,
                      const uint8_t id[CAIRN_ID_LEN], int *out_present)
{
    size_t j;
    int rc;

    if ((w->set_n + 1) * 4 > w->set_cap * 3 &&
        (rc = set_rehash(w, w->set_cap ? w->set_cap * 2 : 4096, 0)) != 0)
        return rc;
    j = id_hash(id) & (w->set_cap - 1);
    while (w->set_used[j]) {
        if (memcmp(w->set[j], id, CAIRN_ID_LEN) == 0) {
            *out_present = 1;
            return 0;
        }
        j = (j + 1) & (w->set_cap - 1);
    }
    memcpy(w->set[j], id, CAIRN_ID_LEN);
    w->set_used[j] = 1;
    w->set_n++;
    *out_present = 0;
    return 0;
}

static int set_has(struct cairn_repo_writer *w, const uint8_t id[CAIRN_ID_LEN])
{
    size_t j;

    if (w->set_cap == 0)
        return 0;
    j = id_hash(id) & (w->set_cap - 1);
    while (w->set_used[j]) {
        if (memcmp(w->set[j], id, CAIRN_ID_LEN) == 0)
            return 1;
        j = (j + 1) & (w->set_cap - 1);
    }
    return 0;
}

/* A pack target near the configured size, jittered by up to -1/8..+1/8 so
 * pack sizes say nothing about the files inside. */
static size_t pick_target(struct cairn_repo_writer *w)
{
    uint32_t rnd = 0;
    size_t base = w->r->config.pack_size;

    cairn_random(&rnd, sizeof(rnd));
    return base - base / 8 + (size_t)(rnd % (uint32_t)(base / 4 + 1));
}

static void set_err(struct cairn_repo_writer *w, int rc)
{
    if (w->err == 0)
        w->err = rc;
}

/* A piece with room for at least need bytes: the smallest pooled one
 * that fits, else a fresh one.  Lock held. */
static struct piece *piece_get(struct cairn_repo_writer *w, size_t need)
{
    struct piece *p = NULL;
    size_t cap;
    int i, best = -1;

    for (i = 0; i < w->npool; i++)
        if (w->pool[i]->cap >= need &&
            (best < 0 || w->pool[i]->cap < w->pool[best]->cap))
            best = i;
    if (best >= 0) {
        p = w->pool[best];
        w->pool[best] = w->pool[--w->npool];
    } else {
        cap = need > PIECE_SIZE ? need : PIECE_SIZE;
        if (cap <= SIZE_MAX - PIECE_ROUND)
            cap = (cap + PIECE_ROUND - 1) / PIECE_ROUND * PIECE_ROUND;
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return NULL;
        p->cap = cap;
        if ((p->buf = malloc(p->cap)) == NULL) {
            free(p);
            return NULL;
        }
    }
    p->len = 0;
    p->job = NULL;
    p->first = p->last = 0;
    p->info = NULL;
    p->next = NULL;
    return p;
}

/* Give a piece back to the pool; when the pool is full, the smallest of
 * it and the pooled ones is freed.  Lock held. */
static void piece_put(struct cairn_repo_writer *w, struct piece *p)
{
    struct piece *drop = p;
    int i, small = -1;

    if (p == NULL)
        return;
    cairn_pack_info_free(p->info);
    p->info = NULL;
    if (w->npool < PIECE_POOL) {
        w->pool[w->npool++] = p;
        return;
    }
    for (i = 0; i < w->npool; i++)
        if (small < 0 || w->pool[i]->cap < w->pool[small]->cap)
            small = i;
    if (w->pool[small]->cap < p->cap) {
        drop = w->pool[small];
        w->pool[small] = p;
    }
    free(drop->buf);
    free(drop);
}

/* Queue a piece for the lane's I/O thread, in order.  Lock held. */
static void piece_queue(struct lane *l, struct piece *p)
{
    if (l->qtail != NULL)
        l->qtail->next = p;
    else
        l->qhead = p;
    l->qtail = p;
    l->qbytes += p->len;
    l->qlen++;
    pthread_cond_broadcast(&l->w->cond);
}

/* Write one index object naming packs[0..n) after making the packs
 * durable, and add them to the in-memory index.  One thread at a time. */
static int write_index(struct cairn_repo_writer *w,
                       struct cairn_pack_info **packs, size_t n)
{
    struct cairn_pack_info *flat;
    struct cairn_buf b;
    uint8_t iid[CAIRN_ID_LEN];
    char name[2 * CAIRN_ID_LEN + 1];
    size_t i;
    int rc;

    if (n == 0)
        return 0;
    if ((rc = cairn_store_barrier(w->r->store)) != 0)
        return rc;
    if ((flat = malloc(n * sizeof(*flat))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < n; i++)
        flat[i] = *packs[i];
    cairn_buf_init(&b, CAIRN_INDEX_MAX_LEN);
    if ((rc = cairn_index_encode(flat, (uint32_t)n, w->r->keys.mac, &b)) != 0)
        goto out;
    cairn_sha256(b.data, b.len, iid);
    repo_hex(iid, name);
    if ((rc = cairn_store_put(w->r->store, CAIRN_OBJ_INDEX, name, b.data,
                              b.len, 1)) != 0)
        goto out;
    for (i = 0; i < n && rc == 0; i++)
        rc = repo_index_add_pack(&w->r->index, packs[i]);
out:
    cairn_buf_free(&b);
    free(flat);
    return rc;
}

/* Store one piece: begin the pack on its first piece, name it on its
 * last.  Called by the I/O thread without the lock.  Returns the stored
 * pack's info (taken from the piece) when the pack is complete. */
static int store_piece(struct cairn_repo_writer *w, struct piece *p,
                       struct cairn_pack_info **out_done)
{
    struct pack_job *job = p->job;
    char name[2 * CAIRN_ID_LEN + 1];
    size_t off, step = 0;
    int rc = 0;

    *out_done = NULL;
    if (p->first && !job->failed) {
        if ((job->sha = cairn_sha256_new()) == NULL)
            rc = CAIRN_ENOMEM;
        else
            rc = cairn_store_begin(w->r->store, CAIRN_OBJ_PACK, &job->h);
    }
    /* Hash and write in steps small enough that what was hashed is still
     * in the cache when write() copies it. */
    for (off = 0; rc == 0 && !job->failed && off < p->len; off += step) {
        step = p->len - off < STORE_STEP ? p->len - off : STORE_STEP;
        if ((rc = cairn_sha256_update(job->sha, p->buf + off, step)) == 0)
            rc = cairn_store_append(w->r->store, job->h, p->buf + off, step);
        job->length += step;
    }
    if (rc != 0 && !job->failed) {
        job->failed = rc;
        cairn_store_abort(w->r->store, job->h);
        job->h = NULL;
    }
    if (p->last) {
        if (!job->failed) {
            rc = cairn_sha256_final(job->sha, p->info->id);
            p->info->length = job->length;
            repo_hex(p->info->id, name);
            if (rc == 0)
                rc = cairn_store_commit(w->r->store, job->h, name, 0);
            else
                cairn_store_abort(w->r->store, job->h);
            if (rc == 0) {
                *out_done = p->info;
                p->info = NULL;
            }
        } else {
            rc = job->failed;
        }
        cairn_sha256_free(job->sha);
        free(job);
    }
    return rc;
}

static void *io_main(void *arg)
{
    struct lane *l = arg;
    struct cairn_repo_writer *w = l->w;
    struct piece *p;
    struct cairn_pack_info *done;
    int rc;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (l->qhead == NULL && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (l->qhead == NULL)
            break;
        p = l->qhead;
        l->qhead = p->next;
        if (l->qhead == NULL)
            l->qtail = NULL;
        pthread_mutex_unlock(&w->lock);

        rc = store_piece(w, p, &done);

        pthread_mutex_lock(&w->lock);
        l->qbytes -= p->len;
        l->qlen--;
        if (rc == 0 && done != NULL && w->nstored == w->stored_cap) {
            size_t ncap = w->stored_cap ? w->stored_cap * 2 : 64;
            void *ns = realloc(w->stored, ncap * sizeof(*w->stored));

            if (ns == NULL) {
                rc = CAIRN_ENOMEM;
                cairn_pack_info_free(done);
                done = NULL;
            } else {
                w->stored = ns;
                w->stored_cap = ncap;
            }
        }
        if (rc != 0)
            set_err(w, rc);
        if (done != NULL) {
            w->stored[w->nstored++] = done;
            w->stored_bytes += done->length;
            w->stored_blobs += done->nblobs;
        }
        piece_put(w, p);
        /* Every INDEX_EVERY packs or INDEX_BLOBS blobs, hand them to the
         * indexer. */
        if (w->err == 0 &&
            (w->nstored >= INDEX_EVERY || w->stored_blobs >= INDEX_BLOBS) &&
            !w->ix_busy) {
            w->ix_batch = w->stored;
            w->ix_n = w->nstored;
            w->stored = NULL;
            w->nstored = w->stored_cap = 0;
            w->stored_blobs = 0;
            w->ix_busy = 1;
        }
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void *indexer_main(void *arg)
{
    struct cairn_repo_writer *w = arg;
    struct cairn_pack_info **batch;
    size_t n, i;
    int rc;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->ix_batch == NULL && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->ix_batch == NULL)
            break;
        batch = w->ix_batch;
        n = w->ix_n;
        w->ix_batch = NULL;
        w->ix_n = 0;
        pthread_mutex_unlock(&w->lock);
        rc = write_index(w, batch, n);
        for (i = 0; i < n; i++)
            cairn_pack_info_free(batch[i]);
        free(batch);
        pthread_mutex_lock(&w->lock);
        if (rc != 0)
            set_err(w, rc);
        else
            set_prune(w);
        w->ix_busy = 0;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int cairn_repo_writer_new(struct cairn_repo *r, struct cairn_repo_writer **out)
{
    struct cairn_repo_writer *w;
    int i, rc = CAIRN_ENOMEM;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        goto err0;
    w->r = r;
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        goto err1;
    if (pthread_cond_init(&w->cond, NULL) != 0)
        goto err2;
    for (i = 0; i < NLANES; i++) {
        w->lane[i].w = w;
        if (pthread_create(&w->lane[i].io, NULL, io_main, &w->lane[i]) != 0)
            break;
        w->lane[i].io_started = 1;
    }
    if (i < NLANES ||
        pthread_create(&w->ixr, NULL, indexer_main, w) != 0) {
        cairn_repo_writer_free(w);
        return CAIRN_ENOMEM;
    }
    w->ixr_started = 1;
    *out = w;
    return 0;

err2:
    pthread_mutex_destroy(&w->lock);
err1:
    free(w);
err0:
    return rc;
}

/* Append bytes to the pack's current piece, queueing full pieces on lane
 * l.  Lock held. */
static int pack_write(struct cairn_repo_writer *w, struct lane *l,
                      struct open_pack *op, const void *buf, size_t len)
{
    struct piece *p = op->cur;

    if (p != NULL && p->cap - p->len < len) {
        piece_queue(l, p);
        op->cur = p = NULL;
    }
    if (p == NULL) {
        if ((p = piece_get(w, len)) == NULL)
            return CAIRN_ENOMEM;
        p->job = op->job;
        op->cur = p;
    }
    memcpy(p->buf + p->len, buf, len);
    p->len += len;
    if (p->len >= PIECE_SIZE) {
        piece_queue(l, p);
        op->cur = NULL;
    }
    return 0;
}

/* Open a new pack of op, on lane l: its job and header.  Lock held. */
static int pack_open(struct cairn_repo_writer *w, struct lane *l,
                     struct open_pack *op)
{
    uint8_t header[CAIRN_PACK_HEADER_LEN];
    struct piece *p;
    int rc;

    if ((op->job = calloc(1, sizeof(*op->job))) == NULL)
        return CAIRN_ENOMEM;
    if ((p = piece_get(w, PIECE_SIZE)) == NULL) {
        free(op->job);
        op->job = NULL;
        return CAIRN_ENOMEM;
    }
    p->job = op->job;
    p->first = 1;
    op->cur = p;
    op->offset = 0;
    op->target = pick_target(w);
    cairn_pack_header(header);
    if ((rc = pack_write(w, l, op, header, sizeof(header))) != 0)
        return rc;
    op->offset = sizeof(header);
    return 0;
}

/* Close the open pack of op, on lane l: trailer, footer, last piece.
 * Lock held. */
static int pack_close(struct cairn_repo_writer *w, struct lane *l,
                      struct open_pack *op)
{
    struct cairn_pack_info *info;
    struct cairn_buf t;
    int rc;

    static const uint8_t zero[CAIRN_ID_LEN];
    uint32_t i;

    info = repo_pack_info_dup(zero, 0, op->blobs, op->n);
    for (i = 0; i < op->n; i++)
        free(op->blobs[i].refs);
    free(op->blobs);
    op->blobs = NULL;
    op->n = op->cap = 0;
    if (info == NULL)
        return CAIRN_ENOMEM;
    cairn_buf_init(&t, CAIRN_INDEX_MAX_LEN + CAIRN_PACK_FOOTER_LEN);
    if ((rc = cairn_pack_trailer_append(info, w->r->keys.mac, &t)) != 0 ||
        (rc = pack_write(w, l, op, t.data, t.len)) != 0)
        goto out;
    if (op->cur == NULL && (op->cur = piece_get(w, 0)) != NULL)
        op->cur->job = op->job;
    if (op->cur == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    op->cur->last = 1;
    op->cur->info = info;
    info = NULL;
    piece_queue(l, op->cur);
    op->cur = NULL;
    op->job = NULL;
out:
    cairn_buf_free(&t);
    cairn_pack_info_free(info);
    return rc;
}

int cairn_repo_writer_has(struct cairn_repo_writer *w,
                          const uint8_t id[CAIRN_ID_LEN])
{
    int has;

    pthread_mutex_lock(&w->lock);
    has = set_has(w, id);
    pthread_mutex_unlock(&w->lock);
    return has || cairn_repo_lookup(w->r, id, NULL) == 0;
}

/* Record a blob's entry in the open pack.  Lock held. */
static int pack_entry(struct open_pack *op, const uint8_t id[CAIRN_ID_LEN],
                      uint8_t type, uint32_t slen, uint32_t len,
                      const uint8_t (*refs)[CAIRN_ID_LEN], uint32_t nrefs)
{
    struct cairn_index_entry *e;

    if (op->n == op->cap) {
        uint32_t ncap = op->cap ? op->cap * 2 : 64;
        void *nb = realloc(op->blobs, (size_t)ncap * sizeof(*op->blobs));

        if (nb == NULL)
            return CAIRN_ENOMEM;
        op->blobs = nb;
        op->cap = ncap;
    }
    e = &op->blobs[op->n];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, CAIRN_ID_LEN);
    e->type = type;
    e->offset = (uint32_t)op->offset;
    e->length = slen;
    e->raw_length = len;
    if (nrefs > 0) {
        if ((e->refs = malloc((size_t)nrefs * CAIRN_ID_LEN)) == NULL)
            return CAIRN_ENOMEM;
        memcpy(e->refs, refs, (size_t)nrefs * CAIRN_ID_LEN);
        e->nrefs = nrefs;
    }
    op->n++;
    return 0;
}

int cairn_repo_writer_add(struct cairn_repo_writer *w,
                          struct cairn_blob_codec *codec, uint8_t type,
                          const uint8_t id[CAIRN_ID_LEN], const void *data,
                          size_t len, const uint8_t (*refs)[CAIRN_ID_LEN],
                          uint32_t nrefs, uint64_t *out_added)
{
    struct lane *l;
    struct open_pack *op;
    struct piece *sp = NULL;
    size_t slen = 0, queued;
    int i, rc, present;

    *out_added = 0;
    if (type > CAIRN_BLOB_TREE || len == 0 || len > CAIRN_BLOB_MAX)
        return CAIRN_EINVAL;
    if (cairn_repo_lookup(w->r, id, NULL) == 0)
        return 0;
    pthread_mutex_lock(&w->lock);
    if ((rc = w->err) == 0)
        rc = set_insert(w, id, &present);
    /* The blob is sealed into a piece buffer: a large one is then queued
     * as it is, in the pack's stream. */
    if (rc == 0 && !present &&
        (sp = piece_get(w, cairn_blob_seal_bound(len))) == NULL) {
        /* The id is marked as being stored: the writer cannot go on. */
        rc = CAIRN_ENOMEM;
        set_err(w, rc);
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    if (rc != 0 || present)
        return rc;

    rc = cairn_blob_seal(codec, type, id, data, len, sp->buf, &slen);

    pthread_mutex_lock(&w->lock);
    if (rc != 0)
        goto fail;
    if ((rc = w->err) != 0)
        goto unlock;
    /* The first lane that is not behind, else the least behind. */
    l = &w->lane[0];
    for (i = 1; i < NLANES && l->qbytes >= LANE_BEHIND; i++)
        if (w->lane[i].qbytes < l->qbytes)
            l = &w->lane[i];
    op = &l->open[type];
    if (op->job == NULL && (rc = pack_open(w, l, op)) != 0)
        goto fail;
    if ((rc = pack_entry(op, id, type, (uint32_t)slen, (uint32_t)len, refs,
                         nrefs)) != 0)
        goto fail;
    if (slen >= DIRECT_MIN) {
        /* Its own piece, after what the pack has so far. */
        if (op->cur != NULL) {
            piece_queue(l, op->cur);
            op->cur = NULL;
        }
        sp->job = op->job;
        sp->len = slen;
        piece_queue(l, sp);
        sp = NULL;
    } else if ((rc = pack_write(w, l, op, sp->buf, slen)) != 0) {
        goto fail;
    }
    op->offset += slen;
    if ((op->offset >= op->target || op->n >= INDEX_BLOBS) &&
        (rc = pack_close(w, l, op)) != 0)
        goto fail;
    /* Wait while the I/O threads are behind: this bounds memory. */
    for (;;) {
        for (i = 0, queued = 0; i < NLANES; i++)
            queued += w->lane[i].qbytes;
        if (queued <= NLANES * QUEUE_BYTES || w->err != 0)
            break;
        pthread_cond_wait(&w->cond, &w->lock);
    }
    rc = w->err;
unlock:
    piece_put(w, sp);
    pthread_mutex_unlock(&w->lock);
    if (rc == 0)
        *out_added = slen;
    return rc;
fail:
    set_err(w, rc);
    pthread_cond_broadcast(&w->cond);
    goto unlock;
}

int cairn_repo_writer_flush(struct cairn_repo_writer *w)
{
    struct cairn_pack_info **batch;
    struct lane *l;
    size_t nbatch, i, t;
    int rc = 0;

    pthread_mutex_lock(&w->lock);
    for (l = w->lane; l < w->lane + NLANES; l++)
        for (t = 0; t < 2 && w->err == 0; t++)
            if (l->open[t].job != NULL &&
                (rc = pack_close(w, l, &l->open[t])) != 0)
                set_err(w, rc);
    while (w->err == 0) {
        for (l = w->lane; l < w->lane + NLANES && l->qlen == 0; l++)
            ;
        if (l == w->lane + NLANES && !w->ix_busy)
            break;
        pthread_cond_wait(&w->cond, &w->lock);
    }
    if ((rc = w->err) != 0) {
        pthread_mutex_unlock(&w->lock);
        return rc;
    }
    batch = w->stored;
    nbatch = w->nstored;
    w->stored = NULL;
    w->nstored = w->stored_cap = 0;
    w->stored_blobs = 0;
    pthread_mutex_unlock(&w->lock);

    /* Packs adopted from an interrupted backup are named now too. */
    if (w->r->norphans > 0) {
        void *nb = realloc(batch, (nbatch + w->r->norphans) * sizeof(*batch));

        if (nb == NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        batch = nb;
        for (i = 0; i < w->r->norphans; i++)
            batch[nbatch++] = w->r->orphans[i];
        free(w->r->orphans);
        w->r->orphans = NULL;
        w->r->norphans = 0;
    }
    rc = write_index(w, batch, nbatch);
out:
    for (i = 0; i < nbatch; i++)
        cairn_pack_info_free(batch[i]);
    free(batch);
    if (rc != 0) {
        pthread_mutex_lock(&w->lock);
        set_err(w, rc);
        pthread_mutex_unlock(&w->lock);
    }
    return rc;
}

uint64_t cairn_repo_writer_stored_bytes(struct cairn_repo_writer *w)
{
    uint64_t n;

    pthread_mutex_lock(&w->lock);
    n = w->stored_bytes;
    pthread_mutex_unlock(&w->lock);
    return n;
}

static void open_pack_clear(struct open_pack *op)
{
    uint32_t i;

    for (i = 0; i < op->n; i++)
        free(op->blobs[i].refs);
    free(op->blobs);
    if (op->cur != NULL) {
        free(op->cur->buf);
        free(op->cur);
    }
    free(op->job);
    memset(op, 0, sizeof(*op));
}

void cairn_repo_writer_free(struct cairn_repo_writer *w)
{
    struct piece *p, *next;
    struct lane *l;
    size_t i;
    int t;

    if (w == NULL)
        return;
    /* The I/O threads finish what is queued (a pack without its last
     * piece is discarded when the store closes), then stop. */
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (l = w->lane; l < w->lane + NLANES; l++)
        if (l->io_started)
            pthread_join(l->io, NULL);
    if (w->ixr_started)
        pthread_join(w->ixr, NULL);
    if (w->ix_batch != NULL) {
        for (i = 0; i < w->ix_n; i++)
            cairn_pack_info_free(w->ix_batch[i]);
        free(w->ix_batch);
    }
    for (l = w->lane; l < w->lane + NLANES; l++) {
        for (p = l->qhead; p != NULL; p = next) {
            next = p->next;
            cairn_pack_info_free(p->info);
            free(p->buf);
            free(p);
        }
        for (t = 0; t < 2; t++) {
            struct open_pack *op = &l->open[t];

            /* A pack still open has a job the I/O thread may have
             * begun. */
            if (op->job != NULL && op->job->h != NULL)
                cairn_store_abort(w->r->store, op->job->h);
            if (op->job != NULL)
                cairn_sha256_free(op->job->sha);
            open_pack_clear(op);
        }
    }
    for (i = 0; i < (size_t)w->npool; i++) {
        free(w->pool[i]->buf);
        free(w->pool[i]);
    }
    for (i = 0; i < w->nstored; i++)
        cairn_pack_info_free(w->stored[i]);
    free(w->stored);
    free(w->set);
    free(w->set_used);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
