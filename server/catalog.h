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
    int64_t next_backup; /* as the agent last reported it (0: unknown) */
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

/* ---- restore requests (catalog_requests.c) ---- */
/*
 * A person asks the IT office to restore (part of) a shared device of
 * their department; an administrator fulfils it (a push restore or a
 * download) or declines it, once.
 */
struct cat_request {
    int64_t id;
    int64_t created;
    int64_t requester_id;
    int64_t dept_id;        /* the requester's (and device's) department */
    char device_id[33];
    char *paths;            /* JSON array of absolute paths (malloc'ed) */
    char version[65];       /* snapshot id or prefix; "" for as_of/latest */
    int64_t as_of;          /* 0: latest (or version) */
    char destination[256];  /* where to, in the requester's words */
    char reason[1024];
    char state[16];         /* "open", "fulfilled", "declined" */
    int64_t decided_by, decided_at; /* 0 while open */
    char how[16];           /* "push", "download" or "" */
    char outcome[1024];     /* the decline reason or the fulfiller's note */
    int64_t push_id;        /* the push restore that fulfilled it, or 0 */
};
/* Add an open request (r->state, decided_*, how, outcome and push_id are
 * ignored) and set r->id.  CAIRN_ENOENT if the requester or device does
 * not exist. */
int cat_request_add(struct catalog *c, struct cat_request *r);
/* A request by id.  CAIRN_ENOENT if none.  Clear *out with
 * cat_request_clear. */
int cat_request_get(struct catalog *c, int64_t id, struct cat_request *out);
/* Free what cat_request_get allocated.  NULL is fine. */
void cat_request_clear(struct cat_request *r);
struct cat_request_filter {
    const char *state;     /* NULL: any */
    int64_t requester_id;  /* 0: any */
    const char *device_id; /* NULL: any */
    int64_t dept_id;       /* 0: any */
    int limit;             /* 0: 1000 */
};
typedef int (*cat_request_fn)(void *arg, const struct cat_request *r);
/* Call fn on the requests matching f (NULL: any), oldest first; stops at
 * (and returns) the first non-zero result of fn.  fn may call the
 * catalog. */
int cat_request_list(struct catalog *c, const struct cat_request_filter *f,
                     cat_request_fn fn, void *arg);
/*
 * Decide an open request: state "fulfilled" (how "push" or "download",
 * outcome a note, push_id or 0) or "declined" (outcome the reason, how "",
 * push_id 0), by user `by` at time `at`.  A request is decided once:
 * CAIRN_EEXIST if it was decided already, CAIRN_ENOENT if there is no such
 * request, CAIRN_EINVAL for another state.
 */
int cat_request_decide(struct catalog *c, int64_t id, const char *state,
                       int64_t by, int64_t at, const char *how,
                       const char *outcome, int64_t push_id);

/* ---- push restores and restore records (catalog_push.c) ---- */

/*
 * A push restore: an administrator restores a source device's files onto
 * another enrolled device (the target), whose cairn fetches the job and
 * writes them.  state: "queued", "running", "done", "failed".
 */
struct cat_push {
    int64_t id;
    int64_t created, created_by;
    char source_device[33], target_device[33];
    char snapshot[65];       /* snapshot id, resolved when queued */
    char *paths;             /* JSON array of absolute paths */
    char target_dir[1024];   /* on the target device */
    uint8_t *wrapped_key;    /* opaque to the server */
    size_t wrapped_key_len;
    char state[16];
    int64_t updated, files, bytes;
    char error[512];
    int64_t request_id;      /* the restore request it fulfils, or 0 */
};
/* Add a queued job and set p->id.  CAIRN_ENOENT if a device or the user
 * does not exist. */
int cat_push_add(struct catalog *c, struct cat_push *p);
int cat_push_get(struct catalog *c, int64_t id, struct cat_push *out);
/* Set the state, counts and error (NULL: "") and updated = now. */
int cat_push_set_state(struct catalog *c, int64_t id, const char *state,
                       int64_t files, int64_t bytes, const char *error,
                       int64_t now);
struct cat_push_filter {
    const char *device;   /* source or target; NULL: any */
    const char *target;   /* target only; NULL: any */
    const char *source;   /* source only; NULL: any */
    int active_only;      /* queued or running */
    int limit;            /* 0: 1000 */
};
typedef int (*cat_push_fn)(void *arg, const struct cat_push *p);
/* Newest first. */
int cat_push_list(struct catalog *c, const struct cat_push_filter *f,
                  cat_push_fn fn, void *arg);
void cat_push_clear(struct cat_push *p);

/*
 * A restore record: who restored what of which device, and how much.
 * id: 32 random hex digits, made by the caller.  Bound to its caller (a
 * person's user id, or a device).  state: "running", then "done",
 * "failed" or "interrupted".
 */
struct cat_restore {
    char id[33];
    int64_t created;
    int64_t user_id;        /* the person, or 0 */
    char caller_device[33]; /* the device, or "" */
    char device_id[33];     /* whose archive */
    char snapshot[65];
    char *paths;            /* JSON array */
    char target[1024];
    int64_t push_id;
    char state[16];
    int64_t finished, files, bytes, errors;
};
int cat_restore_add(struct catalog *c, const struct cat_restore *r);
int cat_restore_get(struct catalog *c, const char *id,
                    struct cat_restore *out);
/* Finish a running record (CAIRN_EEXIST if it is finished already). */
int cat_restore_finish(struct catalog *c, const char *id, const char *state,
                       int64_t files, int64_t bytes, int64_t errors,
                       int64_t now);
void cat_restore_clear(struct cat_restore *r);

/* ---- agent settings pushed by the server (catalog_settings.c) ---- */
/*
 * The settings the IT office sets for agents, for the organisation
 * (dept_id 0) or one department (overriding the organisation's):
 * body is a JSON object of settings, locked a JSON array of the keys the
 * agent's own file may not override (both checked by the API, stored as
 * given).  updated_by is a user id.
 */
struct cat_settings {
    char *body;
    char *locked;
    int64_t updated, updated_by;
};
/* CAIRN_ENOENT if never set. */
int cat_settings_get(struct catalog *c, int64_t dept_id,
                     struct cat_settings *out);
/* Create or replace (body and locked must not be NULL: CAIRN_EINVAL). */
int cat_settings_set(struct catalog *c, int64_t dept_id,
                     const struct cat_settings *s);
/* CAIRN_ENOENT if there were none. */
int cat_settings_delete(struct catalog *c, int64_t dept_id);
/* Free the strings.  NULL is fine. */
void cat_settings_clear(struct cat_settings *s);

#endif
