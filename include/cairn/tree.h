/*
 * cairn/tree.h - one directory's listing, the plaintext of a tree blob.
 *
 * Encoding (version 1; all integers little-endian, see docs/FORMAT.md):
 *   "CRNT" | version u8 (1) | nentries u32
 *   per entry, sorted by name (bytewise, strictly increasing):
 *     name str16 | type u8 | mode u32 | uid u32 | gid u32
 *     | user str16 | group str16
 *     | mtime_ns i64 | atime_ns i64 | ctime_ns i64
 *     | size u64 | dev u64 | ino u64 | nlink u32 | rdev u64
 *     | nxattrs u16, per xattr: name str16 | value u32 length + bytes
 *     | target str16 (symlinks; empty otherwise)
 *     | ncontent u32 | content ids [32] * ncontent   (regular files)
 *     | has_subtree u8 | subtree id [32] if has_subtree (directories)
 *   str16 = u16 length | bytes (no NUL)
 */
#ifndef CAIRN_TREE_H
#define CAIRN_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/buf.h"
#include "cairn/crypto.h"

enum cairn_node_type {
    CAIRN_NODE_FILE = 1,
    CAIRN_NODE_DIR = 2,
    CAIRN_NODE_SYMLINK = 3,
    CAIRN_NODE_FIFO = 4,
    CAIRN_NODE_CHR = 5,
    CAIRN_NODE_BLK = 6,
    CAIRN_NODE_SOCK = 7,
};

struct cairn_xattr {
    char *name;     /* NUL-terminated */
    uint8_t *value;
    uint32_t len;
};

struct cairn_tree_entry {
    char *name; /* NUL-terminated; never contains '/' or NUL, not "." or ".." */
    uint8_t type;
    uint32_t mode; /* permission and special bits (st_mode & 07777) */
    uint32_t uid, gid;
    char *user, *group; /* "" when unknown */
    int64_t mtime_ns, atime_ns, ctime_ns;
    uint64_t size, dev, ino, rdev;
    uint32_t nlink;
    uint16_t nxattrs;
    struct cairn_xattr *xattrs;
    char *target; /* symlink target, "" otherwise */
    uint32_t ncontent;
    uint8_t (*content)[CAIRN_ID_LEN];
    int has_subtree;
    uint8_t subtree[CAIRN_ID_LEN];
};

struct cairn_tree {
    uint32_t nentries;
    struct cairn_tree_entry *entries;
};

/*
 * Encode t into out (appended).  Entries must be sorted by name with no
 * duplicates and valid names (CAIRN_EINVAL otherwise).  The caller owns t.
 */
int cairn_tree_encode(const struct cairn_tree *t, struct cairn_buf *out);

/*
 * Decode a tree.  Every length is checked; malformed input (truncated,
 * unsorted or duplicate names, '/' or NUL in a name, "." or "..", an
 * unknown type, trailing bytes) is CAIRN_ECORRUPT; an unknown version
 * CAIRN_EVERSION.  *out is freed with cairn_tree_free (one arena).
 */
int cairn_tree_decode(const uint8_t *buf, size_t len, struct cairn_tree **out);
void cairn_tree_free(struct cairn_tree *t);

/* Binary search for name; NULL if absent. */
const struct cairn_tree_entry *cairn_tree_find(const struct cairn_tree *t,
                                               const char *name);

/*
 * The ids a tree refers to, in entry order (content ids, then the subtree
 * id, per entry).  *out_refs is malloc'ed (NULL when none).
 */
int cairn_tree_refs(const struct cairn_tree *t,
                    uint8_t (**out_refs)[CAIRN_ID_LEN], uint32_t *out_n);

#endif
