/*
 * api_auth.c - the two-step login (docs/API.md, "Login"): password, then a
 * TOTP code or a recovery code; logout; who am I.
 *
 * Throttling is kept per account (the user row: failures, last_failure,
 * locked_until) and per client address (cat_addr_*), both judged by
 * srv_lockout_wait with the config's settings.  Unknown users, disabled
 * users and wrong passwords all get the same 401, and an unknown user still
 * costs one password hash, so neither the answer nor its timing tells
 * whether an account exists.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/crypto.h"
#include "cairn/err.h"

#include "api.h"
#include "auth.h"
#include "catalog.h"
#include "http.h"
#include "keyring.h"
#include "srv.h"

#define LOGIN_MAX_DELAY 60
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

/*
 * A stored hash of a random password with the default parameters, verified
 * against when the username is unknown so that the work (and time) is the
 * same as for a real account.
 */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char *dummy_hash;

static void dummy_make(void)
{
    char pw[SRV_TOKEN_MAX];

    if (srv_token_new("", pw) != 0)
        return;
    if (srv_password_hash(pw, strlen(pw), NULL, &dummy_hash) != 0)
        dummy_hash = NULL;
    cairn_wipe(pw, sizeof(pw));
}

static void lockout_params(const struct srv *s, struct srv_lockout *p)
{
    p->slow_after = s->cfg.lockout_slow_after;
    p->lock_after = s->cfg.lockout_lock_after;
    p->lock_secs = s->cfg.lockout_lock_secs;
    p->max_delay = LOGIN_MAX_DELAY;
}

/* Answer 429 or 423 with Retry-After. */
static int respond_wait(struct http_req *r, int64_t wait, int locked,
                        const char *who)
{
    char v[32];

    if (wait < 1)
        wait = 1;
    snprintf(v, sizeof(v), "%lld", (long long)wait);
    http_set_header(r, "Retry-After", v);
    srv_audit(http_srv(r), 0, NULL, http_client_addr(r), "login_refused", who,
              "{\"locked\":%s,\"retry_after\":%lld}",
              locked ? "true" : "false", (long long)wait);
    if (locked)
        return http_respond_error(r, 423, "locked",
                                  "%s is locked after too many failed "
                                  "logins; try again in %lld seconds or ask "
                                  "an administrator to unlock it",
                                  who, (long long)wait);
    return http_respond_error(r, 429, "too_many",
                              "too many failed logins from %s; try again "
                              "in %lld seconds",
                              who, (long long)wait);
}

/*
 * Is the account throttled now?  Returns the seconds to wait (0: go on) and
 * sets *out_locked.
 */
static int64_t user_wait(const struct srv *s, const struct cat_user *u,
                         int64_t now, int *out_locked)
{
    struct srv_lockout p;
    int64_t wait;

    lockout_params(s, &p);
    *out_locked = 0;
    if (u->locked_until > now) {
        *out_locked = 1;
        return u->locked_until - now;
    }
    wait = srv_lockout_wait(&p, u->failures, u->last_failure, now,
                            out_locked);
    return wait;
}

/* Count a failed step against the account. */
static void user_fail(struct srv *s, struct cat_user *u, int64_t now)
{
    u->failures++;
    u->last_failure = now;
    if (s->cfg.lockout_lock_after > 0 &&
        u->failures >= s->cfg.lockout_lock_after)
        u->locked_until = now + s->cfg.lockout_lock_secs;
    if (cat_user_update(s->cat, u) != 0)
        srv_log(SRV_LOG_ERROR, "cannot record a failed login of %s",
                u->username);
    atomic_fetch_add(&s->m.logins_failed, 1);
}

/* Forget past failures after a success. */
static int user_reset(struct srv *s, struct cat_user *u)
{
    if (u->failures == 0 && u->last_failure == 0 && u->locked_until == 0)
        return 0;
    u->failures = 0;
    u->last_failure = 0;
    u->locked_until = 0;
    return cat_user_update(s->cat, u);
}

/* ---- archive keys at login ---- */

struct owner_keys {
    struct srv *s;
    const char *pw;
    const char *session;
    int64_t user_id, expires;
    int opened, failed;
};

static int owner_key_one(void *arg, const struct cat_device *d)
{
    struct owner_keys *o = arg;
    struct keyring *k = keyring_process();
    uint8_t key[KEYRING_KEY_LEN];
    int rc;

    if (strcmp(d->category, "personal") != 0 || d->wrap_owner == NULL)
        return 0;
    if ((rc = keyring_open_owner(d, o->pw, key)) == 0) {
        rc = k != NULL ? keyring_put(k, o->session, o->user_id, d->id, key,
                                     o->expires)
                       : CAIRN_ENOMEM;
        cairn_wipe(key, sizeof(key));
    }
    if (rc == 0) {
        o->opened++;
    } else {
        o->failed++;
        srv_log(SRV_LOG_WARN, "the owner wrap of device %s did not open "
                "with its owner's password (%s); restoring it needs the "
                "escrow passphrase", d->id, cairn_strerror(rc));
    }
    return 0;
}

/*
 * Open the owner wraps of the user's personal devices with the password
 * just verified, into the keyring under the new session (usable once the
 * session is full: every route that uses a key needs a full session).
 */
static void owner_keys_load(struct srv *s, const struct cat_user *u,
                            const char *pw, const char *session,
                            int64_t expires, struct owner_keys *o)
{
    struct cat_device_filter f;

    memset(o, 0, sizeof(*o));
    memset(&f, 0, sizeof(f));
    o->s = s;
    o->pw = pw;
    o->session = session;
    o->user_id = u->id;
    o->expires = expires;
    f.owner_id = u->id;
    f.category = "personal";
    f.active_only = 1;
    if (cat_device_list(s->cat, &f, owner_key_one, o) != 0)
        srv_log(SRV_LOG_ERROR, "cannot list the devices of %s to open "
                "their keys", u->username);
    keyring_srv_sweep(s);
}

/* POST /api/v1/login {"username", "password"} */
static int login(struct http_req *r)
{
    static const char *const keys[] = {"username", "password", NULL};
    struct srv *s = http_srv(r);
    const char *addr = http_client_addr(r);
    struct cat_user u;
    struct cat_session ses;
    struct srv_lockout lp;
    struct owner_keys ok_keys;
    char token[SRV_TOKEN_MAX], csrf[SRV_TOKEN_MAX], cookie[160];
    const char *username, *pw;
    json_t *body, *res;
    int64_t now = srv_now(), last, wait;
    int afail, locked, rc, known, ok;

    memset(&u, 0, sizeof(u));
    memset(&ses, 0, sizeof(ses));
    /* Made at the first login of any kind, so that no unknown username
     * pays for it (and stands out by its timing). */
    pthread_once(&dummy_once, dummy_make);
    if (addr == NULL)
        addr = "";
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    username = json_string_value(json_object_get(body, "username"));
    pw = json_string_value(json_object_get(body, "password"));
    if (username == NULL || pw == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "username and password must be strings");
        goto done;
    }

    /* The client address first: it may not even try. */
    lockout_params(s, &lp);
    if (cat_addr_get(s->cat, addr, &afail, &last) != 0) {
        afail = 0;
        last = 0;
    }
    if ((wait = srv_lockout_wait(&lp, afail, last, now, &locked)) > 0) {
        respond_wait(r, wait, locked, "this address");
        goto done;
    }

    rc = cat_user_get(s->cat, username, &u);
    if (rc != 0 && rc != CAIRN_ENOENT) {
        http_respond_error(r, 500, "server_error", "the catalog failed");
        goto done;
    }
    known = (rc == 0);
    if (known && (wait = user_wait(s, &u, now, &locked)) > 0) {
        respond_wait(r, wait, locked, "this account");
        goto done;
    }

    /* Always one password hash, known user or not. */
    if (known) {
        ok = srv_password_verify(pw, strlen(pw), u.pw_hash) == 0 &&
             !u.disabled;
    } else {
        if (dummy_hash != NULL)
            (void)srv_password_verify(pw, strlen(pw), dummy_hash);
        ok = 0;
    }
    if (!ok) {
        if (known)
            user_fail(s, &u, now);
        else
            atomic_fetch_add(&s->m.logins_failed, 1);
        if (cat_addr_fail(s->cat, addr, now) != 0)
            srv_log(SRV_LOG_ERROR, "cannot record a failed login from %s",
                    addr);
        /* An unknown name is not written down: people type their
         * password into the name field. */
        srv_audit(s, known ? u.id : 0, NULL, addr, "login_failed",
                  known ? u.username : "(unknown user)",
                  "{\"known\":%s,\"disabled\":%s}", known ? "true" : "false",
                  known && u.disabled ? "true" : "false");
        http_respond_error(r, 401, "unauthenticated",
                           "wrong username or password");
        goto done;
    }

    /* Password right: raise an old hash to the current parameters. */
    if (srv_password_needs_rehash(u.pw_hash, NULL)) {
        char *h = NULL;

        if (srv_password_hash(pw, strlen(pw), NULL, &h) == 0) {
            free(u.pw_hash);
            u.pw_hash = h;
            (void)cat_user_update(s->cat, &u);
        }
    }
    if ((rc = user_reset(s, &u)) != 0 ||
        (rc = cat_addr_reset(s->cat, addr)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }

    if (srv_token_new("cs_", token) != 0 || srv_token_new("", csrf) != 0 ||
        strlen(csrf) >= sizeof(ses.csrf)) {
        http_respond_error(r, 500, "server_error", "no randomness");
        goto wipe;
    }
    srv_token_hash(token, ses.hash);
    ses.user_id = u.id;
    ses.full = 0;
    ses.cookie = 1;
    snprintf(ses.csrf, sizeof(ses.csrf), "%s", csrf);
    snprintf(ses.addr, sizeof(ses.addr), "%s", addr);
    ses.created = now;
    ses.last_seen = now;
    if ((rc = cat_session_add(s->cat, &ses)) != 0) {
        api_respond_cat_error(r, rc, "session");
        goto wipe;
    }
    owner_keys_load(s, &u, pw, ses.hash, now + s->cfg.session_max_secs,
                    &ok_keys);
    srv_audit(s, u.id, NULL, addr, "login", u.username,
              "{\"stage\":\"%s\",\"keys\":%d,\"keys_failed\":%d}",
              "password", ok_keys.opened, ok_keys.failed);
    atomic_fetch_add(&s->m.logins_ok, 1);

    snprintf(cookie, sizeof(cookie),
             "cairn_session=%s; HttpOnly; Secure; SameSite=Strict; Path=/",
             token);
    http_set_header(r, "Set-Cookie", cookie);
    res = json_pack("{s:s, s:s, s:s}", "token", token, "stage", "totp",
                    "csrf", csrf);
    if (res == NULL)
        http_respond_error(r, 500, "server_error", "out of memory");
    else
        http_respond_json(r, 200, res);
    cairn_wipe(cookie, sizeof(cookie));

wipe:
    cairn_wipe(token, sizeof(token));
    cairn_wipe(csrf, sizeof(csrf));
    cairn_wipe(&ses, sizeof(ses));
done:
    cat_user_clear(&u);
    return 0;
}

/*
 * One TOTP check and the store of its step happen under this lock, so two
 * requests racing with the same code cannot both pass (within one
 * process; several processes would need a conditional update in the
 * catalog).
 */
static pthread_mutex_t totp_mutex = PTHREAD_MUTEX_INITIALIZER;

/* POST /api/v1/login/totp {"code"} or {"recovery_code"} */
static int login_totp(struct http_req *r)
{
    static const char *const keys[] = {"code", "recovery_code", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *addr = http_client_addr(r);
    struct cat_user u;
    char rhash[65];
    const char *code, *rcode, *action;
    json_t *body, *res, *uj;
    int64_t now = srv_now(), wait, step = 0;
    int locked, rc, ok;

    memset(&u, 0, sizeof(u));
    if (addr == NULL)
        addr = "";
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    code = json_string_value(json_object_get(body, "code"));
    rcode = json_string_value(json_object_get(body, "recovery_code"));
    if ((code == NULL) == (rcode == NULL) ||
        json_object_size(body) != 1) {
        http_respond_error(r, 400, "bad_request",
                           "give either code or recovery_code, a string");
        goto done;
    }
    if (a->full) {
        http_respond_error(r, 409, "conflict",
                           "this session has passed both steps already");
        goto done;
    }
    if ((rc = cat_user_get_id(s->cat, a->user_id, &u)) != 0) {
        http_respond_error(r, 401, "unauthenticated", "no such user");
        goto done;
    }
    if (u.disabled) {
        (void)cat_session_delete(s->cat, a->session_hash);
        http_respond_error(r, 401, "unauthenticated", "the account is "
                           "disabled");
        goto done;
    }
    if ((wait = user_wait(s, &u, now, &locked)) > 0) {
        respond_wait(r, wait, locked, "this account");
        goto done;
    }

    if (code != NULL) {
        action = "totp";
        pthread_mutex_lock(&totp_mutex);
        /* Re-read under the lock: the step another request stored. */
        cat_user_clear(&u);
        if ((rc = cat_user_get_id(s->cat, a->user_id, &u)) != 0) {
            pthread_mutex_unlock(&totp_mutex);
            http_respond_error(r, 500, "server_error", "the catalog failed");
            goto done;
        }
        rc = srv_totp_verify(u.totp_secret, code, now, u.totp_last_step,
                             &step);
        if (rc == CAIRN_EINVAL) {
            pthread_mutex_unlock(&totp_mutex);
            srv_audit(s, u.id, NULL, http_client_addr(r), "totp_failed",
                      u.username, "{\"malformed\":true}");
            http_respond_error(r, 400, "bad_request",
                               "a TOTP code is 6 digits");
            goto done;
        }
        ok = (rc == 0 && u.totp_secret[0] != '\0');
        if (ok) {
            u.totp_last_step = step;
            u.failures = 0;
            u.last_failure = 0;
            u.locked_until = 0;
            rc = cat_user_update(s->cat, &u);
        }
        pthread_mutex_unlock(&totp_mutex);
        if (ok && rc != 0) {
            http_respond_error(r, 500, "server_error", "the catalog failed");
            goto done;
        }
    } else {
        action = "recovery_code";
        ok = srv_recovery_hash(rcode, rhash) == 0 &&
             cat_recovery_use(s->cat, u.id, rhash) == 0;
        cairn_wipe(rhash, sizeof(rhash));
        if (ok && user_reset(s, &u) != 0) {
            http_respond_error(r, 500, "server_error", "the catalog failed");
            goto done;
        }
    }

    if (!ok) {
        user_fail(s, &u, now);
        srv_audit(s, u.id, NULL, addr,
                  code != NULL ? "totp_failed" : "recovery_code_failed",
                  u.username, "{}");
        http_respond_error(r, 401, "unauthenticated",
                           code != NULL ? "wrong or already used TOTP code"
                                        : "wrong or already used recovery "
                                          "code");
        goto done;
    }
    if ((rc = cat_session_set_full(s->cat, a->session_hash)) != 0) {
        api_respond_cat_error(r, rc, "session");
        goto done;
    }
    if (code == NULL) {
        int left = -1;

        (void)cat_recovery_left(s->cat, u.id, &left);
        srv_audit(s, u.id, NULL, addr, action, u.username,
                  "{\"left\":%d}", left);
    } else {
        srv_audit(s, u.id, NULL, addr, action, u.username, "{}");
    }

    if ((uj = api_user_json(s, &u)) == NULL ||
        (res = json_pack("{s:s, s:o}", "stage", "full", "user", uj)) ==
            NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    http_respond_json(r, 200, res);

done:
    cat_user_clear(&u);
    return 0;
}

/* POST /api/v1/logout */
static int logout(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    int rc;

    (void)keyring_drop_session(keyring_process(), a->session_hash);
    rc = cat_session_delete(s->cat, a->session_hash);
    if (rc != 0 && rc != CAIRN_ENOENT)
        return http_respond_error(r, 500, "server_error",
                                  "the catalog failed");
    srv_audit(s, a->user_id, NULL, http_client_addr(r), "logout", "", "{}");
    http_set_header(r, "Set-Cookie",
                    "cairn_session=; HttpOnly; Secure; SameSite=Strict; "
                    "Path=/; Max-Age=0");
    return http_respond_empty(r, 204);
}

static int me_device(void *arg, const struct cat_device *d)
{
    json_t *arr = arg;

    return json_array_append_new(
               arr, json_pack("{s:s, s:s, s:s, s:s}", "id", d->id, "name",
                              d->name, "category", d->category, "state",
                              d->state)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/me */
static int me(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device_filter f;
    struct cat_user u;
    json_t *res = NULL, *devs;

    memset(&u, 0, sizeof(u));
    memset(&f, 0, sizeof(f));
    if (cat_user_get_id(s->cat, a->user_id, &u) != 0) {
        http_respond_error(r, 401, "unauthenticated", "no such user");
        goto done;
    }
    f.owner_id = u.id;
    if ((res = api_user_json(s, &u)) == NULL ||
        (devs = json_array()) == NULL ||
        json_object_set_new(res, "devices", devs) != 0) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    if (cat_device_list(s->cat, &f, me_device, devs) != 0) {
        http_respond_error(r, 500, "server_error", "the catalog failed");
        goto done;
    }
    http_respond_json(r, 200, res);
    res = NULL;

done:
    json_decref(res);
    cat_user_clear(&u);
    return 0;
}

/* ---- password change ---- */

/* One owned device's wrap, re-made under the new password. */
struct rewrap_one {
    char id[33];
    uint8_t *old_wrap, *new_wrap;
    size_t old_len, new_len;
};

struct rewrap_set {
    const char *old_pw, *new_pw;
    const char *username;
    struct rewrap_one *v;
    size_t n, cap;
    int skipped;
    int rc;
};

static int rewrap_collect(void *arg, const struct cat_device *d)
{
    struct rewrap_set *w = arg;
    struct cairn_keyfile_info info;
    struct rewrap_one *o, *nv;
    uint8_t key[KEYRING_KEY_LEN];
    char label[256];
    int rc;

    if (strcmp(d->category, "personal") != 0 || d->wrap_owner == NULL)
        return 0;
    if (keyring_open_owner(d, w->old_pw, key) != 0) {
        /* Not under the current password (made before a reset?): the
         * IT office re-makes it from escrow (POST .../rewrap). */
        w->skipped++;
        return 0;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4;

        if ((nv = realloc(w->v, nc * sizeof(*nv))) == NULL) {
            cairn_wipe(key, sizeof(key));
            return CAIRN_ENOMEM;
        }
        w->v = nv;
        w->cap = nc;
    }
    o = &w->v[w->n];
    memset(o, 0, sizeof(*o));
    memcpy(o->id, d->id, sizeof(o->id));
    /* The same scrypt parameters as the wrap it replaces. */
    if (cairn_keyfile_info(d->wrap_owner, d->wrap_owner_len, &info) != 0) {
        memset(&info, 0, sizeof(info));
        info.kdf.log2_n = CAIRN_KDF_DEFAULT_LOG2_N;
        info.kdf.r = CAIRN_KDF_DEFAULT_R;
        info.kdf.p = CAIRN_KDF_DEFAULT_P;
    }
    snprintf(label, sizeof(label), "owner %s (password changed)",
             w->username);
    rc = cairn_keyfile_create(key, d->archive_id, w->new_pw,
                              strlen(w->new_pw), &info.kdf, label,
                              &o->new_wrap, &o->new_len);
    cairn_wipe(key, sizeof(key));
    if (rc != 0)
        return rc;
    if ((o->old_wrap = malloc(d->wrap_owner_len)) == NULL) {
        free(o->new_wrap);
        return CAIRN_ENOMEM;
    }
    memcpy(o->old_wrap, d->wrap_owner, d->wrap_owner_len);
    o->old_len = d->wrap_owner_len;
    w->n++;
    return 0;
}

static void rewrap_set_free(struct rewrap_set *w)
{
    size_t i;

    for (i = 0; i < w->n; i++) {
        free(w->v[i].old_wrap);
        free(w->v[i].new_wrap);
    }
    free(w->v);
}

/*
 * POST /api/v1/me/password {"old", "new"}: verify the old password,
 * store the new one's hash, re-wrap every owned device's owner wrap under
 * the new password, and end the user's other sessions (and drop their
 * keys).  The scrypt work happens before any lock; the device rows are
 * written in one transaction, each only if its wrap is still the one
 * opened (else it is counted as skipped).
 */
static int me_password(struct http_req *r)
{
    static const char *const keys[] = {"old", "new", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *addr = http_client_addr(r);
    struct cat_device_filter f;
    struct rewrap_set w;
    struct cat_session cur;
    struct cat_user u;
    const char *oldpw, *newpw;
    char *h = NULL;
    json_t *body;
    int64_t wait;
    size_t i, done = 0;
    int rc, locked, in_tx = 0, have_cur = 0;

    memset(&u, 0, sizeof(u));
    memset(&w, 0, sizeof(w));
    memset(&f, 0, sizeof(f));
    memset(&cur, 0, sizeof(cur));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    oldpw = json_string_value(json_object_get(body, "old"));
    newpw = json_string_value(json_object_get(body, "new"));
    if (oldpw == NULL || newpw == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "old and new must be strings");
        goto done;
    }
    if (strlen(newpw) < PASSWORD_MIN || strlen(newpw) > PASSWORD_MAX) {
        http_respond_error(r, 400, "bad_request",
                           "a password has %d to %d characters",
                           PASSWORD_MIN, PASSWORD_MAX);
        goto done;
    }
    if ((rc = cat_user_get_id(s->cat, a->user_id, &u)) != 0) {
        http_respond_error(r, 401, "unauthenticated", "no such user");
        goto done;
    }
    if ((wait = user_wait(s, &u, srv_now(), &locked)) > 0) {
        respond_wait(r, wait, locked, "this account");
        goto done;
    }
    if (srv_password_verify(oldpw, strlen(oldpw), u.pw_hash) != 0) {
        user_fail(s, &u, srv_now());
        (void)cat_addr_fail(s->cat, addr ? addr : "", srv_now());
        srv_audit(s, u.id, NULL, addr, "password_change_failed",
                  u.username, "{}");
        http_respond_error(r, 403, "forbidden",
                           "the current password is wrong");
        goto done;
    }
    if (srv_password_hash(newpw, strlen(newpw), NULL, &h) != 0) {
        http_respond_error(r, 500, "server_error",
                           "cannot hash the password");
        goto done;
    }
    w.old_pw = oldpw;
    w.new_pw = newpw;
    w.username = u.username;
    f.owner_id = u.id;
    f.category = "personal";
    if ((rc = cat_device_list(s->cat, &f, rewrap_collect, &w)) != 0) {
        http_respond_error(r, 500, "server_error",
                           "cannot re-wrap the device keys: %s",
                           cairn_strerror(rc));
        goto done;
    }
    if ((rc = cat_session_get(s->cat, a->session_hash, &cur)) != 0) {
        http_respond_error(r, 401, "unauthenticated",
                           "the session has ended");
        goto done;
    }
    have_cur = 1;

    pthread_mutex_lock(&api_device_mutex);
    if ((rc = catalog_begin(s->cat)) != 0)
        goto unlock;
    in_tx = 1;
    free(u.pw_hash);
    u.pw_hash = h;
    h = NULL;
    u.failures = 0;
    u.last_failure = 0;
    u.locked_until = 0;
    if ((rc = cat_user_update(s->cat, &u)) != 0)
        goto unlock;
    for (i = 0; i < w.n; i++) {
        struct cat_device d;

        if ((rc = cat_device_get(s->cat, w.v[i].id, &d)) != 0)
            goto unlock;
        if (d.wrap_owner == NULL || d.wrap_owner_len != w.v[i].old_len ||
            memcmp(d.wrap_owner, w.v[i].old_wrap, w.v[i].old_len) != 0) {
            cat_device_clear(&d);
            w.skipped++;
            continue;
        }
        free(d.wrap_owner);
        d.wrap_owner = w.v[i].new_wrap;
        d.wrap_owner_len = w.v[i].new_len;
        w.v[i].new_wrap = NULL;
        rc = cat_device_update(s->cat, &d);
        cat_device_clear(&d);
        if (rc != 0)
            goto unlock;
        done++;
    }
    /* Every session of the user ends but this one. */
    if ((rc = cat_session_delete_user(s->cat, u.id)) != 0 &&
        rc != CAIRN_ENOENT)
        goto unlock;
    if ((rc = cat_session_add(s->cat, &cur)) != 0)
        goto unlock;
    rc = catalog_commit(s->cat);
    in_tx = 0;
unlock:
    if (in_tx)
        catalog_rollback(s->cat);
    pthread_mutex_unlock(&api_device_mutex);
    if (rc != 0) {
        http_respond_error(r, 500, "server_error",
                           "the catalog failed (%s); nothing changed",
                           cairn_strerror(rc));
        goto done;
    }
    (void)keyring_drop_user(keyring_process(), u.id, a->session_hash);
    srv_audit(s, u.id, NULL, addr, "password_change", u.username,
              "{\"rewrapped\":%zu,\"skipped\":%d,\"other_sessions\":"
              "\"revoked\"}", done, w.skipped);
    http_respond_json(r, 200,
                      json_pack("{s:I, s:i}", "rewrapped", (json_int_t)done,
                                "skipped", w.skipped));

done:
    if (h != NULL)
        free(h);
    if (have_cur)
        cairn_wipe(&cur, sizeof(cur));
    rewrap_set_free(&w);
    cat_user_clear(&u);
    return 0;
}

const struct http_route api_auth_routes[] = {
    {"POST", "/api/v1/login", HTTP_PUBLIC, 4096, login, NULL},
    {"POST", "/api/v1/login/totp", HTTP_PARTIAL, 1024, login_totp, NULL},
    {"POST", "/api/v1/logout", HTTP_PARTIAL, 1024, logout, NULL},
    {"GET", "/api/v1/me", HTTP_USER, 0, me, NULL},
    {"POST", "/api/v1/me/password", HTTP_USER, 4096, me_password, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
