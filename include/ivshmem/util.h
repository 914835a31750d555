/* SPDX-License-Identifier: MIT */
/* Small parsing helpers shared by the library, the server and the tools. */
#ifndef IVSHMEM_UTIL_H
#define IVSHMEM_UTIL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse a size such as "4096", "0x1000", "4K", "16M", "1G", "64g" (binary units, an
 * optional trailing "B"/"iB"). Returns 0, or -EINVAL (not a size) / -ERANGE
 * (overflows 64 bits); ivshmem_errmsg() says which.
 */
int ivshmem_parse_size(const char *s, uint64_t *out);

/* Parse an unsigned decimal (or 0x hex) integer no larger than @max. */
int ivshmem_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Round up to a power of two (0 stays 0; values above 2^63 give 0). */
uint64_t ivshmem_pow2_roundup(uint64_t v);

#ifdef __cplusplus
}
#endif

#endif
