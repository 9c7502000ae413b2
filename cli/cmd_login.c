/*
 * cmd_login.c - `cairn login` and `cairn logout`, and the login every
 * command that talks to the server as a person shares: the server's key
 * pinned on first contact, password, then a TOTP code (or a recovery
 * code), the session kept in the session file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "cli.h"

void cli_login_init(struct cli_login *l)
{
    memset(l, 0, sizeof(*l));
    l->server = getenv("CAIRN_SERVER");
    l->pin = getenv("CAIRN_SERVER_PIN");
    l->username = getenv("CAIRN_USERNAME");
    l->password_file = getenv("CAIRN_LOGIN_PASSWORD_FILE");
    l->totp_command = getenv("CAIRN_TOTP_COMMAND");
    l->totp_file = getenv("CAIRN_TOTP_FILE");
    l->recovery_file = getenv("CAIRN_RECOVERY_CODE_FILE");
}

int cli_login_option(struct cli_login *l, int ch, const char *arg)
{
    switch (ch) {
    case 1001:
        l->server = arg;
        return 1;
    case 1002:
        l->pin = arg;
        return 1;
    case 1003:
        l->username = arg;
        return 1;
    case 1004:
        l->password_file = arg;
        return 1;
    case 1005:
        /* A flag beats the environment. */
        l->totp_command = arg;
        l->totp_file = NULL;
        return 1;
    case 1006:
        l->totp_file = arg;
        l->totp_command = NULL;
        return 1;
    case 1007:
        l->recovery_file = arg;
        return 1;
    default:
        return 0;
    }
}

/* Do two server URLs name the same server? */
static int same_server(const char *a, const char *b)
{
    char *na = cli_api_normalize_url(a), *nb = cli_api_normalize_url(b);
    int same = na != NULL && nb != NULL && strcmp(na, nb) == 0;

    free(na);
    free(nb);
    return same;
}

/*
 * The pin to use for server: given, else known from the session or the
 * device file, else fetched and confirmed on the terminal (first use).
 * *out malloc'ed.
 */
static int resolve_pin(struct cli *c, const char *server, const char *given,
                       const struct cli_session *s, char **out)
{
    struct cli_device *d = NULL;
    char pin[128], err[512];
    int yes;

    if (given != NULL && given[0] != '\0')
        return (*out = strdup(given)) != NULL ? EXIT_OK : EXIT_ERROR;
    if (s != NULL && s->pin != NULL && same_server(s->server, server))
        return (*out = strdup(s->pin)) != NULL ? EXIT_OK : EXIT_ERROR;
    if (cli_device_load(c, &d) == EXIT_OK) {
        if (d->pin != NULL && same_server(d->server, server)) {
            *out = strdup(d->pin);
            cli_device_free(d);
            return *out != NULL ? EXIT_OK : EXIT_ERROR;
        }
        cli_device_free(d);
    }
    if (cli_api_fetch_pin(server, pin, sizeof(pin), err, sizeof(err)) != 0) {
        cli_error(c, "%s", err);
        return EXIT_ERROR;
    }
    fprintf(stderr, "cairn: first contact with %s; its key is\n  %s\n",
            server, pin);
    yes = cli_confirm("Is this the key your IT office gave you?");
    if (yes < 0) {
        cli_error(c, "cannot confirm the server's key without a terminal: "
                     "give it with --pin %s (or CAIRN_SERVER_PIN) after "
                     "checking it with your IT office",
                  pin);
        return EXIT_ERROR;
    }
    if (!yes) {
        cli_error(c, "the server's key was not confirmed; nothing done");
        return EXIT_ERROR;
    }
    return (*out = strdup(pin)) != NULL ? EXIT_OK : EXIT_ERROR;
}

/* POST /api/v1/login with the password: the partial session's token. */
static int login_password(struct cli *c, struct cli_api *a,
                          const char *username, const char *pass,
                          char **out_token)
{
    json_t *req, *res = NULL;
    const char *tok;
    int x = EXIT_OK;

    if ((req = json_pack("{s:s, s:s}", "username", username, "password",
                         pass)) == NULL)
        return EXIT_ERROR;
    if (cli_api_call(a, "POST", "/api/v1/login", req, &res) != 0) {
        x = cli_api_report(c, a, "login failed");
        goto out;
    }
    if ((tok = json_string_value(json_object_get(res, "token"))) == NULL ||
        (*out_token = strdup(tok)) == NULL) {
        cli_error(c, "login failed: the server sent no session token");
        x = EXIT_ERROR;
    }
out:
    /* The request held the password. */
    json_object_set_new(req, "password", json_string(""));
    json_decref(req);
    json_decref(res);
    return x;
}

/* The second step: a TOTP code, or a recovery code. */
static int login_second(struct cli *c, struct cli_login *l,
                        struct cli_api *a)
{
    struct cli_secret_src src = {0};
    const char *field = "code";
    json_t *req, *res = NULL;
    char *code = NULL;
    size_t clen = 0;
    int x;

    if (l->recovery_file != NULL) {
        src.what = "recovery code";
        src.file = l->recovery_file;
        field = "recovery_code";
    } else {
        src.what = "TOTP code";
        src.file = l->totp_file;
        src.command = l->totp_command;
        src.prompt = "code from your authenticator app: ";
        src.hint = "use --totp-command CMD (CAIRN_TOTP_COMMAND) or "
                   "--totp-file F (CAIRN_TOTP_FILE)";
        src.echo = 1;
    }
    if ((x = cli_secret(c, &src, &code, &clen)) != EXIT_OK)
        return x;
    req = json_pack("{s:s}", field, code);
    cli_secret_free(code, clen);
    if (req == NULL)
        return EXIT_ERROR;
    if (cli_api_call(a, "POST", "/api/v1/login/totp", req, &res) != 0)
        x = cli_api_report(c, a, "login failed at the second step");
    json_decref(req);
    json_decref(res);
    return x;
}

/* Is the session behind a still full and valid?  *out_me on success. */
static int session_valid(struct cli_api *a, json_t **out_me)
{
    return cli_api_call(a, "GET", "/api/v1/me", NULL, out_me) == 0 &&
           *out_me != NULL;
}

int cli_login_session(struct cli *c, struct cli_login *l, int reuse,
                      char **out_pass, size_t *out_plen,
                      struct cli_api **out_api, json_t **out_me)
{
    struct cli_secret_src psrc = {0}, usrc = {0};
    struct cli_session *s = NULL, ns = {0};
    struct cli_api *a = NULL;
    json_t *me = NULL;
    char *server = NULL, *pin = NULL, *user = NULL, *pass = NULL;
    char *tok = NULL, *ptok = NULL;
    size_t ulen = 0, plen = 0;
    int x;

    if (out_pass != NULL)
        *out_pass = NULL;
    if (l->server == NULL || l->server[0] == '\0')
        return cli_usage(c, "give the server with --server URL");
    if ((server = cli_api_normalize_url(l->server)) == NULL)
        return EXIT_ERROR;
    x = cli_session_load(c, &s);
    if (x != EXIT_OK && x != EXIT_NOREPO)
        s = NULL;
    if ((x = resolve_pin(c, server, l->pin, s, &pin)) != EXIT_OK)
        goto out;
    x = EXIT_ERROR;
    if (cli_api_new(server, pin, NULL, &a) != 0)
        goto out;

    /* A saved session for this server (and this user) that still works. */
    if (reuse && s != NULL && same_server(s->server, server) &&
        (l->username == NULL ||
         (s->username != NULL && strcmp(s->username, l->username) == 0))) {
        if (cli_api_set_token(a, s->token) != 0)
            goto out;
        if (session_valid(a, &me)) {
            if (out_pass == NULL) {
                x = EXIT_OK;
                goto done;
            }
            /* The password is needed as well: check it with a login
             * that stops at the password step, then drop that. */
            user = strdup(s->username != NULL ? s->username : "");
            ulen = user != NULL ? strlen(user) : 0;
            psrc.what = "password";
            psrc.file = l->password_file;
            psrc.prompt = "password: ";
            psrc.hint = "use --password-file F (CAIRN_LOGIN_PASSWORD_FILE)";
            if (user == NULL ||
                (x = cli_secret(c, &psrc, &pass, &plen)) != EXIT_OK)
                goto out;
            if ((x = login_password(c, a, user, pass, &ptok)) != EXIT_OK)
                goto out;
            if (cli_api_set_token(a, ptok) == 0)
                cli_api_call(a, "POST", "/api/v1/logout", NULL, NULL);
            if (cli_api_set_token(a, s->token) != 0) {
                x = EXIT_ERROR;
                goto out;
            }
            x = EXIT_OK;
            goto done;
        }
        json_decref(me);
        me = NULL;
        cli_api_set_token(a, NULL);
    }

    /* A new login. */
    if (l->username != NULL) {
        if ((user = strdup(l->username)) == NULL)
            goto out;
        ulen = strlen(user);
    } else {
        usrc.what = "user name";
        usrc.prompt = "user name: ";
        usrc.hint = "use --username U (CAIRN_USERNAME)";
        usrc.echo = 1;
        if ((x = cli_secret(c, &usrc, &user, &ulen)) != EXIT_OK)
            goto out;
    }
    psrc.what = "password";
    psrc.file = l->password_file;
    psrc.prompt = "password: ";
    psrc.hint = "use --password-file F (CAIRN_LOGIN_PASSWORD_FILE)";
    if ((x = cli_secret(c, &psrc, &pass, &plen)) != EXIT_OK)
        goto out;
    if ((x = login_password(c, a, user, pass, &tok)) != EXIT_OK)
        goto out;
    x = EXIT_ERROR;
    if (cli_api_set_token(a, tok) != 0)
        goto out;
    if ((x = login_second(c, l, a)) != EXIT_OK)
        goto out;
    if (!session_valid(a, &me)) {
        x = cli_api_report(c, a, "login failed");
        goto out;
    }
    ns.server = server;
    ns.pin = pin;
    ns.token = tok;
    ns.username = user;
    if ((x = cli_session_save(c, &ns)) != EXIT_OK)
        goto out;

done:
    if (out_pass != NULL) {
        *out_pass = pass;
        *out_plen = plen;
        pass = NULL;
    }
    *out_api = a;
    a = NULL;
    *out_me = me;
    me = NULL;
    x = EXIT_OK;
out:
    json_decref(me);
    cli_api_free(a);
    cli_secret_free(pass, plen);
    cli_secret_free(user, ulen);
    cli_secret_free(tok, tok != NULL ? strlen(tok) : 0);
    cli_secret_free(ptok, ptok != NULL ? strlen(ptok) : 0);
    cli_session_free(s);
    free(pin);
    free(server);
    return x;
}

int cli_session_api(struct cli *c, struct cli_api **out,
                    struct cli_session **out_s)
{
    struct cli_session *s = NULL;
    int x;

    if ((x = cli_session_load(c, &s)) != EXIT_OK) {
        if (x == EXIT_NOREPO)
            cli_error(c, "not logged in: run `cairn login --server URL` "
                         "first");
        return x == EXIT_NOREPO ? EXIT_AUTH : x;
    }
    if (cli_api_new(s->server, s->pin, s->token, out) != 0) {
        cli_session_free(s);
        return EXIT_ERROR;
    }
    if (out_s != NULL)
        *out_s = s;
    else
        cli_session_free(s);
    return EXIT_OK;
}

int cmd_login(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_LOGIN_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_login l;
    struct cli_api *a = NULL;
    json_t *me = NULL;
    const char *user, *role;
    int ch, x;

    cli_login_init(&l);
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (!cli_login_option(&l, ch, optarg))
            return EXIT_USAGE;
    if (optind != argc)
        return cli_usage(c, "login takes no arguments");
    if ((x = cli_login_session(c, &l, 0, NULL, NULL, &a, &me)) != EXIT_OK)
        return x;
    user = json_string_value(json_object_get(me, "username"));
    role = json_string_value(json_object_get(me, "role"));
    if (c->json)
        cli_json_emit(json_pack("{s:s, s:s, s:s?, s:s?, s:s?}",
                                "message_type", "login", "server",
                                cli_api_url(a), "username", user, "role",
                                role, "pin", cli_api_pin(a)));
    else if (!c->quiet)
        printf("logged in to %s as %s (%s)\n", cli_api_url(a),
               user ? user : "?", role ? role : "?");
    json_decref(me);
    cli_api_free(a);
    return EXIT_OK;
}

int cmd_logout(struct cli *c, int argc, char **argv)
{
    struct cli_session *s = NULL;
    struct cli_api *a = NULL;
    int x;

    (void)argv;
    if (argc != 1)
        return cli_usage(c, "logout takes no arguments");
    if ((x = cli_session_load(c, &s)) == EXIT_NOREPO) {
        if (!c->quiet && !c->json)
            printf("not logged in\n");
        return EXIT_OK;
    }
    if (x != EXIT_OK)
        return cli_session_remove(c);
    if (cli_api_new(s->server, s->pin, s->token, &a) == 0 &&
        cli_api_call(a, "POST", "/api/v1/logout", NULL, NULL) != 0 &&
        cli_api_last_error(a)->transport)
        cli_warn(c, "could not tell the server (%s); the session ends "
                    "there when it expires",
                 cli_api_last_error(a)->message);
    x = cli_session_remove(c);
    if (x == EXIT_OK && !c->quiet) {
        if (c->json)
            cli_json_emit(json_pack("{s:s, s:s}", "message_type", "logout",
                                    "server", s->server));
        else
            printf("logged out of %s\n", s->server);
    }
    cli_api_free(a);
    cli_session_free(s);
    return x;
}
