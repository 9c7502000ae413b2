/*
 * test_util.c - the growable buffer, the bounds-checked reader, the
 * little-endian helpers, hex, and the log callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/log.h"

static void test_buf_append_and_le(void **state)
{
    struct cairn_buf b;
    /* clang-format off */
    static const uint8_t want[] = {
        0xab,                                           /* u8 */
        0x34, 0x12,                                     /* u16 */
        0x78, 0x56, 0x34, 0x12,                         /* u32 */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* u64 */
        0x03, 0x00, 'a', 'b', 'c',                      /* str16 */
        0x00, 0x00,                                     /* empty str16 */
        'x', 'y'};
    /* clang-format on */
    uint8_t *p;
    size_t n;

    (void)state;
    cairn_buf_init(&b, 0);
    assert_int_equal(cairn_buf_put_u8(&b, 0xab), 0);
    assert_int_equal(cairn_buf_put_u16(&b, 0x1234), 0);
    assert_int_equal(cairn_buf_put_u32(&b, 0x12345678), 0);
    assert_int_equal(cairn_buf_put_u64(&b, 0x0102030405060708ULL), 0);
    assert_int_equal(cairn_buf_put_str16(&b, "abc", 3), 0);
    assert_int_equal(cairn_buf_put_str16(&b, NULL, 0), 0);
    assert_int_equal(cairn_buf_append(&b, "xy", 2), 0);
    assert_int_equal(cairn_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    assert_int_equal(cairn_le16dec(want + 1), 0x1234);
    assert_int_equal(cairn_le32dec(want + 3), 0x12345678);
    assert_true(cairn_le64dec(want + 7) == 0x0102030405060708ULL);

    p = cairn_buf_steal(&b, &n);
    assert_non_null(p);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(p, want, sizeof(want));
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);

    /* Stealing an empty buffer still gives a pointer to free. */
    p = cairn_buf_steal(&b, &n);
    assert_non_null(p);
    assert_int_equal(n, 0);
    free(p);

    cairn_buf_free(&b);
    cairn_buf_free(NULL);
    cairn_buf_free_wipe(NULL);
}

static void test_buf_max(void **state)
{
    struct cairn_buf b;
    uint8_t big[300];
    char *s;

    (void)state;
    memset(big, 7, sizeof(big));
    cairn_buf_init(&b, 10);
    assert_int_equal(cairn_buf_append(&b, big, 10), 0);
    assert_int_equal(cairn_buf_put_u8(&b, 1), CAIRN_ERANGE);
    assert_int_equal(cairn_buf_reserve(&b, 1), CAIRN_ERANGE);
    assert_int_equal(cairn_buf_reserve(&b, SIZE_MAX), CAIRN_ERANGE);
    assert_int_equal(cairn_buf_reserve(&b, 0), 0);
    assert_int_equal(b.len, 10);
    assert_true(b.cap <= 10);
    cairn_buf_free(&b);

    /* A failed append leaves the buffer unchanged. */
    cairn_buf_init(&b, 100);
    assert_int_equal(cairn_buf_append(&b, big, 60), 0);
    assert_int_equal(cairn_buf_append(&b, big, 41), CAIRN_ERANGE);
    assert_int_equal(cairn_buf_put_u64(&b, 1), 0);
    assert_int_equal(
        cairn_buf_put_str16(&b, "0123456789abcdef0123456789abcdef", 32),
        CAIRN_ERANGE);
    assert_int_equal(b.len, 68);
    assert_int_equal(cairn_buf_append(&b, big, 32), 0);
    assert_int_equal(b.len, 100);
    cairn_buf_free_wipe(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    /* str16 refuses more than 65535 bytes. */
    cairn_buf_init(&b, 0);
    s = malloc(65536);
    assert_non_null(s);
    memset(s, 'a', 65536);
    assert_int_equal(cairn_buf_put_str16(&b, s, 65536), CAIRN_ERANGE);
    assert_int_equal(b.len, 0);
    assert_int_equal(cairn_buf_put_str16(&b, s, 65535), 0);
    assert_int_equal(b.len, 65537);
    assert_int_equal(cairn_le16dec(b.data), 65535);
    free(s);
    cairn_buf_free(&b);

    /* A zeroed struct is an empty buffer with the default maximum. */
    memset(&b, 0, sizeof(b));
    assert_int_equal(cairn_buf_append(&b, big, sizeof(big)), 0);
    assert_memory_equal(b.data, big, sizeof(big));
    cairn_buf_free(&b);
}

static void test_reader(void **state)
{
    static const uint8_t in[] = {1, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12, 8,  7,
                                 6, 5,    4,    3,    2,    1,    'h',  'i'};
    struct cairn_reader r;
    const uint8_t *p;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;

    (void)state;
    cairn_reader_init(&r, in, sizeof(in));
    assert_int_equal(cairn_get_u8(&r, &u8), 0);
    assert_int_equal(u8, 1);
    assert_int_equal(cairn_get_u16(&r, &u16), 0);
    assert_int_equal(u16, 0x1234);
    assert_int_equal(cairn_get_u32(&r, &u32), 0);
    assert_int_equal(u32, 0x12345678);
    assert_int_equal(cairn_get_u64(&r, &u64), 0);
    assert_true(u64 == 0x0102030405060708ULL);
    assert_int_equal(cairn_get_bytes(&r, 2, &p), 0);
    assert_memory_equal(p, "hi", 2);
    assert_int_equal(r.left, 0);
    assert_int_equal(cairn_get_bytes(&r, 0, &p), 0);
    assert_int_equal(r.err, 0);
    assert_int_equal(cairn_get_u8(&r, &u8), CAIRN_ECORRUPT);
    assert_int_equal(r.err, CAIRN_ECORRUPT);

    /* Too short for a u32: fails, and stays failed even for a u8 that
     * would fit. */
    cairn_reader_init(&r, in, 3);
    u32 = 99;
    assert_int_equal(cairn_get_u32(&r, &u32), CAIRN_ECORRUPT);
    assert_int_equal(u32, 0);
    assert_int_equal(cairn_get_u8(&r, &u8), CAIRN_ECORRUPT);
    assert_int_equal(r.err, CAIRN_ECORRUPT);

    /* Every truncation of each width fails. */
    cairn_reader_init(&r, in, 1);
    assert_int_equal(cairn_get_u16(&r, &u16), CAIRN_ECORRUPT);
    cairn_reader_init(&r, in, 7);
    assert_int_equal(cairn_get_u64(&r, &u64), CAIRN_ECORRUPT);
    cairn_reader_init(&r, in, 0);
    assert_int_equal(cairn_get_u8(&r, &u8), CAIRN_ECORRUPT);

    /* A huge length does not wrap around. */
    cairn_reader_init(&r, in, sizeof(in));
    assert_int_equal(cairn_get_u8(&r, &u8), 0);
    assert_int_equal(cairn_get_bytes(&r, SIZE_MAX, &p), CAIRN_ECORRUPT);
    assert_null(p);
    assert_int_equal(cairn_get_bytes(&r, sizeof(in), &p), CAIRN_ECORRUPT);
}

static void test_hex(void **state)
{
    uint8_t in[256], out[256];
    char hex[513];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    cairn_hex_encode(in, sizeof(in), hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102030405", 12);
    assert_string_equal(hex + 500, "fafbfcfdfeff");
    assert_int_equal(cairn_hex_decode(hex, out, sizeof(out)), 0);
    assert_memory_equal(in, out, sizeof(in));

    cairn_hex_encode(in, 0, hex);
    assert_string_equal(hex, "");

    assert_int_equal(cairn_hex_decode("DEADbeef", out, 4), 0);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);

    /* Rejection: a non-hex digit anywhere, or too short. */
    assert_int_equal(cairn_hex_decode("deadbeeg", out, 4), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("g0", out, 1), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("0g", out, 1), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode(" 00", out, 1), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("dead", out, 4), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("dea", out, 2), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("", out, 1), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("-1", out, 1), CAIRN_EINVAL);
    assert_int_equal(cairn_hex_decode("0x", out, 1), CAIRN_EINVAL);
    /* ... and the output is zeroed then. */
    memset(out, 0xff, 4);
    assert_int_equal(cairn_hex_decode("aabbccgg", out, 4), CAIRN_EINVAL);
    assert_memory_equal(out, "\0\0\0\0", 4);
}

struct log_capture {
    int calls;
    int level;
    char msg[2048];
};

static void capture(void *arg, int level, const char *msg)
{
    struct log_capture *lc = arg;

    lc->calls++;
    lc->level = level;
    strncpy(lc->msg, msg, sizeof(lc->msg) - 1);
    lc->msg[sizeof(lc->msg) - 1] = '\0';
}

static void test_log(void **state)
{
    struct log_capture lc;
    char *longmsg;

    (void)state;
    memset(&lc, 0, sizeof(lc));
    cairn_log(CAIRN_LOG_ERROR, "nobody listens %d", 1);
    cairn_log_set(capture, &lc);
    cairn_log(CAIRN_LOG_WARN, "cannot read %s: %s", "/x", "denied");
    assert_int_equal(lc.calls, 1);
    assert_int_equal(lc.level, CAIRN_LOG_WARN);
    assert_string_equal(lc.msg, "cannot read /x: denied");

    /* Long messages are cut, and say so. */
    longmsg = malloc(5000);
    assert_non_null(longmsg);
    memset(longmsg, 'z', 4999);
    longmsg[4999] = '\0';
    cairn_log(CAIRN_LOG_DEBUG, "%s", longmsg);
    assert_int_equal(lc.calls, 2);
    assert_int_equal(lc.level, CAIRN_LOG_DEBUG);
    assert_true(strlen(lc.msg) < 4999);
    assert_true(strlen(lc.msg) > 500);
    assert_string_equal(lc.msg + strlen(lc.msg) - 3, "...");
    free(longmsg);

    cairn_log_set(NULL, NULL);
    cairn_log(CAIRN_LOG_ERROR, "discarded");
    assert_int_equal(lc.calls, 2);
}

static void test_err(void **state)
{
    (void)state;
    assert_string_equal(cairn_errname(CAIRN_ECORRUPT), "CAIRN_ECORRUPT");
    assert_string_equal(cairn_strerror(0), "success");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_and_le),
        cmocka_unit_test(test_buf_max),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_err),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
