/*
 * repo_open.c - create and open an archive.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "repo_internal.h"

void repo_hex(const uint8_t id[CAIRN_ID_LEN], char out[2 * CAIRN_ID_LEN + 1])
{
    cairn_hex_encode(id, CAIRN_ID_LEN, out);
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct cairn_repo *repo_alloc(struct cairn_store *store)
{
    struct cairn_repo *r;

    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    if (repo_index_init(&r->index) != 0) {
        free(r);
        return NULL;
    }
    r->store = store;
    return r;
}

/* Free r without freeing its store (the caller keeps it on failure). */
static void repo_release(struct cairn_repo *r)
{
    size_t i;

    cairn_keys_wipe(&r->keys);
    cairn_chunker_free(r->chunker);
    repo_index_destroy(&r->index);
    for (i = 0; i < r->norphans; i++)
        cairn_pack_info_free(r->orphans[i]);
    free(r->orphans);
    free(r);
}

void cairn_repo_free(struct cairn_repo *r)
{
    struct cairn_store *s;

    if (r == NULL)
        return;
    s = r->store;
    repo_release(r);
    cairn_store_free(s);
}

static int make_chunker(struct cairn_repo *r)
{
    struct cairn_chunker_params cp = {r->config.chunk_min, r->config.chunk_avg,
                                      r->config.chunk_max};

    return cairn_chunker_new(r->keys.chunker, &cp, &r->chunker);
}

/* Fill r's config from opts (defaults where zero). */
static int config_from_opts(struct cairn_repo *r,
                            const struct cairn_repo_init_opts *opts)
{
    struct cairn_chunker_params cp = opts->chunk;
    int rc;

    if (cp.min == 0 && cp.avg == 0 && cp.max == 0) {
        cp.min = CAIRN_CHUNK_MIN_DEFAULT;
        cp.avg = CAIRN_CHUNK_AVG_DEFAULT;
        cp.max = CAIRN_CHUNK_MAX_DEFAULT;
    }
    if ((rc = cairn_chunker_params_check(&cp)) != 0)
        return rc;
    r->config.chunk_min = cp.min;
    r->config.chunk_avg = cp.avg;
    r->config.chunk_max = cp.max;
    r->config.pack_size =
        opts->pack_size ? opts->pack_size : CAIRN_PACK_SIZE_DEFAULT;
    if (r->config.pack_size < 4096 || r->config.pack_size > 512u << 20)
        return CAIRN_EINVAL;
    r->config.zstd_level =
        opts->zstd_level == 0 ? CAIRN_ZSTD_LEVEL_DEFAULT : opts->zstd_level;
    if (r->config.zstd_level > 19)
        return CAIRN_EINVAL;
    if (r->config.zstd_level < 0)
        r->config.zstd_level = -1;
    r->config.created_ns = now_ns();
    return 0;
}

/*
 * Make a new archive in store with this key and id: the config and, with
 * pass, one key file.  The key file goes first and the config last: an
 * archive exists once its config does, and then it can be opened.
 */
static int repo_create(struct cairn_store *store,
                       const uint8_t master[CAIRN_KEY_LEN],
                       const uint8_t archive_id[CAIRN_ID_LEN], const char *pass,
                       size_t passlen, const struct cairn_repo_init_opts *opts,
                       struct cairn_repo **out)
{
    struct cairn_repo_init_opts def = {0};
    struct cairn_kdf_params kdf;
    struct cairn_repo *r;
    uint8_t *cfg = NULL, *key = NULL, kid[CAIRN_ID_LEN];
    size_t cfglen, keylen;
    uint64_t sz;
    int rc;

    if (opts == NULL)
        opts = &def;
    if (cairn_store_stat(store, CAIRN_OBJ_CONFIG, "config", &sz) == 0)
        return CAIRN_EEXIST;
    if ((r = repo_alloc(store)) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = config_from_opts(r, opts)) != 0)
        goto err1;
    kdf = opts->kdf;
    if (kdf.log2_n == 0) {
        kdf.log2_n = CAIRN_KDF_DEFAULT_LOG2_N;
        kdf.r = CAIRN_KDF_DEFAULT_R;
        kdf.p = CAIRN_KDF_DEFAULT_P;
    }
    memcpy(r->keys.master, master, CAIRN_KEY_LEN);
    memcpy(r->config.archive_id, archive_id, CAIRN_ID_LEN);
    if ((rc = cairn_keys_derive(r->keys.master, r->config.archive_id,
                                &r->keys)) != 0)
        goto err1;
    if ((rc = make_chunker(r)) != 0)
        goto err1;
    if ((rc = cairn_config_encode(&r->config, r->keys.mac, &cfg, &cfglen)) !=
        0)
        goto err1;
    if (pass != NULL) {
        if ((rc = cairn_keyfile_create(r->keys.master, r->config.archive_id,
                                       pass, passlen, &kdf, opts->label, &key,
                                       &keylen)) != 0)
            goto err2;
        cairn_sha256(key, keylen, kid);
        repo_hex(kid, r->key_name);
        if ((rc = cairn_store_put(store, CAIRN_OBJ_KEY, r->key_name, key,
                                  keylen, 1)) != 0)
            goto err3;
    }
    if ((rc = cairn_store_put(store, CAIRN_OBJ_CONFIG, "config", cfg, cfglen,
                              1)) != 0)
        goto err3;
    free(key);
    free(cfg);
    *out = r;
    return 0;

err3:
    free(key);
err2:
    free(cfg);
err1:
    repo_release(r);
    return rc;
}

int cairn_repo_init(struct cairn_store *store, const char *pass,
                    size_t passlen, const struct cairn_repo_init_opts *opts,
                    struct cairn_repo **out)
{
    uint8_t master[CAIRN_KEY_LEN], aid[CAIRN_ID_LEN];
    int rc;

    if ((rc = cairn_random(master, sizeof(master))) != 0 ||
        (rc = cairn_random(aid, sizeof(aid))) != 0)
        return rc;
    rc = repo_create(store, master, aid, pass, passlen, opts, out);
    cairn_wipe(master, sizeof(master));
    return rc;
}

int cairn_repo_init_key(struct cairn_store *store,
                        const uint8_t master[CAIRN_KEY_LEN],
                        const uint8_t archive_id[CAIRN_ID_LEN],
                        const struct cairn_repo_init_opts *opts,
                        struct cairn_repo **out)
{
    return repo_create(store, master, archive_id, NULL, 0, opts, out);
}

int cairn_repo_open_key(struct cairn_store *store,
                        const uint8_t master[CAIRN_KEY_LEN],
                        const uint8_t archive_id[CAIRN_ID_LEN],
                        struct cairn_repo **out)
{
    struct cairn_repo *r;
    uint8_t *cfg = NULL;
    size_t cfglen;
    int rc;

    if ((r = repo_alloc(store)) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = cairn_store_get(store, CAIRN_OBJ_CONFIG, "config", &cfg,
                              &cfglen)) != 0)
        goto err1;
    if ((rc = cairn_config_decode(cfg, cfglen, NULL, &r->config)) != 0)
        goto err2;
    if (!cairn_ct_equal(r->config.archive_id, archive_id, CAIRN_ID_LEN)) {
        rc = CAIRN_EAUTH;
        goto err2;
    }
    if ((rc = cairn_keys_derive(master, archive_id, &r->keys)) != 0)
        goto err2;
    /* The config must authenticate under this key. */
    if ((rc = cairn_config_decode(cfg, cfglen, r->keys.mac, &r->config)) !=
        0) {
        rc = rc == CAIRN_ECORRUPT ? CAIRN_EAUTH : rc;
        goto err2;
    }
    if ((rc = make_chunker(r)) != 0)
        goto err2;
    free(cfg);
    *out = r;
    return 0;

err2:
    free(cfg);
err1:
    repo_release(r);
    return rc;
}

struct key_names {
    char **v;
    size_t n, cap;
};

static int collect_key(void *arg, const char *name, uint64_t size)
{
    struct key_names *kn = arg;

    if (kn->n == kn->cap) {
        size_t ncap = kn->cap ? kn->cap * 2 : 8;
        char **nv = realloc(kn->v, ncap * sizeof(*nv));

        if (nv == NULL)
            return CAIRN_ENOMEM;
        kn->v = nv;
        kn->cap = ncap;
    }
    if ((kn->v[kn->n] = strdup(name)) == NULL)
        return CAIRN_ENOMEM;
    kn->n++;
    return 0;
}

int cairn_repo_open(struct cairn_store *store, const char *pass,
                    size_t passlen, struct cairn_repo **out)
{
    struct cairn_repo *r;
    struct key_names kn = {NULL, 0, 0};
    uint8_t *cfg = NULL, *key, master[CAIRN_KEY_LEN], aid[CAIRN_ID_LEN];
    size_t cfglen, keylen, i;
    int rc, found = 0, foreign = 0;

    if ((r = repo_alloc(store)) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = cairn_store_get(store, CAIRN_OBJ_CONFIG, "config", &cfg,
                              &cfglen)) != 0)
        goto err1;
    /* First without the MAC: the archive id is needed to derive the keys. */
    if ((rc = cairn_config_decode(cfg, cfglen, NULL, &r->config)) != 0)
        goto err2;
    if ((rc = cairn_store_list(store, CAIRN_OBJ_KEY, collect_key, &kn)) != 0)
        goto err3;
    for (i = 0; i < kn.n && !found; i++) {
        if (cairn_store_get(store, CAIRN_OBJ_KEY, kn.v[i], &key, &keylen) !=
            0)
            continue;
        rc = cairn_keyfile_open(key, keylen, pass, passlen, master, aid);
        free(key);
        if (rc == CAIRN_ENOMEM)
            goto err3;
        if (rc != 0)
            continue;
        if (memcmp(aid, r->config.archive_id, CAIRN_ID_LEN) != 0) {
            cairn_log(CAIRN_LOG_WARN, "key %s belongs to another archive",
                      kn.v[i]);
            cairn_wipe(master, sizeof(master));
            foreign = 1;
            continue;
        }
        snprintf(r->key_name, sizeof(r->key_name), "%s", kn.v[i]);
        found = 1;
    }
    if (!found) {
        /* The passphrase opened a key, but not one of the archive id the
         * config names: the config (or the key) was tampered with, which
         * "wrong passphrase" would hide. */
        rc = foreign ? CAIRN_ECORRUPT : CAIRN_EAUTH;
        goto err3;
    }
    rc = cairn_keys_derive(master, aid, &r->keys);
    cairn_wipe(master, sizeof(master));
    if (rc != 0)
        goto err3;
    /* Now that the keys are known, the config must authenticate. */
    if ((rc = cairn_config_decode(cfg, cfglen, r->keys.mac, &r->config)) !=
        0)
        goto err3;
    if ((rc = make_chunker(r)) != 0)
        goto err3;
    for (i = 0; i < kn.n; i++)
        free(kn.v[i]);
    free(kn.v);
    free(cfg);
    *out = r;
    return 0;

err3:
    for (i = 0; i < kn.n; i++)
        free(kn.v[i]);
    free(kn.v);
err2:
    free(cfg);
err1:
    repo_release(r);
    return rc;
}

const struct cairn_keys *cairn_repo_keys(const struct cairn_repo *r)
{
    return &r->keys;
}

const struct cairn_config *cairn_repo_config(const struct cairn_repo *r)
{
    return &r->config;
}

const struct cairn_chunker *cairn_repo_chunker(const struct cairn_repo *r)
{
    return r->chunker;
}

struct cairn_store *cairn_repo_store(struct cairn_repo *r)
{
    return r->store;
}

const char *cairn_repo_key_name(const struct cairn_repo *r)
{
    return r->key_name;
}
