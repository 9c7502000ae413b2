/*
 * fuzz_seal.c - opening sealed boxes.
 *
 * The input is a sealed box, opened under a fixed key pair (Bob's of RFC
 * 7748, section 6.1).  Whatever it is, unseal must answer 0,
 * CAIRN_ECORRUPT or CAIRN_EVERSION (the latter only for a version byte
 * above 1) and never crash; a box that opens must round-trip: sealing its
 * message again gives a box of the same size that opens to the same
 * message.  Seeds: tests/unit/test_seal.c with CAIRN_WRITE_CORPUS=fuzz/corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"
#include "fuzz.h"

#define BOB_PRIV                                                               \
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB                                                                \
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pub[CAIRN_X25519_LEN], priv[CAIRN_X25519_LEN];
    uint8_t *msg = NULL, *box, *msg2;
    size_t len, box_len, len2;
    int rc;

    if (cairn_hex_decode(BOB_PUB, pub, sizeof(pub)) != 0 ||
        cairn_hex_decode(BOB_PRIV, priv, sizeof(priv)) != 0)
        abort();

    rc = cairn_unseal(pub, priv, data, size, &msg, &len);
    if (rc != 0) {
        if (rc == CAIRN_EVERSION) {
            if (size < 5 || data[4] <= 1)
                abort();
        } else if (rc != CAIRN_ECORRUPT) {
            abort();
        }
        return 0;
    }
    if (size != len + CAIRN_SEAL_OVERHEAD)
        abort();

    if (cairn_seal(pub, msg, len, &box, &box_len) != 0 || box_len != size)
        abort();
    if (cairn_unseal(pub, priv, box, box_len, &msg2, &len2) != 0 ||
        len2 != len || (len > 0 && memcmp(msg, msg2, len) != 0))
        abort();
    free(msg2);
    free(box);
    free(msg);
    return 0;
}
