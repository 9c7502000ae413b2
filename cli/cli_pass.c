/*
 * cli_pass.c - where secrets come from (archive passphrases, login
 * passwords, TOTP codes): a file, a command, or the terminal (echo off).
 * Never logged; wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cairn/crypto.h"
#include "cli.h"

#define PASS_MAX 4096

/* ---- secrets: a file, a command or the terminal ---- */

static int first_line(FILE *f, char **out, size_t *out_len)
{
    char *buf;
    size_t n = 0;
    int ch;

    if ((buf = malloc(PASS_MAX + 1)) == NULL)
        return -1;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
        if (n == PASS_MAX) {
            cairn_wipe(buf, n);
            free(buf);
            errno = E2BIG;
            return -1;
        }
        buf[n++] = (char)ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

int cli_secret(struct cli *c, const struct cli_secret_src *src, char **out,
               size_t *out_len)
{
    struct termios old, noecho;
    FILE *f;
    int rc, status, restore = 0;

    *out = NULL;
    *out_len = 0;
    if (src->file != NULL) {
        if ((f = fopen(src->file, "re")) == NULL) {
            cli_error(c, "cannot read the %s file %s: %s", src->what,
                      src->file, strerror(errno));
            return EXIT_ERROR;
        }
        rc = first_line(f, out, out_len);
        fclose(f);
        if (rc != 0) {
            cli_error(c, "cannot read the %s file %s: %s", src->what,
                      src->file, strerror(errno));
            return EXIT_ERROR;
        }
    } else if (src->command != NULL) {
        if ((f = popen(src->command, "re")) == NULL) {
            cli_error(c, "cannot run the %s command: %s", src->what,
                      strerror(errno));
            return EXIT_ERROR;
        }
        rc = first_line(f, out, out_len);
        status = pclose(f);
        if (rc != 0 || status != 0) {
            if (rc == 0)
                cli_secret_free(*out, *out_len);
            *out = NULL;
            cli_error(c, "the %s command failed (exit status %d)", src->what,
                      status);
            return EXIT_ERROR;
        }
    } else {
        if ((f = fopen("/dev/tty", "r+e")) == NULL) {
            cli_error(c, "no %s: %s, or run on a terminal", src->what,
                      src->hint);
            return EXIT_ERROR;
        }
        fputs(src->prompt, f);
        fflush(f);
        if (!src->echo && tcgetattr(fileno(f), &old) == 0) {
            noecho = old;
            noecho.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(fileno(f), TCSAFLUSH, &noecho);
            restore = 1;
        }
        rc = first_line(f, out, out_len);
        if (restore) {
            tcsetattr(fileno(f), TCSAFLUSH, &old);
            fputc('\n', f);
        }
        fclose(f);
        if (rc != 0) {
            cli_error(c, "cannot read the %s", src->what);
            return EXIT_ERROR;
        }
    }
    if (*out_len == 0) {
        cli_secret_free(*out, 0);
        *out = NULL;
        cli_error(c, "the %s is empty", src->what);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

void cli_secret_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    cairn_wipe(s, len + 1);
    free(s);
}

int cli_confirm(const char *question)
{
    char line[16];
    FILE *f;
    int yes = 0;

    if ((f = fopen("/dev/tty", "r+e")) == NULL)
        return -1;
    fprintf(f, "%s [y/N] ", question);
    fflush(f);
    if (fgets(line, sizeof(line), f) != NULL)
        yes = line[0] == 'y' || line[0] == 'Y';
    fclose(f);
    return yes;
}

/*
 * The archive passphrase (docs/CLI.md): a file, then a command, then the
 * terminal.  A new one (init, key add) comes from --new-password-file or
 * CAIRN_NEW_PASSWORD_FILE first, and is asked twice on a terminal.
 */
int cli_password(struct cli *c, int new_pass, char **out, size_t *out_len)
{
    struct cli_secret_src src = {
        "passphrase", NULL, NULL, "passphrase: ",
        "set CAIRN_PASSWORD_FILE or CAIRN_PASSWORD_COMMAND", 0};
    const char *nf = new_pass ? getenv("CAIRN_NEW_PASSWORD_FILE") : NULL;
    char *again;
    size_t alen;
    int x;

    if (new_pass && c->new_password_file != NULL)
        nf = c->new_password_file;
    if (nf != NULL) {
        src.file = nf;
    } else if (!new_pass || !c->interactive_new) {
        src.file = c->password_file;
        if (src.file == NULL)
            src.command = c->password_command;
    }
    if (src.file != NULL || src.command != NULL || !new_pass)
        return cli_secret(c, &src, out, out_len);

    src.prompt = "new passphrase: ";
    if ((x = cli_secret(c, &src, out, out_len)) != EXIT_OK)
        return x;
    src.prompt = "again: ";
    if ((x = cli_secret(c, &src, &again, &alen)) != EXIT_OK) {
        cli_secret_free(*out, *out_len);
        *out = NULL;
        return x;
    }
    x = alen == *out_len && memcmp(again, *out, alen) == 0;
    cli_secret_free(again, alen);
    if (!x) {
        cli_secret_free(*out, *out_len);
        *out = NULL;
        cli_error(c, "the passphrases do not match");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}
