/*
 * fuzz_chunker.c - the chunker on arbitrary data with small parameters
 * (min 64, avg 256, max 1024): every chunk within [min, max] but the last,
 * lengths summing to the input, and feeding the data in pieces (sizes
 * drawn from the data itself) giving the same cuts as one call.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/chunker.h"
#include "fuzz.h"

#define MIN 64
#define AVG 256
#define MAX 1024

static struct cairn_chunker *chunker(void)
{
    static struct cairn_chunker *c;
    static const struct cairn_chunker_params p = {MIN, AVG, MAX};
    uint8_t key[32];

    if (c == NULL) {
        memset(key, 0x5c, sizeof(key));
        if (cairn_chunker_new(key, &p, &c) != 0)
            abort();
    }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cairn_chunker *c = chunker();
    size_t pos, r, avail, k, n = 0, *cuts;
    uint8_t step;

    if ((cuts = malloc((size / MIN + 2) * sizeof(*cuts))) == NULL)
        return 0;

    /* One call per chunk with everything available. */
    for (pos = 0; pos < size; pos += r) {
        r = cairn_chunker_next(c, data + pos, size - pos, 1);
        if (r == 0 || r > size - pos || r > MAX)
            abort();
        if (r < MIN && pos + r != size)
            abort();
        cuts[n++] = r;
    }
    if (cairn_chunker_next(c, data, 0, 1) != 0)
        abort();

    /* The same cuts when the data arrives in pieces. */
    step = size > 0 ? data[0] : 1;
    for (pos = 0, avail = 0, k = 0; pos < size;) {
        r = cairn_chunker_next(c, data + pos, avail, pos + avail == size);
        if (r == 0) {
            if (avail >= MAX || pos + avail == size)
                abort();
            avail += 1 + (step % 97);
            step = (uint8_t)(step * 31 + 7);
            if (avail > size - pos)
                avail = size - pos;
            continue;
        }
        if (k >= n || r != cuts[k])
            abort();
        k++;
        pos += r;
        avail -= r;
    }
    if (k != n)
        abort();
    free(cuts);
    return 0;
}
