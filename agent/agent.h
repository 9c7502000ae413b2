/*
 * agent.h - cairn-agent's core: watch the selection, queue what changed,
 * back it up in batches to the server the computer is enrolled with, and
 * report status (docs/AGENT.md).
 *
 * One thread runs the loop (agent_run): it waits on the watcher, the
 * backup thread's completion and timers; it never blocks on the network.
 * Backups run on a thread of their own, one batch at a time, so changes
 * keep being queued while a long backup runs.  Everything that must
 * survive a crash (the to-do list, the last snapshot) is in the state
 * database; the rest is rebuilt at start.
 */
#ifndef CAIRN_AGENT_H
#define CAIRN_AGENT_H

#include <signal.h>
#include <stdint.h>

struct agent_opts {
    const char *config_path; /* the agent's JSON config (docs/AGENT.md) */
    const char *device_file; /* NULL: cairn's default */
    const char *state_dir;   /* NULL: cli_agent_state_dir()'s default */
    int watch_mode;          /* AGENT_WATCH_* (watch.h) */
    unsigned max_watches;    /* inotify limit of our own (tests); 0: none */
    int once;     /* back up what is queued (a full scan first), then exit */
    int push_poll; /* seconds between looks for push restores; 0: never */
    int verbose;  /* log each batch */
};

struct agent;

/*
 * Read the configuration and the device file, open the state database,
 * the archive on the server (with its index) and the watcher.  A server
 * that cannot be reached is not an error here: the agent queues changes
 * and retries.  0 and *out, or a cairn_err with why (whylen bytes) saying
 * what is wrong, for a person.
 */
int agent_open(const struct agent_opts *o, struct agent **out, char *why,
               size_t whylen);

/*
 * Run until *stop is set (by a signal handler) or, with opts.once, until
 * the queue is empty.  Returns 0, or a cairn_err when the agent cannot go
 * on (the state database failed).
 */
int agent_run(struct agent *a, volatile sig_atomic_t *stop);

void agent_free(struct agent *a);

/* The status file and the pause file in a state folder. */
#define AGENT_STATUS_FILE "status.json"
#define AGENT_PAUSE_FILE "pause"

#endif
