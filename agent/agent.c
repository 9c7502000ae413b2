/*
 * agent.c - cairn-agent's loop (agent.h).
 *
 * The main thread waits in poll() on three things: the watcher's
 * descriptor, the worker's completion pipe, and a timeout (the next
 * backup due, the settle time of the newest change, the watchdog, the
 * pause file).  Whatever the watcher reports goes straight into the
 * to-do list in the state database.  When a backup is due, the main
 * thread takes a batch of settled entries and hands it to the worker
 * thread, which opens the archive if needed, runs a targeted backup (only
 * the paths in the batch are looked at again; everything else comes from
 * the parent snapshot) and reports status to the server.  Only when the
 * snapshot is committed on the server is the batch deleted from the list,
 * in the same transaction that records the new parent; a crash anywhere
 * before that re-does the batch, and nothing the server already holds is
 * sent again (the index says so).
 *
 * Every start queues a rescan of each selected folder, to catch what
 * changed while the agent was not running; the daily verification scan
 * does the same.  Both walk the selection with the parent snapshot, so
 * unchanged files are not read.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cairn/backup.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/store.h"
#include "cli.h"
#include "scan/exclude.h"

#include "agent.h"
#include "cache_store.h"
#include "config.h"
#include "notify.h"
#include "state.h"
#include "watch.h"

#define BATCH_MAX 10000       /* to-do entries per backup */
#define REPORT_EVERY 15       /* seconds between status reports while busy */
#define HEARTBEAT_EVERY 600   /* seconds between reports while idle */
#define STATUS_FILE_EVERY 2   /* seconds between status file writes */
#define STATUS_WARN_EVERY 600 /* seconds between "cannot write" warnings */
#define BACKOFF_MIN 5         /* seconds after a failed backup, doubling */
#define BACKOFF_MAX 300
#define IDLE_WAKE_MS 5000     /* re-read the pause file this often */
#define MAX_UNSETTLED 60      /* seconds a changing file may wait at most */

enum job_kind { JOB_NONE, JOB_BACKUP, JOB_REPORT, JOB_PUSH };

struct job {
    enum job_kind kind;
    struct agent_todo_batch *batch;
    char **dirty;
    size_t ndirty;
    int verify;      /* the batch rescans every root: a verification scan */
    int incomplete;  /* entries remain queued after this batch */
    /* results */
    int rc;
    struct cairn_backup_result res;
    char snap_hex[65];
};

struct agent {
    struct agent_opts o;
    char state_dir[PATH_MAX];
    char status_path[PATH_MAX + 32], pause_path[PATH_MAX + 32];
    struct cli cli; /* for cli_lib: the device file, the API client */
    struct cli_device *dev;
    struct agent_config local, cfg;
    const char **patterns; /* in force, NULL-ended (strings borrowed) */
    size_t npatterns;
    struct cairn_exclude *ex;
    struct agent_state *st;
    struct agent_watch *w;

    /* Owned by the worker thread while a job runs. */
    struct cairn_repo *repo;
    struct cairn_snapshot *parent;
    struct cli_api *api;
    int64_t last_report;
    int64_t cpu_mark_ns, wall_mark_ns;

    /* The worker. */
    pthread_t thread;
    int thread_started;
    int done_pipe[2];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *job;      /* handed to the worker */
    int job_done;         /* the worker finished it */
    int quit;
    volatile int cancel;  /* stop the running backup (pause, shutdown) */

    /* Main thread's bookkeeping (monotonic seconds unless said). */
    int busy;
    /* milliseconds of mono_ms(): */
    int64_t last_event, last_start, backoff_until, last_unwatched;
    int64_t not_before; /* nothing queued has settled before this */
    int64_t backoff; /* seconds */
    int64_t pause_until;  /* epoch seconds */
    int64_t next_verify;  /* epoch seconds */
    int64_t last_status_write;
    int64_t status_warned;   /* mono_s of the last "cannot write" warning;
                                0: the last write worked */
    int64_t last_heartbeat;
    int64_t last_push_poll; /* mono_ms */
    int64_t files_todo;
    char phase[32];
    char last_error[256];
    uint64_t watchdog_us;
    int64_t last_watchdog_ms;
};

static int64_t next_due(const struct agent *a);

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_s(void)
{
    return mono_ms() / 1000;
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void logf_(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cairn_log(level, "%s", buf);
}

static void hex_of(const uint8_t *id, char out[65])
{
    static const char d[] = "0123456789abcdef";
    int i;

    for (i = 0; i < CAIRN_ID_LEN; i++) {
        out[2 * i] = d[id[i] >> 4];
        out[2 * i + 1] = d[id[i] & 15];
    }
    out[64] = '\0';
}

static void set_phase(struct agent *a, const char *phase)
{
    snprintf(a->phase, sizeof(a->phase), "%s", phase);
    agent_kv_set(a->st, AGENT_KV_PHASE, phase);
}

/* mkdir -p path, new folders 0700. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX], *p;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Write text to path whole or not at all. */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    size_t n = strlen(text), off = 0;
    ssize_t w;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        return -1;
    while (off < n) {
        if ((w = write(fd, text + off, n - off)) < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---- configuration ---- */

static int add_pattern(void *arg, const char *pattern)
{
    struct agent *a = arg;
    const char **v;

    if ((v = realloc(a->patterns, (a->npatterns + 2) * sizeof(*v))) == NULL)
        return CAIRN_ENOMEM;
    a->patterns = v;
    v[a->npatterns++] = pattern;
    v[a->npatterns] = NULL;
    return cairn_exclude_add(a->ex, pattern);
}

/* The settings the server pushes, or those it pushed last time (kept in
 * the state database) when it cannot be reached now. */
static json_t *server_settings(struct agent *a, struct cli_api *api)
{
    char path[128], *cached = NULL;
    json_t *res = NULL;

    snprintf(path, sizeof(path), "/api/v1/devices/%s/settings",
             a->dev->device_id);
    if (api != NULL && cli_api_call(api, "GET", path, NULL, &res) == 0 &&
        json_is_object(res)) {
        char *text = json_dumps(res, JSON_COMPACT);

        if (text != NULL)
            agent_kv_set(a->st, "server_settings", text);
        free(text);
        return res;
    }
    json_decref(res);
    if (api != NULL && cli_api_last_error(api)->status == 404)
        return NULL; /* a server without pushed settings */
    if (agent_kv_get(a->st, "server_settings", &cached) == 0) {
        res = json_loads(cached, 0, NULL);
        free(cached);
    }
    return res;
}

/* Merge the local file with the server's settings into a->cfg and build
 * the exclude matcher. */
static int apply_config(struct agent *a, json_t *server, char *why,
                        size_t whylen)
{
    struct agent_config merged;
    int rc;

    if ((rc = agent_config_merge(&a->local, server, &merged, why, whylen)) !=
        0) {
        if (server == NULL)
            return rc;
        /* Settings this agent does not understand (a newer server?):
         * keep to the local file rather than stop protecting files. */
        logf_(CAIRN_LOG_WARN, "the server's settings are not usable (%s); "
                              "using the local configuration",
              why);
        if ((rc = agent_config_merge(&a->local, NULL, &merged, why,
                                     whylen)) != 0)
            return rc;
    }
    if (merged.npaths == 0) {
        agent_config_clear(&merged);
        snprintf(why, whylen, "nothing to back up: the configuration names "
                              "no folders (\"paths\")");
        return CAIRN_EINVAL;
    }
    agent_config_clear(&a->cfg);
    a->cfg = merged;
    cairn_exclude_free(a->ex);
    free(a->patterns);
    a->patterns = NULL;
    a->npatterns = 0;
    if ((rc = cairn_exclude_new(&a->ex)) != 0)
        return rc;
    if ((rc = agent_config_patterns(&a->cfg, add_pattern, a)) != 0) {
        snprintf(why, whylen, "an exclude pattern is not valid");
        return rc;
    }
    /* Never back up the agent's own state (it changes with every
     * backup, which would never settle). */
    return add_pattern(a, a->state_dir);
}

static int watch_excluded(void *arg, const char *path, int is_dir)
{
    struct agent *a = arg;
    const char *name = strrchr(path, '/');
    size_t sl = strlen(a->state_dir);

    if (strncmp(path, a->state_dir, sl) == 0 &&
        (path[sl] == '\0' || path[sl] == '/'))
        return 1;
    return cairn_exclude_match(a->ex, path, strlen(path),
                               name ? name + 1 : path, is_dir);
}

/* ---- the archive (worker thread) ---- */

static int open_archive(struct agent *a)
{
    struct cairn_http_opts ho;
    struct cairn_store *http = NULL, *st = NULL;
    char *spec = NULL;
    int rc;

    if (a->repo != NULL)
        return 0;
    memset(&ho, 0, sizeof(ho));
    ho.base_url = a->dev->server;
    ho.device_id = a->dev->device_id;
    ho.token = a->dev->token;
    ho.pin = a->dev->pin;
    ho.retry_secs = 10; /* then the agent's own backoff */
    ho.max_send_bps = (uint64_t)a->cfg.bandwidth_limit;
    if ((rc = cairn_store_http_open(&ho, &http)) != 0)
        return rc;
    if ((rc = agent_cache_store_new(http, a->st, &st)) != 0) {
        cairn_store_free(http);
        return rc;
    }
    if ((rc = cairn_repo_open_key(st, a->dev->key, a->dev->archive_id,
                                  &a->repo)) != 0) {
        cairn_store_free(st);
        return rc;
    }
    if ((rc = cairn_repo_load_index(a->repo, NULL)) != 0)
        goto fail;
    /* The parent: the snapshot this agent committed last, else the newest
     * on the server (a new state database, or a `cairn backup` before). */
    if (agent_kv_get(a->st, AGENT_KV_LAST_SNAPSHOT, &spec) != 0)
        spec = NULL;
    rc = cairn_repo_find_snapshot(a->repo, spec ? spec : "latest",
                                  &a->parent);
    if (rc == CAIRN_ENOENT && spec != NULL)
        rc = cairn_repo_find_snapshot(a->repo, "latest", &a->parent);
    free(spec);
    if (rc == CAIRN_ENOENT) {
        a->parent = NULL;
        rc = 0;
    }
    if (rc != 0)
        goto fail;
    return 0;
fail:
    cairn_repo_free(a->repo);
    a->repo = NULL;
    return rc;
}

static void close_archive(struct agent *a)
{
    cairn_snapshot_free(a->parent);
    a->parent = NULL;
    cairn_repo_free(a->repo);
    a->repo = NULL;
}

/* POST the device's status (worker thread). */
static void report_status(struct agent *a, const char *phase,
                          const struct cairn_progress *p, int64_t todo,
                          int64_t errors)
{
    char path[128];
    json_t *req;
    uint64_t files = a->parent ? a->parent->files : 0;
    uint64_t bytes = a->parent ? a->parent->bytes : 0;
    uint64_t btodo = 0;

    if (a->api == NULL &&
        cli_api_new(a->dev->server, a->dev->pin, a->dev->token, &a->api) != 0)
        return;
    if (p != NULL && p->bytes_total > 0) {
        if (p->bytes_total > bytes)
            bytes = p->bytes_total;
        if (p->files_total > files)
            files = p->files_total;
        btodo = p->bytes_total > p->bytes_done ? p->bytes_total - p->bytes_done
                                               : 0;
    }
    req = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "phase", phase,
                    "files_selected", (json_int_t)files, "bytes_selected",
                    (json_int_t)bytes, "files_todo", (json_int_t)todo,
                    "bytes_todo", (json_int_t)btodo, "errors",
                    (json_int_t)errors);
    if (req != NULL) {
        /* When the next backup is due (the interval after this one; with
         * frequency 0, as soon as something changes: not known). */
        int64_t next = a->cfg.frequency > 0 ? (int64_t)time(NULL) +
                                                  a->cfg.frequency
                                            : 0;
        char when[32];
        struct tm tm;
        time_t t = (time_t)next;

        if (next > 0 && gmtime_r(&t, &tm) != NULL &&
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            json_object_set_new(req, "next_backup", json_string(when));
        else
            json_object_set_new(req, "next_backup", json_null());
    }
    snprintf(path, sizeof(path), "/api/v1/devices/%s/status",
             a->dev->device_id);
    if (req != NULL && cli_api_call(a->api, "POST", path, req, NULL) != 0)
        logf_(CAIRN_LOG_DEBUG, "status not reported to %s: %s",
              a->dev->server, cli_api_last_error(a->api)->message);
    json_decref(req);
    a->last_report = mono_s();
}

/* Keep the backup near its CPU share: sleep when the process has used
 * more than its share of one core since the last mark. */
static void cpu_throttle(struct agent *a)
{
    struct timespec ts;
    int64_t cpu, wall, want;

    if (a->cfg.cpu_share >= 100)
        return;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    cpu = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    wall = now_ns();
    if (a->wall_mark_ns == 0 || wall - a->wall_mark_ns > 5000000000LL) {
        a->cpu_mark_ns = cpu;
        a->wall_mark_ns = wall;
        return;
    }
    want = (cpu - a->cpu_mark_ns) * 100 / a->cfg.cpu_share;
    if (want > wall - a->wall_mark_ns) {
        int64_t ns = want - (wall - a->wall_mark_ns);

        if (ns > 1000000000)
            ns = 1000000000;
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        nanosleep(&ts, NULL);
    }
}

static void on_backup_event(void *arg, const struct cairn_event *ev)
{
    struct agent *a = arg;
    char why[256];

    if (ev->kind == CAIRN_EV_FILE_ERROR && ev->path != NULL) {
        snprintf(why, sizeof(why), "%s",
                 ev->detail ? ev->detail
                 : ev->sys_errno ? strerror(ev->sys_errno)
                                 : cairn_strerror(ev->err));
        logf_(CAIRN_LOG_WARN, "not backed up: %s: %s", ev->path, why);
        agent_error_add(a->st, ev->path, why, (int64_t)time(NULL));
    } else if (ev->kind == CAIRN_EV_PROGRESS && ev->progress != NULL) {
        if (mono_s() - a->last_report >= REPORT_EVERY)
            report_status(a, "backing-up", ev->progress, a->files_todo,
                          (int64_t)ev->progress->errors);
    }
    cpu_throttle(a);
}

static void run_backup(struct agent *a, struct job *j)
{
    struct cairn_backup_opts bo;
    int64_t nerr = 0;
    int rc;

    if ((rc = open_archive(a)) != 0) {
        j->rc = rc;
        return;
    }
    report_status(a, "backing-up", NULL, a->files_todo, 0);
    memset(&bo, 0, sizeof(bo));
    bo.paths = (const char *const *)a->cfg.paths;
    bo.npaths = a->cfg.npaths;
    bo.excludes = a->patterns;
    bo.nexcludes = a->npatterns;
    bo.exclude_caches = a->cfg.exclude_caches;
    bo.parent = a->parent;
    bo.threads = a->cfg.cpu_share >= 100 ? 0 : 1;
    bo.on_event = on_backup_event;
    bo.event_arg = a;
    bo.cancel = &a->cancel;
    bo.dirty = (const char *const *)j->dirty;
    bo.ndirty = j->ndirty;
    bo.dirty_set = a->parent != NULL && !j->verify;
    bo.incomplete = j->incomplete;
    a->wall_mark_ns = 0;
    rc = cairn_backup(a->repo, &bo, &j->res);
    j->rc = rc;
    if (rc != 0) {
        /* The archive may be behind what the server has now (a failed
         * upload); open it again next time. */
        if (rc != CAIRN_ECANCELED)
            close_archive(a);
        return;
    }
    hex_of(j->res.snapshot_id, j->snap_hex);
    cairn_snapshot_free(a->parent);
    a->parent = NULL;
    if ((rc = cairn_repo_find_snapshot(a->repo, j->snap_hex, &a->parent)) !=
        0) {
        logf_(CAIRN_LOG_WARN, "snapshot %.12s committed but not read back: "
                              "%s",
              j->snap_hex, cairn_strerror(rc));
        close_archive(a);
    }
    agent_error_count(a->st, &nerr);
    report_status(a, "idle", NULL, j->incomplete ? a->files_todo : 0,
                  (int64_t)j->res.errors);
}

static void *worker(void *arg)
{
    struct agent *a = arg;
    struct job *j;
    char c = 1;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        /* A job is handed over with job_done 0; a finished one stays in
         * a->job (job_done 1) until the main thread takes it back. */
        while ((a->job == NULL || a->job_done) && !a->quit)
            pthread_cond_wait(&a->cond, &a->lock);
        if (a->quit)
            break;
        j = a->job;
        pthread_mutex_unlock(&a->lock);
        if (j->kind == JOB_BACKUP)
            run_backup(a, j);
        else if (j->kind == JOB_REPORT)
            report_status(a, a->phase, NULL, a->files_todo, 0);
        else if (j->kind == JOB_PUSH)
            /* Files an administrator restores onto this computer (a
             * replacement, a shared computer): fetched and written like
             * `cairn restore --pending`; outcomes go to the server. */
            (void)cli_push_pending(&a->cli, 0);
        pthread_mutex_lock(&a->lock);
        a->job_done = 1;
        while (write(a->done_pipe[1], &c, 1) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void job_free(struct job *j)
{
    size_t i;

    if (j == NULL)
        return;
    for (i = 0; i < j->ndirty; i++)
        free(j->dirty[i]);
    free(j->dirty);
    agent_todo_batch_free(j->batch);
    free(j);
}

static void hand_over(struct agent *a, struct job *j)
{
    pthread_mutex_lock(&a->lock);
    a->job = j;
    a->job_done = 0;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->lock);
    a->busy = 1;
}

/* The worker finished (its byte is in the pipe): take the job back. */
static struct job *take_back(struct agent *a)
{
    struct job *j;
    char buf;

    while (read(a->done_pipe[0], &buf, 1) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&a->lock);
    j = a->job;
    a->job = NULL;
    a->job_done = 0;
    pthread_mutex_unlock(&a->lock);
    a->busy = 0;
    return j;
}

/* ---- status ---- */

static int add_error_json(void *arg, const struct agent_file_error *e)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "path", e->path, "reason",
                          e->reason, "time", (json_int_t)e->time);

    if (o != NULL)
        json_array_append_new(arg, o);
    return 0;
}

static void write_status(struct agent *a, int force)
{
    struct agent_todo_counts tc = {0, 0, 0};
    struct agent_run run;
    int64_t last_backup = 0, last_complete = 0, nerr = 0, now = time(NULL);
    int64_t next = 0;
    char *snap = NULL, *text;
    json_t *o, *errs;

    if (!force && mono_s() - a->last_status_write < STATUS_FILE_EVERY)
        return;
    a->last_status_write = mono_s();
    agent_todo_count(a->st, &tc);
    a->files_todo = tc.total;
    agent_kv_get_int(a->st, AGENT_KV_LAST_BACKUP, 0, &last_backup);
    agent_kv_get_int(a->st, "last_complete_backup", 0, &last_complete);
    agent_kv_get(a->st, AGENT_KV_LAST_SNAPSHOT, &snap);
    agent_error_count(a->st, &nerr);
    if (tc.total > 0 && !a->busy) {
        int64_t due = next_due(a);

        next = now + (due > mono_ms() ? (due - mono_ms()) / 1000 : 0);
    }
    errs = json_array();
    agent_error_list(a->st, 10, add_error_json, errs);
    o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                  "s:I, s:I, s:s?, s:o, s:s, s:I}",
                  "phase", a->phase, "watcher",
                  a->w ? agent_watch_mode(a->w) : "none", "server",
                  a->dev->server, "device", a->dev->device_id, "files_todo",
                  (json_int_t)tc.total, "in_flight", (json_int_t)tc.inflight,
                  "last_backup", (json_int_t)last_backup,
                  "last_complete_backup", (json_int_t)last_complete,
                  "next_backup", (json_int_t)next, "next_verify",
                  (json_int_t)a->next_verify, "paused_until",
                  (json_int_t)(a->pause_until > now ? a->pause_until : 0),
                  "frequency", (json_int_t)a->cfg.frequency, "errors",
                  (json_int_t)nerr, "last_snapshot", snap, "recent_errors",
                  errs, "last_error", a->last_error, "updated",
                  (json_int_t)now);
    free(snap);
    if (o != NULL && agent_run_last(a->st, &run) == 0)
        json_object_set_new(
            o, "last_run",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "start",
                      (json_int_t)run.start, "end", (json_int_t)run.end,
                      "files", (json_int_t)run.files, "bytes",
                      (json_int_t)run.bytes, "errors", (json_int_t)run.errors,
                      "complete", run.complete));
    if (o == NULL || (text = json_dumps(o, JSON_INDENT(2))) == NULL) {
        json_decref(o);
        return;
    }
    json_decref(o);
    /* Every few seconds: say it when it starts failing, then every ten
     * minutes, and when it works again. */
    if (write_file_atomic(a->status_path, text) != 0) {
        int e = errno;
        int64_t t = mono_s();

        if (a->status_warned == 0 || t - a->status_warned >= STATUS_WARN_EVERY) {
            logf_(CAIRN_LOG_WARN, "cannot write %s: %s (cairn status shows "
                                  "an old status until it can)",
                  a->status_path, strerror(e));
            a->status_warned = t > 0 ? t : 1;
        }
    } else if (a->status_warned != 0) {
        logf_(CAIRN_LOG_INFO, "%s written again", a->status_path);
        a->status_warned = 0;
    }
    free(text);
}

/* ---- the to-do list ---- */

struct drain {
    struct agent *a;
    int64_t now;
    size_t n;
    int began; /* a transaction is open (only once there is something) */
};

static int on_watch(void *arg, const char *path, unsigned flags)
{
    struct drain *d = arg;
    unsigned tf = 0;
    int rc;

    if (flags & AGENT_WATCH_CHANGED)
        tf |= AGENT_TODO_CHANGED;
    if (flags & AGENT_WATCH_REMOVED)
        tf |= AGENT_TODO_REMOVED;
    if (flags & AGENT_WATCH_RESCAN)
        tf |= AGENT_TODO_RESCAN;
    if (tf == 0)
        return 0;
    if (!d->began) {
        if ((rc = agent_state_begin(d->a->st)) != 0)
            return rc;
        d->began = 1;
    }
    if ((rc = agent_todo_add(d->a->st, path, tf, d->now)) != 0 &&
        rc != CAIRN_EINVAL)
        return rc;
    d->n++;
    return 0;
}

static int drain_watcher(struct agent *a)
{
    struct drain d = {a, mono_ms(), 0, 0};
    int rc;

    rc = agent_watch_read(a->w, on_watch, &d);
    if (rc != 0) {
        if (d.began)
            agent_state_rollback(a->st);
        return rc;
    }
    if (d.began && (rc = agent_state_commit(a->st)) != 0)
        return rc;
    if (d.n > 0) {
        a->last_event = d.now;
        a->files_todo += (int64_t)d.n;
    }
    return 0;
}

/* Queue a rescan of every root (start, verification, poll of what the
 * watcher cannot see). */
static int queue_rescan_all(struct agent *a)
{
    size_t i;
    int rc;

    for (i = 0; i < a->cfg.npaths; i++)
        if ((rc = agent_todo_add(a->st, a->cfg.paths[i], AGENT_TODO_RESCAN,
                                 mono_ms())) != 0)
            return rc;
    a->files_todo += (int64_t)a->cfg.npaths;
    return 0;
}

static int queue_unwatched(void *arg, const char *path, unsigned flags)
{
    struct agent *a = arg;

    (void)flags;
    return agent_todo_add(a->st, path, AGENT_TODO_RESCAN, mono_ms());
}

/* Is every root rescanned by this batch? */
static int batch_is_verify(const struct agent *a,
                           const struct agent_todo_batch *b)
{
    size_t i, k, hit = 0;

    for (i = 0; i < a->cfg.npaths; i++)
        for (k = 0; k < b->n; k++)
            if ((b->items[k].flags & AGENT_TODO_RESCAN) &&
                strcmp(b->items[k].path, a->cfg.paths[i]) == 0) {
                hit++;
                break;
            }
    return hit == a->cfg.npaths;
}

/* Take a settled batch and start backing it up.  1 if started. */
static int start_backup(struct agent *a)
{
    struct agent_todo_batch *b = NULL;
    struct agent_todo_counts tc;
    struct job *j;
    size_t i;
    int rc;

    /* Settled entries, and those waiting longer than MAX_UNSETTLED (or
     * the interval, if longer) even if they are still changing. */
    rc = agent_todo_take_overdue(
        a->st, mono_ms() - a->cfg.settle * 1000,
        mono_ms() - (a->cfg.frequency > MAX_UNSETTLED ? a->cfg.frequency
                                                      : MAX_UNSETTLED) *
                        1000,
        BATCH_MAX, &b);
    if (rc != 0 || b->n == 0) {
        /* Nothing has settled yet: look again when the newest change
         * could have (the oldest is sooner, but this never spins). */
        a->not_before = mono_ms() + (a->cfg.settle > 0 ? a->cfg.settle * 1000
                                                      : 100);
        agent_todo_batch_free(b);
        return 0;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL ||
        (j->dirty = calloc(b->n, sizeof(*j->dirty))) == NULL) {
        free(j);
        agent_todo_batch_free(b);
        agent_todo_requeue_all_inflight(a->st, mono_ms(), NULL);
        return 0;
    }
    j->kind = JOB_BACKUP;
    j->batch = b;
    for (i = 0; i < b->n; i++) {
        if ((j->dirty[i] = strdup(b->items[i].path)) == NULL)
            break;
        j->ndirty++;
    }
    j->verify = batch_is_verify(a, b);
    if (agent_todo_count(a->st, &tc) == 0)
        j->incomplete = tc.total > tc.inflight;
    a->files_todo = tc.total;
    a->last_start = mono_ms();
    a->cancel = 0;
    set_phase(a, "backing-up");
    if (a->o.verbose)
        logf_(CAIRN_LOG_INFO, "backing up %zu changed path%s%s", b->n,
              b->n == 1 ? "" : "s", j->verify ? " (full scan)" : "");
    agent_notify("STATUS=backing up");
    hand_over(a, j);
    return 1;
}

static void finish_backup(struct agent *a, struct job *j)
{
    struct agent_run run;
    int64_t now = time(NULL), rid = 0;
    int rc;

    memset(&run, 0, sizeof(run));
    if (j->rc == 0) {
        if ((rc = agent_state_commit_snapshot(a->st, j->batch->id,
                                              j->snap_hex, now)) != 0)
            logf_(CAIRN_LOG_ERROR, "snapshot %.12s is on the server but the "
                                   "state database failed (%s): the batch "
                                   "will be backed up again",
                  j->snap_hex, cairn_strerror(rc));
        if (j->res.complete)
            agent_kv_set_int(a->st, "last_complete_backup", now);
        if (j->verify)
            agent_kv_set_int(a->st, AGENT_KV_LAST_VERIFY, now);
        if (agent_run_start(a->st, now - j->res.elapsed_ns / 1000000000,
                            &rid) == 0) {
            run.id = rid;
            run.end = now;
            run.files = (int64_t)(j->res.files_new + j->res.files_changed);
            run.bytes = (int64_t)j->res.bytes_read;
            run.errors = (int64_t)j->res.errors;
            run.complete = j->res.complete;
            agent_run_end(a->st, &run);
        }
        /* One line per commit: what the recovery point is measured by. */
        logf_(CAIRN_LOG_INFO,
              "committed snapshot %.12s at %lld.%03lld: %zu path%s, %llu "
              "file%s read, %llu bytes added, %llu dirs listed, %llu reused%s",
              j->snap_hex, (long long)(now_ns() / 1000000000),
              (long long)(now_ns() / 1000000 % 1000), j->ndirty,
              j->ndirty == 1 ? "" : "s",
              (unsigned long long)(j->res.files_new + j->res.files_changed),
              (j->res.files_new + j->res.files_changed) == 1 ? "" : "s",
              (unsigned long long)j->res.added_bytes,
              (unsigned long long)j->res.dirs_listed,
              (unsigned long long)j->res.dirs_reused,
              j->res.complete ? ", complete" : "");
        a->backoff = 0;
        a->backoff_until = 0;
        a->last_error[0] = '\0';
    } else {
        agent_todo_requeue_all_inflight(a->st, mono_ms(), NULL);
        if (j->rc == CAIRN_ECANCELED) {
            logf_(CAIRN_LOG_INFO, "backup stopped; it resumes later");
        } else {
            a->backoff = a->backoff == 0 ? BACKOFF_MIN : a->backoff * 2;
            if (a->backoff > BACKOFF_MAX)
                a->backoff = BACKOFF_MAX;
            /* jitter: up to a quarter more, so agents do not all return
             * at once when a server comes back */
            a->backoff_until =
                mono_ms() + a->backoff * 1000 +
                (int64_t)(random() % (a->backoff * 250 + 1));
            /* The archive is on the server (the local cache only ever
             * copies, best effort): no space means the server's disk. */
            snprintf(a->last_error, sizeof(a->last_error), "%s",
                     j->rc == CAIRN_ENOSPC ? "the server's disk is full"
                                           : cairn_strerror(j->rc));
            logf_(CAIRN_LOG_WARN, "backup failed (%s); changes stay queued, "
                                  "next try in %lld s",
                  a->last_error, (long long)a->backoff);
        }
    }
    set_phase(a, a->backoff_until ? "waiting" : "idle");
    agent_notify("STATUS=idle");
    write_status(a, 1);
    /* Give what the backup used back to the system: an idle agent's
     * footprint is its index and state, not its largest backup's. */
    malloc_trim(0);
}

/* ---- pause ---- */

/* The pause file holds the time (seconds since the epoch) until which
 * backups wait; `cairn status --pause` writes it. */
static void read_pause(struct agent *a)
{
    char buf[64];
    ssize_t n;
    int fd;
    int64_t until = a->cfg.pause_until;

    if ((fd = open(a->pause_path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            if (strtoll(buf, NULL, 10) > until)
                until = strtoll(buf, NULL, 10);
        }
    }
    if (until != a->pause_until) {
        a->pause_until = until;
        agent_kv_set_int(a->st, AGENT_KV_PAUSE_UNTIL, until);
        if (until > time(NULL))
            logf_(CAIRN_LOG_INFO, "paused until %lld", (long long)until);
        write_status(a, 1);
    }
}

static int paused(const struct agent *a)
{
    return a->pause_until > (int64_t)time(NULL);
}

/* ---- open, run, free ---- */

static void lower_priority(int share)
{
    /* CPU and I/O at low priority: nice 10, and the idle I/O class
     * (IOPRIO_CLASS_IDLE = 3, shifted by IOPRIO_CLASS_SHIFT = 13) unless
     * the share is a whole core. */
    if (setpriority(PRIO_PROCESS, 0, 10) != 0)
        logf_(CAIRN_LOG_DEBUG, "cannot lower the CPU priority: %s",
              strerror(errno));
    if (share < 100 && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0,
                               3 << 13) != 0)
        logf_(CAIRN_LOG_DEBUG, "cannot lower the I/O priority: %s",
              strerror(errno));
}

int agent_open(const struct agent_opts *o, struct agent **out, char *why,
               size_t whylen)
{
    struct agent *a;
    struct agent_watch_opts wo;
    struct cli_api *api = NULL;
    json_t *server = NULL;
    char path[PATH_MAX + 16];
    int rc, x;

    if ((a = calloc(1, sizeof(*a))) == NULL)
        return CAIRN_ENOMEM;
    a->o = *o;
    a->done_pipe[0] = a->done_pipe[1] = -1;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    agent_config_defaults(&a->local);
    agent_config_defaults(&a->cfg);
    snprintf(a->phase, sizeof(a->phase), "starting");
    if (cli_agent_state_dir(o->state_dir, a->state_dir,
                            sizeof(a->state_dir)) != 0) {
        snprintf(why, whylen, "no folder for the agent's state: give "
                              "--state-dir");
        rc = CAIRN_EINVAL;
        goto fail;
    }
    if (make_dirs(a->state_dir) != 0) {
        snprintf(why, whylen, "cannot create %s: %s", a->state_dir,
                 strerror(errno));
        rc = CAIRN_EIO;
        goto fail;
    }
    snprintf(a->status_path, sizeof(a->status_path), "%s/%s", a->state_dir,
             AGENT_STATUS_FILE);
    snprintf(a->pause_path, sizeof(a->pause_path), "%s/%s", a->state_dir,
             AGENT_PAUSE_FILE);

    /* The local configuration, then this computer's enrolment. */
    if ((rc = agent_config_load(o->config_path, &a->local, why, whylen)) !=
        0)
        goto fail;
    a->cli.device_file = o->device_file;
    a->cli.quiet = 1;
    if ((x = cli_device_load(&a->cli, &a->dev)) != EXIT_OK) {
        snprintf(why, whylen, "this computer is not enrolled with a server "
                              "(no device file): run `cairn enrol` first");
        rc = x == EXIT_NOREPO ? CAIRN_ENOENT : CAIRN_EIO;
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/state.db", a->state_dir);
    if ((rc = agent_state_open(path, &a->st)) != 0) {
        snprintf(why, whylen, "cannot open the state database %s: %s", path,
                 cairn_strerror(rc));
        goto fail;
    }
    if ((rc = agent_todo_requeue_all_inflight(a->st, mono_ms(), NULL)) != 0) {
        snprintf(why, whylen, "the state database failed: %s",
                 cairn_strerror(rc));
        goto fail;
    }

    /* Settings the server pushes (or pushed last time). */
    if (cli_api_new(a->dev->server, a->dev->pin, a->dev->token, &api) == 0)
        server = server_settings(a, api);
    cli_api_free(api);
    rc = apply_config(a, server, why, whylen);
    json_decref(server);
    if (rc != 0)
        goto fail;
    lower_priority(a->cfg.cpu_share);

    memset(&wo, 0, sizeof(wo));
    wo.roots = (const char *const *)a->cfg.paths;
    wo.nroots = a->cfg.npaths;
    wo.mode = o->watch_mode;
    wo.excluded = watch_excluded;
    wo.arg = a;
    wo.max_watches = o->max_watches;
    if ((rc = agent_watch_open(&wo, &a->w)) != 0) {
        snprintf(why, whylen, "cannot watch the selection: %s%s",
                 cairn_strerror(rc),
                 rc == CAIRN_EPERM ? " (fanotify needs root)" : "");
        goto fail;
    }
    if (pipe2(a->done_pipe, O_CLOEXEC) != 0) {
        rc = CAIRN_EIO;
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, worker, a) != 0) {
        rc = CAIRN_ENOMEM;
        snprintf(why, whylen, "cannot start a thread");
        goto fail;
    }
    a->thread_started = 1;
    *out = a;
    return 0;
fail:
    agent_free(a);
    return rc;
}

/* When the next backup may start (mono_ms): a frequency after the last
 * start, not before the oldest queued change has settled (not_before),
 * and not before the backoff after a failure ends. */
static int64_t next_due(const struct agent *a)
{
    int64_t due = a->last_start + a->cfg.frequency * 1000;

    if (a->not_before > due)
        due = a->not_before;
    if (a->backoff_until > due)
        due = a->backoff_until;
    return due;
}

/* How long poll may wait, in milliseconds. */
static int poll_timeout(struct agent *a, int64_t todo)
{
    int64_t now = mono_ms(), wait = IDLE_WAKE_MS, due;

    if (!a->busy && !paused(a) && todo > 0) {
        due = next_due(a);
        wait = due > now ? due - now : 0;
        if (wait > IDLE_WAKE_MS)
            wait = IDLE_WAKE_MS;
    }
    if (a->watchdog_us > 0 && (int64_t)(a->watchdog_us / 2000) < wait)
        wait = (int64_t)(a->watchdog_us / 2000);
    return (int)wait;
}

int agent_run(struct agent *a, volatile sig_atomic_t *stop)
{
    struct pollfd pf[2];
    struct agent_todo_counts tc;
    struct job *j;
    int64_t last_verify = 0, todo, last_count = 0;
    int rc = 0, n, stopping = 0;

    a->watchdog_us = agent_watchdog_usec();
    agent_kv_get_int(a->st, AGENT_KV_LAST_VERIFY, 0, &last_verify);
    a->next_verify = agent_next_verify(&a->cfg, (time_t)last_verify,
                                       time(NULL));
    /* What changed while the agent was not running. */
    if ((rc = queue_rescan_all(a)) != 0)
        return rc;
    a->last_start = mono_ms() - a->cfg.frequency * 1000; /* due at once */
    a->last_event = 0;
    set_phase(a, "idle");
    read_pause(a);
    write_status(a, 1);
    logf_(CAIRN_LOG_INFO, "watching %zu folder%s with %s; backing up to %s "
                          "(device %s)",
          a->cfg.npaths, a->cfg.npaths == 1 ? "" : "s",
          agent_watch_mode(a->w), a->dev->server, a->dev->device_id);
    agent_notify("READY=1\nSTATUS=watching");

    for (;;) {
        if (*stop && !stopping) {
            stopping = 1;
            a->cancel = 1;
            a->cli.cancel = 1; /* a push restore in progress */
            agent_notify("STOPPING=1");
        }
        if (stopping && !a->busy)
            break;
        /* Counting the to-do list scans it: at most once a second (in
         * between, files_todo is kept up by the watcher's drain and by
         * each backup's end). */
        if (mono_ms() - last_count >= 1000) {
            if (agent_todo_count(a->st, &tc) == 0)
                a->files_todo = tc.total;
            last_count = mono_ms();
        }
        todo = a->files_todo;
        if (a->o.once && !a->busy && todo == 0)
            break;
        pf[0].fd = agent_watch_fd(a->w);
        pf[0].events = POLLIN;
        pf[1].fd = a->done_pipe[0];
        pf[1].events = POLLIN;
        n = poll(pf, 2, stopping ? 1000 : poll_timeout(a, todo));
        if (n < 0 && errno != EINTR) {
            rc = CAIRN_EIO;
            break;
        }
        if (a->watchdog_us > 0 &&
            (mono_ms() - a->last_watchdog_ms) * 1000 >=
                (int64_t)a->watchdog_us / 2) {
            agent_notify("WATCHDOG=1");
            a->last_watchdog_ms = mono_ms();
        }
        if (n > 0 && (pf[0].revents & POLLIN) &&
            (rc = drain_watcher(a)) != 0) {
            logf_(CAIRN_LOG_ERROR, "the state database failed: %s",
                  cairn_strerror(rc));
            break;
        }
        if (n > 0 && (pf[1].revents & POLLIN)) {
            j = take_back(a);
            if (j->kind == JOB_BACKUP)
                finish_backup(a, j);
            job_free(j);
        }
        read_pause(a);
        if (a->busy && paused(a))
            a->cancel = 1;
        if (stopping || a->busy)
            continue;
        /* The daily verification scan. */
        if ((int64_t)time(NULL) >= a->next_verify) {
            queue_rescan_all(a);
            a->next_verify = agent_next_verify(&a->cfg, time(NULL),
                                               time(NULL) + 60);
        }
        /* What the watcher cannot see (beyond the watch limit) is polled:
         * rescanned each interval, at least a minute apart, and watched
         * again when it fits (the limit raised, watches freed). */
        if (mono_ms() - a->last_unwatched >=
            (a->cfg.frequency > 60 ? a->cfg.frequency : 60) * 1000) {
            a->last_unwatched = mono_ms();
            agent_watch_unwatched(a->w, queue_unwatched, a);
            agent_watch_retry(a->w);
        }
        if (!paused(a) && a->files_todo > 0 &&
            mono_ms() >= next_due(a) && start_backup(a))
            continue;
        if (!paused(a) && a->o.push_poll > 0 &&
            (a->last_push_poll == 0 ||
             mono_ms() - a->last_push_poll >= a->o.push_poll * 1000)) {
            a->last_push_poll = mono_ms();
            if ((j = calloc(1, sizeof(*j))) != NULL) {
                j->kind = JOB_PUSH;
                hand_over(a, j);
                continue;
            }
        }
        if (!a->busy && mono_s() - a->last_heartbeat >= HEARTBEAT_EVERY) {
            a->last_heartbeat = mono_s();
            if ((j = calloc(1, sizeof(*j))) != NULL) {
                j->kind = JOB_REPORT;
                hand_over(a, j);
            }
        }
        write_status(a, 0);
    }
    set_phase(a, "stopped");
    write_status(a, 1);
    return rc;
}

void agent_free(struct agent *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->lock);
        a->quit = 1;
        a->cancel = 1;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
    }
    job_free(a->job);
    if (a->done_pipe[0] >= 0)
        close(a->done_pipe[0]);
    if (a->done_pipe[1] >= 0)
        close(a->done_pipe[1]);
    agent_watch_free(a->w);
    close_archive(a);
    cli_api_free(a->api);
    agent_state_close(a->st);
    cairn_exclude_free(a->ex);
    free(a->patterns);
    agent_config_clear(&a->cfg);
    agent_config_clear(&a->local);
    cli_device_free(a->dev);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}
