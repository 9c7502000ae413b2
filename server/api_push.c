/*
 * api_push.c - push restores (docs/API.md, "Push restores"): an
 * administrator restores one device's files onto another enrolled device
 * (a replacement, a shared computer); that device's cairn fetches the job,
 * reads the source archive (read only, while the job is queued or
 * running: api_object.c) and writes the files, reporting its progress.
 *
 * The source archive key travels wrapped for the target device
 * (wrapped_key): made and opened by the clients, opaque here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"

#include "api.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

#define WRAPPED_MAX 4096
#define PATHS_MAX 1000
#define PATH_TEXT_MAX 4096
#define TARGET_DIR_MAX 1023
#define ERROR_MAX 511

static int path_ok(const char *p, size_t max)
{
    const char *c, *e;

    if (p == NULL || p[0] != '/' || strlen(p) > max)
        return 0;
    for (c = p; *c != '\0'; c = e) {
        while (*c == '/')
            c++;
        for (e = c; *e != '\0' && *e != '/'; e++)
            if ((unsigned char)*e < 0x20)
                return 0;
        if ((e - c == 1 && c[0] == '.') ||
            (e - c == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
    }
    return 1;
}

static json_t *user_name(struct srv *s, int64_t id)
{
    struct cat_user u;
    json_t *j;

    if (id == 0 || cat_user_get_id(s->cat, id, &u) != 0)
        return json_null();
    j = json_string(u.username);
    cat_user_clear(&u);
    return j;
}

/* A job as the API shows it; with_key adds the wrapped key. */
static json_t *push_json(struct srv *s, const struct cat_push *p,
                         int with_key)
{
    json_t *paths = json_loads(p->paths, 0, NULL), *j;

    if (paths == NULL)
        paths = json_array();
    j = json_pack("{s:I, s:o, s:o, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:I,"
                  " s:I, s:s, s:I}",
                  "push_id", (json_int_t)p->id, "created",
                  api_time_json(p->created), "created_by",
                  user_name(s, p->created_by), "source_device",
                  p->source_device, "target_device", p->target_device,
                  "snapshot", p->snapshot, "paths", paths, "target_dir",
                  p->target_dir, "state", p->state, "updated",
                  api_time_json(p->updated), "files", (json_int_t)p->files,
                  "bytes", (json_int_t)p->bytes, "error", p->error,
                  "request_id", (json_int_t)p->request_id);
    if (j != NULL && with_key)
        json_object_set_new(j, "wrapped_key",
                            api_b64_json(p->wrapped_key, p->wrapped_key_len));
    return j;
}

/* The newest snapshot, or the one a unique prefix names. */
struct snap_pick {
    const char *spec;
    size_t n;
    int matches;
    char id[65];
};

static int snap_pick_one(void *arg, const struct cat_snapshot *c)
{
    struct snap_pick *p = arg;

    if (strcmp(p->spec, "latest") == 0 ||
        strncmp(c->id, p->spec, p->n) == 0) {
        snprintf(p->id, sizeof(p->id), "%s", c->id);
        p->matches = strcmp(p->spec, "latest") == 0 ? 1 : p->matches + 1;
    }
    return 0;
}

/*
 * A push restore made for restore request id: the request must exist, be
 * for the source device and still be open.  0, or answered why not.
 */
static int push_request_check(struct http_req *r, int64_t id,
                              const char *source)
{
    struct cat_request q;
    int rc;

    if ((rc = cat_request_get(http_srv(r)->cat, id, &q)) != 0) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 400, "bad_request",
                               "there is no restore request %lld",
                               (long long)id);
        else
            api_respond_cat_error(r, rc, "request");
        return -1;
    }
    rc = 0;
    if (strcmp(q.device_id, source) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "restore request %lld is for device %s, not %s",
                           (long long)id, q.device_id, source);
        rc = -1;
    } else if (strcmp(q.state, "open") != 0) {
        http_respond_error(r, 409, "conflict",
                           "restore request %lld was decided already (%s)",
                           (long long)id, q.state);
        rc = -1;
    }
    cat_request_clear(&q);
    return rc;
}

/*
 * POST /api/v1/push (admin) {"source_device", "snapshot", "paths",
 * "target_device", "target_dir", "wrapped_key", "request_id"} -> 201
 * {"push_id"}.
 */
static int push_create(struct http_req *r)
{
    static const char *const keys[] = {"source_device", "snapshot",
                                       "paths",         "target_device",
                                       "target_dir",    "wrapped_key",
                                       "request_id",    NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *src, *dst, *spec, *tdir, *wk;
    struct cat_device sd, td;
    struct cat_push p;
    struct snap_pick sp;
    json_t *body, *jp, *jr, *v, *jt;
    char *tq = NULL;
    size_t i;
    int rc, have_sd = 0, have_td = 0;

    memset(&p, 0, sizeof(p));
    memset(&sp, 0, sizeof(sp));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    src = json_string_value(json_object_get(body, "source_device"));
    dst = json_string_value(json_object_get(body, "target_device"));
    spec = json_string_value(json_object_get(body, "snapshot"));
    tdir = json_string_value(json_object_get(body, "target_dir"));
    wk = json_string_value(json_object_get(body, "wrapped_key"));
    jp = json_object_get(body, "paths");
    jr = json_object_get(body, "request_id");
    if (src == NULL || dst == NULL || tdir == NULL || wk == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "source_device, target_device, target_dir and "
                           "wrapped_key are strings");
        goto done;
    }
    if (spec == NULL)
        spec = "latest";
    if (!path_ok(tdir, TARGET_DIR_MAX)) {
        http_respond_error(r, 400, "bad_request",
                           "target_dir must be an absolute path (no . or "
                           "..), at most %d bytes", TARGET_DIR_MAX);
        goto done;
    }
    if (!json_is_array(jp) || json_array_size(jp) == 0 ||
        json_array_size(jp) > PATHS_MAX) {
        http_respond_error(r, 400, "bad_request",
                           "paths must be an array of 1 to %d absolute "
                           "paths", PATHS_MAX);
        goto done;
    }
    json_array_foreach(jp, i, v) {
        if (!path_ok(json_string_value(v), PATH_TEXT_MAX)) {
            http_respond_error(r, 400, "bad_request",
                               "paths[%zu] is not an absolute path (no . or "
                               "..)", i);
            goto done;
        }
    }
    if (jr != NULL && !json_is_null(jr) &&
        (!json_is_integer(jr) || json_integer_value(jr) < 0)) {
        http_respond_error(r, 400, "bad_request",
                           "request_id must be a restore request's id");
        goto done;
    }
    p.request_id = json_is_integer(jr) ? json_integer_value(jr) : 0;
    if (api_b64_decode(wk, WRAPPED_MAX, &p.wrapped_key,
                       &p.wrapped_key_len) != 0 ||
        p.wrapped_key_len == 0) {
        http_respond_error(r, 400, "bad_request",
                           "wrapped_key must be base64 of 1 to %d bytes",
                           WRAPPED_MAX);
        goto done;
    }
    if (strcmp(src, dst) == 0) {
        http_respond_error(r, 400, "bad_request",
                           "the target must be another device (a device "
                           "restores its own files with cairn restore)");
        goto done;
    }
    if ((rc = cat_device_get(s->cat, src, &sd)) != 0) {
        api_respond_cat_error(r, rc, "source device");
        goto done;
    }
    have_sd = 1;
    if (p.request_id > 0 && push_request_check(r, p.request_id, sd.id) != 0)
        goto done;
    if ((rc = cat_device_get(s->cat, dst, &td)) != 0) {
        api_respond_cat_error(r, rc, "target device");
        goto done;
    }
    have_td = 1;
    if (strcmp(td.state, "active") != 0) {
        http_respond_error(r, 409, "conflict",
                           "the target device %s was replaced; push to the "
                           "device that replaced it", td.id);
        goto done;
    }
    sp.spec = spec;
    sp.n = strlen(spec);
    if ((rc = cat_snapshot_list(s->cat, sd.id, snap_pick_one, &sp)) != 0) {
        api_respond_cat_error(r, rc, "version");
        goto done;
    }
    if (sp.matches != 1) {
        http_respond_error(r, sp.matches ? 400 : 404,
                           sp.matches ? "bad_request" : "not_found",
                           sp.matches ? "%s names more than one version"
                                      : "the source device has no version "
                                        "%s",
                           spec);
        goto done;
    }
    p.created = srv_now();
    p.created_by = a->user_id;
    memcpy(p.source_device, sd.id, sizeof(p.source_device));
    memcpy(p.target_device, td.id, sizeof(p.target_device));
    memcpy(p.snapshot, sp.id, sizeof(p.snapshot));
    snprintf(p.target_dir, sizeof(p.target_dir), "%s", tdir);
    if ((p.paths = json_dumps(jp, JSON_COMPACT)) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    if ((rc = cat_push_add(s->cat, &p)) != 0) {
        api_respond_cat_error(r, rc, "device or user");
        goto done;
    }
    if ((jt = json_string(tdir)) != NULL) {
        tq = json_dumps(jt, JSON_ENCODE_ANY);
        json_decref(jt);
    }
    srv_audit(s, a->user_id, sd.id, http_client_addr(r), "push_create",
              td.id,
              "{\"push_id\":%lld,\"source\":\"%s\",\"target\":\"%s\","
              "\"snapshot\":\"%s\",\"target_dir\":%s,\"request_id\":%lld,"
              "\"paths\":%.600s}",
              (long long)p.id, sd.id, td.id, p.snapshot,
              tq ? tq : "\"\"",
              (long long)p.request_id, p.paths);
    http_respond_json(r, 201, json_pack("{s:I, s:s}", "push_id",
                                        (json_int_t)p.id, "snapshot",
                                        p.snapshot));

done:
    if (have_sd)
        cat_device_clear(&sd);
    if (have_td)
        cat_device_clear(&td);
    free(tq);
    free(p.paths);
    free(p.wrapped_key);
    return 0;
}

struct list_ctx {
    struct srv *s;
    json_t *arr;
    int with_key;
};

static int list_one(void *arg, const struct cat_push *p)
{
    struct list_ctx *c = arg;

    return json_array_append_new(c->arr, push_json(c->s, p, c->with_key)) ==
                   0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/push[?device=ID][&active=1] (admin), newest first. */
static int push_list(struct http_req *r)
{
    struct srv *s = http_srv(r);
    struct cat_push_filter f;
    struct list_ctx c;
    const char *act = http_query(r, "active");
    int rc;

    memset(&f, 0, sizeof(f));
    f.device = http_query(r, "device");
    f.active_only = act != NULL && strcmp(act, "1") == 0;
    c.s = s;
    c.with_key = 0;
    if ((c.arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_push_list(s->cat, &f, list_one, &c)) != 0) {
        json_decref(c.arr);
        return api_respond_cat_error(r, rc, "push job");
    }
    return http_respond_json(r, 200, c.arr);
}

/* GET /api/v1/devices/{id}/push (that device's token): its queued and
 * running jobs, with their wrapped keys. */
static int push_mine(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_push_filter f;
    struct list_ctx c;
    int rc;

    if (strcmp(http_param(r, 0), a->device_id) != 0)
        return http_respond_error(r, 403, "forbidden",
                                  "a device reads only its own push jobs");
    memset(&f, 0, sizeof(f));
    f.target = a->device_id;
    f.active_only = 1;
    c.s = s;
    c.with_key = 1;
    if ((c.arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_push_list(s->cat, &f, list_one, &c)) != 0) {
        json_decref(c.arr);
        return api_respond_cat_error(r, rc, "push job");
    }
    if (json_array_size(c.arr) > 0)
        srv_audit(s, 0, a->device_id, http_client_addr(r), "push_fetch",
                  a->device_id, "{\"jobs\":%zu}", json_array_size(c.arr));
    return http_respond_json(r, 200, c.arr);
}

/*
 * POST /api/v1/push/{pid}/status (the target device's token) {"state",
 * "files", "bytes", "error"} -> 204.  queued -> running -> done | failed;
 * a finished job does not change any more (409).
 */
static int push_status(struct http_req *r)
{
    static const char *const keys[] = {"state", "files", "bytes", "error",
                                       NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *pid = http_param(r, 0), *state, *err;
    struct cat_push p;
    json_t *body, *jf, *jb;
    json_int_t files, bytes;
    char *end;
    long long id;
    int rc;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    state = json_string_value(json_object_get(body, "state"));
    err = json_string_value(json_object_get(body, "error"));
    jf = json_object_get(body, "files");
    jb = json_object_get(body, "bytes");
    if (state == NULL ||
        (strcmp(state, "running") != 0 && strcmp(state, "done") != 0 &&
         strcmp(state, "failed") != 0))
        return http_respond_error(r, 400, "bad_request",
                                  "state is running, done or failed");
    if ((jf != NULL && (!json_is_integer(jf) || json_integer_value(jf) < 0)) ||
        (jb != NULL && (!json_is_integer(jb) || json_integer_value(jb) < 0)))
        return http_respond_error(r, 400, "bad_request",
                                  "files and bytes are integers >= 0");
    if (json_object_get(body, "error") != NULL &&
        (err == NULL || strlen(err) > ERROR_MAX))
        return http_respond_error(r, 400, "bad_request",
                                  "error is a string of at most %d bytes",
                                  ERROR_MAX);
    files = jf ? json_integer_value(jf) : 0;
    bytes = jb ? json_integer_value(jb) : 0;
    id = strtoll(pid, &end, 10);
    if (end == pid || *end != '\0' || id <= 0)
        return http_respond_error(r, 404, "not_found", "no such push job");
    if ((rc = cat_push_get(s->cat, id, &p)) != 0)
        return rc == CAIRN_ENOENT
                   ? http_respond_error(r, 404, "not_found",
                                        "no such push job")
                   : api_respond_cat_error(r, rc, "push job");
    if (strcmp(p.target_device, a->device_id) != 0) {
        cat_push_clear(&p);
        return http_respond_error(r, 404, "not_found", "no such push job");
    }
    if (strcmp(p.state, "done") == 0 || strcmp(p.state, "failed") == 0) {
        cat_push_clear(&p);
        return http_respond_error(r, 409, "conflict",
                                  "push job %lld is %s already", id,
                                  p.state);
    }
    rc = cat_push_set_state(s->cat, id, state, files, bytes, err,
                            srv_now());
    if (rc != 0) {
        cat_push_clear(&p);
        return api_respond_cat_error(r, rc, "push job");
    }
    srv_audit(s, 0, a->device_id, http_client_addr(r), "push_status",
              p.source_device,
              "{\"push_id\":%lld,\"state\":\"%s\",\"files\":%lld,"
              "\"bytes\":%lld}",
              id, state, (long long)files, (long long)bytes);
    cat_push_clear(&p);
    return http_respond_empty(r, 204);
}

const struct http_route api_push_routes[] = {
    {"POST", "/api/v1/push", HTTP_ADMIN, 64 * 1024, push_create, NULL},
    {"GET", "/api/v1/push", HTTP_ADMIN, 0, push_list, NULL},
    {"GET", "/api/v1/devices/{}/push", HTTP_DEVICE, 0, push_mine, NULL},
    {"POST", "/api/v1/push/{}/status", HTTP_DEVICE, 4096, push_status, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
