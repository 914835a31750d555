// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_host.ko's peers: user space reports joins and leaves as the server
 * announces them (IVSHMEM_HOST_IOCTL_PEER); host modules hear of them through
 * one peer callback per region, in process context.
 *
 * The region's @peer_lock is held around every change of the joined set and
 * the callback call that reports it, and around setting the callback and
 * replaying the peers already joined: so a new user misses no peer and sees
 * none twice. It is taken before the region's @lock, never inside it.
 */
#include <linux/bitmap.h>
#include <linux/module.h>

#include "ivshmem_host_priv.h"

/* Run the callback, @r->peer_lock held. */
static void peer_notify(struct ivshmem_host_region *r, u32 peer, bool joined)
{
	lockdep_assert_held(&r->peer_lock);
	if (r->peer_cb)
		r->peer_cb(r->peer_data, peer, joined);
}

int ivshmem_host_peer_change(struct ivshmem_host_region *r, u32 peer, u32 event)
{
	int ret = 0;

	if (peer > IVSHMEM_HOST_MAX_PEER || peer == r->own_id ||
	    (event != IVSHMEM_HOST_PEER_JOINED && event != IVSHMEM_HOST_PEER_LEFT))
		return -EINVAL;
	mutex_lock(&r->peer_lock);
	mutex_lock(&r->lock);
	if (r->gone)
		ret = -ENODEV;
	else if (event == IVSHMEM_HOST_PEER_JOINED && test_bit(peer, r->joined))
		ret = -EEXIST;
	else if (event == IVSHMEM_HOST_PEER_LEFT && !test_bit(peer, r->joined))
		ret = -ENOENT;
	if (!ret && event == IVSHMEM_HOST_PEER_JOINED) {
		set_bit(peer, r->joined);
	} else if (!ret) {
		ivshmem_host_unbind_peer(r, peer);
		clear_bit(peer, r->joined);
	}
	mutex_unlock(&r->lock);
	if (!ret)
		peer_notify(r, peer, event == IVSHMEM_HOST_PEER_JOINED);
	mutex_unlock(&r->peer_lock);
	return ret;
}

int ivshmem_host_set_peer_callback(struct ivshmem_host_region *r, ivshmem_host_peer_cb cb,
				   void *data)
{
	unsigned long peer;
	int ret = 0;

	mutex_lock(&r->peer_lock);
	if (cb && READ_ONCE(r->gone))
		ret = -ENODEV;
	else if (cb && r->peer_cb)
		ret = -EBUSY;
	if (!ret) {
		r->peer_cb = cb;
		r->peer_data = data;
		/* The joined set changes only under @peer_lock: it is stable here. */
		if (cb)
			for_each_set_bit(peer, r->joined, IVSHMEM_HOST_MAX_PEER + 1)
				cb(data, peer, true);
	}
	mutex_unlock(&r->peer_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_set_peer_callback);

/* Removal, after the remove callback: the peer callback is never called again. */
void ivshmem_host_peer_clear(struct ivshmem_host_region *r)
{
	mutex_lock(&r->peer_lock);
	r->peer_cb = NULL;
	r->peer_data = NULL;
	mutex_unlock(&r->peer_lock);
}
