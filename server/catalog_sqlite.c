/*
 * catalog_sqlite.c - the catalog (catalog.h) on SQLite, the embedded
 * default.
 *
 * One connection, guarded by one recursive mutex: simple and correct.
 * SQLite serialises writers anyway, and every statement here is a short
 * indexed lookup, so the lock is held for microseconds.  catalog_begin
 * takes the mutex and keeps it until catalog_commit or catalog_rollback,
 * so no other thread's statement can slip into a transaction; the
 * recursive mutex lets the transaction's own thread keep calling the
 * catalog.  The connection uses WAL (readers do not block the writer of
 * another process, e.g. a backup tool), foreign keys and a busy timeout.
 *
 * Statements are prepared once, on first use, and kept (stmt_sql[]).
 * List functions copy the rows out before calling back, so a callback
 * runs without the lock and may call the catalog itself.
 *
 * Schema: migrations[i] takes the schema from version i to i + 1; each
 * runs in its own transaction with the version bump, in order, at open.
 * To change the schema, append an entry (never edit a released one).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "catalog.h"
#include "catalog_int.h"

#define BUSY_TIMEOUT_MS 10000
#define AUDIT_LIMIT_DEFAULT 1000

/* ---- schema ---- */

/* version 5 */
static const char *const cat_schema_next_backup =
    "ALTER TABLE devices ADD COLUMN next_backup INTEGER NOT NULL DEFAULT 0;";

static const char *const *const migrations[] = {
    /* version 1: the whole schema of cairnd 0.1 */
    &cat_schema_v1,
    /* version 2: restore requests (catalog_requests.c) */
    &cat_schema_requests,
    /* version 3: push restores (catalog_push.c) */
    &cat_schema_push,
    /* version 4: settings pushed to agents (catalog_settings.c) */
    &cat_schema_settings,
    /* version 5: when a device's agent will back up next */
    &cat_schema_next_backup,
};

const char *const cat_schema_v1 =
    "CREATE TABLE org ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  name TEXT NOT NULL,"
    "  escrow_public BLOB NOT NULL,"
    "  escrow_wrapped BLOB,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE departments ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  wave_start INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  display TEXT NOT NULL DEFAULT '',"
    "  dept_id INTEGER REFERENCES departments(id),"
    "  admin INTEGER NOT NULL DEFAULT 0,"
    "  pw_hash TEXT,"
    "  totp_secret TEXT NOT NULL DEFAULT '',"
    "  totp_last_step INTEGER NOT NULL DEFAULT 0,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  last_failure INTEGER NOT NULL DEFAULT 0,"
    "  locked_until INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE recovery_codes ("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  hash TEXT NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, hash));"
    "CREATE TABLE sessions ("
    "  hash TEXT PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  full INTEGER NOT NULL DEFAULT 0,"
    "  cookie INTEGER NOT NULL DEFAULT 0,"
    "  csrf TEXT NOT NULL DEFAULT '',"
    "  addr TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL);"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE TABLE addr_failures ("
    "  addr TEXT PRIMARY KEY,"
    "  failures INTEGER NOT NULL,"
    "  last_failure INTEGER NOT NULL);"
    "CREATE TABLE devices ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  category TEXT NOT NULL,"
    "  dept_id INTEGER REFERENCES departments(id),"
    "  owner_id INTEGER REFERENCES users(id),"
    "  token_hash TEXT NOT NULL,"
    "  archive_id BLOB NOT NULL,"
    "  wrap_escrow BLOB,"
    "  wrap_owner BLOB,"
    "  state TEXT NOT NULL,"
    "  replaced_by TEXT NOT NULL DEFAULT '',"
    "  enrolled_at INTEGER NOT NULL DEFAULT 0,"
    "  enrolled_by INTEGER NOT NULL DEFAULT 0,"
    "  last_activity INTEGER NOT NULL DEFAULT 0,"
    "  last_backup INTEGER NOT NULL DEFAULT 0,"
    "  first_backup INTEGER NOT NULL DEFAULT 0,"
    "  files_selected INTEGER NOT NULL DEFAULT 0,"
    "  bytes_selected INTEGER NOT NULL DEFAULT 0,"
    "  files_todo INTEGER NOT NULL DEFAULT 0,"
    "  bytes_todo INTEGER NOT NULL DEFAULT 0,"
    "  bytes_stored INTEGER NOT NULL DEFAULT 0,"
    "  phase TEXT NOT NULL DEFAULT '',"
    "  errors INTEGER NOT NULL DEFAULT 0,"
    "  legacy_cancelled_at INTEGER NOT NULL DEFAULT 0,"
    "  legacy_cancelled_by INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX devices_dept ON devices(dept_id);"
    "CREATE INDEX devices_owner ON devices(owner_id);"
    "CREATE TABLE snapshots ("
    "  device_id TEXT NOT NULL REFERENCES devices(id),"
    "  id TEXT NOT NULL,"
    "  time INTEGER NOT NULL,"
    "  complete INTEGER NOT NULL,"
    "  files INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  added_bytes INTEGER NOT NULL,"
    "  PRIMARY KEY (device_id, id));"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time INTEGER NOT NULL,"
    "  user_id INTEGER NOT NULL,"
    "  device_id TEXT NOT NULL,"
    "  addr TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  detail TEXT);"
    "CREATE INDEX audit_time ON audit(time);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;";
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- prepared statements ---- */

#define USER_COLS                                                              \
    "id, username, display, dept_id, admin, pw_hash, totp_secret, "            \
    "totp_last_step, disabled, failures, last_failure, locked_until, created"
#define DEV_COLS                                                               \
    "id, name, category, dept_id, owner_id, token_hash, archive_id, "          \
    "wrap_escrow, wrap_owner, state, replaced_by, enrolled_at, enrolled_by, "  \
    "last_activity, last_backup, first_backup, files_selected, "              \
    "bytes_selected, files_todo, bytes_todo, bytes_stored, phase, errors, "    \
    "legacy_cancelled_at, legacy_cancelled_by, next_backup"

enum stmt_id {
    S_ORG_ADD,
    S_ORG_GET,
    S_DEPT_ADD,
    S_DEPT_GET,
    S_DEPT_GET_ID,
    S_DEPT_WAVE,
    S_DEPT_LIST,
    S_USER_ADD,
    S_USER_GET,
    S_USER_GET_ID,
    S_USER_UPD,
    S_USER_LIST,
    S_REC_DEL,
    S_REC_ADD,
    S_REC_USE,
    S_REC_LEFT,
    S_SES_ADD,
    S_SES_GET,
    S_SES_TOUCH,
    S_SES_FULL,
    S_SES_DEL,
    S_SES_DEL_USER,
    S_SES_EXPIRE,
    S_ADDR_GET,
    S_ADDR_FAIL,
    S_ADDR_RESET,
    S_DEV_ADD,
    S_DEV_GET,
    S_DEV_UPD,
    S_DEV_LIST,
    S_SNAP_ADD,
    S_SNAP_LIST,
    S_AUDIT_ADD,
    S_AUDIT_LIST,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_ORG_ADD] = "INSERT INTO org (id, name, escrow_public, escrow_wrapped, "
                  "created) VALUES (1, ?1, ?2, ?3, ?4)",
    [S_ORG_GET] =
        "SELECT name, escrow_public, escrow_wrapped, created FROM org",
    [S_DEPT_ADD] = "INSERT INTO departments (name, wave_start) VALUES (?1, ?2)",
    [S_DEPT_GET] =
        "SELECT id, name, wave_start FROM departments WHERE name = ?1",
    [S_DEPT_GET_ID] =
        "SELECT id, name, wave_start FROM departments WHERE id = ?1",
    [S_DEPT_WAVE] = "UPDATE departments SET wave_start = ?2 WHERE name = ?1",
    [S_DEPT_LIST] = "SELECT id, name, wave_start FROM departments ORDER BY name",
    [S_USER_ADD] = "INSERT INTO users (username, display, dept_id, admin, "
                   "pw_hash, totp_secret, totp_last_step, disabled, failures, "
                   "last_failure, locked_until, created) VALUES (?1, ?2, ?3, "
                   "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_USER_GET] = "SELECT " USER_COLS " FROM users WHERE username = ?1",
    [S_USER_GET_ID] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [S_USER_UPD] = "UPDATE users SET display = ?2, dept_id = ?3, admin = ?4, "
                   "pw_hash = ?5, totp_secret = ?6, totp_last_step = ?7, "
                   "disabled = ?8, failures = ?9, last_failure = ?10, "
                   "locked_until = ?11 WHERE id = ?1",
    [S_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY username",
    [S_REC_DEL] = "DELETE FROM recovery_codes WHERE user_id = ?1",
    [S_REC_ADD] = "INSERT OR IGNORE INTO recovery_codes (user_id, hash) "
                  "VALUES (?1, ?2)",
    [S_REC_USE] = "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 "
                  "AND hash = ?2 AND used_at = 0",
    [S_REC_LEFT] = "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 "
                   "AND used_at = 0",
    [S_SES_ADD] = "INSERT INTO sessions (hash, user_id, full, cookie, csrf, "
                  "addr, created, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                  "?7, ?8)",
    [S_SES_GET] = "SELECT hash, user_id, full, cookie, csrf, addr, created, "
                  "last_seen FROM sessions WHERE hash = ?1",
    [S_SES_TOUCH] = "UPDATE sessions SET last_seen = ?2 WHERE hash = ?1",
    [S_SES_FULL] = "UPDATE sessions SET full = 1 WHERE hash = ?1",
    [S_SES_DEL] = "DELETE FROM sessions WHERE hash = ?1",
    [S_SES_DEL_USER] = "DELETE FROM sessions WHERE user_id = ?1",
    [S_SES_EXPIRE] = "DELETE FROM sessions WHERE last_seen < ?1 OR "
                     "created < ?2",
    [S_ADDR_GET] =
        "SELECT failures, last_failure FROM addr_failures WHERE addr = ?1",
    [S_ADDR_FAIL] = "INSERT INTO addr_failures (addr, failures, last_failure) "
                    "VALUES (?1, 1, ?2) ON CONFLICT (addr) DO UPDATE SET "
                    "failures = failures + 1, last_failure = excluded."
                    "last_failure",
    [S_ADDR_RESET] = "DELETE FROM addr_failures WHERE addr = ?1",
    [S_DEV_ADD] = "INSERT INTO devices (" DEV_COLS ") VALUES (?1, ?2, ?3, ?4, "
                  "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
                  "?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
    [S_DEV_GET] = "SELECT " DEV_COLS " FROM devices WHERE id = ?1",
    [S_DEV_UPD] = "UPDATE devices SET name = ?2, category = ?3, dept_id = ?4, "
                  "owner_id = ?5, token_hash = ?6, archive_id = ?7, "
                  "wrap_escrow = ?8, wrap_owner = ?9, state = ?10, "
                  "replaced_by = ?11, enrolled_at = ?12, enrolled_by = ?13, "
                  "last_activity = ?14, last_backup = ?15, first_backup = ?16, "
                  "files_selected = ?17, bytes_selected = ?18, files_todo = "
                  "?19, bytes_todo = ?20, bytes_stored = ?21, phase = ?22, "
                  "errors = ?23, legacy_cancelled_at = ?24, "
                  "legacy_cancelled_by = ?25, next_backup = ?26 WHERE id = ?1",
    [S_DEV_LIST] = "SELECT " DEV_COLS " FROM devices WHERE (?1 = 0 OR "
                   "dept_id = ?1) AND (?2 IS NULL OR category = ?2) AND "
                   "(?3 = 0 OR owner_id = ?3) AND (?4 = 0 OR state = "
                   "'active') ORDER BY enrolled_at, id",
    [S_SNAP_ADD] = "INSERT INTO snapshots (device_id, id, time, complete, "
                   "files, bytes, added_bytes) VALUES (?1, ?2, ?3, ?4, ?5, "
                   "?6, ?7)",
    [S_SNAP_LIST] = "SELECT device_id, id, time, complete, files, bytes, "
                    "added_bytes FROM snapshots WHERE device_id = ?1 "
                    "ORDER BY time, id",
    [S_AUDIT_ADD] = "INSERT INTO audit (time, user_id, device_id, addr, "
                    "action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, "
                    "?6, ?7)",
    /* The newest `limit` entries that match, oldest first. */
    [S_AUDIT_LIST] = "SELECT * FROM (SELECT id, time, user_id, device_id, "
                     "addr, action, target, detail FROM audit WHERE (?1 = 0 "
                     "OR time >= ?1) AND (?2 = 0 OR time <= ?2) AND (?3 = 0 "
                     "OR user_id = ?3) AND (?4 IS NULL OR action = ?4) AND "
                     "(?5 IS NULL OR device_id = ?5) ORDER BY id DESC LIMIT "
                     "?6) ORDER BY id",
};

_Static_assert(S_COUNT <= CAT_STMT_MAX, "raise CAT_STMT_MAX");

/* Map an SQLite result to a cairn_err, logging database failures. */
int cat_sq_err(struct catalog *c, int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return CAIRN_EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return CAIRN_ENOENT;
    case SQLITE_NOMEM:
        return CAIRN_ENOMEM;
    case SQLITE_FULL:
        return CAIRN_ENOSPC;
    default:
        cairn_log(CAIRN_LOG_ERROR, "catalog: %s (%d)",
                  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), rc);
        return CAIRN_EIO;
    }
}

void cat_lock(struct catalog *c)
{
    pthread_mutex_lock(&c->lock);
}

void cat_unlock(struct catalog *c)
{
    pthread_mutex_unlock(&c->lock);
}

/* The statement id, prepared on first use; NULL on error (*rc set). */
static sqlite3_stmt *stmt(struct catalog *c, enum stmt_id id, int *rc)
{
    int r;

    if (c->st[id] == NULL) {
        r = sqlite3_prepare_v3(c->db, stmt_sql[id], -1,
                               SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (r != SQLITE_OK) {
            *rc = cat_sq_err(c, r);
            c->st[id] = NULL;
            return NULL;
        }
    }
    return c->st[id];
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

void cat_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (p == NULL)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_TRANSIENT);
}

/* Bind an id that is 0 for "none" as NULL (foreign keys). */
static void bind_ref(sqlite3_stmt *st, int i, int64_t v)
{
    if (v == 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* Copy column i into a fixed buffer (truncating; always NUL-ended). */
void cat_col_text(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n;

    out[0] = '\0';
    if (t == NULL)
        return;
    n = (size_t)sqlite3_column_bytes(st, i);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, t, n);
    out[n] = '\0';
}

int cat_col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;

    if ((*out = malloc(n + 1)) == NULL)
        return CAIRN_ENOMEM;
    if (n > 0)
        memcpy(*out, t, n);
    (*out)[n] = '\0';
    return 0;
}

sqlite3_stmt *cat_prepare(struct catalog *c, const char *sql, int *rc)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        *rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Column i as a malloc'ed string (NULL for SQL NULL); ENOMEM. */
static int col_strdup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n;

    *out = NULL;
    if (t == NULL)
        return 0;
    n = (size_t)sqlite3_column_bytes(st, i);
    if ((*out = malloc(n + 1)) == NULL)
        return CAIRN_ENOMEM;
    memcpy(*out, t, n);
    (*out)[n] = '\0';
    return 0;
}

/* Column i as a malloc'ed blob (NULL, 0 for SQL NULL); ENOMEM. */
static int col_blobdup(sqlite3_stmt *st, int i, uint8_t **out, size_t *len)
{
    const void *p;
    size_t n;

    *out = NULL;
    *len = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    p = sqlite3_column_blob(st, i);
    n = (size_t)sqlite3_column_bytes(st, i);
    if ((*out = malloc(n ? n : 1)) == NULL)
        return CAIRN_ENOMEM;
    if (n)
        memcpy(*out, p, n);
    *len = n;
    return 0;
}

/* Column i into a fixed-size byte field (zero-filled when shorter). */
static void col_fixed(sqlite3_stmt *st, int i, uint8_t *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, i);
    size_t have = (size_t)sqlite3_column_bytes(st, i);

    memset(out, 0, n);
    if (p != NULL)
        memcpy(out, p, have < n ? have : n);
}

/* Run a statement that returns no rows; *changes (if not NULL) the rows
 * changed.  The caller holds the lock. */
static int exec_step(struct catalog *c, sqlite3_stmt *st, int *changes)
{
    int r = sqlite3_step(st);
    int rc = 0;

    if (r != SQLITE_DONE && r != SQLITE_ROW)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    else if (changes)
        *changes = sqlite3_changes(c->db);
    done(st);
    return rc;
}

static int exec_sql(struct catalog *c, const char *sql)
{
    int r = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

    return r == SQLITE_OK ? 0 : cat_sq_err(c, sqlite3_extended_errcode(c->db));
}

/* ---- open, close, migrate ---- */

static int read_version(struct catalog *c, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;

    *out = 0;
    if (sqlite3_prepare_v2(c->db, "SELECT version FROM schema_version", -1,
                           &st, NULL) != SQLITE_OK)
        return cat_sq_err(c, sqlite3_extended_errcode(c->db));
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else if (sqlite3_errcode(c->db) != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct catalog *c)
{
    sqlite3_stmt *st = NULL;
    int v, rc;

    if ((rc = exec_sql(c, "CREATE TABLE IF NOT EXISTS schema_version "
                          "(version INTEGER NOT NULL)")) != 0)
        goto err0;
    if ((rc = read_version(c, &v)) != 0)
        goto err0;
    if (v > SCHEMA_VERSION) {
        cairn_log(CAIRN_LOG_ERROR,
                  "catalog: schema version %d is newer than this cairnd "
                  "knows (%d)",
                  v, SCHEMA_VERSION);
        rc = CAIRN_EVERSION;
        goto err0;
    }
    for (; v < SCHEMA_VERSION; v++) {
        if ((rc = exec_sql(c, "BEGIN IMMEDIATE")) != 0)
            goto err0;
        if ((rc = exec_sql(c, *migrations[v])) != 0)
            goto err1;
        if (sqlite3_prepare_v2(c->db,
                               v == 0 ? "INSERT INTO schema_version VALUES (?1)"
                                      : "UPDATE schema_version SET version = ?1",
                               -1, &st, NULL) != SQLITE_OK) {
            rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
            goto err1;
        }
        sqlite3_bind_int(st, 1, v + 1);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
            goto err2;
        }
        sqlite3_finalize(st);
        st = NULL;
        if ((rc = exec_sql(c, "COMMIT")) != 0)
            goto err1;
        cairn_log(CAIRN_LOG_INFO, "catalog: schema migrated to version %d",
                  v + 1);
    }
    c->version = v;

    /* Success! */
    return 0;

err2:
    sqlite3_finalize(st);
err1:
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
err0:
    return rc;
}

/*
 * Open the SQLite catalog at path (created if missing), with WAL, foreign
 * keys and a busy timeout, and migrate its schema to the current version.
 * CAIRN_EVERSION if the file's schema is newer than this build; CAIRN_EIO
 * if it cannot be opened.  *out freed with catalog_close.
 */
int catalog_open_sqlite(const char *path, struct catalog **out)
{
    struct catalog *c;
    pthread_mutexattr_t ma;
    int rc;

    if ((c = calloc(1, sizeof(*c))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&c->lock, &ma);
    pthread_mutexattr_destroy(&ma);

    if (sqlite3_open_v2(path, &c->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        cairn_log(CAIRN_LOG_ERROR, "catalog: cannot open %s: %s", path,
                  c->db ? sqlite3_errmsg(c->db) : "out of memory");
        rc = CAIRN_EIO;
        goto err1;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if ((rc = exec_sql(c, "PRAGMA journal_mode = WAL;"
                          "PRAGMA synchronous = FULL;"
                          "PRAGMA foreign_keys = ON;")) != 0)
        goto err1;
    if ((rc = migrate(c)) != 0)
        goto err1;

    *out = c;

    /* Success! */
    return 0;

err1:
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->lock);
    free(c);
err0:
    return rc;
}

/* Close the catalog (finalising its statements).  NULL is fine. */
void catalog_close(struct catalog *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < S_COUNT; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* The schema version in use (after migration: the current one). */
int catalog_schema_version(struct catalog *c)
{
    return c->version;
}

/*
 * Begin a transaction.  The calling thread holds the catalog until
 * catalog_commit or catalog_rollback; other threads' calls wait.  Not
 * nested: CAIRN_EINVAL if this thread already holds a transaction.
 */
int catalog_begin(struct catalog *c)
{
    int rc;

    cat_lock(c);
    if (c->in_tx) {
        cat_unlock(c);
        return CAIRN_EINVAL;
    }
    if ((rc = exec_sql(c, "BEGIN IMMEDIATE")) != 0) {
        cat_unlock(c);
        return rc;
    }
    c->in_tx = 1;
    return 0;
}

/* Commit the transaction and release the catalog.  On failure the
 * transaction is rolled back and the catalog released all the same. */
int catalog_commit(struct catalog *c)
{
    int rc;

    if (!c->in_tx)
        return CAIRN_EINVAL;
    if ((rc = exec_sql(c, "COMMIT")) != 0)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    c->in_tx = 0;
    cat_unlock(c);
    return rc;
}

/* Roll the transaction back and release the catalog. */
void catalog_rollback(struct catalog *c)
{
    if (!c->in_tx)
        return;
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    c->in_tx = 0;
    cat_unlock(c);
}

/* ---- organisation ---- */

/* Create the organisation (there is one).  CAIRN_EEXIST if it exists. */
int cat_org_create(struct catalog *c, const struct cat_org *o)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_ORG_ADD, &rc)) == NULL)
        goto out;
    cat_bind_text(st, 1, o->name);
    bind_blob(st, 2, o->escrow_public, sizeof(o->escrow_public));
    bind_blob(st, 3, o->escrow_wrapped, o->escrow_wrapped_len);
    sqlite3_bind_int64(st, 4, o->created);
    rc = exec_step(c, st, NULL);
out:
    cat_unlock(c);
    return rc;
}

/* Read the organisation.  CAIRN_ENOENT before cairnd init. */
int cat_org_get(struct catalog *c, struct cat_org *out)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_ORG_GET, &rc)) == NULL)
        goto out;
    if ((r = sqlite3_step(st)) == SQLITE_ROW) {
        cat_col_text(st, 0, out->name, sizeof(out->name));
        col_fixed(st, 1, out->escrow_public, sizeof(out->escrow_public));
        rc = col_blobdup(st, 2, &out->escrow_wrapped, &out->escrow_wrapped_len);
        out->created = sqlite3_column_int64(st, 3);
    } else if (r == SQLITE_DONE) {
        rc = CAIRN_ENOENT;
    } else {
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    }
    done(st);
out:
    cat_unlock(c);
    return rc;
}

/* Free what cat_org_get allocated.  NULL is fine. */
void cat_org_clear(struct cat_org *o)
{
    if (o == NULL)
        return;
    free(o->escrow_wrapped);
    o->escrow_wrapped = NULL;
    o->escrow_wrapped_len = 0;
}

/* ---- departments ---- */

/* Add a department; *out_id (may be NULL) its id.  CAIRN_EEXIST if the
 * name is taken. */
int cat_dept_add(struct catalog *c, const char *name, int64_t wave_start,
                 int64_t *out_id)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_DEPT_ADD, &rc)) == NULL)
        goto out;
    cat_bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, wave_start);
    if ((rc = exec_step(c, st, NULL)) == 0 && out_id != NULL)
        *out_id = sqlite3_last_insert_rowid(c->db);
out:
    cat_unlock(c);
    return rc;
}

static void row_dept(sqlite3_stmt *st, struct cat_dept *d)
{
    d->id = sqlite3_column_int64(st, 0);
    cat_col_text(st, 1, d->name, sizeof(d->name));
    d->wave_start = sqlite3_column_int64(st, 2);
}

/* Run a statement expected to give one row, read by fn; ENOENT if none.
 * The caller holds the lock and has bound the parameters. */
static int get_one(struct catalog *c, sqlite3_stmt *st,
                   int (*fn)(sqlite3_stmt *, void *), void *out)
{
    int r, rc = 0;

    if ((r = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(st, out);
    else if (r == SQLITE_DONE)
        rc = CAIRN_ENOENT;
    else
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    done(st);
    return rc;
}

static int get_dept(sqlite3_stmt *st, void *out)
{
    row_dept(st, out);
    return 0;
}

/* A department by name.  CAIRN_ENOENT if none. */
int cat_dept_get(struct catalog *c, const char *name, struct cat_dept *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_DEPT_GET, &rc)) != NULL) {
        cat_bind_text(st, 1, name);
        rc = get_one(c, st, get_dept, out);
    }
    cat_unlock(c);
    return rc;
}

/* A department by id.  CAIRN_ENOENT if none. */
int cat_dept_get_id(struct catalog *c, int64_t id, struct cat_dept *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_DEPT_GET_ID, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, id);
        rc = get_one(c, st, get_dept, out);
    }
    cat_unlock(c);
    return rc;
}

/* Set a department's wave start (0: none).  CAIRN_ENOENT if no such. */
int cat_dept_set_wave(struct catalog *c, const char *name, int64_t wave_start)
{
    sqlite3_stmt *st;
    int rc = 0, n = 0;

    cat_lock(c);
    if ((st = stmt(c, S_DEPT_WAVE, &rc)) != NULL) {
        cat_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, wave_start);
        if ((rc = exec_step(c, st, &n)) == 0 && n == 0)
            rc = CAIRN_ENOENT;
    }
    cat_unlock(c);
    return rc;
}

/*
 * Rows of a list, copied out so callbacks run without the lock.  read
 * copies one row into an element of esize bytes; clear frees one.
 */
struct rows {
    uint8_t *v;
    size_t n, cap, esize;
};

static int rows_collect(struct catalog *c, sqlite3_stmt *st, struct rows *rs,
                        int (*read)(sqlite3_stmt *, void *))
{
    int r, rc = 0;
    void *p;

    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (rs->n == rs->cap) {
            size_t nc = rs->cap ? rs->cap * 2 : 16;
            if ((p = realloc(rs->v, nc * rs->esize)) == NULL) {
                rc = CAIRN_ENOMEM;
                goto out;
            }
            rs->v = p;
            rs->cap = nc;
        }
        p = rs->v + rs->n * rs->esize;
        memset(p, 0, rs->esize);
        if ((rc = read(st, p)) != 0)
            goto out;
        rs->n++;
    }
    if (r != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
out:
    done(st);
    return rc;
}

/* Call fn on each row, stop at the first non-zero result; free rows. */
static int rows_deliver(struct rows *rs, int (*fn)(void *, const void *),
                        void *arg, void (*clear)(void *), int rc)
{
    size_t i;

    for (i = 0; i < rs->n; i++) {
        void *p = rs->v + i * rs->esize;
        if (rc == 0)
            rc = fn(arg, p);
        if (clear)
            clear(p);
    }
    free(rs->v);
    return rc;
}

struct dept_cb {
    cat_dept_fn fn;
    void *arg;
};
static int dept_deliver(void *arg, const void *row)
{
    struct dept_cb *cb = arg;
    return cb->fn(cb->arg, row);
}

/* Call fn on every department, by name; stops at (and returns) the first
 * non-zero result of fn.  fn may call the catalog. */
int cat_dept_list(struct catalog *c, cat_dept_fn fn, void *arg)
{
    struct rows rs = {.esize = sizeof(struct cat_dept)};
    struct dept_cb cb = {fn, arg};
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_DEPT_LIST, &rc)) != NULL)
        rc = rows_collect(c, st, &rs, get_dept);
    cat_unlock(c);
    return rows_deliver(&rs, dept_deliver, &cb, NULL, rc);
}

/* ---- users ---- */

static int get_user(sqlite3_stmt *st, void *out)
{
    struct cat_user *u = out;

    u->id = sqlite3_column_int64(st, 0);
    cat_col_text(st, 1, u->username, sizeof(u->username));
    cat_col_text(st, 2, u->display, sizeof(u->display));
    u->dept_id = sqlite3_column_int64(st, 3);
    u->admin = sqlite3_column_int(st, 4);
    cat_col_text(st, 6, u->totp_secret, sizeof(u->totp_secret));
    u->totp_last_step = sqlite3_column_int64(st, 7);
    u->disabled = sqlite3_column_int(st, 8);
    u->failures = sqlite3_column_int(st, 9);
    u->last_failure = sqlite3_column_int64(st, 10);
    u->locked_until = sqlite3_column_int64(st, 11);
    u->created = sqlite3_column_int64(st, 12);
    return col_strdup(st, 5, &u->pw_hash);
}

static void bind_user(sqlite3_stmt *st, const struct cat_user *u)
{
    cat_bind_text(st, 2, u->display);
    bind_ref(st, 3, u->dept_id);
    sqlite3_bind_int(st, 4, u->admin ? 1 : 0);
    cat_bind_text(st, 5, u->pw_hash);
    cat_bind_text(st, 6, u->totp_secret);
    sqlite3_bind_int64(st, 7, u->totp_last_step);
    sqlite3_bind_int(st, 8, u->disabled ? 1 : 0);
    sqlite3_bind_int(st, 9, u->failures);
    sqlite3_bind_int64(st, 10, u->last_failure);
    sqlite3_bind_int64(st, 11, u->locked_until);
}

/*
 * Add a user (all fields but id; dept_id 0 for none) and set u->id.
 * CAIRN_EEXIST if the username is taken, CAIRN_ENOENT if dept_id names no
 * department.
 */
int cat_user_add(struct catalog *c, struct cat_user *u)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_USER_ADD, &rc)) == NULL)
        goto out;
    cat_bind_text(st, 1, u->username);
    bind_user(st, u);
    sqlite3_bind_int64(st, 12, u->created);
    if ((rc = exec_step(c, st, NULL)) == 0)
        u->id = sqlite3_last_insert_rowid(c->db);
out:
    cat_unlock(c);
    return rc;
}

/* A user by name.  CAIRN_ENOENT if none.  Clear *out with cat_user_clear. */
int cat_user_get(struct catalog *c, const char *username,
                 struct cat_user *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_USER_GET, &rc)) != NULL) {
        cat_bind_text(st, 1, username);
        rc = get_one(c, st, get_user, out);
    }
    cat_unlock(c);
    if (rc != 0)
        cat_user_clear(out);
    return rc;
}

/* A user by id.  CAIRN_ENOENT if none.  Clear *out with cat_user_clear. */
int cat_user_get_id(struct catalog *c, int64_t id, struct cat_user *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_USER_GET_ID, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, id);
        rc = get_one(c, st, get_user, out);
    }
    cat_unlock(c);
    if (rc != 0)
        cat_user_clear(out);
    return rc;
}

/* Write every mutable field of u (by u->id).  CAIRN_ENOENT if no such
 * user (or department). */
int cat_user_update(struct catalog *c, const struct cat_user *u)
{
    sqlite3_stmt *st;
    int rc = 0, n = 0;

    cat_lock(c);
    if ((st = stmt(c, S_USER_UPD, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, u->id);
        bind_user(st, u);
        if ((rc = exec_step(c, st, &n)) == 0 && n == 0)
            rc = CAIRN_ENOENT;
    }
    cat_unlock(c);
    return rc;
}

/* Free and wipe what cat_user_get allocated.  NULL is fine. */
void cat_user_clear(struct cat_user *u)
{
    if (u == NULL)
        return;
    if (u->pw_hash != NULL) {
        cairn_wipe(u->pw_hash, strlen(u->pw_hash));
        free(u->pw_hash);
        u->pw_hash = NULL;
    }
    cairn_wipe(u->totp_secret, sizeof(u->totp_secret));
}

static void user_clear_row(void *p)
{
    cat_user_clear(p);
}

struct user_cb {
    cat_user_fn fn;
    void *arg;
};
static int user_deliver(void *arg, const void *row)
{
    struct user_cb *cb = arg;
    return cb->fn(cb->arg, row);
}

/* Call fn on every user, by username; stops at the first non-zero result
 * of fn (returned).  The struct is valid during the call only. */
int cat_user_list(struct catalog *c, cat_user_fn fn, void *arg)
{
    struct rows rs = {.esize = sizeof(struct cat_user)};
    struct user_cb cb = {fn, arg};
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_USER_LIST, &rc)) != NULL)
        rc = rows_collect(c, st, &rs, get_user);
    cat_unlock(c);
    return rows_deliver(&rs, user_deliver, &cb, user_clear_row, rc);
}

/* ---- recovery codes ---- */

/* Replace the user's recovery codes by these n hashes (atomically). */
int cat_recovery_set(struct catalog *c, int64_t user_id,
                     const char (*hashes)[65], int n)
{
    sqlite3_stmt *st;
    int rc = 0, i;

    cat_lock(c);
    if ((rc = exec_sql(c, "SAVEPOINT recovery_set")) != 0)
        goto out;
    if ((st = stmt(c, S_REC_DEL, &rc)) == NULL)
        goto fail;
    sqlite3_bind_int64(st, 1, user_id);
    if ((rc = exec_step(c, st, NULL)) != 0)
        goto fail;
    for (i = 0; i < n; i++) {
        if ((st = stmt(c, S_REC_ADD, &rc)) == NULL)
            goto fail;
        sqlite3_bind_int64(st, 1, user_id);
        cat_bind_text(st, 2, hashes[i]);
        if ((rc = exec_step(c, st, NULL)) != 0)
            goto fail;
    }
    rc = exec_sql(c, "RELEASE recovery_set");
    goto out;
fail:
    sqlite3_exec(c->db, "ROLLBACK TO recovery_set; RELEASE recovery_set",
                 NULL, NULL, NULL);
out:
    cat_unlock(c);
    return rc;
}

/* Mark the unused code with this hash used; CAIRN_ENOENT if none (a wrong
 * or already used code).  Atomic: of two concurrent uses one wins. */
int cat_recovery_use(struct catalog *c, int64_t user_id, const char *hash)
{
    sqlite3_stmt *st;
    int rc = 0, n = 0;

    cat_lock(c);
    if ((st = stmt(c, S_REC_USE, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, user_id);
        cat_bind_text(st, 2, hash);
        sqlite3_bind_int64(st, 3, 1 + (int64_t)time(NULL));
        if ((rc = exec_step(c, st, &n)) == 0 && n == 0)
            rc = CAIRN_ENOENT;
    }
    cat_unlock(c);
    return rc;
}

/* The number of unused recovery codes of the user. */
int cat_recovery_left(struct catalog *c, int64_t user_id, int *out_n)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    *out_n = 0;
    cat_lock(c);
    if ((st = stmt(c, S_REC_LEFT, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, user_id);
        if ((r = sqlite3_step(st)) == SQLITE_ROW)
            *out_n = sqlite3_column_int(st, 0);
        else
            rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        done(st);
    }
    cat_unlock(c);
    return rc;
}

/* ---- sessions ---- */

/* Add a session.  CAIRN_EEXIST if the hash exists, CAIRN_ENOENT if the
 * user does not. */
int cat_session_add(struct catalog *c, const struct cat_session *s)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_SES_ADD, &rc)) != NULL) {
        cat_bind_text(st, 1, s->hash);
        sqlite3_bind_int64(st, 2, s->user_id);
        sqlite3_bind_int(st, 3, s->full ? 1 : 0);
        sqlite3_bind_int(st, 4, s->cookie ? 1 : 0);
        cat_bind_text(st, 5, s->csrf);
        cat_bind_text(st, 6, s->addr);
        sqlite3_bind_int64(st, 7, s->created);
        sqlite3_bind_int64(st, 8, s->last_seen);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

static int get_session(sqlite3_stmt *st, void *out)
{
    struct cat_session *s = out;

    cat_col_text(st, 0, s->hash, sizeof(s->hash));
    s->user_id = sqlite3_column_int64(st, 1);
    s->full = sqlite3_column_int(st, 2);
    s->cookie = sqlite3_column_int(st, 3);
    cat_col_text(st, 4, s->csrf, sizeof(s->csrf));
    cat_col_text(st, 5, s->addr, sizeof(s->addr));
    s->created = sqlite3_column_int64(st, 6);
    s->last_seen = sqlite3_column_int64(st, 7);
    return 0;
}

/* The session with this token hash.  CAIRN_ENOENT if none (expiry is the
 * caller's: see cat_session_expire). */
int cat_session_get(struct catalog *c, const char *hash,
                    struct cat_session *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_SES_GET, &rc)) != NULL) {
        cat_bind_text(st, 1, hash);
        rc = get_one(c, st, get_session, out);
    }
    cat_unlock(c);
    return rc;
}

/* Run a one-parameter (text) statement changing rows; ENOENT if none. */
static int change_text(struct catalog *c, enum stmt_id id, const char *t,
                       int64_t v, int want_row)
{
    sqlite3_stmt *st;
    int rc = 0, n = 0;

    cat_lock(c);
    if ((st = stmt(c, id, &rc)) != NULL) {
        cat_bind_text(st, 1, t);
        if (sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, v);
        if ((rc = exec_step(c, st, &n)) == 0 && n == 0 && want_row)
            rc = CAIRN_ENOENT;
    }
    cat_unlock(c);
    return rc;
}

/* Set the session's last_seen.  CAIRN_ENOENT if no such session. */
int cat_session_touch(struct catalog *c, const char *hash, int64_t now)
{
    return change_text(c, S_SES_TOUCH, hash, now, 1);
}

/* Mark the session full (TOTP given).  CAIRN_ENOENT if no such session. */
int cat_session_set_full(struct catalog *c, const char *hash)
{
    return change_text(c, S_SES_FULL, hash, 0, 1);
}

/* Delete the session (logout).  CAIRN_ENOENT if no such session. */
int cat_session_delete(struct catalog *c, const char *hash)
{
    return change_text(c, S_SES_DEL, hash, 0, 1);
}

/* Delete every session of the user (password change, disable). */
int cat_session_delete_user(struct catalog *c, int64_t user_id)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_SES_DEL_USER, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, user_id);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

/* Delete sessions last seen before idle_before or created before
 * created_before. */
int cat_session_expire(struct catalog *c, int64_t idle_before,
                       int64_t created_before)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_SES_EXPIRE, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, idle_before);
        sqlite3_bind_int64(st, 2, created_before);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

/* ---- failed logins per address ---- */

/* Failures and last failure of a client address (0, 0 if none). */
int cat_addr_get(struct catalog *c, const char *addr, int *out_failures,
                 int64_t *out_last)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    *out_failures = 0;
    *out_last = 0;
    cat_lock(c);
    if ((st = stmt(c, S_ADDR_GET, &rc)) != NULL) {
        cat_bind_text(st, 1, addr);
        if ((r = sqlite3_step(st)) == SQLITE_ROW) {
            *out_failures = sqlite3_column_int(st, 0);
            *out_last = sqlite3_column_int64(st, 1);
        } else if (r != SQLITE_DONE) {
            rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        }
        done(st);
    }
    cat_unlock(c);
    return rc;
}

/* Count one more failed login from addr at now. */
int cat_addr_fail(struct catalog *c, const char *addr, int64_t now)
{
    return change_text(c, S_ADDR_FAIL, addr, now, 0);
}

/* Forget the failures of addr (after a good login). */
int cat_addr_reset(struct catalog *c, const char *addr)
{
    return change_text(c, S_ADDR_RESET, addr, 0, 0);
}

/* ---- devices ---- */

static void bind_device(sqlite3_stmt *st, const struct cat_device *d)
{
    cat_bind_text(st, 1, d->id);
    cat_bind_text(st, 2, d->name);
    cat_bind_text(st, 3, d->category);
    bind_ref(st, 4, d->dept_id);
    bind_ref(st, 5, d->owner_id);
    cat_bind_text(st, 6, d->token_hash);
    bind_blob(st, 7, d->archive_id, sizeof(d->archive_id));
    bind_blob(st, 8, d->wrap_escrow, d->wrap_escrow_len);
    bind_blob(st, 9, d->wrap_owner, d->wrap_owner_len);
    cat_bind_text(st, 10, d->state);
    cat_bind_text(st, 11, d->replaced_by);
    sqlite3_bind_int64(st, 12, d->enrolled_at);
    sqlite3_bind_int64(st, 13, d->enrolled_by);
    sqlite3_bind_int64(st, 14, d->last_activity);
    sqlite3_bind_int64(st, 15, d->last_backup);
    sqlite3_bind_int64(st, 16, d->first_backup);
    sqlite3_bind_int64(st, 17, d->files_selected);
    sqlite3_bind_int64(st, 18, d->bytes_selected);
    sqlite3_bind_int64(st, 19, d->files_todo);
    sqlite3_bind_int64(st, 20, d->bytes_todo);
    sqlite3_bind_int64(st, 21, d->bytes_stored);
    cat_bind_text(st, 22, d->phase);
    sqlite3_bind_int64(st, 23, d->errors);
    sqlite3_bind_int64(st, 24, d->legacy_cancelled_at);
    sqlite3_bind_int64(st, 25, d->legacy_cancelled_by);
    sqlite3_bind_int64(st, 26, d->next_backup);
}

static int get_device(sqlite3_stmt *st, void *out)
{
    struct cat_device *d = out;
    int rc;

    cat_col_text(st, 0, d->id, sizeof(d->id));
    cat_col_text(st, 1, d->name, sizeof(d->name));
    cat_col_text(st, 2, d->category, sizeof(d->category));
    d->dept_id = sqlite3_column_int64(st, 3);
    d->owner_id = sqlite3_column_int64(st, 4);
    cat_col_text(st, 5, d->token_hash, sizeof(d->token_hash));
    col_fixed(st, 6, d->archive_id, sizeof(d->archive_id));
    cat_col_text(st, 9, d->state, sizeof(d->state));
    cat_col_text(st, 10, d->replaced_by, sizeof(d->replaced_by));
    d->enrolled_at = sqlite3_column_int64(st, 11);
    d->enrolled_by = sqlite3_column_int64(st, 12);
    d->last_activity = sqlite3_column_int64(st, 13);
    d->last_backup = sqlite3_column_int64(st, 14);
    d->first_backup = sqlite3_column_int64(st, 15);
    d->files_selected = sqlite3_column_int64(st, 16);
    d->bytes_selected = sqlite3_column_int64(st, 17);
    d->files_todo = sqlite3_column_int64(st, 18);
    d->bytes_todo = sqlite3_column_int64(st, 19);
    d->bytes_stored = sqlite3_column_int64(st, 20);
    cat_col_text(st, 21, d->phase, sizeof(d->phase));
    d->errors = sqlite3_column_int64(st, 22);
    d->legacy_cancelled_at = sqlite3_column_int64(st, 23);
    d->legacy_cancelled_by = sqlite3_column_int64(st, 24);
    d->next_backup = sqlite3_column_int64(st, 25);
    if ((rc = col_blobdup(st, 7, &d->wrap_escrow, &d->wrap_escrow_len)) != 0)
        return rc;
    return col_blobdup(st, 8, &d->wrap_owner, &d->wrap_owner_len);
}

/* Add a device.  CAIRN_EEXIST if the id exists, CAIRN_ENOENT if its
 * department or owner does not. */
int cat_device_add(struct catalog *c, const struct cat_device *d)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_DEV_ADD, &rc)) != NULL) {
        bind_device(st, d);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

/* A device by id.  CAIRN_ENOENT if none.  Clear with cat_device_clear. */
int cat_device_get(struct catalog *c, const char *id, struct cat_device *out)
{
    sqlite3_stmt *st;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = stmt(c, S_DEV_GET, &rc)) != NULL) {
        cat_bind_text(st, 1, id);
        rc = get_one(c, st, get_device, out);
    }
    cat_unlock(c);
    if (rc != 0)
        cat_device_clear(out);
    return rc;
}

/* Write every field but id.  CAIRN_ENOENT if no such device. */
int cat_device_update(struct catalog *c, const struct cat_device *d)
{
    sqlite3_stmt *st;
    int rc = 0, n = 0;

    cat_lock(c);
    if ((st = stmt(c, S_DEV_UPD, &rc)) != NULL) {
        bind_device(st, d);
        if ((rc = exec_step(c, st, &n)) == 0 && n == 0)
            rc = CAIRN_ENOENT;
    }
    cat_unlock(c);
    return rc;
}

/* Free what cat_device_get allocated.  NULL is fine. */
void cat_device_clear(struct cat_device *d)
{
    if (d == NULL)
        return;
    free(d->wrap_escrow);
    free(d->wrap_owner);
    d->wrap_escrow = d->wrap_owner = NULL;
    d->wrap_escrow_len = d->wrap_owner_len = 0;
}

static void device_clear_row(void *p)
{
    cat_device_clear(p);
}

struct device_cb {
    cat_device_fn fn;
    void *arg;
};
static int device_deliver(void *arg, const void *row)
{
    struct device_cb *cb = arg;
    return cb->fn(cb->arg, row);
}

/* Call fn on every device matching f (NULL: all), in enrolment order;
 * stops at the first non-zero result of fn (returned). */
int cat_device_list(struct catalog *c, const struct cat_device_filter *f,
                    cat_device_fn fn, void *arg)
{
    struct rows rs = {.esize = sizeof(struct cat_device)};
    struct device_cb cb = {fn, arg};
    struct cat_device_filter none = {0};
    sqlite3_stmt *st;
    int rc = 0;

    if (f == NULL)
        f = &none;
    cat_lock(c);
    if ((st = stmt(c, S_DEV_LIST, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, f->dept_id);
        cat_bind_text(st, 2, f->category);
        sqlite3_bind_int64(st, 3, f->owner_id);
        sqlite3_bind_int(st, 4, f->active_only ? 1 : 0);
        rc = rows_collect(c, st, &rs, get_device);
    }
    cat_unlock(c);
    return rows_deliver(&rs, device_deliver, &cb, device_clear_row, rc);
}

/* ---- snapshots ---- */

/* Record a snapshot seen.  CAIRN_EEXIST if this device has it already,
 * CAIRN_ENOENT if the device does not exist. */
int cat_snapshot_add(struct catalog *c, const struct cat_snapshot *s)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_SNAP_ADD, &rc)) != NULL) {
        cat_bind_text(st, 1, s->device_id);
        cat_bind_text(st, 2, s->id);
        sqlite3_bind_int64(st, 3, s->time);
        sqlite3_bind_int(st, 4, s->complete ? 1 : 0);
        sqlite3_bind_int64(st, 5, s->files);
        sqlite3_bind_int64(st, 6, s->bytes);
        sqlite3_bind_int64(st, 7, s->added_bytes);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

static int get_snapshot(sqlite3_stmt *st, void *out)
{
    struct cat_snapshot *s = out;

    cat_col_text(st, 0, s->device_id, sizeof(s->device_id));
    cat_col_text(st, 1, s->id, sizeof(s->id));
    s->time = sqlite3_column_int64(st, 2);
    s->complete = sqlite3_column_int(st, 3);
    s->files = sqlite3_column_int64(st, 4);
    s->bytes = sqlite3_column_int64(st, 5);
    s->added_bytes = sqlite3_column_int64(st, 6);
    return 0;
}

struct snap_cb {
    cat_snapshot_fn fn;
    void *arg;
};
static int snap_deliver(void *arg, const void *row)
{
    struct snap_cb *cb = arg;
    return cb->fn(cb->arg, row);
}

/* Call fn on the device's snapshots, oldest first; stops at the first
 * non-zero result of fn (returned). */
int cat_snapshot_list(struct catalog *c, const char *device_id,
                      cat_snapshot_fn fn, void *arg)
{
    struct rows rs = {.esize = sizeof(struct cat_snapshot)};
    struct snap_cb cb = {fn, arg};
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_SNAP_LIST, &rc)) != NULL) {
        cat_bind_text(st, 1, device_id);
        rc = rows_collect(c, st, &rs, get_snapshot);
    }
    cat_unlock(c);
    return rows_deliver(&rs, snap_deliver, &cb, NULL, rc);
}

/* ---- audit ---- */

/* Append an audit record (a->id is ignored; the log assigns it).  Rows
 * are never updated or deleted: triggers refuse both. */
int cat_audit_add(struct catalog *c, const struct cat_audit *a)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = stmt(c, S_AUDIT_ADD, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, a->time);
        sqlite3_bind_int64(st, 2, a->user_id);
        cat_bind_text(st, 3, a->device_id);
        cat_bind_text(st, 4, a->addr);
        cat_bind_text(st, 5, a->action);
        cat_bind_text(st, 6, a->target);
        cat_bind_text(st, 7, a->detail);
        rc = exec_step(c, st, NULL);
    }
    cat_unlock(c);
    return rc;
}

static int get_audit(sqlite3_stmt *st, void *out)
{
    struct cat_audit *a = out;

    a->id = sqlite3_column_int64(st, 0);
    a->time = sqlite3_column_int64(st, 1);
    a->user_id = sqlite3_column_int64(st, 2);
    cat_col_text(st, 3, a->device_id, sizeof(a->device_id));
    cat_col_text(st, 4, a->addr, sizeof(a->addr));
    cat_col_text(st, 5, a->action, sizeof(a->action));
    cat_col_text(st, 6, a->target, sizeof(a->target));
    return col_strdup(st, 7, &a->detail);
}

static void audit_clear_row(void *p)
{
    struct cat_audit *a = p;
    free(a->detail);
}

struct audit_cb {
    cat_audit_fn fn;
    void *arg;
};
static int audit_deliver(void *arg, const void *row)
{
    struct audit_cb *cb = arg;
    return cb->fn(cb->arg, row);
}

/* Call fn on the audit records matching f (NULL: the first 1000), oldest
 * first; since and until are inclusive.  Stops at the first non-zero
 * result of fn (returned). */
int cat_audit_list(struct catalog *c, const struct cat_audit_filter *f,
                   cat_audit_fn fn, void *arg)
{
    struct rows rs = {.esize = sizeof(struct cat_audit)};
    struct audit_cb cb = {fn, arg};
    struct cat_audit_filter none = {0};
    sqlite3_stmt *st;
    int rc = 0;

    if (f == NULL)
        f = &none;
    cat_lock(c);
    if ((st = stmt(c, S_AUDIT_LIST, &rc)) != NULL) {
        sqlite3_bind_int64(st, 1, f->since);
        sqlite3_bind_int64(st, 2, f->until);
        sqlite3_bind_int64(st, 3, f->user_id);
        cat_bind_text(st, 4, f->action);
        cat_bind_text(st, 5, f->device_id);
        sqlite3_bind_int(st, 6, f->limit > 0 ? f->limit : AUDIT_LIMIT_DEFAULT);
        rc = rows_collect(c, st, &rs, get_audit);
    }
    cat_unlock(c);
    return rows_deliver(&rs, audit_deliver, &cb, audit_clear_row, rc);
}
