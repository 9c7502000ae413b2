/*
 * repo_index.c - the in-memory blob index: id -> pack, offset, lengths.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "repo_internal.h"

#define INITIAL_CAP 4096

static uint64_t id_hash(const uint8_t *id)
{
    return cairn_le64dec(id);
}

int repo_index_init(struct repo_index *ix)
{
    memset(ix, 0, sizeof(*ix));
    if (pthread_rwlock_init(&ix->lock, NULL) != 0)
        return CAIRN_ENOMEM;
    return 0;
}

void repo_index_destroy(struct repo_index *ix)
{
    free(ix->blobs);
    free(ix->table);
    free(ix->packs);
    free(ix->pack_slots);
    pthread_rwlock_destroy(&ix->lock);
}

/* Room for need blobs: the records grow by half, the table doubles to stay
 * at most 3/4 full (and is rebuilt from the records).  Write lock held. */
static int grow_blobs(struct repo_index *ix, size_t need)
{
    struct repo_blob *nb;
    uint32_t *nt;
    size_t ncap, i, j;

    if (need > UINT32_MAX - 1)
        return CAIRN_ERANGE;
    if (need > ix->blobs_cap) {
        ncap = ix->blobs_cap ? ix->blobs_cap + ix->blobs_cap / 2
                             : INITIAL_CAP;
        if (ncap < need)
            ncap = need;
        if ((nb = realloc(ix->blobs, ncap * sizeof(*nb))) == NULL)
            return CAIRN_ENOMEM;
        ix->blobs = nb;
        ix->blobs_cap = ncap;
    }
    if (need * 4 <= ix->cap * 3)
        return 0;
    ncap = ix->cap ? ix->cap : INITIAL_CAP;
    while (need * 4 > ncap * 3)
        ncap *= 2;
    if ((nt = calloc(ncap, sizeof(*nt))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < ix->n; i++) {
        j = id_hash(ix->blobs[i].id) & (ncap - 1);
        while (nt[j] != 0)
            j = (j + 1) & (ncap - 1);
        nt[j] = (uint32_t)(i + 1);
    }
    free(ix->table);
    ix->table = nt;
    ix->cap = ncap;
    return 0;
}

/* The table entry for id: its blob, or the empty entry where it would go.
 * The table must not be empty.  Lock held. */
static size_t table_find(const struct repo_index *ix, const uint8_t *id)
{
    size_t j = id_hash(id) & (ix->cap - 1);

    while (ix->table[j] != 0 &&
           memcmp(ix->blobs[ix->table[j] - 1].id, id, CAIRN_ID_LEN) != 0)
        j = (j + 1) & (ix->cap - 1);
    return j;
}

/* Find the number of a pack, or add it.  Write lock held. */
static int pack_number(struct repo_index *ix, const uint8_t id[CAIRN_ID_LEN],
                       uint32_t *out)
{
    size_t j, i;

    if ((size_t)(ix->npacks + 1) * 2 > ix->pack_slots_cap) {
        size_t ncap = ix->pack_slots_cap ? ix->pack_slots_cap * 2 : 1024;
        uint32_t *ns = calloc(ncap, sizeof(*ns));

        if (ns == NULL)
            return CAIRN_ENOMEM;
        for (i = 0; i < ix->npacks; i++) {
            j = id_hash(ix->packs[i]) & (ncap - 1);
            while (ns[j] != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = (uint32_t)i + 1;
        }
        free(ix->pack_slots);
        ix->pack_slots = ns;
        ix->pack_slots_cap = ncap;
    }
    j = id_hash(id) & (ix->pack_slots_cap - 1);
    while (ix->pack_slots[j] != 0) {
        if (memcmp(ix->packs[ix->pack_slots[j] - 1], id, CAIRN_ID_LEN) == 0) {
            *out = ix->pack_slots[j] - 1;
            return 0;
        }
        j = (j + 1) & (ix->pack_slots_cap - 1);
    }
    if (ix->npacks == ix->packs_cap) {
        uint32_t ncap = ix->packs_cap ? ix->packs_cap * 2 : 256;
        void *np = realloc(ix->packs, (size_t)ncap * CAIRN_ID_LEN);

        if (np == NULL)
            return CAIRN_ENOMEM;
        ix->packs = np;
        ix->packs_cap = ncap;
    }
    memcpy(ix->packs[ix->npacks], id, CAIRN_ID_LEN);
    ix->pack_slots[j] = ix->npacks + 1;
    *out = ix->npacks++;
    return 0;
}

int repo_index_has_pack(struct repo_index *ix, const uint8_t id[CAIRN_ID_LEN])
{
    size_t j;
    int found = 0;

    pthread_rwlock_rdlock(&ix->lock);
    if (ix->pack_slots_cap > 0) {
        j = id_hash(id) & (ix->pack_slots_cap - 1);
        while (ix->pack_slots[j] != 0) {
            if (memcmp(ix->packs[ix->pack_slots[j] - 1], id,
                       CAIRN_ID_LEN) == 0) {
                found = 1;
                break;
            }
            j = (j + 1) & (ix->pack_slots_cap - 1);
        }
    }
    pthread_rwlock_unlock(&ix->lock);
    return found;
}

int repo_index_add_pack(struct repo_index *ix, const struct cairn_pack_info *pi)
{
    uint32_t pn, b;
    size_t j;
    int rc;

    pthread_rwlock_wrlock(&ix->lock);
    if ((rc = pack_number(ix, pi->id, &pn)) != 0)
        goto out;
    if ((rc = grow_blobs(ix, ix->n + pi->nblobs)) != 0)
        goto out;
    for (b = 0; b < pi->nblobs; b++) {
        const struct cairn_index_entry *e = &pi->blobs[b];
        struct repo_blob *rb;

        j = table_find(ix, e->id);
        if (ix->table[j] != 0)
            continue;
        rb = &ix->blobs[ix->n];
        memcpy(rb->id, e->id, CAIRN_ID_LEN);
        rb->pack = pn;
        rb->offset = e->offset;
        rb->length = e->length;
        rb->raw_length = e->raw_length;
        rb->type = e->type;
        ix->table[j] = (uint32_t)(++ix->n);
    }
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

int cairn_repo_lookup(struct cairn_repo *r, const uint8_t id[CAIRN_ID_LEN],
                      struct cairn_blob_loc *out)
{
    struct repo_index *ix = &r->index;
    size_t j;
    int rc = CAIRN_ENOENT;

    pthread_rwlock_rdlock(&ix->lock);
    if (ix->cap > 0 && ix->table[j = table_find(ix, id)] != 0) {
        if (out != NULL) {
            const struct repo_blob *rb = &ix->blobs[ix->table[j] - 1];

            memcpy(out->pack, ix->packs[rb->pack], CAIRN_ID_LEN);
            out->offset = rb->offset;
            out->length = rb->length;
            out->raw_length = rb->raw_length;
            out->type = rb->type;
        }
        rc = 0;
    }
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

uint64_t cairn_repo_blob_count(struct cairn_repo *r)
{
    uint64_t n;

    pthread_rwlock_rdlock(&r->index.lock);
    n = r->index.n;
    pthread_rwlock_unlock(&r->index.lock);
    return n;
}

void cairn_repo_index_totals(struct cairn_repo *r, uint64_t *out_data_blobs,
                             uint64_t *out_tree_blobs, uint64_t *out_raw_bytes,
                             uint64_t *out_stored_bytes)
{
    uint64_t nd = 0, nt = 0, raw = 0, stored = 0;
    size_t i;

    pthread_rwlock_rdlock(&r->index.lock);
    for (i = 0; i < r->index.n; i++) {
        if (r->index.blobs[i].type == CAIRN_BLOB_TREE)
            nt++;
        else
            nd++;
        raw += r->index.blobs[i].raw_length;
        stored += r->index.blobs[i].length;
    }
    pthread_rwlock_unlock(&r->index.lock);
    if (out_data_blobs != NULL)
        *out_data_blobs = nd;
    if (out_tree_blobs != NULL)
        *out_tree_blobs = nt;
    if (out_raw_bytes != NULL)
        *out_raw_bytes = raw;
    if (out_stored_bytes != NULL)
        *out_stored_bytes = stored;
}

uint64_t cairn_repo_pack_count(struct cairn_repo *r)
{
    uint64_t n;

    pthread_rwlock_rdlock(&r->index.lock);
    n = r->index.npacks;
    pthread_rwlock_unlock(&r->index.lock);
    return n;
}

struct cairn_pack_info *repo_pack_info_dup(const uint8_t id[CAIRN_ID_LEN],
                                           uint64_t length,
                                           const struct cairn_index_entry *b,
                                           uint32_t n)
{
    struct cairn_pack_info *pi;
    uint8_t *refs;
    size_t size, i;

    size = sizeof(*pi) + (size_t)n * sizeof(*b);
    for (i = 0; i < n; i++)
        size += (size_t)b[i].nrefs * CAIRN_ID_LEN;
    if ((pi = malloc(size)) == NULL)
        return NULL;
    memcpy(pi->id, id, CAIRN_ID_LEN);
    pi->length = length;
    pi->nblobs = n;
    pi->blobs = (struct cairn_index_entry *)(pi + 1);
    refs = (uint8_t *)(pi->blobs + n);
    for (i = 0; i < n; i++) {
        pi->blobs[i] = b[i];
        pi->blobs[i].refs = NULL;
        if (b[i].nrefs > 0) {
            memcpy(refs, b[i].refs, (size_t)b[i].nrefs * CAIRN_ID_LEN);
            pi->blobs[i].refs = (uint8_t(*)[CAIRN_ID_LEN])refs;
            refs += (size_t)b[i].nrefs * CAIRN_ID_LEN;
        }
    }
    return pi;
}

struct load_ctx {
    struct cairn_repo *r;
    char **names;
    uint64_t *sizes;
    size_t n, cap;
};

static int collect_name(void *arg, const char *name, uint64_t size)
{
    struct load_ctx *lc = arg;

    if (lc->n == lc->cap) {
        size_t ncap = lc->cap ? lc->cap * 2 : 64;
        char **nn = realloc(lc->names, ncap * sizeof(*nn));
        uint64_t *ns;

        if (nn == NULL)
            return CAIRN_ENOMEM;
        lc->names = nn;
        if ((ns = realloc(lc->sizes, ncap * sizeof(*ns))) == NULL)
            return CAIRN_ENOMEM;
        lc->sizes = ns;
        lc->cap = ncap;
    }
    if ((lc->names[lc->n] = strdup(name)) == NULL)
        return CAIRN_ENOMEM;
    lc->sizes[lc->n++] = size;
    return 0;
}

static void load_ctx_free(struct load_ctx *lc)
{
    size_t i;

    for (i = 0; i < lc->n; i++)
        free(lc->names[i]);
    free(lc->names);
    free(lc->sizes);
    lc->names = NULL;
    lc->sizes = NULL;
    lc->n = lc->cap = 0;
}

/*
 * Adopt a pack that no index object names: read its trailer (the pack's
 * own authenticated index) and add its blobs.  A pack whose trailer does
 * not verify is left alone (check reports it; it holds nothing we need).
 */
static int adopt_pack(struct cairn_repo *r, const char *name, uint64_t size)
{
    uint8_t footer[CAIRN_PACK_FOOTER_LEN];
    uint8_t *trailer = NULL;
    uint32_t tlen;
    struct cairn_index *ti = NULL;
    struct cairn_pack_info *pi = NULL, **no;
    uint8_t id[CAIRN_ID_LEN];
    int rc;

    if (size < CAIRN_PACK_HEADER_LEN + CAIRN_PACK_FOOTER_LEN)
        return CAIRN_ECORRUPT;
    if ((rc = cairn_store_get_range(r->store, CAIRN_OBJ_PACK, name,
                                    size - CAIRN_PACK_FOOTER_LEN,
                                    CAIRN_PACK_FOOTER_LEN, footer)) != 0)
        goto err0;
    if ((rc = cairn_pack_footer_decode(footer, &tlen)) != 0)
        goto err0;
    if ((uint64_t)tlen > size - CAIRN_PACK_HEADER_LEN - CAIRN_PACK_FOOTER_LEN) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if ((trailer = malloc(tlen ? tlen : 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((rc = cairn_store_get_range(r->store, CAIRN_OBJ_PACK, name,
                                    size - CAIRN_PACK_FOOTER_LEN - tlen, tlen,
                                    trailer)) != 0)
        goto err1;
    if ((rc = cairn_index_decode(trailer, tlen, r->keys.mac, &ti)) != 0)
        goto err1;
    if (ti->npacks != 1) {
        rc = CAIRN_ECORRUPT;
        goto err2;
    }
    /* Copy the one pack into a stand-alone pack info we keep. */
    if ((rc = cairn_hex_decode(name, id, CAIRN_ID_LEN)) != 0)
        goto err2;
    if ((pi = repo_pack_info_dup(id, size, ti->packs[0].blobs,
                                 ti->packs[0].nblobs)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    if ((no = realloc(r->orphans, (r->norphans + 1) * sizeof(*no))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err3;
    }
    r->orphans = no;
    if ((rc = repo_index_add_pack(&r->index, pi)) != 0)
        goto err3;
    r->orphans[r->norphans++] = pi;
    cairn_index_free(ti);
    free(trailer);
    return 0;

err3:
    cairn_pack_info_free(pi);
err2:
    cairn_index_free(ti);
err1:
    free(trailer);
err0:
    return rc;
}

int cairn_repo_load_index(struct cairn_repo *r, uint32_t *out_bad)
{
    struct load_ctx lc = {r, NULL, NULL, 0, 0};
    struct cairn_index *idx;
    uint8_t *buf, id[CAIRN_ID_LEN];
    size_t len, i;
    uint32_t p, bad = 0;
    int rc;

    if ((rc = cairn_store_list(r->store, CAIRN_OBJ_INDEX, collect_name,
                               &lc)) != 0)
        goto out;
    for (i = 0; i < lc.n; i++) {
        if ((rc = cairn_store_get(r->store, CAIRN_OBJ_INDEX, lc.names[i],
                                  &buf, &len)) != 0) {
            if (rc == CAIRN_ENOMEM)
                goto out;
            cairn_log(CAIRN_LOG_WARN, "index %s: %s", lc.names[i],
                      cairn_strerror(rc));
            bad++;
            continue;
        }
        rc = cairn_index_decode(buf, len, r->keys.mac, &idx);
        free(buf);
        if (rc != 0) {
            if (rc == CAIRN_ENOMEM)
                goto out;
            cairn_log(CAIRN_LOG_WARN, "index %s: %s", lc.names[i],
                      cairn_strerror(rc));
            bad++;
            continue;
        }
        for (p = 0; p < idx->npacks && rc == 0; p++)
            rc = repo_index_add_pack(&r->index, &idx->packs[p]);
        cairn_index_free(idx);
        if (rc != 0)
            goto out;
    }
    load_ctx_free(&lc);

    /* Packs no index names: adopt what an interrupted backup stored. */
    if ((rc = cairn_store_list(r->store, CAIRN_OBJ_PACK, collect_name,
                               &lc)) != 0)
        goto out;
    for (i = 0; i < lc.n; i++) {
        if (cairn_hex_decode(lc.names[i], id, CAIRN_ID_LEN) != 0)
            continue;
        if (repo_index_has_pack(&r->index, id))
            continue;
        if ((rc = adopt_pack(r, lc.names[i], lc.sizes[i])) != 0) {
            if (rc == CAIRN_ENOMEM)
                goto out;
            cairn_log(CAIRN_LOG_WARN,
                      "pack %s is in no index and cannot be read (%s); "
                      "ignored",
                      lc.names[i], cairn_strerror(rc));
            rc = 0;
        }
    }
    if (r->norphans > 0)
        cairn_log(CAIRN_LOG_INFO,
                  "%zu pack(s) left by an interrupted backup adopted",
                  r->norphans);
out:
    load_ctx_free(&lc);
    if (out_bad != NULL)
        *out_bad = bad;
    return rc;
}
