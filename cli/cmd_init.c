/*
 * cmd_init.c - `cairn init`: create an archive.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cairn/err.h"
#include "cairn/repo.h"
#include "cli.h"

int cmd_init(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"chunk-min", required_argument, NULL, 'a'},
        {"chunk-avg", required_argument, NULL, 'b'},
        {"chunk-max", required_argument, NULL, 'c'},
        {"pack-size", required_argument, NULL, 'p'},
        {"compression", required_argument, NULL, 'z'},
        {"new-password-file", required_argument, NULL, 'N'},
        {"label", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    struct cairn_repo_init_opts io = {0};
    struct cairn_store *st;
    struct cairn_repo *r;
    uint64_t v;
    char *pass, id[65], *end;
    size_t plen;
    long lvl;
    int ch, rc, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
        case 'b':
        case 'c':
        case 'p':
            if (cli_parse_size(optarg, &v) != 0 || v > UINT32_MAX)
                return cli_usage(c, "bad size '%s'", optarg);
            if (ch == 'a')
                io.chunk.min = (uint32_t)v;
            else if (ch == 'b')
                io.chunk.avg = (uint32_t)v;
            else if (ch == 'c')
                io.chunk.max = (uint32_t)v;
            else
                io.pack_size = (uint32_t)v;
            break;
        case 'z':
            lvl = strtol(optarg, &end, 10);
            if (*end != '\0' || lvl < 0 || lvl > 19)
                return cli_usage(c, "--compression takes 0 (off) to 19");
            io.zstd_level = lvl == 0 ? -1 : (int32_t)lvl;
            break;
        case 'N':
            c->new_password_file = optarg;
            break;
        case 'l':
            io.label = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (optind != argc)
        return cli_usage(c, "init takes no arguments");
    if ((io.chunk.min || io.chunk.avg || io.chunk.max) &&
        !(io.chunk.min && io.chunk.avg && io.chunk.max))
        return cli_usage(c, "give all of --chunk-min, --chunk-avg and "
                            "--chunk-max, or none");
    if (c->repo == NULL)
        return cli_usage(c, "no archive given: use -r DIR or set "
                            "CAIRN_REPOSITORY");
    if ((rc = cairn_store_dir_open(c->repo, 1, &st)) != 0) {
        if (rc == CAIRN_EEXIST)
            cli_error(c, "there is already an archive at %s", c->repo);
        else
            cli_error(c, "cannot create an archive at %s: %s", c->repo,
                      cairn_strerror(rc));
        return EXIT_ERROR;
    }
    if ((x = cli_password(c, 1, &pass, &plen)) != EXIT_OK) {
        cairn_store_free(st);
        return x;
    }
    rc = cairn_repo_init(st, pass, plen, &io, &r);
    cli_secret_free(pass, plen);
    if (rc != 0) {
        cairn_store_free(st);
        if (rc == CAIRN_EINVAL)
            cli_error(c, "invalid archive settings (chunk sizes: 64 <= min < "
                         "avg < max <= 64 MiB, avg a power of two)");
        else
            cli_error(c, "cannot create the archive at %s: %s", c->repo,
                      cairn_strerror(rc));
        return EXIT_ERROR;
    }
    cli_hex(cairn_repo_config(r)->archive_id, id);
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:s, s:s, s:s}", "message_type",
                                "summary", "archive_id", id, "key",
                                cairn_repo_key_name(r), "repository",
                                c->repo));
    else if (!c->quiet)
        printf("created archive %.16s at %s\n", id, c->repo);
    cairn_repo_free(r);
    return EXIT_OK;
}
