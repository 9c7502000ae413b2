/*
 * auth.h - the server's authentication primitives: password hashes, TOTP,
 * recovery codes, tokens, login throttling, terminal QR codes.  Pure
 * functions over their inputs (no catalog, no I/O but randomness), so
 * they are tested alone.  Secrets are wiped after use and compared in
 * constant time; none is ever logged.
 */
#ifndef CAIRN_SRV_AUTH_H
#define CAIRN_SRV_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/crypto.h"

/*
 * Password hashes, stored as text:
 *   "scrypt$<log2_n>$<r>$<p>$<salt, base64>$<32-byte hash, base64>"
 * Parameters are per hash, so they can be raised later.  kdf NULL: the
 * defaults (log2_n 15, r 8, p 1).  *out malloc'ed.
 */
int srv_password_hash(const char *pw, size_t len,
                      const struct cairn_kdf_params *kdf, char **out);
/* 0 if pw matches stored, CAIRN_EAUTH if not, CAIRN_ECORRUPT if stored is
 * malformed. */
int srv_password_verify(const char *pw, size_t len, const char *stored);
/* Does stored use weaker parameters than kdf (rehash at next login)? */
int srv_password_needs_rehash(const char *stored,
                              const struct cairn_kdf_params *kdf);

/*
 * TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps) with liboath.
 * Secrets are 20 random bytes, written as base32 without padding (32
 * characters).
 */
#define SRV_TOTP_SECRET_LEN 32
int srv_totp_secret_new(char out[SRV_TOTP_SECRET_LEN + 1]);
/* "otpauth://totp/<issuer>:<account>?secret=...&issuer=...&algorithm=SHA1
 *  &digits=6&period=30", percent-encoded.  *out malloc'ed. */
int srv_totp_uri(const char *issuer, const char *account,
                 const char *secret, char **out);
/*
 * Check a code at time now (seconds) within ±1 step.  A code whose step is
 * <= last_step (the last accepted) is refused: each code works once.  On
 * success *out_step is its step, to store as the new last_step.  0, or
 * CAIRN_EAUTH (wrong or replayed), CAIRN_EINVAL (not 6 digits).
 */
int srv_totp_verify(const char *secret, const char *code, int64_t now,
                    int64_t last_step, int64_t *out_step);

/*
 * Recovery codes: n codes like "k7f3-9x2m-p4qa" (base32 alphabet, 60 bits
 * of entropy), shown once; stored as srv_recovery_hash (SHA-256 hex of the
 * code without dashes, lowercased), so "K7F3 9X2M P4QA" is the same code.
 * *out_codes: n malloc'ed strings in a malloc'ed array.
 */
int srv_recovery_codes_new(int n, char ***out_codes);
void srv_recovery_codes_free(char **codes, int n);
int srv_recovery_hash(const char *code, char out_hex[65]);

/* Tokens: prefix + base64url of 32 random bytes (no padding); stored only
 * as srv_token_hash (SHA-256 hex). */
#define SRV_TOKEN_MAX 80
int srv_token_new(const char *prefix, char out[SRV_TOKEN_MAX]);
void srv_token_hash(const char *token, char out_hex[65]);

/*
 * Login throttling: after slow_after failures each further try must wait
 * 2^(failures - slow_after) seconds (at most max_delay) after the last
 * failure; after lock_after failures the account (or address) is locked
 * for lock_secs.  Returns the seconds to wait before the next try is
 * allowed at time now (0: allowed), and sets *out_locked when locked.
 */
struct srv_lockout {
    int slow_after; /* default 5 */
    int lock_after; /* default 10 */
    int lock_secs;  /* default 900 */
    int max_delay;  /* default 60 */
};
int64_t srv_lockout_wait(const struct srv_lockout *p, int failures,
                         int64_t last_failure, int64_t now, int *out_locked);

/* Render text as a QR code for a UTF-8 terminal (half blocks, quiet zone),
 * with libqrencode.  *out malloc'ed. */
int srv_qr_terminal(const char *text, char **out);

/* Constant-time comparison of two NUL-terminated strings. */
int srv_str_equal(const char *a, const char *b);

#endif
