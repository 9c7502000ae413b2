/*
 * cmd_stats.c - `cairn stats`: how big the archive is, and why.
 */
#include <stdio.h>

#include "cairn/err.h"
#include "cli.h"

struct pack_sum {
    uint64_t n, bytes;
};

static int add_pack(void *arg, const char *name, uint64_t size)
{
    struct pack_sum *ps = arg;

    (void)name;
    ps->n++;
    ps->bytes += size;
    return 0;
}

int cmd_stats(struct cli *c, int argc, char **argv)
{
    struct cairn_snapshot **v = NULL;
    struct cairn_repo *r = NULL;
    struct pack_sum ps = {0, 0};
    uint64_t nd, nt, raw, stored, latest_bytes = 0, latest_files = 0;
    size_t n = 0;
    char a[32], b[32], d[32], e[32];
    int rc, x;

    (void)argv;
    if (argc != 1)
        return cli_usage(c, "stats takes no arguments");
    if ((x = cli_open_repo(c, 1, &r)) != EXIT_OK)
        return x;
    if ((rc = cairn_repo_list_snapshots(r, &v, &n, NULL)) != 0 ||
        (rc = cairn_store_list(cairn_repo_store(r), CAIRN_OBJ_PACK, add_pack,
                               &ps)) != 0) {
        cli_error(c, "cannot read the archive: %s", cairn_strerror(rc));
        x = cli_exit_for(rc);
        goto out;
    }
    cairn_repo_index_totals(r, &nd, &nt, &raw, &stored);
    if (n > 0) {
        latest_bytes = v[n - 1]->bytes;
        latest_files = v[n - 1]->files;
    }
    if (c->json) {
        cli_json_emit(json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
            "message_type", "summary", "snapshots", (json_int_t)n, "packs",
            (json_int_t)ps.n, "pack_bytes", (json_int_t)ps.bytes,
            "data_blobs", (json_int_t)nd, "tree_blobs", (json_int_t)nt,
            "raw_bytes", (json_int_t)raw, "stored_bytes", (json_int_t)stored,
            "latest_files", (json_int_t)latest_files, "latest_bytes",
            (json_int_t)latest_bytes, "compression_ratio",
            stored ? (double)raw / (double)stored : 0.0));
    } else {
        cli_fmt_bytes(ps.bytes, a, sizeof(a));
        cli_fmt_bytes(raw, b, sizeof(b));
        cli_fmt_bytes(stored, d, sizeof(d));
        cli_fmt_bytes(latest_bytes, e, sizeof(e));
        printf("snapshots:          %zu\n", n);
        printf("latest snapshot:    %llu files, %s\n",
               (unsigned long long)latest_files, e);
        printf("packs:              %llu (%s on disk)\n",
               (unsigned long long)ps.n, a);
        printf("blobs:              %llu data, %llu trees\n",
               (unsigned long long)nd, (unsigned long long)nt);
        printf("unique content:     %s, stored as %s (ratio %.2f)\n", b, d,
               stored ? (double)raw / (double)stored : 0.0);
    }
out:
    cairn_snapshot_list_free(v, n);
    cairn_repo_free(r);
    return x;
}
