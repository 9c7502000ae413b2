/*
 * snapshot.c - encode and decode snapshot objects (format in
 * cairn/snapshot.h and docs/FORMAT.md, "Snapshot").
 *
 *   public header (136 bytes) | private length u32 | private part | MAC
 *
 * The public header is what a server reads without keys.  The private
 * part (host, user, paths, tags) is sealed under the meta key with every
 * preceding byte as associated data; the MAC under the mac key covers
 * everything before it.  A decoded snapshot is one allocation:
 *
 *   struct cairn_snapshot | paths[] | tags[] | string bytes
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/buf.h"
#include "cairn/err.h"
#include "cairn/snapshot.h"

#define SNAP_PUBLIC_LEN 136 /* up to the private length */
#define SNAP_PRIV_AT (SNAP_PUBLIC_LEN + 4)
#define SNAP_MAC_LEN 32
#define SNAP_FLAG_COMPLETE 0x01
#define SNAP_FLAG_PARENT 0x02
#define SNAP_LIST_MAX 100000u /* paths, tags */
/* hostname, username, npaths, ntags, when all are empty */
#define SNAP_PRIV_MIN (2 + 2 + 4 + 4)
#define ALIGN 16

static size_t opt_len(const char *s)
{
    return (s != NULL) ? strlen(s) : 0;
}

/* Add the encoded size of a str16 list; CAIRN_EINVAL/CAIRN_ERANGE. */
static int list_size(char *const *v, uint32_t n, size_t *size)
{
    uint32_t i;
    size_t l;

    if (n > SNAP_LIST_MAX)
        return CAIRN_ERANGE;
    if (n > 0 && v == NULL)
        return CAIRN_EINVAL;
    *size += 4;
    for (i = 0; i < n; i++) {
        if (v[i] == NULL)
            return CAIRN_EINVAL;
        if ((l = strlen(v[i])) > UINT16_MAX)
            return CAIRN_ERANGE;
        *size += 2 + l;
    }
    return 0;
}

static uint8_t *put_str16(uint8_t *p, const char *s)
{
    size_t n = opt_len(s);

    cairn_le16enc(p, (uint16_t)n);
    if (n > 0)
        memcpy(p + 2, s, n);
    return p + 2 + n;
}

static uint8_t *put_list(uint8_t *p, char *const *v, uint32_t n)
{
    uint32_t i;

    cairn_le32enc(p, n);
    p += 4;
    for (i = 0; i < n; i++)
        p = put_str16(p, v[i]);
    return p;
}

/*
 * Encode s with keys: the public fields in the clear, hostname, username,
 * paths and tags sealed under keys->meta, the whole MACed under keys->mac.
 * NULL hostname/username encode as "".  s->id is set to the SHA-256 of
 * the result (its old value is ignored).  *out is malloc'ed, the caller
 * frees it.  CAIRN_ERANGE for a string above 65535 bytes or more than
 * 100,000 paths or tags, CAIRN_EINVAL for NULL lists or list members,
 * CAIRN_ENOMEM, CAIRN_ECRYPTO.  Thread safe (for distinct s).
 */
int cairn_snapshot_encode(struct cairn_snapshot *s,
                          const struct cairn_keys *keys, uint8_t **out,
                          size_t *out_len)
{
    struct cairn_aead *aead;
    size_t ptlen, plen, total;
    uint8_t *pt, *p, *buf;
    int rc;

    if (s == NULL || keys == NULL || out == NULL || out_len == NULL) {
        rc = CAIRN_EINVAL;
        goto err0;
    }

    /* Size and build the private plaintext. */
    ptlen = 2 + opt_len(s->hostname) + 2 + opt_len(s->username);
    if (opt_len(s->hostname) > UINT16_MAX ||
        opt_len(s->username) > UINT16_MAX) {
        rc = CAIRN_ERANGE;
        goto err0;
    }
    if ((rc = list_size(s->paths, s->npaths, &ptlen)) != 0 ||
        (rc = list_size(s->tags, s->ntags, &ptlen)) != 0)
        goto err0;
    plen = ptlen + CAIRN_AEAD_OVERHEAD;
    if (plen > UINT32_MAX - SNAP_PRIV_AT - SNAP_MAC_LEN) {
        rc = CAIRN_ERANGE;
        goto err0;
    }
    total = SNAP_PRIV_AT + plen + SNAP_MAC_LEN;
    if ((pt = malloc(ptlen)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    p = put_str16(pt, s->hostname);
    p = put_str16(p, s->username);
    p = put_list(p, s->paths, s->npaths);
    (void)put_list(p, s->tags, s->ntags);

    /* The public header. */
    if ((buf = malloc(total)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    memcpy(buf, "CRNS", 4);
    buf[4] = 1;
    buf[5] = (uint8_t)((s->complete ? SNAP_FLAG_COMPLETE : 0) |
                       (s->has_parent ? SNAP_FLAG_PARENT : 0));
    buf[6] = buf[7] = 0;
    cairn_le64enc(buf + 8, (uint64_t)s->time_ns);
    memcpy(buf + 16, s->root, CAIRN_ID_LEN);
    if (s->has_parent)
        memcpy(buf + 48, s->parent, CAIRN_ID_LEN);
    else
        memset(buf + 48, 0, CAIRN_ID_LEN);
    memcpy(buf + 80, s->device, CAIRN_DEVICE_ID_LEN);
    cairn_le64enc(buf + 96, s->files);
    cairn_le64enc(buf + 104, s->dirs);
    cairn_le64enc(buf + 112, s->bytes);
    cairn_le64enc(buf + 120, s->added_bytes);
    cairn_le64enc(buf + 128, s->errors);
    cairn_le32enc(buf + SNAP_PUBLIC_LEN, (uint32_t)plen);

    /* Seal, MAC, name. */
    if ((aead = cairn_aead_new(keys->meta)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err2;
    }
    if ((rc = cairn_aead_seal(aead, buf, SNAP_PRIV_AT, pt, ptlen, NULL, 0,
                              buf + SNAP_PRIV_AT)) != 0)
        goto err3;
    if ((rc = cairn_hmac_sha256(keys->mac, buf, total - SNAP_MAC_LEN,
                                buf + total - SNAP_MAC_LEN)) != 0)
        goto err3;
    cairn_sha256(buf, total, s->id);
    cairn_aead_free(aead);
    cairn_wipe(pt, ptlen);
    free(pt);
    *out = buf;
    *out_len = total;

    /* Success! */
    return 0;

err3:
    cairn_aead_free(aead);
err2:
    free(buf);
err1:
    cairn_wipe(pt, ptlen);
    free(pt);
err0:
    /* Failure! */
    return rc;
}

/* A cursor over the decrypted private part. */
struct cur {
    const uint8_t *p;
    size_t left;
};

static int take(struct cur *c, size_t n, const uint8_t **out)
{
    if (n > c->left)
        return -1;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return 0;
}

/* A str16 without NUL; adds its C-string size to *bytes. */
static int scan_str16(struct cur *c, size_t *bytes)
{
    const uint8_t *p, *s;
    size_t n;

    if (take(c, 2, &p))
        return -1;
    n = cairn_le16dec(p);
    if (take(c, n, &s) || (n > 0 && memchr(s, '\0', n) != NULL))
        return -1;
    *bytes += n + 1;
    return 0;
}

static int scan_list(struct cur *c, uint32_t *n, size_t *bytes)
{
    const uint8_t *p;
    uint32_t i;

    if (take(c, 4, &p))
        return -1;
    *n = cairn_le32dec(p);
    /* Each member takes at least 2 bytes. */
    if (*n > SNAP_LIST_MAX || *n > c->left / 2)
        return -1;
    for (i = 0; i < *n; i++)
        if (scan_str16(c, bytes))
            return -1;
    return 0;
}

static char *fill_str16(const uint8_t **p, uint8_t **arena)
{
    size_t n = cairn_le16dec(*p);
    char *s = (char *)*arena;

    memcpy(s, *p + 2, n);
    s[n] = '\0';
    *p += 2 + n;
    *arena += n + 1;
    return s;
}

static char **fill_list(const uint8_t **p, char **v, uint8_t **arena)
{
    uint32_t i, n = cairn_le32dec(*p);

    *p += 4;
    for (i = 0; i < n; i++)
        v[i] = fill_str16(p, arena);
    return (n > 0) ? v : NULL;
}

static size_t align_up(size_t n)
{
    return (n + (ALIGN - 1)) & ~(size_t)(ALIGN - 1);
}

/*
 * Decode the snapshot object buf[0..len).  keys == NULL: only the public
 * fields, with have_private = 0 and the MAC not checked (what a server
 * sees).  With keys: the MAC is verified first, then the private part
 * decrypted and parsed (have_private = 1).  A wrong MAC, a private part
 * that does not open (wrong keys), truncated input, trailing bytes,
 * unknown flags, a parent id without the flag, NUL in a string or more
 * than 100,000 paths or tags: CAIRN_ECORRUPT.  A version other than 1:
 * CAIRN_EVERSION.  CAIRN_ENOMEM, CAIRN_ECRYPTO.  s->id is the SHA-256 of
 * buf.  *out is one allocation, freed with cairn_snapshot_free.  Thread
 * safe.
 */
int cairn_snapshot_decode(const uint8_t *buf, size_t len,
                          const struct cairn_keys *keys,
                          struct cairn_snapshot **out)
{
    static const uint8_t zero_id[CAIRN_ID_LEN] = {0};
    uint8_t mac[SNAP_MAC_LEN];
    struct cairn_snapshot *s;
    struct cairn_aead *aead;
    struct cur c;
    size_t plen, ptlen = 0, bytes = 0, off_lists, off_bytes, total;
    uint32_t npaths = 0, ntags = 0;
    uint8_t *pt = NULL, *block, *arena;
    const uint8_t *p;
    uint8_t flags;
    int rc;

    if (buf == NULL || len < SNAP_PRIV_AT || memcmp(buf, "CRNS", 4) != 0) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }
    if (buf[4] != 1) {
        rc = CAIRN_EVERSION;
        goto err0;
    }
    flags = buf[5];
    plen = cairn_le32dec(buf + SNAP_PUBLIC_LEN);
    if ((flags & ~(SNAP_FLAG_COMPLETE | SNAP_FLAG_PARENT)) != 0 ||
        buf[6] != 0 || buf[7] != 0 ||
        plen < CAIRN_AEAD_OVERHEAD + SNAP_PRIV_MIN ||
        len - SNAP_PRIV_AT < SNAP_MAC_LEN ||
        plen != len - SNAP_PRIV_AT - SNAP_MAC_LEN ||
        (!(flags & SNAP_FLAG_PARENT) &&
         memcmp(buf + 48, zero_id, CAIRN_ID_LEN) != 0)) {
        rc = CAIRN_ECORRUPT;
        goto err0;
    }

    if (keys != NULL) {
        if ((rc = cairn_hmac_sha256(keys->mac, buf, len - SNAP_MAC_LEN, mac)) !=
            0)
            goto err0;
        if (!cairn_ct_equal(mac, buf + len - SNAP_MAC_LEN, SNAP_MAC_LEN)) {
            rc = CAIRN_ECORRUPT;
            goto err0;
        }
        ptlen = plen - CAIRN_AEAD_OVERHEAD;
        if ((pt = malloc(ptlen)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err0;
        }
        if ((aead = cairn_aead_new(keys->meta)) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
        rc = cairn_aead_open(aead, buf, SNAP_PRIV_AT, buf + SNAP_PRIV_AT, plen,
                             pt);
        cairn_aead_free(aead);
        if (rc != 0)
            goto err1;

        /* Check the plaintext and size what it needs. */
        c.p = pt;
        c.left = ptlen;
        if (scan_str16(&c, &bytes) || scan_str16(&c, &bytes) ||
            scan_list(&c, &npaths, &bytes) || scan_list(&c, &ntags, &bytes) ||
            c.left != 0) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
    }

    /* bytes <= ptlen + npaths + ntags + 2 and the lists are capped: no
     * overflow for any input a process can hold. */
    off_lists = align_up(sizeof(*s));
    off_bytes = off_lists + ((size_t)npaths + ntags) * sizeof(char *);
    total = off_bytes + bytes;
    if ((block = malloc(total)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    s = (struct cairn_snapshot *)block;
    memset(s, 0, sizeof(*s));
    cairn_sha256(buf, len, s->id);
    s->complete = (flags & SNAP_FLAG_COMPLETE) ? 1 : 0;
    s->has_parent = (flags & SNAP_FLAG_PARENT) ? 1 : 0;
    s->time_ns = (int64_t)cairn_le64dec(buf + 8);
    memcpy(s->root, buf + 16, CAIRN_ID_LEN);
    memcpy(s->parent, buf + 48, CAIRN_ID_LEN);
    memcpy(s->device, buf + 80, CAIRN_DEVICE_ID_LEN);
    s->files = cairn_le64dec(buf + 96);
    s->dirs = cairn_le64dec(buf + 104);
    s->bytes = cairn_le64dec(buf + 112);
    s->added_bytes = cairn_le64dec(buf + 120);
    s->errors = cairn_le64dec(buf + 128);
    if (keys != NULL) {
        arena = block + off_bytes;
        p = pt;
        s->have_private = 1;
        s->hostname = fill_str16(&p, &arena);
        s->username = fill_str16(&p, &arena);
        s->npaths = npaths;
        s->paths = fill_list(&p, (char **)(block + off_lists), &arena);
        s->ntags = ntags;
        s->tags = fill_list(&p, (char **)(block + off_lists) + npaths, &arena);
        cairn_wipe(pt, ptlen);
        free(pt);
    }
    *out = s;

    /* Success! */
    return 0;

err1:
    if (pt != NULL) {
        cairn_wipe(pt, ptlen);
        free(pt);
    }
err0:
    /* Failure! */
    return rc;
}

/* Free a decoded snapshot.  NULL is fine. */
void cairn_snapshot_free(struct cairn_snapshot *s)
{
    free(s);
}
