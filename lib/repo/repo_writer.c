/*
 * repo_writer.c - the blob writer: many threads add blobs, full packs go
 * to a background thread that stores them, flush writes the index.
 *
 * Durability order (docs/FORMAT.md): every pack is stored durably before
 * an index object names it, and index objects before the snapshot that
 * needs them (the caller saves the snapshot after flush).
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "repo_internal.h"

/* Packs finished but not yet stored, at most: bounds memory in flight. */
#define QUEUE_MAX 1
/* An index object is written for every this many stored packs, so an
 * interrupted backup keeps most of its work indexed. */
#define INDEX_EVERY 64

struct queued_pack {
    uint8_t *buf;
    size_t len;
    struct cairn_pack_info *info;
    struct queued_pack *next;
};

struct cairn_repo_writer {
    struct cairn_repo *r;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct cairn_pack_writer *open[2]; /* by blob type */
    size_t target[2];

    /* Ids added through this writer and not yet flushed. */
    uint8_t (*set)[CAIRN_ID_LEN];
    uint8_t *set_used;
    size_t set_cap, set_n;

    struct queued_pack *qhead, *qtail;
    size_t qlen;
    size_t finishing; /* packs being finished outside the lock */
    int stop;
    int err; /* first error; sticky */
    pthread_t io;
    int io_started;

    struct cairn_pack_info **stored; /* stored, not yet indexed */
    size_t nstored, stored_cap;
    uint64_t stored_bytes;
};

static pthread_key_t seal_key;
static pthread_once_t seal_once = PTHREAD_ONCE_INIT;

static void seal_buf_free(void *p)
{
    cairn_buf_free(p);
    free(p);
}

static void seal_key_make(void)
{
    pthread_key_create(&seal_key, seal_buf_free);
}

/* This thread's sealing buffer, with room for need bytes. */
static uint8_t *seal_buf(size_t need)
{
    struct cairn_buf *b;

    pthread_once(&seal_once, seal_key_make);
    if ((b = pthread_getspecific(seal_key)) == NULL) {
        if ((b = malloc(sizeof(*b))) == NULL)
            return NULL;
        cairn_buf_init(b, 2 * (size_t)CAIRN_BLOB_MAX);
        if (pthread_setspecific(seal_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    b->len = 0;
    if (cairn_buf_reserve(b, need) != 0)
        return NULL;
    return b->data;
}

static uint64_t id_hash(const uint8_t *id)
{
    return cairn_le64dec(id);
}

/* Insert id into the set; 0 if it was new, 1 if present.  Lock held. */
static int set_insert(struct cairn_repo_writer *w,
                      const uint8_t id[CAIRN_ID_LEN], int *out_present)
{
    size_t j, i;

    if ((w->set_n + 1) * 4 > w->set_cap * 3) {
        size_t ncap = w->set_cap ? w->set_cap * 2 : 4096;
        uint8_t(*ns)[CAIRN_ID_LEN] = malloc(ncap * CAIRN_ID_LEN);
        uint8_t *nu = calloc(ncap, 1);

        if (ns == NULL || nu == NULL) {
            free(ns);
            free(nu);
            return CAIRN_ENOMEM;
        }
        for (i = 0; i < w->set_cap; i++) {
            if (!w->set_used[i])
                continue;
            j = id_hash(w->set[i]) & (ncap - 1);
            while (nu[j])
                j = (j + 1) & (ncap - 1);
            memcpy(ns[j], w->set[i], CAIRN_ID_LEN);
            nu[j] = 1;
        }
        free(w->set);
        free(w->set_used);
        w->set = ns;
        w->set_used = nu;
        w->set_cap = ncap;
    }
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

/* Write one index object naming packs[0..n) and add them to the in-memory
 * index.  Called without the lock, by one thread at a time. */
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

static void *io_main(void *arg)
{
    struct cairn_repo_writer *w = arg;
    struct queued_pack *q;
    struct cairn_pack_info **batch;
    char name[2 * CAIRN_ID_LEN + 1];
    size_t nbatch, i;
    int rc;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->qhead == NULL && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->qhead == NULL)
            break;
        q = w->qhead;
        pthread_mutex_unlock(&w->lock);

        repo_hex(q->info->id, name);
        rc = cairn_store_put(w->r->store, CAIRN_OBJ_PACK, name, q->buf,
                             q->len, 1);
        free(q->buf);
        q->buf = NULL;

        pthread_mutex_lock(&w->lock);
        w->qhead = q->next;
        if (w->qhead == NULL)
            w->qtail = NULL;
        w->qlen--;
        if (rc == 0 && w->nstored == w->stored_cap) {
            size_t ncap = w->stored_cap ? w->stored_cap * 2 : 64;
            void *ns = realloc(w->stored, ncap * sizeof(*w->stored));

            if (ns == NULL) {
                rc = CAIRN_ENOMEM;
            } else {
                w->stored = ns;
                w->stored_cap = ncap;
            }
        }
        if (rc != 0) {
            set_err(w, rc);
            cairn_pack_info_free(q->info);
        } else {
            w->stored[w->nstored++] = q->info;
            w->stored_bytes += q->len;
        }
        free(q);
        /* Index what is stored every INDEX_EVERY packs. */
        if (w->err == 0 && w->nstored >= INDEX_EVERY) {
            batch = w->stored;
            nbatch = w->nstored;
            w->stored = NULL;
            w->nstored = w->stored_cap = 0;
            pthread_mutex_unlock(&w->lock);
            rc = write_index(w, batch, nbatch);
            for (i = 0; i < nbatch; i++)
                cairn_pack_info_free(batch[i]);
            free(batch);
            pthread_mutex_lock(&w->lock);
            if (rc != 0)
                set_err(w, rc);
        }
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int cairn_repo_writer_new(struct cairn_repo *r, struct cairn_repo_writer **out)
{
    struct cairn_repo_writer *w;
    int rc = CAIRN_ENOMEM;

    if ((w = calloc(1, sizeof(*w))) == NULL)
        goto err0;
    w->r = r;
    if (pthread_mutex_init(&w->lock, NULL) != 0)
        goto err1;
    if (pthread_cond_init(&w->cond, NULL) != 0)
        goto err2;
    if ((w->open[0] = cairn_pack_writer_new()) == NULL ||
        (w->open[1] = cairn_pack_writer_new()) == NULL)
        goto err3;
    w->target[0] = pick_target(w);
    w->target[1] = pick_target(w);
    if (pthread_create(&w->io, NULL, io_main, w) != 0)
        goto err3;
    w->io_started = 1;
    *out = w;
    return 0;

err3:
    cairn_pack_writer_free(w->open[0]);
    cairn_pack_writer_free(w->open[1]);
    pthread_cond_destroy(&w->cond);
err2:
    pthread_mutex_destroy(&w->lock);
err1:
    free(w);
err0:
    return rc;
}

/* Finish a full pack (outside the lock) and queue it for the I/O thread,
 * waiting while the queue is full. */
static int finish_and_queue(struct cairn_repo_writer *w,
                            struct cairn_pack_writer *pw)
{
    struct queued_pack *q;
    int rc;

    if ((q = calloc(1, sizeof(*q))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto fail;
    }
    if ((rc = cairn_pack_writer_finish(pw, w->r->keys.mac, &q->buf, &q->len,
                                       &q->info)) != 0) {
        free(q);
        goto fail;
    }
    cairn_pack_writer_free(pw);
    pthread_mutex_lock(&w->lock);
    while (w->qlen >= QUEUE_MAX && w->err == 0)
        pthread_cond_wait(&w->cond, &w->lock);
    w->finishing--;
    if (w->err != 0) {
        rc = w->err;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        free(q->buf);
        cairn_pack_info_free(q->info);
        free(q);
        return rc;
    }
    if (w->qtail != NULL)
        w->qtail->next = q;
    else
        w->qhead = q;
    w->qtail = q;
    w->qlen++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;

fail:
    cairn_pack_writer_free(pw);
    pthread_mutex_lock(&w->lock);
    w->finishing--;
    set_err(w, rc);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
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

int cairn_repo_writer_add(struct cairn_repo_writer *w,
                          struct cairn_blob_codec *codec, uint8_t type,
                          const uint8_t id[CAIRN_ID_LEN], const void *data,
                          size_t len, const uint8_t (*refs)[CAIRN_ID_LEN],
                          uint32_t nrefs, uint64_t *out_added)
{
    struct cairn_pack_writer *full = NULL, *fresh = NULL;
    uint8_t *sealed;
    size_t slen;
    int rc, present;

    *out_added = 0;
    if (type > CAIRN_BLOB_TREE || len > CAIRN_BLOB_MAX)
        return CAIRN_EINVAL;
    if (cairn_repo_lookup(w->r, id, NULL) == 0)
        return 0;
    pthread_mutex_lock(&w->lock);
    if ((rc = w->err) == 0)
        rc = set_insert(w, id, &present);
    pthread_mutex_unlock(&w->lock);
    if (rc != 0 || present)
        return rc;

    if ((sealed = seal_buf(cairn_blob_seal_bound(len))) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = cairn_blob_seal(codec, type, id, data, len, sealed, &slen)) != 0)
        return rc;

    pthread_mutex_lock(&w->lock);
    if ((rc = w->err) != 0)
        goto unlock;
    if ((rc = cairn_pack_writer_add(w->open[type], id, type, sealed,
                                    (uint32_t)slen, (uint32_t)len, refs,
                                    nrefs)) != 0) {
        set_err(w, rc);
        goto unlock;
    }
    if (cairn_pack_writer_size(w->open[type]) >= w->target[type]) {
        if ((fresh = cairn_pack_writer_new()) == NULL) {
            rc = CAIRN_ENOMEM;
            set_err(w, rc);
            goto unlock;
        }
        full = w->open[type];
        w->open[type] = fresh;
        w->target[type] = pick_target(w);
        w->finishing++;
    }
unlock:
    pthread_mutex_unlock(&w->lock);
    if (rc != 0)
        return rc;
    *out_added = slen;
    if (full != NULL)
        return finish_and_queue(w, full);
    return 0;
}

int cairn_repo_writer_flush(struct cairn_repo_writer *w)
{
    struct cairn_pack_writer *pw, *fresh;
    struct cairn_pack_info **batch;
    size_t nbatch, i, t;
    int rc;

    for (t = 0; t < 2; t++) {
        if ((fresh = cairn_pack_writer_new()) == NULL)
            return CAIRN_ENOMEM;
        pthread_mutex_lock(&w->lock);
        if (cairn_pack_writer_count(w->open[t]) == 0) {
            pthread_mutex_unlock(&w->lock);
            cairn_pack_writer_free(fresh);
            continue;
        }
        pw = w->open[t];
        w->open[t] = fresh;
        w->finishing++;
        pthread_mutex_unlock(&w->lock);
        if ((rc = finish_and_queue(w, pw)) != 0)
            return rc;
    }

    pthread_mutex_lock(&w->lock);
    while ((w->qlen > 0 || w->finishing > 0) && w->err == 0)
        pthread_cond_wait(&w->cond, &w->lock);
    if ((rc = w->err) != 0) {
        pthread_mutex_unlock(&w->lock);
        return rc;
    }
    batch = w->stored;
    nbatch = w->nstored;
    w->stored = NULL;
    w->nstored = w->stored_cap = 0;
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
    if ((rc = cairn_store_barrier(w->r->store)) != 0)
        goto out;
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

void cairn_repo_writer_free(struct cairn_repo_writer *w)
{
    struct queued_pack *q, *next;
    size_t i;

    if (w == NULL)
        return;
    if (w->io_started) {
        pthread_mutex_lock(&w->lock);
        /* The I/O thread stores what is queued, then stops; those packs
         * stay unindexed until the next open adopts them. */
        w->stop = 1;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->io, NULL);
    }
    for (q = w->qhead; q != NULL; q = next) {
        next = q->next;
        free(q->buf);
        cairn_pack_info_free(q->info);
        free(q);
    }
    for (i = 0; i < w->nstored; i++)
        cairn_pack_info_free(w->stored[i]);
    free(w->stored);
    cairn_pack_writer_free(w->open[0]);
    cairn_pack_writer_free(w->open[1]);
    free(w->set);
    free(w->set_used);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
