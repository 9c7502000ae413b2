/*
 * catalog_settings.c - agent settings in the catalog (catalog.h): what
 * the IT office sets for the whole organisation or one department, and
 * which of those settings are locked (override the agent's own file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "catalog_int.h"

/* Schema version 4. */
const char *const cat_schema_settings =
    "CREATE TABLE agent_settings ("
    "  scope TEXT PRIMARY KEY,"      /* "org" or "dept:<id>" */
    "  body TEXT NOT NULL,"          /* JSON object of settings */
    "  locked TEXT NOT NULL,"        /* JSON array of locked keys */
    "  updated INTEGER NOT NULL,"
    "  updated_by INTEGER NOT NULL);";

/* The scope key of a department (0: the organisation). */
static void scope_of(int64_t dept_id, char out[32])
{
    if (dept_id == 0)
        snprintf(out, 32, "org");
    else
        snprintf(out, 32, "dept:%lld", (long long)dept_id);
}

int cat_settings_get(struct catalog *c, int64_t dept_id,
                     struct cat_settings *out)
{
    sqlite3_stmt *st = NULL;
    char scope[32];
    int rc = 0, r;

    memset(out, 0, sizeof(*out));
    scope_of(dept_id, scope);
    cat_lock(c);
    if ((r = sqlite3_prepare_v2(c->db,
                                "SELECT body, locked, updated, updated_by "
                                "FROM agent_settings WHERE scope = ?1",
                                -1, &st, NULL)) != SQLITE_OK) {
        rc = cat_sq_err(c, r);
        goto err0;
    }
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = CAIRN_ENOENT;
        goto err1;
    }
    if (r != SQLITE_ROW) {
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        goto err1;
    }
    if ((rc = cat_col_dup(st, 0, &out->body)) != 0 ||
        (rc = cat_col_dup(st, 1, &out->locked)) != 0)
        goto err2;
    out->updated = sqlite3_column_int64(st, 2);
    out->updated_by = sqlite3_column_int64(st, 3);
    sqlite3_finalize(st);
    cat_unlock(c);

    /* Success! */
    return 0;

err2:
    cat_settings_clear(out);
err1:
    sqlite3_finalize(st);
err0:
    cat_unlock(c);
    return rc;
}

int cat_settings_set(struct catalog *c, int64_t dept_id,
                     const struct cat_settings *s)
{
    sqlite3_stmt *st = NULL;
    char scope[32];
    int rc = 0, r;

    if (s->body == NULL || s->locked == NULL)
        return CAIRN_EINVAL;
    scope_of(dept_id, scope);
    cat_lock(c);
    if ((r = sqlite3_prepare_v2(
             c->db,
             "INSERT INTO agent_settings (scope, body, locked, updated, "
             "updated_by) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope) DO "
             "UPDATE SET body = excluded.body, locked = excluded.locked, "
             "updated = excluded.updated, updated_by = excluded.updated_by",
             -1, &st, NULL)) != SQLITE_OK) {
        rc = cat_sq_err(c, r);
        goto err0;
    }
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, s->body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, s->locked, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, s->updated);
    sqlite3_bind_int64(st, 5, s->updated_by);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        goto err1;
    }
    sqlite3_finalize(st);
    cat_unlock(c);

    /* Success! */
    return 0;

err1:
    sqlite3_finalize(st);
err0:
    cat_unlock(c);
    return rc;
}

int cat_settings_delete(struct catalog *c, int64_t dept_id)
{
    sqlite3_stmt *st = NULL;
    char scope[32];
    int rc = 0, r;

    scope_of(dept_id, scope);
    cat_lock(c);
    if ((r = sqlite3_prepare_v2(c->db,
                                "DELETE FROM agent_settings WHERE scope = ?1",
                                -1, &st, NULL)) != SQLITE_OK) {
        rc = cat_sq_err(c, r);
        goto err0;
    }
    sqlite3_bind_text(st, 1, scope, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    else if (sqlite3_changes(c->db) == 0)
        rc = CAIRN_ENOENT;
    sqlite3_finalize(st);
err0:
    cat_unlock(c);
    return rc;
}

void cat_settings_clear(struct cat_settings *s)
{
    if (s == NULL)
        return;
    free(s->body);
    free(s->locked);
    s->body = NULL;
    s->locked = NULL;
}
