/*
 * store_http.c - a device's archive on a Cairn server, over HTTP(S) with
 * libcurl (docs/API.md, "Device archives").
 *
 * Mapping of the store operations, under
 * <base>/api/v1/devices/<device id>/objects/:
 *
 *   put, commit   PUT  <type>/<name>   201 (new) or 200 (kept: idempotent)
 *   get           GET  <type>/<name>   200
 *   get_range     GET  <type>/<name>   Range: bytes=a-b; 206 with exactly
 *                                      that part, else CAIRN_ECORRUPT
 *   stat          HEAD <type>/<name>   200, Content-Length
 *   list          GET  <type>          [{"name", "size"}, ...]
 *   have          POST <type>/have     {"names": [...]} -> {"have": [...]}
 *   remove        CAIRN_EPERM: a device never deletes
 *   barrier       nothing: a put is durable once the server answers
 *
 * Types: config, pack, index, snapshot.  Keys and locks are not kept on
 * the server (the device holds its key; the server serialises appends):
 * CAIRN_EINVAL.
 *
 * A streamed put is spooled to an unnamed temporary file ($TMPDIR or
 * /tmp) and uploaded from it at commit, so a pack is never whole in
 * memory and a retried upload can start again from its first byte.
 *
 * Failures: connection errors, timeouts, 5xx (but 507), 408 and 429 are
 * retried with exponential backoff (250 ms doubling to 8 s, with jitter)
 * until retry_secs have passed, then CAIRN_EIO; retrying is safe because
 * every upload is idempotent.  Other answers are final: 400 CAIRN_EINVAL,
 * 401/403 CAIRN_EPERM, 404 CAIRN_ENOENT, 409 CAIRN_EEXIST, 413
 * CAIRN_ERANGE, 416 CAIRN_ECORRUPT, 507 CAIRN_ENOSPC, anything else
 * CAIRN_EIO.  A server that fails TLS verification or the pin is
 * CAIRN_EAUTH at once: it is not the server we enrolled with.
 *
 * Threads: every operation may run in several threads at once.  Each call
 * takes an easy handle from a small pool (or makes one) and gives it back
 * after, so the handle's live connection is reused by the next call; a
 * CURLSH shares DNS and TLS sessions between the handles, under one mutex
 * per kind of data.  Connections themselves are not shared through the
 * CURLSH: libcurl does not support that between concurrent threads.
 *
 * The token is a secret: it lives only in the Authorization header string
 * (wiped at close), curl never gets VERBOSE, and nothing logged contains
 * it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"
#include "cairn/store.h"
#include "store/store_int.h"

#define HTTP_API_PATH "/api/v1/devices/"
#define HTTP_URL_MAX 2048
/* Longest base URL and device id accepted, so every URL fits. */
#define HTTP_BASE_MAX 1024
#define HTTP_DEVICE_MAX 128
#define HTTP_TOKEN_MAX 1024
#define HTTP_POOL_MAX 8
#define HTTP_RETRY_DEFAULT 60
#define HTTP_BACKOFF_MIN_MS 250
#define HTTP_BACKOFF_MAX_MS 8000
#define HTTP_CONNECT_TIMEOUT_MS 15000L
/* A transfer moving less than 1 byte/s for this long is dead (retried). */
#define HTTP_STALL_SECS 60L
#define HTTP_IO_BUFSIZE (256L * 1024)
/* Largest bodies read: an object (packs: 1 GiB), a listing, have. */
#define HTTP_OBJ_MAX (((size_t)1 << 30) + 1)
#define HTTP_LIST_MAX ((size_t)256 << 20)
#define HTTP_HAVE_MAX ((size_t)1 << 20)
#define HTTP_HAVE_CHUNK 1000
/* Bytes of an error answer kept for the log. */
#define HTTP_ERRBODY_MAX 512

struct httpstore {
    char *prefix; /* "<base>/api/v1/devices/<id>/objects/" */
    char *auth;   /* "Authorization: Bearer <token>": a secret */
    size_t authlen;
    char *pin; /* "sha256//..." or NULL for the system CA store */
    unsigned retry_secs;
    uint64_t max_send_bps; /* 0: unlimited */
    CURLSH *share;
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_lock;
    CURL *pool[HTTP_POOL_MAX];
    size_t npool;
};

/* A streamed put: the spool file and its length. */
struct http_stream {
    enum cairn_obj_type type;
    int fd;
    uint64_t len;
};

/* One request, retried as a whole by http_run(). */
struct http_req {
    const char *method; /* "GET", "HEAD", "PUT" or "POST" */
    const char *url;
    char *header; /* one more request header, or NULL */
    /* Upload: up_len bytes from body, or from fd when body is NULL. */
    const uint8_t *body;
    int fd;
    uint64_t up_len;
    /* Download: into sink, or exactly range_len bytes into range_out. */
    struct cairn_buf *sink;
    uint8_t *range_out;
    size_t range_len;
    uint64_t range_off;

    /* State of the current attempt. */
    CURL *curl;
    uint64_t up_off;
    size_t range_got;
    int range_ok; /* a Content-Range header matching the request seen */
    int local_rc; /* why a callback stopped the transfer */
    long status;
    curl_off_t content_length; /* of the answer; -1 if not given */
    char errbody[HTTP_ERRBODY_MAX + 1];
    size_t errlen;
};

static const char *type_name(enum cairn_obj_type type)
{
    switch (type) {
    case CAIRN_OBJ_CONFIG:
        return "config";
    case CAIRN_OBJ_PACK:
        return "pack";
    case CAIRN_OBJ_INDEX:
        return "index";
    case CAIRN_OBJ_SNAPSHOT:
        return "snapshot";
    default:
        return NULL;
    }
}

/* <prefix><type>[/<name>[<suffix>]] into url (HTTP_URL_MAX bytes). */
static int make_url(const struct httpstore *h, enum cairn_obj_type type,
                    const char *name, const char *suffix, char *url)
{
    const char *tn;
    int n;

    if ((tn = type_name(type)) == NULL)
        return CAIRN_EINVAL;
    if (name == NULL)
        n = snprintf(url, HTTP_URL_MAX, "%s%s", h->prefix, tn);
    else
        n = snprintf(url, HTTP_URL_MAX, "%s%s/%s%s", h->prefix, tn, name,
                     suffix != NULL ? suffix : "");
    if (n < 0 || n >= HTTP_URL_MAX)
        return CAIRN_EINVAL;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift64: jitter only, nothing secret. */
static uint64_t jitter_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access,
                       void *arg)
{
    struct httpstore *h = arg;

    (void)c;
    (void)access;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&h->share_lock[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *arg)
{
    struct httpstore *h = arg;

    (void)c;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&h->share_lock[data]);
}

/* An easy handle from the pool, or a new one; NULL if out of memory. */
static CURL *handle_take(struct httpstore *h)
{
    CURL *c = NULL;

    pthread_mutex_lock(&h->pool_lock);
    if (h->npool > 0)
        c = h->pool[--h->npool];
    pthread_mutex_unlock(&h->pool_lock);
    if (c == NULL)
        c = curl_easy_init();
    return c;
}

/* Give c back (its live connection with it), or clean it up. */
static void handle_give(struct httpstore *h, CURL *c)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->npool < HTTP_POOL_MAX) {
        h->pool[h->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->pool_lock);
    if (c != NULL)
        curl_easy_cleanup(c);
}

static int is_2xx(long status)
{
    return status >= 200 && status <= 299;
}

/* Parse "bytes a-b/total" (total may be "*"); 1 if it is exactly the
 * range asked for. */
static int content_range_ok(const char *v, size_t n, uint64_t off, size_t len)
{
    char tmp[128], *p, *end;
    unsigned long long a, b;

    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= sizeof(tmp))
        return 0;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    p = tmp;
    while (*p == ' ')
        p++;
    if (strncasecmp(p, "bytes ", 6) != 0)
        return 0;
    p += 6;
    if (*p < '0' || *p > '9')
        return 0;
    errno = 0;
    a = strtoull(p, &end, 10);
    if (errno != 0 || *end != '-' || end[1] < '0' || end[1] > '9')
        return 0;
    b = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != '/')
        return 0;
    return len > 0 && a == off && b == off + len - 1;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_req *q = arg;
    size_t n = size * nmemb;

    /* A status line starts a new answer (after "100 Continue"). */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        q->range_ok = 0;
    else if (q->range_out != NULL && n > 14 &&
             strncasecmp(p, "Content-Range:", 14) == 0)
        q->range_ok =
            content_range_ok(p + 14, n - 14, q->range_off, q->range_len);
    return n;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_req *q = arg;
    size_t n = size * nmemb, k;
    curl_off_t cl;
    long status = 0;
    int rc;

    curl_easy_getinfo(q->curl, CURLINFO_RESPONSE_CODE, &status);
    if (!is_2xx(status)) {
        /* An error answer: keep its start for the log. */
        k = HTTP_ERRBODY_MAX - q->errlen;
        if (k > n)
            k = n;
        memcpy(q->errbody + q->errlen, p, k);
        q->errlen += k;
        q->errbody[q->errlen] = '\0';
        return n;
    }
    if (q->range_out != NULL) {
        /* Only exactly the part asked for: a server that ignores Range
         * would otherwise send the whole object. */
        if (status != 206 || !q->range_ok || n > q->range_len - q->range_got) {
            q->local_rc = CAIRN_ECORRUPT;
            return 0;
        }
        memcpy(q->range_out + q->range_got, p, n);
        q->range_got += n;
        return n;
    }
    if (q->sink != NULL) {
        if (q->sink->len == 0 &&
            curl_easy_getinfo(q->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                              &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl <= q->sink->max) {
            if ((rc = cairn_buf_reserve(q->sink, (size_t)cl)) != 0) {
                q->local_rc = rc;
                return 0;
            }
        }
        if ((rc = cairn_buf_append(q->sink, p, n)) != 0) {
            q->local_rc = rc;
            return 0;
        }
    }
    return n;
}

static size_t on_upload(char *p, size_t size, size_t nmemb, void *arg)
{
    struct http_req *q = arg;
    size_t n = size * nmemb;
    ssize_t r;

    if (n > q->up_len - q->up_off)
        n = (size_t)(q->up_len - q->up_off);
    if (n == 0)
        return 0;
    if (q->body != NULL) {
        memcpy(p, q->body + q->up_off, n);
    } else {
        do {
            r = pread(q->fd, p, n, (off_t)q->up_off);
        } while (r < 0 && errno == EINTR);
        if (r <= 0) {
            /* The spool file is ours: a short one is a local failure. */
            q->local_rc = (r < 0) ? cairn_err_from_errno(errno) : CAIRN_EIO;
            return CURL_READFUNC_ABORT;
        }
        n = (size_t)r;
    }
    q->up_off += n;
    return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
    struct http_req *q = arg;

    if (origin != SEEK_SET || off < 0 || (uint64_t)off > q->up_len)
        return CURL_SEEKFUNC_FAIL;
    q->up_off = (uint64_t)off;
    return CURL_SEEKFUNC_OK;
}

/* Set up c for one attempt of q.  hdrs holds the request headers. */
static CURLcode setup(struct httpstore *h, CURL *c, struct http_req *q,
                      struct curl_slist hdrs[2])
{
    CURLcode cc = CURLE_OK;

    /* Headers without allocation: no copy of the token to free unwiped. */
    hdrs[0].data = h->auth;
    hdrs[0].next = NULL;
    if (q->header != NULL) {
        hdrs[0].next = &hdrs[1];
        hdrs[1].data = q->header;
        hdrs[1].next = NULL;
    }

#define SET(opt, val)                                                          \
    do {                                                                       \
        if (cc == CURLE_OK)                                                    \
            cc = curl_easy_setopt(c, opt, val);                                \
    } while (0)

    curl_easy_reset(c);
    SET(CURLOPT_URL, q->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_SHARE, h->share);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_HTTPHEADER, hdrs);
    /* A connection attempt may not outlast the whole retry budget. */
    SET(CURLOPT_CONNECTTIMEOUT_MS,
        ((long)h->retry_secs * 1000 < HTTP_CONNECT_TIMEOUT_MS)
            ? (long)h->retry_secs * 1000
            : HTTP_CONNECT_TIMEOUT_MS);
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME, HTTP_STALL_SECS);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_BUFFERSIZE, HTTP_IO_BUFSIZE);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, q);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, q);
    if (h->pin != NULL) {
        /*
         * The server's certificate is self-signed, and its public key was
         * pinned at enrolment: the pin, not a CA, says who the server is.
         * libcurl checks the pin whatever VERIFYPEER says, so chain and
         * host name checks are turned off and the pin alone decides.
         */
        SET(CURLOPT_PINNEDPUBLICKEY, h->pin);
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(q->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(q->method, "PUT") == 0) {
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_READFUNCTION, on_upload);
        SET(CURLOPT_READDATA, q);
        SET(CURLOPT_SEEKFUNCTION, on_seek);
        SET(CURLOPT_SEEKDATA, q);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->up_len);
        SET(CURLOPT_UPLOAD_BUFFERSIZE, HTTP_IO_BUFSIZE);
        if (h->max_send_bps != 0)
            SET(CURLOPT_MAX_SEND_SPEED_LARGE, (curl_off_t)h->max_send_bps);
    } else if (strcmp(q->method, "POST") == 0) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, (const char *)q->body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->up_len);
    }
#undef SET
    return cc;
}

/* The store's answer to an HTTP status that is not 2xx.  *retry is set
 * for transient ones. */
static int status_rc(long status, int *retry)
{
    *retry = 0;
    switch (status) {
    case 400:
        return CAIRN_EINVAL;
    case 401:
    case 403:
        return CAIRN_EPERM;
    case 404:
        return CAIRN_ENOENT;
    case 409:
        return CAIRN_EEXIST;
    case 413:
        return CAIRN_ERANGE;
    case 416:
        return CAIRN_ECORRUPT;
    case 507:
        return CAIRN_ENOSPC;
    case 408:
    case 429:
        *retry = 1;
        return CAIRN_EIO;
    case 501:
    case 505:
        return CAIRN_EIO;
    default:
        if (status >= 500 && status <= 599)
            *retry = 1;
        return CAIRN_EIO;
    }
}

/* The store's answer to a transfer that failed before an HTTP status. */
static int curl_rc(CURLcode cc, const struct http_req *q, int *retry)
{
    *retry = 0;
    if (q->local_rc != 0)
        return q->local_rc;
    switch (cc) {
    case CURLE_OUT_OF_MEMORY:
        return CAIRN_ENOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
        return CAIRN_EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
        /* Not the server we trust: retrying cannot help. */
        return CAIRN_EAUTH;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return CAIRN_EIO;
    default:
        /* Refused, reset, timed out, cut short, TLS handshake failed:
         * the server may be restarting. */
        *retry = 1;
        return CAIRN_EIO;
    }
}

/* The "error" words of a JSON error answer, for the log (control
 * characters replaced: the server's words may not forge log lines). */
static void log_answer(const struct http_req *q, int level)
{
    json_t *j, *e;
    const char *words = "";
    char clean[201];
    size_t i;

    j = json_loadb(q->errbody, q->errlen, 0, NULL);
    if (j != NULL && (e = json_object_get(j, "error")) != NULL &&
        json_is_string(e))
        words = json_string_value(e);
    for (i = 0; i < sizeof(clean) - 1 && words[i] != '\0'; i++)
        clean[i] = ((unsigned char)words[i] < 0x20 || words[i] == 0x7f)
                       ? '?'
                       : words[i];
    clean[i] = '\0';
    cairn_log(level, "%s %s: HTTP %ld%s%s", q->method, q->url, q->status,
              i > 0 ? ": " : "", clean);
    json_decref(j);
}

/*
 * Run q until it succeeds, fails for good, or retry_secs have passed
 * (CAIRN_EIO).  0 means a 2xx answer (q->status); the caller checks the
 * rest.
 */
static int http_run(struct httpstore *h, struct http_req *q)
{
    struct curl_slist hdrs[2];
    uint64_t start, now, deadline, delay = HTTP_BACKOFF_MIN_MS, wait, seed;
    CURLcode cc;
    CURL *c;
    int rc, retry, attempts = 0;

    if ((c = handle_take(h)) == NULL)
        return CAIRN_ENOMEM;
    start = now_ms();
    deadline = start + (uint64_t)h->retry_secs * 1000;
    seed = (start * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)(uintptr_t)q;
    if (seed == 0)
        seed = 1;
    for (;;) {
        attempts++;
        q->curl = c;
        q->up_off = 0;
        q->range_got = 0;
        q->range_ok = 0;
        q->local_rc = 0;
        q->status = 0;
        q->errlen = 0;
        q->errbody[0] = '\0';
        if (q->sink != NULL)
            q->sink->len = 0;
        if ((cc = setup(h, c, q, hdrs)) != CURLE_OK) {
            rc = (cc == CURLE_OUT_OF_MEMORY) ? CAIRN_ENOMEM : CAIRN_EINVAL;
            break;
        }
        cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &q->status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
                              &q->content_length) != CURLE_OK)
            q->content_length = -1;
        if (cc == CURLE_OK && is_2xx(q->status)) {
            rc = 0;
            break;
        }
        if (cc == CURLE_OK)
            rc = status_rc(q->status, &retry);
        else
            rc = curl_rc(cc, q, &retry);
        if (!retry) {
            if (cc == CURLE_OK)
                log_answer(q, CAIRN_LOG_DEBUG);
            else
                cairn_log(CAIRN_LOG_DEBUG, "%s %s: %s", q->method, q->url,
                          curl_easy_strerror(cc));
            break;
        }
        now = now_ms();
        if (now >= deadline) {
            if (cc == CURLE_OK)
                log_answer(q, CAIRN_LOG_WARN);
            cairn_log(CAIRN_LOG_WARN,
                      "%s %s: %s; gave up after %d tries in "
                      "%u s",
                      q->method, q->url,
                      cc == CURLE_OK ? "server error" : curl_easy_strerror(cc),
                      attempts, h->retry_secs);
            rc = CAIRN_EIO;
            break;
        }
        /* Half the delay, plus a random part of the other half. */
        wait = delay / 2 + jitter_next(&seed) % (delay / 2 + 1);
        if (wait > deadline - now)
            wait = deadline - now;
        cairn_log(
            CAIRN_LOG_INFO, "%s %s: %s; retrying in %llu ms", q->method, q->url,
            cc == CURLE_OK ? "server busy or failing" : curl_easy_strerror(cc),
            (unsigned long long)wait);
        sleep_ms(wait);
        delay =
            (delay * 2 > HTTP_BACKOFF_MAX_MS) ? HTTP_BACKOFF_MAX_MS : delay * 2;
    }
    handle_give(h, c);
    q->curl = NULL;
    return rc;
}

static void req_init(struct http_req *q, const char *method, const char *url)
{
    memset(q, 0, sizeof(*q));
    q->method = method;
    q->url = url;
    q->fd = -1;
}

static int http_put(void *ctx, enum cairn_obj_type type, const char *name,
                    const void *buf, size_t len, int durable)
{
    struct httpstore *h = ctx;
    struct http_req q;
    char url[HTTP_URL_MAX];
    int rc;

    (void)durable;
    if ((rc = make_url(h, type, name, NULL, url)) != 0)
        return rc;
    req_init(&q, "PUT", url);
    /* A non-NULL body even when empty: NULL means "from the file". */
    q.body = (buf != NULL) ? buf : (const uint8_t *)"";
    q.up_len = len;
    return http_run(h, &q);
}

/* An unnamed temporary file in $TMPDIR or /tmp. */
static int spool_open(int *out_fd)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd, n;

    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0) {
        *out_fd = fd;
        return 0;
    }
    /* No O_TMPFILE here (old kernel, some file systems): name, unlink. */
    n = snprintf(path, sizeof(path), "%s/.cairn-spool-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CAIRN_EINVAL;
    if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
        return cairn_err_from_errno(errno);
    unlink(path);
    *out_fd = fd;
    return 0;
}

static int http_begin(void *ctx, enum cairn_obj_type type, void **out_h)
{
    struct http_stream *st;
    int rc;

    (void)ctx;
    if (type_name(type) == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((st = malloc(sizeof(*st))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    st->type = type;
    st->len = 0;
    if ((rc = spool_open(&st->fd)) != 0)
        goto err1;
    *out_h = st;

    /* Success! */
    return 0;

err1:
    free(st);
err0:
    return rc;
}

static int http_append(void *ctx, void *hd, const void *buf, size_t len)
{
    struct http_stream *st = hd;
    const uint8_t *p = buf;
    ssize_t r;

    (void)ctx;
    while (len > 0) {
        if ((r = write(st->fd, p, len)) < 0) {
            if (errno == EINTR)
                continue;
            return cairn_err_from_errno(errno);
        }
        p += r;
        len -= (size_t)r;
        st->len += (uint64_t)r;
    }
    return 0;
}

static int http_stream_read(void *ctx, void *hd, uint64_t off, size_t len,
                            uint8_t *out)
{
    struct http_stream *st = hd;

    (void)ctx;
    if (off > st->len || len > st->len - off)
        return CAIRN_ECORRUPT;
    return store_pread_all(st->fd, out, len, off);
}

static void http_abort(void *ctx, void *hd)
{
    struct http_stream *st = hd;

    (void)ctx;
    close(st->fd);
    free(st);
}

static int http_commit(void *ctx, void *hd, const char *name, int durable)
{
    struct httpstore *h = ctx;
    struct http_stream *st = hd;
    struct http_req q;
    char url[HTTP_URL_MAX];
    int rc;

    (void)durable;
    if (!cairn_store_name_valid(st->type, name)) {
        rc = CAIRN_EINVAL;
        goto out;
    }
    if ((rc = make_url(h, st->type, name, NULL, url)) != 0)
        goto out;
    req_init(&q, "PUT", url);
    q.fd = st->fd;
    q.up_len = st->len;
    rc = http_run(h, &q);

out:
    http_abort(ctx, hd);
    return rc;
}

static int http_barrier(void *ctx)
{
    /* Every put was durable on the server when it returned. */
    (void)ctx;
    return 0;
}

static int http_get(void *ctx, enum cairn_obj_type type, const char *name,
                    uint8_t **out, size_t *out_len)
{
    struct httpstore *h = ctx;
    struct http_req q;
    struct cairn_buf b;
    char url[HTTP_URL_MAX];
    int rc;

    if ((rc = make_url(h, type, name, NULL, url)) != 0)
        goto err0;
    cairn_buf_init(&b, HTTP_OBJ_MAX);
    req_init(&q, "GET", url);
    q.sink = &b;
    if ((rc = http_run(h, &q)) != 0)
        goto err1;
    if (q.status != 200) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    /* Never NULL, even for an empty object. */
    if ((rc = cairn_buf_reserve(&b, 1)) != 0)
        goto err1;
    *out = cairn_buf_steal(&b, out_len);

    /* Success! */
    return 0;

err1:
    cairn_buf_free(&b);
err0:
    return rc;
}

static int http_stat(void *ctx, enum cairn_obj_type type, const char *name,
                     uint64_t *out_size)
{
    struct httpstore *h = ctx;
    struct http_req q;
    char url[HTTP_URL_MAX];
    int rc;

    if ((rc = make_url(h, type, name, NULL, url)) != 0)
        return rc;
    req_init(&q, "HEAD", url);
    if ((rc = http_run(h, &q)) != 0)
        return rc;
    if (q.status != 200 || q.content_length < 0)
        return CAIRN_ECORRUPT;
    *out_size = (uint64_t)q.content_length;
    return 0;
}

static int http_get_range(void *ctx, enum cairn_obj_type type, const char *name,
                          uint64_t off, size_t len, uint8_t *out)
{
    struct httpstore *h = ctx;
    struct http_req q;
    char url[HTTP_URL_MAX], range[80];
    uint64_t size;
    int rc;

    if (len == 0) {
        /* No empty Range in HTTP: the object need only be long enough. */
        if ((rc = http_stat(ctx, type, name, &size)) != 0)
            return rc;
        return (size >= off) ? 0 : CAIRN_ECORRUPT;
    }
    if (off > UINT64_MAX - len)
        return CAIRN_ECORRUPT;
    if ((rc = make_url(h, type, name, NULL, url)) != 0)
        return rc;
    snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
             (unsigned long long)off, (unsigned long long)(off + len - 1));
    req_init(&q, "GET", url);
    q.header = range;
    q.range_out = out;
    q.range_len = len;
    q.range_off = off;
    if ((rc = http_run(h, &q)) != 0)
        return rc;
    if (q.status != 206 || q.range_got != len)
        return CAIRN_ECORRUPT;
    return 0;
}

static int http_list(void *ctx, enum cairn_obj_type type,
                     cairn_store_list_fn fn, void *arg)
{
    struct httpstore *h = ctx;
    struct http_req q;
    struct cairn_buf b;
    char url[HTTP_URL_MAX];
    json_t *j, *e, *name, *size;
    size_t i;
    int rc;

    /* A server archive has no key files or locks: the device holds its
     * key, the server only wraps of it.  Listing them finds nothing. */
    if (type == CAIRN_OBJ_KEY || type == CAIRN_OBJ_LOCK)
        return 0;
    if ((rc = make_url(h, type, NULL, NULL, url)) != 0)
        goto err0;
    cairn_buf_init(&b, HTTP_LIST_MAX);
    req_init(&q, "GET", url);
    q.sink = &b;
    if ((rc = http_run(h, &q)) != 0)
        goto err1;
    if (q.status != 200 ||
        (j = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES,
                        NULL)) == NULL) {
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    /* All of it checked before the first callback. */
    if (!json_is_array(j)) {
        rc = CAIRN_ECORRUPT;
        goto err2;
    }
    json_array_foreach(j, i, e)
    {
        name = json_object_get(e, "name");
        size = json_object_get(e, "size");
        if (!json_is_object(e) || json_object_size(e) != 2 ||
            !json_is_string(name) || !json_is_integer(size) ||
            json_integer_value(size) < 0 ||
            !cairn_store_name_valid(type, json_string_value(name))) {
            rc = CAIRN_ECORRUPT;
            goto err2;
        }
    }
    json_array_foreach(j, i, e)
    {
        if ((rc = fn(arg, json_string_value(json_object_get(e, "name")),
                     (uint64_t)json_integer_value(
                         json_object_get(e, "size")))) != 0)
            goto err2;
    }

    /* Success! */
    rc = 0;

err2:
    json_decref(j);
err1:
    cairn_buf_free(&b);
err0:
    return rc;
}

static int http_remove(void *ctx, enum cairn_obj_type type, const char *name)
{
    /* A device never deletes (docs/API.md): a stolen token cannot either. */
    (void)ctx;
    (void)type;
    (void)name;
    return CAIRN_EPERM;
}

static void http_close(void *ctx)
{
    struct httpstore *h = ctx;
    size_t i;

    for (i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    curl_share_cleanup(h->share);
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->share_lock[i]);
    pthread_mutex_destroy(&h->pool_lock);
    explicit_bzero(h->auth, h->authlen);
    free(h->auth);
    free(h->pin);
    free(h->prefix);
    free(h);
    curl_global_cleanup();
}

static const struct cairn_store_ops http_ops = {
    .name = "http",
    .put = http_put,
    .begin = http_begin,
    .append = http_append,
    .commit = http_commit,
    .abort = http_abort,
    .stream_read = http_stream_read,
    .barrier = http_barrier,
    .get = http_get,
    .get_range = http_get_range,
    .stat = http_stat,
    .list = http_list,
    .remove = http_remove,
    .close = http_close,
};

/* A have entry: a name and its place in the caller's array. */
struct have_ent {
    const char *name;
    size_t i;
};

static int have_cmp(const void *a, const void *b)
{
    return strcmp(((const struct have_ent *)a)->name,
                  ((const struct have_ent *)b)->name);
}

/* One POST .../have for names[0..n) (n <= HTTP_HAVE_CHUNK). */
static int have_chunk(struct httpstore *h, enum cairn_obj_type type,
                      const char *const *names, size_t n, uint8_t *out_have)
{
    struct have_ent ent[HTTP_HAVE_CHUNK], key, *hit;
    struct http_req q;
    struct cairn_buf b;
    char url[HTTP_URL_MAX], ctype[] = "Content-Type: application/json";
    json_t *req, *arr, *ans, *have, *e;
    char *body;
    size_t i, k;
    int rc;

    if ((rc = make_url(h, type, "have", NULL, url)) != 0)
        goto err0;
    if ((req = json_object()) == NULL || (arr = json_array()) == NULL ||
        json_object_set_new(req, "names", arr) != 0) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    for (i = 0; i < n; i++) {
        if (json_array_append_new(arr, json_string(names[i])) != 0) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
        ent[i].name = names[i];
        ent[i].i = i;
        out_have[i] = 0;
    }
    if ((body = json_dumps(req, JSON_COMPACT)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    qsort(ent, n, sizeof(ent[0]), have_cmp);

    cairn_buf_init(&b, HTTP_HAVE_MAX);
    req_init(&q, "POST", url);
    q.header = ctype;
    q.body = (const uint8_t *)body;
    q.up_len = strlen(body);
    q.sink = &b;
    if ((rc = http_run(h, &q)) != 0)
        goto err3;
    if (q.status != 200 ||
        (ans = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES,
                          NULL)) == NULL) {
        rc = CAIRN_ECORRUPT;
        goto err3;
    }
    have = json_object_get(ans, "have");
    if (!json_is_object(ans) || json_object_size(ans) != 1 ||
        !json_is_array(have)) {
        rc = CAIRN_ECORRUPT;
        goto err4;
    }
    /* Every answer must be one of the names asked about. */
    json_array_foreach(have, k, e)
    {
        if (!json_is_string(e)) {
            rc = CAIRN_ECORRUPT;
            goto err4;
        }
        key.name = json_string_value(e);
        if ((hit = bsearch(&key, ent, n, sizeof(ent[0]), have_cmp)) == NULL) {
            rc = CAIRN_ECORRUPT;
            goto err4;
        }
        /* Equal names sort together: mark each copy. */
        while (hit > ent && strcmp(hit[-1].name, key.name) == 0)
            hit--;
        for (; hit < ent + n && strcmp(hit->name, key.name) == 0; hit++)
            out_have[hit->i] = 1;
    }

    /* Success! */
    rc = 0;

err4:
    json_decref(ans);
err3:
    cairn_buf_free(&b);
    free(body);
err1:
    json_decref(req);
err0:
    return rc;
}

/*
 * Which of names[0..n) (objects of type) the server has: out_have[i] is
 * set to 1 or 0.  Asks in batches of at most 1000 names.  CAIRN_EINVAL if
 * s is not an HTTP store, type is not kept on the server or a name is
 * invalid; CAIRN_ECORRUPT for an answer naming anything not asked about;
 * otherwise as the store's operations.  out_have is undefined on failure.
 * Thread safe.
 */
int cairn_store_http_have(struct cairn_store *s, enum cairn_obj_type type,
                          const char *const *names, size_t n, uint8_t *out_have)
{
    size_t i, k;
    int rc;

    if (s == NULL || s->ops != &http_ops || type_name(type) == NULL ||
        (n > 0 && (names == NULL || out_have == NULL)))
        return CAIRN_EINVAL;
    for (i = 0; i < n; i++)
        if (!cairn_store_name_valid(type, names[i]))
            return CAIRN_EINVAL;
    for (i = 0; i < n; i += k) {
        k = (n - i > HTTP_HAVE_CHUNK) ? HTTP_HAVE_CHUNK : n - i;
        if ((rc = have_chunk(s->ctx, type, names + i, k, out_have + i)) != 0)
            return rc;
    }
    return 0;
}

/* 1 if s[0..] is 1..max characters, each accepted by ok(). */
static int str_ok(const char *s, size_t max, int (*ok)(int))
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i] != '\0'; i++)
        if (i >= max || !ok((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Device ids go into URLs unescaped. */
static int device_char(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' || ch == '.';
}

/* Tokens and pins go into headers and options: visible ASCII only, so
 * nothing can end a header early. */
static int visible_char(int ch)
{
    return ch > 0x20 && ch < 0x7f;
}

/*
 * Open the HTTP store of device o->device_id on the server o->base_url
 * (see cairn/store.h and docs/API.md), authenticating with o->token and,
 * when o->pin is set, trusting only a server whose public key has that
 * pin.  No request is made yet.  *out is freed with cairn_store_free.
 * CAIRN_EINVAL for a bad URL (not http:// or https://), device id, token
 * or pin; CAIRN_ENOMEM; CAIRN_EIO if libcurl cannot start.  Thread safe.
 */
int cairn_store_http_open(const struct cairn_http_opts *o,
                          struct cairn_store **out)
{
    static const char bearer[] = "Authorization: Bearer ";
    struct httpstore *h;
    struct cairn_store *s;
    size_t blen, i;
    int n, rc;

    if (o == NULL || o->base_url == NULL ||
        (strncmp(o->base_url, "https://", 8) != 0 &&
         strncmp(o->base_url, "http://", 7) != 0) ||
        !str_ok(o->base_url, HTTP_BASE_MAX, visible_char) ||
        !str_ok(o->device_id, HTTP_DEVICE_MAX, device_char) ||
        strcmp(o->device_id, ".") == 0 || strcmp(o->device_id, "..") == 0 ||
        !str_ok(o->token, HTTP_TOKEN_MAX, visible_char) ||
        (o->pin != NULL && (!str_ok(o->pin, HTTP_TOKEN_MAX, visible_char) ||
                            strncmp(o->pin, "sha256//", 8) != 0))) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = CAIRN_EIO;
        goto err0;
    }
    if ((h = calloc(1, sizeof(*h))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    h->retry_secs = (o->retry_secs == 0) ? HTTP_RETRY_DEFAULT : o->retry_secs;
    h->max_send_bps = o->max_send_bps;

    blen = strlen(o->base_url);
    while (blen > 0 && o->base_url[blen - 1] == '/')
        blen--;
    n = snprintf(NULL, 0, "%.*s" HTTP_API_PATH "%s/objects/", (int)blen,
                 o->base_url, o->device_id);
    if ((h->prefix = malloc((size_t)n + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    snprintf(h->prefix, (size_t)n + 1, "%.*s" HTTP_API_PATH "%s/objects/",
             (int)blen, o->base_url, o->device_id);
    h->authlen = strlen(bearer) + strlen(o->token);
    if ((h->auth = malloc(h->authlen + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err3;
    }
    memcpy(h->auth, bearer, strlen(bearer));
    memcpy(h->auth + strlen(bearer), o->token, strlen(o->token) + 1);
    if (o->pin != NULL && (h->pin = strdup(o->pin)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err4;
    }

    if (pthread_mutex_init(&h->pool_lock, NULL) != 0) {
        rc = CAIRN_ENOMEM;
        goto err5;
    }
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        if (pthread_mutex_init(&h->share_lock[i], NULL) != 0) {
            rc = CAIRN_ENOMEM;
            goto err6;
        }
    }
    if ((h->share = curl_share_init()) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err6;
    }
    if (curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) !=
            CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) !=
            CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) != CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) !=
            CURLSHE_OK ||
        curl_share_setopt(h->share, CURLSHOPT_SHARE,
                          CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        rc = CAIRN_EIO;
        goto err7;
    }
    if ((s = malloc(sizeof(*s))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err7;
    }
    s->ops = &http_ops;
    s->ctx = h;
    *out = s;

    /* Success! */
    return 0;

err7:
    curl_share_cleanup(h->share);
err6:
    while (i-- > 0)
        pthread_mutex_destroy(&h->share_lock[i]);
    pthread_mutex_destroy(&h->pool_lock);
err5:
    free(h->pin);
err4:
    explicit_bzero(h->auth, h->authlen);
    free(h->auth);
err3:
    free(h->prefix);
err2:
    free(h);
err1:
    curl_global_cleanup();
err0:
    /* Failure! */
    return rc;
}
