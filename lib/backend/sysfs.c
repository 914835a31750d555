// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Guest sysfs backend: mmap /sys/bus/pci/devices/BDF/resource2 (the shared
 * memory) and resource0 (the registers). No driver is needed, but:
 *  - the kernel maps resourceN uncached (UC- on x86, device memory on arm64),
 *    so the region is device memory: aligned accesses only, and slow;
 *  - there is no interrupt path from sysfs: doorbells can be rung (a 32-bit
 *    store to the Doorbell register) but not received;
 *  - only root may open the files, and the kernel refuses the mmap while a
 *    driver has claimed the BAR (IO_STRICT_DEVMEM);
 *  - when the device is hot-removed the kernel revokes the mapping and the
 *    next access raises SIGBUS (see docs/guest.md).
 */
#include "backend/backends.h"
#include "core/error.h"

#include "ivshmem/iomem.h"
#include "guest/pci_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define REGS_MAP_SIZE 4096	/* BAR0 is 256 bytes; mappings are whole pages */

struct sysfs_priv {
	struct ivshmem_guest_head head;	/* first: see pci_internal.h */
	volatile void *regs;	/* NULL when resource0 could not be mapped */
};

static void sysfs_close(struct ivshmem_region *r)
{
	struct sysfs_priv *p = r->priv;

	munmap(r->base, r->size);
	if (p && p->regs)
		munmap((void *)p->regs, REGS_MAP_SIZE);
	free(p);
}

static int sysfs_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	struct sysfs_priv *p = r->priv;

	if (!p->regs)
		return ivshmem_fail(ENOTSUP, "sysfs: the registers (resource0) could not be mapped");
	/* QEMU masks the vector to 8 bits; refuse rather than ring a different vector. */
	if (vector > 0xff)
		return ivshmem_fail(EINVAL, "vector %u out of range (the device takes 0..255)", vector);
	ivshmem_reg_write32(p->regs, 12, (uint32_t)peer << 16 | vector);
	return 0;
}

static const struct ivshmem_backend_ops sysfs_ops = {
	.notify = sysfs_notify,
	.close = sysfs_close,
};

static int map_resource(const char *bdf, const char *res, size_t size, bool ro, void **out)
{
	char path[PATH_MAX], drv[64];
	int fd, err;

	if (ivshmem_pci_path(path, sizeof(path), bdf, res) < 0)
		return -ENAMETOOLONG;
	fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			return ivshmem_fail(ENOENT, "sysfs: %s is missing (device removed, or BAR "
					    "not assigned)", path);
		if (err == EACCES || err == EPERM)
			return ivshmem_fail(err, "sysfs: %s: not root (resource files are root-only)",
					    path);
		return ivshmem_fail(err, "sysfs: %s: %s", path, strerror(err));
	}
	*out = mmap(NULL, size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	if (*out != MAP_FAILED)
		return 0;
	*out = NULL;
	ivshmem_pci_link_name(bdf, "driver", drv, sizeof(drv));
	if ((err == EINVAL || err == EPERM || err == EBUSY) && drv[0])
		return ivshmem_fail(EBUSY, "sysfs: cannot mmap %s: region busy, driver '%s' has "
				    "claimed it (IO_STRICT_DEVMEM; use the driver backend or "
				    "unbind it)", path, drv);
	return ivshmem_fail(err, "sysfs: mmap %s: %s", path, strerror(err));
}

int ivshmem_sysfs_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	uint64_t phys, size, regs_phys, regs_size;
	struct sysfs_priv *p;
	void *base, *regs = NULL;
	int ret;

	char drv[64];

	/*
	 * vfio-pci claims the BARs only while a VFIO user has the device open, so
	 * the kernel would let us map it; but a device bound to vfio-pci is meant
	 * for VFIO (and its interrupts), so leave it to that backend.
	 */
	if (ivshmem_pci_link_name(bdf, "driver", drv, sizeof(drv)) == 0 &&
	    strcmp(drv, "vfio-pci") == 0)
		return ivshmem_fail(EBUSY, "sysfs: %s is bound to vfio-pci: use the vfio backend",
				    bdf);
	ret = ivshmem_pci_bar(bdf, 2, &phys, &size);
	if (ret < 0)
		return ivshmem_fail(-ret, "sysfs: %s: cannot read its BARs: %s", bdf, strerror(-ret));
	if (size == 0)
		return ivshmem_fail(ENODEV, "sysfs: %s: BAR2 (shared memory) is not assigned", bdf);
	if (size > SIZE_MAX)
		return ivshmem_fail(EFBIG, "sysfs: %s: BAR2 is too large to map here", bdf);
	/* Also read-only: with decoding off, BAR2 reads as all-ones (arm64 -M virt, hot-add). */
	ivshmem_pci_enable_memory(bdf);
	ret = map_resource(bdf, "resource2", (size_t)size, ro, &base);
	if (ret < 0)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p) {
		munmap(base, (size_t)size);
		return ivshmem_fail(ENOMEM, "out of memory");
	}
	/* The registers are optional: without them we only lose IVPosition and the doorbell. */
	if (ivshmem_pci_bar(bdf, 0, &regs_phys, &regs_size) == 0 && regs_size >= 16) {
		char saved[512];

		snprintf(saved, sizeof(saved), "%s", ivshmem_errmsg());
		if (map_resource(bdf, "resource0", REGS_MAP_SIZE, false, &regs) < 0)
			regs = NULL;
		ivshmem_fail(0, "%s", saved);
	}
	p->regs = regs;
	ivshmem_guest_head_init(&p->head, bdf);
	r->ops = &sysfs_ops;
	r->kind = IVSHMEM_BACKEND_SYSFS;
	r->base = base;
	r->size = size;
	r->device_memory = true;
	r->own_id = regs ? (int)(ivshmem_reg_read32(regs, 8) & 0xffff) : -1;
	r->vectors = 0;	/* sysfs has no interrupt path */
	r->priv = p;
	return 0;
}
