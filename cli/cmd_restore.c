/*
 * cmd_restore.c - `cairn restore SNAPSHOT[:PATH] --target DIR`, from a
 * local archive, this computer's archive on its server, or (--device ID)
 * another device's archive on the server of the saved session; and
 * `cairn restore --pending` (push restores for this device, cmd_push.c).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/restore.h"
#include "cli.h"

/* Workers of a restore from a server: requests wait on the network more
 * than on the CPU, so more of them than CPUs. */
#define REMOTE_THREADS 8

int cli_parse_existing(const char *s, int *out)
{
    if (strcmp(s, "overwrite") == 0)
        *out = CAIRN_RESTORE_OVERWRITE;
    else if (strcmp(s, "rename") == 0)
        *out = CAIRN_RESTORE_RENAME;
    else if (strcmp(s, "skip") == 0)
        *out = CAIRN_RESTORE_SKIP;
    else
        return -1;
    return 0;
}

/* Restore id of the server's record as a string ("" when none). */
static void id_string(json_t *v, char *out, size_t len)
{
    if (json_is_string(v))
        snprintf(out, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, len, "%lld", (long long)json_integer_value(v));
    else
        out[0] = '\0';
}

int cli_restore_begin(struct cli *c, struct cli_api *a, const char *device,
                      const char *snap, const char *path, const char *target,
                      long long push_id, char *rid, size_t ridlen)
{
    const struct cli_api_error *e;
    char url[512], *esc, *abs = NULL;
    json_t *req, *res = NULL;
    int x = EXIT_OK;

    rid[0] = '\0';
    if ((esc = cli_url_escape(device)) == NULL)
        return EXIT_ERROR;
    snprintf(url, sizeof(url), "/api/v1/devices/%s/restores", esc);
    free(esc);
    abs = realpath(target, NULL);
    req = json_pack("{s:s, s:[s], s:s}", "snapshot", snap, "paths",
                    path != NULL ? path : "/", "target",
                    abs != NULL ? abs : target);
    free(abs);
    if (req == NULL)
        return EXIT_ERROR;
    if (push_id > 0)
        json_object_set_new(req, "push_id", json_integer(push_id));
    if (cli_api_call(a, "POST", url, req, &res) == 0) {
        id_string(json_object_get(res, "restore_id"), rid, ridlen);
        goto out;
    }
    e = cli_api_last_error(a);
    if (e->transport || e->status == 404 || e->status == 405)
        cli_warn(c, "the server did not record this restore (%s); going on",
                 e->message);
    else
        x = cli_api_report(c, a, "the server refused the restore");
out:
    json_decref(req);
    json_decref(res);
    return x;
}

void cli_restore_finish(struct cli *c, struct cli_api *a, const char *rid,
                        const char *state,
                        const struct cairn_restore_result *res)
{
    char url[256], *esc;
    json_t *req;

    if (rid[0] == '\0' || a == NULL)
        return;
    if ((esc = cli_url_escape(rid)) == NULL)
        return;
    snprintf(url, sizeof(url), "/api/v1/restores/%s/finish", esc);
    free(esc);
    req = json_pack("{s:s, s:I, s:I, s:I}", "state", state, "files",
                    (json_int_t)(res->files + res->skipped_files), "bytes",
                    (json_int_t)(res->bytes + res->skipped_bytes), "errors",
                    (json_int_t)res->errors);
    if (req != NULL && cli_api_call(a, "POST", url, req, NULL) != 0)
        cli_warn(c, "could not tell the server the restore ended (%s)",
                 cli_api_last_error(a)->message);
    json_decref(req);
}

/* Print the outcome of a restore; returns the exit code it deserves. */
int cli_restore_partial(int rc, const struct cairn_restore_result *res)
{
    return rc == CAIRN_ECORRUPT || (rc == CAIRN_EIO && res->errors > 0);
}

int cli_restore_report(struct cli *c, int rc,
                       const struct cairn_restore_result *res,
                       const char *target, const char *rid)
{
    char sz[32], sk[32];

    if (c->json) {
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
            "s:f}",
            "message_type", "summary", "files", (json_int_t)res->files,
            "dirs", (json_int_t)res->dirs, "links", (json_int_t)res->links,
            "specials", (json_int_t)res->specials, "bytes",
            (json_int_t)res->bytes, "skipped_files",
            (json_int_t)res->skipped_files, "skipped_bytes",
            (json_int_t)res->skipped_bytes, "kept", (json_int_t)res->kept,
            "renamed", (json_int_t)res->renamed, "errors",
            (json_int_t)res->errors, "damaged_files",
            (json_int_t)res->damaged_files, "elapsed_s",
            (double)res->elapsed_ns / 1e9);

        if (o != NULL && rid != NULL && rid[0] != '\0')
            json_object_set_new(o, "restore_id", json_string(rid));
        cli_json_emit(o);
    } else if (!c->quiet) {
        cli_fmt_bytes(res->bytes, sz, sizeof(sz));
        printf("restored %llu files, %llu folders, %s into %s in %.1f s\n",
               (unsigned long long)res->files,
               (unsigned long long)res->dirs, sz, target,
               (double)res->elapsed_ns / 1e9);
        if (res->skipped_files > 0) {
            cli_fmt_bytes(res->skipped_bytes, sk, sizeof(sk));
            printf("%llu files (%s) were in place already (an earlier "
                   "restore) and were left as they are\n",
                   (unsigned long long)res->skipped_files, sk);
        }
        if (res->kept > 0)
            printf("%llu existing item(s) differ from the snapshot and were "
                   "left alone (--existing skip)\n",
                   (unsigned long long)res->kept);
        if (res->renamed > 0)
            printf("%llu item(s) were restored beside existing ones, as "
                   "\"NAME (restored DATE TIME)\"\n",
                   (unsigned long long)res->renamed);
    }
    if (res->errors > 0 || rc == CAIRN_ECORRUPT) {
        cli_error_text("%llu item(s) could not be restored (%llu with "
                       "damaged content), named above; everything else was "
                       "restored",
                       (unsigned long long)res->errors,
                       (unsigned long long)res->damaged_files);
        return EXIT_DAMAGE;
    }
    return EXIT_OK;
}

int cmd_restore(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'},
        {"verify", no_argument, NULL, 'V'},
        {"existing", required_argument, NULL, 'e'},
        {"as-of", required_argument, NULL, 'a'},
        {"pending", no_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    struct cairn_restore_opts ro = {0};
    struct cairn_restore_result res;
    struct cli_events ce = {c, "restore", 0, 0};
    struct cairn_snapshot *s = NULL;
    struct cairn_repo *r = NULL;
    const char *asof = NULL;
    char *spec = NULL, *colon, rid[64], hex[65];
    int64_t t = 0;
    int ch, rc, x, pending = 0;

    rid[0] = '\0';
    optind = 0;
    while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            ro.target = optarg;
            break;
        case 'V':
            ro.verify_ids = 1;
            break;
        case 'e':
            if (cli_parse_existing(optarg, &ro.existing) != 0)
                return cli_usage(c, "--existing takes overwrite, rename or "
                                    "skip");
            break;
        case 'a':
            asof = optarg;
            break;
        case 'p':
            pending = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (pending) {
        if (optind != argc || ro.target != NULL || asof != NULL)
            return cli_usage(c, "restore --pending takes no other "
                                "arguments (the jobs say what and where)");
        return cli_push_pending(c, ro.existing);
    }
    if (asof != NULL && cli_parse_time(asof, &t) != 0)
        return cli_usage(c, "--as-of takes a time: 2026-03-01, "
                            "\"2026-03-01 14:30\", 2026-03-01T13:30:00Z or "
                            "@UNIXSECONDS");
    if (asof != NULL ? optind + 1 < argc : optind + 1 != argc)
        return cli_usage(c, "restore SNAPSHOT[:PATH] --target DIR, or "
                            "restore --as-of TIME [PATH] --target DIR");
    if (ro.target == NULL)
        return cli_usage(c, "restore needs --target DIR");
    if ((spec = strdup(optind < argc ? argv[optind] : "")) == NULL)
        return EXIT_ERROR;
    if ((colon = strchr(spec, ':')) != NULL) {
        *colon = '\0';
        ro.subpath = colon + 1;
    } else if (asof != NULL && spec[0] != '\0') {
        ro.subpath = spec; /* --as-of TIME PATH */
    }
    if (ro.subpath != NULL && ro.subpath[0] != '/') {
        free(spec);
        return cli_usage(c, "the PATH in SNAPSHOT:PATH is absolute, as on "
                            "the computer backed up");
    }
    if (asof != NULL && ro.subpath != spec && spec[0] != '\0') {
        free(spec);
        return cli_usage(c, "give a snapshot or --as-of TIME, not both");
    }
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        goto out;
    if (asof != NULL)
        x = cli_find_snapshot_asof(c, r, t, &s);
    else
        x = cli_find_snapshot(c, r, spec, &s);
    if (x != EXIT_OK)
        goto out;
    cli_hex(s->id, hex);
    ro.threads = c->threads;
    if (ro.threads == 0 && (c->remote_device != NULL || c->device != NULL))
        ro.threads = REMOTE_THREADS;
    ro.restore_owner = geteuid() == 0;
    ro.on_event = cli_on_event;
    ro.event_arg = &ce;
    ro.cancel = &c->cancel;
    if (c->remote_device != NULL &&
        (x = cli_restore_begin(c, c->remote_api, c->remote_device, hex,
                               ro.subpath, ro.target, 0, rid,
                               sizeof(rid))) != EXIT_OK)
        goto out;
    rc = cairn_restore(r, s, &ro, &res);
    cli_progress_clear(&ce);
    if (c->remote_device != NULL)
        cli_restore_finish(c, c->remote_api, rid,
                      rc == CAIRN_ECANCELED            ? "interrupted"
                      : rc != 0 && !cli_restore_partial(rc, &res) ? "failed"
                                                        : "done",
                      &res);
    if (rc != 0 && !cli_restore_partial(rc, &res)) {
        if (rc == CAIRN_ENOENT && ro.subpath != NULL)
            cli_error(c, "%s is not in snapshot %.8s", ro.subpath, hex);
        else if (rc == CAIRN_ENOSPC)
            cli_error(c, "restore stopped: no space left in %s; the files "
                         "in place are whole, and running the same command "
                         "again with more room finishes the restore",
                      ro.target);
        else if (rc == CAIRN_ECANCELED)
            cli_error(c, "restore interrupted; run the same command again "
                         "to finish it (files in place are kept)");
        else
            cli_error(c, "restore failed: %s", cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    x = cli_restore_report(c, rc, &res, ro.target, rid);
out:
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    free(spec);
    return x;
}
