/*
 * cmd_ls.c - `cairn ls SNAPSHOT [PATH]`: list a folder in a snapshot.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn/browse.h"
#include "cairn/err.h"
#include "cli.h"

const char *cli_type_name(int type)
{
    switch (type) {
    case CAIRN_NODE_FILE:
        return "file";
    case CAIRN_NODE_DIR:
        return "dir";
    case CAIRN_NODE_SYMLINK:
        return "symlink";
    case CAIRN_NODE_FIFO:
        return "fifo";
    case CAIRN_NODE_CHR:
        return "chardev";
    case CAIRN_NODE_BLK:
        return "blockdev";
    case CAIRN_NODE_SOCK:
        return "socket";
    default:
        return "unknown";
    }
}

json_t *cli_entry_json(const char *path, const struct cairn_tree_entry *e)
{
    char t[64], mode[8];
    json_t *o;

    cli_fmt_time_rfc3339(e->mtime_ns, t, sizeof(t));
    snprintf(mode, sizeof(mode), "%04o", (unsigned)e->mode);
    o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:I, s:o, s:o}",
                  "message_type", "entry", "type", cli_type_name(e->type),
                  "mode", mode, "size", (json_int_t)e->size, "mtime", t,
                  "uid", (json_int_t)e->uid, "gid", (json_int_t)e->gid,
                  "user", cli_json_str(e->user), "group",
                  cli_json_str(e->group));
    cli_json_set_path(o, "path", path);
    if (e->type == CAIRN_NODE_SYMLINK)
        cli_json_set_path(o, "target", e->target);
    return o;
}

void cli_entry_long(const char *path, const struct cairn_tree_entry *e)
{
    static const char tc[] = "?-dlpcbs";
    char perm[11], t[32], owner[64];
    unsigned m = e->mode;
    int i;

    perm[0] = e->type < sizeof(tc) - 1 ? tc[e->type] : '?';
    for (i = 0; i < 9; i++)
        perm[1 + i] = (m & (0400u >> i)) ? "rwxrwxrwx"[i] : '-';
    if (m & S_ISUID)
        perm[3] = (m & 0100) ? 's' : 'S';
    if (m & S_ISGID)
        perm[6] = (m & 0010) ? 's' : 'S';
    if (m & S_ISVTX)
        perm[9] = (m & 0001) ? 't' : 'T';
    perm[10] = '\0';
    cli_fmt_time(e->mtime_ns, t, sizeof(t));
    snprintf(owner, sizeof(owner), "%s/%s",
             e->user[0] ? e->user : "?", e->group[0] ? e->group : "?");
    printf("%s %-17s %12llu %s %s", perm, owner, (unsigned long long)e->size,
           t, path);
    if (e->type == CAIRN_NODE_SYMLINK)
        printf(" -> %s", e->target);
    putchar('\n');
}

struct ls_ctx {
    struct cli *c;
    int lng;
    unsigned long long n;
};

static int ls_one(void *arg, const char *path, const struct cairn_tree_entry *e)
{
    struct ls_ctx *lc = arg;

    lc->n++;
    if (lc->c->json)
        cli_json_emit(cli_entry_json(path, e));
    else if (lc->lng)
        cli_entry_long(path, e);
    else
        printf("%s\n", path);
    return 0;
}

int cmd_ls(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"long", no_argument, NULL, 'l'},
        {"recursive", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct ls_ctx lc = {c, 0, 0};
    struct cairn_snapshot *s = NULL;
    struct cairn_repo *r = NULL;
    const char *path = "/";
    int ch, rc, x, rec = 0;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "lR", opts, NULL)) != -1) {
        if (ch == 'l')
            lc.lng = 1;
        else if (ch == 'R')
            rec = 1;
        else
            return EXIT_USAGE;
    }
    if (optind >= argc || argc - optind > 2)
        return cli_usage(c, "ls SNAPSHOT [PATH]");
    if (argc - optind == 2)
        path = argv[optind + 1];
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        return x;
    if ((x = cli_find_snapshot(c, r, argv[optind], &s)) != EXIT_OK)
        goto out;
    rc = cairn_browse_walk(r, s, path, rec, ls_one, &lc);
    if (rc != 0) {
        if (rc == CAIRN_ENOENT)
            cli_error(c, "%s is not in snapshot %s", path, argv[optind]);
        else
            cli_error(c, "cannot list %s: %s", path, cairn_strerror(rc));
        x = cli_exit_for(rc);
    } else if (c->json) {
        cli_json_emit(json_pack("{s:s, s:I}", "message_type", "summary",
                                "entries", (json_int_t)lc.n));
    }
out:
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    return x;
}
