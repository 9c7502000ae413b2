/*
 * keyring.h - archive keys held in memory for sessions (docs/SERVER.md,
 * "Keys at restore time").
 *
 * A personal device's owner wrap is opened with the owner's password at
 * login, and an administrator's escrow unlock opens one device's key for a
 * while; either way the 32-byte archive key is kept here, per session and
 * device, until it expires, the session ends (logout, expiry, revocation)
 * or the process exits.  Keys live in one mmap'ed region that is mlock'ed
 * (when the limit allows) and kept out of core dumps; every slot is wiped
 * when it is emptied.  Nothing here logs a key.
 *
 * Per process: with several cairnd processes behind a load balancer, a
 * session's keys are in the process that did the login.
 *
 * Every function is thread safe.
 */
#ifndef CAIRN_SRV_KEYRING_H
#define CAIRN_SRV_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#define KEYRING_KEY_LEN 32
#define KEYRING_DEFAULT_CAPACITY 2048

struct srv;
struct keyring;

/*
 * Make a keyring of capacity slots (1 .. 1 << 20).  *out freed with
 * keyring_free.  0, CAIRN_EINVAL, or CAIRN_ENOMEM.
 */
int keyring_new(size_t capacity, struct keyring **out);

/* Wipe every key and free.  NULL is fine. */
void keyring_free(struct keyring *k);

/* Was the key region locked into memory (mlock)?  1 or 0. */
int keyring_is_locked(const struct keyring *k);

/*
 * Hold key for (session_hash, device_id) until expires (seconds since the
 * epoch), replacing a key held for the same pair.  user_id is the
 * session's user (for keyring_drop_user).  Slots past their expiry are
 * reused first; CAIRN_ENOSPC when every slot is taken, CAIRN_EINVAL for a
 * malformed session hash (64 hex digits) or device id (32).  The caller
 * wipes its copy of key.
 */
int keyring_put(struct keyring *k, const char *session_hash, int64_t user_id,
                const char *device_id, const uint8_t key[KEYRING_KEY_LEN],
                int64_t expires);

/*
 * Copy the key held for (session_hash, device_id) into out_key (the
 * caller wipes it) and its expiry into *out_expires (may be NULL).
 * CAIRN_ENOENT when none is held or it expired at now (then the slot is
 * wiped).
 */
int keyring_get(struct keyring *k, const char *session_hash,
                const char *device_id, int64_t now,
                uint8_t out_key[KEYRING_KEY_LEN], int64_t *out_expires);

/* Wipe every key of a session; returns how many. */
size_t keyring_drop_session(struct keyring *k, const char *session_hash);

/* Wipe every key of a user's sessions but except_session (NULL: all);
 * returns how many. */
size_t keyring_drop_user(struct keyring *k, int64_t user_id,
                         const char *except_session);

/* Wipe every key of one device (its wraps changed); returns how many. */
size_t keyring_drop_device(struct keyring *k, const char *device_id);

/*
 * Wipe the keys expired at now and those whose session alive() says has
 * ended (alive NULL: expiry only; alive returns 1 for a live session).
 * alive is called with the keyring held: it must not call back into it.
 * Returns how many were wiped.
 */
typedef int (*keyring_alive_fn)(void *arg, const char *session_hash);
size_t keyring_sweep(struct keyring *k, int64_t now, keyring_alive_fn alive,
                     void *arg);

/* Keys held now (expired ones included until swept). */
size_t keyring_count(struct keyring *k);

/*
 * The process's keyring, made on first use with KEYRING_DEFAULT_CAPACITY
 * and wiped at exit; NULL if it cannot be made.
 */
struct keyring *keyring_process(void);

/*
 * Sweep the process keyring against s's catalog and session limits, at
 * most once every 30 seconds (cheap to call on every request that uses
 * the keyring).
 */
void keyring_srv_sweep(struct srv *s);

/* ---- opening the wraps (the server's glue; keyring.c) ---- */

struct cat_device;
struct cat_user;

/*
 * Open a personal device's owner wrap (a key file under the owner's
 * password) into out_key and check it is the device's archive.
 * CAIRN_ENOENT when the device has no owner wrap, CAIRN_EAUTH for another
 * password, CAIRN_ECORRUPT when the wrap is damaged or belongs to another
 * archive.  out_key is wiped on failure; the caller wipes it after use.
 */
int keyring_open_owner(const struct cat_device *d, const char *pw,
                       uint8_t out_key[KEYRING_KEY_LEN]);

/*
 * Unwrap the organisation's escrow private key with the escrow passphrase
 * (in memory; the caller wipes out_private).  out_public receives the
 * public key.  CAIRN_EAUTH for a wrong passphrase, CAIRN_ENOENT when the
 * organisation has no escrow key, else a catalog or format error.
 */
int keyring_escrow_open(struct srv *s, const char *pass,
                        uint8_t out_public[32], uint8_t out_private[32]);

/*
 * Open a device's escrow wrap (the archive key and archive id sealed to
 * the escrow key) into out_key, checking the archive id.  CAIRN_ENOENT
 * without a wrap, CAIRN_ECORRUPT if it does not open or names another
 * archive.
 */
int keyring_unseal(const uint8_t escrow_public[32],
                   const uint8_t escrow_private[32],
                   const struct cat_device *d,
                   uint8_t out_key[KEYRING_KEY_LEN]);

/*
 * Throttling of secrets typed at restore time (the escrow passphrase, a
 * password), counted like failed logins: the account's and the address's
 * failures, with the lockout settings.  keyring_throttle_wait returns the
 * seconds to wait (0: go on) and sets *out_locked; keyring_throttle_fail
 * counts one failure against u (written to the catalog) and addr.
 */
int64_t keyring_throttle_wait(struct srv *s, const struct cat_user *u,
                              const char *addr, int *out_locked);
void keyring_throttle_fail(struct srv *s, struct cat_user *u,
                           const char *addr);

#endif
