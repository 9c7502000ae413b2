/*
 * state.c - cairn-agent's state in SQLite (state.h).
 *
 * One connection, one recursive mutex around every call (the watcher and
 * the backup thread both write the to-do list; each call is a few indexed
 * statements).  WAL with synchronous=NORMAL: a commit is durable once the
 * WAL reaches the disk at the next checkpoint or sync, and a crash of the
 * agent (kill -9) loses nothing committed; a power cut may lose the last
 * commits but never corrupts the file.  That is enough here, because
 * every entry of the to-do list is deleted only after the server has the
 * snapshot, and a lost deletion only makes the agent read a file again.
 *
 * The to-do list is keyed by path (WITHOUT ROWID: the path is the row's
 * key, so a prefix range is a B-tree range).  batch is 0 for a waiting
 * entry, else the id of the batch that took it.  Batch ids come from the
 * key-value table ("todo_next_batch") so they are never reused, even
 * after a crash.
 *
 * Schema: migrations[i] takes the file from version i to i + 1 (PRAGMA
 * user_version), each in its own transaction, at open.  Append, never
 * edit a released entry.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cairn/log.h"
#include "state.h"

#define BUSY_TIMEOUT_MS 10000
#define KV_NEXT_BATCH "todo_next_batch"
#define KV_KEY_MAX 255

static const char *const migrations[] = {
    /* version 1 */
    "CREATE TABLE todo ("
    "  path TEXT PRIMARY KEY,"
    "  flags INTEGER NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_changed INTEGER NOT NULL,"
    "  batch INTEGER NOT NULL DEFAULT 0"
    ") WITHOUT ROWID;"
    "CREATE INDEX todo_ready ON todo(batch, last_changed);"
    "CREATE INDEX todo_rescan ON todo(batch) WHERE (flags & 4) != 0;"
    "CREATE TABLE kv ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  start INTEGER NOT NULL,"
    "  end INTEGER NOT NULL DEFAULT 0,"
    "  files INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  errors INTEGER NOT NULL DEFAULT 0,"
    "  complete INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE file_errors ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  path TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  time INTEGER NOT NULL);"
    "CREATE INDEX file_errors_path ON file_errors(path);",
    /* version 2: the local copy of the archive's immutable objects (index
     * objects, snapshots, config), so a start does not fetch them all */
    "CREATE TABLE object_cache ("
    "  type INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  PRIMARY KEY (type, name)"
    ") WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
    S_RESCAN_ANY,
    S_WAITING_FLAGS,
    S_TODO_UPSERT,
    S_TODO_DROP_BELOW,
    S_TODO_MARK,
    S_TODO_BATCH,
    S_TODO_DONE,
    S_TODO_REQUEUE,
    S_TODO_CLAMP_LAST,
    S_TODO_CLAMP_FIRST,
    S_TODO_COUNT,
    S_KV_SET,
    S_KV_GET,
    S_CACHE_GET,
    S_CACHE_PUT,
    S_CACHE_DEL,
    S_KV_DEL,
    S_RUN_ADD,
    S_RUN_TRIM,
    S_RUN_END,
    S_RUN_LIST,
    S_ERR_ADD,
    S_ERR_TRIM,
    S_ERR_LIST,
    S_ERR_COUNT,
    S_ERR_CLEAR,
    S_ERR_CLEAR_PATH,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_RESCAN_ANY] =
        "SELECT 1 FROM todo WHERE batch = 0 AND (flags & 4) != 0 LIMIT 1",
    [S_WAITING_FLAGS] = "SELECT flags FROM todo WHERE path = ?1 AND batch = 0",
    [S_TODO_UPSERT] =
        "INSERT INTO todo (path, flags, first_seen, last_changed, batch) "
        "VALUES (?1, ?2, ?3, ?3, 0) ON CONFLICT (path) DO UPDATE SET "
        "flags = CASE WHEN (?2 & 3) != 0 THEN (flags & 4) | ?2 "
        "ELSE flags | ?2 END, last_changed = ?3, first_seen = CASE WHEN "
        "batch != 0 THEN ?3 ELSE first_seen END, batch = 0",
    [S_TODO_DROP_BELOW] = "DELETE FROM todo WHERE batch = 0 AND path >= ?1 "
                          "AND path < ?2 AND path != ?3",
    [S_TODO_MARK] =
        "UPDATE todo SET batch = ?1 WHERE path IN (SELECT path FROM todo "
        "WHERE batch = 0 AND (last_changed <= ?2 OR first_seen <= ?4) "
        "ORDER BY last_changed LIMIT ?3)",
    [S_TODO_BATCH] = "SELECT path, flags, first_seen, last_changed FROM todo "
                     "WHERE batch = ?1 ORDER BY path",
    [S_TODO_DONE] = "DELETE FROM todo WHERE batch = ?1 AND batch != 0",
    [S_TODO_REQUEUE] = "UPDATE todo SET batch = 0 WHERE batch != 0",
    [S_TODO_CLAMP_LAST] =
        "UPDATE todo SET last_changed = ?1 WHERE last_changed > ?1",
    [S_TODO_CLAMP_FIRST] =
        "UPDATE todo SET first_seen = ?1 WHERE first_seen > ?1",
    [S_TODO_COUNT] = "SELECT count(*), coalesce(sum(batch != 0), 0), "
                     "coalesce(sum((flags & 4) != 0), 0) FROM todo",
    [S_KV_SET] = "INSERT INTO kv (key, value) VALUES (?1, ?2) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [S_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
    [S_CACHE_GET] = "SELECT body FROM object_cache WHERE type = ?1 AND "
                    "name = ?2",
    [S_CACHE_PUT] = "INSERT OR IGNORE INTO object_cache (type, name, body) "
                    "VALUES (?1, ?2, ?3)",
    [S_CACHE_DEL] = "DELETE FROM object_cache WHERE type = ?1 AND name = ?2",
    [S_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [S_RUN_ADD] = "INSERT INTO runs (start) VALUES (?1)",
    [S_RUN_TRIM] = "DELETE FROM runs WHERE id <= ?1",
    [S_RUN_END] = "UPDATE runs SET end = ?2, files = ?3, bytes = ?4, "
                  "errors = ?5, complete = ?6 WHERE id = ?1",
    [S_RUN_LIST] = "SELECT id, start, end, files, bytes, errors, complete "
                   "FROM runs ORDER BY id DESC LIMIT ?1",
    [S_ERR_ADD] =
        "INSERT INTO file_errors (path, reason, time) VALUES (?1, ?2, ?3)",
    [S_ERR_TRIM] = "DELETE FROM file_errors WHERE id <= ?1",
    [S_ERR_LIST] = "SELECT id, path, reason, time FROM file_errors "
                   "ORDER BY id DESC LIMIT ?1",
    [S_ERR_COUNT] = "SELECT count(*) FROM file_errors",
    [S_ERR_CLEAR] = "DELETE FROM file_errors",
    [S_ERR_CLEAR_PATH] = "DELETE FROM file_errors WHERE path = ?1",
};

struct agent_state {
    sqlite3 *db;
    pthread_mutex_t lock; /* recursive; held across a caller's transaction */
    int in_tx;            /* agent_state_begin depth (0 or 1) */
    int sp_depth;         /* internal savepoints inside a transaction */
    int version;
    sqlite3_stmt *st[S_COUNT];
};

/* ---- helpers (the caller holds the lock) ---- */

static int sq_err(struct agent_state *st, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return CAIRN_ENOMEM;
    case SQLITE_FULL:
        return CAIRN_ENOSPC;
    default:
        cairn_log(CAIRN_LOG_ERROR, "agent state: %s (%d)",
                  st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc), rc);
        return CAIRN_EIO;
    }
}

/* Statement id, prepared on first use; NULL with *rc set on error. */
static sqlite3_stmt *stmt(struct agent_state *st, enum stmt_id id, int *rc)
{
    int r;

    if (st->st[id] == NULL) {
        r = sqlite3_prepare_v3(st->db, stmt_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &st->st[id], NULL);
        if (r != SQLITE_OK) {
            *rc = sq_err(st, r);
            st->st[id] = NULL;
            return NULL;
        }
    }
    return st->st[id];
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Run a statement that returns no rows; *changes (if not NULL) the rows it
 * changed. */
static int exec_step(struct agent_state *st, sqlite3_stmt *s, int *changes)
{
    int r = sqlite3_step(s);
    int rc = 0;

    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
    else if (changes != NULL)
        *changes = sqlite3_changes(st->db);
    done(s);
    return rc;
}

static int exec_sql(struct agent_state *st, const char *sql)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_err(st, sqlite3_extended_errcode(st->db));
    return 0;
}

static void bind_bytes(sqlite3_stmt *s, int i, const char *p, size_t n)
{
    sqlite3_bind_text64(s, i, p, n, SQLITE_TRANSIENT, SQLITE_UTF8);
}

/*
 * Several statements as one: a transaction of their own, or a savepoint
 * inside the caller's transaction (so a failure undoes only ours).
 */
static int group_begin(struct agent_state *st)
{
    int rc;

    if (st->in_tx) {
        if ((rc = exec_sql(st, "SAVEPOINT agent_group")) == 0)
            st->sp_depth++;
        return rc;
    }
    return exec_sql(st, "BEGIN IMMEDIATE");
}

static int group_commit(struct agent_state *st)
{
    int rc;

    if (st->in_tx) {
        rc = exec_sql(st, "RELEASE agent_group");
        st->sp_depth--;
        return rc;
    }
    if ((rc = exec_sql(st, "COMMIT")) != 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void group_rollback(struct agent_state *st)
{
    if (st->in_tx) {
        sqlite3_exec(st->db, "ROLLBACK TO agent_group; RELEASE agent_group",
                     NULL, NULL, NULL);
        st->sp_depth--;
        return;
    }
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- open, close, migrate ---- */

static int migrate(struct agent_state *st)
{
    sqlite3_stmt *s = NULL;
    char sql[64];
    int v = 0, rc;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) !=
        SQLITE_OK) {
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
        goto err0;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (v > SCHEMA_VERSION) {
        cairn_log(CAIRN_LOG_ERROR,
                  "agent state: schema version %d is newer than this "
                  "agent knows (%d)",
                  v, SCHEMA_VERSION);
        rc = CAIRN_EVERSION;
        goto err0;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if ((rc = exec_sql(st, "BEGIN IMMEDIATE")) != 0)
            goto err0;
        if ((rc = exec_sql(st, migrations[v])) != 0)
            goto err1;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if ((rc = exec_sql(st, sql)) != 0)
            goto err1;
        if ((rc = exec_sql(st, "COMMIT")) != 0)
            goto err1;
    }
    st->version = v;

    /* Success! */
    return 0;

err1:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
err0:
    return rc;
}

int agent_state_open(const char *path, struct agent_state **out)
{
    pthread_mutexattr_t ma;
    struct agent_state *st;
    int rc, r;

    if ((st = calloc(1, sizeof(*st))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    if (pthread_mutexattr_init(&ma) != 0) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    r = pthread_mutex_init(&st->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (r != 0) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    r = sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL);
    if (r != SQLITE_OK) {
        cairn_log(CAIRN_LOG_ERROR, "agent state: cannot open %s: %s", path,
                  st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(r));
        rc = r == SQLITE_CANTOPEN && errno == EACCES ? CAIRN_EPERM
                                                      : CAIRN_EIO;
        goto err2;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    if ((rc = exec_sql(st, "PRAGMA journal_mode = WAL")) != 0 ||
        (rc = exec_sql(st, "PRAGMA synchronous = NORMAL")) != 0 ||
        (rc = exec_sql(st, "PRAGMA foreign_keys = ON")) != 0)
        goto err2;
    if ((rc = migrate(st)) != 0)
        goto err2;
    *out = st;

    /* Success! */
    return 0;

err2:
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
err1:
    free(st);
err0:
    return rc;
}

void agent_state_close(struct agent_state *st)
{
    int i;

    if (st == NULL)
        return;
    if (st->in_tx)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->st[i]);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int agent_state_schema_version(struct agent_state *st)
{
    return st->version;
}

int agent_state_begin(struct agent_state *st)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    if (st->in_tx) {
        pthread_mutex_unlock(&st->lock);
        return CAIRN_EINVAL;
    }
    if ((rc = exec_sql(st, "BEGIN IMMEDIATE")) != 0) {
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    st->in_tx = 1;
    /* The lock stays held until commit or rollback. */
    return 0;
}

int agent_state_commit(struct agent_state *st)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    if (!st->in_tx) {
        pthread_mutex_unlock(&st->lock);
        return CAIRN_EINVAL;
    }
    if ((rc = exec_sql(st, "COMMIT")) != 0)
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = 0;
    pthread_mutex_unlock(&st->lock); /* ours */
    pthread_mutex_unlock(&st->lock); /* begin's */
    return rc;
}

void agent_state_rollback(struct agent_state *st)
{
    pthread_mutex_lock(&st->lock);
    if (!st->in_tx) {
        pthread_mutex_unlock(&st->lock);
        return;
    }
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = 0;
    pthread_mutex_unlock(&st->lock);
    pthread_mutex_unlock(&st->lock);
}

/* ---- key-value (lock held) ---- */

static int kv_set_locked(struct agent_state *st, const char *key,
                         const char *value)
{
    sqlite3_stmt *s;
    int rc = 0;

    if ((s = stmt(st, S_KV_SET, &rc)) == NULL)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_TRANSIENT);
    return exec_step(st, s, NULL);
}

static int kv_get_locked(struct agent_state *st, const char *key, char **out)
{
    sqlite3_stmt *s;
    const unsigned char *t;
    size_t n;
    int rc = 0, r;

    *out = NULL;
    if ((s = stmt(st, S_KV_GET, &rc)) == NULL)
        return rc;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        t = sqlite3_column_text(s, 0);
        n = (size_t)sqlite3_column_bytes(s, 0);
        if ((*out = malloc(n + 1)) == NULL) {
            rc = CAIRN_ENOMEM;
        } else {
            if (n > 0)
                memcpy(*out, t, n);
            (*out)[n] = '\0';
        }
    } else if (r == SQLITE_DONE) {
        rc = CAIRN_ENOENT;
    } else {
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
    }
    done(s);
    return rc;
}

/* Parse a whole decimal int64. */
static int parse_int(const char *t, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(t, &end, 10);
    if (t[0] == '\0' || *end != '\0' || errno != 0)
        return CAIRN_ECORRUPT;
    *out = (int64_t)v;
    return 0;
}

static int kv_get_int_locked(struct agent_state *st, const char *key,
                             int64_t def, int64_t *out)
{
    char *v;
    int rc;

    if ((rc = kv_get_locked(st, key, &v)) == CAIRN_ENOENT) {
        *out = def;
        return 0;
    }
    if (rc != 0)
        return rc;
    rc = parse_int(v, out);
    free(v);
    return rc;
}

static int kv_set_int_locked(struct agent_state *st, const char *key,
                             int64_t value)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", (long long)value);
    return kv_set_locked(st, key, buf);
}

static int key_ok(const char *key)
{
    return key != NULL && key[0] != '\0' && strlen(key) <= KV_KEY_MAX;
}

int agent_kv_set(struct agent_state *st, const char *key, const char *value)
{
    int rc;

    if (!key_ok(key) || value == NULL)
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    rc = kv_set_locked(st, key, value);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_kv_get(struct agent_state *st, const char *key, char **out)
{
    int rc;

    *out = NULL;
    if (!key_ok(key))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    rc = kv_get_locked(st, key, out);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_kv_set_int(struct agent_state *st, const char *key, int64_t value)
{
    int rc;

    if (!key_ok(key))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    rc = kv_set_int_locked(st, key, value);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_kv_get_int(struct agent_state *st, const char *key, int64_t def,
                     int64_t *out)
{
    int rc;

    if (!key_ok(key))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    rc = kv_get_int_locked(st, key, def, out);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_kv_delete(struct agent_state *st, const char *key)
{
    sqlite3_stmt *s;
    int rc = 0;

    if (!key_ok(key))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_KV_DEL, &rc)) != NULL) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
        rc = exec_step(st, s, NULL);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- the to-do list ---- */

/* An absolute path without NUL, "//" or a trailing '/' (but "/"). */
static int path_ok(const char *path, size_t *out_len)
{
    size_t len;

    if (path == NULL || path[0] != '/')
        return 0;
    len = strlen(path);
    if (len > AGENT_STATE_PATH_MAX || strstr(path, "//") != NULL ||
        (len > 1 && path[len - 1] == '/'))
        return 0;
    *out_len = len;
    return 1;
}

/* Is a proper ancestor of path (len bytes) a waiting RESCAN entry?  1, 0,
 * or a negative error. */
static int under_rescan(struct agent_state *st, const char *path, size_t len)
{
    sqlite3_stmt *s;
    size_t i;
    int rc = 0, r, found = 0;

    if ((s = stmt(st, S_RESCAN_ANY, &rc)) == NULL)
        return rc;
    r = sqlite3_step(s);
    done(s);
    if (r == SQLITE_DONE)
        return 0; /* no rescan waits: the common case, one index probe */
    if (r != SQLITE_ROW)
        return sq_err(st, sqlite3_extended_errcode(st->db));
    if ((s = stmt(st, S_WAITING_FLAGS, &rc)) == NULL)
        return rc;
    /* "/" then each prefix ending before a '/'. */
    for (i = 0; i < len && !found; i++) {
        if (path[i] != '/' || (i == 0 && len == 1))
            continue;
        bind_bytes(s, 1, path, i == 0 ? 1 : i);
        r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            found = (sqlite3_column_int64(s, 0) & AGENT_TODO_RESCAN) != 0;
        else if (r != SQLITE_DONE)
            rc = sq_err(st, sqlite3_extended_errcode(st->db));
        done(s);
        if (rc != 0)
            return rc;
    }
    return found;
}

/* Delete the waiting entries strictly below path (len bytes). */
static int drop_below(struct agent_state *st, const char *path, size_t len)
{
    char *lo;
    sqlite3_stmt *s;
    size_t n;
    int rc = 0;

    /* [path "/", path "0"): '0' follows '/' in byte order. */
    if ((lo = malloc(len + 2)) == NULL)
        return CAIRN_ENOMEM;
    memcpy(lo, path, len);
    n = len;
    if (!(len == 1 && path[0] == '/'))
        lo[n++] = '/';
    if ((s = stmt(st, S_TODO_DROP_BELOW, &rc)) != NULL) {
        bind_bytes(s, 1, lo, n);
        lo[n - 1] = '0';
        bind_bytes(s, 2, lo, n);
        bind_bytes(s, 3, path, len);
        rc = exec_step(st, s, NULL);
    }
    free(lo);
    return rc;
}

int agent_todo_add(struct agent_state *st, const char *path, unsigned flags,
                   int64_t now)
{
    sqlite3_stmt *s;
    size_t len;
    int rc = 0, r;

    if (!path_ok(path, &len) || flags == 0 ||
        (flags & ~(AGENT_TODO_CHANGED | AGENT_TODO_REMOVED |
                   AGENT_TODO_RESCAN)) != 0 ||
        (flags & (AGENT_TODO_CHANGED | AGENT_TODO_REMOVED)) ==
            (AGENT_TODO_CHANGED | AGENT_TODO_REMOVED))
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((r = under_rescan(st, path, len)) < 0) {
        rc = r;
        goto err1;
    }
    if (r == 1)
        goto commit; /* the rescan above will find it */
    if ((s = stmt(st, S_TODO_UPSERT, &rc)) == NULL)
        goto err1;
    bind_bytes(s, 1, path, len);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)flags);
    sqlite3_bind_int64(s, 3, now);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    if ((flags & AGENT_TODO_RESCAN) && (rc = drop_below(st, path, len)) != 0)
        goto err1;
commit:
    if ((rc = group_commit(st)) != 0)
        goto err0;
    pthread_mutex_unlock(&st->lock);

    /* Success! */
    return 0;

err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void agent_todo_batch_free(struct agent_todo_batch *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < b->n; i++)
        free(b->items[i].path);
    free(b->items);
    free(b);
}

/* Read batch b->id's entries into b (at most cap). */
static int read_batch(struct agent_state *st, struct agent_todo_batch *b,
                      size_t cap)
{
    struct agent_todo_item *it;
    sqlite3_stmt *s;
    const unsigned char *t;
    size_t n;
    int rc = 0, r;

    if ((b->items = calloc(cap, sizeof(*b->items))) == NULL)
        return CAIRN_ENOMEM;
    if ((s = stmt(st, S_TODO_BATCH, &rc)) == NULL)
        return rc;
    sqlite3_bind_int64(s, 1, b->id);
    while ((r = sqlite3_step(s)) == SQLITE_ROW && b->n < cap) {
        it = &b->items[b->n];
        t = sqlite3_column_text(s, 0);
        n = (size_t)sqlite3_column_bytes(s, 0);
        if ((it->path = malloc(n + 1)) == NULL) {
            rc = CAIRN_ENOMEM;
            break;
        }
        memcpy(it->path, t, n);
        it->path[n] = '\0';
        it->flags = (unsigned)sqlite3_column_int64(s, 1);
        it->first_seen = sqlite3_column_int64(s, 2);
        it->last_changed = sqlite3_column_int64(s, 3);
        b->n++;
    }
    if (rc == 0 && r != SQLITE_ROW && r != SQLITE_DONE)
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
    done(s);
    return rc;
}

int agent_todo_take(struct agent_state *st, int64_t settle_before,
                    size_t limit, struct agent_todo_batch **out)
{
    return agent_todo_take_overdue(st, settle_before, INT64_MIN, limit, out);
}

int agent_todo_take_overdue(struct agent_state *st, int64_t settle_before,
                            int64_t queued_before, size_t limit,
                            struct agent_todo_batch **out)
{
    struct agent_todo_batch *b;
    sqlite3_stmt *s;
    int64_t id;
    int rc = 0, changed = 0;

    *out = NULL;
    if (limit == 0 || limit > (size_t)INT32_MAX)
        return CAIRN_EINVAL;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return CAIRN_ENOMEM;
    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((rc = kv_get_int_locked(st, KV_NEXT_BATCH, 1, &id)) != 0)
        goto err1;
    if (id < 1) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    if ((s = stmt(st, S_TODO_MARK, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, settle_before);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
    sqlite3_bind_int64(s, 4, queued_before);
    if ((rc = exec_step(st, s, &changed)) != 0)
        goto err1;
    if (changed == 0) {
        /* Nothing has settled: an empty batch, nothing written. */
        group_rollback(st);
        goto out;
    }
    if ((rc = kv_set_int_locked(st, KV_NEXT_BATCH, id + 1)) != 0)
        goto err1;
    b->id = id;
    if ((rc = read_batch(st, b, (size_t)changed)) != 0)
        goto err2;
    if ((rc = group_commit(st)) != 0)
        goto err2;
out:
    pthread_mutex_unlock(&st->lock);
    *out = b;

    /* Success! */
    return 0;

err2:
    agent_todo_batch_free(b);
    b = NULL;
err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    agent_todo_batch_free(b);
    return rc;
}

/* Delete batch_id's entries (lock held). */
static int todo_done_locked(struct agent_state *st, int64_t batch_id)
{
    sqlite3_stmt *s;
    int rc = 0;

    if ((s = stmt(st, S_TODO_DONE, &rc)) == NULL)
        return rc;
    sqlite3_bind_int64(s, 1, batch_id);
    return exec_step(st, s, NULL);
}

int agent_todo_done(struct agent_state *st, int64_t batch_id)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = todo_done_locked(st, batch_id);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_todo_requeue_all_inflight(struct agent_state *st, int64_t now,
                                    int64_t *out_n)
{
    sqlite3_stmt *s;
    int rc = 0, n = 0;

    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((s = stmt(st, S_TODO_REQUEUE, &rc)) == NULL ||
        (rc = exec_step(st, s, &n)) != 0)
        goto err1;
    if ((s = stmt(st, S_TODO_CLAMP_LAST, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, now);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    if ((s = stmt(st, S_TODO_CLAMP_FIRST, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, now);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    if ((rc = group_commit(st)) != 0)
        goto err0;
    pthread_mutex_unlock(&st->lock);
    if (out_n != NULL)
        *out_n = n;

    /* Success! */
    return 0;

err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_todo_count(struct agent_state *st, struct agent_todo_counts *out)
{
    sqlite3_stmt *s;
    int rc = 0, r;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_TODO_COUNT, &rc)) != NULL) {
        r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            out->total = sqlite3_column_int64(s, 0);
            out->inflight = sqlite3_column_int64(s, 1);
            out->rescans = sqlite3_column_int64(s, 2);
        } else {
            rc = sq_err(st, sqlite3_extended_errcode(st->db));
        }
        done(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_state_commit_snapshot(struct agent_state *st, int64_t batch_id,
                                const char *snapshot_id, int64_t time)
{
    int rc;

    if (snapshot_id == NULL || snapshot_id[0] == '\0')
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((rc = kv_set_locked(st, AGENT_KV_LAST_SNAPSHOT, snapshot_id)) != 0 ||
        (rc = kv_set_int_locked(st, AGENT_KV_LAST_BACKUP, time)) != 0 ||
        (rc = todo_done_locked(st, batch_id)) != 0)
        goto err1;
    if ((rc = group_commit(st)) != 0)
        goto err0;
    pthread_mutex_unlock(&st->lock);

    /* Success! */
    return 0;

err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- the run log ---- */

int agent_run_start(struct agent_state *st, int64_t start, int64_t *out_id)
{
    sqlite3_stmt *s;
    int64_t id;
    int rc = 0;

    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((s = stmt(st, S_RUN_ADD, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, start);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    id = sqlite3_last_insert_rowid(st->db);
    if ((s = stmt(st, S_RUN_TRIM, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, id - AGENT_STATE_RUNS_MAX);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    if ((rc = group_commit(st)) != 0)
        goto err0;
    pthread_mutex_unlock(&st->lock);
    *out_id = id;

    /* Success! */
    return 0;

err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_run_end(struct agent_state *st, const struct agent_run *r)
{
    sqlite3_stmt *s;
    int rc = 0, n = 0;

    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_RUN_END, &rc)) != NULL) {
        sqlite3_bind_int64(s, 1, r->id);
        sqlite3_bind_int64(s, 2, r->end);
        sqlite3_bind_int64(s, 3, r->files);
        sqlite3_bind_int64(s, 4, r->bytes);
        sqlite3_bind_int64(s, 5, r->errors);
        sqlite3_bind_int(s, 6, r->complete != 0);
        if ((rc = exec_step(st, s, &n)) == 0 && n == 0)
            rc = CAIRN_ENOENT;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Up to limit runs (0: all), newest first, copied into *out. */
static int runs_read(struct agent_state *st, size_t limit,
                     struct agent_run **out, size_t *out_n)
{
    struct agent_run *v = NULL, *nv;
    sqlite3_stmt *s;
    size_t n = 0, cap = 0;
    int rc = 0, r;

    *out = NULL;
    *out_n = 0;
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_RUN_LIST, &rc)) == NULL)
        goto err0;
    sqlite3_bind_int64(s, 1, limit == 0 ? -1 : (sqlite3_int64)limit);
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                rc = CAIRN_ENOMEM;
                goto err1;
            }
            v = nv;
        }
        v[n].id = sqlite3_column_int64(s, 0);
        v[n].start = sqlite3_column_int64(s, 1);
        v[n].end = sqlite3_column_int64(s, 2);
        v[n].files = sqlite3_column_int64(s, 3);
        v[n].bytes = sqlite3_column_int64(s, 4);
        v[n].errors = sqlite3_column_int64(s, 5);
        v[n].complete = sqlite3_column_int(s, 6);
        n++;
    }
    if (r != SQLITE_DONE) {
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
        goto err1;
    }
    done(s);
    pthread_mutex_unlock(&st->lock);
    *out = v;
    *out_n = n;

    /* Success! */
    return 0;

err1:
    done(s);
    free(v);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_run_last(struct agent_state *st, struct agent_run *out)
{
    struct agent_run *v;
    size_t n;
    int rc;

    if ((rc = runs_read(st, 1, &v, &n)) != 0)
        return rc;
    if (n == 0)
        rc = CAIRN_ENOENT;
    else
        *out = v[0];
    free(v);
    return rc;
}

int agent_run_list(struct agent_state *st, size_t limit, agent_run_fn fn,
                   void *arg)
{
    struct agent_run *v;
    size_t n, i;
    int rc;

    if ((rc = runs_read(st, limit, &v, &n)) != 0)
        return rc;
    for (i = 0; i < n && rc == 0; i++)
        rc = fn(arg, &v[i]);
    free(v);
    return rc;
}

/* ---- recent file errors ---- */

int agent_error_add(struct agent_state *st, const char *path,
                    const char *reason, int64_t time)
{
    sqlite3_stmt *s;
    int64_t id;
    int rc = 0;

    if (path == NULL || reason == NULL || strlen(path) > AGENT_STATE_PATH_MAX)
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    if ((rc = group_begin(st)) != 0)
        goto err0;
    if ((s = stmt(st, S_ERR_ADD, &rc)) == NULL)
        goto err1;
    sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, reason, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, time);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    id = sqlite3_last_insert_rowid(st->db);
    if ((s = stmt(st, S_ERR_TRIM, &rc)) == NULL)
        goto err1;
    sqlite3_bind_int64(s, 1, id - AGENT_STATE_ERRORS_MAX);
    if ((rc = exec_step(st, s, NULL)) != 0)
        goto err1;
    if ((rc = group_commit(st)) != 0)
        goto err0;
    pthread_mutex_unlock(&st->lock);

    /* Success! */
    return 0;

err1:
    group_rollback(st);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

struct err_row {
    int64_t id, time;
    char *path, *reason;
};

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    char *p;

    if ((p = malloc(n + 1)) == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, t, n);
    p[n] = '\0';
    return p;
}

static void err_rows_free(struct err_row *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(v[i].path);
        free(v[i].reason);
    }
    free(v);
}

int agent_error_list(struct agent_state *st, size_t limit, agent_error_fn fn,
                     void *arg)
{
    struct agent_file_error e;
    struct err_row *v = NULL, *nv;
    sqlite3_stmt *s;
    size_t n = 0, cap = 0, i;
    int rc = 0, r;

    /* Copy the rows out (at most AGENT_STATE_ERRORS_MAX), so fn runs
     * without the lock and may call st. */
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_ERR_LIST, &rc)) == NULL)
        goto err0;
    sqlite3_bind_int64(s, 1, limit == 0 ? -1 : (sqlite3_int64)limit);
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
                rc = CAIRN_ENOMEM;
                goto err1;
            }
            v = nv;
        }
        v[n].id = sqlite3_column_int64(s, 0);
        v[n].time = sqlite3_column_int64(s, 3);
        v[n].path = col_dup(s, 1);
        v[n].reason = col_dup(s, 2);
        n++;
        if (v[n - 1].path == NULL || v[n - 1].reason == NULL) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
    }
    if (r != SQLITE_DONE) {
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
        goto err1;
    }
    done(s);
    pthread_mutex_unlock(&st->lock);
    for (i = 0; i < n && rc == 0; i++) {
        e.id = v[i].id;
        e.path = v[i].path;
        e.reason = v[i].reason;
        e.time = v[i].time;
        rc = fn(arg, &e);
    }
    err_rows_free(v, n);
    return rc;

err1:
    done(s);
    err_rows_free(v, n);
err0:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_error_count(struct agent_state *st, int64_t *out)
{
    sqlite3_stmt *s;
    int rc = 0;

    *out = 0;
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_ERR_COUNT, &rc)) != NULL) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *out = sqlite3_column_int64(s, 0);
        else
            rc = sq_err(st, sqlite3_extended_errcode(st->db));
        done(s);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_error_clear(struct agent_state *st)
{
    sqlite3_stmt *s;
    int rc = 0;

    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_ERR_CLEAR, &rc)) != NULL)
        rc = exec_step(st, s, NULL);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_error_clear_path(struct agent_state *st, const char *path)
{
    sqlite3_stmt *s;
    int rc = 0;

    if (path == NULL)
        return CAIRN_EINVAL;
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_ERR_CLEAR_PATH, &rc)) != NULL) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
        rc = exec_step(st, s, NULL);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* ---- the object cache ---- */

int agent_cache_get(struct agent_state *st, int type, const char *name,
                    uint8_t **out, size_t *out_len)
{
    sqlite3_stmt *s;
    const void *b;
    size_t n;
    int rc = 0, r;

    *out = NULL;
    *out_len = 0;
    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_CACHE_GET, &rc)) == NULL)
        goto out;
    sqlite3_bind_int(s, 1, type);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        b = sqlite3_column_blob(s, 0);
        n = (size_t)sqlite3_column_bytes(s, 0);
        if ((*out = malloc(n ? n : 1)) == NULL)
            rc = CAIRN_ENOMEM;
        else {
            if (n > 0)
                memcpy(*out, b, n);
            *out_len = n;
        }
    } else if (r == SQLITE_DONE) {
        rc = CAIRN_ENOENT;
    } else {
        rc = sq_err(st, sqlite3_extended_errcode(st->db));
    }
    done(s);
out:
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_cache_put(struct agent_state *st, int type, const char *name,
                    const uint8_t *buf, size_t len)
{
    sqlite3_stmt *s;
    int rc = 0;

    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_CACHE_PUT, &rc)) != NULL) {
        sqlite3_bind_int(s, 1, type);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
        /* STATIC: buf outlives the step (no copy of a large object). */
        sqlite3_bind_blob64(s, 3, len ? buf : (const void *)"", len,
                            SQLITE_STATIC);
        rc = exec_step(st, s, NULL);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

int agent_cache_drop(struct agent_state *st, int type, const char *name)
{
    sqlite3_stmt *s;
    int rc = 0;

    pthread_mutex_lock(&st->lock);
    if ((s = stmt(st, S_CACHE_DEL, &rc)) != NULL) {
        sqlite3_bind_int(s, 1, type);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
        rc = exec_step(st, s, NULL);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}
