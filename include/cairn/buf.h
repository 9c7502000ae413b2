/*
 * cairn/buf.h - a growable byte buffer with a maximum size, and the
 * little-endian helpers every on-disk encoding uses.
 */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cairn_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* growth beyond this fails with CAIRN_ERANGE; 0 = 1 GiB */
};

/* Initialise an empty buffer that may grow to max bytes (0: 1 GiB). */
void cairn_buf_init(struct cairn_buf *b, size_t max);

/* Make room for n more bytes.  0, CAIRN_ENOMEM or CAIRN_ERANGE. */
int cairn_buf_reserve(struct cairn_buf *b, size_t n);

/* Append n bytes. */
int cairn_buf_append(struct cairn_buf *b, const void *p, size_t n);
int cairn_buf_put_u8(struct cairn_buf *b, uint8_t v);
int cairn_buf_put_u16(struct cairn_buf *b, uint16_t v);
int cairn_buf_put_u32(struct cairn_buf *b, uint32_t v);
int cairn_buf_put_u64(struct cairn_buf *b, uint64_t v);
/* u16 length then bytes; CAIRN_ERANGE if n > 65535. */
int cairn_buf_put_str16(struct cairn_buf *b, const char *s, size_t n);

/* Free the storage; the buffer is left empty and reusable.  NULL is fine. */
void cairn_buf_free(struct cairn_buf *b);
/* Wipe then free (for secrets). */
void cairn_buf_free_wipe(struct cairn_buf *b);

/* Transfer ownership of the bytes to the caller (buffer left empty). */
uint8_t *cairn_buf_steal(struct cairn_buf *b, size_t *out_len);

/*
 * A bounds-checked reader over untrusted bytes.  Every get fails with
 * CAIRN_ECORRUPT (and leaves the reader in the failed state) when the input
 * is too short; callers check r.err once at the end or each result.
 */
struct cairn_reader {
    const uint8_t *p;
    size_t left;
    int err;
};

static inline void cairn_reader_init(struct cairn_reader *r, const void *p,
                                     size_t n)
{
    r->p = (const uint8_t *)p;
    r->left = n;
    r->err = 0;
}

int cairn_get_u8(struct cairn_reader *r, uint8_t *v);
int cairn_get_u16(struct cairn_reader *r, uint16_t *v);
int cairn_get_u32(struct cairn_reader *r, uint32_t *v);
int cairn_get_u64(struct cairn_reader *r, uint64_t *v);
/* Point *p at the next n bytes (no copy) and advance. */
int cairn_get_bytes(struct cairn_reader *r, size_t n, const uint8_t **p);

static inline void cairn_le16enc(void *p, uint16_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static inline void cairn_le32enc(void *p, uint32_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}
static inline void cairn_le64enc(void *p, uint64_t v)
{
    cairn_le32enc(p, (uint32_t)v);
    cairn_le32enc((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t cairn_le16dec(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint16_t)(b[0] | (b[1] << 8));
}
static inline uint32_t cairn_le32dec(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}
static inline uint64_t cairn_le64dec(const void *p)
{
    return (uint64_t)cairn_le32dec(p) |
           ((uint64_t)cairn_le32dec((const uint8_t *)p + 4) << 32);
}

/* Hex: out must hold 2*n+1 bytes; NUL-terminated, lowercase. */
void cairn_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2*n hex digits; CAIRN_EINVAL on bad input. */
int cairn_hex_decode(const char *in, uint8_t *out, size_t n);

#endif
