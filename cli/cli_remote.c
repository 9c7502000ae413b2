/*
 * cli_remote.c - another device's archive on the server, opened by a
 * person (`cairn --device ID snapshots|ls|restore`, `cairn devices`): the
 * saved session's bearer token reads the archive (docs/API.md, "Device
 * archives"), and the archive key comes from the device's owner wrap
 * (opened with the owner's password) or, for an administrator with
 * --escrow, from its escrow wrap (the organisation's escrow key, opened
 * with the escrow passphrase).  Keys live in this process only and are
 * wiped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"
#include "cairn/store.h"
#include "cli.h"

/* "/api/v1/devices/<escaped id><suffix>" into out. */
static int device_path(char *out, size_t len, const char *device,
                       const char *suffix)
{
    char *esc = cli_url_escape(device);
    int n;

    if (esc == NULL)
        return -1;
    n = snprintf(out, len, "/api/v1/devices/%s%s", esc, suffix);
    free(esc);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int cli_remote_wraps(struct cli *c, struct cli_api *a, const char *device,
                     json_t **out)
{
    const struct cli_api_error *e;
    char path[512];

    if (device_path(path, sizeof(path), device, "/wraps") != 0)
        return cli_usage(c, "device id too long");
    if (cli_api_call(a, "GET", path, NULL, out) == 0 && *out != NULL)
        return EXIT_OK;
    e = cli_api_last_error(a);
    if (!e->transport && e->status == 403) {
        cli_error(c, "you may not restore device %s: %s (a person restores "
                     "only their own personal devices; shared devices are "
                     "restored by the IT office: cairn request)",
                  device, e->message);
        return EXIT_AUTH;
    }
    if (!e->transport && e->status == 404) {
        cli_error(c, "there is no device %s on %s", device, cli_api_url(a));
        return EXIT_NOREPO;
    }
    return cli_api_report(c, a, "cannot read the device's wrapped keys");
}

int cli_escrow_open(struct cli *c, struct cli_api *a, uint8_t pub[32],
                    uint8_t priv[32])
{
    struct cli_secret_src src = {"escrow passphrase", NULL, NULL,
                                 "escrow passphrase: ",
                                 "use --escrow-passphrase-file F "
                                 "(CAIRN_ESCROW_PASSPHRASE_FILE)",
                                 0};
    uint8_t *ew = NULL, *pb = NULL;
    size_t ewlen = 0, pblen = 0, plen = 0;
    const char *b64;
    json_t *org = NULL;
    char *pass = NULL;
    int rc, x = EXIT_ERROR;

    if (cli_api_call(a, "GET", "/api/v1/org", NULL, &org) != 0)
        return cli_api_report(c, a, "cannot read the organisation");
    b64 = json_string_value(json_object_get(org, "escrow_wrapped"));
    if (b64 == NULL || cli_b64_decode(b64, &ew, &ewlen) != 0) {
        cli_error(c, "only an administrator can use the escrow key (the "
                     "server did not give it to this session)");
        x = EXIT_AUTH;
        goto out;
    }
    b64 = json_string_value(json_object_get(org, "escrow_public"));
    if (b64 == NULL || cli_b64_decode(b64, &pb, &pblen) != 0 ||
        pblen != CAIRN_X25519_LEN) {
        cli_error(c, "the server sent a malformed escrow public key");
        goto out;
    }
    memcpy(pub, pb, CAIRN_X25519_LEN);
    src.file = c->escrow_passphrase_file != NULL
                   ? c->escrow_passphrase_file
                   : getenv("CAIRN_ESCROW_PASSPHRASE_FILE");
    if ((x = cli_secret(c, &src, &pass, &plen)) != EXIT_OK)
        goto out;
    if ((rc = cairn_escrow_open(ew, ewlen, pass, plen, pub, priv)) != 0) {
        if (rc == CAIRN_EAUTH)
            cli_error(c, "wrong escrow passphrase");
        else
            cli_error(c, "the escrow key cannot be opened: %s",
                      cairn_strerror(rc));
        x = rc == CAIRN_EAUTH ? EXIT_AUTH : cli_exit_for(rc);
        goto out;
    }
    x = EXIT_OK;
out:
    cli_secret_free(pass, plen);
    free(pb);
    free(ew);
    json_decref(org);
    return x;
}

int cli_escrow_unwrap(struct cli *c, const char *device, const char *b64,
                      const uint8_t pub[32], const uint8_t priv[32],
                      uint8_t key[CAIRN_KEY_LEN], uint8_t aid[CAIRN_ID_LEN])
{
    uint8_t *box = NULL, *msg = NULL;
    size_t boxlen = 0, msglen = 0;
    int rc, x = EXIT_ERROR;

    if (b64 == NULL || cli_b64_decode(b64, &box, &boxlen) != 0) {
        cli_error(c, "the server gave no escrow wrap for device %s (only "
                     "administrators get it)",
                  device);
        return EXIT_AUTH;
    }
    rc = cairn_unseal(pub, priv, box, boxlen, &msg, &msglen);
    if (rc != 0 || msglen != CAIRN_KEY_LEN + CAIRN_ID_LEN) {
        cli_error(c, "the escrow wrap of device %s does not open: %s",
                  device, rc != 0 ? cairn_strerror(rc) : "wrong length");
        goto out;
    }
    memcpy(key, msg, CAIRN_KEY_LEN);
    memcpy(aid, msg + CAIRN_KEY_LEN, CAIRN_ID_LEN);
    x = EXIT_OK;
out:
    if (msg != NULL) {
        cairn_wipe(msg, msglen);
        free(msg);
    }
    free(box);
    return x;
}

/* The archive key of device from its wraps: owner wrap and the password,
 * or (--escrow) escrow wrap and the escrow passphrase. */
static int remote_key(struct cli *c, struct cli_api *a, const char *device,
                      uint8_t key[CAIRN_KEY_LEN], uint8_t aid[CAIRN_ID_LEN])
{
    struct cli_secret_src src = {"password", NULL, NULL, "your password: ",
                                 "use --password-file F "
                                 "(CAIRN_PASSWORD_FILE)",
                                 0};
    uint8_t pub[CAIRN_X25519_LEN], priv[CAIRN_X25519_LEN];
    uint8_t *wrap = NULL;
    size_t wlen = 0, plen = 0;
    const char *b64, *cat;
    json_t *w = NULL;
    char *pass = NULL;
    int rc, x;

    if ((x = cli_remote_wraps(c, a, device, &w)) != EXIT_OK)
        return x;
    cat = json_string_value(json_object_get(w, "category"));
    if (c->escrow) {
        if ((x = cli_escrow_open(c, a, pub, priv)) == EXIT_OK)
            x = cli_escrow_unwrap(
                c, device,
                json_string_value(json_object_get(w, "wrap_escrow")), pub,
                priv, key, aid);
        cairn_wipe(priv, sizeof(priv));
        goto out;
    }
    b64 = json_string_value(json_object_get(w, "wrap_owner"));
    if (b64 == NULL || b64[0] == '\0') {
        cli_error(c, "device %s is %s: it has no owner key; an "
                     "administrator restores it with --escrow (and the "
                     "escrow passphrase)",
                  device, cat != NULL ? cat : "not personal");
        x = EXIT_AUTH;
        goto out;
    }
    if (cli_b64_decode(b64, &wrap, &wlen) != 0) {
        cli_error(c, "the owner wrap of device %s is malformed", device);
        x = EXIT_ERROR;
        goto out;
    }
    src.file = c->password_file;
    src.command = src.file == NULL ? c->password_command : NULL;
    if ((x = cli_secret(c, &src, &pass, &plen)) != EXIT_OK)
        goto out;
    if ((rc = cairn_keyfile_open(wrap, wlen, pass, plen, key, aid)) != 0) {
        if (rc == CAIRN_EAUTH)
            cli_error(c, "the key of device %s does not open with this "
                      "password (your login password when the device was "
                      "enrolled)",
                      device);
        else
            cli_error(c, "the owner wrap of device %s: %s", device,
                      cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    x = EXIT_OK;
out:
    cli_secret_free(pass, plen);
    free(wrap);
    json_decref(w);
    return x;
}

void cli_remote_close(struct cli *c)
{
    cli_api_free(c->remote_api);
    c->remote_api = NULL;
    c->remote_server = NULL;
}

int cli_remote_open(struct cli *c, int load_index, struct cairn_repo **out)
{
    struct cairn_http_opts ho;
    struct cli_session *s = NULL;
    struct cairn_store *st = NULL;
    struct cli_api *a = NULL;
    uint8_t key[CAIRN_KEY_LEN], aid[CAIRN_ID_LEN];
    uint32_t bad = 0;
    int rc, x;

    if ((x = cli_session_api(c, &a, &s)) != EXIT_OK)
        return x;
    if ((x = remote_key(c, a, c->remote_device, key, aid)) != EXIT_OK)
        goto out;
    memset(&ho, 0, sizeof(ho));
    ho.base_url = cli_api_url(a);
    ho.device_id = c->remote_device;
    ho.token = s->token;
    ho.pin = s->pin;
    if ((rc = cairn_store_http_open(&ho, &st)) != 0) {
        cli_error(c, "cannot reach the archive of device %s at %s: %s",
                  c->remote_device, cli_api_url(a), cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    if ((rc = cairn_repo_open_key(st, key, aid, out)) != 0) {
        cairn_store_free(st);
        if (rc == CAIRN_ENOENT)
            cli_error(c, "device %s has no archive on %s yet (never backed "
                         "up)",
                      c->remote_device, cli_api_url(a));
        else if (rc == CAIRN_EPERM)
            cli_error(c, "the server %s refused to let you read device %s "
                         "(log in again: cairn login)",
                      cli_api_url(a), c->remote_device);
        else
            cli_error(c, "cannot open the archive of device %s: %s",
                      c->remote_device, cairn_strerror(rc));
        x = rc == CAIRN_ENOENT  ? EXIT_NOREPO
            : rc == CAIRN_EPERM ? EXIT_AUTH
                                : cli_exit_for(rc);
        goto out;
    }
    if (load_index && (rc = cairn_repo_load_index(*out, &bad)) != 0) {
        cli_error(c, "cannot load the archive's index: %s",
                  cairn_strerror(rc));
        cairn_repo_free(*out);
        *out = NULL;
        x = cli_exit_for(rc);
        goto out;
    }
    if (bad > 0)
        cli_warn(c, "%u index object(s) are damaged and were skipped", bad);
    cli_remote_close(c);
    c->remote_api = a;
    c->remote_server = cli_api_url(a);
    a = NULL;
    x = EXIT_OK;
out:
    cairn_wipe(key, sizeof(key));
    cli_api_free(a);
    cli_session_free(s);
    return x;
}

int cli_parse_time(const char *s, int64_t *out_ns)
{
    static const char *const local[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                                        "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"};
    struct tm tm;
    const char *end;
    char *e;
    long long v;
    size_t i;
    time_t t;

    if (s[0] == '@') {
        v = strtoll(s + 1, &e, 10);
        if (e == s + 1 || *e != '\0' || v < 0)
            return -1;
        *out_ns = (int64_t)v * 1000000000;
        return 0;
    }
    /* RFC 3339 in UTC ("...Z"); fractions of a second are dropped. */
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end != NULL && (end[0] == 'Z' || end[0] == '.')) {
        while (*end == '.' || (*end >= '0' && *end <= '9'))
            end++;
        if (strcmp(end, "Z") == 0) {
            *out_ns = (int64_t)timegm(&tm) * 1000000000;
            /* The whole second: a snapshot at 12:00:00.5 is "at 12:00:00". */
            *out_ns += 999999999;
            return 0;
        }
    }
    for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, local[i], &tm);
        if (end == NULL || *end != '\0')
            continue;
        tm.tm_isdst = -1;
        if (i == 3) { /* a day: its end */
            tm.tm_hour = 23;
            tm.tm_min = 59;
            tm.tm_sec = 59;
        }
        if ((t = mktime(&tm)) == (time_t)-1)
            return -1;
        *out_ns = (int64_t)t * 1000000000 + 999999999;
        return 0;
    }
    return -1;
}

int cli_find_snapshot_asof(struct cli *c, struct cairn_repo *r, int64_t t,
                           struct cairn_snapshot **out)
{
    struct cairn_snapshot **v = NULL;
    char hex[65];
    size_t n = 0, i;
    long best = -1;
    int rc;

    if ((rc = cairn_repo_list_snapshots(r, &v, &n, NULL)) != 0) {
        cli_error(c, "cannot list snapshots: %s", cairn_strerror(rc));
        return cli_exit_for(rc);
    }
    for (i = 0; i < n; i++)
        if (v[i]->time_ns <= t)
            best = (long)i; /* oldest first: the last one wins */
    if (best < 0) {
        cairn_snapshot_list_free(v, n);
        cli_error(c, "no snapshot at or before that time");
        return EXIT_ERROR;
    }
    cli_hex(v[best]->id, hex);
    cairn_snapshot_list_free(v, n);
    return cli_find_snapshot(c, r, hex, out);
}

/* `cairn devices`: the devices this person may see (and restore). */
int cmd_devices(struct cli *c, int argc, char **argv)
{
    struct cli_api *a = NULL;
    json_t *res = NULL, *arr, *v;
    size_t i, n = 0;
    int x;

    (void)argv;
    if (argc != 1)
        return cli_usage(c, "devices takes no arguments");
    if ((x = cli_session_api(c, &a, NULL)) != EXIT_OK)
        return x;
    if (cli_api_call(a, "GET", "/api/v1/devices", NULL, &res) != 0) {
        x = cli_api_report(c, a, "cannot list devices");
        goto out;
    }
    arr = json_is_array(res) ? res : json_object_get(res, "devices");
    if (!c->json && !c->quiet)
        printf("%-24s  %-20s  %-8s  %-12s  %-10s  %s\n", "ID", "Name",
               "Category", "Department", "Owner", "Last backup");
    json_array_foreach(arr, i, v)
    {
        const char *owner = json_string_value(json_object_get(v, "owner"));
        const char *last =
            json_string_value(json_object_get(v, "last_backup"));
        const char *dept =
            json_string_value(json_object_get(v, "department"));

        n++;
        if (c->json) {
            json_t *o = json_deep_copy(v);

            json_object_set_new(o, "message_type", json_string("device"));
            cli_json_emit(o);
            continue;
        }
        if (c->quiet)
            continue;
        printf("%-24s  %-20.20s  %-8s  %-12.12s  %-10.10s  %s\n",
               json_string_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "category")),
               dept ? dept : "-", owner ? owner : "-", last ? last : "never");
    }
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:I}", "message_type", "summary",
                                "devices", (json_int_t)n));
    x = EXIT_OK;
out:
    json_decref(res);
    cli_api_free(a);
    return x;
}
