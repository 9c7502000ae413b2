/*
 * check_data.c - check --read-data: read each chosen pack whole with a pool
 * of workers; its hash must equal its name, its trailer must authenticate
 * and match the index, and every blob must open and match its id.  Blobs
 * that do not are marked, so the tree walk reports just the files that
 * use them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/blob.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/pack.h"
#include "cairn/store.h"
#include "check/check_int.h"

struct ck_worker {
    struct ck *ck;
    struct cairn_blob_codec *codec;
    uint8_t *rbuf, *pbuf;
    size_t rcap, pcap;
    pthread_t tid;
    int started;
};

static int entries_match(const struct cairn_pack_info *a,
                         const struct cairn_pack_info *b)
{
    const struct cairn_index_entry *x, *y;
    uint32_t i;

    if (a->nblobs != b->nblobs)
        return 0;
    for (i = 0; i < a->nblobs; i++) {
        x = &a->blobs[i];
        y = &b->blobs[i];
        if (memcmp(x->id, y->id, CAIRN_ID_LEN) != 0 || x->type != y->type ||
            x->offset != y->offset || x->length != y->length ||
            x->raw_length != y->raw_length || x->nrefs != y->nrefs ||
            (x->nrefs > 0 &&
             memcmp(x->refs, y->refs, (size_t)x->nrefs * CAIRN_ID_LEN) != 0))
            return 0;
    }
    return 1;
}

static int read_pack(struct ck_worker *w, struct ck_pack *p)
{
    struct ck *ck = w->ck;
    const struct cairn_pack_info *pi = p->info;
    const struct cairn_index_entry *e;
    struct cairn_index *tr = NULL;
    struct cairn_sha256 *sha = NULL;
    const char *why = NULL;
    uint8_t id[CAIRN_ID_LEN];
    size_t end, hashed = 0;
    uint32_t i, nbad = 0;
    char msg[200];
    int rc;

    if (pi->length > CAIRN_PACK_MAX_LEN) {
        ck_pack_damaged(ck, p, 1, CAIRN_ERANGE, "pack is too large");
        return 0;
    }
    if ((rc = ck_grow(&w->rbuf, &w->rcap, (size_t)pi->length)) != 0)
        return rc;
    rc = cairn_store_get_range(ck->store, CAIRN_OBJ_PACK, p->name, 0,
                               (size_t)pi->length, w->rbuf);
    if (rc == CAIRN_ENOMEM)
        return rc;
    if (rc != 0) {
        ck_pack_damaged(ck, p, 1, rc, "pack cannot be read");
        return 0;
    }
    atomic_fetch_add(&ck->bytes_read, pi->length);
    /* Every blob, by the (authenticated) index: which ones are hurt.  The
     * pack is hashed in the same pass, each blob's bytes just before it is
     * opened, so they are read from memory once. */
    if ((sha = cairn_sha256_new()) == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    for (i = 0; i < pi->nblobs; i++) {
        e = &pi->blobs[i];
        if (e->raw_length > CAIRN_BLOB_MAX ||
            (uint64_t)e->offset + e->length > pi->length) {
            ck->blobs[p->first_blob + i].bad = 1;
            nbad++;
            continue;
        }
        end = (size_t)e->offset + e->length;
        if (end > hashed) {
            if ((rc = cairn_sha256_update(sha, w->rbuf + hashed,
                                          end - hashed)) != 0)
                goto out;
            hashed = end;
        }
        if ((rc = ck_grow(&w->pbuf, &w->pcap,
                          e->raw_length ? e->raw_length : 1)) != 0)
            goto out;
        rc = cairn_blob_open(w->codec, e->type, e->id, w->rbuf + e->offset,
                             e->length, w->pbuf, e->raw_length, 1);
        if (rc == CAIRN_ENOMEM)
            goto out;
        if (rc != 0) {
            ck->blobs[p->first_blob + i].bad = 1;
            nbad++;
        }
    }
    if ((rc = cairn_sha256_update(sha, w->rbuf + hashed,
                                  (size_t)pi->length - hashed)) != 0 ||
        (rc = cairn_sha256_final(sha, id)) != 0)
        goto out;
    /* Authenticates the trailer; its pack id is the hash just taken. */
    rc = cairn_pack_read_index_hashed(w->rbuf, (size_t)pi->length,
                                      cairn_repo_keys(ck->r)->mac, id, &tr);
    if (rc == CAIRN_ENOMEM)
        goto out;
    if (rc != 0) {
        snprintf(msg, sizeof(msg),
                 "pack trailer does not decode or authenticate: %s",
                 cairn_strerror(rc));
        why = msg;
    } else if (tr->npacks != 1 ||
               memcmp(tr->packs[0].id, pi->id, CAIRN_ID_LEN) != 0) {
        why = "pack contents do not hash to its name";
    } else if (!entries_match(&tr->packs[0], pi)) {
        why = "pack trailer does not match the index";
    }
    rc = 0;
    if (nbad > 0) {
        snprintf(msg, sizeof(msg),
                 "%u of %u blobs in the pack do not authenticate or do not "
                 "match their ids",
                 nbad, pi->nblobs);
        why = msg;
    }
    if (why != NULL)
        ck_pack_damaged(ck, p, 0, CAIRN_ECORRUPT, why);
out:
    cairn_sha256_free(sha);
    cairn_index_free(tr);
    return rc;
}

static void *worker_main(void *arg)
{
    struct ck_worker *w = arg;
    struct ck *ck = w->ck;
    size_t i;
    int rc, zero;

    for (;;) {
        if (atomic_load(&ck->fatal))
            break;
        if (ck_cancelled(ck)) {
            zero = 0;
            atomic_compare_exchange_strong(&ck->fatal, &zero, CAIRN_ECANCELED);
            break;
        }
        i = atomic_fetch_add(&ck->next, 1);
        if (i >= ck->ntodo)
            break;
        if ((rc = read_pack(w, &ck->packs[ck->todo[i]])) != 0) {
            zero = 0;
            atomic_compare_exchange_strong(&ck->fatal, &zero, rc);
            break;
        }
        atomic_fetch_add(&ck->packs_read, 1);
        ck_progress(ck, 0);
    }
    return NULL;
}

int ck_read_data(struct ck *ck)
{
    struct ck_worker *w;
    uint32_t rnd, t;
    size_t i, j, k;
    long ncpu;
    int n, rc = 0;

    if ((ck->todo = malloc((ck->npacks + 1) * sizeof(*ck->todo))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < ck->npacks; i++)
        if (!atomic_load(&ck->packs[i].damaged))
            ck->todo[ck->ntodo++] = (uint32_t)i;
    if (ck->o->subset_percent > 0 && ck->o->subset_percent < 100) {
        /* A random subset: partial Fisher-Yates shuffle. */
        k = (ck->ntodo * ck->o->subset_percent + 99) / 100;
        for (i = 0; i < k; i++) {
            if ((rc = cairn_random(&rnd, sizeof(rnd))) != 0)
                return rc;
            j = i + rnd % (ck->ntodo - i);
            t = ck->todo[i];
            ck->todo[i] = ck->todo[j];
            ck->todo[j] = t;
        }
        ck->ntodo = k;
    }
    for (i = 0; i < ck->ntodo; i++)
        ck->bytes_total += ck->packs[ck->todo[i]].info->length;
    ck_progress(ck, 1);
    if (ck->ntodo == 0)
        return 0;

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    n = ck->o->threads > 0 ? ck->o->threads : (ncpu > 0 ? (int)ncpu : 1);
    if (n > 256)
        n = 256;
    if ((size_t)n > ck->ntodo)
        n = (int)ck->ntodo;
    if ((w = calloc((size_t)n, sizeof(*w))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < (size_t)n; i++) {
        w[i].ck = ck;
        if ((w[i].codec = cairn_blob_codec_new(cairn_repo_keys(ck->r), 0)) ==
            NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
    }
    for (i = 1; i < (size_t)n; i++) {
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            break;
        w[i].started = 1;
    }
    worker_main(&w[0]);
    for (i = 1; i < (size_t)n; i++)
        if (w[i].started)
            pthread_join(w[i].tid, NULL);
    rc = atomic_load(&ck->fatal);
    ck->res->packs_read = atomic_load(&ck->packs_read);
    ck->res->bytes_read = atomic_load(&ck->bytes_read);
    ck_progress(ck, 1);
out:
    for (i = 0; i < (size_t)n; i++) {
        cairn_blob_codec_free(w[i].codec);
        free(w[i].rbuf);
        free(w[i].pbuf);
    }
    free(w);
    return rc;
}
