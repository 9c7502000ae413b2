/*
 * api_org.c - the organisation (docs/API.md, "Organisation"): departments
 * with their rollout waves, and people.  Admin only; every act is audited.
 * Also the small helpers the API handlers share (api.h): times, users as
 * JSON, catalog errors as answers.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/crypto.h"
#include "cairn/err.h"

#include "api.h"
#include "auth.h"
#include "catalog.h"
#include "http.h"
#include "keyring.h"
#include "srv.h"

#define RECOVERY_CODES 10
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

/* ---- shared helpers ---- */

static int digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int api_time_parse(const char *text, int64_t *out)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    const char *p = text;
    struct tm tm;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    time_t t;

    if (p == NULL)
        return CAIRN_EINVAL;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
        *p++ != '-' || digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return CAIRN_EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
        *p++ != ':' || digits(&p, 2, &sec))
        return CAIRN_EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return CAIRN_EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = (*p == '-') ? -1 : 1;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) ||
            oh > 23 || om > 59)
            return CAIRN_EINVAL;
    } else {
        return CAIRN_EINVAL;
    }
    if (*p != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return CAIRN_EINVAL;
    /* 29 February only in leap years (timegm would make it 1 March). */
    if (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
        return CAIRN_EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    if ((t = timegm(&tm)) == (time_t)-1)
        return CAIRN_EINVAL;
    /* An offset may carry the time outside what api_time_format writes
     * and this function reads back (1970 to 9999). */
    t -= sign * (oh * 3600 + om * 60);
    if (t < 0 || t > (time_t)253402300799) /* 9999-12-31T23:59:59Z */
        return CAIRN_EINVAL;
    *out = (int64_t)t;
    return 0;
}

void api_time_format(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%s", "1970-01-01T00:00:00Z");
}

json_t *api_time_json(int64_t t)
{
    char buf[32];

    if (t == 0)
        return json_null();
    api_time_format(t, buf);
    return json_string(buf);
}

json_t *api_user_json(struct srv *s, const struct cat_user *u)
{
    struct cat_dept d;
    json_t *dept;

    if (u->dept_id != 0 && cat_dept_get_id(s->cat, u->dept_id, &d) == 0)
        dept = json_string(d.name);
    else
        dept = json_null();
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:b, s:b, s:o}", "id",
                     (json_int_t)u->id, "username", u->username, "display",
                     u->display, "role", u->admin ? "admin" : "user",
                     "department", dept, "disabled", u->disabled, "locked",
                     u->locked_until > srv_now(), "created",
                     api_time_json(u->created));
}

int api_respond_cat_error(struct http_req *r, int rc, const char *what)
{
    if (rc == CAIRN_ENOENT)
        return http_respond_error(r, 404, "not_found", "no such %s", what);
    if (rc == CAIRN_EEXIST)
        return http_respond_error(r, 409, "conflict", "that %s exists "
                                  "already", what);
    if (rc == CAIRN_ENOMEM)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if (rc == CAIRN_ENOSPC)
        return http_respond_error(r, 507, "unavailable",
                                  "the server's disk is full");
    return http_respond_error(r, 500, "server_error",
                              "the catalog failed (%s)", cairn_strerror(rc));
}

/* ---- the organisation ---- */

/* GET /api/v1/org (any person, full session): its name and the escrow
 * public key that enrolment seals archive keys to. */
static int org_get(struct http_req *r)
{
    struct cat_org o;
    json_t *res;
    int rc;

    memset(&o, 0, sizeof(o));
    if ((rc = cat_org_get(http_srv(r)->cat, &o)) != 0)
        return api_respond_cat_error(r, rc, "organisation");
    res = json_pack("{s:s, s:o}", "name", o.name, "escrow_public",
                    api_b64_json(o.escrow_public, sizeof(o.escrow_public)));
    /* Administrators also get the escrow private key, wrapped under the
     * escrow passphrase they hold (never unwrapped here): with it they
     * can recover a shared device's archive key, e.g. to adopt it on a
     * replacement computer. */
    if (res != NULL && http_auth(r)->admin && o.escrow_wrapped != NULL) {
        json_object_set_new(res, "escrow_wrapped",
                            api_b64_json(o.escrow_wrapped,
                                         o.escrow_wrapped_len));
        /* What an escrow unlock on the admin's computer starts from. */
        srv_audit(http_srv(r), http_auth(r)->user_id, NULL,
                  http_client_addr(r), "escrow_wrapped_read", o.name, "{}");
    }
    cat_org_clear(&o);
    return http_respond_json(r, 200, res);
}

/* ---- departments ---- */

/* Names shown in paths and tables: 1..127 bytes, no control characters,
 * no '/'. */
static int dept_name_valid(const char *n)
{
    size_t i, len = strlen(n);

    if (len == 0 || len > 127)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f || n[i] == '/')
            return 0;
    return 1;
}

static json_t *dept_json(const struct cat_dept *d)
{
    return json_pack("{s:I, s:s, s:o, s:b}", "id", (json_int_t)d->id, "name",
                     d->name, "wave_start", api_time_json(d->wave_start),
                     "wave_started",
                     d->wave_start != 0 && d->wave_start <= srv_now());
}

/* A wave_start field: RFC 3339 or null (0).  Answers 400 itself. */
static int wave_field(struct http_req *r, json_t *v, int64_t *out)
{
    if (v == NULL || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_string(v) || api_time_parse(json_string_value(v), out) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "wave_start must be an RFC 3339 time "
                           "(2026-11-26T09:00:00Z) or null");
        return -1;
    }
    return 0;
}

static int dept_list_one(void *arg, const struct cat_dept *d)
{
    return json_array_append_new(arg, dept_json(d)) == 0 ? 0 : CAIRN_ENOMEM;
}

/* GET /api/v1/departments */
static int dept_list(struct http_req *r)
{
    json_t *arr = json_array();
    int rc;

    if (arr == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_dept_list(http_srv(r)->cat, dept_list_one, arr)) != 0) {
        json_decref(arr);
        return api_respond_cat_error(r, rc, "department");
    }
    return http_respond_json(r, 200, arr);
}

/* POST /api/v1/departments {"name", "wave_start"} */
static int dept_add(struct http_req *r)
{
    static const char *const keys[] = {"name", "wave_start", NULL};
    struct srv *s = http_srv(r);
    struct cat_dept d;
    const char *name;
    json_t *body;
    int64_t wave;
    int rc;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    name = json_string_value(json_object_get(body, "name"));
    if (name == NULL || !dept_name_valid(name))
        return http_respond_error(r, 400, "bad_request",
                                  "name must be 1 to 127 characters, no "
                                  "'/' or control characters");
    if (wave_field(r, json_object_get(body, "wave_start"), &wave) != 0)
        return 0;
    memset(&d, 0, sizeof(d));
    if ((rc = cat_dept_add(s->cat, name, wave, &d.id)) != 0)
        return api_respond_cat_error(r, rc, "department");
    snprintf(d.name, sizeof(d.name), "%s", name);
    d.wave_start = wave;
    srv_audit(s, http_auth(r)->user_id, NULL, http_client_addr(r),
              "department_add", name, "{\"wave_start\":%lld}",
              (long long)wave);
    return http_respond_json(r, 201, dept_json(&d));
}

/* PATCH /api/v1/departments/{name} {"wave_start"} */
static int dept_patch(struct http_req *r)
{
    static const char *const keys[] = {"wave_start", NULL};
    struct srv *s = http_srv(r);
    const char *name = http_param(r, 0);
    struct cat_dept d;
    json_t *body;
    int64_t wave;
    int rc;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    if (json_object_get(body, "wave_start") == NULL)
        return http_respond_error(r, 400, "bad_request",
                                  "wave_start is missing (null to unset)");
    if (wave_field(r, json_object_get(body, "wave_start"), &wave) != 0)
        return 0;
    if ((rc = cat_dept_set_wave(s->cat, name, wave)) != 0 ||
        (rc = cat_dept_get(s->cat, name, &d)) != 0)
        return api_respond_cat_error(r, rc, "department");
    srv_audit(s, http_auth(r)->user_id, NULL, http_client_addr(r),
              "department_wave", name, "{\"wave_start\":%lld}",
              (long long)wave);
    return http_respond_json(r, 200, dept_json(&d));
}

/* ---- users ---- */

/* Usernames: 1..63 of [a-z0-9._@-], starting with a letter or digit. */
static int username_valid(const char *n)
{
    size_t i, len = strlen(n);

    if (len == 0 || len > 63 || !isalnum((unsigned char)n[0]))
        return 0;
    for (i = 0; i < len; i++) {
        char c = n[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == '@'))
            return 0;
    }
    return 1;
}

static int password_field(struct http_req *r, json_t *body,
                          const char **out)
{
    const char *pw = json_string_value(json_object_get(body, "password"));
    size_t len;

    if (pw == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "password must be a string");
        return -1;
    }
    len = strlen(pw);
    if (len < PASSWORD_MIN || len > PASSWORD_MAX) {
        http_respond_error(r, 400, "bad_request",
                           "a password has %d to %d characters",
                           PASSWORD_MIN, PASSWORD_MAX);
        return -1;
    }
    *out = pw;
    return 0;
}

static int user_list_one(void *arg, const struct cat_user *u)
{
    void **a = arg;

    return json_array_append_new(a[1], api_user_json(a[0], u)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/users */
static int user_list(struct http_req *r)
{
    struct srv *s = http_srv(r);
    json_t *arr = json_array();
    void *a[2];
    int rc;

    if (arr == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    a[0] = s;
    a[1] = arr;
    if ((rc = cat_user_list(s->cat, user_list_one, a)) != 0) {
        json_decref(arr);
        return api_respond_cat_error(r, rc, "user");
    }
    return http_respond_json(r, 200, arr);
}

/* POST /api/v1/users {"username", "password", "department", "role",
 * "display"} -> the user, its TOTP secret and recovery codes (shown once). */
static int user_add(struct http_req *r)
{
    static const char *const keys[] = {"username", "password", "department",
                                       "role", "display", NULL};
    struct srv *s = http_srv(r);
    struct cat_user u;
    struct cat_dept d;
    struct cat_org org;
    char (*hashes)[65] = NULL;
    char **codes = NULL;
    char *uri = NULL, *qr;
    const char *username, *pw, *dept, *role, *display, *issuer = "Cairn";
    json_t *body, *res, *jc;
    int rc, i, have_org = 0;

    memset(&u, 0, sizeof(u));
    memset(&org, 0, sizeof(org));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    username = json_string_value(json_object_get(body, "username"));
    dept = json_string_value(json_object_get(body, "department"));
    role = json_string_value(json_object_get(body, "role"));
    display = json_string_value(json_object_get(body, "display"));
    if (username == NULL || !username_valid(username)) {
        http_respond_error(r, 400, "bad_request",
                           "username must be 1 to 63 characters of "
                           "a-z 0-9 . _ - @");
        goto done;
    }
    if (password_field(r, body, &pw) != 0)
        goto done;
    if (role == NULL || (strcmp(role, "user") != 0 &&
                         strcmp(role, "admin") != 0)) {
        http_respond_error(r, 400, "bad_request",
                           "role must be \"user\" or \"admin\"");
        goto done;
    }
    if (json_object_get(body, "display") != NULL &&
        (display == NULL || strlen(display) >= sizeof(u.display))) {
        http_respond_error(r, 400, "bad_request",
                           "display must be a string under 128 bytes");
        goto done;
    }
    if (dept == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "department must be a string");
        goto done;
    }
    if ((rc = cat_dept_get(s->cat, dept, &d)) != 0) {
        api_respond_cat_error(r, rc, "department");
        goto done;
    }

    snprintf(u.username, sizeof(u.username), "%s", username);
    snprintf(u.display, sizeof(u.display), "%s", display ? display : "");
    u.dept_id = d.id;
    u.admin = strcmp(role, "admin") == 0;
    u.created = srv_now();
    if (srv_password_hash(pw, strlen(pw), NULL, &u.pw_hash) != 0 ||
        srv_totp_secret_new(u.totp_secret) != 0 ||
        srv_recovery_codes_new(RECOVERY_CODES, &codes) != 0 ||
        (hashes = calloc(RECOVERY_CODES, sizeof(*hashes))) == NULL) {
        http_respond_error(r, 500, "server_error",
                           "cannot make the credentials");
        goto done;
    }
    for (i = 0; i < RECOVERY_CODES; i++) {
        if (srv_recovery_hash(codes[i], hashes[i]) != 0) {
            http_respond_error(r, 500, "server_error",
                               "cannot hash a recovery code");
            goto done;
        }
    }
    if (cat_org_get(s->cat, &org) == 0) {
        have_org = 1;
        if (org.name[0] != '\0')
            issuer = org.name;
    }
    if (srv_totp_uri(issuer, username, u.totp_secret, &uri) != 0) {
        http_respond_error(r, 500, "server_error", "cannot make the TOTP "
                           "URI");
        goto done;
    }
    if ((rc = cat_user_add(s->cat, &u)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    if ((rc = cat_recovery_set(s->cat, u.id,
                               (const char(*)[65])hashes,
                               RECOVERY_CODES)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    srv_audit(s, http_auth(r)->user_id, NULL, http_client_addr(r),
              "user_add", username, "{\"role\":\"%s\",\"department_id\":%lld}",
              u.admin ? "admin" : "user", (long long)u.dept_id);

    if ((res = api_user_json(s, &u)) == NULL || (jc = json_array()) == NULL) {
        json_decref(res);
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    for (i = 0; i < RECOVERY_CODES; i++)
        json_array_append_new(jc, json_string(codes[i]));
    json_object_set_new(res, "recovery_codes", jc);
    json_object_set_new(res, "totp_uri", json_string(uri));
    json_object_set_new(res, "totp_secret", json_string(u.totp_secret));
    /* The same as a QR code for a terminal, to scan with the phone. */
    if (srv_qr_terminal(uri, &qr) == 0) {
        json_object_set_new(res, "totp_qr", json_string(qr));
        cairn_wipe(qr, strlen(qr));
        free(qr);
    }
    http_respond_json(r, 201, res);

done:
    if (uri != NULL) {
        cairn_wipe(uri, strlen(uri));
        free(uri);
    }
    if (hashes != NULL) {
        cairn_wipe(hashes, RECOVERY_CODES * sizeof(*hashes));
        free(hashes);
    }
    if (codes != NULL)
        srv_recovery_codes_free(codes, RECOVERY_CODES);
    if (have_org)
        cat_org_clear(&org);
    cairn_wipe(u.totp_secret, sizeof(u.totp_secret));
    cat_user_clear(&u);
    return 0;
}

/* ---- owner wraps after a reset ---- */

struct wrap_ids {
    char (*id)[33];
    size_t n, cap;
};

static int wrap_ids_add(void *arg, const struct cat_device *d)
{
    struct wrap_ids *w = arg;
    char(*nv)[33];

    if (strcmp(d->category, "personal") != 0)
        return 0;
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4;

        if ((nv = realloc(w->id, nc * sizeof(*nv))) == NULL)
            return CAIRN_ENOMEM;
        w->id = nv;
        w->cap = nc;
    }
    memcpy(w->id[w->n++], d->id, 33);
    return 0;
}

/*
 * Drop the owner wraps of a user's personal devices (a password reset:
 * they were made under a password nobody may use any more).  *out_n: how
 * many devices had one.  The caller holds nothing.
 */
static int owner_wraps_drop(struct srv *s, int64_t user_id, int *out_n)
{
    struct cat_device_filter f;
    struct wrap_ids w;
    size_t i;
    int rc;

    memset(&f, 0, sizeof(f));
    memset(&w, 0, sizeof(w));
    *out_n = 0;
    f.owner_id = user_id;
    f.category = "personal";
    if ((rc = cat_device_list(s->cat, &f, wrap_ids_add, &w)) != 0)
        goto out;
    pthread_mutex_lock(&api_device_mutex);
    for (i = 0; i < w.n && rc == 0; i++) {
        struct cat_device d;

        if ((rc = cat_device_get(s->cat, w.id[i], &d)) != 0)
            break;
        if (d.wrap_owner != NULL && d.owner_id == user_id) {
            free(d.wrap_owner);
            d.wrap_owner = NULL;
            d.wrap_owner_len = 0;
            if ((rc = cat_device_update(s->cat, &d)) == 0)
                (*out_n)++;
        }
        cat_device_clear(&d);
        (void)keyring_drop_device(keyring_process(), w.id[i]);
    }
    pthread_mutex_unlock(&api_device_mutex);
out:
    free(w.id);
    return rc;
}

/* Re-made owner wraps, before they are written. */
struct rewrap_new {
    char id[33];
    uint8_t *wrap;
    size_t len;
};

struct rewrap_ctx {
    const uint8_t *pub, *priv;
    const char *pw, *username;
    struct rewrap_new *v;
    size_t n, cap;
    int failed;
    int rc;
};

static int rewrap_make(void *arg, const struct cat_device *d)
{
    struct rewrap_ctx *c = arg;
    struct rewrap_new *nv;
    uint8_t key[KEYRING_KEY_LEN];
    char label[256];
    int rc;

    if (strcmp(d->category, "personal") != 0 ||
        strcmp(d->state, "active") != 0)
        return 0;
    if (keyring_unseal(c->pub, c->priv, d, key) != 0) {
        srv_log(SRV_LOG_WARN, "the escrow wrap of device %s does not open "
                "with the organisation's escrow key", d->id);
        c->failed++;
        return 0;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4;

        if ((nv = realloc(c->v, nc * sizeof(*nv))) == NULL) {
            cairn_wipe(key, sizeof(key));
            return CAIRN_ENOMEM;
        }
        c->v = nv;
        c->cap = nc;
    }
    snprintf(label, sizeof(label), "owner %s (re-made from escrow)",
             c->username);
    memcpy(c->v[c->n].id, d->id, 33);
    rc = cairn_keyfile_create(key, d->archive_id, c->pw, strlen(c->pw), NULL,
                              label, &c->v[c->n].wrap, &c->v[c->n].len);
    cairn_wipe(key, sizeof(key));
    if (rc != 0)
        return rc;
    c->n++;
    return 0;
}

/*
 * POST /api/v1/users/{name}/rewrap {"escrow_passphrase", "password"}
 * (admin): at the administrator's desk, the person types their (new)
 * password, checked against its hash; the escrow key is unwrapped in
 * memory, each of the person's personal devices' escrow wraps is opened
 * and its archive key wrapped under the password as the owner wrap;
 * everything is wiped.  Wrong secrets count like failed logins.
 */
static int user_rewrap(struct http_req *r)
{
    static const char *const keys[] = {"escrow_passphrase", "password",
                                       NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *addr = http_client_addr(r);
    const char *name = http_param(r, 0), *pass, *pw;
    struct cat_device_filter f;
    struct rewrap_ctx c;
    struct cat_user u, admin;
    uint8_t pub[32], priv[32];
    json_t *body;
    int64_t wait;
    size_t i, done = 0;
    int rc, locked, have_admin = 0;

    memset(&u, 0, sizeof(u));
    memset(&admin, 0, sizeof(admin));
    memset(&c, 0, sizeof(c));
    memset(&f, 0, sizeof(f));
    memset(priv, 0, sizeof(priv));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    pass = json_string_value(json_object_get(body, "escrow_passphrase"));
    pw = json_string_value(json_object_get(body, "password"));
    if (pass == NULL || pw == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "escrow_passphrase and password must be strings");
        goto done;
    }
    if ((rc = cat_user_get_id(s->cat, a->user_id, &admin)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    have_admin = 1;
    if ((rc = cat_user_get(s->cat, name, &u)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    if ((wait = keyring_throttle_wait(s, &admin, addr, &locked)) > 0 ||
        (wait = keyring_throttle_wait(s, &u, NULL, &locked)) > 0) {
        char v[32];

        snprintf(v, sizeof(v), "%lld", (long long)wait);
        http_set_header(r, "Retry-After", v);
        http_respond_error(r, locked ? 423 : 429,
                           locked ? "locked" : "too_many",
                           "too many wrong secrets; try again in %lld "
                           "seconds", (long long)wait);
        goto done;
    }
    if (srv_password_verify(pw, strlen(pw), u.pw_hash) != 0) {
        keyring_throttle_fail(s, &u, addr);
        srv_audit(s, a->user_id, NULL, addr, "rewrap_failed", u.username,
                  "{\"why\":\"password\"}");
        http_respond_error(r, 403, "forbidden",
                           "that is not %s's password; they type the "
                           "password they log in with", u.username);
        goto done;
    }
    if ((rc = keyring_escrow_open(s, pass, pub, priv)) != 0) {
        if (rc == CAIRN_EAUTH)
            keyring_throttle_fail(s, &admin, addr);
        srv_audit(s, a->user_id, NULL, addr, "escrow_unlock_failed",
                  u.username, "{\"purpose\":\"rewrap\"}");
        if (rc == CAIRN_EAUTH)
            http_respond_error(r, 403, "forbidden",
                               "wrong escrow passphrase");
        else
            http_respond_error(r, 500, "server_error",
                               "cannot open the escrow key: %s",
                               cairn_strerror(rc));
        goto done;
    }
    srv_audit(s, a->user_id, NULL, addr, "escrow_unlock", u.username,
              "{\"purpose\":\"rewrap\"}");
    c.pub = pub;
    c.priv = priv;
    c.pw = pw;
    c.username = u.username;
    f.owner_id = u.id;
    f.category = "personal";
    f.active_only = 1;
    rc = cat_device_list(s->cat, &f, rewrap_make, &c);
    cairn_wipe(priv, sizeof(priv));
    if (rc != 0) {
        http_respond_error(r, 500, "server_error",
                           "cannot re-make the wraps: %s", cairn_strerror(rc));
        goto done;
    }
    pthread_mutex_lock(&api_device_mutex);
    for (i = 0; i < c.n; i++) {
        struct cat_device d;

        if ((rc = cat_device_get(s->cat, c.v[i].id, &d)) != 0)
            break;
        if (d.owner_id != u.id) {
            cat_device_clear(&d);
            continue;
        }
        free(d.wrap_owner);
        d.wrap_owner = c.v[i].wrap;
        d.wrap_owner_len = c.v[i].len;
        c.v[i].wrap = NULL;
        rc = cat_device_update(s->cat, &d);
        cat_device_clear(&d);
        if (rc != 0)
            break;
        done++;
    }
    pthread_mutex_unlock(&api_device_mutex);
    if (rc != 0) {
        api_respond_cat_error(r, rc, "device");
        goto done;
    }
    srv_audit(s, a->user_id, NULL, addr, "rewrap", u.username,
              "{\"devices\":%zu,\"failed\":%d}", done, c.failed);
    http_respond_json(r, 200,
                      json_pack("{s:I, s:i}", "rewrapped", (json_int_t)done,
                                "failed", c.failed));

done:
    cairn_wipe(priv, sizeof(priv));
    for (i = 0; i < c.n; i++)
        free(c.v[i].wrap);
    free(c.v);
    if (have_admin)
        cat_user_clear(&admin);
    cat_user_clear(&u);
    return 0;
}

/*
 * POST /api/v1/users/{name}/{disable|enable|unlock|reset-password}.
 * Disabling and a password reset revoke the user's sessions.
 */
static int user_act(struct http_req *r)
{
    static const char *const keys[] = {"password", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *name = http_param(r, 0), *act = http_param(r, 1);
    const char *pw = NULL;
    struct cat_user u;
    json_t *body = NULL;
    char *h = NULL, action[32];
    int rc, revoke = 0, dropped = 0;
    size_t blen;

    memset(&u, 0, sizeof(u));
    if (strcmp(act, "rewrap") == 0)
        return user_rewrap(r);
    if (strcmp(act, "reset-password") == 0) {
        if ((body = http_json_body(r, keys)) == NULL)
            goto done;
        if (password_field(r, body, &pw) != 0)
            goto done;
    } else if (strcmp(act, "disable") != 0 && strcmp(act, "enable") != 0 &&
               strcmp(act, "unlock") != 0) {
        http_respond_error(r, 404, "not_found",
                           "no such action: %s (disable, enable, unlock, "
                           "reset-password, rewrap)", act);
        goto done;
    } else if (http_body(r, &blen) != NULL && blen > 0) {
        /* An empty object is fine; anything else is a mistake. */
        static const char *const none[] = {NULL};

        if (http_json_body(r, none) == NULL)
            goto done;
    }
    if ((rc = cat_user_get(s->cat, name, &u)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    if (strcmp(act, "disable") == 0) {
        if (u.id == a->user_id) {
            http_respond_error(r, 409, "conflict",
                               "you cannot disable your own account");
            goto done;
        }
        u.disabled = 1;
        revoke = 1;
    } else if (strcmp(act, "enable") == 0) {
        u.disabled = 0;
    } else if (strcmp(act, "unlock") == 0) {
        u.failures = 0;
        u.last_failure = 0;
        u.locked_until = 0;
    } else {
        if (srv_password_hash(pw, strlen(pw), NULL, &h) != 0) {
            http_respond_error(r, 500, "server_error",
                               "cannot hash the password");
            goto done;
        }
        free(u.pw_hash);
        u.pw_hash = h;
        u.failures = 0;
        u.last_failure = 0;
        u.locked_until = 0;
        revoke = 1;
    }
    if ((rc = cat_user_update(s->cat, &u)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    if (revoke && (rc = cat_session_delete_user(s->cat, u.id)) != 0 &&
        rc != CAIRN_ENOENT) {
        api_respond_cat_error(r, rc, "session");
        goto done;
    }
    if (revoke)
        (void)keyring_drop_user(keyring_process(), u.id, NULL);
    if (strcmp(act, "reset-password") == 0) {
        /* The owner wraps were under the old password: drop them; the
         * IT office re-makes them from escrow (rewrap) at the desk. */
        if ((rc = owner_wraps_drop(s, u.id, &dropped)) != 0) {
            api_respond_cat_error(r, rc, "device");
            goto done;
        }
        srv_audit(s, a->user_id, NULL, http_client_addr(r),
                  "owner_wraps_dropped", u.username, "{\"devices\":%d}",
                  dropped);
    }
    snprintf(action, sizeof(action), "user_%s", act);
    srv_audit(s, a->user_id, NULL, http_client_addr(r), action, u.username,
              "{}");
    http_respond_json(r, 200, api_user_json(s, &u));

done:
    cat_user_clear(&u);
    return 0;
}

const struct http_route api_org_routes[] = {
    {"GET", "/api/v1/org", HTTP_USER, 0, org_get, NULL},
    {"GET", "/api/v1/departments", HTTP_ADMIN, 0, dept_list, NULL},
    {"POST", "/api/v1/departments", HTTP_ADMIN, 4096, dept_add, NULL},
    {"PATCH", "/api/v1/departments/{}", HTTP_ADMIN, 4096, dept_patch, NULL},
    {"GET", "/api/v1/users", HTTP_ADMIN, 0, user_list, NULL},
    {"POST", "/api/v1/users", HTTP_ADMIN, 8192, user_add, NULL},
    {"POST", "/api/v1/users/{}/{}", HTTP_ADMIN, 4096, user_act, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
