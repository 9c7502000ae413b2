/*
 * test_keyring.c - the server's in-memory archive keys (server/keyring.h):
 * put and get per session and device, replacement, expiry, a full table,
 * dropping by session, user (but one session) and device, sweeping dead
 * sessions, malformed ids; and opening the wraps: an owner wrap with the
 * right and a wrong password or for another archive, an escrow wrap
 * sealed to the escrow key, damaged or for another archive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"

#include "catalog.h"
#include "keyring.h"

#define S1 "1111111111111111111111111111111111111111111111111111111111111111"
#define S2 "2222222222222222222222222222222222222222222222222222222222222222"
#define S3 "3333333333333333333333333333333333333333333333333333333333333333"
#define D1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D2 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

static void key_of(uint8_t k[KEYRING_KEY_LEN], uint8_t v)
{
    memset(k, v, KEYRING_KEY_LEN);
}

static void test_put_get(void **state)
{
    struct keyring *k;
    uint8_t in[32], out[32];
    int64_t exp = 0;

    (void)state;
    assert_int_equal(keyring_new(8, &k), 0);
    key_of(in, 0x11);
    assert_int_equal(keyring_put(k, S1, 7, D1, in, now() + 100), 0);
    key_of(in, 0x22);
    assert_int_equal(keyring_put(k, S1, 7, D2, in, now() + 100), 0);
    key_of(in, 0x33);
    assert_int_equal(keyring_put(k, S2, 8, D1, in, now() + 50), 0);
    assert_int_equal(keyring_count(k), 3);

    assert_int_equal(keyring_get(k, S1, D1, now(), out, &exp), 0);
    key_of(in, 0x11);
    assert_memory_equal(out, in, 32);
    assert_true(exp >= now() + 99);
    assert_int_equal(keyring_get(k, S1, D2, now(), out, NULL), 0);
    key_of(in, 0x22);
    assert_memory_equal(out, in, 32);
    assert_int_equal(keyring_get(k, S2, D1, now(), out, NULL), 0);
    key_of(in, 0x33);
    assert_memory_equal(out, in, 32);
    /* Another session's device is not this session's. */
    assert_int_equal(keyring_get(k, S2, D2, now(), out, NULL), CAIRN_ENOENT);
    assert_int_equal(keyring_get(k, S3, D1, now(), out, NULL), CAIRN_ENOENT);

    /* The same pair again replaces. */
    key_of(in, 0x44);
    assert_int_equal(keyring_put(k, S1, 7, D1, in, now() + 100), 0);
    assert_int_equal(keyring_count(k), 3);
    assert_int_equal(keyring_get(k, S1, D1, now(), out, NULL), 0);
    assert_memory_equal(out, in, 32);

    /* Malformed ids. */
    assert_int_equal(keyring_put(k, "abc", 7, D1, in, now() + 100),
                     CAIRN_EINVAL);
    assert_int_equal(keyring_put(k, S1, 7, "ABCDEF", in, now() + 100),
                     CAIRN_EINVAL);
    assert_int_equal(
        keyring_put(k, S1, 7, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", in,
                    now() + 100),
        CAIRN_EINVAL);
    keyring_free(k);
    keyring_free(NULL);
    assert_int_equal(keyring_new(0, &k), CAIRN_EINVAL);
}

static void test_expiry_and_full(void **state)
{
    struct keyring *k;
    uint8_t in[32], out[32];

    (void)state;
    assert_int_equal(keyring_new(2, &k), 0);
    key_of(in, 1);
    assert_int_equal(keyring_put(k, S1, 1, D1, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S2, 2, D1, in, now() - 1), 0);
    /* Full, but the expired slot is reused. */
    assert_int_equal(keyring_put(k, S3, 3, D1, in, now() + 100), 0);
    assert_int_equal(keyring_get(k, S2, D1, now(), out, NULL), CAIRN_ENOENT);
    /* Full with live keys. */
    assert_int_equal(keyring_put(k, S2, 2, D2, in, now() + 100),
                     CAIRN_ENOSPC);
    /* A key asked for after its expiry is gone, and its slot freed. */
    assert_int_equal(keyring_get(k, S1, D1, now() + 101, out, NULL),
                     CAIRN_ENOENT);
    assert_int_equal(keyring_count(k), 1);
    assert_int_equal(keyring_get(k, S1, D1, now(), out, NULL), CAIRN_ENOENT);
    assert_int_equal(keyring_put(k, S2, 2, D2, in, now() + 100), 0);
    keyring_free(k);
}

static void test_drop(void **state)
{
    struct keyring *k;
    uint8_t in[32], out[32];

    (void)state;
    assert_int_equal(keyring_new(16, &k), 0);
    key_of(in, 9);
    assert_int_equal(keyring_put(k, S1, 7, D1, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S1, 7, D2, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S2, 7, D1, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S3, 8, D1, in, now() + 100), 0);

    /* A user's other sessions (a password change): S2 goes, S1 stays. */
    assert_int_equal(keyring_drop_user(k, 7, S1), 1);
    assert_int_equal(keyring_get(k, S2, D1, now(), out, NULL), CAIRN_ENOENT);
    assert_int_equal(keyring_get(k, S1, D1, now(), out, NULL), 0);
    /* Logout. */
    assert_int_equal(keyring_drop_session(k, S1), 2);
    assert_int_equal(keyring_get(k, S1, D2, now(), out, NULL), CAIRN_ENOENT);
    assert_int_equal(keyring_count(k), 1);
    /* A device's wraps changed. */
    assert_int_equal(keyring_put(k, S1, 7, D1, in, now() + 100), 0);
    assert_int_equal(keyring_drop_device(k, D1), 2);
    assert_int_equal(keyring_count(k), 0);
    assert_int_equal(keyring_put(k, S1, 7, D1, in, now() + 100), 0);
    assert_int_equal(keyring_drop_user(k, 7, NULL), 1);
    assert_int_equal(keyring_drop_session(NULL, S1), 0);
    keyring_free(k);
}

static int alive_s1(void *arg, const char *h)
{
    int *calls = arg;

    (*calls)++;
    return strcmp(h, S1) == 0;
}

static void test_sweep(void **state)
{
    struct keyring *k;
    uint8_t in[32], out[32];
    int calls = 0;

    (void)state;
    assert_int_equal(keyring_new(16, &k), 0);
    key_of(in, 5);
    assert_int_equal(keyring_put(k, S1, 1, D1, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S1, 1, D2, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S2, 2, D1, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S2, 2, D2, in, now() + 100), 0);
    assert_int_equal(keyring_put(k, S3, 3, D1, in, now() - 5), 0);
    /* Expiry only. */
    assert_int_equal(keyring_sweep(k, now(), NULL, NULL), 1);
    /* S2 has ended: both its keys go; each session asked about once. */
    assert_int_equal(keyring_sweep(k, now(), alive_s1, &calls), 2);
    assert_int_equal(calls, 2);
    assert_int_equal(keyring_get(k, S1, D2, now(), out, NULL), 0);
    assert_int_equal(keyring_get(k, S2, D1, now(), out, NULL), CAIRN_ENOENT);
    assert_int_equal(keyring_count(k), 2);
    keyring_free(k);
}

static void test_process(void **state)
{
    struct keyring *k = keyring_process();

    (void)state;
    assert_non_null(k);
    assert_ptr_equal(k, keyring_process());
}

static const struct cairn_kdf_params fast = {10, 1, 1};

static void test_open_owner(void **state)
{
    struct cat_device d;
    uint8_t master[32], aid[32], out[32];
    uint8_t *wrap;
    size_t wlen;

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_int_equal(cairn_random(master, 32), 0);
    assert_int_equal(cairn_random(aid, 32), 0);
    memcpy(d.archive_id, aid, 32);
    assert_int_equal(keyring_open_owner(&d, "pw", out), CAIRN_ENOENT);
    assert_int_equal(cairn_keyfile_create(master, aid, "right password", 14,
                                          &fast, "owner", &wrap, &wlen),
                     0);
    d.wrap_owner = wrap;
    d.wrap_owner_len = wlen;
    assert_int_equal(keyring_open_owner(&d, "right password", out), 0);
    assert_memory_equal(out, master, 32);
    assert_int_equal(keyring_open_owner(&d, "wrong password", out),
                     CAIRN_EAUTH);
    /* A wrap of another archive (swapped rows) is refused. */
    d.archive_id[0] ^= 1;
    assert_int_equal(keyring_open_owner(&d, "right password", out),
                     CAIRN_ECORRUPT);
    d.archive_id[0] ^= 1;
    /* Truncated. */
    d.wrap_owner_len = wlen / 2;
    assert_int_not_equal(keyring_open_owner(&d, "right password", out), 0);
    free(wrap);
}

static void test_unseal(void **state)
{
    struct cat_device d;
    uint8_t pub[32], priv[32], pub2[32], priv2[32];
    uint8_t master[32], aid[32], msg[64], out[32];
    uint8_t *box;
    size_t blen;

    (void)state;
    memset(&d, 0, sizeof(d));
    assert_int_equal(cairn_x25519_keypair(pub, priv), 0);
    assert_int_equal(cairn_x25519_keypair(pub2, priv2), 0);
    assert_int_equal(cairn_random(master, 32), 0);
    assert_int_equal(cairn_random(aid, 32), 0);
    memcpy(msg, master, 32);
    memcpy(msg + 32, aid, 32);
    memcpy(d.archive_id, aid, 32);
    assert_int_equal(keyring_unseal(pub, priv, &d, out), CAIRN_ENOENT);
    assert_int_equal(cairn_seal(pub, msg, sizeof(msg), &box, &blen), 0);
    d.wrap_escrow = box;
    d.wrap_escrow_len = blen;
    assert_int_equal(keyring_unseal(pub, priv, &d, out), 0);
    assert_memory_equal(out, master, 32);
    /* Another escrow key. */
    assert_int_not_equal(keyring_unseal(pub2, priv2, &d, out), 0);
    /* Another archive. */
    d.archive_id[31] ^= 0x80;
    assert_int_equal(keyring_unseal(pub, priv, &d, out), CAIRN_ECORRUPT);
    d.archive_id[31] ^= 0x80;
    /* Damaged. */
    box[blen - 1] ^= 1;
    assert_int_not_equal(keyring_unseal(pub, priv, &d, out), 0);
    free(box);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_expiry_and_full),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_process),
        cmocka_unit_test(test_open_owner),
        cmocka_unit_test(test_unseal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
