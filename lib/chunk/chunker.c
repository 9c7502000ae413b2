/*
 * chunker.c - keyed content-defined chunking: FastCDC with normalised
 * chunking (level 2).
 *
 * The gear hash h = (h << 1) + gear[byte] is a sum of table entries each
 * shifted by its distance from the end, so bit k of h depends on the last
 * k + 1 bytes only.  A cut is made where the top bits of h are all zero:
 * the masks take the HIGH bits (not spread over the word as in the FastCDC
 * paper), which makes every cut decision depend on the last 64 bytes - the
 * widest window the hash has - with the same cost as any other mask.
 *
 *   maskS: log2(avg) + 2 high bits, for chunk lengths in [min, avg)
 *   maskL: log2(avg) - 2 high bits, for lengths in [avg, max)
 *   a cut at max when neither fires.
 *
 * No cut can fall before min, so the first min - 64 bytes are skipped
 * unhashed and the 63 bytes after that only fill the hash: at every
 * length tested, h is then exactly the hash of the 64 bytes before it, and
 * the cut points are a function of the content alone.
 *
 * The gear table: gear[i] = the i-th little-endian u64 of
 * HKDF-SHA-256(ikm = key, salt = empty, info = "cairn/v1/gear", 2048).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cairn/buf.h"
#include "cairn/chunker.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

#define GEAR_INFO "cairn/v1/gear"
#define WINDOW 64 /* bytes that determine h */
#define MAX_LIMIT (64u * 1024 * 1024)

struct cairn_chunker {
    uint64_t gear[256];
    uint64_t mask_s; /* before avg: harder to satisfy */
    uint64_t mask_l; /* from avg: easier */
    size_t min, avg, max;
};

/* Check params: 64 <= min < avg < max <= 64 MiB, avg a power of two.
 * 0 or CAIRN_EINVAL. */
int cairn_chunker_params_check(const struct cairn_chunker_params *p)
{
    if (p == NULL || p->min < WINDOW || p->min >= p->avg || p->avg >= p->max ||
        p->max > MAX_LIMIT || (p->avg & (p->avg - 1)) != 0)
        return CAIRN_EINVAL;
    return 0;
}

/* A mask of the top n bits of a u64 (0 < n < 64). */
static uint64_t high_bits(unsigned n)
{
    return ~(uint64_t)0 << (64 - n);
}

/*
 * Make a chunker for params, its gear table derived from key.  *out is
 * freed with cairn_chunker_free; it is immutable, so any number of threads
 * may use it at once.  CAIRN_EINVAL for bad params, CAIRN_ENOMEM,
 * CAIRN_ECRYPTO.
 */
int cairn_chunker_new(const uint8_t key[32],
                      const struct cairn_chunker_params *params,
                      struct cairn_chunker **out)
{
    struct cairn_chunker *c;
    uint8_t table[256 * 8];
    unsigned bits, i;
    int rc;

    if (key == NULL || (rc = cairn_chunker_params_check(params)) != 0) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((c = malloc(sizeof(*c))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if ((rc = cairn_hkdf(key, 32, (const uint8_t *)"", 0, GEAR_INFO, table,
                         sizeof(table))) != 0)
        goto err1;
    for (i = 0; i < 256; i++)
        c->gear[i] = cairn_le64dec(table + 8 * i);

    /* avg is a power of two in [128, 32 MiB]: bits in [7, 25]. */
    for (bits = 0; ((uint32_t)1 << bits) < params->avg; bits++)
        ;
    c->mask_s = high_bits(bits + 2);
    c->mask_l = high_bits(bits - 2);
    c->min = params->min;
    c->avg = params->avg;
    c->max = params->max;
    cairn_wipe(table, sizeof(table));
    *out = c;

    /* Success! */
    return 0;

err1:
    cairn_wipe(table, sizeof(table));
    free(c);
err0:
    /* Failure! */
    return rc;
}

/* Free c (its table wiped: it is derived from a secret).  NULL is fine. */
void cairn_chunker_free(struct cairn_chunker *c)
{
    if (c == NULL)
        return;
    cairn_wipe(c, sizeof(*c));
    free(c);
}

/*
 * Find the end of the chunk at buf[0]: its length (min..max, or less at
 * the end of the data), or 0 when the cut lies past len and more data may
 * follow (see chunker.h).  Thread safe.
 */
size_t cairn_chunker_next(const struct cairn_chunker *c, const uint8_t *buf,
                          size_t len, int eof)
{
    const uint64_t *gear = c->gear;
    const uint64_t mask_s = c->mask_s, mask_l = c->mask_l;
    size_t i, end, normal;
    uint64_t h = 0;

    if (len < c->min)
        return eof ? len : 0;
    end = len < c->max ? len : c->max;
    normal = c->avg - 1 < end ? c->avg - 1 : end;

    /* Byte i ends a chunk of length i + 1. */
    for (i = c->min - WINDOW; i < c->min - 1; i++)
        h = (h << 1) + gear[buf[i]];
    for (; i < normal; i++) {
        h = (h << 1) + gear[buf[i]];
        if ((h & mask_s) == 0)
            return i + 1;
    }
    for (; i < end; i++) {
        h = (h << 1) + gear[buf[i]];
        if ((h & mask_l) == 0)
            return i + 1;
    }
    if (end == c->max)
        return end;
    return eof ? len : 0;
}
