/*
 * cmd_diff.c - `cairn diff SNAP1 SNAP2`.
 */
#include <stdio.h>

#include "cairn/browse.h"
#include "cairn/err.h"
#include "cli.h"

struct diff_ctx {
    struct cli *c;
    unsigned long long added, removed, modified, meta, type;
};

static int diff_one(void *arg, int kind, const char *path,
                    const struct cairn_tree_entry *old_e,
                    const struct cairn_tree_entry *new_e)
{
    struct diff_ctx *dc = arg;
    const struct cairn_tree_entry *e = new_e ? new_e : old_e;
    char k[2] = {(char)kind, '\0'};

    switch (kind) {
    case CAIRN_DIFF_ADDED:
        dc->added++;
        break;
    case CAIRN_DIFF_REMOVED:
        dc->removed++;
        break;
    case CAIRN_DIFF_MODIFIED:
        dc->modified++;
        break;
    case CAIRN_DIFF_META:
        dc->meta++;
        break;
    default:
        dc->type++;
        break;
    }
    if (dc->c->json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "message_type", "change",
                              "kind", k, "type",
                              cli_type_name(e ? e->type : 0));

        cli_json_set_path(o, "path", path);
        cli_json_emit(o);
    }
    else
        printf("%c    %s%s\n", kind, path,
               e && e->type == CAIRN_NODE_DIR ? "/" : "");
    return 0;
}

int cmd_diff(struct cli *c, int argc, char **argv)
{
    struct diff_ctx dc = {c, 0, 0, 0, 0, 0};
    struct cairn_snapshot *a = NULL, *b = NULL;
    struct cairn_repo *r = NULL;
    int rc, x;

    if (argc != 3)
        return cli_usage(c, "diff SNAP1 SNAP2");
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        return x;
    if ((x = cli_find_snapshot(c, r, argv[1], &a)) != EXIT_OK ||
        (x = cli_find_snapshot(c, r, argv[2], &b)) != EXIT_OK)
        goto out;
    if ((rc = cairn_browse_diff(r, a, b, diff_one, &dc)) != 0) {
        cli_error(c, "cannot compare: %s", cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}",
                                "message_type", "summary", "added",
                                (json_int_t)dc.added, "removed",
                                (json_int_t)dc.removed, "modified",
                                (json_int_t)dc.modified, "metadata",
                                (json_int_t)dc.meta, "type_changed",
                                (json_int_t)dc.type));
    else if (!c->quiet)
        printf("\n%llu added, %llu removed, %llu modified, %llu metadata "
               "only, %llu type changed\n",
               dc.added, dc.removed, dc.modified, dc.meta, dc.type);
out:
    cairn_snapshot_free(a);
    cairn_snapshot_free(b);
    cairn_repo_free(r);
    return x;
}
