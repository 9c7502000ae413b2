/*
 * test_browse.c - list snapshots (recursive or not, from any path) and
 * compare two snapshots after adding, removing, modifying, chmod-ing and
 * retyping entries.
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
#include "cairn/browse.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"

static char base[256], src[320], repo_dir[320];
static struct cairn_repo *repo;
static struct cairn_snapshot *snap1, *snap2;

static void put(const char *rel, const char *text, mode_t mode)
{
    char p[1024];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void mk(const char *rel)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void rm(const char *rel)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    if (unlink(p) != 0)
        assert_int_equal(rmdir(p), 0);
}

/* Directory times fixed, so only the changes made here show. */
static void fix_times(void)
{
    static const char *dirs[] = {"", "d"};
    struct timespec ts[2] = {{1500000000, 0}, {1500000000, 0}};
    char p[1024];
    size_t i;

    for (i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/%s", src, dirs[i]);
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
}

static int backup(struct cairn_snapshot **out)
{
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    const char *paths[1] = {src};
    char hex[2 * CAIRN_ID_LEN + 1];

    memset(&bo, 0, sizeof(bo));
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    if (cairn_backup(repo, &bo, &br) != 0)
        return -1;
    cairn_hex_encode(br.snapshot_id, CAIRN_ID_LEN, hex);
    return cairn_repo_find_snapshot(repo, hex, out);
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

static int setup(void **state)
{
    struct cairn_repo_init_opts io;
    struct cairn_store *st;
    char p[1024];

    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-tbr-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(src, sizeof(src), "%s/src", base);
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    if (mkdir(src, 0755) != 0)
        return -1;
    put("a", "first version of a\n", 0644);
    put("b", "b\n", 0644);
    mk("d");
    put("d/c", "c\n", 0644);
    mk("d/e");
    put("d/e/f", "f\n", 0644);
    put("t", "a file, later a directory\n", 0644);
    mk("gone");
    put("gone/y", "y\n", 0644);
    fix_times();

    if (cairn_store_dir_open(repo_dir, 1, &st) != 0)
        return -1;
    memset(&io, 0, sizeof(io));
    io.kdf.log2_n = 10;
    io.kdf.r = 1;
    io.kdf.p = 1;
    if (cairn_repo_init(st, "pw", 2, &io, &repo) != 0) {
        cairn_store_free(st);
        return -1;
    }
    if (cairn_repo_load_index(repo, NULL) != 0 || backup(&snap1) != 0)
        return -1;

    /* The changes. */
    put("a", "second version of a, longer\n", 0644);
    rm("b");
    snprintf(p, sizeof(p), "%s/d/c", src);
    assert_int_equal(chmod(p, 0600), 0);
    rm("t");
    mk("t");
    put("t/x", "x\n", 0644);
    rm("gone/y");
    rm("gone");
    put("new.txt", "new\n", 0644);
    fix_times();
    return backup(&snap2);
}

static int teardown(void **state)
{
    (void)state;
    cairn_snapshot_free(snap1);
    cairn_snapshot_free(snap2);
    cairn_repo_free(repo);
    nftw(base, rm_one, 16, FTW_PHYS | FTW_DEPTH);
    return 0;
}

struct seen {
    char lines[64][512];
    int n;
    const char *prefix; /* only paths at or below this */
    int stop_after;
};

static int on_entry(void *arg, const char *path,
                    const struct cairn_tree_entry *e)
{
    struct seen *s = arg;
    size_t pl = strlen(s->prefix);

    assert_string_equal(strrchr(path, '/') + 1, e->name);
    if (strncmp(path, s->prefix, pl) != 0 || s->n >= 64)
        return 0;
    snprintf(s->lines[s->n++], 512, "%c %s", e->type == 2 ? 'd' : 'f',
             path + pl);
    return s->stop_after && s->n == s->stop_after ? 99 : 0;
}

static void expect(const struct seen *s, const char *const *want, int n)
{
    int i;

    for (i = 0; i < s->n && i < n; i++)
        assert_string_equal(s->lines[i], want[i]);
    assert_int_equal(s->n, n);
}

static void test_walk(void **state)
{
    static const char *const rec[] = {
        "d ",     "f /a",     "f /b",     "d /d",      "f /d/c",
        "d /d/e", "f /d/e/f", "d /gone",  "f /gone/y", "f /t",
    };
    static const char *const flat[] = {
        "d ", "f /a", "f /b", "d /d", "d /gone", "f /t",
    };
    static const char *const sub_d[] = {"d /d", "f /d/c", "d /d/e"};
    static const char *const file[] = {"f /d/e/f"};
    char p[1024];
    struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.prefix = src;
    assert_int_equal(cairn_browse_walk(repo, snap1, NULL, 1, on_entry, &s),
                     0);
    expect(&s, rec, 10);

    memset(&s, 0, sizeof(s));
    s.prefix = src;
    assert_int_equal(cairn_browse_walk(repo, snap1, src, 0, on_entry, &s), 0);
    expect(&s, flat, 6);

    memset(&s, 0, sizeof(s));
    s.prefix = src;
    snprintf(p, sizeof(p), "%s//d/", src);
    assert_int_equal(cairn_browse_walk(repo, snap1, p, 0, on_entry, &s), 0);
    expect(&s, sub_d, 3);

    memset(&s, 0, sizeof(s));
    s.prefix = src;
    snprintf(p, sizeof(p), "%s/d/e/f", src);
    assert_int_equal(cairn_browse_walk(repo, snap1, p, 1, on_entry, &s), 0);
    expect(&s, file, 1);

    /* The root, not recursive: only the first component of the path. */
    memset(&s, 0, sizeof(s));
    s.prefix = "";
    assert_int_equal(cairn_browse_walk(repo, snap1, "/", 0, on_entry, &s),
                     0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.lines[0], "d /tmp");

    /* A callback's non-zero return stops the walk and comes back. */
    memset(&s, 0, sizeof(s));
    s.prefix = src;
    s.stop_after = 3;
    assert_int_equal(cairn_browse_walk(repo, snap1, src, 1, on_entry, &s),
                     99);
    assert_int_equal(s.n, 3);

    snprintf(p, sizeof(p), "%s/nope", src);
    assert_int_equal(cairn_browse_walk(repo, snap1, p, 1, on_entry, &s),
                     CAIRN_ENOENT);
    snprintf(p, sizeof(p), "%s/a/x", src);
    assert_int_equal(cairn_browse_walk(repo, snap1, p, 1, on_entry, &s),
                     CAIRN_ENOENT);
}

static int on_diff(void *arg, int kind, const char *path,
                   const struct cairn_tree_entry *o,
                   const struct cairn_tree_entry *n)
{
    struct seen *s = arg;
    size_t pl = strlen(s->prefix);

    if (kind == CAIRN_DIFF_ADDED)
        assert_true(o == NULL && n != NULL);
    else if (kind == CAIRN_DIFF_REMOVED)
        assert_true(o != NULL && n == NULL);
    else
        assert_true(o != NULL && n != NULL);
    if (strncmp(path, s->prefix, pl) != 0 || path[pl] != '/' || s->n >= 64)
        return 0;
    snprintf(s->lines[s->n++], 512, "%c %s", kind, path + pl);
    return 0;
}

static void test_diff(void **state)
{
    static const char *const want[] = {
        "M /a", "- /b", "U /d/c", "- /gone", "- /gone/y",
        "+ /new.txt", "T /t", "+ /t/x",
    };
    static const char *const back[] = {
        "M /a", "+ /b", "U /d/c", "+ /gone", "+ /gone/y",
        "- /new.txt", "T /t", "- /t/x",
    };
    struct seen s;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.prefix = src;
    assert_int_equal(cairn_browse_diff(repo, snap1, snap2, on_diff, &s), 0);
    expect(&s, want, 8);

    memset(&s, 0, sizeof(s));
    s.prefix = src;
    assert_int_equal(cairn_browse_diff(repo, snap2, snap1, on_diff, &s), 0);
    expect(&s, back, 8);

    /* A snapshot against itself: nothing at all. */
    memset(&s, 0, sizeof(s));
    s.prefix = "";
    assert_int_equal(cairn_browse_diff(repo, snap1, snap1, on_diff, &s), 0);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_diff),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
