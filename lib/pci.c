// SPDX-License-Identifier: MIT
/* PLACEHOLDER: guest PCI discovery is not written yet. */
#include "region_internal.h"

#include <errno.h>

int ivshmem_pci_resolve(const char *selector, char *bdf, size_t bdf_len)
{
	(void)bdf;
	(void)bdf_len;
	return ivshmem_fail(ENOTSUP, "%s: PCI device selection is not available in this build",
			    selector);
}
