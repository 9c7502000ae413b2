/*
 * cmd_enrol.c - `cairn enrol`: make this computer a device of the
 * organisation.  The archive key is made here and never leaves in the
 * clear: the server gets it sealed to the organisation's escrow key and,
 * for a personal device, wrapped under the owner's password (the format
 * of archive key files).  The device token the server answers with, and
 * the key, go to the device file (0600).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/chunker.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/seal.h"
#include "cairn/snapshot.h"
#include "cli.h"

/* The organisation's escrow public key: GET /api/v1/org, or the
 * escrow_public of /api/v1/me on servers without it. */
static int escrow_public(struct cli *c, struct cli_api *a, json_t *me,
                         uint8_t out[CAIRN_X25519_LEN])
{
    json_t *org = NULL;
    const char *b64 = NULL;
    uint8_t *raw = NULL;
    size_t n = 0;
    int x = EXIT_ERROR;

    if (cli_api_call(a, "GET", "/api/v1/org", NULL, &org) == 0)
        b64 = json_string_value(json_object_get(org, "escrow_public"));
    if (b64 == NULL)
        b64 = json_string_value(json_object_get(me, "escrow_public"));
    if (b64 == NULL) {
        cli_error(c, "the server did not give the organisation's escrow "
                     "key (GET /api/v1/org); cannot enrol");
        goto out;
    }
    if (cli_b64_decode(b64, &raw, &n) != 0 || n != CAIRN_X25519_LEN) {
        cli_error(c, "the server's escrow key is malformed");
        goto out;
    }
    memcpy(out, raw, CAIRN_X25519_LEN);
    x = EXIT_OK;
out:
    free(raw);
    json_decref(org);
    return x;
}

/* The config object of a new archive with the default settings. */
static int make_config(const uint8_t key[CAIRN_KEY_LEN],
                       const uint8_t aid[CAIRN_ID_LEN], uint8_t **out,
                       size_t *out_len)
{
    struct cairn_config cfg;
    struct cairn_keys keys;
    struct timespec ts;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.archive_id, aid, CAIRN_ID_LEN);
    cfg.chunk_min = CAIRN_CHUNK_MIN_DEFAULT;
    cfg.chunk_avg = CAIRN_CHUNK_AVG_DEFAULT;
    cfg.chunk_max = CAIRN_CHUNK_MAX_DEFAULT;
    cfg.pack_size = CAIRN_PACK_SIZE_DEFAULT;
    cfg.zstd_level = CAIRN_ZSTD_LEVEL_DEFAULT;
    clock_gettime(CLOCK_REALTIME, &ts);
    cfg.created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if ((rc = cairn_keys_derive(key, aid, &keys)) != 0)
        return rc;
    rc = cairn_config_encode(&cfg, keys.mac, out, out_len);
    cairn_keys_wipe(&keys);
    return rc;
}


/*
 * Recover a shared device's archive key through the escrow key: an
 * administrator gets the escrow private key wrapped under the escrow
 * passphrase (GET /api/v1/org), unwraps it here with that passphrase
 * (--escrow-passphrase-file, CAIRN_ESCROW_PASSPHRASE_FILE, or the
 * terminal), and opens the device's escrow wrap.  Nothing unwrapped leaves
 * this process; everything is wiped.
 */
static int adopt_by_escrow(struct cli *c, struct cli_api *a, const char *old,
                           json_t *wraps, uint8_t key[CAIRN_KEY_LEN],
                           uint8_t aid[CAIRN_ID_LEN])
{
    struct cli_secret_src src = {"escrow passphrase", NULL, NULL,
                                 "escrow passphrase: ",
                                 "set CAIRN_ESCROW_PASSPHRASE_FILE", 0};
    uint8_t pub[CAIRN_X25519_LEN], priv[CAIRN_X25519_LEN];
    uint8_t *wesc = NULL, *ewrapped = NULL, *pubbuf = NULL, *msg = NULL;
    size_t wesclen, ewlen, publen, msglen = 0, plen = 0;
    const char *b64;
    json_t *org = NULL;
    char *pass = NULL;
    int rc, x = EXIT_ERROR;

    b64 = json_string_value(json_object_get(wraps, "wrap_escrow"));
    if (b64 == NULL || cli_b64_decode(b64, &wesc, &wesclen) != 0) {
        cli_error(c, "device %s is shared: its archive can be adopted only "
                     "by an administrator, with the escrow passphrase",
                  old);
        goto out;
    }
    if (cli_api_call(a, "GET", "/api/v1/org", NULL, &org) != 0) {
        x = cli_api_report(c, a, "cannot read the organisation");
        goto out;
    }
    b64 = json_string_value(json_object_get(org, "escrow_wrapped"));
    if (b64 == NULL || cli_b64_decode(b64, &ewrapped, &ewlen) != 0) {
        cli_error(c, "device %s is shared: only an administrator can adopt "
                     "its archive",
                  old);
        goto out;
    }
    b64 = json_string_value(json_object_get(org, "escrow_public"));
    if (b64 == NULL || cli_b64_decode(b64, &pubbuf, &publen) != 0 ||
        publen != sizeof(pub)) {
        cli_error(c, "the server sent a malformed escrow public key");
        goto out;
    }
    memcpy(pub, pubbuf, sizeof(pub));
    src.file = c->escrow_passphrase_file != NULL
                   ? c->escrow_passphrase_file
                   : getenv("CAIRN_ESCROW_PASSPHRASE_FILE");
    if ((x = cli_secret(c, &src, &pass, &plen)) != EXIT_OK)
        goto out;
    x = EXIT_ERROR;
    if ((rc = cairn_escrow_open(ewrapped, ewlen, pass, plen, pub, priv)) !=
        0) {
        cli_error(c, rc == CAIRN_EAUTH ? "wrong escrow passphrase"
                                       : "the escrow key cannot be opened: %s",
                  cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    rc = cairn_unseal(pub, priv, wesc, wesclen, &msg, &msglen);
    cairn_wipe(priv, sizeof(priv));
    if (rc != 0 || msglen != CAIRN_KEY_LEN + CAIRN_ID_LEN) {
        cli_error(c, "the escrow wrap of device %s does not open: %s", old,
                  rc != 0 ? cairn_strerror(rc) : "wrong length");
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
    cli_secret_free(pass, plen);
    free(pubbuf);
    free(ewrapped);
    free(wesc);
    json_decref(org);
    return x;
}

/* The archive of the device being replaced: its owner wrap, opened with
 * the password. */
static int adopt_archive(struct cli *c, struct cli_api *a, const char *old,
                         const char *pass, size_t plen,
                         uint8_t key[CAIRN_KEY_LEN],
                         uint8_t aid[CAIRN_ID_LEN])
{
    char path[256], *esc;
    json_t *w = NULL;
    const char *b64;
    uint8_t *wrap = NULL;
    size_t wlen = 0;
    int rc, x = EXIT_ERROR;

    if ((esc = cli_url_escape(old)) == NULL)
        return EXIT_ERROR;
    snprintf(path, sizeof(path), "/api/v1/devices/%s/wraps", esc);
    free(esc);
    if (cli_api_call(a, "GET", path, NULL, &w) != 0)
        return cli_api_report(c, a, "cannot read the wraps of the device "
                                    "being replaced");
    b64 = json_string_value(json_object_get(w, "wrap_owner"));
    if (b64 == NULL || b64[0] == '\0') {
        /* A shared device: only the escrow key opens its archive. */
        x = adopt_by_escrow(c, a, old, w, key, aid);
        goto out;
    }
    if (pass == NULL) {
        cli_error(c, "device %s is personal: its owner adopts its archive "
                     "(cairn enrol --category personal --replaces %s)",
                  old, old);
        goto out;
    }
    if (cli_b64_decode(b64, &wrap, &wlen) != 0) {
        cli_error(c, "the owner wrap of device %s is malformed", old);
        goto out;
    }
    if ((rc = cairn_keyfile_open(wrap, wlen, pass, plen, key, aid)) != 0) {
        if (rc == CAIRN_EAUTH)
            cli_error(c, "the owner wrap of device %s does not open with "
                         "your password (was it wrapped before a password "
                         "change?)",
                      old);
        else
            cli_error(c, "the owner wrap of device %s: %s", old,
                      cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    x = EXIT_OK;
out:
    free(wrap);
    json_decref(w);
    return x;
}

/* Add binary field key as base64; 0 or -1. */
static int set_b64(json_t *o, const char *key, const uint8_t *buf,
                   size_t len)
{
    char *s = cli_b64_encode(buf, len);

    if (s == NULL)
        return -1;
    json_object_set_new(o, key, json_string(s));
    free(s);
    return 0;
}

int cmd_enrol(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_LOGIN_OPTIONS,
        {"category", required_argument, NULL, 'c'},
        {"department", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"replaces", required_argument, NULL, 'R'},
        {"escrow-passphrase-file", required_argument, NULL, 'E'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    struct cli_login l;
    struct cli_device dev, *old = NULL;
    struct cli_api *a = NULL;
    const char *category = NULL, *dept = NULL, *replaces = NULL, *user;
    const char *did, *tok;
    json_t *me = NULL, *req = NULL, *res = NULL;
    uint8_t escrow[CAIRN_X25519_LEN], secret[CAIRN_KEY_LEN + CAIRN_ID_LEN];
    uint8_t *cfg = NULL, *wesc = NULL, *wown = NULL;
    size_t cfglen = 0, wesclen = 0, wownlen = 0, plen = 0;
    char host[256], path[PATH_MAX], aidhex[65], label[320], *pass = NULL;
    int ch, rc, x, personal;

    memset(&dev, 0, sizeof(dev));
    cli_login_init(&l);
    host[0] = '\0';
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (cli_login_option(&l, ch, optarg))
            continue;
        switch (ch) {
        case 'c':
            category = optarg;
            break;
        case 'd':
            dept = optarg;
            break;
        case 'n':
            snprintf(host, sizeof(host), "%s", optarg);
            break;
        case 'R':
            replaces = optarg;
            break;
        case 'E':
            c->escrow_passphrase_file = optarg;
            break;
        case 'j':
            c->json = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage(c, "enrol takes no arguments");
    if (category == NULL ||
        (strcmp(category, "personal") != 0 && strcmp(category, "shared") != 0))
        return cli_usage(c, "give --category personal or --category shared");
    if (dept == NULL || dept[0] == '\0')
        return cli_usage(c, "give the department with --department NAME");
    if (l.server == NULL)
        return cli_usage(c, "give the server with --server URL");
    personal = strcmp(category, "personal") == 0;
    if (host[0] == '\0' && gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';

    /* One enrolment per device file. */
    if (cli_device_path(c, path, sizeof(path)) != 0) {
        cli_error(c, "no device file: set CAIRN_DEVICE_FILE or HOME");
        return EXIT_ERROR;
    }
    if ((x = cli_device_load(c, &old)) == EXIT_OK) {
        cli_error(c, "this computer is enrolled already (device %s at %s, "
                     "file %s); to enrol it again, move that file away "
                     "first",
                  old->device_id, old->server, path);
        cli_device_free(old);
        return EXIT_ERROR;
    }
    if (x != EXIT_NOREPO)
        return x;

    if ((x = cli_login_session(c, &l, 1, personal ? &pass : NULL,
                               &plen, &a, &me)) != EXIT_OK)
        goto out;
    user = json_string_value(json_object_get(me, "username"));
    x = EXIT_ERROR;
    if ((x = escrow_public(c, a, me, escrow)) != EXIT_OK)
        goto out;

    /* The archive: new, or the one of the device this one replaces. */
    if (replaces != NULL) {
        if ((x = adopt_archive(c, a, replaces, pass, plen, dev.key,
                               dev.archive_id)) != EXIT_OK)
            goto out;
    } else if (cairn_random(dev.key, CAIRN_KEY_LEN) != 0 ||
               cairn_random(dev.archive_id, CAIRN_ID_LEN) != 0) {
        cli_error(c, "no randomness for the archive key");
        x = EXIT_ERROR;
        goto out;
    }
    x = EXIT_ERROR;
    if ((rc = make_config(dev.key, dev.archive_id, &cfg, &cfglen)) != 0) {
        cli_error(c, "cannot make the archive's config: %s",
                  cairn_strerror(rc));
        goto out;
    }
    memcpy(secret, dev.key, CAIRN_KEY_LEN);
    memcpy(secret + CAIRN_KEY_LEN, dev.archive_id, CAIRN_ID_LEN);
    rc = cairn_seal(escrow, secret, sizeof(secret), &wesc, &wesclen);
    cairn_wipe(secret, sizeof(secret));
    if (rc != 0) {
        cli_error(c, "cannot seal the archive key to the escrow key: %s",
                  cairn_strerror(rc));
        goto out;
    }
    if (personal) {
        snprintf(label, sizeof(label), "owner %s of %s", user ? user : "?",
                 host);
        if ((rc = cairn_keyfile_create(dev.key, dev.archive_id, pass, plen,
                                       NULL, label, &wown, &wownlen)) != 0) {
            cli_error(c, "cannot wrap the archive key for its owner: %s",
                      cairn_strerror(rc));
            goto out;
        }
    }

    if ((req = json_pack("{s:s, s:s, s:s}", "name", host, "category",
                         category, "department", dept)) == NULL ||
        set_b64(req, "archive_id", dev.archive_id, CAIRN_ID_LEN) != 0 ||
        set_b64(req, "config", cfg, cfglen) != 0 ||
        set_b64(req, "wrap_escrow", wesc, wesclen) != 0 ||
        (wown != NULL && set_b64(req, "wrap_owner", wown, wownlen) != 0))
        goto out;
    if (replaces != NULL)
        json_object_set_new(req, "replaces", json_string(replaces));
    if (cli_api_call(a, "POST", "/api/v1/devices", req, &res) != 0) {
        x = cli_api_report(c, a, "enrolment refused");
        goto out;
    }
    did = json_string_value(json_object_get(res, "device_id"));
    tok = json_string_value(json_object_get(res, "token"));
    if (did == NULL || tok == NULL) {
        cli_error(c, "the server's answer has no device id or token");
        goto out;
    }
    snprintf(dev.path, sizeof(dev.path), "%s", path);
    dev.server = (char *)cli_api_url(a);
    dev.pin = (char *)cli_api_pin(a);
    dev.device_id = (char *)did;
    dev.token = (char *)tok;
    dev.name = host;
    dev.category = (char *)category;
    dev.department = (char *)dept;
    dev.enrolled_at = (int64_t)time(NULL);
    if ((x = cli_device_save(c, &dev)) != EXIT_OK) {
        cli_error(c, "device %s is enrolled on the server, but its token "
                     "could not be kept; an administrator must replace it "
                     "(cairn enrol --replaces %s)",
                  did, did);
        goto out;
    }
    cairn_hex_encode(dev.archive_id, CAIRN_ID_LEN, aidhex);
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?}",
                                "message_type", "enrol", "device_id", did,
                                "archive_id", aidhex, "server",
                                cli_api_url(a), "category", category,
                                "department", dept, "name", host,
                                "replaces", replaces));
    else if (!c->quiet)
        printf("enrolled %s as %s device %s in %s at %s%s%s\n"
               "back it up with: cairn backup PATH...\n",
               host, category, did, dept, cli_api_url(a),
               replaces ? "; it adopts the archive of " : "",
               replaces ? replaces : "");
    x = EXIT_OK;
out:
    if (res != NULL)
        json_object_set_new(res, "token", json_string(""));
    json_decref(res);
    json_decref(req);
    json_decref(me);
    free(cfg);
    free(wesc);
    free(wown);
    cairn_wipe(dev.key, sizeof(dev.key));
    cli_secret_free(pass, plen);
    cli_api_free(a);
    return x;
}
