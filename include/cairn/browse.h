/*
 * cairn/browse.h - look inside snapshots: list a path, compare two.
 */
#ifndef CAIRN_BROWSE_H
#define CAIRN_BROWSE_H

#include "cairn/repo.h"
#include "cairn/snapshot.h"
#include "cairn/tree.h"

/*
 * Called for each entry: path is absolute inside the snapshot ("/home/a").
 * A non-zero return stops the walk and is returned.
 */
typedef int (*cairn_browse_fn)(void *arg, const char *path,
                               const struct cairn_tree_entry *e);

/*
 * Walk the snapshot below path (NULL or "/" for the root; the entry at
 * path itself is reported first unless it is the root), recursively when
 * recursive is set, else only its direct children.  Entries come in
 * depth-first, name order.  CAIRN_ENOENT if path is not in the snapshot.
 */
int cairn_browse_walk(struct cairn_repo *r, const struct cairn_snapshot *s,
                      const char *path, int recursive, cairn_browse_fn fn,
                      void *arg);

enum cairn_diff_kind {
    CAIRN_DIFF_ADDED = '+',
    CAIRN_DIFF_REMOVED = '-',
    CAIRN_DIFF_MODIFIED = 'M', /* content changed */
    CAIRN_DIFF_META = 'U',     /* only metadata changed */
    CAIRN_DIFF_TYPE = 'T',     /* type changed */
};

typedef int (*cairn_diff_fn)(void *arg, int kind, const char *path,
                             const struct cairn_tree_entry *old_e,
                             const struct cairn_tree_entry *new_e);

/*
 * Compare two snapshots, reporting each difference in path order.  A
 * subtree whose id is equal in both is skipped without reading it; an
 * added or removed directory is reported and so is everything below it.
 */
int cairn_browse_diff(struct cairn_repo *r, const struct cairn_snapshot *a,
                      const struct cairn_snapshot *b, cairn_diff_fn fn,
                      void *arg);

#endif
