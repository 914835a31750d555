// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_host.ko's watch on a region's file: notices when the file stops
 * holding the pinned pages, so that the region is removed instead of sharing
 * pages nobody else sees any more.
 *
 * F_SEAL_SHRINK does not stop FALLOC_FL_PUNCH_HOLE (only F_SEAL_WRITE does),
 * and an unsealed file can be truncated: either way shmem drops the pages
 * from the file while we still hold them. Both paths raise FS_MODIFY on the
 * inode: vfs_fallocate() calls fsnotify_modify() after a successful
 * fallocate (madvise(MADV_REMOVE) and io_uring go through it too), and
 * notify_change() reports an ATTR_SIZE change as FS_MODIFY. An fsnotify mark
 * of our own group on the inode (exported since long before 6.1, as for
 * nfsd's file cache) catches the event in the modifying process; the check
 * itself runs from a work item, in process context: every pinned page must
 * still belong to the file's mapping and the file must still cover the
 * region (ivshmem_host_check_pages()). Writes through write() raise the same
 * event and cost one scan of the page array; writes through a mapping raise
 * none.
 *
 * A mark holds a region reference until fsnotify frees it (after an SRCU
 * grace period), so an event that raced with removal still finds the region.
 * A queued check holds another.
 */
#include <linux/fsnotify_backend.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "ivshmem_host_priv.h"

struct ivshmem_host_watch {
	struct fsnotify_mark mark;
	struct ivshmem_host_region *region;	/* a reference, put when the mark is freed */
};

static struct fsnotify_group *watch_group;
static struct workqueue_struct *watch_wq;

/* In the modifying process, under fsnotify's SRCU read lock. */
static int watch_event(struct fsnotify_mark *mark, u32 mask, struct inode *inode,
		       struct inode *dir, const struct qstr *name, u32 cookie)
{
	struct ivshmem_host_watch *w = container_of(mark, struct ivshmem_host_watch, mark);
	struct ivshmem_host_region *r = w->region;

	if (READ_ONCE(r->gone))
		return 0;
	kref_get(&r->ref);
	if (!queue_work(watch_wq, &r->check_work))
		ivshmem_host_put(r);
	return 0;
}

static void watch_free_mark(struct fsnotify_mark *mark)
{
	struct ivshmem_host_watch *w = container_of(mark, struct ivshmem_host_watch, mark);

	ivshmem_host_put(w->region);
	kfree(w);
}

static const struct fsnotify_ops watch_ops = {
	.handle_inode_event	= watch_event,
	.free_mark		= watch_free_mark,
};

static void watch_check(struct work_struct *work)
{
	struct ivshmem_host_region *r = container_of(work, struct ivshmem_host_region, check_work);

	ivshmem_host_check_pages(r);
	ivshmem_host_put(r);
}

/* Before the region is visible; @r->inode is set. */
int ivshmem_host_watch_start(struct ivshmem_host_region *r)
{
	struct ivshmem_host_watch *w;
	int ret;

	INIT_WORK(&r->check_work, watch_check);
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	fsnotify_init_mark(&w->mark, watch_group);
	w->mark.mask = FS_MODIFY;
	kref_get(&r->ref);
	w->region = r;
	ret = fsnotify_add_inode_mark(&w->mark, r->inode, 0);
	if (ret) {
		fsnotify_put_mark(&w->mark);	/* frees @w and puts the reference */
		return ret;
	}
	r->watch = w;
	return 0;
}

/* Removal, @r->remove_lock held: no new check is queued for @r after this. */
void ivshmem_host_watch_stop(struct ivshmem_host_region *r)
{
	if (!r->watch)
		return;
	fsnotify_destroy_mark(&r->watch->mark, watch_group);
	fsnotify_put_mark(&r->watch->mark);
	r->watch = NULL;
}

int ivshmem_host_watch_init(void)
{
	watch_wq = alloc_workqueue("ivshmem_host_watch", 0, 0);
	if (!watch_wq)
		return -ENOMEM;
	/* DUPS: the same file may back two regions (two names). */
	watch_group = fsnotify_alloc_group(&watch_ops, FSNOTIFY_GROUP_DUPS);
	if (IS_ERR(watch_group)) {
		destroy_workqueue(watch_wq);
		return PTR_ERR(watch_group);
	}
	return 0;
}

/* Every region is removed: wait for the marks to be freed, then for the checks. */
void ivshmem_host_watch_exit(void)
{
	fsnotify_wait_marks_destroyed();
	destroy_workqueue(watch_wq);
	fsnotify_put_group(watch_group);
}
