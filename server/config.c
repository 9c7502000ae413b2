/*
 * config.c - cairnd's config file: one JSON object whose keys are the
 * fields of struct srv_config (docs/SERVER.md).  Defaults first; a key the
 * file does not name keeps its default.  Unknown keys, wrong types and
 * values out of range are errors naming the key, so a typo never turns
 * into a silent default.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"
#include "srv.h"

static void defaults(struct srv_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen_addr, sizeof(c->listen_addr), "127.0.0.1");
    c->listen_port = 8443;
    snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/cairnd");
    c->log_level = SRV_LOG_INFO;
    c->threads = 4;
    c->session_idle_secs = 1800;
    c->session_max_secs = 43200;
    c->alert_warning_days = 3;
    c->alert_critical_days = 5;
    c->legacy_days = 60;
    c->lockout_slow_after = 5;
    c->lockout_lock_after = 10;
    c->lockout_lock_secs = 900;
    c->max_pack_bytes = (uint64_t)1 << 30;
    c->download_max_bytes = (uint64_t)10 << 30;
    c->escrow_unlock_secs = 900;
}

enum kind { K_STR, K_INT, K_LEVEL };

struct key {
    const char *name;
    enum kind kind;
    size_t off;  /* in struct srv_config */
    size_t size; /* K_STR: buffer size; K_INT: field size */
    int is_signed;
    int64_t min, max;
};

#define STR(f) {#f, K_STR, offsetof(struct srv_config, f),                    \
                 sizeof(((struct srv_config *)0)->f), 0, 0, 0}
#define INT(f, s, lo, hi) {#f, K_INT, offsetof(struct srv_config, f),          \
                           sizeof(((struct srv_config *)0)->f), s, lo, hi}

static const struct key keys[] = {
    STR(listen_addr),
    INT(listen_port, 0, 0, 65535),
    STR(state_dir),
    STR(tls_cert),
    STR(tls_key),
    {"log_level", K_LEVEL, offsetof(struct srv_config, log_level), 0, 0, 0, 0},
    INT(threads, 0, 0, 256),
    INT(session_idle_secs, 1, 60, INT64_MAX / 2),
    INT(session_max_secs, 1, 60, INT64_MAX / 2),
    INT(alert_warning_days, 1, 1, 36500),
    INT(alert_critical_days, 1, 1, 36500),
    INT(legacy_days, 1, 0, 36500),
    INT(lockout_slow_after, 1, 1, 1000000),
    INT(lockout_lock_after, 1, 1, 1000000),
    INT(lockout_lock_secs, 1, 0, 100000000),
    INT(max_pack_bytes, 0, 4096, INT64_MAX),
    INT(download_max_bytes, 0, 0, INT64_MAX),
    INT(escrow_unlock_secs, 1, 60, 86400),
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void set_int(const struct key *k, struct srv_config *c, int64_t v)
{
    char *p = (char *)c + k->off;

    switch (k->size) {
    case sizeof(int32_t):
        if (k->is_signed)
            *(int32_t *)(void *)p = (int32_t)v;
        else
            *(uint32_t *)(void *)p = (uint32_t)v;
        break;
    default:
        if (k->is_signed)
            *(int64_t *)(void *)p = v;
        else
            *(uint64_t *)(void *)p = (uint64_t)v;
        break;
    }
}

static int apply(const struct key *k, json_t *v, struct srv_config *c,
                 char *errbuf, size_t errlen)
{
    const char *s;
    int64_t n;
    int i;

    switch (k->kind) {
    case K_STR:
        if (!json_is_string(v)) {
            snprintf(errbuf, errlen, "\"%s\" must be a string", k->name);
            return CAIRN_EINVAL;
        }
        s = json_string_value(v);
        if (json_string_length(v) >= k->size || strlen(s) != json_string_length(v)) {
            snprintf(errbuf, errlen, "\"%s\" is too long or holds a NUL",
                     k->name);
            return CAIRN_EINVAL;
        }
        memcpy((char *)c + k->off, s, strlen(s) + 1);
        return 0;
    case K_LEVEL:
        if (json_is_string(v))
            for (i = 0; i < 4; i++)
                if (strcmp(json_string_value(v), level_names[i]) == 0) {
                    c->log_level = i;
                    return 0;
                }
        snprintf(errbuf, errlen,
                 "\"log_level\" must be one of \"error\", \"warn\", \"info\", "
                 "\"debug\"");
        return CAIRN_EINVAL;
    case K_INT:
        if (!json_is_integer(v)) {
            snprintf(errbuf, errlen, "\"%s\" must be an integer", k->name);
            return CAIRN_EINVAL;
        }
        n = (int64_t)json_integer_value(v);
        if (n < k->min || n > k->max) {
            snprintf(errbuf, errlen,
                     "\"%s\" is out of range (%lld to %lld)", k->name,
                     (long long)k->min, (long long)k->max);
            return CAIRN_EINVAL;
        }
        set_int(k, c, n);
        return 0;
    }
    return CAIRN_EINVAL;
}

/*
 * Fill *out with the defaults, then the keys of the JSON object in the
 * file at path (NULL: defaults only).  On error (CAIRN_ENOENT: no file,
 * CAIRN_EINVAL: malformed, unknown key, wrong type, out of range) errbuf
 * says what, naming the file and the key.
 */
int srv_config_load(const char *path, struct srv_config *out, char *errbuf,
                    size_t errlen)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *name;
    char msg[256];
    size_t i;
    int rc = 0;

    defaults(out);
    if (errlen > 0)
        errbuf[0] = '\0';
    if (path == NULL)
        return 0;
    if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        if (json_error_code(&jerr) == json_error_cannot_open_file) {
            snprintf(errbuf, errlen, "cannot read %s: %s", path, jerr.text);
            return CAIRN_ENOENT;
        }
        snprintf(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                 jerr.text);
        return CAIRN_EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "%s: the config must be a JSON object", path);
        rc = CAIRN_EINVAL;
        goto out;
    }
    json_object_foreach(root, name, v) {
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (strcmp(keys[i].name, name) == 0)
                break;
        if (i == sizeof(keys) / sizeof(keys[0])) {
            snprintf(errbuf, errlen, "%s: unknown key \"%.64s\"", path, name);
            rc = CAIRN_EINVAL;
            goto out;
        }
        if ((rc = apply(&keys[i], v, out, msg, sizeof(msg))) != 0) {
            snprintf(errbuf, errlen, "%s: %s", path, msg);
            goto out;
        }
    }
    if ((out->tls_cert[0] == '\0') != (out->tls_key[0] == '\0')) {
        snprintf(errbuf, errlen,
                 "%s: \"tls_cert\" and \"tls_key\" go together", path);
        rc = CAIRN_EINVAL;
    } else if (out->alert_critical_days < out->alert_warning_days) {
        snprintf(errbuf, errlen,
                 "%s: \"alert_critical_days\" is less than "
                 "\"alert_warning_days\"",
                 path);
        rc = CAIRN_EINVAL;
    }
out:
    json_decref(root);
    return rc;
}
