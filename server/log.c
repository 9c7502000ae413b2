/*
 * log.c - cairnd's log: one line per message on stderr,
 *   "2026-11-26T10:00:00Z info: message"
 * (systemd's journal takes stderr as it is).  Thread safe: a line is
 * formatted in full first, then written with one write(2), so lines of
 * concurrent threads never interleave.  libcairn's messages arrive through
 * the cairn_log callback installed by srv_log_set_level.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/log.h"
#include "srv.h"

#define LINE_MAX_LEN 2048

static atomic_int log_level = SRV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void log_line(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_line(int level, const char *fmt, va_list ap)
{
    char line[LINE_MAX_LEN];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    r = snprintf(line + n, sizeof(line) - n, "%s: ",
                 level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
    if (r > 0)
        n += (size_t)r;
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r < 0)
        r = 0;
    if ((size_t)r >= sizeof(line) - n) {
        /* Cut: end in "..." */
        n = sizeof(line) - 5;
        memcpy(line + n, "...", 3);
        n += 3;
    } else {
        n += (size_t)r;
    }
    /* One line per message: no message may forge another. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, n);
        if (w <= 0)
            break;
        n -= (size_t)w;
    }
}

/* libcairn's messages, at their own levels. */
static void from_library(void *arg, int level, const char *msg)
{
    (void)arg;
    srv_log(level, "%s", msg);
}

/*
 * Log messages of level and more urgent (enum srv_log_level); install the
 * libcairn callback.  Call at start-up, before threads.
 */
void srv_log_set_level(int level)
{
    atomic_store(&log_level, level);
    cairn_log_set(from_library, NULL);
}

/* Log a message at level (printf-style).  Thread safe.  Never pass a
 * secret. */
void srv_log(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > atomic_load(&log_level))
        return;
    va_start(ap, fmt);
    log_line(level, fmt, ap);
    va_end(ap);
}
