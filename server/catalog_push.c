/*
 * catalog_push.c - push restores and restore records in the catalog
 * (catalog.h): an administrator restores one device's files onto another
 * enrolled device, whose cairn fetches the job and writes the files; and
 * the record of every restore (who, whose device, what, how much).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"

#include "catalog_int.h"

/* Schema version 3. */
const char *const cat_schema_push =
    "CREATE TABLE push_jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created INTEGER NOT NULL,"
    "  created_by INTEGER NOT NULL REFERENCES users(id),"
    "  source_device TEXT NOT NULL REFERENCES devices(id),"
    "  target_device TEXT NOT NULL REFERENCES devices(id),"
    "  snapshot TEXT NOT NULL,"      /* snapshot id (hex) */
    "  paths TEXT NOT NULL,"         /* JSON array of absolute paths */
    "  target_dir TEXT NOT NULL,"    /* on the target device */
    "  wrapped_key BLOB NOT NULL,"   /* source archive key, wrapped for
                                      * the target device */
    "  state TEXT NOT NULL"          /* queued, running, done, failed */
    "    CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    "  updated INTEGER NOT NULL,"
    "  files INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  error TEXT NOT NULL,"
    "  request_id INTEGER NOT NULL);"
    "CREATE INDEX push_jobs_target ON push_jobs(target_device, state);"
    "CREATE TABLE restores ("
    "  id TEXT PRIMARY KEY,"         /* 32 random hex digits */
    "  created INTEGER NOT NULL,"
    "  user_id INTEGER NOT NULL,"    /* the person restoring, or 0 */
    "  caller_device TEXT NOT NULL," /* or the device restoring, or '' */
    "  device_id TEXT NOT NULL REFERENCES devices(id),"
    "  snapshot TEXT NOT NULL,"
    "  paths TEXT NOT NULL,"         /* JSON array */
    "  target TEXT NOT NULL,"
    "  push_id INTEGER NOT NULL,"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('running', 'done', 'failed', 'interrupted')),"
    "  finished INTEGER NOT NULL,"
    "  files INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL,"
    "  errors INTEGER NOT NULL);"
    "CREATE INDEX restores_device ON restores(device_id, created);";

#define PUSH_COLUMNS                                                           \
    "id, created, created_by, source_device, target_device, snapshot, "        \
    "paths, target_dir, wrapped_key, state, updated, files, bytes, error, "    \
    "request_id"

/* Step a statement that returns no row. */
static int step_done(struct catalog *c, sqlite3_stmt *st)
{
    int r = sqlite3_step(st);

    return r == SQLITE_DONE ? 0
                            : cat_sq_err(c, sqlite3_extended_errcode(c->db));
}

/* ---- push jobs ---- */

static int push_read(sqlite3_stmt *st, struct cat_push *p)
{
    const void *b;
    size_t n;

    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(st, 0);
    p->created = sqlite3_column_int64(st, 1);
    p->created_by = sqlite3_column_int64(st, 2);
    cat_col_text(st, 3, p->source_device, sizeof(p->source_device));
    cat_col_text(st, 4, p->target_device, sizeof(p->target_device));
    cat_col_text(st, 5, p->snapshot, sizeof(p->snapshot));
    cat_col_text(st, 7, p->target_dir, sizeof(p->target_dir));
    cat_col_text(st, 9, p->state, sizeof(p->state));
    p->updated = sqlite3_column_int64(st, 10);
    p->files = sqlite3_column_int64(st, 11);
    p->bytes = sqlite3_column_int64(st, 12);
    cat_col_text(st, 13, p->error, sizeof(p->error));
    p->request_id = sqlite3_column_int64(st, 14);
    if (cat_col_dup(st, 6, &p->paths) != 0)
        return CAIRN_ENOMEM;
    b = sqlite3_column_blob(st, 8);
    n = (size_t)sqlite3_column_bytes(st, 8);
    if ((p->wrapped_key = malloc(n ? n : 1)) == NULL) {
        free(p->paths);
        p->paths = NULL;
        return CAIRN_ENOMEM;
    }
    if (n)
        memcpy(p->wrapped_key, b, n);
    p->wrapped_key_len = n;
    return 0;
}

/* See catalog.h.  The job starts queued, with no counts. */
int cat_push_add(struct catalog *c, struct cat_push *p)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (p->paths == NULL || p->wrapped_key == NULL)
        return CAIRN_EINVAL;
    cat_lock(c);
    if ((st = cat_prepare(c,
                      "INSERT INTO push_jobs (created, created_by, "
                      "source_device, target_device, snapshot, paths, "
                      "target_dir, wrapped_key, state, updated, files, bytes, "
                      "error, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                      "?7, ?8, 'queued', ?1, 0, 0, '', ?9)",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, p->created);
    sqlite3_bind_int64(st, 2, p->created_by);
    sqlite3_bind_text(st, 3, p->source_device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, p->target_device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, p->snapshot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, p->paths, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, p->target_dir, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 8, p->wrapped_key, (int)p->wrapped_key_len,
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, p->request_id);
    if ((rc = step_done(c, st)) == 0) {
        p->id = sqlite3_last_insert_rowid(c->db);
        snprintf(p->state, sizeof(p->state), "queued");
        p->updated = p->created;
    }
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

/* See catalog.h.  CAIRN_ENOENT if there is no such job. */
int cat_push_get(struct catalog *c, int64_t id, struct cat_push *out)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    cat_lock(c);
    if ((st = cat_prepare(c, "SELECT " PUSH_COLUMNS " FROM push_jobs WHERE "
                      "id = ?1", &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = push_read(st, out);
    else if (r == SQLITE_DONE)
        rc = CAIRN_ENOENT;
    else
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

/* See catalog.h. */
int cat_push_set_state(struct catalog *c, int64_t id, const char *state,
                       int64_t files, int64_t bytes, const char *error,
                       int64_t now)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = cat_prepare(c, "UPDATE push_jobs SET state = ?2, files = ?3, "
                      "bytes = ?4, error = ?5, updated = ?6 WHERE id = ?1",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, files);
    sqlite3_bind_int64(st, 4, bytes);
    sqlite3_bind_text(st, 5, error ? error : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, now);
    if ((rc = step_done(c, st)) == 0 && sqlite3_changes(c->db) == 0)
        rc = CAIRN_ENOENT;
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

/*
 * See catalog.h.  The rows are read first, then delivered without the
 * lock, so fn may call the catalog.
 */
int cat_push_list(struct catalog *c, const struct cat_push_filter *f,
                  cat_push_fn fn, void *arg)
{
    struct cat_push *rows = NULL, *p;
    size_t n = 0, cap = 0, i;
    sqlite3_stmt *st;
    int rc = 0, r;

    cat_lock(c);
    if ((st = cat_prepare(c,
                      "SELECT " PUSH_COLUMNS " FROM push_jobs WHERE "
                      "(?1 IS NULL OR source_device = ?1 OR "
                      " target_device = ?1) AND "
                      "(?2 IS NULL OR target_device = ?2) AND "
                      "(?3 IS NULL OR source_device = ?3) AND "
                      "(?4 = 0 OR state IN ('queued', 'running')) "
                      "ORDER BY id DESC LIMIT ?5",
                      &rc)) == NULL) {
        cat_unlock(c);
        return rc;
    }
    if (f != NULL && f->device != NULL)
        sqlite3_bind_text(st, 1, f->device, -1, SQLITE_TRANSIENT);
    if (f != NULL && f->target != NULL)
        sqlite3_bind_text(st, 2, f->target, -1, SQLITE_TRANSIENT);
    if (f != NULL && f->source != NULL)
        sqlite3_bind_text(st, 3, f->source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 4, f != NULL && f->active_only);
    sqlite3_bind_int(st, 5, f != NULL && f->limit > 0 ? f->limit : 1000);
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;

            if ((p = realloc(rows, nc * sizeof(*rows))) == NULL) {
                rc = CAIRN_ENOMEM;
                break;
            }
            rows = p;
            cap = nc;
        }
        if ((rc = push_read(st, &rows[n])) != 0)
            break;
        n++;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
    cat_unlock(c);
    for (i = 0; i < n; i++) {
        if (rc == 0)
            rc = fn(arg, &rows[i]);
        cat_push_clear(&rows[i]);
    }
    free(rows);
    return rc;
}

void cat_push_clear(struct cat_push *p)
{
    if (p == NULL)
        return;
    free(p->paths);
    p->paths = NULL;
    free(p->wrapped_key);
    p->wrapped_key = NULL;
    p->wrapped_key_len = 0;
}

/* ---- restore records ---- */

/* See catalog.h.  The record starts "running". */
int cat_restore_add(struct catalog *c, const struct cat_restore *r)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (r->paths == NULL)
        return CAIRN_EINVAL;
    cat_lock(c);
    if ((st = cat_prepare(c,
                      "INSERT INTO restores (id, created, user_id, "
                      "caller_device, device_id, snapshot, paths, target, "
                      "push_id, state, finished, files, bytes, errors) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                      "'running', 0, 0, 0, 0)",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, r->created);
    sqlite3_bind_int64(st, 3, r->user_id);
    sqlite3_bind_text(st, 4, r->caller_device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, r->device_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, r->snapshot, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, r->paths, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 8, r->target, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, r->push_id);
    rc = step_done(c, st);
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

/* See catalog.h.  CAIRN_ENOENT if there is no such record. */
int cat_restore_get(struct catalog *c, const char *id,
                    struct cat_restore *out)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    cat_lock(c);
    if ((st = cat_prepare(c,
                      "SELECT id, created, user_id, caller_device, "
                      "device_id, snapshot, paths, target, push_id, state, "
                      "finished, files, bytes, errors FROM restores WHERE "
                      "id = ?1",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        cat_col_text(st, 0, out->id, sizeof(out->id));
        out->created = sqlite3_column_int64(st, 1);
        out->user_id = sqlite3_column_int64(st, 2);
        cat_col_text(st, 3, out->caller_device, sizeof(out->caller_device));
        cat_col_text(st, 4, out->device_id, sizeof(out->device_id));
        cat_col_text(st, 5, out->snapshot, sizeof(out->snapshot));
        cat_col_text(st, 7, out->target, sizeof(out->target));
        out->push_id = sqlite3_column_int64(st, 8);
        cat_col_text(st, 9, out->state, sizeof(out->state));
        out->finished = sqlite3_column_int64(st, 10);
        out->files = sqlite3_column_int64(st, 11);
        out->bytes = sqlite3_column_int64(st, 12);
        out->errors = sqlite3_column_int64(st, 13);
        rc = cat_col_dup(st, 6, &out->paths);
    } else if (r == SQLITE_DONE) {
        rc = CAIRN_ENOENT;
    } else {
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    }
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

/* See catalog.h. */
int cat_restore_finish(struct catalog *c, const char *id, const char *state,
                       int64_t files, int64_t bytes, int64_t errors,
                       int64_t now)
{
    sqlite3_stmt *st;
    int rc = 0;

    cat_lock(c);
    if ((st = cat_prepare(c,
                      "UPDATE restores SET state = ?2, files = ?3, "
                      "bytes = ?4, errors = ?5, finished = ?6 WHERE id = ?1 "
                      "AND state = 'running'",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, files);
    sqlite3_bind_int64(st, 4, bytes);
    sqlite3_bind_int64(st, 5, errors);
    sqlite3_bind_int64(st, 6, now);
    if ((rc = step_done(c, st)) == 0 && sqlite3_changes(c->db) == 0)
        rc = CAIRN_EEXIST;
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}

void cat_restore_clear(struct cat_restore *r)
{
    if (r == NULL)
        return;
    free(r->paths);
    r->paths = NULL;
}
