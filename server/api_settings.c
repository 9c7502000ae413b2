/*
 * api_settings.c - agent settings pushed by the server (docs/API.md,
 * "Agent settings"): what administrators set for every agent of the
 * organisation or of one department, which keys are locked (the agent's
 * own file may not override them), and what one device gets.
 *
 * Keys, types and bounds are those of agent/settings_keys.h, the table
 * cairn-agent itself checks its file against, so the server never stores
 * a setting the agent would refuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"

#include "../agent/settings_keys.h"
#include "api.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

/* Bodies: lists of paths and patterns can be long. */
#define SETTINGS_BODY_MAX (256u * 1024)
/* Longest audit detail written in full (srv_audit keeps 1 KiB). */
#define AUDIT_DETAIL_MAX 900

/*
 * Check a settings object and a locked array as a PUT gives them.  0, or
 * -1 with why set (naming the key).  Every key must be one the server may
 * push; locked names such keys, each once (a locked key without a value
 * here locks the department's or organisation's value, or the agent's
 * default).
 */
static int settings_valid(const json_t *settings, const json_t *locked,
                          char *why, size_t whylen)
{
    const struct agent_setting_key *k;
    const char *name;
    json_t *v;
    size_t i, j;

    if (!json_is_object(settings)) {
        snprintf(why, whylen, "settings must be an object");
        return -1;
    }
    json_object_foreach((json_t *)settings, name, v)
    {
        if ((k = agent_setting_find(name)) == NULL) {
            snprintf(why, whylen, "unknown setting \"%s\"", name);
            return -1;
        }
        if (!k->pushable) {
            snprintf(why, whylen,
                     "%s is set on the computer only, not by the server",
                     name);
            return -1;
        }
        if (agent_setting_check(k, v, why, whylen) != 0)
            return -1;
    }
    if (!json_is_array(locked)) {
        snprintf(why, whylen, "locked must be an array of setting names");
        return -1;
    }
    for (i = 0; i < json_array_size(locked); i++) {
        name = json_string_value(json_array_get(locked, i));
        if (name == NULL) {
            snprintf(why, whylen, "locked[%zu] must be a setting name", i);
            return -1;
        }
        if ((k = agent_setting_find(name)) == NULL || !k->pushable) {
            snprintf(why, whylen, "locked: unknown setting \"%s\"", name);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(name, json_string_value(json_array_get(locked, j))) ==
                0) {
                snprintf(why, whylen, "locked: \"%s\" is named twice", name);
                return -1;
            }
    }
    return 0;
}

/* The stored settings of a scope as JSON: *out_settings (object) and
 * *out_locked (array), new references; empty when never set. */
static int scope_load(struct srv *s, int64_t dept_id, json_t **out_settings,
                      json_t **out_locked, struct cat_settings *out_row)
{
    struct cat_settings row;
    int rc;

    *out_settings = NULL;
    *out_locked = NULL;
    memset(out_row, 0, sizeof(*out_row));
    rc = cat_settings_get(s->cat, dept_id, &row);
    if (rc == CAIRN_ENOENT) {
        *out_settings = json_object();
        *out_locked = json_array();
    } else if (rc != 0) {
        return rc;
    } else {
        *out_settings = json_loads(row.body, JSON_REJECT_DUPLICATES, NULL);
        *out_locked = json_loads(row.locked, JSON_REJECT_DUPLICATES, NULL);
        *out_row = row;
        out_row->body = out_row->locked = NULL;
        cat_settings_clear(&row);
        /* Written by this file only; anything else is damage. */
        if (!json_is_object(*out_settings) || !json_is_array(*out_locked)) {
            json_decref(*out_settings);
            json_decref(*out_locked);
            *out_settings = *out_locked = NULL;
            return CAIRN_ECORRUPT;
        }
    }
    if (*out_settings == NULL || *out_locked == NULL) {
        json_decref(*out_settings);
        json_decref(*out_locked);
        *out_settings = *out_locked = NULL;
        return CAIRN_ENOMEM;
    }
    return 0;
}

/* Who changed them last: a username, or null. */
static json_t *user_name_json(struct srv *s, int64_t id)
{
    struct cat_user u;
    json_t *j;

    if (id == 0 || cat_user_get_id(s->cat, id, &u) != 0)
        return json_null();
    j = json_string(u.username);
    cat_user_clear(&u);
    return j;
}

/* Answer the settings of one scope (dept NULL: the organisation). */
static int respond_scope(struct http_req *r, const struct cat_dept *dept,
                         unsigned status)
{
    struct srv *s = http_srv(r);
    struct cat_settings row;
    json_t *settings, *locked, *res;
    int rc;

    if ((rc = scope_load(s, dept ? dept->id : 0, &settings, &locked, &row)) !=
        0)
        return api_respond_cat_error(r, rc, "settings");
    res = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "scope",
                    dept ? "department" : "organisation", "department",
                    dept ? json_string(dept->name) : json_null(), "settings",
                    settings, "locked", locked, "updated",
                    api_time_json(row.updated), "updated_by",
                    user_name_json(s, row.updated_by));
    if (res == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, status, res);
}

/* Look the department of the path up; answers 404 itself (-1). */
static int dept_of_path(struct http_req *r, struct cat_dept *out)
{
    int rc;

    if ((rc = cat_dept_get(http_srv(r)->cat, http_param(r, 0), out)) != 0) {
        api_respond_cat_error(r, rc, "department");
        return -1;
    }
    return 0;
}

/* PUT: replace one scope's settings and locks; audited. */
static int put_scope(struct http_req *r, const struct cat_dept *dept)
{
    static const char *const keys[] = {"settings", "locked", NULL};
    struct srv *s = http_srv(r);
    struct cat_settings row;
    json_t *body, *settings, *locked, *empty = NULL, *detail;
    char why[256], target[160], *dtext;
    const char *k;
    json_t *v;
    int rc;

    if ((body = http_json_body(r, keys)) == NULL)
        return 0;
    settings = json_object_get(body, "settings");
    locked = json_object_get(body, "locked");
    if (settings == NULL)
        return http_respond_error(r, 400, "bad_request",
                                  "settings is missing (an object; {} for "
                                  "none)");
    if (locked == NULL)
        locked = empty = json_array();
    if (settings_valid(settings, locked, why, sizeof(why)) != 0) {
        json_decref(empty);
        return http_respond_error(r, 400, "bad_request", "%s", why);
    }
    memset(&row, 0, sizeof(row));
    row.body = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    row.locked = json_dumps(locked, JSON_COMPACT);
    row.updated = srv_now();
    row.updated_by = http_auth(r)->user_id;
    if (row.body == NULL || row.locked == NULL) {
        free(row.body);
        free(row.locked);
        json_decref(empty);
        return http_respond_error(r, 500, "server_error", "out of memory");
    }
    rc = cat_settings_set(s->cat, dept ? dept->id : 0, &row);
    if (rc != 0) {
        cat_settings_clear(&row);
        json_decref(empty);
        return api_respond_cat_error(r, rc, "settings");
    }
    /* The audit record names every value; when that is too long for
     * it, the keys set. */
    snprintf(target, sizeof(target), "%s%s", dept ? "department:" : "",
             dept ? dept->name : "organisation");
    detail = json_pack("{s:O, s:O}", "settings", settings, "locked", locked);
    dtext = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (dtext != NULL && strlen(dtext) > AUDIT_DETAIL_MAX) {
        free(dtext);
        json_decref(detail);
        detail = json_pack("{s:[], s:O}", "keys", "locked", locked);
        json_object_foreach(settings, k, v)
        {
            (void)v;
            json_array_append_new(json_object_get(detail, "keys"),
                                  json_string(k));
        }
        dtext = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    }
    srv_audit(s, http_auth(r)->user_id, NULL, http_client_addr(r),
              "settings_set", target, "%s", dtext ? dtext : "{}");
    free(dtext);
    json_decref(detail);
    cat_settings_clear(&row);
    json_decref(empty);
    return respond_scope(r, dept, 200);
}

/* GET /api/v1/settings (admin) */
static int org_get(struct http_req *r)
{
    return respond_scope(r, NULL, 200);
}

/* PUT /api/v1/settings (admin) {"settings", "locked"} */
static int org_put(struct http_req *r)
{
    return put_scope(r, NULL);
}

/* GET /api/v1/departments/{name}/settings (admin) */
static int dept_get(struct http_req *r)
{
    struct cat_dept d;

    if (dept_of_path(r, &d) != 0)
        return 0;
    return respond_scope(r, &d, 200);
}

/* PUT /api/v1/departments/{name}/settings (admin) {"settings", "locked"} */
static int dept_put(struct http_req *r)
{
    struct cat_dept d;

    if (dept_of_path(r, &d) != 0)
        return 0;
    return put_scope(r, &d);
}

/* Add the names of array b not yet in array a. */
static void locked_union(json_t *a, const json_t *b)
{
    size_t i, j;
    const char *n;
    int seen;

    for (i = 0; i < json_array_size(b); i++) {
        n = json_string_value(json_array_get(b, i));
        if (n == NULL)
            continue;
        seen = 0;
        for (j = 0; j < json_array_size(a) && !seen; j++)
            seen = strcmp(n, json_string_value(json_array_get(a, j))) == 0;
        if (!seen)
            json_array_append_new(a, json_string(n));
    }
}

/*
 * GET /api/v1/devices/{id}/settings (the device itself, or an admin):
 * the organisation's settings with the device's department's on top
 * (key by key), and the keys either of them locks.
 */
static int device_get(struct http_req *r)
{
    struct srv *s = http_srv(r);
    const struct http_auth *a = http_auth(r);
    const char *id = http_param(r, 0);
    struct cat_settings orow, drow;
    struct cat_device d;
    struct cat_dept dept;
    json_t *os = NULL, *ol = NULL, *ds = NULL, *dl = NULL, *res;
    int rc, have_dept = 0;

    if (a->kind == HTTP_AUTH_DEVICE && strcmp(id, a->device_id) != 0)
        return http_respond_error(r, 403, "forbidden",
                                  "a device reads only its own settings");
    memset(&drow, 0, sizeof(drow));
    if ((rc = cat_device_get(s->cat, id, &d)) != 0)
        return api_respond_cat_error(r, rc, "device");
    if (d.dept_id != 0 && cat_dept_get_id(s->cat, d.dept_id, &dept) == 0)
        have_dept = 1;
    if ((rc = scope_load(s, 0, &os, &ol, &orow)) != 0)
        goto err0;
    if (have_dept) {
        if ((rc = scope_load(s, dept.id, &ds, &dl, &drow)) != 0)
            goto err1;
        if (json_object_update(os, ds) != 0) {
            rc = CAIRN_ENOMEM;
            goto err2;
        }
        locked_union(ol, dl);
    }
    res = json_pack("{s:s, s:o, s:O, s:O, s:o}", "device_id", d.id,
                    "department",
                    have_dept ? json_string(dept.name) : json_null(),
                    "settings", os, "locked", ol, "updated",
                    api_time_json(drow.updated > orow.updated
                                      ? drow.updated
                                      : orow.updated));
    json_decref(ds);
    json_decref(dl);
    json_decref(os);
    json_decref(ol);
    cat_device_clear(&d);
    if (res == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    return http_respond_json(r, 200, res);

err2:
    json_decref(ds);
    json_decref(dl);
err1:
    json_decref(os);
    json_decref(ol);
err0:
    cat_device_clear(&d);
    return api_respond_cat_error(r, rc, "settings");
}

const struct http_route api_settings_routes[] = {
    {"GET", "/api/v1/settings", HTTP_ADMIN, 0, org_get, NULL},
    {"PUT", "/api/v1/settings", HTTP_ADMIN, SETTINGS_BODY_MAX, org_put, NULL},
    {"GET", "/api/v1/departments/{}/settings", HTTP_ADMIN, 0, dept_get, NULL},
    {"PUT", "/api/v1/departments/{}/settings", HTTP_ADMIN, SETTINGS_BODY_MAX,
     dept_put, NULL},
    {"GET", "/api/v1/devices/{}/settings", HTTP_DEVICE | HTTP_ADMIN, 0,
     device_get, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
