/*
 * cmd_key.c - `cairn key list | add | remove ID`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cairn/err.h"
#include "cli.h"

struct key_ctx {
    struct cli *c;
    const char *prefix;
    char match[65];
    int nmatch;
};

static int list_key(void *arg, const char *name,
                    const struct cairn_keyfile_info *info, int current)
{
    struct key_ctx *kc = arg;
    char t[64];

    if (kc->prefix != NULL) {
        if (strncmp(name, kc->prefix, strlen(kc->prefix)) == 0) {
            snprintf(kc->match, sizeof(kc->match), "%s", name);
            kc->nmatch++;
        }
        return 0;
    }
    if (kc->c->json) {
        cli_fmt_time_rfc3339(info->created_ns, t, sizeof(t));
        cli_json_emit(json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:i, s:i}",
                                "message_type", "key", "id", name, "label",
                                info->label, "created", t, "current",
                                current, "kdf_log2_n", info->kdf.log2_n,
                                "kdf_r", (int)info->kdf.r, "kdf_p",
                                (int)info->kdf.p));
    } else {
        cli_fmt_time(info->created_ns, t, sizeof(t));
        printf("%c %.16s  %-19s  %s\n", current ? '*' : ' ', name, t,
               info->label);
    }
    return 0;
}

int cmd_key(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"label", required_argument, NULL, 'l'},
        {"new-password-file", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    struct key_ctx kc = {c, NULL, "", 0};
    struct cairn_repo *r = NULL;
    const char *label = "", *sub;
    char *pass, name[65];
    size_t plen;
    int ch, rc, x;

    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'l')
            label = optarg;
        else if (ch == 'N')
            c->new_password_file = optarg;
        else
            return EXIT_USAGE;
    }
    if (optind >= argc)
        return cli_usage(c, "key list | key add [--label L] | key remove ID");
    sub = argv[optind];
    if ((strcmp(sub, "list") == 0 || strcmp(sub, "add") == 0) &&
        argc - optind != 1)
        return cli_usage(c, "key %s takes no arguments", sub);
    if (strcmp(sub, "remove") == 0 && argc - optind != 2)
        return cli_usage(c, "key remove ID");
    if (strcmp(sub, "list") != 0 && strcmp(sub, "add") != 0 &&
        strcmp(sub, "remove") != 0)
        return cli_usage(c, "unknown key command '%s'", sub);
    if ((x = cli_open_repo(c, 0, &r)) != EXIT_OK)
        return x;

    if (strcmp(sub, "list") == 0) {
        if ((rc = cairn_repo_key_list(r, list_key, &kc)) != 0) {
            cli_error(c, "cannot list keys: %s", cairn_strerror(rc));
            x = cli_exit_for(rc);
        }
    } else if (strcmp(sub, "add") == 0) {
        c->interactive_new = 1;
        if ((x = cli_password(c, 1, &pass, &plen)) != EXIT_OK)
            goto out;
        rc = cairn_repo_key_add(r, pass, plen, NULL, label, name);
        cli_secret_free(pass, plen);
        if (rc != 0) {
            cli_error(c, "cannot add a key: %s", cairn_strerror(rc));
            x = cli_exit_for(rc);
        } else if (c->json) {
            cli_json_emit(json_pack("{s:s, s:s}", "message_type", "summary",
                                    "id", name));
        } else if (!c->quiet) {
            printf("added key %.16s\n", name);
        }
    } else {
        kc.prefix = argv[optind + 1];
        if ((rc = cairn_repo_key_list(r, list_key, &kc)) != 0) {
            cli_error(c, "cannot list keys: %s", cairn_strerror(rc));
            x = cli_exit_for(rc);
            goto out;
        }
        if (kc.nmatch != 1) {
            cli_error(c, kc.nmatch ? "%s matches more than one key"
                                   : "no key %s",
                      kc.prefix);
            x = EXIT_ERROR;
            goto out;
        }
        if (strcmp(kc.match, cairn_repo_key_name(r)) == 0) {
            cli_error(c, "key %.16s is the one in use; open the archive with "
                         "another key to remove it",
                      kc.match);
            x = EXIT_ERROR;
            goto out;
        }
        if ((rc = cairn_repo_key_remove(r, kc.match)) != 0) {
            cli_error(c, "cannot remove key: %s", cairn_strerror(rc));
            x = cli_exit_for(rc);
        } else if (c->json) {
            cli_json_emit(json_pack("{s:s, s:s}", "message_type", "summary",
                                    "removed", kc.match));
        } else if (!c->quiet) {
            printf("removed key %.16s\n", kc.match);
        }
    }
out:
    cairn_repo_free(r);
    return x;
}
