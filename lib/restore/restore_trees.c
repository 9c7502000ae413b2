/*
 * restore_trees.c - read every tree a restore needs before planning it.
 *
 * Planning walks the trees depth first and would otherwise read them one
 * at a time, one request each: over HTTP, a round trip per directory.
 * Here they are read level by level (breadth first from the starting
 * tree): the trees of one level are sorted by pack and offset, blobs at
 * most GAP_MAX apart are read with one ranged read (at most RUN_MAX), and
 * the reads go to rs->nthreads workers, each with its own codec.  The
 * decoded trees are kept sorted by id; planning takes them from there.
 *
 * Only running out of memory (or cancellation) stops the restore here: a
 * tree that cannot be found, read, opened or decoded is simply not
 * prefetched; the count before planning (restore.c) reads it again the
 * ordinary way and keeps it, or why it could not be read, for planning to
 * report.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"
#include "cairn/tree.h"
#include "restore/restore_int.h"

#define RUN_MAX (4u * 1024 * 1024) /* largest single ranged read */
#define GAP_MAX (64u * 1024)       /* bytes read and dropped between blobs */

/* One tree of the level being read. */
struct tjob {
    uint8_t id[CAIRN_ID_LEN];
    struct cairn_blob_loc loc;
    struct cairn_tree *t; /* decoded, or NULL */
};

/* Jobs [j0, j1) read with one ranged read of [start, end) of their pack. */
struct trun {
    size_t j0, j1;
    uint64_t start, end;
};

struct tpool {
    struct rs *rs;
    struct tjob *jobs;
    struct trun *runs;
    size_t nruns;
    atomic_size_t next;
    atomic_int fatal; /* CAIRN_ENOMEM, or 0 */
};

struct tworker {
    struct tpool *p;
    struct cairn_blob_codec *codec;
    uint8_t *rbuf, *pbuf;
    size_t rcap, pcap;
    pthread_t tid;
    int started;
};

static int grow(uint8_t **p, size_t *cap, size_t need)
{
    uint8_t *n;

    if (need == 0)
        need = 1;
    if (need <= *cap)
        return 0;
    if ((n = realloc(*p, need)) == NULL)
        return CAIRN_ENOMEM;
    *p = n;
    *cap = need;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, CAIRN_ID_LEN);
}

static int cmp_ctree(const void *a, const void *b)
{
    const struct rs_ctree *x = a, *y = b;

    return memcmp(x->id, y->id, CAIRN_ID_LEN);
}

static int cmp_job(const void *a, const void *b)
{
    const struct tjob *x = a, *y = b;
    int d = memcmp(x->loc.pack, y->loc.pack, CAIRN_ID_LEN);

    if (d != 0)
        return d;
    if (x->loc.offset != y->loc.offset)
        return x->loc.offset < y->loc.offset ? -1 : 1;
    return 0;
}

int rs_tree_get(const struct rs *rs, const uint8_t id[CAIRN_ID_LEN],
                struct cairn_tree **t)
{
    const struct rs_ctree *c = NULL;

    if (rs->ncached > 0)
        c = bsearch(id, rs->cached, rs->ncached, sizeof(*rs->cached), cmp_id);
    if (c == NULL)
        return CAIRN_ENOENT;
    *t = c->t;
    return c->t != NULL ? 0 : c->err;
}

/* Append a tree to rs->cached (unsorted until rs_trees_sort). */
static int append(struct rs *rs, const uint8_t id[CAIRN_ID_LEN],
                  struct cairn_tree *t, int err)
{
    struct rs_ctree *nc;

    if (rs->ncached == rs->cached_cap) {
        size_t ncap = rs->cached_cap ? rs->cached_cap * 2 : 256;

        if (ncap > SIZE_MAX / sizeof(*nc) ||
            (nc = realloc(rs->cached, ncap * sizeof(*nc))) == NULL)
            return CAIRN_ENOMEM;
        rs->cached = nc;
        rs->cached_cap = ncap;
    }
    memcpy(rs->cached[rs->ncached].id, id, CAIRN_ID_LEN);
    rs->cached[rs->ncached].t = t;
    rs->cached[rs->ncached++].err = t != NULL ? 0 : err;
    return 0;
}

int rs_tree_keep(struct rs *rs, const uint8_t id[CAIRN_ID_LEN],
                 struct cairn_tree *t, int err)
{
    struct rs_ctree c;
    size_t lo = 0, hi = rs->ncached, mid;
    int rc;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (memcmp(rs->cached[mid].id, id, CAIRN_ID_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if ((rc = append(rs, id, t, err)) != 0)
        return rc;
    c = rs->cached[rs->ncached - 1];
    memmove(&rs->cached[lo + 1], &rs->cached[lo],
            (rs->ncached - 1 - lo) * sizeof(c));
    rs->cached[lo] = c;
    return 0;
}

void rs_trees_free(struct rs *rs)
{
    size_t i;

    for (i = 0; i < rs->ncached; i++)
        cairn_tree_free(rs->cached[i].t);
    free(rs->cached);
    rs->cached = NULL;
    rs->ncached = rs->cached_cap = 0;
}

/* Read, open and decode the trees of one run; failures leave them NULL. */
static int do_run(struct tworker *w, const struct trun *run)
{
    struct tpool *p = w->p;
    struct rs *rs = p->rs;
    char name[2 * CAIRN_ID_LEN + 1];
    struct tjob *j;
    size_t k;
    int rc;

    if (grow(&w->rbuf, &w->rcap, (size_t)(run->end - run->start)) != 0)
        return CAIRN_ENOMEM;
    cairn_hex_encode(p->jobs[run->j0].loc.pack, CAIRN_ID_LEN, name);
    rc = cairn_store_get_range(rs->store, CAIRN_OBJ_PACK, name, run->start,
                               (size_t)(run->end - run->start), w->rbuf);
    if (rc == CAIRN_ENOMEM)
        return rc;
    if (rc != 0)
        return 0; /* planning reads them one by one and reports */
    for (k = run->j0; k < run->j1; k++) {
        j = &p->jobs[k];
        if (grow(&w->pbuf, &w->pcap, j->loc.raw_length) != 0)
            return CAIRN_ENOMEM;
        rc = cairn_blob_open(w->codec, CAIRN_BLOB_TREE, j->id,
                             w->rbuf + (j->loc.offset - run->start),
                             j->loc.length, w->pbuf, j->loc.raw_length, 0);
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rc != 0)
            continue;
        rc = cairn_tree_decode(w->pbuf, j->loc.raw_length, &j->t);
        if (rc == CAIRN_ENOMEM)
            return rc;
        if (rc != 0)
            j->t = NULL;
    }
    return 0;
}

static void *tworker_main(void *arg)
{
    struct tworker *w = arg;
    struct tpool *p = w->p;
    size_t i;
    int zero, rc;

    for (;;) {
        if (atomic_load(&p->fatal) || rs_cancelled(p->rs))
            return NULL;
        i = atomic_fetch_add(&p->next, 1);
        if (i >= p->nruns)
            return NULL;
        if ((rc = do_run(w, &p->runs[i])) != 0) {
            zero = 0;
            atomic_compare_exchange_strong(&p->fatal, &zero, rc);
            return NULL;
        }
    }
}

/* Group the sorted jobs into runs; returns the number of runs. */
static size_t make_runs(const struct tjob *jobs, size_t n, struct trun *runs)
{
    size_t i, j, nr = 0;
    uint64_t start, end, xe;

    for (i = 0; i < n; i = j) {
        start = jobs[i].loc.offset;
        end = start + jobs[i].loc.length;
        for (j = i + 1; j < n; j++) {
            if (memcmp(jobs[j].loc.pack, jobs[i].loc.pack, CAIRN_ID_LEN) !=
                    0 ||
                jobs[j].loc.offset > end + GAP_MAX)
                break;
            xe = (uint64_t)jobs[j].loc.offset + jobs[j].loc.length;
            if ((xe > end ? xe : end) - start > RUN_MAX)
                break;
            if (xe > end)
                end = xe;
        }
        runs[nr].j0 = i;
        runs[nr].j1 = j;
        runs[nr].start = start;
        runs[nr].end = end;
        nr++;
    }
    return nr;
}

/* Read the jobs with the workers (started here, joined before return). */
static int read_level(struct tpool *p, struct tworker *w, int nw)
{
    int i, n = nw;

    if ((size_t)n > p->nruns)
        n = (int)p->nruns;
    atomic_store(&p->next, 0);
    for (i = 1; i < n; i++) {
        w[i].started = pthread_create(&w[i].tid, NULL, tworker_main,
                                      &w[i]) == 0;
        if (!w[i].started)
            break; /* fewer workers */
    }
    tworker_main(&w[0]);
    for (i = 1; i < n; i++)
        if (w[i].started) {
            pthread_join(w[i].tid, NULL);
            w[i].started = 0;
        }
    return atomic_load(&p->fatal);
}

/*
 * Read every tree below root (root included) into rs->cached, sorted by
 * id.  0, CAIRN_ENOMEM or CAIRN_ECANCELED; trees that could not be read
 * are left out (see above).
 */
int rs_prefetch_trees(struct rs *rs, const uint8_t root[CAIRN_ID_LEN])
{
    struct tpool p;
    struct tworker *w = NULL;
    uint8_t (*cur)[CAIRN_ID_LEN] = NULL, (*nxt)[CAIRN_ID_LEN] = NULL;
    size_t ncur = 0, nnxt = 0, capnxt = 0, i, k, n;
    const struct cairn_tree_entry *e;
    struct cairn_tree *seen;
    void *tmp;
    int nw = rs->nthreads > 0 ? rs->nthreads : 1, rc = 0;

    memset(&p, 0, sizeof(p));
    p.rs = rs;
    atomic_init(&p.next, 0);
    atomic_init(&p.fatal, 0);
    if ((w = calloc((size_t)nw, sizeof(*w))) == NULL ||
        (cur = malloc(CAIRN_ID_LEN)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto done;
    }
    for (i = 0; i < (size_t)nw; i++) {
        w[i].p = &p;
        if ((w[i].codec = cairn_blob_codec_new(cairn_repo_keys(rs->repo),
                                               0)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto done;
        }
    }
    memcpy(cur[0], root, CAIRN_ID_LEN);
    ncur = 1;

    while (ncur > 0) {
        if (rs_cancelled(rs)) {
            rc = CAIRN_ECANCELED;
            goto done;
        }
        /* This level's ids: once each, and not read already. */
        qsort(cur, ncur, CAIRN_ID_LEN, cmp_id);
        if ((p.jobs = calloc(ncur, sizeof(*p.jobs))) == NULL ||
            (p.runs = calloc(ncur, sizeof(*p.runs))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto done;
        }
        for (i = 0, n = 0; i < ncur; i++) {
            struct tjob *j = &p.jobs[n];

            if ((i > 0 && memcmp(cur[i], cur[i - 1], CAIRN_ID_LEN) == 0) ||
                rs_tree_get(rs, cur[i], &seen) != CAIRN_ENOENT)
                continue;
            memcpy(j->id, cur[i], CAIRN_ID_LEN);
            rc = cairn_repo_lookup(rs->repo, j->id, &j->loc);
            if (rc == CAIRN_ENOMEM)
                goto done;
            if (rc != 0 || j->loc.type != CAIRN_BLOB_TREE ||
                j->loc.raw_length > CAIRN_BLOB_MAX ||
                j->loc.length > RUN_MAX)
                continue; /* planning reads (and reports) it */
            rc = 0;
            n++;
        }
        qsort(p.jobs, n, sizeof(*p.jobs), cmp_job);
        p.nruns = make_runs(p.jobs, n, p.runs);
        if (p.nruns > 0 && (rc = read_level(&p, w, nw)) != 0)
            goto done;
        if (rs_cancelled(rs)) {
            rc = CAIRN_ECANCELED;
            goto done;
        }

        /* Keep the trees; their subtrees are the next level. */
        nnxt = 0;
        for (k = 0; k < n; k++) {
            struct cairn_tree *t = p.jobs[k].t;

            if (t == NULL)
                continue;
            if ((rc = append(rs, p.jobs[k].id, t, 0)) != 0)
                goto done;
            p.jobs[k].t = NULL;
            for (i = 0; i < t->nentries; i++) {
                e = &t->entries[i];
                if (e->type != CAIRN_NODE_DIR || !e->has_subtree)
                    continue;
                if (nnxt == capnxt) {
                    size_t ncap = capnxt ? capnxt * 2 : 256;

                    if (ncap > SIZE_MAX / CAIRN_ID_LEN ||
                        (tmp = realloc(nxt, ncap * CAIRN_ID_LEN)) == NULL) {
                        rc = CAIRN_ENOMEM;
                        goto done;
                    }
                    nxt = tmp;
                    capnxt = ncap;
                }
                memcpy(nxt[nnxt++], e->subtree, CAIRN_ID_LEN);
            }
        }
        qsort(rs->cached, rs->ncached, sizeof(*rs->cached), cmp_ctree);
        free(p.jobs);
        free(p.runs);
        p.jobs = NULL;
        p.runs = NULL;
        free(cur);
        cur = nxt;
        ncur = nnxt;
        nxt = NULL;
        nnxt = capnxt = 0;
    }

done:
    if (p.jobs != NULL) {
        for (k = 0; k < ncur; k++)
            cairn_tree_free(p.jobs[k].t);
        free(p.jobs);
    }
    free(p.runs);
    free(cur);
    free(nxt);
    if (w != NULL) {
        for (i = 0; i < (size_t)nw; i++) {
            cairn_blob_codec_free(w[i].codec);
            free(w[i].rbuf);
            free(w[i].pbuf);
        }
        free(w);
    }
    /* Trees read before a failure stay in rs->cached (rs_trees_free). */
    return rc;
}
