/*
 * cmd_backup.c - `cairn backup PATH...`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/backup.h"
#include "cairn/err.h"
#include "cli.h"

struct strv {
    const char **v;
    size_t n;
};

static int strv_push(struct strv *s, const char *x)
{
    const char **nv = realloc(s->v, (s->n + 1) * sizeof(*nv));

    if (nv == NULL)
        return -1;
    s->v = nv;
    s->v[s->n++] = x;
    return 0;
}

/* Same selection?  Both lists clean and sorted by the same rule. */
static int same_paths(const struct cairn_snapshot *s, char **paths, size_t n)
{
    size_t i, j;

    if (s->npaths != n)
        return 0;
    for (i = 0; i < n; i++) {
        for (j = 0; j < n; j++)
            if (strcmp(s->paths[j], paths[i]) == 0)
                break;
        if (j == n)
            return 0;
    }
    return 1;
}

/* The latest snapshot of this host with the same paths, or NULL. */
static int find_parent(struct cairn_repo *r, const char *host, char **paths,
                       size_t n, struct cairn_snapshot **out)
{
    struct cairn_snapshot **v;
    size_t nv, i;
    int rc;

    *out = NULL;
    if ((rc = cairn_repo_list_snapshots(r, &v, &nv, NULL)) != 0)
        return rc;
    for (i = nv; i-- > 0;) {
        if (strcmp(v[i]->hostname, host) == 0 && same_paths(v[i], paths, n)) {
            *out = v[i];
            v[i] = NULL;
            break;
        }
    }
    cairn_snapshot_list_free(v, nv);
    return 0;
}

int cmd_backup(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"exclude", required_argument, NULL, 'e'},
        {"exclude-file", required_argument, NULL, 'E'},
        {"exclude-caches", no_argument, NULL, 'c'},
        {"one-file-system", no_argument, NULL, 'x'},
        {"tag", required_argument, NULL, 't'},
        {"host", required_argument, NULL, 'H'},
        {"parent", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    struct strv ex = {0}, exf = {0}, tags = {0};
    struct cairn_backup_opts bo = {0};
    struct cairn_backup_result res;
    struct cairn_snapshot *parent = NULL;
    struct cli_events ce = {c, "backup", 0, 0};
    struct cairn_repo *r = NULL;
    const char *parent_spec = NULL;
    char host[256], id[65], sz[32], added[32], **clean = NULL;
    size_t i, nclean = 0;
    int ch, rc, x, force = 0;

    optind = 0;
    host[0] = '\0';
    while ((ch = getopt_long(argc, argv, "e:x", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            if (strv_push(&ex, optarg) != 0)
                return EXIT_ERROR;
            break;
        case 'E':
            if (strv_push(&exf, optarg) != 0)
                return EXIT_ERROR;
            break;
        case 'c':
            bo.exclude_caches = 1;
            break;
        case 'x':
            bo.one_file_system = 1;
            break;
        case 't':
            if (strv_push(&tags, optarg) != 0)
                return EXIT_ERROR;
            break;
        case 'H':
            snprintf(host, sizeof(host), "%s", optarg);
            break;
        case 'p':
            parent_spec = optarg;
            break;
        case 'f':
            force = 1;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage(c, "backup needs at least one PATH");
    for (i = 0; i < exf.n; i++)
        if (access(exf.v[i], R_OK) != 0) {
            cli_error(c, "cannot read the exclude file %s", exf.v[i]);
            x = EXIT_ERROR;
            goto out;
        }
    if (host[0] == '\0' && gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';

    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        goto out;

    nclean = (size_t)(argc - optind);
    if ((clean = calloc(nclean, sizeof(*clean))) == NULL) {
        x = EXIT_ERROR;
        goto out;
    }
    for (i = 0; i < nclean; i++)
        if (cairn_backup_path_clean(argv[optind + (int)i], &clean[i]) != 0) {
            cli_error(c, "cannot resolve %s", argv[optind + (int)i]);
            x = EXIT_ERROR;
            goto out;
        }
    if (parent_spec != NULL) {
        if ((rc = cairn_repo_find_snapshot(r, parent_spec, &parent)) != 0) {
            cli_error(c, "parent snapshot %s: %s", parent_spec,
                      cairn_strerror(rc));
            x = EXIT_ERROR;
            goto out;
        }
    } else if (!force &&
               (rc = find_parent(r, host, clean, nclean, &parent)) != 0) {
        cli_warn(c, "cannot list snapshots (%s); reading every file",
                 cairn_strerror(rc));
    }

    bo.paths = (const char *const *)argv + optind;
    bo.npaths = (size_t)(argc - optind);
    bo.excludes = ex.v;
    bo.nexcludes = ex.n;
    bo.exclude_files = exf.v;
    bo.nexclude_files = exf.n;
    bo.parent = force ? NULL : parent;
    bo.hostname = host;
    bo.tags = tags.v;
    bo.ntags = tags.n;
    bo.threads = c->threads;
    bo.count_totals = c->progress || c->json;
    bo.on_event = cli_on_event;
    bo.event_arg = &ce;
    bo.cancel = &c->cancel;

    rc = cairn_backup(r, &bo, &res);
    cli_progress_clear(&ce);
    if (rc != 0) {
        if (rc == CAIRN_ENOSPC)
            cli_error(c, "backup stopped: no space left where the archive "
                         "is (%s); nothing was lost, the archive is "
                         "consistent, and the next backup resumes",
                      c->repo ? c->repo : "the server");
        else if (rc == CAIRN_ECANCELED)
            cli_error(c, "backup interrupted; what was stored is kept and "
                         "the next backup resumes");
        else if (rc == CAIRN_EIO && c->repo == NULL)
            cli_error(c, "backup stopped: the server does not answer (named "
                         "above); what it acknowledged is kept, and the next "
                         "backup resumes without sending it again");
        else
            cli_error(c, "backup failed: %s", cairn_strerror(rc));
        x = cli_exit_for(rc) == EXIT_DAMAGE ? EXIT_ERROR : cli_exit_for(rc);
        goto out;
    }
    cli_hex(res.snapshot_id, id);
    if (c->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
            "s:I, s:f}",
            "message_type", "summary", "snapshot_id", id, "complete",
            res.complete, "files", (json_int_t)res.files, "dirs",
            (json_int_t)res.dirs, "bytes", (json_int_t)res.bytes, "files_new",
            (json_int_t)res.files_new, "files_changed",
            (json_int_t)res.files_changed, "files_unchanged",
            (json_int_t)res.files_unchanged, "bytes_read",
            (json_int_t)res.bytes_read, "blobs_added",
            (json_int_t)res.blobs_added, "added_bytes",
            (json_int_t)res.added_bytes, "errors", (json_int_t)res.errors,
            "elapsed_s", (double)res.elapsed_ns / 1e9);

        if (parent != NULL) {
            char pid[65];

            cli_hex(parent->id, pid);
            json_object_set_new(o, "parent", json_string(pid));
        }
        cli_json_emit(o);
    } else if (!c->quiet) {
        cli_fmt_bytes(res.bytes, sz, sizeof(sz));
        cli_fmt_bytes(res.added_bytes, added, sizeof(added));
        printf("snapshot %.8s saved: %llu files (%llu new, %llu changed, "
               "%llu unchanged), %llu folders, %s; %s added to the archive "
               "in %.1f s\n",
               id, (unsigned long long)res.files,
               (unsigned long long)res.files_new,
               (unsigned long long)res.files_changed,
               (unsigned long long)res.files_unchanged,
               (unsigned long long)res.dirs, sz, added,
               (double)res.elapsed_ns / 1e9);
    }
    /* On a server's archive, tell the server how the device stands. */
    cli_device_report(c, &res);
    if (!res.complete) {
        cli_warn(c,
                 "%llu file(s) or folder(s) could not be read (listed "
                 "above); snapshot %.8s is incomplete",
                 (unsigned long long)res.errors, id);
        x = EXIT_INCOMPLETE;
    }
out:
    for (i = 0; i < nclean; i++)
        free(clean ? clean[i] : NULL);
    free(clean);
    cairn_snapshot_free(parent);
    cairn_repo_free(r);
    free(ex.v);
    free(exf.v);
    free(tags.v);
    return x;
}
