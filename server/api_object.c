/*
 * api_object.c - a device's archive over HTTP (docs/API.md, "Device
 * archives"): list, have, read (with Range), stat, and append-only,
 * content-checked uploads.  A device's token reaches only its own archive:
 * /api/v1/devices/<another id>/... is 403.  People may read (never write)
 * the archives they may restore: the owner of a personal device, and
 * administrators any device.  Nothing deletes or overwrites.
 *
 * An upload is streamed: packs and index objects go straight into a
 * hidden temporary object of the device's store while being hashed (one
 * write of each byte: spooling first and copying took a third of the
 * server's CPU for a backup), small objects (config, snapshot) are held in
 * memory.  At the end the name is checked against the SHA-256, the
 * structure is checked as far as it can be without keys (read back from
 * the temporary object), and only then is the object named, durably,
 * before the answer.  Any failed check stores nothing.
 *
 * A device may also read (never write) another device's archive while a
 * push restore from that device onto it is queued or running.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/pack.h"
#include "cairn/snapshot.h"
#include "cairn/store.h"

#include "api.h"
#include "catalog.h"
#include "http.h"
#include "srv.h"

#define SMALL_MAX (1024u * 1024)   /* config and snapshot objects */
#define HAVE_MAX 1000              /* names per have request */
#define BODY_MAX ((size_t)CAIRN_PACK_MAX_LEN)

/* ---- common ---- */

static int type_parse(const char *t, enum cairn_obj_type *out)
{
    if (strcmp(t, "config") == 0)
        *out = CAIRN_OBJ_CONFIG;
    else if (strcmp(t, "pack") == 0)
        *out = CAIRN_OBJ_PACK;
    else if (strcmp(t, "index") == 0)
        *out = CAIRN_OBJ_INDEX;
    else if (strcmp(t, "snapshot") == 0)
        *out = CAIRN_OBJ_SNAPSHOT;
    else
        return -1;
    return 0;
}

static int content_named(enum cairn_obj_type t)
{
    return t == CAIRN_OBJ_PACK || t == CAIRN_OBJ_INDEX ||
           t == CAIRN_OBJ_SNAPSHOT;
}

static int hex64(const char *n)
{
    size_t i;

    for (i = 0; i < 64; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return 0;
    return n[64] == '\0';
}

static uint64_t type_cap(const struct srv *s, enum cairn_obj_type t)
{
    switch (t) {
    case CAIRN_OBJ_PACK:
        return s->cfg.max_pack_bytes && s->cfg.max_pack_bytes < BODY_MAX
                   ? s->cfg.max_pack_bytes
                   : BODY_MAX;
    case CAIRN_OBJ_INDEX:
        return CAIRN_INDEX_MAX_LEN;
    default:
        return SMALL_MAX;
    }
}

static int push_found(void *arg, const struct cat_push *p)
{
    (void)p;
    *(int *)arg = 1;
    return 0;
}

/*
 * May the calling device read (never write) device id's archive: the
 * target of a push restore from it that is queued or running?
 */
static int push_reader(struct http_req *r, const char *id)
{
    struct cat_push_filter f;
    int found = 0;

    if (strcmp(http_method(r), "PUT") == 0)
        return 0;
    memset(&f, 0, sizeof(f));
    f.source = id;
    f.target = http_auth(r)->device_id;
    f.active_only = 1;
    f.limit = 1;
    if (cat_push_list(http_srv(r)->cat, &f, push_found, &found) != 0)
        return 0;
    return found;
}

/*
 * Check the caller is the device the path names (or, to read, the target
 * of a push restore from it) and open its store.  With
 * type_out, the second path segment must be a type.  Answers the refusal
 * itself and returns -1.
 */
static int open_archive(struct http_req *r, enum cairn_obj_type *type_out,
                        struct cairn_store **out)
{
    const struct http_auth *a = http_auth(r);
    const char *id = http_param(r, 0);
    int rc;

    if (a->kind == HTTP_AUTH_SESSION) {
        if (api_may_restore(r, id) != 0)
            return -1;
    } else if (a->kind != HTTP_AUTH_DEVICE ||
               (strcmp(id, a->device_id) != 0 && !push_reader(r, id))) {
        http_respond_error(r, 403, "forbidden",
                           "a device may reach only its own archive");
        return -1;
    }
    if (type_out != NULL && type_parse(http_param(r, 1), type_out) != 0) {
        http_respond_error(r, 404, "not_found",
                           "no object type %s (config, pack, index, "
                           "snapshot)", http_param(r, 1));
        return -1;
    }
    if ((rc = srv_device_store(http_srv(r), id, 0, out)) != 0) {
        if (rc == CAIRN_ENOENT)
            http_respond_error(r, 404, "not_found",
                               "this device has no archive here");
        else
            http_respond_error(r, 500, "server_error",
                               "cannot open the archive: %s",
                               cairn_strerror(rc));
        return -1;
    }
    return 0;
}

static int respond_store_error(struct http_req *r, int rc, const char *what)
{
    if (rc == CAIRN_ENOENT)
        return http_respond_error(r, 404, "not_found", "no such %s", what);
    if (rc == CAIRN_ENOSPC)
        return http_respond_error(r, 507, "unavailable",
                                  "the server's disk is full");
    return http_respond_error(r, 500, "server_error", "the store failed on "
                              "the %s: %s", what, cairn_strerror(rc));
}

/* ---- list and have ---- */

static int list_one(void *arg, const char *name, uint64_t size)
{
    return json_array_append_new(arg, json_pack("{s:s, s:I}", "name", name,
                                                "size", (json_int_t)size)) ==
                   0
               ? 0
               : CAIRN_ENOMEM;
}

/* GET /api/v1/devices/{id}/objects/{type} */
static int obj_list(struct http_req *r)
{
    struct cairn_store *st;
    enum cairn_obj_type t;
    json_t *arr;
    int rc;

    if (open_archive(r, &t, &st) != 0)
        return 0;
    if ((arr = json_array()) == NULL) {
        cairn_store_free(st);
        return http_respond_error(r, 500, "server_error", "out of memory");
    }
    rc = cairn_store_list(st, t, list_one, arr);
    cairn_store_free(st);
    if (rc != 0) {
        json_decref(arr);
        return respond_store_error(r, rc, "listing");
    }
    return http_respond_json(r, 200, arr);
}

/* POST /api/v1/devices/{id}/objects/{type}/have {"names": [...]} */
static int obj_have(struct http_req *r)
{
    static const char *const keys[] = {"names", NULL};
    struct cairn_store *st = NULL;
    enum cairn_obj_type t;
    json_t *body, *names, *v, *have = NULL;
    uint64_t size;
    size_t i;
    int rc;

    if (open_archive(r, &t, &st) != 0)
        return 0;
    if ((body = http_json_body(r, keys)) == NULL)
        goto done;
    names = json_object_get(body, "names");
    if (!json_is_array(names) || json_array_size(names) > HAVE_MAX) {
        http_respond_error(r, 400, "bad_request",
                           "names must be an array of at most %d names",
                           HAVE_MAX);
        goto done;
    }
    json_array_foreach(names, i, v) {
        if (!json_is_string(v) ||
            !cairn_store_name_valid(t, json_string_value(v))) {
            http_respond_error(r, 400, "bad_request",
                               "names[%zu] is not a valid object name", i);
            goto done;
        }
    }
    if ((have = json_array()) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto done;
    }
    json_array_foreach(names, i, v) {
        rc = cairn_store_stat(st, t, json_string_value(v), &size);
        if (rc == 0) {
            if (json_array_append(have, v) != 0) {
                http_respond_error(r, 500, "server_error", "out of memory");
                goto done;
            }
        } else if (rc != CAIRN_ENOENT) {
            respond_store_error(r, rc, "object");
            goto done;
        }
    }
    http_respond_json(r, 200, json_pack("{s:O}", "have", have));

done:
    json_decref(have);
    cairn_store_free(st);
    return 0;
}

/* ---- read ---- */

/*
 * Parse "bytes=a-b", "bytes=a-" or "bytes=-n" against size.  0 and the
 * range, 1 if the header is not one range we understand (ignore it, as
 * RFC 9110 allows), -1 if unsatisfiable (416).
 */
static int range_parse(const char *h, uint64_t size, uint64_t *off,
                       uint64_t *len)
{
    unsigned long long a = 0, b = 0;
    int have_a = 0, have_b = 0;
    char *end;

    if (strncmp(h, "bytes=", 6) != 0)
        return 1;
    h += 6;
    if (*h >= '0' && *h <= '9') {
        errno = 0;
        a = strtoull(h, &end, 10);
        if (errno != 0)
            return 1;
        h = end;
        have_a = 1;
    }
    if (*h++ != '-')
        return 1;
    if (*h >= '0' && *h <= '9') {
        errno = 0;
        b = strtoull(h, &end, 10);
        if (errno != 0)
            return 1;
        h = end;
        have_b = 1;
    }
    if (*h != '\0' || (!have_a && !have_b))
        return 1;
    if (!have_a) {
        /* The last b bytes. */
        if (b == 0 || size == 0)
            return -1;
        if (b > size)
            b = size;
        *off = size - b;
        *len = b;
        return 0;
    }
    if (have_b && b < a)
        return 1;
    if (a >= size)
        return -1;
    if (!have_b || b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 0;
}

/* The file of an object in the directory store (layout in cairn/store.h). */
static int object_path(struct srv *s, const char *dev, enum cairn_obj_type t,
                       const char *name, char out[PATH_MAX])
{
    int n;

    switch (t) {
    case CAIRN_OBJ_CONFIG:
        n = snprintf(out, PATH_MAX, "%s/%s/config", s->objects_dir, dev);
        break;
    case CAIRN_OBJ_PACK:
        n = snprintf(out, PATH_MAX, "%s/%s/data/%.2s/%s", s->objects_dir, dev,
                     name, name);
        break;
    case CAIRN_OBJ_INDEX:
        n = snprintf(out, PATH_MAX, "%s/%s/index/%.2s/%s", s->objects_dir,
                     dev, name, name);
        break;
    case CAIRN_OBJ_SNAPSHOT:
        n = snprintf(out, PATH_MAX, "%s/%s/snapshots/%s", s->objects_dir, dev,
                     name);
        break;
    default:
        return CAIRN_EINVAL;
    }
    return n < PATH_MAX ? 0 : CAIRN_ERANGE;
}

/* GET (and HEAD, which the framework routes here) /api/v1/devices/{id}/
 * objects/{type}/{name} */
static int obj_get(struct http_req *r)
{
    struct srv *s = http_srv(r);
    struct cairn_store *st;
    enum cairn_obj_type t;
    const char *name = http_param(r, 2), *rh;
    char path[PATH_MAX], cr[96];
    uint64_t size, off = 0, len;
    uint8_t *buf;
    unsigned status = 200;
    int rc, fd, pr;

    if (open_archive(r, &t, &st) != 0)
        return 0;
    if (!cairn_store_name_valid(t, name)) {
        cairn_store_free(st);
        return http_respond_error(r, 400, "bad_request",
                                  "not a valid object name");
    }
    if ((rc = cairn_store_stat(st, t, name, &size)) != 0) {
        cairn_store_free(st);
        return respond_store_error(r, rc, "object");
    }
    len = size;
    if ((rh = http_header(r, "Range")) != NULL &&
        (pr = range_parse(rh, size, &off, &len)) != 1) {
        if (pr < 0) {
            cairn_store_free(st);
            snprintf(cr, sizeof(cr), "bytes */%llu",
                     (unsigned long long)size);
            http_set_header(r, "Content-Range", cr);
            return http_respond_error(r, 416, "bad_request",
                                      "the range is outside the object "
                                      "(%llu bytes)",
                                      (unsigned long long)size);
        }
        status = 206;
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
                 (unsigned long long)off, (unsigned long long)(off + len - 1),
                 (unsigned long long)size);
        http_set_header(r, "Content-Range", cr);
    }
    http_set_header(r, "Accept-Ranges", "bytes");

    /* The directory store: answer from the file itself, no copy. */
    if (strcmp(st->ops->name, "dir") == 0 &&
        object_path(s, http_param(r, 0), t, name, path) == 0 &&
        (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        cairn_store_free(st);
        return http_respond_fd(r, status, fd, off, len);
    }
    if (len > SIZE_MAX || (buf = malloc(len ? (size_t)len : 1)) == NULL) {
        cairn_store_free(st);
        return http_respond_error(r, 500, "server_error", "out of memory");
    }
    rc = cairn_store_get_range(st, t, name, off, (size_t)len, buf);
    cairn_store_free(st);
    if (rc != 0) {
        free(buf);
        return respond_store_error(r, rc, "object");
    }
    rc = http_respond_bytes(r, status, "application/octet-stream", buf,
                            (size_t)len);
    free(buf);
    return rc;
}

/* ---- upload ---- */

struct upload {
    struct srv *s;
    struct cairn_store *st;
    enum cairn_obj_type type;
    char dev[33];
    char name[129];
    uint64_t cap, len;
    int exists;
    struct cairn_sha256 *h;
    void *sh;            /* the object being stored, or NULL */
    struct cairn_buf mem; /* small objects */
};

static void upload_free(struct upload *u)
{
    if (u == NULL)
        return;
    cairn_store_abort(u->st, u->sh);
    cairn_buf_free(&u->mem);
    cairn_sha256_free(u->h);
    cairn_store_free(u->st);
    free(u);
}

static int stream_begin(struct http_req *r, void **out_sink)
{
    struct srv *s = http_srv(r);
    struct upload *u;
    const char *name = http_param(r, 2), *cl;
    uint64_t size;
    int rc;

    if ((u = calloc(1, sizeof(*u))) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        return -1;
    }
    u->s = s;
    if (open_archive(r, &u->type, &u->st) != 0)
        goto fail;
    if (!cairn_store_name_valid(u->type, name) ||
        (content_named(u->type) && !hex64(name))) {
        http_respond_error(r, 400, "bad_request",
                           u->type == CAIRN_OBJ_CONFIG
                               ? "the config is named \"config\""
                               : "the name must be the SHA-256 of the "
                                 "content, 64 lowercase hex digits");
        goto fail;
    }
    snprintf(u->dev, sizeof(u->dev), "%s", http_param(r, 0));
    snprintf(u->name, sizeof(u->name), "%s", name);
    u->cap = type_cap(s, u->type);
    if ((cl = http_header(r, "Content-Length")) != NULL &&
        strtoull(cl, NULL, 10) > u->cap) {
        http_respond_error(r, 413, "too_large",
                           "a %s object is at most %llu bytes",
                           http_param(r, 1), (unsigned long long)u->cap);
        goto fail;
    }
    rc = cairn_store_stat(u->st, u->type, name, &size);
    if (rc != 0 && rc != CAIRN_ENOENT) {
        respond_store_error(r, rc, "object");
        goto fail;
    }
    u->exists = (rc == 0);
    if ((u->h = cairn_sha256_new()) == NULL) {
        http_respond_error(r, 500, "server_error", "out of memory");
        goto fail;
    }
    /* An object we have already: hash the body to check it, keep nothing
     * (but the config, compared byte for byte). */
    if (!u->exists || u->type == CAIRN_OBJ_CONFIG) {
        if (u->type == CAIRN_OBJ_PACK || u->type == CAIRN_OBJ_INDEX) {
            if ((rc = cairn_store_begin(u->st, u->type, &u->sh)) != 0) {
                u->sh = NULL;
                respond_store_error(r, rc, "object");
                goto fail;
            }
        } else {
            cairn_buf_init(&u->mem, (size_t)u->cap);
        }
    }
    *out_sink = u;
    return 0;

fail:
    upload_free(u);
    return -1;
}

/* A piece of the body: hashed, and written where begin said.  A failure
 * is answered here (507 when the server's disk is full), so that the
 * client knows what to do. */
static int stream_write(struct http_req *r, void *sink, const uint8_t *buf,
                        size_t len)
{
    struct upload *u = sink;
    int rc = 0;

    if (len > u->cap - u->len) {
        http_respond_error(r, 413, "too_large",
                           "a %s object is at most %llu bytes",
                           http_param(r, 1), (unsigned long long)u->cap);
        return CAIRN_ERANGE;
    }
    u->len += len;
    if (cairn_sha256_update(u->h, buf, len) != 0)
        rc = CAIRN_ECRYPTO;
    else if (u->sh != NULL)
        rc = cairn_store_append(u->st, u->sh, buf, len);
    else if (!u->exists || u->type == CAIRN_OBJ_CONFIG)
        rc = cairn_buf_append(&u->mem, buf, len);
    if (rc != 0)
        respond_store_error(r, rc, "upload");
    return rc;
}

/* Read back len bytes at off of the object being uploaded. */
static int upload_read(struct upload *u, uint8_t *p, size_t len, uint64_t off)
{
    return cairn_store_stream_read(u->st, u->sh, off, len, p);
}

/*
 * A pack's structure, read back: header, footer, the trailer
 * (an index object of one pack, id and length zero), every blob inside
 * the blob area.  Returns NULL or what is wrong.
 */
static const char *check_pack(struct upload *u)
{
    static const uint8_t zero[CAIRN_ID_LEN] = {0};
    uint8_t hdr[CAIRN_PACK_HEADER_LEN], ftr[CAIRN_PACK_FOOTER_LEN];
    uint8_t *trailer = NULL;
    struct cairn_index *idx = NULL;
    struct cairn_pack_info *pi;
    const char *why = NULL;
    uint64_t area_end;
    uint32_t tlen, i;

    if (u->len < CAIRN_PACK_HEADER_LEN + CAIRN_PACK_FOOTER_LEN ||
        upload_read(u, hdr, sizeof(hdr), 0) != 0 ||
        upload_read(u, ftr, sizeof(ftr), u->len - sizeof(ftr)) != 0)
        return "pack: too short";
    if (memcmp(hdr, "CRNP", 4) != 0 || hdr[4] != 1 || hdr[5] != 0 ||
        hdr[6] != 0 || hdr[7] != 0)
        return "pack: bad header";
    if (cairn_pack_footer_decode(ftr, &tlen) != 0 ||
        tlen > u->len - CAIRN_PACK_HEADER_LEN - CAIRN_PACK_FOOTER_LEN)
        return "pack: bad footer";
    area_end = u->len - CAIRN_PACK_FOOTER_LEN - tlen;
    if ((trailer = malloc(tlen ? tlen : 1)) == NULL)
        return "pack: out of memory";
    if (upload_read(u, trailer, tlen, area_end) != 0 ||
        cairn_index_decode(trailer, tlen, NULL, &idx) != 0) {
        why = "pack: bad trailer";
        goto done;
    }
    if (idx->npacks != 1 || idx->packs[0].length != 0 ||
        memcmp(idx->packs[0].id, zero, CAIRN_ID_LEN) != 0) {
        why = "pack: the trailer does not describe one pack";
        goto done;
    }
    pi = &idx->packs[0];
    for (i = 0; i < pi->nblobs; i++) {
        if (pi->blobs[i].offset < CAIRN_PACK_HEADER_LEN ||
            (uint64_t)pi->blobs[i].offset + pi->blobs[i].length > area_end) {
            why = "pack: a blob lies outside the pack";
            goto done;
        }
    }
done:
    cairn_index_free(idx);
    free(trailer);
    return why;
}

/* Read the upload back whole (index objects; at most 256 MiB). */
static int upload_read_all(struct upload *u, uint8_t **out)
{
    uint8_t *b;
    int rc;

    if ((b = malloc(u->len ? (size_t)u->len : 1)) == NULL)
        return CAIRN_ENOMEM;
    if ((rc = upload_read(u, b, (size_t)u->len, 0)) != 0) {
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* An index object: decodes, and names only packs stored here whole. */
static const char *check_index(struct upload *u, char *detail, size_t dlen)
{
    struct cairn_index *idx = NULL;
    uint8_t *b = NULL;
    const char *why = NULL;
    char hex[65];
    uint64_t size;
    uint32_t i;

    if (upload_read_all(u, &b) != 0)
        return "index: cannot read the upload";
    if (cairn_index_decode(b, (size_t)u->len, NULL, &idx) != 0) {
        why = "index: malformed index object";
        goto done;
    }
    for (i = 0; i < idx->npacks; i++) {
        cairn_hex_encode(idx->packs[i].id, CAIRN_ID_LEN, hex);
        if (cairn_store_stat(u->st, CAIRN_OBJ_PACK, hex, &size) != 0 ||
            size != idx->packs[i].length) {
            snprintf(detail, dlen,
                     "index: it names pack %s, which is not stored here "
                     "(upload the packs first)", hex);
            why = detail;
            goto done;
        }
    }
done:
    cairn_index_free(idx);
    free(b);
    return why;
}

/* Every index object's name, to look a tree up in them. */
struct names {
    char **v;
    size_t n, cap;
};

static int names_add(void *arg, const char *name, uint64_t size)
{
    struct names *nm = arg;
    char **v;

    (void)size;
    if (nm->n == nm->cap) {
        nm->cap = nm->cap ? nm->cap * 2 : 64;
        if ((v = realloc(nm->v, nm->cap * sizeof(*v))) == NULL)
            return CAIRN_ENOMEM;
        nm->v = v;
    }
    if ((nm->v[nm->n] = strdup(name)) == NULL)
        return CAIRN_ENOMEM;
    nm->n++;
    return 0;
}

/* Is id a tree blob named by one of the archive's index objects?  1, 0, or
 * a negative error. */
static int tree_indexed(struct cairn_store *st, const uint8_t id[32])
{
    struct names nm = {NULL, 0, 0};
    struct cairn_index *idx;
    uint8_t *b;
    size_t i, blen;
    uint32_t p, k;
    int rc, found = 0;

    if ((rc = cairn_store_list(st, CAIRN_OBJ_INDEX, names_add, &nm)) != 0)
        goto done;
    for (i = 0; i < nm.n && !found; i++) {
        if (cairn_store_get(st, CAIRN_OBJ_INDEX, nm.v[i], &b, &blen) != 0)
            continue;
        rc = cairn_index_decode(b, blen, NULL, &idx);
        free(b);
        if (rc != 0)
            continue;
        for (p = 0; p < idx->npacks && !found; p++)
            for (k = 0; k < idx->packs[p].nblobs && !found; k++)
                found = memcmp(idx->packs[p].blobs[k].id, id, 32) == 0;
        cairn_index_free(idx);
    }
    rc = found;
done:
    for (i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    return rc;
}

/* After a new object: the device's status, the catalog of snapshots. */
static void device_note(struct upload *u, const struct cairn_snapshot *snap)
{
    struct srv *s = u->s;
    struct cat_snapshot cs;
    struct cat_device d;
    int64_t now = srv_now(), t;

    if (snap != NULL) {
        memset(&cs, 0, sizeof(cs));
        snprintf(cs.device_id, sizeof(cs.device_id), "%s", u->dev);
        memcpy(cs.id, u->name, sizeof(cs.id) - 1); /* 64 hex digits */
        cs.time = snap->time_ns / 1000000000;
        cs.complete = snap->complete;
        cs.files = (int64_t)snap->files;
        cs.bytes = (int64_t)snap->bytes;
        cs.added_bytes = (int64_t)snap->added_bytes;
        if (cat_snapshot_add(s->cat, &cs) != 0)
            srv_log(SRV_LOG_ERROR, "cannot record snapshot %s of %s",
                    u->name, u->dev);
    }
    pthread_mutex_lock(&api_device_mutex);
    if (cat_device_get(s->cat, u->dev, &d) != 0) {
        pthread_mutex_unlock(&api_device_mutex);
        return;
    }
    d.last_activity = now;
    d.bytes_stored += (int64_t)u->len;
    if (snap != NULL && snap->complete) {
        /* A clock far ahead must not make a device look protected. */
        t = snap->time_ns / 1000000000;
        if (t > now || t <= 0)
            t = now;
        if (t > d.last_backup)
            d.last_backup = t;
        if (d.first_backup == 0)
            d.first_backup = t;
    }
    if (cat_device_update(s->cat, &d) != 0)
        srv_log(SRV_LOG_ERROR, "cannot update the status of device %s",
                u->dev);
    pthread_mutex_unlock(&api_device_mutex);
    cat_device_clear(&d);
}

static int stream_end(struct http_req *r, void *sink)
{
    struct upload *u = sink;
    struct srv *s = u->s;
    struct cairn_snapshot *snap = NULL;
    struct cairn_config cfg;
    struct cat_device d;
    uint8_t digest[32], *old = NULL;
    char hex[65], detail[200];
    const char *why = NULL;
    size_t oldlen;
    int rc;

    if (cairn_sha256_final(u->h, digest) != 0) {
        http_respond_error(r, 500, "server_error", "hashing failed");
        goto done;
    }
    cairn_hex_encode(digest, sizeof(digest), hex);

    if (u->type == CAIRN_OBJ_CONFIG) {
        if (u->exists) {
            if ((rc = cairn_store_get(u->st, CAIRN_OBJ_CONFIG, "config", &old,
                                      &oldlen)) != 0) {
                respond_store_error(r, rc, "config");
            } else if (oldlen == u->mem.len &&
                       memcmp(old, u->mem.data, oldlen) == 0) {
                http_respond_empty(r, 200);
            } else {
                http_respond_error(r, 409, "conflict",
                                   "this archive has a different config "
                                   "already; it is never replaced");
            }
            goto done;
        }
        /* The archive's own config only. */
        if (cairn_config_decode(u->mem.data, u->mem.len, NULL, &cfg) != 0) {
            http_respond_error(r, 400, "bad_request",
                               "config: not an archive config");
            goto done;
        }
        if (cat_device_get(s->cat, u->dev, &d) == 0) {
            rc = memcmp(d.archive_id, cfg.archive_id, CAIRN_ID_LEN);
            cat_device_clear(&d);
            if (rc != 0) {
                http_respond_error(r, 400, "bad_request",
                                   "config: it belongs to another archive");
                goto done;
            }
        }
        if ((rc = cairn_store_put(u->st, CAIRN_OBJ_CONFIG, "config",
                                  u->mem.data, u->mem.len, 1)) != 0) {
            respond_store_error(r, rc, "config");
            goto done;
        }
        goto stored;
    }

    if (strcmp(hex, u->name) != 0) {
        http_respond_error(r, 400, "bad_request",
                           "the content's SHA-256 is %s, not its name", hex);
        goto done;
    }
    if (u->exists) {
        http_respond_empty(r, 200);
        goto done;
    }
    switch (u->type) {
    case CAIRN_OBJ_PACK:
        why = check_pack(u);
        break;
    case CAIRN_OBJ_INDEX:
        why = check_index(u, detail, sizeof(detail));
        break;
    default:
        if (cairn_snapshot_decode(u->mem.data, u->mem.len, NULL, &snap) !=
            0) {
            why = "snapshot: malformed snapshot object";
            break;
        }
        rc = tree_indexed(u->st, snap->root);
        if (rc < 0) {
            respond_store_error(r, rc, "index");
            goto done;
        }
        if (rc == 0)
            why = "snapshot: its root tree is in none of this archive's "
                  "index objects (upload them first)";
        break;
    }
    if (why != NULL) {
        http_respond_error(r, 400, "bad_request", "%s", why);
        goto done;
    }
    if (u->sh != NULL) {
        /* Named, durably (the handle is freed whatever the result). */
        rc = cairn_store_commit(u->st, u->sh, u->name, 1);
        u->sh = NULL;
    } else
        rc = cairn_store_put(u->st, u->type, u->name, u->mem.data,
                             u->mem.len, 1);
    if (rc != 0) {
        respond_store_error(r, rc, "object");
        goto done;
    }

stored:
    atomic_fetch_add(&s->m.objects_stored, 1);
    device_note(u, snap);
    http_respond_empty(r, 201);

done:
    free(old);
    cairn_snapshot_free(snap);
    upload_free(u);
    return 0;
}

static void stream_abort(struct http_req *r, void *sink)
{
    (void)r;
    upload_free(sink);
}

static const struct http_stream_ops put_ops = {
    stream_begin,
    stream_write,
    stream_end,
    stream_abort,
};

const struct http_route api_object_routes[] = {
    {"GET", "/api/v1/devices/{}/objects/{}", HTTP_DEVICE | HTTP_USER, 0,
     obj_list, NULL},
    {"POST", "/api/v1/devices/{}/objects/{}/have", HTTP_DEVICE | HTTP_USER,
     256 * 1024, obj_have, NULL},
    {"GET", "/api/v1/devices/{}/objects/{}/{}", HTTP_DEVICE | HTTP_USER, 0,
     obj_get, NULL},
    {"PUT", "/api/v1/devices/{}/objects/{}/{}", HTTP_DEVICE | HTTP_STREAM,
     BODY_MAX, NULL, &put_ops},
    {NULL, NULL, 0, 0, NULL, NULL},
};
