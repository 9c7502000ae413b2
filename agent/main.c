/*
 * main.c - `cairn-agent`: options, signals, logging; the work is in
 * agent.c.  Run by systemd (packaging/cairn-agent.service) as a notify
 * service with a watchdog, or by hand with --once for a single pass.
 */
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn/err.h"
#include "cairn/log.h"

#include "agent.h"
#include "watch.h"

static volatile sig_atomic_t stop;
static int verbose;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* One line per message on stderr, which systemd sends to the journal
 * (the "<N>" prefix gives the journal its priority). */
static void on_log(void *arg, int level, const char *msg)
{
    static const int prio[] = {3, 4, 6, 7};
    struct timespec ts;
    struct tm tm;
    char when[32];

    (void)arg;
    if (level == CAIRN_LOG_DEBUG && !verbose)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    if (getenv("JOURNAL_STREAM") != NULL)
        fprintf(stderr, "<%d>%s\n", prio[level & 3], msg);
    else
        fprintf(stderr, "%s.%03ldZ cairn-agent: %s%s\n", when,
                ts.tv_nsec / 1000000,
                level == CAIRN_LOG_ERROR  ? "error: "
                : level == CAIRN_LOG_WARN ? "warning: "
                                          : "",
                msg);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn-agent [--config FILE] [--device-file FILE] "
            "[--state-dir DIR]\n"
            "                   [--watch auto|inotify|fanotify] "
            "[--push-poll SECS] [--once] [-v]\n\n"
            "Backs up the folders of its configuration to the server this "
            "computer is\nenrolled with (cairn enrol), continuously.  See "
            "docs/AGENT.md.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"device-file", required_argument, NULL, 'D'},
        {"state-dir", required_argument, NULL, 's'},
        {"watch", required_argument, NULL, 'w'},
        {"max-watches", required_argument, NULL, 'm'},
        {"once", no_argument, NULL, '1'},
        {"push-poll", required_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct agent_opts o;
    struct agent *a = NULL;
    struct sigaction sa;
    char why[512], cfg[PATH_MAX];
    const char *home = getenv("HOME");
    int ch, rc;

    memset(&o, 0, sizeof(o));
    o.watch_mode = AGENT_WATCH_AUTO;
    o.push_poll = 120;
    while ((ch = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config_path = optarg;
            break;
        case 'D':
            o.device_file = optarg;
            break;
        case 's':
            o.state_dir = optarg;
            break;
        case 'w':
            if (strcmp(optarg, "auto") == 0)
                o.watch_mode = AGENT_WATCH_AUTO;
            else if (strcmp(optarg, "inotify") == 0)
                o.watch_mode = AGENT_WATCH_INOTIFY;
            else if (strcmp(optarg, "fanotify") == 0)
                o.watch_mode = AGENT_WATCH_FANOTIFY;
            else {
                usage(stderr);
                return 2;
            }
            break;
        case 'm':
            o.max_watches = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case '1':
            o.once = 1;
            break;
        case 'p':
            o.push_poll = atoi(optarg);
            break;
        case 'v':
            o.verbose = verbose = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("cairn-agent %s\n", CAIRN_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o.config_path == NULL) {
        if (geteuid() == 0 || home == NULL)
            snprintf(cfg, sizeof(cfg), "/etc/cairn/agent.json");
        else
            snprintf(cfg, sizeof(cfg), "%s/.config/cairn/agent.json", home);
        o.config_path = cfg;
    }
    /* Memory: buffers of a megabyte or more go straight back to the
     * system when freed, and few arenas (a long-running daemon should not
     * keep a heap per thread that ever ran). */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
    cairn_log_set(on_log, NULL);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if ((rc = agent_open(&o, &a, why, sizeof(why))) != 0) {
        cairn_log(CAIRN_LOG_ERROR, "%s", why);
        return rc == CAIRN_ENOENT || rc == CAIRN_EINVAL ? 2 : 1;
    }
    rc = agent_run(a, &stop);
    agent_free(a);
    return rc == 0 ? 0 : 1;
}
