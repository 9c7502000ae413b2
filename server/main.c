/*
 * main.c - cairnd, the Cairn server.
 *
 *   cairnd [--config FILE] [--state-dir DIR] init --org NAME --admin USER
 *          [--department NAME] [--json] [--admin-password-file F]
 *          [--escrow-passphrase-file F]
 *   cairnd [--config FILE] [--state-dir DIR] [serve] [--ready-file F]
 *   cairnd version
 *
 * Exit codes (docs/SERVER.md): 0 done, 1 failed at run time, 2 usage,
 * 3 bad config file, 4 organisation state (not initialised for serve,
 * already initialised for init).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cairn/crypto.h"
#include "cairn/err.h"
#include "cairn/seal.h"
#include "auth.h"
#include "http.h"
#include "keyring.h"
#include "repo_cache.h"
#include "srv.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "dev"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_CONFIG 3
#define EXIT_ORG 4

#define SECRET_MAX 1024
#define RECOVERY_CODES 10
#define MIN_PASSWORD 8
#define SESSION_SWEEP_SECS 60

struct opts {
    const char *config;
    const char *state_dir;
    const char *ready_file;
    const char *cmd;
    const char *org, *admin, *department;
    const char *admin_pw_file, *escrow_pw_file;
    int json;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairnd [--config FILE] [--state-dir DIR] init --org NAME "
            "--admin USER\n"
            "              [--department NAME] [--json] "
            "[--admin-password-file F]\n"
            "              [--escrow-passphrase-file F]\n"
            "       cairnd [--config FILE] [--state-dir DIR] [serve] "
            "[--ready-file F]\n"
            "       cairnd version\n"
            "Secrets may also come from the files named by "
            "CAIRN_ADMIN_PASSWORD_FILE\n"
            "and CAIRN_ESCROW_PASSPHRASE_FILE, else from a prompt on the "
            "terminal.\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->config = getenv("CAIRND_CONFIG");
    o->department = "IT";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        } else if (strcmp(a, "--config") == 0)
            dst = &o->config;
        else if (strcmp(a, "--state-dir") == 0)
            dst = &o->state_dir;
        else if (strcmp(a, "--ready-file") == 0)
            dst = &o->ready_file;
        else if (strcmp(a, "--org") == 0)
            dst = &o->org;
        else if (strcmp(a, "--admin") == 0)
            dst = &o->admin;
        else if (strcmp(a, "--department") == 0)
            dst = &o->department;
        else if (strcmp(a, "--admin-password-file") == 0)
            dst = &o->admin_pw_file;
        else if (strcmp(a, "--escrow-passphrase-file") == 0)
            dst = &o->escrow_pw_file;
        else if (a[0] == '-') {
            fprintf(stderr, "cairnd: unknown option %s\n", a);
            return -1;
        } else if (o->cmd == NULL) {
            o->cmd = a;
            continue;
        } else {
            fprintf(stderr, "cairnd: unexpected argument %s\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cairnd: %s needs a value\n", a);
            return -1;
        }
        *dst = argv[++i];
    }
    if (o->cmd == NULL)
        o->cmd = "serve";
    return 0;
}

/* ---- files ---- */

/* Write text to path crash-safely (temporary file, fsync, rename). */
static int write_file_safe(const char *path, const char *text, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t len = strlen(text), off = 0;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >=
        (int)sizeof(tmp))
        return CAIRN_ERANGE;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
        return cairn_err_from_errno(errno);
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return cairn_err_from_errno(e);
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cairn_err_from_errno(e);
    }
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    char *p;

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return CAIRN_ERANGE;
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return cairn_err_from_errno(errno);
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return cairn_err_from_errno(errno);
    return 0;
}

/* ---- secrets ---- */

/* The first line of a file (without its newline). */
static int secret_from_file(const char *path, char *out, size_t outlen)
{
    FILE *f;
    size_t n;

    if ((f = fopen(path, "r")) == NULL) {
        fprintf(stderr, "cairnd: cannot read %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fgets(out, (int)outlen, f) == NULL)
        out[0] = '\0';
    fclose(f);
    n = strcspn(out, "\r\n");
    out[n] = '\0';
    return 0;
}

static int prompt_once(FILE *tty, const char *prompt, char *out, size_t outlen)
{
    struct termios old, noecho;
    int ok;

    fprintf(tty, "%s", prompt);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) != 0)
        return -1;
    noecho = old;
    noecho.c_lflag &= ~(tcflag_t)ECHO;
    noecho.c_lflag |= ECHONL;
    tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
    ok = fgets(out, (int)outlen, tty) != NULL;
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/*
 * A secret from flag_file, else the file named by env, else asked twice
 * on the terminal; else an error.  what names it for messages.
 */
static int get_secret(const char *flag_file, const char *env,
                      const char *what, char *out, size_t outlen)
{
    char again[SECRET_MAX];
    const char *f = flag_file ? flag_file : getenv(env);
    FILE *tty;
    char p1[128], p2[128];
    int rc = -1;

    out[0] = '\0';
    if (f != NULL && f[0] != '\0')
        rc = secret_from_file(f, out, outlen);
    else if ((tty = fopen("/dev/tty", "r+")) != NULL) {
        snprintf(p1, sizeof(p1), "New %s: ", what);
        snprintf(p2, sizeof(p2), "Repeat the %s: ", what);
        if (prompt_once(tty, p1, out, outlen) == 0 &&
            prompt_once(tty, p2, again, sizeof(again)) == 0) {
            if (strcmp(out, again) == 0)
                rc = 0;
            else
                fprintf(stderr, "cairnd: the two %ss differ\n", what);
        }
        cairn_wipe(again, sizeof(again));
        fclose(tty);
    } else {
        fprintf(stderr,
                "cairnd: no terminal to ask the %s: give it in a file "
                "(%s)\n",
                what, env);
    }
    if (rc == 0 && strlen(out) < MIN_PASSWORD) {
        fprintf(stderr, "cairnd: the %s must have at least %d characters\n",
                what, MIN_PASSWORD);
        rc = -1;
    }
    if (rc != 0)
        cairn_wipe(out, outlen);
    return rc;
}

/* ---- common start ---- */

static int load_config(const struct opts *o, struct srv *s)
{
    char err[512];
    int rc;

    if ((rc = srv_config_load(o->config, &s->cfg, err, sizeof(err))) != 0) {
        fprintf(stderr, "cairnd: %s\n", err);
        return EXIT_CONFIG;
    }
    if (o->state_dir != NULL &&
        snprintf(s->cfg.state_dir, sizeof(s->cfg.state_dir), "%s",
                 o->state_dir) >= (int)sizeof(s->cfg.state_dir)) {
        fprintf(stderr, "cairnd: the state directory name is too long\n");
        return EXIT_USAGE;
    }
    if (snprintf(s->objects_dir, sizeof(s->objects_dir), "%s/objects",
                 s->cfg.state_dir) >= (int)sizeof(s->objects_dir)) {
        fprintf(stderr, "cairnd: the state directory name is too long\n");
        return EXIT_USAGE;
    }
    srv_log_set_level(s->cfg.log_level);
    return 0;
}

static int open_catalog(struct srv *s)
{
    char path[PATH_MAX];
    int rc;

    if (snprintf(path, sizeof(path), "%s/catalog.db", s->cfg.state_dir) >=
        (int)sizeof(path))
        return CAIRN_ERANGE;
    if ((rc = catalog_open_sqlite(path, &s->cat)) != 0)
        fprintf(stderr, "cairnd: cannot open the catalog %s: %s\n", path,
                cairn_strerror(rc));
    return rc;
}

/* ---- init ---- */

static char *b64(const uint8_t *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);

    if (out != NULL)
        EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

static int cmd_init(const struct opts *o, struct srv *s)
{
    char admin_pw[SECRET_MAX], escrow_pw[SECRET_MAX];
    char totp[SRV_TOTP_SECRET_LEN + 1];
    char (*hashes)[65] = NULL;
    char issuer[192];
    char **codes = NULL;
    char *pw_hash = NULL, *uri = NULL, *qr = NULL, *pub64 = NULL;
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    struct cat_org org;
    struct cat_user u;
    int64_t dept_id = 0;
    int i, rc, ret = EXIT_RUNTIME;

    memset(&org, 0, sizeof(org));
    memset(&u, 0, sizeof(u));
    if (o->org == NULL || o->admin == NULL || o->org[0] == '\0' ||
        o->admin[0] == '\0') {
        fprintf(stderr, "cairnd: init needs --org NAME and --admin USER\n");
        return EXIT_USAGE;
    }
    if (strlen(o->org) >= sizeof(org.name) ||
        strlen(o->admin) >= sizeof(u.username) ||
        strlen(o->department) >= sizeof(((struct cat_dept *)0)->name) ||
        o->department[0] == '\0') {
        fprintf(stderr, "cairnd: a name is empty or too long\n");
        return EXIT_USAGE;
    }
    if ((rc = mkdir_p(s->cfg.state_dir, 0700)) != 0) {
        fprintf(stderr, "cairnd: cannot create %s: %s\n", s->cfg.state_dir,
                cairn_strerror(rc));
        return EXIT_RUNTIME;
    }
    if (open_catalog(s) != 0)
        return EXIT_RUNTIME;
    if ((rc = cat_org_get(s->cat, &org)) != CAIRN_ENOENT) {
        if (rc == 0)
            fprintf(stderr,
                    "cairnd: %s already holds the organisation \"%s\"; "
                    "nothing changed\n",
                    s->cfg.state_dir, org.name);
        cat_org_clear(&org);
        ret = rc == 0 ? EXIT_ORG : EXIT_RUNTIME;
        goto err0;
    }
    if (get_secret(o->admin_pw_file, "CAIRN_ADMIN_PASSWORD_FILE",
                   "admin password", admin_pw, sizeof(admin_pw)) != 0 ||
        get_secret(o->escrow_pw_file, "CAIRN_ESCROW_PASSPHRASE_FILE",
                   "escrow passphrase", escrow_pw, sizeof(escrow_pw)) != 0) {
        ret = EXIT_USAGE;
        goto err1;
    }
    if (strcmp(admin_pw, escrow_pw) == 0) {
        fprintf(stderr, "cairnd: the escrow passphrase must differ from the "
                        "admin password\n");
        ret = EXIT_USAGE;
        goto err1;
    }

    /* The escrow key pair: the private half only wrapped. */
    if ((rc = cairn_escrow_create(escrow_pw, strlen(escrow_pw), NULL,
                                  org.escrow_public, &wrapped,
                                  &wrapped_len)) != 0) {
        fprintf(stderr, "cairnd: cannot make the escrow key: %s\n",
                cairn_strerror(rc));
        goto err1;
    }
    if ((rc = srv_password_hash(admin_pw, strlen(admin_pw), NULL,
                                &pw_hash)) != 0 ||
        (rc = srv_totp_secret_new(totp)) != 0 ||
        (rc = srv_recovery_codes_new(RECOVERY_CODES, &codes)) != 0) {
        fprintf(stderr, "cairnd: cannot make the admin's secrets: %s\n",
                cairn_strerror(rc));
        goto err2;
    }
    if ((hashes = calloc(RECOVERY_CODES, sizeof(*hashes))) == NULL)
        goto err2;
    for (i = 0; i < RECOVERY_CODES; i++)
        if ((rc = srv_recovery_hash(codes[i], hashes[i])) != 0)
            goto err2;
    snprintf(issuer, sizeof(issuer), "Cairn (%s)", o->org);
    if ((rc = srv_totp_uri(issuer, o->admin, totp, &uri)) != 0) {
        fprintf(stderr, "cairnd: cannot make the TOTP URI: %s\n",
                cairn_strerror(rc));
        goto err2;
    }

    /* All of it, or nothing. */
    snprintf(org.name, sizeof(org.name), "%s", o->org);
    org.escrow_wrapped = wrapped;
    org.escrow_wrapped_len = wrapped_len;
    org.created = srv_now();
    snprintf(u.username, sizeof(u.username), "%s", o->admin);
    snprintf(u.display, sizeof(u.display), "%s", o->admin);
    u.admin = 1;
    u.pw_hash = pw_hash;
    snprintf(u.totp_secret, sizeof(u.totp_secret), "%s", totp);
    u.created = org.created;
    if ((rc = catalog_begin(s->cat)) != 0)
        goto errdb;
    if ((rc = cat_org_create(s->cat, &org)) != 0 ||
        (rc = cat_dept_add(s->cat, o->department, 0, &dept_id)) != 0)
        goto errtx;
    u.dept_id = dept_id;
    if ((rc = cat_user_add(s->cat, &u)) != 0 ||
        (rc = cat_recovery_set(s->cat, u.id,
                               (const char(*)[65])hashes, RECOVERY_CODES)) != 0)
        goto errtx;
    if ((rc = catalog_commit(s->cat)) != 0)
        goto errdb;
    {
        json_t *d = json_pack("{s:s, s:s}", "admin", o->admin, "department",
                              o->department);
        char *dt = d ? json_dumps(d, JSON_COMPACT) : NULL;
        srv_audit(s, u.id, NULL, "local", "org.init", o->org, "%s",
                  dt ? dt : "{}");
        free(dt);
        json_decref(d);
    }
    if ((rc = mkdir_p(s->objects_dir, 0700)) != 0) {
        fprintf(stderr, "cairnd: cannot create %s: %s\n", s->objects_dir,
                cairn_strerror(rc));
        goto err2;
    }

    /* Shown once. */
    pub64 = b64(org.escrow_public, sizeof(org.escrow_public));
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:s}",
                              "org", o->org, "admin", o->admin, "department",
                              o->department, "totp_uri", uri, "totp_secret",
                              totp, "recovery_codes", "escrow_public",
                              pub64 ? pub64 : "", "state_dir",
                              s->cfg.state_dir);
        json_t *arr = j ? json_object_get(j, "recovery_codes") : NULL;
        for (i = 0; arr && i < RECOVERY_CODES; i++)
            json_array_append_new(arr, json_string(codes[i]));
        if (j == NULL || json_dumpf(j, stdout, JSON_INDENT(2)) != 0)
            goto err2;
        printf("\n");
        json_decref(j);
    } else {
        printf("Organisation \"%s\" created in %s.\n", o->org,
               s->cfg.state_dir);
        printf("First department: %s.  First administrator: %s.\n\n",
               o->department, o->admin);
        if (srv_qr_terminal(uri, &qr) == 0)
            printf("Scan this code with an authenticator app:\n\n%s\n", qr);
        printf("or enter this URI: %s\n(secret %s)\n\n", uri, totp);
        printf("Recovery codes, each usable once if the phone is lost.\n"
               "Keep them safe; they are not shown again:\n");
        for (i = 0; i < RECOVERY_CODES; i++)
            printf("  %s\n", codes[i]);
        printf("\nEscrow public key: %s\n"
               "Keep the escrow passphrase safe: without it no "
               "administrator can restore a device.\n",
               pub64 ? pub64 : "?");
    }
    fflush(stdout);
    ret = 0;
    goto err2;

errtx:
    catalog_rollback(s->cat);
errdb:
    fprintf(stderr, "cairnd: cannot write the catalog: %s\n",
            cairn_strerror(rc));
err2:
    free(pub64);
    if (qr != NULL)
        free(qr);
    if (uri != NULL) {
        cairn_wipe(uri, strlen(uri));
        free(uri);
    }
    if (hashes != NULL)
        free(hashes);
    srv_recovery_codes_free(codes, RECOVERY_CODES);
    if (pw_hash != NULL)
        free(pw_hash);
    free(wrapped);
    cairn_wipe(totp, sizeof(totp));
    cairn_wipe(u.totp_secret, sizeof(u.totp_secret));
err1:
    cairn_wipe(admin_pw, sizeof(admin_pw));
    cairn_wipe(escrow_pw, sizeof(escrow_pw));
err0:
    catalog_close(s->cat);
    s->cat = NULL;
    return ret;
}

/* ---- serve ---- */

static int cmd_serve(const struct opts *o, struct srv *s)
{
    char *cert = NULL, *key = NULL;
    char url[160], line[512];
    struct cat_org org;
    struct timespec ts = {SESSION_SWEEP_SECS, 0};
    sigset_t set;
    int sig, rc, ret = EXIT_RUNTIME;

    if (access(s->cfg.state_dir, F_OK) != 0) {
        fprintf(stderr,
                "cairnd: %s does not exist; run \"cairnd init\" first\n",
                s->cfg.state_dir);
        return EXIT_ORG;
    }
    if (open_catalog(s) != 0)
        return EXIT_RUNTIME;
    if ((rc = cat_org_get(s->cat, &org)) != 0) {
        if (rc == CAIRN_ENOENT) {
            fprintf(stderr,
                    "cairnd: the organisation is not initialised in %s; run "
                    "\"cairnd init --org NAME --admin USER\" first\n",
                    s->cfg.state_dir);
            ret = EXIT_ORG;
        }
        goto err0;
    }
    cat_org_clear(&org);
    if ((rc = mkdir_p(s->objects_dir, 0700)) != 0) {
        fprintf(stderr, "cairnd: cannot create %s: %s\n", s->objects_dir,
                cairn_strerror(rc));
        goto err0;
    }
    if (srv_tls_load(s, &cert, &key) != 0) {
        fprintf(stderr, "cairnd: cannot set up TLS (see the log above)\n");
        goto err0;
    }

    /* Signals are taken by this thread alone (the request threads
     * inherit the mask). */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (http_start(s, cert, key) != 0)
        goto err1;
    if (strchr(s->cfg.listen_addr, ':') != NULL)
        snprintf(url, sizeof(url), "https://[%s]:%u", s->cfg.listen_addr,
                 s->cfg.listen_port);
    else
        snprintf(url, sizeof(url), "https://%s:%u", s->cfg.listen_addr,
                 s->cfg.listen_port);
    srv_log(SRV_LOG_INFO, "cairnd %s listening on %s, pin %s", CAIRN_VERSION,
            url, s->pin);
    printf("cairnd listening on %s\npin %s\n", url, s->pin);
    fflush(stdout);
    if (o->ready_file != NULL) {
        snprintf(line, sizeof(line), "%s %s\n", url, s->pin);
        if ((rc = write_file_safe(o->ready_file, line, 0644)) != 0)
            srv_log(SRV_LOG_ERROR, "cannot write %s: %s", o->ready_file,
                    cairn_strerror(rc));
    }

    for (;;) {
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            srv_log(SRV_LOG_INFO, "SIGHUP ignored (restart to reload)");
        /* Every minute: forget expired sessions, and wipe the archive
         * keys held for them. */
        int64_t now = srv_now();
        cat_session_expire(s->cat, now - s->cfg.session_idle_secs,
                           now - s->cfg.session_max_secs);
        keyring_srv_sweep(s);
        repo_cache_sweep();
    }
    srv_log(SRV_LOG_INFO, "%s: finishing requests in flight, then stopping",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop(s);
    repo_cache_clear();
    srv_log(SRV_LOG_INFO, "stopped");
    ret = 0;

err1:
    free(cert);
    cairn_wipe(key, strlen(key));
    free(key);
err0:
    catalog_close(s->cat);
    s->cat = NULL;
    return ret;
}

int main(int argc, char **argv)
{
    static struct srv s;
    struct opts o;
    int rc;

    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(o.cmd, "version") == 0) {
        printf("cairnd %s\n", CAIRN_VERSION);
        return 0;
    }
    if (strcmp(o.cmd, "serve") != 0 && strcmp(o.cmd, "init") != 0) {
        fprintf(stderr, "cairnd: unknown command \"%s\"\n", o.cmd);
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((rc = load_config(&o, &s)) != 0)
        return rc;
    if (strcmp(o.cmd, "init") == 0)
        return cmd_init(&o, &s);
    return cmd_serve(&o, &s);
}
