/*
 * cmd_check.c - `cairn check [--read-data | --read-data-subset N%]`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/check.h"
#include "cairn/err.h"
#include "cli.h"

int cmd_check(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"read-data", no_argument, NULL, 'd'},
        {"read-data-subset", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct cairn_check_opts co = {0};
    struct cairn_check_result res;
    struct cli_events ce = {c, "check", 0, 0};
    struct cairn_repo *r = NULL;
    char *end, sz[32];
    long pct;
    int ch, rc, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd') {
            co.read_data = 1;
        } else if (ch == 's') {
            pct = strtol(optarg, &end, 10);
            if (end == optarg || (*end != '\0' && *end != '%') ||
                (*end == '%' && end[1] != '\0') || pct < 1 || pct > 100)
                return cli_usage(c, "--read-data-subset takes 1%% to 100%%");
            co.read_data = 1;
            co.subset_percent = (unsigned)pct;
        } else {
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage(c, "check takes no arguments");
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        return x;
    co.threads = c->threads;
    co.on_event = cli_on_event;
    co.event_arg = &ce;
    co.cancel = &c->cancel;
    rc = cairn_check(r, &co, &res);
    cli_progress_clear(&ce);
    if (rc != 0 && rc != CAIRN_ECORRUPT) {
        cli_error(c, "check could not run: %s", cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    if (c->json) {
        cli_json_emit(json_pack(
            "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
            "s:f}",
            "message_type", "summary", "ok", rc == 0, "snapshots",
            (json_int_t)res.snapshots, "trees", (json_int_t)res.trees, "packs",
            (json_int_t)res.packs, "blobs", (json_int_t)res.blobs,
            "packs_read", (json_int_t)res.packs_read, "bytes_read",
            (json_int_t)res.bytes_read, "unreferenced_packs",
            (json_int_t)res.unreferenced_packs, "damaged_packs",
            (json_int_t)res.damaged_packs, "damaged_files",
            (json_int_t)res.damaged_files, "errors", (json_int_t)res.errors,
            "elapsed_s", (double)res.elapsed_ns / 1e9));
    } else if (!c->quiet) {
        cli_fmt_bytes(res.bytes_read, sz, sizeof(sz));
        printf("checked %llu snapshots, %llu trees, %llu packs, %llu blobs",
               (unsigned long long)res.snapshots,
               (unsigned long long)res.trees, (unsigned long long)res.packs,
               (unsigned long long)res.blobs);
        if (co.read_data)
            printf("; read %llu packs (%s)",
                   (unsigned long long)res.packs_read, sz);
        printf(" in %.1f s\n", (double)res.elapsed_ns / 1e9);
        if (res.unreferenced_packs > 0)
            printf("%llu unreferenced pack(s) (left by an interrupted "
                   "backup; not an error)\n",
                   (unsigned long long)res.unreferenced_packs);
        if (rc == 0)
            printf("no problems found\n");
    }
    if (rc == CAIRN_ECORRUPT) {
        cli_error_text(
                  "%llu problem(s) found: %llu damaged pack(s), %llu "
                  "file(s) affected (named above)",
                  (unsigned long long)res.errors,
                  (unsigned long long)res.damaged_packs,
                  (unsigned long long)res.damaged_files);
        x = EXIT_DAMAGE;
    }
out:
    cairn_repo_free(r);
    return x;
}
