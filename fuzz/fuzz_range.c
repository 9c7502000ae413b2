/*
 * fuzz_range.c - the request headers and path segments of cairnd's object
 * routes (docs/API.md, "Device archives"): the Range header of a GET
 * (range_parse), the object type and the object name of a path (type_parse,
 * cairn_store_name_valid, hex64).
 *
 * The input, as a C string, is a Range header, parsed against objects of
 * several sizes: an accepted range lies inside the object and is not
 * empty, and "bytes=<first>-<last>" made from it parses back to the same
 * range; an unsatisfiable one (416) only where the object is empty or the
 * range starts past its end.  The same text is then an object type and an
 * object name.
 *
 * These are static functions of server/api_object.c, which is compiled
 * into this target (its symbols come from here; the copy in srv_lib is not
 * linked).
 */
#include "../server/api_object.c"

#include "fuzz.h"

static void range_check(const char *h, uint64_t size)
{
    uint64_t off = 0, len = 0, off2 = 0, len2 = 0;
    char back[64];
    int rc;

    rc = range_parse(h, size, &off, &len);
    if (rc == 1)
        return;
    if (rc == -1) {
        /* Unsatisfiable: nothing to send, or a start past the end. */
        if (size != 0 && strncmp(h, "bytes=-", 7) != 0) {
            unsigned long long a = strtoull(h + 6, NULL, 10);

            if (a < size)
                abort();
        }
        return;
    }
    if (rc != 0 || len == 0 || off >= size || len > size - off)
        abort();
    snprintf(back, sizeof(back), "bytes=%llu-%llu", (unsigned long long)off,
             (unsigned long long)(off + len - 1));
    if (range_parse(back, size, &off2, &len2) != 0 || off2 != off ||
        len2 != len)
        abort();
}

static void name_check(const char *n)
{
    enum cairn_obj_type t;
    uint8_t id[32];
    char hex[65];

    if (type_parse(n, &t) == 0) {
        if (t != CAIRN_OBJ_CONFIG && t != CAIRN_OBJ_PACK &&
            t != CAIRN_OBJ_INDEX && t != CAIRN_OBJ_SNAPSHOT)
            abort();
        if (!content_named(t) && t != CAIRN_OBJ_CONFIG)
            abort();
    }
    for (t = CAIRN_OBJ_CONFIG; t <= CAIRN_OBJ_LOCK; t++)
        (void)cairn_store_name_valid(t, n);
    /* 64 lowercase hex digits: decodes and encodes back to itself, and is a
     * valid name of every content-named type. */
    if (hex64(n)) {
        if (cairn_hex_decode(n, id, sizeof(id)) != 0)
            abort();
        cairn_hex_encode(id, sizeof(id), hex);
        if (strcmp(hex, n) != 0 ||
            !cairn_store_name_valid(CAIRN_OBJ_PACK, n) ||
            !cairn_store_name_valid(CAIRN_OBJ_INDEX, n) ||
            !cairn_store_name_valid(CAIRN_OBJ_SNAPSHOT, n))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {
        0, 1, 2, 100, 4096, 16777216, 18446744073709551615ULL};
    char *text;
    size_t i;

    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        range_check(text, sizes[i]);
    name_check(text);
    free(text);
    return 0;
}
