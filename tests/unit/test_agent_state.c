/*
 * test_agent_state.c - cairn-agent's state file (agent/state.c): the
 * to-do list (dedup, flag merging, settle, batches, done, a crash between
 * take and done, a change while in flight, rescans superseding what lies
 * below them, counts), the key-value table, the commit helper, the run
 * log, the bounded error list, migrations and reopen.
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
#include "state.h"

struct fx {
    char dir[64];
    char path[96];
    struct agent_state *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_agent_state.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
    if (agent_state_open(f->path, &f->st) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    agent_state_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    agent_state_close(f->st);
    f->st = NULL;
    assert_int_equal(agent_state_open(f->path, &f->st), 0);
}

/* Take everything settled by settle_before; the paths joined by ' '. */
static struct agent_todo_batch *take(struct fx *f, int64_t settle_before,
                                     size_t limit, char *joined, size_t len)
{
    struct agent_todo_batch *b = NULL;
    size_t i, used = 0;

    assert_int_equal(agent_todo_take(f->st, settle_before, limit, &b), 0);
    assert_non_null(b);
    joined[0] = '\0';
    for (i = 0; i < b->n; i++)
        used += (size_t)snprintf(joined + used, len - used, "%s%s",
                                 i ? " " : "", b->items[i].path);
    return b;
}

static int64_t total(struct fx *f)
{
    struct agent_todo_counts c;

    assert_int_equal(agent_todo_count(f->st, &c), 0);
    return c.total;
}

static void test_open_schema(void **state)
{
    struct fx *f = *state;
    sqlite3 *db;
    char *mode = NULL;
    sqlite3_stmt *s;

    assert_int_equal(agent_state_schema_version(f->st), 2);
    reopen(f);
    assert_int_equal(agent_state_schema_version(f->st), 2);
    /* WAL on disk. */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s,
                                        NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    mode = strdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    assert_string_equal(mode, "wal");
    free(mode);
    /* A file from a newer agent is refused. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    agent_state_close(f->st);
    f->st = NULL;
    assert_int_equal(agent_state_open(f->path, &f->st), CAIRN_EVERSION);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    /* A version 1 file (no object cache yet) is migrated. */
    assert_int_equal(sqlite3_exec(db, "DROP TABLE object_cache; "
                                      "PRAGMA user_version = 1",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(agent_state_open(f->path, &f->st), 0);
    assert_int_equal(agent_state_schema_version(f->st), 2);
    assert_int_equal(agent_cache_put(f->st, 3, "bb", (const uint8_t *)"z", 1),
                     0);
}

static void test_add_rejects(void **state)
{
    struct fx *f = *state;

    assert_int_equal(agent_todo_add(f->st, "relative", AGENT_TODO_CHANGED, 1),
                     CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "", AGENT_TODO_CHANGED, 1),
                     CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/a/", AGENT_TODO_CHANGED, 1),
                     CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/a//b", AGENT_TODO_CHANGED, 1),
                     CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/a", 0, 1), CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/a", 0x8, 1), CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/a",
                                    AGENT_TODO_CHANGED | AGENT_TODO_REMOVED,
                                    1),
                     CAIRN_EINVAL);
    assert_int_equal(total(f), 0);
}

static void test_dedup_and_settle(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b;
    char got[512];

    assert_int_equal(agent_todo_add(f->st, "/h/b", AGENT_TODO_CHANGED, 10), 0);
    assert_int_equal(agent_todo_add(f->st, "/h/a", AGENT_TODO_CHANGED, 11), 0);
    assert_int_equal(agent_todo_add(f->st, "/h/c", AGENT_TODO_CHANGED, 12), 0);
    /* Queued again: one entry, its last change moves on. */
    assert_int_equal(agent_todo_add(f->st, "/h/b", AGENT_TODO_CHANGED, 20), 0);
    assert_int_equal(total(f), 3);

    /* Nothing settled yet before 10. */
    b = take(f, 9, 100, got, sizeof(got));
    assert_int_equal(b->n, 0);
    assert_int_equal(b->id, 0);
    agent_todo_batch_free(b);
    /* Settled by 12: a and c, not b (changed at 20); sorted by path. */
    b = take(f, 12, 100, got, sizeof(got));
    assert_string_equal(got, "/h/a /h/c");
    assert_true(b->id > 0);
    assert_int_equal(b->items[0].first_seen, 11);
    assert_int_equal(b->items[0].last_changed, 11);
    assert_int_equal(b->items[0].flags, AGENT_TODO_CHANGED);
    assert_int_equal(agent_todo_done(f->st, b->id), 0);
    agent_todo_batch_free(b);
    assert_int_equal(total(f), 1);

    b = take(f, 20, 100, got, sizeof(got));
    assert_string_equal(got, "/h/b");
    assert_int_equal(b->items[0].first_seen, 10);
    assert_int_equal(b->items[0].last_changed, 20);
    assert_int_equal(agent_todo_done(f->st, b->id), 0);
    agent_todo_batch_free(b);
    assert_int_equal(total(f), 0);

    /* limit 0 is refused; batch 0 done is harmless. */
    assert_int_equal(agent_todo_take(f->st, 100, 0, &b), CAIRN_EINVAL);
    assert_int_equal(agent_todo_done(f->st, 0), 0);
}

static void test_limit_oldest_first(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b1, *b2;
    char got[512];
    int64_t id1;

    assert_int_equal(agent_todo_add(f->st, "/z", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/y", AGENT_TODO_CHANGED, 2), 0);
    assert_int_equal(agent_todo_add(f->st, "/x", AGENT_TODO_CHANGED, 3), 0);
    b1 = take(f, 100, 2, got, sizeof(got));
    assert_string_equal(got, "/y /z"); /* the two oldest, sorted */
    id1 = b1->id;
    b2 = take(f, 100, 2, got, sizeof(got));
    assert_string_equal(got, "/x"); /* in-flight ones are not taken again */
    assert_true(b2->id > id1);
    agent_todo_batch_free(b2);
    agent_todo_batch_free(b1);
}

static void test_flags_merge(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b;
    char got[512];

    assert_int_equal(agent_todo_add(f->st, "/f", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/f", AGENT_TODO_REMOVED, 2), 0);
    b = take(f, 100, 10, got, sizeof(got));
    assert_int_equal(b->items[0].flags, AGENT_TODO_REMOVED);
    assert_int_equal(agent_todo_done(f->st, b->id), 0);
    agent_todo_batch_free(b);

    /* RESCAN stays when a change follows; the later change wins. */
    assert_int_equal(agent_todo_add(f->st, "/d", AGENT_TODO_RESCAN, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/d", AGENT_TODO_REMOVED, 2), 0);
    assert_int_equal(agent_todo_add(f->st, "/d", AGENT_TODO_CHANGED, 3), 0);
    b = take(f, 100, 10, got, sizeof(got));
    assert_int_equal(b->items[0].flags,
                     AGENT_TODO_RESCAN | AGENT_TODO_CHANGED);
    agent_todo_batch_free(b);
}

/* Taken, then the agent dies before the snapshot is committed. */
static void test_crash_requeues(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b;
    struct agent_todo_counts c;
    char got[512];
    int64_t n = -1, old_id;

    assert_int_equal(agent_todo_add(f->st, "/a", AGENT_TODO_CHANGED, 100), 0);
    assert_int_equal(agent_todo_add(f->st, "/b", AGENT_TODO_REMOVED, 100), 0);
    b = take(f, 200, 10, got, sizeof(got));
    assert_string_equal(got, "/a /b");
    old_id = b->id;
    agent_todo_batch_free(b);
    assert_int_equal(agent_todo_count(f->st, &c), 0);
    assert_int_equal(c.inflight, 2);

    /* No done: close (kill -9 leaves the same file) and reopen. */
    reopen(f);
    assert_int_equal(agent_todo_count(f->st, &c), 0);
    assert_int_equal(c.total, 2);
    assert_int_equal(c.inflight, 2);
    b = take(f, 200, 10, got, sizeof(got));
    assert_int_equal(b->n, 0); /* still in flight until requeued */
    agent_todo_batch_free(b);

    /* After a reboot the monotonic clock restarts near 0. */
    assert_int_equal(agent_todo_requeue_all_inflight(f->st, 5, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(agent_todo_count(f->st, &c), 0);
    assert_int_equal(c.inflight, 0);
    b = take(f, 5, 10, got, sizeof(got));
    assert_string_equal(got, "/a /b");
    assert_int_equal(b->items[0].last_changed, 5);
    assert_int_equal(b->items[1].flags, AGENT_TODO_REMOVED);
    assert_true(b->id > old_id); /* ids are not reused */
    /* The stale batch's done deletes nothing. */
    assert_int_equal(agent_todo_done(f->st, old_id), 0);
    assert_int_equal(total(f), 2);
    assert_int_equal(agent_todo_done(f->st, b->id), 0);
    assert_int_equal(total(f), 0);
    agent_todo_batch_free(b);
}

/* A file changed again while its batch is being backed up stays queued. */
static void test_change_while_inflight(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b, *b2;
    char got[512];

    assert_int_equal(agent_todo_add(f->st, "/a", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/b", AGENT_TODO_CHANGED, 1), 0);
    b = take(f, 10, 10, got, sizeof(got));
    assert_int_equal(agent_todo_add(f->st, "/a", AGENT_TODO_CHANGED, 11), 0);
    assert_int_equal(agent_state_commit_snapshot(f->st, b->id, "ab12", 1000),
                     0);
    agent_todo_batch_free(b);
    b2 = take(f, 100, 10, got, sizeof(got));
    assert_string_equal(got, "/a");
    assert_int_equal(b2->items[0].last_changed, 11);
    agent_todo_batch_free(b2);
}

static void test_rescan_supersedes(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b;
    struct agent_todo_counts c;
    char got[512];

    assert_int_equal(agent_todo_add(f->st, "/h/d/x", AGENT_TODO_CHANGED, 1),
                     0);
    assert_int_equal(agent_todo_add(f->st, "/h/d/e/y", AGENT_TODO_REMOVED, 1),
                     0);
    assert_int_equal(agent_todo_add(f->st, "/h/d", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/h/d0", AGENT_TODO_CHANGED, 1),
                     0);
    assert_int_equal(agent_todo_add(f->st, "/h/d.txt", AGENT_TODO_CHANGED, 1),
                     0);
    assert_int_equal(agent_todo_add(f->st, "/h/c", AGENT_TODO_CHANGED, 1), 0);
    /* One in flight below /h/d: a rescan does not touch it. */
    assert_int_equal(agent_todo_add(f->st, "/h/d/busy", AGENT_TODO_CHANGED,
                                    0),
                     0);
    b = take(f, 0, 10, got, sizeof(got));
    assert_string_equal(got, "/h/d/busy");

    assert_int_equal(agent_todo_add(f->st, "/h/d", AGENT_TODO_RESCAN, 2), 0);
    assert_int_equal(agent_todo_count(f->st, &c), 0);
    assert_int_equal(c.total, 5); /* /h/c /h/d /h/d.txt /h/d0 + busy */
    assert_int_equal(c.rescans, 1);
    /* Below a waiting rescan: not queued at all. */
    assert_int_equal(agent_todo_add(f->st, "/h/d/new", AGENT_TODO_CHANGED, 3),
                     0);
    assert_int_equal(agent_todo_add(f->st, "/h/d/e/f/g", AGENT_TODO_CHANGED,
                                    3),
                     0);
    assert_int_equal(total(f), 5);
    /* Beside it: queued. */
    assert_int_equal(agent_todo_add(f->st, "/h/dx", AGENT_TODO_CHANGED, 3), 0);
    assert_int_equal(total(f), 6);
    agent_todo_batch_free(b);
    b = take(f, 10, 100, got, sizeof(got));
    assert_string_equal(got, "/h/c /h/d /h/d.txt /h/d0 /h/dx");
    assert_int_equal(b->items[1].flags,
                     AGENT_TODO_RESCAN | AGENT_TODO_CHANGED);
    agent_todo_batch_free(b);

    /* Once the rescan is in flight, new changes below it queue again. */
    assert_int_equal(agent_todo_add(f->st, "/h/d/late", AGENT_TODO_CHANGED,
                                    20),
                     0);
    assert_int_equal(total(f), 7);

    /* A rescan of "/" drops everything waiting but itself. */
    assert_int_equal(agent_todo_add(f->st, "/", AGENT_TODO_RESCAN, 30), 0);
    b = take(f, 100, 100, got, sizeof(got));
    assert_string_equal(got, "/");
    agent_todo_batch_free(b);
}

/* A file that never stops changing is taken once it has waited long
 * enough; changed again in flight, it waits anew. */
static void test_take_overdue(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b = NULL;
    int64_t t;

    for (t = 0; t <= 60; t += 5)
        assert_int_equal(agent_todo_add(f->st, "/log", AGENT_TODO_CHANGED, t),
                         0);
    /* at 61: not settled (changed at 60), not overdue if the limit is 0 */
    assert_int_equal(agent_todo_take_overdue(f->st, 59, -1, 10, &b), 0);
    assert_int_equal(b->n, 0);
    agent_todo_batch_free(b);
    /* queued at 0, overdue past 60 s */
    assert_int_equal(agent_todo_take_overdue(f->st, 59, 1, 10, &b), 0);
    assert_int_equal(b->n, 1);
    assert_string_equal(b->items[0].path, "/log");
    /* changed while in flight: waiting again, queued anew at 62 */
    assert_int_equal(agent_todo_add(f->st, "/log", AGENT_TODO_CHANGED, 62), 0);
    assert_int_equal(agent_todo_done(f->st, b->id), 0);
    agent_todo_batch_free(b);
    assert_int_equal(agent_todo_take_overdue(f->st, 61, 10, 10, &b), 0);
    assert_int_equal(b->n, 0);
    agent_todo_batch_free(b);
    assert_int_equal(agent_todo_take_overdue(f->st, 61, 62, 10, &b), 0);
    assert_int_equal(b->n, 1);
    agent_todo_batch_free(b);
}

/* The object cache: kept across a reopen, first copy wins, dropped on
 * demand; types and names are separate keys. */
static void test_object_cache(void **state)
{
    struct fx *f = *state;
    uint8_t *b = NULL, big[70000];
    size_t n = 0;

    memset(big, 0xab, sizeof(big));
    assert_int_equal(agent_cache_get(f->st, 3, "aa", &b, &n), CAIRN_ENOENT);
    assert_null(b);
    assert_int_equal(agent_cache_put(f->st, 3, "aa", big, sizeof(big)), 0);
    assert_int_equal(agent_cache_put(f->st, 3, "aa", (const uint8_t *)"x", 1),
                     0);
    assert_int_equal(agent_cache_put(f->st, 4, "aa", (const uint8_t *)"y", 1),
                     0);
    assert_int_equal(agent_cache_put(f->st, 0, "config", NULL, 0), 0);
    reopen(f);
    assert_int_equal(agent_cache_get(f->st, 3, "aa", &b, &n), 0);
    assert_int_equal(n, sizeof(big));
    assert_memory_equal(b, big, sizeof(big));
    free(b);
    assert_int_equal(agent_cache_get(f->st, 4, "aa", &b, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0], 'y');
    free(b);
    assert_int_equal(agent_cache_get(f->st, 0, "config", &b, &n), 0);
    assert_int_equal(n, 0);
    free(b);
    assert_int_equal(agent_cache_drop(f->st, 3, "aa"), 0);
    assert_int_equal(agent_cache_get(f->st, 3, "aa", &b, &n), CAIRN_ENOENT);
    assert_int_equal(agent_cache_get(f->st, 4, "aa", &b, &n), 0);
    free(b);
}

static void test_kv_and_commit(void **state)
{
    struct fx *f = *state;
    struct agent_todo_batch *b;
    char got[64], *v = NULL;
    int64_t i = 0;

    assert_int_equal(agent_kv_get(f->st, AGENT_KV_PHASE, &v), CAIRN_ENOENT);
    assert_null(v);
    assert_int_equal(agent_kv_set(f->st, AGENT_KV_PHASE, "idle"), 0);
    assert_int_equal(agent_kv_set(f->st, AGENT_KV_PHASE, "scanning"), 0);
    assert_int_equal(agent_kv_get(f->st, AGENT_KV_PHASE, &v), 0);
    assert_string_equal(v, "scanning");
    free(v);
    assert_int_equal(agent_kv_get_int(f->st, AGENT_KV_PAUSE_UNTIL, 7, &i), 0);
    assert_int_equal(i, 7);
    assert_int_equal(agent_kv_set_int(f->st, AGENT_KV_PAUSE_UNTIL,
                                      INT64_C(1767225600)),
                     0);
    assert_int_equal(agent_kv_get_int(f->st, AGENT_KV_PAUSE_UNTIL, 7, &i), 0);
    assert_int_equal(i, INT64_C(1767225600));
    assert_int_equal(agent_kv_get_int(f->st, AGENT_KV_PHASE, 0, &i),
                     CAIRN_ECORRUPT);
    assert_int_equal(agent_kv_delete(f->st, AGENT_KV_PAUSE_UNTIL), 0);
    assert_int_equal(agent_kv_get_int(f->st, AGENT_KV_PAUSE_UNTIL, -1, &i), 0);
    assert_int_equal(i, -1);
    assert_int_equal(agent_kv_set(f->st, "", "x"), CAIRN_EINVAL);

    /* The commit helper: all or nothing. */
    assert_int_equal(agent_todo_add(f->st, "/a", AGENT_TODO_CHANGED, 1), 0);
    b = take(f, 1, 10, got, sizeof(got));
    assert_int_equal(agent_state_commit_snapshot(f->st, b->id, "", 5),
                     CAIRN_EINVAL);
    assert_int_equal(total(f), 1);
    assert_int_equal(agent_state_commit_snapshot(f->st, b->id, "c0ffee", 500),
                     0);
    agent_todo_batch_free(b);
    assert_int_equal(total(f), 0);
    reopen(f);
    assert_int_equal(agent_kv_get(f->st, AGENT_KV_LAST_SNAPSHOT, &v), 0);
    assert_string_equal(v, "c0ffee");
    free(v);
    assert_int_equal(agent_kv_get_int(f->st, AGENT_KV_LAST_BACKUP, 0, &i), 0);
    assert_int_equal(i, 500);
}

static void test_transaction(void **state)
{
    struct fx *f = *state;

    assert_int_equal(agent_state_begin(f->st), 0);
    assert_int_equal(agent_state_begin(f->st), CAIRN_EINVAL);
    assert_int_equal(agent_todo_add(f->st, "/t1", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_todo_add(f->st, "/t2", AGENT_TODO_CHANGED, 1), 0);
    assert_int_equal(agent_kv_set(f->st, "k", "v"), 0);
    agent_state_rollback(f->st);
    assert_int_equal(total(f), 0);
    assert_int_equal(agent_state_begin(f->st), 0);
    assert_int_equal(agent_todo_add(f->st, "/t1", AGENT_TODO_CHANGED, 1), 0);
    /* A failing call inside undoes only itself. */
    assert_int_equal(agent_todo_add(f->st, "bad", AGENT_TODO_CHANGED, 1),
                     CAIRN_EINVAL);
    assert_int_equal(agent_state_commit(f->st), 0);
    assert_int_equal(total(f), 1);
    assert_int_equal(agent_state_commit(f->st), CAIRN_EINVAL);
}

struct collect {
    int n;
    char first[64];
    int64_t first_id, last_id;
};

static int on_error(void *arg, const struct agent_file_error *e)
{
    struct collect *c = arg;

    if (c->n == 0) {
        snprintf(c->first, sizeof(c->first), "%s|%s|%lld", e->path, e->reason,
                 (long long)e->time);
        c->first_id = e->id;
    }
    c->last_id = e->id;
    c->n++;
    return 0;
}

static int stop_at_two(void *arg, const struct agent_run *r)
{
    int *n = arg;

    (void)r;
    return ++*n == 2 ? 42 : 0;
}

static void test_errors_bounded(void **state)
{
    struct fx *f = *state;
    struct collect c;
    char path[64];
    int64_t n = 0;
    int i;

    assert_int_equal(agent_state_begin(f->st), 0);
    for (i = 1; i <= AGENT_STATE_ERRORS_MAX + 50; i++) {
        snprintf(path, sizeof(path), "/data/f%d", i);
        assert_int_equal(agent_error_add(f->st, path, "permission denied", i),
                         0);
    }
    assert_int_equal(agent_state_commit(f->st), 0);
    assert_int_equal(agent_error_count(f->st, &n), 0);
    assert_int_equal(n, AGENT_STATE_ERRORS_MAX);
    memset(&c, 0, sizeof(c));
    assert_int_equal(agent_error_list(f->st, 0, on_error, &c), 0);
    assert_int_equal(c.n, AGENT_STATE_ERRORS_MAX);
    assert_string_equal(c.first, "/data/f1050|permission denied|1050");
    assert_int_equal(c.last_id, 51); /* the 50 oldest are gone */
    memset(&c, 0, sizeof(c));
    assert_int_equal(agent_error_list(f->st, 3, on_error, &c), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(agent_error_clear_path(f->st, "/data/f1050"), 0);
    assert_int_equal(agent_error_count(f->st, &n), 0);
    assert_int_equal(n, AGENT_STATE_ERRORS_MAX - 1);
    assert_int_equal(agent_error_clear(f->st), 0);
    assert_int_equal(agent_error_count(f->st, &n), 0);
    assert_int_equal(n, 0);
}

static void test_runs(void **state)
{
    struct fx *f = *state;
    struct agent_run r, last;
    int64_t id1, id2;
    int n = 0;

    assert_int_equal(agent_run_last(f->st, &last), CAIRN_ENOENT);
    assert_int_equal(agent_run_start(f->st, 100, &id1), 0);
    assert_int_equal(agent_run_start(f->st, 200, &id2), 0);
    assert_true(id2 > id1);
    memset(&r, 0, sizeof(r));
    r.id = id2;
    r.end = 260;
    r.files = 12;
    r.bytes = 3456;
    r.errors = 1;
    r.complete = 1;
    assert_int_equal(agent_run_end(f->st, &r), 0);
    assert_int_equal(agent_run_last(f->st, &last), 0);
    assert_int_equal(last.id, id2);
    assert_int_equal(last.start, 200);
    assert_int_equal(last.end, 260);
    assert_int_equal(last.files, 12);
    assert_int_equal(last.bytes, 3456);
    assert_int_equal(last.errors, 1);
    assert_int_equal(last.complete, 1);
    r.id = 999;
    assert_int_equal(agent_run_end(f->st, &r), CAIRN_ENOENT);
    /* The first run never ended (a crash): end 0. */
    assert_int_equal(agent_run_list(f->st, 0, stop_at_two, &n), 42);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_and_settle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_limit_oldest_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flags_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_requeues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_while_inflight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rescan_supersedes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kv_and_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_overdue, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
