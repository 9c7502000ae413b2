/*
 * test_pack.c - the pack writer and reader: a pack of several blobs
 * written and read back (bytes at their offsets, id = SHA-256, trailer
 * with zero id and length), the writer reused, an empty pack, every
 * truncation refused, a tampered trailer, trailers that put blobs outside
 * the blob area or name a pack, the footer, versions, the writer's
 * checks.
 *
 * With CAIRN_WRITE_CORPUS=DIR set, also writes seed inputs for
 * fuzz/fuzz_pack.c into DIR/pack/ (trailers MACed with 32 bytes of 0x04).
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

#define NBLOBS 5

static uint8_t mac_key[CAIRN_KEY_LEN];
static uint8_t ids[NBLOBS][CAIRN_ID_LEN];
static uint8_t *data[NBLOBS];
static uint32_t lens[NBLOBS] = {1, 29, 1000, 70000, 3};
static uint8_t trefs[2][CAIRN_ID_LEN];

static void write_corpus(const char *name, const uint8_t *p, size_t n)
{
    const char *dir = getenv("CAIRN_WRITE_CORPUS");
    char path[4096];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/pack/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    uint32_t i, j;

    (void)state;
    memset(mac_key, 0x04, sizeof(mac_key));
    memset(trefs[0], 0x71, CAIRN_ID_LEN);
    memset(trefs[1], 0x72, CAIRN_ID_LEN);
    for (i = 0; i < NBLOBS; i++) {
        memset(ids[i], (int)(0x30 + i), CAIRN_ID_LEN);
        if ((data[i] = malloc(lens[i])) == NULL)
            return -1;
        for (j = 0; j < lens[i]; j++)
            data[i][j] = (uint8_t)(j * 7 + i);
    }
    return 0;
}

static int teardown(void **state)
{
    uint32_t i;

    (void)state;
    for (i = 0; i < NBLOBS; i++)
        free(data[i]);
    return 0;
}

/* Add blobs [0, n): blob 2 is a tree with 2 refs. */
static void add_blobs(struct cairn_pack_writer *w, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++)
        assert_int_equal(
            cairn_pack_writer_add(
                w, ids[i], i == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA, data[i],
                lens[i], lens[i] * 2,
                i == 2 ? (const uint8_t(*)[32])trefs : NULL, i == 2 ? 2 : 0),
            0);
}

static void make_pack(uint32_t n, uint8_t **buf, size_t *len,
                      struct cairn_pack_info **info)
{
    struct cairn_pack_writer *w;

    assert_non_null(w = cairn_pack_writer_new());
    add_blobs(w, n);
    assert_int_equal(cairn_pack_writer_finish(w, mac_key, buf, len, info), 0);
    cairn_pack_writer_free(w);
}

static void test_write_read(void **state)
{
    struct cairn_pack_writer *w;
    struct cairn_pack_info *pi = NULL;
    struct cairn_index *idx = NULL;
    uint8_t *buf = NULL, hash[32];
    size_t len = 0, off = 8, blobs_end;
    uint32_t i, tlen;

    (void)state;
    assert_non_null(w = cairn_pack_writer_new());
    assert_int_equal(cairn_pack_writer_size(w), 8);
    assert_int_equal(cairn_pack_writer_count(w), 0);
    add_blobs(w, NBLOBS);
    assert_int_equal(cairn_pack_writer_count(w), NBLOBS);
    blobs_end = cairn_pack_writer_size(w);
    assert_int_equal(blobs_end, 8 + 1 + 29 + 1000 + 70000 + 3);
    assert_int_equal(cairn_pack_writer_finish(w, mac_key, &buf, &len, &pi), 0);

    /* Layout: header, blobs in order, trailer, footer. */
    assert_memory_equal(buf, "CRNP\x01\x00\x00\x00", 8);
    assert_memory_equal(buf + len - 4, "CRNE", 4);
    assert_int_equal(cairn_pack_footer_decode(buf + len - 8, &tlen), 0);
    assert_int_equal(blobs_end + tlen + 8, len);
    cairn_sha256(buf, len, hash);
    assert_memory_equal(pi->id, hash, 32);
    assert_true(pi->length == len);
    assert_int_equal(pi->nblobs, NBLOBS);
    for (i = 0; i < NBLOBS; i++) {
        assert_memory_equal(pi->blobs[i].id, ids[i], 32);
        assert_int_equal(pi->blobs[i].offset, off);
        assert_int_equal(pi->blobs[i].length, lens[i]);
        assert_int_equal(pi->blobs[i].raw_length, lens[i] * 2);
        assert_memory_equal(buf + off, data[i], lens[i]);
        off += lens[i];
    }
    assert_int_equal(pi->blobs[2].nrefs, 2);
    assert_memory_equal(pi->blobs[2].refs, trefs, 64);

    /* The trailer is an index object naming no pack (zero id, length). */
    {
        struct cairn_index *t = NULL;
        static const uint8_t zero[32];

        assert_int_equal(cairn_index_decode(buf + blobs_end, tlen, mac_key, &t),
                         0);
        assert_int_equal(t->npacks, 1);
        assert_memory_equal(t->packs[0].id, zero, 32);
        assert_true(t->packs[0].length == 0);
        cairn_index_free(t);
    }

    /* Read back, with and without the key. */
    assert_int_equal(cairn_pack_read_index(buf, len, mac_key, &idx), 0);
    assert_int_equal(idx->npacks, 1);
    assert_memory_equal(idx->packs[0].id, hash, 32);
    assert_true(idx->packs[0].length == len);
    assert_int_equal(idx->packs[0].nblobs, NBLOBS);
    for (i = 0; i < NBLOBS; i++) {
        const struct cairn_index_entry *e = &idx->packs[0].blobs[i];

        assert_memory_equal(e->id, ids[i], 32);
        assert_int_equal(e->type, i == 2 ? CAIRN_BLOB_TREE : CAIRN_BLOB_DATA);
        assert_int_equal(e->offset, pi->blobs[i].offset);
        assert_int_equal(e->length, lens[i]);
        assert_int_equal(e->nrefs, i == 2 ? 2 : 0);
    }
    assert_memory_equal(idx->packs[0].blobs[2].refs, trefs, 64);
    cairn_index_free(idx);
    assert_int_equal(cairn_pack_read_index(buf, len, NULL, &idx), 0);
    assert_memory_equal(idx->packs[0].id, hash, 32);
    cairn_index_free(idx);

    /* With the hash given: the same index, the id taken as given (the
     * caller compares it with the pack's name), the same checks. */
    {
        uint8_t other[32];

        assert_int_equal(
            cairn_pack_read_index_hashed(buf, len, mac_key, hash, &idx), 0);
        assert_memory_equal(idx->packs[0].id, hash, 32);
        assert_true(idx->packs[0].length == len);
        assert_int_equal(idx->packs[0].nblobs, NBLOBS);
        assert_memory_equal(idx->packs[0].blobs[2].refs, trefs, 64);
        cairn_index_free(idx);
        memset(other, 0x5a, sizeof(other));
        assert_int_equal(
            cairn_pack_read_index_hashed(buf, len, mac_key, other, &idx), 0);
        assert_memory_equal(idx->packs[0].id, other, 32);
        cairn_index_free(idx);
        idx = NULL;
        assert_int_equal(
            cairn_pack_read_index_hashed(buf, len, mac_key, NULL, &idx),
            CAIRN_EINVAL);
        assert_null(idx);
        /* A tampered trailer still fails to authenticate. */
        buf[len - 9] ^= 1;
        assert_int_equal(
            cairn_pack_read_index_hashed(buf, len, mac_key, hash, &idx),
            CAIRN_ECORRUPT);
        assert_null(idx);
        buf[len - 9] ^= 1;
    }

    /* The writer is empty and reusable. */
    assert_int_equal(cairn_pack_writer_size(w), 8);
    assert_int_equal(cairn_pack_writer_count(w), 0);
    free(buf);
    cairn_pack_info_free(pi);
    add_blobs(w, 1);
    assert_int_equal(cairn_pack_writer_finish(w, mac_key, &buf, &len, &pi), 0);
    assert_int_equal(pi->nblobs, 1);
    assert_int_equal(pi->blobs[0].offset, 8);
    assert_int_equal(cairn_pack_read_index(buf, len, mac_key, &idx), 0);
    assert_int_equal(idx->packs[0].nblobs, 1);
    cairn_index_free(idx);
    free(buf);
    cairn_pack_info_free(pi);
    cairn_pack_info_free(NULL);
    cairn_pack_writer_free(w);
    cairn_pack_writer_free(NULL);
}

static void test_empty_pack(void **state)
{
    struct cairn_pack_info *pi = NULL;
    struct cairn_index *idx = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    make_pack(0, &buf, &len, &pi);
    assert_int_equal(len, 8 + 12 + 44 + 32 + 8);
    assert_int_equal(cairn_pack_read_index(buf, len, mac_key, &idx), 0);
    assert_int_equal(idx->packs[0].nblobs, 0);
    write_corpus("empty", buf, len);
    cairn_index_free(idx);
    free(buf);
    cairn_pack_info_free(pi);
}

static void test_truncations(void **state)
{
    struct cairn_pack_info *pi = NULL;
    struct cairn_index *idx;
    uint8_t *buf = NULL, *copy;
    size_t len = 0, n;

    (void)state;
    make_pack(3, &buf, &len, &pi);
    write_corpus("three_blobs", buf, len);
    for (n = 0; n < len; n++) {
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        idx = NULL;
        assert_int_equal(cairn_pack_read_index(copy, n, mac_key, &idx),
                         CAIRN_ECORRUPT);
        assert_int_equal(cairn_pack_read_index(copy, n, NULL, &idx),
                         CAIRN_ECORRUPT);
        assert_null(idx);
        free(copy);
    }
    free(buf);
    cairn_pack_info_free(pi);
}

static void test_tampered(void **state)
{
    struct cairn_pack_info *pi = NULL;
    struct cairn_index *idx = NULL;
    uint8_t *buf = NULL, other[CAIRN_KEY_LEN];
    size_t len = 0, i, tstart;
    uint32_t tlen;
    int rc;

    (void)state;
    make_pack(3, &buf, &len, &pi);
    assert_int_equal(cairn_pack_footer_decode(buf + len - 8, &tlen), 0);
    tstart = len - 8 - tlen;
    /* Every byte of the trailer and footer. */
    for (i = tstart; i < len; i++) {
        buf[i] ^= 0x20;
        rc = cairn_pack_read_index(buf, len, mac_key, &idx);
        assert_int_equal(rc, i == tstart + 4 ? CAIRN_EVERSION : CAIRN_ECORRUPT);
        buf[i] ^= 0x20;
    }
    /* The header. */
    buf[0] ^= 1;
    assert_int_equal(cairn_pack_read_index(buf, len, NULL, &idx),
                     CAIRN_ECORRUPT);
    buf[0] ^= 1;
    buf[4] = 2;
    assert_int_equal(cairn_pack_read_index(buf, len, NULL, &idx),
                     CAIRN_EVERSION);
    buf[4] = 1;
    buf[7] = 1;
    assert_int_equal(cairn_pack_read_index(buf, len, NULL, &idx),
                     CAIRN_ECORRUPT);
    buf[7] = 0;
    /* A wrong key. */
    memset(other, 0x05, sizeof(other));
    assert_int_equal(cairn_pack_read_index(buf, len, other, &idx),
                     CAIRN_ECORRUPT);
    /* A blob's bytes are not the trailer's business, but change the id. */
    buf[9] ^= 1;
    assert_int_equal(cairn_pack_read_index(buf, len, mac_key, &idx), 0);
    assert_memory_not_equal(idx->packs[0].id, pi->id, 32);
    cairn_index_free(idx);
    free(buf);
    cairn_pack_info_free(pi);
}

/* Assemble a pack by hand around a trailer describing pi. */
static void handmade(const struct cairn_pack_info *pi, size_t area,
                     struct cairn_buf *b)
{
    size_t tstart;

    cairn_buf_init(b, 0);
    assert_int_equal(cairn_buf_append(b, "CRNP\x01\x00\x00\x00", 8), 0);
    while (b->len < area)
        assert_int_equal(cairn_buf_put_u8(b, 0xee), 0);
    tstart = b->len;
    assert_int_equal(cairn_index_encode(pi, 1, mac_key, b), 0);
    assert_int_equal(cairn_buf_put_u32(b, (uint32_t)(b->len - tstart)), 0);
    assert_int_equal(cairn_buf_append(b, "CRNE", 4), 0);
}

static void test_bad_trailers(void **state)
{
    struct cairn_index_entry e[2];
    struct cairn_pack_info pi;
    struct cairn_index *idx = NULL;
    struct cairn_buf b;

    (void)state;
    memset(e, 0, sizeof(e));
    memset(&pi, 0, sizeof(pi));
    pi.nblobs = 2;
    pi.blobs = e;
    e[0].offset = 8;
    e[0].length = 10;
    e[1].offset = 18;
    e[1].length = 10;

    /* Blob area of 28 bytes: fits exactly. */
    handmade(&pi, 28, &b);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx), 0);
    cairn_index_free(idx);
    cairn_buf_free(&b);
    /* One byte short: the last blob runs into the trailer. */
    handmade(&pi, 27, &b);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
    /* Gaps are allowed. */
    e[1].offset = 20;
    handmade(&pi, 40, &b);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx), 0);
    cairn_index_free(idx);
    cairn_buf_free(&b);
    /* A trailer naming a pack (non-zero id or length). */
    pi.id[3] = 1;
    handmade(&pi, 40, &b);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
    pi.id[3] = 0;
    pi.length = 100;
    handmade(&pi, 40, &b);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
    pi.length = 0;
    /* Two packs in the trailer. */
    {
        struct cairn_pack_info two[2];
        size_t tstart;

        two[0] = pi;
        two[1] = pi;
        cairn_buf_init(&b, 0);
        assert_int_equal(cairn_buf_append(&b, "CRNP\x01\x00\x00\x00", 8), 0);
        for (tstart = 8; tstart < 40; tstart++)
            assert_int_equal(cairn_buf_put_u8(&b, 0), 0);
        assert_int_equal(cairn_index_encode(two, 2, mac_key, &b), 0);
        assert_int_equal(cairn_buf_put_u32(&b, (uint32_t)(b.len - 40)), 0);
        assert_int_equal(cairn_buf_append(&b, "CRNE", 4), 0);
        assert_int_equal(cairn_pack_read_index(b.data, b.len, mac_key, &idx),
                         CAIRN_ECORRUPT);
        cairn_buf_free(&b);
    }
    /* A footer whose length exceeds the pack. */
    handmade(&pi, 40, &b);
    cairn_le32enc(b.data + b.len - 8, (uint32_t)b.len);
    assert_int_equal(cairn_pack_read_index(b.data, b.len, NULL, &idx),
                     CAIRN_ECORRUPT);
    cairn_buf_free(&b);
}

static void test_footer(void **state)
{
    uint8_t f[8];
    uint32_t tlen = 0;

    (void)state;
    cairn_le32enc(f, 1000);
    memcpy(f + 4, "CRNE", 4);
    assert_int_equal(cairn_pack_footer_decode(f, &tlen), 0);
    assert_int_equal(tlen, 1000);
    f[7] = 'X';
    assert_int_equal(cairn_pack_footer_decode(f, &tlen), CAIRN_ECORRUPT);
    f[7] = 'E';
    cairn_le32enc(f, 43);
    assert_int_equal(cairn_pack_footer_decode(f, &tlen), CAIRN_ECORRUPT);
    cairn_le32enc(f, CAIRN_INDEX_MAX_LEN + 1);
    assert_int_equal(cairn_pack_footer_decode(f, &tlen), CAIRN_ECORRUPT);
}

static void test_writer_checks(void **state)
{
    struct cairn_pack_writer *w;
    uint8_t x[4] = {1, 2, 3, 4};

    (void)state;
    assert_non_null(w = cairn_pack_writer_new());
    assert_int_equal(cairn_pack_writer_add(w, ids[0], 2, x, 4, 4, NULL, 0),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_pack_writer_add(w, ids[0], CAIRN_BLOB_DATA, x, 4, 4,
                                           (const uint8_t(*)[32])trefs, 1),
                     CAIRN_EINVAL);
    assert_int_equal(
        cairn_pack_writer_add(w, ids[0], CAIRN_BLOB_TREE, x, 4, 4, NULL, 1),
        CAIRN_EINVAL);
    assert_int_equal(
        cairn_pack_writer_add(w, ids[0], CAIRN_BLOB_DATA, x, 0, 0, NULL, 0),
        CAIRN_EINVAL);
    assert_int_equal(cairn_pack_writer_add(w, ids[0], CAIRN_BLOB_DATA, x, 4,
                                           CAIRN_BLOB_MAX + 1, NULL, 0),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_pack_writer_size(w), 8);
    assert_int_equal(cairn_pack_writer_count(w), 0);
    cairn_pack_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),    cmocka_unit_test(test_empty_pack),
        cmocka_unit_test(test_truncations),   cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_bad_trailers),  cmocka_unit_test(test_footer),
        cmocka_unit_test(test_writer_checks),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
