/*
 * cli_pass.c - where passphrases come from: a file, a command, or the
 * terminal (echo off).  Never logged; wiped after use.
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

void cli_password_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    cairn_wipe(p, len + 1);
    free(p);
}

/* Read the first line of f into a fresh buffer. */
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

static int from_file(struct cli *c, const char *path, char **out,
                     size_t *out_len)
{
    FILE *f;
    int rc;

    if ((f = fopen(path, "re")) == NULL) {
        cli_error(c, "cannot read the passphrase file %s: %s", path,
                  strerror(errno));
        return EXIT_ERROR;
    }
    rc = first_line(f, out, out_len);
    fclose(f);
    if (rc != 0) {
        cli_error(c, "cannot read the passphrase file %s: %s", path,
                  strerror(errno));
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int from_command(struct cli *c, const char *cmd, char **out,
                        size_t *out_len)
{
    FILE *f;
    int rc, status;

    if ((f = popen(cmd, "re")) == NULL) {
        cli_error(c, "cannot run the passphrase command: %s", strerror(errno));
        return EXIT_ERROR;
    }
    rc = first_line(f, out, out_len);
    status = pclose(f);
    if (rc != 0 || status != 0) {
        if (rc == 0)
            cli_password_free(*out, *out_len);
        cli_error(c, "the passphrase command failed (exit status %d)",
                  status);
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

static int from_tty(struct cli *c, const char *prompt, char **out,
                    size_t *out_len)
{
    struct termios old, noecho;
    FILE *tty;
    int rc;

    if ((tty = fopen("/dev/tty", "r+e")) == NULL) {
        cli_error(c, "no passphrase: set CAIRN_PASSWORD_FILE or "
                     "CAIRN_PASSWORD_COMMAND, or run on a terminal");
        return EXIT_ERROR;
    }
    fputs(prompt, tty);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
    }
    rc = first_line(tty, out, out_len);
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (rc != 0) {
        cli_error(c, "cannot read the passphrase");
        return EXIT_ERROR;
    }
    return EXIT_OK;
}

int cli_password(struct cli *c, int new_pass, char **out, size_t *out_len)
{
    const char *nf = new_pass ? getenv("CAIRN_NEW_PASSWORD_FILE") : NULL;
    char *again;
    size_t alen;
    int x;

    if (new_pass && c->new_password_file != NULL)
        nf = c->new_password_file;
    if (nf != NULL)
        x = from_file(c, nf, out, out_len);
    else if (!new_pass && c->password_file != NULL)
        x = from_file(c, c->password_file, out, out_len);
    else if (!new_pass && c->password_command != NULL)
        x = from_command(c, c->password_command, out, out_len);
    else if (new_pass && c->password_file != NULL && !c->interactive_new)
        x = from_file(c, c->password_file, out, out_len);
    else if (new_pass && c->password_command != NULL && !c->interactive_new)
        x = from_command(c, c->password_command, out, out_len);
    else if (!new_pass)
        return from_tty(c, "passphrase: ", out, out_len);
    else {
        if ((x = from_tty(c, "new passphrase: ", out, out_len)) != EXIT_OK)
            return x;
        if ((x = from_tty(c, "again: ", &again, &alen)) != EXIT_OK) {
            cli_password_free(*out, *out_len);
            return x;
        }
        if (alen != *out_len || memcmp(again, *out, alen) != 0) {
            cli_password_free(again, alen);
            cli_password_free(*out, *out_len);
            cli_error(c, "the passphrases do not match");
            return EXIT_ERROR;
        }
        cli_password_free(again, alen);
        x = EXIT_OK;
    }
    if (x == EXIT_OK && *out_len == 0) {
        cli_password_free(*out, *out_len);
        cli_error(c, "the passphrase is empty");
        return EXIT_ERROR;
    }
    return x;
}
