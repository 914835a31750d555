// SPDX-License-Identifier: MIT
/*
 * lib/backend: uses core, proto, guest.
 *
 * Guest driver backend: /dev/ivshmemN of our ivshmem.ko, the preferred way
 * into an ivshmem device from inside a VM:
 *  - the memory is mapped write-back cacheable (ordinary memory, any
 *    alignment), so device_memory is false;
 *  - doorbells are rung with IVSHMEM_IOCTL_RING;
 *  - every own MSI-X vector gets one pollable fd (IVSHMEM_IOCTL_VECTOR_FD)
 *    that reads as an 8-byte count of interrupts since the last read.
 * The target is a PCI address "DDDD:BB:DD.F" (the node is found in sysfs) or
 * a device node such as /dev/ivshmem0.
 */
#include "backend/backends.h"
#include "core/error.h"

#include "ivshmem/pci.h"
#include "guest/pci_internal.h"

#include <linux/ivshmem.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The driver's ABI (include/uapi/linux/ivshmem.h): these sizes never change in place. */
_Static_assert(sizeof(struct ivshmem_info) == 80, "uapi ivshmem_info size");
_Static_assert(sizeof(struct ivshmem_ring) == 16, "uapi ivshmem_ring size");
_Static_assert(sizeof(struct ivshmem_vector_fd) == 16, "uapi ivshmem_vector_fd size");
_Static_assert(sizeof(struct ivshmem_eventfd) == 16, "uapi ivshmem_eventfd size");

struct driver_priv {
	int fd;
	unsigned int nfds;
	int vector_fds[];	/* one per own vector */
};

static void driver_close(struct ivshmem_region *r)
{
	struct driver_priv *p = r->priv;

	munmap(r->base, r->size);
	for (unsigned int i = 0; i < p->nfds; i++)
		close(p->vector_fds[i]);
	close(p->fd);
	free(p);
}

static int driver_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector)
{
	struct driver_priv *p = r->priv;
	struct ivshmem_ring ring = { .peer = peer, .vector = vector };

	if (ioctl(p->fd, IVSHMEM_IOCTL_RING, &ring) < 0) {
		int err = errno;

		if (err == EINVAL)
			return ivshmem_fail(err, "vector %u out of range (the doorbell carries 8 bits)",
					    vector);
		return ivshmem_fail(err, "ringing peer %u vector %u: %s", peer, vector,
				    err == ENODEV ? "the device was removed" : strerror(err));
	}
	return 0;
}

static int driver_event_fd(struct ivshmem_region *r, unsigned int vector)
{
	struct driver_priv *p = r->priv;

	return p->vector_fds[vector];	/* region.c checked the range */
}

static const struct ivshmem_backend_ops driver_plain_ops = {
	.close = driver_close,
};

static const struct ivshmem_backend_ops driver_doorbell_ops = {
	.notify = driver_notify,
	.event_fd = driver_event_fd,
	.close = driver_close,
};

/* /dev/ivshmemN of PCI device @bdf, from /sys/bus/pci/devices/BDF/ivshmem/. */
static int node_of_bdf(const char *bdf, char *node, size_t len)
{
	char drv[64], dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int ret;

	ret = ivshmem_pci_path(dir, sizeof(dir), bdf, NULL);
	if (ret < 0)
		return ret;
	if (access(dir, F_OK) != 0)
		return ivshmem_fail(ENODEV, "%s: no such PCI device", bdf);
	if (ivshmem_pci_link_name(bdf, "driver", drv, sizeof(drv)) < 0) {
		snprintf(dir, sizeof(dir), "%s/module/ivshmem", ivshmem_pci_sysfs_root());
		if (access(dir, F_OK) != 0)
			return ivshmem_fail(ENODEV, "%s: driver: ivshmem.ko is not loaded (modprobe ivshmem)",
					    bdf);
		return ivshmem_fail(ENODEV, "%s: driver: no driver is bound to the device", bdf);
	}
	if (strcmp(drv, "ivshmem") != 0)
		return ivshmem_fail(EBUSY, "%s: driver: the device is bound to %s, not ivshmem", bdf,
				    drv);
	ret = ivshmem_pci_path(dir, sizeof(dir), bdf, "ivshmem");
	if (ret < 0)
		return ret;
	d = opendir(dir);
	if (!d)
		return ivshmem_fail(ENODEV, "%s: driver: no ivshmemN under %s (%s)", bdf, dir,
				    strerror(errno));
	ret = ivshmem_fail(ENODEV, "%s: driver: no ivshmemN under %s", bdf, dir);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "ivshmem", 7) == 0) {
			snprintf(node, len, "/dev/%s", de->d_name);
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

int ivshmem_driver_open(struct ivshmem_region *r, const char *target,
			const struct ivshmem_open_opts *o)
{
	bool ro = o->flags & IVSHMEM_OPEN_READONLY;
	struct ivshmem_info info;
	struct driver_priv *p;
	char node[PATH_MAX];
	unsigned int nfds;
	void *base;
	int fd, ret;

	if (target[0] == '/') {
		snprintf(node, sizeof(node), "%s", target);
	} else {
		ret = node_of_bdf(target, node, sizeof(node));
		if (ret < 0)
			return ret;
	}
	fd = open(node, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;

		if (err == EACCES || err == EPERM)
			return ivshmem_fail(err, "%s: permission denied (see kernel/99-ivshmem.rules "
					    "for group access)", node);
		if (err == ENOENT)
			return ivshmem_fail(err, "%s: no such device node (is ivshmem.ko loaded?)",
					    node);
		return ivshmem_fail(err, "%s: %s", node, strerror(err));
	}
	if (ioctl(fd, IVSHMEM_IOCTL_INFO, &info) < 0) {
		int err = errno;

		close(fd);
		return ivshmem_fail(err == ENOTTY ? ENODEV : err, "%s: not an ivshmem.ko device (%s)",
				    node, strerror(err));
	}
	if (info.abi_version != IVSHMEM_ABI_VERSION) {
		close(fd);
		return ivshmem_fail(EPROTO, "%s: driver ABI version %u, this library speaks %u",
				    node, info.abi_version, IVSHMEM_ABI_VERSION);
	}
	if (info.size == 0 || info.size > SIZE_MAX) {
		close(fd);
		return ivshmem_fail(EINVAL, "%s: unusable region size %llu", node,
				    (unsigned long long)info.size);
	}
	nfds = (info.flags & IVSHMEM_INFO_DOORBELL) ? info.vectors : 0;
	p = calloc(1, sizeof(*p) + nfds * sizeof(int));
	if (!p) {
		close(fd);
		return ivshmem_fail(ENOMEM, "out of memory");
	}
	p->fd = fd;
	for (; p->nfds < nfds; p->nfds++) {
		struct ivshmem_vector_fd req = {
			.vector = p->nfds,
			.flags = IVSHMEM_VECTOR_FD_NONBLOCK,
		};
		int vfd = ioctl(fd, IVSHMEM_IOCTL_VECTOR_FD, &req);

		if (vfd < 0) {
			ret = ivshmem_fail(errno, "%s: vector %u: %s", node, p->nfds, strerror(errno));
			goto fail;
		}
		p->vector_fds[p->nfds] = vfd;
	}
	base = mmap(NULL, (size_t)info.size, PROT_READ | (ro ? 0 : PROT_WRITE), MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		ret = ivshmem_fail(errno, "%s: mmap: %s", node, strerror(errno));
		goto fail;
	}
	r->ops = nfds ? &driver_doorbell_ops : &driver_plain_ops;
	r->kind = IVSHMEM_BACKEND_DRIVER;
	r->base = base;
	r->size = info.size;
	r->own_id = (int)info.ivposition;
	r->vectors = nfds;
	r->device_memory = false;
	r->priv = p;
	return 0;

fail:
	for (unsigned int i = 0; i < p->nfds; i++)
		close(p->vector_fds[i]);
	close(fd);
	free(p);
	return ret;
}
