/*
 * config.h - cairn-agent's configuration (docs/AGENT.md): the agent's
 * JSON file, merged with the settings the server pushes, and when the
 * daily verification scan is due.
 *
 * The server's address, pin and the device token are not here: they come
 * from the device file `cairn enrol` writes.
 */
#ifndef CAIRN_AGENT_CONFIG_H
#define CAIRN_AGENT_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Bits of agent_config.set: which keys the local file gave (in the order
 * of settings_keys.h). */
#define AGENT_CFG_PATHS 0x001u
#define AGENT_CFG_EXCLUDE 0x002u
#define AGENT_CFG_DEFAULT_EXCLUDES 0x004u
#define AGENT_CFG_EXCLUDE_CACHES 0x008u
#define AGENT_CFG_FREQUENCY 0x010u
#define AGENT_CFG_SETTLE 0x020u
#define AGENT_CFG_VERIFY_AT 0x040u
#define AGENT_CFG_BANDWIDTH_LIMIT 0x080u
#define AGENT_CFG_CPU_SHARE 0x100u
#define AGENT_CFG_PAUSE_UNTIL 0x200u

/* Defaults (docs/AGENT.md). */
#define AGENT_CFG_FREQUENCY_DEFAULT 900
#define AGENT_CFG_SETTLE_DEFAULT 2
#define AGENT_CFG_CPU_SHARE_DEFAULT 25
#define AGENT_CFG_VERIFY_HOUR_DEFAULT 3

struct agent_config {
    char **paths;          /* the selection: absolute paths */
    size_t npaths;
    char **exclude;        /* patterns of the file (lib/scan/exclude.h) */
    size_t nexclude;
    int default_excludes;  /* apply agent_default_excludes[] (1) */
    int exclude_caches;    /* skip CACHEDIR.TAG directories (1) */
    int64_t frequency;     /* seconds between backups; 0: when settled */
    int64_t settle;        /* seconds a file is unchanged before it is read */
    int verify_hour, verify_min; /* daily verification scan, local time */
    int64_t bandwidth_limit; /* bytes per second; 0: none */
    int cpu_share;         /* percent of one core, 1..100 */
    int64_t pause_until;   /* seconds since the epoch; 0: not paused */
    unsigned set;          /* AGENT_CFG_* bits: keys given explicitly */
    unsigned locked;       /* AGENT_CFG_* bits: keys the server locked */
};

/*
 * The default exclude patterns (caches, temporary files, virtual-machine
 * images, cloud-sync folders), NULL-ended, in the pattern language of
 * docs/CLI.md.  Applied unless "default_excludes" is false.
 */
extern const char *const agent_default_excludes[];

/* Fill *out with the defaults (no paths, no patterns, set = 0).  Nothing
 * to free, but agent_config_clear is harmless. */
void agent_config_defaults(struct agent_config *out);

/*
 * Parse a configuration file's text (len bytes, need not be
 * NUL-terminated): one JSON object whose keys are all known (settings_keys.h)
 * with values of the right types; keys not given keep their defaults.
 * 0 and *out filled (free with agent_config_clear); CAIRN_EINVAL with why
 * (whylen bytes, NUL-terminated) naming the key or the JSON error, and
 * *out left cleared; CAIRN_ENOMEM.
 */
int agent_config_parse(const char *text, size_t len, struct agent_config *out,
                       char *why, size_t whylen);

/*
 * Read and parse the file at path (at most 1 MiB).  CAIRN_ENOENT if it does
 * not exist (the caller may use the defaults), CAIRN_EPERM, CAIRN_EIO,
 * CAIRN_ERANGE (too large), or as agent_config_parse.  why says what.
 */
int agent_config_load(const char *path, struct agent_config *out, char *why,
                      size_t whylen);

/*
 * The configuration as a JSON object of every key (new reference, or NULL
 * when out of memory).  Parsing its text gives back the same settings.
 */
json_t *agent_config_to_json(const struct agent_config *cfg);

/*
 * Merge the local configuration with the server's pushed settings.
 * server is the answer of GET /api/v1/devices/{id}/settings,
 * {"settings": {...}, "locked": [...]} (borrowed; NULL: none).  Per key:
 * a locked server value wins; else a value the local file gave wins; else
 * the server's value; else the default.  Keys the server may not push
 * (pause_until) are refused there.  0 and *out (a deep copy, free with
 * agent_config_clear; out->locked says which keys were locked);
 * CAIRN_EINVAL with why for a malformed or invalid server object (out
 * cleared); CAIRN_ENOMEM.
 */
int agent_config_merge(const struct agent_config *local, const json_t *server,
                       struct agent_config *out, char *why, size_t whylen);

/* Free what cfg holds and reset it to the defaults.  NULL is fine. */
void agent_config_clear(struct agent_config *cfg);

/*
 * Call fn for each exclude pattern in force: the defaults (when
 * default_excludes) then the configured ones.  Stops at and returns the
 * first non-zero result of fn; else 0.
 */
int agent_config_patterns(const struct agent_config *cfg,
                          int (*fn)(void *arg, const char *pattern),
                          void *arg);

/*
 * When the next verification scan is due, in seconds since the epoch:
 * daily at cfg's verify_hour:verify_min, local time, and soon after
 * waking when one was missed.  If last_run (0: never) is older than the
 * most recent such time at or before now, the scan is due now (returns
 * now); else the next such time after now.  Thread safe (localtime_r,
 * mktime).
 */
time_t agent_next_verify(const struct agent_config *cfg, time_t last_run,
                         time_t now);

#endif
