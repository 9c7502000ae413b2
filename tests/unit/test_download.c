/*
 * test_download.c - server-side downloads (server/download.h): a small
 * archive is made with libcairn in a temporary directory, folders and
 * files of its snapshot are streamed as tar and as zip into memory
 * through download_read (in small, odd-sized pieces), read back with
 * libarchive and compared with the source: names, contents (a multi-blob
 * file too), modes, times, symlinks, directories.  Also the totals and
 * the size cap, and refusals: paths not in the snapshot, "." or "..",
 * two paths with the same last name, "/" with others.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <ftw.h>
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
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"

#include "download.h"

#define BIG_LEN (3u * 1024 * 1024 + 12345)
#define MTIME 1600000000

static char base[256], src[320], repo_dir[320];
static struct cairn_repo *repo;
static struct cairn_snapshot *snap;
static uint8_t *big;

static void put(const char *rel, const void *buf, size_t len, mode_t mode)
{
    struct timespec ts[2] = {{MTIME, 0}, {MTIME, 0}};
    char p[1024];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(futimens(fd, ts), 0);
    close(fd);
}

static void mk(const char *rel, mode_t mode)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(chmod(p, mode), 0);
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
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    struct cairn_store *st;
    const char *paths[1];
    char p[1024], p2[1024], hex[65];
    size_t i;
    uint32_t x = 12345;

    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-tdl-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(src, sizeof(src), "%s/src", base);
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    if (mkdir(src, 0755) != 0)
        return -1;
    if ((big = malloc(BIG_LEN)) == NULL)
        return -1;
    for (i = 0; i < BIG_LEN; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (uint8_t)(x >> 16);
    }
    mk("docs", 0750);
    put("docs/a.txt", "alpha\n", 6, 0640);
    /* A second name for it: a hard link in a tar, a copy in a zip. */
    snprintf(p, sizeof(p), "%s/docs/a.txt", src);
    snprintf(p2, sizeof(p2), "%s/docs/a-again.txt", src);
    if (link(p, p2) != 0)
        return -1;
    put("docs/b.sh", "#!/bin/sh\necho b\n", 17, 0755);
    put("docs/empty", "", 0, 0600);
    mk("docs/deep", 0711);
    put("docs/deep/secret", "s3cr3t\n", 7, 0600);
    put("big.bin", big, BIG_LEN, 0644);
    snprintf(p, sizeof(p), "%s/docs/link", src);
    if (symlink("../big.bin", p) != 0)
        return -1;
    put("other", "other\n", 6, 0644);

    if (cairn_store_dir_open(repo_dir, 1, &st) != 0)
        return -1;
    memset(&io, 0, sizeof(io));
    io.kdf.log2_n = 10;
    io.kdf.r = 1;
    io.kdf.p = 1;
    /* Small chunks, so big.bin is many blobs. */
    io.chunk.min = 64 * 1024;
    io.chunk.avg = 256 * 1024;
    io.chunk.max = 1024 * 1024;
    if (cairn_repo_init(st, "pw", 2, &io, &repo) != 0) {
        cairn_store_free(st);
        return -1;
    }
    if (cairn_repo_load_index(repo, NULL) != 0)
        return -1;
    memset(&bo, 0, sizeof(bo));
    paths[0] = src;
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    if (cairn_backup(repo, &bo, &br) != 0)
        return -1;
    cairn_hex_encode(br.snapshot_id, CAIRN_ID_LEN, hex);
    return cairn_repo_find_snapshot(repo, hex, &snap);
}

static int teardown(void **state)
{
    (void)state;
    cairn_snapshot_free(snap);
    cairn_repo_free(repo);
    free(big);
    nftw(base, rm_one, 16, FTW_PHYS | FTW_DEPTH);
    return 0;
}

/* Run a download to its end, in pieces of step bytes. */
static uint8_t *drain(struct download *d, size_t step, size_t *out_len)
{
    uint8_t *buf = NULL, *p;
    size_t len = 0, cap = 0;
    long long n;

    for (;;) {
        if (len + step > cap) {
            cap = (len + step) * 2;
            p = realloc(buf, cap);
            assert_non_null(p);
            buf = p;
        }
        n = download_read(d, buf + len, step);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_true((size_t)n <= step);
        len += (size_t)n;
    }
    /* After the end, still the end. */
    assert_int_equal(download_read(d, buf, step), 0);
    *out_len = len;
    return buf;
}

struct expect {
    const char *name;
    int type; /* AE_IFREG, AE_IFDIR, AE_IFLNK */
    mode_t perm;
    const void *data;
    size_t len;
    const char *link;
    int seen;
    const char *hardlink; /* a hard link to this entry */
};

static void check_archive(const uint8_t *buf, size_t len,
                          struct expect *ex, size_t nex)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    uint8_t *got;
    size_t i, n;
    char name[512];

    assert_non_null(a);
    archive_read_support_format_all(a);
    assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK) {
        snprintf(name, sizeof(name), "%s", archive_entry_pathname(ae));
        n = strlen(name);
        if (n > 0 && name[n - 1] == '/')
            name[n - 1] = '\0';
        for (i = 0; i < nex; i++)
            if (strcmp(ex[i].name, name) == 0)
                break;
        if (i == nex)
            fail_msg("unexpected entry %s", name);
        assert_int_equal(ex[i].seen, 0);
        ex[i].seen = 1;
        /* A tar reader gives a hard link no file type of its own. */
        if (ex[i].hardlink == NULL)
            assert_int_equal(archive_entry_filetype(ae), ex[i].type);
        if (ex[i].type != AE_IFLNK)
            assert_int_equal(archive_entry_perm(ae) & 07777, ex[i].perm);
        if (ex[i].hardlink != NULL) {
            assert_non_null(archive_entry_hardlink(ae));
            assert_string_equal(archive_entry_hardlink(ae), ex[i].hardlink);
            assert_int_equal(archive_entry_size(ae), 0);
        } else if (ex[i].type == AE_IFREG) {
            assert_null(archive_entry_hardlink(ae));
            assert_int_equal(archive_entry_mtime(ae), MTIME);
            got = malloc(ex[i].len + 1);
            assert_non_null(got);
            assert_int_equal(archive_read_data(a, got, ex[i].len + 1),
                             (la_ssize_t)ex[i].len);
            assert_memory_equal(got, ex[i].data, ex[i].len);
            free(got);
        }
        if (ex[i].type == AE_IFLNK)
            assert_string_equal(archive_entry_symlink(ae), ex[i].link);
    }
    archive_read_free(a);
    for (i = 0; i < nex; i++)
        if (!ex[i].seen)
            fail_msg("entry %s is missing", ex[i].name);
}

static void one_format(enum download_format fmt, size_t step)
{
    struct expect ex[] = {
        {"docs", AE_IFDIR, 0750, NULL, 0, NULL, 0, NULL},
        {"docs/a.txt", AE_IFREG, 0640, "alpha\n", 6, NULL, 0, NULL},
        {"docs/a-again.txt", AE_IFREG, 0640, "alpha\n", 6, NULL, 0, NULL},
        {"docs/b.sh", AE_IFREG, 0755, "#!/bin/sh\necho b\n", 17, NULL, 0, NULL},
        {"docs/empty", AE_IFREG, 0600, "", 0, NULL, 0, NULL},
        {"docs/deep", AE_IFDIR, 0711, NULL, 0, NULL, 0, NULL},
        {"docs/deep/secret", AE_IFREG, 0600, "s3cr3t\n", 7, NULL, 0, NULL},
        {"docs/link", AE_IFLNK, 0777, NULL, 0, "../big.bin", 0, NULL},
        {"big.bin", AE_IFREG, 0644, NULL, BIG_LEN, NULL, 0, NULL},
    };
    char p1[1024], p2[1024];
    const char *paths[2] = {p1, p2};
    struct download *d;
    uint64_t files, bytes, skipped, dfiles, dbytes, damaged;
    uint8_t *buf;
    size_t len;

    ex[8].data = big;
    /* Entries come in name order: a-again.txt first, with the content. */
    if (fmt == DOWNLOAD_TAR)
        ex[1].hardlink = "docs/a-again.txt";
    snprintf(p1, sizeof(p1), "%s/docs/", src); /* a trailing slash is fine */
    snprintf(p2, sizeof(p2), "%s//big.bin", src);
    assert_int_equal(download_new(repo, snap, paths, 2, fmt, &d, NULL), 0);
    download_totals(d, &files, &bytes, &skipped);
    assert_int_equal(files, 6);
    /* The hard link's content counts once in a tar, twice in a zip. */
    assert_int_equal(bytes, 6 + 17 + 0 + 7 + BIG_LEN +
                                (fmt == DOWNLOAD_ZIP ? 6 : 0));
    assert_int_equal(skipped, 0);
    /* The cap: exactly the total fits, one byte less does not. */
    assert_int_equal(download_fits(d, bytes), 1);
    assert_int_equal(download_fits(d, bytes - 1), 0);
    buf = drain(d, step, &len);
    download_progress(d, &dfiles, &dbytes, &damaged);
    assert_int_equal(dfiles, 6);
    assert_int_equal(dbytes, bytes);
    assert_int_equal(damaged, 0);
    download_free(d);
    check_archive(buf, len, ex, sizeof(ex) / sizeof(ex[0]));
    free(buf);
}

static void test_tar(void **state)
{
    (void)state;
    one_format(DOWNLOAD_TAR, 7001);
    one_format(DOWNLOAD_TAR, 1 << 20);
}

static void test_zip(void **state)
{
    (void)state;
    one_format(DOWNLOAD_ZIP, 4093);
}

/* "/" alone: the snapshot's top level (the source's absolute path). */
static void test_root(void **state)
{
    const char *paths[1] = {"/"};
    struct download *d;
    struct archive *a;
    struct archive_entry *ae;
    uint64_t files;
    uint8_t *buf;
    size_t len;
    int found = 0;
    char want[1024];

    (void)state;
    assert_int_equal(download_new(repo, snap, paths, 1, DOWNLOAD_TAR, &d,
                                  NULL),
                     0);
    download_totals(d, &files, NULL, NULL);
    assert_int_equal(files, 7);
    buf = drain(d, 65536, &len);
    download_free(d);
    snprintf(want, sizeof(want), "%s/other", src + 1);
    a = archive_read_new();
    archive_read_support_format_all(a);
    assert_int_equal(archive_read_open_memory(a, buf, len), ARCHIVE_OK);
    while (archive_read_next_header(a, &ae) == ARCHIVE_OK)
        found |= strcmp(archive_entry_pathname(ae), want) == 0;
    archive_read_free(a);
    free(buf);
    assert_true(found);
}

static void test_refused(void **state)
{
    char p1[1024], p2[1024];
    const char *paths[2] = {p1, p2};
    struct download *d = NULL;
    size_t bad = 99;

    (void)state;
    snprintf(p1, sizeof(p1), "%s/docs", src);
    snprintf(p2, sizeof(p2), "%s/nothing-here", src);
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_ENOENT);
    assert_int_equal(bad, 1);
    assert_null(d);
    snprintf(p2, sizeof(p2), "%s/docs/../other", src);
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_EINVAL);
    snprintf(p2, sizeof(p2), "%s/docs/deep/../../docs", src);
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_ZIP, &d,
                                  &bad),
                     CAIRN_EINVAL);
    /* Two paths ending in "docs". */
    snprintf(p2, sizeof(p2), "%s/docs/", src);
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_EINVAL);
    snprintf(p2, sizeof(p2), "/");
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_EINVAL);
    snprintf(p2, sizeof(p2), "relative/path");
    assert_int_equal(download_new(repo, snap, paths, 2, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_EINVAL);
    assert_int_equal(download_new(repo, snap, paths, 0, DOWNLOAD_TAR, &d,
                                  &bad),
                     CAIRN_EINVAL);
    assert_int_equal(download_new(repo, snap, paths, 1, 7, &d, &bad),
                     CAIRN_EINVAL);
    download_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar),
        cmocka_unit_test(test_zip),
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
