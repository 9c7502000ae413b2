/*
 * cli.h - what the commands of `cairn` share.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <jansson.h>
#include <limits.h>
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
    const char *escrow_passphrase_file; /* enrol --replaces of a shared device */
    int interactive_new; /* key add: ask on the terminal for the new one */
    int json, quiet, verbose, threads;
    int progress; /* draw progress on stderr (a terminal, not quiet/json) */
    volatile int cancel;
    const char *device_file;   /* --device-file; else $CAIRN_DEVICE_FILE */
    struct cli_device *device; /* set when the archive is the server's */
    /* --device ID ($CAIRN_DEVICE): another device's archive on the server
     * of the saved session (cli_remote.c); --escrow: its key from the
     * escrow passphrase (administrators). */
    const char *remote_device;
    int escrow;
    struct cli_api *remote_api; /* the session's client, while open */
    const char *remote_server;  /* its server URL (borrowed from the API) */
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

/* ---- the server's API (cli_api.c) ---- */
struct cli_api;
struct cli_api_error {
    int transport;       /* no HTTP answer (or not JSON): message says why */
    long status;         /* HTTP status */
    char code[32];       /* the API's error code ("forbidden", ...) */
    char message[512];   /* the server's words */
    char starts_at[64];  /* wave_not_started: when the wave starts */
    long retry_after;    /* too_many: seconds, or 0 */
};
/* "https://host:port" from URL (scheme added when missing, trailing
 * slashes dropped); malloc'ed, NULL if empty. */
char *cli_api_normalize_url(const char *url);
/* A client of the server at url.  pin: "sha256//<base64>" (the server's
 * key; then the certificate need not be signed by a known CA) or NULL (the
 * system's CAs).  token: the bearer token, or NULL.  0 or -1. */
int cli_api_new(const char *url, const char *pin, const char *token,
                struct cli_api **out);
void cli_api_free(struct cli_api *a);
int cli_api_set_token(struct cli_api *a, const char *token);
const char *cli_api_url(const struct cli_api *a);
const char *cli_api_pin(const struct cli_api *a);
/* METHOD path (e.g. "/api/v1/me") with body (borrowed; NULL: none).  On a
 * 2xx answer: 0, and *out (may be NULL) = the JSON answer (NULL when
 * empty; the caller decrefs).  Otherwise -1; see cli_api_last_error. */
int cli_api_call(struct cli_api *a, const char *method, const char *path,
                 json_t *body, json_t **out);
const struct cli_api_error *cli_api_last_error(const struct cli_api *a);
/* Print the last error as "cairn: error: WHAT: ..." with advice; returns
 * the exit code (EXIT_AUTH for credentials, else EXIT_ERROR). */
int cli_api_report(struct cli *c, const struct cli_api *a, const char *what);
/* First contact: connect without verification and give the pin of the
 * server's public key.  0, or -1 with err set. */
int cli_api_fetch_pin(const char *url, char *out, size_t outlen, char *err,
                      size_t errlen);
/* Base64 (standard alphabet, padded).  encode: malloc'ed string or NULL;
 * decode: 0 and *out malloc'ed, or -1. */
char *cli_b64_encode(const void *buf, size_t len);
int cli_b64_decode(const char *s, uint8_t **out, size_t *out_len);
/* Percent-encode a path segment; malloc'ed. */
char *cli_url_escape(const char *s);

/* ---- files of a server's client (cli_device.c) ---- */
/* The device state file: this computer's enrolment. */
struct cli_device {
    char path[PATH_MAX];
    char *server, *pin, *device_id, *token;
    char *name, *category, *department;
    int64_t enrolled_at;
    uint8_t archive_id[CAIRN_ID_LEN];
    uint8_t key[CAIRN_KEY_LEN];
};
/* Path of the device file (--device-file, $CAIRN_DEVICE_FILE,
 * /var/lib/cairn/device.json for root, else ~/.config/cairn/device.json). */
int cli_device_path(struct cli *c, char *out, size_t len);
/* EXIT_OK, EXIT_NOREPO when there is none (nothing printed), or
 * EXIT_ERROR (reported). */
int cli_device_load(struct cli *c, struct cli_device **out);
/* Write d (mode 0600, crash-safe) to d->path or the default path. */
int cli_device_save(struct cli *c, const struct cli_device *d);
void cli_device_free(struct cli_device *d);
/* The session file ($CAIRN_SESSION_FILE or ~/.config/cairn/session.json). */
struct cli_session {
    char *server, *pin, *token, *username;
};
int cli_session_load(struct cli *c, struct cli_session **out);
int cli_session_save(struct cli *c, const struct cli_session *s);
int cli_session_remove(struct cli *c);
void cli_session_free(struct cli_session *s);
/* A secret from a file, else a command (sh -c), else the terminal. */
struct cli_secret_src {
    const char *what;    /* "password", "TOTP code" */
    const char *file, *command;
    const char *prompt;  /* on the terminal */
    const char *hint;    /* how to give it without a terminal */
    int echo;            /* show what is typed (user names) */
};
int cli_secret(struct cli *c, const struct cli_secret_src *src, char **out,
               size_t *out_len);
void cli_secret_free(char *s, size_t len);
/* Ask a yes/no question on the terminal: 1 yes, 0 no, -1 no terminal. */
int cli_confirm(const char *question);

/* ---- logging in (cmd_login.c) ---- */
struct cli_login {
    const char *server, *pin, *username;
    const char *password_file, *totp_command, *totp_file, *recovery_file;
};
/* Options every command that logs in takes (codes 1000..1099). */
#define CLI_LOGIN_OPTIONS                                                 \
    {"server", required_argument, NULL, 1001},                            \
        {"pin", required_argument, NULL, 1002},                           \
        {"username", required_argument, NULL, 1003},                      \
        {"password-file", required_argument, NULL, 1004},                 \
        {"totp-command", required_argument, NULL, 1005},                  \
        {"totp-file", required_argument, NULL, 1006},                     \
        {"recovery-code-file", required_argument, NULL, 1007}
/* Defaults from the environment. */
void cli_login_init(struct cli_login *l);
/* Take option ch if it is a login option: 1, else 0. */
int cli_login_option(struct cli_login *l, int ch, const char *arg);
/*
 * A full session with l->server: the saved session when reuse is set and
 * it is for this server (and user, if given) and still valid, else a
 * login (password, then TOTP or a recovery code), saved.  With out_pass,
 * the person's password too, checked by the server (for the owner wrap).
 * *out_api: a client with the session's token; *out_me: GET /api/v1/me.
 */
int cli_login_session(struct cli *c, struct cli_login *l, int reuse,
                      char **out_pass, size_t *out_plen,
                      struct cli_api **out_api, json_t **out_me);
/* A client on the saved session (for admin and status): EXIT_OK, or an
 * exit code with the message printed (not logged in). */
int cli_session_api(struct cli *c, struct cli_api **out,
                    struct cli_session **out_s);

/* Report this device's status to the server after a backup (a warning if
 * that fails; never changes the exit code). */
struct cairn_backup_result;
void cli_device_report(struct cli *c, const struct cairn_backup_result *res);

int cmd_login(struct cli *c, int argc, char **argv);
int cmd_logout(struct cli *c, int argc, char **argv);
int cmd_enrol(struct cli *c, int argc, char **argv);
int cmd_admin(struct cli *c, int argc, char **argv);
/* `cairn admin settings show|set` (cmd_admin_settings.c); argv[0] is
 * "settings". */
int admin_settings(struct cli *c, int argc, char **argv);
int cmd_request(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
/* cairn-agent's state folder: given, else /var/lib/cairn/agent for root,
 * else $XDG_STATE_HOME/cairn-agent or ~/.local/state/cairn-agent.  -1 if
 * there is no home. */
int cli_agent_state_dir(const char *given, char *out, size_t len);
int cmd_devices(struct cli *c, int argc, char **argv);
int cmd_push(struct cli *c, int argc, char **argv);

/* ---- another device's archive on the server (cli_remote.c) ---- */
/* Open the archive of c->remote_device over HTTPS with the saved
 * session's token and the key from its owner wrap (the password) or, with
 * c->escrow, its escrow wrap (the escrow passphrase).  Sets
 * c->remote_api.  EXIT_OK or an exit code (reported). */
int cli_remote_open(struct cli *c, int load_index, struct cairn_repo **out);
/* Close what cli_remote_open kept (c->remote_api).  Safe to repeat. */
void cli_remote_close(struct cli *c);
/* The escrow private key: the organisation's wrapped key (GET
 * /api/v1/org, admins) opened with the escrow passphrase. */
int cli_escrow_open(struct cli *c, struct cli_api *a,
                    uint8_t pub[32], uint8_t priv[32]);
/* Open a device's escrow wrap (base64) with the escrow key pair. */
int cli_escrow_unwrap(struct cli *c, const char *device, const char *b64,
                      const uint8_t pub[32], const uint8_t priv[32],
                      uint8_t key[CAIRN_KEY_LEN], uint8_t aid[CAIRN_ID_LEN]);
/* GET /api/v1/devices/{id}/wraps, a refusal reported plainly. */
int cli_remote_wraps(struct cli *c, struct cli_api *a, const char *device,
                     json_t **out);
/* Parse a time for --as-of: RFC 3339, "YYYY-MM-DD[ HH:MM[:SS]]" (local
 * time), or "@SECONDS".  0 and *out_ns, or -1. */
int cli_parse_time(const char *s, int64_t *out_ns);
/* --existing overwrite|rename|skip (cmd_restore.c): 0 or -1. */
int cli_parse_existing(const char *s, int *out);
/* Print a restore's summary (text or JSON); the exit code it deserves. */
struct cairn_restore_result;
/* Did cairn_restore go through, naming some entries it could not restore
 * (damaged content, or a place it could not write)?  Such a restore is
 * reported with its summary and exit code 4, not as a failure. */
int cli_restore_partial(int rc, const struct cairn_restore_result *res);
int cli_restore_report(struct cli *c, int rc,
                       const struct cairn_restore_result *res,
                       const char *target, const char *rid);
/*
 * Tell the server a restore of device's archive starts (POST
 * /api/v1/devices/{id}/restores; push_id > 0 for a push job): it records
 * and audits it.  A server without the endpoint (404) is warned about and
 * the restore goes on.  EXIT_OK (rid set, "" when not recorded) or an exit
 * code (refused; reported).  finish: POST /api/v1/restores/{rid}/finish
 * with state "done", "failed" or "interrupted" (a failure only warns).
 */
int cli_restore_begin(struct cli *c, struct cli_api *a, const char *device,
                      const char *snap, const char *path, const char *target,
                      long long push_id, char *rid, size_t ridlen);
void cli_restore_finish(struct cli *c, struct cli_api *a, const char *rid,
                        const char *state,
                        const struct cairn_restore_result *res);
/* `cairn restore --pending` (cmd_push.c): this device's push restores. */
int cli_push_pending(struct cli *c, int existing);
/* The newest snapshot at or before t (ns); EXIT_OK or a code (reported). */
int cli_find_snapshot_asof(struct cli *c, struct cairn_repo *r, int64_t t,
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
