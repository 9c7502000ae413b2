/*
 * http.h - cairnd's request framework over libmicrohttpd: routing,
 * credentials, bounded bodies (buffered or streamed), JSON in and out,
 * and the error format of docs/API.md.
 *
 * A handler runs on one of the server's request threads.  It answers
 * exactly once, through one of the http_respond_* functions; if it
 * returns without answering, the framework answers 500.
 */
#ifndef CAIRN_HTTP_H
#define CAIRN_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct srv;
struct http_req;

/* Who is calling (set by the framework before the handler runs). */
struct http_auth {
    enum { HTTP_AUTH_NOBODY, HTTP_AUTH_SESSION, HTTP_AUTH_DEVICE } kind;
    /* Sessions: */
    int64_t user_id;
    int admin;     /* role admin */
    int full;      /* TOTP given (else password only) */
    int cookie;    /* cookie session (CSRF checked for non-GET) */
    int64_t dept_id;
    char session_hash[65];
    /* Devices: */
    char device_id[33];
};

/* Route flags: who may call (one of), and how the body arrives. */
#define HTTP_PUBLIC 0x01     /* anyone */
#define HTTP_PARTIAL 0x02    /* a session, TOTP not needed */
#define HTTP_USER 0x04       /* a full session */
#define HTTP_ADMIN 0x08      /* a full session of an admin */
#define HTTP_DEVICE 0x10     /* a device token */
#define HTTP_STREAM 0x100    /* the body goes to stream ops, not memory */

/* Streamed bodies (object uploads): begin after the credentials are
 * checked, before any byte; write per piece; end to answer; abort when the
 * client goes away or the body is too large (the framework answers 413).
 * begin may answer itself (an error) and return non-zero. */
struct http_stream_ops {
    int (*begin)(struct http_req *r, void **out_sink);
    int (*write)(struct http_req *r, void *sink, const uint8_t *buf,
                 size_t len);
    int (*end)(struct http_req *r, void *sink);
    void (*abort)(struct http_req *r, void *sink);
};

typedef int (*http_handler_fn)(struct http_req *r);

struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" */
    const char *pattern; /* "/api/v1/devices/{}/objects/{}/{}": {} is one
                          * path segment, captured */
    unsigned flags;
    size_t max_body; /* 0: no body allowed */
    http_handler_fn fn;                /* buffered */
    const struct http_stream_ops *stream; /* HTTP_STREAM */
};

/* The route table (api_*.c each export theirs; http.c joins them). */
extern const struct http_route api_auth_routes[];
extern const struct http_route api_org_routes[];
extern const struct http_route api_device_routes[];
extern const struct http_route api_object_routes[];
extern const struct http_route api_misc_routes[]; /* healthz, metrics */
extern const struct http_route api_restore_routes[]; /* browse, download */
extern const struct http_route api_push_routes[];    /* push restores */
extern const struct http_route api_request_routes[]; /* restore requests */
extern const struct http_route api_audit_routes[];   /* the audit log */
extern const struct http_route api_settings_routes[]; /* agent settings */

/* Start serving on the configured address with TLS; stop. */
int http_start(struct srv *s, const char *cert_pem, const char *key_pem);
void http_stop(struct srv *s);

/* Request accessors. */
struct srv *http_srv(struct http_req *r);
const char *http_method(struct http_req *r);
const char *http_path(struct http_req *r);
const char *http_param(struct http_req *r, int i); /* {} captures, 0.. */
const char *http_query(struct http_req *r, const char *key);  /* or NULL */
const char *http_header(struct http_req *r, const char *name); /* or NULL */
const char *http_client_addr(struct http_req *r);
const struct http_auth *http_auth(struct http_req *r);
const uint8_t *http_body(struct http_req *r, size_t *out_len);

/*
 * The body as a JSON object whose keys are all in allowed (NULL-ended).
 * On malformed JSON, a non-object or an unknown key, answers 400 and
 * returns NULL.  The result is borrowed (freed with the request).
 */
json_t *http_json_body(struct http_req *r, const char *const *allowed);

/*
 * The check behind http_json_body, without a request (the fuzz target
 * calls it): body (len bytes, not NUL-terminated) must be one JSON object,
 * without duplicate keys, whose keys are all in allowed (NULL-ended; NULL
 * allows none).  0 and *out (a new reference, the caller's), or
 * CAIRN_EINVAL with why (whylen bytes) set to the reason for the client,
 * valid UTF-8 and NUL-terminated (if whylen > 0).
 */
int http_json_check(const char *body, size_t len, const char *const *allowed,
                    json_t **out, char *why, size_t whylen);

/* Answers. */
void http_set_header(struct http_req *r, const char *name, const char *value);
int http_respond_json(struct http_req *r, unsigned status, json_t *body);
int http_respond_error(struct http_req *r, unsigned status, const char *code,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int http_respond_empty(struct http_req *r, unsigned status);
/* buf is copied. */
int http_respond_bytes(struct http_req *r, unsigned status,
                       const char *content_type, const void *buf, size_t len);
/* Answer with len bytes of fd from off (the framework closes fd). */
int http_respond_fd(struct http_req *r, unsigned status, int fd, uint64_t off,
                    uint64_t len);

/*
 * A streamed answer whose bytes are made while it is sent (downloads).
 * read is called later, on the server's threads, after the handler has
 * returned: it fills up to max bytes of buf and returns how many (> 0), 0
 * at the end, or -1 on a failure (the connection is then cut, so the
 * client sees an incomplete answer).  done(arg, complete) is called once
 * when the answer is finished or abandoned (complete: every byte was
 * made), also when this call fails; it frees arg.  The length is unknown
 * (chunked transfer encoding).
 */
typedef long long (*http_stream_read_fn)(void *arg, uint8_t *buf,
                                         size_t max);
typedef void (*http_stream_done_fn)(void *arg, int complete);
int http_respond_stream(struct http_req *r, unsigned status,
                        const char *content_type, http_stream_read_fn read,
                        http_stream_done_fn done, void *arg);

#endif
