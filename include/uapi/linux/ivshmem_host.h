/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * ivshmem_host.ko user API: /dev/ivshmem-host makes the HOST kernel one more
 * peer of an ivshmem region, with no change to QEMU or KVM.
 *
 * Each open file of /dev/ivshmem-host holds at most one region:
 *   ATTACH     hands over the region's shmem/memfd fd (what ivshmem-server
 *              hands out): its pages are pinned and mapped write-back in the
 *              kernel, where host modules reach them through
 *              <linux/ivshmem_host.h>.
 *   BIND_PEER  gives the eventfd of another peer's vector; RING (or a host
 *              module) signals it. Under KVM that eventfd is QEMU's irqfd, so
 *              a ring becomes an MSI-X interrupt in the guest.
 *   BIND_OWN   gives one of our own eventfds; the module waits on it from a
 *              wait-queue callback (as KVM's irqfd does), so a guest's doorbell
 *              reaches host-kernel code (with ioeventfd=on under KVM it never
 *              leaves the kernel).
 *
 *   PEER       reports that a peer joined or left (as the server announced
 *              it); a leave also unbinds that peer's eventfds. Host modules
 *              hear of it through their peer callback.
 *
 * Lifetime: a region lives exactly as long as the file that attached it,
 * or until the file's pages stop being the region's (a hole punched in it,
 * or the file shrunk below the region's size): then it is removed at once,
 * and every later call on the attaching file fails with ENODEV.
 * On removal the region's remove callback runs, every eventfd is unbound,
 * and the pages are dirtied and unpinned. Pinned pages are
 * charged to the attaching process's locked memory (RLIMIT_MEMLOCK, unless it
 * has CAP_IPC_LOCK).
 *
 * Every structure has fixed-width fields and explicit padding; reserved fields
 * and unknown flags must be zero (else -EINVAL).
 *
 * Versioning: IVSHMEM_HOST_ABI_VERSION grows when a call is added or a call
 * or structure changes in a way old users cannot ignore. ATTACH takes the version the caller was
 * built against and refuses a newer one than the module knows (-EPROTO).
 */
#ifndef _UAPI_LINUX_IVSHMEM_HOST_H
#define _UAPI_LINUX_IVSHMEM_HOST_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* 1: the first slice; 2: adds IVSHMEM_HOST_IOCTL_PEER. The module accepts 1 and 2. */
#define IVSHMEM_HOST_ABI_VERSION	2

#define IVSHMEM_HOST_NAME_LEN		32	/* with the terminating NUL */
#define IVSHMEM_HOST_MAX_VECTORS	64	/* as ivshmem-server's -n */
#define IVSHMEM_HOST_MAX_PEER		65535

/* ivshmem_host_attach.flags */
/* refuse a memfd that lacks F_SEAL_SHRINK and F_SEAL_GROW (and any non-memfd) */
#define IVSHMEM_HOST_REQUIRE_SEALS	0x00000001U

/*
 * IVSHMEM_HOST_IOCTL_ATTACH: attach the region in shmem/memfd file @fd.
 *   @abi_version  in: IVSHMEM_HOST_ABI_VERSION
 *   @flags        in: IVSHMEM_HOST_REQUIRE_SEALS or 0
 *   @fd           in: the region; open for reading and writing
 *   @own_id       in: our peer ID (0..65535), as the server assigned it
 *   @nvectors     in: vectors per peer (1..64), the server's -n
 *   @size         out: the region's size in bytes (the file's size)
 *   @name         in: NUL-terminated, unique among attached regions; host
 *                 modules find the region by it
 * Errors: EBUSY (this file already holds a region), EEXIST (name taken),
 * EBADF, EINVAL (not shmem, size 0 or not page-aligned, bad field), EACCES
 * (fd not open read-write), EPERM (seals required but missing), EPROTO,
 * ENOMEM (including RLIMIT_MEMLOCK), EFBIG (over 16 GiB).
 */
struct ivshmem_host_attach {
	__u32 abi_version;
	__u32 flags;
	__s32 fd;
	__u32 own_id;
	__u32 nvectors;
	__u32 reserved;
	__u64 size;
	char name[IVSHMEM_HOST_NAME_LEN];
};

/*
 * IVSHMEM_HOST_IOCTL_BIND_PEER: RING(@peer, @vector) signals eventfd @fd.
 * @fd < 0 unbinds. A new bind replaces the old one. Errors: ENODEV (no
 * region), EINVAL (@vector >= nvectors, @peer > 65535, not an eventfd),
 * EBADF.
 */
struct ivshmem_host_bind_peer {
	__u32 peer;
	__u32 vector;
	__s32 fd;
	__u32 reserved;
};

/*
 * IVSHMEM_HOST_IOCTL_BIND_OWN: wait on eventfd @fd for own vector @vector;
 * each signal runs the vector's in-kernel callback (if any) and is counted
 * in ivshmem_host_info.own_events. @fd < 0 unbinds. A new bind replaces the
 * old one. Errors as BIND_PEER.
 */
struct ivshmem_host_bind_own {
	__u32 vector;
	__s32 fd;
};

/*
 * IVSHMEM_HOST_IOCTL_RING: signal the eventfd bound to (@peer, @vector).
 * Errors: ENODEV (no region), EINVAL (out of range), ENOENT (not bound).
 */
struct ivshmem_host_ring {
	__u32 peer;
	__u32 vector;
};

/* IVSHMEM_HOST_IOCTL_INFO: the region this file holds. ENODEV if none. */
struct ivshmem_host_info {
	__u32 abi_version;	/* IVSHMEM_HOST_ABI_VERSION of the module */
	__u32 flags;		/* the ATTACH flags */
	__u32 own_id;
	__u32 nvectors;
	__u64 size;
	__u64 own_events;	/* own-vector signals seen, all vectors */
	char name[IVSHMEM_HOST_NAME_LEN];
};

/* ivshmem_host_peer_change.event */
#define IVSHMEM_HOST_PEER_JOINED	1
#define IVSHMEM_HOST_PEER_LEFT		2

/*
 * IVSHMEM_HOST_IOCTL_PEER (ABI 2): peer @peer joined or left, as the server
 * announced it. Bind a joining peer's eventfds (BIND_PEER) before reporting
 * the join, so that a host module can ring it from its peer callback.
 *   JOINED  marks @peer joined and runs the peer callback.
 *   LEFT    unbinds every eventfd bound for @peer, marks it gone and runs the
 *           peer callback.
 * Errors: ENODEV (no region, or removed), EINVAL (unknown event, @peer >
 * 65535 or our own ID, a reserved field not zero), EEXIST (JOINED: already
 * joined), ENOENT (LEFT: not joined; nothing changes).
 */
struct ivshmem_host_peer_change {
	__u32 peer;
	__u32 event;
	__u32 reserved[2];
};

#define IVSHMEM_HOST_IOCTL_MAGIC	0xB9

#define IVSHMEM_HOST_IOCTL_ATTACH \
	_IOWR(IVSHMEM_HOST_IOCTL_MAGIC, 0x40, struct ivshmem_host_attach)
#define IVSHMEM_HOST_IOCTL_BIND_PEER \
	_IOW(IVSHMEM_HOST_IOCTL_MAGIC, 0x41, struct ivshmem_host_bind_peer)
#define IVSHMEM_HOST_IOCTL_BIND_OWN \
	_IOW(IVSHMEM_HOST_IOCTL_MAGIC, 0x42, struct ivshmem_host_bind_own)
#define IVSHMEM_HOST_IOCTL_RING \
	_IOW(IVSHMEM_HOST_IOCTL_MAGIC, 0x43, struct ivshmem_host_ring)
#define IVSHMEM_HOST_IOCTL_INFO \
	_IOR(IVSHMEM_HOST_IOCTL_MAGIC, 0x44, struct ivshmem_host_info)
#define IVSHMEM_HOST_IOCTL_PEER \
	_IOW(IVSHMEM_HOST_IOCTL_MAGIC, 0x45, struct ivshmem_host_peer_change)

#endif /* _UAPI_LINUX_IVSHMEM_HOST_H */
