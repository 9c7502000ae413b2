/*
 * cli_device.c - the files `cairn` keeps as a server's client: the device
 * state file (this computer's enrolment: server, pin, device id and
 * token, archive id and key) and the session file (a person's login).
 * Both are JSON, mode 0600, written whole or not at all (temporary file,
 * fsync, rename, fsync of the folder), and never printed.  Also the
 * secrets a login asks for: from a file, a command or the terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cli.h"


/* Where a per-user file lives: $XDG_CONFIG_HOME/cairn/NAME or
 * ~/.config/cairn/NAME. */
static int config_path(const char *name, char *out, size_t len)
{
    const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

    if (x != NULL && x[0] == '/')
        snprintf(out, len, "%s/cairn/%s", x, name);
    else if (home != NULL && home[0] != '\0')
        snprintf(out, len, "%s/.config/cairn/%s", home, name);
    else
        return -1;
    return 0;
}

int cli_device_path(struct cli *c, char *out, size_t len)
{
    const char *env = getenv("CAIRN_DEVICE_FILE");

    if (c->device_file != NULL && c->device_file[0] != '\0')
        snprintf(out, len, "%s", c->device_file);
    else if (env != NULL && env[0] != '\0')
        snprintf(out, len, "%s", env);
    else if (geteuid() == 0)
        snprintf(out, len, "/var/lib/cairn/device.json");
    else if (config_path("device.json", out, len) != 0)
        return -1;
    return 0;
}

static int session_path(char *out, size_t len)
{
    const char *env = getenv("CAIRN_SESSION_FILE");

    if (env != NULL && env[0] != '\0') {
        snprintf(out, len, "%s", env);
        return 0;
    }
    return config_path("session.json", out, len);
}

/* mkdir -p for the folder of path, new folders 0700. */
static int make_parent(const char *path)
{
    char buf[PATH_MAX], *p;

    snprintf(buf, sizeof(buf), "%s", path);
    if ((p = strrchr(buf, '/')) == NULL || p == buf)
        return 0;
    *p = '\0';
    for (p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Write o to path, mode 0600, crash-safely.  The serialised text is
 * wiped (it holds secrets). */
static int write_secret_json(struct cli *c, const char *path, json_t *o)
{
    char tmp[PATH_MAX + 16], dir[PATH_MAX], *text, *d;
    size_t n, off = 0;
    ssize_t w;
    int fd, dfd, rc = -1;

    if (make_parent(path) != 0) {
        cli_error(c, "cannot create the folder of %s: %s", path,
                  strerror(errno));
        return EXIT_ERROR;
    }
    if ((text = json_dumps(o, JSON_INDENT(2))) == NULL)
        return EXIT_ERROR;
    n = strlen(text);
    snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        cli_error(c, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        goto fail;
    while (off < n) {
        if ((w = write(fd, text + off, n - off)) < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    snprintf(dir, sizeof(dir), "%s", path);
    d = dirname(dir);
    if ((dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto out;
fail:
    cli_error(c, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    cairn_wipe(text, n);
    free(text);
    return rc == 0 ? EXIT_OK : EXIT_ERROR;
}

/* Read a JSON file that must not be readable by others.  EXIT_NOREPO if
 * it does not exist (nothing printed), EXIT_ERROR otherwise. */
static int read_secret_json(struct cli *c, const char *path, json_t **out)
{
    json_error_t je;
    struct stat st;
    FILE *f;

    if ((f = fopen(path, "re")) == NULL) {
        if (errno == ENOENT)
            return EXIT_NOREPO;
        cli_error(c, "cannot read %s: %s", path, strerror(errno));
        return EXIT_ERROR;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        cli_warn(c, "%s can be read by others (mode %03o); it holds "
                    "secrets: chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    *out = json_loadf(f, 0, &je);
    fclose(f);
    if (*out == NULL || !json_is_object(*out)) {
        cli_error(c, "%s is damaged (%s)", path,
                  *out == NULL ? je.text : "not a JSON object");
        json_decref(*out);
        *out = NULL;
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static char *get_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static void free_secret(char *s)
{
    if (s == NULL)
        return;
    cairn_wipe(s, strlen(s));
    free(s);
}

void cli_device_free(struct cli_device *d)
{
    if (d == NULL)
        return;
    free(d->server);
    free(d->pin);
    free(d->device_id);
    free_secret(d->token);
    free(d->name);
    free(d->category);
    free(d->department);
    cairn_wipe(d->key, sizeof(d->key));
    free(d);
}

int cli_device_load(struct cli *c, struct cli_device **out)
{
    struct cli_device *d;
    uint8_t *key = NULL;
    size_t klen = 0;
    json_t *o = NULL, *v;
    char path[PATH_MAX];
    const char *aid;
    int x;

    if (cli_device_path(c, path, sizeof(path)) != 0) {
        cli_error(c, "no device file: set CAIRN_DEVICE_FILE or HOME");
        return EXIT_ERROR;
    }
    if ((x = read_secret_json(c, path, &o)) != EXIT_OK)
        return x;
    if ((d = calloc(1, sizeof(*d))) == NULL) {
        json_decref(o);
        return EXIT_ERROR;
    }
    snprintf(d->path, sizeof(d->path), "%s", path);
    d->server = get_str(o, "server");
    d->pin = get_str(o, "pin");
    d->device_id = get_str(o, "device_id");
    d->token = get_str(o, "token");
    d->name = get_str(o, "name");
    d->category = get_str(o, "category");
    d->department = get_str(o, "department");
    v = json_object_get(o, "enrolled_at");
    d->enrolled_at = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    aid = json_string_value(json_object_get(o, "archive_id"));
    v = json_object_get(o, "archive_key");
    x = EXIT_ERROR;
    if (d->server == NULL || d->device_id == NULL || d->token == NULL ||
        aid == NULL || strlen(aid) != 2 * CAIRN_ID_LEN ||
        cairn_hex_decode(aid, d->archive_id, CAIRN_ID_LEN) != 0 ||
        !json_is_string(v) ||
        cli_b64_decode(json_string_value(v), &key, &klen) != 0 ||
        klen != CAIRN_KEY_LEN) {
        cli_error(c, "the device file %s is damaged or incomplete", path);
        goto out;
    }
    memcpy(d->key, key, CAIRN_KEY_LEN);
    x = EXIT_OK;
out:
    if (key != NULL) {
        cairn_wipe(key, klen);
        free(key);
    }
    /* The JSON held the key too. */
    json_object_set_new(o, "archive_key", json_string(""));
    json_object_set_new(o, "token", json_string(""));
    json_decref(o);
    if (x != EXIT_OK)
        cli_device_free(d);
    else
        *out = d;
    return x;
}

int cli_device_save(struct cli *c, const struct cli_device *d)
{
    char path[PATH_MAX], aid[2 * CAIRN_ID_LEN + 1], *key;
    json_t *o;
    int x;

    if (d->path[0] != '\0')
        snprintf(path, sizeof(path), "%s", d->path);
    else if (cli_device_path(c, path, sizeof(path)) != 0) {
        cli_error(c, "no device file: set CAIRN_DEVICE_FILE or HOME");
        return EXIT_ERROR;
    }
    cairn_hex_encode(d->archive_id, CAIRN_ID_LEN, aid);
    if ((key = cli_b64_encode(d->key, CAIRN_KEY_LEN)) == NULL)
        return EXIT_ERROR;
    o = json_pack("{s:i, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s, "
                  "s:I}",
                  "version", 1, "server", d->server, "pin", d->pin,
                  "device_id", d->device_id, "token", d->token, "name",
                  d->name, "category", d->category, "department",
                  d->department, "archive_id", aid, "archive_key", key,
                  "enrolled_at", (json_int_t)d->enrolled_at);
    cairn_wipe(key, strlen(key));
    free(key);
    if (o == NULL)
        return EXIT_ERROR;
    x = write_secret_json(c, path, o);
    json_object_set_new(o, "archive_key", json_string(""));
    json_object_set_new(o, "token", json_string(""));
    json_decref(o);
    return x;
}

void cli_session_free(struct cli_session *s)
{
    if (s == NULL)
        return;
    free(s->server);
    free(s->pin);
    free_secret(s->token);
    free(s->username);
    free(s);
}

int cli_session_load(struct cli *c, struct cli_session **out)
{
    struct cli_session *s;
    char path[PATH_MAX];
    json_t *o;
    int x;

    if (session_path(path, sizeof(path)) != 0)
        return EXIT_NOREPO;
    if ((x = read_secret_json(c, path, &o)) != EXIT_OK)
        return x;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        json_decref(o);
        return EXIT_ERROR;
    }
    s->server = get_str(o, "server");
    s->pin = get_str(o, "pin");
    s->token = get_str(o, "token");
    s->username = get_str(o, "username");
    json_object_set_new(o, "token", json_string(""));
    json_decref(o);
    if (s->server == NULL || s->token == NULL) {
        cli_error(c, "the session file %s is damaged; log in again", path);
        cli_session_free(s);
        return EXIT_ERROR;
    }
    *out = s;
    return EXIT_OK;
}

int cli_session_save(struct cli *c, const struct cli_session *s)
{
    char path[PATH_MAX];
    json_t *o;
    int x;

    if (session_path(path, sizeof(path)) != 0) {
        cli_error(c, "nowhere to keep the session: set CAIRN_SESSION_FILE "
                     "or HOME");
        return EXIT_ERROR;
    }
    if ((o = json_pack("{s:s, s:s?, s:s, s:s?}", "server", s->server, "pin",
                       s->pin, "token", s->token, "username",
                       s->username)) == NULL)
        return EXIT_ERROR;
    x = write_secret_json(c, path, o);
    json_object_set_new(o, "token", json_string(""));
    json_decref(o);
    return x;
}

int cli_session_remove(struct cli *c)
{
    char path[PATH_MAX];

    if (session_path(path, sizeof(path)) != 0)
        return EXIT_OK;
    if (unlink(path) != 0 && errno != ENOENT) {
        cli_error(c, "cannot remove %s: %s", path, strerror(errno));
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

