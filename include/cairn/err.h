/*
 * cairn/err.h - error codes of libcairn.
 *
 * Every fallible function returns 0 on success or one of these negative
 * values.  The values are pinned: once released they never change, because
 * scripts and other programs see them through exit codes and JSON output.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

enum cairn_err {
    CAIRN_OK = 0,
    CAIRN_ENOMEM = -1,    /* out of memory */
    CAIRN_EIO = -2,       /* an I/O operation failed */
    CAIRN_ENOENT = -3,    /* object, blob, snapshot or file is missing */
    CAIRN_ECORRUPT = -4,  /* malformed, truncated or tampered data */
    CAIRN_EAUTH = -5,     /* wrong passphrase, or no key file opens it */
    CAIRN_EINVAL = -6,    /* invalid argument or setting */
    CAIRN_EEXIST = -7,    /* already exists */
    CAIRN_ENOSPC = -8,    /* no space left on the device */
    CAIRN_EVERSION = -9,  /* format version this build cannot read */
    CAIRN_ECRYPTO = -10,  /* the crypto library failed */
    CAIRN_EPERM = -11,    /* permission denied */
    CAIRN_ERANGE = -12,   /* a size or count is out of range */
    CAIRN_ECANCELED = -13, /* the operation was cancelled */
    CAIRN_EAMBIGUOUS = -14, /* a prefix matches more than one thing */
    CAIRN_ELOCKED = -15,  /* the archive is locked by another process */
};

/* Return a static, human-readable description of err (0 or negative). */
const char *cairn_strerror(int err);

/* Return the symbolic name of err ("CAIRN_ENOENT"), for JSON output. */
const char *cairn_errname(int err);

/* Map a C errno value to a cairn_err (ENOENT->CAIRN_ENOENT, ENOSPC and
 * EDQUOT->CAIRN_ENOSPC, EACCES/EPERM->CAIRN_EPERM, ENOMEM, else EIO). */
int cairn_err_from_errno(int e);

#endif
