/*
 * fuzz_keyfile.c - key file parsing and unwrapping.
 *
 * The input is a key file.  Whatever it is, info and open must agree on
 * structural errors and never crash; a file that opens with the
 * passphrase "fuzz" must round-trip: wrapping the same keys again with the
 * same parameters and label gives a file of the same size that opens to
 * the same keys.  Seeds: tests/unit/test_keyfile.c with
 * CAIRN_WRITE_CORPUS=fuzz/corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "fuzz.h"

#define PASS "fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cairn_keyfile_info info, info2;
    uint8_t m[CAIRN_KEY_LEN], id[CAIRN_ID_LEN];
    uint8_t m2[CAIRN_KEY_LEN], id2[CAIRN_ID_LEN];
    uint8_t *kf;
    size_t len;
    int rc;

    rc = cairn_keyfile_info(data, size, &info);
    if (rc != 0) {
        /* Structural errors are found before any scrypt work. */
        if (rc != CAIRN_ECORRUPT && rc != CAIRN_EVERSION)
            abort();
        if (cairn_keyfile_open(data, size, PASS, strlen(PASS), m, id) != rc)
            abort();
        return 0;
    }
    if (strlen(info.label) > 255)
        abort();
    /* Keep each run fast: only cheap scrypt parameters are tried. */
    if (info.kdf.log2_n > 12 || info.kdf.r > 8 || info.kdf.p > 2)
        return 0;

    rc = cairn_keyfile_open(data, size, PASS, strlen(PASS), m, id);
    if (rc != 0) {
        if (rc != CAIRN_EAUTH)
            abort();
        return 0;
    }

    if (cairn_keyfile_create(m, id, PASS, strlen(PASS), &info.kdf, info.label,
                             &kf, &len) != 0)
        abort();
    if (len != size)
        abort();
    if (cairn_keyfile_info(kf, len, &info2) != 0 ||
        info.kdf.log2_n != info2.kdf.log2_n || info.kdf.r != info2.kdf.r ||
        info.kdf.p != info2.kdf.p || strcmp(info.label, info2.label) != 0)
        abort();
    if (cairn_keyfile_open(kf, len, PASS, strlen(PASS), m2, id2) != 0 ||
        memcmp(m, m2, sizeof(m)) != 0 || memcmp(id, id2, sizeof(id)) != 0)
        abort();
    free(kf);
    cairn_wipe(m, sizeof(m));
    cairn_wipe(m2, sizeof(m2));
    return 0;
}
