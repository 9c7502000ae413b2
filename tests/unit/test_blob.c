/*
 * test_blob.c - the blob codec: ids, compression choice, encryption, and
 * rejection of tampered, mislabelled or mis-sized blobs.
 *
 * With CAIRN_WRITE_CORPUS=DIR in the environment, also writes seed inputs
 * for fuzz/fuzz_blob.c to DIR/blob/.  Their layout (see fuzz_blob.c):
 * type (1) | raw_len (u32 le) | id (32) | stored blob, under the keys
 * derived from master = 32 x 0x42, archive id = 32 x 0x24.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <zstd.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

static struct cairn_keys keys;

static int setup(void **state)
{
    uint8_t master[32], aid[32];

    (void)state;
    memset(master, 0x42, sizeof(master));
    memset(aid, 0x24, sizeof(aid));
    return cairn_keys_derive(master, aid, &keys);
}

static int teardown(void **state)
{
    (void)state;
    cairn_keys_wipe(&keys);
    return 0;
}

/* Text-like, compressible content. */
static uint8_t *make_text(size_t len)
{
    uint8_t *p = malloc(len + 1);
    size_t off = 0;
    unsigned line = 0;
    char tmp[128];
    int n;

    assert_non_null(p);
    while (off < len) {
        n = snprintf(tmp, sizeof(tmp),
                     "%u: the quick brown fox jumps over the lazy dog %u\n",
                     line, line * 7919 % 1000);
        line++;
        if ((size_t)n > len - off)
            n = (int)(len - off);
        memcpy(p + off, tmp, (size_t)n);
        off += (size_t)n;
    }
    return p;
}

static uint8_t *make_random(size_t len)
{
    uint8_t *p = malloc(len + 1);

    assert_non_null(p);
    assert_int_equal(cairn_random(p, len), 0);
    return p;
}

/* The flag byte inside a stored blob (decrypting it with the data key). */
static int stored_flag(const uint8_t *stored, size_t stored_len,
                       const uint8_t id[32], uint8_t type)
{
    struct cairn_aead *a;
    uint8_t ad[33], *pt;
    int flag;

    memcpy(ad, id, 32);
    ad[32] = type;
    assert_non_null(a = cairn_aead_new(keys.data));
    pt = malloc(stored_len);
    assert_non_null(pt);
    assert_int_equal(cairn_aead_open(a, ad, sizeof(ad), stored, stored_len, pt),
                     0);
    flag = pt[0];
    free(pt);
    cairn_aead_free(a);
    return flag;
}

/* Seal buf as a data blob with codec c; the stored bytes are returned. */
static uint8_t *seal(struct cairn_blob_codec *c, uint8_t type,
                     const uint8_t *buf, size_t len, uint8_t id[32],
                     size_t *out_len)
{
    uint8_t *out = malloc(cairn_blob_seal_bound(len));

    assert_non_null(out);
    assert_int_equal(cairn_blob_id(c, buf, len, id), 0);
    assert_int_equal(cairn_blob_seal(c, type, id, buf, len, out, out_len), 0);
    assert_true(*out_len <= cairn_blob_seal_bound(len));
    return out;
}

/* Seal, open (with and without id verification), compare; flag returned. */
static int roundtrip(struct cairn_blob_codec *c, const uint8_t *buf, size_t len,
                     size_t *out_stored_len)
{
    uint8_t id[32], want[32], *stored, *back;
    size_t slen;
    int flag;

    stored = seal(c, CAIRN_BLOB_DATA, buf, len, id, &slen);
    assert_int_equal(cairn_hmac_sha256(keys.id, buf, len, want), 0);
    assert_memory_equal(id, want, 32);
    back = malloc(len + 1);
    assert_non_null(back);
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_DATA, id, stored, slen, back, len, 0), 0);
    if (len > 0)
        assert_memory_equal(back, buf, len);
    memset(back, 0, len);
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_DATA, id, stored, slen, back, len, 1), 0);
    if (len > 0)
        assert_memory_equal(back, buf, len);
    flag = stored_flag(stored, slen, id, CAIRN_BLOB_DATA);
    free(back);
    free(stored);
    *out_stored_len = slen;
    return flag;
}

static void test_compressible(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t *text;
    size_t slen, len;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    /* Below and above the sample size. */
    for (len = 300; len <= 1024 * 1024; len *= 8) {
        text = make_text(len);
        assert_int_equal(roundtrip(c, text, len, &slen), CAIRN_BLOB_ZSTD);
        assert_true(slen < len / 2);
        free(text);
    }
    cairn_blob_codec_free(c);
    cairn_blob_codec_free(NULL);
}

static void test_incompressible(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t *rnd, *mixed;
    size_t slen, len;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    /* Random blobs, small and large, are stored raw: exactly flag + AEAD
     * overhead bigger. */
    for (len = 1; len <= 1024 * 1024; len *= 32) {
        rnd = make_random(len);
        assert_int_equal(roundtrip(c, rnd, len, &slen), CAIRN_BLOB_RAW);
        assert_int_equal(slen, len + 1 + CAIRN_AEAD_OVERHEAD);
        free(rnd);
    }
    /* Partly compressible blobs are compressed wherever the random part
     * lies (a document with an embedded picture). */
    len = 1024 * 1024;
    mixed = make_text(len);
    rnd = make_random(128 * 1024);
    memcpy(mixed + len / 2 - 64 * 1024, rnd, 128 * 1024);
    assert_int_equal(roundtrip(c, mixed, len, &slen), CAIRN_BLOB_ZSTD);
    assert_true(slen < len / 2);
    /* Random at the start: compressed too. */
    memcpy(mixed + len / 2 - 64 * 1024, mixed, 128 * 1024);
    memcpy(mixed, rnd, 128 * 1024);
    assert_int_equal(roundtrip(c, mixed, len, &slen), CAIRN_BLOB_ZSTD);
    assert_true(slen < len / 2);
    free(rnd);
    free(mixed);
    cairn_blob_codec_free(c);

    /* Level 0 never compresses. */
    assert_non_null(c = cairn_blob_codec_new(&keys, 0));
    mixed = make_text(100000);
    assert_int_equal(roundtrip(c, mixed, 100000, &slen), CAIRN_BLOB_RAW);
    assert_int_equal(slen, 100000 + 1 + CAIRN_AEAD_OVERHEAD);
    free(mixed);
    cairn_blob_codec_free(c);
}

static void test_empty_and_big(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t *buf, dummy[1];
    size_t slen, len = 8 * 1024 * 1024;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    assert_int_equal(roundtrip(c, dummy, 0, &slen), CAIRN_BLOB_RAW);
    assert_int_equal(slen, 1 + CAIRN_AEAD_OVERHEAD);

    /* 8 MiB (the chunker's maximum): text with random stretches. */
    buf = make_text(len);
    assert_int_equal(cairn_random(buf + len / 3, len / 8), 0);
    assert_int_equal(roundtrip(c, buf, len, &slen), CAIRN_BLOB_ZSTD);
    assert_true(slen < len);
    /* ... and all random. */
    assert_int_equal(cairn_random(buf, len), 0);
    assert_int_equal(roundtrip(c, buf, len, &slen), CAIRN_BLOB_RAW);
    free(buf);

    /* Past the maximum: refused before reading the input. */
    assert_int_equal(cairn_blob_seal(c, 0, keys.id, dummy,
                                     (size_t)CAIRN_BLOB_MAX + 1, dummy, &slen),
                     CAIRN_ERANGE);
    cairn_blob_codec_free(c);

    assert_true(cairn_blob_seal_bound(0) >= 1 + CAIRN_AEAD_OVERHEAD);
    assert_true(cairn_blob_seal_bound(1000) >= 1000 + 1 + CAIRN_AEAD_OVERHEAD);
    assert_true(cairn_blob_seal_bound(1000) ==
                ZSTD_compressBound(1000) + 1 + CAIRN_AEAD_OVERHEAD);
    assert_true(cairn_blob_seal_bound(SIZE_MAX) == SIZE_MAX);
}

/* Any damaged byte, any wrong label: CAIRN_ECORRUPT, out left zeroed. */
static void check_tamper(struct cairn_blob_codec *c, const uint8_t *buf,
                         size_t len, size_t step)
{
    uint8_t id[32], bad_id[32], *stored, *back;
    size_t slen, i;

    stored = seal(c, CAIRN_BLOB_TREE, buf, len, id, &slen);
    back = malloc(len + 2);
    assert_non_null(back);
    for (i = 0; i < slen; i += step) {
        stored[i] ^= 0x20;
        memset(back, 0xcc, len);
        assert_int_equal(
            cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, slen, back, len, 0),
            CAIRN_ECORRUPT);
        if (len > 0) {
            assert_int_equal(back[0], 0);
            assert_int_equal(back[len - 1], 0);
        }
        stored[i] ^= 0x20;
    }
    /* Wrong type, wrong id. */
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_DATA, id, stored, slen, back, len, 0),
        CAIRN_ECORRUPT);
    memcpy(bad_id, id, 32);
    bad_id[31] ^= 1;
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_TREE, bad_id, stored, slen, back, len, 0),
        CAIRN_ECORRUPT);
    /* raw_len off by one either way, or far off. */
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, slen, back, len + 1, 0),
        CAIRN_ECORRUPT);
    if (len > 0)
        assert_int_equal(cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, slen,
                                         back, len - 1, 0),
                         CAIRN_ECORRUPT);
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, slen, back, 0, 0),
        len == 0 ? 0 : CAIRN_ECORRUPT);
    /* Truncated, or with a byte too many. */
    for (i = 0; i < slen; i += step)
        assert_int_equal(
            cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, i, back, len, 0),
            CAIRN_ECORRUPT);
    /* Still fine undamaged. */
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_TREE, id, stored, slen, back, len, 1), 0);
    if (len > 0)
        assert_memory_equal(back, buf, len);
    free(back);
    free(stored);
}

static void test_tamper(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t *buf;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    buf = make_text(3000); /* compressed */
    check_tamper(c, buf, 3000, 1);
    free(buf);
    buf = make_random(2000); /* raw */
    check_tamper(c, buf, 2000, 1);
    free(buf);
    check_tamper(c, (const uint8_t *)"", 0, 1);
    buf = make_text(2 * 1024 * 1024); /* big: every 997th byte */
    check_tamper(c, buf, 2 * 1024 * 1024, 997);
    free(buf);
    cairn_blob_codec_free(c);
}

static void test_verify_id(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t id[32], *stored, *back, *buf;
    size_t slen, len = 5000;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    buf = make_text(len);
    back = malloc(len);
    assert_non_null(back);
    stored = malloc(cairn_blob_seal_bound(len));
    assert_non_null(stored);
    /* Sealed under an id that is not the content's: the tag is fine, only
     * verify_id notices. */
    memset(id, 0x99, sizeof(id));
    assert_int_equal(
        cairn_blob_seal(c, CAIRN_BLOB_DATA, id, buf, len, stored, &slen), 0);
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_DATA, id, stored, slen, back, len, 0), 0);
    assert_memory_equal(back, buf, len);
    assert_int_equal(
        cairn_blob_open(c, CAIRN_BLOB_DATA, id, stored, slen, back, len, 1),
        CAIRN_ECORRUPT);
    free(stored);
    free(back);
    free(buf);

    /* Another archive's keys give other ids. */
    {
        struct cairn_keys k2;
        struct cairn_blob_codec *c2;
        uint8_t m[32], a[32], id2[32];

        memset(m, 0x42, sizeof(m));
        memset(a, 0x25, sizeof(a));
        assert_int_equal(cairn_keys_derive(m, a, &k2), 0);
        assert_non_null(c2 = cairn_blob_codec_new(&k2, 3));
        assert_int_equal(cairn_blob_id(c, "abc", 3, id), 0);
        assert_int_equal(cairn_blob_id(c2, "abc", 3, id2), 0);
        assert_memory_not_equal(id, id2, 32);
        cairn_blob_codec_free(c2);
        cairn_keys_wipe(&k2);
    }
    cairn_blob_codec_free(c);
}

/* Blobs another writer could make: seal flag | payload by hand. */
static void seal_by_hand(uint8_t flag, const uint8_t id[32], uint8_t type,
                         const uint8_t *payload, size_t n, uint8_t *out)
{
    struct cairn_aead *a;
    uint8_t ad[33];

    memcpy(ad, id, 32);
    ad[32] = type;
    assert_non_null(a = cairn_aead_new(keys.data));
    assert_int_equal(
        cairn_aead_seal(a, ad, sizeof(ad), &flag, 1, payload, n, out), 0);
    cairn_aead_free(a);
}

static void test_odd_blobs(void **state)
{
    struct cairn_blob_codec *c;
    uint8_t id[32], *buf, *z, *stored, *back;
    size_t rlen = 4000, len = 0, clen = 0;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    memset(id, 0x11, sizeof(id));
    buf = malloc(rlen + 400);
    z = malloc(ZSTD_compressBound(rlen + 400));
    stored = malloc(rlen + 400 + 64);
    back = malloc(rlen + 400);
    assert_non_null(buf);
    assert_non_null(z);
    assert_non_null(stored);
    assert_non_null(back);

    /* A zstd payload exactly as long as its content: a frame, then a
     * skippable frame padding it out. */
    memcpy(buf, "hello hello hello hello ", 24);
    for (len = 24; len < rlen; len++)
        buf[len] = buf[len - 24];
    clen = ZSTD_compress(z, ZSTD_compressBound(len), buf, len, 1);
    assert_false(ZSTD_isError(clen));
    assert_true(clen + 8 < len);
    cairn_le32enc(z + clen, ZSTD_MAGIC_SKIPPABLE_START);
    cairn_le32enc(z + clen + 4, (uint32_t)(len - clen - 8));
    memset(z + clen + 8, 0, len - clen - 8);
    clen = len;
    seal_by_hand(CAIRN_BLOB_ZSTD, id, 0, z, clen, stored);
    assert_int_equal(cairn_blob_open(c, 0, id, stored, clen + 29, back, len, 0),
                     0);
    assert_memory_equal(back, buf, len);
    /* Opened once more with the id verified. */
    assert_int_equal(cairn_blob_id(c, buf, len, id), 0);
    seal_by_hand(CAIRN_BLOB_ZSTD, id, 0, z, clen, stored);
    assert_int_equal(cairn_blob_open(c, 0, id, stored, clen + 29, back, len, 1),
                     0);
    assert_memory_equal(back, buf, len);

    /* Unknown flag, whatever the length. */
    seal_by_hand(2, id, 0, buf, len, stored);
    assert_int_equal(cairn_blob_open(c, 0, id, stored, len + 29, back, len, 0),
                     CAIRN_ECORRUPT);
    seal_by_hand(2, id, 0, z, clen - 10, stored);
    assert_int_equal(
        cairn_blob_open(c, 0, id, stored, clen - 10 + 29, back, len, 0),
        CAIRN_ECORRUPT);
    /* zstd flag over data that is not zstd. */
    seal_by_hand(CAIRN_BLOB_ZSTD, id, 0, buf, 100, stored);
    assert_int_equal(cairn_blob_open(c, 0, id, stored, 129, back, len, 0),
                     CAIRN_ECORRUPT);
    /* zstd flag, a valid frame with trailing garbage. */
    memcpy(buf, z, clen);
    buf[clen] = 0x5a;
    seal_by_hand(CAIRN_BLOB_ZSTD, id, 0, buf, clen + 1, stored);
    assert_int_equal(
        cairn_blob_open(c, 0, id, stored, clen + 1 + 29, back, len, 0),
        CAIRN_ECORRUPT);
    /* zstd flag, an empty payload. */
    seal_by_hand(CAIRN_BLOB_ZSTD, id, 0, NULL, 0, stored);
    assert_int_equal(cairn_blob_open(c, 0, id, stored, 29, back, 10, 0),
                     CAIRN_ECORRUPT);
    /* Stored form longer than any sealing of raw_len bytes could be. */
    assert_int_equal(cairn_blob_open(c, 0, id, stored,
                                     cairn_blob_seal_bound(10) + 1, back, 10,
                                     0),
                     CAIRN_ECORRUPT);

    free(back);
    free(stored);
    free(z);
    free(buf);
    cairn_blob_codec_free(c);
}

/* One codec, many blobs of shifting sizes and kinds (scratch reuse). */
static void test_reuse(void **state)
{
    static const size_t sizes[] = {10,    200000, 70000, 1,      3000000,
                                   65536, 65535,  0,     500000, 100};
    struct cairn_blob_codec *c;
    uint8_t *buf;
    size_t i, slen;

    (void)state;
    assert_non_null(c = cairn_blob_codec_new(&keys, 19));
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        buf = (i % 2) ? make_text(sizes[i]) : make_random(sizes[i]);
        roundtrip(c, buf, sizes[i], &slen);
        free(buf);
    }
    cairn_blob_codec_free(c);
    /* Levels past zstd's maximum are clamped. */
    assert_non_null(c = cairn_blob_codec_new(&keys, 1000));
    buf = make_text(1000);
    assert_int_equal(roundtrip(c, buf, 1000, &slen), CAIRN_BLOB_ZSTD);
    free(buf);
    cairn_blob_codec_free(c);
}

static void write_entry(const char *dir, const char *name,
                        struct cairn_blob_codec *c, uint8_t type,
                        const uint8_t *buf, size_t len)
{
    char path[4200];
    uint8_t id[32], hdr[5], *stored;
    size_t slen;
    FILE *f;

    stored = seal(c, type, buf, len, id, &slen);
    hdr[0] = type;
    cairn_le32enc(hdr + 1, (uint32_t)len);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(hdr, 1, 5, f), 5);
    assert_int_equal(fwrite(id, 1, 32, f), 32);
    assert_int_equal(fwrite(stored, 1, slen, f), slen);
    assert_int_equal(fclose(f), 0);
    free(stored);
}

/* Seed inputs for fuzz/fuzz_blob.c. */
static void test_write_corpus(void **state)
{
    const char *root = getenv("CAIRN_WRITE_CORPUS");
    struct cairn_blob_codec *c;
    char dir[4096];
    uint8_t *buf;

    (void)state;
    if (root == NULL)
        skip();
    snprintf(dir, sizeof(dir), "%s/blob", root);
    mkdir(dir, 0777);
    assert_non_null(c = cairn_blob_codec_new(&keys, 3));
    buf = make_text(4000);
    write_entry(dir, "zstd-data", c, CAIRN_BLOB_DATA, buf, 4000);
    write_entry(dir, "zstd-tree", c, CAIRN_BLOB_TREE, buf, 1500);
    free(buf);
    buf = make_random(1000);
    write_entry(dir, "raw-data", c, CAIRN_BLOB_DATA, buf, 1000);
    write_entry(dir, "raw-small", c, CAIRN_BLOB_TREE, buf, 7);
    free(buf);
    write_entry(dir, "empty", c, CAIRN_BLOB_DATA, (const uint8_t *)"", 0);
    cairn_blob_codec_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compressible),
        cmocka_unit_test(test_incompressible),
        cmocka_unit_test(test_empty_and_big),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_verify_id),
        cmocka_unit_test(test_odd_blobs),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_write_corpus),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
