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
#include "srv.h"

#define LOGIN_MAX_DELAY 60

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

/* POST /api/v1/login {"username", "password"} */
static int login(struct http_req *r)
{
    static const char *const keys[] = {"username", "password", NULL};
    struct srv *s = http_srv(r);
    const char *addr = http_client_addr(r);
    struct cat_user u;
    struct cat_session ses;
    struct srv_lockout lp;
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
        srv_audit(s, known ? u.id : 0, NULL, addr, "login_failed", username,
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
    if (user_reset(s, &u) != 0 || cat_addr_reset(s->cat, addr) != 0) {
        http_respond_error(r, 500, "server_error", "the catalog failed");
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
    if (cat_session_add(s->cat, &ses) != 0) {
        http_respond_error(r, 500, "server_error", "the catalog failed");
        goto wipe;
    }
    srv_audit(s, u.id, NULL, addr, "login", u.username, "{\"stage\":\"%s\"}",
              "password");
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
    if (cat_session_set_full(s->cat, a->session_hash) != 0) {
        http_respond_error(r, 500, "server_error", "the catalog failed");
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

const struct http_route api_auth_routes[] = {
    {"POST", "/api/v1/login", HTTP_PUBLIC, 4096, login, NULL},
    {"POST", "/api/v1/login/totp", HTTP_PARTIAL, 1024, login_totp, NULL},
    {"POST", "/api/v1/logout", HTTP_PARTIAL, 1024, logout, NULL},
    {"GET", "/api/v1/me", HTTP_USER, 0, me, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
