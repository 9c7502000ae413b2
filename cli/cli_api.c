/*
 * cli_api.c - a small JSON-over-HTTPS client of the server's API
 * (docs/API.md) on libcurl: the server's public key pinned, a bearer
 * token, timeouts, and the API's error format turned into messages a
 * person can act on.  Also the pin fetch of the first contact (trust on
 * first use) and base64 helpers.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cli.h"

#define REPLY_MAX (16u * 1024 * 1024)

struct cli_api {
    CURL *curl;
    char *url;   /* "https://host:port", no trailing slash */
    char *pin;   /* "sha256//..." or NULL */
    char *token; /* bearer or NULL */
    struct cli_api_error err;
};

static int curl_ready;

static int global_init(void)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -1;
        curl_ready = 1;
    }
    return 0;
}

static char *dupstr(const char *s)
{
    return s == NULL ? NULL : strdup(s);
}

char *cli_api_normalize_url(const char *url)
{
    size_t n;
    char *out;

    if (url == NULL || url[0] == '\0')
        return NULL;
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (strstr(url, "://") != NULL) {
        if ((out = malloc(n + 1)) == NULL)
            return NULL;
        memcpy(out, url, n);
        out[n] = '\0';
        return out;
    }
    if ((out = malloc(n + 9)) == NULL)
        return NULL;
    memcpy(out, "https://", 8);
    memcpy(out + 8, url, n);
    out[n + 8] = '\0';
    return out;
}

int cli_api_new(const char *url, const char *pin, const char *token,
                struct cli_api **out)
{
    struct cli_api *a;

    if (global_init() != 0)
        return -1;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return -1;
    if ((a->url = cli_api_normalize_url(url)) == NULL)
        goto err1;
    if (pin != NULL && pin[0] != '\0' && (a->pin = strdup(pin)) == NULL)
        goto err1;
    if (token != NULL && (a->token = strdup(token)) == NULL)
        goto err1;
    if ((a->curl = curl_easy_init()) == NULL)
        goto err1;
    *out = a;
    return 0;

err1:
    cli_api_free(a);
    return -1;
}

void cli_api_free(struct cli_api *a)
{
    if (a == NULL)
        return;
    if (a->curl != NULL)
        curl_easy_cleanup(a->curl);
    if (a->token != NULL) {
        cairn_wipe(a->token, strlen(a->token));
        free(a->token);
    }
    free(a->pin);
    free(a->url);
    free(a);
}

int cli_api_set_token(struct cli_api *a, const char *token)
{
    char *t = dupstr(token);

    if (token != NULL && t == NULL)
        return -1;
    if (a->token != NULL) {
        cairn_wipe(a->token, strlen(a->token));
        free(a->token);
    }
    a->token = t;
    return 0;
}

const char *cli_api_url(const struct cli_api *a)
{
    return a->url;
}

const char *cli_api_pin(const struct cli_api *a)
{
    return a->pin;
}

const struct cli_api_error *cli_api_last_error(const struct cli_api *a)
{
    return &a->err;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct cairn_buf *b = arg;

    if (cairn_buf_append(b, p, size * n) != 0)
        return 0;
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct cli_api_error *e = arg;
    size_t len = size * n;

    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        e->retry_after = strtol(p + 12, NULL, 10);
    return len;
}

/* Settings every request shares: TLS pinning, timeouts. */
static void common_opts(CURL *h, const char *pin)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cairn/" CAIRN_VERSION);
    if (pin != NULL) {
        /* The pin replaces the CA check: a server with a self-signed
         * certificate is trusted by its key alone. */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
    }
}

/* Fill a->err from a failed answer's body. */
static void parse_error(struct cli_api *a, const struct cairn_buf *b)
{
    json_t *j, *v;

    if (b->len == 0 ||
        (j = json_loadb((const char *)b->data, b->len, 0, NULL)) == NULL) {
        snprintf(a->err.message, sizeof(a->err.message),
                 "the server answered HTTP %ld", a->err.status);
        return;
    }
    if ((v = json_object_get(j, "error")) != NULL && json_is_string(v))
        snprintf(a->err.message, sizeof(a->err.message), "%s",
                 json_string_value(v));
    else
        snprintf(a->err.message, sizeof(a->err.message),
                 "the server answered HTTP %ld", a->err.status);
    if ((v = json_object_get(j, "code")) != NULL && json_is_string(v))
        snprintf(a->err.code, sizeof(a->err.code), "%s",
                 json_string_value(v));
    if ((v = json_object_get(j, "starts_at")) != NULL && json_is_string(v))
        snprintf(a->err.starts_at, sizeof(a->err.starts_at), "%s",
                 json_string_value(v));
    json_decref(j);
}

int cli_api_call(struct cli_api *a, const char *method, const char *path,
                 json_t *body, json_t **out)
{
    struct curl_slist *hdrs = NULL;
    struct cairn_buf reply;
    char *url = NULL, *auth = NULL, *req = NULL;
    size_t ulen;
    CURLcode cc;
    int rc = -1;

    if (out != NULL)
        *out = NULL;
    memset(&a->err, 0, sizeof(a->err));
    cairn_buf_init(&reply, REPLY_MAX);
    ulen = strlen(a->url) + strlen(path) + 1;
    if ((url = malloc(ulen)) == NULL)
        goto done;
    snprintf(url, ulen, "%s%s", a->url, path);
    curl_easy_reset(a->curl);
    common_opts(a->curl, a->pin);
    curl_easy_setopt(a->curl, CURLOPT_URL, url);
    curl_easy_setopt(a->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(a->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(a->curl, CURLOPT_HEADERDATA, &a->err);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (a->token != NULL) {
        size_t n = strlen(a->token) + 32;

        if ((auth = malloc(n)) == NULL)
            goto done;
        snprintf(auth, n, "Authorization: Bearer %s", a->token);
        hdrs = curl_slist_append(hdrs, auth);
        cairn_wipe(auth, strlen(auth));
    }
    if (body != NULL) {
        if ((req = json_dumps(body, JSON_COMPACT)) == NULL)
            goto done;
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (hdrs == NULL)
        goto done;
    curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(a->curl);
    if (cc != CURLE_OK) {
        a->err.transport = 1;
        if (cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            snprintf(a->err.message, sizeof(a->err.message),
                     "the server at %s does not have the key this computer "
                     "pinned (%s): it is not the server you enrolled with, "
                     "or its key was changed",
                     a->url, a->pin);
        else
            snprintf(a->err.message, sizeof(a->err.message),
                     "cannot reach the server at %s: %s", a->url,
                     curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &a->err.status);
    if (a->err.status < 200 || a->err.status > 299) {
        parse_error(a, &reply);
        goto done;
    }
    if (out != NULL && reply.len > 0) {
        json_error_t je;

        if ((*out = json_loadb((const char *)reply.data, reply.len, 0,
                               &je)) == NULL) {
            snprintf(a->err.message, sizeof(a->err.message),
                     "the server's answer is not JSON (%s)", je.text);
            a->err.transport = 1;
            goto done;
        }
    }
    rc = 0;
done:
    if (req != NULL) {
        cairn_wipe(req, strlen(req));
        free(req);
    }
    curl_slist_free_all(hdrs);
    free(auth);
    free(url);
    cairn_buf_free(&reply);
    return rc;
}

int cli_api_report(struct cli *c, const struct cli_api *a, const char *what)
{
    const struct cli_api_error *e = &a->err;
    const char *code = e->code;

    if (e->transport) {
        cli_error(c, "%s: %s", what, e->message);
        return EXIT_ERROR;
    }
    if (strcmp(code, "wave_not_started") == 0) {
        /* The date must be in the message, whatever the server's words. */
        if (e->starts_at[0] != '\0' &&
            strstr(e->message, e->starts_at) == NULL)
            cli_error(c, "%s: %s (the department's rollout wave starts %s)",
                      what, e->message, e->starts_at);
        else
            cli_error(c, "%s: %s", what, e->message);
        return EXIT_ERROR;
    }
    if (strcmp(code, "totp_required") == 0) {
        cli_error(c, "%s: %s (finish logging in with a TOTP code: "
                     "cairn login)",
                  what, e->message);
        return EXIT_AUTH;
    }
    if (strcmp(code, "unauthenticated") == 0) {
        cli_error(c, "%s: %s (log in again: cairn login --server %s)", what,
                  e->message, a->url);
        return EXIT_AUTH;
    }
    if (strcmp(code, "locked") == 0) {
        cli_error(c, "%s: %s (the account is locked for a while after too "
                     "many failed logins; an administrator can unlock it)",
                  what, e->message);
        return EXIT_AUTH;
    }
    if (strcmp(code, "too_many") == 0) {
        if (e->retry_after > 0)
            cli_error(c, "%s: %s (too many failed tries; wait %ld s)", what,
                      e->message, e->retry_after);
        else
            cli_error(c, "%s: %s (too many failed tries; wait a little)",
                      what, e->message);
        return EXIT_AUTH;
    }
    if (strcmp(code, "forbidden") == 0) {
        cli_error(c, "%s: not allowed: %s", what, e->message);
        return EXIT_ERROR;
    }
    cli_error(c, "%s: %s", what, e->message);
    return EXIT_ERROR;
}

/* "sha256//<base64 of SHA-256 of the DER SubjectPublicKeyInfo>" of a PEM
 * certificate. */
static int pin_of_pem(const char *pem, char *out, size_t outlen)
{
    unsigned char *der = NULL;
    uint8_t digest[32];
    X509 *x = NULL;
    BIO *bio;
    char *b64;
    int n, rc = -1;

    if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
        return -1;
    if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
        goto done;
    if ((n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
        goto done;
    cairn_sha256(der, (size_t)n, digest);
    if ((b64 = cli_b64_encode(digest, sizeof(digest))) == NULL)
        goto done;
    snprintf(out, outlen, "sha256//%s", b64);
    free(b64);
    rc = 0;
done:
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

static size_t on_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

int cli_api_fetch_pin(const char *url, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    struct curl_certinfo *ci = NULL;
    struct curl_slist *s;
    char *base = NULL, *u = NULL;
    size_t n;
    CURLcode cc;
    CURL *h = NULL;
    int rc = -1;

    snprintf(err, errlen, "out of memory");
    if (global_init() != 0 || (base = cli_api_normalize_url(url)) == NULL)
        goto done;
    n = strlen(base) + 16;
    if ((u = malloc(n)) == NULL || (h = curl_easy_init()) == NULL)
        goto done;
    snprintf(u, n, "%s/healthz", base);
    common_opts(h, NULL);
    /* First contact: no verification yet, only the key is taken. */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
    if ((cc = curl_easy_perform(h)) != CURLE_OK) {
        snprintf(err, errlen, "cannot reach the server at %s: %s", base,
                 curl_easy_strerror(cc));
        goto done;
    }
    if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK ||
        ci == NULL || ci->num_of_certs < 1) {
        snprintf(err, errlen, "the server at %s showed no certificate",
                 base);
        goto done;
    }
    for (s = ci->certinfo[0]; s != NULL; s = s->next)
        if (strncmp(s->data, "Cert:", 5) == 0)
            break;
    if (s == NULL || pin_of_pem(s->data + 5, out, outlen) != 0) {
        snprintf(err, errlen, "cannot read the certificate of the server at "
                              "%s",
                 base);
        goto done;
    }
    rc = 0;
done:
    if (h != NULL)
        curl_easy_cleanup(h);
    free(u);
    free(base);
    return rc;
}

char *cli_b64_encode(const void *buf, size_t len)
{
    char *out;

    if (len > (size_t)1 << 28 || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, buf, (int)len);
    return out;
}

int cli_b64_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s), pad = 0;
    uint8_t *buf;
    int r;

    if (n % 4 != 0 || n > (size_t)1 << 28)
        return -1;
    if (n > 0 && s[n - 1] == '=')
        pad++;
    if (n > 1 && s[n - 2] == '=')
        pad++;
    if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
        return -1;
    if ((r = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n)) < 0 ||
        (size_t)r < pad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = (size_t)r - pad;
    return 0;
}

char *cli_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out, *q;

    if ((out = malloc(strlen(s) * 3 + 1)) == NULL)
        return NULL;
    for (q = out; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            *q++ = (char)ch;
        } else {
            *q++ = '%';
            *q++ = hex[ch >> 4];
            *q++ = hex[ch & 15];
        }
    }
    *q = '\0';
    return out;
}
