/*
 * test_auth.c - the server's authentication primitives against independent
 * references: TOTP codes made by the oathtool program and the RFC 6238
 * test vectors, password hashes re-derived with scrypt from their parsed
 * fields, SHA-256 known answers, and QR codes checked for the structure
 * ISO/IEC 18004 fixes (size by version, finder and timing patterns, format
 * information).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"
#include "cairn/err.h"

#include "auth.h"

/* 2026-01-01 00:00:00 UTC, a multiple of 30. */
#define T2026 INT64_C(1767225600)
#define RFC_SECRET "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" /* "1234567890" x2 */

static const struct cairn_kdf_params kdf_fast = {10, 8, 1};

/* ---- oathtool ---- */

/*
 * Run oathtool (env OATHTOOL, else from PATH) as
 *   oathtool --totp -b SECRET -N WHEN
 * and put its 6-digit code in out.  0, or -1 if it could not be run.
 */
static int oathtool_at(const char *secret, const char *when, char out[7])
{
    const char *prog = getenv("OATHTOOL");
    char buf[64];
    size_t len = 0;
    ssize_t n;
    int fd[2], status;
    pid_t pid;

    if (prog == NULL || *prog == '\0')
        prog = "oathtool";
    if (pipe(fd) != 0)
        return -1;
    if ((pid = fork()) < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execlp(prog, prog, "--totp", "-b", secret, "-N", when, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    while (len < sizeof(buf) - 1 &&
           (n = read(fd[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd[0]);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    buf[len] = '\0';
    if (len != 7 || buf[6] != '\n')
        return -1;
    memcpy(out, buf, 6);
    out[6] = '\0';
    return 0;
}

/* The code oathtool makes for secret at time t (seconds); skips the test
 * if oathtool cannot be run. */
static void oathtool_code(const char *secret, int64_t t, char out[7])
{
    char when[32];

    snprintf(when, sizeof(when), "@%lld", (long long)t);
    if (oathtool_at(secret, when, out) != 0) {
        print_message("oathtool not available: skipped\n");
        skip();
    }
}

/* ---- TOTP ---- */

/* RFC 6238 appendix B, SHA-1, the last 6 of the 8 digits. */
static void test_totp_rfc6238(void **state)
{
    static const struct {
        int64_t t;
        const char *code;
    } v[] = {
        {59, "287082"},         {1111111109, "081804"},
        {1111111111, "050471"}, {1234567890, "005924"},
        {2000000000, "279037"}, {INT64_C(20000000000), "353130"},
    };
    int64_t step;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        step = -7;
        assert_int_equal(
            srv_totp_verify(RFC_SECRET, v[i].code, v[i].t, -1, &step), 0);
        assert_int_equal(step, v[i].t / 30);
    }
    /* A wrong last digit is refused. */
    assert_int_equal(srv_totp_verify(RFC_SECRET, "287083", 59, -1, &step),
                     CAIRN_EAUTH);
}

/* The window, steps and replays for one secret, against oathtool. */
static void check_window(const char *secret)
{
    char c0[7], cm1[7], cp1[7], cm2[7], cp2[7];
    int64_t s = T2026 / 30, step;

    oathtool_code(secret, T2026, c0);
    oathtool_code(secret, T2026 - 30, cm1);
    oathtool_code(secret, T2026 + 30, cp1);
    oathtool_code(secret, T2026 - 60, cm2);
    oathtool_code(secret, T2026 + 60, cp2);

    /* The code of now, anywhere in its 30 seconds. */
    assert_int_equal(srv_totp_verify(secret, c0, T2026, -1, &step), 0);
    assert_int_equal(step, s);
    assert_int_equal(srv_totp_verify(secret, c0, T2026 + 29, -1, &step), 0);
    assert_int_equal(step, s);
    /* The previous and the next step. */
    assert_int_equal(srv_totp_verify(secret, cm1, T2026, -1, &step), 0);
    assert_int_equal(step, s - 1);
    assert_int_equal(srv_totp_verify(secret, cp1, T2026, -1, &step), 0);
    assert_int_equal(step, s + 1);
    /* Two steps away, unless (one in 10^6) it equals a code in the
     * window. */
    if (strcmp(cm2, c0) != 0 && strcmp(cm2, cm1) != 0 && strcmp(cm2, cp1) != 0)
        assert_int_equal(srv_totp_verify(secret, cm2, T2026, -1, &step),
                         CAIRN_EAUTH);
    if (strcmp(cp2, c0) != 0 && strcmp(cp2, cm1) != 0 && strcmp(cp2, cp1) != 0)
        assert_int_equal(srv_totp_verify(secret, cp2, T2026, -1, &step),
                         CAIRN_EAUTH);

    /* Each code once: after step s, neither s nor s - 1 again... */
    step = -7;
    if (strcmp(c0, cp1) != 0) {
        assert_int_equal(srv_totp_verify(secret, c0, T2026, s, &step),
                         CAIRN_EAUTH);
        assert_int_equal(step, -7);
    }
    if (strcmp(cm1, cp1) != 0)
        assert_int_equal(srv_totp_verify(secret, cm1, T2026, s, &step),
                         CAIRN_EAUTH);
    /* ...but s + 1 yes, and then not even it. */
    assert_int_equal(srv_totp_verify(secret, cp1, T2026, s, &step), 0);
    assert_int_equal(step, s + 1);
    assert_int_equal(srv_totp_verify(secret, cp1, T2026 + 30, s + 1, &step),
                     CAIRN_EAUTH);
}

static void test_totp_oathtool(void **state)
{
    char secret[SRV_TOTP_SECRET_LEN + 1];
    char code[7];
    int64_t step;
    int i;

    (void)state;
    /* The date form of the brief, and the RFC secret. */
    if (oathtool_at(RFC_SECRET, "2026-01-01 00:00:00 UTC", code) != 0) {
        print_message("oathtool not available: skipped\n");
        skip();
    }
    assert_int_equal(srv_totp_verify(RFC_SECRET, code, T2026, -1, &step), 0);
    assert_int_equal(step, T2026 / 30);
    check_window(RFC_SECRET);

    /* Fresh secrets, as enrolment makes them. */
    for (i = 0; i < 3; i++) {
        assert_int_equal(srv_totp_secret_new(secret), 0);
        check_window(secret);
    }
}

static void test_totp_bad_input(void **state)
{
    static const char *const bad[] = {
        "",        "12345",  "1234567",
        "12a456",  " 12345", "12345 ",
        "-12345",  "+12345", "\xef\xbc\x91\xef\xbc\x92",
        "12345\n", "abcdef",
    };
    int64_t step = -7;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(srv_totp_verify(RFC_SECRET, bad[i], 59, -1, &step),
                         CAIRN_EINVAL);
    assert_int_equal(srv_totp_verify(RFC_SECRET, NULL, 59, -1, &step),
                     CAIRN_EINVAL);
    assert_int_equal(srv_totp_verify(NULL, "287082", 59, -1, &step),
                     CAIRN_EINVAL);
    assert_int_equal(srv_totp_verify(RFC_SECRET, "287082", -1, -1, &step),
                     CAIRN_EINVAL);
    assert_int_equal(srv_totp_verify("not base32!", "287082", 59, -1, &step),
                     CAIRN_EINVAL);
    assert_int_equal(srv_totp_verify("", "287082", 59, -1, &step),
                     CAIRN_EINVAL);
    assert_int_equal(step, -7);
    /* At time 0 there is no step -1 to try; the code of step 0 works. */
    assert_int_equal(srv_totp_verify(RFC_SECRET, "755224", 0, -1, &step), 0);
    assert_int_equal(step, 0);
}

static void test_totp_secret_new(void **state)
{
    char a[SRV_TOTP_SECRET_LEN + 1], b[SRV_TOTP_SECRET_LEN + 1];
    size_t i;

    (void)state;
    assert_int_equal(srv_totp_secret_new(a), 0);
    assert_int_equal(srv_totp_secret_new(b), 0);
    assert_int_equal(strlen(a), SRV_TOTP_SECRET_LEN);
    assert_int_equal(strlen(b), SRV_TOTP_SECRET_LEN);
    assert_string_not_equal(a, b);
    for (i = 0; i < SRV_TOTP_SECRET_LEN; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", a[i]));
}

static void test_totp_uri(void **state)
{
    char *uri = NULL;

    (void)state;
    assert_int_equal(
        srv_totp_uri("Cairn Org", "ana@example.org", RFC_SECRET, &uri), 0);
    assert_string_equal(uri, "otpauth://totp/Cairn%20Org:ana%40example.org"
                             "?secret=" RFC_SECRET "&issuer=Cairn%20Org"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);

    /* Separators, reserved characters and UTF-8 inside the names. */
    assert_int_equal(srv_totp_uri("A:B&C", "j\xc3\xa9r?#/=+%", "ABC", &uri), 0);
    assert_string_equal(uri, "otpauth://totp/A%3AB%26C:j%C3%A9r%3F%23%2F%3D"
                             "%2B%25?secret=ABC&issuer=A%3AB%26C"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);
    assert_int_equal(srv_totp_uri("a-b.c_d~e", "x", "ABC", &uri), 0);
    assert_string_equal(uri, "otpauth://totp/a-b.c_d~e:x?secret=ABC"
                             "&issuer=a-b.c_d~e"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);

    uri = NULL;
    assert_int_equal(srv_totp_uri("", "x", "ABC", &uri), CAIRN_EINVAL);
    assert_int_equal(srv_totp_uri("I", "", "ABC", &uri), CAIRN_EINVAL);
    assert_int_equal(srv_totp_uri("I", "x", "abc", &uri), CAIRN_EINVAL);
    assert_int_equal(srv_totp_uri("I", "x", "ABC=", &uri), CAIRN_EINVAL);
    assert_int_equal(srv_totp_uri("I", "x", "", &uri), CAIRN_EINVAL);
    assert_int_equal(srv_totp_uri(NULL, "x", "ABC", &uri), CAIRN_EINVAL);
    assert_null(uri);
}

/* ---- passwords ---- */

/* Split a stored hash into its six '$' fields (copied into f). */
static void split6(const char *stored, char f[6][64])
{
    const char *p = stored, *d;
    int i;

    for (i = 0; i < 6; i++) {
        d = strchr(p, '$');
        if (i < 5)
            assert_non_null(d);
        else
            assert_null(d);
        if (d == NULL)
            d = p + strlen(p);
        assert_true((size_t)(d - p) < 64);
        memcpy(f[i], p, (size_t)(d - p));
        f[i][d - p] = '\0';
        p = d + 1;
    }
}

/* The stored string's hash is scrypt(pw, its salt, its parameters):
 * re-derived here from the parsed text with cairn_scrypt. */
static void check_derivation(const char *stored, const char *pw, size_t len)
{
    char f[6][64];
    uint8_t salt[18], hash[33], want[32];
    struct cairn_kdf_params kdf;

    split6(stored, f);
    assert_string_equal(f[0], "scrypt");
    assert_int_equal(strlen(f[4]), 24);
    assert_int_equal(strlen(f[5]), 44);
    assert_int_equal(f[4][22], '=');
    assert_int_equal(f[4][23], '=');
    assert_int_equal(f[5][43], '=');
    assert_int_equal(EVP_DecodeBlock(salt, (unsigned char *)f[4], 24), 18);
    assert_int_equal(EVP_DecodeBlock(hash, (unsigned char *)f[5], 44), 33);
    kdf.log2_n = (uint8_t)atoi(f[1]);
    kdf.r = (uint32_t)atoi(f[2]);
    kdf.p = (uint32_t)atoi(f[3]);
    assert_int_equal(cairn_scrypt(pw, len, salt, 16, &kdf, want, 32), 0);
    assert_memory_equal(hash, want, 32);
}

static void test_password_roundtrip(void **state)
{
    static const char pw2[] = "with\0nul";
    char *h = NULL, *h2 = NULL;

    (void)state;
    assert_int_equal(srv_password_hash("correct horse", 13, &kdf_fast, &h), 0);
    assert_true(strncmp(h, "scrypt$10$8$1$", 14) == 0);
    check_derivation(h, "correct horse", 13);
    assert_int_equal(srv_password_verify("correct horse", 13, h), 0);
    assert_int_equal(srv_password_verify("correct horsE", 13, h), CAIRN_EAUTH);
    assert_int_equal(srv_password_verify("correct hors", 12, h), CAIRN_EAUTH);
    assert_int_equal(srv_password_verify("", 0, h), CAIRN_EAUTH);

    /* Same password, fresh salt: another string, both verify. */
    assert_int_equal(srv_password_hash("correct horse", 13, &kdf_fast, &h2), 0);
    assert_string_not_equal(h, h2);
    assert_int_equal(srv_password_verify("correct horse", 13, h2), 0);
    free(h);
    free(h2);

    /* The length counts, not the NUL. */
    assert_int_equal(srv_password_hash(pw2, 8, &kdf_fast, &h), 0);
    check_derivation(h, pw2, 8);
    assert_int_equal(srv_password_verify(pw2, 8, h), 0);
    assert_int_equal(srv_password_verify(pw2, 4, h), CAIRN_EAUTH);
    free(h);

    /* Empty password. */
    assert_int_equal(srv_password_hash("", 0, &kdf_fast, &h), 0);
    assert_int_equal(srv_password_verify("", 0, h), 0);
    assert_int_equal(srv_password_verify("x", 1, h), CAIRN_EAUTH);
    free(h);

    /* The defaults. */
    assert_int_equal(srv_password_hash("pw", 2, NULL, &h), 0);
    assert_true(strncmp(h, "scrypt$15$8$1$", 14) == 0);
    check_derivation(h, "pw", 2);
    assert_int_equal(srv_password_verify("pw", 2, h), 0);
    free(h);

    /* Parameters out of range are refused before anything is made. */
    h = NULL;
    {
        struct cairn_kdf_params k = {9, 8, 1};
        assert_int_equal(srv_password_hash("pw", 2, &k, &h), CAIRN_EINVAL);
        k.log2_n = 22;
        k.r = 32; /* 16 GiB */
        assert_int_equal(srv_password_hash("pw", 2, &k, &h), CAIRN_EINVAL);
    }
    assert_null(h);
}

/* Replace field i (1..5) of stored with v; returns a malloc'ed copy. */
static char *with_field(const char *stored, int i, const char *v)
{
    char f[6][64];
    char *s = malloc(512);
    int j;

    assert_non_null(s);
    split6(stored, f);
    s[0] = '\0';
    for (j = 0; j < 6; j++) {
        if (j > 0)
            strcat(s, "$");
        strcat(s, j == i ? v : f[j]);
    }
    return s;
}

static void test_password_tampered(void **state)
{
    char f[6][64];
    char *h, *t;

    (void)state;
    assert_int_equal(srv_password_hash("secret", 6, &kdf_fast, &h), 0);
    split6(h, f);

    /* Other, valid parameters: a different derivation. */
    t = with_field(h, 1, "11");
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_EAUTH);
    free(t);
    t = with_field(h, 2, "7");
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_EAUTH);
    free(t);
    t = with_field(h, 3, "2");
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_EAUTH);
    free(t);

    /* A salt or hash byte changed (first character, so still canonical). */
    f[4][0] = f[4][0] == 'A' ? 'B' : 'A';
    t = with_field(h, 4, f[4]);
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_EAUTH);
    free(t);
    f[5][0] = f[5][0] == 'A' ? 'B' : 'A';
    t = with_field(h, 5, f[5]);
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_EAUTH);
    free(t);
    free(h);
}

static void test_password_malformed(void **state)
{
    static const char *const params[] = {
        /* field 1: log2_n */
        "9",   "23",  "",    "015",        "1x",
        "-15", "+15", " 15", "4294967306", "99999999999",
    };
    static const char *const rs[] = {"0", "33", "", "08", "8 "};
    static const char *const ps[] = {"0", "17", "", "01"};
    char f[6][64];
    char *h, *t, buf[512];
    size_t i;

    (void)state;
    assert_int_equal(srv_password_hash("secret", 6, &kdf_fast, &h), 0);
    split6(h, f);

    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        t = with_field(h, 1, params[i]);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        assert_int_equal(srv_password_needs_rehash(t, NULL), CAIRN_ECORRUPT);
        free(t);
    }
    for (i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
        t = with_field(h, 2, rs[i]);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
    }
    for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        t = with_field(h, 3, ps[i]);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
    }
    /* 128 * r * N over 1 GiB: refused without running scrypt. */
    t = with_field(h, 1, "22");
    free(h);
    h = with_field(t, 2, "32");
    assert_int_equal(srv_password_verify("secret", 6, h), CAIRN_ECORRUPT);
    free(t);
    free(h);

    assert_int_equal(srv_password_hash("secret", 6, &kdf_fast, &h), 0);
    split6(h, f);
    /* Salt and hash: wrong lengths, padding, alphabet, stray bits. */
    {
        char s[72];

        snprintf(s, sizeof(s), "%.22s", f[4]); /* padding dropped */
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        snprintf(s, sizeof(s), "%.20s", f[4]); /* 15 bytes */
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        snprintf(s, sizeof(s), "%sAAAA", f[4]); /* 19 bytes */
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        snprintf(s, sizeof(s), "%s", f[4]);
        s[3] = '*';
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        /* The last salt character carries 4 unused bits: setting one is
         * not the canonical encoding. */
        snprintf(s, sizeof(s), "%s", f[4]);
        s[21] = s[21] == 'B' ? 'C' : 'B';
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        snprintf(s, sizeof(s), " %.23s", f[4]);
        t = with_field(h, 4, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        snprintf(s, sizeof(s), "%.43s", f[5]);
        t = with_field(h, 5, s);
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
        t = with_field(h, 5, f[4]); /* a 16-byte "hash" */
        assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
        free(t);
    }

    /* Shape. */
    t = with_field(h, 0, "bcrypt");
    assert_int_equal(srv_password_verify("secret", 6, t), CAIRN_ECORRUPT);
    free(t);
    snprintf(buf, sizeof(buf), "%s$", h);
    assert_int_equal(srv_password_verify("secret", 6, buf), CAIRN_ECORRUPT);
    snprintf(buf, sizeof(buf), "%s$x", h);
    assert_int_equal(srv_password_verify("secret", 6, buf), CAIRN_ECORRUPT);
    snprintf(buf, sizeof(buf), "%.*s", (int)(strrchr(h, '$') - h), h);
    assert_int_equal(srv_password_verify("secret", 6, buf), CAIRN_ECORRUPT);
    snprintf(buf, sizeof(buf), "%s\n", h);
    assert_int_equal(srv_password_verify("secret", 6, buf), CAIRN_ECORRUPT);
    memset(buf, 'A', 400);
    memcpy(buf, "scrypt$10$8$1$", 14);
    buf[400] = '\0';
    assert_int_equal(srv_password_verify("secret", 6, buf), CAIRN_ECORRUPT);
    assert_int_equal(srv_password_verify("secret", 6, ""), CAIRN_ECORRUPT);
    assert_int_equal(srv_password_verify("secret", 6, "scrypt$"),
                     CAIRN_ECORRUPT);
    assert_int_equal(srv_password_verify("secret", 6, NULL), CAIRN_ECORRUPT);
    /* And the original still verifies. */
    assert_int_equal(srv_password_verify("secret", 6, h), 0);
    free(h);
}

static void test_password_needs_rehash(void **state)
{
    struct cairn_kdf_params k;
    char *h;

    (void)state;
    assert_int_equal(srv_password_hash("pw", 2, &kdf_fast, &h), 0);
    assert_int_equal(srv_password_needs_rehash(h, NULL), 1);
    assert_int_equal(srv_password_needs_rehash(h, &kdf_fast), 0);
    k = kdf_fast;
    k.r = 9;
    assert_int_equal(srv_password_needs_rehash(h, &k), 1);
    k = kdf_fast;
    k.p = 2;
    assert_int_equal(srv_password_needs_rehash(h, &k), 1);
    k = kdf_fast;
    k.log2_n = 11;
    assert_int_equal(srv_password_needs_rehash(h, &k), 1);
    /* Stronger than asked: keep. */
    k.log2_n = 10;
    k.r = 4;
    assert_int_equal(srv_password_needs_rehash(h, &k), 0);
    free(h);

    assert_int_equal(srv_password_needs_rehash(
                         "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                         NULL),
                     0);
    assert_int_equal(srv_password_needs_rehash(
                         "scrypt$16$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                         NULL),
                     0);
    assert_int_equal(srv_password_needs_rehash("scrypt$15$8$1$$", NULL),
                     CAIRN_ECORRUPT);
}

/* ---- recovery codes ---- */

static void test_recovery_codes(void **state)
{
    static const char alpha[] = "0123456789abcdefghjkmnpqrstvwxyz";
    char **codes = NULL;
    char h[10][65], x[65];
    int i, j, k;

    (void)state;
    assert_int_equal(srv_recovery_codes_new(10, &codes), 0);
    for (i = 0; i < 10; i++) {
        assert_int_equal(strlen(codes[i]), 14);
        for (k = 0; k < 14; k++) {
            if (k == 4 || k == 9)
                assert_int_equal(codes[i][k], '-');
            else
                assert_non_null(memchr(alpha, codes[i][k], 32));
        }
        assert_int_equal(srv_recovery_hash(codes[i], h[i]), 0);
        for (j = 0; j < i; j++) {
            assert_string_not_equal(codes[i], codes[j]);
            assert_string_not_equal(h[i], h[j]);
        }
    }
    srv_recovery_codes_free(codes, 10);
    srv_recovery_codes_free(NULL, 3);

    /* Known answer: SHA-256("k7f39x2mp4qa"), from sha256sum. */
    assert_int_equal(srv_recovery_hash("k7f3-9x2m-p4qa", x), 0);
    assert_string_equal(
        x, "83bee371bd956357a6c0dc37d440acad6f09305c6c6b20972a9fc643bfe0aca4");
    /* The same code typed other ways. */
    {
        static const char *const same[] = {
            "K7F3 9X2M P4QA",       "k7f39x2mp4qa",     "K7F3-9X2M-P4QA",
            " k7f3 - 9x2m - p4qa ", "k7f3-9x2m-p4qa\t",
        };
        for (i = 0; i < 5; i++) {
            char y[65];

            assert_int_equal(srv_recovery_hash(same[i], y), 0);
            assert_string_equal(x, y);
        }
    }
    /* Crockford's look-alikes: o is 0, i and l are 1. */
    assert_int_equal(srv_recovery_hash("0000-1111-abcd", h[0]), 0);
    assert_int_equal(srv_recovery_hash("oOoO-iIlL-abcd", h[1]), 0);
    assert_string_equal(h[0], h[1]);
    /* A different code. */
    assert_int_equal(srv_recovery_hash("k7f3-9x2m-p4qb", h[0]), 0);
    assert_string_not_equal(x, h[0]);

    /* Not a code. */
    assert_int_equal(srv_recovery_hash("k7f3-9x2m-p4q", h[0]), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_hash("k7f3-9x2m-p4qaa", h[0]), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_hash("k7f3-9x2m-p4qu", h[0]), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_hash("k7f3_9x2m_p4qa", h[0]), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_hash("", h[0]), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_hash(NULL, h[0]), CAIRN_EINVAL);

    codes = NULL;
    assert_int_equal(srv_recovery_codes_new(0, &codes), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_codes_new(-1, &codes), CAIRN_EINVAL);
    assert_int_equal(srv_recovery_codes_new(1001, &codes), CAIRN_EINVAL);
    assert_null(codes);
}

/* ---- tokens ---- */

static void test_tokens(void **state)
{
    static char tok[64][SRV_TOKEN_MAX];
    char h1[65], h2[65], b64[48];
    uint8_t raw[36];
    char *prefix36;
    int i, j;
    size_t k;

    (void)state;
    for (i = 0; i < 64; i++) {
        assert_int_equal(srv_token_new("cs_", tok[i]), 0);
        assert_int_equal(strlen(tok[i]), 3 + 43);
        assert_true(strncmp(tok[i], "cs_", 3) == 0);
        /* base64url without padding, 32 bytes. */
        for (k = 3; k < 46; k++) {
            char c = tok[i][k];

            assert_true((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_');
            b64[k - 3] = c == '-' ? '+' : c == '_' ? '/' : c;
        }
        b64[43] = '=';
        b64[44] = '\0';
        assert_int_equal(EVP_DecodeBlock(raw, (unsigned char *)b64, 44), 33);
        for (j = 0; j < i; j++)
            assert_string_not_equal(tok[i], tok[j]);
    }

    assert_int_equal(srv_token_new(NULL, tok[0]), 0);
    assert_int_equal(strlen(tok[0]), 43);
    assert_int_equal(srv_token_new("cd_0123abcd.", tok[0]), 0);
    assert_true(strncmp(tok[0], "cd_0123abcd.", 12) == 0);
    assert_int_equal(strlen(tok[0]), 12 + 43);

    /* The longest prefix that fits, and one more. */
    prefix36 = malloc(38);
    assert_non_null(prefix36);
    memset(prefix36, 'p', 36);
    prefix36[36] = '\0';
    assert_int_equal(srv_token_new(prefix36, tok[0]), 0);
    assert_int_equal(strlen(tok[0]), SRV_TOKEN_MAX - 1);
    prefix36[36] = 'p';
    prefix36[37] = '\0';
    assert_int_equal(srv_token_new(prefix36, tok[0]), CAIRN_EINVAL);
    free(prefix36);
    assert_int_equal(srv_token_new("c d", tok[0]), CAIRN_EINVAL);
    assert_int_equal(srv_token_new("c/d", tok[0]), CAIRN_EINVAL);

    /* Hashes: known answers (sha256sum), stable, different per token. */
    srv_token_hash("cs_test", h1);
    assert_string_equal(
        h1, "947fc5d63779bb3ab718f16107ecf090ba341c4159792745095f0bbc0004ece5");
    srv_token_hash("abc", h1);
    assert_string_equal(
        h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    srv_token_hash(tok[1], h1);
    srv_token_hash(tok[1], h2);
    assert_string_equal(h1, h2);
    srv_token_hash(tok[2], h2);
    assert_string_not_equal(h1, h2);
}

/* ---- lockout ---- */

static void test_lockout(void **state)
{
    const struct srv_lockout p = {5, 10, 900, 60};
    const struct srv_lockout q = {3, 30, 600, 60};
    int64_t t = T2026;
    int locked = -1, i;

    (void)state;
    /* Nothing before slow_after. */
    for (i = 0; i < 5; i++) {
        assert_int_equal(srv_lockout_wait(&p, i, t, t, &locked), 0);
        assert_int_equal(locked, 0);
    }
    /* 1, 2, 4, 8, 16 s after the last failure. */
    for (i = 5; i < 10; i++) {
        int64_t d = (int64_t)1 << (i - 5);

        locked = -1;
        assert_int_equal(srv_lockout_wait(&p, i, t, t, &locked), d);
        assert_int_equal(locked, 0);
        assert_int_equal(srv_lockout_wait(&p, i, t, t + d - 1, &locked), 1);
        assert_int_equal(srv_lockout_wait(&p, i, t, t + d, &locked), 0);
        assert_int_equal(srv_lockout_wait(&p, i, t, t + 1000, &locked), 0);
        /* NULL policy: the same defaults. */
        assert_int_equal(srv_lockout_wait(NULL, i, t, t, NULL), d);
    }
    /* Locked at lock_after for lock_secs, then free again. */
    for (i = 10; i < 13; i++) {
        locked = -1;
        assert_int_equal(srv_lockout_wait(&p, i, t, t, &locked), 900);
        assert_int_equal(locked, 1);
        assert_int_equal(srv_lockout_wait(&p, i, t, t + 899, &locked), 1);
        assert_int_equal(locked, 1);
        assert_int_equal(srv_lockout_wait(&p, i, t, t + 900, &locked), 0);
        assert_int_equal(locked, 0);
    }
    assert_int_equal(srv_lockout_wait(NULL, 10, t, t + 100, &locked), 800);
    assert_int_equal(locked, 1);

    /* Capped at max_delay: 2^6 = 64 > 60. */
    assert_int_equal(srv_lockout_wait(&q, 8, t, t, &locked), 32);
    assert_int_equal(srv_lockout_wait(&q, 9, t, t, &locked), 60);
    assert_int_equal(srv_lockout_wait(&q, 29, t, t, &locked), 60);
    assert_int_equal(locked, 0);
    assert_int_equal(srv_lockout_wait(&q, 30, t, t, &locked), 600);
    assert_int_equal(locked, 1);

    /* A clock that went back: the whole delay, no more. */
    assert_int_equal(srv_lockout_wait(&p, 6, t, t - 5000, &locked), 2);
    assert_int_equal(srv_lockout_wait(&p, 10, t, t - 5000, &locked), 900);
    /* Extremes do not overflow (UBSan watches). */
    assert_int_equal(srv_lockout_wait(&p, 7, INT64_MIN, INT64_MAX, &locked), 0);
    assert_int_equal(srv_lockout_wait(&p, 7, INT64_MAX, INT64_MIN, &locked), 4);
    {
        const struct srv_lockout nolock = {5, 0, 900, 60};
        assert_int_equal(srv_lockout_wait(&nolock, 2147483647, t, t, &locked),
                         60);
        assert_int_equal(locked, 0);
    }
    assert_int_equal(srv_lockout_wait(&p, -3, t, t, &locked), 0);
}

/* ---- QR codes ---- */

/* Byte-mode capacity at error correction level M, versions 1..10
 * (ISO/IEC 18004 table 7). */
static const int qr_cap_m[] = {0, 14, 26, 42, 62, 84, 106, 122, 152, 180, 213};

/* A QR drawing read back into modules: dark[y][x] over the whole drawing
 * (quiet zone included). */
struct qr_grid {
    int size;          /* modules per side, quiet zone included */
    unsigned char *dk; /* size * size */
};

static int grid_dark(const struct qr_grid *g, int x, int y)
{
    return g->dk[y * g->size + x];
}

/* Parse the drawing: only the four cells and '\n', equal lines, two module
 * rows per line, the bottom half of an odd last line blank (dark). */
static void qr_parse(const char *s, struct qr_grid *g)
{
    int width = -1, lines = 0, x = 0, y, top, bot;
    const char *p;

    g->dk = NULL;
    for (p = s; *p != '\0';) {
        if (*p == '\n') {
            if (width < 0)
                width = x;
            assert_int_equal(x, width);
            lines++;
            x = 0;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
        } else {
            assert_int_equal((unsigned char)p[0], 0xe2);
            assert_int_equal((unsigned char)p[1], 0x96);
            assert_true((unsigned char)p[2] == 0x80 ||
                        (unsigned char)p[2] == 0x84 ||
                        (unsigned char)p[2] == 0x88);
            p += 3;
        }
        x++;
    }
    assert_int_equal(x, 0); /* ends with a newline */
    assert_true(width > 0);
    assert_int_equal(lines, (width + 1) / 2);
    g->size = width;
    g->dk = calloc((size_t)width * (size_t)(width + 1), 1);
    assert_non_null(g->dk);

    x = 0;
    y = 0;
    for (p = s; *p != '\0';) {
        if (*p == '\n') {
            x = 0;
            y += 2;
            p++;
            continue;
        }
        if (*p == ' ') {
            top = bot = 1;
            p++;
        } else {
            top = (unsigned char)p[2] == 0x84;
            bot = (unsigned char)p[2] == 0x80;
            p += 3;
        }
        g->dk[y * width + x] = (unsigned char)top;
        g->dk[(y + 1) * width + x] = (unsigned char)bot;
        x++;
    }
    /* The half line below an odd-sized drawing is blank. */
    if (width % 2 == 1)
        for (x = 0; x < width; x++)
            assert_int_equal(g->dk[width * width + x], 1);
}

/* A finder pattern with its top-left module at (x, y) of the symbol. */
static void check_finder(const struct qr_grid *g, int x0, int y0)
{
    int x, y, ring, want;

    for (y = 0; y < 7; y++) {
        for (x = 0; x < 7; x++) {
            ring = x < y ? x : y;
            if (6 - x < ring)
                ring = 6 - x;
            if (6 - y < ring)
                ring = 6 - y;
            want = ring != 1; /* dark border, light ring, dark centre */
            assert_int_equal(grid_dark(g, 4 + x0 + x, 4 + y0 + y), want);
        }
    }
}

/* BCH(15,5) of the 5 format bits, masked: the valid format words. */
static int format_word(int data)
{
    int v = data << 10, i;

    for (i = 14; i >= 10; i--)
        if (v & (1 << i))
            v ^= 0x537 << (i - 10);
    return ((data << 10) | v) ^ 0x5412;
}

/* The format information read as zxing reads it: (x, y) of the symbol. */
static int format_bit(const struct qr_grid *g, int x, int y, int bits)
{
    return (bits << 1) | grid_dark(g, 4 + x, 4 + y);
}

static void check_qr(const char *text)
{
    struct qr_grid g;
    char *s = NULL;
    int len = (int)strlen(text), v, w, x, y, i, b1 = 0, b2 = 0, mask;
    int ok = 0;

    assert_int_equal(srv_qr_terminal(text, &s), 0);
    assert_non_null(s);
    qr_parse(s, &g);

    /* The smallest version whose M byte capacity holds the text. */
    for (v = 1; v <= 10 && qr_cap_m[v] < len; v++)
        ;
    assert_true(v <= 10);
    w = 17 + 4 * v;
    assert_int_equal(g.size, w + 8);

    /* Quiet zone: 4 light modules all round. */
    for (y = 0; y < g.size; y++)
        for (x = 0; x < g.size; x++)
            if (x < 4 || y < 4 || x >= w + 4 || y >= w + 4)
                assert_int_equal(grid_dark(&g, x, y), 0);
    /* Finder patterns and their light separators. */
    check_finder(&g, 0, 0);
    check_finder(&g, w - 7, 0);
    check_finder(&g, 0, w - 7);
    for (i = 0; i < 8; i++) {
        assert_int_equal(grid_dark(&g, 4 + 7, 4 + i), 0);
        assert_int_equal(grid_dark(&g, 4 + i, 4 + 7), 0);
        assert_int_equal(grid_dark(&g, 4 + w - 8, 4 + i), 0);
        assert_int_equal(grid_dark(&g, 4 + w - 8 + i, 4 + 7), 0);
        assert_int_equal(grid_dark(&g, 4 + i, 4 + w - 8), 0);
        assert_int_equal(grid_dark(&g, 4 + 7, 4 + w - 8 + i), 0);
    }
    /* Timing patterns, and the dark module beside the lower finder. */
    for (i = 8; i < w - 8; i++) {
        assert_int_equal(grid_dark(&g, 4 + i, 4 + 6), i % 2 == 0);
        assert_int_equal(grid_dark(&g, 4 + 6, 4 + i), i % 2 == 0);
    }
    assert_int_equal(grid_dark(&g, 4 + 8, 4 + 4 * v + 9), 1);

    /* Format information, both copies: level M (bits 00), some mask. */
    for (i = 0; i < 6; i++)
        b1 = format_bit(&g, i, 8, b1);
    b1 = format_bit(&g, 7, 8, b1);
    b1 = format_bit(&g, 8, 8, b1);
    b1 = format_bit(&g, 8, 7, b1);
    for (i = 5; i >= 0; i--)
        b1 = format_bit(&g, 8, i, b1);
    for (i = w - 1; i >= w - 7; i--)
        b2 = format_bit(&g, 8, i, b2);
    for (i = w - 8; i < w; i++)
        b2 = format_bit(&g, i, 8, b2);
    assert_int_equal(b1, b2);
    for (mask = 0; mask < 8; mask++)
        if (b1 == format_word(mask)) /* level bits 00: M */
            ok = 1;
    assert_true(ok);

    free(g.dk);
    free(s);
}

static void test_qr(void **state)
{
    char big[2400];
    char *s = NULL;
    char *uri = NULL;

    (void)state;
    /* The format words of level M, mask 0..: a known one (ISO/IEC 18004
     * annex C: M with mask 5 is 100000011001110). */
    assert_int_equal(format_word(5), 0x40ce);

    check_qr("a");
    check_qr("HELLO WORLD 1");   /* 13 bytes: version 1 */
    check_qr("HELLO WORLD 12");  /* 14: still 1 */
    check_qr("HELLO WORLD 123"); /* 15: version 2 */
    assert_int_equal(srv_totp_uri("Cairn", "ana@example.org", RFC_SECRET, &uri),
                     0);
    check_qr(uri); /* 125 bytes: version 8 */
    free(uri);
    memset(big, 'x', 200);
    big[200] = '\0';
    check_qr(big); /* version 10 */

    assert_int_equal(srv_qr_terminal("", &s), CAIRN_EINVAL);
    assert_int_equal(srv_qr_terminal(NULL, &s), CAIRN_EINVAL);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0'; /* over 2331, the M maximum */
    assert_int_equal(srv_qr_terminal(big, &s), CAIRN_ERANGE);
    assert_null(s);
}

/* ---- strings ---- */

static void test_str_equal(void **state)
{
    (void)state;
    assert_int_equal(srv_str_equal("abc", "abc"), 1);
    assert_int_equal(srv_str_equal("", ""), 1);
    assert_int_equal(srv_str_equal("abc", "abd"), 0);
    assert_int_equal(srv_str_equal("abc", "ab"), 0);
    assert_int_equal(srv_str_equal("ab", "abc"), 0);
    assert_int_equal(srv_str_equal("", "a"), 0);
    assert_int_equal(srv_str_equal(NULL, "a"), 0);
    assert_int_equal(srv_str_equal("a", NULL), 0);
    assert_int_equal(srv_str_equal(NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totp_rfc6238),
        cmocka_unit_test(test_totp_oathtool),
        cmocka_unit_test(test_totp_bad_input),
        cmocka_unit_test(test_totp_secret_new),
        cmocka_unit_test(test_totp_uri),
        cmocka_unit_test(test_password_roundtrip),
        cmocka_unit_test(test_password_tampered),
        cmocka_unit_test(test_password_malformed),
        cmocka_unit_test(test_password_needs_rehash),
        cmocka_unit_test(test_recovery_codes),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_lockout),
        cmocka_unit_test(test_qr),
        cmocka_unit_test(test_str_equal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
