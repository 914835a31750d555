/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between the files of ivshmem_host.ko; not an API. */
#ifndef _IVSHMEM_HOST_PRIV_H
#define _IVSHMEM_HOST_PRIV_H

#include <linux/atomic.h>
#include <linux/eventfd.h>
#include <linux/ivshmem_host.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

/* A peer's (peer, vector) eventfd that we signal. */
struct ivshmem_host_peer {
	struct eventfd_ctx *ctx;
	struct work_struct ring_work;	/* rings deferred from an eventfd wake-up */
	atomic_t pending;		/* rings @ring_work still owes */
	struct list_head unbind_node;	/* on a teardown list, under the region's @lock */
};

/* One own vector: the eventfd we wait on and the in-kernel consumer. */
struct ivshmem_host_own {
	struct ivshmem_host_region *region;
	unsigned int vector;
	struct eventfd_ctx *ctx;	/* bound eventfd or NULL; under the region's @lock */
	wait_queue_entry_t wait;	/* on @ctx's wait queue while bound */
	poll_table pt;
	ivshmem_host_vector_cb cb;	/* under the region's @cb_lock */
	void *cb_data;
};

struct ivshmem_host_watch;

struct ivshmem_host_region {
	struct kref ref;		/* the file, ivshmem_host_get()s, the watch, a check */
	struct list_head node;		/* in the name list while attached */
	char name[IVSHMEM_HOST_NAME_LEN];
	u32 flags;
	u32 own_id;
	u32 nvectors;
	u64 size;

	struct page **pages;		/* pinned shmem pages, @npages of them */
	unsigned long npages;
	void *addr;			/* vmap() of @pages, write-back */
	struct mm_struct *mm;		/* charged with @npages locked pages */

	/*
	 * @remove_lock makes removal happen once (@removed), from the file's
	 * release or from @check_work when the file lost pages (a hole
	 * punched, a shrink); @inode (a reference) and @watch live until then.
	 */
	struct mutex remove_lock;
	bool removed;
	struct task_struct *remove_running;	/* runs the remove callback now */
	struct inode *inode;
	struct address_space *mapping;
	struct ivshmem_host_watch *watch;	/* fsnotify mark on @inode */
	struct work_struct check_work;

	/* @peer_lock serialises joins, leaves and the peer callback; outside @lock. */
	struct mutex peer_lock;
	unsigned long *joined;		/* bitmap of IVSHMEM_HOST_MAX_PEER + 1 */
	ivshmem_host_peer_cb peer_cb;
	void *peer_data;

	/*
	 * @lock serialises binds, removal (@gone) and the remove callback.
	 * Readers of @peers (ring) use RCU instead and check @gone.
	 */
	struct mutex lock;
	bool gone;
	struct xarray peers;		/* ivshmem_host_peer_key() -> peer; writers hold @lock */
	spinlock_t cb_lock;		/* own[].cb/cb_data; taken inside eventfd wake-ups */
	atomic64_t own_events;
	ivshmem_host_remove_cb remove_cb;
	void *remove_data;
	struct ivshmem_host_own own[] __counted_by(nvectors);
};

static inline unsigned long ivshmem_host_peer_key(u32 peer, u32 vector)
{
	return ((unsigned long)peer << 6) | vector;
}

/* ivshmem_host_region.c */
struct ivshmem_host_region *ivshmem_host_attach(const struct ivshmem_host_attach *req);
void ivshmem_host_remove(struct ivshmem_host_region *region);
/* Removes @region if its file no longer holds its pages; process context. */
void ivshmem_host_check_pages(struct ivshmem_host_region *region);

/* ivshmem_host_eventfd.c; the region's @lock held */
int ivshmem_host_bind_peer(struct ivshmem_host_region *region, u32 peer, u32 vector, int fd);
int ivshmem_host_bind_own(struct ivshmem_host_region *region, u32 vector, int fd);
void ivshmem_host_unbind_peer(struct ivshmem_host_region *region, u32 peer);
void ivshmem_host_unbind_all(struct ivshmem_host_region *region);

/* ivshmem_host_peer.c */
int ivshmem_host_peer_change(struct ivshmem_host_region *region, u32 peer, u32 event);
void ivshmem_host_peer_clear(struct ivshmem_host_region *region);

/* ivshmem_host_watch.c */
int ivshmem_host_watch_init(void);
void ivshmem_host_watch_exit(void);
int ivshmem_host_watch_start(struct ivshmem_host_region *region);
void ivshmem_host_watch_stop(struct ivshmem_host_region *region);

#endif /* _IVSHMEM_HOST_PRIV_H */
