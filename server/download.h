/*
 * download.h - files and folders of a snapshot as one tar or zip stream,
 * made while it is sent (docs/API.md, "Restores on the server").
 *
 * A download is a step function: each download_read makes the next bytes
 * of the archive, reading and decrypting one blob at a time, so memory
 * stays bounded (the largest blob and its archive framing) and nothing
 * decrypted is ever written to disk.  Archive entries are named from the
 * last component of each path asked for ("/home/ana/docs" gives "docs/…";
 * "/" gives the snapshot's top level), with the file modes (permission
 * bits), modification times, and for tar the owners and hard links (a
 * file with several names is written once); symlinks are kept;
 * devices, fifos and sockets are left out (counted in skipped).  Entries
 * are stored uncompressed (the server's CPU is not spent on deflate).
 *
 * Not thread safe: one download is driven by one thread at a time.
 */
#ifndef CAIRN_SRV_DOWNLOAD_H
#define CAIRN_SRV_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "cairn/repo.h"
#include "cairn/snapshot.h"

enum download_format {
    DOWNLOAD_TAR = 1, /* POSIX pax (times in nanoseconds) */
    DOWNLOAD_ZIP = 2,
};

#define DOWNLOAD_PATHS_MAX 1000

struct download;

/*
 * Plan the download of paths (absolute, npaths 1 .. DOWNLOAD_PATHS_MAX) of
 * snapshot s in r: each path is resolved and every tree below it read to
 * count the files and bytes (download_totals), before any byte is made.
 * CAIRN_EINVAL for a malformed path ("." or ".." components, not
 * absolute), two paths ending in the same name, or "/" with other paths;
 * CAIRN_ENOENT when a path is not in the snapshot (*out_bad: its index, if
 * out_bad is not NULL); a repository error otherwise.  r and s are
 * borrowed: they must outlive the download.  Free with download_free.
 */
int download_new(struct cairn_repo *r, const struct cairn_snapshot *s,
                 const char *const *paths, size_t npaths,
                 enum download_format fmt, struct download **out,
                 size_t *out_bad);

/* What the download holds: regular files, their bytes, and entries left
 * out (special files).  Any pointer may be NULL. */
void download_totals(const struct download *d, uint64_t *out_files,
                     uint64_t *out_bytes, uint64_t *out_skipped);

/* Does the download fit under the size cap (its files' bytes <= max_bytes)?
 * 1 or 0.  Known before any byte is made. */
int download_fits(const struct download *d, uint64_t max_bytes);

/*
 * Make up to max bytes of the archive into buf.  Returns how many (> 0),
 * 0 at the end, or a negative cairn_err code (the archive cannot be
 * finished; the download is dead).  A blob that cannot be read (missing
 * or damaged) does not stop the download: its part of the file is zeros
 * and download_progress counts the file as damaged.
 */
long long download_read(struct download *d, uint8_t *buf, size_t max);

/* Progress so far: files finished, content bytes written, files with a
 * damaged part.  Any pointer may be NULL. */
void download_progress(const struct download *d, uint64_t *out_files,
                       uint64_t *out_bytes, uint64_t *out_damaged);

/* Free everything (decrypted data is wiped).  NULL is fine. */
void download_free(struct download *d);

#endif
