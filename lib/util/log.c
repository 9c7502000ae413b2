/*
 * log.c - the process-wide log callback.
 *
 * The library never prints.  Modules call cairn_log(); the program decides
 * where messages go by installing a callback with cairn_log_set().
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn/log.h"

/* Longer messages are cut and end in "..." */
#define LOG_MSG_MAX 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static cairn_log_fn log_fn;
static void *log_arg;

/*
 * Install fn (with its argument arg) as the process-wide log callback; NULL
 * discards messages.  Meant to be called once at start-up; it is safe against
 * concurrent cairn_log() calls but messages racing with it may go to either
 * callback.
 */
void cairn_log_set(cairn_log_fn fn, void *arg)
{
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_arg = arg;
    pthread_mutex_unlock(&log_lock);
}

/*
 * Format a message (printf-style, truncated to LOG_MSG_MAX - 1 bytes) and
 * pass it to the callback, if one is installed.  Thread safe: callbacks are
 * called one at a time, under a lock, so a callback needs no locking of its
 * own - but it must not call cairn_log() itself (that would deadlock).
 */
void cairn_log(int level, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    va_list ap;
    int n;

    /* Skip the formatting when nobody listens. */
    pthread_mutex_lock(&log_lock);
    if (log_fn == NULL) {
        pthread_mutex_unlock(&log_lock);
        return;
    }
    pthread_mutex_unlock(&log_lock);

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg, sizeof(msg), "(unformattable log message)");
    else if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);

    pthread_mutex_lock(&log_lock);
    if (log_fn != NULL)
        log_fn(log_arg, level, msg);
    pthread_mutex_unlock(&log_lock);
}
