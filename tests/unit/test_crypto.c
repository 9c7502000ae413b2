/*
 * test_crypto.c - known answers for SHA-256, HMAC-SHA-256, HKDF,
 * AES-256-GCM and scrypt; the key derivation; the reusable contexts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "crypto/crypto_internal.h"

/* Decode a hex literal of a test vector into a fresh allocation. */
static uint8_t *unhex(const char *hex, size_t *out_len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *p = malloc(n + 1);

    assert_non_null(p);
    assert_int_equal(strlen(hex) % 2, 0);
    assert_int_equal(cairn_hex_decode(hex, p, n), 0);
    if (out_len != NULL)
        *out_len = n;
    return p;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want)
{
    char *hex = malloc(2 * n + 1);

    assert_non_null(hex);
    cairn_hex_encode(got, n, hex);
    assert_string_equal(hex, want);
    free(hex);
}

static void test_sha256(void **state)
{
    struct cairn_sha256 *s;
    uint8_t md[32];
    const char *msg =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t i;

    (void)state;
    cairn_sha256("abc", 3, md);
    assert_hex(md, 32,
               "ba7816bf8f01cfea414140de5dae2223"
               "b00361a396177a9cb410ff61f20015ad");
    cairn_sha256("", 0, md);
    assert_hex(md, 32,
               "e3b0c44298fc1c149afbf4c8996fb924"
               "27ae41e4649b934ca495991b7852b855");

    /* Streaming, byte by byte, then reuse after final. */
    assert_non_null(s = cairn_sha256_new());
    for (i = 0; i < strlen(msg); i++)
        assert_int_equal(cairn_sha256_update(s, msg + i, 1), 0);
    assert_int_equal(cairn_sha256_final(s, md), 0);
    assert_hex(md, 32,
               "248d6a61d20638b8e5c026930c3e6039"
               "a33ce45964ff2167f6ecedd419db06c1");
    assert_int_equal(cairn_sha256_update(s, "abc", 3), 0);
    assert_int_equal(cairn_sha256_final(s, md), 0);
    assert_hex(md, 32,
               "ba7816bf8f01cfea414140de5dae2223"
               "b00361a396177a9cb410ff61f20015ad");
    cairn_sha256_free(s);
    cairn_sha256_free(NULL);
}

/* RFC 4231 cases 1 and 2.  HMAC pads short keys with zeros to the block
 * size, so a 20- or 4-byte key equals itself zero-padded to 32 bytes. */
static void test_hmac(void **state)
{
    uint8_t key[32], md[32];
    struct cairn_hmac *h;
    const char *want1 = "b0344c61d8db38535ca8afceaf0bf12b"
                        "881dc200c9833da726e9376c2e32cff7";
    const char *want2 = "5bdcc146bf60754e6a042426089575c7"
                        "5a003f089d2739839dec58b964ec3843";
    const char *msg2 = "what do ya want for nothing?";
    int i;

    (void)state;
    memset(key, 0, sizeof(key));
    memset(key, 0x0b, 20);
    assert_int_equal(cairn_hmac_sha256(key, "Hi There", 8, md), 0);
    assert_hex(md, 32, want1);
    assert_non_null(h = cairn_hmac_new(key));
    /* The reusable context gives the same answer every time. */
    for (i = 0; i < 3; i++) {
        memset(md, 0, sizeof(md));
        assert_int_equal(cairn_hmac_compute(h, "Hi There", 8, md), 0);
        assert_hex(md, 32, want1);
    }
    cairn_hmac_free(h);

    memset(key, 0, sizeof(key));
    memcpy(key, "Jefe", 4);
    assert_int_equal(cairn_hmac_sha256(key, msg2, strlen(msg2), md), 0);
    assert_hex(md, 32, want2);
    assert_non_null(h = cairn_hmac_new(key));
    assert_int_equal(cairn_hmac_compute(h, msg2, strlen(msg2), md), 0);
    assert_hex(md, 32, want2);
    /* Empty input, then the vector again: no state leaks between calls. */
    assert_int_equal(cairn_hmac_compute(h, NULL, 0, md), 0);
    assert_int_equal(cairn_hmac_compute(h, msg2, strlen(msg2), md), 0);
    assert_hex(md, 32, want2);
    cairn_hmac_free(h);
    cairn_hmac_free(NULL);
}

/* RFC 5869, test case 1. */
static void test_hkdf(void **state)
{
    uint8_t ikm[22], okm[42];
    uint8_t *salt;
    size_t saltlen;

    (void)state;
    memset(ikm, 0x0b, sizeof(ikm));
    salt = unhex("000102030405060708090a0b0c", &saltlen);
    assert_int_equal(cairn_hkdf(ikm, sizeof(ikm), salt, saltlen,
                                "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9", okm,
                                sizeof(okm)),
                     0);
    assert_hex(okm, sizeof(okm),
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4"
               "c5bf34007208d5b887185865");
    free(salt);

    assert_int_equal(cairn_hkdf(ikm, sizeof(ikm), NULL, 0, NULL, okm, 0),
                     CAIRN_EINVAL);
    assert_int_equal(
        cairn_hkdf(ikm, sizeof(ikm), NULL, 0, NULL, okm, 255 * 32 + 1),
        CAIRN_EINVAL);
}

static void test_keys_derive(void **state)
{
    struct cairn_keys k, k2;
    uint8_t master[32], aid[32], want[32], zero[32];
    struct {
        const char *info;
        const uint8_t *key;
    } purposes[] = {
        {"cairn/v1/id", k.id},           {"cairn/v1/data", k.data},
        {"cairn/v1/mac", k.mac},         {"cairn/v1/meta", k.meta},
        {"cairn/v1/chunker", k.chunker},
    };
    size_t i, j;

    (void)state;
    for (i = 0; i < 32; i++) {
        master[i] = (uint8_t)i;
        aid[i] = (uint8_t)(0x80 + i);
    }
    assert_int_equal(cairn_keys_derive(master, aid, &k), 0);
    assert_memory_equal(k.master, master, 32);
    /* Each key is HKDF(master, salt = archive id, info = its string)... */
    for (i = 0; i < 5; i++) {
        assert_int_equal(
            cairn_hkdf(master, 32, aid, 32, purposes[i].info, want, 32), 0);
        assert_memory_equal(purposes[i].key, want, 32);
        /* ... and they all differ. */
        for (j = 0; j < i; j++)
            assert_memory_not_equal(purposes[i].key, purposes[j].key, 32);
    }
    /* Pin the keys (computed independently, with Python's cryptography
     * HKDF): a changed derivation would make every archive unreadable. */
    assert_hex(k.id, 32,
               "e58327e91446fa41db70867e47dec2cf"
               "0159e0cddb4467feeb8bf4d2fd591f95");
    assert_hex(k.data, 32,
               "7dcf603c64a68c0a6cb998b7629256b5"
               "5252ff25eae4a8c8cbaf8a2c03a8516a");
    assert_hex(k.mac, 32,
               "407309788d00e0a9a37e6d4180a03834"
               "ae08246412bdb42abc530847044a4289");
    assert_hex(k.meta, 32,
               "66e80bf3f4cc8241be3777491b557fcd"
               "dc69a98e0bbd9cdc9abb6692dd3cc5f4");
    assert_hex(k.chunker, 32,
               "ef41adabaf5ab8c87b62cac9e22c4323"
               "f58008ad854fb6daf59bae4a8de27562");
    /* Deterministic; another archive id gives other keys. */
    assert_int_equal(cairn_keys_derive(master, aid, &k2), 0);
    assert_memory_equal(&k, &k2, sizeof(k));
    aid[0] ^= 1;
    assert_int_equal(cairn_keys_derive(master, aid, &k2), 0);
    assert_memory_not_equal(k.id, k2.id, 32);
    assert_memory_not_equal(k.data, k2.data, 32);

    cairn_keys_wipe(&k);
    memset(zero, 0, sizeof(zero));
    assert_memory_equal(k.master, zero, 32);
    assert_memory_equal(k.id, zero, 32);
    assert_memory_equal(k.chunker, zero, 32);
    cairn_keys_wipe(NULL);
    cairn_keys_wipe(&k2);
}

/* AES-256-GCM vector: McGrew & Viega, "The Galois/Counter Mode of
 * Operation", test cases 13-16 (the 256-bit key cases). */
struct gcm_vector {
    const char *key, *iv, *pt, *ad, *ct, *tag;
};

static const struct gcm_vector gcm_vectors[] = {
    /* 13 */
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "", "",
     "530f8afbc74536b9a963b4f1c4cb738b"},
    /* 14 */
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "00000000000000000000000000000000", "",
     "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
    /* 15 */
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
     "",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
     "b094dac5d93471bdec1a502270e3cc6c"},
    /* 16 */
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
};

static void test_aead_vectors(void **state)
{
    size_t i, split, klen, ivlen, ptlen, adlen, ctlen, taglen;
    uint8_t *key, *iv, *pt, *ad, *ct, *tag, *out, *dec, *d2;
    struct cairn_aead *a;

    (void)state;
    for (i = 0; i < sizeof(gcm_vectors) / sizeof(gcm_vectors[0]); i++) {
        const struct gcm_vector *v = &gcm_vectors[i];

        key = unhex(v->key, &klen);
        iv = unhex(v->iv, &ivlen);
        pt = unhex(v->pt, &ptlen);
        ad = unhex(v->ad, &adlen);
        ct = unhex(v->ct, &ctlen);
        tag = unhex(v->tag, &taglen);
        assert_int_equal(klen, 32);
        assert_int_equal(ivlen, 12);
        assert_int_equal(ctlen, ptlen);
        assert_int_equal(taglen, 16);
        out = malloc(ptlen + CAIRN_AEAD_OVERHEAD);
        dec = malloc(ptlen + 1);
        d2 = malloc(ptlen + 1);
        assert_non_null(out);
        assert_non_null(dec);
        assert_non_null(d2);
        assert_non_null(a = cairn_aead_new(key));

        /* Every split of the plaintext into p1 | p2 gives the vector. */
        for (split = 0; split <= ptlen; split++) {
            assert_int_equal(cairn_aead_seal_nonce(a, iv, ad, adlen, pt, split,
                                                   pt + split, ptlen - split,
                                                   out),
                             0);
            assert_memory_equal(out, iv, 12);
            if (ptlen > 0)
                assert_memory_equal(out + 12, ct, ptlen);
            assert_memory_equal(out + 12 + ptlen, tag, 16);

            memset(dec, 0xee, ptlen + 1);
            assert_int_equal(cairn_aead_open(a, ad, adlen, out,
                                             ptlen + CAIRN_AEAD_OVERHEAD, dec),
                             0);
            if (ptlen > 0)
                assert_memory_equal(dec, pt, ptlen);
            assert_int_equal(dec[ptlen], 0xee);

            /* Split destinations. */
            assert_int_equal(cairn_aead_open_split(a, ad, adlen, out,
                                                   ptlen + CAIRN_AEAD_OVERHEAD,
                                                   dec, split, d2),
                             0);
            if (split > 0)
                assert_memory_equal(dec, pt, split);
            if (ptlen > split)
                assert_memory_equal(d2, pt + split, ptlen - split);
        }
        /* A plaintext split longer than the message is refused. */
        assert_int_equal(cairn_aead_open_split(a, ad, adlen, out,
                                               ptlen + CAIRN_AEAD_OVERHEAD, dec,
                                               ptlen + 1, d2),
                         CAIRN_ECORRUPT);

        cairn_aead_free(a);
        free(d2);
        free(dec);
        free(out);
        free(tag);
        free(ct);
        free(ad);
        free(pt);
        free(iv);
        free(key);
    }
}

static void test_aead_roundtrip(void **state)
{
    uint8_t key[32], nonce1[12];
    uint8_t msg[1000], out[1000 + CAIRN_AEAD_OVERHEAD],
        out2[1000 + CAIRN_AEAD_OVERHEAD], dec[1000];
    struct cairn_aead *a, *b;
    size_t i, n = sizeof(msg), slen = sizeof(out);

    (void)state;
    assert_int_equal(cairn_random(key, sizeof(key)), 0);
    assert_int_equal(cairn_random(msg, sizeof(msg)), 0);
    assert_non_null(a = cairn_aead_new(key));

    assert_int_equal(
        cairn_aead_seal(a, "ad", 2, msg, 10, msg + 10, n - 10, out), 0);
    memcpy(nonce1, out, 12);
    /* A fresh nonce every time. */
    assert_int_equal(cairn_aead_seal(a, "ad", 2, msg, n, NULL, 0, out2), 0);
    assert_memory_not_equal(out2, nonce1, 12);
    assert_int_equal(cairn_aead_open(a, "ad", 2, out2, slen, dec), 0);
    assert_memory_equal(dec, msg, n);
    assert_int_equal(cairn_aead_open(a, "ad", 2, out, slen, dec), 0);
    assert_memory_equal(dec, msg, n);

    /* Wrong associated data, missing associated data. */
    assert_int_equal(cairn_aead_open(a, "ae", 2, out, slen, dec),
                     CAIRN_ECORRUPT);
    assert_int_equal(cairn_aead_open(a, NULL, 0, out, slen, dec),
                     CAIRN_ECORRUPT);
    /* Every flipped byte is caught, and the plaintext is not released. */
    for (i = 0; i < slen; i++) {
        out[i] ^= 0x01;
        memset(dec, 0xaa, n);
        assert_int_equal(cairn_aead_open(a, "ad", 2, out, slen, dec),
                         CAIRN_ECORRUPT);
        assert_int_equal(dec[0], 0);
        assert_int_equal(dec[n - 1], 0);
        out[i] ^= 0x01;
    }
    /* Truncations. */
    for (i = 0; i < slen; i += 7)
        assert_int_equal(cairn_aead_open(a, "ad", 2, out, i, dec),
                         CAIRN_ECORRUPT);
    /* After all those failures the context still works. */
    assert_int_equal(cairn_aead_open(a, "ad", 2, out, slen, dec), 0);
    assert_memory_equal(dec, msg, n);

    /* Another key fails. */
    key[0] ^= 1;
    assert_non_null(b = cairn_aead_new(key));
    assert_int_equal(cairn_aead_open(b, "ad", 2, out, slen, dec),
                     CAIRN_ECORRUPT);
    cairn_aead_free(b);

    /* Encryption in place of p2. */
    memcpy(out + 12 + 1, msg + 1, n - 1);
    assert_int_equal(
        cairn_aead_seal(a, "ad", 2, msg, 1, out + 12 + 1, n - 1, out), 0);
    assert_int_equal(cairn_aead_open(a, "ad", 2, out, slen, dec), 0);
    assert_memory_equal(dec, msg, n);

    /* Empty plaintext. */
    assert_int_equal(cairn_aead_seal(a, NULL, 0, NULL, 0, NULL, 0, out), 0);
    assert_int_equal(cairn_aead_open(a, NULL, 0, out, CAIRN_AEAD_OVERHEAD, dec),
                     0);
    out[CAIRN_AEAD_OVERHEAD - 1] ^= 0x80;
    assert_int_equal(cairn_aead_open(a, NULL, 0, out, CAIRN_AEAD_OVERHEAD, dec),
                     CAIRN_ECORRUPT);

    cairn_aead_free(a);
    cairn_aead_free(NULL);
}

/* RFC 7914, section 12. */
static void test_scrypt(void **state)
{
    struct cairn_kdf_params kp = {10, 8, 16};
    uint8_t out[64];

    (void)state;
    assert_int_equal(cairn_scrypt("password", 8, (const uint8_t *)"NaCl", 4,
                                  &kp, out, sizeof(out)),
                     0);
    assert_hex(
        out, 64,
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");

    kp.log2_n = 14;
    kp.r = 8;
    kp.p = 1;
    assert_int_equal(cairn_scrypt("pleaseletmein", 13,
                                  (const uint8_t *)"SodiumChloride", 14, &kp,
                                  out, sizeof(out)),
                     0);
    assert_hex(
        out, 64,
        "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
        "d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887");

    /* Out of range: refused before any work. */
    kp = (struct cairn_kdf_params){9, 8, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){23, 1, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){10, 0, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){10, 33, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){10, 1, 0};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){10, 1, 17};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    /* In range one by one, but 16 GiB of memory together. */
    kp = (struct cairn_kdf_params){22, 32, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 32), CAIRN_EINVAL);
    kp = (struct cairn_kdf_params){10, 1, 1};
    assert_int_equal(cairn_scrypt("x", 1, NULL, 0, &kp, out, 0), CAIRN_EINVAL);
    /* Empty passphrase and salt are allowed. */
    assert_int_equal(cairn_scrypt(NULL, 0, NULL, 0, &kp, out, 32), 0);
}

static void test_misc(void **state)
{
    uint8_t a[64], b[64], z[64];

    (void)state;
    memset(z, 0, sizeof(z));
    assert_int_equal(cairn_random(a, sizeof(a)), 0);
    assert_int_equal(cairn_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(cairn_random(a, 0), 0);

    assert_int_equal(cairn_ct_equal(a, a, sizeof(a)), 1);
    memcpy(b, a, sizeof(a));
    assert_int_equal(cairn_ct_equal(a, b, sizeof(a)), 1);
    b[63] ^= 0x80;
    assert_int_equal(cairn_ct_equal(a, b, sizeof(a)), 0);
    b[63] ^= 0x80;
    b[0] ^= 1;
    assert_int_equal(cairn_ct_equal(a, b, sizeof(a)), 0);
    assert_int_equal(cairn_ct_equal(a, b, 0), 1);

    cairn_wipe(a, sizeof(a));
    assert_memory_equal(a, z, sizeof(a));
    cairn_wipe(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_hkdf),
        cmocka_unit_test(test_keys_derive),
        cmocka_unit_test(test_aead_vectors),
        cmocka_unit_test(test_aead_roundtrip),
        cmocka_unit_test(test_scrypt),
        cmocka_unit_test(test_misc),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
