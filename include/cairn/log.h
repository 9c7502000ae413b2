/*
 * cairn/log.h - the library never prints; it reports through this callback.
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum cairn_log_level {
    CAIRN_LOG_ERROR = 0,
    CAIRN_LOG_WARN = 1,
    CAIRN_LOG_INFO = 2,
    CAIRN_LOG_DEBUG = 3,
};

typedef void (*cairn_log_fn)(void *arg, int level, const char *msg);

/* Install the process-wide log callback (NULL: discard).  Not thread safe
 * with respect to concurrent logging; call once at start-up. */
void cairn_log_set(cairn_log_fn fn, void *arg);

/* Format and send a message to the callback, if any.  Thread safe. */
void cairn_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
