/*
 * watch.c - the watcher's common part: options and roots, the choice of
 * backend, reporting (merging repeats), the list of unwatched subtrees.
 * The kernel interfaces are in watch_fanotify.c and watch_inotify.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn/err.h"
#include "watch_int.h"

int watch_path_set(struct watch_path *p, const char *s, size_t n)
{
    p->len = 0;
    if (p->cap == 0) {
        if ((p->p = malloc(256)) == NULL)
            return CAIRN_ENOMEM;
        p->cap = 256;
    }
    p->p[0] = '\0';
    return watch_path_append(p, s, n);
}

/* Append "/" (unless p ends with one or is empty) and name[0..n). */
int watch_path_append(struct watch_path *p, const char *name, size_t n)
{
    size_t need, sep;
    char *np;
    size_t ncap;

    sep = (p->len > 0 && p->p[p->len - 1] != '/') ? 1 : 0;
    if (n > WATCH_PATH_MAX || p->len + sep + n >= WATCH_PATH_MAX)
        return CAIRN_ERANGE;
    need = p->len + sep + n + 1;
    if (need > p->cap) {
        ncap = p->cap ? p->cap : 256;
        while (ncap < need)
            ncap *= 2;
        if ((np = realloc(p->p, ncap)) == NULL)
            return CAIRN_ENOMEM;
        p->p = np;
        p->cap = ncap;
    }
    if (sep)
        p->p[p->len++] = '/';
    memcpy(p->p + p->len, name, n);
    p->len += n;
    p->p[p->len] = '\0';
    return 0;
}

void watch_path_free(struct watch_path *p)
{
    free(p->p);
    p->p = NULL;
    p->len = p->cap = 0;
}

int watch_is_under(const char *path, const char *top, size_t toplen)
{
    if (toplen == 1 && top[0] == '/')
        return path[0] == '/';
    return strncmp(path, top, toplen) == 0 &&
           (path[toplen] == '\0' || path[toplen] == '/');
}

long watch_root_of(const struct agent_watch *w, const char *path)
{
    long best = -1;
    size_t i;

    for (i = 0; i < w->nroots; i++)
        if (watch_is_under(path, w->roots[i], w->rootlen[i]) &&
            (best < 0 || w->rootlen[i] > w->rootlen[best]))
            best = (long)i;
    return best;
}

int watch_is_root(const struct agent_watch *w, const char *path)
{
    size_t i;

    for (i = 0; i < w->nroots; i++)
        if (strcmp(path, w->roots[i]) == 0)
            return 1;
    return 0;
}

int watch_is_excluded(const struct agent_watch *w, const char *path,
                      int is_dir)
{
    if (w->excluded == NULL || watch_is_root(w, path))
        return 0;
    return w->excluded(w->xarg, path, is_dir) != 0;
}

void watch_unwatched_drop(struct agent_watch *w, const char *path)
{
    size_t i, len = strlen(path);

    for (i = 0; i < w->nunw;) {
        if (watch_is_under(w->unw[i], path, len)) {
            free(w->unw[i]);
            w->unw[i] = w->unw[--w->nunw];
        } else {
            i++;
        }
    }
}

int watch_unwatched_add(struct agent_watch *w, const char *path)
{
    size_t i;
    char **nu;
    char *s;

    for (i = 0; i < w->nunw; i++)
        if (watch_is_under(path, w->unw[i], strlen(w->unw[i])))
            return 0;
    watch_unwatched_drop(w, path);
    if (w->nunw == w->capunw) {
        size_t ncap = w->capunw ? w->capunw * 2 : 8;
        if ((nu = realloc(w->unw, ncap * sizeof(*nu))) == NULL)
            return CAIRN_ENOMEM;
        w->unw = nu;
        w->capunw = ncap;
    }
    if ((s = strdup(path)) == NULL)
        return CAIRN_ENOMEM;
    w->unw[w->nunw++] = s;
    return 0;
}

int watch_report(struct agent_watch *w, const char *path, unsigned flags)
{
    size_t n;
    int r;

    if (w->fnret != 0) {
        w->lost = 1;
        return w->fnret;
    }
    if (flags & AGENT_WATCH_REMOVED)
        watch_unwatched_drop(w, path);
    n = strlen(path);
    if (w->havelast && w->lastflags == flags && w->last.len == n &&
        memcmp(w->last.p, path, n) == 0)
        return 0;
    /* If the copy fails, only the merging of repeats is lost. */
    w->havelast = watch_path_set(&w->last, path, n) == 0;
    w->lastflags = flags;
    if (w->fn == NULL)
        return 0; /* inside agent_watch_open: nobody to tell yet */
    if ((r = w->fn(w->fnarg, path, flags)) != 0) {
        w->fnret = r;
        w->lost = 1;
    }
    return r;
}

int watch_report_roots(struct agent_watch *w)
{
    size_t i;
    int r;

    for (i = 0; i < w->nroots; i++)
        if ((r = watch_report(w, w->roots[i], AGENT_WATCH_RESCAN)) != 0)
            return r;
    return 0;
}

/* Copy root into a fresh string: absolute, no empty, "." or ".."
 * components, no trailing slash (but "/" stays "/").  NULL with *err set
 * on failure. */
static char *root_normalise(const char *root, int *err)
{
    struct watch_path p = {0};
    const char *s, *e;

    if (root == NULL || root[0] != '/') {
        *err = CAIRN_EINVAL;
        return NULL;
    }
    if ((*err = watch_path_set(&p, "/", 1)) != 0)
        return NULL;
    for (s = root; *s != '\0'; s = e) {
        while (*s == '/')
            s++;
        for (e = s; *e != '\0' && *e != '/'; e++)
            ;
        if (e == s)
            break;
        if ((e - s == 1 && s[0] == '.') ||
            (e - s == 2 && s[0] == '.' && s[1] == '.')) {
            *err = CAIRN_EINVAL;
            goto err0;
        }
        if ((*err = watch_path_append(&p, s, (size_t)(e - s))) != 0)
            goto err0;
    }
    return p.p;

err0:
    watch_path_free(&p);
    return NULL;
}

static void roots_free(struct agent_watch *w)
{
    size_t i;

    for (i = 0; i < w->nroots; i++)
        free(w->roots[i]);
    free(w->roots);
    free(w->rootlen);
}

/*
 * Start watching opts->roots with the backend opts->mode asks for.  See
 * watch.h.
 */
int agent_watch_open(const struct agent_watch_opts *opts,
                     struct agent_watch **out_w)
{
    struct agent_watch *w;
    size_t i, j;
    char *s;
    int r;

    if (opts == NULL || opts->roots == NULL || opts->nroots == 0 ||
        opts->mode < AGENT_WATCH_AUTO || opts->mode > AGENT_WATCH_FANOTIFY)
        return CAIRN_EINVAL;
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err0;
    }
    w->fd = -1;
    w->excluded = opts->excluded;
    w->xarg = opts->arg;
    w->max_watches = opts->max_watches;
    if ((w->roots = calloc(opts->nroots, sizeof(*w->roots))) == NULL ||
        (w->rootlen = calloc(opts->nroots, sizeof(*w->rootlen))) == NULL) {
        r = CAIRN_ENOMEM;
        goto err1;
    }
    for (i = 0; i < opts->nroots; i++) {
        if ((s = root_normalise(opts->roots[i], &r)) == NULL)
            goto err1;
        for (j = 0; j < w->nroots; j++)
            if (strcmp(w->roots[j], s) == 0)
                break;
        if (j < w->nroots) {
            free(s);
            continue;
        }
        w->rootlen[w->nroots] = strlen(s);
        w->roots[w->nroots++] = s;
    }

    r = CAIRN_EPERM;
    if (opts->mode != AGENT_WATCH_INOTIFY) {
        r = watch_fanotify_open(w);
        if (r != 0 && opts->mode == AGENT_WATCH_FANOTIFY)
            goto err1;
        /* A partial attempt may have listed unwatched roots. */
        if (r != 0)
            while (w->nunw > 0)
                free(w->unw[--w->nunw]);
    }
    if (r != 0 && (r = watch_inotify_open(w)) != 0)
        goto err1;

    *out_w = w;
    return 0;

err1:
    agent_watch_free(w);
err0:
    return r;
}

/*
 * The descriptor to poll.  See watch.h.
 */
int agent_watch_fd(const struct agent_watch *w)
{
    return w->fd;
}

/*
 * Drain pending events into fn.  See watch.h.
 */
int agent_watch_read(struct agent_watch *w, agent_watch_fn fn, void *arg)
{
    int r;

    w->fn = fn;
    w->fnarg = arg;
    w->fnret = 0;
    w->havelast = 0;
    if (w->lost) {
        w->lost = 0;
        if ((r = w->ops->resync(w)) != 0)
            goto err0;
        if ((r = watch_report_roots(w)) != 0)
            goto err0;
    }
    if ((r = w->ops->read(w)) != 0)
        goto err0;
    if (w->fnret != 0) {
        r = w->fnret;
        goto err0;
    }
    return 0;

err0:
    w->lost = 1;
    return r;
}

/*
 * List the subtrees not covered.  See watch.h.
 */
int agent_watch_unwatched(const struct agent_watch *w, agent_watch_fn fn,
                          void *arg)
{
    size_t i;
    int r;

    for (i = 0; i < w->nunw; i++)
        if ((r = fn(arg, w->unw[i], AGENT_WATCH_RESCAN)) != 0)
            return r;
    return 0;
}

/*
 * Watch what can be watched again.  See watch.h.
 */
int agent_watch_retry(struct agent_watch *w)
{
    return w->ops->retry != NULL ? w->ops->retry(w) : 0;
}

/*
 * The backend's name.  See watch.h.
 */
const char *agent_watch_mode(const struct agent_watch *w)
{
    return w->ops->name;
}

/*
 * Stop and free.  See watch.h.
 */
void agent_watch_free(struct agent_watch *w)
{
    size_t i;

    if (w == NULL)
        return;
    if (w->ops != NULL)
        w->ops->free(w);
    for (i = 0; i < w->nunw; i++)
        free(w->unw[i]);
    free(w->unw);
    roots_free(w);
    watch_path_free(&w->last);
    watch_path_free(&w->path);
    free(w);
}
