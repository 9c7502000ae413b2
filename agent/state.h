/*
 * state.h - cairn-agent's state, one SQLite file (WAL, synchronous=NORMAL):
 *
 *   - the to-do list: paths the watcher or a scan found changed, removed,
 *     or to rescan, taken in batches once they have settled and deleted
 *     only when the snapshot holding them is committed, so a crash, a
 *     kill -9 or a reboot re-does a batch rather than losing it;
 *   - a key-value table (last snapshot, last backup, last verification
 *     scan, pause-until, status fields);
 *   - a run log and the most recent file errors, both bounded.
 *
 * Memory is bounded by the caller's batch size, not by the number of
 * files: everything else stays on disk.
 *
 * Times in the to-do list are the caller's monotonic seconds (e.g.
 * CLOCK_BOOTTIME); other times are whatever the caller stores (the agent
 * uses seconds since the epoch).  Paths are bytes without NUL (need not be
 * UTF-8), at most AGENT_STATE_PATH_MAX bytes.
 *
 * Thread safety: every function may be called from any thread; calls on
 * one handle are serialised by its lock.  Errors are cairn_err codes:
 * CAIRN_ENOENT (no such entry), CAIRN_EINVAL (bad argument), CAIRN_EIO
 * (the database failed), CAIRN_ENOSPC, CAIRN_ENOMEM, CAIRN_EVERSION (the
 * file was written by a newer agent).
 */
#ifndef CAIRN_AGENT_STATE_H
#define CAIRN_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

struct agent_state;

#define AGENT_STATE_PATH_MAX 4096
/* The file errors kept (older ones are dropped). */
#define AGENT_STATE_ERRORS_MAX 1000
/* The runs kept in the log. */
#define AGENT_STATE_RUNS_MAX 1000

/* Keys of the key-value table the agent uses. */
#define AGENT_KV_LAST_SNAPSHOT "last_snapshot" /* snapshot id, hex */
#define AGENT_KV_LAST_BACKUP "last_backup"     /* time of its commit */
#define AGENT_KV_LAST_VERIFY "last_verify"     /* last verification scan */
#define AGENT_KV_PAUSE_UNTIL "pause_until"     /* 0: not paused */
#define AGENT_KV_PHASE "phase"                 /* status: "idle", ... */

/*
 * Open (creating it if missing) the state file at path and migrate it to
 * the current schema.  0 and *out (close with agent_state_close);
 * CAIRN_EVERSION if the file is newer than this agent; CAIRN_EIO.
 */
int agent_state_open(const char *path, struct agent_state **out);

/* Close st.  NULL is fine.  In-flight batches stay in flight (see
 * agent_todo_requeue_all_inflight). */
void agent_state_close(struct agent_state *st);

/* The schema version of the open file. */
int agent_state_schema_version(struct agent_state *st);

/*
 * Transactions, to group many changes into one commit (e.g. a burst of
 * watcher events).  begin holds st's lock until commit or rollback, so
 * the thread that began may keep calling st meanwhile; others wait.
 * Nested begins are refused (CAIRN_EINVAL).
 */
int agent_state_begin(struct agent_state *st);
int agent_state_commit(struct agent_state *st);
void agent_state_rollback(struct agent_state *st);

/* ---- the to-do list ---- */

#define AGENT_TODO_CHANGED 0x1u /* content or metadata changed: read it */
#define AGENT_TODO_REMOVED 0x2u /* gone: drop it from the next snapshot */
#define AGENT_TODO_RESCAN 0x4u  /* a directory: walk all of it again */

struct agent_todo_item {
    char *path;
    unsigned flags;       /* AGENT_TODO_* */
    int64_t first_seen;   /* when the entry was queued */
    int64_t last_changed; /* the latest report of a change */
};

struct agent_todo_batch {
    int64_t id; /* 0 when empty */
    struct agent_todo_item *items;
    size_t n;   /* sorted by path */
};

/*
 * Queue path with flags (a non-empty combination of AGENT_TODO_*) at time
 * now.  Already queued: its last-changed time becomes now and the flags
 * merge (the later of CHANGED/REMOVED wins; RESCAN stays); if it was in
 * flight it goes back to waiting, so the batch's commit does not drop a
 * change made after the file was read.  A RESCAN drops the waiting
 * entries below path (the rescan covers them); a path below a waiting
 * RESCAN entry is not queued at all.  0, CAIRN_EINVAL (empty, too long or
 * relative path; bad flags), CAIRN_EIO.
 */
int agent_todo_add(struct agent_state *st, const char *path, unsigned flags,
                   int64_t now);

/*
 * Take up to limit waiting entries whose last change is at or before
 * settle_before (oldest changes first), mark them in flight under a new
 * batch id, and return them.  0 and *out (free with
 * agent_todo_batch_free; n may be 0, then id is 0); CAIRN_EINVAL for
 * limit 0; CAIRN_EIO, CAIRN_ENOMEM (nothing taken).
 */
int agent_todo_take(struct agent_state *st, int64_t settle_before,
                    size_t limit, struct agent_todo_batch **out);

/*
 * As agent_todo_take, but also take entries queued at or before
 * queued_before even if they are still changing (a file written without
 * pause, such as a log, is backed up at least that often).  An entry
 * changed again while in flight counts as queued anew when it goes back
 * to waiting.
 */
int agent_todo_take_overdue(struct agent_state *st, int64_t settle_before,
                            int64_t queued_before, size_t limit,
                            struct agent_todo_batch **out);

/* Free a batch (not its entries in the list).  NULL is fine. */
void agent_todo_batch_free(struct agent_todo_batch *b);

/*
 * The batch is done: delete its entries (those still in it; an entry
 * changed again since it was taken is waiting again and stays).  Batch 0
 * or an unknown batch deletes nothing.  0 or CAIRN_EIO.
 */
int agent_todo_done(struct agent_state *st, int64_t batch_id);

/*
 * At start: every in-flight entry waits again (its batch's snapshot was
 * never committed), and times after now are set to now (a monotonic clock
 * starts again at boot, and an entry must not wait for a time that will
 * not come).  *out_n (if not NULL): the entries put back.  0 or CAIRN_EIO.
 */
int agent_todo_requeue_all_inflight(struct agent_state *st, int64_t now,
                                    int64_t *out_n);

struct agent_todo_counts {
    int64_t total;    /* every entry */
    int64_t inflight; /* in a batch */
    int64_t rescans;  /* entries with AGENT_TODO_RESCAN */
};
/* Count the entries (for status). 0 or CAIRN_EIO. */
int agent_todo_count(struct agent_state *st, struct agent_todo_counts *out);

/* ---- key-value ---- */

/* Set key (1..255 bytes) to value (text; "" is a value).  0, EINVAL, EIO. */
int agent_kv_set(struct agent_state *st, const char *key, const char *value);
/* *out: the value, malloc'ed (the caller frees).  CAIRN_ENOENT if unset. */
int agent_kv_get(struct agent_state *st, const char *key, char **out);
int agent_kv_set_int(struct agent_state *st, const char *key, int64_t value);
/* *out: the value, or def when unset.  CAIRN_ECORRUPT if the value is
 * not an integer. */
int agent_kv_get_int(struct agent_state *st, const char *key, int64_t def,
                     int64_t *out);
/* Remove key (nothing if it is unset).  0 or EIO. */
int agent_kv_delete(struct agent_state *st, const char *key);

/*
 * A snapshot was committed on the server: in one transaction, record
 * snapshot_id (text, e.g. hex) and time as AGENT_KV_LAST_SNAPSHOT and
 * AGENT_KV_LAST_BACKUP, and do agent_todo_done(batch_id).  Either all of
 * it happens or none.  0, CAIRN_EINVAL, CAIRN_EIO.
 */
int agent_state_commit_snapshot(struct agent_state *st, int64_t batch_id,
                                const char *snapshot_id, int64_t time);

/* ---- the run log ---- */

struct agent_run {
    int64_t id;
    int64_t start, end; /* end 0: did not finish (crash, or running) */
    int64_t files, bytes, errors;
    int complete;       /* the snapshot covered the whole selection */
};

/* A run began at start: *out_id names it.  Keeps the last
 * AGENT_STATE_RUNS_MAX runs. */
int agent_run_start(struct agent_state *st, int64_t start, int64_t *out_id);
/* The run ended (r->id names it; start is kept).  CAIRN_ENOENT. */
int agent_run_end(struct agent_state *st, const struct agent_run *r);
/* The most recent run.  CAIRN_ENOENT if none. */
int agent_run_last(struct agent_state *st, struct agent_run *out);
/* Call fn for up to limit runs, newest first (0: all kept); stops at and
 * returns fn's first non-zero result.  fn runs without the lock. */
typedef int (*agent_run_fn)(void *arg, const struct agent_run *r);
int agent_run_list(struct agent_state *st, size_t limit, agent_run_fn fn,
                   void *arg);

/* ---- recent file errors ---- */

struct agent_file_error {
    int64_t id;
    const char *path;   /* borrowed for the callback */
    const char *reason;
    int64_t time;
};

/* Record that path failed for reason at time; the oldest beyond
 * AGENT_STATE_ERRORS_MAX are dropped. */
int agent_error_add(struct agent_state *st, const char *path,
                    const char *reason, int64_t time);
/* Call fn for up to limit errors, newest first (0: all); stops at and
 * returns fn's first non-zero result.  The strings live for the call. */
typedef int (*agent_error_fn)(void *arg, const struct agent_file_error *e);
int agent_error_list(struct agent_state *st, size_t limit, agent_error_fn fn,
                     void *arg);
int agent_error_count(struct agent_state *st, int64_t *out);
/* Forget every error (e.g. after a complete backup), or those of one path
 * (it was read since). */
int agent_error_clear(struct agent_state *st);
int agent_error_clear_path(struct agent_state *st, const char *path);

/* ---- the object cache ----
 *
 * The local copy of an archive's immutable objects (index objects,
 * snapshots, the config: content-named, never rewritten), so that the
 * agent does not fetch the whole index again at every start.  type is a
 * cairn_obj_type.  */

/* *out (malloc'ed, *out_len bytes) or CAIRN_ENOENT. */
int agent_cache_get(struct agent_state *st, int type, const char *name,
                    uint8_t **out, size_t *out_len);
/* Keep a copy (an existing one is kept). */
int agent_cache_put(struct agent_state *st, int type, const char *name,
                    const uint8_t *buf, size_t len);
/* Forget one (it did not decode: fetch it again next time). */
int agent_cache_drop(struct agent_state *st, int type, const char *name);

#endif
