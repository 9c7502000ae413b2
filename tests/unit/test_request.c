/*
 * test_request.c - the server's request parsing, by known answers: the
 * strict JSON body check, RFC 3339 times, base64 fields.  (The fuzz
 * targets fuzz_request, fuzz_fields and fuzz_range hammer the same code
 * with arbitrary bytes; these tests pin what the answers are.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "api.h"
#include "cairn/err.h"
#include "http.h"

static const char *const login_keys[] = {"username", "password", NULL};

static int check(const char *body, const char *const *allowed, char *why,
                 size_t whylen)
{
    json_t *out = NULL;
    int rc = http_json_check(body, strlen(body), allowed, &out, why, whylen);

    if (rc == 0) {
        assert_non_null(out);
        json_decref(out);
    } else {
        assert_null(out);
    }
    return rc;
}

static void test_json_strict(void **state)
{
    char why[256];

    (void)state;
    assert_int_equal(check("{\"username\":\"ana\",\"password\":\"x\"}",
                           login_keys, why, sizeof(why)),
                     0);
    /* Keys may be missing (the handler decides what is required). */
    assert_int_equal(check("{}", login_keys, why, sizeof(why)), 0);
    /* An unknown key is refused, and named. */
    assert_int_equal(check("{\"username\":\"ana\",\"pasword\":\"x\"}",
                           login_keys, why, sizeof(why)),
                     CAIRN_EINVAL);
    assert_non_null(strstr(why, "pasword"));
    /* A duplicate key is refused (which one would win is ambiguous). */
    assert_int_equal(check("{\"username\":\"a\",\"username\":\"b\"}",
                           login_keys, why, sizeof(why)),
                     CAIRN_EINVAL);
    /* Not an object, not JSON, trailing garbage, empty body. */
    assert_int_equal(check("[1,2]", login_keys, why, sizeof(why)),
                     CAIRN_EINVAL);
    assert_int_equal(check("{\"username\":", login_keys, why, sizeof(why)),
                     CAIRN_EINVAL);
    assert_int_equal(check("{} {}", login_keys, why, sizeof(why)),
                     CAIRN_EINVAL);
    assert_int_equal(check("", login_keys, why, sizeof(why)), CAIRN_EINVAL);
    /* NULL allows no key at all. */
    assert_int_equal(check("{}", NULL, why, sizeof(why)), 0);
    assert_int_equal(check("{\"a\":1}", NULL, why, sizeof(why)),
                     CAIRN_EINVAL);
}

static void test_time_parse(void **state)
{
    int64_t t;
    char buf[32];

    (void)state;
    assert_int_equal(api_time_parse("2026-11-26T10:00:00Z", &t), 0);
    assert_int_equal(t, 1795687200);
    api_time_format(t, buf);
    assert_string_equal(buf, "2026-11-26T10:00:00Z");
    /* Offsets and fractions. */
    assert_int_equal(api_time_parse("2026-11-26T11:30:00.75+01:30", &t), 0);
    assert_int_equal(t, 1795687200);
    assert_int_equal(api_time_parse("2026-11-26T08:00:00-02:00", &t), 0);
    assert_int_equal(t, 1795687200);
    /* Leap days: 2024 has one, 2025 does not. */
    assert_int_equal(api_time_parse("2024-02-29T00:00:00Z", &t), 0);
    assert_int_equal(api_time_parse("2025-02-29T00:00:00Z", &t),
                     CAIRN_EINVAL);
    /* Malformed. */
    assert_int_equal(api_time_parse("2026-13-01T00:00:00Z", &t),
                     CAIRN_EINVAL);
    assert_int_equal(api_time_parse("2026-11-26 10:00:00", &t), CAIRN_EINVAL);
    assert_int_equal(api_time_parse("2026-11-26T25:00:00Z", &t),
                     CAIRN_EINVAL);
    assert_int_equal(api_time_parse("tomorrow", &t), CAIRN_EINVAL);
    assert_int_equal(api_time_parse("", &t), CAIRN_EINVAL);
}

static void test_base64(void **state)
{
    uint8_t *out = NULL;
    size_t len;

    (void)state;
    assert_int_equal(api_b64_decode("aGVsbG8=", 64, &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    /* Padding optional; URL alphabet accepted. */
    assert_int_equal(api_b64_decode("aGVsbG8", 64, &out, &len), 0);
    assert_int_equal(len, 5);
    free(out);
    assert_int_equal(api_b64_decode("-_8", 64, &out, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    free(out);
    /* Too large for the field; not base64. */
    assert_int_equal(api_b64_decode("aGVsbG8=", 4, &out, &len), CAIRN_ERANGE);
    assert_int_equal(api_b64_decode("aGV*bG8=", 64, &out, &len),
                     CAIRN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_strict),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_base64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
