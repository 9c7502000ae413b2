/*
 * test_keyfile.c - key files: round trip, wrong passphrase, and rejection
 * of every truncation and of damage in every field.
 *
 * With CAIRN_WRITE_CORPUS=DIR in the environment, also writes seed inputs
 * for fuzz/fuzz_keyfile.c to DIR/keyfile/ (passphrase "fuzz").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

/* Cheap scrypt parameters, so that hundreds of opens stay fast. */
static const struct cairn_kdf_params cheap = {10, 1, 1};

static uint8_t master[CAIRN_KEY_LEN], archive_id[CAIRN_ID_LEN];

static int setup(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < CAIRN_KEY_LEN; i++) {
        master[i] = (uint8_t)(0x10 + i);
        archive_id[i] = (uint8_t)(0xa0 + i);
    }
    return 0;
}

static void make(const char *pass, const struct cairn_kdf_params *kdf,
                 const char *label, uint8_t **out, size_t *out_len)
{
    assert_int_equal(cairn_keyfile_create(master, archive_id, pass,
                                          strlen(pass), kdf, label, out,
                                          out_len),
                     0);
}

static void test_roundtrip(void **state)
{
    struct cairn_keyfile_info info;
    uint8_t m[32], id[32], *kf, *kf2;
    size_t len, len2;
    struct timespec ts;
    int64_t now;

    (void)state;
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    make("correct horse", &cheap, "ana@laptop", &kf, &len);
    assert_int_equal(len, 151 + strlen("ana@laptop"));
    assert_memory_equal(kf, "CRNK\x01\0\0\0", 8);

    assert_int_equal(cairn_keyfile_open(kf, len, "correct horse", 13, m, id),
                     0);
    assert_memory_equal(m, master, 32);
    assert_memory_equal(id, archive_id, 32);

    assert_int_equal(cairn_keyfile_info(kf, len, &info), 0);
    assert_string_equal(info.label, "ana@laptop");
    assert_int_equal(info.kdf.log2_n, 10);
    assert_int_equal(info.kdf.r, 1);
    assert_int_equal(info.kdf.p, 1);
    assert_true(info.created_ns >= now - 1000000000LL);
    assert_true(info.created_ns <= now + 60 * 1000000000LL);

    /* Same inputs, fresh salt and nonce: different bytes. */
    make("correct horse", &cheap, "ana@laptop", &kf2, &len2);
    assert_int_equal(len, len2);
    assert_memory_not_equal(kf + 25, kf2 + 25, 32);
    free(kf2);

    /* Default parameters, no label, longest label. */
    assert_int_equal(cairn_keyfile_create(master, archive_id, "pw", 2, NULL,
                                          NULL, &kf2, &len2),
                     0);
    assert_int_equal(len2, 151);
    assert_int_equal(cairn_keyfile_info(kf2, len2, &info), 0);
    assert_int_equal(info.kdf.log2_n, CAIRN_KDF_DEFAULT_LOG2_N);
    assert_int_equal(info.kdf.r, CAIRN_KDF_DEFAULT_R);
    assert_int_equal(info.kdf.p, CAIRN_KDF_DEFAULT_P);
    assert_string_equal(info.label, "");
    assert_int_equal(cairn_keyfile_open(kf2, len2, "pw", 2, m, id), 0);
    assert_memory_equal(m, master, 32);
    free(kf2);

    free(kf);
}

static void test_create_rejects(void **state)
{
    char label[300];
    struct cairn_kdf_params bad = {9, 1, 1};
    struct cairn_keyfile_info info;
    uint8_t *kf;
    size_t len;

    (void)state;
    memset(label, 'l', sizeof(label));
    label[256] = '\0';
    assert_int_equal(cairn_keyfile_create(master, archive_id, "pw", 2, &cheap,
                                          label, &kf, &len),
                     CAIRN_EINVAL);
    label[255] = '\0';
    assert_int_equal(cairn_keyfile_create(master, archive_id, "pw", 2, &cheap,
                                          label, &kf, &len),
                     0);
    assert_int_equal(len, 151 + 255);
    assert_int_equal(cairn_keyfile_info(kf, len, &info), 0);
    assert_string_equal(info.label, label);
    free(kf);

    assert_int_equal(cairn_keyfile_create(master, archive_id, "pw", 2, &bad,
                                          NULL, &kf, &len),
                     CAIRN_EINVAL);
    bad = (struct cairn_kdf_params){10, 1, 17};
    assert_int_equal(cairn_keyfile_create(master, archive_id, "pw", 2, &bad,
                                          NULL, &kf, &len),
                     CAIRN_EINVAL);
}

static void test_wrong_pass(void **state)
{
    uint8_t m[32], id[32], *kf;
    size_t len;

    (void)state;
    make("secret", &cheap, "x", &kf, &len);
    memset(m, 0x77, sizeof(m));
    memset(id, 0x77, sizeof(id));
    assert_int_equal(cairn_keyfile_open(kf, len, "Secret", 6, m, id),
                     CAIRN_EAUTH);
    assert_int_equal(cairn_keyfile_open(kf, len, "secret", 5, m, id),
                     CAIRN_EAUTH);
    assert_int_equal(cairn_keyfile_open(kf, len, "", 0, m, id), CAIRN_EAUTH);
    assert_int_equal(cairn_keyfile_open(kf, len, "secret!", 7, m, id),
                     CAIRN_EAUTH);
    /* Outputs untouched on failure. */
    assert_int_equal(m[0], 0x77);
    assert_int_equal(id[31], 0x77);
    assert_int_equal(cairn_keyfile_open(kf, len, "secret", 6, m, id), 0);
    free(kf);
}

static void test_truncated(void **state)
{
    struct cairn_keyfile_info info;
    uint8_t m[32], id[32], *kf, *copy, *longer;
    size_t len, i;

    (void)state;
    make("pw", &cheap, "label", &kf, &len);
    for (i = 0; i < len; i++) {
        /* A fresh allocation of exactly i bytes: ASan sees overreads. */
        copy = malloc(i + 1);
        assert_non_null(copy);
        memcpy(copy, kf, i);
        assert_int_equal(cairn_keyfile_open(copy, i, "pw", 2, m, id),
                         CAIRN_ECORRUPT);
        assert_int_equal(cairn_keyfile_info(copy, i, &info), CAIRN_ECORRUPT);
        free(copy);
    }
    /* Trailing bytes. */
    longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, kf, len);
    longer[len] = 0;
    assert_int_equal(cairn_keyfile_open(longer, len + 1, "pw", 2, m, id),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn_keyfile_info(longer, len + 1, &info),
                     CAIRN_ECORRUPT);
    free(longer);
    free(kf);
}

/* What damage to each byte must give, for a file with a 5-byte label. */
static int expected_error(size_t off, uint8_t flipped)
{
    if (off < 4)
        return CAIRN_ECORRUPT; /* magic */
    if (off == 4)
        return CAIRN_EVERSION;
    if (off < 8)
        return CAIRN_ECORRUPT; /* reserved */
    if (off < 16)
        return CAIRN_EAUTH; /* created_ns: authenticated */
    if (off == 16)          /* log2_n: 10 ^ 0x01 = 11 is in range */
        return (flipped >= 10 && flipped <= 22) ? CAIRN_EAUTH : CAIRN_ECORRUPT;
    if (off == 17) /* r, low byte */
        return (flipped >= 1 && flipped <= 32) ? CAIRN_EAUTH : CAIRN_ECORRUPT;
    if (off < 21)
        return CAIRN_ECORRUPT; /* r, high bytes */
    if (off == 21)
        return (flipped >= 1 && flipped <= 16) ? CAIRN_EAUTH : CAIRN_ECORRUPT;
    if (off < 25)
        return CAIRN_ECORRUPT; /* p, high bytes */
    if (off < 57)
        return CAIRN_EAUTH; /* salt: another wrapping key */
    if (off < 59)
        return CAIRN_ECORRUPT; /* label length: the file's size is wrong */
    if (off < 64)
        return flipped == 0 ? CAIRN_ECORRUPT : CAIRN_EAUTH; /* label */
    return CAIRN_EAUTH; /* nonce, ciphertext, tag */
}

static void test_flipped(void **state)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    uint8_t m[32], id[32], *kf;
    size_t len, i, j;
    int want;

    (void)state;
    make("pw", &cheap, "label", &kf, &len);
    assert_int_equal(len, 156);
    for (i = 0; i < len; i++) {
        for (j = 0; j < sizeof(masks); j++) {
            kf[i] ^= masks[j];
            want = expected_error(i, kf[i]);
            memset(m, 0x55, sizeof(m));
            assert_int_equal(cairn_keyfile_open(kf, len, "pw", 2, m, id), want);
            assert_int_equal(m[0], 0x55);
            kf[i] ^= masks[j];
        }
    }
    /* Undamaged after all that. */
    assert_int_equal(cairn_keyfile_open(kf, len, "pw", 2, m, id), 0);
    free(kf);
}

static void test_crafted(void **state)
{
    struct cairn_keyfile_info info;
    uint8_t m[32], id[32], *kf, *big;
    size_t len;
    time_t t0;

    (void)state;
    make("pw", &cheap, "label", &kf, &len);

    /* A newer version is EVERSION whatever follows. */
    kf[4] = 2;
    assert_int_equal(cairn_keyfile_info(kf, len, &info), CAIRN_EVERSION);
    assert_int_equal(cairn_keyfile_open(kf, 5, "pw", 2, m, id), CAIRN_EVERSION);
    kf[4] = 0;
    assert_int_equal(cairn_keyfile_info(kf, len, &info), CAIRN_EVERSION);
    kf[4] = 1;

    /* Parameters in range one by one but asking for 16 GiB: refused at
     * once, without running scrypt. */
    t0 = time(NULL);
    kf[16] = 22;
    cairn_le32enc(kf + 17, 32);
    assert_int_equal(cairn_keyfile_info(kf, len, &info), CAIRN_ECORRUPT);
    assert_int_equal(cairn_keyfile_open(kf, len, "pw", 2, m, id),
                     CAIRN_ECORRUPT);
    cairn_le32enc(kf + 17, 0xffffffff);
    assert_int_equal(cairn_keyfile_open(kf, len, "pw", 2, m, id),
                     CAIRN_ECORRUPT);
    assert_true(time(NULL) - t0 < 5);
    kf[16] = 10;
    cairn_le32enc(kf + 17, 1);

    /* A NUL inside the label. */
    kf[61] = 0;
    assert_int_equal(cairn_keyfile_info(kf, len, &info), CAIRN_ECORRUPT);
    kf[61] = 'b';

    assert_int_equal(cairn_keyfile_info(kf, len, &info), 0);

    /* A 256-byte label, the file's size matching it. */
    big = malloc(len + 251);
    assert_non_null(big);
    memcpy(big, kf, 57);
    cairn_le16enc(big + 57, 256);
    memset(big + 59, 'a', 256);
    memcpy(big + 59 + 256, kf + 64, len - 64);
    assert_int_equal(cairn_keyfile_info(big, len + 251, &info), CAIRN_ECORRUPT);
    assert_int_equal(cairn_keyfile_open(big, len + 251, "pw", 2, m, id),
                     CAIRN_ECORRUPT);
    /* The same at 255 bytes parses (and fails authentication). */
    cairn_le16enc(big + 57, 255);
    assert_int_equal(cairn_keyfile_info(big, len + 250, &info), 0);
    assert_int_equal(strlen(info.label), 255);
    memmove(big + 59 + 255, big + 59 + 256, len - 64);
    assert_int_equal(cairn_keyfile_open(big, len + 250, "pw", 2, m, id),
                     CAIRN_EAUTH);
    free(big);
    free(kf);
}

/* Seed inputs for fuzz/fuzz_keyfile.c. */
static void test_write_corpus(void **state)
{
    const char *root = getenv("CAIRN_WRITE_CORPUS");
    static const struct cairn_kdf_params r8 = {10, 8, 1};
    char dir[4096], path[4200];
    uint8_t *kf;
    size_t len;
    FILE *f;
    int i;

    (void)state;
    if (root == NULL)
        skip();
    snprintf(dir, sizeof(dir), "%s/keyfile", root);
    mkdir(dir, 0777);
    for (i = 0; i < 3; i++) {
        if (i == 0)
            make("fuzz", &cheap, "ana@laptop", &kf, &len);
        else if (i == 1)
            make("fuzz", &r8, "", &kf, &len);
        else
            make("not the fuzz passphrase", &cheap, "other", &kf, &len);
        snprintf(path, sizeof(path), "%s/keyfile-%d", dir, i);
        assert_non_null(f = fopen(path, "wb"));
        assert_int_equal(fwrite(kf, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        free(kf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_create_rejects),
        cmocka_unit_test(test_wrong_pass),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped),
        cmocka_unit_test(test_crafted),
        cmocka_unit_test(test_write_corpus),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
