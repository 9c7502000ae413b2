/*
 * cmd_restore.c - `cairn restore SNAPSHOT[:PATH] --target DIR`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/restore.h"
#include "cli.h"

int cmd_restore(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, NULL, 't'},
        {"verify", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cairn_restore_opts ro = {0};
    struct cairn_restore_result res;
    struct cli_events ce = {c, "restore", 0, 0};
    struct cairn_snapshot *s = NULL;
    struct cairn_repo *r = NULL;
    char *spec = NULL, *colon, sz[32];
    int ch, rc, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        if (ch == 't')
            ro.target = optarg;
        else if (ch == 'V')
            ro.verify_ids = 1;
        else
            return EXIT_USAGE;
    }
    if (optind + 1 != argc)
        return cli_usage(c, "restore SNAPSHOT[:PATH] --target DIR");
    if (ro.target == NULL)
        return cli_usage(c, "restore needs --target DIR");
    if ((spec = strdup(argv[optind])) == NULL)
        return EXIT_ERROR;
    if ((colon = strchr(spec, ':')) != NULL) {
        *colon = '\0';
        ro.subpath = colon + 1;
        if (ro.subpath[0] != '/') {
            free(spec);
            return cli_usage(c, "the PATH in SNAPSHOT:PATH is absolute, as "
                                "on the computer backed up");
        }
    }
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        goto out;
    if ((x = cli_find_snapshot(c, r, spec, &s)) != EXIT_OK)
        goto out;
    ro.threads = c->threads;
    ro.restore_owner = geteuid() == 0;
    ro.on_event = cli_on_event;
    ro.event_arg = &ce;
    ro.cancel = &c->cancel;
    rc = cairn_restore(r, s, &ro, &res);
    cli_progress_clear(&ce);
    if (rc != 0 && rc != CAIRN_ECORRUPT) {
        if (rc == CAIRN_ENOENT && ro.subpath != NULL)
            cli_error(c, "%s is not in snapshot %s", ro.subpath, spec);
        else if (rc == CAIRN_ENOSPC)
            cli_error(c, "restore stopped: no space left in %s", ro.target);
        else
            cli_error(c, "restore failed: %s", cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    if (c->json) {
        cli_json_emit(json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "message_type",
            "summary", "files", (json_int_t)res.files, "dirs",
            (json_int_t)res.dirs, "links", (json_int_t)res.links, "specials",
            (json_int_t)res.specials, "bytes", (json_int_t)res.bytes,
            "errors", (json_int_t)res.errors, "damaged_files",
            (json_int_t)res.damaged_files, "elapsed_s",
            (double)res.elapsed_ns / 1e9));
    } else if (!c->quiet) {
        cli_fmt_bytes(res.bytes, sz, sizeof(sz));
        printf("restored %llu files, %llu folders, %s into %s in %.1f s\n",
               (unsigned long long)res.files, (unsigned long long)res.dirs,
               sz, ro.target, (double)res.elapsed_ns / 1e9);
    }
    if (res.errors > 0 || rc == CAIRN_ECORRUPT) {
        cli_error_text(
                  "%llu item(s) could not be restored (%llu with damaged "
                  "content), named above; everything else was restored",
                  (unsigned long long)res.errors,
                  (unsigned long long)res.damaged_files);
        x = EXIT_DAMAGE;
    }
out:
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    free(spec);
    return x;
}
