/*
 * cmd_admin.c - `cairn admin ...`: the organisation as an administrator
 * runs it (departments and waves, people, devices, migration, the audit
 * log, restore requests), over the server's API with the saved session
 * (cairn login).  Every subcommand
 * prints JSON lines with --json; lists also print CSV with --csv.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OUT_TABLE, OUT_JSON, OUT_CSV };

struct admin {
    struct cli *c;
    struct cli_api *a;
    int out;
};

/* Call the API; report a failure with what.  *res may be NULL. */
static int call(struct admin *ad, const char *method, const char *path,
                json_t *body, json_t **res, const char *what)
{
    if (cli_api_call(ad->a, method, path, body, res) != 0) {
        const struct cli_api_error *e = cli_api_last_error(ad->a);

        if (strcmp(e->code, "forbidden") == 0) {
            cli_error(ad->c, "%s: %s (this needs an administrator's "
                             "session)",
                      what, e->message);
            return EXIT_ERROR;
        }
        return cli_api_report(ad->c, ad->a, what);
    }
    return EXIT_OK;
}

/* The array of a list answer: the answer itself, or its first array
 * member ({"devices": [...]}).  Borrowed. */
static json_t *list_of(json_t *res)
{
    const char *k;
    json_t *v;

    if (json_is_array(res))
        return res;
    json_object_foreach(res, k, v)
    {
        if (json_is_array(v))
            return v;
    }
    return NULL;
}

/* Any scalar as text ("" when absent, "-" for null). */
static void scalar(json_t *v, char *buf, size_t len)
{
    if (v == NULL)
        snprintf(buf, len, "%s", "");
    else if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.1f", json_real_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "yes");
    else if (json_is_false(v))
        snprintf(buf, len, "no");
    else if (json_is_null(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "...");
}

/* The first of keys (NULL-ended) o has, as text. */
static void field(json_t *o, const char *const *keys, char *buf, size_t len)
{
    json_t *v = NULL;

    for (; *keys != NULL && v == NULL; keys++)
        v = json_object_get(o, *keys);
    scalar(v, buf, len);
}

static void csv_cell(const char *s, int last)
{
    if (strpbrk(s, ",\"\n\r") != NULL) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

struct column {
    const char *title;
    int width;
    const char *keys[4];
};

/* Print the list res: JSON lines (each with message_type type), CSV, or a
 * table of columns. */
static void print_list(struct admin *ad, json_t *res, const char *type,
                       const struct column *cols, size_t ncols)
{
    json_t *arr = list_of(res), *v;
    char cell[256];
    size_t i, k;

    if (ad->out == OUT_JSON) {
        json_array_foreach(arr, i, v)
        {
            json_t *o = json_is_object(v) ? json_deep_copy(v) : json_object();

            json_object_set_new(o, "message_type", json_string(type));
            cli_json_emit(o);
        }
        cli_json_emit(json_pack("{s:s, s:I}", "message_type", "summary",
                                "count", (json_int_t)json_array_size(arr)));
        return;
    }
    for (k = 0; k < ncols; k++) {
        if (ad->out == OUT_CSV)
            csv_cell(cols[k].keys[0], k + 1 == ncols);
        else
            printf("%-*s%s", cols[k].width, cols[k].title,
                   k + 1 == ncols ? "\n" : "  ");
    }
    json_array_foreach(arr, i, v)
    {
        for (k = 0; k < ncols; k++) {
            field(v, cols[k].keys, cell, sizeof(cell));
            if (ad->out == OUT_CSV)
                csv_cell(cell, k + 1 == ncols);
            else
                printf("%-*s%s", cols[k].width, cell,
                       k + 1 == ncols ? "\n" : "  ");
        }
    }
}

/* Print a single object the server made or changed. */
static void print_one(struct admin *ad, json_t *res, const char *type,
                      const char *text)
{
    json_t *o;

    if (ad->out == OUT_JSON) {
        o = json_is_object(res) ? json_deep_copy(res) : json_object();
        json_object_set_new(o, "message_type", json_string(type));
        cli_json_emit(o);
    } else if (!ad->c->quiet) {
        printf("%s\n", text);
    }
}

/* "2026-03-01" -> "2026-03-01T00:00:00Z"; RFC 3339 text as it is. */
static void wave_date(const char *in, char *out, size_t len)
{
    if (strlen(in) == 10 && in[4] == '-' && in[7] == '-')
        snprintf(out, len, "%sT00:00:00Z", in);
    else
        snprintf(out, len, "%s", in);
}

/* Parse [--json] [--csv] and the given options; returns the first
 * positional index, or -1 on a usage error. */
static int parse(struct admin *ad, int argc, char **argv,
                 const struct option *extra, void (*on)(void *, int,
                                                        const char *),
                 void *arg)
{
    struct option opts[16];
    size_t n = 0;
    int ch;

    opts[n++] = (struct option){"json", no_argument, NULL, 'j'};
    opts[n++] = (struct option){"csv", no_argument, NULL, 'v'};
    for (; extra != NULL && extra->name != NULL && n < 15; extra++)
        opts[n++] = *extra;
    opts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'j')
            ad->out = OUT_JSON;
        else if (ch == 'v')
            ad->out = OUT_CSV;
        else if (ch != '?' && on != NULL)
            on(arg, ch, optarg);
        else
            return -1;
    }
    if (ad->out == OUT_JSON)
        ad->c->json = 1;
    return optind;
}

/* PREFIX + escaped segment + SUFFIX. */
static int seg_path(char *out, size_t len, const char *prefix,
                    const char *seg, const char *suffix)
{
    char *e = cli_url_escape(seg);

    if (e == NULL)
        return -1;
    snprintf(out, len, "%s%s%s", prefix, e, suffix);
    free(e);
    return 0;
}

/* ---- departments ---- */

struct dept_opts {
    const char *wave;
};

static void dept_on(void *arg, int ch, const char *val)
{
    struct dept_opts *o = arg;

    if (ch == 'w')
        o->wave = val;
}

static int admin_department(struct admin *ad, int argc, char **argv)
{
    static const struct option extra[] = {
        {"wave-start", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    static const struct column cols[] = {
        {"NAME", 24, {"name", NULL}},
        {"WAVE START", 20, {"wave_start", NULL}},
        {"STARTED", 7, {"wave_started", "started", NULL}},
    };
    struct dept_opts o = {NULL};
    json_t *req = NULL, *res = NULL;
    char date[64], path[512], text[512];
    const char *sub;
    int i, x;

    if (argc < 2)
        return cli_usage(ad->c, "admin department add|list|wave ...");
    sub = argv[1];
    if ((i = parse(ad, argc - 1, argv + 1, extra, dept_on, &o)) < 0)
        return EXIT_USAGE;
    i++; /* index in argv */
    if (strcmp(sub, "list") == 0) {
        if (i != argc)
            return cli_usage(ad->c, "admin department list takes no "
                                    "arguments");
        if ((x = call(ad, "GET", "/api/v1/departments", NULL, &res,
                      "cannot list departments")) == EXIT_OK)
            print_list(ad, res, "department", cols, 3);
    } else if (strcmp(sub, "add") == 0) {
        if (i + 1 != argc)
            return cli_usage(ad->c, "admin department add NAME "
                                    "[--wave-start DATE]");
        req = json_pack("{s:s}", "name", argv[i]);
        if (o.wave != NULL) {
            wave_date(o.wave, date, sizeof(date));
            json_object_set_new(req, "wave_start", json_string(date));
        }
        if ((x = call(ad, "POST", "/api/v1/departments", req, &res,
                      "cannot add the department")) == EXIT_OK) {
            snprintf(text, sizeof(text), "department %s added%s%s", argv[i],
                     o.wave ? "; its wave starts " : "",
                     o.wave ? date : "");
            print_one(ad, res, "department", text);
        }
    } else if (strcmp(sub, "wave") == 0) {
        if (i + 2 != argc)
            return cli_usage(ad->c, "admin department wave NAME DATE|none");
        if (strcmp(argv[i + 1], "none") == 0) {
            req = json_pack("{s:n}", "wave_start");
        } else {
            wave_date(argv[i + 1], date, sizeof(date));
            req = json_pack("{s:s}", "wave_start", date);
        }
        if (seg_path(path, sizeof(path), "/api/v1/departments/",
                     argv[i], "") != 0)
            return EXIT_ERROR;
        if ((x = call(ad, "PATCH", path, req, &res,
                      "cannot set the department's wave")) == EXIT_OK) {
            snprintf(text, sizeof(text), "department %s: wave %s", argv[i],
                     strcmp(argv[i + 1], "none") == 0 ? "not scheduled"
                                                       : date);
            print_one(ad, res, "department", text);
        }
    } else {
        return cli_usage(ad->c, "unknown subcommand 'department %s' (add, "
                                "list, wave)",
                         sub);
    }
    json_decref(req);
    json_decref(res);
    return x;
}

/* ---- users ---- */

struct user_opts {
    const char *dept, *role, *password_file;
};

static void user_on(void *arg, int ch, const char *val)
{
    struct user_opts *o = arg;

    if (ch == 'd')
        o->dept = val;
    else if (ch == 'r')
        o->role = val;
    else if (ch == 'p')
        o->password_file = val;
}

/* The new password of a person: from a file, or typed twice. */
static int new_password(struct cli *c, const char *file, char **out,
                        size_t *out_len)
{
    struct cli_secret_src src = {"new password", file, NULL,
                                 "their password: ",
                                 "use --password-file F", 0};
    char *again = NULL;
    size_t alen = 0;
    int x;

    if ((x = cli_secret(c, &src, out, out_len)) != EXIT_OK || file != NULL)
        return x;
    src.prompt = "again: ";
    if ((x = cli_secret(c, &src, &again, &alen)) != EXIT_OK)
        goto err;
    if (alen != *out_len || memcmp(again, *out, alen) != 0) {
        cli_error(c, "the passwords do not match");
        x = EXIT_ERROR;
        goto err;
    }
    cli_secret_free(again, alen);
    return EXIT_OK;
err:
    cli_secret_free(again, alen);
    cli_secret_free(*out, *out_len);
    *out = NULL;
    return x;
}

static void print_new_user(struct admin *ad, json_t *res, const char *name)
{
    json_t *codes = json_object_get(res, "recovery_codes"), *v;
    json_t *user = json_object_get(res, "user");
    const char *uri, *qr, *secret;
    size_t i;

    if (ad->out == OUT_JSON || ad->c->quiet) {
        print_one(ad, res, "user", "");
        return;
    }
    if (!json_is_object(user))
        user = res;
    uri = json_string_value(json_object_get(res, "totp_uri"));
    secret = json_string_value(json_object_get(res, "totp_secret"));
    qr = json_string_value(json_object_get(res, "totp_qr"));
    printf("user %s added\n", name);
    if (qr != NULL)
        printf("%s\n", qr);
    if (uri != NULL)
        printf("authenticator app (TOTP): %s\n", uri);
    if (secret != NULL)
        printf("TOTP secret: %s\n", secret);
    if (json_array_size(codes) > 0) {
        printf("recovery codes (each works once; shown only now):\n");
        json_array_foreach(codes, i, v) printf("  %s\n", json_string_value(v));
    }
}

static int admin_user(struct admin *ad, int argc, char **argv)
{
    static const struct option extra[] = {
        {"department", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"password-file", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    static const struct column cols[] = {
        {"USERNAME", 16, {"username", NULL}},
        {"ROLE", 6, {"role", NULL}},
        {"DEPARTMENT", 16, {"department", NULL}},
        {"DISABLED", 8, {"disabled", NULL}},
        {"LOCKED", 6, {"locked", NULL}},
    };
    struct user_opts o = {NULL, NULL, NULL};
    json_t *req = NULL, *res = NULL;
    char path[512], text[256], *pass = NULL;
    size_t plen = 0;
    const char *sub;
    int i, x = EXIT_ERROR;

    if (argc < 2)
        return cli_usage(ad->c, "admin user add|list|disable|enable|unlock|"
                                "reset-password ...");
    sub = argv[1];
    o.password_file = getenv("CAIRN_NEW_USER_PASSWORD_FILE");
    if ((i = parse(ad, argc - 1, argv + 1, extra, user_on, &o)) < 0)
        return EXIT_USAGE;
    i++;
    if (strcmp(sub, "list") == 0) {
        if (i != argc)
            return cli_usage(ad->c, "admin user list takes no arguments");
        if ((x = call(ad, "GET", "/api/v1/users", NULL, &res,
                      "cannot list users")) == EXIT_OK)
            print_list(ad, res, "user", cols, 5);
    } else if (strcmp(sub, "add") == 0) {
        if (i + 1 != argc || o.dept == NULL)
            return cli_usage(ad->c, "admin user add USERNAME --department D "
                                    "[--role user|admin] [--password-file "
                                    "F]");
        if (o.role != NULL && strcmp(o.role, "user") != 0 &&
            strcmp(o.role, "admin") != 0)
            return cli_usage(ad->c, "--role is user or admin");
        if ((x = new_password(ad->c, o.password_file, &pass, &plen)) !=
            EXIT_OK)
            return x;
        req = json_pack("{s:s, s:s, s:s, s:s}", "username", argv[i],
                        "password", pass, "department", o.dept, "role",
                        o.role ? o.role : "user");
        if ((x = call(ad, "POST", "/api/v1/users", req, &res,
                      "cannot add the user")) == EXIT_OK)
            print_new_user(ad, res, argv[i]);
    } else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0 ||
               strcmp(sub, "unlock") == 0 ||
               strcmp(sub, "reset-password") == 0) {
        if (i + 1 != argc)
            return cli_usage(ad->c, "admin user %s USERNAME", sub);
        if (seg_path(path, sizeof(path), "/api/v1/users/", argv[i], "/") != 0)
            return EXIT_ERROR;
        strncat(path, sub, sizeof(path) - strlen(path) - 1);
        if (strcmp(sub, "reset-password") == 0) {
            if ((x = new_password(ad->c, o.password_file, &pass, &plen)) !=
                EXIT_OK)
                return x;
            req = json_pack("{s:s}", "password", pass);
        }
        snprintf(text, sizeof(text), "user %s: %s done", argv[i], sub);
        if ((x = call(ad, "POST", path, req, &res, text)) == EXIT_OK) {
            snprintf(text, sizeof(text), "user %s: %s", argv[i],
                     strcmp(sub, "disable") == 0  ? "disabled"
                     : strcmp(sub, "enable") == 0 ? "enabled"
                     : strcmp(sub, "unlock") == 0 ? "unlocked"
                                                  : "password reset");
            print_one(ad, res, "user", text);
        }
    } else {
        return cli_usage(ad->c, "unknown subcommand 'user %s'", sub);
    }
    if (req != NULL && pass != NULL)
        json_object_set_new(req, "password", json_string(""));
    cli_secret_free(pass, plen);
    json_decref(req);
    json_decref(res);
    return x;
}

/* ---- devices ---- */

struct dev_opts {
    const char *dept, *category, *alert, *owner;
};

static void dev_on(void *arg, int ch, const char *val)
{
    struct dev_opts *o = arg;

    if (ch == 'd')
        o->dept = val;
    else if (ch == 'c')
        o->category = val;
    else if (ch == 'a')
        o->alert = val;
    else if (ch == 'o')
        o->owner = val;
}

static const struct option dev_extra[] = {
    {"department", required_argument, NULL, 'd'},
    {"category", required_argument, NULL, 'c'},
    {"alert", required_argument, NULL, 'a'},
    {"owner", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

/* Append "&key=value" (escaped) to a query. */
static void query_add(char *q, size_t len, const char *key, const char *val)
{
    char *e;

    if (val == NULL || (e = cli_url_escape(val)) == NULL)
        return;
    snprintf(q + strlen(q), len - strlen(q), "%c%s=%s",
             strchr(q, '?') ? '&' : '?', key, e);
    free(e);
}

static int admin_devices(struct admin *ad, int argc, char **argv)
{
    static const struct column cols[] = {
        {"ID", 32, {"id", "device_id", NULL}},
        {"NAME", 16, {"name", NULL}},
        {"CATEGORY", 8, {"category", NULL}},
        {"DEPARTMENT", 12, {"department", NULL}},
        {"OWNER", 10, {"owner", NULL}},
        {"LAST BACKUP", 20, {"last_backup", NULL}},
        {"%DONE", 5, {"percent", "percent_complete", NULL}},
        {"ALERT", 8, {"alert", NULL}},
    };
    struct dev_opts o = {NULL, NULL, NULL, NULL};
    json_t *res = NULL;
    char path[1024];
    int i, x;

    if ((i = parse(ad, argc, argv, dev_extra, dev_on, &o)) < 0)
        return EXIT_USAGE;
    if (i != argc)
        return cli_usage(ad->c, "admin devices [--department D] [--category "
                                "C] [--alert A] [--json|--csv]");
    snprintf(path, sizeof(path), "/api/v1/devices");
    query_add(path, sizeof(path), "department", o.dept);
    query_add(path, sizeof(path), "category", o.category);
    query_add(path, sizeof(path), "alert", o.alert);
    if ((x = call(ad, "GET", path, NULL, &res, "cannot list devices")) ==
        EXIT_OK)
        print_list(ad, res, "device", cols, 8);
    json_decref(res);
    return x;
}

static int admin_device(struct admin *ad, int argc, char **argv)
{
    struct dev_opts o = {NULL, NULL, NULL, NULL};
    json_t *req, *res = NULL;
    char path[512], text[256];
    int i, x;

    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return cli_usage(ad->c, "admin device set ID [--category C] "
                                "[--department D] [--owner U]");
    if ((i = parse(ad, argc - 1, argv + 1, dev_extra, dev_on, &o)) < 0)
        return EXIT_USAGE;
    i++;
    if (i + 1 != argc || (o.dept == NULL && o.category == NULL &&
                          o.owner == NULL))
        return cli_usage(ad->c, "admin device set ID [--category C] "
                                "[--department D] [--owner U]");
    req = json_object();
    if (o.category != NULL)
        json_object_set_new(req, "category", json_string(o.category));
    if (o.dept != NULL)
        json_object_set_new(req, "department", json_string(o.dept));
    if (o.owner != NULL)
        json_object_set_new(req, "owner", json_string(o.owner));
    if (seg_path(path, sizeof(path), "/api/v1/devices/", argv[i], "") != 0) {
        json_decref(req);
        return EXIT_ERROR;
    }
    if ((x = call(ad, "PATCH", path, req, &res,
                  "cannot change the device")) == EXIT_OK) {
        snprintf(text, sizeof(text), "device %s changed", argv[i]);
        print_one(ad, res, "device", text);
    }
    json_decref(req);
    json_decref(res);
    return x;
}

static int admin_migration(struct admin *ad, int argc, char **argv)
{
    static const struct column cols[] = {
        {"ID", 32, {"id", "device_id", NULL}},
        {"NAME", 16, {"name", NULL}},
        {"DEPARTMENT", 12, {"department", NULL}},
        {"FIRST FULL BACKUP", 20, {"first_backup", "first_full_backup",
                                   NULL}},
        {"LEGACY DUE", 20, {"legacy_due", NULL}},
        {"OVERDUE", 7, {"overdue", NULL}},
        {"CANCELLED", 20, {"cancelled_at", "legacy_cancelled_at", NULL}},
    };
    json_t *res = NULL;
    int i, x;

    if ((i = parse(ad, argc, argv, NULL, NULL, NULL)) < 0)
        return EXIT_USAGE;
    if (i != argc)
        return cli_usage(ad->c, "admin migration [--json|--csv]");
    if ((x = call(ad, "GET", "/api/v1/migration", NULL, &res,
                  "cannot read the migration report")) == EXIT_OK)
        print_list(ad, res, "migration", cols, 7);
    json_decref(res);
    return x;
}

static int admin_legacy(struct admin *ad, int argc, char **argv)
{
    json_t *res = NULL;
    char path[512], text[256];
    int i, x;

    if ((i = parse(ad, argc, argv, NULL, NULL, NULL)) < 0)
        return EXIT_USAGE;
    if (i + 1 != argc)
        return cli_usage(ad->c, "admin legacy-cancelled DEVICE_ID");
    if (seg_path(path, sizeof(path), "/api/v1/devices/", argv[i],
                 "/legacy-cancelled") != 0)
        return EXIT_ERROR;
    if ((x = call(ad, "POST", path, NULL, &res,
                  "cannot mark the legacy service cancelled")) == EXIT_OK) {
        snprintf(text, sizeof(text),
                 "device %s: legacy service marked cancelled", argv[i]);
        print_one(ad, res, "device", text);
    }
    json_decref(res);
    return x;
}

/* ---- the audit log ---- */

struct audit_opts {
    const char *since, *until, *user, *action, *device, *limit;
};

static void audit_on(void *arg, int ch, const char *val)
{
    struct audit_opts *o = arg;

    if (ch == 's')
        o->since = val;
    else if (ch == 'u')
        o->until = val;
    else if (ch == 'U')
        o->user = val;
    else if (ch == 'a')
        o->action = val;
    else if (ch == 'd')
        o->device = val;
    else if (ch == 'l')
        o->limit = val;
}

static int admin_audit(struct admin *ad, int argc, char **argv)
{
    static const struct option extra[] = {
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"user", required_argument, NULL, 'U'},
        {"action", required_argument, NULL, 'a'},
        {"device", required_argument, NULL, 'd'},
        {"limit", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    static const struct column cols[] = {
        {"TIME", 20, {"time", NULL}},
        {"USER", 12, {"user", NULL}},
        {"ADDRESS", 15, {"addr", NULL}},
        {"ACTION", 20, {"action", NULL}},
        {"TARGET", 24, {"target", NULL}},
        {"DEVICE", 32, {"device", NULL}},
    };
    struct audit_opts o = {NULL, NULL, NULL, NULL, NULL, NULL};
    char path[2048], since[64], until[64];
    json_t *res = NULL;
    int i, x;

    if ((i = parse(ad, argc, argv, extra, audit_on, &o)) < 0)
        return EXIT_USAGE;
    if (i != argc)
        return cli_usage(ad->c, "admin audit [--since T] [--until T] "
                                "[--user U] [--action A] [--device D] "
                                "[--limit N] [--json|--csv]");
    snprintf(path, sizeof(path), "/api/v1/audit");
    if (o.since != NULL) {
        wave_date(o.since, since, sizeof(since));
        query_add(path, sizeof(path), "since", since);
    }
    if (o.until != NULL) {
        wave_date(o.until, until, sizeof(until));
        query_add(path, sizeof(path), "until", until);
    }
    query_add(path, sizeof(path), "user", o.user);
    query_add(path, sizeof(path), "action", o.action);
    query_add(path, sizeof(path), "device", o.device);
    query_add(path, sizeof(path), "limit", o.limit);
    if ((x = call(ad, "GET", path, NULL, &res,
                  "cannot read the audit log")) == EXIT_OK)
        print_list(ad, res, "audit", cols, 6);
    json_decref(res);
    return x;
}

/* ---- restore requests ---- */

struct req_opts {
    const char *state, *reason, *how, *push_id, *note, *dept, *device;
};

static void req_on(void *arg, int ch, const char *val)
{
    struct req_opts *o = arg;

    if (ch == 's')
        o->state = val;
    else if (ch == 'r')
        o->reason = val;
    else if (ch == 'h')
        o->how = val;
    else if (ch == 'p')
        o->push_id = val;
    else if (ch == 'n')
        o->note = val;
    else if (ch == 'd')
        o->dept = val;
    else if (ch == 'D')
        o->device = val;
}

static int admin_requests(struct admin *ad, int argc, char **argv)
{
    static const struct option extra[] = {
        {"state", required_argument, NULL, 's'},
        {"reason", required_argument, NULL, 'r'},
        {"how", required_argument, NULL, 'h'},
        {"push-id", required_argument, NULL, 'p'},
        {"note", required_argument, NULL, 'n'},
        {"department", required_argument, NULL, 'd'},
        {"device", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    static const struct column cols[] = {
        {"ID", 6, {"id", NULL}},
        {"STATE", 9, {"state", NULL}},
        {"DEVICE", 32, {"device", NULL}},
        {"DEPARTMENT", 12, {"department", NULL}},
        {"ASKED BY", 12, {"requester", NULL}},
        {"ASKED AT", 20, {"created", NULL}},
        {"TO", 20, {"destination", NULL}},
    };
    struct req_opts o = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const char *sub = "list";
    json_t *req = NULL, *res = NULL;
    char path[1024], text[256], *end;
    long long pid;
    int i, x, first = 1;

    if (argc >= 2 && argv[1][0] != '-') {
        sub = argv[1];
        first = 2;
    }
    if ((i = parse(ad, argc - first + 1, argv + first - 1, extra, req_on,
                   &o)) < 0)
        return EXIT_USAGE;
    i += first - 1;
    if (strcmp(sub, "list") == 0) {
        if (i != argc)
            return cli_usage(ad->c, "admin requests [list] [--state S] "
                                    "[--department D] [--device ID]");
        snprintf(path, sizeof(path), "/api/v1/requests");
        query_add(path, sizeof(path), "state", o.state);
        query_add(path, sizeof(path), "department", o.dept);
        query_add(path, sizeof(path), "device", o.device);
        if ((x = call(ad, "GET", path, NULL, &res,
                      "cannot list restore requests")) == EXIT_OK)
            print_list(ad, res, "request", cols, 7);
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "decline") == 0 ||
               strcmp(sub, "fulfil") == 0) {
        if (i + 1 != argc || strspn(argv[i], "0123456789") !=
                                 strlen(argv[i]) || argv[i][0] == '\0')
            return cli_usage(ad->c, "admin requests %s ID (a number)", sub);
        snprintf(path, sizeof(path), "/api/v1/requests/%s%s%s", argv[i],
                 strcmp(sub, "show") == 0 ? "" : "/",
                 strcmp(sub, "show") == 0 ? "" : sub);
        if (strcmp(sub, "decline") == 0) {
            if (o.reason == NULL)
                return cli_usage(ad->c, "admin requests decline ID --reason "
                                        "TEXT (the requester reads it)");
            req = json_pack("{s:s}", "reason", o.reason);
        } else if (strcmp(sub, "fulfil") == 0) {
            if (o.how == NULL || (strcmp(o.how, "push") != 0 &&
                                  strcmp(o.how, "download") != 0))
                return cli_usage(ad->c, "admin requests fulfil ID --how "
                                        "push|download [--push-id N] "
                                        "[--note TEXT]");
            req = json_pack("{s:s}", "how", o.how);
            if (o.push_id != NULL) {
                pid = strtoll(o.push_id, &end, 10);
                if (end == o.push_id || *end != '\0' || pid <= 0) {
                    json_decref(req);
                    return cli_usage(ad->c, "--push-id is a number");
                }
                json_object_set_new(req, "push_id", json_integer(pid));
            }
            if (o.note != NULL)
                json_object_set_new(req, "note", json_string(o.note));
        }
        snprintf(text, sizeof(text), "cannot %s request %s",
                 strcmp(sub, "show") == 0 ? "read" : sub, argv[i]);
        if ((x = call(ad, strcmp(sub, "show") == 0 ? "GET" : "POST", path,
                      req, &res, text)) == EXIT_OK) {
            snprintf(text, sizeof(text), "request %s: %s", argv[i],
                     json_string_value(json_object_get(res, "state"))
                         ? json_string_value(json_object_get(res, "state"))
                         : "?");
            print_one(ad, res, "request", text);
        }
    } else {
        return cli_usage(ad->c, "unknown subcommand 'requests %s' (list, "
                                "show, decline, fulfil)",
                         sub);
    }
    json_decref(req);
    json_decref(res);
    return x;
}

/* `admin settings ...` (cmd_admin_settings.c) opens its own session. */
static int admin_settings_sub(struct admin *ad, int argc, char **argv)
{
    return admin_settings(ad->c, argc, argv);
}

int cmd_admin(struct cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct admin *, int, char **);
    } subs[] = {
        {"department", admin_department}, {"user", admin_user},
        {"devices", admin_devices},       {"device", admin_device},
        {"migration", admin_migration},   {"legacy-cancelled", admin_legacy},
        {"audit", admin_audit},           {"requests", admin_requests},
        {"settings", admin_settings_sub},
    };
    struct admin ad = {c, NULL, c->json ? OUT_JSON : OUT_TABLE};
    size_t i;
    int x;

    if (argc < 2)
        return cli_usage(c, "admin department|user|devices|device|migration|"
                            "legacy-cancelled|audit|requests|settings ...");
    for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        if ((x = cli_session_api(c, &ad.a, NULL)) != EXIT_OK)
            return x;
        x = subs[i].fn(&ad, argc - 1, argv + 1);
        cli_api_free(ad.a);
        return x;
    }
    return cli_usage(c, "unknown admin subcommand '%s'", argv[1]);
}
