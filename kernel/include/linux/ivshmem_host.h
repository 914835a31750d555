/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-kernel API of ivshmem_host.ko, for host modules that share memory and
 * doorbells with guests. It mirrors the guest driver's <linux/ivshmem.h>:
 *
 *	struct ivshmem_host_region *r = ivshmem_host_get("steal");
 *
 *	if (IS_ERR(r))
 *		return PTR_ERR(r);
 *	ivshmem_host_set_remove_callback(r, my_remove, my_data);
 *	ivshmem_host_region(r, &addr, &size);
 *	ivshmem_host_set_callback(r, 0, my_doorbell, my_data);
 *	ivshmem_host_ring(r, peer, 0);
 *	...
 *	ivshmem_host_set_callback(r, 0, NULL, NULL);
 *	ivshmem_host_set_remove_callback(r, NULL, NULL);
 *	ivshmem_host_put(r);
 *
 * A region is attached by a user process through /dev/ivshmem-host
 * (include/uapi/linux/ivshmem_host.h) and lives as long as the file that
 * attached it, or until its memory file loses pages under it (a hole
 * punched, a shrink). Its address is a write-back kernel mapping (vmap) of the
 * pinned shmem pages, valid until the region is removed: a user registers a
 * remove callback and stops touching the region when it runs. After removal
 * every call returns -ENODEV; the reference stays valid until put.
 */
#ifndef _LINUX_IVSHMEM_HOST_H
#define _LINUX_IVSHMEM_HOST_H

#include <linux/types.h>
#include <uapi/linux/ivshmem_host.h>

struct ivshmem_host_region;

/*
 * Runs when own vector @vector is signalled, from the eventfd's wake-up:
 * atomic context, interrupts off. Keep it short (schedule work for anything
 * else) and never sleep. ivshmem_host_ring() may be called from it: the ring
 * is then deferred to a work item.
 */
typedef void (*ivshmem_host_vector_cb)(void *data, unsigned int vector);

/*
 * Runs in process context when the region is being removed, before unmapping:
 * from the release of the attaching file, or from a work item when the
 * file's pages stopped being the region's (a hole punched in it, or the file
 * shrunk). May sleep and may call every other function here.
 */
typedef void (*ivshmem_host_remove_cb)(void *data);

/*
 * Runs in process context (the user process reporting it through
 * IVSHMEM_HOST_IOCTL_PEER, or the caller of ivshmem_host_set_peer_callback())
 * when peer @peer joined (@joined true) or left. A joining peer's eventfds
 * are bound before the join is reported, so ivshmem_host_ring() can reach it
 * from here; a leaving peer's are already unbound. May sleep; may call every
 * function here except ivshmem_host_set_peer_callback() (it would deadlock).
 * Calls for one region never run concurrently.
 */
typedef void (*ivshmem_host_peer_cb)(void *data, u16 peer, bool joined);

/*
 * ivshmem_host_get() - a reference to the attached region called @name.
 * Returns the region, or ERR_PTR(-ENODEV) if none is attached under that name.
 * Pair it with ivshmem_host_put().
 */
struct ivshmem_host_region *ivshmem_host_get(const char *name);
void ivshmem_host_put(struct ivshmem_host_region *region);

/* The kernel mapping and size of @region. 0, or -ENODEV after removal. */
int ivshmem_host_region(struct ivshmem_host_region *region, void **addr, u64 *size);
/* Fills @info as IVSHMEM_HOST_IOCTL_INFO does. 0, or -ENODEV after removal. */
int ivshmem_host_info(struct ivshmem_host_region *region, struct ivshmem_host_info *info);
/* Our peer ID (0..65535), or -ENODEV after removal. */
int ivshmem_host_own_id(struct ivshmem_host_region *region);

/*
 * ivshmem_host_ring() - signal vector @vector of peer @peer. Any context; with
 * interrupts off (as in a vector callback) the signal is deferred to a work item.
 * Returns 0, -ENODEV after removal, -EINVAL if out of range, -ENOENT if user
 * space bound no eventfd for (@peer, @vector).
 */
int ivshmem_host_ring(struct ivshmem_host_region *region, u16 peer, u16 vector);

/*
 * One callback per own vector and region; @cb NULL clears it, and once that
 * returns the old callback is not running. Returns 0, -EBUSY if taken,
 * -EINVAL if @vector is out of range, -ENODEV after removal. Process context.
 */
int ivshmem_host_set_callback(struct ivshmem_host_region *region, unsigned int vector,
			      ivshmem_host_vector_cb cb, void *data);
/*
 * One remove callback per region; -EBUSY if taken. @cb NULL clears it, and
 * once that returns the old callback is not running (it may be cleared from
 * inside the callback); do not hold a lock the callback takes while clearing
 * it. Process context.
 */
int ivshmem_host_set_remove_callback(struct ivshmem_host_region *region,
				     ivshmem_host_remove_cb cb, void *data);

/*
 * ivshmem_host_set_peer_callback() - one peer callback per region; @cb NULL
 * clears it, and once that returns the old callback is not running. Setting
 * it first runs @cb (joined true) for every peer already joined, in ID order,
 * before it returns, with no join or leave in between: a user misses none and
 * sees none twice. Returns 0, -EBUSY if taken, -ENODEV after removal.
 * Process context. Removal clears it without calling it: the remove callback
 * is the last word.
 */
int ivshmem_host_set_peer_callback(struct ivshmem_host_region *region,
				   ivshmem_host_peer_cb cb, void *data);

#endif /* _LINUX_IVSHMEM_HOST_H */
