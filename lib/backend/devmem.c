// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Guest /dev/mem backend: map the BAR2 (memory) and BAR0 (registers)
 * physical ranges through /dev/mem. The last resort:
 *  - root only (CAP_SYS_RAWIO), and the mapping is uncached device memory;
 *  - with IO_STRICT_DEVMEM (Debian's default) the kernel refuses ranges a
 *    driver has claimed, so it works only while no driver holds the device;
 *  - no interrupts; the doorbell can be rung through BAR0;
 *  - it cannot notice a hot-removal: the physical range simply stops decoding
 *    (reads give all-ones). Callers check ivshmem_pci_present() (the CLI
 *    does after every access) - see docs/guest.md.
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

#define REGS_MAP_SIZE 4096

struct devmem_priv {
	struct ivshmem_guest_head head;	/* first: see pci_internal.h */
	volatile void *regs_page;	/* page holding BAR0, NULL if unmapped */
	size_t regs_off;		/* BAR0's offset inside that page */
};

static const char *devmem_path(void)
{
	/* Test hook, like IVSHMEM_SYSFS_ROOT: lets host tests point at a plain file. */
	const char *p = getenv("IVSHMEM_DEVMEM_PATH");

	return p && *p ? p : "/dev/mem";
}

static void devmem_close(struct ivshmem_region *r)
{
	struct devmem_priv *p = r->priv;

	munmap(r->base, r->size);
	if (p && p->regs_page)
		munmap((void *)p->regs_page, REGS_MAP_SIZE);
	free(p);
}

static int devmem_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	struct devmem_priv *p = r->priv;

	if (!p->regs_page)
		return ivshmem_fail(ENOTSUP, "devmem: the registers (BAR0) could not be mapped");
	if (vector > 0xff)
		return ivshmem_fail(EINVAL, "vector %u out of range (the device takes 0..255)", vector);
	ivshmem_reg_write32((volatile char *)p->regs_page + p->regs_off, 12,
			    (uint32_t)peer << 16 | vector);
	return 0;
}

static const struct ivshmem_backend_ops devmem_ops = {
	.notify = devmem_notify,
	.close = devmem_close,
};

int ivshmem_devmem_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	uint64_t phys, size, regs_phys, regs_size;
	char drv[64] = "";
	struct devmem_priv *p;
	void *base, *regs = MAP_FAILED;
	long page = sysconf(_SC_PAGESIZE);
	int fd, err, ret;

	ret = ivshmem_pci_bar(bdf, 2, &phys, &size);
	if (ret < 0)
		return ivshmem_fail(-ret, "devmem: %s: cannot read its BARs: %s", bdf, strerror(-ret));
	if (size == 0 || phys == 0)
		return ivshmem_fail(ENODEV, "devmem: %s: BAR2 (shared memory) is not assigned", bdf);
	if (size > SIZE_MAX || phys % (uint64_t)page)
		return ivshmem_fail(EINVAL, "devmem: %s: BAR2 at %#llx cannot be mapped here", bdf,
				    (unsigned long long)phys);
	ivshmem_pci_link_name(bdf, "driver", drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci") == 0)
		return ivshmem_fail(EBUSY, "devmem: %s is bound to vfio-pci: use the vfio backend",
				    bdf);
	ivshmem_pci_enable_memory(bdf);
	fd = open(devmem_path(), (ro ? O_RDONLY : O_RDWR) | O_SYNC | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			return ivshmem_fail(ENOENT, "devmem: %s is missing (CONFIG_DEVMEM off?)",
					    devmem_path());
		if (err == EACCES || err == EPERM)
			return ivshmem_fail(err, "devmem: %s: not root (needs CAP_SYS_RAWIO)",
					    devmem_path());
		return ivshmem_fail(err, "devmem: %s: %s", devmem_path(), strerror(err));
	}
	base = mmap(NULL, (size_t)size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd,
		    (off_t)phys);
	if (base == MAP_FAILED) {
		err = errno;
		close(fd);
		if ((err == EPERM || err == EINVAL || err == EBUSY) && drv[0])
			return ivshmem_fail(EBUSY, "devmem: %s: region busy, driver '%s' has claimed "
					    "BAR2 (IO_STRICT_DEVMEM refuses /dev/mem there)", bdf,
					    drv);
		if (err == EPERM)
			return ivshmem_fail(EPERM, "devmem: %s: the kernel refuses /dev/mem at %#llx "
					    "(STRICT_DEVMEM or lockdown)", bdf,
					    (unsigned long long)phys);
		return ivshmem_fail(err, "devmem: mmap %#llx: %s", (unsigned long long)phys,
				    strerror(err));
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		munmap(base, (size_t)size);
		close(fd);
		return ivshmem_fail(ENOMEM, "out of memory");
	}
	if (ivshmem_pci_bar(bdf, 0, &regs_phys, &regs_size) == 0 && regs_size >= 16 && regs_phys) {
		uint64_t page_start = regs_phys & ~((uint64_t)page - 1);

		regs = mmap(NULL, REGS_MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			    (off_t)page_start);
		if (regs != MAP_FAILED) {
			p->regs_page = regs;
			p->regs_off = (size_t)(regs_phys - page_start);
		}
	}
	close(fd);
	ivshmem_guest_head_init(&p->head, bdf);
	r->ops = &devmem_ops;
	r->kind = IVSHMEM_BACKEND_DEVMEM;
	r->base = base;
	r->size = size;
	r->device_memory = true;
	r->own_id = p->regs_page ? (int)(ivshmem_reg_read32((volatile char *)p->regs_page +
							   p->regs_off, 8) & 0xffff)
				 : -1;
	r->vectors = 0;
	r->priv = p;
	return 0;
}
