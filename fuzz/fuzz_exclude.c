/*
 * fuzz_exclude.c - exclude files and the pattern matcher, checked against
 * a plain reference.
 *
 * Input: a path line, a flags line (its first byte's low bit: the path is
 * a directory), then an exclude file.  The file is read by
 * cairn_exclude_add_file (through a memfd) and, line by line, by the rules
 * of scan/exclude.h, here; both must agree on the result code.  Then the
 * path is matched by cairn_exclude_match and by a reference that follows
 * the documented meaning with nothing clever in it: a pattern without '/'
 * is fnmatch(3) against the last component; a pattern with '/' is matched
 * component by component, "**" taking any number of components (a table
 * over pattern and path positions instead of one backtrack point), a
 * pattern matching a leading part matching the whole.  Every fast path
 * of the matcher (literals, "*.ext", "*", the single backtrack) must give
 * the reference's answer.
 */
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cairn/err.h"
#include "fuzz.h"
#include "scan/exclude.h"

#define MAXPATS 64
#define MAXCOMPS 64
#define NAME_MAX_LEN 255

struct ref_pat {
    char *buf;             /* the pattern's copy; comps point into it */
    char *comps[MAXCOMPS]; /* NULL: the "**" a relative path pattern
                              starts with; a name pattern has one */
    size_t n;
    int path;              /* has a '/' (the trailing ones dropped) */
    int dir_only;
};

struct ref {
    struct ref_pat v[MAXPATS];
    size_t n;
    int too_big; /* more patterns or components than the tables hold */
};

/* Split s (modified) at '/' into comps, dropping empty components (and
 * "." ones with drop_dot).  The count, or SIZE_MAX if more than max. */
static size_t split(char *s, char **comps, size_t max, int drop_dot)
{
    size_t n = 0;
    char *t, *save = NULL;

    for (t = strtok_r(s, "/", &save); t != NULL;
         t = strtok_r(NULL, "/", &save)) {
        if (drop_dot && strcmp(t, ".") == 0)
            continue;
        if (n == max)
            return SIZE_MAX;
        comps[n++] = t;
    }
    return n;
}

/* One pattern line, as exclude.h says.  0 or CAIRN_EINVAL. */
static int ref_add(struct ref *r, const char *line)
{
    struct ref_pat *p = &r->v[r->n];
    size_t len = strlen(line), n;
    int dir_only = 0;

    while (len > 0 && line[len - 1] == '/') {
        dir_only = 1;
        len--;
    }
    if (len == 0)
        return CAIRN_EINVAL;
    if (r->n == MAXPATS) {
        r->too_big = 1;
        return 0;
    }
    memset(p, 0, sizeof(*p));
    p->dir_only = dir_only;
    if ((p->buf = strndup(line, len)) == NULL)
        abort();
    r->n++;
    p->path = strchr(p->buf, '/') != NULL;
    if (!p->path) {
        p->comps[p->n++] = p->buf;
        return 0;
    }
    if (p->buf[0] != '/')
        p->comps[p->n++] = NULL; /* relative: any depth */
    if ((n = split(p->buf, p->comps + p->n, MAXCOMPS - p->n, 1)) == SIZE_MAX)
        r->too_big = 1;
    else
        p->n += n;
    return 0;
}

static void ref_free(struct ref *r)
{
    size_t i;

    for (i = 0; i < r->n; i++)
        free(r->v[i].buf);
    r->n = 0;
}

static int is_starstar(const char *c)
{
    return c == NULL || strcmp(c, "**") == 0;
}

/* Does path pattern p match the path components t[0..nt)? */
static int ref_path_match(const struct ref_pat *p, char **t, size_t nt,
                          int is_dir)
{
    /* m[i][j]: pattern from i matches path from j. */
    static unsigned char m[MAXCOMPS + 1][MAXCOMPS + 1];
    size_t i, j, k;

    for (i = p->n + 1; i-- > 0;) {
        for (j = nt + 1; j-- > 0;) {
            if (i == p->n) {
                m[i][j] = j < nt || !p->dir_only || is_dir;
            } else if (is_starstar(p->comps[i])) {
                m[i][j] = 0;
                for (k = j; k <= nt && !m[i][j]; k++)
                    m[i][j] = m[i + 1][k];
            } else {
                m[i][j] = j < nt && fnmatch(p->comps[i], t[j], 0) == 0 &&
                          m[i + 1][j + 1];
            }
        }
    }
    return m[0][0];
}

static int ref_match(const struct ref *r, char **t, size_t nt, int is_dir)
{
    const struct ref_pat *p;
    size_t i;

    for (i = 0; i < r->n; i++) {
        p = &r->v[i];
        if (!p->path) {
            if ((!p->dir_only || is_dir) &&
                fnmatch(p->comps[0], t[nt - 1], 0) == 0)
                return 1;
        } else if (ref_path_match(p, t, nt, is_dir)) {
            return 1;
        }
    }
    return 0;
}

/* The lines of file[0..len) as cairn_exclude_add_file reads them. */
static int ref_read(struct ref *r, const uint8_t *file, size_t len)
{
    const uint8_t *nl;
    size_t n, step;
    char *line;
    int rc = 0;

    for (; len > 0 && rc == 0; file += step, len -= step) {
        nl = memchr(file, '\n', len);
        n = nl != NULL ? (size_t)(nl - file) : len;
        step = nl != NULL ? n + 1 : n;
        if ((line = malloc(n + 1)) == NULL)
            abort();
        memcpy(line, file, n);
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (memchr(line, '\0', n) != NULL)
            rc = CAIRN_ECORRUPT;
        else if (line[0] != '#' && line[strspn(line, " \t")] != '\0')
            rc = ref_add(r, line);
        free(line);
    }
    return rc;
}

static int memfd(void)
{
    static int fd = -1;

    if (fd < 0 && (fd = memfd_create("fuzz_exclude", MFD_CLOEXEC)) < 0)
        abort();
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ref r;
    struct cairn_exclude *x;
    const uint8_t *nl, *flags, *file;
    char *path, *split_path, *t[MAXCOMPS + 1], proc[64];
    size_t plen, flen, nt, i;
    int fd = memfd(), rc, want, got, is_dir;

    /* path \n flags \n file */
    if ((nl = memchr(data, '\n', size)) == NULL)
        return 0;
    plen = (size_t)(nl - data);
    flags = nl + 1;
    if ((nl = memchr(flags, '\n', size - plen - 1)) == NULL)
        return 0;
    is_dir = nl > flags && (flags[0] & 1);
    file = nl + 1;
    flen = size - (size_t)(file - data);
    if (plen == 0 || memchr(data, '\0', plen) != NULL)
        return 0;

    /* The file through the real reader. */
    if (ftruncate(fd, 0) != 0 ||
        (flen > 0 && pwrite(fd, file, flen, 0) != (ssize_t)flen))
        abort();
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (cairn_exclude_new(&x) != 0)
        abort();
    rc = cairn_exclude_add_file(x, proc);

    memset(&r, 0, sizeof(r));
    want = ref_read(&r, file, flen);
    if (rc != want && rc != CAIRN_ENOMEM)
        abort();

    /* The path: absolute, components of real names (1..255 bytes). */
    if ((path = malloc(plen + 2)) == NULL || (split_path = malloc(plen + 2)) == NULL)
        abort();
    path[0] = '/';
    memcpy(path + 1, data, plen);
    path[plen + 1] = '\0';
    memcpy(split_path, path, plen + 2);
    nt = split(split_path, t, MAXCOMPS, 0);
    if (nt != SIZE_MAX && nt > 0 && !r.too_big && rc == want) {
        for (i = 0; i < nt && strlen(t[i]) <= NAME_MAX_LEN; i++)
            ;
        if (i == nt) {
            got = cairn_exclude_match(x, path, plen + 1, t[nt - 1], is_dir);
            if (got != ref_match(&r, t, nt, is_dir))
                abort();
        }
    } else if (nt != SIZE_MAX && nt > 0) {
        /* Still must not crash. */
        (void)cairn_exclude_match(x, path, plen + 1, t[nt - 1], is_dir);
    }

    free(split_path);
    free(path);
    ref_free(&r);
    cairn_exclude_free(x);
    return 0;
}
