/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * ivshmem.ko user API: /dev/ivshmemN for QEMU's ivshmem-plain and
 * ivshmem-doorbell PCI devices (1af4:1110).
 *
 * The device file:
 *   mmap     the shared memory (BAR2) as write-back cacheable memory, MAP_SHARED
 *            only; offset and length must lie inside the region.
 *   ioctl    the calls below. Every structure has fixed-width fields and
 *            explicit padding; reserved fields must be zero (else -EINVAL).
 *
 * Versioning: IVSHMEM_ABI_VERSION grows when a call or structure changes in a
 * way old users cannot ignore. New calls get new numbers; old ones keep their
 * meaning. Users compare ivshmem_info.abi_version with the version they were
 * built against and refuse a newer major they do not know.
 *
 * After the device is unplugged every call returns -ENODEV, existing mappings
 * are revoked (a later access gets SIGBUS) and vector fds report
 * EPOLLERR | EPOLLHUP.
 */
#ifndef _UAPI_LINUX_IVSHMEM_H
#define _UAPI_LINUX_IVSHMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define IVSHMEM_ABI_VERSION	1

/* ivshmem_info.flags */
#define IVSHMEM_INFO_DOORBELL	0x00000001U	/* doorbell register and MSI-X vectors */

/* IVSHMEM_IOCTL_INFO: what the device is. */
struct ivshmem_info {
	__u32 abi_version;	/* IVSHMEM_ABI_VERSION of the driver */
	__u32 flags;		/* IVSHMEM_INFO_* */
	__u64 size;		/* bytes of shared memory (BAR2), the mmap limit */
	__u32 ivposition;	/* own peer ID (IVPosition register); 0 on plain */
	__u32 vectors;		/* own MSI-X vectors with an interrupt; 0 on plain */
	__u32 index;		/* N of /dev/ivshmemN */
	__u32 reserved0;
	char pci_addr[16];	/* "DDDD:BB:DD.F", NUL-terminated */
	__u64 reserved[4];
};

/*
 * IVSHMEM_IOCTL_RING: ring vector @vector of peer @peer (doorbell devices).
 * -EINVAL: peer > 65535, vector > 255 (QEMU keeps 8 bits) or reserved != 0.
 * -EOPNOTSUPP: plain device. A peer or vector the device does not know is
 * silently dropped by QEMU, so success means "written", not "delivered".
 */
struct ivshmem_ring {
	__u32 peer;
	__u32 vector;
	__u64 reserved;
};

/*
 * IVSHMEM_IOCTL_VECTOR_FD: a new fd (the ioctl's return value) that counts
 * interrupts on own vector @vector. It is O_CLOEXEC, plus O_NONBLOCK when
 * @flags has IVSHMEM_VECTOR_FD_NONBLOCK.
 *   poll:  EPOLLIN when interrupts arrived since the last read on this fd.
 *   read:  8 bytes, the number of interrupts since the last read (>= 1);
 *          blocks, or -EAGAIN when non-blocking, while there are none.
 * Every vector fd counts on its own: two readers both see every interrupt.
 * Interrupts close together add up into one count, like an eventfd counter.
 * -EINVAL: vector >= ivshmem_info.vectors or unknown flags.
 * -EOPNOTSUPP: plain device.
 */
#define IVSHMEM_VECTOR_FD_NONBLOCK	0x00000001U

struct ivshmem_vector_fd {
	__u32 vector;
	__u32 flags;
	__u64 reserved;
};

/*
 * IVSHMEM_IOCTL_BIND_EVENTFD: signal eventfd @fd (eventfd_signal(ctx, 1))
 * whenever own vector @vector fires; @fd == -1 unbinds. One eventfd per
 * vector and device; binding again replaces it. The binding ends when the
 * device file that made it is closed.
 * -EINVAL: bad vector, @fd not an eventfd or < -1, reserved != 0.
 * -EBADF: @fd is not open. -EBUSY: another open file holds the binding.
 * -EOPNOTSUPP: plain device.
 */
struct ivshmem_eventfd {
	__u32 vector;
	__s32 fd;
	__u64 reserved;
};

#define IVSHMEM_IOCTL_MAGIC	0xB9

#define IVSHMEM_IOCTL_INFO		_IOR(IVSHMEM_IOCTL_MAGIC, 0x00, struct ivshmem_info)
#define IVSHMEM_IOCTL_RING		_IOW(IVSHMEM_IOCTL_MAGIC, 0x01, struct ivshmem_ring)
#define IVSHMEM_IOCTL_VECTOR_FD		_IOW(IVSHMEM_IOCTL_MAGIC, 0x02, struct ivshmem_vector_fd)
#define IVSHMEM_IOCTL_BIND_EVENTFD	_IOW(IVSHMEM_IOCTL_MAGIC, 0x03, struct ivshmem_eventfd)

#endif /* _UAPI_LINUX_IVSHMEM_H */
