/*
 * scan/exclude.h - exclude patterns (docs/CLI.md, "Exclude patterns").
 * Private to libcairn.
 *
 * Glob patterns (`*`, `?`, `[...]`, `\` escapes; fnmatch without
 * FNM_PERIOD, so `*` matches a leading dot):
 *
 *   - without '/' (a trailing '/' aside): matched against the last
 *     component of the path only (`*.tmp`, `node_modules`);
 *   - with '/': matched component by component against the absolute path
 *     from its start; a pattern not starting with '/' (`build/out`) is
 *     taken as if it started with "/" then `**`, so it matches at any
 *     depth; `**` stands for zero or more components; a pattern that
 *     matches a leading part of the path matches the path too (what lies
 *     inside an excluded directory is excluded);
 *   - ending in '/': directories only.
 *
 * Patterns are split into components when added, so matching costs a few
 * compares per pattern and no allocation.
 */
#ifndef CAIRN_SCAN_EXCLUDE_H
#define CAIRN_SCAN_EXCLUDE_H

#include <stddef.h>

struct cairn_exclude;

/* Make an empty set of patterns (matches nothing).  *out freed with
 * cairn_exclude_free.  0 or CAIRN_ENOMEM. */
int cairn_exclude_new(struct cairn_exclude **out);

/* Add one pattern (copied).  CAIRN_EINVAL for an empty pattern (or one
 * made of '/' alone), CAIRN_ENOMEM.  Not thread safe against other calls
 * on x. */
int cairn_exclude_add(struct cairn_exclude *x, const char *pattern);

/* Add the patterns of a file, one per line; blank lines (only spaces and
 * tabs) and lines starting with '#' are ignored, a trailing "\r" is
 * dropped.  CAIRN_ENOENT, CAIRN_EPERM, CAIRN_EIO for an unreadable file,
 * CAIRN_ECORRUPT for a line holding a NUL byte; on error the patterns
 * read before it stay added. */
int cairn_exclude_add_file(struct cairn_exclude *x, const char *path);

/*
 * Return 1 if the file is excluded, 0 if not.  abs_path[0..path_len) is
 * its absolute path (need not be NUL-terminated; repeated '/' are fine),
 * name its last component (NUL-terminated), is_dir whether it is a
 * directory.  Thread safe (x is only read); never allocates.
 */
int cairn_exclude_match(const struct cairn_exclude *x, const char *abs_path,
                        size_t path_len, const char *name, int is_dir);

/* Free x.  NULL is fine. */
void cairn_exclude_free(struct cairn_exclude *x);

#endif
