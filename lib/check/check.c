/*
 * check.c - verify an archive.
 *
 * Order of work:
 *   1. the config and key files decode;
 *   2. every index object decodes and authenticates; its packs and blobs
 *      go into tables of this check's own (the repo's loaded index is not
 *      used, so a check sees exactly what the store holds);
 *   3. the store's packs are listed: an indexed pack missing or of the
 *      wrong length is damaged; a stored pack in no index is unreferenced
 *      (information, not an error);
 *   4. every snapshot decodes;
 *   5. with read_data: the chosen packs are read whole by a pool of
 *      workers: hash, trailer, and every blob verified (id included);
 *   6. every tree reachable from a snapshot is read once; every blob it
 *      names must be indexed.  Files whose content lies in a damaged pack
 *      or is missing are reported per snapshot and path (a subtree known
 *      to be clean is not walked again).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/blob.h"
#include "cairn/check.h"
#include "cairn/err.h"
#include "cairn/pack.h"
#include "cairn/snapshot.h"
#include "cairn/store.h"
#include "cairn/tree.h"
#include "check/check_int.h"

static int idmap_grow(struct idmap *m)
{
    struct idslot *ns, *old = m->s;
    size_t ncap = m->cap ? m->cap * 2 : 1024, i, h;

    if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < m->cap; i++) {
        if (!old[i].used)
            continue;
        for (h = cairn_le64dec(old[i].key) & (ncap - 1); ns[h].used;
             h = (h + 1) & (ncap - 1))
            ;
        ns[h] = old[i];
    }
    free(old);
    m->s = ns;
    m->cap = ncap;
    return 0;
}

/* The slot of key, or NULL. */
static struct idslot *idmap_find(const struct idmap *m, const uint8_t *key)
{
    size_t h;

    if (m->cap == 0)
        return NULL;
    for (h = cairn_le64dec(key) & (m->cap - 1); m->s[h].used;
         h = (h + 1) & (m->cap - 1))
        if (memcmp(m->s[h].key, key, CAIRN_ID_LEN) == 0)
            return &m->s[h];
    return NULL;
}

/* Insert key (if absent) with val; *out_slot is its slot either way. */
static int idmap_put(struct idmap *m, const uint8_t *key, uint32_t val,
                     struct idslot **out_slot, int *out_new)
{
    struct idslot *s;
    size_t h;
    int rc;

    if ((s = idmap_find(m, key)) != NULL) {
        *out_slot = s;
        *out_new = 0;
        return 0;
    }
    if ((m->n + 1) * 2 > m->cap && (rc = idmap_grow(m)) != 0)
        return rc;
    for (h = cairn_le64dec(key) & (m->cap - 1); m->s[h].used;
         h = (h + 1) & (m->cap - 1))
        ;
    s = &m->s[h];
    memcpy(s->key, key, CAIRN_ID_LEN);
    s->val = val;
    s->used = 1;
    m->n++;
    *out_slot = s;
    *out_new = 1;
    return 0;
}

int64_t ck_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ck_cancelled(const struct ck *ck)
{
    return ck->o->cancel != NULL && *ck->o->cancel != 0;
}

void ck_event(struct ck *ck, int kind, const char *path, const char *name,
              int err, const char *detail)
{
    struct cairn_event ev;

    if (ck->o->on_event == NULL)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.path = path;
    ev.name = name;
    ev.err = err;
    ev.detail = detail;
    pthread_mutex_lock(&ck->ev_lock);
    ck->o->on_event(ck->o->event_arg, &ev);
    pthread_mutex_unlock(&ck->ev_lock);
}

/* A problem: counted as an error and reported. */
void ck_problem(struct ck *ck, const char *name, int err, const char *detail)
{
    atomic_fetch_add(&ck->errors, 1);
    ck_event(ck, CAIRN_EV_PROBLEM, NULL, name, err, detail);
}

void ck_pack_damaged(struct ck *ck, struct ck_pack *p, int lost, int err,
                     const char *why)
{
    if (lost)
        p->lost = 1;
    if (atomic_exchange(&p->damaged, 1))
        return;
    atomic_fetch_add(&ck->errors, 1);
    atomic_fetch_add(&ck->damaged_packs, 1);
    ck_event(ck, CAIRN_EV_DAMAGED_PACK, NULL, p->name, err, why);
}

void ck_progress(struct ck *ck, int force)
{
    struct cairn_progress p;
    struct cairn_event ev;
    int64_t now = ck_now();

    if (ck->o->on_event == NULL)
        return;
    if (force)
        pthread_mutex_lock(&ck->ev_lock);
    else if (pthread_mutex_trylock(&ck->ev_lock) != 0)
        return; /* someone else is reporting right now */
    if (force || now - ck->last_progress >= 250000000) {
        ck->last_progress = now;
        memset(&p, 0, sizeof(p));
        p.files_done = atomic_load(&ck->packs_read); /* packs */
        p.files_total = ck->ntodo;
        p.bytes_done = atomic_load(&ck->bytes_read);
        p.bytes_total = ck->bytes_total;
        p.errors = atomic_load(&ck->errors);
        p.elapsed_ns = now - ck->t0;
        p.totals_final = 1;
        memset(&ev, 0, sizeof(ev));
        ev.kind = CAIRN_EV_PROGRESS;
        ev.progress = &p;
        ck->o->on_event(ck->o->event_arg, &ev);
    }
    pthread_mutex_unlock(&ck->ev_lock);
}

int ck_grow(uint8_t **p, size_t *cap, size_t need)
{
    uint8_t *n;

    if (need <= *cap)
        return 0;
    if ((n = realloc(*p, need)) == NULL)
        return CAIRN_ENOMEM;
    *p = n;
    *cap = need;
    return 0;
}

/* Names of the objects of one type. */
struct names {
    char **v;
    size_t n, cap;
    uint64_t *sizes;
};

static int names_add(void *arg, const char *name, uint64_t size)
{
    struct names *nm = arg;
    char **nv;
    uint64_t *ns;

    if (nm->n == nm->cap) {
        size_t ncap = nm->cap ? nm->cap * 2 : 64;

        if ((nv = realloc(nm->v, ncap * sizeof(*nv))) == NULL)
            return CAIRN_ENOMEM;
        nm->v = nv;
        if ((ns = realloc(nm->sizes, ncap * sizeof(*ns))) == NULL)
            return CAIRN_ENOMEM;
        nm->sizes = ns;
        nm->cap = ncap;
    }
    if ((nm->v[nm->n] = strdup(name)) == NULL)
        return CAIRN_ENOMEM;
    nm->sizes[nm->n++] = size;
    return 0;
}

static void names_free(struct names *nm)
{
    size_t i;

    for (i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
    free(nm->sizes);
    memset(nm, 0, sizeof(*nm));
}

static int list_names(struct ck *ck, enum cairn_obj_type type,
                      struct names *out)
{
    memset(out, 0, sizeof(*out));
    return cairn_store_list(ck->store, type, names_add, out);
}

/* 1. Config and key files. */
static int check_config(struct ck *ck)
{
    struct cairn_keyfile_info info;
    struct cairn_config cfg;
    struct names nm;
    uint8_t *buf;
    size_t len, i;
    char msg[160];
    int rc;

    rc = cairn_store_get(ck->store, CAIRN_OBJ_CONFIG, "config", &buf, &len);
    if (rc == CAIRN_ENOMEM)
        return rc;
    if (rc == 0) {
        rc = cairn_config_decode(buf, len, cairn_repo_keys(ck->r)->mac, &cfg);
        free(buf);
    }
    if (rc != 0)
        ck_problem(ck, "config", rc, "the config cannot be read or verified");
    if ((rc = list_names(ck, CAIRN_OBJ_KEY, &nm)) != 0)
        goto out;
    for (i = 0; i < nm.n; i++) {
        rc = cairn_store_get(ck->store, CAIRN_OBJ_KEY, nm.v[i], &buf, &len);
        if (rc == CAIRN_ENOMEM)
            goto out;
        if (rc == 0) {
            rc = cairn_keyfile_info(buf, len, &info);
            free(buf);
        }
        if (rc != 0) {
            snprintf(msg, sizeof(msg), "key file does not decode: %s",
                     cairn_strerror(rc));
            ck_problem(ck, nm.v[i], rc, msg);
        }
    }
    rc = 0;
out:
    names_free(&nm);
    return rc;
}

/* 2. Index objects into the pack and blob tables. */
static int add_index(struct ck *ck, struct cairn_index *idx)
{
    const struct cairn_pack_info *pi;
    struct idslot *slot;
    struct ck_pack *np;
    struct ck_blob *nb;
    uint32_t i, j;
    size_t need;
    int isnew, rc;

    for (i = 0; i < idx->npacks; i++) {
        pi = &idx->packs[i];
        if ((rc = idmap_put(&ck->pack_map, pi->id, (uint32_t)ck->npacks, &slot,
                            &isnew)) != 0)
            return rc;
        if (!isnew)
            continue; /* listed by an earlier index object too */
        if ((np = realloc(ck->packs, (ck->npacks + 1) * sizeof(*np))) == NULL)
            return CAIRN_ENOMEM;
        ck->packs = np;
        np = &ck->packs[ck->npacks];
        memset(np, 0, sizeof(*np));
        np->info = pi;
        np->first_blob = ck->nblobs;
        cairn_hex_encode(pi->id, CAIRN_ID_LEN, np->name);
        atomic_init(&np->damaged, 0);
        need = ck->nblobs + pi->nblobs;
        if ((nb = realloc(ck->blobs, need * sizeof(*nb))) == NULL && need)
            return CAIRN_ENOMEM;
        ck->blobs = nb;
        for (j = 0; j < pi->nblobs; j++) {
            nb = &ck->blobs[ck->nblobs];
            nb->pack = (uint32_t)ck->npacks;
            nb->next = NONE;
            nb->bad = 0;
            nb->ent = &pi->blobs[j];
            if ((rc = idmap_put(&ck->blob_map, pi->blobs[j].id,
                                (uint32_t)ck->nblobs, &slot, &isnew)) != 0)
                return rc;
            if (!isnew) {
                /* A second copy: chain it behind the first. */
                nb->next = ck->blobs[slot->val].next;
                ck->blobs[slot->val].next = (uint32_t)ck->nblobs;
            }
            ck->nblobs++;
        }
        ck->npacks++;
    }
    return 0;
}

static int check_indexes(struct ck *ck)
{
    struct cairn_index *idx;
    struct names nm;
    uint8_t *buf;
    size_t len, i;
    char msg[160];
    int rc;

    if ((rc = list_names(ck, CAIRN_OBJ_INDEX, &nm)) != 0)
        goto out;
    if ((ck->indexes = calloc(nm.n + 1, sizeof(*ck->indexes))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    for (i = 0; i < nm.n; i++) {
        if (ck_cancelled(ck)) {
            rc = CAIRN_ECANCELED;
            goto out;
        }
        rc = cairn_store_get(ck->store, CAIRN_OBJ_INDEX, nm.v[i], &buf, &len);
        if (rc == CAIRN_ENOMEM)
            goto out;
        if (rc == 0) {
            rc =
                cairn_index_decode(buf, len, cairn_repo_keys(ck->r)->mac, &idx);
            free(buf);
        }
        if (rc == CAIRN_ENOMEM)
            goto out;
        if (rc != 0) {
            snprintf(msg, sizeof(msg),
                     "index object does not decode or authenticate: %s",
                     cairn_strerror(rc));
            ck_problem(ck, nm.v[i], rc, msg);
            continue;
        }
        ck->indexes[ck->nindexes++] = idx;
        if ((rc = add_index(ck, idx)) != 0)
            goto out;
    }
    rc = 0;
out:
    names_free(&nm);
    return rc;
}

/* 3. Stored packs against the index. */
static int check_packs_stored(struct ck *ck)
{
    uint8_t id[CAIRN_ID_LEN];
    struct idslot *slot;
    struct ck_pack *p;
    struct names nm;
    char msg[160];
    size_t i;
    int rc;

    if ((rc = list_names(ck, CAIRN_OBJ_PACK, &nm)) != 0)
        goto out;
    for (i = 0; i < nm.n; i++) {
        if (strlen(nm.v[i]) != 2 * CAIRN_ID_LEN ||
            cairn_hex_decode(nm.v[i], id, CAIRN_ID_LEN) != 0) {
            ck_problem(ck, nm.v[i], CAIRN_ECORRUPT,
                       "stored pack has an invalid name");
            continue;
        }
        if ((slot = idmap_find(&ck->pack_map, id)) == NULL) {
            ck->res->unreferenced_packs++;
            ck_event(ck, CAIRN_EV_INFO, NULL, nm.v[i], 0,
                     "pack is not in any index (unreferenced, e.g. left by "
                     "an interrupted backup); not an error");
            continue;
        }
        p = &ck->packs[slot->val];
        p->stored = 1;
        p->stored_size = nm.sizes[i];
    }
    for (i = 0; i < ck->npacks; i++) {
        p = &ck->packs[i];
        if (!p->stored) {
            ck_pack_damaged(ck, p, 1, CAIRN_ENOENT, "pack is missing");
        } else if (p->stored_size != p->info->length) {
            snprintf(msg, sizeof(msg),
                     "pack has the wrong length: %llu bytes stored, %llu "
                     "indexed",
                     (unsigned long long)p->stored_size,
                     (unsigned long long)p->info->length);
            ck_pack_damaged(ck, p, 1, CAIRN_ECORRUPT, msg);
        }
    }
    rc = 0;
out:
    names_free(&nm);
    return rc;
}

/* 4. Snapshots. */
static int check_snapshots(struct ck *ck, struct cairn_snapshot ***out_v,
                           size_t *out_n)
{
    struct cairn_snapshot **v = NULL, *s;
    char hex[2 * CAIRN_ID_LEN + 1], msg[160];
    uint32_t bad = 0, reported = 0;
    struct names nm;
    size_t n = 0, i, j;
    uint8_t *buf;
    size_t len;
    int rc;

    memset(&nm, 0, sizeof(nm));
    rc = cairn_repo_list_snapshots(ck->r, &v, &n, &bad);
    if (rc != 0)
        goto err0;
    if ((rc = list_names(ck, CAIRN_OBJ_SNAPSHOT, &nm)) != 0)
        goto err1;
    for (i = 0; i < nm.n; i++) {
        for (j = 0; j < n; j++) {
            cairn_hex_encode(v[j]->id, CAIRN_ID_LEN, hex);
            if (strcmp(hex, nm.v[i]) == 0)
                break;
        }
        if (j < n)
            continue;
        /* Not among the good ones: find out why. */
        rc =
            cairn_store_get(ck->store, CAIRN_OBJ_SNAPSHOT, nm.v[i], &buf, &len);
        if (rc == CAIRN_ENOMEM)
            goto err1;
        if (rc == 0) {
            rc = cairn_snapshot_decode(buf, len, cairn_repo_keys(ck->r), &s);
            free(buf);
            if (rc == 0) {
                cairn_hex_encode(s->id, CAIRN_ID_LEN, hex);
                cairn_snapshot_free(s);
                if (strcmp(hex, nm.v[i]) == 0)
                    continue; /* stored after the listing: fine */
                rc = CAIRN_ECORRUPT;
            }
        }
        if (rc == CAIRN_ENOMEM)
            goto err1;
        snprintf(msg, sizeof(msg), "snapshot does not decode: %s",
                 cairn_strerror(rc));
        ck_problem(ck, nm.v[i], rc, msg);
        reported++;
    }
    if (bad > reported)
        atomic_fetch_add(&ck->errors, bad - reported);
    names_free(&nm);
    ck->res->snapshots = n;
    *out_v = v;
    *out_n = n;
    return 0;

err1:
    names_free(&nm);
    cairn_snapshot_list_free(v, n);
err0:
    return rc;
}

/* 6. Trees. */

/* Is blob id available (some copy undamaged, in a pack that is there)?
 * 0 yes, 1 damaged copies only, 2 not indexed. */
static int blob_state(struct ck *ck, const uint8_t *id, uint8_t type)
{
    const struct idslot *s = idmap_find(&ck->blob_map, id);
    uint32_t i;

    if (s == NULL)
        return 2;
    for (i = s->val; i != NONE; i = ck->blobs[i].next)
        if (ck->blobs[i].ent->type == type && !ck->blobs[i].bad &&
            !ck->packs[ck->blobs[i].pack].lost)
            return 0;
    for (i = s->val; i != NONE; i = ck->blobs[i].next)
        if (ck->blobs[i].ent->type == type)
            return 1;
    return 2;
}

static int read_tree(struct ck *ck, const uint8_t *id, struct cairn_tree **out)
{
    const struct idslot *s = idmap_find(&ck->blob_map, id);
    const struct cairn_index_entry *e;
    const struct ck_pack *p;
    uint32_t i;
    int rc = CAIRN_ENOENT;

    if (s == NULL)
        return CAIRN_ENOENT;
    /* Try each copy until one reads. */
    for (i = s->val; i != NONE; i = ck->blobs[i].next) {
        e = ck->blobs[i].ent;
        p = &ck->packs[ck->blobs[i].pack];
        if (e->type != CAIRN_BLOB_TREE || e->raw_length > CAIRN_BLOB_MAX) {
            rc = CAIRN_ECORRUPT;
            continue;
        }
        if ((rc = ck_grow(&ck->rbuf, &ck->rcap, e->length ? e->length : 1)) ||
            (rc = ck_grow(&ck->pbuf, &ck->pcap,
                          e->raw_length ? e->raw_length : 1)))
            return rc;
        rc = cairn_store_get_range(ck->store, CAIRN_OBJ_PACK, p->name,
                                   e->offset, e->length, ck->rbuf);
        if (rc == 0)
            rc = cairn_blob_open(ck->codec, CAIRN_BLOB_TREE, id, ck->rbuf,
                                 e->length, ck->pbuf, e->raw_length, 0);
        if (rc == 0)
            rc = cairn_tree_decode(ck->pbuf, e->raw_length, out);
        if (rc == 0 || rc == CAIRN_ENOMEM)
            return rc;
    }
    return rc;
}

static int path_push(struct ck *ck, size_t len, const char *name)
{
    size_t n = strlen(name), need = len + n + 2;
    char *p;

    if (need > ck->path_cap) {
        if ((p = realloc(ck->path, need * 2)) == NULL)
            return CAIRN_ENOMEM;
        ck->path = p;
        ck->path_cap = need * 2;
    }
    ck->path[len] = '/';
    memcpy(ck->path + len + 1, name, n + 1);
    return 0;
}

static void damaged_file(struct ck *ck, const char *snap, int err,
                         const char *why)
{
    ck->res->damaged_files++;
    ck_event(ck, CAIRN_EV_DAMAGED_FILE, ck->path[0] ? ck->path : "/", snap, err,
             why);
}

/*
 * Walk tree id at ck->path[0..len) of snapshot snap (hex).  Structure
 * problems are counted on the first visit of a tree only; damaged files
 * are reported on every visit of a tree with damage below.
 */
static int walk_tree(struct ck *ck, const char *snap, const uint8_t *id,
                     size_t len)
{
    const struct cairn_tree_entry *e;
    struct cairn_tree *t;
    struct idslot *slot;
    char hex[2 * CAIRN_ID_LEN + 1], msg[200];
    int first, isnew, st, dmg = 0, rc;
    uint32_t i, j;

    if (ck_cancelled(ck))
        return CAIRN_ECANCELED;
    if ((rc = idmap_put(&ck->tree_map, id, 0, &slot, &isnew)) != 0)
        return rc;
    first = isnew;
    if (!first && slot->val == 1)
        return 0; /* seen, nothing damaged below */
    if (!first && slot->val == 0)
        return 0; /* being walked above us: cannot happen with real ids */
    if ((rc = read_tree(ck, id, &t)) != 0) {
        if (rc == CAIRN_ENOMEM)
            return rc;
        if ((slot = idmap_find(&ck->tree_map, id)) != NULL)
            slot->val = 2;
        if (first) {
            cairn_hex_encode(id, CAIRN_ID_LEN, hex);
            snprintf(msg, sizeof(msg), "tree %s at %s cannot be read: %s", hex,
                     ck->path[0] ? ck->path : "/", cairn_strerror(rc));
            ck_problem(ck, snap, rc, msg);
        }
        damaged_file(ck, snap, rc, "directory listing cannot be read");
        return 0;
    }
    if (first)
        ck->res->trees++;
    for (i = 0; i < t->nentries; i++) {
        e = &t->entries[i];
        if ((rc = path_push(ck, len, e->name)) != 0)
            goto out;
        if (e->type == CAIRN_NODE_FILE) {
            int worst = 0;

            for (j = 0; j < e->ncontent; j++) {
                st = blob_state(ck, e->content[j], CAIRN_BLOB_DATA);
                if (st == 2 && first) {
                    cairn_hex_encode(e->content[j], CAIRN_ID_LEN, hex);
                    snprintf(msg, sizeof(msg),
                             "blob %s of %s is not in the index", hex,
                             ck->path);
                    ck_problem(ck, snap, CAIRN_ENOENT, msg);
                }
                if (st > worst)
                    worst = st;
            }
            if (worst) {
                dmg = 1;
                damaged_file(
                    ck, snap, worst == 2 ? CAIRN_ENOENT : CAIRN_ECORRUPT,
                    worst == 2 ? "content is missing from the index"
                               : "content is damaged (in a damaged pack)");
            }
        } else if (e->type == CAIRN_NODE_DIR && e->has_subtree) {
            struct idslot *cs;

            if ((rc = walk_tree(ck, snap, e->subtree,
                                len + 1 + strlen(e->name))) != 0)
                goto out;
            cs = idmap_find(&ck->tree_map, e->subtree);
            if (cs != NULL && cs->val == 2)
                dmg = 1;
        }
    }
    ck->path[len] = '\0';
    /* The map may have grown: look the slot up again. */
    if ((slot = idmap_find(&ck->tree_map, id)) != NULL)
        slot->val = dmg ? 2 : 1;
    rc = 0;
out:
    cairn_tree_free(t);
    return rc;
}

static int check_trees(struct ck *ck, struct cairn_snapshot **v, size_t n)
{
    char hex[2 * CAIRN_ID_LEN + 1];
    size_t i;
    int rc;

    if ((ck->codec = cairn_blob_codec_new(cairn_repo_keys(ck->r), 0)) == NULL)
        return CAIRN_ENOMEM;
    if ((ck->path = malloc(256)) == NULL)
        return CAIRN_ENOMEM;
    ck->path_cap = 256;
    for (i = 0; i < n; i++) {
        ck->path[0] = '\0';
        cairn_hex_encode(v[i]->id, CAIRN_ID_LEN, hex);
        if ((rc = walk_tree(ck, hex, v[i]->root, 0)) != 0)
            return rc;
    }
    return 0;
}

/*
 * Check the archive behind r.  See cairn/check.h.  Events come from this
 * thread and the read_data workers, serialised.
 */
int cairn_check(struct cairn_repo *r, const struct cairn_check_opts *o,
                struct cairn_check_result *out)
{
    struct cairn_check_result res;
    struct cairn_snapshot **snaps = NULL;
    size_t nsnaps = 0, i;
    struct ck ck;
    int rc;

    memset(&res, 0, sizeof(res));
    memset(&ck, 0, sizeof(ck));
    ck.t0 = ck_now();
    if (r == NULL || o == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    ck.r = r;
    ck.store = cairn_repo_store(r);
    ck.o = o;
    ck.res = &res;
    atomic_init(&ck.next, 0);
    atomic_init(&ck.bytes_read, 0);
    atomic_init(&ck.packs_read, 0);
    atomic_init(&ck.errors, 0);
    atomic_init(&ck.damaged_packs, 0);
    atomic_init(&ck.fatal, 0);
    if (pthread_mutex_init(&ck.ev_lock, NULL) != 0) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }

    if ((rc = check_config(&ck)) != 0 || (rc = check_indexes(&ck)) != 0 ||
        (rc = check_packs_stored(&ck)) != 0 ||
        (rc = check_snapshots(&ck, &snaps, &nsnaps)) != 0)
        goto err1;
    res.packs = ck.npacks;
    res.blobs = ck.nblobs;
    if (o->read_data && (rc = ck_read_data(&ck)) != 0)
        goto err2;
    if ((rc = check_trees(&ck, snaps, nsnaps)) != 0)
        goto err2;

    rc = (atomic_load(&ck.errors) || res.damaged_files) ? CAIRN_ECORRUPT : 0;

err2:
    cairn_snapshot_list_free(snaps, nsnaps);
err1:
    res.errors = atomic_load(&ck.errors);
    res.damaged_packs = atomic_load(&ck.damaged_packs);
    cairn_blob_codec_free(ck.codec);
    free(ck.rbuf);
    free(ck.pbuf);
    free(ck.path);
    free(ck.todo);
    free(ck.pack_map.s);
    free(ck.blob_map.s);
    free(ck.tree_map.s);
    free(ck.blobs);
    free(ck.packs);
    for (i = 0; i < ck.nindexes; i++)
        cairn_index_free(ck.indexes[i]);
    free(ck.indexes);
    pthread_mutex_destroy(&ck.ev_lock);
err0:
    res.elapsed_ns = ck_now() - ck.t0;
    if (out != NULL)
        *out = res;
    return rc;
}
