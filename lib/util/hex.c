/*
 * hex.c - lowercase hex encoding of ids and hashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"

/*
 * Write the 2*n lowercase hex digits of in[0..n) and a NUL to out, which
 * must hold 2*n + 1 bytes.
 */
void cairn_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode the first 2*n characters of in (hex digits, either case) into
 * out[0..n).  Reading stops at the first character that is not a hex digit
 * (so a NUL-terminated string shorter than 2*n is safe to pass); what
 * follows the 2*n digits is not looked at - callers that need the whole
 * string to be the hex check its length themselves.  CAIRN_EINVAL on bad
 * input, and out is zeroed then.
 */
int cairn_hex_decode(const char *in, uint8_t *out, size_t n)
{
    size_t i;
    int hi, lo;

    for (i = 0; i < n; i++) {
        if ((hi = hex_value(in[2 * i])) < 0 ||
            (lo = hex_value(in[2 * i + 1])) < 0)
            goto err0;
        out[i] = (uint8_t)((hi << 4) | lo);
    }

    /* Success! */
    return 0;

err0:
    if (n > 0)
        memset(out, 0, n);
    return CAIRN_EINVAL;
}
