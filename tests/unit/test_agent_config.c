/*
 * test_agent_config.c - cairn-agent's configuration (agent/config.c):
 * defaults, parsing every key, strictness (unknown keys, wrong types and
 * bounds, duplicates, malformed and truncated JSON, each error naming the
 * key), the default exclude set, the JSON round trip, merging with the
 * server's settings (locked, unlocked, locked without a value, pushed
 * keys the agent refuses) and the next verification time (before and
 * after the hour, missed while asleep, across days, in another zone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/err.h"
#include "config.h"
#include "settings_keys.h"

static int parse(const char *text, struct agent_config *out, char *why,
                 size_t whylen)
{
    return agent_config_parse(text, strlen(text), out, why, whylen);
}

static void test_defaults(void **state)
{
    struct agent_config c;
    char why[256];

    (void)state;
    assert_int_equal(parse("{}", &c, why, sizeof(why)), 0);
    assert_int_equal(c.npaths, 0);
    assert_int_equal(c.nexclude, 0);
    assert_int_equal(c.default_excludes, 1);
    assert_int_equal(c.exclude_caches, 1);
    assert_int_equal(c.frequency, 900);
    assert_int_equal(c.settle, 2);
    assert_int_equal(c.verify_hour, 3);
    assert_int_equal(c.verify_min, 0);
    assert_int_equal(c.bandwidth_limit, 0);
    assert_int_equal(c.cpu_share, 25);
    assert_int_equal(c.pause_until, 0);
    assert_int_equal(c.set, 0);
    agent_config_clear(&c);
    agent_config_clear(NULL);
}

static void test_parse_all(void **state)
{
    static const char text[] =
        "{\"paths\": [\"/home/ana\", \"/srv/data\"],"
        " \"exclude\": [\"*.iso\", \"/home/ana/scratch/\"],"
        " \"default_excludes\": false, \"exclude_caches\": false,"
        " \"frequency\": 0, \"settle\": 1, \"verify_at\": \"22:45\","
        " \"bandwidth_limit\": 1048576, \"cpu_share\": 50,"
        " \"pause_until\": 1767225600}";
    struct agent_config c, c2;
    char why[256], *dump;
    json_t *j;

    (void)state;
    assert_int_equal(parse(text, &c, why, sizeof(why)), 0);
    assert_int_equal(c.npaths, 2);
    assert_string_equal(c.paths[1], "/srv/data");
    assert_int_equal(c.nexclude, 2);
    assert_string_equal(c.exclude[0], "*.iso");
    assert_int_equal(c.default_excludes, 0);
    assert_int_equal(c.exclude_caches, 0);
    assert_int_equal(c.frequency, 0);
    assert_int_equal(c.settle, 1);
    assert_int_equal(c.verify_hour, 22);
    assert_int_equal(c.verify_min, 45);
    assert_int_equal(c.bandwidth_limit, 1048576);
    assert_int_equal(c.cpu_share, 50);
    assert_int_equal(c.pause_until, 1767225600);
    assert_int_equal(c.set, 0x3ff);

    /* Round trip through JSON. */
    j = agent_config_to_json(&c);
    assert_non_null(j);
    dump = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_int_equal(parse(dump, &c2, why, sizeof(why)), 0);
    free(dump);
    assert_int_equal(c2.npaths, 2);
    assert_string_equal(c2.paths[0], "/home/ana");
    assert_string_equal(c2.exclude[1], "/home/ana/scratch/");
    assert_int_equal(c2.verify_hour, 22);
    assert_int_equal(c2.verify_min, 45);
    assert_int_equal(c2.bandwidth_limit, c.bandwidth_limit);
    assert_int_equal(c2.pause_until, c.pause_until);
    assert_int_equal(c2.default_excludes, 0);
    agent_config_clear(&c2);
    agent_config_clear(&c);
}

/* text is refused, and the reason mentions want. */
static void refused(const char *text, const char *want)
{
    struct agent_config c;
    char why[256];

    why[0] = '\0';
    assert_int_equal(parse(text, &c, why, sizeof(why)), CAIRN_EINVAL);
    if (strstr(why, want) == NULL)
        fail_msg("%s: reason \"%s\" does not mention \"%s\"", text, why,
                 want);
    /* Left with the defaults, nothing to leak. */
    assert_null(c.paths);
    assert_int_equal(c.frequency, 900);
}

static void test_strict(void **state)
{
    (void)state;
    refused("{\"frequncy\": 60}", "frequncy");
    refused("{\"frequency\": \"60\"}", "frequency");
    refused("{\"frequency\": -1}", "frequency");
    refused("{\"frequency\": 1.5}", "frequency");
    refused("{\"settle\": 3601}", "settle");
    refused("{\"cpu_share\": 0}", "cpu_share");
    refused("{\"cpu_share\": 101}", "cpu_share");
    refused("{\"bandwidth_limit\": null}", "bandwidth_limit");
    refused("{\"default_excludes\": 0}", "default_excludes");
    refused("{\"exclude_caches\": \"yes\"}", "exclude_caches");
    refused("{\"verify_at\": \"3:00\"}", "verify_at");
    refused("{\"verify_at\": \"24:00\"}", "verify_at");
    refused("{\"verify_at\": \"03:60\"}", "verify_at");
    refused("{\"verify_at\": 300}", "verify_at");
    refused("{\"paths\": \"/home\"}", "paths");
    refused("{\"paths\": [\"home\"]}", "paths[0]");
    refused("{\"paths\": [\"/a\", 3]}", "paths[1]");
    refused("{\"paths\": [\"/a\\nb\"]}", "paths[0]");
    refused("{\"exclude\": [\"\"]}", "exclude[0]");
    refused("{\"exclude\": [\"//\"]}", "exclude[0]");
    refused("{\"pause_until\": -5}", "pause_until");
    /* Paths with NUL inside are refused, not truncated. */
    refused("{\"paths\": [\"/a\\u0000b\"]}", "JSON");
    refused("{\"frequency\": 60, \"frequency\": 70}", "JSON");
    refused("[]", "object");
    refused("{\"frequency\": 60", "JSON");
    refused("", "JSON");
}

static void test_truncations(void **state)
{
    static const char text[] =
        "{\"paths\": [\"/home/ana\"], \"exclude\": [\"*.iso\"], "
        "\"frequency\": 60, \"verify_at\": \"04:30\"}";
    struct agent_config c;
    char why[256];
    size_t n;

    (void)state;
    /* Every proper prefix is an error, never a crash or a partial load. */
    for (n = 0; n < sizeof(text) - 1; n++) {
        assert_int_equal(agent_config_parse(text, n, &c, why, sizeof(why)),
                         CAIRN_EINVAL);
        assert_null(c.paths);
    }
    assert_int_equal(agent_config_parse(text, n, &c, why, sizeof(why)), 0);
    agent_config_clear(&c);
}

static int collect(void *arg, const char *p)
{
    json_t *a = arg;

    json_array_append_new(a, json_string(p));
    return 0;
}

static int has(json_t *a, const char *p)
{
    size_t i;

    for (i = 0; i < json_array_size(a); i++)
        if (strcmp(json_string_value(json_array_get(a, i)), p) == 0)
            return 1;
    return 0;
}

static void test_default_excludes(void **state)
{
    static const char *const want[] = {
        ".cache/", "Cache/", "Library/Caches/", "*.tmp", "*.swp", "~$*",
        ".~lock.*", "*.vmdk", "*.vdi", "*.qcow2", "*.vhd", "*.vhdx",
        "Dropbox/", "OneDrive/", "OneDrive - */", "Google Drive/",
        ".dropbox.cache/", "iCloud Drive/", NULL};
    struct agent_config c;
    char why[256];
    json_t *a;
    size_t i, ndef = 0;

    (void)state;
    for (i = 0; want[i] != NULL; i++) {
        a = json_array();
        assert_int_equal(parse("{\"exclude\": [\"*.iso\"]}", &c, why,
                               sizeof(why)),
                         0);
        assert_int_equal(agent_config_patterns(&c, collect, a), 0);
        if (!has(a, want[i]))
            fail_msg("default exclude %s is missing", want[i]);
        assert_true(has(a, "*.iso"));
        json_decref(a);
        agent_config_clear(&c);
    }
    for (i = 0; agent_default_excludes[i] != NULL; i++)
        ndef++;
    /* "default_excludes": false leaves only the file's own. */
    a = json_array();
    assert_int_equal(parse("{\"default_excludes\": false, \"exclude\": "
                           "[\"*.iso\"]}",
                           &c, why, sizeof(why)),
                     0);
    assert_int_equal(agent_config_patterns(&c, collect, a), 0);
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
    agent_config_clear(&c);
    /* Each default is a pattern the agent itself accepts. */
    for (i = 0; i < ndef; i++)
        assert_true(agent_setting_entry_ok(agent_default_excludes[i],
                                           AGENT_SETTING_PATTERNS));
}

static json_t *server(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    assert_non_null(j);
    return j;
}

/* An unlocked server value is a default the file may override. */
static void test_merge_unlocked(void **state)
{
    struct agent_config local, out;
    char why[256];
    json_t *s;

    (void)state;
    assert_int_equal(parse("{\"frequency\": 60, \"paths\": [\"/home/ana\"]}",
                           &local, why, sizeof(why)),
                     0);
    s = server("{\"settings\": {\"frequency\": 3600, \"cpu_share\": 10, "
               "\"paths\": [\"/home\"]}, \"locked\": []}");
    assert_int_equal(agent_config_merge(&local, s, &out, why, sizeof(why)),
                     0);
    assert_int_equal(out.frequency, 60);      /* the file's */
    assert_int_equal(out.cpu_share, 10);      /* the server's default */
    assert_int_equal(out.settle, 2);          /* nobody's: the default */
    assert_int_equal(out.npaths, 1);
    assert_string_equal(out.paths[0], "/home/ana");
    assert_int_equal(out.locked, 0);
    agent_config_clear(&out);
    /* No server settings at all: the local file as it is. */
    assert_int_equal(agent_config_merge(&local, NULL, &out, why, sizeof(why)),
                     0);
    assert_int_equal(out.frequency, 60);
    assert_string_equal(out.paths[0], "/home/ana");
    agent_config_clear(&out);
    json_decref(s);
    agent_config_clear(&local);
}

/* A locked server value overrides the file. */
static void test_merge_locked(void **state)
{
    struct agent_config local, out;
    char why[256];
    json_t *s;

    (void)state;
    assert_int_equal(parse("{\"frequency\": 60, \"default_excludes\": false, "
                           "\"exclude\": [\"*.iso\"], \"cpu_share\": 90, "
                           "\"pause_until\": 42}",
                           &local, why, sizeof(why)),
                     0);
    s = server("{\"device_id\": \"x\", \"settings\": {\"frequency\": 3600, "
               "\"default_excludes\": true, \"exclude\": [\"*.mp4\"]}, "
               "\"locked\": [\"frequency\", \"default_excludes\", "
               "\"cpu_share\"]}");
    assert_int_equal(agent_config_merge(&local, s, &out, why, sizeof(why)),
                     0);
    assert_int_equal(out.frequency, 3600);
    assert_int_equal(out.default_excludes, 1);
    /* Unlocked: the file's patterns win over the server's. */
    assert_int_equal(out.nexclude, 1);
    assert_string_equal(out.exclude[0], "*.iso");
    /* Locked without a server value: the default, not the file's 90. */
    assert_int_equal(out.cpu_share, 25);
    /* Never pushed: the file's own. */
    assert_int_equal(out.pause_until, 42);
    assert_int_equal(out.locked, AGENT_CFG_FREQUENCY |
                                     AGENT_CFG_DEFAULT_EXCLUDES |
                                     AGENT_CFG_CPU_SHARE);
    agent_config_clear(&out);
    json_decref(s);
    agent_config_clear(&local);
}

static void merge_refused(const char *text, const char *want)
{
    struct agent_config local, out;
    char why[256];
    json_t *s = server(text);

    agent_config_defaults(&local);
    why[0] = '\0';
    assert_int_equal(agent_config_merge(&local, s, &out, why, sizeof(why)),
                     CAIRN_EINVAL);
    if (strstr(why, want) == NULL)
        fail_msg("%s: reason \"%s\" does not mention \"%s\"", text, why,
                 want);
    assert_null(out.paths);
    json_decref(s);
}

static void test_merge_bad_server(void **state)
{
    (void)state;
    merge_refused("{\"settings\": {\"colour\": 1}}", "colour");
    merge_refused("{\"settings\": {\"frequency\": -5}}", "frequency");
    merge_refused("{\"settings\": {\"pause_until\": 5}}", "pause_until");
    merge_refused("{\"settings\": {\"paths\": [\"/a\", \"b\"]}}", "paths[1]");
    merge_refused("{\"settings\": [], \"locked\": []}", "settings");
    merge_refused("{\"settings\": {}, \"locked\": {}}", "locked");
    merge_refused("{\"settings\": {}, \"locked\": [\"colour\"]}",
                  "an unknown key (colour)");
    merge_refused("{\"settings\": {}, \"locked\": [\"pause_until\"]}",
                  "a computer's own key (pause_until)");
    merge_refused("{\"settings\": {}, \"locked\": [7]}", "non-string");
    merge_refused("[1]", "object");
}

/* Local time t on the given day. */
static time_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

static void verify_cases(void)
{
    struct agent_config c;
    time_t now;

    agent_config_defaults(&c); /* 03:00 */
    /* 10:00; last run today at 03:05: next is tomorrow 03:00. */
    now = at(2026, 3, 10, 10, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 10, 3, 5), now),
                     at(2026, 3, 11, 3, 0));
    /* 02:00; last run yesterday 03:01: next is today 03:00. */
    now = at(2026, 3, 10, 2, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 9, 3, 1), now),
                     at(2026, 3, 10, 3, 0));
    /* Exactly 03:00, last run yesterday: due now. */
    now = at(2026, 3, 10, 3, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 9, 3, 0), now), now);
    /* Asleep over 03:00 (last run yesterday, now 08:00): due now. */
    now = at(2026, 3, 10, 8, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 9, 3, 2), now), now);
    /* Off for a week: due now. */
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 2, 3, 2), now), now);
    /* Never run: due now. */
    assert_int_equal(agent_next_verify(&c, 0, now), now);
    /* 02:00, last run two days ago (missed yesterday's): due now. */
    now = at(2026, 3, 10, 2, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 8, 3, 0), now), now);
    /* Another hour, and across a month's end. */
    c.verify_hour = 22;
    c.verify_min = 30;
    now = at(2026, 3, 31, 23, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 31, 22, 31), now),
                     at(2026, 4, 1, 22, 30));
    now = at(2026, 3, 31, 22, 29);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 30, 22, 31), now),
                     at(2026, 3, 31, 22, 30));
}

static void test_next_verify(void **state)
{
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    struct agent_config c;
    time_t now;

    (void)state;
    setenv("TZ", "UTC0", 1);
    tzset();
    verify_cases();
    /* Known answer in UTC: 2026-03-10T10:00:00Z -> 2026-03-11T03:00:00Z. */
    agent_config_defaults(&c);
    now = (time_t)1773136800;
    assert_int_equal(agent_next_verify(&c, now - 3600, now),
                     (time_t)1773198000);
    /* A zone with summer time (POSIX rule, no tzdata needed): the
     * verification hour is local, on both sides of the change. */
    setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    tzset();
    verify_cases();
    /* Across the spring change (29 March 2026): 03:00 local each day. */
    c.verify_hour = 3;
    c.verify_min = 0;
    now = at(2026, 3, 28, 12, 0);
    assert_int_equal(agent_next_verify(&c, at(2026, 3, 28, 3, 1), now),
                     at(2026, 3, 29, 3, 0));
    assert_int_equal(at(2026, 3, 29, 3, 0) - at(2026, 3, 28, 3, 0), 82800);
    setenv("TZ", "UTC-10", 1); /* far east */
    tzset();
    verify_cases();
    if (old != NULL)
        setenv("TZ", old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_all),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_default_excludes),
        cmocka_unit_test(test_merge_unlocked),
        cmocka_unit_test(test_merge_locked),
        cmocka_unit_test(test_merge_bad_server),
        cmocka_unit_test(test_next_verify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
