/*
 * srv.h - the state one cairnd process holds, shared by its modules.
 *
 * cairnd holds no state of its own between requests beyond caches: the
 * catalog and the object store are the truth, so several processes can
 * serve side by side (once the catalog is PostgreSQL and the store S3).
 */
#ifndef CAIRN_SRV_H
#define CAIRN_SRV_H

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cairn/store.h"
#include "catalog.h"

enum srv_log_level {
    SRV_LOG_ERROR = 0,
    SRV_LOG_WARN = 1,
    SRV_LOG_INFO = 2,
    SRV_LOG_DEBUG = 3,
};

/* Settings from the config file (JSON; docs/SERVER.md lists every key). */
struct srv_config {
    char listen_addr[64];       /* "127.0.0.1" */
    unsigned listen_port;       /* 8443 */
    char state_dir[PATH_MAX];   /* catalog.db, objects/, tls/ */
    char tls_cert[PATH_MAX];    /* PEM; empty: self-signed in state_dir/tls */
    char tls_key[PATH_MAX];
    int log_level;              /* enum srv_log_level */
    unsigned threads;           /* request threads; 0: 4 */
    int64_t session_idle_secs;  /* 1800 */
    int64_t session_max_secs;   /* 43200 */
    int64_t alert_warning_days; /* 3 */
    int64_t alert_critical_days;/* 5 */
    int64_t legacy_days;        /* 60 */
    int lockout_slow_after;     /* 5 */
    int lockout_lock_after;     /* 10 */
    int lockout_lock_secs;      /* 900 */
    uint64_t max_pack_bytes;    /* 1 GiB */
    uint64_t download_max_bytes;/* 10 GiB: largest server-side download */
    int64_t escrow_unlock_secs; /* 900: an admin's escrow unlock lasts */
};

/* Counters for /metrics (Prometheus text). */
struct srv_metrics {
    atomic_uint_fast64_t requests, requests_4xx, requests_5xx;
    atomic_uint_fast64_t bytes_in, bytes_out;
    atomic_uint_fast64_t objects_stored;
    atomic_uint_fast64_t logins_ok, logins_failed;
};

struct srv {
    struct srv_config cfg;
    struct catalog *cat;
    char objects_dir[PATH_MAX];
    char pin[128]; /* "sha256//<base64>" of the TLS public key */
    struct srv_metrics m;
};

/* Load a config file (JSON object; unknown keys are an error), defaults
 * first.  path NULL: defaults only.  On error, *err_msg says what (static
 * or malloc'ed into buf). */
int srv_config_load(const char *path, struct srv_config *out, char *errbuf,
                    size_t errlen);

/* Logging with levels, to stderr (and the journal when run by systemd):
 * "2026-11-26T10:00:00Z info: message".  Never pass a secret. */
void srv_log_set_level(int level);
void srv_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * TLS: load cfg.tls_cert/tls_key, or make (first start) and reuse a
 * self-signed EC P-256 certificate in state_dir/tls/ (key 0600).  Fills
 * s->pin.  *cert_pem and *key_pem are malloc'ed NUL-terminated PEM.
 */
int srv_tls_load(struct srv *s, char **cert_pem, char **key_pem);

/* The directory store holding a device's archive (objects/<device id>),
 * created when create is set. */
int srv_device_store(struct srv *s, const char *device_id, int create,
                     struct cairn_store **out);

/* Now, in seconds since the epoch (a function, so tests can move time). */
int64_t srv_now(void);

/* Write an audit record (never a secret in detail). */
void srv_audit(struct srv *s, int64_t user_id, const char *device_id,
               const char *addr, const char *action, const char *target,
               const char *detail_fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif
