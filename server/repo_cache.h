/*
 * repo_cache.h - device archives kept open between the browse, search and
 * download requests of a session.
 *
 * Opening an archive reads and checks its whole index: a few megabytes
 * for a small archive, tens or hundreds for a large one, on every click
 * in the console.  An archive opened with a session's key is kept open
 * for that session and device while it is used: at most REPO_CACHE_MAX
 * at once (the least recently used goes first) and at most
 * REPO_CACHE_IDLE_SECS unused.  The keys derived in an open archive live
 * no longer than the key they come from: every use passes the key the
 * keyring holds now (an archive opened with another key is opened
 * afresh), and a sweep at every use closes the archives whose session no
 * longer holds its key (logout, expiry, an unlock that ran out).
 *
 * Before each use the archive's index objects are listed (one directory
 * read): when one was added or removed (a backup since), the archive is
 * opened afresh.
 *
 * Per process, like the keyring.  Every function is thread safe; one open
 * archive may serve several requests at once (readers only).
 */
#ifndef CAIRN_SRV_REPO_CACHE_H
#define CAIRN_SRV_REPO_CACHE_H

#include <stdint.h>

#include "cairn/repo.h"
#include "keyring.h"

#define REPO_CACHE_MAX 4
#define REPO_CACHE_IDLE_SECS 120

struct srv;
struct cat_device;

/*
 * The archive of device d opened with key (held for session_hash), its
 * index loaded: kept from an earlier request when still current, else
 * opened now.  Release *out with repo_cache_release.  0, CAIRN_ENOENT (no
 * archive for the device), or the error opening it.
 */
int repo_cache_open(struct srv *s, const char *session_hash,
                    const struct cat_device *d,
                    const uint8_t key[KEYRING_KEY_LEN],
                    struct cairn_repo **out);

/* Done with an archive from repo_cache_open.  NULL is fine. */
void repo_cache_release(struct cairn_repo *r);

/* Close the archives no request is using that are idle too long or whose
 * session no longer holds the key.  Every repo_cache_open does this;
 * cairnd also does it every minute, so an ended session's archive does not
 * wait for the next request. */
void repo_cache_sweep(void);

/* Close every archive no request is using (cairnd, once it has stopped
 * serving). */
void repo_cache_clear(void);

#endif
