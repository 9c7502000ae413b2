/*
 * fuzz_blob.c - opening stored blobs, and sealing arbitrary plaintext.
 *
 * Input layout: type (1) | raw_len (u32 le) | id (32) | stored blob, under
 * the keys derived from master = 32 x 0x42, archive id = 32 x 0x24 (the
 * keys tests/unit/test_blob.c writes its seeds with, when run with
 * CAIRN_WRITE_CORPUS=fuzz/corpus).
 *
 * 1. Open the stored blob.  Damaged input must fail with CAIRN_ECORRUPT,
 *    never crash; a blob that opens must open again with its id verified
 *    (the seeds' ids are genuine) and round-trip through seal and open.
 * 2. The whole input, as plaintext, must round-trip through seal and open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "fuzz.h"

#define HDR_LEN (1 + 4 + CAIRN_ID_LEN)
/* Larger claimed lengths are not worth allocating for. */
#define FUZZ_RAW_MAX ((size_t)4 << 20)

static struct cairn_blob_codec *codec;

static struct cairn_blob_codec *get_codec(void)
{
    struct cairn_keys keys;
    uint8_t master[CAIRN_KEY_LEN], aid[CAIRN_ID_LEN];

    if (codec != NULL)
        return codec;
    memset(master, 0x42, sizeof(master));
    memset(aid, 0x24, sizeof(aid));
    if (cairn_keys_derive(master, aid, &keys) != 0)
        abort();
    if ((codec = cairn_blob_codec_new(&keys, 3)) == NULL)
        abort();
    cairn_keys_wipe(&keys);
    return codec;
}

/* Seal buf under id and type, open it, compare. */
static void roundtrip(struct cairn_blob_codec *c, uint8_t type,
                      const uint8_t id[CAIRN_ID_LEN], const uint8_t *buf,
                      size_t len, int verify_id)
{
    uint8_t *stored, *back;
    size_t slen;

    if ((stored = malloc(cairn_blob_seal_bound(len))) == NULL ||
        (back = malloc(len + 1)) == NULL)
        abort();
    if (cairn_blob_seal(c, type, id, buf, len, stored, &slen) != 0)
        abort();
    if (slen > cairn_blob_seal_bound(len))
        abort();
    if (cairn_blob_open(c, type, id, stored, slen, back, len, verify_id) != 0)
        abort();
    if (len > 0 && memcmp(back, buf, len) != 0)
        abort();
    free(back);
    free(stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_blob_codec *c = get_codec();
    uint8_t id[CAIRN_ID_LEN];
    uint8_t *out;
    size_t raw_len;
    uint8_t type;
    int rc;

    if (size >= HDR_LEN) {
        type = data[0];
        raw_len = cairn_le32dec(data + 1);
        memcpy(id, data + 5, CAIRN_ID_LEN);
        if (raw_len <= FUZZ_RAW_MAX) {
            if ((out = malloc(raw_len + 1)) == NULL)
                abort();
            rc = cairn_blob_open(c, type, id, data + HDR_LEN, size - HDR_LEN,
                                 out, raw_len, 0);
            if (rc == 0) {
                if (cairn_blob_open(c, type, id, data + HDR_LEN, size - HDR_LEN,
                                    out, raw_len, 1) != 0)
                    abort();
                roundtrip(c, type, id, out, raw_len, 1);
            } else if (rc != CAIRN_ECORRUPT) {
                abort();
            }
            free(out);
        }
    }

    if (cairn_blob_id(c, data, size, id) != 0)
        abort();
    roundtrip(c, CAIRN_BLOB_DATA, id, data, size, 1);
    return 0;
}
