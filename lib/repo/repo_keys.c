/*
 * repo_keys.c - add, list and remove the key files that unlock an archive.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "repo_internal.h"

int cairn_repo_key_add(struct cairn_repo *r, const char *pass, size_t passlen,
                       const struct cairn_kdf_params *kdf, const char *label,
                       char out_name[2 * CAIRN_ID_LEN + 1])
{
    struct cairn_kdf_params def = {CAIRN_KDF_DEFAULT_LOG2_N,
                                   CAIRN_KDF_DEFAULT_R, CAIRN_KDF_DEFAULT_P};
    uint8_t *key, kid[CAIRN_ID_LEN];
    size_t keylen;
    int rc;

    if (kdf == NULL || kdf->log2_n == 0)
        kdf = &def;
    if ((rc = cairn_keyfile_create(r->keys.master, r->config.archive_id, pass,
                                   passlen, kdf, label, &key, &keylen)) != 0)
        return rc;
    cairn_sha256(key, keylen, kid);
    repo_hex(kid, out_name);
    rc = cairn_store_put(r->store, CAIRN_OBJ_KEY, out_name, key, keylen, 1);
    free(key);
    return rc;
}

struct list_ctx {
    struct cairn_repo *r;
    cairn_repo_key_fn fn;
    void *arg;
};

static int list_one(void *arg, const char *name, uint64_t size)
{
    struct list_ctx *lc = arg;
    struct cairn_keyfile_info info;
    uint8_t *buf;
    size_t len;
    int rc;

    if ((rc = cairn_store_get(lc->r->store, CAIRN_OBJ_KEY, name, &buf,
                              &len)) != 0)
        return rc;
    rc = cairn_keyfile_info(buf, len, &info);
    free(buf);
    if (rc != 0)
        return rc;
    return lc->fn(lc->arg, name, &info,
                  strcmp(name, lc->r->key_name) == 0);
}

int cairn_repo_key_list(struct cairn_repo *r, cairn_repo_key_fn fn, void *arg)
{
    struct list_ctx lc = {r, fn, arg};

    return cairn_store_list(r->store, CAIRN_OBJ_KEY, list_one, &lc);
}

int cairn_repo_key_remove(struct cairn_repo *r, const char *name)
{
    if (strcmp(name, r->key_name) == 0)
        return CAIRN_EINVAL;
    return cairn_store_remove(r->store, CAIRN_OBJ_KEY, name);
}
