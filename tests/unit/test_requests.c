/*
 * test_requests.c - restore requests in the catalog
 * (server/catalog_requests.c): add and read back every field, foreign
 * keys, filters (state, requester, device, department, limit), a
 * decision taken once only (second decision and unknown ids refused, the
 * first one kept), invalid decisions, callbacks stopping a list, and the
 * table's CHECK on states.
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
    int64_t dept_a, dept_b;
    int64_t ana, bob, root;
    char dev_a[33], dev_b[33];
};

static void add_device(struct fx *f, const char *id, int64_t dept)
{
    struct cat_device d;

    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    snprintf(d.name, sizeof(d.name), "pc-%.8s", id);
    snprintf(d.category, sizeof(d.category), "shared");
    snprintf(d.state, sizeof(d.state), "active");
    d.dept_id = dept;
    assert_int_equal(cat_device_add(f->c, &d), 0);
}

static int64_t add_user(struct fx *f, const char *name, int64_t dept)
{
    struct cat_user u;

    memset(&u, 0, sizeof(u));
    snprintf(u.username, sizeof(u.username), "%s", name);
    u.dept_id = dept;
    u.pw_hash = "x";
    u.created = 1;
    assert_int_equal(cat_user_add(f->c, &u), 0);
    return u.id;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_requests.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/catalog.db", f->dir);
    if (catalog_open_sqlite(f->path, &f->c) != 0)
        return -1;
    if (cat_dept_add(f->c, "Physics", 0, &f->dept_a) != 0 ||
        cat_dept_add(f->c, "Library", 0, &f->dept_b) != 0)
        return -1;
    f->ana = add_user(f, "ana", f->dept_a);
    f->bob = add_user(f, "bob", f->dept_b);
    f->root = add_user(f, "root", f->dept_b);
    snprintf(f->dev_a, sizeof(f->dev_a), "%032x", 0xa);
    snprintf(f->dev_b, sizeof(f->dev_b), "%032x", 0xb);
    add_device(f, f->dev_a, f->dept_a);
    add_device(f, f->dev_b, f->dept_b);
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

/* File a request; its id. */
static int64_t file(struct fx *f, int64_t who, int64_t dept, const char *dev,
                    const char *paths)
{
    struct cat_request q;

    memset(&q, 0, sizeof(q));
    q.created = 1000 + who;
    q.requester_id = who;
    q.dept_id = dept;
    snprintf(q.device_id, sizeof(q.device_id), "%s", dev);
    q.paths = (char *)paths;
    snprintf(q.version, sizeof(q.version), "abcd1234");
    snprintf(q.destination, sizeof(q.destination), "my desktop");
    snprintf(q.reason, sizeof(q.reason), "deleted by mistake\nsorry");
    /* Decision fields given by the caller are ignored. */
    snprintf(q.state, sizeof(q.state), "fulfilled");
    q.decided_by = 9;
    q.push_id = 9;
    assert_int_equal(cat_request_add(f->c, &q), 0);
    assert_true(q.id > 0);
    assert_string_equal(q.state, "open");
    return q.id;
}

static void test_add_get(void **state)
{
    struct fx *f = *state;
    struct cat_request q;
    int64_t id;

    id = file(f, f->ana, f->dept_a, f->dev_a, "[\"/home/lab/data\"]");
    assert_int_equal(cat_request_get(f->c, id, &q), 0);
    assert_int_equal(q.id, id);
    assert_int_equal(q.created, 1000 + f->ana);
    assert_int_equal(q.requester_id, f->ana);
    assert_int_equal(q.dept_id, f->dept_a);
    assert_string_equal(q.device_id, f->dev_a);
    assert_string_equal(q.paths, "[\"/home/lab/data\"]");
    assert_string_equal(q.version, "abcd1234");
    assert_int_equal(q.as_of, 0);
    assert_string_equal(q.destination, "my desktop");
    assert_string_equal(q.reason, "deleted by mistake\nsorry");
    assert_string_equal(q.state, "open");
    assert_int_equal(q.decided_by, 0);
    assert_int_equal(q.decided_at, 0);
    assert_string_equal(q.how, "");
    assert_string_equal(q.outcome, "");
    assert_int_equal(q.push_id, 0);
    cat_request_clear(&q);
    assert_null(q.paths);
    cat_request_clear(&q); /* twice is fine */
    cat_request_clear(NULL);

    /* Unknown ids; an error leaves nothing to free. */
    assert_int_equal(cat_request_get(f->c, id + 100, &q), CAIRN_ENOENT);
    assert_null(q.paths);
    assert_int_equal(cat_request_get(f->c, 0, &q), CAIRN_ENOENT);
}

static void test_add_refused(void **state)
{
    struct fx *f = *state;
    struct cat_request q;

    memset(&q, 0, sizeof(q));
    q.requester_id = f->ana;
    snprintf(q.device_id, sizeof(q.device_id), "%032x", 0xdead);
    q.paths = "[\"/x\"]";
    /* No such device; no such user: foreign keys. */
    assert_int_equal(cat_request_add(f->c, &q), CAIRN_ENOENT);
    snprintf(q.device_id, sizeof(q.device_id), "%s", f->dev_a);
    q.requester_id = 4242;
    assert_int_equal(cat_request_add(f->c, &q), CAIRN_ENOENT);
    /* No paths. */
    q.requester_id = f->ana;
    q.paths = NULL;
    assert_int_equal(cat_request_add(f->c, &q), CAIRN_EINVAL);
}

static void test_decide_once(void **state)
{
    struct fx *f = *state;
    struct cat_request q;
    int64_t a, b;

    a = file(f, f->ana, f->dept_a, f->dev_a, "[\"/a\"]");
    b = file(f, f->ana, f->dept_a, f->dev_a, "[\"/b\"]");

    assert_int_equal(cat_request_decide(f->c, a, "declined", f->root, 2000,
                                        "", "not backed up there", 0),
                     0);
    /* Decided once: a second decision, of either kind, is refused and the
     * first one stays. */
    assert_int_equal(cat_request_decide(f->c, a, "fulfilled", f->bob, 3000,
                                        "download", "here", 0),
                     CAIRN_EEXIST);
    assert_int_equal(cat_request_decide(f->c, a, "declined", f->bob, 3000,
                                        "", "again", 0),
                     CAIRN_EEXIST);
    assert_int_equal(cat_request_get(f->c, a, &q), 0);
    assert_string_equal(q.state, "declined");
    assert_int_equal(q.decided_by, f->root);
    assert_int_equal(q.decided_at, 2000);
    assert_string_equal(q.how, "");
    assert_string_equal(q.outcome, "not backed up there");
    cat_request_clear(&q);

    assert_int_equal(cat_request_decide(f->c, b, "fulfilled", f->root, 2500,
                                        "push", "pushed to lab-pc-2", 17),
                     0);
    assert_int_equal(cat_request_decide(f->c, b, "fulfilled", f->root, 2600,
                                        "push", "again", 18),
                     CAIRN_EEXIST);
    assert_int_equal(cat_request_get(f->c, b, &q), 0);
    assert_string_equal(q.state, "fulfilled");
    assert_string_equal(q.how, "push");
    assert_string_equal(q.outcome, "pushed to lab-pc-2");
    assert_int_equal(q.push_id, 17);
    assert_int_equal(q.decided_at, 2500);
    cat_request_clear(&q);

    /* No such request. */
    assert_int_equal(cat_request_decide(f->c, b + 50, "declined", f->root, 1,
                                        "", "x", 0),
                     CAIRN_ENOENT);
}

static void test_decide_invalid(void **state)
{
    struct fx *f = *state;
    struct cat_request q;
    int64_t a;

    a = file(f, f->bob, f->dept_b, f->dev_b, "[\"/c\"]");
    assert_int_equal(cat_request_decide(f->c, a, "open", f->root, 1, "",
                                        "x", 0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "maybe", f->root, 1, "",
                                        "x", 0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, NULL, f->root, 1, "", "x",
                                        0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "fulfilled", f->root, 1,
                                        "email", "x", 0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "fulfilled", f->root, 1,
                                        NULL, "x", 0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "declined", f->root, 1,
                                        "push", "x", 0),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "declined", f->root, 1, "",
                                        "x", 5),
                     CAIRN_EINVAL);
    assert_int_equal(cat_request_decide(f->c, a, "declined", f->root, 1, "",
                                        NULL, 0),
                     CAIRN_EINVAL);
    /* None of that decided it. */
    assert_int_equal(cat_request_get(f->c, a, &q), 0);
    assert_string_equal(q.state, "open");
    cat_request_clear(&q);
}

struct collect {
    int64_t ids[32];
    int n, stop_after;
};

static int collect_one(void *arg, const struct cat_request *q)
{
    struct collect *c = arg;

    assert_non_null(q->paths);
    if (c->n < 32)
        c->ids[c->n++] = q->id;
    if (c->stop_after > 0 && c->n == c->stop_after)
        return 42;
    return 0;
}

static void test_list_filters(void **state)
{
    struct fx *f = *state;
    struct cat_request_filter flt;
    struct collect c;
    int64_t r1, r2, r3, r4;

    r1 = file(f, f->ana, f->dept_a, f->dev_a, "[\"/1\"]");
    r2 = file(f, f->bob, f->dept_b, f->dev_b, "[\"/2\"]");
    r3 = file(f, f->ana, f->dept_a, f->dev_a, "[\"/3\"]");
    r4 = file(f, f->bob, f->dept_b, f->dev_b, "[\"/4\"]");
    assert_int_equal(cat_request_decide(f->c, r3, "declined", f->root, 5, "",
                                        "no", 0),
                     0);
    assert_int_equal(cat_request_decide(f->c, r4, "fulfilled", f->root, 5,
                                        "download", "", 0),
                     0);

    /* All, oldest first. */
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, NULL, collect_one, &c), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.ids[0], r1);
    assert_int_equal(c.ids[1], r2);
    assert_int_equal(c.ids[2], r3);
    assert_int_equal(c.ids[3], r4);

    /* By state. */
    memset(&flt, 0, sizeof(flt));
    flt.state = "open";
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], r1);
    assert_int_equal(c.ids[1], r2);
    flt.state = "declined";
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], r3);

    /* By requester. */
    memset(&flt, 0, sizeof(flt));
    flt.requester_id = f->ana;
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], r1);
    assert_int_equal(c.ids[1], r3);
    flt.requester_id = f->root; /* asked for nothing */
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 0);

    /* By device, by department, combined. */
    memset(&flt, 0, sizeof(flt));
    flt.device_id = f->dev_b;
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], r2);
    assert_int_equal(c.ids[1], r4);
    memset(&flt, 0, sizeof(flt));
    flt.dept_id = f->dept_a;
    flt.state = "open";
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.ids[0], r1);

    /* A limit. */
    memset(&flt, 0, sizeof(flt));
    flt.limit = 3;
    memset(&c, 0, sizeof(c));
    assert_int_equal(cat_request_list(f->c, &flt, collect_one, &c), 0);
    assert_int_equal(c.n, 3);

    /* The callback's non-zero result stops the list and is returned. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    assert_int_equal(cat_request_list(f->c, NULL, collect_one, &c), 42);
    assert_int_equal(c.n, 2);
}

/* The table refuses a state it does not know, even from raw SQL. */
static void test_state_check(void **state)
{
    struct fx *f = *state;
    sqlite3 *db;
    int64_t id;
    char sql[160];

    id = file(f, f->ana, f->dept_a, f->dev_a, "[\"/z\"]");
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "UPDATE restore_requests SET state = 'lost' WHERE id = %lld",
             (long long)id);
    assert_int_not_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decide_invalid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_check, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
