/*
 * config.c - cairn-agent's configuration (config.h, docs/AGENT.md).
 *
 * Every key goes through the one table of settings_keys.h, so the file, the
 * server's pushed settings and cairnd's own check agree on names, types and
 * bounds.  A value is checked there first and then stored by apply(), which
 * may therefore trust it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/err.h"
#include "config.h"
#include "settings_keys.h"

#define CONFIG_FILE_MAX (1u << 20)

/*
 * Caches, temporary files, virtual-machine images and cloud-sync folders.
 * Patterns without '/' match one path component anywhere; with '/', a
 * relative pattern matches at any depth; a trailing '/' means directories
 * only (docs/CLI.md, "Exclude patterns").
 */
const char *const agent_default_excludes[] = {
    /* caches */
    ".cache/",
    "Cache/",
    "Caches/",
    "cache2/",
    "Library/Caches/",
    "AppData/Local/Temp/",
    "AppData/Local/Microsoft/Windows/INetCache/",
    ".thumbnails/",
    "Thumbs.db",
    ".DS_Store",
    "__pycache__/",
    ".Trash-*/",
    ".local/share/Trash/",
    /* temporary files and editors' lock files */
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.swo",
    "*~",
    "~$*",
    ".~lock.*",
    "*.part",
    "*.crdownload",
    /* virtual-machine and disk images */
    "*.vmdk",
    "*.vdi",
    "*.qcow2",
    "*.vhd",
    "*.vhdx",
    "*.vmem",
    "*.vmsn",
    /* cloud-sync folders: their content lives elsewhere already */
    "Dropbox/",
    ".dropbox/",
    ".dropbox.cache/",
    "OneDrive/",
    "OneDrive - */",
    "Google Drive/",
    "My Drive/",
    "iCloud Drive/",
    "iCloudDrive/",
    "Library/Mobile Documents/",
    "Library/CloudStorage/",
    NULL,
};

/* ---- values ---- */

static void free_list(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* A checked JSON array of strings as a malloc'ed list. */
static int list_from_json(const json_t *a, char ***out, size_t *out_n)
{
    size_t n = json_array_size(a), i;
    char **v;

    *out = NULL;
    *out_n = 0;
    if (n == 0)
        return 0;
    if ((v = calloc(n, sizeof(*v))) == NULL)
        return CAIRN_ENOMEM;
    for (i = 0; i < n; i++) {
        if ((v[i] = strdup(json_string_value(json_array_get(a, i)))) ==
            NULL) {
            free_list(v, i);
            return CAIRN_ENOMEM;
        }
    }
    *out = v;
    *out_n = n;
    return 0;
}

static json_t *list_to_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Store the checked value v of key number i into cfg (replacing a list). */
static int apply(struct agent_config *cfg, size_t i, const json_t *v)
{
    const struct agent_setting_key *keys;
    char **list;
    size_t n;
    int rc;

    keys = agent_setting_keys(&n);
    if (i >= n)
        return CAIRN_EINVAL;
    if (strcmp(keys[i].name, "paths") == 0 ||
        strcmp(keys[i].name, "exclude") == 0) {
        if ((rc = list_from_json(v, &list, &n)) != 0)
            return rc;
        if (keys[i].name[0] == 'p') {
            free_list(cfg->paths, cfg->npaths);
            cfg->paths = list;
            cfg->npaths = n;
        } else {
            free_list(cfg->exclude, cfg->nexclude);
            cfg->exclude = list;
            cfg->nexclude = n;
        }
    } else if (strcmp(keys[i].name, "default_excludes") == 0) {
        cfg->default_excludes = json_is_true(v);
    } else if (strcmp(keys[i].name, "exclude_caches") == 0) {
        cfg->exclude_caches = json_is_true(v);
    } else if (strcmp(keys[i].name, "frequency") == 0) {
        cfg->frequency = json_integer_value(v);
    } else if (strcmp(keys[i].name, "settle") == 0) {
        cfg->settle = json_integer_value(v);
    } else if (strcmp(keys[i].name, "verify_at") == 0) {
        if (agent_setting_parse_hhmm(json_string_value(v), &cfg->verify_hour,
                                     &cfg->verify_min) != 0)
            return CAIRN_EINVAL;
    } else if (strcmp(keys[i].name, "bandwidth_limit") == 0) {
        cfg->bandwidth_limit = json_integer_value(v);
    } else if (strcmp(keys[i].name, "cpu_share") == 0) {
        cfg->cpu_share = (int)json_integer_value(v);
    } else if (strcmp(keys[i].name, "pause_until") == 0) {
        cfg->pause_until = json_integer_value(v);
    } else {
        return CAIRN_EINVAL;
    }
    return 0;
}

/* Key number i of cfg as JSON (new reference; NULL when out of memory). */
static json_t *value_json(const struct agent_config *cfg, size_t i)
{
    const struct agent_setting_key *keys;
    char hhmm[8];
    size_t n;
    const char *name;

    keys = agent_setting_keys(&n);
    name = keys[i].name;
    if (strcmp(name, "paths") == 0)
        return list_to_json(cfg->paths, cfg->npaths);
    if (strcmp(name, "exclude") == 0)
        return list_to_json(cfg->exclude, cfg->nexclude);
    if (strcmp(name, "default_excludes") == 0)
        return json_boolean(cfg->default_excludes);
    if (strcmp(name, "exclude_caches") == 0)
        return json_boolean(cfg->exclude_caches);
    if (strcmp(name, "frequency") == 0)
        return json_integer(cfg->frequency);
    if (strcmp(name, "settle") == 0)
        return json_integer(cfg->settle);
    if (strcmp(name, "verify_at") == 0) {
        snprintf(hhmm, sizeof(hhmm), "%02d:%02d", cfg->verify_hour % 100,
                 cfg->verify_min % 100);
        return json_string(hhmm);
    }
    if (strcmp(name, "bandwidth_limit") == 0)
        return json_integer(cfg->bandwidth_limit);
    if (strcmp(name, "cpu_share") == 0)
        return json_integer(cfg->cpu_share);
    if (strcmp(name, "pause_until") == 0)
        return json_integer(cfg->pause_until);
    return NULL;
}

/* The number of key name in the table, or -1. */
static int key_index(const char *name)
{
    const struct agent_setting_key *keys, *k;
    size_t n;

    keys = agent_setting_keys(&n);
    if ((k = agent_setting_find(name)) == NULL)
        return -1;
    return (int)(k - keys);
}

/* ---- the file ---- */

void agent_config_defaults(struct agent_config *out)
{
    memset(out, 0, sizeof(*out));
    out->default_excludes = 1;
    out->exclude_caches = 1;
    out->frequency = AGENT_CFG_FREQUENCY_DEFAULT;
    out->settle = AGENT_CFG_SETTLE_DEFAULT;
    out->verify_hour = AGENT_CFG_VERIFY_HOUR_DEFAULT;
    out->verify_min = 0;
    out->cpu_share = AGENT_CFG_CPU_SHARE_DEFAULT;
}

void agent_config_clear(struct agent_config *cfg)
{
    if (cfg == NULL)
        return;
    free_list(cfg->paths, cfg->npaths);
    free_list(cfg->exclude, cfg->nexclude);
    agent_config_defaults(cfg);
}

/* Apply every key of object o (checked against the table); set the bits of
 * the keys given in *io_set.  EINVAL with why. */
static int apply_object(struct agent_config *cfg, const json_t *o,
                        int pushed_only, unsigned *io_set, char *why,
                        size_t whylen)
{
    const struct agent_setting_key *k;
    const char *name;
    json_t *v;
    int rc, i;

    json_object_foreach((json_t *)o, name, v)
    {
        if ((k = agent_setting_find(name)) == NULL) {
            snprintf(why, whylen, "unknown key \"%s\"", name);
            return CAIRN_EINVAL;
        }
        if (pushed_only && !k->pushable) {
            snprintf(why, whylen, "%s is set on the computer only", name);
            return CAIRN_EINVAL;
        }
        if (agent_setting_check(k, v, why, whylen) != 0)
            return CAIRN_EINVAL;
        i = key_index(name);
        if ((rc = apply(cfg, (size_t)i, v)) != 0)
            return rc;
        *io_set |= 1u << i;
    }
    return 0;
}

/*
 * Parse text into *out: defaults, then the file's keys.  The JSON decoder
 * refuses duplicate keys, so a key given twice is an error, not a silent
 * choice of one.
 */
int agent_config_parse(const char *text, size_t len, struct agent_config *out,
                       char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *o;
    int rc;

    agent_config_defaults(out);
    if (whylen > 0)
        why[0] = '\0';
    if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        snprintf(why, whylen, "not valid JSON: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (!json_is_object(o)) {
        snprintf(why, whylen, "the configuration must be a JSON object");
        rc = CAIRN_EINVAL;
        goto err1;
    }
    if ((rc = apply_object(out, o, 0, &out->set, why, whylen)) != 0)
        goto err2;
    json_decref(o);

    /* Success! */
    return 0;

err2:
    agent_config_clear(out);
err1:
    json_decref(o);
err0:
    return rc;
}

int agent_config_load(const char *path, struct agent_config *out, char *why,
                      size_t whylen)
{
    struct stat sb;
    char *buf;
    size_t got = 0;
    ssize_t n;
    int fd, rc;

    agent_config_defaults(out);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = cairn_err_from_errno(errno);
        snprintf(why, whylen, "cannot open %s: %s", path, strerror(errno));
        goto err0;
    }
    if (fstat(fd, &sb) != 0) {
        rc = cairn_err_from_errno(errno);
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        goto err1;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)CONFIG_FILE_MAX) {
        rc = CAIRN_ERANGE;
        snprintf(why, whylen, "%s is not a regular file of at most 1 MiB",
                 path);
        goto err1;
    }
    if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        snprintf(why, whylen, "out of memory");
        goto err1;
    }
    while (got < (size_t)sb.st_size) {
        n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cairn_err_from_errno(errno);
            snprintf(why, whylen, "cannot read %s: %s", path,
                     strerror(errno));
            goto err2;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if ((rc = agent_config_parse(buf, got, out, why, whylen)) != 0)
        goto err2;
    free(buf);
    close(fd);

    /* Success! */
    return 0;

err2:
    free(buf);
err1:
    close(fd);
err0:
    return rc;
}

json_t *agent_config_to_json(const struct agent_config *cfg)
{
    const struct agent_setting_key *keys;
    json_t *o, *v;
    size_t n, i;

    keys = agent_setting_keys(&n);
    if ((o = json_object()) == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        if ((v = value_json(cfg, i)) == NULL ||
            json_object_set_new(o, keys[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- merging with the server's settings ---- */

/* Check the server's object: {"settings": {...}, "locked": [...]}, other
 * members ignored (the answer also names the device and department).
 * Returns the locked bits in *out_locked.  EINVAL with why. */
static int server_check(const json_t *server, const json_t **out_settings,
                        unsigned *out_locked, char *why, size_t whylen)
{
    const struct agent_setting_key *k;
    const json_t *settings, *locked, *e;
    size_t i;

    *out_settings = NULL;
    *out_locked = 0;
    if (!json_is_object(server)) {
        snprintf(why, whylen, "the server's settings are not a JSON object");
        return CAIRN_EINVAL;
    }
    settings = json_object_get(server, "settings");
    locked = json_object_get(server, "locked");
    if (settings != NULL && !json_is_object(settings)) {
        snprintf(why, whylen, "the server's \"settings\" is not an object");
        return CAIRN_EINVAL;
    }
    if (locked != NULL && !json_is_array(locked)) {
        snprintf(why, whylen, "the server's \"locked\" is not an array");
        return CAIRN_EINVAL;
    }
    for (i = 0; i < json_array_size(locked); i++) {
        e = json_array_get(locked, i);
        if (!json_is_string(e)) {
            snprintf(why, whylen, "the server's \"locked\" holds a "
                                  "non-string");
            return CAIRN_EINVAL;
        }
        if ((k = agent_setting_find(json_string_value(e))) == NULL ||
            !k->pushable) {
            snprintf(why, whylen, "the server locks %s key (%s)",
                     k == NULL ? "an unknown" : "a computer's own",
                     json_string_value(e));
            return CAIRN_EINVAL;
        }
        *out_locked |= 1u << key_index(k->name);
    }
    *out_settings = settings;
    return 0;
}

int agent_config_merge(const struct agent_config *local, const json_t *server,
                       struct agent_config *out, char *why, size_t whylen)
{
    const struct agent_setting_key *keys;
    const json_t *settings = NULL, *sv;
    struct agent_config pushed;
    unsigned locked = 0, pushed_set = 0, bit;
    json_t *lv;
    size_t n, i;
    int rc;

    agent_config_defaults(out);
    agent_config_defaults(&pushed);
    if (whylen > 0)
        why[0] = '\0';
    keys = agent_setting_keys(&n);
    if (server != NULL) {
        if ((rc = server_check(server, &settings, &locked, why, whylen)) != 0)
            goto err0;
        /* Check every pushed value before using any. */
        if (settings != NULL &&
            (rc = apply_object(&pushed, settings, 1, &pushed_set, why,
                               whylen)) != 0)
            goto err1;
    }
    for (i = 0; i < n; i++) {
        bit = 1u << i;
        sv = settings != NULL ? json_object_get(settings, keys[i].name)
                              : NULL;
        if (locked & bit) {
            /* Locked: the server's value, or the default if it gave none. */
            if (sv != NULL && (rc = apply(out, i, sv)) != 0)
                goto err2;
            continue;
        }
        if (local->set & bit) {
            if ((lv = value_json(local, i)) == NULL) {
                rc = CAIRN_ENOMEM;
                goto err2;
            }
            rc = apply(out, i, lv);
            json_decref(lv);
            if (rc != 0)
                goto err2;
        } else if (sv != NULL && (rc = apply(out, i, sv)) != 0) {
            goto err2;
        }
    }
    out->set = local->set | pushed_set;
    out->locked = locked;
    agent_config_clear(&pushed);

    /* Success! */
    return 0;

err2:
    agent_config_clear(out);
err1:
    agent_config_clear(&pushed);
err0:
    if (rc == CAIRN_ENOMEM)
        snprintf(why, whylen, "out of memory");
    return rc;
}

int agent_config_patterns(const struct agent_config *cfg,
                          int (*fn)(void *arg, const char *pattern),
                          void *arg)
{
    size_t i;
    int rc;

    if (cfg->default_excludes)
        for (i = 0; agent_default_excludes[i] != NULL; i++)
            if ((rc = fn(arg, agent_default_excludes[i])) != 0)
                return rc;
    for (i = 0; i < cfg->nexclude; i++)
        if ((rc = fn(arg, cfg->exclude[i])) != 0)
            return rc;
    return 0;
}

/* ---- the verification scan ---- */

/* The verification time on the day of *day (local), day_offset days on. */
static time_t at_time(const struct agent_config *cfg, const struct tm *day,
                      int day_offset)
{
    struct tm tm = *day;

    tm.tm_mday += day_offset;
    tm.tm_hour = cfg->verify_hour;
    tm.tm_min = cfg->verify_min;
    tm.tm_sec = 0;
    tm.tm_isdst = -1; /* let mktime say, for the day in question */
    return mktime(&tm);
}

time_t agent_next_verify(const struct agent_config *cfg, time_t last_run,
                         time_t now)
{
    struct tm today;
    time_t recent, next;

    if (localtime_r(&now, &today) == NULL)
        return now;
    /* The most recent verification time at or before now, and the next
     * one after it. */
    recent = at_time(cfg, &today, 0);
    if (recent == (time_t)-1)
        return now;
    if (recent <= now) {
        next = at_time(cfg, &today, 1);
    } else {
        next = recent;
        recent = at_time(cfg, &today, -1);
    }
    /* Missed (asleep, switched off, or never run): due now. */
    if (last_run < recent || next == (time_t)-1)
        return now;
    return next;
}
