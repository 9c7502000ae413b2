/*
 * repo_cache.c - device archives kept open between requests (see
 * repo_cache.h).
 *
 * A handful of slots under one lock.  A slot in use (refs > 0) is never
 * closed; one found out of date is marked stale and closed by the last
 * request using it.  Opening and listing happen outside the lock.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/store.h"

#include "catalog.h"
#include "keyring.h"
#include "repo_cache.h"
#include "srv.h"

struct slot {
    struct cairn_repo *repo; /* NULL: empty */
    char session[65];
    char device[33];
    uint8_t key_fp[32]; /* SHA-256 of the key it was opened with */
    uint64_t sig;       /* of the index objects it was loaded from */
    int refs;
    int stale;          /* out of date: closed when refs drops to 0 */
    int64_t used;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[REPO_CACHE_MAX];

/* The index objects' names, as one number: a sum of their hashes (FNV-1a,
 * mixed), and their count. */
struct sig {
    uint64_t sum, n;
};

static int sig_add(void *arg, const char *name, uint64_t size)
{
    struct sig *g = arg;
    uint64_t h = 0xcbf29ce484222325u;

    (void)size;
    for (; *name != '\0'; name++)
        h = (h ^ (uint8_t)*name) * 0x100000001b3u;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15u;
    g->sum += h;
    g->n++;
    return 0;
}

static int index_sig(struct cairn_repo *r, uint64_t *out)
{
    struct sig g = {0, 0};
    int rc;

    if ((rc = cairn_store_list(cairn_repo_store(r), CAIRN_OBJ_INDEX, sig_add,
                               &g)) != 0)
        return rc;
    *out = g.sum ^ (g.n * 0xc2b2ae3d27d4eb4fu);
    return 0;
}

static void slot_close(struct slot *sl)
{
    cairn_repo_free(sl->repo);
    cairn_wipe(sl, sizeof(*sl));
}

/* Close the unused slots that are stale, idle too long, or whose session
 * no longer holds the key they were opened with.  Lock held. */
static void sweep(int64_t now)
{
    struct keyring *k = keyring_process();
    uint8_t key[KEYRING_KEY_LEN], fp[32];
    struct slot *sl;
    int i, held;

    for (i = 0; i < REPO_CACHE_MAX; i++) {
        sl = &slots[i];
        if (sl->repo == NULL || sl->refs > 0)
            continue;
        held = k != NULL &&
               keyring_get(k, sl->session, sl->device, now, key, NULL) == 0;
        if (held) {
            cairn_sha256(key, sizeof(key), fp);
            held = cairn_ct_equal(fp, sl->key_fp, sizeof(fp));
        }
        cairn_wipe(key, sizeof(key));
        if (sl->stale || !held || now - sl->used > REPO_CACHE_IDLE_SECS)
            slot_close(sl);
    }
}

/* The slot of (session, device, key fingerprint), not stale, or NULL.
 * Lock held. */
static struct slot *find(const char *session, const char *device,
                         const uint8_t fp[32])
{
    int i;

    for (i = 0; i < REPO_CACHE_MAX; i++)
        if (slots[i].repo != NULL && !slots[i].stale &&
            strcmp(slots[i].session, session) == 0 &&
            strcmp(slots[i].device, device) == 0 &&
            cairn_ct_equal(slots[i].key_fp, fp, 32))
            return &slots[i];
    return NULL;
}

/* Open the archive now, and the signature of the index it loaded. */
static int open_now(struct srv *s, const struct cat_device *d,
                    const uint8_t key[KEYRING_KEY_LEN],
                    struct cairn_repo **out, uint64_t *sig)
{
    struct cairn_store *st = NULL;
    struct cairn_repo *repo = NULL;
    int rc;

    if ((rc = srv_device_store(s, d->id, 0, &st)) != 0)
        return rc;
    if ((rc = cairn_repo_open_key(st, key, d->archive_id, &repo)) != 0) {
        cairn_store_free(st);
        return rc;
    }
    /* Listed before loading: an index added in between makes the next
     * request load again, never miss one. */
    if ((rc = index_sig(repo, sig)) != 0 ||
        (rc = cairn_repo_load_index(repo, NULL)) != 0) {
        cairn_repo_free(repo);
        return rc;
    }
    *out = repo;
    return 0;
}

int repo_cache_open(struct srv *s, const char *session_hash,
                    const struct cat_device *d,
                    const uint8_t key[KEYRING_KEY_LEN],
                    struct cairn_repo **out)
{
    struct cairn_repo *repo;
    struct slot *sl, *lru;
    uint8_t fp[32];
    uint64_t sig;
    int64_t now = srv_now();
    int i, rc;

    if (strlen(session_hash) >= sizeof(slots[0].session) ||
        strlen(d->id) >= sizeof(slots[0].device))
        return CAIRN_EINVAL;
    cairn_sha256(key, KEYRING_KEY_LEN, fp);
    pthread_mutex_lock(&lock);
    sweep(now);
    if ((sl = find(session_hash, d->id, fp)) != NULL) {
        sl->refs++;
        sl->used = now;
        repo = sl->repo;
        pthread_mutex_unlock(&lock);
        /* Still what the store holds? */
        if (index_sig(repo, &sig) == 0 && sig == sl->sig) {
            *out = repo;
            return 0;
        }
        pthread_mutex_lock(&lock);
        sl->stale = 1;
        if (--sl->refs == 0)
            slot_close(sl);
    }
    pthread_mutex_unlock(&lock);

    if ((rc = open_now(s, d, key, &repo, &sig)) != 0)
        return rc;
    pthread_mutex_lock(&lock);
    /* Kept unless another request kept one meanwhile, or every slot is
     * in use; then it is this request's alone (closed at release). */
    if (find(session_hash, d->id, fp) == NULL) {
        lru = NULL;
        for (i = 0; i < REPO_CACHE_MAX; i++) {
            if (slots[i].repo == NULL) {
                lru = &slots[i];
                break;
            }
            if (slots[i].refs == 0 && (lru == NULL || slots[i].used < lru->used))
                lru = &slots[i];
        }
        if (lru != NULL) {
            if (lru->repo != NULL)
                slot_close(lru);
            lru->repo = repo;
            memcpy(lru->session, session_hash, strlen(session_hash) + 1);
            memcpy(lru->device, d->id, strlen(d->id) + 1);
            memcpy(lru->key_fp, fp, sizeof(fp));
            lru->sig = sig;
            lru->refs = 1;
            lru->stale = 0;
            lru->used = now;
        }
    }
    pthread_mutex_unlock(&lock);
    cairn_wipe(fp, sizeof(fp));
    *out = repo;
    return 0;
}

void repo_cache_release(struct cairn_repo *r)
{
    int i;

    if (r == NULL)
        return;
    pthread_mutex_lock(&lock);
    for (i = 0; i < REPO_CACHE_MAX; i++) {
        if (slots[i].repo != r)
            continue;
        if (--slots[i].refs == 0 && slots[i].stale)
            slot_close(&slots[i]);
        pthread_mutex_unlock(&lock);
        return;
    }
    pthread_mutex_unlock(&lock);
    cairn_repo_free(r); /* not kept */
}

void repo_cache_sweep(void)
{
    pthread_mutex_lock(&lock);
    sweep(srv_now());
    pthread_mutex_unlock(&lock);
}

void repo_cache_clear(void)
{
    int i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < REPO_CACHE_MAX; i++) {
        if (slots[i].repo == NULL)
            continue;
        if (slots[i].refs == 0)
            slot_close(&slots[i]);
        else
            slots[i].stale = 1;
    }
    pthread_mutex_unlock(&lock);
}
