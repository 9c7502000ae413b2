/*
 * keyring.c - archive keys held in memory for sessions (keyring.h).
 *
 * A fixed table of slots: the keys in one anonymous mapping, mlock'ed and
 * excluded from core dumps, the rest (session hash, device, user, expiry;
 * none of it secret) beside it.  Lookups scan the table: it holds the keys
 * of the sessions logged in to this process (a few per person), and a
 * lookup happens once per request that needs a key, never per byte.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"

#include "auth.h"

#include "catalog.h"
#include "keyring.h"
#include "srv.h"

#define SWEEP_EVERY_SECS 30

struct slot {
    int used;
    char session[65];
    char device[33];
    int64_t user_id;
    int64_t expires;
};

struct keyring {
    pthread_mutex_t lock;
    size_t cap;
    struct slot *slots;
    uint8_t (*keys)[KEYRING_KEY_LEN]; /* mmap'ed */
    size_t map_len;
    int locked; /* mlock succeeded */
};

static int hex_valid(const char *s, size_t n)
{
    size_t i;

    if (s == NULL || strlen(s) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Empty slot i (the caller holds the lock). */
static void slot_wipe(struct keyring *k, size_t i)
{
    cairn_wipe(k->keys[i], KEYRING_KEY_LEN);
    memset(&k->slots[i], 0, sizeof(k->slots[i]));
}

/*
 * See keyring.h.  The key region is rounded up to whole pages; if mlock
 * fails (RLIMIT_MEMLOCK) the keyring still works, unlocked, and
 * keyring_is_locked says so (the server logs it once).
 */
int keyring_new(size_t capacity, struct keyring **out)
{
    struct keyring *k;
    long page = sysconf(_SC_PAGESIZE);
    void *m;

    if (capacity == 0 || capacity > ((size_t)1 << 20))
        return CAIRN_EINVAL;
    if (page <= 0)
        page = 4096;
    if ((k = calloc(1, sizeof(*k))) == NULL)
        goto err0;
    if ((k->slots = calloc(capacity, sizeof(*k->slots))) == NULL)
        goto err1;
    k->map_len = (capacity * KEYRING_KEY_LEN + (size_t)page - 1) /
                 (size_t)page * (size_t)page;
    m = mmap(NULL, k->map_len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        goto err2;
    k->keys = m;
#ifdef MADV_DONTDUMP
    (void)madvise(m, k->map_len, MADV_DONTDUMP);
#endif
    k->locked = mlock(m, k->map_len) == 0;
    if (pthread_mutex_init(&k->lock, NULL) != 0)
        goto err3;
    k->cap = capacity;
    *out = k;
    return 0;

err3:
    if (k->locked)
        munlock(m, k->map_len);
    munmap(m, k->map_len);
err2:
    free(k->slots);
err1:
    free(k);
err0:
    return CAIRN_ENOMEM;
}

/* See keyring.h. */
void keyring_free(struct keyring *k)
{
    if (k == NULL)
        return;
    cairn_wipe(k->keys, k->map_len);
    if (k->locked)
        munlock(k->keys, k->map_len);
    munmap(k->keys, k->map_len);
    free(k->slots);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int keyring_is_locked(const struct keyring *k)
{
    return k != NULL && k->locked;
}

/* See keyring.h. */
int keyring_put(struct keyring *k, const char *session_hash, int64_t user_id,
                const char *device_id, const uint8_t key[KEYRING_KEY_LEN],
                int64_t expires)
{
    int64_t now = srv_now();
    size_t i, free_at = k->cap, expired_at = k->cap;
    int rc;

    if (!hex_valid(session_hash, 64) || !hex_valid(device_id, 32))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++) {
        struct slot *s = &k->slots[i];

        if (!s->used) {
            if (free_at == k->cap)
                free_at = i;
            continue;
        }
        if (strcmp(s->session, session_hash) == 0 &&
            strcmp(s->device, device_id) == 0)
            break;
        if (s->expires <= now && expired_at == k->cap)
            expired_at = i;
    }
    if (i == k->cap)
        i = free_at != k->cap ? free_at : expired_at;
    if (i == k->cap) {
        rc = CAIRN_ENOSPC;
        goto out;
    }
    slot_wipe(k, i);
    k->slots[i].used = 1;
    memcpy(k->slots[i].session, session_hash, 65);
    memcpy(k->slots[i].device, device_id, 33);
    k->slots[i].user_id = user_id;
    k->slots[i].expires = expires;
    memcpy(k->keys[i], key, KEYRING_KEY_LEN);
    rc = 0;
out:
    pthread_mutex_unlock(&k->lock);
    return rc;
}

/* See keyring.h. */
int keyring_get(struct keyring *k, const char *session_hash,
                const char *device_id, int64_t now,
                uint8_t out_key[KEYRING_KEY_LEN], int64_t *out_expires)
{
    size_t i;
    int rc = CAIRN_ENOENT;

    if (session_hash == NULL || device_id == NULL)
        return CAIRN_ENOENT;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++) {
        struct slot *s = &k->slots[i];

        if (!s->used || strcmp(s->session, session_hash) != 0 ||
            strcmp(s->device, device_id) != 0)
            continue;
        if (s->expires <= now) {
            slot_wipe(k, i);
            break;
        }
        memcpy(out_key, k->keys[i], KEYRING_KEY_LEN);
        if (out_expires != NULL)
            *out_expires = s->expires;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&k->lock);
    return rc;
}

size_t keyring_drop_session(struct keyring *k, const char *session_hash)
{
    size_t i, n = 0;

    if (k == NULL || session_hash == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++)
        if (k->slots[i].used &&
            strcmp(k->slots[i].session, session_hash) == 0) {
            slot_wipe(k, i);
            n++;
        }
    pthread_mutex_unlock(&k->lock);
    return n;
}

size_t keyring_drop_user(struct keyring *k, int64_t user_id,
                         const char *except_session)
{
    size_t i, n = 0;

    if (k == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++)
        if (k->slots[i].used && k->slots[i].user_id == user_id &&
            (except_session == NULL ||
             strcmp(k->slots[i].session, except_session) != 0)) {
            slot_wipe(k, i);
            n++;
        }
    pthread_mutex_unlock(&k->lock);
    return n;
}

size_t keyring_drop_device(struct keyring *k, const char *device_id)
{
    size_t i, n = 0;

    if (k == NULL || device_id == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++)
        if (k->slots[i].used && strcmp(k->slots[i].device, device_id) == 0) {
            slot_wipe(k, i);
            n++;
        }
    pthread_mutex_unlock(&k->lock);
    return n;
}

size_t keyring_sweep(struct keyring *k, int64_t now, keyring_alive_fn alive,
                     void *arg)
{
    size_t i, j, n = 0;

    if (k == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++) {
        struct slot *s = &k->slots[i];

        if (!s->used)
            continue;
        if (s->expires <= now) {
            slot_wipe(k, i);
            n++;
            continue;
        }
        if (alive == NULL)
            continue;
        /* Ask once per session: skip it if an earlier slot was its. */
        for (j = 0; j < i; j++)
            if (k->slots[j].used &&
                strcmp(k->slots[j].session, s->session) == 0)
                break;
        if (j < i)
            continue;
        if (!alive(arg, s->session)) {
            char dead[65];

            memcpy(dead, s->session, sizeof(dead));
            for (j = i; j < k->cap; j++)
                if (k->slots[j].used &&
                    strcmp(k->slots[j].session, dead) == 0) {
                    slot_wipe(k, j);
                    n++;
                }
        }
    }
    pthread_mutex_unlock(&k->lock);
    return n;
}

size_t keyring_count(struct keyring *k)
{
    size_t i, n = 0;

    if (k == NULL)
        return 0;
    pthread_mutex_lock(&k->lock);
    for (i = 0; i < k->cap; i++)
        n += k->slots[i].used != 0;
    pthread_mutex_unlock(&k->lock);
    return n;
}

/* ---- the process's keyring ---- */

static pthread_once_t process_once = PTHREAD_ONCE_INIT;
static struct keyring *process_kr;
static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_sweep;

static void process_free(void)
{
    keyring_free(process_kr);
    process_kr = NULL;
}

static void process_make(void)
{
    if (keyring_new(KEYRING_DEFAULT_CAPACITY, &process_kr) != 0) {
        process_kr = NULL;
        return;
    }
    if (!process_kr->locked)
        srv_log(SRV_LOG_WARN, "cannot lock the archive keys in memory "
                "(RLIMIT_MEMLOCK); they may be swapped out");
    atexit(process_free);
}

struct keyring *keyring_process(void)
{
    pthread_once(&process_once, process_make);
    return process_kr;
}

static int session_alive(void *arg, const char *hash)
{
    struct srv *s = arg;
    struct cat_session ses;
    int64_t now = srv_now();
    int rc, alive;

    rc = cat_session_get(s->cat, hash, &ses);
    if (rc == CAIRN_ENOENT)
        return 0;
    if (rc != 0)
        return 1; /* the catalog failed: keep them, try again later */
    alive = now - ses.last_seen <= s->cfg.session_idle_secs &&
            now - ses.created <= s->cfg.session_max_secs;
    cairn_wipe(&ses, sizeof(ses));
    return alive;
}

void keyring_srv_sweep(struct srv *s)
{
    struct keyring *k = keyring_process();
    int64_t now = srv_now();

    if (k == NULL)
        return;
    pthread_mutex_lock(&sweep_lock);
    if (now - last_sweep < SWEEP_EVERY_SECS) {
        pthread_mutex_unlock(&sweep_lock);
        return;
    }
    last_sweep = now;
    pthread_mutex_unlock(&sweep_lock);
    (void)keyring_sweep(k, now, session_alive, s);
}

/* ---- opening the wraps ---- */

int keyring_open_owner(const struct cat_device *d, const char *pw,
                       uint8_t out_key[KEYRING_KEY_LEN])
{
    uint8_t aid[CAIRN_ID_LEN];
    int rc;

    if (d->wrap_owner == NULL || d->wrap_owner_len == 0)
        return CAIRN_ENOENT;
    rc = cairn_keyfile_open(d->wrap_owner, d->wrap_owner_len, pw, strlen(pw),
                            out_key, aid);
    if (rc == 0 && !cairn_ct_equal(aid, d->archive_id, CAIRN_ID_LEN))
        rc = CAIRN_ECORRUPT;
    if (rc != 0)
        cairn_wipe(out_key, KEYRING_KEY_LEN);
    cairn_wipe(aid, sizeof(aid));
    return rc;
}

int keyring_escrow_open(struct srv *s, const char *pass,
                        uint8_t out_public[32], uint8_t out_private[32])
{
    struct cat_org o;
    int rc;

    memset(&o, 0, sizeof(o));
    if ((rc = cat_org_get(s->cat, &o)) != 0)
        return rc;
    if (o.escrow_wrapped == NULL) {
        rc = CAIRN_ENOENT;
        goto out;
    }
    memcpy(out_public, o.escrow_public, 32);
    rc = cairn_escrow_open(o.escrow_wrapped, o.escrow_wrapped_len, pass,
                           strlen(pass), o.escrow_public, out_private);
    if (rc != 0)
        cairn_wipe(out_private, 32);
out:
    cat_org_clear(&o);
    return rc;
}

int keyring_unseal(const uint8_t escrow_public[32],
                   const uint8_t escrow_private[32],
                   const struct cat_device *d,
                   uint8_t out_key[KEYRING_KEY_LEN])
{
    uint8_t *msg = NULL;
    size_t len = 0;
    int rc;

    if (d->wrap_escrow == NULL || d->wrap_escrow_len == 0)
        return CAIRN_ENOENT;
    if ((rc = cairn_unseal(escrow_public, escrow_private, d->wrap_escrow,
                           d->wrap_escrow_len, &msg, &len)) != 0)
        return rc;
    /* The archive key, then the archive id. */
    if (len < KEYRING_KEY_LEN + CAIRN_ID_LEN ||
        !cairn_ct_equal(msg + KEYRING_KEY_LEN, d->archive_id, CAIRN_ID_LEN)) {
        rc = CAIRN_ECORRUPT;
    } else {
        memcpy(out_key, msg, KEYRING_KEY_LEN);
        rc = 0;
    }
    cairn_wipe(msg, len);
    free(msg);
    return rc;
}

/* ---- throttling ---- */

#define THROTTLE_MAX_DELAY 60

int64_t keyring_throttle_wait(struct srv *s, const struct cat_user *u,
                              const char *addr, int *out_locked)
{
    struct srv_lockout p;
    int64_t now = srv_now(), wait = 0, last = 0;
    int fails = 0;

    p.slow_after = s->cfg.lockout_slow_after;
    p.lock_after = s->cfg.lockout_lock_after;
    p.lock_secs = s->cfg.lockout_lock_secs;
    p.max_delay = THROTTLE_MAX_DELAY;
    *out_locked = 0;
    if (u != NULL) {
        if (u->locked_until > now) {
            *out_locked = 1;
            return u->locked_until - now;
        }
        wait = srv_lockout_wait(&p, u->failures, u->last_failure, now,
                                out_locked);
        if (wait > 0)
            return wait;
    }
    if (addr != NULL && cat_addr_get(s->cat, addr, &fails, &last) == 0)
        wait = srv_lockout_wait(&p, fails, last, now, out_locked);
    return wait;
}

void keyring_throttle_fail(struct srv *s, struct cat_user *u,
                           const char *addr)
{
    int64_t now = srv_now();

    if (u != NULL) {
        u->failures++;
        u->last_failure = now;
        if (s->cfg.lockout_lock_after > 0 &&
            u->failures >= s->cfg.lockout_lock_after)
            u->locked_until = now + s->cfg.lockout_lock_secs;
        if (cat_user_update(s->cat, u) != 0)
            srv_log(SRV_LOG_ERROR, "cannot record a failed secret of %s",
                    u->username);
    }
    if (addr != NULL && cat_addr_fail(s->cat, addr, now) != 0)
        srv_log(SRV_LOG_ERROR, "cannot record a failed secret from %s",
                addr);
    atomic_fetch_add(&s->m.logins_failed, 1);
}
