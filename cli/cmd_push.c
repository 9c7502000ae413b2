/*
 * cmd_push.c - push restores (docs/CLI.md, docs/FORMAT.md "Push-restore
 * key").  An administrator, with the escrow passphrase, restores one
 * device's files onto another enrolled device:
 *
 *   cairn push --from DEVICE SNAP[:PATH]... --to DEVICE --target DIR
 *
 * opens both devices' archive keys from their escrow wraps (in this
 * process only), wraps the source key for the target device under a key
 * derived from the target's archive key, and queues the job on the server
 * (POST /api/v1/push).  The target device runs `cairn restore --pending`:
 * it fetches its jobs, unwraps the source key with its own archive key,
 * reads the source archive with its own device token (the server allows
 * that while the job is open), writes the files and reports the outcome.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/restore.h"
#include "cairn/seal.h"
#include "cairn/store.h"
#include "cli.h"

#define PUSH_MAGIC "CRNP"
#define PUSH_VERSION 1
#define PUSH_HDR 8
#define PUSH_PLAIN (CAIRN_KEY_LEN + CAIRN_ID_LEN)
#define PUSH_LEN (PUSH_HDR + PUSH_PLAIN + CAIRN_AEAD_OVERHEAD)
#define PUSH_INFO "cairn push-restore v1"
#define PUSH_PATHS_MAX 64

/* The associated data: header, source, target, snapshot (NUL-separated).
 * malloc'ed; NULL on ENOMEM. */
static uint8_t *push_ad(const uint8_t hdr[PUSH_HDR], const char *src,
                        const char *dst, const char *snap, size_t *out_len)
{
    size_t a = strlen(src), b = strlen(dst), s = strlen(snap);
    size_t n = PUSH_HDR + a + 1 + b + 1 + s;
    uint8_t *ad;

    if ((ad = malloc(n)) == NULL)
        return NULL;
    memcpy(ad, hdr, PUSH_HDR);
    memcpy(ad + PUSH_HDR, src, a + 1);
    memcpy(ad + PUSH_HDR + a + 1, dst, b + 1);
    memcpy(ad + PUSH_HDR + a + 1 + b + 1, snap, s);
    *out_len = n;
    return ad;
}

/* Wrap (or, with open_, unwrap) the source archive key for the target
 * device.  0, CAIRN_ECORRUPT (does not authenticate), CAIRN_EVERSION,
 * CAIRN_ENOMEM. */
static int push_wrap(int open_, const uint8_t tkey[CAIRN_KEY_LEN],
                     const uint8_t taid[CAIRN_ID_LEN], const char *src,
                     const char *dst, const char *snap, uint8_t *buf,
                     size_t len, uint8_t skey[CAIRN_KEY_LEN],
                     uint8_t said[CAIRN_ID_LEN])
{
    uint8_t k[CAIRN_KEY_LEN], plain[PUSH_PLAIN], *ad = NULL;
    struct cairn_aead *a = NULL;
    size_t adlen = 0;
    int rc;

    if (len != PUSH_LEN)
        return CAIRN_ECORRUPT;
    if (!open_) {
        memcpy(buf, PUSH_MAGIC, 4);
        buf[4] = PUSH_VERSION;
        memset(buf + 5, 0, 3);
    } else if (memcmp(buf, PUSH_MAGIC, 4) != 0 || buf[5] || buf[6] ||
               buf[7]) {
        return CAIRN_ECORRUPT;
    } else if (buf[4] != PUSH_VERSION) {
        return CAIRN_EVERSION;
    }
    if ((rc = cairn_hkdf(tkey, CAIRN_KEY_LEN, taid, CAIRN_ID_LEN, PUSH_INFO,
                         k, sizeof(k))) != 0)
        return rc;
    rc = CAIRN_ENOMEM;
    if ((ad = push_ad(buf, src, dst, snap, &adlen)) == NULL ||
        (a = cairn_aead_new(k)) == NULL)
        goto out;
    if (!open_) {
        memcpy(plain, skey, CAIRN_KEY_LEN);
        memcpy(plain + CAIRN_KEY_LEN, said, CAIRN_ID_LEN);
        rc = cairn_aead_seal(a, ad, adlen, plain, sizeof(plain), NULL, 0,
                             buf + PUSH_HDR);
    } else if ((rc = cairn_aead_open(a, ad, adlen, buf + PUSH_HDR,
                                     len - PUSH_HDR, plain)) == 0) {
        memcpy(skey, plain, CAIRN_KEY_LEN);
        memcpy(said, plain + CAIRN_KEY_LEN, CAIRN_ID_LEN);
    }
out:
    cairn_aead_free(a);
    free(ad);
    cairn_wipe(k, sizeof(k));
    cairn_wipe(plain, sizeof(plain));
    return rc;
}

/* A device's archive key through its escrow wrap. */
static int escrow_key(struct cli *c, struct cli_api *a, const char *device,
                      const uint8_t pub[32], const uint8_t priv[32],
                      uint8_t key[CAIRN_KEY_LEN], uint8_t aid[CAIRN_ID_LEN])
{
    json_t *w = NULL;
    int x;

    if ((x = cli_remote_wraps(c, a, device, &w)) != EXIT_OK)
        return x;
    x = cli_escrow_unwrap(c, device,
                          json_string_value(json_object_get(w, "wrap_escrow")),
                          pub, priv, key, aid);
    json_decref(w);
    return x;
}

/* Open device's archive on server with token (a session's or a device's)
 * and key.  EXIT_OK or a code (reported). */
static int open_archive(struct cli *c, const char *server, const char *pin,
                        const char *token, const char *device,
                        const uint8_t key[CAIRN_KEY_LEN],
                        const uint8_t aid[CAIRN_ID_LEN], int load_index,
                        struct cairn_repo **out)
{
    struct cairn_http_opts ho;
    struct cairn_store *st;
    int rc;

    memset(&ho, 0, sizeof(ho));
    ho.base_url = server;
    ho.device_id = device;
    ho.token = token;
    ho.pin = pin;
    if ((rc = cairn_store_http_open(&ho, &st)) != 0) {
        cli_error(c, "cannot reach the archive of device %s: %s", device,
                  cairn_strerror(rc));
        return cli_exit_for(rc);
    }
    if ((rc = cairn_repo_open_key(st, key, aid, out)) != 0) {
        cairn_store_free(st);
        cli_error(c, "cannot open the archive of device %s: %s", device,
                  rc == CAIRN_EPERM ? "the server refused access"
                                    : cairn_strerror(rc));
        return rc == CAIRN_EPERM ? EXIT_AUTH : cli_exit_for(rc);
    }
    if (load_index && (rc = cairn_repo_load_index(*out, NULL)) != 0) {
        cli_error(c, "cannot load the index of device %s: %s", device,
                  cairn_strerror(rc));
        cairn_repo_free(*out);
        *out = NULL;
        return cli_exit_for(rc);
    }
    return EXIT_OK;
}

int cmd_push(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 'T'},
        {"target", required_argument, NULL, 't'},
        {"request", required_argument, NULL, 'R'},
        {"escrow-passphrase-file", required_argument, NULL, 'E'},
        {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *target = NULL, *request = NULL;
    uint8_t pub[CAIRN_X25519_LEN], priv[CAIRN_X25519_LEN];
    uint8_t skey[CAIRN_KEY_LEN], said[CAIRN_ID_LEN];
    uint8_t tkey[CAIRN_KEY_LEN], taid[CAIRN_ID_LEN], wrapped[PUSH_LEN];
    struct cli_session *sess = NULL;
    struct cairn_snapshot *s = NULL;
    struct cairn_repo *r = NULL;
    struct cli_api *a = NULL;
    json_t *req = NULL, *res = NULL, *paths = NULL, *v;
    char snapspec[80], hex[65], pid[64], *b64 = NULL, *end;
    const char *colon;
    int ch, i, rc, x;

    optind = 0;
    snapspec[0] = '\0';
    while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            from = optarg;
            break;
        case 'T':
            to = optarg;
            break;
        case 't':
            target = optarg;
            break;
        case 'R':
            request = optarg;
            strtol(request, &end, 10);
            if (end == request || *end != '\0')
                return cli_usage(c, "--request takes a request number");
            break;
        case 'E':
            c->escrow_passphrase_file = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (from == NULL || to == NULL || target == NULL || optind >= argc)
        return cli_usage(c, "push --from DEVICE SNAPSHOT[:PATH]... --to "
                            "DEVICE --target DIR [--request ID]");
    if (target[0] != '/')
        return cli_usage(c, "--target is an absolute folder on the target "
                            "device");
    if (argc - optind > PUSH_PATHS_MAX)
        return cli_usage(c, "at most %d paths in one push", PUSH_PATHS_MAX);
    if ((paths = json_array()) == NULL)
        return EXIT_ERROR;
    for (i = optind; i < argc; i++) {
        size_t n;

        colon = strchr(argv[i], ':');
        n = colon != NULL ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        if (n == 0 || n >= sizeof(snapspec) ||
            (snapspec[0] != '\0' && (strlen(snapspec) != n ||
                                     strncmp(snapspec, argv[i], n) != 0))) {
            json_decref(paths);
            return cli_usage(c, "one push restores one snapshot: give "
                                "SNAPSHOT[:PATH] with the same SNAPSHOT");
        }
        memcpy(snapspec, argv[i], n);
        snapspec[n] = '\0';
        if (colon != NULL && colon[1] != '/') {
            json_decref(paths);
            return cli_usage(c, "the PATH in SNAPSHOT:PATH is absolute");
        }
        json_array_append_new(paths,
                              json_string(colon != NULL ? colon + 1 : "/"));
    }

    if ((x = cli_session_api(c, &a, &sess)) != EXIT_OK)
        goto out;
    if ((x = cli_escrow_open(c, a, pub, priv)) != EXIT_OK)
        goto out;
    x = escrow_key(c, a, from, pub, priv, skey, said);
    if (x == EXIT_OK)
        x = escrow_key(c, a, to, pub, priv, tkey, taid);
    cairn_wipe(priv, sizeof(priv));
    if (x != EXIT_OK)
        goto out;
    /* The snapshot, resolved to its full id in the source archive. */
    if ((x = open_archive(c, cli_api_url(a), sess->pin, sess->token, from,
                          skey, said, 0, &r)) != EXIT_OK)
        goto out;
    if ((x = cli_find_snapshot(c, r, snapspec, &s)) != EXIT_OK)
        goto out;
    cli_hex(s->id, hex);
    x = EXIT_ERROR;
    if ((rc = push_wrap(0, tkey, taid, from, to, hex, wrapped,
                        sizeof(wrapped), skey, said)) != 0) {
        cli_error(c, "cannot wrap the key for the target: %s",
                  cairn_strerror(rc));
        goto out;
    }
    if ((b64 = cli_b64_encode(wrapped, sizeof(wrapped))) == NULL)
        goto out;
    req = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s}", "source_device", from,
                    "snapshot", hex, "paths", paths, "target_device", to,
                    "target_dir", target, "wrapped_key", b64);
    if (req == NULL)
        goto out;
    if (request != NULL)
        json_object_set_new(req, "request_id",
                            json_integer(strtol(request, NULL, 10)));
    if (cli_api_call(a, "POST", "/api/v1/push", req, &res) != 0) {
        x = cli_api_report(c, a, "the server did not take the push "
                                 "restore");
        goto out;
    }
    v = json_object_get(res, "push_id");
    if (json_is_integer(v))
        snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(v));
    else
        snprintf(pid, sizeof(pid), "%s",
                 json_is_string(v) ? json_string_value(v) : "?");
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s}",
                                "message_type", "push", "push_id", pid,
                                "source_device", from, "target_device", to,
                                "snapshot", hex, "paths", paths,
                                "target_dir", target));
    else if (!c->quiet)
        printf("push restore %s queued: snapshot %.8s of %s onto %s in %s; "
               "it runs when that device next runs `cairn restore "
               "--pending`\n",
               pid, hex, from, to, target);
    x = EXIT_OK;
out:
    cairn_wipe(skey, sizeof(skey));
    cairn_wipe(tkey, sizeof(tkey));
    cairn_wipe(wrapped, sizeof(wrapped));
    if (b64 != NULL) {
        cairn_wipe(b64, strlen(b64));
        free(b64);
    }
    if (req != NULL)
        json_object_set_new(req, "wrapped_key", json_string(""));
    json_decref(req);
    json_decref(res);
    json_decref(paths);
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    cli_api_free(a);
    cli_session_free(sess);
    return x;
}

/* POST /api/v1/push/{pid}/status; a failure is a warning. */
static void push_status(struct cli *c, struct cli_api *a, const char *pid,
                        const char *state, uint64_t files, uint64_t bytes,
                        const char *error)
{
    char url[256], *esc;
    json_t *req;

    if ((esc = cli_url_escape(pid)) == NULL)
        return;
    snprintf(url, sizeof(url), "/api/v1/push/%s/status", esc);
    free(esc);
    req = json_pack("{s:s, s:I, s:I, s:s}", "state", state, "files",
                    (json_int_t)files, "bytes", (json_int_t)bytes, "error",
                    error != NULL ? error : "");
    if (req != NULL && cli_api_call(a, "POST", url, req, NULL) != 0)
        cli_warn(c, "could not report push restore %s to the server (%s)",
                 pid, cli_api_last_error(a)->message);
    json_decref(req);
}

/* Run one job; its outcome is reported to the server.  EXIT_OK or the
 * exit code of its failure. */
static int run_job(struct cli *c, struct cli_api *a, const struct cli_device *d,
                   json_t *job, int existing)
{
    const char *src, *snap, *dir, *b64;
    struct cairn_restore_result res, sum;
    struct cairn_restore_opts ro;
    struct cli_events ce = {c, "restore", 0, 0};
    struct cairn_snapshot *s = NULL;
    struct cairn_repo *r = NULL;
    uint8_t skey[CAIRN_KEY_LEN], said[CAIRN_ID_LEN], *w = NULL;
    size_t wlen = 0, i;
    json_t *paths, *p;
    char pid[64], err[512], rid[64];
    int rc = 0, x = EXIT_ERROR;

    memset(&sum, 0, sizeof(sum));
    err[0] = '\0';
    p = json_object_get(job, "push_id");
    if (json_is_integer(p))
        snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(p));
    else
        snprintf(pid, sizeof(pid), "%s",
                 json_is_string(p) ? json_string_value(p) : "");
    src = json_string_value(json_object_get(job, "source_device"));
    snap = json_string_value(json_object_get(job, "snapshot"));
    dir = json_string_value(json_object_get(job, "target_dir"));
    b64 = json_string_value(json_object_get(job, "wrapped_key"));
    paths = json_object_get(job, "paths");
    if (pid[0] == '\0' || src == NULL || snap == NULL || dir == NULL ||
        b64 == NULL || !json_is_array(paths) || dir[0] != '/') {
        cli_error(c, "the server sent a malformed push restore job");
        return EXIT_ERROR;
    }
    if (cli_b64_decode(b64, &w, &wlen) != 0 ||
        (rc = push_wrap(1, d->key, d->archive_id, src, d->device_id, snap, w,
                        wlen, skey, said)) != 0) {
        snprintf(err, sizeof(err), "the job's key does not open with this "
                                   "device's key: %s",
                 cairn_strerror(rc ? rc : CAIRN_ECORRUPT));
        goto fail;
    }
    push_status(c, a, pid, "running", 0, 0, NULL);
    if ((x = open_archive(c, d->server, d->pin, d->token, src, skey, said, 1,
                          &r)) != EXIT_OK) {
        snprintf(err, sizeof(err), "cannot open the archive of %s", src);
        goto fail;
    }
    if ((x = cli_find_snapshot(c, r, snap, &s)) != EXIT_OK) {
        snprintf(err, sizeof(err), "no snapshot %s in %s", snap, src);
        goto fail;
    }
    json_array_foreach(paths, i, p)
    {
        const char *sp = json_string_value(p);

        if (sp == NULL || sp[0] != '/') {
            snprintf(err, sizeof(err), "bad path in the job");
            x = EXIT_ERROR;
            goto fail;
        }
        memset(&ro, 0, sizeof(ro));
        ro.target = dir;
        ro.subpath = strcmp(sp, "/") == 0 ? NULL : sp;
        ro.threads = c->threads > 0 ? c->threads : 8;
        ro.restore_owner = geteuid() == 0;
        ro.on_event = cli_on_event;
        ro.event_arg = &ce;
        ro.cancel = &c->cancel;
        ro.existing = existing;
        if ((x = cli_restore_begin(c, a, src, snap, sp, dir,
                                   strtoll(pid, NULL, 10), rid,
                                   sizeof(rid))) != EXIT_OK) {
            snprintf(err, sizeof(err), "the server refused the restore");
            goto fail;
        }
        rc = cairn_restore(r, s, &ro, &res);
        cli_progress_clear(&ce);
        cli_restore_finish(c, a, rid,
                           rc == CAIRN_ECANCELED             ? "interrupted"
                           : rc != 0 && !cli_restore_partial(rc, &res)
                               ? "failed"
                                                             : "done",
                           &res);
        sum.files += res.files;
        sum.dirs += res.dirs;
        sum.links += res.links;
        sum.specials += res.specials;
        sum.bytes += res.bytes;
        sum.errors += res.errors;
        sum.damaged_files += res.damaged_files;
        sum.skipped_files += res.skipped_files;
        sum.skipped_bytes += res.skipped_bytes;
        sum.kept += res.kept;
        sum.renamed += res.renamed;
        sum.elapsed_ns += res.elapsed_ns;
        if (rc != 0 && !cli_restore_partial(rc, &res)) {
            snprintf(err, sizeof(err), "restoring %s: %s", sp,
                     cairn_strerror(rc));
            cli_error(c, "push restore %s: %s", pid, err);
            x = cli_exit_for(rc);
            goto fail;
        }
    }
    push_status(c, a, pid, sum.errors ? "failed" : "done",
                sum.files + sum.skipped_files,
                sum.bytes + sum.skipped_bytes,
                sum.errors ? "some files could not be restored" : NULL);
    x = cli_restore_report(c, rc, &sum, dir, pid);
    goto out;
fail:
    if (err[0] != '\0' && x == EXIT_ERROR && rc != 0)
        cli_error(c, "push restore %s: %s", pid, err);
    push_status(c, a, pid, "failed", sum.files, sum.bytes, err);
    if (x == EXIT_OK)
        x = EXIT_ERROR;
out:
    cairn_wipe(skey, sizeof(skey));
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    free(w);
    return x;
}

int cli_push_pending(struct cli *c, int existing)
{
    struct cli_device *d = NULL;
    struct cli_api *a = NULL;
    json_t *res = NULL, *jobs, *job;
    char url[512], *esc;
    size_t i, n = 0;
    int x, worst = EXIT_OK;

    if ((x = cli_device_load(c, &d)) != EXIT_OK) {
        if (x == EXIT_NOREPO)
            cli_error(c, "this computer is not enrolled (no device file): "
                         "push restores come to enrolled devices");
        return x == EXIT_NOREPO ? EXIT_USAGE : x;
    }
    x = EXIT_ERROR;
    if (cli_api_new(d->server, d->pin, d->token, &a) != 0 ||
        (esc = cli_url_escape(d->device_id)) == NULL)
        goto out;
    snprintf(url, sizeof(url), "/api/v1/devices/%s/push", esc);
    free(esc);
    if (cli_api_call(a, "GET", url, NULL, &res) != 0) {
        x = cli_api_report(c, a, "cannot fetch this device's push restores");
        goto out;
    }
    jobs = json_is_array(res) ? res : json_object_get(res, "jobs");
    json_array_foreach(jobs, i, job)
    {
        n++;
        if ((x = run_job(c, a, d, job, existing)) != EXIT_OK &&
            worst == EXIT_OK)
            worst = x;
        if (c->cancel)
            break;
    }
    if (n == 0 && !c->quiet) {
        if (c->json)
            cli_json_emit(json_pack("{s:s, s:I}", "message_type", "summary",
                                    "jobs", (json_int_t)0));
        else
            printf("no push restores for this device\n");
    }
    x = worst;
out:
    json_decref(res);
    cli_api_free(a);
    cli_device_free(d);
    return x;
}
