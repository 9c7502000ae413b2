/*
 * cli_output.c - progress and problems during long commands, for a person
 * (one redrawn line on stderr) or a script (JSON lines on stdout).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cairn/err.h"
#include "cli.h"

static int64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cli_progress_clear(struct cli_events *ce)
{
    if (ce->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        ce->drawn = 0;
    }
}

static void fmt_dur(int64_t s, char *buf, size_t len)
{
    if (s >= 3600)
        snprintf(buf, len, "%lld:%02lld:%02lld", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
    else
        snprintf(buf, len, "%lld:%02lld", (long long)(s / 60),
                 (long long)(s % 60));
}

static void draw(struct cli_events *ce, const struct cairn_progress *p)
{
    char done[32], total[32], rate[32], el[32], eta[48];
    double secs = (double)p->elapsed_ns / 1e9;
    double bps = secs > 0 ? (double)p->bytes_done / secs : 0;

    cli_fmt_bytes(p->bytes_done, done, sizeof(done));
    cli_fmt_bytes((uint64_t)bps, rate, sizeof(rate));
    fmt_dur((int64_t)secs, el, sizeof(el));
    eta[0] = '\0';
    if (p->totals_final && p->bytes_total > 0 && bps > 0 &&
        p->bytes_done <= p->bytes_total) {
        char t[32];

        fmt_dur((int64_t)((double)(p->bytes_total - p->bytes_done) / bps), t,
                sizeof(t));
        snprintf(eta, sizeof(eta), ", ETA %s", t);
    }
    if (p->files_total > 0 && p->totals_final) {
        cli_fmt_bytes(p->bytes_total, total, sizeof(total));
        fprintf(stderr,
                "\r\033[K[%s] %s: %llu / %llu files, %s / %s, %s/s%s", el,
                ce->what, (unsigned long long)p->files_done,
                (unsigned long long)p->files_total, done, total, rate, eta);
    } else {
        fprintf(stderr, "\r\033[K[%s] %s: %llu files, %s, %s/s", el, ce->what,
                (unsigned long long)p->files_done, done, rate);
    }
    if (p->errors > 0)
        fprintf(stderr, ", %llu errors", (unsigned long long)p->errors);
    fflush(stderr);
    ce->drawn = 1;
}

void cli_on_event(void *arg, const struct cairn_event *ev)
{
    struct cli_events *ce = arg;
    struct cli *c = ce->c;
    const struct cairn_progress *p = ev->progress;
    int64_t now;

    switch (ev->kind) {
    case CAIRN_EV_PROGRESS:
        if (c->progress) {
            draw(ce, p);
        } else if (c->json) {
            now = mono_ns();
            if (now - ce->last_json_ns < 1000000000)
                return;
            ce->last_json_ns = now;
            cli_json_emit(json_pack(
                "{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:I, s:f, s:f}",
                "message_type", "status", "action", ce->what, "files_done",
                (json_int_t)p->files_done, "files_total",
                (json_int_t)p->files_total, "bytes_done",
                (json_int_t)p->bytes_done, "bytes_total",
                (json_int_t)p->bytes_total, "totals_final", p->totals_final,
                "errors", (json_int_t)p->errors, "percent",
                p->totals_final && p->bytes_total
                    ? 100.0 * (double)p->bytes_done / (double)p->bytes_total
                    : 0.0,
                "elapsed_s", (double)p->elapsed_ns / 1e9));
        }
        return;
    case CAIRN_EV_INFO:
        if (c->json)
            cli_json_emit(json_pack("{s:s, s:o}", "message_type", "info",
                                    "detail",
                                    cli_json_str(ev->detail ? ev->detail
                                                            : "")));
        else if (c->verbose) {
            cli_progress_clear(ce);
            fprintf(stderr, "cairn: %s\n", ev->detail ? ev->detail : "");
        }
        return;
    default:
        break;
    }

    /* Problems: one line each, in words a person can act on. */
    if (c->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s}", "message_type",
            ev->kind == CAIRN_EV_FILE_ERROR ? "error" : "problem", "kind",
            ev->kind == CAIRN_EV_FILE_ERROR      ? "file"
            : ev->kind == CAIRN_EV_DAMAGED_PACK  ? "damaged_pack"
            : ev->kind == CAIRN_EV_DAMAGED_FILE  ? "damaged_file"
                                                 : "other",
            "code", cairn_errname(ev->err));
        if (ev->path != NULL)
            cli_json_set_path(o, "path", ev->path);
        if (ev->name != NULL)
            json_object_set_new(
                o, ev->kind == CAIRN_EV_DAMAGED_PACK ? "pack" : "snapshot",
                cli_json_str(ev->name));
        if (ev->detail != NULL)
            json_object_set_new(o, "error", cli_json_str(ev->detail));
        cli_json_emit(o);
        return;
    }
    cli_progress_clear(ce);
    switch (ev->kind) {
    case CAIRN_EV_FILE_ERROR:
        fprintf(stderr, "cairn: %s %s: %s\n",
                strcmp(ce->what, "restore") == 0 ? "cannot restore"
                                                 : "skipped",
                ev->path ? ev->path : "?", ev->detail ? ev->detail : "");
        break;
    case CAIRN_EV_DAMAGED_PACK:
        fprintf(stderr, "cairn: damaged pack %s: %s\n",
                ev->name ? ev->name : "?", ev->detail ? ev->detail : "");
        break;
    case CAIRN_EV_DAMAGED_FILE:
        fprintf(stderr, "cairn: damaged file %s%s%.8s%s: %s\n",
                ev->path ? ev->path : "?", ev->name ? " (snapshot " : "",
                ev->name ? ev->name : "", ev->name ? ")" : "",
                ev->detail ? ev->detail : "content cannot be read");
        break;
    default:
        fprintf(stderr, "cairn: problem: %s%s%s\n",
                ev->detail ? ev->detail : "", ev->path ? " " : "",
                ev->path ? ev->path : "");
        break;
    }
}
