/*
 * test_tls.c - cairnd's TLS certificate (server/tls.c) and config file
 * (server/config.c): a self-signed certificate made once and reused, its
 * key file private, the pin computed independently from the key file, a
 * key that does not match refused; config defaults, every kind of key,
 * unknown keys and wrong types named in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cairn/err.h"
#include "srv.h"

static char dir[64];

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The pin from key.pem, by another road than tls.c's (the private key's
 * public half, not the certificate's SubjectPublicKeyInfo). */
static void pin_from_key(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;
    unsigned char *der = NULL, md[32], b64[64];
    int len;

    assert_non_null(f);
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    len = i2d_PUBKEY(k, &der);
    assert_true(len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL),
                     1);
    EVP_EncodeBlock(b64, md, 32);
    snprintf(out, outlen, "sha256//%s", b64);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

static void test_tls_self_signed(void **state)
{
    struct srv s;
    char *cert = NULL, *key = NULL, *cert2 = NULL, *key2 = NULL;
    char path[128], pin1[128], want[128];
    struct stat st;

    (void)state;
    memset(&s, 0, sizeof(s));
    snprintf(s.cfg.state_dir, sizeof(s.cfg.state_dir), "%s", dir);
    assert_int_equal(srv_tls_load(&s, &cert, &key), 0);
    assert_non_null(strstr(cert, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(key, "PRIVATE KEY-----"));
    assert_int_equal(strncmp(s.pin, "sha256//", 8), 0);
    assert_int_equal(strlen(s.pin), 8 + 44);
    snprintf(path, sizeof(path), "%s/tls/key.pem", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    pin_from_key(path, want, sizeof(want));
    assert_string_equal(s.pin, want);
    snprintf(pin1, sizeof(pin1), "%s", s.pin);

    /* The second start reuses it. */
    memset(s.pin, 0, sizeof(s.pin));
    assert_int_equal(srv_tls_load(&s, &cert2, &key2), 0);
    assert_string_equal(s.pin, pin1);
    assert_string_equal(cert, cert2);
    assert_string_equal(key, key2);
    free(cert2);
    free(key2);

    /* Config names the files; a key of another certificate is refused. */
    snprintf(path, sizeof(path), "%s/other", dir);
    {
        struct srv o;
        char *c3 = NULL, *k3 = NULL;
        memset(&o, 0, sizeof(o));
        snprintf(o.cfg.state_dir, sizeof(o.cfg.state_dir), "%s", path);
        mkdir(path, 0700);
        assert_int_equal(srv_tls_load(&o, &c3, &k3), 0);
        assert_string_not_equal(o.pin, pin1);
        free(c3);
        free(k3);
    }
    snprintf(s.cfg.tls_cert, sizeof(s.cfg.tls_cert), "%s/tls/cert.pem", dir);
    snprintf(s.cfg.tls_key, sizeof(s.cfg.tls_key), "%s/other/tls/key.pem", dir);
    assert_int_equal(srv_tls_load(&s, &cert2, &key2), CAIRN_ECORRUPT);
    snprintf(s.cfg.tls_key, sizeof(s.cfg.tls_key), "%s/tls/key.pem", dir);
    assert_int_equal(srv_tls_load(&s, &cert2, &key2), 0);
    assert_string_equal(s.pin, pin1);
    free(cert2);
    free(key2);

    /* Damaged or missing files. */
    snprintf(path, sizeof(path), "%s/bad.pem", dir);
    write_text(path, "-----BEGIN CERTIFICATE-----\nAAAA\n"
                     "-----END CERTIFICATE-----\n");
    snprintf(s.cfg.tls_cert, sizeof(s.cfg.tls_cert), "%s", path);
    assert_int_equal(srv_tls_load(&s, &cert2, &key2), CAIRN_ECORRUPT);
    snprintf(s.cfg.tls_cert, sizeof(s.cfg.tls_cert), "%s/none.pem", dir);
    assert_int_equal(srv_tls_load(&s, &cert2, &key2), CAIRN_ENOENT);
    free(cert);
    free(key);
}

static void test_config(void **state)
{
    struct srv_config c;
    char path[128], err[256];

    (void)state;
    assert_int_equal(srv_config_load(NULL, &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen_addr, "127.0.0.1");
    assert_int_equal(c.listen_port, 8443);
    assert_int_equal(c.log_level, SRV_LOG_INFO);
    assert_int_equal(c.session_idle_secs, 1800);
    assert_int_equal(c.session_max_secs, 43200);
    assert_int_equal(c.alert_warning_days, 3);
    assert_int_equal(c.alert_critical_days, 5);
    assert_int_equal(c.legacy_days, 60);
    assert_int_equal(c.lockout_slow_after, 5);
    assert_int_equal(c.lockout_lock_after, 10);
    assert_int_equal(c.lockout_lock_secs, 900);
    assert_true(c.max_pack_bytes == (uint64_t)1 << 30);

    snprintf(path, sizeof(path), "%s/c.json", dir);
    write_text(path, "{\"listen_addr\": \"::1\", \"listen_port\": 9000, "
                     "\"state_dir\": \"/srv/cairn\", \"log_level\": \"debug\","
                     " \"threads\": 8, \"session_idle_secs\": 600, "
                     "\"alert_warning_days\": 2, \"alert_critical_days\": 9, "
                     "\"legacy_days\": 90, \"lockout_lock_secs\": 60, "
                     "\"max_pack_bytes\": 5000000000, \"tls_cert\": \"/c\", "
                     "\"tls_key\": \"/k\"}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen_addr, "::1");
    assert_int_equal(c.listen_port, 9000);
    assert_string_equal(c.state_dir, "/srv/cairn");
    assert_int_equal(c.log_level, SRV_LOG_DEBUG);
    assert_int_equal(c.threads, 8);
    assert_int_equal(c.session_idle_secs, 600);
    assert_int_equal(c.session_max_secs, 43200);
    assert_int_equal(c.alert_warning_days, 2);
    assert_int_equal(c.alert_critical_days, 9);
    assert_int_equal(c.legacy_days, 90);
    assert_int_equal(c.lockout_lock_secs, 60);
    assert_true(c.max_pack_bytes == 5000000000ULL);
    assert_string_equal(c.tls_cert, "/c");

    write_text(path, "{\"listen_prot\": 9000}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "unknown key \"listen_prot\""));
    write_text(path, "{\"listen_port\": \"9000\"}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "\"listen_port\" must be an integer"));
    write_text(path, "{\"listen_port\": 70000}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "listen_port"));
    write_text(path, "{\"state_dir\": 5}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "\"state_dir\" must be a string"));
    write_text(path, "{\"log_level\": \"loud\"}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, "log_level"));
    write_text(path, "{\"tls_cert\": \"/c\"}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    write_text(path, "{\"listen_port\": 1, \"listen_port\": 2}");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    write_text(path, "[1]");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    write_text(path, "{\"threads\": ");
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_EINVAL);
    assert_non_null(strstr(err, path));
    snprintf(path, sizeof(path), "%s/none.json", dir);
    assert_int_equal(srv_config_load(path, &c, err, sizeof(err)), CAIRN_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_self_signed),
        cmocka_unit_test(test_config),
    };
    char cmd[128];
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
