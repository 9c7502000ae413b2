/*
 * catalog.h - the server's catalog: organisation, departments, people,
 * sessions, devices, snapshots seen, audit log.  These functions are the
 * interface; catalog_sqlite.c implements them on SQLite (the embedded
 * default).  A PostgreSQL backend will implement the same set behind an
 * operation table; nothing outside the catalog module writes SQL.
 *
 * Every function is thread safe.  Times are seconds since the epoch; 0
 * means "never / not set".  Strings in structs are NUL-terminated; fields
 * that are pointers are malloc'ed and released by the matching *_clear.
 * Errors are cairn_err codes: CAIRN_ENOENT (no such row), CAIRN_EEXIST
 * (unique name taken), CAIRN_EIO (the database failed), CAIRN_ENOMEM.
 */
#ifndef CAIRN_CATALOG_H
#define CAIRN_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct catalog;

/* Open (creating and migrating the schema to the current version). */
int catalog_open_sqlite(const char *path, struct catalog **out);
void catalog_close(struct catalog *c);
/* The schema version in use. */
int catalog_schema_version(struct catalog *c);

/* Transactions, for changes that must happen together. */
int catalog_begin(struct catalog *c);
int catalog_commit(struct catalog *c);
void catalog_rollback(struct catalog *c);

/* ---- organisation ---- */
struct cat_org {
    char name[128];
    uint8_t escrow_public[32];
    uint8_t *escrow_wrapped; /* the private half under the escrow passphrase */
    size_t escrow_wrapped_len;
    int64_t created;
};
int cat_org_create(struct catalog *c, const struct cat_org *o); /* EEXIST */
int cat_org_get(struct catalog *c, struct cat_org *out);        /* ENOENT */
void cat_org_clear(struct cat_org *o);

/* ---- departments and rollout waves ---- */
struct cat_dept {
    int64_t id;
    char name[128];
    int64_t wave_start; /* 0: no wave scheduled */
};
int cat_dept_add(struct catalog *c, const char *name, int64_t wave_start,
                 int64_t *out_id);
int cat_dept_get(struct catalog *c, const char *name, struct cat_dept *out);
int cat_dept_get_id(struct catalog *c, int64_t id, struct cat_dept *out);
int cat_dept_set_wave(struct catalog *c, const char *name, int64_t wave_start);
typedef int (*cat_dept_fn)(void *arg, const struct cat_dept *d);
int cat_dept_list(struct catalog *c, cat_dept_fn fn, void *arg);

/* ---- users ---- */
struct cat_user {
    int64_t id;
    char username[64];
    char display[128];
    int64_t dept_id;
    int admin;
    char *pw_hash;           /* srv_password_hash text */
    char totp_secret[40];    /* base32; "" until enrolled */
    int64_t totp_last_step;  /* replay guard */
    int disabled;
    int failures;            /* consecutive failed logins */
    int64_t last_failure;
    int64_t locked_until;
    int64_t created;
};
int cat_user_add(struct catalog *c, struct cat_user *u); /* sets u->id */
int cat_user_get(struct catalog *c, const char *username,
                 struct cat_user *out);
int cat_user_get_id(struct catalog *c, int64_t id, struct cat_user *out);
/* Write every mutable field (all but id, username, created). */
int cat_user_update(struct catalog *c, const struct cat_user *u);
void cat_user_clear(struct cat_user *u);
typedef int (*cat_user_fn)(void *arg, const struct cat_user *u);
int cat_user_list(struct catalog *c, cat_user_fn fn, void *arg);

/* Recovery codes, stored hashed (srv_recovery_hash).  set replaces them
 * all; use marks one used (CAIRN_ENOENT if no unused one matches). */
int cat_recovery_set(struct catalog *c, int64_t user_id,
                     const char (*hashes)[65], int n);
int cat_recovery_use(struct catalog *c, int64_t user_id, const char *hash);
int cat_recovery_left(struct catalog *c, int64_t user_id, int *out_n);

/* ---- sessions (only the token's hash is stored) ---- */
struct cat_session {
    char hash[65];
    int64_t user_id;
    int full;      /* TOTP given */
    int cookie;
    char csrf[64];
    char addr[64];
    int64_t created, last_seen;
};
int cat_session_add(struct catalog *c, const struct cat_session *s);
int cat_session_get(struct catalog *c, const char *hash,
                    struct cat_session *out);
int cat_session_touch(struct catalog *c, const char *hash, int64_t now);
int cat_session_set_full(struct catalog *c, const char *hash);
int cat_session_delete(struct catalog *c, const char *hash);
int cat_session_delete_user(struct catalog *c, int64_t user_id);
/* Delete sessions idle since before idle_before or created before
 * created_before. */
int cat_session_expire(struct catalog *c, int64_t idle_before,
                       int64_t created_before);

/* ---- failed logins per client address ---- */
int cat_addr_get(struct catalog *c, const char *addr, int *out_failures,
                 int64_t *out_last);
int cat_addr_fail(struct catalog *c, const char *addr, int64_t now);
int cat_addr_reset(struct catalog *c, const char *addr);

/* ---- devices ---- */
struct cat_device {
    char id[33];          /* 32 lowercase hex digits */
    char name[128];
    char category[16];    /* "personal" or "shared" */
    int64_t dept_id;
    int64_t owner_id;     /* 0 for shared devices */
    char token_hash[65];
    uint8_t archive_id[32];
    uint8_t *wrap_escrow; /* sealed to the escrow key */
    size_t wrap_escrow_len;
    uint8_t *wrap_owner;  /* under the owner's password; NULL if shared */
    size_t wrap_owner_len;
    char state[16];       /* "active", "replaced" */
    char replaced_by[33];
    int64_t enrolled_at, enrolled_by;
    /* status, as last reported and as seen from snapshots */
    int64_t last_activity, last_backup, first_backup;
    int64_t files_selected, bytes_selected, files_todo, bytes_todo;
    int64_t bytes_stored;
    char phase[32];
    int64_t errors;
    /* migration from the old backup service */
    int64_t legacy_cancelled_at, legacy_cancelled_by;
};
int cat_device_add(struct catalog *c, const struct cat_device *d);
int cat_device_get(struct catalog *c, const char *id, struct cat_device *out);
/* Write every field but id. */
int cat_device_update(struct catalog *c, const struct cat_device *d);
void cat_device_clear(struct cat_device *d);
struct cat_device_filter {
    int64_t dept_id;      /* 0: any */
    const char *category; /* NULL: any */
    int64_t owner_id;     /* 0: any */
    int active_only;
};
typedef int (*cat_device_fn)(void *arg, const struct cat_device *d);
int cat_device_list(struct catalog *c, const struct cat_device_filter *f,
                    cat_device_fn fn, void *arg);

/* ---- snapshots seen (the public part) ---- */
struct cat_snapshot {
    char device_id[33];
    char id[65];
    int64_t time;
    int complete;
    int64_t files, bytes, added_bytes;
};
int cat_snapshot_add(struct catalog *c, const struct cat_snapshot *s);
typedef int (*cat_snapshot_fn)(void *arg, const struct cat_snapshot *s);
int cat_snapshot_list(struct catalog *c, const char *device_id,
                      cat_snapshot_fn fn, void *arg);

/* ---- audit log (append only) ---- */
struct cat_audit {
    int64_t id, time, user_id;
    char device_id[33];
    char addr[64];
    char action[64];
    char target[128];
    char *detail; /* JSON text */
};
int cat_audit_add(struct catalog *c, const struct cat_audit *a);
struct cat_audit_filter {
    int64_t since, until; /* 0: open */
    int64_t user_id;      /* 0: any */
    const char *action;   /* NULL: any */
    const char *device_id;
    int limit;            /* 0: 1000 */
};
typedef int (*cat_audit_fn)(void *arg, const struct cat_audit *a);
int cat_audit_list(struct catalog *c, const struct cat_audit_filter *f,
                   cat_audit_fn fn, void *arg);

#endif
