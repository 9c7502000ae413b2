/*
 * api_device.c - devices (docs/API.md, "Devices"): enrolment, the wraps a
 * replacement computer needs, status reports from devices, the status and
 * migration views of the IT office, re-categorisation.
 *
 * Replacing a device: the new device takes over the old one's archive.
 * The archive is moved, not mapped: objects/<old id> is renamed to
 * objects/<new id> (one rename on the embedded directory store, atomic),
 * so every device id names exactly its own archive directory and nothing
 * needs a lookup table; the old row stays, in state "replaced" with
 * replaced_by, for the audit trail and the migration report.  (An S3
 * store will need a prefix mapping instead; that belongs with it.)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"
#include "cairn/snapshot.h"
#include "cairn/store.h"

#include "api.h"
#include "auth.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

#define WRAP_MAX 4096
#define CONFIG_MAX 4096
/* A sealed archive key: the box overhead and at least 64 bytes of sealed
 * payload (the archive key and the archive id). */
#define WRAP_ESCROW_MIN (CAIRN_SEAL_OVERHEAD + 64)

pthread_mutex_t api_device_mutex = PTHREAD_MUTEX_INITIALIZER;

/* ---- base64 ---- */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int api_b64_decode(const char *text, size_t max, uint8_t **out,
                   size_t *out_len)
{
    size_t n = strlen(text), i, o = 0, cap;
    uint32_t acc = 0;
    int bits = 0, v;
    uint8_t *buf;

    /* Padding only at the end, at most two, making a multiple of 4. */
    while (n > 0 && text[n - 1] == '=') {
        n--;
        if (strlen(text) - n > 2)
            return CAIRN_EINVAL;
    }
    if (strlen(text) != n && strlen(text) % 4 != 0)
        return CAIRN_EINVAL;
    if (n % 4 == 1)
        return CAIRN_EINVAL;
    cap = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (cap > max)
        return CAIRN_ERANGE;
    if ((buf = malloc(cap ? cap : 1)) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < n; i++) {
        if ((v = b64_val((unsigned char)text[i])) < 0) {
            free(buf);
            return CAIRN_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (one encoding per byte string). */
    if ((acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return CAIRN_EINVAL;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

json_t *api_b64_json(const uint8_t *buf, size_t len)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    char *t;
    json_t *j;

    if ((t = malloc((len + 2) / 3 * 4 + 1)) == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)buf[i] << 16 | (uint32_t)buf[i + 1] << 8 |
                     buf[i + 2];

        t[o++] = al[v >> 18];
        t[o++] = al[(v >> 12) & 63];
        t[o++] = al[(v >> 6) & 63];
        t[o++] = al[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)buf[i] << 16 |
                     (i + 1 < len ? (uint32_t)buf[i + 1] << 8 : 0);

        t[o++] = al[v >> 18];
        t[o++] = al[(v >> 12) & 63];
        t[o++] = i + 1 < len ? al[(v >> 6) & 63] : '=';
        t[o++] = '=';
    }
    t[o] = '\0';
    j = json_string(t);
    free(t);
    return j;
}

/* ---- small helpers ---- */

static int text_valid(const char *n, size_t max)
{
    size_t i, len = strlen(n);

    if (len == 0 || len >= max)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f)
            return 0;
    return 1;
}

/* A base64 field into *out; absent or null gives NULL.  Answers 400. */
static int b64_field(struct http_req *r, json_t *body, const char *key,
                     size_t max, uint8_t **out, size_t *out_len)
{
    json_t *v = json_object_get(body, key);

    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) ||
        api_b64_decode(json_string_value(v), max, out, out_len) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "%s must be base64 of at most %zu bytes", key,
                           max);
        return -1;
    }
    return 0;
}

static const char *alert_of(const struct srv *s, const struct cat_device *d,
                            int64_t now)
{
    int64_t since = d->last_backup ? d->last_backup : d->enrolled_at;
    int64_t age = now - since;

    if (strcmp(d->state, "active") != 0)
        return "ok";
    if (s->cfg.alert_critical_days > 0 &&
        age >= s->cfg.alert_critical_days * 86400)
        return "critical";
    if (s->cfg.alert_warning_days > 0 &&
        age >= s->cfg.alert_warning_days * 86400)
        return "warning";
    return "ok";
}

static json_t *dept_name_json(struct srv *s, int64_t id)
{
    struct cat_dept d;

    if (id != 0 && cat_dept_get_id(s->cat, id, &d) == 0)
        return json_string(d.name);
    return json_null();
}

static json_t *user_name_json(struct srv *s, int64_t id)
{
    struct cat_user u;
    json_t *j;

    if (id == 0 || cat_user_get_id(s->cat, id, &u) != 0)
        return json_null();
    j = json_string(u.username);
    cat_user_clear(&u);
    return j;
}

static json_t *device_json(struct srv *s, const struct cat_device *d,
                           int64_t now)
{
    double pct;
    json_t *j;

    if (d->bytes_selected > 0)
        pct = 100.0 * (double)(d->bytes_selected - d->bytes_todo) /
              (double)d->bytes_selected;
    else if (d->files_selected > 0)
        pct = 100.0 * (double)(d->files_selected - d->files_todo) /
              (double)d->files_selected;
    else
        pct = d->last_backup ? 100.0 : 0.0;
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o,"
                  " s:s, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:s}",
                  "id", d->id, "name", d->name, "category", d->category,
                  "department", dept_name_json(s, d->dept_id), "owner",
                  user_name_json(s, d->owner_id), "state", d->state,
                  "enrolled_at", api_time_json(d->enrolled_at),
                  "last_activity", api_time_json(d->last_activity),
                  "last_backup", api_time_json(d->last_backup),
                  "first_backup", api_time_json(d->first_backup),
                  "next_backup", api_time_json(d->next_backup), "phase",
                  d->phase, "files_selected", (json_int_t)d->files_selected,
                  "bytes_selected", (json_int_t)d->bytes_selected,
                  "files_todo", (json_int_t)d->files_todo, "bytes_todo",
                  (json_int_t)d->bytes_todo, "percent", pct, "bytes_stored",
                  (json_int_t)d->bytes_stored, "errors",
                  (json_int_t)d->errors, "alert", alert_of(s, d, now));
    if (j != NULL && d->replaced_by[0] != '\0')
        json_object_set_new(j, "replaced_by", json_string(d->replaced_by));
    return j;
}

/* Answer 403 wave_not_started with starts_at. */
static int respond_wave(struct http_req *r, const struct cat_dept *d)
{
    char when[32];
    json_t *j;

    if (d->wave_start == 0) {
        j = json_pack("{s:s, s:s, s:s}", "error",
                      "the department's rollout wave is not scheduled yet; "
                      "ask the IT office",
                      "code", "wave_not_started", "starts_at",
                      "not scheduled");
    } else {
        char msg[160];

        api_time_format(d->wave_start, when);
        snprintf(msg, sizeof(msg),
                 "the department's rollout wave starts at %s; enrol then",
                 when);
        j = json_pack("{s:s, s:s, s:s}", "error", msg, "code",
                      "wave_not_started", "starts_at", when);
    }
    if (j == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 403, j);
}

static int device_path(struct srv *s, const char *id, char out[PATH_MAX])
{
    return snprintf(out, PATH_MAX, "%s/%s", s->objects_dir, id) < PATH_MAX
               ? 0
               : CAIRN_ERANGE;
}

/* ---- enrolment ---- */

struct enrol {
    const char *name, *category, *dept, *replaces;
    uint8_t *archive_id, *config, *wrap_escrow, *wrap_owner;
    size_t archive_id_len, config_len, wrap_escrow_len, wrap_owner_len;
};

/* POST /api/v1/devices */
static int enrol(struct http_req *r)
{
    static const char *const keys[] = {
        "name",       "category",    "department", "archive_id", "config",
        "wrap_escrow", "wrap_owner", "replaces",   NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct enrol e;
    struct cat_dept dept;
    struct cat_device d, old;
    struct cairn_config cfg;
    struct cairn_keyfile_info kinfo;
    struct cairn_store *st = NULL;
    uint8_t rnd[16];
    char tok[SRV_TOKEN_MAX], token[SRV_TOKEN_MAX + 40];
    char opath[PATH_MAX], npath[PATH_MAX];
    json_t *body, *res, *jr;
    int personal, rc, have_old = 0, moved = 0;

    memset(&e, 0, sizeof(e));
    memset(&d, 0, sizeof(d));
    memset(&old, 0, sizeof(old));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    e.name = json_string_value(json_object_get(body, "name"));
    e.category = json_string_value(json_object_get(body, "category"));
    e.dept = json_string_value(json_object_get(body, "department"));
    jr = json_object_get(body, "replaces");
    if (jr != NULL && !json_is_null(jr) &&
        (e.replaces = json_string_value(jr)) == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "replaces must be a device id or null");
        goto done;
    }
    if (e.name == NULL || !text_valid(e.name, sizeof(d.name))) {
        http_respond_error(r, 400, "bad_request",
                           "name must be 1 to 127 characters");
        goto done;
    }
    if (e.category == NULL || (strcmp(e.category, "personal") != 0 &&
                               strcmp(e.category, "shared") != 0)) {
        http_respond_error(r, 400, "bad_request",
                           "category must be \"personal\" or \"shared\"");
        goto done;
    }
    personal = strcmp(e.category, "personal") == 0;
    if (e.dept == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "department must be a string");
        goto done;
    }
    if (b64_field(r, body, "archive_id", CAIRN_ID_LEN, &e.archive_id,
                  &e.archive_id_len) != 0 ||
        b64_field(r, body, "config", CONFIG_MAX, &e.config, &e.config_len) !=
            0 ||
        b64_field(r, body, "wrap_escrow", WRAP_MAX, &e.wrap_escrow,
                  &e.wrap_escrow_len) != 0 ||
        b64_field(r, body, "wrap_owner", WRAP_MAX, &e.wrap_owner,
                  &e.wrap_owner_len) != 0)
        goto done;
    if (e.archive_id == NULL || e.archive_id_len != CAIRN_ID_LEN) {
        http_respond_error(r, 400, "bad_request",
                           "archive_id must be 32 bytes, base64");
        goto done;
    }

    /* Who may enrol what, and when. */
    if (!personal && !a->admin) {
        http_respond_error(r, 403, "forbidden",
                           "only an administrator enrols a shared device");
        goto done;
    }
    if ((rc = cat_dept_get(s->cat, e.dept, &dept)) != 0) {
        api_respond_cat_error(r, rc, "department");
        goto done;
    }
    if (dept.wave_start == 0 || dept.wave_start > srv_now()) {
        respond_wave(r, &dept);
        goto done;
    }
    if (e.replaces != NULL) {
        if ((rc = cat_device_get(s->cat, e.replaces, &old)) != 0) {
            api_respond_cat_error(r, rc, "device to replace");
            goto done;
        }
        have_old = 1;
        if (!a->admin && old.owner_id != a->user_id) {
            http_respond_error(r, 403, "forbidden",
                               "you may replace only a device you own");
            goto done;
        }
        if (strcmp(old.state, "active") != 0) {
            http_respond_error(r, 409, "conflict",
                               "device %s was replaced already by %s",
                               old.id, old.replaced_by);
            goto done;
        }
        if (memcmp(old.archive_id, e.archive_id, CAIRN_ID_LEN) != 0) {
            http_respond_error(r, 400, "bad_request",
                               "archive_id is not the archive of device %s",
                               old.id);
            goto done;
        }
    }

    /* The config: required for a new archive, and it must be this one's. */
    if (e.config == NULL && !have_old) {
        http_respond_error(r, 400, "bad_request", "config is missing");
        goto done;
    }
    if (e.config != NULL &&
        (cairn_config_decode(e.config, e.config_len, NULL, &cfg) != 0 ||
         memcmp(cfg.archive_id, e.archive_id, CAIRN_ID_LEN) != 0)) {
        http_respond_error(r, 400, "bad_request",
                           "config is not an archive config of archive_id");
        goto done;
    }

    /* The wraps. */
    if (e.wrap_escrow == NULL && have_old) {
        e.wrap_escrow = old.wrap_escrow;
        e.wrap_escrow_len = old.wrap_escrow_len;
        old.wrap_escrow = NULL;
    }
    if (e.wrap_escrow == NULL || e.wrap_escrow_len < WRAP_ESCROW_MIN ||
        memcmp(e.wrap_escrow, "CRNX", 4) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "wrap_escrow must be the archive key sealed to "
                           "the escrow key");
        goto done;
    }
    if (!personal && e.wrap_owner != NULL) {
        http_respond_error(r, 400, "bad_request",
                           "a shared device has no wrap_owner");
        goto done;
    }
    if (personal && e.wrap_owner == NULL && have_old &&
        old.wrap_owner != NULL) {
        e.wrap_owner = old.wrap_owner;
        e.wrap_owner_len = old.wrap_owner_len;
        old.wrap_owner = NULL;
    }
    if (personal &&
        (e.wrap_owner == NULL ||
         cairn_keyfile_info(e.wrap_owner, e.wrap_owner_len, &kinfo) != 0)) {
        http_respond_error(r, 400, "bad_request",
                           "wrap_owner must be the archive key wrapped "
                           "under the owner's password (a key file)");
        goto done;
    }

    /* The device and its token. */
    if (cairn_random(rnd, sizeof(rnd)) != 0 ||
        srv_token_new("cd_", tok) != 0) {
        http_respond_error(r, 500, "server_error", "no randomness");
        goto done;
    }
    cairn_hex_encode(rnd, sizeof(rnd), d.id);
    snprintf(token, sizeof(token), "cd_%s.%s", d.id, tok + 3);
    cairn_wipe(tok, sizeof(tok));
    srv_token_hash(token, d.token_hash);
    snprintf(d.name, sizeof(d.name), "%s", e.name);
    snprintf(d.category, sizeof(d.category), "%s", e.category);
    d.dept_id = dept.id;
    if (personal)
        d.owner_id = (have_old && a->admin && old.owner_id != 0)
                         ? old.owner_id
                         : a->user_id;
    memcpy(d.archive_id, e.archive_id, CAIRN_ID_LEN);
    d.wrap_escrow = e.wrap_escrow;
    d.wrap_escrow_len = e.wrap_escrow_len;
    d.wrap_owner = personal ? e.wrap_owner : NULL;
    d.wrap_owner_len = personal ? e.wrap_owner_len : 0;
    snprintf(d.state, sizeof(d.state), "%s", "active");
    d.enrolled_at = srv_now();
    d.enrolled_by = a->user_id;
    snprintf(d.phase, sizeof(d.phase), "%s", "enrolled");

    /* The archive: adopted (moved) or new with its config. */
    if (have_old) {
        d.first_backup = old.first_backup;
        d.last_backup = old.last_backup;
        d.bytes_stored = old.bytes_stored;
        d.legacy_cancelled_at = old.legacy_cancelled_at;
        d.legacy_cancelled_by = old.legacy_cancelled_by;
        if (device_path(s, old.id, opath) != 0 ||
            device_path(s, d.id, npath) != 0 || rename(opath, npath) != 0) {
            http_respond_error(r, 500, "server_error",
                               "cannot move the archive of device %s: %s",
                               old.id, strerror(errno));
            goto done;
        }
        moved = 1;
    } else {
        if ((rc = srv_device_store(s, d.id, 1, &st)) != 0 ||
            (rc = cairn_store_put(st, CAIRN_OBJ_CONFIG, "config", e.config,
                                  e.config_len, 1)) != 0) {
            http_respond_error(r, 500, "server_error",
                               "cannot create the device's archive: %s",
                               cairn_strerror(rc));
            goto done;
        }
    }
    if ((rc = cat_device_add(s->cat, &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        goto unmove;
    }
    if (have_old) {
        pthread_mutex_lock(&api_device_mutex);
        snprintf(old.state, sizeof(old.state), "%s", "replaced");
        snprintf(old.replaced_by, sizeof(old.replaced_by), "%s", d.id);
        rc = cat_device_update(s->cat, &old);
        pthread_mutex_unlock(&api_device_mutex);
        if (rc != 0)
            srv_log(SRV_LOG_ERROR, "device %s replaced by %s, but its row "
                    "says active: %s", old.id, d.id, cairn_strerror(rc));
        srv_audit(s, a->user_id, d.id, http_client_addr(r), "device_replace",
                  old.id, "{\"new\":\"%s\"}", d.id);
    }
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "device_enrol",
              d.name, "{\"category\":\"%s\",\"department_id\":%lld}",
              d.category, (long long)d.dept_id);
    moved = 0;
    res = json_pack("{s:s, s:s}", "device_id", d.id, "token", token);
    if (res == NULL)
        http_respond_error(r, 500, "server_error", "out of memory");
    else
        http_respond_json(r, 201, res);

unmove:
    if (moved && rename(npath, opath) != 0)
        srv_log(SRV_LOG_ERROR, "cannot move the archive %s back to %s",
                npath, opath);
done:
    cairn_wipe(token, sizeof(token));
    cairn_store_free(st);
    free(e.archive_id);
    free(e.config);
    free(e.wrap_escrow);
    free(e.wrap_owner);
    if (have_old)
        cat_device_clear(&old);
    return 0;
}

int api_may_restore(struct http_req *r, const char *device_id)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device d;
    int rc, ok;

    if (a->kind != HTTP_AUTH_SESSION || !a->full) {
        http_respond_error(r, 403, "forbidden",
                           "restoring needs a two-step login");
        return -1;
    }
    if ((rc = cat_device_get(s->cat, device_id, &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        return -1;
    }
    ok = a->admin || (strcmp(d.category, "personal") == 0 &&
                      d.owner_id != 0 && d.owner_id == a->user_id);
    cat_device_clear(&d);
    if (!ok) {
        http_respond_error(r, 403, "forbidden",
                           "only its owner (a personal device) or an "
                           "administrator may restore this device");
        return -1;
    }
    return 0;
}

/* GET /api/v1/devices/{id}/wraps (the owner; an admin also gets the
 * escrow wrap) */
static int wraps(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device d;
    json_t *res;
    int rc;

    if ((rc = cat_device_get(s->cat, http_param(r, 0), &d)) != 0)
        return api_respond_cat_error(r, rc, "device");
    if (!a->admin && (d.owner_id == 0 || d.owner_id != a->user_id)) {
        cat_device_clear(&d);
        return http_respond_error(r, 403, "forbidden",
                                  "only the owner or an administrator may "
                                  "read this device's wraps");
    }
    res = json_pack("{s:s, s:o, s:s, s:o}", "device_id", d.id, "archive_id",
                    api_b64_json(d.archive_id, CAIRN_ID_LEN), "category",
                    d.category, "wrap_owner",
                    d.wrap_owner ? api_b64_json(d.wrap_owner,
                                                d.wrap_owner_len)
                                 : json_null());
    if (res != NULL && a->admin)
        json_object_set_new(res, "wrap_escrow",
                            api_b64_json(d.wrap_escrow, d.wrap_escrow_len));
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "device_wraps",
              d.name, "{\"escrow\":%s}", a->admin ? "true" : "false");
    cat_device_clear(&d);
    if (res == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 200, res);
}

/* ---- status views ---- */

struct list_ctx {
    struct srv *s;
    json_t *arr;
    const char *alert; /* NULL: any */
    int64_t now;
    int migration;
};

static json_t *migration_json(struct srv *s, const struct cat_device *d,
                              int64_t now)
{
    int64_t due = d->first_backup ? d->first_backup + s->cfg.legacy_days *
                                                          86400
                                  : 0;

    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:o, "
                     "s:o}",
                     "id", d->id, "name", d->name, "category", d->category,
                     "department", dept_name_json(s, d->dept_id), "owner",
                     user_name_json(s, d->owner_id), "enrolled_at",
                     api_time_json(d->enrolled_at), "first_backup",
                     api_time_json(d->first_backup), "legacy_due",
                     api_time_json(due), "overdue",
                     due != 0 && due < now && d->legacy_cancelled_at == 0,
                     "cancelled_at", api_time_json(d->legacy_cancelled_at),
                     "cancelled_by",
                     user_name_json(s, d->legacy_cancelled_by));
}

static int list_one(void *arg, const struct cat_device *d)
{
    struct list_ctx *c = arg;
    json_t *j;

    if (c->alert != NULL && strcmp(alert_of(c->s, d, c->now), c->alert) != 0)
        return 0;
    j = c->migration ? migration_json(c->s, d, c->now)
                     : device_json(c->s, d, c->now);
    return json_array_append_new(c->arr, j) == 0 ? 0 : CAIRN_ENOMEM;
}

/* GET /api/v1/devices ?department= &category= &alert= */
static int device_list(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *dept = http_query(r, "department");
    const char *cat = http_query(r, "category");
    struct cat_device_filter f;
    struct cat_dept d;
    struct list_ctx c;
    int rc;

    memset(&f, 0, sizeof(f));
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.now = srv_now();
    c.alert = http_query(r, "alert");
    if (c.alert != NULL && strcmp(c.alert, "ok") != 0 &&
        strcmp(c.alert, "warning") != 0 && strcmp(c.alert, "critical") != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "alert is ok, warning or critical");
    if (cat != NULL && strcmp(cat, "personal") != 0 &&
        strcmp(cat, "shared") != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "category is personal or shared");
    f.category = cat;
    if (dept != NULL) {
        if ((rc = cat_dept_get(s->cat, dept, &d)) != 0)
            return api_respond_cat_error(r, rc, "department");
        f.dept_id = d.id;
    }
    if (!a->admin)
        f.owner_id = a->user_id;
    if ((c.arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_device_list(s->cat, &f, list_one, &c)) != 0) {
        json_decref(c.arr);
        return api_respond_cat_error(r, rc, "device");
    }
    /* A user with no device of their own gets [], not someone else's. */
    if (!a->admin && a->user_id == 0) {
        json_decref(c.arr);
        return http_respond_error(r, 403, "forbidden", "no user");
    }
    return http_respond_json(r, 200, c.arr);
}

/* GET /api/v1/migration */
static int migration(struct http_req *r)
{
    struct srv *s = http_srv(r);
    struct cat_device_filter f;
    struct list_ctx c;
    int rc;

    memset(&f, 0, sizeof(f));
    memset(&c, 0, sizeof(c));
    f.active_only = 1;
    c.s = s;
    c.now = srv_now();
    c.migration = 1;
    if ((c.arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_device_list(s->cat, &f, list_one, &c)) != 0) {
        json_decref(c.arr);
        return api_respond_cat_error(r, rc, "device");
    }
    return http_respond_json(r, 200, c.arr);
}

/* PATCH /api/v1/devices/{id} {"category", "department", "owner"} */
static int device_patch(struct http_req *r)
{
    static const char *const keys[] = {"category", "department", "owner",
                                       NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device d;
    struct cat_dept dept;
    struct cat_user u;
    json_t *body, *jo, *jc, *jd;
    const char *cat;
    char old_cat[16];
    int64_t old_dept, old_owner;
    int rc, locked = 0;

    memset(&d, 0, sizeof(d));
    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    jc = json_object_get(body, "category");
    jd = json_object_get(body, "department");
    jo = json_object_get(body, "owner");
    if ((jc != NULL && !json_is_string(jc)) ||
        (jd != NULL && !json_is_string(jd)) ||
        (jo != NULL && !json_is_string(jo) && !json_is_null(jo)))
        return http_respond_error(r, 400, "bad_request",
                                  "category and department are strings, "
                                  "owner a username or null");
    cat = jc ? json_string_value(jc) : NULL;
    if (cat != NULL && strcmp(cat, "personal") != 0 &&
        strcmp(cat, "shared") != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "category must be personal or shared");

    pthread_mutex_lock(&api_device_mutex);
    locked = 1;
    if ((rc = cat_device_get(s->cat, http_param(r, 0), &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        goto done;
    }
    /* For the audit record: what it was. */
    snprintf(old_cat, sizeof(old_cat), "%s", d.category);
    old_dept = d.dept_id;
    old_owner = d.owner_id;
    if (cat != NULL)
        snprintf(d.category, sizeof(d.category), "%s", cat);
    if (jd != NULL) {
        if ((rc = cat_dept_get(s->cat, json_string_value(jd), &dept)) != 0) {
            api_respond_cat_error(r, rc, "department");
            goto done;
        }
        d.dept_id = dept.id;
    }
    if (jo != NULL && json_is_string(jo)) {
        if ((rc = cat_user_get(s->cat, json_string_value(jo), &u)) != 0) {
            api_respond_cat_error(r, rc, "user");
            goto done;
        }
        if (d.owner_id != u.id) {
            /* The old owner's wrap must not open the device for them. */
            free(d.wrap_owner);
            d.wrap_owner = NULL;
            d.wrap_owner_len = 0;
        }
        d.owner_id = u.id;
        cat_user_clear(&u);
    } else if (jo != NULL) {
        d.owner_id = 0;
    }
    if (strcmp(d.category, "shared") == 0) {
        if (jo != NULL && d.owner_id != 0) {
            http_respond_error(r, 400, "bad_request",
                               "a shared device has no owner");
            goto done;
        }
        /* Shared: only administrators restore it, with the escrow key. */
        d.owner_id = 0;
        free(d.wrap_owner);
        d.wrap_owner = NULL;
        d.wrap_owner_len = 0;
    } else if (d.owner_id == 0) {
        http_respond_error(r, 400, "bad_request",
                           "a personal device needs an owner");
        goto done;
    }
    if ((rc = cat_device_update(s->cat, &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        goto done;
    }
    pthread_mutex_unlock(&api_device_mutex);
    locked = 0;
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "device_patch",
              d.name, "{\"category\":\"%s\",\"department_id\":%lld,"
              "\"owner_id\":%lld,\"was\":{\"category\":\"%s\","
              "\"department_id\":%lld,\"owner_id\":%lld}}",
              d.category, (long long)d.dept_id, (long long)d.owner_id,
              old_cat, (long long)old_dept, (long long)old_owner);
    http_respond_json(r, 200, device_json(s, &d, srv_now()));

done:
    if (locked)
        pthread_mutex_unlock(&api_device_mutex);
    cat_device_clear(&d);
    return 0;
}

/* POST /api/v1/devices/{id}/legacy-cancelled */
static int legacy_cancelled(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device d;
    json_t *res;
    int rc;

    pthread_mutex_lock(&api_device_mutex);
    if ((rc = cat_device_get(s->cat, http_param(r, 0), &d)) != 0) {
        pthread_mutex_unlock(&api_device_mutex);
        return api_respond_cat_error(r, rc, "device");
    }
    if (d.legacy_cancelled_at == 0) {
        d.legacy_cancelled_at = srv_now();
        d.legacy_cancelled_by = a->user_id;
        rc = cat_device_update(s->cat, &d);
    }
    pthread_mutex_unlock(&api_device_mutex);
    if (rc != 0) {
        cat_device_clear(&d);
        return api_respond_cat_error(r, rc, "device");
    }
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "legacy_cancelled",
              d.name, "{}");
    res = migration_json(s, &d, srv_now());
    cat_device_clear(&d);
    if (res == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 200, res);
}

/* POST /api/v1/devices/{id}/status (the device itself) */
static int device_status(struct http_req *r)
{
    static const char *const keys[] = {"phase",      "files_selected",
                                       "bytes_selected", "files_todo",
                                       "bytes_todo", "errors",
                                       "next_backup", NULL};
    static const char *const nums[] = {"files_selected", "bytes_selected",
                                       "files_todo", "bytes_todo", "errors"};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *id = http_param(r, 0), *phase = NULL;
    struct cat_device d;
    json_int_t v[5];
    json_t *body, *j;
    int64_t next = -1;
    int rc, i;

    if (strcmp(id, a->device_id) != 0)
        return http_respond_error(r, 403, "forbidden",
                                  "a device reports only its own status");
    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    if ((j = json_object_get(body, "phase")) != NULL) {
        if ((phase = json_string_value(j)) == NULL ||
            !text_valid(phase, sizeof(d.phase)))
            return http_respond_error(r, 400, "bad_request",
                                      "phase must be a word (under 32 "
                                      "bytes)");
    }
    for (i = 0; i < 5; i++) {
        v[i] = -1;
        if ((j = json_object_get(body, nums[i])) == NULL)
            continue;
        if (!json_is_integer(j) || json_integer_value(j) < 0)
            return http_respond_error(r, 400, "bad_request",
                                      "%s must be an integer >= 0", nums[i]);
        v[i] = json_integer_value(j);
    }
    /* When the agent will back up next: RFC 3339, or null (not known). */
    if ((j = json_object_get(body, "next_backup")) != NULL) {
        if (json_is_null(j))
            next = 0;
        else if (!json_is_string(j) ||
                 api_time_parse(json_string_value(j), &next) != 0 ||
                 next <= 0)
            return http_respond_error(r, 400, "bad_request",
                                      "next_backup must be an RFC 3339 time "
                                      "or null");
    }
    pthread_mutex_lock(&api_device_mutex);
    if ((rc = cat_device_get(s->cat, id, &d)) != 0) {
        pthread_mutex_unlock(&api_device_mutex);
        return api_respond_cat_error(r, rc, "device");
    }
    if (strcmp(d.state, "active") != 0) {
        pthread_mutex_unlock(&api_device_mutex);
        cat_device_clear(&d);
        return http_respond_error(r, 403, "forbidden",
                                  "this device was replaced");
    }
    if (phase != NULL)
        snprintf(d.phase, sizeof(d.phase), "%s", phase);
    if (v[0] >= 0)
        d.files_selected = v[0];
    if (v[1] >= 0)
        d.bytes_selected = v[1];
    if (v[2] >= 0)
        d.files_todo = v[2];
    if (v[3] >= 0)
        d.bytes_todo = v[3];
    if (v[4] >= 0)
        d.errors = v[4];
    if (next >= 0)
        d.next_backup = next;
    d.last_activity = srv_now();
    rc = cat_device_update(s->cat, &d);
    pthread_mutex_unlock(&api_device_mutex);
    cat_device_clear(&d);
    if (rc != 0)
        return api_respond_cat_error(r, rc, "device");
    return http_respond_empty(r, 204);
}

const struct http_route api_device_routes[] = {
    {"POST", "/api/v1/devices", HTTP_USER, 64 * 1024, enrol, NULL},
    {"GET", "/api/v1/devices", HTTP_USER, 0, device_list, NULL},
    {"GET", "/api/v1/devices/{}/wraps", HTTP_USER, 0, wraps, NULL},
    {"PATCH", "/api/v1/devices/{}", HTTP_ADMIN, 4096, device_patch, NULL},
    {"POST", "/api/v1/devices/{}/legacy-cancelled", HTTP_ADMIN, 1024,
     legacy_cancelled, NULL},
    {"GET", "/api/v1/migration", HTTP_ADMIN, 0, migration, NULL},
    {"POST", "/api/v1/devices/{}/status", HTTP_DEVICE, 4096, device_status,
     NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
