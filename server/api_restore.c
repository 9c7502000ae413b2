/*
 * api_restore.c - restores on the server (docs/API.md, "Restores on the
 * server"): escrow unlock for an administrator's session, browsing a
 * device's versions, folders and files, searching by name, downloads as
 * tar or zip, and the records of restores done by clients.
 *
 * Who: a personal device's owner and administrators (api_may_restore);
 * a shared device, administrators only.  Reading names and contents needs
 * the archive key in the session's keyring (keyring.h): the owner's comes
 * from the password at login, an administrator's from an escrow unlock.
 * Every restore and every escrow unlock is audited.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/browse.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/repo.h"
#include "cairn/snapshot.h"

#include "api.h"
#include "catalog.h"
#include "download.h"
#include "http.h"
#include "keyring.h"
#include "repo_cache.h"
#include "srv.h"

#define TREE_MAX_ENTRIES 100000
#define SEARCH_DEFAULT 100
#define SEARCH_MAX 1000
#define PATHS_MAX 1000
#define PATH_TEXT_MAX 4096
#define TARGET_MAX 1023

/* ---- helpers ---- */

static const char *type_name(uint8_t t)
{
    switch (t) {
    case CAIRN_NODE_FILE:
        return "file";
    case CAIRN_NODE_DIR:
        return "dir";
    case CAIRN_NODE_SYMLINK:
        return "symlink";
    case CAIRN_NODE_FIFO:
        return "fifo";
    case CAIRN_NODE_CHR:
        return "chr";
    case CAIRN_NODE_BLK:
        return "blk";
    case CAIRN_NODE_SOCK:
        return "sock";
    default:
        return "unknown";
    }
}

static json_t *ns_time_json(int64_t ns)
{
    int64_t sec = ns / 1000000000;

    if (ns < 0 && ns % 1000000000 != 0)
        sec--;
    return api_time_json(sec > 0 ? sec : 0);
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "latest", or 4 to 64 lowercase hex digits. */
static int snap_spec_valid(const char *spec)
{
    size_t i, n;

    if (spec == NULL)
        return 0;
    if (strcmp(spec, "latest") == 0)
        return 1;
    n = strlen(spec);
    if (n < 4 || n > 64)
        return 0;
    for (i = 0; i < n; i++)
        if (!((spec[i] >= '0' && spec[i] <= '9') ||
              (spec[i] >= 'a' && spec[i] <= 'f')))
            return 0;
    return 1;
}

/*
 * The device the path names, if the caller (a full session) may restore
 * it.  Answers the refusal itself and returns -1.
 */
static int restore_device(struct http_req *r, struct cat_device *out)
{
    const char *id = http_param(r, 0);
    int rc;

    if (api_may_restore(r, id) != 0)
        return -1;
    if ((rc = cat_device_get(http_srv(r)->cat, id, out)) != 0) {
        api_respond_cat_error(r, rc, "device");
        return -1;
    }
    return 0;
}

/* Answer 409 key_unavailable, saying what would make the key available. */
static int respond_no_key(struct http_req *r, const struct cat_device *d)
{
    const struct http_auth *a = http_auth(r);
    int owner = strcmp(d->category, "personal") == 0 &&
                d->owner_id == a->user_id;

    if (owner && d->wrap_owner == NULL)
        return http_respond_error(
            r, 409, "key_unavailable",
            "this device's key is not wrapped for you any more (your "
            "password was reset); ask the IT office to re-make it "
            "(rewrap) with the escrow passphrase, then log in again");
    if (owner)
        return http_respond_error(
            r, 409, "key_unavailable",
            "this session holds no key for this device: log in with your "
            "password again (the key is opened at login, and with several "
            "servers only the one that did the login holds it)");
    return http_respond_error(
        r, 409, "key_unavailable",
        "this session holds no key for this device: unlock it with the "
        "escrow passphrase (POST /api/v1/devices/%s/unlock) first; an "
        "unlock lasts a short time, on the server process that did it",
        d->id);
}

/*
 * Open the device's archive with the key the session holds, its index
 * loaded (kept open between requests: repo_cache.h).  Release it with
 * repo_cache_release.  Answers itself (409 without a key) and returns -1.
 */
static int open_repo(struct http_req *r, const struct cat_device *d,
                     struct cairn_repo **out)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct keyring *k = keyring_process();
    uint8_t key[KEYRING_KEY_LEN];
    int rc;

    keyring_srv_sweep(s);
    if (k == NULL || !a->full ||
        keyring_get(k, a->session_hash, d->id, srv_now(), key, NULL) != 0)
        return respond_no_key(r, d), -1;
    rc = repo_cache_open(s, a->session_hash, d, key, out);
    cairn_wipe(key, sizeof(key));
    if (rc == 0)
        return 0;
    if (rc == CAIRN_ENOENT)
        http_respond_error(r, 404, "not_found",
                           "this device has no archive here yet");
    else
        http_respond_error(r, 500, "server_error",
                           "cannot open the archive: %s", cairn_strerror(rc));
    return -1;
}

static int find_snapshot(struct http_req *r, struct cairn_repo *repo,
                         const char *spec, struct cairn_snapshot **out)
{
    int rc;

    if (!snap_spec_valid(spec))
        return http_respond_error(r, 400, "bad_request",
                                  "a version is \"latest\", or 4 to 64 "
                                  "lowercase hex digits of its id"),
               -1;
    if ((rc = cairn_repo_find_snapshot(repo, spec, out)) == 0)
        return 0;
    if (rc == CAIRN_ENOENT)
        http_respond_error(r, 404, "not_found", "no such version: %s", spec);
    else if (rc == CAIRN_EAMBIGUOUS)
        http_respond_error(r, 400, "bad_request",
                           "%s names more than one version; give more "
                           "digits", spec);
    else
        http_respond_error(r, 500, "server_error",
                           "cannot read the versions: %s",
                           cairn_strerror(rc));
    return -1;
}

static json_t *entry_json(const char *path, const struct cairn_tree_entry *e)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:o, s:i}", "name", e->name,
                          "type", type_name(e->type), "size",
                          (json_int_t)(e->type == CAIRN_NODE_FILE ? e->size
                                                                  : 0),
                          "mtime", ns_time_json(e->mtime_ns), "mode",
                          (int)(e->mode & 07777));

    if (j != NULL && path != NULL)
        json_object_set_new(j, "path", json_string(path));
    if (j != NULL && e->type == CAIRN_NODE_SYMLINK)
        json_object_set_new(j, "target", json_string(e->target));
    return j;
}

/* ---- escrow unlock ---- */

/*
 * POST /api/v1/devices/{id}/unlock {"escrow_passphrase"} (admin): open
 * the device's escrow wrap with the escrow key (unwrapped in memory, then
 * wiped) and hold the archive key in this session for escrow_unlock_secs.
 */
static int unlock(struct http_req *r)
{
    static const char *const keys[] = {"escrow_passphrase", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *addr = http_client_addr(r), *pass;
    struct cat_session ses;
    struct cat_device d;
    struct cat_user admin;
    uint8_t pub[32], priv[32], key[KEYRING_KEY_LEN];
    char when[32];
    json_t *body;
    int64_t wait, expires;
    int rc, locked, have_d = 0, have_admin = 0;

    memset(priv, 0, sizeof(priv));
    memset(key, 0, sizeof(key));
    memset(&d, 0, sizeof(d));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    if ((pass = json_string_value(json_object_get(body,
                                                  "escrow_passphrase"))) ==
        NULL) {
        http_respond_error(r, 400, "bad_request",
                           "escrow_passphrase must be a string");
        goto done;
    }
    if ((rc = cat_device_get(s->cat, http_param(r, 0), &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        goto done;
    }
    have_d = 1;
    if ((rc = cat_user_get_id(s->cat, a->user_id, &admin)) != 0) {
        api_respond_cat_error(r, rc, "user");
        goto done;
    }
    have_admin = 1;
    if ((wait = keyring_throttle_wait(s, &admin, addr, &locked)) > 0) {
        char v[32];

        snprintf(v, sizeof(v), "%lld", (long long)wait);
        http_set_header(r, "Retry-After", v);
        http_respond_error(r, locked ? 423 : 429,
                           locked ? "locked" : "too_many",
                           "too many wrong escrow passphrases; try again in "
                           "%lld seconds", (long long)wait);
        goto done;
    }
    if ((rc = keyring_escrow_open(s, pass, pub, priv)) != 0) {
        srv_audit(s, a->user_id, d.id, addr, "escrow_unlock_failed", d.name,
                  "{\"why\":\"%s\"}",
                  rc == CAIRN_EAUTH ? "passphrase" : "error");
        if (rc == CAIRN_EAUTH) {
            keyring_throttle_fail(s, &admin, addr);
            http_respond_error(r, 403, "forbidden",
                               "wrong escrow passphrase (the one chosen at "
                               "cairnd init, not your password); the "
                               "failure is counted like a failed login");
        } else {
            http_respond_error(r, 500, "server_error",
                               "cannot open the escrow key: %s",
                               cairn_strerror(rc));
        }
        goto done;
    }
    rc = keyring_unseal(pub, priv, &d, key);
    cairn_wipe(priv, sizeof(priv));
    if (rc != 0) {
        srv_audit(s, a->user_id, d.id, addr, "escrow_unlock_failed", d.name,
                  "{\"why\":\"wrap\"}");
        http_respond_error(r, 500, "server_error",
                           "the device's escrow wrap does not open with the "
                           "organisation's escrow key (%s)",
                           cairn_strerror(rc));
        goto done;
    }
    /* Not past the session's own end. */
    expires = srv_now() + s->cfg.escrow_unlock_secs;
    if (cat_session_get(s->cat, a->session_hash, &ses) == 0) {
        if (ses.created + s->cfg.session_max_secs < expires)
            expires = ses.created + s->cfg.session_max_secs;
        cairn_wipe(&ses, sizeof(ses));
    }
    if ((rc = keyring_put(keyring_process(), a->session_hash, a->user_id,
                          d.id, key, expires)) != 0) {
        http_respond_error(r, 503, "unavailable",
                           "the server holds too many keys now; try again "
                           "later (%s)", cairn_strerror(rc));
        goto done;
    }
    srv_audit(s, a->user_id, d.id, addr, "escrow_unlock", d.name,
              "{\"purpose\":\"restore\",\"secs\":%lld}",
              (long long)(expires - srv_now()));
    api_time_format(expires, when);
    http_respond_json(r, 200, json_pack("{s:s, s:s}", "device_id", d.id,
                                        "expires", when));

done:
    cairn_wipe(key, sizeof(key));
    cairn_wipe(priv, sizeof(priv));
    if (have_admin)
        cat_user_clear(&admin);
    if (have_d)
        cat_device_clear(&d);
    return 0;
}

/* ---- versions ---- */

struct versions {
    json_t *arr;
    int64_t as_of; /* 0: all */
    struct cat_snapshot best;
    int have_best;
};

static json_t *snap_json(const struct cat_snapshot *c)
{
    return json_pack("{s:s, s:o, s:b, s:I, s:I, s:I}", "id", c->id, "time",
                     api_time_json(c->time), "complete", c->complete,
                     "files", (json_int_t)c->files, "bytes",
                     (json_int_t)c->bytes, "added_bytes",
                     (json_int_t)c->added_bytes);
}

static int versions_one(void *arg, const struct cat_snapshot *c)
{
    struct versions *v = arg;

    if (v->as_of != 0) {
        /* Oldest first: the last at or before as_of wins. */
        if (c->time <= v->as_of) {
            v->best = *c;
            v->have_best = 1;
        }
        return 0;
    }
    return json_array_insert_new(v->arr, 0, snap_json(c)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/devices/{id}/versions[?as_of=RFC3339] */
static int versions(struct http_req *r)
{
    struct cat_device d;
    struct versions v;
    const char *as_of = http_query(r, "as_of");
    int rc;

    memset(&v, 0, sizeof(v));
    if (as_of != NULL && (api_time_parse(as_of, &v.as_of) != 0 ||
                          v.as_of == 0))
        return http_respond_error(r, 400, "bad_request",
                                  "as_of must be an RFC 3339 time "
                                  "(2026-11-26T10:00:00Z)");
    if (restore_device(r, &d) != 0)
        return 0;
    if ((v.arr = json_array()) == NULL) {
        cat_device_clear(&d);
        return http_respond_error(r, 500, "server_error", "out of memory");
    }
    rc = cat_snapshot_list(http_srv(r)->cat, d.id, versions_one, &v);
    cat_device_clear(&d);
    if (rc != 0) {
        json_decref(v.arr);
        return api_respond_cat_error(r, rc, "version");
    }
    if (v.have_best &&
        json_array_append_new(v.arr, snap_json(&v.best)) != 0) {
        json_decref(v.arr);
        return http_respond_error(r, 500, "server_error", "out of memory");
    }
    return http_respond_json(r, 200, v.arr);
}

/* ---- tree ---- */

struct tree_ctx {
    const char *path; /* normalised: the entry at path itself is skipped */
    json_t *arr;
    json_t *self;
    int truncated;
};

static int tree_one(void *arg, const char *path,
                    const struct cairn_tree_entry *e)
{
    struct tree_ctx *t = arg;

    if (strcmp(path, t->path) == 0) {
        t->self = entry_json(path, e);
        return 0;
    }
    if (json_array_size(t->arr) >= TREE_MAX_ENTRIES) {
        t->truncated = 1;
        return 1;
    }
    return json_array_append_new(t->arr, entry_json(NULL, e)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* Copy p into out without repeated or trailing slashes ("/" for the
 * root).  0, or -1 if p is not absolute, too long, or has "." or ".." */
static int path_norm(const char *p, char *out, size_t outlen)
{
    size_t o = 0;
    const char *c = p, *e;

    if (p == NULL || p[0] != '/' || strlen(p) >= outlen)
        return -1;
    while (*c != '\0') {
        while (*c == '/')
            c++;
        if (*c == '\0')
            break;
        for (e = c; *e != '\0' && *e != '/'; e++)
            ;
        if ((e - c == 1 && c[0] == '.') ||
            (e - c == 2 && c[0] == '.' && c[1] == '.'))
            return -1;
        out[o++] = '/';
        memcpy(out + o, c, (size_t)(e - c));
        o += (size_t)(e - c);
        c = e;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

/* GET /api/v1/devices/{id}/versions/{snapshot}/tree?path=/abs/path */
static int tree(struct http_req *r)
{
    struct cat_device d;
    struct cairn_repo *repo = NULL;
    struct cairn_snapshot *snap = NULL;
    struct tree_ctx t;
    char path[PATH_TEXT_MAX + 1], sid[65];
    const char *qp = http_query(r, "path");
    json_t *res;
    int rc;

    memset(&t, 0, sizeof(t));
    if (path_norm(qp ? qp : "/", path, sizeof(path)) != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "path must be absolute, without . or .. "
                                  "(at most %d bytes)", PATH_TEXT_MAX);
    if (restore_device(r, &d) != 0)
        return 0;
    if (open_repo(r, &d, &repo) != 0)
        goto done;
    if (find_snapshot(r, repo, http_param(r, 1), &snap) != 0)
        goto done;
    t.path = path;
    if ((t.arr = json_array()) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    rc = cairn_browse_walk(repo, snap, path, 0, tree_one, &t);
    if (rc != 0 && rc != 1) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 404, "not_found",
                               "%s is not in this version", path);
        else
            http_respond_error(r, 500, "server_error",
                               "cannot read the version: %s",
                               cairn_strerror(rc));
        goto done;
    }
    hex_of(snap->id, CAIRN_ID_LEN, sid);
    res = json_pack("{s:s, s:o, s:s, s:O, s:b}", "snapshot", sid, "time",
                    ns_time_json(snap->time_ns), "path", path, "entries",
                    t.arr, "truncated", t.truncated);
    if (res != NULL && t.self != NULL) {
        json_object_set(res, "entry", t.self);
    }
    http_respond_json(r, 200, res);

done:
    json_decref(t.self);
    json_decref(t.arr);
    cairn_snapshot_free(snap);
    repo_cache_release(repo);
    cat_device_clear(&d);
    return 0;
}

/* ---- search ---- */

struct search_ctx {
    const char *q;
    size_t qlen;
    json_t *arr;
    int limit;
    int truncated;
    uint64_t visited;
};

/* Case-insensitive (ASCII) substring. */
static int name_matches(const char *name, const char *q, size_t qlen)
{
    size_t i, j, n = strlen(name);

    if (qlen > n)
        return 0;
    for (i = 0; i + qlen <= n; i++) {
        for (j = 0; j < qlen; j++)
            if (tolower((unsigned char)name[i + j]) !=
                tolower((unsigned char)q[j]))
                break;
        if (j == qlen)
            return 1;
    }
    return 0;
}

static int search_one(void *arg, const char *path,
                      const struct cairn_tree_entry *e)
{
    struct search_ctx *c = arg;

    c->visited++;
    if (!name_matches(e->name, c->q, c->qlen))
        return 0;
    if ((int)json_array_size(c->arr) >= c->limit) {
        c->truncated = 1;
        return 1;
    }
    return json_array_append_new(c->arr, entry_json(path, e)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/devices/{id}/versions/{snapshot}/search?q=&path=&limit= */
static int search(struct http_req *r)
{
    struct cat_device d;
    struct cairn_repo *repo = NULL;
    struct cairn_snapshot *snap = NULL;
    struct search_ctx c;
    char path[PATH_TEXT_MAX + 1], sid[65];
    const char *qp = http_query(r, "path"), *lim = http_query(r, "limit");
    char *end;
    long l;
    int rc;

    memset(&c, 0, sizeof(c));
    c.q = http_query(r, "q");
    c.limit = SEARCH_DEFAULT;
    if (c.q == NULL || (c.qlen = strlen(c.q)) == 0 || c.qlen > 255)
        return http_respond_error(r, 400, "bad_request",
                                  "q (1 to 255 bytes of a name) is needed");
    if (lim != NULL) {
        l = strtol(lim, &end, 10);
        if (end == lim || *end != '\0' || l < 1 || l > SEARCH_MAX)
            return http_respond_error(r, 400, "bad_request",
                                      "limit is 1 to %d", SEARCH_MAX);
        c.limit = (int)l;
    }
    if (path_norm(qp ? qp : "/", path, sizeof(path)) != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "path must be absolute, without . or ..");
    if (restore_device(r, &d) != 0)
        return 0;
    if (open_repo(r, &d, &repo) != 0)
        goto done;
    if (find_snapshot(r, repo, http_param(r, 1), &snap) != 0)
        goto done;
    if ((c.arr = json_array()) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    rc = cairn_browse_walk(repo, snap, path, 1, search_one, &c);
    if (rc != 0 && rc != 1) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 404, "not_found",
                               "%s is not in this version", path);
        else
            http_respond_error(r, 500, "server_error",
                               "cannot read the version: %s",
                               cairn_strerror(rc));
        goto done;
    }
    hex_of(snap->id, CAIRN_ID_LEN, sid);
    http_respond_json(r, 200,
                      json_pack("{s:s, s:s, s:s, s:O, s:b}", "snapshot", sid,
                                "q", c.q, "path", path, "results", c.arr,
                                "truncated", c.truncated));

done:
    json_decref(c.arr);
    cairn_snapshot_free(snap);
    repo_cache_release(repo);
    cat_device_clear(&d);
    return 0;
}

/* ---- paths fields ---- */

/* A JSON array of 1..max absolute path strings.  Answers 400 itself. */
static int paths_field(struct http_req *r, json_t *v, size_t max)
{
    json_t *p;
    size_t i;

    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > max)
        return http_respond_error(r, 400, "bad_request",
                                  "paths must be an array of 1 to %zu "
                                  "absolute paths", max),
               -1;
    json_array_foreach(v, i, p) {
        const char *t = json_string_value(p);
        char tmp[PATH_TEXT_MAX + 1];

        if (t == NULL || path_norm(t, tmp, sizeof(tmp)) != 0)
            return http_respond_error(r, 400, "bad_request",
                                      "paths[%zu] is not an absolute path "
                                      "(no . or .., at most %d bytes)",
                                      i, PATH_TEXT_MAX),
                   -1;
    }
    return 0;
}

/* ---- downloads ---- */

struct dl_job {
    struct srv *s;
    struct cairn_repo *repo;
    struct cairn_snapshot *snap;
    struct download *d;
    int64_t user_id;
    char device_id[33];
    char device_name[128];
    char addr[64];
    char sid[65];
    int failed;
};

static long long dl_read(void *arg, uint8_t *buf, size_t max)
{
    struct dl_job *j = arg;
    long long n = download_read(j->d, buf, max);

    if (n < 0) {
        srv_log(SRV_LOG_ERROR, "download of device %s stopped: %s",
                j->device_id, cairn_strerror((int)n));
        j->failed = 1;
        return -1;
    }
    return n;
}

static void dl_done(void *arg, int complete)
{
    struct dl_job *j = arg;
    uint64_t files = 0, bytes = 0, damaged = 0;

    download_progress(j->d, &files, &bytes, &damaged);
    srv_audit(j->s, j->user_id, j->device_id, j->addr, "download_finish",
              j->device_name,
              "{\"snapshot\":\"%s\",\"state\":\"%s\",\"files\":%llu,"
              "\"bytes\":%llu,\"damaged\":%llu}",
              j->sid, complete ? "done" : j->failed ? "failed" : "interrupted",
              (unsigned long long)files, (unsigned long long)bytes,
              (unsigned long long)damaged);
    download_free(j->d);
    cairn_snapshot_free(j->snap);
    repo_cache_release(j->repo);
    free(j);
}

/*
 * POST /api/v1/devices/{id}/download {"snapshot", "paths", "format"}:
 * the files and folders as one tar or zip, decrypted here blob by blob
 * while sent; refused with 413 when their total is over
 * download_max_bytes.
 */
static int download(struct http_req *r)
{
    static const char *const keys[] = {"snapshot", "paths", "format", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_device d;
    struct dl_job *j = NULL;
    const char **paths = NULL;
    const char *fmt, *spec;
    enum download_format f;
    json_t *body, *jp, *v;
    uint64_t files, bytes, skipped;
    size_t i, bad = 0;
    char disp[160], *what = NULL;
    int rc, have_d = 0;

    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    spec = json_string_value(json_object_get(body, "snapshot"));
    fmt = json_string_value(json_object_get(body, "format"));
    jp = json_object_get(body, "paths");
    if (spec == NULL)
        spec = "latest";
    if (fmt == NULL || (strcmp(fmt, "tar") != 0 && strcmp(fmt, "zip") != 0)) {
        http_respond_error(r, 400, "bad_request",
                           "format must be \"tar\" or \"zip\"");
        goto done;
    }
    f = strcmp(fmt, "tar") == 0 ? DOWNLOAD_TAR : DOWNLOAD_ZIP;
    if (paths_field(r, jp, DOWNLOAD_PATHS_MAX) != 0)
        goto done;
    if (restore_device(r, &d) != 0)
        goto done;
    have_d = 1;
    if ((j = calloc(1, sizeof(*j))) == NULL ||
        (paths = calloc(json_array_size(jp), sizeof(*paths))) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    json_array_foreach(jp, i, v) paths[i] = json_string_value(v);
    if (open_repo(r, &d, &j->repo) != 0)
        goto done;
    if (find_snapshot(r, j->repo, spec, &j->snap) != 0)
        goto done;
    rc = download_new(j->repo, j->snap, paths, json_array_size(jp), f, &j->d,
                      &bad);
    if (rc != 0) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 404, "not_found",
                               "%s is not in this version", paths[bad]);
        else if (rc == CAIRN_EINVAL)
            http_respond_error(r, 400, "bad_request",
                               "paths[%zu] (%s) cannot go in the archive: "
                               "two paths end in the same name, or \"/\" "
                               "is given with others", bad, paths[bad]);
        else
            http_respond_error(r, 500, "server_error",
                               "cannot read the version: %s",
                               cairn_strerror(rc));
        goto done;
    }
    download_totals(j->d, &files, &bytes, &skipped);
    hex_of(j->snap->id, CAIRN_ID_LEN, j->sid);
    what = json_dumps(jp, JSON_COMPACT);
    if (!download_fits(j->d, s->cfg.download_max_bytes)) {
        srv_audit(s, a->user_id, d.id, http_client_addr(r),
                  "download_refused", d.name,
                  "{\"snapshot\":\"%s\",\"bytes\":%llu,\"cap\":%llu}", j->sid,
                  (unsigned long long)bytes,
                  (unsigned long long)s->cfg.download_max_bytes);
        http_respond_json(
            r, 413,
            json_pack("{s:s, s:s, s:I, s:I}", "error",
                      "the files chosen are larger than the server's "
                      "download limit (download_max_bytes); choose fewer, "
                      "or restore them with cairn",
                      "code", "too_large", "bytes", (json_int_t)bytes,
                      "max_bytes",
                      (json_int_t)s->cfg.download_max_bytes));
        goto done;
    }
    j->s = s;
    j->user_id = a->user_id;
    memcpy(j->device_id, d.id, sizeof(j->device_id));
    snprintf(j->device_name, sizeof(j->device_name), "%s", d.name);
    snprintf(j->addr, sizeof(j->addr), "%s", http_client_addr(r));
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "download", d.name,
              "{\"snapshot\":\"%s\",\"format\":\"%s\",\"files\":%llu,"
              "\"bytes\":%llu,\"paths\":%.800s}",
              j->sid, fmt, (unsigned long long)files,
              (unsigned long long)bytes, what ? what : "[]");
    snprintf(disp, sizeof(disp),
             "attachment; filename=\"cairn-%.8s-%.8s.%s\"", d.id, j->sid,
             fmt);
    http_set_header(r, "Content-Disposition", disp);
    {
        char n[32];

        snprintf(n, sizeof(n), "%llu", (unsigned long long)bytes);
        http_set_header(r, "X-Cairn-Bytes", n);
        snprintf(n, sizeof(n), "%llu", (unsigned long long)files);
        http_set_header(r, "X-Cairn-Files", n);
    }
    http_respond_stream(r, 200, f == DOWNLOAD_TAR ? "application/x-tar"
                                                  : "application/zip",
                        dl_read, dl_done, j);
    j = NULL; /* dl_done frees it */

done:
    free(what);
    if (j != NULL) {
        download_free(j->d);
        cairn_snapshot_free(j->snap);
        repo_cache_release(j->repo);
        free(j);
    }
    free(paths);
    if (have_d)
        cat_device_clear(&d);
    return 0;
}

/* ---- restore records ---- */

struct snap_find {
    const char *spec;
    size_t n;
    int matches;
    struct cat_snapshot found;
};

static int snap_find_one(void *arg, const struct cat_snapshot *c)
{
    struct snap_find *f = arg;

    if (strcmp(f->spec, "latest") == 0) {
        f->found = *c; /* oldest first: the last is the newest */
        f->matches = 1;
    } else if (strncmp(c->id, f->spec, f->n) == 0) {
        f->found = *c;
        f->matches++;
    }
    return 0;
}

/* Does device_id have a push job onto the calling device (queued or
 * running)?  Fills *out_push with its id. */
struct push_find {
    int64_t want; /* 0: any */
    int64_t found;
};

static int push_find_one(void *arg, const struct cat_push *p)
{
    struct push_find *f = arg;

    if (f->want == 0 || p->id == f->want)
        f->found = p->id;
    return 0;
}

/*
 * POST /api/v1/devices/{id}/restores {"snapshot", "paths", "target",
 * "push_id"} -> 201 {"restore_id"}: a client starting a restore says
 * so.  A person: the owner of a personal device or an admin.  A device:
 * only with a push job from this device onto itself (push_id).
 */
static int restore_start(struct http_req *r)
{
    static const char *const keys[] = {"snapshot", "paths", "target",
                                       "push_id", NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *id = http_param(r, 0), *spec, *target;
    struct cat_restore rec;
    struct snap_find sf;
    struct push_find pf;
    struct cat_push_filter pfl;
    uint8_t rnd[16];
    json_t *body, *jp, *jpush;
    char *paths = NULL;
    int rc;

    memset(&rec, 0, sizeof(rec));
    memset(&sf, 0, sizeof(sf));
    memset(&pf, 0, sizeof(pf));
    memset(&pfl, 0, sizeof(pfl));
    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    spec = json_string_value(json_object_get(body, "snapshot"));
    target = json_string_value(json_object_get(body, "target"));
    jp = json_object_get(body, "paths");
    jpush = json_object_get(body, "push_id");
    if (spec == NULL || !snap_spec_valid(spec))
        return http_respond_error(r, 400, "bad_request",
                                  "snapshot is \"latest\" or 4 to 64 hex "
                                  "digits of an id");
    if (target == NULL || strlen(target) > TARGET_MAX)
        return http_respond_error(r, 400, "bad_request",
                                  "target must be a string (where the files "
                                  "go, at most %d bytes)", TARGET_MAX);
    if (paths_field(r, jp, PATHS_MAX) != 0)
        return 0;
    if (jpush != NULL && !json_is_null(jpush) &&
        (!json_is_integer(jpush) || json_integer_value(jpush) <= 0))
        return http_respond_error(r, 400, "bad_request",
                                  "push_id must be a push job's id");
    if (a->kind == HTTP_AUTH_DEVICE) {
        if (!json_is_integer(jpush))
            return http_respond_error(r, 403, "forbidden",
                                      "a device restores another device's "
                                      "files only for a push job (push_id)");
        pf.want = json_integer_value(jpush);
        pfl.source = id;
        pfl.target = a->device_id;
        pfl.active_only = 1;
        if ((rc = cat_push_list(s->cat, &pfl, push_find_one, &pf)) != 0)
            return api_respond_cat_error(r, rc, "push job");
        if (pf.found == 0)
            return http_respond_error(r, 403, "forbidden",
                                      "no queued or running push job %lld "
                                      "from device %s onto this device",
                                      (long long)pf.want, id);
        snprintf(rec.caller_device, sizeof(rec.caller_device), "%s",
                 a->device_id);
        rec.push_id = pf.found;
    } else {
        if (api_may_restore(r, id) != 0)
            return 0;
        rec.user_id = a->user_id;
        rec.push_id = json_is_integer(jpush) ? json_integer_value(jpush) : 0;
    }
    sf.spec = spec;
    sf.n = strlen(spec);
    if ((rc = cat_snapshot_list(s->cat, id, snap_find_one, &sf)) != 0)
        return api_respond_cat_error(r, rc, "version");
    if (sf.matches == 0)
        return http_respond_error(r, 404, "not_found",
                                  "device %s has no version %s", id, spec);
    if (sf.matches > 1)
        return http_respond_error(r, 400, "bad_request",
                                  "%s names more than one version", spec);
    if (cairn_random(rnd, sizeof(rnd)) != 0)
        return http_respond_error(r, 500, "server_error", "no randomness");
    hex_of(rnd, sizeof(rnd), rec.id);
    rec.created = srv_now();
    snprintf(rec.device_id, sizeof(rec.device_id), "%s", id);
    snprintf(rec.snapshot, sizeof(rec.snapshot), "%s", sf.found.id);
    snprintf(rec.target, sizeof(rec.target), "%s", target);
    if ((paths = json_dumps(jp, JSON_COMPACT)) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    rec.paths = paths;
    rc = cat_restore_add(s->cat, &rec);
    if (rc != 0) {
        free(paths);
        return api_respond_cat_error(r, rc, "device");
    }
    srv_audit(s, rec.user_id, a->kind == HTTP_AUTH_DEVICE ? a->device_id : id,
              http_client_addr(r), "restore_start", id,
              "{\"restore_id\":\"%s\",\"device\":\"%s\",\"snapshot\":\"%s\","
              "\"push_id\":%lld,\"paths\":%.700s}",
              rec.id, id, rec.snapshot, (long long)rec.push_id, paths);
    free(paths);
    return http_respond_json(r, 201, json_pack("{s:s, s:s}", "restore_id",
                                               rec.id, "snapshot",
                                               rec.snapshot));
}

/*
 * POST /api/v1/restores/{rid}/finish {"state", "files", "bytes",
 * "errors"} -> 204.  Only the caller that started it; anyone else gets
 * 404, as for an unknown id.
 */
static int restore_finish(struct http_req *r)
{
    static const char *const keys[] = {"state", "files", "bytes", "errors",
                                       NULL};
    static const char *const nums[] = {"files", "bytes", "errors"};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *rid = http_param(r, 0), *state;
    struct cat_restore rec;
    json_int_t n[3];
    json_t *body, *v;
    int rc, i, mine;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    state = json_string_value(json_object_get(body, "state"));
    if (state == NULL ||
        (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0 &&
         strcmp(state, "interrupted") != 0))
        return http_respond_error(r, 400, "bad_request",
                                  "state is done, failed or interrupted");
    for (i = 0; i < 3; i++) {
        v = json_object_get(body, nums[i]);
        n[i] = 0;
        if (v == NULL)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return http_respond_error(r, 400, "bad_request",
                                      "%s must be an integer >= 0", nums[i]);
        n[i] = json_integer_value(v);
    }
    if (strlen(rid) != 32 || (rc = cat_restore_get(s->cat, rid, &rec)) ==
                                 CAIRN_ENOENT)
        return http_respond_error(r, 404, "not_found", "no such restore");
    if (rc != 0)
        return api_respond_cat_error(r, rc, "restore");
    mine = a->kind == HTTP_AUTH_DEVICE
               ? strcmp(rec.caller_device, a->device_id) == 0
               : rec.caller_device[0] == '\0' && rec.user_id == a->user_id;
    if (!mine) {
        cat_restore_clear(&rec);
        return http_respond_error(r, 404, "not_found", "no such restore");
    }
    rc = cat_restore_finish(s->cat, rid, state, n[0], n[1], n[2], srv_now());
    if (rc == CAIRN_EEXIST) {
        cat_restore_clear(&rec);
        return http_respond_error(r, 409, "conflict",
                                  "this restore is finished already");
    }
    if (rc != 0) {
        cat_restore_clear(&rec);
        return api_respond_cat_error(r, rc, "restore");
    }
    srv_audit(s, rec.user_id,
              a->kind == HTTP_AUTH_DEVICE ? a->device_id : rec.device_id,
              http_client_addr(r), "restore_finish", rec.device_id,
              "{\"restore_id\":\"%s\",\"device\":\"%s\",\"state\":\"%s\","
              "\"files\":%lld,\"bytes\":%lld,\"errors\":%lld}",
              rid, rec.device_id, state, (long long)n[0], (long long)n[1],
              (long long)n[2]);
    cat_restore_clear(&rec);
    return http_respond_empty(r, 204);
}

const struct http_route api_restore_routes[] = {
    {"POST", "/api/v1/devices/{}/unlock", HTTP_ADMIN, 4096, unlock, NULL},
    {"GET", "/api/v1/devices/{}/versions", HTTP_USER, 0, versions, NULL},
    {"GET", "/api/v1/devices/{}/versions/{}/tree", HTTP_USER, 0, tree, NULL},
    {"GET", "/api/v1/devices/{}/versions/{}/search", HTTP_USER, 0, search,
     NULL},
    {"POST", "/api/v1/devices/{}/download", HTTP_USER, 256 * 1024, download,
     NULL},
    {"POST", "/api/v1/devices/{}/restores", HTTP_USER | HTTP_DEVICE,
     256 * 1024, restore_start, NULL},
    {"POST", "/api/v1/restores/{}/finish", HTTP_USER | HTTP_DEVICE, 4096,
     restore_finish, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
