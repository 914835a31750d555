/* SPDX-License-Identifier: MIT */
/*
 * libivshmem: one shared-memory region and its doorbells, over any backend.
 *
 * A region is a mapping of the ivshmem memory plus, where the backend has
 * them, a doorbell to ring other peers and one pollable fd per own vector.
 * Upper layers (layout, ring, channel) see only this API.
 *
 * Every call that can fail returns a negative errno value and leaves a
 * human-readable explanation in ivshmem_errmsg() (thread-local).
 */
#ifndef IVSHMEM_REGION_H
#define IVSHMEM_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ivshmem_region;

enum ivshmem_backend {
	IVSHMEM_BACKEND_AUTO = 0,
	IVSHMEM_BACKEND_FILE,	/* host: /dev/shm/NAME, hugetlbfs or any mmap-able file */
	IVSHMEM_BACKEND_SERVER,	/* host: a peer of ivshmem-server (doorbells via eventfd) */
	IVSHMEM_BACKEND_DRIVER,	/* guest: /dev/ivshmemN from ivshmem.ko (cacheable, MSI-X) */
	IVSHMEM_BACKEND_SYSFS,	/* guest: sysfs resource2 + resource0 (uncached, no irqs) */
	IVSHMEM_BACKEND_VFIO,	/* guest: vfio-pci (uncached, MSI-X to eventfd) */
	IVSHMEM_BACKEND_DEVMEM,	/* guest: /dev/mem at the BAR addresses (uncached, no irqs) */
};

/* ivshmem_open_opts.flags */
#define IVSHMEM_OPEN_CREATE	(1u << 0)	/* FILE: create the file if missing */
#define IVSHMEM_OPEN_READONLY	(1u << 1)	/* map read-only where the backend can */
#define IVSHMEM_OPEN_OWNER	(1u << 2)	/* FILE with CREATE: a new file gets @owner */
#define IVSHMEM_OPEN_GROUP	(1u << 3)	/* FILE with CREATE: a new file gets @group */

struct ivshmem_open_opts {
	enum ivshmem_backend backend;	/* AUTO: chosen from the target */
	unsigned int flags;
	uint64_t size;			/* FILE with CREATE: size of a new file */
	/*
	 * FILE with CREATE: the permissions of a file this call creates, set
	 * through its fd before it is sized (so exactly, not under the umask).
	 * Failing to set them (-EPERM: not root, or not in @group) fails the open
	 * and removes the new file. A file that already exists keeps its owner,
	 * group and mode: open never loosens a file it did not create.
	 */
	unsigned int mode;		/* permission bits, at most 0777; 0: 0600 */
	uid_t owner;			/* with IVSHMEM_OPEN_OWNER */
	gid_t group;			/* with IVSHMEM_OPEN_GROUP */
};

/*
 * Open a region. @target selects what to open:
 *   file:PATH, or a path to a regular file       host file backend
 *   server:SOCKET                                 host peer of ivshmem-server
 *   pci:DDDD:BB:DD.F, DDDD:BB:DD.F or BB:DD.F     a guest PCI device by address
 *   index:N                                       the Nth ivshmem device (ivshmem list order)
 *   name:NAME                                     the device whose region header is named NAME
 *   /dev/ivshmemN                                 a device node of our driver
 * A relative path that exists is a path even when it looks like a PCI
 * address; the pci:, index: and name: prefixes always select a device.
 * @opts may be NULL (automatic backend, no flags).
 */
int ivshmem_open(struct ivshmem_region **out, const char *target,
		 const struct ivshmem_open_opts *opts);
void ivshmem_close(struct ivshmem_region *r);

/* Why the last failing call in this thread failed; never NULL. */
const char *ivshmem_errmsg(void);

void *ivshmem_base(const struct ivshmem_region *r);
uint64_t ivshmem_size(const struct ivshmem_region *r);
enum ivshmem_backend ivshmem_backend_of(const struct ivshmem_region *r);
const char *ivshmem_backend_name(enum ivshmem_backend b);
/* Parse a backend name ("file", "server", "driver", ...); -EINVAL if unknown. */
int ivshmem_backend_parse(const char *name, enum ivshmem_backend *out);

/*
 * True when the mapping is uncached or device memory (sysfs, VFIO, /dev/mem):
 * only aligned accesses are safe there, so use ivshmem_read()/ivshmem_write().
 */
bool ivshmem_is_device_memory(const struct ivshmem_region *r);

/* Own peer ID (IVPosition, or the ID the server gave); -1 if the backend has none. */
int ivshmem_own_id(const struct ivshmem_region *r);

/* Number of own interrupt vectors; 0 means no interrupts: poll the memory. */
unsigned int ivshmem_vectors(const struct ivshmem_region *r);

/* Ring vector @vector of peer @peer. -ENOTSUP where the backend has no doorbell. */
int ivshmem_notify(struct ivshmem_region *r, uint16_t peer, uint16_t vector);

/*
 * A pollable fd that becomes readable when own vector @vector fires.
 * Owned by the region: do not close it. Consume with ivshmem_wait() or by
 * reading 8 bytes (an event count: interrupts that arrive close together add up).
 */
int ivshmem_event_fd(struct ivshmem_region *r, unsigned int vector);

/*
 * Wait for own vector @vector (or any vector if @vector < 0) for at most
 * @timeout_ms (-1: forever). Returns 1 and the event count in *@count (may be
 * NULL) when it fired, 0 on timeout, or a negative errno.
 */
int ivshmem_wait(struct ivshmem_region *r, int vector, int timeout_ms, uint64_t *count);

/*
 * Alignment-safe copies between the region and ordinary memory, bounds-checked.
 * -ERANGE outside the region; -ENODEV when the mapping was lost (see
 * ivshmem_check_mapping()): bytes copied from a lost mapping are not returned as good.
 */
int ivshmem_read(const struct ivshmem_region *r, uint64_t offset, void *dst, size_t len);
int ivshmem_write(struct ivshmem_region *r, uint64_t offset, const void *src, size_t len);

/*
 * 0 while all of @r's mapping is backed; -ENODEV and a message once part of it
 * vanished under us (a host file truncated by another process, a guest device
 * removed). The library catches the SIGBUS such an access raises (one
 * process-wide handler, chained to any previous one), maps zero pages over the
 * region and marks it lost, so the access completes instead of killing the
 * process: from then on the region reads as zeros and writes go nowhere. Code
 * that reads the mapping directly calls this after reading to know whether
 * what it read was real; the layout, ring-channel and copy calls do.
 */
int ivshmem_check_mapping(const struct ivshmem_region *r);

/*
 * Peers, for backends that know them (server). Others return -ENOTSUP.
 * The control fd becomes readable when the server sent something; then call
 * ivshmem_next_peer_event() until it returns 0.
 */
enum ivshmem_peer_event_type { IVSHMEM_PEER_JOIN = 1, IVSHMEM_PEER_LEAVE = 2 };
struct ivshmem_peer_event {
	enum ivshmem_peer_event_type type;
	uint16_t peer;
	unsigned int vectors;	/* JOIN: how many vectors we can ring on it */
};
int ivshmem_peer_list(struct ivshmem_region *r, uint16_t *ids, size_t max);
int ivshmem_peer_vectors(struct ivshmem_region *r, uint16_t peer);
int ivshmem_control_fd(struct ivshmem_region *r);
/* 1: *ev filled, 0: nothing pending, <0: error (-ECONNRESET: the server went away). */
int ivshmem_next_peer_event(struct ivshmem_region *r, struct ivshmem_peer_event *ev);

#ifdef __cplusplus
}
#endif

#endif /* IVSHMEM_REGION_H */
