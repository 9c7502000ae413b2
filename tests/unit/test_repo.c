/*
 * test_repo.c - an open archive: init and open with key files (wrong
 * passphrase, no archive, an archive already there, a tampered config),
 * key add/list/remove, the concurrent blob writer (dedup, packs named by
 * their hash, a stalled pack not holding up the others, the indexer thread, an interrupted writer whose packs are
 * adopted and then indexed), snapshots (list order, find by "latest",
 * id, prefix, ambiguity, damage) and a damaged index object.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/blob.h"
#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/pack.h"
#include "cairn/repo.h"
#include "cairn/snapshot.h"
#include "cairn/store.h"

#define PASS "correct horse battery"
#define PASS2 "second key, other words"

static char base[64];

/* ------------------------------------------------------------ helpers */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void log_fn(void *arg, int level, const char *msg)
{
    size_t n = strlen(msg);

    (void)arg;
    (void)level;
    pthread_mutex_lock(&log_lock);
    if (log_len + n + 2 < sizeof(log_text)) {
        memcpy(log_text + log_len, msg, n);
        log_len += n;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_lock);
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    log_text[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

static int log_has(const char *needle)
{
    int has;

    pthread_mutex_lock(&log_lock);
    has = strstr(log_text, needle) != NULL;
    pthread_mutex_unlock(&log_lock);
    return has;
}

static void dir_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", base, name);
}

static struct cairn_repo *init_at(const char *dir, uint32_t pack_size)
{
    struct cairn_repo_init_opts o;
    struct cairn_store *s;
    struct cairn_repo *r = NULL;

    memset(&o, 0, sizeof(o));
    o.chunk.min = 4096;
    o.chunk.avg = 16384;
    o.chunk.max = 65536;
    o.pack_size = pack_size;
    o.kdf.log2_n = 10;
    o.kdf.r = 8;
    o.kdf.p = 1;
    o.label = "first";
    assert_int_equal(cairn_store_dir_open(dir, 1, &s), 0);
    assert_int_equal(cairn_repo_init(s, PASS, strlen(PASS), &o, &r), 0);
    assert_non_null(r);
    return r;
}

static int open_at(const char *dir, const char *pass, struct cairn_repo **out)
{
    struct cairn_store *s;
    int rc;

    *out = NULL;
    if ((rc = cairn_store_dir_open(dir, 0, &s)) != 0)
        return rc;
    if ((rc = cairn_repo_open(s, pass, strlen(pass), out)) != 0)
        cairn_store_free(s);
    return rc;
}

static struct cairn_repo *reopen_loaded(const char *dir, uint32_t *out_bad)
{
    struct cairn_repo *r;

    assert_int_equal(open_at(dir, PASS, &r), 0);
    assert_int_equal(cairn_repo_load_index(r, out_bad), 0);
    return r;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void flip_byte(const char *path, off_t off)
{
    uint8_t b;
    int fd = open(path, O_RDWR);

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void obj_path(char *out, size_t n, const char *dir, const char *kind,
                     const char *name)
{
    snprintf(out, n, "%s/%s/%.2s/%s", dir, kind, name, name);
}

/* Names of the objects of one type. */
struct names {
    char v[2048][2 * CAIRN_ID_LEN + 1];
    size_t n;
};

static int names_add(void *arg, const char *name, uint64_t size)
{
    struct names *nm = arg;

    (void)size;
    if (nm->n < sizeof(nm->v) / sizeof(nm->v[0]))
        snprintf(nm->v[nm->n++], sizeof(nm->v[0]), "%s", name);
    return 0;
}

static void list_names(struct cairn_repo *r, enum cairn_obj_type t,
                       struct names *nm)
{
    nm->n = 0;
    assert_int_equal(cairn_store_list(cairn_repo_store(r), t, names_add, nm),
                     0);
}

static size_t count_objs(struct cairn_repo *r, enum cairn_obj_type t)
{
    struct names *nm = malloc(sizeof(*nm));
    size_t n;

    assert_non_null(nm);
    list_names(r, t, nm);
    n = nm->n;
    free(nm);
    return n;
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
    nftw(p, rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

/* ------------------------------------------------------------ blobs */

struct tblob {
    uint8_t id[CAIRN_ID_LEN];
    uint8_t type;
    uint8_t *data;
    size_t len;
    uint8_t (*refs)[CAIRN_ID_LEN];
    uint32_t nrefs;
};

/*
 * n blobs for archive r, numbered from first: mostly random data (some
 * compressible), every tenth a tree referring to the two data blobs
 * before it.
 */
static struct tblob *make_blobs(struct cairn_repo *r, size_t n,
                                uint32_t first, size_t minlen, size_t spread)
{
    struct cairn_blob_codec *c =
        cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    struct tblob *v = calloc(n, sizeof(*v));
    size_t i, j;

    assert_non_null(c);
    assert_non_null(v);
    for (i = 0; i < n; i++) {
        uint32_t k = first + (uint32_t)i;

        v[i].len = minlen + (k * 7919u) % spread;
        v[i].data = malloc(v[i].len);
        assert_non_null(v[i].data);
        if (k % 5 == 3) {
            for (j = 0; j < v[i].len; j++)
                v[i].data[j] = "compressible text "[(j + k) % 18];
        } else {
            fill(v[i].data, v[i].len, k);
        }
        v[i].type = CAIRN_BLOB_DATA;
        if (i >= 2 && i % 10 == 9 && v[i - 1].type == CAIRN_BLOB_DATA &&
            v[i - 2].type == CAIRN_BLOB_DATA) {
            v[i].type = CAIRN_BLOB_TREE;
            v[i].nrefs = 2;
            v[i].refs = malloc(2 * CAIRN_ID_LEN);
            assert_non_null(v[i].refs);
            memcpy(v[i].refs[0], v[i - 1].id, CAIRN_ID_LEN);
            memcpy(v[i].refs[1], v[i - 2].id, CAIRN_ID_LEN);
        }
        assert_int_equal(cairn_blob_id(c, v[i].data, v[i].len, v[i].id), 0);
    }
    cairn_blob_codec_free(c);
    return v;
}

static void free_blobs(struct tblob *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].data);
        free(v[i].refs);
    }
    free(v);
}

/* Every blob is indexed with the right type and length and reads back. */
static void check_blobs(struct cairn_repo *r, const struct tblob *v, size_t n)
{
    struct cairn_blob_codec *c =
        cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    struct cairn_blob_loc loc;
    uint8_t *out;
    size_t i, len;

    assert_non_null(c);
    for (i = 0; i < n; i++) {
        assert_int_equal(cairn_repo_lookup(r, v[i].id, &loc), 0);
        assert_int_equal(loc.type, v[i].type);
        assert_int_equal(loc.raw_length, v[i].len);
        assert_int_equal(cairn_repo_read_blob(r, c, v[i].id, v[i].type, &out,
                                              &len),
                         0);
        assert_int_equal(len, v[i].len);
        assert_memory_equal(out, v[i].data, len);
        free(out);
        /* Asked for the wrong type: refused, not misread. */
        assert_int_equal(cairn_repo_read_blob(r, c, v[i].id, !v[i].type, &out,
                                              &len),
                         CAIRN_ECORRUPT);
    }
    cairn_blob_codec_free(c);
}

static const struct tblob *find_blob(const struct tblob *v, size_t n,
                                     const uint8_t id[CAIRN_ID_LEN])
{
    size_t i;

    for (i = 0; i < n; i++)
        if (memcmp(v[i].id, id, CAIRN_ID_LEN) == 0)
            return &v[i];
    return NULL;
}

/*
 * Every pack object: named by the SHA-256 of its bytes, its trailer
 * verifies, one blob type per pack, each blob one of v (with its refs).
 * Returns the number of packs; *out_blobs the blobs they hold.
 */
static size_t check_packs(struct cairn_repo *r, const struct tblob *v,
                          size_t n, size_t *out_blobs)
{
    struct names *nm = malloc(sizeof(*nm));
    struct cairn_index *idx;
    uint8_t *buf, sha[CAIRN_ID_LEN];
    char hex[2 * CAIRN_ID_LEN + 1];
    size_t i, len, blobs = 0;
    uint32_t b;

    assert_non_null(nm);
    list_names(r, CAIRN_OBJ_PACK, nm);
    for (i = 0; i < nm->n; i++) {
        assert_int_equal(cairn_store_get(cairn_repo_store(r), CAIRN_OBJ_PACK,
                                         nm->v[i], &buf, &len),
                         0);
        cairn_sha256(buf, len, sha);
        cairn_hex_encode(sha, CAIRN_ID_LEN, hex);
        assert_string_equal(hex, nm->v[i]);
        assert_int_equal(cairn_pack_read_index(buf, len,
                                               cairn_repo_keys(r)->mac, &idx),
                         0);
        assert_int_equal(idx->npacks, 1);
        assert_memory_equal(idx->packs[0].id, sha, CAIRN_ID_LEN);
        assert_true(idx->packs[0].nblobs > 0);
        for (b = 0; b < idx->packs[0].nblobs; b++) {
            const struct cairn_index_entry *e = &idx->packs[0].blobs[b];
            const struct tblob *t = find_blob(v, n, e->id);

            assert_non_null(t);
            assert_int_equal(e->type, idx->packs[0].blobs[0].type);
            assert_int_equal(e->type, t->type);
            assert_int_equal(e->raw_length, t->len);
            assert_int_equal(e->nrefs, t->nrefs);
            if (t->nrefs > 0)
                assert_memory_equal(e->refs, t->refs,
                                    t->nrefs * CAIRN_ID_LEN);
        }
        blobs += idx->packs[0].nblobs;
        cairn_index_free(idx);
        free(buf);
    }
    i = nm->n;
    free(nm);
    *out_blobs = blobs;
    return i;
}

/* Decode every index object; count the packs they name (each once). */
static size_t indexed_packs(struct cairn_repo *r, struct names *packs)
{
    struct names *nm = malloc(sizeof(*nm));
    struct cairn_index *idx;
    uint8_t *buf;
    size_t i, j, len;
    uint32_t p;
    char hex[2 * CAIRN_ID_LEN + 1];

    assert_non_null(nm);
    packs->n = 0;
    list_names(r, CAIRN_OBJ_INDEX, nm);
    for (i = 0; i < nm->n; i++) {
        assert_int_equal(cairn_store_get(cairn_repo_store(r), CAIRN_OBJ_INDEX,
                                         nm->v[i], &buf, &len),
                         0);
        assert_int_equal(cairn_index_decode(buf, len, cairn_repo_keys(r)->mac,
                                            &idx),
                         0);
        for (p = 0; p < idx->npacks; p++) {
            cairn_hex_encode(idx->packs[p].id, CAIRN_ID_LEN, hex);
            for (j = 0; j < packs->n; j++)
                assert_string_not_equal(packs->v[j], hex);
            assert_true(packs->n < sizeof(packs->v) / sizeof(packs->v[0]));
            memcpy(packs->v[packs->n++], hex, sizeof(hex));
        }
        cairn_index_free(idx);
        free(buf);
    }
    free(nm);
    return packs->n;
}

/* ------------------------------------------------------------ open */

static void test_init_open(void **state)
{
    char dir[128], empty[128], bare[128], cfg[160];
    uint8_t aid[CAIRN_ID_LEN], master[CAIRN_KEY_LEN];
    struct cairn_repo *r, *r2;
    struct cairn_store *s;
    struct stat st;
    off_t i;
    int rc;

    (void)state;
    dir_of(dir, sizeof(dir), "open");
    r = init_at(dir, 64 * 1024);
    memcpy(aid, cairn_repo_config(r)->archive_id, CAIRN_ID_LEN);
    memcpy(master, cairn_repo_keys(r)->master, CAIRN_KEY_LEN);
    assert_int_equal(strlen(cairn_repo_key_name(r)), 64);
    cairn_repo_free(r);

    /* The right passphrase: the same archive, keys and settings. */
    assert_int_equal(open_at(dir, PASS, &r), 0);
    assert_memory_equal(cairn_repo_config(r)->archive_id, aid, CAIRN_ID_LEN);
    assert_memory_equal(cairn_repo_keys(r)->master, master, CAIRN_KEY_LEN);
    assert_int_equal(cairn_repo_config(r)->chunk_min, 4096);
    assert_int_equal(cairn_repo_config(r)->chunk_avg, 16384);
    assert_int_equal(cairn_repo_config(r)->chunk_max, 65536);
    assert_int_equal(cairn_repo_config(r)->pack_size, 64 * 1024);
    assert_non_null(cairn_repo_chunker(r));
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    assert_int_equal(cairn_repo_blob_count(r), 0);
    assert_int_equal(cairn_repo_pack_count(r), 0);
    cairn_repo_free(r);
    cairn_repo_free(NULL);

    /* Wrong passphrases, one a prefix of the right one. */
    assert_int_equal(open_at(dir, "wrong", &r), CAIRN_EAUTH);
    assert_null(r);
    assert_int_equal(cairn_store_dir_open(dir, 0, &s), 0);
    assert_int_equal(cairn_repo_open(s, PASS, strlen(PASS) - 1, &r),
                     CAIRN_EAUTH);
    cairn_store_free(s);

    /* No archive: not a store at all, or a store without a config. */
    dir_of(empty, sizeof(empty), "empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(open_at(empty, PASS, &r), CAIRN_ENOENT);
    dir_of(bare, sizeof(bare), "bare");
    assert_int_equal(cairn_store_dir_open(bare, 1, &s), 0);
    assert_int_equal(cairn_repo_open(s, PASS, strlen(PASS), &r), CAIRN_ENOENT);
    cairn_store_free(s);

    /* Init over an archive: refused, and the caller keeps the store. */
    assert_int_equal(cairn_store_dir_open(dir, 1, &s), CAIRN_EEXIST);
    assert_int_equal(cairn_store_dir_open(dir, 0, &s), 0);
    assert_int_equal(cairn_repo_init(s, PASS, strlen(PASS), NULL, &r),
                     CAIRN_EEXIST);
    cairn_store_free(s);
    assert_int_equal(open_at(dir, PASS, &r), 0);
    assert_memory_equal(cairn_repo_config(r)->archive_id, aid, CAIRN_ID_LEN);
    cairn_repo_free(r);

    /* Bad settings are refused at init. */
    {
        struct cairn_repo_init_opts o;

        memset(&o, 0, sizeof(o));
        o.pack_size = 1000;
        o.kdf.log2_n = 10;
        o.kdf.r = 8;
        o.kdf.p = 1;
        assert_int_equal(cairn_store_dir_open(bare, 1, &s), 0);
        assert_int_equal(cairn_repo_init(s, PASS, strlen(PASS), &o, &r),
                         CAIRN_EINVAL);
        o.pack_size = 0;
        o.zstd_level = 20;
        assert_int_equal(cairn_repo_init(s, PASS, strlen(PASS), &o, &r),
                         CAIRN_EINVAL);
        cairn_store_free(s);
    }

    /* A config with any one byte changed does not open, and says it is
     * damaged (not "wrong passphrase"); the version byte may say
     * EVERSION. */
    snprintf(cfg, sizeof(cfg), "%s/config", dir);
    assert_int_equal(stat(cfg, &st), 0);
    assert_true(st.st_size > 40);
    for (i = 0; i < st.st_size; i++) {
        flip_byte(cfg, i);
        rc = open_at(dir, PASS, &r2);
        if (i == 4)
            assert_int_equal(rc, CAIRN_EVERSION);
        else if (rc != CAIRN_ECORRUPT)
            fail_msg("config byte %ld flipped: %s", (long)i,
                     cairn_errname(rc));
        assert_null(r2);
        flip_byte(cfg, i);
    }
    /* Extended, and truncated. */
    assert_int_equal(truncate(cfg, st.st_size + 1), 0);
    assert_int_equal(open_at(dir, PASS, &r2), CAIRN_ECORRUPT);
    assert_int_equal(truncate(cfg, st.st_size), 0);
    assert_int_equal(open_at(dir, PASS, &r2), 0);
    cairn_repo_free(r2);
    assert_int_equal(truncate(cfg, st.st_size - 1), 0);
    assert_int_equal(open_at(dir, PASS, &r2), CAIRN_ECORRUPT);
    assert_int_equal(truncate(cfg, 0), 0);
    assert_int_equal(open_at(dir, PASS, &r2), CAIRN_ECORRUPT);
}

/* ------------------------------------------------------------ keys */

struct key_seen {
    char name[4][2 * CAIRN_ID_LEN + 1];
    char label[4][256];
    int current[4];
    int n;
};

static int key_cb(void *arg, const char *name,
                  const struct cairn_keyfile_info *info, int current)
{
    struct key_seen *ks = arg;

    if (ks->n >= 4)
        return CAIRN_ERANGE;
    snprintf(ks->name[ks->n], sizeof(ks->name[0]), "%s", name);
    snprintf(ks->label[ks->n], sizeof(ks->label[0]), "%s", info->label);
    ks->current[ks->n] = current;
    ks->n++;
    return 0;
}

static int key_index(const struct key_seen *ks, const char *name)
{
    int i;

    for (i = 0; i < ks->n; i++)
        if (strcmp(ks->name[i], name) == 0)
            return i;
    return -1;
}

static void test_keys(void **state)
{
    struct cairn_kdf_params kdf = {10, 8, 1};
    char dir[128], name1[2 * CAIRN_ID_LEN + 1], name2[2 * CAIRN_ID_LEN + 1];
    struct cairn_repo *r1, *r2;
    struct key_seen ks;
    int i;

    (void)state;
    dir_of(dir, sizeof(dir), "keys");
    r1 = init_at(dir, 64 * 1024);
    snprintf(name1, sizeof(name1), "%s", cairn_repo_key_name(r1));
    assert_int_equal(cairn_repo_key_add(r1, PASS2, strlen(PASS2), &kdf,
                                        "second", name2),
                     0);
    assert_string_not_equal(name1, name2);

    /* The new passphrase opens the same archive with the same keys. */
    assert_int_equal(open_at(dir, PASS2, &r2), 0);
    assert_string_equal(cairn_repo_key_name(r2), name2);
    assert_memory_equal(cairn_repo_config(r2)->archive_id,
                        cairn_repo_config(r1)->archive_id, CAIRN_ID_LEN);
    assert_memory_equal(cairn_repo_keys(r2), cairn_repo_keys(r1),
                        sizeof(struct cairn_keys));

    /* Both listed; current is the one that opened each handle. */
    memset(&ks, 0, sizeof(ks));
    assert_int_equal(cairn_repo_key_list(r1, key_cb, &ks), 0);
    assert_int_equal(ks.n, 2);
    assert_true((i = key_index(&ks, name1)) >= 0);
    assert_int_equal(ks.current[i], 1);
    assert_string_equal(ks.label[i], "first");
    assert_true((i = key_index(&ks, name2)) >= 0);
    assert_int_equal(ks.current[i], 0);
    assert_string_equal(ks.label[i], "second");
    memset(&ks, 0, sizeof(ks));
    assert_int_equal(cairn_repo_key_list(r2, key_cb, &ks), 0);
    assert_int_equal(ks.n, 2);
    assert_int_equal(ks.current[key_index(&ks, name1)], 0);
    assert_int_equal(ks.current[key_index(&ks, name2)], 1);

    /* The key in use cannot go; the other can, and then no longer opens. */
    assert_int_equal(cairn_repo_key_remove(r2, name2), CAIRN_EINVAL);
    assert_int_equal(cairn_repo_key_remove(r1, name1), CAIRN_EINVAL);
    cairn_repo_free(r2);
    assert_int_equal(cairn_repo_key_remove(r1, name2), 0);
    assert_int_equal(cairn_repo_key_remove(r1, name2), CAIRN_ENOENT);
    assert_int_equal(open_at(dir, PASS2, &r2), CAIRN_EAUTH);
    memset(&ks, 0, sizeof(ks));
    assert_int_equal(cairn_repo_key_list(r1, key_cb, &ks), 0);
    assert_int_equal(ks.n, 1);
    assert_string_equal(ks.name[0], name1);
    assert_int_equal(ks.current[0], 1);
    cairn_repo_free(r1);
    assert_int_equal(open_at(dir, PASS, &r1), 0);
    cairn_repo_free(r1);
}

/* ------------------------------------------------------------ writer */

#define NSHARED 120
#define NOWN 60
#define NTHREADS 4
#define NBLOBS (NSHARED + NTHREADS * NOWN)

struct adder {
    pthread_t th;
    struct cairn_repo *r;
    struct cairn_repo_writer *w;
    const struct tblob *v;
    int t;
    int rc;        /* first failure */
    int not_has;   /* added but writer_has said no */
    size_t added;  /* blobs this thread stored */
    uint64_t bytes;
};

static void add_one(struct adder *a, struct cairn_blob_codec *c,
                    const struct tblob *b)
{
    uint64_t added = 0;
    int rc;

    rc = cairn_repo_writer_add(a->w, c, b->type, b->id, b->data, b->len,
                               (const uint8_t(*)[CAIRN_ID_LEN])b->refs,
                               b->nrefs, &added);
    if (rc != 0 && a->rc == 0)
        a->rc = rc;
    if (added > 0) {
        a->added++;
        a->bytes += added;
    }
    if (!cairn_repo_writer_has(a->w, b->id))
        a->not_has++;
}

static void *adder_main(void *arg)
{
    struct adder *a = arg;
    struct cairn_blob_codec *c =
        cairn_blob_codec_new(cairn_repo_keys(a->r), CAIRN_ZSTD_LEVEL_DEFAULT);
    size_t i;

    if (c == NULL) {
        a->rc = CAIRN_ENOMEM;
        return NULL;
    }
    /* Shared blobs from a different starting point in each thread,
     * interleaved with this thread's own. */
    for (i = 0; i < NSHARED; i++) {
        add_one(a, c, &a->v[(i + (size_t)a->t * (NSHARED / NTHREADS)) %
                            NSHARED]);
        if (i % 2 == 0)
            add_one(a, c, &a->v[NSHARED + (size_t)a->t * NOWN + i / 2]);
    }
    cairn_blob_codec_free(c);
    return NULL;
}

/*
 * Run NTHREADS adders of v into w and wait for them; each must succeed
 * (and with check_has, find every blob it added).  Adds what they stored
 * to *added and *bytes.
 */
static void run_adders(struct cairn_repo *r, struct cairn_repo_writer *w,
                       const struct tblob *v, int check_has, size_t *added,
                       uint64_t *bytes)
{
    struct adder ad[NTHREADS];
    int t;

    memset(ad, 0, sizeof(ad));
    for (t = 0; t < NTHREADS; t++) {
        ad[t].r = r;
        ad[t].w = w;
        ad[t].v = v;
        ad[t].t = t;
        assert_int_equal(pthread_create(&ad[t].th, NULL, adder_main, &ad[t]),
                         0);
    }
    for (t = 0; t < NTHREADS; t++) {
        pthread_join(ad[t].th, NULL);
        assert_int_equal(ad[t].rc, 0);
        if (check_has)
            assert_int_equal(ad[t].not_has, 0);
        *added += ad[t].added;
        *bytes += ad[t].bytes;
    }
}

static void test_writer_concurrent(void **state)
{
    struct cairn_blob_codec *c;
    struct cairn_repo_writer *w;
    struct cairn_repo *r;
    struct tblob *v;
    char dir[128];
    size_t i, added = 0, blobs, npacks, ntrees = 0;
    uint64_t nd, nt, raw, stored, bytes = 0, added1;
    uint32_t bad;

    (void)state;
    dir_of(dir, sizeof(dir), "writer");
    r = init_at(dir, 64 * 1024);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    v = make_blobs(r, NBLOBS, 1, 200, 7000);
    for (i = 0; i < NBLOBS; i++)
        ntrees += v[i].type == CAIRN_BLOB_TREE;
    assert_true(ntrees > 10);

    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    run_adders(r, w, v, 1, &added, &bytes);
    /* Each id stored once, however many threads offered it. */
    assert_int_equal(added, NBLOBS);
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    assert_int_equal(cairn_repo_blob_count(r), NBLOBS);
    cairn_repo_index_totals(r, &nd, &nt, &raw, &stored);
    assert_int_equal(nt, ntrees);
    assert_int_equal(nd, NBLOBS - ntrees);
    assert_int_equal(stored, bytes);
    check_blobs(r, v, NBLOBS);
    /* Adding again after the flush stores nothing. */
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);
    assert_int_equal(cairn_repo_writer_add(w, c, v[0].type, v[0].id,
                                           v[0].data, v[0].len, NULL, 0,
                                           &added1),
                     0);
    assert_int_equal(added1, 0);
    /* Bad arguments. */
    assert_int_equal(cairn_repo_writer_add(w, c, 7, v[0].id, v[0].data,
                                           v[0].len, NULL, 0, &added1),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_repo_writer_add(w, c, CAIRN_BLOB_DATA, v[0].id,
                                           v[0].data, 0, NULL, 0, &added1),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    assert_int_equal(cairn_repo_writer_stored_bytes(w) > bytes, 1);
    cairn_repo_writer_free(w);
    cairn_repo_writer_free(NULL);

    /* Packs on disk: named by their hash, trailers verify, every blob
     * once, several packs. */
    npacks = check_packs(r, v, NBLOBS, &blobs);
    assert_int_equal(blobs, NBLOBS);
    assert_true(npacks >= 10);
    assert_int_equal(npacks, cairn_repo_pack_count(r));
    cairn_repo_free(r);

    /* Reopened: the index objects give the same answers. */
    log_reset();
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 0);
    assert_false(log_has("adopted"));
    assert_int_equal(cairn_repo_blob_count(r), NBLOBS);
    assert_int_equal(cairn_repo_pack_count(r), npacks);
    check_blobs(r, v, NBLOBS);
    /* A new writer stores nothing already indexed. */
    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    for (i = 0; i < NBLOBS; i += 7) {
        assert_int_equal(cairn_repo_writer_add(w, c, v[i].type, v[i].id,
                                               v[i].data, v[i].len, NULL, 0,
                                               &added1),
                         0);
        assert_int_equal(added1, 0);
    }
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    cairn_repo_writer_free(w);
    assert_int_equal(count_objs(r, CAIRN_OBJ_PACK), npacks);
    cairn_blob_codec_free(c);
    cairn_repo_free(r);
    free_blobs(v, NBLOBS);
}

/* Blobs on both sides of the writer's direct-piece size (64 KiB): large
 * sealed blobs are queued in their own buffers, small ones copied into the
 * current piece; from several threads, both must interleave correctly in
 * every pack. */
static void test_writer_mixed_sizes(void **state)
{
    struct cairn_repo_writer *w;
    struct cairn_repo *r;
    struct tblob *v;
    char dir[128];
    size_t i, added = 0, blobs, npacks, nbig = 0;
    uint64_t nd, nt, raw, stored, bytes = 0;
    uint32_t bad;

    (void)state;
    dir_of(dir, sizeof(dir), "mixed");
    r = init_at(dir, 1024 * 1024);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    v = make_blobs(r, NBLOBS, 1, 100, 160000);
    for (i = 0; i < NBLOBS; i++)
        nbig += v[i].len >= 70 * 1024;
    assert_true(nbig > NBLOBS / 4);
    assert_true(nbig < NBLOBS * 3 / 4);

    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    run_adders(r, w, v, 0, &added, &bytes);
    assert_int_equal(added, NBLOBS);
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    cairn_repo_writer_free(w);
    cairn_repo_index_totals(r, &nd, &nt, &raw, &stored);
    assert_int_equal(nd + nt, NBLOBS);
    assert_int_equal(stored, bytes);
    check_blobs(r, v, NBLOBS);
    /* Every pack hashes to its name, its trailer lists its blobs. */
    npacks = check_packs(r, v, NBLOBS, &blobs);
    assert_int_equal(blobs, NBLOBS);
    assert_true(npacks >= 8);
    cairn_repo_free(r);

    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 0);
    assert_int_equal(cairn_repo_blob_count(r), NBLOBS);
    check_blobs(r, v, NBLOBS);
    cairn_repo_free(r);
    free_blobs(v, NBLOBS);
}

/*
 * A store whose first pack stalls: its appends wait at a gate (up to
 * 20 s, then the gate opens by itself and the test fails).  Everything
 * else goes to the directory store underneath.
 */
static const struct cairn_store_ops *gate_under;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static void *gate_h;
static int gate_open, gate_timed_out, gate_commits;

static int gate_append(void *ctx, void *h, const void *buf, size_t len)
{
    struct timespec until;
    int rc = 0;

    pthread_mutex_lock(&gate_lock);
    if (gate_h == NULL)
        gate_h = h;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    while (h == gate_h && !gate_open && rc == 0)
        rc = pthread_cond_timedwait(&gate_cond, &gate_lock, &until);
    if (rc != 0) {
        gate_timed_out = 1;
        gate_open = 1;
    }
    pthread_mutex_unlock(&gate_lock);
    return gate_under->append(ctx, h, buf, len);
}

static int gate_commit(void *ctx, void *h, const char *name, int durable)
{
    pthread_mutex_lock(&gate_lock);
    gate_commits++;
    pthread_mutex_unlock(&gate_lock);
    return gate_under->commit(ctx, h, name, durable);
}

/* While the I/O thread of the first pack is held up, blobs go on to
 * packs written by the other: the backup does not wait on one pack. */
static void test_writer_lanes(void **state)
{
    struct cairn_blob_codec *c;
    static struct cairn_store_ops ops;
    struct cairn_repo_writer *w;
    struct cairn_store *st;
    struct cairn_repo *r;
    struct tblob *v;
    char dir[128];
    size_t i, blobs, npacks;
    uint64_t added;
    int commits;

    (void)state;
    dir_of(dir, sizeof(dir), "lanes");
    r = init_at(dir, 1024 * 1024);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    /* 40 blobs of 150-250 KB: 8 MB, several times what may wait queued. */
    v = make_blobs(r, 40, 1, 150000, 100000);
    st = cairn_repo_store(r);
    gate_under = st->ops;
    ops = *st->ops;
    ops.append = gate_append;
    ops.commit = gate_commit;
    st->ops = &ops;
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);

    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    for (i = 0; i < 40; i++)
        assert_int_equal(cairn_repo_writer_add(w, c, v[i].type, v[i].id,
                                               v[i].data, v[i].len, v[i].refs,
                                               v[i].nrefs, &added),
                         0);
    /* Packs of a megabyte are finished while the first one waits. */
    for (i = 0; i < 1000; i++) {
        pthread_mutex_lock(&gate_lock);
        commits = gate_commits;
        pthread_mutex_unlock(&gate_lock);
        if (commits >= 2)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&gate_lock);
    assert_false(gate_timed_out);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    assert_true(commits >= 2);

    assert_int_equal(cairn_repo_writer_flush(w), 0);
    cairn_repo_writer_free(w);
    cairn_blob_codec_free(c);
    st->ops = gate_under;
    check_blobs(r, v, 40);
    npacks = check_packs(r, v, 40, &blobs);
    assert_int_equal(blobs, 40);
    assert_true(npacks >= (size_t)commits);
    cairn_repo_free(r);
    free_blobs(v, 40);
}

/* Wait (up to 30 s) until cond(r) holds. */
static int wait_for_index(struct cairn_repo *r)
{
    int i;

    for (i = 0; i < 3000; i++) {
        if (count_objs(r, CAIRN_OBJ_INDEX) > 0)
            return 1;
        usleep(10000);
    }
    return 0;
}

#define NMANY 400

/* Small packs: well over 64 of them, so the indexer thread writes index
 * objects while blobs are still being added. */
static void test_writer_indexer(void **state)
{
    struct cairn_blob_codec *c;
    struct cairn_repo_writer *w;
    struct cairn_repo *r;
    struct names *packs = malloc(sizeof(*packs));
    struct tblob *v;
    char dir[128];
    size_t i, npacks, blobs, nidx;
    uint64_t added;
    uint32_t bad;

    (void)state;
    assert_non_null(packs);
    dir_of(dir, sizeof(dir), "indexer");
    r = init_at(dir, 4096);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    v = make_blobs(r, NMANY, 5000, 2500, 1000);
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);
    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    for (i = 0; i < NMANY; i++)
        assert_int_equal(cairn_repo_writer_add(
                             w, c, v[i].type, v[i].id, v[i].data, v[i].len,
                             (const uint8_t(*)[CAIRN_ID_LEN])v[i].refs,
                             v[i].nrefs, &added),
                         0);
    /* Before any flush, the indexer has indexed a batch. */
    assert_true(wait_for_index(r));
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    cairn_repo_writer_free(w);
    nidx = count_objs(r, CAIRN_OBJ_INDEX);
    assert_true(nidx >= 2);
    npacks = check_packs(r, v, NMANY, &blobs);
    assert_true(npacks > 2 * 64);
    assert_int_equal(blobs, NMANY);
    /* Every pack named by exactly one index object. */
    assert_int_equal(indexed_packs(r, packs), npacks);
    assert_int_equal(cairn_repo_pack_count(r), npacks);
    check_blobs(r, v, NMANY);
    cairn_repo_free(r);

    log_reset();
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 0);
    assert_false(log_has("adopted"));
    assert_int_equal(cairn_repo_blob_count(r), NMANY);
    assert_int_equal(cairn_repo_pack_count(r), npacks);
    check_blobs(r, v, NMANY);
    cairn_blob_codec_free(c);
    cairn_repo_free(r);
    free_blobs(v, NMANY);
    free(packs);
}

#define NINT 16

/* Is name one of nm? */
static int names_has(const struct names *nm, const char *name)
{
    size_t i;

    for (i = 0; i < nm->n; i++)
        if (strcmp(nm->v[i], name) == 0)
            return 1;
    return 0;
}

/*
 * A writer freed without flush after some packs were made durable (as the
 * indexer's barrier does just before it writes an index object): the next
 * load adopts the packs no index names, the next flush names them in an
 * index object, and the load after that adopts nothing.
 */
static void test_writer_interrupted(void **state)
{
    struct cairn_blob_codec *c;
    struct cairn_repo_writer *w;
    struct cairn_repo *r;
    struct names *packs = malloc(sizeof(*packs));
    struct names *named = malloc(sizeof(*named));
    struct cairn_index *idx;
    struct tblob *v, *extra;
    char dir[128];
    uint8_t *buf;
    size_t i, len, npacks, nidx, norphans = 0, nblobs = 0;
    uint64_t added;
    uint32_t bad, b;
    int k;

    (void)state;
    assert_non_null(packs);
    assert_non_null(named);
    dir_of(dir, sizeof(dir), "interrupted");
    r = init_at(dir, 4096);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    v = make_blobs(r, NINT, 9000, 2500, 1000);
    extra = make_blobs(r, 1, 9999, 100, 1);
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);
    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    for (i = 0; i < NINT; i++)
        assert_int_equal(cairn_repo_writer_add(
                             w, c, v[i].type, v[i].id, v[i].data, v[i].len,
                             (const uint8_t(*)[CAIRN_ID_LEN])v[i].refs,
                             v[i].nrefs, &added),
                         0);
    for (k = 0; k < 3000 && cairn_repo_writer_stored_bytes(w) < 3 * 4096;
         k++)
        usleep(10000);
    assert_true(cairn_repo_writer_stored_bytes(w) >= 3 * 4096);
    assert_int_equal(cairn_store_barrier(cairn_repo_store(r)), 0);
    cairn_repo_writer_free(w);
    cairn_blob_codec_free(c);
    cairn_repo_free(r);

    /* What is on disk now: packs, some perhaps named by an index object
     * the indexer wrote, the others by none. */
    log_reset();
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 0);
    list_names(r, CAIRN_OBJ_PACK, packs);
    npacks = packs->n;
    nidx = count_objs(r, CAIRN_OBJ_INDEX);
    indexed_packs(r, named);
    for (i = 0; i < npacks; i++)
        norphans += !names_has(named, packs->v[i]);
    assert_true(norphans >= 1);
    assert_true(log_has("adopted"));
    assert_int_equal(cairn_repo_pack_count(r), npacks);
    /* Every blob of those packs is found and reads back. */
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);
    for (i = 0; i < npacks; i++) {
        const struct tblob *t;
        uint8_t *out;
        size_t olen;

        assert_int_equal(cairn_store_get(cairn_repo_store(r), CAIRN_OBJ_PACK,
                                         packs->v[i], &buf, &len),
                         0);
        assert_int_equal(cairn_pack_read_index(buf, len,
                                               cairn_repo_keys(r)->mac, &idx),
                         0);
        for (b = 0; b < idx->packs[0].nblobs; b++) {
            t = find_blob(v, NINT, idx->packs[0].blobs[b].id);
            assert_non_null(t);
            assert_int_equal(cairn_repo_read_blob(r, c, t->id, t->type, &out,
                                                  &olen),
                             0);
            assert_int_equal(olen, t->len);
            assert_memory_equal(out, t->data, olen);
            free(out);
            nblobs++;
        }
        cairn_index_free(idx);
        free(buf);
    }
    assert_int_equal(cairn_repo_blob_count(r), nblobs);
    assert_true(nblobs < NINT); /* the open packs were lost */

    /* A new writer's flush names the adopted packs (and its own). */
    assert_int_equal(cairn_repo_writer_new(r, &w), 0);
    assert_int_equal(cairn_repo_writer_add(w, c, CAIRN_BLOB_DATA, extra[0].id,
                                           extra[0].data, extra[0].len, NULL,
                                           0, &added),
                     0);
    assert_true(added > 0);
    assert_int_equal(cairn_repo_writer_flush(w), 0);
    cairn_repo_writer_free(w);
    assert_int_equal(count_objs(r, CAIRN_OBJ_INDEX), nidx + 1);
    /* Every pack on disk named exactly once (indexed_packs checks). */
    assert_int_equal(indexed_packs(r, named), npacks + 1);
    for (i = 0; i < npacks; i++)
        assert_true(names_has(named, packs->v[i]));
    cairn_blob_codec_free(c);
    cairn_repo_free(r);

    /* Nothing left to adopt. */
    log_reset();
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 0);
    assert_false(log_has("adopted"));
    assert_int_equal(cairn_repo_blob_count(r), nblobs + 1);
    assert_int_equal(cairn_repo_pack_count(r), npacks + 1);
    assert_int_equal(cairn_repo_lookup(r, extra[0].id, NULL), 0);
    cairn_repo_free(r);
    free_blobs(v, NINT);
    free_blobs(extra, 1);
    free(packs);
    free(named);
}

/* ------------------------------------------------------------ index */

#define NB 3
#define PER 25

static void test_damaged_index(void **state)
{
    struct cairn_blob_codec *c;
    struct cairn_repo_writer *w;
    struct cairn_repo *r;
    struct names *before = malloc(sizeof(*before));
    struct names *ix = malloc(sizeof(*ix));
    struct cairn_index *idx;
    struct tblob *v[NB];
    char dir[128], victim[2 * CAIRN_ID_LEN + 1], path[512];
    uint8_t *buf;
    size_t i, j, len;
    uint64_t added;
    uint32_t bad, p;
    struct stat st;
    int k, vb = -1;

    (void)state;
    assert_non_null(before);
    assert_non_null(ix);
    dir_of(dir, sizeof(dir), "damaged-index");
    r = init_at(dir, 16 * 1024);
    assert_int_equal(cairn_repo_load_index(r, NULL), 0);
    c = cairn_blob_codec_new(cairn_repo_keys(r), CAIRN_ZSTD_LEVEL_DEFAULT);
    assert_non_null(c);
    /* Three flushes: three index objects, each naming one batch. */
    before->n = 0;
    for (k = 0; k < NB; k++) {
        v[k] = make_blobs(r, PER, 20000 + (uint32_t)k * 100, 1000, 3000);
        assert_int_equal(cairn_repo_writer_new(r, &w), 0);
        for (i = 0; i < PER; i++)
            assert_int_equal(cairn_repo_writer_add(
                                 w, c, v[k][i].type, v[k][i].id, v[k][i].data,
                                 v[k][i].len,
                                 (const uint8_t(*)[CAIRN_ID_LEN])v[k][i].refs,
                                 v[k][i].nrefs, &added),
                             0);
        assert_int_equal(cairn_repo_writer_flush(w), 0);
        cairn_repo_writer_free(w);
    }
    cairn_blob_codec_free(c);
    list_names(r, CAIRN_OBJ_INDEX, ix);
    assert_int_equal(ix->n, NB);
    /* Pick the index object naming batch 1. */
    victim[0] = '\0';
    for (i = 0; i < ix->n && vb < 0; i++) {
        assert_int_equal(cairn_store_get(cairn_repo_store(r), CAIRN_OBJ_INDEX,
                                         ix->v[i], &buf, &len),
                         0);
        assert_int_equal(cairn_index_decode(buf, len, cairn_repo_keys(r)->mac,
                                            &idx),
                         0);
        for (p = 0; p < idx->npacks && vb < 0; p++)
            if (find_blob(v[1], PER, idx->packs[p].blobs[0].id) != NULL) {
                vb = 1;
                snprintf(victim, sizeof(victim), "%s", ix->v[i]);
                before->n = 0;
                for (j = 0; j < idx->npacks; j++)
                    cairn_hex_encode(idx->packs[j].id, CAIRN_ID_LEN,
                                     before->v[before->n++]);
            }
        cairn_index_free(idx);
        free(buf);
    }
    assert_int_equal(vb, 1);
    cairn_repo_free(r);

    /* Truncated: counted bad, the rest loads, and its packs (now named by
     * no readable index) are adopted, so nothing is lost. */
    obj_path(path, sizeof(path), dir, "index", victim);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    log_reset();
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 1);
    assert_true(log_has(victim));
    assert_true(log_has("adopted"));
    for (k = 0; k < NB; k++)
        check_blobs(r, v[k], PER);
    cairn_repo_free(r);

    /* With its packs gone too: the other batches still load whole, the
     * damaged one's blobs are unknown. */
    for (j = 0; j < before->n; j++) {
        obj_path(path, sizeof(path), dir, "data", before->v[j]);
        assert_int_equal(unlink(path), 0);
    }
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 1);
    check_blobs(r, v[0], PER);
    check_blobs(r, v[2], PER);
    for (i = 0; i < PER; i++)
        assert_int_equal(cairn_repo_lookup(r, v[1][i].id, NULL), CAIRN_ENOENT);
    assert_int_equal(cairn_repo_blob_count(r), 2 * PER);
    cairn_repo_free(r);
    /* An index that is garbage from the start is bad too. */
    obj_path(path, sizeof(path), dir, "index", victim);
    assert_int_equal(truncate(path, 0), 0);
    r = reopen_loaded(dir, &bad);
    assert_int_equal(bad, 1);
    assert_int_equal(cairn_repo_blob_count(r), 2 * PER);
    cairn_repo_free(r);
    for (k = 0; k < NB; k++)
        free_blobs(v[k], PER);
    free(before);
    free(ix);
}

/* ------------------------------------------------------------ snapshots */

static void snap_fill(struct cairn_snapshot *s, int64_t t, uint32_t seed)
{
    static char *paths[] = {"/home/ana", "/etc"};
    static char *tags[] = {"daily"};

    memset(s, 0, sizeof(*s));
    s->time_ns = t;
    fill(s->root, sizeof(s->root), seed);
    s->complete = 1;
    s->files = seed;
    s->have_private = 1;
    s->hostname = "host";
    s->username = "ana";
    s->npaths = 2;
    s->paths = paths;
    s->ntags = 1;
    s->tags = tags;
}

static void hex_of(const uint8_t id[CAIRN_ID_LEN], char out[65])
{
    cairn_hex_encode(id, CAIRN_ID_LEN, out);
}

#define NSNAP 5

static void test_snapshots(void **state)
{
    static const int64_t times[NSNAP] = {3000, 1000, 5000, 2000, 4000};
    struct cairn_snapshot s, **list, *got;
    struct cairn_repo *r;
    char dir[128], hex[NSNAP][65], spec[80], path[512], h[65];
    uint8_t ids[NSNAP][CAIRN_ID_LEN];
    uint8_t **seen = calloc(65536, sizeof(*seen));
    size_t *seen_len = calloc(65536, sizeof(*seen_len));
    uint8_t *enc, coll_a[CAIRN_ID_LEN];
    size_t n, i, len, plen;
    uint32_t bad, seed;
    int64_t coll_ta = 0;
    int k, rc;

    (void)state;
    assert_non_null(seen);
    assert_non_null(seen_len);
    dir_of(dir, sizeof(dir), "snapshots");
    r = init_at(dir, 64 * 1024);

    /* Nothing yet. */
    assert_int_equal(cairn_repo_list_snapshots(r, &list, &n, &bad), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bad, 0);
    cairn_snapshot_list_free(list, n);
    cairn_snapshot_list_free(NULL, 0);
    assert_int_equal(cairn_repo_find_snapshot(r, "latest", &got),
                     CAIRN_ENOENT);

    for (k = 0; k < NSNAP; k++) {
        snap_fill(&s, times[k], (uint32_t)k + 1);
        assert_int_equal(cairn_repo_save_snapshot(r, &s), 0);
        memcpy(ids[k], s.id, CAIRN_ID_LEN);
        hex_of(s.id, hex[k]);
    }

    /* Listed by time, decoded whole. */
    assert_int_equal(cairn_repo_list_snapshots(r, &list, &n, &bad), 0);
    assert_int_equal(n, NSNAP);
    assert_int_equal(bad, 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(list[i]->time_ns, 1000 * (int64_t)(i + 1));
        assert_int_equal(list[i]->have_private, 1);
        assert_string_equal(list[i]->hostname, "host");
        assert_int_equal(list[i]->npaths, 2);
        assert_string_equal(list[i]->paths[1], "/etc");
    }
    cairn_snapshot_list_free(list, n);

    /* latest, full ids, unique prefixes. */
    assert_int_equal(cairn_repo_find_snapshot(r, "latest", &got), 0);
    assert_int_equal(got->time_ns, 5000);
    assert_memory_equal(got->id, ids[2], CAIRN_ID_LEN);
    cairn_snapshot_free(got);
    for (k = 0; k < NSNAP; k++) {
        assert_int_equal(cairn_repo_find_snapshot(r, hex[k], &got), 0);
        assert_memory_equal(got->id, ids[k], CAIRN_ID_LEN);
        assert_int_equal(got->time_ns, times[k]);
        cairn_snapshot_free(got);
        /* The shortest prefix of at least 4 digits no other id shares. */
        for (plen = 4; plen < 64; plen++) {
            int shared = 0, m;

            for (m = 0; m < NSNAP; m++)
                shared += m != k && strncmp(hex[m], hex[k], plen) == 0;
            if (!shared)
                break;
        }
        snprintf(spec, sizeof(spec), "%.*s", (int)plen, hex[k]);
        assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), 0);
        assert_memory_equal(got->id, ids[k], CAIRN_ID_LEN);
        cairn_snapshot_free(got);
    }

    /* Bad specs. */
    assert_int_equal(cairn_repo_find_snapshot(r, "xyz1", &got), CAIRN_EINVAL);
    assert_int_equal(cairn_repo_find_snapshot(r, "abc", &got), CAIRN_EINVAL);
    assert_int_equal(cairn_repo_find_snapshot(r, "", &got), CAIRN_EINVAL);
    assert_int_equal(cairn_repo_find_snapshot(r, "Latest", &got),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_repo_find_snapshot(r, "12 4", &got), CAIRN_EINVAL);
    memset(spec, 'a', 65);
    spec[65] = '\0';
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), CAIRN_EINVAL);
    /* Missing: a full id, a prefix no id has. */
    snprintf(spec, sizeof(spec), "%s", hex[0]);
    spec[63] = spec[63] == '0' ? '1' : '0';
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), CAIRN_ENOENT);
    for (seed = 0; seed < 65536; seed++) {
        snprintf(spec, sizeof(spec), "%04x", (unsigned)seed);
        for (k = 0; k < NSNAP && strncmp(hex[k], spec, 4) != 0; k++)
            ;
        if (k == NSNAP)
            break;
    }
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), CAIRN_ENOENT);

    /* Ambiguous: encode snapshots (ids are not predictable: the private
     * part has a random nonce) until two ids share four digits, then
     * store both as cairn_repo_save_snapshot would. */
    for (seed = 100;; seed++) {
        unsigned pre;

        assert_true(seed < 100000);
        snap_fill(&s, 10000 + seed, seed);
        assert_int_equal(cairn_snapshot_encode(&s, cairn_repo_keys(r), &enc,
                                               &len),
                         0);
        pre = (unsigned)s.id[0] << 8 | s.id[1];
        if (seen[pre] != NULL) {
            struct cairn_snapshot *dec;

            hex_of(s.id, h);
            assert_int_equal(cairn_store_put(cairn_repo_store(r),
                                             CAIRN_OBJ_SNAPSHOT, h, enc, len,
                                             1),
                             0);
            free(enc);
            assert_int_equal(cairn_snapshot_decode(seen[pre], seen_len[pre],
                                                   cairn_repo_keys(r), &dec),
                             0);
            memcpy(coll_a, dec->id, CAIRN_ID_LEN);
            coll_ta = dec->time_ns;
            cairn_snapshot_free(dec);
            hex_of(coll_a, h);
            assert_int_equal(cairn_store_put(cairn_repo_store(r),
                                             CAIRN_OBJ_SNAPSHOT, h,
                                             seen[pre], seen_len[pre], 1),
                             0);
            break;
        }
        seen[pre] = enc;
        seen_len[pre] = len;
    }
    for (i = 0; i < 65536; i++)
        free(seen[i]);
    hex_of(s.id, h);
    snprintf(spec, sizeof(spec), "%.4s", h);
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got),
                     CAIRN_EAMBIGUOUS);
    /* A longer prefix tells them apart. */
    for (plen = 5; plen <= 64; plen++) {
        char ha[65];

        hex_of(coll_a, ha);
        if (strncmp(ha, h, plen) != 0)
            break;
    }
    snprintf(spec, sizeof(spec), "%.*s", (int)plen, h);
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), 0);
    assert_memory_equal(got->id, s.id, CAIRN_ID_LEN);
    cairn_snapshot_free(got);
    hex_of(coll_a, h);
    snprintf(spec, sizeof(spec), "%.*s", (int)plen, h);
    assert_int_equal(cairn_repo_find_snapshot(r, spec, &got), 0);
    assert_int_equal(got->time_ns, coll_ta);
    cairn_snapshot_free(got);
    assert_int_equal(cairn_repo_find_snapshot(r, "latest", &got), 0);
    assert_int_equal(got->time_ns, s.time_ns);
    cairn_snapshot_free(got);

    /* A damaged snapshot is left out and counted; finding it by id says
     * it is damaged. */
    snprintf(path, sizeof(path), "%s/snapshots/%s", dir, hex[3]);
    flip_byte(path, 20);
    log_reset();
    assert_int_equal(cairn_repo_list_snapshots(r, &list, &n, &bad), 0);
    assert_int_equal(n, NSNAP + 1);
    assert_int_equal(bad, 1);
    assert_true(log_has(hex[3]));
    for (i = 0; i < n; i++)
        assert_memory_not_equal(list[i]->id, ids[3], CAIRN_ID_LEN);
    for (i = 1; i < n; i++)
        assert_true(list[i - 1]->time_ns <= list[i]->time_ns);
    cairn_snapshot_list_free(list, n);
    rc = cairn_repo_find_snapshot(r, hex[3], &got);
    assert_int_equal(rc, CAIRN_ECORRUPT);
    /* A good snapshot under another snapshot's name is damage too. */
    {
        char path0[512];
        uint8_t *b0;
        size_t l0;
        FILE *f;

        assert_int_equal(cairn_store_get(cairn_repo_store(r),
                                         CAIRN_OBJ_SNAPSHOT, hex[0], &b0,
                                         &l0),
                         0);
        snprintf(path0, sizeof(path0), "%s/snapshots/%s", dir, hex[1]);
        f = fopen(path0, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b0, 1, l0, f), l0);
        fclose(f);
        free(b0);
    }
    assert_int_equal(cairn_repo_list_snapshots(r, &list, &n, &bad), 0);
    assert_int_equal(n, NSNAP);
    assert_int_equal(bad, 2);
    cairn_snapshot_list_free(list, n);
    assert_int_equal(cairn_repo_find_snapshot(r, hex[1], &got),
                     CAIRN_ECORRUPT);
    /* latest still works, over the good ones. */
    assert_int_equal(cairn_repo_find_snapshot(r, "latest", &got), 0);
    assert_int_equal(got->time_ns, s.time_ns);
    cairn_snapshot_free(got);
    cairn_repo_free(r);
    free(seen);
    free(seen_len);
}

/* ------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/cairn-test-repo-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    cairn_log_set(log_fn, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cairn_log_set(NULL, NULL);
    if (getenv("CAIRN_TEST_KEEP") == NULL)
        rm_rf(base);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_open),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_writer_concurrent),
        cmocka_unit_test(test_writer_mixed_sizes),
        cmocka_unit_test(test_writer_lanes),
        cmocka_unit_test(test_writer_indexer),
        cmocka_unit_test(test_writer_interrupted),
        cmocka_unit_test(test_damaged_index),
        cmocka_unit_test(test_snapshots),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
