// SPDX-License-Identifier: MIT
/*
 * lib/proto: uses core.
 *
 * The kernel peer (include/ivshmem/kpeer.h): the user half of
 * ivshmem_host.ko's ioctls (include/uapi/linux/ivshmem_host.h), with the
 * errors a person can act on. The one place where ivshmem-server
 * --kernel-peer and ivshmem-kernel-peer talk to the module.
 */
#define _GNU_SOURCE
#include "ivshmem/kpeer.h"
#include "core/error.h"

#include <linux/ivshmem_host.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_device(void)
{
	int dev = open(IVSHMEM_KPEER_DEVICE, O_RDWR | O_CLOEXEC);
	int err = errno;

	if (dev >= 0)
		return dev;
	if (err == ENOENT || err == ENXIO || err == ENODEV)
		return ivshmem_fail(ENOENT, "%s: %s: the host-kernel peer module is not loaded "
				    "(modprobe ivshmem_host)", IVSHMEM_KPEER_DEVICE, strerror(err));
	if (err == EACCES || err == EPERM)
		return ivshmem_fail(EACCES, "%s: %s: the device is root's, mode 0600; run as root "
				    "or give it to this user with a udev rule", IVSHMEM_KPEER_DEVICE,
				    strerror(err));
	return ivshmem_fail(err, "%s: %s", IVSHMEM_KPEER_DEVICE, strerror(err));
}

static int attach_error(int err, const char *name, int shm_fd)
{
	struct rlimit rl = { 0, 0 };
	struct stat st = { 0 };

	fstat(shm_fd, &st);
	switch (err) {
	case EEXIST:
		return ivshmem_fail(err, "kernel peer '%s': that name is already attached (another "
				    "server or ivshmem-kernel-peer holds it)", name);
	case ENOMEM:
		getrlimit(RLIMIT_MEMLOCK, &rl);
		return ivshmem_fail(err, "kernel peer '%s': cannot pin %lld bytes: the locked-memory "
				    "limit is %llu bytes (raise it: ulimit -l, LimitMEMLOCK=) or "
				    "memory is short", name, (long long)st.st_size,
				    (unsigned long long)rl.rlim_cur);
	case EFBIG:
		return ivshmem_fail(err, "kernel peer '%s': %lld bytes is larger than the module "
				    "takes (16 GiB)", name, (long long)st.st_size);
	case EPERM:
		return ivshmem_fail(err, "kernel peer '%s': the memory is not a memfd sealed against "
				    "resizing (F_SEAL_SHRINK|F_SEAL_GROW)", name);
	case EACCES:
		return ivshmem_fail(err, "kernel peer '%s': the memory is not open for reading and "
				    "writing", name);
	case EINVAL:
		return ivshmem_fail(err, "kernel peer '%s': the module refuses this memory: only "
				    "shmem (memfd, /dev/shm, tmpfs) with a page-aligned size, not "
				    "hugetlbfs", name);
	case EPROTO:
		return ivshmem_fail(err, "kernel peer '%s': ivshmem_host.ko is older than this "
				    "program (ABI %d needed): update the module", name,
				    IVSHMEM_HOST_ABI_VERSION);
	default:
		return ivshmem_fail(err, "kernel peer '%s': attach: %s", name, strerror(err));
	}
}

int ivshmem_kpeer_attach(const char *name, int shm_fd, uint16_t own_id, unsigned int vectors,
			 bool require_seals)
{
	struct ivshmem_host_attach a = {
		.abi_version = IVSHMEM_HOST_ABI_VERSION,
		.flags = require_seals ? IVSHMEM_HOST_REQUIRE_SEALS : 0,
		.fd = shm_fd,
		.own_id = own_id,
		.nvectors = vectors,
	};
	int dev, err;

	if (!name || !*name || strlen(name) >= sizeof(a.name))
		return ivshmem_fail(EINVAL, "kernel peer name '%s': 1 to %zu bytes", name ? name : "",
				    sizeof(a.name) - 1);
	if (vectors < 1 || vectors > IVSHMEM_KPEER_MAX_VECTORS)
		return ivshmem_fail(EINVAL, "kernel peer '%s': %u vectors; the module takes 1 to %d",
				    name, vectors, IVSHMEM_KPEER_MAX_VECTORS);
	memcpy(a.name, name, strlen(name));
	dev = open_device();
	if (dev < 0)
		return dev;
	if (ioctl(dev, IVSHMEM_HOST_IOCTL_ATTACH, &a) < 0) {
		err = errno;
		close(dev);
		return attach_error(err, name, shm_fd);
	}
	return dev;
}

static int bind_peer(int dev, uint16_t peer, unsigned int vector, int fd)
{
	struct ivshmem_host_bind_peer b = { .peer = peer, .vector = vector, .fd = fd };

	if (ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_PEER, &b) < 0)
		return ivshmem_fail(errno, "kernel peer: binding vector %u of peer %u: %s", vector,
				    peer, strerror(errno));
	return 0;
}

static int peer_change(int dev, uint16_t peer, uint32_t event)
{
	struct ivshmem_host_peer_change c = { .peer = peer, .event = event };

	if (ioctl(dev, IVSHMEM_HOST_IOCTL_PEER, &c) < 0)
		return ivshmem_fail(errno, "kernel peer: reporting that peer %u %s: %s", peer,
				    event == IVSHMEM_HOST_PEER_JOINED ? "joined" : "left",
				    strerror(errno));
	return 0;
}

int ivshmem_kpeer_bind_own(int dev, const int *fds, unsigned int n)
{
	for (unsigned int v = 0; v < n; v++) {
		struct ivshmem_host_bind_own b = { .vector = v, .fd = fds[v] };

		if (ioctl(dev, IVSHMEM_HOST_IOCTL_BIND_OWN, &b) < 0)
			return ivshmem_fail(errno, "kernel peer: binding own vector %u: %s", v,
					    strerror(errno));
	}
	return 0;
}

int ivshmem_kpeer_join(int dev, uint16_t peer, const int *fds, unsigned int n)
{
	int ret;

	for (unsigned int v = 0; v < n; v++) {
		ret = bind_peer(dev, peer, v, fds[v]);
		if (ret < 0)
			return ret;
	}
	return peer_change(dev, peer, IVSHMEM_HOST_PEER_JOINED);
}

int ivshmem_kpeer_leave(int dev, uint16_t peer)
{
	return peer_change(dev, peer, IVSHMEM_HOST_PEER_LEFT);
}
