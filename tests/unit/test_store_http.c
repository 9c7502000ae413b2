/*
 * test_store_http.c - the HTTP store against a fake Cairn server.
 *
 * The fake server (libmicrohttpd on 127.0.0.1, a random port) implements
 * the "Device archives" part of docs/API.md over a directory store, so
 * every round trip also checks the mapping of store operations onto the
 * API.  Switches make it answer a given status to the next requests,
 * ignore or mangle Range requests; it counts requests.  One case runs it
 * over TLS with a self-signed certificate made here, to check pinning.
 *
 * With CAIRN_HTTP_BENCH_MB=N, the streamed put uploads N MiB (default 24)
 * and prints its throughput.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/store.h"

#define DEVICE "dev-1"
#define TOKEN "cd_dev-1.s3cr3t-t0ken-value"
#define PREFIX "/api/v1/devices/" DEVICE "/objects/"

/* ---------------------------------------------------------------- */
/* The fake server. */

struct fake {
    struct MHD_Daemon *d;
    struct cairn_store *store;
    char dir[64];
    uint16_t port;
    pthread_mutex_t lock;
    /* Switches (under lock). */
    int fail_count; /* answer fail_status to this many requests (-1: all) */
    int fail_status;
    int ignore_range;  /* answer a Range request with the whole object */
    int short_range;   /* answer a Range request one byte short */
    uint64_t max_body; /* 413 beyond; 0: no limit */
    /* Counters (under lock). */
    unsigned long requests, puts, haves;
    uint64_t bytes_in;
};

/* One request being received. */
struct fake_conn {
    int answer; /* an error status decided before the body */
    enum cairn_obj_type type;
    char name[160];
    int has_name, is_have;
    int existed;
    void *stream;          /* streamed PUT into the directory store */
    struct cairn_buf body; /* PUT of the config, POST have */
    uint64_t got;
};

static struct fake *srv;

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
                               void *buf, size_t len, const char *ctype)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(buf);
        return MHD_NO;
    }
    if (ctype != NULL)
        MHD_add_response_header(r, "Content-Type", ctype);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status,
                                    json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    json_decref(j);
    if (s == NULL)
        return MHD_NO;
    return respond(c, status, s, strlen(s), "application/json");
}

static enum MHD_Result respond_error(struct MHD_Connection *c, unsigned status)
{
    return respond_json(
        c, status,
        json_pack("{s:s, s:s}", "error", "fake refusal", "code", "fake"));
}

static int parse_type(const char *s, size_t n, enum cairn_obj_type *out)
{
    static const struct {
        const char *name;
        enum cairn_obj_type type;
    } types[] = {{"config", CAIRN_OBJ_CONFIG},
                 {"pack", CAIRN_OBJ_PACK},
                 {"index", CAIRN_OBJ_INDEX},
                 {"snapshot", CAIRN_OBJ_SNAPSHOT}};
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0) {
            *out = types[i].type;
            return 0;
        }
    }
    return -1;
}

/* Route url into fc; an error status or 0. */
static int route(struct fake_conn *fc, const char *url, const char *method)
{
    const char *p, *slash;

    if (strncmp(url, PREFIX, strlen(PREFIX)) != 0)
        return 404;
    p = url + strlen(PREFIX);
    slash = strchr(p, '/');
    if (parse_type(p, slash ? (size_t)(slash - p) : strlen(p), &fc->type) != 0)
        return 404;
    if (slash == NULL)
        return strcmp(method, "GET") == 0 ? 0 : 405;
    if (strlen(slash + 1) >= sizeof(fc->name))
        return 400;
    strcpy(fc->name, slash + 1);
    fc->has_name = 1;
    if (strcmp(method, "POST") == 0) {
        if (strcmp(fc->name, "have") != 0)
            return 405;
        fc->is_have = 1;
        return 0;
    }
    if (!cairn_store_name_valid(fc->type, fc->name))
        return 400;
    return 0;
}

static enum MHD_Result serve_get(struct MHD_Connection *c, struct fake_conn *fc)
{
    const char *range;
    unsigned long long a, b;
    uint64_t size;
    uint8_t *buf;
    size_t len;
    char cr[100];
    struct MHD_Response *r;
    enum MHD_Result ret;
    int rc, ignore, shorten;

    if ((rc = cairn_store_stat(srv->store, fc->type, fc->name, &size)) != 0)
        return respond_error(c, rc == CAIRN_ENOENT ? 404 : 500);
    range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    pthread_mutex_lock(&srv->lock);
    ignore = srv->ignore_range;
    shorten = srv->short_range;
    pthread_mutex_unlock(&srv->lock);
    if (range == NULL || ignore) {
        if (cairn_store_get(srv->store, fc->type, fc->name, &buf, &len) != 0)
            return respond_error(c, 500);
        return respond(c, 200, buf, len, "application/octet-stream");
    }
    if (sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || a > b)
        return respond_error(c, 400);
    if (a >= size)
        return respond_error(c, 416);
    if (b >= size)
        b = size - 1;
    if (shorten && b > a)
        b--;
    len = (size_t)(b - a + 1);
    if ((buf = malloc(len)) == NULL ||
        cairn_store_get_range(srv->store, fc->type, fc->name, a, len, buf) !=
            0) {
        free(buf);
        return respond_error(c, 500);
    }
    r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (r == NULL)
        return MHD_NO;
    snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", a, b,
             (unsigned long long)size);
    MHD_add_response_header(r, "Content-Range", cr);
    ret = MHD_queue_response(c, 206, r);
    MHD_destroy_response(r);
    return ret;
}

static int list_one(void *arg, const char *name, uint64_t size)
{
    json_array_append_new(
        arg, json_pack("{s:s, s:I}", "name", name, "size", (json_int_t)size));
    return 0;
}

static enum MHD_Result serve_have(struct MHD_Connection *c,
                                  struct fake_conn *fc)
{
    json_t *req, *names, *e, *have;
    uint64_t size;
    size_t i;

    pthread_mutex_lock(&srv->lock);
    srv->haves++;
    pthread_mutex_unlock(&srv->lock);
    req = json_loadb((const char *)fc->body.data, fc->body.len, 0, NULL);
    names = json_object_get(req, "names");
    if (!json_is_object(req) || json_object_size(req) != 1 ||
        !json_is_array(names) || json_array_size(names) > 1000) {
        json_decref(req);
        return respond_error(c, 400);
    }
    have = json_array();
    json_array_foreach(names, i, e)
    {
        if (!json_is_string(e) ||
            !cairn_store_name_valid(fc->type, json_string_value(e))) {
            json_decref(have);
            json_decref(req);
            return respond_error(c, 400);
        }
        if (cairn_store_stat(srv->store, fc->type, json_string_value(e),
                             &size) == 0)
            json_array_append(have, e);
    }
    json_decref(req);
    return respond_json(c, 200, json_pack("{s:o}", "have", have));
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct fake_conn *fc = *con_cls;
    const char *auth;
    uint64_t size;
    int rc;

    (void)cls;
    (void)version;
    if (fc == NULL) {
        /* Headers are in: decide what can be decided. */
        if ((fc = calloc(1, sizeof(*fc))) == NULL)
            return MHD_NO;
        cairn_buf_init(&fc->body, 1 << 20);
        *con_cls = fc;
        pthread_mutex_lock(&srv->lock);
        srv->requests++;
        if (srv->fail_count != 0) {
            fc->answer = srv->fail_status;
            if (srv->fail_count > 0)
                srv->fail_count--;
        }
        pthread_mutex_unlock(&srv->lock);
        auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (fc->answer == 0 &&
            (auth == NULL || strcmp(auth, "Bearer " TOKEN) != 0))
            fc->answer = 401;
        if (fc->answer == 0)
            fc->answer = route(fc, url, method);
        if (fc->answer == 0 && strcmp(method, "PUT") == 0) {
            if (!fc->has_name)
                fc->answer = 405;
            else if (cairn_store_stat(srv->store, fc->type, fc->name, &size) ==
                     0)
                fc->existed = 1;
            else if (fc->type != CAIRN_OBJ_CONFIG &&
                     cairn_store_begin(srv->store, fc->type, &fc->stream) != 0)
                fc->answer = 500;
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        /* The body is read in full whatever the answer, so the client
         * sees the answer and not a reset connection. */
        fc->got += *upload_size;
        pthread_mutex_lock(&srv->lock);
        srv->bytes_in += *upload_size;
        if (srv->max_body != 0 && fc->got > srv->max_body && fc->answer == 0)
            fc->answer = 413;
        pthread_mutex_unlock(&srv->lock);
        if (fc->answer == 0 && !fc->existed) {
            if (fc->stream != NULL)
                rc = cairn_store_append(srv->store, fc->stream, upload,
                                        *upload_size);
            else
                rc = cairn_buf_append(&fc->body, upload, *upload_size);
            if (rc != 0)
                fc->answer = 500;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    if (fc->answer != 0)
        return respond_error(c, (unsigned)fc->answer);
    if (strcmp(method, "PUT") == 0) {
        pthread_mutex_lock(&srv->lock);
        srv->puts++;
        pthread_mutex_unlock(&srv->lock);
        if (fc->existed)
            return respond(c, 200, NULL, 0, NULL);
        if (fc->stream != NULL) {
            rc = cairn_store_commit(srv->store, fc->stream, fc->name, 1);
            fc->stream = NULL;
        } else {
            rc = cairn_store_put(srv->store, fc->type, fc->name, fc->body.data,
                                 fc->body.len, 1);
        }
        return rc == 0 ? respond(c, 201, NULL, 0, NULL) : respond_error(c, 500);
    }
    if (strcmp(method, "POST") == 0 && fc->is_have)
        return serve_have(c, fc);
    if (strcmp(method, "GET") == 0 && !fc->has_name) {
        json_t *arr = json_array();

        if (cairn_store_list(srv->store, fc->type, list_one, arr) != 0) {
            json_decref(arr);
            return respond_error(c, 500);
        }
        return respond_json(c, 200, arr);
    }
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return serve_get(c, fc);
    return respond_error(c, 405);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct fake_conn *fc = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (fc == NULL)
        return;
    if (fc->stream != NULL)
        cairn_store_abort(srv->store, fc->stream);
    cairn_buf_free(&fc->body);
    free(fc);
    *con_cls = NULL;
}

static struct fake *fake_start(const char *key_pem, const char *cert_pem)
{
    struct fake *f;
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;

    assert_non_null(f = calloc(1, sizeof(*f)));
    assert_int_equal(pthread_mutex_init(&f->lock, NULL), 0);
    strcpy(f->dir, "/tmp/cairn-test-http-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(cairn_store_dir_open(f->dir, 1, &f->store), 0);
    srv = f;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (key_pem != NULL) {
        f->d = MHD_start_daemon(
            flags | MHD_USE_TLS, 0, NULL, NULL, handler, NULL,
            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed,
            NULL, MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_HTTPS_MEM_CERT,
            cert_pem, MHD_OPTION_END);
    } else {
        f->d = MHD_start_daemon(
            flags, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa,
            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    }
    assert_non_null(f->d);
    assert_non_null(info =
                        MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT));
    f->port = info->port;
    assert_true(f->port != 0);
    return f;
}

static void fake_stop(struct fake *f)
{
    char cmd[128];

    MHD_stop_daemon(f->d);
    cairn_store_free(f->store);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&f->lock);
    free(f);
    srv = NULL;
}

static void fake_fail(struct fake *f, int count, int status)
{
    pthread_mutex_lock(&f->lock);
    f->fail_count = count;
    f->fail_status = status;
    pthread_mutex_unlock(&f->lock);
}

static unsigned long fake_requests(struct fake *f)
{
    unsigned long n;

    pthread_mutex_lock(&f->lock);
    n = f->requests;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* ---------------------------------------------------------------- */
/* Client side helpers. */

/* The token must never reach the log. */
static unsigned long nlog;
static void check_log(void *arg, int level, const char *msg)
{
    (void)arg;
    (void)level;
    assert_null(strstr(msg, "s3cr3t"));
    nlog++;
}

static struct cairn_store *client(const char *scheme, uint16_t port,
                                  const char *token, const char *pin,
                                  unsigned retry_secs)
{
    struct cairn_http_opts o;
    struct cairn_store *s;
    char url[64];

    snprintf(url, sizeof(url), "%s://127.0.0.1:%u/", scheme, (unsigned)port);
    memset(&o, 0, sizeof(o));
    o.base_url = url;
    o.device_id = DEVICE;
    o.token = token;
    o.pin = pin;
    o.retry_secs = retry_secs;
    assert_int_equal(cairn_store_http_open(&o, &s), 0);
    return s;
}

/* A content name: 64 hex digits of k. */
static void objname(char out[65], unsigned k)
{
    snprintf(out, 65, "%064x", k);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct seen {
    char names[16][129];
    uint64_t sizes[16];
    int n;
};

static int collect(void *arg, const char *name, uint64_t size)
{
    struct seen *sn = arg;

    if (sn->n >= 16)
        return -100;
    strcpy(sn->names[sn->n], name);
    sn->sizes[sn->n] = size;
    sn->n++;
    return 0;
}

static int seen_find(const struct seen *sn, const char *name)
{
    int i;

    for (i = 0; i < sn->n; i++)
        if (strcmp(sn->names[i], name) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- */
/* Tests. */

static void test_open_rejects(void **state)
{
    struct cairn_http_opts o;
    struct cairn_store *s = NULL;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.base_url = "http://127.0.0.1:1";
    o.device_id = DEVICE;
    o.token = TOKEN;
    assert_int_equal(cairn_store_http_open(&o, &s), 0);
    cairn_store_free(s);

    o.base_url = "ftp://127.0.0.1:1";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.base_url = "http://127.0.0.1:1";
    o.device_id = "a/b";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.device_id = "..";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.device_id = "";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.device_id = DEVICE;
    o.token = "abc\r\nX-Evil: 1";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.token = "";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    o.token = TOKEN;
    o.pin = "md5//abc";
    assert_int_equal(cairn_store_http_open(&o, &s), CAIRN_EINVAL);
    assert_int_equal(cairn_store_http_open(NULL, &s), CAIRN_EINVAL);
    cairn_store_free(NULL);
}

static void test_roundtrip(void **state)
{
    static const enum cairn_obj_type types[] = {CAIRN_OBJ_PACK, CAIRN_OBJ_INDEX,
                                                CAIRN_OBJ_SNAPSHOT};
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 5);
    uint8_t data[3][5000], part[100], *out;
    char name[65];
    size_t t, i, len;
    uint64_t size;
    struct seen sn;

    (void)state;
    /* The config. */
    assert_int_equal(
        cairn_store_put(s, CAIRN_OBJ_CONFIG, "config", "cfg!", 4, 1), 0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_CONFIG, "config", &out, &len),
                     0);
    assert_int_equal(len, 4);
    assert_memory_equal(out, "cfg!", 4);
    free(out);
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_CONFIG, "config", &size), 0);
    assert_int_equal(size, 4);
    memset(&sn, 0, sizeof(sn));
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_CONFIG, collect, &sn), 0);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.names[0], "config");

    for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        memset(&sn, 0, sizeof(sn));
        assert_int_equal(cairn_store_list(s, types[t], collect, &sn), 0);
        assert_int_equal(sn.n, 0);
        for (i = 0; i < 3; i++) {
            fill(data[i], sizeof(data[i]), (unsigned)(t * 10 + i));
            objname(name, (unsigned)(t * 10 + i));
            assert_int_equal(cairn_store_put(s, types[t], name, data[i],
                                             1000 + i * 1000, i & 1),
                             0);
        }
        /* Also stored in the server's store, under the same name. */
        objname(name, (unsigned)(t * 10));
        assert_int_equal(cairn_store_get(f->store, types[t], name, &out, &len),
                         0);
        assert_int_equal(len, 1000);
        assert_memory_equal(out, data[0], 1000);
        free(out);

        for (i = 0; i < 3; i++) {
            objname(name, (unsigned)(t * 10 + i));
            assert_int_equal(cairn_store_get(s, types[t], name, &out, &len), 0);
            assert_int_equal(len, 1000 + i * 1000);
            assert_memory_equal(out, data[i], len);
            free(out);
            assert_int_equal(cairn_store_stat(s, types[t], name, &size), 0);
            assert_int_equal(size, 1000 + i * 1000);
            assert_int_equal(cairn_store_get_range(s, types[t], name, 17,
                                                   sizeof(part), part),
                             0);
            assert_memory_equal(part, data[i] + 17, sizeof(part));
            /* The last byte, exactly. */
            assert_int_equal(cairn_store_get_range(s, types[t], name,
                                                   999 + i * 1000, 1, part),
                             0);
            assert_int_equal(part[0], data[i][999 + i * 1000]);
            /* Past the end. */
            assert_int_equal(cairn_store_get_range(s, types[t], name,
                                                   999 + i * 1000, 2, part),
                             CAIRN_ECORRUPT);
            assert_int_equal(
                cairn_store_get_range(s, types[t], name, 5000, 1, part),
                CAIRN_ECORRUPT);
            /* Empty ranges: inside or at the end, not beyond. */
            assert_int_equal(cairn_store_get_range(s, types[t], name,
                                                   1000 + i * 1000, 0, part),
                             0);
            assert_int_equal(cairn_store_get_range(s, types[t], name,
                                                   1001 + i * 1000, 0, part),
                             CAIRN_ECORRUPT);
        }
        memset(&sn, 0, sizeof(sn));
        assert_int_equal(cairn_store_list(s, types[t], collect, &sn), 0);
        assert_int_equal(sn.n, 3);
        for (i = 0; i < 3; i++) {
            int k;

            objname(name, (unsigned)(t * 10 + i));
            assert_true((k = seen_find(&sn, name)) >= 0);
            assert_int_equal(sn.sizes[k], 1000 + i * 1000);
        }
    }
    /* A listing stops at the callback's word. */
    {
        struct seen full;

        memset(&full, 0, sizeof(full));
        full.n = 16;
        assert_int_equal(cairn_store_list(s, CAIRN_OBJ_PACK, collect, &full),
                         -100);
    }
    /* An empty object. */
    objname(name, 99);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_SNAPSHOT, name, NULL, 0, 1),
                     0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_SNAPSHOT, name, &out, &len),
                     0);
    assert_non_null(out);
    assert_int_equal(len, 0);
    free(out);
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_SNAPSHOT, name, &size), 0);
    assert_int_equal(size, 0);

    assert_int_equal(cairn_store_barrier(s), 0);
    cairn_store_free(s);
    fake_stop(f);
}

static void test_idempotent_and_refusals(void **state)
{
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 5);
    uint8_t *out, buf[10];
    char name[65];
    size_t len;
    uint64_t size;
    void *h;
    unsigned long puts;

    (void)state;
    objname(name, 1);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "first", 5, 1),
                     0);
    /* Again, and again with other bytes: the first is kept. */
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "first", 5, 1),
                     0);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "other!", 6, 1),
                     0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "first", 5);
    free(out);
    pthread_mutex_lock(&f->lock);
    puts = f->puts;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(puts, 3);

    /* Missing objects. */
    objname(name, 2);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_ENOENT);
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_INDEX, name, &size),
                     CAIRN_ENOENT);
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 0, 4, buf),
                     CAIRN_ENOENT);
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 0, 0, buf),
                     CAIRN_ENOENT);

    /* What a device may not do, or the server does not keep. */
    objname(name, 1);
    assert_int_equal(cairn_store_remove(s, CAIRN_OBJ_PACK, name), CAIRN_EPERM);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_KEY, name, "k", 1, 1),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_KEY, name, &out, &len),
                     CAIRN_EINVAL);
    /* Listing keys or locks finds none: a server archive has neither. */
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_LOCK, collect, NULL), 0);
    assert_int_equal(cairn_store_list(s, CAIRN_OBJ_KEY, collect, NULL), 0);
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_LOCK, "x", &size),
                     CAIRN_EINVAL);
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_KEY, &h), CAIRN_EINVAL);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, "../x", "k", 1, 1),
                     CAIRN_EINVAL);
    /* A streamed object with an invalid name is not uploaded. */
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_PACK, &h), 0);
    assert_int_equal(cairn_store_append(s, h, "abc", 3), 0);
    assert_int_equal(cairn_store_commit(s, h, "zz", 1), CAIRN_EINVAL);
    /* An aborted stream leaves nothing.  Until then, what was appended
     * reads back, and nothing past its end. */
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_INDEX, &h), 0);
    assert_int_equal(cairn_store_append(s, h, "abc", 3), 0);
    {
        uint8_t back[3];

        assert_int_equal(cairn_store_stream_read(s, h, 1, 2, back), 0);
        assert_memory_equal(back, "bc", 2);
        assert_int_equal(cairn_store_stream_read(s, h, 2, 2, back),
                         CAIRN_ECORRUPT);
    }
    cairn_store_abort(s, h);
    {
        struct seen sn;

        memset(&sn, 0, sizeof(sn));
        assert_int_equal(cairn_store_list(s, CAIRN_OBJ_INDEX, collect, &sn), 0);
        assert_int_equal(sn.n, 0);
    }
    pthread_mutex_lock(&f->lock);
    puts = f->puts;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(puts, 3);

    /* A server that ignores Range, or sends less than asked. */
    pthread_mutex_lock(&f->lock);
    f->ignore_range = 1;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 1, 3, buf),
                     CAIRN_ECORRUPT);
    pthread_mutex_lock(&f->lock);
    f->ignore_range = 0;
    f->short_range = 1;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 1, 3, buf),
                     CAIRN_ECORRUPT);
    pthread_mutex_lock(&f->lock);
    f->short_range = 0;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name, 1, 3, buf),
                     0);
    assert_memory_equal(buf, "irs", 3);

    /* An oversized body: 413. */
    pthread_mutex_lock(&f->lock);
    f->max_body = 100;
    pthread_mutex_unlock(&f->lock);
    {
        uint8_t big[1000];

        memset(big, 7, sizeof(big));
        objname(name, 3);
        assert_int_equal(
            cairn_store_put(s, CAIRN_OBJ_PACK, name, big, sizeof(big), 1),
            CAIRN_ERANGE);
        assert_int_equal(
            cairn_store_stat(f->store, CAIRN_OBJ_PACK, name, &size),
            CAIRN_ENOENT);
    }
    cairn_store_free(s);

    /* A wrong token. */
    s = client("http", f->port, "cd_dev-1.wrong", NULL, 5);
    objname(name, 1);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_EPERM);
    cairn_store_free(s);
    fake_stop(f);
}

/* Each final status maps to its error after one request; transient ones
 * are retried. */
static void test_statuses(void **state)
{
    static const struct {
        int status, rc;
    } final[] = {
        {400, CAIRN_EINVAL}, {401, CAIRN_EPERM},  {403, CAIRN_EPERM},
        {404, CAIRN_ENOENT}, {409, CAIRN_EEXIST}, {413, CAIRN_ERANGE},
        {507, CAIRN_ENOSPC}, {418, CAIRN_EIO},    {501, CAIRN_EIO},
    };
    static const int transient[] = {500, 502, 503, 504, 429};
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 10);
    char name[65];
    unsigned long before;
    uint8_t *out;
    size_t i, len;
    uint64_t size;
    double t0;

    (void)state;
    objname(name, 5);
    for (i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        fake_fail(f, 1, final[i].status);
        before = fake_requests(f);
        t0 = now_s();
        assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "x", 1, 1),
                         final[i].rc);
        assert_int_equal(fake_requests(f) - before, 1);
        assert_true(now_s() - t0 < 1.0);
    }
    /* 403 on a read, too. */
    fake_fail(f, 1, 403);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_EPERM);

    /* Two failures, then success: the put lands. */
    for (i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        objname(name, (unsigned)(100 + i));
        fake_fail(f, 2, transient[i]);
        before = fake_requests(f);
        t0 = now_s();
        assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "data", 4, 1),
                         0);
        assert_int_equal(fake_requests(f) - before, 3);
        /* Backoff: at least 125 + 250 ms (half of 250 and 500). */
        assert_true(now_s() - t0 >= 0.37);
        assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                         0);
        assert_int_equal(len, 4);
        assert_memory_equal(out, "data", 4);
        free(out);
    }
    cairn_store_free(s);

    /* A server that keeps failing: CAIRN_EIO after retry_secs. */
    s = client("http", f->port, TOKEN, NULL, 2);
    fake_fail(f, -1, 503);
    before = fake_requests(f);
    t0 = now_s();
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_PACK, name, &size),
                     CAIRN_EIO);
    assert_true(now_s() - t0 >= 1.9);
    assert_true(now_s() - t0 < 3.5);
    /* 250 ms doubling within 2 s: a handful of tries, not hundreds. */
    assert_true(fake_requests(f) - before >= 3);
    assert_true(fake_requests(f) - before <= 8);
    fake_fail(f, 0, 0);
    /* Retries and refusals were logged (without the token: check_log). */
    assert_true(nlog > 0);
    cairn_store_free(s);
    fake_stop(f);
}

static void test_server_down(void **state)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct cairn_store *s;
    char name[65];
    uint8_t *out;
    size_t len;
    double t0, dt;
    int fd;

    (void)state;
    /* A port nobody listens on. */
    assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    close(fd);

    s = client("http", ntohs(sa.sin_port), TOKEN, NULL, 2);
    objname(name, 1);
    t0 = now_s();
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_EIO);
    dt = now_s() - t0;
    assert_true(dt >= 1.9);
    assert_true(dt < 3.5);
    t0 = now_s();
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "x", 1, 1),
                     CAIRN_EIO);
    assert_true(now_s() - t0 >= 1.9);
    cairn_store_free(s);
}

static void test_streamed_put(void **state)
{
    const char *env = getenv("CAIRN_HTTP_BENCH_MB");
    size_t mb = (env != NULL && atoi(env) > 0) ? (size_t)atoi(env) : 24;
    size_t total = mb << 20, piece = 1 << 20, i, len;
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 10);
    uint8_t *buf, *out, part[4096];
    char name[65];
    uint64_t size;
    double t0, dt;
    void *h;

    (void)state;
    assert_non_null(buf = malloc(piece));
    objname(name, 0xabc);
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_PACK, &h), 0);
    for (i = 0; i < total; i += piece) {
        fill(buf, piece, (unsigned)(i / piece));
        assert_int_equal(cairn_store_append(s, h, buf, piece), 0);
    }
    t0 = now_s();
    assert_int_equal(cairn_store_commit(s, h, name, 1), 0);
    dt = now_s() - t0;
    print_message("streamed put: %zu MiB in %.3f s (%.0f MiB/s)\n", mb, dt,
                  (double)mb / dt);

    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_PACK, name, &size), 0);
    assert_int_equal(size, total);
    /* Pieces at the edges of the appends. */
    for (i = 0; i + piece < total; i += piece) {
        fill(buf, piece, (unsigned)(i / piece));
        assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name,
                                               i + piece - 2048, sizeof(part),
                                               part),
                         0);
        assert_memory_equal(part, buf + piece - 2048, 2048);
        fill(buf, piece, (unsigned)(i / piece + 1));
        assert_memory_equal(part + 2048, buf, 2048);
    }
    /* The very end. */
    assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name,
                                           total - sizeof(part), sizeof(part),
                                           part),
                     0);
    assert_memory_equal(part, buf + piece - sizeof(part), sizeof(part));
    t0 = now_s();
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len), 0);
    dt = now_s() - t0;
    print_message("get: %zu MiB in %.3f s (%.0f MiB/s)\n", mb, dt,
                  (double)mb / dt);
    assert_int_equal(len, total);
    for (i = 0; i < total; i += piece) {
        fill(buf, piece, (unsigned)(i / piece));
        assert_memory_equal(out + i, buf, piece);
    }
    free(out);

    /* Committing the same name again keeps the first upload. */
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_PACK, &h), 0);
    assert_int_equal(cairn_store_append(s, h, "tiny", 4), 0);
    assert_int_equal(cairn_store_commit(s, h, name, 0), 0);
    assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_PACK, name, &size), 0);
    assert_int_equal(size, total);

    /* A streamed upload is retried from its first byte. */
    objname(name, 0xabd);
    fill(buf, piece, 77);
    assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_INDEX, &h), 0);
    assert_int_equal(cairn_store_append(s, h, buf, piece), 0);
    assert_int_equal(cairn_store_append(s, h, buf, 1000), 0);
    fake_fail(f, 1, 503);
    assert_int_equal(cairn_store_commit(s, h, name, 1), 0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_INDEX, name, &out, &len), 0);
    assert_int_equal(len, piece + 1000);
    assert_memory_equal(out, buf, piece);
    assert_memory_equal(out + piece, buf, 1000);
    free(out);

    free(buf);
    cairn_store_free(s);
    fake_stop(f);
}

struct worker {
    struct cairn_store *s;
    int id, failures;
};

#define NOBJ 8
#define OBJ_SIZE 20000

static void *get_worker(void *arg)
{
    struct worker *w = arg;
    uint8_t want[OBJ_SIZE], part[512], *out;
    char name[65];
    size_t len;
    int i, k;

    for (i = 0; i < 60; i++) {
        k = (w->id * 7 + i) % NOBJ;
        objname(name, (unsigned)k);
        fill(want, sizeof(want), (unsigned)k);
        if (i % 2 == 0) {
            if (cairn_store_get(w->s, CAIRN_OBJ_PACK, name, &out, &len) != 0 ||
                len != OBJ_SIZE || memcmp(out, want, len) != 0)
                w->failures++;
            else
                free(out);
        } else {
            if (cairn_store_get_range(w->s, CAIRN_OBJ_PACK, name, 1000 + i,
                                      sizeof(part), part) != 0 ||
                memcmp(part, want + 1000 + i, sizeof(part)) != 0)
                w->failures++;
        }
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 10);
    struct worker w[4];
    pthread_t t[4];
    uint8_t data[OBJ_SIZE];
    char name[65];
    int i;

    (void)state;
    for (i = 0; i < NOBJ; i++) {
        objname(name, (unsigned)i);
        fill(data, sizeof(data), (unsigned)i);
        assert_int_equal(
            cairn_store_put(s, CAIRN_OBJ_PACK, name, data, sizeof(data), 1), 0);
    }
    for (i = 0; i < 4; i++) {
        w[i].s = s;
        w[i].id = i;
        w[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, get_worker, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    cairn_store_free(s);
    fake_stop(f);
}

static void test_have(void **state)
{
    struct fake *f = fake_start(NULL, NULL);
    struct cairn_store *s = client("http", f->port, TOKEN, NULL, 10);
    struct cairn_store *ds;
    static char names[2501][65];
    const char *ptrs[2501];
    uint8_t have[2501];
    unsigned long haves;
    size_t i;

    (void)state;
    for (i = 0; i < 2500; i++) {
        objname(names[i], (unsigned)i);
        ptrs[i] = names[i];
        if (i % 97 == 0)
            assert_int_equal(
                cairn_store_put(s, CAIRN_OBJ_PACK, names[i], "p", 1, 1), 0);
    }
    /* A duplicate of a present name, last. */
    ptrs[2500] = names[97];
    memset(have, 0x55, sizeof(have));
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_PACK, ptrs, 2501, have),
                     0);
    for (i = 0; i < 2500; i++)
        assert_int_equal(have[i], i % 97 == 0);
    assert_int_equal(have[2500], 1);
    pthread_mutex_lock(&f->lock);
    haves = f->haves;
    pthread_mutex_unlock(&f->lock);
    assert_int_equal(haves, 3); /* 1000 + 1000 + 501 */

    /* Another type: none of them. */
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_INDEX, ptrs, 10, have),
                     0);
    for (i = 0; i < 10; i++)
        assert_int_equal(have[i], 0);
    /* Nothing to ask: no request. */
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_PACK, NULL, 0, NULL),
                     0);
    pthread_mutex_lock(&f->lock);
    assert_int_equal(f->haves, 4);
    pthread_mutex_unlock(&f->lock);

    /* Refusals. */
    ptrs[0] = "../etc";
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_PACK, ptrs, 2, have),
                     CAIRN_EINVAL);
    ptrs[0] = names[0];
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_KEY, ptrs, 2, have),
                     CAIRN_EINVAL);
    {
        char dir[] = "/tmp/cairn-test-http-XXXXXX", cmd[64];

        assert_non_null(mkdtemp(dir));
        assert_int_equal(cairn_store_dir_open(dir, 1, &ds), 0);
        assert_int_equal(
            cairn_store_http_have(ds, CAIRN_OBJ_PACK, ptrs, 2, have),
            CAIRN_EINVAL);
        cairn_store_free(ds);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
    fake_fail(f, 1, 403);
    assert_int_equal(cairn_store_http_have(s, CAIRN_OBJ_PACK, ptrs, 2, have),
                     CAIRN_EPERM);

    cairn_store_free(s);
    fake_stop(f);
}

/* A self-signed EC certificate for 127.0.0.1, as PEM, and its pin. */
static void make_cert(char **out_key, char **out_cert, char out_pin[128])
{
    EVP_PKEY *pk;
    X509 *x;
    X509_NAME *nm;
    BIO *bk, *bc;
    unsigned char *der = NULL, md[32];
    char *p;
    long n;
    int dlen;

    assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
    assert_non_null(x = X509_new());
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                               (const unsigned char *)"cairnd test", -1, -1, 0);
    X509_set_issuer_name(x, nm);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);

    assert_non_null(bk = BIO_new(BIO_s_mem()));
    assert_non_null(bc = BIO_new(BIO_s_mem()));
    assert_int_equal(
        PEM_write_bio_PrivateKey(bk, pk, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_X509(bc, x), 1);
    n = BIO_get_mem_data(bk, &p);
    assert_non_null(*out_key = strndup(p, (size_t)n));
    n = BIO_get_mem_data(bc, &p);
    assert_non_null(*out_cert = strndup(p, (size_t)n));

    assert_true((dlen = i2d_PUBKEY(pk, &der)) > 0);
    assert_int_equal(
        EVP_Digest(der, (size_t)dlen, md, NULL, EVP_sha256(), NULL), 1);
    memcpy(out_pin, "sha256//", 8);
    assert_int_equal(EVP_EncodeBlock((unsigned char *)out_pin + 8, md, 32), 44);
    OPENSSL_free(der);
    BIO_free(bk);
    BIO_free(bc);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void test_tls_pin(void **state)
{
    struct fake *f;
    struct cairn_store *s;
    char *key, *cert, pin[128], name[65];
    uint8_t *out;
    size_t len;
    double t0;

    (void)state;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        skip();
    make_cert(&key, &cert, pin);
    f = fake_start(key, cert);
    objname(name, 42);

    /* The right pin: a self-signed certificate is fine. */
    s = client("https", f->port, TOKEN, pin, 5);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "over tls", 8, 1),
                     0);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(out, "over tls", 8);
    free(out);
    /* A streamed put over TLS. */
    {
        size_t total = 8 << 20, i, piece = 1 << 20;
        uint8_t *buf, tail[100];
        uint64_t size;
        double dt;
        void *h;

        assert_non_null(buf = malloc(piece));
        objname(name, 43);
        assert_int_equal(cairn_store_begin(s, CAIRN_OBJ_PACK, &h), 0);
        for (i = 0; i < total; i += piece) {
            fill(buf, piece, (unsigned)i);
            assert_int_equal(cairn_store_append(s, h, buf, piece), 0);
        }
        t0 = now_s();
        assert_int_equal(cairn_store_commit(s, h, name, 1), 0);
        dt = now_s() - t0;
        print_message("streamed put over TLS: %zu MiB in %.3f s "
                      "(%.0f MiB/s)\n",
                      total >> 20, dt, (double)(total >> 20) / dt);
        assert_int_equal(cairn_store_stat(s, CAIRN_OBJ_PACK, name, &size), 0);
        assert_int_equal(size, total);
        assert_int_equal(cairn_store_get_range(s, CAIRN_OBJ_PACK, name,
                                               total - sizeof(tail),
                                               sizeof(tail), tail),
                         0);
        fill(buf, piece, (unsigned)(total - piece));
        assert_memory_equal(tail, buf + piece - sizeof(tail), sizeof(tail));
        free(buf);
        objname(name, 42);
    }
    cairn_store_free(s);

    /* A wrong pin: refused at once, not retried, nothing sent. */
    pin[10] = (pin[10] == 'A') ? 'B' : 'A';
    s = client("https", f->port, TOKEN, pin, 5);
    t0 = now_s();
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_EAUTH);
    assert_int_equal(cairn_store_put(s, CAIRN_OBJ_PACK, name, "x", 1, 1),
                     CAIRN_EAUTH);
    assert_true(now_s() - t0 < 2.0);
    cairn_store_free(s);

    /* No pin: the system CA store does not know this certificate. */
    s = client("https", f->port, TOKEN, NULL, 5);
    assert_int_equal(cairn_store_get(s, CAIRN_OBJ_PACK, name, &out, &len),
                     CAIRN_EAUTH);
    cairn_store_free(s);

    fake_stop(f);
    free(key);
    free(cert);
}

static int setup(void **state)
{
    (void)state;
    cairn_log_set(check_log, NULL);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_rejects),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_idempotent_and_refusals),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_server_down),
        cmocka_unit_test(test_streamed_put),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_have),
        cmocka_unit_test(test_tls_pin),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
