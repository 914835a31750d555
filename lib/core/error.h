/* SPDX-License-Identifier: MIT */
/*
 * lib/core: errors. Every layer reports a failure as a negative errno plus one
 * sentence, kept per thread for ivshmem_errmsg(). Uses nothing else.
 */
#ifndef IVSHMEM_CORE_ERROR_H
#define IVSHMEM_CORE_ERROR_H

#include <stddef.h>

/*
 * Record why the current call fails and return -err, so callers can write
 *   return ivshmem_fail(EACCES, "%s: not root", path);
 */
int ivshmem_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Size of the message buffer: a caller that saves a message needs this much. */
#define IVSHMEM_ERRMSG_MAX 512

/* The public accessor, declared in ivshmem/region.h. */
const char *ivshmem_errmsg(void);

#endif
