/*
 * store/store_int.h - what the store backends share.  Private to libcairn.
 */
#ifndef CAIRN_STORE_INT_H
#define CAIRN_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes of fd at off (EINTR retried): 0, CAIRN_ECORRUPT
 * at a premature end, or the error of the read. */
int store_pread_all(int fd, uint8_t *p, size_t len, uint64_t off);

#endif
