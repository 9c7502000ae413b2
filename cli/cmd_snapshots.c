/*
 * cmd_snapshots.c - `cairn snapshots`: list snapshots, oldest first.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"
#include "cli.h"

static json_t *snapshot_json(const struct cairn_snapshot *s)
{
    char id[65], t[64];
    json_t *o, *paths, *tags;
    uint32_t i;

    cli_hex(s->id, id);
    cli_fmt_time_rfc3339(s->time_ns, t, sizeof(t));
    paths = json_array();
    for (i = 0; i < s->npaths; i++)
        json_array_append_new(paths, cli_json_str(s->paths[i]));
    tags = json_array();
    for (i = 0; i < s->ntags; i++)
        json_array_append_new(tags, cli_json_str(s->tags[i]));
    o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:I, s:I, "
                  "s:I, s:I, s:I}",
                  "message_type", "snapshot", "id", id, "short_id", "",
                  "time", t, "hostname",
                  cli_json_str(s->hostname ? s->hostname : ""), "username",
                  cli_json_str(s->username ? s->username : ""), "paths", paths,
                  "tags", tags, "complete", s->complete, "files",
                  (json_int_t)s->files, "dirs", (json_int_t)s->dirs, "bytes",
                  (json_int_t)s->bytes, "added_bytes",
                  (json_int_t)s->added_bytes, "errors", (json_int_t)s->errors);
    id[8] = '\0';
    json_object_set_new(o, "short_id", json_string(id));
    if (s->has_parent) {
        cli_hex(s->parent, id);
        json_object_set_new(o, "parent", json_string(id));
    }
    return o;
}

int cmd_snapshots(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"path", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    struct cairn_snapshot **v = NULL;
    struct cairn_repo *r = NULL;
    const char *host = NULL, *path = NULL;
    size_t n = 0, i, shown = 0;
    uint32_t bad = 0, k;
    char id[65], t[64], sz[32];
    int ch, rc, x, match;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'H')
            host = optarg;
        else if (ch == 'p')
            path = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage(c, "snapshots takes no arguments");
    if ((x = cli_open_repo(c, 0, &r)) != EXIT_OK)
        return x;
    if ((rc = cairn_repo_list_snapshots(r, &v, &n, &bad)) != 0) {
        cli_error(c, "cannot list snapshots: %s", cairn_strerror(rc));
        cairn_repo_free(r);
        return cli_exit_for(rc);
    }
    if (!c->json && !c->quiet)
        printf("%-8s  %-19s  %-16s  %9s  %10s  %s\n", "ID", "Time", "Host",
               "Files", "Size", "Paths");
    for (i = 0; i < n; i++) {
        if (host != NULL && strcmp(v[i]->hostname, host) != 0)
            continue;
        if (path != NULL) {
            for (match = 0, k = 0; k < v[i]->npaths; k++)
                match |= strcmp(v[i]->paths[k], path) == 0;
            if (!match)
                continue;
        }
        shown++;
        if (c->json) {
            cli_json_emit(snapshot_json(v[i]));
            continue;
        }
        cli_hex(v[i]->id, id);
        cli_fmt_time(v[i]->time_ns, t, sizeof(t));
        cli_fmt_bytes(v[i]->bytes, sz, sizeof(sz));
        printf("%.8s  %-19s  %-16.16s  %9llu  %10s  ", id, t,
               v[i]->hostname, (unsigned long long)v[i]->files, sz);
        for (k = 0; k < v[i]->npaths; k++)
            printf("%s%s", k ? ", " : "", v[i]->paths[k]);
        printf("%s\n", v[i]->complete ? "" : "  (incomplete)");
    }
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:I, s:I}", "message_type", "summary",
                                "snapshots", (json_int_t)shown, "damaged",
                                (json_int_t)bad));
    else if (!c->quiet)
        printf("%zu snapshot%s\n", shown, shown == 1 ? "" : "s");
    if (bad > 0)
        cli_error_text("%u snapshot object(s) are damaged (named above); run "
                     "`cairn check`",
                  bad);
    cairn_snapshot_list_free(v, n);
    cairn_repo_free(r);
    return bad > 0 ? EXIT_DAMAGE : EXIT_OK;
}
