/*
 * fuzz_agent_config.c - cairn-agent's configuration on hostile input: the
 * local file (agent_config_parse) and the server's pushed settings
 * (agent_config_merge; the answer of GET /api/v1/devices/{id}/settings,
 * which a hostile or broken server controls).
 *
 * The input is the local file, a NUL byte, then the server's answer
 * (without a NUL byte, the whole input is tried as each).  Whatever is
 * accepted must hold only valid
 * values: its JSON form (agent_config_to_json) parses again and gives the
 * same JSON; a merge locks only keys the server may push; why is always
 * a terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cairn/err.h"
#include "config.h"
#include "fuzz.h"
#include "settings_keys.h"

/* cfg's JSON form parses back to the same JSON. */
static void round_trip(const struct agent_config *cfg)
{
    struct agent_config again;
    json_t *j, *j2;
    char *text, why[256];

    if ((j = agent_config_to_json(cfg)) == NULL)
        return; /* out of memory */
    if ((text = json_dumps(j, JSON_COMPACT)) == NULL)
        abort();
    if (agent_config_parse(text, strlen(text), &again, why, sizeof(why)) != 0)
        abort();
    if ((j2 = agent_config_to_json(&again)) == NULL || !json_equal(j, j2))
        abort();
    json_decref(j2);
    agent_config_clear(&again);
    free(text);
    json_decref(j);
}

static void check_why(const char *why, size_t len)
{
    if (memchr(why, '\0', len) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_config local, merged;
    unsigned pushable = 0;
    const struct agent_setting_key *keys;
    const uint8_t *nul, *srv = data;
    json_t *server;
    char why[128];
    size_t n, i, lsize = size, ssize = size;
    int local_ok;

    keys = agent_setting_keys(&n);
    for (i = 0; i < n; i++)
        if (keys[i].pushable)
            pushable |= 1u << i;

    if ((nul = memchr(data, '\0', size)) != NULL) {
        lsize = (size_t)(nul - data);
        srv = nul + 1;
        ssize = size - lsize - 1;
    }

    /* The local file. */
    memset(why, 'x', sizeof(why));
    local_ok = agent_config_parse((const char *)data, lsize, &local, why,
                                  sizeof(why)) == 0;
    check_why(why, sizeof(why));
    if (local_ok)
        round_trip(&local);
    else
        agent_config_defaults(&local);

    /* The server's answer, merged over that file (or the defaults). */
    server = json_loadb((const char *)srv, ssize, 0, NULL);
    if (server != NULL) {
        memset(why, 'x', sizeof(why));
        if (agent_config_merge(&local, server, &merged, why, sizeof(why)) ==
            0) {
            if (merged.locked & ~pushable)
                abort();
            round_trip(&merged);
            agent_config_clear(&merged);
        }
        check_why(why, sizeof(why));
        json_decref(server);
    }
    agent_config_clear(&local);
    return 0;
}
