/*
 * cmd_status.c - `cairn status`: this computer's backup status as the
 * server sees it (with a person's session), or what the device file knows
 * (without one).  Also the status report a backup to the server sends.
 */
#include <getopt.h>
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

int cmd_status(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
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
        else
            return EXIT_USAGE;
    }
    if (optind != argc)
        return cli_usage(c, "status takes no arguments");
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
    }
    json_decref(res);
    cli_api_free(a);
    cli_session_free(s);
    cli_device_free(d);
    return EXIT_OK;
}
