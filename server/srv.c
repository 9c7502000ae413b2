/*
 * srv.c - small services shared by cairnd's modules: device stores, the
 * clock, the audit log.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cairn/err.h"
#include "srv.h"

/*
 * Open the directory store of device_id (objects/<id> under the state
 * directory); with create, make it when missing (an existing store is
 * opened).  device_id must be 32 lowercase hex digits (CAIRN_EINVAL).
 * *out freed with cairn_store_free.
 */
int srv_device_store(struct srv *s, const char *device_id, int create,
                     struct cairn_store **out)
{
    char path[PATH_MAX];
    size_t i;
    int rc;

    if (strlen(device_id) != 32)
        return CAIRN_EINVAL;
    for (i = 0; i < 32; i++)
        if (!((device_id[i] >= '0' && device_id[i] <= '9') ||
              (device_id[i] >= 'a' && device_id[i] <= 'f')))
            return CAIRN_EINVAL;
    if (snprintf(path, sizeof(path), "%s/%s", s->objects_dir, device_id) >=
        (int)sizeof(path))
        return CAIRN_ERANGE;
    rc = cairn_store_dir_open(path, 0, out);
    if (rc == CAIRN_ENOENT && create) {
        if (mkdir(s->objects_dir, 0700) != 0 && errno != EEXIST)
            return cairn_err_from_errno(errno);
        rc = cairn_store_dir_open(path, 1, out);
        /* Another request made it first. */
        if (rc == CAIRN_EEXIST)
            rc = cairn_store_dir_open(path, 0, out);
    }
    return rc;
}

/* Now, in seconds since the epoch. */
int64_t srv_now(void)
{
    return (int64_t)time(NULL);
}

/*
 * Append an audit record: who (user_id, or device_id), from where, what
 * (action, target) and detail_fmt's text (NULL: none), stored as a JSON
 * object {"text": ...} unless the text already is a JSON object.  A
 * failure to write is logged (the act is not undone).
 */
void srv_audit(struct srv *s, int64_t user_id, const char *device_id,
               const char *addr, const char *action, const char *target,
               const char *detail_fmt, ...)
{
    struct cat_audit a;
    char text[1024];
    char *detail = NULL;
    json_t *j = NULL;
    va_list ap;
    int rc;

    memset(&a, 0, sizeof(a));
    a.time = srv_now();
    a.user_id = user_id;
    snprintf(a.device_id, sizeof(a.device_id), "%s", device_id ? device_id : "");
    snprintf(a.addr, sizeof(a.addr), "%s", addr ? addr : "");
    snprintf(a.action, sizeof(a.action), "%s", action ? action : "");
    snprintf(a.target, sizeof(a.target), "%s", target ? target : "");
    if (detail_fmt != NULL) {
        va_start(ap, detail_fmt);
        vsnprintf(text, sizeof(text), detail_fmt, ap);
        va_end(ap);
        if ((j = json_loads(text, JSON_REJECT_DUPLICATES, NULL)) != NULL &&
            json_is_object(j))
            detail = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        else {
            json_decref(j);
            j = json_pack("{s:s}", "text", text);
            detail = j ? json_dumps(j, JSON_COMPACT) : NULL;
        }
        json_decref(j);
    }
    a.detail = detail;
    if ((rc = cat_audit_add(s->cat, &a)) != 0)
        srv_log(SRV_LOG_ERROR, "cannot write the audit record %s %s: %s",
                a.action, a.target, cairn_strerror(rc));
    free(detail);
}
