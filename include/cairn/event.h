/*
 * cairn/event.h - what long operations (backup, restore, check) tell their
 * caller while they run: progress, and every file or object they could not
 * handle.  The library never prints; programs turn events into terminal
 * output or JSON lines.
 */
#ifndef CAIRN_EVENT_H
#define CAIRN_EVENT_H

#include <stdint.h>

enum cairn_event_kind {
    CAIRN_EV_PROGRESS = 1,     /* progress is set */
    CAIRN_EV_FILE_ERROR = 2,   /* path could not be read/written: err, detail */
    CAIRN_EV_DAMAGED_PACK = 3, /* name: the pack; err, detail */
    CAIRN_EV_DAMAGED_FILE = 4, /* path (in snapshot name) has damaged content */
    CAIRN_EV_PROBLEM = 5,      /* any other problem found: detail */
    CAIRN_EV_INFO = 6,         /* informational: detail */
};

struct cairn_progress {
    uint64_t files_done, files_total; /* totals 0 when not known yet */
    uint64_t bytes_done, bytes_total;
    uint64_t errors;
    int64_t elapsed_ns;
    int totals_final; /* the totals will not grow any more */
};

struct cairn_event {
    int kind;
    const char *path;   /* a file path, or NULL */
    const char *name;   /* an object name (pack id hex), snapshot id, or NULL */
    int err;            /* a cairn_err, or 0 */
    int sys_errno;      /* the errno behind err, or 0 */
    const char *detail; /* words for a person, or NULL */
    const struct cairn_progress *progress;
};

/* Called from the operation's own thread(s), serialised by the library:
 * never two calls at once for one operation. */
typedef void (*cairn_event_fn)(void *arg, const struct cairn_event *ev);

#endif
