/*
 * test_tree.c - the tree encoding: round trips with every field set, exact
 * bytes of a small tree, rejection of every truncation, trailing bytes,
 * unsorted, duplicate and invalid names, unknown types and versions; find
 * and refs; a 10,000-entry tree.
 *
 * With CAIRN_WRITE_CORPUS=DIR set, also writes seed inputs for
 * fuzz/fuzz_tree.c into DIR/tree/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/tree.h"

static uint8_t ids[6][CAIRN_ID_LEN];
static uint8_t xval[300];
static char longname[65536];
static char longtarget[4001];

static void fill_fixtures(void)
{
    size_t i;

    for (i = 0; i < 6; i++)
        memset(ids[i], (int)(0xa0 + i), CAIRN_ID_LEN);
    for (i = 0; i < sizeof(xval); i++)
        xval[i] = (uint8_t)i; /* binary, with NULs */
    memset(longname, 'n', 65535);
    longname[65535] = '\0';
    memset(longtarget, 't', 4000);
    longtarget[4000] = '\0';
}

/* A tree of 5 entries with every kind of field set. */
static struct cairn_xattr xattrs[2] = {
    {"user.bin", xval, sizeof(xval)},
    {"security.selinux", (uint8_t *)"", 0},
};

static void make_tree(struct cairn_tree_entry e[5], struct cairn_tree *t)
{
    memset(e, 0, 5 * sizeof(e[0]));
    fill_fixtures();

    e[0].name = "a file";
    e[0].type = CAIRN_NODE_FILE;
    e[0].mode = 0644 | 04000;
    e[0].uid = 1000;
    e[0].gid = 100;
    e[0].user = "ana";
    e[0].group = "users";
    e[0].mtime_ns = 1700000000123456789LL;
    e[0].atime_ns = -5;
    e[0].ctime_ns = INT64_MAX;
    e[0].size = 3ull << 40;
    e[0].dev = 0x801;
    e[0].ino = UINT64_MAX;
    e[0].nlink = 2;
    e[0].nxattrs = 2;
    e[0].xattrs = xattrs;
    e[0].ncontent = 3;
    e[0].content = ids;
    e[0].target = "";

    e[1].name = "dir";
    e[1].type = CAIRN_NODE_DIR;
    e[1].mode = 0755;
    e[1].user = "";
    e[1].group = "";
    e[1].target = "";
    e[1].has_subtree = 1;
    memcpy(e[1].subtree, ids[5], CAIRN_ID_LEN);

    e[2].name = "dev";
    e[2].type = CAIRN_NODE_CHR;
    e[2].rdev = 0x0103;
    e[2].user = "root";
    e[2].group = "root";
    e[2].target = "";

    e[3].name = longname;
    e[3].type = CAIRN_NODE_SYMLINK;
    e[3].mode = 0777;
    e[3].user = "";
    e[3].group = "";
    e[3].target = longtarget;

    e[4].name = "\xc3\xa9t\xc3\xa9"; /* "été", UTF-8 after 'n' */
    e[4].type = CAIRN_NODE_FIFO;
    e[4].user = NULL; /* NULL encodes as "" */
    e[4].group = NULL;
    e[4].target = NULL;

    /* Sorted: "a file" < "dev" < "dir" < "nnn..." < "\xc3..." */
    {
        struct cairn_tree_entry tmp = e[1];
        e[1] = e[2];
        e[2] = tmp;
    }
    t->nentries = 5;
    t->entries = e;
}

static void assert_entry_equal(const struct cairn_tree_entry *a,
                               const struct cairn_tree_entry *b)
{
    uint16_t i;

    assert_string_equal(a->name, b->name);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->uid, b->uid);
    assert_int_equal(a->gid, b->gid);
    assert_string_equal(a->user ? a->user : "", b->user);
    assert_string_equal(a->group ? a->group : "", b->group);
    assert_true(a->mtime_ns == b->mtime_ns);
    assert_true(a->atime_ns == b->atime_ns);
    assert_true(a->ctime_ns == b->ctime_ns);
    assert_true(a->size == b->size);
    assert_true(a->dev == b->dev);
    assert_true(a->ino == b->ino);
    assert_true(a->rdev == b->rdev);
    assert_int_equal(a->nlink, b->nlink);
    assert_int_equal(a->nxattrs, b->nxattrs);
    for (i = 0; i < a->nxattrs; i++) {
        assert_string_equal(a->xattrs[i].name, b->xattrs[i].name);
        assert_int_equal(a->xattrs[i].len, b->xattrs[i].len);
        if (a->xattrs[i].len > 0)
            assert_memory_equal(a->xattrs[i].value, b->xattrs[i].value,
                                a->xattrs[i].len);
    }
    assert_string_equal(a->target ? a->target : "", b->target);
    assert_int_equal(a->ncontent, b->ncontent);
    if (a->ncontent > 0)
        assert_memory_equal(a->content, b->content,
                            (size_t)a->ncontent * CAIRN_ID_LEN);
    else
        assert_null(b->content);
    assert_int_equal(!!a->has_subtree, b->has_subtree);
    if (a->has_subtree)
        assert_memory_equal(a->subtree, b->subtree, CAIRN_ID_LEN);
}

static void write_corpus(const char *name, const uint8_t *p, size_t n)
{
    const char *dir = getenv("CAIRN_WRITE_CORPUS");
    char path[4096];
    FILE *f;

    if (dir == NULL)
        return;
    snprintf(path, sizeof(path), "%s/tree/%s", dir, name);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_round_trip(void **state)
{
    struct cairn_tree_entry e[5];
    struct cairn_tree t, *d = NULL;
    struct cairn_buf b, b2;
    uint32_t i;

    (void)state;
    make_tree(e, &t);
    cairn_buf_init(&b, 0);
    cairn_buf_init(&b2, 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), 0);
    assert_int_equal(d->nentries, 5);
    for (i = 0; i < 5; i++)
        assert_entry_equal(&e[i], &d->entries[i]);
    /* Canonical: the decoded tree encodes to the same bytes. */
    assert_int_equal(cairn_tree_encode(d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    cairn_tree_free(d);
    cairn_buf_free(&b);
    cairn_buf_free(&b2);
}

static void test_encode_appends(void **state)
{
    struct cairn_tree t = {0, NULL}, *d = NULL;
    struct cairn_buf b;
    static const uint8_t empty[] = {'C', 'R', 'N', 'T', 1, 0, 0, 0, 0};

    (void)state;
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_buf_append(&b, "xyz", 3), 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    assert_int_equal(b.len, 3 + sizeof(empty));
    assert_memory_equal(b.data, "xyz", 3);
    assert_memory_equal(b.data + 3, empty, sizeof(empty));
    assert_int_equal(cairn_tree_decode(b.data + 3, b.len - 3, &d), 0);
    assert_int_equal(d->nentries, 0);
    assert_null(d->entries);
    cairn_tree_free(d);
    cairn_buf_free(&b);
    cairn_tree_free(NULL);
}

/* The exact bytes of a one-entry tree (known answer for FORMAT.md). */
static void test_known_bytes(void **state)
{
    struct cairn_tree_entry e;
    struct cairn_tree t = {1, &e};
    struct cairn_buf b;
    /* clang-format off */
    static const uint8_t want[] = {
        'C', 'R', 'N', 'T', 1, 1, 0, 0, 0,         /* header, 1 entry */
        1, 0, 'x',                                 /* name "x" */
        1,                                         /* type file */
        0xa4, 0x01, 0, 0,                          /* mode 0644 */
        0xe8, 0x03, 0, 0, 0x64, 0, 0, 0,           /* uid 1000 gid 100 */
        1, 0, 'u', 0, 0,                           /* user "u", group "" */
        1, 0, 0, 0, 0, 0, 0, 0,                    /* mtime 1 */
        2, 0, 0, 0, 0, 0, 0, 0,                    /* atime 2 */
        3, 0, 0, 0, 0, 0, 0, 0,                    /* ctime 3 */
        5, 0, 0, 0, 0, 0, 0, 0,                    /* size 5 */
        0, 0, 0, 0, 0, 0, 0, 0,                    /* dev */
        7, 0, 0, 0, 0, 0, 0, 0,                    /* ino 7 */
        1, 0, 0, 0,                                /* nlink 1 */
        0, 0, 0, 0, 0, 0, 0, 0,                    /* rdev */
        0, 0,                                      /* no xattrs */
        0, 0,                                      /* target "" */
        1, 0, 0, 0,                                /* 1 content id */
        0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0,
        0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0,
        0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0, 0xa0,
        0,                                         /* no subtree */
    };
    /* clang-format on */

    (void)state;
    fill_fixtures();
    memset(&e, 0, sizeof(e));
    e.name = "x";
    e.type = CAIRN_NODE_FILE;
    e.mode = 0644;
    e.uid = 1000;
    e.gid = 100;
    e.user = "u";
    e.group = "";
    e.target = "";
    e.mtime_ns = 1;
    e.atime_ns = 2;
    e.ctime_ns = 3;
    e.size = 5;
    e.ino = 7;
    e.nlink = 1;
    e.ncontent = 1;
    e.content = ids;
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    write_corpus("one_file", b.data, b.len);
    cairn_buf_free(&b);
}

static void test_truncations_and_trailing(void **state)
{
    struct cairn_tree_entry e[5];
    struct cairn_tree t, *d = NULL;
    struct cairn_buf b;
    uint8_t *copy;
    size_t n;

    (void)state;
    make_tree(e, &t);
    /* Shorten the long name so the loop over every length stays quick. */
    longname[300] = '\0';
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    write_corpus("every_field", b.data, b.len);
    for (n = 0; n < b.len; n++) {
        /* A fresh allocation of exactly n bytes, so ASan sees overreads. */
        copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, n);
        d = NULL;
        assert_int_equal(cairn_tree_decode(copy, n, &d), CAIRN_ECORRUPT);
        assert_null(d);
        free(copy);
    }
    assert_int_equal(cairn_buf_put_u8(&b, 0), 0);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    cairn_buf_free(&b);
}

/* Encode a tree with the given names (for invalid ones, patch the bytes). */
static void encode_names(const char **names, uint32_t n, struct cairn_buf *b)
{
    struct cairn_tree_entry e[4];
    struct cairn_tree t = {n, e};
    uint32_t i;

    memset(e, 0, sizeof(e));
    for (i = 0; i < n; i++) {
        e[i].name = (char *)names[i];
        e[i].type = CAIRN_NODE_FILE;
    }
    cairn_buf_init(b, 0);
    assert_int_equal(cairn_tree_encode(&t, b), 0);
}

static void test_bad_names(void **state)
{
    const char *ok[3] = {"aa", "ab", "b"};
    const char *unsorted[2] = {"b", "a"};
    const char *dup[2] = {"a", "a"};
    const char *prefix[2] = {"ab", "a"};
    const char *bad[] = {"", ".", "..", "a/b"};
    struct cairn_tree_entry e[2];
    struct cairn_tree t = {2, e}, *d = NULL;
    struct cairn_buf b;
    size_t i;

    (void)state;
    /* The encoder refuses them. */
    memset(e, 0, sizeof(e));
    e[0].type = e[1].type = CAIRN_NODE_FILE;
    cairn_buf_init(&b, 0);
    e[0].name = (char *)unsorted[0];
    e[1].name = (char *)unsorted[1];
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e[0].name = e[1].name = "a";
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e[0].name = (char *)prefix[0];
    e[1].name = (char *)prefix[1];
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    t.nentries = 1;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e[0].name = (char *)bad[i];
        assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    }
    e[0].name = NULL;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    assert_int_equal(b.len, 0);

    /* The decoder refuses them: patch a valid encoding.  Names sit at
     * offset 9 + 2 of the first entry; each entry of a plain file with
     * empty strings is 88 + namelen bytes. */
    encode_names(ok, 3, &b);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), 0);
    cairn_tree_free(d);
    /* "aa","ab" -> "ab","ab": duplicate */
    b.data[12] = 'b';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    /* "ac","ab": unsorted */
    b.data[12] = 'c';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    /* "a/","ab": slash */
    b.data[12] = '/';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    /* NUL in a name */
    b.data[12] = '\0';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    /* ".." and "." */
    b.data[11] = '.';
    b.data[12] = '.';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    cairn_buf_free(&b);
    {
        const char *one[1] = {"x"};

        encode_names(one, 1, &b);
        b.data[11] = '.';
        assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
        cairn_buf_free(&b);
    }
    encode_names(dup, 1, &b); /* a single "a" */
    cairn_buf_free(&b);
}

static void test_bad_fields(void **state)
{
    const char *one[1] = {"x"};
    struct cairn_tree_entry e;
    struct cairn_tree t = {1, &e}, *d = NULL;
    struct cairn_buf b;
    uint8_t save;

    (void)state;
    encode_names(one, 1, &b); /* type at 12, mode at 13 */
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), 0);
    cairn_tree_free(d);
    save = b.data[12];
    b.data[12] = 0;
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    b.data[12] = 8;
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    b.data[12] = save;
    b.data[14] = 0x10; /* mode 010000: a type bit */
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    b.data[14] = 0;
    /* Version 2: refused as a version, not as damage. */
    b.data[4] = 2;
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_EVERSION);
    b.data[4] = 1;
    b.data[0] = 'X';
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    b.data[0] = 'C';
    /* has_subtree 2, or set on a file */
    b.data[b.len - 1] = 2;
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    b.data[b.len - 1] = 0;
    /* A huge entry count with little input. */
    cairn_le32enc(b.data + 5, 0xffffffffu);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    cairn_le32enc(b.data + 5, 2);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    cairn_le32enc(b.data + 5, 1);
    /* A huge content count. */
    cairn_le32enc(b.data + b.len - 5, 0x10000000u);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), CAIRN_ECORRUPT);
    cairn_buf_free(&b);

    /* The encoder's rules for fields. */
    memset(&e, 0, sizeof(e));
    e.name = "x";
    e.type = CAIRN_NODE_FILE;
    cairn_buf_init(&b, 0);
    e.type = 9;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.type = CAIRN_NODE_FILE;
    e.mode = 0100644;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.mode = 0644;
    e.has_subtree = 1;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.has_subtree = 0;
    e.target = "x";
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.target = NULL;
    e.type = CAIRN_NODE_DIR;
    e.ncontent = 1;
    e.content = ids;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.type = CAIRN_NODE_FILE;
    e.content = NULL;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    e.ncontent = 0;
    e.nxattrs = 1;
    assert_int_equal(cairn_tree_encode(&t, &b), CAIRN_EINVAL);
    assert_int_equal(b.len, 0);
    cairn_buf_free(&b);
}

static void test_find_and_refs(void **state)
{
    struct cairn_tree_entry e[5];
    struct cairn_tree t, *d = NULL;
    struct cairn_buf b;
    uint8_t(*refs)[CAIRN_ID_LEN] = NULL;
    uint32_t n = 0, i;

    (void)state;
    make_tree(e, &t);
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), 0);
    for (i = 0; i < 5; i++)
        assert_ptr_equal(cairn_tree_find(d, e[i].name), &d->entries[i]);
    assert_null(cairn_tree_find(d, "a"));
    assert_null(cairn_tree_find(d, "zzz"));
    assert_null(cairn_tree_find(d, "dex"));
    assert_int_equal(cairn_tree_refs(d, &refs, &n), 0);
    assert_int_equal(n, 4); /* 3 content ids, then the subtree */
    assert_memory_equal(refs[0], ids[0], CAIRN_ID_LEN);
    assert_memory_equal(refs[2], ids[2], CAIRN_ID_LEN);
    assert_memory_equal(refs[3], ids[5], CAIRN_ID_LEN);
    free(refs);
    cairn_tree_free(d);

    t.nentries = 0;
    refs = (void *)1;
    assert_int_equal(cairn_tree_refs(&t, &refs, &n), 0);
    assert_null(refs);
    assert_int_equal(n, 0);
    cairn_buf_free(&b);
}

static void test_many_entries(void **state)
{
    enum { N = 10000 };
    struct cairn_tree_entry *e;
    struct cairn_tree t, *d = NULL;
    struct cairn_buf b, b2;
    char(*names)[16];
    uint32_t i;

    (void)state;
    fill_fixtures();
    e = calloc(N, sizeof(*e));
    names = calloc(N, sizeof(*names));
    assert_non_null(e);
    assert_non_null(names);
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "f%08u", i);
        e[i].name = names[i];
        e[i].type = CAIRN_NODE_FILE;
        e[i].mode = 0600;
        e[i].user = "someone";
        e[i].group = "staff";
        e[i].size = i;
        e[i].ncontent = (i % 3);
        e[i].content = ids;
        e[i].nxattrs = (i % 7 == 0) ? 1 : 0;
        e[i].xattrs = xattrs;
    }
    t.nentries = N;
    t.entries = e;
    cairn_buf_init(&b, 0);
    cairn_buf_init(&b2, 0);
    assert_int_equal(cairn_tree_encode(&t, &b), 0);
    assert_int_equal(cairn_tree_decode(b.data, b.len, &d), 0);
    assert_int_equal(d->nentries, N);
    for (i = 0; i < N; i += 997)
        assert_entry_equal(&e[i], &d->entries[i]);
    assert_non_null(cairn_tree_find(d, "f00009999"));
    assert_int_equal(cairn_tree_encode(d, &b2), 0);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    cairn_tree_free(d);
    cairn_buf_free(&b);
    cairn_buf_free(&b2);
    free(names);
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_appends),
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_truncations_and_trailing),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_find_and_refs),
        cmocka_unit_test(test_many_entries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
