/*
 * cli.h - what the commands of `cairn` share.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <jansson.h>
#include <stdint.h>

#include "cairn/event.h"
#include "cairn/repo.h"

/* Exit codes (docs/CLI.md). */
enum {
    EXIT_OK = 0,
    EXIT_ERROR = 1,
    EXIT_USAGE = 2,
    EXIT_INCOMPLETE = 3,
    EXIT_DAMAGE = 4,
    EXIT_NOREPO = 10,
    EXIT_LOCKED = 11,
    EXIT_AUTH = 12,
};

struct cli {
    const char *repo;
    const char *password_file;
    const char *password_command;
    const char *new_password_file; /* init, key add */
    int interactive_new; /* key add: ask on the terminal for the new one */
    int json, quiet, verbose, threads;
    int progress; /* draw progress on stderr (a terminal, not quiet/json) */
    volatile int cancel;
};

/* Print "cairn: MESSAGE" to stderr (and a JSON error line with --json). */
void cli_error(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_warn(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print a usage error and return EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Exit code for a library error. */
int cli_exit_for(int rc);

/* Read a passphrase (see docs/CLI.md for the sources).  new_pass: for init
 * and key add (asks twice on a terminal).  *out is malloc'ed; wipe it. */
int cli_password(struct cli *c, int new_pass, char **out, size_t *out_len);
void cli_password_free(char *p, size_t len);

/* Open the archive named by -r (messages and exit codes handled): returns
 * EXIT_OK or an exit code.  load_index: load the index as well. */
int cli_open_repo(struct cli *c, int load_index, struct cairn_repo **out);

/* Output helpers. */
void cli_json_emit(json_t *obj); /* prints one line and takes the reference */
/* Strings from the file system are bytes: invalid UTF-8 shows as U+FFFD,
 * and cli_json_set_path adds KEY_hex with the exact bytes then. */
int cli_utf8_valid(const char *s);
json_t *cli_json_str(const char *s);
void cli_json_set_path(json_t *o, const char *key, const char *path);
/* Print to stderr only (after a JSON summary, the summary is the last
 * line on stdout). */
void cli_error_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_fmt_bytes(uint64_t n, char *buf, size_t len);
void cli_fmt_time(int64_t ns, char *buf, size_t len);     /* local, seconds */
void cli_fmt_time_rfc3339(int64_t ns, char *buf, size_t len); /* UTC, ns */
void cli_hex(const uint8_t *id, char out[65]);
/* Parse "16M", "512K", "1G", "4096". */
int cli_parse_size(const char *s, uint64_t *out);

/* The event callback the long commands use: progress on a terminal or as
 * JSON status lines, errors on stderr or as JSON error lines. */
struct cli_events {
    struct cli *c;
    const char *what; /* "backup", "restore", "check" */
    int64_t last_json_ns;
    int drawn;
};
void cli_on_event(void *arg, const struct cairn_event *ev);
/* Clear the progress line, if drawn. */
void cli_progress_clear(struct cli_events *ce);

/* Entries (cmd_ls.c). */
#include "cairn/tree.h"
const char *cli_type_name(int type);
json_t *cli_entry_json(const char *path, const struct cairn_tree_entry *e);
void cli_entry_long(const char *path, const struct cairn_tree_entry *e);

/* Resolve a snapshot spec, with the error reported; EXIT_OK or a code. */
int cli_find_snapshot(struct cli *c, struct cairn_repo *r, const char *spec,
                      struct cairn_snapshot **out);

int cmd_init(struct cli *c, int argc, char **argv);
int cmd_backup(struct cli *c, int argc, char **argv);
int cmd_snapshots(struct cli *c, int argc, char **argv);
int cmd_ls(struct cli *c, int argc, char **argv);
int cmd_restore(struct cli *c, int argc, char **argv);
int cmd_diff(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_stats(struct cli *c, int argc, char **argv);
int cmd_key(struct cli *c, int argc, char **argv);

#endif
