/*
 * fuzz_request.c - the JSON request bodies cairnd parses (docs/API.md).
 *
 * The input is a request body.  It goes through http_json_check (the
 * strictness check behind http_json_body: one JSON object, no duplicate
 * keys, only the route's keys) with the key list of every route that takes
 * a JSON body; what passes is dumped and checked again (same keys, equal
 * value: a round trip).  A refusal must come with a reason that is valid
 * UTF-8 (it is sent back to the client as a JSON string).
 *
 * Then the fields: the enrolment body is validated as enrol() does before
 * it needs the catalog (name, category, department, the base64 fields and
 * their sizes, the config, the escrow wrap, the owner's key file), the
 * status body as device_status() does, and every string value (and the
 * input itself, as a C string) goes through api_b64_decode, with a round
 * trip through api_b64_json, and text_valid.
 *
 * The field checks are static functions of server/api_device.c, which is
 * compiled into this target (so its symbols come from here and the copy in
 * srv_lib is not linked); the enrolment checks are interleaved with
 * catalog calls inside enrol(), so their order is restated here with the
 * same helpers and limits.
 */
#include "../server/api_device.c"

#include "fuzz.h"

/* The size of a field of the device row (the limits enrol() uses). */
#define DEV_FIELD(f) sizeof(((struct cat_device *)0)->f)

/* The allowed keys of every route with a JSON body (server/api_*.c). */
static const char *const k_login[] = {"username", "password", NULL};
static const char *const k_totp[] = {"code", "recovery_code", NULL};
static const char *const k_enrol[] = {
    "name",        "category",   "department", "archive_id", "config",
    "wrap_escrow", "wrap_owner", "replaces",   NULL};
static const char *const k_patch[] = {"category", "department", "owner",
                                      NULL};
static const char *const k_status[] = {"phase",      "files_selected",
                                       "bytes_selected", "files_todo",
                                       "bytes_todo", "errors", NULL};
static const char *const k_have[] = {"names", NULL};
static const char *const k_dept[] = {"name", "wave_start", NULL};
static const char *const k_wave[] = {"wave_start", NULL};
static const char *const k_user[] = {"username", "password", "department",
                                     "role", "display", NULL};
static const char *const k_pw[] = {"password", NULL};
static const char *const *const key_lists[] = {
    k_login, k_totp, k_enrol, k_patch, k_status, k_have,
    k_dept,  k_wave, k_user,  k_pw,    NULL,
};

static int allowed_has(const char *const *allowed, const char *key)
{
    size_t i;

    for (i = 0; allowed != NULL && allowed[i] != NULL; i++)
        if (strcmp(allowed[i], key) == 0)
            return 1;
    return 0;
}

/* A refusal's reason: non-empty, NUL-terminated, a valid JSON string. */
static void check_why(const char *why)
{
    json_t *j;

    if (why[0] == '\0')
        abort();
    if ((j = json_string(why)) == NULL)
        abort(); /* not UTF-8: http_respond_error would answer 500 */
    json_decref(j);
}

/* Base64 text: decode, encode, decode again gives the same bytes. */
static void b64_roundtrip(const char *text)
{
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    json_t *j;
    int rc;

    rc = api_b64_decode(text, WRAP_MAX, &a, &alen);
    if (rc != 0) {
        if (rc != CAIRN_EINVAL && rc != CAIRN_ERANGE && rc != CAIRN_ENOMEM)
            abort();
        return;
    }
    if (alen > WRAP_MAX || alen > strlen(text))
        abort();
    if ((j = api_b64_json(a, alen)) == NULL)
        goto out;
    if (strlen(json_string_value(j)) != (alen + 2) / 3 * 4)
        abort();
    if (api_b64_decode(json_string_value(j), WRAP_MAX, &b, &blen) != 0 ||
        blen != alen || (alen > 0 && memcmp(a, b, alen) != 0))
        abort();
    /* A maximum one byte short of the result is refused as too large. */
    if (alen > 0) {
        free(b);
        b = NULL;
        if (api_b64_decode(text, alen - 1, &b, &blen) != CAIRN_ERANGE)
            abort();
    }
    json_decref(j);
out:
    free(b);
    free(a);
}

static void text_check(const char *s)
{
    size_t i, len = strlen(s);

    if (!text_valid(s, 128))
        return;
    if (len == 0 || len >= 128)
        abort();
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

/* Every string in v (objects and arrays, recursively, bounded depth). */
static void strings_check(json_t *v, int depth)
{
    const char *key;
    json_t *x;
    size_t i;

    if (depth > 8)
        return;
    if (json_is_string(v)) {
        b64_roundtrip(json_string_value(v));
        text_check(json_string_value(v));
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, x) {
            strings_check(x, depth + 1);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            strings_check(x, depth + 1);
        }
    }
}

/* A base64 field as b64_field() takes it: absent or null is NULL. */
static int b64_get(json_t *body, const char *key, size_t max, uint8_t **out,
                   size_t *out_len)
{
    json_t *v = json_object_get(body, key);

    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) ||
        api_b64_decode(json_string_value(v), max, out, out_len) != 0)
        return -1;
    if (*out_len > max)
        abort();
    return 0;
}

/* enrol()'s checks of its body, in its order, as far as they go without
 * the catalog (a new archive, no device replaced). */
static void enrol_check(json_t *body)
{
    struct enrol e;
    struct cairn_config cfg;
    struct cairn_keyfile_info kinfo;
    json_t *jr;
    int personal;

    memset(&e, 0, sizeof(e));
    e.name = json_string_value(json_object_get(body, "name"));
    e.category = json_string_value(json_object_get(body, "category"));
    e.dept = json_string_value(json_object_get(body, "department"));
    jr = json_object_get(body, "replaces");
    if (jr != NULL && !json_is_null(jr) &&
        (e.replaces = json_string_value(jr)) == NULL)
        goto done;
    if (e.name == NULL || !text_valid(e.name, DEV_FIELD(name)))
        goto done;
    if (e.category == NULL || (strcmp(e.category, "personal") != 0 &&
                               strcmp(e.category, "shared") != 0))
        goto done;
    personal = strcmp(e.category, "personal") == 0;
    if (e.dept == NULL)
        goto done;
    if (b64_get(body, "archive_id", CAIRN_ID_LEN, &e.archive_id,
                &e.archive_id_len) != 0 ||
        b64_get(body, "config", CONFIG_MAX, &e.config, &e.config_len) != 0 ||
        b64_get(body, "wrap_escrow", WRAP_MAX, &e.wrap_escrow,
                &e.wrap_escrow_len) != 0 ||
        b64_get(body, "wrap_owner", WRAP_MAX, &e.wrap_owner,
                &e.wrap_owner_len) != 0)
        goto done;
    if (e.archive_id == NULL || e.archive_id_len != CAIRN_ID_LEN)
        goto done;
    if (e.config == NULL ||
        cairn_config_decode(e.config, e.config_len, NULL, &cfg) != 0 ||
        memcmp(cfg.archive_id, e.archive_id, CAIRN_ID_LEN) != 0)
        goto done;
    if (e.wrap_escrow == NULL || e.wrap_escrow_len < WRAP_ESCROW_MIN ||
        memcmp(e.wrap_escrow, "CRNX", 4) != 0)
        goto done;
    if (!personal && e.wrap_owner != NULL)
        goto done;
    if (personal &&
        (e.wrap_owner == NULL ||
         cairn_keyfile_info(e.wrap_owner, e.wrap_owner_len, &kinfo) != 0))
        goto done;
    /* Accepted: what enrol() would store fits the device row. */
    if (strlen(e.name) >= DEV_FIELD(name) ||
        strlen(e.category) >= DEV_FIELD(category))
        abort();
done:
    free(e.archive_id);
    free(e.config);
    free(e.wrap_escrow);
    free(e.wrap_owner);
}

/* device_status()'s checks of its body. */
static void status_check(json_t *body)
{
    static const char *const nums[] = {"files_selected", "bytes_selected",
                                       "files_todo", "bytes_todo", "errors"};
    const char *phase;
    json_t *j;
    int i;

    if ((j = json_object_get(body, "phase")) != NULL) {
        if ((phase = json_string_value(j)) == NULL ||
            !text_valid(phase, DEV_FIELD(phase)))
            return;
    }
    for (i = 0; i < 5; i++) {
        if ((j = json_object_get(body, nums[i])) == NULL)
            continue;
        if (!json_is_integer(j) || json_integer_value(j) < 0)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256], *text, *dumped;
    json_t *j, *j2;
    const char *key;
    json_t *v;
    size_t i;
    int rc;

    for (i = 0; key_lists[i] != NULL; i++) {
        memset(why, 0, sizeof(why));
        rc = http_json_check((const char *)data, size, key_lists[i], &j, why,
                             sizeof(why));
        if (rc != 0) {
            if (rc != CAIRN_EINVAL)
                abort();
            check_why(why);
            continue;
        }
        if (!json_is_object(j))
            abort();
        json_object_foreach(j, key, v) {
            if (!allowed_has(key_lists[i], key))
                abort();
        }
        /* Round trip: what passed, dumped, passes again and is equal. */
        if ((dumped = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) != NULL) {
            if (http_json_check(dumped, strlen(dumped), key_lists[i], &j2,
                                why, sizeof(why)) != 0 ||
                !json_equal(j, j2))
                abort();
            json_decref(j2);
            free(dumped);
        }
        if (key_lists[i] == k_enrol)
            enrol_check(j);
        else if (key_lists[i] == k_status)
            status_check(j);
        json_decref(j);
    }
    /* Every string of any JSON value. */
    if ((j = json_loadb((const char *)data, size,
                        JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL)) !=
        NULL) {
        strings_check(j, 0);
        json_decref(j);
    }
    /* No allowed keys: only {} passes. */
    if (http_json_check((const char *)data, size, NULL, &j, why,
                        sizeof(why)) == 0) {
        if (json_object_size(j) != 0)
            abort();
        json_decref(j);
    } else {
        check_why(why);
    }
    /* A tiny reason buffer still ends in a NUL. */
    if (http_json_check((const char *)data, size, k_enrol, &j, why, 5) == 0)
        json_decref(j);
    else if (strlen(why) > 4)
        abort();

    /* The input itself as a field value. */
    if ((text = malloc(size + 1)) == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    b64_roundtrip(text);
    text_check(text);
    free(text);
    return 0;
}
