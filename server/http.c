/*
 * http.c - cairnd's request framework (http.h) over libmicrohttpd.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * when the headers are in (here: route, credentials, size limits, and the
 * start of a streamed body), once per piece of body, and once more when
 * the body is complete (here: the buffered handler, or the end of the
 * stream).  A response may only be queued at the first or the last call,
 * so handlers never queue: http_respond_* builds the response and keeps it
 * in the request, and the framework queues it at the next call where
 * libmicrohttpd allows it.  An answer made in the middle of a body (a
 * streamed write that failed) makes the framework discard the rest.
 *
 * One server per process (a static), since cairnd is one server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <strings.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"
#include "auth.h"
#include "http.h"
#include "srv.h"

#define MAX_PARAMS 8
#define MAX_HEADERS 8
#define CONNECTION_TIMEOUT_SECS 120
#define SHUTDOWN_WAIT_SECS 30
/*
 * TLS 1.3 and 1.2, AES-128-GCM first, by the server's choice.  What
 * travels is mostly pack bytes already sealed with AES-256-GCM on the
 * device; the channel protects tokens and requests, for which AES-128 is
 * ample, and its 10 rounds instead of 14 make a restore's TLS on both
 * sides about a fifth cheaper.
 */
#define TLS_PRIORITIES                                                         \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"     \
    "+AES-256-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"
/* A body beyond its route's limit is read and dropped up to this much
 * more (so the client sees the 413), then the connection is closed. */
#define DISCARD_SLACK (64u << 20)

/* The route tables; each ends with an entry whose method is NULL. */
static const struct http_route *const route_tables[] = {
    api_misc_routes,
    api_auth_routes,
    api_org_routes,
    api_device_routes,
    api_object_routes,
    api_restore_routes,
    api_push_routes,
    api_request_routes,
    api_audit_routes,
    api_settings_routes,
};
#define NTABLES (sizeof(route_tables) / sizeof(route_tables[0]))

struct http_req {
    struct srv *s;
    struct MHD_Connection *conn;
    const struct http_route *route;
    char method[8];
    char *path;                /* the decoded path, without the query */
    char *segs;                /* a copy of path split at '/' */
    const char *params[MAX_PARAMS];
    int nparams;
    char addr[64];
    struct http_auth auth;
    struct timespec start;

    /* the body, buffered routes */
    uint8_t *body;
    size_t body_len, body_cap;
    json_t *json;
    uint64_t bytes_in;
    int discard;               /* drop the rest of the body */

    /* streamed bodies */
    void *sink;
    int stream_open;           /* begin succeeded; end or abort owed */

    /* the answer */
    struct MHD_Response *resp;
    unsigned status;
    int queued;
    int deferred;              /* answered at the headers; send at the end */
    uint64_t bytes_out;
    char *hdr_name[MAX_HEADERS], *hdr_value[MAX_HEADERS];
    int nhdr;
};

static struct MHD_Daemon *daemon_h;
static struct srv *daemon_srv;
static atomic_int in_flight;

/* ---- helpers ---- */

static int64_t elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 +
           (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void req_free(struct http_req *r)
{
    int i;

    if (r == NULL)
        return;
    if (r->resp != NULL && !r->queued)
        MHD_destroy_response(r->resp);
    for (i = 0; i < r->nhdr; i++) {
        free(r->hdr_name[i]);
        free(r->hdr_value[i]);
    }
    json_decref(r->json);
    free(r->body);
    free(r->segs);
    free(r->path);
    cairn_wipe(&r->auth, sizeof(r->auth));
    free(r);
}

/* Split r->path into segments; does pattern match?  Fills params. */
static int route_match(struct http_req *r, const char *pattern,
                       const char **params, int *nparams)
{
    const char *p = pattern, *u = r->path;
    int n = 0;

    while (*p == '/' && *u == '/') {
        const char *pe, *ue;
        p++;
        u++;
        pe = strchr(p, '/');
        ue = strchr(u, '/');
        if (pe == NULL)
            pe = p + strlen(p);
        if (ue == NULL)
            ue = u + strlen(u);
        if (pe - p == 2 && p[0] == '{' && p[1] == '}') {
            if (ue == u || n == MAX_PARAMS)
                return 0;
            params[n++] = u; /* the start; cut in route_capture */
        } else if (pe - p != ue - u || memcmp(p, u, (size_t)(pe - p)) != 0) {
            return 0;
        }
        p = pe;
        u = ue;
    }
    if (*p != '\0' || *u != '\0')
        return 0;
    *nparams = n;
    return 1;
}

/* Copy the captures out of the path as NUL-terminated strings. */
static int route_capture(struct http_req *r, const char **starts, int n)
{
    size_t len = strlen(r->path);
    int i;

    if ((r->segs = malloc(len + 1)) == NULL)
        return CAIRN_ENOMEM;
    memcpy(r->segs, r->path, len + 1);
    for (i = 0; i < n; i++) {
        char *q = r->segs + (starts[i] - r->path);
        char *e = strchr(q, '/');
        if (e != NULL)
            *e = '\0';
        r->params[i] = q;
    }
    r->nparams = n;
    return 0;
}

/* Find the route.  *out_status: 0, 404 or 405 (*allow: the methods). */
static const struct http_route *route_find(struct http_req *r,
                                           unsigned *out_status, char *allow,
                                           size_t allowlen)
{
    const char *params[MAX_PARAMS];
    const char *m = r->method;
    int n, any = 0;
    size_t t;

    allow[0] = '\0';
    if (strcmp(m, "HEAD") == 0)
        m = "GET";
    for (t = 0; t < NTABLES; t++) {
        const struct http_route *rt;
        for (rt = route_tables[t]; rt->method != NULL; rt++) {
            if (!route_match(r, rt->pattern, params, &n))
                continue;
            if (strcmp(rt->method, m) == 0 ||
                strcmp(rt->method, r->method) == 0) {
                if (route_capture(r, params, n) != 0) {
                    *out_status = 500;
                    return NULL;
                }
                *out_status = 0;
                return rt;
            }
            if (strlen(allow) + strlen(rt->method) + 3 < allowlen) {
                if (any)
                    strcat(allow, ", ");
                strcat(allow, rt->method);
            }
            any = 1;
        }
    }
    *out_status = any ? 405 : 404;
    return NULL;
}

/* ---- credentials ---- */

/* 0 if credentials were found and valid (or none were given: kind
 * NOBODY), else answers nothing and says why in *why. */
static int auth_session(struct http_req *r, const char *token, int cookie,
                        const char **why)
{
    struct srv *s = r->s;
    struct cat_session ses;
    struct cat_user u;
    int64_t now = srv_now();
    int rc;

    srv_token_hash(token, r->auth.session_hash);
    if ((rc = cat_session_get(s->cat, r->auth.session_hash, &ses)) != 0) {
        *why = rc == CAIRN_ENOENT ? "the session is unknown or has ended"
                                  : "the catalog failed";
        return rc == CAIRN_ENOENT ? CAIRN_EAUTH : rc;
    }
    if (now - ses.last_seen > s->cfg.session_idle_secs ||
        now - ses.created > s->cfg.session_max_secs) {
        cat_session_delete(s->cat, ses.hash);
        *why = "the session has expired; log in again";
        return CAIRN_EAUTH;
    }
    if (cookie) {
        const char *csrf = MHD_lookup_connection_value(
            r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
            (csrf == NULL || ses.csrf[0] == '\0' ||
             !srv_str_equal(csrf, ses.csrf))) {
            *why = "missing or wrong X-CSRF-Token";
            return CAIRN_EPERM;
        }
    }
    if ((rc = cat_user_get_id(s->cat, ses.user_id, &u)) != 0) {
        *why = "the session's user is gone";
        return rc == CAIRN_ENOENT ? CAIRN_EAUTH : rc;
    }
    if (u.disabled) {
        cat_user_clear(&u);
        *why = "the account is disabled";
        return CAIRN_EAUTH;
    }
    if (ses.last_seen != now)
        cat_session_touch(s->cat, ses.hash, now);
    r->auth.kind = HTTP_AUTH_SESSION;
    r->auth.user_id = u.id;
    r->auth.admin = u.admin;
    r->auth.full = ses.full;
    r->auth.cookie = cookie;
    r->auth.dept_id = u.dept_id;
    cat_user_clear(&u);
    cairn_wipe(&ses, sizeof(ses));
    return 0;
}

/* A device token "cd_<32 hex>.<secret>".  The catalog keeps
 * srv_token_hash of the whole token. */
static int auth_device(struct http_req *r, const char *token,
                       const char **why)
{
    struct cat_device d;
    char id[33], h[65];
    const char *dot;
    int i, rc, ok;

    dot = strchr(token, '.');
    if (strlen(token) < 3 + 32 + 2 || dot != token + 3 + 32) {
        *why = "malformed device token";
        return CAIRN_EAUTH;
    }
    for (i = 0; i < 32; i++) {
        char c = token[3 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            *why = "malformed device token";
            return CAIRN_EAUTH;
        }
        id[i] = c;
    }
    id[32] = '\0';
    if ((rc = cat_device_get(r->s->cat, id, &d)) != 0) {
        *why = rc == CAIRN_ENOENT ? "unknown device" : "the catalog failed";
        return rc == CAIRN_ENOENT ? CAIRN_EAUTH : rc;
    }
    srv_token_hash(token, h);
    ok = srv_str_equal(h, d.token_hash);
    cairn_wipe(h, sizeof(h));
    if (!ok) {
        *why = "wrong device token";
        rc = CAIRN_EAUTH;
    } else if (strcmp(d.state, "active") != 0) {
        *why = "this device was replaced by another";
        rc = CAIRN_EAUTH;
    } else {
        r->auth.kind = HTTP_AUTH_DEVICE;
        memcpy(r->auth.device_id, id, sizeof(id));
    }
    cat_device_clear(&d);
    return rc;
}

static int auth_parse(struct http_req *r, const char **why)
{
    const char *h, *tok;

    h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_AUTHORIZATION);
    if (h != NULL) {
        if (strncasecmp(h, "Bearer ", 7) != 0) {
            *why = "the Authorization header must be \"Bearer <token>\"";
            return CAIRN_EAUTH;
        }
        tok = h + 7;
        while (*tok == ' ')
            tok++;
        if (strncmp(tok, "cs_", 3) == 0)
            return auth_session(r, tok, 0, why);
        if (strncmp(tok, "cd_", 3) == 0)
            return auth_device(r, tok, why);
        *why = "unknown kind of token";
        return CAIRN_EAUTH;
    }
    tok = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND,
                                      "cairn_session");
    if (tok != NULL && tok[0] != '\0')
        return auth_session(r, tok, 1, why);
    return 0;
}

/* Is the caller allowed by the route's flags?  Answers if not. */
static int auth_check(struct http_req *r, int parse_rc, const char *why)
{
    unsigned f = r->route->flags;
    const struct http_auth *a = &r->auth;

    if (f & HTTP_PUBLIC)
        return 1;
    if (parse_rc == CAIRN_EPERM) {
        http_respond_error(r, 403, "forbidden", "%s", why);
        return 0;
    }
    if (parse_rc != 0 && parse_rc != CAIRN_EAUTH) {
        http_respond_error(r, 500, "server_error", "%s", why);
        return 0;
    }
    if (parse_rc != 0 || a->kind == HTTP_AUTH_NOBODY) {
        http_respond_error(r, 401, "unauthenticated", "%s",
                           parse_rc ? why : "credentials are required");
        return 0;
    }
    if (a->kind == HTTP_AUTH_DEVICE) {
        if (f & HTTP_DEVICE)
            return 1;
        http_respond_error(r, 403, "forbidden",
                           "a device token may not do this");
        return 0;
    }
    /* a session */
    if (f & HTTP_PARTIAL)
        return 1;
    if (f & (HTTP_USER | HTTP_ADMIN)) {
        if (!a->full) {
            http_respond_error(r, 401, "totp_required",
                               "give a TOTP code first (POST "
                               "/api/v1/login/totp)");
            return 0;
        }
        if ((f & HTTP_USER) || a->admin)
            return 1;
        http_respond_error(r, 403, "forbidden", "administrators only");
        return 0;
    }
    http_respond_error(r, 403, "forbidden", "only a device may do this");
    return 0;
}

/* ---- the access handler ---- */

static enum MHD_Result queue(struct http_req *r)
{
    enum MHD_Result ret;

    if (r->resp == NULL)
        http_respond_error(r, 500, "server_error",
                           "the request was not answered");
    if (r->resp == NULL)
        return MHD_NO;
    ret = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    r->queued = 1;
    return ret;
}

/*
 * An answer decided from the headers alone (404, 401, 413 ...).  Answering
 * and closing while the client is still sending makes it see a reset
 * connection instead of the answer, so the answer waits for the end of the
 * request, the body read and dropped, unless the client waits for "100
 * Continue" (then it has sent nothing yet) or announces more than
 * DISCARD_SLACK bytes (not worth reading).
 */
static enum MHD_Result early_answer(struct http_req *r)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "Content-Length");
    const char *ex = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 "Expect");
    unsigned long long n = 0;
    char *end = NULL;

    r->discard = 1;
    if (cl != NULL) {
        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || *end != '\0')
            n = ULLONG_MAX;
    }
    if ((ex != NULL && strcasecmp(ex, "100-continue") == 0) ||
        n > DISCARD_SLACK)
        return queue(r);
    r->deferred = 1;
    return MHD_YES;
}

static void stream_abort(struct http_req *r)
{
    if (r->stream_open) {
        r->stream_open = 0;
        r->route->stream->abort(r, r->sink);
    }
}

/* The first call: the headers are in. */
static enum MHD_Result first_call(struct srv *s, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  void **con_cls)
{
    const union MHD_ConnectionInfo *ci;
    struct http_req *r;
    const char *cl, *why = "";
    char allow[64];
    unsigned st;
    int prc;

    if ((r = calloc(1, sizeof(*r))) == NULL)
        return MHD_NO;
    *con_cls = r;
    atomic_fetch_add(&in_flight, 1);
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->s = s;
    r->conn = conn;
    snprintf(r->method, sizeof(r->method), "%s", method);
    if ((r->path = strdup(url)) == NULL)
        return MHD_NO;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)
                                   ->sin_addr,
                      r->addr, sizeof(r->addr));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6,
                      &((const struct sockaddr_in6 *)(const void *)sa)
                           ->sin6_addr,
                      r->addr, sizeof(r->addr));
    }

    if ((r->route = route_find(r, &st, allow, sizeof(allow))) == NULL) {
        if (st == 405) {
            http_set_header(r, "Allow", allow);
            http_respond_error(r, 405, "bad_request",
                               "%s is not allowed on %s (allowed: %s)",
                               r->method, r->path, allow);
        } else if (st == 404) {
            http_respond_error(r, 404, "not_found", "no such path: %s",
                               r->path);
        } else {
            http_respond_error(r, 500, "server_error", "out of memory");
        }
        return early_answer(r);
    }
    prc = auth_parse(r, &why);
    if (!auth_check(r, prc, why)) {
        return early_answer(r);
    }
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char *end;
        unsigned long long n;
        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno != 0 || end == cl || n > r->route->max_body) {
            http_respond_error(r, 413, "too_large",
                               "the body is larger than %zu bytes",
                               r->route->max_body);
            return early_answer(r);
        }
    }
    if (r->route->flags & HTTP_STREAM) {
        if (r->route->stream->begin(r, &r->sink) != 0) {
            if (r->resp == NULL)
                http_respond_error(r, 500, "server_error",
                                   "cannot start the upload");
            return early_answer(r);
        }
        r->stream_open = 1;
    }
    return MHD_YES;
}

/* A piece of body. */
static enum MHD_Result body_piece(struct http_req *r, const char *data,
                                  size_t *size)
{
    size_t n = *size;

    *size = 0;
    r->bytes_in += n;
    atomic_fetch_add(&r->s->m.bytes_in, n);
    if (r->discard) {
        /* Drop it; past the slack, hang up. */
        return r->bytes_in > r->route->max_body + DISCARD_SLACK ? MHD_NO
                                                                : MHD_YES;
    }
    if (r->bytes_in > r->route->max_body) {
        stream_abort(r);
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        if (r->resp == NULL)
            http_respond_error(r, 413, "too_large",
                               "the body is larger than %zu bytes",
                               r->route->max_body);
        r->discard = 1;
        return MHD_YES;
    }
    if (r->route->flags & HTTP_STREAM) {
        if (r->route->stream->write(r, r->sink, (const uint8_t *)data, n) !=
            0) {
            stream_abort(r);
            if (r->resp == NULL)
                http_respond_error(r, 500, "server_error",
                                   "cannot store the upload");
            r->discard = 1;
        }
        return MHD_YES;
    }
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        uint8_t *p;
        while (cap < r->body_len + n)
            cap *= 2;
        if (cap > r->route->max_body)
            cap = r->route->max_body;
        if ((p = realloc(r->body, cap)) == NULL) {
            http_respond_error(r, 500, "server_error", "out of memory");
            r->discard = 1;
            return MHD_YES;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return MHD_YES;
}

/* The last call: the body is complete. */
static enum MHD_Result last_call(struct http_req *r)
{
    if (r->resp == NULL && !r->discard) {
        if (r->route->flags & HTTP_STREAM) {
            r->stream_open = 0;
            r->route->stream->end(r, r->sink);
        } else {
            r->route->fn(r);
        }
    }
    return queue(r);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
    struct http_req *r = *con_cls;

    (void)version;
    if (r == NULL)
        return first_call(cls, conn, url, method, con_cls);
    if (r->deferred && *upload_data_size == 0) {
        r->deferred = 0;
        return queue(r);
    }
    if (r->queued || r->deferred) {
        /* Answered at the headers; drop the body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0)
        return body_piece(r, upload_data, upload_data_size);
    return last_call(r);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct srv *s = cls;
    struct http_req *r = *con_cls;

    (void)conn;
    if (r == NULL)
        return;
    *con_cls = NULL;
    stream_abort(r);
    atomic_fetch_add(&s->m.requests, 1);
    if (r->status >= 400 && r->status < 500)
        atomic_fetch_add(&s->m.requests_4xx, 1);
    else if (r->status >= 500)
        atomic_fetch_add(&s->m.requests_5xx, 1);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        atomic_fetch_add(&s->m.bytes_out, r->bytes_out);
    srv_log(SRV_LOG_INFO, "%s %s %s %u in=%llu out=%llu %lldms%s",
            r->addr[0] ? r->addr : "-", r->method, r->path ? r->path : "-",
            r->status, (unsigned long long)r->bytes_in,
            (unsigned long long)r->bytes_out,
            (long long)elapsed_ms(&r->start),
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                                                       : " (interrupted)");
    req_free(r);
    atomic_fetch_sub(&in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    srv_log(SRV_LOG_DEBUG, "http: %s", msg);
}

/* ---- start and stop ---- */

/*
 * Serve the routes on cfg.listen_addr:listen_port over TLS with
 * cert_pem/key_pem (which must stay valid until http_stop), with
 * cfg.threads request threads (0: 4).  listen_port 0 takes a free port
 * and writes it back to s->cfg.listen_port.  One server per process.
 */
int http_start(struct srv *s, const char *cert_pem, const char *key_pem)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *sa;
    unsigned flags;
    unsigned threads = s->cfg.threads ? s->cfg.threads : 4;

    if (daemon_h != NULL)
        return CAIRN_EINVAL;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
            MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (inet_pton(AF_INET, s->cfg.listen_addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)s->cfg.listen_port);
        sa = (struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, s->cfg.listen_addr, &sin6.sin6_addr) ==
               1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)s->cfg.listen_port);
        sa = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        srv_log(SRV_LOG_ERROR,
                "listen_addr \"%s\" is not an IPv4 or IPv6 address",
                s->cfg.listen_addr);
        return CAIRN_EINVAL;
    }
    daemon_srv = s;
    daemon_h = MHD_start_daemon(
        flags, (uint16_t)s->cfg.listen_port, NULL, NULL, access_handler, s,
        MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_PRIORITIES,
        TLS_PRIORITIES,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)CONNECTION_TIMEOUT_SECS, MHD_OPTION_NOTIFY_COMPLETED,
        completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_END);
    if (daemon_h == NULL) {
        srv_log(SRV_LOG_ERROR, "cannot listen on %s port %u (in use, or "
                "the TLS certificate was refused)",
                s->cfg.listen_addr, s->cfg.listen_port);
        daemon_srv = NULL;
        return CAIRN_EIO;
    }
    if (s->cfg.listen_port == 0) {
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(daemon_h, MHD_DAEMON_INFO_BIND_PORT);
        if (di != NULL)
            s->cfg.listen_port = di->port;
    }
    return 0;
}

/* Stop accepting, let requests in flight finish (up to 30 s), stop. */
void http_stop(struct srv *s)
{
    int i;

    (void)s;
    if (daemon_h == NULL)
        return;
    MHD_quiesce_daemon(daemon_h);
    for (i = 0; i < SHUTDOWN_WAIT_SECS * 20 && atomic_load(&in_flight) > 0;
         i++)
        usleep(50000);
    if (atomic_load(&in_flight) > 0)
        srv_log(SRV_LOG_WARN, "stopping with %d requests still running",
                atomic_load(&in_flight));
    MHD_stop_daemon(daemon_h);
    daemon_h = NULL;
    daemon_srv = NULL;
}

/* ---- accessors ---- */

struct srv *http_srv(struct http_req *r)
{
    return r->s;
}

const char *http_method(struct http_req *r)
{
    return r->method;
}

const char *http_path(struct http_req *r)
{
    return r->path;
}

/* The i-th {} capture of the route's pattern, or NULL. */
const char *http_param(struct http_req *r, int i)
{
    return i >= 0 && i < r->nparams ? r->params[i] : NULL;
}

/* A query argument (decoded), or NULL. */
const char *http_query(struct http_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* A request header (case-insensitive name), or NULL. */
const char *http_header(struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The client's IP address as text ("" if unknown). */
const char *http_client_addr(struct http_req *r)
{
    return r->addr;
}

const struct http_auth *http_auth(struct http_req *r)
{
    return &r->auth;
}

/* The buffered body (NULL, 0 if none; not for HTTP_STREAM routes). */
const uint8_t *http_body(struct http_req *r, size_t *out_len)
{
    *out_len = r->body_len;
    return r->body;
}

/*
 * Make s (NUL-terminated) valid UTF-8 in place: every byte that does not
 * belong to a well-formed sequence (a stray continuation byte, a sequence
 * cut short by a truncating "%.64s" or by the end of a buffer, an overlong
 * form, a surrogate, beyond U+10FFFF) becomes '?'.  Error messages quote
 * what the client sent, and jansson refuses to make a JSON string of
 * invalid UTF-8.
 */
static void utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t i = 0, n, k;
    uint32_t cp;

    while (p[i] != '\0') {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (p[i] >= 0xc2 && p[i] <= 0xdf)
            n = 1;
        else if (p[i] >= 0xe0 && p[i] <= 0xef)
            n = 2;
        else if (p[i] >= 0xf0 && p[i] <= 0xf4)
            n = 3;
        else
            n = 0;
        cp = p[i] & (0x3f >> n);
        for (k = 1; n > 0 && k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) /* also stops at the NUL */
                break;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (n == 0 || k <= n || (n == 2 && cp < 0x800) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            p[i++] = '?';
            continue;
        }
        i += n + 1;
    }
}

/* See http.h.  Duplicate keys are malformed too. */
int http_json_check(const char *body, size_t len, const char *const *allowed,
                    json_t **out, char *why, size_t whylen)
{
    json_error_t err;
    json_t *j;
    const char *key;
    json_t *v;
    size_t i;

    if (len == 0) {
        snprintf(why, whylen, "a JSON object is required");
        goto err0;
    }
    if ((j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
        snprintf(why, whylen, "malformed JSON at line %d, column %d: %s",
                 err.line, err.column, err.text);
        goto err0;
    }
    if (!json_is_object(j)) {
        snprintf(why, whylen, "the body must be a JSON object");
        goto err1;
    }
    json_object_foreach(j, key, v) {
        for (i = 0; allowed != NULL && allowed[i] != NULL; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (allowed == NULL || allowed[i] == NULL) {
            snprintf(why, whylen, "unknown field \"%.64s\"", key);
            goto err1;
        }
    }
    *out = j;
    return 0;

err1:
    json_decref(j);
err0:
    if (whylen > 0)
        utf8_clean(why);
    return CAIRN_EINVAL;
}

/* See http.h. */
json_t *http_json_body(struct http_req *r, const char *const *allowed)
{
    char why[256];
    json_t *j;

    if (r->json != NULL)
        return r->json;
    if (http_json_check((const char *)r->body, r->body_len, allowed, &j, why,
                        sizeof(why)) != 0) {
        http_respond_error(r, 400, "bad_request", "%s", why);
        return NULL;
    }
    r->json = j;
    return j;
}

/* ---- answers ---- */

/* Add a header to the answer (before answering; up to 8). */
void http_set_header(struct http_req *r, const char *name, const char *value)
{
    if (r->nhdr == MAX_HEADERS)
        return;
    r->hdr_name[r->nhdr] = strdup(name);
    r->hdr_value[r->nhdr] = strdup(value);
    if (r->hdr_name[r->nhdr] == NULL || r->hdr_value[r->nhdr] == NULL) {
        free(r->hdr_name[r->nhdr]);
        free(r->hdr_value[r->nhdr]);
        return;
    }
    r->nhdr++;
}

/* Keep resp as the answer (taking it). */
static int answer(struct http_req *r, unsigned status,
                  struct MHD_Response *resp, const char *ctype, uint64_t len)
{
    int i;

    if (resp == NULL)
        return CAIRN_ENOMEM;
    if (r->resp != NULL || r->queued) {
        MHD_destroy_response(resp);
        return CAIRN_EINVAL;
    }
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
    r->resp = resp;
    r->status = status;
    r->bytes_out = len;
    return 0;
}

/* Answer with body (the reference is taken; NULL answers 500). */
int http_respond_json(struct http_req *r, unsigned status, json_t *body)
{
    char *text;
    size_t len;
    int rc;

    if (body == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (text == NULL)
        return http_respond_error(r, 500, "server_error", "out of memory");
    len = strlen(text);
    text[len] = '\n';
    rc = answer(r, status,
                MHD_create_response_from_buffer(len + 1, text,
                                                MHD_RESPMEM_MUST_FREE),
                "application/json", len + 1);
    if (rc == CAIRN_ENOMEM)
        free(text);
    return rc;
}

/* Answer {"error": <formatted>, "code": code}. */
int http_respond_error(struct http_req *r, unsigned status, const char *code,
                       const char *fmt, ...)
{
    char msg[512];
    json_t *j;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_clean(msg);
    if ((j = json_pack("{s:s, s:s}", "error", msg, "code", code)) == NULL) {
        static const char oom[] =
            "{\"error\":\"out of memory\",\"code\":\"server_error\"}\n";
        return answer(r, 500,
                      MHD_create_response_from_buffer(
                          sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT),
                      "application/json", sizeof(oom) - 1);
    }
    return http_respond_json(r, status, j);
}

int http_respond_empty(struct http_req *r, unsigned status)
{
    return answer(r, status,
                  MHD_create_response_from_buffer(0, NULL,
                                                  MHD_RESPMEM_PERSISTENT),
                  NULL, 0);
}

int http_respond_bytes(struct http_req *r, unsigned status,
                       const char *content_type, const void *buf, size_t len)
{
    return answer(r, status,
                  MHD_create_response_from_buffer(len, (void *)buf,
                                                  MHD_RESPMEM_MUST_COPY),
                  content_type ? content_type : "application/octet-stream",
                  len);
}

/*
 * A file answer.  libmicrohttpd's own fd answers fill a 4 KiB buffer per
 * read under TLS (sendfile is only used without it), so every TLS record
 * it sends carries 4 KiB and the client pays a wakeup and two reads per
 * record; this reader hands it up to FD_BLOCK bytes per pread instead, so
 * records are full (16 KiB) and the file is read in large pieces.
 */
#define FD_BLOCK (256u * 1024)

struct fd_answer {
    int fd;
    uint64_t off; /* of the answer's first byte in the file */
};

static ssize_t fd_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct fd_answer *fa = cls;
    ssize_t n;

    if (pos > (uint64_t)INT64_MAX - fa->off)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    do
        n = pread(fa->fd, buf, max, (off_t)(fa->off + pos));
    while (n < 0 && errno == EINTR);
    /* The length was promised: a file that shrank is an error. */
    if (n <= 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void fd_free(void *cls)
{
    struct fd_answer *fa = cls;

    close(fa->fd);
    free(fa);
}

/* Answer with len bytes of fd from off; fd is closed by the framework
 * (also on failure). */
int http_respond_fd(struct http_req *r, unsigned status, int fd, uint64_t off,
                    uint64_t len)
{
    struct MHD_Response *resp;
    struct fd_answer *fa;

    if (len == 0) {
        close(fd);
        return answer(r, status,
                      MHD_create_response_from_buffer(0, NULL,
                                                      MHD_RESPMEM_PERSISTENT),
                      "application/octet-stream", 0);
    }
    if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off) {
        close(fd);
        return CAIRN_EINVAL;
    }
    if ((fa = malloc(sizeof(*fa))) == NULL) {
        close(fd);
        return CAIRN_ENOMEM;
    }
    fa->fd = fd;
    fa->off = off;
    resp = MHD_create_response_from_callback(
        len, len < FD_BLOCK ? (size_t)len : FD_BLOCK, fd_reader, fa, fd_free);
    if (resp == NULL) {
        fd_free(fa);
        return CAIRN_ENOMEM;
    }
    /* answer() destroys resp on failure, which calls fd_free. */
    return answer(r, status, resp, "application/octet-stream", len);
}

/* ---- streamed answers ---- */

struct stream_answer {
    http_stream_read_fn read;
    http_stream_done_fn done;
    void *arg;
    int finished; /* read said "the end" */
};

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream_answer *sa = cls;
    long long n;

    (void)pos;
    if (sa->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = sa->read(sa->arg, (uint8_t *)buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0) {
        sa->finished = 1;
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    return (ssize_t)(n > (long long)max ? (long long)max : n);
}

static void stream_free(void *cls)
{
    struct stream_answer *sa = cls;

    sa->done(sa->arg, sa->finished);
    free(sa);
}

/* See http.h. */
int http_respond_stream(struct http_req *r, unsigned status,
                        const char *content_type, http_stream_read_fn read,
                        http_stream_done_fn done, void *arg)
{
    struct MHD_Response *resp;
    struct stream_answer *sa;

    if ((sa = calloc(1, sizeof(*sa))) == NULL) {
        done(arg, 0);
        return CAIRN_ENOMEM;
    }
    sa->read = read;
    sa->done = done;
    sa->arg = arg;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256 * 1024,
                                             stream_reader, sa, stream_free);
    if (resp == NULL) {
        free(sa);
        done(arg, 0);
        return CAIRN_ENOMEM;
    }
    /* answer() destroys resp on failure, which calls stream_free. */
    return answer(r, status, resp,
                  content_type ? content_type : "application/octet-stream",
                  0);
}
