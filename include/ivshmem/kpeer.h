/* SPDX-License-Identifier: MIT */
/*
 * A kernel peer: hands an ivshmem-server region and its doorbells to the host
 * kernel's ivshmem_host.ko (/dev/ivshmem-host, include/uapi/linux/ivshmem_host.h),
 * so that host-kernel modules become one more peer (docs/host-kernel.md).
 * Used by `ivshmem-server --kernel-peer NAME` and by `ivshmem-kernel-peer`.
 *
 * The region lives as long as the returned device fd: closing it (or the
 * process exiting) removes it from the kernel. Every call returns a negative
 * errno and leaves a sentence in ivshmem_errmsg() that says what to do.
 */
#ifndef IVSHMEM_KPEER_H
#define IVSHMEM_KPEER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IVSHMEM_KPEER_DEVICE		"/dev/ivshmem-host"
#define IVSHMEM_KPEER_MAX_VECTORS	64	/* the module's limit */

/*
 * Open the device and attach the region in @shm_fd (a memfd or a /dev/shm
 * file, open read-write) under @name, as peer @own_id with @vectors vectors
 * per peer. @require_seals: refuse a memfd without F_SEAL_SHRINK|F_SEAL_GROW.
 * Returns the device fd (close-on-exec), or -errno: -ENOENT (the module is
 * not loaded), -EACCES (no permission on the device), -EEXIST (@name is
 * taken), -ENOMEM (RLIMIT_MEMLOCK or memory), -EPROTO (the module is too
 * old), -EINVAL (not shmem memory, or a bad name or count), ...
 */
int ivshmem_kpeer_attach(const char *name, int shm_fd, uint16_t own_id, unsigned int vectors,
			 bool require_seals);

/* Our own vectors: fds[V] is the eventfd that rings our vector V. */
int ivshmem_kpeer_bind_own(int dev, const int *fds, unsigned int n);

/*
 * Peer @peer joined: bind its eventfds (fds[V] rings its vector V; at most the
 * attached vector count), then report the join, so a host module may ring it
 * from its peer callback.
 */
int ivshmem_kpeer_join(int dev, uint16_t peer, const int *fds, unsigned int n);

/* Peer @peer left: the module unbinds its eventfds and tells host modules. */
int ivshmem_kpeer_leave(int dev, uint16_t peer);

#ifdef __cplusplus
}
#endif

#endif
