/*
 * api_audit.c - the audit log as the IT office reads it (docs/API.md,
 * "Audit log"): GET /api/v1/audit, administrators only, with filters.
 * The log itself is append-only (catalog triggers refuse updates and
 * deletes); nothing here writes to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"

#include "api.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

#define AUDIT_LIMIT_DEFAULT 1000
#define AUDIT_LIMIT_MAX 10000
#define NAME_CACHE 32

/* Usernames of the user ids seen in one answer (most answers name few
 * people, and a lookup per entry would be one query per row). */
struct names {
    int64_t id[NAME_CACHE];
    char name[NAME_CACHE][64];
    int n, next;
};

static json_t *name_of(struct srv *s, struct names *nc, int64_t id)
{
    struct cat_user u;
    int i;

    if (id == 0)
        return json_null();
    for (i = 0; i < nc->n; i++)
        if (nc->id[i] == id)
            return json_string(nc->name[i]);
    if (cat_user_get_id(s->cat, id, &u) != 0)
        return json_null();
    i = nc->n < NAME_CACHE ? nc->n++ : (nc->next++ % NAME_CACHE);
    nc->id[i] = id;
    snprintf(nc->name[i], sizeof(nc->name[i]), "%s", u.username);
    cat_user_clear(&u);
    return json_string(nc->name[i]);
}

struct list_ctx {
    struct srv *s;
    struct names names;
    json_t *arr;
};

static int list_one(void *arg, const struct cat_audit *a)
{
    struct list_ctx *c = arg;
    json_t *detail = NULL, *e;

    if (a->detail != NULL)
        detail = json_loads(a->detail, 0, NULL);
    if (detail != NULL && !json_is_object(detail)) {
        json_decref(detail);
        detail = NULL;
    }
    if (detail == NULL)
        detail = a->detail ? json_pack("{s:s}", "text", a->detail)
                           : json_object();
    e = json_pack("{s:I, s:o, s:o, s:o, s:s, s:s, s:s, s:o}", "id",
                  (json_int_t)a->id, "time", api_time_json(a->time), "user",
                  name_of(c->s, &c->names, a->user_id), "device",
                  a->device_id[0] ? json_string(a->device_id) : json_null(),
                  "addr", a->addr, "action", a->action, "target", a->target,
                  "detail", detail ? detail : json_object());
    return json_array_append_new(c->arr, e) == 0 ? 0 : CAIRN_ENOMEM;
}

/* A time query argument (RFC 3339), or 0 when absent.  Answers 400. */
static int time_arg(struct http_req *r, const char *key, int64_t *out)
{
    const char *v = http_query(r, key);

    *out = 0;
    if (v == NULL)
        return 0;
    if (api_time_parse(v, out) != 0 || *out == 0) {
        http_respond_error(r, 400, "bad_request",
                           "%s must be an RFC 3339 time "
                           "(2026-11-26T09:00:00Z)",
                           key);
        return -1;
    }
    return 0;
}

/* GET /api/v1/audit ?since= &until= &user= &action= &device= &limit= */
static int audit_list(struct http_req *r)
{
    struct srv *s = http_srv(r);
    struct cat_audit_filter f;
    struct list_ctx c;
    struct cat_user u;
    const char *user = http_query(r, "user");
    const char *action = http_query(r, "action");
    const char *dev = http_query(r, "device");
    const char *lim = http_query(r, "limit");
    json_t *res;
    size_t i;
    int rc;

    memset(&f, 0, sizeof(f));
    memset(&c, 0, sizeof(c));
    c.s = s;
    if (time_arg(r, "since", &f.since) != 0 ||
        time_arg(r, "until", &f.until) != 0)
        return 0;
    if (f.since != 0 && f.until != 0 && f.until < f.since)
        return http_respond_error(r, 400, "bad_request",
                                  "until is before since");
    f.limit = AUDIT_LIMIT_DEFAULT;
    if (lim != NULL) {
        long v = 0;

        for (i = 0; lim[i] != '\0' && i < 6; i++) {
            if (lim[i] < '0' || lim[i] > '9')
                break;
            v = v * 10 + (lim[i] - '0');
        }
        if (i == 0 || lim[i] != '\0' || v < 1 || v > AUDIT_LIMIT_MAX)
            return http_respond_error(r, 400, "bad_request",
                                      "limit is 1 to %d", AUDIT_LIMIT_MAX);
        f.limit = (int)v;
    }
    if (action != NULL) {
        if (action[0] == '\0' || strlen(action) >= 64)
            return http_respond_error(r, 400, "bad_request",
                                      "action is a word under 64 bytes");
        f.action = action;
    }
    if (dev != NULL) {
        if (strlen(dev) != 32 || strspn(dev, "0123456789abcdef") != 32)
            return http_respond_error(r, 400, "bad_request",
                                      "device must be a device id (32 hex "
                                      "digits)");
        f.device_id = dev;
    }
    if (user != NULL) {
        if ((rc = cat_user_get(s->cat, user, &u)) != 0)
            return api_respond_cat_error(r, rc, "user");
        f.user_id = u.id;
        cat_user_clear(&u);
    }
    if ((c.arr = json_array()) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    if ((rc = cat_audit_list(s->cat, &f, list_one, &c)) != 0) {
        json_decref(c.arr);
        return api_respond_cat_error(r, rc, "audit record");
    }
    if ((res = json_pack("{s:o}", "entries", c.arr)) == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 200, res);
}

const struct http_route api_audit_routes[] = {
    {"GET", "/api/v1/audit", HTTP_ADMIN, 0, audit_list, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
