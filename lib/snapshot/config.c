/*
 * config.c - the archive's config object (format in cairn/snapshot.h and
 * docs/FORMAT.md, "Config"): 100 bytes, fixed layout, MACed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/pack.h"
#include "cairn/snapshot.h"

#define CONFIG_MAC_AT 68
#define CONFIG_LEN (CONFIG_MAC_AT + 32)
#define CONFIG_CHUNK_MIN 64u
#define CONFIG_CHUNK_MAX (64u * 1024 * 1024)
#define CONFIG_ZSTD_MIN (-(1 << 17))
#define CONFIG_ZSTD_MAX 22

/* The settings' sanity rules (the chunker's, cairn/chunker.h). */
static int config_valid(const struct cairn_config *c)
{
    if (c->chunk_min < CONFIG_CHUNK_MIN || c->chunk_min >= c->chunk_avg ||
        c->chunk_avg >= c->chunk_max || c->chunk_max > CONFIG_CHUNK_MAX ||
        (c->chunk_avg & (c->chunk_avg - 1)) != 0)
        return 0;
    if (c->pack_size == 0 || c->pack_size > CAIRN_PACK_MAX_LEN)
        return 0;
    if (c->zstd_level < CONFIG_ZSTD_MIN || c->zstd_level > CONFIG_ZSTD_MAX)
        return 0;
    return 1;
}

/*
 * Encode c with an HMAC under mac_key.  *out (malloc'ed, CONFIG_LEN = 100
 * bytes) passes to the caller.  CAIRN_EINVAL if the chunk sizes break
 * cairn/chunker.h's rules, pack_size is 0 or above CAIRN_PACK_MAX_LEN, or
 * zstd_level is outside -131072..22; CAIRN_ENOMEM, CAIRN_ECRYPTO.
 */
int cairn_config_encode(const struct cairn_config *c,
                        const uint8_t mac_key[CAIRN_KEY_LEN], uint8_t **out,
                        size_t *out_len)
{
    uint8_t *buf;
    int rc;

    if (c == NULL || mac_key == NULL || out == NULL || out_len == NULL ||
        !config_valid(c)) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((buf = malloc(CONFIG_LEN)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    memcpy(buf, "CRNC\x01\x00\x00\x00", 8);
    memcpy(buf + 8, c->archive_id, CAIRN_ID_LEN);
    cairn_le32enc(buf + 40, c->chunk_min);
    cairn_le32enc(buf + 44, c->chunk_avg);
    cairn_le32enc(buf + 48, c->chunk_max);
    cairn_le32enc(buf + 52, c->pack_size);
    cairn_le32enc(buf + 56, (uint32_t)c->zstd_level);
    cairn_le64enc(buf + 60, (uint64_t)c->created_ns);
    if ((rc = cairn_hmac_sha256(mac_key, buf, CONFIG_MAC_AT,
                                buf + CONFIG_MAC_AT)) != 0)
        goto err1;
    *out = buf;
    *out_len = CONFIG_LEN;

    /* Success! */
    return 0;

err1:
    free(buf);
err0:
    /* Failure! */
    return rc;
}

/*
 * Decode the config buf[0..len) into *out.  With mac_key the MAC is
 * verified (CAIRN_ECORRUPT on mismatch); with NULL it is skipped (the
 * archive id must be read before the keys can be derived; verify again
 * once they are).  A wrong length, magic, non-zero reserved bytes or
 * settings that break the encoder's rules: CAIRN_ECORRUPT; a version other
 * than 1: CAIRN_EVERSION.  *out is written only on success.
 */
int cairn_config_decode(const uint8_t *buf, size_t len, const uint8_t *mac_key,
                        struct cairn_config *out)
{
    uint8_t mac[32];
    struct cairn_config c;
    int rc;

    if (buf == NULL || out == NULL || len < 5 || memcmp(buf, "CRNC", 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (buf[4] != 1) {
        rc = CAIRN_EVERSION;
        goto err0;
    }
    if (len != CONFIG_LEN || buf[5] != 0 || buf[6] != 0 || buf[7] != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (mac_key != NULL) {
        if ((rc = cairn_hmac_sha256(mac_key, buf, CONFIG_MAC_AT, mac)) != 0)
            goto err0;
        if (!cairn_ct_equal(mac, buf + CONFIG_MAC_AT, sizeof(mac))) {
            rc = CAIRN_ECORRUPT;
            goto err0;
        }
    }
    memcpy(c.archive_id, buf + 8, CAIRN_ID_LEN);
    c.chunk_min = cairn_le32dec(buf + 40);
    c.chunk_avg = cairn_le32dec(buf + 44);
    c.chunk_max = cairn_le32dec(buf + 48);
    c.pack_size = cairn_le32dec(buf + 52);
    c.zstd_level = (int32_t)cairn_le32dec(buf + 56);
    c.created_ns = (int64_t)cairn_le64dec(buf + 60);
    if (!config_valid(&c)) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    *out = c;

    /* Success! */
    return 0;

err0:
    /* Failure! */
    return rc;
}
