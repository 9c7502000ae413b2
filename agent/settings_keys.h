/*
 * settings_keys.h - the agent's setting keys, their types and bounds, and
 * the check of one value (docs/AGENT.md).  The one list both sides use:
 * cairn-agent when it reads its file (config.c) and cairnd when an
 * administrator sets pushed settings (server/api_settings.c).
 *
 * Header-only on purpose: cairnd does not link the agent's library and the
 * agent does not link the server's, yet a key the server accepts must be a
 * key the agent understands, with the same type and bounds.  A header both
 * include is the smallest shared place; it holds no state and needs only
 * jansson, which both already use.
 */
#ifndef CAIRN_AGENT_SETTINGS_KEYS_H
#define CAIRN_AGENT_SETTINGS_KEYS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum agent_setting_type {
    AGENT_SETTING_PATHS,    /* array of absolute paths */
    AGENT_SETTING_PATTERNS, /* array of exclude patterns */
    AGENT_SETTING_BOOL,
    AGENT_SETTING_INT,      /* integer in [min, max] */
    AGENT_SETTING_HHMM,     /* "HH:MM", local time of day */
};

struct agent_setting_key {
    const char *name;
    int type;           /* enum agent_setting_type */
    int64_t min, max;   /* AGENT_SETTING_INT */
    int pushable;       /* the server may set it */
};

/* Most entries in a list setting, and longest entry (bytes). */
#define AGENT_SETTING_LIST_MAX 4096
#define AGENT_SETTING_ENTRY_MAX 4095

/* The keys, in the order docs/AGENT.md lists them; *out_n entries. */
static inline const struct agent_setting_key *
agent_setting_keys(size_t *out_n)
{
    static const struct agent_setting_key keys[] = {
        {"paths", AGENT_SETTING_PATHS, 0, 0, 1},
        {"exclude", AGENT_SETTING_PATTERNS, 0, 0, 1},
        {"default_excludes", AGENT_SETTING_BOOL, 0, 1, 1},
        {"exclude_caches", AGENT_SETTING_BOOL, 0, 1, 1},
        {"frequency", AGENT_SETTING_INT, 0, 7 * 86400, 1},
        {"settle", AGENT_SETTING_INT, 0, 3600, 1},
        {"verify_at", AGENT_SETTING_HHMM, 0, 0, 1},
        {"bandwidth_limit", AGENT_SETTING_INT, 0, INT64_C(1) << 40, 1},
        {"cpu_share", AGENT_SETTING_INT, 1, 100, 1},
        /* Set on the computer (cairn status --pause), never pushed. */
        {"pause_until", AGENT_SETTING_INT, 0, INT64_C(253402300799), 0},
    };

    *out_n = sizeof(keys) / sizeof(keys[0]);
    return keys;
}

/* The key named name, or NULL. */
static inline const struct agent_setting_key *
agent_setting_find(const char *name)
{
    const struct agent_setting_key *k;
    size_t n, i;

    k = agent_setting_keys(&n);
    for (i = 0; i < n; i++)
        if (strcmp(k[i].name, name) == 0)
            return &k[i];
    return NULL;
}

/* Parse "HH:MM" (two digits each, 00:00 to 23:59): 0, else -1. */
static inline int agent_setting_parse_hhmm(const char *s, int *out_h,
                                           int *out_m)
{
    int h, m;

    if (s == NULL || strlen(s) != 5 || s[2] != ':')
        return -1;
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
        s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
        return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23 || m > 59)
        return -1;
    *out_h = h;
    *out_m = m;
    return 0;
}

/* One entry of a list: 1..AGENT_SETTING_ENTRY_MAX bytes, no control
 * characters; a path starts with '/'; a pattern is not made of '/' alone. */
static inline int agent_setting_entry_ok(const char *s, int type)
{
    size_t len = strlen(s), i;

    if (len == 0 || len > AGENT_SETTING_ENTRY_MAX)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    if (type == AGENT_SETTING_PATHS)
        return s[0] == '/';
    return strspn(s, "/") != len;
}

/*
 * Check v as the value of key k.  0 if it is valid; else -1 and why (whylen
 * bytes, NUL-terminated if whylen > 0) says what is wrong, naming the key.
 * Thread safe.
 */
static inline int agent_setting_check(const struct agent_setting_key *k,
                                      const json_t *v, char *why,
                                      size_t whylen)
{
    const json_t *e;
    size_t i;
    int h, m;

    switch (k->type) {
    case AGENT_SETTING_PATHS:
    case AGENT_SETTING_PATTERNS:
        if (!json_is_array(v)) {
            snprintf(why, whylen, "%s must be an array of strings", k->name);
            return -1;
        }
        if (json_array_size(v) > AGENT_SETTING_LIST_MAX) {
            snprintf(why, whylen, "%s has more than %d entries", k->name,
                     AGENT_SETTING_LIST_MAX);
            return -1;
        }
        for (i = 0; i < json_array_size(v); i++) {
            e = json_array_get(v, i);
            if (!json_is_string(e) ||
                strlen(json_string_value(e)) != json_string_length(e) ||
                !agent_setting_entry_ok(json_string_value(e), k->type)) {
                snprintf(why, whylen,
                         k->type == AGENT_SETTING_PATHS
                             ? "%s[%zu] must be an absolute path (a string "
                               "starting with '/', no control characters)"
                             : "%s[%zu] must be a non-empty pattern (a "
                               "string without control characters)",
                         k->name, i);
                return -1;
            }
        }
        return 0;
    case AGENT_SETTING_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(why, whylen, "%s must be true or false", k->name);
            return -1;
        }
        return 0;
    case AGENT_SETTING_INT:
        if (!json_is_integer(v) || json_integer_value(v) < k->min ||
            json_integer_value(v) > k->max) {
            snprintf(why, whylen, "%s must be an integer from %lld to %lld",
                     k->name, (long long)k->min, (long long)k->max);
            return -1;
        }
        return 0;
    case AGENT_SETTING_HHMM:
        if (!json_is_string(v) ||
            agent_setting_parse_hhmm(json_string_value(v), &h, &m) != 0) {
            snprintf(why, whylen,
                     "%s must be a local time of day \"HH:MM\" (00:00 to "
                     "23:59)",
                     k->name);
            return -1;
        }
        return 0;
    default:
        snprintf(why, whylen, "%s: unknown type", k->name);
        return -1;
    }
}

#endif
