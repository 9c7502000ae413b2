/*
 * fuzz_tree.c - tree decoding on hostile input, round-tripped: whatever
 * decodes must encode to the very same bytes (the encoding is canonical)
 * and decode again; find must locate every entry; refs must count them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/tree.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_tree *t = NULL, *t2 = NULL;
    uint8_t(*refs)[CAIRN_ID_LEN] = NULL;
    struct cairn_buf b;
    uint64_t nref = 0;
    uint32_t i, n;

    if (cairn_tree_decode(data, size, &t) != 0)
        return 0;
    cairn_buf_init(&b, 0);
    if (cairn_tree_encode(t, &b) != 0 || b.len != size ||
        memcmp(b.data, data, size) != 0)
        abort();
    if (cairn_tree_decode(b.data, b.len, &t2) != 0 ||
        t2->nentries != t->nentries)
        abort();
    for (i = 0; i < t->nentries; i++) {
        if (cairn_tree_find(t, t->entries[i].name) != &t->entries[i])
            abort();
        nref += t->entries[i].ncontent + (t->entries[i].has_subtree ? 1 : 0);
    }
    if (cairn_tree_refs(t, &refs, &n) == 0 && n != nref)
        abort();
    free(refs);
    cairn_tree_free(t2);
    cairn_buf_free(&b);
    cairn_tree_free(t);
    return 0;
}
