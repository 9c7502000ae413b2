/*
 * cmd_admin_settings.c - `cairn admin settings show|set`: the settings
 * the server pushes to every agent of the organisation or of one
 * department, and which of them are locked (docs/CLI.md, docs/AGENT.md).
 *
 * set reads the current settings, changes what the arguments say and
 * writes them back whole (PUT).  Values are checked here against the
 * agent's own table of keys (agent/settings_keys.h) for a clear message
 * before the server checks them again.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/settings_keys.h"
#include "cli.h"

#define SET_ARGS_MAX 256

struct set_args {
    const char *dept;
    const char *lock[SET_ARGS_MAX], *unlock[SET_ARGS_MAX],
        *unset[SET_ARGS_MAX];
    int nlock, nunlock, nunset;
};

/* "/api/v1/settings" or "/api/v1/departments/<D>/settings". */
static int scope_path(const char *dept, char *out, size_t len)
{
    char *e;

    if (dept == NULL) {
        snprintf(out, len, "/api/v1/settings");
        return 0;
    }
    if ((e = cli_url_escape(dept)) == NULL)
        return -1;
    snprintf(out, len, "/api/v1/departments/%s/settings", e);
    free(e);
    return 0;
}

static int call(struct cli *c, struct cli_api *a, const char *method,
                const char *path, json_t *body, json_t **res,
                const char *what)
{
    const struct cli_api_error *e;

    if (cli_api_call(a, method, path, body, res) == 0)
        return EXIT_OK;
    e = cli_api_last_error(a);
    if (strcmp(e->code, "forbidden") == 0) {
        cli_error(c, "%s: %s (this needs an administrator's session)", what,
                  e->message);
        return EXIT_ERROR;
    }
    return cli_api_report(c, a, what);
}

static int is_locked(json_t *locked, const char *key)
{
    size_t i;

    for (i = 0; i < json_array_size(locked); i++)
        if (strcmp(json_string_value(json_array_get(locked, i)), key) == 0)
            return 1;
    return 0;
}

/* Print an answer {"scope", "department", "settings", "locked", ...}. */
static void print_settings(struct cli *c, json_t *res)
{
    json_t *settings = json_object_get(res, "settings");
    json_t *locked = json_object_get(res, "locked");
    json_t *o, *v, *d;
    const struct agent_setting_key *keys;
    char *text;
    size_t n, i;

    if (c->json) {
        o = json_is_object(res) ? json_deep_copy(res) : json_object();
        json_object_set_new(o, "message_type", json_string("settings"));
        cli_json_emit(o);
        return;
    }
    if (c->quiet)
        return;
    d = json_object_get(res, "department");
    printf("agent settings of %s%s\n",
           json_is_string(d) ? "department " : "the organisation",
           json_is_string(d) ? json_string_value(d) : "");
    printf("%-18s %-7s %s\n", "KEY", "LOCKED", "VALUE");
    keys = agent_setting_keys(&n);
    for (i = 0; i < n; i++) {
        if (!keys[i].pushable)
            continue;
        v = json_object_get(settings, keys[i].name);
        if (v == NULL && !is_locked(locked, keys[i].name))
            continue;
        text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        printf("%-18s %-7s %s\n", keys[i].name,
               is_locked(locked, keys[i].name) ? "locked" : "-",
               text ? text : "(the agent's default)");
        free(text);
    }
}

/* Parse "true/yes/on", "false/no/off". */
static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/*
 * Apply KEY=VALUE to settings.  List keys: a JSON array replaces the
 * list, "" empties it, other text is one entry (repeat KEY=VALUE to add
 * more).  EXIT_OK or EXIT_USAGE (reported).
 */
static int apply_arg(struct cli *c, json_t *settings, json_t *fresh,
                     const char *arg)
{
    const struct agent_setting_key *k;
    const char *eq = strchr(arg, '='), *val;
    char key[64], why[256], *end;
    json_t *v = NULL, *list;
    json_error_t jerr;
    uint64_t size;
    long long n;
    int b;

    if (eq == NULL || (size_t)(eq - arg) >= sizeof(key) || eq == arg)
        return cli_usage(c, "expected KEY=VALUE, not '%s'", arg);
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    val = eq + 1;
    if ((k = agent_setting_find(key)) == NULL || !k->pushable)
        return cli_usage(c, "unknown setting '%s' (see docs/AGENT.md)", key);
    switch (k->type) {
    case AGENT_SETTING_PATHS:
    case AGENT_SETTING_PATTERNS:
        if (val[0] == '[') {
            v = json_loads(val, JSON_REJECT_DUPLICATES, &jerr);
            if (v == NULL)
                return cli_usage(c, "%s: not a JSON array: %s", key,
                                 jerr.text);
            json_object_set_new(settings, key, v);
            json_object_set_new(fresh, key, json_true());
            break;
        }
        /* The first KEY=VALUE of a run replaces the list; others add. */
        list = json_object_get(settings, key);
        if (!json_is_true(json_object_get(fresh, key)) ||
            !json_is_array(list)) {
            list = json_array();
            json_object_set_new(settings, key, list);
            json_object_set_new(fresh, key, json_true());
        }
        if (val[0] != '\0')
            json_array_append_new(list, json_string(val));
        break;
    case AGENT_SETTING_BOOL:
        if (parse_bool(val, &b) != 0)
            return cli_usage(c, "%s must be true or false", key);
        json_object_set_new(settings, key, json_boolean(b));
        break;
    case AGENT_SETTING_INT:
        if (strcmp(key, "bandwidth_limit") == 0) {
            if (cli_parse_size(val, &size) != 0 || size > INT64_MAX)
                return cli_usage(c, "%s must be bytes per second (e.g. "
                                    "1048576 or 1M)",
                                 key);
            json_object_set_new(settings, key, json_integer((json_int_t)size));
            break;
        }
        n = strtoll(val, &end, 10);
        if (val[0] == '\0' || *end != '\0')
            return cli_usage(c, "%s must be an integer", key);
        json_object_set_new(settings, key, json_integer(n));
        break;
    case AGENT_SETTING_HHMM:
        json_object_set_new(settings, key, json_string(val));
        break;
    default:
        return cli_usage(c, "%s cannot be set here", key);
    }
    if (agent_setting_check(k, json_object_get(settings, key), why,
                            sizeof(why)) != 0)
        return cli_usage(c, "%s", why);
    return EXIT_OK;
}

static int settings_show(struct cli *c, struct cli_api *a, int argc,
                         char **argv)
{
    static const struct option opts[] = {
        {"department", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    const char *dept = NULL;
    json_t *res = NULL;
    char path[512];
    int ch, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            dept = optarg;
        else if (ch == 'j')
            c->json = 1;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage(c, "admin settings show [--department D] [--json]");
    if (scope_path(dept, path, sizeof(path)) != 0)
        return EXIT_ERROR;
    if ((x = call(c, a, "GET", path, NULL, &res,
                  "cannot read the agent settings")) == EXIT_OK)
        print_settings(c, res);
    json_decref(res);
    return x;
}

static int settings_set(struct cli *c, struct cli_api *a, int argc,
                        char **argv)
{
    static const struct option opts[] = {
        {"department", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"lock", required_argument, NULL, 'l'},
        {"unlock", required_argument, NULL, 'u'},
        {"unset", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "admin settings set [--department D] [KEY=VALUE...] [--lock KEY]... "
        "[--unlock KEY]... [--unset KEY]... [--json]";
    struct set_args s;
    json_t *res = NULL, *settings, *locked, *fresh = NULL, *body = NULL;
    char path[512];
    size_t i;
    int ch, x, k;

    memset(&s, 0, sizeof(s));
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd')
            s.dept = optarg;
        else if (ch == 'j')
            c->json = 1;
        else if (ch == 'l' && s.nlock < SET_ARGS_MAX)
            s.lock[s.nlock++] = optarg;
        else if (ch == 'u' && s.nunlock < SET_ARGS_MAX)
            s.unlock[s.nunlock++] = optarg;
        else if (ch == 'x' && s.nunset < SET_ARGS_MAX)
            s.unset[s.nunset++] = optarg;
        else
            return cli_usage(c, "%s", usage);
    }
    if (optind == argc && s.nlock + s.nunlock + s.nunset == 0)
        return cli_usage(c, "%s", usage);
    for (k = 0; k < s.nlock; k++) {
        const struct agent_setting_key *key = agent_setting_find(s.lock[k]);

        if (key == NULL || !key->pushable)
            return cli_usage(c, "--lock: unknown setting '%s'", s.lock[k]);
    }
    if (scope_path(s.dept, path, sizeof(path)) != 0)
        return EXIT_ERROR;
    if ((x = call(c, a, "GET", path, NULL, &res,
                  "cannot read the agent settings")) != EXIT_OK)
        goto out;
    settings = json_object_get(res, "settings");
    locked = json_object_get(res, "locked");
    if (!json_is_object(settings) || !json_is_array(locked)) {
        cli_error(c, "the server's answer has no settings");
        x = EXIT_ERROR;
        goto out;
    }
    fresh = json_object();
    for (; optind < argc; optind++)
        if ((x = apply_arg(c, settings, fresh, argv[optind])) != EXIT_OK)
            goto out;
    for (k = 0; k < s.nunset; k++)
        json_object_del(settings, s.unset[k]);
    for (k = 0; k < s.nunlock; k++)
        for (i = json_array_size(locked); i-- > 0;)
            if (strcmp(json_string_value(json_array_get(locked, i)),
                       s.unlock[k]) == 0)
                json_array_remove(locked, i);
    for (k = 0; k < s.nlock; k++)
        if (!is_locked(locked, s.lock[k]))
            json_array_append_new(locked, json_string(s.lock[k]));
    body = json_pack("{s:O, s:O}", "settings", settings, "locked", locked);
    json_decref(res);
    res = NULL;
    if ((x = call(c, a, "PUT", path, body, &res,
                  "cannot change the agent settings")) == EXIT_OK)
        print_settings(c, res);
out:
    json_decref(body);
    json_decref(fresh);
    json_decref(res);
    return x;
}

/*
 * `cairn admin settings show|set ...`: argv[0] is "settings".  Opens the
 * saved session itself.  Returns an exit code.
 */
int admin_settings(struct cli *c, int argc, char **argv)
{
    struct cli_api *a = NULL;
    int x;

    if (argc < 2 || (strcmp(argv[1], "show") != 0 &&
                     strcmp(argv[1], "set") != 0))
        return cli_usage(c, "admin settings show|set ...");
    if ((x = cli_session_api(c, &a, NULL)) != EXIT_OK)
        return x;
    if (strcmp(argv[1], "show") == 0)
        x = settings_show(c, a, argc - 1, argv + 1);
    else
        x = settings_set(c, a, argc - 1, argv + 1);
    cli_api_free(a);
    return x;
}
