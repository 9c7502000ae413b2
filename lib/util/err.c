/*
 * err.c - names and descriptions of the cairn_err codes.
 */
#include <errno.h>
#include <stddef.h>

#include "cairn/err.h"

static const struct {
    int code;
    const char *name;
    const char *text;
} errtab[] = {
    {CAIRN_OK, "CAIRN_OK", "success"},
    {CAIRN_ENOMEM, "CAIRN_ENOMEM", "out of memory"},
    {CAIRN_EIO, "CAIRN_EIO", "input/output error"},
    {CAIRN_ENOENT, "CAIRN_ENOENT", "not found"},
    {CAIRN_ECORRUPT, "CAIRN_ECORRUPT", "data is damaged or malformed"},
    {CAIRN_EAUTH, "CAIRN_EAUTH", "wrong passphrase"},
    {CAIRN_EINVAL, "CAIRN_EINVAL", "invalid argument"},
    {CAIRN_EEXIST, "CAIRN_EEXIST", "already exists"},
    {CAIRN_ENOSPC, "CAIRN_ENOSPC", "no space left on device"},
    {CAIRN_EVERSION, "CAIRN_EVERSION", "format version not supported"},
    {CAIRN_ECRYPTO, "CAIRN_ECRYPTO", "cryptographic library failure"},
    {CAIRN_EPERM, "CAIRN_EPERM", "permission denied"},
    {CAIRN_ERANGE, "CAIRN_ERANGE", "size or count out of range"},
    {CAIRN_ECANCELED, "CAIRN_ECANCELED", "cancelled"},
    {CAIRN_EAMBIGUOUS, "CAIRN_EAMBIGUOUS", "ambiguous prefix"},
    {CAIRN_ELOCKED, "CAIRN_ELOCKED", "archive is locked"},
};

const char *cairn_strerror(int err)
{
    size_t i;

    for (i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
        if (errtab[i].code == err)
            return errtab[i].text;
    return "unknown error";
}

const char *cairn_errname(int err)
{
    size_t i;

    for (i = 0; i < sizeof(errtab) / sizeof(errtab[0]); i++)
        if (errtab[i].code == err)
            return errtab[i].name;
    return "CAIRN_EUNKNOWN";
}

int cairn_err_from_errno(int e)
{
    switch (e) {
    case 0:
        return CAIRN_OK;
    case ENOENT:
    case ENOTDIR:
        return CAIRN_ENOENT;
    case ENOSPC:
    case EDQUOT:
        return CAIRN_ENOSPC;
    case EACCES:
    case EPERM:
    case EROFS:
        return CAIRN_EPERM;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case EEXIST:
        return CAIRN_EEXIST;
    case EINVAL:
        return CAIRN_EINVAL;
    case ECANCELED:
        return CAIRN_ECANCELED;
    default:
        return CAIRN_EIO;
    }
}
