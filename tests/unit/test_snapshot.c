/*
 * test_snapshot.c - snapshot objects and the config: round trips with
 * every field set, the public part read without keys, wrong keys, every
 * truncation and byte flip refused, private parts that open but break the
 * rules, caps, versions; the config's layout, MAC and checks.
 *
 * With CAIRN_WRITE_CORPUS=DIR set, also writes seed inputs for
 * fuzz/fuzz_snapshot.c and fuzz/fuzz_config.c into DIR/snapshot and
 * DIR/config (keys: every byte of master, id, data, mac, meta, chunker is
 * 1, 2, 3, 4, 5, 6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/snapshot.h"

static struct cairn_keys keys;
static char longpath[65536];
static char *paths[3] = {"/home/ana", NULL, "/etc/\xc3\xa9t\xc3\xa9"};
static char *tags[2] = {"daily", ""};

static void write_corpus(const char *sub, const char *name, const uint8_t *p,
                         size_t n)
{
    const char *dir = getenv("CAIRN_WRITE_CORPUS");
    char path[4096];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void make_keys(struct cairn_keys *k, int base)
{
    memset(k->master, base + 1, CAIRN_KEY_LEN);
    memset(k->id, base + 2, CAIRN_KEY_LEN);
    memset(k->data, base + 3, CAIRN_KEY_LEN);
    memset(k->mac, base + 4, CAIRN_KEY_LEN);
    memset(k->meta, base + 5, CAIRN_KEY_LEN);
    memset(k->chunker, base + 6, CAIRN_KEY_LEN);
}

static void make_snapshot(struct cairn_snapshot *s, int long_path)
{
    memset(s, 0, sizeof(*s));
    make_keys(&keys, 0);
    memset(longpath, 'p', 65535);
    longpath[0] = '/';
    longpath[long_path ? 65535 : 200] = '\0';
    paths[1] = longpath;
    s->time_ns = 1700000000987654321LL;
    memset(s->root, 0x11, CAIRN_ID_LEN);
    memset(s->parent, 0x22, CAIRN_ID_LEN);
    s->has_parent = 1;
    s->complete = 1;
    memset(s->device, 0x33, CAIRN_DEVICE_ID_LEN);
    s->files = 59000;
    s->dirs = 4000;
    s->bytes = 2130000000ull;
    s->added_bytes = 12345;
    s->errors = 2;
    s->hostname = "laptop.example.org";
    s->username = "ana";
    s->npaths = 3;
    s->paths = paths;
    s->ntags = 2;
    s->tags = tags;
}

static void assert_public_equal(const struct cairn_snapshot *a,
                                const struct cairn_snapshot *b)
{
    assert_true(a->time_ns == b->time_ns);
    assert_memory_equal(a->root, b->root, CAIRN_ID_LEN);
    assert_int_equal(!!a->has_parent, b->has_parent);
    if (a->has_parent)
        assert_memory_equal(a->parent, b->parent, CAIRN_ID_LEN);
    assert_int_equal(!!a->complete, b->complete);
    assert_memory_equal(a->device, b->device, CAIRN_DEVICE_ID_LEN);
    assert_true(a->files == b->files);
    assert_true(a->dirs == b->dirs);
    assert_true(a->bytes == b->bytes);
    assert_true(a->added_bytes == b->added_bytes);
    assert_true(a->errors == b->errors);
}

static void assert_private_equal(const struct cairn_snapshot *a,
                                 const struct cairn_snapshot *b)
{
    uint32_t i;

    assert_int_equal(b->have_private, 1);
    assert_string_equal(a->hostname ? a->hostname : "", b->hostname);
    assert_string_equal(a->username ? a->username : "", b->username);
    assert_int_equal(a->npaths, b->npaths);
    for (i = 0; i < a->npaths; i++)
        assert_string_equal(a->paths[i], b->paths[i]);
    assert_int_equal(a->ntags, b->ntags);
    for (i = 0; i < a->ntags; i++)
        assert_string_equal(a->tags[i], b->tags[i]);
}

static void test_round_trip(void **state)
{
    struct cairn_snapshot s, *d = NULL;
    uint8_t *buf = NULL, hash[32];
    size_t len = 0;

    (void)state;
    make_snapshot(&s, 1);
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len), 0);
    cairn_sha256(buf, len, hash);
    assert_memory_equal(s.id, hash, 32);
    /* The public part, in the clear at fixed offsets. */
    assert_memory_equal(buf, "CRNS\x01\x03\x00\x00", 8);
    assert_true(cairn_le64dec(buf + 8) == (uint64_t)s.time_ns);
    assert_memory_equal(buf + 16, s.root, 32);
    assert_memory_equal(buf + 80, s.device, 16);
    assert_true(cairn_le64dec(buf + 128) == 2);
    assert_int_equal(cairn_le32dec(buf + 136), len - 140 - 32);

    assert_int_equal(cairn_snapshot_decode(buf, len, &keys, &d), 0);
    assert_memory_equal(d->id, hash, 32);
    assert_public_equal(&s, d);
    assert_private_equal(&s, d);
    cairn_snapshot_free(d);

    /* Without keys: the public fields only. */
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), 0);
    assert_memory_equal(d->id, hash, 32);
    assert_public_equal(&s, d);
    assert_int_equal(d->have_private, 0);
    assert_null(d->hostname);
    assert_null(d->username);
    assert_int_equal(d->npaths, 0);
    assert_null(d->paths);
    assert_int_equal(d->ntags, 0);
    assert_null(d->tags);
    cairn_snapshot_free(d);
    cairn_snapshot_free(NULL);
    free(buf);
}

static void test_minimal(void **state)
{
    struct cairn_snapshot s, *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    make_keys(&keys, 0);
    memset(&s, 0, sizeof(s));
    memset(s.parent, 0x99, 32); /* ignored: has_parent is 0 */
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len), 0);
    assert_int_equal(len, 140 + 12 + 28 + 32);
    assert_int_equal(buf[5], 0);
    write_corpus("snapshot", "minimal", buf, len);
    assert_int_equal(cairn_snapshot_decode(buf, len, &keys, &d), 0);
    assert_int_equal(d->has_parent, 0);
    assert_int_equal(d->complete, 0);
    assert_string_equal(d->hostname, "");
    assert_string_equal(d->username, "");
    assert_int_equal(d->npaths, 0);
    assert_null(d->paths);
    assert_null(d->tags);
    cairn_snapshot_free(d);
    free(buf);
}

static void test_wrong_keys(void **state)
{
    struct cairn_snapshot s, *d = NULL;
    struct cairn_keys k2;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    make_snapshot(&s, 0);
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len), 0);
    make_keys(&k2, 0x40);
    assert_int_equal(cairn_snapshot_decode(buf, len, &k2, &d), CAIRN_ECORRUPT);
    /* Right mac key, wrong meta key: the private part does not open. */
    make_keys(&k2, 0);
    memset(k2.meta, 0x77, CAIRN_KEY_LEN);
    assert_int_equal(cairn_snapshot_decode(buf, len, &k2, &d), CAIRN_ECORRUPT);
    assert_null(d);
    free(buf);
}

static void test_truncations_and_flips(void **state)
{
    struct cairn_snapshot s, *d;
    uint8_t *buf = NULL, *copy;
    size_t len = 0, n;
    int rc;

    (void)state;
    make_snapshot(&s, 0);
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len), 0);
    write_corpus("snapshot", "full", buf, len);
    for (n = 0; n < len; n++) {
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        d = NULL;
        assert_int_equal(cairn_snapshot_decode(copy, n, &keys, &d),
                         CAIRN_ECORRUPT);
        assert_int_equal(cairn_snapshot_decode(copy, n, NULL, &d),
                         CAIRN_ECORRUPT);
        assert_null(d);
        free(copy);
    }
    for (n = 0; n < len; n++) {
        buf[n] ^= 0x80;
        d = NULL;
        rc = cairn_snapshot_decode(buf, len, &keys, &d);
        assert_int_equal(rc, n == 4 ? CAIRN_EVERSION : CAIRN_ECORRUPT);
        buf[n] ^= 0x80;
    }
    copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(cairn_snapshot_decode(copy, len + 1, NULL, &d),
                     CAIRN_ECORRUPT);
    free(copy);
    free(buf);
}

static void test_public_rules(void **state)
{
    struct cairn_snapshot s, *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    make_snapshot(&s, 0);
    s.has_parent = 0;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len), 0);
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), 0);
    cairn_snapshot_free(d);
    buf[48] = 1; /* a parent id without the flag */
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), CAIRN_ECORRUPT);
    buf[48] = 0;
    buf[5] |= 0x04; /* an unknown flag */
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), CAIRN_ECORRUPT);
    buf[5] &= 0x03;
    buf[6] = 1;
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), CAIRN_ECORRUPT);
    buf[6] = 0;
    buf[4] = 2;
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), CAIRN_EVERSION);
    buf[4] = 1;
    cairn_le32enc(buf + 136, 0xffffffffu);
    assert_int_equal(cairn_snapshot_decode(buf, len, NULL, &d), CAIRN_ECORRUPT);
    free(buf);
}

/*
 * Seal an arbitrary private plaintext into a well-formed object (valid
 * MAC), to test the checks made after decryption.
 */
static int decode_private(const uint8_t *pt, size_t ptlen)
{
    struct cairn_snapshot *d = NULL;
    struct cairn_aead *a;
    size_t len = 140 + ptlen + 28 + 32;
    uint8_t *buf;
    int rc;

    assert_non_null(buf = calloc(1, len));
    memcpy(buf, "CRNS\x01\x00\x00\x00", 8);
    cairn_le32enc(buf + 136, (uint32_t)(ptlen + 28));
    assert_non_null(a = cairn_aead_new(keys.meta));
    assert_int_equal(
        cairn_aead_seal(a, buf, 140, pt, ptlen, NULL, 0, buf + 140), 0);
    cairn_aead_free(a);
    assert_int_equal(cairn_hmac_sha256(keys.mac, buf, len - 32, buf + len - 32),
                     0);
    rc = cairn_snapshot_decode(buf, len, &keys, &d);
    cairn_snapshot_free(d);
    free(buf);
    return rc;
}

static void test_private_rules(void **state)
{
    /* host "h", user "", 1 path "/a", 0 tags */
    uint8_t ok[] = {1, 0, 'h', 0, 0, 1, 0, 0, 0, 2, 0, '/', 'a', 0, 0, 0, 0};
    uint8_t bad[sizeof(ok) + 1];
    uint8_t *big;
    size_t i;

    (void)state;
    make_keys(&keys, 0);
    assert_int_equal(decode_private(ok, sizeof(ok)), 0);
    memcpy(bad, ok, sizeof(ok));
    bad[2] = '\0'; /* NUL in the hostname */
    assert_int_equal(decode_private(bad, sizeof(ok)), CAIRN_ECORRUPT);
    memcpy(bad, ok, sizeof(ok));
    bad[sizeof(ok)] = 0; /* trailing byte */
    assert_int_equal(decode_private(bad, sizeof(ok) + 1), CAIRN_ECORRUPT);
    memcpy(bad, ok, sizeof(ok));
    bad[5] = 2; /* 2 paths, only 1 there */
    assert_int_equal(decode_private(bad, sizeof(ok)), CAIRN_ECORRUPT);
    memcpy(bad, ok, sizeof(ok));
    cairn_le32enc(bad + 5, 0xffffffffu);
    assert_int_equal(decode_private(bad, sizeof(ok)), CAIRN_ECORRUPT);
    for (i = 0; i < sizeof(ok); i++)
        assert_int_equal(decode_private(ok, i), CAIRN_ECORRUPT);
    /* 100,001 empty paths: over the cap although the bytes are there. */
    assert_non_null(big = calloc(1, 4 + 4 + 4 + 2 * 100001 + 4));
    cairn_le32enc(big + 4, 100001);
    assert_int_equal(decode_private(big, 4 + 4 + 2 * 100001 + 4),
                     CAIRN_ECORRUPT);
    cairn_le32enc(big + 4, 100000);
    assert_int_equal(decode_private(big, 4 + 4 + 2 * 100000 + 4), 0);
    free(big);
}

static void test_encode_caps(void **state)
{
    struct cairn_snapshot s;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *toolong;

    (void)state;
    make_snapshot(&s, 1);
    assert_non_null(toolong = malloc(65537));
    memset(toolong, 'x', 65536);
    toolong[65536] = '\0';
    paths[1] = toolong;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len),
                     CAIRN_ERANGE);
    s.hostname = toolong;
    paths[1] = longpath;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len),
                     CAIRN_ERANGE);
    s.hostname = "h";
    s.npaths = 100001;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len),
                     CAIRN_ERANGE);
    s.npaths = 3;
    s.paths = NULL;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len),
                     CAIRN_EINVAL);
    s.paths = paths;
    tags[1] = NULL;
    assert_int_equal(cairn_snapshot_encode(&s, &keys, &buf, &len),
                     CAIRN_EINVAL);
    tags[1] = "";
    free(toolong);
}

/* ---- config ---- */

static void make_config(struct cairn_config *c)
{
    memset(c, 0, sizeof(*c));
    memset(c->archive_id, 0xc1, CAIRN_ID_LEN);
    c->chunk_min = 512 * 1024;
    c->chunk_avg = 1024 * 1024;
    c->chunk_max = 8 * 1024 * 1024;
    c->pack_size = 16 * 1024 * 1024;
    c->zstd_level = -3;
    c->created_ns = -1;
}

static void test_config(void **state)
{
    struct cairn_config c, d;
    uint8_t *buf = NULL, *copy, mac[32];
    size_t len = 0, n;
    int rc;

    (void)state;
    make_keys(&keys, 0);
    make_config(&c);
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len), 0);
    assert_int_equal(len, 100);
    assert_memory_equal(buf, "CRNC\x01\x00\x00\x00", 8);
    assert_memory_equal(buf + 8, c.archive_id, 32);
    assert_int_equal(cairn_le32dec(buf + 40), 512 * 1024);
    assert_int_equal(cairn_le32dec(buf + 56), 0xfffffffdu);
    assert_true(cairn_le64dec(buf + 60) == UINT64_MAX);
    assert_int_equal(cairn_hmac_sha256(keys.mac, buf, 68, mac), 0);
    assert_memory_equal(mac, buf + 68, 32);
    write_corpus("config", "default", buf, len);

    memset(&d, 0, sizeof(d));
    assert_int_equal(cairn_config_decode(buf, len, keys.mac, &d), 0);
    assert_memory_equal(&c.archive_id, &d.archive_id, 32);
    assert_int_equal(d.chunk_min, c.chunk_min);
    assert_int_equal(d.chunk_avg, c.chunk_avg);
    assert_int_equal(d.chunk_max, c.chunk_max);
    assert_int_equal(d.pack_size, c.pack_size);
    assert_int_equal(d.zstd_level, -3);
    assert_true(d.created_ns == -1);

    for (n = 0; n < len; n++) {
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        assert_int_equal(cairn_config_decode(copy, n, NULL, &d),
                         CAIRN_ECORRUPT);
        free(copy);
    }
    for (n = 0; n < len; n++) {
        buf[n] ^= 0x01;
        rc = cairn_config_decode(buf, len, keys.mac, &d);
        assert_int_equal(rc, n == 4 ? CAIRN_EVERSION : CAIRN_ECORRUPT);
        buf[n] ^= 0x01;
    }
    /* Without the key the MAC is not read. */
    buf[99] ^= 1;
    assert_int_equal(cairn_config_decode(buf, len, NULL, &d), 0);
    buf[99] ^= 1;
    /* Settings are checked even without the key. */
    cairn_le32enc(buf + 44, 1000000); /* avg not a power of two */
    assert_int_equal(cairn_config_decode(buf, len, NULL, &d), CAIRN_ECORRUPT);
    free(buf);

    c.chunk_avg = 1000000;
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len),
                     CAIRN_EINVAL);
    make_config(&c);
    c.chunk_min = 32;
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len),
                     CAIRN_EINVAL);
    make_config(&c);
    c.chunk_max = 65 * 1024 * 1024;
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len),
                     CAIRN_EINVAL);
    make_config(&c);
    c.pack_size = 0;
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len),
                     CAIRN_EINVAL);
    make_config(&c);
    c.zstd_level = 23;
    assert_int_equal(cairn_config_encode(&c, keys.mac, &buf, &len),
                     CAIRN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_truncations_and_flips),
        cmocka_unit_test(test_public_rules),
        cmocka_unit_test(test_private_rules),
        cmocka_unit_test(test_encode_caps),
        cmocka_unit_test(test_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
