/*
 * fuzz_index.c - index decoding on hostile input, with the MAC key (32
 * bytes of 0x04, as the seed corpus is made by tests/unit/test_index.c)
 * and without.  What decodes with the key re-encodes to the same bytes;
 * what decodes without it re-encodes to the same bytes but for the MAC.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/pack.h"
#include "fuzz.h"

static void round_trip(const uint8_t *data, size_t size, const uint8_t *key)
{
    static const uint8_t mac_key[CAIRN_KEY_LEN] = {
        4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
        4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
    struct cairn_index *idx = NULL, *idx2 = NULL;
    struct cairn_buf b;

    if (cairn_index_decode(data, size, key, &idx) != 0)
        return;
    cairn_buf_init(&b, 0);
    if (cairn_index_encode(idx->packs, idx->npacks, mac_key, &b) != 0 ||
        b.len != size || memcmp(b.data, data, size - 32) != 0)
        abort();
    if (key != NULL && memcmp(b.data, data, size) != 0)
        abort();
    if (cairn_index_decode(b.data, b.len, mac_key, &idx2) != 0 ||
        idx2->npacks != idx->npacks)
        abort();
    cairn_index_free(idx2);
    cairn_buf_free(&b);
    cairn_index_free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac_key[CAIRN_KEY_LEN] = {
        4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
        4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

    round_trip(data, size, mac_key);
    round_trip(data, size, NULL);
    return 0;
}
