/*
 * buf.c - a growable byte buffer with a maximum size, and a bounds-checked
 * reader of untrusted bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"

/* The limit of a buffer whose max is 0. */
#define BUF_DEFAULT_MAX ((size_t)1 << 30)
/* The first allocation is at least this big, to avoid tiny reallocs. */
#define BUF_MIN_CAP 64

static size_t buf_max(const struct cairn_buf *b)
{
    return (b->max == 0) ? BUF_DEFAULT_MAX : b->max;
}

/*
 * Initialise b as an empty buffer that may grow to max bytes (0: 1 GiB).
 * Nothing is allocated until the first append.  A zero-filled struct
 * cairn_buf is also a valid empty buffer with the default maximum.
 */
void cairn_buf_init(struct cairn_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = (max == 0) ? BUF_DEFAULT_MAX : max;
}

/*
 * Make room for n more bytes after b->len.  CAIRN_ERANGE if b->len + n would
 * exceed the buffer's maximum, CAIRN_ENOMEM if allocation fails; the buffer
 * is unchanged on failure.  Growth is geometric, so appends are amortised
 * O(1).
 */
int cairn_buf_reserve(struct cairn_buf *b, size_t n)
{
    size_t max = buf_max(b);
    size_t need, ncap;
    uint8_t *p;

    if (b->len > max || n > max - b->len)
        return CAIRN_ERANGE;
    need = b->len + n;
    if (need <= b->cap)
        return 0;

    ncap = (b->cap < max / 2) ? b->cap * 2 : max;
    if (ncap < BUF_MIN_CAP)
        ncap = (max < BUF_MIN_CAP) ? max : BUF_MIN_CAP;
    if (ncap < need)
        ncap = need;
    if ((p = realloc(b->data, ncap)) == NULL)
        return CAIRN_ENOMEM;
    b->data = p;
    b->cap = ncap;
    return 0;
}

/* Append n bytes from p (p may be NULL when n is 0). */
int cairn_buf_append(struct cairn_buf *b, const void *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0;
    if ((rc = cairn_buf_reserve(b, n)) != 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Append one byte. */
int cairn_buf_put_u8(struct cairn_buf *b, uint8_t v)
{
    return cairn_buf_append(b, &v, 1);
}

/* Append v, 2 bytes little-endian. */
int cairn_buf_put_u16(struct cairn_buf *b, uint16_t v)
{
    uint8_t tmp[2];

    cairn_le16enc(tmp, v);
    return cairn_buf_append(b, tmp, sizeof(tmp));
}

/* Append v, 4 bytes little-endian. */
int cairn_buf_put_u32(struct cairn_buf *b, uint32_t v)
{
    uint8_t tmp[4];

    cairn_le32enc(tmp, v);
    return cairn_buf_append(b, tmp, sizeof(tmp));
}

/* Append v, 8 bytes little-endian. */
int cairn_buf_put_u64(struct cairn_buf *b, uint64_t v)
{
    uint8_t tmp[8];

    cairn_le64enc(tmp, v);
    return cairn_buf_append(b, tmp, sizeof(tmp));
}

/*
 * Append a u16 length then the n bytes of s.  CAIRN_ERANGE if n > 65535;
 * nothing is appended on failure.
 */
int cairn_buf_put_str16(struct cairn_buf *b, const char *s, size_t n)
{
    int rc;

    if (n > UINT16_MAX)
        return CAIRN_ERANGE;
    if ((rc = cairn_buf_reserve(b, 2 + n)) != 0)
        return rc;
    cairn_le16enc(b->data + b->len, (uint16_t)n);
    if (n > 0)
        memcpy(b->data + b->len + 2, s, n);
    b->len += 2 + n;
    return 0;
}

/*
 * Free the storage of b; b is left empty (same maximum) and reusable.
 * NULL is a no-op.
 */
void cairn_buf_free(struct cairn_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/*
 * Wipe the whole allocation of b, then free it, for buffers that held
 * secrets.  (Copies left behind by earlier reallocs are not reached: size a
 * buffer for secrets with one cairn_buf_reserve() before filling it.)
 */
void cairn_buf_free_wipe(struct cairn_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL)
        explicit_bzero(b->data, b->cap);
    cairn_buf_free(b);
}

/*
 * Hand the bytes of b to the caller, who frees them with free(); *out_len
 * receives their number.  b is left empty.  The result is never NULL for a
 * non-empty buffer; for an empty buffer it is a fresh 1-byte allocation, so
 * NULL always means out of memory.
 */
uint8_t *cairn_buf_steal(struct cairn_buf *b, size_t *out_len)
{
    uint8_t *p = b->data;

    *out_len = b->len;
    if (p == NULL)
        p = malloc(1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

/*
 * Take n bytes from r: a pointer to them, or NULL (with r->err set to
 * CAIRN_ECORRUPT) if fewer remain or r has failed before.
 */
static const uint8_t *reader_take(struct cairn_reader *r, size_t n)
{
    const uint8_t *p;

    if (r->err != 0)
        return NULL;
    if (n > r->left) {
        r->err = CAIRN_ECORRUPT;
        return NULL;
    }
    p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

/*
 * The cairn_get_* functions read one little-endian value.  On failure (too
 * few bytes left, or the reader failed earlier) *v is set to 0, r->err is
 * CAIRN_ECORRUPT and that is returned; a failed reader stays failed.
 */
int cairn_get_u8(struct cairn_reader *r, uint8_t *v)
{
    const uint8_t *p = reader_take(r, 1);

    *v = (p != NULL) ? p[0] : 0;
    return r->err;
}

/* Read a u16 (2 bytes, little-endian) into *v; as cairn_get_u8. */
int cairn_get_u16(struct cairn_reader *r, uint16_t *v)
{
    const uint8_t *p = reader_take(r, 2);

    *v = (p != NULL) ? cairn_le16dec(p) : 0;
    return r->err;
}

/* Read a u32 (4 bytes, little-endian) into *v; as cairn_get_u8. */
int cairn_get_u32(struct cairn_reader *r, uint32_t *v)
{
    const uint8_t *p = reader_take(r, 4);

    *v = (p != NULL) ? cairn_le32dec(p) : 0;
    return r->err;
}

/* Read a u64 (8 bytes, little-endian) into *v; as cairn_get_u8. */
int cairn_get_u64(struct cairn_reader *r, uint64_t *v)
{
    const uint8_t *p = reader_take(r, 8);

    *v = (p != NULL) ? cairn_le64dec(p) : 0;
    return r->err;
}

/*
 * Point *p at the next n bytes of r (no copy) and advance; *p is NULL on
 * failure.
 */
int cairn_get_bytes(struct cairn_reader *r, size_t n, const uint8_t **p)
{
    *p = reader_take(r, n);
    return r->err;
}
