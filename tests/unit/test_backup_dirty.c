/*
 * test_backup_dirty.c - targeted backups (a dirty set from a watcher).
 *
 * Every change is backed up twice from the same parent: once with the
 * dirty set, once with a full walk.  Both must give the same trees (the
 * same subtree id for the test's directory, and the same root id when the
 * directories above it did not change meanwhile) and the same totals; the
 * dirty-set run must list exactly the directories on the way to the
 * changes and take every other subtree from the parent.  Cases: a file
 * added, modified, removed, renamed at depth; a directory added, removed,
 * renamed, replaced by a file, chmod'ed; a mode-only and an mtime-only
 * change; a dirty path that no longer exists and one outside the
 * selection; a selected path and an ancestor of the selection as dirty
 * paths; random rounds of mixed changes chained from dirty-set parents;
 * the fall-backs to a full walk (no parent, another selection, "/"); and
 * completeness (incomplete, inherited from an incomplete parent).
 *
 * The tree lives in a directory made under the working directory (the
 * build tree): its ancestors change far less often than /tmp's, whose
 * metadata the root tree records.
 */
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
#include <unistd.h>

#include <cmocka.h>

#include "cairn/backup.h"
#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/store.h"
#include "cairn/tree.h"

#define PASS "dirty backup test passphrase"
#define MAXANC 64

static char base[256], repo_dir[300], sel_a[300], sel_b[300], sel_o[300];
static const char *sel[3];
static struct cairn_repo *repo;
static struct cairn_blob_codec *codec;
/* Directory walks of the selection's virtual part: "/" and each
 * component of base. */
static uint64_t vlevels;
/* The parent of the next run. */
static uint8_t parent_id[CAIRN_ID_LEN];

/* The ancestors of base, as stat'ed before the parent was made. */
struct anc {
    size_t n;
    struct stat st[MAXANC];
};
static struct anc anc_parent;

/* ------------------------------------------------------------ files */

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

static void abs_of(const char *rel, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", base, rel);
}

static void put(const char *rel, size_t len, uint32_t seed)
{
    char p[PATH_MAX];
    uint8_t *buf = malloc(len + 1);
    int fd;

    assert_non_null(buf);
    fill(buf, len, seed);
    abs_of(rel, p);
    fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    assert_true(fd >= 0);
    if (len > 0)
        assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
}

static void mk(const char *rel)
{
    char p[PATH_MAX];

    abs_of(rel, p);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

static void rm_rf_abs(const char *p)
{
    nftw(p, rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

static void rm_rf(const char *rel)
{
    char p[PATH_MAX];

    abs_of(rel, p);
    rm_rf_abs(p);
}

static void mv(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];

    abs_of(from, a);
    abs_of(to, b);
    assert_int_equal(rename(a, b), 0);
}

/* ------------------------------------------------------------ model */

/* What the test put under the selected roots (no directory is ever
 * listed between backups: a listing would move its atime). */
struct node {
    char rel[200];
    int dir, root;
};
static struct node *model;
static size_t nmodel, capmodel;
static unsigned name_seq;

static void model_add(const char *rel, int dir, int root)
{
    if (nmodel == capmodel) {
        capmodel = capmodel ? capmodel * 2 : 256;
        model = realloc(model, capmodel * sizeof(*model));
        assert_non_null(model);
    }
    snprintf(model[nmodel].rel, sizeof(model[nmodel].rel), "%s", rel);
    model[nmodel].dir = dir;
    model[nmodel].root = root;
    nmodel++;
}

static int under(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

static void model_remove(const char *rel)
{
    size_t i, j;

    for (i = 0, j = 0; i < nmodel; i++)
        if (!under(model[i].rel, rel))
            model[j++] = model[i];
    nmodel = j;
}

static void model_rename(const char *from, const char *to)
{
    char tmp[200];
    size_t i, n = strlen(from);

    for (i = 0; i < nmodel; i++) {
        if (!under(model[i].rel, from))
            continue;
        snprintf(tmp, sizeof(tmp), "%s%s", to, model[i].rel + n);
        memcpy(model[i].rel, tmp, sizeof(tmp));
    }
}

/* a/ and b/ under src/, and other/: directories d*, e*, files f*. */
static void make_tree(void)
{
    char rel[200];
    int i, j, k;
    const char *roots[2] = {"src/a", "src/b"};
    int nd[2] = {4, 2};

    mk("src");
    mk("outside");
    put("outside/f", 100, 1);
    for (i = 0; i < 2; i++) {
        mk(roots[i]);
        model_add(roots[i], 1, 1);
        for (k = 0; k < 3; k++) {
            snprintf(rel, sizeof(rel), "%s/f%d", roots[i], k);
            put(rel, 1000u * (unsigned)k + 10, (uint32_t)(i * 100 + k));
            model_add(rel, 0, 0);
        }
        for (j = 0; j < nd[i]; j++) {
            snprintf(rel, sizeof(rel), "%s/d%d", roots[i], j);
            mk(rel);
            model_add(rel, 1, 0);
            for (k = 0; k < 2; k++) {
                snprintf(rel, sizeof(rel), "%s/d%d/f%d", roots[i], j, k);
                put(rel, 5000u + 7u * (unsigned)k,
                    (uint32_t)(i * 1000 + j * 10 + k));
                model_add(rel, 0, 0);
            }
            for (k = 0; k < 3; k++) {
                int f;

                snprintf(rel, sizeof(rel), "%s/d%d/e%d", roots[i], j, k);
                mk(rel);
                model_add(rel, 1, 0);
                for (f = 0; f < 4; f++) {
                    snprintf(rel, sizeof(rel), "%s/d%d/e%d/f%d", roots[i], j, k,
                             f);
                    put(rel, 300u * (unsigned)f + 1,
                        (uint32_t)(i * 10000 + j * 100 + k * 10 + f));
                    model_add(rel, 0, 0);
                }
            }
        }
    }
    mk("other");
    model_add("other", 1, 1);
    put("other/f0", 2000, 77);
    put("other/f1", 0, 78);
    model_add("other/f0", 0, 0);
    model_add("other/f1", 0, 0);
    mk("other/x");
    model_add("other/x", 1, 0);
    put("other/x/f0", 9000, 79);
    model_add("other/x/f0", 0, 0);
}

/* ------------------------------------------------------------ archive */

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

static struct cairn_snapshot *snap_of(const uint8_t id[CAIRN_ID_LEN])
{
    struct cairn_snapshot *s;
    char hex[65];

    cairn_hex_encode(id, CAIRN_ID_LEN, hex);
    assert_int_equal(cairn_repo_find_snapshot(repo, hex, &s), 0);
    return s;
}

struct run {
    const char *const *paths;
    size_t npaths;
    const uint8_t *parent; /* NULL: none */
    const char *const *dirty;
    size_t ndirty;
    int dirty_set, incomplete;
};

static int backup(const struct run *rn, struct cairn_backup_result *res)
{
    struct cairn_backup_opts o;
    struct cairn_snapshot *par = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    o.paths = rn->paths != NULL ? rn->paths : sel;
    o.npaths = rn->paths != NULL ? rn->npaths : 3;
    if (rn->parent != NULL)
        par = snap_of(rn->parent);
    o.parent = par;
    o.hostname = "testhost";
    o.threads = 2;
    o.dirty = rn->dirty;
    o.ndirty = rn->ndirty;
    o.dirty_set = rn->dirty_set;
    o.incomplete = rn->incomplete;
    rc = cairn_backup(repo, &o, res);
    cairn_snapshot_free(par);
    return rc;
}

/* The id of the tree at absolute directory abs, from a snapshot's root. */
static void subtree_at(const uint8_t root[CAIRN_ID_LEN], const char *abs,
                       uint8_t out[CAIRN_ID_LEN])
{
    struct cairn_tree *t, *next;
    const struct cairn_tree_entry *e;
    char comp[NAME_MAX + 1];
    const char *p = abs + 1, *s;
    size_t n;

    memcpy(out, root, CAIRN_ID_LEN);
    assert_int_equal(cairn_repo_read_tree(repo, codec, root, &t), 0);
    while (*p != '\0') {
        s = strchr(p, '/');
        n = s ? (size_t)(s - p) : strlen(p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        e = cairn_tree_find(t, comp);
        assert_non_null(e);
        assert_true(e->has_subtree);
        memcpy(out, e->subtree, CAIRN_ID_LEN);
        assert_int_equal(cairn_repo_read_tree(repo, codec, e->subtree, &next),
                         0);
        cairn_tree_free(t);
        t = next;
        p += n;
        if (*p == '/')
            p++;
    }
    cairn_tree_free(t);
}

/* The ancestors of base ("/" included), stat'ed. */
static void anc_stat(struct anc *a)
{
    char p[PATH_MAX];
    size_t i, len = strlen(base);

    a->n = 0;
    assert_int_equal(lstat("/", &a->st[a->n++]), 0);
    for (i = 1; i < len && a->n < MAXANC; i++) {
        if (base[i] != '/')
            continue;
        memcpy(p, base, i);
        p[i] = '\0';
        assert_int_equal(lstat(p, &a->st[a->n++]), 0);
    }
}

static int anc_same(const struct anc *x, const struct anc *y)
{
    size_t i;

    if (x->n != y->n)
        return 0;
    for (i = 0; i < x->n; i++)
        if (x->st[i].st_mtim.tv_sec != y->st[i].st_mtim.tv_sec ||
            x->st[i].st_mtim.tv_nsec != y->st[i].st_mtim.tv_nsec ||
            x->st[i].st_ctim.tv_sec != y->st[i].st_ctim.tv_sec ||
            x->st[i].st_ctim.tv_nsec != y->st[i].st_ctim.tv_nsec ||
            x->st[i].st_atim.tv_sec != y->st[i].st_atim.tv_sec ||
            x->st[i].st_atim.tv_nsec != y->st[i].st_atim.tv_nsec ||
            x->st[i].st_nlink != y->st[i].st_nlink)
            return 0;
    return 1;
}

static int root_checks, root_skips;

/*
 * Back up the current state from parent_id twice, with the dirty set and
 * with a full walk; check that both agree, and (want_listed >= 0) the
 * work the dirty run did (-2: as much as the full walk).  The dirty run becomes
 * the next parent.
 */
static void check_dirty(const char *const *dirty, size_t ndirty,
                        int64_t want_listed, int64_t want_reused,
                        struct cairn_backup_result *out_d)
{
    struct cairn_backup_result rd, rf;
    struct cairn_snapshot *sd, *sf;
    struct run rn;
    struct anc now;
    uint8_t bd[CAIRN_ID_LEN], bf[CAIRN_ID_LEN];

    memset(&rn, 0, sizeof(rn));
    rn.parent = parent_id;
    rn.dirty = dirty;
    rn.ndirty = ndirty;
    rn.dirty_set = 1;
    assert_int_equal(backup(&rn, &rd), 0);
    rn.dirty_set = 0;
    assert_int_equal(backup(&rn, &rf), 0);
    anc_stat(&now);

    assert_false(rd.walked_all);
    assert_true(rf.walked_all);
    assert_int_equal(rd.errors, 0);
    assert_int_equal(rf.errors, 0);
    sd = snap_of(rd.snapshot_id);
    sf = snap_of(rf.snapshot_id);
    /* Same totals, in the result and in the snapshot. */
    assert_int_equal(rd.files, rf.files);
    assert_int_equal(rd.dirs, rf.dirs);
    assert_int_equal(rd.bytes, rf.bytes);
    assert_int_equal(sd->files, sf->files);
    assert_int_equal(sd->dirs, sf->dirs);
    assert_int_equal(sd->bytes, sf->bytes);
    assert_int_equal(sd->files, rd.files);
    assert_int_equal(sd->complete, 1);
    assert_int_equal(sf->complete, 1);
    assert_true(sd->has_parent);
    assert_memory_equal(sd->parent, parent_id, CAIRN_ID_LEN);
    /* Same trees. */
    subtree_at(sd->root, base, bd);
    subtree_at(sf->root, base, bf);
    assert_memory_equal(bd, bf, CAIRN_ID_LEN);
    if (anc_same(&anc_parent, &now)) {
        assert_memory_equal(sd->root, sf->root, CAIRN_ID_LEN);
        root_checks++;
    } else {
        root_skips++; /* something changed above base meanwhile */
    }
    /* The work was proportional to the change. */
    if (want_listed >= 0)
        assert_int_equal(rd.dirs_listed, (uint64_t)want_listed);
    if (want_reused >= 0)
        assert_int_equal(rd.dirs_reused, (uint64_t)want_reused);
    if (want_listed == -2)
        assert_int_equal(rd.dirs_listed, rf.dirs_listed);
    else
        assert_true(rd.dirs_listed < rf.dirs_listed);
    assert_int_equal(rf.dirs_reused, 0);
    /* A full walk lists every directory, and the root (not counted). */
    assert_int_equal(rf.dirs_listed, rf.dirs + 1);
    cairn_snapshot_free(sd);
    cairn_snapshot_free(sf);
    memcpy(parent_id, rd.snapshot_id, CAIRN_ID_LEN);
    anc_parent = now;
    if (out_d != NULL)
        *out_d = rd;
}

/* A first full backup: the parent of what follows. */
static void first_backup(void)
{
    struct cairn_backup_result r;
    struct run rn;

    struct timespec pause = {0, 120 * 1000 * 1000};

    /* Past the files' timestamp tick, so nothing is "racy" (read again
     * for having changed too close to the parent backup). */
    nanosleep(&pause, NULL);
    memset(&rn, 0, sizeof(rn));
    anc_stat(&anc_parent);
    assert_int_equal(backup(&rn, &r), 0);
    assert_true(r.walked_all);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.complete, 1);
    memcpy(parent_id, r.snapshot_id, CAIRN_ID_LEN);
}

/* Absolute path of rel, in one of a few static slots. */
static const char *abs_path(const char *rel, int slot)
{
    static char buf[8][PATH_MAX];

    abs_of(rel, buf[slot]);
    return buf[slot];
}

/* ------------------------------------------------------------ cases */

static void test_cases(void **state)
{
    struct cairn_backup_result rd;
    uint8_t prev[CAIRN_ID_LEN], pr[CAIRN_ID_LEN], dr[CAIRN_ID_LEN];
    struct cairn_snapshot *s;
    char p[PATH_MAX], q[PATH_MAX];
    const char *d[4];
    struct timespec ts[2];
    uint64_t V;

    (void)state;
    first_backup();
    V = vlevels;

    /* A file modified at depth: a, d1, e2 listed (and "src"); the other
     * selected root, "other", a's other dirs and d1's other dirs kept. */
    put("src/a/d1/e2/f0", 4321, 900);
    d[0] = abs_path("src/a/d1/e2/f0", 0);
    check_dirty(d, 1, (int64_t)(V + 1 + 3), 7, &rd);
    assert_int_equal(rd.files_changed, 1);
    assert_int_equal(rd.files_new, 0);
    /* e2's other files, and the files of a and d1 (stat'ed, kept). */
    assert_int_equal(rd.files_unchanged, 3 + 3 + 2);

    /* A file added. */
    put("src/a/d2/e0/new1", 777, 901);
    model_add("src/a/d2/e0/new1", 0, 0);
    d[0] = abs_path("src/a/d2/e0/new1", 0);
    check_dirty(d, 1, (int64_t)(V + 4), 7, &rd);
    assert_int_equal(rd.files_new, 1);

    /* A file removed. */
    rm_rf("src/a/d3/e1/f1");
    model_remove("src/a/d3/e1/f1");
    d[0] = abs_path("src/a/d3/e1/f1", 0);
    check_dirty(d, 1, (int64_t)(V + 4), 7, NULL);

    /* A file renamed into a sibling directory: both ends dirty. */
    mv("src/a/d0/e0/f2", "src/a/d0/e1/f2r");
    model_rename("src/a/d0/e0/f2", "src/a/d0/e1/f2r");
    d[0] = abs_path("src/a/d0/e0/f2", 0);
    d[1] = abs_path("src/a/d0/e1/f2r", 1);
    check_dirty(d, 2, (int64_t)(V + 5), 6, NULL);

    /* A directory added (walked wholly, with a subdirectory). */
    mk("src/a/d1/n1");
    put("src/a/d1/n1/g0", 100, 902);
    put("src/a/d1/n1/g1", 20000, 903);
    mk("src/a/d1/n1/s");
    put("src/a/d1/n1/s/g2", 5, 904);
    model_add("src/a/d1/n1", 1, 0);
    model_add("src/a/d1/n1/g0", 0, 0);
    model_add("src/a/d1/n1/g1", 0, 0);
    model_add("src/a/d1/n1/s", 1, 0);
    model_add("src/a/d1/n1/s/g2", 0, 0);
    d[0] = abs_path("src/a/d1/n1", 0);
    check_dirty(d, 1, (int64_t)(V + 5), 8, &rd);
    assert_int_equal(rd.files_new, 3);

    /* A directory removed: its old subtree leaves the totals. */
    rm_rf("src/a/d2/e1");
    model_remove("src/a/d2/e1");
    d[0] = abs_path("src/a/d2/e1", 0);
    check_dirty(d, 1, (int64_t)(V + 3), 7, NULL);

    /* A directory renamed: the old name goes, the new is walked. */
    mv("src/a/d3", "src/a/d3r");
    model_rename("src/a/d3", "src/a/d3r");
    d[0] = abs_path("src/a/d3", 0);
    d[1] = abs_path("src/a/d3r", 1);
    check_dirty(d, 2, (int64_t)(V + 1 + 1 + 4), 5, NULL);

    /* A dirty path that no longer exists (nor its directory): the way to
     * it is listed, nothing changes. */
    memcpy(prev, parent_id, CAIRN_ID_LEN);
    d[0] = abs_path("src/a/d0/gone/deeper", 0);
    check_dirty(d, 1, (int64_t)(V + 3), 8, &rd);
    s = snap_of(prev);
    memcpy(pr, s->root, CAIRN_ID_LEN);
    cairn_snapshot_free(s);
    s = snap_of(rd.snapshot_id);
    memcpy(dr, s->root, CAIRN_ID_LEN);
    cairn_snapshot_free(s);
    subtree_at(pr, base, pr);
    subtree_at(dr, base, dr);
    assert_memory_equal(pr, dr, CAIRN_ID_LEN);

    /* Dirty paths outside the selection are ignored: only the root is
     * visited, the tree is the parent's. */
    put("outside/f", 200, 905);
    d[0] = abs_path("outside/f", 0);
    d[1] = "/nonexistent-cairn-test/x";
    d[2] = abs_path("src/a-not", 2); /* a sibling of a selected path */
    check_dirty(d, 3, 1, 1, &rd);
    assert_int_equal(rd.files_new + rd.files_changed + rd.files_unchanged, 0);

    /* A mode-only change of a file. */
    abs_of("src/a/d1/e0/f1", p);
    assert_int_equal(chmod(p, 0640), 0);
    d[0] = p;
    check_dirty(d, 1, (int64_t)(V + 4), 8, NULL);

    /* An mtime-only change, in the other selected root. */
    abs_of("src/b/d0/e1/f0", p);
    ts[0].tv_sec = 0;
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_sec = 1000000000;
    ts[1].tv_nsec = 123456789;
    assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
    d[0] = p;
    check_dirty(d, 1, (int64_t)(V + 4), 5, NULL);

    /* A directory's mode: walked wholly (d1, its e0-e2, n1, n1/s). */
    abs_of("src/a/d1", p);
    assert_int_equal(chmod(p, 0750), 0);
    d[0] = p;
    check_dirty(d, 1, (int64_t)(V + 1 + 1 + 6), 5, NULL);

    /* A directory replaced by a file of the same name. */
    rm_rf("src/b/d1/e0");
    model_remove("src/b/d1/e0");
    put("src/b/d1/e0", 3000, 906);
    model_add("src/b/d1/e0", 0, 0);
    d[0] = abs_path("src/b/d1/e0", 0);
    check_dirty(d, 1, (int64_t)(V + 3), 5, NULL);

    /* A selected path itself is dirty: walked wholly; src is kept. */
    put("other/x/f1", 10, 907);
    model_add("other/x/f1", 0, 0);
    d[0] = abs_path("other", 0);
    check_dirty(d, 1, (int64_t)(V + 2), 1, NULL);

    /* Nested and repeated dirty paths count once. */
    put("src/b/f0", 11, 908);
    d[0] = abs_path("src/b/d0", 0);
    d[1] = abs_path("src/b/d0/e2/f3", 1);
    d[2] = abs_path("src/b/d0", 2);
    d[3] = abs_path("src/b/f0", 3);
    /* b listed, d0 and its e0-e2 walked; src/a, other, b/d1 kept. */
    check_dirty(d, 4, (int64_t)(V + 1 + 1 + 4), 3, NULL);

    /* No dirty path at all: only the root is visited; same root. */
    memcpy(prev, parent_id, CAIRN_ID_LEN);
    check_dirty(NULL, 0, 1, 1, &rd);
    s = snap_of(prev);
    memcpy(pr, s->root, CAIRN_ID_LEN);
    cairn_snapshot_free(s);
    s = snap_of(rd.snapshot_id);
    assert_memory_equal(pr, s->root, CAIRN_ID_LEN);
    cairn_snapshot_free(s);

    /* Relative and unclean spellings are cleaned like selected paths. */
    put("src/a/d0/e2/f0", 12, 909);
    snprintf(q, sizeof(q), "%s/src/a/./d0//e2/../e2/f0", base);
    d[0] = q;
    check_dirty(d, 1, (int64_t)(V + 4), 7, NULL);
}

/* An ancestor of the selection as a dirty path: everything below it is
 * walked (but the dirty set is still followed above). */
static void test_ancestor_dirty(void **state)
{
    struct cairn_backup_result rd;
    const char *d[1];

    (void)state;
    put("src/a/f0", 99, 910);
    d[0] = base;
    check_dirty(d, 1, -2, 0, &rd);
}

/* ------------------------------------------------------------ random */

static uint32_t rng = 12345;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return n ? rng % n : 0;
}

static const struct node *pick(int dir, int allow_root)
{
    size_t i, tries;

    for (tries = 0; tries < 1000; tries++) {
        i = rnd((uint32_t)nmodel);
        if (model[i].dir == dir && (allow_root || !model[i].root))
            return &model[i];
    }
    return NULL;
}

/* One random change; appends its dirty paths (owned by the caller). */
static void random_change(char **dirty, size_t *nd)
{
    const struct node *x, *y;
    char rel[256], from[256];
    char p[PATH_MAX];
    struct timespec ts[2];

    switch (rnd(9)) {
    case 0: /* add a file */
        x = pick(1, 1);
        snprintf(rel, sizeof(rel), "%s/r%u", x->rel, name_seq++);
        if (strlen(rel) > 150)
            return;
        put(rel, rnd(30000), rng);
        model_add(rel, 0, 0);
        break;
    case 1: /* modify a file */
        if ((x = pick(0, 0)) == NULL)
            return;
        snprintf(rel, sizeof(rel), "%s", x->rel);
        put(rel, rnd(30000), rng);
        break;
    case 2: /* remove a file */
        if ((x = pick(0, 0)) == NULL)
            return;
        snprintf(rel, sizeof(rel), "%s", x->rel);
        rm_rf(rel);
        model_remove(rel);
        break;
    case 3: /* rename a file into some directory */
        if ((x = pick(0, 0)) == NULL)
            return;
        y = pick(1, 1);
        snprintf(from, sizeof(from), "%s", x->rel);
        snprintf(rel, sizeof(rel), "%s/m%u", y->rel, name_seq++);
        if (strlen(rel) > 150)
            return;
        mv(from, rel);
        model_rename(from, rel);
        abs_of(from, p);
        dirty[(*nd)++] = strdup(p);
        break;
    case 4: /* add a directory with files */
        x = pick(1, 1);
        snprintf(rel, sizeof(rel), "%s/D%u", x->rel, name_seq++);
        if (strlen(rel) > 150)
            return;
        mk(rel);
        model_add(rel, 1, 0);
        snprintf(from, sizeof(from), "%s/g", rel);
        put(from, rnd(20000), rng);
        model_add(from, 0, 0);
        break;
    case 5: /* remove a directory */
        if ((x = pick(1, 0)) == NULL)
            return;
        snprintf(rel, sizeof(rel), "%s", x->rel);
        rm_rf(rel);
        model_remove(rel);
        break;
    case 6: /* rename a directory elsewhere (not into itself) */
        if ((x = pick(1, 0)) == NULL)
            return;
        y = pick(1, 1);
        if (under(y->rel, x->rel))
            return;
        snprintf(from, sizeof(from), "%s", x->rel);
        snprintf(rel, sizeof(rel), "%s/M%u", y->rel, name_seq++);
        if (strlen(rel) > 150)
            return;
        mv(from, rel);
        model_rename(from, rel);
        abs_of(from, p);
        dirty[(*nd)++] = strdup(p);
        break;
    case 7: /* chmod a file or directory */
        x = pick((int)rnd(2), 0);
        if (x == NULL)
            return;
        snprintf(rel, sizeof(rel), "%s", x->rel);
        abs_of(rel, p);
        assert_int_equal(chmod(p, x->dir ? 0700 + rnd(0100) : 0600 + rnd(0100)),
                         0);
        break;
    default: /* mtime of a file */
        if ((x = pick(0, 0)) == NULL)
            return;
        snprintf(rel, sizeof(rel), "%s", x->rel);
        abs_of(rel, p);
        ts[0].tv_sec = 0;
        ts[0].tv_nsec = UTIME_OMIT;
        ts[1].tv_sec = 1500000000 + rnd(1000000);
        ts[1].tv_nsec = rnd(1000000000);
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
        break;
    }
    abs_of(rel, p);
    dirty[(*nd)++] = strdup(p);
}

static void test_random(void **state)
{
    char *dirty[16];
    const char *cd[16];
    size_t nd, i, k;
    int round, nchanges;
    const char *seed = getenv("CAIRN_TEST_SEED");

    (void)state;
    if (seed != NULL)
        rng = (uint32_t)strtoul(seed, NULL, 10) | 1;
    for (round = 0; round < 12; round++) {
        nd = 0;
        nchanges = 1 + (int)rnd(4);
        for (k = 0; k < (size_t)nchanges; k++)
            random_change(dirty, &nd);
        for (i = 0; i < nd; i++)
            cd[i] = dirty[i];
        check_dirty(cd, nd, -1, -1, NULL);
        for (i = 0; i < nd; i++)
            free(dirty[i]);
    }
    /* Whatever happened, one more full walk from the last dirty-set
     * snapshot changes nothing. */
    check_dirty(NULL, 0, 1, 1, NULL);
}

/* ------------------------------------------------------------ fallbacks */

static void test_fallbacks(void **state)
{
    struct cairn_backup_result r, rf;
    struct cairn_snapshot *s;
    struct run rn;
    const char *d[1];
    const char *only_a[1];

    (void)state;
    d[0] = abs_path("src/a/f0", 0);

    /* No parent: a full walk. */
    memset(&rn, 0, sizeof(rn));
    rn.dirty = d;
    rn.ndirty = 1;
    rn.dirty_set = 1;
    assert_int_equal(backup(&rn, &r), 0);
    assert_true(r.walked_all);
    assert_int_equal(r.dirs_reused, 0);
    assert_int_equal(r.complete, 1);

    /* A parent of another selection: a full walk. */
    only_a[0] = sel_a;
    memset(&rn, 0, sizeof(rn));
    rn.paths = only_a;
    rn.npaths = 1;
    assert_int_equal(backup(&rn, &rf), 0);
    memset(&rn, 0, sizeof(rn));
    rn.parent = rf.snapshot_id;
    rn.dirty = d;
    rn.ndirty = 1;
    rn.dirty_set = 1;
    assert_int_equal(backup(&rn, &r), 0);
    assert_true(r.walked_all);
    assert_int_equal(r.dirs_reused, 0);

    /* "/" is dirty: a full walk. */
    d[0] = "/";
    rn.parent = parent_id;
    assert_int_equal(backup(&rn, &r), 0);
    assert_true(r.walked_all);

    /* A non-absolute but empty dirty path is refused. */
    d[0] = "";
    assert_int_equal(backup(&rn, &r), CAIRN_EINVAL);
    rn.dirty = NULL;
    rn.ndirty = 1;
    assert_int_equal(backup(&rn, &r), CAIRN_EINVAL);

    /* dirty_set = 0: the dirty paths are ignored (a full walk). */
    d[0] = abs_path("src/a/f0", 0);
    rn.dirty = d;
    rn.ndirty = 1;
    rn.dirty_set = 0;
    assert_int_equal(backup(&rn, &r), 0);
    assert_true(r.walked_all);
    assert_int_equal(r.dirs_reused, 0);

    /* Completeness: incomplete asked for (work still queued, no errors);
     * a dirty-set run from it that says nothing is left is complete (its
     * dirty set was that work), and so is a full one. */
    memset(&rn, 0, sizeof(rn));
    rn.parent = parent_id;
    rn.incomplete = 1;
    assert_int_equal(backup(&rn, &r), 0);
    assert_int_equal(r.complete, 0);
    s = snap_of(r.snapshot_id);
    assert_int_equal(s->complete, 0);
    cairn_snapshot_free(s);
    memcpy(rf.snapshot_id, r.snapshot_id, CAIRN_ID_LEN);
    memset(&rn, 0, sizeof(rn));
    rn.parent = rf.snapshot_id;
    rn.dirty = d;
    rn.ndirty = 1;
    rn.dirty_set = 1;
    assert_int_equal(backup(&rn, &r), 0);
    assert_false(r.walked_all);
    assert_int_equal(r.complete, 1);
    rn.dirty_set = 0;
    assert_int_equal(backup(&rn, &r), 0);
    assert_int_equal(r.complete, 1);
    /* ... and a dirty-set run from a complete parent is complete unless
     * told otherwise. */
    memcpy(rf.snapshot_id, r.snapshot_id, CAIRN_ID_LEN);
    rn.parent = rf.snapshot_id;
    rn.dirty_set = 1;
    rn.incomplete = 1;
    assert_int_equal(backup(&rn, &r), 0);
    assert_false(r.walked_all);
    assert_int_equal(r.complete, 0);
    rn.incomplete = 0;
    assert_int_equal(backup(&rn, &r), 0);
    assert_int_equal(r.complete, 1);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    char cwd[PATH_MAX];
    size_t i;

    (void)state;
    if (getcwd(cwd, sizeof(cwd)) == NULL || strlen(cwd) > 200)
        snprintf(cwd, sizeof(cwd), "/tmp");
    snprintf(base, sizeof(base), "%s/cairn-test-dirty-XXXXXX", cwd);
    if (mkdtemp(base) == NULL) {
        snprintf(base, sizeof(base), "/tmp/cairn-test-dirty-XXXXXX");
        if (mkdtemp(base) == NULL)
            return -1;
    }
    snprintf(repo_dir, sizeof(repo_dir), "%s/repo", base);
    repo = init_repo(repo_dir);
    codec =
        cairn_blob_codec_new(cairn_repo_keys(repo), CAIRN_ZSTD_LEVEL_DEFAULT);
    if (codec == NULL)
        return -1;
    make_tree();
    snprintf(sel_a, sizeof(sel_a), "%s/src/a", base);
    snprintf(sel_b, sizeof(sel_b), "%s/src/b", base);
    snprintf(sel_o, sizeof(sel_o), "%s/other", base);
    sel[0] = sel_a;
    sel[1] = sel_b;
    sel[2] = sel_o;
    vlevels = 1;
    for (i = 0; base[i] != '\0'; i++)
        if (base[i] == '/')
            vlevels++;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cairn_blob_codec_free(codec);
    cairn_repo_free(repo);
    rm_rf_abs(base);
    free(model);
    printf("# root ids compared %d times, skipped %d times (the "
           "directories above the test's changed meanwhile)\n",
           root_checks, root_skips);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_ancestor_dirty),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_fallbacks),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
