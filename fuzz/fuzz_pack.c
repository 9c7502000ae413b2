/*
 * fuzz_pack.c - pack trailers on hostile input, with the MAC key (32
 * bytes of 0x04, as the seed corpus is made by tests/unit/test_pack.c)
 * and without.  What reads back must name the pack by its SHA-256, keep
 * every blob inside the blob area, and re-encode to the trailer's bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/pack.h"
#include "fuzz.h"

static const uint8_t mac_key[CAIRN_KEY_LEN] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                               4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                               4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

static void check(const uint8_t *data, size_t size, const uint8_t *key)
{
    struct cairn_index *idx = NULL;
    struct cairn_pack_info *pi;
    struct cairn_buf b;
    uint8_t hash[32];
    uint32_t tlen, i;
    size_t tstart;

    if (cairn_pack_read_index(data, size, key, &idx) != 0)
        return;
    pi = &idx->packs[0];
    cairn_sha256(data, size, hash);
    if (idx->npacks != 1 || memcmp(pi->id, hash, 32) != 0 || pi->length != size)
        abort();
    if (cairn_pack_footer_decode(data + size - 8, &tlen) != 0)
        abort();
    tstart = size - 8 - tlen;
    for (i = 0; i < pi->nblobs; i++)
        if (pi->blobs[i].offset < 8 ||
            (uint64_t)pi->blobs[i].offset + pi->blobs[i].length > tstart)
            abort();
    /* The trailer names no pack. */
    memset(pi->id, 0, 32);
    pi->length = 0;
    cairn_buf_init(&b, 0);
    if (cairn_index_encode(pi, 1, mac_key, &b) != 0 || b.len != tlen ||
        memcmp(b.data, data + tstart, tlen - 32) != 0)
        abort();
    if (key != NULL && memcmp(b.data, data + tstart, tlen) != 0)
        abort();
    cairn_buf_free(&b);
    cairn_index_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t tlen;

    if (size >= 8)
        (void)cairn_pack_footer_decode(data + size - 8, &tlen);
    check(data, size, mac_key);
    check(data, size, NULL);
    return 0;
}
