/*
 * test_catalog.c - the SQLite catalog (server/catalog_sqlite.c): every
 * function, round trips, EEXIST/ENOENT, transactions, single-use recovery
 * codes, session expiry, the append-only audit log and its filters, the
 * schema created from an empty file and kept on reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "cairn/err.h"
#include "catalog.h"

struct fx {
    char dir[64];
    char path[96];
    struct catalog *c;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_catalog.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/catalog.db", f->dir);
    if (catalog_open_sqlite(f->path, &f->c) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    catalog_close(f->c);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void test_open_reopen(void **state)
{
    struct fx *f = *state;
    struct catalog *c2;
    struct cat_org o;
    sqlite3 *db;
    sqlite3_stmt *st;

    assert_int_equal(catalog_schema_version(f->c), 5);
    memset(&o, 0, sizeof(o));
    snprintf(o.name, sizeof(o.name), "Acme");
    o.created = 5;
    assert_int_equal(cat_org_create(f->c, &o), 0);
    catalog_close(f->c);
    f->c = NULL;

    /* Reopen: nothing is migrated again and the data is there. */
    assert_int_equal(catalog_open_sqlite(f->path, &c2), 0);
    assert_int_equal(catalog_schema_version(c2), 5);
    assert_int_equal(cat_org_get(c2, &o), 0);
    assert_string_equal(o.name, "Acme");
    cat_org_clear(&o);
    catalog_close(c2);

    /* A schema newer than this build is refused. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
                                            "schema_version",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(catalog_open_sqlite(f->path, &c2), CAIRN_EVERSION);

    /* Not a database at all. */
    {
        char bad[128];
        FILE *fp;
        snprintf(bad, sizeof(bad), "%s/bad.db", f->dir);
        fp = fopen(bad, "w");
        fputs("this is not an SQLite database, not at all, no no no no no "
              "no no no no no no no no no no no no no",
              fp);
        fclose(fp);
        assert_int_equal(catalog_open_sqlite(bad, &c2), CAIRN_EIO);
    }
    assert_int_equal(catalog_open_sqlite(f->path, &f->c), CAIRN_EVERSION);
    f->c = NULL;
    {
        /* put it back for teardown */
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        sqlite3_exec(db, "UPDATE schema_version SET version = 5", NULL, NULL,
                     NULL);
        sqlite3_close(db);
        assert_int_equal(catalog_open_sqlite(f->path, &f->c), 0);
    }
}

static void test_org(void **state)
{
    struct fx *f = *state;
    struct cat_org o, g;
    uint8_t wrapped[100];
    int i;

    assert_int_equal(cat_org_get(f->c, &g), CAIRN_ENOENT);
    memset(&o, 0, sizeof(o));
    snprintf(o.name, sizeof(o.name), "Université");
    for (i = 0; i < 32; i++)
        o.escrow_public[i] = (uint8_t)(i * 7);
    for (i = 0; i < 100; i++)
        wrapped[i] = (uint8_t)(255 - i);
    wrapped[10] = 0; /* binary, NUL inside */
    o.escrow_wrapped = wrapped;
    o.escrow_wrapped_len = sizeof(wrapped);
    o.created = 1700000000;
    assert_int_equal(cat_org_create(f->c, &o), 0);
    assert_int_equal(cat_org_create(f->c, &o), CAIRN_EEXIST);
    assert_int_equal(cat_org_get(f->c, &g), 0);
    assert_string_equal(g.name, "Université");
    assert_memory_equal(g.escrow_public, o.escrow_public, 32);
    assert_int_equal(g.escrow_wrapped_len, sizeof(wrapped));
    assert_memory_equal(g.escrow_wrapped, wrapped, sizeof(wrapped));
    assert_int_equal(g.created, 1700000000);
    cat_org_clear(&g);
    cat_org_clear(&g);
    cat_org_clear(NULL);
}

static int dept_collect(void *arg, const struct cat_dept *d)
{
    char *names = arg;
    strcat(names, d->name);
    strcat(names, ",");
    return 0;
}

static int stop_at_first(void *arg, const struct cat_dept *d)
{
    (void)d;
    (*(int *)arg)++;
    return 42;
}

static void test_dept(void **state)
{
    struct fx *f = *state;
    struct cat_dept d;
    int64_t id1, id2;
    char names[256] = "";
    int calls = 0;

    assert_int_equal(cat_dept_add(f->c, "Physics", 0, &id1), 0);
    assert_int_equal(cat_dept_add(f->c, "Chemistry", 1800000000, &id2), 0);
    assert_true(id1 != id2);
    assert_int_equal(cat_dept_add(f->c, "Physics", 5, NULL), CAIRN_EEXIST);
    assert_int_equal(cat_dept_get(f->c, "Chemistry", &d), 0);
    assert_int_equal(d.id, id2);
    assert_int_equal(d.wave_start, 1800000000);
    assert_int_equal(cat_dept_get_id(f->c, id1, &d), 0);
    assert_string_equal(d.name, "Physics");
    assert_int_equal(d.wave_start, 0);
    assert_int_equal(cat_dept_get(f->c, "Nope", &d), CAIRN_ENOENT);
    assert_int_equal(cat_dept_get_id(f->c, 999, &d), CAIRN_ENOENT);
    assert_int_equal(cat_dept_set_wave(f->c, "Physics", 123), 0);
    assert_int_equal(cat_dept_get(f->c, "Physics", &d), 0);
    assert_int_equal(d.wave_start, 123);
    assert_int_equal(cat_dept_set_wave(f->c, "Nope", 1), CAIRN_ENOENT);
    assert_int_equal(cat_dept_list(f->c, dept_collect, names), 0);
    assert_string_equal(names, "Chemistry,Physics,");
    assert_int_equal(cat_dept_list(f->c, stop_at_first, &calls), 42);
    assert_int_equal(calls, 1);
}

static int64_t add_user(struct catalog *c, const char *name, int64_t dept)
{
    struct cat_user u;

    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "%s", name);
    snprintf(u.display, sizeof(u.display), "%s display", name);
    u.dept_id = dept;
    u.pw_hash = (char *)"scrypt$15$8$1$c2FsdA$aGFzaA";
    u.created = 1000;
    assert_int_equal(cat_user_add(c, &u), 0);
    assert_true(u.id > 0);
    return u.id;
}

static int user_count(void *arg, const struct cat_user *u)
{
    (*(int *)arg)++;
    assert_non_null(u->pw_hash);
    return 0;
}

static void test_user(void **state)
{
    struct fx *f = *state;
    struct cat_user u, g;
    int64_t dept, id;
    int n = 0;

    assert_int_equal(cat_dept_add(f->c, "IT", 0, &dept), 0);
    id = add_user(f->c, "ana", dept);
    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "ana");
    u.pw_hash = (char *)"x";
    assert_int_equal(cat_user_add(f->c, &u), CAIRN_EEXIST);
    snprintf(u.username, sizeof(u.username), "bob");
    u.dept_id = 777; /* no such department */
    assert_int_equal(cat_user_add(f->c, &u), CAIRN_ENOENT);

    assert_int_equal(cat_user_get(f->c, "ana", &g), 0);
    assert_int_equal(g.id, id);
    assert_string_equal(g.display, "ana display");
    assert_int_equal(g.dept_id, dept);
    assert_int_equal(g.admin, 0);
    assert_string_equal(g.pw_hash, "scrypt$15$8$1$c2FsdA$aGFzaA");
    assert_string_equal(g.totp_secret, "");
    assert_int_equal(g.created, 1000);

    /* Every mutable field round-trips. */
    free(g.pw_hash);
    g.pw_hash = strdup("new hash");
    g.admin = 1;
    g.disabled = 1;
    g.failures = 3;
    g.last_failure = 44;
    g.locked_until = 55;
    g.totp_last_step = 66;
    snprintf(g.totp_secret, sizeof(g.totp_secret), "JBSWY3DPEHPK3PXP");
    snprintf(g.display, sizeof(g.display), "Ana B.");
    g.dept_id = 0;
    snprintf(g.username, sizeof(g.username), "renamed"); /* not written */
    g.created = 9;                                        /* not written */
    assert_int_equal(cat_user_update(f->c, &g), 0);
    cat_user_clear(&g);
    assert_null(g.pw_hash);
    assert_int_equal(cat_user_get_id(f->c, id, &g), 0);
    assert_string_equal(g.username, "ana");
    assert_int_equal(g.created, 1000);
    assert_string_equal(g.pw_hash, "new hash");
    assert_int_equal(g.admin, 1);
    assert_int_equal(g.disabled, 1);
    assert_int_equal(g.failures, 3);
    assert_int_equal(g.last_failure, 44);
    assert_int_equal(g.locked_until, 55);
    assert_int_equal(g.totp_last_step, 66);
    assert_string_equal(g.totp_secret, "JBSWY3DPEHPK3PXP");
    assert_string_equal(g.display, "Ana B.");
    assert_int_equal(g.dept_id, 0);
    g.id = 12345;
    assert_int_equal(cat_user_update(f->c, &g), CAIRN_ENOENT);
    cat_user_clear(&g);

    assert_int_equal(cat_user_get(f->c, "nobody", &g), CAIRN_ENOENT);
    assert_null(g.pw_hash);
    assert_int_equal(cat_user_get_id(f->c, 999, &g), CAIRN_ENOENT);
    add_user(f->c, "carl", dept);
    assert_int_equal(cat_user_list(f->c, user_count, &n), 0);
    assert_int_equal(n, 2);
    cat_user_clear(NULL);
}

static void test_recovery(void **state)
{
    struct fx *f = *state;
    char h[3][65];
    int64_t id;
    int n;

    id = add_user(f->c, "ana", 0);
    memset(h, 0, sizeof(h));
    memset(h[0], 'a', 64);
    memset(h[1], 'b', 64);
    memset(h[2], 'c', 64);
    assert_int_equal(cat_recovery_left(f->c, id, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cat_recovery_set(f->c, id, (const char(*)[65])h, 3), 0);
    assert_int_equal(cat_recovery_left(f->c, id, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(cat_recovery_use(f->c, id, h[1]), 0);
    assert_int_equal(cat_recovery_use(f->c, id, h[1]), CAIRN_ENOENT);
    assert_int_equal(cat_recovery_use(f->c, id + 1, h[0]), CAIRN_ENOENT);
    assert_int_equal(cat_recovery_use(f->c, id, "zz"), CAIRN_ENOENT);
    assert_int_equal(cat_recovery_left(f->c, id, &n), 0);
    assert_int_equal(n, 2);
    /* set replaces them all */
    assert_int_equal(cat_recovery_set(f->c, id, (const char(*)[65])h + 2, 1),
                     0);
    assert_int_equal(cat_recovery_left(f->c, id, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cat_recovery_use(f->c, id, h[0]), CAIRN_ENOENT);
    assert_int_equal(cat_recovery_use(f->c, id, h[2]), 0);
    assert_int_equal(cat_recovery_left(f->c, id, &n), 0);
    assert_int_equal(n, 0);
}

static void mk_session(struct cat_session *s, char c, int64_t user,
                       int64_t created, int64_t seen)
{
    memset(s, 0, sizeof(*s));
    memset(s->hash, c, 64);
    s->user_id = user;
    s->cookie = 1;
    snprintf(s->csrf, sizeof(s->csrf), "csrf-%c", c);
    snprintf(s->addr, sizeof(s->addr), "192.0.2.%d", c);
    s->created = created;
    s->last_seen = seen;
}

static void test_session(void **state)
{
    struct fx *f = *state;
    struct cat_session a, b, g;
    int64_t u1, u2;

    u1 = add_user(f->c, "ana", 0);
    u2 = add_user(f->c, "bob", 0);
    mk_session(&a, 'a', u1, 1000, 1000);
    assert_int_equal(cat_session_add(f->c, &a), 0);
    assert_int_equal(cat_session_add(f->c, &a), CAIRN_EEXIST);
    mk_session(&b, 'b', 999, 1000, 1000);
    assert_int_equal(cat_session_add(f->c, &b), CAIRN_ENOENT);
    assert_int_equal(cat_session_get(f->c, a.hash, &g), 0);
    assert_memory_equal(&g, &a, sizeof(g));
    assert_int_equal(g.full, 0);
    assert_int_equal(cat_session_set_full(f->c, a.hash), 0);
    assert_int_equal(cat_session_touch(f->c, a.hash, 1500), 0);
    assert_int_equal(cat_session_get(f->c, a.hash, &g), 0);
    assert_int_equal(g.full, 1);
    assert_int_equal(g.last_seen, 1500);
    assert_int_equal(cat_session_touch(f->c, "nope", 1), CAIRN_ENOENT);
    assert_int_equal(cat_session_set_full(f->c, "nope"), CAIRN_ENOENT);

    /* Expiry: idle before 1400 or created before 900 go. */
    mk_session(&b, 'b', u2, 1000, 1300); /* idle */
    assert_int_equal(cat_session_add(f->c, &b), 0);
    mk_session(&b, 'c', u2, 800, 2000); /* too old */
    assert_int_equal(cat_session_add(f->c, &b), 0);
    mk_session(&b, 'd', u2, 1000, 1450); /* kept */
    assert_int_equal(cat_session_add(f->c, &b), 0);
    assert_int_equal(cat_session_expire(f->c, 1400, 900), 0);
    memset(b.hash, 'b', 64);
    assert_int_equal(cat_session_get(f->c, b.hash, &g), CAIRN_ENOENT);
    memset(b.hash, 'c', 64);
    assert_int_equal(cat_session_get(f->c, b.hash, &g), CAIRN_ENOENT);
    memset(b.hash, 'd', 64);
    assert_int_equal(cat_session_get(f->c, b.hash, &g), 0);
    assert_int_equal(cat_session_get(f->c, a.hash, &g), 0);

    /* Logout, and all of a user's sessions. */
    assert_int_equal(cat_session_delete(f->c, a.hash), 0);
    assert_int_equal(cat_session_delete(f->c, a.hash), CAIRN_ENOENT);
    assert_int_equal(cat_session_delete_user(f->c, u2), 0);
    assert_int_equal(cat_session_get(f->c, b.hash, &g), CAIRN_ENOENT);
}

static void test_addr(void **state)
{
    struct fx *f = *state;
    int n;
    int64_t last;

    assert_int_equal(cat_addr_get(f->c, "192.0.2.1", &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(last, 0);
    assert_int_equal(cat_addr_fail(f->c, "192.0.2.1", 10), 0);
    assert_int_equal(cat_addr_fail(f->c, "192.0.2.1", 20), 0);
    assert_int_equal(cat_addr_fail(f->c, "2001:db8::1", 30), 0);
    assert_int_equal(cat_addr_get(f->c, "192.0.2.1", &n, &last), 0);
    assert_int_equal(n, 2);
    assert_int_equal(last, 20);
    assert_int_equal(cat_addr_reset(f->c, "192.0.2.1"), 0);
    assert_int_equal(cat_addr_get(f->c, "192.0.2.1", &n, &last), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cat_addr_get(f->c, "2001:db8::1", &n, &last), 0);
    assert_int_equal(n, 1);
}

static void mk_device(struct cat_device *d, const char *id, int64_t dept,
                      int64_t owner, const char *cat, int64_t at)
{
    static uint8_t we[80], wo[40];
    size_t i;

    memset(d, 0, sizeof(*d));
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->name, sizeof(d->name), "host-%.8s", id);
    snprintf(d->category, sizeof(d->category), "%s", cat);
    d->dept_id = dept;
    d->owner_id = owner;
    memset(d->token_hash, 'f', 64);
    for (i = 0; i < 32; i++)
        d->archive_id[i] = (uint8_t)i;
    for (i = 0; i < sizeof(we); i++)
        we[i] = (uint8_t)(i ^ 0x5a);
    for (i = 0; i < sizeof(wo); i++)
        wo[i] = (uint8_t)(i ^ 0xa5);
    d->wrap_escrow = we;
    d->wrap_escrow_len = sizeof(we);
    if (owner) {
        d->wrap_owner = wo;
        d->wrap_owner_len = sizeof(wo);
    }
    snprintf(d->state, sizeof(d->state), "active");
    d->enrolled_at = at;
    d->enrolled_by = owner;
}

struct dev_seen {
    int n;
    char ids[8][33];
};

static int dev_collect(void *arg, const struct cat_device *d)
{
    struct dev_seen *s = arg;
    snprintf(s->ids[s->n++], 33, "%s", d->id);
    return 0;
}

static void test_device(void **state)
{
    struct fx *f = *state;
    struct cat_device d, g;
    struct cat_device_filter flt;
    struct dev_seen seen;
    int64_t it, ph, ana;
    const char *id1 = "00112233445566778899aabbccddeeff";
    const char *id2 = "ffeeddccbbaa99887766554433221100";
    const char *id3 = "0123456789abcdef0123456789abcdef";

    assert_int_equal(cat_dept_add(f->c, "IT", 0, &it), 0);
    assert_int_equal(cat_dept_add(f->c, "Physics", 0, &ph), 0);
    ana = add_user(f->c, "ana", it);
    mk_device(&d, id1, it, ana, "personal", 100);
    assert_int_equal(cat_device_add(f->c, &d), 0);
    assert_int_equal(cat_device_add(f->c, &d), CAIRN_EEXIST);
    mk_device(&d, id2, ph, 0, "shared", 200);
    assert_int_equal(cat_device_add(f->c, &d), 0);
    mk_device(&d, id3, 999, 0, "shared", 300);
    assert_int_equal(cat_device_add(f->c, &d), CAIRN_ENOENT);

    assert_int_equal(cat_device_get(f->c, id1, &g), 0);
    mk_device(&d, id1, it, ana, "personal", 100);
    assert_string_equal(g.name, d.name);
    assert_string_equal(g.category, "personal");
    assert_int_equal(g.dept_id, it);
    assert_int_equal(g.owner_id, ana);
    assert_string_equal(g.token_hash, d.token_hash);
    assert_memory_equal(g.archive_id, d.archive_id, 32);
    assert_int_equal(g.wrap_escrow_len, d.wrap_escrow_len);
    assert_memory_equal(g.wrap_escrow, d.wrap_escrow, d.wrap_escrow_len);
    assert_int_equal(g.wrap_owner_len, d.wrap_owner_len);
    assert_memory_equal(g.wrap_owner, d.wrap_owner, d.wrap_owner_len);
    assert_string_equal(g.state, "active");
    assert_int_equal(g.enrolled_at, 100);

    /* Status and migration fields round-trip. */
    g.last_activity = 1;
    g.last_backup = 2;
    g.first_backup = 3;
    g.files_selected = 4;
    g.bytes_selected = (int64_t)5 << 40;
    g.files_todo = 6;
    g.bytes_todo = 7;
    g.bytes_stored = 8;
    g.errors = 9;
    g.legacy_cancelled_at = 10;
    g.legacy_cancelled_by = ana;
    snprintf(g.phase, sizeof(g.phase), "uploading");
    snprintf(g.state, sizeof(g.state), "replaced");
    snprintf(g.replaced_by, sizeof(g.replaced_by), "%s", id2);
    free(g.wrap_owner);
    g.wrap_owner = NULL;
    g.wrap_owner_len = 0;
    assert_int_equal(cat_device_update(f->c, &g), 0);
    cat_device_clear(&g);
    assert_int_equal(cat_device_get(f->c, id1, &g), 0);
    assert_int_equal(g.last_activity, 1);
    assert_int_equal(g.last_backup, 2);
    assert_int_equal(g.first_backup, 3);
    assert_int_equal(g.files_selected, 4);
    assert_int_equal(g.bytes_selected, (int64_t)5 << 40);
    assert_int_equal(g.files_todo, 6);
    assert_int_equal(g.bytes_todo, 7);
    assert_int_equal(g.bytes_stored, 8);
    assert_int_equal(g.errors, 9);
    assert_int_equal(g.legacy_cancelled_at, 10);
    assert_int_equal(g.legacy_cancelled_by, ana);
    assert_string_equal(g.phase, "uploading");
    assert_string_equal(g.state, "replaced");
    assert_string_equal(g.replaced_by, id2);
    assert_null(g.wrap_owner);
    assert_int_equal(g.wrap_owner_len, 0);
    cat_device_clear(&g);
    cat_device_clear(NULL);
    mk_device(&d, id3, it, 0, "shared", 1);
    assert_int_equal(cat_device_update(f->c, &d), CAIRN_ENOENT);
    assert_int_equal(cat_device_get(f->c, id3, &g), CAIRN_ENOENT);

    /* Filters. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_device_list(f->c, NULL, dev_collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], id1); /* enrolment order */
    memset(&flt, 0, sizeof(flt));
    flt.active_only = 1;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_device_list(f->c, &flt, dev_collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], id2);
    memset(&flt, 0, sizeof(flt));
    flt.dept_id = it;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_device_list(f->c, &flt, dev_collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], id1);
    memset(&flt, 0, sizeof(flt));
    flt.category = "shared";
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_device_list(f->c, &flt, dev_collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], id2);
    memset(&flt, 0, sizeof(flt));
    flt.owner_id = ana;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_device_list(f->c, &flt, dev_collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], id1);
}

struct snap_seen {
    int n;
    int64_t times[4];
};

static int snap_collect(void *arg, const struct cat_snapshot *s)
{
    struct snap_seen *ss = arg;
    ss->times[ss->n++] = s->time;
    assert_int_equal(s->files, s->time * 10);
    return 0;
}

static void test_snapshot(void **state)
{
    struct fx *f = *state;
    struct cat_device d;
    struct cat_snapshot s;
    struct snap_seen seen;
    const char *id = "00112233445566778899aabbccddeeff";

    mk_device(&d, id, 0, 0, "shared", 1);
    assert_int_equal(cat_device_add(f->c, &d), 0);
    memset(&s, 0, sizeof(s));
    snprintf(s.device_id, sizeof(s.device_id), "%s", id);
    memset(s.id, 'b', 64);
    s.time = 20;
    s.files = 200;
    s.complete = 1;
    assert_int_equal(cat_snapshot_add(f->c, &s), 0);
    assert_int_equal(cat_snapshot_add(f->c, &s), CAIRN_EEXIST);
    memset(s.id, 'a', 64);
    s.time = 10;
    s.files = 100;
    assert_int_equal(cat_snapshot_add(f->c, &s), 0);
    snprintf(s.device_id, sizeof(s.device_id), "ffffffffffffffffffffffffffffffff");
    assert_int_equal(cat_snapshot_add(f->c, &s), CAIRN_ENOENT);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(cat_snapshot_list(f->c, id, snap_collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.times[0], 10);
    assert_int_equal(seen.times[1], 20);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(
        cat_snapshot_list(f->c, "ffffffffffffffffffffffffffffffff",
                          snap_collect, &seen),
        0);
    assert_int_equal(seen.n, 0);
}

struct audit_seen {
    int n;
    int64_t ids[16];
    char actions[16][64];
};

static int audit_collect(void *arg, const struct cat_audit *a)
{
    struct audit_seen *s = arg;
    s->ids[s->n] = a->id;
    snprintf(s->actions[s->n], 64, "%s", a->action);
    s->n++;
    return 0;
}

static void add_audit(struct catalog *c, int64_t t, int64_t user,
                      const char *action, const char *dev)
{
    struct cat_audit a;

    memset(&a, 0, sizeof(a));
    a.time = t;
    a.user_id = user;
    snprintf(a.action, sizeof(a.action), "%s", action);
    snprintf(a.device_id, sizeof(a.device_id), "%s", dev ? dev : "");
    snprintf(a.addr, sizeof(a.addr), "192.0.2.1");
    snprintf(a.target, sizeof(a.target), "t%lld", (long long)t);
    a.detail = (char *)"{\"k\":1}";
    assert_int_equal(cat_audit_add(c, &a), 0);
}

static void test_audit(void **state)
{
    struct fx *f = *state;
    struct cat_audit_filter flt;
    struct audit_seen s;
    sqlite3 *db;
    char *err = NULL;

    add_audit(f->c, 10, 1, "login", NULL);
    add_audit(f->c, 20, 2, "user.add", NULL);
    add_audit(f->c, 30, 1, "restore", "00112233445566778899aabbccddeeff");
    add_audit(f->c, 40, 1, "login", NULL);

    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, NULL, audit_collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_true(s.ids[0] < s.ids[1] && s.ids[1] < s.ids[2]);
    memset(&flt, 0, sizeof(flt));
    flt.since = 20;
    flt.until = 30;
    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, &flt, audit_collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.actions[0], "user.add");
    assert_string_equal(s.actions[1], "restore");
    memset(&flt, 0, sizeof(flt));
    flt.user_id = 1;
    flt.action = "login";
    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, &flt, audit_collect, &s), 0);
    assert_int_equal(s.n, 2);
    memset(&flt, 0, sizeof(flt));
    flt.device_id = "00112233445566778899aabbccddeeff";
    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, &flt, audit_collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.actions[0], "restore");
    memset(&flt, 0, sizeof(flt));
    flt.limit = 3;
    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, &flt, audit_collect, &s), 0);
    assert_int_equal(s.n, 3);

    /* Append only, even for someone with the database file. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE audit SET action = 'x'", NULL, NULL, &err),
        SQLITE_OK);
    sqlite3_free(err);
    err = NULL;
    assert_int_not_equal(sqlite3_exec(db, "DELETE FROM audit", NULL, NULL, &err),
                         SQLITE_OK);
    sqlite3_free(err);
    sqlite3_close(db);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cat_audit_list(f->c, NULL, audit_collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.actions[0], "login");
}

static void test_transactions(void **state)
{
    struct fx *f = *state;
    struct cat_dept d;

    assert_int_equal(catalog_begin(f->c), 0);
    assert_int_equal(catalog_begin(f->c), CAIRN_EINVAL); /* not nested */
    assert_int_equal(cat_dept_add(f->c, "Gone", 0, NULL), 0);
    assert_int_equal(cat_dept_get(f->c, "Gone", &d), 0);
    catalog_rollback(f->c);
    assert_int_equal(cat_dept_get(f->c, "Gone", &d), CAIRN_ENOENT);

    assert_int_equal(catalog_begin(f->c), 0);
    assert_int_equal(cat_dept_add(f->c, "Kept", 0, NULL), 0);
    /* a failing call inside does not end the transaction */
    assert_int_equal(cat_dept_add(f->c, "Kept", 0, NULL), CAIRN_EEXIST);
    assert_int_equal(cat_dept_add(f->c, "Also", 0, NULL), 0);
    assert_int_equal(catalog_commit(f->c), 0);
    assert_int_equal(cat_dept_get(f->c, "Kept", &d), 0);
    assert_int_equal(cat_dept_get(f->c, "Also", &d), 0);
    assert_int_equal(catalog_commit(f->c), CAIRN_EINVAL);
    catalog_rollback(f->c); /* nothing to roll back: no-op */

    /* Survives a reopen. */
    catalog_close(f->c);
    assert_int_equal(catalog_open_sqlite(f->path, &f->c), 0);
    assert_int_equal(cat_dept_get(f->c, "Kept", &d), 0);
    assert_int_equal(cat_dept_get(f->c, "Gone", &d), CAIRN_ENOENT);
}

/* A callback may call the catalog (rows are copied out first). */
static int reentrant(void *arg, const struct cat_dept *d)
{
    struct catalog *c = arg;
    struct cat_dept g;

    assert_int_equal(cat_dept_get(c, d->name, &g), 0);
    assert_int_equal(g.id, d->id);
    return cat_dept_set_wave(c, d->name, 7);
}

static void test_reentrant(void **state)
{
    struct fx *f = *state;
    struct cat_dept d;

    assert_int_equal(cat_dept_add(f->c, "A", 0, NULL), 0);
    assert_int_equal(cat_dept_add(f->c, "B", 0, NULL), 0);
    assert_int_equal(cat_dept_list(f->c, reentrant, f->c), 0);
    assert_int_equal(cat_dept_get(f->c, "B", &d), 0);
    assert_int_equal(d.wave_start, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_org, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
