/*
 * test_restore.c - back up a directory tree with every kind of entry,
 * restore it (whole, a subdirectory, one file) and compare content and
 * metadata; damage a pack and see the one affected file reported and
 * removed while the rest is restored.  Also: the policies for existing
 * files (overwrite, rename, skip), a restore cancelled half-way and
 * resumed (files in place are neither read nor written again), and small
 * files fetched with few ranged reads (counted by a store wrapper); many
 * directories' trees read ahead with few reads, and a damaged one
 * reported while the rest is restored.
 */
#include <dirent.h>
#include <errno.h>
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
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/backup.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/restore.h"
#include "cairn/store.h"

#define SPARSE_LEN (50u * 1024 * 1024) /* above the split threshold */
#define BIG_LEN (300u * 1024)

static char base[256], src[320], repo_dir[320];
static struct cairn_repo *repo;
static struct cairn_snapshot *snap, *snap2, *snap3;
static int have_xattrs;
static int verify_ids;
static volatile int cancel_flag;

struct evlog {
    int nkind[8];
    int ndamaged;
    char damaged[8][PATH_MAX];
    int nprogress;
    uint64_t last_bytes_done, bytes_total;
};

static void on_event(void *arg, const struct cairn_event *ev)
{
    struct evlog *l = arg;

    if (ev->kind > 0 && ev->kind < 8)
        l->nkind[ev->kind]++;
    if (ev->kind == CAIRN_EV_DAMAGED_FILE && l->ndamaged < 8)
        snprintf(l->damaged[l->ndamaged++], PATH_MAX, "%s", ev->path);
    if (ev->kind == CAIRN_EV_PROGRESS) {
        l->nprogress++;
        l->last_bytes_done = ev->progress->bytes_done;
        l->bytes_total = ev->progress->bytes_total;
    }
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

static void put(const char *rel, const void *data, size_t len, mode_t mode)
{
    char p[PATH_MAX * 2];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", src, rel);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void sub(char *out, size_t n, const char *dir, const char *rel)
{
    snprintf(out, n, "%s/%s", dir, rel);
}

static void set_time(const char *rel, int64_t sec, long nsec)
{
    char p[PATH_MAX * 2];
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};

    sub(p, sizeof(p), src, rel);
    assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int rm_chmod(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)f;
    if (flag == FTW_D)
        chmod(p, 0700);
    (void)st;
    return 0;
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

static void rm_rf(const char *p)
{
    nftw(p, rm_chmod, 16, FTW_PHYS);
    nftw(p, rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

static int make_src(void)
{
    static uint8_t big[BIG_LEN];
    char p[PATH_MAX * 2], q[PATH_MAX * 2];
    uint8_t blk[4096];
    int fd;

    sub(p, sizeof(p), src, "");
    if (mkdir(src, 0755) != 0)
        return -1;
    put("empty", NULL, 0, 0644);
    put("small.txt", "hello, cairn\n", 13, 0640);
    fill(big, sizeof(big), 1);
    put("big.bin", big, sizeof(big), 0600);
    put("odd-mode", "x", 1, 04751);
    put("hl1", "linked content\n", 15, 0644);

    /* A sparse file: data, a 20 MiB hole, data, a hole to the end. */
    sub(p, sizeof(p), src, "sparse.bin");
    fd = open(p, O_CREAT | O_WRONLY, 0644);
    fill(blk, sizeof(blk), 2);
    if (fd < 0 || pwrite(fd, blk, sizeof(blk), 0) != sizeof(blk) ||
        pwrite(fd, blk, sizeof(blk), 20u * 1024 * 1024) != sizeof(blk) ||
        ftruncate(fd, SPARSE_LEN) != 0)
        return -1;
    close(fd);

    sub(p, sizeof(p), src, "link");
    if (symlink("small.txt", p) != 0)
        return -1;
    sub(p, sizeof(p), src, "dangling");
    if (symlink("no/such/target", p) != 0)
        return -1;
    sub(p, sizeof(p), src, "fifo");
    if (mkfifo(p, 0620) != 0)
        return -1;
    if (geteuid() == 0) {
        sub(p, sizeof(p), src, "nulldev");
        if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) != 0)
            return -1;
    }
    sub(p, sizeof(p), src, "emptydir");
    mkdir(p, 0750);
    sub(p, sizeof(p), src, "d1");
    mkdir(p, 0755);
    sub(p, sizeof(p), src, "d1/d2");
    mkdir(p, 0755);
    sub(p, sizeof(p), src, "d1/d2/d3");
    mkdir(p, 0711);
    sub(p, sizeof(p), src, "d1/d2/d3/d4");
    mkdir(p, 0755);
    sub(p, sizeof(p), src, "d1/d2/d3/d4/deep.txt");
    put("d1/d2/d3/d4/deep.txt", "deep\n", 5, 0644);
    sub(p, sizeof(p), src, "sub");
    mkdir(p, 0755);
    sub(p, sizeof(p), src, "hl1");
    sub(q, sizeof(q), src, "sub/hl2");
    if (link(p, q) != 0)
        return -1;
    put("sub/other.txt", "other\n", 6, 0644);

    /* A read-only directory with a file in it: its mode must come last. */
    sub(p, sizeof(p), src, "ro");
    mkdir(p, 0755);
    put("ro/f", "in a read-only dir\n", 19, 0444);
    chmod(p, 0555);

    sub(p, sizeof(p), src, "small.txt");
    have_xattrs = setxattr(p, "user.test", "value", 5, 0) == 0;
    if (geteuid() == 0) {
        sub(p, sizeof(p), src, "sub/other.txt");
        if (chown(p, 1234, 5678) != 0)
            return -1;
    }

    set_time("small.txt", 1000000000, 123456789);
    set_time("d1/d2/d3/d4/deep.txt", 86400, 0);
    set_time("link", 1200000000, 5);
    set_time("d1/d2/d3", 1300000000, 42);
    set_time("emptydir", 1100000000, 0);
    set_time("ro", 1400000000, 0);
    return 0;
}

static int setup(void **state)
{
    struct cairn_repo_init_opts io;
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    struct cairn_store *st;
    const char *paths[1];

    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-trs-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(src, sizeof(src), "%s/src", base);
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    if (make_src() != 0)
        return -1;
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
    if (cairn_repo_load_index(repo, NULL) != 0)
        return -1;
    memset(&bo, 0, sizeof(bo));
    paths[0] = src;
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    if (cairn_backup(repo, &bo, &br) != 0 || br.errors != 0)
        return -1;
    if (cairn_repo_find_snapshot(repo, "latest", &snap) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cairn_snapshot_free(snap);
    cairn_snapshot_free(snap2);
    cairn_snapshot_free(snap3);
    cairn_repo_free(repo);
    rm_rf(base);
    return 0;
}

static void same_content(const char *a, const char *b)
{
    static uint8_t ba[1 << 16], bb[1 << 16];
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    ssize_t na, nb;

    assert_true(fa >= 0);
    assert_true(fb >= 0);
    for (;;) {
        na = read(fa, ba, sizeof(ba));
        nb = read(fb, bb, sizeof(bb));
        assert_int_equal(na, nb);
        if (na <= 0)
            break;
        assert_memory_equal(ba, bb, (size_t)na);
    }
    close(fa);
    close(fb);
}

/* Compare two directory trees entry by entry: type, mode, owner, mtime,
 * content, link target, device, user xattrs. */
static void compare_dirs(const char *a, const char *b, int *count)
{
    char pa[PATH_MAX], pb[PATH_MAX], la[PATH_MAX], lb[PATH_MAX];
    struct stat sa, sb;
    struct dirent *de;
    DIR *d = opendir(a);
    ssize_t n, m;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(pa, sizeof(pa), "%s/%s", a, de->d_name);
        snprintf(pb, sizeof(pb), "%s/%s", b, de->d_name);
        assert_int_equal(lstat(pa, &sa), 0);
        if (lstat(pb, &sb) != 0)
            fail_msg("missing after restore: %s", pb);
        (*count)++;
        assert_int_equal(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
        if (!S_ISLNK(sa.st_mode))
            assert_int_equal(sa.st_mode & 07777, sb.st_mode & 07777);
        assert_int_equal(sa.st_uid, sb.st_uid);
        assert_int_equal(sa.st_gid, sb.st_gid);
        assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
        assert_int_equal(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
        if (S_ISREG(sa.st_mode)) {
            assert_int_equal(sa.st_size, sb.st_size);
            same_content(pa, pb);
        } else if (S_ISLNK(sa.st_mode)) {
            n = readlink(pa, la, sizeof(la));
            m = readlink(pb, lb, sizeof(lb));
            assert_int_equal(n, m);
            assert_memory_equal(la, lb, (size_t)n);
        } else if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) {
            assert_int_equal(sa.st_rdev, sb.st_rdev);
        } else if (S_ISDIR(sa.st_mode)) {
            compare_dirs(pa, pb, count);
        }
        if (have_xattrs && !S_ISLNK(sa.st_mode)) {
            n = lgetxattr(pa, "user.test", la, sizeof(la));
            m = lgetxattr(pb, "user.test", lb, sizeof(lb));
            assert_int_equal(n, m);
            if (n > 0)
                assert_memory_equal(la, lb, (size_t)n);
        }
    }
    closedir(d);
}

static int restore_to(const char *target, const char *subpath,
                      struct evlog *log, struct cairn_restore_result *res)
{
    struct cairn_restore_opts o;

    memset(&o, 0, sizeof(o));
    o.target = target;
    o.subpath = subpath;
    o.threads = 2;
    o.restore_owner = geteuid() == 0;
    o.verify_ids = verify_ids;
    o.cancel = &cancel_flag;
    o.on_event = on_event;
    o.event_arg = log;
    return cairn_restore(repo, snap, &o, res);
}

static void test_restore_all(void **state)
{
    char out[PATH_MAX], p[PATH_MAX * 2], q[PATH_MAX * 2];
    struct cairn_restore_result res;
    struct evlog log;
    struct stat sa, sb;
    int count = 0;

    (void)state;
    memset(&log, 0, sizeof(log));
    snprintf(out, sizeof(out), "%s/out/new", base); /* created, -p */
    assert_int_equal(restore_to(out, src, &log, &res), 0);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.damaged_files, 0);
    assert_int_equal(log.nkind[CAIRN_EV_FILE_ERROR], 0);
    /* empty small big odd-mode hl1 sparse deep other ro/f + the link */
    assert_int_equal(res.files, 10);
    assert_int_equal(res.dirs, 7);
    assert_int_equal(res.links, 2);
    assert_int_equal(res.specials, geteuid() == 0 ? 2 : 1);
    assert_int_equal(res.bytes, 13 + BIG_LEN + 1 + 15 + SPARSE_LEN + 5 + 6 +
                                    19);
    assert_true(log.nprogress >= 1);
    assert_int_equal(log.last_bytes_done, log.bytes_total);

    compare_dirs(src, out, &count);
    assert_int_equal(count, geteuid() == 0 ? 21 : 20);

    /* Hard links share an inode again. */
    sub(p, sizeof(p), out, "hl1");
    sub(q, sizeof(q), out, "sub/hl2");
    assert_int_equal(stat(p, &sa), 0);
    assert_int_equal(stat(q, &sb), 0);
    assert_int_equal(sa.st_ino, sb.st_ino);
    assert_int_equal(sa.st_nlink, 2);

    /* Holes stay holes. */
    sub(p, sizeof(p), out, "sparse.bin");
    assert_int_equal(stat(p, &sa), 0);
    assert_int_equal(sa.st_size, SPARSE_LEN);
    assert_true(sa.st_blocks * 512 < 1024 * 1024);

    /* Restoring again over the first restore works too (as root: the
     * first restore left read-only files and directories). */
    if (geteuid() != 0)
        return;
    memset(&log, 0, sizeof(log));
    assert_int_equal(restore_to(out, src, &log, &res), 0);
    count = 0;
    compare_dirs(src, out, &count);
}

static void test_restore_whole_snapshot(void **state)
{
    char out[PATH_MAX], p[PATH_MAX * 3];
    struct cairn_restore_result res;
    struct evlog log;
    int count = 0;

    (void)state;
    memset(&log, 0, sizeof(log));
    snprintf(out, sizeof(out), "%s/out-root", base);
    verify_ids = 1;
    assert_int_equal(restore_to(out, NULL, &log, &res), 0);
    verify_ids = 0;
    snprintf(p, sizeof(p), "%s%s", out, src);
    compare_dirs(src, p, &count);
    assert_int_equal(count, geteuid() == 0 ? 21 : 20);
}

static void test_restore_subpaths(void **state)
{
    char out[PATH_MAX], sp[PATH_MAX * 2], p[PATH_MAX * 3];
    struct cairn_restore_result res;
    struct evlog log;
    struct stat st;
    int count = 0;

    (void)state;
    memset(&log, 0, sizeof(log));
    /* One file lands in target. */
    snprintf(out, sizeof(out), "%s/out-file", base);
    snprintf(sp, sizeof(sp), "%s/small.txt", src);
    assert_int_equal(restore_to(out, sp, &log, &res), 0);
    assert_int_equal(res.files, 1);
    snprintf(p, sizeof(p), "%s/small.txt", out);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 13);
    assert_int_equal(st.st_mtim.tv_nsec, 123456789);
    same_content(sp, p);

    /* A directory's contents land in target (trailing slash is fine). */
    snprintf(out, sizeof(out), "%s/out-dir", base);
    snprintf(sp, sizeof(sp), "%s/d1/", src);
    assert_int_equal(restore_to(out, sp, &log, &res), 0);
    snprintf(sp, sizeof(sp), "%s/d1", src);
    compare_dirs(sp, out, &count);
    assert_int_equal(count, 4);

    /* Not in the snapshot. */
    snprintf(sp, sizeof(sp), "%s/nope", src);
    assert_int_equal(restore_to(out, sp, &log, &res), CAIRN_ENOENT);
    snprintf(sp, sizeof(sp), "%s/small.txt/x", src);
    assert_int_equal(restore_to(out, sp, &log, &res), CAIRN_ENOENT);
    assert_int_equal(restore_to(NULL, NULL, &log, &res), CAIRN_EINVAL);

    /* Cancelled: stops with CAIRN_ECANCELED. */
    cancel_flag = 1;
    snprintf(out, sizeof(out), "%s/out-cancelled", base);
    assert_int_equal(restore_to(out, src, &log, &res), CAIRN_ECANCELED);
    cancel_flag = 0;
}

/*
 * Where a blob of snapshot s's entry root/<rel> lies, and the path of its
 * pack file: the entry's tree when dir, else its second content blob.
 */
static void blob_pack(const struct cairn_snapshot *s, const char *root,
                      const char *rel, int dir, char *out, size_t n,
                      struct cairn_blob_loc *loc)
{
    struct cairn_blob_codec *codec =
        cairn_blob_codec_new(cairn_repo_keys(repo), 0);
    char path[PATH_MAX * 2], *tok, *save = NULL, hex[65];
    const struct cairn_tree_entry *e = NULL;
    struct cairn_tree *t = NULL;
    uint8_t id[CAIRN_ID_LEN];

    memcpy(id, s->root, CAIRN_ID_LEN);
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (tok = strtok_r(path, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        cairn_tree_free(t);
        assert_int_equal(cairn_repo_read_tree(repo, codec, id, &t), 0);
        e = cairn_tree_find(t, tok);
        assert_non_null(e);
        if (dir)
            assert_true(e->has_subtree);
        if (e->has_subtree)
            memcpy(id, e->subtree, CAIRN_ID_LEN);
    }
    if (dir) {
        assert_int_equal(cairn_repo_lookup(repo, id, loc), 0);
        assert_int_equal(loc->type, CAIRN_BLOB_TREE);
    } else {
        assert_true(e->ncontent > 1);
        assert_int_equal(cairn_repo_lookup(repo, e->content[1], loc), 0);
    }
    cairn_hex_encode(loc->pack, CAIRN_ID_LEN, hex);
    snprintf(out, n, "%s/data/%.2s/%s", repo_dir, hex, hex);
    cairn_tree_free(t);
    cairn_blob_codec_free(codec);
}

static void flip(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void test_restore_damaged(void **state)
{
    char out[PATH_MAX], pack[PATH_MAX * 2], p[PATH_MAX * 2], want[PATH_MAX];
    struct cairn_restore_result res;
    struct cairn_blob_loc loc;
    struct evlog log;
    struct stat st;

    (void)state;
    blob_pack(snap, src, "big.bin", 0, pack, sizeof(pack), &loc);
    flip(pack, loc.offset + loc.length / 2);

    memset(&log, 0, sizeof(log));
    snprintf(out, sizeof(out), "%s/out-damaged", base);
    assert_int_equal(restore_to(out, src, &log, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.damaged_files, 1);
    assert_int_equal(log.nkind[CAIRN_EV_DAMAGED_FILE], 1);
    snprintf(want, sizeof(want), "%s/big.bin", src);
    assert_string_equal(log.damaged[0], want);
    /* The damaged file is not left with wrong content ... */
    sub(p, sizeof(p), out, "big.bin");
    assert_int_equal(lstat(p, &st), -1);
    /* ... and the others are all there. */
    sub(p, sizeof(p), out, "small.txt");
    sub(want, sizeof(want), src, "small.txt");
    same_content(want, p);
    sub(p, sizeof(p), out, "sparse.bin");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(res.files, 9);

    /* A truncated pack is damage too (the store may keep the pack open,
     * so it is cut short rather than removed). */
    flip(pack, loc.offset + loc.length / 2);
    assert_int_equal(stat(pack, &st), 0);
    assert_int_equal(truncate(pack, loc.offset), 0);
    memset(&log, 0, sizeof(log));
    snprintf(out, sizeof(out), "%s/out-short", base);
    assert_int_equal(restore_to(out, src, &log, &res), CAIRN_ECORRUPT);
    assert_true(res.damaged_files >= 1);
    assert_int_equal(log.nkind[CAIRN_EV_DAMAGED_FILE], (int)res.damaged_files);
}

/* ---- a second tree: many small files, a few bigger ones ---- */

#define MANY_SMALL 300
#define MANY_BIG 6
#define BIG2_LEN (1536u * 1024)

static char src2[320];

/* A store that counts ranged reads (and sets cancel_flag after
 * cancel_after of them longer than 64 KiB, when set). */
struct counting {
    struct cairn_store *inner;
    int ranges, big_ranges, cancel_after;
};
static struct counting counter;

static int c_put(void *ctx, enum cairn_obj_type t, const char *n,
                 const void *b, size_t l, int d)
{
    return cairn_store_put(((struct counting *)ctx)->inner, t, n, b, l, d);
}
static int c_begin(void *ctx, enum cairn_obj_type t, void **h)
{
    return cairn_store_begin(((struct counting *)ctx)->inner, t, h);
}
static int c_append(void *ctx, void *h, const void *b, size_t l)
{
    return cairn_store_append(((struct counting *)ctx)->inner, h, b, l);
}
static int c_commit(void *ctx, void *h, const char *n, int d)
{
    return cairn_store_commit(((struct counting *)ctx)->inner, h, n, d);
}
static void c_abort(void *ctx, void *h)
{
    cairn_store_abort(((struct counting *)ctx)->inner, h);
}
static int c_stream_read(void *ctx, void *h, uint64_t off, size_t len,
                         uint8_t *out)
{
    return cairn_store_stream_read(((struct counting *)ctx)->inner, h, off,
                                   len, out);
}
static int c_barrier(void *ctx)
{
    return cairn_store_barrier(((struct counting *)ctx)->inner);
}
static int c_get(void *ctx, enum cairn_obj_type t, const char *n,
                 uint8_t **o, size_t *ol)
{
    return cairn_store_get(((struct counting *)ctx)->inner, t, n, o, ol);
}
static int c_get_range(void *ctx, enum cairn_obj_type t, const char *n,
                       uint64_t off, size_t len, uint8_t *out)
{
    struct counting *c = ctx;

    __atomic_add_fetch(&c->ranges, 1, __ATOMIC_SEQ_CST);
    if (len > 65536 &&
        __atomic_add_fetch(&c->big_ranges, 1, __ATOMIC_SEQ_CST) ==
            c->cancel_after)
        cancel_flag = 1;
    return cairn_store_get_range(c->inner, t, n, off, len, out);
}
static int c_stat(void *ctx, enum cairn_obj_type t, const char *n,
                  uint64_t *sz)
{
    return cairn_store_stat(((struct counting *)ctx)->inner, t, n, sz);
}
static int c_list(void *ctx, enum cairn_obj_type t, cairn_store_list_fn fn,
                  void *arg)
{
    return cairn_store_list(((struct counting *)ctx)->inner, t, fn, arg);
}
static int c_remove(void *ctx, enum cairn_obj_type t, const char *n)
{
    return cairn_store_remove(((struct counting *)ctx)->inner, t, n);
}
static void c_close(void *ctx)
{
    cairn_store_free(((struct counting *)ctx)->inner);
}
static const struct cairn_store_ops counting_ops = {
    .name = "counting",
    .put = c_put,
    .begin = c_begin,
    .append = c_append,
    .commit = c_commit,
    .abort = c_abort,
    .stream_read = c_stream_read,
    .barrier = c_barrier,
    .get = c_get,
    .get_range = c_get_range,
    .stat = c_stat,
    .list = c_list,
    .remove = c_remove,
    .close = c_close,
};

/* The archive opened again through the counting store. */
static struct cairn_repo *open_counted(void)
{
    static struct cairn_store st;
    struct cairn_repo *r;

    memset(&counter, 0, sizeof(counter));
    assert_int_equal(cairn_store_dir_open(repo_dir, 0, &counter.inner), 0);
    st.ops = &counting_ops;
    st.ctx = &counter;
    /* The repo frees its store with cairn_store_free: give it a heap
     * copy. */
    {
        struct cairn_store *h = malloc(sizeof(*h));

        assert_non_null(h);
        *h = st;
        assert_int_equal(cairn_repo_open(h, "pw", 2, &r), 0);
    }
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    counter.ranges = 0;
    counter.big_ranges = 0;
    return r;
}

static void make_src2(void)
{
    static uint8_t big[BIG2_LEN];
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    const char *paths[1];
    char p[PATH_MAX * 2], d[PATH_MAX];
    int i, fd;

    snprintf(src2, sizeof(src2), "%s/src2", base);
    assert_int_equal(mkdir(src2, 0755), 0);
    for (i = 0; i < MANY_BIG; i++) {
        snprintf(p, sizeof(p), "%s/big%d.bin", src2, i);
        fill(big, sizeof(big), 100 + (uint32_t)i);
        fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
        close(fd);
    }
    for (i = 0; i < MANY_SMALL; i++) {
        snprintf(d, sizeof(d), "%s/d%d", src2, i % 3);
        mkdir(d, 0755);
        snprintf(p, sizeof(p), "%s/f%03d.txt", d, i);
        fill(big, 700 + (size_t)i, 1000 + (uint32_t)i);
        fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0640);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, big, 700 + (size_t)i),
                         (ssize_t)(700 + i));
        close(fd);
    }
    memset(&bo, 0, sizeof(bo));
    paths[0] = src2;
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    bo.threads = 1; /* blobs stored in walk order: a known pack layout */
    assert_int_equal(cairn_backup(repo, &bo, &br), 0);
    assert_int_equal(cairn_repo_find_snapshot(repo, "latest", &snap2), 0);
}

static int restore_with(struct cairn_repo *r, const struct cairn_snapshot *s,
                        const char *target, const char *subpath,
                        int existing, int threads,
                        struct cairn_restore_result *res)
{
    struct cairn_restore_opts o;

    memset(&o, 0, sizeof(o));
    o.target = target;
    o.subpath = subpath;
    o.threads = threads;
    o.cancel = &cancel_flag;
    o.existing = existing;
    return cairn_restore(r, s, &o, res);
}

/* Number of regular files under dir (recursively), and whether a
 * temporary file of a restore is among them. */
static int count_files(const char *dir, int *tmps)
{
    char p[PATH_MAX * 2];
    struct dirent *de;
    struct stat st;
    DIR *d = opendir(dir);
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        assert_int_equal(lstat(p, &st), 0);
        if (strncmp(de->d_name, ".cairn-tmp.", 11) == 0)
            (*tmps)++;
        if (S_ISDIR(st.st_mode))
            n += count_files(p, tmps);
        else if (S_ISREG(st.st_mode))
            n++;
    }
    closedir(d);
    return n;
}

static ino_t inode_of(const char *p, struct timespec *ctime)
{
    struct stat st;

    assert_int_equal(lstat(p, &st), 0);
    if (ctime != NULL)
        *ctime = st.st_ctim;
    return st.st_ino;
}

static void write_text(const char *p, const char *text)
{
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_restore_policies(void **state)
{
    char out[PATH_MAX], sp[PATH_MAX * 2], p[PATH_MAX * 2], alt[PATH_MAX * 3];
    char tag[32];
    struct cairn_restore_result res;
    struct timespec ct0, ct1;
    struct stat st;
    struct tm tm;
    time_t t;
    ino_t ino;

    (void)state;
    snprintf(out, sizeof(out), "%s/out-policy", base);
    snprintf(sp, sizeof(sp), "%s/small.txt", src);
    snprintf(p, sizeof(p), "%s/small.txt", out);
    assert_int_equal(restore_with(repo, snap, out, sp, 0, 1, &res), 0);
    assert_int_equal(res.files, 1);
    assert_int_equal(res.skipped_files, 0);

    /* The same file in place: skipped, not rewritten. */
    ino = inode_of(p, &ct0);
    assert_int_equal(restore_with(repo, snap, out, sp, 0, 1, &res), 0);
    assert_int_equal(res.files, 0);
    assert_int_equal(res.skipped_files, 1);
    assert_int_equal(res.skipped_bytes, 13);
    assert_int_equal(inode_of(p, &ct1), ino);
    assert_int_equal(ct0.tv_sec, ct1.tv_sec);
    assert_int_equal(ct0.tv_nsec, ct1.tv_nsec);

    /* Something different there: skip leaves it. */
    write_text(p, "changed by the user\n");
    assert_int_equal(restore_with(repo, snap, out, sp, CAIRN_RESTORE_SKIP, 1,
                                  &res),
                     0);
    assert_int_equal(res.kept, 1);
    assert_int_equal(res.files, 0);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 20);

    /* rename: restored beside it, with the snapshot's time in the name. */
    t = (time_t)(snap->time_ns / 1000000000);
    gmtime_r(&t, &tm);
    strftime(tag, sizeof(tag), "%Y-%m-%d %H%M%S", &tm);
    snprintf(alt, sizeof(alt), "%s/small (restored %s).txt", out, tag);
    assert_int_equal(restore_with(repo, snap, out, sp, CAIRN_RESTORE_RENAME,
                                  1, &res),
                     0);
    assert_int_equal(res.renamed, 1);
    assert_int_equal(res.files, 1);
    same_content(sp, alt);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 20);
    /* ... and again: the renamed copy is in place already. */
    assert_int_equal(restore_with(repo, snap, out, sp, CAIRN_RESTORE_RENAME,
                                  1, &res),
                     0);
    assert_int_equal(res.renamed, 0);
    assert_int_equal(res.skipped_files, 1);
    assert_int_equal(res.files, 0);

    /* overwrite (the default) replaces it. */
    assert_int_equal(restore_with(repo, snap, out, sp, 0, 1, &res), 0);
    assert_int_equal(res.files, 1);
    same_content(sp, p);

    /* A bad policy is refused. */
    assert_int_equal(restore_with(repo, snap, out, sp, 7, 1, &res),
                     CAIRN_EINVAL);
}

static void test_restore_coalesced(void **state)
{
    char out[PATH_MAX];
    struct cairn_restore_result res;
    struct cairn_repo *r;
    int count = 0, tmps = 0;

    (void)state;
    make_src2();
    r = open_counted();
    snprintf(out, sizeof(out), "%s/out-many", base);
    assert_int_equal(restore_with(r, snap2, out, src2, 0, 2, &res), 0);
    assert_int_equal(res.files, MANY_SMALL + MANY_BIG);
    compare_dirs(src2, out, &count);
    assert_int_equal(count, MANY_SMALL + MANY_BIG + 3);
    /* 306 files in a handful of reads: the trees (7), the small files in
     * a few runs, each big file in one or two. */
    if (counter.ranges > 7 + 2 * MANY_BIG + 6)
        fail_msg("%d ranged reads for %d files", counter.ranges,
                 MANY_SMALL + MANY_BIG);
    assert_int_equal(count_files(out, &tmps), MANY_SMALL + MANY_BIG);
    assert_int_equal(tmps, 0);
    cairn_repo_free(r);
}

static void test_restore_resume(void **state)
{
    char out[PATH_MAX], p[PATH_MAX * 2];
    struct cairn_restore_result res;
    struct cairn_repo *r;
    struct timespec ct[MANY_BIG], c2;
    ino_t ino[MANY_BIG];
    int before, tmps = 0, count = 0, i, done = 0;

    (void)state;
    r = open_counted();
    snprintf(out, sizeof(out), "%s/out-resume", base);
    /* Stop after the third large read (one worker: in order). */
    counter.cancel_after = 3;
    cancel_flag = 0;
    assert_int_equal(restore_with(r, snap2, out, src2, 0, 1, &res),
                     CAIRN_ECANCELED);
    cancel_flag = 0;
    before = count_files(out, &tmps);
    /* Some files are whole, no partial file under its real name, no
     * temporary file left. */
    assert_true(before > 0);
    assert_true(before < MANY_SMALL + MANY_BIG);
    assert_int_equal(tmps, 0);
    for (i = 0; i < MANY_BIG; i++) {
        snprintf(p, sizeof(p), "%s/big%d.bin", out, i);
        ino[i] = 0;
        if (access(p, F_OK) == 0) {
            ino[i] = inode_of(p, &ct[i]);
            done++;
        }
    }
    assert_true(done > 0);
    /* A leftover temporary file is removed by the next run. */
    snprintf(p, sizeof(p), "%s/d1/.cairn-tmp.leftover", out);
    mkdir(p, 0700); /* d1 may not exist yet */
    rmdir(p);
    snprintf(p, sizeof(p), "%s/.cairn-tmp.leftover", out);
    write_text(p, "half a file");

    counter.cancel_after = 0;
    counter.ranges = 0;
    assert_int_equal(restore_with(r, snap2, out, src2, 0, 2, &res), 0);
    assert_int_equal(res.skipped_files, (uint64_t)before);
    assert_int_equal(res.files + res.skipped_files, MANY_SMALL + MANY_BIG);
    assert_int_equal(access(p, F_OK), -1);
    for (i = 0; i < MANY_BIG; i++) {
        if (ino[i] == 0)
            continue;
        snprintf(p, sizeof(p), "%s/big%d.bin", out, i);
        assert_int_equal(inode_of(p, &c2), ino[i]);
        assert_int_equal(c2.tv_sec, ct[i].tv_sec);
        assert_int_equal(c2.tv_nsec, ct[i].tv_nsec);
    }
    compare_dirs(src2, out, &count);
    tmps = 0;
    assert_int_equal(count_files(out, &tmps), MANY_SMALL + MANY_BIG);
    assert_int_equal(tmps, 0);

    /* A third run has nothing to do and reads no content. */
    counter.ranges = 0;
    assert_int_equal(restore_with(r, snap2, out, src2, 0, 2, &res), 0);
    assert_int_equal(res.files, 0);
    assert_int_equal(res.skipped_files, MANY_SMALL + MANY_BIG);
    assert_int_equal(res.skipped_bytes,
                     (uint64_t)MANY_BIG * BIG2_LEN +
                         (uint64_t)MANY_SMALL * 700 +
                         (uint64_t)MANY_SMALL * (MANY_SMALL - 1) / 2);
    assert_true(counter.ranges <= 7); /* the trees only: 3 to resolve, 4 */
    cairn_repo_free(r);
}

/* ---- a third tree: many directories ---- */

#define FAN 6 /* FAN^3 leaf directories, each with one file */

static char src3[320];

static void make_src3(void)
{
    struct cairn_backup_opts bo;
    struct cairn_backup_result br;
    const char *paths[1];
    char p[PATH_MAX * 2];
    uint8_t buf[600];
    int a, b, c, fd;

    snprintf(src3, sizeof(src3), "%s/src3", base);
    assert_int_equal(mkdir(src3, 0755), 0);
    for (a = 0; a < FAN; a++) {
        snprintf(p, sizeof(p), "%s/a%d", src3, a);
        assert_int_equal(mkdir(p, 0755), 0);
        for (b = 0; b < FAN; b++) {
            snprintf(p, sizeof(p), "%s/a%d/b%d", src3, a, b);
            assert_int_equal(mkdir(p, 0750), 0);
            for (c = 0; c < FAN; c++) {
                snprintf(p, sizeof(p), "%s/a%d/b%d/c%d", src3, a, b, c);
                assert_int_equal(mkdir(p, 0700), 0);
                snprintf(p, sizeof(p), "%s/a%d/b%d/c%d/f.txt", src3, a, b,
                         c);
                fill(buf, sizeof(buf), (uint32_t)(a * 100 + b * 10 + c));
                fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, buf, sizeof(buf)),
                                 (ssize_t)sizeof(buf));
                close(fd);
            }
        }
    }
    memset(&bo, 0, sizeof(bo));
    paths[0] = src3;
    bo.paths = paths;
    bo.npaths = 1;
    bo.hostname = "test";
    bo.threads = 1;
    assert_int_equal(cairn_backup(repo, &bo, &br), 0);
    assert_int_equal(cairn_repo_find_snapshot(repo, "latest", &snap3), 0);
}

/*
 * The trees are read ahead level by level with coalesced reads: 259
 * directories in a few reads, not one each.  A tree that does not
 * authenticate is read again while planning and reported; only its
 * directory's contents are lost.
 */
static void test_restore_trees_ahead(void **state)
{
    char out[PATH_MAX], p[PATH_MAX * 2], pack[PATH_MAX * 2], want[PATH_MAX];
    struct cairn_restore_result res;
    struct cairn_restore_opts o;
    struct cairn_blob_loc loc;
    struct cairn_repo *r;
    struct evlog log;
    struct stat st;
    int count = 0, tmps = 0, leaves = FAN * FAN * FAN;

    (void)state;
    make_src3();
    r = open_counted();
    snprintf(out, sizeof(out), "%s/out-trees", base);
    assert_int_equal(restore_with(r, snap3, out, src3, 0, 4, &res), 0);
    assert_int_equal(res.files, (uint64_t)leaves);
    assert_int_equal(res.dirs, (uint64_t)(FAN + FAN * FAN + leaves));
    compare_dirs(src3, out, &count);
    assert_int_equal(count, FAN + FAN * FAN + 2 * leaves);
    /* Resolving the path (a few trees), one or two reads per level of
     * 1 + 6 + 36 + 216 trees, the small files in a few runs. */
    if (counter.ranges > 20)
        fail_msg("%d ranged reads for %d directories", counter.ranges,
                 1 + FAN + FAN * FAN + leaves);
    assert_int_equal(count_files(out, &tmps), leaves);
    assert_int_equal(tmps, 0);
    cairn_repo_free(r);

    /* A damaged directory listing: reported, the rest restored. */
    blob_pack(snap3, src3, "a2/b3", 1, pack, sizeof(pack), &loc);
    flip(pack, loc.offset + loc.length / 2);
    memset(&log, 0, sizeof(log));
    memset(&o, 0, sizeof(o));
    snprintf(out, sizeof(out), "%s/out-trees-damaged", base);
    o.target = out;
    o.subpath = src3;
    o.threads = 3;
    o.cancel = &cancel_flag;
    o.on_event = on_event;
    o.event_arg = &log;
    assert_int_equal(cairn_restore(repo, snap3, &o, &res), CAIRN_ECORRUPT);
    flip(pack, loc.offset + loc.length / 2);
    assert_int_equal(log.nkind[CAIRN_EV_DAMAGED_FILE], 1);
    snprintf(want, sizeof(want), "%s/a2/b3", src3);
    assert_string_equal(log.damaged[0], want);
    assert_int_equal(res.files, (uint64_t)(leaves - FAN));
    sub(p, sizeof(p), out, "a2/b3");
    assert_int_equal(stat(p, &st), 0); /* made, but empty */
    sub(p, sizeof(p), out, "a2/b3/c0");
    assert_int_equal(lstat(p, &st), -1);
    sub(p, sizeof(p), out, "a2/b2/c5/f.txt");
    snprintf(want, sizeof(want), "%s/a2/b2/c5/f.txt", src3);
    same_content(want, p);
    tmps = 0;
    assert_int_equal(count_files(out, &tmps), leaves - FAN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_all),
        cmocka_unit_test(test_restore_whole_snapshot),
        cmocka_unit_test(test_restore_subpaths),
        cmocka_unit_test(test_restore_policies),
        cmocka_unit_test(test_restore_coalesced),
        cmocka_unit_test(test_restore_resume),
        cmocka_unit_test(test_restore_damaged),
        cmocka_unit_test(test_restore_trees_ahead),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
