/*
 * cmd_request.c - `cairn request ...`: ask the IT office to restore files
 * of a shared device of one's department, and follow the request
 * (docs/CLI.md).  Over the server's API with the saved session (cairn
 * login).  Personal devices need no request: their owners restore them.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define PATHS_MAX 64

/* Text of a string member, or dflt. */
static const char *str_of(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));

    return v != NULL ? v : dflt;
}

/* Print one request: a JSON line, or a few lines of text. */
static void print_request(struct cli *c, json_t *q)
{
    json_t *paths = json_object_get(q, "paths"), *p, *o;
    size_t i;

    if (c->json) {
        o = json_is_object(q) ? json_deep_copy(q) : json_object();
        json_object_set_new(o, "message_type", json_string("request"));
        cli_json_emit(o);
        return;
    }
    printf("request %lld: %s\n",
           (long long)json_integer_value(json_object_get(q, "id")),
           str_of(q, "state", "?"));
    printf("  %-12s %s (%s)\n", "device", str_of(q, "device", ""),
           str_of(q, "device_name", ""));
    printf("  %-12s %s\n", "asked by", str_of(q, "requester", "-"));
    printf("  %-12s %s\n", "asked at", str_of(q, "created", "-"));
    json_array_foreach(paths, i, p)
        printf("  %-12s %s\n", i == 0 ? "paths" : "", json_string_value(p));
    if (json_string_value(json_object_get(q, "version")) != NULL)
        printf("  %-12s %s\n", "version", str_of(q, "version", ""));
    else if (json_string_value(json_object_get(q, "as_of")) != NULL)
        printf("  %-12s %s\n", "as of", str_of(q, "as_of", ""));
    else
        printf("  %-12s %s\n", "version", "latest");
    printf("  %-12s %s\n", "to", str_of(q, "destination", ""));
    printf("  %-12s %s\n", "reason", str_of(q, "reason", ""));
    if (strcmp(str_of(q, "state", ""), "open") != 0) {
        printf("  %-12s %s by %s\n", "decided", str_of(q, "decided_at", "-"),
               str_of(q, "decided_by", "-"));
        if (strcmp(str_of(q, "state", ""), "declined") == 0)
            printf("  %-12s %s\n", "why", str_of(q, "outcome", ""));
        else
            printf("  %-12s %s%s%s\n", "how", str_of(q, "how", ""),
                   json_string_value(json_object_get(q, "outcome")) ? ": "
                                                                    : "",
                   str_of(q, "outcome", ""));
    }
}

/* Print a list of requests (the answer's "requests"). */
static void print_requests(struct cli *c, json_t *res)
{
    json_t *arr = json_object_get(res, "requests"), *q;
    size_t i;

    if (c->json) {
        json_array_foreach(arr, i, q) print_request(c, q);
        cli_json_emit(json_pack("{s:s, s:I}", "message_type", "summary",
                                "count", (json_int_t)json_array_size(arr)));
        return;
    }
    printf("%-6s %-10s %-32s %-12s %-20s %s\n", "ID", "STATE", "DEVICE",
           "ASKED BY", "ASKED AT", "TO");
    json_array_foreach(arr, i, q)
    {
        printf("%-6lld %-10s %-32s %-12s %-20s %s\n",
               (long long)json_integer_value(json_object_get(q, "id")),
               str_of(q, "state", ""), str_of(q, "device", ""),
               str_of(q, "requester", "-"), str_of(q, "created", ""),
               str_of(q, "destination", ""));
    }
}

/* A request id: digits only. */
static int id_valid(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 15 && strspn(s, "0123456789") == n;
}

/* "2026-03-01" -> "2026-03-01T00:00:00Z"; other text as it is. */
static void day_time(const char *in, char *out, size_t len)
{
    if (strlen(in) == 10 && in[4] == '-' && in[7] == '-')
        snprintf(out, len, "%sT00:00:00Z", in);
    else
        snprintf(out, len, "%s", in);
}

static int request_new(struct cli *c, struct cli_api *a, int argc,
                       char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"device", required_argument, NULL, 'd'},
        {"path", required_argument, NULL, 'p'},
        {"version", required_argument, NULL, 'V'},
        {"as-of", required_argument, NULL, 'a'},
        {"to", required_argument, NULL, 't'},
        {"reason", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *dev = NULL, *ver = NULL, *asof = NULL, *to = NULL;
    const char *reason = NULL;
    json_t *paths = json_array(), *req = NULL, *res = NULL;
    char when[64];
    int ch, x = EXIT_USAGE;

    if (paths == NULL)
        return EXIT_ERROR;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            c->json = 1;
            break;
        case 'd':
            dev = optarg;
            break;
        case 'p':
            if (json_array_size(paths) >= PATHS_MAX) {
                x = cli_usage(c, "at most %d --path", PATHS_MAX);
                goto done;
            }
            json_array_append_new(paths, json_string(optarg));
            break;
        case 'V':
            ver = optarg;
            break;
        case 'a':
            asof = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'R':
            reason = optarg;
            break;
        default:
            goto done;
        }
    }
    if (optind != argc || dev == NULL || json_array_size(paths) == 0 ||
        to == NULL || reason == NULL || (ver != NULL && asof != NULL)) {
        x = cli_usage(c, "request new --device ID --path P [--path P ...] "
                         "[--version SNAPSHOT | --as-of TIME] --to TEXT "
                         "--reason TEXT");
        goto done;
    }
    req = json_pack("{s:s, s:O, s:s, s:s}", "device", dev, "paths", paths,
                    "destination", to, "reason", reason);
    if (req == NULL) {
        x = EXIT_ERROR;
        goto done;
    }
    if (ver != NULL)
        json_object_set_new(req, "version", json_string(ver));
    if (asof != NULL) {
        day_time(asof, when, sizeof(when));
        json_object_set_new(req, "as_of", json_string(when));
    }
    if (cli_api_call(a, "POST", "/api/v1/requests", req, &res) != 0) {
        x = cli_api_report(c, a, "cannot file the request");
        goto done;
    }
    if (!c->json && !c->quiet)
        printf("request %lld filed; the IT office will restore it or say "
               "why not (cairn request show %lld)\n",
               (long long)json_integer_value(json_object_get(res, "id")),
               (long long)json_integer_value(json_object_get(res, "id")));
    else if (c->json)
        print_request(c, res);
    x = EXIT_OK;
done:
    json_decref(res);
    json_decref(req);
    json_decref(paths);
    return x;
}

static int request_list(struct cli *c, struct cli_api *a, int argc,
                        char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"state", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *state = NULL;
    char path[128];
    json_t *res = NULL;
    int ch;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'j')
            c->json = 1;
        else if (ch == 's')
            state = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage(c, "request list [--state open|fulfilled|declined]");
    if (state != NULL && strcmp(state, "open") != 0 &&
        strcmp(state, "fulfilled") != 0 && strcmp(state, "declined") != 0)
        return cli_usage(c, "--state is open, fulfilled or declined");
    snprintf(path, sizeof(path), "/api/v1/requests%s%s",
             state ? "?state=" : "", state ? state : "");
    if (cli_api_call(a, "GET", path, NULL, &res) != 0)
        return cli_api_report(c, a, "cannot list requests");
    print_requests(c, res);
    json_decref(res);
    return EXIT_OK;
}

static int request_show(struct cli *c, struct cli_api *a, int argc,
                        char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    char path[64];
    json_t *res = NULL;
    int ch;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'j')
            c->json = 1;
        else
            return EXIT_USAGE;
    }
    if (optind + 1 != argc || !id_valid(argv[optind]))
        return cli_usage(c, "request show ID (a number)");
    snprintf(path, sizeof(path), "/api/v1/requests/%s", argv[optind]);
    if (cli_api_call(a, "GET", path, NULL, &res) != 0)
        return cli_api_report(c, a, "cannot read the request");
    print_request(c, res);
    json_decref(res);
    return EXIT_OK;
}

int cmd_request(struct cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(struct cli *, struct cli_api *, int, char **);
    } subs[] = {
        {"new", request_new},
        {"list", request_list},
        {"show", request_show},
    };
    struct cli_api *a = NULL;
    size_t i;
    int x;

    if (argc < 2)
        return cli_usage(c, "request new|list|show ...");
    for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        if ((x = cli_session_api(c, &a, NULL)) != EXIT_OK)
            return x;
        x = subs[i].fn(c, a, argc - 1, argv + 1);
        cli_api_free(a);
        return x;
    }
    return cli_usage(c, "unknown subcommand 'request %s' (new, list, show)",
                     argv[1]);
}
