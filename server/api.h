/*
 * api.h - helpers shared by the API handlers (api_auth.c, api_org.c,
 * api_device.c, api_object.c).  Private to the server; nothing here is a
 * contract with other modules.
 */
#ifndef CAIRN_SRV_API_H
#define CAIRN_SRV_API_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

struct srv;
struct http_req;

/*
 * Parse an RFC 3339 time ("2026-11-26T10:00:00Z", "...T10:00:00.5+01:00")
 * into seconds since the epoch (fractions dropped).  0, or CAIRN_EINVAL.
 * In api_org.c.
 */
int api_time_parse(const char *text, int64_t *out);

/* Format t (seconds since the epoch) as "YYYY-MM-DDTHH:MM:SSZ". */
void api_time_format(int64_t t, char out[32]);

/* t as a JSON string, or JSON null when t is 0 ("never"). New reference. */
json_t *api_time_json(int64_t t);

/*
 * A user as the API shows it (never a secret): id, username, display,
 * role, department (name or null), disabled, locked, created.  New
 * reference, or NULL when out of memory.  In api_org.c.
 */
json_t *api_user_json(struct srv *s, const struct cat_user *u);

/*
 * Base64 (standard or URL alphabet, padding optional) into *out (malloc'ed,
 * *out_len bytes).  CAIRN_EINVAL on bad input, CAIRN_ERANGE if the result
 * would exceed max bytes.  In api_device.c.
 */
int api_b64_decode(const char *text, size_t max, uint8_t **out,
                   size_t *out_len);
/* Standard base64 with padding, as a new JSON string. */
json_t *api_b64_json(const uint8_t *buf, size_t len);

/*
 * Held around every read-modify-write of a device row (status reports,
 * snapshot uploads, re-categorisation), since cat_device_update writes
 * every field.  In api_device.c.
 */
extern pthread_mutex_t api_device_mutex;

/*
 * May the caller (a full session) restore device_id: an administrator any
 * device, a person their own personal devices?  0, or answers the refusal
 * (403, 404) itself and returns -1.  In api_device.c.
 */
int api_may_restore(struct http_req *r, const char *device_id);

/* Answer the error for a failed catalog call (404 for CAIRN_ENOENT, 409
 * for CAIRN_EEXIST, else 500). what names the thing.  In api_org.c. */
int api_respond_cat_error(struct http_req *r, int rc, const char *what);

#endif
