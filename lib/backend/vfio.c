// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Guest VFIO backend: the device bound to vfio-pci, BAR2 mmap'd through the
 * VFIO device fd, registers accessed with pread/pwrite on BAR0 (each one
 * aligned 32-bit access), and MSI-X vectors routed to eventfds with
 * VFIO_DEVICE_SET_IRQS - the only userspace path to doorbell interrupts
 * without our driver.
 *
 * Limits:
 *  - root (or access to /dev/vfio/GROUP) and an IOMMU: Debian's 6.1 kernel
 *    has no VFIO no-IOMMU mode, so a guest needs QEMU's emulated IOMMU
 *    (-machine q35 -device intel-iommu, guest intel_iommu=on);
 *  - the device must already be bound to vfio-pci (we never rebind it
 *    behind the user's back; docs/guest.md shows the three sysfs writes);
 *  - vfio-pci maps BARs uncached: the region is device memory;
 *  - only one process can own the VFIO group at a time.
 */
#include "backend/backends.h"
#include "core/error.h"

#include "ivshmem/iomem.h"
#include "guest/pci_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_VECTORS 64	/* the reference server's maximum; QEMU allows no more in practice */

struct vfio_priv {
	struct ivshmem_guest_head head;	/* first: see pci_internal.h */
	int container, group, device;
	uint64_t regs_offset;	/* BAR0 region offset in the device fd */
	unsigned int nvec;
	int efd[MAX_VECTORS];
};

static void vfio_release(struct vfio_priv *p)
{
	for (unsigned int i = 0; i < p->nvec; i++)
		if (p->efd[i] >= 0)
			close(p->efd[i]);
	if (p->device >= 0)
		close(p->device);
	if (p->group >= 0)
		close(p->group);
	if (p->container >= 0)
		close(p->container);
	free(p);
}

static void vfio_close(struct ivshmem_region *r)
{
	struct vfio_priv *p = r->priv;

	munmap(r->base, r->size);
	if (p->nvec) {
		/* Route the vectors away from our eventfds before closing them. */
		struct vfio_irq_set off = {
			.argsz = sizeof(off),
			.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			.index = VFIO_PCI_MSIX_IRQ_INDEX,
		};

		ioctl(p->device, VFIO_DEVICE_SET_IRQS, &off);
	}
	vfio_release(p);
}

static int reg_read32(struct vfio_priv *p, unsigned int off, uint32_t *val)
{
	uint8_t b[4];

	/* vfio-pci turns an aligned 4-byte pread into one 32-bit ioread. */
	if (pread(p->device, b, 4, (off_t)(p->regs_offset + off)) != 4)
		return -errno;
	*val = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

static int vfio_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	struct vfio_priv *p = r->priv;
	uint32_t v = (uint32_t)peer << 16 | vector;
	uint8_t b[4] = { v & 0xff, v >> 8 & 0xff, v >> 16 & 0xff, v >> 24 };

	if (vector > 0xff)
		return ivshmem_fail(EINVAL, "vector %u out of range (the device takes 0..255)", vector);
	if (pwrite(p->device, b, 4, (off_t)(p->regs_offset + 12)) != 4)
		return ivshmem_fail(errno, "vfio: writing the doorbell: %s", strerror(errno));
	return 0;
}

static int vfio_event_fd(struct ivshmem_region *r, unsigned int vector)
{
	struct vfio_priv *p = r->priv;

	return p->efd[vector];
}

static const struct ivshmem_backend_ops vfio_ops = {
	.notify = vfio_notify,
	.event_fd = vfio_event_fd,
	.close = vfio_close,
};

static int open_dev_node(const char *path, const char *what)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == EACCES || errno == EPERM)
		return ivshmem_fail(errno, "vfio: %s: not root (no access to %s)", path, what);
	if (errno == EBUSY)
		return ivshmem_fail(EBUSY, "vfio: %s: busy (another process owns this VFIO group)",
				    path);
	if (errno == ENOENT)
		return ivshmem_fail(ENOENT, "vfio: %s is missing (vfio-pci module not loaded?)",
				    path);
	return ivshmem_fail(errno, "vfio: %s: %s", path, strerror(errno));
}

/* Bus mastering lets the device's MSI-X writes through; QEMU drops them otherwise. */
static int enable_bus_master(struct vfio_priv *p)
{
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	uint16_t cmd;

	if (ioctl(p->device, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0)
		return -errno;
	if (pread(p->device, &cmd, 2, (off_t)cfg.offset + 4) != 2)
		return -errno;
	cmd |= 0x0006;	/* memory space + bus master (the PCI command register is little-endian) */
	if (pwrite(p->device, &cmd, 2, (off_t)cfg.offset + 4) != 2)
		return -errno;
	return 0;
}

static int setup_irqs(struct vfio_priv *p, const char *bdf)
{
	struct vfio_irq_info info = { .argsz = sizeof(info), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	/* struct vfio_irq_set ends in a flexible array: the eventfds follow it. */
	union {
		struct vfio_irq_set set;
		uint8_t bytes[sizeof(struct vfio_irq_set) + MAX_VECTORS * sizeof(int32_t)];
	} req;
	int32_t fds[MAX_VECTORS];

	if (ioctl(p->device, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0)
		return ivshmem_fail(errno, "vfio: %s: GET_IRQ_INFO: %s", bdf, strerror(errno));
	if (info.count == 0)
		return 0;	/* ivshmem-plain: no MSI-X */
	p->nvec = info.count > MAX_VECTORS ? MAX_VECTORS : info.count;
	for (unsigned int i = 0; i < p->nvec; i++)
		p->efd[i] = -1;
	for (unsigned int i = 0; i < p->nvec; i++) {
		p->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[i] < 0)
			return ivshmem_fail(errno, "vfio: eventfd: %s", strerror(errno));
		fds[i] = p->efd[i];
	}
	memset(&req.set, 0, sizeof(req.set));
	req.set.argsz = (uint32_t)(sizeof(req.set) + p->nvec * sizeof(int32_t));
	req.set.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	req.set.index = VFIO_PCI_MSIX_IRQ_INDEX;
	req.set.start = 0;
	req.set.count = p->nvec;
	memcpy(req.bytes + sizeof(req.set), fds, p->nvec * sizeof(int32_t));
	if (ioctl(p->device, VFIO_DEVICE_SET_IRQS, &req) < 0)
		return ivshmem_fail(errno, "vfio: %s: routing %u MSI-X vectors to eventfds: %s", bdf,
				    p->nvec, strerror(errno));
	return 0;
}

int ivshmem_vfio_open(struct ivshmem_region *r, const char *bdf, const struct ivshmem_open_opts *o)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_region_info bar2 = { .argsz = sizeof(bar2), .index = VFIO_PCI_BAR2_REGION_INDEX };
	struct vfio_region_info bar0 = { .argsz = sizeof(bar0), .index = VFIO_PCI_BAR0_REGION_INDEX };
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	char drv[64], group[32], path[64];
	struct vfio_priv *p;
	uint32_t ivpos = 0;
	void *base;
	int ret;

	ivshmem_pci_link_name(bdf, "driver", drv, sizeof(drv));
	if (strcmp(drv, "vfio-pci") != 0) {
		if (drv[0])
			return ivshmem_fail(EBUSY, "vfio: %s is bound to '%s', not vfio-pci "
					    "(see docs/guest.md to rebind it)", bdf, drv);
		return ivshmem_fail(ENODEV, "vfio: %s is not bound to vfio-pci (see docs/guest.md)",
				    bdf);
	}
	if (ivshmem_pci_link_name(bdf, "iommu_group", group, sizeof(group)) < 0)
		return ivshmem_fail(ENODEV, "vfio: %s has no IOMMU group (no IOMMU: this kernel "
				    "has no VFIO no-IOMMU mode)", bdf);
	p = calloc(1, sizeof(*p));
	if (!p)
		return ivshmem_fail(ENOMEM, "out of memory");
	p->container = p->group = p->device = -1;
	ivshmem_guest_head_init(&p->head, bdf);

	p->container = open_dev_node("/dev/vfio/vfio", "the VFIO container");
	if (p->container < 0) {
		ret = p->container;
		goto fail;
	}
	if (ioctl(p->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		ret = ivshmem_fail(EINVAL, "vfio: unknown VFIO API version");
		goto fail;
	}
	snprintf(path, sizeof(path), "/dev/vfio/%s", group);
	p->group = open_dev_node(path, "the VFIO group");
	if (p->group < 0) {
		ret = p->group;
		goto fail;
	}
	if (ioctl(p->group, VFIO_GROUP_GET_STATUS, &status) < 0 ||
	    !(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		ret = ivshmem_fail(EBUSY, "vfio: IOMMU group %s is not viable (bind every device in it "
			     "to vfio-pci)", group);
		goto fail;
	}
	if (ioctl(p->group, VFIO_GROUP_SET_CONTAINER, &p->container) < 0) {
		ret = ivshmem_fail(errno, "vfio: group %s: SET_CONTAINER: %s", group, strerror(errno));
		goto fail;
	}
	if (ioctl(p->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
	    ioctl(p->container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		ret = ivshmem_fail(errno, "vfio: SET_IOMMU (type1): %s", strerror(errno));
		goto fail;
	}
	p->device = ioctl(p->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (p->device < 0) {
		ret = ivshmem_fail(errno, "vfio: %s: GET_DEVICE_FD: %s", bdf, strerror(errno));
		goto fail;
	}
	if (ioctl(p->device, VFIO_DEVICE_GET_REGION_INFO, &bar2) < 0 || bar2.size == 0) {
		ret = ivshmem_fail(ENODEV, "vfio: %s: no BAR2 region", bdf);
		goto fail;
	}
	if (!(bar2.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		ret = ivshmem_fail(ENOTSUP, "vfio: %s: vfio-pci does not allow mmap of BAR2", bdf);
		goto fail;
	}
	if (ioctl(p->device, VFIO_DEVICE_GET_REGION_INFO, &bar0) < 0 || bar0.size < 16) {
		ret = ivshmem_fail(ENODEV, "vfio: %s: no BAR0 (registers) region", bdf);
		goto fail;
	}
	p->regs_offset = bar0.offset;
	ret = enable_bus_master(p);
	if (ret < 0) {
		ret = ivshmem_fail(-ret, "vfio: %s: enabling bus mastering: %s", bdf, strerror(-ret));
		goto fail;
	}
	ret = setup_irqs(p, bdf);
	if (ret < 0)
		goto fail;
	base = mmap(NULL, bar2.size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, p->device,
		    (off_t)bar2.offset);
	if (base == MAP_FAILED) {
		ret = ivshmem_fail(errno, "vfio: %s: mmap BAR2: %s", bdf, strerror(errno));
		goto fail;
	}
	r->ops = &vfio_ops;
	r->kind = IVSHMEM_BACKEND_VFIO;
	r->base = base;
	r->size = bar2.size;
	r->device_memory = true;
	r->own_id = reg_read32(p, 8, &ivpos) == 0 ? (int)(ivpos & 0xffff) : -1;
	r->vectors = p->nvec;
	r->priv = p;
	return 0;
fail:
	vfio_release(p);
	return ret;
}
