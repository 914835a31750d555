// SPDX-License-Identifier: MIT
/* PLACEHOLDER: the vfio backend is not written yet; it refuses clearly. */
#include "region_internal.h"

#include <errno.h>

int ivshmem_vfio_open(struct ivshmem_region *r, const char *target, const struct ivshmem_open_opts *o)
{
	(void)r;
	(void)o;
	return ivshmem_fail(ENOTSUP, "%s: the vfio backend is not available in this build", target);
}
