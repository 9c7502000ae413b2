/*
 * seal.c - sealing a secret to an X25519 public key (the organisation's
 * escrow key), and the escrow key pair.
 *
 * Sealed box, version 1 (cairn/seal.h); integers little-endian:
 *
 *   offset  size  field
 *        0     4  magic "CRNX"
 *        4     1  version (1)
 *        5     3  reserved, zero
 *        8    32  ephemeral X25519 public key
 *       40    12  nonce    random
 *       52     n  ciphertext
 *     52+n    16  tag
 *
 *   shared = X25519(ephemeral private, recipient public)
 *          = X25519(recipient private, ephemeral public)
 *   key    = HKDF-SHA-256(ikm = shared, salt = ephemeral public ||
 *                         recipient public, info = "cairn/v1/seal")
 *   ciphertext | tag = AES-256-GCM(key, nonce, ad = bytes 0..40)
 *
 * A fresh ephemeral key pair per box means the same message sealed twice
 * gives unrelated boxes, and the key is never reused (so is the random
 * nonce, which needs no care).  Binding both public keys into the salt
 * ties a box to its recipient: the same box cannot be re-targeted.
 *
 * A wrong key and a damaged box cannot be told apart: both are
 * CAIRN_ECORRUPT.  So is an ephemeral key of small order (the X25519
 * result is all zero, which OpenSSL refuses).
 *
 * The escrow private key file is a key file (keyfile.c) holding the X25519
 * private key as "archive key" and the public key as "archive id", so
 * opening it checks the passphrase (CAIRN_EAUTH) and that the key pair is
 * the expected one (CAIRN_ECORRUPT).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"

#define SEAL_MAGIC "CRNX"
#define SEAL_VERSION 1
#define SEAL_INFO "cairn/v1/seal"
/* magic | version | reserved | ephemeral public: the associated data. */
#define SEAL_HEAD_LEN (8 + CAIRN_X25519_LEN)
#define ESCROW_LABEL "cairn escrow"

/* The public key of the X25519 private key priv. */
static int x25519_public(const uint8_t priv[CAIRN_X25519_LEN],
                         uint8_t out_public[CAIRN_X25519_LEN])
{
    EVP_PKEY *pkey;
    size_t len = CAIRN_X25519_LEN;
    int rc = CAIRN_ECRYPTO;

    if ((pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv,
                                             CAIRN_X25519_LEN)) == NULL)
        goto err0;
    if (EVP_PKEY_get_raw_public_key(pkey, out_public, &len) != 1 ||
        len != CAIRN_X25519_LEN)
        goto err1;

    /* Success! */
    rc = 0;

err1:
    EVP_PKEY_free(pkey);
err0:
    return rc;
}

/*
 * X25519(priv, peer) into out.  CAIRN_ECORRUPT if OpenSSL refuses the
 * derivation (peer of small order: an all-zero result), CAIRN_ECRYPTO if it
 * cannot set the keys up.
 */
static int x25519_shared(const uint8_t priv[CAIRN_X25519_LEN],
                         const uint8_t peer[CAIRN_X25519_LEN],
                         uint8_t out[CAIRN_X25519_LEN])
{
    EVP_PKEY *pkey, *ppeer;
    EVP_PKEY_CTX *ctx;
    size_t len = CAIRN_X25519_LEN;
    int rc = CAIRN_ECRYPTO;

    if ((pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv,
                                             CAIRN_X25519_LEN)) == NULL)
        goto err0;
    if ((ppeer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer,
                                             CAIRN_X25519_LEN)) == NULL)
        goto err1;
    if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL)
        goto err2;
    if (EVP_PKEY_derive_init(ctx) != 1)
        goto err3;
    if (EVP_PKEY_derive_set_peer(ctx, ppeer) != 1 ||
        EVP_PKEY_derive(ctx, out, &len) != 1 || len != CAIRN_X25519_LEN) {
        cairn_wipe(out, CAIRN_X25519_LEN);
        rc = CAIRN_ECORRUPT;
        goto err3;
    }

    /* Success! */
    rc = 0;

err3:
    EVP_PKEY_CTX_free(ctx);
err2:
    EVP_PKEY_free(ppeer);
err1:
    EVP_PKEY_free(pkey);
err0:
    return rc;
}

/* The AES-256-GCM key of a box from its shared secret and both public
 * keys. */
static int seal_key(const uint8_t shared[CAIRN_X25519_LEN],
                    const uint8_t eph_public[CAIRN_X25519_LEN],
                    const uint8_t recipient_public[CAIRN_X25519_LEN],
                    uint8_t out[CAIRN_KEY_LEN])
{
    uint8_t salt[2 * CAIRN_X25519_LEN];

    memcpy(salt, eph_public, CAIRN_X25519_LEN);
    memcpy(salt + CAIRN_X25519_LEN, recipient_public, CAIRN_X25519_LEN);
    return cairn_hkdf(shared, CAIRN_X25519_LEN, salt, sizeof(salt), SEAL_INFO,
                      out, CAIRN_KEY_LEN);
}

/*
 * Make a fresh X25519 key pair from the OS CSPRNG into out_public and
 * out_private (the caller wipes the private key when done).  CAIRN_ECRYPTO
 * if OpenSSL fails.  Thread safe.
 */
int cairn_x25519_keypair(uint8_t out_public[CAIRN_X25519_LEN],
                         uint8_t out_private[CAIRN_X25519_LEN])
{
    int rc;

    /* Any 32 bytes are a private key: X25519 clamps them itself. */
    if ((rc = cairn_random(out_private, CAIRN_X25519_LEN)) != 0)
        goto err0;
    if ((rc = x25519_public(out_private, out_public)) != 0)
        goto err1;

    /* Success! */
    return 0;

err1:
    cairn_wipe(out_private, CAIRN_X25519_LEN);
err0:
    return rc;
}

/*
 * Seal msg[0..len) to recipient_public: *out (malloc'ed, the caller frees
 * it) receives len + CAIRN_SEAL_OVERHEAD bytes, *out_len their count.
 * CAIRN_EINVAL for a NULL msg with len > 0, CAIRN_ERANGE if the box size
 * overflows, CAIRN_ECORRUPT for a recipient key of small order,
 * CAIRN_ENOMEM, CAIRN_ECRYPTO.  Thread safe.
 */
int cairn_seal(const uint8_t recipient_public[CAIRN_X25519_LEN],
               const void *msg, size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t eph_public[CAIRN_X25519_LEN], eph_private[CAIRN_X25519_LEN];
    uint8_t shared[CAIRN_X25519_LEN], key[CAIRN_KEY_LEN];
    struct cairn_aead *aead;
    uint8_t *box;
    size_t box_len;
    int rc;

    if (msg == NULL && len > 0) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (len > SIZE_MAX - CAIRN_SEAL_OVERHEAD) {
        rc = CAIRN_ERANGE;
        goto err0;
    }
    box_len = len + CAIRN_SEAL_OVERHEAD;

    if ((rc = cairn_x25519_keypair(eph_public, eph_private)) != 0)
        goto err0;
    if ((rc = x25519_shared(eph_private, recipient_public, shared)) != 0)
        goto err1;
    if ((rc = seal_key(shared, eph_public, recipient_public, key)) != 0)
        goto err2;
    if ((aead = cairn_aead_new(key)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err3;
    }
    if ((box = malloc(box_len)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err4;
    }
    memcpy(box, SEAL_MAGIC, 4);
    box[4] = SEAL_VERSION;
    box[5] = box[6] = box[7] = 0;
    memcpy(box + 8, eph_public, CAIRN_X25519_LEN);
    if ((rc = cairn_aead_seal(aead, box, SEAL_HEAD_LEN, msg, len, NULL, 0,
                              box + SEAL_HEAD_LEN)) != 0) {
        free(box);
        goto err4;
    }
    *out = box;
    *out_len = box_len;

    /* Success! */
    rc = 0;

err4:
    cairn_aead_free(aead);
err3:
    cairn_wipe(key, sizeof(key));
err2:
    cairn_wipe(shared, sizeof(shared));
err1:
    cairn_wipe(eph_private, sizeof(eph_private));
err0:
    return rc;
}

/*
 * Open the sealed box box[0..box_len) with the key pair (recipient_public,
 * recipient_private): *out (malloc'ed; the caller wipes and frees it)
 * receives the message, *out_len its length.  CAIRN_ECORRUPT if the box is
 * malformed or does not authenticate under this key pair, CAIRN_EVERSION
 * for a version newer than 1, CAIRN_ENOMEM, CAIRN_ECRYPTO.  Nothing is
 * written to *out on failure.  Thread safe.
 */
int cairn_unseal(const uint8_t recipient_public[CAIRN_X25519_LEN],
                 const uint8_t recipient_private[CAIRN_X25519_LEN],
                 const uint8_t *box, size_t box_len, uint8_t **out,
                 size_t *out_len)
{
    uint8_t shared[CAIRN_X25519_LEN], key[CAIRN_KEY_LEN];
    struct cairn_aead *aead;
    uint8_t *msg;
    size_t len;
    int rc;

    /* Structure first: no cryptography on what cannot be a box. */
    if (box == NULL || box_len < CAIRN_SEAL_OVERHEAD ||
        memcmp(box, SEAL_MAGIC, 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (box[4] != SEAL_VERSION) {
        rc = (box[4] > SEAL_VERSION) ? CAIRN_EVERSION : CAIRN_ECORRUPT;
        goto err0;
    }
    if ((box[5] | box[6] | box[7]) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    len = box_len - CAIRN_SEAL_OVERHEAD;

    if ((rc = x25519_shared(recipient_private, box + 8, shared)) != 0)
        goto err0;
    if ((rc = seal_key(shared, box + 8, recipient_public, key)) != 0)
        goto err1;
    if ((aead = cairn_aead_new(key)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    /* One byte at least, so that an empty message is not malloc(0). */
    if ((msg = malloc(len + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err3;
    }
    if ((rc = cairn_aead_open(aead, box, SEAL_HEAD_LEN, box + SEAL_HEAD_LEN,
                              box_len - SEAL_HEAD_LEN, msg)) != 0) {
        cairn_wipe(msg, len);
        free(msg);
        goto err3;
    }
    *out = msg;
    *out_len = len;

    /* Success! */
    rc = 0;

err3:
    cairn_aead_free(aead);
err2:
    cairn_wipe(key, sizeof(key));
err1:
    cairn_wipe(shared, sizeof(shared));
err0:
    return rc;
}

/*
 * Make an escrow key pair: the public key goes to out_public, the private
 * key, wrapped under pass[0..passlen) with scrypt parameters kdf (NULL:
 * the defaults) as a key file, to *out_wrapped (malloc'ed, the caller
 * frees it) and *out_wrapped_len.  The private key itself never leaves
 * this function.  CAIRN_EINVAL for bad kdf parameters, CAIRN_ENOMEM,
 * CAIRN_ECRYPTO.  Thread safe.
 */
int cairn_escrow_create(const char *pass, size_t passlen,
                        const struct cairn_kdf_params *kdf,
                        uint8_t out_public[CAIRN_X25519_LEN],
                        uint8_t **out_wrapped, size_t *out_wrapped_len)
{
    uint8_t pub[CAIRN_X25519_LEN], priv[CAIRN_X25519_LEN];
    int rc;

    if ((rc = cairn_x25519_keypair(pub, priv)) != 0)
        goto err0;
    if ((rc = cairn_keyfile_create(priv, pub, pass, passlen, kdf, ESCROW_LABEL,
                                   out_wrapped, out_wrapped_len)) != 0)
        goto err1;
    memcpy(out_public, pub, CAIRN_X25519_LEN);

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(priv, sizeof(priv));
err0:
    return rc;
}

/*
 * Unwrap the escrow private key wrapped[0..wrapped_len) with
 * pass[0..passlen) into out_private (written only on success; the caller
 * wipes it).  CAIRN_EAUTH for a wrong passphrase, CAIRN_ECORRUPT if the
 * file is malformed or the key pair it holds is not public_key's (the
 * stored public key differs, or the private key does not derive it),
 * CAIRN_EVERSION, CAIRN_ENOMEM, CAIRN_ECRYPTO.  Thread safe.
 */
int cairn_escrow_open(const uint8_t *wrapped, size_t wrapped_len,
                      const char *pass, size_t passlen,
                      const uint8_t public_key[CAIRN_X25519_LEN],
                      uint8_t out_private[CAIRN_X25519_LEN])
{
    uint8_t priv[CAIRN_X25519_LEN], stored[CAIRN_X25519_LEN];
    uint8_t derived[CAIRN_X25519_LEN];
    int rc;

    if ((rc = cairn_keyfile_open(wrapped, wrapped_len, pass, passlen, priv,
                                 stored)) != 0)
        goto err0;
    if (!cairn_ct_equal(stored, public_key, CAIRN_X25519_LEN)) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    if ((rc = x25519_public(priv, derived)) != 0)
        goto err1;
    if (!cairn_ct_equal(derived, public_key, CAIRN_X25519_LEN)) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    memcpy(out_private, priv, CAIRN_X25519_LEN);

    /* Success! */
    rc = 0;

err1:
    cairn_wipe(priv, sizeof(priv));
err0:
    return rc;
}
