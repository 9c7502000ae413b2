/*
 * cli_util.c - errors, exit codes, opening the archive, formatting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/store.h"
#include "cli.h"

__attribute__((format(printf, 3, 0))) static void
vreport(struct cli *c, const char *kind, const char *fmt, va_list ap)
{
    char msg[2048];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    fprintf(stderr, "cairn: %s%s\n", kind, msg);
    if (c != NULL && c->json && strcmp(kind, "error: ") == 0)
        cli_json_emit(json_pack("{s:s, s:o}", "message_type", "error",
                                "error", cli_json_str(msg)));
}

void cli_error(struct cli *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, "error: ", fmt, ap);
    va_end(ap);
}

void cli_error_text(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(NULL, "error: ", fmt, ap);
    va_end(ap);
}

void cli_warn(struct cli *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, "warning: ", fmt, ap);
    va_end(ap);
}

int cli_usage(struct cli *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(c, "usage: ", fmt, ap);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_exit_for(int rc)
{
    switch (rc) {
    case 0:
        return EXIT_OK;
    case CAIRN_EAUTH:
        return EXIT_AUTH;
    case CAIRN_ELOCKED:
        return EXIT_LOCKED;
    case CAIRN_ECORRUPT:
        return EXIT_DAMAGE;
    default:
        return EXIT_ERROR;
    }
}

/* Load the index of a freshly opened archive (messages handled). */
static int load_index_of(struct cli *c, struct cairn_repo **r)
{
    uint32_t bad = 0;
    int rc;

    if ((rc = cairn_repo_load_index(*r, &bad)) != 0) {
        cli_error(c, "cannot load the archive's index: %s",
                  cairn_strerror(rc));
        cairn_repo_free(*r);
        *r = NULL;
        return cli_exit_for(rc);
    }
    if (bad > 0)
        cli_warn(c,
                 "%u index object(s) are damaged and were skipped; run "
                 "`cairn check`",
                 bad);
    return EXIT_OK;
}

/*
 * Without -r: this computer's archive on the server it is enrolled with
 * (the device file), opened with the device's own key.
 */
static int open_server_repo(struct cli *c, int load_index,
                            struct cairn_repo **out)
{
    struct cairn_http_opts ho;
    struct cli_device *d = NULL;
    struct cairn_store *st = NULL;
    int rc, x;

    if ((x = cli_device_load(c, &d)) != EXIT_OK) {
        if (x == EXIT_NOREPO)
            cli_error(c, "no archive given: use -r DIR or set "
                         "CAIRN_REPOSITORY, or enrol this computer with a "
                         "server (cairn enrol)");
        return x == EXIT_NOREPO ? EXIT_USAGE : x;
    }
    memset(&ho, 0, sizeof(ho));
    ho.base_url = d->server;
    ho.device_id = d->device_id;
    ho.token = d->token;
    ho.pin = d->pin;
    if ((rc = cairn_store_http_open(&ho, &st)) != 0) {
        cli_error(c, "cannot reach the archive of device %s at %s: %s",
                  d->device_id, d->server, cairn_strerror(rc));
        cli_device_free(d);
        return cli_exit_for(rc);
    }
    if ((rc = cairn_repo_open_key(st, d->key, d->archive_id, out)) != 0) {
        cairn_store_free(st);
        if (rc == CAIRN_ENOENT)
            cli_error(c, "the server %s has no archive for device %s",
                      d->server, d->device_id);
        else if (rc == CAIRN_EAUTH)
            cli_error(c, "the archive of device %s at %s does not open with "
                         "this computer's key (the device file %s belongs "
                         "to another archive)",
                      d->device_id, d->server, d->path);
        else if (rc == CAIRN_EPERM)
            cli_error(c, "the server %s refused this device's token (device "
                         "%s): was it replaced or removed?",
                      d->server, d->device_id);
        else
            cli_error(c, "cannot open the archive of device %s at %s: %s",
                      d->device_id, d->server, cairn_strerror(rc));
        cli_device_free(d);
        return rc == CAIRN_ENOENT ? EXIT_NOREPO
               : rc == CAIRN_EPERM ? EXIT_AUTH
                                   : cli_exit_for(rc);
    }
    cli_device_free(c->device);
    c->device = d;
    if (load_index)
        return load_index_of(c, out);
    return EXIT_OK;
}

int cli_open_repo(struct cli *c, int load_index, struct cairn_repo **out)
{
    struct cairn_store *st;
    char *pass = NULL;
    size_t plen = 0;
    int rc, x;

    if (c->remote_device != NULL)
        return cli_remote_open(c, load_index, out);
    if (c->repo == NULL || c->repo[0] == '\0')
        return open_server_repo(c, load_index, out);
    if ((rc = cairn_store_dir_open(c->repo, 0, &st)) != 0) {
        if (rc == CAIRN_ENOENT) {
            cli_error(c, "there is no archive at %s", c->repo);
            return EXIT_NOREPO;
        }
        cli_error(c, "cannot open the archive at %s: %s", c->repo,
                  cairn_strerror(rc));
        return cli_exit_for(rc);
    }
    if ((x = cli_password(c, 0, &pass, &plen)) != EXIT_OK) {
        cairn_store_free(st);
        return x;
    }
    rc = cairn_repo_open(st, pass, plen, out);
    cli_secret_free(pass, plen);
    if (rc != 0) {
        cairn_store_free(st);
        if (rc == CAIRN_EAUTH)
            cli_error(c, "wrong passphrase: no key file of the archive at %s "
                         "opens with it",
                      c->repo);
        else if (rc == CAIRN_ENOENT)
            cli_error(c, "there is no archive at %s", c->repo);
        else
            cli_error(c, "cannot open the archive at %s: %s", c->repo,
                      cairn_strerror(rc));
        return rc == CAIRN_ENOENT ? EXIT_NOREPO : cli_exit_for(rc);
    }
    if (load_index)
        return load_index_of(c, out);
    return EXIT_OK;
}

void cli_json_emit(json_t *obj)
{
    char *s;

    if (obj == NULL)
        return;
    if ((s = json_dumps(obj, JSON_COMPACT)) != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
    json_decref(obj);
}

void cli_fmt_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;

    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

void cli_fmt_time(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void cli_fmt_time_rfc3339(int64_t ns, char *buf, size_t len)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    time_t t;
    struct tm tm;
    char base[32];

    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    t = (time_t)sec;
    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%09lldZ", base, (long long)frac);
}

void cli_hex(const uint8_t *id, char out[65])
{
    cairn_hex_encode(id, 32, out);
}

int cli_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default:
        return -1;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

int cli_find_snapshot(struct cli *c, struct cairn_repo *r, const char *spec,
                      struct cairn_snapshot **out)
{
    int rc = cairn_repo_find_snapshot(r, spec, out);

    switch (rc) {
    case 0:
        return EXIT_OK;
    case CAIRN_ENOENT:
        cli_error(c, "no snapshot %s in the archive", spec);
        return EXIT_ERROR;
    case CAIRN_EAMBIGUOUS:
        cli_error(c, "%s matches more than one snapshot; give more digits",
                  spec);
        return EXIT_ERROR;
    case CAIRN_EINVAL:
        cli_error(c, "'%s' is not a snapshot id (hex digits, at least 4) or "
                     "'latest'",
                  spec);
        return EXIT_USAGE;
    default:
        cli_error(c, "snapshot %s: %s", spec, cairn_strerror(rc));
        return cli_exit_for(rc);
    }
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    size_t n, i;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

int cli_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;

    while (*p) {
        if ((n = utf8_seq(p)) == 0)
            return 0;
        p += n;
    }
    return 1;
}

json_t *cli_json_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    json_t *j;
    char *out, *q;
    size_t n;

    if (s == NULL)
        return json_null();
    if (cli_utf8_valid(s))
        return json_string(s);
    /* File names are bytes: show invalid ones as U+FFFD. */
    if ((out = malloc(strlen(s) * 3 + 1)) == NULL)
        return json_null();
    for (q = out; *p;) {
        if ((n = utf8_seq(p)) == 0) {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            p++;
            continue;
        }
        memcpy(q, p, n);
        q += n;
        p += n;
    }
    *q = '\0';
    j = json_string(out);
    free(out);
    return j;
}

void cli_json_set_path(json_t *o, const char *key, const char *path)
{
    char hkey[64], *hex;
    size_t n;

    json_object_set_new(o, key, cli_json_str(path));
    if (path == NULL || cli_utf8_valid(path))
        return;
    /* The exact bytes too, so a script can still name the file. */
    n = strlen(path);
    if ((hex = malloc(2 * n + 1)) == NULL)
        return;
    cairn_hex_encode((const uint8_t *)path, n, hex);
    snprintf(hkey, sizeof(hkey), "%s_hex", key);
    json_object_set_new(o, hkey, json_string(hex));
    free(hex);
}
