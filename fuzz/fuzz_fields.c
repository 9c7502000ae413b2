/*
 * fuzz_fields.c - the text fields of request bodies that cairnd checks one
 * by one: RFC 3339 times (api_time_parse, wave_start), usernames,
 * department names, TOTP codes and recovery codes (the login).
 *
 * The input, as a C string, goes to each.  Round trips: a parsed time
 * formatted and parsed again is the same second, and a time already in the
 * canonical form ("2026-11-26T10:00:00Z") formats back to itself (an
 * impossible date such as 29 February of a common year is refused, not
 * moved to another day); a recovery code hashes the same in upper case
 * and with extra dashes.
 *
 * The name checks are static functions of server/api_org.c, which is
 * compiled into this target (its symbols come from here; the copy in
 * srv_lib is not linked).
 */
#include "../server/api_org.c"

#include "fuzz.h"

/* A fixed TOTP secret (base32 of 20 bytes) and a time for the codes. */
#define FUZZ_TOTP_SECRET "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define FUZZ_NOW 1764151200

static void time_check(const char *text)
{
    char out[32];
    int64_t t, t2;

    if (api_time_parse(text, &t) != 0)
        return;
    api_time_format(t, out);
    if (t < 0 || api_time_parse(out, &t2) != 0 || t2 != t)
        abort();
    /* Canonical text, not a leap second: formats back to itself. */
    if (strlen(text) == 20 && text[10] == 'T' && text[19] == 'Z' &&
        strncmp(text + 17, "60", 2) != 0 && strcmp(out, text) != 0)
        abort();
}

static void username_check(const char *n)
{
    size_t i, len = strlen(n);

    if (!username_valid(n))
        return;
    if (len == 0 || len > 63 || !isalnum((unsigned char)n[0]))
        abort();
    for (i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._@-", n[i]))
            abort();
}

static void dept_check(const char *n)
{
    size_t i, len = strlen(n);

    if (!dept_name_valid(n))
        return;
    if (len == 0 || len > 127)
        abort();
    for (i = 0; i < len; i++)
        if ((unsigned char)n[i] < 0x20 || n[i] == 0x7f || n[i] == '/')
            abort();
}

static void codes_check(const char *code, size_t len)
{
    char h1[65], h2[65], *v;
    int64_t step = 0;
    size_t i;
    int rc;

    rc = srv_totp_verify(FUZZ_TOTP_SECRET, code, FUZZ_NOW, 0, &step);
    if (rc == 0 || rc == CAIRN_EAUTH) {
        /* Only six digits reach the comparison. */
        if (len != 6)
            abort();
        for (i = 0; i < 6; i++)
            if (code[i] < '0' || code[i] > '9')
                abort();
    } else if (rc != CAIRN_EINVAL && rc != CAIRN_ENOMEM) {
        abort();
    }

    /* "-" + upper case: the same recovery code, or refused alike. */
    if ((v = malloc(len + 2)) == NULL)
        return;
    v[0] = '-';
    for (i = 0; i < len; i++)
        v[i + 1] = (char)toupper((unsigned char)code[i]);
    v[len + 1] = '\0';
    rc = srv_recovery_hash(code, h1);
    if (rc != srv_recovery_hash(v, h2) || (rc == 0 && strcmp(h1, h2) != 0))
        abort();
    free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    time_check(text);
    username_check(text);
    dept_check(text);
    codes_check(text, strlen(text));
    free(text);
    return 0;
}
