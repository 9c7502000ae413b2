/*
 * fuzz_config.c - config decoding on hostile input, with the MAC key (32
 * bytes of 0x04, as the seed corpus is made by tests/unit/test_snapshot.c)
 * and without; what decodes re-encodes to the same bytes (all of them
 * with the key, all but the MAC without).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/snapshot.h"
#include "fuzz.h"

static const uint8_t mac_key[CAIRN_KEY_LEN] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                               4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                               4, 4, 4, 4, 4, 4, 4, 4, 4, 4};

static void round_trip(const uint8_t *data, size_t size, const uint8_t *key)
{
    struct cairn_config c, c2;
    uint8_t *buf = NULL;
    size_t len = 0;

    if (cairn_config_decode(data, size, key, &c) != 0)
        return;
    if (cairn_config_encode(&c, mac_key, &buf, &len) != 0 || len != size ||
        memcmp(buf, data, size - 32) != 0)
        abort();
    if (key != NULL && memcmp(buf, data, size) != 0)
        abort();
    if (cairn_config_decode(buf, len, mac_key, &c2) != 0 ||
        memcmp(c.archive_id, c2.archive_id, sizeof(c.archive_id)) != 0 ||
        c.chunk_min != c2.chunk_min || c.chunk_avg != c2.chunk_avg ||
        c.chunk_max != c2.chunk_max || c.pack_size != c2.pack_size ||
        c.zstd_level != c2.zstd_level || c.created_ns != c2.created_ns)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(data, size, mac_key);
    round_trip(data, size, NULL);
    return 0;
}
