/*
 * test_seal.c - sealed boxes and the escrow key pair: round trips, the
 * exact layout, known answers for X25519 (RFC 7748, section 6.1) checked
 * through the public functions, wrong keys, every truncation and byte
 * flip, and escrow key files (wrong passphrase, mismatched key pair).
 *
 * With CAIRN_WRITE_CORPUS=DIR in the environment, also writes seed inputs
 * for fuzz/fuzz_seal.c to DIR/seal/ (boxes sealed to Bob's RFC 7748 key).
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

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"

/* RFC 7748, section 6.1. */
#define ALICE_PRIV                                                             \
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB                                                              \
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV                                                               \
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB                                                                \
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define SHARED                                                                 \
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

/* Cheap scrypt parameters, so that escrow tests stay fast. */
static const struct cairn_kdf_params cheap = {10, 1, 1};

static uint8_t alice_priv[32], alice_pub[32], bob_priv[32], bob_pub[32];
static uint8_t shared[32];

static int setup(void **state)
{
    (void)state;
    if (cairn_hex_decode(ALICE_PRIV, alice_priv, 32) != 0 ||
        cairn_hex_decode(ALICE_PUB, alice_pub, 32) != 0 ||
        cairn_hex_decode(BOB_PRIV, bob_priv, 32) != 0 ||
        cairn_hex_decode(BOB_PUB, bob_pub, 32) != 0 ||
        cairn_hex_decode(SHARED, shared, 32) != 0)
        return -1;
    return 0;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 131 + (i >> 8));
}

static void test_roundtrip(void **state)
{
    static const size_t sizes[] = {0, 1, 32, 64, 1000, 70000};
    uint8_t pub[32], priv[32], msg[70000];
    uint8_t *box, *box2, *out;
    size_t i, box_len, box2_len, out_len;

    (void)state;
    assert_int_equal(cairn_x25519_keypair(pub, priv), 0);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fill(msg, sizes[i], (unsigned)i);
        assert_int_equal(cairn_seal(pub, msg, sizes[i], &box, &box_len), 0);
        assert_int_equal(box_len, sizes[i] + CAIRN_SEAL_OVERHEAD);
        assert_int_equal(CAIRN_SEAL_OVERHEAD, 68);
        assert_memory_equal(box, "CRNX\x01\0\0\0", 8);
        assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len),
                         0);
        assert_int_equal(out_len, sizes[i]);
        if (sizes[i] > 0)
            assert_memory_equal(out, msg, sizes[i]);
        free(out);

        /* A fresh ephemeral key each time: unrelated boxes. */
        assert_int_equal(cairn_seal(pub, msg, sizes[i], &box2, &box2_len), 0);
        assert_int_equal(box2_len, box_len);
        assert_memory_not_equal(box + 8, box2 + 8, 32);
        free(box2);
        free(box);
    }

    /* Two key pairs differ; the public key is not the private one. */
    {
        uint8_t pub2[32], priv2[32];

        assert_int_equal(cairn_x25519_keypair(pub2, priv2), 0);
        assert_memory_not_equal(pub, pub2, 32);
        assert_memory_not_equal(priv, priv2, 32);
        assert_memory_not_equal(pub, priv, 32);
    }
    assert_int_equal(cairn_seal(pub, NULL, 1, &box, &box_len), CAIRN_EINVAL);
}

/*
 * X25519 against RFC 7748: a box made by hand with Alice's key pair as the
 * ephemeral one and the RFC's shared secret K must open with Bob's private
 * key, and the same box made with any other K must not.  So unseal
 * computes X25519(b, A) = K, and the layout and derivation are pinned.
 */
static uint8_t *handmade_box(const uint8_t k[32], const void *msg, size_t len,
                             size_t *out_len)
{
    struct cairn_aead *a;
    uint8_t salt[64], key[32], *box;

    memcpy(salt, alice_pub, 32);
    memcpy(salt + 32, bob_pub, 32);
    assert_int_equal(
        cairn_hkdf(k, 32, salt, sizeof(salt), "cairn/v1/seal", key, 32), 0);
    assert_non_null(a = cairn_aead_new(key));
    assert_non_null(box = malloc(len + CAIRN_SEAL_OVERHEAD));
    memcpy(box, "CRNX\x01\0\0\0", 8);
    memcpy(box + 8, alice_pub, 32);
    assert_int_equal(cairn_aead_seal(a, box, 40, msg, len, NULL, 0, box + 40),
                     0);
    cairn_aead_free(a);
    *out_len = len + CAIRN_SEAL_OVERHEAD;
    return box;
}

static void test_x25519_known_answer(void **state)
{
    static const char msg[] = "the archive key of a device";
    uint8_t k[32], *box, *out, *kf;
    size_t box_len, out_len, kf_len;
    uint8_t priv[32];

    (void)state;
    box = handmade_box(shared, msg, sizeof(msg), &box_len);
    assert_int_equal(
        cairn_unseal(bob_pub, bob_priv, box, box_len, &out, &out_len), 0);
    assert_int_equal(out_len, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    free(out);
    /* Alice cannot open what was sealed to Bob. */
    assert_int_equal(
        cairn_unseal(alice_pub, alice_priv, box, box_len, &out, &out_len),
        CAIRN_ECORRUPT);
    free(box);

    /* Any other shared secret fails: the check above has teeth. */
    memcpy(k, shared, 32);
    k[31] ^= 0x01;
    box = handmade_box(k, msg, sizeof(msg), &box_len);
    assert_int_equal(
        cairn_unseal(bob_pub, bob_priv, box, box_len, &out, &out_len),
        CAIRN_ECORRUPT);
    free(box);

    /*
     * The public keys of RFC 7748: a key file holding (a, A) opens as an
     * escrow key for A, which needs X25519(a, 9) = A; (a, B) is refused
     * because a does not derive B.
     */
    assert_int_equal(cairn_keyfile_create(alice_priv, alice_pub, "pw", 2,
                                          &cheap, NULL, &kf, &kf_len),
                     0);
    assert_int_equal(cairn_escrow_open(kf, kf_len, "pw", 2, alice_pub, priv),
                     0);
    assert_memory_equal(priv, alice_priv, 32);
    free(kf);
    assert_int_equal(cairn_keyfile_create(bob_priv, bob_pub, "pw", 2, &cheap,
                                          NULL, &kf, &kf_len),
                     0);
    assert_int_equal(cairn_escrow_open(kf, kf_len, "pw", 2, bob_pub, priv), 0);
    assert_memory_equal(priv, bob_priv, 32);
    free(kf);
    assert_int_equal(cairn_keyfile_create(alice_priv, bob_pub, "pw", 2, &cheap,
                                          NULL, &kf, &kf_len),
                     0);
    assert_int_equal(cairn_escrow_open(kf, kf_len, "pw", 2, bob_pub, priv),
                     CAIRN_ECORRUPT);
    free(kf);

    /* Sealing to Bob's RFC key opens with Bob's RFC private key. */
    assert_int_equal(cairn_seal(bob_pub, msg, sizeof(msg), &box, &box_len), 0);
    assert_int_equal(
        cairn_unseal(bob_pub, bob_priv, box, box_len, &out, &out_len), 0);
    assert_memory_equal(out, msg, sizeof(msg));
    free(out);
    free(box);
}

static void test_wrong_key(void **state)
{
    uint8_t pub[32], priv[32], pub2[32], priv2[32], *box, *out;
    size_t box_len, out_len;

    (void)state;
    assert_int_equal(cairn_x25519_keypair(pub, priv), 0);
    assert_int_equal(cairn_x25519_keypair(pub2, priv2), 0);
    assert_int_equal(cairn_seal(pub, "secret", 6, &box, &box_len), 0);
    /* Another private key. */
    assert_int_equal(cairn_unseal(pub, priv2, box, box_len, &out, &out_len),
                     CAIRN_ECORRUPT);
    /* The right private key, the wrong public key (salt differs). */
    assert_int_equal(cairn_unseal(pub2, priv, box, box_len, &out, &out_len),
                     CAIRN_ECORRUPT);
    /* Another key pair entirely. */
    assert_int_equal(cairn_unseal(pub2, priv2, box, box_len, &out, &out_len),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len), 0);
    free(out);
    free(box);
}

static void test_truncated(void **state)
{
    uint8_t pub[32], priv[32], msg[100], *box, *copy, *out = NULL;
    size_t i, box_len, out_len;

    (void)state;
    fill(msg, sizeof(msg), 7);
    assert_int_equal(cairn_x25519_keypair(pub, priv), 0);
    assert_int_equal(cairn_seal(pub, msg, sizeof(msg), &box, &box_len), 0);
    for (i = 0; i < box_len; i++) {
        /* Its own allocation, so that ASan sees any overread. */
        assert_non_null(copy = malloc(i + 1));
        memcpy(copy, box, i);
        assert_int_equal(cairn_unseal(pub, priv, copy, i, &out, &out_len),
                         CAIRN_ECORRUPT);
        assert_null(out);
        free(copy);
    }
    /* Trailing bytes are damage too. */
    assert_non_null(copy = malloc(box_len + 1));
    memcpy(copy, box, box_len);
    copy[box_len] = 0;
    assert_int_equal(cairn_unseal(pub, priv, copy, box_len + 1, &out, &out_len),
                     CAIRN_ECORRUPT);
    free(copy);
    assert_int_equal(cairn_unseal(pub, priv, NULL, 0, &out, &out_len),
                     CAIRN_ECORRUPT);
    free(box);
}

static void test_flipped(void **state)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    uint8_t pub[32], priv[32], msg[40], *box, *out = NULL;
    size_t i, m, box_len, out_len;
    int rc;

    (void)state;
    fill(msg, sizeof(msg), 3);
    assert_int_equal(cairn_x25519_keypair(pub, priv), 0);
    assert_int_equal(cairn_seal(pub, msg, sizeof(msg), &box, &box_len), 0);
    for (i = 0; i < box_len; i++) {
        for (m = 0; m < sizeof(masks); m++) {
            box[i] ^= masks[m];
            rc = cairn_unseal(pub, priv, box, box_len, &out, &out_len);
            if (i == 4 && box[4] > 1)
                assert_int_equal(rc, CAIRN_EVERSION);
            else
                assert_int_equal(rc, CAIRN_ECORRUPT);
            assert_null(out);
            box[i] ^= masks[m];
        }
    }
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len), 0);
    assert_memory_equal(out, msg, sizeof(msg));
    free(out);

    /* Version 0 never existed; 2 is from the future. */
    box[4] = 0;
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len),
                     CAIRN_ECORRUPT);
    box[4] = 2;
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len),
                     CAIRN_EVERSION);
    box[4] = 1;
    /* An ephemeral key of small order (zero): the shared secret would be
     * zero, which X25519 refuses. */
    memset(box + 8, 0, 32);
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len),
                     CAIRN_ECORRUPT);
    free(box);
}

static void test_escrow(void **state)
{
    uint8_t pub[32], pub2[32], priv[32], priv2[32], *w, *w2, *box, *out;
    size_t w_len, w2_len, box_len, out_len;
    struct cairn_keyfile_info info;

    (void)state;
    assert_int_equal(
        cairn_escrow_create("escrow pass", 11, &cheap, pub, &w, &w_len), 0);
    assert_int_equal(cairn_keyfile_info(w, w_len, &info), 0);
    assert_int_equal(info.kdf.log2_n, 10);
    /* The private key never appears in the clear in the file. */
    assert_int_equal(cairn_escrow_open(w, w_len, "escrow pass", 11, pub, priv),
                     0);
    assert_null(memmem(w, w_len, priv, 32));

    /* What is sealed to the public half opens with the unwrapped key. */
    assert_int_equal(cairn_seal(pub, "archive key", 11, &box, &box_len), 0);
    assert_int_equal(cairn_unseal(pub, priv, box, box_len, &out, &out_len), 0);
    assert_memory_equal(out, "archive key", 11);
    free(out);
    free(box);

    /* Wrong passphrase. */
    memset(priv2, 0xee, 32);
    assert_int_equal(cairn_escrow_open(w, w_len, "escrow pasS", 11, pub, priv2),
                     CAIRN_EAUTH);
    assert_int_equal(cairn_escrow_open(w, w_len, "", 0, pub, priv2),
                     CAIRN_EAUTH);
    /* Another escrow's public key. */
    assert_int_equal(
        cairn_escrow_create("escrow pass", 11, &cheap, pub2, &w2, &w2_len), 0);
    assert_memory_not_equal(pub, pub2, 32);
    assert_int_equal(
        cairn_escrow_open(w, w_len, "escrow pass", 11, pub2, priv2),
        CAIRN_ECORRUPT);
    assert_int_equal(
        cairn_escrow_open(w2, w2_len, "escrow pass", 11, pub, priv2),
        CAIRN_ECORRUPT);
    /* Nothing was written on failure. */
    {
        uint8_t ee[32];

        memset(ee, 0xee, 32);
        assert_memory_equal(priv2, ee, 32);
    }
    /* Damage and truncation of the wrapped key. */
    w[w_len - 1] ^= 1;
    assert_int_equal(cairn_escrow_open(w, w_len, "escrow pass", 11, pub, priv2),
                     CAIRN_EAUTH);
    w[w_len - 1] ^= 1;
    assert_int_equal(
        cairn_escrow_open(w, w_len - 1, "escrow pass", 11, pub, priv2),
        CAIRN_ECORRUPT);
    /* Bad scrypt parameters. */
    {
        static const struct cairn_kdf_params bad = {9, 1, 1};
        uint8_t *w3 = NULL;
        size_t w3_len;

        assert_int_equal(cairn_escrow_create("p", 1, &bad, pub2, &w3, &w3_len),
                         CAIRN_EINVAL);
        assert_null(w3);
    }
    cairn_wipe(priv, sizeof(priv));
    free(w);
    free(w2);
}

/* Seed inputs for fuzz/fuzz_seal.c (sealed to Bob's RFC 7748 key). */
static void test_write_corpus(void **state)
{
    static const size_t sizes[] = {0, 32, 200};
    const char *root = getenv("CAIRN_WRITE_CORPUS");
    char dir[4096], path[4200];
    uint8_t msg[200], *box;
    size_t i, box_len;
    FILE *f;

    (void)state;
    if (root == NULL)
        skip();
    snprintf(dir, sizeof(dir), "%s/seal", root);
    mkdir(dir, 0777);
    for (i = 0; i < 4; i++) {
        if (i < 3) {
            fill(msg, sizes[i], (unsigned)i);
            assert_int_equal(cairn_seal(bob_pub, msg, sizes[i], &box, &box_len),
                             0);
        } else {
            /* Sealed to Alice: never opens under the fuzzer's key. */
            assert_int_equal(cairn_seal(alice_pub, "alice", 5, &box, &box_len),
                             0);
        }
        snprintf(path, sizeof(path), "%s/seal-%zu", dir, i);
        assert_non_null(f = fopen(path, "wb"));
        assert_int_equal(fwrite(box, 1, box_len, f), box_len);
        assert_int_equal(fclose(f), 0);
        free(box);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_x25519_known_answer),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_flipped),
        cmocka_unit_test(test_escrow),
        cmocka_unit_test(test_write_corpus),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
