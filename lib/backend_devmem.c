// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the devmem backend is not written yet; it refuses clearly. */
#include "region_internal.h"

#include <errno.h>

int ivshmem_devmem_open(struct ivshmem_region *r, const char *target, const struct ivshmem_open_opts *o)
{
	(void)r;
	(void)o;
	return ivshmem_fail(ENOTSUP, "%s: the devmem backend is not available in this build", target);
}
