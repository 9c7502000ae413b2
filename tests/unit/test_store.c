/*
 * test_store.c - the store's names and wrappers, and the directory store:
 * round trips, durability and barriers, temp files, failures that leave
 * nothing behind, and concurrent use.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/err.h"
#include "cairn/store.h"

static char tmpl[] = "/tmp/cairn-test-store-XXXXXX";
static char *base;
static int seq;

static void rm_rf(const char *path)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fail_msg("rm -rf %s failed", path);
}

/* A fresh, not yet existing store path under base. */
static void new_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/s%d/sub/store", base, seq++);
}

static struct cairn_store *new_store(char *path, size_t n)
{
    struct cairn_store *s = NULL;

    new_path(path, n);
    assert_int_equal(cairn_store_dir_open(path, 1, &s), 0);
    assert_non_null(s);
    return s;
}

/* A 64-hex-digit name made from i. */
static void hexname(unsigned i, char out[65])
{
    unsigned j;

    for (j = 0; j < 8; j++)
        snprintf(out + 8 * j, 9, "%08x", i * 2654435761u + j);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;
    uint32_t x = seed * 2654435761u + 1;

    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

/* Number of entries in dir (excluding . and ..) whose name starts with
 * prefix. */
static int count_files(const char *dir, const char *prefix)
{
    DIR *d;
    struct dirent *de;
    int n = 0;

    if ((d = opendir(dir)) == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    }
    closedir(d);
    return n;
}

struct names {
    char names[64][130];
    uint64_t sizes[64];
    int n;
    int stop_after; /* return 99 after this many; 0: never */
};

static int collect(void *arg, const char *name, uint64_t size)
{
    struct names *nm = arg;

    if (nm->n < 64) {
        snprintf(nm->names[nm->n], sizeof(nm->names[0]), "%s", name);
        nm->sizes[nm->n] = size;
    }
    nm->n++;
    if (nm->stop_after && nm->n == nm->stop_after)
        return 99;
    return 0;
}

static void test_names(void **state)
{
    char longname[200];

    (void)state;
    assert_true(cairn_store_name_valid(CAIRN_OBJ_CONFIG, "config"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_CONFIG, "config2"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_CONFIG, NULL));
    assert_true(cairn_store_name_valid(CAIRN_OBJ_KEY, "abc-1_2.x"));
    assert_true(cairn_store_name_valid(CAIRN_OBJ_LOCK, "host-123"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, ""));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, "../x"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, "a/b"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, "ABC"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, "a b"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, "."));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, ".."));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_KEY, ".tmp-0011"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_SNAPSHOT, "x\n"));
    assert_false(cairn_store_name_valid((enum cairn_obj_type)6, "abc"));
    memset(longname, 'a', sizeof(longname));
    longname[128] = '\0';
    assert_true(cairn_store_name_valid(CAIRN_OBJ_SNAPSHOT, longname));
    longname[128] = 'a';
    longname[129] = '\0';
    assert_false(cairn_store_name_valid(CAIRN_OBJ_SNAPSHOT, longname));
    /* Fanned-out types need two hex digits first. */
    assert_true(cairn_store_name_valid(CAIRN_OBJ_PACK, "0f"));
    assert_true(cairn_store_name_valid(CAIRN_OBJ_INDEX, "a9zz"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_PACK, "g0"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_PACK, "0"));
    assert_false(cairn_store_name_valid(CAIRN_OBJ_INDEX, "config"));
}

static void test_open(void **state)
{
    char path[512], sub[600];
    struct cairn_store *s = NULL;
    struct stat st;

    (void)state;
    new_path(path, sizeof(path));
    /* Nothing there. */
    assert_int_equal(cairn_store_dir_open(path, 0, &s), CAIRN_ENOENT);
    /* Create, with parents. */
    assert_int_equal(cairn_store_dir_open(path, 1, &s), 0);
    snprintf(sub, sizeof(sub), "%s/data", path);
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Fan-out directories come with their first object. */
    snprintf(sub, sizeof(sub), "%s/data/ff", path);
    assert_int_equal(stat(sub, &st), -1);
    snprintf(sub, sizeof(sub), "%s/index/00", path);
    assert_int_equal(stat(sub, &st), -1);
    snprintf(sub, sizeof(sub), "%s/locks", path);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(count_files(path, ""), 5); /* keys snapshots locks ... */
    cairn_store_free(s);
    s = NULL;
    /* Still not a store (no config): an existing layout is fine to create
     * again, but not to open. */
    assert_int_equal(cairn_store_dir_open(path, 0, &s), CAIRN_ENOENT);
    assert_int_equal(cairn_store_dir_open(path, 1, &s), 0);
    assert_int_equal(
        cairn_store_put(s, CAIRN_OBJ_CONFIG, "config", "cfg", 3, 1), 0);
    cairn_store_free(s);
    s = NULL;
    assert_int_equal(cairn_store_dir_open(path, 1, &s), CAIRN_EEXIST);
    assert_null(s);
    assert_int_equal(cairn_store_dir_open(path, 0, &s), 0);
    cairn_store_free(s);
    cairn_store_free(NULL);
    assert_int_equal(cairn_store_dir_open("", 1, &s), CAIRN_EINVAL);
}

static void roundtrip(struct cairn_store *s, enum cairn_obj_type type,
                      const char *name, size_t len)
{
    uint8_t *buf, *got = NULL, part[16];
    size_t glen = 0;
    uint64_t size = 0;
    struct names nm;

    buf = malloc(len + 1);
    assert_non_null(buf);
    fill(buf, len, (unsigned)len);

    assert_int_equal(cairn_store_get(s, type, name, &got, &glen), CAIRN_ENOENT);
    assert_int_equal(cairn_store_stat(s, type, name, &size), CAIRN_ENOENT);
    assert_int_equal(cairn_store_get_range(s, type, name, 0, 1, part),
                     CAIRN_ENOENT);
    assert_int_equal(cairn_store_put(s, type, name, buf, len, 1), 0);
    assert_int_equal(cairn_store_get(s, type, name, &got, &glen), 0);
    assert_int_equal(glen, len);
    if (len > 0)
        assert_memory_equal(got, buf, len);
    free(got);
    assert_int_equal(cairn_store_stat(s, type, name, &size), 0);
    assert_int_equal(size, len);
    if (len >= 16) {
        assert_int_equal(
            cairn_store_get_range(s, type, name, len - 16, 16, part), 0);
        assert_memory_equal(part, buf + len - 16, 16);
        assert_int_equal(cairn_store_get_range(s, type, name, 3, 5, part), 0);
        assert_memory_equal(part, buf + 3, 5);
    }
    /* Past the end. */
    assert_int_equal(cairn_store_get_range(s, type, name, len, 1, part),
                     CAIRN_ECORRUPT);
    assert_int_equal(
        cairn_store_get_range(s, type, name, len > 0 ? len - 1 : 0, 2, part),
        CAIRN_ECORRUPT);
    assert_int_equal(
        cairn_store_get_range(s, type, name, UINT64_MAX - 1, 4, part),
        CAIRN_ECORRUPT);
    assert_int_equal(cairn_store_get_range(s, type, name, len, 0, part), 0);

    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, type, collect, &nm), 0);
    assert_int_equal(nm.n, 1);
    assert_string_equal(nm.names[0], name);
    assert_int_equal(nm.sizes[0], len);

    assert_int_equal(cairn_store_remove(s, type, name), 0);
    assert_int_equal(cairn_store_remove(s, type, name), CAIRN_ENOENT);
    assert_int_equal(cairn_store_get(s, type, name, &got, &glen), CAIRN_ENOENT);
    /* The cached descriptor must not outlive the object. */
    assert_int_equal(cairn_store_get_range(s, type, name, 0, 1, part),
                     CAIRN_ENOENT);
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, type, collect, &nm), 0);
    assert_int_equal(nm.n, 0);
    free(buf);
}

static void test_roundtrip(void **state)
{
    char path[512], name[65], file[700];
    struct cairn_store *s;
    struct stat st;

    (void)state;
    s = new_store(path, sizeof(path));
    hexname(1, name);
    roundtrip(s, CAIRN_OBJ_CONFIG, "config", 100);
    roundtrip(s, CAIRN_OBJ_KEY, "k1", 200);
    roundtrip(s, CAIRN_OBJ_PACK, name, 100000);
    roundtrip(s, CAIRN_OBJ_INDEX, name, 5000);
    roundtrip(s, CAIRN_OBJ_SNAPSHOT, "snap-1", 16);
    roundtrip(s, CAIRN_OBJ_LOCK, "lock.host-1", 0);

    /* Where it lands, and with what mode. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "x", 1, 1), 0);
    snprintf(file, sizeof(file), "%s/data/%.2s/%s", path, name, name);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 1);

    /* Bad names are refused by every operation. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_KEY, "../x", "x", 1, 1),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_KEY, "a/b", "x", 1, 1),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_store_remove(s, CAIRN_OBJ_KEY, ".."), CAIRN_EINVAL);
    cairn_store_free(s);
}

/* Fan-out directories: made with their first object (put, stream, or a
 * barrier's batch); a store made with all of them still works. */
static void test_fanout(void **state)
{
    char path[512], name[65], name2[65], sub[700];
    struct cairn_store *s;
    struct names nm;
    struct stat st;
    void *h = NULL;
    unsigned i;

    (void)state;
    s = new_store(path, sizeof(path));
    hexname(1, name);
    hexname(2, name2);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_CONFIG, "config", "c", 1, 1),
                     0);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "x", 1, 1), 0);
    snprintf(sub, sizeof(sub), "%s/data/%.2s", path, name);
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* Not durable: its directory too, by the barrier at the latest. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_INDEX, name2, "y", 1, 0),
                     0);
    assert_int_equal(cairn_store_barrier(s), 0);
    snprintf(sub, sizeof(sub), "%s/index/%.2s", path, name2);
    assert_int_equal(stat(sub, &st), 0);
    /* Streams, named at commit: durable at once, or at the barrier. */
    for (i = 3; i <= 4; i++) {
        hexname(i, name);
        uint8_t back[4];

        assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_PACK, &h), 0);
        assert_int_equal(cairn_store_append(s, h, "zz", 2), 0);
        /* What was appended reads back; nothing past its end. */
        assert_int_equal(cairn_store_append(s, h, "abc", 3), 0);
        assert_int_equal(cairn_store_stream_read(s, h, 1, 3, back), 0);
        assert_memory_equal(back, "zab", 3);
        assert_int_equal(cairn_store_stream_read(s, h, 3, 4, back),
                         CAIRN_ECORRUPT);
        assert_int_equal(cairn_store_commit(s, h, name, i == 3), 0);
        if (i == 4)
            assert_int_equal(cairn_store_barrier(s), 0);
        snprintf(sub, sizeof(sub), "%s/data/%.2s/%s", path, name, name);
        assert_int_equal(stat(sub, &st), 0);
    }
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 0);
    assert_int_equal(nm.n, 3);
    cairn_store_free(s);

    /* The old layout, every fan-out directory made at creation. */
    for (i = 0; i < 256; i++) {
        snprintf(sub, sizeof(sub), "%s/data/%02x", path, i);
        assert_true(mkdir(sub, 0700) == 0 || errno == EEXIST);
    }
    assert_int_equal(cairn_store_dir_open(path, 0, &s), 0);
    hexname(5, name);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "w", 1, 1), 0);
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 0);
    assert_int_equal(nm.n, 4);
    cairn_store_free(s);
}

static void test_existing_kept(void **state)
{
    char path[512];
    struct cairn_store *s;
    uint8_t *got;
    size_t glen;

    (void)state;
    s = new_store(path, sizeof(path));
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_LOCK, "l", "first", 5, 1), 0);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_LOCK, "l", "second", 6, 1),
                     0);
    /* A non-durable duplicate, then a barrier: still the first. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_LOCK, "l", "third", 5, 0), 0);
    assert_int_equal(cairn_store_barrier(s), 0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_LOCK, "l", &got, &glen), 0);
    assert_int_equal(glen, 5);
    assert_memory_equal(got, "first", 5);
    free(got);
    /* Two pending puts of the same new name: one wins, no temp remains. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_KEY, "k", "aa", 2, 0), 0);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_KEY, "k", "aa", 2, 0), 0);
    assert_int_equal(cairn_store_barrier(s), 0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_KEY, "k", &got, &glen), 0);
    assert_int_equal(glen, 2);
    free(got);
    {
        char dir[600];

        snprintf(dir, sizeof(dir), "%s/keys", path);
        assert_int_equal(count_files(dir, ".tmp-"), 0);
        snprintf(dir, sizeof(dir), "%s/locks", path);
        assert_int_equal(count_files(dir, ".tmp-"), 0);
    }
    cairn_store_free(s);
}

/* Non-durable puts are invisible until the barrier, and gone if the store
 * is closed first. */
static void test_barrier(void **state)
{
    char path[512], name[65], dir[700];
    struct cairn_store *s;
    struct names nm;
    uint8_t *got = NULL, b[4];
    size_t glen;
    uint64_t size;
    unsigned i;

    (void)state;
    s = new_store(path, sizeof(path));
    /* Few pending (per-file fsync) then many (syncfs). */
    for (i = 0; i < 20; i++) {
        hexname(i, name);
        assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "data", 4, 0),
                         0);
        assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &got, &glen),
                         CAIRN_ENOENT);
        assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_PACK, name, &size),
                         CAIRN_ENOENT);
        assert_int_equal(
            cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 0, 4, b),
            CAIRN_ENOENT);
        memset(&nm, 0, sizeof(nm));
        assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 0);
        assert_int_equal(nm.n, i < 3 ? 0 : 3);
        if (i == 2)
            assert_int_equal(cairn_store_barrier(s), 0);
    }
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 0);
    assert_int_equal(nm.n, 3);
    assert_int_equal(cairn_store_barrier(s), 0);
    assert_int_equal(cairn_store_barrier(s), 0); /* empty batch */
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 0);
    assert_int_equal(nm.n, 20);
    /* The listing stops when the callback says so. */
    memset(&nm, 0, sizeof(nm));
    nm.stop_after = 5;
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &nm), 99);
    assert_int_equal(nm.n, 5);
    for (i = 0; i < 20; i++) {
        hexname(i, name);
        assert_int_equal(
            cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 0, 4, b), 0);
        assert_memory_equal(b, "data", 4);
    }

    /* Pending at close: discarded, temp files removed. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_SNAPSHOT, "lost", "x", 1, 0),
                     0);
    snprintf(dir, sizeof(dir), "%s/snapshots", path);
    assert_int_equal(count_files(dir, ".tmp-"), 1);
    cairn_store_free(s);
    assert_int_equal(count_files(dir, ""), 0);
}

/* list skips temp files and reaps those older than an hour. */
static void test_tmp_files(void **state)
{
    char path[256], old[600], young[600], dir[512];
    struct cairn_store *s;
    struct names nm;
    struct timespec ts[2];
    int fd;

    (void)state;
    s = new_store(path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/snapshots", path);
    snprintf(old, sizeof(old), "%s/.tmp-00000000000000aa", dir);
    snprintf(young, sizeof(young), "%s/.tmp-00000000000000bb", dir);
    assert_true((fd = open(old, O_CREAT | O_WRONLY, 0600)) >= 0);
    close(fd);
    assert_true((fd = open(young, O_CREAT | O_WRONLY, 0600)) >= 0);
    close(fd);
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 2 * 3600;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
    /* A pending put of our own, aged too: must survive the reaping. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_SNAPSHOT, "mine", "m", 1, 0),
                     0);
    {
        DIR *d = opendir(dir);
        struct dirent *de;
        char p[1024];

        assert_non_null(d);
        while ((de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, ".tmp-", 5) != 0 ||
                strcmp(de->d_name, ".tmp-00000000000000aa") == 0 ||
                strcmp(de->d_name, ".tmp-00000000000000bb") == 0)
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
        }
        closedir(d);
    }
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_SNAPSHOT, collect, &nm), 0);
    assert_int_equal(nm.n, 0);
    assert_int_equal(access(old, F_OK), -1);
    assert_int_equal(access(young, F_OK), 0);
    assert_int_equal(cairn_store_barrier(s), 0);
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_SNAPSHOT, collect, &nm), 0);
    assert_int_equal(nm.n, 1);
    assert_string_equal(nm.names[0], "mine");
    cairn_store_free(s);
}

/* A write that fails (file size limit: EFBIG) leaves no file at all. */
static void test_failed_put_fsize(void **state)
{
    char path[512], dir[700];
    struct cairn_store *s;
    struct rlimit old, lim;
    uint8_t *buf;
    int rc;

    (void)state;
    s = new_store(path, sizeof(path));
    buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rc = cairn_store_put(s, CAIRN_OBJ_SNAPSHOT, "big", buf, 1 << 20, 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, CAIRN_EIO);
    snprintf(dir, sizeof(dir), "%s/snapshots", path);
    assert_int_equal(count_files(dir, ""), 0);
    free(buf);
    cairn_store_free(s);
}

/* Disk full on a tiny tmpfs: CAIRN_ENOSPC and nothing left behind. */
static void test_enospc(void **state)
{
    char mnt[512], path[600], dir[700], name[65];
    struct cairn_store *s = NULL;
    uint8_t *buf;
    int rc, i;

    (void)state;
    snprintf(mnt, sizeof(mnt), "%s/tiny", base);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        rmdir(mnt);
        skip();
    }
    snprintf(path, sizeof(path), "%s/store", mnt);
    assert_int_equal(cairn_store_dir_open(path, 1, &s), 0);
    buf = calloc(1, 4 << 20);
    assert_non_null(buf);
    hexname(7, name);
    rc = cairn_store_put(s, CAIRN_OBJ_PACK, name, buf, 4 << 20, 1);
    assert_int_equal(rc, CAIRN_ENOSPC);
    snprintf(dir, sizeof(dir), "%s/data/%.2s", path, name);
    assert_int_equal(count_files(dir, ""), 0);
    /* Non-durable: the failure shows at put (the write), no temp left. */
    rc = cairn_store_put(s, CAIRN_OBJ_PACK, name, buf, 4 << 20, 0);
    assert_int_equal(rc, CAIRN_ENOSPC);
    assert_int_equal(count_files(dir, ""), 0);
    /* The store still works for what fits. */
    for (i = 0; i < 3; i++)
        assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, buf, 1000, 0),
                         0);
    assert_int_equal(cairn_store_barrier(s), 0);
    assert_int_equal(count_files(dir, ""), 1);
    free(buf);
    cairn_store_free(s);
    assert_int_equal(umount(mnt), 0);
    rmdir(mnt);
}

#define NPACKS 100
#define PACKLEN 8192

struct worker {
    struct cairn_store *s;
    int id;
    int errors;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t expect[PACKLEN], got[256], own[1000];
    char name[65];
    uint32_t x = (uint32_t)w->id * 7919u + 1;
    unsigned i, p, off, len;

    for (i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        p = (x >> 8) % NPACKS;
        off = (x >> 3) % (PACKLEN - 256);
        len = 1 + (x >> 20) % 256;
        hexname(p, name);
        fill(expect, PACKLEN, p);
        if (cairn_store_get_range(w->s, CAIRN_OBJ_PACK, name, off, len, got) !=
                0 ||
            memcmp(got, expect + off, len) != 0)
            w->errors++;
        if (i % 100 == 0) {
            /* Puts (both kinds) and barriers interleaved with reads. */
            hexname(100000u + (unsigned)w->id * 10000u + i, name);
            fill(own, sizeof(own), i);
            if (cairn_store_put(w->s, CAIRN_OBJ_INDEX, name, own, sizeof(own),
                                i % 200 == 0) != 0)
                w->errors++;
            if (i % 300 == 0 && cairn_store_barrier(w->s) != 0)
                w->errors++;
        }
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    char path[512], name[65];
    struct cairn_store *s;
    struct worker w[4];
    pthread_t th[4];
    uint8_t *buf;
    struct names nm;
    unsigned i;

    (void)state;
    s = new_store(path, sizeof(path));
    buf = malloc(PACKLEN);
    assert_non_null(buf);
    for (i = 0; i < NPACKS; i++) {
        hexname(i, name);
        fill(buf, PACKLEN, i);
        assert_int_equal(
            cairn_store_put(s, CAIRN_OBJ_PACK, name, buf, PACKLEN, 0), 0);
    }
    assert_int_equal(cairn_store_barrier(s), 0);
    for (i = 0; i < 4; i++) {
        w[i].s = s;
        w[i].id = (int)i;
        w[i].errors = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    assert_int_equal(cairn_store_barrier(s), 0);
    memset(&nm, 0, sizeof(nm));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_INDEX, collect, &nm), 0);
    assert_int_equal(nm.n, 4 * 30);
    free(buf);
    cairn_store_free(s);
}

static int setup(void **state)
{
    (void)state;
    base = mkdtemp(tmpl);
    return base == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(base);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_fanout),
        cmocka_unit_test(test_existing_kept),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_tmp_files),
        cmocka_unit_test(test_failed_put_fsize),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_concurrency),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
