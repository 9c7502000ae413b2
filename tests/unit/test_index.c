/*
 * test_index.c - index objects: round trips (with and without the MAC key),
 * the MAC, every truncation and every byte flip refused, structural rules
 * (types, flags, refs, offsets, counts), versions, and the encoder's
 * checks.
 *
 * With CAIRN_WRITE_CORPUS=DIR set, also writes seed inputs for
 * fuzz/fuzz_index.c into DIR/index/ (MACed with the fuzz targets' mac
 * key: 32 bytes of 0x04).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/pack.h"

static uint8_t mac_key[CAIRN_KEY_LEN];
static uint8_t refs[3][CAIRN_ID_LEN];
static struct cairn_index_entry blobs0[3], blobs1[1];
static struct cairn_pack_info packs[2];

/* Offsets in the encoding of packs[] (see cairn/pack.h). */
#define P0 12                 /* first pack */
#define B0 (P0 + 44)          /* its first blob */
#define B1 (B0 + 50)          /* its second blob (a tree, 3 refs) */
#define B2 (B1 + 50 + 3 * 32) /* its third blob */

static void fixtures(void)
{
    uint32_t i;

    memset(mac_key, 0x04, sizeof(mac_key));
    for (i = 0; i < 3; i++)
        memset(refs[i], (int)(0xe0 + i), CAIRN_ID_LEN);
    memset(blobs0, 0, sizeof(blobs0));
    memset(blobs1, 0, sizeof(blobs1));
    for (i = 0; i < 3; i++) {
        memset(blobs0[i].id, (int)(0x10 + i), CAIRN_ID_LEN);
        blobs0[i].type = CAIRN_BLOB_DATA;
        blobs0[i].offset = 8 + 100 * i;
        blobs0[i].length = 100;
        blobs0[i].raw_length = 1000 + i;
    }
    blobs0[1].type = CAIRN_BLOB_TREE;
    blobs0[1].nrefs = 3;
    blobs0[1].refs = refs;
    blobs0[2].raw_length = CAIRN_BLOB_MAX;
    memset(blobs1[0].id, 0x20, CAIRN_ID_LEN);
    blobs1[0].type = CAIRN_BLOB_TREE; /* a tree without refs */
    blobs1[0].offset = 8;
    blobs1[0].length = 0xfff0;
    blobs1[0].raw_length = 0;
    memset(packs, 0, sizeof(packs));
    memset(packs[0].id, 0xaa, CAIRN_ID_LEN);
    packs[0].length = 8 + 300 + 500 + 8;
    packs[0].nblobs = 3;
    packs[0].blobs = blobs0;
    memset(packs[1].id, 0xbb, CAIRN_ID_LEN);
    packs[1].length = CAIRN_PACK_MAX_LEN;
    packs[1].nblobs = 1;
    packs[1].blobs = blobs1;
}

static void write_corpus(const char *name, const uint8_t *p, size_t n)
{
    const char *dir = getenv("CAIRN_WRITE_CORPUS");
    char path[4096];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/index/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void encode(struct cairn_buf *b)
{
    fixtures();
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, b), 0);
}

static void assert_same(const struct cairn_index *idx)
{
    uint32_t i, j;

    assert_int_equal(idx->npacks, 2);
    for (i = 0; i < 2; i++) {
        const struct cairn_pack_info *a = &packs[i], *d = &idx->packs[i];

        assert_memory_equal(a->id, d->id, CAIRN_ID_LEN);
        assert_true(a->length == d->length);
        assert_int_equal(a->nblobs, d->nblobs);
        for (j = 0; j < a->nblobs; j++) {
            const struct cairn_index_entry *x = &a->blobs[j], *y = &d->blobs[j];

            assert_memory_equal(x->id, y->id, CAIRN_ID_LEN);
            assert_int_equal(x->type, y->type);
            assert_int_equal(x->offset, y->offset);
            assert_int_equal(x->length, y->length);
            assert_int_equal(x->raw_length, y->raw_length);
            assert_int_equal(x->nrefs, y->nrefs);
            if (x->nrefs > 0)
                assert_memory_equal(x->refs, y->refs,
                                    (size_t)x->nrefs * CAIRN_ID_LEN);
            else
                assert_null(y->refs);
        }
    }
}

static void test_round_trip(void **state)
{
    struct cairn_buf b, b2;
    struct cairn_index *idx = NULL;
    uint8_t mac[32];

    (void)state;
    encode(&b);
    assert_int_equal(b.len, 12 + 2 * 44 + 4 * 50 + 3 * 32 + 32);
    assert_memory_equal(b.data, "CRNI\x01\x00\x00\x00\x02\x00\x00\x00", 12);
    /* Known structure: the MAC is HMAC-SHA-256 over every preceding byte. */
    assert_int_equal(cairn_hmac_sha256(mac_key, b.data, b.len - 32, mac), 0);
    assert_memory_equal(mac, b.data + b.len - 32, 32);
    assert_int_equal(b.data[B1 + 32], CAIRN_BLOB_TREE);
    assert_int_equal(cairn_le32dec(b.data + B1 + 46), 3);
    write_corpus("two_packs", b.data, b.len);

    assert_int_equal(cairn_index_decode(b.data, b.len, mac_key, &idx), 0);
    assert_same(idx);
    /* Canonical: re-encoding gives the same bytes. */
    cairn_buf_init(&b2, 0);
    assert_int_equal(cairn_index_encode(idx->packs, idx->npacks, mac_key, &b2),
                     0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    cairn_index_free(idx);
    cairn_buf_free(&b2);

    /* Without the key (a server): same content, MAC not checked. */
    assert_int_equal(cairn_index_decode(b.data, b.len, NULL, &idx), 0);
    assert_same(idx);
    cairn_index_free(idx);
    b.data[b.len - 1] ^= 1;
    assert_int_equal(cairn_index_decode(b.data, b.len, NULL, &idx), 0);
    cairn_index_free(idx);
    assert_int_equal(cairn_index_decode(b.data, b.len, mac_key, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
    cairn_index_free(NULL);
}

static void test_empty(void **state)
{
    struct cairn_buf b;
    struct cairn_index *idx = NULL;

    (void)state;
    fixtures();
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_index_encode(NULL, 0, mac_key, &b), 0);
    assert_int_equal(b.len, 44);
    write_corpus("empty", b.data, b.len);
    assert_int_equal(cairn_index_decode(b.data, b.len, mac_key, &idx), 0);
    assert_int_equal(idx->npacks, 0);
    assert_null(idx->packs);
    cairn_index_free(idx);
    cairn_buf_free(&b);
}

static void test_truncations(void **state)
{
    struct cairn_buf b;
    struct cairn_index *idx;
    uint8_t *copy;
    size_t n;

    (void)state;
    encode(&b);
    for (n = 0; n < b.len; n++) {
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, n);
        idx = NULL;
        assert_int_equal(cairn_index_decode(copy, n, mac_key, &idx),
                         CAIRN_ECORRUPT);
        assert_int_equal(cairn_index_decode(copy, n, NULL, &idx),
                         CAIRN_ECORRUPT);
        assert_null(idx);
        free(copy);
    }
    /* A trailing byte. */
    assert_int_equal(cairn_buf_put_u8(&b, 0), 0);
    assert_int_equal(cairn_index_decode(b.data, b.len, NULL, &idx),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn_index_decode(b.data, b.len, mac_key, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
}

static void test_byte_flips(void **state)
{
    struct cairn_buf b;
    struct cairn_index *idx = NULL;
    uint8_t other[CAIRN_KEY_LEN];
    size_t i;
    int rc;

    (void)state;
    encode(&b);
    for (i = 0; i < b.len; i++) {
        b.data[i] ^= 0x01;
        rc = cairn_index_decode(b.data, b.len, mac_key, &idx);
        if (i == 4)
            assert_int_equal(rc, CAIRN_EVERSION);
        else
            assert_int_equal(rc, CAIRN_ECORRUPT);
        b.data[i] ^= 0x01;
    }
    memset(other, 0x05, sizeof(other));
    assert_int_equal(cairn_index_decode(b.data, b.len, other, &idx),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn_index_decode(b.data, b.len, mac_key, &idx), 0);
    cairn_index_free(idx);
    cairn_buf_free(&b);
}

/* Patch a valid encoding and expect the keyless decoder to refuse it. */
static void expect_bad(size_t at, const void *val, size_t n, int want)
{
    struct cairn_buf b;
    struct cairn_index *idx = NULL;

    encode(&b);
    memcpy(b.data + at, val, n);
    assert_int_equal(cairn_index_decode(b.data, b.len, NULL, &idx), want);
    assert_null(idx);
    cairn_buf_free(&b);
}

static void put32(uint8_t p[4], uint32_t v)
{
    cairn_le32enc(p, v);
}

static void test_structure(void **state)
{
    uint8_t v[8];

    (void)state;
    expect_bad(4, "\x02", 1, CAIRN_EVERSION);
    expect_bad(0, "X", 1, CAIRN_ECORRUPT);
    expect_bad(5, "\x01", 1, CAIRN_ECORRUPT);       /* reserved */
    expect_bad(B0 + 32, "\x02", 1, CAIRN_ECORRUPT); /* type */
    expect_bad(B0 + 33, "\x01", 1, CAIRN_ECORRUPT); /* flags */
    put32(v, 1);
    expect_bad(B0 + 46, v, 4, CAIRN_ECORRUPT); /* refs on data */
    put32(v, 7);
    expect_bad(B0 + 34, v, 4, CAIRN_ECORRUPT); /* offset < 8 */
    put32(v, 107);
    expect_bad(B1 + 34, v, 4, CAIRN_ECORRUPT); /* overlap */
    put32(v, 8);
    expect_bad(B2 + 34, v, 4, CAIRN_ECORRUPT); /* out of order */
    put32(v, 601);
    expect_bad(B2 + 38, v, 4, CAIRN_ECORRUPT); /* past length-8 */
    put32(v, CAIRN_BLOB_MAX + 1);
    expect_bad(B2 + 42, v, 4, CAIRN_ECORRUPT); /* raw length */
    put32(v, 0xffffffffu);
    expect_bad(8, v, 4, CAIRN_ECORRUPT);       /* npacks */
    expect_bad(P0 + 40, v, 4, CAIRN_ECORRUPT); /* nblobs */
    expect_bad(B1 + 46, v, 4, CAIRN_ECORRUPT); /* nrefs */
    put32(v, 3);
    expect_bad(8, v, 4, CAIRN_ECORRUPT);
    put32(v, 4);
    expect_bad(B1 + 46, v, 4, CAIRN_ECORRUPT);
    cairn_le64enc(v, 15);
    expect_bad(P0 + 32, v, 8, CAIRN_ECORRUPT); /* pack too short */
    cairn_le64enc(v, (uint64_t)CAIRN_PACK_MAX_LEN + 1);
    expect_bad(P0 + 32, v, 8, CAIRN_ECORRUPT); /* pack too long */
}

static void test_encoder_checks(void **state)
{
    struct cairn_buf b;

    (void)state;
    fixtures();
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_index_encode(packs, 2, NULL, &b), CAIRN_EINVAL);
    blobs0[0].type = 7;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    blobs0[0].nrefs = 1;
    blobs0[0].refs = refs;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    blobs0[1].refs = NULL;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    blobs0[2].offset = 200;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    blobs0[2].length = 601;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    blobs0[0].raw_length = CAIRN_BLOB_MAX + 1;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    packs[1].blobs = NULL;
    assert_int_equal(cairn_index_encode(packs, 2, mac_key, &b), CAIRN_EINVAL);
    fixtures();
    assert_int_equal(b.len, 0);
    /* A trailer (length 0) takes any offset >= 8. */
    packs[0].length = 0;
    blobs0[2].offset = 0x3fff0000;
    assert_int_equal(cairn_index_encode(packs, 1, mac_key, &b), 0);
    cairn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_encoder_checks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
