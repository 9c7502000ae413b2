/*
 * cairn/chunker.h - keyed content-defined chunking (FastCDC with
 * normalised chunking, level 2).  The 256-entry gear table is derived from
 * the archive's chunker key, so boundaries depend on a secret.
 */
#ifndef CAIRN_CHUNKER_H
#define CAIRN_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

struct cairn_chunker_params {
    uint32_t min; /* default 512 KiB */
    uint32_t avg; /* default 1 MiB; a power of two */
    uint32_t max; /* default 8 MiB */
};
#define CAIRN_CHUNK_MIN_DEFAULT (512u * 1024)
#define CAIRN_CHUNK_AVG_DEFAULT (1024u * 1024)
#define CAIRN_CHUNK_MAX_DEFAULT (8u * 1024 * 1024)

/* Check params: 64 <= min < avg < max <= 64 MiB, avg a power of two. */
int cairn_chunker_params_check(const struct cairn_chunker_params *p);

struct cairn_chunker;

/* Make a chunker for these parameters, its gear table derived from key
 * (HKDF-expanded).  Immutable after creation: thread safe to share. */
int cairn_chunker_new(const uint8_t key[32],
                      const struct cairn_chunker_params *params,
                      struct cairn_chunker **out);
void cairn_chunker_free(struct cairn_chunker *c);

/*
 * Find the end of the chunk that starts at buf[0].  Returns the length of
 * that chunk (1..len), or 0 if the boundary lies beyond len and more data
 * could follow (eof == 0 and len < max).  When eof is set, or len >= max,
 * a length is always returned (for len == 0 with eof: 0).  Stateless: the
 * result depends only on the bytes buf[0..result) plus the bytes examined.
 */
size_t cairn_chunker_next(const struct cairn_chunker *c, const uint8_t *buf,
                          size_t len, int eof);

#endif
