/*
 * api_misc.c - GET /healthz and GET /metrics (Prometheus text format
 * 0.0.4).  Both are public: /metrics shows counts only, never a name; on
 * a server reachable from outside, filter it at the proxy (docs/SERVER.md).
 */
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"
#include "http.h"
#include "srv.h"

#define METRICS_MAX 8192

/* GET /healthz: 200 {"status":"ok"} when the catalog answers, else 503. */
static int healthz(struct http_req *r)
{
    struct cat_org o;
    int rc;

    rc = cat_org_get(http_srv(r)->cat, &o);
    cat_org_clear(&o);
    if (rc != 0)
        return http_respond_error(r, 503, "unavailable",
                                  "the catalog does not answer");
    return http_respond_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

enum { ALERT_OK, ALERT_WARNING, ALERT_CRITICAL };
static const char *const alert_names[] = {"ok", "warning", "critical"};

struct dev_counts {
    struct srv *s;
    int64_t now;
    uint64_t n[2][3]; /* [replaced][alert] */
};

static int count_device(void *arg, const struct cat_device *d)
{
    struct dev_counts *c = arg;
    int replaced = strcmp(d->state, "active") != 0;
    int64_t since = d->last_backup ? d->last_backup : d->enrolled_at;
    int64_t days = (c->now - since) / 86400;
    int alert = ALERT_OK;

    if (!replaced) {
        if (days >= c->s->cfg.alert_critical_days)
            alert = ALERT_CRITICAL;
        else if (days >= c->s->cfg.alert_warning_days)
            alert = ALERT_WARNING;
    }
    c->n[replaced][alert]++;
    return 0;
}

#define APPEND(...)                                                            \
    do {                                                                       \
        int w_ = snprintf(buf + len, sizeof(buf) - len, __VA_ARGS__);          \
        if (w_ < 0 || (size_t)w_ >= sizeof(buf) - len)                         \
            goto toolong;                                                      \
        len += (size_t)w_;                                                     \
    } while (0)

static void counter(char *buf, size_t *lenp, size_t max, const char *name,
                    const char *help, uint64_t v)
{
    int w = snprintf(buf + *lenp, max - *lenp,
                     "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help,
                     name, name, (unsigned long long)v);
    if (w > 0 && (size_t)w < max - *lenp)
        *lenp += (size_t)w;
}

/* GET /metrics */
static int metrics(struct http_req *r)
{
    struct srv *s = http_srv(r);
    struct dev_counts dc;
    char buf[METRICS_MAX];
    size_t len = 0;
    int rc, i, a;

    memset(&dc, 0, sizeof(dc));
    dc.s = s;
    dc.now = srv_now();
    if ((rc = cat_device_list(s->cat, NULL, count_device, &dc)) != 0)
        return http_respond_error(r, 503, "unavailable",
                                  "the catalog does not answer");
    buf[0] = '\0';
    counter(buf, &len, sizeof(buf), "cairn_requests_total",
            "HTTP requests answered.", atomic_load(&s->m.requests));
    counter(buf, &len, sizeof(buf), "cairn_requests_4xx_total",
            "HTTP requests answered with a 4xx status.",
            atomic_load(&s->m.requests_4xx));
    counter(buf, &len, sizeof(buf), "cairn_requests_5xx_total",
            "HTTP requests answered with a 5xx status.",
            atomic_load(&s->m.requests_5xx));
    counter(buf, &len, sizeof(buf), "cairn_bytes_in_total",
            "Request body bytes received.", atomic_load(&s->m.bytes_in));
    counter(buf, &len, sizeof(buf), "cairn_bytes_out_total",
            "Response body bytes sent.", atomic_load(&s->m.bytes_out));
    counter(buf, &len, sizeof(buf), "cairn_objects_stored_total",
            "Archive objects stored.", atomic_load(&s->m.objects_stored));
    APPEND("# HELP cairn_logins_total Login attempts by result.\n"
           "# TYPE cairn_logins_total counter\n"
           "cairn_logins_total{result=\"ok\"} %llu\n"
           "cairn_logins_total{result=\"failed\"} %llu\n",
           (unsigned long long)atomic_load(&s->m.logins_ok),
           (unsigned long long)atomic_load(&s->m.logins_failed));
    APPEND("# HELP cairn_devices Enrolled devices by state and alert.\n"
           "# TYPE cairn_devices gauge\n");
    for (i = 0; i < 2; i++)
        for (a = 0; a < 3; a++)
            APPEND("cairn_devices{state=\"%s\",alert=\"%s\"} %llu\n",
                   i ? "replaced" : "active", alert_names[a],
                   (unsigned long long)dc.n[i][a]);
    return http_respond_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8",
                              buf, len);
toolong:
    return http_respond_error(r, 500, "server_error", "metrics too long");
}

const struct http_route api_misc_routes[] = {
    {"GET", "/healthz", HTTP_PUBLIC, 0, healthz, NULL},
    {"GET", "/metrics", HTTP_PUBLIC, 0, metrics, NULL},
    {NULL, NULL, 0, 0, NULL, NULL},
};
