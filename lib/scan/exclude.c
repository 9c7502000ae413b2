/*
 * exclude.c - exclude patterns, matched once per file of a backup.
 *
 * Each pattern is split into components when it is added, and each
 * component classified, so that the common shapes (`node_modules`, `*.o`,
 * `*`) are a length check and a memcmp; only real globs reach fnmatch.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "scan/exclude.h"

enum comp_kind {
    COMP_LITERAL,  /* no glob characters: equal bytes */
    COMP_SUFFIX,   /* '*' then a literal: ends with it */
    COMP_ANY,      /* "*": any one component */
    COMP_GLOB,     /* anything else: fnmatch */
    COMP_STARSTAR, /* "**": zero or more components (path patterns) */
};

struct comp {
    const char *s; /* NUL-terminated; for COMP_SUFFIX, past the '*' */
    size_t len;    /* strlen(s) */
    int kind;
};

struct pattern {
    char *text; /* the pattern's copy, '/' replaced by NUL */
    struct comp *comps;
    size_t ncomps;
    int dir_only;
};

struct plist {
    struct pattern *v;
    size_t n, cap;
};

struct cairn_exclude {
    struct plist names; /* without '/': one component, against the name */
    struct plist paths; /* with '/': against the whole path */
};

/* Longest component handed to fnmatch (NAME_MAX on Linux). */
#define COMP_MAX 255

static int has_glob(const char *s)
{
    return strpbrk(s, "*?[\\") != NULL;
}

static void classify(struct comp *c, const char *s, int path_pattern)
{
    c->s = s;
    c->len = strlen(s);
    if (strcmp(s, "**") == 0)
        c->kind = path_pattern ? COMP_STARSTAR : COMP_ANY;
    else if (strcmp(s, "*") == 0)
        c->kind = COMP_ANY;
    else if (!has_glob(s))
        c->kind = COMP_LITERAL;
    else if (s[0] == '*' && !has_glob(s + 1)) {
        c->kind = COMP_SUFFIX;
        c->s = s + 1;
        c->len--;
    } else
        c->kind = COMP_GLOB;
}

/* Does component t[0..tlen) match c?  t need not be NUL-terminated unless
 * nul_terminated says so. */
static int comp_match(const struct comp *c, const char *t, size_t tlen,
                      int nul_terminated)
{
    char buf[COMP_MAX + 1];

    switch (c->kind) {
    case COMP_LITERAL:
        return tlen == c->len && memcmp(t, c->s, tlen) == 0;
    case COMP_SUFFIX:
        return tlen >= c->len && memcmp(t + tlen - c->len, c->s, c->len) == 0;
    case COMP_ANY:
        return 1;
    case COMP_GLOB:
        if (!nul_terminated) {
            if (tlen > COMP_MAX)
                return 0;
            memcpy(buf, t, tlen);
            buf[tlen] = '\0';
            t = buf;
        }
        return fnmatch(c->s, t, 0) == 0;
    default:
        return 0;
    }
}

/* Index of the first non-'/' at or after i. */
static size_t skip_slashes(const char *p, size_t i, size_t n)
{
    while (i < n && p[i] == '/')
        i++;
    return i;
}

/* Index of the '/' ending the component that starts at i (or n). */
static size_t comp_end(const char *p, size_t i, size_t n)
{
    const char *e = memchr(p + i, '/', n - i);

    return e == NULL ? n : (size_t)(e - p);
}

/*
 * Match a path pattern against path[0..n): components in order, "**"
 * taking zero or more.  When the last "**" met cannot be made to work by
 * taking one more component, no earlier one can either, so one backtrack
 * point is enough (as in the classic wildcard matcher).
 */
static int path_match(const struct pattern *p, const char *path, size_t n,
                      int is_dir)
{
    size_t pi = 0, t, e, star_pi = SIZE_MAX, star_t = 0;

    t = skip_slashes(path, 0, n);
    for (;;) {
        if (pi == p->ncomps) {
            /* A leading part matched: the path lies inside it. */
            if (t < n)
                return 1;
            if (!p->dir_only || is_dir)
                return 1;
        } else if (p->comps[pi].kind == COMP_STARSTAR) {
            star_pi = ++pi;
            star_t = t;
            continue;
        } else if (t < n) {
            e = comp_end(path, t, n);
            if (comp_match(&p->comps[pi], path + t, e - t, 0)) {
                pi++;
                t = skip_slashes(path, e, n);
                continue;
            }
        }
        /* Let the last "**" take one more component, and retry. */
        if (star_pi == SIZE_MAX || star_t >= n)
            return 0;
        star_t = skip_slashes(path, comp_end(path, star_t, n), n);
        t = star_t;
        pi = star_pi;
    }
}

static int plist_push(struct plist *l, const struct pattern *p)
{
    struct pattern *v;
    size_t ncap;

    if (l->n == l->cap) {
        ncap = l->cap ? l->cap * 2 : 8;
        if ((v = realloc(l->v, ncap * sizeof(*v))) == NULL)
            return CAIRN_ENOMEM;
        l->v = v;
        l->cap = ncap;
    }
    l->v[l->n++] = *p;
    return 0;
}

static void plist_free(struct plist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i].text);
        free(l->v[i].comps);
    }
    free(l->v);
}

/* Make an empty set of patterns. */
int cairn_exclude_new(struct cairn_exclude **out)
{
    struct cairn_exclude *x;

    if ((x = calloc(1, sizeof(*x))) == NULL)
        return CAIRN_ENOMEM;
    *out = x;
    return 0;
}

/* Add one pattern. */
int cairn_exclude_add(struct cairn_exclude *x, const char *pattern)
{
    struct pattern p;
    size_t len, i, ncomps;
    char *s;
    int rc;

    memset(&p, 0, sizeof(p));
    if (pattern == NULL || (len = strlen(pattern)) == 0) {
        rc = CAIRN_EINVAL;
        goto err0;
    }
    if ((p.text = strdup(pattern)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err0;
    }
    /* A trailing '/' means directories only. */
    while (len > 0 && p.text[len - 1] == '/') {
        p.dir_only = 1;
        p.text[--len] = '\0';
    }
    if (len == 0) {
        rc = CAIRN_EINVAL;
        goto err1;
    }

    if (strchr(p.text, '/') == NULL) {
        if ((p.comps = malloc(sizeof(*p.comps))) == NULL) {
            rc = CAIRN_ENOMEM;
            goto err1;
        }
        classify(&p.comps[0], p.text, 0);
        p.ncomps = 1;
        if ((rc = plist_push(&x->names, &p)) != 0)
            goto err2;
        goto done;
    }

    /* At most one component per byte, plus a leading "**". */
    if ((p.comps = malloc((len + 1) * sizeof(*p.comps))) == NULL) {
        rc = CAIRN_ENOMEM;
        goto err1;
    }
    ncomps = 0;
    if (p.text[0] != '/') {
        /* Relative: may match at any depth. */
        classify(&p.comps[ncomps++], "**", 1);
    }
    for (i = 0; i < len; i++)
        if (p.text[i] == '/')
            p.text[i] = '\0';
    for (i = 0; i < len; i++) {
        s = p.text + i;
        if (*s == '\0')
            continue;
        i += strlen(s);
        if (strcmp(s, ".") == 0)
            continue;
        classify(&p.comps[ncomps], s, 1);
        /* "**" next to "**" adds nothing but backtracking. */
        if (p.comps[ncomps].kind == COMP_STARSTAR && ncomps > 0 &&
            p.comps[ncomps - 1].kind == COMP_STARSTAR)
            continue;
        ncomps++;
    }
    p.ncomps = ncomps;
    if ((rc = plist_push(&x->paths, &p)) != 0)
        goto err2;

done:
    /* Success! */
    return 0;

err2:
    free(p.comps);
err1:
    free(p.text);
err0:
    /* Failure! */
    return rc;
}

static int blank(const char *s)
{
    return s[strspn(s, " \t")] == '\0';
}

/* Add the patterns of a file, one per line. */
int cairn_exclude_add_file(struct cairn_exclude *x, const char *path)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if ((f = fopen(path, "re")) == NULL) {
        rc = cairn_err_from_errno(errno);
        goto err0;
    }
    for (;;) {
        errno = 0;
        if ((n = getline(&line, &cap, f)) < 0) {
            if (ferror(f)) {
                rc = errno == ENOMEM ? CAIRN_ENOMEM : CAIRN_EIO;
                goto err1;
            }
            break;
        }
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (strlen(line) != (size_t)n) {
            rc = CAIRN_ECORRUPT;
            goto err1;
        }
        if (line[0] == '#' || blank(line))
            continue;
        if ((rc = cairn_exclude_add(x, line)) != 0)
            goto err1;
    }
    free(line);
    fclose(f);

    /* Success! */
    return 0;

err1:
    free(line);
    fclose(f);
err0:
    /* Failure! */
    return rc;
}

/* Is this file excluded? */
int cairn_exclude_match(const struct cairn_exclude *x, const char *abs_path,
                        size_t path_len, const char *name, int is_dir)
{
    const struct pattern *p;
    size_t i, name_len;

    if (x->names.n > 0) {
        name_len = strlen(name);
        for (i = 0; i < x->names.n; i++) {
            p = &x->names.v[i];
            if (p->dir_only && !is_dir)
                continue;
            if (comp_match(&p->comps[0], name, name_len, 1))
                return 1;
        }
    }
    for (i = 0; i < x->paths.n; i++)
        if (path_match(&x->paths.v[i], abs_path, path_len, is_dir))
            return 1;
    return 0;
}

/* Free x.  NULL is fine. */
void cairn_exclude_free(struct cairn_exclude *x)
{
    if (x == NULL)
        return;
    plist_free(&x->names);
    plist_free(&x->paths);
    free(x);
}
