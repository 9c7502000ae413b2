/*
 * cairn/seal.h - sealing a secret to a public key (the organisation's
 * escrow key), and the escrow key pair itself.
 *
 * Sealed box (version 1), all integers little-endian:
 *   "CRNX" | version u8 (1) | 3 zero bytes | ephemeral X25519 public [32]
 *   | nonce [12] | AES-256-GCM ciphertext | tag [16]
 * key = HKDF-SHA-256(ikm = X25519(ephemeral, recipient),
 *                    salt = ephemeral public || recipient public,
 *                    info = "cairn/v1/seal"), ad = every byte before the
 * nonce.  Anyone with the public key can seal; only the private key opens.
 *
 * Escrow private key file: the 32-byte X25519 private key wrapped under a
 * passphrase exactly like an archive key file (cairn/crypto.h key files,
 * with the public key in place of the archive id).
 */
#ifndef CAIRN_SEAL_H
#define CAIRN_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/crypto.h"

#define CAIRN_X25519_LEN 32
#define CAIRN_SEAL_OVERHEAD (8 + 32 + CAIRN_NONCE_LEN + CAIRN_TAG_LEN)

/* Make an X25519 key pair. */
int cairn_x25519_keypair(uint8_t out_public[CAIRN_X25519_LEN],
                         uint8_t out_private[CAIRN_X25519_LEN]);

/* Seal len bytes to recipient_public; *out (malloc'ed) is len +
 * CAIRN_SEAL_OVERHEAD bytes. */
int cairn_seal(const uint8_t recipient_public[CAIRN_X25519_LEN],
               const void *msg, size_t len, uint8_t **out, size_t *out_len);

/* Open a sealed box.  CAIRN_ECORRUPT if it does not authenticate under
 * this key pair (wrong key or damage), CAIRN_EVERSION for a newer version.
 * *out is malloc'ed; wipe it when done. */
int cairn_unseal(const uint8_t recipient_public[CAIRN_X25519_LEN],
                 const uint8_t recipient_private[CAIRN_X25519_LEN],
                 const uint8_t *box, size_t box_len, uint8_t **out,
                 size_t *out_len);

/* Create an escrow key pair; the private half is returned wrapped under
 * pass (*out_wrapped malloc'ed). */
int cairn_escrow_create(const char *pass, size_t passlen,
                        const struct cairn_kdf_params *kdf,
                        uint8_t out_public[CAIRN_X25519_LEN],
                        uint8_t **out_wrapped, size_t *out_wrapped_len);

/* Unwrap the escrow private key.  CAIRN_EAUTH for a wrong passphrase,
 * CAIRN_ECORRUPT if it does not belong to public. */
int cairn_escrow_open(const uint8_t *wrapped, size_t wrapped_len,
                      const char *pass, size_t passlen,
                      const uint8_t public_key[CAIRN_X25519_LEN],
                      uint8_t out_private[CAIRN_X25519_LEN]);

#endif
