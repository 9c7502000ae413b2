/*
 * tls.c - cairnd's TLS certificate: the one named by the config, or a
 * self-signed EC P-256 certificate made on first start in state_dir/tls/
 * (cert.pem, key.pem 0600) and reused afterwards.  Clients pin the public
 * key: s->pin is "sha256//" + base64(SHA-256(DER SubjectPublicKeyInfo)),
 * the form of curl's CURLOPT_PINNEDPUBLICKEY.
 *
 * Files are written crash-safely (temporary name, fsync, rename, fsync of
 * the directory); the key is written before the certificate, so a
 * certificate on disk always has its key beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cairn/err.h"
#include "srv.h"

#define MAX_PEM (1 << 20)
#define CERT_DAYS (10L * 365 + 3)

/* Read a whole (small) file as a NUL-terminated string. */
static int read_text(const char *path, char **out)
{
    FILE *f;
    char *buf = NULL;
    size_t n = 0;
    long len;
    int rc;

    if ((f = fopen(path, "rb")) == NULL)
        return cairn_err_from_errno(errno);
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        rc = CAIRN_EIO;
        goto out;
    }
    if (len > MAX_PEM) {
        rc = CAIRN_ERANGE;
        goto out;
    }
    if ((buf = malloc((size_t)len + 1)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    n = fread(buf, 1, (size_t)len, f);
    if (n != (size_t)len || ferror(f)) {
        free(buf);
        rc = CAIRN_EIO;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* Write data to path crash-safely with the given mode. */
static int write_file_safe(const char *dir, const char *path,
                           const char *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t off = 0;
    int fd, dfd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return CAIRN_ERANGE;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
        return cairn_err_from_errno(errno);
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = cairn_err_from_errno(errno);
            goto err1;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err1;
    }
    if (close(fd) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err0;
    }
    if (rename(tmp, path) != 0) {
        rc = cairn_err_from_errno(errno);
        goto err0;
    }
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(dfd);
        close(dfd);
    }

    /* Success! */
    return 0;

err1:
    close(fd);
err0:
    unlink(tmp);
    return rc;
}

/* The pin of cert_pem's public key into out (128 bytes). */
static int pin_of(const char *cert_pem, char *out, size_t outlen)
{
    BIO *b;
    X509 *x = NULL;
    unsigned char *der = NULL;
    unsigned char md[32];
    unsigned char b64[64];
    int len, rc = CAIRN_ECORRUPT;

    if ((b = BIO_new_mem_buf(cert_pem, -1)) == NULL)
        return CAIRN_ENOMEM;
    if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL)
        goto out;
    if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
        goto out;
    if (EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) != 1) {
        rc = CAIRN_ECRYPTO;
        goto out;
    }
    EVP_EncodeBlock(b64, md, sizeof(md));
    snprintf(out, outlen, "sha256//%s", (const char *)b64);
    rc = 0;
out:
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
    return rc;
}

/* Does key_pem hold the private key of cert_pem? */
static int key_matches(const char *cert_pem, const char *key_pem)
{
    BIO *bc, *bk;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int ok = 0;

    bc = BIO_new_mem_buf(cert_pem, -1);
    bk = BIO_new_mem_buf(key_pem, -1);
    if (bc && bk && (x = PEM_read_bio_X509(bc, NULL, NULL, NULL)) != NULL &&
        (k = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL)) != NULL)
        ok = X509_check_private_key(x, k) == 1;
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(bk);
    BIO_free(bc);
    return ok;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
        return 0;
    ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* A BIO's contents as a malloc'ed NUL-terminated string. */
static char *bio_text(BIO *b)
{
    char *p, *s;
    long n = BIO_get_mem_data(b, &p);

    if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
        return NULL;
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

/* Make a self-signed certificate and key (PEM, malloc'ed). */
static int make_cert(char **out_cert, char **out_key)
{
    EVP_PKEY *k;
    X509 *x = NULL;
    X509_NAME *name;
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    BIO *bc = NULL, *bk = NULL;
    char host[256], san[512];
    unsigned char rnd[16];
    int rc = CAIRN_ECRYPTO;

    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
            host[0] = '\0';
            break;
        }
    if (host[0] != '\0' && strcmp(host, "localhost") != 0)
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:%s",
                 host);
    else
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");

    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
        goto out;
    if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1)
        goto out;
    rnd[0] = 0;
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        goto out;
    rnd[0] &= 0x7f;
    if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        X509_set_serialNumber(x, serial) != 1)
        goto out;
    if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), CERT_DAYS * 86400L) == NULL)
        goto out;
    if (X509_set_pubkey(x, k) != 1)
        goto out;
    name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(
            name, "CN", MBSTRING_ASC,
            (const unsigned char *)(host[0] ? host : "localhost"), -1, -1,
            0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        goto out;
    if (!add_ext(x, NID_subject_alt_name, san) ||
        !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth"))
        goto out;
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    if ((bc = BIO_new(BIO_s_mem())) == NULL ||
        (bk = BIO_new(BIO_s_secmem())) == NULL)
        goto out;
    if (PEM_write_bio_X509(bc, x) != 1 ||
        PEM_write_bio_PrivateKey(bk, k, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    if ((*out_cert = bio_text(bc)) == NULL) {
        rc = CAIRN_ENOMEM;
        goto out;
    }
    if ((*out_key = bio_text(bk)) == NULL) {
        free(*out_cert);
        *out_cert = NULL;
        rc = CAIRN_ENOMEM;
        goto out;
    }
    rc = 0;
out:
    BIO_free(bk);
    BIO_free(bc);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/*
 * Load the TLS certificate and key: cfg.tls_cert and cfg.tls_key when set,
 * else state_dir/tls/{cert,key}.pem, made on first start.  Checks that the
 * key belongs to the certificate; fills s->pin.  *cert_pem and *key_pem
 * are malloc'ed (wipe and free the key).  Errors are logged.
 */
int srv_tls_load(struct srv *s, char **cert_pem, char **key_pem)
{
    char dir[PATH_MAX], cpath[PATH_MAX], kpath[PATH_MAX];
    char *cert = NULL, *key = NULL;
    int made = 0, rc;

    if (s->cfg.tls_cert[0] != '\0') {
        snprintf(cpath, sizeof(cpath), "%s", s->cfg.tls_cert);
        snprintf(kpath, sizeof(kpath), "%s", s->cfg.tls_key);
    } else {
        if (snprintf(dir, sizeof(dir), "%s/tls", s->cfg.state_dir) >=
                (int)sizeof(dir) - 16)
            return CAIRN_ERANGE;
        if (snprintf(cpath, sizeof(cpath), "%s/cert.pem", dir) >=
                (int)sizeof(cpath) ||
            snprintf(kpath, sizeof(kpath), "%s/key.pem", dir) >=
                (int)sizeof(kpath))
            return CAIRN_ERANGE;
        if (access(cpath, F_OK) != 0 && errno == ENOENT) {
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                rc = cairn_err_from_errno(errno);
                srv_log(SRV_LOG_ERROR, "cannot create %s: %s", dir,
                        strerror(errno));
                goto err0;
            }
            if ((rc = make_cert(&cert, &key)) != 0) {
                srv_log(SRV_LOG_ERROR, "cannot make a TLS certificate: %s",
                        cairn_strerror(rc));
                goto err0;
            }
            if ((rc = write_file_safe(dir, kpath, key, strlen(key), 0600)) !=
                    0 ||
                (rc = write_file_safe(dir, cpath, cert, strlen(cert),
                                      0644)) != 0) {
                srv_log(SRV_LOG_ERROR, "cannot write %s: %s", dir,
                        cairn_strerror(rc));
                goto err1;
            }
            made = 1;
            srv_log(SRV_LOG_INFO, "made a self-signed TLS certificate: %s",
                    cpath);
        }
    }
    if (!made) {
        if ((rc = read_text(cpath, &cert)) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot read the TLS certificate %s: %s",
                    cpath, cairn_strerror(rc));
            goto err0;
        }
        if ((rc = read_text(kpath, &key)) != 0) {
            srv_log(SRV_LOG_ERROR, "cannot read the TLS key %s: %s", kpath,
                    cairn_strerror(rc));
            goto err1;
        }
    }
    if ((rc = pin_of(cert, s->pin, sizeof(s->pin))) != 0) {
        srv_log(SRV_LOG_ERROR, "%s is not a PEM certificate", cpath);
        goto err1;
    }
    if (!key_matches(cert, key)) {
        srv_log(SRV_LOG_ERROR, "the key %s does not belong to %s", kpath,
                cpath);
        rc = CAIRN_ECORRUPT;
        goto err1;
    }
    *cert_pem = cert;
    *key_pem = key;

    /* Success! */
    return 0;

err1:
    free(cert);
    free_secret(key);
err0:
    s->pin[0] = '\0';
    return rc;
}
