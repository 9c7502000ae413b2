/*
 * repo_read.c - read blobs and trees.
 */
#include <stdlib.h>

#include "cairn/err.h"
#include "repo_internal.h"

int cairn_repo_read_blob(struct cairn_repo *r, struct cairn_blob_codec *codec,
                         const uint8_t id[CAIRN_ID_LEN], uint8_t type,
                         uint8_t **out, size_t *out_len)
{
    struct cairn_blob_loc loc;
    char name[2 * CAIRN_ID_LEN + 1];
    uint8_t *stored, *plain;
    int rc;

    if ((rc = cairn_repo_lookup(r, id, &loc)) != 0)
        goto err0;
    if (loc.type != type || loc.raw_length > CAIRN_BLOB_MAX) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if ((stored = malloc(loc.length ? loc.length : 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    repo_hex(loc.pack, name);
    if ((rc = cairn_store_get_range(r->store, CAIRN_OBJ_PACK, name, loc.offset,
                                    loc.length, stored)) != 0)
        goto err1;
    if ((plain = malloc(loc.raw_length ? loc.raw_length : 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    if ((rc = cairn_blob_open(codec, type, id, stored, loc.length, plain,
                              loc.raw_length, 0)) != 0)
        goto err2;
    free(stored);
    *out = plain;
    *out_len = loc.raw_length;
    return 0;

err2:
    free(plain);
err1:
    free(stored);
err0:
    return rc;
}

int cairn_repo_read_tree(struct cairn_repo *r, struct cairn_blob_codec *codec,
                         const uint8_t id[CAIRN_ID_LEN],
                         struct cairn_tree **out)
{
    uint8_t *buf;
    size_t len;
    int rc;

    if ((rc = cairn_repo_read_blob(r, codec, id, CAIRN_BLOB_TREE, &buf,
                                   &len)) != 0)
        return rc;
    rc = cairn_tree_decode(buf, len, out);
    free(buf);
    return rc;
}
