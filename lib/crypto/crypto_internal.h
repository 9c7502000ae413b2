/*
 * crypto_internal.h - entry points of the crypto module that are not part
 * of the public contract: AES-GCM with a caller-chosen nonce (known-answer
 * tests only; never reuse a nonce under one key), and an open that splits
 * the plaintext between two destinations (the blob codec decrypts the
 * compression flag and the payload to different places without a copy).
 */
#ifndef CAIRN_CRYPTO_INTERNAL_H
#define CAIRN_CRYPTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/crypto.h"

/*
 * As cairn_aead_seal, but with the given nonce instead of a random one.
 * For tests with published vectors; production code must use
 * cairn_aead_seal.
 */
int cairn_aead_seal_nonce(struct cairn_aead *a,
                          const uint8_t nonce[CAIRN_NONCE_LEN], const void *ad,
                          size_t adlen, const void *p1, size_t n1,
                          const void *p2, size_t n2, uint8_t *out);

/*
 * As cairn_aead_open, but the first n1 bytes of plaintext go to out1 and the
 * remaining inlen - CAIRN_AEAD_OVERHEAD - n1 bytes to out2 (CAIRN_ECORRUPT if
 * the plaintext is shorter than n1).  Success only once the tag has been
 * verified; on any failure both destinations are zeroed.
 */
int cairn_aead_open_split(struct cairn_aead *a, const void *ad, size_t adlen,
                          const uint8_t *in, size_t inlen, uint8_t *out1,
                          size_t n1, uint8_t *out2);

#endif
