/*
 * catalog_int.h - what the catalog's SQLite files share (private to the
 * catalog module: catalog_sqlite.c and the catalog_<part>.c files that
 * add one area each, such as restore requests).
 *
 * A part file owns its schema migration (a string named in
 * catalog_sqlite.c's migrations[]) and its functions; it prepares its
 * statements per call (these areas are not hot) and holds cat_lock around
 * each use of the connection.
 */
#ifndef CAIRN_CATALOG_INT_H
#define CAIRN_CATALOG_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "catalog.h"

#define CAT_STMT_MAX 64

struct catalog {
    sqlite3 *db;
    pthread_mutex_t lock; /* recursive; held across a transaction */
    int in_tx;            /* catalog_begin depth (0 or 1) */
    int version;
    sqlite3_stmt *st[CAT_STMT_MAX]; /* catalog_sqlite.c's, prepared once */
};

/* Take and release the connection (recursive: a transaction holds it). */
void cat_lock(struct catalog *c);
void cat_unlock(struct catalog *c);

/* An SQLite result code as a cairn_err: CAIRN_EEXIST for a unique or
 * primary key conflict, CAIRN_ENOENT for a foreign key, CAIRN_ENOMEM,
 * CAIRN_ENOSPC, else CAIRN_EIO (logged). */
int cat_sq_err(struct catalog *c, int rc);

/* Helpers for a part file's statements (catalog_sqlite.c). */
/* Prepare sql (lock held); NULL with *rc set.  sqlite3_finalize it. */
sqlite3_stmt *cat_prepare(struct catalog *c, const char *sql, int *rc);
/* Bind s as text, or NULL when s is NULL. */
void cat_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Column i into out[outlen] (truncated, always NUL-ended; "" for NULL). */
void cat_col_text(sqlite3_stmt *st, int i, char *out, size_t outlen);
/* Column i as a malloc'ed string ("" for NULL).  0 or CAIRN_ENOMEM. */
int cat_col_dup(sqlite3_stmt *st, int i, char **out);

/* The schema migrations, in order (catalog_sqlite.c's migrations[]). */
extern const char *const cat_schema_v1;       /* catalog_sqlite.c */
extern const char *const cat_schema_requests; /* catalog_requests.c */
extern const char *const cat_schema_push;     /* catalog_push.c */
extern const char *const cat_schema_settings; /* catalog_settings.c */

#endif
