/*
 * catalog_requests.c - restore requests in the catalog (catalog.h): a
 * person asks the IT office to restore a shared device of their
 * department; an administrator fulfils or declines the request, once.
 *
 * "Once" is the database's word, not the caller's: the decision is one
 * UPDATE that matches only an open row, so two administrators deciding
 * at the same moment (even from two processes) cannot both succeed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "catalog_int.h"

#define REQUEST_LIMIT_DEFAULT 1000

/* Schema version 2. */
const char *const cat_schema_requests =
    "CREATE TABLE restore_requests ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  created INTEGER NOT NULL,"
    "  requester_id INTEGER NOT NULL REFERENCES users(id),"
    "  dept_id INTEGER NOT NULL,"    /* the requester's department */
    "  device_id TEXT NOT NULL REFERENCES devices(id),"
    "  paths TEXT NOT NULL,"         /* JSON array of absolute paths */
    "  version TEXT NOT NULL,"       /* snapshot id or prefix, or "" */
    "  as_of INTEGER NOT NULL,"      /* or a time (0: latest) */
    "  destination TEXT NOT NULL,"   /* where to, in the requester's words */
    "  reason TEXT NOT NULL,"
    "  state TEXT NOT NULL"          /* open, fulfilled, declined */
    "    CHECK (state IN ('open', 'fulfilled', 'declined')),"
    "  decided_by INTEGER NOT NULL,"
    "  decided_at INTEGER NOT NULL,"
    "  how TEXT NOT NULL,"           /* push, download, or "" */
    "  outcome TEXT NOT NULL,"       /* decline reason or fulfiller's note */
    "  push_id INTEGER NOT NULL);"   /* the push restore that fulfilled it */
    "CREATE INDEX restore_requests_state ON restore_requests(state, id);"
    "CREATE INDEX restore_requests_requester ON "
    "  restore_requests(requester_id, id);";

#define COLUMNS                                                                \
    "id, created, requester_id, dept_id, device_id, paths, version, as_of, "   \
    "destination, reason, state, decided_by, decided_at, how, outcome, "       \
    "push_id"

/* One row into *r (r->paths malloc'ed).  0 or CAIRN_ENOMEM. */
static int row_read(sqlite3_stmt *st, struct cat_request *r)
{
    const unsigned char *t;
    size_t n;

    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->created = sqlite3_column_int64(st, 1);
    r->requester_id = sqlite3_column_int64(st, 2);
    r->dept_id = sqlite3_column_int64(st, 3);
    cat_col_text(st, 4, r->device_id, sizeof(r->device_id));
    cat_col_text(st, 6, r->version, sizeof(r->version));
    r->as_of = sqlite3_column_int64(st, 7);
    cat_col_text(st, 8, r->destination, sizeof(r->destination));
    cat_col_text(st, 9, r->reason, sizeof(r->reason));
    cat_col_text(st, 10, r->state, sizeof(r->state));
    r->decided_by = sqlite3_column_int64(st, 11);
    r->decided_at = sqlite3_column_int64(st, 12);
    cat_col_text(st, 13, r->how, sizeof(r->how));
    cat_col_text(st, 14, r->outcome, sizeof(r->outcome));
    r->push_id = sqlite3_column_int64(st, 15);
    t = sqlite3_column_text(st, 5);
    n = t ? (size_t)sqlite3_column_bytes(st, 5) : 0;
    if ((r->paths = malloc(n + 1)) == NULL)
        return CAIRN_ENOMEM;
    if (n)
        memcpy(r->paths, t, n);
    r->paths[n] = '\0';
    return 0;
}

/*
 * Add an open request and set r->id.  The fields a decision fills are
 * ignored.  CAIRN_ENOENT if the requester or the device does not exist;
 * CAIRN_EINVAL if r->paths is NULL.
 */
int cat_request_add(struct catalog *c, struct cat_request *r)
{
    sqlite3_stmt *st;
    int rc = 0;

    if (r->paths == NULL)
        return CAIRN_EINVAL;
    cat_lock(c);
    if ((st = cat_prepare(c,
                      "INSERT INTO restore_requests (created, requester_id, "
                      "dept_id, device_id, paths, version, as_of, "
                      "destination, reason, state, decided_by, decided_at, "
                      "how, outcome, push_id) VALUES (?1, ?2, ?3, ?4, ?5, "
                      "?6, ?7, ?8, ?9, 'open', 0, 0, '', '', 0)",
                      &rc)) == NULL)
        goto err0;
    sqlite3_bind_int64(st, 1, r->created);
    sqlite3_bind_int64(st, 2, r->requester_id);
    sqlite3_bind_int64(st, 3, r->dept_id);
    cat_bind_text(st, 4, r->device_id);
    cat_bind_text(st, 5, r->paths);
    cat_bind_text(st, 6, r->version);
    sqlite3_bind_int64(st, 7, r->as_of);
    cat_bind_text(st, 8, r->destination);
    cat_bind_text(st, 9, r->reason);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
        goto err1;
    }
    r->id = sqlite3_last_insert_rowid(c->db);
    snprintf(r->state, sizeof(r->state), "%s", "open");
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

/* A request by id.  CAIRN_ENOENT if none.  Clear *out with
 * cat_request_clear (also after an error: it is then empty). */
int cat_request_get(struct catalog *c, int64_t id, struct cat_request *out)
{
    sqlite3_stmt *st;
    int rc = 0, r;

    memset(out, 0, sizeof(*out));
    cat_lock(c);
    if ((st = cat_prepare(c, "SELECT " COLUMNS " FROM restore_requests "
                         "WHERE id = ?1",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    if ((r = sqlite3_step(st)) == SQLITE_ROW)
        rc = row_read(st, out);
    else if (r == SQLITE_DONE)
        rc = CAIRN_ENOENT;
    else
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    if (rc != 0)
        cat_request_clear(out);
    return rc;
}

/* Free what cat_request_get allocated.  NULL is fine. */
void cat_request_clear(struct cat_request *r)
{
    if (r == NULL)
        return;
    free(r->paths);
    r->paths = NULL;
}

/*
 * Call fn on the requests matching f (NULL: the first 1000), oldest
 * first.  The rows are read first and fn runs without the lock (it may
 * call the catalog); stops at the first non-zero result of fn (returned).
 */
int cat_request_list(struct catalog *c, const struct cat_request_filter *f,
                     cat_request_fn fn, void *arg)
{
    static const struct cat_request_filter none = {0};
    struct cat_request *rows = NULL, *p;
    size_t n = 0, cap = 0, i;
    sqlite3_stmt *st;
    int rc = 0, r;

    if (f == NULL)
        f = &none;
    cat_lock(c);
    if ((st = cat_prepare(c, "SELECT " COLUMNS " FROM restore_requests WHERE "
                         "(?1 IS NULL OR state = ?1) AND (?2 = 0 OR "
                         "requester_id = ?2) AND (?3 IS NULL OR device_id = "
                         "?3) AND (?4 = 0 OR dept_id = ?4) ORDER BY id "
                         "LIMIT ?5",
                      &rc)) == NULL) {
        cat_unlock(c);
        return rc;
    }
    cat_bind_text(st, 1, f->state);
    sqlite3_bind_int64(st, 2, f->requester_id);
    cat_bind_text(st, 3, f->device_id);
    sqlite3_bind_int64(st, 4, f->dept_id);
    sqlite3_bind_int(st, 5, f->limit > 0 ? f->limit : REQUEST_LIMIT_DEFAULT);
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
        if ((rc = row_read(st, &rows[n])) != 0) {
            cat_request_clear(&rows[n]);
            break;
        }
        n++;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
    cat_unlock(c);

    for (i = 0; i < n; i++) {
        if (rc == 0)
            rc = fn(arg, &rows[i]);
        cat_request_clear(&rows[i]);
    }
    free(rows);
    return rc;
}

/* See catalog.h. */
int cat_request_decide(struct catalog *c, int64_t id, const char *state,
                       int64_t by, int64_t at, const char *how,
                       const char *outcome, int64_t push_id)
{
    sqlite3_stmt *st;
    int rc = 0, r, fulfilled;

    if (state == NULL || outcome == NULL)
        return CAIRN_EINVAL;
    fulfilled = strcmp(state, "fulfilled") == 0;
    if (!fulfilled && strcmp(state, "declined") != 0)
        return CAIRN_EINVAL;
    if (fulfilled && (how == NULL || (strcmp(how, "push") != 0 &&
                                      strcmp(how, "download") != 0)))
        return CAIRN_EINVAL;
    if (!fulfilled && ((how != NULL && how[0] != '\0') || push_id != 0))
        return CAIRN_EINVAL;
    cat_lock(c);
    if ((st = cat_prepare(c, "UPDATE restore_requests SET state = ?2, "
                         "decided_by = ?3, decided_at = ?4, how = ?5, "
                         "outcome = ?6, push_id = ?7 WHERE id = ?1 AND "
                         "state = 'open'",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    cat_bind_text(st, 2, state);
    sqlite3_bind_int64(st, 3, by);
    sqlite3_bind_int64(st, 4, at);
    cat_bind_text(st, 5, fulfilled ? how : "");
    cat_bind_text(st, 6, outcome);
    sqlite3_bind_int64(st, 7, push_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    else if (sqlite3_changes(c->db) == 0)
        rc = CAIRN_ENOENT; /* refined below: gone, or decided already */
    sqlite3_finalize(st);
    if (rc != CAIRN_ENOENT)
        goto out;
    if ((st = cat_prepare(c, "SELECT state FROM restore_requests WHERE id = ?1",
                      &rc)) == NULL)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    if ((r = sqlite3_step(st)) == SQLITE_ROW)
        rc = CAIRN_EEXIST;
    else if (r == SQLITE_DONE)
        rc = CAIRN_ENOENT;
    else
        rc = cat_sq_err(c, sqlite3_extended_errcode(c->db));
    sqlite3_finalize(st);
out:
    cat_unlock(c);
    return rc;
}
