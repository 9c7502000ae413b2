/*
 * repo_snapshots.c - list, find and save snapshots.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "repo_internal.h"

struct names {
    char **v;
    size_t n, cap;
};

static int collect(void *arg, const char *name, uint64_t size)
{
    struct names *nm = arg;

    if (nm->n == nm->cap) {
        size_t ncap = nm->cap ? nm->cap * 2 : 64;
        char **nv = realloc(nm->v, ncap * sizeof(*nv));

        if (nv == NULL)
            return CAIRN_ENOMEM;
        nm->v = nv;
        nm->cap = ncap;
    }
    if ((nm->v[nm->n] = strdup(name)) == NULL)
        return CAIRN_ENOMEM;
    nm->n++;
    return 0;
}

static void names_free(struct names *nm)
{
    size_t i;

    for (i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
}

/* Read and decode one snapshot, checking that it is the object its name
 * says. */
static int load_one(struct cairn_repo *r, const char *name,
                    struct cairn_snapshot **out)
{
    struct cairn_snapshot *s;
    char hex[2 * CAIRN_ID_LEN + 1];
    uint8_t *buf;
    size_t len;
    int rc;

    if ((rc = cairn_store_get(r->store, CAIRN_OBJ_SNAPSHOT, name, &buf,
                              &len)) != 0)
        return rc;
    rc = cairn_snapshot_decode(buf, len, &r->keys, &s);
    free(buf);
    if (rc != 0)
        return rc;
    repo_hex(s->id, hex);
    if (strcmp(hex, name) != 0) {
        cairn_snapshot_free(s);
        return CAIRN_ECORRUPT;
    }
    *out = s;
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const struct cairn_snapshot *x = *(struct cairn_snapshot *const *)a;
    const struct cairn_snapshot *y = *(struct cairn_snapshot *const *)b;

    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    return memcmp(x->id, y->id, CAIRN_ID_LEN);
}

void cairn_snapshot_list_free(struct cairn_snapshot **v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        cairn_snapshot_free(v[i]);
    free(v);
}

int cairn_repo_list_snapshots(struct cairn_repo *r,
                              struct cairn_snapshot ***out, size_t *out_n,
                              uint32_t *out_bad)
{
    struct names nm = {NULL, 0, 0};
    struct cairn_snapshot **v = NULL;
    size_t i, n = 0;
    uint32_t bad = 0;
    int rc;

    if ((rc = cairn_store_list(r->store, CAIRN_OBJ_SNAPSHOT, collect, &nm)) !=
        0)
        goto err0;
    if (nm.n > 0 && (v = calloc(nm.n, sizeof(*v))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    for (i = 0; i < nm.n; i++) {
        rc = load_one(r, nm.v[i], &v[n]);
        if (rc == CAIRN_ENOMEM)
            goto err1;
        if (rc != 0) {
            cairn_log(CAIRN_LOG_ERROR, "snapshot %s cannot be read: %s",
                      nm.v[i], cairn_strerror(rc));
            bad++;
            continue;
        }
        n++;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), by_time);
    names_free(&nm);
    *out = v;
    *out_n = n;
    if (out_bad != NULL)
        *out_bad = bad;
    return 0;

err1:
    cairn_snapshot_list_free(v, n);
err0:
    names_free(&nm);
    return rc;
}

int cairn_repo_find_snapshot(struct cairn_repo *r, const char *spec,
                             struct cairn_snapshot **out)
{
    struct names nm = {NULL, 0, 0};
    struct cairn_snapshot **v;
    size_t i, n, speclen = strlen(spec);
    const char *match = NULL;
    int rc;

    if (strcmp(spec, "latest") == 0) {
        if ((rc = cairn_repo_list_snapshots(r, &v, &n, NULL)) != 0)
            return rc;
        if (n == 0) {
            cairn_snapshot_list_free(v, n);
            return CAIRN_ENOENT;
        }
        *out = v[n - 1];
        v[n - 1] = NULL;
        cairn_snapshot_list_free(v, n - 1);
        return 0;
    }
    if (speclen < 4 || speclen > 2 * CAIRN_ID_LEN)
        return CAIRN_EINVAL;
    for (i = 0; i < speclen; i++)
        if (!((spec[i] >= '0' && spec[i] <= '9') ||
              (spec[i] >= 'a' && spec[i] <= 'f')))
            return CAIRN_EINVAL;
    if ((rc = cairn_store_list(r->store, CAIRN_OBJ_SNAPSHOT, collect, &nm)) !=
        0)
        goto out;
    for (i = 0; i < nm.n; i++) {
        if (strncmp(nm.v[i], spec, speclen) != 0)
            continue;
        if (match != NULL) {
            rc = CAIRN_EAMBIGUOUS;
            goto out;
        }
        match = nm.v[i];
    }
    rc = match ? load_one(r, match, out) : CAIRN_ENOENT;
out:
    names_free(&nm);
    return rc;
}

int cairn_repo_save_snapshot(struct cairn_repo *r, struct cairn_snapshot *s)
{
    char name[2 * CAIRN_ID_LEN + 1];
    uint8_t *buf;
    size_t len;
    int rc;

    if ((rc = cairn_snapshot_encode(s, &r->keys, &buf, &len)) != 0)
        return rc;
    repo_hex(s->id, name);
    rc = cairn_store_put(r->store, CAIRN_OBJ_SNAPSHOT, name, buf, len, 1);
    free(buf);
    return rc;
}
