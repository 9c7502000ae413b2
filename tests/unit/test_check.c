/*
 * test_check.c - a clean archive passes (structure and read-data); a
 * flipped byte in a pack, a deleted pack, a truncated index object and a
 * garbage snapshot are each reported with the objects and files they
 * affect; an extra unreferenced pack is not an error.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/backup.h"
#include "cairn/check.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"

#define BIG_LEN (200u * 1024)

static char base[256], src[320], repo_dir[320];
static struct cairn_repo *repo;
static struct cairn_snapshot *snap;
static char big_pack_hex[2 * CAIRN_ID_LEN + 1];
static char big_pack_path[1024];
static struct cairn_blob_loc big_loc;
static volatile int cancel_flag;

struct evlog {
    int nkind[8];
    char packs[8][80];
    int npacks;
    char files[16][512];
    char file_snaps[16][80];
    int nfiles;
    char problems[8][80];
    int nproblems;
};

static void on_event(void *arg, const struct cairn_event *ev)
{
    struct evlog *l = arg;

    if (ev->kind > 0 && ev->kind < 8)
        l->nkind[ev->kind]++;
    if (ev->kind == CAIRN_EV_DAMAGED_PACK && l->npacks < 8)
        snprintf(l->packs[l->npacks++], 80, "%s", ev->name);
    if (ev->kind == CAIRN_EV_DAMAGED_FILE && l->nfiles < 16) {
        snprintf(l->file_snaps[l->nfiles], 80, "%s", ev->name);
        snprintf(l->files[l->nfiles++], 512, "%s", ev->path);
    }
    if (ev->kind == CAIRN_EV_PROBLEM && l->nproblems < 8)
        snprintf(l->problems[l->nproblems++], 80, "%s",
                 ev->name ? ev->name : "");
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void put(const char *rel, const void *data, size_t len)
{
    char p[1024];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

static int backup(void)
{
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    const char *paths[1] = {src};

    memset(&bo, 0, sizeof(bo));
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    return cairn_backup(repo, &bo, &br);
}

static int setup(void **state)
{
    static uint8_t big[BIG_LEN];
    struct cairn_repo_init_opts io;
    struct cairn_blob_codec *codec;
    const struct cairn_tree_entry *e;
    struct cairn_tree *t = NULL, *nt;
    struct cairn_store *st;
    uint8_t id[CAIRN_ID_LEN];
    char path[512], *tok, *save = NULL;

    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-tck-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(src, sizeof(src), "%s/src", base);
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    if (mkdir(src, 0755) != 0)
        return -1;
    fill(big, sizeof(big), 7);
    put("big.bin", big, sizeof(big));
    put("small.txt", "small\n", 6);

    if (cairn_store_dir_open(repo_dir, 1, &st) != 0)
        return -1;
    memset(&io, 0, sizeof(io));
    io.chunk.min = 4096;
    io.chunk.avg = 16384;
    io.chunk.max = 65536;
    io.kdf.log2_n = 10;
    io.kdf.r = 1;
    io.kdf.p = 1;
    if (cairn_repo_init(st, "pw", 2, &io, &repo) != 0) {
        cairn_store_free(st);
        return -1;
    }
    /* Two snapshots sharing everything but one file. */
    if (cairn_repo_load_index(repo, NULL) != 0 || backup() != 0)
        return -1;
    put("later.txt", "later\n", 6);
    if (backup() != 0 ||
        cairn_repo_find_snapshot(repo, "latest", &snap) != 0)
        return -1;

    /* Where big.bin's second blob lies. */
    codec = cairn_blob_codec_new(cairn_repo_keys(repo), 0);
    memcpy(id, snap->root, CAIRN_ID_LEN);
    snprintf(path, sizeof(path), "%s/big.bin", src);
    e = NULL;
    for (tok = strtok_r(path, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (cairn_repo_read_tree(repo, codec, id, &nt) != 0)
            return -1;
        cairn_tree_free(t);
        t = nt;
        if ((e = cairn_tree_find(t, tok)) == NULL)
            return -1;
        if (e->has_subtree)
            memcpy(id, e->subtree, CAIRN_ID_LEN);
    }
    if (e == NULL || e->ncontent < 2 ||
        cairn_repo_lookup(repo, e->content[1], &big_loc) != 0)
        return -1;
    cairn_hex_encode(big_loc.pack, CAIRN_ID_LEN, big_pack_hex);
    snprintf(big_pack_path, sizeof(big_pack_path), "%s/data/%.2s/%s",
             repo_dir, big_pack_hex, big_pack_hex);
    cairn_tree_free(t);
    cairn_blob_codec_free(codec);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cairn_snapshot_free(snap);
    cairn_repo_free(repo);
    nftw(base, rm_one, 16, FTW_PHYS | FTW_DEPTH);
    return 0;
}

static int run_check(int read_data, unsigned subset, struct evlog *log,
                     struct cairn_check_result *res)
{
    struct cairn_check_opts o;

    memset(&o, 0, sizeof(o));
    memset(log, 0, sizeof(*log));
    o.read_data = read_data;
    o.subset_percent = subset;
    o.threads = 2;
    o.on_event = on_event;
    o.event_arg = log;
    o.cancel = &cancel_flag;
    return cairn_check(repo, &o, res);
}

static void flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void test_clean(void **state)
{
    struct cairn_check_result res;
    struct evlog log;

    (void)state;
    assert_int_equal(run_check(0, 0, &log, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.snapshots, 2);
    assert_true(res.packs >= 2); /* data and trees in separate packs */
    assert_int_equal(res.packs, cairn_repo_pack_count(repo));
    assert_int_equal(res.blobs, cairn_repo_blob_count(repo));
    assert_true(res.trees >= 5); /* root, tmp, base, src twice */
    assert_int_equal(res.packs_read, 0);
    assert_int_equal(log.nkind[CAIRN_EV_PROBLEM], 0);

    assert_int_equal(run_check(1, 0, &log, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.packs_read, res.packs);
    assert_true(res.bytes_read > BIG_LEN);
    assert_int_equal(res.damaged_packs, 0);
    assert_int_equal(log.nkind[CAIRN_EV_DAMAGED_PACK], 0);
    assert_true(log.nkind[CAIRN_EV_PROGRESS] >= 1);

    assert_int_equal(run_check(1, 50, &log, &res), 0);
    assert_true(res.packs_read >= 1 && res.packs_read <= res.packs);

    cancel_flag = 1;
    assert_int_equal(run_check(1, 0, &log, &res), CAIRN_ECANCELED);
    cancel_flag = 0;
}

static void test_flipped_byte(void **state)
{
    struct cairn_check_result res;
    char want[512];
    struct evlog log;
    int i;

    (void)state;
    flip(big_pack_path, big_loc.offset + big_loc.length / 2);

    /* The structure check does not read contents. */
    assert_int_equal(run_check(0, 0, &log, &res), 0);

    assert_int_equal(run_check(1, 0, &log, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.damaged_packs, 1);
    assert_int_equal(log.npacks, 1);
    assert_string_equal(log.packs[0], big_pack_hex);
    /* big.bin in both snapshots, and nothing else (small.txt shares the
     * pack but not the damaged blob). */
    snprintf(want, sizeof(want), "%s/big.bin", src);
    assert_int_equal(res.damaged_files, 2);
    assert_int_equal(log.nfiles, 2);
    for (i = 0; i < log.nfiles; i++) {
        assert_string_equal(log.files[i], want);
        assert_int_equal(strlen(log.file_snaps[i]), 64);
    }
    assert_string_not_equal(log.file_snaps[0], log.file_snaps[1]);
    assert_true(res.errors >= 1);

    flip(big_pack_path, big_loc.offset + big_loc.length / 2);
    assert_int_equal(run_check(1, 0, &log, &res), 0);
}

static void test_deleted_pack(void **state)
{
    struct cairn_check_result res;
    char moved[512], want[512];
    struct evlog log;

    (void)state;
    snprintf(moved, sizeof(moved), "%s/moved-pack", base);
    assert_int_equal(rename(big_pack_path, moved), 0);
    assert_int_equal(run_check(0, 0, &log, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.damaged_packs, 1);
    assert_string_equal(log.packs[0], big_pack_hex);
    snprintf(want, sizeof(want), "%s/big.bin", src);
    assert_true(log.nfiles >= 2);
    assert_string_equal(log.files[0], want);
    assert_int_equal(rename(moved, big_pack_path), 0);

    /* Cut short: the wrong length. */
    assert_int_equal(truncate(big_pack_path, big_loc.offset), 0);
    assert_int_equal(run_check(0, 0, &log, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.damaged_packs, 1);
    assert_string_equal(log.packs[0], big_pack_hex);
}

struct first_name {
    char name[128];
};

static int take_first(void *arg, const char *name, uint64_t size)
{
    struct first_name *f = arg;

    (void)size;
    if (f->name[0] == '\0')
        snprintf(f->name, sizeof(f->name), "%s", name);
    return 0;
}

static void test_truncated_index(void **state)
{
    struct cairn_check_result res;
    struct first_name f;
    struct evlog log;
    char path[1024];
    struct stat st;
    uint8_t *buf;
    size_t len;
    int fd;

    (void)state;
    memset(&f, 0, sizeof(f));
    assert_int_equal(cairn_store_list(cairn_repo_store(repo),
                                      CAIRN_OBJ_INDEX, take_first, &f),
                     0);
    assert_true(f.name[0] != '\0');
    snprintf(path, sizeof(path), "%s/index/%.2s/%s", repo_dir, f.name,
             f.name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(cairn_store_get(cairn_repo_store(repo), CAIRN_OBJ_INDEX,
                                     f.name, &buf, &len),
                     0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);

    assert_int_equal(run_check(0, 0, &log, &res), CAIRN_ECORRUPT);
    assert_true(log.nproblems >= 1);
    assert_string_equal(log.problems[0], f.name);
    assert_true(res.errors >= 1);

    /* Put it back whole. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
    assert_int_equal(run_check(0, 0, &log, &res), 0);
}

static void test_unreferenced_pack(void **state)
{
    struct cairn_check_result res;
    uint8_t junk[1000], id[32];
    char hex[65];
    struct evlog log;

    (void)state;
    fill(junk, sizeof(junk), 3);
    cairn_sha256(junk, sizeof(junk), id);
    cairn_hex_encode(id, 32, hex);
    assert_int_equal(cairn_store_put(cairn_repo_store(repo), CAIRN_OBJ_PACK,
                                     hex, junk, sizeof(junk), 1),
                     0);
    assert_int_equal(run_check(1, 0, &log, &res), 0);
    assert_int_equal(res.unreferenced_packs, 1);
    assert_int_equal(res.errors, 0);
    assert_true(log.nkind[CAIRN_EV_INFO] >= 1);
    assert_int_equal(
        cairn_store_remove(cairn_repo_store(repo), CAIRN_OBJ_PACK, hex), 0);
}

static void test_bad_snapshot(void **state)
{
    struct cairn_check_result res;
    uint8_t junk[300], id[32];
    char hex[65];
    struct evlog log;

    (void)state;
    fill(junk, sizeof(junk), 4);
    memcpy(junk, "CRNS", 4);
    cairn_sha256(junk, sizeof(junk), id);
    cairn_hex_encode(id, 32, hex);
    assert_int_equal(cairn_store_put(cairn_repo_store(repo),
                                     CAIRN_OBJ_SNAPSHOT, hex, junk,
                                     sizeof(junk), 1),
                     0);
    assert_int_equal(run_check(0, 0, &log, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.snapshots, 2);
    assert_int_equal(log.nproblems, 1);
    assert_string_equal(log.problems[0], hex);
    assert_int_equal(res.errors, 1);
    assert_int_equal(
        cairn_store_remove(cairn_repo_store(repo), CAIRN_OBJ_SNAPSHOT, hex),
        0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_truncated_index),
        cmocka_unit_test(test_unreferenced_pack),
        cmocka_unit_test(test_bad_snapshot),
        cmocka_unit_test(test_deleted_pack), /* last: leaves damage */
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
