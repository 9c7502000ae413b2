/*
 * test_chunker.c - the keyed FastCDC chunker: parameters, pinned cut
 * points, agreement with a plain reference written from the spec (its own
 * HKDF through OpenSSL), size bounds, the stateless streaming contract,
 * locality of edits, and keys.
 *
 * With CAIRN_WRITE_CORPUS=dir set, also writes the seed corpus of
 * fuzz_chunker to dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "cairn/chunker.h"
#include "cairn/err.h"

static const struct cairn_chunker_params defaults = {
    CAIRN_CHUNK_MIN_DEFAULT, CAIRN_CHUNK_AVG_DEFAULT, CAIRN_CHUNK_MAX_DEFAULT};
static const struct cairn_chunker_params small = {256, 1024, 4096};
static const struct cairn_chunker_params tiny = {64, 256, 1024};

static void key_of(uint8_t key[32], uint8_t seed)
{
    int i;

    for (i = 0; i < 32; i++)
        key[i] = (uint8_t)(seed + i);
}

static void random_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

static struct cairn_chunker *make(uint8_t seed,
                                  const struct cairn_chunker_params *p)
{
    struct cairn_chunker *c = NULL;
    uint8_t key[32];

    key_of(key, seed);
    assert_int_equal(cairn_chunker_new(key, p, &c), 0);
    assert_non_null(c);
    return c;
}

/* Cut all of buf in one go; the chunk lengths in out (n of them). */
static size_t cut_all(const struct cairn_chunker *c, const uint8_t *buf,
                      size_t len, size_t *out, size_t cap)
{
    size_t pos = 0, n = 0, r;

    while (pos < len) {
        r = cairn_chunker_next(c, buf + pos, len - pos, 1);
        assert_true(r >= 1 && r <= len - pos);
        assert_true(n < cap);
        out[n++] = r;
        pos += r;
    }
    return n;
}

/*
 * The reference: the spec read literally.  Gear table by OpenSSL's HKDF,
 * every byte from the chunk start hashed (bits that old are shifted out
 * of h before they matter), masks of high bits.
 */
struct ref {
    uint64_t gear[256];
    uint64_t ms, ml;
    size_t min, avg, max;
};

static void ref_init(struct ref *r, const uint8_t key[32],
                     const struct cairn_chunker_params *p)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *kctx;
    OSSL_PARAM params[4];
    uint8_t out[2048];
    unsigned bits = 0;
    int i, j;

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    assert_non_null(kdf);
    kctx = EVP_KDF_CTX_new(kdf);
    assert_non_null(kctx);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, 32);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  (void *)"cairn/v1/gear", 13);
    params[3] = OSSL_PARAM_construct_end();
    assert_int_equal(EVP_KDF_derive(kctx, out, sizeof(out), params), 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    for (i = 0; i < 256; i++) {
        r->gear[i] = 0;
        for (j = 7; j >= 0; j--)
            r->gear[i] = (r->gear[i] << 8) | out[8 * i + j];
    }
    while ((1u << bits) < p->avg)
        bits++;
    r->ms = ~(uint64_t)0 << (64 - (bits + 2));
    r->ml = ~(uint64_t)0 << (64 - (bits - 2));
    r->min = p->min;
    r->avg = p->avg;
    r->max = p->max;
}

static size_t ref_next(const struct ref *r, const uint8_t *buf, size_t len)
{
    uint64_t h = 0;
    size_t l;

    for (l = 1; l <= len; l++) {
        h = (h << 1) + r->gear[buf[l - 1]];
        if (l < r->min)
            continue;
        if (l == r->max)
            return l;
        if ((h & (l < r->avg ? r->ms : r->ml)) == 0)
            return l;
    }
    return len;
}

static void test_params(void **state)
{
    struct cairn_chunker_params p;
    struct cairn_chunker *c = NULL;
    uint8_t key[32] = {0};

    (void)state;
    assert_int_equal(cairn_chunker_params_check(&defaults), 0);
    assert_int_equal(cairn_chunker_params_check(&tiny), 0);
    assert_int_equal(cairn_chunker_params_check(NULL), CAIRN_EINVAL);
    p = tiny;
    p.min = 63;
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    p = tiny;
    p.min = 256; /* == avg */
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    p = tiny;
    p.avg = 384; /* not a power of two */
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    p = tiny;
    p.max = 256; /* == avg */
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    p = defaults;
    p.max = 64u * 1024 * 1024;
    assert_int_equal(cairn_chunker_params_check(&p), 0);
    p.max++;
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    p.min = 0;
    p.avg = 0;
    p.max = 0;
    assert_int_equal(cairn_chunker_params_check(&p), CAIRN_EINVAL);
    /* The largest avg possible, and new refusing bad params. */
    p.min = 64;
    p.avg = 32u * 1024 * 1024;
    p.max = 64u * 1024 * 1024;
    assert_int_equal(cairn_chunker_new(key, &p, &c), 0);
    cairn_chunker_free(c);
    c = NULL;
    p.avg = 100;
    assert_int_equal(cairn_chunker_new(key, &p, &c), CAIRN_EINVAL);
    assert_null(c);
    assert_int_equal(cairn_chunker_new(NULL, &tiny, &c), CAIRN_EINVAL);
    cairn_chunker_free(NULL);
}

/* Known answers: these cut points are part of the archive format (a
 * different answer changes deduplication against every old backup). */
static void test_known_answers(void **state)
{
    static const size_t expect_small[12] = {
        321, 1034, 2164, 1817, 1687, 809, 1615, 1165, 1135, 1283, 1006, 1185,
    };
    struct cairn_chunker *c;
    uint8_t *buf;
    size_t lens[64], n, i;

    (void)state;
    buf = malloc(30000);
    assert_non_null(buf);
    random_fill(buf, 30000, 42);
    c = make(0, &small);
    n = cut_all(c, buf, 30000, lens, 64);
    assert_true(n >= 12);
    for (i = 0; i < 12; i++)
        assert_int_equal(lens[i], expect_small[i]);
    cairn_chunker_free(c);
    free(buf);
}

/* The optimised loop agrees with the reference on every parameter set. */
static void test_reference(void **state)
{
    static const struct cairn_chunker_params sets[] = {
        {64, 256, 1024},      {64, 128, 129},      {100, 128, 5000},
        {256, 1024, 4096},    {4000, 4096, 65536}, {512, 8192, 65536},
        {8192, 16384, 20000},
    };
    struct cairn_chunker *c;
    struct ref r;
    uint8_t *buf, key[32];
    size_t len = 1 << 20, pos, a, b, s, count;

    (void)state;
    buf = malloc(len);
    assert_non_null(buf);
    random_fill(buf, len, 7);
    /* Some runs of one byte value, where only max can cut. */
    memset(buf + 100000, 0, 70000);
    memset(buf + 300000, 0xff, 5000);
    for (s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        key_of(key, (uint8_t)(s * 11));
        assert_int_equal(cairn_chunker_new(key, &sets[s], &c), 0);
        ref_init(&r, key, &sets[s]);
        for (pos = 0, count = 0; pos < len; pos += a, count++) {
            a = cairn_chunker_next(c, buf + pos, len - pos, 1);
            b = ref_next(&r, buf + pos, len - pos);
            assert_int_equal(a, b);
        }
        assert_true(count > len / sets[s].max);
        cairn_chunker_free(c);
    }
    free(buf);
}

/* Every chunk is within [min, max] except the last; sizes are spread
 * around the average. */
static void test_bounds(void **state)
{
    static const struct cairn_chunker_params *sets[] = {&tiny, &small,
                                                        &defaults};
    size_t len = 24u << 20, *lens, n, i, s, total;
    struct cairn_chunker *c;
    uint8_t *buf;

    (void)state;
    buf = malloc(len);
    lens = malloc(sizeof(*lens) * (len / 64 + 1));
    assert_non_null(buf);
    assert_non_null(lens);
    random_fill(buf, len, 3);
    for (s = 0; s < 3; s++) {
        c = make(1, sets[s]);
        n = cut_all(c, buf, len, lens, len / 64 + 1);
        for (i = 0, total = 0; i < n; i++) {
            total += lens[i];
            if (i + 1 < n) {
                assert_true(lens[i] >= sets[s]->min);
                assert_true(lens[i] <= sets[s]->max);
            }
        }
        assert_int_equal(total, len);
        /* Normalised chunking: the mean lands near min + avg / 2 .. 2 avg. */
        assert_true(len / n > sets[s]->min);
        assert_true(len / n < 2 * (size_t)sets[s]->avg);
        cairn_chunker_free(c);
    }
    free(lens);
    free(buf);
}

/* Feeding data a little at a time gives the cuts of one call with all. */
static void test_streaming(void **state)
{
    static const struct cairn_chunker_params *sets[] = {&tiny, &small};
    size_t len = 2u << 20, whole[20000], nw, pos, avail, r, k, s;
    struct cairn_chunker *c;
    uint8_t *buf;
    uint32_t x = 1;

    (void)state;
    buf = malloc(len);
    assert_non_null(buf);
    random_fill(buf, len, 11);
    memset(buf + 5000, 0, 20000);
    for (s = 0; s < 2; s++) {
        c = make(2, sets[s]);
        nw = cut_all(c, buf, len, whole, 20000);
        pos = 0;
        avail = 0;
        k = 0;
        while (pos < len) {
            r = cairn_chunker_next(c, buf + pos, avail, pos + avail == len);
            if (r == 0) {
                /* No answer yet: less than max seen, no end of data. */
                assert_true(avail < sets[s]->max);
                x = x * 1103515245u + 12345u;
                avail += 1 + (x >> 16) % (s == 0 ? 300 : 3000);
                if (avail > len - pos)
                    avail = len - pos;
                continue;
            }
            assert_true(k < nw);
            assert_int_equal(r, whole[k]);
            k++;
            pos += r;
            avail -= r;
        }
        assert_int_equal(k, nw);
        /* Edge cases of the contract. */
        assert_int_equal(cairn_chunker_next(c, buf, 0, 1), 0);
        assert_int_equal(cairn_chunker_next(c, buf, 0, 0), 0);
        assert_int_equal(cairn_chunker_next(c, buf, 10, 1), 10);
        assert_int_equal(cairn_chunker_next(c, buf, 10, 0), 0);
        r = cairn_chunker_next(c, buf, sets[s]->max, 0);
        assert_true(r >= sets[s]->min && r <= sets[s]->max);
        cairn_chunker_free(c);
    }
    free(buf);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int has(const uint64_t *v, size_t n, uint64_t h)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] == h)
            return 1;
    return 0;
}

/* An insertion in the middle of 50 MB changes only the chunks around it. */
static void test_locality(void **state)
{
    size_t len = 50u << 20, ins = 3000, at = 25u << 20;
    size_t la[200], lb[200], na, nb, i, pa, pb, changed = 0, same_before = 0;
    uint64_t ha[200], hb[200];
    struct cairn_chunker *c;
    uint8_t *a, *b;

    (void)state;
    a = malloc(len);
    b = malloc(len + ins);
    assert_non_null(a);
    assert_non_null(b);
    random_fill(a, len, 5);
    memcpy(b, a, at);
    random_fill(b + at, ins, 6);
    memcpy(b + at + ins, a + at, len - at);

    c = make(3, &defaults);
    na = cut_all(c, a, len, la, 200);
    nb = cut_all(c, b, len + ins, lb, 200);
    for (i = 0, pa = 0; i < na; pa += la[i], i++)
        ha[i] = fnv(a + pa, la[i]);
    for (i = 0, pb = 0; i < nb; pb += lb[i], i++)
        hb[i] = fnv(b + pb, lb[i]);
    for (i = 0; i < nb; i++)
        changed += !has(ha, na, hb[i]);
    assert_true(changed >= 1 && changed <= 3);
    /* The chunks before the edit keep their boundaries... */
    for (i = 0, pa = 0; i < na && pa + la[i] <= at; pa += la[i], i++) {
        assert_int_equal(la[i], lb[i]);
        same_before++;
    }
    assert_true(same_before > 15);
    /* ...and so do the last ones. */
    for (i = 1; i <= 15; i++)
        assert_int_equal(la[na - i], lb[nb - i]);
    cairn_chunker_free(c);
    free(a);
    free(b);
}

/* Different keys, different cuts (and the same key, the same cuts). */
static void test_keys(void **state)
{
    size_t len = 1 << 20, l1[2000], l2[2000], l3[2000], n1, n2, n3, i;
    struct cairn_chunker *c1, *c2, *c3;
    uint8_t *buf;
    int differ = 0;

    (void)state;
    buf = malloc(len);
    assert_non_null(buf);
    random_fill(buf, len, 9);
    c1 = make(1, &small);
    c2 = make(2, &small);
    c3 = make(1, &small);
    n1 = cut_all(c1, buf, len, l1, 2000);
    n2 = cut_all(c2, buf, len, l2, 2000);
    n3 = cut_all(c3, buf, len, l3, 2000);
    assert_int_equal(n1, n3);
    assert_memory_equal(l1, l3, n1 * sizeof(size_t));
    for (i = 0; i < 10 && i < n1 && i < n2; i++)
        differ += l1[i] != l2[i];
    assert_true(differ >= 5);
    cairn_chunker_free(c1);
    cairn_chunker_free(c2);
    cairn_chunker_free(c3);
    free(buf);
}

/* Data of one repeated byte never satisfies a mask: cuts at max. */
static void test_zeros(void **state)
{
    size_t len = 20u << 20, lens[64], n, i;
    struct cairn_chunker *c;
    uint8_t *buf;

    (void)state;
    buf = calloc(1, len);
    assert_non_null(buf);
    c = make(4, &defaults);
    n = cut_all(c, buf, len, lens, 64);
    assert_int_equal(n, 3);
    for (i = 0; i < 2; i++)
        assert_int_equal(lens[i], CAIRN_CHUNK_MAX_DEFAULT);
    assert_int_equal(lens[2], len - 2 * CAIRN_CHUNK_MAX_DEFAULT);
    cairn_chunker_free(c);
    free(buf);
}

/* With CAIRN_WRITE_CORPUS=dir: the seed corpus of fuzz_chunker. */
static void write_corpus(void)
{
    static const size_t sizes[] = {0, 100, 1000, 4096};
    const char *dir = getenv("CAIRN_WRITE_CORPUS");
    char path[1024];
    uint8_t buf[4096];
    FILE *f;
    size_t i;

    if (dir == NULL)
        return;
    for (i = 0; i < 4; i++) {
        random_fill(buf, sizes[i], i);
        snprintf(path, sizeof(path), "%s/random-%zu", dir, sizes[i]);
        assert_non_null(f = fopen(path, "wb"));
        fwrite(buf, 1, sizes[i], f);
        fclose(f);
    }
    memset(buf, 0, sizeof(buf));
    buf[0] = 0x80; /* small pieces in the streaming check */
    snprintf(path, sizeof(path), "%s/zeros-3000", dir);
    assert_non_null(f = fopen(path, "wb"));
    fwrite(buf, 1, 3000, f);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),    cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_reference), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_streaming), cmocka_unit_test(test_locality),
        cmocka_unit_test(test_keys),      cmocka_unit_test(test_zeros),
    };

    write_corpus();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
