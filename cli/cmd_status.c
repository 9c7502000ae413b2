/*
 * cmd_status.c - `cairn status`: this computer's backup status as the
 * server sees it (with a person's session), or what the device file knows
 * (without one).  Also the status report a backup to the server sends.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cairn/backup.h"
#include "cli.h"

void cli_device_report(struct cli *c, const struct cairn_backup_result *res)
{
    struct cli_device *d = c->device;
    struct cli_api *a = NULL;
    json_t *req;
    char path[128];
    uint64_t todo;

    if (d == NULL)
        return;
    /* A complete backup leaves nothing to do; otherwise what could not be
     * read is still to do. */
    todo = res->complete ? 0 : res->errors;
    req = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "phase", "idle",
                    "files_selected", (json_int_t)res->files,
                    "bytes_selected", (json_int_t)res->bytes, "files_todo",
                    (json_int_t)todo, "bytes_todo", (json_int_t)0, "errors",
                    (json_int_t)res->errors);
    snprintf(path, sizeof(path), "/api/v1/devices/%s/status", d->device_id);
    if (req == NULL || cli_api_new(d->server, d->pin, d->token, &a) != 0 ||
        cli_api_call(a, "POST", path, req, NULL) != 0)
        cli_warn(c, "the backup is stored, but its status could not be "
                    "reported to %s: %s",
                 d->server,
                 a != NULL ? cli_api_last_error(a)->message : "out of memory");
    cli_api_free(a);
    json_decref(req);
}

/* The device in a GET /api/v1/devices answer (an array, or an object
 * with "devices"); borrowed. */
static json_t *find_device(json_t *res, const char *id)
{
    json_t *arr = json_is_array(res) ? res : json_object_get(res, "devices");
    json_t *v;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        const char *vid = json_string_value(json_object_get(v, "id"));

        if (vid == NULL)
            vid = json_string_value(json_object_get(v, "device_id"));
        if (vid != NULL && strcmp(vid, id) == 0)
            return v;
    }
    return NULL;
}

static void print_field(json_t *o, const char *key, const char *label)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL)
        return;
    if (json_is_string(v))
        printf("%-18s %s\n", label, json_string_value(v));
    else if (json_is_integer(v))
        printf("%-18s %lld\n", label, (long long)json_integer_value(v));
    else if (json_is_real(v))
        printf("%-18s %.1f\n", label, json_real_value(v));
    else if (json_is_null(v))
        printf("%-18s never\n", label);
    else if (json_is_boolean(v))
        printf("%-18s %s\n", label, json_is_true(v) ? "yes" : "no");
}

int cli_agent_state_dir(const char *given, char *out, size_t len)
{
    const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

    if (given != NULL && given[0] != '\0')
        snprintf(out, len, "%s", given);
    else if (geteuid() == 0)
        snprintf(out, len, "/var/lib/cairn/agent");
    else if (x != NULL && x[0] == '/')
        snprintf(out, len, "%s/cairn-agent", x);
    else if (home != NULL && home[0] == '/')
        snprintf(out, len, "%s/.local/state/cairn-agent", home);
    else
        return -1;
    return 0;
}

/* "1h", "4h", "1d", "90m", "30s", "3600": seconds, or -1. */
static int64_t parse_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (end == s || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    if (strcmp(end, "d") == 0)
        return v * 86400;
    return -1;
}

/* Ask the agent to pause until `until` (0: resume) through its pause
 * file; it looks at it every few seconds. */
static int agent_pause(struct cli *c, const char *dir, int64_t until)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 24], buf[32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/pause", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(buf, sizeof(buf), "%lld\n", (long long)until);
    if ((f = fopen(tmp, "w")) == NULL || fputs(buf, f) < 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        cli_error(c, "cannot write %s: %s (is the agent's state folder "
                     "right? --agent-state DIR)",
                  path, strerror(errno));
        return EXIT_ERROR;
    }
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:I}", "message_type", "pause",
                                "paused_until", (json_int_t)until));
    else if (until == 0)
        printf("backups resume\n");
    else {
        char t[64];

        cli_fmt_time(until * 1000000000, t, sizeof(t));
        printf("backups paused until %s\n", t);
    }
    return EXIT_OK;
}

/* A running agent rewrites its status file every few seconds (its loop
 * wakes at least every 5 s); older than this, it is not running. */
#define AGENT_STATUS_STALE_SECS 60

/*
 * The agent's own status file, or NULL.  One whose agent is not running
 * (killed, crashed, or unable to write to its state folder) but whose
 * phase is not "stopped" gets "stale": true and "stale_secs", its age.
 */
static json_t *agent_status(const char *dir)
{
    char path[PATH_MAX + 16];
    const char *phase;
    json_int_t age;
    json_t *ag;

    snprintf(path, sizeof(path), "%s/status.json", dir);
    if ((ag = json_load_file(path, 0, NULL)) == NULL)
        return NULL;
    phase = json_string_value(json_object_get(ag, "phase"));
    if (!json_is_object(ag) || (phase != NULL && strcmp(phase, "stopped") == 0))
        return ag;
    age = (json_int_t)time(NULL) -
          json_integer_value(json_object_get(ag, "updated"));
    if (age > AGENT_STATUS_STALE_SECS) {
        json_object_set_new(ag, "stale", json_true());
        json_object_set_new(ag, "stale_secs", json_integer(age));
    }
    return ag;
}

static void print_agent(json_t *ag)
{
    char t[64];
    json_t *v;
    size_t i;
    static const char *const times[][2] = {
        {"last_backup", "last backup"},
        {"last_complete_backup", "last complete"},
        {"next_backup", "next backup"},
        {"next_verify", "next full scan"},
        {"paused_until", "paused until"},
    };

    printf("\nagent\n");
    if (json_is_true(json_object_get(ag, "stale")))
        printf("%-18s not running? its status was last written %lld min "
               "ago (killed, crashed, or its state folder cannot be "
               "written: is that disk full?); what follows is from "
               "then\n",
               "WARNING",
               (long long)(json_integer_value(json_object_get(ag, "stale_secs")) /
                           60));
    print_field(ag, "phase", "phase");
    print_field(ag, "watcher", "watcher");
    print_field(ag, "files_todo", "to do");
    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        v = json_object_get(ag, times[i][0]);
        if (json_integer_value(v) > 0) {
            cli_fmt_time(json_integer_value(v) * 1000000000, t, sizeof(t));
            printf("%-18s %s\n", times[i][1], t);
        }
    }
    print_field(ag, "errors", "files not read");
    json_array_foreach(json_object_get(ag, "recent_errors"), i, v)
        printf("  %s: %s\n", json_string_value(json_object_get(v, "path")),
               json_string_value(json_object_get(v, "reason")));
    v = json_object_get(ag, "last_error");
    if (json_string_length(v) > 0)
        printf("%-18s %s\n", "last error", json_string_value(v));
}

int cmd_status(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"agent-state", required_argument, NULL, 'a'},
        {"pause", required_argument, NULL, 'p'},
        {"resume", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *agent_dir = NULL, *pause = NULL;
    char adir[PATH_MAX];
    int resume = 0;
    json_t *ag;
    struct cli_session *s = NULL;
    struct cli_device *d = NULL;
    struct cli_api *a = NULL;
    json_t *res = NULL, *dev = NULL, *out;
    char t[64];
    int ch, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'j')
            c->json = 1;
        else if (ch == 'a')
            agent_dir = optarg;
        else if (ch == 'p')
            pause = optarg;
        else if (ch == 'r')
            resume = 1;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage(c, "status takes no arguments");
    if (cli_agent_state_dir(agent_dir, adir, sizeof(adir)) != 0)
        adir[0] = '\0';
    if (pause != NULL || resume) {
        int64_t secs = resume ? 0 : parse_duration(pause);

        if (secs < 0)
            return cli_usage(c, "--pause takes a duration: 1h, 4h, 1d, 90m");
        return agent_pause(c, adir, resume ? 0 : (int64_t)time(NULL) + secs);
    }
    ag = adir[0] ? agent_status(adir) : NULL;
    if ((x = cli_device_load(c, &d)) != EXIT_OK) {
        if (x == EXIT_NOREPO)
            cli_error(c, "this computer is not enrolled with a server "
                         "(cairn enrol)");
        return x == EXIT_NOREPO ? EXIT_NOREPO : x;
    }
    /* The server's view needs a person's session with the same server. */
    if (cli_session_load(c, &s) == EXIT_OK && s->server != NULL &&
        strcmp(s->server, d->server) == 0 &&
        cli_api_new(s->server, s->pin, s->token, &a) == 0) {
        if (cli_api_call(a, "GET", "/api/v1/devices", NULL, &res) == 0)
            dev = find_device(res, d->device_id);
        else
            cli_warn(c, "cannot ask the server for this device's status: %s",
                     cli_api_last_error(a)->message);
    }
    if (c->json) {
        out = dev != NULL ? json_deep_copy(dev) : json_object();
        json_object_set_new(out, "message_type", json_string("status"));
        json_object_set_new(out, "device_id", json_string(d->device_id));
        json_object_set_new(out, "server", json_string(d->server));
        if (d->name != NULL)
            json_object_set_new(out, "name", json_string(d->name));
        json_object_set_new(out, "from_server", json_boolean(dev != NULL));
        cli_json_emit(out);
        if (ag != NULL) {
            json_object_set_new(ag, "message_type", json_string("agent"));
            cli_json_emit(json_incref(ag));
        }
    } else {
        printf("%-18s %s\n", "device", d->device_id);
        printf("%-18s %s\n", "server", d->server);
        printf("%-18s %s\n", "name", d->name ? d->name : "");
        printf("%-18s %s\n", "category", d->category ? d->category : "");
        printf("%-18s %s\n", "department",
               d->department ? d->department : "");
        if (d->enrolled_at > 0) {
            cli_fmt_time(d->enrolled_at * 1000000000, t, sizeof(t));
            printf("%-18s %s\n", "enrolled", t);
        }
        if (dev != NULL) {
            print_field(dev, "phase", "phase");
            print_field(dev, "last_activity", "last activity");
            print_field(dev, "last_backup", "last backup");
            print_field(dev, "first_backup", "first full backup");
            print_field(dev, "next_backup", "next backup");
            print_field(dev, "percent", "% complete");
            print_field(dev, "files_selected", "files selected");
            print_field(dev, "bytes_selected", "bytes selected");
            print_field(dev, "files_todo", "files to do");
            print_field(dev, "bytes_todo", "bytes to do");
            print_field(dev, "bytes_stored", "bytes stored");
            print_field(dev, "errors", "errors");
            print_field(dev, "alert", "alert");
        } else {
            printf("(log in with `cairn login --server %s` to see the "
                   "server's view: last backup, completeness, alerts)\n",
                   d->server);
        }
        if (ag != NULL)
            print_agent(ag);
        else
            printf("\n(no cairn-agent state in %s)\n", adir);
    }
    json_decref(ag);
    json_decref(res);
    cli_api_free(a);
    cli_session_free(s);
    cli_device_free(d);
    return EXIT_OK;
}
