/*
 * api_request.c - restore requests (docs/API.md, "Restore requests"): a
 * person asks the IT office to restore files of a shared device of their
 * own department; administrators see the queue and fulfil (a push restore
 * or a download) or decline each request once; the requester sees the
 * outcome.  Personal devices are not requested: their owners restore them
 * directly.  Every act is audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"

#include "api.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

#define PATHS_MAX 64
#define PATH_LEN_MAX 4096
#define DEST_MAX 255
#define REASON_MAX 1000
#define LIST_LIMIT 10000

/* ---- checks ---- */

/* A JSON string of 1..max bytes without NUL (a "\u0000" escape) or
 * control characters (with multiline, '\n' and '\t' pass).  Its text or
 * NULL. */
static const char *text_field(json_t *v, size_t max, int multiline)
{
    const char *s;
    size_t i, n;

    if (!json_is_string(v))
        return NULL;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > max || strlen(s) != n)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if ((ch < 0x20 || ch == 0x7f) &&
            !(multiline && (ch == '\n' || ch == '\t')))
            return NULL;
    }
    return s;
}

static int is_hex(const char *s, size_t min, size_t max)
{
    size_t i, n = strlen(s);

    if (n < min || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* The {id} of the path: 1..10^15, decimal digits only.  0 if not. */
static int64_t request_id(struct http_req *r)
{
    const char *p = http_param(r, 0);
    int64_t v = 0;
    size_t i, n;

    if (p == NULL || (n = strlen(p)) == 0 || n > 15 || p[0] == '0')
        return 0;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* The "paths" field: 1..PATHS_MAX absolute paths, each a text of at most
 * PATH_LEN_MAX bytes, no ".." component.  Answers 400 itself. */
static int paths_field(struct http_req *r, json_t *v)
{
    json_t *p;
    size_t i;

    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > PATHS_MAX) {
        http_respond_error(r, 400, "bad_request",
                           "paths must be a list of 1 to %d absolute paths",
                           PATHS_MAX);
        return -1;
    }
    json_array_foreach(v, i, p)
    {
        const char *s = text_field(p, PATH_LEN_MAX, 0);

        if (s == NULL || s[0] != '/' || strstr(s, "/../") != NULL ||
            (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0)) {
            http_respond_error(r, 400, "bad_request",
                               "paths[%zu] must be an absolute path (starts "
                               "with '/', no '..', no control characters, "
                               "at most %d bytes)",
                               i, PATH_LEN_MAX);
            return -1;
        }
    }
    return 0;
}

/* ---- the request as JSON ---- */

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

static json_t *request_json(struct srv *s, const struct cat_request *q)
{
    struct cat_device d;
    struct cat_dept dept;
    json_t *paths, *j;

    if ((paths = json_loads(q->paths, 0, NULL)) == NULL)
        paths = json_array();
    j = json_pack("{s:I, s:o, s:o, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:o, "
                  "s:o, s:o, s:o, s:o}",
                  "id", (json_int_t)q->id, "created",
                  api_time_json(q->created), "requester",
                  user_name(s, q->requester_id), "device", q->device_id,
                  "paths", paths, "version",
                  q->version[0] ? json_string(q->version) : json_null(),
                  "as_of", api_time_json(q->as_of), "destination",
                  q->destination, "reason", q->reason, "state", q->state,
                  "decided_by", user_name(s, q->decided_by), "decided_at",
                  api_time_json(q->decided_at), "how",
                  q->how[0] ? json_string(q->how) : json_null(), "outcome",
                  q->outcome[0] ? json_string(q->outcome) : json_null(),
                  "push_id",
                  q->push_id ? json_integer(q->push_id) : json_null());
    if (j == NULL)
        return NULL;
    if (cat_device_get(s->cat, q->device_id, &d) == 0) {
        json_object_set_new(j, "device_name", json_string(d.name));
        cat_device_clear(&d);
    }
    if (q->dept_id != 0 && cat_dept_get_id(s->cat, q->dept_id, &dept) == 0)
        json_object_set_new(j, "department", json_string(dept.name));
    else
        json_object_set_new(j, "department", json_null());
    return j;
}

/* ---- filing ---- */

/* POST /api/v1/requests {"device", "paths", "version" | "as_of",
 * "destination", "reason"} */
static int request_file(struct http_req *r)
{
    static const char *const keys[] = {"device",      "paths",  "version",
                                       "as_of",       "destination",
                                       "reason",      NULL};
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_request q;
    struct cat_device d;
    const char *dev, *ver = NULL, *dest, *reason;
    json_t *body, *jv, *ja;
    int64_t as_of = 0;
    int rc, have_dev = 0;

    memset(&q, 0, sizeof(q));
    memset(&d, 0, sizeof(d));
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    dev = json_string_value(json_object_get(body, "device"));
    if (dev == NULL || !is_hex(dev, 32, 32)) {
        http_respond_error(r, 400, "bad_request",
                           "device must be a device id (32 hex digits)");
        goto done;
    }
    if (paths_field(r, json_object_get(body, "paths")) != 0)
        goto done;
    jv = json_object_get(body, "version");
    ja = json_object_get(body, "as_of");
    if (jv != NULL && !json_is_null(jv) && ja != NULL && !json_is_null(ja)) {
        http_respond_error(r, 400, "bad_request",
                           "give version or as_of, not both");
        goto done;
    }
    if (jv != NULL && !json_is_null(jv)) {
        ver = json_string_value(jv);
        if (ver == NULL || !is_hex(ver, 4, 64)) {
            http_respond_error(r, 400, "bad_request",
                               "version must be a snapshot id or a prefix "
                               "of it (4 to 64 hex digits)");
            goto done;
        }
    }
    if (ja != NULL && !json_is_null(ja) &&
        (!json_is_string(ja) ||
         api_time_parse(json_string_value(ja), &as_of) != 0 || as_of == 0)) {
        http_respond_error(r, 400, "bad_request",
                           "as_of must be an RFC 3339 time "
                           "(2026-11-26T09:00:00Z)");
        goto done;
    }
    if ((dest = text_field(json_object_get(body, "destination"), DEST_MAX,
                           0)) == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "destination must be 1 to %d characters, no "
                           "control characters",
                           DEST_MAX);
        goto done;
    }
    if ((reason = text_field(json_object_get(body, "reason"), REASON_MAX,
                             1)) == NULL) {
        http_respond_error(r, 400, "bad_request",
                           "reason must be 1 to %d characters", REASON_MAX);
        goto done;
    }

    /* Which device, and may this person ask for it? */
    if ((rc = cat_device_get(s->cat, dev, &d)) != 0) {
        api_respond_cat_error(r, rc, "device");
        goto done;
    }
    have_dev = 1;
    if (strcmp(d.category, "shared") != 0) {
        http_respond_error(r, 403, "forbidden",
                           "device %s is a personal device: its owner "
                           "restores it directly (cairn restore), no "
                           "request is needed; requests are for shared "
                           "devices",
                           d.id);
        goto done;
    }
    if (a->dept_id == 0 || d.dept_id != a->dept_id) {
        http_respond_error(r, 403, "forbidden",
                           "device %s belongs to another department; you "
                           "may ask only for shared devices of your own",
                           d.id);
        goto done;
    }
    if (strcmp(d.state, "active") != 0) {
        http_respond_error(r, 409, "conflict",
                           "device %s was replaced by %s; ask for that one",
                           d.id, d.replaced_by);
        goto done;
    }

    q.created = srv_now();
    q.requester_id = a->user_id;
    q.dept_id = d.dept_id;
    snprintf(q.device_id, sizeof(q.device_id), "%s", d.id);
    if ((q.paths = json_dumps(json_object_get(body, "paths"),
                              JSON_COMPACT)) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    snprintf(q.version, sizeof(q.version), "%s", ver ? ver : "");
    q.as_of = as_of;
    snprintf(q.destination, sizeof(q.destination), "%s", dest);
    snprintf(q.reason, sizeof(q.reason), "%s", reason);
    if ((rc = cat_request_add(s->cat, &q)) != 0) {
        api_respond_cat_error(r, rc, "device or user");
        goto done;
    }
    srv_audit(s, a->user_id, d.id, http_client_addr(r), "request_filed",
              d.name, "{\"request\":%lld,\"paths\":%zu,\"version\":\"%s\","
              "\"as_of\":%lld}",
              (long long)q.id, json_array_size(json_object_get(body, "paths")),
              q.version, (long long)q.as_of);
    http_respond_json(r, 201, request_json(s, &q));

done:
    if (have_dev)
        cat_device_clear(&d);
    free(q.paths);
    return 0;
}

/* ---- reading ---- */

static int list_one(void *arg, const struct cat_request *q)
{
    void **a = arg;

    return json_array_append_new(a[1], request_json(a[0], q)) == 0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/requests ?state= &department= &device= (a person: their
 * own; an administrator: all) */
static int request_list(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *state = http_query(r, "state");
    const char *dept = http_query(r, "department");
    const char *dev = http_query(r, "device");
    struct cat_request_filter f;
    struct cat_dept d;
    json_t *arr, *res;
    void *ctx[2];
    int rc;

    memset(&f, 0, sizeof(f));
    if (state != NULL && strcmp(state, "open") != 0 &&
        strcmp(state, "fulfilled") != 0 && strcmp(state, "declined") != 0)
        return http_respond_error(r, 400, "bad_request",
                                  "state is open, fulfilled or declined");
    if (dev != NULL && !is_hex(dev, 32, 32))
        return http_respond_error(r, 400, "bad_request",
                                  "device must be a device id");
    f.state = state;
    f.device_id = dev;
    f.limit = LIST_LIMIT;
    if (dept != NULL) {
        if ((rc = cat_dept_get(s->cat, dept, &d)) != 0)
            return api_respond_cat_error(r, rc, "department");
        f.dept_id = d.id;
    }
    if (!a->admin)
        f.requester_id = a->user_id;
    if (f.requester_id == 0 && !a->admin)
        return http_respond_error(r, 403, "forbidden", "no user");
    if ((arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    ctx[0] = s;
    ctx[1] = arr;
    if ((rc = cat_request_list(s->cat, &f, list_one, ctx)) != 0) {
        json_decref(arr);
        return api_respond_cat_error(r, rc, "request");
    }
    if ((res = json_pack("{s:o}", "requests", arr)) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 200, res);
}

/* The request of the path, which the caller may see (the requester or an
 * administrator).  0, or answers (404, 403) and returns -1. */
static int request_load(struct http_req *r, struct cat_request *q)
{
    const struct http_auth *a = http_auth(r);
    int64_t id = request_id(r);
    int rc;

    memset(q, 0, sizeof(*q));
    if (id == 0) {
        http_respond_error(r, 404, "not_found", "no such request");
        return -1;
    }
    if ((rc = cat_request_get(http_srv(r)->cat, id, q)) != 0) {
        api_respond_cat_error(r, rc, "request");
        return -1;
    }
    if (!a->admin && q->requester_id != a->user_id) {
        cat_request_clear(q);
        http_respond_error(r, 403, "forbidden",
                           "only the person who asked, or an "
                           "administrator, may see this request");
        return -1;
    }
    return 0;
}

/* GET /api/v1/requests/{id} */
static int request_get(struct http_req *r)
{
    struct cat_request q;
    json_t *j;

    if (request_load(r, &q) != 0)
        return 0;
    j = request_json(http_srv(r), &q);
    cat_request_clear(&q);
    return http_respond_json(r, 200, j);
}

/* ---- deciding ---- */

/*
 * The push restore that fulfils request q: it must exist, restore q's
 * device and have been made for q or for no request.  0, or answered why
 * not.
 */
static int push_check(struct http_req *r, const struct cat_request *q,
                      int64_t push_id)
{
    struct cat_push p;
    int rc;

    if ((rc = cat_push_get(http_srv(r)->cat, push_id, &p)) != 0) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 400, "bad_request",
                               "there is no push restore %lld",
                               (long long)push_id);
        else
            api_respond_cat_error(r, rc, "push restore");
        return -1;
    }
    rc = 0;
    if (strcmp(p.source_device, q->device_id) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "push restore %lld restores device %s, not the "
                           "request's device %s",
                           (long long)push_id, p.source_device, q->device_id);
        rc = -1;
    } else if (p.request_id != 0 && p.request_id != q->id) {
        http_respond_error(r, 400, "bad_request",
                           "push restore %lld was made for request %lld",
                           (long long)push_id, (long long)p.request_id);
        rc = -1;
    }
    cat_push_clear(&p);
    return rc;
}

/* Decide the request of the path and answer it, or answer why not. */
static int decide(struct http_req *r, const char *state, const char *how,
                  const char *outcome, int64_t push_id)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    struct cat_request q;
    json_t *j;
    int rc;

    if (request_load(r, &q) != 0)
        return 0;
    if (push_id > 0 && strcmp(q.state, "open") == 0 &&
        push_check(r, &q, push_id) != 0) {
        cat_request_clear(&q);
        return 0;
    }
    rc = cat_request_decide(s->cat, q.id, state, a->user_id, srv_now(), how,
                            outcome, push_id);
    if (rc == CAIRN_EEXIST) {
        rc = http_respond_error(r, 409, "conflict",
                                "request %lld was decided already (%s)",
                                (long long)q.id, q.state);
        cat_request_clear(&q);
        return rc;
    }
    if (rc != 0) {
        cat_request_clear(&q);
        return api_respond_cat_error(r, rc, "request");
    }
    if (strcmp(state, "declined") == 0)
        srv_audit(s, a->user_id, q.device_id, http_client_addr(r),
                  "request_declined", q.device_id,
                  "{\"request\":%lld,\"requester_id\":%lld}", (long long)q.id,
                  (long long)q.requester_id);
    else
        srv_audit(s, a->user_id, q.device_id, http_client_addr(r),
                  "request_fulfilled", q.device_id,
                  "{\"request\":%lld,\"requester_id\":%lld,\"how\":\"%s\","
                  "\"push_id\":%lld}",
                  (long long)q.id, (long long)q.requester_id, how,
                  (long long)push_id);
    cat_request_clear(&q);
    if ((rc = cat_request_get(s->cat, request_id(r), &q)) != 0)
        return api_respond_cat_error(r, rc, "request");
    j = request_json(s, &q);
    cat_request_clear(&q);
    return http_respond_json(r, 200, j);
}

/* POST /api/v1/requests/{id}/decline {"reason"} */
static int request_decline(struct http_req *r)
{
    static const char *const keys[] = {"reason", NULL};
    const char *reason;
    json_t *body;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    if ((reason = text_field(json_object_get(body, "reason"), REASON_MAX,
                             1)) == NULL)
        return http_respond_error(r, 400, "bad_request",
                                  "reason is required: 1 to %d characters "
                                  "the requester will read",
                                  REASON_MAX);
    return decide(r, "declined", "", reason, 0);
}

/* POST /api/v1/requests/{id}/fulfil {"how", "push_id", "note"} */
static int request_fulfil(struct http_req *r)
{
    static const char *const keys[] = {"how", "push_id", "note", NULL};
    const char *how, *note = "";
    json_t *body, *jp, *jn;
    int64_t push_id = 0;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    how = json_string_value(json_object_get(body, "how"));
    if (how == NULL ||
        (strcmp(how, "push") != 0 && strcmp(how, "download") != 0))
        return http_respond_error(r, 400, "bad_request",
                                  "how must be \"push\" or \"download\"");
    jp = json_object_get(body, "push_id");
    if (jp != NULL && !json_is_null(jp)) {
        if (strcmp(how, "push") != 0)
            return http_respond_error(r, 400, "bad_request",
                                      "push_id goes with how \"push\"");
        if (!json_is_integer(jp) || json_integer_value(jp) <= 0)
            return http_respond_error(r, 400, "bad_request",
                                      "push_id must be a positive integer");
        push_id = json_integer_value(jp);
    }
    jn = json_object_get(body, "note");
    if (jn != NULL && !json_is_null(jn) &&
        (note = text_field(jn, REASON_MAX, 1)) == NULL)
        return http_respond_error(r, 400, "bad_request",
                                  "note must be 1 to %d characters",
                                  REASON_MAX);
    return decide(r, "fulfilled", how, note, push_id);
}

const struct http_route api_request_routes[] = {
    {"POST", "/api/v1/requests", HTTP_USER, 512 * 1024, request_file, NULL},
    {"GET", "/api/v1/requests", HTTP_USER, 0, request_list, NULL},
    {"GET", "/api/v1/requests/{}", HTTP_USER, 0, request_get, NULL},
    {"POST", "/api/v1/requests/{}/decline", HTTP_ADMIN, 8192,
     request_decline, NULL},
    {"POST", "/api/v1/requests/{}/fulfil", HTTP_ADMIN, 8192, request_fulfil,
     NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
