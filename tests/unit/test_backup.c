/*
 * test_backup.c - the backup pipeline and walker: a tree with every kind
 * of entry and two selected paths under different parents, compared entry
 * by entry and byte by byte with the snapshot; incremental backups (what
 * is read again, and what is not); excludes and CACHEDIR.TAG; a file that
 * cannot be read; a selected path that does not exist; cancellation; path
 * cleaning.
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
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/backup.h"
#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/pack.h"
#include "cairn/repo.h"
#include "cairn/store.h"
#include "cairn/tree.h"

#define PASS "backup test passphrase"
#define BIG_LEN (300u * 1024)

static char base[64], repo_dir[128], sel1[160], sel2[160], p1[96], p2[96];
static struct cairn_repo *repo;
static struct cairn_blob_codec *codec;
static char snap1[65]; /* the first full backup */
static char last_snap[65];
static int have_xattrs;

/* ------------------------------------------------------------ helpers */

struct evlog {
    int nkind[8];
    int nerr;
    char errpath[8][PATH_MAX];
    int errno_[8];
    int cancel_after; /* set *cancel at the first progress with files */
    volatile int *cancel;
};

static void on_event(void *arg, const struct cairn_event *ev)
{
    struct evlog *l = arg;

    if (ev->kind > 0 && ev->kind < 8)
        l->nkind[ev->kind]++;
    if (ev->kind == CAIRN_EV_FILE_ERROR && l->nerr < 8) {
        snprintf(l->errpath[l->nerr], PATH_MAX, "%s", ev->path);
        l->errno_[l->nerr++] = ev->sys_errno;
    }
    if (ev->kind == CAIRN_EV_PROGRESS && l->cancel != NULL &&
        ev->progress->files_done >= (uint64_t)l->cancel_after)
        *l->cancel = 1;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 7;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void put(const char *dir, const char *rel, const void *data,
                size_t len, mode_t mode)
{
    char p[PATH_MAX];
    int fd;

    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void mk(const char *dir, const char *rel, mode_t mode)
{
    char p[PATH_MAX];

    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, mode), 0);
    assert_int_equal(chmod(p, mode), 0);
}

static int rm_chmod(const char *p, const struct stat *st, int flag,
                    struct FTW *f)
{
    (void)f;
    (void)st;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(p, 0700);
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

static void read_file(const char *path, uint8_t **out, size_t *out_len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0),
                     (ssize_t)st.st_size);
    close(fd);
    *out = buf;
    *out_len = (size_t)st.st_size;
}

static int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static struct cairn_repo *open_repo(const char *dir)
{
    struct cairn_store *s;
    struct cairn_repo *r;

    assert_int_equal(cairn_store_dir_open(dir, 0, &s), 0);
    assert_int_equal(cairn_repo_open(s, PASS, strlen(PASS), &r), 0);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    return r;
}

static struct cairn_repo *init_repo(const char *dir)
{
    struct cairn_repo_init_opts o;
    struct cairn_store *s;
    struct cairn_repo *r;

    memset(&o, 0, sizeof(o));
    o.chunk.min = 4096;
    o.chunk.avg = 16384;
    o.chunk.max = 65536;
    o.pack_size = 64 * 1024;
    o.kdf.log2_n = 10;
    o.kdf.r = 8;
    o.kdf.p = 1;
    assert_int_equal(cairn_store_dir_open(dir, 1, &s), 0);
    assert_int_equal(cairn_repo_init(s, PASS, strlen(PASS), &o, &r), 0);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    return r;
}

static int run_backup(struct cairn_repo *r, const char *const *paths,
                      size_t npaths, const struct cairn_snapshot *parent,
                      struct evlog *log, struct cairn_backup_result *res)
{
    struct cairn_backup_opts o;

    memset(&o, 0, sizeof(o));
    memset(log, 0, sizeof(*log));
    o.paths = paths;
    o.npaths = npaths;
    o.parent = parent;
    o.hostname = "testhost";
    o.threads = 2;
    o.on_event = on_event;
    o.event_arg = log;
    return cairn_backup(r, &o, res);
}

static struct cairn_snapshot *snap_of(struct cairn_repo *r,
                                      const uint8_t id[CAIRN_ID_LEN])
{
    struct cairn_snapshot *s;
    char hex[65];

    cairn_hex_encode(id, CAIRN_ID_LEN, hex);
    assert_int_equal(cairn_repo_find_snapshot(r, hex, &s), 0);
    return s;
}

static size_t count_snapshots(struct cairn_repo *r)
{
    struct cairn_snapshot **v;
    size_t n;

    assert_int_equal(cairn_repo_list_snapshots(r, &v, &n, NULL), 0);
    cairn_snapshot_list_free(v, n);
    return n;
}

/* The content of a file entry, from its blobs. */
static void entry_content(struct cairn_repo *r,
                          const struct cairn_tree_entry *e, uint8_t **out,
                          size_t *out_len)
{
    struct cairn_blob_codec *c =
        cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    uint8_t *buf = malloc(e->size + 1), *blob;
    size_t len = 0, blen;
    uint32_t i;

    assert_non_null(c);
    assert_non_null(buf);
    for (i = 0; i < e->ncontent; i++) {
        assert_int_equal(cairn_repo_read_blob(r, c, e->content[i],
                                              CAIRN_BLOB_DATA, &blob, &blen),
                         0);
        assert_true(len + blen <= e->size);
        memcpy(buf + len, blob, blen);
        len += blen;
        free(blob);
    }
    cairn_blob_codec_free(c);
    *out = buf;
    *out_len = len;
}

/* Follow the components of an absolute path from the root tree; check
 * each directory on the way against the file system.  *out: the tree of
 * the last component (NULL for a file: *out_entry gets a copy of the
 * lookups instead). */
static struct cairn_tree *tree_at(struct cairn_repo *r,
                                  const uint8_t root[CAIRN_ID_LEN],
                                  const char *abs)
{
    struct cairn_tree *t, *next;
    const struct cairn_tree_entry *e;
    char comp[NAME_MAX + 1], sofar[PATH_MAX];
    const char *p = abs + 1, *s;
    struct stat st;
    size_t n, sl = 0;

    assert_int_equal(cairn_repo_read_tree(r, codec, root, &t), 0);
    while (*p != '\0') {
        s = strchr(p, '/');
        n = s ? (size_t)(s - p) : strlen(p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        sofar[sl++] = '/';
        memcpy(sofar + sl, comp, n + 1);
        sl += n;
        e = cairn_tree_find(t, comp);
        assert_non_null(e);
        assert_int_equal(e->type, CAIRN_NODE_DIR);
        assert_true(e->has_subtree);
        /* Real metadata on the way, not made up. */
        assert_int_equal(lstat(sofar, &st), 0);
        assert_int_equal(e->mode, st.st_mode & 07777);
        assert_int_equal(e->uid, st.st_uid);
        assert_int_equal(e->gid, st.st_gid);
        assert_int_equal(e->ino, st.st_ino);
        assert_int_equal(cairn_repo_read_tree(r, codec, e->subtree, &next),
                         0);
        cairn_tree_free(t);
        t = next;
        p += n;
        if (*p == '/')
            p++;
    }
    return t;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in a directory. */
static size_t list_dir(const char *path, char ***out)
{
    struct dirent **de;
    char **v;
    int n, i;
    size_t k = 0;

    n = scandir(path, &de, NULL, NULL);
    assert_true(n >= 0);
    v = calloc((size_t)n + 1, sizeof(*v));
    assert_non_null(v);
    for (i = 0; i < n; i++) {
        if (strcmp(de[i]->d_name, ".") != 0 &&
            strcmp(de[i]->d_name, "..") != 0)
            v[k++] = strdup(de[i]->d_name);
        free(de[i]);
    }
    free(de);
    qsort(v, k, sizeof(*v), name_cmp);
    *out = v;
    return k;
}

static void free_names(char **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* One entry against the file it was made from. */
static void compare_entry(struct cairn_repo *r,
                          const struct cairn_tree_entry *e, const char *path,
                          uint64_t *files, uint64_t *bytes);

/* A whole directory tree against the snapshot's tree. */
static void compare_tree(struct cairn_repo *r, const struct cairn_tree *t,
                         const char *path, uint64_t *files, uint64_t *bytes)
{
    char **names, sub[PATH_MAX];
    size_t n, i;

    n = list_dir(path, &names);
    assert_int_equal(t->nentries, n);
    for (i = 0; i < n; i++) {
        assert_string_equal(t->entries[i].name, names[i]);
        if (i > 0)
            assert_true(strcmp(t->entries[i - 1].name, t->entries[i].name) <
                        0);
        snprintf(sub, sizeof(sub), "%s/%s", path, names[i]);
        compare_entry(r, &t->entries[i], sub, files, bytes);
    }
    free_names(names, n);
}

static void compare_entry(struct cairn_repo *r,
                          const struct cairn_tree_entry *e, const char *path,
                          uint64_t *files, uint64_t *bytes)
{
    struct cairn_tree *sub;
    struct stat st;
    uint8_t *a, *b;
    size_t alen, blen;
    char target[PATH_MAX], xv[256];
    ssize_t n;
    uint16_t i;

    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(e->mode, st.st_mode & 07777);
    assert_int_equal(e->uid, st.st_uid);
    assert_int_equal(e->gid, st.st_gid);
    assert_int_equal(e->ino, st.st_ino);
    assert_int_equal(e->mtime_ns, ts_ns(&st.st_mtim));
    for (i = 0; i < e->nxattrs; i++) {
        n = lgetxattr(path, e->xattrs[i].name, xv, sizeof(xv));
        assert_int_equal(n, (ssize_t)e->xattrs[i].len);
        assert_memory_equal(xv, e->xattrs[i].value, (size_t)n);
    }
    if (have_xattrs && !S_ISLNK(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        n = llistxattr(path, xv, sizeof(xv));
        assert_true(n >= 0);
        /* every user.* attribute was recorded */
        if (n > 0 && strncmp(xv, "user.", 5) == 0)
            assert_true(e->nxattrs >= 1);
    }
    if (S_ISREG(st.st_mode)) {
        assert_int_equal(e->type, CAIRN_NODE_FILE);
        assert_int_equal(e->size, (uint64_t)st.st_size);
        entry_content(r, e, &a, &alen);
        read_file(path, &b, &blen);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, blen);
        free(a);
        free(b);
        (*files)++;
        *bytes += (uint64_t)st.st_size;
    } else if (S_ISLNK(st.st_mode)) {
        assert_int_equal(e->type, CAIRN_NODE_SYMLINK);
        n = readlink(path, target, sizeof(target) - 1);
        assert_true(n >= 0);
        target[n] = '\0';
        assert_string_equal(e->target, target);
        (*files)++;
    } else if (S_ISFIFO(st.st_mode)) {
        assert_int_equal(e->type, CAIRN_NODE_FIFO);
        (*files)++;
    } else if (S_ISDIR(st.st_mode)) {
        assert_int_equal(e->type, CAIRN_NODE_DIR);
        assert_true(e->has_subtree);
        assert_int_equal(cairn_repo_read_tree(r, codec, e->subtree, &sub), 0);
        compare_tree(r, sub, path, files, bytes);
        cairn_tree_free(sub);
    } else {
        fail_msg("unexpected file type at %s", path);
    }
}

/* ------------------------------------------------------------ the tree */

static void make_tree(void)
{
    static uint8_t big[BIG_LEN];
    char p[PATH_MAX];

    snprintf(p1, sizeof(p1), "%s/p1", base);
    snprintf(p2, sizeof(p2), "%s/p2", base);
    snprintf(sel1, sizeof(sel1), "%s/sel1", p1);
    snprintf(sel2, sizeof(sel2), "%s/sel2.txt", p2);
    assert_int_equal(mkdir(p1, 0751), 0);
    assert_int_equal(mkdir(p2, 0755), 0);
    assert_int_equal(mkdir(sel1, 0755), 0);
    put(p1, "not-selected", "no", 2, 0644);
    put(p2, "not-selected-either", "no", 2, 0644);
    put(p2, "sel2.txt", "the second selected path\n", 25, 0640);

    put(sel1, "empty", NULL, 0, 0644);
    put(sel1, "small.txt", "hello, cairn\n", 13, 0644);
    fill(big, sizeof(big), 1);
    put(sel1, "big.bin", big, sizeof(big), 0600);
    put(sel1, "odd-mode", "x", 1, 04751);
    put(sel1, "sticky", "y", 1, 01777 & ~0022);
    mk(sel1, "sub", 0700);
    put(sel1, "sub/inner.txt", "inner\n", 6, 0444);
    mk(sel1, "sub/deeper", 0750);
    mk(sel1, "sub/deeper/emptydir", 0755);
    put(sel1, "sub/deeper/medium.bin", big + 1000, 40000, 0644);
    snprintf(p, sizeof(p), "%s/link", sel1);
    assert_int_equal(symlink("small.txt", p), 0);
    snprintf(p, sizeof(p), "%s/dangling", sel1);
    assert_int_equal(symlink("../no/such/thing", p), 0);
    snprintf(p, sizeof(p), "%s/fifo", sel1);
    assert_int_equal(mkfifo(p, 0620), 0);

    snprintf(p, sizeof(p), "%s/small.txt", sel1);
    have_xattrs = setxattr(p, "user.cairn", "value-1", 7, 0) == 0;
    if (have_xattrs) {
        snprintf(p, sizeof(p), "%s/sub", sel1);
        assert_int_equal(setxattr(p, "user.dir", "d", 1, 0), 0);
        snprintf(p, sizeof(p), "%s/big.bin", sel1);
        assert_int_equal(setxattr(p, "user.empty", "", 0, 0), 0);
    }
}

static void test_backup_tree(void **state)
{
    const char *paths[5];
    char slash[PATH_MAX], sel1sub[PATH_MAX];
    struct cairn_backup_result res;
    struct cairn_snapshot *s;
    struct cairn_tree *t;
    struct evlog log;
    uint64_t files = 0, bytes = 0;
    const struct cairn_tree_entry *e;
    uint8_t *a;
    size_t alen;
    struct stat st;

    (void)state;
    make_tree();
    /* Let the clock move past the files' times: files changed within a
     * timestamp tick of a backup are read again by the next one ("racy"),
     * and the incremental tests below count what is not read. */
    {
        struct timespec pause = {0, 120 * 1000 * 1000};

        nanosleep(&pause, NULL);
    }
    /* sel1 twice (once with a trailing '/'), a path inside it, sel2. */
    snprintf(slash, sizeof(slash), "%s/", sel1);
    snprintf(sel1sub, sizeof(sel1sub), "%s/sub", sel1);
    paths[0] = sel2;
    paths[1] = sel1sub;
    paths[2] = sel1;
    paths[3] = slash;
    assert_int_equal(run_backup(repo, paths, 4, NULL, &log, &res), 0);
    if (log.nerr > 0)
        fail_msg("%s: errno %d", log.errpath[0], log.errno_[0]);
    assert_true(log.nkind[CAIRN_EV_PROGRESS] >= 1);
    assert_int_equal(res.complete, 1);
    assert_int_equal(res.errors, 0);
    assert_int_equal(res.files, res.files_new);
    assert_int_equal(res.files_unchanged, 0);
    assert_int_equal(res.bytes, res.bytes_read);
    assert_true(res.blobs_added > 20);
    cairn_hex_encode(res.snapshot_id, CAIRN_ID_LEN, snap1);
    memcpy(last_snap, snap1, sizeof(snap1));

    s = snap_of(repo, res.snapshot_id);
    assert_int_equal(s->complete, 1);
    assert_int_equal(s->has_parent, 0);
    assert_string_equal(s->hostname, "testhost");
    assert_int_equal(s->files, res.files);
    assert_int_equal(s->bytes, res.bytes);
    /* The selection as recorded: absolute, clean, nested paths dropped. */
    assert_int_equal(s->npaths, 2);
    assert_string_equal(s->paths[0], sel1);
    assert_string_equal(s->paths[1], sel2);

    /* The root mirrors the absolute paths: only what leads to them. */
    t = tree_at(repo, s->root, "/");
    assert_int_equal(t->nentries, 1);
    assert_string_equal(t->entries[0].name, "tmp");
    cairn_tree_free(t);
    t = tree_at(repo, s->root, base);
    assert_int_equal(t->nentries, 2);
    assert_string_equal(t->entries[0].name, "p1");
    assert_string_equal(t->entries[1].name, "p2");
    /* Intermediate directories carry their real times too. */
    assert_int_equal(lstat(p1, &st), 0);
    assert_int_equal(t->entries[0].mtime_ns, ts_ns(&st.st_mtim));
    assert_int_equal(t->entries[0].mode, 0751);
    cairn_tree_free(t);
    t = tree_at(repo, s->root, p1);
    assert_int_equal(t->nentries, 1);
    assert_string_equal(t->entries[0].name, "sel1");
    cairn_tree_free(t);
    t = tree_at(repo, s->root, p2);
    assert_int_equal(t->nentries, 1);
    e = &t->entries[0];
    assert_string_equal(e->name, "sel2.txt");
    entry_content(repo, e, &a, &alen);
    assert_int_equal(alen, 25);
    assert_memory_equal(a, "the second selected path\n", 25);
    free(a);
    files++;
    bytes += 25;
    cairn_tree_free(t);

    /* The selected directory, entry by entry and byte by byte. */
    t = tree_at(repo, s->root, sel1);
    compare_tree(repo, t, sel1, &files, &bytes);
    e = cairn_tree_find(t, "big.bin");
    assert_non_null(e);
    assert_true(e->ncontent >= 5); /* several chunks */
    e = cairn_tree_find(t, "empty");
    assert_int_equal(e->ncontent, 0);
    e = cairn_tree_find(t, "odd-mode");
    assert_int_equal(e->mode, 04751);
    e = cairn_tree_find(t, "small.txt");
    if (have_xattrs) {
        assert_int_equal(e->nxattrs, 1);
        assert_string_equal(e->xattrs[0].name, "user.cairn");
        assert_memory_equal(e->xattrs[0].value, "value-1", 7);
        e = cairn_tree_find(t, "big.bin");
        assert_int_equal(e->nxattrs, 1);
        assert_int_equal(e->xattrs[0].len, 0);
    }
    cairn_tree_free(t);
    assert_int_equal(res.files, files);
    assert_int_equal(res.bytes, bytes);
    /* tmp, base, p1, p2 on the way; sel1, sub, deeper, emptydir. */
    assert_int_equal(res.dirs, 8);
    cairn_snapshot_free(s);
}

/* ------------------------------------------------------------ incremental */

static struct cairn_snapshot *find(const char *hex)
{
    struct cairn_snapshot *s;

    assert_int_equal(cairn_repo_find_snapshot(repo, hex, &s), 0);
    return s;
}

static void backup_incr(struct evlog *log, struct cairn_backup_result *res)
{
    const char *paths[2] = {sel1, sel2};
    struct cairn_snapshot *parent = find(last_snap);
    struct timespec pause = {0, 70 * 1000 * 1000};

    /* Past the timestamp tick of what the test just changed, so that the
     * next incremental does not read it again as "racy". */
    nanosleep(&pause, NULL);
    assert_int_equal(run_backup(repo, paths, 2, parent, log, res), 0);
    assert_int_equal(res->errors, 0);
    cairn_snapshot_free(parent);
    cairn_hex_encode(res->snapshot_id, CAIRN_ID_LEN, last_snap);
}

/* Every content id of every file below tree id, in *set (n). */
struct idset {
    uint8_t (*v)[CAIRN_ID_LEN];
    size_t n, cap;
};

static int idset_has(const struct idset *s, const uint8_t id[CAIRN_ID_LEN])
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (memcmp(s->v[i], id, CAIRN_ID_LEN) == 0)
            return 1;
    return 0;
}

/* Sum of the sizes of the files below tree id with content in set. */
static uint64_t bytes_touching(const uint8_t id[CAIRN_ID_LEN],
                               const struct idset *set, uint64_t *nfiles)
{
    struct cairn_tree *t;
    uint64_t sum = 0;
    uint32_t i, c;

    assert_int_equal(cairn_repo_read_tree(repo, codec, id, &t), 0);
    for (i = 0; i < t->nentries; i++) {
        const struct cairn_tree_entry *e = &t->entries[i];

        if (e->type == CAIRN_NODE_DIR && e->has_subtree)
            sum += bytes_touching(e->subtree, set, nfiles);
        for (c = 0; c < e->ncontent; c++)
            if (idset_has(set, e->content[c])) {
                sum += e->size;
                (*nfiles)++;
                break;
            }
    }
    cairn_tree_free(t);
    return sum;
}

struct objnames {
    char v[64][65];
    size_t n;
};

static int objnames_add(void *arg, const char *nm, uint64_t size)
{
    struct objnames *on = arg;

    (void)size;
    if (on->n >= 64)
        return CAIRN_ERANGE;
    snprintf(on->v[on->n++], 65, "%s", nm);
    return 0;
}

/*
 * Take one data pack out of the archive: rewrite every index object
 * without it (as a prune would) and delete it.  The ids it held go to
 * *out.
 */
static void drop_pack(const uint8_t pack[CAIRN_ID_LEN], struct idset *out)
{
    struct cairn_store *st = cairn_repo_store(repo);
    struct cairn_index *idx;
    struct cairn_pack_info *keep;
    struct objnames on;
    struct cairn_buf b;
    char name[65], pname[65];
    uint8_t *buf, iid[CAIRN_ID_LEN];
    size_t i, len;
    uint32_t p, k, j;

    cairn_hex_encode(pack, CAIRN_ID_LEN, pname);
    on.n = 0;
    assert_int_equal(cairn_store_list(st, CAIRN_OBJ_INDEX, objnames_add, &on),
                     0);
    for (i = 0; i < on.n; i++) {
        assert_int_equal(cairn_store_get(st, CAIRN_OBJ_INDEX, on.v[i], &buf,
                                         &len),
                         0);
        assert_int_equal(cairn_index_decode(buf, len,
                                            cairn_repo_keys(repo)->mac, &idx),
                         0);
        free(buf);
        keep = calloc(idx->npacks, sizeof(*keep));
        assert_non_null(keep);
        for (p = 0, k = 0; p < idx->npacks; p++) {
            if (memcmp(idx->packs[p].id, pack, CAIRN_ID_LEN) != 0) {
                keep[k++] = idx->packs[p];
                continue;
            }
            for (j = 0; j < idx->packs[p].nblobs; j++) {
                if (out->n == out->cap) {
                    out->cap = out->cap ? out->cap * 2 : 64;
                    out->v = realloc(out->v, out->cap * CAIRN_ID_LEN);
                    assert_non_null(out->v);
                }
                memcpy(out->v[out->n++], idx->packs[p].blobs[j].id,
                       CAIRN_ID_LEN);
            }
        }
        if (k < idx->npacks) {
            cairn_buf_init(&b, CAIRN_INDEX_MAX_LEN);
            assert_int_equal(cairn_index_encode(keep, k,
                                                cairn_repo_keys(repo)->mac,
                                                &b),
                             0);
            cairn_sha256(b.data, b.len, iid);
            cairn_hex_encode(iid, CAIRN_ID_LEN, name);
            assert_int_equal(cairn_store_put(st, CAIRN_OBJ_INDEX, name,
                                             b.data, b.len, 1),
                             0);
            cairn_buf_free(&b);
            assert_int_equal(cairn_store_remove(st, CAIRN_OBJ_INDEX,
                                                on.v[i]),
                             0);
        }
        free(keep);
        cairn_index_free(idx);
    }
    assert_true(out->n > 0);
    assert_int_equal(cairn_store_remove(st, CAIRN_OBJ_PACK, pname), 0);
}

static void test_backup_incremental(void **state)
{
    struct cairn_backup_result res;
    struct cairn_snapshot *s;
    struct cairn_tree *t;
    const struct cairn_tree_entry *e;
    struct cairn_blob_loc loc;
    struct idset gone = {NULL, 0, 0};
    struct evlog log;
    struct timespec ts[2];
    char p[PATH_MAX], other[160];
    uint64_t nd0, nd1, want, nwant = 0, files, bytes;
    struct cairn_repo *rb;

    (void)state;
    /* Nothing changed: nothing read. */
    backup_incr(&log, &res);
    assert_int_equal(res.bytes_read, 0);
    assert_int_equal(res.files_unchanged, res.files);
    assert_int_equal(res.files_new, 0);
    assert_int_equal(res.files_changed, 0);
    assert_int_equal(res.complete, 1);

    /* "Racy": a file written within a timestamp tick before a backup may
     * change again in the same tick without its size or times moving, so
     * the next backup reads it again (once); later ones do not. */
    {
        const char *paths[2] = {sel1, sel2};
        struct cairn_snapshot *par;

        put(sel1, "racy.txt", "racy\n", 5, 0644);
        par = find(last_snap);
        assert_int_equal(run_backup(repo, paths, 2, par, &log, &res), 0);
        cairn_snapshot_free(par);
        assert_int_equal(res.bytes_read, 5);
        cairn_hex_encode(res.snapshot_id, CAIRN_ID_LEN, last_snap);
        par = find(last_snap);
        assert_int_equal(run_backup(repo, paths, 2, par, &log, &res), 0);
        cairn_snapshot_free(par);
        assert_int_equal(res.bytes_read, 5);
        assert_int_equal(res.files_unchanged, res.files - 1);
        cairn_hex_encode(res.snapshot_id, CAIRN_ID_LEN, last_snap);
        backup_incr(&log, &res); /* after a pause: still racy once more */
        backup_incr(&log, &res);
        assert_int_equal(res.bytes_read, 0);
        snprintf(p, sizeof(p), "%s/racy.txt", sel1);
        assert_int_equal(unlink(p), 0);
        backup_incr(&log, &res);
        assert_int_equal(res.bytes_read, 0);
    }
    s = find(last_snap);
    assert_int_equal(s->has_parent, 1);
    assert_int_equal(s->bytes, res.bytes);
    cairn_snapshot_free(s);

    /* One file rewritten: that file alone is read. */
    snprintf(p, sizeof(p), "%s/sub/inner.txt", sel1);
    assert_int_equal(chmod(p, 0644), 0);
    put(sel1, "sub/inner.txt", "inner, now longer\n", 18, 0444);
    backup_incr(&log, &res);
    assert_int_equal(res.bytes_read, 18);
    assert_int_equal(res.files_changed, 1);
    assert_int_equal(res.files_unchanged, res.files - 1);

    /* Only touched (same bytes): read again, no data blob added. */
    cairn_repo_index_totals(repo, &nd0, NULL, NULL, NULL);
    snprintf(p, sizeof(p), "%s/big.bin", sel1);
    ts[0].tv_sec = ts[1].tv_sec = 1500000000;
    ts[0].tv_nsec = ts[1].tv_nsec = 123456789;
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    backup_incr(&log, &res);
    assert_int_equal(res.bytes_read, BIG_LEN);
    assert_int_equal(res.files_changed, 1);
    cairn_repo_index_totals(repo, &nd1, NULL, NULL, NULL);
    assert_int_equal(nd1, nd0);

    /* Content that is no longer in the archive (its pack pruned): the
     * files that had a chunk there are read again, the others not. */
    s = find(last_snap);
    t = tree_at(repo, s->root, sel1);
    e = cairn_tree_find(t, "big.bin");
    assert_non_null(e);
    assert_int_equal(cairn_repo_lookup(repo, e->content[e->ncontent / 2],
                                       &loc),
                     0);
    cairn_tree_free(t);
    drop_pack(loc.pack, &gone);
    cairn_repo_free(repo);
    repo = open_repo(repo_dir);
    assert_int_equal(cairn_repo_lookup(repo, gone.v[0], NULL), CAIRN_ENOENT);
    want = bytes_touching(s->root, &gone, &nwant);
    assert_true(nwant >= 1);
    assert_true(want >= BIG_LEN);
    cairn_snapshot_free(s);
    backup_incr(&log, &res);
    assert_int_equal(res.bytes_read, want);
    /* (counted as changed: their old content cannot be reused) */
    assert_int_equal(res.files_changed, nwant);
    assert_int_equal(res.files_new, 0);
    assert_int_equal(res.files_unchanged, res.files - nwant);
    free(gone.v);
    /* And the new snapshot is whole again. */
    s = find(last_snap);
    t = tree_at(repo, s->root, sel1);
    files = bytes = 0;
    compare_tree(repo, t, sel1, &files, &bytes);
    cairn_tree_free(t);
    cairn_snapshot_free(s);

    /* A parent from another archive: its trees cannot be read here, so
     * everything is read. */
    snprintf(other, sizeof(other), "%s/other-repo", base);
    rb = init_repo(other);
    {
        const char *paths[2] = {sel1, sel2};
        struct cairn_snapshot *ps;

        assert_int_equal(run_backup(rb, paths, 2, NULL, &log, &res), 0);
        ps = snap_of(rb, res.snapshot_id);
        assert_int_equal(run_backup(repo, paths, 2, ps, &log, &res), 0);
        assert_int_equal(res.bytes_read, res.bytes);
        assert_int_equal(res.files_unchanged, 0);
        cairn_snapshot_free(ps);
    }
    cairn_repo_free(rb);
}

/* ------------------------------------------------------------ excludes */

/* Every path (relative to top) in tree t, "a", "a/b", ... into buf. */
static void collect_paths(const struct cairn_tree *t, const char *prefix,
                          char *buf, size_t cap)
{
    struct cairn_tree *sub;
    char rel[PATH_MAX];
    uint32_t i;

    for (i = 0; i < t->nentries; i++) {
        const struct cairn_tree_entry *e = &t->entries[i];

        snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "",
                 e->name);
        assert_true(strlen(buf) + strlen(rel) + 2 < cap);
        strcat(buf, rel);
        strcat(buf, "\n");
        if (e->type == CAIRN_NODE_DIR && e->has_subtree) {
            assert_int_equal(cairn_repo_read_tree(repo, codec, e->subtree,
                                                  &sub),
                             0);
            collect_paths(sub, rel, buf, cap);
            cairn_tree_free(sub);
        }
    }
}

#define CACHEDIR_SIG "Signature: 8a477f597d28d172789f06886806bc55"

static void test_backup_excludes(void **state)
{
    const char *tag = CACHEDIR_SIG "\n# a cache\n";
    char ex[128], exfile[160], abs_pat[200], got[4096];
    const char *paths[1], *pats[4], *files[1];
    struct cairn_backup_opts o;
    struct cairn_backup_result res;
    struct cairn_snapshot *s;
    struct cairn_tree *t;
    struct evlog log;
    FILE *f;

    (void)state;
    snprintf(ex, sizeof(ex), "%s/ex", base);
    assert_int_equal(mkdir(ex, 0755), 0);
    put(ex, "keep.txt", "k", 1, 0644);
    put(ex, "a.tmp", "t", 1, 0644);
    put(ex, "top.log", "l", 1, 0644);
    put(ex, "abs-excluded", "a", 1, 0644);
    mk(ex, "sub", 0755);
    put(ex, "sub/b.tmp", "t", 1, 0644);
    put(ex, "sub/keep2.txt", "k", 1, 0644);
    put(ex, "sub/node_modules", "a file, not a dir", 17, 0644);
    put(ex, "sub/abs-excluded", "not at the absolute path", 24, 0644);
    mk(ex, "build", 0755);
    mk(ex, "build/out", 0755);
    put(ex, "build/out/x.o", "o", 1, 0644);
    put(ex, "build/keep.c", "c", 1, 0644);
    mk(ex, "out", 0755);
    put(ex, "out/z", "z", 1, 0644);
    mk(ex, "sub/build", 0755);
    mk(ex, "sub/build/out", 0755);
    put(ex, "sub/build/out/y.o", "o", 1, 0644);
    mk(ex, "node_modules", 0755);
    put(ex, "node_modules/m.js", "m", 1, 0644);
    mk(ex, "deep", 0755);
    mk(ex, "deep/a", 0755);
    mk(ex, "deep/a/b", 0755);
    put(ex, "deep/c.log", "l", 1, 0644);
    put(ex, "deep/a/b/c.log", "l", 1, 0644);
    put(ex, "deep/a/b/c.txt", "t", 1, 0644);
    mk(ex, "cache", 0755);
    put(ex, "cache/CACHEDIR.TAG", tag, strlen(tag), 0644);
    put(ex, "cache/data.bin", "d", 1, 0644);
    mk(ex, "cache/inner", 0755);
    put(ex, "cache/inner/f", "f", 1, 0644);
    mk(ex, "badcache", 0755);
    put(ex, "badcache/CACHEDIR.TAG", "Signature: 0000", 15, 0644);
    put(ex, "badcache/data.bin", "d", 1, 0644);
    mk(ex, "shortcache", 0755);
    put(ex, "shortcache/CACHEDIR.TAG", CACHEDIR_SIG, 20, 0644);
    put(ex, "shortcache/data.bin", "d", 1, 0644);

    snprintf(exfile, sizeof(exfile), "%s/excludes.txt", base);
    f = fopen(exfile, "w");
    assert_non_null(f);
    fputs("# patterns\n\n   \nnode_modules/\r\n", f);
    fclose(f);
    snprintf(abs_pat, sizeof(abs_pat), "%s/abs-excluded", ex);

    paths[0] = ex;
    pats[0] = "*.tmp";
    pats[1] = "build/out";
    pats[2] = "**/deep/**/*.log";
    pats[3] = abs_pat;
    files[0] = exfile;
    memset(&o, 0, sizeof(o));
    memset(&log, 0, sizeof(log));
    o.paths = paths;
    o.npaths = 1;
    o.excludes = pats;
    o.nexcludes = 4;
    o.exclude_files = files;
    o.nexclude_files = 1;
    o.exclude_caches = 1;
    o.threads = 1;
    o.on_event = on_event;
    o.event_arg = &log;
    assert_int_equal(cairn_backup(repo, &o, &res), 0);
    assert_int_equal(res.errors, 0);
    s = snap_of(repo, res.snapshot_id);
    t = tree_at(repo, s->root, ex);
    got[0] = '\0';
    collect_paths(t, "", got, sizeof(got));
    assert_string_equal(got, "badcache\n"
                             "badcache/CACHEDIR.TAG\n"
                             "badcache/data.bin\n"
                             "build\n"
                             "build/keep.c\n"
                             "cache\n"
                             "cache/CACHEDIR.TAG\n"
                             "deep\n"
                             "deep/a\n"
                             "deep/a/b\n"
                             "deep/a/b/c.txt\n"
                             "keep.txt\n"
                             "out\n"
                             "out/z\n"
                             "shortcache\n"
                             "shortcache/CACHEDIR.TAG\n"
                             "shortcache/data.bin\n"
                             "sub\n"
                             "sub/abs-excluded\n"
                             "sub/build\n"
                             "sub/keep2.txt\n"
                             "sub/node_modules\n"
                             "top.log\n");
    cairn_tree_free(t);
    cairn_snapshot_free(s);

    /* Without exclude_caches the cache is kept whole; a missing exclude
     * file is an error, and nothing is written. */
    o.exclude_caches = 0;
    o.nexcludes = 0;
    o.nexclude_files = 0;
    assert_int_equal(cairn_backup(repo, &o, &res), 0);
    s = snap_of(repo, res.snapshot_id);
    t = tree_at(repo, s->root, ex);
    got[0] = '\0';
    collect_paths(t, "", got, sizeof(got));
    assert_non_null(strstr(got, "cache/inner/f\n"));
    assert_non_null(strstr(got, "node_modules/m.js\n"));
    assert_non_null(strstr(got, "build/out/x.o\n"));
    cairn_tree_free(t);
    cairn_snapshot_free(s);
    snprintf(exfile, sizeof(exfile), "%s/no-such-file", base);
    o.nexclude_files = 1;
    assert_int_equal(cairn_backup(repo, &o, &res), CAIRN_ENOENT);
}

/* ------------------------------------------------------------ errors */

struct child_report {
    int rc;
    uint64_t errors, files;
    int complete;
    int nerr;
    char errpath[PATH_MAX];
    int sys_errno;
    int snapshot_ok; /* the snapshot holds a.txt and b.txt, not secret */
};

/* In a child without root's powers: back up a tree with one unreadable
 * file into an archive that child owns. */
static void unreadable_child(const char *top, int wfd)
{
    struct child_report rep;
    struct cairn_repo *r = NULL;
    struct cairn_store *st;
    struct cairn_repo_init_opts io;
    struct cairn_backup_opts o;
    struct cairn_backup_result res;
    struct cairn_snapshot *s = NULL;
    struct cairn_tree *t = NULL, *next;
    struct cairn_blob_codec *c = NULL;
    struct evlog log;
    char src[PATH_MAX], rdir[PATH_MAX], hex[65];
    const char *paths[1];
    const char *p;

    memset(&rep, 0, sizeof(rep));
    rep.rc = -1000;
    if (setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0)
        goto out;
    snprintf(src, sizeof(src), "%s/src", top);
    snprintf(rdir, sizeof(rdir), "%s/repo", top);
    memset(&io, 0, sizeof(io));
    io.chunk.min = 4096;
    io.chunk.avg = 16384;
    io.chunk.max = 65536;
    io.pack_size = 64 * 1024;
    io.kdf.log2_n = 10;
    io.kdf.r = 8;
    io.kdf.p = 1;
    rep.rc = -1001;
    if (cairn_store_dir_open(rdir, 1, &st) != 0)
        goto out;
    if (cairn_repo_init(st, PASS, strlen(PASS), &io, &r) != 0) {
        cairn_store_free(st);
        goto out;
    }
    if (cairn_repo_load_index(r, NULL) != 0)
        goto out;
    paths[0] = src;
    memset(&o, 0, sizeof(o));
    memset(&log, 0, sizeof(log));
    o.paths = paths;
    o.npaths = 1;
    o.threads = 2;
    o.on_event = on_event;
    o.event_arg = &log;
    rep.rc = cairn_backup(r, &o, &res);
    rep.errors = res.errors;
    rep.files = res.files;
    rep.complete = res.complete;
    rep.nerr = log.nerr;
    if (log.nerr > 0) {
        snprintf(rep.errpath, sizeof(rep.errpath), "%s", log.errpath[0]);
        rep.sys_errno = log.errno_[0];
    }
    if (rep.rc != 0)
        goto out;
    cairn_hex_encode(res.snapshot_id, CAIRN_ID_LEN, hex);
    if (cairn_repo_find_snapshot(r, hex, &s) != 0 ||
        (c = cairn_blob_codec_new(cairn_repo_keys(r), 1)) == NULL ||
        cairn_repo_read_tree(r, c, s->root, &t) != 0)
        goto out;
    /* Down to src. */
    for (p = src + 1; *p != '\0';) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        char comp[NAME_MAX + 1];
        const struct cairn_tree_entry *e;

        memcpy(comp, p, n);
        comp[n] = '\0';
        if ((e = cairn_tree_find(t, comp)) == NULL || !e->has_subtree ||
            cairn_repo_read_tree(r, c, e->subtree, &next) != 0)
            goto out;
        cairn_tree_free(t);
        t = next;
        p += n;
        if (*p == '/')
            p++;
    }
    rep.snapshot_ok = t->nentries == 2 && cairn_tree_find(t, "a.txt") &&
                      cairn_tree_find(t, "b.txt") &&
                      !cairn_tree_find(t, "secret");
out:
    cairn_tree_free(t);
    cairn_blob_codec_free(c);
    cairn_snapshot_free(s);
    cairn_repo_free(r);
    if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
        _exit(2);
    _exit(0);
}

static void chown_tree(const char *p)
{
    char q[PATH_MAX];

    assert_int_equal(chown(p, 65534, 65534), 0);
    snprintf(q, sizeof(q), "%s/src", p);
    assert_int_equal(chown(q, 65534, 65534), 0);
    snprintf(q, sizeof(q), "%s/src/a.txt", p);
    assert_int_equal(chown(q, 65534, 65534), 0);
    snprintf(q, sizeof(q), "%s/src/b.txt", p);
    assert_int_equal(chown(q, 65534, 65534), 0);
    snprintf(q, sizeof(q), "%s/src/secret", p);
    assert_int_equal(chown(q, 65534, 65534), 0);
}

static void test_backup_unreadable(void **state)
{
    char top[64], src[128], want[160];
    struct child_report rep;
    int pfd[2], status;
    pid_t pid;

    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    snprintf(top, sizeof(top), "/tmp/cairn-test-unreadable-XXXXXX");
    assert_non_null(mkdtemp(top));
    assert_int_equal(chmod(top, 0755), 0);
    snprintf(src, sizeof(src), "%s/src", top);
    assert_int_equal(mkdir(src, 0755), 0);
    put(src, "a.txt", "readable a\n", 11, 0644);
    put(src, "b.txt", "readable b\n", 11, 0644);
    put(src, "secret", "cannot be read\n", 15, 0000);
    chown_tree(top);

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        unreadable_child(top, pfd[1]);
    }
    close(pfd[1]);
    memset(&rep, 0, sizeof(rep));
    assert_int_equal(read(pfd[0], &rep, sizeof(rep)), (ssize_t)sizeof(rep));
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rm_rf(top);

    assert_int_equal(rep.rc, 0);
    assert_int_equal(rep.errors, 1);
    assert_int_equal(rep.complete, 0);
    assert_int_equal(rep.files, 2);
    assert_int_equal(rep.nerr, 1);
    snprintf(want, sizeof(want), "%s/secret", src);
    assert_string_equal(rep.errpath, want);
    assert_int_equal(rep.sys_errno, EACCES);
    assert_int_equal(rep.snapshot_ok, 1);
}

static int has_err(const struct evlog *l, const char *path, int *out_errno)
{
    int i;

    for (i = 0; i < l->nerr; i++)
        if (strcmp(l->errpath[i], path) == 0) {
            *out_errno = l->errno_[i];
            return 1;
        }
    return 0;
}

static void test_backup_missing(void **state)
{
    char missing[PATH_MAX], nodir[PATH_MAX], underfile[PATH_MAX];
    const char *paths[4];
    struct cairn_backup_result res;
    struct cairn_snapshot *s;
    struct cairn_tree *t;
    struct evlog log;
    uint64_t files = 0, bytes = 0;
    int e;

    (void)state;
    snprintf(missing, sizeof(missing), "%s/missing", p1);
    snprintf(nodir, sizeof(nodir), "%s/no-dir/x", base);
    snprintf(underfile, sizeof(underfile), "%s/below", sel2);
    paths[0] = missing;
    paths[1] = sel1;
    paths[2] = nodir;
    paths[3] = underfile;
    assert_int_equal(run_backup(repo, paths, 4, NULL, &log, &res), 0);
    assert_int_equal(res.errors, 3);
    assert_int_equal(res.complete, 0);
    assert_int_equal(log.nerr, 3);
    assert_true(has_err(&log, missing, &e));
    assert_int_equal(e, ENOENT);
    assert_true(has_err(&log, nodir, &e));
    assert_int_equal(e, ENOENT);
    assert_true(has_err(&log, underfile, &e));
    assert_int_equal(e, ENOTDIR);
    s = snap_of(repo, res.snapshot_id);
    assert_int_equal(s->complete, 0);
    assert_int_equal(s->errors, 3);
    t = tree_at(repo, s->root, sel1);
    compare_tree(repo, t, sel1, &files, &bytes);
    assert_int_equal(res.files, files);
    cairn_tree_free(t);
    t = tree_at(repo, s->root, p1);
    assert_int_equal(t->nentries, 1); /* sel1; missing left out */
    cairn_tree_free(t);
    cairn_snapshot_free(s);

    /* The reason is this path's own, whatever failed just before. */
    paths[0] = missing;
    paths[1] = underfile;
    assert_int_equal(run_backup(repo, paths, 2, NULL, &log, &res), 0);
    assert_int_equal(res.errors, 2);
    assert_true(has_err(&log, missing, &e));
    assert_int_equal(e, ENOENT);
    assert_true(has_err(&log, underfile, &e));
    assert_int_equal(e, ENOTDIR);
}

static void test_backup_cancel(void **state)
{
    const char *paths[1] = {sel1};
    struct cairn_backup_opts o;
    struct cairn_backup_result res;
    struct evlog log;
    volatile int cancel = 0;
    size_t before = count_snapshots(repo);

    (void)state;
    memset(&o, 0, sizeof(o));
    memset(&log, 0, sizeof(log));
    log.cancel = &cancel;
    log.cancel_after = 1;
    o.paths = paths;
    o.npaths = 1;
    o.threads = 2;
    o.on_event = on_event;
    o.event_arg = &log;
    o.cancel = &cancel;
    assert_int_equal(cairn_backup(repo, &o, &res), CAIRN_ECANCELED);
    assert_int_equal(cancel, 1);
    assert_int_equal(count_snapshots(repo), before);
    /* Set before the start. */
    assert_int_equal(cairn_backup(repo, &o, &res), CAIRN_ECANCELED);
    assert_int_equal(count_snapshots(repo), before);
    /* No paths at all. */
    o.npaths = 0;
    o.cancel = NULL;
    assert_int_equal(cairn_backup(repo, &o, &res), CAIRN_EINVAL);
}

/* ------------------------------------------------------------ paths */

static void clean_is(const char *in, const char *want)
{
    char *out = NULL;

    assert_int_equal(cairn_backup_path_clean(in, &out), 0);
    assert_string_equal(out, want);
    free(out);
}

static void test_path_clean(void **state)
{
    char cwd[PATH_MAX], old[PATH_MAX], want[PATH_MAX + 16];

    (void)state;
    clean_is("/", "/");
    clean_is("//", "/");
    clean_is("/a/b", "/a/b");
    clean_is("/a/b/", "/a/b");
    clean_is("//a//b//", "/a/b");
    clean_is("/a/./b/.", "/a/b");
    clean_is("/a/b/../c", "/a/c");
    clean_is("/a/..", "/");
    clean_is("/..", "/");
    clean_is("/../../x/..", "/");
    clean_is("/a/b/../../..", "/");
    clean_is("/a/.../b", "/a/.../b");
    clean_is("/a/..b/c", "/a/..b/c");
    clean_is("/a/.b/", "/a/.b");

    /* Relative: against the working directory. */
    assert_non_null(getcwd(old, sizeof(old)));
    assert_int_equal(chdir(base), 0);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    clean_is(".", cwd);
    clean_is("./", cwd);
    snprintf(want, sizeof(want), "%s/x/y", cwd);
    clean_is("x/y", want);
    clean_is("x//y/", want);
    clean_is("./x/./y", want);
    clean_is("x/z/../y", want);
    clean_is("..", "/tmp");
    clean_is("../..", "/");
    clean_is("../../../..", "/");
    snprintf(want, sizeof(want), "%s/p1", cwd);
    clean_is("p1/sel1/..", want);
    assert_int_equal(chdir(old), 0);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-test-backup-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    repo = init_repo(repo_dir);
    codec = cairn_blob_codec_new(cairn_repo_keys(repo),
                                 CAIRN_ZSTD_LEVEL_DEFAULT);
    return codec != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cairn_blob_codec_free(codec);
    cairn_repo_free(repo);
    rm_rf(base);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_clean),
        cmocka_unit_test(test_backup_tree),
        cmocka_unit_test(test_backup_incremental),
        cmocka_unit_test(test_backup_excludes),
        cmocka_unit_test(test_backup_unreadable),
        cmocka_unit_test(test_backup_missing),
        cmocka_unit_test(test_backup_cancel),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
