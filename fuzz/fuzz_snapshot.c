/*
 * fuzz_snapshot.c - snapshot decoding on hostile input, without keys (the
 * server's view) and with them (every byte of master, id, data, mac, meta,
 * chunker is 1..6, as the seed corpus is made by
 * tests/unit/test_snapshot.c).  What decodes with keys is encoded again
 * (a fresh nonce, so other bytes) and must decode to the same fields, with
 * the same public header; the keyless view must agree on public fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/snapshot.h"
#include "fuzz.h"

#define PUBLIC_LEN 140 /* up to the private part */

static int same_public(const struct cairn_snapshot *a,
                       const struct cairn_snapshot *b)
{
    return a->time_ns == b->time_ns && a->has_parent == b->has_parent &&
           a->complete == b->complete && a->files == b->files &&
           a->dirs == b->dirs && a->bytes == b->bytes &&
           a->added_bytes == b->added_bytes && a->errors == b->errors &&
           memcmp(a->root, b->root, sizeof(a->root)) == 0 &&
           memcmp(a->parent, b->parent, sizeof(a->parent)) == 0 &&
           memcmp(a->device, b->device, sizeof(a->device)) == 0;
}

static int same_private(const struct cairn_snapshot *a,
                        const struct cairn_snapshot *b)
{
    uint32_t i;

    if (strcmp(a->hostname, b->hostname) != 0 ||
        strcmp(a->username, b->username) != 0 || a->npaths != b->npaths ||
        a->ntags != b->ntags)
        return 0;
    for (i = 0; i < a->npaths; i++)
        if (strcmp(a->paths[i], b->paths[i]) != 0)
            return 0;
    for (i = 0; i < a->ntags; i++)
        if (strcmp(a->tags[i], b->tags[i]) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_snapshot *pub = NULL, *s = NULL, *s2 = NULL;
    struct cairn_keys keys;
    uint8_t *buf = NULL;
    size_t len = 0;

    memset(keys.master, 1, sizeof(keys.master));
    memset(keys.id, 2, sizeof(keys.id));
    memset(keys.data, 3, sizeof(keys.data));
    memset(keys.mac, 4, sizeof(keys.mac));
    memset(keys.meta, 5, sizeof(keys.meta));
    memset(keys.chunker, 6, sizeof(keys.chunker));

    if (cairn_snapshot_decode(data, size, NULL, &pub) == 0 &&
        (pub->have_private || pub->paths != NULL || pub->hostname != NULL))
        abort();
    if (cairn_snapshot_decode(data, size, &keys, &s) != 0)
        goto done;
    /* Whatever opens with keys is well-formed without them too. */
    if (pub == NULL || !same_public(pub, s) ||
        memcmp(pub->id, s->id, CAIRN_ID_LEN) != 0 || !s->have_private)
        abort();
    if (cairn_snapshot_encode(s, &keys, &buf, &len) != 0 || len != size ||
        memcmp(buf, data, PUBLIC_LEN) != 0)
        abort();
    if (cairn_snapshot_decode(buf, len, &keys, &s2) != 0 ||
        !same_public(s, s2) || !same_private(s, s2) ||
        memcmp(s2->id, s->id, CAIRN_ID_LEN) != 0)
        abort();
    free(buf);
    cairn_snapshot_free(s2);
    cairn_snapshot_free(s);
done:
    cairn_snapshot_free(pub);
    return 0;
}
