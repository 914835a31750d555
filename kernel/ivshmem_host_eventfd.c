// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_host.ko's doorbells: eventfds of other peers that we signal, and our
 * own eventfds that we wait on.
 *
 * Own vectors wait the way KVM's irqfd does: a wait-queue entry on the
 * eventfd (init_waitqueue_func_entry + vfs_poll), so a signal runs
 * own_wakeup() directly, under the eventfd's lock with interrupts off.
 * Signalling an eventfd from there would nest two eventfd locks (a deadlock if
 * a callback rings its own eventfd, or two callbacks ring each other's) and
 * can WARN in eventfd_signal() (current->in_eventfd). So a ring made with
 * interrupts off or inside an eventfd wake-up is deferred to the peer's work
 * item.
 *
 * Peer lookups in ivshmem_host_ring() are RCU reads of the region's xarray;
 * unbinding erases, waits for a grace period, then cancels the work item, so
 * no ring can reach an eventfd after it was put.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>

#include "ivshmem_compat.h"
#include "ivshmem_host_priv.h"

/* ---- peers: eventfds we signal --------------------------------------------- */

static void peer_ring_work(struct work_struct *work)
{
	struct ivshmem_host_peer *p = container_of(work, struct ivshmem_host_peer, ring_work);

	while (atomic_dec_if_positive(&p->pending) >= 0)
		eventfd_signal(p->ctx);
}

/* After an RCU grace period since @p left the xarray. */
static void peer_free(struct ivshmem_host_peer *p)
{
	cancel_work_sync(&p->ring_work);
	eventfd_ctx_put(p->ctx);
	kfree(p);
}

int ivshmem_host_bind_peer(struct ivshmem_host_region *r, u32 peer, u32 vector, int fd)
{
	unsigned long key = ivshmem_host_peer_key(peer, vector);
	struct ivshmem_host_peer *p = NULL, *old;
	struct eventfd_ctx *ctx;

	lockdep_assert_held(&r->lock);
	if (r->gone)
		return -ENODEV;
	if (peer > IVSHMEM_HOST_MAX_PEER || vector >= r->nvectors)
		return -EINVAL;
	if (fd >= 0) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
		p = kzalloc(sizeof(*p), GFP_KERNEL);
		if (!p) {
			eventfd_ctx_put(ctx);
			return -ENOMEM;
		}
		p->ctx = ctx;
		INIT_WORK(&p->ring_work, peer_ring_work);
	}
	old = p ? xa_store(&r->peers, key, p, GFP_KERNEL) : xa_erase(&r->peers, key);
	if (xa_is_err(old)) {
		peer_free(p);
		return xa_err(old);
	}
	if (old) {
		synchronize_rcu();
		peer_free(old);
	}
	return 0;
}

int ivshmem_host_ring(struct ivshmem_host_region *r, u16 peer, u16 vector)
{
	struct ivshmem_host_peer *p;
	int ret = 0;

	if (vector >= r->nvectors)
		return -EINVAL;
	rcu_read_lock();
	if (READ_ONCE(r->gone)) {
		ret = -ENODEV;
		goto out_unlock;
	}
	p = xa_load(&r->peers, ivshmem_host_peer_key(peer, vector));
	if (!p) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (!irqs_disabled() && eventfd_signal_allowed()) {
		eventfd_signal(p->ctx);
	} else {
		atomic_inc(&p->pending);
		schedule_work(&p->ring_work);
	}
out_unlock:
	rcu_read_unlock();
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_ring);

/* ---- own vectors: eventfds we wait on ------------------------------------- */

/* Under the eventfd's wait-queue lock, interrupts off. */
static int own_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync, void *key)
{
	struct ivshmem_host_own *o = container_of(wait, struct ivshmem_host_own, wait);
	struct ivshmem_host_region *r = o->region;
	u64 cnt;

	if (!(key_to_poll(key) & EPOLLIN))
		return 0;
	eventfd_ctx_do_read(o->ctx, &cnt);
	atomic64_add(cnt, &r->own_events);
	spin_lock(&r->cb_lock);
	if (o->cb)
		o->cb(o->cb_data, o->vector);
	spin_unlock(&r->cb_lock);
	return 0;
}

static void own_queue(struct file *file, wait_queue_head_t *wqh, poll_table *pt)
{
	struct ivshmem_host_own *o = container_of(pt, struct ivshmem_host_own, pt);

	add_wait_queue(wqh, &o->wait);
}

static void own_unbind(struct ivshmem_host_own *o)
{
	u64 cnt;

	if (!o->ctx)
		return;
	/* Once off the wait queue, own_wakeup() cannot run for @o. */
	eventfd_ctx_remove_wait_queue(o->ctx, &o->wait, &cnt);
	eventfd_ctx_put(o->ctx);
	o->ctx = NULL;
}

/*
 * A count written before the bind stays in the eventfd and is consumed by the
 * first wake-up after it.
 */
int ivshmem_host_bind_own(struct ivshmem_host_region *r, u32 vector, int fd)
{
	struct ivshmem_host_own *o;
	struct eventfd_ctx *ctx;
	struct file *file;

	lockdep_assert_held(&r->lock);
	if (r->gone)
		return -ENODEV;
	if (vector >= r->nvectors)
		return -EINVAL;
	o = &r->own[vector];
	own_unbind(o);
	if (fd < 0)
		return 0;
	file = fget(fd);
	if (!file)
		return -EBADF;
	ctx = eventfd_ctx_fileget(file);
	if (IS_ERR(ctx)) {
		fput(file);
		return PTR_ERR(ctx);
	}
	o->ctx = ctx;
	init_waitqueue_func_entry(&o->wait, own_wakeup);
	init_poll_funcptr(&o->pt, own_queue);
	vfs_poll(file, &o->pt);
	fput(file);
	return 0;
}

int ivshmem_host_set_callback(struct ivshmem_host_region *r, unsigned int vector,
			      ivshmem_host_vector_cb cb, void *data)
{
	struct ivshmem_host_own *o;
	int ret = 0;

	if (vector >= r->nvectors)
		return -EINVAL;
	o = &r->own[vector];
	mutex_lock(&r->lock);
	spin_lock_irq(&r->cb_lock);
	if (cb && r->gone)
		ret = -ENODEV;
	else if (cb && o->cb)
		ret = -EBUSY;
	else
		o->cb = cb;
	if (!ret)
		o->cb_data = data;
	spin_unlock_irq(&r->cb_lock);
	mutex_unlock(&r->lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshmem_host_set_callback);

/* Unbind the peer eventfds whose keys are in [@first, @last]. */
static void peers_unbind(struct ivshmem_host_region *r, unsigned long first, unsigned long last)
{
	struct ivshmem_host_peer *p, *tmp;
	unsigned long key;
	LIST_HEAD(dead);

	lockdep_assert_held(&r->lock);
	xa_for_each_range(&r->peers, key, p, first, last) {
		xa_erase(&r->peers, key);
		list_add(&p->unbind_node, &dead);
	}
	if (list_empty(&dead))
		return;
	/* ivshmem_host_ring() readers that saw a peer are done after this. */
	synchronize_rcu();
	list_for_each_entry_safe(p, tmp, &dead, unbind_node)
		peer_free(p);
}

/* A peer left: none of its vectors can be rung any more. */
void ivshmem_host_unbind_peer(struct ivshmem_host_region *r, u32 peer)
{
	peers_unbind(r, ivshmem_host_peer_key(peer, 0),
		     ivshmem_host_peer_key(peer, IVSHMEM_HOST_MAX_VECTORS - 1));
}

/* Removal: no eventfd stays bound, no callback stays set. */
void ivshmem_host_unbind_all(struct ivshmem_host_region *r)
{
	unsigned int i;

	lockdep_assert_held(&r->lock);
	WARN_ON_ONCE(!r->gone);
	for (i = 0; i < r->nvectors; i++)
		own_unbind(&r->own[i]);
	spin_lock_irq(&r->cb_lock);
	for (i = 0; i < r->nvectors; i++)
		r->own[i].cb = NULL;
	spin_unlock_irq(&r->cb_lock);
	peers_unbind(r, 0, ULONG_MAX);
}
