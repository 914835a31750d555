// SPDX-License-Identifier: MIT
/* ivshmem info: backend, size, peer id, vectors and layout of a region. */
#include "dev.h"

#include "ivshmem/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int print_layout(struct ivshmem_region *r, void *arg)
{
	(void)arg;
	return ivshmem_layout_print(r, stdout);
}

int cmd_info(int argc, char **argv)
{
	const struct ivshmem_cmd *cmd = cmd_find("info");
	const char *target = NULL;
	struct opts o;
	struct dev d;
	char sz[32];
	int ret, id;

	ret = dev_open_one(cmd, argc, argv, ALLOW(OPT_BACKEND), IVSHMEM_OPEN_READONLY, &o, &d,
			   &target);
	if (ret)
		return ret;
	printf("target:        %s\n", target);
	if (d.is_pci) {
		struct ivshmem_pci_dev *p = &d.pci;

		printf("pci address:   %s\n", p->bdf);
		printf("type:          %s\n", p->doorbell ? "ivshmem-doorbell (MSI-X)" : "ivshmem-plain");
		printf("revision:      %u\n", p->revision);
		printf("driver:        %s\n", p->driver[0] ? p->driver : "(none)");
		printf("bar2:          0x%" PRIx64 " (%" PRIu64 " bytes)\n", p->mem_phys, p->mem_size);
		if (p->iommu_group[0])
			printf("iommu group:   %s\n", p->iommu_group);
	}
	printf("backend:       %s\n", ivshmem_backend_name(ivshmem_backend_of(d.r)));
	printf("size:          %s (%" PRIu64 " bytes)\n", dev_human_size(ivshmem_size(d.r), sz,
								  sizeof(sz)), ivshmem_size(d.r));
	printf("device memory: %s\n", ivshmem_is_device_memory(d.r)
					  ? "yes (uncached: aligned accesses only)" : "no (cacheable)");
	id = ivshmem_own_id(d.r);
	if (id >= 0)
		printf("own peer id:   %d\n", id);
	else
		printf("own peer id:   (none)\n");
	printf("vectors:       %u%s\n", ivshmem_vectors(d.r),
	       ivshmem_vectors(d.r) ? "" : " (this backend cannot deliver interrupts)");
	ret = EXIT_OK;
	{
		int lret = ivshmem_guarded(d.r, print_layout, NULL);

		if (lret == -ENODEV)
			ret = cmd_error(cmd, EXIT_NODEV, "%s", ivshmem_errmsg());
		else if (lret == 0)
			printf("layout:        none (unformatted region)\n");
		else if (lret < 0)
			printf("layout:        corrupt layout header: %s\n", ivshmem_errmsg());
	}
	ivshmem_close(d.r);
	return ret;
}

