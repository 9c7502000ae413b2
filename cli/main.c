/*
 * main.c - `cairn`: global options and the command table.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cairn/log.h"
#include "cli.h"

static struct cli cli;

static const struct {
    const char *name;
    int (*fn)(struct cli *, int, char **);
    const char *help;
} commands[] = {
    {"init", cmd_init, "create an archive"},
    {"backup", cmd_backup, "back up files and folders"},
    {"snapshots", cmd_snapshots, "list snapshots"},
    {"ls", cmd_ls, "list files in a snapshot"},
    {"restore", cmd_restore, "restore a snapshot or part of it"},
    {"diff", cmd_diff, "show what changed between two snapshots"},
    {"check", cmd_check, "verify the archive"},
    {"stats", cmd_stats, "show archive sizes"},
    {"key", cmd_key, "manage key files (list, add, remove)"},
    {"login", cmd_login, "log in to a Cairn server (password + TOTP)"},
    {"logout", cmd_logout, "end the session with the server"},
    {"enrol", cmd_enrol, "make this computer a device of a server"},
    {"status", cmd_status, "this computer's backup status"},
    {"admin", cmd_admin, "run the organisation (administrators)"},
    {"devices", cmd_devices, "the devices you may restore (server)"},
    {"push", cmd_push, "restore a device's files onto another (admins)"},
    {"request", cmd_request, "ask the IT office to restore a shared device"},
};

static void usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: cairn [-r DIR] [--password-file F] [--password-command "
               "CMD]\n             [--json] [-q] [-v] [--threads N] "
               "[--device-file F]\n             [--device ID [--escrow] "
               "[--escrow-passphrase-file F]]\n             COMMAND [ARGS]\n\n"
               "commands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n\nSee docs/CLI.md for every option.\n", "version",
            "print the version");
}

static void on_signal(int sig)
{
    (void)sig;
    cli.cancel = 1;
}

static void on_log(void *arg, int level, const char *msg)
{
    struct cli *c = arg;

    if (level == CAIRN_LOG_DEBUG && !c->verbose)
        return;
    if (level >= CAIRN_LOG_INFO && (c->quiet || !c->verbose))
        return;
    fprintf(stderr, "cairn: %s%s\n",
            level == CAIRN_LOG_ERROR  ? "error: "
            : level == CAIRN_LOG_WARN ? "warning: "
                                      : "",
            msg);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"repo", required_argument, NULL, 'r'},
        {"password-file", required_argument, NULL, 'P'},
        {"password-command", required_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"threads", required_argument, NULL, 't'},
        {"device-file", required_argument, NULL, 'D'},
        {"device", required_argument, NULL, 'I'},
        {"escrow", no_argument, NULL, 'E'},
        {"escrow-passphrase-file", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct sigaction sa;
    struct rlimit rl;
    const char *cmd, *flag_file = NULL, *flag_command = NULL;
    char *end;
    size_t i;
    int ch;

    /*
     * Pack and file buffers are megabytes each and pass between threads.
     * A fixed mmap threshold keeps glibc from raising it after the first
     * free (then such buffers would live on in per-thread arenas and the
     * resident size would grow far beyond what is in use).
     */
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    mallopt(M_ARENA_MAX, 4);

    cli.repo = getenv("CAIRN_REPOSITORY");
    cli.password_file = getenv("CAIRN_PASSWORD_FILE");
    cli.password_command = getenv("CAIRN_PASSWORD_COMMAND");
    cli.remote_device = getenv("CAIRN_DEVICE");
    if (cli.remote_device != NULL && cli.remote_device[0] == '\0')
        cli.remote_device = NULL;
    while ((ch = getopt_long(argc, argv, "+r:qvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            cli.repo = optarg;
            break;
        case 'P':
            flag_file = optarg;
            break;
        case 'C':
            flag_command = optarg;
            break;
        case 'j':
            cli.json = 1;
            break;
        case 'q':
            cli.quiet = 1;
            break;
        case 'v':
            cli.verbose = 1;
            break;
        case 't':
            cli.threads = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || cli.threads < 1 || cli.threads > 64)
                return cli_usage(&cli, "--threads takes a number 1..64");
            break;
        case 'D':
            cli.device_file = optarg;
            break;
        case 'I':
            cli.remote_device = optarg;
            break;
        case 'E':
            cli.escrow = 1;
            break;
        case 'F':
            cli.escrow_passphrase_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (cli.remote_device != NULL && cli.repo != NULL && cli.repo[0] != '\0')
        return cli_usage(&cli, "give -r DIR or --device ID, not both");
    /* A flag beats the environment; two flags are a mistake. */
    if (flag_file != NULL && flag_command != NULL)
        return cli_usage(&cli, "give --password-file or --password-command, "
                               "not both");
    if (flag_file != NULL || flag_command != NULL) {
        cli.password_file = flag_file;
        cli.password_command = flag_command;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "version") == 0) {
        if (cli.json)
            cli_json_emit(json_pack("{s:s, s:s}", "message_type", "version",
                                    "version", CAIRN_VERSION));
        else
            printf("cairn %s\n", CAIRN_VERSION);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    cli.progress = !cli.json && !cli.quiet && isatty(STDERR_FILENO);
    cairn_log_set(on_log, &cli);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Deep trees keep one descriptor open per level. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(cmd, commands[i].name) == 0) {
            int x;

            optind++;
            /* Each command parses argv[optind - 1 ..] with getopt anew. */
            x = commands[i].fn(&cli, argc - optind + 1, argv + optind - 1);
            cli_remote_close(&cli);
            cli_device_free(cli.device);
            return x;
        }
    }
    return cli_usage(&cli, "unknown command '%s' (see cairn --help)", cmd);
}
